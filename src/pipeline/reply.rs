//! The reply worker: the dialogue's brain on a thread of its own, so that thinking (an
//! intent model, a language model over the network) never stalls the loop. It answers each
//! request by pushing text into the synthesis stream the loop opened for that reply, as the
//! brain produces it.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use super::turn::ReplyInput;
use crate::dialogue::Brain;
use crate::telemetry::metrics::Measure;
use crate::tts::stream::TextInput;

pub enum ReplyJob {
    Respond {
        turn: u64,
        input: ReplyInput,
        text: TextInput,
    },
    /// The last reply was cut off; only `heard` reached the user.
    Interrupted { heard: String },
    /// Work out the reply to `text` before the turn is over; what can be said now goes into
    /// `text_input` (its audio is made, not played).
    Prepare { text: String, input: TextInput },
    /// The turn ended on the words a reply was prepared for: commit it as reply `turn`.
    CommitPrepared { turn: u64, text: String },
    /// The user went on: drop the prepared reply.
    DropPrepared,
    /// The loop measured a latency of the conversation.
    Measured { measure: Measure, ms: f64 },
}

pub enum ReplyMsg {
    /// The brain is done with reply `turn` (its text is flushed into the stream).
    Done {
        turn: u64,
    },
    Failed {
        turn: u64,
        message: String,
    },
    /// Phrases the next utterance is likely to contain.
    Phrases(Vec<String>),
    /// The phrases of the domain's values (sent once, first).
    ValuePhrases(Vec<String>),
    /// The brain handed the conversation to a person (what it sent, as JSON).
    Handoff(serde_json::Value),
    /// Something went wrong that the client should know of (the conversation could not be
    /// saved); the conversation goes on.
    Fault(String),
    /// The reply to `text` is prepared: whether it can be said at once (its audio is on the
    /// way), and whether the words answer what was asked.
    Prepared {
        text: String,
        speakable: bool,
        answers: Option<bool>,
    },
    /// The prepared reply no longer held when the turn ended (nothing was committed): reply
    /// `turn` must be worked out afresh.
    Stale {
        turn: u64,
    },
}

pub fn spawn(mut brain: Box<dyn Brain>) -> (Sender<ReplyJob>, Receiver<ReplyMsg>, JoinHandle<()>) {
    let (job_tx, job_rx) = mpsc::channel::<ReplyJob>();
    let (msg_tx, msg_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("hark-reply".into())
        .spawn(move || {
            // What to listen for before the first turn.
            let _ = msg_tx.send(ReplyMsg::ValuePhrases(brain.value_phrases()));
            let _ = msg_tx.send(ReplyMsg::Phrases(brain.expected_phrases()));
            for job in job_rx {
                match job {
                    ReplyJob::Interrupted { heard } => brain.interrupted(&heard),
                    ReplyJob::Measured { measure, ms } => brain.measured(measure, ms),
                    ReplyJob::Prepare { text, input } => {
                        let _ = msg_tx.send(prepare(brain.as_mut(), text, &input));
                    }
                    ReplyJob::DropPrepared => brain.drop_prepared(),
                    ReplyJob::CommitPrepared { turn, text } => {
                        if !brain.commit_prepared(&text) {
                            let _ = msg_tx.send(ReplyMsg::Stale { turn });
                            continue;
                        }
                        let _ = msg_tx.send(ReplyMsg::Phrases(brain.expected_phrases()));
                        report(brain.as_mut(), &msg_tx);
                        if msg_tx.send(ReplyMsg::Done { turn }).is_err() {
                            break;
                        }
                    }
                    ReplyJob::Respond { turn, input, text } => {
                        let result = respond(brain.as_mut(), input, &text);
                        text.flush();
                        let _ = msg_tx.send(ReplyMsg::Phrases(brain.expected_phrases()));
                        report(brain.as_mut(), &msg_tx);
                        let end = match result {
                            Ok(()) => ReplyMsg::Done { turn },
                            Err(message) => ReplyMsg::Failed { turn, message },
                        };
                        if msg_tx.send(end).is_err() {
                            break;
                        }
                    }
                }
            }
        })
        .expect("spawn the reply thread");
    (job_tx, msg_rx, handle)
}

/// What the last reply left for the loop to report: a handoff, a fault.
fn report(brain: &mut dyn Brain, msg_tx: &Sender<ReplyMsg>) {
    if let Some(handoff) = brain.take_handoff() {
        let _ = msg_tx.send(ReplyMsg::Handoff(handoff));
    }
    if let Some(message) = brain.take_fault() {
        let _ = msg_tx.send(ReplyMsg::Fault(message));
    }
}

/// The reply to `text` worked out ahead: what can be said now goes into `input` (and is
/// synthesized, not played); the message says what was prepared.
fn prepare(brain: &mut dyn Brain, text: String, input: &TextInput) -> ReplyMsg {
    let prepared = brain.prepare(&text);
    let answers = prepared.as_ref().and_then(|p| p.answers);
    let reply = prepared.and_then(|p| p.reply);
    if let Some(reply) = &reply {
        input.push(reply);
        input.flush();
    }
    ReplyMsg::Prepared {
        text,
        speakable: reply.is_some(),
        answers,
    }
}

fn respond(brain: &mut dyn Brain, input: ReplyInput, text: &TextInput) -> Result<(), String> {
    match input {
        // The stream refuses text once the reply is cancelled: the brain then stops.
        ReplyInput::User(said) => brain
            .respond(&said, &mut |piece| text.push(piece))
            .map_err(|e| e.to_string()),
        ReplyInput::Greeting => {
            if let Some(greeting) = brain.greeting() {
                text.push(&greeting);
            }
            Ok(())
        }
        ReplyInput::Silence => {
            if let Some(prompt) = brain.silence() {
                text.push(&prompt);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::BrainError;
    use crate::tts::stream::{stream_pair, TextCommand};

    /// A brain whose store fails on its first turn.
    struct Unsaved {
        fault: Option<String>,
    }

    impl Brain for Unsaved {
        fn respond(
            &mut self,
            _user_text: &str,
            emit: &mut dyn FnMut(&str) -> bool,
        ) -> Result<(), BrainError> {
            emit("Okay.");
            Ok(())
        }

        fn take_fault(&mut self) -> Option<String> {
            self.fault.take()
        }
    }

    #[test]
    fn a_fault_of_the_brain_reaches_the_loop_once_beside_the_reply() {
        let (jobs, msgs, worker) = spawn(Box::new(Unsaved {
            fault: Some("not saved".into()),
        }));
        let mut faults = Vec::new();
        for turn in 0..2 {
            let (stream, driver) = stream_pair(16_000);
            jobs.send(ReplyJob::Respond {
                turn,
                input: ReplyInput::User("hi".into()),
                text: stream.input(),
            })
            .unwrap();
            loop {
                match msgs.recv().unwrap() {
                    ReplyMsg::Fault(message) => faults.push(message),
                    ReplyMsg::Done { .. } => break,
                    _ => {}
                }
            }
            let said: Vec<_> = driver.text.try_iter().collect();
            assert!(matches!(&said[0], TextCommand::Text(t) if t == "Okay."));
        }
        drop(jobs);
        worker.join().unwrap();
        assert_eq!(faults, vec!["not saved".to_string()]);
    }
}
