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
    /// Freeze a distribution's link state under a name and publish it as a
    /// suite of its own (see [`crate::snapshot`]).
    Snapshot,
    /// Delete a snapshot: its published files go after the grace period,
    /// the pool files only it referenced at the first purge after that.
    #[serde(rename = "delete-snapshot")]
    DeleteSnapshot,
    /// Put a distribution's link state back to a snapshot's.
    Restore,
    /// Apply a retention policy (the distribution's, or one given) to a
    /// whole distribution now.
    Retain,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Link => "link",
            Action::Unlink => "unlink",
            Action::Remove => "remove",
            Action::Purge => "purge",
            Action::Verify => "verify",
            Action::Snapshot => "snapshot",
            Action::DeleteSnapshot => "delete-snapshot",
            Action::Restore => "restore",
            Action::Retain => "retain",
        }
    }

    /// The actions that act on one distribution as a whole and name no
    /// bundle: snapshot, delete-snapshot, restore, retain.
    pub fn is_distribution_wide(self) -> bool {
        matches!(
            self,
            Action::Snapshot | Action::DeleteSnapshot | Action::Restore | Action::Retain
        )
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
    /// The snapshot's name (snapshot, delete-snapshot, restore).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Retain: keep this many newest versions instead of the
    /// distribution's policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
    /// Retain: retire versions older than this many days instead of the
    /// distribution's policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
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

/// The actions, in the order the README lists them.
pub const ACTIONS: [Action; 9] = [
    Action::Link,
    Action::Unlink,
    Action::Remove,
    Action::Purge,
    Action::Verify,
    Action::Snapshot,
    Action::DeleteSnapshot,
    Action::Restore,
    Action::Retain,
];

/// What a request's key says it does and where (README, "Requests"):
///
/// | action | key |
/// | --- | --- |
/// | link, unlink | `requests/<action>/<distribution>/<component>/<name>.json` |
/// | remove | `requests/remove/<component>/<name>.json` |
/// | purge, verify | `requests/<action>/<name>.json` |
/// | snapshot, delete-snapshot, restore, retain | `requests/<action>/<distribution>/<name>.json` |
///
/// The action comes first, from a fixed set, so no distribution or
/// component name can be mistaken for one, and an IAM policy scopes who may
/// send what with one resource pattern per grant
/// (`requests/link/stable/*`, `requests/remove/*`). The body repeats what
/// the key says and must agree with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub action: Action,
    pub distribution: Option<String>,
    pub component: Option<String>,
}

impl Place {
    /// The place a request's key names, or why the key is not one.
    pub fn of_key(key: &str) -> Result<Place, String> {
        let rest = key
            .strip_prefix(crate::keys::REQUESTS)
            .ok_or_else(|| format!("{} is not under requests/", excerpt(key)))?;
        let segments: Vec<&str> = rest.split('/').collect();
        let layout = || {
            let places: Vec<&str> = ACTIONS.iter().map(|a| Place::pattern(*a)).collect();
            format!("a request goes at {}", places.join(", "))
        };
        if segments.len() == 1 {
            return Err(format!(
                "requests/<name>.json is no longer where requests go: {}, so that IAM \
                 policies can say who may send which",
                layout()
            ));
        }
        let Some(action) = ACTIONS.iter().find(|a| a.as_str() == segments[0]).copied() else {
            return Err(format!(
                "{} is not an action; {}",
                excerpt(segments[0]),
                layout()
            ));
        };
        let scope = &segments[1..segments.len() - 1];
        let want = match action {
            Action::Link | Action::Unlink => 2,
            Action::Remove => 1,
            Action::Purge | Action::Verify => 0,
            _ => 1,
        };
        if scope.len() != want || scope.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "a {} request goes at {}",
                action.as_str(),
                Place::pattern(action)
            ));
        }
        let (distribution, component) = match scope {
            [d, c] => (Some(d.to_string()), Some(c.to_string())),
            [d] if action.is_distribution_wide() => (Some(d.to_string()), None),
            [c] => (None, Some(c.to_string())),
            _ => (None, None),
        };
        Ok(Place {
            action,
            distribution,
            component,
        })
    }

    /// The place a request document belongs, from its fields (present or
    /// not: a request missing a field its action needs has no place).
    pub fn of_request(r: &Request) -> Option<Place> {
        let (distribution, component) = match r.action {
            Action::Link | Action::Unlink => {
                (Some(r.distribution.clone()?), Some(r.component.clone()?))
            }
            Action::Remove => (None, Some(r.component.clone()?)),
            Action::Purge | Action::Verify => (None, None),
            _ => (Some(r.distribution.clone()?), None),
        };
        Some(Place {
            action: r.action,
            distribution,
            component,
        })
    }

    /// `requests/<action>/[<distribution>/][<component>/]`: the folder of
    /// the place.
    pub fn folder(&self) -> String {
        let mut out = format!("{}{}/", crate::keys::REQUESTS, self.action.as_str());
        for s in [&self.distribution, &self.component].into_iter().flatten() {
            out.push_str(s);
            out.push('/');
        }
        out
    }

    fn pattern(action: Action) -> &'static str {
        match action {
            Action::Link => "requests/link/<distribution>/<component>/<name>.json",
            Action::Unlink => "requests/unlink/<distribution>/<component>/<name>.json",
            Action::Remove => "requests/remove/<component>/<name>.json",
            Action::Purge => "requests/purge/<name>.json",
            Action::Verify => "requests/verify/<name>.json",
            Action::Snapshot => "requests/snapshot/<distribution>/<name>.json",
            Action::DeleteSnapshot => "requests/delete-snapshot/<distribution>/<name>.json",
            Action::Restore => "requests/restore/<distribution>/<name>.json",
            Action::Retain => "requests/retain/<distribution>/<name>.json",
        }
    }

    /// Why a request at this place may not say what it says, if it may not.
    pub fn disagreement(&self, r: &Request) -> Option<String> {
        if r.action != self.action {
            return Some(format!(
                "the key says {} but the body says \"action\": \"{}\"",
                self.action.as_str(),
                r.action.as_str()
            ));
        }
        for (field, key, body) in [
            ("distribution", &self.distribution, &r.distribution),
            ("component", &self.component, &r.component),
        ] {
            if let (Some(k), Some(b)) = (key, body) {
                if k != b {
                    return Some(format!(
                        "the key says {field} {} but the body says \"{field}\": {}",
                        excerpt(k),
                        excerpt(b)
                    ));
                }
            }
        }
        None
    }
}

