//! A phone call through Twilio Media Streams: a local client speaking Twilio's exact protocol
//! (`connected`, `start` with the μ-law format and TwiML parameters, 20 ms `media` in real
//! time, `mark` echoed once played, `stop`) holds a spoken conversation with `hark serve` at
//! `/twilio`, talks over a long reply and gets `clear`, and hears the next answer.

mod common;

use std::time::Duration;

use base64::Engine;
use common::conversation::{self, Part};
use common::server::start_server_with;
use futures_util::{SinkExt, StreamExt};
use hark::audio::{mulaw, resample, SPEECH_RATE};
use hark::stt::{TranscribeOptions, Transcriber};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const TOKEN: &str = "phone-line-token-0123456789";
const SID: &str = "MZ00000000000000000000000000000001";

/// What came back over a call.
#[derive(Default)]
struct Call {
    /// hark's voice at 8 kHz, one sample per sample sent (hark paces its audio to the call).
    heard: Vec<f32>,
    /// (ms into the call, mark name).
    marks: Vec<(u64, String)>,
    /// ms into the call of each `clear`.
    clears: Vec<u64>,
    closed: bool,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Streams `audio` (8 kHz) over a call as Twilio does, 20 ms every 20 ms.
async fn call(url: &str, parameters: Value, audio: &[f32]) -> Call {
    let (socket, _) = tokio_tungstenite::connect_async(format!("{url}/twilio"))
        .await
        .expect("the handshake");
    let (mut tx, mut rx) = socket.split();
    let send = |v: Value| Message::Text(v.to_string().into());
    tx.send(send(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
    ))
    .await
    .unwrap();
    tx.send(send(json!({
        "event": "start", "sequenceNumber": "1", "streamSid": SID,
        "start": {
            "accountSid": "AC00000000000000000000000000000001", "streamSid": SID,
            "callSid": "CA00000000000000000000000000000001", "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": parameters,
        }
    })))
    .await
    .unwrap();
    let mut result = Call::default();
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    let started = tokio::time::Instant::now();
    let mut chunks = audio.chunks(160).enumerate();
    let mut sequence = 2;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let Some((i, chunk)) = chunks.next() else { break };
                let mut bytes = Vec::new();
                mulaw::encode_from_f32(chunk, &mut bytes);
                let media = json!({
                    "event": "media", "sequenceNumber": sequence.to_string(), "streamSid": SID,
                    "media": {"track": "inbound", "chunk": (i + 1).to_string(),
                              "timestamp": (i * 20).to_string(), "payload": b64(&bytes)}
                });
                sequence += 1;
                if tx.send(send(media)).await.is_err() {
                    result.closed = true;
                    break;
                }
            }
            message = rx.next() => {
                let Some(Ok(Message::Text(text))) = message else {
                    result.closed = true;
                    break;
                };
                let at = started.elapsed().as_millis() as u64;
                let message: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(message["streamSid"], SID, "{message}");
                match message["event"].as_str().unwrap() {
                    "media" => {
                        let payload = message["media"]["payload"].as_str().unwrap();
                        let bytes = base64::engine::general_purpose::STANDARD.decode(payload).unwrap();
                        mulaw::decode_to_f32(&bytes, &mut result.heard);
                    }
                    "mark" => {
                        let name = message["mark"]["name"].as_str().unwrap().to_string();
                        // Played at once (no jitter buffer here): Twilio sends it back.
                        tx.send(send(json!({"event": "mark", "sequenceNumber": sequence.to_string(),
                            "streamSid": SID, "mark": {"name": name}}))).await.unwrap();
                        sequence += 1;
                        result.marks.push((at, name));
                    }
                    "clear" => result.clears.push(at),
                    other => panic!("Twilio has no '{other}' message: {message}"),
                }
            }
        }
    }
    if !result.closed {
        let stop = json!({"event": "stop", "sequenceNumber": sequence.to_string(), "streamSid": SID,
            "stop": {"accountSid": "AC00000000000000000000000000000001", "callSid": "CA00000000000000000000000000000001"}});
        let _ = tx.send(send(stop)).await;
        // What is left of the last reply, until hark closes.
        while let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(Duration::from_secs(10), rx.next()).await
        {
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["event"] == "media" {
                let payload = message["media"]["payload"].as_str().unwrap();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(payload)
                    .unwrap();
                mulaw::decode_to_f32(&bytes, &mut result.heard);
            }
        }
    }
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_call_over_twilio_media_streams_is_a_conversation_with_barge_in() {
    let dir = common::temp_dir("twilio");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN} caller\n")).unwrap();
    let store = format!("sqlite:{}", dir.join("sessions.sqlite").display());
    let server = start_server_with(&store, &["--tokens", tokens.to_str().unwrap()]);

    let models = common::models();
    let mut voice = hark::tts::open_voice(hark::tts::VoiceKind::Piper, &models, 2).unwrap();
    let recording = conversation::build(
        voice.as_mut(),
        &[
            Part::Silence(3500), // the greeting plays
            Part::Say("What can you do?"),
            Part::Silence(2500), // the long help reply starts
            Part::Say("Please reset my password."),
            Part::Silence(6000),
        ],
    );
    let audio = resample::resample(&recording.samples, SPEECH_RATE, 8000).unwrap();
    let parameters = json!({"token": TOKEN, "caller": "+15550100199"});
    let result = call(&server.url, parameters, &audio).await;

    assert!(!result.closed, "hark kept the call open");
    assert!(
        result
            .marks
            .iter()
            .any(|(_, name)| name.starts_with("reply-")),
        "a mark after each reply: {:?}",
        result.marks
    );
    let (help_end, reset_start) = (recording.spans[0].1, recording.spans[1].0);
    assert!(
        result.clears.iter().any(|&at| at > reset_start),
        "talking over the help reply clears it: clears at {:?}, the caller spoke at {reset_start} ms",
        result.clears
    );
    let reply = conversation::rms(&result.heard, 8000, help_end + 300, reset_start);
    assert!(reply > 0.01, "the help reply is audible: RMS {reply}");

    // What hark said after the password request, heard over the phone line.
    let after = (recording.spans[1].1 * 8) as usize;
    let answer = &result.heard[after.min(result.heard.len())..];
    let answer = resample::resample(answer, 8000, SPEECH_RATE).unwrap();
    let mut session = common::whisper().session().unwrap();
    let text = session
        .transcribe(&answer, &TranscribeOptions::default())
        .unwrap()
        .text;
    assert!(
        text.to_lowercase().contains("account"),
        "the reset flow's question: {text:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_the_lines_token_or_the_callers_number_is_refused() {
    let dir = common::temp_dir("twilio-refused");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{TOKEN} caller\n")).unwrap();
    let server = start_server_with("none", &["--tokens", tokens.to_str().unwrap()]);
    let silence = vec![0.0; 8000 * 3];
    let result = call(&server.url, json!({"caller": "+15550100199"}), &silence).await;
    assert!(
        result.closed && result.heard.is_empty(),
        "no token: no call"
    );
    let result = call(&server.url, json!({"token": TOKEN}), &silence).await;
    assert!(
        result.closed && result.heard.is_empty(),
        "a caller token without the caller's number: no call"
    );
    std::fs::remove_dir_all(dir).ok();
}
