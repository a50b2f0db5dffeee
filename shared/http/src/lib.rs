//! An upstream archive over HTTP(S), read through raptr's object-store port
//! ([`ObjectStore`]): `get`, `get_stream`, `get_limited` and `head` of a
//! path under the archive's base URL. It is read-only: every write, copy,
//! delete and listing is refused. Imports and mirrors read an upstream the
//! same way whether it is `http(s)://`, `file:` (a directory store) or
//! `s3://` (a bucket store).
//!
//! - TLS: rustls with the system's certificates (the stack the AWS SDK
//!   already builds).
//! - Redirects: followed, up to five, to `http(s)://` only.
//! - Answers: 404 and 410 are [`StoreError::NotFound`]; 408, 429 and 5xx are
//!   transient; anything else is permanent, with the status in the error.
//! - Time: connecting and the response head must come within
//!   [`HEAD_TIMEOUT`]; a body stream that stalls longer than
//!   [`READ_TIMEOUT`] (or [`HttpStore::with_read_timeout`]) fails.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Empty};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use raptr_store::{ByteReader, ListPage, ObjectMeta, ObjectStore, PutOptions, Result, StoreError};
use tokio::io::AsyncReadExt;

/// How long connecting and receiving a response's head may take.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a body may go without a byte.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects followed at most.
const REDIRECTS: usize = 5;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// An archive at a base URL, read-only.
#[derive(Clone)]
pub struct HttpStore {
    base: String,
    client: Client<Https, Empty<Bytes>>,
    read_timeout: Duration,
}

impl std::fmt::Debug for HttpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStore")
            .field("base", &self.base)
            .finish()
    }
}

fn permanent(key: &str, why: impl Into<String>) -> StoreError {
    StoreError::Permanent {
        key: key.to_string(),
        source: why.into().into(),
    }
}

fn transient(key: &str, why: impl Into<String>) -> StoreError {
    StoreError::Transient {
        key: key.to_string(),
        source: why.into().into(),
    }
}

