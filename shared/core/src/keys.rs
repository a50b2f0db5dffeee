//! The primary bucket's keys (DESIGN §3) and the parser of upload keys.

use crate::config::{valid_name, Config, Distribution};
use raptr_formats::quote::excerpt;

/// Where a repository keeps its configuration, in the primary bucket. No
/// event fires for it and replicas never receive it.
pub const CONFIG_KEY: &str = "config/raptr.json";
pub const INCOMING: &str = "incoming/";
pub const REQUESTS: &str = "requests/";

/// `reports/<key>.json`: the answer to an incoming object or request.
pub fn report_key(key: &str) -> String {
    format!("reports/{key}.json")
}

/// `rejected/<key>`: where a rejected upload is kept, byte-for-byte.
pub fn rejected_key(key: &str) -> String {
    format!("rejected/{key}")
}

/// The manifest beside a bundle version's files in the pool.
pub fn manifest_key(pool_dir: &str) -> String {
    format!("{pool_dir}/manifest.json")
}

/// A key under `incoming/`, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadKey {
    pub distribution: String,
    pub component: String,
    pub upload_id: String,
    pub file: String,
}

impl UploadKey {
    /// The folder that is one bundle: `incoming/<dist>/<component>/<upload-id>`.
    pub fn folder(&self) -> String {
        format!(
            "{INCOMING}{}/{}/{}",
            self.distribution, self.component, self.upload_id
        )
    }

    pub fn key(&self) -> String {
        format!("{}/{}", self.folder(), self.file)
    }

    /// The bundle report of the whole folder, which also records the folder's
    /// progress: `reports/incoming/<dist>/<component>/<upload-id>.json`.
    pub fn folder_report_key(&self) -> String {
        report_key(&self.folder())
    }

    /// Splits `incoming/<dist>/<component>/<upload-id>/<file>` and checks the
    /// distribution and component against the primary layout. The error is the
    /// reason for the report.
    pub fn parse<'c>(
        key: &str,
        config: &'c Config,
    ) -> Result<(UploadKey, &'c Distribution), String> {
        let rest = key
            .strip_prefix(INCOMING)
            .ok_or_else(|| format!("{key}: not under {INCOMING}"))?;
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
            ("incoming/stable/main//foo.deb", "empty path segment"),
            ("incoming/stable/main/.x/foo.deb", "upload id"),
            ("requests/x.json", "not under incoming/"),
        ] {
            let e = UploadKey::parse(bad, &c).expect_err(bad);
            assert!(e.contains(why) && e.starts_with(bad), "{bad}: {e}");
        }
    }
}
