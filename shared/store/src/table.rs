//! The lease lock and the journal: the two ports of the repository's table
//! (DynamoDB in AWS, [`LocalTable`] on a directory), and the local adapter.
//!
//! **Lease lock.** One named lease at a time has one holder. Acquiring is a
//! conditional write that succeeds only if the lease is free or expired, and
//! hands out a fencing token that only grows. The holder renews it before it
//! expires; everything it commits through the table (marking journal entries
//! done, recording a replica's generation) is conditional on its token being
//! current and unexpired, so a holder that was paused past its expiry cannot
//! commit after a taker has moved on. A second party that finds the lease
//! held leaves a *mark* ([`LeaseLock::acquire_or_mark`]); the holder's
//! release fails with [`Release::Rerun`] while marks it has not seen exist, so
//! the work that party wanted done is never lost between the holder's last
//! look at the journal and its release.
//!
//! **Journal.** Changes waiting to be published, each appended under an
//! idempotency key (appending a key again stores nothing new, even after the
//! first was published), listed in append order, and removed in batches by
//! the lease holder. Beside it, each replica's published generation.
//!
//! What these ports do not do: wait for a lease to be free without polling,
//! or order changes across two appenders that race (both land; order between
//! them is the order of their sequence numbers, not of their commits).
//!
//! Times are milliseconds of the Unix epoch from each party's clock; leases
//! assume clocks agree to well within a lease's length.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The most a journal entry's body may hold (DynamoDB's item limit is 400 KB).
pub const MAX_CHANGE_BODY: usize = 64 << 10;

/// A held lease. Keep it to renew, to commit through the journal, and to
/// release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub owner: String,
    /// Grows with every acquisition of this lease name.
    pub token: u64,
    pub expires_at_ms: u64,
    /// The wake-up marks this holder has answered.
    pub seen_marks: u64,
}

/// What a release did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    Released,
    /// Someone asked for another run while the lease was held: do the work
    /// again (the lease is still held, and now counts those marks as seen),
    /// then release again.
    Rerun,
}

/// A failure of the table. `LeaseLost` is an answer (stop, someone else
/// holds the lease now); `Transient` may succeed if retried.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("lease {name}: lost (expired or taken over); nothing was committed")]
    LeaseLost { name: String },
    #[error("{what}: transient failure: {source}")]
    Transient {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{what}: {source}")]
    Permanent {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl TableError {
    pub fn is_transient(&self) -> bool {
        matches!(self, TableError::Transient { .. })
    }

    pub fn permanent(
        what: impl Into<String>,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        TableError::Permanent {
            what: what.into(),
            source: e.into(),
        }
    }
}

pub type TableResult<T> = std::result::Result<T, TableError>;

/// The lease lock port.
///
/// An `owner` names one party (one process, one invocation): it must not
/// try to take a lease it already holds. Adapters rely on this to recognise
/// their own take when a request is retried after a lost response.
#[async_trait]
pub trait LeaseLock: Send + Sync + fmt::Debug {
    /// Takes `name` if it is free or expired; `None` if someone holds it.
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> TableResult<Option<Lease>>;

    /// Takes `name` if it is free or expired; otherwise leaves a mark that
    /// the holder must answer before it can release, and returns `None`.
    async fn acquire_or_mark(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> TableResult<Option<Lease>>;

    /// Extends a held, unexpired lease to `ttl` from now.
    async fn renew(&self, lease: &mut Lease, ttl: Duration) -> TableResult<()>;

    /// Gives the lease up, unless marks arrived that this holder has not
    /// answered ([`Release::Rerun`]).
    async fn release(&self, lease: &mut Lease) -> TableResult<Release>;

    /// Polls [`try_acquire`](LeaseLock::try_acquire) with a growing,
    /// jittered pause for at most `wait`.
    async fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
        wait: Duration,
    ) -> TableResult<Option<Lease>> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut backoff = Backoff::new(owner);
        loop {
            if let Some(lease) = self.try_acquire(name, owner, ttl).await? {
                return Ok(Some(lease));
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(backoff.next_pause().min(deadline - now)).await;
        }
    }
}

/// Jittered exponential pauses between retries, from 1 ms up to
/// [`Backoff::CAP`]: a party that has waited long asks rarely, so many
/// waiters do not crowd out the holder's own requests (and every attempt on
/// DynamoDB is a billed write).
#[derive(Debug)]
pub struct Backoff {
    next_ms: u64,
    jitter: Jitter,
}

impl Backoff {
    pub const CAP: Duration = Duration::from_millis(256);

    pub fn new(seed: &str) -> Self {
        Backoff {
            next_ms: 1,
            jitter: Jitter::new(seed),
        }
    }

    /// A pause between half and all of the current step; the step doubles.
    pub fn next_pause(&mut self) -> Duration {
        let step = self.next_ms;
        self.next_ms = (step * 2).min(Self::CAP.as_millis() as u64);
        Duration::from_millis(step / 2 + self.jitter.below(step / 2 + 1))
    }
}

/// A tiny xorshift generator, so that pollers do not retry in lockstep.
#[derive(Debug)]
struct Jitter(u64);

impl Jitter {
    fn new(seed: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as u64);
        let h = Sha256::digest(seed.as_bytes());
        let mut x = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) ^ nanos;
        if x == 0 {
            x = 0x9e37_79b9_7f4a_7c15;
        }
        Jitter(x)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// One change waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Append order.
    pub seq: u64,
    /// The idempotency key it was appended under.
    pub id: String,
    /// What changed, as the core encodes it.
    pub body: String,
}

/// The answer to an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub seq: u64,
    /// `false` when the idempotency key was already in the journal.
    pub new: bool,
}

