//! Signing keys from the command line: `key generate`, `key show`, the key
//! `init` makes for a local repository, and reading the keys a
//! configuration names before a publish writes anything.
//!
//! A local repository's secret key lives outside its directory (the
//! directory is what clients read through `file:` URIs, a web server or a
//! sync to a bucket): `init` writes it to `$RAPTR_KEY_DIR`, else
//! `$XDG_CONFIG_HOME/raptr/keys`, else `~/.config/raptr/keys`, as
//! `<FINGERPRINT>.asc` readable by its owner only, and names that file in
//! the configuration. A key or passphrase file inside the repository's
//! directory is refused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use raptr_core::config::{Config, KeyPlace, SigningKey, SigningKeys};
use raptr_core::signing::key::date;
use raptr_core::signing::{self, load, Algorithm, Key, KeyInfo, Signer};
use raptr_store::ObjectStore;
use zeroize::Zeroizing;

use crate::repo::{open, runtime, Opened};
use crate::CliError;

/// Where `init` keeps the secret keys it makes.
pub(crate) fn key_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RAPTR_KEY_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("raptr").join("keys");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home)
        .join(".config")
        .join("raptr")
        .join("keys")
}

/// Where a local repository reads a file the configuration names:
/// relative paths are relative to the repository's directory.
fn resolve(opened: &Opened, file: &str) -> PathBuf {
    match &opened.dir {
        Some(dir) if Path::new(file).is_relative() => dir.join(file),
        _ => PathBuf::from(file),
    }
}

/// The nearest existing ancestor, made absolute (a file that does not
/// exist yet is judged by where it would go).
fn absolute(path: &Path) -> PathBuf {
    let mut probe = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&probe) {
            return rest.iter().rev().fold(c, |p: PathBuf, n| p.join(n));
        }
        match (probe.file_name().map(|n| n.to_owned()), probe.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                probe = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Refuses a secret file inside a local repository's directory.
fn outside(opened: &Opened, path: &Path, what: &str) -> Result<(), String> {
    let Some(dir) = &opened.dir else {
        return Ok(());
    };
    let root = absolute(dir);
    if absolute(path).starts_with(&root) {
        return Err(format!(
            "{}: this {what} is inside the repository directory {}, which is what clients are \
             given (file: URIs, a web server, a sync to a bucket). Move it outside (for example \
             to {}) and name the new place in {}/config/raptr.json",
            path.display(),
            dir.display(),
            key_dir().display(),
            dir.display()
        ));
    }
    Ok(())
}

/// Writes a file only its owner may read, in a directory only its owner
/// may enter when it makes one.
fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| crate::io_error(parent, e))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| crate::io_error(path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| crate::io_error(path, e))
}

fn key_name(dir: &Path) -> String {
    format!(
        "raptr repository {}",
        std::fs::canonicalize(dir)
            .unwrap_or_else(|_| dir.to_path_buf())
            .display()
    )
}

/// `init` of a local repository without a document: a new key in
/// [`key_dir`], and the configuration naming it. Returns the line that
/// says so.
pub(crate) fn new_local_key(opened: &Opened, config: &mut Config) -> Result<String, CliError> {
    let Some(dir) = &opened.dir else {
        return Ok(String::new());
    };
    let (armored, signer) = signing::generate(&key_name(dir), Algorithm::Ed25519)
        .map_err(|e| CliError(e.to_string()))?;
    let path = absolute(&key_dir()).join(format!("{}.asc", signer.fingerprint()));
    outside(opened, &path, "signing key").map_err(CliError)?;
    write_private(&path, &armored)?;
    config.signing_key = SigningKeys::one(SigningKey::file(path.display().to_string()));
    Ok(format!(
        "generated signing key {} in {} (outside the repository: keep it safe)",
        signer.fingerprint(),
        path.display()
    ))
}

/// `init` of a local repository with a document naming a key file that
/// does not exist yet: makes it there. Returns lines saying so.
pub(crate) fn ensure_local_keys(opened: &Opened, config: &Config) -> Result<Vec<String>, CliError> {
    let Some(dir) = &opened.dir else {
        return Ok(Vec::new());
    };
    let mut lines = Vec::new();
    for k in &config.signing_key.0 {
        let KeyPlace::File(file) = k.place() else {
            continue;
        };
        let path = resolve(opened, file);
        outside(opened, &path, "signing key").map_err(CliError)?;
        if path.exists() {
            continue;
        }
        let (armored, signer) = signing::generate(&key_name(dir), Algorithm::Ed25519)
            .map_err(|e| CliError(e.to_string()))?;
        write_private(&path, &armored)?;
        lines.push(format!(
            "generated signing key {} in {}",
            signer.fingerprint(),
            path.display()
        ));
    }
    Ok(lines)
}

/// Reads keys for the command line: secrets from Secrets Manager, files
/// relative to a local repository (and never inside it).
struct CliReader<'a>(&'a Opened);

/// Reads distributions' upload keyrings (public keys, so they may live
/// anywhere): secrets from Secrets Manager, files relative to a local
/// repository's directory.
pub(crate) struct KeyringReader(pub Option<PathBuf>);

