//! How a cloud recognizer's words become the pipeline's utterances: the provider's results
//! (text that may still change, text it stands by, the end of its turn) are put together
//! per local utterance, and the session keeps the seam's rule that after `Stopped` exactly
//! one `Final{end_of_turn}` comes — from the provider when it answers in time, else from
//! what was heard so far.

use crate::stt::recognizer::{RecognizerEvent, SpeechHint};

/// What a provider's message says, in the provider's own terms of one turn.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// Its voice detection heard speech start.
    SpeechStarted,
    /// The text after what it stands by, still open to change (replaces the last tail).
    Tail(String),
    /// More text it stands by (follows what it stood by before); the tail is gone.
    Settled(String),
    /// It decided the user finished (or answered a request to finish).
    EndOfTurn,
}

/// A local utterance's text as the provider's results build it.
#[derive(Debug, Default)]
pub struct TurnAssembler {
    /// The local endpointer is in an utterance.
    active: bool,
    settled: String,
    tail: String,
    /// The provider ended its turn and nothing was heard since.
    provider_ended: bool,
    /// `Stopped` came and its final is owed: when it came and the deadline.
    owed: Option<(u64, u64)>,
    finalize_timeout_ms: u64,
}

/// What the session should do after a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Nothing,
    /// Ask the provider to finish the turn now (Deepgram `Finalize`, AssemblyAI
    /// `ForceEndpoint`).
    Finalize,
}

impl TurnAssembler {
    /// An owed final comes from what was heard if the provider does not end its turn within
    /// `finalize_timeout_ms` of `Stopped`.
    pub fn new(finalize_timeout_ms: u64) -> Self {
        Self {
            finalize_timeout_ms,
            ..Default::default()
        }
    }

    pub fn owes_final(&self) -> bool {
        self.owed.is_some()
    }

    /// Whether an utterance is open or owed (its audio must survive a reconnection).
    pub fn in_utterance(&self) -> bool {
        self.active || self.owed.is_some()
    }

    fn text(&self) -> String {
        join(&self.settled, &self.tail)
    }

    fn listening(&self) -> bool {
        self.active || self.owed.is_some()
    }

    fn reset(&mut self) {
        self.settled.clear();
        self.tail.clear();
        self.provider_ended = false;
    }

    /// Forgets the provider's text of the utterance under way: its audio is being sent
    /// again on a new connection, which will say it afresh.
    pub fn restart_text(&mut self) {
        self.reset();
    }

    pub fn hint(
        &mut self,
        hint: SpeechHint,
        now_ms: u64,
        out: &mut Vec<RecognizerEvent>,
    ) -> Request {
        match hint {
            SpeechHint::Started { .. } => {
                self.active = true;
                Request::Nothing
            }
            SpeechHint::Paused { .. } | SpeechHint::Resumed => Request::Nothing,
            SpeechHint::Stopped { .. } => {
                self.active = false;
                if self.owed.is_some() {
                    // Still waiting for the last one: this utterance joins it.
                    return Request::Nothing;
                }
                if self.provider_ended && self.tail.is_empty() {
                    self.final_(true, None, out);
                    return Request::Nothing;
                }
                self.owed = Some((now_ms, now_ms + self.finalize_timeout_ms));
                Request::Finalize
            }
            SpeechHint::TurnEnded | SpeechHint::Discarded => {
                self.active = false;
                if self.owed.is_none() {
                    self.reset();
                }
                Request::Nothing
            }
        }
    }

    /// One message of the provider's. Words it stands by that come with a tail still
    /// changing are the start of an utterance under way, not everything said up to a pause:
    /// they are not given as a final (a turn ended on them would be answered on half a
    /// sentence), only as part of the interim text.
    pub fn heard_message(
        &mut self,
        message: Vec<Heard>,
        now_ms: u64,
        out: &mut Vec<RecognizerEvent>,
    ) {
        let tail_follows = message
            .iter()
            .any(|h| matches!(h, Heard::Tail(t) if !t.trim().is_empty()));
        for heard in message {
            match heard {
                Heard::Settled(text) if tail_follows => self.settle(&text),
                heard => self.heard(heard, now_ms, out),
            }
        }
    }

    fn settle(&mut self, text: &str) {
        self.tail.clear();
        if !text.trim().is_empty() {
            self.settled = join(&self.settled, text.trim());
            self.provider_ended = false;
        }
    }

