//! The publisher's side of snapshots (see [`crate::snapshot`]): taking one
//! (its links frozen as the shard objects its distribution lists, its
//! indices copied and a Release signed for it), deleting one, restoring a
//! distribution to one, the scheduled ones, and copying them to replicas.
//!
//! A snapshot entry ends its batch of journal entries, so the generation
//! that publishes it has built the distribution's indices from exactly the
//! links it froze: the snapshot's index files are those, copied.

use std::collections::BTreeMap;

use raptr_formats::bundle::Status;
use raptr_store::ObjectStore;

use super::index;
use super::state::{Generation, State};
use super::{content_type, options, release, Publisher, Result, CACHE_IMMUTABLE, CACHE_MUTABLE};
use crate::change::Change;
use crate::report::Report;
use crate::snapshot::{self, Snapshot};

impl Publisher {
    /// Applies a snapshot change: freezes the distribution's links under
    /// the name, to be published by this generation.
    pub(super) async fn take_snapshot(
        &self,
        state: &mut State,
        next: &mut Generation,
        change: &Change,
        now: u64,
    ) -> Result<()> {
        let (Some(dist), Some(name)) = (&change.distribution, &change.snapshot) else {
            return Ok(());
        };
        if state
            .snapshots
            .get(dist)
            .is_some_and(|s| s.contains_key(name))
        {
            let why = format!(
                "snapshot {name} of {dist} exists already (taken {}); a snapshot never changes: \
                 choose another name, or delete it first",
                state.snapshots[dist][name].taken_at
            );
            return self.refuse_origin(&change.origin, &why).await;
        }
        let store = self.store.as_ref();
        // The frozen links are the shard objects the distribution lists
        // once this batch's changes are written.
        state.links.flush(store).await?;
        state.links.load_dist(store, dist).await?;
        let files = state
            .links
            .get(dist)
            .map_or(0, |d| d.values().map(|n| n.len() as u64).sum());
        let id = snapshot::id(dist, name);
        state.frozen.adopt(&id, state.links.shards(dist));
        state.snapshots.entry(dist.clone()).or_default().insert(
            name.clone(),
            Snapshot {
                taken_at: crate::time::rfc3339(now),
                generation: next.generation,
                by: change.by.clone(),
                origin: Some(change.origin.clone()),
                files,
                indices: BTreeMap::new(),
                signed: 0,
            },
        );
        next.snapshots.insert(id);
        self.note(&change.origin, |r| {
            r.snapshot = Some(name.clone());
            r.suite = Some(snapshot::suite_path(dist, name));
            r.reason = Some(format!(
                "snapshot {name} of {dist}: {files} file(s), published at dists/{}/",
                snapshot::suite_path(dist, name)
            ));
        })
        .await
    }

    /// Applies a delete-snapshot change: the snapshot's published files go
    /// after the grace period (superseded), and the pool files only it
    /// referenced become unreferenced now.
    pub(super) async fn delete_snapshot(
        &self,
        state: &mut State,
        change: &Change,
        now: u64,
    ) -> Result<()> {
        let (Some(dist), Some(name)) = (&change.distribution, &change.snapshot) else {
            return Ok(());
        };
        let Some(snap) = state.snapshots.get_mut(dist).and_then(|m| m.remove(name)) else {
            let why = self.no_such(state, dist, name);
            return self.refuse_origin(&change.origin, &why).await;
        };
        if state.snapshots.get(dist).is_some_and(BTreeMap::is_empty) {
            state.snapshots.remove(dist);
        }
        for key in snap.published_keys(dist, name) {
            state.superseded.insert(key, now);
        }
        let store = self.store.as_ref();
        let id = snapshot::id(dist, name);
        state.frozen.load_dist(store, &id).await?;
        let dirs = state.frozen.get(&id).cloned().unwrap_or_default();
        state.frozen.forget(&id);
        let mut freed = 0usize;
        for (dir, names) in &dirs {
            for n in names {
                let key = format!("{dir}/{n}");
                if !self.referenced(state, &key).await? {
                    // Clients may read the snapshot's indices until they
                    // go: its files get the whole grace period from now.
                    state.unreferenced.insert(key, now);
                    freed += 1;
                }
            }
        }
        self.note(&change.origin, |r| {
            r.snapshot = Some(name.clone());
            r.suite = Some(snapshot::suite_path(dist, name));
            r.reason = Some(format!(
                "snapshot {name} of {dist} deleted: its published files go after the grace \
                 period; {freed} pool file(s) only it referenced go at the first purge after that"
            ));
        })
        .await
    }

