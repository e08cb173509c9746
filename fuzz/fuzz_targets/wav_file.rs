//! A WAV file given to `transcribe`, `understand` or `eval spoken`.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let name = std::path::Path::new("fuzz.wav");
    if let Ok(audio) = hark::audio::wav::parse_wav(bytes, name) {
        assert!(audio.interleaved.iter().all(|s| s.is_finite()));
        let _ = audio.to_mono().resampled(16_000);
    }
});
