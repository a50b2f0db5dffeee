//! One upload folder checked as one bundle (DESIGN §4).
//!
//! A bundle is the files of one source package at one version: its `.deb`s,
//! its `.dsc` and the files the `.dsc` lists, optionally a `.changes` and a
//! `.buildinfo`. [`check_folder`] reads every file once (through a caller-given
//! opener, so this stays free of filesystem and network code), validates it,
//! and then applies the folder rules:
//!
//! - the bundle's identity (source name and version) is the `.changes`'s, else
//!   the `.dsc`'s, else the one most `.deb`s carry; a file that disagrees is
//!   rejected;
//! - a `.dsc` is accepted only when every file it lists is present with the
//!   listed size and all three hashes; its listed files share its fate;
//! - a `.changes` makes the folder all-or-nothing: if any listed file is
//!   missing or wrong, or a file is not listed, every file is rejected;
//! - two `.deb`s claiming one package, version and architecture: identical bytes
//!   make the second *skipped*, different bytes make it *rejected*;
//! - any other file is rejected.
//!
//! The ingest function and `raptr check` both use this, so a folder that passes
//! `raptr check` on a laptop is accepted by the archive.

use std::collections::BTreeMap;
use std::io::{self, Read};

use crate::changes::Changes;
use crate::checksums::ListedFile;
use crate::deb::{read_deb, Deb, DebError, Limits};
use crate::dsc::{parse_signed_document, Dsc, MAX_DESCRIPTION};
use crate::hash::{digest_reader, Digests};
use crate::layout::{deb_file_name, pool_dir};
use crate::policy::valid_file_name;
use crate::quote::{line, name};
use crate::version::Version;

/// What happens to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Accepted,
    /// Already there with identical bytes: nothing to do, not an error.
    Skipped,
    Rejected,
    /// Waiting for companion files (only when the folder is still open,
    /// see [`Rules::open`]).
    Pending,
}

/// What kind of file it is, by its role in the bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Deb,
    Dsc,
    Changes,
    Buildinfo,
    /// A file listed by a `.dsc` (tarballs, diffs, signatures).
    Source,
    Unknown,
}

/// A file's parsed content, for callers that render indices.
#[derive(Debug, Clone)]
pub enum Parsed {
    Deb(Box<Deb>),
    Dsc(Box<Dsc>),
    Changes(Box<Changes>),
    None,
}

/// The verdict on one file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileResult {
    pub file: String,
    pub kind: Kind,
    pub status: Status,
    /// Why it was rejected or skipped, naming the file and the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_version: Option<String>,
    /// Where the file goes in the pool, once accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip)]
    pub digests: Option<Digests>,
    #[serde(skip)]
    pub parsed: Parsed,
}

impl FileResult {
    fn new(file: &str, kind: Kind) -> Self {
        FileResult {
            file: file.to_string(),
            kind,
            status: Status::Accepted,
            reason: None,
            warnings: Vec::new(),
            package: None,
            version: None,
            architecture: None,
            source: None,
            source_version: None,
            pool_key: None,
            size: None,
            sha256: None,
            digests: None,
            parsed: Parsed::None,
        }
    }

    /// A result for a file that was validated earlier; the caller fills in
    /// what it recorded.
    pub fn restored(file: &str, kind: Kind) -> Self {
        FileResult::new(file, kind)
    }

    fn pend(&mut self, why: impl AsRef<str>) {
        if self.status != Status::Rejected {
            self.status = Status::Pending;
            let reason = format!("{}: {}", name(&self.file), why.as_ref());
            self.reason = Some(line(&reason).into_owned());
        }
    }

    /// Rejects the file (a first rejection's reason is kept).
    pub fn reject(&mut self, problem: impl AsRef<str>) {
        if self.status != Status::Rejected {
            self.status = Status::Rejected;
            let reason = format!("{}: {}", name(&self.file), problem.as_ref());
            self.reason = Some(line(&reason).into_owned());
        }
    }

    pub fn set_digests(&mut self, d: Digests) {
        self.size = Some(d.size);
        self.sha256 = Some(d.sha256.clone());
        self.digests = Some(d);
    }

    fn identity(&self) -> Option<(String, Version)> {
        let s = self.source.clone()?;
        let v = Version::parse(self.source_version.as_deref()?).ok()?;
        Some((s, v))
    }
}

/// The verdict on a folder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleReport {
    /// The bundle's source name and version, when one could be determined.
    pub source: Option<String>,
    pub version: Option<String>,
    pub files: Vec<FileResult>,
}

impl BundleReport {
    pub fn count(&self, status: Status) -> usize {
        self.files.iter().filter(|f| f.status == status).count()
    }
}

