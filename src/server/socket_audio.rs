//! A WebSocket connection as the voice loop's microphone and speaker.

use tokio::sync::mpsc;

use super::protocol::{encode_pcm16, ServerMessage};
use crate::audio::{AudioError, AudioSink, AudioSource, SPEECH_RATE};

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
    out: mpsc::UnboundedSender<Outgoing>,
}

impl SocketSink {
    pub fn new(rate: u32, out: mpsc::UnboundedSender<Outgoing>) -> Self {
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
        let _ = self.out.send(Outgoing::Audio(encode_pcm16(samples)));
        Ok(())
    }

    fn discard_queued(&mut self) {
        let _ = self.out.send(Outgoing::Message(ServerMessage::Clear));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
