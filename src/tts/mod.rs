//! Text-to-speech: the streaming seam every engine meets the pipeline through
//! ([`stream::Synthesizer`]), and the local voices behind it (Piper, espeak-ng), spoken a
//! sentence at a time so the first sentence plays while later ones are still being made.

pub mod cache;
pub mod cloud;
pub mod espeak;
pub mod failover;
pub mod local;
pub mod piper;
pub mod sentences;
pub mod stream;

use std::path::PathBuf;
use std::time::Instant;

use crate::models::{ModelDir, PIPER_VOICE};

pub use sentences::SentenceSplitter;

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("voice model not found at {path}: {hint}")]
    VoiceMissing { path: PathBuf, hint: String },
    #[error("ONNX Runtime library not usable at {path}: {reason}. Run scripts/setup.sh (it installs it into models/onnxruntime/), or point ORT_DYLIB_PATH at a libonnxruntime.so of version 1.31 or newer")]
    OnnxRuntime { path: PathBuf, reason: String },
    #[error("espeak-ng failed: {0} (is the espeak-ng-data package installed? scripts/setup.sh installs it)")]
    Espeak(String),
    #[error("invalid voice configuration {path}: {reason}")]
    VoiceConfig { path: PathBuf, reason: String },
    #[error("synthesis failed: {0}")]
    Engine(String),
    #[error("unknown voice '{0}'; choose piper or espeak")]
    UnknownVoice(String),
}

/// A local voice: one sentence (or clause) in, mono audio at `sample_rate()` out. The
/// pipeline meets voices through [`stream::Synthesizer`]; [`local::LocalSynthesizer`] makes
/// a voice into one.
pub trait Voice: Send {
    fn name(&self) -> &str;
    fn sample_rate(&self) -> u32;
    fn synthesize(&mut self, sentence: &str) -> Result<Vec<f32>, TtsError>;
}

/// The built-in voices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VoiceKind {
    /// Neural voice (Piper, en_US-joe-medium): natural, ~20 ms to first audio.
    Piper,
    /// Formant synthesis (espeak-ng): robotic, needs no model file, ~1 ms.
    Espeak,
}

impl std::str::FromStr for VoiceKind {
    type Err = TtsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "piper" => Ok(Self::Piper),
            "espeak" | "espeak-ng" => Ok(Self::Espeak),
            other => Err(TtsError::UnknownVoice(other.to_string())),
        }
    }
}

/// Opens the chosen voice from `models`.
pub fn open_voice(
    kind: VoiceKind,
    models: &ModelDir,
    threads: usize,
) -> Result<Box<dyn Voice>, TtsError> {
    Ok(match kind {
        VoiceKind::Piper => Box::new(piper::PiperVoice::open(
            &models.piper_voice(PIPER_VOICE),
            &models.onnxruntime(),
            threads,
        )?),
        VoiceKind::Espeak => Box::new(espeak::EspeakVoice::new("en-us", 165)?),
    })
}

/// One sentence of synthesized speech, with when it became ready.
#[derive(Debug, Clone)]
pub struct SpeechChunk {
    pub text: String,
    pub samples: Vec<f32>,
    /// Milliseconds from the start of `speak_streaming` until this chunk was ready.
    pub ready_ms: f64,
}

/// Synthesizes `text` one sentence at a time, handing each to `sink` as soon as it exists.
/// Returning `false` from `sink` stops synthesis (barge-in).
pub fn speak_streaming(
    synth: &mut dyn Voice,
    text: &str,
    sink: &mut dyn FnMut(SpeechChunk) -> bool,
) -> Result<(), TtsError> {
    let start = Instant::now();
    let mut splitter = SentenceSplitter::new();
    let mut sentences = splitter.push(text);
    sentences.extend(splitter.finish());
    for sentence in sentences {
        let samples = synth.synthesize(&sentence)?;
        let chunk = SpeechChunk {
            text: sentence,
            samples,
            ready_ms: start.elapsed().as_secs_f64() * 1000.0,
        };
        if !sink(chunk) {
            break;
        }
    }
    Ok(())
}
