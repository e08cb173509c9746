//! Home Assistant's side of hark: the real `wyoming` Python package (as Home Assistant uses
//! it, one connection per request) describes `hark serve --wyoming`, transcribes a spoken WAV,
//! synthesizes in one piece and streamed, and holds a turn with hark's conversation agent;
//! malformed frames get an `error` and the server goes on.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Command;

use common::server::{start_server, Server};
use hark::audio::resample;
use serde_json::Value;

/// The Wyoming address `hark serve` printed.
fn wyoming_port(server: &Server) -> String {
    server
        .startup
        .iter()
        .find_map(|l| l.strip_prefix("wyoming on tcp://"))
        .and_then(|a| a.rsplit(':').next())
        .expect("hark serve names its Wyoming address")
        .trim()
        .to_string()
}

/// One request through tests/wyoming_client.py.
fn client(port: &str, args: &[&str]) -> Value {
    let root = common::root();
    let out = Command::new("python3")
        .arg(root.join("tests/wyoming_client.py"))
        .args(["127.0.0.1", port])
        .args(args)
        .env("PYTHONPATH", root.join("models/.cache/wyoming"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "wyoming client {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("wyoming {}: {result}", args[0]);
    result
}

/// A spoken request as a 44.1 kHz stereo WAV (Home Assistant sends 16 kHz mono; other
/// clients send what their microphone gives).
fn spoken_wav(text: &str, path: &Path) {
    let models = common::models();
    let mut voice = hark::tts::open_voice(hark::tts::VoiceKind::Piper, &models, 2).unwrap();
    let speech = voice.synthesize(text).unwrap();
    let speech = resample::resample(&speech, voice.sample_rate(), 44_100).unwrap();
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for s in speech {
        let s = hark::audio::wav::to_i16(s);
        wav.write_sample(s).unwrap();
        wav.write_sample(s).unwrap();
    }
    wav.finalize().unwrap();
}

#[test]
fn home_assistants_wyoming_client_uses_harks_speech_and_conversation_agent() {
    let server = start_server(&["--wyoming", "tcp://127.0.0.1:0"]);
    let port = wyoming_port(&server);
    let dir = common::temp_dir("wyoming");

    let info = client(&port, &["describe"]);
    let model = info["asr"][0][1][0].as_str().unwrap();
    assert!(model.starts_with("whisper-tiny.en"), "{info}");
    assert_eq!(info["asr"][0][2][0][0], "en");
    assert_eq!(info["tts"][0][2], true, "streaming synthesis");
    assert!(!info["tts"][0][1].as_array().unwrap().is_empty(), "a voice");
    assert_eq!(info["handle"][0][1][0], "customer-service");

    let request = dir.join("request.wav");
    spoken_wav("Please reset my password.", &request);
    let heard = client(&port, &["transcribe", request.to_str().unwrap()]);
    let text = heard["text"].as_str().unwrap().to_lowercase();
    assert!(text.contains("password"), "{heard}");

    let said = dir.join("said.wav");
    let text = "Hello there. How can I help you today?";
    let one = client(&port, &["synthesize", text, said.to_str().unwrap()]);
    assert_eq!(
        (one["width"].as_u64(), one["channels"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(one["pieces"], 1);
    // What hark said is speech: hark hears it back.
    let back = client(&port, &["transcribe", said.to_str().unwrap()]);
    assert!(
        back["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("help"),
        "{back}"
    );

    let streamed_wav = dir.join("streamed.wav");
    let streamed = client(
        &port,
        &["synthesize-streaming", text, streamed_wav.to_str().unwrap()],
    );
    assert_eq!(streamed["pieces"], 2, "one audio per sentence: {streamed}");
    let (once, twice) = (
        one["seconds"].as_f64().unwrap(),
        streamed["seconds"].as_f64().unwrap(),
    );
    assert!(
        twice < once * 1.5,
        "the back-compat synthesize inside the stream is not spoken again: {once} s vs {twice} s"
    );

    let turns = client(
        &port,
        &["handle", "I'd like to book a haircut tomorrow", "at 3 pm"],
    );
    let replies: Vec<&str> = turns["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(replies[0].contains("what time"), "{replies:?}");
    assert!(
        !replies[1].contains("what time") && replies[1].to_lowercase().contains("3 pm"),
        "the second turn continues the booking: {replies:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn malformed_frames_get_an_error_and_the_server_goes_on() {
    let server = start_server(&["--wyoming", "tcp://127.0.0.1:0"]);
    let port = wyoming_port(&server);
    for garbage in [
        &b"this is not json\n"[..],
        b"{\"type\":\"audio-chunk\",\"payload_length\":99999999999}\n",
        b"{\"type\":\"audio-start\",\"data\":{\"rate\":1,\"width\":2,\"channels\":1}}\n",
        b"{\"type\":\"detect\"}\n",
    ] {
        let mut socket = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        socket.write_all(garbage).unwrap();
        let mut line = String::new();
        BufReader::new(&socket).read_line(&mut line).unwrap();
        let header: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(header["type"], "error", "{line}");
    }
    let info = client(&port, &["describe"]);
    assert_eq!(info["handle"][0][1][0], "customer-service");
}

#[test]
fn wyoming_beyond_loopback_needs_consent() {
    let out = common::hark(&["serve", "--voice", "espeak", "--wyoming", "tcp://0.0.0.0:0"]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("--allow-anonymous"),
        "{}",
        common::stderr(&out)
    );
}

/// Behind one Home Assistant everyone arrives from the same address: memory follows a
/// conversation id or a connection, never an address.
#[test]
fn one_persons_conversation_never_reaches_the_next() {
    let server = start_server(&["--wyoming", "tcp://127.0.0.1:0"]);
    let port = wyoming_port(&server);
    let replies = |args: &[&str]| -> Vec<String> {
        client(&port, args)["replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    let intro = "Hi, my name is Mallory";
    let ask = "What's my name?";

    // Two anonymous clients, one after the other: the second is a stranger.
    let anonymous = replies(&["handle-anonymous", intro, ask]);
    assert!(
        !anonymous[1].contains("Mallory"),
        "a new connection heard the last one's name: {anonymous:?}"
    );
    // One connection is one conversation.
    let same = replies(&["handle-one-connection", intro, ask]);
    assert!(same[1].contains("Mallory"), "{same:?}");
    // And so is one conversation id, across connections (Home Assistant's way).
    let named = replies(&["handle", intro, ask]);
    assert!(named[1].contains("Mallory"), "{named:?}");
}

/// Idle sockets from one address hold at most its share of the connections: the next from
/// it is told it is busy, and another address is served.
#[test]
fn idle_connections_from_one_address_leave_room_for_others() {
    let server = start_server(&["--wyoming", "tcp://127.0.0.1:0"]);
    let port: u16 = wyoming_port(&server).parse().unwrap();
    let ask = |socket: &std::net::TcpStream| -> Value {
        let mut socket = socket;
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        socket.write_all(b"{\"type\":\"describe\"}\n").unwrap();
        let mut line = String::new();
        BufReader::new(socket).read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    };
    let idle: Vec<std::net::TcpStream> = (0..16)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    // The server has taken the sixteen in once each answers.
    for socket in &idle {
        assert_eq!(ask(socket)["type"], "info");
    }
    let seventeenth = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let refused = ask(&seventeenth);
    assert_eq!(refused["type"], "error", "{refused}");
    // 127.0.0.2 is loopback too: another address.
    let other = connect_from("127.0.0.2", port);
    assert_eq!(ask(&other)["type"], "info");
    drop(idle);
}

/// A TCP connection to `port` on 127.0.0.1 from the local address `from`.
fn connect_from(from: &str, port: u16) -> std::net::TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let stream = socket
            .connect(format!("127.0.0.1:{port}").parse().unwrap())
            .await
            .unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
    })
}
