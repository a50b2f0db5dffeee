//! Building test packages: well-formed ones with dpkg-deb and dpkg-source, and
//! hand-assembled ones (with the `ar` and `tar` crates) for what dpkg-deb would
//! refuse to build.

use std::fs;
use std::io::Write;
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
pub fn raptr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_raptr"))
        .args(args)
        .output()
        .expect("raptr runs")
}

/// Runs `raptr check` (text output) on a path: its exit status and stdout.
pub fn check(path: &Path) -> (Option<i32>, String) {
    let out = raptr(&["check", path.to_str().expect("utf-8 path")]);
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

pub const CONTROL: &str = "Package: PKG\nVersion: VER\nArchitecture: ARCH\nMaintainer: raptr tests <tests@example.com>\nInstalled-Size: 4\nSection: utils\nPriority: optional\nDepends: libc6 (>= 2.36)\nDescription: a test package\n It does nothing.\n .\n Really nothing.\nX-Raptr-Test: yes\n";

/// The control file of a test package.
pub fn control(package: &str, version: &str, arch: &str) -> String {
    CONTROL
        .replace("PKG", package)
        .replace("VER", version)
        .replace("ARCH", arch)
}

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

/// A tar archive (uncompressed) from (path, kind, data) entries.
pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    /// A file header whose path is written raw (bypassing the builder's checks).
    RawFile(&'a str, &'a [u8]),
}

pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        match e {
            Entry::File(path, data) => {
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                b.append_data(&mut h, path, *data).expect("tar");
            }
            Entry::RawFile(path, data) => {
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                let name = &mut h.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                h.set_cksum();
                b.append(&h, *data).expect("tar");
            }
            Entry::Symlink(path, target) | Entry::Hardlink(path, target) => {
                h.set_size(0);
                h.set_entry_type(if matches!(e, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                b.append_link(&mut h, path, target).expect("tar");
            }
        }
    }
    b.into_inner().expect("tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// An ar archive from (member name, data) pairs.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = ar::Builder::new(Vec::new());
    for (name, data) in members {
        let h = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
        b.append(&h, *data).expect("ar");
    }
    b.into_inner().expect("ar")
}

/// A hand-built .deb: debian-binary 2.0, control.tar.gz, data.tar.gz.
pub fn handmade_deb(control_tar: &[u8], data_tar: &[u8]) -> Vec<u8> {
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &gzip(control_tar)),
        ("data.tar.gz", &gzip(data_tar)),
    ])
}

/// A minimal valid data.tar.
pub fn data_tar() -> Vec<u8> {
    tar(&[Entry::File("./usr/share/doc/x/README", b"hello\n")])
}

/// A hand-built .deb whose control file is `control`.
pub fn deb_with_control(control: &str) -> Vec<u8> {
    handmade_deb(
        &tar(&[Entry::File("./control", control.as_bytes())]),
        &data_tar(),
    )
}
