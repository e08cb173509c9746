//! Voice activity detection (webrtc-vad) and endpointing: deciding, 20 ms at a time, where
//! an utterance starts and where it has ended.

pub mod echo_gate;

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

/// Endpointing thresholds, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EndpointerConfig {
    /// Audio kept from before the detected onset, so soft word starts are not clipped.
    pub pre_roll_ms: u64,
    /// Consecutive voiced time before an onset counts as speech (clicks are shorter).
    pub onset_ms: u64,
    /// Utterances with less voiced time than this are dropped as noise.
    pub min_speech_ms: u64,
    /// Silence after speech that ends the utterance.
    pub hangover_ms: u64,
}

impl Default for EndpointerConfig {
    fn default() -> Self {
        Self {
            pre_roll_ms: 300,
            onset_ms: 60,
            min_speech_ms: 200,
            hangover_ms: 600,
        }
    }
}

/// What the endpointer saw in one frame.
#[derive(Debug, Clone, PartialEq)]
pub enum EndpointEvent {
    /// Speech began at `at_ms` (the first voiced frame), confirmed `onset_ms` later.
    SpeechStart { at_ms: u64 },
    /// The utterance ended at `at_ms` (end of its last voiced frame); `audio` holds it with
    /// its pre-roll and a short tail.
    SpeechEnd {
        at_ms: u64,
        audio: Vec<f32>,
        voiced_ms: u64,
    },
    /// Voiced, but too short to be speech: dropped. `at_ms` is where it ended.
    Discarded { at_ms: u64, voiced_ms: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Onset {
        first: u64,
        voiced: u64,
    },
    Speaking {
        first: u64,
        last_voiced: u64,
        voiced: u64,
    },
}

/// Frame-by-frame utterance detection on the 16 kHz timeline.
pub struct Endpointer {
    config: EndpointerConfig,
    state: State,
    frame_index: u64,
    /// Recent frames before an onset (pre-roll), oldest first.
    history: std::collections::VecDeque<Vec<f32>>,
    utterance: Vec<f32>,
}

/// Silence kept after the last voiced frame: word endings fade below the VAD's threshold.
const TAIL_MS: u64 = 120;

impl Endpointer {
    pub fn new(config: EndpointerConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            frame_index: 0,
            history: Default::default(),
            utterance: Vec::new(),
        }
    }

    pub fn config(&self) -> &EndpointerConfig {
        &self.config
    }

    fn frames(ms: u64) -> u64 {
        ms.div_ceil(FRAME_MS)
    }

    /// Whether an utterance is in progress (onset confirmed, end not yet reached).
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    /// The utterance so far (pre-roll included), for partial transcripts.
    pub fn utterance(&self) -> &[f32] {
        &self.utterance
    }

    /// Silence since the last voiced frame of the current utterance, in ms.
    pub fn trailing_silence_ms(&self) -> u64 {
        match self.state {
            State::Speaking { last_voiced, .. } => (self.frame_index - 1 - last_voiced) * FRAME_MS,
            _ => 0,
        }
    }

    /// Voiced time in the current utterance (or onset), in ms.
    pub fn voiced_ms(&self) -> u64 {
        match self.state {
            State::Idle => 0,
            State::Onset { voiced, .. } | State::Speaking { voiced, .. } => voiced * FRAME_MS,
        }
    }

    /// Feeds one frame and its VAD decision.
    pub fn push(&mut self, frame: &[f32], voiced: bool) -> Option<EndpointEvent> {
        let index = self.frame_index;
        self.frame_index += 1;
        let cfg = self.config;
        match self.state {
            State::Idle | State::Onset { .. } => {
                self.history.push_back(frame.to_vec());
                let keep = (Self::frames(cfg.pre_roll_ms) + Self::frames(cfg.onset_ms)) as usize;
                while self.history.len() > keep.max(1) {
                    self.history.pop_front();
                }
                let (first, count) = match (self.state, voiced) {
                    (_, false) => {
                        self.state = State::Idle;
                        return None;
                    }
                    (State::Onset { first, voiced }, true) => (first, voiced + 1),
                    (_, true) => (index, 1),
                };
                if count >= Self::frames(cfg.onset_ms).max(1) {
                    self.state = State::Speaking {
                        first,
                        last_voiced: index,
                        voiced: count,
                    };
                    // Pre-roll: the frames before the onset, plus the onset itself.
                    let onset_frames = (index - first + 1) as usize;
                    let pre = Self::frames(cfg.pre_roll_ms) as usize;
                    let take = (pre + onset_frames).min(self.history.len());
                    self.utterance.clear();
                    for f in self.history.iter().skip(self.history.len() - take) {
                        self.utterance.extend_from_slice(f);
                    }
                    self.history.clear();
                    return Some(EndpointEvent::SpeechStart {
                        at_ms: first * FRAME_MS,
                    });
                }
                self.state = State::Onset {
                    first,
                    voiced: count,
                };
                None
            }
            State::Speaking {
                first,
                last_voiced,
                voiced: count,
            } => {
                self.utterance.extend_from_slice(frame);
                let (last_voiced, count) = if voiced {
                    (index, count + 1)
                } else {
                    (last_voiced, count)
                };
                self.state = State::Speaking {
                    first,
                    last_voiced,
                    voiced: count,
                };
                let silent_frames = index - last_voiced;
                if silent_frames < Self::frames(cfg.hangover_ms).max(1) {
                    return None;
                }
                Some(self.end_utterance())
            }
        }
    }

