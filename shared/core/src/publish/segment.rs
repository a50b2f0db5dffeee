//! Indices in segments: how one more package costs one segment, not the
//! whole index.
//!
//! A `Packages` (or `Sources`) file is a run of segments, each the stanzas of
//! consecutive pool keys (in (directory, file name) order) up to about
//! [`TARGET`] bytes. Its `.gz` is the same run, each segment compressed as a
//! gzip member of its own: concatenated members are one valid gzip file,
//! which apt (zlib) and `zcat` read whole. The state records each segment's
//! first key and sizes, so the previous generation's by-hash files hold
//! every segment's bytes at offsets the state can compute.
//!
//! A rebuild then copies the segments no change falls into, byte for byte
//! (compressed ones included), and renders and compresses only the segments
//! a change touches. Both files stream from the previous ones to a staging
//! object, hashed on the way; memory holds one segment, not the index.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use raptr_formats::hash::hex;
use raptr_store::{ByteReader, ObjectMeta, ObjectStore, PutOptions, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::task::JoinHandle;

use super::index::{self, IndexSum};
use super::{PublishError, Result};
use crate::manifest::{self, Manifest};

/// Uncompressed bytes after which a segment is closed (the default of
/// [`super::Publisher::segment_target`]).
pub const TARGET: usize = 64 << 10;

/// A pool key in index order: bundle version directory, then file name.
pub type Key = (String, String);

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

/// A rebuilt index, staged: its segments and the sums of both files.
#[derive(Debug)]
pub struct Built {
    pub segments: Vec<Segment>,
    pub raw: IndexSum,
    pub gz: IndexSum,
}

/// The previous generation of an index: its by-hash keys and segments.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub raw_key: &'a str,
    pub gz_key: &'a str,
    pub segments: &'a [Segment],
}

/// Builds an index from every pool key it lists (in order), rendering each
/// stanza from its manifest.
pub async fn full(
    store: &Arc<dyn ObjectStore>,
    target: usize,
    staging: (&str, &str),
    dist: &str,
    keys: &[(&String, &String)],
) -> Result<Built> {
    let mut sink = Sink::open(store, staging);
    let mut builder = Builder::new(target);
    // A window at a time: its manifests are read concurrently, then its
    // stanzas appended in order. Memory holds one window's manifests.
    for window in keys.chunks(512) {
        let need: BTreeSet<String> = window.iter().map(|(d, _)| (*d).clone()).collect();
        let loaded = load_manifests(store, need).await?;
        for (dir, name) in window {
            let stanza = render(&loaded, dist, dir, name)?;
            if let Some(done) = builder.push(dir, name, &stanza) {
                sink.segment(done).await?;
            }
        }
    }
    if let Some(done) = builder.flush() {
        sink.segment(done).await?;
    }
    sink.finish().await
}

