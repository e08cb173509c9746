//! Shared by the integration tests: where the provisioned models are, the test sentences,
//! and the `hark` binary. Tests fail (never skip) when models are missing: run
//! `scripts/setup.sh` first, as `scripts/test.sh` does.
#![allow(dead_code)]

pub mod browser;
pub mod cloud;
pub mod conversation;
pub mod redis;
pub mod server;

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
        dir.smart_turn(),
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

/// The streaming recognizer over that model (one decode queue for the process's tests,
/// as `hark serve` has for its conversations).
pub fn recognizer() -> std::sync::Arc<dyn hark::stt::recognizer::Recognizer> {
    use hark::stt::whisper::{
        queue::DecodeQueue, streaming::WhisperRecognizer, threads::ThreadBudget,
    };
    static QUEUE: OnceLock<std::sync::Arc<DecodeQueue>> = OnceLock::new();
    let queue = QUEUE.get_or_init(|| {
        std::sync::Arc::new(
            DecodeQueue::start(whisper(), ThreadBudget::adaptive(2)).expect("a decode queue"),
        )
    });
    std::sync::Arc::new(WhisperRecognizer::new(queue.clone(), Default::default()))
}

/// The Piper voice as a streaming synthesizer, warmed up.
pub fn piper() -> std::sync::Arc<dyn hark::tts::stream::Synthesizer> {
    hark::engines::local_synthesizer(hark::tts::VoiceKind::Piper, &models(), 2)
        .expect("the Piper voice")
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

/// Runs the `hark` binary in the repository root.
/// The machine's cores for one test at a time. whisper.cpp's threads spin while they wait
/// for each other: two decoders at once on 2 cores run many times slower than one after the
/// other (the spoken-command tests took 254 s two at a time, 28 s one at a time), so tests
/// that decode in `hark` processes hold this while they do.
pub fn cores() -> std::sync::MutexGuard<'static, ()> {
    static CORES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    CORES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn hark(args: &[&str]) -> std::process::Output {
    std::process::Command::new(hark_bin())
        .args(args)
        .current_dir(root())
        .output()
        .expect("run hark")
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hark-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// "Today" for scripted conversations: a Wednesday.
pub const TODAY: &str = "2026-11-25";

/// Runs `hark chat` (with the provisioned models and `--today TODAY`) plus `args`, with
/// `env` set, feeding `lines` as the user's turns on stdin.
pub fn run_chat(args: &[&str], env: &[(&str, &str)], lines: &[&str]) -> std::process::Output {
    use std::io::Write;
    let mut child = spawn_chat(args, env);
    {
        let mut stdin = child.stdin.take().unwrap();
        for line in lines {
            writeln!(stdin, "{line}").unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

/// `hark chat` on the test date with `args`, its standard streams piped.
pub fn spawn_chat(args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
    let models = models();
    std::process::Command::new(hark_bin())
        .args([
            "--models",
            models.root.to_str().unwrap(),
            "chat",
            "--today",
            TODAY,
        ])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start hark chat")
}

/// The lines typed into `hark chat --json --store none` with `env` and `args`: the turns it
/// printed and its diagnostics.
pub fn chat_json(
    args: &[&str],
    env: &[(&str, &str)],
    lines: &[&str],
) -> (Vec<serde_json::Value>, String) {
    let args: Vec<&str> = ["--json", "--store", "none"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    let out = run_chat(&args, env, lines);
    (json_turns(&out), stderr(&out))
}

/// The JSON turns `hark chat --json` printed (echoed to the test log).
pub fn json_turns(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "hark chat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let turns: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per turn"))
        .collect();
    for t in &turns {
        eprintln!("{t}");
    }
    turns
}
