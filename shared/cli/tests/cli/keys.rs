//! Signing keys as operators have them, made by GnuPG at test time: each
//! usable key signs what gpgv, sqv and apt accept; each unusable one is
//! refused before anything is written; two keys sign at once, and a
//! rotation goes through without a client failing where it should not.

use std::fs;
use std::path::{Path, PathBuf};

use raptr_testkit::gnupg::{gpgv, split_inrelease, sqv, Gpg};

use crate::fixtures::{ok, raptr, text};

/// A configuration for a local repository with one replica directory,
/// signing with `keys` (the JSON of `signing_key`).
fn config(keys: &str) -> String {
    format!(
        r#"{{
  "layouts": {{ "default": {{ "distributions": {{
    "stable": {{ "components": ["main"], "architectures": ["amd64", "source"] }},
    "testing": {{ "components": ["main"], "architectures": ["amd64", "source"] }} }} }} }},
  "primary": {{ "bucket": "repo", "region": "local", "layout": "default" }},
  "replicas": [ {{ "name": "mirror", "bucket": "mirror", "region": "local", "layout": "default" }} ],
  "release": {{ "origin": "raptr-tests", "label": "raptr tests" }},
  "signing_key": {keys}
}}"#
    )
}

/// A local repository at `dir/repo` (replica `dir/mirror`) signing with
/// `keys`, with one package uploaded to testing.
fn repo_with(dir: &Path, keys: &str) -> String {
    let repo = dir.join("repo");
    let doc = dir.join("raptr.json");
    fs::write(&doc, config(keys)).expect("config");
    let r = repo.to_str().expect("utf-8").to_string();
    ok(raptr(&["--repo", &r, "init", doc.to_str().expect("utf-8")]));
    let deb = dir.join("hello_1.0-1_amd64.deb");
    fs::write(
        &deb,
        raptr_testkit::deb("hello", "1.0-1", "amd64", None, "k"),
    )
    .expect("deb");
    ok(raptr(&[
        "--repo",
        &r,
        "upload",
        "testing/main",
        deb.to_str().expect("utf-8"),
    ]));
    r
}

/// apt in a sandbox under `root` reading the replica's testing with only
/// `keyring` trusted: `update` then `download hello`.
fn apt_reads(root: &Path, mirror: &Path, keyring: &Path) -> (bool, String) {
    let sandbox = raptr_testkit::apt::Sandbox::new(root);
    sandbox.sources(&format!(
        "deb [signed-by={}] file:{} testing main\n",
        keyring.display(),
        mirror.display()
    ));
    let work = root.join("work");
    fs::create_dir_all(&work).expect("mkdir");
    let update = sandbox.apt_get(&["update"], &work);
    let t = text(&update);
    if !update.status.success() || t.contains("W:") || t.contains("E:") {
        return (false, t);
    }
    let download = sandbox.apt_get(&["download", "hello"], &work);
    (download.status.success(), text(&download))
}

/// Every verifier apt uses accepts `dists/testing` of `bucket` with only
/// `keyring`: gpgv on InRelease and Release.gpg, sqv on both.
fn verifiers_accept(bucket: &Path, keyring: &Path) -> Result<(), String> {
    let dist = bucket.join("dists/testing");
    let inrelease = dist.join("InRelease");
    let (good, said) = gpgv(keyring, &inrelease, None);
    if !good {
        return Err(format!("gpgv InRelease: {said}"));
    }
    let (good, said) = gpgv(
        keyring,
        &dist.join("Release.gpg"),
        Some(&dist.join("Release")),
    );
    if !good {
        return Err(format!("gpgv Release.gpg: {said}"));
    }
    let (good, said) = sqv(keyring, &dist.join("Release.gpg"), &dist.join("Release"));
    if !good {
        return Err(format!("sqv Release.gpg: {said}"));
    }
    let copy = bucket.join("InRelease.copy");
    fs::copy(&inrelease, &copy).expect("copy");
    let (t, s) = split_inrelease(&copy);
    let (good, said) = sqv(keyring, &s, &t);
    if !good {
        return Err(format!("sqv InRelease: {said}"));
    }
    Ok(())
}

