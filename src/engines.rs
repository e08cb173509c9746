//! Where engines are chosen: the one place that names a concrete recognizer or synthesizer,
//! from the settings. Everything else meets them through the streaming seams
//! (`stt::recognizer`, `tts::stream`).

use std::sync::Arc;

use crate::cloud::{CloudError, Endpoint};
use crate::config::{Settings, SttEngine, TtsEngine};
use crate::dialogue::DialogueOptions;
use crate::models::ModelDir;
use crate::stt::cloud::assemblyai::{self, AssemblyAi};
use crate::stt::cloud::deepgram::{self, Deepgram};
use crate::stt::cloud::{CloudRecognizer, SttProtocol};
use crate::stt::failover::FailoverRecognizer;
use crate::stt::recognizer::Recognizer;
use crate::stt::whisper::queue::DecodeQueue;
use crate::stt::whisper::streaming::{WhisperRecognizer, WhisperStreamConfig};
use crate::stt::whisper::threads::ThreadBudget;
use crate::stt::whisper::WhisperModel;
use crate::stt::SttError;
use crate::tts::cache::AudioCache;
use crate::tts::cloud::aura::{self, Aura};
use crate::tts::cloud::cartesia::{self, Cartesia};
use crate::tts::cloud::elevenlabs::{self, ElevenLabs};
use crate::tts::cloud::{CloudSynthesizer, TtsProtocol};
use crate::tts::failover::FailoverSynthesizer;
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
    Ok(Arc::new(local_voice(kind, models, threads)?))
}

/// A local voice, loaded and tried once.
pub fn local_voice(
    kind: VoiceKind,
    models: &ModelDir,
    threads: usize,
) -> Result<LocalSynthesizer, TtsError> {
    let mut voice = tts::open_voice(kind, models, threads)?;
    voice.synthesize("Ready.")?;
    Ok(LocalSynthesizer::new(voice))
}

