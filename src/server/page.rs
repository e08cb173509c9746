//! The browser client (assets/web/index.html), served on the WebSocket's own port: opening
//! `http://ADDR/` in a browser is a conversation with hark.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PAGE: &str = include_str!("../../assets/web/index.html");
/// Longest request head read (a browser's is well under this).
const MAX_HEAD: usize = 8192;
/// A client that has not sent its request head by then is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether the request waiting on `stream` asks for a WebSocket (it is only looked at: the
/// handshake still reads it). None when no complete request head came in time.
pub async fn wants_websocket(stream: &TcpStream) -> Option<bool> {
    let mut buf = vec![0u8; MAX_HEAD];
    let head = tokio::time::timeout(HEAD_TIMEOUT, async {
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase());
            }
            if n == buf.len() {
                return None;
            }
            // Peeking again returns at once with the same bytes: wait for more.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .ok()??;
    Some(
        head.lines()
            .any(|l| l.starts_with("upgrade:") && l.contains("websocket")),
    )
}

/// Answers a connection over the server's limit.
pub async fn answer_busy(mut stream: TcpStream) -> std::io::Result<()> {
    let body = "too many connections; try again later\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Answers a plain HTTP request: the page at `/` (with a valid `?token=` when the server
/// takes tokens), nothing else.
pub async fn answer_http(mut stream: TcpStream, access: &super::Access) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < buf.len() {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let request = String::from_utf8_lossy(&buf[..len]);
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let allowed = match access {
        super::Access::Anonymous => true,
        super::Access::Tokens(tokens) => super::auth::request_token(None, Some(query))
            .is_some_and(|t| tokens.grant(&t).is_some()),
    };
    let (status, kind, body) = match (method, path) {
        ("GET", "/" | "/index.html") if !allowed => (
            "401 Unauthorized",
            "text/plain",
            "this server needs a token: open /?token=YOUR_TOKEN\n",
        ),
        ("GET", "/" | "/index.html") => ("200 OK", "text/html; charset=utf-8", PAGE),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n"),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n"),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
