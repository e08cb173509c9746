//! Voice-to-voice latency of the real-time loop with the local engines (streaming Whisper
//! tiny.en, Piper), in real time: a conversation is fed at the pace of a microphone, and the
//! speaker's output is recorded on the same timeline. Measured on the audio alone, the way
//! a person with a stopwatch would:
//!
//! - `keywords`: 20 requests answered by the built-in keyword responder: voice-to-voice
//!   (end of each request → first reply sample), and its parts from the event log;
//! - `dialogue`: a conversation with the dialogue core (the default domain);
//! - `barge-in`: the user interrupts each reply; interruption start → reply audio stops;
//! - `backchannel`: the user says "okay" over each reply; how long the speaker is silent
//!   from the "okay" until the reply goes on;
//! - `load`: the `keywords` requests with two busy processes beside the loop: turns
//!   answered, voice-to-voice;
//! - `barista`: real people's spoken orders (the barista dev recordings, 5 s apart) through
//!   the barista domain;
//! - `startup`: the `hark run` binary: start to the greeting, and peak memory;
//! - `cloud`: the `keywords` requests (the first ten) with each pair of cloud engines,
//!   against local servers that speak their protocols with a simulated 40 ms round trip:
//!   voice-to-voice, the engines' own share of it, and what hark adds on top;
//! - `turns`: real people hesitating mid-order: barista dev recordings, each cut at a gap
//!   between words where what was said so far is not a whole order (its transcript, read by
//!   the barista domain, lacks a value the whole order has), with 0.4–1.2 s of silence
//!   inserted there; played in real time through the barista domain with the end-of-turn
//!   model and then with the rule before it (the transcript alone), back to back: replies
//!   that start inside the pause (cut-offs), and voice-to-voice after the order ends;
//! - `tts-cache`: a scripted day of typed conversations with the default domain, each reply
//!   spoken by Piper with the cache of fixed wording: text to first audio for replies whose
//!   first piece came from the cache and for those synthesized, and the cache's hit rate;
//! - `serve-load`: `hark serve` holding 1 to `HARK_LOAD_MAX` (default 6) conversations at
//!   once over loopback for `HARK_LOAD_SECONDS` (default 600) each: voice-to-voice, errors,
//!   memory at start and end, and the capacity: the most conversations that (with every
//!   smaller number) keep voice-to-voice P95 ≤ 800 ms, every turn answered, no error, per core
//!   (only when named: `cargo bench --bench latency -- serve-load`);
//! - `serve-cloud`: `hark serve` on the AssemblyAI and Cartesia protocol servers (40 ms
//!   round trip) with 1, 2, 4, … conversations (from `HARK_LOAD_FROM`, up to `HARK_LOAD_MAX`,
//!   default 48) for
//!   `HARK_LOAD_SECONDS` (default 120) each: voice-to-voice, hark's own share of it (less the
//!   provider's end of turn and a round trip to each), CPU, and the capacity (only when named);
//! - `knowledge`: spoken questions answered from a help document (the assistant domain with
//!   `../shared/data/knowledge/larkspur-help.md`);
//! - `local-llm`: spoken questions the flows do not take, answered by a real language model
//!   (SmolLM2-135M-Instruct on llama.cpp behind `tests/llm-server`; `scripts/local-llm.sh`);
//! - `soak`: `hark serve` holding `HARK_SOAK_CONVERSATIONS` (default 2) conversations for
//!   `HARK_SOAK_SECONDS` (default 3600): turns, errors, voice-to-voice, CPU, and memory every
//!   10 s (only when named).
//!
//! `cargo bench --bench latency` runs them all (about 14 minutes), `cargo bench --bench
//! latency -- dialogue barista` some. Run `scripts/setup.sh` first.

#[path = "../tests/common/conversation.rs"]
#[allow(dead_code)]
mod conversation;

#[path = "../tests/common/cloud.rs"]
#[allow(dead_code)]
mod cloud_fakes;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conversation::{Part, Recording};
use hark::audio::file::{WavFileSink, WavFileSource};
use hark::audio::{wav, SPEECH_RATE};
use hark::dialogue::builtin::KeywordResponder;
use hark::dialogue::Brain;
use hark::models::ModelDir;
use hark::pipeline::{run_voice_loop, Engines, LoopConfig, RunSummary};
use hark::stt::recognizer::Recognizer;
use hark::stt::Transcriber;
use hark::telemetry::events::{Event, EventLog, TimedEvent};
use hark::telemetry::{cpu_seconds, machine, LatencySummary};
use hark::tts::stream::Synthesizer;
use hark::tts::{self, VoiceKind};
use hark::vad::turn_model::TurnModel;

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
/// A conversation with the default domain's flows: booking, order status, FAQ, password.
const DIALOGUE: &[&str] = &[
    "I'd like to book a haircut tomorrow at ten.",
    "Yes, please.",
    "What are your opening hours?",
    "Where is my order?",
    "It's four five seven eight two.",
    "Where are you located?",
    "I need to reset my password.",
    "It's for my work account.",
    "Thank you, goodbye.",
];
/// The same conversation without commas: the cloud recognizers' protocol servers end an
/// utterance at any pause as long as the provider's minimum silence, and a pause at a comma
/// would split one request in two.
const CLOUD_DIALOGUE: &[&str] = &[
    "I'd like to book a haircut tomorrow at ten.",
    "Yes.",
    "What are your opening hours?",
    "Where is my order?",
    "It's four five seven eight two.",
    "Where are you located?",
    "I need to reset my password.",
    "It's for my work account.",
    "Thank you and goodbye.",
];
const PAUSE_AFTER_MS: u64 = 6500;
/// Reply audio louder than this counts as sound.
const AUDIBLE: f32 = 0.005;
const BARISTA_RECORDINGS: usize = 12;

struct Run {
    recording: Recording,
    events: Vec<TimedEvent>,
    played: Vec<f32>,
    summary: RunSummary,
    cpu_s: f64,
}

/// Who answers in a run.
enum Responder {
    Keywords,
    Domain(&'static str),
}

struct Bench {
    /// A `hark` binary to measure instead of this build's loop (`HARK_BIN`).
    binary: Option<PathBuf>,
    models: ModelDir,
    recognizer: Arc<dyn Recognizer>,
    synthesizer: Arc<dyn Synthesizer>,
    user_voice: Box<dyn tts::Voice>,
    /// The end-of-turn model, unless `HARK_TURN_MODEL=off` (the rule before it).
    turn_model: Option<Arc<TurnModel>>,
}

impl Bench {
    fn say(&mut self, parts: &[Part]) -> Recording {
        conversation::build(self.user_voice.as_mut(), parts)
    }

    /// Runs `recording` through the loop with `brain` (or, with `HARK_BIN` set, through that
    /// `hark run` binary with `domain`, None for its keyword responder).
    fn converse(&self, recording: Recording, brain: Responder, config: LoopConfig) -> Run {
        let brain = match brain {
            Responder::Keywords => {
                if let Some(bin) = &self.binary {
                    return run_binary(bin, &self.models, recording, None);
                }
                Box::new(KeywordResponder::new()) as Box<dyn Brain>
            }
            Responder::Domain(domain) => {
                if let Some(bin) = &self.binary {
                    return run_binary(bin, &self.models, recording, Some(domain));
                }
                self.dialogue_brain(domain)
            }
        };
        let engines = Engines {
            recognizer: self.recognizer.open_session().unwrap(),
            brain,
            synthesizer: self.synthesizer.clone(),
            turn_model: self.turn_model.clone(),
        };
        run_loop(recording, engines, config).0
    }

    fn dialogue_brain(&self, domain: &str) -> Box<dyn Brain> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/domains")
            .join(domain);
        let manager = hark::dialogue::build_manager(&dir, &self.models, 2, &Default::default())
            .expect("the domain");
        Box::new(hark::dialogue::brain::DialogueBrain::new(manager, "bench"))
    }
}

fn ms_to_sample(ms: u64) -> usize {
    (ms * SPEECH_RATE as u64 / 1000) as usize
}

fn sample_to_ms(i: usize) -> f64 {
    i as f64 * 1000.0 / SPEECH_RATE as f64
}

/// First audible output sample at or after `from_ms`, in ms.
fn first_sound(played: &[f32], from_ms: u64) -> Option<f64> {
    let start = ms_to_sample(from_ms);
    played
        .get(start..)?
        .iter()
        .position(|s| s.abs() > AUDIBLE)
        .map(|i| sample_to_ms(start + i))
}

