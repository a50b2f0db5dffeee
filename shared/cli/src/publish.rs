//! The publishing commands: `publish`, `purge`, `verify` on a repository. A local repository's replicas are directories beside
//! it, named after their buckets; an `s3://` repository's are S3 buckets.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use raptr_core::config::Config;
use raptr_core::progress::Progress;
use raptr_core::publish::{Publisher, Replica, Summary};
use raptr_store::fs::FsStore;
use raptr_store::ObjectStore;

use crate::repo::{open, runtime, Opened};
use crate::CliError;

pub(crate) async fn replicas(opened: &Opened, config: &Config) -> Result<Vec<Replica>, CliError> {
    let mut out = Vec::new();
    for r in &config.replicas {
        let store: Arc<dyn ObjectStore> = match &opened.dir {
            Some(dir) => {
                let parent = std::fs::canonicalize(dir)
                    .map_err(|e| crate::io_error(dir, e))?
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("/"));
                let path = parent.join(&r.bucket);
                std::fs::create_dir_all(&path).map_err(|e| crate::io_error(&path, e))?;
                Arc::new(FsStore::open(&path).map_err(|e| crate::io_error(&path, e))?)
            }
            None => Arc::new(raptr_aws::bucket_store(&r.bucket, &r.region).await),
        };
        let distributions = config
            .layouts
            .get(&r.layout)
            .map(|l| l.distributions.keys().cloned().collect())
            .unwrap_or_default();
        out.push(Replica {
            name: r.name.clone(),
            store,
            distributions,
        });
    }
    Ok(out)
}

async fn publisher(repo: &str) -> Result<Publisher, CliError> {
    let opened = open(repo, false).await?;
    let config = crate::repo::load_config(&opened).await?;
    let signer = crate::keys::signer(&opened, &config).await?;
    let replicas = replicas(&opened, &config).await?;
    let owner = format!("{}:{}", crate::repo::uploader(&opened), std::process::id());
    let mut publisher = Publisher::new(
        opened.store.clone(),
        opened.table.clone(),
        config,
        Arc::new(signer),
        replicas,
        owner,
    );
    // Long work (a whole index, a replica's first copy, a verify) says how
    // far it is every few seconds; short runs print nothing more.
    publisher.progress = Some(Arc::new(Progress::new(PROGRESS_EVERY, |line| {
        eprintln!("  ... {line}")
    })));
    Ok(publisher)
}

/// How often long work prints a progress line.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

pub fn publish(repo: &str, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let p = publisher(repo).await?;
        let summary = p
            .run()
            .await
            .map_err(|e| CliError(format!("{repo}: publish failed: {e}")))?;
        print_summary(repo, &summary, json);
        let lagging = summary.replicas.values().any(|r| r.error.is_some());
        Ok(if lagging {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

fn print_summary(repo: &str, s: &Summary, json: bool) {
    if json {
        let mut doc = serde_json::json!(s);
        doc["repo"] = repo.into();
        crate::output::print(&doc);
        return;
    }
    if !s.ran {
        println!("{repo}: another publisher is running; it was asked to publish again and will include everything pending");
        return;
    }
    for (name, r) in &s.replicas {
        match &r.error {
            None => println!("replica {name}: generation {}", r.generation),
            Some(e) => println!("replica {name}: still at generation {}: {e}", r.generation),
        }
    }
    for p in &s.purged {
        println!("purged: {p}");
    }
    for f in &s.verified {
        println!("verify: {f}");
    }
    let made = if s.generations.is_empty() {
        "nothing new to publish".to_string()
    } else {
        format!(
            "published generation {} ({} change(s), {} index file(s))",
            s.generations.last().copied().unwrap_or(0),
            s.changes,
            s.indices
        )
    };
    println!(
        "{repo}: {made}; serving generation {}; {} replica(s), {} lagging",
        s.generation,
        s.replicas.len(),
        s.replicas.values().filter(|r| r.error.is_some()).count()
    );
}

pub fn purge(repo: &str, dry_run: bool, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let p = publisher(repo).await?;
        let purged = p
            .purge(dry_run)
            .await
            .map_err(|e| CliError(format!("{repo}: purge failed: {e}")))?;
        let waiting = waiting(repo, &purged).await?;
        if json {
            crate::output::print(&serde_json::json!({
                "repo": repo,
                "dry_run": dry_run,
                "files": purged,
                "waiting": waiting.count,
                "next_eligible": waiting.next,
                "grace_period_hours": waiting.grace_hours,
            }));
        } else {
            let verb = if dry_run { "would purge" } else { "purged" };
            for f in &purged {
                println!("{verb}: {f}");
            }
            let rest = match (&waiting.next, waiting.count) {
                (Some(next), n) if n > 0 => format!(
                    "; {n} more unlinked file(s) wait for the {} h grace period, the first eligible from {next}",
                    waiting.grace_hours
                ),
                _ => "; no other unlinked file waits".into(),
            };
            println!("{repo}: {verb} {} pool file(s){rest}", purged.len());
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Unlinked pool files a purge left for later.
struct Waiting {
    count: usize,
    /// When the first of them may go (RFC 3339).
    next: Option<String>,
    grace_hours: u32,
}

async fn waiting(repo: &str, purged: &[String]) -> Result<Waiting, CliError> {
    let opened = open(repo, false).await?;
    let config = crate::repo::load_config(&opened).await?;
    let (state, _) = raptr_core::publish::state::State::load(opened.store.as_ref())
        .await
        .map_err(|e| CliError(format!("{repo}: cannot read the publish state: {e}")))?;
    let grace = u64::from(config.retention.grace_period_hours) * 3_600_000;
    let left: Vec<u64> = state
        .unreferenced
        .iter()
        .filter(|(k, _)| !purged.contains(k))
        .map(|(_, since)| since + grace)
        .collect();
    Ok(Waiting {
        count: left.len(),
        next: left.iter().min().map(|t| raptr_core::time::rfc3339(*t)),
        grace_hours: config.retention.grace_period_hours,
    })
}

pub fn verify(repo: &str, dry_run: bool, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let p = publisher(repo).await?;
        let pass = p
            .verify(dry_run, None)
            .await
            .map_err(|e| CliError(format!("{repo}: verify failed: {e}")))?;
        let findings = pass.findings;
        if json {
            crate::output::print(&serde_json::json!({
                "repo": repo,
                "dry_run": dry_run,
                "findings": findings,
            }));
        } else {
            for f in &findings {
                println!("{f}");
            }
            let repaired = findings.iter().filter(|f| f.repaired).count();
            println!("{repo}: {} problem(s), {repaired} repaired", findings.len());
        }
        let unrepaired = findings.iter().any(|f| !f.repaired);
        Ok(if unrepaired {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}
