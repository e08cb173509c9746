//! The dialogue manager behind the voice loop's [`Brain`] trait: one session, replies
//! streamed as whole sentences, barge-ins recorded as what was actually heard.

use super::manager::{DialogueError, DialogueManager, Turn};
use super::{Brain, BrainError};
use crate::conversation::session::{Handoff, Session};
use crate::store::SessionStore;

pub struct DialogueBrain {
    manager: DialogueManager,
    pub session: Session,
    store: Option<Box<dyn SessionStore>>,
    save_failed: bool,
    log_failed: bool,
    /// A handoff of the last reply, until the loop logs it.
    pending_handoff: Option<Handoff>,
    log: Option<crate::telemetry::conversations::ConversationLog>,
    /// Forget the conversation once it is over (kiosk mode).
    forget_when_over: bool,
    /// This conversation's id, on its log lines and its diagnostics.
    conversation: String,
    /// A reply worked out before the turn ended, with the words it is for.
    prepared: Option<(String, super::manager::Prepared)>,
    /// What the user must still be told (the conversation could not be saved).
    owed_notice: Option<String>,
    /// The same, for the client's event log.
    fault: Option<String>,
}

impl DialogueBrain {
    /// A conversation with the identified user `user_id`.
    pub fn new(manager: DialogueManager, user_id: &str) -> Self {
        Self::with_session(manager, Session::new(user_id))
    }

    /// A conversation with nobody in particular: it starts afresh and nothing about the
    /// person is stored (a store given later is not used).
    pub fn anonymous(manager: DialogueManager) -> Self {
        Self::with_session(manager, Session::anonymous())
    }

    fn with_session(manager: DialogueManager, session: Session) -> Self {
        Self {
            manager,
            session,
            store: None,
            save_failed: false,
            log_failed: false,
            pending_handoff: None,
            log: None,
            forget_when_over: false,
            conversation: crate::telemetry::conversations::new_id(),
            prepared: None,
            owed_notice: None,
            fault: None,
        }
    }

    /// Keeps the session in `store` after every turn, resuming the one stored for the user.
    /// Anonymous conversations keep nothing: the store is dropped unused.
    pub fn with_store(
        mut self,
        mut store: Box<dyn SessionStore>,
    ) -> Result<Self, crate::store::StoreError> {
        if self.session.is_anonymous() {
            return Ok(self);
        }
        self.session = crate::store::resume(store.as_mut(), &self.session.user_id)?;
        self.store = Some(store);
        Ok(self)
    }

    /// Kiosk mode: once a conversation is over (the user said goodbye, or went quiet with
    /// nothing left to ask), everything about it is forgotten and the next person starts
    /// afresh, as a new conversation in the log.
    pub fn forgetting_each_conversation(mut self) -> Self {
        self.forget_when_over = true;
        self
    }

    /// Starts a new anonymous conversation, keeping nothing of the last one but its log.
    fn forget(&mut self) {
        self.session = Session::anonymous();
        let next = crate::telemetry::conversations::new_id();
        tracing::info!(parent: &self.span(), next = %next, "conversation over; the next one starts afresh");
        self.conversation = next;
    }

    /// The span of this conversation's diagnostics: its id on every line.
    pub fn span(&self) -> tracing::Span {
        tracing::info_span!("conversation", id = %self.conversation)
    }

    pub fn conversation_id(&self) -> &str {
        &self.conversation
    }

    /// Writes every turn to a conversation log.
    pub fn with_log(mut self, log: crate::telemetry::conversations::ConversationLog) -> Self {
        self.log = Some(log);
        self
    }

    pub fn manager(&self) -> &DialogueManager {
        &self.manager
    }

    /// One user turn over text (`hark chat`): the whole reply at once.
    pub fn turn(&mut self, user_text: &str) -> Result<Turn, DialogueError> {
        let _span = self.span().entered();
        let mut turn = self.manager.handle(&mut self.session, user_text)?;
        self.after_turn(&turn);
        if let Some(notice) = self.owed_notice.take() {
            turn.reply = format!("{} {notice}", turn.reply);
        }
        Ok(turn)
    }

    /// What every turn leaves behind: the log line, the saved session, a handoff to report.
    fn after_turn(&mut self, turn: &Turn) {
        self.pending_handoff = turn.handoff.clone();
        crate::telemetry::metrics::global().turn(
            turn.started.as_deref(),
            turn.completed.as_deref(),
            turn.handoff.as_ref().map(|h| h.reason.as_str()),
            turn.misunderstood,
        );
        // What was said stays out of diagnostics: the log masks it, stderr never has it.
        tracing::info!(
            intent = turn.intent.as_deref().unwrap_or(""),
            flow = turn.flow.as_deref().unwrap_or(""),
            started = turn.started.as_deref().unwrap_or(""),
            completed = turn.completed.as_deref().unwrap_or(""),
            misunderstood = turn.misunderstood,
            handoff = turn
                .handoff
                .as_ref()
                .map(|h| h.reason.as_str())
                .unwrap_or(""),
            "turn"
        );
        if let Some(log) = self.log.as_mut() {
            let user = log.user_hash(&self.session.user_id);
            let redactor = self.manager.redactor(&self.session, turn);
            log.record(&self.conversation, turn.record(user), &redactor);
        }
        self.note_log_failure();
        self.save();
        if turn.ended && self.forget_when_over {
            self.forget();
        }
    }

