//! Opening a repository: its configuration lives in its own primary bucket
//! ([`CONFIG_KEY`]), so every function and command reads the same document.

use bytes::Bytes;
use raptr_store::{ObjectStore, PutOptions, StoreError};

use crate::config::{Config, ConfigError};
use crate::keys::CONFIG_KEY;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(
        "{0}: not a raptr repository (no {CONFIG_KEY}); create it with `raptr --repo {0} init`"
    )]
    NotInitialised(String),
    #[error(
        "{0}: already has a different configuration in {CONFIG_KEY}; nothing was changed. \
         To change it, write the new document over {CONFIG_KEY} in the repository \
         (`aws s3 cp` for a bucket); the next run reads it"
    )]
    AlreadyInitialised(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration could not be read (as opposed to: it is not there).
    #[error("{repo}: {source}")]
    Unreadable { repo: String, source: StoreError },
}

/// Reads and validates the repository's configuration. `repo` names the
/// repository in errors.
pub async fn load_config(store: &dyn ObjectStore, repo: &str) -> Result<Config, RepoError> {
    match store.get_limited(CONFIG_KEY, crate::limits::CONFIG).await {
        Ok((body, _)) => Ok(Config::from_json(&body, &format!("{repo}/{CONFIG_KEY}"))?),
        Err(StoreError::NotFound { .. }) => Err(RepoError::NotInitialised(repo.to_string())),
        Err(source) => Err(RepoError::Unreadable {
            repo: repo.to_string(),
            source,
        }),
    }
}

/// Stores the configuration of a new repository. Initialising again with the
/// same document is a no-op (`Ok(false)`); with a different one, an error.
pub async fn init(store: &dyn ObjectStore, repo: &str, config: &Config) -> Result<bool, RepoError> {
    let mut body = serde_json::to_vec_pretty(config).map_err(|e| StoreError::Permanent {
        key: CONFIG_KEY.into(),
        source: Box::new(e),
    })?;
    body.push(b'\n');
    let opts = PutOptions {
        content_type: Some("application/json".into()),
        ..PutOptions::create_only()
    };
    match store.put(CONFIG_KEY, Bytes::from(body), opts).await {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyExists { .. }) => {
            if &load_config(store, repo).await? == config {
                Ok(false)
            } else {
                Err(RepoError::AlreadyInitialised(repo.to_string()))
            }
        }
        Err(e) => Err(e.into()),
    }
}
