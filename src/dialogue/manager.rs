//! The dialogue manager: one user turn in, one reply out. It reads the user's words
//! (entities, intent), asks the [`Policy`] what to do, and commits the decision: applies its
//! changes to the [`Session`], carries out its effect (a flow's action, a handoff's
//! delivery, the language model's streamed answer) and asks again with the result, until the
//! turn is decided. The session is all the state there is, so a store can keep it between
//! turns, processes and machines.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use super::actions::Backend;
use super::llm::{plain_for_voice, LanguageModel};
use super::policy::{self, Context, Decision, Effect, Input, Notes, Policy, Understood};
use crate::conversation::session::{Exchange, Handoff, Session, Step};
use crate::conversation::{Variant, ANONYMOUS};
use crate::domain::{Channel, Domain};
use crate::knowledge::{self, Knowledge};
use crate::nlu::entities::{self, Entity};
use crate::nlu::slots::SlotTagger;
use crate::nlu::{normalize, IntentRecognizer, NluError};
use crate::telemetry::redact::{Mask, Redactor};

pub use super::policy::{render, shown, speakable};

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
    pub fn record(&self, user_hash: String) -> crate::conversation::record::TurnRecord {
        crate::conversation::record::TurnRecord {
            ts: crate::clock::now_secs(),
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
    #[error(transparent)]
    Knowledge(#[from] knowledge::KnowledgeError),
}

/// What one utterance means on its own, outside any conversation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Understanding {
    /// The intent, or None when nothing in the domain fits.
    pub intent: Option<String>,
    /// Slot values, canonical.
    pub slots: BTreeMap<String, String>,
}

/// A reply worked out ahead of the end of the user's turn: the decision, made on the words
/// heard so far and the conversation as it was. It is committed only when the turn ends on
/// the same words in the same conversation; otherwise it is dropped, and nothing of it
/// has happened.
#[derive(Debug, Clone)]
pub struct Prepared {
    words: Vec<String>,
    state: Session,
    understood: Understood,
    decision: Decision,
    variant: Variant,
}

impl Prepared {
    /// What hark would say, in full, when it can be said before the turn is committed (a
    /// reply that needs an action, a handoff or the language model cannot).
    pub fn reply(&self) -> Option<String> {
        self.decision
            .effect
            .is_none()
            .then(|| self.decision.reply())
    }

    /// Whether the words answer what hark asked: a value for the slot it asked for, a yes
    /// or no to its confirmation, an answer to its clarification (Some(true)); words it did
    /// not understand (Some(false)); None when nothing was asked or it cannot tell.
    pub fn answers(&self) -> Option<bool> {
        if self.decision.notes.misunderstood {
            return Some(false);
        }
        let asked = self.state.pending_question.is_some();
        let moved = self.decision.changes.iter().any(|c| match c {
            policy::Change::FlowUpdated(flow) => self.state.stack.last() != Some(flow),
            policy::Change::FlowLeft | policy::Change::FlowCompleted => true,
            _ => false,
        });
        let acted = matches!(self.decision.effect, Some(Effect::RunAction { .. }));
        (asked && (moved || acted)).then_some(true)
    }
}

/// The most phases a turn may take (an answer, an action, a handoff, a model's call…).
const MAX_PHASES: usize = 8;

pub struct DialogueManager {
    policy: Policy,
    recognizer: IntentRecognizer,
    backend: Backend,
    /// Answers what the flows do not cover, when configured.
    llm: Option<Box<dyn LanguageModel>>,
    /// The deployer's documents, shared by every conversation.
    knowledge: Option<Arc<Knowledge>>,
    /// "Today" for relative dates; None means the real date.
    pub today: Option<NaiveDate>,
}

/// What a turn has done so far, across its phases.
#[derive(Default)]
struct Progress {
    /// Reply pieces, in order (a model's streamed text among them).
    said: Vec<String>,
    /// Something has gone to the listener already (the next piece needs a space).
    emitted: bool,
    notes: Notes,
    handoff: Option<Handoff>,
}

impl Progress {
    fn emit(&mut self, text: &str, on_piece: &mut dyn FnMut(&str) -> bool) {
        if text.trim().is_empty() {
            return;
        }
        let piece = if self.emitted {
            format!(" {text}")
        } else {
            text.to_string()
        };
        on_piece(&piece);
        self.emitted = true;
        self.said.push(text.to_string());
    }
}

impl DialogueManager {
    pub fn new(domain: Domain, recognizer: IntentRecognizer, backend: Backend) -> Self {
        Self {
            policy: Policy::new(domain),
            recognizer,
            backend,
            llm: None,
            knowledge: None,
            today: None,
        }
    }

    /// Answers questions from `knowledge` when no intent of the domain is sure of them.
    pub fn with_knowledge(mut self, knowledge: Arc<Knowledge>) -> Self {
        self.knowledge = Some(knowledge);
        self
    }

    /// Reads names and `learned` slots with `tagger`.
    pub fn with_slot_tagger(mut self, tagger: Arc<SlotTagger>) -> Self {
        self.policy = self.policy.with_slot_tagger(tagger);
        self
    }

    /// Sends what the domain does not cover to `llm`.
    pub fn with_llm(mut self, llm: Box<dyn LanguageModel>) -> Self {
        self.llm = Some(llm);
        self.policy.has_model = true;
        self
    }

    pub fn domain(&self) -> &Domain {
        self.policy.domain()
    }

    /// What the conversation knows to be personal, masked wherever the log meets it: the
    /// user's name, and the values of person slots and of slots the domain marks sensitive.
    pub fn redactor(&self, session: &Session, turn: &Turn) -> Redactor {
        let mut redactor = Redactor::default();
        let mut know_name = |name: &str| {
            redactor.know(name, Mask::Name);
            for part in name.split_whitespace().filter(|p| p.len() > 1) {
                redactor.know(part, Mask::Name);
            }
        };
        if let Some(name) = &session.memory.name {
            know_name(name);
        }
        let filled = session
            .stack
            .iter()
            .map(|f| (f.intent.as_str(), &f.slots))
            .chain(turn.flow.as_deref().map(|f| (f, &turn.slots)));
        let mut sensitive = Vec::new();
        for (intent, slots) in filled {
            let Some(flow) = self.domain().flows.get(intent) else {
                continue;
            };
            for spec in &flow.slots {
                match slots.get(&spec.name) {
                    Some(value) if spec.sensitive => sensitive.push(value.clone()),
                    Some(value) if spec.kind == entities::EntityKind::Person => know_name(value),
                    _ => {}
                }
            }
        }
        for value in sensitive {
            redactor.know(&value, Mask::Value);
        }
        redactor
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Spoken or typed: picks the domain's wording and how numbers are shown.
    pub fn set_channel(&mut self, channel: Channel) {
        self.policy.channel = channel;
    }

    pub fn channel(&self) -> Channel {
        self.policy.channel
    }

    fn today(&self) -> NaiveDate {
        self.today
            .unwrap_or_else(|| chrono::Local::now().date_naive())
    }

    /// The conversation's wording variant: by user, so a user always hears the same one; a
    /// conversation with nobody in particular draws one when it starts.
    fn variant(&self, session: &Session) -> Variant {
        session.variant.unwrap_or_else(|| {
            if session.user_id == ANONYMOUS {
                Variant::of(&crate::telemetry::conversations::new_id())
            } else {
                Variant::of(&session.user_id)
            }
        })
    }

    /// The greeting that opens a conversation.
    pub fn greet(&self, session: &mut Session) -> String {
        let greeting = self.policy.greeting(session);
        session.last_reply = greeting.clone();
        greeting
    }

    /// The phrases the next user turn most likely contains, for speech recognition.
    pub fn expected_vocabulary(&self, session: &Session) -> Vec<String> {
        self.policy.expected_vocabulary(session)
    }

    /// Sentences that show recognition the domain's words (see `Domain::vocabulary_sentences`).
    pub fn domain_vocabulary(&self) -> &[String] {
        self.policy.domain_vocabulary()
    }

    /// No answer came (silence): ask again.
    pub fn no_input(&mut self, session: &mut Session) -> Turn {
        let cx = Context {
            today: self.today(),
            variant: self.variant(session),
            user: None,
        };
        let decision = self.policy.decide(session, &cx, &Input::Silence);
        let before = session.stack.iter().map(|f| f.intent.clone()).collect();
        let progress = self.commit(session, &cx, decision, &mut |_| true);
        self.finish(session, String::new(), progress, None, before)
    }

    /// One user turn.
    pub fn handle(&mut self, session: &mut Session, text: &str) -> Result<Turn, DialogueError> {
        self.handle_streaming(session, text, &mut |_| true)
    }

    /// Reads the user's words: written out as hark reads them, their entities and intent.
    pub fn read(&mut self, said: &str) -> Result<Understood, DialogueError> {
        let text = normalize::chat_spellings(said);
        let entities = entities::extract(&text, self.today());
        let nlu = self.recognizer.recognize(&text)?;
        let words = match self.policy.channel {
            Channel::Voice => knowledge::SPOKEN_WORDS,
            Channel::Text => knowledge::WRITTEN_WORDS,
        };
        let documents = match &self.knowledge {
            Some(k) => Some(k.lookup(&text, words)?),
            None => None,
        };
        Ok(Understood {
            said: said.to_string(),
            text,
            entities,
            nlu,
            documents,
        })
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
        let said = text.trim();
        if said.is_empty() {
            let turn = self.no_input(session);
            on_piece(&turn.reply);
            return Ok(turn);
        }
        let understood = self.read(said)?;
        let variant = self.variant(session);
        let cx = Context {
            today: self.today(),
            variant,
            user: Some(&understood),
        };
        let decision = self.policy.decide(session, &cx, &Input::Said);
        Ok(self.commit_turn(session, &cx, decision, on_piece))
    }

    /// Works out the reply to `text` without committing anything: the decision is made on
    /// a copy of the conversation (None for no words).
    pub fn prepare(
        &mut self,
        session: &Session,
        text: &str,
    ) -> Result<Option<Prepared>, DialogueError> {
        let said = text.trim();
        if said.is_empty() {
            return Ok(None);
        }
        let understood = self.read(said)?;
        let variant = self.variant(session);
        let cx = Context {
            today: self.today(),
            variant,
            user: Some(&understood),
        };
        let decision = self.policy.decide(session, &cx, &Input::Said);
        Ok(Some(Prepared {
            words: entities::tokenize(said),
            state: session.clone(),
            understood: understood.clone(),
            decision,
            variant,
        }))
    }

    /// Commits `prepared` as the reply to `text` when it was made for the same words in the
    /// same conversation; None (and nothing done) otherwise.
    pub fn commit_prepared(
        &mut self,
        session: &mut Session,
        text: &str,
        prepared: Prepared,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Option<Turn> {
        if prepared.words != entities::tokenize(text.trim()) || prepared.state != *session {
            return None;
        }
        let cx = Context {
            today: self.today(),
            variant: prepared.variant,
            user: Some(&prepared.understood),
        };
        Some(self.commit_turn(session, &cx, prepared.decision, on_piece))
    }

    fn commit_turn(
        &mut self,
        session: &mut Session,
        cx: &Context,
        decision: Decision,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Turn {
        let before = session.stack.iter().map(|f| f.intent.clone()).collect();
        let progress = self.commit(session, cx, decision, on_piece);
        let user = cx.user.cloned();
        let said = user.as_ref().map(|u| u.said.clone()).unwrap_or_default();
        self.finish(session, said, progress, user, before)
    }

    /// Applies `decision` and carries out its effects, deciding again on each result,
    /// until the turn is decided.
    fn commit(
        &mut self,
        session: &mut Session,
        cx: &Context,
        mut decision: Decision,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Progress {
        let mut progress = Progress::default();
        for _ in 0..MAX_PHASES {
            for change in &decision.changes {
                change.apply(session);
            }
            for piece in &decision.say {
                progress.emit(piece, on_piece);
            }
            progress.notes.merge(decision.notes);
            let Some(effect) = decision.effect else {
                return progress;
            };
            let input = self.carry_out(effect, session, &mut progress, on_piece);
            decision = self.policy.decide(session, cx, &input);
        }
        tracing::warn!("a turn took more phases than any flow should; it ends here");
        progress
    }

    /// Carries out one effect; its result is the policy's next input.
    fn carry_out(
        &mut self,
        effect: Effect,
        session: &Session,
        progress: &mut Progress,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Input {
        match effect {
            Effect::RunAction { flow, slots } => {
                let action = self
                    .policy
                    .domain()
                    .flows
                    .get(&flow)
                    .and_then(|f| f.action.clone());
                let result = match action {
                    Some(action) => self
                        .backend
                        .run(&action, &flow, &slots, &session.user_id)
                        .map_err(|e| e.to_string()),
                    None => Ok(BTreeMap::new()),
                };
                Input::ActionDone(result)
            }
            Effect::HandOff(mut handoff) => {
                handoff.id = crate::telemetry::conversations::new_id();
                let url = self.policy.domain().handoff_url.as_deref();
                let result = self
                    .backend
                    .hand_off(url, &handoff)
                    .map_err(|e| e.to_string());
                progress.handoff = Some(*handoff);
                Input::HandoffDelivered(result)
            }
            Effect::AskModel(request) => self.ask_model(request, progress, on_piece),
        }
    }

    /// Streams the language model's answer to the listener as it comes.
    fn ask_model(
        &mut self,
        request: policy::ModelRequest,
        progress: &mut Progress,
        on_piece: &mut dyn FnMut(&str) -> bool,
    ) -> Input {
        let Some(llm) = self.llm.as_mut() else {
            return Input::ModelFailed;
        };
        let mut streamed = false;
        let result = llm.complete(&request.messages, &request.tools, &mut |piece| {
            // An empty piece only asks whether the answer is still wanted.
            streamed |= !piece.is_empty();
            on_piece(&plain_for_voice(piece))
        });
        progress.emitted |= streamed;
        match result {
            Ok(completion) => {
                let text = plain_for_voice(&completion.text).trim().to_string();
                if !text.is_empty() {
                    progress.said.push(text);
                }
                let call = completion.tool_call.map(|(name, args)| {
                    let values = args
                        .into_iter()
                        .map(|(slot, v)| {
                            let value = v
                                .as_str()
                                .map(String::from)
                                .unwrap_or_else(|| v.to_string());
                            (slot, value)
                        })
                        .collect();
                    policy::FlowCall { flow: name, values }
                });
                Input::ModelAnswered { call }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the language model failed; the fallback answers");
                Input::ModelFailed
            }
        }
    }

    /// What every turn leaves in the conversation (its reply, its history) and its record.
    fn finish(
        &self,
        session: &mut Session,
        user: String,
        progress: Progress,
        understood: Option<Understood>,
        before: Vec<String>,
    ) -> Turn {
        let reply = policy::join(&progress.said);
        let notes = progress.notes;
        session.last_reply = reply.clone();
        session.history.push(Exchange {
            user: user.clone(),
            reply: reply.clone(),
            misunderstood: notes.misunderstood,
        });
        let keep = self.policy.domain().policy.context_turns.max(1);
        if session.history.len() > keep {
            session.history.drain(..session.history.len() - keep);
        }
        let active = session.stack.last();
        let dropped = match progress.handoff {
            Some(_) => Vec::new(),
            None => before
                .into_iter()
                .filter(|f| {
                    notes.completed.as_ref() != Some(f)
                        && !session.stack.iter().any(|a| &a.intent == f)
                })
                .collect(),
        };
        let (intent, confidence, entities) = match understood {
            Some(u) => (u.nlu.intent, u.nlu.confidence, u.entities),
            None => (None, 0.0, Vec::new()),
        };
        Turn {
            user,
            reply,
            intent,
            confidence,
            entities,
            flow: active.map(|f| f.intent.clone()),
            slots: active.map(|f| f.slots.clone()).unwrap_or_default(),
            handoff: progress.handoff,
            ended: session.ended,
            started: notes.started,
            completed: notes.completed,
            misunderstood: notes.misunderstood,
            step: active.and_then(Step::of),
            dropped,
            rating_asked: notes.rating_asked,
            rating: notes.rating,
            variant: self
                .policy
                .compares_wordings()
                .then_some(session.variant.unwrap_or_default()),
        }
    }

    /// What `text` asks for, on its own (no conversation): the intent the classifier picks
    /// or, when nothing passes its threshold, the flow whose list slots the text fills
    /// most (values said are evidence of the intent); then that flow's slots.
    pub fn understand(&mut self, text: &str) -> Result<Understanding, DialogueError> {
        let text = normalize::chat_spellings(text);
        let intent = self
            .recognizer
            .recognize(&text)?
            .intent
            .or_else(|| self.policy.flow_by_values(&text));
        let slots = intent
            .as_deref()
            .map(|i| self.policy.slots_in(i, &text, self.today()))
            .unwrap_or_default();
        Ok(Understanding { intent, slots })
    }
}
