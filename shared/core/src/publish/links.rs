//! The link state, in shards: which files of which bundle versions each
//! distribution serves.
//!
//! At 100,000 packages the link state is about 7 MB of JSON; reading and
//! writing it whole on every run would cost more than the rest of adding one
//! package. So each distribution's links are split into [`SHARDS`] shards by
//! a hash of the bundle (the pool directory without its version: every
//! version of a bundle, and every file of a version, share a shard). A shard
//! is an immutable object named by its content under `state/links/`; the
//! publish state lists the current one of each shard, so the state's
//! compare-and-swap stays the single commit point. A run reads only the
//! shards it touches and writes only the ones it changed; a shard replaced
//! is deleted once the state that no longer lists it is saved.
//!
//! A state written before shards existed holds the links inline; it is read
//! as fully loaded and written in shards on its next save.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use raptr_formats::hash::hex;
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// How many shards each distribution's links are split into.
pub const SHARDS: u32 = 64;

/// Where shard objects live. Replicas never receive them.
pub const PREFIX: &str = "state/links/";

/// pool directory of a bundle version → linked file names.
pub type Dirs = BTreeMap<String, BTreeSet<String>>;

/// The link state: the shards the publish state lists, and the part of
/// them read so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// distribution → shard → key of its current object.
    stored: BTreeMap<String, BTreeMap<u32, String>>,
    /// distribution → the links of its loaded shards.
    map: BTreeMap<String, Dirs>,
    loaded: BTreeSet<(String, u32)>,
    changed: BTreeSet<(String, u32)>,
    /// Shard objects replaced by a [`Links::flush`], to delete with the
    /// ones the next [`Links::write`] replaces.
    retired: Vec<String>,
}

