//! Upload descriptions (`.changes`): the fields and the file list that make an
//! upload folder all-or-nothing.

use crate::binary::split_source_field;
use crate::checksums::{listed_files, ListedFile};
use crate::control::Paragraph;
use crate::dsc::{package_list, parse_signed_document, required};
use crate::policy::{valid_architecture_wildcard, valid_package_name};
use crate::quote::excerpt;
use crate::version::Version;

#[derive(Debug, Clone)]
pub struct Changes {
    pub paragraph: Paragraph,
    pub source: String,
    /// The source version of the upload.
    pub version: Version,
    pub architectures: Vec<String>,
    pub binaries: Vec<String>,
    pub distribution: String,
    pub files: Vec<ListedFile>,
    pub signed: bool,
}

impl Changes {
    pub fn parse(bytes: &[u8]) -> Result<Changes, String> {
        let (paragraph, signed) = parse_signed_document(bytes)?;
        required(&paragraph, "Format")?;
        // `Source: name (version)` appears in binNMU .changes; the upload's
        // source version is then the parenthesised one.
        let (source, source_version) = split_source_field(required(&paragraph, "Source")?)?;
        if !valid_package_name(source) {
            return Err(crate::policy::bad_package_name(
                "source package name",
                source,
            ));
        }
        let version = Version::parse(source_version.unwrap_or(required(&paragraph, "Version")?))
            .map_err(|e| e.to_string())?;
        let mut architectures = Vec::new();
        for arch in required(&paragraph, "Architecture")?.split_ascii_whitespace() {
            if !valid_architecture_wildcard(arch) {
                return Err(format!("invalid architecture {}", excerpt(arch)));
            }
            architectures.push(arch.to_string());
        }
        let binaries = package_list(&paragraph, "Binary", ' ')?;
        let distribution = required(&paragraph, "Distribution")?.to_string();
        let files = listed_files(&paragraph, 5)?;
        Ok(Changes {
            source: source.to_string(),
            version,
            architectures,
            binaries,
            distribution,
            files,
            signed,
            paragraph,
        })
    }
}