#[async_trait::async_trait]
impl load::Reader for KeyringReader {
    async fn secret(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        raptr_aws::secret_string(name)
            .await
            .map(|s| Zeroizing::new(s.into_bytes()))
    }
    fn file(&self, path: &str, limit: u64) -> Result<Zeroizing<Vec<u8>>, String> {
        let full = match &self.0 {
            Some(dir) if Path::new(path).is_relative() => dir.join(path),
            _ => PathBuf::from(path),
        };
        load::read_file(&full, limit).map_err(|e| format!("{}: {e}", full.display()))
    }
}

#[async_trait::async_trait]
impl load::Reader for CliReader<'_> {
    async fn secret(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        raptr_aws::secret_string(name)
            .await
            .map(|s| Zeroizing::new(s.into_bytes()))
    }
    fn file(&self, path: &str, limit: u64) -> Result<Zeroizing<Vec<u8>>, String> {
        let full = resolve(self.0, path);
        outside(self.0, &full, "secret file")?;
        load::read_file(&full, limit).map_err(|e| format!("{}: {e}", full.display()))
    }
}

/// The repository's signing keys, read and checked; warnings go to
/// standard error.
pub(crate) async fn signer(opened: &Opened, config: &Config) -> Result<Signer, CliError> {
    let signer = load::load(&config.signing_key, &CliReader(opened))
        .await
        .map_err(|e| CliError(e.to_string()))?;
    for k in signer.keys() {
        for w in &k.info.warnings {
            eprintln!("raptr: warning: key {}: {w}", k.info.fingerprint);
        }
    }
    Ok(signer)
}

