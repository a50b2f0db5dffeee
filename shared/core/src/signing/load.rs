//! The signing keys a configuration names, read from where it says (a
//! Secrets Manager secret, a file, with a passphrase from a secret, a
//! file, a variable, or the key's own secret) and checked, all before the
//! publisher writes anything.
//!
//! A key's secret holds the armoured key, or a JSON object
//! `{"key": "-----BEGIN PGP PRIVATE KEY BLOCK-----...", "passphrase": "..."}`
//! so that one secret carries both. A passphrase named in the
//! configuration wins over one in the key's secret. The first line of a
//! passphrase file or secret is the passphrase.

use async_trait::async_trait;
use zeroize::Zeroizing;

use super::key::MAX_KEY_BYTES;
use super::{Key, Signer, SigningError};
use crate::config::{KeyPlace, Passphrase, SigningKeys};

/// Reads what the configuration names; the caller decides how (the AWS
/// SDK, the local file system, a test's map).
#[async_trait]
pub trait Reader: Send + Sync {
    /// The value of a Secrets Manager secret.
    async fn secret(&self, name: &str) -> Result<Zeroizing<Vec<u8>>, String>;
    /// The bytes of a file, at most `limit`.
    fn file(&self, path: &str, limit: u64) -> Result<Zeroizing<Vec<u8>>, String>;
}

/// Reads a file named by the configuration, refusing one larger than
/// `limit` before reading it.
pub fn read_file(path: &std::path::Path, limit: u64) -> Result<Zeroizing<Vec<u8>>, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut out = Zeroizing::new(Vec::new());
    f.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if out.len() as u64 > limit {
        return Err(format!("is larger than {limit} bytes"));
    }
    Ok(out)
}

/// The key and passphrase a secret holding JSON carries.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    key: String,
    #[serde(default)]
    passphrase: Option<String>,
}

/// The passphrase in `bytes`: its first line.
pub fn first_line(bytes: &[u8], what: &str) -> Result<Zeroizing<String>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8 text"))?;
    let line = text.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(format!("{what} is empty"));
    }
    Ok(Zeroizing::new(line.to_string()))
}

/// Reads and checks every key of `keys`.
pub async fn load(keys: &SigningKeys, reader: &dyn Reader) -> Result<Signer, SigningError> {
    let mut loaded = Vec::new();
    for (i, k) in keys.0.iter().enumerate() {
        let (bytes, source) = match k.place() {
            KeyPlace::Secret(name) => (reader.secret(name).await, format!("secret {name}")),
            KeyPlace::File(path) => (reader.file(path, MAX_KEY_BYTES), path.to_string()),
        };
        let fail = |problem: String| SigningError {
            source_name: format!("{source} ({})", keys.path(i)),
            problem,
        };
        let bytes = bytes.map_err(fail)?;
        // A secret (or file) holding JSON carries the key and maybe its
        // passphrase.
        let envelope = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => Some(
                serde_json::from_slice::<Envelope>(&bytes)
                    .map_err(|e| {
                        fail(format!(
                            "holds JSON that is not {{\"key\": ARMOURED_KEY, \"passphrase\": TEXT}}: {e}"
                        ))
                    })
                    .map(|e| (Zeroizing::new(e.key), e.passphrase.map(Zeroizing::new)))?,
            ),
            _ => None,
        };
        let passphrase: Option<Zeroizing<String>> = match &k.passphrase {
            Some(Passphrase::Secret(name)) => {
                let what = format!("passphrase secret {name}");
                let b = reader
                    .secret(name)
                    .await
                    .map_err(|e| fail(format!("{what}: {e}")))?;
                Some(first_line(&b, &what).map_err(&fail)?)
            }
            Some(Passphrase::File(path)) => {
                let what = format!("passphrase file {path}");
                let b = reader
                    .file(path, 64 << 10)
                    .map_err(|e| fail(format!("{what}: {e}")))?;
                Some(first_line(&b, &what).map_err(&fail)?)
            }
            Some(Passphrase::Env(var)) => {
                let what = format!("passphrase variable {var}");
                let v = Zeroizing::new(
                    std::env::var(var).map_err(|_| fail(format!("{what} is not set")))?,
                );
                Some(first_line(v.as_bytes(), &what).map_err(&fail)?)
            }
            None => envelope.as_ref().and_then(|(_, p)| p.clone()),
        };
        let key_bytes: &[u8] = match &envelope {
            Some((key, _)) => key.as_bytes(),
            None => &bytes,
        };
        let key = Key::load(
            key_bytes,
            &format!("{source} ({})", keys.path(i)),
            passphrase.as_deref().map(String::as_str),
        )?;
        loaded.push(key);
    }
    Signer::new(loaded)
}

/// The public keyring a configuration names (an upload keyring, a mirror's
/// keyring), read through `reader` and parsed; the error names where it is.
pub async fn keyring(
    reader: &dyn Reader,
    place: &crate::config::Keyring,
) -> Result<super::keyring::Keyring, String> {
    let (bytes, source) = match place.place() {
        KeyPlace::Secret(n) => (reader.secret(n).await, format!("secret {n}")),
        KeyPlace::File(f) => (
            reader.file(f, super::keyring::MAX_KEYRING_BYTES),
            f.to_string(),
        ),
    };
    let bytes = bytes.map_err(|e| format!("keyring {source}: {e}"))?;
    super::keyring::Keyring::parse(&bytes, &source)
}
