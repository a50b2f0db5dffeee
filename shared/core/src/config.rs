//! The repository's configuration: one JSON document (DESIGN §8), validated
//! strictly. Unknown keys, wrong types, bad names and dangling references
//! are refused with the JSON path of the offending value, and nothing runs
//! on a refused configuration. `config.schema.json` beside this crate
//! documents the same rules for editors and reviewers; the tests check that
//! both accept and refuse the same documents.
//!
//! ```json
//! {
//!   "layouts": {
//!     "default": {
//!       "distributions": {
//!         "stable": { "components": ["main"], "architectures": ["amd64", "arm64", "source"] }
//!       }
//!     }
//!   },
//!   "primary": { "bucket": "raptr-primary", "region": "us-east-1", "layout": "default" },
//!   "replicas": [ { "name": "eu", "bucket": "raptr-replica-eu", "region": "eu-west-1", "layout": "default" } ],
//!   "release": { "origin": "raptr", "label": "raptr" },
//!   "signing_key": { "secret": "raptr/signing-key" },
//!   // or several, each signing everything (a rotation):
//!   // "signing_key": [ { "secret": "raptr/old-key" },
//!   //                  { "secret": "raptr/new-key", "passphrase": { "secret": "raptr/new-key-passphrase" } } ],
//!   "retention": { "grace_period_hours": 48, "pending_timeout_hours": 24 }
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use raptr_formats::quote::excerpt;
use serde::{Deserialize, Serialize};

/// A configuration that was refused: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", raptr_formats::quote::line(&format!("{source_name}: {path}: {problem}")))]
pub struct ConfigError {
    /// The file or key the configuration came from.
    pub source_name: String,
    /// Where in the document (`layouts.default.distributions.stable`), or
    /// `line L column C` for a syntax or type error.
    pub path: String,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Named sets of distributions; the primary and each replica use one.
    pub layouts: BTreeMap<String, Layout>,
    pub primary: Primary,
    #[serde(default)]
    pub replicas: Vec<Replica>,
    pub release: ReleaseIdentity,
    /// One signing key, or a list of them (each signs everything).
    pub signing_key: SigningKeys,
    #[serde(default)]
    pub retention: Retention,
    /// Upstream archives kept imported into a distribution (see
    /// [`crate::import`]): `raptr mirror sync` brings each up to date.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<Mirror>,
}

/// An upstream archive kept imported into a distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Names it in upload folders, reports and its progress record.
    pub name: String,
    /// `http(s)://…`, `file:/…` or `s3://BUCKET`: the directory holding
    /// `dists/` (or a flat archive's).
    pub url: String,
    /// The suite; none for a flat archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<String>,
    /// The public keys its Release must be signed by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<Keyring>,
    /// Accept it without any signature (never a bad one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_unsigned: bool,
    /// Package name patterns (`*`, `?`); none: every package.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sources: bool,
    /// Only the newest N versions of each package and architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<u32>,
    /// Also what the selected packages depend on, resolved in the upstream.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dependencies: bool,
    /// Where it is imported.
    pub distribution: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub distributions: BTreeMap<String, Distribution>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    pub components: Vec<String>,
    /// Binary architectures, and `source` for Sources indices. `all` is
    /// implied: `Architecture: all` packages go into every architecture.
    pub architectures: Vec<String>,
    /// The Release file's Codename; the distribution's name if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// The Release file's Suite; the distribution's name if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// Also publish `Packages.xz` and `Sources.xz` (beside `.gz`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub xz: bool,
    /// `false`: the distribution takes packages only by promotion (link
    /// requests); uploads under `incoming/<it>/` are rejected.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub uploads: bool,
    /// Uploads must come with a `.changes` signed by a key of this keyring
    /// (OpenPGP public keys, armoured or binary, in a secret or a file),
    /// listing every file of the upload folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_keyring: Option<Keyring>,
    /// How many versions of each package the distribution serves at most
    /// (see [`crate::retain`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Policy>,
    /// Snapshots the scheduled run takes by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<Schedule>,
}

