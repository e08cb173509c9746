//! `hark serve`: the voice assistant as a headless service. Each WebSocket connection is one
//! conversation: the client streams its microphone in, hark streams its voice back, and
//! both see the conversation's events (see `protocol` for the wire format). A conversation
//! runs the same voice loop as `hark run` on its own thread, with its own engines. A plain
//! HTTP request to the same port gets the browser client (`page`).

pub mod auth;
pub mod feedback;
pub mod guard;
pub mod http;
pub mod page;
pub mod protocol;
pub mod rate;
pub mod socket_audio;
pub mod tls;
pub mod twilio;

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::audio::resample::StreamResampler;
use crate::audio::SPEECH_RATE;
use crate::dialogue::Brain;
use crate::pipeline::turn::TurnConfig;
use crate::pipeline::{run_voice_loop, Engines, LoopConfig};
use crate::stt::recognizer::Recognizer;
use crate::telemetry::events::EventLog;
use crate::tts::stream::Synthesizer;
use auth::Tokens;
use http::{Answer, Head, Io};
use protocol::{decode_pcm16, parse_client_message, ClientMessage, ProtocolError, ServerMessage};
use socket_audio::{OutQueue, Outgoing, SocketSink, SocketSource};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not listen: {0}")]
    Listen(std::io::Error),
    #[error("could not start the conversation's engines: {0}")]
    Engines(String),
}

/// Makes the engines of each conversation (a recogniser session, the dialogue core, a voice).
pub trait ConversationFactory: Send + Sync {
    /// The speech recognizer all conversations share.
    fn recognizer(&self) -> Arc<dyn Recognizer>;
    /// The voice all conversations share.
    fn synthesizer(&self) -> Arc<dyn Synthesizer>;
    /// A dialogue core for `user`, or for nobody in particular (None: nothing is kept).
    fn brain(&self, user: Option<&str>) -> Result<Box<dyn Brain>, ServerError>;
    /// The end-of-turn model all conversations share, if there is one.
    fn turn_model(&self) -> Option<Arc<crate::vad::turn_model::TurnModel>> {
        None
    }
    /// A conversation with `user` (None: nothing is kept).
    fn open(&self, user: Option<&str>) -> Result<Engines, ServerError> {
        let recognizer = self
            .recognizer()
            .open_session()
            .map_err(|e| ServerError::Engines(e.to_string()))?;
        Ok(Engines {
            recognizer,
            brain: self.brain(user)?,
            synthesizer: self.synthesizer(),
            turn_model: self.turn_model(),
        })
    }
    /// Keeps a client's score (1–5) of `conversation`.
    fn rate(&self, _conversation: &str, _score: u8) {}
    /// Keeps what the person who took over handoff `id` said of it.
    fn handoff_feedback(&self, _id: &str, _feedback: feedback::Feedback) {}
    /// The dialogue domain the conversations run (announced in `ready`).
    fn domain(&self) -> &str;
}

/// Who may connect.
#[derive(Debug, Clone)]
pub enum Access {
    /// Holders of a token, as the user it names.
    Tokens(Arc<Tokens>),
    /// Anyone, as nobody: conversations keep no memory.
    Anonymous,
}

/// What one client may cost the server. Each is refused with a clear `error`, and the
/// server goes on serving the others.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest WebSocket message (and frame) a client may send.
    pub max_message_bytes: usize,
    /// Connections at once (conversations or not); more are answered 503.
    pub max_connections: usize,
    /// Of `max_connections`, those kept for requests that show a valid token and for
    /// `/healthz` and `/readyz`: sockets without a token cannot take the last of them, so a
    /// flood of anonymous connections locks out neither the paying users nor the health
    /// check.
    pub reserved_connections: usize,
    /// Time to complete the handshake.
    pub handshake_timeout_ms: u64,
    /// Connections one address may have in their handshake at once (0: any); more are
    /// closed at once, so slow requests from one address cannot hold every slot.
    pub max_handshakes_per_address: usize,
    /// Time from the handshake to `start`.
    pub start_timeout_ms: u64,
    /// Time without a message from a client in conversation.
    pub idle_timeout_ms: u64,
    /// Longest conversation.
    pub max_conversation_s: u64,
    /// How far a client's audio may run ahead of real time before reading it waits.
    pub max_audio_ahead_ms: u64,
    /// Messages waiting for a client that does not read, and how long that may last.
    pub outgoing_queue: usize,
    pub write_stall_ms: u64,
    /// Conversations one token (without tokens: one address) may start per minute (0: any).
    pub starts_per_minute: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 256 * 1024,
            max_connections: 64,
            reserved_connections: 8,
            handshake_timeout_ms: 5000,
            max_handshakes_per_address: 8,
            start_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            max_conversation_s: 3600,
            max_audio_ahead_ms: 2000,
            outgoing_queue: 512,
            write_stall_ms: 5000,
            starts_per_minute: 30,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Conversations at once; more are refused with an error (each holds its own engines,
    /// and decodes share the CPU).
    pub max_conversations: usize,
    /// How each conversation runs (endpointing, turn-taking, the greeting).
    pub conversation: LoopConfig,
    pub access: Access,
    /// Browser origins allowed besides the page's own.
    pub allowed_origins: Vec<String>,
    pub limits: Limits,
    /// Serve over TLS (https:// and wss://) instead of plain TCP.
    pub tls: Option<tls::Tls>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_conversations: 4,
            conversation: LoopConfig {
                turns: TurnConfig {
                    greet: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            access: Access::Anonymous,
            allowed_origins: Vec::new(),
            limits: Limits::default(),
            tls: None,
        }
    }
}

