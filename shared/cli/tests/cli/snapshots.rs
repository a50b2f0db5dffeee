//! Snapshots, rollback and retention from the command line, on a directory
//! repository, judged by apt: a machine pinned to a snapshot keeps
//! installing what it froze, byte for byte, and a bad promotion is undone
//! by one restore.

use std::fs;
use std::path::Path;

use crate::fixtures::{ok, raptr, text};

fn hello(version: &str) -> Vec<(String, Vec<u8>)> {
    vec![(
        raptr_testkit::deb_name("hello", version, "amd64"),
        raptr_testkit::deb("hello", version, "amd64", None, version),
    )]
}

/// apt, reading `suite` of the repository at `repo` through `file:`:
/// `apt-get update` must succeed without a warning; returns the versions
/// of hello it offers, and the downloaded .deb.
fn apt_hello(root: &Path, repo: &Path, suite: &str) -> (Vec<String>, Vec<u8>) {
    let dir = root.join(format!("apt-{}", suite.replace('/', "-")));
    let _ = fs::remove_dir_all(&dir);
    let sandbox = raptr_testkit::apt::Sandbox::new(&dir);
    sandbox.sources(&format!(
        "deb [signed-by={}] file:{} {suite} main\n",
        repo.join("keys/repo.gpg").display(),
        repo.display()
    ));
    let out = sandbox.apt_get(&["update"], root);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{suite}: {t}");
    assert!(
        !t.lines()
            .any(|l| l.starts_with("W:") || l.starts_with("E:")),
        "{suite}: apt-get update warns: {t}"
    );
    let policy = sandbox.apt_cache(&["madison", "hello"], root);
    let versions: Vec<String> = text(&policy)
        .lines()
        .filter_map(|l| l.split('|').nth(1))
        .map(|v| v.trim().to_string())
        .collect();
    let dl = dir.join("dl");
    fs::create_dir_all(&dl).expect("mkdir");
    let out = sandbox.apt_get(&["download", "hello"], &dl);
    assert_eq!(out.status.code(), Some(0), "{suite}: {}", text(&out));
    let deb = fs::read_dir(&dl)
        .expect("dl")
        .flatten()
        .map(|e| fs::read(e.path()).expect("read"))
        .next()
        .expect("a .deb");
    (versions, deb)
}

#[test]
fn snapshot_restore_and_retention_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.to_str().expect("utf-8");
    let r = |args: &[&str]| {
        let mut all = vec!["--repo", repo];
        all.extend_from_slice(args);
        raptr(&all)
    };
    ok(r(&["init"]));
    let upload = |version: &str| {
        let dir = tmp.path().join(version);
        fs::create_dir_all(&dir).expect("mkdir");
        for (n, b) in hello(version) {
            fs::write(dir.join(n), b).expect("write");
        }
        ok(r(&["upload", "testing/main", dir.to_str().expect("utf-8")]));
    };
    upload("1.0-1");
    ok(r(&["link", "hello", "1.0-1", "--to", "stable"]));
    ok(r(&["publish"]));
    let t = ok(r(&["snapshot", "stable", "2026-12-01"]));
    assert!(
        t.contains(&format!(
            "file:{} stable/_2026-12-01 main",
            fs::canonicalize(&repo_dir).expect("canonical").display()
        )),
        "the deb line: {t}"
    );
    ok(r(&["publish"]));
    let t = ok(r(&["snapshots"]));
    assert!(
        t.contains("stable/_2026-12-01") && t.contains("1 snapshot(s)"),
        "{t}"
    );
    let (_, frozen) = apt_hello(tmp.path(), &repo_dir, "stable/_2026-12-01");

    // A bad promotion: 1.0-2 linked into stable, 1.0-1 unlinked.
    upload("1.0-2");
    ok(r(&["link", "hello", "1.0-2", "--to", "stable"]));
    ok(r(&["unlink", "hello", "1.0-1", "--from", "stable"]));
    ok(r(&["publish"]));
    assert_eq!(apt_hello(tmp.path(), &repo_dir, "stable").0, ["1.0-2"]);
    let (versions, deb) = apt_hello(tmp.path(), &repo_dir, "stable/_2026-12-01");
    assert_eq!(versions, ["1.0-1"], "the snapshot never changes");
    assert_eq!(deb, frozen, "byte for byte");
    let t = ok(r(&["list", "stable/_2026-12-01"]));
    assert!(
        t.contains("hello") && t.contains("1.0-1") && !t.contains("1.0-2"),
        "{t}"
    );
    let t = ok(r(&["show", "hello", "1.0-1"]));
    assert!(
        t.contains("in snapshot stable/_2026-12-01: 1 file(s)"),
        "{t}"
    );

    // Undone by one restore; its dry run says what it would do first.
    let t = ok(r(&["restore", "stable", "2026-12-01", "--dry-run"]));
    assert!(
        t.contains("would restore stable") && t.contains("link 1 file(s), unlink 1"),
        "{t}"
    );
    assert_eq!(apt_hello(tmp.path(), &repo_dir, "stable").0, ["1.0-2"]);
    let out = r(&["restore", "stable", "no-such"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("its snapshots are 2026-12-01"),
        "{}",
        text(&out)
    );
    ok(r(&["restore", "stable", "2026-12-01"]));
    ok(r(&["publish"]));
    let (versions, deb) = apt_hello(tmp.path(), &repo_dir, "stable");
    assert_eq!((versions, deb), (vec!["1.0-1".to_string()], frozen.clone()));

    // Retention tried before it is turned on: testing holds both versions.
    let t = ok(r(&["retention", "testing", "--keep", "1", "--dry-run"]));
    assert!(
        t.contains("would retire hello 1.0-1 amd64 (testing)"),
        "{t}"
    );
    ok(r(&["publish"]));
    let mut testing = apt_hello(tmp.path(), &repo_dir, "testing").0;
    testing.sort();
    assert_eq!(testing, ["1.0-1", "1.0-2"], "a dry run changes nothing");
    ok(r(&["retention", "testing", "--keep", "1"]));
    ok(r(&["publish"]));
    assert_eq!(apt_hello(tmp.path(), &repo_dir, "testing").0, ["1.0-2"]);

    // Deleted: the snapshot's suite goes after the grace period.
    let t = ok(r(&["delete-snapshot", "stable", "2026-12-01"]));
    assert!(t.contains("accepted"), "{t}");
    ok(r(&["publish"]));
    let t = ok(r(&["snapshots"]));
    assert!(t.contains("0 snapshot(s)"), "{t}");
}
