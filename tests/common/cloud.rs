//! Local servers that speak the cloud providers' exact wire protocols (see
//! `../shared/protocols/cloud-speech.md`), for hark's cloud engines to talk to in tests and
//! benches. They are providers, not mocks of hark: they read the audio hark streams (an
//! energy detector finds the speech in it) and answer with scripted words, and they speak
//! the text hark sends as a tone whose length follows the text, with the provider's own
//! alignment or timestamps. Every answer can be delayed by a simulated network round trip.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

pub const KEY: &str = "test-key";

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// What a fake server saw and did.
#[derive(Debug, Default, Clone)]
pub struct FakeLog {
    /// Handshakes accepted.
    pub connections: usize,
    /// Handshakes refused (a wrong key).
    pub refused: usize,
    /// Every URI asked for.
    pub uris: Vec<String>,
    /// Every text message the client sent.
    pub texts: Vec<String>,
    /// Audio bytes received.
    pub audio_bytes: usize,
    /// An empty binary frame arrived (Deepgram reads it as a close).
    pub empty_frames: usize,
    /// Close reasons the server sent.
    pub closes: Vec<String>,
    /// Most contexts open at once on one socket.
    pub max_contexts: usize,
    /// When the server decided each utterance had ended (the message leaves a round trip
    /// later), and on which connection (numbered from 1 in the order they were accepted).
    pub turn_ends: Vec<(usize, Instant)>,
}

pub struct FakeServer {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<FakeLog>>,
}

impl FakeServer {
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub fn log(&self) -> FakeLog {
        self.log.lock().unwrap().clone()
    }
}

/// How a speech-to-text fake behaves.
#[derive(Debug, Clone)]
pub struct SttScript {
    /// The words of each utterance, in order.
    pub utterances: Vec<String>,
    /// Deepgram: never mark `speech_final` nor send `UtteranceEnd` (as with background
    /// noise); AssemblyAI: never end a turn by itself.
    pub never_ends_turns: bool,
    /// Ignore `Finalize` / `ForceEndpoint`.
    pub ignores_finalize: bool,
    /// Close the first connection (1011) after its first interim result.
    pub closes_mid_utterance: bool,
    /// Every answer waits this long (a network round trip).
    pub rtt_ms: u64,
    /// Close after this long with no audio and no keepalive (Deepgram: 10 s).
    pub idle_timeout_ms: u64,
}

impl SttScript {
    /// The words of the `u`th utterance heard on a connection; the script starts over
    /// after its last, so a soak can loop a recording.
    fn words(&self, u: usize) -> String {
        if self.utterances.is_empty() {
            return String::new();
        }
        self.utterances[u % self.utterances.len()].clone()
    }
}

impl Default for SttScript {
    fn default() -> Self {
        Self {
            utterances: Vec::new(),
            never_ends_turns: false,
            ignores_finalize: false,
            closes_mid_utterance: false,
            rtt_ms: 0,
            idle_timeout_ms: 10_000,
        }
    }
}

/// How a text-to-speech fake behaves.
#[derive(Debug, Clone)]
pub struct TtsScript {
    pub rtt_ms: u64,
    /// Length of speech per visible character.
    pub ms_per_char: u64,
    /// How much faster than real time audio is sent.
    pub speed: f64,
    /// Close the socket after sending this many audio chunks (a provider failing mid-reply).
    pub fails_after_chunks: Option<usize>,
}

impl Default for TtsScript {
    fn default() -> Self {
        Self {
            rtt_ms: 0,
            ms_per_char: 50,
            speed: 4.0,
            fails_after_chunks: None,
        }
    }
}

type Outgoing = mpsc::UnboundedSender<(Instant, Message)>;

