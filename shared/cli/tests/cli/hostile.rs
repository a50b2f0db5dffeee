//! Hostile inputs: each must make `raptr check` exit 1 with a reason that names
//! the file and the problem, in bounded time.

use std::fs;
use std::path::Path;

use crate::fixtures::*;

/// Writes `bytes` as `name` in a fresh folder, checks the folder, and expects
/// a rejection of `name` whose reason contains `want`.
fn expect_rejected(name: &str, bytes: &[u8], want: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join(name), bytes).expect("write");
    expect_folder_rejects(dir.path(), name, want);
}

/// Checks `dir` (under the memory limit) and expects a rejection of `name`
/// whose reason contains `want` and is short.
pub(crate) fn expect_folder_rejects(dir: &Path, name: &str, want: &str) {
    let (status, stdout) = check(dir);
    assert_eq!(status, Some(1), "{name}: exit status; output:\n{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&format!("rejected: {name}: ")))
        .unwrap_or_else(|| panic!("no rejection line for {name} in:\n{stdout}"));
    assert!(line.contains(want), "{name}: expected {want:?} in {line:?}");
    assert!(
        line.len() < 300,
        "{name}: a short reason, got {} bytes",
        line.len()
    );
}

fn valid_deb() -> Vec<u8> {
    deb_with_control(&control("hostile", "1.0-1", "amd64"))
}

#[test]
fn a_valid_handmade_deb_is_accepted() {
    // The baseline the hostile variants below start from.
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("hostile_1.0-1_amd64.deb"), valid_deb()).expect("write");
    let out = raptr(&["check", dir.path().to_str().expect("utf-8")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn truncated_deb() {
    let deb = valid_deb();
    expect_rejected("cut.deb", &deb[..deb.len() - 40], "truncated");
}

#[test]
fn not_an_ar_file() {
    expect_rejected(
        "text.deb",
        b"#!/bin/sh\necho this is no package\n",
        "not a valid ar archive",
    );
}

#[test]
fn wrong_member_order() {
    let ctl = gzip(&tar(&[Entry::File(
        "./control",
        control("x1", "1", "amd64").as_bytes(),
    )]));
    let data = gzip(&data_tar());
    let deb = ar(&[
        ("debian-binary", b"2.0\n"),
        ("data.tar.gz", &data),
        ("control.tar.gz", &ctl),
    ]);
    expect_rejected("order.deb", &deb, "second member is \"data.tar.gz\"");
}

#[test]
fn missing_control_member() {
    let deb = ar(&[
        ("debian-binary", b"2.0\n"),
        ("data.tar.gz", &gzip(&data_tar())),
    ]);
    expect_rejected("noctl.deb", &deb, "expected control.tar");
}

#[test]
fn debian_binary_3() {
    let ctl = gzip(&tar(&[Entry::File(
        "./control",
        control("x1", "1", "amd64").as_bytes(),
    )]));
    let deb = ar(&[
        ("debian-binary", b"3.0\n"),
        ("control.tar.gz", &ctl),
        ("data.tar.gz", &gzip(&data_tar())),
    ]);
    expect_rejected("v3.deb", &deb, "unsupported package format \"3.0\"");
}

#[test]
fn trailing_member_and_garbage() {
    let deb = valid_deb();
    let mut extra = deb.clone();
    extra.extend_from_slice(&ar(&[("evil", b"x")])[8..]);
    expect_rejected("extra.deb", &extra, "unexpected member \"evil\"");
}

/// A tar with one large file of zeros: compresses to almost nothing.
fn bomb_tar() -> Vec<u8> {
    let zeros = vec![0u8; 80 << 20];
    tar(&[
        Entry::File("./zeros", &zeros),
        Entry::File("./control", b"Package: x\n"),
    ])
}

/// A .deb whose control member is `compressed` (a bomb) under `member`.
fn expect_bomb_rejected(name: &str, member: &str, compressed: &[u8]) {
    let deb = ar(&[
        ("debian-binary", b"2.0\n"),
        (member, compressed),
        ("data.tar.gz", &gzip(&data_tar())),
    ]);
    assert!(
        deb.len() < 200_000,
        "the bomb is small: {} bytes",
        deb.len()
    );
    expect_rejected(name, &deb, "decompresses to more than");
}

#[test]
fn gzip_bomb_in_control_tar() {
    expect_bomb_rejected("gzbomb.deb", "control.tar.gz", &gzip(&bomb_tar()));
}

#[test]
fn zstd_bomb_in_control_tar() {
    let z = zstd::encode_all(bomb_tar().as_slice(), 19).expect("zstd");
    expect_bomb_rejected("zstbomb.deb", "control.tar.zst", &z);
}

#[test]
fn stanza_smuggled_through_blank_line() {
    let ctl = control("smuggle", "1.0", "amd64").replace(
        " Really nothing.\n",
        " Really nothing.\n\nPackage: evil\nVersion: 9\n",
    );
    expect_rejected(
        "blank.deb",
        &deb_with_control(&ctl),
        "more than one paragraph",
    );
}

#[test]
fn stanza_smuggled_through_whitespace_line() {
    let ctl = control("smuggle", "1.0", "amd64").replace(
        " Really nothing.\n",
        " Really nothing.\n \t\nPackage: evil\n",
    );
    expect_rejected("ws.deb", &deb_with_control(&ctl), "whitespace-only line");
}

#[test]
fn bare_carriage_return() {
    let ctl = control("cr", "1.0", "amd64").replace("It does nothing.", "It does\rPackage: evil");
    expect_rejected(
        "cr.deb",
        &deb_with_control(&ctl),
        "control character U+000D",
    );
}

#[test]
fn archive_managed_fields() {
    for field in [
        "Filename: pool/evil.deb",
        "Size: 12",
        "MD5sum: 0",
        "SHA256: 00",
    ] {
        let ctl = format!("{}{field}\n", control("managed", "1.0", "amd64"));
        let name = field.split(':').next().expect("name");
        expect_rejected(
            "managed.deb",
            &deb_with_control(&ctl),
            &format!("archive-managed field {name}"),
        );
    }
}

#[test]
fn bad_names_versions_architectures() {
    for (pkg, ver, arch, want) in [
        ("evil/pkg", "1.0", "amd64", "invalid package name"),
        ("evil..pkg", "1.0", "amd64", "invalid package name"),
        ("Evil", "1.0", "amd64", "invalid package name"),
        ("evil", "1.0/../../x", "amd64", "invalid version"),
        ("evil", "1..0", "amd64", "invalid version"),
        ("evil", "1.0A/B", "amd64", "invalid version"),
        ("evil", "1.0", "amd64/../x", "invalid architecture"),
        ("evil", "1.0", "..", "invalid architecture"),
        ("evil", "1.0", "AMD64", "invalid architecture"),
    ] {
        expect_rejected(
            "names.deb",
            &deb_with_control(&control(pkg, ver, arch)),
            want,
        );
    }
    let ctl =
        control("evil", "1.0", "amd64").replace("Package: evil\n", "Package: evil\nSource: ../x\n");
    expect_rejected(
        "source.deb",
        &deb_with_control(&ctl),
        "invalid source package name",
    );
}

#[test]
fn control_as_symlink() {
    let ctl = tar(&[Entry::Symlink("./control", "/etc/passwd")]);
    expect_rejected(
        "link.deb",
        &handmade_deb(&ctl, &data_tar()),
        "not a regular file",
    );
    let ctl = tar(&[
        Entry::File("./md5sums", b""),
        Entry::Hardlink("./control", "./md5sums"),
    ]);
    expect_rejected(
        "hard.deb",
        &handmade_deb(&ctl, &data_tar()),
        "not a regular file",
    );
}

#[test]
fn tar_entries_that_climb_out() {
    let ctl_text = control("climb", "1.0", "amd64");
    let ctl = tar(&[
        Entry::RawFile("../../etc/cron.d/evil", b"* * * * * root sh\n"),
        Entry::File("./control", ctl_text.as_bytes()),
    ]);
    expect_rejected(
        "climb-ctl.deb",
        &handmade_deb(&ctl, &data_tar()),
        "climbs out",
    );
    let ctl = tar(&[Entry::File("./control", ctl_text.as_bytes())]);
    let data = tar(&[Entry::RawFile(
        "./usr/../../etc/passwd",
        b"root::0:0::/:/bin/sh\n",
    )]);
    expect_rejected("climb-data.deb", &handmade_deb(&ctl, &data), "climbs out");
    let data = tar(&[Entry::RawFile("/etc/passwd", b"x\n")]);
    expect_rejected("abs-data.deb", &handmade_deb(&ctl, &data), "absolute path");
}

#[test]
fn corrupt_data_member() {
    let deb = dpkg_built("corrupt", "xz");
    // Flip a byte in the middle of data.tar.xz: xz's own checks must catch it.
    let mut bytes = fs::read(&deb).expect("read");
    let at = bytes.len() - 60;
    bytes[at] ^= 0x55;
    expect_rejected("corrupt.deb", &bytes, "data.tar.xz");
}

fn dpkg_built(name: &str, compression: &str) -> std::path::PathBuf {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    dpkg_deb(
        &dir.join(format!("{name}.deb")),
        &control(name, "1.0", "amd64"),
        compression,
    )
}

/// A source package built with dpkg-source, in a fresh folder.
fn source_folder() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let dsc = dpkg_source(dir.path(), "hostile-src", "2.0", "1");
    let name = dsc
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    (dir, name)
}

#[test]
fn dsc_with_one_wrong_checksum_list() {
    let (dir, dsc) = source_folder();
    let path = dir.path().join(&dsc);
    let text = fs::read_to_string(&path).expect("read");
    // Corrupt the SHA-1 of the orig tarball only.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let i = lines
        .iter()
        .position(|l| l == "Checksums-Sha1:")
        .expect("Checksums-Sha1");
    let line = &mut lines[i + 1];
    let replacement = if line.starts_with(" 0") { " 1" } else { " 0" };
    line.replace_range(0..2, replacement);
    fs::write(&path, lines.join("\n") + "\n").expect("write");
    expect_folder_rejects(dir.path(), &dsc, "SHA1");
}

#[test]
fn tampered_listed_file() {
    let (dir, dsc) = source_folder();
    let orig = dir.path().join("hostile-src_2.0.orig.tar.gz");
    let mut bytes = fs::read(&orig).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1; // same size, different bytes
    fs::write(&orig, bytes).expect("write");
    expect_folder_rejects(dir.path(), &dsc, "hostile-src_2.0.orig.tar.gz has MD5");
    expect_folder_rejects(dir.path(), "hostile-src_2.0.orig.tar.gz", "does not match");
}

#[test]
fn listed_file_with_wrong_size() {
    let (dir, dsc) = source_folder();
    let orig = dir.path().join("hostile-src_2.0.orig.tar.gz");
    let mut bytes = fs::read(&orig).expect("read");
    bytes.push(0);
    fs::write(&orig, bytes).expect("write");
    expect_folder_rejects(dir.path(), &dsc, "bytes,");
}

#[test]
fn missing_listed_file() {
    // Not rejected, as upload would not: the .dsc waits for the file.
    let (dir, dsc) = source_folder();
    fs::remove_file(dir.path().join("hostile-src_2.0.orig.tar.gz")).expect("rm");
    let (status, stdout) = check(dir.path());
    assert_eq!(status, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("pending: {dsc}: waiting for hostile-src_2.0.orig.tar.gz: upload it into the same folder")),
        "{stdout}"
    );
}

#[test]
fn listed_file_name_with_a_slash() {
    let (dir, dsc) = source_folder();
    let path = dir.path().join(&dsc);
    let text = fs::read_to_string(&path).expect("read");
    fs::write(
        &path,
        text.replace(
            " hostile-src_2.0.orig.tar.gz",
            " ../hostile-src_2.0.orig.tar.gz",
        ),
    )
    .expect("write");
    expect_folder_rejects(dir.path(), &dsc, "not a plain file name");
}

#[test]
fn same_package_version_architecture_with_different_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctl = control("twin", "1.0", "amd64");
    fs::write(dir.path().join("a-twin.deb"), deb_with_control(&ctl)).expect("write");
    let other = ctl.replace("It does nothing.", "It does something else.");
    fs::write(dir.path().join("b-twin.deb"), deb_with_control(&other)).expect("write");
    expect_folder_rejects(dir.path(), "b-twin.deb", "with different contents");
}

#[test]
fn two_versions_in_one_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, v) in [("a.deb", "1.0"), ("b.deb", "1.0"), ("c.deb", "2.0")] {
        let ctl = control("twover", v, "amd64").replace(
            "Package: twover\n",
            &format!("Package: twover-{}\nSource: twover\n", &name[..1]),
        );
        fs::write(dir.path().join(name), deb_with_control(&ctl)).expect("write");
    }
    expect_folder_rejects(
        dir.path(),
        "c.deb",
        "but this folder's bundle is twover 1.0",
    );
}

#[test]
fn a_file_named_like_raptrs_own_records() {
    expect_rejected("manifest.json", b"{}", "keeps for its own records");
}
