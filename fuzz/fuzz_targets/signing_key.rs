#![no_main]
//! Signing keys and what carries signatures: a secret key file (armoured
//! or binary) loaded and checked as a publish loads it, the signatures of
//! an InRelease or Release.gpg, and a keyring's fingerprints. Without a
//! passphrase nothing is unlocked, so no input makes the fuzzer hash.

use libfuzzer_sys::fuzz_target;
use raptr_core::signing::{issuers, keyring_fingerprints, Key};

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    if let Err(e) = Key::load(data, "fuzz.asc", None) {
        let reason = e.to_string();
        assert!(reason.len() < 4000, "a reason of {} bytes", reason.len());
    }
    let _ = issuers(&String::from_utf8_lossy(data));
    let _ = keyring_fingerprints(data);
});