/// Last audible output sample before the first `quiet_ms` of silence after `from_ms`.
fn sound_stops(played: &[f32], from_ms: u64, quiet_ms: u64) -> Option<f64> {
    let start = ms_to_sample(from_ms);
    let quiet_run = ms_to_sample(quiet_ms);
    let mut last_loud = start;
    for (i, s) in played.get(start..)?.iter().enumerate() {
        if s.abs() > AUDIBLE {
            last_loud = start + i;
        } else if start + i - last_loud > quiet_run {
            return Some(sample_to_ms(last_loud));
        }
    }
    None
}

/// Runs `recording` through the loop with `engines` in real time; the run, and when the
/// loop started (the wall clock of the recording's first sample).
fn run_loop(recording: Recording, engines: Engines, config: LoopConfig) -> (Run, Instant) {
    let out_path = std::env::temp_dir().join(format!("hark-latency-{}.wav", std::process::id()));
    let paced = config.clock == hark::clock::Clock::RealTime;
    let mut source = WavFileSource::from_samples(recording.samples.clone(), SPEECH_RATE, paced);
    let mut sink = WavFileSink::create(&out_path, SPEECH_RATE).unwrap();
    let mut log = EventLog::recording();
    let cpu_before = cpu_seconds().unwrap_or(0.0);
    let started = Instant::now();
    let summary =
        run_voice_loop(config, &mut source, &mut sink, engines, &mut log).expect("the loop runs");
    let cpu_s = cpu_seconds().unwrap_or(0.0) - cpu_before;
    let played = wav::read_wav(&out_path).unwrap().interleaved;
    std::fs::remove_file(&out_path).ok();
    let run = Run {
        recording,
        events: log.events().to_vec(),
        played,
        summary,
        cpu_s,
    };
    (run, started)
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

fn table_header() {
    println!("| measure (ms) | P50 | P95 | P99 | mean | n |");
    println!("|---|---|---|---|---|---|");
}

/// Voice-to-voice for each span of `run` (first reply sound within `window_ms` of its
/// end), the spans answered, and the event-log parts.
struct Turns {
    v2v: Vec<f64>,
    answered: usize,
    endpoint: Vec<f64>,
    stt: Vec<f64>,
    tts_first: Vec<f64>,
    slowest: Vec<(f64, u64, String)>,
}

fn turns(run: &Run, window_ms: f64) -> Turns {
    let mut t = Turns {
        v2v: vec![],
        answered: 0,
        endpoint: vec![],
        stt: vec![],
        tts_first: vec![],
        slowest: vec![],
    };
    for &(_, end) in &run.recording.spans {
        let Some(first) = first_sound(&run.played, end).filter(|f| f - (end as f64) < window_ms)
        else {
            continue;
        };
        t.answered += 1;
        t.v2v.push(first - end as f64);
        // Parts, on the loop's 20 ms event timeline.
        let Some(speech_end) =
            next_event(&run.events, end, |e| matches!(e, Event::SpeechEnd { .. }))
        else {
            continue;
        };
        let Event::SpeechEnd { at_ms } = speech_end.event else {
            unreachable!()
        };
        t.endpoint
            .push(speech_end.t_ms.saturating_sub(at_ms) as f64);
        let final_t = next_event(&run.events, speech_end.t_ms, |e| {
            matches!(e, Event::Final { .. })
        });
        let audio_t = next_event(&run.events, speech_end.t_ms, |e| {
            matches!(e, Event::AudioOutStart { .. })
        });
        if let (Some(f), Some(a)) = (final_t, audio_t) {
            t.stt.push((f.t_ms - speech_end.t_ms) as f64);
            t.tts_first.push(a.t_ms.saturating_sub(f.t_ms) as f64);
            if let Event::Final { text, .. } = &f.event {
                t.slowest
                    .push((first - end as f64, speech_end.t_ms - at_ms, text.clone()));
            }
        }
    }
    t
}

fn print_turns(title: &str, run: &Run, t: &mut Turns) {
    println!("\n### {title}\n");
    table_header();
    report(
        "**voice-to-voice** (end of speech → first reply audio, from the audio)",
        &t.v2v,
    );
    report("endpoint wait (end of speech → turn ended)", &t.endpoint);
    report("final transcript after the turn ended", &t.stt);
    report(
        "reply's first audio playing, after the final transcript",
        &t.tts_first,
    );
    let quick = t.endpoint.iter().filter(|&&ms| ms < 400.0).count();
    let audio_s = run.recording.duration_ms() as f64 / 1000.0;
    println!(
        "\nturns answered: {} of {}; ended early on a complete sentence: {quick}; turns: {}, replies: {}, barge-ins: {}, acknowledgements: {}; CPU {:.2} s per second of audio",
        t.answered,
        run.recording.spans.len(),
        run.summary.user_turns,
        run.summary.replies,
        run.summary.barge_ins,
        run.summary.acknowledgements,
        run.cpu_s / audio_s,
    );
    t.slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (ms, wait, text) in t.slowest.iter().take(3) {
        println!("slow turn: {ms:.0} ms (endpoint wait {wait} ms) after {text:?}");
    }
}

fn requests(texts: &[&'static str]) -> Vec<Part<'static>> {
    let mut parts = vec![Part::Silence(800)];
    for text in texts {
        parts.push(Part::Say(text));
        parts.push(Part::Silence(PAUSE_AFTER_MS));
    }
    parts
}

fn keywords(bench: &mut Bench) {
    let recording = bench.say(&requests(REQUESTS));
    let run = bench.converse(recording, Responder::Keywords, LoopConfig::default());
    let mut t = turns(&run, 5000.0);
    print_turns("keyword responder", &run, &mut t);
}

fn dialogue(bench: &mut Bench) {
    let recording = bench.say(&requests(DIALOGUE));
    let run = bench.converse(
        recording,
        Responder::Domain("customer-service"),
        LoopConfig::default(),
    );
    let mut t = turns(&run, 5000.0);
    print_turns("dialogue core (customer-service domain)", &run, &mut t);
}

/// Questions a help document answers (and one it does not), for the voice-to-voice of
/// answers from documents.
const KNOWLEDGE_QUESTIONS: &[&str] = &[
    "Do you ship to Canada?",
    "How long do refunds take?",
    "Do gift cards expire?",
    "What is your phone number?",
    "Can I return a mattress I opened?",
    "How much does assembly cost?",
    "Where is your Seattle store?",
    "Do you sell laptops?",
];

/// The assistant domain answering from Larkspur's help document (`../shared/data/knowledge`).
fn knowledge(bench: &mut Bench) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = root.join("../shared/data/knowledge/larkspur-help.md");
    if !doc.exists() {
        println!("\n(no {}: the knowledge section is skipped)", doc.display());
        return;
    }
    let options = hark::dialogue::DialogueOptions {
        knowledge_paths: vec![doc],
        ..Default::default()
    };
    let dir = root.join("config/domains/assistant");
    let manager = hark::dialogue::build_manager(&dir, &bench.models, 2, &options)
        .expect("the assistant domain and the document");
    let engines = Engines {
        recognizer: bench.recognizer.open_session().unwrap(),
        brain: Box::new(hark::dialogue::brain::DialogueBrain::new(manager, "bench")),
        synthesizer: bench.synthesizer.clone(),
        turn_model: bench.turn_model.clone(),
    };
    let recording = bench.say(&requests(KNOWLEDGE_QUESTIONS));
    let run = run_loop(recording, engines, LoopConfig::default()).0;
    let mut t = turns(&run, 5000.0);
    print_turns(
        "answers from documents (assistant domain, Larkspur's help document)",
        &run,
        &mut t,
    );
}

/// Questions no flow of the customer-service domain takes, for the language model.
const MODEL_QUESTIONS: &[&str] = &[
    "Can you tell me a fun fact about the moon?",
    "What is a good name for a cat?",
    "Why is the sky blue?",
    "How do I make a cup of tea?",
    "What should I cook for dinner tonight?",
    "Can you recommend a good book?",
    "What is the capital of France?",
    "How many legs does a spider have?",
];

/// The customer-service domain with a real language model for what its flows do not take:
/// SmolLM2-135M-Instruct on llama.cpp behind the tests' OpenAI-compatible server
/// (`scripts/local-llm.sh` installs it). Time to first token from the server's own log.
fn local_llm(bench: &mut Bench) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gguf = bench
        .models
        .root
        .join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !gguf.exists() || !root.join("tests/llm-server/node_modules").exists() {
        println!(
            "\n(no local model server: run scripts/local-llm.sh; the local-llm section is skipped)"
        );
        return;
    }
    let log = std::env::temp_dir().join(format!("hark-bench-llm-{}.jsonl", std::process::id()));
    let mut server = std::process::Command::new("node")
        .arg(root.join("tests/llm-server/server.mjs"))
        .arg("--model")
        .arg(&gguf)
        .arg("--log")
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first.trim().rsplit(':').next().unwrap().to_string();
    let settings = hark::config::LlmSettings {
        url: format!("http://127.0.0.1:{port}/v1"),
        ..Default::default()
    };
    let options = hark::dialogue::DialogueOptions {
        llm: settings.client(),
        ..Default::default()
    };
    let dir = root.join("config/domains/customer-service");
    let manager = hark::dialogue::build_manager(&dir, &bench.models, 2, &options)
        .expect("the customer-service domain");
    let engines = Engines {
        recognizer: bench.recognizer.open_session().unwrap(),
        brain: Box::new(hark::dialogue::brain::DialogueBrain::new(manager, "bench")),
        synthesizer: bench.synthesizer.clone(),
        turn_model: bench.turn_model.clone(),
    };
    let recording = bench.say(&requests(MODEL_QUESTIONS));
    let run = run_loop(recording, engines, LoopConfig::default()).0;
    let _ = server.kill();
    let _ = server.wait();
    let mut t = turns(&run, 8000.0);
    print_turns(
        "answers from a real language model (SmolLM2-135M-Instruct on llama.cpp, customer-service domain)",
        &run,
        &mut t,
    );
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    std::fs::remove_file(&log).ok();
    let first_token: Vec<f64> = entries
        .iter()
        .filter(|e| e["event"] == "answered")
        .filter_map(|e| e["first_token_ms"].as_f64())
        .collect();
    let count = |kind: &str| entries.iter().filter(|e| e["event"] == kind).count();
    println!();
    table_header();
    report(
        "model's first token after the request (server)",
        &first_token,
    );
    println!(
        "\nrequests: {}, answered: {}, hung up mid-answer (barge-ins, dropped speculations): {}",
        count("request"),
        count("answered"),
        count("closed")
    );
}

fn barge_in(bench: &mut Bench) {
    let mut parts = vec![Part::Silence(800)];
    for _ in 0..6 {
        parts.push(Part::Say("I would like to book a table."));
        parts.push(Part::Silence(1800));
        parts.push(Part::Say("What time is it?"));
        parts.push(Part::Silence(4000));
    }
    let recording = bench.say(&parts);
    let run = bench.converse(recording, Responder::Keywords, LoopConfig::default());
    let mut reaction = vec![];
    for pair in run.recording.spans.chunks(2) {
        let interruption_start = pair[1].0;
        if let Some(stop) = sound_stops(&run.played, interruption_start.saturating_sub(200), 300) {
            reaction.push(stop - interruption_start as f64);
        }
    }
    println!("\n### barge-in\n");
    table_header();
    report(
        "barge-in reaction (interruption start → reply audio stops)",
        &reaction,
    );
    println!(
        "\nbarge-ins: {} of {}",
        run.summary.barge_ins,
        run.recording.spans.len() / 2
    );
}

fn backchannel(bench: &mut Bench) {
    let mut parts = vec![Part::Silence(800)];
    for _ in 0..6 {
        parts.push(Part::Say("I would like to book a table."));
        parts.push(Part::Silence(1500));
        // Piper cannot say "uh-huh" (Whisper hears "Oh"); "okay" is as common a backchannel.
        parts.push(Part::Say("Okay."));
        parts.push(Part::Silence(6000));
    }
    let recording = bench.say(&parts);
    let run = bench.converse(recording, Responder::Keywords, LoopConfig::default());
    let mut pauses = vec![];
    for pair in run.recording.spans.chunks(2) {
        let onset = pair[1].0;
        // The speaker goes quiet at the "okay" and sounds again when the reply resumes.
        let Some(stop) = sound_stops(&run.played, onset.saturating_sub(200), 100) else {
            continue;
        };
        if let Some(resume) = first_sound(&run.played, stop as u64 + 100) {
            pauses.push(resume - onset as f64);
        }
    }
    println!("\n### backchannel\n");
    table_header();
    report(
        "backchannel pause (\"okay\" onset → reply audio again)",
        &pauses,
    );
    println!(
        "\nresumed: {} of {}; barge-ins: {}",
        run.summary.false_interruptions,
        run.recording.spans.len() / 2,
        run.summary.barge_ins
    );
}

fn load(bench: &mut Bench) {
    // Two processes that keep a core busy each, beside the loop.
    let busy: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .expect("a busy process")
        })
        .collect();
    let recording = bench.say(&requests(&REQUESTS[..10]));
    let run = bench.converse(recording, Responder::Keywords, LoopConfig::default());
    for mut p in busy {
        let _ = p.kill();
        let _ = p.wait();
    }
    let mut t = turns(&run, PAUSE_AFTER_MS as f64);
    print_turns(
        "keyword responder, two busy processes beside it",
        &run,
        &mut t,
    );
    let replies: Vec<f64> = run
        .recording
        .spans
        .iter()
        .filter_map(|&(_, end)| {
            next_event(&run.events, end, |e| {
                matches!(e, Event::AudioOutStart { .. })
            })
            .map(|e| e.t_ms as f64 - end as f64)
            .filter(|ms| *ms < PAUSE_AFTER_MS as f64)
        })
        .collect();
    table_header();
    report(
        "end of speech → the answer's own audio (event log)",
        &replies,
    );
}

