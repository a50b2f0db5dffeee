//! The conformance suite of the lease lock and the journal ([`Table`]). Every
//! check expects a table of its own (an empty directory, or a fresh
//! namespace of the DynamoDB table) and panics with the promise it found
//! broken.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use crate::table::{Release, Table, TableError};
use crate::{ObjectStore, PutMode, PutOptions, StoreError};

const LONG: Duration = Duration::from_secs(30);
// The lease is not fair: under contention one party may wait for many
// others. The wait is a safety net, not a measure.
const WAIT: Duration = Duration::from_secs(900);

fn lost<T: std::fmt::Debug>(r: Result<T, TableError>) -> bool {
    matches!(r, Err(TableError::LeaseLost { .. }))
}

/// One holder at a time; tokens grow; release frees the lease; a released
/// or superseded lease can neither renew nor release again.
pub async fn lease_basics(t: &dyn Table, name: &str) {
    let mut a = t
        .try_acquire(name, "a", LONG)
        .await
        .expect("acquire")
        .expect("a free lease is taken");
    assert_eq!((a.name.as_str(), a.owner.as_str()), (name, "a"));
    assert!(
        t.try_acquire(name, "b", LONG)
            .await
            .expect("acquire")
            .is_none(),
        "a held, unexpired lease is not taken over"
    );
    let before = a.expires_at_ms;
    tokio::time::sleep(Duration::from_millis(20)).await;
    t.renew(&mut a, LONG).await.expect("renew");
    assert!(a.expires_at_ms > before, "renew moves the expiry forward");
    assert_eq!(t.release(&mut a).await.expect("release"), Release::Released);
    let mut b = t
        .try_acquire(name, "b", LONG)
        .await
        .expect("acquire")
        .expect("a released lease is free");
    assert!(
        b.token > a.token,
        "fencing tokens grow: {} then {}",
        a.token,
        b.token
    );
    assert!(
        lost(t.renew(&mut a, LONG).await),
        "a superseded lease cannot renew"
    );
    assert!(
        lost(t.release(&mut a).await),
        "a superseded lease cannot release"
    );
    assert_eq!(t.release(&mut b).await.expect("release"), Release::Released);
    let c = t
        .try_acquire(name, "c", LONG)
        .await
        .expect("acquire")
        .expect("free again");
    assert!(
        c.token > b.token,
        "fencing tokens grow: {} then {}",
        b.token,
        c.token
    );
}

/// A holder paused past its expiry loses to a taker: its renewals, releases,
/// journal commits and conditional object writes are all refused, and the
/// taker's are not.
pub async fn lease_expiry_fences_late_writes(
    t: &dyn Table,
    store: &dyn ObjectStore,
    prefix: &str,
    name: &str,
) {
    let ttl = Duration::from_millis(400);
    let key = format!("{prefix}/fenced-counter");
    store
        .put(&key, Bytes::from_static(b"0"), PutOptions::default())
        .await
        .expect("init counter");
    let mut a = t
        .try_acquire(name, "a", ttl)
        .await
        .expect("acquire")
        .expect("free");
    let (_, seen_by_a) = store.get(&key).await.expect("a reads");
    tokio::time::sleep(ttl + Duration::from_millis(300)).await;

    // Expired, not yet taken over: already nothing commits.
    assert!(
        lost(t.set_replica_generation(&a, "eu", 1).await),
        "an expired lease cannot commit"
    );
    assert!(
        lost(t.mark_done(&a, &[]).await),
        "an expired lease cannot mark done"
    );

    let mut b = t
        .try_acquire(name, "b", LONG)
        .await
        .expect("acquire")
        .expect("an expired lease is taken over");
    assert!(b.token > a.token, "the taker's token is larger");
    let (_, seen_by_b) = store.get(&key).await.expect("b reads");
    store
        .put(
            &key,
            Bytes::from_static(b"1"),
            PutOptions::if_match(seen_by_b.etag),
        )
        .await
        .expect("the taker writes");
    assert!(t
        .set_replica_generation(&b, "eu", 1)
        .await
        .expect("the taker commits"));

    // The paused holder wakes up and tries to finish its work.
    let late = store
        .put(
            &key,
            Bytes::from_static(b"1"),
            PutOptions::if_match(seen_by_a.etag),
        )
        .await;
    assert!(
        matches!(late, Err(StoreError::PreconditionFailed { .. })),
        "the late write is refused: {late:?}"
    );
    assert!(
        lost(t.set_replica_generation(&a, "eu", 2).await),
        "the late commit is refused"
    );
    assert!(
        lost(t.renew(&mut a, LONG).await),
        "the late holder cannot renew"
    );
    assert!(
        lost(t.release(&mut a).await),
        "the late holder cannot release"
    );
    assert_eq!(
        t.replica_generations()
            .await
            .expect("generations")
            .get("eu"),
        Some(&1),
        "only the taker's commit landed"
    );
    assert_eq!(
        store.get(&key).await.expect("get").0,
        Bytes::from_static(b"1")
    );
    assert!(
        t.try_acquire(name, "c", LONG)
            .await
            .expect("acquire")
            .is_none(),
        "the taker still holds the lease"
    );
    assert_eq!(t.release(&mut b).await.expect("release"), Release::Released);
}

