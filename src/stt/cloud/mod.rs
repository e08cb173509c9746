//! Cloud speech-to-text over WebSocket: one socket per conversation, opened when the
//! conversation starts, audio streamed as 16-bit PCM in 50 ms frames. Each provider is one
//! file with its wire protocol ([`deepgram`], [`assemblyai`]) behind [`SttProtocol`]; what
//! they share — reconnecting with backoff, hearing the utterance again after a reconnection,
//! keepalives, the final owed after the local endpoint ([`turns`]), closing without losing
//! the last words — is here.

pub mod assemblyai;
pub mod deepgram;
pub mod turns;

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::cloud::{self, CloudError, Endpoint, Request};
use crate::stt::history::AudioHistory;
use crate::stt::recognizer::{
    Recognizer, RecognizerCapabilities, RecognizerEvent, RecognizerSession, SpeechHint,
};
use crate::stt::SttError;
use turns::{Heard, TurnAssembler};

/// Audio goes out in frames of this many samples (50 ms at 16 kHz, as providers advise).
const FRAME_SAMPLES: usize = 800;
/// Audio kept to send again after a reconnection.
const HISTORY_SECONDS: u32 = 30;

/// A provider's wire protocol, as the session needs it.
pub trait SttProtocol: Send + Sync + 'static {
    fn endpoint(&self) -> &Endpoint;
    /// The handshake for a new socket; `phrases` are the words the dialogue expects.
    fn request(&self, phrases: &[String]) -> Result<Request, CloudError>;
    /// A new socket starts: forget what was read on the last one.
    fn reader(&self) -> Box<dyn SttReader>;
    /// Asks the provider to end the turn now.
    fn finalize(&self) -> String;
    /// Keeps an idle socket open, if the provider needs it.
    fn keep_alive(&self) -> Option<String>;
    /// Asks the provider to finish the audio it has and close.
    fn close_stream(&self) -> String;
    /// New expected phrases mid-stream, if the provider takes them.
    fn phrases_update(&self, phrases: &[String]) -> Option<String>;
    /// Whether new phrases are worth a new socket when the provider takes none mid-stream
    /// (done between utterances, while the audio waits).
    fn reconnects_for_phrases(&self) -> bool {
        false
    }
    /// Whether a close with this code means trying again cannot help.
    fn close_is_final(&self, code: u16) -> bool;
}

/// Reads one socket's messages.
pub trait SttReader: Send {
    fn read(&mut self, text: &str) -> Result<Vec<Heard>, ServerError>;
}

/// An error the provider reported in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerError {
    pub message: String,
    /// Trying again cannot help (a refused key, a bad setting).
    pub fatal: bool,
}

/// Timing of a cloud session.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudSttConfig {
    /// How long after the local endpoint the provider may take to end the turn before the
    /// text heard so far is the final.
    pub finalize_timeout_ms: u64,
    /// A keepalive after this long without audio.
    pub keepalive_ms: u64,
    pub connect_timeout_ms: u64,
    /// How long the provider may take to send its last results after being asked to close.
    pub close_wait_ms: u64,
}

impl Default for CloudSttConfig {
    fn default() -> Self {
        Self {
            finalize_timeout_ms: 700,
            keepalive_ms: 4000,
            connect_timeout_ms: 3000,
            close_wait_ms: 3000,
        }
    }
}

/// A cloud recognizer: a socket per conversation to `protocol`'s provider.
pub struct CloudRecognizer {
    protocol: Arc<dyn SttProtocol>,
    config: CloudSttConfig,
    name: String,
}

impl CloudRecognizer {
    pub fn new(protocol: Arc<dyn SttProtocol>, config: CloudSttConfig) -> Self {
        let name = protocol.endpoint().provider.to_string();
        Self {
            protocol,
            config,
            name,
        }
    }
}

impl Recognizer for CloudRecognizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> RecognizerCapabilities {
        RecognizerCapabilities {
            interim_results: true,
            endpointing: true,
        }
    }

    fn open_session(&self) -> Result<Box<dyn RecognizerSession>, SttError> {
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared::default());
        let task = SessionTask {
            protocol: self.protocol.clone(),
            config: self.config,
            up: up_rx,
            events: events_tx,
            shared: shared.clone(),
            turns: TurnAssembler::new(self.config.finalize_timeout_ms),
            history: AudioHistory::new(HISTORY_SECONDS),
            utterance_from_ms: 0,
            phrases: Vec::new(),
            clock: Instant::now(),
        };
        cloud::runtime().spawn(task.run());
        Ok(Box::new(CloudSession {
            up: up_tx,
            events,
            frame: Vec::with_capacity(FRAME_SAMPLES),
            shared,
        }))
    }
}

