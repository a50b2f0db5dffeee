//! The primary bucket's keys (DESIGN §3) and the parser of upload keys.

use crate::config::{valid_name, Config, Distribution};
use raptr_formats::quote::excerpt;

/// Where a repository keeps its configuration, in the primary bucket. No
/// event fires for it and replicas never receive it.
pub const CONFIG_KEY: &str = "config/raptr.json";
pub const INCOMING: &str = "incoming/";
pub const REQUESTS: &str = "requests/";
/// Where an import stages the files it fetched and checked, in upload
/// folders of the same shape as `incoming/`'s. Only raptr writes there: no
/// event fires for it, no IAM policy grants it, and its folders may fill a
/// distribution closed to uploads (an import is not an upload).
pub const IMPORTS: &str = "imports/";

/// The folder under `reports/` and `rejected/` for objects whose own key
/// cannot carry the prefix (see [`report_key`]). No upload or request key
/// produces a key there: those all start with `incoming/` or `requests/`.
pub const INVALID_KEYS: &str = "invalid-keys/";

/// `reports/<key>.json`: the answer to an incoming object or request.
///
/// Some keys cannot carry it: a key S3 accepts but raptr's stores do not (a
/// console folder marker ending in `/`, a backslash, a control character,
/// an empty or `.`/`..` segment), one too long for the prefix and suffix to
/// fit in S3's 1,024 bytes, or `incoming/<dist>/<component>/<upload-id>`
/// itself, whose natural report key is the folder's progress record. Their
/// report is `reports/invalid-keys/<SHA-256 of the key, hex>.json`, and the
/// report's `key` field names the original.
pub fn report_key(key: &str) -> String {
    let natural = format!("reports/{key}.json");
    if raptr_store::check_key(key).is_ok()
        && raptr_store::check_key(&natural).is_ok()
        && !is_folder_key(key)
    {
        natural
    } else {
        format!("reports/{INVALID_KEYS}{}.json", key_digest(key))
    }
}

/// `rejected/<key>`: where a rejected upload is kept, byte-for-byte; for a
/// key that cannot carry the prefix, `rejected/invalid-keys/<SHA-256 of the
/// key, hex>` (as for [`report_key`]).
pub fn rejected_key(key: &str) -> String {
    let natural = format!("rejected/{key}");
    if raptr_store::check_key(key).is_ok() && raptr_store::check_key(&natural).is_ok() {
        natural
    } else {
        format!("rejected/{INVALID_KEYS}{}", key_digest(key))
    }
}

/// The name a key's derived report and rejected copy take.
pub fn key_digest(key: &str) -> String {
    use sha2::{Digest, Sha256};
    raptr_formats::hash::hex(&Sha256::digest(key.as_bytes()))
}

/// `incoming/<a>/<b>/<c>`: the shape of an upload folder's own key.
fn is_folder_key(key: &str) -> bool {
    key.strip_prefix(INCOMING)
        .or_else(|| key.strip_prefix(IMPORTS))
        .is_some_and(|rest| rest.split('/').count() == 3)
}

/// The manifest beside a bundle version's files in the pool.
pub fn manifest_key(pool_dir: &str) -> String {
    format!("{pool_dir}/manifest.json")
}

/// A key under `incoming/` (or an import's under `imports/`), taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadKey {
    /// [`INCOMING`], or [`IMPORTS`] for an import's staged files.
    pub root: &'static str,
    pub distribution: String,
    pub component: String,
    pub upload_id: String,
    pub file: String,
}