/// Accepts connections at a free port; `handle` serves each accepted socket.
// The handshake callback's error type is tungstenite's.
#[allow(clippy::result_large_err)]
fn serve<F, Fut>(check: fn(&Request) -> Result<(), u16>, handle: F) -> FakeServer
where
    F: Fn(
            tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
            String,
            Arc<Mutex<FakeLog>>,
            usize,
        ) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let log = Arc::new(Mutex::new(FakeLog::default()));
    let listener = runtime()
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let server_log = log.clone();
    let handle = Arc::new(handle);
    runtime().spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let log = server_log.clone();
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut uri = String::new();
                let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                    uri = req.uri().to_string();
                    log.lock().unwrap().uris.push(uri.clone());
                    match check(req) {
                        Ok(()) => Ok(resp),
                        Err(status) => {
                            log.lock().unwrap().refused += 1;
                            Err(http::Response::builder()
                                .status(status)
                                .body(Some("invalid credentials".into()))
                                .unwrap())
                        }
                    }
                };
                let Ok(socket) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    return;
                };
                let n = {
                    let mut l = log.lock().unwrap();
                    l.connections += 1;
                    l.connections
                };
                handle(socket, uri, log, n).await;
            });
        }
    });
    FakeServer { addr, log }
}

fn header<'a>(req: &'a Request, name: &str) -> &'a str {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn query(uri: &str, name: &str) -> Option<String> {
    let q = uri.split_once('?')?.1;
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Splits a socket into a reader and a writer task that sends each message at its time.
fn split(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
) -> (
    futures_util::stream::SplitStream<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>>,
    Outgoing,
) {
    let (mut sink, stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Message)>();
    tokio::spawn(async move {
        while let Some((due, message)) = rx.recv().await {
            tokio::time::sleep_until(due.into()).await;
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
    });
    (stream, tx)
}

fn close(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_string().into(),
    }))
}

// ---------------------------------------------------------------------------------------
// Speech detection shared by the speech-to-text fakes.

/// Finds speech in 16 kHz PCM by its energy, 20 ms at a time.
#[derive(Default)]
struct Ear {
    pending: Vec<i16>,
    audio_ms: u64,
    in_speech: bool,
    voiced_ms: u64,
    silence_ms: u64,
}

enum Sound {
    Started,
    Voiced { voiced_ms: u64 },
    Silence { silence_ms: u64 },
}

impl Ear {
    fn hear(&mut self, bytes: &[u8]) -> Vec<Sound> {
        self.pending.extend(
            bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
        let mut sounds = Vec::new();
        while self.pending.len() >= 320 {
            let frame: Vec<i16> = self.pending.drain(..320).collect();
            self.audio_ms += 20;
            let rms = (frame
                .iter()
                .map(|&s| (s as f64 / 32768.0).powi(2))
                .sum::<f64>()
                / 320.0)
                .sqrt();
            if rms > 0.01 {
                if !self.in_speech {
                    self.in_speech = true;
                    self.voiced_ms = 0;
                    sounds.push(Sound::Started);
                }
                self.voiced_ms += 20;
                self.silence_ms = 0;
                sounds.push(Sound::Voiced {
                    voiced_ms: self.voiced_ms,
                });
            } else if self.in_speech {
                self.silence_ms += 20;
                sounds.push(Sound::Silence {
                    silence_ms: self.silence_ms,
                });
            }
        }
        sounds
    }
}

/// The words of an utterance heard after `voiced_ms` of it (one word per 250 ms).
fn words_so_far(text: &str, voiced_ms: u64) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = ((voiced_ms / 250) as usize).clamp(1, words.len().max(1));
    words[..n.min(words.len())].join(" ")
}

// ---------------------------------------------------------------------------------------
// Deepgram live (/v1/listen).

pub fn deepgram(script: SttScript) -> FakeServer {
    let script = Arc::new(script);
    serve(
        |req| {
            if !req.uri().path().starts_with("/v1/listen") {
                return Err(404);
            }
            if header(req, "Authorization") != format!("Token {KEY}") {
                return Err(401);
            }
            Ok(())
        },
        move |socket, uri, log, n| deepgram_session(socket, uri, log, n, script.clone()),
    )
}

