//! Indices in segments: how one more package costs one segment, not the
//! whole index.
//!
//! A `Packages` (or `Sources`) file is a run of segments, each the stanzas of
//! consecutive pool keys (in (directory, file name) order) up to about
//! [`TARGET`] bytes. Its `.gz` is the same run, each segment compressed as a
//! gzip member of its own: concatenated members are one valid gzip file,
//! which apt (zlib) and `zcat` read whole. Its `.xz`, when configured, is
//! one xz stream with each segment a block of its own ([`super::xz`]). The
//! state records each segment's first key and sizes, so the previous
//! generation's by-hash files hold every segment's bytes at offsets the
//! state can compute.
//!
//! A rebuild then keeps the segments no change falls into, byte for byte
//! (compressed ones included), and renders and compresses only the segments
//! a change touches (and, when what is left of one is under half the
//! target, the segments after it until it is not, so that segments do not
//! dwindle as packages are unlinked). Each file is composed by the store
//! ([`ObjectStore::put_composed`]) from ranges of the previous one and the
//! new segments, into a staging object: the local store copies the ranges
//! itself, S3's adapter streams them through; either hashes the result.
//! Memory holds a few segments, not the index.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use raptr_store::compose::{Closed, Composed, Composer};
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::index::{self, IndexSum};
use super::{xz, PublishError, Result};
use crate::manifest::{self, Manifest};
use crate::progress::{self, Progress};

/// Uncompressed bytes after which a segment is closed (the default of
/// [`super::Publisher::segment_target`]).
pub const TARGET: usize = 64 << 10;

/// A pool key in index order: bundle version directory, then file name.
pub type Key = (String, String);

/// Manifests already read in this run, by bundle version directory (`None`:
/// it has none). Applying the journal fills it; rebuilds read only the rest.
pub type Manifests = HashMap<String, Option<Manifest>>;

/// One segment of a published index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// The pool key of its first stanza.
    pub dir: String,
    pub name: String,
    /// How many stanzas it holds.
    pub count: u32,
    /// Its size uncompressed, and the size of its gzip member.
    pub raw: u64,
    pub gz: u64,
    /// The unpadded size of its xz block; 0 when the index has no `.xz`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub xz: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What changed in one index since it was last written: pool keys linked
/// and unlinked. Recorded while the journal is applied, saved with the
/// state, consumed by the next rebuild.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub added: BTreeSet<Key>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub removed: BTreeSet<Key>,
}

impl Delta {
    /// Records that `key` was linked (`true`) or unlinked; the two cancel.
    pub fn record(&mut self, key: Key, linked: bool) {
        if linked {
            if !self.removed.remove(&key) {
                self.added.insert(key);
            }
        } else if !self.added.remove(&key) {
            self.removed.insert(key);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

/// A rebuilt index, staged: its segments and the sums of its files.
#[derive(Debug)]
pub struct Built {
    pub segments: Vec<Segment>,
    pub raw: IndexSum,
    pub gz: IndexSum,
    /// When the index has a `.xz`.
    pub xz: Option<IndexSum>,
}

/// The previous generation of an index: its by-hash keys and segments.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub raw_key: &'a str,
    pub gz_key: &'a str,
    /// Its `.xz`; needed when the new one has one too.
    pub xz_key: Option<&'a str>,
    pub segments: &'a [Segment],
}

/// Where an index's files are staged; `xz` only when it has a `.xz`.
#[derive(Debug, Clone, Copy)]
pub struct Staging<'a> {
    pub raw: &'a str,
    pub gz: &'a str,
    pub xz: Option<&'a str>,
}

/// What building one index needs, whole or from its previous generation.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    pub store: &'a Arc<dyn ObjectStore>,
    /// Uncompressed bytes after which a segment is closed.
    pub target: usize,
    /// The staging keys of the files.
    pub staging: Staging<'a>,
    pub dist: &'a str,
    /// The index's path under `dists/<dist>/`, for progress lines.
    pub path: &'a str,
    /// Manifests this run has read already.
    pub known: &'a Manifests,
    /// Where a whole build says how far it is.
    pub progress: Option<&'a Progress>,
}

