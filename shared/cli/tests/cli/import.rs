//! `raptr import` from an upstream built by Debian's tools, signed by
//! GnuPG and served over HTTP on 127.0.0.1; then apt installs from the
//! repository what was imported, byte for byte.

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::fixtures::{ok, raptr, text};

const UID: &str = "Upstream <upstream@raptr.invalid>";

/// A static file server on a free loopback port, stopped when dropped
/// (and by `timeout` if the test dies first).
struct Server(Child, u16);

impl Server {
    fn start(dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a free port")
            .local_addr()
            .expect("addr")
            .port();
        let child = Command::new("timeout")
            .args(["600", "python3", "-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 serves");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Server(child, port);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        drop(Server(child, port));
        panic!("the server on port {port} did not start");
    }
}

impl Drop for Server {
    /// SIGTERM to `timeout`, which passes it on to the server and exits
    /// (a SIGKILL would end `timeout` alone and leave the server running).
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[test]
fn an_upstream_over_http_is_imported_and_apt_installs_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let gpg = raptr_testkit::gnupg::Gpg::new(&tmp.path().join("gnupg"));
    gpg.generate(UID, "ed25519", "cert,sign", "never", "", &[]);
    let up = tmp.path().join("upstream");
    raptr_testkit::upstream::suite(
        &up,
        &gpg,
        UID,
        &[("hello", "1.0-1"), ("hello", "1.0-2"), ("tool", "3.1-1")],
        raptr_testkit::upstream::Style {
            detached: true,
            xz: true,
        },
    );
    let keyring = tmp.path().join("upstream.gpg");
    fs::write(&keyring, gpg.export_public(UID)).expect("write");
    let server = Server::start(&up);
    let url = format!("http://127.0.0.1:{}/", server.1);

    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.to_str().expect("utf-8");
    ok(raptr(&["--repo", repo, "init"]));
    let import = || {
        raptr(&[
            "--repo",
            repo,
            "import",
            &url,
            "--suite",
            "stable",
            "--keyring",
            keyring.to_str().expect("utf-8"),
            "--newest",
            "1",
            "--to",
            "stable",
        ])
    };
    let t = ok(import());
    assert!(
        t.contains("2 file(s) fetched") && t.contains("0 refused"),
        "{t}"
    );
    ok(raptr(&["--repo", repo, "publish"]));
    let t = ok(import());
    assert!(
        t.contains("nothing to do"),
        "a second run fetches nothing: {t}"
    );
    // Without a keyring: refused, with what to do.
    let out = raptr(&[
        "--repo", repo, "import", &url, "--suite", "stable", "--to", "stable",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--keyring"), "{}", text(&out));

    // apt, reading the repository, installs what the upstream signed.
    let sandbox = raptr_testkit::apt::Sandbox::new(&tmp.path().join("apt"));
    sandbox.sources(&format!(
        "deb [signed-by={}] file:{} stable main\n",
        repo_dir.join("keys/repo.gpg").display(),
        repo_dir.display()
    ));
    let out = sandbox.apt_get(&["update"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dl = tmp.path().join("dl");
    fs::create_dir_all(&dl).expect("mkdir");
    let out = sandbox.apt_get(&["download", "hello", "tool"], &dl);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read(dl.join("hello_1.0-2_amd64.deb")).expect("downloaded"),
        fs::read(up.join("pool/main/h/hello/hello_1.0-2_amd64.deb")).expect("upstream"),
    );
    assert!(dl.join("tool_3.1-1_amd64.deb").exists());

    // The same upstream declared as a mirror in the configuration.
    let mirrored = tmp.path().join("mirrored");
    let m = mirrored.to_str().expect("utf-8");
    ok(raptr(&["--repo", m, "init"]));
    let path = mirrored.join("config/raptr.json");
    let mut config: serde_json::Value =
        serde_json::from_slice(&fs::read(&path).expect("config")).expect("json");
    config["mirrors"] = serde_json::json!([{
        "name": "vendor", "url": url, "suite": "stable", "newest": 1,
        "keyring": {"file": keyring.to_str().expect("utf-8")},
        "distribution": "testing"
    }]);
    fs::write(&path, serde_json::to_vec_pretty(&config).expect("json")).expect("write");
    let t = ok(raptr(&["--repo", m, "mirror", "sync"]));
    assert!(
        t.contains("vendor: ") && t.contains("2 file(s) fetched"),
        "{t}"
    );
    let t = ok(raptr(&["--repo", m, "mirror", "sync", "vendor"]));
    assert!(t.contains("nothing to do"), "{t}");
    let synced: serde_json::Value =
        serde_json::from_str(&ok(raptr(&["--repo", m, "--json", "mirror", "sync"]))).expect("json");
    assert_eq!(synced["mirrors"][0]["status"], "unchanged", "{synced:#}");
    // Each sync leaves its report in the repository.
    let report: serde_json::Value = serde_json::from_slice(
        &fs::read(mirrored.join("reports/mirrors/vendor.json")).expect("the sync's report"),
    )
    .expect("json");
    assert_eq!(
        (report["mirror"].as_str(), report["status"].as_str()),
        (Some("vendor"), Some("unchanged")),
        "{report:#}"
    );
    crate::fixtures::conforms(&[("mirror_sync", &synced), ("mirror_report", &report)]);
    let out = raptr(&["--repo", m, "mirror", "sync", "nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("declares vendor"), "{}", text(&out));
    ok(raptr(&["--repo", m, "publish"]));
    let t = ok(raptr(&["--repo", m, "list", "testing"]));
    assert!(
        t.contains("hello") && t.contains("1.0-2") && t.contains("tool"),
        "{t}"
    );
    drop(server);
}

/// A Debian archive this machine's apt is configured with, from `apt-cache
/// policy`: its base URL and a suite whose main component it reads (the
/// plain release suite, not -updates or -security, when there is one).
fn debian_archive() -> Option<(String, String)> {
    let out = Command::new("apt-cache").arg("policy").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut found: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let _priority = parts.next()?;
            let url = parts.next()?;
            let place = parts.next()?;
            let (suite, component) = place.split_once('/')?;
            (url.starts_with("http") && component == "main" && url.ends_with("/debian"))
                .then(|| (url.to_string(), suite.to_string()))
        })
        .collect();
    found.sort_by_key(|(_, s)| s.contains('-'));
    found.into_iter().next()
}

/// A few packages from the real Debian archive apt is configured with,
/// verified with Debian's archive keyring; skipped, saying so, where no
/// archive is configured or reachable.
#[test]
fn a_package_from_the_debian_archive_apt_uses_is_imported_with_debians_keyring() {
    let keyring = Path::new("/usr/share/keyrings/debian-archive-keyring.gpg");
    let Some((url, suite)) = debian_archive().filter(|_| keyring.exists()) else {
        eprintln!(
            "skipped: apt is configured with no Debian archive here, or {} is missing",
            keyring.display()
        );
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.to_str().expect("utf-8");
    ok(raptr(&["--repo", repo, "init"]));
    let import = |more: &[&str]| {
        let mut args = vec![
            "--repo",
            repo,
            "import",
            &url,
            "--suite",
            &suite,
            "--components",
            "main",
            "--architectures",
            "amd64",
            "--packages",
            "hello",
            "--newest",
            "1",
            "--keyring",
            keyring.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(more);
        raptr(&args)
    };
    let out = import(&["--to", "stable"]);
    let t = text(&out);
    if t.contains("transient failure") || t.contains("no answer within") {
        eprintln!("skipped: {url} is not reachable from here: {t}");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{url} {suite}: {t}");
    assert!(t.contains("1 file(s) fetched"), "{t}");
    ok(raptr(&["--repo", repo, "publish"]));
    let t = ok(raptr(&[
        "--repo",
        repo,
        "list",
        "stable",
        "--package",
        "hello",
    ]));
    assert!(t.contains("hello"), "{t}");

    // With its dependencies, resolved in the archive: apt, reading only
    // this repository, can then install it on a machine with nothing.
    let out = import(&["--with-dependencies", "--to", "testing"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{url} {suite}: {t}");
    assert!(t.contains("added as dependencies; 0 dependenc"), "{t}");
    ok(raptr(&["--repo", repo, "publish"]));
    let t = ok(raptr(&["--repo", repo, "list", "testing"]));
    assert!(t.contains("glibc"), "libc6 came with hello: {t}");
    let sandbox = raptr_testkit::apt::Sandbox::new(&tmp.path().join("apt"));
    sandbox.sources(&format!(
        "deb [signed-by={}] file:{} testing main\n",
        repo_dir.join("keys/repo.gpg").display(),
        repo_dir.display()
    ));
    let out = sandbox.apt_get(&["update"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = sandbox.apt_get(&["install", "--simulate", "hello"], tmp.path());
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "apt finds every dependency: {t}"
    );
    assert!(t.contains("Inst hello") && t.contains("Inst libc6"), "{t}");
}

/// A whole publication built by reprepro (three suites, a package shared
/// by two of them, one file tampered with after signing), migrated in one
/// command: what the signatures vouch for comes in with every version, the
/// tampered file and the suite without a distribution here are named in the
/// summary, a second run fetches nothing, `--map` brings the third suite in,
/// and apt installs from each distribution what reprepro served.
#[test]
fn a_reprepro_publication_is_migrated_whole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("gnupg");
    let gpg = raptr_testkit::gnupg::Gpg::new(&home);
    let fpr = gpg.generate(UID, "ed25519", "cert,sign", "never", "", &[]);
    let old = tmp.path().join("old");
    fs::create_dir_all(old.join("conf")).expect("mkdir");
    let mut dists = String::new();
    for suite in ["stable", "testing", "legacy"] {
        dists.push_str(&format!(
            "Origin: Vendor\nLabel: Vendor\nCodename: {suite}\nArchitectures: amd64\nComponents: main\nSignWith: {fpr}\n\n"
        ));
    }
    fs::write(old.join("conf/distributions"), dists).expect("write");
    let debs = tmp.path().join("debs");
    fs::create_dir_all(&debs).expect("mkdir");
    let include = |suite: &str, name: &str, version: &str| {
        let file = debs.join(raptr_testkit::deb_name(name, version, "amd64"));
        fs::write(
            &file,
            raptr_testkit::deb(name, version, "amd64", None, version),
        )
        .expect("write");
        let out = Command::new("reprepro")
            .env("GNUPGHOME", home.join("gnupg"))
            .arg("-b")
            .arg(&old)
            .args(["includedeb", suite])
            .arg(&file)
            .output()
            .expect("reprepro runs (make setup installs it)");
        assert!(out.status.success(), "reprepro: {}", text(&out));
    };
    include("stable", "hello", "1.0-1");
    include("stable", "tool", "3.1-1");
    include("testing", "hello", "1.0-2");
    include("testing", "tool", "3.1-1");
    include("testing", "extra", "2-1");
    include("legacy", "hello", "0.9-1");
    // After signing: extra's bytes are no longer what the index says.
    let extra = old.join("pool/main/e/extra/extra_2-1_amd64.deb");
    let mut bytes = fs::read(&extra).expect("read");
    bytes.push(0);
    fs::write(&extra, bytes).expect("tamper");
    let keyring = tmp.path().join("vendor.gpg");
    fs::write(&keyring, gpg.export_public(UID)).expect("write");

    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.to_str().expect("utf-8");
    ok(raptr(&["--repo", repo, "init"]));
    let migrate = |extra: &[&str]| {
        let mut args = vec![
            "--repo",
            repo,
            "migrate",
            old.to_str().expect("utf-8"),
            "--keyring",
            keyring.to_str().expect("utf-8"),
        ];
        args.extend_from_slice(extra);
        raptr(&args)
    };
    let out = migrate(&[]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("skipped legacy: ") && t.contains("--map legacy=DIST"),
        "{t}"
    );
    assert!(
        t.contains("refused: pool/main/e/extra/extra_2-1_amd64.deb: does not match its index"),
        "{t}"
    );
    assert!(
        t.contains("stable/main -> stable: 2 package(s)")
            && t.contains("testing/main -> testing: 3 package(s)"),
        "{t}"
    );
    // tool 3.1-1 is one file in reprepro's pool: fetched once, linked in both.
    assert!(
        t.contains("3 file(s) imported, 1 already here, 1 refused"),
        "{t}"
    );
    ok(raptr(&["--repo", repo, "publish"]));

    // A second run fetches nothing new (the tampered file is refused again);
    // --map brings legacy's version into testing.
    let out = migrate(&["--map", "legacy=testing"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("stable/main -> stable: unchanged"), "{t}");
    assert!(t.contains("legacy/main -> testing: 1 package(s)"), "{t}");
    assert!(t.contains("1 file(s) imported"), "{t}");
    ok(raptr(&["--repo", repo, "publish"]));
    let json: serde_json::Value =
        serde_json::from_str(&ok(raptr(&["--repo", repo, "--json", "list", "testing"])))
            .expect("json");
    crate::fixtures::conforms(&[("list", &json)]);

    // apt installs from each distribution what reprepro served there.
    let sandbox = raptr_testkit::apt::Sandbox::new(&tmp.path().join("apt"));
    sandbox.sources(&format!(
        "deb [signed-by={k}] file:{r} stable main\ndeb [signed-by={k}] file:{r} testing main\n",
        k = repo_dir.join("keys/repo.gpg").display(),
        r = repo_dir.display()
    ));
    let out = sandbox.apt_get(&["update"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = sandbox.apt_cache(&["madison", "hello", "tool", "extra"], tmp.path());
    let madison = text(&out);
    for (pkg, version, suite) in [
        ("hello", "1.0-1", "stable"),
        ("hello", "1.0-2", "testing"),
        ("hello", "0.9-1", "testing"),
        ("tool", "3.1-1", "stable"),
        ("tool", "3.1-1", "testing"),
    ] {
        assert!(
            madison.lines().any(|l| l.contains(pkg)
                && l.contains(version)
                && l.contains(&format!("{suite}/main"))),
            "{pkg} {version} in {suite}: {madison}"
        );
    }
    assert!(!madison.contains("extra"), "the tampered file: {madison}");
    let dl = tmp.path().join("dl");
    fs::create_dir_all(&dl).expect("mkdir");
    let out = sandbox.apt_get(&["download", "hello=1.0-2", "tool"], &dl);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read(dl.join("hello_1.0-2_amd64.deb")).expect("downloaded"),
        fs::read(old.join("pool/main/h/hello/hello_1.0-2_amd64.deb")).expect("reprepro's"),
    );
}

/// A publication made by aptly (two published repositories, one holding
/// two versions of a package), migrated whole: every version comes, and
/// apt installs each from the distribution aptly published it in.
#[test]
fn an_aptly_publication_is_migrated_with_every_version() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path().join("gnupg");
    let gpg = raptr_testkit::gnupg::Gpg::new(&home);
    let fpr = gpg.generate(UID, "ed25519", "cert,sign", "never", "", &[]);
    let root = tmp.path().join("aptly");
    let conf = tmp.path().join("aptly.conf");
    fs::write(
        &conf,
        serde_json::json!({"rootDir": root, "gpgProvider": "gpg", "architectures": ["amd64"]})
            .to_string(),
    )
    .expect("write");
    let aptly = |args: &[&str]| {
        let out = Command::new("aptly")
            .env("GNUPGHOME", home.join("gnupg"))
            .arg(format!("-config={}", conf.display()))
            .args(args)
            .output()
            .expect("aptly runs (make setup installs it)");
        assert!(out.status.success(), "aptly {args:?}: {}", text(&out));
    };
    let debs = tmp.path().join("debs");
    fs::create_dir_all(&debs).expect("mkdir");
    let deb = |name: &str, version: &str| {
        let file = debs.join(raptr_testkit::deb_name(name, version, "amd64"));
        fs::write(
            &file,
            raptr_testkit::deb(name, version, "amd64", None, version),
        )
        .expect("write");
        file.to_str().expect("utf-8").to_string()
    };
    for (repo, dist, files) in [
        (
            "rel",
            "stable",
            vec![deb("hello", "1.0-1"), deb("hello", "1.0-2")],
        ),
        (
            "dev",
            "testing",
            vec![deb("hello", "1.1-1"), deb("tool", "3.1-1")],
        ),
    ] {
        aptly(&[
            "repo",
            "create",
            "-distribution",
            dist,
            "-component",
            "main",
            repo,
        ]);
        let mut add = vec!["repo", "add", repo];
        add.extend(files.iter().map(String::as_str));
        aptly(&add);
        aptly(&["publish", "repo", "-batch", "-gpg-key", &fpr, repo]);
    }
    let keyring = tmp.path().join("aptly-key.gpg");
    fs::write(&keyring, gpg.export_public(UID)).expect("write");

    let repo_dir = tmp.path().join("repo");
    let repo = repo_dir.to_str().expect("utf-8");
    ok(raptr(&["--repo", repo, "init"]));
    let public = root.join("public");
    let url = format!("file:{}", public.display());
    let migrate = || {
        raptr(&[
            "--repo",
            repo,
            "migrate",
            &url,
            "--keyring",
            keyring.to_str().expect("utf-8"),
        ])
    };
    let t = ok(migrate());
    assert!(
        t.contains("stable/main -> stable: 2 package(s)")
            && t.contains("testing/main -> testing: 2 package(s)")
            && t.contains("4 file(s) imported, 0 already here, 0 refused, 0 part(s) skipped"),
        "{t}"
    );
    ok(raptr(&["--repo", repo, "publish"]));
    let t = ok(migrate());
    assert!(
        t.contains("0 file(s) imported"),
        "a second run fetches nothing: {t}"
    );

    let sandbox = raptr_testkit::apt::Sandbox::new(&tmp.path().join("apt"));
    sandbox.sources(&format!(
        "deb [signed-by={k}] file:{r} stable main\ndeb [signed-by={k}] file:{r} testing main\n",
        k = repo_dir.join("keys/repo.gpg").display(),
        r = repo_dir.display()
    ));
    let out = sandbox.apt_get(&["update"], tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let madison = text(&sandbox.apt_cache(&["madison", "hello"], tmp.path()));
    for (version, suite) in [
        ("1.0-1", "stable"),
        ("1.0-2", "stable"),
        ("1.1-1", "testing"),
    ] {
        assert!(
            madison
                .lines()
                .any(|l| l.contains(version) && l.contains(&format!("{suite}/main"))),
            "hello {version} in {suite}: {madison}"
        );
    }
    let dl = tmp.path().join("dl");
    fs::create_dir_all(&dl).expect("mkdir");
    let out = sandbox.apt_get(&["download", "hello=1.0-1"], &dl);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        fs::read(dl.join("hello_1.0-1_amd64.deb")).expect("downloaded"),
        fs::read(public.join("pool/main/h/hello/hello_1.0-1_amd64.deb")).expect("aptly's"),
    );
}
