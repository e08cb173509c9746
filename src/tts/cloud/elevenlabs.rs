//! ElevenLabs `multi-stream-input`: one socket carries up to five replies as contexts; a
//! context opens with a single space, takes text a sentence at a time, ends with `flush`
//! and `close_context` (only then does `isFinal` come), and is closed at once on a barge-in.
//! Audio is base64 PCM with a character alignment per chunk, which becomes the marks.

use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use super::{base64_pcm, unreadable, visible_chars, TtsHeard, TtsProtocol};
use crate::cloud::{query_value, CloudError, Endpoint, Request};

pub const DEFAULT_URL: &str = "wss://api.elevenlabs.io";

/// ElevenLabs settings (`[tts.elevenlabs]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElevenLabsSettings {
    pub model: String,
    /// PCM output rate: 16000, 22050 or 24000.
    pub sample_rate: u32,
    /// Seconds a context may go without text before ElevenLabs closes it (at most 180).
    pub inactivity_timeout_s: u32,
}

impl Default for ElevenLabsSettings {
    fn default() -> Self {
        Self {
            model: "eleven_flash_v2_5".into(),
            sample_rate: 24_000,
            inactivity_timeout_s: 180,
        }
    }
}

pub struct ElevenLabs {
    endpoint: Endpoint,
    voice: String,
    settings: ElevenLabsSettings,
}

impl ElevenLabs {
    pub fn new(
        endpoint: Endpoint,
        voice: String,
        settings: ElevenLabsSettings,
    ) -> Result<Self, CloudError> {
        if !matches!(settings.sample_rate, 16_000 | 22_050 | 24_000) {
            return Err(CloudError::Failed {
                provider: "ElevenLabs",
                reason: format!(
                    "sample_rate {} is not one of 16000, 22050, 24000",
                    settings.sample_rate
                ),
            });
        }
        if voice.trim().is_empty() {
            return Err(CloudError::Failed {
                provider: "ElevenLabs",
                reason: "no voice; set ELEVENLABS_VOICE_ID or --tts-voice".into(),
            });
        }
        Ok(Self {
            endpoint,
            voice,
            settings,
        })
    }
}

#[derive(Serialize)]
struct TextMessage<'a> {
    text: &'a str,
    context_id: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    flush: bool,
}

#[derive(Serialize)]
struct CloseContext<'a> {
    context_id: &'a str,
    close_context: bool,
}

#[derive(Deserialize, Default)]
struct ServerMessage {
    #[serde(default)]
    audio: Option<String>,
    #[serde(default, rename = "isFinal")]
    is_final: Option<bool>,
    #[serde(default, alias = "context_id", rename = "contextId")]
    context_id: Option<String>,
    #[serde(default)]
    alignment: Option<Alignment>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Alignment {
    chars: Vec<String>,
    #[serde(alias = "charsStartTimesMs", rename = "charStartTimesMs")]
    starts: Vec<f64>,
    #[serde(alias = "charsDurationsMs", rename = "charDurationsMs")]
    durations: Vec<f64>,
}

fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("messages serialize")
}

