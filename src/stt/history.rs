//! The last seconds of a session's audio, kept so that an utterance can be heard again by
//! another connection or another engine when the first one fails mid-utterance.

use std::collections::VecDeque;

const SAMPLES_PER_MS: u64 = 16;

/// 16 kHz audio on the session's timeline (sample 0 is the first pushed), the most recent
/// `capacity` samples of it.
#[derive(Debug)]
pub struct AudioHistory {
    samples: VecDeque<f32>,
    /// Timeline index of `samples[0]`.
    first: u64,
    capacity: usize,
}

impl AudioHistory {
    pub fn new(seconds: u32) -> Self {
        Self {
            samples: VecDeque::new(),
            first: 0,
            capacity: seconds as usize * 16_000,
        }
    }

    pub fn push(&mut self, samples: &[f32]) {
        self.samples.extend(samples.iter().copied());
        let excess = self.samples.len().saturating_sub(self.capacity);
        self.samples.drain(..excess);
        self.first += excess as u64;
    }

    /// The timeline position of the next sample, in ms.
    pub fn end_ms(&self) -> u64 {
        (self.first + self.samples.len() as u64) / SAMPLES_PER_MS
    }

    /// The audio from `from_ms` on (what is still kept of it).
    pub fn since(&self, from_ms: u64) -> Vec<f32> {
        let from = (from_ms * SAMPLES_PER_MS).saturating_sub(self.first) as usize;
        self.samples
            .range(from.min(self.samples.len())..)
            .copied()
            .collect()
    }

    /// Timeline ms of the oldest sample kept.
    pub fn start_ms(&self) -> u64 {
        self.first / SAMPLES_PER_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_audio_on_the_timeline() {
        let mut h = AudioHistory::new(1);
        h.push(&vec![0.1; 16_000]);
        h.push(&vec![0.2; 8_000]);
        assert_eq!(h.end_ms(), 1500);
        assert_eq!(h.start_ms(), 500);
        let tail = h.since(1000);
        assert_eq!(tail.len(), 8_000);
        assert!(tail.iter().all(|&s| s == 0.2));
        assert_eq!(h.since(0).len(), 16_000, "only what is kept");
        assert!(h.since(2000).is_empty());
    }
}
