//! AssemblyAI Universal-Streaming v3 (`/v3/ws`): PCM at 16 kHz, `Begin`, cumulative `Turn`
//! messages (final words and the words still changing), `end_of_turn`; `ForceEndpoint` at
//! the local endpoint, key terms updated mid-stream, `Terminate` → `Termination` at the end.

use serde::{Deserialize, Serialize};

use super::turns::Heard;
use super::{ServerError, SttProtocol, SttReader};
use crate::cloud::{query_value, CloudError, Endpoint, Request};

pub const DEFAULT_URL: &str = "wss://streaming.assemblyai.com";

/// AssemblyAI settings (`[stt.assemblyai]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AssemblyAiSettings {
    pub speech_model: String,
    /// Silence (ms) after which a confident turn ends.
    pub min_turn_silence_ms: u32,
    /// Silence (ms) after which any turn ends.
    pub max_turn_silence_ms: u32,
}

impl Default for AssemblyAiSettings {
    fn default() -> Self {
        Self {
            speech_model: "universal-streaming-english".into(),
            min_turn_silence_ms: 160,
            max_turn_silence_ms: 1280,
        }
    }
}

const MAX_KEYTERMS: usize = 20;

pub struct AssemblyAi {
    endpoint: Endpoint,
    settings: AssemblyAiSettings,
}

impl AssemblyAi {
    pub fn new(endpoint: Endpoint, settings: AssemblyAiSettings) -> Self {
        Self { endpoint, settings }
    }

    fn path(&self, phrases: &[String]) -> String {
        let s = &self.settings;
        let mut path = format!(
            "/v3/ws?sample_rate=16000&encoding=pcm_s16le&format_turns=false&speech_model={}\
             &min_turn_silence={}&max_turn_silence={}",
            query_value(&s.speech_model),
            s.min_turn_silence_ms,
            s.max_turn_silence_ms,
        );
        if !phrases.is_empty() {
            let terms = keyterms(phrases);
            let list = serde_json::to_string(&terms).expect("strings serialize");
            path.push_str("&keyterms_prompt=");
            path.push_str(&query_value(&list));
        }
        path
    }
}

