//! The dialogue manager behind the voice loop's [`Brain`] trait: one session, replies
//! streamed as whole sentences, barge-ins recorded as what was actually heard.

use super::manager::{DialogueManager, Session, Turn};
use super::{Brain, BrainError};
use crate::stt::bias::vocabulary_prompt;

pub struct DialogueBrain {
    manager: DialogueManager,
    pub session: Session,
    /// Every turn, for logs and tests.
    pub turns: Vec<Turn>,
}

impl DialogueBrain {
    pub fn new(manager: DialogueManager, user_id: &str) -> Self {
        Self {
            manager,
            session: Session::new(user_id),
            turns: Vec::new(),
        }
    }
}

impl Brain for DialogueBrain {
    fn respond(
        &mut self,
        user_text: &str,
        emit: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), BrainError> {
        let turn = self
            .manager
            .handle(&mut self.session, user_text)
            .map_err(|e| BrainError::Failed(e.to_string()))?;
        emit(&turn.reply);
        self.turns.push(turn);
        Ok(())
    }

    fn interrupted(&mut self, spoken: &str) {
        // The user heard only `spoken`: that is what the conversation said.
        if let Some(last) = self.session.history.last_mut() {
            last.reply = spoken.to_string();
        }
        self.session.last_reply = spoken.to_string();
    }

    fn greeting(&mut self) -> Option<String> {
        Some(self.manager.greet(&mut self.session))
    }

    fn expected_vocabulary(&self) -> Option<String> {
        vocabulary_prompt(&self.manager.expected_vocabulary(&self.session), 300)
    }
}
