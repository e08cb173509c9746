//! One decode queue per loaded Whisper model, shared by every conversation that uses it.
//! Decodes run one at a time (see `WhisperModel`), so the order they run in decides who
//! waits: a final transcript, or a decode that may end the turn, goes before a partial
//! that only updates the display, whoever's it is; and a partial that is still waiting when
//! its conversation asks for a newer one is replaced, never queued behind it. Under load a
//! turn is answered later, but never lost behind a backlog of stale partials.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::threads::ThreadBudget;
use super::{WhisperModel, WhisperSession};
use crate::stt::{DecodeWindow, SttError, TranscribeOptions, Transcriber};

/// Why a decode is asked for, highest priority last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DecodeKind {
    /// The growing utterance, for interim text.
    Partial,
    /// Everything said so far, at a pause: a candidate final.
    Speculative,
    /// The finished utterance.
    Final,
}

/// Which utterance of which stream a decode belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeTag {
    pub utterance: u64,
    /// Bumped each time the user goes on talking after a pause: an older speculative
    /// decode no longer covers what was said.
    pub generation: u32,
    pub kind: DecodeKind,
}

pub struct DecodeRequest {
    pub tag: DecodeTag,
    pub audio: Vec<f32>,
    pub prompt: Option<String>,
    /// A tighter cap than the one derived from the audio's length.
    pub max_tokens: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Decoded {
    pub tag: DecodeTag,
    pub text: Result<String, String>,
    /// Time in the decoder, and waiting in the queue before it.
    pub decode_ms: f64,
    pub queued_ms: f64,
}

struct Job {
    request: DecodeRequest,
    client: u64,
    seq: u64,
    queued_at: Instant,
    reply: Sender<Decoded>,
}

#[derive(Default)]
struct Pending {
    jobs: Vec<Job>,
    next_seq: u64,
    next_client: u64,
    /// Handles (the queue and its clients) still alive; the worker stops at none.
    handles: usize,
}

struct Shared {
    pending: Mutex<Pending>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // The lock guards a plain list; a panic elsewhere cannot leave it half-changed.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The queue and its decoding thread.
pub struct DecodeQueue {
    shared: Arc<Shared>,
}

impl DecodeQueue {
    /// Starts the decoding thread for `model`, with its own decoder state.
    pub fn start(model: &WhisperModel, threads: ThreadBudget) -> Result<Self, SttError> {
        let mut session = model.session()?;
        // The first decode sets up the decoder's buffers: done here, it does not make the
        // first thing a user says the slowest to be heard.
        session.warm_up(&TranscribeOptions {
            window: DecodeWindow::Trimmed,
            ..Default::default()
        })?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                handles: 1,
                ..Default::default()
            }),
            ready: Condvar::new(),
        });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("hark-whisper".into())
            .spawn(move || decode_jobs(&worker, session, threads))
            .map_err(|e| SttError::Decode(format!("no thread for decoding: {e}")))?;
        Ok(Self { shared })
    }

    /// A handle for one stream: its own results channel.
    pub fn client(&self) -> QueueClient {
        let mut pending = self.shared.lock();
        pending.handles += 1;
        let id = pending.next_client;
        pending.next_client += 1;
        drop(pending);
        let (reply, results) = mpsc::channel();
        QueueClient {
            shared: self.shared.clone(),
            id,
            reply,
            results,
        }
    }
}

impl Drop for DecodeQueue {
    fn drop(&mut self) {
        release(&self.shared);
    }
}

fn release(shared: &Shared) {
    let mut pending = shared.lock();
    pending.handles -= 1;
    drop(pending);
    shared.ready.notify_all();
}

/// One stream's access to the queue.
pub struct QueueClient {
    shared: Arc<Shared>,
    id: u64,
    reply: Sender<Decoded>,
    results: Receiver<Decoded>,
}