/// A party that finds the lease held leaves a mark; the holder cannot
/// release until it has answered it.
pub async fn lease_wakeup_marks(t: &dyn Table, name: &str) {
    let mut a = t
        .acquire_or_mark(name, "a", LONG)
        .await
        .expect("acquire")
        .expect("a free lease is taken");
    assert!(
        t.acquire_or_mark(name, "b", LONG)
            .await
            .expect("mark")
            .is_none(),
        "a held lease is marked, not taken"
    );
    assert!(t
        .acquire_or_mark(name, "c", LONG)
        .await
        .expect("mark")
        .is_none());
    assert_eq!(
        t.release(&mut a).await.expect("release"),
        Release::Rerun,
        "a marked lease asks its holder to run again"
    );
    assert_eq!(
        t.release(&mut a).await.expect("release"),
        Release::Released,
        "once the marks are answered the lease is released"
    );
    let mut d = t
        .acquire_or_mark(name, "d", LONG)
        .await
        .expect("acquire")
        .expect("released, so taken");
    assert_eq!(t.release(&mut d).await.expect("release"), Release::Released);
}

/// `tasks` parties each append a change and then either take the lease and
/// drain the journal, or mark the lease for its holder. When all are done
/// nothing is pending and every change was drained exactly once: no wake-up
/// was lost between a holder's last look at the journal and its release.
pub async fn no_lost_wakeup(tables: &[Arc<dyn Table>], name: &str, tasks: usize, rounds: usize) {
    let drained = Arc::new(Mutex::new(Vec::<u64>::new()));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let t = tables[i % tables.len()].clone();
            let drained = drained.clone();
            let name = name.to_string();
            tokio::spawn(async move {
                for r in 0..rounds {
                    t.append(&format!("change-{i}-{r}"), "{}")
                        .await
                        .expect("append");
                    let owner = format!("task-{i}");
                    let Some(mut lease) = t
                        .acquire_or_mark(&name, &owner, LONG)
                        .await
                        .expect("acquire or mark")
                    else {
                        continue;
                    };
                    loop {
                        // A holder that keeps being asked to rerun keeps
                        // its lease alive, as a real publisher would.
                        t.renew(&mut lease, LONG).await.expect("renew");
                        let batch = t.pending(10_000).await.expect("pending");
                        let seqs: Vec<u64> = batch.iter().map(|c| c.seq).collect();
                        t.mark_done(&lease, &seqs).await.expect("mark done");
                        drained.lock().expect("drained").extend(seqs);
                        match t.release(&mut lease).await.expect("release") {
                            Release::Released => break,
                            Release::Rerun => continue,
                        }
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    let left = tables[0].pending(10_000).await.expect("pending");
    assert!(left.is_empty(), "no change is left behind: {left:?}");
    let drained = drained.lock().expect("drained").clone();
    let unique: BTreeSet<u64> = drained.iter().copied().collect();
    assert_eq!(unique.len(), tasks * rounds, "every change was drained");
    assert_eq!(drained.len(), unique.len(), "no change was drained twice");
}

/// Sets up the counter object of [`counter_under_lease`].
pub async fn counter_init(store: &dyn ObjectStore, prefix: &str) {
    store
        .put(
            &format!("{prefix}/locked-counter"),
            Bytes::from_static(b"0"),
            PutOptions::create_only(),
        )
        .await
        .expect("init counter");
}

/// `rounds` increments of the counter, each under the lease, with plain
/// (unconditional) reads and writes: only the lease keeps them apart.
pub async fn counter_work(
    t: &dyn Table,
    store: &dyn ObjectStore,
    prefix: &str,
    name: &str,
    owner: &str,
    rounds: usize,
) {
    let key = format!("{prefix}/locked-counter");
    for _ in 0..rounds {
        let mut lease = t
            .acquire(name, owner, LONG, WAIT)
            .await
            .expect("acquire")
            .unwrap_or_else(|| panic!("{owner}: lease not free within {WAIT:?}"));
        let (body, _) = store.get(&key).await.expect("get");
        let n: u64 = std::str::from_utf8(&body)
            .expect("utf-8")
            .parse()
            .expect("number");
        store
            .put(
                &key,
                Bytes::from((n + 1).to_string()),
                PutOptions {
                    mode: PutMode::Overwrite,
                    ..Default::default()
                },
            )
            .await
            .expect("put");
        assert_eq!(
            t.release(&mut lease).await.expect("release"),
            Release::Released
        );
    }
}

/// The counter's value.
pub async fn counter_value(store: &dyn ObjectStore, prefix: &str) -> u64 {
    let (body, _) = store
        .get(&format!("{prefix}/locked-counter"))
        .await
        .expect("get counter");
    std::str::from_utf8(&body)
        .expect("utf-8")
        .parse()
        .expect("number")
}

/// `tasks` tasks, spread over `tables` and `stores` (handles on one table
/// and bucket act like separate processes), each increment a counter object
/// `rounds` times under the lease; the final value is exact.
pub async fn counter_under_lease(
    tables: &[Arc<dyn Table>],
    stores: &[Arc<dyn ObjectStore>],
    prefix: &str,
    name: &str,
    tasks: usize,
    rounds: usize,
) {
    counter_init(stores[0].as_ref(), prefix).await;
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let t = tables[i % tables.len()].clone();
            let s = stores[i % stores.len()].clone();
            let (prefix, name) = (prefix.to_string(), name.to_string());
            tokio::spawn(async move {
                counter_work(
                    t.as_ref(),
                    s.as_ref(),
                    &prefix,
                    &name,
                    &format!("task-{i}"),
                    rounds,
                )
                .await
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    assert_eq!(
        counter_value(stores[0].as_ref(), prefix).await,
        (tasks * rounds) as u64,
        "no increment lost under the lease"
    );
}

/// Appending one key twice stores it once; pending lists in order and
/// honours its limit.
pub async fn journal_append_once(t: &dyn Table) {
    let first = t.append("event-1", "{\"n\":1}").await.expect("append");
    assert!(first.new, "a new key is appended");
    let second = t.append("event-2", "{\"n\":2}").await.expect("append");
    assert!(second.seq > first.seq, "sequence numbers grow");
    let again = t.append("event-1", "{\"n\":1}").await.expect("append");
    assert_eq!(
        (again.seq, again.new),
        (first.seq, false),
        "a repeated key is stored once, under its first number"
    );
    let pending = t.pending(100).await.expect("pending");
    let ids: Vec<&str> = pending.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["event-1", "event-2"], "pending is in append order");
    assert_eq!(pending[0].body, "{\"n\":1}", "the body round-trips");
    assert_eq!(t.pending(1).await.expect("pending").len(), 1, "limit holds");
    let big = "x".repeat(crate::table::MAX_CHANGE_BODY + 1);
    assert!(
        matches!(
            t.append("big", &big).await,
            Err(TableError::Permanent { .. })
        ),
        "an oversized body is refused"
    );
}

/// `tasks` tasks append overlapping keys at once; each key is stored once,
/// with distinct sequence numbers.
pub async fn journal_concurrent_appends(t: Arc<dyn Table>, tasks: usize, per_task: usize) {
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let t = t.clone();
            tokio::spawn(async move {
                let mut new = 0;
                for j in 0..per_task {
                    // Task i and task i+1 append the same keys: duplicated events.
                    let id = format!("bundle-{}-{j}", i / 2);
                    if t.append(&id, "{}").await.expect("append").new {
                        new += 1;
                    }
                }
                new
            })
        })
        .collect();
    let mut new = 0;
    for h in handles {
        new += h.await.expect("task");
    }
    let unique = tasks.div_ceil(2) * per_task;
    let pending = t.pending(100_000).await.expect("pending");
    assert_eq!(new, unique, "each key reported new exactly once");
    assert_eq!(pending.len(), unique, "each key stored exactly once");
    let seqs: BTreeSet<u64> = pending.iter().map(|c| c.seq).collect();
    assert_eq!(seqs.len(), unique, "sequence numbers are distinct");
    assert!(
        pending.windows(2).all(|w| w[0].seq < w[1].seq),
        "pending is in sequence order"
    );
}

/// Marking done needs the current lease, removes exactly the batch, is
/// idempotent, and a published key appended again stays published.
pub async fn journal_mark_done_fenced(t: &dyn Table, name: &str) {
    let a = t.append("one", "{}").await.expect("append");
    let b = t.append("two", "{}").await.expect("append");
    let mut lease = t
        .try_acquire(name, "publisher", LONG)
        .await
        .expect("acquire")
        .expect("free");
    t.mark_done(&lease, &[a.seq]).await.expect("mark done");
    t.mark_done(&lease, &[a.seq])
        .await
        .expect("marking twice is harmless");
    let left: Vec<String> = t
        .pending(10)
        .await
        .expect("pending")
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, ["two"], "only the batch was removed");
    assert!(
        !t.append("one", "{}").await.expect("append").new,
        "a published key appended again is not new"
    );
    assert_eq!(t.pending(10).await.expect("pending").len(), 1);
    assert_eq!(
        t.release(&mut lease).await.expect("release"),
        Release::Released
    );
    assert!(
        lost(t.mark_done(&lease, &[b.seq]).await),
        "a released lease cannot mark done"
    );
    assert_eq!(
        t.pending(10).await.expect("pending").len(),
        1,
        "a refused batch removes nothing"
    );
}

/// Replica generations are kept per replica, only grow, and need the lease.
pub async fn replica_generations(t: &dyn Table, name: &str) {
    let mut lease = t
        .try_acquire(name, "publisher", LONG)
        .await
        .expect("acquire")
        .expect("free");
    assert!(t.replica_generations().await.expect("read").is_empty());
    assert!(t
        .set_replica_generation(&lease, "eu-west-1", 3)
        .await
        .expect("set"));
    assert!(t
        .set_replica_generation(&lease, "us-east-1", 2)
        .await
        .expect("set"));
    assert!(
        !t.set_replica_generation(&lease, "eu-west-1", 2)
            .await
            .expect("set"),
        "a generation never goes back"
    );
    assert!(t
        .set_replica_generation(&lease, "eu-west-1", 4)
        .await
        .expect("set"));
    let gens = t.replica_generations().await.expect("read");
    assert_eq!(gens.get("eu-west-1"), Some(&4));
    assert_eq!(gens.get("us-east-1"), Some(&2));
    assert_eq!(
        t.release(&mut lease).await.expect("release"),
        Release::Released
    );
    assert!(
        lost(t.set_replica_generation(&lease, "us-east-1", 9).await),
        "a released lease cannot commit"
    );
    assert_eq!(
        t.replica_generations()
            .await
            .expect("read")
            .get("us-east-1"),
        Some(&2)
    );
}
