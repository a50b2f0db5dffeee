//! Reading another archive: its `Release` file and the stanzas of its
//! `Packages` and `Sources` indices, as an import needs them. Pure and
//! bounded like the rest of the crate: the signature is checked elsewhere,
//! the bytes are fetched elsewhere; this decides what they say, and refuses
//! what no archive should say (paths that climb out of the archive, hashes
//! that are not hashes, more entries than any archive lists).

use std::collections::BTreeMap;

use crate::control::{Mode, Paragraph};
use crate::quote::excerpt;
use crate::version::Version;

/// The most files a Release may list (Debian's main suite lists about
/// 2,000 today; every Contents and Translation file included).
pub const MAX_RELEASE_FILES: usize = 100_000;

/// One file a Release lists: its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub size: u64,
    pub sha256: String,
}

/// What a Release file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub suite: Option<String>,
    pub codename: Option<String>,
    /// RFC 2822, as written.
    pub date: Option<String>,
    pub valid_until: Option<String>,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`: indices can be fetched by their SHA-256.
    pub by_hash: bool,
    /// Path (relative to the Release's directory) → size and SHA-256.
    pub files: BTreeMap<String, Listed>,
}

/// Whether a path a Release or an index names stays inside the archive:
/// relative, no `.` or `..` segment, no empty segment, printable ASCII
/// without backslash.
pub fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 1024
        && !path.starts_with('/')
        && path
            .bytes()
            .all(|b| (b'!'..=b'~').contains(&b) && b != b'\\')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

/// A path without its leading `./` segments (and `.` alone as empty).
fn strip_dot(path: &str) -> &str {
    let mut p = path;
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    if p == "." {
        ""
    } else {
        p
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses the text of a Release file (the signed text of an InRelease).
pub fn parse_release(text: &str) -> Result<Release, String> {
    let paragraphs = crate::control::parse_all(text, Mode::Lenient)
        .map_err(|e| format!("not a Release file: {e}"))?;
    let [p] = &paragraphs[..] else {
        return Err(format!(
            "not a Release file: {} paragraphs, where a Release has one",
            paragraphs.len()
        ));
    };
    let list = |name: &str| -> Vec<String> {
        p.get(name)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let Some(sums) = p.get("SHA256") else {
        return Err(
            "the Release lists no SHA256 sums (MD5 and SHA-1 alone are not trusted)".into(),
        );
    };
    let mut files = BTreeMap::new();
    for line in sums.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [sha, size, path] = parts[..] else {
            return Err(format!("SHA256: not `sum size path`: {}", excerpt(line)));
        };
        if !is_sha256(sha) {
            return Err(format!("SHA256: {} is not a SHA-256 sum", excerpt(sha)));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| format!("SHA256: {} is not a size", excerpt(size)))?;
        if !safe_path(path) {
            return Err(format!(
                "SHA256: {} is not a path inside the archive",
                excerpt(path)
            ));
        }
        if files.len() >= MAX_RELEASE_FILES {
            return Err(format!(
                "the Release lists more than {MAX_RELEASE_FILES} files"
            ));
        }
        files.insert(
            path.to_string(),
            Listed {
                size,
                sha256: sha.to_ascii_lowercase(),
            },
        );
    }
    Ok(Release {
        suite: p.get("Suite").map(str::to_string),
        codename: p.get("Codename").map(str::to_string),
        date: p.get("Date").map(str::to_string),
        valid_until: p.get("Valid-Until").map(str::to_string),
        architectures: list("Architectures"),
        components: list("Components"),
        by_hash: p
            .get("Acquire-By-Hash")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        files,
    })
}

/// How an index is compressed, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
}

impl Release {
    /// The variant of index `base` (`main/binary-amd64/Packages`, or
    /// `Packages` in a flat archive) to fetch: `.xz`, else `.gz`, else the
    /// plain file, whichever the Release lists.
    pub fn index(&self, base: &str) -> Option<(String, &Listed, Compression)> {
        [
            (format!("{base}.xz"), Compression::Xz),
            (format!("{base}.gz"), Compression::Gzip),
            (base.to_string(), Compression::None),
        ]
        .into_iter()
        .find_map(|(p, c)| self.files.get(&p).map(|l| (p.clone(), l, c)))
    }

    /// Where an index is fetched from when the archive offers it by hash.
    pub fn by_hash_path(path: &str, sha256: &str) -> String {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        if dir.is_empty() {
            format!("by-hash/SHA256/{sha256}")
        } else {
            format!("{dir}/by-hash/SHA256/{sha256}")
        }
    }
}

/// A binary package an index lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryEntry {
    pub package: String,
    pub version: Version,
    pub architecture: String,
    /// The source package and its version (the binary's own when the
    /// stanza names none).
    pub source: String,
    pub source_version: Version,
    /// Relative to the archive's base.
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// `Depends` and `Pre-Depends`, as written: one entry per group of
    /// alternatives (see [`alternatives`]).
    pub depends: Vec<String>,
    /// `Provides`, one entry per virtual package as written (`name` or
    /// `name (= version)`).
    pub provides: Vec<String>,
}

/// A version relation of a dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
}

impl Op {
    /// Whether `have` stands in this relation to `want`.
    pub fn holds(self, have: &Version, want: &Version) -> bool {
        let o = have.cmp(want);
        match self {
            Op::Lt => o.is_lt(),
            Op::Le => o.is_le(),
            Op::Eq => o.is_eq(),
            Op::Ge => o.is_ge(),
            Op::Gt => o.is_gt(),
        }
    }
}

/// One alternative of a dependency group: a package name (its `:any` or
/// `:native` qualifier dropped) and an optional version relation.
/// Architecture restrictions and build profiles are ignored (binary
/// packages' relations carry none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub name: String,
    pub relation: Option<(Op, Version)>,
}

/// The alternatives of one dependency group (`a (>= 1) | b`), or of one
/// `Provides` entry; an alternative that does not parse is left out.
pub fn alternatives(group: &str) -> Vec<Alternative> {
    group.split('|').filter_map(alternative).collect()
}

fn alternative(text: &str) -> Option<Alternative> {
    // `name[:qual] [(op version)] [arch ...] <profile ...>`: the name, then
    // a relation if one follows; what comes after it is ignored.
    let text = text.trim();
    let end = text
        .find(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '<'))
        .unwrap_or(text.len());
    let name = &text[..end];
    let after = text[end..].trim_start();
    let rest = after.strip_prefix('(');
    let name = name.split_once(':').map_or(name, |(n, _)| n);
    if !crate::policy::valid_package_name(name) {
        return None;
    }
    let relation = match rest {
        None => None,
        Some(r) => {
            let r = r.split_once(')')?.0.trim();
            let (op, v) = [
                ("<<", Op::Lt),
                ("<=", Op::Le),
                (">=", Op::Ge),
                (">>", Op::Gt),
                ("=", Op::Eq),
                ("<", Op::Le),
                (">", Op::Ge),
            ]
            .iter()
            .find_map(|(t, op)| r.strip_prefix(t).map(|v| (*op, v)))?;
            Some((op, Version::parse(v.trim()).ok()?))
        }
    };
    Some(Alternative {
        name: name.to_string(),
        relation,
    })
}

/// A source package an index lists: its files under `directory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    pub package: String,
    pub version: Version,
    /// Relative to the archive's base (empty: the base itself).
    pub directory: String,
    /// File name → size and SHA-256 (the `.dsc` among them).
    pub files: BTreeMap<String, Listed>,
}