/// The journal port.
#[async_trait]
pub trait Journal: Send + Sync + fmt::Debug {
    /// Appends `body` under the idempotency key `id`, once: appending a key
    /// that was appended before (pending or done) stores nothing and returns
    /// the first append's sequence number.
    async fn append(&self, id: &str, body: &str) -> TableResult<Appended>;

    /// The oldest `limit` pending changes, in sequence order.
    async fn pending(&self, limit: usize) -> TableResult<Vec<Change>>;

    /// Removes published changes from the pending list, only while `lease`
    /// is current; already removed ones are ignored.
    async fn mark_done(&self, lease: &Lease, seqs: &[u64]) -> TableResult<()>;

    /// Every replica's published generation.
    async fn replica_generations(&self) -> TableResult<BTreeMap<String, u64>>;

    /// Records that `replica` serves `generation`, only while `lease` is
    /// current. Generations only grow: `Ok(false)` when the replica already
    /// serves this one or a later one.
    async fn set_replica_generation(
        &self,
        lease: &Lease,
        replica: &str,
        generation: u64,
    ) -> TableResult<bool>;
}

/// The table as a whole: both ports, from one adapter.
pub trait Table: LeaseLock + Journal {}
impl<T: LeaseLock + Journal + ?Sized> Table for T {}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Checks an idempotency key and a body against the limits every adapter
/// shares.
pub fn check_change(id: &str, body: &str) -> TableResult<()> {
    if id.is_empty() || id.len() > 1024 {
        return Err(TableError::permanent(
            format!("journal key {id:?}"),
            "must be 1 to 1024 bytes",
        ));
    }
    if body.len() > MAX_CHANGE_BODY {
        return Err(TableError::permanent(
            format!("journal key {id}"),
            format!("body of {} bytes exceeds {MAX_CHANGE_BODY}", body.len()),
        ));
    }
    Ok(())
}

