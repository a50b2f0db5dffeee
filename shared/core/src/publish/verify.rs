//! Verification of every bucket against its own Release: the signature, each
//! listed index (canonical and by-hash) and each pool file the indices
//! reference. Replicas are repaired from the primary; the primary itself is
//! only reported on (it is the source of truth).
//!
//! A pass over a large repository works in slices: given a budget, a run
//! stops once it is spent (after the unit or the batch of pool files in
//! hand) and leaves a [`Cursor`] in the publish state; the next run under
//! the lease goes on from there, and the pass ends when every bucket's
//! every index has been checked. So a verify request costs each publish
//! run at most its slice, and never makes later runs verify everything.
//! A unit that cannot be checked (an error reading it) is reported as a
//! finding and passed, not retried for ever.

use std::collections::BTreeSet;
use std::time::Duration;

use std::fmt;

use bytes::Bytes;
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::index::{self, IndexSum};
use super::{
    content_type, join_all, Held, PublishError, Publisher, Result, CACHE_IMMUTABLE, CACHE_MUTABLE,
};
use crate::progress;
use raptr_formats::hash::hex;

/// Pool files checked at once.
const AT_ONCE: usize = 32;

/// Findings a pass keeps in the state; past it, they are only counted.
const MAX_KEPT: usize = 10_000;

/// Where an unfinished verify pass is (kept in the publish state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Whether this pass only reports (a dry run) or also repairs.
    pub dry_run: bool,
    /// Units checked whole: `target dist` (its Release) and `target dist
    /// path` (an index and the pool files it references).
    pub done: BTreeSet<String>,
    /// The index in hand, and how many of its pool references are checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<(String, u64)>,
    /// `target dist` pairs whose Release must be copied again once their
    /// indices are checked (something under them was repaired).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub bad_release: BTreeSet<String>,
    pub findings: Vec<Finding>,
    /// Findings past [`MAX_KEPT`], counted only.
    #[serde(default)]
    pub omitted: u64,
}

/// What one verify run came to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pass {
    /// Everything the pass found (once it is complete).
    pub findings: Vec<Finding>,
    /// Findings beyond those kept.
    pub omitted: u64,
    /// `false` when the budget ran out first: run again to go on.
    pub complete: bool,
    /// Units checked so far in this pass.
    pub checked: usize,
}

/// One problem found in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `primary` or a replica's name.
    pub target: String,
    pub key: String,
    pub problem: String,
    /// Whether it was copied again from the primary.
    pub repaired: bool,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.target, self.key, self.problem)?;
        if self.repaired {
            write!(f, " (repaired)")?;
        }
        Ok(())
    }
}

