//! A Wyoming server (`hark serve --wyoming tcp://HOST:PORT`): hark's speech-to-text,
//! text-to-speech and dialogue core as the local services Home Assistant's voice pipeline
//! talks to. One connection per request, as Home Assistant makes them: `describe` → `info`;
//! `transcribe` + audio → `transcript`; `synthesize` → audio (or, streamed,
//! `synthesize-start/chunk/stop` → audio per sentence → `synthesize-stopped`); `transcript`
//! → `handled` (hark's conversation agent). The engines are the ones `hark serve` runs.

pub mod protocol;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::audio::SPEECH_RATE;
use crate::dialogue::Brain;
use crate::server::ConversationFactory;
use crate::stt::recognizer::{RecognizerEvent, SpeechHint};
use crate::tts::stream::{SynthesisEvent, SynthesisStream};
use protocol::{answer, parse_request, AudioFormat, Event, FrameDecoder, Request};

/// What `info` says about hark's services.
#[derive(Debug, Clone)]
pub struct Description {
    /// The speech recognizer's model (e.g. `whisper-tiny.en`, `deepgram-nova-3`).
    pub stt_model: String,
    /// The voice's name.
    pub voice: String,
    pub languages: Vec<String>,
    /// The dialogue domain the conversation agent runs.
    pub domain: String,
}

/// What one client may cost.
#[derive(Debug, Clone, Copy)]
pub struct WyomingLimits {
    pub max_connections: usize,
    /// Connections one address may hold at once (0: any): idle sockets from one address
    /// cannot take every slot.
    pub max_connections_per_address: usize,
    /// Time without a byte from a client before its connection is closed.
    pub idle_timeout: Duration,
    /// Longest utterance to transcribe.
    pub max_utterance: Duration,
}

impl Default for WyomingLimits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            max_connections_per_address: 16,
            idle_timeout: Duration::from_secs(30),
            max_utterance: Duration::from_secs(120),
        }
    }
}

/// Samples per `audio-chunk` hark sends (what Wyoming's own servers send).
const SAMPLES_PER_CHUNK: usize = 1024;
/// How often a synthesis under way is looked at.
const POLL: Duration = Duration::from_millis(5);
/// Longest a transcript may take, and a reply's voice may go without progress.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
const VOICE_STALL: Duration = Duration::from_secs(30);
/// Longest a write to a client may wait (one that does not read is let go).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most text one reply may speak (a long answer is a few hundred characters).
const MAX_REPLY_TEXT: usize = 16 * 1024;
/// Longest conversation id a client may name.
const MAX_CONVERSATION_ID: usize = 128;
/// Conversations with the agent kept at once, and how long one waits for its next turn
/// (Home Assistant forgets a conversation after 5 minutes too).
const MAX_CONVERSATIONS: usize = 256;
const CONVERSATION_IDLE: Duration = Duration::from_secs(300);

struct Shared {
    factory: Arc<dyn ConversationFactory>,
    description: Description,
    limits: WyomingLimits,
    conversations: Mutex<Conversations>,
}

/// Serves Wyoming clients on `listener` until `shutdown` completes.
pub async fn serve_until(
    listener: TcpListener,
    factory: Arc<dyn ConversationFactory>,
    description: Description,
    limits: WyomingLimits,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let shared = Arc::new(Shared {
        factory,
        description,
        limits,
        conversations: Mutex::new(Conversations::default()),
    });
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_address = crate::server::guard::PerAddress::default();
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = crate::server::accept(&listener, "wyoming") => match accepted {
                Some(accepted) => accepted,
                None => continue,
            },
            _ = &mut shutdown => break,
        };
        // Small events (audio-stop, transcript) go out at once.
        let _ = stream.set_nodelay(true);
        while tasks.try_join_next().is_some() {}
        let shared = shared.clone();
        let place = per_address.start(peer.ip(), limits.max_connections_per_address);
        // Over its address's share, a connection takes no slot of the others'.
        let slot = place
            .as_ref()
            .and_then(|_| slots.clone().try_acquire_owned().ok());
        tasks.spawn(async move {
            let mut connection = Connection::new(stream, shared);
            if place.is_none() {
                crate::telemetry::metrics::global().security("wyoming_connections_per_address");
                tracing::warn!(%peer, "Wyoming: too many connections from one address");
                let busy = answer::error("too many connections from this address", "busy");
                let _ = connection.send(&busy).await;
                return;
            }
            if slot.is_none() {
                let busy = answer::error("too many connections; try again later", "busy");
                let _ = connection.send(&busy).await;
                return;
            }
            let _held = (place, slot);
            connection.run().await;
        });
    }
    tasks.abort_all();
    Ok(())
}