/// A retention policy: at least one of the two limits. A version past
/// either goes (is unlinked from the distribution); the newest version of
/// each package always stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Keep the newest N versions of each binary package per architecture,
    /// and of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
    /// Retire versions uploaded more than this many days ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<u32>,
}

/// Scheduled snapshots: one every `every_hours` (taken by the first
/// scheduled run after it is due), named `auto-YYYYMMDD-HHMM` (UTC); the
/// oldest scheduled ones beyond `keep` are deleted. Snapshots taken by
/// request are never deleted by the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub every_hours: u32,
    pub keep: u32,
}

/// Where a keyring of public keys is: exactly one of `secret` and `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyring {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl Keyring {
    /// Where it is (a validated configuration names exactly one place).
    pub fn place(&self) -> KeyPlace<'_> {
        KeyPlace::of(&self.secret, &self.file)
    }
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Primary {
    pub bucket: String,
    pub region: String,
    pub layout: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    pub name: String,
    pub bucket: String,
    pub region: String,
    pub layout: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseIdentity {
    pub origin: String,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Valid-Until, this many days after Date; none if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_for_days: Option<u32>,
}

/// Where a private signing key is, and what unlocks it: exactly one of
/// `secret` and `file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    /// The name or ARN of an AWS Secrets Manager secret holding the
    /// armoured key, or a JSON object `{"key": ARMOURED, "passphrase": P}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A file (local repositories, or a file shipped with the function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Where the passphrase of a protected key is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passphrase: Option<Passphrase>,
}

/// Where a signing key is (see [`SigningKey::place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyPlace<'a> {
    Secret(&'a str),
    File(&'a str),
}

impl<'a> KeyPlace<'a> {
    fn of(secret: &'a Option<String>, file: &'a Option<String>) -> KeyPlace<'a> {
        match (secret, file) {
            (Some(s), _) => KeyPlace::Secret(s),
            (None, Some(f)) => KeyPlace::File(f),
            (None, None) => KeyPlace::File(""),
        }
    }

    /// Why a `secret`/`file` pair does not name exactly one place.
    fn problem(secret: &Option<String>, file: &Option<String>) -> Option<&'static str> {
        match (secret, file) {
            (Some(_), Some(_)) | (None, None) => Some("give exactly one of secret and file"),
            (Some(v), None) | (None, Some(v)) if v.trim().is_empty() => Some("is empty"),
            _ => None,
        }
    }
}

impl SigningKey {
    /// A key in a Secrets Manager secret.
    pub fn secret(name: impl Into<String>) -> SigningKey {
        SigningKey {
            secret: Some(name.into()),
            file: None,
            passphrase: None,
        }
    }

    /// A key in a file.
    pub fn file(path: impl Into<String>) -> SigningKey {
        SigningKey {
            secret: None,
            file: Some(path.into()),
            passphrase: None,
        }
    }

    /// Where the key is (a validated configuration names exactly one place).
    pub fn place(&self) -> KeyPlace<'_> {
        KeyPlace::of(&self.secret, &self.file)
    }
}

/// Where a key's passphrase is. Its first line is the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Passphrase {
    /// Its own Secrets Manager secret.
    Secret(String),
    /// A file (local mode).
    File(String),
    /// An environment variable.
    Env(String),
}

/// The repository's signing keys: `signing_key` is one object or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeys(pub Vec<SigningKey>);

/// More keys than this is a mistake, not a rotation.
pub const MAX_SIGNING_KEYS: usize = 8;

impl SigningKeys {
    pub fn one(key: SigningKey) -> SigningKeys {
        SigningKeys(vec![key])
    }

    /// The path of key `i` in the document, for messages.
    pub fn path(&self, i: usize) -> String {
        if self.0.len() == 1 {
            "signing_key".into()
        } else {
            format!("signing_key[{i}]")
        }
    }
}

