//! Voice activity detection (webrtc-vad), the echo (double-talk) gate, and endpointing:
//! deciding, 20 ms at a time, where an utterance starts and where it has ended.

pub mod echo_gate;
pub mod endpointer;
pub mod level_gate;
pub mod smart_turn;
pub mod turn_end;
pub mod turn_model;

use webrtc_vad::{SampleRate, Vad, VadMode};

use crate::audio::SPEECH_RATE;

/// The loop's frame: 20 ms at 16 kHz.
pub const FRAME_MS: u64 = 20;
pub const FRAME_SAMPLES: usize = (SPEECH_RATE as usize) * FRAME_MS as usize / 1000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VadError {
    #[error("VAD frames must be 10, 20 or 30 ms at 16 kHz (160, 320 or 480 samples), got {0}")]
    FrameLength(usize),
}

/// webrtc-vad on f32 frames. Not `Send` (the C state is thread-bound): create it on the
/// thread that uses it.
pub struct VoiceDetector {
    vad: Vad,
    scratch: Vec<i16>,
}

/// Below this level (≈ −60 dBFS RMS) a frame is silence whatever the VAD says; webrtc-vad's
/// aggressive mode occasionally fires on near-digital silence and dither.
const SILENCE_RMS: f32 = 0.001;

impl VoiceDetector {
    pub fn new() -> Self {
        Self {
            vad: Vad::new_with_rate_and_mode(SampleRate::Rate16kHz, VadMode::Aggressive),
            scratch: Vec::with_capacity(480),
        }
    }

    /// Whether this 16 kHz frame holds speech.
    pub fn is_speech(&mut self, frame: &[f32]) -> Result<bool, VadError> {
        if !matches!(frame.len(), 160 | 320 | 480) {
            return Err(VadError::FrameLength(frame.len()));
        }
        let energy = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
        if energy.sqrt() < SILENCE_RMS {
            return Ok(false);
        }
        self.scratch.clear();
        self.scratch
            .extend(frame.iter().map(|&s| crate::audio::wav::to_i16(s)));
        // The length was checked above, which is the only error webrtc-vad reports.
        Ok(self.vad.is_voice_segment(&self.scratch).unwrap_or(false))
    }
}

impl Default for VoiceDetector {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_rejects_bad_frames_and_hears_silence_as_silence() {
        let mut vad = VoiceDetector::new();
        assert_eq!(vad.is_speech(&[]), Err(VadError::FrameLength(0)));
        assert_eq!(vad.is_speech(&[0.0; 100]), Err(VadError::FrameLength(100)));
        assert_eq!(vad.is_speech(&[0.0; 320]), Ok(false));
    }
}
