#![no_main]
//! `.dsc` files, signed or not: the cleartext armour, the strict paragraph,
//! and the three cross-checked file lists.

use libfuzzer_sys::fuzz_target;
use raptr_formats::dsc::Dsc;

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    match Dsc::parse(data) {
        Ok(dsc) => assert!(!dsc.files.is_empty()),
        Err(reason) => assert!(reason.len() < 2000, "a reason of {} bytes", reason.len()),
    }
});
