//! The ingest function: S3 `ObjectCreated` events for `incoming/` and
//! `requests/` of one repository's primary bucket, handed to
//! [`raptr_core::ingest::Ingest`].
//!
//! Accepted payloads:
//! - an S3 event (`{"Records":[{"eventSource":"aws:s3",...}]}`), as S3 sends
//!   it to a function directly;
//! - an SQS event whose messages carry S3 events, as with an S3 → SQS
//!   notification (the emulator's set-up, and a common one in AWS);
//! - the emulator's variants of both: keys that encode `/`, and records
//!   without the fields AWS always sends (time, identity, request parameters).
//!
//! Discipline: every record is handled before the function answers. A
//! failure that may succeed later (S3, DynamoDB) fails only the SQS message
//! that carries it: the answer lists it in `batchItemFailures` (the template
//! turns on `ReportBatchItemFailures`), SQS delivers it again, and the other
//! messages of the batch are done. A message that cannot be read at all is
//! failed the same way, so the queue's redrive policy moves it to the
//! dead-letter queue after a few deliveries instead of retrying it for ever.
//! A payload that came straight from S3 (no SQS) has no such answer: any
//! failure fails the invocation. A bad configuration fails everything until
//! it is fixed. Handling is idempotent, so records that did succeed are
//! no-ops the second time. Input that is wrong becomes a report and never an
//! error.

use std::sync::Arc;

use aws_lambda_events::s3::S3Event;
use aws_lambda_events::sqs::SqsEvent;
use raptr_core::ingest::{Ingest, ObjectEvent};
use raptr_core::repo::load_config;
use raptr_store::table::Journal;
use raptr_store::ObjectStore;
use serde_json::{json, Value};

/// One object-created record: the bucket and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub bucket: String,
    pub event: ObjectEvent,
}

/// Why a payload could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("unrecognised event payload: {0}")]
pub struct PayloadError(String);

/// One unit of delivery: an SQS message (with its id, for
/// `batchItemFailures`) or a whole S3 payload (no id), and the
/// object-created records it carries, or why it cannot be read.
#[derive(Debug)]
pub struct Message {
    pub id: Option<String>,
    pub records: Result<Vec<Record>, PayloadError>,
}

/// The messages of a payload, in order. An SQS payload that does not parse
/// as a whole, or a payload that is neither SQS nor S3, is an error; one SQS
/// message that cannot be read is a message whose `records` is the error.
pub fn messages(payload: &Value) -> Result<Vec<Message>, PayloadError> {
    let Some(list) = payload.get("Records").and_then(Value::as_array) else {
        return Err(PayloadError("no Records array".into()));
    };
    let is_sqs = list
        .first()
        .and_then(|r| r.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs");
    if !is_sqs {
        return Ok(vec![Message {
            id: None,
            records: s3_records(payload),
        }]);
    }
    let sqs: SqsEvent = serde_json::from_value(payload.clone())
        .map_err(|e| PayloadError(format!("an SQS event that does not parse: {e}")))?;
    Ok(sqs
        .records
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let id = m.message_id.clone().unwrap_or_else(|| format!("#{i}"));
            let body = m.body.as_deref().unwrap_or("");
            let records = serde_json::from_str::<Value>(body)
                .map_err(|e| PayloadError(format!("SQS message {id} is not JSON: {e}")))
                .and_then(|inner| {
                    if inner.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
                        Ok(Vec::new())
                    } else {
                        s3_records(&inner)
                    }
                });
            Message {
                id: Some(id),
                records,
            }
        })
        .collect())
}

/// The object-created records of a payload, in order, failing if any
/// message cannot be read. Records of other kinds (deletions, S3's
/// `s3:TestEvent`) are left out.
pub fn records(payload: &Value) -> Result<Vec<Record>, PayloadError> {
    let mut out = Vec::new();
    for m in messages(payload)? {
        out.extend(m.records?);
    }
    Ok(out)
}

