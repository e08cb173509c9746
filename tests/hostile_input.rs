//! Every parser that reads outside input, fed what a hostile or broken peer could send
//! (property-based, bounded so it runs in CI): none may panic, and the ones with a meaning
//! to keep keep it (an SSE stream reads the same however it is split; PCM decodes to half as
//! many samples as bytes).

use std::sync::Arc;

use hark::cloud::Endpoint;
use hark::dialogue::sse::SseDecoder;
use hark::server::auth::{request_token, Tokens};
use hark::server::protocol::{decode_pcm16, parse_client_message};
use hark::stt::cloud::assemblyai::AssemblyAi;
use hark::stt::cloud::deepgram::Deepgram;
use hark::stt::cloud::turns::{Heard, TurnAssembler};
use hark::stt::cloud::SttProtocol;
use hark::stt::recognizer::{RecognizerEvent, SpeechHint};
use hark::tts::cloud::aura::Aura;
use hark::tts::cloud::cartesia::Cartesia;
use hark::tts::cloud::elevenlabs::ElevenLabs;
use hark::tts::cloud::TtsProtocol;
use proptest::prelude::*;
use tokio_tungstenite::tungstenite::Message;

fn endpoint(provider: &'static str) -> Endpoint {
    Endpoint::new(provider, "KEY", "k", "ws://127.0.0.1:9", "wss://x").unwrap()
}

fn stt_protocols() -> Vec<Arc<dyn SttProtocol>> {
    vec![
        Arc::new(Deepgram::new(endpoint("Deepgram"), Default::default())),
        Arc::new(AssemblyAi::new(endpoint("AssemblyAI"), Default::default())),
    ]
}

fn tts_protocols() -> Vec<Arc<dyn TtsProtocol>> {
    vec![
        Arc::new(ElevenLabs::new(endpoint("ElevenLabs"), "v".into(), Default::default()).unwrap()),
        Arc::new(Cartesia::new(endpoint("Cartesia"), "v".into(), Default::default()).unwrap()),
        Arc::new(Aura::new(endpoint("Aura"), Default::default()).unwrap()),
    ]
}

