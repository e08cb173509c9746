//! The real-time loop: one thread owns the 20 ms timeline. Every frame it reads the
//! microphone, runs the VAD and the endpointer, hands the audio to the recognizer session,
//! feeds what happened to the turn machine and carries out what it decides, pulls the
//! reply's audio from its synthesis stream and writes 20 ms to the speaker (reply audio or
//! silence), so the output lines up with the input sample for sample. The recognizer and
//! the synthesizer do their work behind their seams, and the brain on the reply worker, so
//! nothing here waits on a decode, a sentence or a network.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use super::playback::{Filler, Playback, PlaybackNote};
use super::reply::{self, ReplyJob, ReplyMsg};
use super::turn::{Action, Input, ReplyInput, TurnConfig, TurnMachine};
use crate::audio::resample::StreamResampler;
use crate::audio::{AudioError, AudioSink, AudioSource, SPEECH_RATE};
use crate::clock::{Clock, SETTLE_LIMIT};
use crate::dialogue::Brain;
use crate::stt::recognizer::{RecognizerSession, SpeechHint};
use crate::telemetry::events::{Event, EventLog, StopReason, TimedEvent};
use crate::telemetry::metrics::EventTimer;
use crate::tts::stream::{SynthesisEvent, SynthesisStream, Synthesizer};
use crate::vad::echo_gate::{EchoGate, EchoGateConfig};
use crate::vad::endpointer::{EndpointEvent, Endpointer, EndpointerConfig};
use crate::vad::level_gate::{level_db, LevelGate};
use crate::vad::smart_turn::WINDOW_SAMPLES;
use crate::vad::turn_model::{TurnModel, TurnModelClient};
use crate::vad::{VadError, VoiceDetector, FRAME_MS, FRAME_SAMPLES};

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Vad(#[from] VadError),
    #[error("a worker thread stopped unexpectedly: {0}")]
    Worker(&'static str),
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LoopConfig {
    pub endpointer: EndpointerConfig,
    pub turns: TurnConfig,
    /// After the input ends, how long to keep going (finishing a reply) at most.
    pub drain_limit_ms: u64,
    /// Double-talk gate for a speaker the microphone can hear (a live room); None when
    /// the output cannot reach the input (files, headphones).
    pub echo_gate: Option<EchoGateConfig>,
    /// What hark says when an answer is late (synthesized once, at the start).
    pub acknowledgement: String,
    /// Real time (a microphone, a call), or simulated time (tests of fake engines).
    #[serde(skip)]
    pub clock: Clock,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            endpointer: EndpointerConfig::default(),
            turns: TurnConfig::default(),
            drain_limit_ms: 60_000,
            echo_gate: None,
            acknowledgement: "One moment.".into(),
            clock: Clock::RealTime,
        }
    }
}

/// The engines a conversation runs on.
pub struct Engines {
    pub recognizer: Box<dyn RecognizerSession>,
    pub brain: Box<dyn Brain>,
    pub synthesizer: Arc<dyn Synthesizer>,
    /// The end-of-turn model, when it is installed (without it the transcript alone decides
    /// when a pause ends the turn).
    pub turn_model: Option<Arc<TurnModel>>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
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
    /// Times hark said the answer was coming because it was late.
    pub acknowledgements: u64,
}

/// A fixed phrase synthesized once and kept at the speaker's rate (resampled on the way in,
/// as a reply's audio is).
struct CachedClip {
    stream: Option<SynthesisStream>,
    resampler: Option<StreamResampler>,
    resampled: Vec<f32>,
    audio: Option<Vec<f32>>,
}

impl CachedClip {
    fn new(synthesizer: &dyn Synthesizer, text: &str, sink_rate: u32) -> Self {
        let stream = synthesizer.open_stream().ok().filter(|s| {
            let input = s.input();
            input.push(text) && {
                input.flush();
                true
            }
        });
        let resampler = stream
            .as_ref()
            .and_then(|s| StreamResampler::new(s.sample_rate(), sink_rate, 20).ok());
        Self {
            stream,
            resampler,
            resampled: Vec::new(),
            audio: None,
        }
    }

