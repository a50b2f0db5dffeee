//! The conformance suite every [`ObjectStore`] adapter must pass. Each check is
//! a public async function that panics with a message naming the broken
//! promise; adapters' test files call them one per test, each under its own
//! key prefix.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::{ObjectStore, PutMode, PutOptions, StoreError};

pub mod table;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Put, get, head and get_range agree, metadata included, for keys with the
/// characters Debian file names use.
pub async fn round_trip(store: &dyn ObjectStore, prefix: &str) {
    for name in [
        "plain",
        "g++_1.0+b1_amd64.deb",
        "v_1:2.0~rc1.dsc",
        "with space",
    ] {
        let key = format!("{prefix}/pool/{name}");
        let opts = PutOptions {
            content_type: Some("application/vnd.debian.binary-package".into()),
            cache_control: Some("public, max-age=31536000, immutable".into()),
            ..Default::default()
        };
        let put = store.put(&key, b("hello raptr"), opts).await.expect("put");
        let (body, meta) = store.get(&key).await.expect("get");
        assert_eq!(body, b("hello raptr"), "{key}: body round-trips");
        assert_eq!(meta.key, key, "{key}: key round-trips exactly");
        assert_eq!(meta.size, 11);
        assert_eq!(meta.etag, put.etag, "{key}: put and get agree on the ETag");
        assert_eq!(
            meta.content_type.as_deref(),
            Some("application/vnd.debian.binary-package")
        );
        assert_eq!(
            meta.cache_control.as_deref(),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(store.head(&key).await.expect("head"), meta);
        assert_eq!(
            store.get_range(&key, 6, 11).await.expect("range"),
            b("raptr")
        );
        assert_eq!(
            store.get_range(&key, 6, 99).await.expect("range"),
            b("raptr")
        );
    }
    // Heads and listings say when an object was written.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let written = |m: &crate::ObjectMeta| m.modified.is_some_and(|t| t.abs_diff(now) < 600);
    let head = store
        .head(&format!("{prefix}/pool/plain"))
        .await
        .expect("head");
    assert!(written(&head), "head: {head:?}");
    let listed = store.list(&format!("{prefix}/pool/")).await.expect("list");
    assert!(listed.iter().all(written), "list: {listed:?}");
    // A bounded read takes an object at its limit and refuses one byte more.
    let key = format!("{prefix}/pool/plain");
    let (body, _) = store.get_limited(&key, 11).await.expect("at the limit");
    assert_eq!(body, b("hello raptr"));
    assert!(matches!(
        store.get_limited(&key, 10).await,
        Err(StoreError::TooLarge {
            size: 11,
            limit: 10,
            ..
        })
    ));
    let missing = format!("{prefix}/missing");
    assert!(
        matches!(store.get(&missing).await, Err(StoreError::NotFound { key }) if key == missing)
    );
    assert!(matches!(
        store.get_limited(&missing, 10).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.head(&missing).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// Create-only never replaces; if-match replaces only the version it names.
pub async fn put_modes(store: &dyn ObjectStore, prefix: &str) {
    let key = format!("{prefix}/manifest.json");
    let first = store
        .put(&key, b("v1"), PutOptions::create_only())
        .await
        .expect("create");
    let again = store.put(&key, b("v2"), PutOptions::create_only()).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "create-only on an existing key: {again:?}"
    );
    assert_eq!(
        store.get(&key).await.expect("get").0,
        b("v1"),
        "create-only changed nothing"
    );

    let second = store
        .put(&key, b("v2"), PutOptions::if_match(&first.etag))
        .await
        .expect("cas");
    assert_ne!(first.etag, second.etag, "new content, new ETag");
    let stale = store
        .put(&key, b("v3"), PutOptions::if_match(&first.etag))
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed { .. })),
        "stale ETag: {stale:?}"
    );
    assert_eq!(
        store.get(&key).await.expect("get").0,
        b("v2"),
        "a failed CAS changed nothing"
    );

    let absent = store
        .put(
            &format!("{prefix}/absent"),
            b("x"),
            PutOptions::if_match(&first.etag),
        )
        .await;
    assert!(
        matches!(
            absent,
            Err(StoreError::PreconditionFailed { .. }) | Err(StoreError::NotFound { .. })
        ),
        "if-match on a missing key: {absent:?}"
    );
    store
        .put(&key, b("v4"), PutOptions::default())
        .await
        .expect("overwrite");
    assert_eq!(store.get(&key).await.expect("get").0, b("v4"));
}