/// Event name, bucket, key (as sent) and principal of one S3 record.
type RawRecord = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn s3_records(payload: &Value) -> Result<Vec<Record>, PayloadError> {
    // The strict AWS shape first; then the lenient one for emulators.
    let raw: Vec<RawRecord> = match serde_json::from_value::<S3Event>(payload.clone()) {
        Ok(ev) => ev
            .records
            .into_iter()
            .map(|r| {
                (
                    r.event_name,
                    r.s3.bucket.name,
                    r.s3.object.key,
                    r.principal_id.principal_id,
                )
            })
            .collect(),
        Err(_) => payload
            .get("Records")
            .and_then(Value::as_array)
            .ok_or_else(|| PayloadError("no Records array".into()))?
            .iter()
            .map(|r| {
                let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
                (
                    s(r.get("eventName")),
                    s(r.pointer("/s3/bucket/name")),
                    s(r.pointer("/s3/object/key")),
                    s(r.pointer("/userIdentity/principalId")),
                )
            })
            .collect(),
    };
    let mut out = Vec::new();
    for (i, (name, bucket, key, principal)) in raw.into_iter().enumerate() {
        if !name.as_deref().unwrap_or("").starts_with("ObjectCreated:") {
            continue;
        }
        let (Some(bucket), Some(raw_key)) = (bucket, key) else {
            return Err(PayloadError(format!("record {i} has no bucket or key")));
        };
        let key = raptr_aws::decode_event_key(&raw_key).ok_or_else(|| {
            PayloadError(format!("record {i}: the key {raw_key:?} does not decode"))
        })?;
        out.push(Record {
            bucket,
            event: ObjectEvent {
                key,
                uploader: principal.unwrap_or_else(|| "unknown".into()),
            },
        });
    }
    Ok(out)
}

/// A failure that AWS should retry.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("{0}")]
    Repository(String),
    #[error("{key}: {source}")]
    Ingest {
        key: String,
        #[source]
        source: raptr_core::ingest::IngestError,
    },
}

/// The function's state: one repository's adapters.
#[derive(Debug, Clone)]
pub struct Handler {
    pub bucket: String,
    pub store: Arc<dyn ObjectStore>,
    pub journal: Arc<dyn Journal>,
    /// Reads distributions' upload keyrings (`upload_keyring`); without
    /// it, a `.changes` for such a distribution is rejected as unverifiable.
    pub keyrings: Option<raptr_aws::SecretReader>,
}

