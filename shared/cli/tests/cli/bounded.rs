//! Inputs that declare lengths they do not have, or lengths far past the
//! limits: each must be refused from the declaration, with a short reason,
//! by a `raptr check` running under a 256 MB address-space limit
//! ([`crate::fixtures::check`]), so that an allocation on the input's word
//! would abort it instead of passing.

use std::fs;
use std::io::Write;

use crate::fixtures::*;
use raptr_testkit::{ar_header, pax_record, tar_blocks, tar_entry, tar_header};

const MB: u64 = 1 << 20;

/// Writes `head` as `name`, grown with zeros to `size` bytes (a sparse file,
/// so hundreds of MB cost no disk), checks it, and expects a rejection whose
/// reason contains `want` and fits on a line.
fn expect_refused(name: &str, head: &[u8], size: u64, want: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    let mut f = fs::File::create(&path).expect("create");
    f.write_all(head).expect("write");
    f.set_len(size.max(head.len() as u64)).expect("grow");
    drop(f);
    crate::hostile::expect_folder_rejects(dir.path(), name, want);
}

fn magic() -> Vec<u8> {
    b"!<arch>\n".to_vec()
}

#[test]
fn gnu_long_name_reference_without_a_name_table() {
    // The 68-byte input that made the ar crate panic.
    let mut deb = magic();
    deb.extend(ar_header("/0180000", 0));
    assert_eq!(deb.len(), 68);
    expect_refused("ref.deb", &deb, 0, "GNU long-name");
}

#[test]
fn bsd_long_names_of_any_declared_or_real_length() {
    for (declared, real) in [(5_555_555_555u64, 0u64), (300 * MB, 300 * MB), (17, 100)] {
        let mut deb = magic();
        deb.extend(ar_header(
            &format!("#1/{declared}"),
            declared.min(9_999_999_999),
        ));
        let size = deb.len() as u64 + real;
        expect_refused("bsd.deb", &deb, size, "BSD long-name");
    }
}

#[test]
fn gnu_name_tables_small_and_huge() {
    for size in [16, 200 * MB] {
        let mut deb = magic();
        deb.extend(ar_header("//", size));
        expect_refused("table.deb", &deb, deb.len() as u64 + size, "GNU long-name");
    }
}

#[test]
fn member_sizes_past_the_object() {
    let mut deb = magic();
    deb.extend(ar_header("debian-binary", 9_999_999_999));
    deb.extend(b"2.0\n");
    expect_refused("huge-bin.deb", &deb, 0, "debian-binary is 9999999999 bytes");
    let mut deb = magic();
    deb.extend(ar_header("debian-binary", 4));
    deb.extend(b"2.0\n");
    deb.extend(ar_header("control.tar", 9_999_999_999));
    deb.extend(tar_entry(
        "./control",
        b'0',
        control("x", "1", "amd64").as_bytes(),
    ));
    expect_refused("huge-ctl.deb", &deb, 0, "truncated");
}

/// A .deb around an uncompressed `control.tar` and a gzip `data.tar`.
fn deb_with(control_tar: &[u8], data_tar: &[u8]) -> Vec<u8> {
    ar(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar", control_tar),
        ("data.tar.gz", &gzip(data_tar)),
    ])
}

fn control_entry() -> Vec<u8> {
    tar_entry(
        "./control",
        b'0',
        control("bounded", "1.0", "amd64").as_bytes(),
    )
}

fn end_blocks(mut t: Vec<u8>) -> Vec<u8> {
    t.extend([0u8; 1024]);
    t
}

#[test]
fn tar_long_names_declared_past_the_limit() {
    for (kind, what) in [(b'L', "long name"), (b'K', "long link name")] {
        let mut ctl = tar_header("././@LongLink", kind, 5_555_555_555);
        ctl.extend(control_entry());
        let deb = deb_with(&ctl, &raptr_testkit::data_tar());
        expect_refused("longname.deb", &deb, 0, what);
    }
}