/// The idempotent write: same bytes, nothing to do; other bytes, refused.
pub async fn put_if_absent_or_same(store: &dyn ObjectStore, prefix: &str) {
    let key = format!("{prefix}/pool/a.deb");
    assert!(store
        .put_if_absent_or_same(&key, b("deb"), PutOptions::default())
        .await
        .expect("first"));
    assert!(!store
        .put_if_absent_or_same(&key, b("deb"), PutOptions::default())
        .await
        .expect("again"));
    let other = store
        .put_if_absent_or_same(&key, b("other"), PutOptions::default())
        .await;
    assert!(
        matches!(other, Err(StoreError::AlreadyExists { .. })),
        "{other:?}"
    );
    assert_eq!(
        store.get(&key).await.expect("get").0,
        b("deb"),
        "nothing overwritten"
    );
}

/// Server-side copy: honours the source ETag and create-only destination.
pub async fn copy(store: &dyn ObjectStore, prefix: &str) {
    let src = format!("{prefix}/incoming/x_1.0_amd64.deb");
    let dst = format!("{prefix}/pool/x_1.0_amd64.deb");
    let opts = PutOptions {
        content_type: Some("application/vnd.debian.binary-package".into()),
        ..Default::default()
    };
    let meta = store.put(&src, b("package"), opts).await.expect("put");
    let stale = store.copy(&src, &dst, Some("\"not-the-etag\""), true).await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed { .. })),
        "stale source: {stale:?}"
    );
    assert!(
        matches!(store.head(&dst).await, Err(StoreError::NotFound { .. })),
        "nothing copied"
    );
    store
        .copy(&src, &dst, Some(&meta.etag), true)
        .await
        .expect("copy");
    let (body, copied) = store.get(&dst).await.expect("get");
    assert_eq!(body, b("package"));
    assert_eq!(
        copied.content_type.as_deref(),
        Some("application/vnd.debian.binary-package")
    );
    let again = store.copy(&src, &dst, Some(&meta.etag), true).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "create-only copy: {again:?}"
    );
    let missing = store
        .copy(&format!("{prefix}/nope"), &dst, None, false)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );

    // copy_as: the destination's metadata comes from the options.
    let staged = format!("{prefix}/state/staging/Packages");
    let published = format!("{prefix}/dists/stable/Packages");
    let immutable = PutOptions {
        content_type: Some("text/plain".into()),
        cache_control: Some("public, max-age=31536000, immutable".into()),
        ..Default::default()
    };
    store
        .put(&staged, b("Package: x\n"), immutable.clone())
        .await
        .expect("put");
    let short = PutOptions {
        content_type: Some("text/plain; charset=utf-8".into()),
        cache_control: Some("public, max-age=60".into()),
        ..Default::default()
    };
    let made = store
        .copy_as(&staged, &published, short.clone())
        .await
        .expect("copy_as");
    assert_eq!(made.size, 11);
    let (body, meta) = store.get(&published).await.expect("get");
    assert_eq!(body, b("Package: x\n"));
    assert_eq!(meta.cache_control.as_deref(), Some("public, max-age=60"));
    assert_eq!(
        meta.content_type.as_deref(),
        Some("text/plain; charset=utf-8")
    );
    // Replacing the source later leaves the copy as it was.
    store
        .put(&staged, b("Package: y\n"), immutable)
        .await
        .expect("put");
    let (body, _) = store.get(&published).await.expect("get");
    assert_eq!(body, b("Package: x\n"));
    let src = store.head(&staged).await.expect("head");
    assert_eq!(
        src.cache_control.as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    let exists = store
        .copy_as(
            &staged,
            &published,
            PutOptions {
                mode: PutMode::CreateOnly,
                ..short
            },
        )
        .await;
    assert!(
        matches!(exists, Err(StoreError::AlreadyExists { .. })),
        "create-only copy_as: {exists:?}"
    );
    let missing = store
        .copy_as(&format!("{prefix}/nope"), &published, PutOptions::default())
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

/// Delete is idempotent; list is ordered, prefix-exact and paginated.
pub async fn delete_and_list(store: &dyn ObjectStore, prefix: &str) {
    let n = 1005;
    for i in 0..n {
        store
            .put(
                &format!("{prefix}/dists/k{i:05}"),
                b("x"),
                PutOptions::default(),
            )
            .await
            .expect("put");
    }
    store
        .put(&format!("{prefix}/distsX"), b("x"), PutOptions::default())
        .await
        .expect("put");
    let listed = store.list(&format!("{prefix}/dists/")).await.expect("list");
    assert_eq!(listed.len(), n, "every object, across pages, once");
    assert!(
        listed.windows(2).all(|w| w[0].key < w[1].key),
        "in key order"
    );
    let first = store
        .list_page(&format!("{prefix}/dists/"), None)
        .await
        .expect("page");
    assert!(first.next.is_some(), "more than one page for {n} objects");

    let keys: Vec<String> = listed.iter().take(10).map(|m| m.key.clone()).collect();
    store.delete_many(&keys).await.expect("delete_many");
    store
        .delete(&keys[0])
        .await
        .expect("deleting a missing key is fine");
    assert!(matches!(
        store.head(&keys[0]).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        store
            .list(&format!("{prefix}/dists/"))
            .await
            .expect("list")
            .len(),
        n - 10
    );
}

/// Keys that could escape or be read differently are refused.
pub async fn invalid_keys(store: &dyn ObjectStore, prefix: &str) {
    for key in [
        String::new(),
        "/abs".to_string(),
        format!("{prefix}/../escape"),
        format!("{prefix}//double"),
        format!("{prefix}/./dot"),
        format!("{prefix}/trailing/"),
    ] {
        let r = store.put(&key, b("x"), PutOptions::default()).await;
        assert!(
            matches!(r, Err(StoreError::InvalidKey { .. })),
            "{key:?}: {r:?}"
        );
    }
}

/// Concurrent create-only puts of one key: exactly one wins.
pub async fn create_only_race(store: Arc<dyn ObjectStore>, prefix: &str) {
    let key = format!("{prefix}/race");
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move {
                store
                    .put(
                        &key,
                        Bytes::from(format!("writer {i}")),
                        PutOptions::create_only(),
                    )
                    .await
            })
        })
        .collect();
    let mut won = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.expect("task") {
            Ok(_) => won.push(i),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => panic!("writer {i}: {e}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one create-only put wins: {won:?}");
    let body = store.get(&key).await.expect("get").0;
    assert_eq!(
        body,
        Bytes::from(format!("writer {}", won[0])),
        "the winner's bytes are stored"
    );
}

