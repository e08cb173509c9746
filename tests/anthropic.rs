//! The language-model path with `provider = anthropic`, against a local server that speaks
//! the exact protocol of Anthropic's Messages API: `POST /v1/messages` with `x-api-key` and
//! `anthropic-version`, the system text apart from the turns, tools with `input_schema`;
//! a streamed reply of named server-sent events (`message_start`, `content_block_start`,
//! `ping`, `content_block_delta` with `text_delta` or `input_json_delta` split anywhere,
//! `content_block_stop`, `message_delta`, `message_stop`), its error bodies (401, 529
//! `overloaded_error`), an `error` event in the middle of a stream, and a stall.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};

const KEY: &str = "sk-ant-test";

/// How the fake answers one request.
#[derive(Clone)]
enum Behaviour {
    /// Stream these text pieces.
    Text(Vec<&'static str>),
    /// A sentence, then a call of this tool with this input, streamed in fragments.
    Tool(&'static str, &'static str),
    /// An HTTP error with Anthropic's error body.
    Error(u16, &'static str, &'static str),
    /// Some text, then an `error` event (the stream had answered 200).
    ErrorMidStream,
    /// Some text, then nothing for a long time.
    Stall,
    /// Some text, then the connection closes without `message_stop`.
    Cut,
}

/// A request as the server received it.
struct Received {
    headers: Vec<(String, String)>,
    body: Value,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn event(stream: &mut TcpStream, data: Value) -> std::io::Result<()> {
    let name = data["type"].as_str().unwrap().to_string();
    let text = format!("event: {name}\ndata: {data}\n\n");
    write!(stream, "{:x}\r\n{text}\r\n", text.len())?;
    stream.flush()
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011test"})
}

fn text_block(stream: &mut TcpStream, index: u64, pieces: &[&str]) -> std::io::Result<()> {
    event(
        stream,
        json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
    )?;
    for piece in pieces {
        event(
            stream,
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
        )?;
        std::thread::sleep(Duration::from_millis(5));
    }
    event(
        stream,
        json!({"type": "content_block_stop", "index": index}),
    )
}

fn tool_block(stream: &mut TcpStream, index: u64, name: &str, input: &str) -> std::io::Result<()> {
    event(
        stream,
        json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": "toolu_01test", "name": name, "input": {}}}),
    )?;
    // The input arrives as string fragments split anywhere, the first often empty.
    let (a, b) = input.split_at(input.len() / 3);
    let (b, c) = b.split_at(b.len() / 2);
    for fragment in ["", a, b, c] {
        event(
            stream,
            json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": fragment}}),
        )?;
    }
    event(
        stream,
        json!({"type": "content_block_stop", "index": index}),
    )
}

fn serve(mut stream: TcpStream, behaviour: Behaviour) -> std::io::Result<()> {
    if let Behaviour::Error(status, kind, message) = behaviour {
        let body = error_body(kind, message).to_string();
        write!(
            stream,
            "HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\nrequest-id: req_011test\r\nx-should-retry: true\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return stream.flush();
    }
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )?;
    event(
        &mut stream,
        json!({"type": "message_start", "message": {"id": "msg_01test", "type": "message", "role": "assistant", "model": "claude-test", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 377, "output_tokens": 1}}}),
    )?;
    event(&mut stream, json!({"type": "ping"}))?;
    let stop_reason = match behaviour {
        Behaviour::Text(pieces) => {
            text_block(&mut stream, 0, &pieces)?;
            "end_turn"
        }
        Behaviour::Tool(name, input) => {
            text_block(&mut stream, 0, &["Let me set that up."])?;
            tool_block(&mut stream, 1, name, input)?;
            "tool_use"
        }
        Behaviour::ErrorMidStream => {
            text_block(&mut stream, 0, &["Let me"])?;
            event(&mut stream, error_body("overloaded_error", "Overloaded"))?;
            write!(stream, "0\r\n\r\n")?;
            return stream.flush();
        }
        Behaviour::Cut => {
            text_block(&mut stream, 0, &["We ship to"])?;
            write!(stream, "0\r\n\r\n")?;
            return stream.flush();
        }
        Behaviour::Stall => {
            event(
                &mut stream,
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            )?;
            std::thread::sleep(Duration::from_secs(5));
            return Ok(());
        }
        Behaviour::Error(..) => unreachable!(),
    };
    event(
        &mut stream,
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": 42}}),
    )?;
    event(&mut stream, json!({"type": "message_stop"}))?;
    write!(stream, "0\r\n\r\n")?;
    stream.flush()
}

/// Reads one request: its headers and JSON body. A request to another path, or without the
/// key, is answered as Anthropic does and not counted.
fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    assert!(
        request_line.starts_with("POST /v1/messages "),
        "{request_line}"
    );
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        headers,
        body: serde_json::from_slice(&body).ok()?,
    })
}

/// A fake Messages API: answers requests with `behaviours` in turn (a wrong key gets 401
/// whatever the behaviour); hands over each request.
fn anthropic_server(behaviours: Vec<Behaviour>) -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (stream, behaviour) in listener.incoming().zip(behaviours) {
            let Ok(stream) = stream else { continue };
            let Some(request) = read_request(&stream) else {
                continue;
            };
            let behaviour = if request.header("x-api-key") == Some(KEY) {
                behaviour
            } else {
                Behaviour::Error(401, "authentication_error", "invalid x-api-key")
            };
            let _ = tx.send(request);
            let _ = std::thread::spawn(move || serve(stream, behaviour)).join();
        }
    });
    (url, rx)
}

