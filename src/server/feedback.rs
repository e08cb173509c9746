//! `POST /handoffs/ID/feedback` on the serve listener: the person who took a conversation over
//! says whether the handoff's summary was useful and whether the user's case was resolved.
//! The body is `{"useful": true, "resolved": false}`; with tokens, the request shows an
//! agent's (`Authorization: Bearer TOKEN`, a `role:agent` line in the tokens file) that may use
//! the server's domain: a user's token cannot touch the handoffs.

use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;

use super::http::{Answer, Head, Io};
use super::Access;

/// Largest body read (the two fields need a few dozen bytes).
pub const MAX_BODY: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feedback {
    pub useful: bool,
    pub resolved: bool,
}

/// Whether `head` is for this endpoint.
pub fn is_feedback(head: &Head) -> bool {
    head.path.starts_with("/handoffs/")
}

/// The handoff id in `/handoffs/ID/feedback` (ids are 16 hex digits).
pub fn handoff_id(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/handoffs/")?.strip_suffix("/feedback")?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// Who is asking to give feedback.
enum Asker {
    /// No token, or not one of the file's.
    Unknown,
    /// A token of the file that is no agent's, or not for this domain.
    NotAnAgent,
    Agent,
}

fn asker(head: &Head, access: &Access, domain: &str) -> Asker {
    let Access::Tokens(tokens) = access else {
        return Asker::Agent;
    };
    let grant = super::auth::request_token(head.header("authorization"), None)
        .and_then(|t| tokens.grant(&t));
    match grant {
        None => Asker::Unknown,
        Some(g) if g.agent && g.allows(domain) => Asker::Agent,
        Some(_) => Asker::NotAnAgent,
    }
}

/// Reads the request's body (`rest` is what came after the head) and hands the feedback to
/// `keep`; the answer says what was wrong with a request that is refused.
pub async fn answer(
    io: &mut dyn Io,
    head: &Head,
    mut rest: Vec<u8>,
    access: &Access,
    domain: &str,
    timeout: Duration,
    keep: impl FnOnce(&str, Feedback),
) -> Answer {
    let Some(id) = handoff_id(&head.path) else {
        return Answer::text(
            404,
            "feedback goes to /handoffs/ID/feedback, ID being the handoff's 16-character id\n",
        );
    };
    if head.method != "POST" {
        return Answer::text(405, "POST {\"useful\": BOOL, \"resolved\": BOOL}\n");
    }
    match asker(head, access, domain) {
        Asker::Unknown => {
            return Answer::text(
                401,
                "this server needs a token: Authorization: Bearer TOKEN\n",
            )
        }
        Asker::NotAnAgent => {
            return Answer::text(
                403,
                "feedback on handoffs takes an agent's token (role:agent in the tokens file)\n",
            )
        }
        Asker::Agent => {}
    }
    let Some(length) = head
        .header("content-length")
        .and_then(|l| l.trim().parse::<usize>().ok())
    else {
        return Answer::text(411, "a Content-Length is needed\n");
    };
    if length > MAX_BODY {
        return Answer::text(413, format!("a body of at most {MAX_BODY} bytes\n"));
    }
    let read = async {
        let mut chunk = [0u8; 1024];
        while rest.len() < length {
            let n = io.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    if !matches!(tokio::time::timeout(timeout, read).await, Ok(Ok(()))) || rest.len() < length {
        return Answer::text(400, "the body ended before its Content-Length\n");
    }
    rest.truncate(length);
    match serde_json::from_slice::<Feedback>(&rest) {
        Ok(feedback) => {
            keep(id, feedback);
            Answer::new(200, "application/json", "{\"ok\":true}\n")
        }
        Err(e) => Answer::text(
            400,
            format!("not feedback ({e}): send {{\"useful\": BOOL, \"resolved\": BOOL}}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_are_taken_from_the_path() {
        assert_eq!(
            handoff_id("/handoffs/0123456789abcdef/feedback"),
            Some("0123456789abcdef")
        );
        for path in [
            "/handoffs/0123/feedback",
            "/handoffs/0123456789abcdeg/feedback",
            "/handoffs/0123456789abcdef",
            "/handoffs/../../etc/passwd/feedback",
        ] {
            assert_eq!(handoff_id(path), None, "{path}");
        }
    }
}
