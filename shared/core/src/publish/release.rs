//! Writing a distribution's `Release`, `Release.gpg` and `InRelease` so
//! that what a bucket serves never goes back.
//!
//! The three files are written in that order (InRelease last: apt reads it
//! first), each only over the version this writer read just before, and
//! not at all if the bucket already serves a newer one (a later `Date:`).
//! A publisher that lost its lease and comes back therefore cannot replace
//! a newer generation's signature with its older one, on the primary or on
//! a replica, even if it was paused between its last check of the lease
//! and the write: the object changed meanwhile, so the write fails.

use bytes::Bytes;
use raptr_store::{ObjectStore, PutMode, StoreError};

use super::{content_type, options, PublishError, Result, CACHE_MUTABLE};

/// The three files of one distribution's signature.
#[derive(Debug, Clone)]
pub struct Signed {
    pub release: Bytes,
    pub detached: Bytes,
    pub inrelease: Bytes,
}

/// The names of the three files, in the order they are written.
pub const NAMES: [&str; 3] = ["Release", "Release.gpg", "InRelease"];

/// The `Date:` of a Release file or an InRelease, in milliseconds.
pub fn date_of(text: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(text).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("Date:"))
        .and_then(|d| crate::time::parse_rfc2822(d.trim()))
}

impl Signed {
    fn body(&self, name: &str) -> &Bytes {
        match name {
            "Release" => &self.release,
            "Release.gpg" => &self.detached,
            _ => &self.inrelease,
        }
    }

    /// Reads a distribution's three files from `store` (the primary, for a
    /// copy to a replica); refused if they are not of one signing (another
    /// publisher wrote between the reads).
    pub async fn read(store: &dyn ObjectStore, dist: &str) -> Result<Signed> {
        let mut bodies = Vec::with_capacity(3);
        // InRelease first: if another publisher writes meanwhile, the
        // Release read after it shows a later date.
        for name in ["InRelease", "Release", "Release.gpg"] {
            let key = format!("dists/{dist}/{name}");
            let (body, _) = store.get_limited(&key, crate::limits::RELEASE).await?;
            bodies.push(body);
        }
        let detached = bodies.pop().unwrap_or_default();
        let release = bodies.pop().unwrap_or_default();
        let inrelease = bodies.pop().unwrap_or_default();
        if date_of(&inrelease) != date_of(&release) {
            return Err(overtaken(
                dist,
                "the primary's Release changed while it was read",
            ));
        }
        Ok(Signed {
            release,
            detached,
            inrelease,
        })
    }

    /// Writes the three files of `dist` to `store`, each over the version
    /// read here, unless `store` serves a newer signing already. A file
    /// already as it should be is left alone; `Ok(false)` when all three
    /// were (nothing written).
    pub async fn write(&self, store: &dyn ObjectStore, dist: &str) -> Result<bool> {
        let ours = date_of(&self.release);
        let mut plan = Vec::with_capacity(3);
        let mut theirs = None;
        for name in NAMES {
            let key = format!("dists/{dist}/{name}");
            let mode = match store.get_limited(&key, crate::limits::RELEASE).await {
                Ok((body, meta)) => {
                    if name != "Release.gpg" {
                        // InRelease's date wins over Release's.
                        theirs = date_of(&body).or(theirs);
                    }
                    if body == *self.body(name) {
                        continue;
                    }
                    PutMode::IfMatch(meta.etag)
                }
                Err(StoreError::NotFound { .. }) => PutMode::CreateOnly,
                // Not a file of ours: replace it, if still the same.
                Err(StoreError::TooLarge { .. }) => PutMode::IfMatch(store.head(&key).await?.etag),
                Err(e) => return Err(e.into()),
            };
            plan.push((name, key, mode));
        }
        if let (Some(theirs), Some(ours)) = (theirs, ours) {
            if theirs > ours {
                return Err(overtaken(
                    dist,
                    &format!(
                        "dists/{dist} is already signed at {}, later than this run's {}",
                        crate::time::rfc2822(theirs),
                        crate::time::rfc2822(ours)
                    ),
                ));
            }
        }
        let wrote = !plan.is_empty();
        for (name, key, mode) in plan {
            let opts = options(content_type(name), CACHE_MUTABLE);
            match store
                .put(
                    &key,
                    self.body(name).clone(),
                    raptr_store::PutOptions { mode, ..opts },
                )
                .await
            {
                Ok(_) => {}
                Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {
                    return Err(overtaken(
                        dist,
                        &format!("{key} was written by someone else meanwhile"),
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(wrote)
    }
}

fn overtaken(dist: &str, why: &str) -> PublishError {
    PublishError::Overtaken(format!(
        "{dist}: not signed by this run: {why}; another publisher is ahead of it"
    ))
}
