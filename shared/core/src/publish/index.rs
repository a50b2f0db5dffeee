//! The published files of one distribution: `Packages`/`Sources` and their
//! compressed forms, rendered from manifests and merged with the previous
//! generation's stanzas, and the `Release` file that lists them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use raptr_formats::control::{self, Mode};
use raptr_formats::dsc::Dsc;
use raptr_formats::hash::hex;
use raptr_formats::index::{packages_stanza, sources_stanza, SourceFile};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::ReleaseIdentity;
use crate::manifest::Manifest;

/// Size and SHA-256 of a published index file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSum {
    pub size: u64,
    pub sha256: String,
}

impl IndexSum {
    pub fn of(body: &[u8]) -> IndexSum {
        IndexSum {
            size: body.len() as u64,
            sha256: hex(&Sha256::digest(body)),
        }
    }
}

/// The directory of a component's index for an architecture (`source` for
/// Sources), relative to `dists/<dist>/`.
pub fn index_dir(component: &str, arch: &str) -> String {
    if arch == "source" {
        format!("{component}/source")
    } else {
        format!("{component}/binary-{arch}")
    }
}

/// `Packages` or `Sources`.
pub fn index_name(arch: &str) -> &'static str {
    if arch == "source" {
        "Sources"
    } else {
        "Packages"
    }
}

/// Where apt fetches a file of a Release by its SHA-256
/// (`<dir>/by-hash/SHA256/<hex>`), relative to `dists/<dist>/`.
pub fn by_hash_path(path: &str, sha256: &str) -> String {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    format!("{dir}/by-hash/SHA256/{sha256}")
}

/// What an index file in the link state is for: the architecture of a
/// `.deb` (from its Debian file name), `source` for a `.dsc`, nothing for
/// the other files (tarballs are listed in their `.dsc`'s stanza).
pub fn file_arch(name: &str) -> Option<&str> {
    if let Some(stem) = name.strip_suffix(".deb") {
        return stem.rsplit_once('_').map(|(_, a)| a);
    }
    name.ends_with(".dsc").then_some("source")
}

/// Whether a linked file belongs in the index of `arch`.
pub fn belongs(name: &str, arch: &str) -> bool {
    match file_arch(name) {
        Some("source") => arch == "source",
        Some("all") => arch != "source",
        Some(a) => a == arch,
        None => false,
    }
}

/// The stanzas of a published index, by the pool key they describe
/// (`Filename`, or `Directory/<name>.dsc` for Sources): the byte range of
/// each in `text`, ending with its last line's newline. Ranges, not copies,
/// so that a large index is held once.
pub fn parse_stanzas(text: &str, arch: &str) -> BTreeMap<String, std::ops::Range<usize>> {
    let mut out = BTreeMap::new();
    let mut start = 0;
    while start < text.len() {
        let end = text[start..]
            .find("\n\n")
            .map_or(text.len(), |i| start + i + 1);
        let stanza = &text[start..end];
        let key = if arch == "source" {
            source_stanza_key(stanza)
        } else {
            field_value(stanza, "Filename").map(str::to_string)
        };
        if let (Some(key), false) = (key, stanza.trim().is_empty()) {
            out.insert(key, start..end);
        }
        start = end + 1;
        while text[start.min(text.len())..].starts_with('\n') {
            start += 1;
        }
    }
    out
}

fn field_value<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn source_stanza_key(stanza: &str) -> Option<String> {
    let dir = field_value(stanza, "Directory")?;
    let mut in_files = false;
    for line in stanza.lines() {
        if line.starts_with(' ') {
            if in_files {
                let name = line.split_ascii_whitespace().nth(2)?;
                if name.ends_with(".dsc") {
                    return Some(format!("{dir}/{name}"));
                }
            }
        } else {
            in_files = line.starts_with("Files:");
        }
    }
    None
}

/// The stanza of pool key `dir/name` from its bundle version's manifest.
pub fn render_stanza(dir: &str, name: &str, m: &Manifest) -> Result<String, String> {
    let key = format!("{dir}/{name}");
    let f = m
        .files
        .get(name)
        .ok_or_else(|| format!("{key}: not in {dir}/manifest.json"))?;
    let text = f
        .control
        .as_deref()
        .ok_or_else(|| format!("{key}: its manifest entry has no control paragraph"))?;
    if name.ends_with(".dsc") {
        let dsc = Dsc::parse(text.as_bytes()).map_err(|e| format!("{key}: {e}"))?;
        let mut files = vec![SourceFile {
            name,
            digests: &f.digests,
        }];
        for listed in &dsc.files {
            let lf = m.files.get(&listed.name).ok_or_else(|| {
                format!("{key}: lists {} which is not in the manifest", listed.name)
            })?;
            files.push(SourceFile {
                name: &listed.name,
                digests: &lf.digests,
            });
        }
        Ok(sources_stanza(&dsc, dir, &files).to_string())
    } else {
        let p = control::parse_one(text, Mode::Strict).map_err(|e| format!("{key}: {e}"))?;
        Ok(packages_stanza(&p, &key, &f.digests).to_string())
    }
}

/// gzip at the default level, with no name or time in the header so that
/// the same index always compresses to the same bytes.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = enc.write_all(body);
    enc.finish().unwrap_or_default()
}

