//! End to end on the emulator, judged by apt: bundles uploaded with the AWS
//! CLI's `aws s3 cp`, requests likewise, the S3 events delivered by the
//! emulator to the ingest function and the journal to the publish function
//! (in-process, [`raptr_e2e::Dispatcher`]), and then the real `apt-get`, in a
//! sandbox with `signed-by`, reading each replica bucket over HTTP.
//!
//! Each test has its own primary bucket, three replica buckets in three
//! regions, queue and signing key, on one emulator per test process.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bytes::Bytes;
use raptr_aws::{emulator_config, s3_client, S3Store};
use raptr_core::config::{Config, Replica, SigningKey, SigningKeys};
use raptr_core::signing::{self, Signer};
use raptr_e2e::{Dispatcher, Round, Target};
use raptr_emulator::{Emulator, Names, REGION};
use raptr_store::{ObjectStore, PutOptions, StoreError};
use raptr_testkit::apt::{client_view, Sandbox};
use raptr_testkit::{deb, deb_name, source_package, File};
use serde_json::Value;

const REPLICAS: [(&str, &str); 3] = [
    ("eu", "eu-west-1"),
    ("us", "us-west-2"),
    ("ap", "ap-southeast-1"),
];

/// The awkward version: an epoch, `+` and `~`.
const VERSION: &str = "1:2.0+dfsg~rc1-1";

struct Stack {
    emu: &'static Emulator,
    conf: aws_config::SdkConfig,
    bucket: String,
    primary: S3Store,
    dispatcher: Dispatcher,
    /// (name, bucket, store)
    replicas: Vec<(String, String, S3Store)>,
    public_gpg: Vec<u8>,
    signer: Signer,
    tmp: tempfile::TempDir,
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output, what: &str) -> String {
    let t = text(&out);
    assert!(out.status.success(), "{what}: {:?}\n{t}", out.status);
    t
}

async fn stack(tag: &str) -> Stack {
    let emu = tokio::task::spawn_blocking(Emulator::shared).await.unwrap();
    stack_on(emu, tag, |_| {}).await
}

/// A stack on `emu`, its configuration changed by `tweak` before `init`.
async fn stack_on(emu: &'static Emulator, tag: &str, tweak: impl FnOnce(&mut Config)) -> Stack {
    let bucket = format!("raptr-e2e-{tag}");
    let names = Names {
        bucket: bucket.clone(),
        replicas: REPLICAS
            .iter()
            .map(|(n, region)| (format!("{bucket}-{n}"), region.to_string()))
            .collect(),
        table: "raptr".into(),
        queue: format!("raptr-e2e-{tag}"),
    };
    {
        let names = names.clone();
        tokio::task::spawn_blocking(move || emu.bootstrap(&names))
            .await
            .unwrap()
            .unwrap();
    }
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    // The key as operators keep it: made by GnuPG, primary offline, the
    // signing subkey protected by a passphrase kept in the same secret.
    let keys = tempfile::tempdir().unwrap();
    let gpg = raptr_testkit::gnupg::Gpg::new(keys.path());
    let uid = "raptr e2e <e2e@raptr.invalid>";
    let fpr = gpg.generate(uid, "ed25519", "cert", "never", "e2e phrase", &[]);
    gpg.add_subkey(&fpr, "ed25519", "sign", "e2e phrase");
    let armored = String::from_utf8(gpg.export_secret_subkeys(&fpr, "e2e phrase")).unwrap();
    let signer = Signer::new(vec![signing::Key::load(
        armored.as_bytes(),
        "e2e key",
        Some("e2e phrase"),
    )
    .unwrap()])
    .unwrap();
    let secret = format!("raptr/e2e-{tag}/signing-key");
    aws_sdk_secretsmanager::Client::new(&conf)
        .create_secret()
        .name(&secret)
        .secret_string(serde_json::json!({"key": armored, "passphrase": "e2e phrase"}).to_string())
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
        .map(|(n, region)| Replica {
            name: n.to_string(),
            bucket: format!("{bucket}-{n}"),
            region: region.to_string(),
            layout: "default".into(),
        })
        .collect();
    config.signing_key = SigningKeys::one(SigningKey::secret(secret));
    tweak(&mut config);
    let primary = S3Store::new(s3_client(&conf, None, true), &bucket);
    raptr_core::repo::init(&primary, &bucket, &config)
        .await
        .unwrap();
    let dispatcher = Dispatcher::connect(
        &conf,
        true,
        Target {
            bucket: bucket.clone(),
            table: names.table.clone(),
            queue: names.queue.clone(),
        },
    )
    .await
    .unwrap();
    let replicas = REPLICAS
        .iter()
        .map(|(n, region)| {
            let b = format!("{bucket}-{n}");
            let store = S3Store::new(s3_client(&conf, Some(region), true), &b);
            (n.to_string(), b, store)
        })
        .collect();
    Stack {
        emu,
        conf,
        bucket,
        primary,
        dispatcher,
        replicas,
        public_gpg: signer.public_gpg().to_vec(),
        signer,
        tmp: tempfile::tempdir().unwrap(),
    }
}

/// The hello bundle at [`VERSION`]: source package, amd64 and arm64 binaries
/// and an `Architecture: all` package.
fn bundle() -> Vec<File> {
    let mut files = source_package("hello", VERSION, &["hello", "hello-doc"]);
    for arch in ["amd64", "arm64"] {
        files.push((
            deb_name("hello", VERSION, arch),
            deb("hello", VERSION, arch, None, arch),
        ));
    }
    files.push((
        deb_name("hello-doc", VERSION, "all"),
        deb("hello-doc", VERSION, "all", Some("hello"), "doc"),
    ));
    files
}

impl Stack {
    fn aws(&self, args: &[&str]) -> Output {
        Command::new("aws")
            .envs(self.emu.env())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the AWS CLI runs (make setup installs it)")
    }

    /// A CI job's upload: the files in a folder, `aws s3 cp --recursive`
    /// into `incoming/DIST/COMPONENT/ID/`.
    fn upload(&self, dist_component: &str, id: &str, files: &[File]) {
        let dir = self.tmp.path().join("uploads").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let dest = format!("s3://{}/incoming/{dist_component}/{id}/", self.bucket);
        ok(
            self.aws(&["s3", "cp", "--recursive", dir.to_str().unwrap(), &dest]),
            "aws s3 cp",
        );
    }

