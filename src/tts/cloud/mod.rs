//! Cloud text-to-speech over WebSocket. Each provider is one file with its wire protocol
//! ([`elevenlabs`], [`cartesia`], [`aura`]) behind [`TtsProtocol`]; what they share is here:
//! a pool of sockets opened before the first reply is needed (one carries several replies
//! as contexts where the provider allows it), one reply per context, text sent a sentence at
//! a time as the dialogue produces it, the provider's timing turned into marks so that a
//! barge-in keeps exactly the words heard, and the context closed or cancelled at once on a
//! barge-in.

pub mod aura;
pub mod cartesia;
pub mod elevenlabs;

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::sentences::SentenceSplitter;
use super::stream::{
    stream_pair, StreamDriver, SynthesisEvent, SynthesisStream, Synthesizer, TextCommand,
};
use super::TtsError;
use crate::cloud::{self, CloudError, Endpoint, Request};

/// What a provider's message says about one reply.
#[derive(Debug, Clone, PartialEq)]
pub enum TtsHeard {
    /// Audio; `said`: units of text (see [`TtsProtocol::units`]) it finishes saying, each
    /// with the ms from the start of this audio where it ends.
    Audio {
        samples: Vec<f32>,
        said: Vec<(usize, f64)>,
    },
    /// Units of text said, ending `end_ms` after the start of the reply's audio.
    Said { units: usize, end_ms: f64 },
    /// The oldest piece of text not yet marked has been said, up to the audio so far.
    PieceDone,
    /// The reply is complete.
    Done,
    /// The provider refused or failed this reply.
    Error { message: String, fatal: bool },
}

/// A provider's wire protocol, as the streams need it.
pub trait TtsProtocol: Send + Sync + 'static {
    fn endpoint(&self) -> &Endpoint;
    fn request(&self) -> Result<Request, CloudError>;
    /// The rate of the audio it sends.
    fn sample_rate(&self) -> u32;
    /// Replies one socket may carry at once.
    fn contexts_per_socket(&self) -> usize;
    /// How a unit of progress is counted in `text` (characters, words, pieces).
    fn units(&self, text: &str) -> usize;
    /// Messages that start reply `context`.
    fn open(&self, context: &str) -> Vec<String>;
    /// Messages that add `text` (a sentence) to reply `context`.
    fn text(&self, context: &str, text: &str) -> Vec<String>;
    /// Messages that say the reply's text is complete.
    fn flush(&self, context: &str) -> Vec<String>;
    /// Messages that stop reply `context` now (a barge-in).
    fn cancel(&self, context: &str) -> Vec<String>;
    /// A message that keeps an idle socket open, if the provider needs one.
    fn keep_alive(&self) -> Option<String>;
    /// Whether a socket can carry another reply after one was cancelled on it (not when
    /// its messages name no reply: late audio of the old one would play in the new one).
    fn reusable_after_cancel(&self) -> bool {
        true
    }
    /// Reads one message: which reply it is about (None: the socket's only one) and what
    /// it says.
    fn read(&self, message: &Message) -> Vec<(Option<String>, TtsHeard)>;
}

/// Timing of cloud synthesis.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CloudTtsConfig {
    pub connect_timeout_ms: u64,
    /// A keepalive after this long without a message sent.
    pub keepalive_ms: u64,
    /// A reply that brings no audio for this long has failed.
    pub stall_ms: u64,
}

impl Default for CloudTtsConfig {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 3000,
            keepalive_ms: 10_000,
            stall_ms: 3000,
        }
    }
}

/// A cloud voice: replies over a pool of sockets to `protocol`'s provider.
pub struct CloudSynthesizer {
    inner: Arc<Pool>,
    name: String,
}

struct Pool {
    protocol: Arc<dyn TtsProtocol>,
    config: CloudTtsConfig,
    connections: Mutex<Vec<Arc<Connection>>>,
    next_context: AtomicU64,
}

impl CloudSynthesizer {
    /// Opens the first socket now, so the first reply does not wait for a handshake.
    pub fn new(protocol: Arc<dyn TtsProtocol>, config: CloudTtsConfig) -> Self {
        let name = protocol.endpoint().provider.to_string();
        let pool = Arc::new(Pool {
            protocol,
            config,
            connections: Mutex::new(Vec::new()),
            next_context: AtomicU64::new(1),
        });
        pool.warm();
        Self { inner: pool, name }
    }
}

