//! Deepgram Aura (`/v1/speak`): one reply per socket at a time; each sentence is `Speak`
//! then `Flush`, and its `Flushed` marks it said; audio is raw linear16 in binary frames; a
//! barge-in sends `Clear` and the socket is replaced (its frames name no reply, so late
//! audio could not be told from the next reply's).

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::{unreadable, TtsHeard, TtsProtocol};
use crate::cloud::{pcm16_vec, query_value, CloudError, Endpoint, Request};

pub const DEFAULT_URL: &str = "wss://api.deepgram.com";

/// Aura settings (`[tts.aura]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuraSettings {
    /// The voice model, e.g. aura-2-thalia-en (`--tts-voice` overrides it).
    pub model: String,
    pub sample_rate: u32,
}

impl Default for AuraSettings {
    fn default() -> Self {
        Self {
            model: "aura-2-thalia-en".into(),
            sample_rate: 24_000,
        }
    }
}

pub struct Aura {
    endpoint: Endpoint,
    settings: AuraSettings,
}

impl Aura {
    pub fn new(endpoint: Endpoint, settings: AuraSettings) -> Result<Self, CloudError> {
        if !matches!(
            settings.sample_rate,
            8000 | 16_000 | 24_000 | 32_000 | 48_000
        ) {
            return Err(CloudError::Failed {
                provider: "Deepgram Aura",
                reason: format!("sample_rate {} is not supported", settings.sample_rate),
            });
        }
        Ok(Self { endpoint, settings })
    }
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum ClientMessage<'a> {
    Speak { text: &'a str },
    Flush,
    Clear,
}

fn json(message: ClientMessage) -> String {
    serde_json::to_string(&message).expect("messages serialize")
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum ServerMessage {
    Flushed {},
    Cleared {},
    Metadata {},
    Warning {
        #[serde(default)]
        description: String,
    },
    #[serde(other)]
    Other,
}

impl TtsProtocol for Aura {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self) -> Result<Request, CloudError> {
        let path = format!(
            "/v1/speak?model={}&encoding=linear16&sample_rate={}",
            query_value(&self.settings.model),
            self.settings.sample_rate
        );
        let auth = format!("Token {}", self.endpoint.key);
        self.endpoint.request(&path, &[("Authorization", auth)])
    }

    fn sample_rate(&self) -> u32 {
        self.settings.sample_rate
    }

    fn contexts_per_socket(&self) -> usize {
        1
    }

    fn units(&self, _text: &str) -> usize {
        1
    }

    fn open(&self, _context: &str) -> Vec<String> {
        Vec::new()
    }

    fn text(&self, _context: &str, text: &str) -> Vec<String> {
        vec![
            json(ClientMessage::Speak { text }),
            json(ClientMessage::Flush),
        ]
    }

    fn flush(&self, _context: &str) -> Vec<String> {
        // Every sentence was flushed as it went.
        Vec::new()
    }

    fn cancel(&self, _context: &str) -> Vec<String> {
        vec![json(ClientMessage::Clear)]
    }

    fn keep_alive(&self) -> Option<String> {
        None
    }

    fn reusable_after_cancel(&self) -> bool {
        false
    }

    fn read(&self, message: &Message) -> Vec<(Option<String>, TtsHeard)> {
        let heard = match message {
            Message::Binary(bytes) => TtsHeard::Audio {
                samples: pcm16_vec(bytes),
                said: Vec::new(),
            },
            Message::Text(text) => match serde_json::from_str::<ServerMessage>(text.as_str()) {
                Ok(ServerMessage::Flushed {}) => TtsHeard::PieceDone,
                Ok(ServerMessage::Warning { description }) if description.contains("limit") => {
                    TtsHeard::Error {
                        message: format!("Deepgram Aura: {description}"),
                        fatal: false,
                    }
                }
                Ok(_) => return Vec::new(),
                Err(_) => unreadable("Deepgram Aura"),
            },
            _ => return Vec::new(),
        };
        vec![(None, heard)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_spoken_and_flushed_and_flushed_marks_them() {
        let a = Aura::new(
            Endpoint {
                provider: "Deepgram Aura",
                base: "ws://127.0.0.1:9".into(),
                key: "k".into(),
                key_var: "DEEPGRAM_API_KEY",
            },
            AuraSettings::default(),
        )
        .unwrap();
        let request = a.request().unwrap();
        assert_eq!(request.headers()["Authorization"], "Token k");
        assert!(request
            .uri()
            .to_string()
            .contains("/v1/speak?model=aura-2-thalia-en&encoding=linear16&sample_rate=24000"));
        assert_eq!(
            a.text("c", "Hi."),
            [r#"{"type":"Speak","text":"Hi."}"#, r#"{"type":"Flush"}"#]
        );
        assert_eq!(a.cancel("c"), [r#"{"type":"Clear"}"#]);
        assert_eq!(
            a.read(&Message::text(r#"{"type":"Flushed","sequence_id":0}"#)),
            vec![(None, TtsHeard::PieceDone)]
        );
        let audio = a.read(&Message::binary(vec![0u8, 0, 0, 64]));
        assert!(matches!(&audio[0].1, TtsHeard::Audio { samples, .. } if samples.len() == 2));
    }
}