/// Builds an index from every pool key it lists (in order), rendering each
/// stanza from its manifest.
pub async fn full(job: Job<'_>, keys: &[(&String, &String)]) -> Result<Built> {
    let mut sink = Sink::open(job.store, job.staging, None).await?;
    let mut builder = Builder::new(job.target, job.staging.xz.is_some());
    // A window at a time: its manifests are read concurrently, then its
    // stanzas appended in order. Memory holds one window's manifests.
    for (i, window) in keys.chunks(512).enumerate() {
        let need: BTreeSet<String> = window.iter().map(|(d, _)| (*d).clone()).collect();
        let loaded = load_manifests(job.store, need, job.known).await?;
        for (dir, name) in window {
            let stanza = render(&loaded, job.dist, dir, name)?;
            if let Some(closed) = builder.push(dir, name, &stanza) {
                sink.segment(closed).await?;
            }
        }
        progress::tick(job.progress, || {
            let done = (i * 512 + window.len()).min(keys.len());
            format!(
                "dists/{}/{}: {done} of {} stanzas built",
                job.dist,
                job.path,
                keys.len()
            )
        });
    }
    if let Some(closed) = builder.flush() {
        sink.segment(closed).await?;
    }
    sink.finish().await
}

/// Rebuilds an index from its previous generation and what changed.
pub async fn incremental(
    job: Job<'_>,
    arch: &str,
    previous: Previous<'_>,
    delta: &Delta,
) -> Result<Built> {
    let Job {
        store,
        target,
        staging,
        dist,
        known,
        ..
    } = job;
    if staging.xz.is_some() && previous.xz_key.is_none() {
        return Err(PublishError::Refused(format!(
            "{}: an incremental .xz needs the previous one",
            staging.raw
        )));
    }
    let segments = previous.segments;
    // Which segment each change falls into: the last one starting at or
    // before it (the first one for keys before them all).
    let index_of = |(dir, name): &Key| {
        segments
            .partition_point(|s| (s.dir.as_str(), s.name.as_str()) <= (dir.as_str(), name.as_str()))
            .saturating_sub(1)
    };
    let mut touched: BTreeMap<usize, (Vec<&Key>, BTreeSet<&Key>)> = BTreeMap::new();
    for k in &delta.added {
        touched.entry(index_of(k)).or_default().0.push(k);
    }
    for k in &delta.removed {
        touched.entry(index_of(k)).or_default().1.insert(k);
    }
    let dirs: BTreeSet<String> = delta.added.iter().map(|(d, _)| d.clone()).collect();
    let manifests = load_manifests(store, dirs, known).await?;

    let mut sink = Sink::open(store, staging, Some(&previous)).await?;
    // Blocks start after the xz stream header.
    let (mut raw_at, mut gz_at, mut xz_at) = (0u64, 0u64, xz::header().len() as u64);
    let mut run = Run {
        xz_at,
        ..Run::default()
    };
    let empty: (Vec<&Key>, BTreeSet<&Key>) = Default::default();
    // With no segment yet, every change goes into a first, empty one.
    let slots = segments.len().max(1);
    let mut i = 0;
    while i < slots {
        if let (Some(seg), None) = (segments.get(i), touched.get(&i)) {
            // Kept: copied with its unchanged neighbours in one run.
            run.raw += seg.raw;
            run.gz += seg.gz;
            run.xz += xz::padded(seg.xz);
            // Without a `.xz` now, its block size would be stale.
            let xz = if sink.xz.is_some() { seg.xz } else { 0 };
            sink.segments.push(Segment { xz, ..seg.clone() });
            raw_at += seg.raw;
            gz_at += seg.gz;
            xz_at += xz::padded(seg.xz);
            i += 1;
            continue;
        }
        run.keep(&mut sink).await?;
        // Rebuilt: its stanzas less those removed, plus those added. Under
        // half the target, it takes in the next segment too (and so on),
        // so that segments do not dwindle as packages leave.
        let mut stanzas: Vec<(Key, String)> = Vec::new();
        let mut total = 0usize;
        loop {
            let seg = segments.get(i);
            let (added, removed) = touched.get(&i).unwrap_or(&empty);
            let text = match seg {
                Some(seg) => read_segment(store, previous.raw_key, raw_at, seg.raw).await?,
                None => String::new(),
            };
            for (key, range) in index::parse_stanzas(&text, arch) {
                let Some((dir, name)) = key.rsplit_once('/') else {
                    continue;
                };
                let key = (dir.to_string(), name.to_string());
                if !removed.contains(&key) {
                    total += range.len() + 2;
                    stanzas.push((key, text[range].to_string()));
                }
            }
            for (dir, name) in added {
                let stanza = render(&manifests, dist, dir, name)?;
                total += stanza.len() + 2;
                stanzas.push(((dir.clone(), name.clone()), stanza));
            }
            if let Some(seg) = seg {
                raw_at += seg.raw;
                gz_at += seg.gz;
                xz_at += xz::padded(seg.xz);
            }
            i += 1;
            if total >= target / 2 || i >= segments.len() {
                break;
            }
        }
        // The stable sort keeps an old stanza before a new one of the same
        // key; the new one wins.
        stanzas.sort_by(|a, b| a.0.cmp(&b.0));
        stanzas.dedup_by(|later, earlier| {
            if later.0 == earlier.0 {
                std::mem::swap(later, earlier);
                true
            } else {
                false
            }
        });
        // Split into pieces between one and two targets in size.
        let total: usize = stanzas.iter().map(|(_, s)| s.len() + 2).sum();
        let pieces = (total / target.max(1)).max(1);
        let mut builder = Builder::new(total.div_ceil(pieces), staging.xz.is_some());
        for ((dir, name), stanza) in &stanzas {
            if let Some(closed) = builder.push(dir, name, stanza) {
                sink.segment(closed).await?;
            }
        }
        if let Some(closed) = builder.flush() {
            sink.segment(closed).await?;
        }
        // Kept segments may follow: the rebuilt ones go first.
        sink.drain().await?;
        // The next run of kept segments starts here.
        (run.raw_at, run.gz_at, run.xz_at) = (raw_at, gz_at, xz_at);
    }
    run.keep(&mut sink).await?;
    sink.finish().await
}