    /// The clip, once it is ready (in simulated time, it always is).
    fn audio(&mut self, clock: Clock) -> Option<&[f32]> {
        while let Some(stream) = self.stream.as_mut() {
            let event = match clock {
                Clock::RealTime => stream.poll(),
                Clock::Simulated => stream.wait(SETTLE_LIMIT),
            };
            let Some(event) = event else {
                break;
            };
            let Some(resampler) = self.resampler.as_mut() else {
                self.stream = None;
                break;
            };
            let resampled = match event {
                SynthesisEvent::Audio(samples) => resampler.push(&samples, &mut self.resampled),
                SynthesisEvent::Mark { .. } => Ok(()),
                SynthesisEvent::Done => {
                    let done = resampler.finish(&mut self.resampled);
                    self.audio = done.is_ok().then(|| std::mem::take(&mut self.resampled));
                    self.stream = None;
                    done
                }
                SynthesisEvent::Failed(_) => {
                    self.stream = None;
                    Ok(())
                }
            };
            if resampled.is_err() {
                self.stream = None;
            }
        }
        self.audio.as_deref()
    }
}

/// Everything one conversation's loop holds between frames.
struct Conversation<'a> {
    machine: TurnMachine,
    endpointer: Endpointer,
    recognizer: Box<dyn RecognizerSession>,
    synthesizer: Arc<dyn Synthesizer>,
    reply_tx: Sender<ReplyJob>,
    reply_rx: Receiver<ReplyMsg>,
    events: &'a mut EventLog,
    playback: Option<Playback>,
    /// The acknowledgement playing while no reply has audio yet.
    filler: Filler,
    /// Made when the user first speaks (not at the start, where it would hold up the
    /// greeting), ready long before an answer can be late.
    acknowledgement: Option<CachedClip>,
    acknowledgement_text: String,
    sink_rate: u32,
    now_ms: u64,
    /// Reply audio must stop now: the sink drops what it has queued.
    silence_now: bool,
    acknowledgements: u64,
    /// Reads the conversation's latencies off its events, for the conversation log.
    timer: EventTimer,
    clock: Clock,
    /// The reply the worker is making, until it says it is done (simulated time waits).
    awaiting: Option<u64>,
    turn_model: Option<TurnModelClient>,
    /// The last 8 s the microphone heard, and where the utterance under way began.
    recent: RecentAudio,
    utterance_from_ms: u64,
    /// The reply prepared in the user's pause, and how many preparations the worker owes.
    speculation: Option<Speculation>,
    preparing: usize,
    /// The words a reply committed from its preparation answers (worked out afresh if the
    /// preparation turns out stale).
    committed: Option<(u64, String)>,
}

/// A reply worked out in the user's pause: the words it answers, its audio on the way (not
/// played), and whether the worker could prepare something to say at once.
struct Speculation {
    text: String,
    stream: Option<SynthesisStream>,
    speakable: Option<bool>,
}

/// The last 8 s of input (the end-of-turn model's window), kept without allocating.
struct RecentAudio {
    samples: std::collections::VecDeque<f32>,
    /// The input time its last sample ends at.
    end_ms: u64,
}

impl RecentAudio {
    fn new() -> Self {
        Self {
            samples: std::collections::VecDeque::with_capacity(WINDOW_SAMPLES + FRAME_SAMPLES),
            end_ms: 0,
        }
    }

    fn push(&mut self, frame: &[f32], end_ms: u64) {
        self.samples.extend(frame);
        let over = self.samples.len().saturating_sub(WINDOW_SAMPLES);
        self.samples.drain(..over);
        self.end_ms = end_ms;
    }

    /// What was heard from `from_ms` on (at most the last 8 s).
    fn since(&self, from_ms: u64) -> impl ExactSizeIterator<Item = f32> + '_ {
        let back = (self.end_ms.saturating_sub(from_ms) * SPEECH_RATE as u64 / 1000) as usize;
        let start = self.samples.len().saturating_sub(back);
        self.samples.range(start..).copied()
    }
}

