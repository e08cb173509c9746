//! Acoustic echo cancellation (WebRTC's audio processing module), so a kiosk with open
//! speakers does not hear its own replies as the user barging in.
//!
//! The speaker side hands every sample it plays to an [`EchoReference`] (the module's
//! render stream); the microphone side runs its capture through the [`EchoCanceller`]
//! (its capture stream). Both share one module instance and work at 48 kHz mono in 10 ms
//! frames, its native format. The module buffers the render stream itself and aligns the
//! two by the stream delay: the time from a sample being handed to the speaker to its echo
//! being handed to the canceller, which hark's own buffers mostly set.

use webrtc_audio_processing as webrtc;

use super::AudioError;

/// The rate the canceller runs at; both devices must run at it too.
pub const AEC_RATE: u32 = 48_000;
const FRAME: usize = webrtc::NUM_SAMPLES_PER_FRAME as usize;

/// Speaker-to-canceller delay measured with hark's buffers on PulseAudio (40 ms speaker
/// prefill, 10 ms device buffers): 85 ms. Other setups set `audio.aec_delay_ms` (or HARK_AEC_DELAY_MS).
pub const DEFAULT_DELAY_MS: i32 = 85;

fn apm_error(e: webrtc::Error) -> AudioError {
    AudioError::Device(format!("echo canceller: {e}"))
}

/// Collects samples into whole 10 ms frames.
struct Framer {
    pending: Vec<f32>,
}

impl Framer {
    fn new() -> Self {
        Self {
            pending: Vec::with_capacity(FRAME * 8),
        }
    }

    /// Appends `samples`, then calls `each` on every complete frame (in place).
    fn push(
        &mut self,
        samples: &[f32],
        mut each: impl FnMut(&mut [f32]) -> Result<(), AudioError>,
    ) -> Result<(), AudioError> {
        self.pending.extend_from_slice(samples);
        let whole = self.pending.len() / FRAME * FRAME;
        for frame in self.pending[..whole].chunks_exact_mut(FRAME) {
            each(frame)?;
        }
        self.pending.drain(..whole);
        Ok(())
    }
}

/// The render side: what the speaker plays.
pub struct EchoReference {
    processor: webrtc::Processor,
    framer: Framer,
}

impl EchoReference {
    /// Feeds samples as they are handed to the speaker.
    pub fn push(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        let processor = &mut self.processor;
        self.framer.push(samples, |frame| {
            processor.process_render_frame(frame).map_err(apm_error)
        })
    }
}

/// The capture side: removes the echo of the reference from microphone audio.
pub struct EchoCanceller {
    processor: webrtc::Processor,
    framer: Framer,
}

/// A connected canceller and reference, for a speaker heard `delay_ms` after it plays.
pub fn echo_canceller(delay_ms: i32) -> Result<(EchoCanceller, EchoReference), AudioError> {
    let init = webrtc::InitializationConfig {
        num_capture_channels: 1,
        num_render_channels: 1,
        ..Default::default()
    };
    let mut processor = webrtc::Processor::new(&init).map_err(apm_error)?;
    processor.set_config(webrtc::Config {
        echo_cancellation: Some(webrtc::EchoCancellation {
            suppression_level: webrtc::EchoCancellationSuppressionLevel::High,
            enable_extended_filter: true,
            enable_delay_agnostic: false,
            stream_delay_ms: Some(delay_ms),
        }),
        enable_high_pass_filter: true,
        ..Default::default()
    });
    Ok((
        EchoCanceller {
            processor: processor.clone(),
            framer: Framer::new(),
        },
        EchoReference {
            processor,
            framer: Framer::new(),
        },
    ))
}

impl EchoCanceller {
    /// Takes 48 kHz microphone samples and appends the echo-cancelled ones to `out`
    /// (in whole 10 ms frames; a remainder waits for the next call).
    pub fn process(&mut self, capture: &[f32], out: &mut Vec<f32>) -> Result<(), AudioError> {
        let processor = &mut self.processor;
        self.framer.push(capture, |frame| {
            processor.process_capture_frame(frame).map_err(apm_error)?;
            out.extend_from_slice(frame);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A speech-like test signal: a tone gliding through the voice band, amplitude-modulated
    /// into syllables.
    fn voice_like(seconds: f32) -> Vec<f32> {
        let n = (AEC_RATE as f32 * seconds) as usize;
        let mut phase = 0.0f32;
        (0..n)
            .map(|i| {
                let t = i as f32 / AEC_RATE as f32;
                let hz = 300.0 + 200.0 * (2.0 * std::f32::consts::PI * 0.7 * t).sin();
                phase += 2.0 * std::f32::consts::PI * hz / AEC_RATE as f32;
                let syllables = (2.0 * std::f32::consts::PI * 4.0 * t).sin().abs();
                0.3 * syllables * (phase.sin() + 0.3 * (3.0 * phase).sin())
            })
            .collect()
    }

    fn energy(x: &[f32]) -> f32 {
        x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32
    }

    #[test]
    fn removes_a_delayed_echo_of_the_reference() {
        let (mut canceller, mut reference) = echo_canceller(DEFAULT_DELAY_MS).unwrap();
        let played = voice_like(6.0);
        // The microphone hears the speaker later (by the default stream delay), at half
        // the level.
        let delay = AEC_RATE as usize * DEFAULT_DELAY_MS as usize / 1000;
        let mut heard = vec![0.0; played.len()];
        for i in delay..played.len() {
            heard[i] = 0.5 * played[i - delay];
        }
        let mut cleaned = Vec::new();
        for (p, h) in played.chunks(FRAME).zip(heard.chunks(FRAME)) {
            reference.push(p).unwrap();
            canceller.process(h, &mut cleaned).unwrap();
        }
        // After it has converged (the last two seconds), the echo is far down.
        let tail = cleaned.len() - AEC_RATE as usize * 2;
        let reduction_db =
            10.0 * (energy(&heard[tail..]) / energy(&cleaned[tail..]).max(1e-12)).log10();
        eprintln!("echo reduced by {reduction_db:.1} dB");
        assert!(
            reduction_db > 15.0,
            "echo reduced by only {reduction_db:.1} dB"
        );
    }
}
