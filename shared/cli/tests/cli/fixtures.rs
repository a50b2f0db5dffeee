//! Building test packages: well-formed ones with dpkg-deb and dpkg-source, and
//! hand-assembled ones (with the `ar` and `tar` crates) for what dpkg-deb would
//! refuse to build.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (two levels above this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Real Debian packages fetched by `scripts/fetch-fixtures.sh`.
pub fn real_fixtures(kind: &str) -> PathBuf {
    let dir = workspace().join(".cache/fixtures").join(kind);
    let marker = workspace().join(format!(".cache/fixtures/{kind}.done"));
    assert!(
        marker.exists(),
        "{} is missing: run `make test` (or scripts/setup.sh) to fetch the real Debian fixtures",
        dir.display()
    );
    dir
}

/// Runs `raptr` with arguments; returns its output.
/// Keys `init` makes go under the test build's scratch directory, never
/// the user's own key directory.
pub fn raptr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raptr"))
        .env(
            "RAPTR_KEY_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/keys"),
        )
        .args(args)
        .output()
        .expect("raptr runs")
}

/// The address space `raptr check` gets in the tests: what a validator may
/// use on any input, hostile or real, with room for the binary itself.
pub const ADDRESS_SPACE_KB: u64 = 256 * 1024;

/// Runs `raptr check` (text output) on a path, under [`ADDRESS_SPACE_KB`]:
/// its exit status and stdout. An allocation the limit refuses aborts the
/// process, which shows as a status other than 0 or 1.
pub fn check(path: &Path) -> (Option<i32>, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {ADDRESS_SPACE_KB} && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_raptr"))
        .args(["check", path.to_str().expect("utf-8 path")])
        .output()
        .expect("raptr runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub use raptr_testkit::control;

/// Builds a .deb with dpkg-deb, with `compression` for both members.
pub fn dpkg_deb(out: &Path, control: &str, compression: &str) -> PathBuf {
    let root = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(root.path().join("DEBIAN")).expect("mkdir");
    fs::write(root.path().join("DEBIAN/control"), control).expect("write");
    let doc = root.path().join("usr/share/doc/test");
    fs::create_dir_all(&doc).expect("mkdir");
    fs::write(doc.join("README"), "hello\n".repeat(100)).expect("write");
    run(Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .arg(format!("-Z{compression}"))
        .arg("--build")
        .arg(root.path())
        .arg(out));
    out.to_path_buf()
}

/// Builds a source package with dpkg-source in `dir`; returns the .dsc path.
/// Binary packages: `name` and `name-doc`.
pub fn dpkg_source(dir: &Path, name: &str, upstream: &str, revision: &str) -> PathBuf {
    build_source(dir, name, upstream, revision, false)
}

/// Like [`dpkg_source`], plus a source-only `.changes` made by dpkg-genchanges.
pub fn dpkg_source_with_changes(dir: &Path, name: &str, upstream: &str, revision: &str) -> PathBuf {
    build_source(dir, name, upstream, revision, true)
}

fn build_source(dir: &Path, name: &str, upstream: &str, revision: &str, changes: bool) -> PathBuf {
    let work = tempfile::tempdir().expect("tempdir");
    let bare = upstream_no_epoch(upstream);
    let src = work.path().join(format!("{name}-{bare}"));
    fs::create_dir_all(src.join("debian/source")).expect("mkdir");
    fs::write(src.join("hello.c"), "int main(void) { return 0; }\n").expect("write");
    run(Command::new("tar")
        .current_dir(work.path())
        .arg("-czf")
        .arg(format!("{name}_{bare}.orig.tar.gz"))
        .arg(format!("{name}-{bare}")));
    fs::write(src.join("debian/source/format"), "3.0 (quilt)\n").expect("write");
    fs::write(
        src.join("debian/control"),
        format!(
            "Source: {name}\nSection: utils\nPriority: optional\nMaintainer: raptr tests <tests@example.com>\nBuild-Depends: debhelper-compat (= 13)\nStandards-Version: 4.6.2\nHomepage: https://example.com/{name}\nVcs-Git: https://example.com/{name}.git\n\nPackage: {name}\nArchitecture: any\nDescription: test\n test\n\nPackage: {name}-doc\nArchitecture: all\nDescription: test docs\n test\n"
        ),
    )
    .expect("write");
    fs::write(
        src.join("debian/changelog"),
        format!("{name} ({upstream}-{revision}) unstable; urgency=medium\n\n  * Test.\n\n -- raptr tests <tests@example.com>  Mon, 02 Nov 2026 12:00:00 +0000\n"),
    )
    .expect("write");
    run(Command::new("dpkg-source")
        .current_dir(work.path())
        .arg("-b")
        .arg(format!("{name}-{bare}")));
    if changes {
        run(Command::new("dpkg-genchanges")
            .current_dir(&src)
            .arg("-S")
            .arg(format!("-O../{name}_{bare}-{revision}_source.changes")));
    }
    let mut dsc = None;
    for entry in fs::read_dir(work.path()).expect("readdir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let target = dir.join(path.file_name().expect("name"));
            fs::copy(&path, &target).expect("copy");
            if target.extension().is_some_and(|e| e == "dsc") {
                dsc = Some(target);
            }
        }
    }
    dsc.expect("dpkg-source wrote a .dsc")
}

fn upstream_no_epoch(v: &str) -> &str {
    v.split_once(':').map_or(v, |(_, u)| u)
}

pub use raptr_testkit::{ar, data_tar, deb_with_control, gzip, handmade_deb, tar, Entry};

/// Standard output then standard error of a run, for assertions and their
/// messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A run that must succeed; its [`text`].
pub fn ok(out: Output) -> String {
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    t
}

/// Asserts that each document conforms to its definition in
/// `shared/cli/output.schema.json` (`$defs/<name>`), judged by Python's
/// jsonschema (installed by `make setup`), which also checks the schema.
pub fn conforms(docs: &[(&str, &serde_json::Value)]) {
    use std::io::Write as _;
    let python = workspace().join(".cache/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `make setup`",
        python.display()
    );
    let script = r##"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
for name, doc in json.load(sys.stdin):
    v = Draft202012Validator({"$ref": "#/$defs/" + name, "$defs": schema["$defs"]})
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    print(json.dumps([name, [f"{list(e.path)}: {e.message}" for e in errors[:5]]]))
"##;
    let payload = serde_json::Value::Array(
        docs.iter()
            .map(|(n, d)| serde_json::json!([n, d]))
            .collect(),
    );
    let mut child = Command::new(&python)
        .args(["-c", script])
        .arg(workspace().join("shared/cli/output.schema.json"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(payload.to_string().as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python ends");
    assert!(
        out.status.success(),
        "the schema check failed: {}",
        text(&out)
    );
    let verdicts: Vec<(String, Vec<String>)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a verdict"))
        .collect();
    assert_eq!(verdicts.len(), docs.len());
    for ((name, errors), (_, doc)) in verdicts.iter().zip(docs) {
        assert!(errors.is_empty(), "{name}: {errors:?} in {doc:#}");
    }
}
