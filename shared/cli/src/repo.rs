//! The commands that work on a repository (`--repo R`): init, upload,
//! request. `R` is a directory (the local adapters: a directory store and a
//! file-locked table under `R/.raptr-meta/`) or `s3://BUCKET` (S3 and
//! DynamoDB from the standard AWS environment; `RAPTR_TABLE` names the table).
//! Either way the same core runs as in the Lambda functions.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use raptr_core::config::{valid_name, Config};
use raptr_core::ingest::{Ingest, ObjectEvent};
use raptr_core::keys::report_key;
use raptr_core::repo::{self, RepoError};
use raptr_core::report::Report;
use raptr_formats::bundle::Status;
use raptr_store::fs::{FsStore, META_DIR};
use raptr_store::table::{Journal, LocalTable, Table};
use raptr_store::{ObjectStore, PutOptions};

use crate::CliError;

/// An opened repository.
pub(crate) struct Opened {
    pub name: String,
    pub store: Arc<dyn ObjectStore>,
    pub table: Arc<dyn Table>,
    pub journal: Arc<dyn Journal>,
    /// The primary bucket name a default configuration gets.
    pub bucket: String,
    /// The directory of a local repository.
    pub dir: Option<PathBuf>,
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the async runtime: {e}")))
}

pub(crate) async fn open(repo: &str, create: bool) -> Result<Opened, CliError> {
    if let Some(bucket) = repo.strip_prefix("s3://") {
        let bucket = bucket.trim_end_matches('/');
        if !raptr_core::config::valid_bucket(bucket) {
            return Err(CliError(format!("{repo}: not a valid S3 bucket name")));
        }
        let (store, table) = raptr_aws::repository(bucket).await;
        let table = Arc::new(table);
        return Ok(Opened {
            name: repo.to_string(),
            store: Arc::new(store),
            table: table.clone(),
            journal: table,
            bucket: bucket.to_string(),
            dir: None,
        });
    }
    let dir = PathBuf::from(repo);
    if !dir.is_dir() {
        if !create {
            return Err(CliError(format!(
                "{repo}: no such directory; create the repository with `raptr --repo {repo} init`"
            )));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError(format!("{repo}: cannot create the directory: {e}")))?;
    }
    let store = FsStore::open(&dir).map_err(|e| crate::io_error(&dir, e))?;
    let table_dir = dir.join(META_DIR).join("table");
    let table = LocalTable::open(&table_dir).map_err(|e| crate::io_error(&table_dir, e))?;
    let table = Arc::new(table);
    Ok(Opened {
        name: repo.to_string(),
        store: Arc::new(store),
        table: table.clone(),
        journal: table,
        bucket: "local".into(),
        dir: Some(dir),
    })
}

pub(crate) fn repo_error(e: RepoError) -> CliError {
    CliError(e.to_string())
}

async fn ingest_for(opened: &Opened) -> Result<Ingest, CliError> {
    let config = repo::load_config(opened.store.as_ref(), &opened.name)
        .await
        .map_err(repo_error)?;
    Ok(
        Ingest::new(opened.store.clone(), opened.journal.clone(), config)
            .with_keyrings(Arc::new(crate::keys::KeyringReader(opened.dir.clone()))),
    )
}

pub(crate) fn uploader(opened: &Opened) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    if opened.name.starts_with("s3://") {
        format!("cli:{user}")
    } else {
        format!("local:{user}")
    }
}

pub fn init(repo: &str, config: Option<&Path>, json: bool) -> Result<ExitCode, CliError> {
    let document = match config {
        Some(path) => {
            let bytes = crate::read_limited(path, raptr_core::limits::CONFIG)?;
            Some(
                Config::from_json(&bytes, &path.display().to_string())
                    .map_err(|e| CliError(e.to_string()))?,
            )
        }
        None => None,
    };
    runtime()?.block_on(async {
        let opened = open(repo, true).await?;
        let mut lines: Vec<String> = Vec::new();
        let config = match document {
            Some(c) => {
                lines.extend(crate::keys::ensure_local_keys(&opened, &c)?);
                c
            }
            None => match repo::load_config(opened.store.as_ref(), repo).await {
                // Already initialised: nothing to make.
                Ok(existing) => existing,
                Err(_) => {
                    let mut c = Config::default_local(&opened.bucket);
                    if opened.dir.is_some() {
                        lines.push(crate::keys::new_local_key(&opened, &mut c)?);
                    }
                    c
                }
            },
        };
        let created = repo::init(opened.store.as_ref(), repo, &config)
            .await
            .map_err(repo_error)?;
        let key = (!lines.is_empty()).then(|| lines.join("\n"));
        let layout = config.primary_layout();
        let dists: Vec<&str> = layout.distributions.keys().map(String::as_str).collect();
        if json {
            println!(
                "{}",
                serde_json::json!({"repo": repo, "created": created, "distributions": dists, "signing_key": key})
            );
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(k) = &key {
            println!("{k}");
        }
        if created {
            println!(
                "initialised {repo}: distributions {}, {} replica(s)",
                dists.join(", "),
                config.replicas.len()
            );
        } else {
            println!("{repo}: already initialised with this configuration; nothing changed");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Files named on the command line: each file, and the regular files of each
/// folder (not recursing).
fn files_to_upload(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, CliError> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    let mut add = |path: PathBuf| -> Result<(), CliError> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| CliError(format!("{}: not a UTF-8 file name", path.display())))?
            .to_string();
        if let Some((_, first)) = out.iter().find(|(n, _)| n == &name) {
            return Err(CliError(format!(
                "{}: the same file name as {}; one folder holds one file of a name",
                path.display(),
                first.display()
            )));
        }
        out.push((name, path));
        Ok(())
    };
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| crate::io_error(path, e))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| crate::io_error(path, e))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .collect();
            entries.sort();
            for e in entries {
                add(e)?;
            }
        } else {
            add(path.clone())?;
        }
    }
    if out.is_empty() {
        return Err(CliError("no files to upload".into()));
    }
    Ok(out)
}

