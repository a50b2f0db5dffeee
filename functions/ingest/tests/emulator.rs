//! The ingest function on the emulator, fed the way AWS feeds it: objects are
//! put into the primary bucket, S3 notifies the SQS queue, and the messages
//! are handed to the handler in Lambda-sized batches — shuffled and
//! duplicated, because S3 promises neither order nor exactly-once.
//!
//! Each test has its own bucket and queue (and its own namespace in the
//! table), so they run in parallel.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use raptr_aws::{dynamo_client, emulator_config, s3_client, DynamoTable, S3Store};
use raptr_core::config::Config;
use raptr_core::report::Report;
use raptr_emulator::{Emulator, Names, REGION};
use raptr_formats::bundle::Status;
use raptr_ingest::Handler;
use raptr_store::table::Journal;
use raptr_store::{ObjectStore, PutOptions};
use raptr_testkit::{changes, deb, deb_name, shuffle, source_package, File};
use serde_json::{json, Value};

struct Env {
    emu: &'static Emulator,
    /// The bucket through the SDK itself, for keys the store refuses to
    /// write (as `aws s3 cp` and the console do not).
    raw: aws_sdk_s3::Client,
    bucket: String,
    store: Arc<S3Store>,
    table: Arc<DynamoTable>,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    handler: Handler,
}

async fn env(tag: &str) -> Env {
    let emu = tokio::task::spawn_blocking(Emulator::shared).await.unwrap();
    let names = Names {
        bucket: format!("raptr-ingest-{tag}"),
        replicas: Vec::new(),
        table: "raptr".into(),
        queue: format!("raptr-ingest-{tag}"),
    };
    {
        let names = names.clone();
        tokio::task::spawn_blocking(move || emu.bootstrap(&names))
            .await
            .unwrap()
            .unwrap();
    }
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    let store = Arc::new(S3Store::new(s3_client(&conf, None, true), &names.bucket));
    let table = Arc::new(DynamoTable::new(
        dynamo_client(&conf),
        &names.table,
        &names.bucket,
    ));
    raptr_core::repo::init(
        store.as_ref(),
        &names.bucket,
        &Config::default_local(&names.bucket),
    )
    .await
    .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let queue_url = sqs
        .get_queue_url()
        .queue_name(&names.queue)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let handler = Handler {
        bucket: names.bucket.clone(),
        store: store.clone(),
        journal: table.clone(),
        keyrings: Some(raptr_aws::SecretReader(conf.clone())),
    };
    Env {
        emu,
        raw: s3_client(&conf, None, true),
        bucket: names.bucket.clone(),
        store,
        table,
        sqs,
        queue_url,
        handler,
    }
}

impl Env {
    async fn put(&self, key: &str, bytes: &[u8]) {
        self.store
            .put(key, Bytes::copy_from_slice(bytes), PutOptions::default())
            .await
            .unwrap();
    }

    async fn put_all(&self, folder: &str, files: &[File]) {
        for (name, bytes) in files {
            self.put(&format!("{folder}/{name}"), bytes).await;
        }
    }

