//! A WebSocket connection as the voice loop's microphone and speaker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::protocol::{encode_pcm16, ServerMessage};
use crate::audio::{AudioError, AudioSink, AudioSource, SPEECH_RATE};

/// What waits to be sent to one client, bounded: a client that stops reading fills it, and
/// once it has stayed full for the stall limit the connection is given up (what arrives in
/// the meantime is dropped: the client is already that far behind).
#[derive(Clone)]
pub struct OutQueue {
    tx: mpsc::Sender<Outgoing>,
    stall: Arc<Stall>,
}

struct Stall {
    since: Mutex<Option<Instant>>,
    limit: Duration,
    gave_up: AtomicBool,
}

impl OutQueue {
    /// A queue of `capacity` messages, given up after `stall_limit` full.
    pub fn new(capacity: usize, stall_limit: Duration) -> (Self, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let stall = Arc::new(Stall {
            since: Mutex::new(None),
            limit: stall_limit,
            gave_up: AtomicBool::new(false),
        });
        (Self { tx, stall }, rx)
    }

    /// Queues `message`; false once the client is gone or given up. Never blocks.
    pub fn send(&self, message: Outgoing) -> bool {
        if self.gave_up() {
            return false;
        }
        let mut since = self.stall.since.lock().unwrap_or_else(|p| p.into_inner());
        match self.tx.try_send(message) {
            Ok(()) => {
                *since = None;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                let first = *since.get_or_insert_with(Instant::now);
                if first.elapsed() >= self.stall.limit {
                    self.stall.gave_up.store(true, Ordering::SeqCst);
                    return false;
                }
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The client stopped reading for longer than the stall limit.
    pub fn gave_up(&self) -> bool {
        self.stall.gave_up.load(Ordering::SeqCst)
    }
}

/// What the connection's writer sends to the client.
#[derive(Debug)]
pub enum Outgoing {
    Message(ServerMessage),
    /// s16le samples.
    Audio(Vec<u8>),
}

impl Outgoing {
    pub fn error(message: impl std::fmt::Display) -> Self {
        Self::Message(ServerMessage::Error {
            message: message.to_string(),
        })
    }
}

/// The client's audio, already at 16 kHz, as the voice loop reads it: `read` blocks until
/// the connection delivers more, and the stream ends when the client stops or goes away.
pub struct SocketSource {
    frames: mpsc::Receiver<Vec<f32>>,
    pending: Vec<f32>,
    at: usize,
}

impl SocketSource {
    pub fn new(frames: mpsc::Receiver<Vec<f32>>) -> Self {
        Self {
            frames,
            pending: Vec::new(),
            at: 0,
        }
    }
}

impl AudioSource for SocketSource {
    fn sample_rate(&self) -> u32 {
        SPEECH_RATE
    }

    fn read(&mut self, buf: &mut [f32]) -> Result<usize, AudioError> {
        let mut written = 0;
        while written < buf.len() {
            if self.at == self.pending.len() {
                match self.frames.blocking_recv() {
                    Some(frame) => {
                        self.pending = frame;
                        self.at = 0;
                        continue;
                    }
                    None => break,
                }
            }
            let n = (buf.len() - written).min(self.pending.len() - self.at);
            buf[written..written + n].copy_from_slice(&self.pending[self.at..self.at + n]);
            written += n;
            self.at += n;
        }
        Ok(written)
    }
}

/// The reply's audio, sent to the client as binary frames; a barge-in tells the client to
/// drop what it has queued. A client that went away loses what is sent after.
pub struct SocketSink {
    rate: u32,
    out: OutQueue,
}

impl SocketSink {
    pub fn new(rate: u32, out: OutQueue) -> Self {
        Self { rate, out }
    }
}

impl AudioSink for SocketSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        // Every frame goes out, silence included: the stream stays aligned with the
        // client's microphone, as a speaker's would.
        self.out.send(Outgoing::Audio(encode_pcm16(samples)));
        Ok(())
    }

    fn discard_queued(&mut self) {
        self.out.send(Outgoing::Message(ServerMessage::Clear));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_nobody_reads_is_given_up_after_its_stall_limit() {
        let (out, mut rx) = OutQueue::new(2, Duration::from_millis(50));
        assert!(out.send(Outgoing::Audio(vec![1])));
        assert!(out.send(Outgoing::Audio(vec![2])));
        assert!(out.send(Outgoing::Audio(vec![3])), "full, not yet given up");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!out.send(Outgoing::Audio(vec![4])));
        assert!(out.gave_up());
        assert!(matches!(rx.try_recv(), Ok(Outgoing::Audio(b)) if b == [1]));
        // A reader that keeps up never trips it.
        let (out, mut rx) = OutQueue::new(2, Duration::from_millis(50));
        for i in 0..100u8 {
            assert!(out.send(Outgoing::Audio(vec![i])));
            rx.try_recv().unwrap();
        }
        assert!(!out.gave_up());
    }

    #[test]
    fn source_fills_whole_buffers_until_the_client_stops() {
        let (tx, rx) = mpsc::channel(4);
        let mut source = SocketSource::new(rx);
        let feeder = std::thread::spawn(move || {
            tx.blocking_send(vec![1.0; 300]).unwrap();
            tx.blocking_send(vec![2.0; 300]).unwrap();
        });
        let mut buf = [0.0; 480];
        assert_eq!(source.read(&mut buf).unwrap(), 480);
        assert_eq!((buf[299], buf[300]), (1.0, 2.0));
        feeder.join().unwrap();
        assert_eq!(
            source.read(&mut buf).unwrap(),
            120,
            "the rest, then the end"
        );
        assert_eq!(source.read(&mut buf).unwrap(), 0);
    }
}
