//! The `hark` binary as a user runs it: say → transcribe, and the errors people hit first
//! (no model, no ONNX Runtime, a broken WAV), each naming the fix.

mod common;

use std::process::Command;

use common::{hark, stderr};

#[test]
fn say_then_transcribe_with_both_voices() {
    let models = common::models();
    let models = models.root.to_str().unwrap();
    let dir = common::temp_dir("cli-say");
    for voice in ["piper", "espeak"] {
        let wav = dir.join(format!("{voice}.wav"));
        let said = hark(&[
            "--models",
            models,
            "say",
            "Please cancel my order.",
            "-o",
            wav.to_str().unwrap(),
            "--voice",
            voice,
            "--json",
        ]);
        assert!(said.status.success(), "{}", stderr(&said));
        let report: serde_json::Value = serde_json::from_slice(&said.stdout).unwrap();
        assert_eq!(report["voice"], voice);
        assert!(report["audio_ms"].as_f64().unwrap() > 500.0);
        assert!(report["first_chunk_ms"].as_f64().is_some());

        let heard = hark(&[
            "--models",
            models,
            "transcribe",
            wav.to_str().unwrap(),
            "--json",
        ]);
        assert!(heard.status.success(), "{}", stderr(&heard));
        let result: serde_json::Value = serde_json::from_slice(&heard.stdout).unwrap();
        let text = result["text"].as_str().unwrap();
        assert!(
            hark::stt::wer::wer("please cancel my order", text) <= 0.25,
            "{voice}: {text:?}"
        );
        for key in ["audio_ms", "decode_ms", "load_ms", "segments"] {
            assert!(!result[key].is_null(), "{key} missing from {result}");
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn missing_whisper_model_says_how_to_get_one() {
    let empty = common::temp_dir("cli-nomodel");
    let out = hark(&[
        "--models",
        empty.to_str().unwrap(),
        "transcribe",
        "assets/none.wav",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("hark models fetch tiny.en") && err.contains("scripts/setup.sh"),
        "{err}"
    );
    std::fs::remove_dir_all(empty).ok();
}

/// A damaged model file (here cut to 100 bytes) is refused with a message, never handed to
/// whisper.cpp (which aborts the process on one): `transcribe` exits 1, `serve` refuses to
/// start.
#[test]
fn a_truncated_model_is_refused_before_it_can_abort_hark() {
    let models = common::models();
    let dir = common::temp_dir("cli-truncated");
    let whole = std::fs::read(models.whisper("tiny.en")).unwrap();
    std::fs::write(dir.join("ggml-tiny.en.bin"), &whole[..100]).unwrap();
    let wav = dir.join("a.wav");
    hark::audio::wav::write_wav(&wav, &hark::audio::Pcm::new(16_000, vec![0.0; 16_000])).unwrap();
    let out = hark(&[
        "--models",
        dir.to_str().unwrap(),
        "transcribe",
        wav.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("ends early"), "{}", stderr(&out));
    let out = hark(&[
        "--models",
        dir.to_str().unwrap(),
        "serve",
        "--model",
        "tiny.en",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("ends early"), "{}", stderr(&out));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn missing_onnxruntime_says_how_to_get_it() {
    let models = common::models();
    let out = Command::new(common::hark_bin())
        .args([
            "--models",
            models.root.to_str().unwrap(),
            "say",
            "hello",
            "-o",
            "/tmp/hark-never.wav",
        ])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("scripts/setup.sh"),
        "{err}"
    );
    assert!(!std::path::Path::new("/tmp/hark-never.wav").exists());
}

#[test]
fn a_bad_wav_is_reported_and_the_good_ones_still_transcribed() {
    let models = common::models();
    let models = models.root.to_str().unwrap();
    let dir = common::temp_dir("cli-bad");
    let good = dir.join("good.wav");
    let bad = dir.join("bad.wav");
    std::fs::write(&bad, b"this is not audio").unwrap();
    assert!(hark(&[
        "--models",
        models,
        "say",
        "Turn on the lights.",
        "-o",
        good.to_str().unwrap(),
        "--voice",
        "espeak"
    ])
    .status
    .success());
    let out = hark(&[
        "--models",
        models,
        "transcribe",
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed file makes the exit status non-zero"
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0]["error"]
        .as_str()
        .unwrap()
        .contains("not a readable WAV"));
    assert!(lines[1]["text"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("lights"));
    // In words, a missing file is named once (its reading error already names it).
    let missing = dir.join("missing.wav");
    let out = hark(&["--models", models, "transcribe", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches(missing.to_str().unwrap()).count(), 1, "{err}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn unknown_model_and_empty_text_are_refused_clearly() {
    let out = hark(&["models", "fetch", "huge.xx"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("tiny.en"),
        "lists the known models: {}",
        stderr(&out)
    );

    let out = hark(&["say", "   ", "-o", "/tmp/hark-empty.wav"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("empty"));
}

#[test]
fn output_cut_short_by_its_reader_ends_hark_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    // `hark domain check … | head -0`: the reader is gone before hark prints.
    let mut child = Command::new(common::hark_bin())
        .args(["domain", "check", "barista"])
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = stderr(&output);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}

/// An installed `hark` run from a folder that is not the checkout: the built-in domains come
/// from the binary, the models from where setup put them (here `HARK_MODELS_DIR`, as a
/// service sets it), and nothing is looked up relative to the working directory.
#[test]
fn the_binary_runs_from_any_directory_with_its_built_in_domains() {
    let models = common::models();
    let elsewhere = common::temp_dir("cli-elsewhere");
    let cache = elsewhere.join("cache");
    let run = |args: &[&str], input: &str| {
        use std::io::Write;
        let mut child = Command::new(common::hark_bin())
            .args(args)
            .env("HARK_MODELS_DIR", &models.root)
            .env("XDG_CACHE_HOME", &cache)
            .env_remove("HARK_CONFIG_DIR")
            .current_dir(&elsewhere)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{input}").unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run(
        &["chat", "--store", "none", "--log", "none"],
        "I need to reset my password",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("Which account is it for"), "{said}");
    let out = run(
        &[
            "chat", "--domain", "barista", "--store", "none", "--log", "none",
        ],
        "a large latte please",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["chat", "--domain", "nonesuch"], "");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("customer-service (built in)"), "{err}");
    std::fs::remove_dir_all(elsewhere).ok();
}
