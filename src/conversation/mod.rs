//! What a conversation is made of, shared by every floor above: the session and what is
//! kept of a user ([`session`]), the record a turn leaves in the log ([`record`]), the kinds
//! of values slots hold, and the wording variant a conversation hears. This module depends
//! on nothing of hark's but [`crate::rng`].

pub mod record;
pub mod session;

pub use session::ANONYMOUS;

/// What kind of value an entity (or a slot) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Number,
    Time,
    Date,
    Duration,
    Email,
    Phone,
    OrderId,
    /// A value from a configured list (the slot's `values`).
    Choice,
    /// Free text (a description): whatever the user said.
    Text,
    /// A person's name: what the slot tagger reads as first and last name, else the answer.
    Person,
}

/// Which of two wordings a conversation hears.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    #[default]
    A,
    B,
}

impl Variant {
    /// The variant of a conversation whose split key is `key` (the user, or the conversation
    /// for nobody in particular): the same key always gets the same one.
    pub fn of(key: &str) -> Self {
        if crate::rng::seed_from(key) % 2 == 0 {
            Variant::A
        } else {
            Variant::B
        }
    }
}