async fn fetch(store: &dyn ObjectStore, key: &str) -> Result<Option<Bytes>> {
    match store.get_limited(key, crate::limits::RELEASE).await {
        Ok((b, _)) => Ok(Some(b)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_err(key: &str, e: std::io::Error) -> PublishError {
    StoreError::Transient {
        key: key.to_string(),
        source: e.into(),
    }
    .into()
}

/// An object's size and SHA-256, read as a stream; `None` if it is missing.
async fn sum_of(store: &dyn ObjectStore, key: &str) -> Result<Option<IndexSum>> {
    let mut body = match store.get_stream(key).await {
        Ok((body, _)) => body,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        let n = body.read(&mut buf).await.map_err(|e| read_err(key, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok(Some(IndexSum {
        size,
        sha256: hex(&hasher.finalize()),
    }))
}

/// Copies `from` on the primary to `to` in `store`, as a stream, with
/// `content_type` (the source's when `None`) and `cache`.
async fn restore(
    p: &Publisher,
    store: &dyn ObjectStore,
    from: &str,
    to: &str,
    content_type: Option<&str>,
    cache: &str,
) -> Result<()> {
    let (body, meta) = p.store.get_stream(from).await?;
    let opts = PutOptions {
        content_type: content_type.map(str::to_string).or(meta.content_type),
        cache_control: Some(cache.to_string()),
        ..PutOptions::default()
    };
    store.put_stream(to, body, opts).await?;
    Ok(())
}

/// What an index's stanzas reference in the pool: key, size, SHA-256.
fn pool_refs(text: &str, sources: bool) -> Vec<(String, IndexSum)> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut filename = None;
        let mut size = None;
        let mut sha = None;
        let mut dir = None;
        let mut in_sha = false;
        for line in stanza.lines() {
            if let Some(rest) = line.strip_prefix(' ') {
                if sources && in_sha {
                    let mut it = rest.split_ascii_whitespace();
                    if let (Some(h), Some(s), Some(n)) = (it.next(), it.next(), it.next()) {
                        if let (Some(d), Ok(s)) = (dir, s.parse()) {
                            out.push((
                                format!("{d}/{n}"),
                                IndexSum {
                                    size: s,
                                    sha256: h.to_string(),
                                },
                            ));
                        }
                    }
                }
                continue;
            }
            in_sha = false;
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name {
                "Filename" => filename = Some(value),
                "Size" => size = value.parse().ok(),
                "SHA256" => sha = Some(value),
                "Directory" => dir = Some(value),
                "Checksums-Sha256" => in_sha = true,
                _ => {}
            }
        }
        if !sources {
            if let (Some(f), Some(s), Some(h)) = (filename, size, sha) {
                out.push((
                    f.to_string(),
                    IndexSum {
                        size: s,
                        sha256: h.to_string(),
                    },
                ));
            }
        }
    }
    out
}

/// The deadline of a slice: none, or when to stop.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget(Option<tokio::time::Instant>);

impl Budget {
    pub(super) fn new(slice: Option<Duration>) -> Budget {
        Budget(slice.map(|d| tokio::time::Instant::now() + d))
    }

    fn spent(&self) -> bool {
        self.0.is_some_and(|t| tokio::time::Instant::now() >= t)
    }
}

/// A failure that must stop the run (the lease is gone); any other error
/// reading a unit is a finding.
fn must_stop(p: &Publisher, e: &PublishError) -> bool {
    matches!(e, PublishError::Overtaken(_) | PublishError::Table(_)) || p.fence.lapsed().is_some()
}

/// Runs (or goes on with) a verify pass within `budget`; the cursor in
/// `held.state` says where the pass is between runs.
pub(super) async fn run(
    p: &Publisher,
    held: &mut Held,
    dry_run: bool,
    budget: Budget,
) -> Result<Pass> {
    let mut cursor = match held.state.verify_cursor.take() {
        Some(c) if c.dry_run == dry_run => c,
        _ => Cursor {
            dry_run,
            ..Cursor::default()
        },
    };
    let complete = pass(p, &held.state, &mut cursor, budget).await;
    let complete = match complete {
        Ok(c) => c,
        Err(e) => {
            held.state.verify_cursor = Some(cursor);
            return Err(e);
        }
    };
    let out = Pass {
        findings: if complete {
            std::mem::take(&mut cursor.findings)
        } else {
            Vec::new()
        },
        omitted: cursor.omitted,
        complete,
        checked: cursor.done.len(),
    };
    if !complete {
        held.state.verify_cursor = Some(cursor);
    }
    Ok(out)
}

async fn pass(
    p: &Publisher,
    state: &super::state::State,
    cursor: &mut Cursor,
    budget: Budget,
) -> Result<bool> {
    let mut targets: Vec<(&str, &dyn ObjectStore, Vec<&String>)> =
        vec![("primary", p.store.as_ref(), state.indices.keys().collect())];
    for r in &p.replicas {
        let dists = state
            .indices
            .keys()
            .filter(|d| r.distributions.contains(*d))
            .collect();
        targets.push((&r.name, r.store.as_ref(), dists));
    }
    let dry_run = cursor.dry_run;
    // Every run checks at least one unit, however small its budget.
    let mut progressed = false;
    for (name, store, dists) in targets {
        let repair = !dry_run && name != "primary";
        for dist in dists {
            let base = format!("dists/{dist}");
            let pair = format!("{name} {dist}");
            let mut found: Vec<Finding> = Vec::new();
            let release_done = cursor.done.contains(&pair);
            let checked = release_text(p, (name, store), &base, repair, release_done, &mut found);
            let text = match checked.await {
                Ok(t) => t,
                Err(e) if !must_stop(p, &e) => {
                    found.push(unchecked(name, &format!("{base}/InRelease"), &e));
                    None
                }
                Err(e) => return Err(e),
            };
            let bad = found.iter().any(|f| f.repaired);
            keep(cursor, found);
            if bad {
                cursor.bad_release.insert(pair.clone());
            }
            cursor.done.insert(pair.clone());
            let Some(text) = text else { continue };
            for (path, sum) in index::release_files(&text) {
                let unit = format!("{pair} {path}");
                if cursor.done.contains(&unit) {
                    continue;
                }
                if progressed && budget.spent() {
                    return Ok(false);
                }
                progressed = true;
                let skip = match &cursor.partial {
                    Some((u, n)) if *u == unit => *n,
                    _ => 0,
                };
                let checked =
                    check_index(p, store, (name, &base, &path, &sum), repair, skip, budget).await;
                let (found, finished, at) = match checked {
                    Ok(r) => r,
                    Err(e) if !must_stop(p, &e) => (
                        vec![unchecked(name, &format!("{base}/{path}"), &e)],
                        true,
                        0,
                    ),
                    Err(e) => return Err(e),
                };
                if found.iter().any(|f| f.repaired) {
                    cursor.bad_release.insert(pair.clone());
                }
                keep(cursor, found);
                if !finished {
                    cursor.partial = Some((unit, at));
                    return Ok(false);
                }
                cursor.partial = None;
                cursor.done.insert(unit);
            }
            if cursor.bad_release.remove(&pair) {
                // Copied again from the primary, in order, over what is
                // there (conditionally: never over a newer signing).
                super::release::Signed::read(p.store.as_ref(), dist)
                    .await?
                    .write(store, dist)
                    .await?;
            }
        }
    }
    Ok(true)
}

fn unchecked(target: &str, key: &str, e: &PublishError) -> Finding {
    Finding {
        target: target.to_string(),
        key: key.to_string(),
        problem: format!("could not be checked: {e}"),
        repaired: false,
    }
}

fn keep(cursor: &mut Cursor, found: Vec<Finding>) {
    for f in found {
        if cursor.findings.len() < MAX_KEPT {
            cursor.findings.push(f);
        } else {
            cursor.omitted += 1;
        }
    }
}

/// The signed text of a distribution's Release in `store` (the primary's,
/// when this one is broken); problems with the signatures are added to
/// `found` unless `done` (already reported by an earlier slice).
async fn release_text(
    p: &Publisher,
    (target, store): (&str, &dyn ObjectStore),
    base: &str,
    repair: bool,
    done: bool,
    found: &mut Vec<Finding>,
) -> Result<Option<String>> {
    let inrelease = fetch(store, &format!("{base}/InRelease")).await?;
    let release = fetch(store, &format!("{base}/Release")).await?;
    let gpg = fetch(store, &format!("{base}/Release.gpg")).await?;
    let mut problems: Vec<(String, String)> = Vec::new();
    let text = match inrelease
        .as_ref()
        .map(|b| p.signer.verify_clear(&String::from_utf8_lossy(b)))
    {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            problems.push((format!("{base}/InRelease"), format!("bad signature: {e}")));
            None
        }
        None => {
            problems.push((format!("{base}/InRelease"), "missing".into()));
            None
        }
    };
    let detached_ok = match (&release, &gpg) {
        (Some(r), Some(g)) => p
            .signer
            .verify_detached(&String::from_utf8_lossy(r), &String::from_utf8_lossy(g))
            .is_ok(),
        _ => false,
    };
    if !detached_ok {
        problems.push((
            format!("{base}/Release.gpg"),
            "Release and Release.gpg missing or do not verify".into(),
        ));
    }
    if !done {
        found.extend(problems.into_iter().map(|(key, problem)| Finding {
            target: target.to_string(),
            key,
            problem,
            repaired: repair,
        }));
    }
    // Check against the primary's Release when this one is broken.
    Ok(match text {
        Some(t) => Some(t),
        None => match fetch(p.store.as_ref(), &format!("{base}/InRelease")).await? {
            Some(b) => Some(p.signer.verify_clear(&String::from_utf8_lossy(&b))?),
            None => None,
        },
    })
}

/// Checks one index of a Release in `store` (by hash and at its canonical
/// path) and, for `Packages` and `Sources`, the pool files it references
/// from the `skip`th on, until `budget` is spent. Returns the findings,
/// whether the index is done, and how many references are checked.
async fn check_index(
    p: &Publisher,
    store: &dyn ObjectStore,
    (target, base, path, sum): (&str, &str, &str, &IndexSum),
    repair: bool,
    skip: u64,
    budget: Budget,
) -> Result<(Vec<Finding>, bool, u64)> {
    let mut found = Vec::new();
    let mut finding = |key: String, problem: String| {
        found.push(Finding {
            target: target.to_string(),
            key,
            problem,
            repaired: repair,
        })
    };
    let hashed = format!("{base}/{}", index::by_hash_path(path, &sum.sha256));
    if skip == 0 {
        for (key, cache) in [
            (hashed.clone(), CACHE_IMMUTABLE),
            (format!("{base}/{path}"), CACHE_MUTABLE),
        ] {
            let problem = match sum_of(store, &key).await? {
                Some(s) if &s == sum => continue,
                Some(_) => "wrong size or SHA-256",
                None => "missing",
            };
            finding(key.clone(), problem.into());
            if repair {
                restore(p, store, &hashed, &key, Some(content_type(path)), cache).await?;
            }
        }
    }
    if !(path.ends_with("/Packages") || path.ends_with("/Sources")) {
        return Ok((found, true, 0));
    }
    let label = format!("verify {target}: {base}/{path}");
    let refs = Refs {
        index_key: &hashed,
        sources: path.ends_with("/Sources"),
        label: &label,
    };
    let (problems, finished, at) =
        check_refs(p, store, target == "primary", refs, repair, skip, budget).await?;
    for (key, problem) in problems {
        finding(key, problem);
    }
    Ok((found, finished, at))
}

/// Checks every pool file the index `index_key` of the primary references,
/// [`AT_ONCE`] at a time, reading the index as a stream: memory holds one
/// stanza and one batch, not the index. Returns each problem found (and
/// repaired, when `repair`).
/// An index whose pool references are checked: its by-hash key, whether it
/// is a `Sources`, and how progress lines name it.
struct Refs<'a> {
    index_key: &'a str,
    sources: bool,
    label: &'a str,
}

async fn check_refs(
    p: &Publisher,
    store: &dyn ObjectStore,
    is_primary: bool,
    refs: Refs<'_>,
    repair: bool,
    skip: u64,
    budget: Budget,
) -> Result<(Vec<(String, String)>, bool, u64)> {
    let Refs {
        index_key,
        sources,
        label,
    } = refs;
    let mut checked = 0u64;
    let mut seen = 0u64;
    let body = match p.store.get_stream(index_key).await {
        Ok((body, _)) => body,
        Err(StoreError::NotFound { .. }) => return Ok((Vec::new(), true, 0)),
        Err(e) => return Err(e.into()),
    };
    let mut lines = BufReader::new(body).lines();
    let mut stanza = String::new();
    let mut batch = Vec::new();
    let mut problems = Vec::new();
    loop {
        let line = lines
            .next_line()
            .await
            .map_err(|e| read_err(index_key, e))?;
        match &line {
            Some(l) if !l.is_empty() => {
                stanza.push_str(l);
                stanza.push('\n');
            }
            _ => {
                for r in pool_refs(&stanza, sources) {
                    // Checked by an earlier slice.
                    seen += 1;
                    if seen > skip {
                        batch.push(r);
                    }
                }
                stanza.clear();
            }
        }
        let last = line.is_none();
        if batch.len() >= AT_ONCE || (last && !batch.is_empty()) {
            let checks = std::mem::take(&mut batch)
                .into_iter()
                .map(|(key, want)| async move {
                    let problem = check_pool(p, store, is_primary, &key, &want, repair).await;
                    (key, problem)
                });
            for (key, problem) in join_all(checks).await {
                if let Some(problem) = problem? {
                    problems.push((key, problem));
                }
                checked += 1;
            }
            progress::tick(p.progress.as_deref(), || {
                format!("{label}: {} pool file(s) checked", skip + checked)
            });
            if !last && budget.spent() {
                return Ok((problems, false, skip + checked));
            }
        }
        if last {
            return Ok((problems, true, skip + checked));
        }
    }
}

/// What is wrong with one pool file in `store`, if anything; repaired from
/// the primary when `repair`.
async fn check_pool(
    p: &Publisher,
    store: &dyn ObjectStore,
    is_primary: bool,
    key: &str,
    want: &IndexSum,
    repair: bool,
) -> Result<Option<String>> {
    let problem = match store.head(key).await {
        Err(StoreError::NotFound { .. }) => Some("missing".to_string()),
        Err(e) => return Err(e.into()),
        Ok(meta) if meta.size != want.size => {
            Some(format!("{} bytes, the index says {}", meta.size, want.size))
        }
        Ok(meta) => {
            // Same ETag as the primary's copy means same bytes; otherwise hash it.
            let same = !is_primary && p.store.head(key).await.is_ok_and(|m| m.etag == meta.etag);
            if same {
                None
            } else {
                match sum_of(store, key).await? {
                    None => Some("missing".to_string()),
                    Some(sum) => (sum.sha256 != want.sha256)
                        .then(|| format!("SHA-256 {}, the index says {}", sum.sha256, want.sha256)),
                }
            }
        }
    };
    if problem.is_some() && repair {
        restore(p, store, key, key, None, CACHE_IMMUTABLE).await?;
    }
    Ok(problem)
}
