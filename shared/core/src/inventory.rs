//! What a repository holds, for people and scripts (`raptr list`, `show`,
//! `search`): read from the link state and the manifests alone, never from
//! the published indices.
//!
//! The link state says which files of which pool directory each
//! distribution links; file names carry the binary package and
//! architecture (`name_version_arch.deb`), so a listing of 100,000
//! packages reads the publish state and each distribution's 64 link
//! shards, nothing per package. Pool directories name the version without
//! its epoch (as Debian file names do): `list` and `search` show that
//! version, and `show`, which reads the bundle's manifests, the full one.

use std::collections::{BTreeMap, BTreeSet};

use raptr_formats::bundle::Kind;
use raptr_formats::layout::pool_prefix;
use raptr_store::{ObjectStore, StoreError};
use serde::Serialize;

use crate::config::Config;
use crate::manifest::{self, Manifest};
use crate::publish::state::State;

/// One bundle version linked in one distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Linked {
    pub distribution: String,
    pub component: String,
    pub bundle: String,
    /// As the pool directory names it: without an epoch.
    pub version: String,
    /// The binary packages linked, and `source` when the `.dsc` is.
    pub packages: Vec<String>,
    pub architectures: Vec<String>,
    /// The linked file names.
    pub files: Vec<String>,
}

/// The parts of a pool directory `pool/<component>/<prefix>/<bundle>/<version>`.
pub fn split_dir(dir: &str) -> Option<(&str, &str, &str)> {
    let mut it = dir.strip_prefix("pool/")?.split('/');
    let (component, _prefix, bundle, version) = (it.next()?, it.next()?, it.next()?, it.next()?);
    it.next().is_none().then_some((component, bundle, version))
}

/// `name_version_arch.deb` → (name, arch); `name_version.dsc` → (name, "source").
pub fn file_package(name: &str) -> Option<(&str, &str)> {
    if let Some(stem) = name
        .strip_suffix(".deb")
        .or_else(|| name.strip_suffix(".udeb"))
    {
        let mut it = stem.split('_');
        let (pkg, _ver, arch) = (it.next()?, it.next()?, it.next()?);
        return it.next().is_none().then_some((pkg, arch));
    }
    if name.ends_with(".dsc") {
        return Some(("source", "source"));
    }
    None
}

impl Linked {
    fn new(distribution: &str, dir: &str, files: &BTreeSet<String>) -> Option<Linked> {
        let (component, bundle, version) = split_dir(dir)?;
        let mut packages = BTreeSet::new();
        let mut architectures = BTreeSet::new();
        for f in files {
            if let Some((p, a)) = file_package(f) {
                packages.insert(p.to_string());
                architectures.insert(a.to_string());
            }
        }
        Some(Linked {
            distribution: distribution.to_string(),
            component: component.to_string(),
            bundle: bundle.to_string(),
            version: version.to_string(),
            packages: packages.into_iter().collect(),
            architectures: architectures.into_iter().collect(),
            files: files.iter().cloned().collect(),
        })
    }

    /// Whether `name` is this bundle's name or one of its binary packages'.
    pub fn names(&self, name: &str) -> bool {
        self.bundle == name || self.packages.iter().any(|p| p == name && p != "source")
    }
}

