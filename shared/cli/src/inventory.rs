//! `list`, `show` and `search`: what a repository holds, read from its link
//! state and manifests (see `raptr_core::inventory`).

use std::process::ExitCode;

use raptr_core::config::Config;
use raptr_core::inventory::{self, Linked};
use raptr_core::publish::state::State;
use raptr_formats::bundle::Kind;

use crate::repo::{open, runtime, Opened};
use crate::CliError;

struct Loaded {
    opened: Opened,
    config: Config,
    state: State,
}

async fn load(repo: &str) -> Result<Loaded, CliError> {
    let opened = open(repo, false).await?;
    let config = crate::repo::load_config(&opened).await?;
    let (state, _) = State::load(opened.store.as_ref())
        .await
        .map_err(|e| CliError(format!("{repo}: cannot read the publish state: {e}")))?;
    Ok(Loaded {
        opened,
        config,
        state,
    })
}

impl Loaded {
    async fn linked(&mut self, dists: &[String]) -> Result<Vec<Linked>, CliError> {
        inventory::linked(self.opened.store.as_ref(), &mut self.state, dists)
            .await
            .map_err(|e| {
                CliError(format!(
                    "{}: cannot read the link state: {e}",
                    self.opened.name
                ))
            })
    }

    fn distributions(&self) -> Vec<String> {
        inventory::distributions(&self.config, &self.state)
    }

    /// What the answer is as of: the generation last published, and the
    /// accepted changes waiting for the next publish.
    async fn as_of(&self) -> AsOf {
        // A count past this many is "many": the line says only that.
        const LOOK: usize = 1000;
        let waiting = match self.opened.journal.pending(LOOK).await {
            Ok(changes) => Some(
                changes
                    .iter()
                    .filter(|c| !self.state.applied.contains(&c.seq))
                    .count(),
            ),
            Err(_) => None,
        };
        AsOf {
            generation: self.state.generation,
            waiting,
        }
    }
}

#[derive(Debug, serde::Serialize)]
struct AsOf {
    /// The generation the answer reflects (0: never published).
    generation: u64,
    /// Accepted uploads and requests the next publish applies (`null` if
    /// the journal could not be read).
    waiting: Option<usize>,
}

impl std::fmt::Display for AsOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.generation == 0 {
            write!(f, "as of no publish yet")?;
        } else {
            write!(f, "as of generation {}", self.generation)?;
        }
        match self.waiting {
            Some(0) => Ok(()),
            Some(n) => write!(
                f,
                "; {n} accepted file(s) and request(s) wait for the next publish"
            ),
            None => write!(f, "; the journal of waiting changes could not be read"),
        }
    }
}

