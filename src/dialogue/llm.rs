//! Language-model replies for what the configured flows do not cover: any OpenAI-compatible
//! `/v1/chat/completions` endpoint (OpenAI, Ollama, llama.cpp's server, vLLM) or Anthropic's
//! Messages API (`/v1/messages`), with `stream: true`, read as server-sent events so tokens
//! go on to speech as they arrive. The flows are offered as functions (tools), so the model
//! can start one ("book me in for a haircut" phrased in a way no example covers).
//!
//! A connection that stays silent for `stall_timeout` between chunks is abandoned: a stuck
//! model must not leave the user in silence.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

/// How often a silent model's listener is asked whether the answer is still wanted.
pub const STILL_WANTED_EVERY: Duration = Duration::from_millis(50);

/// Awaits `work`, asking `on_text` with an empty piece every [`STILL_WANTED_EVERY`] whether
/// it is still wanted; None once it is not.
async fn while_wanted<F: std::future::Future>(
    work: F,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Option<F::Output> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            _ = tokio::time::sleep(STILL_WANTED_EVERY) => {
                if !on_text("") {
                    return None;
                }
            }
        }
    }
}

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
    #[error("language model at {url} failed mid-reply: {message}")]
    Failed { url: String, message: String },
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
    /// to stop. While the model is silent (reading the prompt, between pieces) it also gets
    /// an empty piece every [`STILL_WANTED_EVERY`], so a listener who has moved on stops the
    /// request without waiting for the model's next word.
    fn complete(
        &mut self,
        messages: &[ChatMessage],
        tools: &[Tool],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Completion, LlmError>;
}

/// Which protocol the model speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// OpenAI's chat completions, which most servers speak.
    #[default]
    OpenAi,
    /// Anthropic's Messages API.
    Anthropic,
}

/// The version of Anthropic's API hark speaks (its `anthropic-version` header).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Where the model is and how to reach it.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub provider: Provider,
    /// Base URL up to and including `/v1`, e.g. `http://localhost:11434/v1` or
    /// `https://api.anthropic.com/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    pub max_tokens: u32,
}

/// A chat model over HTTP, streamed, in either protocol.
pub struct StreamingChat {
    config: LlmConfig,
    client: reqwest::Client,
    /// Always Some until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for StreamingChat {
    // A conversation may end on an async worker (a server's connection task): a runtime
    // dropped there would panic, so it is let go without waiting.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl StreamingChat {
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
        // A worker thread of its own: the connection's task must run after a stream is left
        // (a barge-in, a stall) to close the socket, so the server stops generating.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hark-llm")
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
        let base = self.config.base_url.trim_end_matches('/');
        match self.config.provider {
            Provider::OpenAi => format!("{base}/chat/completions"),
            Provider::Anthropic => format!("{base}/messages"),
        }
    }

    /// The request with the provider's body and headers.
    fn request(
        &self,
        url: &str,
        messages: &[ChatMessage],
        tools: &[Tool],
    ) -> reqwest::RequestBuilder {
        let config = &self.config;
        let request = self.client.post(url);
        match config.provider {
            Provider::OpenAi => {
                let request = request.json(&request_body(config, messages, tools));
                match &config.api_key {
                    Some(key) => request.bearer_auth(key),
                    None => request,
                }
            }
            Provider::Anthropic => request
                .header("x-api-key", config.api_key.as_deref().unwrap_or(""))
                .header("anthropic-version", ANTHROPIC_VERSION)
                .json(&anthropic_body(config, messages, tools)),
        }
    }
}

/// A tool's parameters as a JSON schema: every slot a string, described by its question.
fn tool_schema(tool: &Tool) -> serde_json::Value {
    let properties: serde_json::Map<String, serde_json::Value> = tool
        .parameters
        .iter()
        .map(|(name, description)| {
            (
                name.clone(),
                serde_json::json!({"type": "string", "description": description}),
            )
        })
        .collect();
    serde_json::json!({"type": "object", "properties": properties})
}

