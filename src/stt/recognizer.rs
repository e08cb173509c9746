//! The streaming speech-to-text seam: the one place a recognizer, local or cloud, meets the
//! pipeline. A [`Recognizer`] opens one [`RecognizerSession`] per conversation; the pipeline
//! pushes 16 kHz audio into it as it arrives, tells it what the local endpointer concluded,
//! and polls what it recognized. Nothing here blocks: an engine that talks to a network or
//! decodes on another thread does so behind the session.
//!
//! Times are milliseconds on the session's audio timeline: the first sample pushed is 0,
//! and every sample the pipeline receives is pushed, so the pipeline and the session agree
//! on where each hint falls.

use super::SttError;

/// What an engine does on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecognizerCapabilities {
    /// It reports interim text while the user is talking.
    pub interim_results: bool,
    /// It decides by itself that the user has finished (a final with `end_of_turn` the
    /// pipeline did not ask for).
    pub endpointing: bool,
}

/// What the local endpointer (VAD and hangover) concluded; an engine uses what it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechHint {
    /// The user started talking; the utterance's audio begins at `audio_from_ms`.
    Started { audio_from_ms: u64 },
    /// The user paused: everything said so far ends at `audio_to_ms`, and they may have
    /// finished.
    Paused { audio_to_ms: u64 },
    /// Voice again after a pause, in the same utterance.
    Resumed,
    /// The hangover ran out: the user has stopped, the utterance's audio ends at
    /// `audio_to_ms`. The session answers with exactly one [`RecognizerEvent::Final`] with
    /// `end_of_turn` (its text may be empty) before anything it reports about later audio.
    Stopped { audio_to_ms: u64 },
    /// The pipeline ended the turn itself, on a final the session marked `end_of_turn`:
    /// nothing more is owed for this utterance.
    TurnEnded,
    /// What was heard was too short to be speech.
    Discarded,
}

/// What a session recognized.
#[derive(Debug, Clone, PartialEq)]
pub enum RecognizerEvent {
    /// The engine's own voice detection heard speech start.
    SpeechStarted,
    /// The text of the utterance so far, still open to change.
    Interim { text: String },
    /// The text of the utterance so far, which the engine stands by for the audio it has
    /// heard; a later final of the same utterance replaces it. `end_of_turn`: the engine
    /// believes the user has finished. `latency_ms`: how long the engine took from the
    /// audio (or the hint) to this text, where it knows.
    Final {
        text: String,
        end_of_turn: bool,
        latency_ms: Option<f64>,
    },
    /// Something went wrong; the session goes on where it can.
    Error { message: String },
    /// The session can recognize nothing more (its engine is gone for good); finals still
    /// owed will not come from it.
    Failed { message: String },
}

/// A speech-to-text engine, shared by the conversations that use it.
pub trait Recognizer: Send + Sync {
    fn name(&self) -> &str;
    fn capabilities(&self) -> RecognizerCapabilities;
    fn open_session(&self) -> Result<Box<dyn RecognizerSession>, SttError>;
}

/// One conversation's recognition.
pub trait RecognizerSession: Send {
    /// The next 16 kHz mono samples, in order. Never blocks.
    fn push_audio(&mut self, samples: &[f32]);
    /// What the local endpointer concluded.
    fn hint(&mut self, hint: SpeechHint);
    /// Phrases the next utterance is likely to contain, most likely first; each engine
    /// turns them into what it understands (a Whisper prompt, key terms).
    fn expect_phrases(&mut self, phrases: &[String]);
    /// The next thing recognized, if any.
    fn poll(&mut self) -> Option<RecognizerEvent>;
    /// The audio has ended: finish what is owed, then stop.
    fn finish(&mut self) {}
    /// Whether the session still owes results for audio it has been given (a decode or a
    /// network answer in flight).
    fn busy(&self) -> bool;
    /// Waits, up to `limit`, until the results for the audio given so far are in: in
    /// simulated time an engine's work takes no time. A real-time loop never calls it;
    /// engines that answer at once need nothing here.
    fn settle(&mut self, _limit: std::time::Duration) {}
}
