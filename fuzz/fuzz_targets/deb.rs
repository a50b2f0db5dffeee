#![no_main]
//! The `.deb` reader (ar container, tar members, decoders, control file) on
//! arbitrary bytes, with small limits so that a run stays fast and any
//! allocation the input decides stands out.

use libfuzzer_sys::fuzz_target;
use raptr_formats::deb::{read_deb, Limits};
use raptr_formats::ustar;

raptr_fuzz::asan_defaults!();

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        control_tar: 1 << 20,
        control_file: 64 << 10,
        data_floor: 4 << 20,
        data_ratio: 50,
        data_max: 8 << 20,
        decoder_memory: 16 << 20,
        tar: ustar::Limits::default(),
    };
    if let Err(e) = read_deb(data, &limits) {
        let reason = e.to_string();
        assert!(reason.len() < 2000, "a reason of {} bytes", reason.len());
    }
});
