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
    suite::cas_counter(&[s], "t", 32, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_directory_share_locks() {
    // Two handles on one directory behave like two processes: compare-and-swap
    // still holds between them.
    let dir = tempfile::tempdir().expect("tempdir");
    let a: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).expect("open"));
    let b: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).expect("open"));
    suite::cas_counter(&[a, b], "t", 8, 25).await;
}
