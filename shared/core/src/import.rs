//! Importing from another APT archive (`http(s)://`, `file:`, `s3://`: any
//! [`ObjectStore`] over its base): what its signature vouches for comes in
//! as bundles under raptr's own rules, and nothing else.
//!
//! 1. The Release: `InRelease`, else `Release` with `Release.gpg`, checked
//!    against the keyring the user names ([`Keyring`]); an unsigned or
//!    badly signed upstream is refused unless the source says
//!    `allow_unsigned` (and then only an unsigned one: a bad signature is
//!    never accepted).
//! 2. The indices it lists (`.xz`, else `.gz`, else plain; by hash when it
//!    offers `Acquire-By-Hash`), each checked against the Release's size and
//!    SHA-256 before it is read, decompressed within a bound.
//! 3. The selection: components, architectures (`all` comes with each),
//!    package name patterns, the newest N versions of each package, and the
//!    source packages of what was selected when asked.
//! 4. Each file not already in the pool with the same bytes is streamed to
//!    `imports/<dist>/<component>/<upstream>-<source>_<version>/`, its
//!    SHA-256 and size checked on the way; a file that does not match its
//!    index is deleted and counted as refused. A checked file is handed to
//!    ingest like an upload ([`Ingest::handle`]): validation, immutability
//!    (same version, other bytes: rejected with a report), manifests, the
//!    journal and reports (`reports/imports/...`) are the uploads' own, and
//!    the bundle is linked into the distribution the import names.
//!
//! A second run reads the Release; when its bytes are the ones the last
//! complete run saw (`state/imports/<upstream>.json`), it stops there. A
//! run stopped anywhere goes on where it stopped: files already in the pool
//! are not fetched again.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use raptr_formats::archive::{self, BinaryEntry, Compression, Release, SourceEntry};
use raptr_formats::control::{Mode, Paragraphs};
use raptr_formats::layout::pool_dir;
use raptr_formats::Version;
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use crate::ingest::{Ingest, ObjectEvent};
use crate::keys::IMPORTS;
use crate::progress::{self, Progress};
use crate::signing::keyring::Keyring;

/// The largest Release or InRelease read.
pub const MAX_RELEASE: u64 = 64 << 20;
/// The largest compressed index read (Debian's largest is under 20 MB).
pub const MAX_INDEX: u64 = 512 << 20;
/// The largest index once decompressed.
pub const MAX_INDEX_TEXT: u64 = 2 << 30;

/// Where an import's progress is kept.
pub const STATE_PREFIX: &str = "state/imports/";

/// An upstream archive and what to take from it.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Names it in upload folders, reports and its progress record.
    pub name: String,
    /// The archive's base (the directory holding `dists/` and `pool/`, or
    /// a flat archive's directory).
    pub store: Arc<dyn ObjectStore>,
    /// The suite (`dists/<suite>/`); `None` for a flat archive.
    pub suite: Option<String>,
    /// Components to take (empty: every one the Release lists).
    pub components: Vec<String>,
    /// Architectures to take (empty: every one the Release lists); `all`
    /// packages come with each.
    pub architectures: Vec<String>,
    /// The keys its Release must be signed by.
    pub keyring: Option<Keyring>,
    /// Accept an upstream without any signature (never a bad one).
    pub allow_unsigned: bool,
    /// Package name patterns (`*` and `?`); empty: every package.
    pub packages: Vec<String>,
    /// Also the source packages of what is taken.
    pub sources: bool,
    /// Only the newest N versions of each package and architecture.
    pub newest: Option<usize>,
    /// Also what the selected packages depend on (`Depends`,
    /// `Pre-Depends`), resolved within the indices read.
    pub dependencies: bool,
}

/// Where the import lands.
#[derive(Debug, Clone)]
pub struct Target {
    pub distribution: String,
    /// The component for everything (default: the upstream component of
    /// the same name, else the distribution's only component).
    pub component: Option<String>,
    /// How many bundles are handled at once: [`CONCURRENCY`] suits a
    /// bucket, whose requests wait on the network; 1 suits a directory,
    /// whose writes queue on one lock and the disk's syncs.
    pub concurrency: usize,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// The Release was the one the last complete run saw: nothing else read.
    pub unchanged: bool,
    /// Binary and source packages selected.
    pub selected: usize,
    /// Files fetched, checked and handed to ingest.
    pub fetched: usize,
    pub bytes: u64,
    /// Files the pool already had with the same bytes.
    pub present: usize,
    /// Files refused, with why (a hash or size that does not match the
    /// index, the same name and version in the pool with other bytes, an
    /// ingest rejection).
    pub refused: Vec<String>,
    /// Bundles (source, version) touched.
    pub bundles: usize,
    /// Files left for the next run: the deadline came first. The next run
    /// starts where this one stopped.
    pub remaining: usize,
    /// Binary packages selected as dependencies of the others.
    #[serde(default)]
    pub dependencies: usize,
    /// Dependencies nothing in the indices read satisfies (`package version:
    /// relation`), the first [`MAX_UNRESOLVED`]; apt must find them
    /// elsewhere.
    #[serde(default)]
    pub unresolved: Vec<String>,
    /// How many there are in all.
    #[serde(default)]
    pub unresolved_count: usize,
}

/// How many unresolved dependencies a summary lists.
pub const MAX_UNRESOLVED: usize = 50;

impl Summary {
    /// Whether everything selected was handled (or nothing needed doing).
    pub fn complete(&self) -> bool {
        self.remaining == 0
    }
}

/// An import's failure: nothing past the point it names was done.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The upstream's signature, Release or an index is not what it must
    /// be: nothing was fetched past it.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
}

type Result<T, E = ImportError> = std::result::Result<T, E>;

