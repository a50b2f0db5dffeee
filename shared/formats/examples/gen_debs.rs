//! Writes N small, valid `.deb`s (gzip members, as dpkg-deb makes them) at
//! their pool keys under DIR, for the scan benchmark.
//!
//! Usage: cargo run --release -p raptr-formats --example gen_debs -- DIR N

use std::fs;
use std::io::Write;
use std::path::Path;

fn tar_with(path: &str, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, path, data)?;
    b.into_inner()
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data)?;
    e.finish()
}

fn deb(name: &str, version: &str, i: usize) -> std::io::Result<Vec<u8>> {
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: raptr bench <bench@example.com>\nInstalled-Size: 12\nDepends: libc6 (>= 2.36), bench-common\nSection: misc\nPriority: optional\nHomepage: https://example.com/{name}\nDescription: benchmark package number {i}\n Generated for raptr's scan benchmark.\n"
    );
    let ctl = gzip(&tar_with("./control", control.as_bytes())?)?;
    let payload = format!("package {i}\n").repeat(50);
    let data = gzip(&tar_with(
        &format!("./usr/share/doc/{name}/README"),
        payload.as_bytes(),
    )?)?;
    let mut b = ar::Builder::new(Vec::new());
    for (member, bytes) in [
        ("debian-binary", &b"2.0\n"[..]),
        ("control.tar.gz", &ctl),
        ("data.tar.gz", &data),
    ] {
        b.append(
            &ar::Header::new(member.as_bytes().to_vec(), bytes.len() as u64),
            bytes,
        )?;
    }
    b.into_inner()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(n)) = (args.next(), args.next()) else {
        return Err("usage: gen_debs DIR N".into());
    };
    let n: usize = n
        .parse()
        .map_err(|_| format!("N must be a number, not {n:?}"))?;
    for i in 0..n {
        let name = format!("bench-pkg{i:06}");
        let version = format!("1.{}-1", i % 7);
        let key = format!(
            "pool/main/{}/{name}/{version}/{name}_{version}_amd64.deb",
            raptr_formats::layout::pool_prefix(&name)
        );
        let path = Path::new(&dir).join(key);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, deb(&name, &version, i)?)?;
    }
    println!("wrote {n} packages under {dir}/pool");
    Ok(())
}