/// An utterance being received, kept at 16 kHz as it arrives.
struct Utterance {
    language: Option<String>,
    /// The client's rate and its resampler, from the first audio.
    rate: Option<(u32, crate::audio::resample::StreamResampler)>,
    samples: Vec<f32>,
    decoded: Vec<f32>,
    /// Bad audio was refused: the rest of this utterance is ignored.
    failed: bool,
}

impl Utterance {
    fn new(language: Option<String>) -> Self {
        Self {
            language,
            rate: None,
            samples: Vec::new(),
            decoded: Vec::new(),
            failed: false,
        }
    }
}

/// A reply being spoken.
struct Speaking {
    stream: SynthesisStream,
    format: AudioFormat,
    /// Streamed: each sentence is its own audio, then `synthesize-stopped`.
    streamed: bool,
    /// Audio not yet sent, from sample `offset` of the stream.
    audio: Vec<f32>,
    offset: u64,
    /// Sentences whose audio is not all in yet: (start, end) sample.
    pending: VecDeque<(u64, u64)>,
    /// The unstreamed reply's `audio-start` is out.
    started: bool,
    /// Text taken so far, and when the voice last made progress.
    text_len: usize,
    progress: Instant,
    /// All its text is in.
    flushed: bool,
}

struct Connection {
    stream: TcpStream,
    shared: Arc<Shared>,
    utterance: Option<Utterance>,
    speaking: Option<Speaking>,
    /// The conversation this connection's requests without an id continue.
    conversation: Option<String>,
}

impl Connection {
    fn new(stream: TcpStream, shared: Arc<Shared>) -> Self {
        Self {
            stream,
            shared,
            utterance: None,
            speaking: None,
            conversation: None,
        }
    }

