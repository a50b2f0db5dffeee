//! Snapshots: a distribution's link state frozen under a name and
//! published as a suite of its own.
//!
//! A snapshot `NAME` of distribution `DIST` is published at
//! `dists/DIST/_NAME/`: its own `Release`, `InRelease` and `Release.gpg`
//! (signed by the repository's keys, with the distribution's Origin, Label,
//! Suite and Codename) and copies of the distribution's index files as they
//! were, by-hash included. apt reads it with
//!
//! ```text
//! deb [signed-by=/etc/apt/keyrings/REPO.gpg] URL DIST/_NAME COMPONENT...
//! ```
//!
//! The path cannot collide: distribution and component names start with a
//! lowercase letter or a digit, never `_`, so no distribution or component
//! directory is ever named `_NAME`. apt checks a suite path's Release
//! against the path without its last segment (`DIST`), which is the
//! distribution's own name, as for the distribution itself.
//!
//! The frozen link state costs nothing to keep: link shards are immutable
//! objects named by their content, so a snapshot lists the shard objects
//! the distribution listed when it was taken ([`crate::publish::links`]),
//! and those objects stay as long as a snapshot lists them. Its pool files
//! count as referenced for purge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::publish::index::IndexSum;

/// What a snapshot name may be, in words.
pub const NAME_RULE: &str =
    "1 to 64 of lowercase letters, digits and .+-_, starting with a letter or digit";

/// A snapshot name: the same rule as a distribution's (it becomes one key
/// segment after the `_`).
pub fn valid_name(name: &str) -> bool {
    crate::config::valid_name(name)
}

/// The suite path apt is given for snapshot `name` of `dist`.
pub fn suite_path(dist: &str, name: &str) -> String {
    format!("{dist}/_{name}")
}

/// The id of a snapshot in the state's frozen links: `DIST/NAME` (a
/// distribution name has no `/`).
pub fn id(dist: &str, name: &str) -> String {
    format!("{dist}/{name}")
}

/// The distribution and name of a snapshot id.
pub fn split_id(id: &str) -> Option<(&str, &str)> {
    id.split_once('/')
}

/// The `deb` line that pins a machine to a snapshot.
pub fn deb_line(url: &str, dist: &str, name: &str, components: &[String]) -> String {
    format!(
        "deb [signed-by=/etc/apt/keyrings/REPO.gpg] {url} {} {}",
        suite_path(dist, name),
        components.join(" ")
    )
}

/// The name of a scheduled snapshot taken at `ms` (UTC):
/// `auto-YYYYMMDD-HHMM`.
pub fn scheduled_name(ms: u64) -> String {
    let stamp = crate::time::rfc3339(ms);
    // 2026-12-02T06:00:00.000Z
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    format!("auto-{}-{}", &digits[..8], &digits[8..12])
}

/// Whether a snapshot was taken by the schedule.
pub fn is_scheduled(name: &str) -> bool {
    name.starts_with("auto-")
}

/// One snapshot, as the publish state keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// When it was taken (RFC 3339).
    pub taken_at: String,
    /// The generation that published it.
    pub generation: u64,
    /// Who asked for it (the request's uploader, or `schedule`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The request it answers (`<key>@<etag>`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// How many pool files it links.
    pub files: u64,
    /// Its index files, relative to its suite directory, as published.
    pub indices: BTreeMap<String, IndexSum>,
    /// When its Release was last signed, in milliseconds (with
    /// Valid-Until it is signed again before it expires).
    pub signed: u64,
}

impl Snapshot {
    /// Every object it publishes under `dists/` (indices, their by-hash
    /// copies, and the Release files), for deletion.
    pub fn published_keys(&self, dist: &str, name: &str) -> Vec<String> {
        let base = format!("dists/{}", suite_path(dist, name));
        let mut out: Vec<String> = ["Release", "Release.gpg", "InRelease"]
            .iter()
            .map(|f| format!("{base}/{f}"))
            .collect();
        for (path, sum) in &self.indices {
            out.push(format!("{base}/{path}"));
            out.push(format!(
                "{base}/{}",
                crate::publish::index::by_hash_path(path, &sum.sha256)
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_paths_never_meet_a_distribution_or_component() {
        assert_eq!(suite_path("stable", "2026-12-02"), "stable/_2026-12-02");
        // No distribution or component name can be the snapshot's segment.
        assert!(!crate::config::valid_name("_2026-12-02"));
        assert!(valid_name("2026-12-02") && valid_name("v1.4"));
        assert!(!valid_name("") && !valid_name("a/b") && !valid_name("_x") && !valid_name("X"));
        assert_eq!(split_id(&id("stable", "v1")), Some(("stable", "v1")));
    }

    #[test]
    fn scheduled_names_sort_by_time() {
        let a = scheduled_name(1_796_194_800_000);
        let b = scheduled_name(1_796_194_800_000 + 3_600_000);
        assert!(
            a.starts_with("auto-") && a.len() == "auto-20261202-0600".len(),
            "{a}"
        );
        assert!(a < b && valid_name(&a) && is_scheduled(&a));
    }
}
