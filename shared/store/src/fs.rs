//! The filesystem adapter: a directory is a bucket, an object is the file at
//! its key, so apt can read a local repository through a `file:` URI.
//!
//! Object semantics on a filesystem:
//! - a write goes to a staging file under `.raptr-meta/tmp/`, is synced, and is
//!   renamed into place, so a reader never sees half an object;
//! - metadata (ETag, Content-Type, Cache-Control) lives in a sidecar JSON file
//!   under `.raptr-meta/objects/<key>.json`; an object without one (copied in by
//!   hand) gets its ETag computed from its content;
//! - every key has a lock file (`.raptr-meta/locks/<sha256 of key>`): writers
//!   take it exclusively, readers shared, with the OS's advisory file locks, so
//!   create-only and if-match hold across threads and processes alike;
//! - ETags are the SHA-256 of the content.
//!
//! A copy stages the source under the source's lock, releases it, then commits
//! under the destination's lock: never two locks at once, so no deadlock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::compose::{self, Composed, Part, Parts};
use crate::{
    check_key, ByteReader, ListPage, ObjectMeta, ObjectStore, PutMode, PutOptions, Result,
    StoreError,
};

/// The directory at the root of a store that holds raptr's own bookkeeping.
pub const META_DIR: &str = ".raptr-meta";
const PAGE: usize = 1000;

/// A directory used as an object store.
#[derive(Debug, Clone)]
pub struct FsStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
}

/// Staging names are `<pid>-<n>`: unique across processes, and across every
/// store of this process.
static STAGING: AtomicU64 = AtomicU64::new(0);

#[derive(serde::Serialize, serde::Deserialize)]
struct Sidecar {
    etag: String,
    size: u64,
    content_type: Option<String>,
    cache_control: Option<String>,
}

fn permanent(key: &str, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Permanent {
        key: key.to_string(),
        source: e.into(),
    }
}

fn io_err(key: &str, e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::NotFound => StoreError::NotFound {
            key: key.to_string(),
        },
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            StoreError::Transient {
                key: key.to_string(),
                source: e.into(),
            }
        }
        _ => permanent(key, e),
    }
}

impl FsStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<FsStore> {
        let root = root.into();
        for d in ["tmp", "locks", "objects"] {
            fs::create_dir_all(root.join(META_DIR).join(d))?;
        }
        Ok(FsStore {
            inner: Arc::new(Inner { root }),
        })
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    async fn blocking<T: Send + 'static>(
        &self,
        key: &str,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| permanent(key, e.to_string()))?
    }
}

/// An advisory lock on one key, released on drop.
struct KeyLock(File);

impl Drop for KeyLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Inner {
    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn sidecar_path(&self, key: &str) -> PathBuf {
        self.root
            .join(META_DIR)
            .join("objects")
            .join(format!("{key}.json"))
    }

