//! The publisher on the local adapters: a primary directory, three replica
//! directories and a file-locked table. Every check reads a bucket the way
//! apt does: `InRelease` verified with the public key, then each listed
//! index fetched by hash, then each pool file those indices reference.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raptr_core::config::{Config, Distribution, Replica as ReplicaConfig};
use raptr_core::ingest::{Ingest, ObjectEvent};
use raptr_core::progress::Progress;
use raptr_core::publish::index::release_files;
use raptr_core::publish::{PublishError, Publisher, Replica, Summary, CACHE_IMMUTABLE};
use raptr_core::report::Report;
use raptr_core::signing::{self, Signer};
use raptr_store::fs::FsStore;
use raptr_store::table::{Journal, LocalTable};
use raptr_store::{ObjectStore, PutOptions, StoreError};
use raptr_testkit::apt::{client_view, lines, View};
use raptr_testkit::faults::{Faults, FaultyStore};
use raptr_testkit::{deb, deb_name, source_package, File};

const REPLICAS: [&str; 3] = ["eu", "us", "ap"];

struct World {
    dir: tempfile::TempDir,
    primary: Arc<FsStore>,
    table: Arc<LocalTable>,
    replicas: Vec<(String, Arc<FsStore>)>,
    config: Config,
    signer: Arc<Signer>,
}

fn config() -> Config {
    let mut c = Config::default_local("primary");
    for (name, d) in c
        .layouts
        .get_mut("default")
        .unwrap()
        .distributions
        .iter_mut()
    {
        d.architectures = ["amd64", "arm64", "source"].map(String::from).to_vec();
        // stable has `.xz` indices too; every check of it reads them.
        d.xz = name == "stable";
    }
    c.replicas = REPLICAS
        .iter()
        .map(|n| ReplicaConfig {
            name: n.to_string(),
            bucket: format!("replica-{n}"),
            region: "local".into(),
            layout: "default".into(),
        })
        .collect();
    c
}

/// A signing key made once for the whole test binary (generating is cheap,
/// but one key keeps gpgv keyrings simple).
fn key() -> Arc<Signer> {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let armored = KEY.get_or_init(|| {
        signing::generate(
            "raptr tests <tests@raptr.invalid>",
            signing::Algorithm::Ed25519,
        )
        .unwrap()
        .0
    });
    Arc::new(Signer::from_secret(armored.as_bytes(), "test key").unwrap())
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let primary = Arc::new(FsStore::open(dir.path().join("primary")).unwrap());
    let table = Arc::new(LocalTable::open(dir.path().join("table")).unwrap());
    let replicas = REPLICAS
        .iter()
        .map(|n| {
            let s = Arc::new(FsStore::open(dir.path().join(format!("replica-{n}"))).unwrap());
            (n.to_string(), s)
        })
        .collect();
    World {
        dir,
        primary,
        table,
        replicas,
        config: config(),
        signer: key(),
    }
}

fn ms_later(hours: u64) -> u64 {
    raptr_core::time::now_ms() + hours * 3_600_000
}

fn in_49_hours() -> u64 {
    ms_later(49)
}

fn in_13_hours() -> u64 {
    ms_later(13)
}

impl World {
    fn publisher_with(
        &self,
        config: Config,
        faults: &Arc<Faults>,
        replica_faults: Option<(&str, Arc<Faults>)>,
    ) -> Publisher {
        let primary = FaultyStore::new(self.primary.clone(), faults.clone());
        let replicas = self
            .replicas
            .iter()
            .map(|(name, s)| {
                let mut store: Arc<dyn ObjectStore> = FaultyStore::new(s.clone(), faults.clone());
                if let Some((n, f)) = &replica_faults {
                    if n == name {
                        store = FaultyStore::new(store, f.clone());
                    }
                }
                Replica {
                    name: name.clone(),
                    store,
                    distributions: ["stable", "testing"].map(String::from).into(),
                }
            })
            .collect();
        let mut p = Publisher::new(
            primary,
            self.table.clone(),
            config,
            self.signer.clone(),
            replicas,
            format!("test-{}", raptr_core::time::now_ms()),
        );
        p.replica_attempts = 1;
        p
    }

    /// The distributions of the layout, to change the configuration.
    fn distributions(&mut self) -> impl Iterator<Item = &mut Distribution> {
        let layout = self.config.layouts.get_mut("default").unwrap();
        layout.distributions.values_mut()
    }

    fn publisher(&self) -> Publisher {
        self.publisher_with(self.config.clone(), &Faults::none(), None)
    }

    async fn publish(&self) -> Summary {
        self.publisher().run().await.unwrap()
    }

    async fn upload(&self, dist: &str, id: &str, files: &[File]) {
        let ingest = Ingest::new(
            self.primary.clone(),
            self.table.clone(),
            self.config.clone(),
        );
        for (name, bytes) in files {
            let key = format!("incoming/{dist}/main/{id}/{name}");
            self.primary
                .put(&key, Bytes::copy_from_slice(bytes), PutOptions::default())
                .await
                .unwrap();
            ingest
                .handle(&ObjectEvent {
                    key,
                    uploader: "tests".into(),
                })
                .await
                .unwrap();
        }
    }

    async fn request(&self, name: &str, body: &str) -> Report {
        let ingest = Ingest::new(
            self.primary.clone(),
            self.table.clone(),
            self.config.clone(),
        );
        let key = raptr_core::request::key_for(body.as_bytes(), &format!("{name}.json"))
            .unwrap_or_else(|| format!("requests/{name}.json"));
        self.primary
            .put(&key, Bytes::from(body.to_string()), PutOptions::default())
            .await
            .unwrap();
        ingest
            .handle(&ObjectEvent {
                key: key.clone(),
                uploader: "tests".into(),
            })
            .await
            .unwrap();
        Report::read(self.primary.as_ref(), &key)
            .await
            .unwrap()
            .unwrap()
    }

    fn stores(&self) -> Vec<(String, Arc<FsStore>)> {
        let mut v = vec![("primary".to_string(), self.primary.clone())];
        v.extend(self.replicas.iter().cloned());
        v
    }

    /// Every bucket's view of every distribution, checked as apt reads it.
    async fn views(&self) -> BTreeMap<String, BTreeMap<String, View>> {
        let mut out = BTreeMap::new();
        for (name, store) in self.stores() {
            let mut dists = BTreeMap::new();
            for dist in ["stable", "testing"] {
                let verify = |t: &str| self.signer.verify_clear(t).map_err(|e| e.to_string());
                if let Some(v) = client_view(store.as_ref(), &verify, dist, &name).await {
                    dists.insert(dist.to_string(), v);
                }
            }
            out.insert(name, dists);
        }
        out
    }
}

fn bundle(source: &str, version: &str) -> Vec<File> {
    let mut files = source_package(source, version, &[source]);
    for arch in ["amd64", "arm64"] {
        files.push((
            deb_name(source, version, arch),
            deb(source, version, arch, None, "x"),
        ));
    }
    let common = format!("{source}-common");
    files.push((
        deb_name(&common, version, "all"),
        deb(
            &common,
            version,
            "all",
            Some(&format!("{source} ({version})")),
            "x",
        ),
    ));
    files
}

