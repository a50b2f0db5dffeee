//! The fields of a binary package's control paragraph that raptr relies on,
//! validated against Debian Policy.

use crate::control::Paragraph;
use crate::policy::{valid_architecture, valid_package_name};
use crate::quote::excerpt;
use crate::version::Version;

/// Fields the archive computes itself. A package that ships them is trying to
/// make the index lie about the file, so it is refused rather than cleaned.
pub const ARCHIVE_MANAGED: &[&str] = &[
    "Filename",
    "Size",
    "MD5sum",
    "SHA1",
    "SHA256",
    "SHA512",
    "Description-md5",
    "MSDOS-Filename",
];

/// The identity of a binary package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryControl {
    pub package: String,
    pub version: Version,
    pub architecture: String,
    /// The source package it was built from (`Source:`, else `Package:`).
    pub source: String,
    /// The source version (`Source: name (version)`, else `Version:`); differs
    /// from `version` for binNMUs.
    pub source_version: Version,
}

fn required<'a>(p: &'a Paragraph, name: &str) -> Result<&'a str, String> {
    match p.get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(format!("control file lacks the {name} field")),
    }
}

/// Splits `name (version)` as used by `Source:` in binary packages and in
/// `.changes`/`.buildinfo` files.
pub fn split_source_field(value: &str) -> Result<(&str, Option<&str>), String> {
    let value = value.trim();
    match value.split_once(' ') {
        None => Ok((value, None)),
        Some((name, rest)) => {
            let v = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| format!("malformed Source field {}", excerpt(value)))?;
            Ok((name, Some(v.trim())))
        }
    }
}

impl BinaryControl {
    pub fn from_paragraph(p: &Paragraph) -> Result<BinaryControl, String> {
        for f in ARCHIVE_MANAGED {
            if p.contains(f) {
                return Err(format!("control file sets the archive-managed field {f}"));
            }
        }
        // A line break in an identity field would put a second line into the
        // key-like values raptr builds from it.
        if let Some(f) = p
            .fields()
            .iter()
            .find(|f| is_identity_field(&f.name) && f.value.contains('\n'))
        {
            return Err(format!("control field {} spans several lines", f.name));
        }
        let package = required(p, "Package")?;
        if !valid_package_name(package) {
            return Err(crate::policy::bad_package_name("package name", package));
        }
        let version = Version::parse(required(p, "Version")?).map_err(|e| e.to_string())?;
        let architecture = required(p, "Architecture")?;
        if !valid_architecture(architecture) {
            return Err(format!("invalid architecture {}", excerpt(architecture)));
        }
        required(p, "Maintainer")?;
        required(p, "Description")?;
        if let Some(size) = p.get("Installed-Size") {
            if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || size.len() > 18 {
                return Err(format!("Installed-Size {} is not a number", excerpt(size)));
            }
        }
        let (source, source_version) = match p.get("Source") {
            None => (package.to_string(), version.clone()),
            Some(s) => {
                let (name, v) = split_source_field(s)?;
                if !valid_package_name(name) {
                    return Err(crate::policy::bad_package_name("source package name", name));
                }
                let v = match v {
                    Some(v) => Version::parse(v).map_err(|e| format!("Source field: {e}"))?,
                    None => version.clone(),
                };
                (name.to_string(), v)
            }
        };
        Ok(BinaryControl {
            package: package.to_string(),
            version,
            architecture: architecture.to_string(),
            source,
            source_version,
        })
    }
}

fn is_identity_field(name: &str) -> bool {
    [
        "Package",
        "Version",
        "Architecture",
        "Source",
        "Installed-Size",
    ]
    .iter()
    .any(|f| f.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::{parse_one, Mode};

    fn ctl(extra: &str) -> Result<BinaryControl, String> {
        let text = format!(
            "Package: hello\nVersion: 1:2.0-1+b1\nArchitecture: amd64\nMaintainer: M <m@example.com>\n{extra}Description: hi\n there\n"
        );
        BinaryControl::from_paragraph(&parse_one(&text, Mode::Strict).map_err(|e| e.to_string())?)
    }

    #[test]
    fn source_field_defaults_and_binnmu() {
        let b = ctl("").expect("valid");
        assert_eq!(b.source, "hello");
        assert_eq!(b.source_version.to_string(), "1:2.0-1+b1");
        let b = ctl("Source: hello-src (1:2.0-1)\n").expect("valid");
        assert_eq!(b.source, "hello-src");
        assert_eq!(b.source_version.to_string(), "1:2.0-1");
        assert_eq!(b.version.to_string(), "1:2.0-1+b1");
    }

    #[test]
    fn refuses_bad_fields() {
        for (extra, want) in [
            (
                "Filename: pool/evil.deb\n",
                "archive-managed field Filename",
            ),
            ("Size: 1\n", "archive-managed field Size"),
            ("SHA256: 00\n", "archive-managed field SHA256"),
            ("Source: ../evil\n", "invalid source package name"),
            ("Source: ok (1.0/../x)\n", "Source field"),
            ("Installed-Size: 12k\n", "not a number"),
            ("Source: a\n b\n", "spans several lines"),
        ] {
            let e = ctl(extra).expect_err(extra);
            assert!(e.contains(want), "{extra}: {e}");
        }
    }
}
