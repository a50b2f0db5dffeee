#![no_main]
//! Request documents (`requests/…json`) against the default layout.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use raptr_core::config::Config;
use raptr_core::request::Request;

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    let config = CONFIG.get_or_init(|| Config::default_local("fuzz"));
    if let Err(reason) = Request::parse(data, config) {
        assert!(reason.len() < 2000, "a reason of {} bytes", reason.len());
    }
});
