//! The file lists of `.dsc` and `.changes` files (`Files`, `Checksums-Sha1`,
//! `Checksums-Sha256`), cross-checked so that every list names the same files
//! with the same sizes, and verified against a file's actual digests.

use std::collections::{HashMap, HashSet};

use crate::control::Paragraph;
use crate::hash::Digests;
use crate::policy::valid_file_name;
use crate::quote::excerpt;

/// The most files one `.dsc` or `.changes` may list. A `.changes` of the
/// Linux kernel lists a few hundred; more is an attempt to make the checks
/// below cost what the input decides.
pub const MAX_LISTED_FILES: usize = 2000;

/// A file listed by a `.dsc` or `.changes`, with every hash the lists give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub name: String,
    pub size: u64,
    pub md5: String,
    pub sha1: String,
    pub sha256: String,
    /// `.changes` only: the section and priority columns of `Files`.
    pub section: Option<String>,
    pub priority: Option<String>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

struct Entry<'a> {
    hash: &'a str,
    size: u64,
    name: &'a str,
    extra: Vec<&'a str>,
}

fn parse_list<'a>(
    p: &'a Paragraph,
    field: &str,
    hex_len: usize,
    columns: usize,
) -> Result<Vec<Entry<'a>>, String> {
    let mut out: Vec<Entry<'a>> = Vec::new();
    let mut names = HashSet::new();
    for line in p.lines(field) {
        if out.len() == MAX_LISTED_FILES {
            return Err(format!(
                "{field}: lists more than {MAX_LISTED_FILES} files (limit)"
            ));
        }
        let cols: Vec<&str> = line.split_ascii_whitespace().take(columns + 1).collect();
        if cols.len() != columns {
            return Err(format!("{field}: malformed line {}", excerpt(line)));
        }
        let hash = cols[0];
        if !is_hex(hash, hex_len) {
            return Err(format!("{field}: {} is not a valid hash", excerpt(hash)));
        }
        let size: u64 = cols[1]
            .parse()
            .map_err(|_| format!("{field}: size {} is not a number", excerpt(cols[1])))?;
        let name = cols[columns - 1];
        if !valid_file_name(name) {
            return Err(format!(
                "{field}: file name {} is not a plain file name",
                excerpt(name)
            ));
        }
        if crate::policy::RESERVED_FILE_NAMES.contains(&name) {
            return Err(format!(
                "{field}: {name} is a name raptr keeps for its own records in the pool"
            ));
        }
        if !names.insert(name) {
            return Err(format!("{field}: {} is listed twice", excerpt(name)));
        }
        out.push(Entry {
            hash,
            size,
            name,
            extra: cols[2..columns - 1].to_vec(),
        });
    }
    Ok(out)
}

/// Reads and cross-checks the three lists. `files_columns` is 3 for a `.dsc`
/// (`md5 size name`) and 5 for a `.changes` (`md5 size section priority name`).
fn by_name<'a, 'b>(list: &'b [Entry<'a>]) -> HashMap<&'a str, &'b Entry<'a>> {
    list.iter().map(|e| (e.name, e)).collect()
}

pub fn listed_files(p: &Paragraph, files_columns: usize) -> Result<Vec<ListedFile>, String> {
    for f in ["Files", "Checksums-Sha1", "Checksums-Sha256"] {
        if !p.contains(f) {
            return Err(format!("the {f} field is missing"));
        }
    }
    let files = parse_list(p, "Files", 32, files_columns)?;
    if files.is_empty() {
        return Err("the Files field lists no file".into());
    }
    let sha1 = parse_list(p, "Checksums-Sha1", 40, 3)?;
    let sha256 = parse_list(p, "Checksums-Sha256", 64, 3)?;
    let (sha1_of, sha256_of) = (by_name(&sha1), by_name(&sha256));
    let file_names: HashSet<&str> = files.iter().map(|f| f.name).collect();
    let mut out = Vec::with_capacity(files.len());
    for f in &files {
        let find = |list: &HashMap<&str, &Entry<'_>>, field: &str| -> Result<String, String> {
            let e = list
                .get(f.name)
                .ok_or_else(|| format!("{} is in Files but not in {field}", f.name))?;
            if e.size != f.size {
                return Err(format!(
                    "{}: Files says {} bytes, {field} says {}",
                    f.name, f.size, e.size
                ));
            }
            Ok(e.hash.to_ascii_lowercase())
        };
        out.push(ListedFile {
            name: f.name.to_string(),
            size: f.size,
            md5: f.hash.to_ascii_lowercase(),
            sha1: find(&sha1_of, "Checksums-Sha1")?,
            sha256: find(&sha256_of, "Checksums-Sha256")?,
            section: f.extra.first().map(|s| s.to_string()),
            priority: f.extra.get(1).map(|s| s.to_string()),
        });
    }
    for (list, field) in [(&sha1, "Checksums-Sha1"), (&sha256, "Checksums-Sha256")] {
        if let Some(e) = list.iter().find(|e| !file_names.contains(e.name)) {
            return Err(format!("{} is in {field} but not in Files", e.name));
        }
    }
    Ok(out)
}

impl ListedFile {
    /// Checks a file's actual digests against every size and hash listed.
    pub fn verify(&self, actual: &Digests) -> Result<(), String> {
        if actual.size != self.size {
            return Err(format!(
                "{} is {} bytes, {} listed",
                self.name, actual.size, self.size
            ));
        }
        for (what, listed, got) in [
            ("MD5", &self.md5, &actual.md5),
            ("SHA1", &self.sha1, &actual.sha1),
            ("SHA256", &self.sha256, &actual.sha256),
        ] {
            if listed != got {
                return Err(format!("{} has {what} {got}, {listed} listed", self.name));
            }
        }
        Ok(())
    }
}
