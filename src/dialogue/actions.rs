//! What flows do when they complete: the built-in demo backend (so the default domain works
//! with nothing else running), or an HTTP webhook that receives the slots as JSON and
//! answers with fields for the reply. Handoffs go to a webhook the same way.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::conversation::session::Handoff;
use crate::domain::ActionSpec;

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error(
        "no built-in action named '{0}' (built in: book_appointment, order_status, reset_password)"
    )]
    UnknownBuiltin(String),
    #[error("{url} could not be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url} answered with something other than a JSON object of fields: {reason}")]
    BadReply { url: String, reason: String },
}

/// Runs actions and delivers handoffs.
pub struct Backend {
    timeout: Duration,
}

impl Default for Backend {
    fn default() -> Self {
        Self::new(Duration::from_secs(5))
    }
}

impl Backend {
    pub fn new(timeout: Duration) -> Self {
        crate::models::fetch::install_tls_provider();
        Self { timeout }
    }

    /// Runs `action` for flow `intent` with its slots; returns the fields `{result.…}`
    /// placeholders read.
    pub fn run(
        &self,
        action: &ActionSpec,
        intent: &str,
        slots: &BTreeMap<String, String>,
        user_id: &str,
    ) -> Result<BTreeMap<String, String>, ActionError> {
        match action {
            ActionSpec::Builtin { name } => builtin(name, slots),
            ActionSpec::Webhook { url } => {
                let body =
                    serde_json::json!({ "flow": intent, "slots": slots, "user_id": user_id });
                reply_fields(url, &self.post(url, &body)?)
            }
        }
    }

    /// Delivers a handoff to `url` (when one is configured).
    pub fn hand_off(&self, url: Option<&str>, handoff: &Handoff) -> Result<(), ActionError> {
        match url {
            Some(url) => self
                .post(url, &serde_json::to_value(handoff).unwrap_or_default())
                .map(|_| ()),
            None => Ok(()),
        }
    }

    /// Posts `body`; the reply's text (at most [`MAX_REPLY_BYTES`]).
    fn post(&self, url: &str, body: &serde_json::Value) -> Result<String, ActionError> {
        use std::io::Read;
        let unreachable = |e: &dyn std::fmt::Display| ActionError::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let client = reqwest::blocking::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| unreachable(&e))?;
        let response = client
            .post(url)
            .json(body)
            .send()
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(ActionError::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let mut bytes = Vec::new();
        response
            .take(MAX_REPLY_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| unreachable(&e))?;
        if bytes.len() > MAX_REPLY_BYTES {
            return Err(ActionError::BadReply {
                url: url.to_string(),
                reason: format!("the reply is over {MAX_REPLY_BYTES} bytes"),
            });
        }
        String::from_utf8(bytes).map_err(|_| ActionError::BadReply {
            url: url.to_string(),
            reason: "the reply is not UTF-8".into(),
        })
    }
}

/// The most a webhook's reply may hold (its fields fill a spoken sentence).
pub const MAX_REPLY_BYTES: usize = 1 << 20;

/// The fields `{result.…}` placeholders read from a webhook's reply: a JSON object (empty
/// text: no fields), each value as text.
pub fn reply_fields(url: &str, text: &str) -> Result<BTreeMap<String, String>, ActionError> {
    let bad = |reason: String| ActionError::BadReply {
        url: url.to_string(),
        reason,
    };
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let reply: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let object = reply
        .as_object()
        .ok_or_else(|| bad(truncated(text).to_string()))?;
    Ok(object
        .iter()
        .map(|(k, v)| {
            let value = v
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string());
            (k.clone(), value)
        })
        .collect())
}

/// The start of a long reply, for an error message.
fn truncated(text: &str) -> &str {
    let end = text.char_indices().nth(80).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

/// The demo backend of the default domain.
fn builtin(
    name: &str,
    slots: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ActionError> {
    let key: String = slots.iter().map(|(k, v)| format!("{k}={v};")).collect();
    let mut out = BTreeMap::new();
    match name {
        "book_appointment" | "book_table" => {
            out.insert(
                "reference".into(),
                format!("{:04}", crate::rng::seed_from(&key) % 10_000),
            );
        }
        "order_status" => {
            let status =
                match crate::rng::seed_from(slots.get("order_id").map_or("", String::as_str)) % 3 {
                    0 => "has shipped and should arrive in two days",
                    1 => "is being packed and will ship tomorrow",
                    _ => "was delivered yesterday",
                };
            out.insert("status".into(), status.into());
        }
        "reset_password" => {
            out.insert("valid_minutes".into(), "30".into());
        }
        other => return Err(ActionError::UnknownBuiltin(other.to_string())),
    }
    Ok(out)
}
