//! The journal's change records: what the publisher must apply. Ingest
//! appends them (an accepted upload links its bundle version into the upload's
//! distribution; a request links, unlinks, removes, purges or verifies); the
//! publisher drains them into one generation.

use serde::{Deserialize, Serialize};

use crate::request::Action;

/// One change, as stored in the journal (JSON, at most 64 KiB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// Source versions with their epochs, each with a manifest in the pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Binary package names (or `source`) the change is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    /// The snapshot a snapshot, delete-snapshot or restore names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// A retain request's own policy (else the distribution's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<crate::config::Policy>,
    /// The object that asked for it: `<key>@<etag>`.
    pub origin: String,
    /// Who asked: the principal that uploaded the file or the request (in
    /// AWS, from the S3 event; locally, the user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Change {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