/// What the session's two halves share.
#[derive(Debug, Default)]
struct Shared {
    /// Events sent and not yet polled.
    unread: AtomicUsize,
    /// A final is owed, or the session is still closing.
    owes: AtomicBool,
}

enum Up {
    Audio(Vec<f32>),
    Hint(SpeechHint),
    Phrases(Vec<String>),
    Finish,
}

/// The pipeline's end of a cloud session; the socket lives on the cloud runtime.
struct CloudSession {
    up: mpsc::UnboundedSender<Up>,
    events: std::sync::mpsc::Receiver<RecognizerEvent>,
    frame: Vec<f32>,
    shared: Arc<Shared>,
}

impl CloudSession {
    fn send_frame(&mut self) {
        if !self.frame.is_empty() {
            let frame = std::mem::replace(&mut self.frame, Vec::with_capacity(FRAME_SAMPLES));
            let _ = self.up.send(Up::Audio(frame));
        }
    }
}

impl RecognizerSession for CloudSession {
    fn push_audio(&mut self, samples: &[f32]) {
        for chunk in samples.chunks(FRAME_SAMPLES) {
            let room = FRAME_SAMPLES - self.frame.len();
            let (now, later) = chunk.split_at(room.min(chunk.len()));
            self.frame.extend_from_slice(now);
            if self.frame.len() == FRAME_SAMPLES {
                self.send_frame();
            }
            self.frame.extend_from_slice(later);
        }
    }

    fn hint(&mut self, hint: SpeechHint) {
        // The audio before a hint goes first, so the provider has heard what the hint is about.
        if matches!(hint, SpeechHint::Stopped { .. } | SpeechHint::Paused { .. }) {
            self.send_frame();
        }
        if matches!(hint, SpeechHint::Stopped { .. }) {
            // Owed from now, not from when the task reads the hint.
            self.shared.owes.store(true, Ordering::SeqCst);
        }
        let _ = self.up.send(Up::Hint(hint));
    }

    fn expect_phrases(&mut self, phrases: &[String]) {
        let _ = self.up.send(Up::Phrases(phrases.to_vec()));
    }

    fn poll(&mut self) -> Option<RecognizerEvent> {
        let event = self.events.try_recv().ok()?;
        self.shared.unread.fetch_sub(1, Ordering::SeqCst);
        Some(event)
    }

    fn finish(&mut self) {
        self.send_frame();
        self.shared.owes.store(true, Ordering::SeqCst);
        let _ = self.up.send(Up::Finish);
    }

    fn busy(&self) -> bool {
        self.shared.owes.load(Ordering::SeqCst) || self.shared.unread.load(Ordering::SeqCst) > 0
    }
}

/// How a connection ended.
enum Ended {
    /// The session is over (finished, or the pipeline went away).
    Done,
    /// A new socket is wanted (new phrases).
    Reopen,
    /// Lost; another connection may carry on.
    Lost(String),
    /// Trying again cannot help.
    Fatal(String),
}

struct SessionTask {
    protocol: Arc<dyn SttProtocol>,
    config: CloudSttConfig,
    up: mpsc::UnboundedReceiver<Up>,
    events: std::sync::mpsc::Sender<RecognizerEvent>,
    shared: Arc<Shared>,
    turns: TurnAssembler,
    history: AudioHistory,
    /// Where the utterance under way began on the timeline.
    utterance_from_ms: u64,
    phrases: Vec<String>,
    clock: Instant,
}

impl SessionTask {
    fn now_ms(&self) -> u64 {
        self.clock.elapsed().as_millis() as u64
    }

