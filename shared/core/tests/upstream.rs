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

mod import {
    use std::path::Path;
    use std::sync::Arc;

    use raptr_core::config::Config;
    use raptr_core::import::{self, Target, Upstream};
    use raptr_core::ingest::Ingest;
    use raptr_core::publish::Publisher;
    use raptr_core::signing::keyring::Keyring;
    use raptr_store::fs::FsStore;
    use raptr_store::table::LocalTable;
    use raptr_store::ObjectStore;
    use raptr_testkit::gnupg::Gpg;

    const UID: &str = "Upstream <upstream@raptr.invalid>";

    /// The upstream suite with `debs` added, signed inline.
    fn build(root: &Path, gpg: &Gpg, debs: &[(&str, &str)]) {
        raptr_testkit::upstream::suite(
            root,
            gpg,
            UID,
            debs,
            raptr_testkit::upstream::Style {
                detached: false,
                xz: false,
            },
        );
    }

    struct Repo {
        store: Arc<FsStore>,
        table: Arc<LocalTable>,
        config: Config,
        signer: Arc<raptr_core::signing::Signer>,
    }

    impl Repo {
        fn new(dir: &Path) -> Repo {
            let config = Config::default_local("repo");
            let (armored, _) = raptr_core::signing::generate(
                "raptr tests <tests@raptr.invalid>",
                raptr_core::signing::Algorithm::Ed25519,
            )
            .expect("key");
            Repo {
                store: Arc::new(FsStore::open(dir.join("repo")).expect("store")),
                table: Arc::new(LocalTable::open(dir.join("table")).expect("table")),
                config,
                signer: Arc::new(
                    raptr_core::signing::Signer::from_secret(armored.as_bytes(), "k")
                        .expect("signer"),
                ),
            }
        }

        async fn import(&self, upstream: &Upstream) -> import::Summary {
            let ingest = Ingest::new(self.store.clone(), self.table.clone(), self.config.clone());
            import::run(
                upstream,
                &Target {
                    distribution: "stable".into(),
                    component: None,
                    concurrency: 1,
                },
                &ingest,
                self.store.as_ref(),
                &self.config,
                None,
                None,
            )
            .await
            .expect("import")
        }

        async fn stable(&self) -> Vec<String> {
            Publisher::new(
                self.store.clone(),
                self.table.clone(),
                self.config.clone(),
                self.signer.clone(),
                Vec::new(),
                "test",
            )
            .run()
            .await
            .expect("publish");
            let verify = |t: &str| self.signer.verify_clear(t).map_err(|e| e.to_string());
            let v = raptr_testkit::apt::client_view(self.store.as_ref(), &verify, "stable", "repo")
                .await
                .expect("published");
            raptr_testkit::apt::lines(&v, "main/binary-amd64/Packages")
        }
    }

    #[tokio::test]
    async fn an_upstream_built_by_apt_ftparchive_is_imported_as_its_signature_vouches() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let gpg = Gpg::new(&tmp.path().join("gnupg"));
        gpg.generate(UID, "ed25519", "cert,sign", "never", "", &[]);
        let root = tmp.path().join("upstream");
        build(
            &root,
            &gpg,
            &[("hello", "1.0-1"), ("hello", "1.0-2"), ("tool", "3.1-1")],
        );
        let keyring = Keyring::parse(&gpg.export_public(UID), "upstream.gpg").expect("keyring");
        let upstream = Upstream {
            name: "vendor".into(),
            store: Arc::new(FsStore::open(&root).expect("upstream")),
            suite: Some("stable".into()),
            components: Vec::new(),
            architectures: Vec::new(),
            keyring: Some(keyring.clone()),
            allow_unsigned: false,
            packages: vec!["hel*".into()],
            sources: false,
            newest: Some(1),
            dependencies: false,
        };
        let repo = Repo::new(tmp.path());
        let s = repo.import(&upstream).await;
        assert_eq!((s.fetched, s.present, s.refused.len()), (1, 0, 0), "{s:?}");
        assert_eq!(repo.stable().await, ["hello 1.0-2 amd64"]);

        // Everything, then again: the second run stops at the Release.
        let all = Upstream {
            packages: Vec::new(),
            newest: None,
            ..upstream.clone()
        };
        let s = repo.import(&all).await;
        assert_eq!((s.fetched, s.present), (2, 1), "{s:?}");
        let again = repo.import(&all).await;
        assert!(again.unchanged && again.fetched == 0, "{again:?}");
        assert_eq!(
            repo.stable().await,
            ["hello 1.0-1 amd64", "hello 1.0-2 amd64", "tool 3.1-1 amd64"]
        );

