//! `hark serve`: the voice assistant as a headless service. Each WebSocket connection is one
//! conversation: the client streams its microphone in, hark streams its voice back, and
//! both see the conversation's events (see `protocol` for the wire format). A conversation
//! runs the same voice loop as `hark run` on its own thread, with its own engines. A plain
//! HTTP request to the same port gets the browser client (`page`).

pub mod page;
pub mod protocol;
pub mod socket_audio;

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::audio::resample::StreamResampler;
use crate::audio::SPEECH_RATE;
use crate::pipeline::turn::TurnConfig;
use crate::pipeline::{run_voice_loop, Engines, LoopConfig};
use crate::telemetry::events::EventLog;
use protocol::{decode_pcm16, parse_client_message, ClientMessage, ProtocolError, ServerMessage};
use socket_audio::{Outgoing, SocketSink, SocketSource};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not listen: {0}")]
    Listen(std::io::Error),
    #[error("could not start the conversation's engines: {0}")]
    Engines(String),
}

/// Makes the engines of each conversation (a recogniser session, the dialogue core, a voice).
pub trait ConversationFactory: Send + Sync {
    /// A conversation with `user`, or with nobody in particular (None: nothing is kept).
    fn open(&self, user: Option<&str>) -> Result<Engines, ServerError>;
    /// The dialogue domain the conversations run (announced in `ready`).
    fn domain(&self) -> &str;
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Conversations at once; more are refused with an error (each holds its own engines,
    /// and decodes share the CPU).
    pub max_conversations: usize,
    /// How each conversation runs (endpointing, turn-taking, the greeting).
    pub conversation: LoopConfig,
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
        }
    }
}

/// Audio frames waiting for the voice loop (20 ms each from a typical client): a client
/// that sends faster than the loop reads is slowed down, not buffered without bound.
const AUDIO_QUEUE: usize = 256;
/// The resampler's block for clients not at 16 kHz.
const RESAMPLE_CHUNK_MS: u32 = 20;

/// Serves conversations on `listener` until the process ends.
pub async fn serve(
    listener: TcpListener,
    factory: Arc<dyn ConversationFactory>,
    config: ServerConfig,
) -> Result<(), ServerError> {
    let slots = Arc::new(Semaphore::new(config.max_conversations.max(1)));
    loop {
        let (stream, peer) = listener.accept().await.map_err(ServerError::Listen)?;
        let factory = factory.clone();
        let slots = slots.clone();
        let config = config.clone();
        tokio::spawn(async move {
            match page::wants_websocket(&stream).await {
                Some(true) => {
                    if let Err(e) = connection(stream, peer, factory, slots, config).await {
                        eprintln!("{peer}: {e}");
                    }
                }
                // A browser asking for the page.
                Some(false) => {
                    let _ = page::answer_http(stream).await;
                }
                None => {}
            }
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    factory: Arc<dyn ConversationFactory>,
    slots: Arc<Semaphore>,
    config: ServerConfig,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let socket = tokio_tungstenite::accept_async(stream).await?;
    let (mut to_client, mut from_client) = socket.split();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Outgoing>();
    let writer = tokio::spawn(async move {
        while let Some(outgoing) = out_rx.recv().await {
            let message = match outgoing {
                Outgoing::Audio(bytes) => Message::Binary(bytes.into()),
                Outgoing::Message(m) => match serde_json::to_string(&m) {
                    Ok(text) => Message::Text(text.into()),
                    Err(_) => continue,
                },
            };
            if to_client.send(message).await.is_err() {
                break; // the client went away; the conversation ends when its audio does
            }
        }
        let _ = to_client.close().await;
    });
    let refuse = |e: ProtocolError| {
        let _ = out_tx.send(Outgoing::error(e));
    };

    let mut conversation: Option<Conversation> = None;
    while let Some(message) = from_client.next().await {
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{peer}: {e}");
                break;
            }
        };
        match message {
            Message::Text(text) => match parse_client_message(text.as_str()) {
                Ok(ClientMessage::Start { sample_rate, user }) => {
                    if conversation.is_some() {
                        refuse(ProtocolError::AlreadyStarted);
                        continue;
                    }
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        let _ = out_tx.send(Outgoing::error(format!(
                            "the server is busy ({} conversations at once); try again later",
                            config.max_conversations
                        )));
                        break;
                    };
                    match Conversation::start(
                        factory.clone(),
                        user.as_deref(),
                        sample_rate,
                        config.conversation.clone(),
                        out_tx.clone(),
                        slot,
                    ) {
                        Ok(c) => conversation = Some(c),
                        Err(e) => {
                            let _ = out_tx.send(Outgoing::error(e));
                            break;
                        }
                    }
                }
                Ok(ClientMessage::Stop) => break,
                Err(e) => refuse(e),
            },
            Message::Binary(bytes) => match conversation.as_mut() {
                None => refuse(ProtocolError::NotStarted),
                Some(c) => {
                    if let Err(e) = c.audio(&bytes).await {
                        refuse(e);
                    }
                }
            },
            Message::Close(_) => break,
            // Pings are answered by tungstenite; nothing else carries meaning.
            _ => {}
        }
    }
    if let Some(c) = conversation {
        // The end of the client's audio ends the loop once the last reply is out.
        c.finish().await;
    }
    drop(out_tx);
    let _ = writer.await;
    Ok(())
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
}

impl Conversation {
    fn start(
        factory: Arc<dyn ConversationFactory>,
        user: Option<&str>,
        sample_rate: u32,
        config: LoopConfig,
        out: mpsc::UnboundedSender<Outgoing>,
        slot: OwnedSemaphorePermit,
    ) -> Result<Self, ServerError> {
        let resampler = StreamResampler::new(sample_rate, SPEECH_RATE, RESAMPLE_CHUNK_MS)
            .map_err(|e| ServerError::Engines(e.to_string()))?;
        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
        let user = user.map(str::to_string);
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
                send(ServerMessage::Ready {
                    sample_rate,
                    domain: factory.domain().to_string(),
                });
                let mut source = SocketSource::new(audio_rx);
                let mut sink = SocketSink::new(sample_rate, out.clone());
                let mut log = EventLog::new();
                let events = out.clone();
                log.on_event(Box::new(move |e| {
                    let _ =
                        events.send(Outgoing::Message(ServerMessage::Event { event: e.clone() }));
                }));
                match run_voice_loop(config, &mut source, &mut sink, engines, &mut log) {
                    Ok(summary) => send(ServerMessage::Summary { summary }),
                    Err(e) => {
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
        })
    }

    /// One binary frame of the client's audio.
    async fn audio(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        self.decoded.clear();
        decode_pcm16(bytes, &mut self.decoded)?;
        self.resampled.clear();
        self.resampler
            .push(&self.decoded, &mut self.resampled)
            .map_err(|e| ProtocolError::BadMessage(e.to_string()))?;
        if !self.resampled.is_empty() {
            // An error means the loop has ended (it failed and said so): nothing to feed.
            let _ = self
                .audio_tx
                .send(std::mem::take(&mut self.resampled))
                .await;
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
