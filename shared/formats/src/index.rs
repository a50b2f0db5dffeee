//! Index stanzas: a binary package's `Packages` entry and a source package's
//! `Sources` entry, in the field order apt-ftparchive writes.
//!
//! Archive-managed fields (`Filename`, `Size`, hashes, `Directory`, `Files`,
//! `Checksums-*`) always come from the archive's own measurements, never from
//! the package. Known fields follow apt's canonical order; any other field
//! follows them in the order the package gave.

use crate::control::{Field, Paragraph};
use crate::dsc::Dsc;
use crate::hash::Digests;

/// apt's order for `Packages` stanzas (apt-pkg's TFRewritePackageOrder).
const PACKAGE_ORDER: &[&str] = &[
    "Package",
    "Package-Type",
    "Architecture",
    "Subarchitecture",
    "Version",
    "Revision",
    "Package-Revision",
    "Package_Revision",
    "Kernel-Version",
    "Built-Using",
    "Built-For-Profiles",
    "Multi-Arch",
    "Status",
    "Priority",
    "Class",
    "Essential",
    "Installer-Menu-Item",
    "Section",
    "Source",
    "Origin",
    "Maintainer",
    "Original-Maintainer",
    "Bugs",
    "Config-Version",
    "Conffiles",
    "Triggers-Awaited",
    "Triggers-Pending",
    "Installed-Size",
    "Provides",
    "Pre-Depends",
    "Depends",
    "Recommends",
    "Recommended",
    "Suggests",
    "Optional",
    "Conflicts",
    "Breaks",
    "Replaces",
    "Enhances",
    "Filename",
    "MSDOS-Filename",
    "Size",
    "MD5sum",
    "SHA1",
    "SHA256",
    "SHA512",
    "Homepage",
    "Description",
    "Tag",
    "Task",
];

/// apt's order for `Sources` stanzas (apt-pkg's TFRewriteSourceOrder).
const SOURCE_ORDER: &[&str] = &[
    "Package",
    "Source",
    "Format",
    "Binary",
    "Architecture",
    "Version",
    "Priority",
    "Class",
    "Section",
    "Origin",
    "Maintainer",
    "Original-Maintainer",
    "Uploaders",
    "Dm-Upload-Allowed",
    "Standards-Version",
    "Build-Depends",
    "Build-Depends-Arch",
    "Build-Depends-Indep",
    "Build-Conflicts",
    "Build-Conflicts-Arch",
    "Build-Conflicts-Indep",
    "Testsuite",
    "Testsuite-Triggers",
    "Homepage",
    "Vcs-Browser",
    "Vcs-Browse",
    "Vcs-Arch",
    "Vcs-Bzr",
    "Vcs-Cvs",
    "Vcs-Darcs",
    "Vcs-Git",
    "Vcs-Hg",
    "Vcs-Mtn",
    "Vcs-Svn",
    "Directory",
    "Package-List",
    "Files",
    "Checksums-Md5",
    "Checksums-Sha1",
    "Checksums-Sha256",
    "Checksums-Sha512",
];

/// Orders fields: those in `order` first, in its order; the rest after, as given.
fn reorder(fields: Vec<Field>, order: &[&str]) -> Paragraph {
    let rank = |name: &str| order.iter().position(|o| o.eq_ignore_ascii_case(name));
    let mut known: Vec<(usize, Field)> = Vec::new();
    let mut rest = Vec::new();
    for f in fields {
        match rank(&f.name) {
            Some(r) => known.push((r, f)),
            None => rest.push(f),
        }
    }
    known.sort_by_key(|(r, _)| *r);
    known.into_iter().map(|(_, f)| f).chain(rest).collect()
}

fn field(name: &str, value: impl Into<String>) -> Field {
    Field {
        name: name.to_string(),
        value: value.into(),
    }
}

/// The `Packages` stanza of a validated binary package stored at `filename`
/// (a pool key such as `pool/main/h/hello/1.0-1/hello_1.0-1_amd64.deb`).
pub fn packages_stanza(control: &Paragraph, filename: &str, digests: &Digests) -> Paragraph {
    let managed = crate::binary::ARCHIVE_MANAGED;
    let mut fields: Vec<Field> = control
        .fields()
        .iter()
        .filter(|f| !managed.iter().any(|m| m.eq_ignore_ascii_case(&f.name)))
        .cloned()
        .collect();
    fields.extend([
        field("Filename", filename),
        field("Size", digests.size.to_string()),
        field("MD5sum", &digests.md5),
        field("SHA1", &digests.sha1),
        field("SHA256", &digests.sha256),
        field("SHA512", &digests.sha512),
    ]);
    reorder(fields, PACKAGE_ORDER)
}

/// One file of a source package as it will be published.
#[derive(Debug, Clone)]
pub struct SourceFile<'a> {
    pub name: &'a str,
    pub digests: &'a Digests,
}

/// The `Sources` stanza of a validated `.dsc` whose files live in `directory`
/// (the pool directory, no trailing `/`). `files` starts with the `.dsc` itself,
/// then the files it lists, each with digests the archive measured.
pub fn sources_stanza(dsc: &Dsc, directory: &str, files: &[SourceFile<'_>]) -> Paragraph {
    let managed = [
        "Files",
        "Checksums-Sha1",
        "Checksums-Sha256",
        "Checksums-Sha512",
    ];
    let mut fields: Vec<Field> = Vec::new();
    for f in dsc.paragraph.fields() {
        if managed.iter().any(|m| m.eq_ignore_ascii_case(&f.name)) {
            continue;
        }
        if f.name.eq_ignore_ascii_case("Source") {
            fields.push(field("Package", &f.value));
        } else {
            fields.push(f.clone());
        }
    }
    let list = |hash: fn(&Digests) -> &str| -> String {
        files
            .iter()
            .map(|f| format!("\n {} {} {}", hash(f.digests), f.digests.size, f.name))
            .collect()
    };
    fields.extend([
        field("Directory", directory),
        field("Files", list(|d| &d.md5)),
        field("Checksums-Sha1", list(|d| &d.sha1)),
        field("Checksums-Sha256", list(|d| &d.sha256)),
        field("Checksums-Sha512", list(|d| &d.sha512)),
    ]);
    reorder(fields, SOURCE_ORDER)
}
