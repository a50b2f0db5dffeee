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
}

/// Where the import lands.
#[derive(Debug, Clone)]
pub struct Target {
    pub distribution: String,
    /// The component for everything (default: the upstream component of
    /// the same name, else the distribution's only component).
    pub component: Option<String>,
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
    async fn release(&self) -> Result<(Release, String)> {
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

    /// An index's paragraphs, its bytes checked against the Release first.
    async fn index(
        &self,
        release: &Release,
        base: &str,
    ) -> Result<Option<Vec<raptr_formats::control::Paragraph>>> {
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
        let reader: Box<dyn Read> = match compression {
            Compression::None => Box::new(std::io::Cursor::new(body)),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
                body,
            ))),
            Compression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(
                std::io::Cursor::new(body),
            )),
        };
        let capped = std::io::BufReader::new(reader.take(MAX_INDEX_TEXT));
        let mut out = Vec::new();
        for p in Paragraphs::new(capped, Mode::Lenient) {
            out.push(p.map_err(|e| refuse(format!("{path}: {e}")))?);
        }
        Ok(Some(out))
    }
}

/// Whether `name` matches one of `patterns` (all when there are none).
fn picked(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| crate::inventory::glob(p, name))
}

/// Imports from `upstream` into `target`, through `ingest` (whose store is
/// the repository's). `progress` hears how far long work is.
pub async fn run(
    upstream: &Upstream,
    target: &Target,
    ingest: &Ingest,
    store: &dyn ObjectStore,
    config: &crate::config::Config,
    progress: Option<&Progress>,
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
    let seen_key = format!("{STATE_PREFIX}{}.json", upstream.name);
    let seen: Seen = match store.get_limited(&seen_key, 1 << 20).await {
        Ok((b, _)) => serde_json::from_slice(&b).unwrap_or_default(),
        Err(StoreError::NotFound { .. }) => Seen::default(),
        Err(e) => return Err(e.into()),
    };
    let selection = format!(
        "{:?} {:?} {:?} {} {:?} {} {:?}",
        upstream.components,
        upstream.architectures,
        upstream.packages,
        upstream.sources,
        upstream.newest,
        target.distribution,
        target.component
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
            for p in &stanzas {
                let e = archive::binary_entry(p).map_err(|e| refuse(format!("{base}: {e}")))?;
                if (e.architecture == *arch || e.architecture == "all")
                    && picked(&upstream.packages, &e.package)
                {
                    binaries.push((comp.clone(), e));
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
            for p in &stanzas {
                let s: SourceEntry =
                    archive::source_entry(p).map_err(|e| refuse(format!("{base}: {e}")))?;
                let by_name =
                    !upstream.packages.is_empty() && picked(&upstream.packages, &s.package);
                if !(want.contains(&(s.package.clone(), s.version.clone()))
                    || by_name
                    || upstream.packages.is_empty() && binaries.is_empty())
                {
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
    for (i, w) in wanted.iter().enumerate() {
        let component = match &target.component {
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
        };
        let dir = pool_dir(&component, &w.source, &w.version);
        if let Some((m, _)) = crate::manifest::load(store, &dir).await? {
            if let Some(f) = m.files.get(&w.name) {
                if f.digests.sha256 == w.sha256 {
                    summary.present += 1;
                    continue;
                }
                summary.refused.push(format!(
                    "{}: {dir}/{} is in the pool with other bytes; a version never changes",
                    w.path, w.name
                ));
                continue;
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
                summary
                    .refused
                    .push(format!("{}: listed by the index but not there", w.path));
                continue;
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
            summary.refused.push(format!(
                "{}: does not match its index ({size} bytes, SHA-256 {sha}; the index says {} bytes, {}); not stored",
                w.path, w.size, w.sha256
            ));
            continue;
        }
        summary.fetched += 1;
        summary.bytes += size;
        let outcome = ingest
            .handle(&ObjectEvent {
                key: key.clone(),
                uploader: format!("import:{}", upstream.name),
            })
            .await?;
        if outcome.status == Some(raptr_formats::bundle::Status::Rejected) {
            summary.refused.push(format!(
                "{}: rejected: {}",
                w.path,
                outcome.reason.clone().unwrap_or_default()
            ));
        }
        for s in &outcome.settled {
            if s.status == raptr_formats::bundle::Status::Rejected && s.key != key {
                summary
                    .refused
                    .push(format!("{}: rejected (see reports/{}.json)", s.key, s.key));
            }
        }
        progress::tick(progress, || {
            format!("{}: {} of {total} files handled", upstream.name, i + 1)
        });
    }
    let done = Seen {
        release_sha256: release_sha,
        selection,
        complete: summary.refused.is_empty(),
    };
    let body = serde_json::to_vec(&done).unwrap_or_default();
    store
        .put(&seen_key, body.into(), PutOptions::default())
        .await?;
    Ok(summary)
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