pub fn generate(name: &str, out: &Path, algorithm: &str, json: bool) -> Result<ExitCode, CliError> {
    let algorithm: Algorithm = algorithm.parse().map_err(CliError)?;
    let (armored, signer) =
        signing::generate(name, algorithm).map_err(|e| CliError(e.to_string()))?;
    std::fs::create_dir_all(out).map_err(|e| crate::io_error(out, e))?;
    let private = out.join("private.asc");
    write_private(&private, &armored)?;
    let asc = out.join("repo.asc");
    let gpg = out.join("repo.gpg");
    std::fs::write(&asc, signer.public_asc()).map_err(|e| crate::io_error(&asc, e))?;
    std::fs::write(&gpg, signer.public_gpg()).map_err(|e| crate::io_error(&gpg, e))?;
    let info = &signer.keys()[0].info;
    if json {
        println!(
            "{:#}",
            serde_json::json!({
                "fingerprint": info.fingerprint, "algorithm": info.algorithm,
                "private": private, "public_asc": asc, "public_gpg": gpg,
            })
        );
    } else {
        println!(
            "key {} ({}): secret {} (keep it private: store it in Secrets Manager, or name it as the repository's signing_key file), public {} and {}",
            info.fingerprint,
            info.algorithm,
            private.display(),
            asc.display(),
            gpg.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One key as `key show` prints it.
fn describe(info: &KeyInfo) -> Vec<String> {
    let signing = if info.signing_fingerprint == info.fingerprint {
        "the primary key signs".to_string()
    } else {
        format!("signing subkey {}", info.signing_fingerprint)
    };
    let expires = info
        .expires
        .map(|e| format!("expires {}", date(e)))
        .unwrap_or_else(|| "does not expire".into());
    let mut lines = vec![format!(
        "key {} ({}, {signing}), created {}, {expires}",
        info.fingerprint,
        info.algorithm,
        date(info.created)
    )];
    for u in &info.user_ids {
        lines.push(format!("  user ID: {u}"));
    }
    lines.push(format!("  from: {}", info.source));
    for w in &info.warnings {
        lines.push(format!("  warning: {w}"));
    }
    lines
}

/// `key show FILE...`: each file's key, checked as a publish would.
fn show_files(
    files: &[PathBuf],
    passphrase_file: Option<&Path>,
    json: bool,
) -> Result<ExitCode, CliError> {
    let passphrase: Option<Zeroizing<String>> = match passphrase_file {
        Some(p) => {
            let what = format!("passphrase file {}", p.display());
            let bytes =
                load::read_file(p, 64 << 10).map_err(|e| CliError(format!("{what}: {e}")))?;
            Some(load::first_line(&bytes, &what).map_err(CliError)?)
        }
        None => None,
    };
    let mut out = Vec::new();
    let mut refused = false;
    for f in files {
        let loaded = load::read_file(f, signing::key::MAX_KEY_BYTES)
            .map_err(|e| format!("{}: {e}", f.display()))
            .and_then(|b| {
                Key::load(
                    &b,
                    &f.display().to_string(),
                    passphrase.as_deref().map(|s| s.as_str()),
                )
                .map_err(|e| e.to_string())
            });
        match loaded {
            Ok(k) => {
                if !json {
                    describe(&k.info).iter().for_each(|l| println!("{l}"));
                }
                out.push(serde_json::json!({"key": k.info}));
            }
            Err(e) => {
                refused = true;
                if !json {
                    println!("refused: {e}");
                }
                out.push(serde_json::json!({"file": f, "refused": e}));
            }
        }
    }
    if json {
        println!("{:#}", serde_json::json!({ "keys": out }));
    }
    Ok(if refused {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Which of a bucket's signed files and key files carry which keys.
async fn carriers(
    store: &dyn ObjectStore,
    dists: &[String],
) -> Vec<(String, Result<Vec<String>, String>)> {
    let mut out = Vec::new();
    let mut keys = vec!["keys/repo.gpg".to_string()];
    for d in dists {
        keys.push(format!("dists/{d}/InRelease"));
        keys.push(format!("dists/{d}/Release.gpg"));
    }
    for key in keys {
        let found = match store.get_limited(&key, raptr_core::limits::RELEASE).await {
            Ok((bytes, _)) if key.ends_with(".gpg") && key.starts_with("keys/") => {
                signing::keyring_fingerprints(&bytes)
            }
            Ok((bytes, _)) => signing::issuers(&String::from_utf8_lossy(&bytes)),
            Err(raptr_store::StoreError::NotFound { .. }) => continue,
            Err(e) => Err(e.to_string()),
        };
        out.push((key, found));
    }
    out
}

/// `--repo R key show`: what the repository signs with, and which files
/// of the repository and of each replica carry each key.
fn show_repo(repo: &str, json: bool) -> Result<ExitCode, CliError> {
    runtime()?.block_on(async {
        let opened = open(repo, false).await?;
        let config = crate::repo::load_config(&opened).await?;
        let signer = signer(&opened, &config).await?;
        let mut targets: Vec<(String, std::sync::Arc<dyn ObjectStore>, Vec<String>)> = vec![(
            "primary".into(),
            opened.store.clone(),
            config.primary_layout().distributions.keys().cloned().collect(),
        )];
        for r in crate::publish::replicas(&opened, &config).await? {
            targets.push((
                r.name.clone(),
                r.store.clone(),
                r.distributions.iter().cloned().collect(),
            ));
        }
        // Signatures name the signing part; keyrings the primary.
        let owner = |fpr: &str| {
            signer.keys().iter().find(|k| {
                k.info.signing_fingerprint == fpr
                    || k.info.fingerprint == fpr
                    || k.info.signing_fingerprint.ends_with(fpr)
            })
        };
        let mut carried: Vec<Vec<(String, String)>> = vec![Vec::new(); signer.keys().len()];
        let mut unknown: Vec<(String, String, String)> = Vec::new();
        let mut problems: Vec<String> = Vec::new();
        for (name, store, dists) in &targets {
            for (key, found) in carriers(store.as_ref(), dists).await {
                match found {
                    Ok(fprs) => {
                        for f in fprs {
                            match owner(&f) {
                                Some(k) => {
                                    let i = signer
                                        .keys()
                                        .iter()
                                        .position(|x| std::ptr::eq(x, k))
                                        .unwrap_or(0);
                                    carried[i].push((name.clone(), key.clone()));
                                }
                                None => unknown.push((name.clone(), key.clone(), f)),
                            }
                        }
                    }
                    Err(e) => problems.push(format!("{name}: {key}: {e}")),
                }
            }
        }
        if json {
            let keys: Vec<_> = signer
                .keys()
                .iter()
                .zip(&carried)
                .map(|(k, c)| {
                    serde_json::json!({
                        "key": k.info,
                        "carried_by": c.iter().map(|(t, f)| serde_json::json!({"target": t, "file": f})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let unknown: Vec<_> = unknown
                .iter()
                .map(|(t, f, k)| serde_json::json!({"target": t, "file": f, "key": k}))
                .collect();
            println!(
                "{:#}",
                serde_json::json!({"repo": repo, "keys": keys, "not_configured": unknown, "problems": problems})
            );
        } else {
            for (k, c) in signer.keys().iter().zip(&carried) {
                describe(&k.info).iter().for_each(|l| println!("{l}"));
                for (name, _, _) in &targets {
                    let files: Vec<&str> = c
                        .iter()
                        .filter(|(t, _)| t == name)
                        .map(|(_, f)| f.as_str())
                        .collect();
                    if files.is_empty() {
                        println!("  {name}: in no file yet (the next publish signs with it)");
                    } else {
                        println!("  {name}: {}", files.join(", "));
                    }
                }
            }
            for (t, f, k) in &unknown {
                println!("not configured: {t}: {f} carries key {k}");
            }
            for p in &problems {
                println!("unreadable: {p}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn show(
    repo: Option<&str>,
    files: &[PathBuf],
    passphrase_file: Option<&Path>,
    json: bool,
) -> Result<ExitCode, CliError> {
    match (repo, files.is_empty()) {
        (_, false) => show_files(files, passphrase_file, json),
        (Some(r), true) => show_repo(r, json),
        (None, true) => Err(CliError(
            "key show needs key files, or --repo DIR|s3://BUCKET for a repository's keys".into(),
        )),
    }
}
