#![no_main]
//! Upload keys (`incoming/<dist>/<component>/<upload-id>/<file>`) and the
//! keys raptr derives from them.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use raptr_core::config::Config;
use raptr_core::keys::{rejected_key, report_key, UploadKey};

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    let config = CONFIG.get_or_init(|| Config::default_local("fuzz"));
    let Ok(key) = std::str::from_utf8(data) else {
        return;
    };
    match UploadKey::parse(key, config) {
        Ok((uk, _)) => {
            assert_eq!(uk.key(), key, "a parsed key rebuilds to itself");
            let _ = (uk.folder_report_key(), report_key(key), rejected_key(key));
        }
        Err(reason) => assert!(reason.len() < 4000, "a reason of {} bytes", reason.len()),
    }
});
