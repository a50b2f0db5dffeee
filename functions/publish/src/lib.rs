//! The publish function: everything that turns the journal into what apt
//! reads, for one repository.
//!
//! Accepted payloads:
//! - a DynamoDB Streams event of the table (any records: a journal append
//!   is the wake-up; what changed is read from the journal itself) →
//!   publish;
//! - an EventBridge scheduled event (`"source": "aws.events"`) → the sweep
//!   of `incoming/` (stale pending files rejected, missed events handled),
//!   then publish;
//! - a direct invocation `{"raptr": "publish" | "sweep" | "purge" |
//!   "verify", "dry_run": false}` (operators, tests, the demo).
//!
//! The configuration is read from the primary bucket on every invocation,
//! and the signing key from Secrets Manager (or a file, for the `file`
//! form). A publisher that finds the lease held leaves its wake-up mark and
//! returns at once: the holder runs again before it lets go. Any failure
//! that may pass later fails the invocation, so that AWS retries it; the
//! state the publisher keeps makes the retry converge.

use std::sync::Arc;
use std::time::Duration;

use raptr_core::config::Config;
use raptr_core::ingest::Ingest;
use raptr_core::progress::Progress;
use raptr_core::publish::{Publisher, Replica};
use raptr_core::repo::load_config;
use raptr_core::signing::{load, Signer};
use raptr_store::table::Table;
use raptr_store::ObjectStore;
use serde_json::{json, Value};

/// What an invocation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Publish,
    /// Sweep, then publish (the schedule).
    Scheduled,
    Sweep,
    /// Sync the configured mirrors, then publish.
    Mirror,
    Purge {
        dry_run: bool,
    },
    Verify {
        dry_run: bool,
    },
}

/// Why a payload was not understood.
#[derive(Debug, thiserror::Error)]
#[error("unrecognised event payload: {0}")]
pub struct PayloadError(String);

/// The task a payload asks for.
pub fn task(payload: &Value) -> Result<Task, PayloadError> {
    if let Some(what) = payload.get("raptr") {
        let dry_run = payload
            .get("dry_run")
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| PayloadError("\"dry_run\" must be true or false".into()))
            })
            .transpose()?
            .unwrap_or(false);
        return match what.as_str() {
            Some("publish") => Ok(Task::Publish),
            Some("sweep") => Ok(Task::Sweep),
            Some("mirror") => Ok(Task::Mirror),
            Some("purge") => Ok(Task::Purge { dry_run }),
            Some("verify") => Ok(Task::Verify { dry_run }),
            _ => Err(PayloadError(format!(
                "\"raptr\": {what}: expected publish, sweep, mirror, purge or verify"
            ))),
        };
    }
    if payload.get("source").and_then(Value::as_str) == Some("aws.events") {
        return Ok(Task::Scheduled);
    }
    let from_stream = payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|r| {
            r.iter()
                .all(|rec| rec.get("eventSource").and_then(Value::as_str) == Some("aws:dynamodb"))
        });
    if from_stream {
        return Ok(Task::Publish);
    }
    Err(PayloadError(
        "neither a DynamoDB stream event, a scheduled event nor {\"raptr\": ...}".into(),
    ))
}

/// How the function reaches AWS: the SDK configuration (endpoint,
/// credentials) and whether S3 needs path-style addressing.
#[derive(Debug, Clone)]
pub struct Aws {
    pub conf: aws_config::SdkConfig,
    pub path_style: bool,
}

/// The function's state between invocations.
#[derive(Debug, Clone)]
pub struct Handler {
    pub bucket: String,
    pub store: Arc<dyn ObjectStore>,
    pub table: Arc<dyn Table>,
    pub aws: Aws,
    /// Names this execution environment in the lease.
    pub owner: String,
    /// How long the lease lasts unless renewed (the publisher's five
    /// minutes when `None`); see [`lease_from_env`].
    pub lease: Option<Duration>,
    /// Objects younger than this are left to their own events by the sweep
    /// ([`raptr_core::ingest::SWEEP_MIN_AGE_SECONDS`] when `None`); see
    /// [`sweep_min_age_from_env`].
    pub sweep_min_age: Option<Duration>,
    /// How often long work logs how far it is (ten seconds when `None`);
    /// see [`progress_from_env`].
    pub progress_every: Option<Duration>,
    /// How long one invocation spends on a verify (two minutes when
    /// `None`); see [`verify_slice_from_env`].
    pub verify_slice: Option<Duration>,
    /// How long one invocation spends syncing mirrors before it leaves the
    /// rest to the next ([`MIRROR_BUDGET`] when `None`); see
    /// [`mirror_budget_from_env`].
    pub mirror_budget: Option<Duration>,
    /// The signing keys last loaded, reused by later invocations of this
    /// execution environment.
    pub keys: KeyCache,
}

