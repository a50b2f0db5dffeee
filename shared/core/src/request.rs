//! Requests under `requests/` (DESIGN §5): one JSON object per file, parsed
//! strictly and checked against the configuration before anything looks at the
//! pool.

use raptr_formats::policy::{valid_architecture, valid_package_name};
use raptr_formats::quote::excerpt;
use raptr_formats::Version;
use serde::{Deserialize, Serialize};

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Publish a bundle version in a distribution and component.
    Link,
    /// Stop publishing it there.
    Unlink,
    /// Unlink everywhere and drop the manifest; the files go at the next purge.
    Remove,
    /// Delete pool files nothing references, after the grace period.
    Purge,
    /// Check every replica against its Release and repair what is missing.
    Verify,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Link => "link",
            Action::Unlink => "unlink",
            Action::Remove => "remove",
            Action::Purge => "purge",
            Action::Verify => "verify",
        }
    }
}

/// A request as uploaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// A Debian version, or `"all"`. Required for link, unlink and remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// Binary package names, or `"source"` for the source package's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<String>>,
    #[serde(default)]
    pub dry_run: bool,
}

/// Which versions a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Versions {
    All,
    One(Version),
}

/// A request that passed [`Request::parse`]: the fields its action needs are
/// there and well-formed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub request: Request,
    /// Set for link, unlink and remove.
    pub target: Option<Target>,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub bundle: String,
    pub versions: Versions,
    pub component: String,
}

/// Requests are small; anything bigger is not one.
pub const MAX_REQUEST: usize = 64 << 10;