async fn deepgram_session(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    uri: String,
    log: Arc<Mutex<FakeLog>>,
    connection: usize,
    script: Arc<SttScript>,
) {
    let (mut stream, out) = split(socket);
    let endpointing: u64 = query(&uri, "endpointing")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let rtt = Duration::from_millis(script.rtt_ms);
    let send = |m: Value| {
        let _ = out.send((Instant::now() + rtt, Message::text(m.to_string())));
    };
    let results = |text: &str, is_final: bool, speech_final: bool, from_finalize: bool| {
        json!({"type":"Results","channel_index":[0,1],"duration":0.5,"start":0.0,
            "is_final":is_final,"speech_final":speech_final,"from_finalize":from_finalize,
            "channel":{"alternatives":[{"transcript":text,"confidence":0.98,"words":[]}]},
            "metadata":{"request_id":"fake","model_info":{"name":"nova-3","version":"x","arch":"x"},"model_uuid":"x"}})
    };
    let mut ear = Ear::default();
    // The utterance under way: its index and whether its words were made final.
    let mut utterance: Option<usize> = None;
    let mut next = log.lock().unwrap().turn_ends.len();
    let mut last_interim_words = 0;
    let idle = Duration::from_millis(script.idle_timeout_ms);
    let mut last_heard = Instant::now();
    loop {
        let message = tokio::select! {
            m = stream.next() => m,
            _ = tokio::time::sleep_until((last_heard + idle).into()) => {
                let reason = "NET-0001 Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001";
                log.lock().unwrap().closes.push(format!("1011 {reason}"));
                let _ = out.send((Instant::now(), close(1011, reason)));
                return;
            }
        };
        let Some(Ok(message)) = message else { return };
        match message {
            Message::Binary(bytes) => {
                last_heard = Instant::now();
                if bytes.is_empty() {
                    log.lock().unwrap().empty_frames += 1;
                    continue;
                }
                log.lock().unwrap().audio_bytes += bytes.len();
                for sound in ear.hear(&bytes) {
                    match sound {
                        Sound::Started => {
                            utterance = Some(next);
                            next += 1;
                            last_interim_words = 0;
                            send(
                                json!({"type":"SpeechStarted","channel":[0,1],"timestamp":ear.audio_ms as f64 / 1000.0}),
                            );
                        }
                        Sound::Voiced { voiced_ms } => {
                            let Some(u) = utterance else { continue };
                            let text = script.words(u);
                            let heard = words_so_far(&text, voiced_ms);
                            let count = heard.split_whitespace().count();
                            if voiced_ms % 200 == 0 && count > last_interim_words {
                                last_interim_words = count;
                                send(results(&heard, false, false, false));
                                if script.closes_mid_utterance && connection == 1 {
                                    log.lock().unwrap().closes.push("1011 mid-utterance".into());
                                    let _ = out.send((
                                        Instant::now() + rtt,
                                        close(1011, "NET-0000 internal error"),
                                    ));
                                    return;
                                }
                            }
                        }
                        Sound::Silence { silence_ms } => {
                            if silence_ms == endpointing.max(20) {
                                if let Some(u) = utterance.take() {
                                    let text = script.words(u);
                                    let end_of_speech = !script.never_ends_turns;
                                    send(results(&text, true, end_of_speech, false));
                                    if end_of_speech {
                                        log.lock()
                                            .unwrap()
                                            .turn_ends
                                            .push((connection, Instant::now()));
                                    }
                                    ear.in_speech = false;
                                    if !end_of_speech {
                                        // The words are final; the end of the turn never comes.
                                        utterance = None;
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Message::Text(text) => {
                last_heard = Instant::now();
                log.lock().unwrap().texts.push(text.to_string());
                let Ok(m) = serde_json::from_str::<Value>(text.as_str()) else {
                    let _ = out.send((Instant::now(), close(1008, "DATA-0000 invalid JSON")));
                    return;
                };
                match m["type"].as_str() {
                    Some("KeepAlive") => {}
                    Some("Finalize") if !script.ignores_finalize => {
                        let text = utterance
                            .take()
                            .map(|u| script.words(u))
                            .unwrap_or_default();
                        ear.in_speech = false;
                        send(results(&text, true, false, true));
                    }
                    Some("Finalize") => {}
                    Some("CloseStream") => {
                        if let Some(u) = utterance.take() {
                            let text = script.words(u);
                            send(results(&text, true, true, false));
                        }
                        send(
                            json!({"type":"Metadata","transaction_key":"deprecated","request_id":"fake","sha256":"0","created":"2026-12-02T00:00:00.000Z","duration":ear.audio_ms as f64 / 1000.0,"channels":1}),
                        );
                        let _ = out.send((Instant::now() + rtt, close(1000, "")));
                        return;
                    }
                    _ => {}
                }
            }
            Message::Close(_) => return,
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// AssemblyAI Universal-Streaming v3 (/v3/ws).

pub fn assemblyai(script: SttScript) -> FakeServer {
    let script = Arc::new(script);
    serve(
        |req| {
            if !req.uri().path().starts_with("/v3/ws") {
                return Err(404);
            }
            Ok(())
        },
        move |socket, uri, log, n| assemblyai_session(socket, uri, log, n, script.clone()),
    )
}

async fn assemblyai_session(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    uri: String,
    log: Arc<Mutex<FakeLog>>,
    connection: usize,
    script: Arc<SttScript>,
) {
    let (mut stream, out) = split(socket);
    let rtt = Duration::from_millis(script.rtt_ms);
    let send = |m: Value| {
        let _ = out.send((Instant::now() + rtt, Message::text(m.to_string())));
    };
    let _ = &uri;
    send(json!({"type":"Begin","id":"fake-session","expires_at":1_900_000_000u64}));
    let min_silence: u64 = query(&uri, "min_turn_silence")
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let mut ear = Ear::default();
    let mut turn_order = 0u64;
    let mut utterance: Option<usize> = None;
    let mut next = 0usize;
    let turn = |order: u64, text: &str, all_final: bool, end: bool| {
        let words: Vec<&str> = text.split_whitespace().collect();
        let last = words.len().saturating_sub(1);
        let list: Vec<Value> = words
            .iter()
            .enumerate()
            .map(|(i, w)| json!({"start": i * 250, "end": i * 250 + 200, "text": w, "confidence": 0.9, "word_is_final": all_final || i < last}))
            .collect();
        let finals: Vec<&str> = words
            .iter()
            .enumerate()
            .filter(|(i, _)| all_final || *i < last)
            .map(|(_, w)| *w)
            .collect();
        json!({"type":"Turn","turn_order":order,"turn_is_formatted":false,"end_of_turn":end,
            "transcript":finals.join(" "),"end_of_turn_confidence":if end {0.9} else {0.1},
            "utterance":"","words":list})
    };
    let end_turn =
        |utterance: &mut Option<usize>, turn_order: &mut u64, log: &Arc<Mutex<FakeLog>>| {
            if let Some(u) = utterance.take() {
                let text = script.words(u);
                send(turn(*turn_order, &text, true, true));
                *turn_order += 1;
                log.lock()
                    .unwrap()
                    .turn_ends
                    .push((connection, Instant::now()));
            }
        };
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Binary(bytes) => {
                log.lock().unwrap().audio_bytes += bytes.len();
                for sound in ear.hear(&bytes) {
                    match sound {
                        Sound::Started => {
                            utterance = Some(next);
                            next += 1;
                        }
                        Sound::Voiced { voiced_ms } if voiced_ms % 200 == 0 => {
                            if let Some(u) = utterance {
                                let text = script.words(u);
                                send(turn(
                                    turn_order,
                                    &words_so_far(&text, voiced_ms),
                                    false,
                                    false,
                                ));
                            }
                        }
                        Sound::Voiced { .. } => {}
                        Sound::Silence { silence_ms } => {
                            if silence_ms == min_silence.max(20) && !script.never_ends_turns {
                                end_turn(&mut utterance, &mut turn_order, &log);
                                ear.in_speech = false;
                            }
                        }
                    }
                }
            }
            Message::Text(text) => {
                log.lock().unwrap().texts.push(text.to_string());
                let m: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                match m["type"].as_str() {
                    Some("ForceEndpoint") if !script.ignores_finalize => {
                        end_turn(&mut utterance, &mut turn_order, &log);
                        ear.in_speech = false;
                    }
                    Some("Terminate") => {
                        end_turn(&mut utterance, &mut turn_order, &log);
                        send(
                            json!({"type":"Termination","audio_duration_seconds":ear.audio_ms / 1000,"session_duration_seconds":ear.audio_ms / 1000}),
                        );
                        let _ = out.send((Instant::now() + rtt, close(1000, "")));
                        return;
                    }
                    _ => {}
                }
            }
            Message::Close(_) => return,
            _ => {}
        }
    }
}

/// An AssemblyAI that refuses the key the way it does: an `Error` message, then close 4001.
pub fn assemblyai_refusing() -> FakeServer {
    serve(
        |_| Ok(()),
        |socket, _uri, log, _n| async move {
            let (_stream, out) = split(socket);
            let now = Instant::now();
            let _ = out.send((
                now,
                Message::text(
                    json!({"type":"Error","error_code":4001,"error":"Invalid API key"}).to_string(),
                ),
            ));
            log.lock().unwrap().closes.push("4001".into());
            let _ = out.send((now, close(4001, "Invalid API key")));
            tokio::time::sleep(Duration::from_millis(200)).await;
        },
    )
}

// ---------------------------------------------------------------------------------------
// Speech for the text-to-speech fakes.

/// `text` as a tone: `ms_per_char` per visible character, pauses at spaces; each visible
/// character with its start and duration in ms.
fn speak(text: &str, rate: u32, ms_per_char: u64) -> (Vec<i16>, Vec<(String, f64, f64)>) {
    let mut samples = Vec::new();
    let mut chars = Vec::new();
    let per_ms = rate as f64 / 1000.0;
    for c in text.chars() {
        let start = samples.len() as f64 / per_ms;
        let n = (ms_per_char as f64 * per_ms) as usize;
        let loud = !c.is_whitespace();
        for i in 0..n {
            let t = (samples.len() + i) as f64 / rate as f64;
            let s = if loud {
                (t * 2.0 * std::f64::consts::PI * 220.0).sin() * 0.3
            } else {
                0.0
            };
            samples.push((s * 32767.0) as i16);
        }
        let _ = n;
        chars.push((c.to_string(), start, ms_per_char as f64));
    }
    (samples, chars)
}

fn le_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Sends `text` as chunks of ~200 ms at `speed`× real time, through `chunk`.
async fn stream_speech(
    text: &str,
    rate: u32,
    script: &TtsScript,
    cancelled: &std::sync::atomic::AtomicBool,
    sent_chunks: &std::sync::atomic::AtomicUsize,
    mut chunk: impl FnMut(&[i16], &[(String, f64, f64)], f64) -> bool,
) -> bool {
    use std::sync::atomic::Ordering;
    let (samples, chars) = speak(text, rate, script.ms_per_char);
    let per_chunk = (rate / 5) as usize;
    let mut offset_ms = 0.0;
    for piece in samples.chunks(per_chunk) {
        if cancelled.load(Ordering::SeqCst) {
            return false;
        }
        let piece_ms = piece.len() as f64 * 1000.0 / rate as f64;
        let in_piece: Vec<(String, f64, f64)> = chars
            .iter()
            .filter(|(_, start, _)| *start >= offset_ms && *start < offset_ms + piece_ms)
            .map(|(c, start, d)| (c.clone(), start - offset_ms, *d))
            .collect();
        if !chunk(piece, &in_piece, offset_ms) {
            return false;
        }
        let sent = sent_chunks.fetch_add(1, Ordering::SeqCst) + 1;
        if script.fails_after_chunks.is_some_and(|n| sent >= n) {
            return false;
        }
        offset_ms += piece_ms;
        tokio::time::sleep(Duration::from_secs_f64(piece_ms / 1000.0 / script.speed)).await;
    }
    true
}

// ---------------------------------------------------------------------------------------
// ElevenLabs multi-stream-input.

pub fn elevenlabs(script: TtsScript) -> FakeServer {
    let script = Arc::new(script);
    serve(
        |req| {
            if !req.uri().path().ends_with("/multi-stream-input") {
                return Err(404);
            }
            if header(req, "xi-api-key") != KEY {
                return Err(401);
            }
            Ok(())
        },
        move |socket, uri, log, _n| elevenlabs_session(socket, uri, log, script.clone()),
    )
}

struct ElevenContext {
    cancelled: Arc<std::sync::atomic::AtomicBool>,
    queue: mpsc::UnboundedSender<Option<String>>,
}

async fn elevenlabs_session(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    uri: String,
    log: Arc<Mutex<FakeLog>>,
    script: Arc<TtsScript>,
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (mut stream, out) = split(socket);
    let rate: u32 = query(&uri, "output_format")
        .and_then(|f| f.strip_prefix("pcm_").and_then(|r| r.parse().ok()))
        .unwrap_or(16_000);
    let rtt = Duration::from_millis(script.rtt_ms);
    let mut contexts: HashMap<String, ElevenContext> = HashMap::new();
    let sent_chunks = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                return;
            }
            continue;
        };
        log.lock().unwrap().texts.push(text.to_string());
        let m: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        let context = m["context_id"].as_str().unwrap_or("").to_string();
        if m["close_socket"] == true {
            let _ = out.send((Instant::now() + rtt, close(1000, "")));
            return;
        }
        if m["close_context"] == true {
            if let Some(c) = contexts.remove(&context) {
                // Text already flushed is still spoken; without a flush the context stops.
                let _ = c.queue.send(None);
            }
            continue;
        }
        if !contexts.contains_key(&context) {
            if contexts.len() >= 5 {
                let _ = out.send((
                    Instant::now() + rtt,
                    Message::text(json!({"message":"Maximum simultaneous contexts exceeded","error":"max_active_conversations","code":1008,"contextId":context}).to_string()),
                ));
                log.lock()
                    .unwrap()
                    .closes
                    .push("1008 max_active_conversations".into());
                let _ = out.send((
                    Instant::now() + rtt,
                    close(1008, "max_active_conversations"),
                ));
                return;
            }
            let (queue, mut pieces) = mpsc::unbounded_channel::<Option<String>>();
            let cancelled = Arc::new(AtomicBool::new(false));
            contexts.insert(
                context.clone(),
                ElevenContext {
                    cancelled: cancelled.clone(),
                    queue,
                },
            );
            {
                let mut l = log.lock().unwrap();
                l.max_contexts = l.max_contexts.max(contexts.len());
            }
            let (out, script, sent_chunks, failed, log) = (
                out.clone(),
                script.clone(),
                sent_chunks.clone(),
                failed.clone(),
                log.clone(),
            );
            let id = context.clone();
            tokio::spawn(async move {
                tokio::time::sleep(rtt).await;
                let mut flushed = false;
                while let Some(piece) = pieces.recv().await {
                    let Some(piece) = piece else { break };
                    if piece == "\u{0}flush" {
                        flushed = true;
                        continue;
                    }
                    let ok = stream_speech(&piece, rate, &script, &cancelled, &sent_chunks, |samples, chars, _| {
                        let alignment = json!({
                            "chars": chars.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
                            "charStartTimesMs": chars.iter().map(|c| c.1).collect::<Vec<_>>(),
                            "charDurationsMs": chars.iter().map(|c| c.2).collect::<Vec<_>>(),
                        });
                        let audio = base64::engine::general_purpose::STANDARD.encode(le_bytes(samples));
                        out.send((Instant::now(), Message::text(json!({"audio":audio,"isFinal":null,"normalizedAlignment":alignment,"alignment":alignment,"contextId":id}).to_string()))).is_ok()
                    })
                    .await;
                    if !ok {
                        if script.fails_after_chunks.is_some()
                            && !cancelled.load(Ordering::SeqCst)
                            && !failed.swap(true, Ordering::SeqCst)
                        {
                            log.lock()
                                .unwrap()
                                .closes
                                .push("1011 failure mid-reply".into());
                            let _ = out.send((Instant::now(), close(1011, "internal error")));
                        }
                        return;
                    }
                }
                let _ = flushed;
                let _ = out.send((
                    Instant::now(),
                    Message::text(json!({"isFinal":true,"contextId":id}).to_string()),
                ));
            });
        }
        let Some(c) = contexts.get(&context) else {
            continue;
        };
        let piece = m["text"].as_str().unwrap_or("");
        if !piece.trim().is_empty() {
            let _ = c.queue.send(Some(piece.to_string()));
        }
        if m["flush"] == true {
            let _ = c.queue.send(Some("\u{0}flush".into()));
        }
        let _ = &c.cancelled;
    }
}

// ---------------------------------------------------------------------------------------
// Cartesia (/tts/websocket).

pub fn cartesia(script: TtsScript) -> FakeServer {
    let script = Arc::new(script);
    serve(
        |req| {
            if !req.uri().path().starts_with("/tts/websocket") {
                return Err(404);
            }
            if header(req, "X-API-Key") != KEY {
                return Err(401);
            }
            Ok(())
        },
        move |socket, _uri, log, _n| cartesia_session(socket, log, script.clone()),
    )
}

async fn cartesia_session(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    log: Arc<Mutex<FakeLog>>,
    script: Arc<TtsScript>,
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let (mut stream, out) = split(socket);
    let rtt = Duration::from_millis(script.rtt_ms);
    let sent_chunks = Arc::new(AtomicUsize::new(0));
    // Per context: cancelled, and its transcripts with `continue`.
    type Context = (Arc<AtomicBool>, mpsc::UnboundedSender<(String, bool)>);
    let mut contexts: HashMap<String, Context> = HashMap::new();
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                return;
            }
            continue;
        };
        log.lock().unwrap().texts.push(text.to_string());
        let m: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        let id = m["context_id"].as_str().unwrap_or("").to_string();
        if m["cancel"] == true {
            if let Some((cancelled, _)) = contexts.remove(&id) {
                cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            continue;
        }
        let rate = m["output_format"]["sample_rate"].as_u64().unwrap_or(24_000) as u32;
        let entry = contexts.entry(id.clone()).or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<(String, bool)>();
            let cancelled = Arc::new(AtomicBool::new(false));
            let (out, script, sent_chunks, flag) =
                (out.clone(), script.clone(), sent_chunks.clone(), cancelled.clone());
            let id = id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(rtt).await;
                let mut elapsed_ms = 0.0;
                while let Some((transcript, more)) = rx.recv().await {
                    if !transcript.trim().is_empty() {
                        let (samples, _) = speak(&transcript, rate, script.ms_per_char);
                        let ok = stream_speech(&transcript, rate, &script, &flag, &sent_chunks, |piece, _, _| {
                            let data = base64::engine::general_purpose::STANDARD.encode(le_bytes(piece));
                            out.send((Instant::now(), Message::text(json!({"type":"chunk","data":data,"done":false,"status_code":206,"step_time":10,"context_id":id}).to_string()))).is_ok()
                        })
                        .await;
                        if !ok {
                            return;
                        }
                        // Word timestamps, seconds from the context's start.
                        let mut words = Vec::new();
                        let mut starts = Vec::new();
                        let mut ends = Vec::new();
                        let mut at = elapsed_ms;
                        for token in transcript.split_inclusive(' ') {
                            let ms = token.chars().count() as f64 * script.ms_per_char as f64;
                            if !token.trim().is_empty() {
                                words.push(token.trim().to_string());
                                starts.push(at / 1000.0);
                                ends.push((at + ms) / 1000.0);
                            }
                            at += ms;
                        }
                        elapsed_ms += samples.len() as f64 * 1000.0 / rate as f64;
                        let _ = out.send((Instant::now(), Message::text(json!({"type":"timestamps","done":false,"status_code":206,"context_id":id,"word_timestamps":{"words":words,"start":starts,"end":ends}}).to_string())));
                    }
                    if !more {
                        let _ = out.send((Instant::now(), Message::text(json!({"type":"done","done":true,"status_code":206,"context_id":id}).to_string())));
                        return;
                    }
                }
            });
            (cancelled, tx)
        });
        let transcript = m["transcript"].as_str().unwrap_or("").to_string();
        let more = m["continue"].as_bool().unwrap_or(false);
        let _ = entry.1.send((transcript, more));
    }
}