    fn emit(&self, events: Vec<RecognizerEvent>) {
        for event in events {
            self.shared.unread.fetch_add(1, Ordering::SeqCst);
            if self.events.send(event).is_err() {
                self.shared.unread.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    fn update_owes(&self, finishing: bool) {
        self.shared
            .owes
            .store(finishing || self.turns.owes_final(), Ordering::SeqCst);
    }

    async fn run(mut self) {
        let mut failures = 0usize;
        let mut finishing = false;
        loop {
            let outcome = match self.connect().await {
                Ok(socket) => {
                    let opened = Instant::now();
                    let ended = self.converse(socket, &mut finishing).await;
                    if opened.elapsed() >= cloud::STABLE_AFTER {
                        failures = 0;
                    }
                    ended
                }
                Err(e) if e.is_transient() => Ended::Lost(e.to_string()),
                Err(e) => Ended::Fatal(e.to_string()),
            };
            match outcome {
                Ended::Done => break,
                Ended::Reopen => {}
                Ended::Fatal(message) => {
                    self.fail(message);
                    break;
                }
                Ended::Lost(message) if finishing => {
                    let mut out = Vec::new();
                    self.turns.give_up(&mut out);
                    self.emit(out);
                    let _ = message; // lost while closing: what was heard is the answer
                    break;
                }
                Ended::Lost(message) => {
                    let Some(delay) = cloud::RETRY_DELAYS.get(failures) else {
                        self.fail(format!("{message}; gave up after {failures} reconnections"));
                        break;
                    };
                    failures += 1;
                    self.emit(vec![RecognizerEvent::Error {
                        message: format!("{message}; reconnecting"),
                    }]);
                    tokio::time::sleep(*delay).await;
                }
            }
        }
        self.shared.owes.store(false, Ordering::SeqCst);
    }

    fn fail(&self, message: String) {
        self.emit(vec![RecognizerEvent::Failed { message }]);
    }

    async fn connect(&self) -> Result<cloud::Socket, CloudError> {
        let request = self.protocol.request(&self.phrases)?;
        let timeout = Duration::from_millis(self.config.connect_timeout_ms);
        self.protocol.endpoint().connect(request, timeout).await
    }

    /// One connection, until it ends.
    async fn converse(&mut self, socket: cloud::Socket, finishing: &mut bool) -> Ended {
        let provider = self.protocol.endpoint().provider;
        let (sink, mut stream) = socket.split();
        let mut reader = self.protocol.reader();
        let mut link = Link {
            provider,
            sink,
            last_sent: Instant::now(),
            close_by: None,
        };
        if let ControlFlow::Break(ended) = self.resume(&mut link, *finishing).await {
            return ended;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            let mut out = Vec::new();
            let step = tokio::select! {
                message = stream.next() => {
                    self.on_message(message, &mut *reader, &link, *finishing, &mut out)
                }
                up = self.up.recv(), if !*finishing => {
                    self.on_up(up, &mut link, finishing, &mut out).await
                }
                _ = tick.tick() => self.on_tick(&mut link, *finishing, &mut out).await,
            };
            if let ControlFlow::Break(ended) = step {
                return ended;
            }
            self.emit(out);
            self.update_owes(*finishing);
        }
    }

    /// A new connection's start: an utterance cut off with the last connection is heard
    /// again in full, and a session already finishing asks the provider to close. Break: the
    /// connection ended so.
    async fn resume(&mut self, link: &mut Link, finishing: bool) -> ControlFlow<Ended> {
        let provider = link.provider;
        // An utterance cut off with the last connection is heard again in full.
        if self.turns.in_utterance() {
            self.turns.restart_text();
            let audio = self.history.since(self.utterance_from_ms);
            for frame in audio.chunks(FRAME_SAMPLES) {
                if let Err(e) = link.sink.send(binary(frame)).await {
                    return ControlFlow::Break(Ended::Lost(format!("{provider}: {e}")));
                }
            }
            if self.turns.owes_final() {
                let _ = link
                    .sink
                    .send(Message::text(self.protocol.finalize()))
                    .await;
            }
        }
        if finishing {
            let _ = link
                .sink
                .send(Message::text(self.protocol.close_stream()))
                .await;
            link.close_by = Some(Instant::now() + Duration::from_millis(self.config.close_wait_ms));
        }
        ControlFlow::Continue(())
    }

    /// A message from the provider (None: the socket ended): what it heard goes to `out`.
    /// Break: the connection ended so.
    fn on_message(
        &mut self,
        message: Option<Result<Message, WsError>>,
        reader: &mut dyn SttReader,
        link: &Link,
        finishing: bool,
        out: &mut Vec<RecognizerEvent>,
    ) -> ControlFlow<Ended> {
        let provider = link.provider;
        match message {
            Some(Ok(Message::Text(text))) => match reader.read(text.as_str()) {
                Ok(heard) => {
                    let now = self.now_ms();
                    self.turns.heard_message(heard, now, out);
                    ControlFlow::Continue(())
                }
                Err(e) if e.fatal => {
                    ControlFlow::Break(Ended::Fatal(format!("{provider}: {}", e.message)))
                }
                Err(e) => {
                    out.push(RecognizerEvent::Error {
                        message: format!("{provider}: {}", e.message),
                    });
                    ControlFlow::Continue(())
                }
            },
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                if finishing {
                    self.turns.give_up(out);
                    self.emit(std::mem::take(out));
                    return ControlFlow::Break(Ended::Done);
                }
                let reason = format!("{provider} {}", cloud::describe_close(frame.as_ref()));
                ControlFlow::Break(if self.protocol.close_is_final(code) {
                    Ended::Fatal(reason)
                } else {
                    Ended::Lost(reason)
                })
            }
            Some(Ok(_)) => ControlFlow::Continue(()),
            Some(Err(e)) => ControlFlow::Break(Ended::Lost(format!("{provider}: {e}"))),
            None => ControlFlow::Break(Ended::Lost(format!("{provider} closed the connection"))),
        }
    }

    /// What the pipeline sent up (None: it went away, as a finish): audio goes out, hints
    /// and phrases are acted on, a finish asks the provider to close. Break: the connection
    /// ended so.
    async fn on_up(
        &mut self,
        up: Option<Up>,
        link: &mut Link,
        finishing: &mut bool,
        out: &mut Vec<RecognizerEvent>,
    ) -> ControlFlow<Ended> {
        match up {
            Some(Up::Audio(samples)) => {
                self.history.push(&samples);
                if let Err(e) = link.sink.send(binary(&samples)).await {
                    return ControlFlow::Break(Ended::Lost(format!("{}: {e}", link.provider)));
                }
                link.last_sent = Instant::now();
            }
            Some(Up::Hint(hint)) => return self.on_hint(hint, link, out).await,
            Some(Up::Phrases(phrases)) => return self.on_phrases(phrases, link, out).await,
            Some(Up::Finish) | None => {
                *finishing = true;
                let _ = link
                    .sink
                    .send(Message::text(self.protocol.close_stream()))
                    .await;
                link.close_by =
                    Some(Instant::now() + Duration::from_millis(self.config.close_wait_ms));
            }
        }
        ControlFlow::Continue(())
    }

    /// A speech hint: noted for the turns, and the provider asked to finalize when they owe
    /// a final. Break: the connection ended so.
    async fn on_hint(
        &mut self,
        hint: SpeechHint,
        link: &mut Link,
        out: &mut Vec<RecognizerEvent>,
    ) -> ControlFlow<Ended> {
        if let SpeechHint::Started { audio_from_ms } = hint {
            // A little before the onset, as the endpointer's own pre-roll.
            self.utterance_from_ms = audio_from_ms.saturating_sub(300);
        }
        let now = self.now_ms();
        if self.turns.hint(hint, now, out) == turns::Request::Finalize {
            if let Err(e) = link
                .sink
                .send(Message::text(self.protocol.finalize()))
                .await
            {
                self.emit(std::mem::take(out));
                return ControlFlow::Break(Ended::Lost(format!("{}: {e}", link.provider)));
            }
        }
        ControlFlow::Continue(())
    }

    /// New expected phrases: sent to the provider mid-stream, or (between utterances, for a
    /// provider that takes them only on a new socket) a new connection. Break: the
    /// connection ended so.
    async fn on_phrases(
        &mut self,
        phrases: Vec<String>,
        link: &mut Link,
        out: &mut Vec<RecognizerEvent>,
    ) -> ControlFlow<Ended> {
        if phrases != self.phrases {
            self.phrases = phrases;
            if let Some(update) = self.protocol.phrases_update(&self.phrases) {
                let _ = link.sink.send(Message::text(update)).await;
            } else if self.protocol.reconnects_for_phrases() && !self.turns.in_utterance() {
                let _ = link.sink.close().await;
                self.emit(std::mem::take(out));
                return ControlFlow::Break(Ended::Reopen);
            }
        }
        ControlFlow::Continue(())
    }

    /// Every 20 ms: the turns' timers, a keepalive on an idle socket, and the end of the wait
    /// for the provider's last results. Break: the connection ended so.
    async fn on_tick(
        &mut self,
        link: &mut Link,
        finishing: bool,
        out: &mut Vec<RecognizerEvent>,
    ) -> ControlFlow<Ended> {
        let now = self.now_ms();
        self.turns.tick(now, out);
        let idle = link.last_sent.elapsed() >= Duration::from_millis(self.config.keepalive_ms);
        if idle && !finishing {
            if let Some(keep_alive) = self.protocol.keep_alive() {
                if let Err(e) = link.sink.send(Message::text(keep_alive)).await {
                    self.emit(std::mem::take(out));
                    return ControlFlow::Break(Ended::Lost(format!("{}: {e}", link.provider)));
                }
            }
            link.last_sent = Instant::now();
        }
        if link.close_by.is_some_and(|t| Instant::now() >= t) {
            self.turns.give_up(out);
            self.emit(std::mem::take(out));
            let _ = link.sink.close().await;
            return ControlFlow::Break(Ended::Done);
        }
        ControlFlow::Continue(())
    }
}

/// One connection's sending side, as `converse` keeps it.
struct Link {
    provider: &'static str,
    sink: SplitSink<cloud::Socket, Message>,
    /// When audio or a keepalive last went out.
    last_sent: Instant,
    /// Once the provider is asked to close: when the wait for its last results ends.
    close_by: Option<Instant>,
}

fn binary(samples: &[f32]) -> Message {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    cloud::pcm16_bytes(samples, &mut bytes);
    Message::binary(bytes)
}
