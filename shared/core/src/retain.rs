//! Retention policies: which versions a distribution stops serving.
//!
//! A policy ([`Policy`]) is evaluated per distribution, per bundle (the
//! source package whose versions are compared), per group: each binary
//! package and architecture (`Architecture: all` is a group of its own), and
//! the source (`.dsc` and the files it lists). The versions linked in a
//! group are ordered as dpkg orders them; the newest always stays; an older
//! one goes when it is past either limit: beyond the newest `keep`, or
//! uploaded more than `max_age_days` ago. Going means being unlinked from
//! this distribution only; a file no distribution or snapshot links then
//! goes through the grace period and purge like any other.
//!
//! The publisher applies the policy when a link adds a version, in the same
//! generation (so a distribution never serves more than its policy allows),
//! and to the whole distribution on a `retain` request. Everything here is
//! pure: the publisher and the dry runs gather the candidates.

use std::collections::BTreeMap;

use raptr_formats::bundle::Kind;
use raptr_formats::Version;
use serde::{Deserialize, Serialize};

pub use crate::config::Policy;
use crate::manifest::Manifest;

/// A linked file the policy looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its pool directory and file name.
    pub dir: String,
    pub name: String,
    /// Binary package and architecture, or `source` and `source`.
    pub package: String,
    pub architecture: String,
    /// The binary package's version (the source version for source files).
    pub version: String,
    /// When it was uploaded, in milliseconds.
    pub uploaded: u64,
}

/// One file a policy unlinked (or would), as reports list it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Retired {
    pub distribution: String,
    pub package: String,
    pub version: String,
    pub architecture: String,
    /// The pool key.
    pub file: String,
}

/// The candidates of the linked files `names` of one bundle version
/// directory, from its manifest.
pub fn candidates<'a>(
    dir: &str,
    manifest: &Manifest,
    names: impl IntoIterator<Item = &'a String>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for name in names {
        let Some(f) = manifest.files.get(name) else {
            continue;
        };
        let (package, architecture, version) = match f.kind {
            Kind::Deb => match (&f.package, &f.architecture, &f.package_version) {
                (Some(p), Some(a), Some(v)) => (p.clone(), a.clone(), v.clone()),
                _ => continue,
            },
            Kind::Dsc | Kind::Source => (
                "source".to_string(),
                "source".to_string(),
                manifest.version.clone(),
            ),
            _ => continue,
        };
        out.push(Candidate {
            dir: dir.to_string(),
            name: name.clone(),
            package,
            architecture,
            version,
            uploaded: crate::time::parse_rfc3339(&f.uploaded_at).unwrap_or(0),
        });
    }
    out
}

/// The candidates `policy` retires at `now` (milliseconds).
pub fn retire<'c>(policy: &Policy, now: u64, candidates: &'c [Candidate]) -> Vec<&'c Candidate> {
    // group → version → its files.
    type Versions<'c> = BTreeMap<Version, Vec<&'c Candidate>>;
    let mut groups: BTreeMap<(&str, &str), Versions<'c>> = BTreeMap::new();
    for c in candidates {
        let Ok(v) = Version::parse(&c.version) else {
            continue;
        };
        groups
            .entry((c.package.as_str(), c.architecture.as_str()))
            .or_default()
            .entry(v)
            .or_default()
            .push(c);
    }
    let max_age = policy.max_age_days.map(|d| u64::from(d) * 86_400_000);
    let mut out = Vec::new();
    for versions in groups.values() {
        for (rank, files) in versions.values().rev().enumerate() {
            if rank == 0 {
                continue;
            }
            let uploaded = files.iter().map(|c| c.uploaded).min().unwrap_or(0);
            let too_many = policy.keep.is_some_and(|k| rank >= k as usize);
            let too_old = max_age.is_some_and(|age| now.saturating_sub(uploaded) > age);
            if too_many || too_old {
                out.extend(files.iter().copied());
            }
        }
    }
    out
}

/// The report entry of a retired candidate.
pub fn retired(dist: &str, c: &Candidate) -> Retired {
    Retired {
        distribution: dist.to_string(),
        package: c.package.clone(),
        version: c.version.clone(),
        architecture: c.architecture.clone(),
        file: format!("{}/{}", c.dir, c.name),
    }
}

/// The bundle directory prefix (`pool/<component>/<p>/<bundle>/`) of a
/// bundle version's pool directory.
pub fn bundle_prefix(dir: &str) -> Option<&str> {
    dir.rsplit_once('/').map(|(b, _)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pkg: &str, arch: &str, version: &str, days_ago: u64) -> Candidate {
        Candidate {
            dir: format!("pool/main/h/hello/{version}"),
            name: format!("{pkg}_{version}_{arch}.deb"),
            package: pkg.into(),
            architecture: arch.into(),
            version: version.into(),
            uploaded: 100 * 86_400_000 - days_ago * 86_400_000,
        }
    }

    fn names(out: &[&Candidate]) -> Vec<String> {
        let mut v: Vec<String> = out.iter().map(|c| c.name.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn keep_counts_versions_per_package_and_architecture_in_dpkg_order() {
        let all = vec![
            c("hello", "amd64", "1.0-1", 3),
            c("hello", "amd64", "1.0-2", 2),
            c("hello", "amd64", "1:0.9-1", 1),
            c("hello", "arm64", "1.0-1", 3),
            c("hello-doc", "all", "1.0-1", 3),
            c("hello-doc", "all", "1.0-2", 2),
            c("hello-doc", "all", "1.0~rc1-1", 4),
        ];
        let now = 100 * 86_400_000;
        let keep2 = Policy {
            keep: Some(2),
            max_age_days: None,
        };
        // 1:0.9-1 is the newest (its epoch); 1.0-1 is third.
        assert_eq!(
            names(&retire(&keep2, now, &all)),
            ["hello-doc_1.0~rc1-1_all.deb", "hello_1.0-1_amd64.deb"]
        );
        let keep1 = Policy {
            keep: Some(1),
            max_age_days: None,
        };
        assert_eq!(retire(&keep1, now, &all).len(), 4);
    }

    #[test]
    fn age_retires_old_versions_but_never_the_newest() {
        let all = vec![
            c("hello", "amd64", "1.0-1", 40),
            c("hello", "amd64", "1.0-2", 31),
            c("hello", "amd64", "1.0-3", 35),
        ];
        let now = 100 * 86_400_000;
        let p = Policy {
            keep: None,
            max_age_days: Some(30),
        };
        // All three are older than 30 days; the newest (1.0-3) stays.
        assert_eq!(
            names(&retire(&p, now, &all)),
            ["hello_1.0-1_amd64.deb", "hello_1.0-2_amd64.deb"]
        );
        let both = Policy {
            keep: Some(5),
            max_age_days: Some(36),
        };
        assert_eq!(names(&retire(&both, now, &all)), ["hello_1.0-1_amd64.deb"]);
    }
}