    /// A release manager's request: `aws s3 cp` to the place under
    /// `requests/` its body names; returns its report's key.
    fn request(&self, name: &str, body: &str) -> String {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, body).unwrap();
        let key = raptr_core::request::key_for(body.as_bytes(), name)
            .unwrap_or_else(|| format!("requests/{name}"));
        let dest = format!("s3://{}/{key}", self.bucket);
        ok(
            self.aws(&["s3", "cp", path.to_str().unwrap(), &dest]),
            "aws s3 cp",
        );
        format!("s3://{}/reports/{key}.json", self.bucket)
    }

    fn report(&self, url: &str) -> Value {
        let t = ok(self.aws(&["s3", "cp", url, "-"]), url);
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("{url}: {e}\n{t}"))
    }

    /// The functions run; every replica must then carry the generation.
    async fn dispatch(&self) -> Round {
        let round = self.dispatcher.round().await.unwrap();
        let p = &round.publish["publish"];
        assert_eq!(p["ran"], Value::Bool(true), "{:#}", round.publish);
        for (name, _, _) in &self.replicas {
            let r = &p["replicas"][name];
            assert!(r["error"].is_null(), "replica {name} lags: {r}");
            assert_eq!(r["generation"], p["generation"], "replica {name}");
        }
        round
    }

    fn url(&self, bucket: &str) -> String {
        format!("{}/{bucket}", self.emu.endpoint())
    }

    /// A fresh apt sandbox reading `bucket` over HTTP for `dist`, with the
    /// key fetched from the bucket as a user fetches it; returns the
    /// sandbox and its download directory.
    fn apt(&self, name: &str, bucket: &str, dist: &str) -> (Sandbox, PathBuf) {
        let dir = self.tmp.path().join(format!("apt-{name}-{dist}"));
        let _ = std::fs::remove_dir_all(&dir);
        let sandbox = Sandbox::new(&dir);
        let key = dir.join("repo.gpg");
        fetch(&format!("{}/keys/repo.gpg", self.url(bucket)), &key)
            .unwrap_or_else(|e| panic!("{bucket}: keys/repo.gpg: {e}"));
        assert_eq!(std::fs::read(&key).unwrap(), self.public_gpg, "{bucket}");
        let url = self.url(bucket);
        let k = key.display();
        sandbox.sources(&format!(
            "deb [signed-by={k}] {url} {dist} main\ndeb-src [signed-by={k}] {url} {dist} main\n"
        ));
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        (sandbox, work)
    }
}