/// How long loaded signing keys are reused: a secret changed in place is
/// read again within this time; a changed `signing_key` at once.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(300);

/// The signing keys an execution environment loaded, with the
/// configuration that named them and when. Unlocking a GnuPG-protected key
/// hashes its passphrase tens of millions of times, so warm invocations
/// reuse the keys rather than read and check them each time.
#[derive(Clone, Default)]
pub struct KeyCache(Arc<tokio::sync::Mutex<Option<Loaded>>>);

/// Keys loaded for a `signing_key`, and when.
type Loaded = (
    raptr_core::config::SigningKeys,
    Arc<Signer>,
    std::time::Instant,
);

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache")
    }
}

/// The lease length `RAPTR_LEASE_SECONDS` sets, if it is set. A publisher
/// that dies holds the lease this long, so the next run waits this long; a
/// live one renews it on a timer, every third of it, whatever it is doing
/// (see `raptr_core::publish::fence`).
pub fn lease_from_env() -> Result<Option<Duration>, String> {
    let Ok(text) = std::env::var("RAPTR_LEASE_SECONDS") else {
        return Ok(None);
    };
    match text.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Some(Duration::from_secs(n))),
        _ => Err(format!(
            "RAPTR_LEASE_SECONDS={text:?}: expected a whole number of seconds, at least 1"
        )),
    }
}

/// The verify slice `RAPTR_VERIFY_SLICE_SECONDS` sets, if it is set: how
/// long one invocation spends on a verify pass before it leaves the rest
/// to the next (0 checks one unit, or one batch of pool files, a time).
pub fn verify_slice_from_env() -> Result<Option<Duration>, String> {
    seconds_from_env("RAPTR_VERIFY_SLICE_SECONDS")
}

fn seconds_from_env(name: &str) -> Result<Option<Duration>, String> {
    let Ok(text) = std::env::var(name) else {
        return Ok(None);
    };
    text.trim()
        .parse::<u64>()
        .map(|n| Some(Duration::from_secs(n)))
        .map_err(|_| format!("{name}={text:?}: expected a whole number of seconds"))
}

/// How long an invocation syncs mirrors unless `RAPTR_MIRROR_BUDGET_SECONDS`
/// says otherwise: a third of the function's 15 minutes, leaving the rest
/// to the sweep and the publish that follow.
pub const MIRROR_BUDGET: Duration = Duration::from_secs(300);

/// The mirror budget `RAPTR_MIRROR_BUDGET_SECONDS` sets, if it is set (0
/// handles one round of up to eight bundles of one mirror per invocation,
/// as a test wants).
pub fn mirror_budget_from_env() -> Result<Option<Duration>, String> {
    seconds_from_env("RAPTR_MIRROR_BUDGET_SECONDS")
}

/// The progress period `RAPTR_PROGRESS_SECONDS` sets, if it is set (0
/// logs every step).
pub fn progress_from_env() -> Result<Option<Duration>, String> {
    seconds_from_env("RAPTR_PROGRESS_SECONDS")
}

/// The sweep's minimum age `RAPTR_SWEEP_MIN_AGE_SECONDS` sets, if it is set
/// (0 sweeps everything at once, as a test wants).
pub fn sweep_min_age_from_env() -> Result<Option<Duration>, String> {
    let Ok(text) = std::env::var("RAPTR_SWEEP_MIN_AGE_SECONDS") else {
        return Ok(None);
    };
    text.trim()
        .parse::<u64>()
        .map(|n| Some(Duration::from_secs(n)))
        .map_err(|_| {
            format!("RAPTR_SWEEP_MIN_AGE_SECONDS={text:?}: expected a whole number of seconds")
        })
}

/// A failure worth a retry (or a configuration to fix): the message names
/// what failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(String);

