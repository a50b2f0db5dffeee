//! One signing key as operators have it: an OpenPGP secret key exported by
//! GnuPG (or made by `raptr key generate`), armoured or binary, checked
//! before anything is signed with it.
//!
//! Loading picks the part that signs the way GnuPG does: the newest
//! signing-capable subkey whose secret is present, else the primary key.
//! A primary exported as a GnuPG stub (`--export-secret-subkeys`: the
//! primary stays offline) is fine as long as a subkey can sign. A part
//! protected by a passphrase is unlocked once, here; the passphrase is not
//! kept.
//!
//! The checks follow what apt's verifiers accept today (gpgv with apt's
//! `Assert-Pubkey-Algo`, and Debian 13's `sqv`): RSA of at least 2048 bits
//! (a warning below 3072), Ed25519, Ed448, ECDSA on the NIST curves; no
//! expired or revoked key or subkey; self-signatures made with SHA-256 or
//! stronger. A trial signature, verified with the public half, proves the
//! key can sign before the publisher writes anything.

use pgp::composed::{
    ArmorOptions, Deserializable, SignedPublicKey, SignedSecretKey, SignedSecretSubKey,
};
use pgp::crypto::ecc_curve::ECCCurve;
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{SecretKey, SecretSubkey, Signature, SignatureType};
use pgp::ser::Serialize as _;
use pgp::types::{
    EcdsaPublicParams, EddsaLegacyPublicParams, KeyDetails, Password, PublicParams, S2kParams,
    SecretParams, StringToKey, Tag,
};
use serde::Serialize;

use super::{hex_upper, reason, SigningError};

/// The largest key file or secret raptr reads (a key with many user IDs
/// and certifications is a few tens of KiB).
pub const MAX_KEY_BYTES: u64 = 1 << 20;

/// Below this many bits an RSA key is refused, as apt refuses it.
const RSA_MIN_BITS: usize = 2048;
/// Below this many bits an RSA key is accepted with a warning.
const RSA_WARN_BITS: usize = 3072;
/// A key expiring sooner than this is accepted with a warning.
const EXPIRY_WARNING_SECS: u64 = 30 * 86_400;

/// What a loaded key is, for people and for `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The key's (primary key's) fingerprint, upper-case hex: what
    /// `gpg --list-keys` and `signed-by` name.
    pub fingerprint: String,
    /// The fingerprint of the part that signs: a subkey's, or the
    /// primary's own.
    pub signing_fingerprint: String,
    /// `ed25519`, `rsa4096`, `nistp256`, ... of the part that signs.
    pub algorithm: String,
    /// Creation and expiry of the key, seconds since the epoch.
    pub created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    pub user_ids: Vec<String>,
    /// Where it was read from (a file or a secret's name).
    pub source: String,
    /// Accepted, but worth a look (a short RSA key, an expiry soon).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The unlocked secret part that signs.
pub(crate) enum Part {
    Primary(SecretKey),
    Sub(SecretSubkey),
}

/// One loaded, checked signing key.
pub struct Key {
    pub(crate) part: Part,
    pub(crate) public: SignedPublicKey,
    pub(crate) public_gpg: Vec<u8>,
    pub info: KeyInfo,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({})", self.info.fingerprint)
    }
}

pub(crate) fn now_secs() -> u64 {
    crate::time::now_ms() / 1000
}

/// A date for messages: `2026-12-02`.
pub fn date(secs: u64) -> String {
    crate::time::rfc3339(secs.saturating_mul(1000))[..10].to_string()
}

