//! Verification of every bucket against its own Release: the signature, each
//! listed index (canonical and by-hash) and each pool file the indices
//! reference. Replicas are repaired from the primary; the primary itself is
//! only reported on (it is the source of truth).

use std::fmt;

use bytes::Bytes;
use raptr_store::{ObjectStore, PutOptions, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use super::index::{self, IndexSum};
use super::{
    content_type, join_all, put, Held, PublishError, Publisher, Result, CACHE_IMMUTABLE,
    CACHE_MUTABLE,
};
use crate::progress;
use raptr_formats::hash::hex;

/// Pool files checked at once.
const AT_ONCE: usize = 32;

/// One problem found in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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

pub(super) async fn run(p: &Publisher, held: &mut Held, dry_run: bool) -> Result<Vec<Finding>> {
    let state = &held.state;
    let mut findings = Vec::new();
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
    for (name, store, dists) in targets {
        let is_primary = name == "primary";
        let mut found = |key: String, problem: String, repaired: bool| {
            findings.push(Finding {
                target: name.to_string(),
                key,
                problem,
                repaired,
            })
        };
        let repair = !dry_run && !is_primary;
        for dist in dists {
            let base = format!("dists/{dist}");
            let inrelease = fetch(store, &format!("{base}/InRelease")).await?;
            let release = fetch(store, &format!("{base}/Release")).await?;
            let gpg = fetch(store, &format!("{base}/Release.gpg")).await?;
            let text = match inrelease
                .as_ref()
                .map(|b| p.signer.verify_clear(&String::from_utf8_lossy(b)))
            {
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => {
                    found(
                        format!("{base}/InRelease"),
                        format!("bad signature: {e}"),
                        repair,
                    );
                    None
                }
                None => {
                    found(format!("{base}/InRelease"), "missing".into(), repair);
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
                found(
                    format!("{base}/Release.gpg"),
                    "Release and Release.gpg missing or do not verify".into(),
                    repair,
                );
            }
            let mut bad_release = text.is_none() || !detached_ok;
            // Check against the primary's Release when this one is broken.
            let text = match text {
                Some(t) => t,
                None => match fetch(p.store.as_ref(), &format!("{base}/InRelease")).await? {
                    Some(b) => p.signer.verify_clear(&String::from_utf8_lossy(&b))?,
                    None => continue,
                },
            };
            for (path, sum) in index::release_files(&text) {
                let hashed = format!("{base}/{}", index::by_hash_path(&path, &sum.sha256));
                for (key, cache) in [
                    (hashed.clone(), CACHE_IMMUTABLE),
                    (format!("{base}/{path}"), CACHE_MUTABLE),
                ] {
                    let problem = match sum_of(store, &key).await? {
                        Some(s) if s == sum => continue,
                        Some(_) => "wrong size or SHA-256",
                        None => "missing",
                    };
                    found(key.clone(), problem.into(), repair);
                    if repair {
                        restore(p, store, &hashed, &key, Some(content_type(&path)), cache).await?;
                        bad_release = true;
                    }
                }
                if path.ends_with("/Packages") || path.ends_with("/Sources") {
                    let sources = path.ends_with("/Sources");
                    let label = format!("verify {name}: {base}/{path}");
                    let refs = Refs {
                        index_key: &hashed,
                        sources,
                        label: &label,
                    };
                    for (key, problem) in check_refs(p, store, is_primary, refs, repair).await? {
                        found(key, problem, repair);
                    }
                }
            }
            if repair && bad_release {
                for n in ["Release", "Release.gpg", "InRelease"] {
                    let key = format!("{base}/{n}");
                    let (body, _) = p.store.get_limited(&key, crate::limits::RELEASE).await?;
                    put(store, &key, body, content_type(n), CACHE_MUTABLE).await?;
                }
            }
        }
    }
    Ok(findings)
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
) -> Result<Vec<(String, String)>> {
    let Refs {
        index_key,
        sources,
        label,
    } = refs;
    let mut checked = 0usize;
    let body = match p.store.get_stream(index_key).await {
        Ok((body, _)) => body,
        Err(StoreError::NotFound { .. }) => return Ok(Vec::new()),
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
                batch.extend(pool_refs(&stanza, sources));
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
                format!("{label}: {checked} pool file(s) checked")
            });
        }
        if last {
            return Ok(problems);
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
