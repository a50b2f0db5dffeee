//! A bucket read the way apt reads it, as a test oracle written apart from
//! the publisher: the InRelease verified (by the caller's function), each
//! index it lists fetched by hash and checked, then every pool file each
//! `Packages` and `Sources` stanza references, checked. Anything a client
//! would trip over panics with the bucket's name and the key.

use std::collections::{BTreeMap, BTreeSet};

use raptr_formats::hash::Digests;
use raptr_store::{ObjectStore, StoreError};

/// What a client of one distribution sees.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct View {
    /// Index path → `package version arch` lines.
    pub packages: BTreeMap<String, BTreeSet<String>>,
    /// `package version` of each source package.
    pub sources: BTreeSet<String>,
    /// The signed Release text.
    pub release: String,
}

/// The `package version arch` lines of one index of a view, sorted.
pub fn lines(v: &View, path: &str) -> Vec<String> {
    v.packages
        .get(path)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default()
}

async fn must_get(store: &dyn ObjectStore, key: &str, who: &str) -> Vec<u8> {
    match store.get(key).await {
        Ok((b, _)) => b.to_vec(),
        Err(e) => panic!("{who}: {key}: {e}"),
    }
}

/// `(path, size, sha256)` of a Release's SHA256 list.
fn sha256_list(release: &str) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in release.lines() {
        if let Some(rest) = line.strip_prefix(' ') {
            if inside {
                let p: Vec<&str> = rest.split_whitespace().collect();
                out.push((
                    p[2].to_string(),
                    p[1].parse().expect("size"),
                    p[0].to_string(),
                ));
            }
        } else {
            inside = line == "SHA256:";
        }
    }
    out
}

/// Reads distribution `dist` of a bucket like apt with Acquire-By-Hash.
/// `verify` checks an InRelease's signature and returns the signed text.
/// `None` when the bucket has no InRelease for it (never published).
pub async fn client_view(
    store: &dyn ObjectStore,
    verify: &(dyn Fn(&str) -> Result<String, String> + Sync),
    dist: &str,
    who: &str,
) -> Option<View> {
    let inrelease = match store.get(&format!("dists/{dist}/InRelease")).await {
        Ok((b, _)) => b,
        Err(StoreError::NotFound { .. }) => return None,
        Err(e) => panic!("{who}: {e}"),
    };
    let text = verify(std::str::from_utf8(&inrelease).expect("UTF-8"))
        .unwrap_or_else(|e| panic!("{who}: {dist}/InRelease: {e}"));
    let mut view = View {
        release: text.clone(),
        ..Default::default()
    };
    let listed = sha256_list(&text);
    assert!(!listed.is_empty(), "{who}: {dist}/InRelease lists nothing");
    // Each compressed index must decompress (every gzip member of it, as
    // zlib reads them; the one xz stream) to its uncompressed form.
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (path, size, sha) in listed {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        let key = format!("dists/{dist}/{dir}/by-hash/SHA256/{sha}");
        let body = must_get(store, &key, who).await;
        let d = Digests::of(&body);
        assert_eq!(
            (d.size, d.sha256.as_str()),
            (size, sha.as_str()),
            "{who}: {key}"
        );
        bodies.insert(path.clone(), body.clone());
        if !(path.ends_with("/Packages") || path.ends_with("/Sources")) {
            continue;
        }
        let text = String::from_utf8(body).expect("UTF-8 index");
        for stanza in text.split("\n\n").filter(|s| !s.trim().is_empty()) {
            let field = |n: &str| {
                stanza
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("{n}: ")))
                    .unwrap_or_else(|| panic!("{who}: {path}: no {n} in\n{stanza}"))
                    .to_string()
            };
            if path.ends_with("/Packages") {
                let filename = field("Filename");
                let pool = Digests::of(&must_get(store, &filename, who).await);
                assert_eq!(pool.sha256, field("SHA256"), "{who}: {filename}");
                assert_eq!(pool.size.to_string(), field("Size"), "{who}: {filename}");
                view.packages
                    .entry(path.clone())
                    .or_default()
                    .insert(format!(
                        "{} {} {}",
                        field("Package"),
                        field("Version"),
                        field("Architecture")
                    ));
            } else {
                let dir = field("Directory");
                let mut in_sha = false;
                for line in stanza.lines() {
                    if let Some(rest) = line.strip_prefix(' ') {
                        if in_sha {
                            let p: Vec<&str> = rest.split_whitespace().collect();
                            let key = format!("{dir}/{}", p[2]);
                            let pool = Digests::of(&must_get(store, &key, who).await);
                            assert_eq!(pool.sha256, p[0], "{who}: {key}");
                        }
                    } else {
                        in_sha = line.starts_with("Checksums-Sha256:");
                    }
                }
                view.sources
                    .insert(format!("{} {}", field("Package"), field("Version")));
            }
        }
    }
    for (path, body) in &bodies {
        let mut out = Vec::new();
        let plain = if let Some(plain) = path.strip_suffix(".gz") {
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&body[..]), &mut out)
                .unwrap_or_else(|e| panic!("{who}: {dist}/{path}: not gzip: {e}"));
            plain
        } else if let Some(plain) = path.strip_suffix(".xz") {
            // One stream, as apt reads it (a second one would be ignored).
            std::io::Read::read_to_end(&mut liblzma::read::XzDecoder::new(&body[..]), &mut out)
                .unwrap_or_else(|e| panic!("{who}: {dist}/{path}: not xz: {e}"));
            plain
        } else {
            continue;
        };
        if let Some(expected) = bodies.get(plain) {
            assert!(
                &out == expected,
                "{who}: {dist}/{path} does not decompress to {plain}"
            );
        }
    }
    Some(view)
}

