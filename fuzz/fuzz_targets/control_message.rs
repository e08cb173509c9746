//! A client's JSON control message on the conversation socket.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = hark::server::protocol::parse_client_message(text);
});
