//! hark's settings in one typed place: which engines to run, the dialogue's domain and store,
//! the language model, turn-taking and endpointing. Read from a TOML file (`--config FILE`,
//! else `$HARK_CONFIG`, else `hark.toml` in the user's config folder when it exists), then
//! the environment (`HARK_LLM_*`, `OPENAI_API_KEY`, `HARK_AEC_DELAY_MS`), then the command
//! line; each layer overrides the one before. Nothing else in hark reads the environment
//! for these. `config/hark.toml` in the repository lists every setting with its default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::dialogue::llm::LlmConfig;
use crate::pipeline::turn::TurnConfig;
use crate::stt::whisper::streaming::WhisperStreamConfig;
use crate::vad::endpointer::EndpointerConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("{name}={value:?} is not {expected}")]
    Env {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("unknown speech-to-text engine '{0}'; the engines are: whisper")]
    UnknownStt(String),
    #[error("unknown text-to-speech engine '{0}'; the engines are: piper, espeak")]
    UnknownTts(String),
}

/// Speech-to-text engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SttEngine {
    /// Local Whisper (whisper.cpp).
    Whisper,
}

impl std::str::FromStr for SttEngine {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "whisper" => Ok(Self::Whisper),
            other => Err(ConfigError::UnknownStt(other.into())),
        }
    }
}

/// Text-to-speech engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TtsEngine {
    /// Local neural voice (Piper, en_US-joe-medium).
    Piper,
    /// Local formant synthesis (espeak-ng): no model file.
    Espeak,
}

