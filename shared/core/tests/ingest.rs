//! Ingest on the local adapters (a directory and a file-locked table): the
//! scenarios of DESIGN §4–§6, with events in random order and duplicated.
//! The same scenarios run on the emulator through S3 notifications in
//! `functions/ingest/tests`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use raptr_core::config::Config;
use raptr_core::ingest::{Ingest, ObjectEvent, MAX_FOLDER_FILES, SWEEP_REPORT};
use raptr_core::manifest::Manifest;
use raptr_core::report::Report;
use raptr_formats::bundle::Status;
use raptr_store::fs::FsStore;
use raptr_store::table::{Journal, LocalTable};
use raptr_store::{ObjectStore, PutOptions};
use raptr_testkit::{changes, deb, deb_name, deb_with_control, shuffle, source_package, File};

struct Repo {
    _dir: tempfile::TempDir,
    store: Arc<FsStore>,
    table: Arc<LocalTable>,
    ingest: Ingest,
}

fn repo() -> Repo {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsStore::open(dir.path().join("bucket")).unwrap());
    let table = Arc::new(LocalTable::open(dir.path().join("table")).unwrap());
    let ingest = Ingest::new(store.clone(), table.clone(), Config::default_local("repo"));
    Repo {
        _dir: dir,
        store,
        table,
        ingest,
    }
}

impl Repo {
    async fn put(&self, key: &str, bytes: &[u8]) {
        self.store
            .put(key, Bytes::copy_from_slice(bytes), PutOptions::default())
            .await
            .unwrap();
    }

    async fn event(&self, key: &str) -> raptr_core::ingest::Outcome {
        self.event_as(key, "tests").await
    }

