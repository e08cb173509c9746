//! Text-to-speech: engines behind one `Synthesizer` trait, and per-sentence streaming so the
//! first sentence plays while later ones are still being made.

pub mod espeak;
pub mod piper;
pub mod sentences;

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

/// A speech engine. One sentence (or clause) in, mono audio at `sample_rate()` out.
pub trait Synthesizer: Send {
    fn name(&self) -> &str;
    fn sample_rate(&self) -> u32;
    fn synthesize(&mut self, sentence: &str) -> Result<Vec<f32>, TtsError>;
}

/// One voice shared by several conversations (`hark serve`): loading the neural voice takes
/// about a second, and espeak-ng keeps global state that two threads must not use at once, so
/// conversations take turns on one engine. A sentence takes a few ms (Piper runs ~30× faster
/// than real time), so the turns are short.
#[derive(Clone)]
pub struct SharedVoice {
    engine: std::sync::Arc<std::sync::Mutex<Box<dyn Synthesizer>>>,
    name: String,
    sample_rate: u32,
}

impl SharedVoice {
    pub fn new(engine: Box<dyn Synthesizer>) -> Self {
        Self {
            name: engine.name().to_string(),
            sample_rate: engine.sample_rate(),
            engine: std::sync::Arc::new(std::sync::Mutex::new(engine)),
        }
    }
}

impl Synthesizer for SharedVoice {
    fn name(&self) -> &str {
        &self.name
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn synthesize(&mut self, sentence: &str) -> Result<Vec<f32>, TtsError> {
        // A poisoned lock means another conversation panicked mid-sentence; the engine
        // itself holds no half-done state between sentences.
        let mut engine = self.engine.lock().unwrap_or_else(|p| p.into_inner());
        engine.synthesize(sentence)
    }
}

/// The built-in voices.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
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
) -> Result<Box<dyn Synthesizer>, TtsError> {
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
    synth: &mut dyn Synthesizer,
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
