//! Language-model replies for what the configured flows do not cover: any OpenAI-compatible
//! `/v1/chat/completions` endpoint (OpenAI, Ollama, llama.cpp's server, vLLM) with
//! `stream: true`, read as server-sent events so tokens go on to speech as they arrive.
//! The flows are offered as functions, so the model can start one ("book me in for a
//! haircut" phrased in a way no example covers).
//!
//! A connection that stays silent for `stall_timeout` between chunks is abandoned: a stuck
//! model must not leave the user in silence.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("language model at {url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("language model at {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("language model at {url} sent nothing for {ms} ms")]
    Stalled { url: String, ms: u128 },
    #[error("language model at {url} sent a malformed stream: {reason}")]
    Protocol { url: String, reason: String },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// A function the model may call: a flow, with its slots as string parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    pub name: String,
    pub description: String,
    pub parameters: Vec<(String, String)>,
}

/// What the model produced: text, and possibly a function call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub text: String,
    pub tool_call: Option<(String, serde_json::Map<String, serde_json::Value>)>,
    /// The listener stopped the stream (barge-in).
    pub stopped: bool,
}

/// A chat model that streams.
pub trait LanguageModel: Send {
    /// Streams a reply to `messages`; `on_text` gets each piece of text and returns false
    /// to stop.
    fn complete(
        &mut self,
        messages: &[ChatMessage],
        tools: &[Tool],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Completion, LlmError>;
}

/// Where the model is and how to reach it.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// Base URL up to and including `/v1`, e.g. `http://localhost:11434/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    pub max_tokens: u32,
}

pub struct OpenAiChat {
    config: LlmConfig,
    client: reqwest::Client,
    /// Always Some until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for OpenAiChat {
    // A conversation may end on an async worker (a server's connection task): a runtime
    // dropped there would panic, so it is let go without waiting.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl OpenAiChat {
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        crate::models::fetch::install_tls_provider();
        let unreachable = |reason: String| LlmError::Unreachable {
            url: config.base_url.clone(),
            reason,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self {
            config,
            client,
            runtime: Some(runtime),
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        )
    }
}

fn request_body(config: &LlmConfig, messages: &[ChatMessage], tools: &[Tool]) -> serde_json::Value {
    let mut body = serde_json::json!({
        "model": config.model,
        "messages": messages,
        "stream": true,
        "max_tokens": config.max_tokens,
    });
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| {
                let properties: serde_json::Map<String, serde_json::Value> = t
                    .parameters
                    .iter()
                    .map(|(name, description)| {
                        (
                            name.clone(),
                            serde_json::json!({"type": "string", "description": description}),
                        )
                    })
                    .collect();
                serde_json::json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": {"type": "object", "properties": properties},
                    }
                })
            })
            .collect();
    }
    body
}

/// Accumulates a streamed completion from SSE `data:` payloads.
#[derive(Default)]
struct StreamState {
    completion: Completion,
    tool_name: String,
    tool_arguments: String,
    done: bool,
}