fn barista(bench: &mut Bench) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/barista/dev");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the barista dev recordings (../shared/data/barista/dev)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    files.sort();
    files.truncate(BARISTA_RECORDINGS);
    let mut samples = vec![0.0; ms_to_sample(800)];
    let mut spans = vec![];
    for file in &files {
        let pcm = wav::read_wav(file)
            .unwrap()
            .to_mono()
            .resampled(SPEECH_RATE)
            .unwrap();
        // Speech ends where the recording's level last stands well above its noise floor.
        let end = speech_end(&pcm.samples);
        let start = samples.len();
        samples.extend_from_slice(&pcm.samples);
        spans.push((sample_to_ms(start) as u64, sample_to_ms(start + end) as u64));
        samples.extend(std::iter::repeat_n(0.0, ms_to_sample(5000)));
    }
    let recording = Recording { samples, spans };
    let run = bench.converse(
        recording,
        Responder::Domain("barista"),
        LoopConfig::default(),
    );
    let mut t = turns(&run, 4500.0);
    print_turns(
        &format!("real speech: {} barista dev recordings", files.len()),
        &run,
        &mut t,
    );
}

/// A recording cut where its speaker might hesitate: the audio before the gap with the
/// pause (room tone) after it, and the audio after the gap.
struct Hesitation {
    name: String,
    before: Vec<f32>,
    after: Vec<f32>,
    /// What the transcript of `before` lacks of the whole order.
    missing: Vec<String>,
    pause_ms: u64,
}

/// Middles of the gaps between words inside a recording's speech, in samples: 20 ms frames
/// 30 dB under the loudest, three or more in a row, a quarter second from either end.
fn word_gaps(samples: &[f32]) -> Vec<usize> {
    let frame = ms_to_sample(20);
    let level: Vec<f32> = samples
        .chunks(frame)
        .map(|c| 10.0 * (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32 + 1e-10).log10())
        .collect();
    let loudest = level.iter().cloned().fold(f32::MIN, f32::max);
    let loud = |l: &f32| *l > loudest - 30.0;
    let (Some(first), Some(last)) = (level.iter().position(loud), level.iter().rposition(loud))
    else {
        return Vec::new();
    };
    let mut gaps = Vec::new();
    let mut run = 0;
    for (i, l) in level.iter().enumerate().take(last).skip(first) {
        if loud(l) {
            if run >= 3 && i - run > first + 12 && i + 12 < last {
                gaps.push((i - run / 2) * frame);
            }
            run = 0;
        } else {
            run += 1;
        }
    }
    gaps
}

/// `len` samples of the room a recording was made in: its quietest 20 ms frames (the
/// quietest fifth), one after the other, as often as needed.
fn room_tone(samples: &[f32], len: usize) -> Vec<f32> {
    let frame = ms_to_sample(20);
    let mut frames: Vec<(f32, &[f32])> = samples
        .chunks_exact(frame)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>(), c))
        .collect();
    frames.sort_by(|a, b| a.0.total_cmp(&b.0));
    frames.truncate((frames.len() / 5).max(1));
    frames
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .cycle()
        .take(len)
        .collect()
}

/// Whether `heard` stops inside a value of the whole order: its last words begin a value of
/// several words but not all of it ("twelve" of "twelve ounce", "drip" of "drip coffee").
fn splits_a_value(heard: &str, whole: &serde_json::Value) -> bool {
    let words = |t: &str| -> Vec<String> {
        t.split_whitespace()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| !w.is_empty())
            .collect()
    };
    let said = words(heard);
    whole
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_str())
        .any(|value| {
            let value = words(value);
            (1..value.len()).any(|k| said.ends_with(&value[..k]))
        })
}

