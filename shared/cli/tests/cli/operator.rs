//! The operator's commands on a directory repository: several bundles in
//! one upload, uploads refused before anything is stored, `list`, `show`,
//! `search`, one-line `link`/`unlink`/`remove` (and `request -`), dry runs
//! that say what would change, completions and the manual page.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::fixtures::{ok, raptr, text};

/// Files written into a new folder under `root`.
fn folder(root: &Path, name: &str, files: &[(String, Vec<u8>)]) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(&dir).expect("mkdir");
    for (n, bytes) in files {
        fs::write(dir.join(n), bytes).expect("write");
    }
    dir
}

/// hello at `version`: its source, `hello` for amd64 and `hello-doc` for all.
fn hello(version: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = raptr_testkit::source_package("hello", version, &["hello", "hello-doc"]);
    files.push((
        raptr_testkit::deb_name("hello", version, "amd64"),
        raptr_testkit::deb("hello", version, "amd64", None, version),
    ));
    files.push((
        raptr_testkit::deb_name("hello-doc", version, "all"),
        raptr_testkit::deb("hello-doc", version, "all", Some("hello"), version),
    ));
    files
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", text(out)))
}

/// Every file under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).expect("under").display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// `raptr` with `input` on its standard input.
fn raptr_stdin(args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_raptr"))
        .env(
            "RAPTR_KEY_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/keys"),
        )
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("raptr runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    child.wait_with_output().expect("raptr ends")
}