/// Strings that look like the JSON these parsers expect, with its parts swapped about.
fn jsonish() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "type",
        "text",
        "sample_rate",
        "user",
        "channel",
        "alternatives",
        "transcript",
        "is_final",
        "speech_final",
        "words",
        "word_is_final",
        "end_of_turn",
        "turn_order",
        "audio",
        "alignment",
        "chars",
        "charStartTimesMs",
        "charDurationsMs",
        "isFinal",
        "contextId",
        "context_id",
        "data",
        "word_timestamps",
        "end",
        "status_code",
        "error",
    ]);
    let values = prop::sample::select(vec![
        "\"Results\"",
        "\"Turn\"",
        "\"start\"",
        "\"stop\"",
        "\"chunk\"",
        "\"timestamps\"",
        "\"done\"",
        "\"error\"",
        "true",
        "false",
        "null",
        "-1",
        "1e309",
        "0",
        "4294967296",
        "\"\"",
        "\"AAAA\"",
        "\"@@@\"",
        "[]",
        "[1,2]",
        "[\"a\"]",
        "{}",
        "{\"alternatives\":[]}",
        "[{\"text\":\"x\"}]",
        "{\"words\":[\"a\"],\"end\":[]}",
        "\"é\"",
    ]);
    prop::collection::vec((keys, values), 0..8).prop_map(|pairs| {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn control_messages_never_panic(text in prop_oneof![jsonish(), any::<String>()]) {
        let _ = parse_client_message(&text);
    }

    #[test]
    fn pcm_frames_decode_whole_samples_or_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let mut out = Vec::new();
        match decode_pcm16(&bytes, &mut out) {
            Ok(()) => {
                prop_assert_eq!(out.len(), bytes.len() / 2);
                prop_assert!(out.iter().all(|s| s.is_finite() && s.abs() <= 1.0));
            }
            Err(_) => prop_assert!(bytes.len() % 2 == 1),
        }
    }

    #[test]
    fn an_sse_stream_reads_the_same_however_it_is_split(
        events in prop::collection::vec("[a-zA-Z0-9 {}\":,é€]{0,40}", 0..6),
        crlf in any::<bool>(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let stream: String = events.iter().map(|e| format!("data: {e}{eol}{eol}")).collect();
        let bytes = stream.as_bytes();
        let whole = SseDecoder::new().push(bytes).unwrap();
        prop_assert_eq!(&whole, &events);
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.sort();
        let mut decoder = SseDecoder::new();
        let mut got = Vec::new();
        let mut from = 0;
        for cut in at {
            got.extend(decoder.push(&bytes[from..cut]).unwrap());
            from = cut;
        }
        got.extend(decoder.push(&bytes[from..]).unwrap());
        prop_assert_eq!(got, events);
    }

    #[test]
    fn sse_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let mut decoder = SseDecoder::new();
        let _ = decoder.push(&bytes);
        let _ = decoder.finish();
    }

    #[test]
    fn cloud_speech_messages_never_panic(text in prop_oneof![jsonish(), any::<String>()], bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        for protocol in stt_protocols() {
            let mut reader = protocol.reader();
            let _ = reader.read(&text);
        }
        for protocol in tts_protocols() {
            let _ = protocol.read(&Message::text(text.clone()));
            let _ = protocol.read(&Message::binary(bytes.clone()));
        }
    }

    #[test]
    fn tokens_files_and_request_tokens_never_panic(text in any::<String>(), header in any::<Option<String>>(), query in any::<Option<String>>()) {
        let _ = Tokens::parse(&text);
        let _ = request_token(header.as_deref(), query.as_deref());
    }

    /// Any bytes a client sends before its request head ends: parsed, asked for more, or
    /// refused; a head that parses answers an upgrade either way.
    #[test]
    fn http_request_heads_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), text in "[ -~\r\n]{0,600}") {
        for raw in [bytes.as_slice(), text.as_bytes()] {
            if let Ok(Some((head, used))) = hark::server::http::parse_head(raw) {
                prop_assert!(used <= raw.len());
                let _ = hark::server::http::upgrade_response(&head);
                let _ = head.is_upgrade();
            }
        }
    }

    /// A webhook's reply is a JSON object of fields or a clear error, whatever it holds.
    #[test]
    fn webhook_replies_are_fields_or_refused(text in prop_oneof![jsonish(), any::<String>()]) {
        if let Ok(fields) = hark::dialogue::actions::reply_fields("http://backend", &text) {
            let object_or_nothing = text.trim().is_empty() || text.trim_start().starts_with('{');
            prop_assert!(object_or_nothing);
            prop_assert!(fields.len() <= text.len());
        }
    }

    /// Whatever a provider says and whenever the endpointer speaks, each `Stopped` gets at
    /// most one final that ends the turn, and a final is owed only while one is due.
    #[test]
    fn the_turn_assembler_owes_one_final_per_stop(steps in prop::collection::vec(0u8..9, 0..60)) {
        let mut turns = TurnAssembler::new(300);
        let mut now = 0u64;
        let mut out = Vec::new();
        let (mut stops, mut provider_ends, mut ended) = (0usize, 0usize, 0usize);
        for step in steps {
            now += 50;
            let before = out.len();
            match step {
                0 => { turns.hint(SpeechHint::Started { audio_from_ms: now }, now, &mut out); }
                1 => { stops += 1; turns.hint(SpeechHint::Stopped { audio_to_ms: now }, now, &mut out); }
                2 => { turns.hint(SpeechHint::TurnEnded, now, &mut out); }
                3 => { turns.hint(SpeechHint::Discarded, now, &mut out); }
                4 => turns.heard(Heard::Tail("uh".into()), now, &mut out),
                5 => turns.heard(Heard::Settled("words".into()), now, &mut out),
                6 => { provider_ends += 1; turns.heard(Heard::EndOfTurn, now, &mut out) }
                7 => turns.tick(now + 400, &mut out),
                _ => turns.heard(Heard::SpeechStarted, now, &mut out),
            }
            ended += out[before..].iter().filter(|e| matches!(e, RecognizerEvent::Final { end_of_turn: true, .. })).count();
        }
        let before = out.len();
        turns.tick(now + 10_000, &mut out);
        ended += out[before..].iter().filter(|e| matches!(e, RecognizerEvent::Final { end_of_turn: true, .. })).count();
        prop_assert!(!turns.owes_final(), "an owed final always comes by its deadline");
        prop_assert!(ended <= stops + provider_ends, "{ended} ends for {stops} stops and {provider_ends} provider ends");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// WAV headers and bodies as a broken recorder or an attacker could write them.
    #[test]
    fn wav_files_are_read_or_refused(tail in prop::collection::vec(any::<u8>(), 0..400), rate in any::<u32>(), channels in any::<u16>(), bits in any::<u16>(), format in 0u16..4) {
        let mut header = Vec::new();
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&(36 + tail.len() as u32).to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&16u32.to_le_bytes());
        header.extend_from_slice(&format.to_le_bytes());
        header.extend_from_slice(&channels.to_le_bytes());
        header.extend_from_slice(&rate.to_le_bytes());
        header.extend_from_slice(&rate.wrapping_mul(4).to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&bits.to_le_bytes());
        header.extend_from_slice(b"data");
        header.extend_from_slice(&(tail.len() as u32).to_le_bytes());
        header.extend_from_slice(&tail);
        let path = std::env::temp_dir().join(format!("hark-fuzz-{}.wav", std::process::id()));
        std::fs::write(&path, &header).unwrap();
        if let Ok(audio) = hark::audio::wav::read_wav(&path) {
            prop_assert!((4000..=768_000).contains(&audio.sample_rate));
            prop_assert!(audio.interleaved.iter().all(|s| s.is_finite()));
            let _ = audio.to_mono().resampled(16_000);
        }
        std::fs::remove_file(&path).ok();
    }

    /// Domain files as a careless operator could write them: loaded or refused, no panic.
    #[test]
    fn domain_files_are_loaded_or_refused(text in prop_oneof![
        any::<String>(),
        "\\[(persona|policy|intents\\.[a-z]{1,6}|slots\\.[a-z]{1,6})\\]\n[a-z_]{1,10} = (\"[a-z {}]{0,12}\"|[0-9.]{1,4}|\\[\"[a-z ]{0,10}\"\\]|true)\n",
    ]) {
        let dir = std::env::temp_dir().join(format!("hark-fuzz-domain-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("flows")).unwrap();
        std::fs::write(dir.join("domain.toml"), &text).unwrap();
        let _ = hark::domain::load(&dir);
        std::fs::remove_dir_all(&dir).ok();
    }

    /// Whatever a user says or types is masked without a panic, and no address survives.
    #[test]
    fn any_text_is_redacted(text in prop_oneof![
        any::<String>(),
        "([a-z0-9.@…’,]{1,8} ){0,12}(at|dot|born|name is|call me|street|apartment|[0-9]{1,5}) ?[a-z0-9@.…’]{0,8}",
    ]) {
        let masked = hark::telemetry::redact::redact(&text);
        prop_assert!(!masked.contains('@'), "{text:?} → {masked:?}");
    }

    /// A model file that is not whole is refused by the check, never passed on.
    #[test]
    fn damaged_model_files_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..600), magic in any::<bool>()) {
        let mut file = Vec::new();
        if magic {
            file.extend_from_slice(&0x6767_6d6cu32.to_le_bytes());
        }
        file.extend_from_slice(&bytes);
        let path = std::env::temp_dir().join(format!("hark-fuzz-{}.bin", std::process::id()));
        std::fs::write(&path, &file).unwrap();
        prop_assert!(hark::models::convert::ggml::check_ggml_file(&path).is_err());
        std::fs::remove_file(&path).ok();
    }
}
