//! The dialogue policy: given the conversation so far and what the user's turn was
//! understood to mean, what hark does next, decided without touching anything.
//!
//! A [`Decision`] is data: the [`Change`]s to the conversation, the words to say, and what
//! has to happen outside before the turn can go on (a flow's action, a handoff's delivery, a
//! language model's answer). The dialogue manager commits a decision (applies its changes,
//! carries out its effect and decides again on the result) or, for a speculative reply,
//! throws it away: nothing has happened until it is committed.
//!
//! The user's words go through an ordered list of steps ([`steps::USER`]): what hark learns
//! in passing (a name), answers to hark's own questions, a request for a person, the
//! commands every conversation has, the active flow's expected answer, a new request, the
//! language model and the fallback. The first step that takes the turn decides it.

mod documents;
mod draft;
mod flows;
mod handoff;
mod model;
mod slots;
mod steps;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;

pub use draft::Change;
use draft::Draft;
pub use model::ModelRequest;
pub use slots::{render, shown, speakable};

use super::spotter::{ListSlot, Spotter};
use crate::conversation::session::{Handoff, Session};
use crate::conversation::{EntityKind, Variant};
use crate::domain::{Channel, Domain, Wording};
use crate::nlu::entities::{self, Entity};
use crate::nlu::slots::SlotTagger;
use crate::nlu::IntentResult;

/// What one user turn was understood to mean, before any conversation is considered.
#[derive(Debug, Clone, PartialEq)]
pub struct Understood {
    /// The words as typed or heard (kept in the history and the handoff).
    pub said: String,
    /// The words as hark reads them (chat spellings written out).
    pub text: String,
    pub entities: Vec<Entity>,
    pub nlu: IntentResult,
    /// What the deployer's documents say to the words, when there are documents.
    pub documents: Option<crate::knowledge::Found>,
}

/// What the policy is told besides the conversation and the input.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// "Today", for relative dates and date bounds.
    pub today: NaiveDate,
    /// The wording this conversation hears where the domain has two.
    pub variant: Variant,
    /// The user's turn being decided (None for silence), in every phase of it.
    pub user: Option<&'a Understood>,
}

/// What the policy decides on.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The user's turn (the context's `user`).
    Said,
    /// Nothing was said for a while.
    Silence,
    /// The action of the flow being completed ran: its result fields, or why it failed.
    ActionDone(Result<BTreeMap<String, String>, String>),
    /// The handoff was delivered to the team, or could not be.
    HandoffDelivered(Result<(), String>),
    /// The language model answered (its text has already been streamed to the user); it
    /// may have called one of the flows, with values for its slots by name.
    ModelAnswered { call: Option<FlowCall> },
    /// The language model failed or timed out.
    ModelFailed,
}

/// A flow the language model called, with values for its slots by name.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowCall {
    pub flow: String,
    pub values: Vec<(String, String)>,
}

/// What has to happen outside the policy before the turn can go on; its result is the
/// next [`Input`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Run the action of `flow` (the active one) with these slots → [`Input::ActionDone`].
    RunAction {
        flow: String,
        slots: BTreeMap<String, String>,
    },
    /// Deliver this handoff to the team (its id is given on delivery) →
    /// [`Input::HandoffDelivered`].
    HandOff(Box<Handoff>),
    /// Stream the language model's answer to the user → [`Input::ModelAnswered`] or
    /// [`Input::ModelFailed`].
    AskModel(ModelRequest),
}

/// What a turn did, for its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notes {
    /// A flow that started.
    pub started: Option<String>,
    /// A flow that completed.
    pub completed: Option<String>,
    /// The turn was not understood (fallback, clarification, re-prompt).
    pub misunderstood: bool,
    /// The reply asks the domain's rating question.
    pub rating_asked: bool,
    /// The score the user answered the rating question with.
    pub rating: Option<u8>,
}

impl Notes {
    /// These notes followed by `later` ones of the same turn.
    pub fn merge(&mut self, later: Notes) {
        self.started = later.started.or(self.started.take());
        self.completed = later.completed.or(self.completed.take());
        self.misunderstood |= later.misunderstood;
        self.rating_asked |= later.rating_asked;
        self.rating = later.rating.or(self.rating);
    }
}

/// One decision: changes to apply, words to say (in order), and the effect to carry out
/// next, if any. Nothing of it has happened until the manager commits it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub changes: Vec<Change>,
    pub say: Vec<String>,
    pub effect: Option<Effect>,
    pub notes: Notes,
}

impl Decision {
    /// The words of this decision as one reply.
    pub fn reply(&self) -> String {
        join(&self.say)
    }
}

