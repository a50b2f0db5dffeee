//! The operator's commands against `s3://` on the emulator: several bundles
//! in one upload, an upload refused before anything is stored, one-line
//! link and unlink with a dry run, list, show and search, and publish to a
//! replica bucket, all through the `raptr` binary with the standard AWS
//! environment.

use std::path::Path;
use std::process::{Command, Output};

use raptr_emulator::{Emulator, Names, REGION};
use serde_json::Value;

use crate::fixtures::text;

struct S3 {
    env: Vec<(String, String)>,
    repo: String,
    bucket: String,
}

impl S3 {
    fn raptr(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_raptr"))
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("RAPTR_TABLE", "raptr")
            .args(["--repo", &self.repo])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("raptr runs")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.raptr(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        text(&out)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.raptr(&all);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", text(&out)))
    }

    fn aws(&self, args: &[&str]) -> String {
        let out = Command::new("aws")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .output()
            .expect("aws runs");
        assert!(out.status.success(), "aws {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new signing key (`raptr key generate` under `dir`) stored as the
    /// secret `name`.
    fn key_in_secret(&self, dir: &Path, name: &str) {
        let keys = dir.join(name.replace('/', "-"));
        let out = Command::new(env!("CARGO_BIN_EXE_raptr"))
            .args([
                "key",
                "generate",
                "--name",
                "cli <cli@raptr.invalid>",
                "--out",
            ])
            .arg(&keys)
            .output()
            .expect("raptr runs");
        assert!(out.status.success(), "{}", text(&out));
        self.aws(&[
            "secretsmanager",
            "create-secret",
            "--name",
            name,
            "--secret-string",
            &format!("file://{}", keys.join("private.asc").display()),
        ]);
    }

    /// Every key of a bucket.
    fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self.aws(&[
            "s3api",
            "list-objects-v2",
            "--bucket",
            bucket,
            "--query",
            "Contents[].Key",
            "--output",
            "json",
        ]);
        serde_json::from_str::<Option<Vec<String>>>(&out)
            .expect("keys")
            .unwrap_or_default()
    }
}

fn setup(tmp: &Path) -> S3 {
    let emu = Emulator::shared();
    let bucket = "raptr-cli-ops".to_string();
    let replica = format!("{bucket}-eu");
    emu.bootstrap(&Names {
        bucket: bucket.clone(),
        replicas: vec![(replica.clone(), "eu-west-1".into())],
        table: "raptr".into(),
        queue: "raptr-cli-ops".into(),
    })
    .expect("bootstrap");
    let s3 = S3 {
        env: emu.env(),
        repo: format!("s3://{bucket}"),
        bucket: bucket.clone(),
    };
    s3.key_in_secret(tmp, "raptr-cli-ops/key");
    let config = serde_json::json!({
        "layouts": {"default": {"distributions": {
            "stable": {"components": ["main"], "architectures": ["amd64", "source"]},
            "testing": {"components": ["main"], "architectures": ["amd64", "source"]}}}},
        "primary": {"bucket": bucket, "region": REGION, "layout": "default"},
        "replicas": [{"name": "eu", "bucket": replica, "region": "eu-west-1", "layout": "default"}],
        "release": {"origin": "raptr", "label": "cli ops"},
        "signing_key": {"secret": "raptr-cli-ops/key"}
    });
    let path = tmp.join("raptr.json");
    std::fs::write(&path, config.to_string()).expect("write");
    s3.ok(&["init", path.to_str().expect("utf-8")]);
    s3
}

#[test]
fn inventory_one_line_changes_and_several_bundles_on_s3() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s3 = setup(tmp.path());
    let build = tmp.path().join("build");
    std::fs::create_dir(&build).expect("mkdir");
    let mut files = raptr_testkit::source_package("hello", "1.0-1", &["hello"]);
    files.push((
        raptr_testkit::deb_name("hello", "1.0-1", "amd64"),
        raptr_testkit::deb("hello", "1.0-1", "amd64", None, "s3"),
    ));
    files.push((
        raptr_testkit::deb_name("world", "2.0-1", "amd64"),
        raptr_testkit::deb("world", "2.0-1", "amd64", None, "s3"),
    ));
    for (name, bytes) in &files {
        std::fs::write(build.join(name), bytes).expect("write");
    }
    let build = build.to_str().expect("utf-8");

    // Refused before anything reaches the bucket.
    let before = s3.keys(&s3.bucket);
    let out = s3.raptr(&["upload", "unstable/main", build]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("has no distribution unstable"),
        "{}",
        text(&out)
    );
    assert_eq!(s3.keys(&s3.bucket), before);

    // Two bundles, two upload folders.
    let doc = s3.json(&["upload", "testing/main", build, "--upload-id", "ci-1"]);
    let bundles = doc["bundles"].as_array().expect("bundles");
    assert_eq!(bundles.len(), 2, "{doc:#}");
    assert_eq!(bundles[0]["folder"], "incoming/testing/main/ci-1-1/");
    assert_eq!(bundles[0]["accepted"], 4);
    assert_eq!(bundles[1]["bundle"], "world");
    assert_eq!(bundles[1]["accepted"], 1);
    assert!(doc["next"]
        .as_str()
        .expect("next")
        .contains("once the publish function has run"));
    s3.ok(&["publish"]);

    let t = s3.ok(&["list"]);
    assert!(
        t.contains("testing/main  hello  1.0-1  amd64,source  hello,source"),
        "{t}"
    );
    assert!(
        t.contains("testing/main  world  2.0-1  amd64         world"),
        "{t}"
    );
    assert!(
        t.contains("2 bundle version(s) linked in the repository, as of generation 1"),
        "{t}"
    );

    let t = s3.ok(&["link", "hello", "1.0-1", "--to", "stable", "--dry-run"]);
    assert!(t.contains("dry run: would link 4 file(s) in stable"), "{t}");
    let t = s3.ok(&["link", "hello", "1.0-1", "--to", "stable"]);
    assert!(
        t.contains("accepted: requests/link/stable/main/link-hello-"),
        "{t}"
    );
    let t = s3.ok(&["unlink", "world", "all", "--from", "testing"]);
    assert!(
        t.contains("accepted: requests/unlink/testing/main/unlink-world-"),
        "{t}"
    );
    let t = s3.ok(&["list"]);
    assert!(
        t.contains(
            "as of generation 1; 2 accepted file(s) and request(s) wait for the next publish"
        ),
        "{t}"
    );
    s3.ok(&["publish"]);

    let doc = s3.json(&["list", "stable"]);
    let links = doc["links"].as_array().expect("links");
    assert_eq!(links.len(), 1, "{doc:#}");
    assert_eq!(links[0]["bundle"], "hello");
    assert_eq!(doc["as_of"]["generation"], 2);
    let doc = s3.json(&["show", "world"]);
    let v = &doc["versions"][0];
    assert_eq!(v["version"], "2.0-1");
    assert!(
        v["linked_in"].as_object().expect("linked_in").is_empty(),
        "{doc:#}"
    );
    assert!(
        v["unreferenced"]["world_2.0-1_amd64.deb"]["purge_after"].is_string(),
        "{doc:#}"
    );
    assert!(v["uploaders"][0]
        .as_str()
        .expect("uploader")
        .starts_with("cli:"));
    let t = s3.ok(&["search", "hel*"]);
    assert!(t.contains("stable/main   hello  1.0-1"), "{t}");

    // The replica bucket serves what the listing says.
    let replica = s3.keys(&format!("{}-eu", s3.bucket));
    assert!(
        replica.iter().any(|k| k == "dists/stable/InRelease"),
        "{replica:?}"
    );
    assert!(replica
        .iter()
        .any(|k| k == "pool/main/h/hello/1.0-1/hello_1.0-1_amd64.deb"));
    let packages = s3.aws(&[
        "s3",
        "cp",
        &format!(
            "s3://{}-eu/dists/stable/main/binary-amd64/Packages",
            s3.bucket
        ),
        "-",
    ]);
    assert!(packages.contains("Package: hello\n"), "{packages}");
    assert!(!packages.contains("Package: world\n"), "{packages}");
}

/// `init` refuses, before writing anything, what could never publish from
/// the bucket; AWS errors are one sentence naming what and why, the SDK's
/// account only with `--verbose`.
#[test]
fn init_refuses_what_cannot_work_and_aws_errors_are_one_sentence() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let emu = Emulator::shared();
    let bucket = "raptr-cli-init".to_string();
    emu.bootstrap(&Names {
        bucket: bucket.clone(),
        replicas: Vec::new(),
        table: "raptr".into(),
        queue: "raptr-cli-init".into(),
    })
    .expect("bootstrap");
    let s3 = S3 {
        env: emu.env(),
        repo: format!("s3://{bucket}"),
        bucket: bucket.clone(),
    };

