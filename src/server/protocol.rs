//! The WebSocket wire format of `hark serve`.
//!
//! Client → server: text frames are JSON [`ClientMessage`]s; binary frames are audio, signed
//! 16-bit little-endian mono PCM at the rate the `start` message declared.
//! Server → client: text frames are JSON [`ServerMessage`]s; binary frames are the reply's
//! audio, same encoding, at the rate `ready` announced.
//!
//! A conversation: `start` → `ready` → audio both ways with `event`s (speech start/end,
//! partial and final transcripts, replies, barge-ins, handoffs) → `stop` (or closing the
//! socket) → `summary`. A bad message gets an `error` and is dropped; the conversation goes on.

use serde::{Deserialize, Serialize};

use crate::pipeline::RunSummary;
use crate::telemetry::events::TimedEvent;

/// The rate audio is exchanged at unless the client asks otherwise.
pub const DEFAULT_SAMPLE_RATE: u32 = 16_000;
/// Rates a client may send (a resampler brings them to the recogniser's 16 kHz).
pub const MIN_SAMPLE_RATE: u32 = 8_000;
pub const MAX_SAMPLE_RATE: u32 = 96_000;

/// Fields hark does not know are ignored, so newer clients still talk to older servers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Opens the conversation. Audio sent before it is refused.
    Start {
        /// Rate of the audio the client sends, Hz.
        #[serde(default = "default_rate")]
        sample_rate: u32,
        /// Who is talking: memory is kept per user.
        #[serde(default)]
        user: Option<String>,
    },
    /// No more audio: the server finishes the reply under way and sends the summary.
    Stop,
    /// The user's score of the conversation, 1 to 5, once it is `ready`; kept in the
    /// conversation log.
    Rating { score: u8 },
}

fn default_rate() -> u32 {
    DEFAULT_SAMPLE_RATE
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The conversation's engines are loaded; audio may flow.
    Ready {
        /// Rate of the binary audio frames the server sends, Hz.
        sample_rate: u32,
        domain: String,
        /// This conversation's id (in the conversation log and its handoffs).
        conversation: String,
    },
    /// Something happened in the conversation (the same events `hark run --events` logs,
    /// `t_ms` on the input audio's timeline).
    Event {
        #[serde(flatten)]
        event: TimedEvent,
    },
    /// The user interrupted: drop the reply audio not yet played.
    Clear,
    /// A message was refused, or the conversation failed.
    Error { message: String },
    /// The conversation is over.
    Summary { summary: RunSummary },
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProtocolError {
    #[error("audio frames are 16-bit samples: {0} bytes is not a whole number of them")]
    OddAudioFrame(usize),
    #[error("sample_rate {0} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE}")]
    SampleRate(u32),
    #[error("not a message hark understands: {0}")]
    BadMessage(String),
    #[error("audio before the start message")]
    NotStarted,
    #[error("the conversation has already started")]
    AlreadyStarted,
    #[error("a rating is a score from 1 to 5, not {0}")]
    Rating(u8),
    #[error("a rating needs a conversation that is ready")]
    NotReady,
    #[error("this conversation is already rated; a rating counts once")]
    AlreadyRated,
}

/// Reads one text frame.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, ProtocolError> {
    let message: ClientMessage =
        serde_json::from_str(text).map_err(|e| ProtocolError::BadMessage(e.to_string()))?;
    match &message {
        ClientMessage::Start { sample_rate, .. }
            if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(sample_rate) =>
        {
            return Err(ProtocolError::SampleRate(*sample_rate));
        }
        ClientMessage::Rating { score } if !(1..=5).contains(score) => {
            return Err(ProtocolError::Rating(*score));
        }
        _ => {}
    }
    Ok(message)
}

/// Decodes one binary frame of s16le samples into `out` (appended, scaled to ±1).
pub fn decode_pcm16(bytes: &[u8], out: &mut Vec<f32>) -> Result<(), ProtocolError> {
    if bytes.len() % 2 != 0 {
        return Err(ProtocolError::OddAudioFrame(bytes.len()));
    }
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
    );
    Ok(())
}

/// Encodes samples as s16le (clipped to the 16-bit range).
pub fn encode_pcm16(samples: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(samples.len() * 2);
    for &s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_defaults_to_16_khz_and_checks_the_rate() {
        assert_eq!(
            parse_client_message(r#"{"type":"start"}"#),
            Ok(ClientMessage::Start {
                sample_rate: 16_000,
                user: None
            })
        );
        assert_eq!(
            parse_client_message(r#"{"type":"start","sample_rate":48000,"user":"ann"}"#),
            Ok(ClientMessage::Start {
                sample_rate: 48_000,
                user: Some("ann".into())
            })
        );
        assert_eq!(
            parse_client_message(r#"{"type":"start","sample_rate":0}"#),
            Err(ProtocolError::SampleRate(0))
        );
        assert_eq!(
            parse_client_message(r#"{"type":"stop"}"#),
            Ok(ClientMessage::Stop)
        );
        for bad in [
            "",
            "{",
            r#"{"type":"dance"}"#,
            r#"{"sample_rate":8000}"#,
            "[]",
        ] {
            assert!(
                matches!(parse_client_message(bad), Err(ProtocolError::BadMessage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pcm16_round_trips_and_refuses_half_samples() {
        let samples = [0.0, 0.5, -0.5, 1.0, -1.0];
        let mut decoded = Vec::new();
        decode_pcm16(&encode_pcm16(&samples), &mut decoded).unwrap();
        for (a, b) in samples.iter().zip(&decoded) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        assert_eq!(
            decode_pcm16(&[1, 2, 3], &mut decoded),
            Err(ProtocolError::OddAudioFrame(3))
        );
        assert_eq!(decoded.len(), samples.len(), "a refused frame adds nothing");
    }

    #[test]
    fn server_messages_are_tagged_json() {
        let ready = ServerMessage::Ready {
            sample_rate: 22_050,
            domain: "barista".into(),
            conversation: "ab12".into(),
        };
        assert_eq!(
            serde_json::to_value(&ready).unwrap(),
            serde_json::json!({"type": "ready", "sample_rate": 22050, "domain": "barista", "conversation": "ab12"})
        );
        let event = ServerMessage::Event {
            event: TimedEvent {
                t_ms: 1200,
                event: crate::telemetry::events::Event::Final {
                    text: "hello".into(),
                    stt_ms: 80.0,
                },
            },
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"type": "event", "t_ms": 1200, "event": "final", "text": "hello", "stt_ms": 80.0})
        );
        assert_eq!(
            serde_json::to_value(ServerMessage::Clear).unwrap(),
            serde_json::json!({"type": "clear"})
        );
    }
}
