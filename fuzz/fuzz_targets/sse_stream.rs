//! The language model's server-sent events, split at an arbitrary point.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: (&[u8], usize)| {
    let (bytes, cut) = input;
    let cut = cut % (bytes.len() + 1);
    let mut decoder = hark::dialogue::sse::SseDecoder::new();
    let _ = decoder.push(&bytes[..cut]);
    let _ = decoder.push(&bytes[cut..]);
    let _ = decoder.finish();
});
