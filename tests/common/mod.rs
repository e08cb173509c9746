//! Shared by the integration tests: where the provisioned models are, the test sentences,
//! and the `hark` binary. Tests fail (never skip) when models are missing: run
//! `scripts/setup.sh` first, as `scripts/test.sh` does.
#![allow(dead_code)]

pub mod conversation;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hark::models::ModelDir;
use hark::stt::whisper::WhisperModel;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn models() -> ModelDir {
    let dir = ModelDir::resolve(None);
    let dir = if dir.root.is_absolute() {
        dir
    } else {
        ModelDir::new(root().join(dir.root))
    };
    for path in [
        dir.whisper("tiny.en"),
        dir.sentence_encoder(),
        dir.sentence_encoder_vocab(),
        dir.piper_voice(hark::models::PIPER_VOICE),
        dir.onnxruntime(),
    ] {
        assert!(
            path.exists(),
            "{} is missing: run scripts/setup.sh (scripts/test.sh does) before cargo test",
            path.display()
        );
    }
    dir
}

/// One Whisper model per test process, shared by its tests.
pub fn whisper() -> &'static WhisperModel {
    static MODEL: OnceLock<WhisperModel> = OnceLock::new();
    MODEL.get_or_init(|| WhisperModel::load(&models().whisper("tiny.en"), 2).expect("load tiny.en"))
}

/// The assistant-style requests in assets/sentences/assistant.txt.
pub fn sentences() -> Vec<String> {
    std::fs::read_to_string(root().join("assets/sentences/assistant.txt"))
        .expect("read the sentence list")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

pub fn hark_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hark"))
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hark-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