/// Consecutive kept segments: where they start in the previous files and
/// how many bytes they cover there.
#[derive(Default)]
struct Run {
    raw_at: u64,
    raw: u64,
    gz_at: u64,
    gz: u64,
    xz_at: u64,
    xz: u64,
}

impl Run {
    /// Keeps the run (if any) in every file and starts an empty one.
    async fn keep(&mut self, sink: &mut Sink) -> Result<()> {
        if self.raw > 0 || self.gz > 0 {
            sink.raw.keep(self.raw_at, self.raw).await?;
            sink.gz.keep(self.gz_at, self.gz).await?;
            if let Some(xz) = sink.xz.as_mut() {
                xz.keep(self.xz_at, self.xz).await?;
            }
        }
        self.raw = 0;
        self.gz = 0;
        self.xz = 0;
        Ok(())
    }
}

/// The stanza of `dir/name`, from its manifest.
fn render(
    manifests: &HashMap<String, Manifest>,
    dist: &str,
    dir: &str,
    name: &str,
) -> Result<String> {
    let m = manifests.get(dir).ok_or_else(|| {
        PublishError::Refused(format!(
            "{dir}/{name} is linked in {dist} but {dir}/manifest.json is gone"
        ))
    })?;
    index::render_stanza(dir, name, m).map_err(PublishError::Refused)
}

/// Collects stanzas into segments of about `limit` bytes.
struct Builder {
    limit: usize,
    /// Whether segments are also compressed as xz blocks.
    xz: bool,
    text: String,
    first: Option<Key>,
    count: u32,
}

