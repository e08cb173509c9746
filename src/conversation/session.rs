//! What a conversation is made of and what is kept of it: the session (its history, the
//! flows in progress, the pending question), what hark remembers of a user, and what is
//! handed to a person. The dialogue manager works on these and the stores keep them; both
//! depend on this file, and it on nothing of theirs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One exchange of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub user: String,
    pub reply: String,
    /// hark did not understand this turn (it fell back, clarified or asked again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub misunderstood: bool,
}

/// A flow in progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActiveFlow {
    pub intent: String,
    /// The slot whose last answer was out of bounds (its `invalid` message is due).
    #[serde(default)]
    pub rejected: Option<String>,
    pub slots: BTreeMap<String, String>,
    /// The slot the last question asked for.
    pub asking: Option<String>,
    pub reprompts: u32,
    /// The confirmation question is pending.
    pub confirming: bool,
}

/// Where a flow is: waiting for a slot's value, or for the answer to its confirmation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Slot(String),
    Confirm,
}

impl Step {
    pub fn of(active: &ActiveFlow) -> Option<Self> {
        if active.confirming {
            Some(Step::Confirm)
        } else {
            active.asking.clone().map(Step::Slot)
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Slot(name) => f.write_str(name),
            Step::Confirm => f.write_str("confirmation"),
        }
    }
}

/// What the assistant remembers about a user across conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserMemory {
    pub name: Option<String>,
    /// Slot values the user gave before, by slot name (their usual service, their email).
    pub preferences: BTreeMap<String, String>,
    /// Completed flows, newest last: "book_appointment: haircut on 2026-11-27 at 10:00".
    pub outcomes: Vec<String>,
}

/// The state of one conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: String,
    /// The last turns (the short-term context window).
    pub history: Vec<Exchange>,
    /// Active flows; the last is the current one, those below were interrupted.
    pub stack: Vec<ActiveFlow>,
    /// Consecutive turns not understood.
    pub failures: u32,
    /// The question waiting for an answer, for "repeat" and silence.
    pub pending_question: Option<String>,
    pub last_reply: String,
    /// Two intents the user was asked to choose between.
    pub clarifying: Option<(String, String)>,
    /// A person was offered and the answer is awaited.
    pub offered_human: bool,
    pub ended: bool,
    pub handed_off: bool,
    pub memory: UserMemory,
    /// Flows completed in this conversation.
    #[serde(default)]
    pub completed_flows: u32,
    #[serde(default)]
    pub rating: RatingState,
    /// The wording variant this conversation hears (see `conversation::Variant`).
    #[serde(default)]
    pub variant: Option<crate::conversation::Variant>,
}

/// Where a conversation is with the domain's rating question.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatingState {
    #[default]
    NotAsked,
    /// Asked; the next turn answers it (or skips it).
    Asked,
    Done,
}

/// The user id of a conversation with nobody in particular: nothing about it is kept.
pub const ANONYMOUS: &str = "anonymous";

impl Session {
    pub fn new(user_id: &str) -> Self {
        Self {
            user_id: user_id.to_string(),
            ..Default::default()
        }
    }

    /// A conversation that belongs to nobody: no memory is resumed or kept for it.
    pub fn anonymous() -> Self {
        Self::new(ANONYMOUS)
    }

    pub fn is_anonymous(&self) -> bool {
        self.user_id == ANONYMOUS
    }
}

/// Everything handed to a person when the conversation goes to one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handoff {
    /// What the person who takes over posts their feedback with
    /// (`POST /handoffs/ID/feedback` on `hark serve`).
    pub id: String,
    pub user_id: String,
    pub reason: String,
    pub summary: String,
    pub flow: Option<String>,
    pub slots: BTreeMap<String, String>,
    pub transcript: Vec<Exchange>,
}
