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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streaming() {
    let (_d, s) = store();
    suite::streaming(s.as_ref(), "t", 12 << 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compose() {
    let (_d, s) = store();
    suite::compose(s.as_ref(), "t", 3 << 20).await;
}

mod table {
    use std::process::Command;
    use std::sync::Arc;

    use raptr_store::conformance::table as suite;
    use raptr_store::fs::FsStore;
    use raptr_store::table::{LocalTable, Table};
    use raptr_store::ObjectStore;

    fn table() -> (tempfile::TempDir, Arc<dyn Table>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = LocalTable::open(dir.path()).expect("open");
        (dir, Arc::new(t))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn lease_basics() {
        let (_d, t) = table();
        suite::lease_basics(t.as_ref(), "repo").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn lease_expiry_fences_late_writes() {
        let (_d, t) = table();
        let (_s, s) = super::store();
        suite::lease_expiry_fences_late_writes(t.as_ref(), s.as_ref(), "t", "repo").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn lease_wakeup_marks() {
        let (_d, t) = table();
        suite::lease_wakeup_marks(t.as_ref(), "repo").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_lost_wakeup_32_tasks() {
        let (_d, t) = table();
        suite::no_lost_wakeup(&[t], "repo", 32, 5).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn counter_under_lease_32_tasks_50_rounds() {
        let (_d, t) = table();
        let (_s, s) = super::store();
        suite::counter_under_lease(&[t], &[s], "t", "repo", 32, 50).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn journal_append_once() {
        let (_d, t) = table();
        suite::journal_append_once(t.as_ref()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn journal_concurrent_appends() {
        let (_d, t) = table();
        suite::journal_concurrent_appends(t, 32, 20).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn journal_mark_done_fenced() {
        let (_d, t) = table();
        suite::journal_mark_done_fenced(t.as_ref(), "repo").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replica_generations() {
        let (_d, t) = table();
        suite::replica_generations(t.as_ref(), "repo").await;
    }

    /// More contention than the suite's: `RAPTR_STRESS_TASKS` tasks (128 by
    /// default) × 20 increments. Not run by default:
    /// `cargo test -p raptr-store --test fs -- --ignored stress`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore]
    async fn stress_counter_under_lease() {
        let tasks = std::env::var("RAPTR_STRESS_TASKS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(128);
        let (_d, t) = table();
        let (_s, s) = super::store();
        suite::counter_under_lease(&[t], &[s], "t", "repo", tasks, 20).await;
    }

    const CHILD_ENV: &str = "RAPTR_COUNTER_CHILD";

    /// Run as a child process by `counter_under_lease_across_processes`:
    /// does nothing unless the parent set `RAPTR_COUNTER_CHILD`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn counter_child_process() {
        let Ok(spec) = std::env::var(CHILD_ENV) else {
            return;
        };
        let mut parts = spec.splitn(4, '|');
        let (Some(table_dir), Some(store_dir), Some(tasks), Some(rounds)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("bad {CHILD_ENV}: {spec}");
        };
        let t: Arc<dyn Table> = Arc::new(LocalTable::open(table_dir).expect("open table"));
        let s: Arc<dyn ObjectStore> = Arc::new(FsStore::open(store_dir).expect("open store"));
        let tasks: usize = tasks.parse().expect("tasks");
        let rounds: usize = rounds.parse().expect("rounds");
        let pid = std::process::id();
        let handles: Vec<_> = (0..tasks)
            .map(|i| {
                let (t, s) = (t.clone(), s.clone());
                tokio::spawn(async move {
                    let owner = format!("pid{pid}-task{i}");
                    suite::counter_work(t.as_ref(), s.as_ref(), "t", "repo", &owner, rounds).await
                })
            })
            .collect();
        for h in handles {
            h.await.expect("task");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn counter_under_lease_across_processes() {
        // Four processes of eight tasks, each task 50 increments under the
        // lease, plus eight tasks in this process.
        let (table_dir, _t) = table();
        let (store_dir, s) = super::store();
        suite::counter_init(s.as_ref(), "t").await;
        let spec = format!(
            "{}|{}|8|50",
            table_dir.path().display(),
            store_dir.path().display()
        );
        let exe = std::env::current_exe().expect("test binary");
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(&exe)
                    .args(["--exact", "table::counter_child_process", "--nocapture"])
                    .env(CHILD_ENV, &spec)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .expect("spawn child")
            })
            .collect();
        let t: Arc<dyn Table> = Arc::new(LocalTable::open(table_dir.path()).expect("open"));
        let local: Vec<_> = (0..8)
            .map(|i| {
                let (t, s) = (t.clone(), s.clone());
                tokio::spawn(async move {
                    suite::counter_work(
                        t.as_ref(),
                        s.as_ref(),
                        "t",
                        "repo",
                        &format!("parent-{i}"),
                        50,
                    )
                    .await
                })
            })
            .collect();
        for h in local {
            h.await.expect("task");
        }
        for mut c in children {
            let status = tokio::task::spawn_blocking(move || c.wait())
                .await
                .expect("join")
                .expect("wait");
            assert!(status.success(), "a child process failed: {status}");
        }
        assert_eq!(suite::counter_value(s.as_ref(), "t").await, 5 * 8 * 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copy_large() {
    let (_d, s) = store();
    suite::copy_large(s.as_ref(), "t", 12 << 20).await;
}