impl StreamState {
    /// Handles one event's data; returns the text delta it carried.
    fn event(&mut self, data: &str) -> Result<Option<String>, String> {
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let chunk: serde_json::Value =
            serde_json::from_str(data).map_err(|e| format!("{e} in {data:?}"))?;
        if let Some(error) = chunk.get("error") {
            return Err(error["message"]
                .as_str()
                .unwrap_or("error event")
                .to_string());
        }
        let delta = &chunk["choices"][0]["delta"];
        if let Some(calls) = delta["tool_calls"].as_array() {
            for call in calls {
                if let Some(name) = call["function"]["name"].as_str() {
                    self.tool_name.push_str(name);
                }
                if let Some(args) = call["function"]["arguments"].as_str() {
                    self.tool_arguments.push_str(args);
                }
            }
        }
        Ok(delta["content"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(String::from))
    }

    fn finish(mut self) -> Result<Completion, String> {
        if !self.tool_name.is_empty() {
            let args = if self.tool_arguments.trim().is_empty() {
                serde_json::Map::new()
            } else {
                serde_json::from_str(&self.tool_arguments)
                    .map_err(|e| format!("tool arguments {:?}: {e}", self.tool_arguments))?
            };
            self.completion.tool_call = Some((self.tool_name, args));
        }
        Ok(self.completion)
    }
}

impl LanguageModel for OpenAiChat {
    fn complete(
        &mut self,
        messages: &[ChatMessage],
        tools: &[Tool],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Completion, LlmError> {
        let url = self.url();
        let body = request_body(&self.config, messages, tools);
        let stall = self.config.stall_timeout;
        let mut request = self.client.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let unreachable = |e: reqwest::Error| LlmError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let protocol = |reason: String| LlmError::Protocol {
            url: url.clone(),
            reason,
        };
        let asked = std::time::Instant::now();
        let mut first_token = true;
        let metrics = crate::telemetry::metrics::global();
        let Some(runtime) = self.runtime.as_ref() else {
            return Err(LlmError::Unreachable {
                url,
                reason: "the client has shut down".into(),
            });
        };
        runtime.block_on(async {
            let response =
                tokio::time::timeout(stall + self.config.connect_timeout, request.send())
                    .await
                    .map_err(|_| LlmError::Stalled {
                        url: url.clone(),
                        ms: stall.as_millis(),
                    })?
                    .map_err(unreachable)?;
            let status = response.status();
            if !status.is_success() {
                let text = response.text().await.unwrap_or_default();
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(String::from))
                    .unwrap_or(text);
                return Err(LlmError::Status {
                    url: url.clone(),
                    status: status.as_u16(),
                    message,
                });
            }
            let mut stream = response.bytes_stream();
            let mut state = StreamState::default();
            let mut sse = super::sse::SseDecoder::new();
            while !state.done {
                let chunk = match tokio::time::timeout(stall, stream.next()).await {
                    Err(_) => {
                        return Err(LlmError::Stalled {
                            url: url.clone(),
                            ms: stall.as_millis(),
                        })
                    }
                    Ok(None) => break,
                    Ok(Some(chunk)) => chunk.map_err(unreachable)?,
                };
                // Each event's data is one JSON chunk of the completion.
                for data in sse.push(&chunk).map_err(&protocol)? {
                    if let Some(text) = state.event(data.trim()).map_err(&protocol)? {
                        if std::mem::take(&mut first_token) {
                            metrics.language_model_latency(asked.elapsed().as_secs_f64());
                        }
                        state.completion.text.push_str(&text);
                        if !on_text(&text) {
                            state.completion.stopped = true;
                            return state.finish().map_err(&protocol);
                        }
                    }
                    if state.done {
                        break;
                    }
                }
            }
            if let Some(data) = sse.finish().filter(|_| !state.done) {
                if let Some(text) = state.event(data.trim()).map_err(&protocol)? {
                    state.completion.text.push_str(&text);
                    on_text(&text);
                }
            }
            state.finish().map_err(&protocol)
        })
    }
}

/// Makes model text fit for speech: no markdown emphasis, headings, code marks or bullets.
pub fn plain_for_voice(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '*' | '#' | '`' | '_'))
        .collect::<String>()
        .replace("\n- ", "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_text_and_a_function_call_from_stream_events() {
        let mut state = StreamState::default();
        let events = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"content":"Sure"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"book_appointment","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"service\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"haircut\"}"}}]}}]}"#,
            "[DONE]",
        ];
        let texts: Vec<Option<String>> = events.iter().map(|e| state.event(e).unwrap()).collect();
        assert_eq!(texts[1].as_deref(), Some("Sure"));
        assert!(state.done);
        let done = state.finish().unwrap();
        let (name, args) = done.tool_call.unwrap();
        assert_eq!(
            (name.as_str(), args["service"].as_str()),
            ("book_appointment", Some("haircut"))
        );
        assert!(StreamState::default().event("{not json").is_err());
    }

    #[test]
    fn markdown_is_removed_for_speech() {
        assert_eq!(
            plain_for_voice("**Sure!** Here's `one`:\n- first"),
            "Sure! Here's one:\nfirst"
        );
    }
}
