//! A client's binary audio frame (16-bit little-endian PCM).
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let mut samples = Vec::new();
    if hark::server::protocol::decode_pcm16(bytes, &mut samples).is_ok() {
        assert_eq!(samples.len() * 2, bytes.len());
    }
});