impl Handler {
    /// The configured signing keys, read and checked before anything is
    /// written (or as loaded less than [`KEY_CACHE_TTL`] ago for the same
    /// `signing_key`); a key accepted with a warning is logged.
    async fn signer(&self, config: &Config) -> Result<Arc<Signer>, HandlerError> {
        let mut cached = self.keys.0.lock().await;
        if let Some((keys, signer, at)) = cached.as_ref() {
            if *keys == config.signing_key && at.elapsed() < KEY_CACHE_TTL {
                return Ok(signer.clone());
            }
        }
        let signer = load::load(
            &config.signing_key,
            &raptr_aws::SecretReader(self.aws.conf.clone()),
        )
        .await
        .map_err(|e| HandlerError(e.to_string()))?;
        for k in signer.keys() {
            for w in &k.info.warnings {
                tracing::warn!(key = %k.info.fingerprint, "{w}");
            }
        }
        let signer = Arc::new(signer);
        *cached = Some((
            config.signing_key.clone(),
            signer.clone(),
            std::time::Instant::now(),
        ));
        Ok(signer)
    }

    fn replicas(&self, config: &Config) -> Vec<Replica> {
        config
            .replicas
            .iter()
            .map(|r| {
                let client =
                    raptr_aws::s3_client(&self.aws.conf, Some(&r.region), self.aws.path_style);
                Replica {
                    name: r.name.clone(),
                    store: Arc::new(raptr_aws::S3Store::new(client, &r.bucket)),
                    distributions: config
                        .layouts
                        .get(&r.layout)
                        .map(|l| l.distributions.keys().cloned().collect())
                        .unwrap_or_default(),
                }
            })
            .collect()
    }

    /// The publisher of this repository, as configured now.
    pub async fn publisher(&self, config: &Config) -> Result<Publisher, HandlerError> {
        let signer = self.signer(config).await?;
        let mut publisher = Publisher::new(
            self.store.clone(),
            self.table.clone(),
            config.clone(),
            signer,
            self.replicas(config),
            self.owner.clone(),
        );
        if let Some(lease) = self.lease {
            publisher.lease_ttl = lease;
        }
        if let Some(slice) = self.verify_slice {
            publisher.verify_slice = slice;
        }
        // A long run (a replica's first copy, a verify) logs how far it is.
        publisher.progress = Some(Arc::new(Progress::new(
            self.progress_every.unwrap_or(Duration::from_secs(10)),
            |line| tracing::info!(progress = %line, "working"),
        )));
        Ok(publisher)
    }

