//! `link`, `unlink` and `remove` in one line: each writes exactly the
//! request document the JSON form would (README, "Requests") and submits
//! it as `raptr request` does.

use std::process::ExitCode;

use raptr_core::config::Config;
use raptr_core::request::{Action, Request};
use raptr_formats::layout::pool_prefix;

use crate::repo::{exit_for, new_request_name, open, print_reports, runtime, submit};
use crate::CliError;

/// What a one-line change acts on.
#[derive(Debug, clap::Args)]
pub struct What {
    /// The bundle (source package) name.
    pub bundle: String,
    /// A Debian version (with its epoch, if it has one), or `all`.
    pub version: String,
    /// The component (default: the only one the distribution has, or the
    /// only one whose pool holds the bundle).
    #[arg(long)]
    pub component: Option<String>,
    /// Only these binary packages (`source` for the source package), comma
    /// separated or repeated.
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub packages: Vec<String>,
    /// Only these architectures (`source` for the source package).
    #[arg(long, value_delimiter = ',', value_name = "ARCH,...")]
    pub architectures: Vec<String>,
    /// Print what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(
    repo: &str,
    action: Action,
    what: &What,
    distribution: Option<&str>,
    json: bool,
) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = crate::repo::load_config(&opened).await?;
        if let Some(d) = distribution {
            known_distribution(repo, &config, d)?;
        }
        let component = match &what.component {
            Some(c) => c.clone(),
            None => component_of(&opened, &config, distribution, &what.bundle).await?,
        };
        binary_not_bundle(
            &opened,
            &config,
            action,
            &what.bundle,
            &component,
            distribution,
        )
        .await?;
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let request = Request {
            action,
            bundle: Some(what.bundle.clone()),
            version: Some(what.version.clone()),
            component: Some(component),
            distribution: distribution.map(str::to_string),
            packages: some(&what.packages),
            architectures: some(&what.architectures),
            snapshot: None,
            keep: None,
            max_age_days: None,
            dry_run: what.dry_run,
        };
        let body = serde_json::to_vec_pretty(&request)
            .map_err(|e| CliError(format!("cannot write the request: {e}")))?;
        let name = format!(
            "{}.json",
            new_request_name(&format!("{}-{}", action.as_str(), what.bundle))
        );
        let report = submit(&opened, config, &body, &name).await?;
        let reports = [report];
        print_reports(repo, &reports, json, "requests/");
        Ok(exit_for(&reports))
    })
}

fn known_distribution(repo: &str, config: &Config, dist: &str) -> Result<(), CliError> {
    let dists = &config.primary_layout().distributions;
    if dists.contains_key(dist) {
        return Ok(());
    }
    let names: Vec<&str> = dists.keys().map(String::as_str).collect();
    Err(CliError(format!(
        "{repo} has no distribution {dist}; it has {}",
        names.join(", ")
    )))
}

/// The component a change without `--component` means: the only one the
/// distribution (or, for remove, the repository) has, else the only one
/// whose pool holds the bundle.
async fn component_of(
    opened: &crate::repo::Opened,
    config: &Config,
    distribution: Option<&str>,
    bundle: &str,
) -> Result<String, CliError> {
    let candidates: Vec<String> = match distribution {
        Some(d) => config.primary_layout().distributions[d].components.clone(),
        None => raptr_core::inventory::components(config)
            .into_iter()
            .collect(),
    };
    if let [only] = &candidates[..] {
        return Ok(only.clone());
    }
    let mut holding = Vec::new();
    for c in &candidates {
        if pool_holds(opened, c, bundle).await? {
            holding.push(c.clone());
        }
    }
    match &holding[..] {
        [only] => Ok(only.clone()),
        [] => Err(CliError(format!(
            "no version of {bundle} is in the pool of {}; `raptr --repo {} search {bundle}` finds similar names",
            candidates.join(" or "),
            opened.name
        ))),
        many => Err(CliError(format!(
            "{bundle} is in the pool of components {}: say which with --component",
            many.join(" and ")
        ))),
    }
}

