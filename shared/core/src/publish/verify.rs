//! Verification of every bucket against its own Release: the signature, each
//! listed index (canonical and by-hash) and each pool file the indices
//! reference. Replicas are repaired from the primary; the primary itself is
//! only reported on (it is the source of truth).

use std::fmt;

use bytes::Bytes;
use raptr_store::{ObjectStore, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::index::{self, IndexSum};
use super::{content_type, put, Held, Publisher, Result, CACHE_IMMUTABLE, CACHE_MUTABLE};
use raptr_formats::hash::hex;

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
    match store.get(key).await {
        Ok((b, _)) => Ok(Some(b)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
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
                    let body = fetch(store, &key).await?;
                    let ok = body.as_ref().is_some_and(|b| IndexSum::of(b) == sum);
                    if ok {
                        continue;
                    }
                    let problem = if body.is_some() {
                        "wrong size or SHA-256"
                    } else {
                        "missing"
                    };
                    found(key.clone(), problem.into(), repair);
                    if repair {
                        let (good, _) = p.store.get(&hashed).await?;
                        put(store, &key, good, content_type(&path), cache).await?;
                        bad_release = true;
                    }
                }
                if path.ends_with("/Packages") || path.ends_with("/Sources") {
                    let Some(body) = fetch(p.store.as_ref(), &hashed).await? else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(&body);
                    for (key, want) in pool_refs(&text, path.ends_with("/Sources")) {
                        check_pool(p, store, is_primary, &key, &want, repair, &mut found).await?;
                    }
                }
            }
            if repair && bad_release {
                for n in ["Release", "Release.gpg", "InRelease"] {
                    let key = format!("{base}/{n}");
                    let (body, _) = p.store.get(&key).await?;
                    put(store, &key, body, content_type(n), CACHE_MUTABLE).await?;
                }
            }
        }
    }
    Ok(findings)
}

async fn check_pool(
    p: &Publisher,
    store: &dyn ObjectStore,
    is_primary: bool,
    key: &str,
    want: &IndexSum,
    repair: bool,
    found: &mut impl FnMut(String, String, bool),
) -> Result<()> {
    let problem = match store.head(key).await {
        Err(StoreError::NotFound { .. }) => Some("missing".to_string()),
        Err(e) => return Err(e.into()),
        Ok(meta) if meta.size != want.size => {
            Some(format!("{} bytes, the index says {}", meta.size, want.size))
        }
        Ok(meta) => {
            // Same ETag as the primary's copy means same bytes; otherwise hash it.
            let same = if is_primary {
                false
            } else {
                p.store.head(key).await.is_ok_and(|m| m.etag == meta.etag)
            };
            if same {
                None
            } else {
                let (body, _) = store.get(key).await?;
                let sha = hex(&Sha256::digest(&body));
                (sha != want.sha256)
                    .then(|| format!("SHA-256 {sha}, the index says {}", want.sha256))
            }
        }
    };
    if let Some(problem) = problem {
        found(key.to_string(), problem, repair);
        if repair {
            let (body, meta) = p.store.get(key).await?;
            let opts = raptr_store::PutOptions {
                content_type: meta.content_type,
                cache_control: Some(CACHE_IMMUTABLE.into()),
                ..Default::default()
            };
            store.put(key, body, opts).await?;
        }
    }
    Ok(())
}