fn gpgv(keyring: &std::path::Path, args: &[&std::path::Path]) {
    let out = Command::new("gpgv")
        .arg("--keyring")
        .arg(keyring)
        .args(args)
        .output()
        .expect("gpgv is installed (scripts/setup.sh)");
    assert!(
        out.status.success(),
        "gpgv {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn publishes_signed_indices_to_every_replica() {
    let w = world();
    w.upload("stable", "b1", &bundle("hello", "1:2.0+dfsg~rc1-1"))
        .await;
    let s = w.publish().await;
    assert!(s.ran);
    assert_eq!(s.generations, vec![1]);
    assert_eq!(s.generation, 1);
    for r in REPLICAS {
        assert_eq!(s.replicas[r].generation, 1, "{r}: {:?}", s.replicas[r]);
    }
    let views = w.views().await;
    assert_eq!(views.len(), 4);
    for (who, dists) in &views {
        let stable = &dists["stable"];
        assert_eq!(
            lines(stable, "main/binary-amd64/Packages"),
            [
                "hello 1:2.0+dfsg~rc1-1 amd64",
                "hello-common 1:2.0+dfsg~rc1-1 all"
            ],
            "{who}"
        );
        assert_eq!(
            lines(stable, "main/binary-arm64/Packages"),
            [
                "hello 1:2.0+dfsg~rc1-1 arm64",
                "hello-common 1:2.0+dfsg~rc1-1 all"
            ],
            "{who}"
        );
        assert_eq!(
            stable.sources,
            BTreeSet::from(["hello 1:2.0+dfsg~rc1-1".to_string()])
        );
        // testing exists, signed, and empty.
        assert!(dists["testing"].packages.is_empty(), "{who}");
        let r = &stable.release;
        for want in [
            "Origin: raptr\n",
            "Label: raptr\n",
            "Suite: stable\n",
            "Codename: stable\n",
            "Architectures: amd64 arm64\n",
            "Components: main\n",
            "Acquire-By-Hash: yes\n",
        ] {
            assert!(r.contains(want), "{who}: {want:?} in\n{r}");
        }
        let date = r.lines().find_map(|l| l.strip_prefix("Date: ")).unwrap();
        assert!(date.ends_with(" UTC") && date.len() == 29, "{date}");
        // Uncompressed and compressed indices are both listed.
        let listed = release_files(r);
        for p in [
            "main/binary-amd64/Packages",
            "main/binary-amd64/Packages.gz",
            "main/source/Sources",
            "main/source/Sources.gz",
        ] {
            assert!(listed.contains_key(p), "{who}: {p}");
        }
    }
    // gpgv verifies InRelease and Release.gpg on every replica.
    let keyring = w.dir.path().join("repo.gpg");
    std::fs::write(&keyring, w.signer.public_gpg()).unwrap();
    for r in REPLICAS {
        let base = w.dir.path().join(format!("replica-{r}/dists/stable"));
        gpgv(&keyring, &[&base.join("InRelease")]);
        gpgv(
            &keyring,
            &[&base.join("Release.gpg"), &base.join("Release")],
        );
        let (_, store) = w.replicas.iter().find(|(n, _)| n == r).unwrap();
        assert_eq!(
            store.get("keys/repo.gpg").await.unwrap().0.as_ref(),
            w.signer.public_gpg()
        );
        let pool = store
            .head("pool/main/h/hello/2.0+dfsg~rc1-1/hello_2.0+dfsg~rc1-1_amd64.deb")
            .await
            .unwrap();
        assert_eq!(pool.cache_control.as_deref(), Some(CACHE_IMMUTABLE));
        let inrel = store.head("dists/stable/InRelease").await.unwrap();
        assert!(inrel.cache_control.unwrap().contains("max-age=60"));
    }
    // The report says which generation and replicas carry the upload.
    let key = "incoming/stable/main/b1/hello_2.0+dfsg~rc1-1_amd64.deb";
    let report = Report::read(w.primary.as_ref(), key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.generation, Some(1));
    assert_eq!(
        report.replicas,
        REPLICAS.iter().map(|r| (r.to_string(), 1)).collect()
    );

    // Nothing pending: no new generation.
    let again = w.publish().await;
    assert!(again.generations.is_empty());
    assert_eq!(again.generation, 1);

    // One more package: only the indices it touches are rewritten.
    let testing_release = w.primary.get("dists/testing/InRelease").await.unwrap().0;
    w.upload(
        "stable",
        "b2",
        &[(
            deb_name("extra", "1.0", "amd64"),
            deb("extra", "1.0", "amd64", None, "y"),
        )],
    )
    .await;
    let s = w.publish().await;
    assert_eq!(s.generations, vec![2]);
    assert_eq!(
        s.indices, 3,
        "Packages, Packages.gz and Packages.xz of stable/main/amd64"
    );
    assert_eq!(
        w.primary.get("dists/testing/InRelease").await.unwrap().0,
        testing_release
    );
    for (who, dists) in w.views().await {
        assert!(
            lines(&dists["stable"], "main/binary-amd64/Packages")
                .contains(&"extra 1.0 amd64".to_string()),
            "{who}"
        );
        assert_eq!(
            lines(&dists["stable"], "main/binary-arm64/Packages").len(),
            2,
            "{who}"
        );
    }
}

/// One crash case: the second publish of a repository dies after its n-th
/// write. Returns whether it did (false: the publish needs fewer writes).
async fn crash_case(n: u64) -> bool {
    let w = world();
    w.upload("stable", "b1", &bundle("alpha", "1.0-1")).await;
    w.publish().await;
    let before = w.views().await;
    w.upload("stable", "b2", &bundle("beta", "2.0-1")).await;
    w.request("promote", r#"{"action":"link","bundle":"alpha","version":"1.0-1","component":"main","distribution":"testing"}"#).await;

    let faults = Faults::crash_after(n);
    let result = w
        .publisher_with(w.config.clone(), &faults, None)
        .run()
        .await;
    let crashed = faults.tripped();
    match result {
        // A failed replica write is not the publisher's failure: the replica
        // is left behind and reported.
        Ok(s) if crashed => assert!(
            s.replicas.values().any(|r| r.error.is_some()),
            "write {n}: a write failed but nothing says so: {s:?}"
        ),
        Ok(_) => {}
        Err(e) => assert!(crashed, "write {n}: {e}"),
    }
    // After the crash, every bucket shows the old or the new state, and
    // always a whole one (client_view panics on a missing or wrong file).
    for (who, dists) in &w.views().await {
        let amd64 = lines(&dists["stable"], "main/binary-amd64/Packages");
        let old = lines(&before[who]["stable"], "main/binary-amd64/Packages");
        assert!(
            amd64 == old || amd64.len() == 4,
            "write {n}: {who}: {amd64:?}"
        );
    }
    // The next run converges.
    let s = w.publish().await;
    assert!(s
        .replicas
        .values()
        .all(|r| r.error.is_none() && r.generation == s.generation));
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], "main/binary-amd64/Packages"),
            [
                "alpha 1.0-1 amd64",
                "alpha-common 1.0-1 all",
                "beta 2.0-1 amd64",
                "beta-common 2.0-1 all"
            ],
            "write {n}: {who}"
        );
        assert_eq!(
            lines(&dists["testing"], "main/binary-amd64/Packages"),
            ["alpha 1.0-1 amd64", "alpha-common 1.0-1 all"],
            "write {n}: {who}"
        );
        assert_eq!(dists["stable"].sources.len(), 2, "write {n}: {who}");
    }
    assert!(w.table.pending(10).await.unwrap().is_empty(), "write {n}");
    crashed
}

/// Runs `case(n)` for n = 0, 1, 2, ... (eight at a time: each is mostly
/// waiting for fsync) until a case runs without crashing; returns that n,
/// the number of writes the run makes.
async fn every_crash_point<F, Fut>(case: F) -> u64
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let mut first = 0u64;
    loop {
        let mut set = tokio::task::JoinSet::new();
        for n in first..first + 8 {
            let run = case(n);
            set.spawn(async move { (n, run.await) });
        }
        let mut done = None;
        while let Some(r) = set.join_next().await {
            let (n, crashed) = r.unwrap();
            if !crashed {
                done = Some(done.map_or(n, |d: u64| d.min(n)));
            }
        }
        if let Some(n) = done {
            return n;
        }
        first += 8;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_after_any_write_leaves_every_replica_consistent() {
    let total = every_crash_point(crash_case).await;
    // Every write of a publish to three replicas was a crash point.
    assert!(total > 40, "only {total} writes");
}

#[tokio::test]
async fn two_publishers_at_once_lose_nothing() {
    let w = world();
    for i in 0..6 {
        w.upload(
            "stable",
            &format!("b{i}"),
            &[(
                deb_name(&format!("p{i}"), "1.0", "amd64"),
                deb(&format!("p{i}"), "1.0", "amd64", None, "z"),
            )],
        )
        .await;
    }
    let (a, b) = (w.publisher(), w.publisher());
    let (ra, rb) = tokio::join!(a.run(), b.run());
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.ran || rb.ran);
    let made: Vec<u64> = ra
        .generations
        .iter()
        .chain(&rb.generations)
        .copied()
        .collect();
    let distinct: BTreeSet<u64> = made.iter().copied().collect();
    assert_eq!(
        made.len(),
        distinct.len(),
        "a generation was made twice: {made:?}"
    );
    assert!(w.table.pending(10).await.unwrap().is_empty());
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], "main/binary-amd64/Packages").len(),
            6,
            "{who}"
        );
    }
}