/// The cache of fixed wording `settings` ask for, for the local voice `voice` (None: off).
pub fn tts_cache(settings: &Settings, voice: &LocalSynthesizer) -> Option<Arc<AudioCache>> {
    let cache = &settings.tts.cache;
    (cache.memory_mb > 0).then(|| {
        let key = format!("{}@{}", voice.name(), voice.sample_rate());
        Arc::new(AudioCache::new(&key, cache.dir(), cache.memory_mb << 20))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Stt(#[from] SttError),
    #[error(transparent)]
    Tts(#[from] TtsError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("unknown fallback voice '{0}'; choose piper, espeak or none")]
    UnknownFallback(String),
}

/// The cloud recognizer `settings` choose, with local Whisper behind it when it is
/// installed (and `stt.fallback` is on).
pub fn cloud_recognizer(
    settings: &Settings,
    models: &ModelDir,
    threads: usize,
) -> Result<Arc<dyn Recognizer>, EngineError> {
    let (stt, accounts) = (&settings.stt, &settings.accounts);
    let protocol: Arc<dyn SttProtocol> = match stt.engine {
        SttEngine::Deepgram => Arc::new(Deepgram::new(
            Endpoint::new(
                "Deepgram",
                "DEEPGRAM_API_KEY",
                &accounts.deepgram_key,
                &accounts.deepgram_url,
                deepgram::DEFAULT_URL,
            )?,
            stt.deepgram.clone(),
        )),
        SttEngine::AssemblyAi => Arc::new(AssemblyAi::new(
            Endpoint::new(
                "AssemblyAI",
                "ASSEMBLYAI_API_KEY",
                &accounts.assemblyai_key,
                &accounts.assemblyai_url,
                assemblyai::DEFAULT_URL,
            )?,
            stt.assemblyai.clone(),
        )),
        SttEngine::Whisper => {
            return Ok(whisper_recognizer(
                models,
                &stt.model,
                threads,
                stt.whisper,
            )?)
        }
    };
    let cloud: Arc<dyn Recognizer> = Arc::new(CloudRecognizer::new(protocol, stt.cloud));
    let installed = models.whisper(&stt.model).exists();
    let fallback = if stt.fallback && installed {
        Some(whisper_recognizer(
            models,
            &stt.model,
            threads,
            stt.whisper,
        )?)
    } else {
        None
    };
    Ok(Arc::new(FailoverRecognizer::new(cloud, fallback)))
}

/// The cloud voice `settings` choose (its first socket opening now), with the local voice
/// of `tts.fallback` behind it.
pub fn cloud_synthesizer(
    settings: &Settings,
    models: &ModelDir,
    threads: usize,
    cache_out: &mut Option<Arc<AudioCache>>,
) -> Result<Arc<dyn Synthesizer>, EngineError> {
    let (tts, accounts) = (&settings.tts, &settings.accounts);
    let voice = |from_env: &str| {
        if tts.voice.trim().is_empty() {
            from_env.to_string()
        } else {
            tts.voice.clone()
        }
    };
    let elevenlabs = || {
        Endpoint::new(
            "ElevenLabs",
            "ELEVENLABS_API_KEY",
            &accounts.elevenlabs_key,
            &accounts.elevenlabs_url,
            elevenlabs::DEFAULT_URL,
        )
    };
    let protocol: Arc<dyn TtsProtocol> = match tts.engine {
        TtsEngine::ElevenLabs => Arc::new(ElevenLabs::new(
            elevenlabs()?,
            voice(&accounts.elevenlabs_voice),
            tts.elevenlabs.clone(),
        )?),
        TtsEngine::Cartesia => Arc::new(Cartesia::new(
            Endpoint::new(
                "Cartesia",
                "CARTESIA_API_KEY",
                &accounts.cartesia_key,
                &accounts.cartesia_url,
                cartesia::DEFAULT_URL,
            )?,
            voice(&accounts.cartesia_voice),
            tts.cartesia.clone(),
        )?),
        TtsEngine::Aura => {
            let mut aura_settings = tts.aura.clone();
            if !tts.voice.trim().is_empty() {
                aura_settings.model = tts.voice.trim().to_string();
            }
            Arc::new(Aura::new(
                Endpoint::new(
                    "Deepgram Aura",
                    "DEEPGRAM_API_KEY",
                    &accounts.deepgram_key,
                    &accounts.deepgram_url,
                    aura::DEFAULT_URL,
                )?,
                aura_settings,
            )?)
        }
        TtsEngine::Piper | TtsEngine::Espeak => {
            let kind = if tts.engine == TtsEngine::Piper {
                VoiceKind::Piper
            } else {
                VoiceKind::Espeak
            };
            let voice = local_voice(kind, models, threads)?;
            let cache = tts_cache(settings, &voice);
            *cache_out = cache.clone();
            return Ok(Arc::new(match cache {
                Some(cache) => voice.with_cache(cache),
                None => voice,
            }));
        }
    };
    let cloud: Arc<dyn Synthesizer> = Arc::new(CloudSynthesizer::new(protocol, tts.cloud));
    let fallback = match tts.fallback.to_ascii_lowercase().as_str() {
        "none" | "" => None,
        // A fallback voice that is not installed leaves the cloud voice on its own.
        "piper" => local_synthesizer(VoiceKind::Piper, models, threads).ok(),
        "espeak" | "espeak-ng" => local_synthesizer(VoiceKind::Espeak, models, threads).ok(),
        other => return Err(EngineError::UnknownFallback(other.to_string())),
    };
    Ok(Arc::new(FailoverSynthesizer::new(cloud, fallback)))
}

/// The speech engines every conversation of a process shares.
pub struct SharedEngines {
    pub recognizer: Arc<dyn Recognizer>,
    pub synthesizer: Arc<dyn Synthesizer>,
    /// The local voice's cache of fixed wording, for the domain to say what it may keep.
    pub tts_cache: Option<Arc<AudioCache>>,
    /// The end-of-turn model, when it is installed and the settings use it.
    pub turn_model: Option<Arc<crate::vad::turn_model::TurnModel>>,
}

/// The engines `settings` choose, loaded and checked.
pub fn build(
    settings: &Settings,
    models: &ModelDir,
    threads: usize,
) -> Result<SharedEngines, EngineError> {
    // The two load side by side: the neural voice takes about a second (ONNX Runtime's
    // set-up), the recognizer much less, and start-up waits for the slower one only.
    let mut tts_cache = None;
    let (recognizer, synthesizer) = std::thread::scope(|scope| {
        let synthesizer =
            scope.spawn(|| cloud_synthesizer(settings, models, threads, &mut tts_cache));
        let recognizer = cloud_recognizer(settings, models, threads);
        let synthesizer = synthesizer.join().unwrap_or_else(|_| {
            Err(EngineError::Tts(TtsError::Engine(
                "the voice failed to load".into(),
            )))
        });
        (recognizer, synthesizer)
    });
    Ok(SharedEngines {
        recognizer: recognizer?,
        synthesizer: synthesizer?,
        tts_cache,
        turn_model: turn_model(settings, models),
    })
}

/// The end-of-turn model in `models`, on its own thread, when the settings use it. Without
/// it (not installed, or it will not load) turns end on the transcript, as before it.
pub fn turn_model(
    settings: &Settings,
    models: &ModelDir,
) -> Option<Arc<crate::vad::turn_model::TurnModel>> {
    if !settings.turns.end_of_turn.model {
        return None;
    }
    let path = models.smart_turn();
    if !path.exists() {
        tracing::info!(path = %path.display(), "no end-of-turn model (scripts/setup.sh installs it); turns end on the transcript alone");
        return None;
    }
    let threads = crate::default_threads();
    match crate::vad::smart_turn::SmartTurn::open(&path, &models.onnxruntime(), threads) {
        Ok(model) => Some(crate::vad::turn_model::TurnModel::start(model)),
        Err(e) => {
            tracing::warn!(error = %e, "the end-of-turn model did not load; turns end on the transcript alone");
            None
        }
    }
}

/// What the dialogue manager talks to: the language model and webhooks `settings` give,
/// and the slot tagger in `models` when one has been trained there.
pub fn dialogue_options(
    settings: &Settings,
    models: &ModelDir,
) -> Result<DialogueOptions, crate::nlu::NluError> {
    let path = models.slot_tagger();
    let slot_tagger = if path.exists() {
        Some(std::sync::Arc::new(crate::nlu::slots::SlotTagger::load(
            &path,
        )?))
    } else {
        tracing::info!(
            path = %path.display(),
            "no slot tagger (scripts/setup.sh trains one); names are read from phrasing only"
        );
        None
    };
    Ok(DialogueOptions {
        llm: settings.llm.client(),
        webhook_timeout: std::time::Duration::from_millis(settings.dialogue.webhook_timeout_ms),
        slot_tagger,
        knowledge_paths: settings
            .dialogue
            .knowledge
            .iter()
            .map(std::path::PathBuf::from)
            .collect(),
        knowledge: None,
        knowledge_cache: crate::knowledge::cache::path_for(models),
    })
}