impl Handler {
    /// Handles one invocation. The configuration is read for each one, so
    /// a change to it takes effect at once, and a broken one stops
    /// everything (with an error naming the problem) until it is fixed.
    ///
    /// The answer has `batchItemFailures`: the SQS messages to deliver again
    /// (empty when all succeeded). For a payload that is not from SQS, a
    /// failure is an error instead.
    pub async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let messages = messages(&payload)?;
        let repo = format!("s3://{}", self.bucket);
        let config = load_config(self.store.as_ref(), &repo).await.map_err(|e| {
            tracing::error!(repository = %repo, error = %e, "configuration");
            HandlerError::Repository(e.to_string())
        })?;
        let mut ingest = Ingest::new(self.store.clone(), self.journal.clone(), config);
        if let Some(reader) = &self.keyrings {
            ingest = ingest.with_keyrings(Arc::new(reader.clone()));
        }
        let mut outcomes = Vec::new();
        let mut failures = Vec::new();
        let mut count = 0;
        for m in messages {
            let records = match m.records {
                Ok(records) => records,
                Err(e) => match &m.id {
                    Some(id) => {
                        tracing::error!(message = %id, error = %e, "unreadable message; left to the queue's redrive policy");
                        failures.push(json!({ "itemIdentifier": id }));
                        continue;
                    }
                    None => return Err(e.into()),
                },
            };
            count += records.len();
            for r in &records {
                match self.handle_record(&ingest, r).await {
                    Ok(Some(outcome)) => outcomes.push(outcome),
                    Ok(None) => {}
                    Err(e) => match &m.id {
                        Some(id) => {
                            tracing::error!(message = %id, key = %r.event.key, error = %e, "will be retried");
                            failures.push(json!({ "itemIdentifier": id }));
                            break;
                        }
                        None => {
                            tracing::error!(key = %r.event.key, error = %e, "will be retried");
                            return Err(HandlerError::Ingest {
                                key: r.event.key.clone(),
                                source: e,
                            });
                        }
                    },
                }
            }
        }
        Ok(json!({
            "records": count,
            "outcomes": outcomes,
            "batchItemFailures": failures,
        }))
    }

    async fn handle_record(
        &self,
        ingest: &Ingest,
        r: &Record,
    ) -> Result<Option<Value>, raptr_core::ingest::IngestError> {
        if r.bucket != self.bucket {
            tracing::warn!(bucket = %r.bucket, key = %r.event.key, "event for another bucket; ignored");
            return Ok(None);
        }
        let outcome = ingest.handle(&r.event).await?;
        tracing::info!(
            key = %outcome.key,
            bundle = outcome.bundle.as_deref().unwrap_or(""),
            version = outcome.version.as_deref().unwrap_or(""),
            outcome = ?outcome.status,
            reason = outcome.reason.as_deref().unwrap_or(""),
            settled = outcome.settled.len(),
            "handled"
        );
        Ok(Some(serde_json::to_value(&outcome).unwrap_or(Value::Null)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An S3 notification as AWS documents it.
    const AWS: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-11-21T12:00:00.000Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AWS:AIDAEXAMPLE"},"requestParameters":{"sourceIPAddress":"192.0.2.1"},"responseElements":{"x-amz-request-id":"R","x-amz-id-2":"I"},"s3":{"s3SchemaVersion":"1.0","configurationId":"incoming","bucket":{"name":"repo","ownerIdentity":{"principalId":"O"},"arn":"arn:aws:s3:::repo"},"object":{"key":"incoming/stable/main/build+1/g%2B%2B_1.0_amd64.deb","size":1024,"eTag":"e","sequencer":"0A"}}}]}"#;

    #[test]
    fn aws_s3_events() {
        let r = records(&serde_json::from_str(AWS).unwrap_or_default()).expect("parses");
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].bucket, "repo");
        assert_eq!(
            r[0].event.key,
            "incoming/stable/main/build 1/g++_1.0_amd64.deb"
        );
        assert_eq!(r[0].event.uploader, "AWS:AIDAEXAMPLE");
    }

    #[test]
    fn sqs_wrapped_and_lenient_records() {
        let lenient = r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"repo"},"object":{"key":"requests%2Fpromote.json"}}},{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"repo"},"object":{"key":"x"}}}]}"#;
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"repo"}"#;
        let sqs = json!({"Records": [
            {"messageId": "1", "eventSource": "aws:sqs", "body": AWS},
            {"messageId": "2", "eventSource": "aws:sqs", "body": test_event},
            {"messageId": "3", "eventSource": "aws:sqs", "body": lenient},
        ]});
        let r = records(&sqs).expect("parses");
        let keys: Vec<&str> = r.iter().map(|r| r.event.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "incoming/stable/main/build 1/g++_1.0_amd64.deb",
                "requests/promote.json"
            ]
        );
        assert_eq!(r[1].event.uploader, "unknown");
    }

    #[test]
    fn one_unreadable_message_does_not_take_the_batch() {
        let sqs = json!({"Records": [
            {"messageId": "bad", "eventSource": "aws:sqs", "body": "{"},
            {"messageId": "good", "eventSource": "aws:sqs", "body": AWS},
        ]});
        let m = messages(&sqs).expect("parses");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].id.as_deref(), Some("bad"));
        assert!(m[0].records.is_err());
        assert_eq!(m[1].records.as_ref().expect("readable").len(), 1);
        assert!(
            records(&sqs).is_err(),
            "all-or-nothing for callers that want it"
        );
    }

    #[test]
    fn unreadable_payloads_are_errors() {
        for bad in [
            json!({}),
            json!({"Records": [{"eventSource": "aws:sqs", "body": "{"}]}),
            json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}),
            json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "%zz"}}}]}),
        ] {
            assert!(records(&bad).is_err(), "{bad}");
        }
    }
}
