//! hark's cloud engines against local servers that speak each provider's exact protocol
//! (`common::cloud`): Deepgram and AssemblyAI recognizing real speech audio (the words are
//! the server's script, when it hears them is the audio's), ElevenLabs, Cartesia and Aura
//! speaking, the failure cases each provider is known for, and failover to the local
//! engines with real Whisper and Piper.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cloud::{self, FakeServer, SttScript, TtsScript, KEY};
use common::conversation::{self, Part};
use hark::cloud::Endpoint;
use hark::stt::cloud::assemblyai::{AssemblyAi, AssemblyAiSettings};
use hark::stt::cloud::deepgram::{Deepgram, DeepgramSettings};
use hark::stt::cloud::{CloudRecognizer, CloudSttConfig, SttProtocol};
use hark::stt::failover::FailoverRecognizer;
use hark::stt::recognizer::{Recognizer, RecognizerEvent, RecognizerSession, SpeechHint};
use hark::tts::cloud::aura::{Aura, AuraSettings};
use hark::tts::cloud::cartesia::{Cartesia, CartesiaSettings};
use hark::tts::cloud::elevenlabs::{ElevenLabs, ElevenLabsSettings};
use hark::tts::cloud::{CloudSynthesizer, CloudTtsConfig, TtsProtocol};
use hark::tts::failover::FailoverSynthesizer;
use hark::tts::stream::{SynthesisEvent, SynthesisStream, Synthesizer};

const ORDER: &str = "Can you check the status of my order?";

fn endpoint(provider: &'static str, var: &'static str, server: &FakeServer, key: &str) -> Endpoint {
    Endpoint::new(provider, var, key, &server.url(), "wss://unused").unwrap()
}

fn deepgram_at(server: &FakeServer, key: &str) -> Arc<dyn SttProtocol> {
    Arc::new(Deepgram::new(
        endpoint("Deepgram", "DEEPGRAM_API_KEY", server, key),
        DeepgramSettings::default(),
    ))
}

fn assemblyai_at(server: &FakeServer, key: &str) -> Arc<dyn SttProtocol> {
    Arc::new(AssemblyAi::new(
        endpoint("AssemblyAI", "ASSEMBLYAI_API_KEY", server, key),
        AssemblyAiSettings::default(),
    ))
}

/// Speech of `text` by the Piper voice, with silence before and after, at 16 kHz.
fn speech(text: &str) -> (Vec<f32>, (u64, u64)) {
    speech_after(400, text)
}

fn speech_after(silence_ms: u64, text: &str) -> (Vec<f32>, (u64, u64)) {
    let mut voice =
        hark::tts::open_voice(hark::tts::VoiceKind::Piper, &common::models(), 2).unwrap();
    let recording = conversation::build(
        voice.as_mut(),
        &[
            Part::Silence(silence_ms),
            Part::Say(text),
            Part::Silence(2500),
        ],
    );
    (recording.samples.clone(), recording.spans[0])
}