/// What an algorithm is called in messages, and whether apt's policy
/// takes it (`Err` says why not).
fn algorithm(params: &PublicParams) -> (String, Result<Option<String>, String>) {
    match params {
        PublicParams::RSA(p) => {
            use rsa::traits::PublicKeyParts;
            let bits = p.key.n().bits();
            let name = format!("rsa{bits}");
            let verdict = if bits < RSA_MIN_BITS {
                Err(format!(
                    "RSA keys of {bits} bits are refused by apt (at least {RSA_MIN_BITS}); \
                     make a new key with `raptr key generate` or `gpg --quick-gen-key NAME rsa4096`"
                ))
            } else if bits < RSA_WARN_BITS {
                Ok(Some(format!(
                    "RSA with {bits} bits is accepted by apt today, but below the {RSA_WARN_BITS} \
                     bits recommended; plan a rotation to ed25519 or rsa4096"
                )))
            } else {
                Ok(None)
            };
            (name, verdict)
        }
        PublicParams::EdDSALegacy(EddsaLegacyPublicParams::Ed25519 { .. })
        | PublicParams::Ed25519(_) => ("ed25519".into(), Ok(None)),
        PublicParams::Ed448(_) => ("ed448".into(), Ok(None)),
        PublicParams::EdDSALegacy(EddsaLegacyPublicParams::Unsupported { curve, .. }) => (
            format!("eddsa-{curve}"),
            Err(format!(
                "EdDSA on {curve} in this form (GnuPG's v4/v5 Ed448) is not supported by raptr's \
                 OpenPGP library; use an ed25519 or rsa4096 key"
            )),
        ),
        PublicParams::ECDSA(e) => match e {
            EcdsaPublicParams::P256 { .. } => ("nistp256".into(), Ok(None)),
            EcdsaPublicParams::P384 { .. } => ("nistp384".into(), Ok(None)),
            EcdsaPublicParams::P521 { .. } => ("nistp521".into(), Ok(None)),
            other => {
                let curve: ECCCurve = other.curve();
                (
                    format!("ecdsa-{curve}"),
                    Err(format!("ECDSA on {curve} is not accepted by apt")),
                )
            }
        },
        PublicParams::DSA(_) => (
            "dsa".into(),
            Err("DSA keys are refused by apt; use an ed25519 or rsa4096 key".into()),
        ),
        other => (
            format!("{other:?}")
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or("unknown")
                .to_ascii_lowercase(),
            Err("this algorithm cannot sign".into()),
        ),
    }
}

/// Self-signatures must use SHA-256 or stronger (Debian 13's sqv rejects
/// SHA-1 ones, and apt follows it).
fn strong(hash: Option<HashAlgorithm>) -> bool {
    matches!(
        hash,
        Some(
            HashAlgorithm::Sha256
                | HashAlgorithm::Sha384
                | HashAlgorithm::Sha512
                | HashAlgorithm::Sha3_256
                | HashAlgorithm::Sha3_512
        )
    )
}

fn hash_name(hash: Option<HashAlgorithm>) -> String {
    hash.map(|h| format!("{h:?}").to_ascii_uppercase())
        .unwrap_or_else(|| "an unknown hash".into())
}

/// Issued by `key` (or naming no issuer at all).
fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let ids = sig.issuer_key_id();
    let fps = sig.issuer_fingerprint();
    (ids.is_empty() && fps.is_empty())
        || ids.iter().any(|id| **id == key.legacy_key_id())
        || fps.iter().any(|fp| **fp == key.fingerprint())
}

pub(crate) fn created(sig: &Signature) -> u64 {
    sig.created().map(|t| u64::from(t.as_secs())).unwrap_or(0)
}

/// Where a secret part is: present (maybe locked), or a GnuPG stub.
fn stub(params: &SecretParams) -> Option<&'static str> {
    let SecretParams::Encrypted(e) = params else {
        return None;
    };
    match e.string_to_key_params() {
        S2kParams::Cfb { s2k, .. } | S2kParams::MalleableCfb { s2k, .. }
            if matches!(s2k, StringToKey::Private { typ: 101, .. }) =>
        {
            let card = matches!(s2k, StringToKey::Private { unknown, .. }
                if unknown.len() >= 4 && unknown[3] == 2);
            Some(if card {
                "its secret is on a smartcard (GnuPG exported a stub)"
            } else {
                "its secret is not in this export (GnuPG exported a stub: the part stays offline)"
            })
        }
        _ => None,
    }
}

fn locked(params: &SecretParams) -> bool {
    matches!(params, SecretParams::Encrypted(_))
}

/// The most memory an Argon2-protected key may ask for to be unlocked
/// (RFC 9580 recommends 2 GiB at most; the key file declares it).
const MAX_ARGON2_KIB: u64 = 2 << 20;