fn chat_with_claude(url: &str, key: &str, lines: &[&str]) -> (Vec<Value>, String) {
    let env = [
        ("HARK_LLM_PROVIDER", "anthropic"),
        ("HARK_LLM_URL", url),
        ("ANTHROPIC_API_KEY", key),
        ("HARK_LLM_MODEL", "claude-test"),
        ("HARK_LLM_STALL_MS", "400"),
    ];
    common::chat_json(&[], &env, lines)
}

#[test]
fn claude_answers_what_the_flows_do_not_cover_as_it_streams() {
    let (url, requests) = anthropic_server(vec![Behaviour::Text(vec![
        "We ",
        "do **not** ",
        "sell gift cards",
        ", sorry.",
    ])]);
    let (turns, stderr) = chat_with_claude(&url, KEY, &["do you sell gift cards"]);
    assert_eq!(
        turns[0]["reply"], "We do not sell gift cards, sorry.",
        "{stderr}"
    );
    let request = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    let body = &request.body;
    assert_eq!(body["model"], "claude-test");
    assert_eq!(body["stream"], true);
    assert!(body["max_tokens"].as_u64().unwrap() > 0);
    // The system text is apart from the turns, which alternate and start with the user.
    assert!(body["system"].as_str().unwrap().contains("You are Hark"));
    let messages = body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles.first(), Some(&"user"), "{roles:?}");
    assert!(roles.windows(2).all(|w| w[0] != w[1]), "{roles:?}");
    assert_eq!(
        messages.last().unwrap()["content"],
        "do you sell gift cards"
    );
    let tool = body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "book_appointment")
        .expect("the flows offered as tools");
    assert_eq!(tool["input_schema"]["type"], "object");
    assert!(tool["input_schema"]["properties"]["date"].is_object());
}

#[test]
fn a_tool_call_from_claude_starts_the_flow_with_its_input() {
    let (url, _requests) = anthropic_server(vec![Behaviour::Tool(
        "book_appointment",
        r#"{"service": "haircut", "date": "tomorrow", "time": "3pm"}"#,
    )]);
    let (turns, stderr) = chat_with_claude(
        &url,
        KEY,
        &["could my fringe get sorted tomorrow around three in the afternoon"],
    );
    assert_eq!(turns[0]["flow"], "book_appointment", "{stderr}");
    assert_eq!(turns[0]["slots"]["service"], "haircut");
    assert_eq!(turns[0]["slots"]["time"], "15:00");
    let reply = turns[0]["reply"].as_str().unwrap();
    assert!(reply.starts_with("Let me set that up."), "{reply}");
    assert!(reply.contains("Shall I book it?"), "{reply}");
}

#[test]
fn overload_errors_mid_stream_stalls_and_a_refused_key_get_the_fallback() {
    let (url, _requests) = anthropic_server(vec![
        Behaviour::Error(529, "overloaded_error", "Overloaded"),
        Behaviour::ErrorMidStream,
        Behaviour::Stall,
    ]);
    let (turns, stderr) = chat_with_claude(
        &url,
        KEY,
        &[
            "do you sell gift cards",
            "is there parking nearby",
            "no",
            "can I bring my dog",
        ],
    );
    let reply = |i: usize| turns[i]["reply"].as_str().unwrap().to_string();
    assert!(
        reply(0).starts_with("Sorry, I can't help with that."),
        "{}",
        reply(0)
    );
    assert!(
        stderr.contains("529") && stderr.contains("Overloaded"),
        "{stderr}"
    );
    assert!(
        stderr.contains("failed mid-reply: overloaded_error: Overloaded"),
        "{stderr}"
    );
    // Two failures in a row: a person is offered; declined, the next question stalls.
    assert!(
        reply(1).contains("connect you with a person"),
        "{}",
        reply(1)
    );
    assert!(stderr.contains("sent nothing for 400 ms"), "{stderr}");
    assert_eq!(turns.len(), 4, "the conversation went on: {turns:?}");

    let (url, requests) = anthropic_server(vec![Behaviour::Text(vec!["never said"])]);
    let (turns, stderr) = chat_with_claude(&url, "sk-ant-wrong", &["do you sell gift cards"]);
    assert!(
        turns[0]["reply"]
            .as_str()
            .unwrap()
            .starts_with("Sorry, I can't help with that."),
        "{turns:?}"
    );
    assert!(
        stderr.contains("401") && stderr.contains("invalid x-api-key"),
        "{stderr}"
    );
    assert_eq!(
        requests.recv().unwrap().header("x-api-key"),
        Some("sk-ant-wrong")
    );
}

#[test]
fn a_reply_cut_off_before_message_stop_is_a_failure_not_an_answer() {
    let (url, _requests) = anthropic_server(vec![Behaviour::Cut]);
    let (turns, stderr) = chat_with_claude(&url, KEY, &["do you sell gift cards"]);
    assert!(
        stderr.contains("the stream ended before message_stop"),
        "{stderr}"
    );
    assert!(
        turns[0]["reply"]
            .as_str()
            .unwrap()
            .contains("Sorry, I can't help with that."),
        "{turns:?}"
    );
}