/// The table on a local directory, shared safely by threads and processes.
///
/// Every operation runs under one exclusive OS lock on `table.lock`, and
/// every file is replaced by writing a staged copy and renaming it:
///
/// | path | what |
/// | --- | --- |
/// | `table.lock` | the lock every operation holds |
/// | `leases/<hex of name>.json` | owner, token, expiry, marks |
/// | `seq` | the last sequence number handed out |
/// | `journal/<seq, 20 digits>.json` | a pending change |
/// | `ids/<sha256 of key>` | the sequence number an idempotency key got |
/// | `replicas.json` | each replica's published generation |
#[derive(Debug, Clone)]
pub struct LocalTable {
    dir: Arc<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LeaseRecord {
    owner: String,
    token: u64,
    expires_at_ms: u64,
    marks: u64,
}

impl LocalTable {
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<LocalTable> {
        let dir = dir.into();
        for d in ["leases", "journal", "ids", "tmp"] {
            fs::create_dir_all(dir.join(d))?;
        }
        Ok(LocalTable { dir: Arc::new(dir) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` under the table lock on a blocking thread.
    async fn locked<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&Path) -> TableResult<T> + Send + 'static,
    ) -> TableResult<T> {
        let dir = self.dir.clone();
        let what = what.to_string();
        tokio::task::spawn_blocking(move || {
            let lock = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join("table.lock"))
                .map_err(|e| io_err(&what, e))?;
            lock.lock().map_err(|e| io_err(&what, e))?;
            let out = f(&dir);
            let _ = lock.unlock();
            out
        })
        .await
        .map_err(|e| TableError::permanent("local table", e.to_string()))?
    }
}

fn io_err(what: &str, e: io::Error) -> TableError {
    match e.kind() {
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            TableError::Transient {
                what: what.to_string(),
                source: e.into(),
            }
        }
        _ => TableError::permanent(what, e),
    }
}

fn read_opt(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `bytes` in one rename. The table lock is held, so a
/// fixed staging name per directory entry cannot collide.
fn write_atomic(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("no file name"))?;
    let tmp = dir.join("tmp").join(name);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    fs::rename(&tmp, path)
}

fn lease_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("leases").join(format!(
        "{}.json",
        raptr_formats::hash::hex(name.as_bytes())
    ))
}

fn read_lease(dir: &Path, name: &str) -> TableResult<Option<LeaseRecord>> {
    let what = format!("lease {name}");
    match read_opt(&lease_path(dir, name)).map_err(|e| io_err(&what, e))? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| TableError::permanent(what, e)),
    }
}

fn write_lease(dir: &Path, name: &str, rec: &LeaseRecord) -> TableResult<()> {
    let what = format!("lease {name}");
    let bytes = serde_json::to_vec(rec).map_err(|e| TableError::permanent(&what, e))?;
    write_atomic(dir, &lease_path(dir, name), &bytes).map_err(|e| io_err(&what, e))
}

/// The fencing check every commit makes: the lease is still this holder's
/// and has not expired.
fn check_current(dir: &Path, lease: &Lease) -> TableResult<()> {
    match read_lease(dir, &lease.name)? {
        Some(r)
            if r.token == lease.token && r.owner == lease.owner && r.expires_at_ms > now_ms() =>
        {
            Ok(())
        }
        _ => Err(TableError::LeaseLost {
            name: lease.name.clone(),
        }),
    }
}

fn ttl_ms(ttl: Duration) -> u64 {
    ttl.as_millis().min(u64::MAX as u128) as u64
}

fn take(dir: &Path, name: &str, owner: &str, ttl: Duration) -> TableResult<Option<Lease>> {
    let now = now_ms();
    let rec = read_lease(dir, name)?.unwrap_or_default();
    if rec.expires_at_ms > now {
        return Ok(None);
    }
    let new = LeaseRecord {
        owner: owner.to_string(),
        token: rec.token + 1,
        expires_at_ms: now + ttl_ms(ttl),
        marks: rec.marks,
    };
    write_lease(dir, name, &new)?;
    Ok(Some(Lease {
        name: name.to_string(),
        owner: owner.to_string(),
        token: new.token,
        expires_at_ms: new.expires_at_ms,
        seen_marks: new.marks,
    }))
}

#[async_trait]
impl LeaseLock for LocalTable {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> TableResult<Option<Lease>> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.locked(&format!("lease {name}"), move |dir| {
            take(dir, &name, &owner, ttl)
        })
        .await
    }

    async fn acquire_or_mark(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> TableResult<Option<Lease>> {
        let (name, owner) = (name.to_string(), owner.to_string());
        self.locked(&format!("lease {name}"), move |dir| {
            if let Some(lease) = take(dir, &name, &owner, ttl)? {
                return Ok(Some(lease));
            }
            // Held and unexpired (both under the table lock): mark it.
            let mut rec = read_lease(dir, &name)?.unwrap_or_default();
            rec.marks += 1;
            write_lease(dir, &name, &rec)?;
            Ok(None)
        })
        .await
    }

    async fn renew(&self, lease: &mut Lease, ttl: Duration) -> TableResult<()> {
        let held = lease.clone();
        let expires = self
            .locked(&format!("lease {}", lease.name), move |dir| {
                check_current(dir, &held)?;
                let mut rec = read_lease(dir, &held.name)?.unwrap_or_default();
                rec.expires_at_ms = now_ms() + ttl_ms(ttl);
                write_lease(dir, &held.name, &rec)?;
                Ok(rec.expires_at_ms)
            })
            .await?;
        lease.expires_at_ms = expires;
        Ok(())
    }

    async fn release(&self, lease: &mut Lease) -> TableResult<Release> {
        let held = lease.clone();
        let (release, marks) = self
            .locked(&format!("lease {}", lease.name), move |dir| {
                check_current(dir, &held)?;
                let mut rec = read_lease(dir, &held.name)?.unwrap_or_default();
                if rec.marks != held.seen_marks {
                    return Ok((Release::Rerun, rec.marks));
                }
                rec.expires_at_ms = 0;
                write_lease(dir, &held.name, &rec)?;
                Ok((Release::Released, rec.marks))
            })
            .await?;
        lease.seen_marks = marks;
        Ok(release)
    }
}

fn entry_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join("journal").join(format!("{seq:020}.json"))
}

fn id_path(dir: &Path, id: &str) -> PathBuf {
    dir.join("ids")
        .join(raptr_formats::hash::hex(&Sha256::digest(id.as_bytes())))
}

fn read_replicas(dir: &Path) -> TableResult<BTreeMap<String, u64>> {
    match read_opt(&dir.join("replicas.json")).map_err(|e| io_err("replicas.json", e))? {
        None => Ok(BTreeMap::new()),
        Some(b) => {
            serde_json::from_slice(&b).map_err(|e| TableError::permanent("replicas.json", e))
        }
    }
}

#[async_trait]
impl Journal for LocalTable {
    async fn append(&self, id: &str, body: &str) -> TableResult<Appended> {
        check_change(id, body)?;
        let (id, body) = (id.to_string(), body.to_string());
        self.locked("journal append", move |dir| {
            let what = format!("journal key {id}");
            let ip = id_path(dir, &id);
            if let Some(b) = read_opt(&ip).map_err(|e| io_err(&what, e))? {
                let seq = String::from_utf8_lossy(&b)
                    .trim()
                    .parse()
                    .map_err(|e| TableError::permanent(&what, e))?;
                return Ok(Appended { seq, new: false });
            }
            let seq_path = dir.join("seq");
            let last: u64 = match read_opt(&seq_path).map_err(|e| io_err("seq", e))? {
                None => 0,
                Some(b) => String::from_utf8_lossy(&b)
                    .trim()
                    .parse()
                    .map_err(|e| TableError::permanent("seq", e))?,
            };
            let seq = last + 1;
            let change = Change {
                seq,
                id: id.clone(),
                body,
            };
            let bytes = serde_json::to_vec(&change).map_err(|e| TableError::permanent(&what, e))?;
            // Counter first: a crash after it leaves a gap, never a reuse.
            write_atomic(dir, &seq_path, seq.to_string().as_bytes())
                .map_err(|e| io_err("seq", e))?;
            write_atomic(dir, &entry_path(dir, seq), &bytes).map_err(|e| io_err(&what, e))?;
            write_atomic(dir, &ip, seq.to_string().as_bytes()).map_err(|e| io_err(&what, e))?;
            Ok(Appended { seq, new: true })
        })
        .await
    }

    async fn pending(&self, limit: usize) -> TableResult<Vec<Change>> {
        self.locked("journal", move |dir| {
            let mut names: Vec<String> = fs::read_dir(dir.join("journal"))
                .map_err(|e| io_err("journal", e))?
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json"))
                .collect();
            names.sort();
            names.truncate(limit);
            let mut out = Vec::with_capacity(names.len());
            for n in names {
                let b = fs::read(dir.join("journal").join(&n)).map_err(|e| io_err(&n, e))?;
                out.push(serde_json::from_slice(&b).map_err(|e| TableError::permanent(&n, e))?);
            }
            Ok(out)
        })
        .await
    }

    async fn mark_done(&self, lease: &Lease, seqs: &[u64]) -> TableResult<()> {
        let (lease, seqs) = (lease.clone(), seqs.to_vec());
        self.locked("journal mark done", move |dir| {
            check_current(dir, &lease)?;
            for seq in seqs {
                match fs::remove_file(entry_path(dir, seq)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&format!("journal entry {seq}"), e)),
                }
            }
            Ok(())
        })
        .await
    }

    async fn replica_generations(&self) -> TableResult<BTreeMap<String, u64>> {
        self.locked("replicas", read_replicas).await
    }

    async fn set_replica_generation(
        &self,
        lease: &Lease,
        replica: &str,
        generation: u64,
    ) -> TableResult<bool> {
        let (lease, replica) = (lease.clone(), replica.to_string());
        self.locked("replicas", move |dir| {
            check_current(dir, &lease)?;
            let mut map = read_replicas(dir)?;
            if map.get(&replica).is_some_and(|g| *g >= generation) {
                return Ok(false);
            }
            map.insert(replica, generation);
            let bytes = serde_json::to_vec_pretty(&map)
                .map_err(|e| TableError::permanent("replicas", e))?;
            write_atomic(dir, &dir.join("replicas.json"), &bytes)
                .map_err(|e| io_err("replicas.json", e))?;
            Ok(true)
        })
        .await
    }
}
