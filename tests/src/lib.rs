//! raptr's two functions on an emulator, without Lambda: the S3 events the
//! emulator queued (its S3 → SQS notifications, set up by
//! `scripts/bootstrap.sh`) are handed to the ingest function's handler
//! in-process, as SQS batches the way Lambda's SQS trigger delivers them;
//! the journal then wakes the publish function's handler, as the table's
//! stream does in AWS.
//!
//! `make demo` runs this through the `raptr-dispatch` binary; the
//! end-to-end tests in `tests/` call [`Dispatcher::round`] directly.
//!
//! The handlers are the functions' own (`raptr_ingest::Handler`,
//! `raptr_publish::Handler`): only the transport differs from AWS. A batch
//! is deleted from the queue only once the ingest handler has answered it,
//! so a failed batch comes back after the queue's visibility timeout, as it
//! would under Lambda.

use std::sync::Arc;

use aws_config::SdkConfig;
use serde_json::{json, Value};

/// What a dispatcher serves: the primary bucket, the table, the queue of
/// the bucket's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub bucket: String,
    pub table: String,
    pub queue: String,
}

/// A failure of the transport or of a handler, naming which.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("queue {queue}: {message}")]
    Queue { queue: String, message: String },
    #[error("ingest function: {0}")]
    Ingest(String),
    #[error("publish function: {0}")]
    Publish(String),
}

/// One round: every queued event handled, then one publish.
#[derive(Debug, Clone, Default)]
pub struct Round {
    /// S3 event messages taken from the queue.
    pub messages: usize,
    /// The ingest handler's outcomes, one per object-created record.
    pub outcomes: Vec<Value>,
    /// Deliveries the ingest handler failed (`batchItemFailures`): each goes
    /// back to the queue until the redrive policy takes it.
    pub failed: usize,
    /// The publish handler's answer.
    pub publish: Value,
}

impl Round {
    /// One line per file an event settled, as the reports say it.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.outcomes {
            let key = o["key"].as_str().unwrap_or("?");
            let reason = o["reason"].as_str();
            match o["status"].as_str() {
                None => out.push(format!(
                    "ingest: {key}: {}",
                    reason.unwrap_or("nothing to do")
                )),
                Some(status) => {
                    let mut line = format!("ingest: {status}: {key}");
                    if let Some(r) = reason {
                        line.push_str(&format!(" ({r})"));
                    }
                    out.push(line);
                    for s in o["settled"].as_array().into_iter().flatten() {
                        let k = s["key"].as_str().unwrap_or("?");
                        if k != key {
                            let st = s["status"].as_str().unwrap_or("?");
                            out.push(format!("ingest: {st}: {k} (completed by {key})"));
                        }
                    }
                }
            }
        }
        let p = &self.publish["publish"];
        if p["ran"] == json!(false) {
            out.push("publish: another publisher holds the lease; it will publish this too".into());
        } else if !p.is_null() {
            let made = p["generations"]
                .as_array()
                .and_then(|g| g.last())
                .map(|g| format!("generation {g} ({} change(s))", p["changes"]))
                .unwrap_or_else(|| "nothing new".into());
            let replicas: Vec<String> = p["replicas"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, r)| match r["error"].as_str() {
                    None => format!("{name} at {}", r["generation"]),
                    Some(e) => format!("{name} LAGGING at {} ({e})", r["generation"]),
                })
                .collect();
            out.push(format!(
                "publish: {made}; serving generation {}; replicas: {}",
                p["generation"],
                if replicas.is_empty() {
                    "none".to_string()
                } else {
                    replicas.join(", ")
                }
            ));
        }
        out
    }
}

/// The functions of one repository, fed from its event queue.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    target: Target,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    ingest: raptr_ingest::Handler,
    publish: raptr_publish::Handler,
}

