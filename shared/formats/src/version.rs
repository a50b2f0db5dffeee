//! Debian versions (`[epoch:]upstream[-revision]`): strict parsing and dpkg's
//! ordering.
//!
//! Parsing follows Debian Policy 5.6.12 strictly: an upstream part that starts
//! with a digit, a colon only after an epoch, a hyphen only when there is a
//! revision, and nothing outside the allowed characters. dpkg itself only warns
//! about some of these; an archive should not accept them.
//!
//! Ordering is dpkg's `verrevcmp`: epochs numerically, then upstream and revision
//! alternating non-digit runs (where `~` sorts before everything, even the end of
//! the string, and letters before other characters) and digit runs compared as
//! numbers of any length.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone)]
pub struct Version {
    epoch: u32,
    /// Whether the epoch was written (`0:1.0` keeps its `0:` when displayed).
    explicit_epoch: bool,
    upstream: String,
    revision: Option<String>,
}

/// The longest version raptr takes. Debian's longest are under 60
/// characters; the limit keeps every key made from a version (pool keys,
/// manifests, reports) under S3's 1,024 bytes.
pub const MAX_VERSION: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {}: {problem}", crate::quote::excerpt(version))]
pub struct VersionError {
    pub version: String,
    pub problem: &'static str,
}

impl Version {
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        let fail = |problem| VersionError {
            version: s.chars().take(100).collect(),
            problem,
        };
        if s.is_empty() {
            return Err(fail("empty"));
        }
        if s.len() > MAX_VERSION {
            return Err(fail("longer than 100 characters (raptr's limit, so that every key made from it fits S3's 1,024 bytes)"));
        }
        // Stricter than Policy: no key raptr builds from a version can then hold
        // a path-climbing sequence.
        if s.contains("..") {
            return Err(fail("contains \"..\""));
        }
        let (epoch, explicit_epoch, rest) = match s.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(fail("epoch is not a number"));
                }
                let epoch: u32 = e.parse().map_err(|_| fail("epoch is too large"))?;
                (epoch, true, rest)
            }
            None => (0, false, s),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, Some(r)),
            None => (rest, None),
        };
        if upstream.is_empty() {
            return Err(fail("empty upstream version"));
        }
        if !upstream.as_bytes()[0].is_ascii_digit() {
            return Err(fail("upstream version does not start with a digit"));
        }
        let upstream_ok = |b: u8| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'+' | b'~')
                || (b == b'-' && revision.is_some())
                || (b == b':' && explicit_epoch)
        };
        if !upstream.bytes().all(upstream_ok) {
            return Err(fail(
                "upstream version has a character outside [A-Za-z0-9.+~-:]",
            ));
        }
        if let Some(r) = revision {
            if r.is_empty() {
                return Err(fail("empty Debian revision"));
            }
            if !r
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'~'))
            {
                return Err(fail(
                    "Debian revision has a character outside [A-Za-z0-9.+~]",
                ));
            }
        }
        Ok(Version {
            epoch,
            explicit_epoch,
            upstream: upstream.to_string(),
            revision: revision.map(str::to_string),
        })
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    pub fn revision(&self) -> Option<&str> {
        self.revision.as_deref()
    }

    /// The version as it appears in file names: without its epoch.
    pub fn without_epoch(&self) -> String {
        match &self.revision {
            Some(r) => format!("{}-{}", self.upstream, r),
            None => self.upstream.clone(),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.explicit_epoch {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.without_epoch())
    }
}

impl FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

/// dpkg's weight of a character in a non-digit run; 0 is the end of the run.
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

/// Compares two upstream versions or two revisions the way dpkg does.
pub fn compare_part(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let wa = weight(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let wb = weight(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // Digit run, compared as a number of any length.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let si = i;
        let sj = j;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let (da, db) = (&a[si..i], &b[sj..j]);
        let ord = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| compare_part(&self.upstream, &other.upstream))
            .then_with(|| {
                compare_part(
                    self.revision.as_deref().unwrap_or(""),
                    other.revision.as_deref().unwrap_or(""),
                )
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Equal in dpkg's sense: `1.0` equals `0:1.0` and `1.0-0`.
impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).expect(s)
    }

    #[test]
    fn orders_like_dpkg() {
        let ascending = [
            "0.9",
            "1.0~rc1",
            "1.0~rc1-1",
            "1.0",
            "1.0-0.1",
            "1.0-1",
            "1.0-1+b1",
            "1.0a",
            "1.0+dfsg-1",
            "1.1",
            "1.10",
            "1:0.1",
            "2:0",
        ];
        for w in ascending.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(v("1.0"), v("0:1.0"));
        assert_eq!(v("1.0"), v("1.0-0"));
        assert_eq!(v("1.001"), v("1.1"));
        assert_eq!(v("1:2.0").to_string(), "1:2.0");
        assert_eq!(v("0:2.0").to_string(), "0:2.0");
        assert_eq!(v("1:2.0-3").without_epoch(), "2.0-3");
        assert_eq!(v("1.2-3-4").revision(), Some("4"));
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "a1.0",
            "1.0-",
            ":1.0",
            "x:1.0",
            "1:",
            "1.0/2",
            "1.0 2",
            "1..0-a/b",
            "1:2:3-a:b",
            "1.0-1_2",
            "99999999999:1",
            "1:a",
            "-1",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            Version::parse("1:2:3").is_ok(),
            "colon allowed after an epoch"
        );
        assert!(
            Version::parse("1.0-2-3").is_ok(),
            "hyphen allowed with a revision"
        );
    }
}
