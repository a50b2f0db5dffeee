//! Source package descriptions (`.dsc`): fields, file lists, and verification
//! of the files they list.

use crate::checksums::{listed_files, ListedFile};
use crate::control::{self, Mode, Paragraph};
use crate::policy::{valid_architecture_wildcard, valid_package_name};
use crate::quote::excerpt;
use crate::signed::strip_signature;
use crate::version::Version;

/// Largest `.dsc` or `.changes` read; real ones are a few kilobytes.
pub const MAX_DESCRIPTION: u64 = 1 << 20;

/// A parsed and validated `.dsc`.
#[derive(Debug, Clone)]
pub struct Dsc {
    /// The paragraph as signed, without the armour.
    pub paragraph: Paragraph,
    pub source: String,
    pub version: Version,
    /// Binary packages it builds (`Binary:`).
    pub binaries: Vec<String>,
    pub files: Vec<ListedFile>,
    /// Whether it carried an OpenPGP signature (not verified here).
    pub signed: bool,
}

/// Fields of a `.dsc` that the archive sets itself in `Sources`.
const ARCHIVE_MANAGED: &[&str] = &["Package", "Directory", "Checksums-Sha512", "Checksums-Md5"];

/// Parses a signed or unsigned deb822 document (`.dsc`, `.changes`,
/// `.buildinfo`) strictly. Returns the paragraph and whether it was signed.
pub fn parse_signed_document(bytes: &[u8]) -> Result<(Paragraph, bool), String> {
    if bytes.len() as u64 > MAX_DESCRIPTION {
        return Err(format!("larger than {MAX_DESCRIPTION} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let clear = strip_signature(text).map_err(|e| e.to_string())?;
    let p = control::parse_one(&clear.text, Mode::Strict).map_err(|e| e.to_string())?;
    Ok((p, clear.is_signed()))
}

pub(crate) fn required<'a>(p: &'a Paragraph, name: &str) -> Result<&'a str, String> {
    match p.get(name) {
        Some(v) if !v.trim().is_empty() => Ok(v.trim()),
        _ => Err(format!("the {name} field is missing")),
    }
}

pub(crate) fn package_list(p: &Paragraph, field: &str, sep: char) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for name in p.get(field).unwrap_or("").split(sep) {
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        if !valid_package_name(name) {
            return Err(format!(
                "{field}: {}",
                crate::policy::bad_package_name("package name", name)
            ));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

impl Dsc {
    pub fn parse(bytes: &[u8]) -> Result<Dsc, String> {
        let (paragraph, signed) = parse_signed_document(bytes)?;
        for f in ARCHIVE_MANAGED {
            if paragraph.contains(f) {
                return Err(format!("sets the archive-managed field {f}"));
            }
        }
        required(&paragraph, "Format")?;
        let source = required(&paragraph, "Source")?;
        if !valid_package_name(source) {
            return Err(crate::policy::bad_package_name(
                "source package name",
                source,
            ));
        }
        let version =
            Version::parse(required(&paragraph, "Version")?).map_err(|e| e.to_string())?;
        for arch in required(&paragraph, "Architecture")?.split_ascii_whitespace() {
            if !valid_architecture_wildcard(arch) {
                return Err(format!("invalid architecture {}", excerpt(arch)));
            }
        }
        let binaries = package_list(&paragraph, "Binary", ',')?;
        let files = listed_files(&paragraph, 3)?;
        Ok(Dsc {
            source: source.to_string(),
            version,
            binaries,
            files,
            signed,
            paragraph,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSC: &str = "Format: 3.0 (quilt)\nSource: hello\nBinary: hello, hello-doc\nArchitecture: any all\nVersion: 1.0-1\nMaintainer: M <m@example.com>\nChecksums-Sha1:\n 1c686cecdb9685c2ae114dd071e6948058324484 119 hello_1.0.orig.tar.gz\nChecksums-Sha256:\n 58793f7e1f3acdeb4e617a2195404fe3a84947e8e388db92b16b4228b90ca753 119 hello_1.0.orig.tar.gz\nFiles:\n 704455e44a95d47f819227b1599155ca 119 hello_1.0.orig.tar.gz\n";

    #[test]
    fn parses_lists() {
        let d = Dsc::parse(DSC.as_bytes()).expect("valid");
        assert_eq!(d.source, "hello");
        assert_eq!(d.binaries, ["hello", "hello-doc"]);
        assert_eq!(d.files.len(), 1);
        assert_eq!(d.files[0].size, 119);
        assert!(!d.signed);
    }

    #[test]
    fn refuses_inconsistent_lists() {
        for (from, to, want) in [
            (" 119 hello_1.0.orig.tar.gz\nChecksums-Sha256", " 118 hello_1.0.orig.tar.gz\nChecksums-Sha256", "Files says 119"),
            ("704455e44a95d47f819227b1599155ca 119 hello_1.0.orig.tar.gz", "704455e44a95d47f819227b1599155ca 119 ../hello_1.0.orig.tar.gz", "not a plain file name"),
            ("704455e44a95d47f819227b1599155ca 119 hello_1.0.orig.tar.gz", "704455e44a95d47f819227b1599155ca 119 sub/hello_1.0.orig.tar.gz", "not a plain file name"),
            ("Checksums-Sha1:\n 1c686cecdb9685c2ae114dd071e6948058324484 119 hello_1.0.orig.tar.gz\n", "", "Checksums-Sha1 field is missing"),
            ("Source: hello\n", "Source: Hello\n", "invalid source package name"),
            ("704455e44a95d47f819227b1599155ca 119 hello_1.0.orig.tar.gz", "704455e44a95d47f819227b1599155ca 119 manifest.json", "keeps for its own records"),
            ("Format", "Directory: x\nFormat", "archive-managed"),
        ] {
            let text = DSC.replacen(from, to, 1);
            assert_ne!(text, DSC, "{from}");
            let e = Dsc::parse(text.as_bytes()).expect_err(to);
            assert!(e.contains(want), "{to}: {e}");
        }
    }
}
