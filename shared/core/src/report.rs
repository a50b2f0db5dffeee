//! Reports (DESIGN §6): `reports/<key>.json` answers every incoming object
//! and every request. The publisher adds the generation and the replicas that
//! carry it once the change is published.

use std::collections::BTreeMap;

use bytes::Bytes;
use raptr_formats::bundle::{Kind, Status};
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::{Deserialize, Serialize};

use crate::keys::report_key;
use crate::request::Action;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The object or request this answers.
    pub key: String,
    /// `accepted`, `skipped`, `rejected` or `pending`.
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The S3 ETag of the version of the object this answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploader: Option<String>,
    /// Requests: what was asked, and what it touches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// A dry run's answer: what the request would change, against the
    /// last publish.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<crate::plan::Planned>,
    /// Versions a retention policy unlinked because of this upload or
    /// request (or would, in a dry run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<crate::retain::Retired>,
    /// Snapshot requests: the snapshot, and the suite path apt is given
    /// for it (`DIST/_NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// The journal entry that carries the change to the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_seq: Option<u64>,
    pub processed_at: String,
    /// Filled by the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub replicas: BTreeMap<String, u64>,
}

impl Report {
    pub fn new(key: &str, status: Status) -> Report {
        Report {
            key: key.to_string(),
            status: Some(status),
            processed_at: crate::time::rfc3339(crate::time::now_ms()),
            ..Default::default()
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Report {
        self.reason = Some(reason.into());
        self
    }

    /// Writes it to `reports/<key>.json`, replacing an earlier answer.
    /// Reasons and warnings are written as single bounded lines
    /// ([`raptr_formats::quote::line`]), whatever produced them.
    pub async fn write(&self, store: &dyn ObjectStore) -> Result<(), StoreError> {
        let key = report_key(&self.key);
        let one_line = |s: &String| raptr_formats::quote::line(s).into_owned();
        let bounded = Report {
            reason: self.reason.as_ref().map(one_line),
            warnings: self.warnings.iter().map(one_line).collect(),
            ..self.clone()
        };
        let body = serde_json::to_vec_pretty(&bounded).map_err(|e| StoreError::Permanent {
            key: key.clone(),
            source: Box::new(e),
        })?;
        let opts = PutOptions {
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        store.put(&key, Bytes::from(body), opts).await.map(|_| ())
    }

    /// Reads the report of `key`, if there is one.
    pub async fn read(store: &dyn ObjectStore, key: &str) -> Result<Option<Report>, StoreError> {
        let rkey = report_key(key);
        match store.get_limited(&rkey, crate::limits::REPORT).await {
            Ok((body, _)) => Ok(serde_json::from_slice(&body).ok()),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