    /// A failing log (full disk) must not stop the conversation: it is said once.
    fn note_log_failure(&mut self) {
        if self.log.as_ref().is_some_and(|l| l.failed()) && !self.log_failed {
            tracing::warn!(
                "the conversation log could not be written (disk full?); the conversation goes on"
            );
            self.log_failed = true;
        }
    }

    fn save(&mut self) {
        if let Some(store) = self.store.as_mut() {
            // A failing store (full disk, Redis down) must not stop the conversation.
            if let Err(e) = store.save(&self.session) {
                if !self.save_failed {
                    tracing::warn!(
                        error = %e,
                        "the conversation goes on but is not being saved"
                    );
                    self.owed_notice = Some(self.manager.domain().phrases.not_saved.clone());
                    // What failed stays in the diagnostics: a store's error may name hosts
                    // and paths the client has no business knowing.
                    self.fault = Some(
                        "the conversation could not be saved; it goes on, but will not be \
                         remembered"
                            .into(),
                    );
                }
                self.save_failed = true;
            }
        }
    }
}

impl Brain for DialogueBrain {
    fn respond(
        &mut self,
        user_text: &str,
        emit: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), BrainError> {
        let _span = self.span().entered();
        let turn = self
            .manager
            .handle_streaming(&mut self.session, user_text, emit)
            .map_err(|e| BrainError::Failed(e.to_string()))?;
        self.after_turn(&turn);
        if let Some(notice) = self.owed_notice.take() {
            emit(&format!(" {notice}"));
        }
        Ok(())
    }

    fn measured(&mut self, measure: crate::telemetry::metrics::Measure, ms: f64) {
        if let Some(log) = self.log.as_mut() {
            log.timing(&self.conversation, measure, ms);
        }
        self.note_log_failure();
    }

    fn conversation_id(&self) -> Option<String> {
        Some(self.conversation.clone())
    }

    fn prepare(&mut self, user_text: &str) -> Option<super::PreparedReply> {
        let prepared = self.manager.prepare(&self.session, user_text).ok()??;
        let reply = super::PreparedReply {
            reply: prepared.reply(),
            answers: prepared.answers(),
        };
        self.prepared = Some((user_text.to_string(), prepared));
        Some(reply)
    }

    fn commit_prepared(&mut self, user_text: &str) -> bool {
        let Some((text, prepared)) = self.prepared.take() else {
            return false;
        };
        if text != user_text || prepared.reply().is_none() {
            return false;
        }
        let _span = self.span().entered();
        let Some(turn) =
            self.manager
                .commit_prepared(&mut self.session, user_text, prepared, &mut |_| true)
        else {
            return false;
        };
        self.after_turn(&turn);
        true
    }

    fn drop_prepared(&mut self) {
        self.prepared = None;
    }

    fn interrupted(&mut self, spoken: &str) {
        // The user heard only `spoken`: that is what the conversation said.
        if let Some(last) = self.session.history.last_mut() {
            last.reply = spoken.to_string();
        }
        self.session.last_reply = spoken.to_string();
        self.save();
    }

    fn take_fault(&mut self) -> Option<String> {
        self.fault.take()
    }

    fn take_handoff(&mut self) -> Option<serde_json::Value> {
        self.pending_handoff
            .take()
            .and_then(|h| serde_json::to_value(h).ok())
    }

    fn silence(&mut self) -> Option<String> {
        // Re-ask a pending question twice at most; then wait quietly.
        let unanswered = self
            .session
            .history
            .iter()
            .rev()
            .take_while(|e| e.user.is_empty())
            .count();
        if self.session.pending_question.is_none() || self.session.ended || unanswered >= 2 {
            if self.forget_when_over && !self.session.history.is_empty() {
                self.forget();
            }
            return None;
        }
        let _span = self.span().entered();
        let turn = self.manager.no_input(&mut self.session);
        self.after_turn(&turn);
        Some(turn.reply)
    }

    fn greeting(&mut self) -> Option<String> {
        Some(self.manager.greet(&mut self.session))
    }

    fn expected_phrases(&self) -> Vec<String> {
        self.manager.expected_vocabulary(&self.session)
    }

    fn fixed_wording(&self) -> Vec<String> {
        self.manager.domain().fixed_texts()
    }

    fn value_phrases(&self) -> Vec<String> {
        self.manager.domain().value_phrases()
    }
}