/// A name the component's pool has no bundle of, but a linked binary
/// package has: refused, naming its source and the command that would work.
async fn binary_not_bundle(
    opened: &crate::repo::Opened,
    config: &Config,
    action: Action,
    name: &str,
    component: &str,
    distribution: Option<&str>,
) -> Result<(), CliError> {
    if pool_holds(opened, component, name).await? {
        return Ok(());
    }
    let Ok((mut state, _)) = raptr_core::publish::state::State::load(opened.store.as_ref()).await
    else {
        return Ok(());
    };
    let dists = raptr_core::inventory::distributions(config, &state);
    let Ok(rows) = raptr_core::inventory::linked(opened.store.as_ref(), &mut state, &dists).await
    else {
        return Ok(());
    };
    let Some(row) = rows.iter().find(|r| r.bundle != name && r.names(name)) else {
        return Ok(());
    };
    let place = match (action, distribution) {
        (Action::Link, Some(d)) => format!(" --to {d}"),
        (Action::Unlink, Some(d)) => format!(" --from {d}"),
        _ => String::new(),
    };
    Err(CliError(format!(
        "{name} is a binary package, not a bundle: its source is {} ({} in {}); run `raptr --repo {} {} {} {}{place} --packages {name}`",
        row.bundle,
        row.version,
        row.distribution,
        opened.name,
        action.as_str(),
        row.bundle,
        row.version,
    )))
}

/// Whether a component's pool holds anything of a bundle (one LIST).
async fn pool_holds(
    opened: &crate::repo::Opened,
    component: &str,
    bundle: &str,
) -> Result<bool, CliError> {
    let base = format!("pool/{component}/{}/{bundle}/", pool_prefix(bundle));
    let page = opened
        .store
        .list_page(&base, None)
        .await
        .map_err(|e| CliError(format!("{}: cannot list {base}: {e}", opened.name)))?;
    Ok(!page.objects.is_empty())
}

/// What a snapshot, delete-snapshot, restore or retention command asks.
#[derive(Debug, Default)]
pub struct Wide<'a> {
    pub snapshot: Option<&'a str>,
    pub keep: Option<u32>,
    pub max_age_days: Option<u32>,
    pub dry_run: bool,
}

/// `snapshot`, `delete-snapshot`, `restore` and `retention`: the request
/// document for the whole distribution, submitted as `raptr request` does.
/// A snapshot's answer ends with the `deb` line that pins a machine to it.
pub fn wide(
    repo: &str,
    action: Action,
    distribution: &str,
    what: &Wide<'_>,
    json: bool,
) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = crate::repo::load_config(&opened).await?;
        known_distribution(repo, &config, distribution)?;
        let request = Request {
            action,
            bundle: None,
            version: None,
            component: None,
            distribution: Some(distribution.to_string()),
            packages: None,
            architectures: None,
            snapshot: what.snapshot.map(str::to_string),
            keep: what.keep,
            max_age_days: what.max_age_days,
            dry_run: what.dry_run,
        };
        let body = serde_json::to_vec_pretty(&request)
            .map_err(|e| CliError(format!("cannot write the request: {e}")))?;
        let name = format!(
            "{}.json",
            new_request_name(&format!("{}-{distribution}", action.as_str()))
        );
        let components = config.primary_layout().distributions[distribution]
            .components
            .clone();
        let report = submit(&opened, config.clone(), &body, &name).await?;
        let reports = [report];
        print_reports(repo, &reports, json, "requests/");
        if !json {
            for r in &reports[0].retired {
                println!(
                    "  {} {} {} {} ({})",
                    if what.dry_run {
                        "would retire"
                    } else {
                        "retires"
                    },
                    r.package,
                    r.version,
                    r.architecture,
                    r.distribution
                );
            }
            let accepted = reports[0].status == Some(raptr_formats::bundle::Status::Accepted);
            if let (Action::Snapshot, Some(n), true, false) =
                (action, what.snapshot, accepted, what.dry_run)
            {
                println!(
                    "after the next publish, apt reads it with:\n  {}",
                    raptr_core::snapshot::deb_line(
                        &crate::repo::apt_url(&opened, &config),
                        distribution,
                        n,
                        &components
                    )
                );
            }
        }
        Ok(exit_for(&reports))
    })
}
