//! Upstream archives made by Debian's own tools, for import tests: test
//! `.deb`s in a pool, `apt-ftparchive packages` and `release`, signed by
//! GnuPG (an `InRelease`, or a detached `Release.gpg`).

use std::path::Path;
use std::process::Command;

use crate::gnupg::Gpg;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// How a suite's Release is signed and its index compressed.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// A detached, armoured `Release.gpg` instead of an `InRelease`.
    pub detached: bool,
    /// `Packages.xz` beside `Packages` (else `Packages.gz`).
    pub xz: bool,
}

/// Adds `debs` (name, version; amd64) to the pool of the suite `stable`
/// (component `main`) under `root`, then writes its index and Release
/// from the whole pool, signed by `who` of `gpg`.
pub fn suite(root: &Path, gpg: &Gpg, who: &str, debs: &[(&str, &str)], style: Style) {
    for (name, version) in debs {
        let dir = root.join(format!("pool/main/{}/{name}", &name[..1]));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join(crate::deb_name(name, version, "amd64")),
            crate::deb(name, version, "amd64", None, version),
        )
        .expect("write");
    }
    let index = root.join("dists/stable/main/binary-amd64");
    std::fs::create_dir_all(&index).expect("mkdir");
    let packages = run(Command::new("apt-ftparchive")
        .current_dir(root)
        .args(["packages", "pool"]));
    std::fs::write(index.join("Packages"), &packages).expect("write");
    let compress = if style.xz { "xz" } else { "gzip" };
    run(Command::new(compress)
        .arg("-kf")
        .arg(index.join("Packages")));
    let release = run(Command::new("apt-ftparchive")
        .current_dir(root.join("dists/stable"))
        .args([
            "-o",
            "APT::FTPArchive::Release::Suite=stable",
            "-o",
            "APT::FTPArchive::Release::Architectures=amd64",
            "-o",
            "APT::FTPArchive::Release::Components=main",
            "release",
            ".",
        ]));
    let dir = root.join("dists/stable");
    std::fs::write(dir.join("Release"), &release).expect("write");
    if style.detached {
        std::fs::write(
            dir.join("Release.gpg"),
            gpg.detach_sign(who, &release, true),
        )
        .expect("write");
    } else {
        std::fs::write(dir.join("InRelease"), gpg.clearsign(who, &release)).expect("write");
    }
}
