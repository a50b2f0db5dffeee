//! Ingest (DESIGN §3–§6): one object created under `incoming/` or `requests/`
//! in, every file it settles accepted, skipped, rejected or pending out —
//! reported, and journaled for the publisher.
//!
//! [`Ingest::handle`] is what the Lambda function runs for each S3 event and
//! what `raptr upload` and `raptr request` run locally. It is idempotent: an
//! event handled twice, or two events racing for one folder, end in the same
//! state as one. Errors it returns are the ones that may succeed later (the
//! caller retries); everything wrong with the input becomes a report.
//!
//! The order of the steps for a file is what makes a crash at any point safe:
//! pool copy (create-only, under the validated ETag), manifest, journal,
//! report, and only then the incoming object is deleted and the folder record
//! marks the file done. A re-run redoes each step as a no-op.

use std::collections::BTreeMap;
use std::io::{self, BufReader, Read};
use std::sync::Arc;

use bytes::Bytes;
use raptr_formats::bundle::{analyze_file, apply_rules, FileResult, Kind, Parsed, Rules, Status};
use raptr_formats::deb::Limits;
use raptr_formats::layout::{pool_dir, pool_prefix};
use raptr_formats::Version;
use raptr_store::table::{Journal, TableError};
use raptr_store::{ObjectMeta, ObjectStore, PutOptions, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::io::SyncIoBridge;

use crate::change::Change;
use crate::config::{Config, Distribution};
use crate::folder::{Entry, Folder, Found};
use crate::keys::{rejected_key, UploadKey, IMPORTS, INCOMING, REQUESTS};
use crate::manifest::{self, Added, ManifestFile};
use crate::report::Report;
use crate::request::{Action, Place, Request, Versions};
use crate::time::{now_ms, rfc3339};

/// An object-created event, as the handler and the CLI see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEvent {
    pub key: String,
    /// Who uploaded it: the event's principal, or `local:<user>`.
    pub uploader: String,
}

/// What one event settled, for the log line and the CLI summary.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub key: String,
    /// The event's own object: its status, or `null` when there was nothing
    /// to do (a duplicate event, a key outside incoming/ and requests/).
    pub status: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Every file this event carried out a decision for (its own and, when it
    /// completed a `.dsc` or `.changes`, the files that waited for it).
    pub settled: Vec<Settled>,
}

/// What a sweep of `incoming/` and `requests/` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Swept {
    /// When it ran (RFC 3339).
    pub at: String,
    /// Objects found in `incoming/` or `requests/` whose event never arrived
    /// (or whose handling died half way), handled now.
    pub redriven: Vec<Outcome>,
    /// Files rejected for waiting longer than `pending_timeout_hours`.
    pub expired: Vec<String>,
    /// Files still waiting, within their time.
    pub waiting: usize,
    /// Objects younger than the minimum age ([`SWEEP_MIN_AGE_SECONDS`] by
    /// default), left to their own events.
    pub young: usize,
    /// Objects the sweep could not handle this time, with the error; the
    /// next sweep (or their own event) tries again, and nothing else waited
    /// for them.
    pub failed: Vec<SweepFailure>,
}

/// An object the sweep could not handle, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SweepFailure {
    pub key: String,
    pub error: String,
}

/// Files of each folder (by folder key) that waited too long: the folder's
/// upload key and each file's name and ETag.
type Expiring = BTreeMap<String, (UploadKey, Vec<(String, String)>)>;

/// The most files one upload folder may hold: every later one is rejected.
/// A bundle is one source package at one version; the Linux kernel's, for
/// every architecture, has a few hundred files.
pub const MAX_FOLDER_FILES: usize = 2048;

/// The sweep leaves objects younger than this to their own events: a sweep
/// that raced an event's handler would only do the same work twice.
pub const SWEEP_MIN_AGE_SECONDS: u64 = 300;

/// Where the last sweep says what it did (`Swept`, as JSON). No upload or
/// request key has this report key: theirs are under `reports/incoming/`,
/// `reports/requests/` and `reports/invalid-keys/`.
pub const SWEEP_REPORT: &str = "reports/sweep.json";

#[derive(Debug, Clone, Serialize)]
pub struct Settled {
    pub key: String,
    pub status: Status,
}

impl Swept {
    fn fail(&mut self, key: &str, e: &IngestError) {
        tracing::warn!(key = %key, error = %e, "the sweep could not handle it; the next one will try again");
        self.failed.push(SweepFailure {
            key: key.to_string(),
            error: raptr_formats::quote::line(&e.to_string()).into_owned(),
        });
    }
}

impl Outcome {
    fn nothing(key: &str, reason: impl Into<String>) -> Outcome {
        Outcome {
            key: key.to_string(),
            status: None,
            reason: Some(reason.into()),
            bundle: None,
            version: None,
            settled: Vec::new(),
        }
    }
}

/// A failure that may succeed if the event is handled again.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{0}")]
    Io(String),
}

type Result<T, E = IngestError> = std::result::Result<T, E>;

/// The ingest logic over the storage and journal ports.
#[derive(Debug, Clone)]
pub struct Ingest {
    store: Arc<dyn ObjectStore>,
    journal: Arc<dyn Journal>,
    config: Arc<Config>,
    limits: Limits,
    sweep_min_age: u64,
    /// Reads distributions' upload keyrings (secrets, files).
    keyrings: Option<KeyringReader>,
}

/// What reads upload keyrings.
#[derive(Clone)]
struct KeyringReader(Arc<dyn crate::signing::load::Reader>);

impl std::fmt::Debug for KeyringReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyringReader")
    }
}

/// What an executed decision came to.
enum Done {
    Final {
        status: Status,
        reason: Option<String>,
        journal_seq: Option<u64>,
    },
    /// The incoming object is gone or was replaced: another invocation
    /// carried this out, or a newer upload has its own event.
    Gone,
}

impl Ingest {
    pub fn new(store: Arc<dyn ObjectStore>, journal: Arc<dyn Journal>, config: Config) -> Ingest {
        Ingest {
            store,
            journal,
            config: Arc::new(config),
            limits: Limits::default(),
            sweep_min_age: SWEEP_MIN_AGE_SECONDS,
            keyrings: None,
        }
    }

