#![no_main]
//! `.changes` files, signed or not, and the armour reader on its own: the
//! text it returns must parse the way the document's reader sees it.

use libfuzzer_sys::fuzz_target;
use raptr_formats::changes::Changes;
use raptr_formats::signed::strip_signature;

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    if let Err(reason) = Changes::parse(data) {
        assert!(reason.len() < 2000, "a reason of {} bytes", reason.len());
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(clear) = strip_signature(text) {
            assert_eq!(clear.is_signed(), clear.signature.is_some());
        }
    }
});