impl Conversation<'_> {
    fn step(&mut self, input: Input) -> Result<(), LoopError> {
        for action in self.machine.step(input) {
            self.act(action)?;
        }
        Ok(())
    }

    fn act(&mut self, action: Action) -> Result<(), LoopError> {
        match action {
            Action::Emit { t_ms, event } => self.emit(t_ms, event),
            // The machine keeps whether the reply is paused; rendering reads it there.
            Action::PausePlayback => {
                self.filler.clear();
                self.silence_now = true;
            }
            Action::ResumePlayback => {}
            Action::StopReply { turn, reason } => self.stop_reply(turn, reason)?,
            Action::Prepare { text } => self.prepare(text)?,
            Action::DropPrepared => self.drop_speculation()?,
            Action::StartReply { turn, input } => {
                if let ReplyInput::User(text) = &input {
                    if let Some(speculation) = self.speculation_for(text) {
                        return self.start_prepared(turn, text.clone(), speculation);
                    }
                }
                self.drop_speculation()?;
                self.start_reply(turn, input)?;
            }
            Action::EndUtterance => {
                self.endpointer.end_now();
                self.recognizer.hint(SpeechHint::TurnEnded);
            }
            Action::HearTurn { pause } => match self.turn_model.as_mut() {
                Some(model) => model.ask(self.recent.since(self.utterance_from_ms), pause.into()),
                None => self.step(Input::TurnHeard {
                    pause,
                    complete: None,
                })?,
            },
            Action::HoldOpen { silence_ms } => self.endpointer.hold(silence_ms),
            Action::Acknowledge => {
                let clock = self.clock;
                let clip = self.acknowledgement.as_mut().and_then(|c| c.audio(clock));
                let Some(clip) = clip.map(<[f32]>::to_vec) else {
                    return Ok(());
                };
                self.acknowledgements += 1;
                if self.playback.as_ref().is_none_or(|p| !p.started()) {
                    self.filler.add(&clip);
                }
            }
        }
        Ok(())
    }

    /// Opens reply `turn`'s synthesis stream and has the worker answer `input` into it.
    fn start_reply(&mut self, turn: u64, input: ReplyInput) -> Result<(), LoopError> {
        let stream = match self.synthesizer.open_stream() {
            Ok(stream) => stream,
            Err(e) => {
                let message = format!("the reply could not be spoken: {e}");
                self.step(Input::ReplyFailed { turn, message })?;
                let at_ms = self.now_ms;
                return self.step(Input::PlaybackFinished {
                    turn,
                    at_ms,
                    played: false,
                });
            }
        };
        let text = stream.input();
        self.playback = Some(Playback::new(turn, stream, self.sink_rate)?);
        self.reply_tx
            .send(ReplyJob::Respond { turn, input, text })
            .map_err(|_| LoopError::Worker("reply"))?;
        self.awaiting = Some(turn);
        Ok(())
    }

    /// Starts working out the reply to `text` in the user's pause: the worker decides it
    /// and feeds what can be said now into a stream of its own, whose audio waits.
    fn prepare(&mut self, text: String) -> Result<(), LoopError> {
        if self.speculation.as_ref().is_some_and(|s| s.text == text) {
            return Ok(());
        }
        self.drop_speculation()?;
        let Ok(stream) = self.synthesizer.open_stream() else {
            // Without a stream, the reply is worked out when the turn ends, as ever.
            let answers = None;
            return self.step(Input::Prepared { text, answers });
        };
        let input = stream.input();
        self.reply_tx
            .send(ReplyJob::Prepare {
                text: text.clone(),
                input,
            })
            .map_err(|_| LoopError::Worker("reply"))?;
        self.preparing += 1;
        self.speculation = Some(Speculation {
            text,
            stream: Some(stream),
            speakable: None,
        });
        Ok(())
    }

    /// Drops the reply prepared in the pause: its audio is cancelled unheard and the
    /// worker forgets it.
    fn drop_speculation(&mut self) -> Result<(), LoopError> {
        if let Some(mut speculation) = self.speculation.take() {
            if let Some(stream) = speculation.stream.as_mut() {
                stream.cancel();
            }
            self.reply_tx
                .send(ReplyJob::DropPrepared)
                .map_err(|_| LoopError::Worker("reply"))?;
        }
        Ok(())
    }

    /// The prepared reply, if it was for these words and can be said at once.
    fn speculation_for(&mut self, text: &str) -> Option<Speculation> {
        self.speculation
            .take_if(|s| s.text == text && s.speakable == Some(true) && s.stream.is_some())
    }

    /// Reply `turn` is the one prepared in the pause: its audio (made while the user was
    /// silent) plays now, and the worker commits it.
    fn start_prepared(
        &mut self,
        turn: u64,
        text: String,
        speculation: Speculation,
    ) -> Result<(), LoopError> {
        let Some(stream) = speculation.stream else {
            return Ok(());
        };
        self.playback = Some(Playback::new(turn, stream, self.sink_rate)?);
        self.reply_tx
            .send(ReplyJob::CommitPrepared {
                turn,
                text: text.clone(),
            })
            .map_err(|_| LoopError::Worker("reply"))?;
        self.awaiting = Some(turn);
        self.committed = Some((turn, text));
        Ok(())
    }

    /// The prepared reply no longer held: reply `turn` is worked out afresh.
    fn reply_afresh(&mut self, turn: u64) -> Result<(), LoopError> {
        let Some((_, text)) = self.committed.take_if(|(t, _)| *t == turn) else {
            return Ok(());
        };
        if let Some(mut playback) = self.playback.take_if(|p| p.turn == turn) {
            playback.cancel();
        }
        self.start_reply(turn, ReplyInput::User(text))
    }

    /// Logs an event, and hands the latencies it completes to the brain's log. An error
    /// goes to the diagnostics too.
    fn emit(&mut self, t_ms: u64, event: Event) {
        if let Event::Error { message } = &event {
            tracing::warn!(at_ms = t_ms, "{message}");
        }
        let timed = TimedEvent { t_ms, event };
        for (measure, ms) in self.timer.observe(&timed) {
            // A worker that has stopped is reported where the loop next needs it.
            let _ = self.reply_tx.send(ReplyJob::Measured { measure, ms });
        }
        self.events.push(timed.t_ms, timed.event);
    }

    fn stop_reply(&mut self, turn: u64, reason: StopReason) -> Result<(), LoopError> {
        let Some(mut playback) = self.playback.take_if(|p| p.turn == turn) else {
            return Ok(());
        };
        playback.cancel();
        self.silence_now = true;
        self.filler.clear();
        if reason == StopReason::BargeIn {
            let heard = playback.heard_text();
            self.emit(self.now_ms, Event::AudioOutStop { turn, reason });
            self.emit(
                self.now_ms,
                Event::BargeIn {
                    turn,
                    spoken: heard.clone(),
                },
            );
            self.reply_tx
                .send(ReplyJob::Interrupted { heard })
                .map_err(|_| LoopError::Worker("reply"))?;
        } else if playback.started() {
            self.emit(self.now_ms, Event::AudioOutStop { turn, reason });
        }
        Ok(())
    }

    fn on_reply(&mut self, msg: ReplyMsg) -> Result<(), LoopError> {
        match msg {
            ReplyMsg::Phrases(phrases) => self.recognizer.expect_phrases(&phrases),
            ReplyMsg::ValuePhrases(phrases) => self.machine.know_phrases(phrases),
            ReplyMsg::Handoff(handoff) => self.emit(self.now_ms, Event::Handoff { handoff }),
            ReplyMsg::Fault(message) => self.emit(self.now_ms, Event::Error { message }),
            ReplyMsg::Done { turn } => self.worker_done(turn),
            ReplyMsg::Prepared {
                text,
                speakable,
                answers,
            } => {
                self.preparing = self.preparing.saturating_sub(1);
                let Some(speculation) = self.speculation.as_mut().filter(|s| s.text == text) else {
                    return Ok(());
                };
                speculation.speakable = Some(speakable);
                if !speakable {
                    speculation.stream = None;
                }
                self.step(Input::Prepared { text, answers })?;
            }
            ReplyMsg::Stale { turn } => {
                self.worker_done(turn);
                self.reply_afresh(turn)?;
            }
            ReplyMsg::Failed { turn, message } => {
                self.worker_done(turn);
                self.step(Input::ReplyFailed { turn, message })?
            }
        }
        Ok(())
    }

    fn worker_done(&mut self, turn: u64) {
        if self.awaiting == Some(turn) {
            self.awaiting = None;
        }
    }

    /// In simulated time, the engines' work of this frame is finished before the frame
    /// goes on, in a fixed order (the recognizer's decodes, the end-of-turn model's
    /// hearings, the reply the worker is making) and again for whatever that work asked
    /// for, until nothing is owed: the same input is always the same conversation.
    fn settle(&mut self) -> Result<(), LoopError> {
        while self.settle_once()? {}
        Ok(())
    }

    /// One round of [`Self::settle`]; whether anything came back.
    fn settle_once(&mut self) -> Result<bool, LoopError> {
        let mut came_back = false;
        self.recognizer.settle(SETTLE_LIMIT);
        while let Some(event) = self.recognizer.poll() {
            came_back = true;
            self.step(Input::Recognizer(event))?;
        }
        let heard = match self.turn_model.as_mut() {
            Some(model) => model.settle(SETTLE_LIMIT),
            None => Vec::new(),
        };
        for (pause, complete) in heard {
            came_back = true;
            let pause = pause as u32;
            self.step(Input::TurnHeard { pause, complete })?;
        }
        while self.awaiting.is_some() || self.preparing > 0 {
            let msg = self
                .reply_rx
                .recv_timeout(SETTLE_LIMIT)
                .map_err(|_| LoopError::Worker("reply"))?;
            came_back = true;
            self.on_reply(msg)?;
        }
        Ok(came_back)
    }

    /// Pulls the reply's audio and fills one output frame (reply, acknowledgement or
    /// silence), telling the turn machine what playback did.
    fn render(&mut self, out: &mut [f32], frame_start_ms: u64) -> Result<(), LoopError> {
        out.fill(0.0);
        let mut notes = Vec::new();
        let written = self.filler.play(out);
        let paused = self.machine.paused();
        let Some(p) = self.playback.as_mut() else {
            return Ok(());
        };
        let turn = p.turn;
        p.pull(&mut notes, self.clock);
        if !paused {
            p.render(&mut out[written..], &mut notes);
        }
        let sink_rate = self.sink_rate as u64;
        let at = |offset: usize| frame_start_ms + ((written + offset) as u64 * 1000) / sink_rate;
        for note in notes {
            let input = match note {
                PlaybackNote::Queued(text) => Input::ReplyText { turn, text },
                PlaybackNote::Started { offset } => Input::PlaybackStarted {
                    turn,
                    at_ms: at(offset),
                },
                PlaybackNote::SentenceStarted(text) => Input::SentenceStarted { turn, text },
                PlaybackNote::Failed(message) => Input::ReplyFailed { turn, message },
                PlaybackNote::Finished { offset } => {
                    self.playback = None;
                    Input::PlaybackFinished {
                        turn,
                        at_ms: at(offset.unwrap_or(0)),
                        played: offset.is_some(),
                    }
                }
            };
            self.step(input)?;
        }
        Ok(())
    }

    fn busy(&self) -> bool {
        !self.machine.idle() || self.recognizer.busy() || self.playback.is_some()
    }
}