    // No document: refused, with the way to get one.
    let out = s3.raptr(&["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("init --example > raptr.json"),
        "{}",
        text(&out)
    );
    let example = s3.raptr(&["init", "--example"]);
    assert_eq!(example.status.code(), Some(0), "{}", text(&example));
    let mut doc: Value = serde_json::from_slice(&example.stdout).expect("a document");
    assert_eq!(doc["primary"]["bucket"], bucket.as_str());
    assert_eq!(doc["primary"]["region"], REGION);
    assert_eq!(doc["signing_key"]["secret"], "raptr/signing-key");
    assert!(s3.keys(&bucket).is_empty(), "nothing written");

    // The example as it is: its secret does not exist yet.
    let path = tmp.path().join("raptr.json");
    std::fs::write(&path, doc.to_string()).expect("write");
    let path = path.to_str().expect("utf-8");
    let out = s3.raptr(&["init", path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("the signing key cannot be used: "), "{t}");
    assert!(
        t.contains("secret raptr/signing-key: it does not exist"),
        "{t}"
    );
    assert!(t.lines().count() == 1 && t.len() < 400, "one sentence: {t}");
    assert!(!t.contains("ServiceError"), "{t}");
    let out = s3.raptr(&["--verbose", "init", path]);
    assert!(
        text(&out).contains("ResourceNotFoundException"),
        "{}",
        text(&out)
    );
    assert!(s3.keys(&bucket).is_empty(), "nothing written");

    // A key in place, but a replica bucket that does not exist.
    s3.key_in_secret(tmp.path(), "raptr/signing-key");
    doc["replicas"] = serde_json::json!([
        {"name": "eu", "bucket": "raptr-cli-init-missing", "region": "eu-west-1", "layout": "default"}
    ]);
    std::fs::write(path, doc.to_string()).expect("write");
    let out = s3.raptr(&["init", path]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("replica eu (bucket raptr-cli-init-missing in eu-west-1) cannot be used: ")
            && t.contains("no such bucket"),
        "{t}"
    );
    assert!(s3.keys(&bucket).is_empty(), "nothing written");

    // Another bucket's document.
    doc["replicas"] = serde_json::json!([]);
    doc["primary"]["bucket"] = "raptr-cli-other".into();
    std::fs::write(path, doc.to_string()).expect("write");
    let out = s3.raptr(&["init", path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("the document's primary bucket is raptr-cli-other"),
        "{}",
        text(&out)
    );

    // Mended: initialised.
    doc["primary"]["bucket"] = bucket.as_str().into();
    std::fs::write(path, doc.to_string()).expect("write");
    s3.ok(&["init", path]);

    // A bucket that does not exist, and credentials that are refused.
    let mut missing = S3 {
        env: emu.env(),
        repo: "s3://raptr-cli-no-such-bucket".into(),
        bucket: String::new(),
    };
    let out = missing.raptr(&["list"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("s3://raptr-cli-no-such-bucket: ") && t.contains("no such bucket"),
        "{t}"
    );
    assert!(!t.contains("not a raptr repository"), "{t}");
    missing
        .env
        .retain(|(k, _)| k != "AWS_REGION" && k != "AWS_DEFAULT_REGION");
    let out = missing.raptr(&["list"]);
    assert!(
        text(&out).contains("no AWS region is set: set AWS_REGION"),
        "{}",
        text(&out)
    );
}