// ---------------------------------------------------------------------------------------
// Deepgram Aura (/v1/speak).

pub fn aura(script: TtsScript) -> FakeServer {
    let script = Arc::new(script);
    serve(
        |req| {
            if !req.uri().path().starts_with("/v1/speak") {
                return Err(404);
            }
            if header(req, "Authorization") != format!("Token {KEY}") {
                return Err(401);
            }
            Ok(())
        },
        move |socket, uri, log, _n| aura_session(socket, uri, log, script.clone()),
    )
}

async fn aura_session(
    socket: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    uri: String,
    log: Arc<Mutex<FakeLog>>,
    script: Arc<TtsScript>,
) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (mut stream, out) = split(socket);
    let rate: u32 = query(&uri, "sample_rate")
        .and_then(|r| r.parse().ok())
        .unwrap_or(24_000);
    let rtt = Duration::from_millis(script.rtt_ms);
    let sent_chunks = Arc::new(AtomicUsize::new(0));
    let cleared = Arc::new(AtomicBool::new(false));
    let (work, mut jobs) = mpsc::unbounded_channel::<VecDeque<String>>();
    {
        let (out, script, cleared, sent_chunks) = (
            out.clone(),
            script.clone(),
            cleared.clone(),
            sent_chunks.clone(),
        );
        tokio::spawn(async move {
            let mut sequence = 0;
            while let Some(texts) = jobs.recv().await {
                tokio::time::sleep(rtt).await;
                for text in texts {
                    let ok = stream_speech(
                        &text,
                        rate,
                        &script,
                        &cleared,
                        &sent_chunks,
                        |piece, _, _| {
                            out.send((Instant::now(), Message::binary(le_bytes(piece))))
                                .is_ok()
                        },
                    )
                    .await;
                    if !ok {
                        break;
                    }
                }
                if !cleared.load(Ordering::SeqCst) {
                    let _ = out.send((
                        Instant::now(),
                        Message::text(json!({"type":"Flushed","sequence_id":sequence}).to_string()),
                    ));
                    sequence += 1;
                }
            }
        });
    }
    let mut buffered = VecDeque::new();
    let _ = out.send((
        Instant::now(),
        Message::text(json!({"type":"Metadata","request_id":"fake","model_name":"aura-2-thalia-en","model_version":"x","model_uuid":"x"}).to_string()),
    ));
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            if matches!(message, Message::Close(_)) {
                return;
            }
            continue;
        };
        log.lock().unwrap().texts.push(text.to_string());
        let m: Value = serde_json::from_str(text.as_str()).unwrap_or_default();
        match m["type"].as_str() {
            Some("Speak") => buffered.push_back(m["text"].as_str().unwrap_or("").to_string()),
            Some("Flush") => {
                cleared.store(false, Ordering::SeqCst);
                let _ = work.send(std::mem::take(&mut buffered));
            }
            Some("Clear") => {
                buffered.clear();
                cleared.store(true, Ordering::SeqCst);
                let _ = out.send((
                    Instant::now() + rtt,
                    Message::text(json!({"type":"Cleared","sequence_id":0}).to_string()),
                ));
            }
            Some("Close") => {
                let _ = out.send((Instant::now() + rtt, close(1000, "")));
                return;
            }
            _ => {}
        }
    }
}