impl TtsProtocol for ElevenLabs {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self) -> Result<Request, CloudError> {
        let path = format!(
            "/v1/text-to-speech/{}/multi-stream-input?model_id={}&output_format=pcm_{}\
             &inactivity_timeout={}&sync_alignment=true&auto_mode=true",
            query_value(self.voice.trim()),
            query_value(&self.settings.model),
            self.settings.sample_rate,
            self.settings.inactivity_timeout_s.clamp(1, 180),
        );
        self.endpoint
            .request(&path, &[("xi-api-key", self.endpoint.key.clone())])
    }

    fn sample_rate(&self) -> u32 {
        self.settings.sample_rate
    }

    fn contexts_per_socket(&self) -> usize {
        // ElevenLabs closes the socket at a sixth open context.
        5
    }

    fn units(&self, text: &str) -> usize {
        visible_chars(text)
    }

    fn open(&self, context: &str) -> Vec<String> {
        vec![json(&TextMessage {
            text: " ",
            context_id: context,
            flush: false,
        })]
    }

    fn text(&self, context: &str, text: &str) -> Vec<String> {
        // Each piece ends with a space, so words of two pieces do not run together.
        let text = format!("{} ", text.trim());
        vec![json(&TextMessage {
            text: &text,
            context_id: context,
            flush: false,
        })]
    }

    fn flush(&self, context: &str) -> Vec<String> {
        vec![
            json(&TextMessage {
                text: "",
                context_id: context,
                flush: true,
            }),
            json(&CloseContext {
                context_id: context,
                close_context: true,
            }),
        ]
    }

    fn cancel(&self, context: &str) -> Vec<String> {
        vec![json(&CloseContext {
            context_id: context,
            close_context: true,
        })]
    }

    fn keep_alive(&self) -> Option<String> {
        None
    }

    fn read(&self, message: &Message) -> Vec<(Option<String>, TtsHeard)> {
        let Message::Text(text) = message else {
            return Vec::new();
        };
        let Ok(m) = serde_json::from_str::<ServerMessage>(text.as_str()) else {
            return vec![(None, unreadable("ElevenLabs"))];
        };
        let context = m.context_id.clone();
        let mut heard = Vec::new();
        if m.audio.is_none() && (m.error.is_some() || m.message.is_some()) {
            let reason = [m.error.as_deref(), m.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            heard.push(TtsHeard::Error {
                message: format!("ElevenLabs: {reason}"),
                fatal: false,
            });
            return heard.into_iter().map(|h| (context.clone(), h)).collect();
        }
        if let Some(audio) = m.audio.as_deref().filter(|a| !a.is_empty()) {
            let Some(samples) = base64_pcm(audio) else {
                return vec![(
                    context,
                    TtsHeard::Error {
                        message: "ElevenLabs sent audio that is not base64".into(),
                        fatal: false,
                    },
                )];
            };
            let said = m.alignment.map(said_chars).unwrap_or_default();
            heard.push(TtsHeard::Audio { samples, said });
        }
        if m.is_final == Some(true) {
            heard.push(TtsHeard::Done);
        }
        heard.into_iter().map(|h| (context.clone(), h)).collect()
    }
}

/// Each visible character of a chunk's alignment, with where it ends in the chunk.
fn said_chars(alignment: Alignment) -> Vec<(usize, f64)> {
    alignment
        .chars
        .iter()
        .zip(alignment.starts.iter().zip(&alignment.durations))
        .filter(|(c, _)| !c.trim().is_empty())
        .map(|(c, (start, duration))| (visible_chars(c), start + duration))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn eleven() -> ElevenLabs {
        ElevenLabs::new(
            Endpoint {
                provider: "ElevenLabs",
                base: "ws://127.0.0.1:9".into(),
                key: "k".into(),
                key_var: "ELEVENLABS_API_KEY",
            },
            "voice1".into(),
            ElevenLabsSettings::default(),
        )
        .unwrap()
    }

    #[test]
    fn a_reply_is_a_context_opened_fed_flushed_and_closed() {
        let e = eleven();
        let request = e.request().unwrap();
        assert_eq!(request.headers()["xi-api-key"], "k");
        let uri = request.uri().to_string();
        assert!(uri.contains("/v1/text-to-speech/voice1/multi-stream-input?model_id=eleven_flash_v2_5&output_format=pcm_24000"), "{uri}");
        assert_eq!(e.open("c1"), [r#"{"text":" ","context_id":"c1"}"#]);
        assert_eq!(
            e.text("c1", "Hi."),
            [r#"{"text":"Hi. ","context_id":"c1"}"#]
        );
        assert_eq!(
            e.flush("c1"),
            [
                r#"{"text":"","context_id":"c1","flush":true}"#,
                r#"{"context_id":"c1","close_context":true}"#
            ]
        );
    }

    #[test]
    fn audio_with_alignment_and_the_final_message_are_read() {
        let e = eleven();
        let audio = base64::engine::general_purpose::STANDARD.encode([0u8, 64, 0, 192]);
        let message = format!(
            r#"{{"audio":"{audio}","isFinal":null,"alignment":{{"chars":["H","i"," "],"charStartTimesMs":[0,50,90],"charDurationsMs":[50,40,10]}},"contextId":"c1"}}"#
        );
        let heard = e.read(&Message::text(message));
        assert_eq!(heard.len(), 1);
        let (context, TtsHeard::Audio { samples, said }) = &heard[0] else {
            panic!("{heard:?}")
        };
        assert_eq!(context.as_deref(), Some("c1"));
        assert_eq!(samples.len(), 2);
        assert_eq!(said, &vec![(1, 50.0), (1, 90.0)]);
        let done = e.read(&Message::text(r#"{"isFinal":true,"context_id":"c1"}"#));
        assert_eq!(done, vec![(Some("c1".into()), TtsHeard::Done)]);
        let error = e.read(&Message::text(
            r#"{"message":"too many","error":"max_active_conversations","code":1008}"#,
        ));
        assert!(
            matches!(&error[0].1, TtsHeard::Error { message, .. } if message.contains("max_active_conversations"))
        );
    }
}
