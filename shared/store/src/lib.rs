//! The storage port of raptr, in object-store terms: get, head, put with a
//! mode, server-side copy with a precondition, delete, list. The same ingest and
//! publish logic runs on S3 (the AWS adapter) and on a local directory
//! ([`fs::FsStore`], the embedded default of the CLI, the demo and the fast
//! tests), and every adapter must pass [`conformance`].
//!
//! What this port deliberately lacks: directories, renames and symlinks. S3 has
//! none of them, so the core may not rely on them.
//!
//! Keys are `/`-separated, relative, and never contain an empty, `.` or `..`
//! segment ([`check_key`]); Debian file names (`+`, `~`, `:`) are kept exactly.

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

pub mod compose;
pub mod conformance;
pub mod fs;
pub mod table;

/// A streamed object body: read it to its end once.
pub type ByteReader = Pin<Box<dyn AsyncRead + Send>>;

/// How a put treats an object that already exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Fail with [`StoreError::AlreadyExists`] if the key exists.
    CreateOnly,
    /// Replace only the version with this ETag, else
    /// [`StoreError::PreconditionFailed`] (compare-and-swap).
    IfMatch(String),
}

/// Options of a put.
#[derive(Debug, Clone)]
pub struct PutOptions {
    pub mode: PutMode,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
}

impl Default for PutOptions {
    fn default() -> Self {
        PutOptions {
            mode: PutMode::Overwrite,
            content_type: None,
            cache_control: None,
        }
    }
}

impl PutOptions {
    pub fn create_only() -> Self {
        PutOptions {
            mode: PutMode::CreateOnly,
            ..Default::default()
        }
    }

    pub fn if_match(etag: impl Into<String>) -> Self {
        PutOptions {
            mode: PutMode::IfMatch(etag.into()),
            ..Default::default()
        }
    }
}

/// What a head (or a get, or a listing) tells about an object.
#[derive(Debug, Clone, Default)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// An opaque version tag; equal ETags mean equal content.
    pub etag: String,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    /// When the object was last written, in whole seconds since the Unix
    /// epoch, where the adapter says (heads, gets and listings do; the
    /// answer to a write does not).
    pub modified: Option<u64>,
}

/// Two descriptions of an object are equal when they describe the same
/// content and headers; the time is not compared (a write does not know it,
/// a head of the same version does).
impl PartialEq for ObjectMeta {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.size == other.size
            && self.etag == other.etag
            && self.content_type == other.content_type
            && self.cache_control == other.cache_control
    }
}

impl Eq for ObjectMeta {}

