//! The object store on S3.
//!
//! - Create-only puts send `If-None-Match: *`, compare-and-swap puts
//!   `If-Match: <etag>`; S3 answers 412 and the adapter reports
//!   `AlreadyExists` or `PreconditionFailed`.
//! - Bodies stream both ways. `put_stream` reads one part at a time: a body
//!   shorter than the part size is one PutObject, a longer one a multipart
//!   upload whose completion carries the put's condition, and which is
//!   aborted if the body breaks off.
//! - A copy first checks the source's ETag with a HEAD, then copies with
//!   `x-amz-copy-source-if-match`, so S3 itself refuses a source that changed
//!   in between. A create-only copy, or one above 5 GiB, is a multipart copy
//!   (UploadPartCopy per part) completed with `If-None-Match: *`: CopyObject
//!   has no create-only form.
//! - Listing returns size and ETag; Content-Type and Cache-Control need a
//!   HEAD and are left empty there.

use std::fmt;

use async_trait::async_trait;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, Delete, MetadataDirective, ObjectIdentifier,
};
use aws_sdk_s3::Client;
use bytes::Bytes;
use raptr_store::{
    check_existing_key, check_key, ByteReader, ListPage, ObjectMeta, ObjectStore, PutMode,
    PutOptions, Result, StoreError,
};
use tokio::io::AsyncReadExt;

use crate::http_status;

/// The largest object CopyObject copies in one request.
const MAX_SINGLE_COPY: u64 = 5 << 30;

/// Tunables of the S3 adapter.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Bodies longer than this are multipart uploads of parts this size
    /// (S3's minimum is 5 MiB).
    pub part_size: usize,
    /// Part size of multipart copies.
    pub copy_part_size: u64,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            part_size: 16 << 20,
            copy_part_size: 1 << 30,
        }
    }
}

/// One bucket as an [`ObjectStore`].
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    opts: S3Options,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.bucket)
            .field("opts", &self.opts)
            .finish()
    }
}

/// Turns an SDK failure into the port's error for `key`: 404 is not-found,
/// 412 a failed precondition, throttling, 5xx, 409 (a concurrent conditional
/// write) and network failures are transient, the rest permanent.
pub(crate) fn classify<E>(
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let key = key.to_string();
    let status = http_status(&err);
    let code = err.code().unwrap_or_default().to_string();
    let source: Box<dyn std::error::Error + Send + Sync> = crate::explain("S3", &err).into();
    match (status, code.as_str()) {
        // A missing bucket is not a missing object: nothing would ever be
        // found there, and nothing written.
        (_, "NoSuchBucket") => StoreError::Permanent { key, source },
        (Some(404), _) | (_, "NoSuchKey" | "NotFound") => StoreError::NotFound { key },
        (Some(412), _) | (_, "PreconditionFailed") => StoreError::PreconditionFailed { key },
        (_, "InvalidObjectState" | "ObjectNotInActiveTierError") => StoreError::Denied {
            key,
            reason: "in an archive storage class; restore it (or copy it to STANDARD) first"
                .into(),
        },
        (Some(403), _) => StoreError::Denied {
            key,
            reason: format!(
                "access denied ({}): a bucket or key policy, or a KMS key this function may not use",
                if code.is_empty() { "403" } else { code.as_str() }
            ),
        },
        (Some(409 | 429 | 500..=599), _)
        | (_, "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable") => {
            StoreError::Transient { key, source }
        }
        (None, _) => StoreError::Transient { key, source },
        _ => StoreError::Permanent { key, source },
    }
}

/// [`classify`] for a read of one object (get, head): a bad request there
/// means the object is encrypted with a key its writer kept (SSE-C), which
/// a read without that key always gets.
pub(crate) fn classify_read<E>(
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if http_status(&err) == Some(400) {
        return StoreError::Denied {
            key: key.to_string(),
            reason: "encrypted with a customer-provided key (SSE-C); upload it without one".into(),
        };
    }
    classify(key, err)
}

