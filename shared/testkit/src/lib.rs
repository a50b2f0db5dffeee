//! Test packages built in memory: `.deb`s (well-formed, and hand-assembled
//! ones dpkg-deb would refuse to build), source packages with their `.dsc`,
//! and `.changes` files. Only tests and benchmarks use this crate.

#![allow(clippy::unwrap_used)]

pub mod apt;
pub mod faults;
pub mod gnupg;
pub mod upstream;

use std::io::Write;

use raptr_formats::hash::Digests;

pub const CONTROL: &str = "Package: PKG\nVersion: VER\nArchitecture: ARCH\nMaintainer: raptr tests <tests@example.com>\nInstalled-Size: 4\nSection: utils\nPriority: optional\nDepends: libc6 (>= 2.36)\nDescription: a test package\n It does nothing.\n .\n Really nothing.\nX-Raptr-Test: yes\n";

/// The control file of a test package.
pub fn control(package: &str, version: &str, arch: &str) -> String {
    CONTROL
        .replace("PKG", package)
        .replace("VER", version)
        .replace("ARCH", arch)
}

/// A tar archive (uncompressed) from (path, kind, data) entries.
#[derive(Debug)]
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
                b.append_data(&mut h, path, *data).unwrap();
            }
            Entry::RawFile(path, data) => {
                h.set_size(data.len() as u64);
                h.set_entry_type(tar::EntryType::Regular);
                let name = &mut h.as_old_mut().name;
                name[..path.len()].copy_from_slice(path.as_bytes());
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            Entry::Symlink(path, target) | Entry::Hardlink(path, target) => {
                h.set_size(0);
                h.set_entry_type(if matches!(e, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                b.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An ar archive from (member name, data) pairs.
pub fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = ar::Builder::new(Vec::new());
    for (name, data) in members {
        let h = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
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

/// A valid .deb of `package` at `version` for `arch`, built from source
/// `source` (`None`: its own name and version). `salt` goes into the data so
/// that two builds can differ in bytes only.
pub fn deb(package: &str, version: &str, arch: &str, source: Option<&str>, salt: &str) -> Vec<u8> {
    let mut c = control(package, version, arch);
    if let Some(s) = source {
        c.push_str(&format!("Source: {s}\n"));
    }
    let data = tar(&[Entry::File(
        "./usr/share/doc/x/README",
        format!("hello {salt}\n").as_bytes(),
    )]);
    handmade_deb(&tar(&[Entry::File("./control", c.as_bytes())]), &data)
}

/// The Debian file name of a .deb (the version without its epoch).
pub fn deb_name(package: &str, version: &str, arch: &str) -> String {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    format!("{package}_{v}_{arch}.deb")
}

/// A named file of a bundle.
pub type File = (String, Vec<u8>);

fn listing(files: &[&File], columns: &dyn Fn(&Digests, &str) -> String) -> String {
    files
        .iter()
        .map(|(name, bytes)| format!("\n {}", columns(&Digests::of(bytes), name)))
        .collect()
}

/// A source package: its `.dsc` first, then an orig tarball and a debian
/// tarball, all for `source` at `version` (format 3.0 (quilt)).
pub fn source_package(source: &str, version: &str, binaries: &[&str]) -> Vec<File> {
    let bare = version.split_once(':').map_or(version, |(_, v)| v);
    let upstream = bare.rsplit_once('-').map_or(bare, |(u, _)| u);
    let orig = (
        format!("{source}_{upstream}.orig.tar.gz"),
        gzip(&tar(&[Entry::File(
            &format!("{source}-{upstream}/README"),
            format!("{source} {upstream}\n").as_bytes(),
        )])),
    );
    let debian = (
        format!("{source}_{bare}.debian.tar.gz"),
        gzip(&tar(&[Entry::File(
            "debian/changelog",
            format!("{source} ({version}) unstable; urgency=low\n").as_bytes(),
        )])),
    );
    let listed = [&orig, &debian];
    let dsc = format!(
        "Format: 3.0 (quilt)\nSource: {source}\nBinary: {}\nArchitecture: any\nVersion: {version}\nMaintainer: raptr tests <tests@example.com>\nStandards-Version: 4.6.2\nChecksums-Sha1:{}\nChecksums-Sha256:{}\nFiles:{}\n",
        binaries.join(", "),
        listing(&listed, &|d, n| format!("{} {} {n}", d.sha1, d.size)),
        listing(&listed, &|d, n| format!("{} {} {n}", d.sha256, d.size)),
        listing(&listed, &|d, n| format!("{} {} {n}", d.md5, d.size)),
    );
    vec![
        (format!("{source}_{bare}.dsc"), dsc.into_bytes()),
        orig,
        debian,
    ]
}

/// A `.changes` listing `files`, for `source` at `version`.
pub fn changes(source: &str, version: &str, distribution: &str, files: &[File]) -> File {
    let bare = version.split_once(':').map_or(version, |(_, v)| v);
    let listed: Vec<&File> = files.iter().collect();
    let text = format!(
        "Format: 1.8\nDate: Sat, 21 Nov 2026 00:00:00 +0000\nSource: {source}\nBinary: {source}\nArchitecture: source amd64\nVersion: {version}\nDistribution: {distribution}\nMaintainer: raptr tests <tests@example.com>\nChanges:\n {source} ({version}) {distribution}; urgency=low\nChecksums-Sha1:{}\nChecksums-Sha256:{}\nFiles:{}\n",
        listing(&listed, &|d, n| format!("{} {} {n}", d.sha1, d.size)),
        listing(&listed, &|d, n| format!("{} {} {n}", d.sha256, d.size)),
        listing(&listed, &|d, n| format!("{} {} utils optional {n}", d.md5, d.size)),
    );
    (format!("{source}_{bare}_amd64.changes"), text.into_bytes())
}

/// Hostile uploads, each with a fragment of the reason it must be rejected
/// for: broken archives, smuggled stanzas, archive-managed fields, paths that
/// climb out, a decompression bomb, and a source package with a tampered
/// tarball (all of whose files must be refused together).
pub fn hostile() -> Vec<(String, Vec<u8>, &'static str)> {
    let good = deb_with_control(&control("hostile", "1.0-1", "amd64"));
    let ctl = |text: &str| tar(&[Entry::File("./control", text.as_bytes())]);
    let base = control("hostile", "1.0-1", "amd64");
    let bomb = gzip(&tar(&[
        Entry::File("./zeros", &vec![0u8; 80 << 20]),
        Entry::File("./control", base.as_bytes()),
    ]));
    let mut out = vec![
        (
            "cut.deb".to_string(),
            good[..good.len() - 40].to_vec(),
            "truncated",
        ),
        (
            "text.deb".into(),
            b"#!/bin/sh\necho no package\n".to_vec(),
            "not a valid ar archive",
        ),
        (
            "order.deb".into(),
            ar(&[
                ("debian-binary", b"2.0\n"),
                ("data.tar.gz", &gzip(&data_tar())),
                ("control.tar.gz", &gzip(&ctl(&base))),
            ]),
            "control.tar",
        ),
        (
            "bomb.deb".into(),
            ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", &bomb),
                ("data.tar.gz", &gzip(&data_tar())),
            ]),
            "decompresses to more than",
        ),
        (
            "smuggle.deb".into(),
            deb_with_control(&base.replace(
                "Description",
                "X-A: b\n\nPackage: evil\nVersion: 9\nArchitecture: amd64\nDescription",
            )),
            "blank",
        ),
        (
            "managed.deb".into(),
            deb_with_control(&format!("{base}Filename: pool/main/e/evil/evil.deb\n")),
            "Filename",
        ),
        (
            "badname.deb".into(),
            deb_with_control(&base.replace("Package: hostile", "Package: ../evil")),
            "package name",
        ),
        (
            "symlink.deb".into(),
            handmade_deb(
                &tar(&[Entry::Symlink("./control", "/etc/passwd")]),
                &data_tar(),
            ),
            "control",
        ),
        (
            "climb.deb".into(),
            handmade_deb(
                &ctl(&base),
                &tar(&[Entry::RawFile(
                    "./usr/../../etc/passwd",
                    b"root::0:0::/:/bin/sh\n",
                )]),
            ),
            "climbs out",
        ),
    ];
    let mut src = source_package("tampered", "1.0-1", &["tampered"]);
    src[1].1.extend_from_slice(b"tampered");
    for (name, bytes) in src {
        let why = if name.ends_with(".orig.tar.gz") {
            "does not match"
        } else {
            "tampered"
        };
        out.push((name, bytes, why));
    }
    out
}

/// Shuffles in place with a small deterministic generator (xorshift), so
/// that a failing order reproduces from its seed.
pub fn shuffle<T>(items: &mut [T], mut seed: u64) {
    seed |= 1;
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// A tar header block of any type and declared size, with a valid checksum:
/// for archives whose headers claim what their data does not hold.
pub fn tar_header(path: &str, kind: u8, size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::new(kind));
    h.set_size(size);
    let name = &mut h.as_old_mut().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// `data` padded with zeros to whole 512-byte tar blocks.
pub fn tar_blocks(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

/// A tar entry whose data is `data`, under a header of type `kind`.
pub fn tar_entry(path: &str, kind: u8, data: &[u8]) -> Vec<u8> {
    let mut v = tar_header(path, kind, data.len() as u64);
    v.extend(tar_blocks(data));
    v
}

/// One POSIX extended-header record, `LEN KEY=VALUE\n`, its length counted.
pub fn pax_record(key: &str, value: &str) -> String {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n")
}

/// An ar member header, written raw: any name, any declared size.
pub fn ar_header(name: &str, size: u64) -> Vec<u8> {
    let h = format!(
        "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
        0, 0, 0, 100644
    );
    assert_eq!(h.len(), 60, "an ar header is 60 bytes: {name:?} {size}");
    h.into_bytes()
}
