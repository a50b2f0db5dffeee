#![no_main]
//! Manifests as read back from the bucket, and what the publisher does with
//! one: render every file's Packages or Sources stanza.

use libfuzzer_sys::fuzz_target;
use raptr_core::manifest::Manifest;
use raptr_core::publish::index::render_stanza;

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Manifest::from_json(data) else {
        return;
    };
    for name in m.files.keys() {
        let _ = render_stanza("pool/main/f/fuzz/1.0", name, &m);
    }
});