#[tokio::test]
async fn unlink_and_purge_keep_what_is_still_linked() {
    let w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    let r = w.request("promote", r#"{"action":"link","bundle":"foo","version":"1.0-1","component":"main","distribution":"testing"}"#).await;
    assert_eq!(
        r.status,
        Some(raptr_formats::bundle::Status::Accepted),
        "{r:?}"
    );
    w.publish().await;
    let r = w.request("unlink", r#"{"action":"unlink","bundle":"foo","version":"all","component":"main","distribution":"testing","architectures":["arm64"]}"#).await;
    assert_eq!(
        r.status,
        Some(raptr_formats::bundle::Status::Accepted),
        "{r:?}"
    );
    w.publish().await;
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["testing"], "main/binary-arm64/Packages"),
            ["foo-common 1.0-1 all"],
            "{who}"
        );
        assert_eq!(
            lines(&dists["stable"], "main/binary-arm64/Packages").len(),
            2,
            "{who}"
        );
    }
    // The link shards the state lists are exactly the ones stored: the
    // ones replaced on the way were deleted.
    let shards = || async {
        let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
            .await
            .unwrap();
        let listed: Vec<String> = state.links.keys().into_iter().cloned().collect();
        let stored: Vec<String> = w
            .primary
            .list(raptr_core::publish::links::PREFIX)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        (listed, stored)
    };
    let (listed, stored) = shards().await;
    assert!(!listed.is_empty());
    assert_eq!(listed, stored);
    // One left behind by a run that died before deleting it stays through
    // a dry run and goes at the next purge.
    let orphan = format!(
        "{}stable/00-0000000000000000.json",
        raptr_core::publish::links::PREFIX
    );
    w.primary
        .put(&orphan, Bytes::from_static(b"{}"), PutOptions::default())
        .await
        .unwrap();
    // Unlinked from testing but linked in stable: nothing to purge, even long after.
    let mut p = w.publisher();
    p.now = in_49_hours;
    assert!(p.purge(true).await.unwrap().is_empty());
    assert!(
        w.primary.head(&orphan).await.is_ok(),
        "a dry run deletes nothing"
    );
    assert!(p.purge(false).await.unwrap().is_empty());
    assert!(
        matches!(
            w.primary.head(&orphan).await,
            Err(StoreError::NotFound { .. })
        ),
        "purge deletes link shards no state lists"
    );
    assert_eq!(shards().await, (listed, stored));

    // Removed everywhere: purged only after the grace period.
    w.request(
        "remove",
        r#"{"action":"remove","bundle":"foo","version":"1.0-1","component":"main"}"#,
    )
    .await;
    w.publish().await;
    for (who, dists) in w.views().await {
        assert!(
            dists["stable"].packages.values().all(|s| s.is_empty()),
            "{who}"
        );
        assert!(dists["stable"].sources.is_empty(), "{who}");
    }
    let deb_key = "pool/main/f/foo/1.0-1/foo_1.0-1_amd64.deb";
    assert!(
        w.publisher().purge(false).await.unwrap().is_empty(),
        "within the grace period"
    );
    let mut p = w.publisher();
    p.now = in_49_hours;
    let would = p.purge(true).await.unwrap();
    assert_eq!(would.len(), 6, "{would:?}");
    assert!(
        w.primary.head(deb_key).await.is_ok(),
        "a dry run deletes nothing"
    );
    let purged = p.purge(false).await.unwrap();
    assert_eq!(purged, would);
    for (who, store) in w.stores() {
        for k in &purged {
            assert!(
                matches!(store.head(k).await, Err(StoreError::NotFound { .. })),
                "{who}: {k}"
            );
        }
    }
    let (m, _) = raptr_core::manifest::load(w.primary.as_ref(), "pool/main/f/foo/1.0-1")
        .await
        .unwrap()
        .unwrap();
    assert!(m.files.is_empty(), "{:?}", m.files.keys());
}

#[tokio::test]
async fn an_identity_change_is_refused() {
    let w = world();
    w.publish().await;
    let release = w.primary.get("dists/stable/Release").await.unwrap().0;
    let mut changed = w.config.clone();
    changed.release.origin = "someone-else".into();
    w.upload(
        "stable",
        "b1",
        &[(
            deb_name("xx", "1", "amd64"),
            deb("xx", "1", "amd64", None, "a"),
        )],
    )
    .await;
    let e = w
        .publisher_with(changed, &Faults::none(), None)
        .run()
        .await
        .unwrap_err();
    assert!(matches!(e, PublishError::Refused(_)), "{e}");
    assert!(
        e.to_string()
            .contains("Origin from \"raptr\" to \"someone-else\""),
        "{e}"
    );
    assert_eq!(
        w.primary.get("dists/stable/Release").await.unwrap().0,
        release
    );
    assert_eq!(
        w.table.pending(10).await.unwrap().len(),
        1,
        "the change waits"
    );
    // Back to the published identity, it goes through.
    assert_eq!(w.publish().await.generations, vec![2]);
}

#[tokio::test]
async fn a_failing_replica_lags_then_catches_up() {
    let w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    let s = w
        .publisher_with(
            w.config.clone(),
            &Faults::none(),
            Some(("us", Faults::fail_first(3))),
        )
        .run()
        .await
        .unwrap();
    assert_eq!(s.replicas["eu"].generation, 1);
    assert_eq!(s.replicas["ap"].generation, 1);
    assert_eq!(s.replicas["us"].generation, 0);
    assert!(
        s.replicas["us"]
            .error
            .as_deref()
            .unwrap()
            .contains("injected"),
        "{s:?}"
    );
    let key = "incoming/stable/main/b1/foo_1.0-1_amd64.deb";
    let report = Report::read(w.primary.as_ref(), key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.generation, Some(1));
    assert_eq!(report.replicas.keys().collect::<Vec<_>>(), ["ap", "eu"]);
    // The lagging replica is still whole (it never had a Release).
    assert!(w.views().await["us"].is_empty());

    let s = w.publish().await;
    assert!(s.generations.is_empty());
    assert_eq!(s.replicas["us"].generation, 1);
    assert_eq!(
        w.views().await["us"]["stable"],
        w.views().await["eu"]["stable"]
    );
    let report = Report::read(w.primary.as_ref(), key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.replicas.len(), 3);
}

#[tokio::test]
async fn verify_finds_and_repairs_a_damaged_replica() {
    let w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    // More pool files than verify checks at once.
    for i in 0..8 {
        w.upload(
            "stable",
            &format!("m{i}"),
            &bundle(&format!("more{i}"), "1"),
        )
        .await;
    }
    w.publish().await;
    assert!(w
        .publisher()
        .verify(false, None)
        .await
        .unwrap()
        .findings
        .is_empty());
    let (_, ap) = w.replicas.iter().find(|(n, _)| n == "ap").unwrap();
    let deb_key = "pool/main/f/foo/1.0-1/foo_1.0-1_arm64.deb";
    ap.delete(deb_key).await.unwrap();
    ap.put(
        "dists/stable/main/binary-amd64/Packages",
        Bytes::from_static(b"garbage\n"),
        PutOptions::default(),
    )
    .await
    .unwrap();
    // Same size, other bytes: only the hash can tell.
    let (_, us) = w.replicas.iter().find(|(n, _)| n == "us").unwrap();
    let swapped = "pool/main/m/more7/1/more7_1_amd64.deb";
    let mut bytes = us.get(swapped).await.unwrap().0.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    us.put(swapped, Bytes::from(bytes), PutOptions::default())
        .await
        .unwrap();
    let found = w.publisher().verify(true, None).await.unwrap().findings;
    let keys: BTreeSet<(&str, &str)> = found
        .iter()
        .map(|f| (f.target.as_str(), f.key.as_str()))
        .collect();
    let want: BTreeSet<(&str, &str)> = [
        ("ap", deb_key),
        ("ap", "dists/stable/main/binary-amd64/Packages"),
        ("us", swapped),
    ]
    .into();
    assert_eq!(keys, want, "{found:?}");
    assert!(found.iter().all(|f| !f.repaired));
    assert!(ap.head(deb_key).await.is_err(), "a dry run repairs nothing");
    // Repaired in slices: each call goes on where the last one stopped.
    let mut calls = 0;
    let fixed = loop {
        calls += 1;
        let pass = w
            .publisher()
            .verify(false, Some(Duration::ZERO))
            .await
            .unwrap();
        if pass.complete {
            break pass.findings;
        }
        assert!(pass.findings.is_empty(), "findings before the pass ended");
        assert!(calls < 1000, "the pass never ends");
    };
    assert!(calls > 4, "{calls} slices");
    assert!(
        fixed.iter().all(|f| f.repaired) && fixed.len() == found.len(),
        "{fixed:?}"
    );
    assert!(w
        .publisher()
        .verify(true, None)
        .await
        .unwrap()
        .findings
        .is_empty());
    // Repaired objects carry the primary's metadata.
    let repaired = ap.head(deb_key).await.unwrap();
    assert_eq!(repaired.cache_control.as_deref(), Some(CACHE_IMMUTABLE));
    assert_eq!(
        repaired.content_type,
        w.primary.head(deb_key).await.unwrap().content_type
    );
    let index = ap
        .head("dists/stable/main/binary-amd64/Packages")
        .await
        .unwrap();
    assert!(index.cache_control.unwrap().contains("max-age=60"));
    w.views().await;

    // A verify request, in slices across publish runs: each run spends
    // its slice and publishes as usual; the last one answers the request.
    ap.delete(deb_key).await.unwrap();
    let report = w.request("verify", r#"{"action":"verify"}"#).await;
    assert_eq!(report.status, Some(raptr_formats::bundle::Status::Accepted));
    let mut runs = 0;
    loop {
        runs += 1;
        let mut p = w.publisher();
        p.verify_slice = Duration::ZERO;
        let s = p.run().await.unwrap();
        if s.verify_pending.is_none() {
            assert_eq!(s.verified.len(), 1, "{:?}", s.verified);
            assert_eq!(s.verified[0].key, deb_key);
            break;
        }
        assert!(runs < 1000, "the verify never ends");
    }
    assert!(runs > 4, "{runs} runs");
    let report = Report::read(w.primary.as_ref(), "requests/verify/verify.json")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.reason.as_deref(), Some("verify: 1 item(s)"));
    // Done: later runs do not verify again.
    assert!(w.publish().await.verify_pending.is_none());
    assert!(ap.head(deb_key).await.is_ok());
}

