//! OpenPGP signing of Release files, in Rust (the `pgp` crate): `InRelease`
//! (cleartext signature) and `Release.gpg` (detached, armoured), both of
//! which apt's `gpgv` and Debian 13's `sqv` verify, signed by every
//! configured key at once so that a key can be rotated without a client
//! failing; and the key pairs `raptr key generate` makes.
//!
//! [`key`] reads and checks the keys operators have (GnuPG exports, signing
//! subkeys, passphrases); [`load`] finds them where the configuration says.

pub mod key;
pub mod keyring;
pub mod load;

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, EncryptionCaps,
    KeyType, SecretKeyParamsBuilder, SignedPublicKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{PacketTrait, Signature, SignatureType};
use pgp::ser::Serialize;
use pgp::types::KeyDetails;

pub use key::{Key, KeyInfo};

/// A signing failure: a key that does not parse, fails a check, or cannot
/// sign.
#[derive(Debug, thiserror::Error)]
#[error("{}", raptr_formats::quote::line(&format!("signing key {source_name}: {problem}")))]
pub struct SigningError {
    pub source_name: String,
    pub problem: String,
}

/// The repository's signing keys, ready to sign: every signature raptr
/// makes carries one signature per key.
pub struct Signer {
    keys: Vec<Key>,
    public_asc: String,
    public_gpg: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprints().join(", "))
    }
}

/// Signature packets written one after another (a keyring, or several
/// signatures in one armour block).
struct Packets<'a, T>(&'a [T]);

impl Serialize for Packets<'_, Signature> {
    fn to_writer<W: std::io::Write>(&self, writer: &mut W) -> pgp::errors::Result<()> {
        for sig in self.0 {
            sig.to_writer_with_header(writer)?;
        }
        Ok(())
    }
    fn write_len(&self) -> usize {
        self.0.iter().map(|s| s.write_len_with_header()).sum()
    }
}

impl Serialize for Packets<'_, SignedPublicKey> {
    fn to_writer<W: std::io::Write>(&self, writer: &mut W) -> pgp::errors::Result<()> {
        for key in self.0 {
            key.to_writer(writer)?;
        }
        Ok(())
    }
    fn write_len(&self) -> usize {
        self.0.iter().map(|k| k.write_len()).sum()
    }
}