impl std::str::FromStr for TtsEngine {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "piper" => Ok(Self::Piper),
            "espeak" | "espeak-ng" => Ok(Self::Espeak),
            other => Err(ConfigError::UnknownTts(other.into())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SttSettings {
    pub engine: SttEngine,
    /// Whisper model name: the file models/ggml-NAME.bin.
    pub model: String,
    /// How the streaming Whisper session schedules its decodes.
    pub whisper: WhisperStreamConfig,
}

impl Default for SttSettings {
    fn default() -> Self {
        Self {
            engine: SttEngine::Whisper,
            // The 8-bit copy scripts/setup.sh makes: as accurate here, and faster.
            model: "tiny.en-q8_0".into(),
            whisper: WhisperStreamConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtsSettings {
    pub engine: TtsEngine,
}

impl Default for TtsSettings {
    fn default() -> Self {
        Self {
            engine: TtsEngine::Piper,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialogueSettings {
    /// A domain name (built in, or under config/domains) or a domain folder.
    pub domain: String,
    /// Where sessions and user memory are kept: sqlite:PATH, redis://HOST:PORT, or none.
    pub store: String,
    /// Folder for privacy-safe conversation logs (`none` to keep none).
    pub log: String,
    /// How long a webhook (a flow's action, a handoff) may take.
    pub webhook_timeout_ms: u64,
    /// Forget each conversation once it is over (a microphone many people use).
    pub kiosk: bool,
}

impl Default for DialogueSettings {
    fn default() -> Self {
        Self {
            domain: "customer-service".into(),
            store: "sqlite:data/sessions.sqlite".into(),
            log: "data/conversations".into(),
            webhook_timeout_ms: 5000,
            kiosk: false,
        }
    }
}

/// An OpenAI-compatible chat model for what the flows do not cover.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// Base URL up to and including `/v1`; empty: no language model.
    pub url: String,
    pub model: String,
    /// The API key (better given as `HARK_LLM_KEY` or `OPENAI_API_KEY`).
    pub key: String,
    pub connect_timeout_ms: u64,
    /// A model that sends nothing for this long gets the persona's fallback.
    pub stall_ms: u64,
    pub max_tokens: u32,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            model: "gpt-4o-mini".into(),
            key: String::new(),
            connect_timeout_ms: 3000,
            stall_ms: 5000,
            max_tokens: 200,
        }
    }
}

impl LlmSettings {
    /// The client's configuration; None when no URL is set.
    pub fn client(&self) -> Option<LlmConfig> {
        (!self.url.is_empty()).then(|| LlmConfig {
            base_url: self.url.clone(),
            model: self.model.clone(),
            api_key: (!self.key.is_empty()).then(|| self.key.clone()),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            stall_timeout: Duration::from_millis(self.stall_ms),
            max_tokens: self.max_tokens,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioSettings {
    /// Speaker-to-microphone delay the echo canceller assumes with live devices.
    pub aec_delay_ms: i32,
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self {
            aec_delay_ms: crate::audio::aec::DEFAULT_DELAY_MS,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub stt: SttSettings,
    pub tts: TtsSettings,
    pub dialogue: DialogueSettings,
    pub llm: LlmSettings,
    pub turns: TurnConfig,
    pub endpointer: EndpointerConfig,
    pub audio: AudioSettings,
}

impl Settings {
    /// The settings file's, or the defaults when there is none.
    pub fn from_file(path: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match path {
            Some(p) => Some(p.to_path_buf()),
            None => default_file(),
        };
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
            path: path.clone(),
            error,
        })?;
        Self::parse(&text).map_err(|reason| ConfigError::Parse { path, reason })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies the environment's overrides (`lookup` is `std::env::var` outside tests).
    pub fn with_env(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        if let Some(url) = get("HARK_LLM_URL") {
            self.llm.url = url;
        }
        if let Some(model) = get("HARK_LLM_MODEL") {
            self.llm.model = model;
        }
        if let Some(key) = get("HARK_LLM_KEY").or_else(|| get("OPENAI_API_KEY")) {
            self.llm.key = key;
        }
        let number = |name: &'static str| -> Result<Option<u64>, ConfigError> {
            get(name)
                .map(|v| {
                    v.parse().map_err(|_| ConfigError::Env {
                        name,
                        value: v,
                        expected: "a number of milliseconds",
                    })
                })
                .transpose()
        };
        if let Some(ms) = number("HARK_LLM_CONNECT_MS")? {
            self.llm.connect_timeout_ms = ms;
        }
        if let Some(ms) = number("HARK_LLM_STALL_MS")? {
            self.llm.stall_ms = ms;
        }
        if let Some(ms) = number("HARK_AEC_DELAY_MS")? {
            self.audio.aec_delay_ms = ms.min(i32::MAX as u64) as i32;
        }
        Ok(self)
    }
}

/// `$HARK_CONFIG`, else `hark.toml` in the user's config folder, where it exists.
fn default_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HARK_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let dir = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(dir.join("hark/hark.toml")).filter(|p| p.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_the_defaults() {
        let text = include_str!("../config/hark.toml");
        assert_eq!(Settings::parse(text).unwrap(), Settings::default());
    }

    #[test]
    fn a_file_overrides_some_settings_and_rejects_unknown_ones() {
        let s = Settings::parse(
            "[stt]\nmodel = \"base.en\"\n[tts]\nengine = \"espeak\"\n[turns]\nquick_hangover_ms = 300\n",
        )
        .unwrap();
        assert_eq!(s.stt.model, "base.en");
        assert_eq!(s.tts.engine, TtsEngine::Espeak);
        assert_eq!(s.turns.quick_hangover_ms, 300);
        assert_eq!(
            s.turns.barge_in_confirm_ms, 700,
            "the rest keep their defaults"
        );
        let err = Settings::parse("[stt]\nmodle = \"x\"\n").unwrap_err();
        assert!(err.contains("modle"), "{err}");
        assert!(Settings::parse("[tts]\nengine = \"cartesian\"\n").is_err());
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let env = |name: &str| match name {
            "HARK_LLM_URL" => Some("http://127.0.0.1:9/v1".to_string()),
            "OPENAI_API_KEY" => Some("sk-test".into()),
            "HARK_LLM_STALL_MS" => Some("1200".into()),
            _ => None,
        };
        let s = Settings::default().with_env(env).unwrap();
        let client = s.llm.client().expect("a language model");
        assert_eq!(client.base_url, "http://127.0.0.1:9/v1");
        assert_eq!(client.api_key.as_deref(), Some("sk-test"));
        assert_eq!(client.stall_timeout, Duration::from_millis(1200));
        assert!(Settings::default().llm.client().is_none());
        let bad =
            Settings::default().with_env(|n| (n == "HARK_LLM_STALL_MS").then(|| "soon".into()));
        assert!(matches!(bad, Err(ConfigError::Env { .. })));
    }

    #[test]
    fn engine_names_are_checked() {
        assert_eq!("Whisper".parse::<SttEngine>().unwrap(), SttEngine::Whisper);
        assert_eq!("espeak-ng".parse::<TtsEngine>().unwrap(), TtsEngine::Espeak);
        let err = "deepgrm".parse::<SttEngine>().unwrap_err().to_string();
        assert!(err.contains("whisper"), "{err}");
    }
}