    pub fn heard(&mut self, heard: Heard, now_ms: u64, out: &mut Vec<RecognizerEvent>) {
        match heard {
            Heard::SpeechStarted => {
                if self.listening() {
                    out.push(RecognizerEvent::SpeechStarted);
                }
            }
            Heard::Tail(text) => {
                if text.trim().is_empty() && self.tail.is_empty() {
                    return;
                }
                self.tail = text.trim().to_string();
                self.provider_ended &= self.tail.is_empty();
                if self.listening() && !self.tail.is_empty() {
                    out.push(RecognizerEvent::Interim { text: self.text() });
                }
            }
            Heard::Settled(text) => {
                self.settle(&text);
                if text.trim().is_empty() {
                    return;
                }
                if self.listening() {
                    out.push(RecognizerEvent::Final {
                        text: self.settled.clone(),
                        end_of_turn: false,
                        latency_ms: None,
                    });
                }
            }
            Heard::EndOfTurn => {
                if let Some((stopped_ms, _)) = self.owed {
                    let latency = now_ms.saturating_sub(stopped_ms) as f64;
                    self.final_(true, Some(latency), out);
                } else if self.active && !self.text().is_empty() {
                    self.provider_ended = true;
                    out.push(RecognizerEvent::Final {
                        text: self.text(),
                        end_of_turn: true,
                        latency_ms: None,
                    });
                } else if !self.active {
                    // A turn the local endpointer never heard (noise, or its own echo).
                    self.reset();
                }
            }
        }
    }