/// The repository's distributions: the configuration's, then any the link
/// state still holds (a distribution removed from the configuration).
pub fn distributions(config: &Config, state: &State) -> Vec<String> {
    let mut out: Vec<String> = config
        .primary_layout()
        .distributions
        .keys()
        .cloned()
        .collect();
    for d in state.links.dists() {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// Every component any distribution of the configuration has.
pub fn components(config: &Config) -> BTreeSet<String> {
    config
        .layouts
        .values()
        .flat_map(|l| l.distributions.values())
        .flat_map(|d| d.components.iter().cloned())
        .collect()
}

/// Everything the distributions named link, in distribution, bundle,
/// version order. Reads every shard of each distribution.
pub async fn linked(
    store: &dyn ObjectStore,
    state: &mut State,
    dists: &[String],
) -> Result<Vec<Linked>, StoreError> {
    let mut out = Vec::new();
    for dist in dists {
        state.links.load_dist(store, dist).await?;
        if let Some(dirs) = state.links.get(dist) {
            out.extend(
                dirs.iter()
                    .filter(|(_, files)| !files.is_empty())
                    .filter_map(|(dir, files)| Linked::new(dist, dir, files)),
            );
        }
    }
    Ok(out)
}

/// What snapshot `name` of `dist` links, as [`linked`] gives it (the
/// distribution of each row is the snapshot's suite path, `DIST/_NAME`).
pub async fn snapshot_linked(
    store: &dyn ObjectStore,
    state: &mut State,
    dist: &str,
    name: &str,
) -> Result<Vec<Linked>, StoreError> {
    let id = crate::snapshot::id(dist, name);
    state.frozen.load_dist(store, &id).await?;
    let suite = crate::snapshot::suite_path(dist, name);
    Ok(state
        .frozen
        .get(&id)
        .into_iter()
        .flatten()
        .filter(|(_, files)| !files.is_empty())
        .filter_map(|(dir, files)| Linked::new(&suite, dir, files))
        .collect())
}

/// One version of a bundle in the pool, with where it is linked.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub bundle: String,
    /// With its epoch, as the manifest records it.
    pub version: String,
    pub component: String,
    pub pool_dir: String,
    pub files: Vec<PoolFile>,
    /// distribution → the file names it links.
    pub linked_in: BTreeMap<String, Vec<String>>,
    /// The earliest upload of its files, and who sent them.
    pub uploaded_at: Option<String>,
    pub uploaders: Vec<String>,
    /// snapshot suite (`DIST/_NAME`) → the file names it links.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub in_snapshots: BTreeMap<String, Vec<String>>,
    /// Files no distribution links: since when, and from when the next
    /// purge deletes them (the grace period later).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unreferenced: BTreeMap<String, Unreferenced>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Unreferenced {
    pub since: String,
    pub purge_after: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolFile {
    pub name: String,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    pub size: u64,
    pub sha256: String,
    pub uploader: String,
    pub uploaded_at: String,
}

/// Every version of `bundle` in the pool, in every component, oldest
/// first, with where each is linked. Reads the bundle's directories, its
/// manifests, and one link shard per distribution and component.
pub async fn versions(
    store: &dyn ObjectStore,
    config: &Config,
    state: &mut State,
    bundle: &str,
) -> Result<Vec<Version>, StoreError> {
    let mut manifests: Vec<(String, Manifest)> = Vec::new();
    for component in components(config) {
        let base = format!("pool/{component}/{}/{bundle}/", pool_prefix(bundle));
        for obj in store.list(&base).await? {
            let Some(dir) = obj.key.strip_suffix("/manifest.json") else {
                continue;
            };
            if dir[base.len()..].contains('/') {
                continue;
            }
            if let Some((m, _)) = manifest::load(store, dir).await? {
                if m.bundle == bundle {
                    manifests.push((dir.to_string(), m));
                }
            }
        }
    }
    state
        .links
        .load_dirs(store, manifests.iter().map(|(d, _)| d.as_str()))
        .await?;
    state
        .frozen
        .load_dirs(store, manifests.iter().map(|(d, _)| d.as_str()))
        .await?;
    let mut out = Vec::new();
    for (dir, m) in manifests {
        let mut in_snapshots = BTreeMap::new();
        for id in state.frozen.dists() {
            let Some((d, n)) = crate::snapshot::split_id(&id) else {
                continue;
            };
            if let Some(files) = state.frozen.get(&id).and_then(|x| x.get(&dir)) {
                if !files.is_empty() {
                    in_snapshots.insert(
                        crate::snapshot::suite_path(d, n),
                        files.iter().cloned().collect(),
                    );
                }
            }
        }
        let mut linked_in = BTreeMap::new();
        for dist in state.links.dists() {
            if let Some(files) = state.links.get(&dist).and_then(|d| d.get(&dir)) {
                if !files.is_empty() {
                    linked_in.insert(dist, files.iter().cloned().collect());
                }
            }
        }
        let files: Vec<PoolFile> = m
            .files
            .iter()
            .map(|(name, f)| PoolFile {
                name: name.clone(),
                kind: f.kind,
                package: f.package.clone(),
                architecture: f.architecture.clone(),
                size: f.digests.size,
                sha256: f.digests.sha256.clone(),
                uploader: f.uploader.clone(),
                uploaded_at: f.uploaded_at.clone(),
            })
            .collect();
        let uploaded_at = files.iter().map(|f| f.uploaded_at.clone()).min();
        let uploaders: BTreeSet<String> = files.iter().map(|f| f.uploader.clone()).collect();
        let grace = u64::from(config.retention.grace_period_hours) * 3_600_000;
        // By the state, not the manifest: a removed version's manifest no
        // longer names its files, but they wait for purge all the same.
        let prefix = format!("{dir}/");
        let unreferenced = state
            .unreferenced
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, since)| {
                (
                    k[prefix.len()..].to_string(),
                    Unreferenced {
                        since: crate::time::rfc3339(*since),
                        purge_after: crate::time::rfc3339(since + grace),
                    },
                )
            })
            .collect();
        out.push(Version {
            bundle: m.bundle.clone(),
            version: m.version.clone(),
            component: m.component.clone(),
            pool_dir: dir,
            files,
            linked_in,
            in_snapshots,
            uploaded_at,
            uploaders: uploaders.into_iter().collect(),
            unreferenced,
        });
    }
    out.sort_by(|a, b| {
        let va = raptr_formats::version::Version::parse(&a.version);
        let vb = raptr_formats::version::Version::parse(&b.version);
        match (va, vb) {
            (Ok(va), Ok(vb)) => va.cmp(&vb),
            _ => a.version.cmp(&b.version),
        }
        .then_with(|| a.component.cmp(&b.component))
    });
    Ok(out)
}

