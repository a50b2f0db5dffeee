//! What keeps a publisher that lost its lease from writing.
//!
//! While a publisher holds the lease, a [`Keeper`] renews it on a timer
//! (every third of its time to live), whatever the publisher is doing: an
//! index build, a first copy of the pool to a new replica, a verify or a
//! purge. Every renewal moves the [`Fence`]'s deadline to a quarter of the
//! lease before the lease ends as the table has it. Each write and delete
//! the publisher makes, on the primary and on every replica, goes through a
//! [`FencedStore`], which refuses it once the deadline has passed or the
//! lease was found lost. A publisher that was paused (SIGSTOP, a frozen
//! Lambda sandbox) or cut off past its lease therefore writes nothing when
//! it comes back: its deadline is behind it before anyone else could take
//! the lease.
//!
//! A pause that falls between the check and the request leaving the
//! process is not caught by the deadline; the writes that could then do
//! harm carry their own condition on the object ([`super::release`]:
//! `Release`, `Release.gpg` and `InRelease` replace only what the writer
//! read, and never a newer one).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use raptr_store::table::{Lease, Table, TableError};
use raptr_store::{ByteReader, ListPage, ObjectMeta, ObjectStore, PutOptions, StoreError};
use tokio::time::Instant;

/// Whether the holder may still write, and until when.
#[derive(Debug, Default)]
pub struct Fence {
    state: Mutex<FenceState>,
}

#[derive(Debug, Default)]
struct FenceState {
    /// Writes pass until then (none: no lease is held).
    until: Option<Instant>,
    /// Why the lease is known to be gone.
    lost: Option<String>,
}

/// The part of a lease's time kept back from the fence's deadline: clocks,
/// and the time a request takes to reach the store.
fn margin(ttl: Duration) -> Duration {
    ttl / 4
}

impl Fence {
    /// A lease was taken (or renewed) at `taken` for `ttl`.
    pub fn hold(&self, taken: Instant, ttl: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.until = Some(taken + ttl - margin(ttl));
        s.lost = None;
    }

    /// The lease was renewed by a request sent at `sent`.
    fn renewed(&self, sent: Instant, ttl: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.lost.is_none() && s.until.is_some() {
            s.until = Some(sent + ttl - margin(ttl));
        }
    }

    fn lose(&self, why: String) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.lost.get_or_insert(why);
    }

    /// The lease was given back.
    pub fn close(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.until = None;
    }

    /// Why the lease held now is gone (lost, or run out unrenewed), if it
    /// is; `None` too when no lease is held.
    pub fn lapsed(&self) -> Option<String> {
        self.judge().err().flatten()
    }

    /// Why a write now must not happen, if it must not.
    fn refusal(&self) -> Option<String> {
        match self.judge() {
            Ok(()) => None,
            Err(why) => Some(why.unwrap_or_else(|| "no publish lease is held".into())),
        }
    }

    /// `Ok` while a lease is held and current; `Err(Some(why))` when it is
    /// gone, `Err(None)` when none is held.
    fn judge(&self) -> Result<(), Option<String>> {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(why) = &s.lost {
            return Err(Some(why.clone()));
        }
        match s.until {
            None => Err(None),
            Some(t) if Instant::now() >= t => Err(Some(
                "the publish lease ran out before it could be renewed".into(),
            )),
            Some(_) => Ok(()),
        }
    }

    /// `Ok` while the holder may write `key`.
    pub fn check(&self, key: &str) -> Result<(), StoreError> {
        match self.refusal() {
            None => Ok(()),
            Some(why) => Err(StoreError::Permanent {
                key: key.to_string(),
                source: format!("not written: {why}; another publisher may hold it now").into(),
            }),
        }
    }
}

/// Renews a lease on a timer until stopped.
#[derive(Debug)]
pub struct Keeper {
    task: tokio::task::JoinHandle<()>,
}

