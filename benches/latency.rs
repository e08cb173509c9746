//! Voice-to-voice latency of the real-time loop with the local engines (Whisper tiny.en,
//! the built-in responder, Piper), in real time: a recorded conversation is fed at the pace
//! of a microphone, and the speaker's output is recorded on the same timeline.
//!
//! - voice-to-voice: from the end of each user utterance (known from how the recording was
//!   made) to the first sample of reply audio in the speaker recording: measured on the
//!   audio alone, the way a person with a stopwatch would;
//! - its parts, from the event log: endpoint wait (end of speech → end of turn decided),
//!   final transcript, reply text, first synthesized audio;
//! - barge-in reaction: from the start of an interruption to the last sample of reply audio;
//! - CPU seconds used per second of audio.
//!
//! Run with `cargo bench --bench latency` after `scripts/setup.sh` (about 4 minutes).

#[path = "../tests/common/conversation.rs"]
#[allow(dead_code)]
mod conversation;

use std::path::Path;
use std::sync::Arc;

use conversation::{Part, Recording};
use hark::audio::file::{WavFileSink, WavFileSource};
use hark::audio::{wav, SPEECH_RATE};
use hark::dialogue::builtin::KeywordResponder;
use hark::models::ModelDir;
use hark::pipeline::{run_voice_loop, Engines, LoopConfig, RunSummary};
use hark::stt::recognizer::Recognizer;
use hark::telemetry::events::{Event, EventLog, TimedEvent};
use hark::telemetry::{cpu_seconds, machine, LatencySummary};
use hark::tts::stream::Synthesizer;
use hark::tts::{self, VoiceKind};

/// Requests a user makes, each followed by enough silence for the whole reply.
const REQUESTS: &[&str] = &[
    "Hello there.",
    "What time is it?",
    "I would like to book a table.",
    "Can you check the status of my order?",
    "Please reset my password.",
    "I need to make an appointment.",
    "Where is my order?",
    "Good morning.",
    "What time is it right now?",
    "I forgot my password.",
    "Book a table for two tonight.",
    "Hi, can you help me?",
    "I want to change my reservation.",
    "Has my order shipped yet?",
    "Reset the password for my email account.",
    "Hey, good afternoon.",
    "Could you tell me the time?",
    "I'd like to book an appointment for Friday.",
    "My order number is four five six.",
    "Thanks, that's all. Goodbye.",
];
const PAUSE_AFTER_MS: u64 = 6500;
/// Reply audio louder than this counts as sound.
const AUDIBLE: f32 = 0.005;

struct Run {
    recording: Recording,
    events: Vec<TimedEvent>,
    played: Vec<f32>,
    summary: RunSummary,
    cpu_s: f64,
}

fn converse(
    models: &ModelDir,
    recognizer: &dyn Recognizer,
    synthesizer: &Arc<dyn Synthesizer>,
    parts: &[Part],
) -> Run {
    let mut user_voice = tts::open_voice(VoiceKind::Piper, models, 2).unwrap();
    let recording = conversation::build(user_voice.as_mut(), parts);
    let engines = Engines {
        recognizer: recognizer.open_session().unwrap(),
        brain: Box::new(KeywordResponder::new()),
        synthesizer: synthesizer.clone(),
    };
    let out_path = std::env::temp_dir().join(format!("hark-latency-{}.wav", std::process::id()));
    let mut source = WavFileSource::from_samples(recording.samples.clone(), SPEECH_RATE, true);
    let mut sink = WavFileSink::create(&out_path, SPEECH_RATE).unwrap();
    let mut log = EventLog::new();
    let cpu_before = cpu_seconds().unwrap_or(0.0);
    let summary = run_voice_loop(
        LoopConfig::default(),
        &mut source,
        &mut sink,
        engines,
        &mut log,
    )
    .expect("the loop runs");
    let cpu_s = cpu_seconds().unwrap_or(0.0) - cpu_before;
    let played = wav::read_wav(&out_path).unwrap().interleaved;
    std::fs::remove_file(&out_path).ok();
    Run {
        recording,
        events: log.events().to_vec(),
        played,
        summary,
        cpu_s,
    }
}

/// First audible output sample at or after `from_ms`, in ms.
fn first_sound(played: &[f32], from_ms: u64) -> Option<f64> {
    let start = (from_ms * SPEECH_RATE as u64 / 1000) as usize;
    played
        .get(start..)?
        .iter()
        .position(|s| s.abs() > AUDIBLE)
        .map(|i| (start + i) as f64 * 1000.0 / SPEECH_RATE as f64)
}

/// Last audible output sample before the first 300 ms of silence after `from_ms`, in ms.
fn sound_stops(played: &[f32], from_ms: u64) -> Option<f64> {
    let start = (from_ms * SPEECH_RATE as u64 / 1000) as usize;
    let quiet_run = (SPEECH_RATE as usize * 3) / 10;
    let mut last_loud = start;
    for (i, s) in played.get(start..)?.iter().enumerate() {
        if s.abs() > AUDIBLE {
            last_loud = start + i;
        } else if start + i - last_loud > quiet_run {
            return Some(last_loud as f64 * 1000.0 / SPEECH_RATE as f64);
        }
    }
    None
}

