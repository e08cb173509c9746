//! The real-time voice loop: capture → VAD/endpointing → streaming STT → brain → streaming
//! TTS → playback, with turn-taking and barge-in.
//!
//! One loop thread owns the timeline: every 20 ms it takes a frame from the source, runs the
//! VAD and the endpointer, collects whatever the workers finished, and writes 20 ms to the
//! sink (reply audio or silence), so the output lines up with the input sample for sample.
//! Whisper runs on an STT worker thread, and the brain plus TTS on a reply worker thread,
//! so decoding or synthesis never stalls capture or playback.
//!
//! When the user starts talking over a reply, playback pauses at once (within one onset,
//! 60 ms) and the interruption is judged: enough voiced time, or words that are not a
//! backchannel, make it a barge-in (the reply is cancelled and only the part that was played
//! is kept in the conversation); noise or an "uh-huh" resumes the reply where it paused.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::backchannel::is_backchannel;
use super::Brain;
use crate::audio::{resample, AudioError, AudioSink, AudioSource, SPEECH_RATE};
use crate::stt::partial::PartialStabilizer;
use crate::stt::{DecodeWindow, TranscribeOptions, Transcriber};
use crate::telemetry::events::{Event, EventLog, StopReason, TurnState};
use crate::tts::{SentenceSplitter, Synthesizer};
use crate::vad::echo_gate::{EchoGate, EchoGateConfig};
use crate::vad::{
    EndpointEvent, Endpointer, EndpointerConfig, VadError, VoiceDetector, FRAME_MS, FRAME_SAMPLES,
};

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Vad(#[from] VadError),
    #[error("a worker thread stopped unexpectedly: {0}")]
    Worker(&'static str),
}

/// Partials are decoded only while the user is (almost) still talking.
const PARTIAL_SILENCE_LIMIT_MS: u64 = 40;

/// How the loop relates to the clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// The source delivers audio in real time (a microphone, a paced WAV): workers run
    /// concurrently and their latency shows on the timeline.
    RealTime,
    /// The source is read as fast as possible and the loop waits for every worker result
    /// before the next frame, as if computation took no time: deterministic, for tests and
    /// batch processing. Latencies on this timeline are not real.
    Batch,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VoiceLoopConfig {
    pub endpointer: EndpointerConfig,
    /// How often the growing utterance is re-decoded for partial transcripts.
    pub partial_interval_ms: u64,
    /// Silence after which what was said so far is decoded as a candidate final.
    pub speculate_after_ms: u64,
    /// Silence that ends the turn when that candidate reads as a complete sentence
    /// (otherwise the endpointer's full hangover applies).
    pub quick_hangover_ms: u64,
    /// Voiced time over a reply after which the interruption counts as a barge-in even
    /// before its words are known.
    pub barge_in_confirm_ms: u64,
    /// After the input ends, how long to keep going (finishing a reply) at most.
    pub drain_limit_ms: u64,
    /// Speak the brain's greeting when the conversation starts.
    pub greet: bool,
    /// Silence after the last sound (user or hark) before the brain may re-prompt (0: never).
    pub no_input_ms: u64,
    /// Double-talk gate for a speaker the microphone can hear (a live room); None when
    /// the output cannot reach the input (files, headphones).
    pub echo_gate: Option<EchoGateConfig>,
    #[serde(skip)]
    pub window: DecodeWindow,
}

impl Default for VoiceLoopConfig {
    fn default() -> Self {
        Self {
            endpointer: EndpointerConfig::default(),
            partial_interval_ms: 250,
            speculate_after_ms: 60,
            quick_hangover_ms: 200,
            barge_in_confirm_ms: 700,
            drain_limit_ms: 60_000,
            echo_gate: None,
            greet: false,
            no_input_ms: 7000,
            window: DecodeWindow::Trimmed,
        }
    }
}

/// The engines a conversation runs on; each moves to its own worker thread.
pub struct Engines {
    pub transcriber: Box<dyn Transcriber>,
    pub brain: Box<dyn Brain>,
    pub synthesizer: Box<dyn Synthesizer>,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunSummary {
    /// Microphone samples lost because the loop fell behind (live devices only).
    pub input_overruns: u64,
    /// Speaker samples played as silence because audio came late (live devices only).
    pub output_underruns: u64,
    pub input_ms: u64,
    pub output_ms: u64,
    pub user_turns: u64,
    pub replies: u64,
    pub barge_ins: u64,
    pub false_interruptions: u64,
}

// ---- workers ------------------------------------------------------------------------------

/// Why a decode was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SttKind {
    /// The growing utterance, for partial transcripts.
    Partial,
    /// Everything said so far, at the first pause: a candidate final, made while the
    /// endpointer still waits to be sure the user has finished. `voiced_ms` identifies the
    /// audio it saw (any new voice makes it stale).
    Speculative { voiced_ms: u64 },
    /// The finished utterance.
    Final,
}

struct SttJob {
    utterance: u64,
    kind: SttKind,
    audio: Vec<f32>,
    prompt: Option<String>,
}

struct SttDone {
    utterance: u64,
    kind: SttKind,
    text: Result<String, String>,
    decode_ms: f64,
}

fn spawn_stt(
    mut transcriber: Box<dyn Transcriber>,
    window: DecodeWindow,
) -> (Sender<SttJob>, Receiver<SttDone>, JoinHandle<()>) {
    let (job_tx, job_rx) = mpsc::channel::<SttJob>();
    let (done_tx, done_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("hark-stt".into())
        .spawn(move || {
            for job in job_rx {
                let options = TranscribeOptions {
                    window,
                    prompt: job.prompt,
                    grammar: None,
                    alternatives: None,
                };
                let start = Instant::now();
                let text = transcriber
                    .transcribe(&job.audio, &options)
                    .map(|t| t.text)
                    .map_err(|e| e.to_string());
                let done = SttDone {
                    utterance: job.utterance,
                    kind: job.kind,
                    text,
                    decode_ms: start.elapsed().as_secs_f64() * 1000.0,
                };
                if done_tx.send(done).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the STT thread");
    (job_tx, done_rx, handle)
}

/// What a reply answers.
enum ReplyInput {
    User(String),
    /// The conversation starts: the brain's greeting.
    Greeting,
    /// The user said nothing for a while after a question.
    Silence,
}

enum ReplyJob {
    Respond { turn: u64, input: ReplyInput },
    Interrupted { spoken: String },
}

enum ReplyMsg {
    Sentence {
        turn: u64,
        text: String,
        samples: Vec<f32>,
    },
    Done {
        turn: u64,
    },
    Failed {
        turn: u64,
        message: String,
    },
    Vocabulary(Option<String>),
    /// The brain handed the conversation to a person (what it sent, as JSON).
    Handoff(serde_json::Value),
}

fn spawn_reply(
    mut brain: Box<dyn Brain>,
    mut synth: Box<dyn Synthesizer>,
    sink_rate: u32,
    current_turn: Arc<AtomicU64>,
) -> (Sender<ReplyJob>, Receiver<ReplyMsg>, JoinHandle<()>) {
    let (job_tx, job_rx) = mpsc::channel::<ReplyJob>();
    let (msg_tx, msg_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("hark-reply".into())
        .spawn(move || {
            let tts_rate = synth.sample_rate();
            // What to listen for before the first turn.
            let _ = msg_tx.send(ReplyMsg::Vocabulary(brain.expected_vocabulary()));
            for job in job_rx {
                match job {
                    ReplyJob::Interrupted { spoken } => brain.interrupted(&spoken),
                    ReplyJob::Respond { turn, input } => {
                        let live = |t: u64| current_turn.load(Ordering::SeqCst) == t;
                        let mut splitter = SentenceSplitter::new();
                        let mut failure: Option<String> = None;
                        let mut speak = |sentence: String, failure: &mut Option<String>| -> bool {
                            if !live(turn) {
                                return false;
                            }
                            let samples = synth
                                .synthesize(&sentence)
                                .map_err(|e| e.to_string())
                                .and_then(|s| {
                                    resample::resample(&s, tts_rate, sink_rate)
                                        .map_err(|e| e.to_string())
                                });
                            match samples {
                                Ok(samples) => msg_tx
                                    .send(ReplyMsg::Sentence {
                                        turn,
                                        text: sentence,
                                        samples,
                                    })
                                    .is_ok(),
                                Err(e) => {
                                    *failure = Some(e);
                                    false
                                }
                            }
                        };
                        let mut emit = |piece: &str| {
                            for sentence in splitter.push(piece) {
                                if !speak(sentence, &mut failure) {
                                    return false;
                                }
                            }
                            true
                        };
                        let result = match input {
                            ReplyInput::User(text) => brain.respond(&text, &mut emit),
                            ReplyInput::Greeting | ReplyInput::Silence => {
                                let said = match input {
                                    ReplyInput::Greeting => brain.greeting(),
                                    _ => brain.silence(),
                                };
                                if let Some(said) = said {
                                    emit(&said);
                                }
                                Ok(())
                            }
                        };
                        if let Err(e) = result {
                            failure.get_or_insert(e.to_string());
                        }
                        if failure.is_none() {
                            if let Some(rest) = splitter.finish() {
                                speak(rest, &mut failure);
                            }
                        }
                        let end = match failure {
                            Some(message) => ReplyMsg::Failed { turn, message },
                            None => ReplyMsg::Done { turn },
                        };
                        let _ = msg_tx.send(ReplyMsg::Vocabulary(brain.expected_vocabulary()));
                        if let Some(handoff) = brain.take_handoff() {
                            let _ = msg_tx.send(ReplyMsg::Handoff(handoff));
                        }
                        if msg_tx.send(end).is_err() {
                            break;
                        }
                    }
                }
            }
        })
        .expect("spawn the reply thread");
    (job_tx, msg_rx, handle)
}

// ---- playback -----------------------------------------------------------------------------

struct QueuedSentence {
    text: String,
    samples: Vec<f32>,
    played: usize,
}

/// The reply being played.
struct Playback {
    turn: u64,
    queue: VecDeque<QueuedSentence>,
    spoken: Vec<String>,
    started: bool,
    paused: bool,
    reply_done: bool,
}

impl Playback {
    fn new(turn: u64) -> Self {
        Self {
            turn,
            queue: VecDeque::new(),
            spoken: Vec::new(),
            started: false,
            paused: false,
            reply_done: false,
        }
    }

    /// The part of the reply the user has heard: whole sentences, plus the words of the
    /// current sentence in proportion to how much of it was played.
    fn spoken_text(&self) -> String {
        let mut parts = self.spoken.clone();
        if let Some(current) = self.queue.front() {
            if current.played > 0 && !current.samples.is_empty() {
                let words: Vec<&str> = current.text.split_whitespace().collect();
                let heard = words.len() * current.played / current.samples.len();
                if heard > 0 {
                    parts.push(format!("{}…", words[..heard].join(" ")));
                }
            }
        }
        parts.join(" ")
    }

    fn finished(&self) -> bool {
        self.reply_done && self.queue.is_empty()
    }
}

// ---- the loop -----------------------------------------------------------------------------

struct Interruption {
    /// Set when the interrupting utterance has ended and its final transcript is awaited.
    awaiting_final: bool,
}

struct LoopState<'a> {
    config: VoiceLoopConfig,
    timing: Timing,
    events: &'a mut EventLog,
    state: TurnState,
    summary: RunSummary,
    now_ms: u64,
    // STT
    stt_tx: Sender<SttJob>,
    stt_rx: Receiver<SttDone>,
    stt_pending: usize,
    utterance: u64,
    partial_in_flight: bool,
    last_partial_ms: u64,
    stabilizer: PartialStabilizer,
    prompt: Option<String>,
    /// Text of an utterance whose reply was abandoned because the user kept talking.
    carry_over: String,
    /// What the reply being prepared answers.
    last_user_text: String,
    // reply
    reply_tx: Sender<ReplyJob>,
    reply_rx: Receiver<ReplyMsg>,
    current_turn: Arc<AtomicU64>,
    awaiting_reply: Option<u64>,
    playback: Option<Playback>,
    interruption: Option<Interruption>,
    /// Set when reply audio must stop now: the sink drops what it has queued.
    silence_now: bool,
    /// The candidate final of the utterance in progress, decoded at its first pause.
    speculation: Option<Speculation>,
    /// When the conversation last had sound in it (user or hark), for the no-input timer.
    quiet_since_ms: u64,
}

struct Speculation {
    utterance: u64,
    voiced_ms: u64,
    /// The transcript and its decode time, once the decode is back.
    text: Option<(String, f64)>,
    /// The utterance ended before the decode came back: it is the final.
    use_as_final: bool,
}

/// Whether a transcript reads as a finished sentence, so the turn can end after a short
/// pause: Whisper closes sentences with punctuation, and a trailing conjunction, article
/// or filler ("and", "the", "um") or an ellipsis means the user is still going.
pub fn looks_complete(text: &str) -> bool {
    const OPEN_ENDINGS: &[&str] = &[
        "and", "or", "but", "so", "the", "a", "an", "to", "of", "with", "for", "my", "um", "uh",
        "because", "like", "at", "in", "on", "is", "if", "then",
    ];
    let t = text.trim();
    if t.is_empty() || t.ends_with("...") || t.ends_with('…') || t.ends_with(',') {
        return false;
    }
    if !t.ends_with(['.', '?', '!']) {
        return false;
    }
    let last = t
        .split_whitespace()
        .last()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    !OPEN_ENDINGS.contains(&last.as_str())
}

impl LoopState<'_> {
    fn emit(&mut self, event: Event) {
        self.events.push(self.now_ms, event);
    }

    fn set_state(&mut self, to: TurnState) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.emit(Event::State { from, to });
        }
    }

    fn submit_stt(&mut self, audio: Vec<f32>, kind: SttKind) -> Result<(), LoopError> {
        self.stt_tx
            .send(SttJob {
                utterance: self.utterance,
                kind,
                audio,
                // The vocabulary prompt costs 45–90 ms a decode here: it goes to the decodes
                // whose words count (speculative and final), not to the display-only partials.
                prompt: (kind != SttKind::Partial)
                    .then(|| self.prompt.clone())
                    .flatten(),
            })
            .map_err(|_| LoopError::Worker("stt"))?;
        self.stt_pending += 1;
        if kind == SttKind::Partial {
            self.partial_in_flight = true;
        }
        if self.timing == Timing::Batch {
            let done = self.stt_rx.recv().map_err(|_| LoopError::Worker("stt"))?;
            self.on_stt(done)?;
        }
        Ok(())
    }

    fn start_reply(&mut self, text: String) -> Result<(), LoopError> {
        let turn = self.current_turn.fetch_add(1, Ordering::SeqCst) + 1;
        self.summary.user_turns += 1;
        self.last_user_text = text.clone();
        self.reply_tx
            .send(ReplyJob::Respond {
                turn,
                input: ReplyInput::User(text),
            })
            .map_err(|_| LoopError::Worker("reply"))?;
        self.awaiting_reply = Some(turn);
        self.playback = Some(Playback::new(turn));
        self.set_state(TurnState::Thinking);
        if self.timing == Timing::Batch {
            self.wait_for_audio()?;
        }
        Ok(())
    }

    /// Says what the brain says unprompted: its greeting, or a re-prompt after silence.
    fn start_unprompted(&mut self, input: ReplyInput) -> Result<(), LoopError> {
        let turn = self.current_turn.fetch_add(1, Ordering::SeqCst) + 1;
        self.reply_tx
            .send(ReplyJob::Respond { turn, input })
            .map_err(|_| LoopError::Worker("reply"))?;
        self.awaiting_reply = Some(turn);
        self.playback = Some(Playback::new(turn));
        if self.timing == Timing::Batch {
            self.wait_for_audio()?;
        }
        Ok(())
    }

    /// Batch timing: block until the reply has audio to play, or has ended.
    fn wait_for_audio(&mut self) -> Result<(), LoopError> {
        loop {
            let ready = match &self.playback {
                Some(p) => !p.queue.is_empty() || p.reply_done,
                None => true,
            };
            if ready {
                return Ok(());
            }
            let msg = self
                .reply_rx
                .recv()
                .map_err(|_| LoopError::Worker("reply"))?;
            self.on_reply(msg);
        }
    }

    /// Cancels the reply in progress (no more sentences are made or played).
    fn cancel_reply(&mut self) {
        // Moving the current turn on makes the reply worker stop at its next sentence.
        self.current_turn.fetch_add(1, Ordering::SeqCst);
        self.awaiting_reply = None;
        self.playback = None;
        self.interruption = None;
    }

    fn barge_in(&mut self) -> Result<(), LoopError> {
        let Some(playback) = self.playback.take() else {
            return Ok(());
        };
        let spoken = playback.spoken_text();
        let turn = playback.turn;
        self.cancel_reply();
        self.summary.barge_ins += 1;
        self.emit(Event::AudioOutStop {
            turn,
            reason: StopReason::BargeIn,
        });
        self.emit(Event::BargeIn {
            turn,
            spoken: spoken.clone(),
        });
        self.reply_tx
            .send(ReplyJob::Interrupted { spoken })
            .map_err(|_| LoopError::Worker("reply"))?;
        self.set_state(TurnState::UserSpeaking);
        Ok(())
    }

    fn resume_after_false_interruption(&mut self) {
        self.interruption = None;
        self.summary.false_interruptions += 1;
        if let Some(p) = self.playback.as_mut() {
            p.paused = false;
            let turn = p.turn;
            self.emit(Event::PlaybackResumed { turn });
        }
    }

    fn on_endpoint(&mut self, event: EndpointEvent) -> Result<(), LoopError> {
        match event {
            EndpointEvent::SpeechStart { at_ms } => {
                self.utterance += 1;
                self.stabilizer = PartialStabilizer::new();
                self.partial_in_flight = false;
                self.last_partial_ms = self.now_ms;
                self.emit(Event::SpeechStart { at_ms });
                let playing = self.playback.as_ref().is_some_and(|p| p.started);
                if playing {
                    // Stop the sound now; decide later whether this is a real interruption.
                    let p = self.playback.as_mut().expect("playing");
                    p.paused = true;
                    let turn = p.turn;
                    self.silence_now = true;
                    self.interruption = Some(Interruption {
                        awaiting_final: false,
                    });
                    self.emit(Event::PlaybackPaused { turn });
                } else {
                    if self.state == TurnState::Thinking {
                        // The user kept talking after a pause the endpointer took for the end:
                        // drop that reply and answer the whole thing once they finish.
                        if self.playback.is_some() {
                            self.carry_over = std::mem::take(&mut self.last_user_text);
                            self.summary.user_turns -= 1;
                        }
                        self.cancel_reply();
                    }
                    self.set_state(TurnState::UserSpeaking);
                }
            }
            EndpointEvent::SpeechEnd {
                at_ms,
                audio,
                voiced_ms,
            } => {
                self.emit(Event::SpeechEnd { at_ms });
                if let Some(i) = self.interruption.as_mut() {
                    i.awaiting_final = true;
                } else {
                    self.set_state(TurnState::Thinking);
                }
                // A speculative decode of exactly this audio is the final transcript.
                let utterance = self.utterance;
                match self.speculation.take() {
                    Some(spec) if spec.utterance == utterance && spec.voiced_ms == voiced_ms => {
                        match spec.text {
                            Some((text, decode_ms)) => self.finish_utterance(text, decode_ms)?,
                            None => {
                                self.speculation = Some(Speculation {
                                    use_as_final: true,
                                    ..spec
                                })
                            }
                        }
                    }
                    _ => self.submit_stt(audio, SttKind::Final)?,
                }
            }
            EndpointEvent::Discarded { voiced_ms, .. } => {
                self.emit(Event::Noise { voiced_ms });
                if self.interruption.is_some() {
                    self.resume_after_false_interruption();
                } else if self.state == TurnState::UserSpeaking {
                    let to = if self.playback.is_some() {
                        TurnState::Thinking
                    } else {
                        TurnState::Listening
                    };
                    self.set_state(to);
                }
            }
        }
        Ok(())
    }

    fn on_stt(&mut self, done: SttDone) -> Result<(), LoopError> {
        self.stt_pending -= 1;
        let text = match done.text {
            Ok(text) => text,
            Err(message) => {
                self.emit(Event::Error { message });
                String::new()
            }
        };
        match done.kind {
            SttKind::Partial => {
                self.partial_in_flight = false;
                if done.utterance != self.utterance {
                    return Ok(());
                }
                if let Some(stable) = self.stabilizer.update(&text) {
                    self.emit(Event::Partial {
                        text: stable.clone(),
                    });
                    if self.interruption.is_some() && !is_backchannel(&stable) {
                        self.barge_in()?;
                    }
                }
                Ok(())
            }
            SttKind::Speculative { voiced_ms } => {
                let Some(spec) = self.speculation.as_mut() else {
                    return Ok(());
                };
                if spec.utterance != done.utterance || spec.voiced_ms != voiced_ms {
                    return Ok(()); // the user went on talking: stale
                }
                if spec.use_as_final {
                    self.speculation = None;
                    return self.finish_utterance(text, done.decode_ms);
                }
                spec.text = Some((text, done.decode_ms));
                Ok(())
            }
            SttKind::Final => self.finish_utterance(text, done.decode_ms),
        }
    }

    /// The user's utterance has ended and `text` is what they said.
    fn finish_utterance(&mut self, text: String, decode_ms: f64) -> Result<(), LoopError> {
        self.emit(Event::Final {
            text: text.clone(),
            stt_ms: (decode_ms * 10.0).round() / 10.0,
        });
        if let Some(interruption) = &self.interruption {
            if interruption.awaiting_final && is_backchannel(&text) {
                self.resume_after_false_interruption();
                return Ok(());
            }
            // The interruption's own words decide it: they are a new request.
            self.barge_in()?;
            self.set_state(TurnState::Thinking);
        }
        let full = format!("{} {}", std::mem::take(&mut self.carry_over), text)
            .trim()
            .to_string();
        if full.is_empty() {
            if self.playback.is_none() {
                self.set_state(TurnState::Listening);
            }
            return Ok(());
        }
        if self.state == TurnState::UserSpeaking {
            // Already talking again: keep this text for when they finish.
            self.carry_over = full;
            return Ok(());
        }
        self.start_reply(full)
    }

    fn on_reply(&mut self, msg: ReplyMsg) {
        match msg {
            ReplyMsg::Vocabulary(v) => self.prompt = v,
            ReplyMsg::Handoff(handoff) => self.events.push(self.now_ms, Event::Handoff { handoff }),
            ReplyMsg::Sentence {
                turn,
                text,
                samples,
            } => {
                if let Some(p) = self.playback.as_mut().filter(|p| p.turn == turn) {
                    p.queue.push_back(QueuedSentence {
                        text: text.clone(),
                        samples,
                        played: 0,
                    });
                    self.events.push(self.now_ms, Event::Reply { turn, text });
                }
            }
            ReplyMsg::Done { turn } => {
                if let Some(p) = self.playback.as_mut().filter(|p| p.turn == turn) {
                    p.reply_done = true;
                }
                if self.awaiting_reply == Some(turn) {
                    self.awaiting_reply = None;
                }
            }
            ReplyMsg::Failed { turn, message } => {
                self.emit(Event::Error { message });
                if let Some(p) = self.playback.as_mut().filter(|p| p.turn == turn) {
                    p.reply_done = true;
                }
                if self.awaiting_reply == Some(turn) {
                    self.awaiting_reply = None;
                }
            }
        }
    }

    /// Fills one output frame from the reply (or silence) and finishes the reply when done.
    fn render(
        &mut self,
        out: &mut [f32],
        frame_start_ms: u64,
        sink_rate: u32,
    ) -> Result<(), LoopError> {
        out.fill(0.0);
        if self.timing == Timing::Batch {
            if let Some(p) = &self.playback {
                if !p.paused && p.queue.is_empty() && !p.reply_done {
                    self.wait_for_audio()?;
                }
            }
        }
        let Some(p) = self.playback.as_mut() else {
            return Ok(());
        };
        let mut written = 0;
        let mut started_at = None;
        if !p.paused {
            while written < out.len() {
                let Some(sentence) = p.queue.front_mut() else {
                    break;
                };
                if !p.started {
                    p.started = true;
                    started_at = Some(frame_start_ms + (written as u64 * 1000) / sink_rate as u64);
                }
                let n = (out.len() - written).min(sentence.samples.len() - sentence.played);
                out[written..written + n]
                    .copy_from_slice(&sentence.samples[sentence.played..sentence.played + n]);
                sentence.played += n;
                written += n;
                if sentence.played == sentence.samples.len() {
                    let done = p.queue.pop_front().expect("front exists");
                    p.spoken.push(done.text);
                }
            }
        }
        let turn = p.turn;
        let finished = p.started && p.finished();
        let never_started = !p.started && p.finished();
        if let Some(at) = started_at {
            self.summary.replies += 1;
            self.events.push(at, Event::AudioOutStart { turn });
            self.set_state(TurnState::Speaking);
        }
        if finished || never_started {
            self.playback = None;
            if finished {
                let end = frame_start_ms + (written as u64 * 1000) / sink_rate as u64;
                self.events.push(
                    end,
                    Event::AudioOutStop {
                        turn,
                        reason: StopReason::Finished,
                    },
                );
            }
            if matches!(self.state, TurnState::Speaking | TurnState::Thinking) {
                self.set_state(TurnState::Listening);
            }
        }
        Ok(())
    }

    /// At the first pause in an utterance, decodes what was said so far; if that reads as
    /// a complete sentence, ends the turn after the short hangover instead of the full one.
    fn speculate(&mut self, endpointer: &mut Endpointer) -> Result<(), LoopError> {
        let silence = endpointer.trailing_silence_ms();
        let voiced_ms = endpointer.voiced_ms();
        let utterance = self.utterance;
        if self
            .speculation
            .as_ref()
            .is_some_and(|s| s.utterance != utterance || s.voiced_ms != voiced_ms)
        {
            self.speculation = None; // the user went on talking
        }
        if silence >= self.config.speculate_after_ms && self.speculation.is_none() {
            self.speculation = Some(Speculation {
                utterance,
                voiced_ms,
                text: None,
                use_as_final: false,
            });
            let audio = endpointer.utterance_to_last_voice().to_vec();
            self.submit_stt(audio, SttKind::Speculative { voiced_ms })?;
        }
        let complete = self
            .speculation
            .as_ref()
            .and_then(|s| s.text.as_ref())
            .is_some_and(|(text, _)| looks_complete(text));
        if complete && silence >= self.config.quick_hangover_ms {
            if let Some(event) = endpointer.end_now() {
                self.on_endpoint(event)?;
            }
        }
        Ok(())
    }

    fn busy(&self, endpointer: &Endpointer) -> bool {
        endpointer.in_speech()
            || self.stt_pending > 0
            || self.awaiting_reply.is_some()
            || self.playback.is_some()
    }
}

/// Runs a conversation from `source` to `sink` until the source ends and the last reply has
/// been played (or `drain_limit_ms` has passed).
pub fn run_voice_loop(
    config: VoiceLoopConfig,
    timing: Timing,
    source: &mut dyn AudioSource,
    sink: &mut dyn AudioSink,
    engines: Engines,
    events: &mut EventLog,
) -> Result<RunSummary, LoopError> {
    if source.sample_rate() != SPEECH_RATE {
        return Err(LoopError::Audio(AudioError::Unsupported(format!(
            "the voice loop reads 16 kHz sources; this one is {} Hz",
            source.sample_rate()
        ))));
    }
    let sink_rate = sink.sample_rate();
    let current_turn = Arc::new(AtomicU64::new(0));
    let (stt_tx, stt_rx, stt_thread) = spawn_stt(engines.transcriber, config.window);
    let (reply_tx, reply_rx, reply_thread) = spawn_reply(
        engines.brain,
        engines.synthesizer,
        sink_rate,
        current_turn.clone(),
    );

    let mut vad = VoiceDetector::new();
    let mut endpointer = Endpointer::new(config.endpointer);
    let mut echo_gate = config.echo_gate.map(EchoGate::new);
    let mut st = LoopState {
        config,
        timing,
        events,
        state: TurnState::Listening,
        summary: RunSummary::default(),
        now_ms: 0,
        stt_tx,
        stt_rx,
        stt_pending: 0,
        utterance: 0,
        partial_in_flight: false,
        last_partial_ms: 0,
        stabilizer: PartialStabilizer::new(),
        prompt: None,
        carry_over: String::new(),
        last_user_text: String::new(),
        reply_tx,
        reply_rx,
        current_turn,
        awaiting_reply: None,
        playback: None,
        interruption: None,
        silence_now: false,
        speculation: None,
        quiet_since_ms: 0,
    };

    if st.config.greet {
        st.start_unprompted(ReplyInput::Greeting)?;
    }
    let mut frame = vec![0f32; FRAME_SAMPLES];
    let mut out = Vec::with_capacity(sink_rate as usize / 10);
    let mut frame_index: u64 = 0;
    let mut input_frames: u64 = 0;
    let mut input_ended = false;
    let mut drained_ms = 0;
    let result = loop {
        if !input_ended {
            let n = match source.read(&mut frame) {
                Ok(n) => n,
                Err(e) => break Err(e.into()),
            };
            if n < FRAME_SAMPLES {
                frame[n..].fill(0.0);
                input_ended = true;
            }
            if n > 0 {
                input_frames += 1;
            }
        } else {
            // After the input ends, silence lets a pending utterance end and a reply finish.
            frame.fill(0.0);
            drained_ms += FRAME_MS;
            if !st.busy(&endpointer) || drained_ms > st.config.drain_limit_ms {
                break Ok(());
            }
            if timing == Timing::RealTime {
                std::thread::sleep(Duration::from_millis(FRAME_MS));
            }
        }
        let frame_start = frame_index * FRAME_MS;
        st.now_ms = frame_start + FRAME_MS;

        let step = (|| -> Result<(), LoopError> {
            // While hark talks into the room, its own echo must not count as the user.
            let voiced =
                vad.is_speech(&frame)? && echo_gate.as_ref().is_none_or(|g| g.near_end(&frame));
            if let Some(event) = endpointer.push(&frame, voiced) {
                st.on_endpoint(event)?;
            }
            if endpointer.in_speech() {
                st.speculate(&mut endpointer)?;
            }
            // Nobody has said anything for a while: the brain may ask again.
            let idle = st.playback.is_none() && st.awaiting_reply.is_none() && st.stt_pending == 0;
            if !idle || endpointer.in_speech() {
                st.quiet_since_ms = st.now_ms;
            } else if st.config.no_input_ms > 0
                && st.now_ms >= st.quiet_since_ms + st.config.no_input_ms
            {
                st.quiet_since_ms = st.now_ms;
                st.start_unprompted(ReplyInput::Silence)?;
            }
            // Partial transcripts of the growing utterance, while the user is talking.
            if endpointer.in_speech()
                // Not once a pause has begun: a partial then would only delay the
                // speculative decode queued behind it.
                && endpointer.trailing_silence_ms() < PARTIAL_SILENCE_LIMIT_MS
                && !st.partial_in_flight
                && st.now_ms >= st.last_partial_ms + st.config.partial_interval_ms
            {
                st.last_partial_ms = st.now_ms;
                let snapshot = endpointer.utterance().to_vec();
                st.submit_stt(snapshot, SttKind::Partial)?;
            }
            // A long interruption is a barge-in even before its words are known.
            if st.interruption.as_ref().is_some_and(|i| !i.awaiting_final)
                && endpointer.voiced_ms() >= st.config.barge_in_confirm_ms
            {
                st.barge_in()?;
            }
            while let Ok(done) = st.stt_rx.try_recv() {
                st.on_stt(done)?;
            }
            while let Ok(msg) = st.reply_rx.try_recv() {
                st.on_reply(msg);
            }
            let due = ((frame_index + 1) * sink_rate as u64 / 50
                - frame_index * sink_rate as u64 / 50) as usize;
            out.resize(due, 0.0);
            st.render(&mut out, frame_start, sink_rate)?;
            if std::mem::take(&mut st.silence_now) {
                sink.discard_queued();
            }
            sink.write(&out)?;
            if let Some(gate) = echo_gate.as_mut() {
                // Compared at 16 kHz-equivalent level: RMS does not depend on the rate.
                gate.played(&out);
                if st.interruption.is_some() {
                    gate.restart_warmup();
                }
            }
            Ok(())
        })();
        if let Err(e) = step {
            break Err(e);
        }
        frame_index += 1;
    };
    let mut summary = std::mem::take(&mut st.summary);
    summary.input_ms = input_frames * FRAME_MS;
    summary.output_ms = frame_index * FRAME_MS;
    drop(st);
    let _ = stt_thread.join();
    let _ = reply_thread.join();
    sink.finish()?;
    summary.input_overruns = source.stream_stats().map_or(0, |s| s.overruns);
    summary.output_underruns = sink.stream_stats().map_or(0, |s| s.underruns);
    result.map(|_| summary)
}

#[cfg(test)]
mod tests {
    use super::looks_complete;

    #[test]
    fn complete_sentences_and_open_ones() {
        for t in [
            "Hello there.",
            "What time is it?",
            "Book it!",
            " Please reset my password. ",
        ] {
            assert!(looks_complete(t), "{t:?}");
        }
        for t in [
            "",
            "I would like to",
            "I would like to book a table and.",
            "Um...",
            "So, the",
            "and the,",
            "Wait…",
        ] {
            assert!(!looks_complete(t), "{t:?}");
        }
    }
}
