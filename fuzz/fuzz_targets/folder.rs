#![no_main]
//! Folder progress records as read back from the bucket, and what ingest
//! does with one: restore every file's validation result and apply the
//! bundle rules.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use raptr_core::config::{Config, Distribution};
use raptr_core::folder::Folder;
use raptr_core::ingest::decide;

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    static DIST: OnceLock<Distribution> = OnceLock::new();
    let dist = DIST.get_or_init(|| {
        let config = Config::default_local("fuzz");
        config.primary_layout().distributions["testing"].clone()
    });
    let Ok(mut folder) = Folder::from_json(data) else {
        return;
    };
    decide(&mut folder, dist);
});