#[test]
fn several_bundles_in_one_upload_and_uploads_that_can_never_work() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().expect("utf-8");
    ok(raptr(&["--repo", repo, "init"]));
    let a = folder(tmp.path(), "a", &hello("1.0-1"));
    let world = raptr_testkit::deb("world", "2.0-1", "amd64", None, "w");
    let world_path = tmp
        .path()
        .join(raptr_testkit::deb_name("world", "2.0-1", "amd64"));
    fs::write(&world_path, &world).expect("write");
    let before = tree(Path::new(repo));

    // Refused before anything is stored: an unknown distribution, an
    // unknown component, a file no bundle claims.
    for (target, want) in [
        (
            "unstable/main",
            "has no distribution unstable; it has stable, testing",
        ),
        (
            "stable/contrib",
            "stable has no component contrib; it has main",
        ),
    ] {
        let out = raptr(&["--repo", repo, "upload", target, a.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(want), "{}", text(&out));
        assert!(
            text(&out).contains("nothing was uploaded"),
            "{}",
            text(&out)
        );
    }
    let notes = tmp.path().join("notes.txt");
    fs::write(&notes, "release notes\n").expect("write");
    let out = raptr(&[
        "--repo",
        repo,
        "upload",
        "testing/main",
        a.to_str().expect("utf-8"),
        world_path.to_str().expect("utf-8"),
        notes.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out)
            .contains("notes.txt: belongs to none of the bundles given (hello 1.0-1, world 2.0-1)"),
        "{}",
        text(&out)
    );
    assert_eq!(tree(Path::new(repo)), before, "nothing was stored");

    // Two bundles in one command: one folder each, both accepted, and a
    // summary per bundle.
    let out = raptr(&[
        "--repo",
        repo,
        "--json",
        "upload",
        "testing/main",
        a.to_str().expect("utf-8"),
        world_path.to_str().expect("utf-8"),
        "--upload-id",
        "ci-7",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc = json(&out);
    let bundles = doc["bundles"].as_array().expect("bundles");
    assert_eq!(bundles.len(), 2, "{doc:#}");
    assert_eq!(bundles[0]["bundle"], "hello");
    assert_eq!(bundles[0]["folder"], "incoming/testing/main/ci-7-1/");
    assert_eq!(bundles[0]["accepted"], 5);
    assert_eq!(bundles[1]["bundle"], "world");
    assert_eq!(bundles[1]["folder"], "incoming/testing/main/ci-7-2/");
    assert_eq!(bundles[1]["accepted"], 1);
    assert_eq!(doc["reports"].as_array().expect("reports").len(), 6);
    assert!(doc["next"]
        .as_str()
        .expect("a string")
        .contains("after the next publish"));
    assert!(Path::new(repo)
        .join("pool/main/w/world/2.0-1/manifest.json")
        .is_file());
    assert!(Path::new(repo)
        .join("pool/main/h/hello/1.0-1/manifest.json")
        .is_file());

    // The same in text: a line per file, a summary per folder, and when
    // apt sees it.
    let b = folder(tmp.path(), "b", &hello("1.1-1"));
    let other = raptr_testkit::deb("other", "3.0-1", "all", None, "o");
    fs::write(
        b.join(raptr_testkit::deb_name("other", "3.0-1", "all")),
        &other,
    )
    .expect("write");
    let t = ok(raptr(&[
        "--repo",
        repo,
        "upload",
        "testing/main",
        b.to_str().expect("utf-8"),
    ]));
    assert!(
        t.contains("/: 5 object(s), 5 accepted, 0 skipped, 0 rejected, 0 pending"),
        "{t}"
    );
    assert!(
        t.contains("/: 1 object(s), 1 accepted, 0 skipped, 0 rejected, 0 pending"),
        "{t}"
    );
    assert!(t.contains("2 bundles uploaded"), "{t}");
    assert!(
        t.contains(&format!(
            "apt sees what was accepted after the next publish: raptr --repo {repo} publish"
        )),
        "{t}"
    );

    // A broken package among two bundles is rejected in a folder of its
    // own; the bundles go through.
    let c = folder(tmp.path(), "c", &[]);
    fs::write(c.join("broken_1.0_amd64.deb"), b"!<arch>\nnot a package").expect("write");
    fs::write(
        c.join(raptr_testkit::deb_name("x1", "1.0", "amd64")),
        raptr_testkit::deb("x1", "1.0", "amd64", None, "x"),
    )
    .expect("write");
    fs::write(
        c.join(raptr_testkit::deb_name("x2", "1.0", "amd64")),
        raptr_testkit::deb("x2", "1.0", "amd64", None, "x"),
    )
    .expect("write");
    let out = raptr(&[
        "--repo",
        repo,
        "upload",
        "testing/main",
        c.to_str().expect("utf-8"),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("rejected: broken_1.0_amd64.deb"), "{t}");
    assert_eq!(t.matches("1 accepted").count(), 2, "{t}");
    assert!(t.contains("3 bundles uploaded"), "{t}");
}

#[test]
fn inventory_and_one_line_changes_on_a_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.to_str().expect("utf-8");
    ok(raptr(&["--repo", repo, "init"]));
    for v in ["1.0-1", "1.1-1"] {
        let dir = folder(tmp.path(), v, &hello(v));
        ok(raptr(&[
            "--repo",
            repo,
            "upload",
            "testing/main",
            dir.to_str().expect("utf-8"),
        ]));
    }
    let libfoo = tmp
        .path()
        .join(raptr_testkit::deb_name("libfoo1", "0.5-1", "arm64"));
    fs::write(
        &libfoo,
        raptr_testkit::deb("libfoo1", "0.5-1", "arm64", Some("foo"), "f"),
    )
    .expect("write");
    ok(raptr(&[
        "--repo",
        repo,
        "upload",
        "testing/main",
        libfoo.to_str().expect("utf-8"),
    ]));

    // Before any publish, the listing says what it is as of.
    let t = ok(raptr(&["--repo", repo, "list"]));
    assert!(t.contains("0 bundle version(s) linked in the repository, as of no publish yet; 11 accepted file(s) and request(s) wait for the next publish"), "{t}");
    ok(raptr(&["--repo", repo, "publish"]));

    // list: one line per bundle version and distribution.
    let t = squash(&ok(raptr(&["--repo", repo, "list"])));
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 4, "{t}");
    assert_eq!(lines[0], "testing/main foo 0.5-1 arm64 libfoo1", "{t}");
    assert_eq!(
        lines[1], "testing/main hello 1.0-1 all,amd64,source hello,hello-doc,source",
        "{t}"
    );
    assert!(lines[2].starts_with("testing/main hello 1.1-1 "), "{t}");
    assert!(
        lines[3].contains("3 bundle version(s) linked in the repository, as of generation 1"),
        "{t}"
    );
    let doc = json(&raptr(&[
        "--repo",
        repo,
        "--json",
        "list",
        "testing/main",
        "--package",
        "hello-doc",
    ]));
    let links = doc["links"].as_array().expect("links");
    assert_eq!(links.len(), 2, "{doc:#}");
    assert_eq!(links[0]["bundle"], "hello");
    assert_eq!(links[0]["version"], "1.0-1");
    assert_eq!(links[0]["distribution"], "testing");
    assert_eq!(links[0]["component"], "main");
    assert_eq!(doc["as_of"]["generation"], 1);
    assert_eq!(doc["as_of"]["waiting"], 0);
    // Nothing in stable, and where it is instead.
    let out = raptr(&["--repo", repo, "list", "stable", "--package", "hello"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("hello 1.1-1 is linked in testing/main"),
        "{}",
        text(&out)
    );
    let out = raptr(&["--repo", repo, "list", "sid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("has no distribution sid; it has stable, testing"),
        "{}",
        text(&out)
    );

    // search: bundle or binary names, substrings or shell patterns.
    let t = squash(&ok(raptr(&["--repo", repo, "search", "libfoo*"])));
    assert!(t.contains("testing/main foo 0.5-1 arm64 libfoo1"), "{t}");
    assert!(t.contains("1 bundle version(s) match"), "{t}");
    let t = ok(raptr(&["--repo", repo, "search", "doc"]));
    assert!(t.contains("2 bundle version(s) match"), "{t}");
    let out = raptr(&["--repo", repo, "search", "zzz"]);
    assert_eq!(out.status.code(), Some(1));

    // link in one line: the dry run says what would change and changes
    // nothing.
    let t = ok(raptr(&[
        "--repo",
        repo,
        "link",
        "hello",
        "1.1-1",
        "--to",
        "stable",
        "--packages",
        "hello,source",
        "--dry-run",
    ]));
    assert!(t.contains("dry run: would link 4 file(s) in stable"), "{t}");
    assert!(
        t.contains("would link stable: pool/main/h/hello/1.1-1/hello_1.1-1_amd64.deb"),
        "{t}"
    );
    assert!(
        t.contains("would link stable: pool/main/h/hello/1.1-1/hello_1.1-1.dsc"),
        "{t}"
    );
    assert!(!t.contains("hello-doc"), "{t}");
    let t = ok(raptr(&["--repo", repo, "publish"]));
    assert!(t.contains("nothing new to publish"), "{t}");
    // Then for real: the request stored is the one the JSON form writes.
    let t = ok(raptr(&[
        "--repo",
        repo,
        "link",
        "hello",
        "1.1-1",
        "--to",
        "stable",
        "--packages",
        "hello,source",
    ]));
    assert!(
        t.contains("accepted: requests/link/stable/main/link-hello-"),
        "{t}"
    );
    let stored = fs::read_dir(repo_dir.join("requests/link/stable/main"))
        .expect("requests")
        .flatten()
        .map(|e| e.path())
        .find(|p| !text_of(p).contains("\"dry_run\": true"))
        .expect("the request");
    let body: Value = serde_json::from_slice(&fs::read(&stored).expect("read")).expect("json");
    assert_eq!(
        body,
        serde_json::json!({"action": "link", "bundle": "hello", "version": "1.1-1", "component": "main",
            "distribution": "stable", "packages": ["hello", "source"], "dry_run": false})
    );
    // The same change as JSON on standard input.
    let out = raptr_stdin(
        &["--repo", repo, "request", "-"],
        br#"{"action":"link","bundle":"foo","version":"all","component":"main","distribution":"stable"}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("accepted: requests/link/stable/main/stdin-"),
        "{}",
        text(&out)
    );
    ok(raptr(&["--repo", repo, "publish"]));
    let t = squash(&ok(raptr(&["--repo", repo, "list", "stable"])));
    assert!(t.contains("stable/main foo 0.5-1 arm64 libfoo1\n"), "{t}");
    assert!(
        t.contains("stable/main hello 1.1-1 amd64,source hello,source\n"),
        "{t}"
    );

    // show: every version, its files, who uploaded it, where it is linked.
    let t = ok(raptr(&["--repo", repo, "show", "hello"]));
    assert!(
        t.contains("hello 1.0-1 (component main, pool/main/h/hello/1.0-1)"),
        "{t}"
    );
    assert!(
        t.contains("hello 1.1-1 (component main, pool/main/h/hello/1.1-1)"),
        "{t}"
    );
    assert!(t.contains("  uploaded 20"), "{t}");
    assert!(t.contains("  linked in testing: every file"), "{t}");
    assert!(t.contains("  linked in stable: hello_1.1-1.debian.tar.gz hello_1.1-1.dsc hello_1.1-1_amd64.deb hello_1.1.orig.tar.gz"), "{t}");
    assert!(
        squash(&t).contains("hello-doc_1.1-1_all.deb hello-doc all 578 bytes sha256 "),
        "{t}"
    );
    let doc = json(&raptr(&[
        "--repo", repo, "--json", "show", "hello", "1.1-1",
    ]));
    let versions = doc["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(
        versions[0]["linked_in"]["stable"]
            .as_array()
            .expect("an array")
            .len(),
        4
    );
    assert_eq!(versions[0]["files"].as_array().expect("an array").len(), 5);
    assert!(versions[0]["uploaders"][0]
        .as_str()
        .expect("a string")
        .starts_with("local:"));
    // Mistakes answered with what to do next.
    let out = raptr(&["--repo", repo, "show", "hello", "9.9-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("the pool has no hello 9.9-1; its versions are 1.0-1, 1.1-1"),
        "{}",
        text(&out)
    );
    let out = raptr(&["--repo", repo, "show", "libfoo1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out)
            .contains("libfoo1 is a binary package, not a bundle: it belongs to source foo 0.5-1"),
        "{}",
        text(&out)
    );
    let out = raptr(&["--repo", repo, "link", "hello", "9.9-1", "--to", "stable"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains(
            "hello 9.9-1 is not in the pool of component main; the versions there are 1.0-1, 1.1-1"
        ),
        "{}",
        text(&out)
    );
    let out = raptr(&["--repo", repo, "link", "libfoo1", "all", "--to", "stable"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("libfoo1 is a binary package, not a bundle: its source is foo (0.5-1 in stable); run `raptr --repo ")
            && text(&out).contains(" link foo 0.5-1 --to stable --packages libfoo1`"),
        "{}",
        text(&out)
    );
    let out = raptr(&[
        "--repo",
        repo,
        "link",
        "nothing-like-it",
        "all",
        "--to",
        "stable",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("no version of nothing-like-it is in the pool of component main (a binary package's name is not a bundle"), "{}", text(&out));
    let out = raptr(&["--repo", repo, "link", "hello", "all", "--to", "sid"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("has no distribution sid"),
        "{}",
        text(&out)
    );

    // unlink and remove in one line.
    let t = ok(raptr(&[
        "--repo",
        repo,
        "unlink",
        "hello",
        "1.0-1",
        "--from",
        "testing",
        "--architectures",
        "all",
    ]));
    assert!(
        t.contains("accepted: requests/unlink/testing/main/unlink-hello-"),
        "{t}"
    );
    let t = ok(raptr(&[
        "--repo",
        repo,
        "remove",
        "hello",
        "1.0-1",
        "--dry-run",
    ]));
    assert!(
        t.contains("dry run: would remove 5 file(s) from the pool's manifest"),
        "{t}"
    );
    assert!(
        t.contains("would unlink testing: pool/main/h/hello/1.0-1/hello_1.0-1_amd64.deb"),
        "{t}"
    );
    ok(raptr(&["--repo", repo, "publish"]));
    let t = ok(raptr(&[
        "--repo",
        repo,
        "list",
        "testing",
        "--package",
        "hello-doc",
    ]));
    assert!(
        t.contains("1 bundle version(s) of hello-doc linked in testing"),
        "{t}"
    );
    ok(raptr(&["--repo", repo, "remove", "hello", "1.0-1"]));
    ok(raptr(&["--repo", repo, "publish"]));
    let t = ok(raptr(&["--repo", repo, "list", "testing"]));
    assert!(!t.contains("1.0-1"), "{t}");
    // Removed from the manifest: show no longer has it; its files wait
    // for a purge after the grace period.
    let t = ok(raptr(&["--repo", repo, "show", "hello", "1.0-1"]));
    assert!(
        t.contains("  removed: the pool's manifest no longer lists it"),
        "{t}"
    );
    assert!(
        t.contains("hello_1.0-1_amd64.deb: no distribution links it since 20"),
        "{t}"
    );
    assert!(t.contains("; the first purge from 20"), "{t}");
    let t = ok(raptr(&["--repo", repo, "purge", "--dry-run"]));
    assert!(t.contains("would purge 0 pool file(s); 5 more unlinked file(s) wait for the 48 h grace period, the first eligible from 20"), "{t}");
}

/// Runs of spaces as one, for aligned columns.
fn squash(t: &str) -> String {
    t.lines()
        .map(|l| {
            l.split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn text_of(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn errors_are_json_under_json_and_completions_and_manual_come_from_the_same_definitions() {
    let out = raptr(&["--json", "--repo", "/nonexistent/raptr-repo", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let doc = json(&out);
    assert_eq!(doc["error"]["exit"], 2);
    assert!(doc["error"]["message"]
        .as_str()
        .expect("a string")
        .contains("/nonexistent/raptr-repo: no such directory"));

    // A directory repository whose document names a Secrets Manager key
    // that cannot be read from here: refused, one sentence, nothing made.
    let tmp = tempfile::tempdir().expect("tempdir");
    let example = raptr(&["--repo", "x", "init", "--example"]);
    let mut doc: Value = serde_json::from_slice(&example.stdout).expect("example");
    doc["signing_key"] = serde_json::json!({"secret": "raptr/signing-key"});
    let path = tmp.path().join("raptr.json");
    fs::write(&path, doc.to_string()).expect("write");
    let repo = tmp.path().join("repo");
    let out = Command::new(env!("CARGO_BIN_EXE_raptr"))
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "y")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .args(["--repo", repo.to_str().expect("utf-8"), "init"])
        .arg(&path)
        .output()
        .expect("raptr runs");
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains(
            "names the Secrets Manager secret raptr/signing-key, which cannot be used from here"
        ) && t.contains("AWS could not be reached")
            && t.contains("{\"file\": PATH}"),
        "{t}"
    );
    assert_eq!(t.lines().count(), 1, "{t}");
    assert!(!repo.exists(), "nothing was made");

    // A usage error under --json too.
    let out = raptr(&["--json", "link", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    let doc = json(&out);
    assert!(
        doc["error"]["message"]
            .as_str()
            .expect("a message")
            .contains("the following required arguments were not provided"),
        "{doc:#}"
    );

    for (shell, marker) in [
        ("bash", "_raptr()"),
        ("zsh", "#compdef raptr"),
        ("fish", "complete -c raptr"),
    ] {
        let t = ok(raptr(&["completions", shell]));
        assert!(t.contains(marker), "{shell}: {t}");
        for sub in [
            "list", "show", "search", "link", "unlink", "remove", "upload",
        ] {
            assert!(t.contains(sub), "{shell} completion lacks {sub}");
        }
    }
    let pages = tempfile::tempdir().expect("tempdir");
    ok(raptr(&[
        "man",
        "--dir",
        pages.path().to_str().expect("utf-8"),
    ]));
    for page in [
        "raptr.1",
        "raptr-list.1",
        "raptr-link.1",
        "raptr-key-show.1",
    ] {
        let text = fs::read_to_string(pages.path().join(page)).expect(page);
        assert!(text.contains(".TH"), "{page}: {text}");
    }
    assert!(fs::read_to_string(pages.path().join("raptr-link.1"))
        .expect("page")
        .contains("dry\\-run"));
    let man = ok(raptr(&["man"]));
    assert!(man.starts_with(".ie") || man.contains(".TH raptr"), "{man}");
    for sub in ["raptr\\-list", "raptr\\-link", "raptr\\-show"] {
        assert!(man.contains(sub), "the manual lacks {sub}");
    }
}

/// The README's first steps, command for command (a test package stands in
/// for `apt-get download hello`), ending with apt installing from the
/// repository as the README says.
#[test]
fn getting_started_works_as_the_readme_says() {
    let readme =
        fs::read_to_string(crate::fixtures::workspace().join("README.md")).expect("README");
    let steps = readme
        .split("**1. A repository in a directory**")
        .nth(1)
        .and_then(|s| s.split("**2.").next())
        .expect("the README's first steps");
    let tmp = tempfile::tempdir().expect("tempdir");
    let deb = raptr_testkit::deb("hello", "2.10-3", "amd64", None, "readme");
    fs::write(tmp.path().join("hello_2.10-3_amd64.deb"), &deb).expect("write");
    let mut ran = Vec::new();
    for line in steps.lines().filter(|l| l.starts_with("raptr ")) {
        let command = line.split(" #").next().unwrap_or(line).trim();
        let args: Vec<&str> = command
            .split_whitespace()
            .skip(1)
            .map(|a| {
                if a == "hello_*.deb" {
                    "hello_2.10-3_amd64.deb"
                } else {
                    a
                }
            })
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_raptr"))
            .env(
                "RAPTR_KEY_DIR",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/keys"),
            )
            .current_dir(tmp.path())
            .args(&args)
            .output()
            .expect("raptr runs");
        assert_eq!(out.status.code(), Some(0), "{command}: {}", text(&out));
        ran.push(command.to_string());
    }
    assert!(ran.len() >= 6, "the README's steps: {ran:?}");
    let t = ok(raptr(&[
        "--repo",
        tmp.path().join("repo").to_str().expect("utf-8"),
        "list",
        "stable",
    ]));
    assert!(
        squash(&t).contains("stable/main hello 2.10-3 amd64 hello"),
        "{t}"
    );

    // apt, with the deb line the README gives.
    let repo = tmp.path().join("repo");
    let line = steps
        .lines()
        .find(|l| l.starts_with("echo \"deb "))
        .expect("the deb line")
        .replace(
            "/etc/apt/keyrings/raptr.gpg",
            &repo.join("keys/repo.gpg").display().to_string(),
        )
        .replace("$PWD", &tmp.path().display().to_string());
    let sources = line
        .trim_start_matches("echo \"")
        .split('"')
        .next()
        .expect("the line")
        .to_string();
    let sandbox = raptr_testkit::apt::Sandbox::new(&tmp.path().join("apt"));
    sandbox.sources(&format!("{sources}\n"));
    let out = sandbox.apt_get(&["update"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dl = tmp.path().join("dl");
    fs::create_dir(&dl).expect("mkdir");
    let out = sandbox.apt_get(&["download", "hello"], &dl);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read(dl.join("hello_2.10-3_amd64.deb")).expect("downloaded"),
        deb
    );
}

/// `check` answers what `upload` would: pending where upload leaves a file
/// waiting, and with `--repo` the pool's verdict (skipped, or rejected for
/// other bytes under a name and version already there).
#[test]
fn check_answers_what_upload_would() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().expect("utf-8");
    ok(raptr(&["--repo", repo, "init"]));
    let a = folder(tmp.path(), "a", &hello("1.0-1"));
    let a = a.to_str().expect("utf-8");
    ok(raptr(&["--repo", repo, "upload", "testing/main", a]));

    // The same folder again: without a pool, accepted; against the
    // repository, skipped, as the upload would be.
    let t = ok(raptr(&["check", a]));
    assert!(
        t.contains("5 accepted, 0 skipped, 0 rejected, 0 pending; not checked against a pool"),
        "{t}"
    );
    let t = ok(raptr(&["--repo", repo, "check", a]));
    assert!(
        t.contains("0 accepted, 5 skipped, 0 rejected, 0 pending; checked against the pool"),
        "{t}"
    );
    assert!(t.contains("skipped: hello_1.0-1_amd64.deb: identical to pool/main/h/hello/1.0-1/hello_1.0-1_amd64.deb, already in the pool"), "{t}");
    let t = ok(raptr(&["--repo", repo, "upload", "testing/main", a]));
    assert!(
        t.contains("0 accepted, 5 skipped, 0 rejected, 0 pending"),
        "{t}"
    );

    // Other bytes under the same name and version: check says rejected,
    // and upload agrees.
    let b = tmp.path().join("b");
    fs::create_dir(&b).expect("mkdir");
    fs::write(
        b.join("hello_1.0-1_amd64.deb"),
        raptr_testkit::deb("hello", "1.0-1", "amd64", None, "rebuilt"),
    )
    .expect("write");
    let b = b.to_str().expect("utf-8");
    let out = raptr(&["--repo", repo, "--json", "check", b]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc = json(&out);
    assert_eq!(doc["bundle"], "hello");
    assert_eq!(doc["version"], "1.0-1");
    assert_eq!(doc["rejected"], 1);
    let f = &doc["files"][0];
    assert_eq!(f["status"], "rejected");
    assert_eq!(f["package"], "hello");
    assert_eq!(f["package_version"], "1.0-1");
    assert!(
        f["reason"]
            .as_str()
            .expect("reason")
            .contains("already in the pool with different contents"),
        "{doc:#}"
    );
    let out = raptr(&["--repo", repo, "upload", "testing/main", b]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("different contents"), "{}", text(&out));

    // A stray file: pending for both, exit 0 for both.
    let c = folder(
        tmp.path(),
        "c",
        &[("notes.txt".into(), b"notes\n".to_vec())],
    );
    let c = c.to_str().expect("utf-8");
    let t = ok(raptr(&["--repo", repo, "check", c]));
    assert!(
        t.contains("pending: notes.txt: waiting for a .dsc that lists it"),
        "{t}"
    );
    let t = ok(raptr(&["--repo", repo, "upload", "testing/main", c]));
    assert!(
        t.contains("pending: notes.txt: waiting for a .dsc that lists it"),
        "{t}"
    );
}

/// Every `--json` output, and every report raptr writes, conforms to the
/// documented schema (`shared/cli/output.schema.json`), whose definitions
/// forbid fields they do not describe.
#[test]
fn every_json_output_conforms_to_the_documented_schema() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.to_str().expect("utf-8");
    let run = |args: &[&str]| -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        json(&raptr(&all))
    };
    let r = |args: &[&str]| -> Value {
        let mut all = vec!["--repo", repo];
        all.extend_from_slice(args);
        run(&all)
    };
    let mut docs: Vec<(&str, Value)> = vec![("init", r(&["init"])), ("init", r(&["init"]))];
    let a = folder(tmp.path(), "a", &hello("1.0-1"));
    let a = a.to_str().expect("utf-8");
    fs::write(tmp.path().join("notes.txt"), "notes\n").expect("write");
    fs::write(tmp.path().join("broken_1_amd64.deb"), "!<arch>\nbroken").expect("write");
    docs.push(("check", run(&["check", a])));
    docs.push(("check", r(&["check", a])));
    docs.push(("scan", run(&["scan", a])));
    docs.push(("upload", r(&["upload", "testing/main", a])));
    docs.push((
        "upload",
        r(&[
            "upload",
            "testing/main",
            tmp.path().join("notes.txt").to_str().expect("utf-8"),
        ]),
    ));
    docs.push((
        "upload",
        r(&[
            "upload",
            "testing/main",
            tmp.path()
                .join("broken_1_amd64.deb")
                .to_str()
                .expect("utf-8"),
        ]),
    ));
    docs.push(("publish", r(&["publish"])));
    docs.push((
        "request",
        r(&["link", "hello", "1.0-1", "--to", "stable", "--dry-run"]),
    ));
    docs.push(("request", r(&["link", "hello", "1.0-1", "--to", "stable"])));
    docs.push(("request", r(&["link", "hello", "7", "--to", "stable"])));
    docs.push(("request", r(&["remove", "hello", "all", "--dry-run"])));
    docs.push(("publish", r(&["publish"])));
    docs.push((
        "request",
        r(&["unlink", "hello", "1.0-1", "--from", "testing"]),
    ));
    docs.push(("publish", r(&["publish"])));
    docs.push(("request", r(&["snapshot", "stable", "s1", "--dry-run"])));
    docs.push(("request", r(&["snapshot", "stable", "s1"])));
    docs.push(("publish", r(&["publish"])));
    docs.push(("snapshots", r(&["snapshots"])));
    docs.push(("list", r(&["list", "stable/_s1"])));
    docs.push(("request", r(&["restore", "stable", "s1", "--dry-run"])));
    docs.push((
        "request",
        r(&["retention", "stable", "--keep", "1", "--dry-run"]),
    ));
    docs.push(("list", r(&["list"])));
    docs.push(("list", r(&["list", "testing", "--package", "hello"])));
    docs.push(("search", r(&["search", "hel*"])));
    docs.push(("show", r(&["show", "hello"])));
    docs.push(("request", r(&["delete-snapshot", "stable", "s1"])));
    docs.push(("publish", r(&["publish"])));
    docs.push(("purge", r(&["purge", "--dry-run"])));
    docs.push(("verify", r(&["verify", "--dry-run"])));
    docs.push(("key_show_repo", r(&["key", "show"])));
    docs.push(("error", r(&["show", "nothing-here"])));
    docs.push(("error", r(&["upload", "sid/main", a])));
    docs.push(("error", run(&["--repo", "/nonexistent/raptr", "list"])));
    docs.push(("error", run(&["link", "hello"])));
    let keys = tmp.path().join("keys");
    docs.push((
        "key_generate",
        run(&[
            "key",
            "generate",
            "--name",
            "t <t@raptr.invalid>",
            "--out",
            keys.to_str().expect("utf-8"),
        ]),
    ));
    docs.push((
        "key_show_files",
        run(&[
            "key",
            "show",
            keys.join("private.asc").to_str().expect("utf-8"),
            keys.join("repo.asc").to_str().expect("utf-8"),
        ]),
    ));
    // The reports on disk: each object's and request's, and each upload
    // folder's record.
    let reports = tree(&repo_dir.join("reports"));
    assert!(reports.len() > 8, "{reports:?}");
    for rel in &reports {
        let doc: Value =
            serde_json::from_slice(&fs::read(repo_dir.join("reports").join(rel)).expect("report"))
                .expect("json");
        let folder_record = rel.starts_with("incoming/") && rel.matches('/').count() == 3;
        docs.push((
            if folder_record {
                "folder_record"
            } else {
                "report"
            },
            doc,
        ));
    }
    let planned = &docs
        .iter()
        .find(|(n, d)| *n == "request" && d["reports"][0]["dry_run"] == true)
        .expect("a dry run")
        .1;
    assert!(!planned["reports"][0]["planned"]
        .as_array()
        .expect("planned")
        .is_empty());
    let refs: Vec<(&str, &Value)> = docs.iter().map(|(n, d)| (*n, d)).collect();
    crate::fixtures::conforms(&refs);
}
