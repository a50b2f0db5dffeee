//! The progress of one upload folder, kept in the folder's bundle report
//! (`reports/incoming/<dist>/<component>/<upload-id>.json`) and updated by
//! compare-and-swap.
//!
//! Each event validates its own file once and records what it found here: the
//! digests, and the control paragraph or document the folder rules need. The
//! rules then run over the whole record, so the event that brings the last
//! file a `.dsc` or `.changes` waits for is the one that accepts the set,
//! without reading any other file again. A decision, once carried out
//! (`done`), is never revisited.

use std::collections::BTreeMap;

use raptr_formats::binary::BinaryControl;
use raptr_formats::bundle::{FileResult, Kind, Parsed, Status};
use raptr_formats::changes::Changes;
use raptr_formats::control::{parse_one, Mode};
use raptr_formats::deb::{Compression, Deb};
use raptr_formats::dsc::Dsc;
use raptr_formats::hash::Digests;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folder {
    pub folder: String,
    pub distribution: String,
    pub component: String,
    pub upload_id: String,
    /// The bundle, fixed by the first file accepted from this folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A `.changes` seen in the folder before it was itself processed: until
    /// it is, nothing else of the folder is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_changes: Option<String>,
    pub files: BTreeMap<String, Entry>,
    pub updated_at: String,
}

impl Folder {
    /// Parses a folder record as read back from the bucket. The error is one
    /// bounded line.
    pub fn from_json(bytes: &[u8]) -> Result<Folder, String> {
        serde_json::from_slice(bytes)
            .map_err(|e| format!("not a raptr folder record: {}", crate::json_problem(&e)))
    }
}

/// One file of the folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub kind: Kind,
    /// The version of the object that was validated.
    pub etag: String,
    pub status: Status,
    /// The status was acted on: the file is in the pool (or `rejected/`),
    /// journaled and reported, and the incoming object is gone.
    pub done: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_seq: Option<u64>,
    pub uploader: String,
    pub seen_at: String,
    /// What validation found, for the folder rules.
    pub found: Found,
}

/// What validating a file on its own found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Found {
    /// Why the file is unacceptable on its own (final).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digests: Option<Digests>,
    /// A `.deb`'s control paragraph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<(Compression, Compression)>,
    /// A `.dsc`'s, `.changes`'s or `.buildinfo`'s text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// A `.changes` verified against its distribution's upload keyring:
    /// the fingerprint of the key that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<String>,
}

impl Found {
    /// Keeps what the rules need from a validation result; `document` is the
    /// text of a `.dsc`, `.changes` or `.buildinfo`.
    pub fn from_result(r: &FileResult, document: Option<String>) -> Found {
        let mut found = Found {
            invalid: (r.status == Status::Rejected).then(|| r.reason.clone().unwrap_or_default()),
            digests: r.digests.clone(),
            control: None,
            compression: None,
            document: None,
            source: r.source.clone(),
            source_version: r.source_version.clone(),
            signed_by: None,
        };
        match &r.parsed {
            Parsed::Deb(d) => {
                found.control = Some(d.control.to_string());
                found.compression = Some((d.control_compression, d.data_compression));
            }
            Parsed::Dsc(_) | Parsed::Changes(_) => found.document = document,
            Parsed::None => {}
        }
        found
    }

    /// Rebuilds the validation result the folder rules take.
    pub fn restore(&self, name: &str, kind: Kind) -> FileResult {
        let mut r = FileResult::restored(name, kind);
        r.source = self.source.clone();
        r.source_version = self.source_version.clone();
        if let Some(d) = &self.digests {
            r.set_digests(d.clone());
        }
        if let Some(why) = &self.invalid {
            r.status = Status::Rejected;
            r.reason = Some(why.clone());
            return r;
        }
        let parsed = match (kind, &self.control, &self.document) {
            (Kind::Deb, Some(text), _) => parse_one(text, Mode::Strict)
                .map_err(|e| e.to_string())
                .and_then(|control| {
                    let binary = BinaryControl::from_paragraph(&control)?;
                    let (cc, dc) = self
                        .compression
                        .unwrap_or((Compression::None, Compression::None));
                    Ok(Parsed::Deb(Box::new(Deb {
                        control,
                        binary,
                        digests: self.digests.clone().unwrap_or_else(|| Digests::of(b"")),
                        control_compression: cc,
                        data_compression: dc,
                    })))
                }),
            (Kind::Dsc, _, Some(doc)) => {
                Dsc::parse(doc.as_bytes()).map(|d| Parsed::Dsc(Box::new(d)))
            }
            (Kind::Changes, _, Some(doc)) => {
                Changes::parse(doc.as_bytes()).map(|c| Parsed::Changes(Box::new(c)))
            }
            _ => Ok(Parsed::None),
        };
        match parsed {
            Ok(Parsed::Deb(d)) => {
                r.package = Some(d.binary.package.clone());
                r.version = Some(d.binary.version.to_string());
                r.architecture = Some(d.binary.architecture.clone());
                r.parsed = Parsed::Deb(d);
            }
            Ok(p) => r.parsed = p,
            // Recorded from a successful validation, so this cannot happen
            // unless the record was edited by hand.
            Err(e) => r.reject(format!("its recorded validation no longer parses: {e}")),
        }
        r
    }
}
