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
    /// The brain handed the conversation to a person (what it sent, as JSON).
    Handoff(serde_json::Value),
}

pub fn spawn(mut brain: Box<dyn Brain>) -> (Sender<ReplyJob>, Receiver<ReplyMsg>, JoinHandle<()>) {
    let (job_tx, job_rx) = mpsc::channel::<ReplyJob>();
    let (msg_tx, msg_rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("hark-reply".into())
        .spawn(move || {
            // What to listen for before the first turn.
            let _ = msg_tx.send(ReplyMsg::Phrases(brain.expected_phrases()));
            for job in job_rx {
                match job {
                    ReplyJob::Interrupted { heard } => brain.interrupted(&heard),
                    ReplyJob::Measured { measure, ms } => brain.measured(measure, ms),
                    ReplyJob::Respond { turn, input, text } => {
                        let result = respond(brain.as_mut(), input, &text);
                        text.flush();
                        let _ = msg_tx.send(ReplyMsg::Phrases(brain.expected_phrases()));
                        if let Some(handoff) = brain.take_handoff() {
                            let _ = msg_tx.send(ReplyMsg::Handoff(handoff));
                        }
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
