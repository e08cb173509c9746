//! The dialogue manager: one user turn in, one reply out, with the conversation's state
//! in a [`Session`] (so a store can keep it between turns, processes and machines).
//!
//! Per turn: entities and the intent are read from the text; then, in order of priority,
//! a pending question of the manager's own is resolved (an offer of a person, a
//! clarification, a confirmation), then the commands every conversation has (cancel, help,
//! repeat, a person, goodbye), then the active flow's slots are filled, or another flow or
//! answer takes over (the interrupted flow resumes after it), and what is left over is a
//! misunderstanding: clarified when two intents are close, answered with the fallback
//! otherwise, and after repeated failures a person is offered.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime, Timelike};
use serde::Serialize;

use super::actions::{ActionError, Backend};
use super::entities::{self, Entity, EntityKind};
use super::handoff;
use super::learned;
use super::llm::{plain_for_voice, ChatMessage, LanguageModel, Tool};
use super::session::{ActiveFlow, Exchange, Handoff, RatingState, Session, Step};
use super::spotter::{ListSlot, Spotter};
use crate::domain::{placeholders, Channel, Domain, FlowSpec, SlotSpec, Variant, Wording};
use crate::nlu::slots::SlotTagger;
use crate::nlu::{normalize, IntentRecognizer, IntentResult, NluError};

/// The outcome of one turn, as `hark chat --json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    pub user: String,
    pub reply: String,
    pub intent: Option<String>,
    pub confidence: f32,
    pub entities: Vec<Entity>,
    /// The flow active after this turn, and its slots.
    pub flow: Option<String>,
    pub slots: BTreeMap<String, String>,
    pub handoff: Option<Handoff>,
    pub ended: bool,
    /// A flow that started on this turn.
    pub started: Option<String>,
    /// A flow that completed on this turn.
    pub completed: Option<String>,
    /// The turn was not understood (fallback, clarification, re-prompt).
    pub misunderstood: bool,
    /// What the active flow waits for after this turn.
    pub step: Option<Step>,
    /// Flows left unfinished on this turn without a handoff (cancelled, or a goodbye).
    pub dropped: Vec<String>,
    /// This reply asked the domain's rating question.
    pub rating_asked: bool,
    /// The score (1–5) this turn answered the rating question with.
    pub rating: Option<u8>,
    /// The wording variant of the conversation, in a domain that compares two.
    pub variant: Option<Variant>,
}

