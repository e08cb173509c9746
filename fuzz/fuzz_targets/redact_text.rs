//! What a user says or types, masked before it is logged: never a panic, never an address.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| {
    let masked = hark::telemetry::redact::redact(text);
    assert!(!masked.contains('@'), "{text:?} → {masked:?}");
});