impl Request {
    /// Parses and checks a request document. The error is the report's reason.
    pub fn parse(bytes: &[u8], config: &Config) -> Result<Checked, String> {
        if bytes.len() > MAX_REQUEST {
            return Err(format!(
                "{} bytes; a request is at most {MAX_REQUEST}",
                bytes.len()
            ));
        }
        let request: Request = serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "not a valid request (line {} column {}): {}",
                e.line(),
                e.column(),
                crate::json_problem(&e)
            )
        })?;
        let target = request.check(config)?;
        Ok(Checked { request, target })
    }

    fn check(&self, config: &Config) -> Result<Option<Target>, String> {
        let action = self.action.as_str();
        let refuse = |field: &str, why: &str| Err(format!("\"{field}\" {why} for {action}"));
        if let Some(p) = &self.packages {
            if p.is_empty() {
                return Err("\"packages\" is empty; leave it out to mean every package".into());
            }
            if let Some(bad) = p.iter().find(|n| *n != "source" && !valid_package_name(n)) {
                return Err(format!(
                    "\"packages\": {} is not a package name",
                    excerpt(bad)
                ));
            }
        }
        if let Some(a) = &self.architectures {
            if a.is_empty() {
                return Err(
                    "\"architectures\" is empty; leave it out to mean every architecture".into(),
                );
            }
            if let Some(bad) = a.iter().find(|n| *n != "source" && !valid_architecture(n)) {
                return Err(format!(
                    "\"architectures\": {} is not an architecture",
                    excerpt(bad)
                ));
            }
        }
        match self.action {
            Action::Purge | Action::Verify => {
                for (field, set) in [
                    ("bundle", self.bundle.is_some()),
                    ("version", self.version.is_some()),
                    ("component", self.component.is_some()),
                    ("distribution", self.distribution.is_some()),
                    ("packages", self.packages.is_some()),
                    ("architectures", self.architectures.is_some()),
                ] {
                    if set {
                        return refuse(field, "is not used; it applies to the whole repository");
                    }
                }
                Ok(None)
            }
            Action::Link | Action::Unlink | Action::Remove => {
                let Some(bundle) = &self.bundle else {
                    return refuse("bundle", "(the source package name) is required");
                };
                if !valid_package_name(bundle) {
                    return Err(format!(
                        "\"bundle\": {} is not a source package name",
                        excerpt(bundle)
                    ));
                }
                let versions = match self.version.as_deref() {
                    None => return refuse(
                        "version",
                        "is required (a Debian version, or \"all\"; there is no implicit latest)",
                    ),
                    Some("all") => Versions::All,
                    Some(v) => {
                        Versions::One(Version::parse(v).map_err(|e| format!("\"version\": {e}"))?)
                    }
                };
                let Some(component) = &self.component else {
                    return refuse("component", "is required");
                };
                let layout = config.primary_layout();
                if !layout
                    .distributions
                    .values()
                    .any(|d| d.components.contains(component))
                {
                    return Err(format!(
                        "\"component\": no distribution of this repository has {}",
                        excerpt(component)
                    ));
                }
                match (&self.distribution, self.action) {
                    (Some(_), Action::Remove) => {
                        return refuse("distribution", "is not used; remove unlinks everywhere")
                    }
                    (None, Action::Link | Action::Unlink) => {
                        return refuse("distribution", "is required")
                    }
                    (Some(d), _) => match layout.distributions.get(d) {
                        None => {
                            return Err(format!(
                                "\"distribution\": {} is not a distribution of this repository",
                                excerpt(d)
                            ))
                        }
                        Some(dist) if !dist.components.contains(component) => {
                            return Err(format!(
                                "\"component\": distribution {} has no component {}",
                                excerpt(d),
                                excerpt(component)
                            ))
                        }
                        Some(_) => {}
                    },
                    (None, _) => {}
                }
                Ok(Some(Target {
                    bundle: bundle.clone(),
                    versions,
                    component: component.clone(),
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: &str) -> Result<Checked, String> {
        Request::parse(doc.as_bytes(), &Config::default_local("repo"))
    }

    #[test]
    fn accepted_requests() {
        let c = parse(
            r#"{"action":"link","bundle":"foo","version":"1:1.0-1","component":"main","distribution":"stable","packages":["foo","source"],"architectures":["amd64"]}"#,
        )
        .expect("valid");
        let t = c.target.expect("target");
        assert_eq!(
            t.versions,
            Versions::One(Version::parse("1:1.0-1").expect("v"))
        );
        let c = parse(r#"{"action":"remove","bundle":"foo","version":"all","component":"main","dry_run":true}"#)
            .expect("valid");
        assert!(c.request.dry_run);
        assert_eq!(c.target.expect("target").versions, Versions::All);
        assert!(parse(r#"{"action":"purge"}"#)
            .expect("valid")
            .target
            .is_none());
        assert!(parse(r#"{"action":"verify","dry_run":true}"#).is_ok());
    }

    #[test]
    fn requests_up_to_the_size_limit() {
        let body = r#"{"action":"verify"}"#;
        let padded = |n: usize| format!("{body}{}", " ".repeat(n - body.len()));
        assert!(parse(&padded(MAX_REQUEST)).is_ok());
        let e = parse(&padded(MAX_REQUEST + 1)).expect_err("one byte over the limit");
        assert!(e.contains(&format!("at most {MAX_REQUEST}")), "{e}");
    }

    #[test]
    fn refused_requests() {
        for (doc, why) in [
            ("{", "not a valid request"),
            ("[]", "not a valid request"),
            (r#"{"action":"promote"}"#, "unknown variant"),
            (
                r#"{"action":"purge","colour":"red"}"#,
                "unknown field `colour`",
            ),
            (
                r#"{"action":"link","bundle":"foo","component":"main","distribution":"stable"}"#,
                "\"version\" is required",
            ),
            (
                r#"{"action":"link","bundle":"foo","version":"latest!","component":"main","distribution":"stable"}"#,
                "\"version\"",
            ),
            (
                r#"{"action":"link","bundle":"Foo","version":"1","component":"main","distribution":"stable"}"#,
                "not a source package name",
            ),
            (
                r#"{"action":"link","bundle":"foo","version":"1","component":"main"}"#,
                "\"distribution\" is required",
            ),
            (
                r#"{"action":"link","bundle":"foo","version":"1","component":"main","distribution":"unstable"}"#,
                "not a distribution",
            ),
            (
                r#"{"action":"link","bundle":"foo","version":"1","component":"contrib","distribution":"stable"}"#,
                "no distribution of this repository has",
            ),
            (
                r#"{"action":"remove","bundle":"foo","version":"1","component":"main","distribution":"stable"}"#,
                "remove unlinks everywhere",
            ),
            (r#"{"action":"purge","bundle":"foo"}"#, "is not used"),
            (
                r#"{"action":"link","bundle":"foo","version":"1","component":"main","distribution":"stable","packages":[]}"#,
                "is empty",
            ),
            (
                r#"{"action":"link","bundle":"foo","version":"1","component":"main","distribution":"stable","architectures":["AMD64"]}"#,
                "not an architecture",
            ),
            (
                r#"{"action":"link","bundle":"foo","version":1,"component":"main","distribution":"stable"}"#,
                "invalid type",
            ),
            (
                r#"{"action":"link","bundle":"foo","version":"1","component":"main","distribution":"stable","dry_run":"yes"}"#,
                "invalid type",
            ),
        ] {
            let e = parse(doc).expect_err(doc);
            assert!(e.contains(why), "{doc}: {e}");
        }
    }
}