/// `raptr list [DIST[/COMPONENT]] [--package P]`
pub fn list(
    repo: &str,
    place: Option<&str>,
    package: Option<&str>,
    json: bool,
) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let mut l = load(repo).await?;
        let all = l.distributions();
        // A snapshot's suite: DIST/_NAME (no component starts with `_`).
        if let Some((d, n)) = place.and_then(|p| p.split_once("/_")) {
            if !l.state.snapshots.get(d).is_some_and(|m| m.contains_key(n)) {
                return Err(CliError(format!(
                    "{repo} has no snapshot {n} of {d}; `raptr --repo {repo} snapshots` lists them"
                )));
            }
            let rows: Vec<Linked> =
                inventory::snapshot_linked(l.opened.store.as_ref(), &mut l.state, d, n)
                    .await
                    .map_err(|e| {
                        CliError(format!("{repo}: cannot read the snapshot's links: {e}"))
                    })?
                    .into_iter()
                    .filter(|r| package.is_none_or(|p| r.names(p)))
                    .collect();
            let as_of = l.as_of().await;
            let what = format!(" linked in snapshot {n} of {d} (it never changes)");
            print_list(repo, &as_of, &rows, &[], &what, json);
            return Ok(ExitCode::from(u8::from(
                rows.is_empty() && package.is_some(),
            )));
        }
        let (dists, component) = match place {
            None => (all.clone(), None),
            Some(p) => {
                let (d, c) = match p.split_once('/') {
                    Some((d, c)) => (d, Some(c)),
                    None => (p, None),
                };
                if !all.iter().any(|x| x == d) {
                    return Err(CliError(format!(
                        "{repo} has no distribution {d}; it has {}",
                        all.join(", ")
                    )));
                }
                if let Some(c) = c {
                    let known = inventory::components(&l.config);
                    if !known.contains(c) {
                        return Err(CliError(format!(
                            "{repo} has no component {c}; it has {}",
                            known.into_iter().collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
                (vec![d.to_string()], c)
            }
        };
        let rows: Vec<Linked> = l
            .linked(&dists)
            .await?
            .into_iter()
            .filter(|r| component.is_none_or(|c| r.component == c))
            .filter(|r| package.is_none_or(|p| r.names(p)))
            .collect();
        // Nothing here, but elsewhere: say where.
        let elsewhere = match (package, rows.is_empty(), dists.len() < all.len()) {
            (Some(p), true, true) => {
                let others: Vec<String> =
                    all.iter().filter(|d| !dists.contains(d)).cloned().collect();
                l.linked(&others)
                    .await?
                    .into_iter()
                    .filter(|r| r.names(p))
                    .collect()
            }
            _ => Vec::new(),
        };
        let as_of = l.as_of().await;
        let of = package.map(|p| format!(" of {p}")).unwrap_or_default();
        let what = format!("{of} linked in {}", place.unwrap_or("the repository"));
        print_list(repo, &as_of, &rows, &elsewhere, &what, json);
        Ok(ExitCode::from(u8::from(
            rows.is_empty() && package.is_some(),
        )))
    })
}

/// `list`'s answer: the rows, then how many and what (`what` follows the
/// count: " linked in stable"), as of when, and
/// where a package missing here is linked instead.
fn print_list(
    repo: &str,
    as_of: &AsOf,
    rows: &[Linked],
    elsewhere: &[Linked],
    what: &str,
    json: bool,
) {
    if json {
        crate::output::print(&serde_json::json!({
            "repo": repo,
            "as_of": as_of,
            "links": rows,
            "elsewhere": elsewhere,
        }));
        return;
    }
    print_rows(rows);
    println!("{} bundle version(s){what}, {as_of}", rows.len());
    for r in elsewhere {
        println!(
            "  {} {} is linked in {}/{}",
            r.bundle, r.version, r.distribution, r.component
        );
    }
}

fn print_rows(rows: &[Linked]) {
    let place = |r: &Linked| format!("{}/{}", r.distribution, r.component);
    let w_place = rows.iter().map(|r| place(r).len()).max().unwrap_or(0);
    let w_bundle = rows.iter().map(|r| r.bundle.len()).max().unwrap_or(0);
    let w_version = rows.iter().map(|r| r.version.len()).max().unwrap_or(0);
    let w_arch = rows
        .iter()
        .map(|r| r.architectures.join(",").len())
        .max()
        .unwrap_or(0);
    for r in rows {
        println!(
            "{:w_place$}  {:w_bundle$}  {:w_version$}  {:w_arch$}  {}",
            place(r),
            r.bundle,
            r.version,
            r.architectures.join(","),
            r.packages.join(",")
        );
    }
}

/// `raptr search PATTERN`: bundles and binary packages whose name matches,
/// in every distribution.
pub fn search(repo: &str, pattern: &str, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let mut l = load(repo).await?;
        let dists = l.distributions();
        let rows: Vec<Linked> = l
            .linked(&dists)
            .await?
            .into_iter()
            .filter(|r| {
                inventory::matches(pattern, &r.bundle)
                    || r
                        .packages
                        .iter()
                        .any(|p| p != "source" && inventory::matches(pattern, p))
            })
            .collect();
        let as_of = l.as_of().await;
        if json {
            crate::output::print(&serde_json::json!({
                "repo": repo,
                "as_of": as_of,
                "pattern": pattern,
                "links": rows,
            }));
        } else {
            print_rows(&rows);
            println!(
                "{} bundle version(s) match {pattern:?} (a name containing it, or * and ? as in the shell), {as_of}",
                rows.len()
            );
        }
        Ok(ExitCode::from(if rows.is_empty() { 1 } else { 0 }))
    })
}

/// `raptr show BUNDLE [VERSION]`
pub fn show(
    repo: &str,
    bundle: &str,
    version: Option<&str>,
    json: bool,
) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let mut l = load(repo).await?;
        let versions = inventory::versions(
            l.opened.store.as_ref(),
            &l.config,
            &mut l.state,
            bundle,
        )
        .await
        .map_err(|e| CliError(format!("{repo}: cannot read {bundle}: {e}")))?;
        if versions.is_empty() {
            return Err(not_a_bundle(&mut l, repo, bundle).await);
        }
        let all: Vec<String> = versions.iter().map(|v| v.version.clone()).collect();
        let chosen: Vec<_> = match version {
            None => versions,
            Some(want) => {
                let found: Vec<_> = versions
                    .into_iter()
                    .filter(|v| v.version == want || without_epoch(&v.version) == want)
                    .collect();
                if found.is_empty() {
                    return Err(CliError(format!(
                        "{repo}: the pool has no {bundle} {want}; its versions are {}",
                        all.join(", ")
                    )));
                }
                found
            }
        };
        let as_of = l.as_of().await;
        if json {
            crate::output::print(&serde_json::json!({
                "repo": repo,
                "as_of": as_of,
                "bundle": bundle,
                "versions": chosen,
            }));
            return Ok(ExitCode::SUCCESS);
        }
        for v in &chosen {
            println!("{} {} (component {}, {})", v.bundle, v.version, v.component, v.pool_dir);
            if let Some(at) = &v.uploaded_at {
                println!("  uploaded {at} by {}", v.uploaders.join(", "));
            }
            if v.files.is_empty() {
                println!("  removed: the pool's manifest no longer lists it");
            } else if v.linked_in.is_empty() {
                println!("  linked in: no distribution");
            }
            for (dist, files) in &v.linked_in {
                let of = if files.len() == v.files.iter().filter(|f| !matches!(f.kind, Kind::Changes | Kind::Buildinfo)).count() {
                    "every file".to_string()
                } else {
                    files.join(" ")
                };
                println!("  linked in {dist}: {of}");
            }
            for (suite, files) in &v.in_snapshots {
                println!("  in snapshot {suite}: {} file(s)", files.len());
            }
            if !v.files.is_empty() {
                println!("  files:");
            }
            let w = v.files.iter().map(|f| f.name.len()).max().unwrap_or(0);
            for f in &v.files {
                let what = match (&f.package, &f.architecture) {
                    (Some(p), Some(a)) if p != "source" => format!("{p} {a}"),
                    _ => format!("{:?}", f.kind).to_lowercase(),
                };
                println!(
                    "    {:w$}  {what}  {} bytes  sha256 {}",
                    f.name, f.size, f.sha256
                );
            }
            for (name, u) in &v.unreferenced {
                println!(
                    "  {name}: no distribution links it since {}; the first purge from {} deletes it",
                    u.since, u.purge_after
                );
            }
        }
        println!("links {as_of}");
        Ok(ExitCode::SUCCESS)
    })
}