/// Audio pieces waiting for the voice loop, each at most 20 ms: a client that sends faster
/// than the loop reads waits, and at most this much audio is held for it.
const AUDIO_QUEUE: usize = 25;
/// The resampler's block for clients not at 16 kHz.
const RESAMPLE_CHUNK_MS: u32 = 20;
/// 20 ms at 16 kHz.
const PIECE: usize = 320;

/// How long conversations may take to end once the server is asked to stop: the reply under
/// way plays out and the summary goes to the client (a greeting alone is ~3 s of audio), and
/// the process still exits before `docker stop`'s 10 s end in SIGKILL.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Serves conversations on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    factory: Arc<dyn ConversationFactory>,
    config: ServerConfig,
) -> Result<(), ServerError> {
    serve_until(listener, factory, config, std::future::pending()).await
}

/// Serves conversations on `listener` until `shutdown` completes; then it accepts no more,
/// tells each client the conversation ends, and gives them [`SHUTDOWN_GRACE`] to finish the
/// reply under way (every turn is already saved as it happens).
pub async fn serve_until(
    listener: TcpListener,
    factory: Arc<dyn ConversationFactory>,
    config: ServerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    let slots = Arc::new(Semaphore::new(config.max_conversations.max(1)));
    let rate = Arc::new(rate::StartRate::new(config.limits.starts_per_minute));
    let connections = Connections::new(&config.limits);
    let handshakes = guard::PerAddress::default();
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = accept(&listener, "hark serve") => match accepted {
                Some(accepted) => accepted,
                None => continue,
            },
            _ = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        let Some(handshaking) =
            handshakes.start(peer.ip(), config.limits.max_handshakes_per_address)
        else {
            metrics().rejected("handshakes_per_address");
            metrics().security("handshakes_per_address");
            tracing::warn!(%peer, "closed: too many connections from one address in their handshake");
            continue;
        };
        let place = connections.take();
        if place.is_none() && config.tls.is_some() {
            // Over the limit: not worth a TLS handshake to say so.
            metrics().rejected("connections");
            continue;
        }
        let factory = factory.clone();
        let slots = slots.clone();
        let config = config.clone();
        let stop = stop_rx.clone();
        let rate = rate.clone();
        tasks.spawn(async move {
            let _open = OpenConnection::new();
            let Some(mut io) = secure(stream, &config).await else {
                return;
            };
            let Some(place) = place else {
                metrics().rejected("connections");
                let _ = page::busy().send(&mut *io).await;
                return;
            };
            let (head, rest) = match http::read_head(&mut *io, place.head_timeout(&config)).await {
                Ok(request) => request,
                Err(http::HeadError::Malformed(e)) => {
                    let _ = Answer::text(400, format!("{e}\n")).send(&mut *io).await;
                    return;
                }
                Err(_) => return,
            };
            drop(handshaking);
            if !place.admits(&head, &config.access) {
                metrics().rejected("connections");
                let _ = page::busy().send(&mut *io).await;
                return;
            }
            if head.is_upgrade() {
                if let Err(e) =
                    connection(io, head, rest, peer, factory, slots, &config, stop, &rate).await
                {
                    tracing::warn!(%peer, error = %e, "connection ended");
                }
            } else {
                let answer = answer_request(&mut *io, &head, rest, peer, &*factory, &config).await;
                let _ = answer.send(&mut *io).await;
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tasks.abort_all();
    }
    Ok(())
}

/// The connections the server holds at once: most open to anyone, the rest kept for token
/// holders and health checks.
struct Connections {
    open: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
}

/// A connection's place among them, held while it lasts.
struct Place {
    reserved: bool,
    _permit: OwnedSemaphorePermit,
}

/// A request in a reserved place has this long to arrive whole: clients with a token send
/// it in one go, and a slow one must not hold the reserve.
const RESERVED_HEAD_TIMEOUT: Duration = Duration::from_millis(1000);

impl Connections {
    fn new(limits: &Limits) -> Self {
        let all = limits.max_connections.max(1);
        let reserved = limits.reserved_connections.min(all - 1);
        Self {
            open: Arc::new(Semaphore::new(all - reserved)),
            reserved: Arc::new(Semaphore::new(reserved)),
        }
    }

    /// A place for a new connection, an open one first; None when every place is taken.
    fn take(&self) -> Option<Place> {
        let (reserved, permit) = match self.open.clone().try_acquire_owned() {
            Ok(permit) => (false, permit),
            Err(_) => (true, self.reserved.clone().try_acquire_owned().ok()?),
        };
        Some(Place {
            reserved,
            _permit: permit,
        })
    }
}

impl Place {
    fn head_timeout(&self, config: &ServerConfig) -> Duration {
        let timeout = ms(config.limits.handshake_timeout_ms);
        if self.reserved {
            timeout.min(RESERVED_HEAD_TIMEOUT)
        } else {
            timeout
        }
    }

    /// Whether the request may stay in this place: any in an open one; in a reserved one, a
    /// health check or a request with a valid token.
    fn admits(&self, head: &Head, access: &Access) -> bool {
        let health = head.method == "GET" && matches!(head.path.as_str(), "/healthz" | "/readyz");
        if !self.reserved || health {
            return true;
        }
        match access {
            Access::Anonymous => false,
            Access::Tokens(tokens) => tokens.shown_in(head),
        }
    }
}

/// The answer to a plain HTTP request: handoff feedback, a page, the metrics; failed
/// authentications counted, and an address that failed too often refused.
async fn answer_request(
    io: &mut dyn Io,
    head: &Head,
    rest: Vec<u8>,
    peer: SocketAddr,
    factory: &dyn ConversationFactory,
    config: &ServerConfig,
) -> Answer {
    if feedback::is_feedback(head) {
        if let Some(refused) = guard::before_credentials(peer).await {
            return refused;
        }
        let keep = |id: &str, f: feedback::Feedback| factory.handoff_feedback(id, f);
        let answer = feedback::answer(
            io,
            head,
            rest,
            &config.access,
            factory.domain(),
            ms(config.limits.handshake_timeout_ms),
            keep,
        )
        .await;
        match answer.status {
            401 => guard::failed(peer, "handoff feedback without a valid token"),
            403 => {
                metrics().security("forbidden");
                tracing::warn!(%peer, "refused: handoff feedback with a token that is no agent's");
            }
            _ => {}
        }
        return answer;
    }
    let answer = page::answer(head, &config.access);
    if answer.status == 401 {
        if let Some(refused) = guard::before_credentials(peer).await {
            return refused;
        }
        guard::failed(peer, "a page or /metrics without a valid token");
    }
    answer
}

/// The next connection; None after a failed accept (out of descriptors, a client gone before
/// it was accepted), reported and waited out briefly so that serving goes on.
pub(crate) async fn accept(
    listener: &TcpListener,
    server: &str,
) -> Option<(TcpStream, SocketAddr)> {
    match listener.accept().await {
        Ok(accepted) => Some(accepted),
        Err(e) => {
            tracing::warn!(server, error = %e, "accepting a connection failed; serving goes on");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

fn metrics() -> &'static crate::telemetry::metrics::Metrics {
    crate::telemetry::metrics::global()
}

/// A connection counted open while it lives.
struct OpenConnection;

impl OpenConnection {
    fn new() -> Self {
        metrics().connection_opened();
        Self
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics().connection_closed();
    }
}

/// A conversation counted under way while it lives (a loop that panics is counted out too).
struct CountedConversation;

impl CountedConversation {
    fn new() -> Self {
        metrics().conversation_started();
        Self
    }
}

impl Drop for CountedConversation {
    fn drop(&mut self) {
        metrics().conversation_ended();
    }
}

/// Why a handshake is refused: an HTTP status and a line for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal(u16, &'static str);

/// The HTTP answer to a refused handshake.
fn refusal(Refusal(status, text): Refusal) -> Answer {
    let answer = Answer::text(status, format!("{text}\n"));
    if status == 401 {
        answer.with_header("WWW-Authenticate: Bearer")
    } else {
        answer
    }
}

/// The stream a connection speaks on: TLS when the server has a certificate (None: the
/// TLS handshake failed or took too long).
async fn secure(stream: TcpStream, config: &ServerConfig) -> Option<Box<dyn Io>> {
    let Some(acceptor) = &config.tls else {
        return Some(Box::new(stream));
    };
    let handshake = acceptor.0.accept(stream);
    match tokio::time::timeout(ms(config.limits.handshake_timeout_ms), handshake).await {
        Ok(Ok(tls)) => Some(Box::new(tls)),
        _ => None,
    }
}

/// Which protocol a conversation's WebSocket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// hark's own (`protocol`), at `/`.
    Hark,
    /// Twilio Media Streams (`twilio`), at `/twilio`.
    Twilio,
}

/// The handshake's decision: the protocol, and the user a conversation belongs to (None:
/// nobody, or, for Twilio, the token its `start` will carry), or why not.
fn admit(
    request: &Head,
    access: &Access,
    origins: &[String],
    domain: &str,
) -> Result<(Dialect, Option<String>), Refusal> {
    let dialect = match request.path.as_str() {
        "/" => Dialect::Hark,
        "/twilio" => Dialect::Twilio,
        _ => {
            return Err(Refusal(
                404,
                "no WebSocket at this path; conversations are at / (hark's protocol) and /twilio (Twilio Media Streams)",
            ))
        }
    };
    if !auth::origin_allowed(request.header("origin"), request.header("host"), origins) {
        return Err(Refusal(403, "this origin may not connect"));
    }
    match access {
        Access::Anonymous => Ok((dialect, None)),
        Access::Tokens(tokens) => {
            let token = auth::request_token(request.header("authorization"), Some(&request.query));
            let grant = token.as_deref().and_then(|t| tokens.grant(t));
            // Twilio's <Stream> URL takes no query: its token comes in `start`.
            if grant.is_none() && dialect == Dialect::Twilio {
                return Ok((dialect, None));
            }
            let Some(grant) = grant else {
                return Err(Refusal(
                    401,
                    "a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN",
                ));
            };
            if !grant.allows(domain) {
                return Err(Refusal(403, "this token may not use this domain"));
            }
            Ok((dialect, Some(grant.user.clone())))
        }
    }
}

/// What the writer sends a Twilio stream for hark's output (None: nothing; Twilio takes
/// audio, marks and clears only).
fn twilio_frame(outgoing: Outgoing, stream_sid: &str) -> Option<Message> {
    use crate::telemetry::events::Event;
    let text = match outgoing {
        Outgoing::Audio(pcm) => twilio::media(stream_sid, &pcm),
        Outgoing::Message(ServerMessage::Clear) => twilio::clear(stream_sid),
        Outgoing::Message(ServerMessage::Event { event }) => match event.event {
            Event::AudioOutStop { turn, .. } => twilio::mark(stream_sid, &twilio::reply_mark(turn)),
            _ => return None,
        },
        Outgoing::Message(ServerMessage::Error { message }) => {
            tracing::warn!(stream = stream_sid, "{message}");
            return None;
        }
        Outgoing::Message(_) => return None,
    };
    Some(Message::Text(text.into()))
}

/// One WebSocket connection: admitted, upgraded, then served until it or the server ends.
#[allow(clippy::too_many_arguments)]
async fn connection(
    mut io: Box<dyn Io>,
    head: Head,
    rest: Vec<u8>,
    peer: SocketAddr,
    factory: Arc<dyn ConversationFactory>,
    slots: Arc<Semaphore>,
    config: &ServerConfig,
    mut stop: tokio::sync::watch::Receiver<bool>,
    rate: &rate::StartRate,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let limits = config.limits;
    let domain = factory.domain().to_string();
    let Some((dialect, user)) = admission(&mut *io, &head, config, &domain, peer).await? else {
        return Ok(());
    };
    if !upgrade(&mut *io, &head).await? {
        return Ok(());
    }
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let socket =
        WebSocketStream::from_partially_read(io, rest, Role::Server, Some(ws_config)).await;
    let (to_client, mut from_client) = socket.split();
    let (out, out_rx) = OutQueue::new(limits.outgoing_queue, ms(limits.write_stall_ms));
    let stream_sid = Arc::new(std::sync::OnceLock::<String>::new());
    let writer = tokio::spawn(write_to_client(
        to_client,
        out_rx,
        dialect,
        stream_sid.clone(),
    ));
    let mut session = Session {
        peer,
        dialect,
        user,
        domain,
        factory,
        slots,
        config,
        rate,
        out,
        stream_sid,
        conversation: None,
        rated: false,
        decoded: Vec::new(),
        connected: Instant::now(),
        last_message: Instant::now(),
    };
    session.serve(&mut from_client, &mut stop).await;
    session.end(writer).await;
    Ok(())
}

/// The handshake's decision (None: refused, and the client told why).
async fn admission(
    io: &mut dyn Io,
    head: &Head,
    config: &ServerConfig,
    domain: &str,
    peer: SocketAddr,
) -> Result<Option<(Dialect, Option<String>)>, tokio_tungstenite::tungstenite::Error> {
    if let Some(refused) = guard::before_credentials(peer).await {
        metrics().rejected("failed_authentications");
        refused.send(io).await?;
        return Ok(None);
    }
    match admit(head, &config.access, &config.allowed_origins, domain) {
        Ok(admitted) => {
            if admitted.1.is_some() {
                guard::auth_failures().succeeded(peer.ip());
            }
            Ok(Some(admitted))
        }
        Err(refused) => {
            metrics().rejected(match refused.0 {
                401 => "token",
                403 => "forbidden",
                _ => "path",
            });
            match refused.0 {
                401 => guard::failed(peer, refused.1),
                403 => {
                    metrics().security("forbidden");
                    tracing::warn!(%peer, reason = refused.1, "connection refused");
                }
                _ => {}
            }
            refusal(refused).send(io).await?;
            Ok(None)
        }
    }
}

/// Answers the WebSocket handshake: true once accepted, false when refused (and answered).
async fn upgrade(
    io: &mut dyn Io,
    head: &Head,
) -> Result<bool, tokio_tungstenite::tungstenite::Error> {
    match http::upgrade_response(head) {
        Ok(accepted) => {
            io.write_all(&accepted).await?;
            io.flush().await?;
            Ok(true)
        }
        Err(answer) => {
            answer.send(io).await?;
            Ok(false)
        }
    }
}

/// The writer task: sends the client what the connection queues for it, in its dialect,
/// until the queue closes or the client goes away.
async fn write_to_client(
    mut to_client: SplitSink<WebSocketStream<Box<dyn Io>>, Message>,
    mut out_rx: mpsc::Receiver<Outgoing>,
    dialect: Dialect,
    sid: Arc<std::sync::OnceLock<String>>,
) {
    while let Some(outgoing) = out_rx.recv().await {
        let message = match (dialect, outgoing) {
            (Dialect::Twilio, outgoing) => {
                match sid.get().and_then(|sid| twilio_frame(outgoing, sid)) {
                    Some(message) => message,
                    None => continue,
                }
            }
            (Dialect::Hark, Outgoing::Audio(bytes)) => Message::Binary(bytes.into()),
            (Dialect::Hark, Outgoing::Message(m)) => match serde_json::to_string(&m) {
                Ok(text) => Message::Text(text.into()),
                Err(_) => continue,
            },
        };
        if to_client.send(message).await.is_err() {
            break; // the client went away; the conversation ends when its audio does
        }
    }
    let _ = to_client.close().await;
}

/// One upgraded connection as its message loop sees it: who the client is, where what is
/// said to it goes, and its conversation once started.
struct Session<'a> {
    peer: SocketAddr,
    dialect: Dialect,
    /// The handshake's user (for Twilio, possibly granted later by `start`).
    user: Option<String>,
    domain: String,
    factory: Arc<dyn ConversationFactory>,
    slots: Arc<Semaphore>,
    config: &'a ServerConfig,
    rate: &'a rate::StartRate,
    out: OutQueue,
    /// The Twilio stream's id, once its `start` has come (the writer addresses it).
    stream_sid: Arc<std::sync::OnceLock<String>>,
    conversation: Option<Conversation>,
    /// The client has rated this conversation (once is all a rating counts).
    rated: bool,
    /// Room for a Twilio media payload's samples.
    decoded: Vec<f32>,
    connected: Instant,
    last_message: Instant,
}

impl Session<'_> {
    /// Reads the client's messages until it stops, a limit is reached or the server stops.
    async fn serve(
        &mut self,
        from_client: &mut SplitStream<WebSocketStream<Box<dyn Io>>>,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) {
        let mut check = tokio::time::interval(Duration::from_millis(250));
        loop {
            let message = tokio::select! {
                m = from_client.next() => m,
                _ = stop.changed() => {
                    self.out.send(Outgoing::error("hark is shutting down: the conversation ends"));
                    break;
                }
                _ = check.tick() => {
                    if self.out.gave_up() {
                        // It stopped reading: nothing can be told to it.
                        metrics().rejected("stalled_reader");
                        break;
                    }
                    if let Some((name, limit)) = self.limit_reached() {
                        metrics().rejected(name);
                        self.out.send(Outgoing::error(limit));
                        break;
                    }
                    continue;
                }
            };
            let Some(message) = message else { break };
            self.last_message = Instant::now();
            let Some(message) = self.readable(message) else {
                break;
            };
            if self.dispatch(message).await.is_break() {
                break;
            }
        }
    }

    /// The time limit this connection has reached, if any: its name (for the metrics) and
    /// what to tell the client.
    fn limit_reached(&self) -> Option<(&'static str, String)> {
        let limits = self.config.limits;
        let quiet = self.last_message.elapsed();
        match &self.conversation {
            None if self.connected.elapsed() >= ms(limits.start_timeout_ms) => Some((
                "start_timeout",
                format!("no start message within {} ms", limits.start_timeout_ms),
            )),
            Some(_) if quiet >= ms(limits.idle_timeout_ms) => Some((
                "idle_timeout",
                format!("nothing from the client for {} ms", limits.idle_timeout_ms),
            )),
            Some(c) if c.started.elapsed() >= Duration::from_secs(limits.max_conversation_s) => {
                Some((
                    "conversation_length",
                    format!(
                        "the conversation reached its limit of {} s",
                        limits.max_conversation_s
                    ),
                ))
            }
            _ => None,
        }
    }

    /// The message read from the client (None: the socket failed, or the message was too
    /// large, and the connection ends).
    fn readable(
        &self,
        message: Result<Message, tokio_tungstenite::tungstenite::Error>,
    ) -> Option<Message> {
        match message {
            Ok(m) => Some(m),
            Err(tokio_tungstenite::tungstenite::Error::Capacity(e)) => {
                metrics().rejected("message_size");
                self.out.send(Outgoing::error(format!(
                    "{e} (the limit is {} bytes; send audio in frames of 20–100 ms)",
                    self.config.limits.max_message_bytes
                )));
                None
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "the client's socket failed");
                None
            }
        }
    }

    /// Acts on one message from the client; Break ends the connection.
    async fn dispatch(&mut self, message: Message) -> ControlFlow<()> {
        match message {
            Message::Text(text) if self.dialect == Dialect::Twilio => {
                self.twilio_message(text.as_str()).await
            }
            Message::Text(text) => self.hark_message(text.as_str()),
            Message::Binary(bytes) => {
                match self.conversation.as_mut() {
                    None => self.refuse(ProtocolError::NotStarted),
                    Some(c) => {
                        if let Err(e) = c.audio(&bytes).await {
                            self.refuse(e);
                        }
                    }
                }
                ControlFlow::Continue(())
            }
            Message::Close(_) => ControlFlow::Break(()),
            // Pings are answered by tungstenite; nothing else carries meaning.
            _ => ControlFlow::Continue(()),
        }
    }

    /// Acts on one message of hark's protocol; Break ends the connection.
    fn hark_message(&mut self, text: &str) -> ControlFlow<()> {
        match parse_client_message(text) {
            // The user is the token's, never the client's.
            Ok(ClientMessage::Start { sample_rate, .. }) => {
                if self.conversation.is_some() {
                    self.refuse(ProtocolError::AlreadyStarted);
                    return ControlFlow::Continue(());
                }
                let begun = self.begin(self.user.as_deref(), sample_rate);
                self.started(begun)
            }
            Ok(ClientMessage::Stop) => ControlFlow::Break(()),
            Ok(ClientMessage::Rating { score }) => {
                match self.conversation.as_ref().and_then(|c| c.id.get()) {
                    Some(_) if self.rated => self.refuse(ProtocolError::AlreadyRated),
                    Some(id) => {
                        self.factory.rate(id, score);
                        self.rated = true;
                    }
                    None => self.refuse(ProtocolError::NotReady),
                }
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.refuse(e);
                ControlFlow::Continue(())
            }
        }
    }

    /// Acts on one message of a Twilio stream; Break ends the connection.
    async fn twilio_message(&mut self, text: &str) -> ControlFlow<()> {
        match twilio::parse(text) {
            Ok(twilio::Inbound::Start { start }) => self.twilio_start(start),
            Ok(twilio::Inbound::Media { media }) => {
                self.twilio_media(&media.payload).await;
                ControlFlow::Continue(())
            }
            // The caller has heard up to this mark (hark paces its audio to the call, so
            // its own account of what was heard already agrees).
            Ok(twilio::Inbound::Mark { .. }) => ControlFlow::Continue(()),
            Ok(twilio::Inbound::Connected { .. } | twilio::Inbound::Dtmf { .. }) => {
                ControlFlow::Continue(())
            }
            Ok(twilio::Inbound::Stop) => ControlFlow::Break(()),
            Err(e) => {
                self.refuse(ProtocolError::BadMessage(e));
                ControlFlow::Continue(())
            }
        }
    }

    /// Starts the conversation a Twilio `start` opens, once its format, token and caller
    /// pass; Break ends the connection.
    fn twilio_start(&mut self, start: twilio::Start) -> ControlFlow<()> {
        if self.conversation.is_some() {
            self.refuse(ProtocolError::AlreadyStarted);
            return ControlFlow::Continue(());
        }
        if let Err(e) = twilio::check_format(&start.media_format) {
            self.out.send(Outgoing::error(e));
            return ControlFlow::Break(());
        }
        let caller = match self.twilio_caller(&start) {
            Ok(caller) => caller,
            Err(e) => {
                self.out.send(Outgoing::error(e));
                return ControlFlow::Break(());
            }
        };
        let _ = self.stream_sid.set(start.stream_sid);
        let begun = self.begin(caller.as_deref(), twilio::SAMPLE_RATE);
        self.started(begun)
    }

    /// The user a Twilio call's conversation belongs to: the handshake's, or else the one
    /// the token among the `start` parameters grants, narrowed to the caller where the
    /// token says so (Err: what to tell the client before the connection ends).
    fn twilio_caller(&mut self, start: &twilio::Start) -> Result<Option<String>, &'static str> {
        if let (Access::Tokens(tokens), None) = (&self.config.access, &self.user) {
            let grant = start
                .custom_parameters
                .get("token")
                .and_then(|t| tokens.grant(t))
                .filter(|g| g.allows(&self.domain));
            let Some(grant) = grant else {
                metrics().rejected("token");
                guard::failed(self.peer, "a Twilio call without a valid token");
                return Err(
                    "a token is needed: <Parameter name=\"token\" value=\"TOKEN\"/> in the <Stream>",
                );
            };
            self.user = Some(grant.user.clone());
        }
        match &self.user {
            Some(granted) => match twilio::caller_user(granted, &start.custom_parameters) {
                Some(caller) => Ok(Some(caller)),
                None => {
                    metrics().security("call_refused");
                    tracing::warn!(peer = %self.peer, "a Twilio call refused: its token names the caller, and the stream has none");
                    Err("this token names the caller, and the stream has no caller parameter")
                }
            },
            None => Ok(None),
        }
    }

    /// Feeds a Twilio media payload to the conversation.
    async fn twilio_media(&mut self, payload: &str) {
        let Some(c) = self.conversation.as_mut() else {
            self.refuse(ProtocolError::NotStarted);
            return;
        };
        self.decoded.clear();
        match twilio::decode_media(payload, &mut self.decoded) {
            Ok(()) => {
                if let Err(e) = c.samples(&self.decoded).await {
                    self.refuse(e);
                }
            }
            Err(e) => self.refuse(ProtocolError::BadMessage(e)),
        }
    }

    /// A conversation, if this client may start one now (Err: why not, for the client).
    fn begin(&self, user: Option<&str>, sample_rate: u32) -> Result<Conversation, String> {
        let limits = self.config.limits;
        let who = user.map_or_else(|| self.peer.ip().to_string(), str::to_string);
        if !self.rate.allow(&who, Instant::now()) {
            metrics().rejected("start_rate");
            return Err(format!(
                "too many conversations started ({} a minute at most); try again later",
                limits.starts_per_minute
            ));
        }
        let Ok(slot) = self.slots.clone().try_acquire_owned() else {
            metrics().rejected("conversations");
            return Err(format!(
                "the server is busy ({} conversations at once); try again later",
                self.config.max_conversations
            ));
        };
        Conversation::start(
            self.factory.clone(),
            user,
            sample_rate,
            self.config.conversation.clone(),
            self.out.clone(),
            slot,
            limits,
        )
        .map_err(|e| e.to_string())
    }

    /// Keeps the conversation `begin` started, or tells the client why there is none and
    /// ends the connection (Break).
    fn started(&mut self, begun: Result<Conversation, String>) -> ControlFlow<()> {
        match begun {
            Ok(c) => {
                self.conversation = Some(c);
                ControlFlow::Continue(())
            }
            Err(e) => {
                self.out.send(Outgoing::error(e));
                ControlFlow::Break(())
            }
        }
    }

    /// Tells the client its message is refused; the connection goes on.
    fn refuse(&self, e: ProtocolError) {
        self.out.send(Outgoing::error(e));
    }

    /// Ends the connection: the conversation finishes its last reply, then the writer sends
    /// what is left, unless the client stopped reading.
    async fn end(self, writer: tokio::task::JoinHandle<()>) {
        let gave_up = self.out.gave_up();
        if let Some(c) = self.conversation {
            // The end of the client's audio ends the loop once the last reply is out.
            c.finish().await;
        }
        drop(self.out);
        if gave_up {
            writer.abort();
        } else {
            let _ = writer.await;
        }
    }
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// One running conversation: the voice loop on its own thread, fed by the connection.
struct Conversation {
    audio_tx: mpsc::Sender<Vec<f32>>,
    resampler: StreamResampler,
    resampled: Vec<f32>,
    decoded: Vec<f32>,
    thread: std::thread::JoinHandle<()>,
    /// Its place among the server's conversations, given back when it ends.
    _slot: OwnedSemaphorePermit,
    /// Its id, once its engines are loaded.
    id: Arc<std::sync::OnceLock<String>>,
    started: Instant,
    /// 16 kHz samples received, to hold a client to real time.
    received: u64,
    max_ahead: Duration,
}

