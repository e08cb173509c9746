//! The conversation's event log: one JSON object per line, each stamped with milliseconds on
//! the input audio's timeline, so latencies can be read off the log (or checked against the
//! audio itself).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Turn-taking states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnState {
    Listening,
    UserSpeaking,
    Thinking,
    Speaking,
}

/// Why reply audio stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Finished,
    BargeIn,
    /// The user went on talking before it was heard, or a newer reply took its place.
    Superseded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    SpeechStart {
        at_ms: u64,
    },
    SpeechEnd {
        at_ms: u64,
    },
    /// Voiced audio too short to be speech, ignored.
    Noise {
        voiced_ms: u64,
    },
    Partial {
        text: String,
    },
    Final {
        text: String,
        stt_ms: f64,
    },
    /// What is known at a pause of the user's: the end-of-turn model's probability that
    /// they have finished, whether the transcript reads finished, and the silence that will
    /// end the turn.
    EndOfTurn {
        #[serde(skip_serializing_if = "Option::is_none")]
        complete: Option<f32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        text_complete: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        answers: Option<bool>,
        wait_ms: u64,
    },
    State {
        from: TurnState,
        to: TurnState,
    },
    Reply {
        turn: u64,
        text: String,
    },
    AudioOutStart {
        turn: u64,
    },
    AudioOutStop {
        turn: u64,
        reason: StopReason,
    },
    /// Playback paused because the user started talking; it resumes if that was only a
    /// backchannel or noise.
    PlaybackPaused {
        turn: u64,
    },
    PlaybackResumed {
        turn: u64,
    },
    /// The conversation went to a person: the transcript, slots, summary and user id.
    Handoff {
        handoff: serde_json::Value,
    },
    /// The user interrupted: only `spoken` (the part of the reply that was played) counts.
    BargeIn {
        turn: u64,
        spoken: String,
    },
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedEvent {
    pub t_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// Called with each event as it is logged.
pub type EventObserver = Box<dyn FnMut(&TimedEvent)>;

/// Passes each event on as it happens: to a JSONL file, to an observer, and (only when
/// made with [`EventLog::recording`]) into memory.
#[derive(Default)]
pub struct EventLog {
    /// Every event so far, kept only when asked: tests and benchmarks read them back, while
    /// a kiosk's or a server's conversation runs for hours.
    events: Option<Vec<TimedEvent>>,
    file: Option<std::io::BufWriter<std::fs::File>>,
    write_failed: bool,
    observer: Option<EventObserver>,
}

/// The event as a file keeps it: personal data in what was said masked (`redact`); a
/// handoff's every string too (the person taking over gets it whole, the file does not).
fn redacted(event: &Event) -> Event {
    use super::redact::redact;
    match event {
        Event::Partial { text } => Event::Partial { text: redact(text) },
        Event::Final { text, stt_ms } => Event::Final {
            text: redact(text),
            stt_ms: *stt_ms,
        },
        Event::Reply { turn, text } => Event::Reply {
            turn: *turn,
            text: redact(text),
        },
        Event::BargeIn { turn, spoken } => Event::BargeIn {
            turn: *turn,
            spoken: redact(spoken),
        },
        Event::Handoff { handoff } => Event::Handoff {
            handoff: redacted_json(handoff),
        },
        other => other.clone(),
    }
}

fn redacted_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(super::redact::redact(s)),
        Value::Array(items) => Value::Array(items.iter().map(redacted_json).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| match v {
                    // Slot values are never logged, only which slots were filled.
                    Value::Object(slots) if k == "slots" => (
                        k.clone(),
                        Value::Object(
                            slots
                                .keys()
                                .map(|name| (name.clone(), Value::String("[redacted]".into())))
                                .collect(),
                        ),
                    ),
                    _ => (k.clone(), redacted_json(v)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

impl EventLog {
    /// A log that keeps nothing in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log that also keeps every event, for [`EventLog::events`].
    pub fn recording() -> Self {
        Self {
            events: Some(Vec::new()),
            ..Self::default()
        }
    }

    pub fn to_file(path: &Path) -> std::io::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        Ok(Self {
            events: None,
            file: Some(std::io::BufWriter::new(std::fs::File::create(path)?)),
            write_failed: false,
            observer: None,
        })
    }

    /// Calls `observer` with every event from now on (e.g. to print the conversation live).
    pub fn on_event(&mut self, observer: EventObserver) {
        self.observer = Some(observer);
    }

    pub fn push(&mut self, t_ms: u64, event: Event) {
        let timed = TimedEvent { t_ms, event };
        if let Some(file) = self.file.as_mut() {
            // A failing log (full disk) must not stop the conversation; it is reported once
            // at the end through `write_failed`.
            let kept = TimedEvent {
                t_ms,
                event: redacted(&timed.event),
            };
            let line = serde_json::to_string(&kept).unwrap_or_default();
            // One write of the whole line: a process killed mid-way leaves whole lines.
            let whole = format!("{line}\n");
            if file
                .write_all(whole.as_bytes())
                .and_then(|_| file.flush())
                .is_err()
            {
                self.write_failed = true;
            }
        }
        if let Some(observer) = self.observer.as_mut() {
            observer(&timed);
        }
        if let Some(events) = self.events.as_mut() {
            events.push(timed);
        }
    }

    /// The events so far; none unless the log is [`EventLog::recording`].
    pub fn events(&self) -> &[TimedEvent] {
        self.events.as_deref().unwrap_or_default()
    }

    pub fn write_failed(&self) -> bool {
        self.write_failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_keeps_events_in_memory_only_when_recording() {
        let said = || Event::Final {
            text: "hello".into(),
            stt_ms: 1.0,
        };
        let seen = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = seen.clone();
        let mut passing = EventLog::new();
        passing.on_event(Box::new(move |_| counter.set(counter.get() + 1)));
        for t in 0..1000 {
            passing.push(t, said());
        }
        assert_eq!(seen.get(), 1000, "each event passed on");
        assert!(
            passing.events().is_empty(),
            "an hour-long conversation keeps none"
        );
        let mut recording = EventLog::recording();
        recording.push(0, said());
        assert_eq!(recording.events().len(), 1);
    }
}
