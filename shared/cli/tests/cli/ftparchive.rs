//! `raptr scan` against `apt-ftparchive`: the same files laid out at their pool
//! keys must give the same stanzas, field by field and in the same order.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use crate::fixtures::*;

/// Stanzas as (identity, ordered fields), from deb822 text.
fn stanzas(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    for block in text.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in block.lines() {
            if line.starts_with(' ') {
                let last = fields.last_mut().expect("continuation after a field");
                last.1.push('\n');
                last.1.push_str(line);
            } else {
                let (k, v) = line.split_once(':').expect("field");
                fields.push((k.to_string(), v.trim().to_string()));
            }
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let id = format!(
            "{} {} {}",
            get("Package"),
            get("Version"),
            get("Architecture")
        );
        assert!(
            out.insert(id.clone(), fields).is_none(),
            "duplicate stanza {id}"
        );
    }
    out
}

/// Reads Package, Version, Architecture and Source with dpkg-deb (an
/// independent reader) and returns the pool key the design prescribes.
fn pool_key(deb: &Path, component: &str) -> String {
    let out = run(Command::new("dpkg-deb").arg("-f").arg(deb).args([
        "Package",
        "Version",
        "Architecture",
        "Source",
    ]));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut f = BTreeMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(": ") {
            f.insert(k.to_string(), v.to_string());
        }
    }
    let strip_epoch = |v: &str| {
        v.split_once(':')
            .map_or(v.to_string(), |(_, r)| r.to_string())
    };
    let version = strip_epoch(&f["Version"]);
    let (source, source_version) = match f.get("Source") {
        None => (f["Package"].clone(), version.clone()),
        Some(s) => match s.split_once(" (") {
            Some((n, v)) => (n.to_string(), strip_epoch(v.trim_end_matches(')'))),
            None => (s.clone(), version.clone()),
        },
    };
    let prefix = if source.starts_with("lib") && source.len() > 3 {
        &source[..4]
    } else {
        &source[..1]
    };
    format!(
        "pool/{component}/{prefix}/{source}/{source_version}/{}_{version}_{}.deb",
        f["Package"], f["Architecture"]
    )
}

fn compare(root: &Path, kind: &str) {
    let ftp = run(Command::new("apt-ftparchive")
        .current_dir(root)
        .arg(kind)
        .arg("pool"));
    let ours = raptr(&["scan", root.join("pool").to_str().expect("utf-8")]);
    assert_eq!(
        ours.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ours.stderr)
    );
    let want = stanzas(&String::from_utf8_lossy(&ftp.stdout));
    let got = stanzas(&String::from_utf8_lossy(&ours.stdout));
    assert!(!want.is_empty(), "apt-ftparchive found nothing");
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "same stanzas"
    );
    for (id, fields) in &want {
        let mine = &got[id];
        for (name, value) in fields {
            let theirs = mine.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            assert_eq!(theirs, Some(value), "{id}: field {name}");
        }
        let order =
            |f: &Vec<(String, String)>| f.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(order(mine), order(fields), "{id}: field order");
    }
}

fn place(root: &Path, deb: &Path) {
    let key = root.join(pool_key(deb, "main"));
    fs::create_dir_all(key.parent().expect("parent")).expect("mkdir");
    fs::copy(deb, key).expect("copy");
}

#[test]
fn packages_match_apt_ftparchive_for_built_and_real_debs() {
    let root = tempfile::tempdir().expect("tempdir");
    let build = tempfile::tempdir().expect("tempdir");
    for (c, pkg, ver, arch) in [
        ("none", "plain", "1.0", "amd64"),
        ("gzip", "g++-raptr", "2:3.1~beta+dfsg-0.1", "arm64"),
        ("xz", "python3.99-raptr", "0.1-1", "all"),
        ("zstd", "libz-raptr1", "1.2.3-4+b1", "i386"),
    ] {
        let ctl = control(pkg, ver, arch);
        let ctl = if pkg.starts_with("libz") {
            ctl.replace("Package: ", "Source: libz-raptr (1.2.3-4)\nPackage: ")
        } else {
            ctl
        };
        let deb = dpkg_deb(&build.path().join(format!("{pkg}.deb")), &ctl, c);
        place(root.path(), &deb);
    }
    for entry in fs::read_dir(real_fixtures("real")).expect("fixtures") {
        place(root.path(), &entry.expect("entry").path());
    }
    compare(root.path(), "packages");
}

#[test]
fn sources_match_apt_ftparchive_for_built_and_real_sources() {
    let root = tempfile::tempdir().expect("tempdir");
    let built = root.path().join("pool/main/r/raptr-src/1.5-2");
    fs::create_dir_all(&built).expect("mkdir");
    dpkg_source(&built, "raptr-src", "1.5", "2");
    let real = root.path().join("pool/main/z/zlib/1.2.13.dfsg-1");
    fs::create_dir_all(&real).expect("mkdir");
    for entry in fs::read_dir(real_fixtures("source")).expect("fixtures") {
        let path = entry.expect("entry").path();
        fs::copy(&path, real.join(path.file_name().expect("name"))).expect("copy");
    }
    compare(root.path(), "sources");
}
