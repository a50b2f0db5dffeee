//! Figures, not pass/fail: lease round-trips (acquire then release) and
//! journal appends per second, on the local table and on DynamoDB in the
//! emulator. Run by `make bench`.
//!
//!     cargo run --release -p raptr-aws --example table_bench [N_LOCAL] [N_EMULATOR]

use std::sync::Arc;
use std::time::{Duration, Instant};

use raptr_aws::{dynamo_client, emulator_config, DynamoTable};
use raptr_emulator::{Emulator, Names, REGION};
use raptr_store::table::{LocalTable, Table};

const TTL: Duration = Duration::from_secs(30);

async fn leases(t: &dyn Table, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let mut lease = t
            .try_acquire("bench", "bench", TTL)
            .await
            .expect("acquire")
            .expect("free");
        t.release(&mut lease).await.expect("release");
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn appends(t: Arc<dyn Table>, n: usize, tasks: usize, tag: &str) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|k| {
            let t = t.clone();
            let tag = tag.to_string();
            tokio::spawn(async move {
                for i in 0..n / tasks {
                    t.append(&format!("{tag}-{k}-{i}"), "{\"bundle\":\"hello\"}")
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    (n / tasks * tasks) as f64 / start.elapsed().as_secs_f64()
}

async fn run(label: &str, t: Arc<dyn Table>, n: usize) {
    let l = leases(t.as_ref(), n).await;
    let a1 = appends(t.clone(), n, 1, "serial").await;
    let a8 = appends(t.clone(), n, 8, "parallel").await;
    println!(
        "{label:<22} {n:>6} ops  lease acquire+release {l:>8.0}/s  journal append {a1:>8.0}/s (1 task) {a8:>8.0}/s (8 tasks)"
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n_local: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let n_emu: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(400);

    let dir = tempfile::tempdir().expect("tempdir");
    let local: Arc<dyn Table> = Arc::new(LocalTable::open(dir.path()).expect("open"));
    run("local table", local, n_local).await;

    let emu = tokio::task::spawn_blocking(Emulator::start)
        .await
        .expect("join")
        .expect("start the emulator (run `make setup` first)");
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    let dynamo: Arc<dyn Table> = Arc::new(DynamoTable::new(
        dynamo_client(&conf),
        Names::default().table,
        "bench",
    ));
    run("DynamoDB (emulator)", dynamo, n_emu).await;
}
