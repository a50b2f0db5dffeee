//! A keyring of uploaders' public keys, and the check of a cleartext-signed
//! `.changes` against it (a distribution's `upload_keyring`, as dak checks
//! uploads against its keyrings).
//!
//! A signature counts when it verifies with the primary key of a keyring
//! key, or with one of its subkeys that a valid binding signature allows to
//! sign; a revoked or expired key counts for nothing. The text the signature
//! covers must be the text raptr parses (`raptr_formats::signed`): a
//! document whose signed part differs from what would be read is refused.

use pgp::composed::{CleartextSignedMessage, Deserializable, DetachedSignature, SignedPublicKey};
use pgp::packet::SignatureType;
use pgp::types::KeyDetails;

use super::key::{created, now_secs};
use super::{hex_upper, reason};

/// The largest keyring raptr reads.
pub const MAX_KEYRING_BYTES: u64 = 4 << 20;

/// Public keys that may sign uploads.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<SignedPublicKey>,
}

/// Whether a key may sign now: not revoked, not expired.
fn usable(key: &SignedPublicKey, now: u64) -> bool {
    let primary = &key.primary_key;
    if key
        .details
        .revocation_signatures
        .iter()
        .any(|s| s.verify_key(primary).is_ok())
    {
        return false;
    }
    let newest = key
        .details
        .users
        .iter()
        .flat_map(|u| {
            u.signatures.iter().filter(move |s| {
                s.verify_certification(primary, pgp::types::Tag::UserId, &u.id)
                    .is_ok()
            })
        })
        .max_by_key(|s| created(s));
    let Some(newest) = newest else {
        return false;
    };
    match newest.key_expiration_time().filter(|d| d.as_secs() > 0) {
        Some(d) => u64::from(primary.created_at().as_secs()) + u64::from(d.as_secs()) > now,
        None => true,
    }
}

impl Keyring {
    /// Reads public keys, armoured (one block or several) or binary;
    /// `source` names it in errors.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Keyring, String> {
        let fail = |p: String| format!("keyring {source}: {p}");
        if bytes.len() as u64 > MAX_KEYRING_BYTES {
            return Err(fail(format!("larger than {MAX_KEYRING_BYTES} bytes")));
        }
        const BEGIN: &[u8] = b"-----BEGIN PGP PUBLIC KEY BLOCK-----";
        const END: &[u8] = b"-----END PGP PUBLIC KEY BLOCK-----";
        let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let mut keys = Vec::new();
        // Binary keys first (a `gpg --export`), then armour blocks, so that
        // keyrings concatenated from both kinds read whole.
        let first = find(bytes, BEGIN).unwrap_or(bytes.len());
        let binary = &bytes[..first];
        if !binary.iter().all(u8::is_ascii_whitespace) {
            for k in SignedPublicKey::from_bytes_many(binary).map_err(|e| fail(reason(&e)))? {
                keys.push(k.map_err(|e| fail(reason(&e)))?);
            }
        }
        let mut rest = &bytes[first..];
        while let Some(start) = find(rest, BEGIN) {
            let block = &rest[start..];
            let end = find(block, END)
                .map(|e| e + END.len())
                .ok_or_else(|| fail("an armour block that does not end".into()))?;
            let text = std::str::from_utf8(&block[..end])
                .map_err(|_| fail("an armour block that is not text".into()))?;
            let (found, _) =
                SignedPublicKey::from_string_many(text).map_err(|e| fail(reason(&e)))?;
            for k in found {
                keys.push(k.map_err(|e| fail(reason(&e)))?);
            }
            rest = &block[end..];
        }
        if keys.is_empty() {
            return Err(fail("holds no public key".into()));
        }
        Ok(Keyring { keys })
    }

    /// The fingerprints of the keyring's keys.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| hex_upper(k.fingerprint().as_bytes()))
            .collect()
    }

    /// Checks a `.changes` (or any cleartext-signed document) whose text
    /// raptr parsed as `parsed`: returns the fingerprint of the keyring key
    /// that signed it, or why it is not accepted.
    pub fn verify_document(&self, doc: &str, parsed: &str) -> Result<String, String> {
        if !doc.contains("-----BEGIN PGP SIGNED MESSAGE-----") {
            return Err("it is not signed".into());
        }
        let (msg, _) = CleartextSignedMessage::from_string(doc)
            .map_err(|e| format!("its signature cannot be read: {}", reason(&e)))?;
        let signed = msg.signed_text().replace("\r\n", "\n");
        let norm = |t: &str| -> String {
            t.lines()
                .map(|l| l.trim_end_matches([' ', '\t']))
                .collect::<Vec<_>>()
                .join("\n")
                .trim_end_matches('\n')
                .to_string()
        };
        if norm(&signed) != norm(parsed) {
            return Err("the signed text is not the text raptr reads".into());
        }
        self.signed_by(msg.signatures(), msg.signed_text().as_bytes())
    }

    /// Checks a detached signature (`Release.gpg`: armoured or binary)
    /// over `data`: returns the fingerprint of the keyring key that made
    /// it, or why it is not accepted.
    pub fn verify_detached(&self, data: &[u8], signature: &[u8]) -> Result<String, String> {
        let sigs: Vec<pgp::packet::Signature> = match std::str::from_utf8(signature) {
            Ok(text) if text.contains("-----BEGIN PGP SIGNATURE-----") => {
                let (found, _) = DetachedSignature::from_string_many(text)
                    .map_err(|e| format!("its signature cannot be read: {}", reason(&e)))?;
                found
                    .map(|s| s.map(|d| d.signature))
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("its signature cannot be read: {}", reason(&e)))?
            }
            _ => DetachedSignature::from_bytes_many(signature)
                .map_err(|e| format!("its signature cannot be read: {}", reason(&e)))?
                .map(|s| s.map(|d| d.signature))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("its signature cannot be read: {}", reason(&e)))?,
        };
        self.signed_by(&sigs, data)
    }

    /// The fingerprint of the first usable keyring key (its primary, or a
    /// subkey bound to it with the signing flag) that made one of `sigs`
    /// over `data`.
    fn signed_by(&self, sigs: &[pgp::packet::Signature], data: &[u8]) -> Result<String, String> {
        let now = now_secs();
        let mut issuers = Vec::new();
        for sig in sigs {
            let ids: Vec<String> = sig
                .issuer_fingerprint()
                .iter()
                .map(|f| hex_upper(f.as_bytes()))
                .chain(sig.issuer_key_id().iter().map(|k| hex_upper(k.as_ref())))
                .collect();
            issuers.extend(ids.first().cloned());
            for key in &self.keys {
                if !usable(key, now) {
                    continue;
                }
                let fpr = hex_upper(key.fingerprint().as_bytes());
                if sig.verify(&key.primary_key, data).is_ok() {
                    return Ok(fpr);
                }
                for sub in &key.public_subkeys {
                    let binding = sub
                        .signatures
                        .iter()
                        .filter(|s| s.verify_subkey_binding(&key.primary_key, &sub.key).is_ok())
                        .max_by_key(|s| created(s));
                    let may_sign = binding.is_some_and(|b| {
                        b.typ() == Some(SignatureType::SubkeyBinding) && b.key_flags().sign()
                    });
                    if may_sign && sig.verify(&sub.key, data).is_ok() {
                        return Ok(fpr);
                    }
                }
            }
        }
        Err(if issuers.is_empty() {
            "no signature verifies with a key of the keyring".into()
        } else {
            format!(
                "signed by {}, which is not a usable key of the keyring (or the text was altered after signing)",
                issuers.join(", ")
            )
        })
    }
}
