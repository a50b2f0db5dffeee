//! `raptr key generate`, `init` with its signing key, `publish`, `purge` and
//! `verify` on a local repository with a replica directory, judged by apt:
//! `apt-get update`, `download` and `source --download-only` through a
//! `file:` URI with `signed-by`.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::fixtures::{ok, raptr, text};

/// apt-get in a sandbox under `root`, trusting only `signed-by`.
fn apt(root: &Path, sources: &str, args: &[&str], cwd: &Path) -> Output {
    let sandbox = raptr_testkit::apt::Sandbox::new(root);
    sandbox.sources(sources);
    sandbox.apt_get(args, cwd)
}

#[test]
fn key_generate_writes_a_private_and_a_public_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_dir = tmp.path().join("keys");
    let t = ok(raptr(&[
        "key",
        "generate",
        "--name",
        "Example <apt@example.com>",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]));
    assert!(t.starts_with("key "), "{t}");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(out_dir.join("private.asc"))
        .expect("private")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(fs::read_to_string(out_dir.join("repo.asc"))
        .expect("asc")
        .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
    assert!(!fs::read(out_dir.join("repo.gpg")).expect("gpg").is_empty());
    // It never overwrites a key.
    let again = raptr(&[
        "key",
        "generate",
        "--name",
        "x",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(ok(raptr(&[
        "key",
        "show",
        out_dir.join("private.asc").to_str().expect("utf-8")
    ]))
    .contains("(ed25519, the primary key signs)"));
    // RSA for sites whose policy asks for it; nothing else.
    let rsa_dir = tmp.path().join("rsa");
    let t = ok(raptr(&[
        "key",
        "generate",
        "--name",
        "Example <apt@example.com>",
        "--algorithm",
        "rsa4096",
        "--out",
        rsa_dir.to_str().expect("utf-8"),
    ]));
    assert!(t.contains("(rsa4096)"), "{t}");
    assert!(ok(raptr(&[
        "key",
        "show",
        rsa_dir.join("private.asc").to_str().expect("utf-8")
    ]))
    .contains("(rsa4096, the primary key signs)"));
    let dsa = raptr(&[
        "key",
        "generate",
        "--name",
        "x",
        "--algorithm",
        "dsa",
        "--out",
        tmp.path().join("dsa").to_str().expect("utf-8"),
    ]);
    assert_eq!(dsa.status.code(), Some(2));
    assert!(text(&dsa).contains("ed25519 (the default), rsa3072 or rsa4096"));
    assert!(!tmp.path().join("dsa").exists());
}

#[test]
fn publish_then_apt_reads_the_replica() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.to_str().expect("utf-8");
    let config = tmp.path().join("raptr.json");
    fs::write(
        &config,
        r#"{
  "layouts": { "default": { "distributions": {
    "stable": { "components": ["main"], "architectures": ["amd64", "arm64", "source"] },
    "testing": { "components": ["main"], "architectures": ["amd64", "arm64", "source"] } } } },
  "primary": { "bucket": "repo", "region": "local", "layout": "default" },
  "replicas": [ { "name": "mirror", "bucket": "replica-mirror", "region": "local", "layout": "default" } ],
  "release": { "origin": "raptr-tests", "label": "raptr tests" },
  "signing_key": { "file": "../secret/signing-key.asc" }
}"#,
    )
    .expect("config");
    let t = ok(raptr(&[
        "--repo",
        repo,
        "init",
        config.to_str().expect("utf-8"),
    ]));
    assert!(t.contains("generated signing key"), "{t}");

    let build = tmp.path().join("build");
    fs::create_dir(&build).expect("mkdir");
    let version = "1:2.0+dfsg~rc1-1";
    let mut files = raptr_testkit::source_package("hello", version, &["hello"]);
    files.push((
        raptr_testkit::deb_name("hello", version, "amd64"),
        raptr_testkit::deb("hello", version, "amd64", None, "a"),
    ));
    for (name, bytes) in &files {
        fs::write(build.join(name), bytes).expect("write");
    }
    ok(raptr(&[
        "--repo",
        repo,
        "upload",
        "testing/main",
        build.to_str().expect("utf-8"),
    ]));
    let t = ok(raptr(&["--repo", repo, "publish"]));
    assert!(t.contains("published generation 1"), "{t}");
    assert!(t.contains("replica mirror: generation 1"), "{t}");

    // apt reads the replica, checks its signature, and fetches by hash.
    let replica = tmp.path().join("replica-mirror");
    let sources = format!(
        "deb [signed-by={r}/keys/repo.gpg] file:{r} testing main\ndeb-src [signed-by={r}/keys/repo.gpg] file:{r} testing main\n",
        r = replica.display()
    );
    let root = tmp.path().join("apt");
    let work = tmp.path().join("work");
    fs::create_dir(&work).expect("mkdir");
    let t = ok(apt(&root, &sources, &["update"], &work));
    assert!(!t.contains("W:") && !t.contains("E:"), "{t}");
    ok(apt(&root, &sources, &["download", "hello"], &work));
    // apt names a download after the version, its epoch's colon escaped.
    let got = fs::read(work.join("hello_1%3a2.0+dfsg~rc1-1_amd64.deb")).expect("downloaded");
    assert_eq!(got, files[3].1);
    ok(apt(
        &root,
        &sources,
        &["source", "--download-only", "hello"],
        &work,
    ));
    for (name, bytes) in &files[..3] {
        assert_eq!(
            &fs::read(work.join(name)).expect("source file"),
            bytes,
            "{name}"
        );
    }

    // A promotion by request shows in stable after the next publish.
    let promote = tmp.path().join("promote.json");
    fs::write(
        &promote,
        format!(r#"{{"action":"link","bundle":"hello","version":"{version}","component":"main","distribution":"stable"}}"#),
    )
    .expect("request");
    ok(raptr(&[
        "--repo",
        repo,
        "request",
        promote.to_str().expect("utf-8"),
    ]));
    let t = ok(raptr(&["--repo", repo, "--json", "publish"]));
    let v: serde_json::Value = serde_json::from_str(&t).expect("json");
    assert_eq!(v["generations"], serde_json::json!([2]), "{t}");
    let stable = sources.replace("testing", "stable");
    ok(apt(&root, &stable, &["update"], &work));
    fs::remove_file(work.join("hello_1%3a2.0+dfsg~rc1-1_amd64.deb")).expect("rm");
    ok(apt(&root, &stable, &["download", "hello"], &work));
    assert!(work.join("hello_1%3a2.0+dfsg~rc1-1_amd64.deb").exists());

    // Nothing to purge; every bucket verifies.
    let t = ok(raptr(&["--repo", repo, "purge", "--dry-run"]));
    assert!(t.contains("would purge 0 pool file(s)"), "{t}");
    let t = ok(raptr(&["--repo", repo, "verify"]));
    assert!(t.contains("0 problem(s)"), "{t}");
    // Damage the replica: verify finds it and repairs it from the repository.
    let deb_path = replica.join("pool/main/h/hello/2.0+dfsg~rc1-1/hello_2.0+dfsg~rc1-1_amd64.deb");
    fs::remove_file(&deb_path).expect("rm");
    let out = raptr(&["--repo", repo, "verify", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = ok(raptr(&["--repo", repo, "verify"]));
    assert!(t.contains("1 problem(s), 1 repaired"), "{t}");
    assert!(deb_path.exists());
}