/// What the last complete run of an upstream saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Seen {
    release_sha256: String,
    /// What was asked of it (filters and target): another selection from
    /// the same Release is new work.
    #[serde(default)]
    selection: String,
    complete: bool,
    /// How many of the run's files (in their fixed order) were handled when
    /// it stopped short: a run over the same Release and selection skips
    /// them without asking the pool.
    #[serde(default)]
    handled: usize,
    /// What those files refused, carried to the run that finishes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    refused: Vec<String>,
    /// When it was written (milliseconds since the epoch).
    #[serde(default)]
    updated_ms: u64,
}

/// What the last run of upstream `name` left: whether it finished, and
/// when (`None`: never run).
pub async fn last_run(store: &dyn ObjectStore, name: &str) -> Result<Option<(bool, u64)>> {
    Ok(read_seen(store, name)
        .await?
        .map(|s| (s.complete, s.updated_ms)))
}

async fn read_seen(store: &dyn ObjectStore, name: &str) -> Result<Option<Seen>> {
    match store
        .get_limited(&format!("{STATE_PREFIX}{name}.json"), 1 << 20)
        .await
    {
        Ok((b, _)) => Ok(Some(serde_json::from_slice(&b).unwrap_or_default())),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn write_seen(store: &dyn ObjectStore, name: &str, seen: &Seen) -> Result<()> {
    let body = serde_json::to_vec(seen).unwrap_or_default();
    store
        .put(
            &format!("{STATE_PREFIX}{name}.json"),
            body.into(),
            PutOptions::default(),
        )
        .await?;
    Ok(())
}

/// One file to have.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    /// Upstream path (relative to the base).
    path: String,
    /// The file name in the pool.
    name: String,
    size: u64,
    sha256: String,
    /// Upstream component.
    component: String,
    source: String,
    version: Version,
}

impl Upstream {
    fn dists(&self) -> String {
        match &self.suite {
            Some(s) => format!("dists/{s}/"),
            None => String::new(),
        }
    }

    /// The Release, verified (or accepted unsigned when allowed), and the
    /// SHA-256 of the bytes it came in.
    pub async fn release(&self) -> Result<(Release, String)> {
        let base = self.dists();
        let store = self.store.as_ref();
        let refuse = |why: String| ImportError::Refused(format!("{}: {why}", self.name));
        let (text, raw) = match store
            .get_limited(&format!("{base}InRelease"), MAX_RELEASE)
            .await
        {
            Ok((body, _)) => {
                let doc = String::from_utf8(body.to_vec())
                    .map_err(|_| refuse(format!("{base}InRelease is not text")))?;
                let parsed = raptr_formats::signed::strip_signature(&doc)
                    .map_err(|e| refuse(format!("{base}InRelease: {}", e.0)))?;
                match &self.keyring {
                    Some(k) => {
                        k.verify_document(&doc, &parsed.text).map_err(|e| {
                            refuse(format!("{base}InRelease is not signed by the keyring: {e}"))
                        })?;
                    }
                    None if self.allow_unsigned => {}
                    None => {
                        return Err(refuse(
                            "no keyring to check its signature against; name one (or allow this upstream unsigned)".into(),
                        ))
                    }
                }
                (parsed.text, body)
            }
            Err(StoreError::NotFound { .. }) => {
                let (body, _) = store
                    .get_limited(&format!("{base}Release"), MAX_RELEASE)
                    .await?;
                let text = String::from_utf8(body.to_vec())
                    .map_err(|_| refuse(format!("{base}Release is not text")))?;
                let sig = match store
                    .get_limited(&format!("{base}Release.gpg"), MAX_RELEASE)
                    .await
                {
                    Ok((sig, _)) => Some(sig),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                };
                match (&self.keyring, sig) {
                    (Some(k), Some(sig)) => {
                        k.verify_detached(text.as_bytes(), &sig).map_err(|e| {
                            refuse(format!("{base}Release.gpg does not verify with the keyring: {e}"))
                        })?;
                    }
                    (Some(_), None) if !self.allow_unsigned => {
                        return Err(refuse(format!(
                            "{base}Release is not signed (no InRelease, no Release.gpg)"
                        )))
                    }
                    (None, _) if !self.allow_unsigned => {
                        return Err(refuse(
                            "no keyring to check its signature against; name one (or allow this upstream unsigned)".into(),
                        ))
                    }
                    _ => {}
                }
                (text, body)
            }
            Err(e) => return Err(e.into()),
        };
        let release =
            archive::parse_release(&text).map_err(|e| refuse(format!("{base}Release: {e}")))?;
        Ok((release, raptr_formats::hash::hex(&Sha256::digest(&raw))))
    }

    /// An index's paragraphs, its bytes checked against the Release first:
    /// the compressed bytes are held (at most [`MAX_INDEX`]), the text is
    /// decompressed and parsed as the caller takes each paragraph.
    async fn index(&self, release: &Release, base: &str) -> Result<Option<Stanzas>> {
        let Some((path, listed, compression)) = release.index(base) else {
            return Ok(None);
        };
        let refuse = |why: String| ImportError::Refused(format!("{}: {why}", self.name));
        if listed.size > MAX_INDEX {
            return Err(refuse(format!(
                "{path}: {} bytes, more than {MAX_INDEX}",
                listed.size
            )));
        }
        let dists = self.dists();
        let mut body = None;
        if release.by_hash {
            match self
                .store
                .get_limited(
                    &format!("{dists}{}", Release::by_hash_path(&path, &listed.sha256)),
                    listed.size,
                )
                .await
            {
                Ok((b, _)) => body = Some(b),
                Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let body = match body {
            Some(b) => b,
            None => match self
                .store
                .get_limited(&format!("{dists}{path}"), listed.size)
                .await
            {
                Ok((b, _)) => b,
                Err(StoreError::TooLarge { .. }) => {
                    return Err(refuse(format!("{path} is larger than its Release says")))
                }
                Err(e) => return Err(e.into()),
            },
        };
        let sha = raptr_formats::hash::hex(&Sha256::digest(&body));
        if body.len() as u64 != listed.size || sha != listed.sha256 {
            return Err(refuse(format!(
                "{path} does not match its Release ({} bytes, SHA-256 {sha}; the Release says {} bytes, {})",
                body.len(),
                listed.size,
                listed.sha256
            )));
        }
        let reader: Box<dyn Read + Send> = match compression {
            Compression::None => Box::new(std::io::Cursor::new(body)),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
                body,
            ))),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(
                std::io::Cursor::new(body),
            )),
        };
        let capped = std::io::BufReader::new(reader.take(MAX_INDEX_TEXT));
        Ok(Some(Paragraphs::new(capped, Mode::Lenient)))
    }
}

