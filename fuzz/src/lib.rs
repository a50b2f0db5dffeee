//! What every fuzz target shares.

/// Defines `__asan_default_options` for a fuzz target: ASan's quarantine of
/// freed memory (256 MB by default) counts towards libFuzzer's
/// `-rss_limit_mb`, so it is kept small here, and a run under
/// `-rss_limit_mb=256` measures raptr's memory, not the sanitizer's. Leak
/// detection is off: safe Rust does not leak, and the C decoders' caches are
/// not leaks.
#[macro_export]
macro_rules! asan_defaults {
    () => {
        #[no_mangle]
        pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
            c"quarantine_size_mb=16:detect_leaks=0".as_ptr()
        }
    };
}