fn armored<T>(items: &[T], typ: pgp::armor::BlockType) -> pgp::errors::Result<String>
where
    for<'a> Packets<'a, T>: Serialize,
{
    let mut out = Vec::new();
    pgp::armor::write(&Packets(items), typ, &mut out, None, true)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

impl Signer {
    /// Signs with every key in `keys` (at least one; each key once).
    pub fn new(keys: Vec<Key>) -> Result<Signer, SigningError> {
        let fail = |problem: String| SigningError {
            source_name: keys
                .iter()
                .map(|k| k.info.source.clone())
                .collect::<Vec<_>>()
                .join(", "),
            problem,
        };
        if keys.is_empty() {
            return Err(fail("no signing key is configured".into()));
        }
        for (i, k) in keys.iter().enumerate() {
            if let Some(other) = keys[..i]
                .iter()
                .find(|o| o.info.fingerprint == k.info.fingerprint)
            {
                return Err(fail(format!(
                    "{} and {} are the same key ({}); name each key once",
                    other.info.source, k.info.source, k.info.fingerprint
                )));
            }
        }
        let publics: Vec<SignedPublicKey> = keys.iter().map(|k| k.public.clone()).collect();
        let public_asc =
            armored(&publics, pgp::armor::BlockType::PublicKey).map_err(|e| fail(reason(&e)))?;
        let public_gpg = keys.iter().flat_map(|k| k.public_gpg.clone()).collect();
        Ok(Signer {
            keys,
            public_asc,
            public_gpg,
        })
    }

    /// One unprotected secret key (armoured or binary); `source_name`
    /// names it in errors.
    pub fn from_secret(bytes: &[u8], source_name: &str) -> Result<Signer, SigningError> {
        Signer::new(vec![Key::load(bytes, source_name, None)?])
    }

    /// The keys, in the configuration's order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The keys' fingerprints, upper-case hex.
    pub fn fingerprints(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|k| k.info.fingerprint.as_str())
            .collect()
    }

    /// The first key's fingerprint (the only one, for most repositories).
    pub fn fingerprint(&self) -> &str {
        &self.keys[0].info.fingerprint
    }

    /// Every public key, armoured, as one keyring (`keys/repo.asc`).
    pub fn public_asc(&self) -> &str {
        &self.public_asc
    }

    /// Every public key, binary, as one keyring (`keys/repo.gpg`, for
    /// `signed-by`).
    pub fn public_gpg(&self) -> &[u8] {
        &self.public_gpg
    }

    fn fail(&self, problem: impl std::fmt::Display) -> SigningError {
        SigningError {
            source_name: self.fingerprints().join(", "),
            problem: problem.to_string(),
        }
    }

    /// `InRelease`: the text with a cleartext signature by every key.
    pub fn clearsign(&self, text: &str) -> Result<String, SigningError> {
        let msg = CleartextSignedMessage::new_many(text, |normalised| {
            self.keys
                .iter()
                .map(|k| k.sign(SignatureType::Text, normalised.as_bytes()))
                .collect()
        })
        .map_err(|e| self.fail(reason(&e)))?;
        msg.to_armored_string(ArmorOptions::default())
            .map_err(|e| self.fail(reason(&e)))
    }

    /// `Release.gpg`: one armoured block holding a detached signature of
    /// the text's bytes by every key.
    pub fn detach_sign(&self, text: &str) -> Result<String, SigningError> {
        let sigs = self
            .keys
            .iter()
            .map(|k| k.sign(SignatureType::Binary, text.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.fail(reason(&e)))?;
        armored(&sigs, pgp::armor::BlockType::Signature).map_err(|e| self.fail(reason(&e)))
    }

    /// Checks that `sigs` hold a valid signature over `data` by every key;
    /// names the first key without one.
    fn check_all(&self, sigs: &[Signature], data: &[u8]) -> Result<(), SigningError> {
        for k in &self.keys {
            let good = sigs
                .iter()
                .any(|s| k.issued(s) && k.verify(s, data).is_ok());
            if !good {
                return Err(self.fail(format!("no valid signature by key {}", k.info.fingerprint)));
            }
        }
        Ok(())
    }

    /// Checks an `InRelease` against these keys (a valid signature by each);
    /// returns the signed text.
    pub fn verify_clear(&self, armored: &str) -> Result<String, SigningError> {
        let (msg, _) =
            CleartextSignedMessage::from_string(armored).map_err(|e| self.fail(reason(&e)))?;
        let signed = msg.signed_text();
        self.check_all(msg.signatures(), signed.as_bytes())?;
        // The signed text is normalised to CRLF line ends; Release files use LF.
        Ok(signed.replace("\r\n", "\n"))
    }

    /// Checks a `Release.gpg` against these keys (a valid signature by
    /// each) and the text it signs.
    pub fn verify_detached(&self, text: &str, armored: &str) -> Result<(), SigningError> {
        let sigs = detached_signatures(armored).map_err(|e| self.fail(reason(&e)))?;
        self.check_all(&sigs, text.as_bytes())
    }
}

/// The signatures of an armoured detached signature block.
fn detached_signatures(armored: &str) -> pgp::errors::Result<Vec<Signature>> {
    let (sigs, _) = DetachedSignature::from_string_many(armored)?;
    sigs.map(|s| s.map(|d| d.signature)).collect()
}

/// Who signed an `InRelease` or a `Release.gpg`: the issuer fingerprints
/// (upper-case hex; a key ID where a signature names no fingerprint).
pub fn issuers(armored: &str) -> Result<Vec<String>, String> {
    let sigs = if armored.contains("-----BEGIN PGP SIGNED MESSAGE-----") {
        let (msg, _) = CleartextSignedMessage::from_string(armored).map_err(|e| reason(&e))?;
        msg.signatures().to_vec()
    } else {
        detached_signatures(armored).map_err(|e| reason(&e))?
    };
    Ok(sigs
        .iter()
        .map(
            |s| match (s.issuer_fingerprint().first(), s.issuer_key_id().first()) {
                (Some(fp), _) => hex_upper(fp.as_bytes()),
                (None, Some(id)) => hex_upper(id.as_ref()),
                (None, None) => "unknown".into(),
            },
        )
        .collect())
}

/// The fingerprints of the keys in a binary keyring (`keys/repo.gpg`).
pub fn keyring_fingerprints(bytes: &[u8]) -> Result<Vec<String>, String> {
    SignedPublicKey::from_bytes_many(bytes)
        .map_err(|e| reason(&e))?
        .map(|k| {
            k.map(|k| hex_upper(k.fingerprint().as_bytes()))
                .map_err(|e| reason(&e))
        })
        .collect()
}

/// The algorithms `raptr key generate` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Ed25519 (OpenPGP v4 "EdDSA legacy", what every gpgv since GnuPG 2.1
    /// and sqv accept): small, fast, the default.
    Ed25519,
    /// RSA, 3072 or 4096 bits, for sites whose policy asks for RSA.
    Rsa(u32),
}