/// The suites a published archive serves: each `dists/<suite>/` holding a
/// `Release` or an `InRelease`, in name order. The store must be listable
/// (a directory or a bucket; an archive over HTTP is not).
pub async fn suites(store: &dyn ObjectStore) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    for o in store.list("dists/").await? {
        let Some(rest) = o.key.strip_prefix("dists/") else {
            continue;
        };
        if let Some((suite, file)) = rest.split_once('/') {
            if matches!(file, "Release" | "InRelease") && !suite.is_empty() {
                out.insert(suite.to_string());
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// Adds to `selected` what its packages depend on, found in `universe`
/// (the other packages of the indices read), and what those depend on in
/// turn. A group of alternatives already satisfied by a selected package,
/// by name or by `Provides`, adds nothing; otherwise the first alternative
/// something satisfies adds its newest satisfying version. An
/// `Architecture: all` package's dependencies are resolved for each
/// architecture taken. Returns the groups nothing satisfies.
fn resolve(
    selected: &mut Vec<(String, BinaryEntry)>,
    universe: Vec<(String, BinaryEntry)>,
    arches: &[String],
) -> BTreeSet<String> {
    use std::collections::HashMap;
    let first = selected.len();
    let mut pool = std::mem::take(selected);
    let mut paths: BTreeSet<String> = pool.iter().map(|(_, e)| e.filename.clone()).collect();
    pool.extend(
        universe
            .into_iter()
            .filter(|(_, e)| paths.insert(e.filename.clone())),
    );
    let mut chosen = vec![false; pool.len()];
    chosen[..first].fill(true);
    let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut providers: HashMap<String, Vec<(usize, Option<Version>)>> = HashMap::new();
    for (i, (_, e)) in pool.iter().enumerate() {
        by_name.entry(e.package.as_str()).or_default().push(i);
        for p in &e.provides {
            for a in archive::alternatives(p) {
                let version = match a.relation {
                    Some((archive::Op::Eq, v)) => Some(v),
                    _ => None,
                };
                providers.entry(a.name).or_default().push((i, version));
            }
        }
    }
    let candidates = |alt: &archive::Alternative, arch: &str| -> Vec<usize> {
        let fits = |i: usize| pool[i].1.architecture == arch || pool[i].1.architecture == "all";
        let wanted = |have: Option<&Version>| match (&alt.relation, have) {
            (None, _) => true,
            (Some((op, want)), Some(have)) => op.holds(have, want),
            (Some(_), None) => false,
        };
        let real = by_name
            .get(alt.name.as_str())
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| fits(i) && wanted(Some(&pool[i].1.version)));
        let virtual_ = providers
            .get(&alt.name)
            .into_iter()
            .flatten()
            .filter(|(i, v)| fits(*i) && wanted(v.as_ref()))
            .map(|(i, _)| *i);
        real.chain(virtual_).collect()
    };
    let mut unresolved = BTreeSet::new();
    let mut queue: Vec<usize> = (0..first).collect();
    while let Some(i) = queue.pop() {
        let e = &pool[i].1;
        let contexts: Vec<&str> = if e.architecture == "all" {
            arches.iter().map(String::as_str).collect()
        } else {
            vec![e.architecture.as_str()]
        };
        for group in &e.depends {
            let alts = archive::alternatives(group);
            for arch in &contexts {
                let found: Vec<Vec<usize>> = alts.iter().map(|a| candidates(a, arch)).collect();
                if found.iter().flatten().any(|&j| chosen[j]) {
                    continue;
                }
                let pick = found.iter().find_map(|c| {
                    c.iter()
                        .copied()
                        .max_by(|x, y| pool[*x].1.version.cmp(&pool[*y].1.version))
                });
                match pick {
                    Some(j) => {
                        chosen[j] = true;
                        queue.push(j);
                    }
                    None => {
                        unresolved.insert(format!("{} {}: {group}", e.package, e.version));
                    }
                }
            }
        }
    }
    *selected = pool
        .into_iter()
        .zip(chosen)
        .filter_map(|(p, c)| c.then_some(p))
        .collect();
    unresolved
}

/// The paragraphs of an index, parsed as they are read.
type Stanzas = Paragraphs<std::io::BufReader<std::io::Take<Box<dyn Read + Send>>>>;

/// Whether `name` matches one of `patterns` (all when there are none).
fn picked(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| crate::inventory::glob(p, name))
}

/// How often a long run records how far it is, in files: a run killed
/// between two records does at most this many manifest reads again.
const CHECKPOINT_EVERY: usize = 200;

/// Imports from `upstream` into `target`, through `ingest` (whose store is
/// the repository's). `progress` hears how far long work is. Files are
/// handled a round of up to [`CONCURRENCY`] bundles at once (each bundle's
/// files in order). Past `deadline` (checked between rounds, after at
/// least one) the run records where it stopped and returns with
/// [`Summary::remaining`] set.
pub async fn run(
    upstream: &Upstream,
    target: &Target,
    ingest: &Ingest,
    store: &dyn ObjectStore,
    config: &crate::config::Config,
    progress: Option<&Progress>,
    deadline: Option<std::time::Instant>,
) -> Result<Summary> {
    let mut summary = Summary::default();
    let refuse = |why: String| ImportError::Refused(format!("{}: {why}", upstream.name));
    if !crate::config::valid_name(&upstream.name) {
        return Err(refuse(
            "not a usable upstream name (lowercase letters, digits, .+-_)".into(),
        ));
    }
    let Some(dist) = config
        .primary_layout()
        .distributions
        .get(&target.distribution)
    else {
        return Err(refuse(format!(
            "no distribution {} in this repository",
            target.distribution
        )));
    };
    let (release, release_sha) = upstream.release().await?;
    let seen = read_seen(store, &upstream.name).await?.unwrap_or_default();
    let selection = format!(
        "{:?} {:?} {:?} {} {:?} {} {:?}{}",
        upstream.components,
        upstream.architectures,
        upstream.packages,
        upstream.sources,
        upstream.newest,
        target.distribution,
        target.component,
        if upstream.dependencies {
            " dependencies"
        } else {
            ""
        }
    );
    if seen.complete && seen.release_sha256 == release_sha && seen.selection == selection {
        summary.unchanged = true;
        return Ok(summary);
    }
    let components: Vec<String> = match (&upstream.suite, upstream.components.is_empty()) {
        (None, _) => vec![String::new()],
        (Some(_), true) => release.components.clone(),
        (Some(_), false) => upstream.components.clone(),
    };
    let arches: Vec<String> = if upstream.architectures.is_empty() {
        release
            .architectures
            .iter()
            .filter(|a| *a != "all")
            .cloned()
            .collect()
    } else {
        upstream.architectures.clone()
    };
    // Binary packages, per upstream component.
    let mut binaries: Vec<(String, BinaryEntry)> = Vec::new();
    // What dependencies may be resolved to: the rest of the indices read.
    let mut universe: Vec<(String, BinaryEntry)> = Vec::new();
    for comp in &components {
        for arch in &arches {
            let base = if comp.is_empty() {
                "Packages".to_string()
            } else {
                format!("{comp}/binary-{arch}/Packages")
            };
            let Some(stanzas) = upstream.index(&release, &base).await? else {
                continue;
            };
            for p in stanzas {
                let p = p.map_err(|e| refuse(format!("{base}: {e}")))?;
                let e = archive::binary_entry(&p).map_err(|e| refuse(format!("{base}: {e}")))?;
                // A flat archive's one index holds every architecture.
                let fits = e.architecture == *arch
                    || e.architecture == "all"
                    || comp.is_empty() && arches.contains(&e.architecture);
                if !fits {
                    continue;
                }
                if picked(&upstream.packages, &e.package) {
                    binaries.push((comp.clone(), e));
                } else if upstream.dependencies {
                    universe.push((comp.clone(), e));
                }
            }
            // A flat archive's one index holds every architecture.
            if comp.is_empty() {
                break;
            }
        }
    }
    // The newest N of each package and architecture.
    if let Some(n) = upstream.newest {
        let mut by: BTreeMap<(String, String), Vec<Version>> = BTreeMap::new();
        for (_, e) in &binaries {
            by.entry((e.package.clone(), e.architecture.clone()))
                .or_default()
                .push(e.version.clone());
        }
        let keep: BTreeSet<(String, String, Version)> = by
            .into_iter()
            .flat_map(|((p, a), mut vs)| {
                vs.sort();
                vs.dedup();
                vs.into_iter()
                    .rev()
                    .take(n)
                    .map(move |v| (p.clone(), a.clone(), v))
            })
            .collect();
        binaries.retain(|(_, e)| {
            keep.contains(&(e.package.clone(), e.architecture.clone(), e.version.clone()))
        });
    }
    if upstream.dependencies {
        let before = binaries.len();
        let unresolved = resolve(&mut binaries, universe, &arches);
        summary.dependencies = binaries.len() - before;
        summary.unresolved_count = unresolved.len();
        summary.unresolved = unresolved.into_iter().take(MAX_UNRESOLVED).collect();
    }
    let mut wanted: Vec<Wanted> = Vec::new();
    let mut seen_paths = BTreeSet::new();
    for (comp, e) in &binaries {
        if !seen_paths.insert(e.filename.clone()) {
            continue;
        }
        let name = e
            .filename
            .rsplit('/')
            .next()
            .unwrap_or(&e.filename)
            .to_string();
        wanted.push(Wanted {
            path: e.filename.clone(),
            name,
            size: e.size,
            sha256: e.sha256.clone(),
            component: comp.clone(),
            source: e.source.clone(),
            version: e.source_version.clone(),
        });
    }
    summary.selected = binaries.len();
    if upstream.sources {
        let want: BTreeSet<(String, Version)> = binaries
            .iter()
            .map(|(_, e)| (e.source.clone(), e.source_version.clone()))
            .collect();
        for comp in &components {
            let base = if comp.is_empty() {
                "Sources".to_string()
            } else {
                format!("{comp}/source/Sources")
            };
            let Some(stanzas) = upstream.index(&release, &base).await? else {
                continue;
            };
            for p in stanzas {
                let p = p.map_err(|e| refuse(format!("{base}: {e}")))?;
                let s: SourceEntry =
                    archive::source_entry(&p).map_err(|e| refuse(format!("{base}: {e}")))?;
                let by_name =
                    !upstream.packages.is_empty() && picked(&upstream.packages, &s.package);
                // With no name filter and no newest-N, every source package
                // comes (a migration takes sources without binaries too).
                let all = upstream.packages.is_empty() && upstream.newest.is_none();
                if !(want.contains(&(s.package.clone(), s.version.clone())) || by_name || all) {
                    continue;
                }
                summary.selected += 1;
                for (name, l) in &s.files {
                    let path = if s.directory.is_empty() {
                        name.clone()
                    } else {
                        format!("{}/{name}", s.directory)
                    };
                    if !seen_paths.insert(path.clone()) {
                        continue;
                    }
                    wanted.push(Wanted {
                        path,
                        name: name.clone(),
                        size: l.size,
                        sha256: l.sha256.clone(),
                        component: comp.clone(),
                        source: s.package.clone(),
                        version: s.version.clone(),
                    });
                }
            }
        }
    }
    // Source files before the .dsc that lists them, .debs after: a bundle's
    // folder settles as its last file arrives.
    wanted.sort_by_key(|w| {
        (
            w.source.clone(),
            w.version.clone(),
            w.name.ends_with(".dsc"),
            w.name.ends_with(".deb"),
            w.name.clone(),
        )
    });
    let bundles: BTreeSet<(String, Version)> = wanted
        .iter()
        .map(|w| (w.source.clone(), w.version.clone()))
        .collect();
    summary.bundles = bundles.len();
    let total = wanted.len();
    // A run that stopped short over this same Release and selection handled
    // its first files: they are not asked about again.
    let skip =
        if !seen.complete && seen.release_sha256 == release_sha && seen.selection == selection {
            summary.refused = seen.refused.clone();
            seen.handled.min(total)
        } else {
            0
        };
    let checkpoint = |handled: usize, refused: &[String]| Seen {
        release_sha256: release_sha.clone(),
        selection: selection.clone(),
        complete: false,
        handled,
        refused: refused.to_vec(),
        updated_ms: crate::time::now_ms(),
    };
    // The component each file lands in (an upstream component the target
    // lacks, with no --component, refuses the whole run here).
    let mut components_of = Vec::with_capacity(total);
    for w in &wanted {
        components_of.push(match &target.component {
            Some(c) => c.clone(),
            None if dist.components.contains(&w.component) => w.component.clone(),
            None => match &dist.components[..] {
                [only] => only.clone(),
                _ => {
                    return Err(refuse(format!(
                        "upstream component {:?} is not one of {}'s ({}): say which component to import into",
                        w.component,
                        target.distribution,
                        dist.components.join(", ")
                    )))
                }
            },
        });
    }
    let run = FileRun {
        upstream,
        target,
        ingest,
        store,
        links: tokio::sync::OnceCell::new(),
    };
    let mut relink: Relink = BTreeMap::new();
    let mut start = skip;
    let mut since_checkpoint = 0;
    while start < total {
        if start > skip && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            summary.remaining = total - start;
            link_present(upstream, target, ingest, store, &mut relink, &mut summary).await?;
            write_seen(store, &upstream.name, &checkpoint(start, &summary.refused)).await?;
            return Ok(summary);
        }
        // Up to CONCURRENCY bundles at once, each one's files in order.
        let mut groups = Vec::new();
        let mut end = start;
        while end < total && groups.len() < target.concurrency.max(1) {
            let key = (&wanted[end].source, &wanted[end].version);
            let from = end;
            while end < total && (&wanted[end].source, &wanted[end].version) == key {
                end += 1;
            }
            groups.push(from..end);
        }
        let results = futures_util::future::join_all(groups.into_iter().map(|r| {
            let run = &run;
            let wanted = &wanted;
            let components_of = &components_of;
            async move {
                let mut out = Vec::new();
                for i in r {
                    out.push(run.file(&wanted[i], &components_of[i]).await?);
                }
                Ok::<_, ImportError>(out)
            }
        }))
        .await;
        for r in results {
            for outcome in r? {
                match outcome {
                    FileOutcome::Present(None) => summary.present += 1,
                    FileOutcome::Present(Some((bundle, package, arch))) => {
                        summary.present += 1;
                        let (packages, arches) = relink.entry(bundle).or_default();
                        packages.insert(package);
                        arches.insert(arch);
                    }
                    FileOutcome::Fetched { size, refused } => {
                        summary.fetched += 1;
                        summary.bytes += size;
                        summary.refused.extend(refused);
                    }
                    FileOutcome::Refused(why) => summary.refused.push(why),
                }
            }
        }
        progress::tick(progress, || {
            format!("{}: {end} of {total} files handled", upstream.name)
        });
        since_checkpoint += end - start;
        start = end;
        if since_checkpoint >= CHECKPOINT_EVERY && start < total {
            since_checkpoint = 0;
            link_present(upstream, target, ingest, store, &mut relink, &mut summary).await?;
            write_seen(store, &upstream.name, &checkpoint(start, &summary.refused)).await?;
        }
    }
    link_present(upstream, target, ingest, store, &mut relink, &mut summary).await?;
    // A run with refusals is not complete: the next one looks at every file
    // again (an upstream may mend what it serves).
    let done = Seen {
        complete: summary.refused.is_empty(),
        ..checkpoint(0, &[])
    };
    write_seen(store, &upstream.name, &done).await?;
    Ok(summary)
}