/// An upload id no other `raptr upload` shares, even one started in the
/// same millisecond on another machine: the time, this process, and 64
/// random bits.
fn new_upload_id() -> String {
    format!(
        "local-{}-{}-{:016x}",
        raptr_core::time::now_ms(),
        std::process::id(),
        rand::random::<u64>()
    )
}

pub fn upload(
    repo: &str,
    target: &str,
    paths: &[PathBuf],
    upload_id: Option<&str>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let (dist, component) = target
        .split_once('/')
        .filter(|(d, c)| valid_name(d) && valid_name(c))
        .ok_or_else(|| {
            CliError(format!(
                "{target}: give the destination as DISTRIBUTION/COMPONENT, e.g. stable/main"
            ))
        })?;
    let files = files_to_upload(paths)?;
    let upload_id = match upload_id {
        Some(id) => id.to_string(),
        None => new_upload_id(),
    };
    let folder = format!("incoming/{dist}/{component}/{upload_id}");
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let ingest = ingest_for(&opened).await?;
        let uploader = uploader(&opened);
        let total = files.len();
        let mut keys = Vec::with_capacity(total);
        for (i, (name, path)) in files.iter().enumerate() {
            let key = format!("{folder}/{name}");
            if !json && total > 1 {
                eprintln!("[{}/{total}] {name}", i + 1);
            }
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| crate::io_error(path, e))?;
            opened
                .store
                .put_stream(&key, Box::pin(file), PutOptions::default())
                .await
                .map_err(|e| CliError(format!("{}: upload failed: {e}", path.display())))?;
            ingest
                .handle(&ObjectEvent {
                    key: key.clone(),
                    uploader: uploader.clone(),
                })
                .await
                .map_err(|e| CliError(format!("{key}: {e}; run the upload again to resume")))?;
            keys.push(key);
        }
        // Later files may have settled earlier ones (a .dsc's tarballs): the
        // reports have the final word.
        let mut reports = Vec::with_capacity(keys.len());
        for key in &keys {
            let report = Report::read(opened.store.as_ref(), key)
                .await
                .map_err(|e| CliError(e.to_string()))?
                .ok_or_else(|| {
                    CliError(format!(
                        "{key}: no report was written ({})",
                        report_key(key)
                    ))
                })?;
            reports.push(report);
        }
        print_reports(&reports, json, &format!("{folder}/"));
        Ok(exit_for(&reports))
    })
}

pub fn request(repo: &str, path: &Path, json: bool) -> Result<ExitCode, CliError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| n.ends_with(".json"))
        .ok_or_else(|| CliError(format!("{}: a request is a .json file", path.display())))?;
    let bytes = crate::read_limited(path, raptr_core::request::MAX_REQUEST as u64)?;
    // The key says what the request does and where (README, "Requests"):
    // taken from the body; a body too broken to place goes to
    // requests/<name>, and its report says why.
    let key = raptr_core::request::key_for(&bytes, name)
        .unwrap_or_else(|| format!("{}{name}", raptr_core::keys::REQUESTS));
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let ingest = ingest_for(&opened).await?;
        opened
            .store
            .put(&key, bytes.into(), PutOptions::default())
            .await
            .map_err(|e| CliError(format!("{}: upload failed: {e}", path.display())))?;
        ingest
            .handle(&ObjectEvent {
                key: key.clone(),
                uploader: uploader(&opened),
            })
            .await
            .map_err(|e| CliError(format!("{key}: {e}; run the request again")))?;
        let report = Report::read(opened.store.as_ref(), &key)
            .await
            .map_err(|e| CliError(e.to_string()))?
            .ok_or_else(|| CliError(format!("{key}: no report was written")))?;
        let reports = [report];
        print_reports(&reports, json, "requests/");
        Ok(exit_for(&reports))
    })
}

fn exit_for(reports: &[Report]) -> ExitCode {
    if reports.iter().any(|r| r.status == Some(Status::Rejected)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_reports(reports: &[Report], json: bool, place: &str) {
    let out = std::io::stdout();
    let mut out = out.lock();
    if json {
        let _ = writeln!(out, "{:#}", serde_json::json!({ "reports": reports }));
        return;
    }
    let count = |s: Status| reports.iter().filter(|r| r.status == Some(s)).count();
    for r in reports {
        let status = r.status.map_or("unknown", |s| match s {
            Status::Accepted => "accepted",
            Status::Skipped => "skipped",
            Status::Rejected => "rejected",
            Status::Pending => "pending",
        });
        let detail = match (&r.pool_key, &r.reason, r.journal_seq) {
            (_, Some(reason), _) => reason.clone(),
            (Some(pool), None, _) => format!("{} -> {pool}", r.key),
            (None, None, Some(seq)) => format!("{} (journal entry {seq})", r.key),
            (None, None, None) => r.key.clone(),
        };
        let _ = writeln!(out, "{status}: {detail}");
        for w in &r.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    let _ = writeln!(
        out,
        "{place}: {} object(s), {} accepted, {} skipped, {} rejected, {} pending",
        reports.len(),
        count(Status::Accepted),
        count(Status::Skipped),
        count(Status::Rejected),
        count(Status::Pending)
    );
}
