//! Figures, not pass/fail: what `raptr list`, `show` and `search` cost on a
//! repository of N packages, on a local directory and on S3 in the
//! emulator: wall time and store requests, through the same functions the
//! command runs, then the `raptr` binary itself for the wall time a user
//! sees. Run by `make bench` (section 6).
//!
//! The repository: N one-package bundles linked in `stable`, every other
//! one also in `testing`, in the link state exactly as the publisher keeps
//! it (64 shards per distribution); the bundle `show` reads has three
//! versions with their manifests. Nothing else is needed: these commands
//! read no index and no other bundle's manifest.
//!
//!     cargo run --release -p raptr-aws --example inventory_bench -- N [RAPTR_BINARY]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use raptr_aws::{emulator_config, s3_client, S3Store};
use raptr_core::config::Config;
use raptr_core::inventory;
use raptr_core::manifest::{Manifest, ManifestFile};
use raptr_core::publish::links::Links;
use raptr_core::publish::state::State;
use raptr_emulator::{Emulator, Names, REGION};
use raptr_store::fs::FsStore;
use raptr_store::{ByteReader, ListPage, ObjectMeta, ObjectStore, PutOptions, Result};

/// An object store that counts the requests made through it.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn ObjectStore>,
    gets: AtomicU64,
    lists: AtomicU64,
}

impl Counting {
    fn new(inner: Arc<dyn ObjectStore>) -> Counting {
        Counting {
            inner,
            gets: AtomicU64::new(0),
            lists: AtomicU64::new(0),
        }
    }
    fn take(&self) -> (u64, u64) {
        (
            self.gets.swap(0, Ordering::Relaxed),
            self.lists.swap(0, Ordering::Relaxed),
        )
    }
    fn get(&self) {
        self.gets.fetch_add(1, Ordering::Relaxed);
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        self.get();
        self.inner.get(key).await
    }
    async fn get_limited(&self, key: &str, limit: u64) -> Result<(Bytes, ObjectMeta)> {
        self.get();
        self.inner.get_limited(key, limit).await
    }
    async fn get_stream(&self, key: &str) -> Result<(ByteReader, ObjectMeta)> {
        self.get();
        self.inner.get_stream(key).await
    }
    async fn put_stream(
        &self,
        key: &str,
        body: ByteReader,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        self.inner.put_stream(key, body, opts).await
    }
    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes> {
        self.get();
        self.inner.get_range(key, start, end).await
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.get();
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        self.inner.put(key, body, opts).await
    }
    async fn copy(
        &self,
        from: &str,
        to: &str,
        if_match: Option<&str>,
        create_only: bool,
    ) -> Result<ObjectMeta> {
        self.inner.copy(from, to, if_match, create_only).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(key).await
    }
    async fn list_page(&self, prefix: &str, after: Option<String>) -> Result<ListPage> {
        self.lists.fetch_add(1, Ordering::Relaxed);
        self.inner.list_page(prefix, after).await
    }
}

const SHOWN: &str = "bench-pkg000042";

/// Writes the configuration, the link state of `n` bundles, and the
/// manifests of [`SHOWN`]'s three versions.
async fn prepare(store: &dyn ObjectStore, n: usize, bucket: &str) {
    let config = Config::default_local(bucket);
    raptr_core::repo::init(store, bucket, &config)
        .await
        .expect("init");
    let mut stable = BTreeMap::new();
    let mut testing = BTreeMap::new();
    for i in 0..n {
        let name = format!("bench-pkg{i:06}");
        let versions: &[&str] = if name == SHOWN {
            &["1.0-1", "1.1-1", "2.0-1"]
        } else {
            &["1.0-1"]
        };
        for v in versions {
            let dir = format!("pool/main/b/{name}/{v}");
            let files = BTreeSet::from([format!("{name}_{v}_amd64.deb")]);
            if i % 2 == 0 {
                testing.insert(dir.clone(), files.clone());
            }
            stable.insert(dir, files);
        }
    }
    let mut state = State {
        generation: 1,
        links: Links::from_map(BTreeMap::from([
            ("stable".to_string(), stable),
            ("testing".to_string(), testing),
        ])),
        ..State::default()
    };
    state.save(store, None).await.expect("save the state");
    for v in ["1.0-1", "1.1-1", "2.0-1"] {
        let file = format!("{SHOWN}_{v}_amd64.deb");
        let entry: ManifestFile = serde_json::from_value(serde_json::json!({
            "kind": "deb", "size": 1000, "md5": "0".repeat(32), "sha1": "0".repeat(40),
            "sha256": "0".repeat(64), "sha512": "0".repeat(128),
            "package": SHOWN, "package_version": v, "architecture": "amd64",
            "uploader": "bench", "uploaded_at": "2026-12-01T00:00:00.000Z",
            "upload": format!("incoming/stable/main/bench/{file}@bench"),
        }))
        .expect("a manifest entry");
        let m = Manifest {
            bundle: SHOWN.into(),
            version: v.into(),
            component: "main".into(),
            files: BTreeMap::from([(file, entry)]),
            purging: BTreeMap::new(),
        };
        store
            .put(
                &format!("pool/main/b/{SHOWN}/{v}/manifest.json"),
                Bytes::from(serde_json::to_vec(&m).expect("json")),
                PutOptions::default(),
            )
            .await
            .expect("manifest");
    }
}

