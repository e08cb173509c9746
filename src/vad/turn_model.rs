//! The end-of-turn model on a thread of its own, shared by every conversation of a process
//! (as the Whisper decode queue is): a conversation hands it the utterance's audio at a
//! pause and reads the answer a few tens of milliseconds later, so nothing on the loop's
//! thread waits on inference. Buffers go back and forth, so a conversation allocates none
//! once it has spoken a few times.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use super::smart_turn::{SmartTurn, WINDOW_SAMPLES};

struct Job {
    audio: Vec<f32>,
    tag: u64,
    reply: Sender<Heard>,
}

/// The model's answer for the audio handed over with `tag`: the probability that the
/// speaker has finished (None if inference failed), and the buffer back.
struct Heard {
    tag: u64,
    complete: Option<f32>,
    audio: Vec<f32>,
}

/// The model's thread.
pub struct TurnModel {
    jobs: Sender<Job>,
}

impl TurnModel {
    /// Starts the thread that owns `model`.
    pub fn start(mut model: SmartTurn) -> Arc<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("hark-turn".into())
            .spawn(move || {
                let mut warned = false;
                for job in queue {
                    let complete = match model.complete(&job.audio) {
                        Ok(p) => Some(p),
                        Err(e) => {
                            if !std::mem::replace(&mut warned, true) {
                                tracing::warn!(error = %e, "the end-of-turn model failed; turns end on the transcript alone");
                            }
                            None
                        }
                    };
                    let _ = job.reply.send(Heard {
                        tag: job.tag,
                        complete,
                        audio: job.audio,
                    });
                }
            })
            .expect("spawn the end-of-turn model's thread");
        Arc::new(Self { jobs })
    }

    /// A conversation's way in.
    pub fn client(self: &Arc<Self>) -> TurnModelClient {
        let (reply, results) = mpsc::channel();
        TurnModelClient {
            model: self.clone(),
            reply,
            results,
            in_flight: 0,
            spare: Vec::new(),
        }
    }
}

/// One conversation's questions to the model.
pub struct TurnModelClient {
    model: Arc<TurnModel>,
    reply: Sender<Heard>,
    results: Receiver<Heard>,
    in_flight: usize,
    /// Buffers the model has handed back.
    spare: Vec<Vec<f32>>,
}

impl TurnModelClient {
    /// Asks whether the speaker has finished at the end of `audio` (16 kHz; only its last
    /// 8 s are heard). The answer comes back tagged `tag`.
    pub fn ask(&mut self, audio: impl ExactSizeIterator<Item = f32>, tag: u64) {
        let mut buffer = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(WINDOW_SAMPLES));
        buffer.clear();
        let skip = audio.len().saturating_sub(WINDOW_SAMPLES);
        buffer.extend(audio.skip(skip));
        let job = Job {
            audio: buffer,
            tag,
            reply: self.reply.clone(),
        };
        if self.model.jobs.send(job).is_ok() {
            self.in_flight += 1;
        }
    }

    /// An answer that has come back: (tag, probability that the speaker has finished).
    pub fn poll(&mut self) -> Option<(u64, Option<f32>)> {
        let heard = self.results.try_recv().ok()?;
        Some(self.took(heard))
    }

    /// Waits, up to `limit`, for every answer still owed (simulated time, where the model
    /// takes no time); returns them.
    pub fn settle(&mut self, limit: Duration) -> Vec<(u64, Option<f32>)> {
        let mut out = Vec::new();
        while self.in_flight > 0 {
            match self.results.recv_timeout(limit) {
                Ok(heard) => out.push(self.took(heard)),
                Err(_) => break,
            }
        }
        out
    }

    fn took(&mut self, heard: Heard) -> (u64, Option<f32>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.spare.push(heard.audio);
        (heard.tag, heard.complete)
    }
}