impl Synthesizer for CloudSynthesizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn sample_rate(&self) -> u32 {
        self.inner.protocol.sample_rate()
    }

    fn open_stream(&self) -> Result<SynthesisStream, TtsError> {
        let pool = &self.inner;
        let (stream, driver) = stream_pair(pool.protocol.sample_rate());
        let context = format!("hark-{}", pool.next_context.fetch_add(1, Ordering::Relaxed));
        let (heard_tx, heard_rx) = mpsc::unbounded_channel();
        let connection = pool.connection_for(&context, heard_tx);
        // The text input is a blocking channel: a thread hands it to the network runtime.
        let (text_tx, text_rx) = mpsc::unbounded_channel();
        let StreamDriver {
            text: commands,
            events,
            cancel,
        } = driver;
        std::thread::Builder::new()
            .name("hark-tts-text".into())
            .spawn(move || {
                while let Ok(command) = commands.recv() {
                    let flush = command == TextCommand::Flush;
                    if text_tx.send(command).is_err() || flush {
                        return;
                    }
                }
            })
            .map_err(|e| TtsError::Engine(format!("no thread for synthesis: {e}")))?;
        let reply = Reply {
            protocol: pool.protocol.clone(),
            config: pool.config,
            context,
            connection,
            driver: StreamDriver {
                text: std::sync::mpsc::channel().1,
                events,
                cancel,
            },
            marks: MarkTracker::default(),
            position: 0,
        };
        cloud::runtime().spawn(reply.run(text_rx, heard_rx));
        Ok(stream)
    }
}

impl Pool {
    /// A socket ready for the next reply, unless one is.
    fn warm(self: &Arc<Self>) {
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.retain(|c| c.alive.load(Ordering::SeqCst));
        if connections.is_empty() {
            connections.push(Connection::open(self.clone()));
        }
    }

    /// The socket reply `context` goes over (one with room, or a new one), with its
    /// messages routed to `heard`.
    fn connection_for(
        self: &Arc<Self>,
        context: &str,
        heard: mpsc::UnboundedSender<TtsHeard>,
    ) -> Arc<Connection> {
        let capacity = self.protocol.contexts_per_socket();
        let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        connections.retain(|c| c.alive.load(Ordering::SeqCst));
        let connection = match connections
            .iter()
            .find(|c| c.active.load(Ordering::SeqCst) < capacity)
        {
            Some(c) => c.clone(),
            None => {
                let c = Connection::open(self.clone());
                connections.push(c.clone());
                c
            }
        };
        connection.active.fetch_add(1, Ordering::SeqCst);
        connection
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(context.to_string(), heard);
        connection
    }
}

/// One socket and the replies it carries.
struct Connection {
    outgoing: mpsc::UnboundedSender<String>,
    routes: Mutex<HashMap<String, mpsc::UnboundedSender<TtsHeard>>>,
    active: AtomicUsize,
    alive: AtomicBool,
    /// Close once its replies are done.
    retired: AtomicBool,
}

impl Connection {
    fn open(pool: Arc<Pool>) -> Arc<Self> {
        let (outgoing, queued) = mpsc::unbounded_channel();
        let connection = Arc::new(Self {
            outgoing,
            routes: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            alive: AtomicBool::new(true),
            retired: AtomicBool::new(false),
        });
        cloud::runtime().spawn(connection.clone().run(pool, queued));
        connection
    }

    fn send(&self, messages: Vec<String>) {
        for m in messages {
            let _ = self.outgoing.send(m);
        }
    }

    /// No new replies; the socket closes.
    fn retire(&self) {
        self.alive.store(false, Ordering::SeqCst);
        self.retired.store(true, Ordering::SeqCst);
    }

    fn release(&self, context: &str) {
        self.routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(context);
        self.active.fetch_sub(1, Ordering::SeqCst);
    }