#[tokio::test]
async fn a_release_with_valid_until_is_signed_again_before_it_expires() {
    let mut w = world();
    w.config.release.valid_for_days = Some(1);
    w.publish().await;
    let first = w.views().await["eu"]["stable"].release.clone();
    assert!(first.contains("Valid-Until: "), "{first}");
    // Within half its validity: nothing to do.
    assert!(w.publish().await.generations.is_empty());
    // Past half of it (a day's validity, 13 hours later): signed again, on
    // every replica, with the indices unchanged.
    let mut p = w.publisher();
    p.now = in_13_hours;
    let s = p.run().await.unwrap();
    assert_eq!(s.generations, vec![2]);
    assert_eq!(s.indices, 0);
    for (who, dists) in w.views().await {
        let r = &dists["stable"].release;
        assert_ne!(r, &first, "{who}");
        let date = |t: &str| {
            t.lines()
                .find(|l| l.starts_with("Date: "))
                .map(str::to_string)
        };
        assert_ne!(date(r), date(&first), "{who}");
    }
}

/// `Packages` of one index on the primary, as published now.
/// An index of stable on the primary: its text, `.gz` and `.xz`.
async fn packages(w: &World, path: &str) -> (String, Vec<u8>, Vec<u8>) {
    let get = |p: String| async move { w.primary.get(&p).await.unwrap().0.to_vec() };
    let raw = get(format!("dists/stable/{path}")).await;
    let gz = get(format!("dists/stable/{path}.gz")).await;
    let xz = get(format!("dists/stable/{path}.xz")).await;
    (String::from_utf8(raw).unwrap(), gz, xz)
}

/// What apt's own reader (the one behind `apt-get update`) makes of a
/// compressed index.
fn apt_reads(w: &World, name: &str, body: &[u8]) -> Vec<u8> {
    let file = w.dir.path().join(name);
    std::fs::write(&file, body).unwrap();
    let out = Command::new("/usr/lib/apt/apt-helper")
        .arg("cat-file")
        .arg(&file)
        .output()
        .expect("apt-helper is installed with apt");
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn an_index_of_many_segments_rebuilds_only_what_changed() {
    let w = world();
    let publisher = || {
        let mut p = w.publisher();
        p.segment_target = 1000;
        p
    };
    let one = |name: &str| {
        vec![(
            deb_name(name, "1.0-1", "amd64"),
            deb(name, "1.0-1", "amd64", None, name),
        )]
    };
    for name in [
        "pkg-b", "pkg-d", "pkg-f", "pkg-h", "pkg-j", "pkg-l", "pkg-n", "pkg-p",
    ] {
        w.upload("stable", name, &one(name)).await;
    }
    publisher().run().await.unwrap();
    let path = "main/binary-amd64/Packages";
    let (before, before_gz, before_xz) = packages(&w, path).await;
    let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
        .await
        .unwrap();
    let segments = &state.segments["stable"][path];
    assert!(segments.len() >= 4, "{segments:?}");
    assert_eq!(
        segments.iter().map(|s| s.raw).sum::<u64>(),
        before.len() as u64
    );

    // One package before them all, one in the middle, one unlinked.
    for name in ["pkg-a", "pkg-i"] {
        w.upload("stable", name, &one(name)).await;
    }
    w.request("drop-n", r#"{"action":"unlink","bundle":"pkg-n","version":"all","component":"main","distribution":"stable"}"#).await;
    let s = publisher().run().await.unwrap();
    assert_eq!(s.indices, 3, "Packages, .gz and .xz of amd64 only");
    let (after, after_gz, after_xz) = packages(&w, path).await;

    // apt's view: every bucket serves the new set, Packages.gz decompressing
    // to Packages (checked by client_view).
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], path),
            ["a", "b", "d", "f", "h", "i", "j", "l", "p"].map(|c| format!("pkg-{c} 1.0-1 amd64")),
            "{who}"
        );
    }
    // Stanzas in pool order, each once.
    let filenames: Vec<&str> = after
        .lines()
        .filter_map(|l| l.strip_prefix("Filename: "))
        .collect();
    let mut sorted = filenames.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(filenames, sorted);

    // Untouched segments are the same bytes, compressed ones included (gzip
    // members, xz blocks after the 12-byte stream header): the segment of
    // pkg-j and pkg-l was neither re-rendered nor recompressed.
    let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
        .await
        .unwrap();
    let old_segments = segments.clone();
    let new_segments = &state.segments["stable"][path];
    let kept: Vec<_> = new_segments
        .iter()
        .filter(|s| old_segments.contains(s))
        .collect();
    assert!(!kept.is_empty(), "{old_segments:?} → {new_segments:?}");
    let offsets = |segs: &[raptr_core::publish::segment::Segment],
                   s: &raptr_core::publish::segment::Segment| {
        let i = segs.iter().position(|x| x == s).unwrap();
        (
            segs[..i].iter().map(|x| x.raw).sum::<u64>() as usize,
            segs[..i].iter().map(|x| x.gz).sum::<u64>() as usize,
            12 + segs[..i].iter().map(|x| x.xz.div_ceil(4) * 4).sum::<u64>() as usize,
        )
    };
    for s in kept {
        let (r0, g0, x0) = offsets(&old_segments, s);
        let (r1, g1, x1) = offsets(new_segments, s);
        let (r, g, x) = (s.raw as usize, s.gz as usize, s.xz as usize);
        assert!(x > 0, "{s:?}");
        assert_eq!(before[r0..r0 + r], after[r1..r1 + r]);
        assert_eq!(before_gz[g0..g0 + g], after_gz[g1..g1 + g]);
        assert_eq!(before_xz[x0..x0 + x], after_xz[x1..x1 + x]);
        assert!(after[r1..].starts_with(&format!("Package: {}", &s.name[..5])));
    }
    // Several gzip members: a single-member reader stops after the first.
    let mut first = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&after_gz[..]), &mut first)
        .unwrap();
    assert!(first.len() < after.len());
    // apt reads them all, and reads the one xz stream of many blocks whole.
    assert!(apt_reads(&w, "Packages.gz", &after_gz) == after.as_bytes());
    assert!(apt_reads(&w, "Packages.xz", &after_xz) == after.as_bytes());
    assert!(new_segments.len() > 1 && after_xz.len() < after.len());

    // Rebuilt from scratch (no segments known), the index is the same.
    let mut fresh = state.clone();
    fresh.segments.clear();
    fresh.dirty.insert(raptr_core::publish::state::triple(
        "stable", "main", "amd64",
    ));
    let (_, etag) = raptr_core::publish::state::State::load(w.primary.as_ref())
        .await
        .unwrap();
    fresh
        .save(w.primary.as_ref(), etag.as_deref())
        .await
        .unwrap();
    publisher().run().await.unwrap();
    let (again, _, _) = packages(&w, path).await;
    assert_eq!(
        again
            .split("\n\n")
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>(),
        after
            .split("\n\n")
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_architecture_that_leaves_the_layout_and_returns_is_rebuilt_whole() {
    let mut w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.publish().await;
    let full = w.config.clone();
    for d in w.distributions() {
        d.architectures.retain(|a| a != "arm64");
    }
    // Linked while arm64 is out of the layout: no change is recorded for it.
    w.upload("stable", "b2", &bundle("bar", "1.0-1")).await;
    w.publish().await;
    w.config = full;
    w.publish().await;
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], "main/binary-arm64/Packages"),
            [
                "bar 1.0-1 arm64",
                "bar-common 1.0-1 all",
                "foo 1.0-1 arm64",
                "foo-common 1.0-1 all"
            ],
            "{who}"
        );
    }
}