        // A package that does not match its index: refused, not stored.
        build(&root, &gpg, &[("late", "1.0-1")]);
        let late = root.join("pool/main/l/late/late_1.0-1_amd64.deb");
        let mut bytes = std::fs::read(&late).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&late, bytes).expect("tamper");
        let s = repo.import(&all).await;
        assert_eq!(s.fetched, 0, "{s:?}");
        assert!(
            s.refused
                .iter()
                .any(|r| r.contains("does not match its index")),
            "{s:?}"
        );
        assert!(repo
            .store
            .list("pool/main/l/")
            .await
            .expect("list")
            .is_empty());

        // A Release signed by another key, and one altered after signing:
        // refused before any index is read.
        let other = Gpg::new(&tmp.path().join("other"));
        other.generate(
            "Other <o@raptr.invalid>",
            "ed25519",
            "cert,sign",
            "never",
            "",
            &[],
        );
        let release = std::fs::read(root.join("dists/stable/Release")).expect("release");
        for (what, inrelease) in [
            (
                "another key",
                other.clearsign("Other <o@raptr.invalid>", &release),
            ),
            (
                "altered",
                String::from_utf8(gpg.clearsign(UID, &release))
                    .expect("text")
                    .replacen("Suite: stable", "Suite: stabl3", 1)
                    .into_bytes(),
            ),
        ] {
            std::fs::write(root.join("dists/stable/InRelease"), inrelease).expect("write");
            let ingest = Ingest::new(repo.store.clone(), repo.table.clone(), repo.config.clone());
            let e = import::run(
                &all,
                &Target {
                    distribution: "stable".into(),
                    component: None,
                    concurrency: 1,
                },
                &ingest,
                repo.store.as_ref(),
                &repo.config,
                None,
                None,
            )
            .await
            .expect_err(what);
            assert!(
                e.to_string().contains("not signed by the keyring"),
                "{what}: {e}"
            );
        }
    }

    /// An import that dies after one of its writes (a Lambda timeout, a
    /// killed process) goes on where it stopped on the next run and ends
    /// with everything; then an upstream that adds a version brings only
    /// that version.
    #[tokio::test]
    async fn an_import_killed_at_a_write_resumes_and_a_new_version_alone_is_fetched() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let gpg = Gpg::new(&tmp.path().join("gnupg"));
        gpg.generate(UID, "ed25519", "cert,sign", "never", "", &[]);
        let root = tmp.path().join("upstream");
        build(
            &root,
            &gpg,
            &[("alpha", "1.0-1"), ("beta", "1.0-1"), ("gamma", "1.0-1")],
        );
        let keyring = Keyring::parse(&gpg.export_public(UID), "k").expect("keyring");
        let upstream = Upstream {
            name: "vendor".into(),
            store: Arc::new(FsStore::open(&root).expect("upstream")),
            suite: Some("stable".into()),
            components: Vec::new(),
            architectures: Vec::new(),
            keyring: Some(keyring),
            allow_unsigned: false,
            packages: Vec::new(),
            sources: false,
            newest: None,
            dependencies: false,
        };
        let target = Target {
            distribution: "stable".into(),
            component: None,
            concurrency: 1,
        };
        let mut n = 0;
        loop {
            let repo = Repo::new(&tmp.path().join(format!("case-{n}")));
            let faults = raptr_testkit::faults::Faults::crash_after(n);
            let faulty =
                raptr_testkit::faults::FaultyStore::new(repo.store.clone(), faults.clone());
            let ingest = Ingest::new(faulty.clone(), repo.table.clone(), repo.config.clone());
            let first = import::run(
                &upstream,
                &target,
                &ingest,
                faulty.as_ref(),
                &repo.config,
                None,
                None,
            )
            .await;
            let crashed = faults.tripped();
            assert!(first.is_ok() != crashed, "write {n}: {first:?}");
            let s = repo.import(&upstream).await;
            assert!(s.refused.is_empty(), "write {n}: {s:?}");
            assert_eq!(
                repo.stable().await,
                ["alpha 1.0-1 amd64", "beta 1.0-1 amd64", "gamma 1.0-1 amd64"],
                "write {n}"
            );
            if !crashed {
                // The upstream adds a version: only it is fetched.
                build(&root, &gpg, &[("beta", "1.0-2")]);
                let s = repo.import(&upstream).await;
                assert_eq!((s.fetched, s.present), (1, 3), "{s:?}");
                assert_eq!(
                    repo.stable().await,
                    [
                        "alpha 1.0-1 amd64",
                        "beta 1.0-1 amd64",
                        "beta 1.0-2 amd64",
                        "gamma 1.0-1 amd64"
                    ]
                );
                break;
            }
            n += 3;
        }
        assert!(n > 6, "only {n} writes");
    }
}