impl Conversation {
    fn start(
        factory: Arc<dyn ConversationFactory>,
        user: Option<&str>,
        sample_rate: u32,
        config: LoopConfig,
        out: OutQueue,
        slot: OwnedSemaphorePermit,
        limits: Limits,
    ) -> Result<Self, ServerError> {
        let resampler = StreamResampler::new(sample_rate, SPEECH_RATE, RESAMPLE_CHUNK_MS)
            .map_err(|e| ServerError::Engines(e.to_string()))?;
        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
        let user = user.map(str::to_string);
        let id = Arc::new(std::sync::OnceLock::new());
        let known = id.clone();
        let thread = std::thread::Builder::new()
            .name("hark-conversation".into())
            .spawn(move || {
                let send = |m: ServerMessage| {
                    let _ = out.send(Outgoing::Message(m));
                };
                let engines = match factory.open(user.as_deref()) {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = out.send(Outgoing::error(e));
                        return;
                    }
                };
                let conversation = engines.brain.conversation_id().unwrap_or_default();
                let _ = known.set(conversation.clone());
                send(ServerMessage::Ready {
                    sample_rate,
                    domain: factory.domain().to_string(),
                    conversation,
                });
                let mut source = SocketSource::new(audio_rx);
                let mut sink = SocketSink::new(sample_rate, out.clone());
                let _counted = CountedConversation::new();
                let mut log = EventLog::new();
                let mut timer = crate::telemetry::metrics::EventTimer::default();
                let events = out.clone();
                log.on_event(Box::new(move |e| {
                    metrics().conversation_event(&mut timer, e);
                    let _ =
                        events.send(Outgoing::Message(ServerMessage::Event { event: e.clone() }));
                }));
                let ran = run_voice_loop(config, &mut source, &mut sink, engines, &mut log);
                drop(_counted);
                match ran {
                    Ok(summary) => send(ServerMessage::Summary { summary }),
                    Err(e) => {
                        metrics().error("conversation_failed");
                        let _ = out.send(Outgoing::error(format!("the conversation failed: {e}")));
                    }
                }
            })
            .map_err(|e| ServerError::Engines(format!("no thread for the conversation: {e}")))?;
        Ok(Self {
            audio_tx,
            resampler,
            resampled: Vec::new(),
            decoded: Vec::new(),
            thread,
            _slot: slot,
            id,
            started: Instant::now(),
            received: 0,
            max_ahead: ms(limits.max_audio_ahead_ms),
        })
    }

    /// One binary frame of the client's audio.
    async fn audio(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let mut decoded = std::mem::take(&mut self.decoded);
        decoded.clear();
        decode_pcm16(bytes, &mut decoded)?;
        let fed = self.samples(&decoded).await;
        self.decoded = decoded;
        fed
    }

    /// The client's audio at its rate, as samples in [-1, 1].
    async fn samples(&mut self, samples: &[f32]) -> Result<(), ProtocolError> {
        self.resampled.clear();
        self.resampler
            .push(samples, &mut self.resampled)
            .map_err(|e| ProtocolError::BadMessage(e.to_string()))?;
        self.received += self.resampled.len() as u64;
        for piece in self.resampled.chunks(PIECE) {
            // An error means the loop has ended (it failed and said so): nothing to feed.
            if self.audio_tx.send(piece.to_vec()).await.is_err() {
                break;
            }
        }
        // Audio far ahead of real time waits: the conversation runs at the pace of speech.
        let audio = Duration::from_millis(self.received * 1000 / SPEECH_RATE as u64);
        let ahead = audio.saturating_sub(self.started.elapsed());
        if ahead > self.max_ahead {
            tokio::time::sleep(ahead - self.max_ahead).await;
        }
        Ok(())
    }

    /// Ends the client's audio and waits for the loop to finish its last reply.
    async fn finish(self) {
        drop(self.audio_tx);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}