impl Serialize for SigningKeys {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for SigningKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOrMany;
        impl<'de> serde::de::Visitor<'de> for OneOrMany {
            type Value = SigningKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a signing key object, or a list of them")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SigningKeys, A::Error> {
                SigningKey::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(SigningKeys::one)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<SigningKeys, A::Error> {
                Vec::<SigningKey>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(SigningKeys)
            }
        }
        d.deserialize_any(OneOrMany)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// How long superseded indices and unreferenced pool files stay.
    #[serde(default = "default_grace")]
    pub grace_period_hours: u32,
    /// How long a file may wait for its companions before it is rejected.
    #[serde(default = "default_pending")]
    pub pending_timeout_hours: u32,
}

fn default_grace() -> u32 {
    48
}

fn default_pending() -> u32 {
    24
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            grace_period_hours: default_grace(),
            pending_timeout_hours: default_pending(),
        }
    }
}

/// A distribution or component name: lowercase letters, digits and
/// `.+-_`, starting with a letter or digit, at most 64 bytes. No `/`, so it
/// is one key segment.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".+-_".contains(&c))
}

/// An S3 bucket name as AWS allows it (3 to 63 of lowercase letters, digits,
/// `.` and `-`, starting and ending with a letter or digit).
pub fn valid_bucket(name: &str) -> bool {
    let b = name.as_bytes();
    (3..=63).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A Release field value: one line, printable, not empty.
fn valid_field(value: &str) -> bool {
    !value.trim().is_empty() && value.chars().count() <= 200 && !value.chars().any(char::is_control)
}

impl Config {
    /// The layout of the primary bucket (validation guarantees it exists).
    pub fn primary_layout(&self) -> &Layout {
        static EMPTY: Layout = Layout {
            distributions: BTreeMap::new(),
        };
        self.layouts.get(&self.primary.layout).unwrap_or(&EMPTY)
    }

    /// Parses and validates a configuration document; `source_name` names
    /// it in errors.
    pub fn from_json(bytes: &[u8], source_name: &str) -> Result<Config, ConfigError> {
        let config: Config = serde_json::from_slice(bytes).map_err(|e| ConfigError {
            source_name: source_name.to_string(),
            path: format!("line {} column {}", e.line(), e.column()),
            problem: crate::json_problem(&e),
        })?;
        config.validate(source_name)?;
        Ok(config)
    }

    /// The configuration `raptr init` uses when given none: distributions
    /// `stable` and `testing`, component `main`, architectures `amd64`,
    /// `arm64`, `i386` and `source`, no replicas. The signing key is a
    /// placeholder file name: `raptr init` names the key it makes, kept
    /// outside the repository's tree.
    pub fn default_local(bucket: &str) -> Config {
        let dist = Distribution {
            components: vec!["main".into()],
            architectures: ["amd64", "arm64", "i386", "source"]
                .map(String::from)
                .to_vec(),
            codename: None,
            suite: None,
            xz: false,
            uploads: true,
            upload_keyring: None,
            retention: None,
            snapshots: None,
        };
        Config {
            layouts: BTreeMap::from([(
                "default".to_string(),
                Layout {
                    distributions: BTreeMap::from([
                        ("stable".to_string(), dist.clone()),
                        ("testing".to_string(), dist),
                    ]),
                },
            )]),
            primary: Primary {
                bucket: bucket.to_string(),
                region: "local".into(),
                layout: "default".into(),
            },
            replicas: Vec::new(),
            release: ReleaseIdentity {
                origin: "raptr".into(),
                label: "raptr".into(),
                description: None,
                valid_for_days: None,
            },
            signing_key: SigningKeys::one(SigningKey::file("signing-key.asc")),
            retention: Retention::default(),
            mirrors: Vec::new(),
        }
    }

    /// The rules serde cannot express.
    pub fn validate(&self, source_name: &str) -> Result<(), ConfigError> {
        let fail = |path: String, problem: String| {
            Err(ConfigError {
                source_name: source_name.to_string(),
                path,
                problem,
            })
        };
        if self.layouts.is_empty() {
            return fail("layouts".into(), "no layout is defined".into());
        }
        for (lname, layout) in &self.layouts {
            let at = format!("layouts.{lname}");
            if !valid_name(lname) {
                return fail(
                    at,
                    "not a valid layout name (lowercase letters, digits, .+-_)".into(),
                );
            }
            if layout.distributions.is_empty() {
                return fail(format!("{at}.distributions"), "no distribution".into());
            }
            for (dname, dist) in &layout.distributions {
                let at = format!("{at}.distributions.{dname}");
                if !valid_name(dname) {
                    return fail(
                        at,
                        "not a valid distribution name (lowercase letters, digits, .+-_)".into(),
                    );
                }
                check_list(
                    &dist.components,
                    &format!("{at}.components"),
                    valid_name,
                    "component name",
                )
                .or_else(|(p, m)| fail(p, m))?;
                check_list(
                    &dist.architectures,
                    &format!("{at}.architectures"),
                    |a| {
                        a == "source"
                            || (raptr_formats::policy::valid_architecture(a) && a != "all")
                    },
                    "architecture (a Debian architecture or `source`; `all` is implied)",
                )
                .or_else(|(p, m)| fail(p, m))?;
                if let Some(k) = &dist.upload_keyring {
                    if let Some(why) = KeyPlace::problem(&k.secret, &k.file) {
                        return fail(format!("{at}.upload_keyring"), why.into());
                    }
                    if !dist.uploads {
                        return fail(
                            format!("{at}.upload_keyring"),
                            "the distribution takes no uploads (\"uploads\": false)".into(),
                        );
                    }
                }
                if let Some(p) = &dist.retention {
                    if p.keep.is_none() && p.max_age_days.is_none() {
                        return fail(
                            format!("{at}.retention"),
                            "give \"keep\" and/or \"max_age_days\"".into(),
                        );
                    }
                    if p.keep == Some(0) {
                        return fail(
                            format!("{at}.retention.keep"),
                            "0 would keep nothing; the newest version always stays, so give 1 or more".into(),
                        );
                    }
                }
                if let Some(s) = &dist.snapshots {
                    if s.every_hours == 0 || s.keep == 0 {
                        return fail(
                            format!("{at}.snapshots"),
                            "\"every_hours\" and \"keep\" must be 1 or more".into(),
                        );
                    }
                }
                for (field, value) in [("codename", &dist.codename), ("suite", &dist.suite)] {
                    if let Some(v) = value {
                        if !valid_name(v) {
                            return fail(
                                format!("{at}.{field}"),
                                format!("{} is not a valid {field}", excerpt(v)),
                            );
                        }
                    }
                }
            }
        }
        let layout_ref = |path: String, layout: &str| {
            if self.layouts.contains_key(layout) {
                Ok(())
            } else {
                fail(path, format!("no layout named {}", excerpt(layout)))
            }
        };
        layout_ref("primary.layout".into(), &self.primary.layout)?;
        if !valid_bucket(&self.primary.bucket) {
            return fail(
                "primary.bucket".into(),
                format!(
                    "{} is not a valid bucket name",
                    excerpt(&self.primary.bucket)
                ),
            );
        }
        let mut names = BTreeSet::new();
        let mut buckets = BTreeSet::from([self.primary.bucket.as_str()]);
        for (i, r) in self.replicas.iter().enumerate() {
            let at = format!("replicas[{i}]");
            if !valid_name(&r.name) {
                return fail(
                    format!("{at}.name"),
                    format!("{} is not a valid replica name", excerpt(&r.name)),
                );
            }
            if !names.insert(r.name.as_str()) {
                return fail(
                    format!("{at}.name"),
                    format!("replica {} is named twice", excerpt(&r.name)),
                );
            }
            if !valid_bucket(&r.bucket) {
                return fail(
                    format!("{at}.bucket"),
                    format!("{} is not a valid bucket name", excerpt(&r.bucket)),
                );
            }
            if !buckets.insert(r.bucket.as_str()) {
                return fail(
                    format!("{at}.bucket"),
                    format!("bucket {} is used twice", excerpt(&r.bucket)),
                );
            }
            layout_ref(format!("{at}.layout"), &r.layout)?;
        }
        for (field, value) in [
            ("origin", Some(&self.release.origin)),
            ("label", Some(&self.release.label)),
            ("description", self.release.description.as_ref()),
        ] {
            if value.is_some_and(|v| !valid_field(v)) {
                return fail(
                    format!("release.{field}"),
                    "must be one printable line of 1 to 200 characters".into(),
                );
            }
        }
        if self.release.valid_for_days == Some(0) {
            return fail("release.valid_for_days".into(), "must be at least 1".into());
        }
        let keys = &self.signing_key;
        if keys.0.is_empty() || keys.0.len() > MAX_SIGNING_KEYS {
            return fail(
                "signing_key".into(),
                format!("names {} keys; give 1 to {MAX_SIGNING_KEYS}", keys.0.len()),
            );
        }
        let mut places = BTreeSet::new();
        for (i, k) in keys.0.iter().enumerate() {
            let path = keys.path(i);
            if let Some(why) = KeyPlace::problem(&k.secret, &k.file) {
                return fail(path, why.into());
            }
            if !places.insert(k.place()) {
                return fail(path, "names the same key as an earlier entry".into());
            }
            if let Some(Passphrase::Secret(v) | Passphrase::File(v) | Passphrase::Env(v)) =
                &k.passphrase
            {
                if v.trim().is_empty() {
                    return fail(format!("{path}.passphrase"), "is empty".into());
                }
            }
        }
        if self.retention.grace_period_hours == 0 {
            return fail(
                "retention.grace_period_hours".into(),
                "must be at least 1: clients may still be reading the previous generation".into(),
            );
        }
        if self.retention.pending_timeout_hours == 0 {
            return fail(
                "retention.pending_timeout_hours".into(),
                "must be at least 1".into(),
            );
        }
        let mut mirror_names = BTreeSet::new();
        for (i, m) in self.mirrors.iter().enumerate() {
            let at = format!("mirrors[{i}]");
            if !valid_name(&m.name) || !mirror_names.insert(m.name.as_str()) {
                return fail(
                    format!("{at}.name"),
                    format!(
                        "{} is not a valid name, or names two mirrors",
                        excerpt(&m.name)
                    ),
                );
            }
            if !["http://", "https://", "file:", "s3://"]
                .iter()
                .any(|p| m.url.starts_with(p))
            {
                return fail(
                    format!("{at}.url"),
                    "must start with http://, https://, file: or s3://".into(),
                );
            }
            match (&m.keyring, m.allow_unsigned) {
                (None, false) => return fail(
                    format!("{at}.keyring"),
                    "is required (or \"allow_unsigned\": true for an upstream that signs nothing)"
                        .into(),
                ),
                (Some(k), _) => {
                    if let Some(why) = KeyPlace::problem(&k.secret, &k.file) {
                        return fail(format!("{at}.keyring"), why.into());
                    }
                }
                (None, true) => {}
            }
            if m.newest == Some(0) {
                return fail(format!("{at}.newest"), "must be at least 1".into());
            }
            let Some(d) = self.primary_layout().distributions.get(&m.distribution) else {
                return fail(
                    format!("{at}.distribution"),
                    format!("no distribution {}", excerpt(&m.distribution)),
                );
            };
            if let Some(c) = &m.component {
                if !d.components.contains(c) {
                    return fail(
                        format!("{at}.component"),
                        format!(
                            "distribution {} has no component {}",
                            m.distribution,
                            excerpt(c)
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Non-empty, every item valid, no duplicates.
fn check_list(
    items: &[String],
    path: &str,
    valid: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), (String, String)> {
    if items.is_empty() {
        return Err((path.to_string(), "must not be empty".into()));
    }
    let mut seen = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        if !valid(item) {
            return Err((
                format!("{path}[{i}]"),
                format!("{} is not a valid {what}", excerpt(item)),
            ));
        }
        if !seen.insert(item) {
            return Err((
                format!("{path}[{i}]"),
                format!("{} is listed twice", excerpt(item)),
            ));
        }
    }
    Ok(())
}