    /// Every upload event the queue holds now, as SQS records for the
    /// handler.
    async fn receive(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                empty += 1;
                continue;
            }
            for m in messages {
                // S3 sends one when the notification is configured; the
                // handler skips it, and it is not an upload.
                let test_event = m.body.as_deref().unwrap_or("").contains("s3:TestEvent");
                if !test_event {
                    out.push(json!({
                    "messageId": m.message_id.clone().unwrap_or_default(),
                    "receiptHandle": m.receipt_handle.clone().unwrap_or_default(),
                    "body": m.body.clone().unwrap_or_default(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:raptr-ingest",
                    "awsRegion": REGION,
                    }));
                }
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
        out
    }

    /// Hands every queued event to the handler twice, shuffled, in batches
    /// of up to 10 records; returns how many S3 events there were. No
    /// message may fail.
    async fn deliver(&self, seed: u64) -> usize {
        let records = self.receive().await;
        let n = records.len();
        let mut twice: Vec<Value> = records.iter().chain(records.iter()).cloned().collect();
        shuffle(&mut twice, seed);
        for batch in twice.chunks(10) {
            let answer = self
                .handler
                .handle(json!({ "Records": batch }))
                .await
                .unwrap();
            assert_eq!(
                answer["batchItemFailures"],
                json!([]),
                "no message is delivered again: {answer:#}"
            );
        }
        n
    }

    /// Puts an object under any key S3 takes.
    async fn put_raw(&self, key: &str, bytes: &[u8]) {
        self.raw
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {}", aws_sdk_s3::error::DisplayErrorContext(&e)));
    }

    async fn report(&self, key: &str) -> Report {
        Report::read(self.store.as_ref(), key)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no report for {key}"))
    }

    async fn status(&self, key: &str) -> Status {
        self.report(key).await.status.unwrap()
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        self.store
            .list(prefix)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    async fn journal_len(&self) -> usize {
        self.table.pending(100_000).await.unwrap().len()
    }
}

fn hello_bundle() -> Vec<File> {
    let mut files = source_package("hello", "1.0-1", &["hello", "hello-doc"]);
    for (pkg, arch, salt) in [("hello", "amd64", "a"), ("hello", "arm64", "b")] {
        files.push((
            deb_name(pkg, "1.0-1", arch),
            deb(pkg, "1.0-1", arch, None, salt),
        ));
    }
    files.push((
        deb_name("hello-doc", "1.0-1", "all"),
        deb("hello-doc", "1.0-1", "all", Some("hello"), "c"),
    ));
    files
}

const DIR: &str = "pool/main/h/hello/1.0-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bundle_arrives_shuffled_and_duplicated() {
    let e = env("bundle").await;
    let folder = "incoming/stable/main/build-42";
    let files = hello_bundle();
    e.put_all(folder, &files).await;
    assert_eq!(e.deliver(42).await, files.len(), "one S3 event per object");
    for (name, bytes) in &files {
        let key = format!("{folder}/{name}");
        let report = e.report(&key).await;
        assert_eq!(report.status, Some(Status::Accepted), "{key}: {report:?}");
        assert!(report.uploader.is_some());
        let (pool, _) = e.store.get(&format!("{DIR}/{name}")).await.unwrap();
        assert_eq!(&pool[..], &bytes[..]);
    }
    assert!(e.keys("incoming/").await.is_empty());
    assert_eq!(e.journal_len().await, files.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dsc_before_its_tarballs_and_a_changes_completed_later() {
    let e = env("waiting").await;
    // A .dsc alone waits.
    let folder = "incoming/stable/main/src-1";
    let src = source_package("hello", "1.0-1", &["hello"]);
    e.put_all(folder, &src[..1]).await;
    e.deliver(1).await;
    let dsc_key = format!("{folder}/{}", src[0].0);
    assert_eq!(e.status(&dsc_key).await, Status::Pending);
    assert!(e.keys("pool/").await.is_empty());
    e.put_all(folder, &src[1..]).await;
    e.deliver(2).await;
    for (name, _) in &src {
        assert_eq!(
            e.status(&format!("{folder}/{name}")).await,
            Status::Accepted
        );
    }

    // A .changes folder with a file missing: nothing goes in until it comes.
    let folder = "incoming/testing/main/up-2";
    let mut files = vec![
        (
            deb_name("other", "2.0", "amd64"),
            deb("other", "2.0", "amd64", None, "x"),
        ),
        (
            deb_name("other", "2.0", "arm64"),
            deb("other", "2.0", "arm64", None, "y"),
        ),
    ];
    let ch = changes("other", "2.0", "testing", &files);
    let missing = files.pop().unwrap();
    files.push(ch);
    e.put_all(folder, &files).await;
    e.deliver(3).await;
    for (name, _) in &files {
        let r = e.report(&format!("{folder}/{name}")).await;
        assert_eq!(r.status, Some(Status::Pending), "{name}: {r:?}");
    }
    assert!(e.keys("pool/main/o/").await.is_empty());
    e.put_all(folder, std::slice::from_ref(&missing)).await;
    e.deliver(4).await;
    for (name, _) in files.iter().chain([&missing]) {
        assert_eq!(
            e.status(&format!("{folder}/{name}")).await,
            Status::Accepted
        );
    }
    assert_eq!(e.keys("pool/main/o/other/2.0/").await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reuploads_are_skipped_or_rejected_and_the_pool_never_changes() {
    let e = env("reupload").await;
    let name = deb_name("hello", "1.0-1", "amd64");
    let original = deb("hello", "1.0-1", "amd64", None, "a");
    e.put(&format!("incoming/stable/main/b1/{name}"), &original)
        .await;
    e.deliver(1).await;
    e.put(&format!("incoming/stable/main/b2/{name}"), &original)
        .await;
    let other = deb("hello", "1.0-1", "amd64", None, "rebuilt");
    e.put(&format!("incoming/stable/main/b3/{name}"), &other)
        .await;
    e.deliver(2).await;
    assert_eq!(
        e.status(&format!("incoming/stable/main/b2/{name}")).await,
        Status::Skipped
    );
    let key = format!("incoming/stable/main/b3/{name}");
    let r = e.report(&key).await;
    assert_eq!(r.status, Some(Status::Rejected));
    assert!(r.reason.unwrap().contains("different contents"));
    let (pool, _) = e.store.get(&format!("{DIR}/{name}")).await.unwrap();
    assert_eq!(&pool[..], &original[..]);
    let (kept, _) = e.store.get(&format!("rejected/{key}")).await.unwrap();
    assert_eq!(&kept[..], &other[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_uploads_are_rejected_and_moved() {
    let e = env("hostile").await;
    let folder = "incoming/stable/main/evil";
    let corpus = raptr_testkit::hostile();
    for (name, bytes, _) in &corpus {
        e.put(&format!("{folder}/{name}"), bytes).await;
    }
    e.put("incoming/sid/main/x/a_1_amd64.deb", b"x").await;
    e.deliver(5).await;
    for (name, bytes, why) in &corpus {
        let key = format!("{folder}/{name}");
        let r = e.report(&key).await;
        assert_eq!(r.status, Some(Status::Rejected), "{key}");
        assert!(r.reason.as_deref().unwrap().contains(why), "{key}: {r:?}");
        let (kept, _) = e.store.get(&format!("rejected/{key}")).await.unwrap();
        assert_eq!(&kept[..], &bytes[..]);
    }
    let r = e.report("incoming/sid/main/x/a_1_amd64.deb").await;
    assert!(r.reason.unwrap().contains("unknown distribution"));
    assert!(e.keys("pool/").await.is_empty());
    assert!(e.keys("incoming/").await.is_empty());
    assert_eq!(e.journal_len().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_bundles_at_once_each_land_exactly_once() {
    let e = Arc::new(env("fifty").await);
    let mut uploads = Vec::new();
    for i in 0..50 {
        let e = e.clone();
        uploads.push(tokio::spawn(async move {
            let pkg = format!("pkg{i}");
            let files = vec![
                (
                    deb_name(&pkg, "1.0", "amd64"),
                    deb(&pkg, "1.0", "amd64", None, "x"),
                ),
                (
                    deb_name(&pkg, "1.0", "all"),
                    deb(&format!("{pkg}-doc"), "1.0", "all", Some(&pkg), "y"),
                ),
            ];
            e.put_all(&format!("incoming/stable/main/ci-{i}"), &files)
                .await;
        }));
    }
    for u in uploads {
        u.await.unwrap();
    }
    // Hand the batches to concurrent invocations, as Lambda scales out.
    let mut records = e.receive().await;
    assert_eq!(records.len(), 100);
    let dup = records.clone();
    records.extend(dup);
    shuffle(&mut records, 50);
    let mut invocations = Vec::new();
    for batch in records.chunks(10) {
        let (e, batch) = (e.clone(), batch.to_vec());
        invocations.push(tokio::spawn(async move {
            e.handler.handle(json!({ "Records": batch })).await.unwrap();
        }));
    }
    for i in invocations {
        i.await.unwrap();
    }
    assert_eq!(e.journal_len().await, 100);
    for i in 0..50 {
        assert_eq!(e.keys(&format!("pool/main/p/pkg{i}/1.0/")).await.len(), 3);
    }
    assert!(e.keys("incoming/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_through_s3() {
    let e = env("requests").await;
    e.put_all("incoming/stable/main/b1", &hello_bundle()).await;
    e.deliver(9).await;
    let base = e.journal_len().await;
    let cases = [
        (
            "link",
            r#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"testing"}"#,
            Status::Accepted,
        ),
        (
            "unlink",
            r#"{"action":"unlink","bundle":"hello","version":"all","component":"main","distribution":"stable","packages":["hello-doc"]}"#,
            Status::Accepted,
        ),
        (
            "remove",
            r#"{"action":"remove","bundle":"hello","version":"1.0-1","component":"main"}"#,
            Status::Accepted,
        ),
        ("purge", r#"{"action":"purge"}"#, Status::Accepted),
        (
            "verify",
            r#"{"action":"verify","dry_run":true}"#,
            Status::Accepted,
        ),
        ("bad-json", r#"{"action":"link","#, Status::Rejected),
        (
            "bad-field",
            r#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"testing","when":"now"}"#,
            Status::Rejected,
        ),
        (
            "bad-bundle",
            r#"{"action":"remove","bundle":"ghost","version":"1.0","component":"main"}"#,
            Status::Rejected,
        ),
    ];
    let key = |name: &str, body: &str| {
        raptr_core::request::key_for(body.as_bytes(), &format!("{name}.json"))
            .unwrap_or_else(|| format!("requests/{name}.json"))
    };
    for (name, body, _) in &cases {
        e.put(&key(name, body), body.as_bytes()).await;
    }
    e.deliver(10).await;
    for (name, body, want) in &cases {
        let r = e.report(&key(name, body)).await;
        assert_eq!(r.status, Some(*want), "{name}: {r:?}");
    }
    // Four journaled (verify was a dry run), each once despite the duplicates.
    assert_eq!(e.journal_len().await, base + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broken_configuration_stops_everything_and_loses_nothing() {
    let e = env("badconfig").await;
    e.store
        .put(
            raptr_core::keys::CONFIG_KEY,
            Bytes::from_static(b"{\"layouts\": {}}"),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let key = "incoming/stable/main/b1/hello_1.0-1_amd64.deb";
    e.put(key, &deb("hello", "1.0-1", "amd64", None, "a")).await;
    let records = e.receive().await;
    let err = e
        .handler
        .handle(json!({ "Records": records }))
        .await
        .expect_err("a broken configuration is an error, so that AWS retries");
    assert!(err.to_string().contains("config/raptr.json"), "{err}");
    assert_eq!(e.keys("incoming/").await, [key]);
    assert!(e.keys("reports/").await.is_empty());
    // Fixed, the same event goes through.
    raptr_core::repo::init(e.store.as_ref(), "x", &Config::default_local("x"))
        .await
        .expect_err("already has a configuration");
    e.store
        .put(
            raptr_core::keys::CONFIG_KEY,
            Bytes::from(
                serde_json::to_vec(&Config::default_local("raptr-ingest-badconfig")).unwrap(),
            ),
            PutOptions::default(),
        )
        .await
        .unwrap();
    e.handler
        .handle(json!({ "Records": records }))
        .await
        .unwrap();
    assert_eq!(e.status(key).await, Status::Accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn careless_and_hostile_keys_are_answered_and_hold_back_nothing() {
    let e = env("poison").await;
    let folder = "incoming/stable/main/build-42";
    let files = hello_bundle();
    e.put_all(folder, &files).await;
    let a_deb = deb("stray", "1.0", "amd64", None, "s");
    // 1,020 bytes: S3 takes it, but neither reports/…json nor rejected/…
    // fits in 1,024.
    let long_name = format!(
        "{}.deb",
        "x".repeat(1016 - "incoming/testing/main/long/".len())
    );
    let poison = [
        // A console "folder".
        ("incoming/testing/main/marker/".to_string(), Vec::new()),
        (
            "incoming/testing/main/a\\b/stray_1.0_amd64.deb".to_string(),
            a_deb.clone(),
        ),
        // A file copied to a folder's own key: its report must not land on
        // the folder's progress record.
        ("incoming/stable/main/build-42".to_string(), a_deb.clone()),
        (
            format!("incoming/testing/main/long/{long_name}"),
            a_deb.clone(),
        ),
        ("requests/sub/".to_string(), Vec::new()),
    ];
    for (key, bytes) in &poison {
        e.put_raw(key, bytes).await;
    }
    // An object in an archive storage class: nothing can read it until
    // it is restored.
    let archived = "incoming/testing/main/cold/stray_1.0_amd64.deb";
    e.raw
        .put_object()
        .bucket(&e.bucket)
        .key(archived)
        .storage_class(aws_sdk_s3::types::StorageClass::Glacier)
        .body(aws_sdk_s3::primitives::ByteStream::from(a_deb.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(poison[3].0.len(), 1020);
    e.deliver(7).await;
    for (name, _) in &files {
        let key = format!("{folder}/{name}");
        assert_eq!(e.status(&key).await, Status::Accepted, "{key}");
    }
    for (key, bytes) in &poison {
        let report = e.report(key).await;
        assert_eq!(report.status, Some(Status::Rejected), "{key:?}: {report:?}");
        assert_eq!(&report.key, key, "the report names the original key");
        let kept = report.rejected_key.clone().expect("kept under rejected/");
        assert!(
            kept.len() <= 1024 && kept.starts_with("rejected/"),
            "{kept}"
        );
        let (body, _) = e.store.get(&kept).await.unwrap();
        assert_eq!(&body[..], &bytes[..], "{key:?}: kept byte for byte");
    }
    let report = e.report(archived).await;
    assert_eq!(report.status, Some(Status::Rejected), "{report:?}");
    let reason = report.reason.unwrap_or_default();
    assert!(reason.contains("archive storage class"), "{reason}");
    assert_eq!(
        e.keys("incoming/").await,
        [archived],
        "every object was answered; the unreadable one is left in place"
    );
    // The folder's progress record is still the folder's.
    let (record, _) = e
        .store
        .get("reports/incoming/stable/main/build-42.json")
        .await
        .unwrap();
    let record: Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["upload_id"], "build-42");
}

/// An SQS message whose body is no S3 event at all.
fn unreadable_message() -> Value {
    json!({
        "messageId": "not-an-s3-event",
        "receiptHandle": "x",
        "body": "{ this is not JSON",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:raptr-ingest",
        "awsRegion": REGION,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_message_fails_alone() {
    let e = env("batch").await;
    let folder = "incoming/stable/main/build-1";
    let files = hello_bundle();
    e.put_all(folder, &files).await;
    let mut records = e.receive().await;
    records.insert(1, unreadable_message());
    let mut failed = Vec::new();
    for batch in records.chunks(10) {
        let answer = e.handler.handle(json!({ "Records": batch })).await.unwrap();
        failed.extend(answer["batchItemFailures"].as_array().cloned().unwrap());
    }
    assert_eq!(failed, [json!({ "itemIdentifier": "not-an-s3-event" })]);
    for (name, _) in &files {
        let key = format!("{folder}/{name}");
        assert_eq!(e.status(&key).await, Status::Accepted, "{key}");
    }
}

/// A process killed when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The repository's root (cargo-lambda reads its workspace there).
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// cargo-lambda, as `make setup` installs it.
fn cargo_lambda() -> std::process::Command {
    let bin = root().join(".cache/lambda/bin/cargo-lambda");
    assert!(
        bin.exists(),
        "{}: missing; scripts/setup.sh installs it",
        bin.display()
    );
    let mut c = std::process::Command::new(bin);
    c.arg("lambda")
        .current_dir(root())
        .stdin(std::process::Stdio::null());
    c
}

/// The function's real binary, run under cargo-lambda's Lambda runtime
/// emulator (`cargo lambda watch --only-lambda-apis`), answers each
/// `cargo lambda invoke` as Lambda would receive it: a batch with one
/// unreadable record comes back with that record alone in
/// `batchItemFailures`, the others carried out; a payload that is no SQS
/// batch at all comes back as a function error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_binary_answers_lambda_per_record_on_the_wire() {
    let e = env("wire").await;
    let folder = "incoming/stable/main/build-1";
    let files = hello_bundle();
    e.put_all(folder, &files).await;
    let mut records = e.receive().await;
    records.insert(1, unreadable_message());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let port_s = port.to_string();
    let _watch = Running(
        cargo_lambda()
            .args([
                "watch",
                "--only-lambda-apis",
                "-A",
                "127.0.0.1",
                "-P",
                &port_s,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cargo lambda watch starts"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "cargo lambda watch did not listen on {port}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _function = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_raptr-ingest"))
            .envs(e.emu.env())
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("RAPTR_BUCKET", &e.bucket)
            .env("RAPTR_TABLE", "raptr")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the ingest function starts"),
    );
    let dir = tempfile::tempdir().unwrap();
    let invoke = |payload: &Value| {
        let file = dir.path().join("payload.json");
        std::fs::write(&file, payload.to_string()).unwrap();
        let out = cargo_lambda()
            .args([
                "invoke",
                "-A",
                "127.0.0.1",
                "-P",
                &port_s,
                "-o",
                "json",
                "-F",
            ])
            .arg(&file)
            .output()
            .expect("cargo lambda invoke runs");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let mut failed = Vec::new();
    for batch in records.chunks(10) {
        let payload = json!({ "Records": batch });
        let (ok, said) = tokio::task::block_in_place(|| invoke(&payload));
        assert!(ok, "the batch failed whole: {said}");
        let answer: Value = serde_json::from_str(said.trim())
            .unwrap_or_else(|err| panic!("not a JSON answer ({err}): {said}"));
        failed.extend(answer["batchItemFailures"].as_array().cloned().unwrap());
    }
    assert_eq!(failed, [json!({ "itemIdentifier": "not-an-s3-event" })]);
    for (name, _) in &files {
        let key = format!("{folder}/{name}");
        assert_eq!(e.status(&key).await, Status::Accepted, "{key}");
    }
    let (ok, said) = tokio::task::block_in_place(|| invoke(&json!({ "Records": "none" })));
    assert!(
        !ok,
        "a payload that is no batch was answered as a success: {said}"
    );
    assert!(said.contains("Records"), "{said}");
}

/// A distribution whose uploads must be signed, with its keyring in
/// Secrets Manager: the function reads it, takes the folder whose
/// `.changes` a keyring key signed (made by GnuPG, `gpg --clearsign` as
/// debsign does), and rejects, whole, the folder whose `.changes` is
/// signed by another key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signed_uploads_are_checked_against_a_keyring_in_secrets_manager() {
    use raptr_testkit::gnupg::Gpg;
    let e = env("signed").await;
    let tmp = tempfile::tempdir().unwrap();
    let gpg = Gpg::new(tmp.path());
    let team = gpg.generate(
        "Team <team@raptr.invalid>",
        "ed25519",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let other = gpg.generate(
        "Other <other@raptr.invalid>",
        "ed25519",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let armored = gpg
        .gpg("")
        .args(["--armor", "--export", &team])
        .output()
        .unwrap()
        .stdout;
    let conf = &e.handler.keyrings.as_ref().unwrap().0;
    aws_sdk_secretsmanager::Client::new(conf)
        .create_secret()
        .name("raptr/ingest-signed/uploaders")
        .secret_string(String::from_utf8(armored).unwrap())
        .send()
        .await
        .unwrap();
    let mut config = Config::default_local(&e.bucket);
    config
        .layouts
        .get_mut("default")
        .unwrap()
        .distributions
        .get_mut("testing")
        .unwrap()
        .upload_keyring = Some(raptr_core::config::Keyring {
        secret: Some("raptr/ingest-signed/uploaders".into()),
        file: None,
    });
    e.store
        .put(
            raptr_core::keys::CONFIG_KEY,
            Bytes::from(serde_json::to_vec(&config).unwrap()),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let mut folders = Vec::new();
    for (id, who) in [("ours", &team), ("theirs", &other)] {
        let mut files = hello_bundle();
        let (name, text) = changes("hello", "1.0-1", "testing", &files);
        files.push((name, gpg.clearsign(who, &text)));
        let folder = format!("incoming/testing/main/{id}");
        e.put_all(&folder, &files).await;
        folders.push((folder, files));
    }
    e.deliver(3).await;
    for (name, _) in &folders[0].1 {
        let key = format!("{}/{name}", folders[0].0);
        assert_eq!(e.status(&key).await, Status::Accepted, "{key}");
    }
    for (name, _) in &folders[1].1 {
        let key = format!("{}/{name}", folders[1].0);
        let report = e.report(&key).await;
        assert_eq!(report.status, Some(Status::Rejected), "{key}");
        let why = report.reason.unwrap_or_default();
        assert!(
            why.contains("signed by a key of its upload keyring"),
            "{key}: {why}"
        );
    }
}