/// A shell-style pattern (`*` any run, `?` one character) matched against
/// the whole name; a pattern with neither matches as a substring.
pub fn matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return name.contains(pattern);
    }
    glob(pattern, name)
}

/// Whether `name` is `pattern`, where `*` stands for any run of characters
/// and `?` for one.
pub fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        // Iterative glob with one backtrack point: linear in practice.
        let (mut pi, mut ni) = (0, 0);
        let (mut star, mut mark) = (None, 0);
        while ni < n.len() {
            if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
                pi += 1;
                ni += 1;
            } else if pi < p.len() && p[pi] == b'*' {
                star = Some(pi);
                mark = ni;
                pi += 1;
            } else if let Some(s) = star {
                pi = s + 1;
                mark += 1;
                ni = mark;
            } else {
                return false;
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_dirs_and_file_names_taken_apart() {
        assert_eq!(
            split_dir("pool/main/h/hello/1.0-1"),
            Some(("main", "hello", "1.0-1"))
        );
        assert_eq!(split_dir("pool/main/h/hello"), None);
        assert_eq!(split_dir("pool/main/h/hello/1.0-1/x"), None);
        assert_eq!(
            file_package("hello-doc_1.0-1_all.deb"),
            Some(("hello-doc", "all"))
        );
        assert_eq!(file_package("hello_1.0-1.dsc"), Some(("source", "source")));
        assert_eq!(file_package("hello_1.0.orig.tar.gz"), None);
        assert_eq!(file_package("odd_name.deb"), None);
    }

    #[test]
    fn patterns_match_whole_names_or_substrings() {
        assert!(matches("ell", "hello"));
        assert!(!matches("xyz", "hello"));
        assert!(matches("h*", "hello"));
        assert!(!matches("h*x", "hello"));
        assert!(matches("*-doc", "hello-doc"));
        assert!(!matches("*-doc", "hello-docs"));
        assert!(matches("h?llo", "hello"));
        assert!(matches("lib*-dev", "libfoo-dev"));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*a*b", "xxaxxbxx"));
    }

    #[test]
    fn linked_rows_name_packages_and_architectures() {
        let files: BTreeSet<String> = [
            "hello_1.0-1_amd64.deb",
            "hello-doc_1.0-1_all.deb",
            "hello_1.0-1.dsc",
            "hello_1.0.orig.tar.gz",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let row =
            Linked::new("stable", "pool/main/h/hello/1.0-1", &files).expect("a pool directory");
        assert_eq!(row.packages, ["hello", "hello-doc", "source"]);
        assert_eq!(row.architectures, ["all", "amd64", "source"]);
        assert!(row.names("hello-doc"));
        assert!(row.names("hello"));
        assert!(!row.names("source"));
    }
}