/// Where the report of each mirror's last sync is kept:
/// `reports/mirrors/<name>.json`.
pub const MIRROR_REPORTS: &str = "reports/mirrors/";

/// How a mirror's sync ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncStatus {
    /// Its Release and selection are the ones the last complete sync saw.
    Unchanged,
    /// Everything selected is in the pool (files refused are listed).
    Complete,
    /// The time given ran out: the next sync goes on where this stopped.
    Partial,
    /// The upstream's signature, Release or an index is not what it must
    /// be: nothing was fetched past it.
    Refused,
    /// The upstream or the repository could not be read or written: the
    /// next sync tries again.
    Failed,
}

/// A mirror's sync, as `reports/mirrors/<name>.json` records it.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorReport {
    pub mirror: String,
    pub distribution: String,
    pub status: SyncStatus,
    /// When the sync ended (RFC 3339).
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub summary: Summary,
}

impl MirrorReport {
    /// Whether the sync left something to look at: a refusal, a failure or
    /// refused files.
    pub fn troubled(&self) -> bool {
        matches!(self.status, SyncStatus::Refused | SyncStatus::Failed)
            || !self.summary.refused.is_empty()
    }
}

impl crate::config::Mirror {
    /// This mirror as an import from `store` (its base), its Release
    /// checked against `keyring`.
    pub fn upstream(&self, store: Arc<dyn ObjectStore>, keyring: Option<Keyring>) -> Upstream {
        Upstream {
            name: self.name.clone(),
            store,
            suite: self.suite.clone(),
            components: self.components.clone(),
            architectures: self.architectures.clone(),
            keyring,
            allow_unsigned: self.allow_unsigned,
            packages: self.packages.clone(),
            sources: self.sources,
            newest: self.newest.map(|n| n as usize),
            dependencies: self.dependencies,
        }
    }

