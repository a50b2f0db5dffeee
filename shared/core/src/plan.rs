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

/// What restoring `dist` from the links it has (`have`) to a snapshot's
/// (`want`) changes: each file to link, then each file to unlink.
pub fn restore_diff(
    dist: &str,
    have: &crate::publish::links::Dirs,
    want: &crate::publish::links::Dirs,
) -> Vec<Planned> {
    let has = |m: &crate::publish::links::Dirs, dir: &str, n: &str| {
        m.get(dir).is_some_and(|names| names.contains(n))
    };
    let mut out = Vec::new();
    for (action, from, other) in [(Action::Link, want, have), (Action::Unlink, have, want)] {
        for (dir, names) in from {
            for n in names {
                if !has(other, dir, n) {
                    out.push(Planned {
                        action,
                        distribution: Some(dist.to_string()),
                        file: format!("{dir}/{n}"),
                    });
                }
            }
        }
    }
    out
}

/// What a snapshot, delete-snapshot, restore or retain request would do,
/// against the last publish: `Err` with the reason it is refused (a
/// snapshot name taken, a snapshot that is not there), else the answer of
/// a dry run (its reason, the planned changes, the versions retention
/// would retire). Requests that are not dry runs are checked the same way,
/// and the publisher checks again when it applies them.
pub async fn distribution_wide(
    store: &dyn ObjectStore,
    config: &crate::config::Config,
    request: &crate::request::Request,
) -> Result<Result<Wide, String>, StoreError> {
    let (Some(dist), action) = (request.distribution.as_deref(), request.action) else {
        return Ok(Err("\"distribution\" is required".into()));
    };
    let (mut state, _) = State::load(store).await?;
    let name = request.snapshot.as_deref().unwrap_or_default();
    let exists = state
        .snapshots
        .get(dist)
        .is_some_and(|m| m.contains_key(name));
    let mut out = Wide::default();
    // Only a dry run needs more than the names.
    let action = match action {
        Action::Snapshot | Action::DeleteSnapshot | Action::Restore if !request.dry_run => {
            if (action == Action::Snapshot) == exists {
                // Refused below as a dry run would be.
                action
            } else {
                return Ok(Ok(out));
            }
        }
        Action::Retain if !request.dry_run => return Ok(Ok(out)),
        a => a,
    };
    match action {
        Action::Snapshot => {
            if exists {
                return Ok(Err(format!(
                    "snapshot {name} of {dist} exists already; a snapshot never changes: \
                     choose another name, or delete it first"
                )));
            }
            state.links.load_dist(store, dist).await?;
            let files: usize = state
                .links
                .get(dist)
                .map_or(0, |d| d.values().map(|n| n.len()).sum());
            out.reason = format!(
                "would freeze {files} file(s) of {dist} as snapshot {name}, published at dists/{}/",
                crate::snapshot::suite_path(dist, name)
            );
        }
        Action::DeleteSnapshot | Action::Restore if !exists => {
            let names: Vec<String> = state
                .snapshots
                .get(dist)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            return Ok(Err(format!(
                "{dist} has no snapshot {name} as of the last publish ({}; a snapshot still \
                 waiting in the journal can be named once it is published)",
                if names.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("its snapshots are {}", names.join(", "))
                }
            )));
        }
        Action::DeleteSnapshot => {
            out.reason = format!(
                "would delete snapshot {name} of {dist}: its published files go after the grace \
                 period, the pool files only it references at the first purge after that"
            );
        }
        Action::Restore => {
            let id = crate::snapshot::id(dist, name);
            state.links.load_dist(store, dist).await?;
            state.frozen.load_dist(store, &id).await?;
            let empty = crate::publish::links::Dirs::new();
            out.planned = restore_diff(
                dist,
                state.links.get(dist).unwrap_or(&empty),
                state.frozen.get(&id).unwrap_or(&empty),
            );
            let linked = out
                .planned
                .iter()
                .filter(|p| p.action == Action::Link)
                .count();
            out.reason = format!(
                "would restore {dist} to snapshot {name}: link {linked} file(s), unlink {}",
                out.planned.len() - linked
            );
        }
        Action::Retain => {
            let configured = config
                .primary_layout()
                .distributions
                .get(dist)
                .and_then(|d| d.retention);
            let given = (request.keep.is_some() || request.max_age_days.is_some()).then_some(
                crate::config::Policy {
                    keep: request.keep,
                    max_age_days: request.max_age_days,
                },
            );
            let Some(policy) = given.or(configured) else {
                return Ok(Err(format!("distribution {dist} has no retention policy")));
            };
            state.links.load_dist(store, dist).await?;
            let mut manifests = crate::publish::segment::Manifests::new();
            out.retired = crate::publish::retention::evaluate(
                store,
                &state.links,
                dist,
                &policy,
                crate::time::now_ms(),
                None,
                &mut manifests,
            )
            .await?;
            out.reason = format!(
                "would unlink {} file(s) of older versions from {dist}",
                out.retired.len()
            );
        }
        _ => {}
    }
    Ok(Ok(out))
}

/// The answer [`distribution_wide`] gives a request it does not refuse.
#[derive(Debug, Clone, Default)]
pub struct Wide {
    pub reason: String,
    pub planned: Vec<Planned>,
    pub retired: Vec<crate::retain::Retired>,
}