    /// Tells every reply on this socket that it failed.
    fn fail_all(&self, message: &str, fatal: bool) {
        self.alive.store(false, Ordering::SeqCst);
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        for route in routes.values() {
            let _ = route.send(TtsHeard::Error {
                message: message.to_string(),
                fatal,
            });
        }
    }

    fn route(&self, context: Option<String>, heard: TtsHeard) {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let route = match &context {
            Some(c) => routes.get(c),
            None if routes.len() == 1 => routes.values().next(),
            None => None,
        };
        match (route, heard) {
            (Some(route), heard) => {
                let _ = route.send(heard);
            }
            // An error about the socket rather than a reply.
            (None, TtsHeard::Error { message, fatal }) if context.is_none() => {
                for route in routes.values() {
                    let _ = route.send(TtsHeard::Error {
                        message: message.clone(),
                        fatal,
                    });
                }
            }
            // A late message of a reply already ended.
            (None, _) => {}
        }
    }

    async fn run(self: Arc<Self>, pool: Arc<Pool>, mut queued: mpsc::UnboundedReceiver<String>) {
        let protocol = &pool.protocol;
        let provider = protocol.endpoint().provider;
        let timeout = Duration::from_millis(pool.config.connect_timeout_ms);
        let socket = match protocol.request() {
            Ok(request) => protocol.endpoint().connect(request, timeout).await,
            Err(e) => Err(e),
        };
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                self.fail_all(&e.to_string(), !e.is_transient());
                return;
            }
        };
        let (mut sink, mut stream) = socket.split();
        let keepalive = Duration::from_millis(pool.config.keepalive_ms);
        let mut last_sent = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let reason = loop {
            tokio::select! {
                message = queued.recv() => {
                    let Some(message) = message else { break "the synthesizer went away".to_string() };
                    if let Err(e) = sink.send(Message::text(message)).await {
                        break format!("{provider}: {e}");
                    }
                    last_sent = Instant::now();
                }
                message = stream.next() => match message {
                    Some(Ok(Message::Close(frame))) => {
                        break format!("{provider} {}", cloud::describe_close(frame.as_ref()));
                    }
                    Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => {
                        for (context, heard) in protocol.read(&m) {
                            self.route(context, heard);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("{provider}: {e}"),
                    None => break format!("{provider} closed the connection"),
                },
                _ = tick.tick() => {
                    if self.retired.load(Ordering::SeqCst) {
                        let _ = sink.close().await;
                        break "retired".to_string();
                    }
                    if last_sent.elapsed() >= keepalive {
                        if let Some(k) = protocol.keep_alive() {
                            if let Err(e) = sink.send(Message::text(k)).await {
                                break format!("{provider}: {e}");
                            }
                        }
                        last_sent = Instant::now();
                    }
                }
            }
        };
        self.fail_all(&reason, false);
        // A socket the provider closed while idle is replaced, so the next reply finds one.
        let idle = self.active.load(Ordering::SeqCst) == 0;
        if idle && Arc::strong_count(&pool) > 1 {
            tokio::time::sleep(cloud::RETRY_DELAYS[0]).await;
            pool.warm();
        }
    }
}

/// One reply on its context.
struct Reply {
    protocol: Arc<dyn TtsProtocol>,
    config: CloudTtsConfig,
    context: String,
    connection: Arc<Connection>,
    driver: StreamDriver,
    marks: MarkTracker,
    /// Samples of this reply's audio so far.
    position: u64,
}

impl Reply {
    fn samples_at(&self, ms: f64) -> u64 {
        (ms.max(0.0) * self.protocol.sample_rate() as f64 / 1000.0).round() as u64
    }

    fn send_marks(&mut self, marks: Vec<SynthesisEvent>) -> bool {
        marks.into_iter().all(|m| self.driver.send(m))
    }