impl UploadKey {
    /// The folder that is one bundle: `incoming/<dist>/<component>/<upload-id>`.
    pub fn folder(&self) -> String {
        format!(
            "{}{}/{}/{}",
            self.root, self.distribution, self.component, self.upload_id
        )
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.folder(), self.file)
    }

    /// Whether the folder is an import's (see [`IMPORTS`]).
    pub fn is_import(&self) -> bool {
        self.root == IMPORTS
    }

    /// The bundle report of the whole folder, which also records the folder's
    /// progress: `reports/incoming/<dist>/<component>/<upload-id>.json`.
    pub fn folder_report_key(&self) -> String {
        // Not report_key(): that keeps this key from every upload's report.
        format!("reports/{}.json", self.folder())
    }

    /// Splits `incoming/<dist>/<component>/<upload-id>/<file>` and checks the
    /// distribution and component against the primary layout. The error is the
    /// reason for the report.
    pub fn parse<'c>(
        key: &str,
        config: &'c Config,
    ) -> Result<(UploadKey, &'c Distribution), String> {
        let (root, rest) = match (key.strip_prefix(INCOMING), key.strip_prefix(IMPORTS)) {
            (Some(rest), _) => (INCOMING, rest),
            (None, Some(rest)) => (IMPORTS, rest),
            _ => return Err(format!("{key}: not under {INCOMING}")),
        };
        if let Err(e) = raptr_store::check_key(key) {
            let why = match e {
                raptr_store::StoreError::InvalidKey { reason, .. } => reason,
                _ => "is not a usable key",
            };
            return Err(format!(
                "{}: the key {why}; upload to incoming/<distribution>/<component>/<upload-id>/<file> with a plain file name",
                raptr_formats::quote::name(key)
            ));
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let shape = "uploads go to incoming/<distribution>/<component>/<upload-id>/<file>";
        let [dist, component, upload_id, file] = parts[..] else {
            return Err(format!("{key}: {shape}"));
        };
        if [dist, component, upload_id, file]
            .iter()
            .any(|p| p.is_empty())
        {
            return Err(format!("{key}: an empty path segment; {shape}"));
        }
        if !valid_upload_id(upload_id) {
            return Err(format!("{key}: the upload id {} must be 1 to 128 of letters, digits and .+-_ (not starting with a dot)", excerpt(upload_id)));
        }
        let layout = config.primary_layout();
        let Some(d) = layout.distributions.get(dist) else {
            let known: Vec<&str> = layout.distributions.keys().map(String::as_str).collect();
            return Err(format!(
                "{key}: unknown distribution {} (this repository has {})",
                excerpt(dist),
                known.join(", ")
            ));
        };
        if !valid_name(component) || !d.components.iter().any(|c| c == component) {
            return Err(format!(
                "{key}: distribution {dist} has no component {} (it has {})",
                excerpt(component),
                d.components.join(", ")
            ));
        }
        Ok((
            UploadKey {
                root,
                distribution: dist.to_string(),
                component: component.to_string(),
                upload_id: upload_id.to_string(),
                file: file.to_string(),
            },
            d,
        ))
    }
}

fn valid_upload_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".+-_".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_cannot_carry_a_prefix_get_derived_ones() {
        for key in [
            "incoming/testing/main/marker/",
            "incoming/testing/main/a\\b/c.deb",
            "incoming/testing/main/b/c\u{7}.deb",
            "incoming/testing//main/b/c.deb",
            "incoming/testing/main/build-2",
            &format!("incoming/testing/main/b/{}", "x".repeat(1000)),
        ] {
            let r = report_key(key);
            assert!(r.starts_with("reports/invalid-keys/"), "{key:?}: {r}");
            assert!(raptr_store::check_key(&r).is_ok());
            assert_eq!(r, report_key(key), "stable");
            let j = rejected_key(key);
            assert!(raptr_store::check_key(&j).is_ok(), "{key:?}: {j}");
        }
        assert_ne!(
            report_key("incoming/testing/main/marker/"),
            report_key("incoming/testing/main/marker")
        );
        // Keys that can carry the prefixes keep their natural places, and
        // no upload's report is a folder record.
        let k = "incoming/testing/main/b1/foo_1.0_amd64.deb";
        assert_eq!(report_key(k), format!("reports/{k}.json"));
        assert_eq!(rejected_key(k), format!("rejected/{k}"));
        let c = Config::default_local("repo");
        let (uk, _) = UploadKey::parse(k, &c).expect("valid");
        assert_ne!(uk.folder_report_key(), report_key(&uk.folder()));
        assert_eq!(
            report_key("requests/p.json"),
            "reports/requests/p.json.json"
        );
        for bad in [
            "incoming/testing/main/marker/",
            "incoming/testing/main/a\\b/c.deb",
        ] {
            let e = UploadKey::parse(bad, &c).expect_err(bad);
            assert!(!e.contains('\n') && e.len() < 400, "{e}");
        }
    }

    #[test]
    fn upload_keys() {
        let c = Config::default_local("repo");
        let (k, d) =
            UploadKey::parse("incoming/stable/main/build-42/foo_1.0_amd64.deb", &c).expect("valid");
        assert_eq!(k.distribution, "stable");
        assert_eq!(k.upload_id, "build-42");
        assert_eq!(k.file, "foo_1.0_amd64.deb");
        assert_eq!(k.folder(), "incoming/stable/main/build-42");
        assert_eq!(
            k.folder_report_key(),
            "reports/incoming/stable/main/build-42.json"
        );
        assert!(d.architectures.iter().any(|a| a == "amd64"));
        for (bad, why) in [
            ("incoming/stable/main/foo.deb", "uploads go to"),
            ("incoming/stable/main/a/b/foo.deb", "uploads go to"),
            (
                "incoming/unstable/main/b1/foo.deb",
                "unknown distribution \"unstable\"",
            ),
            (
                "incoming/stable/contrib/b1/foo.deb",
                "no component \"contrib\"",
            ),
            (
                "incoming/stable/main//foo.deb",
                "empty, '.' or '..' segment",
            ),
            ("incoming/stable/main/.x/foo.deb", "upload id"),
            ("requests/x.json", "not under incoming/"),
        ] {
            let e = UploadKey::parse(bad, &c).expect_err(bad);
            assert!(e.contains(why) && e.starts_with(bad), "{bad}: {e}");
        }
    }
}