/// Refuses a protection that would take more memory than raptr allows.
fn affordable(params: &SecretParams) -> Result<(), String> {
    let SecretParams::Encrypted(e) = params else {
        return Ok(());
    };
    let s2k = match e.string_to_key_params() {
        S2kParams::Aead { s2k, .. }
        | S2kParams::Cfb { s2k, .. }
        | S2kParams::MalleableCfb { s2k, .. } => s2k,
        _ => return Ok(()),
    };
    if let StringToKey::Argon2 { m_enc, .. } = s2k {
        let kib = 1u64.checked_shl(u32::from(*m_enc)).unwrap_or(u64::MAX);
        if kib > MAX_ARGON2_KIB {
            return Err(format!(
                "its passphrase protection (Argon2) asks for {} MiB to unlock; raptr allows at most {} MiB",
                kib >> 10,
                MAX_ARGON2_KIB >> 10
            ));
        }
    }
    Ok(())
}

/// The key's user IDs with a valid, newest self-signature that is not a
/// revocation, and the self-signatures the key's validity rests on.
struct Bound<'a> {
    user_ids: Vec<String>,
    /// The newest valid self-signature (direct or over a user ID): its
    /// key flags and expiry describe the primary key.
    newest: Option<&'a Signature>,
    relied_on: Vec<(String, &'a Signature)>,
}

fn bindings<'a>(secret: &'a SignedSecretKey) -> Bound<'a> {
    let primary = secret.primary_key.public_key();
    let mut out = Bound {
        user_ids: Vec::new(),
        newest: None,
        relied_on: Vec::new(),
    };
    let consider = |sig: &'a Signature, what: String, out: &mut Bound<'a>| {
        if out.newest.is_none_or(|n| created(sig) >= created(n)) {
            out.newest = Some(sig);
        }
        out.relied_on.push((what, sig));
    };
    for user in &secret.details.users {
        let name = raptr_formats::quote::line(&String::from_utf8_lossy(user.id.id())).into_owned();
        let newest = user
            .signatures
            .iter()
            .filter(|s| issued_by(s, primary))
            .filter(|s| {
                s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
            })
            .max_by_key(|s| created(s));
        match newest {
            Some(s) if s.typ() == Some(SignatureType::CertRevocation) => {}
            Some(s) => {
                out.user_ids.push(name.clone());
                consider(
                    s,
                    format!("the self-signature on user ID {name:?}"),
                    &mut out,
                );
            }
            None => {}
        }
    }
    let direct = secret
        .details
        .direct_signatures
        .iter()
        .filter(|s| issued_by(s, primary) && s.verify_key(primary).is_ok())
        .max_by_key(|s| created(s));
    if let Some(s) = direct {
        consider(s, "its direct-key self-signature".into(), &mut out);
    }
    out
}

