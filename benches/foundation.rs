//! Foundation benchmark: Whisper load time, transcription latency with the full 30 s window
//! and with the trimmed window, word error rate, peak memory, and TTS first-chunk latency
//! and real-time factor for both voices, and the end-of-turn model's time per hearing. Run
//! with `cargo bench --bench foundation` after `scripts/setup.sh` (`-- turn-model` for the
//! last alone); it prints Markdown tables and the machine it ran on.

use std::path::Path;
use std::time::Instant;

use hark::audio::Pcm;
use hark::models::ModelDir;
use hark::stt::wer::word_errors;
use hark::stt::whisper::WhisperModel;
use hark::stt::{DecodeWindow, TranscribeOptions, Transcriber};
use hark::telemetry::{machine, peak_rss_mib, LatencySummary};
use hark::tts::{self, VoiceKind};

const REPLY: &str = "Sure, I can help with that. Your table for four is booked for seven tonight. Is there anything else I can do for you?";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = ModelDir::new(root.join("models"));
    let threads = hark::default_threads();
    let sentences: Vec<String> =
        std::fs::read_to_string(root.join("assets/sentences/assistant.txt"))
            .expect("sentence list")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
    println!(
        "# hark foundation benchmark\n\nmachine: {}; inference threads: {threads}\n",
        machine()
    );
    if std::env::args().any(|a| a == "turn-model") {
        turn_model(&models);
        return;
    }

    // Whisper: load time (fresh loads), then memory after a first decode.
    let mut loads = Vec::new();
    let mut model = None;
    for _ in 0..3 {
        let m = WhisperModel::load(&models.whisper("tiny.en"), threads)
            .expect("tiny.en (run scripts/setup.sh)");
        loads.push(m.load_ms);
        model = Some(m);
    }
    let model = model.unwrap();
    let mut session = model.session().unwrap();
    session
        .transcribe(&vec![0.0; 16_000], &TranscribeOptions::default())
        .unwrap();
    let rss_whisper = peak_rss_mib().unwrap_or(f64::NAN);

    // TTS: speech for every sentence from both voices, with timings.
    let mut speech: Vec<(VoiceKind, String, Pcm)> = Vec::new();
    println!("| voice | load ms | first audio of a 3-sentence reply, ms (P50 / P95) | real-time factor |");
    println!("|---|---|---|---|");
    for kind in [VoiceKind::Piper, VoiceKind::Espeak] {
        let start = Instant::now();
        let mut voice = tts::open_voice(kind, &models, threads).unwrap();
        let load_ms = start.elapsed().as_secs_f64() * 1000.0;
        voice.synthesize("Warm up.").unwrap();
        let mut first_chunk = Vec::new();
        for _ in 0..10 {
            let mut first = None;
            tts::speak_streaming(voice.as_mut(), REPLY, &mut |c| {
                first.get_or_insert(c.ready_ms);
                true
            })
            .unwrap();
            first_chunk.push(first.unwrap());
        }
        let (mut synth_ms, mut audio_ms) = (0.0, 0.0);
        for s in &sentences {
            let t = Instant::now();
            let samples = voice.synthesize(s).unwrap();
            synth_ms += t.elapsed().as_secs_f64() * 1000.0;
            let pcm = Pcm::new(voice.sample_rate(), samples);
            audio_ms += pcm.duration_secs() * 1000.0;
            speech.push((kind, s.clone(), pcm.resampled(16_000).unwrap()));
        }
        let fc = LatencySummary::from_samples(&first_chunk).unwrap();
        println!(
            "| {kind:?} | {load_ms:.0} | {:.1} / {:.1} | {:.4} |",
            fc.p50_ms,
            fc.p95_ms,
            synth_ms / audio_ms
        );
    }

    println!("\n| window | voice | utterances | latency P50 / P95 ms | WER |");
    println!("|---|---|---|---|---|");
    for window in [DecodeWindow::Full, DecodeWindow::Trimmed] {
        for kind in [VoiceKind::Piper, VoiceKind::Espeak] {
            let options = TranscribeOptions {
                window,
                ..Default::default()
            };
            let (mut latencies, mut errors, mut words) = (Vec::new(), 0, 0);
            for (_, sentence, pcm) in speech.iter().filter(|(k, _, _)| *k == kind) {
                let t = session.transcribe(&pcm.samples, &options).unwrap();
                latencies.push(t.decode_ms);
                let (e, n) = word_errors(sentence, &t.text);
                errors += e;
                words += n;
            }
            let l = LatencySummary::from_samples(&latencies).unwrap();
            println!(
                "| {window:?} | {kind:?} | {} | {:.0} / {:.0} | {:.1} % |",
                l.count,
                l.p50_ms,
                l.p95_ms,
                100.0 * errors as f64 / words as f64
            );
        }
    }
    let l = LatencySummary::from_samples(&loads).unwrap();
    println!(
        "\nWhisper tiny.en load: P50 {:.0} ms (max {:.0}); peak RSS after load + one decode: {rss_whisper:.0} MiB; \
         peak RSS of the whole run (Whisper + Piper + espeak): {:.0} MiB",
        l.p50_ms,
        l.max_ms,
        peak_rss_mib().unwrap_or(f64::NAN)
    );
    turn_model(&models);
}

/// The end-of-turn model's time per hearing (features and inference), on the last 2 s and
/// the last 8 s of a request, with one and two threads.
fn turn_model(models: &ModelDir) {
    use hark::vad::smart_turn::SmartTurn;
    println!("\n| end-of-turn model | audio | hearing P50 / P95 ms |");
    println!("|---|---|---|");
    // Speech-like input: the model's time does not depend on what the audio says.
    let audio: Vec<f32> = (0..16_000 * 8)
        .map(|i| (i as f32 * 0.05).sin() * 0.1 * ((i / 4000) % 2) as f32)
        .collect();
    for threads in [1, 2] {
        let mut model = SmartTurn::open(&models.smart_turn(), &models.onnxruntime(), threads)
            .expect("the end-of-turn model (run scripts/setup.sh)");
        for seconds in [2, 8] {
            let clip = &audio[audio.len() - seconds * 16_000..];
            model.complete(clip).unwrap();
            let times: Vec<f64> = (0..20)
                .map(|_| {
                    let t = Instant::now();
                    model.complete(clip).unwrap();
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            let l = LatencySummary::from_samples(&times).unwrap();
            println!(
                "| Smart Turn v3.2, {threads} thread(s) | last {seconds} s | {:.0} / {:.0} |",
                l.p50_ms, l.p95_ms
            );
        }
    }
}