/// The shard of a pool directory (`pool/<component>/<p>/<bundle>/<version>`).
pub fn shard_of(dir: &str) -> u32 {
    let bundle = dir.rsplit_once('/').map_or(dir, |(b, _)| b);
    let h = Sha256::digest(bundle.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % SHARDS
}

fn corrupt(key: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Permanent {
        key: key.to_string(),
        source: format!("not a raptr link shard: {e}").into(),
    }
}

impl Links {
    /// Links already in memory, all of them (as a state written before
    /// shards, or a test, holds them): every shard counts as loaded and
    /// changed, so the next save writes them.
    pub fn from_map(map: BTreeMap<String, Dirs>) -> Links {
        let mut links = Links::default();
        for (dist, dirs) in map {
            for s in 0..SHARDS {
                links.loaded.insert((dist.clone(), s));
            }
            for dir in dirs.keys() {
                links.changed.insert((dist.clone(), shard_of(dir)));
            }
            links.map.insert(dist, dirs);
        }
        links
    }

    /// Every distribution with links.
    pub fn dists(&self) -> BTreeSet<String> {
        self.stored.keys().chain(self.map.keys()).cloned().collect()
    }

    /// The loaded links of `dist`: complete only for the shards loaded
    /// ([`Links::load_dist`], [`Links::load_dir`]).
    pub fn get(&self, dist: &str) -> Option<&Dirs> {
        self.map.get(dist)
    }

    async fn load(
        &mut self,
        store: &dyn ObjectStore,
        dist: &str,
        shard: u32,
    ) -> Result<(), StoreError> {
        if self.loaded.contains(&(dist.to_string(), shard)) {
            return Ok(());
        }
        if let Some(key) = self.stored.get(dist).and_then(|s| s.get(&shard)) {
            let key = key.clone();
            let (body, _) = store.get_limited(&key, crate::limits::LINK_SHARD).await?;
            self.merge(dist, &key, &body)?;
        }
        self.loaded.insert((dist.to_string(), shard));
        Ok(())
    }

    /// Adds a shard object's links (`key`, read as `body`) to `dist`'s.
    fn merge(&mut self, dist: &str, key: &str, body: &[u8]) -> Result<(), StoreError> {
        let dirs: Dirs = serde_json::from_slice(body).map_err(|e| corrupt(key, e))?;
        self.map.entry(dist.to_string()).or_default().extend(dirs);
        Ok(())
    }

    /// Loads the shard of `dir` in every distribution.
    pub async fn load_dir(&mut self, store: &dyn ObjectStore, dir: &str) -> Result<(), StoreError> {
        self.load_dirs(store, [dir]).await
    }

    /// Loads the shards of these directories in every distribution,
    /// sixteen at a time.
    pub async fn load_dirs<'d>(
        &mut self,
        store: &dyn ObjectStore,
        dirs: impl IntoIterator<Item = &'d str>,
    ) -> Result<(), StoreError> {
        let shards: BTreeSet<u32> = dirs.into_iter().map(shard_of).collect();
        let dists = self.dists();
        let wanted = dists
            .iter()
            .flat_map(|d| shards.iter().map(move |s| (d.clone(), *s)))
            .collect();
        self.load_shards(store, wanted).await
    }

    /// Loads every shard of `dist`, sixteen at a time.
    pub async fn load_dist(
        &mut self,
        store: &dyn ObjectStore,
        dist: &str,
    ) -> Result<(), StoreError> {
        let wanted = (0..SHARDS).map(|s| (dist.to_string(), s)).collect();
        self.load_shards(store, wanted).await
    }

    /// Loads the shards named (distribution, shard) that are not loaded
    /// yet, sixteen at a time. A shard with no object is empty.
    async fn load_shards(
        &mut self,
        store: &dyn ObjectStore,
        wanted: BTreeSet<(String, u32)>,
    ) -> Result<(), StoreError> {
        let want: Vec<(String, String)> = wanted
            .iter()
            .filter(|k| !self.loaded.contains(*k))
            .filter_map(|(d, s)| {
                let key = self.stored.get(d).and_then(|m| m.get(s))?;
                Some((d.clone(), key.clone()))
            })
            .collect();
        for chunk in want.chunks(16) {
            let bodies = super::join_all(
                chunk
                    .iter()
                    .map(|(_, k)| store.get_limited(k, crate::limits::LINK_SHARD)),
            )
            .await;
            for ((dist, key), body) in chunk.iter().zip(bodies) {
                self.merge(dist, key, &body?.0)?;
            }
        }
        self.loaded.extend(wanted);
        Ok(())
    }

    /// Loads every shard of every distribution.
    pub async fn load_all(&mut self, store: &dyn ObjectStore) -> Result<(), StoreError> {
        for dist in self.dists() {
            self.load_dist(store, &dist).await?;
        }
        Ok(())
    }

    /// Links `dir/name` in `dist`; `false` if it already was.
    pub async fn insert(
        &mut self,
        store: &dyn ObjectStore,
        dist: &str,
        dir: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let shard = shard_of(dir);
        self.load(store, dist, shard).await?;
        let added = self
            .map
            .entry(dist.to_string())
            .or_default()
            .entry(dir.to_string())
            .or_default()
            .insert(name.to_string());
        if added {
            self.changed.insert((dist.to_string(), shard));
        }
        Ok(added)
    }

    /// Unlinks the files of `dir` in `dist` that `selected` picks; returns
    /// them.
    pub async fn remove(
        &mut self,
        store: &dyn ObjectStore,
        dist: &str,
        dir: &str,
        selected: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        let shard = shard_of(dir);
        self.load(store, dist, shard).await?;
        let Some(dirs) = self.map.get_mut(dist) else {
            return Ok(Vec::new());
        };
        let Some(linked) = dirs.get_mut(dir) else {
            return Ok(Vec::new());
        };
        let gone: Vec<String> = linked.iter().filter(|n| selected(n)).cloned().collect();
        for name in &gone {
            linked.remove(name);
        }
        if linked.is_empty() {
            dirs.remove(dir);
        }
        if !gone.is_empty() {
            self.changed.insert((dist.to_string(), shard));
        }
        Ok(gone)
    }

    /// Whether any distribution links `key` (its shard loaded first).
    pub async fn is_linked(
        &mut self,
        store: &dyn ObjectStore,
        key: &str,
    ) -> Result<bool, StoreError> {
        let Some((dir, name)) = key.rsplit_once('/') else {
            return Ok(false);
        };
        self.load_dir(store, dir).await?;
        Ok(self
            .map
            .values()
            .any(|dirs| dirs.get(dir).is_some_and(|files| files.contains(name))))
    }

    /// Whether no distribution has links.
    pub fn is_empty(&self) -> bool {
        self.stored.is_empty() && self.map.values().all(BTreeMap::is_empty)
    }

    /// Writes the changed shards now (see [`Links::write`]), keeping the
    /// keys of the ones they replace for the next `write` to return.
    pub async fn flush(&mut self, store: &dyn ObjectStore) -> Result<(), StoreError> {
        let replaced = self.write(store).await?;
        self.retired = replaced;
        Ok(())
    }

    /// The shard objects `dist` lists now (changed shards must be written
    /// first: [`Links::flush`]).
    pub fn shards(&self, dist: &str) -> BTreeMap<u32, String> {
        self.stored.get(dist).cloned().unwrap_or_default()
    }

    /// Lists `shards` (objects another [`Links`] wrote) under `name`, to be
    /// read on demand like any other; they are never written again.
    pub fn adopt(&mut self, name: &str, shards: BTreeMap<u32, String>) {
        self.forget(name);
        if !shards.is_empty() {
            self.stored.insert(name.to_string(), shards);
        }
    }

    /// Drops `name` and its links (its shard objects are left to whoever
    /// deletes unlisted shards).
    pub fn forget(&mut self, name: &str) {
        self.stored.remove(name);
        self.map.remove(name);
        self.loaded.retain(|(d, _)| d != name);
        self.changed.retain(|(d, _)| d != name);
    }

    /// Writes the changed shards as new objects; returns the keys of the
    /// ones they replace, to delete once the state that lists the new ones
    /// is saved.
    pub async fn write(&mut self, store: &dyn ObjectStore) -> Result<Vec<String>, StoreError> {
        let mut replaced = std::mem::take(&mut self.retired);
        for (dist, shard) in std::mem::take(&mut self.changed) {
            let dirs: Dirs = self
                .map
                .get(&dist)
                .into_iter()
                .flatten()
                .filter(|(dir, _)| shard_of(dir) == shard)
                .map(|(d, n)| (d.clone(), n.clone()))
                .collect();
            let new_key = if dirs.is_empty() {
                None
            } else {
                let body = serde_json::to_vec(&dirs).map_err(|e| corrupt(&dist, e))?;
                let key = format!(
                    "{PREFIX}{dist}/{shard:02}-{}.json",
                    &hex(&Sha256::digest(&body))[..16]
                );
                let opts = PutOptions {
                    content_type: Some("application/json".into()),
                    ..PutOptions::default()
                };
                store
                    .put_if_absent_or_same(&key, Bytes::from(body), opts)
                    .await?;
                Some(key)
            };
            let slots = self.stored.entry(dist.clone()).or_default();
            let old = match new_key {
                Some(k) => slots.insert(shard, k.clone()).filter(|o| *o != k),
                None => slots.remove(&shard),
            };
            if slots.is_empty() {
                self.stored.remove(&dist);
            }
            replaced.extend(old);
        }
        let listed: BTreeSet<&String> = self.stored.values().flat_map(|s| s.values()).collect();
        replaced.retain(|k| !listed.contains(k));
        Ok(replaced)
    }

    /// Every shard object the state lists.
    pub fn keys(&self) -> BTreeSet<&String> {
        self.stored.values().flat_map(|s| s.values()).collect()
    }
}

