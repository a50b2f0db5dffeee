//! `raptr scan`: the `Packages` and `Sources` stanzas that publishing these
//! files would produce. Unlike `check`, the files need not form one bundle:
//! a whole tree of packages can be scanned, in parallel.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use raptr_formats::bundle::{analyze_file, Kind, Parsed, Status};
use raptr_formats::deb::Limits;
use raptr_formats::index::{packages_stanza, sources_stanza, SourceFile};
use raptr_formats::layout::{deb_file_name, pool_dir};

use crate::{io_error, opener, CliError};

/// Collects `.deb` and `.dsc` files: named ones as given, folders recursively.
fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| io_error(p, e))?;
        if meta.is_dir() {
            stack.push(p.clone());
        } else {
            out.push(p.clone());
        }
    }
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let path = entry.path();
            let ft = entry.file_type().map_err(|e| io_error(&path, e))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && matches!(kind(&path), Kind::Deb | Kind::Dsc) {
                out.push(path);
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn kind(path: &Path) -> Kind {
    raptr_formats::bundle::kind_of(
        &path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
    )
}

/// What scanning one file produced.
struct Scanned {
    stanza: Result<String, String>,
    index: &'static str,
}

fn split(path: &Path) -> (PathBuf, String) {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, name)
}

fn scan_one(path: &Path, component: &str, limits: &Limits) -> Scanned {
    let (dir, name) = split(path);
    let mut open = opener(&dir);
    let index = if kind(path) == Kind::Dsc {
        "Sources"
    } else {
        "Packages"
    };
    let stanza = (|| -> Result<String, String> {
        let r = analyze_file(&name, &mut open, limits)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if r.status == Status::Rejected {
            // The reason starts with the file name; give the whole path instead.
            let reason = r.reason.unwrap_or_default();
            let problem = reason.strip_prefix(&format!("{name}: ")).unwrap_or(&reason);
            return Err(format!("{}: {problem}", path.display()));
        }
        match &r.parsed {
            Parsed::Deb(deb) => {
                let b = &deb.binary;
                let key = format!(
                    "{}/{}",
                    pool_dir(component, &b.source, &b.source_version),
                    deb_file_name(&b.package, &b.version, &b.architecture)
                );
                Ok(packages_stanza(&deb.control, &key, &deb.digests).to_string())
            }
            Parsed::Dsc(dsc) => {
                let dsc_digests = r.digests.clone().ok_or("digests missing")?;
                let mut measured = Vec::with_capacity(dsc.files.len());
                for lf in &dsc.files {
                    let listed = analyze_file(&lf.name, &mut open, limits).map_err(|e| {
                        format!("{}: {} (listed by {name}): {e}", path.display(), lf.name)
                    })?;
                    let d = listed.digests.ok_or_else(|| {
                        format!(
                            "{}: {} (listed by {name}) could not be read",
                            path.display(),
                            lf.name
                        )
                    })?;
                    lf.verify(&d)
                        .map_err(|p| format!("{}: {p}", path.display()))?;
                    measured.push((lf.name.clone(), d));
                }
                let mut files = vec![SourceFile {
                    name: &name,
                    digests: &dsc_digests,
                }];
                files.extend(measured.iter().map(|(n, d)| SourceFile {
                    name: n,
                    digests: d,
                }));
                let directory = pool_dir(component, &dsc.source, &dsc.version);
                Ok(sources_stanza(dsc, &directory, &files).to_string())
            }
            _ => Err(format!("{}: not a .deb or .dsc", path.display())),
        }
    })();
    Scanned { stanza, index }
}

pub fn run(
    paths: &[PathBuf],
    component: &str,
    jobs: Option<usize>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let files = collect(paths)?;
    let limits = Limits::default();
    let jobs = jobs
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .clamp(1, 64);
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<Scanned>> = (0..files.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = files.get(i) else { break };
                        mine.push((i, scan_one(path, component, &limits)));
                    }
                    mine
                })
            })
            .collect();
        for w in workers {
            match w.join() {
                Ok(mine) => {
                    for (i, r) in mine {
                        results[i] = Some(r);
                    }
                }
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let (mut packages, mut sources, mut failed) = (0usize, 0usize, 0usize);
    let mut docs = Vec::new();
    for (path, r) in files.iter().zip(results.into_iter().flatten()) {
        match &r.stanza {
            Ok(text) => {
                if r.index == "Sources" {
                    sources += 1;
                } else {
                    packages += 1;
                }
                if !json {
                    let _ = writeln!(out, "{text}");
                }
            }
            Err(reason) => {
                failed += 1;
                if !json {
                    eprintln!("rejected: {reason}");
                }
            }
        }
        if json {
            docs.push(serde_json::json!({
                "file": path.display().to_string(),
                "index": r.index,
                "stanza": r.stanza.as_ref().ok(),
                "reason": r.stanza.as_ref().err(),
            }));
        }
    }
    if json {
        let _ = writeln!(
            out,
            "{:#}",
            serde_json::json!({"packages": packages, "sources": sources, "rejected": failed, "files": docs})
        );
    }
    let _ = out.flush();
    eprintln!(
        "scanned {} file(s): {packages} Packages stanza(s), {sources} Sources stanza(s), {failed} rejected",
        files.len()
    );
    Ok(ExitCode::from(if failed > 0 { 1 } else { 0 }))
}
