//! An object store that fails on purpose: every write (put, streamed or
//! composed put, copy, delete) counts against a budget shared by all the
//! stores that hold the same [`Faults`], so a test can stop a publisher after
//! its n-th write anywhere, or make a replica refuse its first writes.
//!
//! [`Faults::pause_at`] freezes a party instead, as SIGSTOP would: at its
//! first write of a given key, that write and every later write and table
//! call of the party wait until the test resumes it ([`FrozenTable`] holds
//! the party's table calls, lease renewals included).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use raptr_store::compose::{Composed, Parts};
use raptr_store::table::{
    Appended, Change, Journal, Lease, LeaseLock, Release, Table, TableResult,
};
use raptr_store::{ByteReader, ListPage, ObjectMeta, ObjectStore, PutOptions, Result, StoreError};

/// The shared budget of writes.
#[derive(Debug)]
pub struct Faults {
    allowed: AtomicU64,
    fail_first: AtomicU64,
    writes: AtomicU64,
    refused: AtomicBool,
    pause: Option<Pause>,
    /// Keys this party may not read (as with a 403 or an archived object).
    denied: std::sync::Mutex<Vec<String>>,
}

/// Where a party freezes, and whether it is frozen now.
#[derive(Debug)]
struct Pause {
    key: String,
    hit: AtomicBool,
    frozen: tokio::sync::watch::Sender<bool>,
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
            pause: None,
            denied: Default::default(),
        })
    }

    /// Freezes the party at its first write of `key` (before the write
    /// reaches the store), until [`Faults::resume`].
    pub fn pause_at(key: &str) -> Arc<Faults> {
        Arc::new(Faults {
            allowed: AtomicU64::new(u64::MAX),
            fail_first: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            refused: AtomicBool::new(false),
            pause: Some(Pause {
                key: key.to_string(),
                hit: AtomicBool::new(false),
                frozen: tokio::sync::watch::channel(false).0,
            }),
            denied: Default::default(),
        })
    }

    /// Makes reads of `key` fail as unreadable ([`StoreError::Denied`]).
    pub fn deny_reading(&self, key: &str) {
        self.denied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(key.to_string());
    }

    fn read(&self, key: &str) -> Result<()> {
        let denied = self.denied.lock().unwrap_or_else(|e| e.into_inner());
        if denied.iter().any(|k| k == key) {
            return Err(StoreError::Denied {
                key: key.to_string(),
                reason: "access denied (injected)".into(),
            });
        }
        Ok(())
    }

    /// Waits until the party is frozen (at most `limit`); `false` if it
    /// never reached the key.
    pub async fn frozen(&self, limit: Duration) -> bool {
        let Some(p) = &self.pause else { return false };
        let mut rx = p.frozen.subscribe();
        let reached = tokio::time::timeout(limit, rx.wait_for(|f| *f))
            .await
            .is_ok();
        reached
    }

    /// Lets a frozen party go on.
    pub fn resume(&self) {
        if let Some(p) = &self.pause {
            p.frozen.send_replace(false);
        }
    }

    /// Freezes here if this is the key, and waits while frozen.
    async fn hold(&self, key: Option<&str>) {
        let Some(p) = &self.pause else { return };
        if key == Some(p.key.as_str()) && !p.hit.swap(true, Ordering::SeqCst) {
            p.frozen.send_replace(true);
        }
        let mut rx = p.frozen.subscribe();
        let _ = rx.wait_for(|f| !*f).await;
    }

    /// Fails the first `n` writes, then lets everything through.
    pub fn fail_first(n: u64) -> Arc<Faults> {
        Arc::new(Faults {
            allowed: AtomicU64::new(u64::MAX),
            fail_first: AtomicU64::new(n),
            writes: AtomicU64::new(0),
            refused: AtomicBool::new(false),
            pause: None,
            denied: Default::default(),
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
        self.faults.read(key)?;
        self.inner.get(key).await
    }

    async fn get_stream(&self, key: &str) -> Result<(ByteReader, ObjectMeta)> {
        self.faults.read(key)?;
        self.inner.get_stream(key).await
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteReader,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        self.faults.hold(Some(key)).await;
        self.faults.write(key)?;
        self.inner.put_stream(key, body, opts).await
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Bytes> {
        self.faults.read(key)?;
        self.inner.get_range(key, start, end).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.faults.read(key)?;
        self.inner.head(key).await
    }

    async fn put(&self, key: &str, body: Bytes, opts: PutOptions) -> Result<ObjectMeta> {
        self.faults.hold(Some(key)).await;
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
        self.faults.hold(Some(to)).await;
        self.faults.read(from)?;
        self.faults.write(to)?;
        self.inner.copy(from, to, source_etag, create_only).await
    }

    async fn copy_as(&self, from: &str, to: &str, opts: PutOptions) -> Result<ObjectMeta> {
        self.faults.hold(Some(to)).await;
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
        self.faults.hold(Some(key)).await;
        self.faults.write(key)?;
        self.inner.put_composed(key, base, parts, opts).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.faults.hold(Some(key)).await;
        self.faults.write(key)?;
        self.inner.delete(key).await
    }

    async fn list_page(&self, prefix: &str, after: Option<String>) -> Result<ListPage> {
        self.inner.list_page(prefix, after).await
    }
}

/// A table whose calls wait while its [`Faults`] holds the party frozen
/// (lease renewals too, as in a stopped process).
#[derive(Debug)]
pub struct FrozenTable {
    pub inner: Arc<dyn Table>,
    pub faults: Arc<Faults>,
}

impl FrozenTable {
    pub fn new(inner: Arc<dyn Table>, faults: Arc<Faults>) -> Arc<FrozenTable> {
        Arc::new(FrozenTable { inner, faults })
    }
}

#[async_trait]
impl LeaseLock for FrozenTable {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> TableResult<Option<Lease>> {
        self.faults.hold(None).await;
        self.inner.try_acquire(name, owner, ttl).await
    }

    async fn acquire_or_mark(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> TableResult<Option<Lease>> {
        self.faults.hold(None).await;
        self.inner.acquire_or_mark(name, owner, ttl).await
    }

    async fn renew(&self, lease: &mut Lease, ttl: Duration) -> TableResult<()> {
        self.faults.hold(None).await;
        self.inner.renew(lease, ttl).await
    }

    async fn release(&self, lease: &mut Lease) -> TableResult<Release> {
        self.faults.hold(None).await;
        self.inner.release(lease).await
    }
}

#[async_trait]
impl Journal for FrozenTable {
    async fn append(&self, id: &str, body: &str) -> TableResult<Appended> {
        self.faults.hold(None).await;
        self.inner.append(id, body).await
    }

    async fn pending(&self, limit: usize) -> TableResult<Vec<Change>> {
        self.faults.hold(None).await;
        self.inner.pending(limit).await
    }

    async fn mark_done(&self, lease: &Lease, seqs: &[u64]) -> TableResult<()> {
        self.faults.hold(None).await;
        self.inner.mark_done(lease, seqs).await
    }

    async fn replica_generations(&self) -> TableResult<BTreeMap<String, u64>> {
        self.faults.hold(None).await;
        self.inner.replica_generations().await
    }

    async fn set_replica_generation(
        &self,
        lease: &Lease,
        replica: &str,
        generation: u64,
    ) -> TableResult<bool> {
        self.faults.hold(None).await;
        self.inner
            .set_replica_generation(lease, replica, generation)
            .await
    }
}
