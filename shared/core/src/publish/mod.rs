//! The publisher (DESIGN §7): turns the journal into a new, signed
//! generation of the repository on the primary bucket and on every replica,
//! in an order that keeps every apt client working at every instant.
//!
//! One run, under the `publish` lease:
//!
//! 1. Read the pending journal entries and the state ([`state::State`]);
//!    apply the entries to the link state and mark the indices they touch as
//!    dirty; save the state (compare-and-swap); remove the entries from the
//!    journal. From here the state alone says what is left to do.
//! 2. Rebuild each dirty index from the previous generation's files: the
//!    segments no change falls into are copied as they are, compressed form
//!    included; the touched ones are re-rendered from their old stanzas (a
//!    pool key's stanza never changes) and the manifests of newly linked
//!    files ([`segment`]). Nothing lists the bucket or reads a package.
//! 3. Write, on the primary: by-hash copies, canonical indices, `Release`,
//!    `Release.gpg`, `InRelease` last; save the state with the new
//!    generation.
//! 4. Fan out to every replica in parallel, in the same order, pool files
//!    first; record each replica's generation in the table (fenced by the
//!    lease). A failing replica is retried, then left behind and reported.
//! 5. Update the reports of the objects the generation carries; delete
//!    superseded by-hash objects past the grace period; carry out purge and
//!    verify requests.
//!
//! The lease is released at the end; if someone asked for a run meanwhile,
//! the whole cycle runs again first.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use raptr_formats::layout::pool_dir;
use raptr_formats::version::Version;
use raptr_store::table::{Backoff, Lease, Release, Table, TableError};
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::Serialize;

use crate::change::Change;
use crate::config::Config;
use crate::manifest::{self, Manifest};
use crate::progress::{self, Progress};
use crate::report::Report;
use crate::request::Action;
use crate::signing::{Signer, SigningError};

pub mod fence;
pub mod index;
pub mod links;
pub mod release;
pub mod retention;
pub mod segment;
mod snapshots;
pub mod state;
pub mod verify;
pub mod xz;

use fence::{Fence, FencedStore, Keeper};
use index::ReleaseFields;
use links::Links;
use state::{split_triple, triple, Generation, Identity, State};

/// The lease every publisher takes.
pub const LEASE: &str = "publish";

/// The most journal entries one generation takes; more make more generations.
pub const BATCH: usize = 5000;

/// Cache-Control of mutable objects (`dists/<dist>/...` canonical paths).
pub const CACHE_MUTABLE: &str = "public, max-age=60";
/// Cache-Control of objects that never change (pool, by-hash, keys).
pub const CACHE_IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The public key's two forms, in every bucket.
pub const KEY_ASC: &str = "keys/repo.asc";
pub const KEY_GPG: &str = "keys/repo.gpg";

/// `keys/<40 or 64 hex digits>.asc|.gpg`: one key's own file, which the
/// publisher owns.
fn is_key_file(key: &str) -> bool {
    let Some(name) = key.strip_prefix("keys/") else {
        return false;
    };
    let Some(stem) = name
        .strip_suffix(".asc")
        .or_else(|| name.strip_suffix(".gpg"))
    else {
        return false;
    };
    matches!(stem.len(), 40 | 64) && stem.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A publish that could not go on.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// Something the configuration or the data must fix first.
    #[error("{0}")]
    Refused(String),
    /// Another publisher wrote a newer signing: this run (which lost its
    /// lease) must write nothing more.
    #[error("{0}")]
    Overtaken(String),
}

impl PublishError {
    /// Whether trying again later may succeed without anyone fixing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            PublishError::Store(e) => {
                e.is_transient() || matches!(e, StoreError::PreconditionFailed { .. })
            }
            PublishError::Table(e) => e.is_transient() || matches!(e, TableError::LeaseLost { .. }),
            PublishError::Overtaken(_) => true,
            _ => false,
        }
    }
}

pub type Result<T, E = PublishError> = std::result::Result<T, E>;

