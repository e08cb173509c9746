//! A cloud recognizer with a local one behind it: when the cloud session fails for good
//! (a refused key, a provider that stays unreachable), the conversation goes on with the
//! local engine, which first hears again the utterance the cloud left unanswered, so no
//! turn is lost.

use std::collections::VecDeque;
use std::sync::Arc;

use super::history::AudioHistory;
use super::recognizer::{
    Recognizer, RecognizerCapabilities, RecognizerEvent, RecognizerSession, SpeechHint,
};
use super::SttError;

/// Audio kept for the local engine to hear again.
const HISTORY_SECONDS: u32 = 30;

pub struct FailoverRecognizer {
    primary: Arc<dyn Recognizer>,
    fallback: Option<Arc<dyn Recognizer>>,
}

impl FailoverRecognizer {
    /// `primary`, and `fallback` (if any) when a session of it fails.
    pub fn new(primary: Arc<dyn Recognizer>, fallback: Option<Arc<dyn Recognizer>>) -> Self {
        Self { primary, fallback }
    }
}

impl Recognizer for FailoverRecognizer {
    fn name(&self) -> &str {
        self.primary.name()
    }

    fn capabilities(&self) -> RecognizerCapabilities {
        self.primary.capabilities()
    }

    fn open_session(&self) -> Result<Box<dyn RecognizerSession>, SttError> {
        Ok(Box::new(FailoverSession {
            active: Active::Primary(self.primary.open_session()?),
            fallback: self.fallback.clone(),
            history: AudioHistory::new(HISTORY_SECONDS),
            utterance_from_ms: None,
            owed: Vec::new(),
            phrases: Vec::new(),
            events: VecDeque::new(),
        }))
    }
}

enum Active {
    Primary(Box<dyn RecognizerSession>),
    /// The local engine, its timeline starting at `offset_ms` of the session's.
    Fallback {
        session: Box<dyn RecognizerSession>,
        offset_ms: u64,
    },
    /// Neither: every utterance is answered with an empty final.
    None,
}

struct FailoverSession {
    active: Active,
    fallback: Option<Arc<dyn Recognizer>>,
    history: AudioHistory,
    /// Where the utterance under way began.
    utterance_from_ms: Option<u64>,
    /// Utterances whose final is owed: where each began and ended.
    owed: Vec<(u64, u64)>,
    phrases: Vec<String>,
    events: VecDeque<RecognizerEvent>,
}

impl FailoverSession {
    fn track(&mut self, hint: SpeechHint) {
        match hint {
            SpeechHint::Started { audio_from_ms } => self.utterance_from_ms = Some(audio_from_ms),
            SpeechHint::Stopped { audio_to_ms } => {
                let from = self.utterance_from_ms.take().unwrap_or(audio_to_ms);
                self.owed.push((from, audio_to_ms));
            }
            SpeechHint::TurnEnded | SpeechHint::Discarded => self.utterance_from_ms = None,
            SpeechHint::Paused { .. } | SpeechHint::Resumed => {}
        }
    }

    /// The primary failed: go on with the local engine, or with nothing.
    fn fail_over(&mut self, message: String) {
        let local = self
            .fallback
            .as_ref()
            .and_then(|f| f.open_session().ok().map(|s| (f.name().to_string(), s)));
        let Some((name, mut session)) = local else {
            self.events.push_back(RecognizerEvent::Error {
                message: format!("{message}; no local recognizer to go on with"),
            });
            for _ in self.owed.drain(..) {
                self.events.push_back(empty_final());
            }
            self.active = Active::None;
            return;
        };
        self.events.push_back(RecognizerEvent::Error {
            message: format!("{message}; going on with {name}"),
        });
        // The local engine hears again from the first unanswered utterance (or the one under
        // way) on; only the last owed one is decoded, earlier ones are answered empty.
        let offset_ms = self
            .owed
            .first()
            .map(|o| o.0)
            .or(self.utterance_from_ms)
            .unwrap_or_else(|| self.history.end_ms())
            .max(self.history.start_ms());
        session.expect_phrases(&self.phrases);
        session.push_audio(&self.history.since(offset_ms));
        if let Some((_, to)) = self.owed.last().copied() {
            for _ in 1..self.owed.len() {
                self.events.push_back(empty_final());
            }
            session.hint(SpeechHint::Started { audio_from_ms: 0 });
            session.hint(SpeechHint::Stopped {
                audio_to_ms: to.saturating_sub(offset_ms),
            });
            self.owed.clear();
        }
        if let Some(from) = self.utterance_from_ms {
            session.hint(SpeechHint::Started {
                audio_from_ms: from.saturating_sub(offset_ms),
            });
        }
        self.active = Active::Fallback { session, offset_ms };
    }
}