fn hint_for(event: &EndpointEvent) -> SpeechHint {
    match *event {
        EndpointEvent::SpeechStart { audio_from_ms, .. } => SpeechHint::Started { audio_from_ms },
        EndpointEvent::Paused { audio_to_ms, .. } => SpeechHint::Paused { audio_to_ms },
        EndpointEvent::Resumed { .. } => SpeechHint::Resumed,
        EndpointEvent::SpeechEnd { audio_to_ms, .. } => SpeechHint::Stopped { audio_to_ms },
        EndpointEvent::Discarded { .. } => SpeechHint::Discarded,
    }
}

/// What the loop hears before the endpointer: the VAD, the double-talk gate for a speaker
/// the microphone can hear, and the level gate that keeps background noise from holding
/// an utterance open.
struct Ears {
    vad: VoiceDetector,
    echo_gate: Option<EchoGate>,
    level_gate: LevelGate,
}

impl Ears {
    fn new(echo_gate: Option<EchoGateConfig>) -> Self {
        Self {
            vad: VoiceDetector::new(),
            echo_gate: echo_gate.map(EchoGate::new),
            level_gate: LevelGate::new(),
        }
    }

    /// Whether `frame` holds the user's voice. While hark talks into the room its own echo
    /// must not count as the user, and within an utterance the background's noise must
    /// not hold it open.
    fn voiced(&mut self, frame: &[f32], in_speech: bool) -> Result<bool, LoopError> {
        let vad_voiced =
            self.vad.is_speech(frame)? && self.echo_gate.as_ref().is_none_or(|g| g.near_end(frame));
        Ok(self
            .level_gate
            .voiced(level_db(frame), vad_voiced, in_speech))
    }

