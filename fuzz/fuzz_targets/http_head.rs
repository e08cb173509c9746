//! The request head every connection to `hark serve` starts with.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    if let Ok(Some((head, used))) = hark::server::http::parse_head(bytes) {
        assert!(used <= bytes.len());
        let _ = hark::server::http::upgrade_response(&head);
    }
});
