//! The conformance suite of `raptr-store` on the AWS adapters, against the
//! emulator (moto's server, started once for this test binary), plus what
//! the bootstrap promises: buckets, table, and S3 events in the queue.

use std::process::Command;
use std::sync::Arc;

use raptr_aws::{dynamo_client, emulator_config, s3_client, DynamoTable, S3Options, S3Store};
use raptr_emulator::{Emulator, Names, REGION};
use raptr_store::conformance as suite;
use raptr_store::conformance::table as tsuite;
use raptr_store::table::Table;
use raptr_store::{ObjectStore, PutOptions};

async fn emulator() -> &'static Emulator {
    tokio::task::spawn_blocking(Emulator::shared)
        .await
        .expect("emulator")
}

async fn store() -> Arc<dyn ObjectStore> {
    let emu = emulator().await;
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    let store = S3Store::new(s3_client(&conf, None, true), Names::default().bucket).with_options(
        S3Options {
            part_size: 5 << 20,
            copy_part_size: 5 << 20,
        },
    );
    Arc::new(store)
}

/// A table handle on its own namespace.
async fn table(ns: &str) -> Arc<dyn Table> {
    let emu = emulator().await;
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    Arc::new(DynamoTable::new(
        dynamo_client(&conf),
        Names::default().table,
        ns,
    ))
}

macro_rules! store_tests {
    ($($name:ident),*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let s = store().await;
            suite::$name(s.as_ref(), stringify!($name)).await;
        }
    )*};
}

