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

/// The ingest function's core over an opened repository and its
/// configuration (keyrings read as the CLI reads files).
pub(crate) fn ingest_with(opened: &Opened, config: Config) -> Ingest {
    Ingest::new(opened.store.clone(), opened.journal.clone(), config)
        .with_keyrings(Arc::new(crate::keys::KeyringReader(opened.dir.clone())))
}

pub(crate) async fn load_config(opened: &Opened) -> Result<Config, CliError> {
    repo::load_config(opened.store.as_ref(), &opened.name)
        .await
        .map_err(repo_error)
}

pub(crate) fn uploader(opened: &Opened) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    if opened.name.starts_with("s3://") {
        format!("cli:{user}")
    } else {
        format!("local:{user}")
    }
}

pub fn init(
    repo: &str,
    config: Option<&Path>,
    example: bool,
    json: bool,
) -> Result<ExitCode, CliError> {
    if example {
        return print_example(repo);
    }
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
    let new_dir = !repo.starts_with("s3://") && !Path::new(repo).exists();
    runtime()?.block_on(async {
        let opened = open(repo, true).await?;
        let mut lines: Vec<String> = Vec::new();
        let config = match document {
            Some(c) => {
                if let Err(e) = refuse_unworkable(&opened, &c).await {
                    if new_dir {
                        // Made by this command a moment ago, for nothing.
                        let _ = std::fs::remove_dir_all(repo);
                    }
                    return Err(e);
                }
                lines.extend(crate::keys::ensure_local_keys(&opened, &c)?);
                c
            }
            None => match repo::load_config(opened.store.as_ref(), repo).await {
                // Already initialised: nothing to make.
                Ok(existing) => existing,
                Err(RepoError::NotInitialised(_)) if opened.dir.is_none() => {
                    return Err(CliError(format!(
                        "{repo}: a bucket is initialised from a configuration document naming its region, replicas and signing key secret; \
                         `raptr --repo {repo} init --example > raptr.json` prints one to start from; edit it, then run `raptr --repo {repo} init raptr.json`"
                    )));
                }
                Err(RepoError::NotInitialised(_)) => {
                    let mut c = Config::default_local(&opened.bucket);
                    lines.push(crate::keys::new_local_key(&opened, &mut c)?);
                    c
                }
                Err(e) => return Err(repo_error(e)),
            },
        };
        let created = repo::init(opened.store.as_ref(), repo, &config)
            .await
            .map_err(|e| match e {
                RepoError::Store(e) => CliError(format!("{repo}: {e}")),
                e => repo_error(e),
            })?;
        let key = (!lines.is_empty()).then(|| lines.join("\n"));
        let layout = config.primary_layout();
        let dists: Vec<&str> = layout.distributions.keys().map(String::as_str).collect();
        if json {
            crate::output::print(&serde_json::json!({
                "repo": repo,
                "created": created,
                "distributions": dists,
                "signing_key": key,
            }));
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
        if let Some(dir) = &opened.dir {
            if config.replicas.is_empty() {
                println!(
                    "apt reads {0}/dists, {0}/pool and {0}/keys: serve or sync those three (the rest is raptr's own)",
                    dir.display()
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// A configuration to start from for `repo`: its bucket, the region of
/// the environment, a signing key secret to create, no replica.
fn print_example(repo: &str) -> Result<ExitCode, CliError> {
    let bucket = repo.strip_prefix("s3://").map(|b| b.trim_end_matches('/'));
    let mut c = Config::default_local(bucket.unwrap_or("local"));
    if bucket.is_some() {
        c.primary.region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".into());
        c.signing_key = raptr_core::config::SigningKeys::one(
            raptr_core::config::SigningKey::secret("raptr/signing-key"),
        );
    }
    let doc = serde_json::to_string_pretty(&c)
        .map_err(|e| CliError(format!("cannot write the example: {e}")))?;
    println!("{doc}");
    Ok(ExitCode::SUCCESS)
}

/// Refuses, before anything is written, a configuration that can never
/// publish from the bucket being initialised: another primary bucket than
/// the one named, keys that cannot be read or used, replica buckets that
/// do not answer.
async fn refuse_unworkable(opened: &Opened, config: &Config) -> Result<(), CliError> {
    use raptr_core::config::{KeyPlace, Passphrase};
    let repo = &opened.name;
    if opened.dir.is_some() {
        // Secrets Manager from a directory repository works only where AWS
        // credentials are: try it now rather than at the first publish.
        let secret = config
            .signing_key
            .0
            .iter()
            .find_map(|k| match (k.place(), &k.passphrase) {
                (KeyPlace::Secret(s), _) => Some(s.to_string()),
                (_, Some(Passphrase::Secret(s))) => Some(s.clone()),
                _ => None,
            });
        if let Some(name) = secret {
            crate::keys::signer(opened, config).await.map_err(|e| {
                CliError(format!(
                    "{repo}: the signing key names the Secrets Manager secret {name}, which cannot be used from here ({e}); \
                     a directory repository usually signs with a key file: {{\"file\": PATH}} outside the repository (`raptr key generate` makes one); nothing was written"
                ))
            })?;
        }
        return Ok(());
    }
    if config.primary.bucket != opened.bucket {
        return Err(CliError(format!(
            "{repo}: the document's primary bucket is {}; initialise s3://{} with it, or name {} in primary.bucket",
            config.primary.bucket, config.primary.bucket, opened.bucket
        )));
    }
    // The keys must load, and every replica bucket answer.
    crate::keys::signer(opened, config).await.map_err(|e| {
        CliError(format!(
            "{repo}: the signing key cannot be used: {e}; nothing was written"
        ))
    })?;
    for r in &config.replicas {
        let store = raptr_aws::bucket_store(&r.bucket, &r.region).await;
        if let Err(e) = store.list_page("dists/", None).await {
            return Err(CliError(format!(
                "{repo}: replica {} (bucket {} in {}) cannot be used: {e}; nothing was written",
                r.name, r.bucket, r.region
            )));
        }
    }
    Ok(())
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
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = crate::repo::load_config(&opened).await?;
        // What ingest would reject whatever the files are, refused before
        // anything is stored.
        refuse_target(repo, &config, dist, component)?;
        let groups = crate::sort::sort(files)?;
        let base = match upload_id {
            Some(id) => id.to_string(),
            None => new_upload_id(),
        };
        let ingest = ingest_with(&opened, config);
        let uploader = uploader(&opened);
        let total: usize = groups.iter().map(|g| g.files.len()).sum();
        let mut done = 0;
        let mut bundles = Vec::new();
        let mut all_reports = Vec::new();
        for (n, group) in groups.iter().enumerate() {
            let id = if groups.len() == 1 {
                base.clone()
            } else {
                format!("{base}-{}", n + 1)
            };
            let folder = format!("incoming/{dist}/{component}/{id}");
            let mut keys = Vec::with_capacity(group.files.len());
            for (name, path) in &group.files {
                let key = format!("{folder}/{name}");
                done += 1;
                if !json && total > 1 {
                    eprintln!("[{done}/{total}] {name}");
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
            // Later files may have settled earlier ones (a .dsc's
            // tarballs): the reports have the final word.
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
            let (bundle, version) = match &group.bundle {
                Some((b, v)) => (Some(b.clone()), Some(v.clone())),
                None => (
                    reports.iter().find_map(|r| r.bundle.clone()),
                    reports.iter().find_map(|r| r.version.clone()),
                ),
            };
            let count = |s: Status| reports.iter().filter(|r| r.status == Some(s)).count();
            bundles.push(serde_json::json!({
                "bundle": bundle,
                "version": version,
                "folder": format!("{folder}/"),
                "accepted": count(Status::Accepted),
                "skipped": count(Status::Skipped),
                "rejected": count(Status::Rejected),
                "pending": count(Status::Pending),
            }));
            if !json {
                print_reports(repo, &reports, false, &format!("{folder}/"));
            }
            all_reports.extend(reports);
        }
        let when = when_apt_sees(&opened);
        if json {
            crate::output::print(&serde_json::json!({
                "repo": repo,
                "bundles": bundles,
                "reports": all_reports,
                "next": when,
            }));
        } else {
            if bundles.len() > 1 {
                println!("{} bundles uploaded", bundles.len());
            }
            if all_reports
                .iter()
                .any(|r| r.status == Some(Status::Accepted))
            {
                println!("{when}");
            }
        }
        Ok(exit_for(&all_reports))
    })
}

/// What happens next to what was accepted, for the upload's last line.
fn when_apt_sees(opened: &Opened) -> String {
    if opened.dir.is_some() {
        format!(
            "apt sees what was accepted after the next publish: raptr --repo {} publish",
            opened.name
        )
    } else {
        "apt sees what was accepted once the publish function has run (on each accepted change, and on its schedule); each report gains \"generation\" when it has".into()
    }
}

/// Refuses an upload ingest would reject whatever its files: to a
/// distribution or component the repository does not have, or to one
/// closed to uploads.
fn refuse_target(repo: &str, config: &Config, dist: &str, component: &str) -> Result<(), CliError> {
    let dists = &config.primary_layout().distributions;
    let Some(d) = dists.get(dist) else {
        let names: Vec<&str> = dists.keys().map(String::as_str).collect();
        return Err(CliError(format!(
            "{repo} has no distribution {dist}; it has {}; nothing was uploaded",
            names.join(", ")
        )));
    };
    if !d.components.iter().any(|c| c == component) {
        return Err(CliError(format!(
            "{dist} has no component {component}; it has {}; nothing was uploaded",
            d.components.join(", ")
        )));
    }
    if !d.uploads {
        return Err(CliError(format!(
            "{dist} takes packages only by promotion (\"uploads\": false): upload to another distribution and link from there (raptr link BUNDLE VERSION --to {dist}); nothing was uploaded"
        )));
    }
    Ok(())
}

pub fn request(repo: &str, path: &Path, json: bool) -> Result<ExitCode, CliError> {
    let limit = raptr_core::request::MAX_REQUEST as u64;
    let (bytes, name) = if path.as_os_str() == "-" {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| CliError(format!("standard input: {e}")))?;
        if bytes.len() as u64 > limit {
            return Err(CliError(format!(
                "standard input: larger than the {limit} bytes a request may have"
            )));
        }
        (bytes, format!("{}.json", new_request_name("stdin")))
    } else {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.ends_with(".json"))
            .ok_or_else(|| {
                CliError(format!(
                    "{}: a request is a .json file (or - for standard input)",
                    path.display()
                ))
            })?;
        (crate::read_limited(path, limit)?, name.to_string())
    };
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = load_config(&opened).await?;
        let report = submit(&opened, config, &bytes, &name).await?;
        let reports = [report];
        print_reports(repo, &reports, json, "requests/");
        Ok(exit_for(&reports))
    })
}

/// A request name no other shares: what it is about, the time, and 64
/// random bits.
pub(crate) fn new_request_name(about: &str) -> String {
    format!(
        "{about}-{}-{:016x}",
        raptr_core::time::now_ms(),
        rand::random::<u64>()
    )
}

/// Puts a request document where its body says it belongs (a body too
/// broken to place goes to requests/<name>, and its report says why),
/// handles it as the ingest function would, and returns its report.
pub(crate) async fn submit(
    opened: &Opened,
    config: Config,
    bytes: &[u8],
    name: &str,
) -> Result<Report, CliError> {
    let key = raptr_core::request::key_for(bytes, name)
        .unwrap_or_else(|| format!("{}{name}", raptr_core::keys::REQUESTS));
    let ingest = ingest_with(opened, config);
    opened
        .store
        .put(&key, bytes.to_vec().into(), PutOptions::default())
        .await
        .map_err(|e| CliError(format!("{key}: upload failed: {e}")))?;
    ingest
        .handle(&ObjectEvent {
            key: key.clone(),
            uploader: uploader(opened),
        })
        .await
        .map_err(|e| CliError(format!("{key}: {e}; run the request again")))?;
    Report::read(opened.store.as_ref(), &key)
        .await
        .map_err(|e| CliError(e.to_string()))?
        .ok_or_else(|| CliError(format!("{key}: no report was written")))
}

pub(crate) fn exit_for(reports: &[Report]) -> ExitCode {
    if reports.iter().any(|r| r.status == Some(Status::Rejected)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

pub(crate) fn print_reports(repo: &str, reports: &[Report], json: bool, place: &str) {
    if json {
        crate::output::print(&serde_json::json!({ "repo": repo, "reports": reports }));
        return;
    }
    let out = std::io::stdout();
    let mut out = out.lock();
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
        for p in &r.planned {
            let place = p
                .distribution
                .as_deref()
                .map(|d| format!(" {d}"))
                .unwrap_or_default();
            let _ = writeln!(out, "  would {}{place}: {}", p.action.as_str(), p.file);
        }
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

/// The URL apt is given for the repository: `file:DIR` for a directory
/// (its first replica's directory when it has replicas), else the primary
/// bucket's S3 address (a replica's, or CloudFront's, in practice).
pub(crate) fn apt_url(opened: &Opened, config: &Config) -> String {
    match &opened.dir {
        Some(dir) => {
            let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
            match config.replicas.first() {
                Some(r) => format!(
                    "file:{}",
                    dir.parent().unwrap_or(&dir).join(&r.bucket).display()
                ),
                None => format!("file:{}", dir.display()),
            }
        }
        None => match config.replicas.first() {
            Some(r) => format!("https://{}.s3.{}.amazonaws.com", r.bucket, r.region),
            None => format!(
                "https://{}.s3.{}.amazonaws.com",
                config.primary.bucket, config.primary.region
            ),
        },
    }
}
