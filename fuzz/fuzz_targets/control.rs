#![no_main]
//! The deb822 parser in both modes, the cleartext reader, and the writer's round
//! trip: whatever strict mode accepts must be written back identically.

use libfuzzer_sys::fuzz_target;
use raptr_formats::control::{parse_all, parse_one, Mode};
use raptr_formats::signed::strip_signature;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_all(text, Mode::Lenient);
    if let Ok(p) = parse_one(text, Mode::Strict) {
        let again = parse_one(&p.to_string(), Mode::Strict).expect("written paragraph parses");
        assert_eq!(p, again);
    }
    if let Ok(clear) = strip_signature(text) {
        let _ = parse_one(&clear.text, Mode::Strict);
    }
    let _ = raptr_formats::dsc::Dsc::parse(data);
    let _ = raptr_formats::changes::Changes::parse(data);
});
