//! `hark serve` is safe by default: tokens decide who connects and as whom (a client cannot
//! name itself into another user's memory), browsers may connect only from the page's own
//! origin, serving beyond loopback needs tokens or an explicit choice, and each limit on what
//! one client may cost is enforced with a clear error while the server goes on serving others.

mod common;

use std::time::Duration;

use common::server::{start_server, start_server_with};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const ANA: &str = "ana-token-0123456789";
const BOB: &str = "bob-token-0123456789";
const AGENT: &str = "agent-token-0123456789";

/// A handshake with `headers`; the HTTP status when it is refused.
async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Socket, u16> {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes());
        request
            .headers_mut()
            .insert(name.unwrap(), value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("{e}"),
    }
}

/// The next JSON message (audio skipped); None when the connection ends.
async fn next_json(socket: &mut Socket) -> Option<Value> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("an answer within 30 s")?
            .ok()?;
        match message {
            Message::Text(text) => return Some(serde_json::from_str(text.as_str()).unwrap()),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// Starts a conversation at 16 kHz and streams silence, at about the pace of a microphone,
/// until hark greets; returns the greeting.
async fn greeting(socket: &mut Socket, start: Value) -> String {
    first_replies(socket, start, 1).await.remove(0)
}

/// Starts a conversation and streams silence until hark has spoken `n` pieces.
async fn first_replies(socket: &mut Socket, start: Value, n: usize) -> Vec<String> {
    let mut replies = Vec::new();
    socket
        .send(Message::Text(start.to_string().into()))
        .await
        .unwrap();
    let silence = vec![0u8; 640];
    for _ in 0..100 {
        for _ in 0..10 {
            socket
                .send(Message::Binary(silence.clone().into()))
                .await
                .unwrap();
        }
        let wait = tokio::time::sleep(Duration::from_millis(200));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                m = socket.next() => {
                    let Some(Ok(m)) = m else { panic!("closed before the greeting") };
                    if let Message::Text(text) = m {
                        let m: Value = serde_json::from_str(text.as_str()).unwrap();
                        assert_ne!(m["type"], "error", "{m}");
                        if m["type"] == "event" && m["event"] == "reply" {
                            replies.push(m["text"].as_str().unwrap().to_string());
                            if replies.len() == n {
                                return replies;
                            }
                        }
                    }
                }
            }
        }
    }
    panic!("no greeting in 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_who_connects_and_as_whom() {
    let dir = common::temp_dir("serve-tokens");
    let store = format!("sqlite:{}", dir.join("sessions.sqlite").display());
    // Ana has told hark her name before.
    let out = common::run_chat(
        &["--store", &store, "--user", "ana"],
        &[],
        &["hi, my name is Ana"],
    );
    assert!(out.status.success());
    let tokens = dir.join("tokens");
    std::fs::write(
        &tokens,
        format!("# who may talk to hark\n{ANA} ana\n{BOB} bob customer-service\n"),
    )
    .unwrap();
    let server = start_server_with(&store, &["--tokens", tokens.to_str().unwrap()]);

    assert_eq!(connect(&server.url, &[]).await.err(), Some(401), "no token");
    // The metrics too need a token; the health checks do not.
    let metrics = http(&server.url, "GET /metrics HTTP/1.1\r\nHost: hark\r\n\r\n").await;
    assert!(metrics.starts_with("HTTP/1.1 401"), "{metrics}");
    let scraped = http(
        &server.url,
        &format!("GET /metrics HTTP/1.1\r\nHost: hark\r\nAuthorization: Bearer {ANA}\r\n\r\n"),
    )
    .await;
    assert!(
        scraped.starts_with("HTTP/1.1 200") && scraped.contains("hark_connections"),
        "{scraped}"
    );
    assert!(server
        .http_get("/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    let wrong = "Bearer wrong-token-0123456789";
    assert_eq!(
        connect(&server.url, &[("Authorization", wrong)])
            .await
            .err(),
        Some(401)
    );

    let bearer = format!("Bearer {ANA}");
    let mut ana = connect(&server.url, &[("Authorization", &bearer)])
        .await
        .unwrap();
    let said = greeting(&mut ana, json!({"type": "start"})).await;
    assert!(said.contains("Welcome back, Ana"), "{said}");

    // Bob names himself "ana" in start: the token decides, not the client.
    let mut bob = connect(&format!("{}/?token={BOB}", server.url), &[])
        .await
        .unwrap();
    let said = greeting(&mut bob, json!({"type": "start", "user": "ana"})).await;
    assert!(!said.contains("Ana"), "{said}");

    // A browser: the page needs the token too, and the page's own origin.
    assert!(server.http_get("/").await.starts_with("HTTP/1.1 401"));
    assert!(server
        .http_get(&format!("/?token={ANA}"))
        .await
        .starts_with("HTTP/1.1 200"));
    let foreign = [
        ("Authorization", bearer.as_str()),
        ("Origin", "https://evil.example"),
    ];
    assert_eq!(connect(&server.url, &foreign).await.err(), Some(403));
    let host = server.url.trim_start_matches("ws://").to_string();
    let own = format!("http://{host}");
    let same = [("Authorization", bearer.as_str()), ("Origin", own.as_str())];
    assert!(connect(&server.url, &same).await.is_ok());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn serving_beyond_loopback_needs_tokens_or_consent() {
    let out = common::hark(&["serve", "--listen", "0.0.0.0:0", "--voice", "espeak"]);
    assert!(!out.status.success());
    let err = common::stderr(&out);
    assert!(
        err.contains("--tokens") && err.contains("--allow-anonymous"),
        "{err}"
    );
    // A tokens file with a mistake names its line.
    let dir = common::temp_dir("serve-bad-tokens");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, "short ana\n").unwrap();
    let out = common::hark(&[
        "serve",
        "--tokens",
        tokens.to_str().unwrap(),
        "--voice",
        "espeak",
    ]);
    assert!(!out.status.success());
    assert!(
        common::stderr(&out).contains("line 1"),
        "{}",
        common::stderr(&out)
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_is_enforced_with_a_clear_error_and_others_are_still_served() {
    let dir = common::temp_dir("serve-limits");
    let config = dir.join("hark.toml");
    std::fs::write(
        &config,
        "[server.limits]\nstart_timeout_ms = 1000\nidle_timeout_ms = 1500\nmax_message_bytes = 65536\nmax_connections = 4\nreserved_connections = 0\nstarts_per_minute = 3\n",
    )
    .unwrap();
    let server = start_server(&["--config", config.to_str().unwrap()]);

    // No start: told, and closed.
    let mut idle = connect(&server.url, &[]).await.unwrap();
    let error = next_json(&mut idle).await.unwrap();
    assert_eq!(error["type"], "error");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains("no start message within 1000 ms"));
    assert!(next_json(&mut idle).await.is_none(), "closed");

    // A frame over the limit: told, and closed.
    let mut big = connect(&server.url, &[]).await.unwrap();
    greeting(&mut big, json!({"type": "start"})).await;
    big.send(Message::Binary(vec![0u8; 1 << 20].into()))
        .await
        .unwrap();
    let mut told = false;
    while let Some(m) = next_json(&mut big).await {
        if m["type"] == "error" {
            let message = m["message"].as_str().unwrap();
            assert!(message.contains("65536"), "{message}");
            told = true;
        }
    }
    assert!(told, "the client is told why");

    // Silence from a client in conversation: told, and closed.
    let mut quiet = connect(&server.url, &[]).await.unwrap();
    greeting(&mut quiet, json!({"type": "start"})).await;
    let mut reason = String::new();
    while let Some(m) = next_json(&mut quiet).await {
        if m["type"] == "error" {
            reason = m["message"].as_str().unwrap().to_string();
        }
    }
    assert!(
        reason.contains("nothing from the client for 1500 ms"),
        "{reason:?}"
    );

    // Connections past the cap (these never even send a request) are answered 503…
    server.wait_until_idle().await;
    let addr = server.url.trim_start_matches("ws://").to_string();
    // A connection still ending (the /metrics request that found the server idle) can hold
    // a slot a moment longer, so one of these may be refused: it is replaced until four are
    // held and unanswered.
    let mut held: Vec<tokio::net::TcpStream> = Vec::new();
    for _ in 0..20 {
        while held.len() < 4 {
            held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        held.retain(|s| {
            let mut byte = [0u8; 1];
            matches!(s.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        });
        if held.len() == 4 {
            break;
        }
    }
    assert_eq!(held.len(), 4, "four connections held open");
    let refused = server.http_get("/").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // …and once they go, the server serves again.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut after = connect(&server.url, &[]).await.unwrap();
    let said = greeting(&mut after, json!({"type": "start"})).await;
    assert!(!said.is_empty());
    // That was this address's third conversation this minute: a fourth is refused.
    let mut fourth = connect(&server.url, &[]).await.unwrap();
    fourth
        .send(Message::Text(json!({"type": "start"}).to_string().into()))
        .await
        .unwrap();
    let refused = next_json(&mut fourth).await.unwrap();
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("3 a minute at most"),
        "{refused}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// SIGTERM: the server stops accepting, tells the client the conversation ends, and exits 0
/// within its grace; every turn was saved as it happened, so a restarted server knows the
/// user again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_conversations_cleanly_and_a_restart_knows_the_user() {
    let dir = common::temp_dir("serve-sigterm");
    let store = format!("sqlite:{}", dir.join("sessions.sqlite").display());
    let out = common::run_chat(
        &["--store", &store, "--user", "ana"],
        &[],
        &["hi, my name is Ana"],
    );
    assert!(out.status.success());
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{ANA} ana\n")).unwrap();
    let bearer = format!("Bearer {ANA}");
    let mut server = start_server_with(&store, &["--tokens", tokens.to_str().unwrap()]);
    let mut socket = connect(&server.url, &[("Authorization", &bearer)])
        .await
        .unwrap();
    greeting(&mut socket, json!({"type": "start"})).await;
    let status = tokio::task::block_in_place(|| server.terminate(Duration::from_secs(10)));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let (mut told, mut summary, mut closed) = (false, false, false);
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_secs(10), socket.next()).await
    {
        match message {
            Message::Text(text) => {
                let m: Value = serde_json::from_str(text.as_str()).unwrap();
                told |= m["type"] == "error"
                    && m["message"].as_str().unwrap().contains("shutting down");
                summary |= m["type"] == "summary";
            }
            Message::Close(_) => closed = true,
            _ => {}
        }
    }
    assert!(told, "the client is told why the conversation ends");
    assert!(summary, "the conversation ends with its summary");
    assert!(closed, "and a close frame");

    let server = start_server_with(&store, &["--tokens", tokens.to_str().unwrap()]);
    let mut socket = connect(&server.url, &[("Authorization", &bearer)])
        .await
        .unwrap();
    let said = greeting(&mut socket, json!({"type": "start"})).await;
    assert!(said.contains("Welcome back, Ana"), "{said}");
    std::fs::remove_dir_all(dir).ok();
}

/// Two `hark serve` processes behind one Redis share their users: a booking Ana left half
/// done elsewhere is taken up by whichever server she reaches, as Ana, by her token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_redis_share_a_users_unfinished_conversation() {
    let (_redis, port) = common::redis::start_redis();
    let store = format!("redis://127.0.0.1:{port}/");
    let out = common::run_chat(
        &["--store", &store, "--user", "ana"],
        &[],
        &["hi, my name is Ana", "I'd like to book a haircut tomorrow"],
    );
    assert!(common::stdout(&out).trim_end().ends_with("At what time?"));
    let dir = common::temp_dir("serve-redis");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{ANA} ana\n{BOB} bob\n")).unwrap();
    let args = ["--tokens", tokens.to_str().unwrap()];
    let (one, two) = (
        start_server_with(&store, &args),
        start_server_with(&store, &args),
    );
    for server in [&one, &two] {
        let bearer = format!("Bearer {ANA}");
        let mut ana = connect(&server.url, &[("Authorization", &bearer)])
            .await
            .unwrap();
        let said = greeting(&mut ana, json!({"type": "start"})).await;
        assert!(said.contains("Welcome back, Ana"), "{said}");
    }
    // Bob, on either, is Bob.
    let mut bob = connect(&format!("{}/?token={BOB}", two.url), &[])
        .await
        .unwrap();
    let said = greeting(&mut bob, json!({"type": "start"})).await;
    assert!(!said.contains("Ana"), "{said}");
    std::fs::remove_dir_all(dir).ok();
}

/// With a certificate, the page and the conversations are served over TLS (https://,
/// wss://), as browsers require off-localhost; a plain client gets no conversation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_certificate_the_page_and_conversations_are_served_over_tls() {
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = common::temp_dir("serve-tls");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = start_server(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(server.url.starts_with("wss://"), "{}", server.url);
    let port = server.url.rsplit(':').next().unwrap().to_string();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );

    // The page, over https.
    let connector = tokio_rustls::TlsConnector::from(client.clone());
    let tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut page = Vec::new();
    tls.read_to_end(&mut page).await.ok();
    let page = String::from_utf8_lossy(&page);
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("<html"), "the page itself");

    // A conversation, over wss.
    let url = format!("wss://localhost:{port}/");
    let (mut socket, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(client)),
    )
    .await
    .unwrap();
    let said = greeting(&mut socket, json!({"type": "start"})).await;
    assert!(!said.is_empty());

    // Plain text to the TLS port is no conversation.
    let plain = format!("ws://127.0.0.1:{port}/");
    assert!(tokio_tungstenite::connect_async(plain).await.is_err());
    std::fs::remove_dir_all(dir).ok();
}

