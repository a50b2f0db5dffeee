//! `raptr --repo DIR init|upload|request` on a local directory repository.

use std::fs;

use crate::fixtures::{raptr, text};

#[test]
fn init_upload_and_request_on_a_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().expect("utf-8");

    // Not a repository yet.
    let out = raptr(&["--repo", repo, "upload", "stable/main", "x.deb"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let out = raptr(&["--repo", repo, "init"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("initialised"), "{}", text(&out));
    let out = raptr(&["--repo", repo, "init"]);
    assert!(text(&out).contains("already initialised"), "{}", text(&out));
    // A different document: refused, with the way to change it.
    let config = tmp.path().join("repo/config/raptr.json");
    let before = fs::read_to_string(&config).expect("config");
    let other = tmp.path().join("other.json");
    fs::write(
        &other,
        before.replace("\"label\": \"raptr\"", "\"label\": \"other\""),
    )
    .expect("write");
    let out = raptr(&["--repo", repo, "init", other.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("write the new document over config/raptr.json"),
        "{}",
        text(&out)
    );
    assert_eq!(fs::read_to_string(&config).expect("config"), before);

    // A bundle: a source package and a binary, uploaded as one folder.
    let build = tmp.path().join("build");
    fs::create_dir(&build).expect("mkdir");
    let mut files = raptr_testkit::source_package("hello", "1.0-1", &["hello"]);
    files.push((
        raptr_testkit::deb_name("hello", "1.0-1", "amd64"),
        raptr_testkit::deb("hello", "1.0-1", "amd64", None, "a"),
    ));
    for (name, bytes) in &files {
        fs::write(build.join(name), bytes).expect("write");
    }
    let out = raptr(&[
        "--repo",
        repo,
        "upload",
        "stable/main",
        build.to_str().expect("utf-8"),
        "--upload-id",
        "build-1",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("4 object(s), 4 accepted, 0 skipped, 0 rejected, 0 pending"),
        "{t}"
    );
    let pool = tmp.path().join("repo/pool/main/h/hello/1.0-1");
    for (name, bytes) in &files {
        assert_eq!(&fs::read(pool.join(name)).expect("in the pool"), bytes);
    }
    assert!(pool.join("manifest.json").is_file());

    // Other bytes under the same name: rejected, exit 1, pool unchanged.
    let other = tmp.path().join("hello_1.0-1_amd64.deb");
    fs::write(
        &other,
        raptr_testkit::deb("hello", "1.0-1", "amd64", None, "b"),
    )
    .expect("write");
    let out = raptr(&[
        "--repo",
        repo,
        "upload",
        "stable/main",
        other.to_str().expect("utf-8"),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("rejected: hello_1.0-1_amd64.deb: ") && t.contains("different contents"),
        "{t}"
    );
    assert_eq!(
        &fs::read(pool.join("hello_1.0-1_amd64.deb")).expect("pool"),
        &files[3].1
    );

    // Requests.
    let good = tmp.path().join("promote.json");
    fs::write(
        &good,
        r#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"testing"}"#,
    )
    .expect("write");
    let out = raptr(&["--repo", repo, "request", good.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("accepted: requests/link/testing/main/promote.json"),
        "{}",
        text(&out)
    );
    let bad = tmp.path().join("bad.json");
    fs::write(&bad, r#"{"action":"link","bundle":"hello","version":"all","component":"main","distribution":"sid"}"#)
        .expect("write");
    let out = raptr(&[
        "--repo",
        repo,
        "--json",
        "request",
        bad.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["reports"][0]["status"], "rejected");
    assert!(doc["reports"][0]["reason"]
        .as_str()
        .expect("reason")
        .contains("\"sid\" is not a distribution"));

    // A command that needs a repository, without one.
    let out = raptr(&["request", good.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--repo"));
}

#[test]
fn uploads_started_together_get_folders_of_their_own() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().expect("utf-8");
    let out = raptr(&["--repo", repo, "init"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Eight uploads of eight bundles at once: with ids made from the time
    // alone, two in one millisecond shared a folder and rejected each other.
    let paths: Vec<_> = (0..8)
        .map(|i| {
            let name = format!("together{i}");
            let path = tmp.path().join(format!("{name}_1.0_amd64.deb"));
            fs::write(&path, raptr_testkit::deb(&name, "1.0", "amd64", None, "t")).expect("write");
            path
        })
        .collect();
    let children: Vec<_> = paths
        .iter()
        .map(|p| {
            std::process::Command::new(env!("CARGO_BIN_EXE_raptr"))
                .args(["--repo", repo, "upload", "testing/main"])
                .arg(p)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let folders = fs::read_dir(tmp.path().join("repo/reports/incoming/testing/main"))
        .expect("reports")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .count();
    assert_eq!(folders, 8, "one upload folder each");
}
