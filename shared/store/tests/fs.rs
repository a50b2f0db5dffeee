//! The conformance suite on the filesystem adapter.

use std::sync::Arc;

use raptr_store::conformance as suite;
use raptr_store::fs::FsStore;
use raptr_store::ObjectStore;

fn store() -> (tempfile::TempDir, Arc<dyn ObjectStore>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsStore::open(dir.path()).expect("open");
    (dir, Arc::new(store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn round_trip() {
    let (_d, s) = store();
    suite::round_trip(s.as_ref(), "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_modes() {
    let (_d, s) = store();
    suite::put_modes(s.as_ref(), "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_if_absent_or_same() {
    let (_d, s) = store();
    suite::put_if_absent_or_same(s.as_ref(), "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy() {
    let (_d, s) = store();
    suite::copy(s.as_ref(), "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_and_list() {
    let (_d, s) = store();
    suite::delete_and_list(s.as_ref(), "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_keys() {
    let (_d, s) = store();
    suite::invalid_keys(s.as_ref(), "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_only_race() {
    let (_d, s) = store();
    suite::create_only_race(s, "t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cas_counter_32_tasks_50_rounds() {
    let (_d, s) = store();
    suite::cas_counter(s, "t", 32, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_directory_share_locks() {
    // Two handles on one directory behave like two processes: create-only and
    // compare-and-swap still hold between them.
    let dir = tempfile::tempdir().expect("tempdir");
    let a: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).expect("open"));
    let b: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).expect("open"));
    let key = "shared/counter";
    a.put(key, "0".into(), raptr_store::PutOptions::create_only())
        .await
        .expect("init");
    let mut handles = Vec::new();
    for store in [a.clone(), b.clone(), a, b] {
        handles.push(tokio::spawn(async move {
            for _ in 0..25 {
                loop {
                    let (body, meta) = store.get(key).await.expect("get");
                    let n: u64 = std::str::from_utf8(&body)
                        .expect("utf-8")
                        .parse()
                        .expect("n");
                    let r = store
                        .put(
                            key,
                            (n + 1).to_string().into(),
                            raptr_store::PutOptions::if_match(meta.etag),
                        )
                        .await;
                    if r.is_ok() {
                        break;
                    }
                }
            }
            store
        }));
    }
    let mut last = None;
    for h in handles {
        last = Some(h.await.expect("task"));
    }
    let store = last.expect("a store");
    assert_eq!(
        store.get(key).await.expect("get").0,
        bytes::Bytes::from("100")
    );
}