/// The real apt-get in a sandbox of its own under a directory: its own
/// sources, lists, caches and dpkg database, trusting only the keys that
/// `signed-by` names, installing (through dpkg `--root`) into `root/`.
/// Signature and hash checks stay on: this is apt as a user runs it.
#[derive(Debug, Clone)]
pub struct Sandbox {
    dir: std::path::PathBuf,
}

impl Sandbox {
    /// Creates the sandbox's directories and configuration under `dir`.
    pub fn new(dir: &std::path::Path) -> Sandbox {
        use std::fs;
        for d in [
            "etc/apt/sources.list.d",
            "etc/apt/preferences.d",
            "etc/apt/apt.conf.d",
            "var/lib/apt/lists/partial",
            "var/cache/apt/archives/partial",
            "var/lib/dpkg/info",
            "var/lib/dpkg/updates",
            "log",
            "root",
        ] {
            fs::create_dir_all(dir.join(d)).expect("sandbox directory");
        }
        for f in ["var/lib/dpkg/status", "var/lib/dpkg/available"] {
            fs::write(dir.join(f), "").expect("dpkg database");
        }
        let d = dir.display();
        let conf = format!(
            "Dir \"{d}/\";\n\
             Dir::State::status \"{d}/var/lib/dpkg/status\";\n\
             Dir::Etc::trusted \"/dev/null\";\n\
             Dir::Etc::trustedparts \"{d}/none\";\n\
             Dir::Log \"{d}/log\";\n\
             Debug::NoLocking \"1\";\n\
             APT::Sandbox::User \"root\";\n\
             APT::Architecture \"amd64\";\n\
             Acquire::Languages \"none\";\n\
             DPkg::Options {{ \"--root={d}/root\"; \"--admindir={d}/var/lib/dpkg\"; \"--force-not-root\"; \"--force-script-chrootless\"; \"--log={d}/log/dpkg.log\"; }};\n"
        );
        fs::write(dir.join("apt.conf"), conf).expect("apt.conf");
        Sandbox {
            dir: dir.to_path_buf(),
        }
    }

    /// Replaces the sandbox's `sources.list`.
    pub fn sources(&self, text: &str) {
        std::fs::write(self.dir.join("etc/apt/sources.list"), text).expect("sources.list");
    }

    /// Where dpkg installs packages.
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.join("root")
    }

    /// Runs `apt-get -q ARGS` in `cwd` (where downloads land).
    pub fn apt_get(&self, args: &[&str], cwd: &std::path::Path) -> std::process::Output {
        std::process::Command::new("apt-get")
            .current_dir(cwd)
            .env("APT_CONFIG", self.dir.join("apt.conf"))
            .arg("-q")
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("apt-get runs")
    }

    /// Runs `apt-cache ARGS` in `cwd` (`policy`, `madison`, ...).
    pub fn apt_cache(&self, args: &[&str], cwd: &std::path::Path) -> std::process::Output {
        std::process::Command::new("apt-cache")
            .current_dir(cwd)
            .env("APT_CONFIG", self.dir.join("apt.conf"))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("apt-cache runs")
    }
}
