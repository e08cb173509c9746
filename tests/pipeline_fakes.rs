//! The streaming seams are engine-neutral: a whole conversation runs through the real loop,
//! VAD, endpointer and turn machine with a scripted recognizer and a tone synthesizer in
//! place of Whisper and Piper (no model files). The user's side is spoken by espeak-ng so
//! the VAD hears real speech.

mod common;

use std::sync::Arc;

use common::conversation::{self, Part};
use hark::audio::file::{WavFileSink, WavFileSource};
use hark::audio::{wav, SPEECH_RATE};
use hark::clock::Clock;
use hark::dialogue::builtin::KeywordResponder;
use hark::pipeline::{run_voice_loop, Engines, LoopConfig};
use hark::stt::recognizer::{
    Recognizer, RecognizerCapabilities, RecognizerEvent, RecognizerSession, SpeechHint,
};
use hark::stt::SttError;
use hark::telemetry::events::{Event, EventLog, StopReason, TimedEvent};
use hark::tts::stream::{stream_pair, SynthesisEvent, SynthesisStream, Synthesizer, TextCommand};
use hark::tts::{SentenceSplitter, TtsError};

/// Recognizes the `n`-th utterance as `script[n]`, as a cloud engine with its own
/// endpointing would: interim text while the user talks, a final that ends the turn at the
/// first pause.
struct ScriptedRecognizer {
    script: Vec<&'static str>,
}

struct ScriptedSession {
    script: Vec<&'static str>,
    next: usize,
    current: Option<&'static str>,
    events: std::collections::VecDeque<RecognizerEvent>,
    phrases_seen: usize,
}

impl Recognizer for ScriptedRecognizer {
    fn name(&self) -> &str {
        "scripted"
    }
    fn capabilities(&self) -> RecognizerCapabilities {
        RecognizerCapabilities {
            interim_results: true,
            endpointing: true,
        }
    }
    fn open_session(&self) -> Result<Box<dyn RecognizerSession>, SttError> {
        Ok(Box::new(ScriptedSession {
            script: self.script.clone(),
            next: 0,
            current: None,
            events: Default::default(),
            phrases_seen: 0,
        }))
    }
}

impl RecognizerSession for ScriptedSession {
    fn push_audio(&mut self, _samples: &[f32]) {}

    fn hint(&mut self, hint: SpeechHint) {
        match hint {
            SpeechHint::Started { .. } => {
                let text = self.script.get(self.next).copied().unwrap_or("");
                self.next += 1;
                self.current = Some(text);
                let first = text.split_whitespace().next().unwrap_or("");
                self.events
                    .push_back(RecognizerEvent::Interim { text: first.into() });
            }
            SpeechHint::Paused { .. } => {
                if let Some(text) = self.current {
                    self.events.push_back(RecognizerEvent::Final {
                        text: text.into(),
                        end_of_turn: true,
                        latency_ms: None,
                    });
                }
            }
            SpeechHint::Stopped { .. } => {
                let text = self.current.take().unwrap_or("");
                self.events.push_back(RecognizerEvent::Final {
                    text: text.into(),
                    end_of_turn: true,
                    latency_ms: None,
                });
            }
            SpeechHint::Resumed => {}
            SpeechHint::TurnEnded | SpeechHint::Discarded => self.current = None,
        }
    }

    fn expect_phrases(&mut self, phrases: &[String]) {
        self.phrases_seen += phrases.len();
    }

    fn poll(&mut self) -> Option<RecognizerEvent> {
        self.events.pop_front()
    }

    fn busy(&self) -> bool {
        !self.events.is_empty()
    }
}

/// Speaks every sentence as a 440 Hz tone, 60 ms a word, on a thread per stream.
struct ToneSynthesizer;

const TONE_RATE: u32 = 16_000;
const WORD_MS: usize = 60;

impl Synthesizer for ToneSynthesizer {
    fn name(&self) -> &str {
        "tone"
    }
    fn sample_rate(&self) -> u32 {
        TONE_RATE
    }
    fn open_stream(&self) -> Result<SynthesisStream, TtsError> {
        let (stream, driver) = stream_pair(TONE_RATE);
        std::thread::spawn(move || {
            let mut splitter = SentenceSplitter::new();
            let mut position = 0u64;
            let mut speak = |sentence: String| {
                let n = sentence.split_whitespace().count() * WORD_MS * TONE_RATE as usize / 1000;
                let tone: Vec<f32> = (0..n)
                    .map(|i| {
                        (i as f32 * 440.0 * std::f32::consts::TAU / TONE_RATE as f32).sin() * 0.3
                    })
                    .collect();
                let end = position + n as u64;
                let ok = driver.send(SynthesisEvent::Mark {
                    text: sentence,
                    start: position,
                    end,
                }) && driver.send(SynthesisEvent::Audio(tone));
                position = end;
                ok
            };
            while let Ok(command) = driver.text.recv() {
                match command {
                    TextCommand::Text(text) => {
                        for sentence in splitter.push(&text) {
                            if !speak(sentence) {
                                return;
                            }
                        }
                    }
                    TextCommand::Flush => {
                        if let Some(rest) = splitter.finish() {
                            speak(rest);
                        }
                        driver.send(SynthesisEvent::Done);
                        return;
                    }
                }
            }
        });
        Ok(stream)
    }
}