    /// What the speaker played, for the echo gate (its RMS does not depend on the rate).
    fn played(&mut self, out: &[f32], interrupted: bool) {
        if let Some(gate) = self.echo_gate.as_mut() {
            gate.played(out);
            if interrupted {
                gate.restart_warmup();
            }
        }
    }
}

/// Where the loop is on its timeline.
#[derive(Default)]
struct Timeline {
    frame_index: u64,
    input_frames: u64,
    input_ended: bool,
    drained_ms: u64,
}

impl Conversation<'_> {
    /// One 20 ms frame of input: heard, endpointed, recognized, and what it leads to
    /// decided.
    fn listen(&mut self, frame: &[f32], ears: &mut Ears) -> Result<(), LoopError> {
        let voiced = ears.voiced(frame, self.endpointer.in_speech())?;
        self.recognizer.push_audio(frame);
        self.recent.push(frame, self.now_ms);
        if let Some(event) = self.endpointer.push(voiced) {
            self.recognizer.hint(hint_for(&event));
            if let EndpointEvent::SpeechStart { audio_from_ms, .. } = event {
                self.utterance_from_ms = audio_from_ms;
                self.user_started();
            }
            self.step(Input::Endpoint(event))?;
        }
        let speech = self.endpointer.progress();
        self.step(Input::Frame {
            now_ms: self.now_ms,
            speech,
        })?;
        if self.clock.is_simulated() {
            return self.settle();
        }
        while let Some(event) = self.recognizer.poll() {
            self.step(Input::Recognizer(event))?;
        }
        while let Some((pause, complete)) = self.turn_model.as_mut().and_then(|m| m.poll()) {
            let pause = pause as u32;
            self.step(Input::TurnHeard { pause, complete })?;
        }
        while let Ok(msg) = self.reply_rx.try_recv() {
            self.on_reply(msg)?;
        }
        Ok(())
    }

    /// The user started talking: an acknowledgement is no reason to talk over them, and
    /// the acknowledgement's audio is made now, long before an answer can be late (not at
    /// the start, where it would hold up the greeting).
    fn user_started(&mut self) {
        self.filler.clear();
        if self.acknowledgement.is_none() {
            let clip = CachedClip::new(
                self.synthesizer.as_ref(),
                &self.acknowledgement_text,
                self.sink_rate,
            );
            self.acknowledgement = Some(clip);
        }
    }

    /// One 20 ms frame of output, written to the sink, lined up sample for sample with the
    /// input.
    fn speak(
        &mut self,
        out: &mut Vec<f32>,
        frame_index: u64,
        sink: &mut dyn AudioSink,
        ears: &mut Ears,
    ) -> Result<(), LoopError> {
        let rate = self.sink_rate as u64;
        let due = ((frame_index + 1) * rate / 50 - frame_index * rate / 50) as usize;
        out.resize(due, 0.0);
        self.render(out, frame_index * FRAME_MS)?;
        if std::mem::take(&mut self.silence_now) {
            sink.discard_queued();
        }
        sink.write(out)?;
        ears.played(out, self.machine.interrupted());
        Ok(())
    }
}

