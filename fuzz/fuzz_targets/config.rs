#![no_main]
//! Configuration documents: parsing and the strict validation.

use libfuzzer_sys::fuzz_target;
use raptr_core::config::Config;

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    if let Err(e) = Config::from_json(data, "config/raptr.json") {
        let reason = e.to_string();
        assert!(reason.len() < 2000, "a reason of {} bytes", reason.len());
    }
});
