//! Bytes from a Wyoming client: frames decoded, each event read as a request.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let mut decoder = hark::wyoming::protocol::FrameDecoder::new();
    // Split where the input says, as a socket would deliver it.
    let cut = bytes.first().map_or(0, |b| *b as usize).min(bytes.len());
    decoder.push(&bytes[..cut]);
    decoder.push(&bytes[cut..]);
    while let Ok(Some(event)) = decoder.next_event() {
        let _ = hark::wyoming::protocol::parse_request(&event);
    }
});