    fn lock(&self, key: &str, exclusive: bool) -> Result<KeyLock> {
        let name = raptr_formats::hash::hex(&Sha256::digest(key.as_bytes()));
        let path = self.root.join(META_DIR).join("locks").join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| permanent(key, e))?;
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .map_err(|e| io_err(key, e))?;
        Ok(KeyLock(file))
    }

    /// A fresh staging path, unique across threads and processes.
    fn staging(&self) -> PathBuf {
        let n = STAGING.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(META_DIR)
            .join("tmp")
            .join(format!("{}-{n}", std::process::id()))
    }

    /// Metadata of an existing object (caller holds its lock).
    fn meta(&self, key: &str) -> Result<ObjectMeta> {
        let file_meta = fs::metadata(self.path(key)).map_err(|e| io_err(key, e))?;
        if !file_meta.is_file() {
            return Err(StoreError::NotFound {
                key: key.to_string(),
            });
        }
        let sidecar: Option<Sidecar> = fs::read(self.sidecar_path(key))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|s: &Sidecar| s.size == file_meta.len());
        let modified = file_meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        match sidecar {
            Some(s) => Ok(ObjectMeta {
                key: key.to_string(),
                size: s.size,
                etag: s.etag,
                content_type: s.content_type,
                cache_control: s.cache_control,
                modified,
            }),
            None => {
                let mut f = File::open(self.path(key)).map_err(|e| io_err(key, e))?;
                let etag = etag_of_reader(&mut f).map_err(|e| io_err(key, e))?;
                Ok(ObjectMeta {
                    key: key.to_string(),
                    size: file_meta.len(),
                    etag,
                    content_type: None,
                    cache_control: None,
                    modified,
                })
            }
        }
    }

    /// Moves a staged file into place as `key`, honouring `mode`.
    fn commit(
        &self,
        key: &str,
        staged: &Path,
        etag: String,
        size: u64,
        opts: &PutOptions,
    ) -> Result<ObjectMeta> {
        let _lock = self.lock(key, true)?;
        let current = match self.meta(key) {
            Ok(m) => Some(m),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        match (&opts.mode, &current) {
            (PutMode::CreateOnly, Some(_)) => {
                return Err(StoreError::AlreadyExists {
                    key: key.to_string(),
                })
            }
            (PutMode::IfMatch(want), Some(m)) if &m.etag == want => {}
            (PutMode::IfMatch(_), _) => {
                return Err(StoreError::PreconditionFailed {
                    key: key.to_string(),
                })
            }
            _ => {}
        }
        let dest = self.path(key);
        let sidecar = self.sidecar_path(key);
        for p in [&dest, &sidecar] {
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).map_err(|e| io_err(key, e))?;
            }
        }
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            etag: etag.clone(),
            content_type: opts.content_type.clone(),
            cache_control: opts.cache_control.clone(),
            modified: None,
        };
        let side = Sidecar {
            etag,
            size,
            content_type: meta.content_type.clone(),
            cache_control: meta.cache_control.clone(),
        };
        let side_tmp = self.staging();
        fs::write(
            &side_tmp,
            serde_json::to_vec(&side).map_err(|e| permanent(key, e))?,
        )
        .map_err(|e| io_err(key, e))?;
        // Object first, then its sidecar: a sidecar whose size does not match
        // the object is ignored (see `meta`), so a crash in between is harmless.
        fs::rename(staged, &dest).map_err(|e| io_err(key, e))?;
        fs::rename(&side_tmp, &sidecar).map_err(|e| io_err(key, e))?;
        Ok(meta)
    }

    /// Stages a copy of `from` under its lock (checking its ETag against
    /// `want`), then commits it as `to` with the options `opts` makes of the
    /// source's metadata. With `link` the copy is a hard link: objects are
    /// replaced by rename, never written in place by raptr, so a second name
    /// for the same file costs nothing and stays as it was.
    fn copy_object(
        &self,
        from: &str,
        to: &str,
        want: Option<&str>,
        link: bool,
        opts: impl FnOnce(&ObjectMeta) -> PutOptions,
    ) -> Result<ObjectMeta> {
        let staged = self.staging();
        let src = {
            let _lock = self.lock(from, false)?;
            let meta = self.meta(from)?;
            if want.is_some_and(|w| w != meta.etag) {
                return Err(StoreError::PreconditionFailed {
                    key: from.to_string(),
                });
            }
            if !(link && fs::hard_link(self.path(from), &staged).is_ok()) {
                fs::copy(self.path(from), &staged).map_err(|e| io_err(from, e))?;
            }
            meta
        };
        let opts = opts(&src);
        let result = self.commit(to, &staged, src.etag, src.size, &opts);
        if result.is_err() {
            let _ = fs::remove_file(&staged);
        }
        result
    }

    /// Writes the parts of a composed object to a staging file, hashing
    /// them; base ranges are read from the base as it was when opened.
    /// Returns the staged file, its SHA-256 and its size.
    fn stage_parts(
        &self,
        key: &str,
        base: Option<&str>,
        parts: &mut Parts,
    ) -> Result<(PathBuf, [u8; 32], u64)> {
        let base = match base {
            Some(b) => {
                let _lock = self.lock(b, false)?;
                self.meta(b)?;
                Some((b, File::open(self.path(b)).map_err(|e| io_err(b, e))?))
            }
            None => None,
        };
        let path = self.staging();
        let result = File::create(&path)
            .map_err(|e| io_err(key, e))
            .and_then(|out| compose_into(key, base.as_ref(), parts, out));
        match result {
            Ok((sha, size)) => Ok((path, sha, size)),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }

    fn stage_bytes(&self, key: &str, body: &[u8]) -> Result<PathBuf> {
        let path = self.staging();
        let mut f = File::create(&path).map_err(|e| io_err(key, e))?;
        f.write_all(body).map_err(|e| io_err(key, e))?;
        f.sync_data().map_err(|e| io_err(key, e))?;
        Ok(path)
    }
}

