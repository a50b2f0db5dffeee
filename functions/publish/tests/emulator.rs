//! The publish function on the emulator: a primary bucket and three replica
//! buckets in three regions, the table, and the signing key in Secrets
//! Manager. Uploads are ingested by the core (the ingest function's own
//! tests cover its events); the publish function is invoked the way AWS
//! invokes it (a DynamoDB stream batch, a schedule), and every replica is
//! then read as apt reads it and its signatures checked with gpgv.
//!
//! Each test has its own buckets and secret (and namespace in the table).

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use raptr_aws::{dynamo_client, emulator_config, s3_client, DynamoTable, S3Store};
use raptr_core::config::{Config, Replica as ReplicaConfig, SigningKey, SigningKeys};
use raptr_core::ingest::{Ingest, ObjectEvent};
use raptr_core::report::Report;
use raptr_core::signing::{self, Signer};
use raptr_emulator::{Emulator, Names, REGION};
use raptr_publish::{Aws, Handler};
use raptr_store::table::Journal;
use raptr_store::{ObjectStore, PutOptions};
use raptr_testkit::apt::{client_view, lines, View};
use raptr_testkit::{deb, deb_name, source_package, File};
use serde_json::{json, Value};

const REPLICAS: [(&str, &str); 3] = [
    ("eu", "eu-west-1"),
    ("us", "us-west-2"),
    ("ap", "ap-southeast-1"),
];

struct Env {
    store: Arc<S3Store>,
    table: Arc<DynamoTable>,
    replicas: Vec<(String, S3Store)>,
    config: Config,
    signer: Signer,
    handler: Handler,
}

async fn env(tag: &str) -> Env {
    let emu = tokio::task::spawn_blocking(Emulator::shared).await.unwrap();
    let bucket = format!("raptr-publish-{tag}");
    let names = Names {
        bucket: bucket.clone(),
        replicas: REPLICAS
            .iter()
            .map(|(n, region)| (format!("{bucket}-{n}"), region.to_string()))
            .collect(),
        table: "raptr".into(),
        queue: format!("raptr-publish-{tag}"),
    };
    {
        let names = names.clone();
        tokio::task::spawn_blocking(move || emu.bootstrap(&names))
            .await
            .unwrap()
            .unwrap();
    }
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    let (armored, signer) = signing::generate(
        "raptr emulator tests <t@raptr.invalid>",
        signing::Algorithm::Ed25519,
    )
    .unwrap();
    let secret = format!("raptr/{tag}/signing-key");
    aws_sdk_secretsmanager::Client::new(&conf)
        .create_secret()
        .name(&secret)
        .secret_string(armored)
        .send()
        .await
        .unwrap();
    let mut config = Config::default_local(&bucket);
    for (name, d) in config
        .layouts
        .get_mut("default")
        .unwrap()
        .distributions
        .iter_mut()
    {
        d.architectures = ["amd64", "arm64", "source"].map(String::from).to_vec();
        // testing has `.xz` indices too (apt prefers them), stable only `.gz`.
        d.xz = name == "testing";
    }
    config.primary.region = REGION.into();
    config.replicas = REPLICAS
        .iter()
        .map(|(n, region)| ReplicaConfig {
            name: n.to_string(),
            bucket: format!("{bucket}-{n}"),
            region: region.to_string(),
            layout: "default".into(),
        })
        .collect();
    config.signing_key = SigningKeys::one(SigningKey::secret(secret));
    let store = Arc::new(S3Store::new(s3_client(&conf, None, true), &bucket));
    let table = Arc::new(DynamoTable::new(dynamo_client(&conf), "raptr", &bucket));
    raptr_core::repo::init(store.as_ref(), &bucket, &config)
        .await
        .unwrap();
    let replicas = REPLICAS
        .iter()
        .map(|(n, region)| {
            (
                n.to_string(),
                S3Store::new(
                    s3_client(&conf, Some(region), true),
                    format!("{bucket}-{n}"),
                ),
            )
        })
        .collect();
    let handler = Handler {
        bucket: bucket.clone(),
        store: store.clone(),
        table: table.clone(),
        aws: Aws {
            conf,
            path_style: true,
        },
        owner: format!("test-{tag}"),
        lease: None,
        progress_every: None,
        verify_slice: None,
        mirror_budget: None,
        // The tests sweep what they have just put.
        sweep_min_age: Some(std::time::Duration::ZERO),
        keys: Default::default(),
    };
    Env {
        store,
        table,
        replicas,
        config,
        signer,
        handler,
    }
}

