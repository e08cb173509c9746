//! Deepgram live transcription (`/v1/listen`): linear16 at 16 kHz, interim results, its own
//! endpointing (`speech_final`) with `UtteranceEnd` as the fallback when noise keeps
//! `speech_final` from coming, `Finalize` at the local endpoint, `KeepAlive` when no audio
//! flows (it closes an idle socket after about 10 s), `CloseStream` at the end.

use serde::{Deserialize, Serialize};

use super::turns::Heard;
use super::{ServerError, SttProtocol, SttReader};
use crate::cloud::{query_value, CloudError, Endpoint, Request};

pub const DEFAULT_URL: &str = "wss://api.deepgram.com";

/// Deepgram settings (`[stt.deepgram]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeepgramSettings {
    pub model: String,
    pub language: String,
    /// Silence (ms) after which Deepgram marks `speech_final`.
    pub endpointing_ms: u32,
    /// Gap between words (ms) that sends `UtteranceEnd` (at least 1000).
    pub utterance_end_ms: u32,
    pub smart_format: bool,
}

impl Default for DeepgramSettings {
    fn default() -> Self {
        Self {
            model: "nova-3".into(),
            language: "en-US".into(),
            endpointing_ms: 300,
            utterance_end_ms: 1000,
            smart_format: true,
        }
    }
}

/// Key terms per connection: more only slows Deepgram down.
const MAX_KEYTERMS: usize = 20;

pub struct Deepgram {
    endpoint: Endpoint,
    settings: DeepgramSettings,
}

impl Deepgram {
    pub fn new(endpoint: Endpoint, settings: DeepgramSettings) -> Self {
        Self { endpoint, settings }
    }

    fn path(&self, phrases: &[String]) -> String {
        let s = &self.settings;
        let mut path = format!(
            "/v1/listen?model={}&language={}&encoding=linear16&sample_rate=16000&channels=1\
             &interim_results=true&punctuate=true&smart_format={}&endpointing={}\
             &utterance_end_ms={}&vad_events=true",
            query_value(&s.model),
            query_value(&s.language),
            s.smart_format,
            s.endpointing_ms,
            s.utterance_end_ms.max(1000),
        );
        // Key terms are a Nova-3 feature; older models refuse them.
        if s.model.starts_with("nova-3") {
            for phrase in phrases.iter().take(MAX_KEYTERMS) {
                path.push_str("&keyterm=");
                path.push_str(&query_value(phrase));
            }
        }
        path
    }
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum ClientMessage {
    KeepAlive,
    Finalize,
    CloseStream,
}

fn text(message: ClientMessage) -> String {
    serde_json::to_string(&message).expect("unit variants serialize")
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum ServerMessage {
    Results(Results),
    SpeechStarted {},
    UtteranceEnd {},
    Metadata {},
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Results {
    #[serde(default)]
    is_final: bool,
    #[serde(default)]
    speech_final: bool,
    #[serde(default)]
    from_finalize: bool,
    channel: Channel,
}

#[derive(Deserialize)]
struct Channel {
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    transcript: String,
}

impl SttProtocol for Deepgram {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, phrases: &[String]) -> Result<Request, CloudError> {
        let auth = format!("Token {}", self.endpoint.key);
        self.endpoint
            .request(&self.path(phrases), &[("Authorization", auth)])
    }

    fn reader(&self) -> Box<dyn SttReader> {
        Box::new(DeepgramReader)
    }

    fn finalize(&self) -> String {
        text(ClientMessage::Finalize)
    }

    fn keep_alive(&self) -> Option<String> {
        Some(text(ClientMessage::KeepAlive))
    }

    fn close_stream(&self) -> String {
        text(ClientMessage::CloseStream)
    }

    fn phrases_update(&self, _phrases: &[String]) -> Option<String> {
        // Key terms are fixed per connection in Deepgram's live API.
        None
    }

    fn reconnects_for_phrases(&self) -> bool {
        self.settings.model.starts_with("nova-3")
    }

    fn close_is_final(&self, code: u16) -> bool {
        // 1008 / 1002: the audio cannot be decoded (DATA-0000) — it would not be on retry.
        matches!(code, 1002 | 1008)
    }
}

struct DeepgramReader;

impl SttReader for DeepgramReader {
    fn read(&mut self, text: &str) -> Result<Vec<Heard>, ServerError> {
        let message: ServerMessage = serde_json::from_str(text).map_err(|e| ServerError {
            message: format!("unreadable message ({e})"),
            fatal: false,
        })?;
        Ok(match message {
            ServerMessage::Results(r) => {
                let transcript = r
                    .channel
                    .alternatives
                    .into_iter()
                    .next()
                    .map(|a| a.transcript)
                    .unwrap_or_default();
                if !r.is_final {
                    vec![Heard::Tail(transcript)]
                } else if r.speech_final || r.from_finalize {
                    vec![Heard::Settled(transcript), Heard::EndOfTurn]
                } else {
                    vec![Heard::Settled(transcript)]
                }
            }
            ServerMessage::SpeechStarted {} => vec![Heard::SpeechStarted],
            ServerMessage::UtteranceEnd {} => vec![Heard::EndOfTurn],
            ServerMessage::Metadata {} | ServerMessage::Other => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deepgram() -> Deepgram {
        Deepgram::new(
            Endpoint {
                provider: "Deepgram",
                base: "ws://127.0.0.1:9".into(),
                key: "k".into(),
                key_var: "DEEPGRAM_API_KEY",
            },
            DeepgramSettings::default(),
        )
    }

    #[test]
    fn the_handshake_carries_the_key_and_the_stream_format() {
        let request = deepgram()
            .request(&["oat milk".into(), "latte".into()])
            .unwrap();
        assert_eq!(request.headers()["Authorization"], "Token k");
        let uri = request.uri().to_string();
        for part in [
            "/v1/listen?model=nova-3",
            "encoding=linear16",
            "sample_rate=16000",
            "interim_results=true",
            "endpointing=300",
            "utterance_end_ms=1000",
            "vad_events=true",
            "keyterm=oat%20milk",
            "keyterm=latte",
        ] {
            assert!(uri.contains(part), "{uri} lacks {part}");
        }
    }

    #[test]
    fn results_become_tails_segments_and_turn_ends() {
        let mut r = DeepgramReader;
        let results = |text: &str, is_final: bool, speech_final: bool| {
            format!(
                r#"{{"type":"Results","channel_index":[0,1],"duration":1.0,"start":0.0,"is_final":{is_final},"speech_final":{speech_final},"channel":{{"alternatives":[{{"transcript":"{text}","confidence":0.9,"words":[]}}]}},"metadata":{{"request_id":"x"}}}}"#
            )
        };
        assert_eq!(
            r.read(&results("hello", false, false)).unwrap(),
            vec![Heard::Tail("hello".into())]
        );
        assert_eq!(
            r.read(&results("Hello there.", true, true)).unwrap(),
            vec![Heard::Settled("Hello there.".into()), Heard::EndOfTurn]
        );
        assert_eq!(
            r.read(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":2.1}"#)
                .unwrap(),
            vec![Heard::EndOfTurn]
        );
        assert_eq!(
            r.read(r#"{"type":"Metadata","request_id":"x","duration":1.0}"#)
                .unwrap(),
            vec![]
        );
        assert!(r.read("{not json").is_err());
        assert_eq!(
            text(ClientMessage::Finalize),
            r#"{"type":"Finalize"}"#,
            "exact message"
        );
    }
}