/// A precondition failure on a create-only write means the key exists.
fn create_only_err(mode: &PutMode, e: StoreError) -> StoreError {
    match (mode, e) {
        (PutMode::CreateOnly, StoreError::PreconditionFailed { key }) => {
            StoreError::AlreadyExists { key }
        }
        // If-Match on a missing key: S3 says 404, the port says the
        // precondition failed.
        (PutMode::IfMatch(_), StoreError::NotFound { key }) => {
            StoreError::PreconditionFailed { key }
        }
        (_, e) => e,
    }
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/`.
fn encode_copy_source(bucket: &str, key: &str) -> String {
    let mut out = String::with_capacity(bucket.len() + key.len() + 8);
    out.push_str(bucket);
    out.push('/');
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Store {
            client,
            bucket: bucket.into(),
            opts: S3Options::default(),
        }
    }

    pub fn with_options(mut self, opts: S3Options) -> Self {
        assert!(
            opts.part_size >= 5 << 20 && opts.copy_part_size >= 5 << 20,
            "S3 parts are at least 5 MiB"
        );
        self.opts = opts;
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_single(&self, key: &str, body: Bytes, opts: &PutOptions) -> Result<ObjectMeta> {
        let size = body.len() as u64;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(body))
            .set_content_type(opts.content_type.clone())
            .set_cache_control(opts.cache_control.clone());
        req = match &opts.mode {
            PutMode::Overwrite => req,
            PutMode::CreateOnly => req.if_none_match("*"),
            PutMode::IfMatch(etag) => req.if_match(etag),
        };
        let out = req
            .send()
            .await
            .map_err(|e| create_only_err(&opts.mode, classify(key, e)))?;
        Ok(ObjectMeta {
            key: key.to_string(),
            size,
            etag: out.e_tag.unwrap_or_default(),
            content_type: opts.content_type.clone(),
            cache_control: opts.cache_control.clone(),
            modified: None,
        })
    }

    /// Fills `buf` from `body` up to its capacity; returns how much it read.
    async fn fill(
        key: &str,
        body: &mut ByteReader,
        buf: &mut Vec<u8>,
        want: usize,
    ) -> Result<usize> {
        buf.clear();
        let mut limited = body.take(want as u64);
        limited
            .read_to_end(buf)
            .await
            .map_err(|e| StoreError::Transient {
                key: key.to_string(),
                source: e.into(),
            })
    }

    /// Starts a multipart upload of `key`; returns its id.
    async fn create_upload(
        &self,
        key: &str,
        content_type: Option<String>,
        cache_control: Option<String>,
    ) -> Result<String> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(content_type)
            .set_cache_control(cache_control)
            .send()
            .await
            .map_err(|e| classify(key, e))?;
        Ok(created.upload_id.unwrap_or_default())
    }

    /// Best effort: an upload left behind costs storage, not correctness
    /// (and a lifecycle rule cleans it up).
    async fn abort_upload(&self, key: &str, upload_id: &str) {
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
    }

    async fn multipart_put(
        &self,
        key: &str,
        first: Vec<u8>,
        body: &mut ByteReader,
        opts: &PutOptions,
    ) -> Result<ObjectMeta> {
        let upload_id = self
            .create_upload(key, opts.content_type.clone(), opts.cache_control.clone())
            .await?;
        let result = self.upload_parts(key, &upload_id, first, body, opts).await;
        if result.is_err() {
            self.abort_upload(key, &upload_id).await;
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Vec<u8>,
        body: &mut ByteReader,
        opts: &PutOptions,
    ) -> Result<ObjectMeta> {
        let mut parts = Vec::new();
        let mut size = 0u64;
        let mut buf = first;
        let mut number = 1i32;
        loop {
            if buf.is_empty() {
                break;
            }
            size += buf.len() as u64;
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(std::mem::take(&mut buf)))
                .send()
                .await
                .map_err(|e| classify(key, e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag)
                    .build(),
            );
            number += 1;
            let mut next = Vec::with_capacity(self.opts.part_size);
            Self::fill(key, body, &mut next, self.opts.part_size).await?;
            buf = next;
        }
        self.complete(key, upload_id, parts, &opts.mode)
            .await
            .map(|etag| ObjectMeta {
                key: key.to_string(),
                size,
                etag,
                content_type: opts.content_type.clone(),
                cache_control: opts.cache_control.clone(),
                modified: None,
            })
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        mode: &PutMode,
    ) -> Result<String> {
        let mut req = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        req = match mode {
            PutMode::Overwrite => req,
            PutMode::CreateOnly => req.if_none_match("*"),
            PutMode::IfMatch(etag) => req.if_match(etag),
        };
        let out = req
            .send()
            .await
            .map_err(|e| create_only_err(mode, classify(key, e)))?;
        Ok(out.e_tag.unwrap_or_default())
    }

    /// One CopyObject of `src`, its ETag the precondition. With `replace`
    /// the destination takes Content-Type and Cache-Control from `src`
    /// (which the caller may have changed), else the source's are copied.
    async fn copy_object(
        &self,
        from: &str,
        to: &str,
        src: ObjectMeta,
        replace: bool,
    ) -> Result<ObjectMeta> {
        let req = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(encode_copy_source(&self.bucket, from))
            .copy_source_if_match(&src.etag);
        let req = if replace {
            req.metadata_directive(MetadataDirective::Replace)
                .set_content_type(src.content_type.clone())
                .set_cache_control(src.cache_control.clone())
        } else {
            req.metadata_directive(MetadataDirective::Copy)
        };
        let out = req.send().await.map_err(|e| copy_err(from, to, e))?;
        Ok(ObjectMeta {
            key: to.to_string(),
            size: src.size,
            etag: out
                .copy_object_result
                .and_then(|r| r.e_tag)
                .unwrap_or_default(),
            content_type: src.content_type,
            cache_control: src.cache_control,
            modified: None,
        })
    }

    async fn multipart_copy(
        &self,
        from: &str,
        to: &str,
        src: &ObjectMeta,
        mode: &PutMode,
    ) -> Result<ObjectMeta> {
        let upload_id = self
            .create_upload(to, src.content_type.clone(), src.cache_control.clone())
            .await?;
        let result = async {
            let source = encode_copy_source(&self.bucket, from);
            let mut parts = Vec::new();
            let mut start = 0u64;
            let mut number = 1i32;
            loop {
                let end = (start + self.opts.copy_part_size).min(src.size);
                let mut req = self
                    .client
                    .upload_part_copy()
                    .bucket(&self.bucket)
                    .key(to)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .copy_source(&source)
                    .copy_source_if_match(&src.etag);
                // A part covering the whole object needs no range (and an
                // empty object has none to give).
                if start > 0 || end < src.size {
                    req = req.copy_source_range(format!("bytes={start}-{}", end - 1));
                }
                let out = req.send().await.map_err(|e| classify(from, e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.copy_part_result.and_then(|r| r.e_tag))
                        .build(),
                );
                number += 1;
                start = end;
                if start >= src.size {
                    break;
                }
            }
            self.complete(to, &upload_id, parts, mode).await
        }
        .await;
        match result {
            Ok(etag) => Ok(ObjectMeta {
                key: to.to_string(),
                size: src.size,
                etag,
                content_type: src.content_type.clone(),
                cache_control: src.cache_control.clone(),
                modified: None,
            }),
            Err(e) => {
                self.abort_upload(to, &upload_id).await;
                Err(e)
            }
        }
    }
}

/// A failed copy names its source when the source is what was wrong.
fn copy_err<E>(
    from: &str,
    to: &str,
    e: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match classify(to, e) {
        StoreError::PreconditionFailed { .. } => StoreError::PreconditionFailed {
            key: from.to_string(),
        },
        StoreError::NotFound { .. } => StoreError::NotFound {
            key: from.to_string(),
        },
        other => other,
    }
}

fn meta_of(
    key: &str,
    size: Option<i64>,
    etag: Option<String>,
    content_type: Option<String>,
    cache_control: Option<String>,
    modified: Option<&aws_sdk_s3::primitives::DateTime>,
) -> ObjectMeta {
    ObjectMeta {
        key: key.to_string(),
        size: size.unwrap_or_default().max(0) as u64,
        etag: etag.unwrap_or_default(),
        content_type,
        cache_control,
        modified: modified.and_then(|t| u64::try_from(t.secs()).ok()),
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        let (body, meta) = self.get_stream(key).await?;
        Ok((raptr_store::read_all(key, body).await?, meta))
    }

    async fn get_stream(&self, key: &str) -> Result<(ByteReader, ObjectMeta)> {
        check_existing_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify_read(key, e))?;
        let meta = meta_of(
            key,
            out.content_length,
            out.e_tag,
            out.content_type,
            out.cache_control,
            out.last_modified.as_ref(),
        );
        Ok((Box::pin(out.body.into_async_read()), meta))
    }

    async fn put_stream(
        &self,
        key: &str,
        mut body: ByteReader,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        check_key(key)?;
        let part = self.opts.part_size;
        let mut first = Vec::with_capacity(part.min(1 << 20));
        let n = Self::fill(key, &mut body, &mut first, part).await?;
        if n < part {
            return self.put_single(key, Bytes::from(first), &opts).await;
        }
        self.multipart_put(key, first, &mut body, &opts).await
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes> {
        check_existing_key(key)?;
        if end <= start {
            return Ok(Bytes::new());
        }
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{}", end - 1))
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            // A range that starts past the end: nothing to return.
            Err(e) if http_status(&e) == Some(416) => return Ok(Bytes::new()),
            Err(e) => return Err(classify(key, e)),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Transient {
                key: key.to_string(),
                source: e.into(),
            })?;
        Ok(body.into_bytes())
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        check_existing_key(key)?;
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify_read(key, e))?;
        Ok(meta_of(
            key,
            out.content_length,
            out.e_tag,
            out.content_type,
            out.cache_control,
            out.last_modified.as_ref(),
        ))
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        check_key(key)?;
        self.put_single(key, body, &opts).await
    }

    async fn copy(
        &self,
        from: &str,
        to: &str,
        source_etag: Option<&str>,
        create_only: bool,
    ) -> Result<ObjectMeta> {
        check_existing_key(from)?;
        check_key(to)?;
        let src = self.head(from).await?;
        if source_etag.is_some_and(|want| want != src.etag) {
            return Err(StoreError::PreconditionFailed {
                key: from.to_string(),
            });
        }
        if create_only || src.size > MAX_SINGLE_COPY {
            let mode = if create_only {
                PutMode::CreateOnly
            } else {
                PutMode::Overwrite
            };
            return self.multipart_copy(from, to, &src, &mode).await;
        }
        self.copy_object(from, to, src, false).await
    }

    async fn copy_as(&self, from: &str, to: &str, opts: PutOptions) -> Result<ObjectMeta> {
        check_existing_key(from)?;
        check_key(to)?;
        let mut src = self.head(from).await?;
        src.content_type = opts.content_type;
        src.cache_control = opts.cache_control;
        if opts.mode != PutMode::Overwrite || src.size > MAX_SINGLE_COPY {
            return self.multipart_copy(from, to, &src, &opts.mode).await;
        }
        self.copy_object(from, to, src, true).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        check_existing_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(key, e))?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        for chunk in keys.chunks(1000) {
            let mut objects = Vec::with_capacity(chunk.len());
            for k in chunk {
                check_existing_key(k)?;
                objects.push(ObjectIdentifier::builder().key(k).build().map_err(|e| {
                    StoreError::Permanent {
                        key: k.clone(),
                        source: e.into(),
                    }
                })?);
            }
            let first = chunk.first().cloned().unwrap_or_default();
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::Permanent {
                    key: first.clone(),
                    source: e.into(),
                })?;
            let out = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| classify(&first, e))?;
            if let Some(err) = out.errors.unwrap_or_default().into_iter().next() {
                let key = err.key.unwrap_or(first);
                let msg = format!(
                    "delete failed: {} {}",
                    err.code.unwrap_or_default(),
                    err.message.unwrap_or_default()
                );
                return Err(StoreError::Transient {
                    key,
                    source: msg.into(),
                });
            }
        }
        Ok(())
    }

    async fn list_page(&self, prefix: &str, after: Option<String>) -> Result<ListPage> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(after)
            .max_keys(1000)
            .send()
            .await
            .map_err(|e| classify(prefix, e))?;
        let objects: Vec<ObjectMeta> = out
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| {
                let key = o.key?;
                Some(meta_of(
                    &key,
                    o.size,
                    o.e_tag,
                    None,
                    None,
                    o.last_modified.as_ref(),
                ))
            })
            .collect();
        let next = if out.is_truncated.unwrap_or(false) {
            objects.last().map(|o| o.key.clone())
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }
}

#[cfg(test)]
mod tests {
    use super::encode_copy_source;

    #[test]
    fn copy_source_keeps_slashes_and_encodes_the_rest() {
        assert_eq!(
            encode_copy_source("b", "pool/main/g/g++/1:2.0~rc 1/g++_2.0.deb"),
            "b/pool/main/g/g%2B%2B/1%3A2.0~rc%201/g%2B%2B_2.0.deb"
        );
    }
}