fn empty_final() -> RecognizerEvent {
    RecognizerEvent::Final {
        text: String::new(),
        end_of_turn: true,
        latency_ms: None,
    }
}

fn shifted(hint: SpeechHint, offset_ms: u64) -> SpeechHint {
    match hint {
        SpeechHint::Started { audio_from_ms } => SpeechHint::Started {
            audio_from_ms: audio_from_ms.saturating_sub(offset_ms),
        },
        SpeechHint::Paused { audio_to_ms } => SpeechHint::Paused {
            audio_to_ms: audio_to_ms.saturating_sub(offset_ms),
        },
        SpeechHint::Stopped { audio_to_ms } => SpeechHint::Stopped {
            audio_to_ms: audio_to_ms.saturating_sub(offset_ms),
        },
        other => other,
    }
}

impl RecognizerSession for FailoverSession {
    fn push_audio(&mut self, samples: &[f32]) {
        self.history.push(samples);
        match &mut self.active {
            Active::Primary(s) | Active::Fallback { session: s, .. } => s.push_audio(samples),
            Active::None => {}
        }
    }

    fn hint(&mut self, hint: SpeechHint) {
        self.track(hint);
        match &mut self.active {
            Active::Primary(s) => s.hint(hint),
            Active::Fallback { session, offset_ms } => session.hint(shifted(hint, *offset_ms)),
            Active::None => {
                if matches!(hint, SpeechHint::Stopped { .. }) {
                    self.owed.clear();
                    self.events.push_back(empty_final());
                }
            }
        }
    }

    fn expect_phrases(&mut self, phrases: &[String]) {
        self.phrases = phrases.to_vec();
        match &mut self.active {
            Active::Primary(s) | Active::Fallback { session: s, .. } => s.expect_phrases(phrases),
            Active::None => {}
        }
    }

    fn poll(&mut self) -> Option<RecognizerEvent> {
        if let Some(event) = self.events.pop_front() {
            return Some(event);
        }
        let event = match &mut self.active {
            Active::Primary(s) | Active::Fallback { session: s, .. } => s.poll()?,
            Active::None => return None,
        };
        match event {
            RecognizerEvent::Failed { message } if matches!(self.active, Active::Primary(_)) => {
                self.fail_over(message);
                self.events.pop_front()
            }
            RecognizerEvent::Final {
                end_of_turn: true, ..
            } => {
                if !self.owed.is_empty() {
                    self.owed.remove(0);
                }
                Some(event)
            }
            other => Some(other),
        }
    }

    fn finish(&mut self) {
        match &mut self.active {
            Active::Primary(s) | Active::Fallback { session: s, .. } => s.finish(),
            Active::None => {}
        }
    }

    fn busy(&self) -> bool {
        !self.events.is_empty()
            || match &self.active {
                Active::Primary(s) | Active::Fallback { session: s, .. } => s.busy(),
                Active::None => false,
            }
    }

