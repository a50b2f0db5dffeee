//! `manifest.json`: what the pool holds for one bundle version (DESIGN §4).
//!
//! The indices are rendered from manifests alone, so a manifest records
//! everything a `Packages` or `Sources` stanza needs: sizes, the four hashes,
//! and the control paragraph as validated. It is updated by compare-and-swap:
//! two invocations adding files to one bundle version both land, and an entry,
//! once written, never changes.

use bytes::Bytes;
use raptr_formats::bundle::Kind;
use raptr_formats::hash::Digests;
use raptr_store::table::Backoff;
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::keys::manifest_key;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The source package name.
    pub bundle: String,
    /// The source version, with its epoch.
    pub version: String,
    pub component: String,
    /// By file name (the last segment of the pool key).
    pub files: BTreeMap<String, ManifestFile>,
    /// Files a purge is deleting now (name → since when, RFC 3339): no
    /// upload may store them again until the purge has ended, or its
    /// delete could take the new copy away.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub purging: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub kind: Kind,
    #[serde(flatten)]
    pub digests: Digests,
    /// Binary package name, version and architecture (`.deb`s); `source` for
    /// a `.dsc` and the files it lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// The control paragraph as validated: a `.deb`'s `control`, a `.dsc`'s
    /// paragraph (signature removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    /// Who uploaded it (the S3 event's principal, or `local:<user>`).
    pub uploader: String,
    pub uploaded_at: String,
    /// The upload it came from: `<incoming key>@<etag>`.
    pub upload: String,
}

impl Manifest {
    /// Parses a manifest as read back from the bucket. The error is one
    /// bounded line.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        serde_json::from_slice(bytes)
            .map_err(|e| format!("not a raptr manifest: {}", crate::json_problem(&e)))
    }
}

impl ManifestFile {
    /// Whether a request's `packages` and `architectures` filters select this
    /// file (`source` names a `.dsc` and the files it lists). `.changes` and
    /// `.buildinfo` files are never selected: they are kept, not published.
    pub fn selected(&self, packages: Option<&[String]>, architectures: Option<&[String]>) -> bool {
        if matches!(self.kind, Kind::Changes | Kind::Buildinfo) {
            return false;
        }
        let is_source = matches!(self.kind, Kind::Dsc | Kind::Source);
        let pkg_ok = packages.is_none_or(|ps| {
            ps.iter()
                .any(|p| (p == "source" && is_source) || self.package.as_deref() == Some(p))
        });
        let arch_ok = architectures.is_none_or(|arches| {
            arches
                .iter()
                .any(|a| (a == "source" && is_source) || self.architecture.as_deref() == Some(a))
        });
        pkg_ok && arch_ok
    }
}

/// What adding a file to a manifest found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// The entry is new.
    Added,
    /// The same file was there already with identical bytes; `ours` when it
    /// came from this very upload (a retried or duplicated event).
    Same { ours: bool },
    /// Different bytes under that name, or the bundle version in the pool has
    /// another epoch: the reason.
    Conflict(String),
    /// A purge is deleting that file now: try again once it has ended.
    Purging,
}

