#![no_main]
//! The `.deb` reader on arbitrary bytes, with small limits so a run stays fast.

use libfuzzer_sys::fuzz_target;
use raptr_formats::deb::{read_deb, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        control_tar: 1 << 20,
        control_file: 64 << 10,
        data_floor: 4 << 20,
        data_ratio: 50,
        data_max: 8 << 20,
        decoder_memory: 16 << 20,
    };
    let _ = read_deb(data, &limits);
});
