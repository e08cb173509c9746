//! Endpointing: deciding, 20 ms at a time, where an utterance starts, where it pauses and
//! where it has ended. The endpointer sees only the VAD's decisions; it keeps no audio and
//! says where the utterance's audio lies on the input timeline, so each consumer (a local
//! recognizer, a cloud stream) keeps the audio its own way.

use super::FRAME_MS;

/// Endpointing thresholds, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointerConfig {
    /// Audio kept from before the detected onset, so soft word starts are not clipped.
    pub pre_roll_ms: u64,
    /// Consecutive voiced time before an onset counts as speech (clicks are shorter).
    pub onset_ms: u64,
    /// Utterances with less voiced time than this are dropped as noise.
    pub min_speech_ms: u64,
    /// Silence after speech at which a pause is reported (the user may have finished).
    pub pause_ms: u64,
    /// Silence after speech that ends the utterance.
    pub hangover_ms: u64,
}

impl Default for EndpointerConfig {
    fn default() -> Self {
        Self {
            pre_roll_ms: 300,
            onset_ms: 60,
            min_speech_ms: 200,
            pause_ms: 60,
            hangover_ms: 600,
        }
    }
}

/// What the endpointer saw in one frame. Times are ms on the input timeline (the start of
/// the first frame is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEvent {
    /// Speech began at `at_ms` (the first voiced frame), confirmed `onset_ms` later; the
    /// utterance's audio starts at `audio_from_ms` (pre-roll included).
    SpeechStart { at_ms: u64, audio_from_ms: u64 },
    /// A pause of `pause_ms` began after voice that ended at `voice_end_ms`: everything
    /// said so far is the audio up to `audio_to_ms`.
    Paused { voice_end_ms: u64, audio_to_ms: u64 },
    /// Voice again after a pause, within the same utterance.
    Resumed { at_ms: u64 },
    /// The utterance ended at `at_ms` (end of its last voiced frame); its audio runs to
    /// `audio_to_ms` (a short tail after the voice).
    SpeechEnd {
        at_ms: u64,
        audio_to_ms: u64,
        voiced_ms: u64,
    },
    /// Voiced, but too short to be speech: dropped. `at_ms` is where it ended.
    Discarded { at_ms: u64, voiced_ms: u64 },
}

/// Where the utterance in progress stands, for decisions made frame by frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpeechProgress {
    /// An utterance is in progress (onset confirmed, end not yet reached).
    pub in_speech: bool,
    /// Voiced time in it so far.
    pub voiced_ms: u64,
    /// Silence since its last voiced frame.
    pub silence_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Onset {
        first: u64,
        voiced: u64,
    },
    Speaking {
        last_voiced: u64,
        voiced: u64,
        paused: bool,
    },
}

/// Frame-by-frame utterance detection on the 16 kHz timeline.
pub struct Endpointer {
    config: EndpointerConfig,
    state: State,
    frame_index: u64,
    /// The hangover of the utterance in progress: the configured one, unless whoever knows
    /// more (the end-of-turn model) asked to hold it open longer.
    hangover_ms: u64,
}

/// Silence kept after the last voiced frame: word endings fade below the VAD's threshold.
const TAIL_MS: u64 = 120;