/// `tasks` tasks each increment a counter object `rounds` times with
/// compare-and-swap, spread over `stores` (several handles on one bucket act
/// like several processes); the final value is exact (no lost update).
pub async fn cas_counter(
    stores: &[Arc<dyn ObjectStore>],
    prefix: &str,
    tasks: usize,
    rounds: usize,
) {
    let key = format!("{prefix}/counter");
    let store = stores.first().expect("at least one store").clone();
    store
        .put(&key, b("0"), PutOptions::create_only())
        .await
        .expect("init");
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let key = key.clone();
            tokio::spawn(async move {
                for _ in 0..rounds {
                    let mut backoff = crate::table::Backoff::new(&format!("cas-{i}"));
                    loop {
                        let (body, meta) = store.get(&key).await.expect("get");
                        let n: u64 = std::str::from_utf8(&body)
                            .expect("utf-8")
                            .parse()
                            .expect("number");
                        let next = Bytes::from((n + 1).to_string());
                        match store
                            .put(
                                &key,
                                next,
                                PutOptions {
                                    mode: PutMode::IfMatch(meta.etag),
                                    ..Default::default()
                                },
                            )
                            .await
                        {
                            Ok(_) => break,
                            Err(StoreError::PreconditionFailed { .. }) => {
                                tokio::time::sleep(backoff.next_pause()).await
                            }
                            Err(e) => panic!("increment: {e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    let body = store.get(&key).await.expect("get").0;
    assert_eq!(
        body,
        Bytes::from((tasks * rounds).to_string()),
        "no increment lost"
    );
}

/// Deterministic, incompressible-looking bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A body that yields `ok_bytes` bytes and then fails, like a connection
/// dropped in the middle of an upload.
#[derive(Debug)]
pub struct FailingReader {
    left: usize,
}

impl FailingReader {
    pub fn new(ok_bytes: usize) -> Self {
        FailingReader { left: ok_bytes }
    }
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the body broke off",
            )));
        }
        let n = self.left.min(buf.remaining()).min(64 << 10);
        buf.put_slice(&vec![b'x'; n]);
        self.left -= n;
        Poll::Ready(Ok(()))
    }
}

/// Streamed puts and gets of `size` bytes round-trip exactly (pass a size
/// above the adapter's multipart threshold); a streamed create-only put
/// loses to an existing object; a body that breaks off stores nothing.
pub async fn streaming(store: &dyn ObjectStore, prefix: &str, size: usize) {
    let key = format!("{prefix}/stream/big file+1~rc.bin");
    let data = pattern(size, 7);
    let meta = store
        .put_stream(
            &key,
            Box::pin(io::Cursor::new(data.clone())),
            PutOptions::create_only(),
        )
        .await
        .expect("streamed put");
    assert_eq!(meta.size, size as u64, "streamed put reports the size");
    let (mut reader, got) = store.get_stream(&key).await.expect("streamed get");
    assert_eq!(got.size, size as u64);
    assert_eq!(got.etag, store.head(&key).await.expect("head").etag);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut read = 0usize;
    loop {
        let n = reader.read(&mut buf).await.expect("read stream");
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        read += n;
    }
    assert_eq!(read, size, "the stream delivers every byte");
    assert_eq!(
        hasher.finalize().as_slice(),
        Sha256::digest(&data).as_slice(),
        "the stream delivers the stored bytes"
    );
    let again = store
        .put_stream(
            &key,
            Box::pin(io::Cursor::new(b"other".to_vec())),
            PutOptions::create_only(),
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "a streamed create-only put over an object fails: {again:?}"
    );
    let broken = format!("{prefix}/stream/broken");
    let r = store
        .put_stream(
            &broken,
            Box::pin(FailingReader::new(size.min(3 << 20))),
            PutOptions::default(),
        )
        .await;
    assert!(r.is_err(), "a body that breaks off is an error");
    assert!(
        matches!(store.head(&broken).await, Err(StoreError::NotFound { .. })),
        "a body that breaks off stores nothing"
    );
}

/// A copy of a `size`-byte object (pass one above the adapter's copy part
/// size) is exact, create-only when asked, and checks the source's ETag.
pub async fn copy_large(store: &dyn ObjectStore, prefix: &str, size: usize) {
    let from = format!("{prefix}/large/src");
    let to = format!("{prefix}/large/pool/dst+1~a.deb");
    let data = pattern(size, 11);
    let src = store
        .put(&from, Bytes::from(data.clone()), PutOptions::default())
        .await
        .expect("put");
    let copied = store
        .copy(&from, &to, Some(&src.etag), true)
        .await
        .expect("create-only copy of a large object");
    assert_eq!(copied.size, size as u64);
    let (body, _) = store.get(&to).await.expect("get");
    assert!(body == data, "the copy has the source's bytes");
    let again = store.copy(&from, &to, Some(&src.etag), true).await;
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "a create-only copy onto an object fails: {again:?}"
    );
    let stale = store
        .copy(&from, &format!("{to}.2"), Some("\"stale\""), true)
        .await;
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed { .. })),
        "a copy from a changed source fails: {stale:?}"
    );
    assert!(matches!(
        store.head(&format!("{to}.2")).await,
        Err(StoreError::NotFound { .. })
    ));
}