impl Keeper {
    /// Starts renewing `lease` every third of `ttl`; a renewal that finds
    /// the lease gone closes `fence` for good. A failed renewal is retried
    /// soon; if none succeeds, the fence's deadline passes by itself.
    pub fn start(table: Arc<dyn Table>, lease: &Lease, ttl: Duration, fence: Arc<Fence>) -> Self {
        let mut lease = lease.clone();
        let task = tokio::spawn(async move {
            let period = ttl / 3;
            let mut pause = period;
            loop {
                tokio::time::sleep(pause).await;
                let sent = Instant::now();
                match table.renew(&mut lease, ttl).await {
                    Ok(()) => {
                        fence.renewed(sent, ttl);
                        pause = period;
                    }
                    Err(e @ TableError::LeaseLost { .. }) => {
                        tracing::warn!(error = %e, "publish lease lost; writing nothing more");
                        fence.lose(e.to_string());
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "publish lease not renewed; trying again");
                        pause = (period / 8).max(Duration::from_millis(50));
                    }
                }
            }
        });
        Keeper { task }
    }

    /// Stops renewing (before the lease is given back).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A store whose writes and deletes pass only while the fence allows them;
/// reads always pass.
#[derive(Debug)]
pub struct FencedStore {
    inner: Arc<dyn ObjectStore>,
    fence: Arc<Fence>,
}

impl FencedStore {
    pub fn wrap(inner: Arc<dyn ObjectStore>, fence: Arc<Fence>) -> Arc<dyn ObjectStore> {
        Arc::new(FencedStore { inner, fence })
    }
}

#[async_trait]
impl ObjectStore for FencedStore {
    async fn get(&self, key: &str) -> raptr_store::Result<(Bytes, ObjectMeta)> {
        self.inner.get(key).await
    }

    async fn get_limited(&self, key: &str, limit: u64) -> raptr_store::Result<(Bytes, ObjectMeta)> {
        self.inner.get_limited(key, limit).await
    }

    async fn get_stream(&self, key: &str) -> raptr_store::Result<(ByteReader, ObjectMeta)> {
        self.inner.get_stream(key).await
    }

    async fn put_stream(
        &self,
        key: &str,
        body: ByteReader,
        opts: PutOptions,
    ) -> raptr_store::Result<ObjectMeta> {
        self.fence.check(key)?;
        self.inner.put_stream(key, body, opts).await
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> raptr_store::Result<Bytes> {
        self.inner.get_range(key, start, end).await
    }

    async fn head(&self, key: &str) -> raptr_store::Result<ObjectMeta> {
        self.inner.head(key).await
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        opts: PutOptions,
    ) -> raptr_store::Result<ObjectMeta> {
        self.fence.check(key)?;
        self.inner.put(key, body, opts).await
    }

    async fn copy(
        &self,
        from: &str,
        to: &str,
        source_etag: Option<&str>,
        create_only: bool,
    ) -> raptr_store::Result<ObjectMeta> {
        self.fence.check(to)?;
        self.inner.copy(from, to, source_etag, create_only).await
    }

    async fn put_composed(
        &self,
        key: &str,
        base: Option<&str>,
        parts: raptr_store::compose::Parts,
        opts: PutOptions,
    ) -> raptr_store::Result<raptr_store::compose::Composed> {
        self.fence.check(key)?;
        self.inner.put_composed(key, base, parts, opts).await
    }

    async fn copy_as(
        &self,
        from: &str,
        to: &str,
        opts: PutOptions,
    ) -> raptr_store::Result<ObjectMeta> {
        self.fence.check(to)?;
        self.inner.copy_as(from, to, opts).await
    }

    async fn delete(&self, key: &str) -> raptr_store::Result<()> {
        self.fence.check(key)?;
        self.inner.delete(key).await
    }

    async fn delete_many(&self, keys: &[String]) -> raptr_store::Result<()> {
        if let Some(first) = keys.first() {
            self.fence.check(first)?;
        }
        self.inner.delete_many(keys).await
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: Option<String>,
    ) -> raptr_store::Result<ListPage> {
        self.inner.list_page(prefix, after).await
    }
}