struct Outcome {
    events: Vec<TimedEvent>,
    played: Vec<f32>,
    spans: Vec<(u64, u64)>,
}

fn converse(name: &str, parts: &[Part], script: Vec<&'static str>) -> Outcome {
    let mut user = hark::tts::espeak::EspeakVoice::new("en-us", 165).expect("espeak-ng");
    let recording = conversation::build(&mut user, parts);
    let engines = Engines {
        recognizer: ScriptedRecognizer { script }.open_session().unwrap(),
        brain: Box::new(KeywordResponder::new()),
        synthesizer: Arc::new(ToneSynthesizer),
        turn_model: None,
    };
    let dir = common::temp_dir(name);
    let out = dir.join("speaker.wav");
    // Simulated time: the fakes answer at once, and the conversation runs as fast as the
    // machine goes, the same on every run.
    let mut source = WavFileSource::from_samples(recording.samples.clone(), SPEECH_RATE, false);
    let mut sink = WavFileSink::create(&out, SPEECH_RATE).unwrap();
    let mut log = EventLog::recording();
    run_voice_loop(
        LoopConfig {
            clock: Clock::Simulated,
            ..Default::default()
        },
        &mut source,
        &mut sink,
        engines,
        &mut log,
    )
    .expect("the loop runs to the end");
    let played = wav::read_wav(&out).unwrap().interleaved;
    std::fs::remove_dir_all(dir).ok();
    for e in log.events() {
        eprintln!("{:>6} {:?}", e.t_ms, e.event);
    }
    Outcome {
        events: log.events().to_vec(),
        played,
        spans: recording.spans,
    }
}

fn texts(o: &Outcome, pick: impl Fn(&Event) -> Option<&String>) -> Vec<String> {
    o.events
        .iter()
        .filter_map(|e| pick(&e.event).cloned())
        .collect()
}

#[test]
fn a_conversation_runs_on_fake_engines() {
    let o = converse(
        "fakes-two-turns",
        &[
            Part::Silence(500),
            Part::Say("Hello there."),
            Part::Silence(3000),
            Part::Say("Where is my order?"),
            Part::Silence(3000),
        ],
        vec!["Hello there.", "Where is my order?"],
    );
    let finals = texts(&o, |e| match e {
        Event::Final { text, .. } => Some(text),
        _ => None,
    });
    assert_eq!(finals, vec!["Hello there.", "Where is my order?"]);
    let replies = texts(&o, |e| match e {
        Event::Reply { text, .. } => Some(text),
        _ => None,
    });
    assert_eq!(
        replies,
        vec![
            "Hello!",
            "How can I help you today?",
            "I can check your order.",
            "What is your order number?"
        ]
    );
    // Each turn ended on the engine's word, 200 ms into the pause, and the tone followed.
    for &(_, end) in &o.spans {
        assert!(
            conversation::rms(&o.played, SPEECH_RATE, end + 400, end + 900) > 0.05,
            "no reply after {end}"
        );
        assert!(
            conversation::rms(&o.played, SPEECH_RATE, end, end + 150) < 1e-4,
            "reply before the user finished at {end}"
        );
    }
}

#[test]
fn a_barge_in_keeps_what_was_heard_on_fake_engines() {
    let o = converse(
        "fakes-barge-in",
        &[
            Part::Silence(500),
            // The keyword responder answers in 17 words: about a second of tone.
            Part::Say("I would like to book a table."),
            Part::Silence(650),
            Part::Say("What time is it?"),
            Part::Silence(3000),
        ],
        vec!["I would like to book a table.", "What time is it?"],
    );
    let (t, spoken) = o
        .events
        .iter()
        .find_map(|e| match &e.event {
            Event::BargeIn { spoken, .. } => Some((e.t_ms, spoken.clone())),
            _ => None,
        })
        .expect("a barge-in");
    let answer = "Sure, I can help you book that. For how many people, and at what time?";
    let heard = spoken.trim_end_matches('…').trim();
    assert!(
        !heard.is_empty() && heard.len() < answer.len() && answer.starts_with(heard),
        "{spoken:?}"
    );
    let interruption = o.spans[1].0;
    // Paused at the onset; stopped once 200 ms of voice make the words believable.
    assert!(
        t >= interruption + 200 && t < interruption + 400,
        "{t} vs {interruption}"
    );
    assert!(o.events.iter().any(|e| matches!(
        e.event,
        Event::AudioOutStop {
            reason: StopReason::BargeIn,
            ..
        }
    )));
    assert!(
        conversation::rms(
            &o.played,
            SPEECH_RATE,
            interruption + 100,
            interruption + 600
        ) < 1e-4,
        "the reply went on playing"
    );
    let replies = texts(&o, |e| match e {
        Event::Reply { text, .. } => Some(text),
        _ => None,
    });
    assert!(replies.last().unwrap().starts_with("It is"), "{replies:?}");
}

#[test]
fn the_same_conversation_in_simulated_time_is_the_same_every_time() {
    let parts = [
        Part::Silence(500),
        Part::Say("I would like to book a table."),
        Part::Silence(650),
        Part::Say("What time is it?"),
        Part::Silence(2000),
    ];
    let script = vec!["I would like to book a table.", "What time is it?"];
    let first = converse("fakes-same-1", &parts, script.clone());
    let second = converse("fakes-same-2", &parts, script);
    assert_eq!(first.events, second.events);
    assert_eq!(first.played, second.played);
}