/// A finished segment in each of its forms.
struct Done {
    segment: Segment,
    raw: Bytes,
    gz: Bytes,
    xz: Option<Bytes>,
}

impl Builder {
    fn new(limit: usize, xz: bool) -> Builder {
        Builder {
            limit,
            xz,
            text: String::new(),
            first: None,
            count: 0,
        }
    }

    /// Adds a stanza (a blank line follows each); returns the segment it
    /// closed, if any.
    fn push(&mut self, dir: &str, name: &str, stanza: &str) -> Option<Stanzas> {
        if self.first.is_none() {
            self.first = Some((dir.to_string(), name.to_string()));
        }
        self.text.push_str(stanza);
        if !stanza.ends_with('\n') {
            self.text.push('\n');
        }
        self.text.push('\n');
        self.count += 1;
        if self.text.len() >= self.limit {
            self.flush()
        } else {
            None
        }
    }

    fn flush(&mut self) -> Option<Stanzas> {
        let (dir, name) = self.first.take()?;
        Some(Stanzas {
            dir,
            name,
            count: std::mem::take(&mut self.count),
            text: std::mem::take(&mut self.text),
            xz: self.xz,
        })
    }
}

/// A segment's stanzas, closed and not yet compressed.
struct Stanzas {
    dir: String,
    name: String,
    count: u32,
    text: String,
    xz: bool,
}

impl Stanzas {
    /// Compresses it (gzip, and xz if wanted): the CPU-bound part of a
    /// rebuild, run off the async threads.
    fn compress(self) -> Result<Done> {
        let Stanzas {
            dir,
            name,
            count,
            text,
            xz,
        } = self;
        let gz = index::gzip(text.as_bytes());
        let block = if xz {
            let b = xz::block(text.as_bytes())
                .map_err(|e| PublishError::Refused(format!("segment at {dir}/{name}: {e}")))?;
            Some(b)
        } else {
            None
        };
        let segment = Segment {
            dir,
            name,
            count,
            raw: text.len() as u64,
            gz: gz.len() as u64,
            xz: block.as_ref().map_or(0, |b| b.unpadded),
        };
        Ok(Done {
            segment,
            raw: Bytes::from(text),
            gz: Bytes::from(gz),
            xz: block.map(|b| Bytes::from(b.bytes)),
        })
    }
}

/// The files of an index on their way to their staging objects.
struct Sink {
    raw: Upload,
    gz: Upload,
    xz: Option<Upload>,
    segments: Vec<Segment>,
    /// Segments being compressed, in index order.
    compressing: VecDeque<JoinHandle<Result<Done>>>,
    /// How many may be at once: one a core, and one more so that a core
    /// never waits for the writes.
    at_once: usize,
}

impl Sink {
    /// The uploads, composed from the previous files if given.
    async fn open(
        store: &Arc<dyn ObjectStore>,
        staging: Staging<'_>,
        previous: Option<&Previous<'_>>,
    ) -> Result<Sink> {
        let xz = match staging.xz {
            Some(key) => {
                let mut up = Upload::open(store, key, previous.and_then(|p| p.xz_key));
                up.write(Bytes::copy_from_slice(&xz::header())).await?;
                Some(up)
            }
            None => None,
        };
        Ok(Sink {
            raw: Upload::open(store, staging.raw, previous.map(|p| p.raw_key)),
            gz: Upload::open(store, staging.gz, previous.map(|p| p.gz_key)),
            xz,
            segments: Vec::new(),
            compressing: VecDeque::new(),
            at_once: std::thread::available_parallelism().map_or(1, |n| n.get()) + 1,
        })
    }

    /// Queues a closed segment for compression; writes the oldest ones once
    /// enough are under way.
    async fn segment(&mut self, closed: Stanzas) -> Result<()> {
        self.compressing
            .push_back(tokio::task::spawn_blocking(move || closed.compress()));
        while self.compressing.len() >= self.at_once {
            self.write_oldest().await?;
        }
        Ok(())
    }