/// How the state stores the links: the shard list, or (written before
/// shards) the links themselves.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    // Shard numbers as strings: JSON keys are, and an untagged enum
    // does not turn them back into numbers.
    Sharded {
        shards: BTreeMap<String, BTreeMap<String, String>>,
    },
    Inline(BTreeMap<String, Dirs>),
}

#[derive(Serialize)]
struct StoredRef<'a> {
    shards: &'a BTreeMap<String, BTreeMap<u32, String>>,
}

impl Serialize for Links {
    /// Only the shard list: changed shards must be written first
    /// ([`Links::write`]).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredRef {
            shards: &self.stored,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Links {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Links, D::Error> {
        Ok(match Stored::deserialize(d)? {
            Stored::Sharded { shards } => {
                let mut stored = BTreeMap::new();
                for (dist, slots) in shards {
                    let mut numbered = BTreeMap::new();
                    for (n, key) in slots {
                        let n: u32 = n.parse().map_err(|_| {
                            serde::de::Error::custom(format!("link shard {n:?} of {dist}"))
                        })?;
                        numbered.insert(n, key);
                    }
                    stored.insert(dist, numbered);
                }
                Links {
                    stored,
                    ..Links::default()
                }
            }
            Stored::Inline(map) => Links::from_map(map),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raptr_store::fs::FsStore;

    fn dir(i: usize) -> String {
        format!("pool/main/p/pkg{i}/1.0")
    }

    /// A directory store in a temporary directory (kept while it lives).
    fn store() -> (tempfile::TempDir, FsStore) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = FsStore::open(tmp.path()).expect("store");
        (tmp, store)
    }

    #[tokio::test]
    async fn shards_round_trip_and_only_changed_ones_are_rewritten() {
        let (_tmp, store) = store();
        let mut links = Links::default();
        for i in 0..200 {
            assert!(links
                .insert(&store, "stable", &dir(i), "a.deb")
                .await
                .expect("links"));
        }
        assert!(!links
            .insert(&store, "stable", &dir(0), "a.deb")
            .await
            .expect("links"));
        assert!(links.write(&store).await.expect("links").is_empty());
        let written = links.keys().len();
        assert!(
            written > 1 && written <= SHARDS as usize,
            "{written} shards"
        );

        // Through the state's JSON: nothing loaded until asked.
        let json = serde_json::to_string(&links).expect("links");
        let mut back: Links = serde_json::from_str(&json).expect("links");
        assert!(back.get("stable").is_none());
        assert!(back
            .is_linked(&store, &format!("{}/a.deb", dir(7)))
            .await
            .expect("links"));
        assert!(!back
            .is_linked(&store, &format!("{}/b.deb", dir(7)))
            .await
            .expect("links"));
        let partly = back.get("stable").expect("links").len();
        assert!(partly < 200, "only one shard read: {partly} directories");

        // One change rewrites one shard and replaces exactly its old object.
        let before = back.keys().into_iter().cloned().collect::<BTreeSet<_>>();
        assert!(back
            .insert(&store, "stable", &dir(7), "b.deb")
            .await
            .expect("links"));
        let replaced = back.write(&store).await.expect("links");
        let after = back.keys().into_iter().cloned().collect::<BTreeSet<_>>();
        assert_eq!(replaced.len(), 1);
        assert!(before.contains(&replaced[0]) && !after.contains(&replaced[0]));
        assert_eq!(before.difference(&after).count(), 1);

        // Unlinking the last file of a shard's directories drops it.
        let mut all = back.clone();
        all.load_dist(&store, "stable").await.expect("links");
        assert_eq!(all.get("stable").expect("links").len(), 200);
        let gone = all
            .remove(&store, "stable", &dir(7), |_| true)
            .await
            .expect("links");
        assert_eq!(gone, vec!["a.deb".to_string(), "b.deb".to_string()]);
        assert_eq!(all.get("stable").expect("links").len(), 199);
    }

    #[tokio::test]
    async fn load_dirs_reads_exactly_their_shards_in_every_distribution() {
        let (_tmp, store) = store();
        let mut links = Links::default();
        for i in 0..100 {
            for dist in ["stable", "testing"] {
                links
                    .insert(&store, dist, &dir(i), "a.deb")
                    .await
                    .expect("links");
            }
        }
        links.write(&store).await.expect("links");
        let json = serde_json::to_string(&links).expect("links");
        let mut back: Links = serde_json::from_str(&json).expect("links");
        let (a, b) = (dir(3), dir(42));
        back.load_dirs(&store, [a.as_str(), b.as_str()])
            .await
            .expect("links");
        let shards = BTreeSet::from([shard_of(&a), shard_of(&b)]);
        for dist in ["stable", "testing"] {
            let got: BTreeSet<&String> = back.get(dist).expect("links").keys().collect();
            let want: BTreeSet<String> = (0..100)
                .map(dir)
                .filter(|d| shards.contains(&shard_of(d)))
                .collect();
            assert_eq!(got, want.iter().collect(), "{dist}");
            for s in 0..SHARDS {
                assert_eq!(
                    back.loaded.contains(&(dist.to_string(), s)),
                    shards.contains(&s),
                    "{dist} shard {s}"
                );
            }
        }
        // Already loaded: nothing is read again (the objects are gone).
        for key in links.keys() {
            store.delete(key).await.expect("delete");
        }
        assert!(back
            .is_linked(&store, &format!("{a}/a.deb"))
            .await
            .expect("links"));
    }

    #[test]
    fn a_state_with_inline_links_reads_as_loaded_and_changed() {
        let json = r#"{"stable":{"pool/main/p/pkg/1.0":["a.deb"]}}"#;
        let links: Links = serde_json::from_str(json).expect("links");
        assert!(links.get("stable").expect("links")["pool/main/p/pkg/1.0"].contains("a.deb"));
        assert_eq!(links.changed.len(), 1);
        assert_eq!(
            serde_json::to_string(&links).expect("links"),
            r#"{"shards":{}}"#
        );
    }

    #[test]
    fn versions_of_a_bundle_share_a_shard() {
        assert_eq!(
            shard_of("pool/main/h/hello/1.0-1"),
            shard_of("pool/main/h/hello/2.0-1")
        );
        let spread: BTreeSet<u32> = (0..1000).map(|i| shard_of(&dir(i))).collect();
        assert_eq!(spread.len(), SHARDS as usize);
    }
}