/// Rebuilds an index from its previous generation and what changed.
pub async fn incremental(
    store: &Arc<dyn ObjectStore>,
    target: usize,
    staging: (&str, &str),
    dist: &str,
    arch: &str,
    previous: Previous<'_>,
    delta: &Delta,
) -> Result<Built> {
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
    let manifests = load_manifests(store, dirs).await?;

    let mut sink = Sink::open(store, staging);
    let mut old_raw = OldFile::open(store, previous.raw_key).await?;
    let mut old_gz = OldFile::open(store, previous.gz_key).await?;
    let (mut raw_at, mut gz_at) = (0u64, 0u64);
    let mut run = Run::default();
    let empty: (Vec<&Key>, BTreeSet<&Key>) = Default::default();
    // With no segment yet, every change goes into a first, empty one.
    let slots = segments.len().max(1);
    for i in 0..slots {
        let seg = segments.get(i);
        let changes = touched.get(&i);
        match (seg, changes) {
            (Some(seg), None) => {
                // Kept: copied with its unchanged neighbours in one run.
                run.raw += seg.raw;
                run.gz += seg.gz;
                sink.segments.push(seg.clone());
            }
            (seg, changes) => {
                run.copy(&mut old_raw, &mut old_gz, &mut sink).await?;
                let (added, removed) = changes.unwrap_or(&empty);
                let text = match seg {
                    Some(seg) => old_raw.read(raw_at, seg.raw).await?,
                    None => String::new(),
                };
                let mut stanzas: Vec<(Key, std::borrow::Cow<'_, str>)> =
                    Vec::with_capacity(seg.map_or(0, |s| s.count as usize) + added.len());
                for (key, range) in index::parse_stanzas(&text, arch) {
                    let Some((dir, name)) = key.rsplit_once('/') else {
                        continue;
                    };
                    let key = (dir.to_string(), name.to_string());
                    if !removed.contains(&key) {
                        stanzas.push((key, text[range].into()));
                    }
                }
                for (dir, name) in added {
                    let stanza = render(&manifests, dist, dir, name)?;
                    stanzas.push(((dir.clone(), name.clone()), stanza.into()));
                }
                // The stable sort keeps an old stanza before a new one of the
                // same key; the new one wins.
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
                let mut builder = Builder::new(total.div_ceil(pieces));
                for ((dir, name), stanza) in &stanzas {
                    if let Some(done) = builder.push(dir, name, stanza) {
                        sink.segment(done).await?;
                    }
                }
                if let Some(done) = builder.flush() {
                    sink.segment(done).await?;
                }
            }
        }
        if let Some(seg) = seg {
            raw_at += seg.raw;
            gz_at += seg.gz;
        }
        if run.raw == 0 && run.gz == 0 {
            (run.raw_at, run.gz_at) = (raw_at, gz_at);
        }
    }
    run.copy(&mut old_raw, &mut old_gz, &mut sink).await?;
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
}

impl Run {
    /// Copies the run (if any) to the sink and starts an empty one.
    async fn copy(&mut self, raw: &mut OldFile, gz: &mut OldFile, sink: &mut Sink) -> Result<()> {
        if self.raw > 0 || self.gz > 0 {
            raw.copy(self.raw_at, self.raw, &mut sink.raw).await?;
            gz.copy(self.gz_at, self.gz, &mut sink.gz).await?;
        }
        self.raw = 0;
        self.gz = 0;
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
    text: String,
    first: Option<Key>,
    count: u32,
}

/// A finished segment with both its forms.
struct Done {
    segment: Segment,
    raw: Bytes,
    gz: Bytes,
}

impl Builder {
    fn new(limit: usize) -> Builder {
        Builder {
            limit,
            text: String::new(),
            first: None,
            count: 0,
        }
    }

    /// Adds a stanza (a blank line follows each); returns the segment it
    /// closed, if any.
    fn push(&mut self, dir: &str, name: &str, stanza: &str) -> Option<Done> {
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

    fn flush(&mut self) -> Option<Done> {
        let (dir, name) = self.first.take()?;
        let raw = std::mem::take(&mut self.text);
        let gz = index::gzip(raw.as_bytes());
        let segment = Segment {
            dir,
            name,
            count: std::mem::take(&mut self.count),
            raw: raw.len() as u64,
            gz: gz.len() as u64,
        };
        Some(Done {
            segment,
            raw: Bytes::from(raw),
            gz: Bytes::from(gz),
        })
    }
}

/// Both files of an index on their way to their staging objects.
struct Sink {
    raw: Upload,
    gz: Upload,
    segments: Vec<Segment>,
}

impl Sink {
    fn open(store: &Arc<dyn ObjectStore>, (raw, gz): (&str, &str)) -> Sink {
        Sink {
            raw: Upload::open(store, raw),
            gz: Upload::open(store, gz),
            segments: Vec::new(),
        }
    }

    async fn segment(&mut self, done: Done) -> Result<()> {
        self.raw.write(&done.raw).await?;
        self.gz.write(&done.gz).await?;
        self.segments.push(done.segment);
        Ok(())
    }

    async fn finish(mut self) -> Result<Built> {
        if self.segments.is_empty() {
            // An empty index still needs a valid gzip file.
            self.gz.write(&index::gzip(b"")).await?;
        }
        Ok(Built {
            segments: self.segments,
            raw: self.raw.finish().await?,
            gz: self.gz.finish().await?,
        })
    }
}

/// A streamed upload, hashed as it is written.
struct Upload {
    key: String,
    pipe: Option<DuplexStream>,
    /// `None` when the store's ETag is the SHA-256 already.
    hasher: Option<Sha256>,
    size: u64,
    /// The upload, until its outcome is taken.
    task: Option<JoinHandle<Result<ObjectMeta, StoreError>>>,
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
    fn open(store: &Arc<dyn ObjectStore>, key: &str) -> Upload {
        let (pipe, body) = tokio::io::duplex(256 << 10);
        let store_hashes = store.etag_is_sha256();
        let (store, k) = (store.clone(), key.to_string());
        let task = tokio::spawn(async move {
            let body: ByteReader = Box::pin(body);
            store.put_stream(&k, body, PutOptions::default()).await
        });
        Upload {
            key: key.to_string(),
            pipe: Some(pipe),
            hasher: (!store_hashes).then(Sha256::new),
            size: 0,
            task: Some(task),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if let Some(h) = self.hasher.as_mut() {
            h.update(bytes);
        }
        self.size += bytes.len() as u64;
        let Some(pipe) = self.pipe.as_mut() else {
            return Err(self.failed("written after it failed").await);
        };
        if let Err(e) = pipe.write_all(bytes).await {
            // The upload stopped reading: its own error says why.
            self.pipe = None;
            return Err(self.failed(&e.to_string()).await);
        }
        Ok(())
    }

    async fn failed(&mut self, what: &str) -> PublishError {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(e)) => e.into(),
                _ => PublishError::Refused(format!("staging {}: {what}", self.key)),
            },
            None => PublishError::Refused(format!("staging {}: {what}", self.key)),
        }
    }

    async fn finish(mut self) -> Result<IndexSum> {
        if let Some(mut pipe) = self.pipe.take() {
            if let Err(e) = pipe.shutdown().await {
                return Err(self.failed(&e.to_string()).await);
            }
        }
        let task = self.task.take().ok_or_else(|| {
            PublishError::Refused(format!("staging {}: finished after it failed", self.key))
        })?;
        let meta = task
            .await
            .map_err(|e| PublishError::Refused(format!("staging {}: {e}", self.key)))??;
        if meta.size != self.size {
            return Err(PublishError::Refused(format!(
                "staging {}: stored {} bytes of {}",
                self.key, meta.size, self.size
            )));
        }
        let sha256 = match self.hasher.take() {
            Some(h) => hex(&h.finalize()),
            None => meta.etag.trim_matches('"').to_string(),
        };
        Ok(IndexSum {
            size: self.size,
            sha256,
        })
    }
}

/// Where [`OldFile::each`] passes what it reads.
enum To<'a> {
    Upload(&'a mut Upload),
    Memory(&'a mut Vec<u8>),
}

/// A previous generation's file, read once from start to end.
struct OldFile {
    key: String,
    body: ByteReader,
    at: u64,
    buf: Vec<u8>,
}

impl OldFile {
    async fn open(store: &Arc<dyn ObjectStore>, key: &str) -> Result<OldFile> {
        let (body, _) = store.get_stream(key).await?;
        Ok(OldFile {
            key: key.to_string(),
            body,
            at: 0,
            buf: vec![0; 256 << 10],
        })
    }

    fn io(&self, e: std::io::Error) -> PublishError {
        StoreError::Transient {
            key: self.key.clone(),
            source: e.into(),
        }
        .into()
    }

    /// Passes `len` bytes from `start` (at or after where reading stands)
    /// to `to`, a buffer at a time.
    async fn each(&mut self, start: u64, len: u64, mut to: To<'_>) -> Result<()> {
        let mut skip = start
            .checked_sub(self.at)
            .ok_or_else(|| PublishError::Refused(format!("{}: segments out of order", self.key)))?;
        let mut left = len;
        while skip > 0 || left > 0 {
            let want = if skip > 0 { skip } else { left };
            let n = want.min(self.buf.len() as u64) as usize;
            let got = match self.body.read(&mut self.buf[..n]).await {
                Ok(got) => got,
                Err(e) => return Err(self.io(e)),
            };
            if got == 0 {
                return Err(PublishError::Refused(format!(
                    "{} ends at byte {} but the publish state has segments up to byte {}; \
                     run `raptr verify` to repair it",
                    self.key,
                    self.at,
                    start + len
                )));
            }
            self.at += got as u64;
            if skip > 0 {
                skip -= got as u64;
            } else {
                left -= got as u64;
                let chunk = &self.buf[..got];
                match &mut to {
                    To::Upload(u) => u.write(chunk).await?,
                    To::Memory(v) => v.extend_from_slice(chunk),
                }
            }
        }
        Ok(())
    }

    async fn copy(&mut self, start: u64, len: u64, to: &mut Upload) -> Result<()> {
        self.each(start, len, To::Upload(to)).await
    }

    async fn read(&mut self, start: u64, len: u64) -> Result<String> {
        let mut out = Vec::with_capacity(len as usize);
        self.each(start, len, To::Memory(&mut out)).await?;
        String::from_utf8(out).map_err(|_| {
            PublishError::Refused(format!("{}: a segment is not UTF-8 text", self.key))
        })
    }
}

/// Reads manifests, sixteen at a time; a bundle version without one is
/// left out of the answer.
async fn load_manifests(
    store: &Arc<dyn ObjectStore>,
    dirs: BTreeSet<String>,
) -> Result<HashMap<String, Manifest>> {
    let mut out = HashMap::with_capacity(dirs.len());
    let mut set = tokio::task::JoinSet::new();
    let mut dirs = dirs.into_iter();
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
        let mut b = Builder::new(40);
        assert!(b.push("d", "a", "Package: a\nFilename: d/a\n").is_none());
        let done = b
            .push("d", "b", "Package: b\nFilename: d/b")
            .expect("closed");
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
        assert!(b.flush().is_none());
    }
}
