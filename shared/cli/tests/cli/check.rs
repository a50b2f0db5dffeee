//! `raptr check` on well-formed input: packages built by dpkg-deb with every
//! member compression, a source package built by dpkg-source, and real Debian
//! packages; exit statuses and JSON output.

use std::fs;

use crate::fixtures::*;

#[test]
fn accepts_every_member_compression() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, c) in ["none", "gzip", "xz", "zstd"].iter().enumerate() {
        let arch = ["amd64", "arm64", "i386", "all"][i];
        let ctl = control(&format!("comp-{c}"), "1.0-1", arch)
            .replace("Package: ", "Source: comp (1.0-1)\nPackage: ");
        dpkg_deb(&dir.path().join(format!("comp-{c}.deb")), &ctl, c);
    }
    let out = raptr(&["check", "--json", dir.path().to_str().expect("utf-8")]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(out.status.code(), Some(0), "{doc:#}");
    assert_eq!(doc["accepted"], 4, "{doc:#}");
    assert_eq!(doc["bundle"], "comp");
    assert_eq!(doc["version"], "1.0-1");
    let keys: Vec<&str> = doc["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["pool_key"].as_str().expect("pool_key"))
        .collect();
    assert!(
        keys.contains(&"pool/main/c/comp/1.0-1/comp-zstd_1.0-1_all.deb"),
        "{keys:?}"
    );
}

#[test]
fn accepts_a_dpkg_source_bundle_with_its_debs() {
    let dir = tempfile::tempdir().expect("tempdir");
    dpkg_source(dir.path(), "libwidget", "1:2.0+dfsg~rc1", "3");
    for (pkg, arch) in [
        ("libwidget", "amd64"),
        ("libwidget", "arm64"),
        ("libwidget-doc", "all"),
    ] {
        let ctl = control(pkg, "1:2.0+dfsg~rc1-3", arch)
            .replace("Package: ", "Source: libwidget\nPackage: ");
        dpkg_deb(&dir.path().join(format!("{pkg}_{arch}.deb")), &ctl, "xz");
    }
    let (status, stdout) = check(dir.path());
    assert_eq!(status, Some(0), "{stdout}");
    assert!(
        stdout.contains(
            "-> pool/main/libw/libwidget/2.0+dfsg~rc1-3/libwidget_2.0+dfsg~rc1-3_arm64.deb"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("bundle libwidget 1:2.0+dfsg~rc1-3: 6 file(s), 6 accepted"),
        "{stdout}"
    );
}

#[test]
fn accepts_real_debian_packages() {
    let dir = real_fixtures("real");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let out = raptr(&["check", path.to_str().expect("utf-8")]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stdout)
        );
        seen += 1;
    }
    assert!(
        seen >= 5,
        "expected the five fetched packages, found {seen}"
    );
}

#[test]
fn accepts_a_real_multi_binary_source() {
    let dir = real_fixtures("source");
    let (status, stdout) = check(&dir);
    assert_eq!(status, Some(0), "{stdout}");
    assert!(stdout.contains("bundle zlib 1:"), "{stdout}");
}

#[test]
fn identical_twins_are_skipped_not_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let deb = deb_with_control(&control("twin", "1.0", "amd64"));
    fs::write(dir.path().join("twin_1.0_amd64.deb"), &deb).expect("write");
    fs::write(dir.path().join("twin-copy.deb"), &deb).expect("write");
    let (status, stdout) = check(dir.path());
    assert_eq!(status, Some(0), "{stdout}");
    assert!(
        stdout.contains("skipped: twin_1.0_amd64.deb: identical to twin-copy.deb"),
        "{stdout}"
    );
}

#[test]
fn unknown_files_wait_as_upload_leaves_them_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("notes.txt"), "hello").expect("write");
    let out = raptr(&["check", dir.path().to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(
        "pending: notes.txt: waiting for a .dsc that lists it: upload the .dsc (with every file it lists) into the same folder, or leave this file out"
    ));

    let missing = dir.path().join("nope.deb");
    let out = raptr(&["check", missing.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.deb"));
    assert_eq!(raptr(&["check"]).status.code(), Some(2));
    assert_eq!(raptr(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn a_changes_file_makes_the_folder_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    dpkg_source_with_changes(dir.path(), "atomic", "1.0", "1");
    let (status, stdout) = check(dir.path());
    assert_eq!(status, Some(0), "complete upload: {stdout}");
    assert!(stdout.contains("4 file(s), 4 accepted"), "{stdout}");

    // One listed file missing: nothing of the folder is accepted; as upload
    // would, the folder waits for it (exit 0: nothing rejected yet).
    fs::remove_file(dir.path().join("atomic_1.0-1.debian.tar.xz")).expect("rm");
    let (status, stdout) = check(dir.path());
    assert_eq!(status, Some(0), "{stdout}");
    assert!(
        stdout.contains("0 accepted, 0 skipped, 0 rejected, 3 pending"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pending: atomic_1.0-1_source.changes: the folder is all-or-nothing; waiting for atomic_1.0-1.debian.tar.xz: upload it into the same folder"),
        "{stdout}"
    );
    assert!(
        stdout.contains("pending: atomic_1.0.orig.tar.gz: "),
        "{stdout}"
    );

    // A file the .changes does not list is refused along with everything else.
    let dir = tempfile::tempdir().expect("tempdir");
    dpkg_source_with_changes(dir.path(), "atomic", "1.0", "1");
    dpkg_deb(
        &dir.path().join("stray.deb"),
        &control("atomic", "1.0-1", "amd64"),
        "xz",
    );
    let (status, stdout) = check(dir.path());
    assert_eq!(status, Some(1), "{stdout}");
    assert!(
        stdout.contains("stray.deb is not listed in atomic_1.0-1_source.changes"),
        "{stdout}"
    );
}