/// A storage failure, naming the key it concerns. Callers branch on the
/// variant: not-found and precondition failures are answers, transient errors
/// are retried, permanent ones are reported.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key}: no such object")]
    NotFound { key: String },
    #[error("{key}: already exists")]
    AlreadyExists { key: String },
    #[error("{key}: precondition failed (the object changed)")]
    PreconditionFailed { key: String },
    #[error("{key}: invalid key: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// May succeed if tried again (throttling, a timeout, a 5xx).
    #[error("{key}: transient failure: {source}")]
    Transient {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object is larger than the reader allows: final, however often
    /// it is read.
    #[error("{key}: {size} bytes, more than the {limit} allowed")]
    TooLarge { key: String, size: u64, limit: u64 },
    /// The object exists but this party may not read it as it is: access
    /// denied (a bucket or key policy, a KMS key it may not use), encrypted
    /// with a key the writer kept (SSE-C), or in an archive storage class
    /// that needs a restore first. Final until someone changes the object
    /// or the permissions.
    #[error("{key}: not readable: {reason}")]
    Denied { key: String, reason: String },
    #[error("{key}: {source}")]
    Permanent {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub fn key(&self) -> &str {
        match self {
            StoreError::NotFound { key }
            | StoreError::AlreadyExists { key }
            | StoreError::Denied { key, .. }
            | StoreError::PreconditionFailed { key }
            | StoreError::InvalidKey { key, .. }
            | StoreError::Transient { key, .. }
            | StoreError::TooLarge { key, .. }
            | StoreError::Permanent { key, .. } => key,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Transient { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    /// Pass back to get the next page; `None` on the last one.
    pub next: Option<String>,
}

/// The storage port.
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// The whole object and its metadata.
    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)>;

    /// The whole object, unless it is larger than `limit` bytes
    /// ([`StoreError::TooLarge`]): memory is bounded by the limit, never by
    /// the size the object or its metadata claims. Every read of something
    /// that input can reach (requests, documents, records raptr keeps in the
    /// bucket) goes through this.
    async fn get_limited(&self, key: &str, limit: u64) -> Result<(Bytes, ObjectMeta)> {
        let (body, meta) = self.get_stream(key).await?;
        let too_large = |size| StoreError::TooLarge {
            key: key.to_string(),
            size,
            limit,
        };
        if meta.size > limit {
            return Err(too_large(meta.size));
        }
        let mut buf = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
        body.take(limit.saturating_add(1))
            .read_to_end(&mut buf)
            .await
            .map_err(|e| StoreError::Transient {
                key: key.to_string(),
                source: e.into(),
            })?;
        if buf.len() as u64 > limit {
            return Err(too_large(buf.len() as u64));
        }
        Ok((Bytes::from(buf), meta))
    }

    /// The object as a stream, and its metadata: memory does not grow with
    /// the object's size. The stream reads the version the metadata
    /// describes, even if the key is overwritten meanwhile.
    async fn get_stream(&self, key: &str) -> Result<(ByteReader, ObjectMeta)>;

    /// Stores an object read from `body` to its end, without holding it all
    /// in memory (S3: multipart above a threshold). Modes as for [`put`].
    /// Nothing is stored if reading `body` fails.
    ///
    /// [`put`]: ObjectStore::put
    async fn put_stream(&self, key: &str, body: ByteReader, opts: PutOptions)
        -> Result<ObjectMeta>;

    /// Bytes `start..end` (end exclusive, clamped to the size).
    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes>;

    async fn head(&self, key: &str) -> Result<ObjectMeta>;

    /// Stores an object; returns its new metadata.
    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<ObjectMeta>;

    /// Server-side copy, only if the source still has `source_etag` when given.
    /// The destination is created only if absent when `create_only`.
    async fn copy(
        &self,
        from: &str,
        to: &str,
        source_etag: Option<&str>,
        create_only: bool,
    ) -> Result<ObjectMeta>;

    /// Server-side copy whose destination takes its mode, Content-Type and
    /// Cache-Control from `opts`, not from the source: how an index staged
    /// once becomes both its immutable by-hash object and its short-lived
    /// canonical one. The default streams through this process.
    async fn copy_as(&self, from: &str, to: &str, opts: PutOptions) -> Result<ObjectMeta> {
        let (body, _) = self.get_stream(from).await?;
        self.put_stream(to, body, opts).await
    }

    /// Stores an object made of ranges of `base` and new bytes, in the order
    /// the writer's [`compose::Composer`] sends them, and returns it with its
    /// SHA-256. Nothing is stored unless the writer finishes. Modes as for
    /// [`put`]. The default streams the base through this process; a store
    /// that can copy ranges more cheaply overrides it.
    ///
    /// [`put`]: ObjectStore::put
    async fn put_composed(
        &self,
        key: &str,
        base: Option<&str>,
        parts: compose::Parts,
        opts: PutOptions,
    ) -> Result<compose::Composed> {
        compose::through_stream(self, key, base, parts, opts).await
    }

    /// Deletes an object; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Lists keys under a prefix, in key order, a page at a time.
    async fn list_page(&self, prefix: &str, after: Option<String>) -> Result<ListPage>;

    /// Deletes many objects; missing ones are not an error.
    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        for k in keys {
            self.delete(k).await?;
        }
        Ok(())
    }

    /// Every object under a prefix, following pages.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.list_page(prefix, after).await?;
            out.extend(page.objects);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Creates `key` with `body` unless the same bytes are already there: the
    /// idempotent write that makes retries harmless. `Ok(true)` when it wrote,
    /// `Ok(false)` when identical content was there, `AlreadyExists` when
    /// different content is (nothing is ever overwritten).
    async fn put_if_absent_or_same(
        &self,
        key: &str,
        body: Bytes,
        opts: PutOptions,
    ) -> Result<bool> {
        let create = PutOptions {
            mode: PutMode::CreateOnly,
            ..opts
        };
        match self.put(key, body.clone(), create).await {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists { .. }) => {
                // Stores whose ETag is the content's SHA-256 answer without a
                // download; the others (S3's MD5 ETags) compare the bytes.
                if self.head(key).await?.etag == etag_of(&body) {
                    return Ok(false);
                }
                let (existing, _) = self.get(key).await?;
                if existing == body {
                    Ok(false)
                } else {
                    Err(StoreError::AlreadyExists {
                        key: key.to_string(),
                    })
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Reads a whole stream, naming `key` if it fails.
pub async fn read_all(key: &str, mut body: ByteReader) -> Result<Bytes> {
    let mut buf = Vec::new();
    body.read_to_end(&mut buf)
        .await
        .map_err(|e| StoreError::Transient {
            key: key.to_string(),
            source: e.into(),
        })?;
    Ok(Bytes::from(buf))
}

/// The ETag [`fs::FsStore`] gives content: its SHA-256, quoted like S3's.
pub fn etag_of(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    quoted_etag(&Sha256::digest(body))
}

/// A SHA-256 digest as an ETag: hex, quoted like S3's.
pub(crate) fn quoted_etag(sha256: &[u8]) -> String {
    format!("\"{}\"", raptr_formats::hash::hex(sha256))
}

/// The keys an object that raptr did not write may have, and that raptr must
/// still be able to read, copy from and delete (an upload): anything S3
/// holds, non-empty and at most 1,024 bytes. Adapters that keep objects as
/// files check [`check_key`] instead, since no file can have the others.
pub fn check_existing_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 1024 {
        return Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason: "empty or longer than 1024 bytes",
        });
    }
    Ok(())
}

/// Refuses keys that could escape a directory or that S3 and a filesystem
/// would treat differently.
pub fn check_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("starts or ends with '/'");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return bad("has an empty, '.' or '..' segment");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return bad("has a control character or a backslash");
    }
    if key.split('/').any(|s| s.starts_with(fs::META_DIR)) {
        return bad("uses the reserved name .raptr-meta");
    }
    Ok(())
}