/// Kind of a file by its name.
pub fn kind_of(name: &str) -> Kind {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("deb") => Kind::Deb,
        Some("dsc") => Kind::Dsc,
        Some("changes") => Kind::Changes,
        Some("buildinfo") => Kind::Buildinfo,
        _ => Kind::Unknown,
    }
}

/// Reads a small text file (a `.dsc`, `.changes` or `.buildinfo`) with a cap.
fn read_description(open: &mut dyn Read) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    open.take(MAX_DESCRIPTION + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MAX_DESCRIPTION).then_some(bytes))
}

/// Validates one file on its own. I/O failures are returned as errors (they may
/// succeed if tried again); everything wrong with the bytes becomes a rejection.
pub fn analyze_file<F>(name: &str, open: &mut F, limits: &Limits) -> io::Result<FileResult>
where
    F: FnMut(&str) -> io::Result<Box<dyn Read>>,
{
    let kind = kind_of(name);
    let mut r = FileResult::new(name, kind);
    if !valid_file_name(name) {
        r.reject("not a plain file name (no slash, no leading dot, printable ASCII)");
        return Ok(r);
    }
    if crate::policy::RESERVED_FILE_NAMES.contains(&name) {
        r.reject("a name raptr keeps for its own records in the pool; rename the file");
        return Ok(r);
    }
    let mut input = open(name)?;
    match kind {
        Kind::Deb => match read_deb(&mut input, limits) {
            Ok(deb) => {
                r.package = Some(deb.binary.package.clone());
                r.version = Some(deb.binary.version.to_string());
                r.architecture = Some(deb.binary.architecture.clone());
                r.source = Some(deb.binary.source.clone());
                r.source_version = Some(deb.binary.source_version.to_string());
                r.set_digests(deb.digests.clone());
                r.parsed = Parsed::Deb(Box::new(deb));
            }
            Err(DebError::Io(e)) => return Err(e),
            Err(DebError::Invalid(problem)) => r.reject(problem),
        },
        Kind::Dsc | Kind::Changes | Kind::Buildinfo => {
            let Some(bytes) = read_description(&mut input)? else {
                r.reject(format!("larger than {MAX_DESCRIPTION} bytes"));
                return Ok(r);
            };
            r.set_digests(Digests::of(&bytes));
            let parsed = match kind {
                Kind::Dsc => Dsc::parse(&bytes).map(|d| {
                    r.source = Some(d.source.clone());
                    r.source_version = Some(d.version.to_string());
                    Parsed::Dsc(Box::new(d))
                }),
                Kind::Changes => Changes::parse(&bytes).map(|c| {
                    r.source = Some(c.source.clone());
                    r.source_version = Some(c.version.to_string());
                    Parsed::Changes(Box::new(c))
                }),
                _ => buildinfo_identity(&bytes).map(|(s, v)| {
                    r.source = Some(s);
                    r.source_version = Some(v.to_string());
                    Parsed::None
                }),
            };
            match parsed {
                Ok(p) => r.parsed = p,
                Err(problem) => r.reject(problem),
            }
        }
        Kind::Source | Kind::Unknown => r.set_digests(digest_reader(input)?),
    }
    Ok(r)
}

fn buildinfo_identity(bytes: &[u8]) -> Result<(String, Version), String> {
    let (p, _) = parse_signed_document(bytes)?;
    let source = p.get("Source").ok_or("the Source field is missing")?;
    let (name, v) = crate::binary::split_source_field(source)?;
    if !crate::policy::valid_package_name(name) {
        return Err(crate::policy::bad_package_name("source package name", name));
    }
    let v = match v {
        Some(v) => v,
        None => p.get("Version").ok_or("the Version field is missing")?,
    };
    Ok((
        name.to_string(),
        Version::parse(v).map_err(|e| e.to_string())?,
    ))
}

/// Checks the files of one upload folder as one bundle. `names` are plain file
/// names; `open` opens one for reading. `component` places accepted files in
/// the pool (`pool/<component>/...`).
pub fn check_folder<F>(
    names: &[String],
    mut open: F,
    component: &str,
    limits: &Limits,
) -> io::Result<BundleReport>
where
    F: FnMut(&str) -> io::Result<Box<dyn Read>>,
{
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    names.dedup();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        files.push(analyze_file(name, &mut open, limits)?);
    }
    Ok(apply_folder_rules(files, component))
}

/// The file lists of the accepted `.dsc`s or `.changes` in the folder.
fn listed_by(files: &[FileResult], kind: Kind) -> Vec<(usize, Vec<ListedFile>)> {
    files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.kind == kind && f.status != Status::Rejected)
        .filter_map(|(i, f)| match &f.parsed {
            Parsed::Dsc(d) => Some((i, d.files.clone())),
            Parsed::Changes(c) => Some((i, c.files.clone())),
            _ => None,
        })
        .collect()
}