    /// Ends the utterance in progress now, before the full hangover, when the caller knows
    /// more than the VAD (the words so far form a complete sentence). None when no
    /// utterance is in progress.
    pub fn end_now(&mut self) -> Option<EndpointEvent> {
        self.in_speech().then(|| self.end_utterance())
    }

    /// The utterance so far without the silence after its last voiced frame beyond a short
    /// tail: what a decode of "everything said until now" should see.
    pub fn utterance_to_last_voice(&self) -> &[f32] {
        let excess = self.tail_excess_frames() as usize * FRAME_SAMPLES;
        &self.utterance[..self.utterance.len().saturating_sub(excess)]
    }

    fn tail_excess_frames(&self) -> u64 {
        (self.trailing_silence_ms() / FRAME_MS).saturating_sub(Self::frames(TAIL_MS))
    }

    fn end_utterance(&mut self) -> EndpointEvent {
        let State::Speaking {
            last_voiced,
            voiced: count,
            ..
        } = self.state
        else {
            unreachable!("end_utterance is only called while speaking")
        };
        let excess = self.tail_excess_frames() as usize * FRAME_SAMPLES;
        self.state = State::Idle;
        let at_ms = (last_voiced + 1) * FRAME_MS;
        let mut audio = std::mem::take(&mut self.utterance);
        // Trim the hangover back to a short tail after the last voiced frame.
        audio.truncate(audio.len().saturating_sub(excess));
        let voiced_ms = count * FRAME_MS;
        if voiced_ms < self.config.min_speech_ms {
            return EndpointEvent::Discarded { at_ms, voiced_ms };
        }
        EndpointEvent::SpeechEnd {
            at_ms,
            audio,
            voiced_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pattern: &str, config: EndpointerConfig) -> Vec<EndpointEvent> {
        // '#' = a voiced frame, '.' = silence; frames carry their index so audio can be checked.
        let mut ep = Endpointer::new(config);
        let mut events = Vec::new();
        for (i, c) in pattern.chars().enumerate() {
            let frame = vec![i as f32; FRAME_SAMPLES];
            events.extend(ep.push(&frame, c == '#'));
        }
        events
    }

    fn cfg() -> EndpointerConfig {
        EndpointerConfig {
            pre_roll_ms: 40,
            onset_ms: 60,
            min_speech_ms: 100,
            hangover_ms: 100,
        }
    }

    #[test]
    fn finds_start_and_end_with_pre_roll_and_tail() {
        let events = run("....########.......", cfg());
        assert_eq!(events[0], EndpointEvent::SpeechStart { at_ms: 80 });
        let EndpointEvent::SpeechEnd { at_ms, audio, .. } = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(*at_ms, 240);
        // Frames 2..=3 pre-roll, 4..=11 speech, then a 120 ms (6 frame) tail: 2..=17.
        let first = audio[0] as usize;
        let last = audio[audio.len() - 1] as usize;
        assert_eq!((first, last), (2, 16));
    }

    #[test]
    fn clicks_and_short_bursts_are_not_speech() {
        assert!(run("..#..#..##....", cfg()).is_empty());
        let events = run("..####........", cfg());
        assert!(
            matches!(events[1], EndpointEvent::Discarded { voiced_ms: 80, .. }),
            "{events:?}"
        );
    }

    #[test]
    fn short_pauses_do_not_end_the_utterance() {
        let events = run("..#####....#####.........", cfg());
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(
            events[1],
            EndpointEvent::SpeechEnd { at_ms: 320, .. }
        ));
    }

    #[test]
    fn end_now_cuts_the_hangover_short() {
        let mut ep = Endpointer::new(cfg());
        for (i, c) in "..######..".chars().enumerate() {
            assert!(ep.push(&vec![i as f32; FRAME_SAMPLES], c == '#').is_none() || i == 4);
        }
        assert_eq!(ep.trailing_silence_ms(), 40);
        let last = *ep.utterance_to_last_voice().last().unwrap() as usize;
        assert_eq!(last, 9, "the short tail is kept");
        let Some(EndpointEvent::SpeechEnd {
            at_ms, voiced_ms, ..
        }) = ep.end_now()
        else {
            panic!()
        };
        assert_eq!((at_ms, voiced_ms), (160, 120));
        assert!(!ep.in_speech() && ep.end_now().is_none());
    }

    #[test]
    fn detector_rejects_bad_frames_and_hears_silence_as_silence() {
        let mut vad = VoiceDetector::new();
        assert_eq!(vad.is_speech(&[]), Err(VadError::FrameLength(0)));
        assert_eq!(vad.is_speech(&[0.0; 100]), Err(VadError::FrameLength(100)));
        assert_eq!(vad.is_speech(&[0.0; 320]), Ok(false));
    }
}
