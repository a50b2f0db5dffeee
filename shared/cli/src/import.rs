//! `raptr import`: another APT archive's packages into a distribution of
//! this repository, as its signature vouches for them (see
//! `raptr_core::import`). The upstream is `http(s)://`, `file:`/a
//! directory, or `s3://BUCKET`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use raptr_core::import::{self, ImportError, Target, Upstream};
use raptr_core::progress::Progress;
use raptr_core::signing::keyring::Keyring;
use raptr_store::ObjectStore;

use crate::repo::{ingest_with, open, runtime};
use crate::CliError;

/// What to import from where.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The upstream: http(s)://HOST/PATH, file:/PATH (or a directory), or
    /// s3://BUCKET; the directory holding dists/ (or a flat archive's).
    pub url: String,
    /// The suite to read (dists/SUITE/); leave it out for a flat archive.
    #[arg(long)]
    pub suite: Option<String>,
    /// Only these components (default: every one the Release lists).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub components: Vec<String>,
    /// Only these architectures (default: every one the Release lists;
    /// `all` packages come with each).
    #[arg(long, value_delimiter = ',', value_name = "ARCH,...")]
    pub architectures: Vec<String>,
    /// The public keys the upstream's Release must be signed by (armoured
    /// or binary, as `gpg --export` writes them, e.g. a distribution's
    /// archive keyring).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// Accept this upstream without any signature (a bad signature is
    /// refused all the same).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Only packages whose name matches one of these (`*` and `?`).
    #[arg(long, value_delimiter = ',', value_name = "PATTERN,...")]
    pub packages: Vec<String>,
    /// Also the source packages of what is imported.
    #[arg(long)]
    pub sources: bool,
    /// Only the newest N versions of each package and architecture.
    #[arg(long, value_name = "N")]
    pub newest: Option<usize>,
    /// Also what the selected packages depend on (Depends, Pre-Depends),
    /// resolved within the components and architectures read; what nothing
    /// there satisfies is listed.
    #[arg(long)]
    pub with_dependencies: bool,
    /// The distribution to import into.
    #[arg(long, value_name = "DIST")]
    pub to: String,
    /// The component to import into (default: the upstream's component of
    /// the same name, else the distribution's only one).
    #[arg(long)]
    pub component: Option<String>,
    /// The name this upstream goes by in upload folders, reports and its
    /// progress record (default: made from the URL and suite).
    #[arg(long)]
    pub name: Option<String>,
}

/// A usable upstream name made from `text`: lowercase letters, digits and
/// `.-`, at most 64.
fn name_from(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_matches(['-', '.']).to_string();
    out.chars()
        .take(64)
        .collect::<String>()
        .trim_end_matches(['-', '.'])
        .to_string()
}

async fn upstream_store(url: &str) -> Result<Arc<dyn ObjectStore>, CliError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(Arc::new(raptr_http::HttpStore::new(url).map_err(CliError)?));
    }
    if let Some(bucket) = url.strip_prefix("s3://") {
        let bucket = bucket.trim_end_matches('/');
        if !raptr_core::config::valid_bucket(bucket) {
            return Err(CliError(format!(
                "{url}: an s3:// upstream is a bucket whose root holds dists/ (a prefix inside a bucket is not supported)"
            )));
        }
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
        return Ok(Arc::new(raptr_aws::bucket_store(bucket, &region).await));
    }
    let path = PathBuf::from(url.strip_prefix("file:").unwrap_or(url));
    if !path.is_dir() {
        return Err(CliError(format!(
            "{url}: not a directory (an upstream is http(s)://, file:/PATH or s3://BUCKET)"
        )));
    }
    Ok(Arc::new(
        raptr_store::fs::FsStore::open(&path).map_err(|e| crate::io_error(&path, e))?,
    ))
}

/// How many bundles an import into this repository handles at once: one
/// for a directory (its writes queue on one lock and the disk's syncs),
/// several for a bucket (requests wait on the network).
/// `RAPTR_IMPORT_CONCURRENCY` overrides it.
fn concurrency(opened: &crate::repo::Opened) -> usize {
    std::env::var("RAPTR_IMPORT_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n: &usize| *n > 0)
        .unwrap_or(if opened.dir.is_some() {
            1
        } else {
            import::CONCURRENCY
        })
}

/// The keyring `--keyring` names, or none with `--allow-unsigned`;
/// neither is an error that says what to give.
fn keyring_arg(
    url: &str,
    path: Option<&std::path::Path>,
    allow_unsigned: bool,
) -> Result<Option<Keyring>, CliError> {
    match path {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| crate::io_error(path, e))?;
            Ok(Some(
                Keyring::parse(&bytes, &path.display().to_string()).map_err(CliError)?,
            ))
        }
        None if allow_unsigned => Ok(None),
        None => Err(CliError(format!(
            "{url}: give --keyring FILE (the keys its Release is signed by), or --allow-unsigned for an upstream that signs nothing"
        ))),
    }
}