/// The next frame of input into `frame`; after the input has ended, silence, so that a
/// pending utterance ends and a reply finishes. Returns false when the loop is done.
fn next_frame(
    source: &mut dyn AudioSource,
    frame: &mut [f32],
    conv: &mut Conversation,
    time: &mut Timeline,
    drain_limit_ms: u64,
) -> Result<bool, LoopError> {
    if !time.input_ended {
        let n = source.read(frame)?;
        if n < FRAME_SAMPLES {
            frame[n..].fill(0.0);
            time.input_ended = true;
            conv.recognizer.finish();
        }
        if n > 0 {
            time.input_frames += 1;
        }
        return Ok(true);
    }
    frame.fill(0.0);
    time.drained_ms += FRAME_MS;
    if !conv.busy() || time.drained_ms > drain_limit_ms {
        return Ok(false);
    }
    conv.clock.idle_frame(FRAME_MS);
    Ok(true)
}

/// Runs a conversation from `source` to `sink`, until the source ends and the last reply
/// has been played (or `drain_limit_ms` has passed): in real time, or in simulated time
/// when the config's clock says so.
pub fn run_voice_loop(
    config: LoopConfig,
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
    // The loop's own diagnostics carry the conversation's id as the brain's do.
    let _span = match engines.brain.conversation_id() {
        Some(id) => tracing::info_span!("conversation", id = %id),
        None => tracing::info_span!("conversation"),
    }
    .entered();
    let (reply_tx, reply_rx, reply_thread) = reply::spawn(engines.brain);
    let mut conv = Conversation {
        machine: TurnMachine::new(config.turns),
        endpointer: Endpointer::new(config.endpointer),
        recognizer: engines.recognizer,
        synthesizer: engines.synthesizer,
        reply_tx,
        reply_rx,
        events,
        playback: None,
        filler: Filler::default(),
        acknowledgement: None,
        acknowledgement_text: config.acknowledgement.clone(),
        sink_rate,
        now_ms: 0,
        silence_now: false,
        acknowledgements: 0,
        timer: EventTimer::default(),
        clock: config.clock,
        awaiting: None,
        turn_model: engines.turn_model.as_ref().map(TurnModel::client),
        recent: RecentAudio::new(),
        utterance_from_ms: 0,
        speculation: None,
        preparing: 0,
        committed: None,
    };
    let mut ears = Ears::new(config.echo_gate);
    let mut time = Timeline::default();
    tracing::info!(sink_rate, "conversation started");
    let result = (|| -> Result<(), LoopError> {
        let mut frame = vec![0f32; FRAME_SAMPLES];
        let mut out = Vec::with_capacity(sink_rate as usize / 10);
        conv.step(Input::Start)?;
        while next_frame(
            source,
            &mut frame,
            &mut conv,
            &mut time,
            config.drain_limit_ms,
        )? {
            conv.now_ms = (time.frame_index + 1) * FRAME_MS;
            conv.listen(&frame, &mut ears)?;
            conv.speak(&mut out, time.frame_index, sink, &mut ears)?;
            time.frame_index += 1;
        }
        Ok(())
    })();
    let counts = conv.machine.counts().clone();
    let acknowledgements = conv.acknowledgements;
    drop(conv);
    let _ = reply_thread.join();
    sink.finish()?;
    if let Err(e) = &result {
        tracing::error!(error = %e, "the conversation stopped");
    }
    result?;
    let summary = RunSummary {
        input_overruns: source.stream_stats().map_or(0, |s| s.overruns),
        output_underruns: sink.stream_stats().map_or(0, |s| s.underruns),
        input_ms: time.input_frames * FRAME_MS,
        output_ms: time.frame_index * FRAME_MS,
        user_turns: counts.user_turns,
        replies: counts.replies,
        barge_ins: counts.barge_ins,
        false_interruptions: counts.false_interruptions,
        acknowledgements,
    };
    tracing::info!(
        user_turns = summary.user_turns,
        replies = summary.replies,
        barge_ins = summary.barge_ins,
        input_overruns = summary.input_overruns,
        output_underruns = summary.output_underruns,
        "conversation ended"
    );
    Ok(summary)
}