/// A composed object has the base ranges and new bytes in order, its
/// SHA-256 and the options asked for; one whose writer stops early, or that
/// names bytes its base lacks, stores nothing. Pass a `size` above the
/// adapter's multipart threshold to cover it.
pub async fn compose(store: &dyn ObjectStore, prefix: &str, size: usize) {
    use crate::compose::{Composer, Part};

    let base_key = format!("{prefix}/compose/base");
    let base = pattern(size, 5);
    store
        .put(&base_key, Bytes::from(base.clone()), PutOptions::default())
        .await
        .expect("put base");
    let parts = vec![
        Part::Bytes(b("first ")),
        Part::Base {
            start: 10,
            len: 1000,
        },
        Part::Bytes(b("between")),
        Part::Base {
            start: 5000,
            len: (size - 5000) as u64,
        },
        Part::Bytes(b(" last")),
    ];
    let mut want = Vec::new();
    for p in &parts {
        match p {
            Part::Bytes(x) => want.extend_from_slice(x),
            Part::Base { start, len } => {
                want.extend_from_slice(&base[*start as usize..(*start + *len) as usize])
            }
            Part::End => {}
        }
    }
    let send = |parts: Vec<Part>, finish: bool| {
        let (mut c, rx) = Composer::new();
        let feed = async move {
            for p in parts {
                let sent = match p {
                    Part::Bytes(x) => c.bytes(x).await,
                    Part::Base { start, len } => c.base(start, len).await,
                    Part::End => Ok(()),
                };
                if sent.is_err() {
                    return;
                }
            }
            if finish {
                let _ = c.finish().await;
            }
        };
        (feed, rx)
    };
    let key = format!("{prefix}/compose/dists/Packages");
    let opts = PutOptions {
        content_type: Some("text/plain".into()),
        cache_control: Some("max-age=60".into()),
        ..PutOptions::create_only()
    };
    let (feed, rx) = send(parts.clone(), true);
    let (_, made) = tokio::join!(
        feed,
        store.put_composed(&key, Some(&base_key), rx, opts.clone())
    );
    let made = made.expect("composed put");
    let (body, meta) = store.get(&key).await.expect("get composed");
    assert!(body == want, "the composed object has its parts in order");
    assert_eq!(made.meta, meta, "put_composed returns the stored metadata");
    assert_eq!(meta.size, want.len() as u64);
    assert_eq!(
        made.sha256,
        raptr_formats::hash::hex(&Sha256::digest(&want)),
        "put_composed returns the content's SHA-256"
    );
    assert_eq!(meta.content_type.as_deref(), Some("text/plain"));
    assert_eq!(meta.cache_control.as_deref(), Some("max-age=60"));

    let (feed, rx) = send(parts.clone(), true);
    let (_, again) = tokio::join!(feed, store.put_composed(&key, Some(&base_key), rx, opts));
    assert!(
        matches!(again, Err(StoreError::AlreadyExists { .. })),
        "a create-only composition over an object fails: {again:?}"
    );

    let fresh = format!("{prefix}/compose/fresh");
    let (feed, rx) = send(vec![Part::Bytes(b("only new bytes"))], true);
    let (_, made) = tokio::join!(
        feed,
        store.put_composed(&fresh, None, rx, PutOptions::default())
    );
    assert_eq!(made.expect("composed without base").meta.size, 14);
    assert_eq!(store.get(&fresh).await.expect("get").0, b("only new bytes"));

    let failures = [
        ("abandoned", parts.clone(), false),
        (
            "short",
            vec![Part::Base {
                start: size as u64 - 10,
                len: 100,
            }],
            true,
        ),
        (
            "backwards",
            vec![
                Part::Base {
                    start: 500,
                    len: 10,
                },
                Part::Base { start: 0, len: 10 },
            ],
            true,
        ),
    ];
    for (name, parts, finish) in failures {
        let k = format!("{prefix}/compose/{name}");
        let (feed, rx) = send(parts, finish);
        let (_, r) = tokio::join!(
            feed,
            store.put_composed(&k, Some(&base_key), rx, PutOptions::default())
        );
        assert!(r.is_err(), "{name}: the composition fails: {r:?}");
        assert!(
            matches!(store.head(&k).await, Err(StoreError::NotFound { .. })),
            "{name}: a failed composition stores nothing"
        );
    }
}