    /// Reads distributions' `upload_keyring`s through `reader`. Without
    /// one, a `.changes` for such a distribution is rejected as unverifiable.
    pub fn with_keyrings(mut self, reader: Arc<dyn crate::signing::load::Reader>) -> Ingest {
        self.keyrings = Some(KeyringReader(reader));
        self
    }

    /// The fingerprint of the upload keyring's key that signed the `.changes`
    /// `doc` (`Ok(Ok)`), why it is not accepted (`Ok(Err)`), or a failure
    /// to read the keyring that may pass (`Err`).
    async fn check_signature(
        &self,
        keyring: &crate::config::Keyring,
        dist_name: &str,
        doc: Option<&str>,
    ) -> Result<std::result::Result<String, String>> {
        use crate::config::KeyPlace;
        let rule = format!(
            "{dist_name} takes only uploads whose .changes is signed by a key of its upload keyring"
        );
        let Some(doc) = doc else {
            return Ok(Err(format!("{rule}, and this one is not text")));
        };
        let Some(KeyringReader(reader)) = &self.keyrings else {
            return Ok(Err(format!(
                "{rule}, and this ingest cannot read keyrings (tell the repository's operator)"
            )));
        };
        let (bytes, source) = match keyring.place() {
            KeyPlace::Secret(n) => (reader.secret(n).await, format!("secret {n}")),
            KeyPlace::File(f) => (
                reader.file(f, crate::signing::keyring::MAX_KEYRING_BYTES),
                f.to_string(),
            ),
        };
        let bytes = bytes.map_err(|e| IngestError::Io(format!("upload keyring {source}: {e}")))?;
        let ring = match crate::signing::keyring::Keyring::parse(&bytes, &source) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Err(format!(
                    "{rule}, and the keyring cannot be read ({e}; tell the repository's operator)"
                )))
            }
        };
        let parsed = match raptr_formats::signed::strip_signature(doc) {
            Ok(c) => c.text,
            Err(e) => return Ok(Err(format!("{rule}: {e}"))),
        };
        Ok(ring
            .verify_document(doc, &parsed)
            .map_err(|why| format!("{rule}: {why}")))
    }

    /// Makes the sweep leave objects younger than `seconds` to their events
    /// (default [`SWEEP_MIN_AGE_SECONDS`]).
    pub fn with_sweep_min_age(mut self, seconds: u64) -> Ingest {
        self.sweep_min_age = seconds;
        self
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handles one object-created event.
    pub async fn handle(&self, event: &ObjectEvent) -> Result<Outcome> {
        let handled = if event.key.starts_with(INCOMING) || event.key.starts_with(IMPORTS) {
            self.incoming(event).await
        } else if event.key.starts_with(REQUESTS) {
            self.request(event).await
        } else {
            return Ok(Outcome::nothing(
                &event.key,
                "not under incoming/ or requests/; ignored",
            ));
        };
        match handled {
            Err(IngestError::Store(StoreError::Denied { key, reason })) if key == event.key => {
                self.reject_unreadable(event, reason).await
            }
            other => other,
        }
    }

    /// An object this function may not read (see [`StoreError::Denied`]):
    /// no retry can help, so it is rejected with a report, and left where
    /// it is (it cannot be copied, and nothing unread is deleted).
    async fn reject_unreadable(&self, event: &ObjectEvent, why: String) -> Result<Outcome> {
        let key = &event.key;
        let meta = match self.store.head(key).await {
            Ok(meta) => Some(meta),
            Err(StoreError::NotFound { .. }) => None,
            // Not even a head: a listing still shows it.
            Err(_) => self
                .store
                .list_page(key, None)
                .await?
                .objects
                .into_iter()
                .find(|o| &o.key == key),
        };
        let Some(meta) = meta else {
            return Ok(Outcome::nothing(
                key,
                "already handled (the object is gone)",
            ));
        };
        let reason = format!(
            "{}: not readable: {why}; it is left where it is: delete it and upload it again",
            raptr_formats::quote::name(key)
        );
        self.write_rejection(event, &meta, &reason, None).await?;
        tracing::info!(key = %key, outcome = "rejected", reason = %reason, "settled");
        Ok(Outcome {
            key: key.clone(),
            status: Some(Status::Rejected),
            reason: Some(reason),
            bundle: None,
            version: None,
            settled: Vec::new(),
        })
    }

    /// The report of an object rejected on its own (not as part of a
    /// folder): kept at `kept` under rejected/, or left in place.
    async fn write_rejection(
        &self,
        event: &ObjectEvent,
        meta: &ObjectMeta,
        reason: &str,
        kept: Option<String>,
    ) -> Result<()> {
        let mut report = Report::new(&event.key, Status::Rejected).reason(reason.to_string());
        report.rejected_key = kept;
        report.size = Some(meta.size);
        report.etag = Some(meta.etag.clone());
        report.uploader = Some(event.uploader.clone());
        report.write(self.store.as_ref()).await?;
        Ok(())
    }

    // ----- incoming/ -------------------------------------------------------

    async fn incoming(&self, event: &ObjectEvent) -> Result<Outcome> {
        let key = &event.key;
        let (uk, dist) = match UploadKey::parse(key, &self.config) {
            Ok(parsed) => parsed,
            Err(reason) => return self.reject_stray(event, reason).await,
        };
        if !dist.uploads && !uk.is_import() {
            let reason = format!(
                "{}: closed to uploads (its layout says \"uploads\": false); packages reach it only by a link request",
                uk.distribution
            );
            return self.reject_stray(event, reason).await;
        }
        // An import's files are vouched for by its upstream's signature,
        // not by a signed .changes.
        let unsigned;
        let dist = if uk.is_import() && dist.upload_keyring.is_some() {
            unsigned = Distribution {
                upload_keyring: None,
                ..dist.clone()
            };
            &unsigned
        } else {
            dist
        };
        let Some((result, meta, document)) = self.analyze(key, &uk.file).await? else {
            return Ok(Outcome::nothing(
                key,
                "already handled (the object is gone)",
            ));
        };
        let kind = result.kind;
        let signature = match (&dist.upload_keyring, kind) {
            (Some(ring), Kind::Changes) if result.status != Status::Rejected => Some(
                self.check_signature(ring, &uk.distribution, document.as_deref())
                    .await?,
            ),
            _ => None,
        };
        // A .changes already in the folder makes it all-or-nothing, even if
        // its own event has not been handled yet.
        let changes_seen = if kind == Kind::Changes {
            None
        } else {
            self.store
                .list(&format!("{}/", uk.folder()))
                .await?
                .into_iter()
                .filter_map(|o| o.key.rsplit('/').next().map(str::to_string))
                .find(|n| n.ends_with(".changes"))
        };
        let entry = Entry {
            kind,
            etag: meta.etag.clone(),
            status: Status::Pending,
            done: false,
            reason: None,
            warnings: Vec::new(),
            pool_key: None,
            journal_seq: None,
            uploader: event.uploader.clone(),
            seen_at: rfc3339(now_ms()),
            found: {
                let mut found = Found::from_result(&result, document);
                match signature {
                    Some(Ok(fpr)) => found.signed_by = Some(fpr),
                    Some(Err(why)) => found.invalid = Some(why),
                    None => {}
                }
                found
            },
        };
        let (folder, changed) = self
            .update_folder(&uk, |folder| {
                let current = folder.files.get(&uk.file);
                if current.is_none_or(|e| e.etag != entry.etag) {
                    let mut entry = entry.clone();
                    if current.is_none() && folder.files.len() >= MAX_FOLDER_FILES {
                        entry.found.invalid = Some(format!(
                            "{}: the upload folder already has {MAX_FOLDER_FILES} files, the most one bundle may have",
                            raptr_formats::quote::name(&uk.file)
                        ));
                    }
                    folder.files.insert(uk.file.clone(), entry);
                }
                if let Some(c) = &changes_seen {
                    if !folder.files.contains_key(c) {
                        folder.awaiting_changes = Some(c.clone());
                    }
                }
                decide(folder, dist)
            })
            .await?;
        let (settled, folder) = self.settle(&uk, folder).await?;
        // Files still waiting learn why (their reason may have changed).
        for (name, e) in &folder.files {
            if e.status == Status::Pending && (name == &uk.file || changed.contains(name)) {
                let report = self.file_report(&uk, &folder, name, e);
                report.write(self.store.as_ref()).await?;
            }
        }
        let own = folder.files.get(&uk.file);
        Ok(Outcome {
            key: key.clone(),
            status: own.map(|e| e.status),
            reason: own.and_then(|e| e.reason.clone()),
            bundle: folder.bundle.clone(),
            version: folder.version.clone(),
            settled,
        })
    }

    /// Streams the object once through validation. `None` if it is gone.
    async fn analyze(
        &self,
        key: &str,
        name: &str,
    ) -> Result<Option<(FileResult, ObjectMeta, Option<String>)>> {
        let (reader, meta) = match self.store.get_stream(key).await {
            Ok(found) => found,
            Err(StoreError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bridge = SyncIoBridge::new(reader);
        let limits = self.limits.clone();
        let (name, key_owned) = (name.to_string(), key.to_string());
        let analyzed = tokio::task::spawn_blocking(move || {
            let mut slot = Some(bridge);
            let mut kept: Option<Vec<u8>> = None;
            let kind = raptr_formats::bundle::kind_of(&name);
            let small = matches!(kind, Kind::Dsc | Kind::Changes | Kind::Buildinfo);
            let mut open = |_: &str| -> io::Result<Box<dyn Read>> {
                let bridge = slot
                    .take()
                    .ok_or_else(|| io::Error::other("the object was opened twice"))?;
                if small {
                    // Documents are capped at 1 MiB by the validator; keep the
                    // bytes it reads for the folder record.
                    let mut bytes = Vec::new();
                    bridge
                        .take(raptr_formats::dsc::MAX_DESCRIPTION + 1)
                        .read_to_end(&mut bytes)?;
                    kept = Some(bytes.clone());
                    return Ok(Box::new(io::Cursor::new(bytes)));
                }
                Ok(Box::new(BufReader::with_capacity(256 << 10, bridge)))
            };
            let result = analyze_file(&name, &mut open, &limits);
            result.map(|r| {
                let doc = kept.and_then(|b| String::from_utf8(b).ok());
                (r, doc)
            })
        })
        .await
        .map_err(|e| IngestError::Io(format!("{key_owned}: validation stopped: {e}")))?;
        match analyzed {
            Ok((result, doc)) => Ok(Some((result, meta, doc))),
            Err(e) => Err(IngestError::Io(format!("{key}: reading failed: {e}"))),
        }
    }

    async fn load_folder(&self, uk: &UploadKey) -> Result<(Folder, Option<String>)> {
        let key = uk.folder_report_key();
        match self.store.get_limited(&key, crate::limits::FOLDER).await {
            Ok((body, meta)) => {
                let folder = Folder::from_json(&body).map_err(|e| StoreError::Permanent {
                    key: key.clone(),
                    source: e.into(),
                })?;
                Ok((folder, Some(meta.etag)))
            }
            Err(StoreError::NotFound { .. }) => Ok((
                Folder {
                    folder: uk.folder(),
                    distribution: uk.distribution.clone(),
                    component: uk.component.clone(),
                    upload_id: uk.upload_id.clone(),
                    ..Default::default()
                },
                None,
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Read, change, compare-and-swap, until it lands.
    async fn update_folder<T>(
        &self,
        uk: &UploadKey,
        mut change: impl FnMut(&mut Folder) -> T,
    ) -> Result<(Folder, T)> {
        let key = uk.folder_report_key();
        let mut backoff = raptr_store::table::Backoff::new(&key);
        loop {
            let (mut folder, etag) = self.load_folder(uk).await?;
            let out = change(&mut folder);
            folder.updated_at = rfc3339(now_ms());
            let body =
                serde_json::to_vec_pretty(&folder).map_err(|e| IngestError::Io(e.to_string()))?;
            let opts = PutOptions {
                content_type: Some("application/json".into()),
                ..match etag {
                    Some(etag) => PutOptions::if_match(etag),
                    None => PutOptions::create_only(),
                }
            };
            match self.store.put(&key, Bytes::from(body), opts).await {
                Ok(_) => return Ok((folder, out)),
                Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {
                    tokio::time::sleep(backoff.next_pause()).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Carries out every decided, not yet done, decision of the folder;
    /// returns what it settled and the folder as it now stands.
    async fn settle(&self, uk: &UploadKey, folder: Folder) -> Result<(Vec<Settled>, Folder)> {
        let mut todo: Vec<(String, Entry)> = folder
            .files
            .iter()
            .filter(|(_, e)| !e.done && e.status != Status::Pending)
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        if todo.is_empty() {
            return Ok((Vec::new(), folder));
        }
        self.precheck_pool(&folder, &mut todo).await?;
        let mut results = Vec::new();
        for (name, entry) in &todo {
            let done = self.carry_out(uk, &folder, name, entry).await?;
            results.push((name.clone(), entry.etag.clone(), done));
        }
        let mut settled = Vec::new();
        let (folder, ()) = self
            .update_folder(uk, |f| {
                settled.clear();
                for (name, etag, done) in &results {
                    let Some(e) = f.files.get_mut(name) else {
                        continue;
                    };
                    if &e.etag != etag || e.done {
                        continue;
                    }
                    if let Done::Final {
                        status,
                        reason,
                        journal_seq,
                    } = done
                    {
                        e.status = *status;
                        e.reason = reason.clone();
                        e.journal_seq = *journal_seq;
                    }
                    e.done = true;
                    if let Done::Final { status, .. } = done {
                        settled.push(Settled {
                            key: format!("{}/{name}", uk.folder()),
                            status: *status,
                        });
                    }
                }
            })
            .await?;
        Ok((settled, folder))
    }

    /// Checks the accepted files against the bundle version's manifest before
    /// anything is copied, so that a conflict rejects a `.dsc` with its files,
    /// or a `.changes` folder as a whole, instead of half of it.
    async fn precheck_pool(&self, folder: &Folder, todo: &mut [(String, Entry)]) -> Result<()> {
        let (Some(bundle), Some(version)) = (&folder.bundle, &folder.version) else {
            return Ok(());
        };
        let Ok(v) = Version::parse(version) else {
            return Ok(());
        };
        let dir = pool_dir(&folder.component, bundle, &v);
        let Some((m, _)) = manifest::load(self.store.as_ref(), &dir).await? else {
            return Ok(());
        };
        let mut conflict: Option<(String, Kind, String)> = None;
        for (name, e) in todo.iter_mut() {
            if e.status != Status::Accepted {
                continue;
            }
            let Some(mf) = self.manifest_file(folder, name, e) else {
                continue;
            };
            let pool_name = pool_name(e).unwrap_or(name);
            if let Some(Added::Conflict(why)) = manifest::compare(&m, version, pool_name, &mf) {
                e.status = Status::Rejected;
                e.reason = Some(format!("{name}: {why}"));
                conflict.get_or_insert((name.clone(), e.kind, why));
            }
        }
        let Some((first, first_kind, why)) = conflict else {
            return Ok(());
        };
        let atomic = folder
            .files
            .values()
            .any(|e| e.kind == Kind::Changes && e.status != Status::Rejected);
        for (name, e) in todo.iter_mut() {
            let in_source_group = matches!(first_kind, Kind::Dsc | Kind::Unknown | Kind::Source)
                && matches!(e.kind, Kind::Dsc | Kind::Unknown | Kind::Source);
            if e.status == Status::Accepted && (atomic || in_source_group) {
                e.status = Status::Rejected;
                e.reason = Some(format!(
                    "{name}: {first} cannot be stored ({why}), and the files of this {} stand or fall together",
                    if atomic { "folder" } else { "source package" }
                ));
            }
        }
        Ok(())
    }

    /// The manifest entry of an accepted file.
    fn manifest_file(&self, folder: &Folder, name: &str, e: &Entry) -> Option<ManifestFile> {
        let r = e.found.restore(name, e.kind);
        let digests = e.found.digests.clone()?;
        let (package, package_version, architecture, control) = match &r.parsed {
            Parsed::Deb(d) => (
                Some(d.binary.package.clone()),
                Some(d.binary.version.to_string()),
                Some(d.binary.architecture.clone()),
                Some(d.control.to_string()),
            ),
            Parsed::Dsc(d) => (None, None, None, Some(d.paragraph.to_string())),
            _ => (None, None, None, None),
        };
        let kind = match e.kind {
            Kind::Unknown => Kind::Source,
            k => k,
        };
        Some(ManifestFile {
            kind,
            digests,
            package,
            package_version,
            architecture,
            control,
            uploader: e.uploader.clone(),
            uploaded_at: e.seen_at.clone(),
            upload: format!("{}/{name}@{}", folder.folder, e.etag),
        })
    }

    async fn carry_out(
        &self,
        uk: &UploadKey,
        folder: &Folder,
        name: &str,
        e: &Entry,
    ) -> Result<Done> {
        let key = format!("{}/{name}", uk.folder());
        let (status, reason, journal_seq) = match e.status {
            Status::Accepted => match self.store_in_pool(uk, folder, name, e).await? {
                Some(done) => done,
                None => return Ok(Done::Gone),
            },
            s => (s, e.reason.clone(), None),
        };
        if status == Status::Rejected {
            match self
                .store
                .copy(&key, &rejected_key(&key), Some(&e.etag), false)
                .await
            {
                Ok(_) => {}
                Err(StoreError::NotFound { .. } | StoreError::PreconditionFailed { .. }) => {
                    return Ok(Done::Gone)
                }
                Err(err) => return Err(err.into()),
            }
        }
        let mut entry = e.clone();
        entry.status = status;
        entry.reason = reason.clone();
        entry.journal_seq = journal_seq;
        self.file_report(uk, folder, name, &entry)
            .write(self.store.as_ref())
            .await?;
        self.delete_incoming(&key, &e.etag).await?;
        tracing::info!(key = %key, bundle = ?folder.bundle, version = ?folder.version, outcome = ?status, reason = ?reason, "settled");
        Ok(Done::Final {
            status,
            reason,
            journal_seq,
        })
    }

    /// Copies an accepted file into the pool, records it in the manifest and
    /// journals the link. `None` if the incoming object is gone.
    async fn store_in_pool(
        &self,
        uk: &UploadKey,
        folder: &Folder,
        name: &str,
        e: &Entry,
    ) -> Result<Option<(Status, Option<String>, Option<u64>)>> {
        let key = format!("{}/{name}", uk.folder());
        let (Some(pool_key), Some(bundle), Some(version)) =
            (&e.pool_key, &folder.bundle, &folder.version)
        else {
            return Ok(Some((
                Status::Rejected,
                Some(format!("{name}: no bundle could be determined for it")),
                None,
            )));
        };
        let Some(mf) = self.manifest_file(folder, name, e) else {
            return Ok(Some((
                Status::Rejected,
                Some(format!("{name}: it was never measured")),
                None,
            )));
        };
        match self.store.copy(&key, pool_key, Some(&e.etag), true).await {
            Ok(_) => {}
            Err(StoreError::AlreadyExists { .. }) => {
                let there = sha256_of(self.store.as_ref(), pool_key).await?;
                if there != mf.digests.sha256 {
                    return Ok(Some((
                        Status::Rejected,
                        Some(format!(
                            "{name}: {pool_key} already holds different contents (sha256 {there}, this upload {}); published files never change",
                            mf.digests.sha256
                        )),
                        None,
                    )));
                }
            }
            Err(StoreError::NotFound { .. } | StoreError::PreconditionFailed { .. }) => {
                return Ok(None)
            }
            Err(err) => return Err(err.into()),
        }
        let dir = pool_key
            .rsplit_once('/')
            .map(|(d, _)| d)
            .unwrap_or_default();
        let pool_file = pool_name(e).unwrap_or(name);
        let added = manifest::add(
            self.store.as_ref(),
            dir,
            (bundle, version, &folder.component),
            pool_file,
            &mf,
        )
        .await?;
        let (status, reason) = match added {
            Added::Added | Added::Same { ours: true } => (Status::Accepted, None),
            Added::Same { ours: false } => (
                Status::Skipped,
                Some(format!(
                    "{name}: identical to {pool_key}, already in the pool; nothing to store"
                )),
            ),
            Added::Conflict(why) => {
                return Ok(Some((
                    Status::Rejected,
                    Some(format!("{name}: {why}")),
                    None,
                )))
            }
            // Not recorded: the purge deletes the file. The event is tried
            // again (the queue's retry, or the sweep) and stores it anew.
            Added::Purging => {
                return Err(IngestError::Io(format!(
                    "{name}: {pool_key} is being purged; the upload is tried again once the purge has ended"
                )))
            }
        };
        let change = Change {
            action: Action::Link,
            distribution: Some(uk.distribution.clone()),
            component: Some(uk.component.clone()),
            bundle: Some(bundle.clone()),
            versions: vec![version.clone()],
            packages: None,
            architectures: None,
            snapshot: None,
            policy: None,
            origin: format!("{key}@{}", e.etag),
            by: Some(e.uploader.clone()),
        };
        let appended = self
            .journal
            .append(&format!("upload:{key}@{}", e.etag), &change.to_json())
            .await?;
        Ok(Some((status, reason, Some(appended.seq))))
    }

    async fn delete_incoming(&self, key: &str, etag: &str) -> Result<()> {
        // A newer upload under the same key has its own event: leave it.
        match self.store.head(key).await {
            Ok(meta) if meta.etag == etag => match self.store.delete(key).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            },
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn file_report(&self, uk: &UploadKey, folder: &Folder, name: &str, e: &Entry) -> Report {
        let key = format!("{}/{name}", uk.folder());
        let r = e.found.restore(name, e.kind);
        let mut report = Report::new(&key, e.status);
        report.reason = e.reason.clone();
        report.warnings = e.warnings.clone();
        report.kind = Some(match e.kind {
            Kind::Unknown if e.status != Status::Rejected => Kind::Source,
            k => k,
        });
        report.bundle = folder.bundle.clone().or(r.source.clone());
        report.version = folder.version.clone().or(r.source_version.clone());
        report.component = Some(uk.component.clone());
        report.distribution = Some(uk.distribution.clone());
        report.package = r.package.clone();
        report.package_version = r.version.clone();
        report.architecture = r.architecture.clone();
        if matches!(e.status, Status::Accepted | Status::Skipped) {
            report.pool_key = e.pool_key.clone();
        }
        if e.status == Status::Rejected {
            report.rejected_key = Some(rejected_key(&key));
        }
        report.size = e.found.digests.as_ref().map(|d| d.size);
        report.sha256 = e.found.digests.as_ref().map(|d| d.sha256.clone());
        report.etag = Some(e.etag.clone());
        report.uploader = Some(e.uploader.clone());
        report.journal_seq = e.journal_seq;
        report
    }

    /// An object whose key alone makes it unacceptable (an upload outside a
    /// distribution, component and folder of this repository; a request that
    /// is not a `.json`): moved to `rejected/` and reported.
    async fn reject_stray(&self, event: &ObjectEvent, reason: String) -> Result<Outcome> {
        let key = &event.key;
        let meta = match self.store.head(key).await {
            Ok(meta) => meta,
            Err(StoreError::NotFound { .. }) => {
                return Ok(Outcome::nothing(
                    key,
                    "already handled (the object is gone)",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        match self
            .store
            .copy(key, &rejected_key(key), Some(&meta.etag), false)
            .await
        {
            Ok(_) => {}
            Err(StoreError::NotFound { .. } | StoreError::PreconditionFailed { .. }) => {
                return Ok(Outcome::nothing(
                    key,
                    "already handled (the object changed)",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        self.write_rejection(event, &meta, &reason, Some(rejected_key(key)))
            .await?;
        self.delete_incoming(key, &meta.etag).await?;
        tracing::info!(key = %key, outcome = "rejected", reason = %reason, "settled");
        Ok(Outcome {
            key: key.clone(),
            status: Some(Status::Rejected),
            reason: Some(reason),
            bundle: None,
            version: None,
            settled: vec![Settled {
                key: key.clone(),
                status: Status::Rejected,
            }],
        })
    }

    /// The scheduled sweep (DESIGN §4): rejects files still pending after
    /// the configured time, and handles objects under `incoming/` and
    /// `requests/` that no event handled (a lost notification, a handler
    /// killed half way). `now` is in milliseconds since the epoch.
    ///
    /// One object that cannot be handled never stops it: the failure is
    /// logged, listed in [`Swept::failed`] and in [`SWEEP_REPORT`], and the
    /// sweep goes on. Only a listing that fails is an error.
    pub async fn sweep(&self, now: u64) -> Result<Swept> {
        let timeout = u64::from(self.config.retention.pending_timeout_hours) * 3_600_000;
        let mut swept = Swept {
            at: rfc3339(now),
            ..Swept::default()
        };
        let young = |obj: &ObjectMeta| {
            obj.modified
                .is_some_and(|m| (now / 1000).saturating_sub(m) < self.sweep_min_age)
        };
        let mut expired = Expiring::new();
        for obj in self.store.list(INCOMING).await? {
            if young(&obj) {
                swept.young += 1;
                continue;
            }
            if let Err(e) = self
                .sweep_incoming(&obj, now, timeout, &mut swept, &mut expired)
                .await
            {
                swept.fail(&obj.key, &e);
            }
        }
        let hours = self.config.retention.pending_timeout_hours;
        for (folder_key, (uk, files)) in expired {
            if let Err(e) = self.expire(&uk, &files, hours, &mut swept).await {
                swept.fail(&folder_key, &e);
            }
        }
        for obj in self.store.list(REQUESTS).await? {
            if young(&obj) {
                swept.young += 1;
                continue;
            }
            if let Err(e) = self.sweep_request(&obj, &mut swept).await {
                swept.fail(&obj.key, &e);
            }
        }
        if let Err(e) = self.write_sweep_report(&swept).await {
            tracing::warn!(key = SWEEP_REPORT, error = %e, "the sweep's report could not be written");
        }
        Ok(swept)
    }

    async fn sweep_incoming(
        &self,
        obj: &ObjectMeta,
        now: u64,
        timeout: u64,
        swept: &mut Swept,
        expired: &mut Expiring,
    ) -> Result<()> {
        let Ok((uk, _)) = UploadKey::parse(&obj.key, &self.config) else {
            swept
                .redriven
                .push(self.handle(&self.sweep_event(&obj.key)).await?);
            return Ok(());
        };
        let (folder, _) = self.load_folder(&uk).await?;
        match folder.files.get(&uk.file) {
            Some(e) if e.etag == obj.etag && e.status == Status::Pending && !e.done => {
                let since = crate::time::parse_rfc3339(&e.seen_at).unwrap_or(0);
                if now.saturating_sub(since) >= timeout {
                    expired
                        .entry(uk.folder())
                        .or_insert_with(|| (uk.clone(), Vec::new()))
                        .1
                        .push((uk.file.clone(), e.etag.clone()));
                } else {
                    swept.waiting += 1;
                }
            }
            Some(e) if e.etag == obj.etag && e.done => {
                // Settled (in the pool or rejected/, reported); only the
                // delete was lost.
                self.delete_incoming(&obj.key, &obj.etag).await?;
                swept.redriven.push(Outcome::nothing(
                    &obj.key,
                    "settled earlier; removed from incoming/",
                ));
            }
            None if self.rejected_in_place(obj).await? => {}
            _ => swept
                .redriven
                .push(self.handle(&self.sweep_event(&obj.key)).await?),
        }
        Ok(())
    }

    /// Whether `obj` was rejected as it is and left in place (unreadable):
    /// its report answers it until someone replaces or deletes it.
    async fn rejected_in_place(&self, obj: &ObjectMeta) -> Result<bool> {
        Ok(Report::read(self.store.as_ref(), &obj.key)
            .await?
            .is_some_and(|r| {
                r.status == Some(Status::Rejected)
                    && r.rejected_key.is_none()
                    && r.etag.as_deref() == Some(obj.etag.as_str())
            }))
    }

    /// Rejects the files of one folder that waited too long.
    async fn expire(
        &self,
        uk: &UploadKey,
        files: &[(String, String)],
        hours: u32,
        swept: &mut Swept,
    ) -> Result<()> {
        let (folder, ()) = self
            .update_folder(uk, |f| {
                for (name, etag) in files {
                    if let Some(e) = f.files.get_mut(name) {
                        if &e.etag == etag && e.status == Status::Pending && !e.done {
                            let why = e.reason.clone().unwrap_or_else(|| "waiting".into());
                            e.status = Status::Rejected;
                            e.reason = Some(format!(
                                "still pending after {hours} hour(s) ({why}); upload the missing files and this one again"
                            ));
                        }
                    }
                }
            })
            .await?;
        let (settled, _) = self.settle(uk, folder).await?;
        swept.expired.extend(settled.into_iter().map(|s| s.key));
        Ok(())
    }

    /// Handles a request whose report does not answer this version of it.
    async fn sweep_request(&self, obj: &ObjectMeta, swept: &mut Swept) -> Result<()> {
        let answered = match Report::read(self.store.as_ref(), &obj.key).await {
            Ok(Some(r)) => r.etag.as_deref() == Some(obj.etag.as_str()),
            Ok(None) => false,
            // A report too large or not raptr's: answer the request again.
            Err(StoreError::TooLarge { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !answered {
            swept
                .redriven
                .push(self.handle(&self.sweep_event(&obj.key)).await?);
        }
        Ok(())
    }

    async fn write_sweep_report(&self, swept: &Swept) -> Result<()> {
        let body = serde_json::to_vec_pretty(swept).map_err(|e| IngestError::Io(e.to_string()))?;
        let opts = PutOptions {
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        self.store
            .put(SWEEP_REPORT, Bytes::from(body), opts)
            .await?;
        Ok(())
    }

    fn sweep_event(&self, key: &str) -> ObjectEvent {
        ObjectEvent {
            key: key.to_string(),
            uploader: "raptr:sweep".into(),
        }
    }

    // ----- requests/ -------------------------------------------------------

    async fn request(&self, event: &ObjectEvent) -> Result<Outcome> {
        let key = &event.key;
        if !key.ends_with(".json") {
            return self
                .reject_stray(
                    event,
                    format!("{key}: requests are JSON files: requests/<action>/…/<name>.json"),
                )
                .await;
        }
        let limit = crate::request::MAX_REQUEST as u64;
        let (body, meta) = match self.store.get_limited(key, limit).await {
            Ok((body, meta)) => (Ok(body), meta),
            Err(StoreError::TooLarge { size, .. }) => match self.store.head(key).await {
                Ok(meta) => (
                    Err(format!("{size} bytes; a request is at most {limit}")),
                    meta,
                ),
                Err(StoreError::NotFound { .. }) => {
                    return Ok(Outcome::nothing(key, "the request is gone"))
                }
                Err(e) => return Err(e.into()),
            },
            Err(StoreError::NotFound { .. }) => {
                return Ok(Outcome::nothing(key, "the request is gone"))
            }
            Err(e) => return Err(e.into()),
        };
        let mut report = Report::new(key, Status::Accepted);
        report.etag = Some(meta.etag.clone());
        report.uploader = Some(event.uploader.clone());
        let outcome = match body {
            Err(reason) => Err(reason),
            Ok(body) => {
                self.apply_request(key, &meta.etag, &body, &mut report)
                    .await?
            }
        };
        if let Err(reason) = outcome {
            report.status = Some(Status::Rejected);
            report.reason = Some(format!("{key}: {reason}"));
        }
        report.write(self.store.as_ref()).await?;
        tracing::info!(key = %key, bundle = ?report.bundle, outcome = ?report.status, reason = ?report.reason, "request");
        Ok(Outcome {
            key: key.clone(),
            status: report.status,
            reason: report.reason.clone(),
            bundle: report.bundle.clone(),
            version: report.versions.first().cloned(),
            settled: Vec::new(),
        })
    }

    /// The versions of a bundle in a component's pool, as its directories
    /// name them (without an epoch): for the reason of a request that
    /// names another.
    async fn pool_versions(&self, component: &str, bundle: &str) -> Result<Vec<String>> {
        let base = format!("pool/{component}/{}/{bundle}/", pool_prefix(bundle));
        let mut out: Vec<String> = self
            .store
            .list(&base)
            .await?
            .iter()
            .filter_map(|o| o.key[base.len()..].strip_suffix("/manifest.json"))
            .filter(|v| !v.contains('/'))
            .map(str::to_string)
            .collect();
        out.sort();
        Ok(out)
    }

    /// Checks a request against the manifests and journals it. The inner
    /// error is the reason it is rejected.
    async fn apply_request(
        &self,
        key: &str,
        etag: &str,
        body: &[u8],
        report: &mut Report,
    ) -> Result<Result<(), String>> {
        let parsed = Request::parse(body, &self.config);
        if let Ok(checked) = &parsed {
            let req = &checked.request;
            report.action = Some(req.action);
            report.dry_run = Some(req.dry_run);
            report.distribution = req.distribution.clone();
            report.component = req.component.clone();
            report.bundle = req.bundle.clone();
        }
        // The key says what the request does and where; the body must
        // agree, so that an IAM grant on the key is a grant on the deed.
        let checked = match (parsed, Place::of_key(key)) {
            (Ok(checked), Ok(place)) => match place.disagreement(&checked.request) {
                Some(why) => return Ok(Err(why)),
                None => checked,
            },
            (Ok(checked), Err(why)) => {
                let name = key.rsplit('/').next().unwrap_or(key);
                return Ok(Err(match Place::of_request(&checked.request) {
                    Some(place) => format!("{why}; this one belongs at {}{name}", place.folder()),
                    None => why,
                }));
            }
            (Err(body), Ok(_)) => return Ok(Err(body)),
            (Err(body), Err(why)) => return Ok(Err(format!("{why}; and the body: {body}"))),
        };
        let req = &checked.request;
        let mut change = Change {
            action: req.action,
            distribution: req.distribution.clone(),
            component: req.component.clone(),
            bundle: req.bundle.clone(),
            versions: Vec::new(),
            packages: req.packages.clone(),
            architectures: req.architectures.clone(),
            snapshot: req.snapshot.clone(),
            policy: (req.keep.is_some() || req.max_age_days.is_some()).then_some(
                crate::config::Policy {
                    keep: req.keep,
                    max_age_days: req.max_age_days,
                },
            ),
            origin: format!("{key}@{etag}"),
            by: report.uploader.clone(),
        };
        if let Some(target) = &checked.target {
            let manifests = match &target.versions {
                Versions::One(v) => {
                    let dir = pool_dir(&target.component, &target.bundle, v);
                    match manifest::load(self.store.as_ref(), &dir).await? {
                        Some((m, _)) if m.version == v.to_string() => vec![(dir, m)],
                        Some((m, _)) => {
                            return Ok(Err(format!(
                                "{} {v} is not in the pool; {dir} holds {} {}{}",
                                target.bundle,
                                m.bundle,
                                m.version,
                                if m.bundle == target.bundle {
                                    ": give the version as the pool has it, with its epoch"
                                } else {
                                    ""
                                }
                            )))
                        }
                        None => {
                            let versions = self
                                .pool_versions(&target.component, &target.bundle)
                                .await?;
                            let there = if versions.is_empty() {
                                format!(
                                    "no version of {} is there (a binary package's name is not a bundle: name its source package)",
                                    target.bundle
                                )
                            } else {
                                format!("the versions there are {}", versions.join(", "))
                            };
                            return Ok(Err(format!(
                                "{} {v} is not in the pool of component {}; {there}",
                                target.bundle, target.component
                            )));
                        }
                    }
                }
                Versions::All => {
                    let base = format!(
                        "pool/{}/{}/{}/",
                        target.component,
                        pool_prefix(&target.bundle),
                        target.bundle
                    );
                    let base = base.as_str();
                    let mut found = Vec::new();
                    for obj in self.store.list(base).await? {
                        let Some(dir) = obj.key.strip_suffix("/manifest.json") else {
                            continue;
                        };
                        if dir[base.len()..].contains('/') {
                            continue;
                        }
                        if let Some((m, _)) = manifest::load(self.store.as_ref(), dir).await? {
                            found.push((dir.to_string(), m));
                        }
                    }
                    if found.is_empty() {
                        return Ok(Err(format!(
                            "no version of {} is in the pool of component {} (a binary package's name is not a bundle: name its source package)",
                            target.bundle, target.component
                        )));
                    }
                    found
                }
            };
            let mut files = Vec::new();
            for (dir, m) in &manifests {
                for (name, f) in &m.files {
                    if f.selected(req.packages.as_deref(), req.architectures.as_deref()) {
                        files.push(format!("{dir}/{name}"));
                    }
                }
                change.versions.push(m.version.clone());
            }
            report.versions = change.versions.clone();
            if files.is_empty() {
                return Ok(Err(format!(
                    "no file of {} {} matches the packages and architectures given",
                    target.bundle,
                    change.versions.join(", ")
                )));
            }
            report.files = files;
        }
        if req.action.is_distribution_wide() {
            report.snapshot = req.snapshot.clone();
            if let (Some(d), Some(n)) = (&req.distribution, &req.snapshot) {
                report.suite = Some(crate::snapshot::suite_path(d, n));
            }
            let wide = match crate::plan::distribution_wide(self.store.as_ref(), &self.config, req)
                .await?
            {
                Ok(wide) => wide,
                Err(why) => return Ok(Err(why)),
            };
            if req.dry_run {
                report.reason = Some(format!("dry run: {}; nothing was changed", wide.reason));
                report.planned = wide.planned;
                report.retired = wide.retired;
                return Ok(Ok(()));
            }
        }
        if req.dry_run {
            let (planned, unchanged) = crate::plan::plan(
                self.store.as_ref(),
                req.action,
                req.distribution.as_deref(),
                &report.files,
            )
            .await?;
            report.reason = Some(dry_run_summary(req, &planned, unchanged));
            report.planned = planned;
            return Ok(Ok(()));
        }
        let body = change.to_json();
        if body.len() > raptr_store::table::MAX_CHANGE_BODY {
            return Ok(Err(format!(
                "the request names too much at once ({} bytes of change); name fewer versions",
                body.len()
            )));
        }
        let appended = self
            .journal
            .append(&format!("request:{key}@{etag}"), &body)
            .await?;
        report.journal_seq = Some(appended.seq);
        Ok(Ok(()))
    }
}

/// A dry run's reason: what the request would do, in one line.
fn dry_run_summary(req: &Request, planned: &[crate::plan::Planned], unchanged: usize) -> String {
    let count = |a: Action| planned.iter().filter(|p| p.action == a).count();
    let what = match (req.action, req.distribution.as_deref()) {
        (Action::Link, Some(d)) => format!("would link {} file(s) in {d}", count(Action::Link)),
        (Action::Unlink, Some(d)) => {
            format!("would unlink {} file(s) from {d}", count(Action::Unlink))
        }
        (Action::Remove, _) => format!(
            "would remove {} file(s) from the pool's manifest ({} link(s) undone)",
            count(Action::Remove),
            count(Action::Unlink)
        ),
        _ => "would change nothing".into(),
    };
    let same = if unchanged > 0 {
        format!(", {unchanged} already so")
    } else {
        String::new()
    };
    format!("dry run: {what}{same}, as of the last publish; nothing was changed")
}

/// The file name an entry has in the pool (a `.deb` is stored under its
/// Debian name).
fn pool_name(e: &Entry) -> Option<&str> {
    e.pool_key.as_deref().and_then(|k| k.rsplit('/').next())
}

/// Applies the folder rules to the folder's record; returns the files whose
/// status or reason changed.
/// Applies the bundle rules to a folder record: every file's status and
/// reason, from what validation found. Pure; returns the files whose status
/// or reason changed.
pub fn decide(folder: &mut Folder, dist: &Distribution) -> Vec<String> {
    let files: Vec<FileResult> = folder
        .files
        .iter()
        .map(|(n, e)| e.found.restore(n, e.kind))
        .collect();
    let identity = match (&folder.bundle, &folder.version) {
        (Some(b), Some(v)) => Version::parse(v).ok().map(|v| (b.clone(), v)),
        _ => None,
    };
    let rules = Rules {
        open: true,
        identity,
    };
    let report = apply_rules(files, &folder.component, &rules);
    let rejected_changes = report
        .files
        .iter()
        .find(|f| f.kind == Kind::Changes && f.status == Status::Rejected)
        .map(|f| (f.file.clone(), f.reason.clone().unwrap_or_default()));
    let has_changes = folder.files.values().any(|e| e.kind == Kind::Changes);
    let signed = folder
        .files
        .values()
        .any(|e| e.kind == Kind::Changes && e.found.signed_by.is_some());
    let mut changed = Vec::new();
    for f in &report.files {
        let Some(e) = folder.files.get_mut(&f.file) else {
            continue;
        };
        if e.done {
            continue;
        }
        let (mut status, mut reason) = (f.status, f.reason.clone());
        if status != Status::Rejected {
            if let Some((c, why)) = &rejected_changes {
                status = Status::Rejected;
                reason = Some(format!(
                    "{}: {c} was rejected, and it makes the folder all-or-nothing ({why})",
                    f.file
                ));
            } else if let (Some(c), false) = (&folder.awaiting_changes, has_changes) {
                status = Status::Pending;
                reason = Some(format!(
                    "{}: waiting for {c}, which makes the folder all-or-nothing, to be processed",
                    f.file
                ));
            } else if dist.upload_keyring.is_some() && !signed {
                status = Status::Pending;
                reason = Some(format!(
                    "{}: {} takes only uploads whose .changes is signed by a key of its upload keyring \
                     and lists every file; waiting for one",
                    f.file, folder.distribution
                ));
            }
        }
        let mut warnings = f.warnings.clone();
        if status == Status::Accepted {
            let ignored = match (&f.parsed, f.kind) {
                (Parsed::Deb(d), _) => {
                    let arch = &d.binary.architecture;
                    arch != "all" && !dist.architectures.contains(arch)
                }
                (_, Kind::Dsc) => !dist.architectures.iter().any(|a| a == "source"),
                _ => false,
            };
            if ignored {
                let shown = f
                    .pool_key
                    .as_deref()
                    .and_then(|k| k.rsplit('/').next())
                    .unwrap_or(&f.file);
                warnings.push(format!("Skipping ignored architecture {shown}"));
            }
            if folder.bundle.is_none() {
                folder.bundle = report.source.clone();
                folder.version = report.version.clone();
            }
        }
        if e.status != status || e.reason != reason {
            changed.push(f.file.clone());
        }
        e.status = status;
        e.reason = reason;
        e.warnings = warnings;
        e.pool_key = f.pool_key.clone();
    }
    changed
}

/// SHA-256 of a stored object, streamed.
async fn sha256_of(store: &dyn ObjectStore, key: &str) -> Result<String> {
    let (mut reader, _) = store.get_stream(key).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| IngestError::Io(format!("{key}: reading failed: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(raptr_formats::hash::hex(&hasher.finalize()))
}