/// A DynamoDB Streams batch as Lambda delivers it (the contents do not
/// matter to the function: the journal is the truth).
fn stream_event() -> Value {
    json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": REGION,
        "dynamodb": {"Keys": {"pk": {"S": "journal"}}, "SequenceNumber": "1", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:000000000000:table/raptr/stream/2026-11-21T00:00:00.000"
    }]})
}

impl Env {
    fn ingest(&self) -> Ingest {
        Ingest::new(self.store.clone(), self.table.clone(), self.config.clone())
    }

    async fn upload(&self, dist: &str, id: &str, files: &[File]) {
        for (name, bytes) in files {
            let key = format!("incoming/{dist}/main/{id}/{name}");
            self.store
                .put(&key, Bytes::copy_from_slice(bytes), PutOptions::default())
                .await
                .unwrap();
            self.ingest()
                .handle(&ObjectEvent {
                    key,
                    uploader: "tests".into(),
                })
                .await
                .unwrap();
        }
    }

    async fn request(&self, name: &str, body: Value) {
        let key =
            raptr_core::request::key_for(body.to_string().as_bytes(), &format!("{name}.json"))
                .unwrap_or_else(|| format!("requests/{name}.json"));
        self.store
            .put(&key, Bytes::from(body.to_string()), PutOptions::default())
            .await
            .unwrap();
        self.ingest()
            .handle(&ObjectEvent {
                key,
                uploader: "tests".into(),
            })
            .await
            .unwrap();
    }

    /// Every replica's view of `dist`, each checked as apt reads it.
    async fn views(&self, dist: &str) -> Vec<(String, Option<View>)> {
        let verify = |t: &str| self.signer.verify_clear(t).map_err(|e| e.to_string());
        let mut out = Vec::new();
        for (name, store) in &self.replicas {
            out.push((name.clone(), client_view(store, &verify, dist, name).await));
        }
        out
    }