    /// The owed final, from what was heard, once the provider is too late.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<RecognizerEvent>) {
        if let Some((stopped_ms, deadline)) = self.owed {
            if now_ms >= deadline {
                self.final_(true, Some(now_ms.saturating_sub(stopped_ms) as f64), out);
            }
        }
    }

    /// Gives the owed final now from what was heard (the connection is gone).
    pub fn give_up(&mut self, out: &mut Vec<RecognizerEvent>) {
        if self.owed.is_some() {
            self.final_(true, None, out);
        }
    }

    fn final_(
        &mut self,
        end_of_turn: bool,
        latency_ms: Option<f64>,
        out: &mut Vec<RecognizerEvent>,
    ) {
        out.push(RecognizerEvent::Final {
            text: self.text(),
            end_of_turn,
            latency_ms,
        });
        self.owed = None;
        self.reset();
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a} {b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finals(events: &[RecognizerEvent]) -> Vec<(String, bool)> {
        events
            .iter()
            .filter_map(|e| match e {
                RecognizerEvent::Final {
                    text, end_of_turn, ..
                } => Some((text.clone(), *end_of_turn)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn segments_make_the_utterance_and_the_provider_ends_it() {
        let mut t = TurnAssembler::new(700);
        let mut out = Vec::new();
        t.hint(SpeechHint::Started { audio_from_ms: 0 }, 0, &mut out);
        t.heard(Heard::Tail("I'd like".into()), 300, &mut out);
        t.heard(Heard::Settled("I'd like a".into()), 600, &mut out);
        t.heard(Heard::Tail("large".into()), 800, &mut out);
        assert_eq!(
            out.last(),
            Some(&RecognizerEvent::Interim {
                text: "I'd like a large".into()
            })
        );
        t.heard(Heard::Settled("large latte.".into()), 1000, &mut out);
        t.heard(Heard::EndOfTurn, 1000, &mut out);
        assert_eq!(
            finals(&out),
            vec![
                ("I'd like a".into(), false),
                ("I'd like a large latte.".into(), false),
                ("I'd like a large latte.".into(), true)
            ]
        );
        // The local hangover ends later: its owed final is the same text, at once.
        out.clear();
        assert_eq!(
            t.hint(SpeechHint::Stopped { audio_to_ms: 1000 }, 1500, &mut out),
            Request::Nothing
        );
        assert_eq!(finals(&out), vec![("I'd like a large latte.".into(), true)]);
        assert!(!t.owes_final());
    }

    #[test]
    fn words_settled_beside_a_changing_tail_are_not_a_final() {
        // AssemblyAI marks each word final as it goes: "Where" of "Where is my order?" is
        // settled while "is" still changes. A turn must not end on "Where".
        let mut t = TurnAssembler::new(700);
        let mut out = Vec::new();
        t.hint(SpeechHint::Started { audio_from_ms: 0 }, 0, &mut out);
        t.heard_message(
            vec![Heard::Settled("Where".into()), Heard::Tail("is".into())],
            400,
            &mut out,
        );
        assert!(finals(&out).is_empty(), "{out:?}");
        assert_eq!(
            out.last(),
            Some(&RecognizerEvent::Interim {
                text: "Where is".into()
            })
        );
        // All it heard settled, nothing changing: that is the utterance so far.
        t.heard_message(vec![Heard::Settled("is my order?".into())], 900, &mut out);
        assert_eq!(finals(&out), vec![("Where is my order?".into(), false)]);
        t.heard_message(vec![Heard::EndOfTurn], 1000, &mut out);
        assert_eq!(
            finals(&out).last(),
            Some(&("Where is my order?".into(), true))
        );
    }

    #[test]
    fn without_an_end_from_the_provider_the_session_asks_and_then_stops_waiting() {
        let mut t = TurnAssembler::new(700);
        let mut out = Vec::new();
        t.hint(SpeechHint::Started { audio_from_ms: 0 }, 0, &mut out);
        t.heard(Heard::Tail("check my order".into()), 500, &mut out);
        assert_eq!(
            t.hint(SpeechHint::Stopped { audio_to_ms: 900 }, 1500, &mut out),
            Request::Finalize
        );
        assert!(t.owes_final());
        t.tick(2100, &mut out);
        assert!(t.owes_final(), "not yet");
        t.tick(2200, &mut out);
        assert_eq!(finals(&out), vec![("check my order".into(), true)]);
        assert!(!t.owes_final());
    }

    #[test]
    fn the_answer_to_finalize_is_the_owed_final() {
        let mut t = TurnAssembler::new(700);
        let mut out = Vec::new();
        t.hint(SpeechHint::Started { audio_from_ms: 0 }, 0, &mut out);
        t.heard(Heard::Tail("yes".into()), 300, &mut out);
        t.hint(SpeechHint::Stopped { audio_to_ms: 400 }, 1000, &mut out);
        t.heard(Heard::Settled("Yes.".into()), 1100, &mut out);
        t.heard(Heard::EndOfTurn, 1100, &mut out);
        let last = out.last().unwrap();
        assert_eq!(
            last,
            &RecognizerEvent::Final {
                text: "Yes.".into(),
                end_of_turn: true,
                latency_ms: Some(100.0)
            }
        );
        t.tick(5000, &mut out);
        assert_eq!(
            finals(&out).iter().filter(|f| f.1).count(),
            1,
            "exactly one"
        );
    }

    #[test]
    fn nothing_heard_is_an_empty_final_and_noise_leaves_nothing_behind() {
        let mut t = TurnAssembler::new(500);
        let mut out = Vec::new();
        t.hint(SpeechHint::Started { audio_from_ms: 0 }, 0, &mut out);
        t.hint(SpeechHint::Stopped { audio_to_ms: 300 }, 900, &mut out);
        t.tick(1400, &mut out);
        assert_eq!(finals(&out), vec![(String::new(), true)]);
        // A provider turn over audio the endpointer discarded is not the next utterance's.
        out.clear();
        t.hint(
            SpeechHint::Started {
                audio_from_ms: 2000,
            },
            2000,
            &mut out,
        );
        t.heard(Heard::Settled("hmm".into()), 2100, &mut out);
        t.hint(SpeechHint::Discarded, 2200, &mut out);
        t.hint(
            SpeechHint::Started {
                audio_from_ms: 3000,
            },
            3000,
            &mut out,
        );
        out.clear();
        t.heard(Heard::Settled("Hello.".into()), 3500, &mut out);
        assert_eq!(finals(&out), vec![("Hello.".into(), false)]);
    }

    #[test]
    fn text_after_the_turn_ended_starts_the_next_utterance() {
        let mut t = TurnAssembler::new(500);
        let mut out = Vec::new();
        t.hint(SpeechHint::Started { audio_from_ms: 0 }, 0, &mut out);
        t.heard(Heard::Settled("Book a table.".into()), 500, &mut out);
        t.heard(Heard::EndOfTurn, 500, &mut out);
        t.hint(SpeechHint::TurnEnded, 700, &mut out);
        out.clear();
        // The provider hears the next words before the local endpointer does.
        t.heard(Heard::Tail("for two".into()), 900, &mut out);
        assert!(out.is_empty(), "not reported outside an utterance");
        t.hint(SpeechHint::Started { audio_from_ms: 850 }, 950, &mut out);
        t.heard(Heard::Settled("For two.".into()), 1200, &mut out);
        assert_eq!(finals(&out), vec![("For two.".into(), false)]);
    }
}
