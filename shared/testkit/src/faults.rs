//! An object store that fails on purpose: every write (put, streamed or
//! composed put, copy, delete) counts against a budget shared by all the
//! stores that hold the same [`Faults`], so a test can stop a publisher after
//! its n-th write anywhere, or make a replica refuse its first writes.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use raptr_store::compose::{Composed, Parts};
use raptr_store::{ByteReader, ListPage, ObjectMeta, ObjectStore, PutOptions, Result, StoreError};

/// The shared budget of writes.
#[derive(Debug)]
pub struct Faults {
    allowed: AtomicU64,
    fail_first: AtomicU64,
    writes: AtomicU64,
    refused: AtomicBool,
}

impl Faults {
    /// Never fails.
    pub fn none() -> Arc<Faults> {
        Faults::crash_after(u64::MAX)
    }

    /// Lets `n` writes through, then fails every later one, as if the
    /// process had died right after its n-th write.
    pub fn crash_after(n: u64) -> Arc<Faults> {
        Arc::new(Faults {
            allowed: AtomicU64::new(n),
            fail_first: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            refused: AtomicBool::new(false),
        })
    }

    /// Fails the first `n` writes, then lets everything through.
    pub fn fail_first(n: u64) -> Arc<Faults> {
        Arc::new(Faults {
            allowed: AtomicU64::new(u64::MAX),
            fail_first: AtomicU64::new(n),
            writes: AtomicU64::new(0),
            refused: AtomicBool::new(false),
        })
    }

    /// Writes that went through.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    /// Whether a write was refused.
    pub fn tripped(&self) -> bool {
        self.refused.load(Ordering::SeqCst)
    }

    fn write(&self, key: &str) -> Result<()> {
        let fail_first = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail_first {
            self.refused.store(true, Ordering::SeqCst);
            return Err(injected(key));
        }
        let allowed = self.allowed.load(Ordering::SeqCst);
        let taken = self
            .writes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                (w < allowed).then_some(w + 1)
            })
            .is_ok();
        if taken {
            Ok(())
        } else {
            self.refused.store(true, Ordering::SeqCst);
            Err(injected(key))
        }
    }
}

fn injected(key: &str) -> StoreError {
    StoreError::Transient {
        key: key.to_string(),
        source: "injected failure".into(),
    }
}

/// A store whose writes go through a [`Faults`] budget.
pub struct FaultyStore {
    pub inner: Arc<dyn ObjectStore>,
    pub faults: Arc<Faults>,
}

impl fmt::Debug for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({:?})", self.inner)
    }
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>, faults: Arc<Faults>) -> Arc<FaultyStore> {
        Arc::new(FaultyStore { inner, faults })
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn get(&self, key: &str) -> Result<(Bytes, ObjectMeta)> {
        self.inner.get(key).await
    }

    async fn get_stream(&self, key: &str) -> Result<(ByteReader, ObjectMeta)> {
        self.inner.get_stream(key).await
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteReader,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        self.faults.write(key)?;
        self.inner.put_stream(key, body, opts).await
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes> {
        self.inner.get_range(key, start, end).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.inner.head(key).await
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        self.faults.write(key)?;
        self.inner.put(key, body, opts).await
    }

    async fn copy(
        &self,
        from: &str,
        to: &str,
        source_etag: Option<&str>,
        create_only: bool,
    ) -> Result<ObjectMeta> {
        self.faults.write(to)?;
        self.inner.copy(from, to, source_etag, create_only).await
    }

    async fn copy_as(&self, from: &str, to: &str, opts: PutOptions) -> Result<ObjectMeta> {
        self.faults.write(to)?;
        self.inner.copy_as(from, to, opts).await
    }

    async fn put_composed(
        &self,
        key: &str,
        base: Option<&str>,
        parts: Parts,
        opts: PutOptions,
    ) -> Result<Composed> {
        self.faults.write(key)?;
        self.inner.put_composed(key, base, parts, opts).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.faults.write(key)?;
        self.inner.delete(key).await
    }

    async fn list_page(&self, prefix: &str, after: Option<String>) -> Result<ListPage> {
        self.inner.list_page(prefix, after).await
    }
}
