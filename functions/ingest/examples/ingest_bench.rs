//! Ingest figures on the emulator (no assertions): MB/s for one large .deb,
//! bundles per second for many small ones, and the process's peak memory
//! after each, to show it stays flat in package size.
//!
//! `cargo run --release -p raptr-ingest --example ingest_bench -- [MiB] [BUNDLES]`
//! (defaults 1024 and 1000); scripts/bench.sh runs it.

#![allow(clippy::unwrap_used)]

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use raptr_aws::{dynamo_client, emulator_config, s3_client, DynamoTable, S3Store};
use raptr_core::config::Config;
use raptr_emulator::{Emulator, Names, REGION};
use raptr_ingest::Handler;
use raptr_store::fs::FsStore;
use raptr_store::table::LocalTable;
use raptr_store::PutOptions;
use serde_json::json;

/// Peak resident memory of this process so far, in MiB.
fn peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}

/// Pseudo-random bytes (incompressible, cheap to make).
struct Noise(u64, u64);

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.1 as usize);
        for chunk in buf[..n].chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
        self.1 -= n as u64;
        Ok(n)
    }
}

/// Writes a valid .deb with an uncompressed data.tar holding `size` bytes.
fn big_deb(path: &Path, size: u64) {
    let dir = path.parent().unwrap();
    let data_path = dir.join("data.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&data_path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "./usr/share/big/blob", Noise(0x9e37_79b9, size))
            .unwrap();
        b.into_inner().unwrap().flush().unwrap();
    }
    let control = raptr_testkit::gzip(&raptr_testkit::tar(&[raptr_testkit::Entry::File(
        "./control",
        raptr_testkit::control("big", "1.0", "amd64").as_bytes(),
    )]));
    let mut ar = ar::Builder::new(std::fs::File::create(path).unwrap());
    ar.append(
        &ar::Header::new(b"debian-binary".to_vec(), 4),
        &b"2.0\n"[..],
    )
    .unwrap();
    ar.append(
        &ar::Header::new(b"control.tar.gz".to_vec(), control.len() as u64),
        &control[..],
    )
    .unwrap();
    let len = std::fs::metadata(&data_path).unwrap().len();
    ar.append(
        &ar::Header::new(b"data.tar".to_vec(), len),
        std::fs::File::open(&data_path).unwrap(),
    )
    .unwrap();
    std::fs::remove_file(data_path).unwrap();
}

fn event(bucket: &str, key: &str) -> serde_json::Value {
    json!({"Records": [{"eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "bench"},
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]})
}

async fn measure(label: &str, handler: Handler, mib: u64, bundles: usize) {
    let store = handler.store.clone();
    let bucket = handler.bucket.clone();
    let dir = tempfile::tempdir().unwrap();
    println!("== ingest, {label}");
    for size in [64, mib] {
        let path = dir.path().join(format!("big_{size}.deb"));
        big_deb(&path, size << 20);
        let bytes = std::fs::metadata(&path).unwrap().len();
        let key = format!("incoming/stable/main/big-{size}/big_1.0_amd64.deb");
        let file = tokio::fs::File::open(&path).await.unwrap();
        store
            .put_stream(&key, Box::pin(file), PutOptions::default())
            .await
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let t = Instant::now();
        let out = handler.handle(event(&bucket, &key)).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  one {size:>5} MiB deb: {}, {secs:6.1} s, {:7.1} MB/s; peak RSS so far {} MiB",
            out["outcomes"][0]["status"],
            bytes as f64 / 1e6 / secs,
            peak_mib()
        );
        // Free the space before the next one.
        let _ = store.delete("pool/main/b/big/1.0/big_1.0_amd64.deb").await;
        let _ = store.delete("pool/main/b/big/1.0/manifest.json").await;
    }

    let mut keys = Vec::with_capacity(bundles);
    let mut size = 0;
    for i in 0..bundles {
        let key = format!("incoming/stable/main/ci-{i}/small{i}_1.0_amd64.deb");
        let bytes = raptr_testkit::deb(&format!("small{i}"), "1.0", "amd64", None, "s");
        size = bytes.len();
        store
            .put(&key, bytes.into(), PutOptions::default())
            .await
            .unwrap();
        keys.push(key);
    }
    let t = Instant::now();
    let handler = Arc::new(handler);
    let mut tasks = Vec::new();
    for chunk in keys.chunks(bundles.div_ceil(16).max(1)) {
        let (handler, chunk, bucket) = (handler.clone(), chunk.to_vec(), bucket.clone());
        tasks.push(tokio::spawn(async move {
            for key in chunk {
                handler.handle(event(&bucket, &key)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  {bundles} one-deb bundles ({size} bytes each), 16 at a time: {secs:6.1} s, {:6.1} bundles/s; peak RSS so far {} MiB",
        bundles as f64 / secs,
        peak_mib()
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let bundles: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000);

    // A local repository: a directory and a file-locked table.
    let local = tempfile::tempdir().unwrap();
    let store = Arc::new(FsStore::open(local.path().join("repo")).unwrap());
    let table = Arc::new(LocalTable::open(local.path().join("table")).unwrap());
    raptr_core::repo::init(store.as_ref(), "local", &Config::default_local("local"))
        .await
        .unwrap();
    let handler = Handler {
        bucket: "local".into(),
        store,
        journal: table,
        keyrings: None,
    };
    measure("local directory", handler, mib, bundles).await;

    let emu = tokio::task::spawn_blocking(Emulator::start)
        .await
        .unwrap()
        .unwrap();
    let names = Names {
        bucket: "raptr-bench".into(),
        replicas: Vec::new(),
        table: "raptr".into(),
        queue: "raptr-bench".into(),
    };
    emu.bootstrap(&names).unwrap();
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
    let handler = Handler {
        bucket: names.bucket.clone(),
        store,
        journal: table,
        keyrings: None,
    };
    measure("S3 and DynamoDB on the emulator", handler, mib, bundles).await;
}
