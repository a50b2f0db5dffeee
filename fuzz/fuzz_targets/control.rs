#![no_main]
//! The deb822 parser in both modes, line by line and over a reader, and the
//! writer's round trip: whatever strict mode accepts is written back to a
//! paragraph that parses to the same fields.

use libfuzzer_sys::fuzz_target;
use raptr_formats::control::{parse_all, parse_one, Mode, Paragraphs};

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    for p in Paragraphs::new(data, Mode::Lenient) {
        if p.is_err() {
            break;
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_all(text, Mode::Lenient);
    if let Ok(p) = parse_one(text, Mode::Strict) {
        let again = parse_one(&p.to_string(), Mode::Strict).expect("a written paragraph parses");
        assert_eq!(p, again);
    }
});