#[tokio::test]
async fn the_public_key_is_written_when_missing_or_new_and_left_alone_otherwise() {
    use std::os::unix::fs::MetadataExt;
    let mut w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.publish().await;
    let inode = |store: &str, key: &str| {
        std::fs::metadata(w.dir.path().join(store).join(key))
            .unwrap()
            .ino()
    };
    let before: Vec<u64> = ["primary", "replica-eu"]
        .iter()
        .map(|s| inode(s, "keys/repo.asc"))
        .collect();
    // The same key: neither copy is written again.
    w.upload("stable", "b2", &bundle("bar", "1.0-1")).await;
    assert_eq!(w.publish().await.generations, vec![2]);
    let after: Vec<u64> = ["primary", "replica-eu"]
        .iter()
        .map(|s| inode(s, "keys/repo.asc"))
        .collect();
    assert_eq!(before, after, "an unchanged key was written again");
    // A key deleted by hand comes back with the next generation.
    w.primary.delete("keys/repo.gpg").await.unwrap();
    w.upload("stable", "b3", &bundle("baz", "1.0-1")).await;
    w.publish().await;
    assert_eq!(
        w.primary.get("keys/repo.gpg").await.unwrap().0.as_ref(),
        w.signer.public_gpg()
    );
    // A new signing key replaces the published one everywhere, and signs.
    let (armored, _) = signing::generate(
        "raptr tests <next@raptr.invalid>",
        signing::Algorithm::Ed25519,
    )
    .unwrap();
    w.signer = Arc::new(Signer::from_secret(armored.as_bytes(), "next key").unwrap());
    w.upload("stable", "b4", &bundle("qux", "1.0-1")).await;
    w.publish().await;
    let keyring = w.dir.path().join("next.gpg");
    std::fs::write(&keyring, w.signer.public_gpg()).unwrap();
    for (name, store) in w.stores() {
        assert_eq!(
            store.get("keys/repo.gpg").await.unwrap().0.as_ref(),
            w.signer.public_gpg(),
            "{name}"
        );
        assert_eq!(
            store.get("keys/repo.asc").await.unwrap().0.as_ref(),
            w.signer.public_asc().as_bytes(),
            "{name}"
        );
        let dir = if name == "primary" {
            name
        } else {
            format!("replica-{name}")
        };
        let base = w.dir.path().join(dir).join("dists/stable");
        gpgv(&keyring, &[&base.join("InRelease")]);
    }
}

#[tokio::test]
async fn xz_indices_come_and_go_with_the_configuration() {
    let mut w = world();
    // One stanza a segment, so that a change keeps the segments it misses.
    let publish = |w: &World| {
        let mut p = w.publisher();
        p.segment_target = 100;
        p
    };
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    publish(&w).run().await.unwrap();
    let amd64 = |state: &raptr_core::publish::state::State| {
        state.segments["stable"]["main/binary-amd64/Packages"].clone()
    };
    let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
        .await
        .unwrap();
    let first = amd64(&state);
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|s| s.xz > 0), "{first:?}");
    let xz = "dists/stable/main/binary-amd64/Packages.xz";
    let listed = |view: &View| {
        release_files(&view.release)
            .into_keys()
            .filter(|p| p.ends_with(".xz"))
            .count()
    };
    let by_hash = |body: &[u8]| {
        let sha = raptr_formats::hash::Digests::of(body).sha256;
        format!("dists/stable/main/binary-amd64/by-hash/SHA256/{sha}")
    };
    let (first_xz, _) = w.primary.get(xz).await.unwrap();
    let first_by_hash = by_hash(&first_xz);
    for (who, dists) in w.views().await {
        // amd64, arm64 and source of main: client_view decoded each.
        assert_eq!(listed(&dists["stable"]), 3, "{who}");
        assert_eq!(listed(&dists["testing"]), 0, "{who}");
    }

    // Turned off: out of the Release at once, deleted after the grace period.
    for d in w.distributions() {
        d.xz = false;
    }
    let s = publish(&w).run().await.unwrap();
    assert_eq!(s.indices, 0, "nothing else changed");
    // A change while it is off: the state keeps no block sizes, neither in
    // the segment it rebuilds nor in the one it keeps (foo's).
    w.upload("stable", "b0", &bundle("zed", "1.0-1")).await;
    publish(&w).run().await.unwrap();
    let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
        .await
        .unwrap();
    let now = amd64(&state);
    let foo = |segments: &[raptr_core::publish::segment::Segment]| {
        let s = segments
            .iter()
            .find(|s| s.name.starts_with("foo_"))
            .unwrap();
        (s.count, s.raw, s.gz)
    };
    assert_eq!(foo(&now), foo(&first), "{first:?} → {now:?}");
    assert!(now.iter().all(|s| s.xz == 0), "{now:?}");
    for (who, dists) in w.views().await {
        assert_eq!(listed(&dists["stable"]), 0, "{who}");
    }
    for (who, store) in w.stores() {
        assert!(
            store.head(xz).await.is_ok(),
            "{who}: kept for the grace period"
        );
    }
    let mut p = publish(&w);
    p.now = in_49_hours;
    p.run().await.unwrap();
    for (who, store) in w.stores() {
        for key in [xz, first_by_hash.as_str()] {
            assert!(
                matches!(store.head(key).await, Err(StoreError::NotFound { .. })),
                "{who}: {key}"
            );
        }
    }

    // Back on: built whole, listed again, and new packages go into it.
    w.config = config();
    w.upload("stable", "b2", &bundle("bar", "1.0-1")).await;
    publish(&w).run().await.unwrap();
    for (who, dists) in w.views().await {
        assert_eq!(listed(&dists["stable"]), 3, "{who}");
        assert_eq!(
            lines(&dists["stable"], "main/binary-amd64/Packages"),
            [
                "bar 1.0-1 amd64",
                "bar-common 1.0-1 all",
                "foo 1.0-1 amd64",
                "foo-common 1.0-1 all",
                "zed 1.0-1 amd64",
                "zed-common 1.0-1 all"
            ],
            "{who}"
        );
    }
    for (who, store) in w.stores() {
        let (body, meta) = store.get(xz).await.unwrap();
        assert_eq!(
            meta.content_type.as_deref(),
            Some("application/x-xz"),
            "{who}"
        );
        let plain = w
            .primary
            .get("dists/stable/main/binary-amd64/Packages")
            .await
            .unwrap()
            .0;
        assert!(apt_reads(&w, "Packages.xz", &body) == plain, "{who}");
    }
}

#[tokio::test]
async fn an_architecture_that_leaves_the_layout_leaves_the_release() {
    let mut w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.publish().await;
    let arm64 = "dists/stable/main/binary-arm64/Packages";
    let (body, _) = w.primary.get(arm64).await.unwrap();
    let sha = raptr_formats::hash::Digests::of(&body).sha256;
    let by_hash = format!("dists/stable/main/binary-arm64/by-hash/SHA256/{sha}");
    let architectures = |v: &View| {
        let field = v
            .release
            .lines()
            .find_map(|l| l.strip_prefix("Architectures: "));
        field.unwrap_or_default().to_string()
    };
    let arm64_listed = |v: &View| {
        release_files(&v.release)
            .into_keys()
            .filter(|p| p.contains("binary-arm64"))
            .count()
    };
    for (who, dists) in w.views().await {
        assert_eq!(architectures(&dists["stable"]), "amd64 arm64", "{who}");
        // Packages, .gz and .xz.
        assert_eq!(arm64_listed(&dists["stable"]), 3, "{who}");
    }

    // arm64 leaves stable, and nothing else changes: stable is signed again
    // without it at once, testing keeps it.
    let layout = w.config.layouts.get_mut("default").unwrap();
    let stable = layout.distributions.get_mut("stable").unwrap();
    stable.architectures.retain(|a| a != "arm64");
    w.publish().await;
    for (who, dists) in w.views().await {
        assert_eq!(architectures(&dists["stable"]), "amd64", "{who}");
        assert_eq!(arm64_listed(&dists["stable"]), 0, "{who}");
        assert_eq!(architectures(&dists["testing"]), "amd64 arm64", "{who}");
        assert_eq!(arm64_listed(&dists["testing"]), 2, "{who}");
    }
    // Its files stay for the grace period (a client may have just read the
    // old Release), and go after it.
    for (who, store) in w.stores() {
        for key in [arm64, by_hash.as_str()] {
            assert!(store.head(key).await.is_ok(), "{who}: {key}");
        }
    }
    let mut p = w.publisher();
    p.now = in_49_hours;
    p.run().await.unwrap();
    for (who, store) in w.stores() {
        for key in [
            arm64,
            &format!("{arm64}.gz"),
            &format!("{arm64}.xz"),
            &by_hash,
        ] {
            assert!(
                matches!(store.head(key).await, Err(StoreError::NotFound { .. })),
                "{who}: {key}"
            );
        }
    }

    // Back in the layout: built whole and listed again.
    w.config = config();
    w.publish().await;
    for (who, dists) in w.views().await {
        assert_eq!(architectures(&dists["stable"]), "amd64 arm64", "{who}");
        assert_eq!(
            lines(&dists["stable"], "main/binary-arm64/Packages"),
            ["foo 1.0-1 arm64", "foo-common 1.0-1 all"],
            "{who}"
        );
    }
}