/// Reads a manifest and its ETag; `None` if the bundle version has none yet.
pub async fn load(
    store: &dyn ObjectStore,
    pool_dir: &str,
) -> Result<Option<(Manifest, String)>, StoreError> {
    let key = manifest_key(pool_dir);
    match store.get_limited(&key, crate::limits::MANIFEST).await {
        Ok((body, meta)) => {
            let m = Manifest::from_json(&body).map_err(|e| StoreError::Permanent {
                key: key.clone(),
                source: e.into(),
            })?;
            Ok(Some((m, meta.etag)))
        }
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Compares a file with what the manifest holds, without changing anything.
pub fn compare(m: &Manifest, version: &str, name: &str, file: &ManifestFile) -> Option<Added> {
    if m.version != version {
        return Some(Added::Conflict(format!(
            "the pool already holds {} {} in this directory; versions that differ only in epoch cannot both be stored",
            m.bundle, m.version
        )));
    }
    if m.purging.contains_key(name) {
        return Some(Added::Purging);
    }
    let existing = m.files.get(name)?;
    Some(if existing.digests.sha256 == file.digests.sha256 {
        Added::Same {
            ours: existing.upload == file.upload,
        }
    } else {
        Added::Conflict(format!(
            "{name} {} is already in the pool with different contents (sha256 {}, this upload {}); published files never change",
            m.bundle, existing.digests.sha256, file.digests.sha256
        ))
    })
}

/// Adds one file to a bundle version's manifest, creating it if need be.
pub async fn add(
    store: &dyn ObjectStore,
    pool_dir: &str,
    identity: (&str, &str, &str),
    name: &str,
    file: &ManifestFile,
) -> Result<Added, StoreError> {
    let (bundle, version, component) = identity;
    let key = manifest_key(pool_dir);
    let mut backoff = Backoff::new(&key);
    loop {
        let current = load(store, pool_dir).await?;
        let (mut m, opts) = match current {
            Some((m, etag)) => {
                if let Some(found) = compare(&m, version, name, file) {
                    return Ok(found);
                }
                (m, PutOptions::if_match(etag))
            }
            None => (
                Manifest {
                    bundle: bundle.to_string(),
                    version: version.to_string(),
                    component: component.to_string(),
                    files: BTreeMap::new(),
                    purging: BTreeMap::new(),
                },
                PutOptions::create_only(),
            ),
        };
        m.files.insert(name.to_string(), file.clone());
        let body = serde_json::to_vec_pretty(&m).map_err(|e| StoreError::Permanent {
            key: key.clone(),
            source: Box::new(e),
        })?;
        let opts = PutOptions {
            content_type: Some("application/json".into()),
            ..opts
        };
        match store.put(&key, Bytes::from(body), opts).await {
            Ok(_) => return Ok(Added::Added),
            Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {
                // Someone else changed it first: read again and retry.
                tokio::time::sleep(backoff.next_pause()).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Drops entries from a bundle version's manifest (remove), by
/// compare-and-swap. The manifest stays, possibly empty, so that a concurrent
/// upload's compare-and-swap never races a delete. Returns how many entries
/// went.
pub async fn drop_files(
    store: &dyn ObjectStore,
    pool_dir: &str,
    names: &[String],
) -> Result<usize, StoreError> {
    change(store, pool_dir, |m| {
        let before = m.files.len();
        m.files.retain(|name, _| !names.contains(name));
        before - m.files.len()
    })
    .await
}

/// The first step of a purge: the entries leave `files` for `purging`, so
/// that an identical upload arriving while the files are deleted waits
/// ([`Added::Purging`]) instead of being recorded over a file about to go.
pub async fn begin_purge(
    store: &dyn ObjectStore,
    pool_dir: &str,
    names: &[String],
    at: &str,
) -> Result<usize, StoreError> {
    change(store, pool_dir, |m| {
        let mut n = 0;
        for name in names {
            if m.files.remove(name).is_some() || !m.purging.contains_key(name) {
                m.purging.insert(name.clone(), at.to_string());
                n += 1;
            }
        }
        n
    })
    .await
}

/// The last step of a purge, once the files are deleted everywhere: the
/// names may be uploaded again.
pub async fn end_purge(
    store: &dyn ObjectStore,
    pool_dir: &str,
    names: &[String],
) -> Result<usize, StoreError> {
    change(store, pool_dir, |m| {
        let before = m.purging.len();
        m.purging.retain(|name, _| !names.contains(name));
        before - m.purging.len()
    })
    .await
}

/// Applies `f` to a manifest by compare-and-swap, retrying on a concurrent
/// change; `f` says how many entries it changed (0: nothing is written).
async fn change(
    store: &dyn ObjectStore,
    pool_dir: &str,
    mut f: impl FnMut(&mut Manifest) -> usize,
) -> Result<usize, StoreError> {
    let key = manifest_key(pool_dir);
    let mut backoff = Backoff::new(&key);
    loop {
        let Some((mut m, etag)) = load(store, pool_dir).await? else {
            return Ok(0);
        };
        let changed = f(&mut m);
        if changed == 0 {
            return Ok(0);
        }
        let body = serde_json::to_vec_pretty(&m).map_err(|e| StoreError::Permanent {
            key: key.clone(),
            source: Box::new(e),
        })?;
        let opts = PutOptions {
            content_type: Some("application/json".into()),
            ..PutOptions::if_match(etag)
        };
        match store.put(&key, Bytes::from(body), opts).await {
            Ok(_) => return Ok(changed),
            Err(StoreError::PreconditionFailed { .. }) => {
                tokio::time::sleep(backoff.next_pause()).await;
            }
            Err(e) => return Err(e),
        }
    }
}
