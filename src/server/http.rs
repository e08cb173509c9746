//! The HTTP side of the serve listener: one request head read from any stream (plain TCP or
//! TLS), then either a WebSocket upgrade or a plain answer (the page, health, metrics).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest request head read (a browser's is well under this).
pub const MAX_HEAD: usize = 8192;
const MAX_HEADERS: usize = 64;

/// Any stream a connection arrives on.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A request head, as far as the server cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub method: String,
    pub path: String,
    /// The query string without its `?` (empty when none).
    pub query: String,
    /// Header names in lowercase, values as sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether it asks for a WebSocket.
    pub fn is_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("the connection closed before a request")]
    Closed,
    #[error("no request head in time")]
    Timeout,
    #[error("request head over {MAX_HEAD} bytes")]
    TooLong,
    #[error("not an HTTP request: {0}")]
    Malformed(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Parses a complete head (`Ok(None)`: more bytes are needed), and how many bytes it took.
pub fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let used = match request.parse(bytes) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let target = request.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = request
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let head = Head {
        method: request.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
    };
    Ok(Some((head, used)))
}

/// Reads one request head; the bytes after it (a client may send its first WebSocket frame
/// without waiting) are returned too. A client that has not sent it within `timeout` is
/// dropped.
pub async fn read_head(
    stream: &mut dyn Io,
    timeout: Duration,
) -> Result<(Head, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(HeadError::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some((head, used)) = parse_head(&buf)? {
                return Ok((head, buf[used..].to_vec()));
            }
            if buf.len() > MAX_HEAD {
                return Err(HeadError::TooLong);
            }
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| HeadError::Timeout)?
}

/// A plain answer that closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    /// Extra header lines, each without its CRLF.
    pub headers: Vec<String>,
}

impl Answer {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<String>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn with_header(mut self, line: impl Into<String>) -> Self {
        self.headers.push(line.into());
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for line in &self.headers {
            head.push_str(line);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(self.body.as_bytes());
        bytes
    }

    pub async fn send(&self, stream: &mut dyn Io) -> std::io::Result<()> {
        stream.write_all(&self.to_bytes()).await?;
        stream.shutdown().await
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The `101` answer to a valid WebSocket request, or why it is not one.
pub fn upgrade_response(head: &Head) -> Result<Vec<u8>, Answer> {
    if head.method != "GET" {
        return Err(Answer::text(405, "a WebSocket starts with GET\n"));
    }
    if head.header("sec-websocket-version") != Some("13") {
        return Err(Answer::text(426, "WebSocket version 13 only\n")
            .with_header("Sec-WebSocket-Version: 13"));
    }
    let Some(key) = head.header("sec-websocket-key") else {
        return Err(Answer::text(400, "no Sec-WebSocket-Key\n"));
    };
    let accept =
        tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.trim().as_bytes());
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_parsed_with_its_query_and_lowercase_headers() {
        let raw =
            b"GET /twilio?token=abc&x=1 HTTP/1.1\r\nHost: h:1\r\nUpgrade: WebSocket\r\n\r\nrest";
        let (head, used) = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.path, "/twilio");
        assert_eq!(head.query, "token=abc&x=1");
        assert_eq!(head.header("host"), Some("h:1"));
        assert!(head.is_upgrade());
        assert_eq!(&raw[used..], b"rest");
    }

    #[test]
    fn a_partial_head_asks_for_more_and_garbage_is_refused() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost:").unwrap().is_none());
        assert!(matches!(
            parse_head(b"\x16\x03\x01 hello\r\n\r\n"),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn the_accept_key_is_the_rfc_6455_example() {
        let raw = b"GET / HTTP/1.1\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nUpgrade: websocket\r\n\r\n";
        let (head, _) = parse_head(raw).unwrap().unwrap();
        let response = String::from_utf8(upgrade_response(&head).unwrap()).unwrap();
        assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    }

    #[test]
    fn an_upgrade_without_key_or_version_is_answered_not_accepted() {
        let (head, _) = parse_head(b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(upgrade_response(&head).unwrap_err().status, 426);
    }
}
