//! OpenPGP signing of Release files, in Rust (the `pgp` crate): `InRelease`
//! (cleartext signature) and `Release.gpg` (detached, armoured), both of
//! which apt's `gpgv` verifies, and the key pairs `raptr key generate` makes.
//!
//! Keys are Ed25519 (OpenPGP v4, "EdDSA legacy"), the kind every gpgv since
//! GnuPG 2.1 and Sequoia's sqv accept: one primary key that certifies and
//! signs, no subkeys, no passphrase (the secret lives in Secrets Manager or
//! in a file only the repository's owner reads).

use pgp::composed::{
    ArmorOptions, CleartextSignedMessage, Deserializable, DetachedSignature, EncryptionCaps,
    KeyType, SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password};

/// A signing failure: a key that does not parse or cannot sign.
#[derive(Debug, thiserror::Error)]
#[error("signing key {source_name}: {problem}")]
pub struct SigningError {
    pub source_name: String,
    pub problem: String,
}

/// A repository's signing key, ready to sign.
pub struct Signer {
    secret: SignedSecretKey,
    public_asc: String,
    public_gpg: Vec<u8>,
    fingerprint: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({})", self.fingerprint)
    }
}

impl Signer {
    /// Reads an armoured (or binary) secret key; `source_name` names it in
    /// errors (a file path or a secret's name).
    pub fn from_secret(bytes: &[u8], source_name: &str) -> Result<Signer, SigningError> {
        let fail = |problem: String| SigningError {
            source_name: source_name.to_string(),
            problem,
        };
        let secret = match std::str::from_utf8(bytes) {
            Ok(text) if text.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") => {
                SignedSecretKey::from_string(text)
                    .map(|(k, _)| k)
                    .map_err(|e| fail(format!("not an OpenPGP secret key: {e}")))?
            }
            _ => SignedSecretKey::from_bytes(bytes)
                .map_err(|e| fail(format!("not an OpenPGP secret key: {e}")))?,
        };
        secret
            .verify_bindings()
            .map_err(|e| fail(format!("its self-signatures do not verify: {e}")))?;
        let public = SignedPublicKey::from(secret.clone());
        let public_asc = public
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| fail(e.to_string()))?;
        let public_gpg = public.to_bytes().map_err(|e| fail(e.to_string()))?;
        let fingerprint = crate::signing::hex_upper(secret.fingerprint().as_bytes());
        Ok(Signer {
            secret,
            public_asc,
            public_gpg,
            fingerprint,
        })
    }

    /// The key's fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The public key, armoured (`keys/repo.asc`).
    pub fn public_asc(&self) -> &str {
        &self.public_asc
    }

    /// The public key, binary (`keys/repo.gpg`, for `signed-by`).
    pub fn public_gpg(&self) -> &[u8] {
        &self.public_gpg
    }

    fn fail(&self, problem: impl std::fmt::Display) -> SigningError {
        SigningError {
            source_name: self.fingerprint.clone(),
            problem: problem.to_string(),
        }
    }

    /// `InRelease`: the text with a cleartext signature.
    pub fn clearsign(&self, text: &str) -> Result<String, SigningError> {
        let msg = CleartextSignedMessage::sign(
            rand::thread_rng(),
            text,
            &self.secret.primary_key,
            &Password::empty(),
        )
        .map_err(|e| self.fail(e))?;
        msg.to_armored_string(ArmorOptions::default())
            .map_err(|e| self.fail(e))
    }

    /// `Release.gpg`: an armoured detached signature of the text's bytes.
    pub fn detach_sign(&self, text: &str) -> Result<String, SigningError> {
        let sig = DetachedSignature::sign_binary_data(
            rand::thread_rng(),
            &self.secret.primary_key,
            &Password::empty(),
            HashAlgorithm::Sha512,
            text.as_bytes(),
        )
        .map_err(|e| self.fail(e))?;
        sig.to_armored_string(ArmorOptions::default())
            .map_err(|e| self.fail(e))
    }
}

impl Signer {
    /// Checks an `InRelease` against this key; returns the signed text.
    pub fn verify_clear(&self, armored: &str) -> Result<String, SigningError> {
        let (msg, _) = CleartextSignedMessage::from_string(armored).map_err(|e| self.fail(e))?;
        let public = SignedPublicKey::from(self.secret.clone());
        msg.verify(&public.primary_key).map_err(|e| self.fail(e))?;
        // The signed text is normalised to CRLF line ends; Release files use LF.
        Ok(msg.signed_text().replace("\r\n", "\n"))
    }

    /// Checks a `Release.gpg` against this key and the text it signs.
    pub fn verify_detached(&self, text: &str, armored: &str) -> Result<(), SigningError> {
        let (sig, _) = DetachedSignature::from_string(armored).map_err(|e| self.fail(e))?;
        let public = SignedPublicKey::from(self.secret.clone());
        sig.verify(&public.primary_key, text.as_bytes())
            .map_err(|e| self.fail(e))
    }
}

/// A new key pair: the armoured secret key, and the signer made from it.
pub fn generate(name: &str) -> Result<(String, Signer), SigningError> {
    let fail = |problem: String| SigningError {
        source_name: name.to_string(),
        problem,
    };
    if name.trim().is_empty() || name.chars().any(char::is_control) {
        return Err(fail("a key's name is one line of text".into()));
    }
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .primary_user_id(name.to_string());
    let secret = params
        .build()
        .map_err(|e| fail(e.to_string()))?
        .generate(rand::thread_rng())
        .map_err(|e| fail(e.to_string()))?;
    let armored = secret
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| fail(e.to_string()))?;
    let signer = Signer::from_secret(armored.as_bytes(), name)?;
    Ok((armored, signer))
}

fn hex_upper(bytes: &[u8]) -> String {
    raptr_formats::hash::hex(bytes).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_and_sign() {
        let (armored, signer) = generate("raptr test <test@raptr.invalid>").expect("generate");
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
            .starts_with("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: raptr\n"));
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
        assert!(generate("two\nlines").is_err());
    }
}