impl Dispatcher {
    /// Connects to `target` with the SDK configuration `conf` (endpoint,
    /// credentials, region of the primary bucket).
    pub async fn connect(
        conf: &SdkConfig,
        path_style: bool,
        target: Target,
    ) -> Result<Dispatcher, DispatchError> {
        let sqs = aws_sdk_sqs::Client::new(conf);
        let queue_url = sqs
            .get_queue_url()
            .queue_name(&target.queue)
            .send()
            .await
            .map_err(|e| DispatchError::Queue {
                queue: target.queue.clone(),
                message: format!(
                    "{} (was the emulator bootstrapped? scripts/bootstrap.sh creates it)",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                ),
            })?
            .queue_url
            .unwrap_or_default();
        let store = Arc::new(raptr_aws::S3Store::new(
            raptr_aws::s3_client(conf, None, path_style),
            &target.bucket,
        ));
        let table = Arc::new(raptr_aws::DynamoTable::new(
            raptr_aws::dynamo_client(conf),
            &target.table,
            &target.bucket,
        ));
        let ingest = raptr_ingest::Handler {
            bucket: target.bucket.clone(),
            store: store.clone(),
            journal: table.clone(),
            keyrings: Some(raptr_aws::SecretReader(conf.clone())),
        };
        let publish = raptr_publish::Handler {
            bucket: target.bucket.clone(),
            store,
            table,
            aws: raptr_publish::Aws {
                conf: conf.clone(),
                path_style,
            },
            owner: format!("raptr-dispatch:{}", std::process::id()),
            lease: raptr_publish::lease_from_env().map_err(DispatchError::Publish)?,
            sweep_min_age: raptr_publish::sweep_min_age_from_env()
                .map_err(DispatchError::Publish)?,
            progress_every: raptr_publish::progress_from_env().map_err(DispatchError::Publish)?,
            verify_slice: raptr_publish::verify_slice_from_env().map_err(DispatchError::Publish)?,
            mirror_budget: raptr_publish::mirror_budget_from_env()
                .map_err(DispatchError::Publish)?,
            keys: raptr_publish::KeyCache::default(),
        };
        Ok(Dispatcher {
            target,
            sqs,
            queue_url,
            ingest,
            publish,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The publish function's handler, for direct invocations (purge,
    /// verify, the schedule).
    pub fn publish_handler(&self) -> &raptr_publish::Handler {
        &self.publish
    }

    fn queue_error(&self, what: &str, e: impl std::fmt::Display) -> DispatchError {
        DispatchError::Queue {
            queue: self.target.queue.clone(),
            message: format!("{what}: {e}"),
        }
    }

    /// Hands every event queued now to the ingest function, ten messages a
    /// batch, then runs the publish function once (the journal's wake-up).
    pub async fn round(&self) -> Result<Round, DispatchError> {
        let mut round = self.ingest().await?;
        round.publish = self.invoke(stream_event(&self.target.table)).await?;
        Ok(round)
    }

    /// Hands every event queued now to the ingest function, ten messages a
    /// batch, and nothing more: the publish function is left to whoever
    /// runs it.
    pub async fn ingest(&self) -> Result<Round, DispatchError> {
        let mut round = Round::default();
        loop {
            let got = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| {
                    self.queue_error("receive", aws_sdk_sqs::error::DisplayErrorContext(&e))
                })?;
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            round.messages += messages.len();
            let records: Vec<Value> = messages
                .iter()
                .map(|m| {
                    json!({
                        "messageId": m.message_id.clone().unwrap_or_default(),
                        "receiptHandle": m.receipt_handle.clone().unwrap_or_default(),
                        "body": m.body.clone().unwrap_or_default(),
                        "eventSource": "aws:sqs",
                        "eventSourceARN": format!("arn:aws:sqs:{}:000000000000:{}",
                            region(), self.target.queue),
                    })
                })
                .collect();
            let answer = self
                .ingest
                .handle(json!({ "Records": records }))
                .await
                .map_err(|e| DispatchError::Ingest(e.to_string()))?;
            round
                .outcomes
                .extend(answer["outcomes"].as_array().cloned().unwrap_or_default());
            // What Lambda does with a `batchItemFailures` answer: the failed
            // messages go back to the queue (at once here, where Lambda
            // waits for the visibility timeout), the rest are deleted. The
            // queue's redrive policy moves a message that keeps failing to
            // the dead-letter queue.
            let failed: Vec<&str> = answer["batchItemFailures"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["itemIdentifier"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            round.failed += failed.len();
            for m in messages {
                let handle = m.receipt_handle.unwrap_or_default();
                if failed.contains(&m.message_id.as_deref().unwrap_or_default()) {
                    self.sqs
                        .change_message_visibility()
                        .queue_url(&self.queue_url)
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .send()
                        .await
                        .map_err(|e| {
                            self.queue_error(
                                "change visibility",
                                aws_sdk_sqs::error::DisplayErrorContext(&e),
                            )
                        })?;
                    continue;
                }
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .map_err(|e| {
                        self.queue_error("delete", aws_sdk_sqs::error::DisplayErrorContext(&e))
                    })?;
            }
        }
        Ok(round)
    }

    /// Invokes the publish function with `payload` (`{"raptr": "verify"}`,
    /// a scheduled event, ...).
    pub async fn invoke(&self, payload: Value) -> Result<Value, DispatchError> {
        self.publish
            .handle(payload)
            .await
            .map_err(|e| DispatchError::Publish(e.to_string()))
    }
}

fn region() -> String {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into())
}

/// A DynamoDB Streams batch as Lambda delivers it for a journal append. Its
/// contents do not matter to the publish function: the journal is the truth.
pub fn stream_event(table: &str) -> Value {
    json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": region(),
        "dynamodb": {"Keys": {"pk": {"S": "journal"}}, "SequenceNumber": "1", "SizeBytes": 10,
                     "StreamViewType": "NEW_IMAGE"},
        "eventSourceARN": format!("arn:aws:dynamodb:{}:000000000000:table/{table}/stream/1",
            region())
    }]})
}