/// A subkey's state: why it cannot sign, or its newest binding and the
/// creation time to rank it.
fn subkey_verdict<'a>(
    secret: &SignedSecretKey,
    sub: &'a SignedSecretSubKey,
    now: u64,
) -> Result<(&'a Signature, &'a Signature), String> {
    let primary = secret.primary_key.public_key();
    let fpr = hex_upper(sub.key.fingerprint().as_bytes());
    let valid: Vec<&Signature> = sub
        .signatures
        .iter()
        .filter(|s| issued_by(s, primary))
        .filter(|s| {
            s.verify_subkey_binding(primary, sub.key.public_key())
                .is_ok()
        })
        .collect();
    if let Some(r) = valid
        .iter()
        .find(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
    {
        return Err(format!("subkey {fpr} was revoked on {}", date(created(r))));
    }
    let binding = valid
        .into_iter()
        .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
        .max_by_key(|s| created(s))
        .ok_or_else(|| format!("subkey {fpr} has no valid binding signature"))?;
    if !binding.key_flags().sign() {
        return Err(format!("subkey {fpr} is not a signing subkey"));
    }
    let back = binding
        .embedded_signature()
        .filter(|b| {
            b.verify_primary_key_binding(sub.key.public_key(), primary)
                .is_ok()
        })
        .ok_or_else(|| {
            format!(
                "signing subkey {fpr} has no valid back-signature (it is not cross-certified; \
                 gpgv ignores it)"
            )
        })?;
    let born = u64::from(sub.key.created_at().as_secs());
    if let Some(d) = binding.key_expiration_time() {
        let end = born + u64::from(d.as_secs());
        if d.as_secs() > 0 && end <= now {
            return Err(format!("subkey {fpr} expired on {}", date(end)));
        }
    }
    if let Some(why) = stub(sub.key.secret_params()) {
        return Err(format!("subkey {fpr}: {why}"));
    }
    Ok((binding, back))
}

impl Key {
    /// Reads one secret key (armoured or binary) from `bytes` and checks it;
    /// `source` names it in errors, `passphrase` unlocks a protected part.
    pub fn load(bytes: &[u8], source: &str, passphrase: Option<&str>) -> Result<Key, SigningError> {
        Self::load_at(bytes, source, passphrase, now_secs())
    }

    pub(crate) fn load_at(
        bytes: &[u8],
        source: &str,
        passphrase: Option<&str>,
        now: u64,
    ) -> Result<Key, SigningError> {
        let fail = |problem: String| SigningError {
            source_name: source.to_string(),
            problem,
        };
        let secret = parse(bytes).map_err(fail)?;
        let fpr = hex_upper(secret.fingerprint().as_bytes());
        let fail = |problem: String| SigningError {
            source_name: format!("{source} (key {fpr})"),
            problem,
        };
        let primary = secret.primary_key.public_key();
        if let Some(r) = secret
            .details
            .revocation_signatures
            .iter()
            .find(|s| issued_by(s, primary) && s.verify_key(primary).is_ok())
        {
            let reason = r
                .revocation_reason_string()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            return Err(fail(format!(
                "it was revoked on {}{reason}; apt refuses its signatures",
                date(created(r))
            )));
        }
        let bound = bindings(&secret);
        let Some(newest) = bound.newest else {
            return Err(fail(
                "it has no valid self-signature (no user ID bound to it)".into(),
            ));
        };
        for (what, sig) in &bound.relied_on {
            if !strong(sig.hash_alg()) {
                return Err(fail(format!(
                    "{what} uses {}; Debian's sqv rejects self-signatures weaker than SHA-256. \
                     Re-sign it with a current GnuPG (for example \
                     `gpg --cert-digest-algo SHA512 --quick-set-expire {fpr} <expiry>`) and export it again",
                    hash_name(sig.hash_alg())
                )));
            }
        }
        let born = u64::from(secret.primary_key.created_at().as_secs());
        let expires = newest
            .key_expiration_time()
            .filter(|d| d.as_secs() > 0)
            .map(|d| born + u64::from(d.as_secs()));
        if let Some(end) = expires.filter(|end| *end <= now) {
            return Err(fail(format!(
                "it expired on {}; apt refuses signatures by an expired key. Extend it \
                 (`gpg --quick-set-expire {fpr} 2y`) and export it again, or rotate to a new key",
                date(end)
            )));
        }
        // The part that signs: the newest usable signing subkey, else the
        // primary (if it may sign and its secret is here).
        let mut why_not: Vec<String> = Vec::new();
        let mut best: Option<(&SignedSecretSubKey, &Signature, &Signature)> = None;
        for sub in &secret.secret_subkeys {
            match subkey_verdict(&secret, sub, now) {
                Ok((binding, back)) => {
                    if best.is_none_or(|(b, _, _)| sub.key.created_at() >= b.key.created_at()) {
                        best = Some((sub, binding, back));
                    }
                }
                Err(e) => why_not.push(e),
            }
        }
        let mut warnings = Vec::new();
        let (part, signing_params, sub_expires) = match best {
            Some((sub, binding, back)) => {
                for (what, sig) in [("binding", binding), ("back-signature", back)] {
                    if !strong(sig.hash_alg()) {
                        return Err(fail(format!(
                            "the {what} of signing subkey {} uses {}; Debian's sqv rejects \
                             self-signatures weaker than SHA-256",
                            hex_upper(sub.key.fingerprint().as_bytes()),
                            hash_name(sig.hash_alg())
                        )));
                    }
                }
                let sub_born = u64::from(sub.key.created_at().as_secs());
                let sub_end = binding
                    .key_expiration_time()
                    .filter(|d| d.as_secs() > 0)
                    .map(|d| sub_born + u64::from(d.as_secs()));
                let mut key = sub.key.clone();
                affordable(key.secret_params()).map_err(&fail)?;
                unlock(
                    locked(key.secret_params()),
                    passphrase,
                    |pw| key.remove_password(pw),
                    &format!("subkey {}", hex_upper(sub.key.fingerprint().as_bytes())),
                )
                .map_err(&fail)?;
                let params = key.public_key().public_params().clone();
                (Part::Sub(key), params, sub_end)
            }
            None => {
                let flags = newest.key_flags();
                let no_flags = newest
                    .config()
                    .map(|c| {
                        !c.hashed_subpackets()
                            .any(|p| matches!(p.data, pgp::packet::SubpacketData::KeyFlags(_)))
                    })
                    .unwrap_or(true);
                if !flags.sign() && !no_flags {
                    why_not.insert(0, "the primary key is not allowed to sign".into());
                    return Err(fail(format!(
                        "nothing in it can sign: {}",
                        why_not.join("; ")
                    )));
                }
                if let Some(why) = stub(secret.primary_key.secret_params()) {
                    why_not.insert(0, format!("primary key: {why}"));
                    return Err(fail(format!(
                        "nothing in it can sign: {}{}",
                        why_not.join("; "),
                        if secret.secret_subkeys.is_empty() {
                            "; export the signing subkey too (`gpg --export-secret-subkeys KEY`)"
                        } else {
                            ""
                        }
                    )));
                }
                let mut key = secret.primary_key.clone();
                affordable(key.secret_params()).map_err(&fail)?;
                unlock(
                    locked(key.secret_params()),
                    passphrase,
                    |pw| key.remove_password(pw),
                    "primary key",
                )
                .map_err(&fail)?;
                let params = key.public_key().public_params().clone();
                (Part::Primary(key), params, None)
            }
        };
        let (algorithm, verdict) = algorithm(&signing_params);
        match verdict {
            Err(e) => return Err(fail(format!("{algorithm}: {e}"))),
            Ok(Some(w)) => warnings.push(w),
            Ok(None) => {}
        }
        let expires = match (expires, sub_expires) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(end) = expires.filter(|end| end.saturating_sub(now) < EXPIRY_WARNING_SECS) {
            warnings.push(format!(
                "it expires on {}; extend it or rotate before then, or apt will refuse the repository",
                date(end)
            ));
        }
        let public = secret.to_public_key();
        let public_gpg = public.to_bytes().map_err(|e| fail(reason(&e)))?;
        let signing_fingerprint = match &part {
            Part::Primary(k) => hex_upper(k.fingerprint().as_bytes()),
            Part::Sub(k) => hex_upper(k.fingerprint().as_bytes()),
        };
        let key = Key {
            part,
            public,
            public_gpg,
            info: KeyInfo {
                fingerprint: fpr.clone(),
                signing_fingerprint,
                algorithm,
                created: born,
                expires,
                user_ids: bound.user_ids,
                source: source.to_string(),
                warnings,
            },
        };
        // A trial signature, checked with the public half.
        let probe = "raptr trial signature\n";
        let sig = key
            .sign(SignatureType::Binary, probe.as_bytes())
            .map_err(|e| fail(format!("it cannot sign: {}", reason(&e))))?;
        key.verify(&sig, probe.as_bytes()).map_err(|e| {
            fail(format!(
                "its trial signature does not verify: {}",
                reason(&e)
            ))
        })?;
        Ok(key)
    }

    /// The armoured public key.
    pub fn public_asc(&self) -> Result<String, SigningError> {
        self.public
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| SigningError {
                source_name: self.info.fingerprint.clone(),
                problem: reason(&e),
            })
    }

    /// The binary public key (`signed-by`).
    pub fn public_gpg(&self) -> &[u8] {
        &self.public_gpg
    }

    /// A v4 signature by the signing part over `data` (SHA-512; a v6
    /// key's own default).
    pub(crate) fn sign(&self, typ: SignatureType, data: &[u8]) -> pgp::errors::Result<Signature> {
        match &self.part {
            Part::Primary(k) => sign_with(k, typ, data),
            Part::Sub(k) => sign_with(k, typ, data),
        }
    }

    /// Checks `sig` over `data` against the signing part.
    pub(crate) fn verify(&self, sig: &Signature, data: &[u8]) -> pgp::errors::Result<()> {
        match &self.part {
            Part::Primary(k) => sig.verify(k.public_key(), data),
            Part::Sub(k) => sig.verify(k.public_key(), data),
        }
    }

    /// Whether `sig` names this key's signing part as its issuer.
    pub(crate) fn issued(&self, sig: &Signature) -> bool {
        match &self.part {
            Part::Primary(k) => issued_by(sig, k.public_key()),
            Part::Sub(k) => issued_by(sig, k.public_key()),
        }
    }
}

