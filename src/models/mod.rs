//! Model files: where they live, how they are downloaded (online users) or converted from
//! registry packages (offline machines, CI).

pub mod convert;
pub mod fetch;
pub mod onnx;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    // The OS error is part of the message, not a `source` (printed again by error chains).
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid model file: {0}")]
    Format(String),
    #[error("unknown Whisper model '{name}'; known models: {known}")]
    Unknown { name: String, known: String },
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("checksum mismatch for {url}: expected {expected}, got {actual} (the partial file was removed)")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
}

impl ModelError {
    pub fn io(path: &Path, error: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

/// A ggml Whisper model published by whisper.cpp, with the SHA-1 that project lists for it.
#[derive(Debug, Clone, Copy)]
pub struct WhisperCatalogEntry {
    pub name: &'static str,
    pub sha1: &'static str,
    pub size_mib: u32,
    pub english_only: bool,
}

impl WhisperCatalogEntry {
    pub fn file_name(&self) -> String {
        format!("ggml-{}.bin", self.name)
    }

    pub fn url(&self) -> String {
        format!(
            "https://huggingface.co/ggerganov/whisper.cpp/resolve/main/{}",
            self.file_name()
        )
    }
}

/// The ggml models users can fetch by name (checksums from whisper.cpp's models/README.md).
pub const WHISPER_CATALOG: &[WhisperCatalogEntry] = &[
    WhisperCatalogEntry {
        name: "tiny",
        sha1: "bd577a113a864445d4c299885e0cb97d4ba92b5f",
        size_mib: 75,
        english_only: false,
    },
    WhisperCatalogEntry {
        name: "tiny.en",
        sha1: "c78c86eb1a8faa21b369bcd33207cc90d64ae9df",
        size_mib: 75,
        english_only: true,
    },
    WhisperCatalogEntry {
        name: "base",
        sha1: "465707469ff3a37a2b9b8d8f89f2f99de7299dac",
        size_mib: 142,
        english_only: false,
    },
    WhisperCatalogEntry {
        name: "base.en",
        sha1: "137c40403d78fd54d454da0f9bd998f78703390c",
        size_mib: 142,
        english_only: true,
    },
    WhisperCatalogEntry {
        name: "small",
        sha1: "55356645c2b361a969dfd0ef2c5a50d530afd8d5",
        size_mib: 466,
        english_only: false,
    },
    WhisperCatalogEntry {
        name: "small.en",
        sha1: "db8a495a91d927739e50b3fc1cc4c6b8f6c2d022",
        size_mib: 466,
        english_only: true,
    },
    WhisperCatalogEntry {
        name: "medium.en",
        sha1: "8c30f0e44ce9560643ebd10bbe50cd20eafd3723",
        size_mib: 1536,
        english_only: true,
    },
];

pub fn whisper_catalog_entry(name: &str) -> Result<&'static WhisperCatalogEntry, ModelError> {
    WHISPER_CATALOG
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::Unknown {
            name: name.to_string(),
            known: WHISPER_CATALOG
                .iter()
                .map(|e| e.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Where hark looks for its model files. `models/` under the working directory unless
/// `HARK_MODELS_DIR` or `--models` say otherwise.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub root: PathBuf,
}

pub const PIPER_VOICE: &str = "en_US-joe-medium";
pub const ONNXRUNTIME_LIB: &str = "libonnxruntime.so.1.31.1";

impl ModelDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `explicit` (a `--models` flag) > `HARK_MODELS_DIR` > `./models`.
    /// `--models`, else `$HARK_MODELS_DIR`, else the first of `./models`,
    /// `$XDG_DATA_HOME/hark/models` (`~/.local/share/hark/models`) and the source checkout's
    /// `models/` (where `scripts/setup.sh` put them for this build) that exists; else
    /// `./models`, for the error messages to name.
    pub fn resolve(explicit: Option<&Path>) -> Self {
        if let Some(p) = explicit {
            return Self::new(p);
        }
        if let Some(dir) = std::env::var_os("HARK_MODELS_DIR").filter(|d| !d.is_empty()) {
            return Self::new(PathBuf::from(dir));
        }
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        let candidates = [
            Some(PathBuf::from("models")),
            data_home.map(|d| d.join("hark/models")),
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("models")),
        ];
        candidates
            .into_iter()
            .flatten()
            .find(|d| d.is_dir())
            .map(Self::new)
            .unwrap_or_else(|| Self::new("models"))
    }

    pub fn whisper(&self, name: &str) -> PathBuf {
        self.root.join(format!("ggml-{name}.bin"))
    }

    pub fn piper_voice(&self, voice: &str) -> PathBuf {
        self.root.join("piper").join(format!("{voice}.onnx"))
    }

    /// The sentence encoder (all-MiniLM-L6-v2, int8 ONNX) used for intent recognition.
    pub fn sentence_encoder(&self) -> PathBuf {
        self.root.join("minilm").join("model.onnx")
    }

    /// The WordPiece vocabulary of the sentence encoder.
    pub fn sentence_encoder_vocab(&self) -> PathBuf {
        self.root.join("minilm").join("vocab.txt")
    }

    /// The slot tagger trained on Restaurant8k (`scripts/setup.sh` trains it; `hark nlu slots
    /// train` makes one).
    pub fn slot_tagger(&self) -> PathBuf {
        self.root.join("slots").join("restaurant8k.crfsuite")
    }

    /// The end-of-turn model, Smart Turn v3.2 (from Pipecat's wheel; `scripts/setup.sh`
    /// installs it).
    pub fn smart_turn(&self) -> PathBuf {
        self.root
            .join("smart-turn")
            .join("smart-turn-v3.2-cpu.onnx")
    }

    /// The ONNX Runtime shared library; `ORT_DYLIB_PATH` (ort's own variable) wins.
    pub fn onnxruntime(&self) -> PathBuf {
        match std::env::var_os("ORT_DYLIB_PATH") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => self.root.join("onnxruntime").join(ONNXRUNTIME_LIB),
        }
    }
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cores, for one inference at a time. whisper.cpp's threads spin while they wait for
/// each other at every step, so a Whisper decode sharing the cores with another model's
/// inference (the end-of-turn model's, at the same pause) runs many times slower than the two
/// one after the other. Both hold this while they compute.
pub fn inference_turn() -> std::sync::MutexGuard<'static, ()> {
    static CORES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A poisoned lock only means an inference panicked; there is no state behind it.
    CORES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