/// A replica: where it is, and which distributions its layout serves.
#[derive(Debug, Clone)]
pub struct Replica {
    pub name: String,
    pub store: Arc<dyn ObjectStore>,
    pub distributions: BTreeSet<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// `false` when another publisher held the lease: it was asked to run
    /// again, and will.
    pub ran: bool,
    /// The generation the primary serves now.
    pub generation: u64,
    /// Generations made by this run.
    pub generations: Vec<u64>,
    /// Journal entries applied.
    pub changes: usize,
    /// Index files written (by generation, on the primary).
    pub indices: usize,
    /// Each replica's generation after the run, or why it lags.
    pub replicas: BTreeMap<String, ReplicaState>,
    /// Superseded by-hash objects deleted.
    pub expired: usize,
    /// Pool files purged (or that a dry run would purge).
    pub purged: Vec<String>,
    /// What verification found and repaired.
    pub verified: Vec<verify::Finding>,
    /// A verify pass this run left unfinished (its slice was spent): the
    /// units checked so far; the next run goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_pending: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplicaState {
    pub generation: u64,
    /// Set when the replica could not be brought up to date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A run's lease and the state it last saved.
struct Held {
    lease: Lease,
    /// Renews the lease while the run holds it.
    keeper: Option<Keeper>,
    state: State,
    etag: Option<String>,
}

/// Where indices are staged on the primary while they are written, under
/// the lease's token (a publisher that lost its lease cannot overwrite what
/// the next one stages); never copied to replicas.
const STAGING: &str = "state/staging/";

fn options(content_type: &str, cache: &str) -> PutOptions {
    PutOptions {
        content_type: Some(content_type.into()),
        cache_control: Some(cache.into()),
        ..PutOptions::default()
    }
}

/// Writes one object; the failure names the target.
async fn put(
    store: &dyn ObjectStore,
    key: &str,
    body: Bytes,
    content_type: &str,
    cache: &str,
) -> Result<(), StoreError> {
    store
        .put(key, body, options(content_type, cache))
        .await
        .map(|_| ())
}

fn content_type(path: &str) -> &'static str {
    if path.ends_with(".gz") {
        "application/gzip"
    } else if path.ends_with(".xz") {
        "application/x-xz"
    } else if path.ends_with(".gpg") {
        "application/pgp-signature"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// The previous generation of an index, as [`Publisher::previous`] finds it.
#[derive(Debug)]
struct Prior {
    raw_key: String,
    gz_key: String,
    xz_key: Option<String>,
    segments: Vec<segment::Segment>,
}

/// The publisher, over the primary bucket, the table and the replicas.
#[derive(Debug)]
pub struct Publisher {
    store: Arc<dyn ObjectStore>,
    table: Arc<dyn Table>,
    config: Config,
    signer: Arc<Signer>,
    replicas: Vec<Replica>,
    owner: String,
    /// How long the lease lasts between renewals.
    pub lease_ttl: Duration,
    /// Attempts per replica per run before it is left behind.
    pub replica_attempts: u32,
    /// The clock, in milliseconds (tests move it).
    pub now: fn() -> u64,
    /// Uncompressed bytes per index segment (see [`segment`]).
    pub segment_target: usize,
    /// Where long work says how far it is (none: it does not).
    pub progress: Option<Arc<Progress>>,
    /// How long one run spends on a verify request (or a verify invoked
    /// with a slice) before it leaves the rest to the next run.
    pub verify_slice: Duration,
    /// Open while this publisher holds the lease: every write to the
    /// primary and the replicas passes it ([`fence`]).
    fence: Arc<Fence>,
}

impl Publisher {
    /// `owner` names this invocation in the lease (unique per process).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        table: Arc<dyn Table>,
        config: Config,
        signer: Arc<Signer>,
        replicas: Vec<Replica>,
        owner: impl Into<String>,
    ) -> Publisher {
        let fence = Arc::new(Fence::default());
        let store = FencedStore::wrap(store, fence.clone());
        let replicas = replicas
            .into_iter()
            .map(|r| Replica {
                store: FencedStore::wrap(r.store, fence.clone()),
                ..r
            })
            .collect();
        Publisher {
            store,
            table,
            config,
            signer,
            replicas,
            fence,
            owner: owner.into(),
            lease_ttl: Duration::from_secs(300),
            replica_attempts: 3,
            now: crate::time::now_ms,
            segment_target: segment::TARGET,
            progress: None,
            verify_slice: Duration::from_secs(120),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Publishes everything pending. Returns `ran: false` without waiting
    /// when another publisher holds the lease (it will run again for us).
    pub async fn run(&self) -> Result<Summary> {
        let mut summary = Summary::default();
        let taken = tokio::time::Instant::now();
        let Some(lease) = self
            .table
            .acquire_or_mark(LEASE, &self.owner, self.lease_ttl)
            .await?
        else {
            return Ok(summary);
        };
        summary.ran = true;
        let mut held = self.start(lease, taken).await?;
        loop {
            if let Err(e) = self.cycle(&mut held, &mut summary).await {
                // Give the lease back so that the next attempt need not wait
                // for it to expire; whatever is half done, the state records.
                let e = self.explain(e);
                let _ = self.give_back(&mut held).await;
                return Err(e);
            }
            match self.give_back(&mut held).await? {
                Release::Released => break,
                Release::Rerun => {
                    // Still held: keep it, and start from the saved state.
                    self.fence.hold(tokio::time::Instant::now(), self.lease_ttl);
                    held.keeper = Some(self.keeper(&held.lease));
                    let (state, etag) = State::load(self.store.as_ref()).await?;
                    held.state = state;
                    held.etag = etag;
                }
            }
        }
        summary.generation = held.state.generation;
        Ok(summary)
    }

    /// Opens the fence for a lease taken at `taken`, starts renewing it,
    /// and reads the state.
    async fn start(&self, lease: Lease, taken: tokio::time::Instant) -> Result<Held> {
        self.fence.hold(taken, self.lease_ttl);
        let keeper = Some(self.keeper(&lease));
        let mut held = Held {
            lease,
            keeper,
            state: State::default(),
            etag: None,
        };
        match State::load(self.store.as_ref()).await {
            Ok((state, etag)) => {
                held.state = state;
                held.etag = etag;
                Ok(held)
            }
            Err(e) => {
                let _ = self.give_back(&mut held).await;
                Err(e.into())
            }
        }
    }

    fn keeper(&self, lease: &Lease) -> Keeper {
        Keeper::start(
            self.table.clone(),
            lease,
            self.lease_ttl,
            self.fence.clone(),
        )
    }

    /// Stops renewing, closes the fence and gives the lease back.
    async fn give_back(&self, held: &mut Held) -> Result<Release> {
        if let Some(k) = held.keeper.take() {
            k.stop().await;
        }
        self.fence.close();
        Ok(self.table.release(&mut held.lease).await?)
    }

    /// A failure that the lease's loss explains is reported as that loss.
    fn explain(&self, e: PublishError) -> PublishError {
        match (&e, self.fence.lapsed()) {
            (PublishError::Store(_), Some(why)) => PublishError::Table(TableError::LeaseLost {
                name: format!("{LEASE} ({why})"),
            }),
            _ => e,
        }
    }

    /// Takes the lease, waiting up to `wait` for it (purge, verify).
    async fn hold(&self, wait: Duration) -> Result<Held> {
        let taken = tokio::time::Instant::now();
        let lease = self
            .table
            .acquire(LEASE, &self.owner, self.lease_ttl, wait)
            .await?
            .ok_or_else(|| {
                PublishError::Refused(format!(
                    "another publisher has held the lease for more than {}s; try again later",
                    wait.as_secs()
                ))
            })?;
        self.start(lease, taken).await
    }

    async fn save(&self, held: &mut Held) -> Result<()> {
        held.etag = Some(
            held.state
                .save(self.store.as_ref(), held.etag.as_deref())
                .await?,
        );
        Ok(())
    }

    async fn cycle(&self, held: &mut Held, summary: &mut Summary) -> Result<()> {
        self.check_identity(&held.state)?;
        self.refresh_due(&mut held.state);
        self.drop_removed(held).await?;
        if held.state.next.is_some() {
            // A generation a run died building is finished as it was
            // before anything else is applied: a snapshot it carries must
            // freeze the links it froze, not later ones.
            let seqs = held.state.applied.clone();
            if !seqs.is_empty() {
                self.table.mark_done(&held.lease, &seqs).await?;
            }
            self.write_generation(held, summary, &segment::Manifests::new())
                .await?;
        }
        loop {
            let pending = self.table.pending(BATCH).await?;
            let (applied, manifests, consumed) = self.apply_all(held, &pending, summary).await?;
            // A snapshot ends its batch: the rest waits for the next one.
            let more = pending.len() == BATCH || consumed < pending.len();
            if applied
                || !held.state.dirty.is_empty()
                || held.state.next.is_some()
                || held.state.identity.is_empty()
            {
                self.save(held).await?;
                let seqs: Vec<u64> = pending[..consumed].iter().map(|c| c.seq).collect();
                if !seqs.is_empty() {
                    self.table.mark_done(&held.lease, &seqs).await?;
                }
                self.drop_removed(held).await?;
                self.write_generation(held, summary, &manifests).await?;
            }
            if !more {
                break;
            }
        }
        // After the journal: a scheduled snapshot freezes what it brought.
        self.scheduled(held, summary).await?;
        self.fan_out(held, summary).await?;
        self.report(held).await?;
        self.expire(held, summary).await?;
        if !held.state.purge_requests.is_empty() {
            let found = self.purge_held(held, false).await?;
            let origins = std::mem::take(&mut held.state.purge_requests);
            self.save(held).await?;
            self.answer(&origins, "purge", &found).await?;
            summary.purged.extend(found);
        }
        if !held.state.verify_requests.is_empty() {
            let budget = verify::Budget::new(Some(self.verify_slice));
            let pass = match verify::run(self, held, false, budget).await {
                Ok(pass) => pass,
                Err(e) => {
                    // Where it got to is kept for the next run.
                    let _ = self.save(held).await;
                    return Err(e);
                }
            };
            if pass.complete {
                let origins = std::mem::take(&mut held.state.verify_requests);
                self.save(held).await?;
                let mut lines: Vec<String> = pass.findings.iter().map(|f| f.to_string()).collect();
                if pass.omitted > 0 {
                    lines.push(format!("… and {} more finding(s)", pass.omitted));
                }
                self.answer(&origins, "verify", &lines).await?;
                summary.verified.extend(pass.findings);
            } else {
                self.save(held).await?;
                summary.verify_pending = Some(pass.checked);
            }
        }
        Ok(())
    }

    /// Drops from the manifests the entries saved states list as removed
    /// (see [`State::removed`]).
    async fn drop_removed(&self, held: &mut Held) -> Result<()> {
        if held.state.removed.is_empty() {
            return Ok(());
        }
        for (dir, names) in &held.state.removed {
            let names: Vec<String> = names.iter().cloned().collect();
            manifest::drop_files(self.store.as_ref(), dir, &names).await?;
        }
        held.state.removed.clear();
        self.save(held).await
    }

    /// What a distribution's Release is made from in the configuration now
    /// (see [`State::release_inputs`]).
    fn release_inputs(&self, dist: &str) -> Option<String> {
        let d = self.config.primary_layout().distributions.get(dist)?;
        // The keys that sign: adding or removing one signs every
        // distribution again.
        let keys: Vec<&str> = self
            .signer
            .keys()
            .iter()
            .map(|k| k.info.signing_fingerprint.as_str())
            .collect();
        serde_json::to_string(&(d, &self.config.release, keys)).ok()
    }

    /// A published distribution is signed again (published anew, indices
    /// unchanged) when its configuration changed since its last Release
    /// (a Description, a `valid_for_days`, an architecture or component
    /// taken out), and, with Valid-Until, when its Release is past half its
    /// validity, so that the scheduled run keeps clients from ever seeing
    /// it expire.
    fn refresh_due(&self, state: &mut State) {
        for (dist, d) in &self.config.primary_layout().distributions {
            if !state.released.contains_key(dist) {
                continue;
            }
            if state.release_inputs.get(dist) != self.release_inputs(dist).as_ref() {
                if let (Some(c), Some(a)) = (d.components.first(), d.architectures.first()) {
                    state.dirty.insert(triple(dist, c, a));
                }
            }
        }
        let Some(days) = self.config.release.valid_for_days else {
            return;
        };
        let half = u64::from(days) * 86_400_000 / 2;
        let now = (self.now)();
        for (dist, d) in &self.config.primary_layout().distributions {
            let Some(signed) = state.released.get(dist) else {
                continue;
            };
            if now.saturating_sub(*signed) >= half {
                if let (Some(c), Some(a)) = (d.components.first(), d.architectures.first()) {
                    state.dirty.insert(triple(dist, c, a));
                }
            }
        }
    }

    /// A distribution's Release identity as the configuration has it now.
    fn identity_of(&self, dist: &str) -> Option<Identity> {
        let d = self.config.primary_layout().distributions.get(dist)?;
        Some(Identity {
            origin: self.config.release.origin.clone(),
            label: self.config.release.label.clone(),
            suite: d.suite.clone().unwrap_or_else(|| dist.to_string()),
            codename: d.codename.clone().unwrap_or_else(|| dist.to_string()),
        })
    }

    /// Refuses to publish when a published distribution's identity changed.
    fn check_identity(&self, state: &State) -> Result<()> {
        for (dist, published) in &state.identity {
            let Some(now) = self.identity_of(dist) else {
                continue;
            };
            for (field, was, is) in [
                ("Origin", &published.origin, &now.origin),
                ("Label", &published.label, &now.label),
                ("Suite", &published.suite, &now.suite),
                ("Codename", &published.codename, &now.codename),
            ] {
                if was != is {
                    return Err(PublishError::Refused(format!(
                        "distribution {dist}: the configuration changes its {field} from {was:?} to {is:?}; \
                         a published distribution keeps its identity (apt would refuse the change), \
                         so nothing was published. Restore {field} {was:?} or publish under a new distribution"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Snapshots the schedule asks for now, and snapshots whose Release is
    /// due to be signed again: published in a generation of their own,
    /// after the journal's changes.
    async fn scheduled(&self, held: &mut Held, summary: &mut Summary) -> Result<()> {
        let now = (self.now)();
        let state = &mut held.state;
        if state.next.is_some() || !state.dirty.is_empty() {
            return Ok(());
        }
        let due = self.schedule_due(state, now);
        let resign = self.snapshots_due(state, now);
        if due.is_empty() && resign.is_empty() {
            return Ok(());
        }
        let mut next = state.history_next();
        for (dist, name, old) in due {
            let change = |action, name: String| Change {
                action,
                distribution: Some(dist.clone()),
                component: None,
                bundle: None,
                versions: Vec::new(),
                packages: None,
                architectures: None,
                snapshot: Some(name),
                policy: None,
                origin: "schedule".into(),
                by: Some("schedule".into()),
            };
            tracing::info!(dist, name, "scheduled snapshot");
            self.take_snapshot(
                state,
                &mut next,
                &change(Action::Snapshot, name.clone()),
                now,
            )
            .await?;
            for o in old {
                tracing::info!(
                    dist,
                    name = o,
                    "scheduled snapshot past the schedule's keep"
                );
                self.delete_snapshot(state, &change(Action::DeleteSnapshot, o), now)
                    .await?;
            }
        }
        next.snapshots.extend(resign);
        state.next = Some(next);
        self.save(held).await?;
        self.write_generation(held, summary, &segment::Manifests::new())
            .await
    }

    /// Applies journal entries to the link state. Returns whether anything
    /// was applied, the manifests it read (the rebuild needs them too), and
    /// how many of the entries it went through (a snapshot ends the batch).
    async fn apply_all(
        &self,
        held: &mut Held,
        pending: &[raptr_store::table::Change],
        summary: &mut Summary,
    ) -> Result<(bool, segment::Manifests, usize)> {
        let state = &mut held.state;
        // Indices the layout has that are not published yet, or whose
        // segments are unknown (an older state, or an architecture that left
        // the layout and came back), or that lack the `.xz` the layout now
        // asks for: they are built whole.
        let mut in_layout: BTreeSet<(String, String)> = BTreeSet::new();
        let now = (self.now)();
        for (dist, d) in &self.config.primary_layout().distributions {
            for comp in &d.components {
                for arch in &d.architectures {
                    let path = format!(
                        "{}/{}",
                        index::index_dir(comp, arch),
                        index::index_name(arch)
                    );
                    let published = state
                        .indices
                        .get(dist)
                        .is_some_and(|i| i.contains_key(&path));
                    let segmented = state
                        .segments
                        .get(dist)
                        .is_some_and(|i| i.contains_key(&path));
                    let xz_path = format!("{path}.xz");
                    let has_xz = state
                        .indices
                        .get(dist)
                        .is_some_and(|i| i.contains_key(&xz_path));
                    if !published || !segmented || (d.xz && !has_xz) {
                        state.dirty.insert(triple(dist, comp, arch));
                    }
                    in_layout.insert((dist.clone(), path));
                }
            }
        }
        // An index file the layout no longer asks for (its architecture or
        // component taken out, or a `.xz` turned off) leaves the Release at
        // once (the distribution is signed again: `refresh_due`) and goes,
        // canonical path and by-hash, once the grace period is over. A
        // distribution that left the layout altogether is left as it was
        // published.
        for (dist, sums) in state.indices.iter_mut() {
            let Some(d) = self.config.primary_layout().distributions.get(dist) else {
                continue;
            };
            let wanted = |p: &str| {
                let (base, xz) = match p.strip_suffix(".xz") {
                    Some(base) => (base, true),
                    None => (p.strip_suffix(".gz").unwrap_or(p), false),
                };
                (d.xz || !xz) && in_layout.contains(&(dist.clone(), base.to_string()))
            };
            let gone: Vec<String> = sums.keys().filter(|p| !wanted(p)).cloned().collect();
            for p in &gone {
                if let Some(old) = sums.remove(p) {
                    let by_hash = index::by_hash_path(p, &old.sha256);
                    for key in [by_hash, p.clone()] {
                        state.superseded.insert(format!("dists/{dist}/{key}"), now);
                    }
                }
            }
        }
        // An index outside the layout records no changes, so its segments
        // would go stale: forget them.
        for (dist, paths) in state.segments.iter_mut() {
            paths.retain(|path, _| in_layout.contains(&(dist.clone(), path.clone())));
        }
        let mut manifests = segment::Manifests::new();
        let mut next = state.history_next();
        let mut any = false;
        let mut consumed = 0;
        for entry in pending {
            consumed += 1;
            if state.applied.contains(&entry.seq) {
                continue;
            }
            let change: Change = serde_json::from_str(&entry.body).map_err(|e| {
                PublishError::Refused(format!(
                    "journal entry {} ({}): not a raptr change: {e}",
                    entry.seq, entry.id
                ))
            })?;
            self.apply(state, &mut next, &change, &mut manifests)
                .await?;
            next.origins.push(change.origin.clone());
            state.applied.push(entry.seq);
            summary.changes += 1;
            any = true;
            if change.action == Action::Snapshot {
                break;
            }
        }
        if any || !state.dirty.is_empty() {
            state.next = Some(next);
        }
        Ok((any, manifests, consumed))
    }

    async fn manifest<'m>(
        &self,
        cache: &'m mut segment::Manifests,
        dir: &str,
    ) -> Result<Option<&'m Manifest>> {
        if !cache.contains_key(dir) {
            let m = manifest::load(self.store.as_ref(), dir)
                .await?
                .map(|(m, _)| m);
            cache.insert(dir.to_string(), m);
        }
        Ok(cache.get(dir).and_then(Option::as_ref))
    }

    /// Marks the indices that list `dir/name` as dirty, recording that it
    /// was linked or unlinked.
    fn mark_dirty(&self, state: &mut State, dist: &str, dir: &str, name: &str, linked: bool) {
        let Some(d) = self.config.primary_layout().distributions.get(dist) else {
            return;
        };
        let Some(comp) = dir.split('/').nth(1) else {
            return;
        };
        for arch in &d.architectures {
            if index::belongs(name, arch) {
                let t = triple(dist, comp, arch);
                state
                    .delta
                    .entry(t.clone())
                    .or_default()
                    .record((dir.to_string(), name.to_string()), linked);
                state.dirty.insert(t);
            }
        }
    }

    async fn apply(
        &self,
        state: &mut State,
        next: &mut Generation,
        change: &Change,
        manifests: &mut HashMap<String, Option<Manifest>>,
    ) -> Result<()> {
        let now = (self.now)();
        let store = self.store.as_ref();
        let dirs = || -> Vec<(String, String)> {
            let (Some(comp), Some(bundle)) = (&change.component, &change.bundle) else {
                return Vec::new();
            };
            change
                .versions
                .iter()
                .filter_map(|v| {
                    let parsed = Version::parse(v).ok()?;
                    Some((pool_dir(comp, bundle, &parsed), v.clone()))
                })
                .collect()
        };
        let packages = change.packages.as_deref();
        let arches = change.architectures.as_deref();
        let filtered = packages.is_some() || arches.is_some();
        match change.action {
            Action::Link => {
                let Some(dist) = &change.distribution else {
                    return Ok(());
                };
                for (dir, version) in dirs() {
                    let Some(m) = self.manifest(manifests, &dir).await? else {
                        tracing::warn!(dir, "link: the bundle version has no manifest any more");
                        continue;
                    };
                    if m.version != version {
                        continue;
                    }
                    let names: Vec<String> = m
                        .files
                        .iter()
                        .filter(|(_, f)| f.selected(packages, arches))
                        .map(|(n, _)| n.clone())
                        .collect();
                    for name in names {
                        let added = state.links.insert(store, dist, &dir, &name).await?;
                        let key = format!("{dir}/{name}");
                        state.unreferenced.remove(&key);
                        if added {
                            next.pool.entry(dist.clone()).or_default().insert(key);
                            self.mark_dirty(state, dist, &dir, &name, true);
                        }
                    }
                }
                let bundles: Vec<String> = dirs()
                    .iter()
                    .filter_map(|(d, _)| crate::retain::bundle_prefix(d).map(str::to_string))
                    .collect();
                self.retain(state, change, dist, Some(&bundles), manifests, now)
                    .await?;
            }
            Action::Unlink | Action::Remove => {
                let dists: Vec<String> = match (&change.action, &change.distribution) {
                    (Action::Unlink, Some(d)) => vec![d.clone()],
                    (Action::Unlink, None) => return Ok(()),
                    _ => state.links.dists().into_iter().collect(),
                };
                for (dir, _) in dirs() {
                    let selected: Option<Vec<String>> = if filtered {
                        self.manifest(manifests, &dir).await?.map(|m| {
                            m.files
                                .iter()
                                .filter(|(_, f)| f.selected(packages, arches))
                                .map(|(n, _)| n.clone())
                                .collect()
                        })
                    } else {
                        None
                    };
                    for dist in &dists {
                        let gone = state
                            .links
                            .remove(store, dist, &dir, |n| {
                                selected.as_ref().is_none_or(|s| s.iter().any(|x| x == n))
                            })
                            .await?;
                        for name in &gone {
                            self.mark_dirty(state, dist, &dir, name, false);
                            let key = format!("{dir}/{name}");
                            if !self.referenced(state, &key).await? {
                                state.unreferenced.entry(key).or_insert(now);
                            }
                        }
                    }
                    if change.action == Action::Remove {
                        let names: Vec<String> = match &selected {
                            Some(s) => s.clone(),
                            None => self
                                .manifest(manifests, &dir)
                                .await?
                                .map(|m| m.files.keys().cloned().collect())
                                .unwrap_or_default(),
                        };
                        let mut dropped = Vec::new();
                        for name in &names {
                            let key = format!("{dir}/{name}");
                            if !self.referenced(state, &key).await? {
                                state.unreferenced.entry(key.clone()).or_insert(now);
                            }
                            // A snapshot still serves it: its manifest
                            // entry stays while a snapshot lists it (a
                            // restore renders its stanza from it).
                            if !state.frozen.is_linked(store, &key).await? {
                                dropped.push(name.clone());
                            }
                        }
                        // Dropped from the manifest once this state is
                        // saved; later entries of this run already see it.
                        if let Some(Some(m)) = manifests.get_mut(&dir) {
                            m.files.retain(|n, _| !dropped.contains(n));
                        }
                        state
                            .removed
                            .entry(dir.clone())
                            .or_default()
                            .extend(dropped);
                    }
                }
            }
            Action::Purge => state.purge_requests.push(change.origin.clone()),
            Action::Verify => state.verify_requests.push(change.origin.clone()),
            Action::Snapshot => self.take_snapshot(state, next, change, now).await?,
            Action::DeleteSnapshot => self.delete_snapshot(state, change, now).await?,
            Action::Restore => self.restore(state, next, change, now).await?,
            Action::Retain => {
                if let Some(dist) = &change.distribution {
                    self.retain(state, change, dist, None, manifests, now)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// Builds the dirty indices and writes the new generation on the primary.
    async fn write_generation(
        &self,
        held: &mut Held,
        summary: &mut Summary,
        manifests: &segment::Manifests,
    ) -> Result<()> {
        let now = (self.now)();
        let staging = format!("{STAGING}{}/", held.lease.token);
        self.clear_staging(&staging).await?;
        let state = &mut held.state;
        let mut next = state.next.take().unwrap_or_else(|| state.history_next());
        tracing::info!(generation = next.generation, "building generation");
        // (distribution, index path, staging key) of each index file written.
        let mut written: Vec<(String, String, String)> = Vec::new();
        let mut staged: Vec<String> = Vec::new();
        let mut dists: BTreeSet<String> = next.pool.keys().cloned().collect();
        for t in std::mem::take(&mut state.dirty) {
            let Some((dist, comp, arch)) = split_triple(&t) else {
                continue;
            };
            let Some(d) = self.config.primary_layout().distributions.get(dist) else {
                continue;
            };
            if !d.components.iter().any(|c| c == comp) || !d.architectures.iter().any(|a| a == arch)
            {
                continue;
            }
            dists.insert(dist.to_string());
            let path = format!(
                "{}/{}",
                index::index_dir(comp, arch),
                index::index_name(arch)
            );
            let gz_path = format!("{path}.gz");
            let xz_path = d.xz.then(|| format!("{path}.xz"));
            let delta = state.delta.remove(&t).unwrap_or_default();
            let previous = self.previous(state, dist, &path, d.xz).await?;
            if previous.is_some() && delta.is_empty() {
                // Nothing in it changed (a Release signed again).
                continue;
            }
            let stage = |p: &str| format!("{staging}{dist}/{p}");
            let (raw_stage, gz_stage) = (stage(&path), stage(&gz_path));
            let xz_stage = xz_path.as_deref().map(stage);
            let job = segment::Job {
                store: &self.store,
                target: self.segment_target,
                staging: segment::Staging {
                    raw: &raw_stage,
                    gz: &gz_stage,
                    xz: xz_stage.as_deref(),
                },
                dist,
                path: &path,
                known: manifests,
                progress: self.progress.as_deref(),
            };
            let built = match &previous {
                Some(p) => {
                    let prev = segment::Previous {
                        raw_key: &p.raw_key,
                        gz_key: &p.gz_key,
                        xz_key: p.xz_key.as_deref(),
                        segments: &p.segments,
                    };
                    segment::incremental(job, arch, prev, &delta).await?
                }
                None => {
                    state.links.load_dist(self.store.as_ref(), dist).await?;
                    let prefix = format!("pool/{comp}/");
                    let desired: Vec<(&String, &String)> = state
                        .links
                        .get(dist)
                        .into_iter()
                        .flat_map(|links| links.range(prefix.clone()..))
                        .take_while(|(dir, _)| dir.starts_with(&prefix))
                        .flat_map(|(dir, names)| {
                            names
                                .iter()
                                .filter(|n| index::belongs(n, arch))
                                .map(move |n| (dir, n))
                        })
                        .collect();
                    segment::full(job, &desired).await?
                }
            };
            state
                .segments
                .entry(dist.to_string())
                .or_default()
                .insert(path.clone(), built.segments);
            let mut files = vec![(path, built.raw, raw_stage), (gz_path, built.gz, gz_stage)];
            if let (Some(p), Some(sum), Some(from)) = (xz_path, built.xz, xz_stage) {
                files.push((p, sum, from));
            }
            staged.extend(files.iter().map(|(_, _, from)| from.clone()));
            for (p, sum, from) in files {
                let sums = state.indices.entry(dist.to_string()).or_default();
                if let Some(prev) = sums.get(&p) {
                    if prev == &sum {
                        continue;
                    }
                    let old_key = format!("dists/{dist}/{}", index::by_hash_path(&p, &prev.sha256));
                    state.superseded.insert(old_key, now);
                }
                sums.insert(p.clone(), sum);
                next.indices
                    .entry(dist.to_string())
                    .or_default()
                    .insert(p.clone());
                written.push((dist.to_string(), p, from));
            }
        }
        state.delta.clear();
        // By-hash copies first, then the canonical paths.
        for (dist, p, from) in &written {
            let sha = &state.indices[dist][p].sha256;
            let key = format!("dists/{dist}/{}", index::by_hash_path(p, sha));
            state.superseded.remove(&key);
            self.store
                .copy_as(from, &key, options(content_type(p), CACHE_IMMUTABLE))
                .await?;
        }
        for (dist, p, from) in &written {
            let key = format!("dists/{dist}/{p}");
            state.superseded.remove(&key);
            self.store
                .copy_as(from, &key, options(content_type(p), CACHE_MUTABLE))
                .await?;
        }
        self.store.delete_many(&staged).await?;
        summary.indices += written.len();
        self.write_keys(self.store.as_ref()).await?;
        for dist in &dists {
            let Some(identity) = self.identity_of(dist) else {
                continue;
            };
            self.write_release(state, dist, now).await?;
            state.identity.entry(dist.clone()).or_insert(identity);
            state.released.insert(dist.clone(), now);
            if let Some(inputs) = self.release_inputs(dist) {
                state.release_inputs.insert(dist.clone(), inputs);
            }
            next.released.insert(dist.clone());
        }
        self.publish_snapshots(state, &next, now).await?;
        next.published_at = crate::time::rfc3339(now);
        state.generation = next.generation;
        summary.generations.push(next.generation);
        state.history.push(next);
        if state.history.len() > state::HISTORY {
            let extra = state.history.len() - state::HISTORY;
            state.history.drain(..extra);
        }
        state.applied.clear();
        self.save(held).await
    }

    /// The previous generation of an index (`path`, uncompressed), when
    /// the state knows its segments and its by-hash files are in place
    /// (the `.xz` too when `xz`): their keys and the segments. Otherwise
    /// the index is built from scratch.
    async fn previous(
        &self,
        state: &State,
        dist: &str,
        path: &str,
        xz: bool,
    ) -> Result<Option<Prior>> {
        let sums = state.indices.get(dist);
        let gz_path = format!("{path}.gz");
        let xz_path = format!("{path}.xz");
        let (Some(raw), Some(gz), Some(segments)) = (
            sums.and_then(|s| s.get(path)),
            sums.and_then(|s| s.get(&gz_path)),
            state.segments.get(dist).and_then(|m| m.get(path)),
        ) else {
            return Ok(None);
        };
        let xz_sum = sums.and_then(|s| s.get(&xz_path));
        if xz && xz_sum.is_none() {
            return Ok(None);
        }
        let raw_total: u64 = segments.iter().map(|s| s.raw).sum();
        let gz_total: u64 = segments.iter().map(|s| s.gz).sum();
        let records: Vec<(u64, u64)> = segments.iter().map(|s| (s.xz, s.raw)).collect();
        let xz_wrong = xz && xz_sum.is_some_and(|x| xz::file_size(&records) != x.size);
        if raw_total != raw.size || (!segments.is_empty() && gz_total != gz.size) || xz_wrong {
            tracing::warn!(
                dist,
                path,
                "segments do not add up to the index; rebuilding it"
            );
            return Ok(None);
        }
        let by_hash = |p: &str, sha: &str| format!("dists/{dist}/{}", index::by_hash_path(p, sha));
        let mut prior = Prior {
            raw_key: by_hash(path, &raw.sha256),
            gz_key: by_hash(&gz_path, &gz.sha256),
            xz_key: None,
            segments: segments.clone(),
        };
        let mut check = vec![
            (prior.raw_key.clone(), raw.size),
            (prior.gz_key.clone(), gz.size),
        ];
        if let (true, Some(x)) = (xz, xz_sum) {
            let key = by_hash(&xz_path, &x.sha256);
            check.push((key.clone(), x.size));
            prior.xz_key = Some(key);
        }
        for (key, size) in &check {
            let (key, size) = (key.as_str(), *size);
            match self.store.head(key).await {
                Ok(m) if m.size == size => {}
                Ok(_) | Err(StoreError::NotFound { .. }) => {
                    tracing::warn!(key, "previous index missing or damaged; rebuilding it");
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(prior))
    }

    /// Deletes what earlier leases staged and left (their runs died before
    /// deleting it).
    async fn clear_staging(&self, ours: &str) -> Result<()> {
        let left: Vec<String> = self
            .store
            .list(STAGING)
            .await?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| !k.starts_with(ours))
            .collect();
        if !left.is_empty() {
            tracing::info!(
                count = left.len(),
                "deleting index files earlier runs staged"
            );
            self.store.delete_many(&left).await?;
        }
        Ok(())
    }

    /// Renders, signs and writes a distribution's Release, Release.gpg and
    /// InRelease (in that order) on the primary.
    async fn write_release(&self, state: &State, dist: &str, now: u64) -> Result<()> {
        let Some(d) = self.config.primary_layout().distributions.get(dist) else {
            return Ok(());
        };
        let identity = self.release_identity(state, dist)?;
        let mut files = BTreeMap::new();
        for comp in &d.components {
            for arch in &d.architectures {
                let path = format!(
                    "{}/{}",
                    index::index_dir(comp, arch),
                    index::index_name(arch)
                );
                let xz = d.xz.then(|| format!("{path}.xz"));
                for p in [Some(path.clone()), Some(format!("{path}.gz")), xz]
                    .into_iter()
                    .flatten()
                {
                    if let Some(sum) = state.indices.get(dist).and_then(|i| i.get(&p)) {
                        files.insert(p, sum.clone());
                    }
                }
            }
        }
        let signed = self.sign_release(&identity, dist, &files, now)?;
        // InRelease last: apt reads it first, and it must list only what
        // is already in place.
        signed.write(self.store.as_ref(), dist).await?;
        Ok(())
    }

    /// The identity `dist`'s Releases carry: as first published, else as
    /// the configuration has it.
    fn release_identity(&self, state: &State, dist: &str) -> Result<Identity> {
        state
            .identity
            .get(dist)
            .cloned()
            .or_else(|| self.identity_of(dist))
            .ok_or_else(|| PublishError::Refused(format!("{dist}: not in the layout")))
    }

    /// A Release for `dist`'s layout entry, listing `files`, dated `now`,
    /// rendered and signed (a distribution's, or one of its snapshots').
    fn sign_release(
        &self,
        identity: &Identity,
        dist: &str,
        files: &BTreeMap<String, index::IndexSum>,
        now: u64,
    ) -> Result<release::Signed> {
        let (archs, comps) = match self.config.primary_layout().distributions.get(dist) {
            Some(d) => (d.architectures.clone(), d.components.clone()),
            None => (Vec::new(), Vec::new()),
        };
        let binary: Vec<String> = archs.into_iter().filter(|a| a != "source").collect();
        let fields = ReleaseFields {
            identity: &self.config.release,
            suite: &identity.suite,
            codename: &identity.codename,
            date_ms: now,
            architectures: &binary,
            components: &comps,
        };
        let text = index::render_release(&fields, files);
        Ok(release::Signed {
            detached: Bytes::from(self.signer.detach_sign(&text)?),
            inrelease: Bytes::from(self.signer.clearsign(&text)?),
            release: Bytes::from(text),
        })
    }

    /// Publishes the public keys where they are missing or differ: every
    /// key as one keyring in both forms (`keys/repo.asc`, `keys/repo.gpg`),
    /// and each key on its own (`keys/<FINGERPRINT>.asc` and `.gpg`). A
    /// key no longer configured loses its own files; an unchanged file is
    /// not written again.
    async fn write_keys(&self, store: &dyn ObjectStore) -> Result<()> {
        let mut files: Vec<(String, Bytes)> = vec![
            (
                KEY_ASC.into(),
                Bytes::from(self.signer.public_asc().to_string()),
            ),
            (
                KEY_GPG.into(),
                Bytes::copy_from_slice(self.signer.public_gpg()),
            ),
        ];
        for k in self.signer.keys() {
            let fpr = &k.info.fingerprint;
            files.push((format!("keys/{fpr}.asc"), Bytes::from(k.public_asc()?)));
            files.push((
                format!("keys/{fpr}.gpg"),
                Bytes::copy_from_slice(k.public_gpg()),
            ));
        }
        for (key, body) in &files {
            match store.get_limited(key, crate::limits::RELEASE).await {
                Ok((stored, _)) if stored == body => continue,
                Err(StoreError::TooLarge { .. }) => {}
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            put(
                store,
                key,
                body.clone(),
                "application/pgp-keys",
                CACHE_MUTABLE,
            )
            .await?;
        }
        let stale: Vec<String> = store
            .list("keys/")
            .await?
            .into_iter()
            .map(|m| m.key)
            .filter(|k| is_key_file(k) && !files.iter().any(|(f, _)| f == k))
            .collect();
        if !stale.is_empty() {
            store.delete_many(&stale).await?;
        }
        Ok(())
    }

    /// Brings every replica up to the primary's generation, in parallel.
    async fn fan_out(&self, held: &mut Held, summary: &mut Summary) -> Result<()> {
        if self.replicas.is_empty() {
            return Ok(());
        }
        let served = self.table.replica_generations().await?;
        // A replica too far behind gets every linked file: read all shards.
        let full = self.replicas.iter().any(|r| {
            let at = served.get(&r.name).copied().unwrap_or(0);
            at < held.state.generation && held.state.replica_needs_full(at)
        });
        if full {
            held.state.links.load_all(self.store.as_ref()).await?;
            held.state.frozen.load_all(self.store.as_ref()).await?;
        }
        let state = &held.state;
        let lease = &held.lease;
        let jobs = self.replicas.iter().map(|r| {
            let at = served.get(&r.name).copied().unwrap_or(0);
            async move {
                if at >= state.generation {
                    return (
                        r.name.clone(),
                        ReplicaState {
                            generation: at,
                            error: None,
                        },
                    );
                }
                let mut backoff = Backoff::new(&r.name);
                let mut last = String::new();
                for attempt in 1..=self.replica_attempts.max(1) {
                    match self.sync_replica(state, r, at).await {
                        Ok(()) => {
                            match self
                                .table
                                .set_replica_generation(lease, &r.name, state.generation)
                                .await
                            {
                                Ok(_) => {
                                    return (
                                        r.name.clone(),
                                        ReplicaState {
                                            generation: state.generation,
                                            error: None,
                                        },
                                    )
                                }
                                Err(e) => last = e.to_string(),
                            }
                        }
                        Err(e) => last = e.to_string(),
                    }
                    tracing::warn!(
                        replica = r.name,
                        attempt,
                        error = last,
                        "replica not updated"
                    );
                    if attempt < self.replica_attempts {
                        tokio::time::sleep(backoff.next_pause() * 20).await;
                    }
                }
                (
                    r.name.clone(),
                    ReplicaState {
                        generation: at,
                        error: Some(last),
                    },
                )
            }
        });
        let results = join_all(jobs).await;
        summary.replicas.extend(results);
        Ok(())
    }

    /// Copies to one replica what changed since generation `at`: pool files,
    /// by-hash indices, canonical indices, keys, Release, Release.gpg,
    /// InRelease.
    async fn sync_replica(&self, state: &State, r: &Replica, at: u64) -> Result<()> {
        let dists: Vec<&String> = state
            .indices
            .keys()
            .filter(|d| r.distributions.contains(*d))
            .collect();
        let full = state.replica_needs_full(at);
        let mut pool: BTreeSet<String> = BTreeSet::new();
        let mut paths: BTreeMap<&String, BTreeSet<String>> = BTreeMap::new();
        for dist in &dists {
            if full {
                if let Some(links) = state.links.get(dist) {
                    for (dir, names) in links {
                        pool.extend(names.iter().map(|n| format!("{dir}/{n}")));
                    }
                }
                // What its snapshots still serve.
                for name in state
                    .snapshots
                    .get(*dist)
                    .into_iter()
                    .flat_map(|m| m.keys())
                {
                    let id = crate::snapshot::id(dist, name);
                    for (dir, names) in state.frozen.get(&id).into_iter().flatten() {
                        pool.extend(names.iter().map(|n| format!("{dir}/{n}")));
                    }
                }
                paths.insert(dist, state.indices[*dist].keys().cloned().collect());
            } else {
                for g in state.history.iter().filter(|g| g.generation > at) {
                    if let Some(keys) = g.pool.get(*dist) {
                        pool.extend(keys.iter().cloned());
                    }
                    // Only the distributions a generation signed anew get
                    // their Release copied (and their changed indices).
                    if g.released.contains(*dist) {
                        let entry = paths.entry(dist).or_default();
                        if let Some(p) = g.indices.get(*dist) {
                            entry.extend(p.iter().cloned());
                        }
                    }
                }
            }
        }
        let target = r.store.as_ref();
        copy_all(
            self.store.clone(),
            r.store.clone(),
            pool.into_iter().collect(),
            (self.progress.as_deref(), &r.name),
        )
        .await?;
        // Indices stream from the primary's by-hash objects; the canonical
        // paths are then copied within the replica.
        let mut canonical: Vec<(String, String, &String)> = Vec::new();
        for (dist, ps) in &paths {
            for p in ps {
                let Some(sum) = state.indices[*dist].get(p) else {
                    continue;
                };
                let hashed = format!("dists/{dist}/{}", index::by_hash_path(p, &sum.sha256));
                let (body, _) = self.store.get_stream(&hashed).await?;
                target
                    .put_stream(&hashed, body, options(content_type(p), CACHE_IMMUTABLE))
                    .await?;
                canonical.push((format!("dists/{dist}/{p}"), hashed, p));
            }
        }
        for (key, hashed, p) in canonical {
            target
                .copy_as(&hashed, &key, options(content_type(p), CACHE_MUTABLE))
                .await?;
        }
        self.write_keys(target).await?;
        for dist in paths.keys() {
            release::Signed::read(self.store.as_ref(), dist)
                .await?
                .write(target, dist)
                .await?;
        }
        self.sync_snapshots(state, target, &r.distributions, at, full)
            .await?;
        Ok(())
    }

    /// Says in each carried object's report which generation carries it and
    /// which replicas serve it.
    async fn report(&self, held: &mut Held) -> Result<()> {
        let served = self.table.replica_generations().await?;
        let names: Vec<&str> = self.replicas.iter().map(|r| r.name.as_str()).collect();
        let mut changed = false;
        for g in held
            .state
            .history
            .iter_mut()
            .filter(|g| !g.origins.is_empty())
        {
            let carrying: BTreeMap<String, u64> = names
                .iter()
                .filter_map(|n| {
                    let at = served.get(*n).copied().unwrap_or(0);
                    (at >= g.generation).then(|| (n.to_string(), at))
                })
                .collect();
            for origin in &g.origins {
                let Some((key, etag)) = origin.rsplit_once('@') else {
                    continue;
                };
                let Some(mut report) = Report::read(self.store.as_ref(), key).await? else {
                    continue;
                };
                if report.etag.as_deref().is_some_and(|e| e != etag) {
                    continue;
                }
                report.generation = Some(g.generation);
                report.replicas = carrying.clone();
                report.write(self.store.as_ref()).await?;
            }
            if carrying.len() == names.len() {
                g.origins.clear();
                changed = true;
            }
        }
        if changed {
            self.save(held).await?;
        }
        Ok(())
    }

    /// Deletes by-hash objects superseded longer than the grace period ago,
    /// on the primary and on every replica that serves the current generation.
    async fn expire(&self, held: &mut Held, summary: &mut Summary) -> Result<()> {
        let grace = u64::from(self.config.retention.grace_period_hours) * 3_600_000;
        let now = (self.now)();
        let due: Vec<String> = held
            .state
            .superseded
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= grace)
            .map(|(k, _)| k.clone())
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let served = self.table.replica_generations().await?;
        if self
            .replicas
            .iter()
            .any(|r| served.get(&r.name).copied().unwrap_or(0) < held.state.generation)
        {
            // A lagging replica still serves an older Release; keep them.
            return Ok(());
        }
        for r in &self.replicas {
            r.store.delete_many(&due).await?;
        }
        self.store.delete_many(&due).await?;
        for k in &due {
            held.state.superseded.remove(k);
        }
        summary.expired += due.len();
        self.save(held).await
    }

    /// Pool files no distribution has linked for the grace period: deleted
    /// from every replica and the primary (and their manifest entries), or
    /// only listed when `dry_run`.
    async fn purge_held(&self, held: &mut Held, dry_run: bool) -> Result<Vec<String>> {
        let grace = u64::from(self.config.retention.grace_period_hours) * 3_600_000;
        let now = (self.now)();
        let store = self.store.as_ref();
        let past: Vec<String> = held
            .state
            .unreferenced
            .iter()
            .filter(|(_, since)| now.saturating_sub(**since) >= grace)
            .map(|(k, _)| k.clone())
            .collect();
        // Their shards in every distribution and snapshot, read together
        // rather than one by one as each file is checked.
        let dirs: Vec<&str> = past
            .iter()
            .filter_map(|k| k.rsplit_once('/').map(|(d, _)| d))
            .collect();
        held.state
            .links
            .load_dirs(store, dirs.iter().copied())
            .await?;
        held.state
            .frozen
            .load_dirs(store, dirs.iter().copied())
            .await?;
        let mut due = Vec::new();
        for k in past {
            if !self.referenced(&mut held.state, &k).await? {
                due.push(k);
            }
        }
        if !dry_run {
            self.sweep_shards(&held.state).await?;
        }
        if dry_run || due.is_empty() {
            return Ok(due);
        }
        let mut by_dir: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for k in &due {
            if let Some((dir, name)) = k.rsplit_once('/') {
                by_dir.entry(dir).or_default().push(name.to_string());
            }
        }
        // Manifests first: once an entry is purging, nothing can link the
        // file or record an identical upload of it until the purge ends.
        let at = crate::time::rfc3339(crate::time::now_ms());
        for (dir, names) in &by_dir {
            manifest::begin_purge(self.store.as_ref(), dir, names, &at).await?;
        }
        for r in &self.replicas {
            r.store.delete_many(&due).await?;
        }
        self.store.delete_many(&due).await?;
        for (dir, names) in &by_dir {
            manifest::end_purge(self.store.as_ref(), dir, names).await?;
        }
        for k in &due {
            held.state.unreferenced.remove(k);
        }
        self.save(held).await?;
        Ok(due)
    }

    /// Deletes link shards the state does not list: left by a run that
    /// died between saving the state and deleting the shards it replaced,
    /// or by one that lost its lease before saving. Called under the lease,
    /// when every shard this run wrote is listed.
    async fn sweep_shards(&self, state: &State) -> Result<()> {
        let mut listed = state.links.keys();
        listed.extend(state.frozen.keys());
        let stale: Vec<String> = self
            .store
            .list(links::PREFIX)
            .await?
            .into_iter()
            .map(|o| o.key)
            .filter(|k| !listed.contains(k))
            .collect();
        if !stale.is_empty() {
            tracing::info!(count = stale.len(), "deleting link shards no state lists");
            self.store.delete_many(&stale).await?;
        }
        Ok(())
    }

    /// `raptr purge`: what [`Action::Purge`] does, now.
    pub async fn purge(&self, dry_run: bool) -> Result<Vec<String>> {
        let mut held = self.hold(Duration::from_secs(60)).await?;
        let r = self
            .purge_held(&mut held, dry_run)
            .await
            .map_err(|e| self.explain(e));
        self.give_back(&mut held).await?;
        r
    }

    /// `raptr verify`: what [`Action::Verify`] does, now: a whole pass,
    /// or, with a `slice`, as much of one as fits in it (going on from
    /// where the last sliced run stopped; call again until it is complete).
    pub async fn verify(&self, dry_run: bool, slice: Option<Duration>) -> Result<verify::Pass> {
        let mut held = self.hold(Duration::from_secs(60)).await?;
        let before = held.state.verify_cursor.clone();
        let r = verify::run(self, &mut held, dry_run, verify::Budget::new(slice))
            .await
            .map_err(|e| self.explain(e));
        if slice.is_none() {
            // A whole pass leaves no cursor behind.
            held.state.verify_cursor = None;
        }
        // The state is written only when the cursor moved.
        let saved = if held.state.verify_cursor != before {
            self.save(&mut held).await
        } else {
            Ok(())
        };
        self.give_back(&mut held).await?;
        saved?;
        r
    }

    /// Writes what a purge or verify request did into its report.
    async fn answer(&self, origins: &[String], what: &str, lines: &[String]) -> Result<()> {
        for origin in origins {
            let Some((key, _)) = origin.rsplit_once('@') else {
                continue;
            };
            let Some(mut report) = Report::read(self.store.as_ref(), key).await? else {
                continue;
            };
            report.files = lines.to_vec();
            report.reason = Some(format!("{what}: {} item(s)", lines.len()));
            report.write(self.store.as_ref()).await?;
        }
        Ok(())
    }
}

/// Whether `key` is a file a linked `.dsc` in its directory lists (an orig
/// tarball goes only when no source references it). The shard of its
/// directory must be loaded.
fn source_in_use(links: &Links, key: &str) -> bool {
    let Some((dir, name)) = key.rsplit_once('/') else {
        return false;
    };
    if index::file_arch(name).is_some() {
        return false;
    }
    links.dists().iter().any(|dist| {
        links
            .get(dist)
            .and_then(|dirs| dirs.get(dir))
            .is_some_and(|n| n.iter().any(|f| f.ends_with(".dsc")))
    })
}

impl State {
    /// Whether a replica at generation `at` is beyond what the history
    /// remembers, and so gets everything (all link shards loaded first).
    fn replica_needs_full(&self, at: u64) -> bool {
        at == 0 || self.history.first().is_none_or(|g| g.generation > at + 1)
    }

    /// The record of the generation after the current one (the one in
    /// progress, if a run died in the middle of it).
    fn history_next(&self) -> Generation {
        self.next.clone().unwrap_or_else(|| Generation {
            generation: self.generation + 1,
            ..Default::default()
        })
    }
}

/// Runs futures concurrently and collects their outputs in order.
pub(crate) async fn join_all<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out = Vec::with_capacity(futures.len());
    // The futures borrow from the caller, so they cannot be spawned; poll
    // them together instead.
    let mut slots: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    let mut futures: Vec<Option<_>> = futures.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, f) in futures.iter_mut().enumerate() {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        slots[i] = Some(v);
                        *f = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(slots.into_iter().flatten());
    out
}

/// Copies pool files from the primary to a replica, eight at a time.
/// Existing files are left alone: the pool never changes.
async fn copy_all(
    from: Arc<dyn ObjectStore>,
    to: Arc<dyn ObjectStore>,
    keys: Vec<String>,
    (progress, replica): (Option<&Progress>, &str),
) -> Result<()> {
    let mut set = tokio::task::JoinSet::new();
    let total = keys.len();
    let mut copied = 0usize;
    let mut keys = keys.into_iter();
    let mut first_error: Option<PublishError> = None;
    loop {
        while set.len() < 8 {
            let Some(key) = keys.next() else { break };
            let (from, to) = (from.clone(), to.clone());
            set.spawn(async move { copy_one(from.as_ref(), to.as_ref(), &key).await });
        }
        match set.join_next().await {
            None => break,
            Some(Ok(Ok(()))) => {
                copied += 1;
                progress::tick(progress, || {
                    format!("replica {replica}: {copied} of {total} pool files in place")
                });
            }
            Some(Ok(Err(e))) => {
                first_error.get_or_insert(e.into());
            }
            Some(Err(e)) => {
                first_error.get_or_insert(PublishError::Refused(format!(
                    "copying pool files to a replica: a copy task failed: {e}"
                )));
            }
        }
        if first_error.is_some() {
            set.abort_all();
            break;
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn copy_one(
    from: &dyn ObjectStore,
    to: &dyn ObjectStore,
    key: &str,
) -> Result<(), StoreError> {
    match to.head(key).await {
        Ok(_) => return Ok(()),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let (body, meta) = from.get_stream(key).await?;
    let opts = PutOptions {
        content_type: meta.content_type.clone(),
        cache_control: Some(CACHE_IMMUTABLE.into()),
        ..PutOptions::create_only()
    };
    match to.put_stream(key, body, opts).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
