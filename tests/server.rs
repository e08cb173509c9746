//! `hark serve` for real: the binary listens, a WebSocket client streams speech (Piper's
//! voice, in real time, at a browser's 48 kHz) and gets hark's events and voice back.

mod common;

use std::time::Duration;

use common::conversation::{self, Part};
use common::server::{start_server, Server};
use futures_util::{SinkExt, StreamExt};
use hark::audio::{resample, SPEECH_RATE};
use hark::server::protocol::{decode_pcm16, encode_pcm16};
use hark::tts::{self, VoiceKind};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server) -> Socket {
    tokio_tungstenite::connect_async(&server.url)
        .await
        .expect("connect to hark serve")
        .0
}

async fn send_json(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, skipping audio; None when the socket closes.
async fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .expect("hark serve answers within a minute")?
            .ok()?;
        match message {
            Message::Text(text) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// One conversation: `audio` (at `rate`) streamed as a microphone would, in real time, then
/// stop. Returns the JSON messages (ending with the summary) and the audio that came back.
async fn converse(server: &Server, audio: Vec<f32>, rate: u32) -> (Vec<Value>, Vec<f32>) {
    let socket = connect(server).await;
    let (mut to_server, mut from_server) = socket.split();
    to_server
        .send(Message::Text(
            json!({"type": "start", "sample_rate": rate})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    // The microphone: 20 ms frames in real time, then stop.
    let microphone = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for frame in audio.chunks(rate as usize / 50) {
            tick.tick().await;
            to_server
                .send(Message::Binary(encode_pcm16(frame).into()))
                .await
                .unwrap();
        }
        to_server
            .send(Message::Text(json!({"type": "stop"}).to_string().into()))
            .await
            .unwrap();
        to_server
    });

    let mut messages = Vec::new();
    let mut heard = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_secs(60), from_server.next()).await
    {
        match message.expect("a well-formed WebSocket stream") {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                let done = value["type"] == "summary";
                messages.push(value);
                if done {
                    break;
                }
            }
            Message::Binary(bytes) => decode_pcm16(&bytes, &mut heard).unwrap(),
            Message::Close(_) => break,
            _ => {}
        }
    }
    let _ = microphone.await;
    (messages, heard)
}