#[test]
fn tar_long_names_at_and_over_the_limit() {
    // 4096 bytes with its NUL is the largest long name taken.
    for (len, accepted) in [(4095usize, true), (4096, false)] {
        let mut name = format!("./usr/share/doc/{}", "n".repeat(len - 16)).into_bytes();
        name.push(0);
        let mut data = tar_entry("././@LongLink", b'L', &name);
        data.extend(tar_entry("x", b'0', b"hello\n"));
        let deb = deb_with(&end_blocks(control_entry()), &end_blocks(data));
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("n.deb"), &deb).expect("write");
        let (status, stdout) = check(dir.path());
        if accepted {
            assert_eq!(status, Some(0), "{len}: {stdout}");
        } else {
            assert_eq!(status, Some(1), "{len}: {stdout}");
            assert!(stdout.contains("long name of 4097 bytes"), "{stdout}");
        }
    }
}

/// One `comment` record of exactly `len` bytes.
fn pax_body(len: usize) -> String {
    (len.saturating_sub(30)..len)
        .map(|v| pax_record("comment", &"c".repeat(v)))
        .find(|r| r.len() == len)
        .expect("a record of that length")
}

#[test]
fn pax_headers_declared_huge_or_just_over() {
    // Declared: 1 GB in control.tar, from the header alone.
    let mut ctl = tar_header("./PaxHeaders/x", b'x', 1 << 30);
    ctl.extend(control_entry());
    expect_refused(
        "pax-declared.deb",
        &deb_with(&ctl, &raptr_testkit::data_tar()),
        0,
        "extended header of 1073741824 bytes",
    );
    // Real: 64 KiB is taken, one byte more is not; 100 MB compressed to a
    // few hundred KB in data.tar is refused before it is read.
    for (len, accepted) in [
        (64usize << 10, true),
        ((64 << 10) + 1, false),
        (100 << 20, false),
    ] {
        let pax = pax_body(len);
        let mut data = tar_header("./PaxHeaders/x", b'x', pax.len() as u64);
        data.extend(tar_blocks(pax.as_bytes()));
        data.extend(tar_entry("./usr/share/doc/x/README", b'0', b"hi\n"));
        let deb = deb_with(&end_blocks(control_entry()), &end_blocks(data));
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("p.deb"), &deb).expect("write");
        let (status, stdout) = check(dir.path());
        assert_eq!(
            status,
            Some(if accepted { 0 } else { 1 }),
            "{len}: {stdout}"
        );
        if !accepted {
            assert!(stdout.contains("extended header of"), "{stdout}");
        }
    }
}

#[test]
fn control_entries_declaring_more_than_they_hold() {
    // ./control claiming 5 GB: refused on its declared size.
    let mut ctl = tar_header("./control", b'0', 5_000_000_000);
    ctl.extend(b"Package: x\n");
    expect_refused(
        "ctl-size.deb",
        &deb_with(&ctl, &raptr_testkit::data_tar()),
        0,
        "./control is 5000000000 bytes",
    );
    // Another entry claiming 50 GB: skipped until the data runs out.
    let mut ctl = tar_header("./md5sums", b'0', 50_000_000_000);
    ctl.extend(control_entry());
    expect_refused(
        "skip-size.deb",
        &deb_with(&ctl, &raptr_testkit::data_tar()),
        0,
        "control.tar",
    );
}

#[test]
fn fuzz_regressions_under_the_memory_limit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions");
    let mut seen = 0;
    for (target, ext) in [("deb", "deb"), ("dsc", "dsc"), ("changes", "changes")] {
        let Ok(entries) = fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("entry").path();
            let dir = tempfile::tempdir().expect("tempdir");
            fs::copy(&path, dir.path().join(format!("input.{ext}"))).expect("copy");
            let (status, stdout) = check(dir.path());
            assert!(
                matches!(status, Some(0 | 1)),
                "{}: exit {status:?}: {stdout}",
                path.display()
            );
            assert!(
                stdout.lines().all(|l| l.len() < 1200),
                "{}: a long line in {stdout}",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(seen >= 5, "the committed regression inputs were found");
}
