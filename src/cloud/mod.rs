//! What every cloud speech engine shares: the network thread the sockets live on, the
//! provider's address and key, the WebSocket handshake with errors a user can act on, and
//! the bounded retry schedule. The providers' wire protocols live beside their engines
//! (`stt::cloud`, `tts::cloud`), one file each.

use std::time::Duration;

use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
pub type Request = http::Request<()>;

/// The runtime every cloud socket of the process runs on: one thread, started on first use
/// (the sockets only wait on the network; the audio and text work stays on the callers').
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("hark-cloud")
            .enable_all()
            .build()
            .expect("a one-thread tokio runtime can always be built")
    })
}

/// Where a provider is and the key it wants. The key never appears in `Debug` output,
/// logs or errors.
#[derive(Clone)]
pub struct Endpoint {
    pub provider: &'static str,
    /// Base URL without a trailing slash, e.g. `wss://api.deepgram.com` (or a proxy, a region,
    /// a local test server).
    pub base: String,
    pub key: String,
    /// The environment variable the key comes from, for error messages.
    pub key_var: &'static str,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("provider", &self.provider)
            .field("base", &self.base)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Endpoint {
    /// The provider's endpoint: `key` (required; it comes from `key_var`) at `base`, or at
    /// `default_base` when that is empty.
    pub fn new(
        provider: &'static str,
        key_var: &'static str,
        key: &str,
        base: &str,
        default_base: &str,
    ) -> Result<Self, CloudError> {
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(CloudError::MissingKey {
                provider,
                var: key_var,
            });
        }
        let base = if base.trim().is_empty() {
            default_base
        } else {
            base
        };
        Ok(Self {
            provider,
            base: base.trim().trim_end_matches('/').to_string(),
            key,
            key_var,
        })
    }

    /// A handshake request for `path_and_query` (starting with `/`) with `headers`.
    pub fn request(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
    ) -> Result<Request, CloudError> {
        let url = format!("{}{path_and_query}", self.base);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| CloudError::BadUrl {
                provider: self.provider,
                url: self.base.clone(),
                reason: e.to_string(),
            })?;
        for (name, value) in headers {
            let value = http::HeaderValue::from_str(value).map_err(|_| CloudError::BadKey {
                provider: self.provider,
                var: self.key_var,
            })?;
            let name =
                http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| CloudError::BadUrl {
                    provider: self.provider,
                    url: self.base.clone(),
                    reason: e.to_string(),
                })?;
            request.headers_mut().insert(name, value);
        }
        Ok(request)
    }

    /// Opens the socket, within `timeout`.
    pub async fn connect(&self, request: Request, timeout: Duration) -> Result<Socket, CloudError> {
        let connecting = tokio_tungstenite::connect_async(request);
        match tokio::time::timeout(timeout, connecting).await {
            Err(_) => Err(CloudError::Connect {
                provider: self.provider,
                url: self.base.clone(),
                reason: format!("no answer within {} ms", timeout.as_millis()),
            }),
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(tungstenite::Error::Http(response)))
                if matches!(response.status().as_u16(), 401 | 403) =>
            {
                Err(CloudError::Unauthorized {
                    provider: self.provider,
                    status: response.status().as_u16(),
                    var: self.key_var,
                })
            }
            Ok(Err(tungstenite::Error::Http(response))) => Err(CloudError::Refused {
                provider: self.provider,
                status: response.status().as_u16(),
            }),
            Ok(Err(e)) => Err(CloudError::Connect {
                provider: self.provider,
                url: self.base.clone(),
                reason: e.to_string(),
            }),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    #[error("{provider}: no API key; set {var}")]
    MissingKey {
        provider: &'static str,
        var: &'static str,
    },
    #[error("{provider}: the key in {var} is not a valid header value")]
    BadKey {
        provider: &'static str,
        var: &'static str,
    },
    #[error("{provider}: bad URL {url}: {reason}")]
    BadUrl {
        provider: &'static str,
        url: String,
        reason: String,
    },
    #[error("{provider} refused the key (HTTP {status}); check {var}")]
    Unauthorized {
        provider: &'static str,
        status: u16,
        var: &'static str,
    },
    #[error("{provider} refused the connection (HTTP {status})")]
    Refused { provider: &'static str, status: u16 },
    #[error("{provider}: could not connect to {url}: {reason}")]
    Connect {
        provider: &'static str,
        url: String,
        reason: String,
    },
    #[error("{provider}: {reason}")]
    Failed {
        provider: &'static str,
        reason: String,
    },
}

impl CloudError {
    /// Whether trying again could help (not for a refused key or a bad address).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Failed { .. } => true,
            Self::Refused { status, .. } => *status >= 500 || *status == 429,
            Self::MissingKey { .. }
            | Self::BadKey { .. }
            | Self::BadUrl { .. }
            | Self::Unauthorized { .. } => false,
        }
    }
}

/// How long to wait before each reconnection attempt; after the last, the engine gives up
/// (and the conversation fails over to the local engine).
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(400),
    Duration::from_millis(1200),
];

/// A socket that has stayed open this long has earned a fresh set of retries.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);

/// A close frame read as text for an error message (`1011 NET-0001 …`).
pub fn describe_close(frame: Option<&tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(f) if f.reason.is_empty() => format!("closed ({})", u16::from(f.code)),
        Some(f) => format!("closed ({}: {})", u16::from(f.code), f.reason),
        None => "closed without a close frame".into(),
    }
}

/// 16-bit little-endian PCM of `samples` (clamped to [-1, 1]; NaN as silence).
pub fn pcm16_bytes(samples: &[f32], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for &s in samples {
        let s = if s.is_finite() {
            s.clamp(-1.0, 1.0)
        } else {
            0.0
        };
        out.extend_from_slice(&((s * 32767.0).round() as i16).to_le_bytes());
    }
}

/// Samples of 16-bit little-endian PCM (an odd trailing byte is ignored).
pub fn pcm16_samples(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0),
    );
}

/// Samples of 16-bit little-endian PCM, in a new buffer.
pub fn pcm16_vec(bytes: &[u8]) -> Vec<f32> {
    let mut samples = Vec::with_capacity(bytes.len() / 2);
    pcm16_samples(bytes, &mut samples);
    samples
}

/// Percent-encodes a query value.
pub fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_round_trips_and_bad_samples_are_silence() {
        let mut bytes = Vec::new();
        pcm16_bytes(&[0.0, 0.5, -1.0, 2.0, f32::NAN], &mut bytes);
        let mut back = Vec::new();
        pcm16_samples(&bytes, &mut back);
        assert_eq!(back.len(), 5);
        assert!((back[1] - 0.5).abs() < 1e-3);
        assert!((back[2] + 1.0).abs() < 1e-3);
        assert!((back[3] - 1.0).abs() < 1e-3, "clamped");
        assert_eq!(back[4], 0.0);
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(query_value("[\"a b\"]"), "%5B%22a%20b%22%5D");
        assert_eq!(query_value("nova-3"), "nova-3");
    }

    #[test]
    fn the_key_is_never_shown() {
        let e = Endpoint {
            provider: "Deepgram",
            base: "ws://x".into(),
            key: "sekrit".into(),
            key_var: "DEEPGRAM_API_KEY",
        };
        assert!(!format!("{e:?}").contains("sekrit"));
        let err = CloudError::Unauthorized {
            provider: "Deepgram",
            status: 401,
            var: "DEEPGRAM_API_KEY",
        };
        assert_eq!(
            err.to_string(),
            "Deepgram refused the key (HTTP 401); check DEEPGRAM_API_KEY"
        );
    }
}