/// Anthropic's Messages body: the system text apart, turns alternating and starting with
/// the user (the greeting hark said first is preceded by a placeholder), no empty text.
fn anthropic_body(
    config: &LlmConfig,
    messages: &[ChatMessage],
    tools: &[Tool],
) -> serde_json::Value {
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == "system")
        .map(|m| m.content.as_str())
        .collect();
    let mut turns: Vec<(&str, String)> = Vec::new();
    for m in messages.iter().filter(|m| m.role != "system") {
        let role = if m.role == "assistant" {
            "assistant"
        } else {
            "user"
        };
        let text = if m.content.trim().is_empty() {
            "(nothing)"
        } else {
            m.content.as_str()
        };
        match turns.last_mut() {
            Some((last, content)) if *last == role => {
                content.push_str("\n\n");
                content.push_str(text);
            }
            _ => turns.push((role, text.to_string())),
        }
    }
    if turns.first().is_some_and(|(role, _)| *role == "assistant") {
        turns.insert(0, ("user", "(the conversation begins)".into()));
    }
    let mut body = serde_json::json!({
        "model": config.model,
        "max_tokens": config.max_tokens,
        "stream": true,
        "messages": turns
            .iter()
            .map(|(role, content)| serde_json::json!({"role": role, "content": content}))
            .collect::<Vec<_>>(),
    });
    if !system.is_empty() {
        body["system"] = system.join("\n\n").into();
    }
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name,
                    "description": t.description,
                    "input_schema": tool_schema(t),
                })
            })
            .collect();
    }
    body
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
                serde_json::json!({
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": tool_schema(t),
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
    provider: Provider,
    completion: Completion,
    tool_name: String,
    tool_arguments: String,
    /// Anthropic: the content block of the tool call being read (the first one only).
    tool_block: Option<u64>,
    /// The server reported an error inside the stream (after answering 200).
    failed: Option<String>,
    done: bool,
}

impl StreamState {
    fn new(provider: Provider) -> Self {
        Self {
            provider,
            ..Default::default()
        }
    }

    /// Handles one event's data; returns the text delta it carried.
    fn event(&mut self, data: &str) -> Result<Option<String>, String> {
        match self.provider {
            Provider::OpenAi => self.openai_event(data),
            Provider::Anthropic => self.anthropic_event(data),
        }
    }

    /// Anthropic's events, by their `type` (the same as the SSE event name): text and tool
    /// input arrive as deltas of content blocks; `ping`, usage and unknown types are skipped.
    fn anthropic_event(&mut self, data: &str) -> Result<Option<String>, String> {
        let event: serde_json::Value =
            serde_json::from_str(data).map_err(|e| format!("{e} in {data:?}"))?;
        match event["type"].as_str() {
            Some("content_block_start") => {
                let block = &event["content_block"];
                if block["type"] == "tool_use" && self.tool_block.is_none() {
                    self.tool_block = event["index"].as_u64();
                    self.tool_name = block["name"].as_str().unwrap_or("").to_string();
                }
                Ok(None)
            }
            Some("content_block_delta") => {
                let delta = &event["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => Ok(delta["text"]
                        .as_str()
                        .filter(|t| !t.is_empty())
                        .map(String::from)),
                    Some("input_json_delta") if event["index"].as_u64() == self.tool_block => {
                        self.tool_arguments
                            .push_str(delta["partial_json"].as_str().unwrap_or(""));
                        Ok(None)
                    }
                    _ => Ok(None),
                }
            }
            Some("message_stop") => {
                self.done = true;
                Ok(None)
            }
            Some("error") => {
                self.failed = Some(format!(
                    "{}: {}",
                    event["error"]["type"].as_str().unwrap_or("error"),
                    event["error"]["message"].as_str().unwrap_or("")
                ));
                self.done = true;
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn openai_event(&mut self, data: &str) -> Result<Option<String>, String> {
        if data == "[DONE]" {
            self.done = true;
            return Ok(None);
        }
        let chunk: serde_json::Value =
            serde_json::from_str(data).map_err(|e| format!("{e} in {data:?}"))?;
        if let Some(error) = chunk.get("error") {
            self.failed = Some(
                error["message"]
                    .as_str()
                    .unwrap_or("error event")
                    .to_string(),
            );
            self.done = true;
            return Ok(None);
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

impl LanguageModel for StreamingChat {
    fn complete(
        &mut self,
        messages: &[ChatMessage],
        tools: &[Tool],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Completion, LlmError> {
        let url = self.url();
        let stall = self.config.stall_timeout;
        let request = self.request(&url, messages, tools);
        let provider = self.config.provider;
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
            let sent = tokio::time::timeout(
                stall + self.config.connect_timeout,
                while_wanted(request.send(), on_text),
            )
            .await
            .map_err(|_| LlmError::Stalled {
                url: url.clone(),
                ms: stall.as_millis(),
            })?;
            let Some(sent) = sent else {
                return Ok(Completion {
                    stopped: true,
                    ..Completion::default()
                });
            };
            let response = sent.map_err(unreachable)?;
            if !response.status().is_success() {
                return Err(refused(&url, response).await);
            }
            let mut stream = response.bytes_stream();
            let mut state = StreamState::new(provider);
            let mut sse = super::sse::SseDecoder::new();
            while !state.done {
                let next = tokio::time::timeout(stall, while_wanted(stream.next(), on_text));
                let chunk = match next.await {
                    Err(_) => {
                        return Err(LlmError::Stalled {
                            url: url.clone(),
                            ms: stall.as_millis(),
                        })
                    }
                    Ok(None) => {
                        state.completion.stopped = true;
                        return state.finish().map_err(&protocol);
                    }
                    Ok(Some(None)) => break,
                    Ok(Some(Some(chunk))) => chunk.map_err(unreachable)?,
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
            ended(state, sse, &url, on_text)
        })
    }
}

/// The error of a response that is not a success, with the provider's message.
async fn refused(url: &str, response: reqwest::Response) -> LlmError {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(String::from))
        .unwrap_or(text);
    LlmError::Status {
        url: url.to_string(),
        status,
        message,
    }
}

/// The completion once the stream has ended: its last, unterminated event read, and
/// whether it ended as its protocol says a whole answer does.
fn ended(
    mut state: StreamState,
    mut sse: super::sse::SseDecoder,
    url: &str,
    on_text: &mut dyn FnMut(&str) -> bool,
) -> Result<Completion, LlmError> {
    let protocol = |reason: String| LlmError::Protocol {
        url: url.to_string(),
        reason,
    };
    if let Some(data) = sse.finish().filter(|_| !state.done) {
        if let Some(text) = state.event(data.trim()).map_err(protocol)? {
            state.completion.text.push_str(&text);
            on_text(&text);
        }
    }
    if state.provider == Provider::Anthropic && !state.done {
        // Anthropic always ends with message_stop: without it the reply was cut off.
        state.failed = Some("the stream ended before message_stop".into());
    }
    if let Some(message) = state.failed.take() {
        return Err(LlmError::Failed {
            url: url.to_string(),
            message,
        });
    }
    state.finish().map_err(protocol)
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
    fn assembles_claude_s_text_and_tool_call_from_its_named_events() {
        let mut state = StreamState::new(Provider::Anthropic);
        let events = [
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"stop_reason":null,"usage":{"input_tokens":377,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type": "ping"}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"I'll check"}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" that."}}"#,
            r#"{"type":"content_block_stop","index":0        }"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"order_status","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"order_"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"id\": \"45"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"67\"}"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"some_future_event","index":2}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        let mut text = String::new();
        for e in events {
            if let Some(t) = state.event(e).unwrap() {
                text.push_str(&t);
            }
        }
        assert!(state.done);
        assert_eq!(text, "I'll check that.");
        let (name, args) = state.finish().unwrap().tool_call.unwrap();
        assert_eq!(name, "order_status");
        assert_eq!(args["order_id"], "4567");

        let mut state = StreamState::new(Provider::Anthropic);
        state
            .event(r#"{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}"#)
            .unwrap();
        assert!(state.done);
        assert_eq!(
            state.failed.as_deref(),
            Some("overloaded_error: Overloaded")
        );
    }

    #[test]
    fn claude_s_request_keeps_the_system_apart_and_the_turns_alternating_from_the_user() {
        let config = LlmConfig {
            provider: Provider::Anthropic,
            base_url: "https://api.anthropic.com/v1".into(),
            model: "claude-haiku-4-5".into(),
            api_key: None,
            connect_timeout: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(1),
            max_tokens: 200,
        };
        let messages = [
            ChatMessage::new("system", "You are Hark."),
            ChatMessage::new("assistant", "Hi, how can I help?"),
            ChatMessage::new("user", "hello"),
            ChatMessage::new("user", "do you sell gift cards"),
        ];
        let tools = [Tool {
            name: "order_status".into(),
            description: "check an order".into(),
            parameters: vec![("order_id".into(), "What's your order number?".into())],
        }];
        let body = anthropic_body(&config, &messages, &tools);
        assert_eq!(body["system"], "You are Hark.");
        let roles: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        assert_eq!(
            body["messages"][2]["content"],
            "hello\n\ndo you sell gift cards"
        );
        assert_eq!(
            body["tools"][0]["input_schema"]["properties"]["order_id"]["type"],
            "string"
        );
        assert_eq!(body["stream"], true);
    }

    /// A server that takes the request and never answers, as a model reading a long prompt.
    fn silent_server() -> (String, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let held = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            // Read until hark hangs up.
            let mut buf = [0u8; 4096];
            while std::io::Read::read(&mut socket, &mut buf).is_ok_and(|n| n > 0) {}
        });
        (url, held)
    }

    #[test]
    fn a_listener_who_moves_on_stops_the_request_before_the_first_word() {
        let (url, held) = silent_server();
        let mut chat = StreamingChat::new(LlmConfig {
            provider: Provider::OpenAi,
            base_url: url,
            model: "m".into(),
            api_key: None,
            connect_timeout: Duration::from_secs(1),
            stall_timeout: Duration::from_secs(30),
            max_tokens: 10,
        })
        .unwrap();
        let asked = std::time::Instant::now();
        let mut asks = 0;
        let completion = chat
            .complete(&[ChatMessage::new("user", "hi")], &[], &mut |piece| {
                assert!(piece.is_empty(), "the server said nothing");
                asks += 1;
                asks < 4
            })
            .unwrap();
        assert!(completion.stopped && completion.text.is_empty());
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{:?}",
            asked.elapsed()
        );
        // The connection is closed, not left to the server's timeout.
        held.join().unwrap();
    }

    #[test]
    fn markdown_is_removed_for_speech() {
        assert_eq!(
            plain_for_voice("**Sure!** Here's `one`:\n- first"),
            "Sure! Here's one:\nfirst"
        );
    }
}
