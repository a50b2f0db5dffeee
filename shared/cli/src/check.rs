//! `raptr check`: what `raptr upload` (and the ingest function) would answer
//! for these files as one upload folder, without storing anything: the
//! same rules, with files that wait for a companion `pending`, and with
//! `--repo` the pool too (a file already there is `skipped` with the same
//! bytes, `rejected` with others).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use raptr_formats::bundle::{self, BundleReport, FileResult, Kind, Parsed, Rules, Status};
use raptr_formats::deb::Limits;

use crate::repo::{open, runtime};
use crate::CliError;

pub fn run(
    paths: &[PathBuf],
    component: &str,
    repo: Option<&str>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let (dir, mut names) = crate::bundle_files(paths)?;
    if names.is_empty() {
        return Err(CliError(format!(
            "{}: the folder has no files",
            dir.display()
        )));
    }
    names.sort();
    names.dedup();
    let limits = Limits::default();
    let mut open_file = crate::opener(&dir);
    let mut files = Vec::with_capacity(names.len());
    for name in &names {
        files.push(
            bundle::analyze_file(name, &mut open_file, &limits)
                .map_err(|e| CliError(format!("{}: {e}", dir.join(name).display())))?,
        );
    }
    // As ingest applies them: a folder may still receive files, so what
    // waits for a companion is pending, not rejected.
    let rules = Rules {
        open: true,
        identity: None,
    };
    let mut report = bundle::apply_rules(files, component, &rules);
    if let Some(repo) = repo {
        runtime()?.block_on(against_pool(repo, &mut report))?;
    }
    let count = |s: Status| report.count(s);
    if json {
        crate::output::print(&serde_json::json!({
            "bundle": report.source,
            "version": report.version,
            "component": component,
            "repo": repo,
            "accepted": count(Status::Accepted),
            "skipped": count(Status::Skipped),
            "rejected": count(Status::Rejected),
            "pending": count(Status::Pending),
            "files": report.files.iter().map(file_json).collect::<Vec<_>>(),
        }));
    } else {
        let out = io::stdout();
        let mut out = out.lock();
        for f in &report.files {
            let _ = writeln!(out, "{}", check_line(f));
            for w in &f.warnings {
                let _ = writeln!(out, "  warning: {w}");
            }
        }
        let _ = writeln!(out, "{}", summary(&report, repo.is_some()));
    }
    Ok(ExitCode::from(if count(Status::Rejected) > 0 {
        1
    } else {
        0
    }))
}

/// One file in the reports' vocabulary: `bundle` and `version` are the
/// source package's, `package` and `package_version` the binary's.
fn file_json(f: &FileResult) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "file": f.file,
        "kind": f.kind,
        "status": f.status,
    });
    let fields = [
        ("reason", f.reason.clone()),
        ("bundle", f.source.clone()),
        ("version", f.source_version.clone()),
        ("package", f.package.clone()),
        ("package_version", f.version.clone()),
        ("architecture", f.architecture.clone()),
        ("pool_key", f.pool_key.clone()),
        ("sha256", f.sha256.clone()),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            doc[k] = v.into();
        }
    }
    if let Some(size) = f.size {
        doc["size"] = size.into();
    }
    if !f.warnings.is_empty() {
        doc["warnings"] = f.warnings.clone().into();
    }
    doc
}

/// Compares the accepted files with the pool, as ingest does before it
/// copies anything: the same bytes are skipped, other bytes rejected (and
/// with them a `.dsc`'s files, or a `.changes` folder whole).
async fn against_pool(repo: &str, report: &mut BundleReport) -> Result<(), CliError> {
    let opened = open(repo, false).await?;
    let mut manifests = BTreeMap::new();
    let mut conflict: Option<Kind> = None;
    for f in report.files.iter_mut() {
        let (Some(key), Some(sha)) = (f.pool_key.clone(), f.sha256.clone()) else {
            continue;
        };
        if f.status != Status::Accepted {
            continue;
        }
        let Some((dir, name)) = key.rsplit_once('/') else {
            continue;
        };
        if !manifests.contains_key(dir) {
            let m = raptr_core::manifest::load(opened.store.as_ref(), dir)
                .await
                .map_err(|e| CliError(format!("{repo}: cannot read {dir}/manifest.json: {e}")))?;
            manifests.insert(dir.to_string(), m.map(|(m, _)| m));
        }
        let Some(Some(m)) = manifests.get(dir) else {
            continue;
        };
        let version = report.version.as_deref().unwrap_or_default();
        if m.version != version {
            f.reject(format!(
                "the pool already holds {} {} in this directory; versions that differ only in epoch cannot both be stored",
                m.bundle, m.version
            ));
            conflict.get_or_insert(f.kind);
            continue;
        }
        match m.files.get(name) {
            Some(existing) if existing.digests.sha256 == sha => {
                f.status = Status::Skipped;
                f.reason = Some(format!(
                    "{}: identical to {key}, already in the pool; nothing to store",
                    f.file
                ));
            }
            Some(existing) => {
                f.reject(format!(
                    "{name} {} is already in the pool with different contents (sha256 {}, this upload {sha}); published files never change",
                    m.bundle, existing.digests.sha256
                ));
                conflict.get_or_insert(f.kind);
            }
            None => {}
        }
    }
    let Some(first) = conflict else {
        return Ok(());
    };
    let atomic = report
        .files
        .iter()
        .any(|f| f.kind == Kind::Changes && f.status != Status::Rejected);
    let source_group = |k: Kind| matches!(k, Kind::Dsc | Kind::Unknown | Kind::Source);
    for f in report.files.iter_mut() {
        if f.status == Status::Accepted && (atomic || (source_group(first) && source_group(f.kind)))
        {
            f.reject("another file of its group conflicts with the pool (see its reason)");
        }
    }
    Ok(())
}

fn check_line(f: &FileResult) -> String {
    match f.status {
        Status::Accepted => {
            let what = match (&f.parsed, &f.package) {
                (Parsed::Deb(_), Some(p)) => format!(
                    "{p} {} {}",
                    f.version.as_deref().unwrap_or("?"),
                    f.architecture.as_deref().unwrap_or("?")
                ),
                _ => format!("{:?}", f.kind).to_lowercase(),
            };
            let key = f.pool_key.as_deref().unwrap_or("-");
            format!("accepted: {} ({what}) -> {key}", f.file)
        }
        Status::Skipped => format!("skipped: {}", f.reason.as_deref().unwrap_or(&f.file)),
        Status::Rejected => format!("rejected: {}", f.reason.as_deref().unwrap_or(&f.file)),
        Status::Pending => format!("pending: {}", f.reason.as_deref().unwrap_or(&f.file)),
    }
}

fn summary(r: &BundleReport, pool: bool) -> String {
    let bundle = match (&r.source, &r.version) {
        (Some(s), Some(v)) => format!("bundle {s} {v}"),
        _ => "no bundle identified".into(),
    };
    let against = if pool {
        "checked against the pool"
    } else {
        "not checked against a pool (give --repo R for that)"
    };
    format!(
        "{bundle}: {} file(s), {} accepted, {} skipped, {} rejected, {} pending; {against}",
        r.files.len(),
        r.count(Status::Accepted),
        r.count(Status::Skipped),
        r.count(Status::Rejected),
        r.count(Status::Pending)
    )
}
