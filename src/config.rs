//! hark's settings in one typed place: which engines to run, the dialogue's domain and store,
//! the language model, turn-taking and endpointing. Read from a TOML file (`--config FILE`,
//! else `$HARK_CONFIG`, else `hark.toml` in the user's config folder when it exists), then
//! the environment (`HARK_LLM_*`, `OPENAI_API_KEY`, `HARK_AEC_DELAY_MS`, the cloud providers'
//! keys, voices and `HARK_*_URL` addresses), then the command
//! line; each layer overrides the one before. Nothing else in hark reads the environment
//! for these. `config/hark.toml` in the repository lists every setting with its default.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::dialogue::llm::{LlmConfig, Provider};
use crate::pipeline::turn::TurnConfig;
use crate::stt::cloud::assemblyai::AssemblyAiSettings;
use crate::stt::cloud::deepgram::DeepgramSettings;
use crate::stt::cloud::CloudSttConfig;
use crate::stt::whisper::streaming::WhisperStreamConfig;
use crate::tts::cloud::aura::AuraSettings;
use crate::tts::cloud::cartesia::CartesiaSettings;
use crate::tts::cloud::elevenlabs::ElevenLabsSettings;
use crate::tts::cloud::CloudTtsConfig;
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
    #[error("unknown speech-to-text engine '{0}'; the engines are: whisper, deepgram, assemblyai")]
    UnknownStt(String),
    #[error("unknown text-to-speech engine '{0}'; the engines are: piper, espeak, elevenlabs, cartesia, aura")]
    UnknownTts(String),
}

/// Speech-to-text engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SttEngine {
    /// Local Whisper (whisper.cpp).
    Whisper,
    /// Deepgram live transcription over WebSocket.
    Deepgram,
    /// AssemblyAI Universal-Streaming over WebSocket.
    #[serde(rename = "assemblyai")]
    AssemblyAi,
}

impl SttEngine {
    pub fn is_cloud(self) -> bool {
        self != Self::Whisper
    }
}

impl std::str::FromStr for SttEngine {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "whisper" => Ok(Self::Whisper),
            "deepgram" => Ok(Self::Deepgram),
            "assemblyai" => Ok(Self::AssemblyAi),
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
    /// ElevenLabs multi-context streaming over WebSocket.
    #[serde(rename = "elevenlabs")]
    ElevenLabs,
    /// Cartesia Sonic over WebSocket.
    Cartesia,
    /// Deepgram Aura over WebSocket.
    Aura,
}

impl TtsEngine {
    pub fn is_cloud(self) -> bool {
        !matches!(self, Self::Piper | Self::Espeak)
    }
}

impl std::str::FromStr for TtsEngine {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "piper" => Ok(Self::Piper),
            "espeak" | "espeak-ng" => Ok(Self::Espeak),
            "elevenlabs" => Ok(Self::ElevenLabs),
            "cartesia" => Ok(Self::Cartesia),
            "aura" => Ok(Self::Aura),
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
    /// With a cloud engine: go on with local Whisper (`model`) when the cloud fails, if
    /// the model is installed.
    pub fallback: bool,
    /// How the streaming Whisper session schedules its decodes.
    pub whisper: WhisperStreamConfig,
    /// Timing shared by the cloud engines.
    pub cloud: CloudSttConfig,
    pub deepgram: DeepgramSettings,
    pub assemblyai: AssemblyAiSettings,
}