/// How [`apply_rules`] treats a folder.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// The folder may still receive files (the ingest function, one event at
    /// a time): a `.dsc` or `.changes` whose listed files are missing, and a
    /// file no `.dsc` claims yet, are [`Status::Pending`] instead of rejected.
    /// A mismatch is final either way.
    pub open: bool,
    /// The bundle identity already fixed for this folder (by files accepted
    /// earlier); files that disagree with it are rejected.
    pub identity: Option<(String, Version)>,
}

/// Applies the folder rules to a complete folder (`raptr check`).
pub fn apply_folder_rules(files: Vec<FileResult>, component: &str) -> BundleReport {
    apply_rules(files, component, &Rules::default())
}

/// Applies the folder rules to files that were each validated on their own.
pub fn apply_rules(mut files: Vec<FileResult>, component: &str, rules: &Rules) -> BundleReport {
    // Files a .dsc lists are source files, whatever their extension says.
    let dsc_lists: Vec<(usize, Vec<ListedFile>)> = listed_by(&files, Kind::Dsc);
    for (_, list) in &dsc_lists {
        for lf in list {
            if let Some(f) = files.iter_mut().find(|f| f.file == lf.name) {
                if f.kind == Kind::Unknown {
                    f.kind = Kind::Source;
                }
            }
        }
    }

    // The bundle's identity.
    let pick = |kind: Kind, files: &[FileResult]| {
        files
            .iter()
            .filter(|f| f.kind == kind && f.status != Status::Rejected)
            .find_map(FileResult::identity)
    };
    let identity = rules
        .identity
        .clone()
        .or_else(|| pick(Kind::Changes, &files))
        .or_else(|| pick(Kind::Dsc, &files))
        .or_else(|| {
            let mut votes: BTreeMap<(String, String), (usize, usize, Version)> = BTreeMap::new();
            for (i, f) in files.iter().enumerate() {
                if f.kind != Kind::Deb || f.status == Status::Rejected {
                    continue;
                }
                if let Some((s, v)) = f.identity() {
                    let e = votes.entry((s, v.to_string())).or_insert((0, i, v));
                    e.0 += 1;
                }
            }
            votes
                .into_iter()
                .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
                .map(|((s, _), (_, _, v))| (s, v))
        })
        .or_else(|| pick(Kind::Buildinfo, &files));

    if let Some((source, version)) = &identity {
        let dir = pool_dir(component, source, version);
        for f in files.iter_mut() {
            if f.status == Status::Rejected {
                continue;
            }
            if let Some((s, v)) = f.identity() {
                if &s != source || v.to_string() != version.to_string() {
                    f.reject(format!(
                        "belongs to source {s} {v}, but this folder's bundle is {source} {version}"
                    ));
                    continue;
                }
            }
            f.pool_key = Some(match (&f.parsed, f.kind) {
                (Parsed::Deb(d), _) => {
                    let b = &d.binary;
                    let canonical = deb_file_name(&b.package, &b.version, &b.architecture);
                    if canonical != f.file {
                        f.warnings.push(format!(
                            "{} is stored under its Debian name {canonical}",
                            f.file
                        ));
                    }
                    format!("{dir}/{canonical}")
                }
                _ => format!("{dir}/{}", f.file),
            });
        }
    }

    // Only one .dsc and one .changes per bundle.
    for kind in [Kind::Dsc, Kind::Changes] {
        let mut seen: Option<String> = None;
        for f in files
            .iter_mut()
            .filter(|f| f.kind == kind && f.status != Status::Rejected)
        {
            match &seen {
                None => seen = Some(f.file.clone()),
                Some(first) => f.reject(format!(
                    "a second {kind:?} for the same bundle, after {first}"
                )),
            }
        }
    }

    // Two .debs for one package, version and architecture.
    for i in 0..files.len() {
        if files[i].kind != Kind::Deb || files[i].status == Status::Rejected {
            continue;
        }
        let key = (&files[i].package, &files[i].version, &files[i].architecture);
        let earlier = files[..i].iter().find(|f| {
            f.kind == Kind::Deb
                && f.status != Status::Rejected
                && (&f.package, &f.version, &f.architecture) == key
        });
        if let Some(first) = earlier {
            let (first_name, same) = (first.file.clone(), first.sha256 == files[i].sha256);
            let f = &mut files[i];
            if same {
                f.status = Status::Skipped;
                f.reason = Some(format!("{}: identical to {first_name}", f.file));
            } else {
                f.reject(format!(
                    "claims the same package, version and architecture as {first_name} with different contents"
                ));
            }
        }
    }

    // A .dsc needs every listed file, verified; its files share its fate.
    for (dsc_index, list) in listed_by(&files, Kind::Dsc) {
        let dsc_name = files[dsc_index].file.clone();
        let mut problems = Vec::new();
        let mut missing = Vec::new();
        for lf in &list {
            match files.iter_mut().find(|f| f.file == lf.name) {
                None if rules.open => missing.push(lf.name.clone()),
                None => problems.push(format!("{} is missing", lf.name)),
                Some(f) => match f.digests.as_ref().map(|d| lf.verify(d)) {
                    Some(Ok(())) if f.status != Status::Rejected => {}
                    Some(Ok(())) => problems.push(format!("{} was rejected", lf.name)),
                    Some(Err(p)) => {
                        f.reject(format!("does not match {dsc_name}: {p}"));
                        problems.push(p);
                    }
                    None => problems.push(format!("{} could not be read", lf.name)),
                },
            }
        }
        if !problems.is_empty() {
            files[dsc_index].reject(problems.join("; "));
            for lf in &list {
                if let Some(f) = files.iter_mut().find(|f| f.file == lf.name) {
                    f.reject(format!("listed by {dsc_name}, which was rejected"));
                }
            }
        } else if !missing.is_empty() {
            let waiting = missing.join(", ");
            files[dsc_index].pend(format!(
                "waiting for {waiting}: upload it into the same folder (the sweep rejects what still waits after the pending timeout)"
            ));
            for lf in &list {
                if let Some(f) = files.iter_mut().find(|f| f.file == lf.name) {
                    f.pend(format!(
                        "listed by {dsc_name}, which is waiting for {waiting}"
                    ));
                }
            }
        }
    }

    // Anything nobody claims.
    for f in files.iter_mut().filter(|f| f.kind == Kind::Unknown) {
        if rules.open {
            f.pend("waiting for a .dsc that lists it: upload the .dsc (with every file it lists) into the same folder, or leave this file out (the sweep rejects what still waits after the pending timeout)");
            continue;
        }
        f.reject("not a package file (.deb, .dsc, .changes, .buildinfo) nor listed by a .dsc in this folder");
    }

    // A .changes makes the folder all-or-nothing.
    if let Some((ci, list)) = listed_by(&files, Kind::Changes).into_iter().next() {
        let mut problems = Vec::new();
        let mut missing = Vec::new();
        for lf in &list {
            match files.iter().find(|f| f.file == lf.name) {
                None if rules.open => missing.push(lf.name.clone()),
                None => problems.push(format!("{} is missing", lf.name)),
                Some(f) => match f.digests.as_ref().map(|d| lf.verify(d)) {
                    Some(Ok(())) if f.status == Status::Rejected => {
                        problems.push(format!("{} was rejected", lf.name))
                    }
                    Some(Ok(())) => {}
                    Some(Err(p)) => problems.push(p),
                    None => problems.push(format!("{} could not be read", lf.name)),
                },
            }
        }
        for (i, f) in files.iter().enumerate() {
            if i != ci && !list.iter().any(|lf| lf.name == f.file) {
                problems.push(format!("{} is not listed in {}", f.file, files[ci].file));
            }
        }
        if !problems.is_empty() {
            // Root causes (missing files) first: the rest follows from them.
            problems.sort_by_key(|p| !p.ends_with(" is missing"));
            let changes = files[ci].file.clone();
            let all = problems.join("; ");
            for f in files.iter_mut() {
                if f.file == changes {
                    f.reject(format!("upload incomplete or inconsistent: {all}"));
                } else {
                    f.reject(format!(
                        "{changes} makes the folder all-or-nothing and it failed: {all}"
                    ));
                }
            }
        } else if !missing.is_empty() {
            // Only the .changes names what is missing. The other files'
            // reason stays the same while the folder fills, so each arrival
            // rewrites two reports, not every waiting file's: a folder of n
            // files costs O(n) report writes.
            let waiting = missing.join(", ");
            let changes = files[ci].file.clone();
            for f in files.iter_mut() {
                if f.file == changes {
                    f.pend(format!(
                        "the folder is all-or-nothing; waiting for {waiting}: upload it into the same folder"
                    ));
                } else {
                    f.pend(format!(
                        "{changes} makes the folder all-or-nothing; waiting for every file it lists (its report names the missing ones)"
                    ));
                }
            }
        }
    }

    let (source, version) = match identity {
        Some((s, v)) => (Some(s), Some(v.to_string())),
        None => (None, None),
    };
    BundleReport {
        source,
        version,
        files,
    }
}