async fn measure(label: &str, store: Arc<Counting>, bucket: &str) {
    let config = raptr_core::repo::load_config(store.as_ref(), bucket)
        .await
        .expect("config");
    let row = |what: &str, secs: f64, (gets, lists): (u64, u64), rows: usize| {
        println!(
            "  {label:<9} {what:<34} {secs:>7.3} s  {gets:>4} GET  {lists:>3} LIST  ({rows} rows)"
        );
    };
    store.take();
    let t = Instant::now();
    let (mut state, _) = State::load(store.as_ref()).await.expect("state");
    let dists = inventory::distributions(&config, &state);
    let rows = inventory::linked(store.as_ref(), &mut state, &dists)
        .await
        .expect("list");
    row(
        "list (every distribution)",
        t.elapsed().as_secs_f64(),
        store.take(),
        rows.len(),
    );

    let t = Instant::now();
    let (mut state, _) = State::load(store.as_ref()).await.expect("state");
    let rows = inventory::linked(store.as_ref(), &mut state, &["stable".to_string()])
        .await
        .expect("list")
        .into_iter()
        .filter(|r| r.names(SHOWN))
        .count();
    row(
        "list stable --package P",
        t.elapsed().as_secs_f64(),
        store.take(),
        rows,
    );

    let t = Instant::now();
    let (mut state, _) = State::load(store.as_ref()).await.expect("state");
    let versions = inventory::versions(store.as_ref(), &config, &mut state, SHOWN)
        .await
        .expect("show");
    row(
        "show P (3 versions)",
        t.elapsed().as_secs_f64(),
        store.take(),
        versions.len(),
    );
}

/// The `raptr` binary's own wall time for a command, output discarded.
fn binary(label: &str, raptr: &str, env: &[(String, String)], args: &[&str]) {
    let t = Instant::now();
    let out = Command::new(raptr)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .args(args)
        .output()
        .expect("raptr runs");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "  {label:<9} {:<34} {secs:>7.3} s  (the binary, {} bytes out)",
        format!("raptr {}", args[2..].join(" ")),
        out.stdout.len()
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let raptr = args.next();

    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("repo");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let local: Arc<dyn ObjectStore> = Arc::new(FsStore::open(&dir).expect("open"));
    let t = Instant::now();
    prepare(local.as_ref(), n, "local").await;
    eprintln!(
        "  (local repository of {n} packages prepared in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    measure("local", Arc::new(Counting::new(local)), "local").await;
    if let Some(raptr) = &raptr {
        let repo = dir.to_str().expect("utf-8");
        binary("local", raptr, &[], &["--repo", repo, "list"]);
        binary("local", raptr, &[], &["--repo", repo, "show", SHOWN]);
        binary("local", raptr, &[], &["--repo", repo, "search", "*42"]);
    }

    let emu = tokio::task::spawn_blocking(Emulator::start)
        .await
        .expect("join")
        .expect("start the emulator (run `make setup` first)");
    let bucket = "raptr-inventory-bench";
    emu.bootstrap(&Names {
        bucket: bucket.into(),
        replicas: Vec::new(),
        table: "raptr".into(),
        queue: "raptr-inventory-bench".into(),
    })
    .expect("bootstrap");
    let conf = emulator_config(&emu.endpoint(), REGION).await;
    let s3: Arc<dyn ObjectStore> = Arc::new(S3Store::new(s3_client(&conf, None, true), bucket));
    let t = Instant::now();
    prepare(s3.as_ref(), n, bucket).await;
    eprintln!(
        "  (emulator repository prepared in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    measure("emulator", Arc::new(Counting::new(s3)), bucket).await;
    if let Some(raptr) = &raptr {
        let env = emu.env();
        let repo = format!("s3://{bucket}");
        binary("emulator", raptr, &env, &["--repo", &repo, "list"]);
        binary("emulator", raptr, &env, &["--repo", &repo, "show", SHOWN]);
        binary("emulator", raptr, &env, &["--repo", &repo, "search", "*42"]);
    }
}