/// The barista recordings that can be cut at a gap where the speaker is mid-phrase: the
/// words before it lack a value of the whole order and stop where a sentence cannot end (on
/// "with", "of", "a bit"…) or inside a value of several words. The latest such gap in each,
/// a seeded pause of 0.4–1.2 s.
fn hesitations_of(models: &ModelDir, limit: usize) -> Vec<Hesitation> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/barista");
    let labels: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("dev/labels.json")).expect("the barista labels"),
    )
    .unwrap();
    let whisper = hark::stt::whisper::WhisperModel::load(&models.whisper("tiny.en-q8_0"), 2)
        .expect("run scripts/setup.sh");
    let mut session = whisper.session().unwrap();
    let domain = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/domains/barista");
    let mut manager = hark::dialogue::build_manager(&domain, models, 2, &Default::default())
        .expect("the barista domain");
    let mut rng = hark::rng::SplitMix::new(7);
    let mut names: Vec<&String> = labels.as_object().unwrap().keys().collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        if out.len() == limit {
            break;
        }
        let whole = &labels[name.as_str()]["slots"];
        let pcm = wav::read_wav(&dir.join("dev").join(name)).unwrap();
        let samples = pcm.to_mono().resampled(SPEECH_RATE).unwrap().samples;
        let cut = word_gaps(&samples).into_iter().rev().find_map(|at| {
            let heard = session
                .transcribe(&samples[..at], &Default::default())
                .ok()?
                .text;
            let said = manager.understand(&heard).ok()?.slots;
            let missing: Vec<String> = whole
                .as_object()?
                .iter()
                .filter(|(slot, value)| {
                    said.get(*slot).map(|v| v.trim()) != value.as_str().map(str::trim)
                })
                .map(|(slot, _)| slot.clone())
                .collect();
            let incomplete = !missing.is_empty()
                && (hark::vad::turn_end::ends_open(&heard) || splits_a_value(&heard, whole));
            incomplete.then_some((at, missing))
        });
        let Some((at, missing)) = cut else {
            continue;
        };
        let pause_ms = 400 + (rng.next_u64() % 9) * 100;
        // The pause is the recording's own room, not digital silence.
        let mut before = samples[..at].to_vec();
        before.extend(room_tone(&samples, ms_to_sample(pause_ms)));
        out.push(Hesitation {
            name: name.clone(),
            before,
            after: samples[at..].to_vec(),
            missing,
            pause_ms,
        });
    }
    out
}

/// `turns`: cut-offs and voice-to-voice on hesitating orders, with the end-of-turn model
/// and with the rule before it, back to back.
fn hesitations(bench: &mut Bench) {
    if bench.binary.is_some() {
        println!("\n(`turns` measures this build only)");
        return;
    }
    let cases = hesitations_of(&bench.models, 30);
    // Each order: the words before the gap, the pause, the rest; then 5 s for the reply.
    let mut samples = vec![0.0; ms_to_sample(800)];
    let mut marks = Vec::new();
    for case in &cases {
        samples.extend_from_slice(&case.before);
        let resumed_at = sample_to_ms(samples.len()) as u64;
        let paused_at = resumed_at - case.pause_ms;
        samples.extend_from_slice(&case.after);
        let end = samples.len() - case.after.len() + speech_end(&case.after);
        marks.push((paused_at, resumed_at, sample_to_ms(end) as u64));
        samples.extend(std::iter::repeat_n(0.0, ms_to_sample(7000)));
    }
    println!(
        "\n### hesitations: {} barista orders, each with a pause of 0.4–1.2 s where the order is not yet whole{}\n",
        cases.len(),
        if std::env::var("HARK_BENCH_CLOCK").as_deref() == Ok("simulated") {
            " (simulated time: engines take no time, so latency is the wait for the end of the turn alone)"
        } else {
            ""
        }
    );
    for case in cases.iter().take(5) {
        println!(
            "- {}: {} ms pause, missing {:?}",
            case.name, case.pause_ms, case.missing
        );
    }
    println!("\n| end of turn | cut-offs | answered | voice-to-voice P50 / P95 / max (ms) |");
    println!("|---|---|---|---|");
    let model = bench.turn_model.clone();
    for (label, turn_model) in [("end-of-turn model", model), ("transcript alone", None)] {
        if label == "end-of-turn model" && turn_model.is_none() {
            continue;
        }
        // `HARK_TURN_MODEL=only`: the model's run alone (the other does not change with its
        // weights).
        if label == "transcript alone" && std::env::var("HARK_TURN_MODEL").as_deref() == Ok("only")
        {
            continue;
        }
        let recording = Recording {
            samples: samples.clone(),
            spans: marks.iter().map(|&(_, _, end)| (end, end)).collect(),
        };
        let engines = Engines {
            recognizer: bench.recognizer.open_session().unwrap(),
            brain: bench.dialogue_brain("barista"),
            synthesizer: bench.synthesizer.clone(),
            turn_model,
        };
        let simulated = std::env::var("HARK_BENCH_CLOCK").as_deref() == Ok("simulated");
        let config = LoopConfig {
            clock: if simulated {
                hark::clock::Clock::Simulated
            } else {
                hark::clock::Clock::RealTime
            },
            ..Default::default()
        };
        let (run, _) = run_loop(recording, engines, config);
        let mut cut_offs = 0;
        let mut v2v = Vec::new();
        let verbose = std::env::var_os("HARK_BENCH_VERBOSE").is_some();
        for (&(paused_at, resumed_at, end), case) in marks.iter().zip(&cases) {
            let cut = first_sound(&run.played, paused_at).is_some_and(|t| t < resumed_at as f64);
            if cut {
                cut_offs += 1;
            }
            if verbose {
                let around = |from: u64, to: u64| -> Vec<String> {
                    run.events
                        .iter()
                        .filter(|e| e.t_ms >= from && e.t_ms <= to)
                        .filter(|e| {
                            matches!(e.event, Event::EndOfTurn { .. } | Event::Final { .. })
                        })
                        .map(|e| format!("{:?}", e.event))
                        .collect()
                };
                println!(
                    "{label} {} cut={cut} pause={} at pause: {:?}; at end: {:?}",
                    case.name,
                    case.pause_ms,
                    around(paused_at, resumed_at),
                    around(end, end + 3000)
                );
            }
            if let Some(t) = first_sound(&run.played, end).filter(|t| t - (end as f64) < 4500.0) {
                v2v.push(t - end as f64);
            }
        }
        let s = LatencySummary::from_samples(&v2v);
        println!(
            "| {label} | **{cut_offs} of {}** | {} | {} |",
            marks.len(),
            v2v.len(),
            s.map_or("–".into(), |s| format!(
                "{:.0} / {:.0} / {:.0}",
                s.p50_ms, s.p95_ms, s.max_ms
            ))
        );
    }
}

