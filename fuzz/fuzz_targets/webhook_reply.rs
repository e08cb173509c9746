//! What a flow's webhook answers.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = hark::dialogue::actions::reply_fields("http://backend", text);
});
