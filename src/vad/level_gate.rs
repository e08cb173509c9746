//! A level gate for the end of an utterance. webrtc-vad calls low-level background noise
//! voice (a fan, a room's hum a few dB over its floor), so the tail of an utterance in a
//! noisy room can hold the endpointer open for a second after the words end. Within an
//! utterance, a frame the VAD calls voiced counts only if it stands out from the background:
//! halfway (in dB) from the background's level to the utterance's loudest frame, but never
//! asking more than 20 dB under that loudest frame, nor less than 6 dB over the background.
//! Onsets are left to the VAD alone, so speech is never heard later for it.

/// How fast the background estimate follows silent frames (per 20 ms frame).
const FLOOR_RATE: f32 = 0.05;
/// Levels are clamped to this floor, in dBFS (digital silence has no level).
const MIN_DB: f32 = -100.0;

#[derive(Debug, Clone)]
pub struct LevelGate {
    /// The background's level, from frames the VAD calls silence.
    floor_db: Option<f32>,
    /// The loudest voiced frame of the utterance in progress.
    peak_db: Option<f32>,
}

/// A frame's RMS level in dBFS.
pub fn level_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return MIN_DB;
    }
    let power = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
    (10.0 * power.log10()).max(MIN_DB)
}

impl Default for LevelGate {
    fn default() -> Self {
        Self::new()
    }
}

impl LevelGate {
    pub fn new() -> Self {
        Self {
            floor_db: None,
            peak_db: None,
        }
    }

    /// Whether a frame at `level` the VAD judged `vad_voiced` counts as voice, given whether
    /// an utterance is in progress.
    pub fn voiced(&mut self, level: f32, vad_voiced: bool, in_utterance: bool) -> bool {
        if !vad_voiced {
            let floor = self.floor_db.get_or_insert(level);
            *floor += (level - *floor) * FLOOR_RATE;
        }
        if !in_utterance {
            self.peak_db = None;
            return vad_voiced;
        }
        if !vad_voiced {
            return false;
        }
        let passes = level >= self.gate().unwrap_or(MIN_DB);
        if passes {
            self.peak_db = Some(self.peak_db.map_or(level, |p| p.max(level)));
        }
        passes
    }

    /// The level a frame must reach within the utterance, once there is a background and a
    /// loudest frame to place it between.
    fn gate(&self) -> Option<f32> {
        let (floor, peak) = (self.floor_db?, self.peak_db?);
        let halfway = floor + (peak - floor) / 2.0;
        Some(halfway.min(peak - 20.0).max(floor + 6.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noise_tail_after_speech_is_not_voice() {
        let mut gate = LevelGate::new();
        for _ in 0..100 {
            gate.voiced(-75.0, false, false);
        }
        assert!(gate.voiced(-30.0, true, false), "onsets are the VAD's");
        assert!(gate.voiced(-25.0, true, true));
        assert!(
            gate.voiced(-40.0, true, true),
            "a quieter word is still speech"
        );
        assert!(
            !gate.voiced(-60.0, true, true),
            "hum the VAD calls voice is not"
        );
        // A new utterance starts from its own loudest frame.
        gate.voiced(-75.0, false, false);
        assert!(gate.voiced(-55.0, true, true), "a quiet speaker is heard");
    }

    #[test]
    fn in_a_loud_room_it_asks_at_most_20_db_under_the_speech() {
        let mut gate = LevelGate::new();
        for _ in 0..100 {
            gate.voiced(-40.0, false, false);
        }
        gate.voiced(-20.0, true, true);
        assert!(gate.voiced(-33.0, true, true), "7 dB over the floor");
        assert!(!gate.voiced(-36.0, true, true), "under 6 dB over the floor");
        assert_eq!(level_db(&[0.0; 320]), MIN_DB);
        assert!((level_db(&[0.5; 320]) + 6.02).abs() < 0.01);
    }
}
