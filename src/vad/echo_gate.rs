//! Double-talk detection for a speaker and microphone in the same room (Geigel's rule):
//! while hark is talking, a microphone frame is taken for the user only when it is louder
//! than a fraction of what the speaker played within the echo's delay. Residual echo that
//! the echo canceller has not removed yet (it converges over the first second of speech)
//! is quieter than that; a user talking to the device is not.

use std::collections::VecDeque;

use super::FRAME_MS;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EchoGateConfig {
    /// The microphone must reach this fraction of the recent speaker level (0.5 = −6 dB).
    pub threshold: f32,
    /// How far back the speaker level is looked at: the longest speaker-to-microphone
    /// delay expected, plus the echo's own tail.
    pub window_ms: u64,
}

impl Default for EchoGateConfig {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            window_ms: 300,
        }
    }
}

pub struct EchoGate {
    config: EchoGateConfig,
    /// RMS of each recent output frame, newest last.
    played: VecDeque<f32>,
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
        }
    }

    /// Records one frame of what the speaker was given.
    pub fn played(&mut self, output: &[f32]) {
        let frames = self.config.window_ms.div_ceil(FRAME_MS).max(1) as usize;
        if self.played.len() == frames {
            self.played.pop_front();
        }
        self.played.push_back(rms(output));
    }

    /// Whether this microphone frame can be the user rather than hark's own echo.
    pub fn near_end(&self, input: &[f32]) -> bool {
        let far = self.played.iter().copied().fold(0.0, f32::max);
        far == 0.0 || rms(input) > self.config.threshold * far
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
}