fn sign_with<K>(key: &K, typ: SignatureType, data: &[u8]) -> pgp::errors::Result<Signature>
where
    K: pgp::types::SigningKey + KeyDetails,
{
    use pgp::packet::{SignatureConfig, Subpacket, SubpacketData};
    use pgp::types::{KeyVersion, Timestamp};
    let mut config = match key.version() {
        KeyVersion::V4 => SignatureConfig::v4(typ, key.algorithm(), HashAlgorithm::Sha512),
        _ => SignatureConfig::from_key(rand::thread_rng(), key, typ)?,
    };
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::now()))?,
        Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
    ];
    if key.version() == KeyVersion::V4 {
        config.unhashed_subpackets = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
            key.legacy_key_id(),
        ))?];
    }
    config.sign(key, &Password::empty(), data)
}

/// Removes a part's passphrase with `remove`, or says why it cannot.
fn unlock(
    is_locked: bool,
    passphrase: Option<&str>,
    remove: impl FnOnce(&Password) -> pgp::errors::Result<()>,
    what: &str,
) -> Result<(), String> {
    if !is_locked {
        return Ok(());
    }
    let Some(pw) = passphrase else {
        return Err(format!(
            "its {what} is protected by a passphrase, and none is configured \
             (signing_key.passphrase: a secret, a file or an environment variable; \
             or a \"passphrase\" field beside \"key\" in the key's secret)"
        ));
    };
    remove(&Password::from(pw)).map_err(|_| {
        format!("the configured passphrase does not unlock its {what} (wrong passphrase?)")
    })
}

