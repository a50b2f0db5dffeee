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

pub fn run(repo: &str, args: &Args, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = crate::repo::load_config(&opened).await?;
        let keyring = match &args.keyring {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|e| crate::io_error(path, e))?;
                Some(Keyring::parse(&bytes, &path.display().to_string()).map_err(CliError)?)
            }
            None if args.allow_unsigned => None,
            None => {
                return Err(CliError(format!(
                    "{}: give --keyring FILE (the keys its Release is signed by), or --allow-unsigned for an upstream that signs nothing",
                    args.url
                )))
            }
        };
        let name = args.name.clone().unwrap_or_else(|| {
            let host = args.url.split("://").nth(1).unwrap_or(&args.url);
            name_from(&format!("{host}-{}", args.suite.as_deref().unwrap_or("flat")))
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
        };
        let target = Target {
            distribution: args.to.clone(),
            component: args.component.clone(),
        };
        let (summary, refused) = one(&opened, &config, &upstream, &target).await?;
        print(repo, &upstream.name, &target, &summary, refused.as_deref(), json);
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
        let mut worst = ExitCode::SUCCESS;
        let mut docs = Vec::new();
        for m in config
            .mirrors
            .iter()
            .filter(|m| names.is_empty() || names.contains(&m.name))
        {
            let keyring = match &m.keyring {
                None => None,
                Some(k) => Some(
                    raptr_core::signing::load::keyring(&reader, k)
                        .await
                        .map_err(|e| CliError(format!("mirror {}: {e}", m.name)))?,
                ),
            };
            let upstream = Upstream {
                name: m.name.clone(),
                store: upstream_store(&m.url).await?,
                suite: m.suite.clone(),
                components: m.components.clone(),
                architectures: m.architectures.clone(),
                keyring,
                allow_unsigned: m.allow_unsigned,
                packages: m.packages.clone(),
                sources: m.sources,
                newest: m.newest.map(|n| n as usize),
            };
            let target = Target {
                distribution: m.distribution.clone(),
                component: m.component.clone(),
            };
            let (summary, refused) = one(&opened, &config, &upstream, &target).await?;
            if json {
                docs.push(serde_json::json!({
                    "upstream": m.name, "summary": summary, "refused": refused,
                }));
            } else {
                print(repo, &m.name, &target, &summary, refused.as_deref(), false);
            }
            if exit(&summary, refused.as_deref()) != ExitCode::SUCCESS {
                worst = ExitCode::from(1);
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
    match import::run(
        upstream,
        target,
        &ingest,
        opened.store.as_ref(),
        config,
        Some(&progress),
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