fn required<'p>(p: &'p Paragraph, name: &str) -> Result<&'p str, String> {
    p.get(name)
        .ok_or_else(|| format!("a stanza without {name}"))
}

/// A `Packages` stanza.
pub fn binary_entry(p: &Paragraph) -> Result<BinaryEntry, String> {
    let package = required(p, "Package")?.to_string();
    let at = |e: String| format!("{}: {e}", excerpt(&package));
    if !crate::policy::valid_package_name(&package) {
        return Err(at("not a package name".into()));
    }
    let version = Version::parse(required(p, "Version").map_err(at)?)
        .map_err(|e| at(format!("Version: {e}")))?;
    let architecture = required(p, "Architecture").map_err(at)?.to_string();
    // Flat archives write `./name.deb` (apt-ftparchive run in the
    // archive's own directory).
    let filename = strip_dot(required(p, "Filename").map_err(at)?).to_string();
    if !safe_path(&filename) {
        return Err(at(format!(
            "Filename {} is not a path inside the archive",
            excerpt(&filename)
        )));
    }
    let size: u64 = required(p, "Size")
        .map_err(at)?
        .parse()
        .map_err(|_| at("Size is not a number".into()))?;
    let sha256 = required(p, "SHA256").map_err(at)?.to_ascii_lowercase();
    if !is_sha256(&sha256) {
        return Err(at("SHA256 is not a SHA-256 sum".into()));
    }
    let (source, source_version) = match p.get("Source") {
        None => (package.clone(), version.clone()),
        Some(s) => match s.split_once('(') {
            Some((name, v)) => (
                name.trim().to_string(),
                Version::parse(v.trim().trim_end_matches(')').trim())
                    .map_err(|e| at(format!("Source: {e}")))?,
            ),
            None => (s.trim().to_string(), version.clone()),
        },
    };
    if !crate::policy::valid_package_name(&source) {
        return Err(at(format!(
            "Source {} is not a package name",
            excerpt(&source)
        )));
    }
    let depends = ["Pre-Depends", "Depends"]
        .iter()
        .filter_map(|f| p.get(f))
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect();
    let provides = p
        .get("Provides")
        .map(|v| {
            v.split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(BinaryEntry {
        package,
        version,
        architecture,
        source,
        source_version,
        filename,
        size,
        sha256,
        depends,
        provides,
    })
}

/// A `Sources` stanza.
pub fn source_entry(p: &Paragraph) -> Result<SourceEntry, String> {
    let package = required(p, "Package")?.to_string();
    let at = |e: String| format!("{}: {e}", excerpt(&package));
    if !crate::policy::valid_package_name(&package) {
        return Err(at("not a package name".into()));
    }
    let version = Version::parse(required(p, "Version").map_err(at)?)
        .map_err(|e| at(format!("Version: {e}")))?;
    // A flat archive's sources sit beside its index: `Directory: .`.
    let directory = strip_dot(required(p, "Directory").map_err(at)?).to_string();
    if !directory.is_empty() && !safe_path(&directory) {
        return Err(at(format!(
            "Directory {} is not a path inside the archive",
            excerpt(&directory)
        )));
    }
    let sums = required(p, "Checksums-Sha256").map_err(at)?;
    let mut files = BTreeMap::new();
    for line in sums.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [sha, size, name] = parts[..] else {
            return Err(at(format!("Checksums-Sha256: {}", excerpt(line))));
        };
        let size: u64 = size
            .parse()
            .map_err(|_| at(format!("Checksums-Sha256: size {}", excerpt(size))))?;
        if !is_sha256(sha) || name.contains('/') || !safe_path(name) {
            return Err(at(format!("Checksums-Sha256: {}", excerpt(line))));
        }
        files.insert(
            name.to_string(),
            Listed {
                size,
                sha256: sha.to_ascii_lowercase(),
            },
        );
    }
    if !files.keys().any(|n| n.ends_with(".dsc")) {
        return Err(at("no .dsc among its files".into()));
    }
    Ok(SourceEntry {
        package,
        version,
        directory,
        files,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn dependency_alternatives_parse_as_apt_reads_them() {
        let v = |t: &str| Version::parse(t).expect("version");
        let alts =
            alternatives("libc6 (>= 2.34) | libc6.1:any (<< 3~) [amd64] <!nocheck>| x11-common");
        assert_eq!(
            alts,
            [
                Alternative {
                    name: "libc6".into(),
                    relation: Some((Op::Ge, v("2.34")))
                },
                Alternative {
                    name: "libc6.1".into(),
                    relation: Some((Op::Lt, v("3~")))
                },
                Alternative {
                    name: "x11-common".into(),
                    relation: None
                },
            ]
        );
        // Old spellings, and what does not parse is left out.
        assert_eq!(alternatives("ab (< 1)")[0].relation, Some((Op::Le, v("1"))));
        assert_eq!(
            alternatives("ab (=1:2.0-1)")[0].relation,
            Some((Op::Eq, v("1:2.0-1")))
        );
        assert!(alternatives("NOT A NAME | (>= 1) | b (>= )").is_empty());
        assert!(Op::Lt.holds(&v("1.0~rc1"), &v("1.0")));
        assert!(!Op::Gt.holds(&v("1.0"), &v("1.0")));
    }

    use super::*;

    const SHA: &str = "a3f5e6b2c1d0a3f5e6b2c1d0a3f5e6b2c1d0a3f5e6b2c1d0a3f5e6b2c1d0a3f5";

    #[test]
    fn a_release_and_its_best_index() {
        let text = format!(
            "Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 01 Jun 2024 10:00:00 UTC\n\
             Architectures: amd64 arm64\nComponents: main contrib\nAcquire-By-Hash: yes\n\
             MD5Sum:\n 0123 10 main/binary-amd64/Packages\nSHA256:\n {SHA} 100 main/binary-amd64/Packages\n \
             {SHA} 40 main/binary-amd64/Packages.gz\n {SHA} 30 main/binary-amd64/Packages.xz\n"
        );
        let r = parse_release(&text).expect("parses");
        assert_eq!(r.codename.as_deref(), Some("bookworm"));
        assert_eq!(r.components, ["main", "contrib"]);
        assert!(r.by_hash);
        let (path, listed, c) = r.index("main/binary-amd64/Packages").expect("listed");
        assert_eq!(
            (path.as_str(), listed.size, c),
            ("main/binary-amd64/Packages.xz", 30, Compression::Xz)
        );
        assert!(r.index("main/binary-arm64/Packages").is_none());
        assert_eq!(
            Release::by_hash_path("main/binary-amd64/Packages.xz", SHA),
            format!("main/binary-amd64/by-hash/SHA256/{SHA}")
        );
        assert_eq!(
            Release::by_hash_path("Packages.gz", SHA),
            format!("by-hash/SHA256/{SHA}")
        );
    }

    #[test]
    fn releases_no_archive_should_write_are_refused() {
        for (text, why) in [
            (
                "Suite: x\nMD5Sum:\n 0 1 Packages\n".to_string(),
                "no SHA256",
            ),
            (
                format!("SHA256:\n {SHA} 1 ../../etc/passwd\n"),
                "not a path inside",
            ),
            (
                format!("SHA256:\n {SHA} 1 /etc/passwd\n"),
                "not a path inside",
            ),
            ("SHA256:\n xyz 1 Packages\n".to_string(), "not a SHA-256"),
            (format!("SHA256:\n {SHA} -1 Packages\n"), "not a size"),
            (format!("SHA256:\n {SHA} 1\n"), "not `sum size path`"),
            ("Suite: a\n\nSuite: b\n".to_string(), "2 paragraphs"),
        ] {
            let e = parse_release(&text).expect_err(&text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn index_stanzas() {
        let p = crate::control::parse_one(
            &format!(
                "Package: hello\nVersion: 2.10-3+b1\nArchitecture: amd64\nSource: hello (2.10-3)\n\
                 Depends: libc6 (>= 2.34), foo | bar\nFilename: pool/main/h/hello/hello_2.10-3+b1_amd64.deb\n\
                 Size: 53000\nSHA256: {SHA}\n"
            ),
            Mode::Lenient,
        )
        .expect("stanza");
        let b = binary_entry(&p).expect("entry");
        assert_eq!(b.source, "hello");
        assert_eq!(b.source_version.to_string(), "2.10-3");
        assert_eq!(b.depends, ["libc6 (>= 2.34)", "foo | bar"]);
        let bad = crate::control::parse_one(
            &format!("Package: xy\nVersion: 1\nArchitecture: all\nFilename: pool/../../x.deb\nSize: 1\nSHA256: {SHA}\n"),
            Mode::Lenient,
        )
        .expect("stanza");
        assert!(binary_entry(&bad)
            .expect_err("climbs")
            .contains("not a path inside"));
        let s = crate::control::parse_one(
            &format!(
                "Package: hello\nVersion: 2.10-3\nDirectory: pool/main/h/hello\nChecksums-Sha256:\n \
                 {SHA} 1000 hello_2.10-3.dsc\n {SHA} 2000 hello_2.10.orig.tar.gz\n"
            ),
            Mode::Lenient,
        )
        .expect("stanza");
        let e = source_entry(&s).expect("entry");
        assert_eq!(e.files.len(), 2);
    }
}