impl Default for SttSettings {
    fn default() -> Self {
        Self {
            engine: SttEngine::Whisper,
            // The 8-bit copy scripts/setup.sh makes: as accurate here, and faster.
            model: "tiny.en-q8_0".into(),
            fallback: true,
            whisper: WhisperStreamConfig::default(),
            cloud: CloudSttConfig::default(),
            deepgram: DeepgramSettings::default(),
            assemblyai: AssemblyAiSettings::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtsSettings {
    pub engine: TtsEngine,
    /// A cloud engine's voice id (ElevenLabs, Cartesia) or model (Aura); empty: the
    /// environment's ELEVENLABS_VOICE_ID / CARTESIA_VOICE_ID, or Aura's default model.
    pub voice: String,
    /// With a cloud engine: the local voice a failed reply goes on in (piper, espeak or
    /// none).
    pub fallback: String,
    /// Timing shared by the cloud engines.
    pub cloud: CloudTtsConfig,
    pub elevenlabs: ElevenLabsSettings,
    pub cartesia: CartesiaSettings,
    pub aura: AuraSettings,
    /// Audio of the domain's fixed wording kept once spoken (local voices).
    pub cache: TtsCacheSettings,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TtsCacheSettings {
    /// Audio kept in memory, MiB (0: no cache).
    pub memory_mb: usize,
    /// Where pieces are kept between runs: a folder, "none" (memory only), or empty for
    /// the data folder's `tts-cache/`.
    pub dir: String,
}

impl Default for TtsCacheSettings {
    fn default() -> Self {
        Self {
            memory_mb: 32,
            dir: String::new(),
        }
    }
}

impl TtsCacheSettings {
    pub fn dir(&self) -> Option<PathBuf> {
        match self.dir.trim() {
            "none" => None,
            "" => Some(data_dir().join("tts-cache")),
            dir => Some(PathBuf::from(dir)),
        }
    }
}

impl Default for TtsSettings {
    fn default() -> Self {
        Self {
            engine: TtsEngine::Piper,
            voice: String::new(),
            fallback: "piper".into(),
            cloud: CloudTtsConfig::default(),
            elevenlabs: ElevenLabsSettings::default(),
            cartesia: CartesiaSettings::default(),
            aura: AuraSettings::default(),
            cache: TtsCacheSettings::default(),
        }
    }
}

/// The cloud providers' keys and addresses: from the environment only, never from a
/// settings file, and never shown (`Debug` hides the keys).
#[derive(Clone, Default, PartialEq)]
pub struct CloudAccounts {
    pub deepgram_key: String,
    pub assemblyai_key: String,
    pub elevenlabs_key: String,
    pub cartesia_key: String,
    pub elevenlabs_voice: String,
    pub cartesia_voice: String,
    /// Base URLs replacing the providers' (proxies, regions, local test servers).
    pub deepgram_url: String,
    pub assemblyai_url: String,
    pub elevenlabs_url: String,
    pub cartesia_url: String,
}

impl std::fmt::Debug for CloudAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |k: &str| if k.is_empty() { "unset" } else { "set" };
        f.debug_struct("CloudAccounts")
            .field("deepgram_key", &set(&self.deepgram_key))
            .field("assemblyai_key", &set(&self.assemblyai_key))
            .field("elevenlabs_key", &set(&self.elevenlabs_key))
            .field("cartesia_key", &set(&self.cartesia_key))
            .field("deepgram_url", &self.deepgram_url)
            .field("assemblyai_url", &self.assemblyai_url)
            .field("elevenlabs_url", &self.elevenlabs_url)
            .field("cartesia_url", &self.cartesia_url)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialogueSettings {
    /// A domain name (built in, or under config/domains) or a domain folder.
    pub domain: String,
    /// Where sessions and user memory are kept: sqlite:PATH, redis://HOST:PORT, memory (this
    /// process only) or none
    /// (empty: `sessions.sqlite` in the [`data_dir`]).
    pub store: String,
    /// Folder for privacy-safe conversation logs, `none` to keep none (empty:
    /// `conversations` in the [`data_dir`]).
    pub log: String,
    /// How long a webhook (a flow's action, a handoff) may take.
    pub webhook_timeout_ms: u64,
    /// Forget each conversation once it is over (a microphone many people use).
    pub kiosk: bool,
    /// Markdown or text documents, or folders of them, to answer questions from (besides
    /// the domain's own `knowledge/` folder).
    pub knowledge: Vec<String>,
}

impl Default for DialogueSettings {
    fn default() -> Self {
        Self {
            domain: "customer-service".into(),
            store: String::new(),
            log: String::new(),
            webhook_timeout_ms: 5000,
            kiosk: false,
            knowledge: Vec::new(),
        }
    }
}

/// The chat model for what the flows do not cover.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// The protocol: OpenAI's chat completions or Anthropic's Messages API.
    pub provider: Provider,
    /// Base URL up to and including `/v1`; empty: no language model (Anthropic's own with
    /// the anthropic provider and a key).
    pub url: String,
    /// Empty: the provider's small default model.
    pub model: String,
    /// The API key (better given as `HARK_LLM_KEY`, `OPENAI_API_KEY` or `ANTHROPIC_API_KEY`).
    pub key: String,
    pub connect_timeout_ms: u64,
    /// A model that sends nothing for this long gets the persona's fallback.
    pub stall_ms: u64,
    pub max_tokens: u32,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            provider: Provider::OpenAi,
            url: String::new(),
            model: String::new(),
            key: String::new(),
            connect_timeout_ms: 3000,
            stall_ms: 5000,
            max_tokens: 200,
        }
    }
}

impl LlmSettings {
    /// The client's configuration; None when no model is configured.
    pub fn client(&self) -> Option<LlmConfig> {
        let base_url = match (self.url.is_empty(), self.provider) {
            (false, _) => self.url.clone(),
            (true, Provider::Anthropic) if !self.key.is_empty() => {
                "https://api.anthropic.com/v1".to_string()
            }
            (true, _) => return None,
        };
        let model = match (self.model.is_empty(), self.provider) {
            (false, _) => self.model.clone(),
            (true, Provider::OpenAi) => "gpt-4o-mini".to_string(),
            (true, Provider::Anthropic) => "claude-haiku-4-5".to_string(),
        };
        Some(LlmConfig {
            provider: self.provider,
            base_url,
            model,
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
    pub server: ServerSettings,
    #[serde(skip)]
    pub accounts: CloudAccounts,
}

/// `hark serve`: who may connect and what one client may cost.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// A tokens file (`TOKEN USER_ID [DOMAIN…]` per line); empty: no tokens.
    pub tokens: String,
    /// Serve without tokens on an address other than loopback (conversations are then
    /// anonymous).
    pub allow_anonymous: bool,
    /// Browser origins allowed besides the page's own (`*`: any).
    pub allowed_origins: Vec<String>,
    /// A PEM certificate chain and its private key: serve https:// and wss:// (empty: plain).
    pub tls_cert: String,
    pub tls_key: String,
    /// Also serve the Wyoming protocol at `tcp://HOST:PORT` (empty: no).
    pub wyoming: String,
    pub limits: crate::server::Limits,
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
        if let Some(provider) = get("HARK_LLM_PROVIDER") {
            self.llm.provider = match provider.to_ascii_lowercase().as_str() {
                "openai" => Provider::OpenAi,
                "anthropic" => Provider::Anthropic,
                _ => {
                    return Err(ConfigError::Env {
                        name: "HARK_LLM_PROVIDER",
                        value: provider,
                        expected: "openai or anthropic",
                    })
                }
            };
        }
        if let Some(url) = get("HARK_LLM_URL") {
            self.llm.url = url;
        }
        if let Some(model) = get("HARK_LLM_MODEL") {
            self.llm.model = model;
        }
        let provider_key = match self.llm.provider {
            Provider::OpenAi => "OPENAI_API_KEY",
            Provider::Anthropic => "ANTHROPIC_API_KEY",
        };
        if let Some(key) = get("HARK_LLM_KEY").or_else(|| get(provider_key)) {
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
        let accounts = &mut self.accounts;
        for (name, field) in [
            ("DEEPGRAM_API_KEY", &mut accounts.deepgram_key),
            ("ASSEMBLYAI_API_KEY", &mut accounts.assemblyai_key),
            ("ELEVENLABS_API_KEY", &mut accounts.elevenlabs_key),
            ("CARTESIA_API_KEY", &mut accounts.cartesia_key),
            ("ELEVENLABS_VOICE_ID", &mut accounts.elevenlabs_voice),
            ("CARTESIA_VOICE_ID", &mut accounts.cartesia_voice),
            ("HARK_DEEPGRAM_URL", &mut accounts.deepgram_url),
            ("HARK_ASSEMBLYAI_URL", &mut accounts.assemblyai_url),
            ("HARK_ELEVENLABS_URL", &mut accounts.elevenlabs_url),
            ("HARK_CARTESIA_URL", &mut accounts.cartesia_url),
            ("HARK_TOKENS_FILE", &mut self.server.tokens),
        ] {
            if let Some(value) = get(name) {
                *field = value.trim().to_string();
            }
        }
        if let Some(ms) = number("HARK_AEC_DELAY_MS")? {
            self.audio.aec_delay_ms = ms.min(i32::MAX as u64) as i32;
        }
        Ok(self)
    }
}

impl DialogueSettings {
    /// The store to open: the setting, else SQLite in the data folder.
    pub fn store_spec(&self) -> String {
        if self.store.is_empty() {
            format!("sqlite:{}", data_dir().join("sessions.sqlite").display())
        } else {
            self.store.clone()
        }
    }

    /// The conversation log folder (or `none`): the setting, else the data folder's.
    pub fn log_dir(&self) -> String {
        if self.log.is_empty() {
            default_log_dir().display().to_string()
        } else {
            self.log.clone()
        }
    }
}

/// Where hark keeps what it saves (sessions, conversation logs) unless told otherwise:
/// `$HARK_DATA_DIR`, else `$XDG_DATA_HOME/hark` (`~/.local/share/hark`), else `./data`.
pub fn data_dir() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|d| !d.is_empty());
    if let Some(dir) = set("HARK_DATA_DIR") {
        return PathBuf::from(dir);
    }
    set("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("hark"))
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// The conversation logs `hark report` reads unless given a folder.
pub fn default_log_dir() -> PathBuf {
    data_dir().join("conversations")
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
    fn anthropic_needs_only_its_key() {
        let env = |name: &str| match name {
            "HARK_LLM_PROVIDER" => Some("anthropic".to_string()),
            "ANTHROPIC_API_KEY" => Some("sk-ant-test".into()),
            "OPENAI_API_KEY" => Some("sk-openai".into()),
            _ => None,
        };
        let client = Settings::default()
            .with_env(env)
            .unwrap()
            .llm
            .client()
            .expect("a language model");
        assert_eq!(client.provider, Provider::Anthropic);
        assert_eq!(client.base_url, "https://api.anthropic.com/v1");
        assert_eq!(client.api_key.as_deref(), Some("sk-ant-test"));
        assert_eq!(client.model, "claude-haiku-4-5");
        let bad =
            Settings::default().with_env(|n| (n == "HARK_LLM_PROVIDER").then(|| "gpt".into()));
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