pub fn run(repo: &str, args: &Args, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = crate::repo::load_config(&opened).await?;
        let keyring = keyring_arg(&args.url, args.keyring.as_deref(), args.allow_unsigned)?;
        let name = args.name.clone().unwrap_or_else(|| {
            let host = args.url.split("://").nth(1).unwrap_or(&args.url);
            name_from(&format!(
                "{host}-{}",
                args.suite.as_deref().unwrap_or("flat")
            ))
        });
        let upstream = Upstream {
            name,
            store: upstream_store(&args.url).await?,
            suite: args.suite.clone(),
            components: args.components.clone(),
            architectures: args.architectures.clone(),
            keyring,
            allow_unsigned: args.allow_unsigned,
            packages: args.packages.clone(),
            sources: args.sources,
            newest: args.newest,
            dependencies: args.with_dependencies,
        };
        let target = Target {
            distribution: args.to.clone(),
            component: args.component.clone(),
            concurrency: concurrency(&opened),
        };
        let (summary, refused) = one(&opened, &config, &upstream, &target).await?;
        print(
            repo,
            &upstream.name,
            &target,
            &summary,
            refused.as_deref(),
            json,
        );
        Ok(exit(&summary, refused.as_deref()))
    })
}

/// `raptr mirror sync [NAME...]`: every mirror the configuration declares
/// (or those named) brought up to date, one after the other.
pub fn sync(repo: &str, names: &[String], json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = crate::repo::load_config(&opened).await?;
        if let Some(unknown) = names
            .iter()
            .find(|n| !config.mirrors.iter().any(|m| &m.name == *n))
        {
            let known: Vec<&str> = config.mirrors.iter().map(|m| m.name.as_str()).collect();
            return Err(CliError(format!(
                "{repo} has no mirror {unknown}; its configuration declares {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        let reader = crate::keys::KeyringReader(opened.dir.clone());
        let ingest = ingest_with(&opened, config.clone());
        let progress = Progress::new(std::time::Duration::from_secs(2), |line| {
            eprintln!("  ... {line}")
        });
        let mut worst = ExitCode::SUCCESS;
        let mut docs = Vec::new();
        for m in config
            .mirrors
            .iter()
            .filter(|m| names.is_empty() || names.contains(&m.name))
        {
            let report = import::sync_mirror(
                m,
                upstream_store(&m.url).await.map_err(|e| e.0),
                &reader,
                &ingest,
                opened.store.as_ref(),
                &config,
                Some(&progress),
                None,
                concurrency(&opened),
            )
            .await
            .map_err(|e| CliError(format!("mirror {}: {e}", m.name)))?;
            if report.troubled() {
                worst = ExitCode::from(1);
            }
            if json {
                docs.push(serde_json::to_value(&report).unwrap_or_default());
            } else {
                let refused = matches!(
                    report.status,
                    import::SyncStatus::Refused | import::SyncStatus::Failed
                )
                .then(|| report.reason.clone().unwrap_or_default());
                print(
                    repo,
                    &m.name,
                    &m.target(1),
                    &report.summary,
                    refused.as_deref(),
                    false,
                );
            }
        }
        if json {
            crate::output::print(&serde_json::json!({ "repo": repo, "mirrors": docs }));
        }
        Ok(worst)
    })
}

/// One import: its summary, or why the whole upstream was refused.
async fn one(
    opened: &crate::repo::Opened,
    config: &raptr_core::config::Config,
    upstream: &Upstream,
    target: &Target,
) -> Result<(import::Summary, Option<String>), CliError> {
    let ingest = ingest_with(opened, config.clone());
    let progress = Progress::new(std::time::Duration::from_secs(2), |line| {
        eprintln!("  ... {line}")
    });
    one_with(&ingest, opened, config, upstream, target, &progress).await
}

async fn one_with(
    ingest: &raptr_core::ingest::Ingest,
    opened: &crate::repo::Opened,
    config: &raptr_core::config::Config,
    upstream: &Upstream,
    target: &Target,
    progress: &Progress,
) -> Result<(import::Summary, Option<String>), CliError> {
    match import::run(
        upstream,
        target,
        ingest,
        opened.store.as_ref(),
        config,
        Some(progress),
        None,
    )
    .await
    {
        Ok(s) => Ok((s, None)),
        Err(ImportError::Refused(why)) => Ok((import::Summary::default(), Some(why))),
        Err(e) => Err(CliError(format!("{}: {e}", upstream.name))),
    }
}

fn exit(summary: &import::Summary, refused: Option<&str>) -> ExitCode {
    ExitCode::from(u8::from(refused.is_some() || !summary.refused.is_empty()))
}

fn print(
    repo: &str,
    name: &str,
    target: &Target,
    summary: &import::Summary,
    refused: Option<&str>,
    json: bool,
) {
    if json {
        match refused {
            Some(why) => crate::output::print(&serde_json::json!({
                "repo": repo, "upstream": name, "refused": why,
            })),
            None => crate::output::print(&serde_json::json!({
                "repo": repo, "upstream": name, "summary": summary,
            })),
        }
        return;
    }
    if let Some(why) = refused {
        eprintln!("refused: {why}; nothing was imported");
        return;
    }
    if summary.unchanged {
        println!("{name}: its Release is the one the last complete import read; nothing to do");
        return;
    }
    for r in &summary.refused {
        println!("refused: {r}");
    }
    if summary.dependencies > 0 || summary.unresolved_count > 0 {
        println!(
            "{name}: {} package(s) added as dependencies; {} dependenc(ies) nothing in the upstream satisfies{}",
            summary.dependencies,
            summary.unresolved_count,
            if summary.unresolved.is_empty() { "" } else { ":" }
        );
        for u in &summary.unresolved {
            println!("  unresolved: {u}");
        }
    }
    println!(
        "{name}: {} package(s) selected in {} bundle(s); {} file(s) fetched ({} bytes), {} already in the pool, {} refused; into {} at the next publish",
        summary.selected,
        summary.bundles,
        summary.fetched,
        summary.bytes,
        summary.present,
        summary.refused.len(),
        target.distribution
    );
}

/// What to migrate from where.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The published repository: file:/PATH (or a directory) or s3://BUCKET,
    /// whose dists/ is listed for its suites; or http(s)://HOST/PATH with
    /// --suites.
    pub url: String,
    /// Only these suites (dists/SUITE/; required over http(s)://, which
    /// cannot be listed).
    #[arg(long, value_delimiter = ',', value_name = "SUITE,...")]
    pub suites: Vec<String>,
    /// Import upstream suite FROM into distribution TO (default: each
    /// suite into the distribution of the same name).
    #[arg(long = "map", value_delimiter = ',', value_name = "FROM=TO,...")]
    pub map: Vec<String>,
    /// The public keys its Releases are signed by (the key the old tool
    /// signed with).
    #[arg(long, value_name = "FILE")]
    pub keyring: Option<PathBuf>,
    /// Accept Releases without any signature (a bad one is refused all the
    /// same).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// The name the import goes by in upload folders, reports and progress
    /// records (each suite and component adds its own; default: made from
    /// the URL).
    #[arg(long)]
    pub name: Option<String>,
}

/// One suite's component, and what became of it.
#[derive(Debug, serde::Serialize)]
struct Migrated {
    suite: String,
    component: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    distribution: Option<String>,
    /// Why it was not imported (no such distribution or component here,
    /// a refused Release).
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<import::Summary>,
}

/// `raptr migrate`: every suite and component of a published repository,
/// with all their versions and sources, into this one's distributions.
pub fn migrate(repo: &str, args: &MigrateArgs, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = crate::repo::load_config(&opened).await?;
        let keyring = keyring_arg(&args.url, args.keyring.as_deref(), args.allow_unsigned)?;
        let store = upstream_store(&args.url).await?;
        let suites = if args.suites.is_empty() {
            let found = import::suites(store.as_ref()).await.map_err(|e| {
                CliError(format!(
                    "{}: cannot list its suites ({e}); name them with --suites",
                    args.url
                ))
            })?;
            if found.is_empty() {
                return Err(CliError(format!(
                    "{}: no dists/SUITE/Release or InRelease found; is this the directory holding dists/?",
                    args.url
                )));
            }
            found
        } else {
            args.suites.clone()
        };
        let mut map = std::collections::BTreeMap::new();
        for m in &args.map {
            let Some((from, to)) = m.split_once('=') else {
                return Err(CliError(format!("--map {m}: expected FROM=TO")));
            };
            if !suites.iter().any(|s| s == from) {
                return Err(CliError(format!(
                    "--map {m}: {} has no suite {from}; it has {}",
                    args.url,
                    suites.join(", ")
                )));
            }
            map.insert(from.to_string(), to.to_string());
        }
        let layout = &config.primary_layout().distributions;
        let base = args.name.clone().unwrap_or_else(|| {
            name_from(args.url.split("://").nth(1).unwrap_or(&args.url))
        });
        let ingest = ingest_with(&opened, config.clone());
        let progress = Progress::new(std::time::Duration::from_secs(2), |line| {
            eprintln!("  ... {line}")
        });
        let mut out: Vec<Migrated> = Vec::new();
        for suite in &suites {
            let dist_name = map.get(suite).cloned().unwrap_or_else(|| suite.clone());
            let skip = |component: &str, why: String| Migrated {
                suite: suite.clone(),
                component: component.to_string(),
                distribution: None,
                skipped: Some(why),
                summary: None,
            };
            let Some(dist) = layout.get(&dist_name) else {
                out.push(skip(
                    "",
                    format!(
                        "{repo} has no distribution {dist_name} (add it, or --map {suite}=DIST)"
                    ),
                ));
                continue;
            };
            let upstream = |name: String, components: Vec<String>| Upstream {
                name,
                store: store.clone(),
                suite: Some(suite.clone()),
                components,
                architectures: Vec::new(),
                keyring: keyring.clone(),
                allow_unsigned: args.allow_unsigned,
                packages: Vec::new(),
                sources: true,
                newest: None,
                dependencies: false,
            };
            let release = match upstream(base.clone(), Vec::new()).release().await {
                Ok((r, _)) => r,
                Err(ImportError::Refused(why)) => {
                    out.push(skip("", why));
                    continue;
                }
                Err(e) => return Err(CliError(format!("{}: {suite}: {e}", args.url))),
            };
            for component in &release.components {
                let into = if dist.components.contains(component) {
                    component.clone()
                } else if let [only] = &dist.components[..] {
                    only.clone()
                } else {
                    out.push(skip(
                        component,
                        format!(
                            "{dist_name} has no component {component} (it has {})",
                            dist.components.join(", ")
                        ),
                    ));
                    continue;
                };
                let up = upstream(
                    name_from(&format!("{base}-{suite}-{component}")),
                    vec![component.clone()],
                );
                let target = Target {
                    distribution: dist_name.clone(),
                    component: Some(into),
                    concurrency: concurrency(&opened),
                };
                eprintln!("{suite}/{component} -> {dist_name}/{}", target.component.as_deref().unwrap_or(""));
                let (summary, refused) = one_with(&ingest, &opened, &config, &up, &target, &progress).await?;
                out.push(match refused {
                    Some(why) => skip(component, why),
                    None => Migrated {
                        suite: suite.clone(),
                        component: component.clone(),
                        distribution: Some(dist_name.clone()),
                        skipped: None,
                        summary: Some(summary),
                    },
                });
            }
        }
        let troubled = out.iter().any(|m| {
            m.skipped.is_some() || m.summary.as_ref().is_some_and(|s| !s.refused.is_empty())
        });
        if json {
            crate::output::print(&serde_json::json!({ "repo": repo, "url": args.url, "migrated": out }));
        } else {
            let (mut files, mut present, mut refused) = (0, 0, 0);
            for m in &out {
                let place = if m.component.is_empty() {
                    m.suite.clone()
                } else {
                    format!("{}/{}", m.suite, m.component)
                };
                match (&m.skipped, &m.summary) {
                    (Some(why), _) => println!("skipped {place}: {why}"),
                    (None, Some(s)) if s.unchanged => println!(
                        "{place} -> {}: unchanged since the last migration",
                        m.distribution.as_deref().unwrap_or("")
                    ),
                    (None, Some(s)) => {
                        for r in &s.refused {
                            println!("refused: {r}");
                        }
                        files += s.fetched;
                        present += s.present;
                        refused += s.refused.len();
                        println!(
                            "{place} -> {}: {} package(s) in {} bundle(s); {} file(s) imported, {} already here, {} refused",
                            m.distribution.as_deref().unwrap_or(""),
                            s.selected,
                            s.bundles,
                            s.fetched,
                            s.present,
                            s.refused.len()
                        );
                    }
                    (None, None) => {}
                }
            }
            let skipped = out.iter().filter(|m| m.skipped.is_some()).count();
            println!(
                "migrated {} suite(s) of {}: {files} file(s) imported, {present} already here, {refused} refused, {skipped} part(s) skipped; run `raptr --repo {repo} publish` to serve them",
                suites.len(),
                args.url
            );
        }
        Ok(ExitCode::from(u8::from(troubled)))
    })
}
