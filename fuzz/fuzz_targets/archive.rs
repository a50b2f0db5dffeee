#![no_main]
//! Another archive's files as an import reads them: a Release (its SHA256
//! list, with paths kept inside the archive) and the stanzas of a Packages
//! or Sources index, and the dependency relations of its packages.

use libfuzzer_sys::fuzz_target;
use raptr_formats::archive;
use raptr_formats::control::{Mode, Paragraphs};

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(r) = archive::parse_release(text) {
            assert!(r.files.keys().all(|p| archive::safe_path(p)));
            assert!(r.files.len() <= archive::MAX_RELEASE_FILES);
        }
    }
    for p in Paragraphs::new(std::io::BufReader::new(data), Mode::Lenient).take(1000) {
        let Ok(p) = p else { break };
        if let Ok(b) = archive::binary_entry(&p) {
            assert!(archive::safe_path(&b.filename));
            // The relations dependency resolution reads.
            for group in b.depends.iter().chain(&b.provides) {
                for a in archive::alternatives(group) {
                    assert!(!a.name.is_empty());
                }
            }
        }
        if let Ok(s) = archive::source_entry(&p) {
            assert!(s.directory.is_empty() || archive::safe_path(&s.directory));
        }
    }
});
