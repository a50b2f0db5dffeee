//! Prepares a local repository of N packages for the publish benchmark
//! (`scripts/bench.sh`): one distribution (`stable`, `main`, `amd64`), the N
//! `.deb`s in the pool with their manifests exactly as ingest writes them,
//! all linked in the publisher's state with nothing published yet, so that
//! the next `raptr publish` is a full publish from the manifests. Also
//! writes two more debs beside it (`extra-1.deb`, `extra-2.deb`) for the
//! add-one runs, and two newer versions of `bench-pkg000000` (`next-1.deb`
//! at 1.0-2, `next-2.deb` at 1.0-3) for the snapshot and retention runs.
//!
//! Usage: cargo run --release -p raptr-core --example publish_bench -- DIR N

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use raptr_core::config::{Config, Distribution, Layout};
use raptr_core::manifest::{Manifest, ManifestFile};
use raptr_core::publish::links::Links;
use raptr_core::publish::state::State;
use raptr_formats::bundle::Kind;
use raptr_formats::hash::Digests;
use raptr_store::fs::FsStore;
use raptr_store::{ObjectStore, PutOptions};
use raptr_testkit::{ar, gzip, tar, Entry};

fn control(name: &str, i: usize, version: &str) -> String {
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: raptr bench <bench@example.com>\nInstalled-Size: 12\nDepends: libc6 (>= 2.36), bench-common\nSection: misc\nPriority: optional\nHomepage: https://example.com/{name}\nDescription: benchmark package number {i}\n Generated for raptr's publish benchmark.\n"
    )
}

fn deb(name: &str, i: usize, version: &str) -> (String, Vec<u8>) {
    let c = control(name, i, version);
    let ctl = gzip(&tar(&[Entry::File("./control", c.as_bytes())]));
    let payload = format!("package {i}\n").repeat(50);
    let data = gzip(&tar(&[Entry::File(
        &format!("./usr/share/doc/{name}/README"),
        payload.as_bytes(),
    )]));
    let bytes = ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &ctl),
        ("data.tar.gz", &data),
    ]);
    (c, bytes)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: publish_bench DIR N".into());
    };
    let n: usize = n
        .parse()
        .map_err(|_| format!("N must be a number, not {n:?}"))?;
    let root = std::path::PathBuf::from(&dir);
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo)?;
    let store = Arc::new(FsStore::open(&repo)?);
    let mut config = Config::default_local("repo");
    config.layouts = BTreeMap::from([(
        "default".to_string(),
        Layout {
            distributions: BTreeMap::from([(
                "stable".to_string(),
                Distribution {
                    components: vec!["main".into()],
                    architectures: vec!["amd64".into()],
                    codename: None,
                    suite: None,
                    xz: false,
                    uploads: true,
                    upload_keyring: None,
                    retention: None,
                    snapshots: None,
                },
            )]),
        },
    )]);
    // The key lives beside the repository, never in it (the command
    // refuses a key file inside the directory it serves).
    let (armored, _) = raptr_core::signing::generate(
        "raptr bench <bench@example.com>",
        raptr_core::signing::Algorithm::Ed25519,
    )?;
    let key = std::fs::canonicalize(&root)?.join("signing-key.asc");
    std::fs::write(&key, armored)?;
    config.signing_key = raptr_core::config::SigningKeys::one(
        raptr_core::config::SigningKey::file(key.display().to_string()),
    );
    raptr_core::repo::init(store.as_ref(), &dir, &config).await?;

    let mut links: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let now = raptr_core::time::rfc3339(raptr_core::time::now_ms());
    for i in 0..n {
        let name = format!("bench-pkg{i:06}");
        let (control, bytes) = deb(&name, i, "1.0-1");
        let dir = format!("pool/main/b/{name}/1.0-1");
        let file = format!("{name}_1.0-1_amd64.deb");
        let digests = Digests::of(&bytes);
        store
            .put(
                &format!("{dir}/{file}"),
                Bytes::from(bytes),
                PutOptions::default(),
            )
            .await?;
        let entry = ManifestFile {
            kind: Kind::Deb,
            digests,
            package: Some(name.clone()),
            package_version: Some("1.0-1".into()),
            architecture: Some("amd64".into()),
            control: Some(control),
            uploader: "bench".into(),
            uploaded_at: now.clone(),
            upload: format!("incoming/stable/main/bench/{file}@bench"),
        };
        let m = Manifest {
            purging: Default::default(),
            bundle: name.clone(),
            version: "1.0-1".into(),
            component: "main".into(),
            files: BTreeMap::from([(file.clone(), entry)]),
        };
        store
            .put(
                &format!("{dir}/manifest.json"),
                Bytes::from(serde_json::to_vec_pretty(&m)?),
                PutOptions::default(),
            )
            .await?;
        links.insert(dir, BTreeSet::from([file]));
        if (i + 1) % 10_000 == 0 {
            eprintln!("prepared {} of {n} packages", i + 1);
        }
    }
    let mut state = State {
        links: Links::from_map(BTreeMap::from([("stable".to_string(), links)])),
        ..State::default()
    };
    state.save(store.as_ref(), None).await?;
    for k in 1..=2 {
        let name = format!("bench-extra{k}");
        std::fs::write(
            root.join(format!("extra-{k}.deb")),
            deb(&name, n + k, "1.0-1").1,
        )?;
        std::fs::write(
            root.join(format!("next-{k}.deb")),
            deb("bench-pkg000000", 0, &format!("1.0-{}", k + 1)).1,
        )?;
    }
    println!("{n} packages in {}", repo.display());
    Ok(())
}