mod layouts {
    use std::process::Command;
    use std::sync::Arc;

    use raptr_core::config::Config;
    use raptr_core::import::{self, Target, Upstream};
    use raptr_core::ingest::Ingest;
    use raptr_core::signing::keyring::Keyring;
    use raptr_store::fs::FsStore;
    use raptr_store::table::LocalTable;
    use raptr_store::ObjectStore;
    use raptr_testkit::gnupg::Gpg;
    use sha2::Digest;

    const UID: &str = "Upstream <upstream@raptr.invalid>";

    fn run(cmd: &mut Command) -> Vec<u8> {
        let out = cmd.output().expect("runs");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// A flat archive (Packages and Release beside the debs), and a suite
    /// that offers its indices only by hash: both import.
    #[tokio::test]
    async fn a_flat_archive_and_one_served_by_hash_import() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let gpg = Gpg::new(&tmp.path().join("gnupg"));
        gpg.generate(UID, "ed25519", "cert,sign", "never", "", &[]);
        let keyring = Keyring::parse(&gpg.export_public(UID), "k").expect("keyring");
        let deb = |dir: &std::path::Path, name: &str| {
            std::fs::create_dir_all(dir).expect("mkdir");
            std::fs::write(
                dir.join(raptr_testkit::deb_name(name, "1.0-1", "amd64")),
                raptr_testkit::deb(name, "1.0-1", "amd64", None, name),
            )
            .expect("write");
        };
        // Flat: everything in one directory.
        let flat = tmp.path().join("flat");
        deb(&flat, "flatpkg");
        let packages = run(Command::new("apt-ftparchive")
            .current_dir(&flat)
            .args(["packages", "."]));
        std::fs::write(flat.join("Packages"), packages).expect("write");
        let release = run(Command::new("apt-ftparchive")
            .current_dir(&flat)
            .args(["release", "."]));
        std::fs::write(flat.join("InRelease"), gpg.clearsign(UID, &release)).expect("write");
        // By hash: the canonical index gone, only its by-hash copy left.
        let hashed = tmp.path().join("hashed");
        deb(&hashed.join("pool/main/h/hashpkg"), "hashpkg");
        let index = hashed.join("dists/stable/main/binary-amd64");
        std::fs::create_dir_all(index.join("by-hash/SHA256")).expect("mkdir");
        let packages = run(Command::new("apt-ftparchive")
            .current_dir(&hashed)
            .args(["packages", "pool"]));
        std::fs::write(index.join("Packages"), &packages).expect("write");
        let release = run(Command::new("apt-ftparchive")
            .current_dir(hashed.join("dists/stable"))
            .args([
                "-o",
                "APT::FTPArchive::Release::Components=main",
                "release",
                ".",
            ]));
        let release = [b"Acquire-By-Hash: yes\n".to_vec(), release].concat();
        std::fs::write(
            hashed.join("dists/stable/InRelease"),
            gpg.clearsign(UID, &release),
        )
        .expect("write");
        let sum = raptr_formats::hash::hex(&sha2::Sha256::digest(&packages));
        std::fs::rename(
            index.join("Packages"),
            index.join(format!("by-hash/SHA256/{sum}")),
        )
        .expect("move");

        let store = Arc::new(FsStore::open(tmp.path().join("repo")).expect("store"));
        let table = Arc::new(LocalTable::open(tmp.path().join("table")).expect("table"));
        let config = Config::default_local("repo");
        let ingest = Ingest::new(store.clone(), table.clone(), config.clone());
        for (name, root, suite, pkg) in [
            ("flat", &flat, None, "flatpkg"),
            ("hashed", &hashed, Some("stable".to_string()), "hashpkg"),
        ] {
            let upstream = Upstream {
                name: name.into(),
                store: Arc::new(FsStore::open(root).expect("upstream")),
                suite,
                components: Vec::new(),
                architectures: vec!["amd64".into()],
                keyring: Some(keyring.clone()),
                allow_unsigned: false,
                packages: Vec::new(),
                sources: false,
                newest: None,
                dependencies: false,
            };
            let s = import::run(
                &upstream,
                &Target {
                    distribution: "stable".into(),
                    component: None,
                    concurrency: 1,
                },
                &ingest,
                store.as_ref(),
                &config,
                None,
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((s.fetched, s.refused.len()), (1, 0), "{name}: {s:?}");
            let dir = format!("pool/main/{}/{pkg}/1.0-1/", &pkg[..1]);
            assert!(
                !store.list(&dir).await.expect("list").is_empty(),
                "{name}: {dir}"
            );
        }
    }
}