/// Bytes on their way to the hashing thread: a buffer read from the base
/// (handed back for reuse once hashed), or a part's own bytes.
enum Chunk {
    Read(Vec<u8>, usize),
    New(Bytes),
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Read(buf, n) => &buf[..*n],
            Chunk::New(b) => b,
        }
    }
}

/// Buffers queued for the hasher at most.
const CHUNKS: usize = 4;
/// Bytes per buffer read from the base.
const CHUNK: usize = 128 << 10;

/// The buffers base ranges are read into: made as needed, up to a few,
/// then those the hasher hands back.
struct Buffers {
    spare: std::sync::mpsc::Receiver<Vec<u8>>,
    made: usize,
}

impl Buffers {
    fn take(&mut self) -> Vec<u8> {
        if let Ok(buf) = self.spare.try_recv() {
            return buf;
        }
        if self.made < CHUNKS + 2 {
            self.made += 1;
            return vec![0u8; CHUNK];
        }
        // All of them are queued: wait for the hasher to finish one.
        self.spare.recv().unwrap_or_else(|_| vec![0u8; CHUNK])
    }
}

/// Writes the parts to `out` and syncs it; returns the SHA-256 and size.
///
/// A second thread hashes what was written, in the same order, while this
/// one reads and writes the next bytes: on two cores the hash no longer adds
/// to the copy. (Syncing early parts of the file from a third thread, so
/// that the last sync has less to wait for, measured no faster: the disk is
/// the limit then, not the waiting.)
fn compose_into(
    key: &str,
    base: Option<&(&str, File)>,
    parts: &mut Parts,
    mut out: File,
) -> Result<([u8; 32], u64)> {
    std::thread::scope(|scope| {
        let (to_hash, hashing) = std::sync::mpsc::sync_channel::<Chunk>(CHUNKS);
        let (give_back, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        let hasher = scope.spawn(move || {
            let mut hasher = Sha256::new();
            for chunk in hashing {
                hasher.update(chunk.bytes());
                if let Chunk::Read(buf, _) = chunk {
                    // The writer may be gone (it failed); nothing to do then.
                    let _ = give_back.send(buf);
                }
            }
            <[u8; 32]>::from(hasher.finalize())
        });
        let mut buffers = Buffers { spare, made: 0 };
        let mut size = 0u64;
        // Where the last base range ended: ranges go forwards only, as the
        // port promises every adapter's callers.
        let mut read_to = 0u64;
        let written = loop {
            match parts.blocking_recv() {
                Some(Part::End) => break Ok(()),
                None => break Err(permanent(key, compose::ABANDONED)),
                Some(Part::Bytes(b)) => {
                    if let Err(e) = out.write_all(&b) {
                        break Err(io_err(key, e));
                    }
                    size += b.len() as u64;
                    // A failed send means the hasher died: its join says so.
                    let _ = to_hash.send(Chunk::New(b));
                }
                Some(Part::Base { start, len }) => {
                    let Some((name, file)) = base else {
                        break Err(permanent(key, "a base range, but no base object"));
                    };
                    if start < read_to {
                        break Err(permanent(key, compose::out_of_order(start, read_to)));
                    }
                    read_to = start + len;
                    let mut at = start;
                    while at < read_to {
                        let mut buf = buffers.take();
                        let n = (read_to - at).min(CHUNK as u64) as usize;
                        if let Err(e) = file.read_exact_at(&mut buf[..n], at) {
                            return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                                permanent(name, compose::short_base(name, at))
                            } else {
                                io_err(name, e)
                            });
                        }
                        out.write_all(&buf[..n]).map_err(|e| io_err(key, e))?;
                        at += n as u64;
                        let _ = to_hash.send(Chunk::Read(buf, n));
                    }
                    size += len;
                }
            }
        };
        drop(to_hash);
        let sha = hasher
            .join()
            .map_err(|_| permanent(key, "the hashing thread panicked"))?;
        written?;
        out.sync_data().map_err(|e| io_err(key, e))?;
        Ok((sha, size))
    })
}