    /// An upstream archive as the function reaches it: `http(s)://` or
    /// `s3://BUCKET` (in the function's region, through its endpoint).
    fn upstream(&self, url: &str) -> Result<Arc<dyn ObjectStore>, String> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return Ok(Arc::new(raptr_http::HttpStore::new(url)?));
        }
        if let Some(bucket) = url.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            let client = raptr_aws::s3_client(&self.aws.conf, None, self.aws.path_style);
            return Ok(Arc::new(raptr_aws::S3Store::new(client, bucket)));
        }
        Err(format!(
            "{url}: the publish function reads http(s):// and s3:// upstreams only; sync this mirror with `raptr mirror sync` where the path is"
        ))
    }

    /// Syncs the configured mirrors, the one a sync left unfinished first,
    /// until the budget is spent (always at least one round of bundles): each sync's
    /// report goes to `reports/mirrors/<name>.json`. A mirror that fails or
    /// is refused holds back neither the others nor the publish.
    async fn sync_mirrors(&self, config: &Config) -> Result<Vec<Value>, HandlerError> {
        if config.mirrors.is_empty() {
            return Ok(Vec::new());
        }
        let deadline = std::time::Instant::now() + self.mirror_budget.unwrap_or(MIRROR_BUDGET);
        let ingest = Ingest::new(self.store.clone(), self.table.clone(), config.clone())
            .with_keyrings(Arc::new(raptr_aws::SecretReader(self.aws.conf.clone())));
        let keys = raptr_aws::SecretReader(self.aws.conf.clone());
        let progress = Progress::new(
            self.progress_every.unwrap_or(Duration::from_secs(10)),
            |line| tracing::info!(progress = %line, "mirroring"),
        );
        let order = raptr_core::import::mirrors_in_turn(config, self.store.as_ref())
            .await
            .map_err(|e| HandlerError(format!("mirrors of {}: {e}", self.bucket)))?;
        let mut out = Vec::new();
        let mut first = true;
        for m in order {
            if !first && std::time::Instant::now() >= deadline {
                tracing::info!(mirror = %m.name, "no time left this run: the next one syncs it");
                continue;
            }
            first = false;
            let report = raptr_core::import::sync_mirror(
                m,
                self.upstream(&m.url),
                &keys,
                &ingest,
                self.store.as_ref(),
                config,
                Some(&progress),
                Some(deadline),
                raptr_core::import::CONCURRENCY,
            )
            .await
            .map_err(|e| HandlerError(format!("mirror {} of {}: {e}", m.name, self.bucket)))?;
            if report.troubled() {
                tracing::error!(
                    mirror = %m.name,
                    status = ?report.status,
                    reason = report.reason.as_deref().unwrap_or(""),
                    refused = report.summary.refused.len(),
                    "mirror sync"
                );
            } else {
                tracing::info!(
                    mirror = %m.name,
                    status = ?report.status,
                    fetched = report.summary.fetched,
                    remaining = report.summary.remaining,
                    "mirror sync"
                );
            }
            out.push(json!(report));
        }
        Ok(out)
    }

    /// Handles one invocation; the answer summarises what was done.
    pub async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let task = task(&payload).map_err(|e| HandlerError(e.to_string()))?;
        let config = load_config(self.store.as_ref(), &self.bucket)
            .await
            .map_err(|e| HandlerError(e.to_string()))?;
        let mut answer = json!({ "bucket": self.bucket });
        // A sweep or a mirror sync that fails (it could not even list, or
        // record its report) never holds back the scheduled publish: the
        // publish runs, then the invocation fails so that the error is seen
        // and the schedule's retry tries again.
        let mut deferred_error = None;
        if matches!(task, Task::Scheduled | Task::Sweep) {
            let mut ingest = Ingest::new(self.store.clone(), self.table.clone(), config.clone())
                .with_keyrings(Arc::new(raptr_aws::SecretReader(self.aws.conf.clone())));
            if let Some(age) = self.sweep_min_age {
                ingest = ingest.with_sweep_min_age(age.as_secs());
            }
            match ingest.sweep(raptr_core::time::now_ms()).await {
                Ok(swept) => {
                    tracing::info!(
                        expired = swept.expired.len(),
                        redriven = swept.redriven.len(),
                        waiting = swept.waiting,
                        young = swept.young,
                        failed = swept.failed.len(),
                        "swept incoming/ and requests/"
                    );
                    answer["sweep"] = json!(swept);
                }
                Err(e) => {
                    tracing::error!(error = %e, "sweep");
                    deferred_error = Some(HandlerError(format!("sweep of {}: {e}", self.bucket)));
                }
            }
        }
        if matches!(task, Task::Scheduled | Task::Mirror) {
            match self.sync_mirrors(&config).await {
                Ok(synced) if synced.is_empty() => {}
                Ok(synced) => answer["mirrors"] = json!(synced),
                Err(e) => {
                    tracing::error!(error = %e, "mirrors");
                    deferred_error.get_or_insert(e);
                }
            }
        }
        if task == Task::Sweep {
            return match deferred_error {
                Some(e) => Err(e),
                None => Ok(answer),
            };
        }
        let publisher = self.publisher(&config).await?;
        let fail = |what: &str, e: raptr_core::publish::PublishError| {
            HandlerError(format!("{what} of {}: {e}", self.bucket))
        };
        match task {
            Task::Publish | Task::Scheduled | Task::Mirror => {
                let s = publisher.run().await.map_err(|e| fail("publish", e))?;
                tracing::info!(
                    ran = s.ran,
                    generation = s.generation,
                    changes = s.changes,
                    indices = s.indices,
                    lagging = s.replicas.values().filter(|r| r.error.is_some()).count(),
                    "published"
                );
                if s.ran {
                    // CloudWatch reads these lines of the log as metrics
                    // (embedded metric format): the replica-lag alarm.
                    for doc in lag_metrics(&self.bucket, &s, raptr_core::time::now_ms()) {
                        println!("{doc}");
                    }
                }
                answer["publish"] = json!(s);
            }
            Task::Purge { dry_run } => {
                let files = publisher
                    .purge(dry_run)
                    .await
                    .map_err(|e| fail("purge", e))?;
                answer["purge"] = json!({ "dry_run": dry_run, "files": files });
            }
            Task::Verify { dry_run } => {
                // A slice per invocation: invoke again until `complete`.
                let slice = publisher.verify_slice;
                let pass = publisher
                    .verify(dry_run, Some(slice))
                    .await
                    .map_err(|e| fail("verify", e))?;
                answer["verify"] = json!({
                    "dry_run": dry_run,
                    "complete": pass.complete,
                    "checked": pass.checked,
                    "findings": pass.findings,
                    "omitted": pass.omitted,
                });
            }
            Task::Sweep => {}
        }
        match deferred_error {
            Some(e) => Err(e),
            None => Ok(answer),
        }
    }
}

