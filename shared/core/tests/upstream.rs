//! Another archive's signature, checked against a keyring the user names:
//! an `InRelease`, or a `Release` with its detached `Release.gpg`
//! (armoured or binary), made by GnuPG; and, where this machine's apt has
//! fetched one, a real Debian `InRelease` with Debian's archive keyring.

use raptr_core::signing::keyring::Keyring;
use raptr_formats::archive::parse_release;
use raptr_testkit::gnupg::Gpg;

const RELEASE: &str = "Origin: Upstream\nSuite: stable\nCodename: stable\nArchitectures: amd64\nComponents: main\nSHA256:\n 3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a3f2a 10 main/binary-amd64/Packages\n";

#[test]
fn an_upstream_release_is_verified_against_the_keyring_it_is_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gpg = Gpg::new(dir.path());
    let uid = "Upstream <upstream@raptr.invalid>";
    let fpr = gpg.generate(uid, "rsa3072", "cert,sign", "never", "", &[]);
    let keyring = Keyring::parse(&gpg.export_public(uid), "upstream.gpg").expect("keyring");

    let inrelease = String::from_utf8(gpg.clearsign(uid, RELEASE.as_bytes())).expect("text");
    let text = raptr_formats::signed::strip_signature(&inrelease).expect("armour");
    assert_eq!(
        keyring.verify_document(&inrelease, &text.text),
        Ok(fpr.clone())
    );
    assert_eq!(parse_release(&text.text).expect("release").files.len(), 1);
    for armor in [true, false] {
        let sig = gpg.detach_sign(uid, RELEASE.as_bytes(), armor);
        assert_eq!(
            keyring.verify_detached(RELEASE.as_bytes(), &sig),
            Ok(fpr.clone()),
            "armoured: {armor}"
        );
        // One byte of the Release changed: refused.
        let tampered = RELEASE.replace("10 main", "11 main");
        let e = keyring
            .verify_detached(tampered.as_bytes(), &sig)
            .expect_err("tampered");
        assert!(e.contains("altered") || e.contains("no signature"), "{e}");
    }
    // Another key's signature: refused, naming the signer.
    let other = "Other <other@raptr.invalid>";
    let other_fpr = gpg.generate(other, "ed25519", "cert,sign", "never", "", &[]);
    let sig = gpg.detach_sign(other, RELEASE.as_bytes(), true);
    let e = keyring
        .verify_detached(RELEASE.as_bytes(), &sig)
        .expect_err("not in the keyring");
    assert!(e.contains(&other_fpr[other_fpr.len() - 16..]), "{e}");
}

/// apt's lists directory, from apt's own configuration.
fn apt_lists() -> Option<std::path::PathBuf> {
    let out = std::process::Command::new("apt-config")
        .args(["shell", "L", "Dir::State::lists/d"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let value = text.split_once('=')?.1.trim().trim_matches('\'');
    Some(std::path::PathBuf::from(value))
}

#[test]
fn this_machines_debian_inrelease_verifies_with_debians_keyring() {
    let keyring_path = std::path::Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    let lists = apt_lists();
    let inreleases: Vec<std::path::PathBuf> = lists
        .as_ref()
        .and_then(|l| std::fs::read_dir(l).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("debian") && n.ends_with("_InRelease"))
        })
        .collect();
    if !keyring_path.exists() || inreleases.is_empty() {
        eprintln!(
            "skipped: no Debian InRelease in apt's lists ({lists:?}) or no {}: run apt-get update on a Debian machine",
            keyring_path.display()
        );
        return;
    }
    let keyring = Keyring::parse(
        &std::fs::read(keyring_path).expect("keyring"),
        "debian-archive-keyring.gpg",
    )
    .expect("Debian's keyring reads");
    for path in inreleases {
        let doc = std::fs::read_to_string(&path).expect("InRelease");
        let text = raptr_formats::signed::strip_signature(&doc).expect("armour");
        keyring
            .verify_document(&doc, &text.text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let release = parse_release(&text.text).expect("a Release");
        assert!(
            release.by_hash && release.files.len() > 10,
            "{}",
            path.display()
        );
    }
}
