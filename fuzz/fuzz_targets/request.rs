#![no_main]
//! Request documents (`requests/…json`) against the default layout.

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use raptr_core::config::Config;
use raptr_core::request::{key_for, Place, Request};

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    let config = CONFIG.get_or_init(|| Config::default_local("fuzz"));
    match Request::parse(data, config) {
        Err(reason) => assert!(reason.len() < 2000, "a reason of {} bytes", reason.len()),
        // A request that parses has a place, and its key names that place
        // and agrees with the body.
        Ok(checked) => {
            let key = key_for(data, "r.json").expect("a checked request has a place");
            let place = Place::of_key(&key).expect("the place's own key");
            assert_eq!(place.disagreement(&checked.request), None, "{key}");
        }
    }
    // The same bytes as a key.
    if let Ok(rest) = std::str::from_utf8(data) {
        if let Err(reason) = Place::of_key(&format!("requests/{rest}")) {
            assert!(reason.len() < 2000, "a reason of {} bytes", reason.len());
        }
    }
});