#[tokio::test]
async fn a_changed_description_is_signed_at_the_next_run_and_only_then() {
    let mut w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.publish().await;
    let s = w.publish().await;
    assert!(s.generations.is_empty(), "nothing to do: {s:?}");

    w.config.release.description = Some("Packages of the example team".into());
    let s = w.publish().await;
    assert_eq!(s.generations.len(), 1, "{s:?}");
    assert_eq!(s.indices, 0, "only the Releases change: {s:?}");
    for (who, dists) in w.views().await {
        for (dist, view) in &dists {
            assert!(
                view.release
                    .lines()
                    .any(|l| l == "Description: Packages of the example team"),
                "{who} {dist}: {}",
                view.release
            );
        }
    }
    // Signed once: the next run has nothing to do again.
    let s = w.publish().await;
    assert!(s.generations.is_empty(), "{s:?}");
}

#[tokio::test]
async fn long_work_says_how_far_it_is() {
    let w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.upload("stable", "b2", &bundle("bar", "1.0-1")).await;
    let lines = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let publisher = || {
        let mut p = w.publisher();
        let l = lines.clone();
        // Every tick reported, so that a test this small sees them.
        p.progress = Some(Arc::new(Progress::new(Duration::ZERO, move |line| {
            l.lock().unwrap().push(line.to_string())
        })));
        p
    };
    publisher().run().await.unwrap();
    let seen = std::mem::take(&mut *lines.lock().unwrap());
    for want in [
        // bar, bar-common, foo, foo-common.
        "dists/stable/main/binary-amd64/Packages: 4 of 4 stanzas built",
        "dists/stable/main/source/Sources: 2 of 2 stanzas built",
        // Every file of two bundles, to replicas that had none.
        "replica eu: 12 of 12 pool files in place",
        "replica ap: 12 of 12 pool files in place",
    ] {
        assert!(seen.iter().any(|l| l == want), "{want} in {seen:#?}");
    }
    assert!(publisher()
        .verify(true, None)
        .await
        .unwrap()
        .findings
        .is_empty());
    let seen = std::mem::take(&mut *lines.lock().unwrap());
    let want = "verify us: dists/stable/main/binary-amd64/Packages: 4 pool file(s) checked";
    assert!(seen.iter().any(|l| l == want), "{want} in {seen:#?}");
}

#[tokio::test]
async fn segments_left_small_by_unlinks_take_in_their_neighbours() {
    let w = world();
    // About four stanzas a segment.
    let target = 2000;
    let publisher = || {
        let mut p = w.publisher();
        p.segment_target = target;
        p
    };
    let names: Vec<String> = (b'a'..=b'l')
        .map(|c| format!("pkg-{}", c as char))
        .collect();
    for name in &names {
        let files = vec![(
            deb_name(name, "1.0-1", "amd64"),
            deb(name, "1.0-1", "amd64", None, name),
        )];
        w.upload("stable", name, &files).await;
    }
    publisher().run().await.unwrap();
    let path = "main/binary-amd64/Packages";
    let segments =
        |state: &raptr_core::publish::state::State| state.segments["stable"][path].clone();
    let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
        .await
        .unwrap();
    let before = segments(&state);
    assert_eq!(before.len(), 3, "{before:?}");

    // Every package but the first and the last two leaves.
    for name in &names[1..names.len() - 2] {
        let body = format!(
            r#"{{"action":"unlink","bundle":"{name}","version":"all","component":"main","distribution":"stable"}}"#
        );
        w.request(&format!("drop-{name}"), &body).await;
    }
    publisher().run().await.unwrap();
    let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
        .await
        .unwrap();
    let after = segments(&state);
    // Three stanzas are left. Without merging, pkg-a would stay alone in
    // its segment (a stanza is about 620 bytes, under half the target) and
    // pkg-k and pkg-l in theirs; merged, they make one segment.
    let counts: Vec<u32> = after.iter().map(|s| s.count).collect();
    assert_eq!(counts, [3], "{before:?} → {after:?}");
    let (text, _, _) = packages(&w, path).await;
    assert_eq!(after.iter().map(|s| s.raw).sum::<u64>(), text.len() as u64);
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], path),
            [
                "pkg-a 1.0-1 amd64",
                "pkg-k 1.0-1 amd64",
                "pkg-l 1.0-1 amd64"
            ],
            "{who}"
        );
    }
}

/// One frozen-publisher case: a publisher frozen (writes and table calls
/// held, lease renewals included, as by SIGSTOP) at its first write of
/// `key` (on `replica`, or everywhere), past its lease; another one
/// publishes; the first comes back. It must write nothing more: every
/// bucket serves the second one's InRelease, whole.
async fn frozen_case(key: &str, replica: Option<&str>) {
    let w = world();
    w.upload("testing", "b1", &bundle("alpha", "1.0-1")).await;
    w.publish().await;
    w.upload("testing", "b2", &bundle("beta", "2.0-1")).await;

    let faults = Faults::pause_at(key);
    let everywhere = if replica.is_some() {
        Faults::none()
    } else {
        faults.clone()
    };
    // Its own owner, and a table whose calls freeze with it.
    let lease = Duration::from_millis(900);
    let mut p1 = Publisher::new(
        FaultyStore::new(w.primary.clone(), everywhere.clone()),
        raptr_testkit::faults::FrozenTable::new(w.table.clone(), faults.clone()),
        w.config.clone(),
        w.signer.clone(),
        w.replicas
            .iter()
            .map(|(name, s)| {
                let mut store: Arc<dyn ObjectStore> =
                    FaultyStore::new(s.clone(), everywhere.clone());
                if replica == Some(name.as_str()) {
                    store = FaultyStore::new(store, faults.clone());
                }
                Replica {
                    name: name.clone(),
                    store,
                    distributions: ["stable", "testing"].map(String::from).into(),
                }
            })
            .collect(),
        "frozen",
    );
    p1.lease_ttl = lease;
    p1.replica_attempts = 1;
    let first = tokio::spawn(async move { p1.run().await });
    assert!(
        faults.frozen(Duration::from_secs(60)).await,
        "{key}: the publisher never wrote it"
    );
    tokio::time::sleep(lease + Duration::from_millis(300)).await;

    w.upload("testing", "b3", &bundle("gamma", "3.0-1")).await;
    let second = w.publish().await;
    assert!(second.ran, "{key}: the lease did not run out");
    let served = w.views().await;
    // Each bucket's signed Release, by its Date and the index it lists first.
    let inrelease = |v: &BTreeMap<String, BTreeMap<String, View>>| -> Vec<String> {
        v.iter()
            .map(|(who, d)| {
                let text = &d["testing"].release;
                let line = |p: &str| text.lines().find(|l| l.starts_with(p)).unwrap_or("");
                format!("{who}: {} /{}", line("Date:"), line(" "))
            })
            .collect()
    };
    faults.resume();
    let r = first.await.unwrap();
    let e = r.expect_err("a publisher frozen past its lease finished as if it held it");
    assert!(e.is_transient(), "{key}: {e}");
    let after = w.views().await;
    assert_eq!(
        inrelease(&after),
        inrelease(&served),
        "{key}: a frozen publisher wrote an InRelease after losing its lease ({e})"
    );
    for (who, dists) in &after {
        let amd64 = lines(&dists["testing"], "main/binary-amd64/Packages");
        assert_eq!(amd64.len(), 6, "{key}: {who}: {amd64:?}");
    }
}

