//! Who may talk to `hark serve`, and as whom: bearer tokens from a file (one
//! `TOKEN USER_ID [DOMAIN…] [role:agent]` per line, `#` comments), checked at the WebSocket handshake
//! (`Authorization: Bearer TOKEN`, or `?token=TOKEN` for browsers) and on the web page. The
//! user id comes from the token, never from the client. Browsers' connections must come from
//! the page's own origin (or one allowed by name).

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user: String,
    /// Domains it may talk to; empty: any.
    pub domains: Vec<String>,
    /// The holder is one of the people conversations are handed to (`role:agent`): only
    /// they may post feedback on handoffs, which a user's token must not touch.
    pub agent: bool,
}

impl Grant {
    pub fn allows(&self, domain: &str) -> bool {
        self.domains.is_empty() || self.domains.iter().any(|d| d == domain)
    }
}

/// The tokens of a tokens file, kept as digests (a token is never held in memory longer
/// than its check).
#[derive(Debug, Default)]
pub struct Tokens {
    grants: HashMap<[u8; 32], Grant>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("tokens file {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("tokens file line {line}: {reason}")]
    Line { line: usize, reason: String },
    #[error("tokens file {0} holds no tokens")]
    Empty(String),
}

/// Tokens shorter than this are guessable.
const MIN_TOKEN_CHARS: usize = 16;
const MAX_USER_CHARS: usize = 128;

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|error| AuthError::Read {
            path: path.display().to_string(),
            error,
        })?;
        let tokens = Self::parse(&text)?;
        if tokens.grants.is_empty() {
            return Err(AuthError::Empty(path.display().to_string()));
        }
        Ok(tokens)
    }

    pub fn parse(text: &str) -> Result<Self, AuthError> {
        let mut grants = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(token), Some(user)) = (words.next(), words.next()) else {
                return Err(AuthError::Line {
                    line: line_no,
                    reason: "expected TOKEN USER_ID [DOMAIN…] [role:agent]".into(),
                });
            };
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(AuthError::Line {
                    line: line_no,
                    reason: format!("a token needs at least {MIN_TOKEN_CHARS} characters"),
                });
            }
            if !valid_user(user) {
                return Err(AuthError::Line {
                    line: line_no,
                    reason: format!(
                        "a user id is 1–{MAX_USER_CHARS} letters, digits or . _ @ - characters"
                    ),
                });
            }
            let mut grant = Grant {
                user: user.to_string(),
                domains: Vec::new(),
                agent: false,
            };
            for word in words {
                match word.strip_prefix("role:") {
                    Some("agent") => grant.agent = true,
                    Some(role) => {
                        return Err(AuthError::Line {
                            line: line_no,
                            reason: format!("unknown role '{role}': the one role is role:agent"),
                        })
                    }
                    None => grant.domains.push(word.to_string()),
                }
            }
            if grants.insert(digest(token), grant).is_some() {
                return Err(AuthError::Line {
                    line: line_no,
                    reason: "this token is listed twice".into(),
                });
            }
        }
        Ok(Self { grants })
    }

    /// Whether the request `head` shows one of these tokens (header or `?token=`).
    pub fn shown_in(&self, head: &super::http::Head) -> bool {
        request_token(head.header("authorization"), Some(&head.query))
            .is_some_and(|token| self.grant(&token).is_some())
    }

    /// What `token` grants, if it is one of these.
    pub fn grant(&self, token: &str) -> Option<&Grant> {
        self.grants.get(&digest(token))
    }

    pub fn len(&self) -> usize {
        self.grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

fn valid_user(user: &str) -> bool {
    (1..=MAX_USER_CHARS).contains(&user.chars().count())
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-'))
}

/// The token a request carries: `Authorization: Bearer TOKEN`, else a `token` query
/// parameter.
pub fn request_token(authorization: Option<&str>, query: Option<&str>) -> Option<String> {
    if let Some(token) = authorization
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Some(token.to_string());
    }
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| percent_decode(v))
        .filter(|t| !t.is_empty())
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a browser's `Origin` may open a conversation: its own page (the origin's host is
/// the request's `Host`), or one of `allowed`. Clients that are not browsers send no origin.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    if allowed.iter().any(|a| a == origin || a == "*") {
        return true;
    }
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
        .unwrap_or("");
    host.is_some_and(|h| !h.is_empty() && origin_host.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tokens_file_grants_users_and_domains() {
        let tokens = Tokens::parse(
            "# front desk\n0123456789abcdef ana customer-service\n\nfedcba9876543210abc bob # any domain\n",
        )
        .unwrap();
        assert_eq!(tokens.len(), 2);
        let ana = tokens.grant("0123456789abcdef").unwrap();
        assert_eq!(ana.user, "ana");
        assert!(ana.allows("customer-service") && !ana.allows("barista"));
        assert!(tokens
            .grant("fedcba9876543210abc")
            .unwrap()
            .allows("barista"));
        assert!(tokens.grant("0123456789abcdeF").is_none());
        assert!(!ana.agent);
        let desk = Tokens::parse("0123456789abcdef maria role:agent customer-service\n").unwrap();
        let maria = desk.grant("0123456789abcdef").unwrap();
        assert!(maria.agent && maria.allows("customer-service") && !maria.allows("barista"));
    }

    #[test]
    fn bad_lines_are_refused_with_their_number() {
        for (text, reason) in [
            ("short ana", "at least 16"),
            ("0123456789abcdef", "expected TOKEN USER_ID"),
            ("0123456789abcdef ana/../x", "user id"),
            ("0123456789abcdef ana\n0123456789abcdef bob", "twice"),
            ("0123456789abcdef ana role:admin", "unknown role 'admin'"),
        ] {
            let err = Tokens::parse(text).unwrap_err().to_string();
            assert!(
                err.contains(reason) && err.contains("line"),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn the_token_comes_from_the_header_or_the_query() {
        assert_eq!(
            request_token(Some("Bearer abc"), Some("token=zzz")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            request_token(None, Some("a=1&token=x%2By")).as_deref(),
            Some("x+y")
        );
        assert_eq!(request_token(Some("Basic abc"), None), None);
        assert_eq!(request_token(None, Some("token=")), None);
        assert_eq!(request_token(None, Some("token=%")).as_deref(), Some("%"));
    }

    #[test]
    fn browsers_connect_from_the_page_they_were_served() {
        let host = Some("10.0.0.5:8765");
        assert!(origin_allowed(None, host, &[]), "not a browser");
        assert!(origin_allowed(Some("http://10.0.0.5:8765"), host, &[]));
        assert!(!origin_allowed(Some("https://evil.example"), host, &[]));
        assert!(origin_allowed(
            Some("https://app.example"),
            host,
            &["https://app.example".into()]
        ));
    }
}