fn etag_of_reader(r: &mut impl Read) -> io::Result<String> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(crate::quoted_etag(&h.finalize()))
}

#[async_trait]
impl ObjectStore for FsStore {
    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        check_key(key)?;
        let k = key.to_string();
        self.blocking(key, move |s| {
            let _lock = s.lock(&k, false)?;
            let meta = s.meta(&k)?;
            let bytes = fs::read(s.path(&k)).map_err(|e| io_err(&k, e))?;
            Ok((Bytes::from(bytes), meta))
        })
        .await
    }

    async fn get_stream(&self, key: &str) -> Result<(ByteReader, ObjectMeta)> {
        check_key(key)?;
        let k = key.to_string();
        let (file, meta) = self
            .blocking(key, move |s| {
                // The open file keeps reading this version: a later write
                // renames a new file over the key, it does not change this one.
                let _lock = s.lock(&k, false)?;
                let meta = s.meta(&k)?;
                let file = File::open(s.path(&k)).map_err(|e| io_err(&k, e))?;
                Ok((file, meta))
            })
            .await?;
        Ok((Box::pin(tokio::fs::File::from_std(file)), meta))
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteReader,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        check_key(key)?;
        let staged = self.inner.staging();
        let staged_result: Result<(String, u64)> = async {
            let mut out = tokio::fs::File::create(&staged)
                .await
                .map_err(|e| io_err(key, e))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buf = vec![0u8; 256 << 10];
            loop {
                // Whole buffers: a stream that yields small pieces must not
                // turn into as many small writes.
                let mut n = 0;
                while n < buf.len() {
                    match body.read(&mut buf[n..]).await.map_err(|e| io_err(key, e))? {
                        0 => break,
                        got => n += got,
                    }
                }
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).await.map_err(|e| io_err(key, e))?;
                size += n as u64;
            }
            out.sync_data().await.map_err(|e| io_err(key, e))?;
            let etag = crate::quoted_etag(&hasher.finalize());
            Ok((etag, size))
        }
        .await;
        let (etag, size) = match staged_result {
            Ok(v) => v,
            Err(e) => {
                let _ = fs::remove_file(&staged);
                return Err(e);
            }
        };
        let k = key.to_string();
        self.blocking(key, move |s| {
            let result = s.commit(&k, &staged, etag, size, &opts);
            if result.is_err() {
                let _ = fs::remove_file(&staged);
            }
            result
        })
        .await
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes> {
        check_key(key)?;
        let k = key.to_string();
        self.blocking(key, move |s| {
            let _lock = s.lock(&k, false)?;
            let mut f = File::open(s.path(&k)).map_err(|e| io_err(&k, e))?;
            let size = f.metadata().map_err(|e| io_err(&k, e))?.len();
            let (start, end) = (start.min(size), end.min(size));
            f.seek(SeekFrom::Start(start)).map_err(|e| io_err(&k, e))?;
            let mut buf = Vec::with_capacity(end.saturating_sub(start) as usize);
            f.take(end.saturating_sub(start))
                .read_to_end(&mut buf)
                .map_err(|e| io_err(&k, e))?;
            Ok(Bytes::from(buf))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        check_key(key)?;
        let k = key.to_string();
        self.blocking(key, move |s| {
            let _lock = s.lock(&k, false)?;
            s.meta(&k)
        })
        .await
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        check_key(key)?;
        let k = key.to_string();
        self.blocking(key, move |s| {
            let etag = crate::etag_of(&body);
            let staged = s.stage_bytes(&k, &body)?;
            let result = s.commit(&k, &staged, etag, body.len() as u64, &opts);
            if result.is_err() {
                let _ = fs::remove_file(&staged);
            }
            result
        })
        .await
    }

    async fn copy(
        &self,
        from: &str,
        to: &str,
        source_etag: Option<&str>,
        create_only: bool,
    ) -> Result<ObjectMeta> {
        check_key(from)?;
        check_key(to)?;
        let (from, to) = (from.to_string(), to.to_string());
        let want = source_etag.map(str::to_string);
        let key = to.clone();
        self.blocking(&key, move |s| {
            // A real copy: the source may be a file a user drops into the
            // directory by hand, and could later overwrite in place.
            s.copy_object(&from, &to, want.as_deref(), false, |src| PutOptions {
                mode: if create_only {
                    PutMode::CreateOnly
                } else {
                    PutMode::Overwrite
                },
                content_type: src.content_type.clone(),
                cache_control: src.cache_control.clone(),
            })
        })
        .await
    }

    async fn copy_as(&self, from: &str, to: &str, opts: PutOptions) -> Result<ObjectMeta> {
        check_key(from)?;
        check_key(to)?;
        let (from, to) = (from.to_string(), to.to_string());
        let key = to.clone();
        self.blocking(&key, move |s| {
            s.copy_object(&from, &to, None, true, |_| opts)
        })
        .await
    }

    /// One blocking task reads the base ranges and writes them with the new
    /// bytes through one buffer: no stream, no copies between tasks.
    async fn put_composed(
        &self,
        key: &str,
        base: Option<&str>,
        mut parts: Parts,
        opts: PutOptions,
    ) -> Result<Composed> {
        check_key(key)?;
        if let Some(b) = base {
            check_key(b)?;
        }
        let (k, base) = (key.to_string(), base.map(str::to_string));
        self.blocking(key, move |s| {
            let (staged, sha, size) = s.stage_parts(&k, base.as_deref(), &mut parts)?;
            let result = s.commit(&k, &staged, crate::quoted_etag(&sha), size, &opts);
            if result.is_err() {
                let _ = fs::remove_file(&staged);
            }
            Ok(Composed {
                meta: result?,
                sha256: raptr_formats::hash::hex(&sha),
            })
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let k = key.to_string();
        self.blocking(key, move |s| {
            let _lock = s.lock(&k, true)?;
            for p in [s.path(&k), s.sidecar_path(&k)] {
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&k, e)),
                }
            }
            Ok(())
        })
        .await
    }

    async fn list_page(&self, prefix: &str, after: Option<String>) -> Result<ListPage> {
        let p = prefix.to_string();
        self.blocking(prefix, move |s| {
            // Walk only the deepest directory the prefix names.
            let dir_part = p.rfind('/').map_or("", |i| &p[..i]);
            let start = s.root.join(dir_part);
            let mut keys = Vec::new();
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let entries = match fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err(&p, e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| io_err(&p, e))?;
                    let path = entry.path();
                    let Ok(rel) = path.strip_prefix(&s.root) else {
                        continue;
                    };
                    let Some(rel) = rel.to_str() else { continue };
                    if rel.starts_with(META_DIR) {
                        continue;
                    }
                    let ft = entry.file_type().map_err(|e| io_err(rel, e))?;
                    if ft.is_dir() {
                        stack.push(path);
                    } else if ft.is_file()
                        && rel.starts_with(p.as_str())
                        && after.as_deref().is_none_or(|a| rel > a)
                    {
                        keys.push(rel.to_string());
                    }
                }
            }
            keys.sort();
            let next = (keys.len() > PAGE).then(|| keys[PAGE - 1].clone());
            keys.truncate(PAGE);
            let mut objects = Vec::with_capacity(keys.len());
            for k in keys {
                let _lock = s.lock(&k, false)?;
                match s.meta(&k) {
                    Ok(m) => objects.push(m),
                    Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(ListPage { objects, next })
        })
        .await
    }
}
