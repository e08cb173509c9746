//! The streaming text-to-speech seam: the one place a synthesizer, local or cloud, meets the
//! pipeline. A [`Synthesizer`] opens one [`SynthesisStream`] per reply. Text goes in through
//! the stream's [`TextInput`] as the dialogue produces it (the input is a handle of its own,
//! so the thread running the dialogue can hold it while the loop polls the audio); audio
//! comes out of [`SynthesisStream::poll`] with marks that say which text it speaks, so that
//! on a barge-in the conversation keeps exactly what was heard. Cancelling stops the stream
//! at once, mid-sentence included: nothing more comes out of it.
//!
//! Each engine writes one driver over a [`StreamDriver`] (the engine's ends of the same
//! channels), on a thread or a network task of its own.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::TtsError;

/// What the dialogue sends a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextCommand {
    /// More of the reply: a token, a phrase or whole sentences.
    Text(String),
    /// The reply's text is complete: speak what is left.
    Flush,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SynthesisEvent {
    /// The next audio, mono at the synthesizer's rate.
    Audio(Vec<f32>),
    /// `text` is what the stream's audio from sample `start` to `end` says.
    Mark { text: String, start: u64, end: u64 },
    /// All text is spoken; nothing follows.
    Done,
    /// The rest of the reply could not be spoken; nothing follows.
    Failed(String),
}

/// A text-to-speech engine, shared by the conversations that use it.
pub trait Synthesizer: Send + Sync {
    fn name(&self) -> &str;
    /// The rate of the audio its streams produce.
    fn sample_rate(&self) -> u32;
    fn open_stream(&self) -> Result<SynthesisStream, TtsError>;
}

/// Whether a stream has been cancelled, shared by both ends.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The text end of a stream; clones feed the same stream.
#[derive(Debug, Clone)]
pub struct TextInput {
    commands: Sender<TextCommand>,
    cancel: CancelFlag,
    /// When the first text went in, for the synthesizer's latency.
    first_text: Arc<OnceLock<Instant>>,
}

impl TextInput {
    /// Sends more text; false once the stream is cancelled or gone (stop producing). An
    /// empty text sends nothing: it only asks whether the stream still wants text.
    pub fn push(&self, text: &str) -> bool {
        if text.is_empty() {
            return !self.cancel.is_cancelled();
        }
        if !text.trim().is_empty() {
            let _ = self.first_text.set(Instant::now());
        }
        !self.cancel.is_cancelled() && self.commands.send(TextCommand::Text(text.into())).is_ok()
    }

    /// The text is complete.
    pub fn flush(&self) {
        let _ = self.commands.send(TextCommand::Flush);
    }
}

/// One reply's synthesis, as the pipeline holds it.
pub struct SynthesisStream {
    input: TextInput,
    events: Receiver<SynthesisEvent>,
    sample_rate: u32,
    ended: bool,
    /// The first audio has been timed.
    timed: bool,
}

impl SynthesisStream {
    pub fn input(&self) -> TextInput {
        self.input.clone()
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Stops the stream now; its driver stops at its next step.
    pub fn cancel(&mut self) {
        self.input.cancel.cancel();
        self.ended = true;
    }

    /// The next audio or mark, if any is ready. After `Done` or `Failed` (or a cancel),
    /// always None.
    pub fn poll(&mut self) -> Option<SynthesisEvent> {
        if self.ended {
            return None;
        }
        match self.events.try_recv() {
            Ok(event) => Some(self.took(event)),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(self.stopped()),
        }
    }

    /// The next audio or mark, waiting up to `limit` for it (simulated time, where the
    /// synthesizer's work takes no time). A synthesizer that sends nothing for that long
    /// has failed.
    pub fn wait(&mut self, limit: std::time::Duration) -> Option<SynthesisEvent> {
        if self.ended {
            return None;
        }
        match self.events.recv_timeout(limit) {
            Ok(event) => Some(self.took(event)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                self.ended = true;
                Some(SynthesisEvent::Failed(format!(
                    "the synthesizer sent nothing for {} s",
                    limit.as_secs()
                )))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(self.stopped()),
        }
    }

    /// Notes an event taken from the synthesizer: the end, and the first audio's latency.
    fn took(&mut self, event: SynthesisEvent) -> SynthesisEvent {
        self.ended = matches!(event, SynthesisEvent::Done | SynthesisEvent::Failed(_));
        if matches!(event, SynthesisEvent::Audio(_)) && !self.timed {
            self.timed = true;
            if let Some(first) = self.input.first_text.get() {
                crate::telemetry::metrics::global()
                    .synthesizer_latency(first.elapsed().as_secs_f64());
            }
        }
        event
    }

    fn stopped(&mut self) -> SynthesisEvent {
        self.ended = true;
        SynthesisEvent::Failed("the synthesizer stopped without finishing the reply".into())
    }
}

impl Drop for SynthesisStream {
    fn drop(&mut self) {
        self.input.cancel.cancel();
    }
}

/// The engine's end of a stream.
pub struct StreamDriver {
    pub text: Receiver<TextCommand>,
    pub events: Sender<SynthesisEvent>,
    pub cancel: CancelFlag,
}

impl StreamDriver {
    /// Sends an event; false once the pipeline is no longer listening.
    pub fn send(&self, event: SynthesisEvent) -> bool {
        !self.cancel.is_cancelled() && self.events.send(event).is_ok()
    }
}

/// A new stream and the driver's end of it.
pub fn stream_pair(sample_rate: u32) -> (SynthesisStream, StreamDriver) {
    let (commands, text) = mpsc::channel();
    let (events_tx, events) = mpsc::channel();
    let cancel = CancelFlag::default();
    let stream = SynthesisStream {
        input: TextInput {
            commands,
            cancel: cancel.clone(),
            first_text: Arc::default(),
        },
        events,
        sample_rate,
        ended: false,
        timed: false,
    };
    let driver = StreamDriver {
        text,
        events: events_tx,
        cancel,
    };
    (stream, driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_silences_the_stream_and_stops_the_producer() {
        let (mut stream, driver) = stream_pair(16_000);
        let input = stream.input();
        assert!(input.push("Hello."));
        assert_eq!(
            driver.text.recv().unwrap(),
            TextCommand::Text("Hello.".into())
        );
        assert!(driver.send(SynthesisEvent::Audio(vec![0.5])));
        stream.cancel();
        assert_eq!(
            stream.poll(),
            None,
            "audio sent before the cancel is dropped"
        );
        assert!(!input.push("More."));
        assert!(!driver.send(SynthesisEvent::Done));
    }

    #[test]
    fn a_driver_that_goes_away_fails_the_stream_once() {
        let (mut stream, driver) = stream_pair(16_000);
        driver.send(SynthesisEvent::Audio(vec![0.1, 0.2]));
        drop(driver);
        assert_eq!(stream.poll(), Some(SynthesisEvent::Audio(vec![0.1, 0.2])));
        assert!(matches!(stream.poll(), Some(SynthesisEvent::Failed(_))));
        assert_eq!(stream.poll(), None);
    }
}