const PUBLIC_NOT_SECRET: &str = "holds a public key; the signing key is the secret key \
     (`gpg --export-secret-keys KEY`, or `--export-secret-subkeys KEY` to leave the primary offline)";

/// Whether `bytes` is a public key (binary), for a clearer refusal.
fn is_public_key(bytes: &[u8]) -> bool {
    pgp::composed::SignedPublicKey::from_bytes_many(bytes)
        .map(|mut keys| matches!(keys.next(), Some(Ok(_))))
        .unwrap_or(false)
}

/// Parses exactly one secret key, armoured or binary.
fn parse(bytes: &[u8]) -> Result<SignedSecretKey, String> {
    if bytes.len() as u64 > MAX_KEY_BYTES {
        return Err(format!(
            "is {} bytes; a signing key is at most {MAX_KEY_BYTES}",
            bytes.len()
        ));
    }
    let text = std::str::from_utf8(bytes).ok();
    if text.is_some_and(|t| t.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----")) {
        return Err(PUBLIC_NOT_SECRET.into());
    }
    let not_secret = |e: String| {
        if is_public_key(bytes) {
            PUBLIC_NOT_SECRET.to_string()
        } else {
            format!("not an OpenPGP secret key: {e}")
        }
    };
    let keys: Vec<pgp::errors::Result<SignedSecretKey>> = match text {
        Some(t) if t.contains("-----BEGIN PGP PRIVATE KEY BLOCK-----") => {
            SignedSecretKey::from_string_many(t)
                .map_err(|e| not_secret(reason(&e)))?
                .0
                .collect()
        }
        _ => SignedSecretKey::from_bytes_many(bytes)
            .map_err(|e| not_secret(reason(&e)))?
            .collect(),
    };
    let mut keys = keys
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| not_secret(reason(&e)))?;
    match keys.len() {
        0 => Err(not_secret("no secret key found".into())),
        1 => Ok(keys.remove(0)),
        n => Err(format!(
            "holds {n} secret keys ({}); give each signing key its own entry",
            keys.iter()
                .map(|k| hex_upper(k.fingerprint().as_bytes()))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_796_169_600), "2026-12-02");
    }
}