/// The texts of one kind of event ("final", "reply") in a conversation's messages.
fn texts<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a str> {
    messages
        .iter()
        .filter(|m| m["type"] == "event" && m["event"] == kind)
        .filter_map(|e| e["text"].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_request_over_websocket_gets_a_spoken_answer() {
    let server = start_server(&[]);
    let models = common::models();
    let mut voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let recording = conversation::build(
        voice.as_mut(),
        &[
            Part::Silence(4000), // the greeting plays
            Part::Say("Please reset my password."),
            Part::Silence(5000),
        ],
    );
    let rate = 48_000;
    let audio = resample::resample(&recording.samples, SPEECH_RATE, rate).unwrap();

    let (messages, heard) = converse(&server, audio, rate).await;

    let ready = &messages[0];
    assert_eq!(
        (&ready["type"], &ready["sample_rate"], &ready["domain"]),
        (&json!("ready"), &json!(rate), &json!("customer-service")),
        "{messages:#?}"
    );
    assert_eq!(
        ready["conversation"].as_str().map(str::len),
        Some(16),
        "{ready}"
    );
    let finals = texts(&messages, "final");
    assert!(
        finals.iter().any(|t| t.to_lowercase().contains("password")),
        "{finals:?}"
    );
    let replies = texts(&messages, "reply");
    // The greeting, then the password-reset flow asking for its first slot.
    assert!(
        replies.len() >= 2,
        "the greeting and the answer: {replies:?}"
    );
    assert!(
        replies.last().unwrap().to_lowercase().contains("account"),
        "{replies:?}"
    );
    let summary = &messages.last().unwrap()["summary"];
    assert!(summary["user_turns"].as_u64() >= Some(1), "{summary}");
    assert!(summary["replies"].as_u64() >= Some(2), "{summary}");

    // Prometheus sees the conversation: its latencies, its turn and its flow.
    let metrics = server.http_get("/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    for histogram in [
        "hark_voice_to_voice_seconds_count",
        "hark_time_to_final_seconds_count",
        "hark_time_to_first_audio_seconds_count",
        "hark_recognizer_seconds_count",
        "hark_synthesizer_seconds_count",
    ] {
        assert!(value(histogram) >= 1.0, "{histogram}: {metrics}");
    }
    let v2v = value("hark_voice_to_voice_seconds_sum") / value("hark_voice_to_voice_seconds_count");
    assert!(v2v > 0.0 && v2v < 10.0, "{v2v} s");
    assert_eq!(value("hark_conversations_total"), 1.0);
    assert_eq!(value("hark_active_conversations"), 0.0);
    assert!(value("hark_turns_total") >= 1.0);
    assert!(
        metrics.contains("hark_flows_started_total{flow="),
        "{metrics}"
    );
    assert!(server
        .http_get("/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    assert!(server.http_get("/readyz").await.starts_with("HTTP/1.1 200"));

    // hark's voice came back at the client's rate, aligned with its microphone: at least
    // as long as what was sent, and with speech in it (the greeting and the answer).
    let sent_secs = recording.samples.len() as f64 / SPEECH_RATE as f64;
    let heard_secs = heard.len() as f64 / rate as f64;
    assert!(
        heard_secs >= sent_secs - 0.1,
        "{heard_secs} s back for {sent_secs} s sent"
    );
    let greeting = conversation::rms(&heard, rate, 300, 2500);
    assert!(greeting > 0.01, "the greeting is audible: RMS {greeting}");
    let answer_from = recording.spans[0].1 + 200;
    let answer = conversation::rms(&heard, rate, answer_from, answer_from + 4000);
    assert!(answer > 0.01, "the answer is audible: RMS {answer}");
}

/// Two people at once: each conversation hears only its own speaker and follows its own flow,
/// though the Whisper model, the voice and the intent recognizer are shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_conversations_at_once_keep_to_their_own_requests() {
    let server = start_server(&[]);
    let models = common::models();
    let mut voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let rate = 16_000;
    let mut request = |sentence: &'static str| {
        conversation::build(
            voice.as_mut(),
            &[
                Part::Silence(4000),
                Part::Say(sentence),
                Part::Silence(5000),
            ],
        )
        .samples
    };
    let password = request("Please reset my password.");
    let table = request("I would like to book a table.");
    let ((first, _), (second, _)) = tokio::join!(
        converse(&server, password, rate),
        converse(&server, table, rate)
    );
    let heard = |messages: &[Value], word: &str| {
        texts(messages, "final")
            .iter()
            .any(|t| t.to_lowercase().contains(word))
    };
    assert!(heard(&first, "password"), "{:?}", texts(&first, "final"));
    assert!(!heard(&first, "table"), "{:?}", texts(&first, "final"));
    assert!(heard(&second, "table"), "{:?}", texts(&second, "final"));
    assert!(!heard(&second, "password"), "{:?}", texts(&second, "final"));
    // Each flow asks for its own first slot (replies may be spoken in more than one piece).
    let said = |messages: &[Value]| texts(messages, "reply").join(" ").to_lowercase();
    assert!(
        said(&first).contains("account"),
        "{:?}",
        texts(&first, "reply")
    );
    assert!(
        said(&second).contains("what would you like to book"),
        "{:?}",
        texts(&second, "reply")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_clear_errors_and_the_conversation_goes_on() {
    let logs = common::temp_dir("serve-ratings");
    let server = start_server(&["--max-conversations", "1", "--log", logs.to_str().unwrap()]);
    let mut socket = connect(&server).await;
    let error = |v: Option<Value>| -> String {
        let v = v.expect("an answer");
        assert_eq!(v["type"], "error", "{v}");
        v["message"].as_str().unwrap().to_string()
    };

    socket
        .send(Message::Binary(vec![0u8; 640].into()))
        .await
        .unwrap();
    assert!(error(next_json(&mut socket).await).contains("before the start"));
    socket
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    assert!(error(next_json(&mut socket).await).contains("not a message"));
    send_json(&mut socket, json!({"type": "start", "sample_rate": 1})).await;
    assert!(error(next_json(&mut socket).await).contains("sample_rate 1 Hz"));
    send_json(&mut socket, json!({"type": "rating", "score": 4})).await;
    assert!(error(next_json(&mut socket).await).contains("needs a conversation"));

    send_json(&mut socket, json!({"type": "start"})).await;
    assert_eq!(next_json(&mut socket).await.unwrap()["type"], "ready");
    // The user's score of the conversation goes to the log; one out of range is refused.
    send_json(&mut socket, json!({"type": "rating", "score": 9})).await;
    let mut message = next_json(&mut socket).await;
    while message.as_ref().is_some_and(|m| m["type"] == "event") {
        message = next_json(&mut socket).await;
    }
    assert!(error(message).contains("score from 1 to 5, not 9"));
    send_json(&mut socket, json!({"type": "rating", "score": 4})).await;
    // A rating counts once: a second cannot stuff the report.
    send_json(&mut socket, json!({"type": "rating", "score": 1})).await;
    let mut message = next_json(&mut socket).await;
    while message.as_ref().is_some_and(|m| m["type"] == "event") {
        message = next_json(&mut socket).await;
    }
    assert!(error(message).contains("already rated"));
    socket
        .send(Message::Binary(vec![0u8; 641].into()))
        .await
        .unwrap();
    // Events (the greeting) may come first; the error follows.
    let mut message = next_json(&mut socket).await;
    while message.as_ref().is_some_and(|m| m["type"] == "event") {
        message = next_json(&mut socket).await;
    }
    assert!(error(message).contains("641 bytes"));

    // One conversation at a time on this server: a second client is told so.
    let mut second = connect(&server).await;
    send_json(&mut second, json!({"type": "start"})).await;
    assert!(error(next_json(&mut second).await).contains("busy"));

    // Half a second of silence, then stop: the conversation ends with its summary.
    socket
        .send(Message::Binary(vec![0u8; 16_000].into()))
        .await
        .unwrap();
    send_json(&mut socket, json!({"type": "stop"})).await;
    let mut last = None;
    while let Some(message) = next_json(&mut socket).await {
        let done = message["type"] == "summary";
        last = Some(message);
        if done {
            break;
        }
    }
    let summary = last.expect("a summary");
    assert_eq!(summary["type"], "summary", "{summary}");
    assert_eq!(summary["summary"]["user_turns"], 0, "{summary}");
    let out = common::hark(&["report", logs.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ratings = &report["ratings"];
    assert_eq!(ratings["from_clients"], 1, "{report}");
    assert_eq!(ratings["distribution"], json!({"4": 1}), "{report}");
    std::fs::remove_dir_all(logs).ok();
}

/// `hark serve` with a help document: a spoken question no intent takes is answered with
/// the document's fact, in speech.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_question_is_answered_from_the_served_documents() {
    let document = common::root().join("../shared/data/knowledge/larkspur-help.md");
    let server = start_server(&[
        "--domain",
        "assistant",
        "--knowledge",
        document.to_str().unwrap(),
    ]);
    let models = common::models();
    let mut voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let recording = conversation::build(
        voice.as_mut(),
        &[
            Part::Silence(3500),
            Part::Say("Do you ship to Canada?"),
            Part::Silence(4500),
        ],
    );
    drop(voice);
    let (messages, _) = converse(&server, recording.samples.clone(), SPEECH_RATE).await;
    for m in &messages {
        eprintln!("{m}");
    }
    let finals = texts(&messages, "final");
    assert!(
        finals.iter().any(|t| t.to_lowercase().contains("canada")),
        "{finals:?}"
    );
    // The answer is the document's own words about shipping (spoken, at most 30 words).
    let text = std::fs::read_to_string(&document)
        .unwrap()
        .replace('\n', " ");
    let replies = texts(&messages, "reply");
    let answer = &replies[2.min(replies.len())..]; // after the greeting's two sentences
    assert!(
        answer.iter().any(|r| r.contains("ship")) && answer.iter().all(|r| text.contains(r)),
        "not the document's answer: {replies:?}"
    );
    let summary = &messages.last().unwrap()["summary"];
    assert!(summary["replies"].as_u64() >= Some(2), "{summary}");
}
