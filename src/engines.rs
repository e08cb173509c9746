//! Where engines are chosen: the one place that names a concrete recognizer or synthesizer,
//! from the settings. Everything else meets them through the streaming seams
//! (`stt::recognizer`, `tts::stream`).

use std::sync::Arc;

use crate::config::{Settings, SttEngine, TtsEngine};
use crate::dialogue::DialogueOptions;
use crate::models::ModelDir;
use crate::stt::recognizer::Recognizer;
use crate::stt::whisper::queue::DecodeQueue;
use crate::stt::whisper::streaming::{WhisperRecognizer, WhisperStreamConfig};
use crate::stt::whisper::threads::ThreadBudget;
use crate::stt::whisper::WhisperModel;
use crate::stt::SttError;
use crate::tts::local::LocalSynthesizer;
use crate::tts::stream::Synthesizer;
use crate::tts::{self, TtsError, VoiceKind};

/// Local Whisper (`models/ggml-NAME.bin`) as a streaming recognizer, its decodes on one
/// queue for every conversation, with as many threads as the machine's load leaves room for
/// (at most `threads`).
pub fn whisper_recognizer(
    models: &ModelDir,
    model: &str,
    threads: usize,
    config: WhisperStreamConfig,
) -> Result<Arc<dyn Recognizer>, SttError> {
    let whisper = WhisperModel::load(&models.whisper(model), threads)?;
    let queue = DecodeQueue::start(&whisper, ThreadBudget::adaptive(threads))?;
    Ok(Arc::new(WhisperRecognizer::new(Arc::new(queue), config)))
}

/// A local voice as a streaming synthesizer, warmed up (ONNX Runtime sets up on its first
/// run, so the first reply is not slower than the others).
pub fn local_synthesizer(
    kind: VoiceKind,
    models: &ModelDir,
    threads: usize,
) -> Result<Arc<dyn Synthesizer>, TtsError> {
    let mut voice = tts::open_voice(kind, models, threads)?;
    voice.synthesize("Ready.")?;
    Ok(Arc::new(LocalSynthesizer::new(voice)))
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Stt(#[from] SttError),
    #[error(transparent)]
    Tts(#[from] TtsError),
}

/// The speech engines every conversation of a process shares.
pub struct SharedEngines {
    pub recognizer: Arc<dyn Recognizer>,
    pub synthesizer: Arc<dyn Synthesizer>,
}

/// The engines `settings` choose, loaded and checked.
pub fn build(
    settings: &Settings,
    models: &ModelDir,
    threads: usize,
) -> Result<SharedEngines, EngineError> {
    // The two load side by side: the neural voice takes about a second (ONNX Runtime's
    // set-up), the recognizer much less, and start-up waits for the slower one only.
    let (recognizer, synthesizer) = std::thread::scope(|scope| {
        let synthesizer = scope.spawn(|| match settings.tts.engine {
            TtsEngine::Piper => local_synthesizer(VoiceKind::Piper, models, threads),
            TtsEngine::Espeak => local_synthesizer(VoiceKind::Espeak, models, threads),
        });
        let recognizer = match settings.stt.engine {
            SttEngine::Whisper => {
                whisper_recognizer(models, &settings.stt.model, threads, settings.stt.whisper)
            }
        };
        let synthesizer = synthesizer
            .join()
            .unwrap_or_else(|_| Err(TtsError::Engine("the voice failed to load".into())));
        (recognizer, synthesizer)
    });
    Ok(SharedEngines {
        recognizer: recognizer?,
        synthesizer: synthesizer?,
    })
}

/// What the dialogue manager talks to: the language model and webhooks `settings` give.
pub fn dialogue_options(settings: &Settings) -> DialogueOptions {
    DialogueOptions {
        llm: settings.llm.client(),
        webhook_timeout: std::time::Duration::from_millis(settings.dialogue.webhook_timeout_ms),
    }
}
