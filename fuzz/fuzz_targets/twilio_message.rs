//! A Twilio Media Streams message on the `/twilio` socket.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = hark::server::twilio::parse(text);
});