impl std::str::FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ed25519" => Ok(Algorithm::Ed25519),
            "rsa3072" => Ok(Algorithm::Rsa(3072)),
            "rsa4096" => Ok(Algorithm::Rsa(4096)),
            _ => Err(format!(
                "{s:?} is not an algorithm raptr makes keys with: ed25519 (the default), rsa3072 or rsa4096"
            )),
        }
    }
}

/// A new key pair: the armoured secret key, and the signer made from it.
/// One primary key that certifies and signs, no passphrase (the secret
/// lives in Secrets Manager or in a file only its owner reads).
pub fn generate(name: &str, algorithm: Algorithm) -> Result<(String, Signer), SigningError> {
    let fail = |problem: String| SigningError {
        source_name: name.to_string(),
        problem,
    };
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(fail("a key's name is one line of text".into()));
    }
    let key_type = match algorithm {
        Algorithm::Ed25519 => KeyType::Ed25519Legacy,
        Algorithm::Rsa(bits) => KeyType::Rsa(bits),
    };
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(key_type)
        .can_certify(true)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .preferred_hash_algorithms(vec![HashAlgorithm::Sha512, HashAlgorithm::Sha256].into())
        .primary_user_id(name.to_string());
    let secret = params
        .build()
        .map_err(|e| fail(reason(&e)))?
        .generate(rand::thread_rng())
        .map_err(|e| fail(reason(&e)))?;
    let armored = secret
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| fail(reason(&e)))?;
    let signer = Signer::from_secret(armored.as_bytes(), name)?;
    Ok((armored, signer))
}

/// What the `pgp` crate says went wrong, on one line and without the
/// backtrace its errors carry when `RUST_BACKTRACE` is set.
pub(crate) fn reason(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let text = text.split(", backtrace:").next().unwrap_or_default();
    raptr_formats::quote::line(text.lines().next().unwrap_or_default()).into_owned()
}

fn hex_upper(bytes: &[u8]) -> String {
    raptr_formats::hash::hex(bytes).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_and_sign() {
        let (armored, signer) =
            generate("raptr test <test@raptr.invalid>", Algorithm::Ed25519).expect("generate");
        assert!(armored.starts_with("-----BEGIN PGP PRIVATE KEY BLOCK-----"));
        let again = Signer::from_secret(armored.as_bytes(), "test").expect("parse");
        assert_eq!(again.fingerprint(), signer.fingerprint());
        assert_eq!(signer.fingerprint().len(), 40);
        assert!(signer
            .public_asc()
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----"));
        let text = "Origin: raptr\nSuite: stable\n";
        let clear = signer.clearsign(text).expect("clearsign");
        assert!(clear
            .starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: raptr\n"));
        let (parsed, _) = CleartextSignedMessage::from_string(&clear).expect("parses");
        let public = SignedPublicKey::from_bytes(signer.public_gpg()).expect("public");
        parsed.verify(&public.primary_key).expect("verifies");
        let detached = signer.detach_sign(text).expect("detach");
        let (sig, _) = DetachedSignature::from_string(&detached).expect("parses");
        sig.verify(&public.primary_key, text.as_bytes())
            .expect("verifies");
        assert!(sig.verify(&public.primary_key, b"Origin: evil\n").is_err());
        assert_eq!(signer.verify_clear(&clear).expect("verifies"), text);
        signer.verify_detached(text, &detached).expect("verifies");
        assert!(signer.verify_detached("Origin: evil\n", &detached).is_err());
        let tampered = clear.replace("Suite: stable", "Suite: evil");
        assert!(signer.verify_clear(&tampered).is_err());
    }

    #[test]
    fn garbage_is_not_a_key() {
        let e = Signer::from_secret(b"hello", "private/signing-key.asc").expect_err("refused");
        assert!(
            e.to_string()
                .starts_with("signing key private/signing-key.asc: "),
            "{e}"
        );
        assert!(generate("two\nlines", Algorithm::Ed25519).is_err());
    }
}