    /// Writes every queued segment: before kept bytes follow them, and at
    /// the end.
    async fn drain(&mut self) -> Result<()> {
        while !self.compressing.is_empty() {
            self.write_oldest().await?;
        }
        Ok(())
    }

    async fn write_oldest(&mut self) -> Result<()> {
        let Some(task) = self.compressing.pop_front() else {
            return Ok(());
        };
        let done = task.await.map_err(|e| {
            PublishError::Refused(format!("{}: compressing a segment: {e}", self.raw.key))
        })??;
        self.raw.write(done.raw).await?;
        self.gz.write(done.gz).await?;
        if let (Some(up), Some(block)) = (self.xz.as_mut(), done.xz) {
            up.write(block).await?;
        }
        self.segments.push(done.segment);
        Ok(())
    }

    async fn finish(mut self) -> Result<Built> {
        self.drain().await?;
        if self.segments.is_empty() {
            // An empty index still needs a valid gzip file.
            self.gz.write(Bytes::from(index::gzip(b""))).await?;
        }
        if let Some(up) = self.xz.as_mut() {
            let records = self.segments.iter().map(|s| (s.xz, s.raw));
            up.write(Bytes::from(xz::tail(records))).await?;
        }
        // Every end first, so that the files are synced side by side.
        self.raw.end().await?;
        self.gz.end().await?;
        if let Some(up) = self.xz.as_mut() {
            up.end().await?;
        }
        let xz = match self.xz {
            Some(up) => Some(up.stored().await?),
            None => None,
        };
        Ok(Built {
            segments: self.segments,
            raw: self.raw.stored().await?,
            gz: self.gz.stored().await?,
            xz,
        })
    }
}

/// An index file on its way to its staging object: kept byte ranges of the
/// previous file and new bytes, composed by the store
/// ([`ObjectStore::put_composed`]), which hashes them.
struct Upload {
    key: String,
    composer: Option<Composer>,
    size: u64,
    /// The upload, until its outcome is taken.
    task: Option<JoinHandle<Result<Composed, StoreError>>>,
}

impl Drop for Upload {
    /// An upload given up on (the rebuild failed) stops there, rather than
    /// storing what it had received.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Upload {
    fn open(store: &Arc<dyn ObjectStore>, key: &str, base: Option<&str>) -> Upload {
        let (composer, parts) = Composer::new();
        let (store, k, base) = (store.clone(), key.to_string(), base.map(str::to_string));
        let task = tokio::spawn(async move {
            store
                .put_composed(&k, base.as_deref(), parts, PutOptions::default())
                .await
        });
        Upload {
            key: key.to_string(),
            composer: Some(composer),
            size: 0,
            task: Some(task),
        }
    }

    async fn write(&mut self, bytes: Bytes) -> Result<()> {
        self.size += bytes.len() as u64;
        let sent = match self.composer.as_mut() {
            Some(c) => c.bytes(bytes).await,
            None => Err(Closed),
        };
        self.sent(sent).await
    }

    /// Appends `len` bytes of the previous file from `start`.
    async fn keep(&mut self, start: u64, len: u64) -> Result<()> {
        self.size += len;
        let sent = match self.composer.as_mut() {
            Some(c) => c.base(start, len).await,
            None => Err(Closed),
        };
        self.sent(sent).await
    }

    async fn sent(&mut self, sent: std::result::Result<(), Closed>) -> Result<()> {
        if sent.is_err() {
            // The store stopped receiving: its own error says why.
            self.composer = None;
            return Err(self.failed().await);
        }
        Ok(())
    }