    /// Applies a restore change: the distribution links exactly what the
    /// snapshot froze.
    pub(super) async fn restore(
        &self,
        state: &mut State,
        next: &mut Generation,
        change: &Change,
        now: u64,
    ) -> Result<()> {
        let (Some(dist), Some(name)) = (&change.distribution, &change.snapshot) else {
            return Ok(());
        };
        if !state
            .snapshots
            .get(dist)
            .is_some_and(|m| m.contains_key(name))
        {
            let why = self.no_such(state, dist, name);
            return self.refuse_origin(&change.origin, &why).await;
        }
        let store = self.store.as_ref();
        let id = snapshot::id(dist, name);
        state.frozen.load_dist(store, &id).await?;
        state.links.load_dist(store, dist).await?;
        let want = state.frozen.get(&id).cloned().unwrap_or_default();
        let have = state.links.get(dist).cloned().unwrap_or_default();
        let diff = crate::plan::restore_diff(dist, &have, &want);
        for p in &diff {
            let Some((dir, n)) = p.file.rsplit_once('/') else {
                continue;
            };
            if p.action == crate::request::Action::Link {
                if state.links.insert(store, dist, dir, n).await? {
                    state.unreferenced.remove(&p.file);
                    next.pool
                        .entry(dist.clone())
                        .or_default()
                        .insert(p.file.clone());
                    self.mark_dirty(state, dist, dir, n, true);
                }
            } else {
                let gone = state.links.remove(store, dist, dir, |x| x == n).await?;
                if !gone.is_empty() {
                    self.mark_dirty(state, dist, dir, n, false);
                    if !self.referenced(state, &p.file).await? {
                        state.unreferenced.entry(p.file.clone()).or_insert(now);
                    }
                }
            }
        }
        let linked = diff
            .iter()
            .filter(|p| p.action == crate::request::Action::Link)
            .count();
        let unlinked = diff.len() - linked;
        self.note(&change.origin, |r| {
            r.snapshot = Some(name.clone());
            r.reason = Some(format!(
                "restored {dist} to snapshot {name}: {linked} file(s) linked, {unlinked} unlinked"
            ));
            r.planned = diff.clone();
        })
        .await
    }

    /// Whether a distribution or a snapshot links `key` (or, for a file a
    /// `.dsc` lists, a `.dsc` beside it).
    pub(super) async fn referenced(&self, state: &mut State, key: &str) -> Result<bool> {
        let store = self.store.as_ref();
        if state.links.is_linked(store, key).await? || state.frozen.is_linked(store, key).await? {
            return Ok(true);
        }
        Ok(super::source_in_use(&state.links, key) || super::source_in_use(&state.frozen, key))
    }

    /// Why a snapshot named in a request is not there.
    fn no_such(&self, state: &State, dist: &str, name: &str) -> String {
        let names: Vec<&String> = state
            .snapshots
            .get(dist)
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        if names.is_empty() {
            format!("{dist} has no snapshot {name}; it has no snapshots")
        } else {
            let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            format!(
                "{dist} has no snapshot {name}; its snapshots are {}",
                names.join(", ")
            )
        }
    }

    /// Marks the report of `origin` rejected with `why`: the request asked
    /// for something the state does not allow by the time it is applied.
    pub(super) async fn refuse_origin(&self, origin: &str, why: &str) -> Result<()> {
        tracing::warn!(origin, why, "change refused by the publisher");
        self.note(origin, |r| {
            r.status = Some(Status::Rejected);
            r.reason = Some(format!("{}: {why}", r.key));
        })
        .await
    }

    /// Changes the report of `origin` (`<key>@<etag>`), if it answers that
    /// version of the object.
    pub(super) async fn note(&self, origin: &str, change: impl FnOnce(&mut Report)) -> Result<()> {
        let Some((key, etag)) = origin.rsplit_once('@') else {
            return Ok(());
        };
        let store = self.store.as_ref();
        let Some(mut report) = Report::read(store, key).await? else {
            return Ok(());
        };
        if report.etag.as_deref().is_some_and(|e| e != etag) {
            return Ok(());
        }
        change(&mut report);
        report.write(store).await?;
        Ok(())
    }

    /// Publishes on the primary the snapshots this generation took (their
    /// indices: the distribution's, just built) or signs anew.
    pub(super) async fn publish_snapshots(
        &self,
        state: &mut State,
        next: &Generation,
        now: u64,
    ) -> Result<()> {
        for id in &next.snapshots {
            let Some((dist, name)) = snapshot::split_id(id) else {
                continue;
            };
            let Some(snap) = state.snapshots.get(dist).and_then(|m| m.get(name)).cloned() else {
                continue;
            };
            let base = format!("dists/{}", snapshot::suite_path(dist, name));
            let mut snap = snap;
            if snap.indices.is_empty() {
                let sums = state.indices.get(dist).cloned().unwrap_or_default();
                for (p, sum) in &sums {
                    let from = format!("dists/{dist}/{}", index::by_hash_path(p, &sum.sha256));
                    let hashed = format!("{base}/{}", index::by_hash_path(p, &sum.sha256));
                    let canonical = format!("{base}/{p}");
                    // A name deleted and taken again: its old files must
                    // not be expired under the new snapshot.
                    state.superseded.remove(&hashed);
                    state.superseded.remove(&canonical);
                    self.store
                        .copy_as(&from, &hashed, options(content_type(p), CACHE_IMMUTABLE))
                        .await?;
                    self.store
                        .copy_as(&from, &canonical, options(content_type(p), CACHE_MUTABLE))
                        .await?;
                }
                snap.indices = sums;
            }
            for f in release::NAMES {
                state.superseded.remove(&format!("{base}/{f}"));
            }
            let signed = self.sign_snapshot(state, dist, &snap, now)?;
            signed
                .write(self.store.as_ref(), &snapshot::suite_path(dist, name))
                .await?;
            snap.signed = now;
            if let Some(m) = state.snapshots.get_mut(dist) {
                m.insert(name.to_string(), snap);
            }
        }
        Ok(())
    }

