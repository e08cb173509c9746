//! `hark say`: text to a WAV file with a local voice.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::round1;
use hark::audio::{wav, Pcm};
use hark::config::TtsEngine;
use hark::models::ModelDir;
use hark::tts::{self, VoiceKind};

pub fn say(
    models: &ModelDir,
    threads: usize,
    text: &str,
    output: &Path,
    voice: TtsEngine,
    json: bool,
) -> Result<()> {
    let voice = match voice {
        TtsEngine::Piper => VoiceKind::Piper,
        TtsEngine::Espeak => VoiceKind::Espeak,
        cloud => bail!("`hark say` speaks with the local voices (piper, espeak); {cloud:?} speaks in `run` and `serve`"),
    };
    if text.trim().is_empty() {
        bail!("nothing to say: the text is empty");
    }
    let load_start = Instant::now();
    let mut synth = tts::open_voice(voice, models, threads)?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1000.0;
    let mut samples = Vec::new();
    let mut first_chunk_ms = None;
    let synth_start = Instant::now();
    tts::speak_streaming(synth.as_mut(), text, &mut |chunk| {
        first_chunk_ms.get_or_insert(chunk.ready_ms);
        samples.extend_from_slice(&chunk.samples);
        true
    })?;
    let synth_ms = synth_start.elapsed().as_secs_f64() * 1000.0;
    let pcm = Pcm::new(synth.sample_rate(), samples);
    wav::write_wav(output, &pcm).with_context(|| format!("writing {}", output.display()))?;
    let audio_ms = pcm.duration_secs() * 1000.0;
    if json {
        println!(
            "{}",
            json!({
                "output": output,
                "voice": synth.name(),
                "sample_rate": pcm.sample_rate,
                "audio_ms": round1(audio_ms),
                "load_ms": round1(load_ms),
                "first_chunk_ms": first_chunk_ms.map(round1),
                "synth_ms": round1(synth_ms),
                "real_time_factor": (audio_ms > 0.0).then(|| synth_ms / audio_ms),
            })
        );
    } else {
        println!(
            "wrote {} ({:.2} s of {} speech at {} Hz; first audio after {:.0} ms)",
            output.display(),
            audio_ms / 1000.0,
            synth.name(),
            pcm.sample_rate,
            first_chunk_ms.unwrap_or(0.0)
        );
    }
    Ok(())
}
