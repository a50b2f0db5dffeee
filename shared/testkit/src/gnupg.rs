//! Keys made by GnuPG at test time, the way operators make them, and the
//! verifiers apt uses (`gpgv`, Debian's `sqv`) as oracles. Nothing here is
//! committed: every key is generated in a scratch home directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch GnuPG home.
#[derive(Debug)]
pub struct Gpg {
    home: PathBuf,
}

fn run(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Gpg {
    /// A new home under `dir` (which must exist).
    pub fn new(dir: &Path) -> Gpg {
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home).expect("gnupg home");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        Gpg { home }
    }

    /// `gpg --batch` in this home, with `passphrase` (empty: none) given
    /// through the loopback pinentry.
    pub fn gpg(&self, passphrase: &str) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &self.home).args([
            "--batch",
            "--quiet",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase,
        ]);
        c
    }

    /// The fingerprint of the (primary) key of `uid`.
    pub fn fingerprint(&self, uid: &str) -> String {
        self.fingerprints(uid)[0].clone()
    }

    /// The fingerprints of `uid`'s primary key and subkeys, in order.
    pub fn fingerprints(&self, uid: &str) -> Vec<String> {
        let out = run(
            self.gpg("").args(["--with-colons", "--list-keys", uid]),
            "gpg --list-keys",
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("fpr:"))
            .map(|l| l.split(':').nth(9).unwrap_or("").to_string())
            .collect()
    }

    /// `gpg --quick-gen-key UID ALGO USAGE EXPIRE`, with `extra` options
    /// before it (`--cert-digest-algo SHA1`, `--faked-system-time ...`).
    /// Returns the fingerprint.
    pub fn generate(
        &self,
        uid: &str,
        algo: &str,
        usage: &str,
        expire: &str,
        passphrase: &str,
        extra: &[&str],
    ) -> String {
        run(
            self.gpg(passphrase)
                .args(extra)
                .args(["--quick-gen-key", uid, algo, usage, expire]),
            &format!("gpg --quick-gen-key {uid} {algo}"),
        );
        self.fingerprint(uid)
    }

    /// `gpg --quick-add-key FPR ALGO USAGE EXPIRE`.
    pub fn add_subkey(&self, fpr: &str, algo: &str, usage: &str, passphrase: &str) {
        run(
            self.gpg(passphrase)
                .args(["--quick-add-key", fpr, algo, usage, "never"]),
            "gpg --quick-add-key",
        );
    }

    /// Revokes `fpr` with the revocation certificate GnuPG made with it.
    pub fn revoke(&self, fpr: &str) {
        let rev = self
            .home
            .join("openpgp-revocs.d")
            .join(format!("{fpr}.rev"));
        let text = std::fs::read_to_string(&rev).expect("revocation certificate");
        // GnuPG guards the certificate with a leading colon.
        let cert = text.replace("\n:-----BEGIN", "\n-----BEGIN");
        let path = self.home.join("revoke.asc");
        std::fs::write(&path, cert).expect("write");
        run(
            self.gpg("").arg("--import").arg(&path),
            "gpg --import revocation",
        );
    }

    /// `gpg --export-secret-keys` (armoured unless `binary`).
    pub fn export_secret(&self, who: &str, passphrase: &str, binary: bool) -> Vec<u8> {
        let mut c = self.gpg(passphrase);
        if !binary {
            c.arg("--armor");
        }
        run(
            c.args(["--export-secret-keys", who]),
            "gpg --export-secret-keys",
        )
        .stdout
    }

    /// `gpg --armor --export-secret-subkeys`: the primary as a stub.
    pub fn export_secret_subkeys(&self, who: &str, passphrase: &str) -> Vec<u8> {
        run(
            self.gpg(passphrase)
                .args(["--armor", "--export-secret-subkeys", who]),
            "gpg --export-secret-subkeys",
        )
        .stdout
    }

    /// `gpg --clearsign` of `text` by `who` (as `debsign` signs a `.changes`).
    pub fn clearsign(&self, who: &str, text: &[u8]) -> Vec<u8> {
        self.sign(who, text, &["--clearsign"])
    }

    /// `gpg --detach-sign` of `text` by `who`, armoured or binary (as
    /// `apt-ftparchive`'s users make `Release.gpg`).
    pub fn detach_sign(&self, who: &str, text: &[u8], armor: bool) -> Vec<u8> {
        if armor {
            self.sign(who, text, &["--detach-sign", "--armor"])
        } else {
            self.sign(who, text, &["--detach-sign"])
        }
    }

    /// `gpg --local-user WHO --digest-algo SHA256 HOW...` with `text` on
    /// its standard input; its output.
    fn sign(&self, who: &str, text: &[u8], how: &[&str]) -> Vec<u8> {
        use std::io::Write;
        let mut child = self
            .gpg("")
            .args(["--local-user", who, "--digest-algo", "SHA256"])
            .args(how)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("gpg runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text)
            .expect("write");
        let out = child.wait_with_output().expect("gpg signs");
        assert!(
            out.status.success(),
            "gpg {how:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `gpg --export` (binary): a keyring for `signed-by`.
    pub fn export_public(&self, who: &str) -> Vec<u8> {
        run(self.gpg("").args(["--export", who]), "gpg --export").stdout
    }

    /// `gpg --armor --export WHO`: a keyring as text (what a secret holds).
    pub fn export_public_armored(&self, who: &str) -> Vec<u8> {
        run(
            self.gpg("").args(["--armor", "--export", who]),
            "gpg --armor --export",
        )
        .stdout
    }
}

/// `gpgv --keyring KEYRING FILE [DATA]`, judged as apt judges it: at least
/// one valid signature by a key in the keyring and no bad, expired or
/// revoked one (a signature by a key the keyring lacks is no failure, so
/// that a repository signed by two keys verifies with either). Returns the
/// verdict and what gpgv said.
pub fn gpgv(keyring: &Path, signed: &Path, data: Option<&Path>) -> (bool, String) {
    let mut c = Command::new("gpgv");
    c.args(["--status-fd", "1", "--keyring"])
        .arg(keyring)
        .arg(signed);
    if let Some(d) = data {
        c.arg(d);
    }
    let out = c.output().expect("gpgv runs");
    let status = String::from_utf8_lossy(&out.stdout);
    let has = |word: &str| {
        status
            .lines()
            .any(|l| l.starts_with(&format!("[GNUPG:] {word} ")))
    };
    let good = has("VALIDSIG")
        && !["BADSIG", "EXPKEYSIG", "REVKEYSIG", "EXPSIG"]
            .iter()
            .any(|w| has(w));
    (
        good,
        format!("{status}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

/// `sqv --keyring KEYRING SIG DATA`: whether it verifies, and what it said.
pub fn sqv(keyring: &Path, sig: &Path, data: &Path) -> (bool, String) {
    let out = Command::new("sqv")
        .arg("--keyring")
        .arg(keyring)
        .arg(sig)
        .arg(data)
        .output()
        .expect("sqv runs (Debian package sqv)");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Splits an `InRelease` into the text it signs and its signature block,
/// written beside it as `NAME.text` and `NAME.sig`, so that a verifier of
/// detached signatures (sqv 1.1) can judge it as apt's sqv judges the
/// whole. Returns the two paths.
pub fn split_inrelease(inrelease: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(inrelease).expect("InRelease");
    let (_, rest) = text.split_once("\n\n").expect("armour headers");
    let (body, sig) = rest
        .split_once("-----BEGIN PGP SIGNATURE-----")
        .expect("signature block");
    // Undo dash-escaping; the line end before the signature is not signed.
    let body: Vec<&str> = body
        .split('\n')
        .map(|l| l.strip_prefix("- ").unwrap_or(l))
        .collect();
    let body = body.join("\n");
    let body = body.strip_suffix('\n').unwrap_or(&body);
    let t = inrelease.with_extension("text");
    let s = inrelease.with_extension("sig");
    std::fs::write(&t, body).expect("write");
    std::fs::write(&s, format!("-----BEGIN PGP SIGNATURE-----{sig}")).expect("write");
    (t, s)
}
