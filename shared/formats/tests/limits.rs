//! Every documented limit at its boundary: the largest input accepted, the
//! smallest refused, with a reason that names the limit.

#![allow(clippy::unwrap_used)]

use raptr_formats::checksums::MAX_LISTED_FILES;
use raptr_formats::dsc::Dsc;
use raptr_formats::policy::{valid_file_name, valid_package_name, MAX_PACKAGE_NAME};
use raptr_formats::version::{Version, MAX_VERSION};

#[test]
fn package_names_up_to_the_limit() {
    assert!(valid_package_name(&"a".repeat(MAX_PACKAGE_NAME)));
    assert!(!valid_package_name(&"a".repeat(MAX_PACKAGE_NAME + 1)));
}

#[test]
fn versions_up_to_the_limit() {
    let longest = format!("1:{}-1", "9".repeat(MAX_VERSION - 4));
    assert_eq!(longest.len(), MAX_VERSION);
    assert!(Version::parse(&longest).is_ok());
    let over = format!("1:{}-1", "9".repeat(MAX_VERSION - 3));
    let e = Version::parse(&over).unwrap_err().to_string();
    assert!(e.contains(&MAX_VERSION.to_string()), "{e}");
}

#[test]
fn file_names_up_to_255_bytes() {
    assert!(valid_file_name(&format!("{}.deb", "a".repeat(251))));
    assert!(!valid_file_name(&format!("{}.deb", "a".repeat(252))));
}

/// A `.dsc` listing `n` files (all three lists, consistent).
fn dsc_listing(n: usize) -> Vec<u8> {
    let mut sha1 = String::new();
    let mut sha256 = String::new();
    let mut files = String::new();
    for i in 0..n {
        let name = format!("hello_1.0.part{i:05}.tar.gz");
        sha1.push_str(&format!(" {} 1 {name}\n", "1".repeat(40)));
        sha256.push_str(&format!(" {} 1 {name}\n", "2".repeat(64)));
        files.push_str(&format!(" {} 1 {name}\n", "3".repeat(32)));
    }
    format!(
        "Format: 3.0 (quilt)\nSource: hello\nBinary: hello\nArchitecture: any\nVersion: 1.0-1\nMaintainer: M <m@example.com>\nChecksums-Sha1:\n{sha1}Checksums-Sha256:\n{sha256}Files:\n{files}"
    )
    .into_bytes()
}

#[test]
fn a_dsc_lists_up_to_the_limit() {
    let dsc = Dsc::parse(&dsc_listing(MAX_LISTED_FILES)).unwrap();
    assert_eq!(dsc.files.len(), MAX_LISTED_FILES);
    let e = Dsc::parse(&dsc_listing(MAX_LISTED_FILES + 1)).unwrap_err();
    assert!(
        e.contains(&format!("more than {MAX_LISTED_FILES} files")),
        "{e}"
    );
}