    /// Where it is imported, `concurrency` bundles at once.
    pub fn target(&self, concurrency: usize) -> Target {
        Target {
            distribution: self.distribution.clone(),
            component: self.component.clone(),
            concurrency,
        }
    }
}

/// The configuration's mirrors in the order a sync with little time should
/// take them: one a sync left unfinished first, then the longest unsynced.
pub async fn mirrors_in_turn<'a>(
    config: &'a crate::config::Config,
    store: &dyn ObjectStore,
) -> Result<Vec<&'a crate::config::Mirror>> {
    let mut order = Vec::new();
    for m in &config.mirrors {
        let (complete, when) = last_run(store, &m.name).await?.unwrap_or((true, 0));
        order.push((complete, when, m));
    }
    order.sort_by_key(|(complete, when, m)| (*complete, *when, m.name.clone()));
    Ok(order.into_iter().map(|(_, _, m)| m).collect())
}

/// Syncs one mirror: its keyring read through `keys`, its upstream opened
/// as `open` says (an error there is the sync's failure), the import run
/// until `deadline`, `concurrency` bundles at once, and the report written to
/// `reports/mirrors/<name>.json`. Only the report's own write can fail it.
#[allow(clippy::too_many_arguments)]
pub async fn sync_mirror(
    mirror: &crate::config::Mirror,
    open: std::result::Result<Arc<dyn ObjectStore>, String>,
    keys: &dyn crate::signing::load::Reader,
    ingest: &Ingest,
    store: &dyn ObjectStore,
    config: &crate::config::Config,
    progress: Option<&Progress>,
    deadline: Option<std::time::Instant>,
    concurrency: usize,
) -> std::result::Result<MirrorReport, StoreError> {
    let outcome = async {
        let upstream_store = open.map_err(ImportError::Refused)?;
        let keyring = match &mirror.keyring {
            None => None,
            Some(k) => Some(
                crate::signing::load::keyring(keys, k)
                    .await
                    .map_err(ImportError::Refused)?,
            ),
        };
        run(
            &mirror.upstream(upstream_store, keyring),
            &mirror.target(concurrency),
            ingest,
            store,
            config,
            progress,
            deadline,
        )
        .await
    }
    .await;
    let (status, reason, summary) = match outcome {
        Ok(s) if s.unchanged => (SyncStatus::Unchanged, None, s),
        Ok(s) if !s.complete() => (SyncStatus::Partial, None, s),
        Ok(s) => (SyncStatus::Complete, None, s),
        Err(ImportError::Refused(why)) => (SyncStatus::Refused, Some(why), Summary::default()),
        Err(e) => (
            SyncStatus::Failed,
            Some(raptr_formats::quote::line(&e.to_string()).into_owned()),
            Summary::default(),
        ),
    };
    let report = MirrorReport {
        mirror: mirror.name.clone(),
        distribution: mirror.distribution.clone(),
        status,
        time: crate::time::rfc3339(crate::time::now_ms()),
        reason,
        summary,
    };
    let body = serde_json::to_vec_pretty(&report).unwrap_or_default();
    store
        .put(
            &format!("{MIRROR_REPORTS}{}.json", mirror.name),
            body.into(),
            PutOptions::default(),
        )
        .await?;
    Ok(report)
}

