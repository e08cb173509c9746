//! Input audio in the layouts people actually have — 8, 22.05, 44.1 and 48 kHz, stereo,
//! 16/24-bit integer and 32-bit float — is converted to 16 kHz mono that matches sox's
//! reference resampler and that Whisper still understands.

mod common;

use std::path::Path;
use std::process::Command;

use hark::audio::{wav, Pcm};
use hark::stt::wer::wer;
use hark::stt::{TranscribeOptions, Transcriber};
use hark::tts::{self, VoiceKind};

const SENTENCE: &str = "Can you move my appointment to Thursday morning?";

fn sox(args: &[&str]) {
    let status = Command::new("sox")
        .args(args)
        .status()
        .expect("sox runs (scripts/setup.sh installs it)");
    assert!(status.success(), "sox {args:?}");
}

/// Normalised cross-correlation at the best lag within ±`max_lag` samples.
fn best_correlation(a: &[f32], b: &[f32], max_lag: isize) -> (f64, isize) {
    let mut best = (f64::MIN, 0);
    for lag in -max_lag..=max_lag {
        let (mut dot, mut ea, mut eb) = (0f64, 0f64, 0f64);
        for (i, &x) in a.iter().enumerate() {
            let j = i as isize + lag;
            if j < 0 || j as usize >= b.len() {
                continue;
            }
            let y = b[j as usize];
            dot += x as f64 * y as f64;
            ea += (x as f64).powi(2);
            eb += (y as f64).powi(2);
        }
        let c = dot / (ea.sqrt() * eb.sqrt()).max(1e-12);
        if c > best.0 {
            best = (c, lag);
        }
    }
    best
}

#[test]
fn every_common_layout_becomes_the_same_16k_speech() {
    let dir = common::temp_dir("formats");
    let mut voice = tts::open_voice(VoiceKind::Piper, &common::models(), 2).unwrap();
    let source = dir.join("source.wav");
    wav::write_wav(
        &source,
        &Pcm::new(voice.sample_rate(), voice.synthesize(SENTENCE).unwrap()),
    )
    .unwrap();
    let source_secs = wav::read_wav(&source).unwrap().to_mono().duration_secs();
    let mut session = common::whisper().session().unwrap();

    // (rate, sox encoding options): stereo in every case, with the channels made different
    // (right at half gain) so the downmix is exercised.
    for (rate, bits) in [
        ("8000", &["-b", "16"][..]),
        ("22050", &["-b", "24"]),
        ("44100", &["-e", "floating-point", "-b", "32"]),
        ("48000", &["-b", "16"]),
    ] {
        let input = dir.join(format!("in-{rate}.wav"));
        let mut args = vec![source.to_str().unwrap()];
        args.extend_from_slice(bits);
        args.extend_from_slice(&[
            "-r",
            rate,
            "-c",
            "2",
            input.to_str().unwrap(),
            "remix",
            "1",
            "1v0.5",
        ]);
        sox(&args);
        let info = wav::read_wav(&input).unwrap();
        assert_eq!(
            (info.sample_rate.to_string().as_str(), info.channels),
            (rate, 2)
        );

        let ours = wav::read_wav_for_speech(&input).unwrap();
        assert_eq!(ours.sample_rate, 16_000);
        let expected_len = (source_secs * 16_000.0).round() as i64;
        assert!(
            (ours.samples.len() as i64 - expected_len).abs() <= 16,
            "{rate}: {} vs {expected_len}",
            ours.samples.len()
        );

        // sox's own high-quality conversion of the same file is the reference.
        let reference = dir.join(format!("ref-{rate}.wav"));
        sox(&[
            input.to_str().unwrap(),
            "-e",
            "floating-point",
            "-b",
            "32",
            "-r",
            "16000",
            "-c",
            "1",
            reference.to_str().unwrap(),
        ]);
        let reference = wav::read_wav(&reference).unwrap().to_mono();
        let (corr, lag) = best_correlation(&ours.samples, &reference.samples, 8);
        assert!(
            corr > 0.99 && lag.abs() <= 1,
            "{rate} Hz: correlation {corr:.4} at lag {lag}"
        );

        let text = session
            .transcribe(&ours.samples, &TranscribeOptions::default())
            .unwrap()
            .text;
        let error = wer(SENTENCE, &text);
        eprintln!("{rate} Hz: corr {corr:.4} lag {lag}, heard {text:?}");
        assert!(error <= 0.25, "{rate} Hz: heard {text:?}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_files_give_clear_errors() {
    let dir = common::temp_dir("badwav");
    let garbage = dir.join("garbage.wav");
    std::fs::write(&garbage, b"RIFF\x10\x00\x00\x00WAVEjunkjunk").unwrap();
    let err = wav::read_wav_for_speech(&garbage).unwrap_err().to_string();
    assert!(
        err.contains("garbage.wav") && err.contains("not a readable WAV"),
        "{err}"
    );

    let missing = wav::read_wav_for_speech(Path::new("/nonexistent/x.wav"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("/nonexistent/x.wav"), "{missing}");

    // A header-only file is valid and empty: it reads as no samples, not an error.
    let empty = dir.join("empty.wav");
    wav::write_wav(&empty, &Pcm::new(44_100, Vec::new())).unwrap();
    assert!(wav::read_wav_for_speech(&empty).unwrap().samples.is_empty());
    std::fs::remove_dir_all(dir).ok();
}
