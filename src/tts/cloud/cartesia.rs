//! Cartesia (`/tts/websocket`): one socket multiplexes replies by `context_id`; each
//! sentence is a generation request with `continue: true`, the reply ends with an empty
//! transcript and `continue: false`, a barge-in sends `cancel`. Audio comes as base64 raw
//! PCM chunks, word timestamps (seconds from the reply's start) become the marks.

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::{base64_pcm, unreadable, TtsHeard, TtsProtocol};
use crate::cloud::{query_value, CloudError, Endpoint, Request};

pub const DEFAULT_URL: &str = "wss://api.cartesia.ai";
/// The API version hark speaks.
pub const VERSION: &str = "2025-04-16";

/// Cartesia settings (`[tts.cartesia]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CartesiaSettings {
    pub model: String,
    pub language: String,
    pub sample_rate: u32,
}

impl Default for CartesiaSettings {
    fn default() -> Self {
        Self {
            model: "sonic-2".into(),
            language: "en".into(),
            sample_rate: 24_000,
        }
    }
}

pub struct Cartesia {
    endpoint: Endpoint,
    voice: String,
    settings: CartesiaSettings,
}

impl Cartesia {
    pub fn new(
        endpoint: Endpoint,
        voice: String,
        settings: CartesiaSettings,
    ) -> Result<Self, CloudError> {
        if !matches!(
            settings.sample_rate,
            8000 | 16_000 | 22_050 | 24_000 | 44_100 | 48_000
        ) {
            return Err(CloudError::Failed {
                provider: "Cartesia",
                reason: format!("sample_rate {} is not supported", settings.sample_rate),
            });
        }
        if voice.trim().is_empty() {
            return Err(CloudError::Failed {
                provider: "Cartesia",
                reason: "no voice; set CARTESIA_VOICE_ID or --tts-voice".into(),
            });
        }
        Ok(Self {
            endpoint,
            voice,
            settings,
        })
    }

    fn generation(&self, context: &str, transcript: &str, more: bool) -> String {
        let request = Generation {
            context_id: context,
            model_id: &self.settings.model,
            transcript,
            r#continue: more,
            voice: Voice {
                mode: "id",
                id: self.voice.trim(),
            },
            language: &self.settings.language,
            output_format: OutputFormat {
                container: "raw",
                encoding: "pcm_s16le",
                sample_rate: self.settings.sample_rate,
            },
            add_timestamps: true,
            max_buffer_delay_ms: 0,
        };
        serde_json::to_string(&request).expect("messages serialize")
    }
}

#[derive(Serialize)]
struct Generation<'a> {
    context_id: &'a str,
    model_id: &'a str,
    transcript: &'a str,
    r#continue: bool,
    voice: Voice<'a>,
    language: &'a str,
    output_format: OutputFormat,
    add_timestamps: bool,
    max_buffer_delay_ms: u32,
}

#[derive(Serialize)]
struct Voice<'a> {
    mode: &'a str,
    id: &'a str,
}

#[derive(Serialize)]
struct OutputFormat {
    container: &'static str,
    encoding: &'static str,
    sample_rate: u32,
}

#[derive(Serialize)]
struct Cancel<'a> {
    context_id: &'a str,
    cancel: bool,
}

#[derive(Deserialize)]
struct ServerMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    context_id: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    word_timestamps: Option<WordTimestamps>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    status_code: Option<u16>,
}

#[derive(Deserialize)]
struct WordTimestamps {
    words: Vec<String>,
    end: Vec<f64>,
}

impl TtsProtocol for Cartesia {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self) -> Result<Request, CloudError> {
        let path = format!("/tts/websocket?cartesia_version={}", query_value(VERSION));
        self.endpoint
            .request(&path, &[("X-API-Key", self.endpoint.key.clone())])
    }

    fn sample_rate(&self) -> u32 {
        self.settings.sample_rate
    }

    fn contexts_per_socket(&self) -> usize {
        16
    }

    fn units(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn open(&self, _context: &str) -> Vec<String> {
        Vec::new()
    }

    fn text(&self, context: &str, text: &str) -> Vec<String> {
        // Transcripts of one context are joined as they are: keep a space between them.
        vec![self.generation(context, &format!("{} ", text.trim()), true)]
    }

    fn flush(&self, context: &str) -> Vec<String> {
        vec![self.generation(context, "", false)]
    }

    fn cancel(&self, context: &str) -> Vec<String> {
        vec![serde_json::to_string(&Cancel {
            context_id: context,
            cancel: true,
        })
        .expect("messages serialize")]
    }

    fn keep_alive(&self) -> Option<String> {
        None
    }

    fn read(&self, message: &Message) -> Vec<(Option<String>, TtsHeard)> {
        let Message::Text(text) = message else {
            return Vec::new();
        };
        let Ok(m) = serde_json::from_str::<ServerMessage>(text.as_str()) else {
            return vec![(None, unreadable("Cartesia"))];
        };
        let heard = match m.kind.as_str() {
            "chunk" => match m.data.as_deref().and_then(base64_pcm) {
                Some(samples) => vec![TtsHeard::Audio {
                    samples,
                    said: Vec::new(),
                }],
                None => vec![TtsHeard::Error {
                    message: "Cartesia sent a chunk without base64 audio".into(),
                    fatal: false,
                }],
            },
            "timestamps" => m
                .word_timestamps
                .map(|w| {
                    w.words
                        .iter()
                        .zip(&w.end)
                        .map(|(word, end)| TtsHeard::Said {
                            units: word.split_whitespace().count(),
                            end_ms: end * 1000.0,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            "done" => vec![TtsHeard::Done],
            "error" => {
                let reason = [m.title.as_deref(), m.message.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                vec![TtsHeard::Error {
                    message: format!("Cartesia: {reason}"),
                    fatal: matches!(m.status_code, Some(401..=403)),
                }]
            }
            _ => Vec::new(),
        };
        heard
            .into_iter()
            .map(|h| (m.context_id.clone(), h))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_continue_the_context_and_an_empty_transcript_ends_it() {
        let c = Cartesia::new(
            Endpoint {
                provider: "Cartesia",
                base: "ws://127.0.0.1:9".into(),
                key: "k".into(),
                key_var: "CARTESIA_API_KEY",
            },
            "v1".into(),
            CartesiaSettings::default(),
        )
        .unwrap();
        assert_eq!(c.request().unwrap().headers()["X-API-Key"], "k");
        let first: serde_json::Value = serde_json::from_str(&c.text("c1", "Hello.")[0]).unwrap();
        assert_eq!(first["transcript"], "Hello. ");
        assert_eq!(first["continue"], true);
        assert_eq!(first["output_format"]["encoding"], "pcm_s16le");
        assert_eq!(first["voice"]["id"], "v1");
        let last: serde_json::Value = serde_json::from_str(&c.flush("c1")[0]).unwrap();
        assert_eq!(last["continue"], false);
        assert_eq!(
            c.read(&Message::text(
                r#"{"type":"timestamps","done":false,"status_code":206,"context_id":"c1","word_timestamps":{"words":["Hello"],"start":[0],"end":[0.4]}}"#
            )),
            vec![(Some("c1".into()), TtsHeard::Said { units: 1, end_ms: 400.0 })]
        );
        assert_eq!(
            c.read(&Message::text(
                r#"{"type":"done","done":true,"status_code":206,"context_id":"c1"}"#
            )),
            vec![(Some("c1".into()), TtsHeard::Done)]
        );
    }
}
