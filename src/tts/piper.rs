//! Piper neural voices (VITS exported to ONNX), run with ONNX Runtime through `ort`.
//!
//! Text → espeak-ng IPA phonemes → ids from the voice's `phoneme_id_map` → the model's
//! `input`, `input_lengths`, `scales` → 22.05 kHz float audio.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::Tensor;
use serde::Deserialize;

use super::{espeak, TtsError, Voice};

/// The voice's `.onnx.json` (only the fields used).
#[derive(Debug, Deserialize)]
pub struct PiperConfig {
    pub audio: PiperAudio,
    pub espeak: PiperEspeak,
    #[serde(default)]
    pub inference: PiperInference,
    pub phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    pub num_speakers: u32,
}

#[derive(Debug, Deserialize)]
pub struct PiperAudio {
    pub sample_rate: u32,
}

#[derive(Debug, Deserialize)]
pub struct PiperEspeak {
    pub voice: String,
}

#[derive(Debug, Deserialize)]
pub struct PiperInference {
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
}

impl Default for PiperInference {
    fn default() -> Self {
        Self {
            noise_scale: 0.667,
            length_scale: 1.0,
            noise_w: 0.8,
        }
    }
}

const PAD: &str = "_";
const BOS: &str = "^";
const EOS: &str = "$";

pub struct PiperVoice {
    session: Session,
    config: PiperConfig,
    model_path: PathBuf,
}

impl PiperVoice {
    /// Opens `model` (with `model.json` beside it) using ONNX Runtime from `onnxruntime`.
    pub fn open(model: &Path, onnxruntime: &Path, threads: usize) -> Result<Self, TtsError> {
        let config_path = PathBuf::from(format!("{}.json", model.display()));
        for path in [model, config_path.as_path()] {
            if !path.exists() {
                return Err(TtsError::VoiceMissing {
                    path: path.to_path_buf(),
                    hint: "run scripts/setup.sh (or `hark models` — see models/README.md), or use --voice espeak".into(),
                });
            }
        }
        let config_text =
            std::fs::read_to_string(&config_path).map_err(|e| TtsError::VoiceConfig {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        let config: PiperConfig =
            serde_json::from_str(&config_text).map_err(|e| TtsError::VoiceConfig {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        for required in [PAD, BOS, EOS] {
            if !config.phoneme_id_map.contains_key(required) {
                return Err(TtsError::VoiceConfig {
                    path: config_path.clone(),
                    reason: format!("phoneme_id_map lacks {required:?}"),
                });
            }
        }
        let environment = crate::models::onnx::environment(onnxruntime).map_err(|reason| {
            TtsError::OnnxRuntime {
                path: onnxruntime.to_path_buf(),
                reason,
            }
        })?;
        let session = crate::models::onnx::session(environment, model, threads)
            .map_err(|e| TtsError::Engine(format!("{}: {e}", model.display())))?;
        Ok(Self {
            session,
            config,
            model_path: model.to_path_buf(),
        })
    }

    /// Phonemes → ids: BOS, then each phoneme followed by a pad, then EOS (Piper's layout).
    /// Characters the voice has no id for are skipped.
    pub fn phoneme_ids(&self, phonemes: &str) -> Vec<i64> {
        let map = &self.config.phoneme_id_map;
        let mut ids = Vec::with_capacity(phonemes.len() * 2 + 2);
        ids.extend(&map[BOS]);
        ids.extend(&map[PAD]);
        let mut buf = [0u8; 4];
        for c in phonemes.chars() {
            if let Some(id) = map.get(c.encode_utf8(&mut buf) as &str) {
                ids.extend(id);
                ids.extend(&map[PAD]);
            }
        }
        ids.extend(&map[EOS]);
        ids
    }

    pub fn model_path(&self) -> &Path {
        &self.model_path
    }
}

impl Voice for PiperVoice {
    fn name(&self) -> &str {
        "piper"
    }

    fn sample_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }

    fn synthesize(&mut self, sentence: &str) -> Result<Vec<f32>, TtsError> {
        let phonemes = espeak::phonemize(sentence, &self.config.espeak.voice)?;
        if phonemes.trim().is_empty() {
            return Ok(Vec::new());
        }
        let ids = self.phoneme_ids(&phonemes);
        let n = ids.len();
        let inference = &self.config.inference;
        let engine = |e: ort::Error| TtsError::Engine(e.to_string());
        let input = Tensor::from_array(([1usize, n], ids)).map_err(engine)?;
        let lengths = Tensor::from_array(([1usize], vec![n as i64])).map_err(engine)?;
        let scales = Tensor::from_array((
            [3usize],
            vec![
                inference.noise_scale,
                inference.length_scale,
                inference.noise_w,
            ],
        ))
        .map_err(engine)?;
        let mut inputs = ort::inputs![
            "input" => input,
            "input_lengths" => lengths,
            "scales" => scales,
        ];
        if self.config.num_speakers > 1 {
            // Multi-speaker voices need a speaker id; the first speaker is the default.
            inputs.push((
                "sid".into(),
                Tensor::from_array(([1usize], vec![0i64]))
                    .map_err(engine)?
                    .into(),
            ));
        }
        let outputs = self.session.run(inputs).map_err(engine)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(engine)?;
        Ok(audio.iter().map(|s| s.clamp(-1.0, 1.0)).collect())
    }
}