    async fn failed(&mut self) -> PublishError {
        let what = "the store stopped receiving it";
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(e)) => e.into(),
                _ => PublishError::Refused(format!("staging {}: {what}", self.key)),
            },
            None => PublishError::Refused(format!("staging {}: {what}", self.key)),
        }
    }

    /// Sends the end of the file: the store then syncs and stores it.
    async fn end(&mut self) -> Result<()> {
        let finished = match self.composer.take() {
            Some(c) => c.finish().await,
            None => Err(Closed),
        };
        if finished.is_err() {
            return Err(self.failed().await);
        }
        Ok(())
    }

    /// Waits for the stored file (after [`Upload::end`]).
    async fn stored(mut self) -> Result<IndexSum> {
        let task = self.task.take().ok_or_else(|| {
            PublishError::Refused(format!("staging {}: finished after it failed", self.key))
        })?;
        let made = task
            .await
            .map_err(|e| PublishError::Refused(format!("staging {}: {e}", self.key)))??;
        if made.meta.size != self.size {
            return Err(PublishError::Refused(format!(
                "staging {}: stored {} bytes of {}",
                self.key, made.meta.size, self.size
            )));
        }
        Ok(IndexSum {
            size: self.size,
            sha256: made.sha256,
        })
    }
}

/// The text of a segment of the previous file, `len` bytes from `start`.
async fn read_segment(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    start: u64,
    len: u64,
) -> Result<String> {
    let bytes = store.get_range(key, start, start + len).await?;
    if (bytes.len() as u64) < len {
        return Err(PublishError::Refused(format!(
            "{key} ends at byte {} but the publish state has a segment up to byte {}; \
             run `raptr verify` to repair it",
            start + bytes.len() as u64,
            start + len
        )));
    }
    String::from_utf8(bytes.to_vec())
        .map_err(|_| PublishError::Refused(format!("{key}: a segment is not UTF-8 text")))
}

/// The manifests of `dirs`: those in `known` as they are, the others read,
/// sixteen at a time. A bundle version without one is left out.
async fn load_manifests(
    store: &Arc<dyn ObjectStore>,
    dirs: BTreeSet<String>,
    known: &Manifests,
) -> Result<HashMap<String, Manifest>> {
    let mut out = HashMap::with_capacity(dirs.len());
    let mut set = tokio::task::JoinSet::new();
    let (known_dirs, unknown): (Vec<String>, Vec<String>) =
        dirs.into_iter().partition(|d| known.contains_key(d));
    for dir in known_dirs {
        if let Some(Some(m)) = known.get(&dir) {
            out.insert(dir, m.clone());
        }
    }
    let mut dirs = unknown.into_iter();
    loop {
        while set.len() < 16 {
            let Some(dir) = dirs.next() else { break };
            let store = store.clone();
            set.spawn(async move {
                let m = manifest::load(store.as_ref(), &dir).await;
                (dir, m)
            });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (dir, m) = joined.map_err(|e| {
            PublishError::Refused(format!(
                "reading manifests for an index: a task failed: {e}"
            ))
        })?;
        if let Some((m, _)) = m? {
            out.insert(dir, m);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_cancel() {
        let k = || ("pool/main/a/a/1".to_string(), "a_1_all.deb".to_string());
        let mut d = Delta::default();
        d.record(k(), true);
        d.record(k(), false);
        assert!(d.is_empty());
        d.record(k(), false);
        assert_eq!(d.removed.len(), 1);
        d.record(k(), true);
        assert!(d.is_empty());
    }

    #[test]
    fn builder_closes_segments_at_the_limit() {
        let mut b = Builder::new(40, true);
        assert!(b.push("d", "a", "Package: a\nFilename: d/a\n").is_none());
        let Some(closed) = b.push("d", "b", "Package: b\nFilename: d/b") else {
            panic!("the segment closes at the limit");
        };
        let Ok(done) = closed.compress() else {
            panic!("the segment compresses");
        };
        assert_eq!(done.segment.count, 2);
        assert_eq!(
            (done.segment.dir.as_str(), done.segment.name.as_str()),
            ("d", "a")
        );
        assert_eq!(
            &done.raw[..],
            b"Package: a\nFilename: d/a\n\nPackage: b\nFilename: d/b\n\n"
        );
        assert_eq!(done.segment.raw, done.raw.len() as u64);
        assert_eq!(done.segment.gz, done.gz.len() as u64);
        let block = done.xz.as_ref().map(|b| b.len() as u64);
        assert_eq!(block, Some(xz::padded(done.segment.xz)));
        assert!(b.flush().is_none());
    }
}