impl Turn {
    /// This turn as the conversation log keeps it: no slot values, and the log masks
    /// personal data in the text.
    pub fn record(&self, user_hash: String) -> crate::telemetry::conversations::TurnRecord {
        crate::telemetry::conversations::TurnRecord {
            ts: crate::store::now_secs(),
            conversation: String::new(),
            user: user_hash,
            turn: 0,
            said: self.user.clone(),
            reply: self.reply.clone(),
            intent: self.intent.clone(),
            confidence: self.confidence,
            flow: self.flow.clone(),
            slots: self.slots.keys().cloned().collect(),
            started: self.started.clone(),
            completed: self.completed.clone(),
            handoff: self.handoff.as_ref().map(|h| h.reason.clone()),
            handoff_id: self.handoff.as_ref().map(|h| h.id.clone()),
            misunderstood: self.misunderstood,
            ended: self.ended,
            step: self.step.clone(),
            dropped: self.dropped.clone(),
            rating_asked: self.rating_asked,
            rating: self.rating,
            variant: self.variant,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DialogueError {
    #[error(transparent)]
    Nlu(#[from] NluError),
}

pub struct DialogueManager {
    pub domain: Domain,
    recognizer: IntentRecognizer,
    backend: Backend,
    /// "Today" for relative dates; None means the real date.
    pub today: Option<NaiveDate>,
    /// Answers what the flows do not cover, when configured.
    llm: Option<Box<dyn LanguageModel>>,
    /// Set by `decide` when nothing in the domain fits and the model should answer.
    wants_model: bool,
    /// What happened during the turn being handled, for its record.
    turn_started: Option<String>,
    turn_completed: Option<String>,
    turn_misunderstood: bool,
    /// The user's words and the intents ranked for them, in the turn being handled (a
    /// handoff on this turn carries them).
    turn_text: String,
    turn_ranked: Vec<(String, f32)>,
    /// The flows under way when the turn began.
    turn_stack: Vec<String>,
    /// The rating question asked, or answered, on this turn.
    turn_rating_asked: bool,
    turn_rating: Option<u8>,
    /// The wording this conversation hears where the domain has two.
    turn_variant: Variant,
    /// Whether the domain has two wordings of anything (read once from the domain).
    compares_wordings: bool,
    /// Finds each flow's list-slot values in utterances, by flow intent.
    spotters: BTreeMap<String, Spotter>,
    /// The domain's vocabulary sentences, drawn once (recognition asks every turn).
    vocabulary: Vec<String>,
    /// Spoken or typed: picks the domain's wording and how numbers are shown.
    pub channel: Channel,
    /// Reads names and party sizes from the user's words, when trained.
    tagger: Option<Arc<SlotTagger>>,
}

/// What one utterance means on its own, outside any conversation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Understanding {
    /// The intent, or None when nothing in the domain fits.
    pub intent: Option<String>,
    /// Slot values, canonical.
    pub slots: BTreeMap<String, String>,
}

/// Intents answered from what hark knows (see `small_talk`).
const SMALL_TALK: [&str; 3] = ["thanks", "ask_name", "about_assistant"];

const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "correct",
    "right",
    "ok",
    "okay",
    "please",
    "absolutely",
    "definitely",
    "affirmative",
    "alright",
    "exactly",
    "perfect",
    "fine",
    "go",
    "do",
];
const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not",
    "don't",
    "dont",
    "wrong",
    "incorrect",
    "negative",
    "never",
];

/// Whether a short answer says yes, no, or neither.
fn yes_no(text: &str) -> Option<bool> {
    let words = entities::tokenize(text);
    if words.is_empty() || words.len() > 8 {
        return None;
    }
    let no = words.iter().any(|w| NO.contains(&w.as_str()));
    let yes =
        words.iter().any(|w| YES.contains(&w.as_str())) || text.to_lowercase().contains("go ahead");
    match (yes, no) {
        (_, true) => Some(false),
        (true, false) => Some(true),
        _ => None,
    }
}

/// A slot value as a person would say it.
pub fn speakable(kind: EntityKind, value: &str) -> String {
    match kind {
        EntityKind::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map(|d| d.format("%A, %B %-d").to_string())
            .unwrap_or_else(|_| value.to_string()),
        EntityKind::Time => NaiveTime::parse_from_str(value, "%H:%M")
            .map(|t| t.format("%-I:%M %p").to_string().replace(":00", ""))
            .unwrap_or_else(|_| value.to_string()),
        // Digit by digit: "4 5 6 7", not "four thousand five hundred…".
        EntityKind::OrderId | EntityKind::Phone => value
            .chars()
            .map(String::from)
            .collect::<Vec<_>>()
            .join(" "),
        EntityKind::Duration => value
            .parse::<u64>()
            .map(|s| match s {
                s if s % 3600 == 0 => {
                    format!("{} hour{}", s / 3600, if s == 3600 { "" } else { "s" })
                }
                s if s % 60 == 0 => format!("{} minute{}", s / 60, if s == 60 { "" } else { "s" }),
                s => format!("{s} seconds"),
            })
            .unwrap_or_else(|_| value.to_string()),
        _ => value.to_string(),
    }
}

/// A slot value as the channel shows it: typed replies keep order numbers and phone numbers
/// as digits a user can copy, spoken ones read them out one by one.
pub fn shown(kind: EntityKind, value: &str, channel: Channel) -> String {
    match (kind, channel) {
        (EntityKind::OrderId | EntityKind::Phone, Channel::Text) => value.to_string(),
        _ => speakable(kind, value),
    }
}

impl DialogueManager {
    pub fn new(domain: Domain, recognizer: IntentRecognizer, backend: Backend) -> Self {
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
                (
                    flow.intent.clone(),
                    Spotter::new(&slots, flow.context_words()),
                )
            })
            .collect();
        Self {
            spotters,
            vocabulary: domain.vocabulary_sentences(),
            compares_wordings: domain.has_variants(),
            domain,
            recognizer,
            backend,
            today: None,
            channel: Channel::Voice,
            llm: None,
            wants_model: false,
            turn_started: None,
            turn_completed: None,
            turn_misunderstood: false,
            turn_text: String::new(),
            turn_ranked: Vec::new(),
            turn_stack: Vec::new(),
            turn_rating_asked: false,
            turn_rating: None,
            turn_variant: Variant::A,
            tagger: None,
        }
    }

    /// Reads names and `learned` slots with `tagger`.
    pub fn with_slot_tagger(mut self, tagger: Arc<SlotTagger>) -> Self {
        self.tagger = Some(tagger);
        self
    }

    /// Sends what the domain does not cover to `llm`.
    pub fn with_llm(mut self, llm: Box<dyn LanguageModel>) -> Self {
        self.llm = Some(llm);
        self
    }

    /// Remembers the user's name: said with a cue ("my name is ana"), or, outside a flow,
    /// read by the slot tagger ("hi, I'm Priya"; a greeting is read as the answer to "who is
    /// this?"). The tagger's name counts when it is written with a capital, or when the
    /// writer uses none at all.
    fn remember_name(&self, session: &mut Session, text: &str, intent: Option<&str>) {
        if remember_name(session, text) || !session.stack.is_empty() {
            return;
        }
        let Some(tagger) = &self.tagger else {
            return;
        };
        let requested = match intent {
            Some("greet") => vec!["first_name".to_string(), "last_name".to_string()],
            _ => Vec::new(),
        };
        let found = learned::read(tagger, text, &requested);
        let Some(part) = ["first_name", "last_name"]
            .iter()
            .find_map(|label| found.iter().find(|l| l.label == *label))
        else {
            return;
        };
        let word = part.text.split_whitespace().next().unwrap_or_default();
        let capital = word.chars().next().is_some_and(char::is_uppercase);
        let writes_capitals = text.chars().any(char::is_uppercase);
        if word.chars().count() >= 2 && (capital || !writes_capitals) {
            session.memory.name = Some(learned::capitalized(word));
        }
    }

    /// The conversation's wording variant: by user, so a user always hears the same one; a
    /// conversation with nobody in particular draws one when it starts.
    fn variant(&self, session: &mut Session) -> Variant {
        *session.variant.get_or_insert_with(|| {
            if session.user_id == crate::dialogue::session::ANONYMOUS {
                Variant::of(&crate::telemetry::conversations::new_id())
            } else {
                Variant::of(&session.user_id)
            }
        })
    }

    fn today(&self) -> NaiveDate {
        self.today
            .unwrap_or_else(|| chrono::Local::now().date_naive())
    }

    /// The greeting that opens a conversation.
    pub fn greet(&self, session: &mut Session) -> String {
        let welcome = match &session.memory.name {
            Some(name) => format!("Welcome back, {name}!"),
            None => "Welcome back!".into(),
        };
        let greeting = match (&session.pending_question, session.stack.is_empty()) {
            // A conversation picked up where it stopped.
            (Some(question), false) => format!("{welcome} {question}"),
            _ if session.memory.name.is_some() => {
                format!("{welcome} {}", self.domain.persona.greeting)
            }
            _ => self.domain.persona.greeting.clone(),
        };
        session.last_reply = greeting.clone();
        greeting
    }

    /// The phrases the next user turn most likely contains, for speech recognition.
    pub fn expected_vocabulary(&self, session: &Session) -> Vec<String> {
        let mut phrases = Vec::new();
        if let Some(active) = session.stack.last() {
            if let Some(flow) = self.domain.flows.get(&active.intent) {
                if active.confirming {
                    phrases.extend(["Yes, please.", "No, change it."].map(String::from));
                }
                if let Some(slot) = active
                    .asking
                    .as_ref()
                    .and_then(|a| flow.slots.iter().find(|s| &s.name == a))
                {
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

    /// No answer came (silence): ask again.
    pub fn no_input(&mut self, session: &mut Session) -> Turn {
        self.turn_variant = self.variant(session);
        if session.rating == RatingState::Asked {
            // Silence skips the rating.
            session.rating = RatingState::Done;
            session.ended = true;
            let reply = self.domain.persona.goodbye.clone();
            return self.finish(session, String::new(), reply, None, Vec::new(), None);
        }
        let question = session
            .pending_question
            .clone()
            .unwrap_or_else(|| "How can I help?".into());
        let reply = self.domain.persona.no_input.replace("{prompt}", &question);
        self.finish(session, String::new(), reply, None, Vec::new(), None)
    }

    /// One user turn.
    pub fn handle(&mut self, session: &mut Session, text: &str) -> Result<Turn, DialogueError> {
        self.handle_streaming(session, text, &mut |_| true)
    }

    /// One user turn, the reply handed to `on_piece` as it is made: whole for replies of
    /// the domain, token by token from a language model. `on_piece` returns false to stop
    /// (the user barged in).
    pub fn handle_streaming(
        &mut self,
        session: &mut Session,
        text: &str,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Turn, DialogueError> {
        let text = text.trim();
        if text.is_empty() {
            let turn = self.no_input(session);
            on_piece(&turn.reply);
            return Ok(turn);
        }
        self.turn_variant = self.variant(session);
        // The user's words are kept as typed or heard; what hark reads is them written out.
        let said = text;
        let text = &normalize::chat_spellings(said);
        let found = entities::extract(text, self.today());
        let nlu = self.recognizer.recognize(text)?;
        self.remember_name(session, text, nlu.intent.as_deref());
        self.turn_text = said.to_string();
        self.turn_ranked = nlu.ranked.clone();
        self.turn_stack = session.stack.iter().map(|f| f.intent.clone()).collect();
        let (mut reply, mut handoff) = self.decide(session, text, &found, &nlu);
        if std::mem::take(&mut self.wants_model) {
            (reply, handoff) = self.ask_llm(session, said, on_piece);
        } else {
            on_piece(&reply);
        }
        Ok(self.finish(session, said.to_string(), reply, Some(nlu), found, handoff))
    }

    /// What `text` asks for, on its own (no conversation): the intent the classifier picks
    /// or, when nothing passes its threshold, the flow whose list slots the text fills
    /// most (values said are evidence of the intent); then that flow's slots.
    pub fn understand(&mut self, text: &str) -> Result<Understanding, DialogueError> {
        let text = &normalize::chat_spellings(text);
        let mut intent = self.recognizer.recognize(text)?.intent;
        let mut spotted = intent
            .as_ref()
            .and_then(|i| self.spotters.get(i))
            .map(|s| s.spot(text))
            .unwrap_or_default();
        if intent.is_none() {
            let best = self
                .spotters
                .iter()
                .map(|(flow, spotter)| (flow, spotter.spot(text)))
                .filter(|(_, found)| !found.is_empty())
                .max_by_key(|(_, found)| found.len());
            if let Some((flow, found)) = best {
                intent = Some(flow.clone());
                spotted = found;
            }
        }
        let mut slots: BTreeMap<String, String> =
            spotted.into_iter().map(|s| (s.slot, s.value)).collect();
        if let Some(flow) = intent.as_ref().and_then(|i| self.domain.flows.get(i)) {
            let found = entities::extract(text, self.today());
            for slot in &flow.slots {
                if let Some(entity) = found.iter().find(|e| e.kind == slot.kind) {
                    slots
                        .entry(slot.name.clone())
                        .or_insert_with(|| entity.value.clone());
                }
            }
        }
        Ok(Understanding { intent, slots })
    }

    /// A reply from the language model, streamed; a function call starts that flow.
    fn ask_llm(
        &mut self,
        session: &mut Session,
        text: &str,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> (String, Option<Handoff>) {
        let persona = &self.domain.persona;
        let mut messages = vec![ChatMessage::new(
            "system",
            &format!(
                "You are {}, a voice assistant. Answer in one or two short spoken sentences of plain text: \
                 no lists, no markdown, numbers as people say them. What you can do: {} \
                 When the user wants one of the functions, call it.",
                persona.name, persona.help
            ),
        )];
        for exchange in &session.history {
            if !exchange.user.is_empty() {
                messages.push(ChatMessage::new("user", &exchange.user));
            }
            messages.push(ChatMessage::new("assistant", &exchange.reply));
        }
        messages.push(ChatMessage::new("user", text));
        let tools: Vec<Tool> = self
            .domain
            .flows
            .values()
            .map(|f| Tool {
                name: f.intent.clone(),
                description: f.description.clone(),
                parameters: f
                    .slots
                    .iter()
                    .map(|s| (s.name.clone(), self.word(&s.prompt)))
                    .collect(),
            })
            .collect();
        let Some(llm) = self.llm.as_mut() else {
            return (self.domain.persona.fallback.clone(), None);
        };
        let result = llm.complete(&messages, &tools, &mut |piece| {
            on_piece(&plain_for_voice(piece))
        });
        match result {
            Ok(completion) => match completion.tool_call {
                Some((name, args)) if self.domain.flows.contains_key(&name) => {
                    let values: Vec<String> = args
                        .values()
                        .map(|v| {
                            v.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string())
                        })
                        .collect();
                    let args_text = values.join(" ");
                    let found = entities::extract(&args_text, self.today());
                    let (reply, handoff) = self.start_flow(session, &name, &args_text, &found);
                    on_piece(&reply);
                    (
                        format!("{} {reply}", plain_for_voice(&completion.text))
                            .trim()
                            .to_string(),
                        handoff,
                    )
                }
                _ => {
                    session.failures = 0;
                    (plain_for_voice(&completion.text).trim().to_string(), None)
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "the language model failed; the fallback answers");
                session.failures += 1;
                let fallback = if session.failures >= self.domain.policy.max_failures {
                    self.offer_human(session).0
                } else {
                    self.domain.persona.fallback.clone()
                };
                on_piece(&fallback);
                (fallback, None)
            }
        }
    }

    fn finish(
        &mut self,
        session: &mut Session,
        user: String,
        reply: String,
        nlu: Option<IntentResult>,
        found: Vec<Entity>,
        handoff: Option<Handoff>,
    ) -> Turn {
        session.last_reply = reply.clone();
        self.turn_text.clear();
        self.turn_ranked.clear();
        session.history.push(Exchange {
            user: user.clone(),
            reply: reply.clone(),
            misunderstood: self.turn_misunderstood,
        });
        let keep = self.domain.policy.context_turns.max(1);
        if session.history.len() > keep {
            session.history.drain(..session.history.len() - keep);
        }
        let active = session.stack.last();
        let completed = self.turn_completed.take();
        let before = std::mem::take(&mut self.turn_stack);
        let dropped = if handoff.is_some() {
            Vec::new()
        } else {
            before
                .into_iter()
                .filter(|f| {
                    completed.as_ref() != Some(f) && !session.stack.iter().any(|a| &a.intent == f)
                })
                .collect()
        };
        Turn {
            user,
            reply,
            intent: nlu.as_ref().and_then(|n| n.intent.clone()),
            confidence: nlu.as_ref().map_or(0.0, |n| n.confidence),
            entities: found,
            flow: active.map(|f| f.intent.clone()),
            slots: active.map(|f| f.slots.clone()).unwrap_or_default(),
            handoff,
            ended: session.ended,
            started: self.turn_started.take(),
            completed,
            misunderstood: std::mem::take(&mut self.turn_misunderstood),
            step: active.and_then(Step::of),
            dropped,
            rating_asked: std::mem::take(&mut self.turn_rating_asked),
            rating: self.turn_rating.take(),
            variant: self.compares_wordings.then_some(self.turn_variant),
        }
    }

    /// Decides the reply (and a handoff, if the conversation goes to a person).
    fn decide(
        &mut self,
        session: &mut Session,
        text: &str,
        found: &[Entity],
        nlu: &IntentResult,
    ) -> (String, Option<Handoff>) {
        let policy = self.domain.policy.clone();
        let mut intent = nlu.intent.clone();
        let confident =
            |name: &str| intent.as_deref() == Some(name) && nlu.confidence >= policy.clarify_below;

        // 1. Answers to the manager's own questions.
        if session.rating == RatingState::Asked {
            return (self.rated(session, found), None);
        }
        if session.offered_human {
            session.offered_human = false;
            match yes_no(text) {
                Some(true) => {
                    return self.hand_off(session, "the user accepted the offer of a person")
                }
                Some(false) => {
                    session.failures = 0;
                    return (
                        self.ask(session, "Okay, let's try again. How can I help?".into()),
                        None,
                    );
                }
                None => {}
            }
        }
        if let Some((a, b)) = session.clarifying.take() {
            let pick =
                if intent.as_deref() == Some(a.as_str()) || intent.as_deref() == Some(b.as_str()) {
                    intent.clone()
                } else if mentions(text, &self.domain.describe(&b))
                    && !mentions(text, &self.domain.describe(&a))
                {
                    Some(b)
                } else if mentions(text, &self.domain.describe(&a)) || yes_no(text) == Some(true) {
                    Some(a)
                } else {
                    None
                };
            if pick.is_some() {
                intent = pick;
                return self.act_on_intent(
                    session,
                    intent.as_deref().unwrap_or_default(),
                    text,
                    found,
                );
            }
        }

        // 2. Commands every conversation has.
        if confident("cancel")
            || (session.stack.last().is_some_and(|f| f.confirming)
                && intent.as_deref() == Some("cancel"))
        {
            session.stack.clear();
            session.failures = 0;
            session.pending_question = None;
            return (self.domain.persona.cancelled.clone(), None);
        }
        if confident("human") {
            return self.hand_off(session, "the user asked for a person");
        }
        if confident("frustrated") {
            return self.hand_off(session, "the user sounded frustrated");
        }
        if confident("repeat") {
            return (session.last_reply.clone(), None);
        }
        if confident("help") {
            let question = session.pending_question.clone().unwrap_or_default();
            return (
                format!("{} {question}", self.domain.persona.help)
                    .trim()
                    .to_string(),
                None,
            );
        }
        if let Some(reply) = SMALL_TALK
            .into_iter()
            .find(|n| confident(n))
            .map(|n| self.small_talk(session, n))
        {
            return (reply, None);
        }
        if confident("goodbye") && session.stack.last().is_none_or(|f| !f.confirming) {
            return (self.goodbye(session), None);
        }

        // 3. The active flow.
        if let Some(mut active) = session.stack.pop() {
            let Some(flow) = self.domain.flows.get(&active.intent).cloned() else {
                return (self.domain.persona.fallback.clone(), None);
            };
            if active.confirming {
                let changed = self.fill(&flow, &mut active, text, found, true);
                match (yes_no(text), changed.is_empty()) {
                    (Some(true), true) => return self.complete(session, &flow, active),
                    (_, false) => {
                        // A correction: confirm again with the new values.
                        session.stack.push(active);
                        return self.next_step(session, &flow, Some(ack(&changed)));
                    }
                    (Some(false), true) => {
                        active.confirming = false;
                        session.stack.push(active);
                        return (
                            self.ask(session, "Okay, what would you like to change?".into()),
                            None,
                        );
                    }
                    (None, true) => {}
                }
            }
            let other_flow = intent.as_ref().filter(|i| {
                **i != active.intent
                    && self.domain.flows.contains_key(*i)
                    && nlu.confidence >= policy.clarify_below
            });
            let changed = self.fill(&flow, &mut active, text, found, other_flow.is_none());
            if !changed.is_empty() {
                session.failures = 0;
                session.stack.push(active);
                let prefix =
                    (changed.iter().any(|(_, _, was)| was.is_some())).then(|| ack(&changed));
                return self.next_step(session, &flow, prefix);
            }
            if let Some(other) = other_flow.cloned() {
                // A new request in the middle of this one: do it, then come back.
                session.stack.push(active);
                return self.start_flow(session, &other, text, found);
            }
            if let Some(answer) = intent.as_deref().and_then(|i| self.answer(i)) {
                session.stack.push(active);
                let question = session.pending_question.clone().unwrap_or_default();
                return (format!("{answer} {question}").trim().to_string(), None);
            }
            if let Some(rejected) = active.rejected.take() {
                let message = flow
                    .slots
                    .iter()
                    .find(|s| s.name == rejected)
                    .and_then(|s| s.invalid.clone());
                if let Some(message) = message {
                    session.stack.push(active);
                    return (self.ask(session, message), None);
                }
            }
            if !active.confirming && active.asking.is_some() {
                self.turn_misunderstood = true;
                active.reprompts += 1;
                if active.reprompts > policy.max_reprompts {
                    session.stack.push(active);
                    return self.offer_human(session);
                }
                let slot = flow
                    .slots
                    .iter()
                    .find(|s| Some(&s.name) == active.asking.as_ref())
                    .cloned();
                session.stack.push(active);
                let reprompt = slot
                    .map(|s| s.reprompt.unwrap_or_else(|| self.word(&s.prompt)))
                    .unwrap_or_default();
                return (self.ask(session, reprompt), None);
            }
            session.stack.push(active);
            self.turn_misunderstood = true;
            let question = session.pending_question.clone().unwrap_or_default();
            return (
                format!("Sorry, I didn't get that. {question}")
                    .trim()
                    .to_string(),
                None,
            );
        }

        // 4. No flow: the intent decides.
        if let Some(name) = intent.clone() {
            if nlu.confidence < policy.clarify_below {
                if let Some((second, p2)) = nlu
                    .ranked
                    .get(1)
                    .filter(|(n, _)| n != crate::nlu::OUT_OF_SCOPE)
                {
                    if *p2 >= nlu.confidence * 0.5 {
                        return self.clarify(session, &name, second);
                    }
                }
            }
            return self.act_on_intent(session, &name, text, found);
        }
        // Out of scope, or too unsure.
        if let (Some((a, pa)), Some((b, pb))) = (nlu.ranked.first(), nlu.ranked.get(1)) {
            let in_domain = |n: &str| n != crate::nlu::OUT_OF_SCOPE;
            if in_domain(a) && in_domain(b) && *pa >= policy.threshold * 0.6 && *pb >= pa * 0.5 {
                let (a, b) = (a.clone(), b.clone());
                return self.clarify(session, &a, &b);
            }
        }
        if self.llm.is_some() {
            self.wants_model = true;
            return (String::new(), None);
        }
        self.turn_misunderstood = true;
        session.failures += 1;
        if session.failures >= policy.max_failures {
            return self.offer_human(session);
        }
        (self.domain.persona.fallback.clone(), None)
    }

    fn act_on_intent(
        &mut self,
        session: &mut Session,
        name: &str,
        text: &str,
        found: &[Entity],
    ) -> (String, Option<Handoff>) {
        session.failures = 0;
        if self.domain.flows.contains_key(name) {
            return self.start_flow(session, name, text, found);
        }
        match name {
            "human" => return self.hand_off(session, "the user asked for a person"),
            "frustrated" => return self.hand_off(session, "the user sounded frustrated"),
            "cancel" => {
                session.stack.clear();
                return (self.domain.persona.cancelled.clone(), None);
            }
            "goodbye" => return (self.goodbye(session), None),
            "help" => return (self.domain.persona.help.clone(), None),
            "repeat" => return (session.last_reply.clone(), None),
            n if SMALL_TALK.contains(&n) => return (self.small_talk(session, name), None),
            "greet" => {
                let hello = match &session.memory.name {
                    Some(n) => format!("Hello, {n}! How can I help?"),
                    None => "Hello! How can I help?".into(),
                };
                return (self.ask(session, hello), None);
            }
            _ => {}
        }
        match self.answer(name) {
            Some(answer) => (answer, None),
            None => (self.domain.persona.fallback.clone(), None),
        }
    }

    /// A reply of the domain as this channel and this conversation's variant word it.
    fn word(&self, wording: &Wording) -> String {
        wording.pick(self.channel, self.turn_variant).to_string()
    }

    /// The fixed answer of an FAQ-style intent, worded for this channel.
    fn answer(&self, intent: &str) -> Option<String> {
        let wording = self.domain.intents.get(intent)?.answer.as_ref()?;
        Some(self.word(wording))
    }

    /// Thanks, "what's my name?", "who are you?": answered from what hark knows, then the
    /// question still open (or an offer of more help) so the conversation goes on.
    fn small_talk(&self, session: &Session, name: &str) -> String {
        let persona = &self.domain.persona;
        let answer = match name {
            "thanks" => "You're welcome!".to_string(),
            "ask_name" => match &session.memory.name {
                Some(n) => format!("You're {n}."),
                None => "You haven't told me your name yet.".to_string(),
            },
            _ => format!("I'm {}, a virtual assistant.", persona.name),
        };
        let open_question = session
            .pending_question
            .as_ref()
            .filter(|_| !session.stack.is_empty());
        let next = match (open_question, name) {
            (Some(question), _) => question.clone(),
            (None, "about_assistant") => persona.help.clone(),
            (None, _) if session.memory.outcomes.is_empty() => "How can I help?".to_string(),
            (None, _) => "Is there anything else I can help with?".to_string(),
        };
        format!("{answer} {next}")
    }

    fn clarify(&mut self, session: &mut Session, a: &str, b: &str) -> (String, Option<Handoff>) {
        self.turn_misunderstood = true;
        session.clarifying = Some((a.to_string(), b.to_string()));
        let question = self
            .domain
            .persona
            .clarify
            .replace("{a}", &self.domain.describe(a))
            .replace("{b}", &self.domain.describe(b));
        (self.ask(session, question), None)
    }

    fn offer_human(&mut self, session: &mut Session) -> (String, Option<Handoff>) {
        session.offered_human = true;
        session.failures = 0;
        let offer = self.domain.persona.offer_human.clone();
        (self.ask(session, offer), None)
    }

    /// Records `question` as the pending one and returns it.
    /// The end of the conversation; first the rating question, when the domain has one and
    /// this conversation completed a flow.
    fn goodbye(&mut self, session: &mut Session) -> String {
        session.stack.clear();
        match &self.domain.rating {
            Some(rating)
                if session.completed_flows > 0 && session.rating == RatingState::NotAsked =>
            {
                session.rating = RatingState::Asked;
                self.turn_rating_asked = true;
                let question = rating.question.clone();
                self.ask(session, question)
            }
            _ => {
                session.ended = true;
                self.domain.persona.goodbye.clone()
            }
        }
    }

    /// The answer to the rating question: a score from 1 to 5 is kept and thanked for;
    /// anything else skips it. Either way the conversation ends.
    fn rated(&mut self, session: &mut Session, found: &[Entity]) -> String {
        session.rating = RatingState::Done;
        session.ended = true;
        session.pending_question = None;
        let score = found
            .iter()
            .filter(|e| e.kind == EntityKind::Number)
            .find_map(|e| e.value.parse::<u8>().ok())
            .filter(|n| (1..=5).contains(n));
        self.turn_rating = score;
        let goodbye = self.domain.persona.goodbye.clone();
        match (score, &self.domain.rating) {
            (Some(_), Some(rating)) => format!("{} {goodbye}", rating.thanks),
            _ => goodbye,
        }
    }

    fn ask(&self, session: &mut Session, question: String) -> String {
        session.pending_question = Some(question.clone());
        question
    }

    fn start_flow(
        &mut self,
        session: &mut Session,
        intent: &str,
        text: &str,
        found: &[Entity],
    ) -> (String, Option<Handoff>) {
        let Some(flow) = self.domain.flows.get(intent).cloned() else {
            return (self.domain.persona.fallback.clone(), None);
        };
        self.turn_started = Some(intent.to_string());
        let mut active = ActiveFlow {
            intent: intent.to_string(),
            ..Default::default()
        };
        // Several slots can come with the request itself.
        self.fill(&flow, &mut active, text, found, false);
        session.stack.push(active);
        self.next_step(session, &flow, None)
    }

    /// Asks for the next missing slot, or confirms, or completes.
    fn next_step(
        &mut self,
        session: &mut Session,
        flow: &FlowSpec,
        prefix: Option<String>,
    ) -> (String, Option<Handoff>) {
        let active = session
            .stack
            .last_mut()
            .expect("next_step runs with an active flow");
        let missing = flow
            .slots
            .iter()
            .find(|s| s.required && !active.slots.contains_key(&s.name));
        let question = match missing {
            Some(slot) => {
                if active.asking.as_deref() != Some(slot.name.as_str()) {
                    active.reprompts = 0;
                }
                active.asking = Some(slot.name.clone());
                active.confirming = false;
                self.word(&slot.prompt)
            }
            None => match &flow.confirm {
                Some(confirm) => {
                    active.asking = None;
                    active.confirming = true;
                    render(
                        &self.word(confirm),
                        flow,
                        &active.slots,
                        &BTreeMap::new(),
                        self.channel,
                    )
                }
                None => {
                    let active = session.stack.pop().expect("checked above");
                    let (reply, handoff) = self.complete(session, flow, active);
                    return (join(prefix, reply), handoff);
                }
            },
        };
        let question = self.ask(session, question);
        (join(prefix, question), None)
    }

    /// Runs the flow's action and says it is done; resumes an interrupted flow.
    fn complete(
        &mut self,
        session: &mut Session,
        flow: &FlowSpec,
        active: ActiveFlow,
    ) -> (String, Option<Handoff>) {
        self.turn_completed = Some(flow.intent.clone());
        session.completed_flows += 1;
        let result = match &flow.action {
            Some(action) => {
                match self
                    .backend
                    .run(action, &flow.intent, &active.slots, &session.user_id)
                {
                    Ok(result) => result,
                    Err(e) => return self.action_failed(session, flow, active, e),
                }
            }
            None => BTreeMap::new(),
        };
        let done = render(
            &self.word(&flow.done),
            flow,
            &active.slots,
            &result,
            self.channel,
        );
        for slot in &flow.slots {
            if let (Some(value), EntityKind::Email | EntityKind::Choice) =
                (active.slots.get(&slot.name), slot.kind)
            {
                session
                    .memory
                    .preferences
                    .insert(slot.name.clone(), value.clone());
            }
        }
        let summary: Vec<String> = active
            .slots
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        session
            .memory
            .outcomes
            .push(format!("{}: {}", flow.intent, summary.join(", ")));
        session.pending_question = None;
        if flow.handoff {
            session.stack.push(active);
            let (handoff_reply, handoff) =
                self.hand_off(session, &format!("flow '{}' goes to a person", flow.intent));
            return (format!("{done} {handoff_reply}"), handoff);
        }
        match session.stack.last().cloned() {
            Some(resumed) => {
                let resumed_flow = self.domain.flows.get(&resumed.intent).cloned();
                let back = self.domain.persona.resume.replace(
                    "{flow}",
                    &resumed_flow
                        .as_ref()
                        .map(|f| f.description.clone())
                        .unwrap_or_default(),
                );
                let (next, handoff) = resumed_flow
                    .map(|f| self.next_step(session, &f, None))
                    .unwrap_or_default();
                (format!("{done} {back} {next}").trim().to_string(), handoff)
            }
            None => (
                format!("{done} Is there anything else I can help with?"),
                None,
            ),
        }
    }

    fn action_failed(
        &mut self,
        session: &mut Session,
        flow: &FlowSpec,
        active: ActiveFlow,
        error: ActionError,
    ) -> (String, Option<Handoff>) {
        self.turn_completed = None;
        session.stack.push(active);
        let reason = format!("the {} backend failed: {error}", flow.description);
        let (reply, handoff) = self.hand_off(session, &reason);
        (
            format!(
                "Sorry, something went wrong on our side while trying to {}. {reply}",
                flow.description
            ),
            handoff,
        )
    }

    fn hand_off(&mut self, session: &mut Session, reason: &str) -> (String, Option<Handoff>) {
        let active = session.stack.last();
        let flow = active.map(|f| f.intent.clone());
        let slots = active.map(|f| f.slots.clone()).unwrap_or_default();
        // The turn that brings the person in is part of the story.
        let mut transcript = session.history.clone();
        if !self.turn_text.is_empty() {
            transcript.push(Exchange {
                user: self.turn_text.clone(),
                reply: self.domain.persona.handoff.clone(),
                misunderstood: self.turn_misunderstood,
            });
        }
        let summary = handoff::summary(&self.story(reason, active, &transcript));
        let handoff = Handoff {
            id: crate::telemetry::conversations::new_id(),
            user_id: session.user_id.clone(),
            reason: reason.to_string(),
            summary,
            flow,
            slots,
            transcript,
        };
        let reply = match self.backend.hand_off(self.domain.handoff_url.as_deref(), &handoff) {
            Ok(()) => self.domain.persona.handoff.clone(),
            Err(e) => format!(
                "I couldn't reach our team right now ({e}). Please call us during opening hours, and we'll pick up where we left off."
            ),
        };
        session.handed_off = true;
        session.ended = true;
        session.stack.clear();
        (reply, Some(handoff))
    }

    /// What a person taking over needs to know. What the user wanted is the active flow or,
    /// when none is active, a flow the classifier found likely in the last words ("my
    /// package is late again, ridiculous" is frustration about an order).
    fn story<'a>(
        &self,
        reason: &'a str,
        active: Option<&ActiveFlow>,
        transcript: &'a [Exchange],
    ) -> handoff::Story<'a> {
        const LIKELY: f32 = 0.1;
        let flow = active
            .and_then(|a| self.domain.flows.get(&a.intent))
            .or_else(|| {
                self.turn_ranked
                    .iter()
                    .filter(|(_, p)| *p >= LIKELY)
                    .find_map(|(intent, _)| self.domain.flows.get(intent))
            });
        let slots = active.map(|a| &a.slots);
        let said = |s: &SlotSpec| slots.and_then(|v| v.get(&s.name));
        let collected = flow
            .map(|f| {
                f.slots
                    .iter()
                    .filter_map(|s| {
                        let value = said(s)?;
                        let value = match s.kind {
                            EntityKind::Date | EntityKind::Time => speakable(s.kind, value),
                            _ => value.clone(),
                        };
                        Some((s.name.replace('_', " "), value))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let missing = flow
            .map(|f| {
                f.slots
                    .iter()
                    .filter(|s| s.required && said(s).is_none())
                    .map(|s| s.name.replace('_', " "))
                    .collect()
            })
            .unwrap_or_default();
        let users: Vec<&Exchange> = transcript.iter().filter(|e| !e.user.is_empty()).collect();
        handoff::Story {
            reason,
            wanted: flow.map(|f| f.description.clone()),
            collected,
            missing,
            not_understood: users
                .iter()
                .filter(|e| e.misunderstood)
                .map(|e| e.user.as_str())
                .collect(),
            turns: users.len(),
            last_said: users.last().map_or("", |e| e.user.as_str()),
        }
    }

    /// Fills slots of `flow` from this utterance. The slot being asked for may take free
    /// text; others need an entity of their type. With `overwrite`, filled slots are
    /// corrected by new values. Returns (slot, new value, old value) for each change.
    fn fill(
        &self,
        flow: &FlowSpec,
        active: &mut ActiveFlow,
        text: &str,
        found: &[Entity],
        overwrite: bool,
    ) -> Vec<(String, String, Option<String>)> {
        let words = entities::tokenize(text);
        let mut used: Vec<(usize, usize)> = Vec::new();
        let mut changes = Vec::new();
        // List slots are read together, so that one word fills one slot ("medium roast" is
        // a roast, not a size).
        let spotted = self
            .spotters
            .get(&flow.intent)
            .map(|s| s.spot(text))
            .unwrap_or_default();
        let learned = self.learned(flow, active, text);
        // The asked-for slot first, then the others in order.
        let mut order: Vec<&SlotSpec> = flow.slots.iter().collect();
        if let Some(asking) = &active.asking {
            order.sort_by_key(|s| &s.name != asking);
        }
        for slot in order {
            let asked = active.asking.as_deref() == Some(slot.name.as_str());
            let filled = active.slots.contains_key(&slot.name);
            if filled && !overwrite && !asked {
                continue;
            }
            // (value, the words it takes from other entity slots). List values take none:
            // the spotter has already kept them apart, and its spans count words differently.
            let candidate = match slot.kind {
                EntityKind::Choice => spotted
                    .iter()
                    .find(|s| s.slot == slot.name)
                    .map(|s| (s.value.clone(), None)),
                EntityKind::Text => asked.then(|| {
                    (
                        text.trim().trim_end_matches(['.', '!']).to_string(),
                        Some((0, words.len())),
                    )
                }),
                EntityKind::Person => learned
                    .as_deref()
                    .and_then(learned::name)
                    .map(|(name, span)| (name, Some(span)))
                    .or_else(|| asked.then(|| said_alone(text, &words)).flatten()),
                kind if slot.learned.is_some() && learned.is_some() => {
                    let label = slot.learned.as_deref();
                    let tagged: Vec<(usize, usize)> = learned
                        .iter()
                        .flatten()
                        .filter(|l| Some(l.label.as_str()) == label)
                        .map(|l| l.words)
                        .collect();
                    let free = |e: &&Entity| {
                        e.kind == kind && !used.iter().any(|&(s, t)| e.span.0 < t && s < e.span.1)
                    };
                    let inside =
                        |e: &&Entity| tagged.iter().any(|&(s, t)| e.span.0 < t && s < e.span.1);
                    // Words the tagger gives this slot; an answer to its own question
                    // may also be a bare value the tagger did not mark.
                    found
                        .iter()
                        .filter(free)
                        .find(inside)
                        .or_else(|| {
                            (asked && tagged.is_empty())
                                .then(|| found.iter().find(free))
                                .flatten()
                        })
                        .map(|e| (e.value.clone(), Some(e.span)))
                }
                kind => found
                    .iter()
                    .find(|e| {
                        e.kind == kind && !used.iter().any(|&(s, t)| e.span.0 < t && s < e.span.1)
                    })
                    .map(|e| (e.value.clone(), e.span))
                    .or_else(|| {
                        // An order or phone number asked for may come as bare digits.
                        (asked && matches!(kind, EntityKind::OrderId | EntityKind::Phone))
                            .then(|| entities::longest_digit_run(&words))
                            .flatten()
                    })
                    .map(|(value, span)| (value, Some(span))),
            };
            let Some((mut value, span)) = candidate else {
                continue;
            };
            if slot.kind == EntityKind::Time && !self.valid(slot, &value) {
                let said = span.map_or(&words[..], |(a, b)| &words[a.min(b)..b.min(words.len())]);
                if let Some(later) = self.afternoon(slot, &value, said) {
                    value = later;
                }
            }
            // Free text may take words an entity also has; entities may not share words.
            let overlaps = span.is_some_and(|(a, b)| used.iter().any(|&(s, t)| a < t && s < b));
            if overlaps && slot.kind != EntityKind::Text {
                continue;
            }
            if !self.valid(slot, &value) {
                if asked {
                    active.rejected = Some(slot.name.clone());
                }
                continue;
            }
            used.extend(span);
            let old = active.slots.insert(slot.name.clone(), value.clone());
            if old.as_deref() != Some(value.as_str()) {
                changes.push((
                    slot.name.clone(),
                    shown(slot.kind, &value, self.channel),
                    old,
                ));
            }
        }
        changes
    }

    /// The slot tagger's values in `text`, told which slot was just asked for; None without
    /// a tagger.
    fn learned(
        &self,
        flow: &FlowSpec,
        active: &ActiveFlow,
        text: &str,
    ) -> Option<Vec<learned::Learned>> {
        let tagger = self.tagger.as_ref()?;
        let requested = active
            .asking
            .as_ref()
            .and_then(|a| flow.slots.iter().find(|s| &s.name == a))
            .map(learned::requested)
            .unwrap_or_default();
        Some(learned::read(tagger, text, &requested))
    }

    /// "at 7" for a table served from noon is 19:00: a clock time said without "am" or
    /// "morning" that is outside the slot's hours is read twelve hours later when that fits.
    fn afternoon(&self, slot: &SlotSpec, value: &str, said: &[String]) -> Option<String> {
        let morning = said
            .iter()
            .any(|w| matches!(w.as_str(), "am" | "a.m." | "morning"));
        let time = NaiveTime::parse_from_str(value, "%H:%M").ok()?;
        let later = (time + chrono::Duration::hours(12))
            .format("%H:%M")
            .to_string();
        (!morning && time.hour() < 12 && self.valid(slot, &later)).then_some(later)
    }

    fn valid(&self, slot: &SlotSpec, value: &str) -> bool {
        let bound = |b: &Option<toml::Value>| {
            b.as_ref().and_then(|v| {
                v.as_str()
                    .map(String::from)
                    .or_else(|| v.as_integer().map(|i| i.to_string()))
            })
        };
        let (min, max) = (bound(&slot.min), bound(&slot.max));
        match slot.kind {
            EntityKind::Number => {
                let v: i64 = value.parse().unwrap_or(i64::MIN);
                min.and_then(|m| m.parse::<i64>().ok())
                    .is_none_or(|m| v >= m)
                    && max
                        .and_then(|m| m.parse::<i64>().ok())
                        .is_none_or(|m| v <= m)
            }
            EntityKind::Time | EntityKind::Date => {
                let min = min.map(|m| {
                    if m == "today" {
                        self.today().format("%Y-%m-%d").to_string()
                    } else {
                        m
                    }
                });
                // ISO dates and HH:MM times compare correctly as text.
                min.is_none_or(|m| value >= m.as_str()) && max.is_none_or(|m| value <= m.as_str())
            }
            _ => true,
        }
    }
}

/// A name said on its own in answer to a question for it ("Xiong", "ana de la cruz"): one to
/// three words without digits.
fn said_alone(text: &str, words: &[String]) -> Option<(String, Option<(usize, usize)>)> {
    let plain = (1..=3).contains(&words.len())
        && !text.chars().any(|c| c.is_ascii_digit())
        && yes_no(text).is_none();
    let name = text.trim().trim_end_matches(['.', '!']);
    plain.then(|| (learned::capitalized(name), Some((0, words.len()))))
}

/// The reply after values changed: "Okay, 3 PM."
fn ack(changes: &[(String, String, Option<String>)]) -> String {
    let values: Vec<&str> = changes.iter().map(|(_, v, _)| v.as_str()).collect();
    format!("Okay, {}.", values.join(", "))
}

fn join(prefix: Option<String>, text: String) -> String {
    match prefix {
        Some(p) => format!("{p} {text}"),
        None => text,
    }
}

/// Whether `text` mentions the content words of `description`.
fn mentions(text: &str, description: &str) -> bool {
    let words = entities::tokenize(text);
    entities::tokenize(description)
        .iter()
        .filter(|w| w.len() > 3)
        .any(|d| words.iter().any(|w| entities::word_similarity(w, d) >= 0.8))
}

/// Remembers the user's name when they say it: "my name is ana", "call me Ana", "this is Ana";
/// true when such a cue was said (whether or not a name followed).
/// After "this is" only a capitalized word counts, as names are written ("this is ridiculous"
/// names nobody); after "call me" too, unless the writer uses no capitals at all ("call me sam"),
/// and then never a word such as "back".
fn remember_name(session: &mut Session, text: &str) -> bool {
    enum Cue {
        Plain,
        Capital,
        CapitalIfWritten,
    }
    const NOT_NAMES: [&str; 12] = [
        "back", "later", "when", "if", "at", "on", "tomorrow", "now", "again", "please", "the", "a",
    ];
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphabetic() && c != '-' && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let is = |word: &str, cue: &str| word.to_lowercase() == cue;
    for i in 0..words.len() {
        let (name_at, cue) = match &words[i..] {
            [a, b, c, ..] if is(a, "my") && is(b, "name") && is(c, "is") => (i + 3, Cue::Plain),
            [a, b, ..] if is(a, "call") && is(b, "me") => (i + 2, Cue::CapitalIfWritten),
            [a, b, ..] if is(a, "this") && is(b, "is") => (i + 2, Cue::Capital),
            _ => continue,
        };
        let Some(name) = words.get(name_at) else {
            return true;
        };
        let capitalized = name.chars().next().is_some_and(char::is_uppercase);
        let writes_capitals = text.chars().any(char::is_uppercase);
        let plausible = match cue {
            Cue::Plain => true,
            Cue::Capital => capitalized,
            Cue::CapitalIfWritten => {
                capitalized
                    || (!writes_capitals && !NOT_NAMES.contains(&name.to_lowercase().as_str()))
            }
        };
        if name.chars().count() >= 2 && plausible {
            let mut chars = name.chars();
            let first: String = chars
                .next()
                .into_iter()
                .flat_map(char::to_uppercase)
                .collect();
            session.memory.name = Some(first + &chars.as_str().to_lowercase());
        }
        return true;
    }
    false
}

/// Fills `{slot}` and `{result.FIELD}` placeholders, slot values as they are spoken.
pub fn render(
    template: &str,
    flow: &FlowSpec,
    slots: &BTreeMap<String, String>,
    result: &BTreeMap<String, String>,
    channel: Channel,
) -> String {
    let mut out = template.to_string();
    for name in placeholders(template) {
        let value = if let Some(field) = name.strip_prefix("result.") {
            result.get(field).cloned().unwrap_or_default()
        } else {
            let kind = flow
                .slots
                .iter()
                .find(|s| s.name == name)
                .map_or(EntityKind::Text, |s| s.kind);
            slots
                .get(&name)
                .map(|v| shown(kind, v, channel))
                .unwrap_or_default()
        };
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    // Optional slots left empty leave double spaces and a space before the full stop.
    let mut tidy = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for mark in [".", ",", "?", "!"] {
        tidy = tidy.replace(&format!(" {mark}"), mark);
    }
    tidy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_and_no_in_short_answers() {
        for t in [
            "yes",
            "Yeah, please.",
            "sure, go ahead",
            "that's right",
            "okay",
        ] {
            assert_eq!(yes_no(t), Some(true), "{t}");
        }
        for t in ["no", "nope", "no, that's wrong", "don't"] {
            assert_eq!(yes_no(t), Some(false), "{t}");
        }
        assert_eq!(yes_no("at three pm"), None);
    }

    #[test]
    fn values_are_spoken_naturally() {
        assert_eq!(
            speakable(EntityKind::Date, "2026-11-27"),
            "Friday, November 27"
        );
        assert_eq!(speakable(EntityKind::Time, "15:30"), "3:30 PM");
        assert_eq!(speakable(EntityKind::Time, "09:00"), "9 AM");
        assert_eq!(speakable(EntityKind::OrderId, "4567"), "4 5 6 7");
        assert_eq!(speakable(EntityKind::Duration, "600"), "10 minutes");
        assert_eq!(shown(EntityKind::OrderId, "4567", Channel::Text), "4567");
        assert_eq!(
            shown(EntityKind::OrderId, "4567", Channel::Voice),
            "4 5 6 7"
        );
    }

    #[test]
    fn names_are_remembered() {
        let mut s = Session::new("u1");
        remember_name(&mut s, "Hi, my name is ana.");
        assert_eq!(s.memory.name.as_deref(), Some("Ana"));
        remember_name(&mut s, "Call me İlker, please");
        assert_eq!(s.memory.name.as_deref(), Some("İlker"));
        remember_name(&mut s, "this is Alex");
        assert_eq!(s.memory.name.as_deref(), Some("Alex"));
        remember_name(&mut s, "call me sam");
        assert_eq!(s.memory.name.as_deref(), Some("Sam"));
    }

    #[test]
    fn words_that_are_no_names_are_not_remembered() {
        let mut s = Session::new("u1");
        for text in [
            "this is ridiculous",
            "This is the third time my package is late",
            "İİİ this is",
            "my name is",
            "ß my name is x",
            "Please call me back tomorrow",
            "can you call me back",
        ] {
            remember_name(&mut s, text);
            assert_eq!(s.memory.name, None, "{text:?}");
        }
    }
}