impl HttpStore {
    /// The archive at `base` (`http://` or `https://`; a trailing `/` is
    /// added).
    pub fn new(base: &str) -> std::result::Result<HttpStore, String> {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!("{base}: not an http:// or https:// URL"));
        }
        base.parse::<hyper::Uri>()
            .map_err(|e| format!("{base}: not a URL: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        // Certificates the system cannot read are skipped, as curl does.
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(HEAD_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(HttpStore {
            base: if base.ends_with('/') {
                base.to_string()
            } else {
                format!("{base}/")
            },
            client,
            read_timeout: READ_TIMEOUT,
        })
    }

    /// How long a body may go without a byte before the read fails
    /// ([`READ_TIMEOUT`] unless set).
    pub fn with_read_timeout(mut self, limit: Duration) -> HttpStore {
        self.read_timeout = limit;
        self
    }

    /// The base URL, with its trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends `method` for `key`, following redirects; the response of the
    /// last hop, checked for success.
    async fn send(
        &self,
        method: Method,
        key: &str,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, ObjectMeta)> {
        let mut url = format!("{}{key}", self.base);
        for _ in 0..=REDIRECTS {
            let uri: hyper::Uri = url
                .parse()
                .map_err(|e| permanent(key, format!("{url}: not a URL: {e}")))?;
            let req = Request::builder()
                .method(method.clone())
                .uri(uri.clone())
                .header("user-agent", concat!("raptr/", env!("CARGO_PKG_VERSION")))
                .body(Empty::new())
                .map_err(|e| permanent(key, e.to_string()))?;
            let resp = tokio::time::timeout(HEAD_TIMEOUT, self.client.request(req))
                .await
                .map_err(|_| transient(key, format!("{url}: no answer within {HEAD_TIMEOUT:?}")))?
                .map_err(|e| transient(key, format!("{url}: {e}")))?;
            let status = resp.status();
            if status.is_redirection() {
                let Some(to) = resp.headers().get("location").and_then(|l| l.to_str().ok()) else {
                    return Err(permanent(
                        key,
                        format!("{url}: {status} without a Location"),
                    ));
                };
                url = if to.starts_with("http://") || to.starts_with("https://") {
                    to.to_string()
                } else if to.starts_with('/') {
                    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
                    format!("{}://{authority}{to}", uri.scheme_str().unwrap_or("http"))
                } else {
                    return Err(permanent(key, format!("{url}: redirected to {to:?}")));
                };
                continue;
            }
            match status {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND | StatusCode::GONE => {
                    return Err(StoreError::NotFound {
                        key: key.to_string(),
                    })
                }
                s if s.is_server_error()
                    || s == StatusCode::TOO_MANY_REQUESTS
                    || s == StatusCode::REQUEST_TIMEOUT =>
                {
                    return Err(transient(key, format!("{url}: {s}")))
                }
                s => return Err(permanent(key, format!("{url}: {s}"))),
            }
            let header = |n: &str| {
                resp.headers()
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let meta = ObjectMeta {
                key: key.to_string(),
                size: header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                etag: header("etag").unwrap_or_default(),
                content_type: header("content-type"),
                cache_control: header("cache-control"),
                ..ObjectMeta::default()
            };
            return Ok((resp, meta));
        }
        Err(permanent(key, format!("more than {REDIRECTS} redirects")))
    }
}

fn read_only(key: &str) -> StoreError {
    permanent(key, "an upstream archive over HTTP is read-only")
}

#[async_trait]
impl ObjectStore for HttpStore {
    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        let (mut body, meta) = self.get_stream(key).await?;
        let mut buf = Vec::new();
        body.read_to_end(&mut buf)
            .await
            .map_err(|e| transient(key, e.to_string()))?;
        Ok((Bytes::from(buf), meta))
    }

    async fn get_stream(&self, key: &str) -> Result<(ByteReader, ObjectMeta)> {
        let (resp, meta) = self.send(Method::GET, key).await?;
        let stream = resp
            .into_body()
            .into_data_stream()
            .map(|r| r.map_err(std::io::Error::other));
        let reader = tokio_util::io::StreamReader::new(stream);
        Ok((Box::pin(Stalling::new(reader, self.read_timeout)), meta))
    }

    async fn put_stream(&self, key: &str, _: ByteReader, _: PutOptions) -> Result<ObjectMeta> {
        Err(read_only(key))
    }

    async fn get_range(&self, key: &str, _: u64, _: u64) -> Result<Bytes> {
        Err(read_only(key))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        Ok(self.send(Method::HEAD, key).await?.1)
    }

    async fn put(&self, key: &str, _: Bytes, _: PutOptions) -> Result<ObjectMeta> {
        Err(read_only(key))
    }

    async fn copy(&self, from: &str, _: &str, _: Option<&str>, _: bool) -> Result<ObjectMeta> {
        Err(read_only(from))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        Err(read_only(key))
    }

    async fn list_page(&self, prefix: &str, _: Option<String>) -> Result<ListPage> {
        Err(permanent(prefix, "an archive over HTTP cannot be listed"))
    }
}

/// A reader that fails when no byte arrives for `limit`.
struct Stalling<R> {
    inner: R,
    limit: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl<R> Stalling<R> {
    fn new(inner: R, limit: Duration) -> Self {
        Stalling {
            inner,
            limit,
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Stalling<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::future::Future;
        let before = buf.filled().len();
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_read(cx, buf) {
            std::task::Poll::Ready(r) => {
                if buf.filled().len() > before {
                    let next = tokio::time::Instant::now() + this.limit;
                    this.deadline.as_mut().reset(next);
                }
                std::task::Poll::Ready(r)
            }
            std::task::Poll::Pending => match this.deadline.as_mut().poll(cx) {
                std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no data for {:?}", this.limit),
                ))),
                std::task::Poll::Pending => std::task::Poll::Pending,
            },
        }
    }
}