store_tests!(
    round_trip,
    put_modes,
    put_if_absent_or_same,
    copy,
    delete_and_list,
    invalid_keys
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streaming_multipart() {
    // 12 MiB with 5 MiB parts: three parts, the last one short.
    let s = store().await;
    suite::streaming(s.as_ref(), "streaming_multipart", 12 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streaming_single_put() {
    let s = store().await;
    suite::streaming(s.as_ref(), "streaming_single_put", 100 << 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compose_multipart() {
    // 12 MiB of base ranges and new bytes, streamed in 5 MiB parts.
    let s = store().await;
    suite::compose(s.as_ref(), "compose_multipart", 12 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_large_multipart() {
    let s = store().await;
    suite::copy_large(s.as_ref(), "copy_large_multipart", 12 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_only_race() {
    suite::create_only_race(store().await, "create_only_race").await;
}

// The counters run 8 rounds here (the directory store's suite runs 50):
// the contention is the same, 32 tasks on two clients, and these two are
// most of the emulator's time (it serves one request at a time);
// `stress_counter_under_lease` runs more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_counter_32_tasks_8_rounds() {
    // Two clients: like two Lambda instances.
    let stores = [store().await, store().await];
    suite::cas_counter(&stores, "cas_counter", 32, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_basics() {
    tsuite::lease_basics(table("lease_basics").await.as_ref(), "repo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_expiry_fences_late_writes() {
    let (t, s) = (table("lease_expiry").await, store().await);
    tsuite::lease_expiry_fences_late_writes(t.as_ref(), s.as_ref(), "lease_expiry", "repo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lease_wakeup_marks() {
    tsuite::lease_wakeup_marks(table("lease_wakeup_marks").await.as_ref(), "repo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_lost_wakeup_32_tasks() {
    let tables = [table("no_lost_wakeup").await, table("no_lost_wakeup").await];
    tsuite::no_lost_wakeup(&tables, "repo", 32, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_under_lease_32_tasks_8_rounds() {
    let tables = [
        table("counter_under_lease").await,
        table("counter_under_lease").await,
    ];
    let stores = [store().await, store().await];
    tsuite::counter_under_lease(&tables, &stores, "counter_under_lease", "repo", 32, 8).await;
}

/// More contention than the suite's: `RAPTR_STRESS_TASKS` tasks (64 by
/// default) × 10 increments. Not run by default:
/// `cargo test -p raptr-aws --test emulator -- --ignored stress`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn stress_counter_under_lease() {
    let tasks = std::env::var("RAPTR_STRESS_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let tables = [table("stress").await, table("stress").await];
    let stores = [store().await, store().await];
    tsuite::counter_under_lease(&tables, &stores, "stress", "repo", tasks, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journal_append_once() {
    tsuite::journal_append_once(table("journal_append_once").await.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journal_concurrent_appends() {
    tsuite::journal_concurrent_appends(table("journal_concurrent").await, 32, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journal_mark_done_fenced() {
    tsuite::journal_mark_done_fenced(table("journal_mark_done").await.as_ref(), "repo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_generations() {
    tsuite::replica_generations(table("replica_generations").await.as_ref(), "repo").await;
}

/// Runs the AWS CLI against the emulator; returns its standard output.
fn aws(emu: &Emulator, args: &[&str]) -> String {
    let out = Command::new("aws")
        .args(["--endpoint-url", &emu.endpoint()])
        .args(args)
        .envs(emu.env())
        .output()
        .expect("run aws");
    assert!(
        out.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_buckets_and_events() {
    let emu = emulator().await;
    let names = Names::default();
    // Every bucket exists, replicas in their own regions.
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    for (bucket, region) in &names.replicas {
        let s3 = s3_client(&conf, Some(region), true);
        let loc = s3
            .get_bucket_location()
            .bucket(bucket)
            .send()
            .await
            .expect("replica bucket exists");
        assert_eq!(
            loc.location_constraint().map(|c| c.as_str()),
            Some(region.as_str())
        );
    }
    // The bootstrap runs twice without harm.
    tokio::task::spawn_blocking(|| Emulator::shared().bootstrap(&Names::default()))
        .await
        .expect("join")
        .expect("second bootstrap");

    // What a CI job does: `aws s3 cp` under incoming/. The event reaches the
    // queue; keys outside incoming/ and requests/ send none.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("g++_1.0 1_amd64.deb");
    std::fs::write(&file, b"not really a deb").expect("write");
    let key = "incoming/stable/main/build-1/g++_1.0 1_amd64.deb";
    let s = store().await;
    s.put("reports/ignored.json", "{}".into(), PutOptions::default())
        .await
        .expect("put");
    let file_arg = file.to_str().expect("utf-8 path").to_string();
    let target = format!("s3://{}/{key}", names.bucket);
    let queue_url = {
        let emu_env = emu;
        let q = names.queue.clone();
        tokio::task::spawn_blocking(move || {
            aws(emu_env, &["s3", "cp", &file_arg, &target]);
            aws(
                emu_env,
                &[
                    "sqs",
                    "get-queue-url",
                    "--queue-name",
                    &q,
                    "--query",
                    "QueueUrl",
                    "--output",
                    "text",
                ],
            )
        })
        .await
        .expect("join")
        .trim()
        .to_string()
    };
    let mut keys = Vec::new();
    for _ in 0..10 {
        let url = queue_url.clone();
        let out = tokio::task::spawn_blocking(move || {
            aws(
                emu,
                &[
                    "sqs",
                    "receive-message",
                    "--queue-url",
                    &url,
                    "--max-number-of-messages",
                    "10",
                    "--wait-time-seconds",
                    "1",
                ],
            )
        })
        .await
        .expect("join");
        if out.trim().is_empty() {
            if keys.is_empty() {
                continue;
            }
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&out).expect("receive-message JSON");
        for m in v["Messages"].as_array().cloned().unwrap_or_default() {
            let body: serde_json::Value =
                serde_json::from_str(m["Body"].as_str().expect("body")).expect("event JSON");
            for r in body["Records"].as_array().cloned().unwrap_or_default() {
                assert_eq!(r["s3"]["bucket"]["name"], names.bucket.as_str());
                keys.push(r["s3"]["object"]["key"].as_str().expect("key").to_string());
            }
        }
    }
    // Event keys are URL-encoded, spaces as `+`.
    assert_eq!(
        keys.len(),
        1,
        "one event, for the incoming object only: {keys:?}"
    );
    assert!(keys[0].contains("g%2B%2B_1.0+1"), "encoded: {}", keys[0]);
    assert_eq!(raptr_aws::decode_event_key(&keys[0]).as_deref(), Some(key));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn journal_idempotency_keys_expire_through_the_table_ttl() {
    use raptr_store::table::Journal;
    let emu = emulator().await;
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    let client = dynamo_client(&conf);
    let names = Names::default();
    let ttl = client
        .describe_time_to_live()
        .table_name(&names.table)
        .send()
        .await
        .expect("describe-time-to-live");
    let spec = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(spec.attribute_name(), Some("ttl"));
    assert_eq!(
        spec.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );

    let ns = "journal_ttl";
    let journal = DynamoTable::new(client.clone(), &names.table, ns);
    let body = r#"{"kind":"link","distribution":"stable","component":"main","pool":"pool/main/h/hello/1.0-1"}"#;
    journal.append("incoming/a", body).await.expect("append");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let item = client
        .get_item()
        .table_name(&names.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("{ns}#id#incoming/a")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("id".into()),
        )
        .send()
        .await
        .expect("get-item")
        .item
        .expect("the idempotency key");
    let ttl: u64 = item["ttl"].as_n().expect("a number").parse().expect("u64");
    let expected = now + raptr_aws::dynamo::ID_TTL_S;
    assert!(
        ttl.abs_diff(expected) < 120,
        "ttl {ttl}, expected about {expected}"
    );
    // The journal entry itself carries none: it leaves when applied.
    let entries = journal.pending(10).await.expect("pending");
    assert_eq!(entries.len(), 1);
}