fn keyterms(phrases: &[String]) -> Vec<&str> {
    phrases
        .iter()
        .take(MAX_KEYTERMS)
        .map(String::as_str)
        .collect()
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum ClientMessage<'a> {
    ForceEndpoint,
    KeepAlive,
    Terminate,
    UpdateConfiguration { keyterms_prompt: Vec<&'a str> },
}

fn text(message: ClientMessage) -> String {
    serde_json::to_string(&message).expect("messages serialize")
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum ServerMessage {
    Begin {},
    Turn(Turn),
    SpeechStarted {},
    Termination {},
    Error {
        #[serde(default)]
        error_code: Option<u16>,
        #[serde(default)]
        error: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Turn {
    turn_order: u64,
    #[serde(default)]
    end_of_turn: bool,
    #[serde(default)]
    words: Vec<Word>,
    #[serde(default)]
    transcript: String,
}

#[derive(Deserialize)]
struct Word {
    text: String,
    #[serde(default)]
    word_is_final: bool,
}

impl SttProtocol for AssemblyAi {
    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, phrases: &[String]) -> Result<Request, CloudError> {
        // The raw key, with no scheme in front of it.
        let headers = [
            ("Authorization", self.endpoint.key.clone()),
            ("AssemblyAI-Version", "2025-05-12".to_string()),
        ];
        self.endpoint.request(&self.path(phrases), &headers)
    }

    fn reader(&self) -> Box<dyn SttReader> {
        Box::new(AssemblyAiReader::default())
    }

    fn finalize(&self) -> String {
        text(ClientMessage::ForceEndpoint)
    }

    fn keep_alive(&self) -> Option<String> {
        Some(text(ClientMessage::KeepAlive))
    }

    fn close_stream(&self) -> String {
        text(ClientMessage::Terminate)
    }

    fn phrases_update(&self, phrases: &[String]) -> Option<String> {
        Some(text(ClientMessage::UpdateConfiguration {
            keyterms_prompt: keyterms(phrases),
        }))
    }

    fn close_is_final(&self, code: u16) -> bool {
        // Not authorized, no funds, a paid feature, a bad rate, invalid settings.
        matches!(code, 3006 | 4000..=4003 | 4101)
    }
}

/// What of the current turn has been reported as settled.
#[derive(Default)]
struct AssemblyAiReader {
    turn: Option<u64>,
    settled_words: usize,
}

impl SttReader for AssemblyAiReader {
    fn read(&mut self, text: &str) -> Result<Vec<Heard>, ServerError> {
        let message: ServerMessage = serde_json::from_str(text).map_err(|e| ServerError {
            message: format!("unreadable message ({e})"),
            fatal: false,
        })?;
        Ok(match message {
            ServerMessage::Turn(turn) => self.turn(turn),
            ServerMessage::SpeechStarted {} => vec![Heard::SpeechStarted],
            ServerMessage::Error { error_code, error } => {
                return Err(ServerError {
                    message: match error_code {
                        Some(code) => format!("error {code}: {error}"),
                        None => error,
                    },
                    fatal: error_code.is_some_and(|c| matches!(c, 4000..=4003 | 3006 | 4101)),
                })
            }
            ServerMessage::Begin {} | ServerMessage::Termination {} | ServerMessage::Other => {
                Vec::new()
            }
        })
    }
}

impl AssemblyAiReader {
    fn turn(&mut self, turn: Turn) -> Vec<Heard> {
        if self.turn != Some(turn.turn_order) {
            self.turn = Some(turn.turn_order);
            self.settled_words = 0;
        }
        let final_words = if turn.end_of_turn {
            turn.words.len()
        } else {
            turn.words.iter().take_while(|w| w.word_is_final).count()
        };
        let mut heard = Vec::new();
        if final_words > self.settled_words {
            let new: Vec<&str> = turn.words[self.settled_words..final_words]
                .iter()
                .map(|w| w.text.as_str())
                .collect();
            heard.push(Heard::Settled(new.join(" ")));
            self.settled_words = final_words;
        } else if turn.words.is_empty() && turn.end_of_turn && !turn.transcript.is_empty() {
            heard.push(Heard::Settled(turn.transcript));
        }
        if turn.end_of_turn {
            heard.push(Heard::EndOfTurn);
            self.turn = None;
            self.settled_words = 0;
        } else {
            let tail: Vec<&str> = turn.words[final_words..]
                .iter()
                .map(|w| w.text.as_str())
                .collect();
            heard.push(Heard::Tail(tail.join(" ")));
        }
        heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handshake_carries_the_raw_key_and_a_json_list_of_key_terms() {
        let a = AssemblyAi::new(
            Endpoint {
                provider: "AssemblyAI",
                base: "ws://127.0.0.1:9".into(),
                key: "k".into(),
                key_var: "ASSEMBLYAI_API_KEY",
            },
            AssemblyAiSettings::default(),
        );
        let request = a.request(&["oat milk".into()]).unwrap();
        assert_eq!(request.headers()["Authorization"], "k");
        let uri = request.uri().to_string();
        assert!(
            uri.contains("/v3/ws?sample_rate=16000&encoding=pcm_s16le"),
            "{uri}"
        );
        assert!(
            uri.contains("keyterms_prompt=%5B%22oat%20milk%22%5D"),
            "{uri}"
        );
        assert_eq!(
            a.phrases_update(&["latte".into()]).unwrap(),
            r#"{"type":"UpdateConfiguration","keyterms_prompt":["latte"]}"#
        );
    }

    #[test]
    fn cumulative_turns_become_new_settled_words_and_a_tail() {
        let mut r = AssemblyAiReader::default();
        let turn = |order: u32, words: &[(&str, bool)], end: bool| {
            let words: Vec<String> = words
                .iter()
                .map(|(w, f)| {
                    format!(
                        r#"{{"start":0,"end":1,"text":"{w}","confidence":0.9,"word_is_final":{f}}}"#
                    )
                })
                .collect();
            format!(
                r#"{{"type":"Turn","turn_order":{order},"turn_is_formatted":false,"end_of_turn":{end},"transcript":"","end_of_turn_confidence":0.1,"utterance":"","words":[{}]}}"#,
                words.join(",")
            )
        };
        assert_eq!(
            r.read(&turn(0, &[("hi", true), ("my", false)], false))
                .unwrap(),
            vec![Heard::Settled("hi".into()), Heard::Tail("my".into())]
        );
        assert_eq!(
            r.read(&turn(
                0,
                &[("hi", true), ("my", true), ("name", false)],
                false
            ))
            .unwrap(),
            vec![Heard::Settled("my".into()), Heard::Tail("name".into())]
        );
        assert_eq!(
            r.read(&turn(
                0,
                &[("hi", true), ("my", true), ("name", true)],
                true
            ))
            .unwrap(),
            vec![Heard::Settled("name".into()), Heard::EndOfTurn]
        );
        assert_eq!(
            r.read(&turn(1, &[("next", false)], false)).unwrap(),
            vec![Heard::Tail("next".into())]
        );
        let error = r
            .read(r#"{"type":"Error","error_code":4001,"error":"Invalid API key"}"#)
            .unwrap_err();
        assert!(error.fatal);
    }
}