struct Usable {
    what: &'static str,
    file: PathBuf,
    /// The JSON of `signing_key` naming it.
    entry: String,
    /// The fingerprint apt's keyring names.
    fingerprint: String,
}

#[test]
fn gnupg_keys_sign_what_apt_accepts_and_bad_ones_write_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gpg = Gpg::new(tmp.path());
    let secrets = tmp.path().join("secrets");
    fs::create_dir(&secrets).expect("mkdir");
    let save = |name: &str, bytes: &[u8]| {
        let p = secrets.join(name);
        fs::write(&p, bytes).expect("write");
        p
    };

    // Usable: an RSA-4096 primary that signs (binary export), an Ed25519
    // key kept the recommended way (offline primary, signing subkey
    // exported alone), a passphrase-protected key (passphrase in a file),
    // an ECDSA P-256 key, and an RSA-2048 key (accepted with a warning).
    let rsa = gpg.generate(
        "RSA <rsa@raptr.invalid>",
        "rsa4096",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let ed = gpg.generate("Ed <ed@raptr.invalid>", "ed25519", "cert", "never", "", &[]);
    gpg.add_subkey(&ed, "ed25519", "sign", "");
    let pw = gpg.generate(
        "Pw <pw@raptr.invalid>",
        "ed25519",
        "sign,cert",
        "never",
        "s3cret phrase",
        &[],
    );
    let small = gpg.generate(
        "Rsa2k <rsa2k@raptr.invalid>",
        "rsa2048",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let nist = gpg.generate(
        "Nist <nist@raptr.invalid>",
        "nistp256",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let passfile = save("pw.pass", b"s3cret phrase\n");
    let usable = [
        Usable {
            what: "rsa4096 primary, binary",
            file: save("rsa.gpg", &gpg.export_secret(&rsa, "", true)),
            entry: String::new(),
            fingerprint: rsa.clone(),
        },
        Usable {
            what: "ed25519 signing subkey, primary offline",
            file: save("ed.asc", &gpg.export_secret_subkeys(&ed, "")),
            entry: String::new(),
            fingerprint: ed.clone(),
        },
        Usable {
            what: "passphrase-protected ed25519",
            file: save("pw.asc", &gpg.export_secret(&pw, "s3cret phrase", false)),
            entry: format!(r#", "passphrase": {{ "file": "{}" }}"#, passfile.display()),
            fingerprint: pw.clone(),
        },
        Usable {
            what: "nistp256",
            file: save("nist.asc", &gpg.export_secret(&nist, "", false)),
            entry: String::new(),
            fingerprint: nist.clone(),
        },
        Usable {
            what: "rsa2048",
            file: save("small.asc", &gpg.export_secret(&small, "", false)),
            entry: String::new(),
            fingerprint: small.clone(),
        },
    ];
    for (i, k) in usable.iter().enumerate() {
        let dir = tmp.path().join(format!("usable-{i}"));
        fs::create_dir(&dir).expect("mkdir");
        let r = repo_with(
            &dir,
            &format!(r#"{{ "file": "{}"{} }}"#, k.file.display(), k.entry),
        );
        let t = ok(raptr(&["--repo", &r, "publish"]));
        assert!(t.contains("published generation 1"), "{}: {t}", k.what);
        if k.what == "rsa2048" {
            assert!(t.contains("warning: key") && t.contains("2048"), "{t}");
        }
        // The keyring raptr publishes is what apt and the verifiers trust.
        let mirror = dir.join("mirror");
        let own = mirror.join(format!("keys/{}.gpg", k.fingerprint));
        assert!(own.exists(), "{}: {}", k.what, own.display());
        verifiers_accept(&mirror, &mirror.join("keys/repo.gpg"))
            .unwrap_or_else(|e| panic!("{}: {e}", k.what));
        // GnuPG's own export of the public key works as well.
        let exported = dir.join("exported.gpg");
        fs::write(&exported, gpg.export_public(&k.fingerprint)).expect("write");
        verifiers_accept(&mirror, &exported).unwrap_or_else(|e| panic!("{}: {e}", k.what));
        let (good, said) = apt_reads(&dir.join("apt"), &mirror, &own);
        assert!(good, "{}: apt: {said}", k.what);
        // key show names the key and where it signs.
        let t = ok(raptr(&["--repo", &r, "key", "show"]));
        assert!(t.contains(&k.fingerprint), "{t}");
        assert!(
            t.contains("mirror: keys/repo.gpg, dists/stable/InRelease"),
            "{t}"
        );
        // No secret reached a bucket.
        for bucket in [dir.join("repo"), mirror] {
            for entry in walk(&bucket) {
                let body = fs::read(&entry).unwrap_or_default();
                let body = String::from_utf8_lossy(&body);
                assert!(
                    !body.contains("PRIVATE KEY") && !body.contains("s3cret"),
                    "{}: {} holds a secret",
                    k.what,
                    entry.display()
                );
            }
        }
    }

    // Unusable: each refused by `key show` and by publish, naming the
    // reason, with nothing written.
    let old = gpg.generate(
        "Old <old@raptr.invalid>",
        "ed25519",
        "sign,cert",
        "1y",
        "",
        &["--faked-system-time", "20200101T000000!"],
    );
    let sha1 = gpg.generate(
        "Sha1 <sha1@raptr.invalid>",
        "rsa3072",
        "sign,cert",
        "never",
        "",
        &["--cert-digest-algo", "SHA1"],
    );
    let weak = gpg.generate(
        "Weak <weak@raptr.invalid>",
        "rsa1024",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let gone = gpg.generate(
        "Gone <gone@raptr.invalid>",
        "ed25519",
        "sign,cert",
        "never",
        "",
        &[],
    );
    gpg.revoke(&gone);
    let offline = gpg.generate(
        "Offline <off@raptr.invalid>",
        "ed25519",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let wrong = save("wrong.pass", b"not it\n");
    let unusable: Vec<(&str, PathBuf, Option<&Path>, &str)> = vec![
        (
            "expired",
            save("old.asc", &gpg.export_secret(&old, "", false)),
            None,
            "expired on 2020-12-31",
        ),
        (
            "SHA-1 self-signatures",
            save("sha1.asc", &gpg.export_secret(&sha1, "", false)),
            None,
            "uses SHA1",
        ),
        (
            "RSA-1024",
            save("weak.asc", &gpg.export_secret(&weak, "", false)),
            None,
            "RSA keys of 1024 bits are refused",
        ),
        (
            "revoked",
            save("gone.asc", &gpg.export_secret(&gone, "", false)),
            None,
            "was revoked on",
        ),
        (
            "primary offline, no subkey",
            save("offline.asc", &gpg.export_secret_subkeys(&offline, "")),
            None,
            "not in this export",
        ),
        (
            "passphrase missing",
            usable[2].file.clone(),
            None,
            "protected by a passphrase, and none is configured",
        ),
        (
            "passphrase wrong",
            usable[2].file.clone(),
            Some(&wrong),
            "does not unlock",
        ),
        (
            "a public key",
            save("public.asc", &gpg.export_public(&rsa)),
            None,
            "holds a public key",
        ),
    ];
    // sqv itself refuses what raptr refuses for SHA-1: a signature GnuPG
    // makes with that key does not verify.
    let data = secrets.join("data");
    fs::write(&data, "hello\n").expect("write");
    let sig = secrets.join("data.sig");
    ok(gpg
        .gpg("")
        .args(["--digest-algo", "SHA512", "--local-user", &sha1, "--output"])
        .arg(&sig)
        .arg("--detach-sign")
        .arg(&data)
        .output()
        .expect("gpg"));
    let ring = save("sha1.gpg", &gpg.export_public(&sha1));
    assert!(
        !sqv(&ring, &sig, &data).0,
        "sqv accepts a key with SHA-1 self-signatures"
    );

    for (i, (what, file, pass, reason)) in unusable.iter().enumerate() {
        let mut show = vec!["key", "show", file.to_str().expect("utf-8")];
        if let Some(p) = pass {
            show.extend(["--passphrase-file", p.to_str().expect("utf-8")]);
        }
        let shown = raptr(&show);
        let t = text(&shown);
        assert_eq!(shown.status.code(), Some(1), "{what}: {t}");
        assert!(t.contains(reason), "{what}: {t}");
        let dir = tmp.path().join(format!("unusable-{i}"));
        fs::create_dir(&dir).expect("mkdir");
        let extra = pass
            .map(|p| format!(r#", "passphrase": {{ "file": "{}" }}"#, p.display()))
            .unwrap_or_default();
        let r = repo_with(
            &dir,
            &format!(r#"{{ "file": "{}"{extra} }}"#, file.display()),
        );
        let out = raptr(&["--repo", &r, "publish"]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {t}");
        assert!(t.contains(reason), "{what}: {t}");
        assert!(
            t.contains(&file.display().to_string()),
            "{what}: names the file: {t}"
        );
        assert!(!dir.join("repo/dists").exists(), "{what}: dists/ written");
        assert!(!dir.join("repo/keys").exists(), "{what}: keys/ written");
        assert!(
            !dir.join("mirror/dists").exists(),
            "{what}: the replica written"
        );
    }
    // A passphrase file that cannot be read is named, not taken as empty.
    let missing = secrets.join("no-such.pass");
    let out = raptr(&[
        "key",
        "show",
        usable[2].file.to_str().expect("utf-8"),
        "--passphrase-file",
        missing.to_str().expect("utf-8"),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("no-such.pass") && t.contains("cannot read it"),
        "{t}"
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Rewrites the repository's configuration with `keys` as `signing_key`
/// (what an operator does by writing over config/raptr.json).
fn set_keys(repo: &str, keys: &str) {
    fs::write(Path::new(repo).join("config/raptr.json"), config(keys)).expect("config");
}

#[test]
fn two_keys_sign_and_a_rotation_breaks_no_client_that_followed_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gpg = Gpg::new(tmp.path());
    let old = gpg.generate(
        "Old <old@raptr.invalid>",
        "rsa3072",
        "sign,cert",
        "never",
        "",
        &[],
    );
    let new = gpg.generate(
        "New <new@raptr.invalid>",
        "ed25519",
        "cert",
        "never",
        "",
        &[],
    );
    gpg.add_subkey(&new, "ed25519", "sign", "");
    let old_file = tmp.path().join("old.asc");
    fs::write(&old_file, gpg.export_secret(&old, "", false)).expect("write");
    let new_file = tmp.path().join("new.asc");
    fs::write(&new_file, gpg.export_secret_subkeys(&new, "")).expect("write");
    let old_entry = format!(r#"{{ "file": "{}" }}"#, old_file.display());
    let new_entry = format!(r#"{{ "file": "{}" }}"#, new_file.display());
    let dir = tmp.path();
    let r = repo_with(dir, &old_entry);
    ok(raptr(&["--repo", &r, "publish"]));
    let mirror = dir.join("mirror");
    let keep = |name: &str, from: &Path| {
        let p = dir.join(name);
        fs::copy(from, &p).expect("copy");
        p
    };
    // Clients: one trusting the old key alone (from keys/<OLD>.gpg).
    let only_old = keep("only-old.gpg", &mirror.join(format!("keys/{old}.gpg")));
    let (good, said) = apt_reads(&dir.join("apt-old"), &mirror, &only_old);
    assert!(good, "before: old key: {said}");
    let packages =
        |b: &Path| fs::read(b.join("dists/testing/main/binary-amd64/Packages")).expect("Packages");
    let before = packages(&mirror);
    let inrelease = |b: &Path, d: &str| {
        fs::read_to_string(b.join(format!("dists/{d}/InRelease"))).expect("InRelease")
    };

    // 1. Add the new key: both sign every distribution at the next run,
    //    with the indices unchanged.
    set_keys(&r, &format!("[{old_entry}, {new_entry}]"));
    let t = ok(raptr(&["--repo", &r, "publish"]));
    assert!(t.contains("published generation 2"), "{t}");
    assert_eq!(packages(&mirror), before, "indices changed");
    let new_sub = gpg.fingerprints(&new)[1].clone();
    for d in ["stable", "testing"] {
        for bucket in [dir.join("repo"), mirror.clone()] {
            let signed = inrelease(&bucket, d);
            let issuers = raptr_core::signing::issuers(&signed).expect("signatures");
            assert_eq!(issuers, vec![old.clone(), new_sub.clone()], "{d}");
        }
    }
    let only_new = keep("only-new.gpg", &mirror.join(format!("keys/{new}.gpg")));
    let both = keep("both.gpg", &mirror.join("keys/repo.gpg"));
    for (who, ring) in [("old", &only_old), ("new", &only_new), ("both", &both)] {
        verifiers_accept(&mirror, ring).unwrap_or_else(|e| panic!("step 1, {who}: {e}"));
        let (good, said) = apt_reads(&dir.join(format!("apt1-{who}")), &mirror, ring);
        assert!(good, "step 1, {who}: {said}");
    }
    let t = ok(raptr(&["--repo", &r, "key", "show"]));
    assert!(t.contains(&format!("signing subkey {new_sub}")), "{t}");
    assert!(!t.contains("not configured"), "{t}");

    // 2. Remove the old key: only the new one signs; clients that moved to
    //    the new key (or kept both) read on, one still on the old key alone
    //    is refused.
    set_keys(&r, &new_entry);
    let t = ok(raptr(&["--repo", &r, "publish"]));
    assert!(t.contains("published generation 3"), "{t}");
    assert_eq!(packages(&mirror), before, "indices changed");
    assert_eq!(
        raptr_core::signing::issuers(&inrelease(&mirror, "testing")).expect("signatures"),
        vec![new_sub.clone()]
    );
    assert!(!mirror.join(format!("keys/{old}.gpg")).exists());
    assert_eq!(
        raptr_core::signing::keyring_fingerprints(
            &fs::read(mirror.join("keys/repo.gpg")).expect("keyring")
        ),
        Ok(vec![new.clone()])
    );
    for (who, ring) in [("new", &only_new), ("both", &both)] {
        verifiers_accept(&mirror, ring).unwrap_or_else(|e| panic!("step 2, {who}: {e}"));
        let (good, said) = apt_reads(&dir.join(format!("apt2-{who}")), &mirror, ring);
        assert!(good, "step 2, {who}: {said}");
    }
    assert!(verifiers_accept(&mirror, &only_old).is_err());
    let (good, said) = apt_reads(&dir.join("apt-old"), &mirror, &only_old);
    assert!(!good, "a client on the old key alone still reads: {said}");
    assert!(
        said.contains("NO_PUBKEY") || said.contains("not signed"),
        "{said}"
    );
}

#[test]
fn local_keys_live_outside_the_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let keys = tmp.path().join("keys");
    let repo = tmp.path().join("repo");
    let r = repo.to_str().expect("utf-8");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raptr"))
        .env("RAPTR_KEY_DIR", &keys)
        .args(["--repo", r, "init"])
        .output()
        .expect("raptr");
    let t = ok(out);
    assert!(t.contains("outside the repository"), "{t}");
    let made: Vec<PathBuf> = walk(&keys);
    assert_eq!(made.len(), 1, "{made:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(&made[0]).expect("key").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(walk(&repo).iter().all(
        |p| !String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).contains("PRIVATE KEY")
    ));
    // Running init again changes nothing and makes no second key.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_raptr"))
        .env("RAPTR_KEY_DIR", &keys)
        .args(["--repo", r, "init"])
        .output()
        .expect("raptr");
    assert!(ok(out).contains("nothing changed"));
    assert_eq!(walk(&keys).len(), 1);

    // A key file inside the repository is refused, by init and by publish.
    let inside = tmp.path().join("inside");
    let doc = tmp.path().join("inside.json");
    fs::write(&doc, config(r#"{ "file": "private/signing-key.asc" }"#)).expect("config");
    let out = raptr(&[
        "--repo",
        inside.to_str().expect("utf-8"),
        "init",
        doc.to_str().expect("utf-8"),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("inside the repository directory"), "{t}");
    assert!(!inside.join("private").exists());
    // An older repository whose key sits inside is told how to move it.
    fs::create_dir_all(repo.join("private")).expect("mkdir");
    fs::copy(&made[0], repo.join("private/signing-key.asc")).expect("copy");
    set_keys(r, r#"{ "file": "private/signing-key.asc" }"#);
    let out = raptr(&["--repo", r, "publish"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("inside the repository directory") && t.contains("config/raptr.json"),
        "{t}"
    );
    assert!(!repo.join("dists").exists());
}
