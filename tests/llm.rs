//! The language-model path of the dialogue core against a local server that speaks the
//! exact protocol of OpenAI's streaming chat completions (HTTP/1.1, chunked transfer,
//! `text/event-stream`, `chat.completion.chunk` events, `data: [DONE]`), including tool
//! calls, error replies and a server that stalls mid-stream.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How the fake model answers one request.
#[derive(Clone)]
enum Behaviour {
    /// Stream these content pieces.
    Text(Vec<&'static str>),
    /// Call a function with these JSON arguments (streamed in two pieces).
    Call(&'static str, &'static str),
    /// Answer with an HTTP error and an OpenAI error body.
    Error(u16, &'static str),
    /// Send one piece, then nothing for a long time.
    Stall,
}

fn chunk(delta: Value) -> String {
    let event = serde_json::json!({
        "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "test-model", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]
    });
    format!("data: {event}\n\n")
}

fn write_chunked(stream: &mut TcpStream, data: &str) -> std::io::Result<()> {
    write!(stream, "{:x}\r\n{data}\r\n", data.len())?;
    stream.flush()
}

fn serve(mut stream: TcpStream, behaviour: Behaviour) -> std::io::Result<()> {
    match behaviour {
        Behaviour::Error(status, message) => {
            let body = serde_json::json!({"error": {"message": message, "type": "server_error"}}).to_string();
            write!(
                stream,
                "HTTP/1.1 {status} Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            return stream.flush();
        }
        _ => write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )?,
    }
    write_chunked(
        &mut stream,
        &chunk(serde_json::json!({"role": "assistant", "content": ""})),
    )?;
    match behaviour {
        Behaviour::Text(pieces) => {
            for piece in pieces {
                write_chunked(&mut stream, &chunk(serde_json::json!({"content": piece})))?;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Behaviour::Call(name, args) => {
            let (a, b) = args.split_at(args.len() / 2);
            write_chunked(
                &mut stream,
                &chunk(
                    serde_json::json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": name, "arguments": a}}]}),
                ),
            )?;
            write_chunked(
                &mut stream,
                &chunk(
                    serde_json::json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}),
                ),
            )?;
        }
        Behaviour::Stall => {
            write_chunked(
                &mut stream,
                &chunk(serde_json::json!({"content": "Let me"})),
            )?;
            std::thread::sleep(Duration::from_secs(5));
        }
        Behaviour::Error(..) => unreachable!(),
    }
    write_chunked(&mut stream, "data: [DONE]\n\n")?;
    write!(stream, "0\r\n\r\n")?;
    stream.flush()
}

/// A fake model server: answers requests with `behaviours` in turn; hands over each
/// request's JSON body.
fn model_server(behaviours: Vec<Behaviour>) -> (String, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (stream, behaviour) in listener.incoming().zip(behaviours) {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut length, mut request_line) = (0, String::new());
            reader.read_line(&mut request_line).unwrap();
            assert!(
                request_line.starts_with("POST /v1/chat/completions "),
                "{request_line}"
            );
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = tx.send(serde_json::from_slice(&body).unwrap());
            let _ = std::thread::spawn(move || serve(stream, behaviour)).join();
        }
    });
    (url, rx)
}

fn chat_with_model(url: &str, lines: &[&str]) -> (Vec<Value>, String) {
    let env = [
        ("HARK_LLM_URL", url),
        ("HARK_LLM_MODEL", "test-model"),
        ("HARK_LLM_STALL_MS", "400"),
    ];
    common::chat_json(&[], &env, lines)
}

#[test]
fn questions_outside_the_flows_are_answered_by_the_model_as_plain_speech() {
    let (url, requests) = model_server(vec![Behaviour::Text(vec![
        "We ",
        "do **not** ",
        "sell gift cards",
        ", sorry.",
    ])]);
    let (turns, _) = chat_with_model(&url, &["do you sell gift cards"]);
    assert_eq!(turns[0]["reply"], "We do not sell gift cards, sorry.");
    let request = requests.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(request["model"], "test-model");
    assert_eq!(request["stream"], true);
    assert_eq!(request["messages"][0]["role"], "system");
    assert_eq!(
        request["messages"].as_array().unwrap().last().unwrap()["content"],
        "do you sell gift cards"
    );
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"book_appointment") && tools.contains(&"order_status"),
        "{tools:?}"
    );
}

#[test]
fn the_model_can_start_a_flow_by_calling_it() {
    let (url, _requests) = model_server(vec![Behaviour::Call(
        "book_appointment",
        r#"{"service": "haircut", "date": "tomorrow", "time": "3pm"}"#,
    )]);
    let (turns, _) = chat_with_model(
        &url,
        &["could my fringe get sorted tomorrow around three in the afternoon"],
    );
    assert_eq!(turns[0]["flow"], "book_appointment");
    assert_eq!(turns[0]["slots"]["service"], "haircut");
    assert_eq!(turns[0]["slots"]["time"], "15:00");
    assert!(turns[0]["reply"]
        .as_str()
        .unwrap()
        .contains("Shall I book it?"));
}

#[test]
fn requests_the_flows_cover_never_reach_the_model() {
    let (url, requests) = model_server(vec![Behaviour::Text(vec!["wrong"])]);
    let (turns, _) = chat_with_model(&url, &["where is my order"]);
    assert_eq!(turns[0]["flow"], "order_status");
    assert!(
        requests.recv_timeout(Duration::from_millis(300)).is_err(),
        "the model was asked"
    );
}

#[test]
fn model_errors_and_stalls_get_the_fallback_and_the_conversation_goes_on() {
    let (url, _requests) = model_server(vec![
        Behaviour::Error(503, "model overloaded"),
        Behaviour::Stall,
    ]);
    let start = Instant::now();
    let (turns, stderr) = chat_with_model(
        &url,
        &[
            "do you sell gift cards",
            "is there parking nearby",
            "where is my order",
        ],
    );
    assert!(turns[0]["reply"]
        .as_str()
        .unwrap()
        .starts_with("Sorry, I can't help with that."));
    assert!(
        stderr.contains("503") && stderr.contains("model overloaded"),
        "{stderr}"
    );
    // The stalled stream is abandoned after the stall timeout, and after two failures a
    // person is offered.
    assert!(stderr.contains("sent nothing for 400 ms"), "{stderr}");
    assert!(turns[1]["reply"]
        .as_str()
        .unwrap()
        .contains("connect you with a person"));
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "the stall held the conversation up"
    );
    // Declining the person, the user still gets their order checked... after saying no.
    assert_eq!(turns.len(), 3);
}