/// How many bundles an import into a bucket handles at once: each file is
/// a few requests that wait on the network, not on the processor.
pub const CONCURRENCY: usize = 8;

/// What became of one file of an import.
enum FileOutcome {
    /// The pool has it with the same bytes; if the target does not link
    /// it, what to link: (component, source, version), package and
    /// architecture (`source` for a source package's files).
    Present(Option<((String, String, Version), String, String)>),
    /// Fetched, checked and handed to ingest; what ingest refused of it or
    /// of its folder.
    Fetched {
        size: u64,
        refused: Vec<String>,
    },
    Refused(String),
}

/// What every file of one run shares.
struct FileRun<'a> {
    upstream: &'a Upstream,
    target: &'a Target,
    ingest: &'a Ingest,
    store: &'a dyn ObjectStore,
    /// What the target links, read when a file is first found in the pool.
    links: tokio::sync::OnceCell<crate::publish::links::Dirs>,
}

impl FileRun<'_> {
    async fn file(&self, w: &Wanted, component: &str) -> Result<FileOutcome> {
        let (upstream, target, store) = (self.upstream, self.target, self.store);
        let dir = pool_dir(component, &w.source, &w.version);
        if let Some((m, _)) = crate::manifest::load(store, &dir).await? {
            if let Some(f) = m.files.get(&w.name) {
                if f.digests.sha256 != w.sha256 {
                    return Ok(FileOutcome::Refused(format!(
                        "{}: {dir}/{} is in the pool with other bytes; a version never changes",
                        w.path, w.name
                    )));
                }
                // In the pool already (another distribution's, an earlier
                // import's): linked here unless it is.
                let links = self
                    .links
                    .get_or_try_init(|| dist_links(store, &target.distribution))
                    .await?;
                if links.get(&dir).is_some_and(|files| files.contains(&w.name)) {
                    return Ok(FileOutcome::Present(None));
                }
                let is_source = matches!(
                    f.kind,
                    raptr_formats::bundle::Kind::Dsc | raptr_formats::bundle::Kind::Source
                );
                let (package, arch) = if is_source {
                    ("source".to_string(), "source".to_string())
                } else {
                    (
                        f.package.clone().unwrap_or_default(),
                        f.architecture.clone().unwrap_or_default(),
                    )
                };
                let bundle = (component.to_string(), w.source.clone(), w.version.clone());
                return Ok(FileOutcome::Present(Some((bundle, package, arch))));
            }
        }
        let folder = format!(
            "{IMPORTS}{}/{component}/{}",
            target.distribution,
            upload_id(&upstream.name, &w.source, &w.version)
        );
        let key = format!("{folder}/{}", w.name);
        let (body, _) = match upstream.store.get_stream(&w.path).await {
            Ok(got) => got,
            Err(StoreError::NotFound { .. }) => {
                return Ok(FileOutcome::Refused(format!(
                    "{}: listed by the index but not there",
                    w.path
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let (hashing, check) = Hashing::new(body, w.size);
        store
            .put_stream(&key, Box::pin(hashing), PutOptions::default())
            .await?;
        let (size, sha) = check.result();
        if size != w.size || sha != w.sha256 {
            let _ = store.delete(&key).await;
            return Ok(FileOutcome::Refused(format!(
                "{}: does not match its index ({size} bytes, SHA-256 {sha}; the index says {} bytes, {}); not stored",
                w.path, w.size, w.sha256
            )));
        }
        let outcome = self
            .ingest
            .handle(&ObjectEvent {
                key: key.clone(),
                uploader: format!("import:{}", upstream.name),
            })
            .await?;
        let mut refused = Vec::new();
        if outcome.status == Some(raptr_formats::bundle::Status::Rejected) {
            refused.push(format!(
                "{}: rejected: {}",
                w.path,
                outcome.reason.clone().unwrap_or_default()
            ));
        }
        for s in &outcome.settled {
            if s.status == raptr_formats::bundle::Status::Rejected && s.key != key {
                refused.push(format!("{}: rejected (see reports/{}.json)", s.key, s.key));
            }
        }
        Ok(FileOutcome::Fetched { size, refused })
    }
}

/// Bundle versions in the pool that the target should link, by (component,
/// source, version): their package names and architectures (`source` for
/// the source package's files).
type Relink = BTreeMap<(String, String, Version), (BTreeSet<String>, BTreeSet<String>)>;

/// What `dist` links as of the last publish: pool directory to file names.
async fn dist_links(store: &dyn ObjectStore, dist: &str) -> Result<crate::publish::links::Dirs> {
    let (mut state, _) = crate::publish::state::State::load(store).await?;
    state.links.load_dist(store, dist).await?;
    Ok(state.links.get(dist).cloned().unwrap_or_default())
}

/// Links into the target what `relink` holds, each bundle version by a link
/// request handled as any request is (`requests/link/<dist>/<folder>.json`,
/// its report beside the others), and empties it.
async fn link_present(
    upstream: &Upstream,
    target: &Target,
    ingest: &Ingest,
    store: &dyn ObjectStore,
    relink: &mut Relink,
    summary: &mut Summary,
) -> Result<()> {
    for ((component, source, version), (packages, arches)) in std::mem::take(relink) {
        let request = crate::request::Request {
            action: crate::request::Action::Link,
            bundle: Some(source.clone()),
            version: Some(version.to_string()),
            component: Some(component.clone()),
            distribution: Some(target.distribution.clone()),
            packages: Some(packages.into_iter().collect()),
            architectures: Some(arches.into_iter().collect()),
            snapshot: None,
            keep: None,
            max_age_days: None,
            dry_run: false,
        };
        let key = format!(
            "requests/link/{}/{component}/{}.json",
            target.distribution,
            upload_id(&upstream.name, &source, &version)
        );
        let body = serde_json::to_vec(&request).unwrap_or_default();
        store.put(&key, body.into(), PutOptions::default()).await?;
        let outcome = ingest
            .handle(&ObjectEvent {
                key: key.clone(),
                uploader: format!("import:{}", upstream.name),
            })
            .await?;
        if outcome.status == Some(raptr_formats::bundle::Status::Rejected) {
            summary.refused.push(format!(
                "{key}: the link of {source} {version}, already in the pool, was rejected: {}",
                outcome.reason.unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// The upload folder of one bundle of an import: `<upstream>-<source>_<version>`,
/// its version's `:` and `~` spelled with allowed characters, at most 128.
fn upload_id(upstream: &str, source: &str, version: &Version) -> String {
    let v: String = version
        .to_string()
        .chars()
        .map(|c| match c {
            ':' => '.',
            '~' => '-',
            c => c,
        })
        .collect();
    let id = format!("{upstream}-{source}_{v}");
    if id.len() <= 128 {
        id
    } else {
        let digest = raptr_formats::hash::hex(&Sha256::digest(id.as_bytes()));
        format!("{}-{}", &id[..100], &digest[..16])
    }
}

/// Counts and hashes what passes through.
struct Hashing<R> {
    inner: R,
    state: Arc<std::sync::Mutex<(u64, Sha256)>>,
    limit: u64,
    /// Reused for every read (a read sees its bytes before the caller's
    /// buffer does, to hash them).
    scratch: Vec<u8>,
}

/// The size and SHA-256 a [`Hashing`] reader saw.
struct Check(Arc<std::sync::Mutex<(u64, Sha256)>>);

impl Check {
    fn result(&self) -> (u64, String) {
        let g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (g.0, raptr_formats::hash::hex(&g.1.clone().finalize()))
    }
}

impl<R> Hashing<R> {
    /// Reads at most `expected + 1` bytes: a longer body is cut there and
    /// fails the size check.
    fn new(inner: R, expected: u64) -> (Hashing<R>, Check) {
        let state = Arc::new(std::sync::Mutex::new((0, Sha256::new())));
        (
            Hashing {
                inner,
                state: state.clone(),
                limit: expected.saturating_add(1),
                scratch: vec![0; 256 << 10],
            },
            Check(state),
        )
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let seen = this.state.lock().unwrap_or_else(|e| e.into_inner()).0;
        if seen >= this.limit {
            return Poll::Ready(Ok(()));
        }
        let room = usize::try_from(this.limit - seen)
            .unwrap_or(usize::MAX)
            .min(buf.remaining())
            .min(256 << 10);
        let mut part = ReadBuf::new(&mut this.scratch[..room]);
        let r = Pin::new(&mut this.inner).poll_read(cx, &mut part);
        let data = part.filled();
        if !data.is_empty() {
            let mut g = this.state.lock().unwrap_or_else(|e| e.into_inner());
            g.0 += data.len() as u64;
            g.1.update(data);
            drop(g);
            buf.put_slice(data);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        package: &str,
        version: &str,
        arch: &str,
        depends: &[&str],
        provides: &[&str],
    ) -> (String, BinaryEntry) {
        let v = Version::parse(version).expect("version");
        (
            "main".to_string(),
            BinaryEntry {
                package: package.into(),
                version: v.clone(),
                architecture: arch.into(),
                source: package.into(),
                source_version: v,
                filename: format!("pool/{package}_{version}_{arch}.deb"),
                size: 1,
                sha256: "0".repeat(64),
                depends: depends.iter().map(|d| d.to_string()).collect(),
                provides: provides.iter().map(|d| d.to_string()).collect(),
            },
        )
    }

    fn names(selected: &[(String, BinaryEntry)]) -> Vec<String> {
        let mut out: Vec<String> = selected
            .iter()
            .map(|(_, e)| format!("{} {} {}", e.package, e.version, e.architecture))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn dependencies_resolve_within_the_upstream() {
        let universe = vec![
            entry("libc6", "2.36-9", "amd64", &["libgcc-s1"], &[]),
            entry("libc6", "2.37-1", "amd64", &["libgcc-s1"], &[]),
            entry("libc6", "2.36-9", "arm64", &[], &[]),
            entry(
                "libgcc-s1",
                "12.2-14",
                "amd64",
                &["gcc-12-base (= 12.2-14)"],
                &[],
            ),
            entry("gcc-12-base", "12.2-14", "amd64", &[], &[]),
            entry("gcc-12-base", "12.3-1", "amd64", &[], &[]),
            entry("exim4", "4.96-15", "amd64", &[], &["mail-transport-agent"]),
            entry("postfix", "3.7-1", "amd64", &[], &["mail-transport-agent"]),
            entry("docs", "1-1", "all", &["libc6 (<< 2.37)"], &[]),
            entry("unused", "1-1", "amd64", &[], &[]),
        ];
        let mut selected = vec![
            entry(
                "app",
                "1.0-1",
                "amd64",
                &[
                    "libc6 (>= 2.36)",
                    "default-mta | mail-transport-agent",
                    "missing (>= 2)",
                ],
                &[],
            ),
            entry("tool", "2-1", "arm64", &["postfix | libc6"], &[]),
        ];
        let unresolved = resolve(&mut selected, universe, &["amd64".into(), "arm64".into()]);
        assert_eq!(
            names(&selected),
            [
                "app 1.0-1 amd64",
                // default-mta is nowhere; the virtual package is provided by
                // both: one of them comes.
                "exim4 4.96-15 amd64",
                // = 12.2-14, not the newest.
                "gcc-12-base 12.2-14 amd64",
                // The newest that satisfies >= 2.36.
                "libc6 2.36-9 arm64",
                "libc6 2.37-1 amd64",
                "libgcc-s1 12.2-14 amd64",
                "tool 2-1 arm64",
            ]
        );
        assert_eq!(
            unresolved.into_iter().collect::<Vec<_>>(),
            ["app 1.0-1: missing (>= 2)"]
        );

        // An `all` package resolves for each architecture; an alternative
        // already selected satisfies its group.
        let mut selected = vec![entry("docs", "1-1", "all", &["libc6 (<< 2.37)"], &[])];
        let universe = vec![
            entry("libc6", "2.36-9", "amd64", &[], &[]),
            entry("libc6", "2.37-1", "amd64", &[], &[]),
            entry("libc6", "2.36-9", "arm64", &[], &[]),
        ];
        resolve(&mut selected, universe, &["amd64".into(), "arm64".into()]);
        assert_eq!(
            names(&selected),
            ["docs 1-1 all", "libc6 2.36-9 amd64", "libc6 2.36-9 arm64"]
        );
    }
}