    /// gpgv on every replica's InRelease and Release.gpg.
    async fn gpgv_all(&self, dist: &str) {
        let tmp = tempfile::tempdir().unwrap();
        let keyring = tmp.path().join("repo.gpg");
        std::fs::write(&keyring, self.signer.public_gpg()).unwrap();
        for (name, store) in &self.replicas {
            let published = store.get("keys/repo.gpg").await.unwrap().0;
            assert_eq!(published.as_ref(), self.signer.public_gpg(), "{name}");
            for f in ["InRelease", "Release", "Release.gpg"] {
                let body = store.get(&format!("dists/{dist}/{f}")).await.unwrap().0;
                std::fs::write(tmp.path().join(f), body).unwrap();
            }
            for args in [vec!["InRelease"], vec!["Release.gpg", "Release"]] {
                let out = Command::new("gpgv")
                    .current_dir(tmp.path())
                    .arg("--keyring")
                    .arg(&keyring)
                    .args(&args)
                    .output()
                    .expect("gpgv is installed (scripts/setup.sh)");
                assert!(
                    out.status.success(),
                    "{name}: gpgv {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

fn bundle(source: &str, version: &str) -> Vec<File> {
    let mut files = source_package(source, version, &[source]);
    for arch in ["amd64", "arm64"] {
        files.push((
            deb_name(source, version, arch),
            deb(source, version, arch, None, arch),
        ));
    }
    files
}

#[tokio::test]
async fn publishes_promotes_and_unlinks_on_three_replicas() {
    let env = env("basic").await;
    env.upload("testing", "b1", &bundle("hello", "1:1.0+git~1-1"))
        .await;
    let answer = env.handler.handle(stream_event()).await.unwrap();
    let p = &answer["publish"];
    assert_eq!(p["generation"], 1, "{answer:#}");
    for (name, _) in REPLICAS {
        assert_eq!(p["replicas"][name]["generation"], 1, "{answer:#}");
    }
    for (name, view) in env.views("testing").await {
        let v = view.unwrap_or_else(|| panic!("{name}: no InRelease"));
        assert_eq!(
            lines(&v, "main/binary-amd64/Packages"),
            ["hello 1:1.0+git~1-1 amd64"],
            "{name}"
        );
        assert_eq!(
            lines(&v, "main/binary-arm64/Packages"),
            ["hello 1:1.0+git~1-1 arm64"],
            "{name}"
        );
        assert_eq!(v.sources.len(), 1, "{name}");
    }
    env.gpgv_all("testing").await;
    let (_, eu) = &env.replicas[0];
    let inrelease = eu.head("dists/testing/InRelease").await.unwrap();
    assert_eq!(
        inrelease.cache_control.as_deref(),
        Some(raptr_core::publish::CACHE_MUTABLE)
    );
    let report = Report::read(
        env.store.as_ref(),
        "incoming/testing/main/b1/hello_1.0+git~1-1_amd64.deb",
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.generation, Some(1));
    assert_eq!(report.replicas.len(), 3);

    // Promotion by request.
    env.request("promote", json!({"action": "link", "bundle": "hello", "version": "1:1.0+git~1-1", "component": "main", "distribution": "stable"})).await;
    let answer = env.handler.handle(stream_event()).await.unwrap();
    assert_eq!(answer["publish"]["generation"], 2, "{answer:#}");
    for (name, view) in env.views("stable").await {
        assert_eq!(
            lines(&view.unwrap(), "main/binary-amd64/Packages"),
            ["hello 1:1.0+git~1-1 amd64"],
            "{name}"
        );
    }
    env.gpgv_all("stable").await;

    // Unlink from testing: gone there, still in stable.
    env.request("unlink", json!({"action": "unlink", "bundle": "hello", "version": "all", "component": "main", "distribution": "testing"})).await;
    env.handler.handle(stream_event()).await.unwrap();
    for (name, view) in env.views("testing").await {
        let v = view.unwrap();
        assert!(
            v.packages.values().all(|s| s.is_empty()) && v.sources.is_empty(),
            "{name}: {v:?}"
        );
    }
    for (name, view) in env.views("stable").await {
        assert_eq!(
            lines(&view.unwrap(), "main/binary-arm64/Packages").len(),
            1,
            "{name}"
        );
    }
    // A pool file deleted from the primary by mistake comes back from the
    // bucket's versions, as infra/README.md says (the AWS CLI, as a user).
    let bucket = &env.handler.bucket;
    let key = format!(
        "pool/main/h/hello/1.0+git~1-1/{}",
        deb_name("hello", "1:1.0+git~1-1", "arm64")
    );
    let (before, _) = env.store.get(&key).await.unwrap();
    env.store.delete(&key).await.unwrap();
    let aws = |args: &[&str]| {
        let out = Command::new("aws")
            .envs(Emulator::shared().env())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the AWS CLI runs (make setup installs it)");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "aws {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let listed: Value = serde_json::from_str(&aws(&[
        "s3api",
        "list-object-versions",
        "--bucket",
        bucket,
        "--prefix",
        &key,
        "--output",
        "json",
    ]))
    .unwrap();
    assert_eq!(listed["DeleteMarkers"][0]["IsLatest"], true, "{listed:#}");
    let version = listed["Versions"][0]["VersionId"].as_str().unwrap();
    aws(&[
        "s3api",
        "copy-object",
        "--bucket",
        bucket,
        "--key",
        &key,
        "--copy-source",
        &format!("{bucket}/{key}?versionId={version}"),
    ]);
    assert_eq!(env.store.get(&key).await.unwrap().0, before);
    // Verify finds every bucket whole.
    let answer = env
        .handler
        .handle(json!({"raptr": "verify", "dry_run": true}))
        .await
        .unwrap();
    assert_eq!(answer["verify"]["findings"], json!([]), "{answer:#}");
    assert_eq!(answer["verify"]["complete"], true, "{answer:#}");
}

#[tokio::test]
async fn invocations_at_once_lose_no_wakeup() {
    let env = env("concurrent").await;
    for i in 0..5 {
        let p = format!("pkg{i}");
        env.upload(
            "stable",
            &format!("b{i}"),
            &[(
                deb_name(&p, "1.0", "amd64"),
                deb(&p, "1.0", "amd64", None, "c"),
            )],
        )
        .await;
    }
    let mut second = env.handler.clone();
    second.owner = "test-concurrent-2".into();
    let (a, b) = tokio::join!(
        env.handler.handle(stream_event()),
        second.handle(stream_event())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a["publish"]["ran"] == true || b["publish"]["ran"] == true,
        "{a:#} {b:#}"
    );
    assert!(env.table.pending(100).await.unwrap().is_empty());
    for (name, view) in env.views("stable").await {
        assert_eq!(
            lines(&view.unwrap(), "main/binary-amd64/Packages").len(),
            5,
            "{name}"
        );
    }
}

#[tokio::test]
async fn the_schedule_sweeps_incoming_then_publishes() {
    let env = env("schedule").await;
    // An upload whose event was never delivered.
    let key = format!(
        "incoming/stable/main/lost/{}",
        deb_name("lost", "2.0", "arm64")
    );
    env.store
        .put(
            &key,
            Bytes::from(deb("lost", "2.0", "arm64", None, "s")),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let schedule = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "000000000000", "time": "2026-11-21T00:00:00Z", "region": REGION, "resources": [], "detail": {}});
    let answer = env.handler.handle(schedule).await.unwrap();
    assert_eq!(
        answer["sweep"]["redriven"].as_array().unwrap().len(),
        1,
        "{answer:#}"
    );
    assert_eq!(answer["publish"]["generation"], 1, "{answer:#}");
    for (name, view) in env.views("stable").await {
        assert_eq!(
            lines(&view.unwrap(), "main/binary-arm64/Packages"),
            ["lost 2.0 arm64"],
            "{name}"
        );
    }
}

/// Keys as operators keep them in Secrets Manager, made by GnuPG: an
/// Ed25519 signing subkey with its primary offline and its passphrase in
/// the same secret (`{"key", "passphrase"}`), and an RSA-3072 key whose
/// passphrase is a secret of its own. Both sign every replica; gpgv (as
/// apt judges it) and sqv accept each replica with either key alone. A key
/// whose passphrase is wrong fails the invocation, naming the secret, and
/// nothing is written.
#[tokio::test]
async fn keys_from_secrets_manager_with_passphrases_both_sign() {
    use raptr_testkit::gnupg::{gpgv, split_inrelease, sqv, Gpg};
    let mut env = env("gnupg").await;
    let tmp = tempfile::tempdir().unwrap();
    let gpg = Gpg::new(tmp.path());
    let a = gpg.generate(
        "A <a@raptr.invalid>",
        "ed25519",
        "cert",
        "never",
        "a phrase",
        &[],
    );
    gpg.add_subkey(&a, "ed25519", "sign", "a phrase");
    let b = gpg.generate(
        "B <b@raptr.invalid>",
        "rsa3072",
        "sign,cert",
        "never",
        "b phrase",
        &[],
    );
    let sm = aws_sdk_secretsmanager::Client::new(&env.handler.aws.conf);
    let secret = |name: &'static str, value: String| {
        let sm = sm.clone();
        async move {
            sm.create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .unwrap();
        }
    };
    let a_armored = String::from_utf8(gpg.export_secret_subkeys(&a, "a phrase")).unwrap();
    secret(
        "raptr/gnupg/a",
        json!({"key": a_armored, "passphrase": "a phrase"}).to_string(),
    )
    .await;
    let b_armored = String::from_utf8(gpg.export_secret(&b, "b phrase", false)).unwrap();
    secret("raptr/gnupg/b", b_armored).await;
    secret("raptr/gnupg/b-passphrase", "b phrase\n".into()).await;
    secret("raptr/gnupg/b-wrong", "not it".into()).await;
    let keys: SigningKeys =
        serde_json::from_value(json!([{"secret": "raptr/gnupg/a"}, {"secret": "raptr/gnupg/b", "passphrase": {"secret": "raptr/gnupg/b-passphrase"}}]))
            .unwrap();
    let write_config = |config: &Config| {
        let store = env.store.clone();
        let body = serde_json::to_vec(config).unwrap();
        async move {
            store
                .put(
                    raptr_core::keys::CONFIG_KEY,
                    Bytes::from(body),
                    PutOptions::default(),
                )
                .await
                .unwrap();
        }
    };
    env.config.signing_key = keys;
    write_config(&env.config).await;
    env.upload("testing", "g1", &bundle("hello", "1.0-1")).await;
    let answer = env.handler.handle(stream_event()).await.unwrap();
    assert_eq!(answer["publish"]["generation"], 1, "{answer:#}");

    let a_ring = tmp.path().join("a.gpg");
    std::fs::write(&a_ring, gpg.export_public(&a)).unwrap();
    let b_ring = tmp.path().join("b.gpg");
    std::fs::write(&b_ring, gpg.export_public(&b)).unwrap();
    for (name, store) in &env.replicas {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        for f in ["InRelease", "Release", "Release.gpg"] {
            let body = store.get(&format!("dists/testing/{f}")).await.unwrap().0;
            std::fs::write(dir.join(f), body).unwrap();
        }
        let keyring = store.get("keys/repo.gpg").await.unwrap().0;
        assert_eq!(
            signing::keyring_fingerprints(&keyring),
            Ok(vec![a.clone(), b.clone()]),
            "{name}"
        );
        for fpr in [&a, &b] {
            assert!(
                store.head(&format!("keys/{fpr}.gpg")).await.is_ok(),
                "{name}"
            );
        }
        let (text, sig) = split_inrelease(&dir.join("InRelease"));
        for (who, ring) in [("a", &a_ring), ("b", &b_ring)] {
            let (good, said) = gpgv(ring, &dir.join("InRelease"), None);
            assert!(good, "{name}, {who}: {said}");
            let (good, said) = gpgv(ring, &dir.join("Release.gpg"), Some(&dir.join("Release")));
            assert!(good, "{name}, {who}: {said}");
            let (good, said) = sqv(ring, &dir.join("Release.gpg"), &dir.join("Release"));
            assert!(good, "{name}, {who}: {said}");
            let (good, said) = sqv(ring, &sig, &text);
            assert!(good, "{name}, {who}: {said}");
        }
    }

    // A wrong passphrase: the invocation fails naming the secret, and no
    // bucket changes.
    let before = env.store.get("dists/testing/InRelease").await.unwrap().0;
    let mut wrong = env.config.clone();
    wrong.signing_key.0[1].passphrase = Some(raptr_core::config::Passphrase::Secret(
        "raptr/gnupg/b-wrong".into(),
    ));
    write_config(&wrong).await;
    env.upload("testing", "g2", &bundle("hello", "1.0-2")).await;
    let e = env.handler.handle(stream_event()).await.unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("secret raptr/gnupg/b") && e.contains("does not unlock"),
        "{e}"
    );
    assert_eq!(
        env.store.get("dists/testing/InRelease").await.unwrap().0,
        before
    );
    for (name, store) in &env.replicas {
        assert!(
            store
                .head("pool/main/h/hello/1.0-2/hello_1.0-2_amd64.deb")
                .await
                .is_err(),
            "{name}"
        );
    }
    // Mended, the pending upload is published.
    write_config(&env.config).await;
    let answer = env.handler.handle(stream_event()).await.unwrap();
    assert_eq!(answer["publish"]["generation"], 2, "{answer:#}");
}