    async fn run(
        mut self,
        mut text: mpsc::UnboundedReceiver<TextCommand>,
        mut heard: mpsc::UnboundedReceiver<TtsHeard>,
    ) {
        let mut progress = TextProgress {
            splitter: SentenceSplitter::new(),
            opened: false,
            flushed: false,
            waiting_since: None,
        };
        let stall = Duration::from_millis(self.config.stall_ms);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            let step = tokio::select! {
                command = text.recv(), if !progress.flushed => {
                    self.on_command(command, &mut progress)
                }
                event = heard.recv() => {
                    let Some(event) = event else { break };
                    self.on_heard(event, &mut progress)
                }
                _ = tick.tick() => self.on_tick(&progress, stall),
            };
            if step.is_break() {
                break;
            }
        }
    }

    /// Text from the dialogue (None: the reply was abandoned): its sentences go to the
    /// provider, the context opened before the first. Break: the reply is over.
    fn on_command(
        &mut self,
        command: Option<TextCommand>,
        progress: &mut TextProgress,
    ) -> ControlFlow<()> {
        // The text input closing without a flush means the reply was abandoned.
        let Some(command) = command else {
            self.cancel();
            return ControlFlow::Break(());
        };
        progress.flushed |= command == TextCommand::Flush;
        for sentence in progress.splitter.take(&command) {
            if !std::mem::replace(&mut progress.opened, true) {
                self.connection.send(self.protocol.open(&self.context));
            }
            self.marks.add(&sentence, self.protocol.units(&sentence));
            self.connection
                .send(self.protocol.text(&self.context, &sentence));
            progress.waiting_since.get_or_insert_with(Instant::now);
        }
        if progress.flushed {
            if !progress.opened {
                // Nothing to say.
                self.driver.send(SynthesisEvent::Done);
                self.connection.release(&self.context);
                return ControlFlow::Break(());
            }
            self.connection.send(self.protocol.flush(&self.context));
            progress.waiting_since.get_or_insert_with(Instant::now);
        }
        ControlFlow::Continue(())
    }

    /// What the provider said of this reply: audio and marks go to the stream, and the end
    /// or an error ends the reply. Break: the reply is over.
    fn on_heard(&mut self, event: TtsHeard, progress: &mut TextProgress) -> ControlFlow<()> {
        match event {
            TtsHeard::Audio { samples, said } => {
                let start = self.position;
                self.position += samples.len() as u64;
                progress.waiting_since = None;
                if !self.driver.send(SynthesisEvent::Audio(samples)) {
                    self.cancel();
                    return ControlFlow::Break(());
                }
                let mut marks = Vec::new();
                for (units, end_ms) in said {
                    let end = (start + self.samples_at(end_ms)).min(self.position);
                    marks.extend(self.marks.said(units, end));
                }
                if !self.send_marks(marks) {
                    self.cancel();
                    return ControlFlow::Break(());
                }
            }
            TtsHeard::Said { units, end_ms } => {
                let end = self.samples_at(end_ms).min(self.position);
                let marks = self.marks.said(units, end);
                if !self.send_marks(marks) {
                    self.cancel();
                    return ControlFlow::Break(());
                }
            }
            TtsHeard::PieceDone => {
                let marks = self.marks.piece_done(self.position);
                if !self.send_marks(marks) {
                    self.cancel();
                    return ControlFlow::Break(());
                }
                // Providers that mark pieces end the reply with its last one.
                if progress.flushed && self.marks.pieces.is_empty() {
                    self.driver.send(SynthesisEvent::Done);
                    self.connection.release(&self.context);
                    return ControlFlow::Break(());
                }
            }
            TtsHeard::Done => {
                let marks = self.marks.finish(self.position);
                if self.send_marks(marks) {
                    self.driver.send(SynthesisEvent::Done);
                }
                self.connection.release(&self.context);
                return ControlFlow::Break(());
            }
            TtsHeard::Error { message, .. } => {
                self.driver.send(SynthesisEvent::Failed(message));
                self.cancel();
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// Every 20 ms: a cancelled reply, or one that waited too long for audio, ends. Break:
    /// the reply is over.
    fn on_tick(&self, progress: &TextProgress, stall: Duration) -> ControlFlow<()> {
        if self.driver.cancel.is_cancelled() {
            self.cancel();
            return ControlFlow::Break(());
        }
        if progress.waiting_since.is_some_and(|t| t.elapsed() >= stall) {
            let provider = self.protocol.endpoint().provider;
            self.driver.send(SynthesisEvent::Failed(format!(
                "{provider} sent no audio for {} ms",
                stall.as_millis()
            )));
            self.cancel();
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn cancel(&self) {
        self.connection.send(self.protocol.cancel(&self.context));
        self.connection.release(&self.context);
        if !self.protocol.reusable_after_cancel() {
            self.connection.retire();
        }
    }
}

/// How far a reply's text has gone to the provider.
struct TextProgress {
    splitter: SentenceSplitter,
    /// The reply's context is open on the socket.
    opened: bool,
    /// All the text is in, and the provider asked to finish it.
    flushed: bool,
    /// Since when audio has been awaited (None: none is).
    waiting_since: Option<Instant>,
}

/// Turns the provider's progress through the text into marks of the pieces sent.
#[derive(Debug, Default)]
struct MarkTracker {
    /// Pieces not yet marked, with their length in units.
    pieces: VecDeque<(String, usize)>,
    /// Units of the first piece already said.
    said: usize,
    /// Where the first piece's audio begins.
    start: u64,
}

impl MarkTracker {
    fn add(&mut self, text: &str, units: usize) {
        self.pieces.push_back((text.to_string(), units.max(1)));
    }

    fn mark(&mut self, end: u64) -> Option<SynthesisEvent> {
        let (text, _) = self.pieces.pop_front()?;
        let start = self.start.min(end);
        self.start = end;
        self.said = 0;
        Some(SynthesisEvent::Mark { text, start, end })
    }

    /// `units` more said, ending at sample `end`.
    fn said(&mut self, units: usize, end: u64) -> Vec<SynthesisEvent> {
        let mut marks = Vec::new();
        self.said += units;
        while let Some(&(_, length)) = self.pieces.front() {
            if self.said < length {
                break;
            }
            let rest = self.said - length;
            marks.extend(self.mark(end));
            self.said = rest;
        }
        marks
    }

    fn piece_done(&mut self, end: u64) -> Vec<SynthesisEvent> {
        self.mark(end).into_iter().collect()
    }

    /// Everything left was said by sample `end`.
    fn finish(&mut self, end: u64) -> Vec<SynthesisEvent> {
        let rest: Vec<String> = self.pieces.drain(..).map(|(t, _)| t).collect();
        if rest.is_empty() {
            return Vec::new();
        }
        let start = self.start.min(end);
        vec![SynthesisEvent::Mark {
            text: rest.join(" "),
            start,
            end,
        }]
    }
}

/// Audio sent as base64 16-bit PCM (ElevenLabs, Cartesia); None when it is not base64.
pub fn base64_pcm(data: &str) -> Option<Vec<f32>> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    Some(cloud::pcm16_vec(&bytes))
}

/// What a message from `provider` that is not its protocol says: an error, not fatal.
pub fn unreadable(provider: &str) -> TtsHeard {
    TtsHeard::Error {
        message: format!("{provider} sent an unreadable message"),
        fatal: false,
    }
}

/// Non-whitespace characters: how character alignments count.
pub fn visible_chars(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(marks: &[SynthesisEvent]) -> Vec<(String, u64, u64)> {
        marks
            .iter()
            .filter_map(|m| match m {
                SynthesisEvent::Mark { text, start, end } => Some((text.clone(), *start, *end)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn marks_follow_the_providers_progress_through_the_pieces() {
        let mut t = MarkTracker::default();
        t.add("Hello there.", visible_chars("Hello there."));
        t.add("How are you?", visible_chars("How are you?"));
        assert!(t.said(5, 4000).is_empty(), "half of the first piece");
        let marks = t.said(12, 12_000);
        assert_eq!(texts(&marks), vec![("Hello there.".into(), 0, 12_000)]);
        let marks = t.finish(20_000);
        assert_eq!(texts(&marks), vec![("How are you?".into(), 12_000, 20_000)]);
    }

    #[test]
    fn pieces_done_one_by_one_and_the_rest_at_the_end() {
        let mut t = MarkTracker::default();
        for s in ["One.", "Two.", "Three."] {
            t.add(s, 1);
        }
        assert_eq!(texts(&t.piece_done(100)), vec![("One.".into(), 0, 100)]);
        assert_eq!(
            texts(&t.finish(300)),
            vec![("Two. Three.".into(), 100, 300)]
        );
        assert!(t.finish(400).is_empty());
    }
}
