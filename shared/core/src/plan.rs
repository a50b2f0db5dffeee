//! What a dry-run request would change: its files against the link state
//! of the last publish (changes still waiting in the journal are not
//! counted).

use std::collections::BTreeSet;

use raptr_store::{ObjectStore, StoreError};
use serde::{Deserialize, Serialize};

use crate::publish::state::State;
use crate::request::Action;

/// One change a request would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// `link` or `unlink` in `distribution`; `remove`: dropped from the
    /// pool's manifest, deleted at the first purge after the grace period.
    pub action: Action,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
    /// The pool key.
    pub file: String,
}

/// The changes `action` on `files` (pool keys) would make in
/// `distribution`, and how many files it would leave as they are.
pub async fn plan(
    store: &dyn ObjectStore,
    action: Action,
    distribution: Option<&str>,
    files: &[String],
) -> Result<(Vec<Planned>, usize), StoreError> {
    let (mut state, _) = State::load(store).await?;
    let dirs: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.rsplit_once('/').map(|(d, _)| d))
        .collect();
    state.links.load_dirs(store, dirs).await?;
    let linked_in = |state: &State, dist: &str, file: &str| {
        file.rsplit_once('/').is_some_and(|(dir, name)| {
            state
                .links
                .get(dist)
                .and_then(|d| d.get(dir))
                .is_some_and(|names| names.contains(name))
        })
    };
    let mut out = Vec::new();
    let mut unchanged = 0;
    for file in files {
        let planned = |action, distribution: Option<&str>| Planned {
            action,
            distribution: distribution.map(str::to_string),
            file: file.clone(),
        };
        match (action, distribution) {
            (Action::Link, Some(d)) if !linked_in(&state, d, file) => {
                out.push(planned(Action::Link, Some(d)))
            }
            (Action::Unlink, Some(d)) if linked_in(&state, d, file) => {
                out.push(planned(Action::Unlink, Some(d)))
            }
            (Action::Remove, _) => {
                for d in state.links.dists() {
                    if linked_in(&state, &d, file) {
                        out.push(planned(Action::Unlink, Some(&d)));
                    }
                }
                out.push(planned(Action::Remove, None));
            }
            _ => unchanged += 1,
        }
    }
    Ok((out, unchanged))
}