    /// A snapshot's Release, signed: the distribution's identity, its
    /// files as frozen, dated now.
    fn sign_snapshot(
        &self,
        state: &State,
        dist: &str,
        snap: &Snapshot,
        now: u64,
    ) -> Result<release::Signed> {
        let identity = self.release_identity(state, dist)?;
        self.sign_release(&identity, dist, &snap.indices, now)
    }

    /// Snapshots whose Release is due to be signed again (past half its
    /// validity, or its inputs changed with the distribution's).
    pub(super) fn snapshots_due(&self, state: &State, now: u64) -> Vec<String> {
        let Some(days) = self.config.release.valid_for_days else {
            return Vec::new();
        };
        let half = u64::from(days) * 86_400_000 / 2;
        let mut out = Vec::new();
        for (dist, m) in &state.snapshots {
            for (name, s) in m {
                if s.signed > 0 && now.saturating_sub(s.signed) >= half {
                    out.push(snapshot::id(dist, name));
                }
            }
        }
        out
    }

    /// Scheduled snapshots due now, and the scheduled ones beyond each
    /// distribution's `keep` (oldest first) once the new one is taken.
    pub(super) fn schedule_due(
        &self,
        state: &State,
        now: u64,
    ) -> Vec<(String, String, Vec<String>)> {
        let mut out = Vec::new();
        for (dist, d) in &self.config.primary_layout().distributions {
            let Some(s) = d.snapshots else {
                continue;
            };
            let taken: Vec<(&String, &Snapshot)> = state
                .snapshots
                .get(dist)
                .map(|m| {
                    m.iter()
                        .filter(|(n, _)| snapshot::is_scheduled(n))
                        .collect()
                })
                .unwrap_or_default();
            let last = taken
                .iter()
                .filter_map(|(_, s)| crate::time::parse_rfc3339(&s.taken_at))
                .max();
            let every = u64::from(s.every_hours) * 3_600_000;
            if last.is_some_and(|t| now.saturating_sub(t) < every) {
                continue;
            }
            let name = snapshot::scheduled_name(now);
            if state
                .snapshots
                .get(dist)
                .is_some_and(|m| m.contains_key(&name))
            {
                continue;
            }
            let mut names: Vec<&String> = taken.iter().map(|(n, _)| *n).collect();
            names.sort();
            let keep_old = (s.keep as usize).saturating_sub(1);
            let drop = names.len().saturating_sub(keep_old);
            let old: Vec<String> = names[..drop].iter().map(|n| n.to_string()).collect();
            out.push((dist.clone(), name, old));
        }
        out
    }

    /// Copies to a replica the snapshots published since generation `at`
    /// (all of them when `full`) of the distributions it serves.
    pub(super) async fn sync_snapshots(
        &self,
        state: &State,
        target: &dyn ObjectStore,
        served: &std::collections::BTreeSet<String>,
        at: u64,
        full: bool,
    ) -> Result<()> {
        let mut ids: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        if full {
            for (dist, m) in &state.snapshots {
                ids.extend(m.keys().map(|n| snapshot::id(dist, n)));
            }
        } else {
            for g in state.history.iter().filter(|g| g.generation > at) {
                ids.extend(g.snapshots.iter().cloned());
            }
        }
        for id in ids {
            let Some((dist, name)) = snapshot::split_id(&id) else {
                continue;
            };
            let Some(snap) = state.snapshots.get(dist).and_then(|m| m.get(name)) else {
                continue;
            };
            if !served.contains(dist) || snap.indices.is_empty() {
                continue;
            }
            let suite = snapshot::suite_path(dist, name);
            let base = format!("dists/{suite}");
            for (p, sum) in &snap.indices {
                let hashed = format!("{base}/{}", index::by_hash_path(p, &sum.sha256));
                if target.head(&hashed).await.is_err() {
                    let (body, _) = self.store.get_stream(&hashed).await?;
                    target
                        .put_stream(&hashed, body, options(content_type(p), CACHE_IMMUTABLE))
                        .await?;
                }
                target
                    .copy_as(
                        &hashed,
                        &format!("{base}/{p}"),
                        options(content_type(p), CACHE_MUTABLE),
                    )
                    .await?;
            }
            release::Signed::read(self.store.as_ref(), &suite)
                .await?
                .write(target, &suite)
                .await?;
        }
        Ok(())
    }
}