/// What a Release file says about its distribution.
#[derive(Debug, Clone)]
pub struct ReleaseFields<'a> {
    pub identity: &'a ReleaseIdentity,
    pub suite: &'a str,
    pub codename: &'a str,
    pub date_ms: u64,
    /// Binary architectures served.
    pub architectures: &'a [String],
    pub components: &'a [String],
}

/// The Release file: identity, date, what is served, and the SHA-256 of
/// every index (paths relative to `dists/<dist>/`).
pub fn render_release(f: &ReleaseFields<'_>, files: &BTreeMap<String, IndexSum>) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: &str| {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push('\n');
    };
    line("Origin", &f.identity.origin);
    line("Label", &f.identity.label);
    line("Suite", f.suite);
    line("Codename", f.codename);
    line("Date", &crate::time::rfc2822(f.date_ms));
    if let Some(days) = f.identity.valid_for_days {
        let until = f.date_ms + u64::from(days) * 86_400_000;
        line("Valid-Until", &crate::time::rfc2822(until));
    }
    let arches: BTreeSet<&str> = f.architectures.iter().map(String::as_str).collect();
    line(
        "Architectures",
        &arches.into_iter().collect::<Vec<_>>().join(" "),
    );
    line("Components", &f.components.join(" "));
    if let Some(d) = &f.identity.description {
        line("Description", d);
    }
    line("Acquire-By-Hash", "yes");
    line("No-Support-for-Architecture-all", "Packages");
    let width = files
        .values()
        .map(|s| s.size.to_string().len())
        .max()
        .unwrap_or(1);
    out.push_str("SHA256:\n");
    for (path, sum) in files {
        out.push_str(&format!(" {} {:>width$} {path}\n", sum.sha256, sum.size));
    }
    out
}

/// The files a Release lists, with their SHA-256 and size (for checks).
pub fn release_files(text: &str) -> BTreeMap<String, IndexSum> {
    let mut out = BTreeMap::new();
    let mut in_sha = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(' ') {
            if in_sha {
                let mut it = rest.split_ascii_whitespace();
                if let (Some(h), Some(s), Some(p)) = (it.next(), it.next(), it.next()) {
                    if let Ok(size) = s.parse() {
                        out.insert(
                            p.to_string(),
                            IndexSum {
                                size,
                                sha256: h.to_string(),
                            },
                        );
                    }
                }
            }
        } else {
            in_sha = line.trim_end() == "SHA256:";
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_arches() {
        assert_eq!(file_arch("foo_1.0-1_amd64.deb"), Some("amd64"));
        assert_eq!(file_arch("foo_1.0-1.dsc"), Some("source"));
        assert_eq!(file_arch("foo_1.0.orig.tar.gz"), None);
        assert!(belongs("foo_1.0_all.deb", "arm64"));
        assert!(!belongs("foo_1.0_all.deb", "source"));
        assert!(!belongs("foo_1.0_amd64.deb", "arm64"));
        assert_eq!(
            by_hash_path("main/binary-amd64/Packages.gz", "ab"),
            "main/binary-amd64/by-hash/SHA256/ab"
        );
    }

    #[test]
    fn stanzas_round_trip() {
        let text = "Package: a\nFilename: pool/main/a/a/1/a_1_all.deb\n\nPackage: b\nFilename: pool/main/b/b/1/b_1_all.deb\n";
        let map = parse_stanzas(text, "amd64");
        assert_eq!(map.len(), 2);
        let parts: Vec<&str> = map.values().map(|r| &text[r.clone()]).collect();
        assert_eq!(parts.join("\n"), text);
        let no_newline = "Package: a\nFilename: x/a.deb";
        let map = parse_stanzas(no_newline, "amd64");
        assert_eq!(&no_newline[map["x/a.deb"].clone()], no_newline);
        let src = "Package: a\nDirectory: pool/main/a/a/1\nFiles:\n 00 1 a_1.dsc\n 00 2 a_1.tar.gz\nChecksums-Sha256:\n 11 1 a_1.dsc\n";
        let map = parse_stanzas(src, "source");
        assert_eq!(map.keys().collect::<Vec<_>>(), ["pool/main/a/a/1/a_1.dsc"]);
    }

    #[test]
    fn release_lists_round_trip() {
        let identity = ReleaseIdentity {
            origin: "o".into(),
            label: "l".into(),
            description: None,
            valid_for_days: Some(7),
        };
        let f = ReleaseFields {
            identity: &identity,
            suite: "stable",
            codename: "stable",
            date_ms: 0,
            architectures: &["arm64".into(), "amd64".into()],
            components: &["main".into()],
        };
        let files = BTreeMap::from([
            ("main/binary-amd64/Packages".to_string(), IndexSum::of(b"")),
            (
                "main/binary-amd64/Packages.gz".to_string(),
                IndexSum::of(&gzip(b"")),
            ),
        ]);
        let text = render_release(&f, &files);
        assert!(text.contains("Architectures: amd64 arm64\n"), "{text}");
        assert!(text.contains("Valid-Until: Thu, 08 Jan 1970 00:00:00 UTC\n"));
        assert!(text.contains("Acquire-By-Hash: yes\n"));
        assert_eq!(release_files(&text), files);
        assert_eq!(gzip(b"x"), gzip(b"x"));
    }
}
