//! The publisher's state, `state/publish.json` in the primary bucket: the
//! link state (which files of which bundle versions each distribution
//! serves), what the last generation published, and the work a crash may
//! have left half done. Only the lease holder writes it, by compare-and-swap.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::{Deserialize, Serialize};

use super::index::IndexSum;
use super::links::Links;
use super::segment::{Delta, Segment};

/// Where the state lives. Replicas never receive it.
pub const STATE_KEY: &str = "state/publish.json";

/// How many generations the state remembers for replicas that lag; a
/// replica further behind is brought up to date by a full comparison.
pub const HISTORY: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The last generation published on the primary.
    pub generation: u64,
    /// Which files of which bundle versions each distribution links, in
    /// shards read on demand (see [`super::links`]).
    #[serde(default)]
    pub links: Links,
    /// The Release identity of each distribution, fixed when first published.
    pub identity: BTreeMap<String, Identity>,
    /// distribution → index path (relative to `dists/<dist>/`) → its sums.
    pub indices: BTreeMap<String, BTreeMap<String, IndexSum>>,
    /// `dist component arch` triples whose index must be rebuilt.
    pub dirty: BTreeSet<String>,
    /// Journal sequence numbers already applied to `links`; a run that died
    /// before removing them from the journal does not apply them twice.
    pub applied: Vec<u64>,
    /// The most recent generations, oldest first.
    pub history: Vec<Generation>,
    /// Superseded by-hash objects (`dists/...` keys) and when they stopped
    /// being current, in milliseconds.
    pub superseded: BTreeMap<String, u64>,
    /// Pool keys no distribution links, and since when.
    pub unreferenced: BTreeMap<String, u64>,
    /// Origins of journaled purge and verify requests not yet carried out.
    pub purge_requests: Vec<String>,
    pub verify_requests: Vec<String>,
    /// When each distribution's Release was last signed (its Date), in
    /// milliseconds: with Valid-Until, it is signed again before it expires.
    #[serde(default)]
    pub released: BTreeMap<String, u64>,
    /// What each distribution's last Release was made from: its layout entry
    /// and the `release` section, as JSON. When the configuration no longer
    /// gives the same, the distribution is signed again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub release_inputs: BTreeMap<String, String>,
    /// distribution → index path (`Packages`/`Sources`) → its segments,
    /// which its `.gz` shares (see [`super::segment`]).
    #[serde(default)]
    pub segments: BTreeMap<String, BTreeMap<String, Vec<Segment>>>,
    /// Per dirty triple, the pool keys linked and unlinked since its index
    /// was last written.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delta: BTreeMap<String, Delta>,
    /// The generation being built, once its journal entries are applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Generation>,
    /// Manifest entries removed by `remove` requests (pool directory →
    /// file names), dropped from the manifests only once this state, whose
    /// `unreferenced` lists the files for purge, is saved: a run that dies
    /// in between leaks nothing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub removed: BTreeMap<String, BTreeSet<String>>,
    /// Snapshots: distribution → name → what it is (see [`crate::snapshot`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub snapshots: BTreeMap<String, BTreeMap<String, crate::snapshot::Snapshot>>,
    /// The frozen link state of each snapshot, under its id `DIST/NAME`:
    /// the shard objects its distribution listed when it was taken.
    #[serde(default, skip_serializing_if = "Links::is_empty")]
    pub frozen: Links,
    /// Where an unfinished verify pass is (see [`super::verify`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_cursor: Option<super::verify::Cursor>,
}

/// What a distribution's Release says about itself; it never changes once
/// the distribution is published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub origin: String,
    pub label: String,
    pub suite: String,
    pub codename: String,
}

/// One published generation, for the replicas that have yet to receive it
/// and the reports that have yet to say so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    pub generation: u64,
    pub published_at: String,
    /// distribution → pool keys it newly links.
    pub pool: BTreeMap<String, BTreeSet<String>>,
    /// distribution → index paths that changed.
    pub indices: BTreeMap<String, BTreeSet<String>>,
    /// The journaled objects it carries (`<key>@<etag>`), for their reports.
    pub origins: Vec<String>,
    /// Distributions whose Release it signed anew.
    #[serde(default)]
    pub released: BTreeSet<String>,
    /// Snapshots it published or signed anew (ids `DIST/NAME`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub snapshots: BTreeSet<String>,
}

impl State {
    /// Reads the state and its ETag; a repository never published has none.
    pub async fn load(store: &dyn ObjectStore) -> Result<(State, Option<String>), StoreError> {
        match store.get_limited(STATE_KEY, crate::limits::STATE).await {
            Ok((body, meta)) => {
                let s = serde_json::from_slice(&body).map_err(|e| StoreError::Permanent {
                    key: STATE_KEY.into(),
                    source: format!("not a raptr publish state: {e}").into(),
                })?;
                Ok((s, Some(meta.etag)))
            }
            Err(StoreError::NotFound { .. }) => Ok((State::default(), None)),
            Err(e) => Err(e),
        }
    }

    /// Writes the state over the version read (`etag`), or creates it. A
    /// `PreconditionFailed`/`AlreadyExists` means another publisher wrote
    /// it: this one has lost its lease and must stop. Changed link shards
    /// are written first; the ones they replace are deleted once the state
    /// no longer lists them.
    pub async fn save(
        &mut self,
        store: &dyn ObjectStore,
        etag: Option<&str>,
    ) -> Result<String, StoreError> {
        let mut replaced = self.links.write(store).await?;
        // A snapshot may list a shard the distribution no longer does.
        let frozen = self.frozen.keys();
        replaced.retain(|k| !frozen.contains(k));
        let body = serde_json::to_vec(self).map_err(|e| StoreError::Permanent {
            key: STATE_KEY.into(),
            source: Box::new(e),
        })?;
        let mode = match etag {
            Some(e) => PutOptions::if_match(e),
            None => PutOptions::create_only(),
        };
        let opts = PutOptions {
            content_type: Some("application/json".into()),
            ..mode
        };
        let etag = store.put(STATE_KEY, Bytes::from(body), opts).await?.etag;
        if let Err(e) = store.delete_many(&replaced).await {
            // Left behind, they cost only space: purge deletes them.
            tracing::warn!(error = %e, "superseded link shards not deleted");
        }
        Ok(etag)
    }
}

/// A `dist component arch` triple, as kept in [`State::dirty`].
pub fn triple(dist: &str, component: &str, arch: &str) -> String {
    format!("{dist} {component} {arch}")
}

/// The parts of a triple.
pub fn split_triple(t: &str) -> Option<(&str, &str, &str)> {
    let mut it = t.splitn(3, ' ');
    Some((it.next()?, it.next()?, it.next()?))
}
