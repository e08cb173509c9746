//! Changes to a conversation, and the draft a decision is worked out on: a copy of the
//! conversation that each change is applied to as it is decided, so later steps see it,
//! while the real conversation stays as it was until the decision is committed.

use super::{Decision, Effect};
use crate::conversation::session::{ActiveFlow, RatingState, Session};
use crate::conversation::Variant;

/// One change to a conversation. A decision's changes, applied in order with
/// [`Change::apply`], take the conversation to where the decision leaves it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The wording variant the conversation hears from now on.
    Variant(Variant),
    /// The user's name, remembered.
    Name(String),
    /// A value the user gave, kept for next time (their usual service, their e-mail).
    Preference {
        slot: String,
        value: String,
    },
    /// A completed flow, remembered: "book_appointment: service=haircut, …".
    Outcome(String),
    /// A flow starts (on top of any it interrupts).
    FlowStarted(ActiveFlow),
    /// The active flow's new state (slots filled, the question it waits on).
    FlowUpdated(ActiveFlow),
    /// The active flow is over (completed); the one it interrupted is active again.
    FlowLeft,
    /// Every flow under way is dropped (cancel, goodbye, a person takes over).
    FlowsCleared,
    /// The question now waiting for an answer (for "repeat" and silence), or none.
    Asked(Option<String>),
    /// Consecutive turns not understood.
    Failures(u32),
    /// The two intents the user was asked to choose between, or none.
    Clarifying(Option<(String, String)>),
    /// Whether an offer of a person waits for its answer.
    HumanOffered(bool),
    Rating(RatingState),
    /// One more flow completed in this conversation.
    FlowCompleted,
    Ended,
    HandedOff,
}

impl Change {
    pub fn apply(&self, s: &mut Session) {
        match self {
            Change::Variant(v) => s.variant = Some(*v),
            Change::Name(name) => s.memory.name = Some(name.clone()),
            Change::Preference { slot, value } => {
                s.memory.preferences.insert(slot.clone(), value.clone());
            }
            Change::Outcome(outcome) => s.memory.outcomes.push(outcome.clone()),
            Change::FlowStarted(flow) => s.stack.push(flow.clone()),
            Change::FlowUpdated(flow) => match s.stack.last_mut() {
                Some(top) => *top = flow.clone(),
                None => s.stack.push(flow.clone()),
            },
            Change::FlowLeft => {
                s.stack.pop();
            }
            Change::FlowsCleared => s.stack.clear(),
            Change::Asked(question) => s.pending_question = question.clone(),
            Change::Failures(n) => s.failures = *n,
            Change::Clarifying(pair) => s.clarifying = pair.clone(),
            Change::HumanOffered(offered) => s.offered_human = *offered,
            Change::Rating(state) => s.rating = *state,
            Change::FlowCompleted => s.completed_flows += 1,
            Change::Ended => s.ended = true,
            Change::HandedOff => s.handed_off = true,
        }
    }
}

/// A decision being worked out on a copy of the conversation.
pub(super) struct Draft {
    /// The conversation as the changes so far leave it.
    pub state: Session,
    decision: Decision,
}

impl Draft {
    pub fn new(state: &Session) -> Self {
        Self {
            state: state.clone(),
            decision: Decision::default(),
        }
    }

    pub fn change(&mut self, change: Change) {
        change.apply(&mut self.state);
        self.decision.changes.push(change);
    }

    /// Adds words to the reply (empty ones are left out).
    pub fn say(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !text.trim().is_empty() {
            self.decision.say.push(text);
        }
    }

    /// Asks `question`: says it and keeps it as the pending one.
    pub fn ask(&mut self, question: String) {
        self.change(Change::Asked(Some(question.clone())));
        self.say(question);
    }

    pub fn effect(&mut self, effect: Effect) {
        self.decision.effect = Some(effect);
    }

    /// The active flow, as the draft has it.
    pub fn top(&self) -> Option<&ActiveFlow> {
        self.state.stack.last()
    }

    pub fn misunderstood(&mut self) {
        self.decision.notes.misunderstood = true;
    }

    pub fn notes(&mut self) -> &mut super::Notes {
        &mut self.decision.notes
    }

    pub fn is_misunderstood(&self) -> bool {
        self.decision.notes.misunderstood
    }

    pub fn finish(self) -> Decision {
        self.decision
    }
}
