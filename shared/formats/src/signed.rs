//! OpenPGP cleartext-signed documents (`.dsc`, `.changes`, `.buildinfo`).
//!
//! [`strip_signature`] returns the signed text with the armour removed and
//! dash-escaping undone (RFC 4880 §7.1), and says whether a signature was there.
//! It does not verify the signature: that needs a keyring and is a policy
//! decision of the caller. It refuses documents where the text apt or dpkg would
//! read could differ from the text that was signed: content before or after the
//! armour, a second signed block, or an unescaped dash line inside the text.

/// A cleartext document with its armour removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleartext {
    /// The signed text (or the whole document when unsigned), lines ending in `\n`.
    pub text: String,
    /// The armoured signature block, when the document was signed.
    pub signature: Option<String>,
}

impl Cleartext {
    pub fn is_signed(&self) -> bool {
        self.signature.is_some()
    }
}

use crate::quote::excerpt;

const BEGIN_SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &str = "-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &str = "-----END PGP SIGNATURE-----";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("OpenPGP armour: {0}")]
pub struct ArmourError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, ArmourError> {
    Err(ArmourError(msg.into()))
}

/// Splits a possibly cleartext-signed document into its text and signature.
pub fn strip_signature(doc: &str) -> Result<Cleartext, ArmourError> {
    let mut lines = doc.split_inclusive('\n').peekable();
    // Blank lines may precede the armour; nothing else may.
    while let Some(l) = lines.peek() {
        if l.trim().is_empty() {
            lines.next();
        } else {
            break;
        }
    }
    match lines.peek() {
        Some(l) if l.trim_end() == BEGIN_SIGNED => {
            lines.next();
        }
        _ => {
            if doc.contains("-----BEGIN PGP") {
                return fail("an OpenPGP armour block that does not start the document");
            }
            return Ok(Cleartext {
                text: doc.to_string(),
                signature: None,
            });
        }
    }
    // Armour headers (Hash: ...) up to the first empty line.
    loop {
        match lines.next() {
            None => return fail("signed message ends inside its armour headers"),
            Some(l) if l.trim_end().is_empty() => break,
            Some(l) if l.starts_with("Hash:") => {}
            Some(l) => {
                return fail(format!(
                    "unexpected armour header {}",
                    excerpt(l.trim_end())
                ))
            }
        }
    }
    let mut text = String::new();
    let mut found_signature = false;
    for l in lines.by_ref() {
        let bare = l.trim_end_matches(['\n', '\r']);
        if bare == BEGIN_SIGNATURE {
            found_signature = true;
            break;
        }
        if let Some(rest) = l.strip_prefix("- ") {
            text.push_str(rest);
        } else if l.starts_with('-') {
            return fail(format!(
                "unescaped dash line {} in signed text",
                excerpt(bare)
            ));
        } else {
            text.push_str(l);
        }
    }
    if !found_signature {
        return fail("signed message has no signature block");
    }
    // The line break before the signature belongs to the armour, not the text.
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let mut signature = String::from(BEGIN_SIGNATURE);
    signature.push('\n');
    let mut ended = false;
    for l in lines.by_ref() {
        signature.push_str(l);
        if l.trim_end() == END_SIGNATURE {
            ended = true;
            break;
        }
    }
    if !ended {
        return fail("signature block is not terminated");
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return fail("content after the signature block");
    }
    Ok(Cleartext {
        text,
        signature: Some(signature),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nSource: hello\n- -not-a-header\nVersion: 1.0\n-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCgAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn strips_armour_and_dash_escapes() {
        let c = strip_signature(SIGNED).expect("valid");
        assert!(c.is_signed());
        assert_eq!(c.text, "Source: hello\n-not-a-header\nVersion: 1.0\n");
        assert!(c
            .signature
            .as_deref()
            .is_some_and(|s| s.ends_with("-----END PGP SIGNATURE-----\n")));
    }

    #[test]
    fn unsigned_passes_through() {
        let c = strip_signature("Source: a\n").expect("valid");
        assert!(!c.is_signed());
        assert_eq!(c.text, "Source: a\n");
    }

    #[test]
    fn refuses_ambiguous_documents() {
        let trailing = format!("{SIGNED}Source: evil\n");
        let leading = format!("Source: evil\n{SIGNED}");
        let unescaped = SIGNED.replace("- -not", "-not");
        let unterminated = SIGNED.replace("-----END PGP SIGNATURE-----\n", "");
        for doc in [&trailing, &leading, &unescaped, &unterminated] {
            assert!(strip_signature(doc).is_err(), "{doc}");
        }
    }
}
