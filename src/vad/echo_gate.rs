//! Double-talk detection for a speaker and microphone in the same room (Geigel's rule):
//! while hark is talking, a microphone frame is taken for the user only when it is louder
//! than a fraction of what the speaker played within the echo's delay.
//!
//! The echo canceller needs about a second of speaker signal to converge (measured on a
//! PulseAudio loopback: residual −5 to −18 dB in the first second, −45 dB after). Until
//! `warmup_ms` of audible playback has gone through it, the gate is strict (`threshold`);
//! after that only what the canceller leaves is gated (`converged_threshold`), so a user
//! who talks no louder than the speaker can still interrupt.

use std::collections::VecDeque;

use super::FRAME_MS;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EchoGateConfig {
    /// While the canceller converges, the microphone must reach this fraction of the
    /// recent speaker level (0.5 = −6 dB).
    pub threshold: f32,
    /// After it has converged (0.1 = −20 dB).
    pub converged_threshold: f32,
    /// Audible playback after which the canceller counts as converged.
    pub warmup_ms: u64,
    /// How far back the speaker level is looked at: the longest speaker-to-microphone
    /// delay expected, plus the echo's own tail.
    pub window_ms: u64,
}

impl Default for EchoGateConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            converged_threshold: 0.1,
            warmup_ms: 1000,
            window_ms: 300,
        }
    }
}

/// Output quieter than this (−54 dBFS) is not sound the canceller can learn from.
const AUDIBLE_RMS: f32 = 0.002;

pub struct EchoGate {
    config: EchoGateConfig,
    /// RMS of each recent output frame, newest last.
    played: VecDeque<f32>,
    /// Audible playback so far.
    audible_ms: u64,
}

fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32).sqrt()
}

impl EchoGate {
    pub fn new(config: EchoGateConfig) -> Self {
        let frames = config.window_ms.div_ceil(FRAME_MS).max(1) as usize;
        Self {
            config,
            played: VecDeque::with_capacity(frames + 1),
            audible_ms: 0,
        }
    }

    /// Records one frame of what the speaker was given.
    pub fn played(&mut self, output: &[f32]) {
        let frames = self.config.window_ms.div_ceil(FRAME_MS).max(1) as usize;
        if self.played.len() == frames {
            self.played.pop_front();
        }
        let level = rms(output);
        if level > AUDIBLE_RMS {
            self.audible_ms += FRAME_MS;
        }
        self.played.push_back(level);
    }

    /// Double talk (the user over hark) disturbs the canceller's filter: be strict again
    /// until it has re-converged.
    pub fn restart_warmup(&mut self) {
        self.audible_ms = 0;
    }

    /// Whether this microphone frame can be the user rather than hark's own echo.
    pub fn near_end(&self, input: &[f32]) -> bool {
        let far = self.played.iter().copied().fold(0.0, f32::max);
        let threshold = if self.audible_ms >= self.config.warmup_ms {
            self.config.converged_threshold
        } else {
            self.config.threshold
        };
        far == 0.0 || rms(input) > threshold * far
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_is_gated_and_a_louder_voice_is_not() {
        let mut gate = EchoGate::new(EchoGateConfig::default());
        assert!(
            gate.near_end(&[0.01; 320]),
            "nothing played: everything passes"
        );
        gate.played(&[0.2; 320]);
        for _ in 0..5 {
            gate.played(&[0.0; 320]);
        }
        assert!(
            !gate.near_end(&[0.05; 320]),
            "a quarter of the speaker level is echo"
        );
        assert!(gate.near_end(&[0.15; 320]), "three quarters is the user");
        for _ in 0..20 {
            gate.played(&[0.0; 320]);
        }
        assert!(gate.near_end(&[0.01; 320]), "the window has passed");
    }

    #[test]
    fn once_the_canceller_has_had_its_warm_up_only_residual_echo_is_gated() {
        let mut gate = EchoGate::new(EchoGateConfig::default());
        for _ in 0..50 {
            gate.played(&[0.2; 320]); // 1 s of speech through the canceller
        }
        assert!(
            gate.near_end(&[0.05; 320]),
            "a user at a quarter of the speaker level"
        );
        assert!(!gate.near_end(&[0.01; 320]), "residual echo at −26 dB");
        gate.restart_warmup();
        assert!(
            !gate.near_end(&[0.05; 320]),
            "strict again after double talk"
        );
    }
}