/// A publisher frozen past its lease at any stage of a publish, then
/// resumed after another one published, writes nothing: caught by the
/// fence when it resumes before a write, and by the condition on the
/// object when it was frozen between that check and the write itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_frozen_past_its_lease_writes_nothing_when_it_comes_back() {
    let cases = [
        ("state/publish.json", None),
        ("dists/testing/Release", None),
        ("dists/testing/InRelease", None),
        ("dists/testing/InRelease", Some("us")),
    ];
    let mut set = tokio::task::JoinSet::new();
    for (key, replica) in cases {
        set.spawn(async move { frozen_case(key, replica).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

/// One case of [`a_remove_that_dies_at_any_write_leaks_nothing`]: the run
/// that carries out a remove dies after its n-th write; the next run and a
/// purge past the grace period leave nothing of the bundle in the pool.
async fn remove_crash_case(n: u64) -> bool {
    let w = world();
    // With its .changes: a file the pool keeps that no distribution links.
    let mut files = bundle("foo", "1.0-1");
    files.push(raptr_testkit::changes("foo", "1.0-1", "stable", &files));
    w.upload("stable", "b1", &files).await;
    w.publish().await;
    w.request(
        "remove",
        r#"{"action":"remove","bundle":"foo","version":"1.0-1","component":"main"}"#,
    )
    .await;
    let faults = Faults::crash_after(n);
    let _ = w
        .publisher_with(w.config.clone(), &faults, None)
        .run()
        .await;
    let crashed = faults.tripped();
    w.publish().await;
    let mut p = w.publisher();
    p.now = in_49_hours;
    p.purge(false).await.unwrap();
    let left: Vec<String> = w
        .primary
        .list("pool/main/f/foo/1.0-1/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .filter(|k| !k.ends_with("/manifest.json"))
        .collect();
    assert!(left.is_empty(), "write {n}: left in the pool: {left:?}");
    let (m, _) = raptr_core::manifest::load(w.primary.as_ref(), "pool/main/f/foo/1.0-1")
        .await
        .unwrap()
        .unwrap();
    assert!(
        m.files.is_empty() && m.purging.is_empty(),
        "write {n}: {m:?}"
    );
    crashed
}

/// A remove whose run dies after any of its writes leaks no pool file: the
/// next run finishes it, and the purge finds every file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_remove_that_dies_at_any_write_leaks_nothing() {
    let total = every_crash_point(remove_crash_case).await;
    assert!(total > 10, "only {total} writes");
}

/// An identical upload of a file while a purge deletes it waits for the
/// purge (its event fails and is tried again), then stores the file anew:
/// no manifest entry ever names a file the purge took away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identical_upload_during_a_purge_is_stored_again_after_it() {
    let w = world();
    let files = bundle("foo", "1.0-1");
    w.upload("stable", "b1", &files).await;
    w.publish().await;
    w.request(
        "remove",
        r#"{"action":"remove","bundle":"foo","version":"1.0-1","component":"main"}"#,
    )
    .await;
    w.publish().await;
    // The purge stops at its first delete of the .deb (on a replica).
    let deb_key = format!(
        "pool/main/f/foo/1.0-1/{}",
        deb_name("foo", "1.0-1", "amd64")
    );
    let faults = Faults::pause_at(&deb_key);
    let mut p = w.publisher_with(w.config.clone(), &faults, None);
    p.now = in_49_hours;
    let purge = tokio::spawn(async move { p.purge(false).await });
    assert!(
        faults.frozen(Duration::from_secs(60)).await,
        "the purge never deleted {deb_key}"
    );

    // The same bundle again, meanwhile.
    let ingest = Ingest::new(w.primary.clone(), w.table.clone(), w.config.clone());
    let keys: Vec<String> = files
        .iter()
        .map(|(name, _)| format!("incoming/stable/main/b2/{name}"))
        .collect();
    for ((_, bytes), key) in files.iter().zip(&keys) {
        w.primary
            .put(key, Bytes::copy_from_slice(bytes), PutOptions::default())
            .await
            .unwrap();
    }
    let event = |key: &String| ObjectEvent {
        key: key.clone(),
        uploader: "tests".into(),
    };
    let mut waited = 0;
    for key in &keys {
        if let Err(e) = ingest.handle(&event(key)).await {
            assert!(e.to_string().contains("being purged"), "{key}: {e}");
            waited += 1;
        }
    }
    assert!(waited > 0, "no upload waited for the purge");
    faults.resume();
    let purged = purge.await.unwrap().unwrap();
    assert_eq!(purged.len(), files.len(), "{purged:?}");
    // The events tried again.
    for key in &keys {
        ingest.handle(&event(key)).await.unwrap();
    }
    w.publish().await;
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], "main/binary-amd64/Packages"),
            ["foo 1.0-1 amd64", "foo-common 1.0-1 all"],
            "{who}"
        );
    }
}

/// Every bucket's view of one suite path (a distribution, or a snapshot's
/// `DIST/_NAME`), checked as apt reads it: `None` where it is not served.
async fn suite_views(w: &World, suite: &str) -> Vec<(String, Option<View>)> {
    let verify = |t: &str| w.signer.verify_clear(t).map_err(|e| e.to_string());
    let mut out = Vec::new();
    for (name, store) in w.stores() {
        out.push((
            name.clone(),
            client_view(store.as_ref(), &verify, suite, &name).await,
        ));
    }
    out
}

fn accepted(r: &Report) {
    assert_eq!(
        r.status,
        Some(raptr_formats::bundle::Status::Accepted),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_snapshot_outlives_removal_and_purge_restores_and_goes_only_when_deleted() {
    let w = world();
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.publish().await;
    let r = w
        .request(
            "snap",
            r#"{"action":"snapshot","distribution":"stable","snapshot":"s1"}"#,
        )
        .await;
    accepted(&r);
    assert_eq!(r.suite.as_deref(), Some("stable/_s1"));
    w.publish().await;
    let old = ["foo 1.0-1 amd64", "foo-common 1.0-1 all"];
    for (who, v) in suite_views(&w, "stable/_s1").await {
        let v = v.unwrap_or_else(|| panic!("{who}: snapshot s1 not served"));
        assert_eq!(lines(&v, "main/binary-amd64/Packages"), old, "{who}");
        assert!(v.release.contains("Suite: stable\n"), "{who}");
    }
    // A second snapshot under the same name is refused, by ingest and
    // then by the publisher.
    let r = w
        .request(
            "snap-again",
            r#"{"action":"snapshot","distribution":"stable","snapshot":"s1"}"#,
        )
        .await;
    assert_eq!(r.status, Some(raptr_formats::bundle::Status::Rejected));
    assert!(r.reason.unwrap().contains("exists already"));

    // Newer version in, the old one removed: the snapshot still serves it.
    w.upload("stable", "b2", &bundle("foo", "1.0-2")).await;
    accepted(
        &w.request(
            "remove",
            r#"{"action":"remove","bundle":"foo","version":"1.0-1","component":"main"}"#,
        )
        .await,
    );
    w.publish().await;
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], "main/binary-amd64/Packages"),
            ["foo 1.0-2 amd64", "foo-common 1.0-2 all"],
            "{who}"
        );
    }
    let mut p = w.publisher();
    p.now = in_49_hours;
    assert!(
        p.purge(false).await.unwrap().is_empty(),
        "a snapshot's files are references for purge"
    );
    for (who, v) in suite_views(&w, "stable/_s1").await {
        assert_eq!(
            lines(&v.unwrap(), "main/binary-amd64/Packages"),
            old,
            "{who}: the snapshot never changes"
        );
    }

    // Restore: a dry run says what would change and changes nothing.
    let r = w
        .request(
            "restore-dry",
            r#"{"action":"restore","distribution":"stable","snapshot":"s1","dry_run":true}"#,
        )
        .await;
    accepted(&r);
    let links = r
        .planned
        .iter()
        .filter(|p| p.action == raptr_core::request::Action::Link)
        .count();
    assert_eq!((links, r.planned.len() - links), (6, 6), "{:?}", r.planned);
    assert_eq!(w.publish().await.changes, 0);
    let r = w
        .request(
            "restore",
            r#"{"action":"restore","distribution":"stable","snapshot":"s1"}"#,
        )
        .await;
    accepted(&r);
    w.publish().await;
    let report = Report::read(w.primary.as_ref(), &r.key)
        .await
        .unwrap()
        .unwrap();
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains("6 file(s) linked, 6 unlinked"),
        "{report:?}"
    );
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], "main/binary-amd64/Packages"),
            old,
            "{who}: restored"
        );
        assert_eq!(dists["stable"].sources.len(), 1, "{who}");
    }

    // Unlinked again and the snapshot deleted: its files go after the
    // grace period, the pool files only it referenced at a purge after it.
    accepted(
        &w.request(
            "unlink",
            r#"{"action":"unlink","bundle":"foo","version":"1.0-1","component":"main","distribution":"stable"}"#,
        )
        .await,
    );
    accepted(
        &w.request(
            "delete",
            r#"{"action":"delete-snapshot","distribution":"stable","snapshot":"s1"}"#,
        )
        .await,
    );
    w.publish().await;
    let deb_key = "pool/main/f/foo/1.0-1/foo_1.0-1_amd64.deb";
    let mut p = w.publisher();
    p.now = in_13_hours;
    assert!(
        p.purge(false).await.unwrap().is_empty(),
        "within the grace period"
    );
    for (who, v) in suite_views(&w, "stable/_s1").await {
        assert!(v.is_some(), "{who}: served until the grace period is over");
    }
    let mut p = w.publisher();
    p.now = in_49_hours;
    let purged = p.purge(false).await.unwrap();
    assert!(purged.contains(&deb_key.to_string()), "{purged:?}");
    // The next run past the grace period deletes the snapshot's files.
    p.run().await.unwrap();
    for (who, store) in w.stores() {
        assert!(
            matches!(store.head(deb_key).await, Err(StoreError::NotFound { .. })),
            "{who}"
        );
        assert!(
            matches!(
                store.head("dists/stable/_s1/InRelease").await,
                Err(StoreError::NotFound { .. })
            ),
            "{who}: the deleted snapshot is gone"
        );
    }
    let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
        .await
        .unwrap();
    assert!(state.snapshots.is_empty() && state.frozen.is_empty());
}