    async fn send(&mut self, event: &Event) -> std::io::Result<()> {
        let bytes = protocol::encode(event);
        let write = self.stream.write_all(&bytes);
        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(written) => written,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    async fn run(&mut self) {
        let mut decoder = FrameDecoder::new();
        let mut buf = vec![0u8; 16 * 1024];
        // The client has closed its side: the reply under way still goes out.
        let mut ended = false;
        loop {
            let read = tokio::select! {
                read = self.stream.read(&mut buf), if !ended => Some(read),
                _ = tokio::time::sleep(POLL), if self.speaking.is_some() => None,
                _ = tokio::time::sleep(self.shared.limits.idle_timeout), if self.speaking.is_none() => {
                    let _ = self.send(&answer::error("nothing from the client: closing", "timeout")).await;
                    return;
                }
            };
            match read {
                None => {}
                Some(Ok(0)) if self.speaking.is_some() => ended = true,
                Some(Ok(0)) | Some(Err(_)) => return,
                Some(Ok(n)) => decoder.push(&buf[..n]),
            }
            loop {
                match decoder.next_event() {
                    Ok(Some(event)) => {
                        if self.handle(event).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // The stream is out of step: nothing after this can be read.
                        let _ = self.send(&answer::error(&e.to_string(), "bad-frame")).await;
                        return;
                    }
                }
            }
            if self.speak().await.is_err() {
                return;
            }
            if ended && self.speaking.is_none() {
                return;
            }
        }
    }

    /// One event from the client.
    async fn handle(&mut self, event: Event) -> std::io::Result<()> {
        let request = match parse_request(&event) {
            Ok(r) => r,
            Err(e) => return self.send(&answer::error(&e, "bad-event")).await,
        };
        match request {
            Request::Describe => {
                let info = info(&self.shared.description);
                self.send(&info).await
            }
            Request::Ping { text } => self.send(&answer::pong(text.as_deref())).await,
            Request::Transcribe { language } => {
                self.utterance = Some(Utterance::new(language));
                Ok(())
            }
            // The format is each chunk's own; a new one starts a new utterance's audio.
            Request::AudioStart(_) => {
                let language = self.utterance.take().and_then(|u| u.language);
                self.utterance = Some(Utterance::new(language));
                Ok(())
            }
            Request::AudioChunk(format, pcm) => match self.take_audio(format, &pcm) {
                Ok(()) => Ok(()),
                Err(e) => {
                    if let Some(utterance) = self.utterance.as_mut() {
                        utterance.failed = true;
                    }
                    self.send(&answer::error(&e, "bad-audio")).await
                }
            },
            Request::AudioStop => match self.utterance.take() {
                // Its error has been sent.
                Some(utterance) if utterance.failed => Ok(()),
                Some(utterance) => self.transcribe(utterance).await,
                None => {
                    self.send(&answer::error("audio-stop without audio", "bad-event"))
                        .await
                }
            },
            Request::Synthesize { text } => {
                if self.speaking.as_ref().is_some_and(|s| s.streamed) {
                    // The whole text again, for clients that do not stream: already coming.
                    return Ok(());
                }
                self.start_speaking(false, Some(&text)).await
            }
            Request::SynthesizeStart => self.start_speaking(true, None).await,
            Request::SynthesizeChunk { text } => match &mut self.speaking {
                Some(s) if s.streamed => {
                    s.text_len += text.len();
                    if s.text_len > MAX_REPLY_TEXT {
                        s.stream.cancel();
                        self.speaking = None;
                        let e = format!("a reply of over {MAX_REPLY_TEXT} bytes of text");
                        return self.send(&answer::error(&e, "too-long")).await;
                    }
                    s.stream.input().push(&text);
                    Ok(())
                }
                _ => {
                    self.send(&answer::error(
                        "synthesize-chunk before synthesize-start",
                        "bad-event",
                    ))
                    .await
                }
            },
            Request::SynthesizeStop => match &mut self.speaking {
                Some(s) if s.streamed => {
                    s.stream.input().flush();
                    s.flushed = true;
                    s.progress = Instant::now();
                    Ok(())
                }
                _ => {
                    self.send(&answer::error(
                        "synthesize-stop before synthesize-start",
                        "bad-event",
                    ))
                    .await
                }
            },
            Request::Handle { text, conversation } => {
                if conversation
                    .as_ref()
                    .is_some_and(|c| c.len() > MAX_CONVERSATION_ID)
                {
                    let e = format!("a conversation_id of over {MAX_CONVERSATION_ID} bytes");
                    return self.send(&answer::not_handled(&e)).await;
                }
                self.converse(text, conversation).await
            }
            Request::Unsupported(kind) => {
                let text = format!("hark does not handle '{kind}' events");
                self.send(&answer::error(&text, "unsupported")).await
            }
        }
    }

    fn take_audio(&mut self, format: AudioFormat, pcm: &[u8]) -> Result<(), String> {
        let max = self.shared.limits.max_utterance;
        let utterance = self.utterance.get_or_insert_with(|| Utterance::new(None));
        if utterance.failed {
            return Ok(());
        }
        if utterance.rate.is_none() {
            let resampler =
                crate::audio::resample::StreamResampler::new(format.rate, SPEECH_RATE, 20)
                    .map_err(|e| e.to_string())?;
            utterance.rate = Some((format.rate, resampler));
        }
        let Some((rate, resampler)) = utterance.rate.as_mut() else {
            return Ok(());
        };
        if *rate != format.rate {
            return Err(format!(
                "audio-chunk at {} Hz in an utterance at {rate} Hz",
                format.rate
            ));
        }
        utterance.decoded.clear();
        format.decode(pcm, &mut utterance.decoded)?;
        resampler
            .push(&utterance.decoded, &mut utterance.samples)
            .map_err(|e| e.to_string())?;
        if utterance.samples.len() as f64 > SPEECH_RATE as f64 * max.as_secs_f64() {
            return Err(format!(
                "the utterance is longer than {} s; hark transcribes up to that",
                max.as_secs()
            ));
        }
        Ok(())
    }

    /// The utterance's transcript (the resampler's last block, under 20 ms, is the silence
    /// after it).
    async fn transcribe(&mut self, utterance: Utterance) -> std::io::Result<()> {
        let recognizer = self.shared.factory.recognizer();
        let language = utterance
            .language
            .clone()
            .or_else(|| self.shared.description.languages.first().cloned())
            .unwrap_or_else(|| "en".into());
        let heard = tokio::task::spawn_blocking(move || {
            transcribe_blocking(recognizer.as_ref(), &utterance.samples)
        })
        .await
        .unwrap_or_else(|e| Err(format!("the transcription failed: {e}")));
        match heard {
            Ok(text) => self.send(&answer::transcript(&text, &language)).await,
            Err(e) => self.send(&answer::error(&e, "stt-failed")).await,
        }
    }

    async fn start_speaking(&mut self, streamed: bool, text: Option<&str>) -> std::io::Result<()> {
        if self.speaking.is_some() {
            let busy = answer::error("a reply is already being spoken", "busy");
            return self.send(&busy).await;
        }
        let voice = self.shared.factory.synthesizer();
        let stream = match voice.open_stream() {
            Ok(s) => s,
            Err(e) => {
                return self
                    .send(&answer::error(&e.to_string(), "tts-failed"))
                    .await
            }
        };
        if let Some(text) = text {
            if text.len() > MAX_REPLY_TEXT {
                let e = format!("a reply of over {MAX_REPLY_TEXT} bytes of text");
                return self.send(&answer::error(&e, "too-long")).await;
            }
            let input = stream.input();
            input.push(text);
            input.flush();
        }
        self.speaking = Some(Speaking {
            format: AudioFormat {
                rate: stream.sample_rate(),
                width: 2,
                channels: 1,
            },
            stream,
            streamed,
            audio: Vec::new(),
            offset: 0,
            pending: VecDeque::new(),
            started: false,
            text_len: text.map_or(0, str::len),
            progress: Instant::now(),
            flushed: !streamed,
        });
        Ok(())
    }

    /// Sends what the reply under way has ready.
    async fn speak(&mut self) -> std::io::Result<()> {
        let Some(mut speaking) = self.speaking.take() else {
            return Ok(());
        };
        let mut out = Vec::new();
        let mut finished = false;
        let mut failed = None;
        while let Some(event) = speaking.stream.poll() {
            speaking.progress = Instant::now();
            match event {
                SynthesisEvent::Audio(samples) => speaking.audio.extend_from_slice(&samples),
                SynthesisEvent::Mark { start, end, .. } => speaking.pending.push_back((start, end)),
                SynthesisEvent::Done => {
                    finished = true;
                    break;
                }
                SynthesisEvent::Failed(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        // A reply still being written (streamed, not yet stopped) waits for its text, not
        // for the voice.
        let waiting_for_text = speaking.streamed && !speaking.flushed;
        if failed.is_none() && !waiting_for_text && speaking.progress.elapsed() > VOICE_STALL {
            failed = Some(format!(
                "the voice made no progress for {} s",
                VOICE_STALL.as_secs()
            ));
        }
        if let Some(e) = failed {
            // Only the error: an audio with nothing in it would be a broken WAV to the client.
            speaking.stream.cancel();
            return self.send(&answer::error(&e, "tts-failed")).await;
        }
        speaking.ready(finished, &mut out);
        for event in &out {
            self.send(event).await?;
        }
        if !finished {
            self.speaking = Some(speaking);
        }
        Ok(())
    }

    async fn converse(&mut self, text: String, asked: Option<String>) -> std::io::Result<()> {
        let shared = self.shared.clone();
        // Memory follows the conversation id the client names (Home Assistant makes one per
        // conversation; others keep the one hark answers with), or this connection; a new
        // connection that names none starts afresh: behind one Home Assistant, everyone in
        // the house arrives from the same address.
        let key = asked
            .or_else(|| self.conversation.clone())
            .unwrap_or_else(crate::telemetry::conversations::new_id);
        // Brains are made, kept and let go off the async workers: making one opens files,
        // and one with a language model owns a runtime of its own.
        let replied = tokio::task::spawn_blocking(move || {
            let kept = shared.conversations().take(&key);
            let mut brain = match kept {
                Some(brain) => brain,
                None => shared.factory.brain(None).map_err(|e| e.to_string())?,
            };
            let mut reply = String::new();
            let result = brain.respond(&text, &mut |piece| {
                reply.push_str(piece);
                true
            });
            shared.conversations().put(key.clone(), brain);
            result.map(|_| (reply, key)).map_err(|e| e.to_string())
        })
        .await
        .unwrap_or_else(|e| Err(format!("the conversation failed: {e}")));
        match replied {
            Ok((reply, key)) => {
                self.conversation = Some(key.clone());
                self.send(&answer::handled(reply.trim(), &key)).await
            }
            Err(e) => self.send(&answer::not_handled(&e)).await,
        }
    }
}

impl Speaking {
    /// The events for the audio that is ready (`finished`: all of it).
    fn ready(&mut self, finished: bool, out: &mut Vec<Event>) {
        if !self.streamed {
            if !self.audio.is_empty() || finished {
                if !self.started {
                    out.push(answer::audio_start(self.format));
                    self.started = true;
                }
                let audio = std::mem::take(&mut self.audio);
                chunks(self.format, &audio, out);
            }
            if finished {
                out.push(answer::audio_stop());
            }
            return;
        }
        let have = self.offset + self.audio.len() as u64;
        while let Some(&(start, end)) = self.pending.front() {
            if end > have && !finished {
                break;
            }
            self.pending.pop_front();
            let to = end.min(have).saturating_sub(self.offset) as usize;
            let from = (start.saturating_sub(self.offset) as usize).min(to);
            let piece = &self.audio[from..to];
            if !piece.is_empty() {
                out.push(answer::audio_start(self.format));
                chunks(self.format, piece, out);
                out.push(answer::audio_stop());
            }
            self.audio.drain(..to);
            self.offset += to as u64;
        }
        if finished {
            if !self.audio.is_empty() {
                out.push(answer::audio_start(self.format));
                let audio = std::mem::take(&mut self.audio);
                chunks(self.format, &audio, out);
                out.push(answer::audio_stop());
            }
            out.push(answer::synthesize_stopped());
        }
    }
}

fn chunks(format: AudioFormat, samples: &[f32], out: &mut Vec<Event>) {
    for piece in samples.chunks(SAMPLES_PER_CHUNK) {
        let mut pcm = Vec::with_capacity(piece.len() * 2);
        crate::cloud::pcm16_bytes(piece, &mut pcm);
        out.push(answer::audio_chunk(format, pcm));
    }
}

/// One utterance through a recognizer session: the whole of it heard, then the final.
pub fn transcribe_blocking(
    recognizer: &dyn crate::stt::recognizer::Recognizer,
    audio: &[f32],
) -> Result<String, String> {
    let mut session = recognizer.open_session().map_err(|e| e.to_string())?;
    session.hint(SpeechHint::Started { audio_from_ms: 0 });
    for piece in audio.chunks(SPEECH_RATE as usize / 50) {
        session.push_audio(piece);
    }
    let audio_to_ms = audio.len() as u64 * 1000 / SPEECH_RATE as u64;
    session.hint(SpeechHint::Stopped { audio_to_ms });
    let asked = Instant::now();
    let mut last_words = String::new();
    while asked.elapsed() < ANSWER_TIMEOUT {
        match session.poll() {
            Some(RecognizerEvent::Final {
                text, end_of_turn, ..
            }) => {
                if end_of_turn {
                    session.hint(SpeechHint::TurnEnded);
                    session.finish();
                    return Ok(text.trim().to_string());
                }
                last_words = text;
            }
            Some(RecognizerEvent::Failed { message }) => return Err(message),
            Some(_) => {}
            None => std::thread::sleep(POLL),
        }
    }
    if last_words.is_empty() {
        Err(format!(
            "no transcript within {} s",
            ANSWER_TIMEOUT.as_secs()
        ))
    } else {
        Ok(last_words.trim().to_string())
    }
}

/// The `info` event: hark's speech-to-text, its voice and its conversation agent.
pub fn info(description: &Description) -> Event {
    let attribution = json!({"name": "hark", "url": "https://github.com/hark-voice/hark"});
    let version = env!("CARGO_PKG_VERSION");
    let languages = &description.languages;
    Event::new(
        "info",
        json!({
            "asr": [{
                "name": "hark",
                "attribution": attribution,
                "installed": true,
                "description": "hark speech-to-text",
                "version": version,
                "supports_transcript_streaming": false,
                "models": [{
                    "name": description.stt_model,
                    "attribution": attribution,
                    "installed": true,
                    "description": description.stt_model,
                    "version": null,
                    "languages": languages,
                }],
            }],
            "tts": [{
                "name": "hark",
                "attribution": attribution,
                "installed": true,
                "description": "hark text-to-speech",
                "version": version,
                "supports_synthesize_streaming": true,
                "voices": [{
                    "name": description.voice,
                    "attribution": attribution,
                    "installed": true,
                    "description": description.voice,
                    "version": null,
                    "languages": languages,
                    "speakers": null,
                }],
            }],
            "handle": [{
                "name": "hark",
                "attribution": attribution,
                "installed": true,
                "description": format!("hark conversation agent ({})", description.domain),
                "version": version,
                "supports_handled_streaming": false,
                "models": [{
                    "name": description.domain,
                    "attribution": attribution,
                    "installed": true,
                    "description": description.domain,
                    "version": null,
                    "languages": languages,
                }],
            }],
            "intent": [], "wake": [], "mic": [], "snd": [],
        }),
    )
}

/// The conversation agent's conversations, each waiting for its next turn.
#[derive(Default)]
struct Conversations {
    brains: HashMap<String, (Box<dyn Brain>, Instant)>,
}

impl Conversations {
    fn take(&mut self, key: &str) -> Option<Box<dyn Brain>> {
        self.expire();
        self.brains.remove(key).map(|(brain, _)| brain)
    }

    fn put(&mut self, key: String, brain: Box<dyn Brain>) {
        self.expire();
        if self.brains.len() >= MAX_CONVERSATIONS {
            let oldest = self
                .brains
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.brains.remove(&oldest);
            }
        }
        self.brains.insert(key, (brain, Instant::now()));
    }

    fn expire(&mut self) {
        self.brains
            .retain(|_, (_, at)| at.elapsed() < CONVERSATION_IDLE);
    }
}

impl Shared {
    fn conversations(&self) -> MutexGuard<'_, Conversations> {
        // A panic while it was held leaves whole entries: go on with them.
        self.conversations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speaking(streamed: bool) -> Speaking {
        let (stream, _driver) = crate::tts::stream::stream_pair(1000);
        Speaking {
            stream,
            format: AudioFormat {
                rate: 1000,
                width: 2,
                channels: 1,
            },
            streamed,
            audio: Vec::new(),
            offset: 0,
            pending: VecDeque::new(),
            started: false,
            text_len: 0,
            progress: Instant::now(),
            flushed: false,
        }
    }

    fn kinds(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_streamed_reply_is_one_audio_per_sentence_once_its_audio_is_in() {
        let mut s = speaking(true);
        let mut out = Vec::new();
        s.pending.push_back((0, 1500));
        s.audio.extend(vec![0.1; 1000]);
        s.ready(false, &mut out);
        assert!(out.is_empty(), "the sentence is not all in yet");
        s.audio.extend(vec![0.1; 1000]);
        s.pending.push_back((1500, 2500));
        s.ready(false, &mut out);
        assert_eq!(
            kinds(&out),
            ["audio-start", "audio-chunk", "audio-chunk", "audio-stop"]
        );
        assert_eq!(out[1].payload.len() + out[2].payload.len(), 1500 * 2);
        out.clear();
        s.audio.extend(vec![0.1; 500]);
        s.ready(true, &mut out);
        assert_eq!(
            kinds(&out),
            [
                "audio-start",
                "audio-chunk",
                "audio-stop",
                "synthesize-stopped"
            ]
        );
        assert_eq!(out[1].payload.len(), 1000 * 2);
    }

    #[test]
    fn an_unstreamed_reply_is_one_audio_sent_as_it_comes() {
        let mut s = speaking(false);
        let mut out = Vec::new();
        s.audio.extend(vec![0.1; 10]);
        s.ready(false, &mut out);
        s.audio.extend(vec![0.1; 10]);
        s.ready(true, &mut out);
        assert_eq!(
            kinds(&out),
            ["audio-start", "audio-chunk", "audio-chunk", "audio-stop"]
        );
    }

    #[test]
    fn info_lists_voices_not_models_for_speech() {
        let info = info(&Description {
            stt_model: "whisper-tiny.en".into(),
            voice: "en_US-joe-medium".into(),
            languages: vec!["en".into()],
            domain: "customer-service".into(),
        });
        assert_eq!(info.data["tts"][0]["voices"][0]["name"], "en_US-joe-medium");
        assert_eq!(info.data["tts"][0]["supports_synthesize_streaming"], true);
        assert_eq!(info.data["asr"][0]["models"][0]["languages"][0], "en");
        assert_eq!(
            info.data["handle"][0]["models"][0]["name"],
            "customer-service"
        );
    }
}