/// `kill -9` in the middle of a conversation: every turn already answered is in the store
/// (SQLite in WAL mode, a transaction per turn), the log has no torn line `hark report`
/// trips over, and the user's next conversation takes up where the killed one stopped.
#[test]
fn kill_9_mid_conversation_loses_no_answered_turn() {
    use std::io::{BufRead, BufReader, Write};
    let dir = common::temp_dir("kill-9");
    let store = format!("sqlite:{}", dir.join("sessions.sqlite").display());
    let log = dir.join("conversations");
    let models = common::models();
    let mut child = std::process::Command::new(common::hark_bin())
        .args(["--models", models.root.to_str().unwrap(), "chat"])
        .args(["--today", common::TODAY, "--user", "ana", "--store", &store])
        .args(["--log", log.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut replies = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut said = |line: &str, expect: &str| {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        loop {
            let reply = replies.next().expect("a reply").unwrap();
            if reply.contains(expect) {
                return;
            }
        }
    };
    said("hi, my name is Ana", "Ana");
    said("I'd like to book a haircut tomorrow", "At what time?");
    // Killed while the conversation is under way, before any goodbye.
    child.kill().unwrap();
    child.wait().unwrap();

    let out = common::hark(&["report", log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report = common::stdout(&out);
    assert!(!report.contains("unreadable"), "{report}");
    assert!(report.contains("conversations: 1 "), "{report}");
    let out = common::run_chat(&["--store", &store, "--user", "ana"], &[], &["at 3 pm"]);
    let answer = common::stdout(&out);
    assert!(
        answer.to_lowercase().contains("haircut") || answer.contains("3"),
        "the booking goes on: {answer}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A raw HTTP request to the server (method, path, headers, body): the whole response.
async fn http(url: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(url.trim_start_matches("ws://"))
        .await
        .unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response
}

fn post(path: &str, token: Option<&str>, body: &str) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {path} HTTP/1.1\r\nHost: hark\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_who_took_over_a_handoff_posts_feedback_that_the_report_joins_to_it() {
    let dir = common::temp_dir("serve-feedback");
    let logs = dir.join("logs");
    // A conversation goes to a person; its handoff carries the id feedback names.
    let out = common::run_chat(
        &["--json", "--store", "none", "--log", logs.to_str().unwrap()],
        &[],
        &["reset my password", "let me talk to a person"],
    );
    let turns = common::json_turns(&out);
    let id = turns[1]["handoff"]["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 16);
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{ANA} ana\n{AGENT} maria role:agent\n")).unwrap();
    let server = start_server(&[
        "--tokens",
        tokens.to_str().unwrap(),
        "--log",
        logs.to_str().unwrap(),
    ]);
    let path = format!("/handoffs/{id}/feedback");
    let good = r#"{"useful": true, "resolved": false}"#;

    let refused = http(&server.url, &post(&path, None, good)).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    // A user's token is no agent's: it cannot touch anyone's handoff.
    let user = http(&server.url, &post(&path, Some(ANA), good)).await;
    assert!(user.starts_with("HTTP/1.1 403"), "{user}");
    let wrong = http(
        &server.url,
        &post("/handoffs/nope/feedback", Some(AGENT), good),
    )
    .await;
    assert!(wrong.starts_with("HTTP/1.1 404"), "{wrong}");
    let bad = http(
        &server.url,
        &post(&path, Some(AGENT), r#"{"useful": "very"}"#),
    )
    .await;
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("useful"),
        "{bad}"
    );
    let get = http(
        &server.url,
        &format!("GET {path} HTTP/1.1\r\nHost: hark\r\n\r\n"),
    )
    .await;
    assert!(get.starts_with("HTTP/1.1 405"), "{get}");
    let taken = http(&server.url, &post(&path, Some(AGENT), good)).await;
    assert!(taken.starts_with("HTTP/1.1 200"), "{taken}");
    drop(server);

    let out = common::hark(&["report", logs.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let handoffs = &report["handoffs"];
    assert_eq!(
        (
            handoffs["with_feedback"].as_u64(),
            handoffs["useful"].as_u64(),
            handoffs["resolved"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{report}"
    );
    assert_eq!(
        handoffs["by_reason"]["the user asked for a person"],
        serde_json::json!([1, 1, 0])
    );
    let text = common::stdout(&common::hark(&["report", logs.to_str().unwrap()]));
    assert!(
        text.contains("summary useful 100.0 %, case resolved 0.0 %"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Someone guessing tokens: each failure is counted (never with the token), tries from the
/// address slow down, and after twenty in a minute it is refused with 429 for a while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_tokens_are_counted_slowed_then_refused() {
    let dir = common::temp_dir("serve-guessing");
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{ANA} ana\n")).unwrap();
    let server = start_server(&["--tokens", tokens.to_str().unwrap()]);
    let mut answers = Vec::new();
    let started = std::time::Instant::now();
    for guess in 0..21 {
        let wrong = format!("Bearer guess-{guess:04}-0123456789abcdef");
        answers.push(
            connect(&server.url, &[("Authorization", wrong.as_str())])
                .await
                .err(),
        );
    }
    let took = started.elapsed();
    assert!(
        answers[..20].iter().all(|a| *a == Some(401)) && answers[20] == Some(429),
        "{answers:?}"
    );
    assert!(
        took >= Duration::from_millis(500),
        "the tries after the tenth were not slowed: {took:?}"
    );
    // While refused, even a right token from that address waits (it cannot be told from
    // the guesser's).
    let bearer = format!("Bearer {ANA}");
    assert_eq!(
        connect(&server.url, &[("Authorization", bearer.as_str())])
            .await
            .err(),
        Some(429)
    );
    let scraped = http(
        &server.url,
        &format!("GET /metrics HTTP/1.1\r\nHost: hark\r\nAuthorization: Bearer {ANA}\r\n\r\n"),
    )
    .await;
    assert!(
        scraped.contains("hark_security_events_total{event=\"auth_failed\"} 20"),
        "{scraped}"
    );
    let log = server.stderr_so_far();
    assert!(log.contains("authentication failed"), "{log}");
    assert!(!log.contains("guess-"), "a token reached the log: {log}");
    std::fs::remove_dir_all(dir).ok();
}

/// Requests sent a byte at a time from one address hold at most a few connections: the
/// next from that address is closed at once, and others are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_from_one_address_cannot_hold_every_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_server(&[]);
    let addr: std::net::SocketAddr = server.url.trim_start_matches("ws://").parse().unwrap();
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        slow.push(tcp);
    }
    // Let the server take all eight in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ninth = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(2), ninth.read_to_end(&mut answer))
        .await
        .expect("the ninth slow connection from one address is closed at once");
    assert!(
        closed.is_err() || answer.is_empty(),
        "closed without an answer: {}",
        String::from_utf8_lossy(&answer)
    );
    // Another address (127.0.0.2 is loopback too) is served while the eight are held.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = other.connect(addr).await.unwrap();
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: hark\r\n\r\n")
        .await
        .unwrap();
    let mut health = String::new();
    other.read_to_string(&mut health).await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    // Once they go, the address is served again.
    drop(slow);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = http(&server.url, "GET /metrics HTTP/1.1\r\nHost: hark\r\n\r\n").await;
    assert!(
        metrics.contains("hark_limit_rejections_total{limit=\"handshakes_per_address\"} 1"),
        "{metrics}"
    );
}

/// Anonymous sockets from many addresses take every connection open to all: a request
/// without a token is then answered 503, while a token holder and the health check still get
/// in, on the places kept for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_sockets_cannot_lock_out_token_holders_or_the_health_check() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = common::temp_dir("serve-reserve");
    let config = dir.join("hark.toml");
    std::fs::write(
        &config,
        "[server.limits]\nmax_connections = 6\nreserved_connections = 2\n",
    )
    .unwrap();
    let tokens = dir.join("tokens");
    std::fs::write(&tokens, format!("{ANA} ana\n")).unwrap();
    let server = start_server(&[
        "--config",
        config.to_str().unwrap(),
        "--tokens",
        tokens.to_str().unwrap(),
    ]);
    let addr: std::net::SocketAddr = server.url.trim_start_matches("ws://").parse().unwrap();
    let from = |last: u8| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, last], 0)))
            .unwrap();
        socket.connect(addr).await.unwrap()
    };
    // Four addresses, each a request that never ends: every open place is taken.
    let mut slow = Vec::new();
    for last in 2..6 {
        let mut tcp = from(last).await;
        tcp.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        slow.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = |request: &'static str, last: u8| async move {
        let mut tcp = from(last).await;
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        answer
    };
    let anonymous = answer("GET / HTTP/1.1\r\nHost: hark\r\n\r\n", 6).await;
    assert!(anonymous.starts_with("HTTP/1.1 503"), "{anonymous}");
    let health = answer("GET /healthz HTTP/1.1\r\nHost: hark\r\n\r\n", 7).await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let bearer = format!("Bearer {ANA}");
    let mut ana = connect(&server.url, &[("Authorization", bearer.as_str())])
        .await
        .expect("a token holder gets in");
    let said = greeting(&mut ana, json!({"type": "start"})).await;
    assert!(!said.is_empty());
    drop(slow);
    std::fs::remove_dir_all(dir).ok();
}