fn next_event(
    events: &[TimedEvent],
    after_ms: u64,
    pred: impl Fn(&Event) -> bool,
) -> Option<&TimedEvent> {
    events.iter().find(|e| e.t_ms >= after_ms && pred(&e.event))
}

fn report(name: &str, samples: &[f64]) {
    match LatencySummary::from_samples(samples) {
        Some(s) => println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {} |",
            s.p50_ms, s.p95_ms, s.p99_ms, s.mean_ms, s.count
        ),
        None => println!("| {name} | – | – | – | – | 0 |"),
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = ModelDir::new(root.join("models"));
    let threads = hark::default_threads();
    let recognizer =
        hark::engines::whisper_recognizer(&models, "tiny.en", threads, Default::default())
            .expect("run scripts/setup.sh");
    let synthesizer = hark::engines::local_synthesizer(VoiceKind::Piper, &models, threads)
        .expect("run scripts/setup.sh");

    // 1. Turns: each request, then silence while hark answers.
    let mut parts = vec![Part::Silence(800)];
    for request in REQUESTS {
        parts.push(Part::Say(request));
        parts.push(Part::Silence(PAUSE_AFTER_MS));
    }
    let run = converse(&models, recognizer.as_ref(), &synthesizer, &parts);
    let (mut v2v, mut endpoint, mut stt, mut tts_first) = (vec![], vec![], vec![], vec![]);
    let mut slowest: Vec<(f64, u64, String)> = vec![];
    for &(_, end) in &run.recording.spans {
        let Some(first) = first_sound(&run.played, end) else {
            continue;
        };
        v2v.push(first - end as f64);
        // Parts, on the loop's 20 ms event timeline.
        let Some(speech_end) =
            next_event(&run.events, end, |e| matches!(e, Event::SpeechEnd { .. }))
        else {
            continue;
        };
        let Event::SpeechEnd { at_ms } = speech_end.event else {
            unreachable!()
        };
        let final_t = next_event(&run.events, speech_end.t_ms, |e| {
            matches!(e, Event::Final { .. })
        });
        let audio_t = next_event(&run.events, speech_end.t_ms, |e| {
            matches!(e, Event::AudioOutStart { .. })
        });
        endpoint.push((speech_end.t_ms - at_ms) as f64);
        if let (Some(f), Some(a)) = (final_t, audio_t) {
            stt.push((f.t_ms - speech_end.t_ms) as f64);
            tts_first.push(a.t_ms.saturating_sub(f.t_ms) as f64);
            if let Event::Final { text, .. } = &f.event {
                slowest.push((first - end as f64, speech_end.t_ms - at_ms, text.clone()));
            }
        }
    }
    let quick_endpoints = endpoint.iter().filter(|&&ms| ms < 400.0).count();

    // 2. Barge-in: the user interrupts each reply about a second into it.
    let mut parts = vec![Part::Silence(800)];
    for _ in 0..6 {
        parts.push(Part::Say("I would like to book a table."));
        parts.push(Part::Silence(1800));
        parts.push(Part::Say("What time is it?"));
        parts.push(Part::Silence(4000));
    }
    let barge = converse(&models, recognizer.as_ref(), &synthesizer, &parts);
    let mut reaction = vec![];
    for pair in barge.recording.spans.chunks(2) {
        let interruption_start = pair[1].0;
        if let Some(stop) = sound_stops(&barge.played, interruption_start.saturating_sub(200)) {
            reaction.push(stop - interruption_start as f64);
        }
    }

    let audio_s = (run.recording.duration_ms() + barge.recording.duration_ms()) as f64 / 1000.0;
    println!("hark voice loop, real time, Whisper tiny.en + built-in responder + Piper");
    println!(
        "machine: {}; {} inference threads",
        machine(),
        hark::default_threads()
    );
    println!();
    println!("| measure (ms) | P50 | P95 | P99 | mean | n |");
    println!("|---|---|---|---|---|---|");
    report(
        "**voice-to-voice** (end of speech → first reply audio, from the audio)",
        &v2v,
    );
    report("endpoint wait (end of speech → turn ended)", &endpoint);
    report("final transcript after the turn ended", &stt);
    report(
        "reply's first sentence synthesized and playing, after the final transcript",
        &tts_first,
    );
    report(
        "barge-in reaction (interruption start → reply audio stops)",
        &reaction,
    );
    println!();
    println!(
        "turns ended early on a complete sentence: {quick_endpoints} of {}; turns: {}, replies: {}, unintended barge-ins: {}",
        endpoint.len(),
        run.summary.user_turns,
        run.summary.replies,
        run.summary.barge_ins
    );
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, wait, text) in slowest.iter().take(3) {
        println!("slow turn: {ms:.0} ms (endpoint wait {wait} ms) after {text:?}");
    }
    println!(
        "barge-ins detected: {} of {}; CPU: {:.2} s per second of audio ({:.0} s of audio)",
        barge.summary.barge_ins,
        barge.recording.spans.len() / 2,
        (run.cpu_s + barge.cpu_s) / audio_s,
        audio_s
    );
}