/// Reply pieces as one text.
pub fn join(pieces: &[String]) -> String {
    pieces
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The policy of one domain: what it knows (the domain, its list-slot spotters, the slot
/// tagger, the channel), never the state of a conversation.
pub struct Policy {
    domain: Domain,
    /// Finds each flow's list-slot values in utterances, by flow intent.
    spotters: BTreeMap<String, Spotter>,
    /// The domain's vocabulary sentences, drawn once (recognition asks every turn).
    vocabulary: Vec<String>,
    /// Reads names and party sizes from the user's words, when trained.
    tagger: Option<Arc<SlotTagger>>,
    /// Spoken or typed: picks the domain's wording and how numbers are shown.
    pub channel: Channel,
    /// A language model answers what the domain does not cover.
    pub has_model: bool,
    /// Whether the domain has two wordings of anything (the record names the variant).
    compares_wordings: bool,
}

impl Policy {
    pub fn new(domain: Domain) -> Self {
        let spotters = domain
            .flows
            .values()
            .map(|flow| {
                let slots: Vec<ListSlot> = flow
                    .slots
                    .iter()
                    .filter(|s| s.kind == EntityKind::Choice)
                    .map(|s| {
                        let values = s.values.iter().map(|(k, v)| (k.clone(), v.clone()));
                        (s.name.clone(), values.collect())
                    })
                    .collect();
                let spotter = Spotter::new(&slots, flow.context_words());
                (flow.intent.clone(), spotter)
            })
            .collect();
        Self {
            spotters,
            vocabulary: domain.vocabulary_sentences(),
            compares_wordings: domain.has_variants(),
            domain,
            tagger: None,
            channel: Channel::Voice,
            has_model: false,
        }
    }

    /// Reads names and `learned` slots with `tagger`.
    pub fn with_slot_tagger(mut self, tagger: Arc<SlotTagger>) -> Self {
        self.tagger = Some(tagger);
        self
    }

    pub fn domain(&self) -> &Domain {
        &self.domain
    }

    /// Whether the domain compares two wordings (so each turn's record names its variant).
    pub fn compares_wordings(&self) -> bool {
        self.compares_wordings
    }

    /// What to do with `input` in the conversation `state`.
    pub fn decide(&self, state: &Session, cx: &Context, input: &Input) -> Decision {
        let mut d = Draft::new(state);
        if state.variant.is_none() {
            d.change(Change::Variant(cx.variant));
        }
        let turn = steps::Turn {
            policy: self,
            cx,
            user: cx.user,
        };
        match input {
            Input::Said => match cx.user {
                Some(user) => steps::said(&turn, user, &mut d),
                None => steps::silence(&turn, &mut d),
            },
            Input::Silence => steps::silence(&turn, &mut d),
            Input::ActionDone(result) => flows::action_done(&turn, &mut d, result),
            Input::HandoffDelivered(result) => handoff::delivered(&turn, &mut d, result),
            Input::ModelAnswered { call } => model::answered(&turn, &mut d, call.as_ref()),
            Input::ModelFailed => model::failed(&turn, &mut d),
        }
        d.finish()
    }

    /// The greeting that opens a conversation (a resumed one picks up its question).
    pub fn greeting(&self, state: &Session) -> String {
        let persona = &self.domain.persona;
        let phrases = &self.domain.phrases;
        let welcome = match &state.memory.name {
            Some(name) => phrases.welcome_back_name.replace("{name}", name),
            None => phrases.welcome_back.clone(),
        };
        match (&state.pending_question, state.stack.is_empty()) {
            (Some(question), false) => join(&[welcome, question.clone()]),
            _ if state.memory.name.is_some() => join(&[welcome, persona.greeting.clone()]),
            _ => persona.greeting.clone(),
        }
    }

    /// The phrases the next user turn most likely contains, for speech recognition.
    pub fn expected_vocabulary(&self, state: &Session) -> Vec<String> {
        let mut phrases = Vec::new();
        if let Some(active) = state.stack.last() {
            if let Some(flow) = self.domain.flows.get(&active.intent) {
                if active.confirming {
                    phrases.extend(["Yes, please.", "No, change it."].map(String::from));
                }
                let asked = active
                    .asking
                    .as_ref()
                    .and_then(|a| flow.slots.iter().find(|s| &s.name == a));
                if let Some(slot) = asked {
                    phrases.extend(slot.values.keys().cloned());
                }
            }
        }
        phrases.extend(self.vocabulary.iter().cloned());
        phrases.push("Cancel.".into());
        phrases
    }

    /// Sentences that show recognition the domain's words (see `Domain::vocabulary_sentences`).
    pub fn domain_vocabulary(&self) -> &[String] {
        &self.vocabulary
    }

    /// The slots of `flow` that `text` fills on its own, outside any conversation: its
    /// list values, then the first entity of each slot's kind.
    pub fn slots_in(&self, flow: &str, text: &str, today: NaiveDate) -> BTreeMap<String, String> {
        let spotted = self.spotters.get(flow).map(|s| s.spot(text));
        let mut slots: BTreeMap<String, String> = spotted
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.slot, s.value))
            .collect();
        if let Some(flow) = self.domain.flows.get(flow) {
            let found = entities::extract(text, today);
            for slot in &flow.slots {
                if let Some(entity) = found.iter().find(|e| e.kind == slot.kind) {
                    slots
                        .entry(slot.name.clone())
                        .or_insert_with(|| entity.value.clone());
                }
            }
        }
        slots
    }

    /// The flow whose list values `text` mentions most, when any: values said are evidence
    /// of the intent.
    pub fn flow_by_values(&self, text: &str) -> Option<String> {
        self.spotters
            .iter()
            .map(|(flow, spotter)| (flow, spotter.spot(text).len()))
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(_, n)| *n)
            .map(|(flow, _)| flow.clone())
    }

    /// A reply of the domain as this channel and this conversation's variant word it.
    fn word(&self, wording: &Wording, cx: &Context) -> String {
        wording.pick(self.channel, cx.variant).to_string()
    }

    /// The fixed answer of an FAQ-style intent, worded for this channel.
    fn answer(&self, intent: &str, cx: &Context) -> Option<String> {
        let wording = self.domain.intents.get(intent)?.answer.as_ref()?;
        Some(self.word(wording, cx))
    }
}

/// Whether the active flow is waiting for a yes or no to its confirmation.
fn confirming(state: &Session) -> bool {
    state.stack.last().is_some_and(|f| f.confirming)
}