/// `hark run` on the recording, its speaker recording, events and summary read back.
fn run_binary(bin: &Path, models: &ModelDir, recording: Recording, domain: Option<&str>) -> Run {
    let dir = std::env::temp_dir().join(format!("hark-latency-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output, events) = (
        dir.join("in.wav"),
        dir.join("out.wav"),
        dir.join("ev.jsonl"),
    );
    wav::write_wav(
        &input,
        &hark::audio::Pcm::new(SPEECH_RATE, recording.samples.clone()),
    )
    .unwrap();
    let mut command = std::process::Command::new(bin);
    command
        .arg("--models")
        .arg(&models.root)
        .args(["run", "--store", "none", "--log", "none", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--events")
        .arg(&events)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match domain {
        Some(domain) => command.args(["--domain", domain]),
        None => command.arg("--keywords"),
    };
    let cpu_before = children_cpu_seconds();
    let out = command.output().expect("run the hark binary");
    let cpu_s = children_cpu_seconds() - cpu_before;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<RunSummary>(l).ok())
        .unwrap_or_default();
    let played = wav::read_wav(&output).unwrap().interleaved;
    let events = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<TimedEvent>(l).ok())
        .collect();
    std::fs::remove_dir_all(dir).ok();
    Run {
        recording,
        events,
        played,
        summary,
        cpu_s,
    }
}

/// CPU seconds used by this process's finished children.
fn children_cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is a valid target.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init()
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The end of the last 20 ms frame louder than a tenth of the loudest frame.
fn speech_end(samples: &[f32]) -> usize {
    let frame = ms_to_sample(20);
    let levels: Vec<f32> = samples
        .chunks(frame)
        .map(|c| (c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32).sqrt())
        .collect();
    let loudest = levels.iter().copied().fold(0.0, f32::max);
    levels
        .iter()
        .rposition(|&l| l > loudest / 10.0)
        .map_or(samples.len(), |i| ((i + 1) * frame).min(samples.len()))
}

/// Time from starting `hark run` to its greeting on stdout, and its peak memory.
fn startup(bench: &mut Bench) {
    let hark = std::env::var_os("HARK_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/hark"),
        PathBuf::from,
    );
    let recording = bench.say(&[
        Part::Silence(3500),
        Part::Say("What are your opening hours?"),
        Part::Silence(5000),
    ]);
    let dir = std::env::temp_dir().join(format!("hark-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("in.wav");
    wav::write_wav(
        &input,
        &hark::audio::Pcm::new(SPEECH_RATE, recording.samples),
    )
    .unwrap();
    println!("\n### start-up ({})\n", hark.display());
    println!("| voice | start → greeting printed (ms) | peak RSS (MiB) |");
    println!("|---|---|---|");
    for voice in ["piper", "espeak"] {
        let start = Instant::now();
        let mut child = std::process::Command::new(&hark)
            .arg("--models")
            .arg(&bench.models.root)
            .args(["run", "--store", "none", "--log", "none", "--voice", voice])
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(dir.join("out.wav"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run the hark binary (cargo build --release)");
        let pid = child.id();
        let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let watcher = {
            let peak = peak.clone();
            std::thread::spawn(move || loop {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status"));
                let Ok(status) = status else { break };
                if let Some(kib) = status
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                {
                    peak.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            })
        };
        let mut greeting_ms = None;
        for line in std::io::BufReader::new(child.stdout.take().unwrap())
            .lines()
            .map_while(Result::ok)
        {
            if greeting_ms.is_none() && line.contains("hark:") {
                greeting_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        let _ = child.wait();
        let _ = watcher.join();
        println!(
            "| {voice} | {} | {:.0} |",
            greeting_ms.map_or("–".into(), |ms| format!("{ms:.0}")),
            peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// One part of the benchmark.
type Section = fn(&mut Bench);

/// Resident memory of process `pid`, MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// What one client of `hark serve` heard: the audio (aligned frame for frame with what it
/// sent), the errors it was told, and when its first frame left.
#[derive(Default)]
struct Heard {
    played: Vec<f32>,
    errors: Vec<String>,
    started: Option<Instant>,
    /// Each audio message's first sample (an index into `played`) and when it arrived.
    arrivals: Vec<(usize, Instant)>,
}

/// One client of `hark serve`: streams `samples` (16 kHz) in real time.
async fn serve_client(url: String, samples: Arc<Vec<f32>>) -> Heard {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Ok((socket, _)) = tokio_tungstenite::connect_async(&url).await else {
        return Heard {
            errors: vec!["could not connect".into()],
            ..Default::default()
        };
    };
    let (mut tx, mut rx) = socket.split();
    let start = serde_json::json!({"type": "start", "sample_rate": SPEECH_RATE}).to_string();
    let _ = tx.send(Message::Text(start.into())).await;
    let started = Instant::now();
    let sender = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for frame in samples.chunks(320) {
            tick.tick().await;
            let bytes = hark::server::protocol::encode_pcm16(frame);
            if tx.send(Message::Binary(bytes.into())).await.is_err() {
                break;
            }
        }
        let stop = serde_json::json!({"type": "stop"}).to_string();
        let _ = tx.send(Message::Text(stop.into())).await;
        tx
    });
    let (mut played, mut errors, mut arrivals) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(Ok(message)) = rx.next().await {
        match message {
            Message::Binary(b) => {
                arrivals.push((played.len(), Instant::now()));
                let _ = hark::server::protocol::decode_pcm16(&b, &mut played);
            }
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if v["type"] == "error" {
                    errors.push(v["message"].as_str().unwrap_or("").to_string());
                }
                if v["type"] == "summary" {
                    break;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    let _ = sender.await;
    Heard {
        played,
        errors,
        started: Some(started),
        arrivals,
    }
}

impl Heard {
    /// When the first audible sample at or after `from_ms` (of the client's timeline)
    /// arrived.
    fn first_sound_arrived(&self, from_ms: u64) -> Option<Instant> {
        let sample = ms_to_sample(first_sound(&self.played, from_ms)?.round() as u64);
        let message = self.arrivals.partition_point(|&(at, _)| at <= sample);
        Some(self.arrivals.get(message.checked_sub(1)?)?.1)
    }
}

/// `one` repeated for at least `seconds`: the samples, and each request's span on that
/// timeline.
fn looped(one: &Recording, seconds: u64) -> (Arc<Vec<f32>>, Vec<(u64, u64)>) {
    let mut samples = Vec::new();
    let mut spans = Vec::new();
    while (samples.len() as u64) < seconds * SPEECH_RATE as u64 {
        let offset = samples.len() as u64 * 1000 / SPEECH_RATE as u64;
        spans.extend(one.spans.iter().map(|&(a, b)| (a + offset, b + offset)));
        samples.extend_from_slice(&one.samples);
    }
    (Arc::new(samples), spans)
}

/// A number from the environment, or `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// `hark serve` on a free loopback port, `n` conversations at once, nothing stored, with
/// `engines`' options and environment: the process and its ws:// address.
fn start_serve(bench: &Bench, n: usize, engines: &ServeEngines) -> (std::process::Child, String) {
    let hark = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/hark");
    let mut child = std::process::Command::new(&hark)
        .arg("--models")
        .arg(&bench.models.root)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "none",
            "--log",
            "none",
        ])
        .args(["--max-conversations", &n.to_string()])
        .args(&engines.args)
        .envs(engines.env.iter().map(|(k, v)| (k, v)))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run scripts/setup.sh to build target/release/hark");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("hark serve printed its address")
            .unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

/// `n` clients streaming `samples` to `url` at once: what each heard and was told.
fn run_clients(url: &str, samples: &Arc<Vec<f32>>, n: usize) -> Vec<Heard> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Users do not speak in unison: each starts 1.7 s after the one before.
        let clients: Vec<_> = (0..n)
            .map(|i| {
                let (url, samples) = (url.to_string(), samples.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(1700 * i as u64)).await;
                    serve_client(url, samples).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for c in clients {
            results.push(c.await.unwrap_or_default());
        }
        results
    })
}

/// Voice-to-voice of every request the clients heard answered within 5 s, and the errors
/// they were told.
fn answered_turns(results: &[Heard], spans: &[(u64, u64)]) -> (Vec<f64>, Vec<String>) {
    let (mut v2v, mut errors) = (Vec::new(), Vec::new());
    for heard in results {
        errors.extend(heard.errors.iter().cloned());
        for &(_, end) in spans {
            if let Some(first) =
                first_sound(&heard.played, end).filter(|f| f - (end as f64) < 5000.0)
            {
                v2v.push(first - end as f64);
            }
        }
    }
    (v2v, errors)
}

fn percentiles(v2v: &[f64]) -> (f64, f64, f64) {
    LatencySummary::from_samples(v2v).map_or((f64::NAN, f64::NAN, f64::NAN), |s| {
        (s.p50_ms, s.p95_ms, s.p99_ms)
    })
}

/// `hark serve` holding N conversations at once over loopback (real speech, Whisper, Piper,
/// the dialogue core), each a loop of the dialogue requests for `HARK_LOAD_SECONDS`
/// (default 600): voice-to-voice per turn, errors, the server's memory at start and end.
fn serve_load(bench: &mut Bench) {
    let seconds = env_number("HARK_LOAD_SECONDS", 600);
    let one = bench.say(&requests(DIALOGUE));
    let (samples, spans) = looped(&one, seconds);
    println!(
        "
### hark serve under load ({seconds} s of conversation per client)
"
    );
    println!("| conversations | voice-to-voice P50 | P95 | P99 | turns answered | errors | server RSS start → end (MiB) |");
    println!("|---|---|---|---|---|---|---|");
    // The capacity: the most conversations that, with every smaller number, keep the mark.
    let most = env_number("HARK_LOAD_MAX", 6) as usize;
    let mut largest_ok = 0;
    for n in 1..=most {
        let (mut child, url) = start_serve(bench, n, &ServeEngines::default());
        let rss_start = rss_mib(child.id());
        let results = run_clients(&url, &samples, n);
        let rss_end = rss_mib(child.id());
        let _ = child.kill();
        let _ = child.wait();
        let (v2v, errors) = answered_turns(&results, &spans);
        let (p50, p95, p99) = percentiles(&v2v);
        println!(
            "| {n} | {p50:.0} | {p95:.0} | {p99:.0} | {} of {} | {} | {rss_start:.0} → {rss_end:.0} |",
            v2v.len(),
            spans.len() * n,
            errors.len(),
        );
        let kept = p95 <= 800.0 && errors.is_empty() && v2v.len() == spans.len() * n;
        if kept && largest_ok == n - 1 {
            largest_ok = n;
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "
largest number of conversations with voice-to-voice P95 ≤ 800 ms, every turn answered and no errors: {largest_ok} ({:.1} per core on {cores} cores)",
        largest_ok as f64 / cores as f64
    );
}

/// The engines `hark serve` runs on in a load section: its options and environment.
#[derive(Default)]
struct ServeEngines {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// Each answered turn's voice-to-voice as the client lived it (the end of its request leaving
/// to the reply's first sound arriving), and hark's own share of it: that less the engines'
/// share, which is the recognizer's end of turn after the end of speech (its endpointing) and
/// a round trip each to the recognizer and to the voice. `ends` are the recognizer's, with
/// their connection; connections are matched to clients in the order of their first end of
/// turn (the clients start 1.7 s apart and say the same first request).
fn hark_shares(
    results: &[Heard],
    spans: &[(u64, u64)],
    ends: &[(usize, Instant)],
    rtt_ms: u64,
) -> (Vec<f64>, Vec<f64>) {
    let mut connections: Vec<usize> = Vec::new();
    for (c, _) in ends {
        if !connections.contains(c) {
            connections.push(*c);
        }
    }
    let (mut v2v, mut shares) = (Vec::new(), Vec::new());
    for (heard, connection) in results.iter().zip(&connections) {
        let Some(started) = heard.started else {
            continue;
        };
        let own_ends: Vec<Instant> = ends
            .iter()
            .filter(|(c, _)| c == connection)
            .map(|(_, t)| *t)
            .collect();
        for &(_, end) in spans {
            let spoken_end = started + Duration::from_millis(end);
            let Some(first) = heard
                .first_sound_arrived(end)
                .map(|at| at.saturating_duration_since(spoken_end).as_secs_f64() * 1000.0)
                .filter(|&ms| ms < 5000.0)
            else {
                continue;
            };
            v2v.push(first);
            let Some(turn_end) = own_ends.iter().find(|&&t| t >= spoken_end) else {
                continue;
            };
            let engines_ms =
                turn_end.duration_since(spoken_end).as_secs_f64() * 1000.0 + 2.0 * rtt_ms as f64;
            shares.push(first - engines_ms);
        }
    }
    (v2v, shares)
}

/// The most conversations that keep the mark, found by `keeps`: `from`, twice that, … up to
/// `most` (fewer than `from` taken as kept, from an earlier run), then halving the gap to
/// the first number that failed.
fn capacity(from: usize, most: usize, mut keeps: impl FnMut(usize) -> bool) -> usize {
    let (mut kept, mut failed) = (from / 2, None);
    let mut n = from.max(1);
    while n <= most {
        if !keeps(n) {
            failed = Some(n);
            break;
        }
        kept = n;
        n = if n == most {
            most + 1
        } else {
            (n * 2).min(most)
        };
    }
    if let Some(mut failed) = failed {
        while failed - kept > 1 {
            let mid = (kept + failed) / 2;
            if keeps(mid) {
                kept = mid;
            } else {
                failed = mid;
            }
        }
    }
    kept
}

/// `hark serve` on cloud engines (AssemblyAI and Cartesia: the tests' local protocol servers,
/// a simulated 40 ms round trip) holding more and more conversations, each a loop of the
/// dialogue requests for `HARK_LOAD_SECONDS` (default 120): voice-to-voice, hark's own share
/// of it, errors, the server's CPU; the capacity is the most conversations that keep
/// voice-to-voice P95 ≤ 800 ms with every turn answered and no error (at most
/// `HARK_LOAD_MAX`, default 48: anonymous clients may hold 56 of the 64 connections), and the
/// most of those tried whose hark share kept P95 ≤ 50 ms.
fn serve_cloud(bench: &mut Bench) {
    let seconds = env_number("HARK_LOAD_SECONDS", 120);
    let most = env_number("HARK_LOAD_MAX", 48) as usize;
    let one = bench.say(&requests(CLOUD_DIALOGUE));
    let (samples, spans) = looped(&one, seconds);
    println!(
        "
### hark serve on cloud engines under load (AssemblyAI + Cartesia protocol servers, {CLOUD_RTT_MS} ms round trip, {seconds} s per client)

| conversations | voice-to-voice P50 / P95 | hark's share P50 / P95 / P99 | turns answered | errors | recognizer connections | server CPU |
|---|---|---|---|---|---|---|"
    );
    let mut within_share = 0;
    let mut keeps = |n: usize| {
        let stt = cloud_fakes::assemblyai(cloud_fakes::SttScript {
            utterances: CLOUD_DIALOGUE.iter().map(|t| t.to_string()).collect(),
            rtt_ms: CLOUD_RTT_MS,
            ..Default::default()
        });
        let tts = cloud_fakes::cartesia(cloud_fakes::TtsScript {
            rtt_ms: CLOUD_RTT_MS,
            ..Default::default()
        });
        // AssemblyAI's own default minimum silence (hark asks for 160 ms): the protocol
        // server ends an utterance at any pause that long, where AssemblyAI's model would
        // hear that the sentence goes on, and Piper pauses inside some requests.
        let config =
            std::env::temp_dir().join(format!("hark-serve-cloud-{}.toml", std::process::id()));
        // The limit of conversations started per address and minute is for hostile
        // clients; every client here comes from one address.
        std::fs::write(
            &config,
            "[stt.assemblyai]\nmin_turn_silence_ms = 400\n[server.limits]\nstarts_per_minute = 0\n",
        )
        .unwrap();
        let engines = ServeEngines {
            args: vec![
                "--stt".into(),
                "assemblyai".into(),
                "--tts".into(),
                "cartesia".into(),
                "--config".into(),
                config.display().to_string(),
            ],
            env: vec![
                ("ASSEMBLYAI_API_KEY".into(), cloud_fakes::KEY.into()),
                ("CARTESIA_API_KEY".into(), cloud_fakes::KEY.into()),
                ("CARTESIA_VOICE_ID".into(), "voice1".into()),
                ("HARK_ASSEMBLYAI_URL".into(), stt.url()),
                ("HARK_CARTESIA_URL".into(), tts.url()),
            ],
        };
        let (mut child, url) = start_serve(bench, n, &engines);
        let cpu = || hark::telemetry::process_cpu_seconds(child.id()).unwrap_or(f64::NAN);
        let (cpu_start, clock) = (cpu(), Instant::now());
        let results = run_clients(&url, &samples, n);
        let cores = (cpu() - cpu_start) / clock.elapsed().as_secs_f64();
        let _ = child.kill();
        let _ = child.wait();
        let (_, errors) = answered_turns(&results, &spans);
        let log = stt.log();
        let (v2v, shares) = hark_shares(&results, &spans, &log.turn_ends, CLOUD_RTT_MS);
        let (p50, p95, _) = percentiles(&v2v);
        let (s50, s95, s99) = percentiles(&shares);
        println!(
            "| {n} | {p50:.0} / {p95:.0} | {s50:.0} / {s95:.0} / {s99:.0} | {} of {} | {} | {} | {cores:.2} cores |",
            v2v.len(),
            spans.len() * n,
            errors.len(),
            log.connections,
        );
        for e in errors.iter().take(3) {
            println!("error: {e}");
        }
        if log.turn_ends.len() != spans.len() * n {
            println!(
                "(the recognizer ended {} utterances for {} requests: its words may not match what was said)",
                log.turn_ends.len(),
                spans.len() * n
            );
        }
        if std::env::var_os("HARK_BENCH_VERBOSE").is_some() {
            let each: Vec<String> = shares.iter().map(|s| format!("{s:.0}")).collect();
            println!("hark's share of each turn (ms): {}", each.join(" "));
        }
        let whole = errors.is_empty() && v2v.len() == spans.len() * n;
        if whole && s95 <= 50.0 {
            within_share = within_share.max(n);
        }
        whole && p95 <= 800.0
    };
    let from = env_number("HARK_LOAD_FROM", 1) as usize;
    let kept = capacity(from, most, &mut keeps);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "
largest number of conversations with voice-to-voice P95 ≤ 800 ms, every turn answered and no errors: {kept} ({:.1} per core on {cores} cores; the clients and the protocol servers run on the same cores)
largest number tried with hark's share P95 ≤ 50 ms as well: {within_share}",
        kept as f64 / cores as f64
    );
}

/// The server's memory (MiB) and CPU seconds every 10 s, from when it is started until
/// `done` is set: (seconds since the start, RSS, CPU).
fn sample_every_10_s(
    pid: u32,
    done: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<(f64, f64, f64)>> {
    use std::sync::atomic::Ordering;
    std::thread::spawn(move || {
        let read = |at: Instant| {
            let cpu = hark::telemetry::process_cpu_seconds(pid).unwrap_or(f64::NAN);
            (at.elapsed().as_secs_f64(), rss_mib(pid), cpu)
        };
        let started = Instant::now();
        let mut series = Vec::new();
        while !done.load(Ordering::Relaxed) {
            series.push(read(started));
            let next = Duration::from_secs(10 * series.len() as u64);
            while started.elapsed() < next && !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        series.push(read(started));
        series
    })
}

/// The slope of a least-squares line through `points`, y per x.
fn slope(points: &[(f64, f64)]) -> f64 {
    if points.len() < 2 {
        return f64::NAN;
    }
    let k = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / k, b + y / k));
    let cov: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    cov / var
}

/// `hark serve` holding `HARK_SOAK_CONVERSATIONS` (default 2) conversations at once, each a
/// loop of the dialogue requests for `HARK_SOAK_SECONDS` (default 3600), with the server's
/// memory every 10 s: turns sent and answered, errors, voice-to-voice, CPU, and memory over
/// the run (the first minute apart: models and buffers settle there).
fn soak(bench: &mut Bench) {
    let seconds = env_number("HARK_SOAK_SECONDS", 3600);
    let n = env_number("HARK_SOAK_CONVERSATIONS", 2) as usize;
    let one = bench.say(&requests(DIALOGUE));
    let (samples, spans) = looped(&one, seconds);
    let (mut child, url) = start_serve(bench, n, &ServeEngines::default());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_every_10_s(child.id(), done.clone());
    let results = run_clients(&url, &samples, n);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let series = sampler.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let (v2v, errors) = answered_turns(&results, &spans);
    let (p50, p95, p99) = percentiles(&v2v);
    // Memory after the first minute, MiB per minute.
    let settled: Vec<(f64, f64)> = series
        .iter()
        .filter(|(t, rss, _)| *t >= 60.0 && rss.is_finite())
        .map(|(t, rss, _)| (t / 60.0, *rss))
        .collect();
    let growth = slope(&settled);
    let at = |t: f64| {
        series
            .iter()
            .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
            .map_or(f64::NAN, |s| s.1)
    };
    let (first, last) = (series.first().unwrap(), series.last().unwrap());
    let cpu_share = (last.2 - first.2) / (last.0 - first.0);
    println!(
        "
### Soak: {n} conversations on `hark serve` for {seconds} s

| turns sent / answered | errors | voice-to-voice P50 / P95 / P99 | server RSS at start / 1 min / end (MiB) | RSS after the first minute | server CPU |
|---|---|---|---|---|---|
| {} / {} | {} | {p50:.0} / {p95:.0} / {p99:.0} ms | {:.0} / {:.0} / {:.0} | {growth:+.2} MiB/min | {:.2} cores |",
        spans.len() * n,
        v2v.len(),
        errors.len(),
        first.1,
        at(60.0),
        last.1,
        cpu_share,
    );
    for e in errors.iter().take(5) {
        println!("error: {e}");
    }
    let rss: Vec<String> = series.iter().map(|(_, r, _)| format!("{r:.0}")).collect();
    println!("\nRSS every 10 s (MiB): {}", rss.join(" "));
}

/// The simulated network round trip to each cloud provider.
const CLOUD_RTT_MS: u64 = 40;

fn cloud(bench: &mut Bench) {
    use hark::cloud::Endpoint;
    use hark::stt::cloud::{assemblyai, deepgram, CloudRecognizer, SttProtocol};
    use hark::tts::cloud::{aura, cartesia, elevenlabs, CloudSynthesizer, TtsProtocol};
    let texts = &REQUESTS[..10];
    let script = cloud_fakes::SttScript {
        utterances: texts.iter().map(|t| t.to_string()).collect(),
        rtt_ms: CLOUD_RTT_MS,
        ..Default::default()
    };
    let voice = cloud_fakes::TtsScript {
        rtt_ms: CLOUD_RTT_MS,
        ..Default::default()
    };
    let endpoint = |provider, server: &cloud_fakes::FakeServer| {
        Endpoint::new(
            provider,
            "KEY",
            cloud_fakes::KEY,
            &server.url(),
            "wss://unused",
        )
        .unwrap()
    };
    println!(
        "\n### cloud engines (local protocol servers, {CLOUD_RTT_MS} ms round trip, keyword responder)\n"
    );
    println!("| engines | voice-to-voice P50 | P95 | engines' own P50 | hark adds P50 | P95 | answered | CPU s per audio s |");
    println!("|---|---|---|---|---|---|---|---|");
    for pair in [
        "deepgram + elevenlabs",
        "assemblyai + cartesia",
        "deepgram + aura",
    ] {
        let stt_server = if pair.starts_with("deepgram") {
            cloud_fakes::deepgram(script.clone())
        } else {
            cloud_fakes::assemblyai(script.clone())
        };
        let tts_server = match pair {
            "deepgram + elevenlabs" => cloud_fakes::elevenlabs(voice.clone()),
            "assemblyai + cartesia" => cloud_fakes::cartesia(voice.clone()),
            _ => cloud_fakes::aura(voice.clone()),
        };
        let stt: Arc<dyn SttProtocol> = if pair.starts_with("deepgram") {
            Arc::new(deepgram::Deepgram::new(
                endpoint("Deepgram", &stt_server),
                Default::default(),
            ))
        } else {
            Arc::new(assemblyai::AssemblyAi::new(
                endpoint("AssemblyAI", &stt_server),
                Default::default(),
            ))
        };
        let tts: Arc<dyn TtsProtocol> = match pair {
            "deepgram + elevenlabs" => Arc::new(
                elevenlabs::ElevenLabs::new(
                    endpoint("ElevenLabs", &tts_server),
                    "v".into(),
                    Default::default(),
                )
                .unwrap(),
            ),
            "assemblyai + cartesia" => Arc::new(
                cartesia::Cartesia::new(
                    endpoint("Cartesia", &tts_server),
                    "v".into(),
                    Default::default(),
                )
                .unwrap(),
            ),
            _ => Arc::new(
                aura::Aura::new(endpoint("Deepgram Aura", &tts_server), Default::default())
                    .unwrap(),
            ),
        };
        let recording = bench.say(&requests(texts));
        let recognizer = CloudRecognizer::new(stt, Default::default());
        let synthesizer: Arc<dyn Synthesizer> =
            Arc::new(CloudSynthesizer::new(tts, Default::default()));
        std::thread::sleep(Duration::from_millis(300));
        let engines = Engines {
            recognizer: recognizer.open_session().unwrap(),
            brain: Box::new(KeywordResponder::new()),
            synthesizer,
            turn_model: None,
        };
        let (run, started) = run_loop(recording, engines, LoopConfig::default());
        let t = turns(&run, 5000.0);
        // The engines' own share: the recognizer's end of turn reaching hark after the end
        // of speech (its endpointing and the round trip), then the voice's first audio (a
        // round trip).
        let ends = stt_server.log().turn_ends;
        let mut own = Vec::new();
        let mut added = Vec::new();
        for &(_, end) in &run.recording.spans {
            let spoken_end = started + Duration::from_millis(end);
            let Some(first) = first_sound(&run.played, end).filter(|f| f - (end as f64) < 5000.0)
            else {
                continue;
            };
            let Some(&(_, turn_end)) = ends.iter().find(|(_, e)| *e >= spoken_end) else {
                continue;
            };
            let stt_ms =
                (turn_end.duration_since(spoken_end).as_secs_f64() * 1000.0) + CLOUD_RTT_MS as f64;
            let engines_ms = stt_ms + CLOUD_RTT_MS as f64;
            own.push(engines_ms);
            added.push(first - end as f64 - engines_ms);
        }
        let p = |v: &[f64], q: f64| {
            LatencySummary::from_samples(v).map_or(f64::NAN, |s| {
                if q == 50.0 {
                    s.p50_ms
                } else {
                    s.p95_ms
                }
            })
        };
        let audio_s = run.recording.duration_ms() as f64 / 1000.0;
        println!(
            "| {pair} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} of {} | {:.3} |",
            p(&t.v2v, 50.0),
            p(&t.v2v, 95.0),
            p(&own, 50.0),
            p(&added, 50.0),
            p(&added, 95.0),
            t.answered,
            run.recording.spans.len(),
            run.cpu_s / audio_s
        );
    }
    println!("\n(CPU includes the local protocol servers, which run in the bench's process.)");
}

/// `hark serve --wyoming` as Home Assistant uses it, through the real `wyoming` client (one
/// connection per request): `describe`, a spoken request at 16 kHz mono (what Home Assistant
/// sends) to its `transcript`, and a reply to its first audio, in one piece and streamed.
fn wyoming(bench: &mut Bench) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hark = root.join("target/release/hark");
    let mut child = std::process::Command::new(&hark)
        .arg("--models")
        .arg(&bench.models.root)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "none",
            "--log",
            "none",
        ])
        .args(["--wyoming", "tcp://127.0.0.1:0"])
        .current_dir(root)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run scripts/setup.sh to build target/release/hark");
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("hark serve started").unwrap();
        if let Some(address) = line.strip_prefix("wyoming on tcp://") {
            break address.rsplit(':').next().unwrap().trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let client = |args: &[&str]| -> serde_json::Value {
        let out = std::process::Command::new("python3")
            .arg(root.join("tests/wyoming_client.py"))
            .args(["127.0.0.1", &port])
            .args(args)
            .env("PYTHONPATH", root.join("models/.cache/wyoming"))
            .output()
            .expect("python3");
        serde_json::from_slice(&out.stdout).unwrap_or_default()
    };
    let dir = std::env::temp_dir().join(format!("hark-bench-wyoming-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut describe = Vec::new();
    for _ in 0..20 {
        describe.extend(client(&["describe"])["ms"].as_f64());
    }
    let (mut transcript, mut exact) = (Vec::new(), 0);
    let (mut one_piece, mut streamed) = (Vec::new(), Vec::new());
    let normal = |t: &str| {
        t.to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ')
            .collect::<String>()
    };
    for (i, text) in DIALOGUE.iter().enumerate() {
        let recording = bench.say(&[Part::Silence(300), Part::Say(text), Part::Silence(300)]);
        let path = dir.join(format!("request-{i}.wav"));
        let pcm = hark::audio::Pcm {
            sample_rate: SPEECH_RATE,
            samples: recording.samples,
        };
        wav::write_wav(&path, &pcm).unwrap();
        let heard = client(&["transcribe", path.to_str().unwrap()]);
        transcript.extend(heard["ms"].as_f64());
        if normal(heard["text"].as_str().unwrap_or("")) == normal(text) {
            exact += 1;
        }
        let out = dir.join("reply.wav");
        one_piece.extend(
            client(&["synthesize", text, out.to_str().unwrap()])["first_audio_ms"].as_f64(),
        );
        streamed.extend(
            client(&["synthesize-streaming", text, out.to_str().unwrap()])["first_audio_ms"]
                .as_f64(),
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).ok();
    println!("\n### Wyoming (Home Assistant's client, one connection per request)\n");
    table_header();
    report("describe → info", &describe);
    report("audio-stop → transcript", &transcript);
    report("synthesize → first audio", &one_piece);
    report(
        "synthesize-start → first audio (streamed, a word each 10 ms)",
        &streamed,
    );
    println!(
        "\ntranscripts word for word: {exact} of {} requests",
        DIALOGUE.len()
    );
}

/// The first piece the local voice speaks of `reply` (its first clause, or first sentence).
fn first_piece(reply: &str) -> String {
    let mut splitter = tts::SentenceSplitter::new();
    let mut sentences = splitter.push(reply);
    sentences.extend(splitter.finish());
    let first = sentences.into_iter().next().unwrap_or_default();
    match tts::sentences::first_clause(&first) {
        Some((head, _)) => head.to_string(),
        None => first,
    }
}

/// Milliseconds from a reply's text going in to its first audio coming out; the rest of the
/// reply is spoken too (and so kept) before it returns.
fn first_audio_ms(voice: &dyn Synthesizer, reply: &str) -> f64 {
    let mut stream = voice.open_stream().expect("a synthesis stream");
    let input = stream.input();
    let start = Instant::now();
    input.push(reply);
    input.flush();
    let mut first = None;
    loop {
        match stream.poll() {
            Some(tts::stream::SynthesisEvent::Audio(_)) => {
                first.get_or_insert(start.elapsed().as_secs_f64() * 1000.0);
            }
            Some(tts::stream::SynthesisEvent::Done) => return first.expect("audio before done"),
            Some(tts::stream::SynthesisEvent::Failed(e)) => panic!("synthesis failed: {e}"),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_micros(200)),
        }
    }
}

fn tts_cache(bench: &mut Bench) {
    use hark::conversation::session::Session;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manager = hark::dialogue::build_manager(
        &root.join("config/domains/customer-service"),
        &bench.models,
        2,
        &Default::default(),
    )
    .expect("the default domain");
    let cache = Arc::new(hark::tts::cache::AudioCache::new("bench", None, 32 << 20));
    cache.allow(manager.domain().fixed_texts());
    let voice =
        hark::engines::local_voice(VoiceKind::Piper, &bench.models, hark::default_threads())
            .expect("run scripts/setup.sh")
            .with_cache(cache.clone());
    // A day's conversations: the same few requests, made by different people, again and again.
    let day: &[&[&str]] = &[
        &[
            "book an appointment",
            "a haircut",
            "tomorrow",
            "at 3pm",
            "yes",
            "bye",
        ],
        &["where is my order", "four five six seven", "thanks, bye"],
        &[
            "I forgot my password",
            "my work account",
            "jane dot doe at example dot com",
            "yes",
        ],
        &["what are your opening hours", "where are you", "bye"],
        &["help", "let me talk to a person"],
        &[
            "book a consultation on friday at ten",
            "no",
            "make it eleven",
            "yes",
        ],
        &["what's the weather like", "cancel", "goodbye"],
    ];
    let (mut cached, mut synthesized) = (Vec::new(), Vec::new());
    for _round in 0..4 {
        for script in day {
            let mut session = Session::anonymous();
            let mut replies = vec![manager.greet(&mut session)];
            for line in *script {
                replies.push(manager.handle(&mut session, line).expect("a reply").reply);
            }
            for reply in replies.iter().filter(|r| !r.trim().is_empty()) {
                let hit = cache.contains(&first_piece(reply));
                let ms = first_audio_ms(&voice, reply);
                if hit {
                    cached.push(ms);
                } else {
                    synthesized.push(ms);
                }
            }
        }
    }
    let stats = cache.stats();
    println!(
        "\n### Cache of fixed wording (Piper; {} scripted conversations)\n",
        4 * day.len()
    );
    table_header();
    report("text → first audio, first piece cached", &cached);
    report("text → first audio, first piece synthesized", &synthesized);
    println!(
        "\nfixed-wording pieces served from the cache: {:.1} % ({} of {}); replies whose first audio was cached: {} of {}",
        100.0 * stats.hits as f64 / (stats.hits + stats.misses).max(1) as f64,
        stats.hits,
        stats.hits + stats.misses,
        cached.len(),
        cached.len() + synthesized.len()
    );
}

fn main() {
    let sections: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // The load section takes 40 minutes at its default length: only when named.
    let wanted = |name: &str| {
        (sections.is_empty() && !matches!(name, "serve-load" | "serve-cloud" | "soak"))
            || sections.iter().any(|s| s == name)
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = ModelDir::new(root.join("models"));
    let threads = hark::default_threads();
    let model = std::env::var("HARK_BENCH_MODEL")
        .unwrap_or_else(|_| hark::config::Settings::default().stt.model);
    let recognizer =
        hark::engines::whisper_recognizer(&models, &model, threads, Default::default())
            .expect("run scripts/setup.sh");
    let synthesizer = hark::engines::local_synthesizer(VoiceKind::Piper, &models, threads)
        .expect("run scripts/setup.sh");
    let user_voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let binary = std::env::var_os("HARK_BIN").map(PathBuf::from);
    let turn_model = (std::env::var("HARK_TURN_MODEL").as_deref() != Ok("off"))
        .then(|| hark::engines::turn_model(&Default::default(), &models))
        .flatten();
    let mut bench = Bench {
        binary,
        models,
        recognizer,
        synthesizer,
        user_voice,
        turn_model,
    };
    match &bench.binary {
        Some(bin) => println!(
            "hark voice loop, real time: `{} run` (Whisper tiny.en, Piper)",
            bin.display()
        ),
        None => println!("hark voice loop, real time: streaming Whisper {model} + Piper"),
    }
    println!(
        "machine: {}; {threads} inference threads; end-of-turn model: {}",
        machine(),
        if bench.turn_model.is_some() {
            "on"
        } else {
            "off (the transcript alone)"
        }
    );
    let all: [(&str, Section); 16] = [
        ("keywords", keywords),
        ("dialogue", dialogue),
        ("knowledge", knowledge),
        ("local-llm", local_llm),
        ("barge-in", barge_in),
        ("backchannel", backchannel),
        ("load", load),
        ("barista", barista),
        ("startup", startup),
        ("cloud", cloud),
        ("wyoming", wyoming),
        ("tts-cache", tts_cache),
        ("turns", hesitations),
        ("serve-load", serve_load),
        ("serve-cloud", serve_cloud),
        ("soak", soak),
    ];
    for (name, section) in all {
        if wanted(name) {
            section(&mut bench);
        }
    }
}