/// The key a request document belongs at, named `name` (`<name>.json`), if
/// its body says enough to place it: what `raptr request` uploads to. A
/// body that does not parse has no place; the caller puts it at
/// `requests/<name>` and its report gives both reasons.
pub fn key_for(body: &[u8], name: &str) -> Option<String> {
    let request: Request = serde_json::from_slice(body).ok()?;
    Some(format!("{}{name}", Place::of_request(&request)?.folder()))
}

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
        let wide = self.action.is_distribution_wide();
        for (field, set, allowed) in [
            (
                "snapshot",
                self.snapshot.is_some(),
                wide && self.action != Action::Retain,
            ),
            ("keep", self.keep.is_some(), self.action == Action::Retain),
            (
                "max_age_days",
                self.max_age_days.is_some(),
                self.action == Action::Retain,
            ),
        ] {
            if set && !allowed {
                return refuse(field, "is not used");
            }
        }
        match self.action {
            _ if wide => {
                for (field, set) in [
                    ("bundle", self.bundle.is_some()),
                    ("version", self.version.is_some()),
                    ("component", self.component.is_some()),
                    ("packages", self.packages.is_some()),
                    ("architectures", self.architectures.is_some()),
                ] {
                    if set {
                        return refuse(field, "is not used; it applies to the whole distribution");
                    }
                }
                let Some(d) = &self.distribution else {
                    return refuse("distribution", "is required");
                };
                if !config.primary_layout().distributions.contains_key(d) {
                    return Err(format!(
                        "\"distribution\": {} is not a distribution of this repository",
                        excerpt(d)
                    ));
                }
                if self.action == Action::Retain {
                    if self.keep == Some(0) {
                        return Err("\"keep\": 0 would retire everything; the newest version is always kept, so give 1 or more".into());
                    }
                    let given = self.keep.is_some() || self.max_age_days.is_some();
                    let configured = config.primary_layout().distributions[d].retention.is_some();
                    if !given && !configured {
                        return Err(format!(
                            "distribution {} has no retention policy; give \"keep\" and/or \"max_age_days\", or set \"retention\" in its layout entry",
                            excerpt(d)
                        ));
                    }
                } else {
                    match &self.snapshot {
                        None => return refuse("snapshot", "(the snapshot's name) is required"),
                        Some(n) if !crate::snapshot::valid_name(n) => {
                            return Err(format!(
                                "\"snapshot\": {} is not a snapshot name ({})",
                                excerpt(n),
                                crate::snapshot::NAME_RULE
                            ))
                        }
                        Some(_) => {}
                    }
                }
                Ok(None)
            }
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
            _ => {
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
    fn every_request_has_one_place_and_its_key_names_it() {
        for (body, key) in [
            (
                r#"{"action":"link","bundle":"foo","version":"1","component":"main","distribution":"stable"}"#,
                "requests/link/stable/main/r.json",
            ),
            (
                r#"{"action":"unlink","bundle":"foo","version":"all","component":"contrib","distribution":"testing"}"#,
                "requests/unlink/testing/contrib/r.json",
            ),
            (
                r#"{"action":"remove","bundle":"foo","version":"1","component":"main"}"#,
                "requests/remove/main/r.json",
            ),
            (r#"{"action":"purge"}"#, "requests/purge/r.json"),
            (
                r#"{"action":"verify","dry_run":true}"#,
                "requests/verify/r.json",
            ),
        ] {
            assert_eq!(key_for(body.as_bytes(), "r.json").as_deref(), Some(key));
            let place = Place::of_key(key).expect(key);
            let request: Request = serde_json::from_str(body).expect(body);
            assert_eq!(Some(&place), Place::of_request(&request).as_ref());
            assert_eq!(place.disagreement(&request), None);
        }
        // Too broken to place.
        for body in [
            "{",
            r#"{"action":"link","bundle":"foo"}"#,
            r#"{"action":"x"}"#,
        ] {
            assert_eq!(key_for(body.as_bytes(), "r.json"), None, "{body}");
        }
        for (key, why) in [
            ("requests/r.json", "no longer where requests go"),
            ("requests/link/stable/r.json", "a link request goes at"),
            (
                "requests/link/stable/main/x/r.json",
                "a link request goes at",
            ),
            ("requests/link//main/r.json", "a link request goes at"),
            ("requests/verify/x/r.json", "a verify request goes at"),
            ("requests/Link/stable/main/r.json", "is not an action"),
            ("incoming/r.json", "not under requests/"),
        ] {
            let e = Place::of_key(key).expect_err(key);
            assert!(e.contains(why), "{key}: {e}");
        }
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
