//! Builds conversation recordings for the voice-loop tests: user requests spoken by a real
//! voice, placed on a 16 kHz timeline with silence between them, as a microphone would hear.

use hark::audio::{resample, SPEECH_RATE};
use hark::tts::Voice;

pub enum Part<'a> {
    Silence(u64),
    Say(&'a str),
}

/// A recording and where each spoken part lies on it, in ms.
pub struct Recording {
    pub samples: Vec<f32>,
    pub spans: Vec<(u64, u64)>,
}

impl Recording {
    pub fn duration_ms(&self) -> u64 {
        self.samples.len() as u64 * 1000 / SPEECH_RATE as u64
    }
}

/// Speaks each `Say` with `voice` (trimmed of its own leading and trailing silence, so the
/// spans are where the speech is) and lays the parts end to end.
pub fn build(voice: &mut dyn Voice, parts: &[Part]) -> Recording {
    let mut samples = Vec::new();
    let mut spans = Vec::new();
    let ms = |n: usize| n as u64 * 1000 / SPEECH_RATE as u64;
    for part in parts {
        match part {
            Part::Silence(duration) => samples.resize(
                samples.len() + (*duration * SPEECH_RATE as u64 / 1000) as usize,
                0.0,
            ),
            Part::Say(text) => {
                let speech = voice.synthesize(text).expect("synthesize the user's words");
                let speech = resample::resample(&speech, voice.sample_rate(), SPEECH_RATE).unwrap();
                let speech = trim_silence(&speech);
                let start = samples.len();
                samples.extend_from_slice(speech);
                spans.push((ms(start), ms(samples.len())));
            }
        }
    }
    Recording { samples, spans }
}

fn trim_silence(samples: &[f32]) -> &[f32] {
    let loud = |s: &&f32| s.abs() > 0.01;
    let first = samples.iter().position(|s| loud(&s)).unwrap_or(0);
    let last = samples
        .iter()
        .rposition(|s| loud(&s))
        .map_or(samples.len(), |i| i + 1);
    &samples[first..last]
}

/// RMS level of `samples[from_ms..to_ms]` at `rate`.
pub fn rms(samples: &[f32], rate: u32, from_ms: u64, to_ms: u64) -> f32 {
    let at = |ms: u64| ((ms * rate as u64 / 1000) as usize).min(samples.len());
    let window = &samples[at(from_ms)..at(to_ms)];
    if window.is_empty() {
        return 0.0;
    }
    (window.iter().map(|s| s * s).sum::<f32>() / window.len() as f32).sqrt()
}
