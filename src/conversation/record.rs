//! The record a turn leaves in the conversation log: what was said (masked by the log),
//! what was understood and what the dialogue did, never a slot's value.

use serde::{Deserialize, Serialize};

use super::session::Step;

/// One logged turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnRecord {
    /// Unix seconds.
    pub ts: i64,
    pub conversation: String,
    /// Salted hash of the user id.
    pub user: String,
    pub turn: u32,
    pub said: String,
    pub reply: String,
    pub intent: Option<String>,
    pub confidence: f32,
    /// The flow active after the turn.
    pub flow: Option<String>,
    /// Names of the slots filled so far (never their values).
    pub slots: Vec<String>,
    /// A flow that started on this turn.
    pub started: Option<String>,
    /// A flow that completed on this turn.
    pub completed: Option<String>,
    /// Why the conversation went to a person, if it did on this turn.
    pub handoff: Option<String>,
    /// The handoff's id, which the person's feedback names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_id: Option<String>,
    /// The turn was not understood (fallback or clarification).
    pub misunderstood: bool,
    pub ended: bool,
    /// What the active flow waits for after the turn.
    #[serde(default)]
    pub step: Option<Step>,
    /// Flows left unfinished on this turn without a handoff.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// The reply asked the rating question.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rating_asked: bool,
    /// The score this turn answered it with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// The wording variant, in a domain that compares two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<crate::conversation::Variant>,
}
