//! `hark transcribe`: WAV files to text with the batch recognizer.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::json;

use super::{round1, Window};
use hark::audio::{wav, SPEECH_RATE};
use hark::models::ModelDir;
use hark::stt::whisper::WhisperModel;
use hark::stt::{DecodeWindow, TranscribeOptions, Transcriber};

pub fn transcribe(
    models: &ModelDir,
    threads: usize,
    files: &[PathBuf],
    json: bool,
    model: &str,
    window: Window,
    prompt: Option<String>,
) -> Result<()> {
    if files.is_empty() {
        bail!("no WAV files given: hark transcribe FILE.wav [FILE.wav …]");
    }
    let whisper = WhisperModel::load(&models.whisper(model), threads)?;
    let mut session = whisper.session()?;
    let options = TranscribeOptions {
        window: match window {
            Window::Full => DecodeWindow::Full,
            Window::Trimmed => DecodeWindow::Trimmed,
        },
        prompt,
        ..Default::default()
    };
    let mut failures = 0;
    for file in files {
        // One bad file is reported and skipped; the others are still transcribed.
        let result = (|| -> Result<_> {
            let read_start = Instant::now();
            let audio = wav::read_wav(file)?;
            let pcm = audio.to_mono().resampled(SPEECH_RATE)?;
            let prepare_ms = read_start.elapsed().as_secs_f64() * 1000.0;
            let transcript = session.transcribe(&pcm.samples, &options)?;
            Ok((audio, prepare_ms, transcript))
        })();
        match result {
            Ok((audio, prepare_ms, transcript)) if json => {
                println!(
                    "{}",
                    json!({
                        "file": file,
                        "text": transcript.text,
                        "segments": transcript.segments,
                        "input": {"sample_rate": audio.sample_rate, "channels": audio.channels},
                        "audio_ms": round1(transcript.audio_ms),
                        "load_ms": round1(whisper.load_ms),
                        "prepare_ms": round1(prepare_ms),
                        "decode_ms": round1(transcript.decode_ms),
                        "window": options.window,
                    })
                );
            }
            Ok((_, _, transcript)) => println!("{}", transcript.text),
            Err(error) => {
                failures += 1;
                if json {
                    println!("{}", json!({"file": file, "error": format!("{error:#}")}));
                } else {
                    eprintln!("error: {}", super::file_error(file, &error));
                }
            }
        }
    }
    if failures > 0 {
        bail!(
            "{failures} of {} files could not be transcribed",
            files.len()
        );
    }
    Ok(())
}