#[tokio::test]
async fn retention_keeps_the_newest_versions_and_never_purges_what_another_distribution_links() {
    let mut w = world();
    for d in w.distributions() {
        d.retention = Some(raptr_core::config::Policy {
            keep: Some(2),
            max_age_days: None,
        });
    }
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.upload("stable", "b2", &bundle("foo", "1.0-2")).await;
    accepted(&w.request("promote", r#"{"action":"link","bundle":"foo","version":"1.0-1","component":"main","distribution":"testing"}"#).await);
    w.publish().await;
    // A dry run of a stricter policy lists what it would retire and
    // changes nothing.
    let r = w
        .request(
            "retain-dry",
            r#"{"action":"retain","distribution":"stable","keep":1,"dry_run":true}"#,
        )
        .await;
    accepted(&r);
    let versions: BTreeSet<&str> = r.retired.iter().map(|x| x.version.as_str()).collect();
    assert_eq!(versions, BTreeSet::from(["1.0-1"]), "{:?}", r.retired);
    // foo and foo-common on amd64 and arm64... and the source's files.
    assert!(r.retired.iter().any(|x| x.architecture == "all"));
    assert!(r.retired.iter().any(|x| x.package == "source"));
    assert_eq!(w.publish().await.changes, 0);

    w.upload("stable", "b3", &bundle("foo", "1.0-3")).await;
    w.publish().await;
    for (who, dists) in w.views().await {
        assert_eq!(
            lines(&dists["stable"], "main/binary-arm64/Packages"),
            [
                "foo 1.0-2 arm64",
                "foo 1.0-3 arm64",
                "foo-common 1.0-2 all",
                "foo-common 1.0-3 all"
            ],
            "{who}"
        );
        assert_eq!(
            dists["stable"].sources,
            BTreeSet::from(["foo 1.0-2".to_string(), "foo 1.0-3".to_string()]),
            "{who}"
        );
        assert_eq!(
            lines(&dists["testing"], "main/binary-amd64/Packages"),
            ["foo 1.0-1 amd64", "foo-common 1.0-1 all"],
            "{who}: only unlinked where the policy applies"
        );
    }
    // The upload that caused it says what went.
    let mut retired = Vec::new();
    for o in w
        .primary
        .list("reports/incoming/stable/main/b3/")
        .await
        .unwrap()
    {
        let key = o
            .key
            .trim_start_matches("reports/")
            .trim_end_matches(".json");
        if let Some(r) = Report::read(w.primary.as_ref(), key).await.unwrap() {
            retired.extend(r.retired);
        }
    }
    assert!(!retired.is_empty());
    assert!(
        retired
            .iter()
            .all(|x| x.version == "1.0-1" && x.distribution == "stable"),
        "{retired:?}"
    );
    // Still linked in testing: never purged.
    let mut p = w.publisher();
    p.now = in_49_hours;
    assert!(p.purge(false).await.unwrap().is_empty());
}

#[tokio::test]
async fn scheduled_snapshots_are_taken_when_due_and_only_the_last_ones_kept() {
    let mut w = world();
    for d in w.distributions() {
        d.snapshots = Some(raptr_core::config::Schedule {
            every_hours: 24,
            keep: 2,
        });
    }
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.publish().await;
    let names = || async {
        let (state, _) = raptr_core::publish::state::State::load(w.primary.as_ref())
            .await
            .unwrap();
        state
            .snapshots
            .get("stable")
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let first = names().await;
    assert_eq!(first.len(), 1, "{first:?}");
    w.publish().await;
    assert_eq!(names().await, first, "not due again yet");
    let mut p = w.publisher();
    p.now = || ms_later(25);
    p.run().await.unwrap();
    let mut p = w.publisher();
    p.now = || ms_later(50);
    p.run().await.unwrap();
    let now = names().await;
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(!now.contains(&first[0]), "the oldest went: {now:?}");
    for n in &now {
        for (who, v) in suite_views(&w, &format!("stable/_{n}")).await {
            let v = v.unwrap_or_else(|| panic!("{who}: {n} not served"));
            assert_eq!(
                lines(&v, "main/binary-amd64/Packages"),
                ["foo 1.0-1 amd64", "foo-common 1.0-1 all"]
            );
        }
    }
}

/// A run that takes a snapshot and restores another, dying after its n-th
/// write: the next run converges, every bucket serving both snapshots and
/// the restored distribution whole.
async fn snapshot_crash_case(n: u64) -> bool {
    // One replica: the replica writes repeat the primary's.
    let mut w = world();
    w.replicas.truncate(1);
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    w.request(
        "s1",
        r#"{"action":"snapshot","distribution":"stable","snapshot":"s1"}"#,
    )
    .await;
    w.publish().await;
    w.upload("stable", "b2", &bundle("bar", "2.0-1")).await;
    w.publish().await;
    w.request(
        "s2",
        r#"{"action":"snapshot","distribution":"stable","snapshot":"s2"}"#,
    )
    .await;
    w.request(
        "restore",
        r#"{"action":"restore","distribution":"stable","snapshot":"s1"}"#,
    )
    .await;
    let faults = Faults::crash_after(n);
    let _ = w
        .publisher_with(w.config.clone(), &faults, None)
        .run()
        .await;
    let crashed = faults.tripped();
    // Whatever a bucket serves meanwhile is whole (client_view checks).
    w.views().await;
    let s = w.publish().await;
    assert!(
        s.replicas
            .values()
            .all(|r| r.error.is_none() && r.generation == s.generation),
        "write {n}: {s:?}"
    );
    let first = ["foo 1.0-1 amd64", "foo-common 1.0-1 all"];
    let both = [
        "bar 2.0-1 amd64",
        "bar-common 2.0-1 all",
        "foo 1.0-1 amd64",
        "foo-common 1.0-1 all",
    ];
    for (suite, expected) in [
        ("stable", &first[..]),
        ("stable/_s1", &first[..]),
        ("stable/_s2", &both[..]),
    ] {
        for (who, v) in suite_views(&w, suite).await {
            let v = v.unwrap_or_else(|| panic!("write {n}: {who}: {suite} not served"));
            assert_eq!(
                lines(&v, "main/binary-amd64/Packages"),
                expected,
                "write {n}: {who}: {suite}"
            );
        }
    }
    assert!(w.table.pending(10).await.unwrap().is_empty(), "write {n}");
    crashed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_or_restore_that_dies_at_any_write_converges() {
    let total = every_crash_point(snapshot_crash_case).await;
    assert!(total > 30, "only {total} writes");
}

/// With Valid-Until, a snapshot's Release is signed again at half its
/// validity like a distribution's, on every replica, listing the same
/// index files: a machine pinned to it never sees it expire.
#[tokio::test]
async fn a_snapshot_release_with_valid_until_is_signed_again_and_lists_the_same_files() {
    let mut w = world();
    w.config.release.valid_for_days = Some(1);
    w.upload("stable", "b1", &bundle("foo", "1.0-1")).await;
    accepted(
        &w.request(
            "snap",
            r#"{"action":"snapshot","distribution":"stable","snapshot":"s1"}"#,
        )
        .await,
    );
    w.publish().await;
    let before = suite_views(&w, "stable/_s1").await;
    let release = |v: &View| {
        let files: Vec<String> = v
            .release
            .lines()
            .filter(|l| l.starts_with(' '))
            .map(str::to_string)
            .collect();
        let date = v
            .release
            .lines()
            .find(|l| l.starts_with("Date: "))
            .map(str::to_string);
        (files, date)
    };
    for (who, v) in &before {
        let v = v.as_ref().unwrap_or_else(|| panic!("{who}"));
        assert!(v.release.contains("Valid-Until: "), "{who}");
    }
    let mut p = w.publisher();
    p.now = in_13_hours;
    p.run().await.unwrap();
    for ((who, old), (_, new)) in before.iter().zip(suite_views(&w, "stable/_s1").await) {
        let (old, new) = (release(old.as_ref().unwrap()), release(&new.unwrap()));
        assert_eq!(old.0, new.0, "{who}: the same index files");
        assert_ne!(old.1, new.1, "{who}: signed again");
    }
}