impl QueueClient {
    /// Queues a decode. A partial replaces this client's partial that has not started yet
    /// (it would only be stale); returns whether one was replaced.
    pub fn submit(&self, request: DecodeRequest) -> bool {
        let mut pending = self.shared.lock();
        let mut replaced = false;
        if request.tag.kind == DecodeKind::Partial {
            let before = pending.jobs.len();
            let client = self.id;
            pending
                .jobs
                .retain(|j| !(j.client == client && j.request.tag.kind == DecodeKind::Partial));
            replaced = pending.jobs.len() < before;
        }
        let seq = pending.next_seq;
        pending.next_seq += 1;
        pending.jobs.push(Job {
            request,
            client: self.id,
            seq,
            queued_at: Instant::now(),
            reply: self.reply.clone(),
        });
        drop(pending);
        self.shared.ready.notify_one();
        replaced
    }

    /// A finished decode, if one is back.
    pub fn try_recv(&self) -> Option<Decoded> {
        self.results.try_recv().ok()
    }

    /// The next finished decode, waiting up to `limit` for it.
    pub fn recv_timeout(&self, limit: std::time::Duration) -> Option<Decoded> {
        self.results.recv_timeout(limit).ok()
    }
}

impl Drop for QueueClient {
    fn drop(&mut self) {
        let client = self.id;
        self.shared.lock().jobs.retain(|j| j.client != client);
        release(&self.shared);
    }
}

/// The next job to run: highest priority first, oldest first within a priority.
fn take_next(jobs: &mut Vec<Job>) -> Option<Job> {
    let best = jobs
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| {
            a.request
                .tag
                .kind
                .cmp(&b.request.tag.kind)
                .then(b.seq.cmp(&a.seq))
        })
        .map(|(i, _)| i)?;
    Some(jobs.remove(best))
}

fn decode_jobs(shared: &Shared, mut session: WhisperSession, mut threads: ThreadBudget) {
    loop {
        let job = {
            let mut pending = shared.lock();
            loop {
                if let Some(job) = take_next(&mut pending.jobs) {
                    break job;
                }
                if pending.handles == 0 {
                    return;
                }
                pending = shared
                    .ready
                    .wait(pending)
                    .unwrap_or_else(|p| p.into_inner());
            }
        };
        let queued_ms = job.queued_at.elapsed().as_secs_f64() * 1000.0;
        session.set_threads(threads.threads());
        let options = TranscribeOptions {
            window: DecodeWindow::Trimmed,
            prompt: job.request.prompt,
            max_tokens: job.request.max_tokens,
            ..Default::default()
        };
        let start = Instant::now();
        let text = session
            .transcribe(&job.request.audio, &options)
            .map(|t| t.text)
            .map_err(|e| e.to_string());
        // A stream that went away no longer wants its result.
        let _ = job.reply.send(Decoded {
            tag: job.request.tag,
            text,
            decode_ms: start.elapsed().as_secs_f64() * 1000.0,
            queued_ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(kind: DecodeKind, seq: u64) -> Job {
        let (reply, _) = mpsc::channel();
        Job {
            request: DecodeRequest {
                tag: DecodeTag {
                    utterance: seq,
                    generation: 0,
                    kind,
                },
                audio: Vec::new(),
                prompt: None,
                max_tokens: None,
            },
            client: seq,
            seq,
            queued_at: Instant::now(),
            reply,
        }
    }

    #[test]
    fn finals_and_speculations_go_before_partials_oldest_first() {
        let mut jobs = vec![
            job(DecodeKind::Partial, 0),
            job(DecodeKind::Speculative, 1),
            job(DecodeKind::Final, 2),
            job(DecodeKind::Partial, 3),
            job(DecodeKind::Final, 4),
        ];
        let order: Vec<u64> = std::iter::from_fn(|| take_next(&mut jobs))
            .map(|j| j.seq)
            .collect();
        assert_eq!(order, vec![2, 4, 1, 0, 3]);
    }
}
