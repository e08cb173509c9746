use whisper_rs::*;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pcm = hark::audio::wav::read_wav_for_speech(std::path::Path::new(&args[1])).unwrap();
    let single = args[2] == "1";
    let margin: usize = args[3].parse().unwrap();
    install_logging_hooks();
    let ctx = WhisperContext::new_with_params("models/ggml-tiny.en.bin", WhisperContextParameters::default()).unwrap();
    let mut st = ctx.create_state().unwrap();
    let mut p = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    p.set_n_threads(2); p.set_language(Some("en")); p.set_no_context(true);
    p.set_temperature_inc(0.0);
    p.set_single_segment(single);
    p.set_audio_ctx((pcm.samples.len().div_ceil(320) + margin) as i32);
    let t = std::time::Instant::now();
    st.full(p, &pcm.samples).unwrap();
    println!("audio {:.2}s decode {:?}", pcm.samples.len() as f64/16000.0, t.elapsed());
    for s in st.as_iter() { println!("  [{} - {}] {}", s.start_timestamp(), s.end_timestamp(), s.to_str_lossy().unwrap()); }
}