/// How far behind the primary each replica is after a run, in generations,
/// as CloudWatch embedded-metric documents: one for the furthest replica
/// (dimension `Bucket`, what the template's alarm watches) and one per
/// replica (dimensions `Bucket`, `Replica`).
pub fn lag_metrics(
    bucket: &str,
    summary: &raptr_core::publish::Summary,
    now_ms: u64,
) -> Vec<Value> {
    let doc = |dimensions: Value, fields: Value| {
        let mut d = json!({
            "_aws": {
                "Timestamp": now_ms,
                "CloudWatchMetrics": [{
                    "Namespace": "raptr",
                    "Dimensions": [dimensions],
                    "Metrics": [{ "Name": "ReplicaLagGenerations", "Unit": "Count" }],
                }],
            },
        });
        if let (Some(d), Some(f)) = (d.as_object_mut(), fields.as_object()) {
            d.extend(f.clone());
        }
        d
    };
    let lag = |generation: u64| summary.generation.saturating_sub(generation);
    let worst = summary
        .replicas
        .values()
        .map(|r| lag(r.generation))
        .max()
        .unwrap_or(0);
    let mut out = vec![doc(
        json!(["Bucket"]),
        json!({ "Bucket": bucket, "ReplicaLagGenerations": worst }),
    )];
    for (name, r) in &summary.replicas {
        out.push(doc(
            json!(["Bucket", "Replica"]),
            json!({ "Bucket": bucket, "Replica": name, "ReplicaLagGenerations": lag(r.generation) }),
        ));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lag_metrics_name_the_furthest_replica_and_each_one() {
        let mut summary = raptr_core::publish::Summary {
            generation: 7,
            ..Default::default()
        };
        for (name, generation) in [("eu", 7), ("us", 4)] {
            summary.replicas.insert(
                name.into(),
                raptr_core::publish::ReplicaState {
                    generation,
                    error: None,
                },
            );
        }
        let docs = lag_metrics("repo", &summary, 1000);
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0]["ReplicaLagGenerations"], 3);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["Bucket"])
        );
        assert_eq!(docs[1]["Replica"], "eu");
        assert_eq!(docs[1]["ReplicaLagGenerations"], 0);
        assert_eq!(docs[2]["ReplicaLagGenerations"], 3);
        assert_eq!(docs[0]["_aws"]["Timestamp"], 1000);
    }

    #[test]
    fn payloads_name_their_task() {
        let stream = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT", "dynamodb": {}}]});
        assert_eq!(task(&stream).unwrap(), Task::Publish);
        let schedule =
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(task(&schedule).unwrap(), Task::Scheduled);
        assert_eq!(
            task(&json!({"raptr": "purge", "dry_run": true})).unwrap(),
            Task::Purge { dry_run: true }
        );
        assert_eq!(
            task(&json!({"raptr": "verify"})).unwrap(),
            Task::Verify { dry_run: false }
        );
        assert_eq!(task(&json!({"raptr": "mirror"})).unwrap(), Task::Mirror);
        assert!(task(&json!({"raptr": "explode"})).is_err());
        assert!(task(&json!({"raptr": "purge", "dry_run": "yes"})).is_err());
        assert!(task(&json!({"Records": [{"eventSource": "aws:s3"}]})).is_err());
        assert!(task(&json!({})).is_err());
    }
}