    /// The event of `key`, as sent by `principal`.
    async fn event_as(&self, key: &str, principal: &str) -> raptr_core::ingest::Outcome {
        self.ingest
            .handle(&ObjectEvent {
                key: key.to_string(),
                uploader: principal.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"))
    }

    /// Uploads every file into `folder`, then delivers each event twice, in
    /// a shuffled order.
    async fn upload(&self, folder: &str, files: &[File], seed: u64) {
        for (name, bytes) in files {
            self.put(&format!("{folder}/{name}"), bytes).await;
        }
        let mut events: Vec<String> = files
            .iter()
            .flat_map(|(n, _)| [format!("{folder}/{n}"), format!("{folder}/{n}")])
            .collect();
        shuffle(&mut events, seed);
        for key in events {
            self.event(&key).await;
        }
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

    async fn exists(&self, key: &str) -> bool {
        self.store.head(key).await.is_ok()
    }

    async fn manifest(&self, dir: &str) -> Manifest {
        let (m, _) = raptr_core::manifest::load(self.store.as_ref(), dir)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no manifest in {dir}"));
        m
    }

    async fn pending_changes(&self) -> Vec<raptr_core::change::Change> {
        self.table
            .pending(10_000)
            .await
            .unwrap()
            .into_iter()
            .map(|c| serde_json::from_str(&c.body).unwrap())
            .collect()
    }

    async fn incoming_left(&self) -> Vec<String> {
        self.store
            .list("incoming/")
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }
}

fn hello_bundle() -> Vec<File> {
    let mut files = source_package("hello", "1.0-1", &["hello", "hello-doc"]);
    files.push((
        deb_name("hello", "1.0-1", "amd64"),
        deb("hello", "1.0-1", "amd64", None, "a"),
    ));
    files.push((
        deb_name("hello", "1.0-1", "arm64"),
        deb("hello", "1.0-1", "arm64", None, "b"),
    ));
    files.push((
        deb_name("hello-doc", "1.0-1", "all"),
        deb("hello-doc", "1.0-1", "all", Some("hello"), "c"),
    ));
    files
}

const DIR: &str = "pool/main/h/hello/1.0-1";

#[tokio::test]
async fn a_bundle_in_random_order_with_duplicated_events() {
    for seed in [1, 7, 42] {
        let r = repo();
        let folder = "incoming/stable/main/build-1";
        let files = hello_bundle();
        r.upload(folder, &files, seed).await;
        for (name, bytes) in &files {
            let key = format!("{folder}/{name}");
            let report = r.report(&key).await;
            assert_eq!(report.status, Some(Status::Accepted), "{key}: {report:?}");
            let pool_key = format!("{DIR}/{name}");
            assert_eq!(report.pool_key.as_deref(), Some(pool_key.as_str()));
            assert_eq!(report.uploader.as_deref(), Some("tests"));
            let (stored, _) = r.store.get(&pool_key).await.unwrap();
            assert_eq!(&stored[..], &bytes[..], "{pool_key}");
        }
        let m = r.manifest(DIR).await;
        assert_eq!(m.bundle, "hello");
        assert_eq!(m.version, "1.0-1");
        assert_eq!(m.files.len(), files.len());
        let amd64 = &m.files[&deb_name("hello", "1.0-1", "amd64")];
        assert_eq!(amd64.architecture.as_deref(), Some("amd64"));
        assert!(amd64
            .control
            .as_deref()
            .unwrap()
            .contains("Package: hello\n"));
        assert!(m.files["hello_1.0-1.dsc"].control.is_some());
        // One link per accepted file, none for the duplicated events.
        let changes = r.pending_changes().await;
        assert_eq!(changes.len(), files.len(), "{changes:?}");
        assert!(changes
            .iter()
            .all(|c| c.distribution.as_deref() == Some("stable")
                && c.bundle.as_deref() == Some("hello")
                && c.versions == ["1.0-1"]));
        assert!(r.incoming_left().await.is_empty());
        let folder_report: serde_json::Value = serde_json::from_slice(
            &r.store
                .get("reports/incoming/stable/main/build-1.json")
                .await
                .unwrap()
                .0,
        )
        .unwrap();
        assert_eq!(folder_report["bundle"], "hello");
    }
}

#[tokio::test]
async fn a_dsc_waits_for_its_files() {
    let r = repo();
    let folder = "incoming/stable/main/src-1";
    let files = source_package("hello", "1.0-1", &["hello"]);
    let dsc_key = format!("{folder}/{}", files[0].0);
    r.put(&dsc_key, &files[0].1).await;
    r.event(&dsc_key).await;
    let report = r.report(&dsc_key).await;
    assert_eq!(report.status, Some(Status::Pending));
    assert!(
        report.reason.as_deref().unwrap().contains("waiting for"),
        "{report:?}"
    );
    assert!(!r.exists(&format!("{DIR}/{}", files[0].0)).await);
    // The first tarball alone changes nothing.
    r.upload(folder, &files[1..2], 3).await;
    assert_eq!(r.status(&dsc_key).await, Status::Pending);
    assert_eq!(
        r.status(&format!("{folder}/{}", files[1].0)).await,
        Status::Pending
    );
    assert!(!r.exists(&format!("{DIR}/{}", files[1].0)).await);
    // The last one completes the set: all three go in.
    r.upload(folder, &files[2..], 3).await;
    for (name, _) in &files {
        assert_eq!(
            r.status(&format!("{folder}/{name}")).await,
            Status::Accepted
        );
        assert!(r.exists(&format!("{DIR}/{name}")).await, "{name}");
    }
    assert!(r.incoming_left().await.is_empty());
}

#[tokio::test]
async fn a_dsc_with_a_tampered_file_is_rejected_with_its_files() {
    let r = repo();
    let folder = "incoming/stable/main/src-2";
    let mut files = source_package("hello", "1.0-1", &["hello"]);
    files[1].1.push(0);
    r.upload(folder, &files, 5).await;
    for (name, bytes) in &files {
        let key = format!("{folder}/{name}");
        assert_eq!(r.status(&key).await, Status::Rejected, "{key}");
        let (kept, _) = r.store.get(&format!("rejected/{key}")).await.unwrap();
        assert_eq!(&kept[..], &bytes[..]);
    }
    assert!(r.store.list("pool/").await.unwrap().is_empty());
    assert!(r.pending_changes().await.is_empty());
}

#[tokio::test]
async fn a_changes_folder_is_all_or_nothing() {
    let r = repo();
    let folder = "incoming/testing/main/up-7";
    let mut files = hello_bundle();
    let ch = changes("hello", "1.0-1", "testing", &files);
    let missing = files.pop().unwrap();
    files.push(ch);
    r.upload(folder, &files, 11).await;
    for (name, _) in &files {
        let key = format!("{folder}/{name}");
        let report = r.report(&key).await;
        assert_eq!(report.status, Some(Status::Pending), "{key}: {report:?}");
        // The .changes names what is missing; the others point to it.
        let want = if name.ends_with(".changes") {
            missing.0.as_str()
        } else {
            "its report names the missing ones"
        };
        assert!(
            report.reason.as_deref().unwrap().contains(want),
            "{report:?}"
        );
    }
    assert!(r.store.list("pool/").await.unwrap().is_empty());
    assert!(r.pending_changes().await.is_empty());
    // The missing file arrives: everything goes in at once.
    r.upload(folder, std::slice::from_ref(&missing), 1).await;
    for (name, _) in files.iter().chain([&missing]) {
        let key = format!("{folder}/{name}");
        assert_eq!(r.status(&key).await, Status::Accepted, "{key}");
    }
    assert_eq!(r.manifest(DIR).await.files.len(), files.len() + 1);
    assert!(r.incoming_left().await.is_empty());
}

#[tokio::test]
async fn a_changes_folder_with_a_wrong_file_is_rejected_whole() {
    let r = repo();
    let folder = "incoming/testing/main/up-8";
    let mut files = hello_bundle();
    let ch = changes("hello", "1.0-1", "testing", &files);
    let last = files.len() - 1;
    files[last].1 = deb("hello-doc", "1.0-1", "all", Some("hello"), "other bytes");
    files.push(ch);
    r.upload(folder, &files, 2).await;
    for (name, _) in &files {
        let key = format!("{folder}/{name}");
        assert_eq!(r.status(&key).await, Status::Rejected, "{key}");
        assert!(r.exists(&format!("rejected/{key}")).await);
    }
    assert!(r.store.list("pool/").await.unwrap().is_empty());
}

#[tokio::test]
async fn identical_reupload_is_skipped_and_different_bytes_rejected() {
    let r = repo();
    let files = hello_bundle();
    r.upload("incoming/stable/main/b1", &files, 1).await;
    let before = r.manifest(DIR).await;

    // The same bytes again, into testing: skipped, and linked there too.
    r.upload("incoming/testing/main/b2", &files[3..4], 1).await;
    let key = format!("incoming/testing/main/b2/{}", files[3].0);
    let report = r.report(&key).await;
    assert_eq!(report.status, Some(Status::Skipped), "{report:?}");
    assert!(report.reason.unwrap().contains("already in the pool"));
    let changes = r.pending_changes().await;
    assert!(changes
        .iter()
        .any(|c| c.distribution.as_deref() == Some("testing")));

    // Same name, version and architecture, other bytes: rejected, pool intact.
    let other = deb("hello", "1.0-1", "amd64", None, "rebuilt");
    let name = deb_name("hello", "1.0-1", "amd64");
    r.upload(
        "incoming/stable/main/b3",
        &[(name.clone(), other.clone())],
        1,
    )
    .await;
    let key = format!("incoming/stable/main/b3/{name}");
    let report = r.report(&key).await;
    assert_eq!(report.status, Some(Status::Rejected));
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains("different contents"),
        "{report:?}"
    );
    let (pool, _) = r.store.get(&format!("{DIR}/{name}")).await.unwrap();
    assert_eq!(&pool[..], &files[3].1[..]);
    let (kept, _) = r.store.get(&format!("rejected/{key}")).await.unwrap();
    assert_eq!(&kept[..], &other[..]);
    assert_eq!(r.manifest(DIR).await, before);
}

#[tokio::test]
async fn a_new_architecture_may_join_an_existing_bundle_version() {
    let r = repo();
    r.upload("incoming/stable/main/b1", &hello_bundle(), 4)
        .await;
    let name = deb_name("hello", "1.0-1", "i386");
    r.upload(
        "incoming/stable/main/b9",
        &[(name.clone(), deb("hello", "1.0-1", "i386", None, "i"))],
        1,
    )
    .await;
    assert_eq!(
        r.status(&format!("incoming/stable/main/b9/{name}")).await,
        Status::Accepted
    );
    assert!(r.manifest(DIR).await.files.contains_key(&name));
}

#[tokio::test]
async fn an_unlisted_architecture_is_stored_with_a_warning() {
    let r = repo();
    let name = deb_name("hello", "1.0-1", "riscv64");
    let key = format!("incoming/stable/main/b1/{name}");
    r.put(&key, &deb("hello", "1.0-1", "riscv64", None, "r"))
        .await;
    r.event(&key).await;
    let report = r.report(&key).await;
    assert_eq!(report.status, Some(Status::Accepted));
    assert_eq!(
        report.warnings,
        [format!("Skipping ignored architecture {name}")]
    );
    assert!(r.exists(&format!("{DIR}/{name}")).await);
}

#[tokio::test]
async fn versions_that_differ_only_in_epoch_cannot_share_the_pool() {
    let r = repo();
    let a = deb("hello", "1.0-1", "amd64", None, "a");
    let b = deb("hello", "1:1.0-1", "arm64", None, "b");
    r.upload(
        "incoming/stable/main/e1",
        &[(deb_name("hello", "1.0-1", "amd64"), a)],
        1,
    )
    .await;
    let name = deb_name("hello", "1:1.0-1", "arm64");
    r.upload("incoming/stable/main/e2", &[(name.clone(), b)], 1)
        .await;
    let report = r.report(&format!("incoming/stable/main/e2/{name}")).await;
    assert_eq!(report.status, Some(Status::Rejected));
    assert!(report.reason.unwrap().contains("epoch"));
    assert!(!r.exists(&format!("{DIR}/{name}")).await);
}

#[tokio::test]
async fn a_file_of_another_bundle_is_rejected() {
    let r = repo();
    let folder = "incoming/stable/main/mixed";
    let files = vec![
        (
            deb_name("hello", "1.0-1", "amd64"),
            deb("hello", "1.0-1", "amd64", None, "a"),
        ),
        (
            deb_name("other", "2.0", "amd64"),
            deb("other", "2.0", "amd64", None, "b"),
        ),
    ];
    r.upload(folder, &files, 1).await;
    let statuses = [
        r.status(&format!("{folder}/{}", files[0].0)).await,
        r.status(&format!("{folder}/{}", files[1].0)).await,
    ];
    // Whichever came first fixed the folder's bundle; the other is rejected.
    assert!(statuses.contains(&Status::Accepted) && statuses.contains(&Status::Rejected));
}

#[tokio::test]
async fn bad_keys_and_hostile_files_are_rejected_and_kept() {
    let r = repo();
    let hostile = [
        ("incoming/stable/main/h1/evil.deb", b"!<arch>\nnot really".to_vec()),
        (
            "incoming/stable/main/h1/inject_1.0_amd64.deb",
            deb_with_control(
                "Package: inject\nVersion: 1.0\nArchitecture: amd64\nDescription: x\n\nPackage: evil\n",
            ),
        ),
        ("incoming/stable/main/h1/notes.txt", b"hello".to_vec()),
        ("incoming/unstable/main/h2/a_1_amd64.deb", deb("a1", "1", "amd64", None, "")),
        ("incoming/stable/contrib/h3/a_1_amd64.deb", deb("a1", "1", "amd64", None, "")),
        ("incoming/stable/main/a_1_amd64.deb", deb("a1", "1", "amd64", None, "")),
    ];
    for (key, bytes) in &hostile {
        r.put(key, bytes).await;
        r.event(key).await;
        r.event(key).await;
    }
    for (key, bytes) in &hostile {
        let report = r.report(key).await;
        // A stray text file waits for a .dsc that might list it.
        let want = if key.ends_with(".txt") {
            Status::Pending
        } else {
            Status::Rejected
        };
        assert_eq!(report.status, Some(want), "{key}: {report:?}");
        let reason = report.reason.unwrap();
        assert!(!reason.is_empty());
        if want == Status::Rejected {
            let (kept, _) = r.store.get(&format!("rejected/{key}")).await.unwrap();
            assert_eq!(&kept[..], &bytes[..], "{key}");
            assert!(!r.exists(key).await);
        }
    }
    assert!(r.store.list("pool/").await.unwrap().is_empty());
    assert!(r.pending_changes().await.is_empty());
}

#[tokio::test]
async fn fifty_concurrent_bundles_each_land_once() {
    let r = Arc::new(repo());
    let mut tasks = Vec::new();
    for i in 0..50 {
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let pkg = format!("pkg{i}");
            let folder = format!("incoming/stable/main/ci-{i}");
            let files = vec![
                (
                    deb_name(&pkg, "1.0", "amd64"),
                    deb(&pkg, "1.0", "amd64", None, "x"),
                ),
                (
                    deb_name(&pkg, "1.0", "arm64"),
                    deb(&pkg, "1.0", "arm64", None, "y"),
                ),
            ];
            r.upload(&folder, &files, i).await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let changes = r.pending_changes().await;
    assert_eq!(changes.len(), 100);
    for i in 0..50 {
        let m = r.manifest(&format!("pool/main/p/pkg{i}/1.0")).await;
        assert_eq!(m.files.len(), 2);
        assert_eq!(
            changes
                .iter()
                .filter(|c| c.bundle.as_deref() == Some(&format!("pkg{i}")))
                .count(),
            2
        );
    }
    assert!(r.incoming_left().await.is_empty());
}

#[tokio::test]
async fn concurrent_events_for_one_folder_both_land() {
    let r = Arc::new(repo());
    let folder = "incoming/stable/main/race";
    let files = hello_bundle();
    for (name, bytes) in &files {
        r.put(&format!("{folder}/{name}"), bytes).await;
    }
    let mut tasks = Vec::new();
    for (name, _) in files.iter().chain(files.iter()) {
        let (r, key) = (r.clone(), format!("{folder}/{name}"));
        tasks.push(tokio::spawn(async move { r.event(&key).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (name, _) in &files {
        assert_eq!(
            r.status(&format!("{folder}/{name}")).await,
            Status::Accepted
        );
    }
    assert_eq!(r.manifest(DIR).await.files.len(), files.len());
    assert_eq!(r.pending_changes().await.len(), files.len());
}

/// Where `raptr request` would put the request: the place its body names.
fn request_key(name: &str, body: &str) -> String {
    raptr_core::request::key_for(body.as_bytes(), &format!("{name}.json"))
        .unwrap_or_else(|| format!("requests/{name}.json"))
}

async fn request(r: &Repo, name: &str, body: &str) -> Report {
    let key = request_key(name, body);
    r.put(&key, body.as_bytes()).await;
    r.event(&key).await;
    r.report(&key).await
}

#[tokio::test]
async fn requests_are_checked_journaled_and_reported() {
    let r = repo();
    r.upload("incoming/stable/main/b1", &hello_bundle(), 1)
        .await;
    let base = r.pending_changes().await.len();

    let ok = [
        (
            "link",
            r#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"testing"}"#,
        ),
        (
            "unlink",
            r#"{"action":"unlink","bundle":"hello","version":"all","component":"main","distribution":"stable","architectures":["arm64"]}"#,
        ),
        (
            "remove",
            r#"{"action":"remove","bundle":"hello","version":"1.0-1","component":"main","packages":["source"]}"#,
        ),
        ("purge", r#"{"action":"purge"}"#),
        ("verify", r#"{"action":"verify"}"#),
    ];
    for (i, (name, body)) in ok.iter().enumerate() {
        let report = request(&r, name, body).await;
        assert_eq!(report.status, Some(Status::Accepted), "{name}: {report:?}");
        assert!(report.journal_seq.is_some());
        assert_eq!(r.pending_changes().await.len(), base + i + 1);
    }
    let unlink = request(&r, "unlink", ok[1].1).await;
    assert_eq!(
        unlink.files,
        [format!("{DIR}/{}", deb_name("hello", "1.0-1", "arm64"))]
    );
    let changes = r.pending_changes().await;
    let last_link = changes
        .iter()
        .rev()
        .find(|c| c.action.as_str() == "link")
        .unwrap();
    assert_eq!(last_link.distribution.as_deref(), Some("testing"));
    assert!(last_link
        .origin
        .starts_with("requests/link/testing/main/link.json@"));

    // The same request again (a duplicated event) appends nothing.
    r.event("requests/link/testing/main/link.json").await;
    assert_eq!(r.pending_changes().await.len(), base + ok.len());

    // A dry run reports and changes nothing.
    let dry = request(
        &r,
        "dry",
        r#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"testing","dry_run":true}"#,
    )
    .await;
    assert_eq!(dry.status, Some(Status::Accepted));
    assert_eq!(dry.dry_run, Some(true));
    assert_eq!(dry.files.len(), hello_bundle().len());
    assert_eq!(r.pending_changes().await.len(), base + ok.len());

    let bad = [
        ("malformed", "{\"action\":", "not a valid request"),
        (
            "unknown-field",
            r#"{"action":"purge","force":true}"#,
            "unknown field `force`",
        ),
        (
            "no-version",
            r#"{"action":"link","bundle":"hello","component":"main","distribution":"testing"}"#,
            "\"version\" is required",
        ),
        (
            "missing-bundle",
            r#"{"action":"link","bundle":"nothere","version":"1.0","component":"main","distribution":"testing"}"#,
            "not in the pool",
        ),
        (
            "missing-version",
            r#"{"action":"unlink","bundle":"hello","version":"9.9","component":"main","distribution":"testing"}"#,
            "not in the pool",
        ),
        (
            "no-match",
            r#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"testing","packages":["nope"]}"#,
            "no file of hello",
        ),
        (
            "bad-dist",
            r#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"sid"}"#,
            "not a distribution",
        ),
    ];
    for (name, body, why) in bad {
        let report = request(&r, name, body).await;
        assert_eq!(report.status, Some(Status::Rejected), "{name}");
        let reason = report.reason.unwrap();
        assert!(
            reason.contains(why) && reason.starts_with("requests/"),
            "{name}: {reason}"
        );
    }
    assert_eq!(r.pending_changes().await.len(), base + ok.len());

    // Not a .json: moved aside like any rejected upload.
    r.put("requests/notes.txt", b"link hello please").await;
    r.event("requests/notes.txt").await;
    let report = r.report("requests/notes.txt").await;
    assert_eq!(report.status, Some(Status::Rejected));
    assert!(report.reason.unwrap().contains("requests are JSON files"));
    assert!(r.exists("rejected/requests/notes.txt").await);
    assert!(!r.exists("requests/notes.txt").await);
}

#[tokio::test]
async fn a_request_does_only_what_its_key_says() {
    let r = repo();
    r.upload("incoming/stable/main/b1", &hello_bundle(), 1)
        .await;
    let base = r.pending_changes().await.len();
    let link = r#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"testing"}"#;
    let remove = r#"{"action":"remove","bundle":"hello","version":"1.0-1","component":"main"}"#;
    for (key, body, why) in [
        // The old place: refused, with where it must go now.
        (
            "requests/promote.json",
            link,
            "no longer where requests go: a request goes at requests/link/<distribution>/<component>/<name>.json",
        ),
        (
            "requests/promote.json",
            link,
            "this one belongs at requests/link/testing/main/promote.json",
        ),
        (
            "requests/old.json",
            r#"{"action":"link"}"#,
            "and the body: \"bundle\" (the source package name) is required",
        ),
        // The body may not do more than the key says.
        (
            "requests/unlink/testing/main/sneaky.json",
            link,
            "the key says unlink but the body says \"action\": \"link\"",
        ),
        (
            "requests/link/stable/main/sneaky.json",
            link,
            "the key says distribution \"stable\" but the body says \"distribution\": \"testing\"",
        ),
        (
            "requests/link/testing/contrib/sneaky.json",
            link,
            "the key says component \"contrib\" but the body says \"component\": \"main\"",
        ),
        (
            "requests/remove/contrib/sneaky.json",
            remove,
            "the key says component \"contrib\"",
        ),
        (
            "requests/verify/sneaky.json",
            remove,
            "the key says verify but the body says \"action\": \"remove\"",
        ),
        // Keys that name no place.
        (
            "requests/link/testing/x.json",
            link,
            "a link request goes at requests/link/<distribution>/<component>/<name>.json",
        ),
        (
            "requests/remove/x.json",
            remove,
            "a remove request goes at requests/remove/<component>/<name>.json",
        ),
        (
            "requests/purge/main/x.json",
            r#"{"action":"purge"}"#,
            "a purge request goes at requests/purge/<name>.json",
        ),
        ("requests/promote/x.json", link, "\"promote\" is not an action"),
    ] {
        r.put(key, body.as_bytes()).await;
        r.event_as(key, "arn:aws:iam::111122223333:user/ci").await;
        let report = r.report(key).await;
        assert_eq!(report.status, Some(Status::Rejected), "{key}");
        let reason = report.reason.unwrap();
        assert!(reason.starts_with(&format!("{key}: ")), "{key}: {reason}");
        assert!(reason.contains(why), "{key}: {reason}");
        assert_eq!(
            report.uploader.as_deref(),
            Some("arn:aws:iam::111122223333:user/ci")
        );
    }
    assert_eq!(r.pending_changes().await.len(), base, "nothing journaled");

    // At its place, the same request does what it says, and the journal and
    // the report say who asked.
    let key = "requests/link/testing/main/promote.json";
    r.put(key, link.as_bytes()).await;
    r.event_as(key, "arn:aws:sts::111122223333:assumed-role/release/alice")
        .await;
    let report = r.report(key).await;
    assert_eq!(report.status, Some(Status::Accepted), "{report:?}");
    assert_eq!(
        report.uploader.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/release/alice")
    );
    let changes = r.pending_changes().await;
    assert_eq!(changes.len(), base + 1);
    assert_eq!(
        changes.last().unwrap().by.as_deref(),
        Some("arn:aws:sts::111122223333:assumed-role/release/alice")
    );
}

#[tokio::test]
async fn the_hostile_corpus_is_refused_and_kept_byte_for_byte() {
    let r = repo();
    let folder = "incoming/stable/main/hostile";
    let corpus = raptr_testkit::hostile();
    for (name, bytes, _) in &corpus {
        r.put(&format!("{folder}/{name}"), bytes).await;
    }
    for (name, _, _) in corpus.iter().rev() {
        r.event(&format!("{folder}/{name}")).await;
    }
    for (name, bytes, why) in &corpus {
        let key = format!("{folder}/{name}");
        let report = r.report(&key).await;
        assert_eq!(report.status, Some(Status::Rejected), "{key}: {report:?}");
        let reason = report.reason.unwrap();
        assert!(reason.contains(why), "{key}: expected {why:?} in {reason}");
        let (kept, _) = r.store.get(&format!("rejected/{key}")).await.unwrap();
        assert_eq!(&kept[..], &bytes[..], "{key}");
    }
    assert!(r.store.list("pool/").await.unwrap().is_empty());
    assert!(r.incoming_left().await.is_empty());
    assert!(r.pending_changes().await.is_empty());
}

#[tokio::test]
async fn the_sweep_rejects_stale_pending_files_and_handles_missed_events() {
    let r = repo();
    let folder = "incoming/stable/main/sweep";
    let files = source_package("late", "1.0-1", &["late"]);
    // The .dsc alone: it waits for its tarballs.
    r.upload(folder, &files[..1], 3).await;
    let dsc = format!("{folder}/{}", files[0].0);
    assert_eq!(r.status(&dsc).await, Status::Pending);
    // An object whose event never came.
    let lost = format!(
        "incoming/stable/main/lost/{}",
        deb_name("lost", "1.0", "amd64")
    );
    r.put(&lost, &deb("lost", "1.0", "amd64", None, "l")).await;

    // Right away, both are left to their events; a few minutes later, the
    // lost one is handled.
    let swept = r.ingest.sweep(raptr_core::time::now_ms()).await.unwrap();
    assert_eq!(swept.young, 2);
    assert!(swept.redriven.is_empty());
    let now = raptr_core::time::now_ms() + 10 * 60_000;
    let swept = r.ingest.sweep(now).await.unwrap();
    assert_eq!(swept.waiting, 1);
    assert!(swept.expired.is_empty());
    assert_eq!(swept.redriven.len(), 1);
    assert_eq!(r.status(&lost).await, Status::Accepted);
    assert!(!r.exists(&lost).await);
    assert_eq!(r.status(&dsc).await, Status::Pending);

    // A day later (the default timeout is 24 hours) it is rejected, kept.
    let swept = r.ingest.sweep(now + 25 * 3_600_000).await.unwrap();
    assert_eq!(swept.expired, std::slice::from_ref(&dsc));
    let report = r.report(&dsc).await;
    assert_eq!(report.status, Some(Status::Rejected));
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .starts_with("still pending after 24 hour(s)"),
        "{report:?}"
    );
    assert!(!r.exists(&dsc).await);
    assert_eq!(
        r.store
            .get(&format!("rejected/{dsc}"))
            .await
            .unwrap()
            .0
            .as_ref(),
        files[0].1.as_slice()
    );
    // Nothing left to do.
    let swept = r.ingest.sweep(now + 26 * 3_600_000).await.unwrap();
    assert!(swept.redriven.is_empty() && swept.expired.is_empty() && swept.waiting == 0);
}

#[tokio::test]
async fn the_sweep_goes_past_what_it_cannot_handle_and_carries_out_lost_requests() {
    let r = repo();
    r.upload("incoming/stable/main/b1", &hello_bundle(), 1)
        .await;
    // A folder whose progress record is not raptr's: handling its file
    // fails every time.
    r.put("reports/incoming/stable/main/poison.json", b"{ not json")
        .await;
    let poison = format!(
        "incoming/stable/main/poison/{}",
        deb_name("poison", "1.0", "amd64")
    );
    r.put(&poison, &deb("poison", "1.0", "amd64", None, "p"))
        .await;
    // An upload and a request whose events never came.
    let lost = format!(
        "incoming/stable/main/lost/{}",
        deb_name("lost", "1.0", "amd64")
    );
    r.put(&lost, &deb("lost", "1.0", "amd64", None, "l")).await;
    let link = "requests/link/testing/main/link-hello.json";
    r.put(
        link,
        br#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"testing"}"#,
    )
    .await;

    let now = raptr_core::time::now_ms() + 10 * 60_000;
    let swept = r.ingest.sweep(now).await.unwrap();
    assert_eq!(swept.failed.len(), 1, "{swept:?}");
    assert_eq!(swept.failed[0].key, poison);
    assert!(swept.failed[0].error.contains("not a raptr folder record"));
    assert_eq!(r.status(&lost).await, Status::Accepted);
    let report = r.report(link).await;
    assert_eq!(report.status, Some(Status::Accepted), "{report:?}");
    assert!(report.journal_seq.is_some());
    // The sweep says what it did, failures included.
    let (body, _) = r.store.get(SWEEP_REPORT).await.unwrap();
    let said: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(said["failed"][0]["key"], poison.as_str());
    // The next sweep does not handle the request again, and still only the
    // poison fails.
    let journal = r.pending_changes().await.len();
    let swept = r.ingest.sweep(now + 60_000).await.unwrap();
    assert_eq!(swept.failed.len(), 1);
    assert!(swept.redriven.is_empty(), "{swept:?}");
    assert_eq!(r.pending_changes().await.len(), journal);
}

#[tokio::test]
async fn an_upload_folder_takes_at_most_its_limit_of_files() {
    let r = repo();
    let folder = "incoming/stable/main/many";
    // An unknown file waits in the folder as pending; the folder's record
    // is then made to hold the limit, as thousands of events would.
    let last = format!("{folder}/notes-{:04}.txt", MAX_FOLDER_FILES - 1);
    r.put(&last, b"x").await;
    r.event(&last).await;
    let over = format!("{folder}/one-too-many.txt");
    r.put(&over, b"x").await;
    let (folder_key, body) = {
        let key = "reports/incoming/stable/main/many.json".to_string();
        let (body, _) = r.store.get(&key).await.unwrap();
        (key, body)
    };
    let mut record: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let entry = record["files"][last.rsplit('/').next().unwrap()].clone();
    let files = record["files"].as_object_mut().unwrap();
    for i in 0..MAX_FOLDER_FILES - 1 {
        files.insert(format!("notes-{i:04}.txt"), entry.clone());
    }
    r.put(&folder_key, &serde_json::to_vec(&record).unwrap())
        .await;
    r.event(&over).await;
    let report = r.report(&over).await;
    assert_eq!(report.status, Some(Status::Rejected), "{report:?}");
    assert!(
        report
            .reason
            .as_deref()
            .unwrap()
            .contains(&format!("already has {MAX_FOLDER_FILES} files")),
        "{report:?}"
    );
}

/// Report and record writes of a `.changes` folder whose files arrive one
/// at a time, the `.changes` first.
async fn writes_for_changes_folder(debs: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn raptr_store::ObjectStore> =
        Arc::new(FsStore::open(dir.path().join("bucket")).unwrap());
    let faults = raptr_testkit::faults::Faults::none();
    let store = raptr_testkit::faults::FaultyStore::new(fs.clone(), faults.clone());
    let table = Arc::new(LocalTable::open(dir.path().join("table")).unwrap());
    let ingest = Ingest::new(store, table, Config::default_local("repo"));
    let files: Vec<File> = (0..debs)
        .map(|i| {
            let arch = ["amd64", "arm64", "i386"][i % 3];
            let pkg = format!("many{i}");
            (
                deb_name(&pkg, "1.0", arch),
                deb(&pkg, "1.0", arch, Some("many"), "m"),
            )
        })
        .collect();
    let ch = changes("many", "1.0", "stable", &files);
    let folder = "incoming/stable/main/many";
    for (name, bytes) in std::iter::once(&ch).chain(&files) {
        let key = format!("{folder}/{name}");
        fs.put(&key, Bytes::copy_from_slice(bytes), PutOptions::default())
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
    let report = Report::read(fs.as_ref(), &format!("{folder}/{}", ch.0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.status, Some(Status::Accepted), "{report:?}");
    faults.writes()
}

#[tokio::test]
async fn a_changes_folder_costs_writes_in_proportion_to_its_files() {
    let small = writes_for_changes_folder(12).await;
    let large = writes_for_changes_folder(48).await;
    // Four times the files: about four times the writes. Rewriting every
    // waiting file's report at each arrival would make it about sixteen.
    assert!(
        large <= small * 5,
        "12 files: {small} writes, 48 files: {large} writes"
    );
}

/// Objects the function may not read (a 403, an archived or SSE-C object)
/// are rejected with a report at once, left where they are, and not tried
/// again by the sweep; the bundle beside them lands.
#[tokio::test]
async fn unreadable_objects_are_rejected_in_place_and_answered_once() {
    let r = repo();
    let faults = raptr_testkit::faults::Faults::none();
    let store = raptr_testkit::faults::FaultyStore::new(r.store.clone(), faults.clone());
    let ingest = Ingest::new(store, r.table.clone(), Config::default_local("repo"));
    let deb_key = format!(
        "incoming/stable/main/b2/{}",
        deb_name("locked", "1.0", "amd64")
    );
    let request_key = "requests/verify/locked.json";
    r.put(&deb_key, &deb("locked", "1.0", "amd64", None, "l"))
        .await;
    r.put(request_key, br#"{"action":"verify"}"#).await;
    faults.deny_reading(&deb_key);
    faults.deny_reading(request_key);
    for key in [deb_key.as_str(), request_key] {
        let out = ingest
            .handle(&ObjectEvent {
                key: key.to_string(),
                uploader: "tests".into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(out.status, Some(Status::Rejected), "{key}: {out:?}");
        let report = r.report(key).await;
        assert_eq!(report.status, Some(Status::Rejected));
        let reason = report.reason.unwrap();
        assert!(reason.contains("not readable"), "{reason}");
        assert!(reason.contains(key), "{reason}");
        assert!(r.exists(key).await, "{key} was not left in place");
    }
    r.upload("incoming/stable/main/b1", &hello_bundle(), 3)
        .await;
    let now = raptr_core::time::now_ms() + 10 * 60_000;
    let swept = ingest.sweep(now).await.unwrap();
    assert!(swept.failed.is_empty(), "{swept:?}");
    let redriven: Vec<&str> = swept.redriven.iter().map(|o| o.key.as_str()).collect();
    assert!(
        !redriven.contains(&deb_key.as_str()) && !redriven.contains(&request_key),
        "answered objects handled again: {redriven:?}"
    );
    assert_eq!(r.manifest(DIR).await.files.len(), hello_bundle().len());
}

/// A distribution closed to uploads takes packages only by promotion: an
/// upload to it is rejected (and kept) with the rule named; a link request
/// to it is carried out.
#[tokio::test]
async fn a_distribution_closed_to_uploads_takes_only_promotions() {
    let r = repo();
    let mut config = Config::default_local("repo");
    for (name, d) in config
        .layouts
        .get_mut("default")
        .unwrap()
        .distributions
        .iter_mut()
    {
        d.uploads = name != "stable";
    }
    let ingest = Ingest::new(r.store.clone(), r.table.clone(), config);
    let handle = |key: String| {
        let ingest = ingest.clone();
        async move {
            ingest
                .handle(&ObjectEvent {
                    key,
                    uploader: "tests".into(),
                })
                .await
                .unwrap()
        }
    };
    let name = deb_name("hello", "1.0-1", "amd64");
    let bytes = deb("hello", "1.0-1", "amd64", None, "a");
    let closed = format!("incoming/stable/main/b1/{name}");
    r.put(&closed, &bytes).await;
    let out = handle(closed.clone()).await;
    assert_eq!(out.status, Some(Status::Rejected), "{out:?}");
    let report = r.report(&closed).await;
    let reason = report.reason.clone().unwrap();
    assert!(reason.contains("stable: closed to uploads"), "{reason}");
    assert!(r.exists(report.rejected_key.as_deref().unwrap()).await);
    assert!(!r.exists(&closed).await);
    // Uploaded to testing, then promoted to stable.
    let open = format!("incoming/testing/main/b1/{name}");
    r.put(&open, &bytes).await;
    assert_eq!(handle(open).await.status, Some(Status::Accepted));
    let key = "requests/link/stable/main/promote.json";
    r.put(
        key,
        br#"{"action":"link","bundle":"hello","version":"1.0-1","component":"main","distribution":"stable"}"#,
    )
    .await;
    assert_eq!(handle(key.to_string()).await.status, Some(Status::Accepted));
    // The journal says who asked, for the upload and for the promotion.
    let changes = r.pending_changes().await;
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes.iter().all(|c| c.by.as_deref() == Some("tests")),
        "{changes:?}"
    );
}

impl Repo {
    /// Each file's report in `folder`: key, status, reason.
    async fn statuses(
        &self,
        folder: &str,
        files: &[File],
    ) -> Vec<(String, Option<Status>, String)> {
        let mut out = Vec::new();
        for (n, _) in files {
            let k = format!("{folder}/{n}");
            let rep = self.report(&k).await;
            out.push((k, rep.status, rep.reason.unwrap_or_default()));
        }
        out
    }
}

/// Reads upload keyrings from files, as the CLI does.
struct Files;

#[async_trait::async_trait]
impl raptr_core::signing::load::Reader for Files {
    async fn secret(&self, name: &str) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        Err(format!("no secret {name} in this test"))
    }
    fn file(&self, path: &str, limit: u64) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
        raptr_core::signing::load::read_file(std::path::Path::new(path), limit)
    }
}

/// A distribution with an upload keyring takes a folder only with a
/// `.changes` signed by a keyring key (primary or signing subkey, made by
/// GnuPG) listing every file. Unsigned, signed by another key, altered
/// after signing, or missing (pending, then rejected by the sweep): every
/// file of the folder is rejected, and the reason names the rule.
#[tokio::test]
async fn signed_uploads_need_a_changes_signed_by_the_keyring() {
    use raptr_testkit::gnupg::Gpg;
    let r = repo();
    let tmp = tempfile::tempdir().unwrap();
    let gpg = Gpg::new(tmp.path());
    let uploader = gpg.generate(
        "Up <up@raptr.invalid>",
        "ed25519",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let ci = gpg.generate("CI <ci@raptr.invalid>", "rsa3072", "cert", "never", "", &[]);
    gpg.add_subkey(&ci, "rsa3072", "sign", "");
    let stranger = gpg.generate(
        "Stranger <s@raptr.invalid>",
        "ed25519",
        "sign,cert",
        "never",
        "",
        &[],
    );
    // The keyring: the uploader armoured, the CI key binary, one file.
    let ring = tmp.path().join("uploaders.keyring");
    let mut bytes = gpg.export_public(&ci);
    bytes.extend(
        gpg.gpg("")
            .args(["--armor", "--export", &uploader])
            .output()
            .unwrap()
            .stdout,
    );
    std::fs::write(&ring, &bytes).unwrap();
    let mut config = Config::default_local("repo");
    let testing = config
        .layouts
        .get_mut("default")
        .unwrap()
        .distributions
        .get_mut("testing")
        .unwrap();
    testing.upload_keyring = Some(raptr_core::config::Keyring {
        secret: None,
        file: Some(ring.display().to_string()),
    });
    config.validate("test").unwrap();
    let ingest =
        Ingest::new(r.store.clone(), r.table.clone(), config).with_keyrings(Arc::new(Files));
    let r = Repo { ingest, ..r };
    let bundle = |v: &str| {
        let mut files = source_package("hello", v, &["hello"]);
        files.push((
            deb_name("hello", v, "amd64"),
            deb("hello", v, "amd64", None, v),
        ));
        files
    };
    let signed = |who: &str, files: &[File], v: &str| {
        let (name, text) = changes("hello", v, "testing", files);
        (name, gpg.clearsign(who, &text))
    };

    // Signed by a keyring key (its primary; then a signing subkey): accepted.
    for (i, who) in [&uploader, &ci].into_iter().enumerate() {
        let v = format!("1.0-{}", i + 1);
        let mut files = bundle(&v);
        files.push(signed(who, &files, &v));
        let folder = format!("incoming/testing/main/good{i}");
        r.upload(&folder, &files, 7 + i as u64).await;
        for (k, status, why) in r.statuses(&folder, &files).await {
            let changes_why = r
                .report(&format!("{folder}/hello_{v}_amd64.changes"))
                .await
                .reason;
            assert_eq!(
                status,
                Some(Status::Accepted),
                "{k}: {why} / {changes_why:?}"
            );
        }
    }

    // Refused: unsigned, by a stranger, altered after signing.
    let v = "2.0-1";
    let files = bundle(v);
    let (cname, unsigned) = changes("hello", v, "testing", &files);
    let (_, by_stranger) = signed(&stranger, &files, v);
    let (_, good) = signed(&uploader, &files, v);
    let altered = String::from_utf8(good)
        .unwrap()
        .replace("urgency=low", "urgency=high")
        .into_bytes();
    for (i, (what, doc, expect)) in [
        ("unsigned", unsigned, "it is not signed"),
        ("stranger", by_stranger, "not a usable key of the keyring"),
        ("altered", altered, "not a usable key of the keyring"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut files = files.clone();
        files.push((cname.clone(), doc));
        let folder = format!("incoming/testing/main/bad{i}");
        r.upload(&folder, &files, 11 + i as u64).await;
        for (k, status, why) in r.statuses(&folder, &files).await {
            assert_eq!(status, Some(Status::Rejected), "{what}: {k}: {why}");
            assert!(
                why.contains("signed by a key of its upload keyring"),
                "{what}: {k}: {why}"
            );
            if k.ends_with(".changes") {
                assert!(why.contains(expect), "{what}: {k}: {why}");
            }
        }
    }

    // No .changes at all: pending, then rejected by the sweep.
    let folder = "incoming/testing/main/none";
    let files = bundle("3.0-1");
    r.upload(folder, &files, 5).await;
    for (k, status, why) in r.statuses(folder, &files).await {
        assert_eq!(status, Some(Status::Pending), "{k}: {why}");
        assert!(why.contains("waiting for one"), "{k}: {why}");
    }
    let later = raptr_core::time::now_ms() + 25 * 3_600_000;
    r.ingest.sweep(later).await.unwrap();
    for (k, status, why) in r.statuses(folder, &files).await {
        assert_eq!(status, Some(Status::Rejected), "{k}: {why}");
        assert!(
            why.contains("signed by a key of its upload keyring"),
            "{k}: {why}"
        );
    }
    // Only the two signed bundles reached the journal; stable, without a
    // keyring, still takes unsigned uploads.
    let journaled: std::collections::BTreeSet<String> = r
        .pending_changes()
        .await
        .iter()
        .flat_map(|c| c.versions.clone())
        .collect();
    assert_eq!(
        journaled,
        ["1.0-1", "1.0-2"].map(String::from).into_iter().collect()
    );
    let free = format!(
        "incoming/stable/main/free/{}",
        deb_name("hello", "4.0-1", "amd64")
    );
    r.put(&free, &deb("hello", "4.0-1", "amd64", None, "f"))
        .await;
    assert_eq!(r.event(&free).await.status, Some(Status::Accepted));
}