impl Endpointer {
    pub fn new(config: EndpointerConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            frame_index: 0,
            hangover_ms: config.hangover_ms,
        }
    }

    /// Holds the utterance in progress open until `hangover_ms` of silence, when that is
    /// longer than the configured hangover: the user is likely in the middle of a sentence.
    /// (Shorter, the caller ends the utterance itself, with its transcript.) The next
    /// utterance starts with the configured hangover again.
    pub fn hold(&mut self, hangover_ms: u64) {
        if self.in_speech() {
            self.hangover_ms = hangover_ms.max(self.config.hangover_ms);
        }
    }

    fn frames(ms: u64) -> u64 {
        ms.div_ceil(FRAME_MS).max(1)
    }

    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    pub fn progress(&self) -> SpeechProgress {
        match self.state {
            State::Idle => SpeechProgress::default(),
            State::Onset { voiced, .. } => SpeechProgress {
                in_speech: false,
                voiced_ms: voiced * FRAME_MS,
                silence_ms: 0,
            },
            State::Speaking {
                last_voiced,
                voiced,
                ..
            } => SpeechProgress {
                in_speech: true,
                voiced_ms: voiced * FRAME_MS,
                silence_ms: (self.frame_index - 1 - last_voiced) * FRAME_MS,
            },
        }
    }

    /// Feeds the VAD's decision on the next frame.
    pub fn push(&mut self, voiced: bool) -> Option<EndpointEvent> {
        let index = self.frame_index;
        self.frame_index += 1;
        let cfg = self.config;
        match self.state {
            State::Idle | State::Onset { .. } => {
                let (first, count) = match (self.state, voiced) {
                    (_, false) => {
                        self.state = State::Idle;
                        return None;
                    }
                    (State::Onset { first, voiced }, true) => (first, voiced + 1),
                    (_, true) => (index, 1),
                };
                if count < Self::frames(cfg.onset_ms) {
                    self.state = State::Onset {
                        first,
                        voiced: count,
                    };
                    return None;
                }
                self.state = State::Speaking {
                    last_voiced: index,
                    voiced: count,
                    paused: false,
                };
                self.hangover_ms = cfg.hangover_ms;
                let at_ms = first * FRAME_MS;
                Some(EndpointEvent::SpeechStart {
                    at_ms,
                    audio_from_ms: at_ms.saturating_sub(cfg.pre_roll_ms),
                })
            }
            State::Speaking {
                last_voiced,
                voiced: count,
                paused,
            } => {
                if voiced {
                    self.state = State::Speaking {
                        last_voiced: index,
                        voiced: count + 1,
                        paused: false,
                    };
                    return paused.then_some(EndpointEvent::Resumed {
                        at_ms: index * FRAME_MS,
                    });
                }
                let silent_frames = index - last_voiced;
                if silent_frames >= Self::frames(self.hangover_ms) {
                    return Some(self.end_utterance());
                }
                if !paused && silent_frames >= Self::frames(cfg.pause_ms) {
                    self.state = State::Speaking {
                        last_voiced,
                        voiced: count,
                        paused: true,
                    };
                    return Some(EndpointEvent::Paused {
                        voice_end_ms: (last_voiced + 1) * FRAME_MS,
                        audio_to_ms: self.audio_end_ms(last_voiced),
                    });
                }
                None
            }
        }
    }

    /// Ends the utterance in progress now, before the full hangover, when the caller knows
    /// more than the VAD (the recognizer heard a complete sentence). None when no
    /// utterance is in progress.
    pub fn end_now(&mut self) -> Option<EndpointEvent> {
        self.in_speech().then(|| self.end_utterance())
    }

    /// The end of an utterance's audio: a short tail after its last voiced frame, or what
    /// has been heard so far when that is less.
    fn audio_end_ms(&self, last_voiced: u64) -> u64 {
        ((last_voiced + 1) * FRAME_MS + TAIL_MS).min(self.frame_index * FRAME_MS)
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
        let audio_to_ms = self.audio_end_ms(last_voiced);
        self.state = State::Idle;
        let at_ms = (last_voiced + 1) * FRAME_MS;
        let voiced_ms = count * FRAME_MS;
        if voiced_ms < self.config.min_speech_ms {
            return EndpointEvent::Discarded { at_ms, voiced_ms };
        }
        EndpointEvent::SpeechEnd {
            at_ms,
            audio_to_ms,
            voiced_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pattern: &str, config: EndpointerConfig) -> Vec<(usize, EndpointEvent)> {
        // '#' = a voiced frame, '.' = silence.
        let mut ep = Endpointer::new(config);
        let mut events = Vec::new();
        for (i, c) in pattern.chars().enumerate() {
            events.extend(ep.push(c == '#').map(|e| (i, e)));
        }
        events
    }

    fn cfg() -> EndpointerConfig {
        EndpointerConfig {
            pre_roll_ms: 40,
            onset_ms: 60,
            min_speech_ms: 100,
            pause_ms: 40,
            hangover_ms: 100,
        }
    }

    #[test]
    fn finds_start_pause_and_end_with_pre_roll_and_tail() {
        let events = run("....########.......", cfg());
        assert_eq!(
            events,
            vec![
                (
                    6,
                    EndpointEvent::SpeechStart {
                        at_ms: 80,
                        audio_from_ms: 40
                    }
                ),
                (
                    13,
                    EndpointEvent::Paused {
                        voice_end_ms: 240,
                        audio_to_ms: 280
                    }
                ),
                (
                    16,
                    EndpointEvent::SpeechEnd {
                        at_ms: 240,
                        audio_to_ms: 340,
                        voiced_ms: 160
                    }
                ),
            ]
        );
    }

    #[test]
    fn clicks_and_short_bursts_are_not_speech() {
        assert!(run("..#..#..##....", cfg()).is_empty());
        let events = run("..####........", cfg());
        assert!(
            matches!(
                events.last(),
                Some((_, EndpointEvent::Discarded { voiced_ms: 80, .. }))
            ),
            "{events:?}"
        );
    }

    #[test]
    fn short_pauses_do_not_end_the_utterance_and_are_reported() {
        let events: Vec<_> = run("..#####....#####.........", cfg())
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        assert!(
            matches!(
                events.as_slice(),
                [
                    EndpointEvent::SpeechStart { .. },
                    EndpointEvent::Paused {
                        voice_end_ms: 140,
                        ..
                    },
                    EndpointEvent::Resumed { at_ms: 220 },
                    EndpointEvent::Paused { .. },
                    EndpointEvent::SpeechEnd { at_ms: 320, .. },
                ]
            ),
            "{events:?}"
        );
    }

    #[test]
    fn end_now_cuts_the_hangover_short() {
        let mut ep = Endpointer::new(cfg());
        for c in "..######..".chars() {
            ep.push(c == '#');
        }
        assert_eq!(
            ep.progress(),
            SpeechProgress {
                in_speech: true,
                voiced_ms: 120,
                silence_ms: 40
            }
        );
        assert_eq!(
            ep.end_now(),
            Some(EndpointEvent::SpeechEnd {
                at_ms: 160,
                audio_to_ms: 200,
                voiced_ms: 120
            })
        );
        assert!(!ep.in_speech() && ep.end_now().is_none());
        assert_eq!(ep.progress(), SpeechProgress::default());
    }
}