/// Streams `audio` into `session` in real time (20 ms frames), giving the hints the local
/// endpointer would at `span` (start, end) plus a 600 ms hangover, and collects events
/// until `done` holds of them or `limit` passes.
fn stream_utterance(
    session: &mut dyn RecognizerSession,
    audio: &[f32],
    span: (u64, u64),
    limit: Duration,
    done: impl Fn(&[RecognizerEvent]) -> bool,
) -> Vec<RecognizerEvent> {
    let mut events = Vec::new();
    let start = Instant::now();
    let mut sent_ms = 0u64;
    let (mut started, mut stopped) = (false, false);
    loop {
        let due = start.elapsed().as_millis() as u64;
        while sent_ms + 20 <= due && (sent_ms as usize * 16) < audio.len() {
            let from = sent_ms as usize * 16;
            session.push_audio(&audio[from..(from + 320).min(audio.len())]);
            sent_ms += 20;
            if !started && sent_ms >= span.0 + 60 {
                started = true;
                session.hint(SpeechHint::Started {
                    audio_from_ms: span.0,
                });
            }
            if started && !stopped && sent_ms >= span.1 + 600 {
                stopped = true;
                session.hint(SpeechHint::Stopped {
                    audio_to_ms: span.1,
                });
            }
        }
        while let Some(e) = session.poll() {
            events.push(e);
        }
        if done(&events) || start.elapsed() > limit {
            return events;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn end_of_turn(events: &[RecognizerEvent]) -> Option<&str> {
    events.iter().find_map(|e| match e {
        RecognizerEvent::Final {
            text,
            end_of_turn: true,
            ..
        } => Some(text.as_str()),
        _ => None,
    })
}

fn has_end(events: &[RecognizerEvent]) -> bool {
    end_of_turn(events).is_some()
}

fn config() -> CloudSttConfig {
    CloudSttConfig {
        finalize_timeout_ms: 700,
        keepalive_ms: 4000,
        connect_timeout_ms: 2000,
        close_wait_ms: 2000,
    }
}

fn script(never_ends_turns: bool, ignores_finalize: bool) -> SttScript {
    SttScript {
        utterances: vec![ORDER.into()],
        never_ends_turns,
        ignores_finalize,
        ..Default::default()
    }
}

#[test]
fn deepgram_interim_results_come_before_the_final_that_ends_the_turn() {
    let server = cloud::deepgram(script(false, false));
    let recognizer = CloudRecognizer::new(deepgram_at(&server, KEY), config());
    let mut session = recognizer.open_session().unwrap();
    session.expect_phrases(&["order status".into()]);
    let (audio, span) = speech(ORDER);
    let events = stream_utterance(
        session.as_mut(),
        &audio,
        span,
        Duration::from_secs(8),
        |e| {
            e.iter()
                .filter(|e| {
                    matches!(
                        e,
                        RecognizerEvent::Final {
                            end_of_turn: true,
                            ..
                        }
                    )
                })
                .count()
                >= 2
        },
    );
    eprintln!("{events:#?}");
    let first_interim = events
        .iter()
        .position(|e| matches!(e, RecognizerEvent::Interim { .. }));
    let first_final = events
        .iter()
        .position(|e| matches!(e, RecognizerEvent::Final { .. }));
    assert!(first_interim.unwrap() < first_final.unwrap(), "{events:?}");
    assert_eq!(end_of_turn(&events), Some(ORDER));
    // Deepgram ended the turn before the local hangover; the owed final after Stopped is
    // the same text, and it is the only other one.
    let ends: Vec<_> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                RecognizerEvent::Final {
                    end_of_turn: true,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(ends.len(), 2, "{events:?}");
    session.finish();
    let closing = Instant::now();
    while session.busy() && closing.elapsed() < Duration::from_secs(3) {
        while session.poll().is_some() {}
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!session.busy(), "the session closed");
    let log = server.log();
    assert!(
        log.texts.iter().any(|t| t == r#"{"type":"CloseStream"}"#),
        "{:?}",
        log.texts
    );
    assert_eq!(log.empty_frames, 0, "never an empty binary frame");
    // Deepgram takes key terms only at the handshake: the expected phrases came after the
    // session opened, so it reopened between utterances with them.
    assert_eq!(log.uris.len(), 2, "{:?}", log.uris);
    assert!(
        log.uris[1].contains("keyterm=order%20status"),
        "{:?}",
        log.uris
    );
}

#[test]
fn when_speech_final_never_comes_the_local_endpoint_finalizes() {
    let server = cloud::deepgram(script(true, false));
    let recognizer = CloudRecognizer::new(deepgram_at(&server, KEY), config());
    let mut session = recognizer.open_session().unwrap();
    let (audio, span) = speech(ORDER);
    let events = stream_utterance(
        session.as_mut(),
        &audio,
        span,
        Duration::from_secs(8),
        has_end,
    );
    assert_eq!(end_of_turn(&events), Some(ORDER), "{events:?}");
    assert!(server
        .log()
        .texts
        .iter()
        .any(|t| t == r#"{"type":"Finalize"}"#));
}

#[test]
fn a_finalize_without_an_answer_ends_the_turn_on_what_was_heard() {
    let server = cloud::deepgram(script(true, true));
    let recognizer = CloudRecognizer::new(deepgram_at(&server, KEY), config());
    let mut session = recognizer.open_session().unwrap();
    let (audio, span) = speech(ORDER);
    let started = Instant::now();
    let events = stream_utterance(
        session.as_mut(),
        &audio,
        span,
        Duration::from_secs(8),
        has_end,
    );
    // The words were final (is_final) but the turn never ended: the session stops waiting
    // 700 ms after the local endpoint.
    assert_eq!(end_of_turn(&events), Some(ORDER), "{events:?}");
    let stopped_at = span.1 + 600;
    let took = started.elapsed().as_millis() as u64;
    assert!(
        took >= stopped_at + 650,
        "waited for the provider first: {took} ms"
    );
}

#[test]
fn keepalives_hold_a_silent_socket_open_and_without_them_deepgram_closes_it() {
    let idle = SttScript {
        idle_timeout_ms: 1500,
        ..Default::default()
    };
    // With keepalives every 500 ms: one connection, never closed.
    let server = cloud::deepgram(idle.clone());
    let recognizer = CloudRecognizer::new(
        deepgram_at(&server, KEY),
        CloudSttConfig {
            keepalive_ms: 500,
            ..config()
        },
    );
    let mut session = recognizer.open_session().unwrap();
    std::thread::sleep(Duration::from_millis(3500));
    while session.poll().is_some() {}
    let log = server.log();
    assert_eq!((log.connections, log.closes.len()), (1, 0), "{log:?}");
    assert!(
        log.texts
            .iter()
            .filter(|t| *t == r#"{"type":"KeepAlive"}"#)
            .count()
            >= 4
    );
    // With keepalives less often than the server's timeout: closed with NET-0001, and the
    // session reconnects.
    let server = cloud::deepgram(idle);
    let recognizer = CloudRecognizer::new(
        deepgram_at(&server, KEY),
        CloudSttConfig {
            keepalive_ms: 5000,
            ..config()
        },
    );
    let mut session = recognizer.open_session().unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let mut events = Vec::new();
    while let Some(e) = session.poll() {
        events.push(e);
    }
    let log = server.log();
    assert!(log.closes[0].starts_with("1011 NET-0001"), "{log:?}");
    assert_eq!(log.connections, 2, "reconnected: {log:?}");
    assert!(
        matches!(&events[0], RecognizerEvent::Error { message } if message.contains("NET-0001") && message.contains("reconnecting")),
        "{events:?}"
    );
}

#[test]
fn a_refused_key_is_not_retried_and_names_its_variable() {
    let server = cloud::deepgram(SttScript::default());
    let recognizer = CloudRecognizer::new(deepgram_at(&server, "wrong-key"), config());
    let mut session = recognizer.open_session().unwrap();
    let start = Instant::now();
    let failed = loop {
        if let Some(e) = session.poll() {
            break e;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "no answer");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        failed,
        RecognizerEvent::Failed {
            message: "Deepgram refused the key (HTTP 401); check DEEPGRAM_API_KEY".into()
        }
    );
    std::thread::sleep(Duration::from_millis(500));
    let log = server.log();
    assert_eq!((log.refused, log.connections), (1, 0), "no retry: {log:?}");
    assert!(!format!("{failed:?}").contains("wrong-key"));
}

#[test]
fn a_connection_lost_mid_utterance_is_replaced_and_the_utterance_heard_again() {
    let server = cloud::deepgram(SttScript {
        utterances: vec![ORDER.into(), ORDER.into()],
        closes_mid_utterance: true,
        ..Default::default()
    });
    let recognizer = CloudRecognizer::new(deepgram_at(&server, KEY), config());
    let mut session = recognizer.open_session().unwrap();
    let (audio, span) = speech(ORDER);
    let events = stream_utterance(
        session.as_mut(),
        &audio,
        span,
        Duration::from_secs(8),
        has_end,
    );
    eprintln!("{events:#?}");
    assert_eq!(end_of_turn(&events), Some(ORDER), "{events:?}");
    assert!(events.iter().any(
        |e| matches!(e, RecognizerEvent::Error { message } if message.contains("reconnecting"))
    ));
    assert_eq!(server.log().connections, 2);
}

#[test]
fn assemblyai_turns_and_force_endpoint() {
    // AssemblyAI's own end of turn.
    let server = cloud::assemblyai(script(false, false));
    let recognizer = CloudRecognizer::new(assemblyai_at(&server, KEY), config());
    let mut session = recognizer.open_session().unwrap();
    session.expect_phrases(&["order".into()]);
    let (audio, span) = speech(ORDER);
    let events = stream_utterance(
        session.as_mut(),
        &audio,
        span,
        Duration::from_secs(8),
        has_end,
    );
    assert_eq!(
        end_of_turn(&events).map(str::to_lowercase),
        Some(ORDER.to_lowercase()),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, RecognizerEvent::Interim { .. })));
    let log = server.log();
    assert!(
        log.texts
            .iter()
            .any(|t| t.contains("UpdateConfiguration") && t.contains("\"order\"")),
        "{:?}",
        log.texts
    );
    // No end of its own: ForceEndpoint at the local endpoint ends it.
    let server = cloud::assemblyai(script(true, false));
    let recognizer = CloudRecognizer::new(assemblyai_at(&server, KEY), config());
    let mut session = recognizer.open_session().unwrap();
    let events = stream_utterance(
        session.as_mut(),
        &audio,
        span,
        Duration::from_secs(8),
        has_end,
    );
    assert_eq!(end_of_turn(&events), Some(ORDER), "{events:?}");
    assert!(server
        .log()
        .texts
        .iter()
        .any(|t| t == r#"{"type":"ForceEndpoint"}"#));
    session.finish();
    std::thread::sleep(Duration::from_millis(300));
    assert!(server
        .log()
        .texts
        .iter()
        .any(|t| t == r#"{"type":"Terminate"}"#));
}

#[test]
fn an_assemblyai_refusal_fails_the_session_and_local_whisper_takes_over() {
    let server = cloud::assemblyai_refusing();
    let cloud_engine: Arc<dyn Recognizer> = Arc::new(CloudRecognizer::new(
        assemblyai_at(&server, "bad"),
        config(),
    ));
    let recognizer = FailoverRecognizer::new(cloud_engine, Some(common::recognizer()));
    let mut session = recognizer.open_session().unwrap();
    let (audio, span) = speech(ORDER);
    let events = stream_utterance(
        session.as_mut(),
        &audio,
        span,
        Duration::from_secs(10),
        has_end,
    );
    eprintln!("{events:#?}");
    assert!(
        events.iter().any(|e| matches!(e, RecognizerEvent::Error { message } if message.contains("4001") && message.contains("going on with whisper"))),
        "{events:?}"
    );
    // Real recognition of the real audio by the local engine.
    let text = end_of_turn(&events).unwrap().to_lowercase();
    assert!(text.contains("status") && text.contains("order"), "{text}");
    assert_eq!(server.log().connections, 1, "not retried");
}

// ---------------------------------------------------------------------------------------
// Text to speech.

fn elevenlabs_at(server: &FakeServer) -> Arc<dyn TtsProtocol> {
    Arc::new(
        ElevenLabs::new(
            endpoint("ElevenLabs", "ELEVENLABS_API_KEY", server, KEY),
            "voice1".into(),
            ElevenLabsSettings {
                sample_rate: 16_000,
                ..Default::default()
            },
        )
        .unwrap(),
    )
}

fn cartesia_at(server: &FakeServer) -> Arc<dyn TtsProtocol> {
    Arc::new(
        Cartesia::new(
            endpoint("Cartesia", "CARTESIA_API_KEY", server, KEY),
            "voice1".into(),
            CartesiaSettings::default(),
        )
        .unwrap(),
    )
}

fn aura_at(server: &FakeServer) -> Arc<dyn TtsProtocol> {
    Arc::new(
        Aura::new(
            endpoint("Deepgram Aura", "DEEPGRAM_API_KEY", server, KEY),
            AuraSettings::default(),
        )
        .unwrap(),
    )
}

/// Everything a stream produces until it ends (or `limit`).
fn drain(stream: &mut SynthesisStream, limit: Duration) -> Vec<SynthesisEvent> {
    let start = Instant::now();
    let mut events = Vec::new();
    while start.elapsed() < limit {
        match stream.poll() {
            Some(e) => {
                let end = matches!(e, SynthesisEvent::Done | SynthesisEvent::Failed(_));
                events.push(e);
                if end {
                    break;
                }
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    events
}

fn audio_len(events: &[SynthesisEvent]) -> usize {
    events
        .iter()
        .map(|e| match e {
            SynthesisEvent::Audio(a) => a.len(),
            _ => 0,
        })
        .sum()
}

fn marks(events: &[SynthesisEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SynthesisEvent::Mark { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

const REPLY: [&str; 2] = ["Your order is on its way. ", "It should arrive tomorrow."];

fn speak_reply(synthesizer: &dyn Synthesizer) -> Vec<SynthesisEvent> {
    let mut stream = synthesizer.open_stream().unwrap();
    let input = stream.input();
    for piece in REPLY {
        assert!(input.push(piece));
    }
    input.flush();
    drain(&mut stream, Duration::from_secs(10))
}

fn assert_whole_reply(events: &[SynthesisEvent], rate: usize) {
    assert_eq!(
        events.last(),
        Some(&SynthesisEvent::Done),
        "{:?}",
        events.last()
    );
    assert_eq!(
        marks(events),
        vec!["Your order is on its way.", "It should arrive tomorrow."]
    );
    // 50 ms per character of the tone the fake speaks.
    let chars: usize = REPLY.iter().map(|s| s.trim().chars().count()).sum();
    let expected = chars * rate / 20;
    let got = audio_len(events);
    assert!(got >= expected * 9 / 10, "{got} samples for {expected}");
}

#[test]
fn each_cloud_voice_speaks_a_reply_with_marks_for_its_sentences() {
    for (name, server, protocol) in [
        {
            let s = cloud::elevenlabs(TtsScript::default());
            let p = elevenlabs_at(&s);
            ("elevenlabs", s, p)
        },
        {
            let s = cloud::cartesia(TtsScript::default());
            let p = cartesia_at(&s);
            ("cartesia", s, p)
        },
        {
            let s = cloud::aura(TtsScript::default());
            let p = aura_at(&s);
            ("aura", s, p)
        },
    ] {
        let rate = protocol.sample_rate() as usize;
        let synthesizer = CloudSynthesizer::new(protocol, CloudTtsConfig::default());
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            server.log().connections,
            1,
            "{name}: the socket opens before the first reply"
        );
        let events = speak_reply(&synthesizer);
        eprintln!("{name}: {:?}", marks(&events));
        assert_whole_reply(&events, rate);
        // A second reply goes over the same socket.
        let events = speak_reply(&synthesizer);
        assert_whole_reply(&events, rate);
        assert_eq!(server.log().connections, 1, "{name}");
    }
}

#[test]
fn a_cancelled_reply_stops_at_once_mid_sentence() {
    for (name, server, protocol, stop) in [
        {
            let s = cloud::elevenlabs(TtsScript {
                speed: 1.0,
                ..Default::default()
            });
            let p = elevenlabs_at(&s);
            ("elevenlabs", s, p, r#""close_context":true"#)
        },
        {
            let s = cloud::cartesia(TtsScript {
                speed: 1.0,
                ..Default::default()
            });
            let p = cartesia_at(&s);
            ("cartesia", s, p, r#""cancel":true"#)
        },
        {
            let s = cloud::aura(TtsScript {
                speed: 1.0,
                ..Default::default()
            });
            let p = aura_at(&s);
            ("aura", s, p, r#"{"type":"Clear"}"#)
        },
    ] {
        let synthesizer = CloudSynthesizer::new(protocol, CloudTtsConfig::default());
        let mut stream = synthesizer.open_stream().unwrap();
        let input = stream.input();
        input.push("This is a rather long sentence that takes several seconds to say out loud.");
        input.flush();
        let start = Instant::now();
        while !matches!(stream.poll(), Some(SynthesisEvent::Audio(_))) {
            assert!(start.elapsed() < Duration::from_secs(3), "{name}: no audio");
            std::thread::sleep(Duration::from_millis(5));
        }
        stream.cancel();
        assert_eq!(stream.poll(), None, "{name}: nothing after the cancel");
        assert!(!input.push("More."), "{name}: the dialogue is told to stop");
        std::thread::sleep(Duration::from_millis(300));
        let log = server.log();
        assert!(
            log.texts.iter().any(|t| t.contains(stop)),
            "{name}: {:?}",
            log.texts
        );
        // The next reply is heard in full.
        let events = speak_reply(&synthesizer);
        assert_eq!(
            events.last(),
            Some(&SynthesisEvent::Done),
            "{name}: {events:?}"
        );
        assert_eq!(marks(&events).len(), 2, "{name}");
    }
}

#[test]
fn fast_barge_ins_never_open_more_than_five_elevenlabs_contexts() {
    let server = cloud::elevenlabs(TtsScript {
        speed: 1.0,
        ..Default::default()
    });
    let synthesizer = CloudSynthesizer::new(elevenlabs_at(&server), CloudTtsConfig::default());
    for _ in 0..12 {
        let mut stream = synthesizer.open_stream().unwrap();
        stream
            .input()
            .push("Sure, I can help you with that request right away.");
        stream.input().flush();
        std::thread::sleep(Duration::from_millis(40));
        stream.cancel();
    }
    let events = speak_reply(&synthesizer);
    let log = server.log();
    assert!(log.max_contexts <= 5, "{log:?}");
    assert!(log.closes.is_empty(), "{:?}", log.closes);
    assert_eq!(log.connections, 1);
    assert_eq!(events.last(), Some(&SynthesisEvent::Done), "{events:?}");
}

#[test]
fn a_voice_that_fails_mid_reply_goes_on_in_the_local_voice() {
    let server = cloud::elevenlabs(TtsScript {
        fails_after_chunks: Some(2),
        ..Default::default()
    });
    let cloud_voice: Arc<dyn Synthesizer> = Arc::new(CloudSynthesizer::new(
        elevenlabs_at(&server),
        CloudTtsConfig::default(),
    ));
    let synthesizer = FailoverSynthesizer::new(cloud_voice, Some(common::piper()));
    let started = Instant::now();
    let mut stream = synthesizer.open_stream().unwrap();
    let input = stream.input();
    for piece in REPLY {
        input.push(piece);
    }
    input.flush();
    let events = drain(&mut stream, Duration::from_secs(10));
    assert_eq!(
        events.last(),
        Some(&SynthesisEvent::Done),
        "{:?}",
        marks(&events)
    );
    // The cloud said part of the first sentence; the local voice said both in full.
    assert_eq!(
        marks(&events),
        vec!["Your order is on its way.", "It should arrive tomorrow."]
    );
    assert!(
        audio_len(&events) > 16_000 * 2,
        "the local voice's audio, resampled"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.log().closes, vec!["1011 failure mid-reply"]);
}

// ---------------------------------------------------------------------------------------
// Whole conversations: `hark run` with cloud engines chosen by configuration alone.

struct RunOutcome {
    events: Vec<serde_json::Value>,
    played: Vec<f32>,
    stdout: String,
}

/// `hark run --input q.wav --output a.wav` with `args` and `env`, on a spoken request.
fn hark_run(name: &str, args: &[&str], env: &[(&str, String)]) -> (RunOutcome, (u64, u64)) {
    let dir = common::temp_dir(name);
    // After the greeting, as a user would.
    let (audio, span) = speech_after(4000, ORDER);
    let input = dir.join("q.wav");
    hark::audio::wav::write_wav(&input, &hark::audio::Pcm::new(16_000, audio)).unwrap();
    let (output, events) = (dir.join("a.wav"), dir.join("events.jsonl"));
    let models = common::models();
    let out = std::process::Command::new(common::hark_bin())
        .args([
            "--models",
            models.root.to_str().unwrap(),
            "run",
            "--store",
            "none",
            "--log",
            "none",
        ])
        .args([
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
        ])
        .args(["--events", events.to_str().unwrap()])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(common::root())
        .output()
        .unwrap();
    let stdout = common::stdout(&out);
    eprintln!("{stdout}\n{}", common::stderr(&out));
    assert!(out.status.success(), "{}", common::stderr(&out));
    let events = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let played = hark::audio::wav::read_wav(&output).unwrap();
    assert_eq!(played.sample_rate, 16_000);
    std::fs::remove_dir_all(dir).ok();
    (
        RunOutcome {
            events,
            played: played.interleaved,
            stdout,
        },
        span,
    )
}

fn events_of<'a>(o: &'a RunOutcome, kind: &str) -> Vec<&'a serde_json::Value> {
    o.events.iter().filter(|e| e["event"] == kind).collect()
}

fn assert_answered(o: &RunOutcome, span: (u64, u64), heard: &str) {
    let finals = events_of(o, "final");
    assert!(
        finals
            .iter()
            .any(|f| f["text"].as_str().unwrap().to_lowercase().contains(heard)),
        "{finals:?}"
    );
    let reply = events_of(o, "reply");
    assert!(reply.len() >= 2, "the greeting and the answer: {reply:?}");
    // The answer is heard on the speaker after the question.
    let rms = conversation::rms(&o.played, 16_000, span.1 + 400, span.1 + 2400);
    assert!(rms > 0.01, "no answer audio after the question (rms {rms})");
}

#[test]
fn hark_run_holds_a_conversation_on_each_pair_of_cloud_engines() {
    let (dg, el, aai, ca, aura) = (
        cloud::deepgram(script(false, false)),
        cloud::elevenlabs(TtsScript::default()),
        cloud::assemblyai(script(false, false)),
        cloud::cartesia(TtsScript::default()),
        cloud::aura(TtsScript::default()),
    );
    let key = || KEY.to_string();
    let env = vec![
        ("DEEPGRAM_API_KEY", key()),
        ("ASSEMBLYAI_API_KEY", key()),
        ("ELEVENLABS_API_KEY", key()),
        ("CARTESIA_API_KEY", key()),
        ("ELEVENLABS_VOICE_ID", "voice1".into()),
        ("CARTESIA_VOICE_ID", "voice1".into()),
        ("HARK_DEEPGRAM_URL", dg.url()),
        ("HARK_ELEVENLABS_URL", el.url()),
        ("HARK_ASSEMBLYAI_URL", aai.url()),
        ("HARK_CARTESIA_URL", ca.url()),
    ];
    // Aura shares Deepgram's key and address variable.
    let mut aura_env = env.clone();
    aura_env.retain(|(k, _)| *k != "HARK_DEEPGRAM_URL");
    aura_env.push(("HARK_DEEPGRAM_URL", aura.url()));
    // Three conversations at once: each is paced by its recording, not by the machine.
    let (dg_el, aai_ca, aura_run) = std::thread::scope(|scope| {
        type Env = Vec<(&'static str, String)>;
        let run = |name: &'static str, args: &'static [&'static str], env: Env| {
            scope.spawn(move || hark_run(name, args, &env))
        };
        let a = run(
            "cloud-dg-el",
            &["--stt", "deepgram", "--tts", "elevenlabs"],
            env.clone(),
        );
        let b = run(
            "cloud-aai-ca",
            &["--stt", "assemblyai", "--tts", "cartesia"],
            env.clone(),
        );
        let c = run("cloud-aura", &["--tts", "aura"], aura_env.clone());
        (a.join().unwrap(), b.join().unwrap(), c.join().unwrap())
    });
    let (o, span) = dg_el;
    assert_answered(&o, span, "status of my order");
    assert!(
        events_of(&o, "error").is_empty(),
        "{:?}",
        events_of(&o, "error")
    );
    assert!(el.log().texts.iter().any(|t| t.contains("close_context")));
    let (o, span) = aai_ca;
    assert_answered(&o, span, "status of my order");
    assert!(ca
        .log()
        .texts
        .iter()
        .any(|t| t.contains(r#""continue":false"#)));
    let (o, span) = aura_run;
    assert_answered(&o, span, "status of my order");
    assert!(aura
        .log()
        .texts
        .iter()
        .any(|t| t.contains(r#""type":"Speak""#)));
}

#[test]
fn with_refused_keys_hark_run_goes_on_with_the_local_engines() {
    let (dg, el) = (
        cloud::deepgram(script(false, false)),
        cloud::elevenlabs(TtsScript::default()),
    );
    let env = vec![
        ("DEEPGRAM_API_KEY", "wrong".to_string()),
        ("ELEVENLABS_API_KEY", "wrong".to_string()),
        ("ELEVENLABS_VOICE_ID", "voice1".into()),
        ("HARK_DEEPGRAM_URL", dg.url()),
        ("HARK_ELEVENLABS_URL", el.url()),
    ];
    let (o, span) = hark_run(
        "cloud-failover",
        &["--stt", "deepgram", "--tts", "elevenlabs"],
        &env,
    );
    // Real local recognition and a real local voice.
    assert_answered(&o, span, "order");
    let errors: Vec<String> = events_of(&o, "error")
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        errors
            .iter()
            .any(|m| m.contains("check DEEPGRAM_API_KEY") && m.contains("going on with")),
        "{errors:?}"
    );
    assert!(
        !o.stdout.contains("wrong") && !format!("{errors:?}").contains("wrong"),
        "keys stay secret"
    );
}