    fn settle(&mut self, limit: std::time::Duration) {
        if let Active::Primary(s) | Active::Fallback { session: s, .. } = &mut self.active {
            s.settle(limit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A recognizer whose sessions record what they are given and answer each `Stopped`
    /// with the length of audio they heard; the first can be made to fail.
    struct Recording {
        name: &'static str,
        fail_at_poll: bool,
        log: Arc<Mutex<Vec<String>>>,
    }

    struct RecordingSession {
        fail: bool,
        samples: usize,
        log: Arc<Mutex<Vec<String>>>,
        events: VecDeque<RecognizerEvent>,
        name: &'static str,
    }

    impl Recognizer for Recording {
        fn name(&self) -> &str {
            self.name
        }
        fn capabilities(&self) -> RecognizerCapabilities {
            RecognizerCapabilities {
                interim_results: false,
                endpointing: false,
            }
        }
        fn open_session(&self) -> Result<Box<dyn RecognizerSession>, SttError> {
            Ok(Box::new(RecordingSession {
                fail: self.fail_at_poll,
                samples: 0,
                log: self.log.clone(),
                events: VecDeque::new(),
                name: self.name,
            }))
        }
    }

    impl RecognizerSession for RecordingSession {
        fn push_audio(&mut self, samples: &[f32]) {
            self.samples += samples.len();
        }
        fn hint(&mut self, hint: SpeechHint) {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} {hint:?}", self.name));
            if let SpeechHint::Stopped { .. } = hint {
                if !self.fail {
                    self.events.push_back(RecognizerEvent::Final {
                        text: format!("{} samples", self.samples),
                        end_of_turn: true,
                        latency_ms: None,
                    });
                }
            }
        }
        fn expect_phrases(&mut self, _: &[String]) {}
        fn poll(&mut self) -> Option<RecognizerEvent> {
            if self.fail {
                self.fail = false;
                return Some(RecognizerEvent::Failed {
                    message: "Deepgram refused the key (HTTP 401); check DEEPGRAM_API_KEY".into(),
                });
            }
            self.events.pop_front()
        }
        fn busy(&self) -> bool {
            !self.events.is_empty()
        }
    }

    fn recognizers(fallback: bool) -> (FailoverRecognizer, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let cloud = Recording {
            name: "cloud",
            fail_at_poll: true,
            log: log.clone(),
        };
        let local = Recording {
            name: "local",
            fail_at_poll: false,
            log: log.clone(),
        };
        let fallback: Option<Arc<dyn Recognizer>> = fallback.then(|| Arc::new(local) as _);
        (FailoverRecognizer::new(Arc::new(cloud), fallback), log)
    }

    #[test]
    fn the_local_engine_hears_the_unanswered_utterance_again() {
        let (recognizer, log) = recognizers(true);
        let mut s = recognizer.open_session().unwrap();
        s.push_audio(&vec![0.0; 16_000]); // 1 s before the utterance
        s.hint(SpeechHint::Started {
            audio_from_ms: 1000,
        });
        s.push_audio(&vec![0.1; 8_000]);
        s.hint(SpeechHint::Stopped { audio_to_ms: 1500 });
        let error = s.poll().unwrap();
        assert!(
            matches!(&error, RecognizerEvent::Error { message } if message.contains("going on with local")),
            "{error:?}"
        );
        assert_eq!(
            s.poll(),
            Some(RecognizerEvent::Final {
                text: "8000 samples".into(),
                end_of_turn: true,
                latency_ms: None
            }),
            "the utterance, and only it, decoded locally"
        );
        // Later hints go to the local engine, on its own timeline.
        s.hint(SpeechHint::Started {
            audio_from_ms: 2000,
        });
        let log = log.lock().unwrap();
        assert_eq!(
            log[log.len() - 3..],
            [
                "local Started { audio_from_ms: 0 }",
                "local Stopped { audio_to_ms: 500 }",
                "local Started { audio_from_ms: 1000 }"
            ],
            "{log:?}"
        );
    }

    #[test]
    fn without_a_local_engine_every_utterance_gets_an_empty_final() {
        let (recognizer, _) = recognizers(false);
        let mut s = recognizer.open_session().unwrap();
        s.hint(SpeechHint::Started { audio_from_ms: 0 });
        s.hint(SpeechHint::Stopped { audio_to_ms: 500 });
        assert!(matches!(s.poll(), Some(RecognizerEvent::Error { .. })));
        assert_eq!(s.poll(), Some(empty_final()), "the owed one");
        s.hint(SpeechHint::Started {
            audio_from_ms: 1000,
        });
        s.hint(SpeechHint::Stopped { audio_to_ms: 1500 });
        assert_eq!(s.poll(), Some(empty_final()), "and each later one");
        assert_eq!(s.poll(), None);
    }
}
