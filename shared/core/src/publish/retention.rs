//! The publisher's side of retention (see [`crate::retain`]): after a link
//! adds versions of a bundle to a distribution with a policy, and on a
//! `retain` request for the whole distribution, the versions past the
//! policy are unlinked in the same generation, and the report of the upload
//! or request that caused it lists them.

use std::collections::BTreeMap;

use raptr_store::{ObjectStore, StoreError};

use super::links::Links;
use super::state::State;
use super::{segment, Publisher, Result};
use crate::change::Change;
use crate::config::Policy;
use crate::retain::{self, Retired};

/// The linked files of `dist` that `policy` retires at `now`, for the
/// bundles whose pool directories start with one of `bundles` (every
/// bundle when `None`). The shards must be loaded; manifests are read
/// through `manifests`.
pub async fn evaluate(
    store: &dyn ObjectStore,
    links: &Links,
    dist: &str,
    policy: &Policy,
    now: u64,
    bundles: Option<&[String]>,
    manifests: &mut segment::Manifests,
) -> Result<Vec<Retired>, StoreError> {
    let Some(dirs) = links.get(dist) else {
        return Ok(Vec::new());
    };
    // bundle directory → its linked versions' directories.
    let mut by_bundle: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    for dir in dirs.keys() {
        let Some(b) = retain::bundle_prefix(dir) else {
            continue;
        };
        if bundles.is_none_or(|w| w.iter().any(|x| x == b)) {
            by_bundle.entry(b).or_default().push(dir);
        }
    }
    let mut out = Vec::new();
    for versions in by_bundle.values() {
        // One version linked: nothing to compare.
        if versions.len() < 2 && policy.max_age_days.is_none() {
            continue;
        }
        let mut candidates = Vec::new();
        for dir in versions {
            if !manifests.contains_key(*dir) {
                let m = crate::manifest::load(store, dir).await?.map(|(m, _)| m);
                manifests.insert(dir.to_string(), m);
            }
            if let Some(Some(m)) = manifests.get(*dir) {
                candidates.extend(retain::candidates(dir, m, &dirs[*dir]));
            }
        }
        out.extend(
            retain::retire(policy, now, &candidates)
                .into_iter()
                .map(|c| retain::retired(dist, c)),
        );
    }
    out.sort();
    Ok(out)
}

impl Publisher {
    /// The policy that applies to `dist`: the change's own (a `retain`
    /// request that gives one), else the distribution's.
    fn policy_for(&self, dist: &str, change: &Change) -> Option<Policy> {
        change.policy.or_else(|| {
            self.config
                .primary_layout()
                .distributions
                .get(dist)
                .and_then(|d| d.retention)
        })
    }

    /// Applies `dist`'s policy to the bundles of `bundles` (pool bundle
    /// directories; all when `None`) after `change`: unlinks what it
    /// retires and lists it in the change's report.
    pub(super) async fn retain(
        &self,
        state: &mut State,
        change: &Change,
        dist: &str,
        bundles: Option<&[String]>,
        manifests: &mut segment::Manifests,
        now: u64,
    ) -> Result<()> {
        let Some(policy) = self.policy_for(dist, change) else {
            return Ok(());
        };
        let store = self.store.as_ref();
        if bundles.is_none() {
            state.links.load_dist(store, dist).await?;
        }
        let retired = evaluate(store, &state.links, dist, &policy, now, bundles, manifests).await?;
        for r in &retired {
            let Some((dir, name)) = r.file.rsplit_once('/') else {
                continue;
            };
            let gone = state.links.remove(store, dist, dir, |n| n == name).await?;
            if gone.is_empty() {
                continue;
            }
            self.mark_dirty(state, dist, dir, name, false);
            if !self.referenced(state, &r.file).await? {
                state.unreferenced.entry(r.file.clone()).or_insert(now);
            }
        }
        let whole = bundles.is_none();
        if retired.is_empty() && !whole {
            return Ok(());
        }
        tracing::info!(
            dist,
            count = retired.len(),
            "retention unlinked old versions"
        );
        self.note(&change.origin, |r| {
            for x in &retired {
                if !r.retired.contains(x) {
                    r.retired.push(x.clone());
                }
            }
            if whole {
                r.reason = Some(format!(
                    "retention in {dist}: {} file(s) of older versions unlinked",
                    retired.len()
                ));
            }
        })
        .await
    }
}