/// An anonymous HTTP GET by apt's own downloader.
fn fetch(url: &str, to: &Path) -> Result<(), String> {
    let out = Command::new("/usr/lib/apt/apt-helper")
        .args(["-o", "APT::Sandbox::User=root", "download-file", url])
        .arg(to)
        .output()
        .map_err(|e| format!("apt-helper: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    }
}

fn update_cleanly(sandbox: &Sandbox, work: &Path, who: &str) {
    let t = ok(sandbox.apt_get(&["update"], work), who);
    assert!(!t.contains("W:") && !t.contains("E:"), "{who}: {t}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_serves_apt_what_was_uploaded() {
    let s = stack("serve").await;
    let files = bundle();
    s.upload("testing/main", "build-1", &files);
    let round = s.dispatch().await;
    let accepted = round
        .outcomes
        .iter()
        .flat_map(|o| o["settled"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["status"] == "accepted")
        .count();
    assert_eq!(accepted, files.len(), "{:#?}", round.lines());
    // The uploader learns when apt will see it.
    let report = s.report(&format!(
        "s3://{}/reports/incoming/testing/main/build-1/{}.json",
        s.bucket,
        deb_name("hello", VERSION, "amd64")
    ));
    assert_eq!(report["status"], "accepted", "{report:#}");
    assert_eq!(report["generation"], round.publish["publish"]["generation"]);
    assert_eq!(
        report["replicas"].as_object().unwrap().len(),
        3,
        "{report:#}"
    );

    let by_name = |n: &str| &files.iter().find(|(f, _)| f == n).unwrap().1;
    for (name, bucket, _) in &s.replicas {
        let who = format!("replica {name} ({bucket})");
        let (apt, work) = s.apt(name, bucket, "testing");
        update_cleanly(&apt, &work, &who);
        // An Architecture: all package is in amd64's Packages.
        ok(
            apt.apt_get(&["download", "hello", "hello-doc"], &work),
            &who,
        );
        // apt names downloads after the version, the epoch's colon escaped.
        for (pkg, arch) in [("hello", "amd64"), ("hello-doc", "all")] {
            let got = std::fs::read(work.join(format!("{pkg}_1%3a2.0+dfsg~rc1-1_{arch}.deb")))
                .unwrap_or_else(|e| panic!("{who}: {pkg}: {e}"));
            assert_eq!(&got, by_name(&deb_name(pkg, VERSION, arch)), "{who}: {pkg}");
        }
        ok(
            apt.apt_get(&["source", "--download-only", "hello"], &work),
            &who,
        );
        for (f, bytes) in &files[..3] {
            assert_eq!(&std::fs::read(work.join(f)).unwrap(), bytes, "{who}: {f}");
        }
    }
    // apt reads replicas only: the primary bucket is private.
    let err = fetch(
        &format!("{}/dists/testing/InRelease", s.url(&s.bucket)),
        &s.tmp.path().join("primary-inrelease"),
    )
    .expect_err("the primary bucket must refuse anonymous reads");
    assert!(err.contains("403"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_and_unlink_by_request_are_visible_to_apt() {
    let s = stack("promote").await;
    s.upload("testing/main", "build-2", &bundle());
    s.dispatch().await;
    let (_, bucket, _) = &s.replicas[1];

    // Not in stable yet.
    let (apt, work) = s.apt("before", bucket, "stable");
    update_cleanly(&apt, &work, "stable before promotion");
    let t = text(&apt.apt_get(&["download", "hello"], &work));
    assert!(t.contains("Unable to locate package hello"), "{t}");

    let report = s.request(
        "promote-hello.json",
        &format!(r#"{{"action": "link", "bundle": "hello", "version": "{VERSION}", "component": "main", "distribution": "stable"}}"#),
    );
    let round = s.dispatch().await;
    let r = s.report(&report);
    assert_eq!(r["status"], "accepted", "{r:#}");
    assert_eq!(
        r["generation"], round.publish["publish"]["generation"],
        "{r:#}"
    );
    let (apt, work) = s.apt("promoted", bucket, "stable");
    update_cleanly(&apt, &work, "stable after promotion");
    ok(apt.apt_get(&["download", "hello"], &work), "stable");
    assert!(work.join("hello_1%3a2.0+dfsg~rc1-1_amd64.deb").exists());

    // Withdrawn from testing: apt no longer finds it there; stable keeps it.
    let report = s.request(
        "unlink-hello.json",
        &format!(r#"{{"action": "unlink", "bundle": "hello", "version": "{VERSION}", "component": "main", "distribution": "testing"}}"#),
    );
    s.dispatch().await;
    assert_eq!(s.report(&report)["status"], "accepted");
    let (apt, work) = s.apt("unlinked", bucket, "testing");
    update_cleanly(&apt, &work, "testing after unlink");
    let t = text(&apt.apt_get(&["download", "hello"], &work));
    assert!(t.contains("Unable to locate package hello"), "{t}");
    let (apt, work) = s.apt("kept", bucket, "stable");
    update_cleanly(&apt, &work, "stable after unlink from testing");
    ok(
        apt.apt_get(&["download", "hello"], &work),
        "stable keeps it",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apt_refuses_tampering_and_fetches_by_hash() {
    let s = stack("tamper").await;
    s.upload("testing/main", "build-3", &bundle());
    s.dispatch().await;
    let [(_, by_hash_bucket, by_hash), (_, index_bucket, index), (_, signed_bucket, signed)] =
        &s.replicas[..]
    else {
        unreachable!()
    };

    // By hash: with every canonical index path gone, apt still updates
    // (from dists/.../by-hash/SHA256/<digest>) and downloads.
    let mut removed = 0;
    for prefix in [
        "dists/testing/main/binary-amd64/",
        "dists/testing/main/source/",
    ] {
        for meta in by_hash.list(prefix).await.unwrap() {
            let key = meta.key;
            if !key.contains("/by-hash/") {
                by_hash.delete(&key).await.unwrap();
                removed += 1;
            }
        }
    }
    assert!(removed >= 4, "removed {removed} canonical indices");
    let (apt, work) = s.apt("by-hash", by_hash_bucket, "testing");
    update_cleanly(&apt, &work, "by-hash only");
    ok(apt.apt_get(&["download", "hello"], &work), "by-hash only");
    ok(
        apt.apt_get(&["source", "--download-only", "hello"], &work),
        "by-hash only",
    );

    // A tampered index, by-hash copies included: apt refuses it.
    let (apt, work) = s.apt("tampered-index", index_bucket, "testing");
    for meta in index
        .list("dists/testing/main/binary-amd64/")
        .await
        .unwrap()
    {
        let key = meta.key;
        let (bytes, _) = index.get(&key).await.unwrap();
        let mut bytes = bytes.to_vec();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        index
            .put(&key, bytes.into(), PutOptions::default())
            .await
            .unwrap();
    }
    let out = apt.apt_get(&["update"], &work);
    let t = text(&out);
    assert!(!out.status.success(), "apt accepted a tampered index:\n{t}");
    assert!(t.contains("Hash Sum mismatch"), "{t}");

    // A tampered InRelease: the signature check is live.
    let (apt, work) = s.apt("tampered-release", signed_bucket, "testing");
    let (bytes, _) = signed.get("dists/testing/InRelease").await.unwrap();
    let forged = String::from_utf8(bytes.to_vec())
        .unwrap()
        .replace("Label: raptr", "Label: evil");
    assert!(forged.contains("Label: evil"));
    signed
        .put(
            "dists/testing/InRelease",
            forged.into_bytes().into(),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let out = apt.apt_get(&["update"], &work);
    let t = text(&out);
    assert!(
        !out.status.success(),
        "apt accepted a forged InRelease:\n{t}"
    );
    assert!(t.contains("BADSIG") || t.contains("invalid"), "{t}");
    let t = text(&apt.apt_get(&["download", "hello"], &work));
    assert!(t.contains("Unable to locate package hello"), "{t}");
}

/// The lease of a publisher process in [`a_publisher_killed_at_random_points_never_breaks_apt`].
const KILL_LEASE_SECONDS: u64 = 2;

/// The lease of a publisher the stop test pauses: long enough that a
/// publisher slowed by a loaded machine still renews it in time while it
/// runs (with 2 s, a renewal late by under a second lost it), short enough
/// to wait out.
const STOP_LEASE_SECONDS: u64 = 6;

impl Stack {
    /// The publish function as a process of its own (`raptr-dispatch
    /// --invoke`), with a short lease so that a killed one is replaced soon.
    fn publisher_process(&self) -> std::process::Child {
        self.publisher_process_with(&[("RUST_LOG", "warn")])
    }

    /// [`Stack::publisher_process`] with more of the environment set.
    fn publisher_process_with(&self, env: &[(&str, &str)]) -> std::process::Child {
        let target = self.dispatcher.target();
        Command::new(env!("CARGO_BIN_EXE_raptr-dispatch"))
            .envs(self.emu.env())
            .env("RAPTR_BUCKET", &target.bucket)
            .env("RAPTR_TABLE", &target.table)
            .env("RAPTR_QUEUE", &target.queue)
            .env("RAPTR_LEASE_SECONDS", KILL_LEASE_SECONDS.to_string())
            .envs(env.iter().copied())
            .args(["--invoke", r#"{"raptr": "publish"}"#])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("raptr-dispatch runs")
    }

    /// Every replica as apt sees `dist`: `apt-get update` without a warning,
    /// and every index the Release lists, and every pool file they name,
    /// present with its hash. Returns each replica's amd64 packages.
    async fn apt_on_every_replica(&self, dist: &str, step: &str) -> Vec<Vec<String>> {
        let verify = |t: &str| self.signer.verify_clear(t).map_err(|e| e.to_string());
        let mut out = Vec::new();
        for (name, bucket, store) in &self.replicas {
            let who = format!("{step}: replica {name}, {dist}");
            let (apt, work) = self.apt(name, bucket, dist);
            update_cleanly(&apt, &work, &who);
            let view = client_view(store, &verify, dist, &who)
                .await
                .unwrap_or_else(|| panic!("{who}: no InRelease"));
            out.push(raptr_testkit::apt::lines(
                &view,
                "main/binary-amd64/Packages",
            ));
        }
        out
    }
}

/// A small generator of kill points (xorshift), seeded from the clock; a
/// failure names every kill point so far.
fn next_random(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// The publisher, as a process, killed (SIGKILL) at a random point of each
/// of several publishes while promotions and unlinks keep coming: after
/// every kill apt updates cleanly from every replica and finds every file
/// the indices name; then one more run converges on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_killed_at_random_points_never_breaks_apt() {
    let s = stack("kill").await;
    s.upload("testing/main", "build-1", &bundle());
    s.dispatch().await;
    let link = |dist: &str, action: &str| {
        format!(
            r#"{{"action": "{action}", "bundle": "hello", "version": "{VERSION}", "component": "main", "distribution": "{dist}"}}"#
        )
    };
    // How long a whole publish takes here, as a process: the range the
    // kill points are drawn from.
    s.request("measure.json", &link("stable", "link"));
    s.dispatcher.ingest().await.unwrap();
    let started = std::time::Instant::now();
    let out = s.publisher_process().wait_with_output().unwrap();
    let whole = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    let hello = [
        "hello 1:2.0+dfsg~rc1-1 amd64",
        "hello-doc 1:2.0+dfsg~rc1-1 all",
    ];
    for seen in s.apt_on_every_replica("stable", "measured").await {
        assert_eq!(seen, hello);
    }

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut kills = Vec::new();
    const ROUNDS: u32 = 6;
    for round in 1..=ROUNDS {
        // Unlink, link, unlink, ... from stable, and the same in testing
        // in the opposite phase: every publish has work on both.
        let (stable, testing) = if round % 2 == 1 {
            ("unlink", "link")
        } else {
            ("link", "unlink")
        };
        s.request(&format!("stable-{round}.json"), &link("stable", stable));
        s.request(&format!("testing-{round}.json"), &link("testing", testing));
        s.dispatcher.ingest().await.unwrap();
        // One point in each sixth of the run: early, late and between.
        let within = (next_random(&mut seed) % 1000) as f64 / 1000.0;
        let at = whole.mul_f64((f64::from(round - 1) + within) / f64::from(ROUNDS));
        kills.push(at);
        let step =
            format!("round {round}, killed after {at:?} of {whole:?}; kills so far {kills:?}");
        let mut child = s.publisher_process();
        tokio::time::sleep(at).await;
        let _ = child.kill();
        let _ = child.wait();
        // Old or new, but whole, everywhere.
        for dist in ["stable", "testing"] {
            for seen in s.apt_on_every_replica(dist, &step).await {
                assert!(seen.is_empty() || seen == hello, "{step}: {dist}: {seen:?}");
            }
        }
        // The dead publisher's lease runs out before the next one starts.
        tokio::time::sleep(std::time::Duration::from_millis(
            KILL_LEASE_SECONDS * 1000 + 300,
        ))
        .await;
    }
    // The last round linked hello in stable and unlinked it from testing.
    let round = s.dispatch().await;
    let p = &round.publish["publish"];
    assert!(p["replicas"]
        .as_object()
        .unwrap()
        .values()
        .all(|r| r["generation"] == p["generation"]));
    for (dist, expected) in [("stable", &hello[..]), ("testing", &[][..])] {
        for seen in s.apt_on_every_replica(dist, "converged").await {
            assert_eq!(seen, expected, "{dist}, after kills at {kills:?}");
        }
    }
    let (apt, work) = s.apt("eu", &s.replicas[0].1, "stable");
    update_cleanly(&apt, &work, "converged");
    ok(apt.apt_get(&["download", "hello"], &work), "converged");
}

/// Each bucket's InRelease of `dist` (primary first, then the replicas),
/// with its Date.
async fn inreleases(s: &Stack, dist: &str) -> Vec<(String, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stores: Vec<(&str, &S3Store)> = vec![("primary", &s.primary)];
    stores.extend(s.replicas.iter().map(|(n, _, st)| (n.as_str(), st)));
    for (who, store) in stores {
        let key = format!("dists/{dist}/InRelease");
        let (body, _) = store.get(&key).await.unwrap();
        let date = std::str::from_utf8(&body)
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("Date: ")))
            .and_then(raptr_core::time::parse_rfc2822)
            .unwrap_or_else(|| panic!("{who}: {key} has no Date"));
        out.push((who.to_string(), date, body.to_vec()));
    }
    out
}

/// SIGSTOP or SIGCONT to a process.
fn signal(child: &std::process::Child, sig: &str) {
    let out = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "kill {sig}: {}", text(&out));
}

/// The publisher, as a process, stopped (SIGSTOP) in the middle of a
/// publish (as it starts a generation, or while it copies to a replica,
/// as its log says) for longer than its lease; another
/// publisher publishes the next change meanwhile; the first is resumed
/// (SIGCONT). On every bucket the InRelease never goes back (and stays
/// exactly the second one's when the first ends with an error), and apt
/// updates cleanly from every replica; one more run converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_stopped_past_its_lease_never_turns_a_release_back() {
    let s = stack("stop").await;
    s.upload("testing/main", "build-1", &bundle());
    s.dispatch().await;
    let link = |dist: &str, action: &str| {
        format!(
            r#"{{"action": "{action}", "bundle": "hello", "version": "{VERSION}", "component": "main", "distribution": "{dist}"}}"#
        )
    };
    s.request("stable-0.json", &link("stable", "link"));
    s.dispatch().await;
    const ROUNDS: u32 = 4;
    for round in 1..=ROUNDS {
        let action = |odd: &'static str, even: &'static str| {
            if round % 2 == 1 {
                odd
            } else {
                even
            }
        };
        s.request(
            &format!("stable-{round}.json"),
            &link("stable", action("unlink", "link")),
        );
        s.dispatcher.ingest().await.unwrap();
        let at = action("building generation", "pool files in place");
        let step = format!("round {round}, stopped at the first {at:?}");
        let lease = STOP_LEASE_SECONDS.to_string();
        let mut first = s.publisher_process_with(&[
            ("RUST_LOG", "info"),
            ("RAPTR_PROGRESS_SECONDS", "0"),
            ("RAPTR_LEASE_SECONDS", &lease),
        ]);
        let stderr = first.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let said = line.contains(at);
                lines.lock().expect("log").push(line);
                if said {
                    let _ = tx.send(true);
                }
            }
            // The publisher ended without saying so.
            let _ = tx.send(false);
        });
        let said = tokio::task::spawn_blocking(move || {
            rx.recv_timeout(std::time::Duration::from_secs(240))
        })
        .await
        .unwrap();
        signal(&first, "-STOP");
        if said != Ok(true) {
            let _ = first.kill();
            let status = first.wait();
            let log = log.lock().expect("log").join("\n");
            panic!("{step}: the publisher never said so ({status:?}); it said:\n{log}");
        }
        // Past its lease, a second publisher carries out the next change.
        tokio::time::sleep(std::time::Duration::from_millis(
            STOP_LEASE_SECONDS * 1000 + 500,
        ))
        .await;
        s.request(
            &format!("testing-{round}.json"),
            &link("testing", action("unlink", "link")),
        );
        s.dispatch().await;
        let mut served = BTreeMap::new();
        for dist in ["stable", "testing"] {
            served.insert(dist, inreleases(&s, dist).await);
        }
        signal(&first, "-CONT");
        let status = first.wait().unwrap();
        assert!(
            !status.success(),
            "{step}: the stopped publisher did not notice that it lost its lease"
        );
        for dist in ["stable", "testing"] {
            let now = inreleases(&s, dist).await;
            for ((who, before, old), (_, after, new)) in served[dist].iter().zip(&now) {
                assert!(
                    after >= before,
                    "{step}: {who}: {dist}'s InRelease went back"
                );
                assert!(
                    old == new,
                    "{step}: {who}: {dist}'s InRelease was written by a publisher that lost its lease"
                );
            }
            s.apt_on_every_replica(dist, &step).await;
        }
    }
    // Round 4 linked hello in stable and in testing.
    s.dispatch().await;
    let hello = [
        "hello 1:2.0+dfsg~rc1-1 amd64",
        "hello-doc 1:2.0+dfsg~rc1-1 all",
    ];
    for dist in ["stable", "testing"] {
        for seen in s.apt_on_every_replica(dist, "converged").await {
            assert_eq!(seen, hello, "{dist}, converged");
        }
    }
}

/// The AWS CLI's SQS commands, pointed at the emulator explicitly (the
/// CLI does not apply `AWS_ENDPOINT_URL` to SQS).
fn sqs(s: &Stack, args: &[&str]) -> Output {
    let endpoint = s.emu.endpoint();
    let mut all = vec!["--endpoint-url", endpoint.as_str(), "sqs"];
    all.extend_from_slice(args);
    s.aws(&all)
}

/// The queue named `name` on the emulator: its URL, and how many messages
/// it holds now.
fn queue_depth(s: &Stack, name: &str) -> (String, u64) {
    let url = ok(
        sqs(
            s,
            &["get-queue-url", "--queue-name", name, "--output", "text"],
        ),
        "get-queue-url",
    )
    .trim()
    .to_string();
    let n = ok(
        sqs(
            s,
            &[
                "get-queue-attributes",
                "--queue-url",
                &url,
                "--attribute-names",
                "ApproximateNumberOfMessages",
                "--query",
                "Attributes.ApproximateNumberOfMessages",
                "--output",
                "text",
            ],
        ),
        "get-queue-attributes",
    );
    (url, n.trim().parse().unwrap_or(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn careless_uploads_and_a_poison_message_hold_back_no_bundle() {
    let s = stack("poison").await;
    s.upload("testing/main", "build-1", &bundle());
    // A console folder, a file copied to a folder's own key (the trailing
    // slash forgotten), and a message that is no S3 event at all.
    ok(
        s.aws(&[
            "s3api",
            "put-object",
            "--bucket",
            &s.bucket,
            "--key",
            "incoming/testing/main/marker/",
        ]),
        "console folder",
    );
    let stray = s.tmp.path().join("stray.deb");
    std::fs::write(&stray, deb("stray", "1.0", "amd64", None, "s")).unwrap();
    ok(
        s.aws(&[
            "s3",
            "cp",
            stray.to_str().unwrap(),
            &format!("s3://{}/incoming/testing/main/build-1", s.bucket),
        ]),
        "aws s3 cp without the trailing slash",
    );
    let queue = "raptr-e2e-poison".to_string();
    let (url, _) = queue_depth(&s, &queue);
    ok(
        sqs(
            &s,
            &[
                "send-message",
                "--queue-url",
                &url,
                "--message-body",
                "{ not an event",
            ],
        ),
        "send-message",
    );

    // One round ends: the bad message comes back until the redrive policy
    // moves it to the dead-letter queue, and nothing else waits for it.
    let round = s.dispatch().await;
    assert!(round.failed >= 1, "{:#?}", round.lines());
    assert_eq!(queue_depth(&s, &queue).1, 0, "the queue is drained");
    assert_eq!(
        queue_depth(&s, &format!("{queue}-dead")).1,
        1,
        "the poison is in the dead-letter queue"
    );
    // Every careless object has its report, and the folder's record is
    // still the folder's.
    for key in [
        "incoming/testing/main/marker/",
        "incoming/testing/main/build-1",
    ] {
        let report = raptr_core::report::Report::read(&s.primary, key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{key}: no report"));
        assert_eq!(
            report.status.map(|s| format!("{s:?}")).as_deref(),
            Some("Rejected"),
            "{key}"
        );
    }
    for (name, bucket, _) in &s.replicas {
        let who = format!("replica {name} ({bucket})");
        let (apt, work) = s.apt(name, bucket, "testing");
        update_cleanly(&apt, &work, &who);
        ok(
            apt.apt_get(&["download", "hello", "hello-doc"], &work),
            &who,
        );
    }
}

// ----- who may change what ---------------------------------------------------

/// An IAM user of the emulator: its name and access key.
struct User {
    name: String,
    /// The principal S3 events name it by: `AWS:<user id>`.
    principal: String,
    /// The primary bucket, signed with the user's key.
    store: S3Store,
    key: String,
    secret: String,
}

impl Stack {
    /// The AWS CLI, signed as `user`.
    fn aws_as(&self, user: &User, args: &[&str]) -> Output {
        Command::new("aws")
            .envs(self.emu.env())
            .env("AWS_ACCESS_KEY_ID", &user.key)
            .env("AWS_SECRET_ACCESS_KEY", &user.secret)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the AWS CLI runs")
    }

    /// An IAM user with the given managed policies and an access key.
    fn user(&self, name: &str, policies: &[&str]) -> User {
        let out = ok(self.aws(&["iam", "create-user", "--user-name", name]), name);
        let created: Value = serde_json::from_str(&out).unwrap();
        let principal = format!("AWS:{}", created["User"]["UserId"].as_str().unwrap());
        for arn in policies {
            ok(
                self.aws(&[
                    "iam",
                    "attach-user-policy",
                    "--user-name",
                    name,
                    "--policy-arn",
                    arn,
                ]),
                arn,
            );
        }
        let out = ok(
            self.aws(&["iam", "create-access-key", "--user-name", name]),
            name,
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        let key: String = v["AccessKey"]["AccessKeyId"].as_str().unwrap().into();
        let secret: String = v["AccessKey"]["SecretAccessKey"].as_str().unwrap().into();
        let conf = aws_sdk_s3::config::Builder::from(&self.conf)
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                &key, &secret, None, None, "iam-user",
            ))
            .force_path_style(true)
            .build();
        User {
            name: name.into(),
            principal,
            store: S3Store::new(aws_sdk_s3::Client::from_conf(conf), &self.bucket),
            key,
            secret,
        }
    }

    /// Deploys infra/access.yaml as stack `name`; returns its outputs.
    fn access_stack(&self, name: &str, params: &[(&str, &str)]) -> BTreeMap<String, String> {
        let template = raptr_emulator::repo_root().join("infra/access.yaml");
        let body = format!("file://{}", template.display());
        let mut args = vec![
            "cloudformation".to_string(),
            "create-stack".into(),
            "--stack-name".into(),
            name.into(),
            "--template-body".into(),
            body,
            "--parameters".into(),
            format!(
                "ParameterKey=PrimaryBucketName,ParameterValue={}",
                self.bucket
            ),
        ];
        for (k, v) in params {
            args.push(format!("ParameterKey={k},ParameterValue={v}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(self.aws(&args), "create-stack");
        let out = ok(
            self.aws(&[
                "cloudformation",
                "describe-stacks",
                "--stack-name",
                name,
                "--query",
                "Stacks[0]",
            ]),
            "describe-stacks",
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["StackStatus"], "CREATE_COMPLETE", "{v:#}");
        v["Outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["OutputKey"].as_str().unwrap().to_string(),
                    o["OutputValue"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// `user` writes `key`; whether S3 let it. (The SDK, signed with the
    /// user's key: dozens of checks, each an AWS CLI start otherwise.)
    async fn put_as(&self, user: &User, key: &str, body: &[u8]) -> Result<(), StoreError> {
        user.store
            .put(key, Bytes::copy_from_slice(body), PutOptions::default())
            .await
            .map(|_| ())
    }

    /// `user` reads `key`; whether S3 let it.
    async fn get_as(&self, user: &User, key: &str) -> Result<Value, StoreError> {
        let (body, _) = user.store.get(key).await?;
        Ok(serde_json::from_slice(&body).unwrap())
    }

    async fn allowed(&self, user: &User, key: &str, body: &[u8]) {
        if let Err(e) = self.put_as(user, key, body).await {
            panic!("{} may write {key}, but: {e}", user.name);
        }
    }

    async fn denied(&self, user: &User, key: &str) {
        match self.put_as(user, key, b"{}").await {
            Ok(()) => panic!("{} wrote {key}", user.name),
            Err(StoreError::Denied { .. }) => {}
            Err(e) => panic!("{} {key}: not a denial: {e}", user.name),
        }
    }

    fn enforce(&self, on: bool) {
        self.emu.enforce_iam(on).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_policies_let_each_role_do_its_job_and_nothing_else() {
    // An emulator of its own: IAM enforcement applies to all its clients.
    let emu: &'static Emulator = Box::leak(Box::new(
        tokio::task::spawn_blocking(Emulator::start)
            .await
            .unwrap()
            .unwrap(),
    ));
    // stable takes packages only by promotion.
    let s = stack_on(emu, "access", |c| {
        let layout = c.layouts.get_mut("default").unwrap();
        layout.distributions.get_mut("stable").unwrap().uploads = false;
    })
    .await;
    // The shipped policies, as an operator deploys them: the repository's
    // own (uploads to testing, promotion to stable, component main), and a
    // second team's that may only promote into testing.
    let main = s.access_stack("raptr-access", &[("Component", "main")]);
    let other = s.access_stack(
        "raptr-access-qa",
        &[
            ("RepositoryWide", "false"),
            ("ReleaseDistribution", "testing"),
        ],
    );
    assert!(!other.contains_key("AdministratorPolicyArn"), "{other:?}");
    let ci = s.user("ci", &[&main["UploaderPolicyArn"]]);
    let release = s.user("release", &[&main["ReleaseManagerPolicyArn"]]);
    let qa = s.user("qa", &[&other["ReleaseManagerPolicyArn"]]);
    let admin = s.user("admin", &[&main["AdministratorPolicyArn"]]);
    let reader = s.user("reader", &[&main["ReportReaderPolicyArn"]]);
    let nobody = s.user("nobody", &[]);

    let link = format!(
        r#"{{"action": "link", "bundle": "hello", "version": "{VERSION}", "component": "main", "distribution": "stable"}}"#
    );
    let deb = deb_name("hello", VERSION, "amd64");
    s.enforce(true);
    // The emulator really refuses: its own default credentials, and a user
    // with no policy.
    let out = s.aws(&["s3", "ls", &format!("s3://{}/", s.bucket)]);
    assert!(!out.status.success(), "{}", text(&out));
    for key in [
        "incoming/testing/main/b/x.deb",
        "requests/verify/v.json",
        "reports/x.json",
    ] {
        s.denied(&nobody, key).await;
    }

    // The uploader: its own distribution and component, nothing else.
    let files = bundle();
    let dir = s.tmp.path().join("ci-build");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let dest = format!("s3://{}/incoming/testing/main/build-1/", s.bucket);
    ok(
        s.aws_as(
            &ci,
            &["s3", "cp", "--recursive", dir.to_str().unwrap(), &dest],
        ),
        "the uploader's aws s3 cp",
    );
    for key in [
        format!("incoming/stable/main/build-1/{deb}"),
        format!("incoming/testing/contrib/build-1/{deb}"),
        "requests/link/stable/main/promote.json".into(),
        "requests/link/testing/main/promote.json".into(),
        "requests/remove/main/remove.json".into(),
        format!("pool/main/h/hello/{deb}"),
        "dists/testing/InRelease".into(),
        "config/raptr.json".into(),
        "state/publish.json".into(),
        "keys/repo.gpg".into(),
        "reports/incoming/testing/main/build-1/forged.json".into(),
    ] {
        s.denied(&ci, &key).await;
    }
    // The release manager of stable: link and unlink there, nothing else.
    for key in [
        "requests/link/testing/main/promote.json",
        "requests/link/stable/contrib/promote.json",
        "requests/remove/main/remove.json",
        "requests/purge/purge.json",
        "requests/verify/verify.json",
        "incoming/testing/main/build-9/x.deb",
        "config/raptr.json",
    ] {
        s.denied(&release, key).await;
    }
    s.denied(&qa, "requests/link/stable/main/promote.json")
        .await;
    // The administrator: every request and the configuration, but never
    // what only the functions write.
    for key in [
        format!("pool/main/h/hello/{deb}"),
        "dists/stable/InRelease".into(),
        "state/publish.json".into(),
        "keys/repo.gpg".into(),
    ] {
        s.denied(&admin, &key).await;
    }
    // The report reader writes nothing.
    s.denied(&reader, "requests/verify/verify.json").await;
    s.denied(&reader, "incoming/testing/main/b/x.deb").await;

    s.enforce(false);
    s.dispatch().await;
    s.enforce(true);
    // Promotion by the release manager; an administrator's upload into the
    // closed distribution, which IAM allows and raptr refuses.
    s.allowed(
        &release,
        "requests/link/stable/main/promote.json",
        link.as_bytes(),
    )
    .await;
    s.allowed(
        &admin,
        &format!("incoming/stable/main/hotfix/{deb}"),
        &files.iter().find(|(n, _)| *n == deb).unwrap().1,
    )
    .await;
    s.allowed(
        &admin,
        "requests/verify/weekly.json",
        br#"{"action": "verify", "dry_run": true}"#,
    )
    .await;
    // A request whose body says more than its key: the release manager
    // of stable may put under link/stable/main, but not remove from there.
    s.allowed(
        &release,
        "requests/link/stable/main/sneaky.json",
        br#"{"action": "remove", "bundle": "hello", "version": "all", "component": "main"}"#,
    )
    .await;
    s.enforce(false);
    s.dispatch().await;
    s.enforce(true);

    // Each reads the reports of what it did, with who did it, and no other.
    let ci_report = format!("reports/incoming/testing/main/build-1/{deb}.json");
    let r = s.get_as(&ci, &ci_report).await.unwrap();
    assert_eq!(r["status"], "accepted", "{r:#}");
    assert_eq!(r["uploader"].as_str(), Some(ci.principal.as_str()), "{r:#}");
    let promote = "reports/requests/link/stable/main/promote.json.json";
    assert!(matches!(
        s.get_as(&ci, promote).await,
        Err(StoreError::Denied { .. })
    ));
    let r = s.get_as(&release, promote).await.unwrap();
    assert_eq!(r["status"], "accepted", "{r:#}");
    assert_eq!(
        r["uploader"].as_str(),
        Some(release.principal.as_str()),
        "{r:#}"
    );
    assert!(matches!(
        s.get_as(&release, &ci_report).await,
        Err(StoreError::Denied { .. })
    ));
    let sneaky = "reports/requests/link/stable/main/sneaky.json.json";
    let r = s.get_as(&release, sneaky).await.unwrap();
    assert_eq!(r["status"], "rejected", "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("the key says link"),
        "{r:#}"
    );
    let hotfix = format!("reports/incoming/stable/main/hotfix/{deb}.json");
    let r = s.get_as(&reader, &hotfix).await.unwrap();
    assert_eq!(r["status"], "rejected", "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("closed to uploads"),
        "{r:#}"
    );
    assert_eq!(
        r["uploader"].as_str(),
        Some(admin.principal.as_str()),
        "{r:#}"
    );
    assert!(matches!(
        s.get_as(&reader, &format!("pool/main/h/hello/{deb}")).await,
        Err(StoreError::Denied { .. })
    ));
    let verify = "reports/requests/verify/weekly.json.json";
    let r = s.get_as(&admin, verify).await.unwrap();
    assert_eq!(r["status"], "accepted", "{r:#}");
    s.enforce(false);

    // apt sees the promotion, and only it: stable has hello from testing.
    let (_, bucket, _) = &s.replicas[0];
    let (apt, work) = s.apt("access", bucket, "stable");
    update_cleanly(&apt, &work, "stable");
    ok(apt.apt_get(&["download", "hello"], &work), "stable");
}

/// hello at `version`, amd64 only.
fn hello_at(version: &str) -> Vec<File> {
    vec![(
        deb_name("hello", version, "amd64"),
        deb("hello", version, "amd64", None, version),
    )]
}

/// Snapshots, retention and rollback, as apt on every replica sees them:
/// stable keeps two versions, a machine pinned to a snapshot keeps
/// installing what it froze, byte for byte, and a bad promotion is undone
/// by one restore request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_retention_and_rollback_on_every_replica() {
    let emu = tokio::task::spawn_blocking(Emulator::shared).await.unwrap();
    let s = stack_on(emu, "snap", |c| {
        let stable = c
            .layouts
            .get_mut("default")
            .unwrap()
            .distributions
            .get_mut("stable")
            .unwrap();
        stable.retention = Some(raptr_core::config::Policy {
            keep: Some(2),
            max_age_days: None,
        });
    })
    .await;
    for v in ["1.0-1", "1.0-2", "1.0-3"] {
        s.upload("testing/main", &format!("build-{v}"), &hello_at(v));
    }
    let link = |v: &str| {
        format!(
            r#"{{"action": "link", "bundle": "hello", "version": "{v}", "component": "main", "distribution": "stable"}}"#
        )
    };
    s.request("link-1.json", &link("1.0-1"));
    s.dispatch().await;
    let report = s.request(
        "snapshot.json",
        r#"{"action": "snapshot", "distribution": "stable", "snapshot": "good"}"#,
    );
    s.dispatch().await;
    let r = s.report(&report);
    assert_eq!(
        (r["status"].as_str(), r["suite"].as_str()),
        (Some("accepted"), Some("stable/_good")),
        "{r:#}"
    );
    let v1 = ["hello 1.0-1 amd64"];
    let (apt, work) = s.apt("frozen", &s.replicas[2].1, "stable/_good");
    update_cleanly(&apt, &work, "the snapshot");
    ok(apt.apt_get(&["download", "hello"], &work), "the snapshot");
    let frozen = std::fs::read(work.join("hello_1.0-1_amd64.deb")).unwrap();

    // Two more versions promoted, the last a bad one: stable keeps the
    // newest two (the report of the link that caused it says so); the
    // snapshot and testing keep 1.0-1.
    s.request("link-2.json", &link("1.0-2"));
    let bad = s.request("link-3.json", &link("1.0-3"));
    s.dispatch().await;
    let r = s.report(&bad);
    let retired: Vec<&str> = r["retired"]
        .as_array()
        .unwrap_or_else(|| panic!("{r:#}"))
        .iter()
        .filter_map(|x| x["version"].as_str())
        .collect();
    assert_eq!(retired, ["1.0-1"], "{r:#}");
    for seen in s.apt_on_every_replica("stable", "retention").await {
        assert_eq!(seen, ["hello 1.0-2 amd64", "hello 1.0-3 amd64"], "keep 2");
    }
    let (apt, work) = s.apt("policy", &s.replicas[0].1, "stable");
    update_cleanly(&apt, &work, "stable");
    let policy = text(&apt.apt_cache(&["madison", "hello"], &work));
    assert_eq!(policy.lines().count(), 2, "apt sees two versions: {policy}");
    let verify = |t: &str| s.signer.verify_clear(t).map_err(|e| e.to_string());
    let testing = client_view(&s.primary, &verify, "testing", "primary")
        .await
        .unwrap();
    assert_eq!(
        raptr_testkit::apt::lines(&testing, "main/binary-amd64/Packages").len(),
        3,
        "testing has no policy"
    );
    // Pinned to the snapshot, every replica still serves 1.0-1 alone
    // (apt would download the newest it offers).
    for (name, bucket, _) in &s.replicas {
        let (apt, work) = s.apt(&format!("pinned-{name}"), bucket, "stable/_good");
        update_cleanly(&apt, &work, "pinned");
        ok(apt.apt_get(&["download", "hello"], &work), "pinned");
        assert_eq!(
            std::fs::read(work.join("hello_1.0-1_amd64.deb")).unwrap(),
            frozen,
            "{name}: byte for byte"
        );
    }

    // Undone by one request; its dry run first changes nothing.
    let restore = |dry: bool| {
        format!(
            r#"{{"action": "restore", "distribution": "stable", "snapshot": "good", "dry_run": {dry}}}"#
        )
    };
    let served = inreleases(&s, "stable").await;
    let dry = s.request("restore-dry.json", &restore(true));
    s.dispatch().await;
    let r = s.report(&dry);
    assert_eq!(r["planned"].as_array().map(Vec::len), Some(3), "{r:#}");
    assert!(
        inreleases(&s, "stable").await == served,
        "a dry run changes nothing"
    );
    let done = s.request("restore.json", &restore(false));
    s.dispatch().await;
    let r = s.report(&done);
    assert!(
        r["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("1 file(s) linked, 2 unlinked"),
        "{r:#}"
    );
    for seen in s.apt_on_every_replica("stable", "restored").await {
        assert_eq!(seen, v1, "restored on every replica");
    }
}

/// A mirror declared in the configuration, its upstream an `s3://` bucket
/// built by `apt-ftparchive` and signed by GnuPG: the scheduled event syncs
/// it across invocations (a zero budget: one round of eight bundles each),
/// reports each sync,
/// and every replica then serves apt what the upstream signed; a sync after
/// that fetches nothing, and one after the upstream adds a version fetches
/// that version only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_synced_by_the_schedule_reaches_apt_on_every_replica() {
    let emu = tokio::task::spawn_blocking(Emulator::shared).await.unwrap();
    let upstream_bucket = "raptr-e2e-mirror-upstream";
    let keyring_secret = "raptr/e2e-mirror/upstream-keyring";
    let s = stack_on(emu, "mirror", |c| {
        c.mirrors = vec![serde_json::from_value(serde_json::json!({
            "name": "vendor",
            "url": format!("s3://{upstream_bucket}"),
            "suite": "stable",
            "keyring": {"secret": keyring_secret},
            "packages": ["hello", "tool", "lib*"],
            "distribution": "testing"
        }))
        .unwrap()];
    })
    .await;
    let gpg_home = tempfile::tempdir().unwrap();
    let gpg = raptr_testkit::gnupg::Gpg::new(gpg_home.path());
    let uid = "vendor archive <archive@vendor.invalid>";
    gpg.generate(uid, "ed25519", "cert,sign", "never", "", &[]);
    let up = s.tmp.path().join("upstream");
    let style = raptr_testkit::upstream::Style {
        detached: false,
        xz: true,
    };
    // Ten packages the mirror takes (more than one round of bundles), one
    // it leaves.
    let libs: Vec<String> = (1..=8).map(|i| format!("lib{i}x")).collect();
    let mut debs = vec![("hello", "1.0-1"), ("tool", "3.1-1"), ("other", "9-1")];
    debs.extend(libs.iter().map(|l| (l.as_str(), "1-1")));
    raptr_testkit::upstream::suite(&up, &gpg, uid, &debs, style);
    let mut expected: Vec<String> = libs.iter().map(|l| format!("{l} 1-1 amd64")).collect();
    expected.extend([
        "hello 1.0-1 amd64".to_string(),
        "tool 3.1-1 amd64".to_string(),
    ]);
    expected.sort();
    aws_sdk_secretsmanager::Client::new(&s.conf)
        .create_secret()
        .name(keyring_secret)
        .secret_string(String::from_utf8(gpg.export_public_armored(uid)).unwrap())
        .send()
        .await
        .unwrap();
    ok(
        s.aws(&["s3", "mb", &format!("s3://{upstream_bucket}")]),
        "the upstream bucket",
    );
    let push = || {
        ok(
            s.aws(&[
                "s3",
                "sync",
                "--delete",
                up.to_str().unwrap(),
                &format!("s3://{upstream_bucket}"),
            ]),
            "the upstream's files",
        )
    };
    push();

    let mut handler = s.dispatcher.publish_handler().clone();
    handler.mirror_budget = Some(std::time::Duration::ZERO);
    let schedule = serde_json::json!({
        "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let answer = handler.handle(schedule.clone()).await.unwrap();
        let m = &answer["mirrors"][0];
        statuses.push(m["status"].as_str().unwrap_or("?").to_string());
        assert_eq!(answer["publish"]["ran"], Value::Bool(true), "{answer:#}");
        if m["status"] == "complete" {
            assert_eq!(m["summary"]["refused"], serde_json::json!([]), "{m:#}");
            break;
        }
        assert_eq!(m["status"], "partial", "{answer:#}");
    }
    // Ten bundles, eight per invocation: the first stops short.
    assert_eq!(statuses, ["partial", "complete"]);
    let report = s.report(&format!("s3://{}/reports/mirrors/vendor.json", s.bucket));
    assert_eq!(
        (report["status"].as_str(), report["distribution"].as_str()),
        (Some("complete"), Some("testing")),
        "{report:#}"
    );
    for seen in s.apt_on_every_replica("testing", "mirrored").await {
        assert_eq!(seen, expected);
    }
    // apt installs what the upstream signed, byte for byte.
    let (apt, work) = s.apt("mirror", &s.replicas[1].1, "testing");
    update_cleanly(&apt, &work, "the mirror");
    ok(apt.apt_get(&["download", "tool"], &work), "download tool");
    assert_eq!(
        std::fs::read(work.join("tool_3.1-1_amd64.deb")).unwrap(),
        std::fs::read(up.join("pool/main/t/tool/tool_3.1-1_amd64.deb")).unwrap()
    );

    // Nothing new upstream: the next sync reads its Release and stops.
    handler.mirror_budget = None;
    let answer = handler.handle(schedule.clone()).await.unwrap();
    assert_eq!(answer["mirrors"][0]["status"], "unchanged", "{answer:#}");

    // A new version upstream: only it is fetched.
    raptr_testkit::upstream::suite(&up, &gpg, uid, &[("hello", "1.0-2")], style);
    push();
    let answer = handler.handle(schedule).await.unwrap();
    let m = &answer["mirrors"][0];
    assert_eq!(
        (m["status"].as_str(), m["summary"]["fetched"].as_u64()),
        (Some("complete"), Some(1)),
        "{answer:#}"
    );
    expected.push("hello 1.0-2 amd64".to_string());
    expected.sort();
    for seen in s
        .apt_on_every_replica("testing", "new upstream version")
        .await
    {
        assert_eq!(seen, expected);
    }
}