fn without_epoch(v: &str) -> &str {
    v.split_once(':').map_or(v, |(_, rest)| rest)
}

/// The error for a name the pool has no bundle of: a binary package's
/// name says which source it belongs to.
async fn not_a_bundle(l: &mut Loaded, repo: &str, name: &str) -> CliError {
    let dists = l.distributions();
    let rows = match l.linked(&dists).await {
        Ok(rows) => rows,
        Err(e) => return e,
    };
    let mut sources: Vec<String> = rows
        .iter()
        .filter(|r| r.names(name))
        .map(|r| format!("{} {} ({})", r.bundle, r.version, r.distribution))
        .collect();
    sources.dedup();
    if let Some(first) = rows.iter().find(|r| r.names(name)) {
        return CliError(format!(
            "{name} is a binary package, not a bundle: it belongs to source {}; run `raptr --repo {repo} show {}`",
            sources.join(", "),
            first.bundle
        ));
    }
    CliError(format!(
        "{repo}: no bundle {name} in the pool; `raptr --repo {repo} search {name}` finds names containing it"
    ))
}

/// One snapshot, as `raptr snapshots` lists it.
#[derive(Debug, serde::Serialize)]
struct SnapshotRow {
    distribution: String,
    name: String,
    /// The suite path apt is given (`DIST/_NAME`).
    suite: String,
    taken_at: String,
    files: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    by: Option<String>,
}

/// `raptr snapshots [DIST]`
pub fn snapshots(repo: &str, dist: Option<&str>, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let l = load(repo).await?;
        if let Some(d) = dist {
            let all = l.distributions();
            if !all.iter().any(|x| x == d) {
                return Err(CliError(format!(
                    "{repo} has no distribution {d}; it has {}",
                    all.join(", ")
                )));
            }
        }
        let rows: Vec<SnapshotRow> = l
            .state
            .snapshots
            .iter()
            .filter(|(d, _)| dist.is_none_or(|x| x == d.as_str()))
            .flat_map(|(d, m)| {
                m.iter().map(move |(n, s)| SnapshotRow {
                    distribution: d.clone(),
                    name: n.clone(),
                    suite: raptr_core::snapshot::suite_path(d, n),
                    taken_at: s.taken_at.clone(),
                    files: s.files,
                    by: s.by.clone(),
                })
            })
            .collect();
        let as_of = l.as_of().await;
        if json {
            crate::output::print(&serde_json::json!({
                "repo": repo,
                "as_of": as_of,
                "snapshots": rows,
            }));
        } else {
            let url = crate::repo::apt_url(&l.opened, &l.config);
            for r in &rows {
                println!(
                    "{}  {}  {} file(s)  taken {}{}",
                    r.suite,
                    r.name,
                    r.files,
                    r.taken_at,
                    r.by.as_deref()
                        .map(|b| format!(" by {b}"))
                        .unwrap_or_default()
                );
            }
            if let Some(r) = rows.first() {
                let comps = l
                    .config
                    .primary_layout()
                    .distributions
                    .get(&r.distribution)
                    .map(|d| d.components.clone())
                    .unwrap_or_default();
                println!(
                    "apt pins a machine to one with, for example:\n  {}",
                    raptr_core::snapshot::deb_line(&url, &r.distribution, &r.name, &comps)
                );
            }
            println!("{} snapshot(s), {as_of}", rows.len());
        }
        Ok(ExitCode::SUCCESS)
    })
}
