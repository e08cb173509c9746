//! A small keyword responder, so the voice loop has something to say before an intent model
//! or LLM is configured. Deliberately simple: it answers greetings, the time, goodbyes and a
//! few demo requests, and says what it heard otherwise.

use super::{Brain, BrainError};

#[derive(Debug, Default)]
pub struct KeywordResponder {
    /// What was actually said to the user, turn by turn (cut short on barge-in).
    pub history: Vec<(String, String)>,
}

impl KeywordResponder {
    pub fn new() -> Self {
        Self::default()
    }

    fn answer(text: &str) -> String {
        let t = text.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
        if t.trim().is_empty() {
            "Sorry, I didn't catch that. Could you say it again?".into()
        } else if has(&["bye", "that's all", "that is all"]) {
            "Goodbye! Have a nice day.".into()
        } else if has(&["time is it", "what time"]) {
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let (h, m) = ((secs / 3600) % 24, (secs / 60) % 60);
            format!("It is {h}:{m:02} UTC.")
        } else if has(&["table", "book", "reservation", "appointment"]) {
            "Sure, I can help you book that. For how many people, and at what time?".into()
        } else if has(&["order"]) {
            "I can check your order. What is your order number?".into()
        } else if has(&["password"]) {
            "I can help you reset your password. Which account is it for?".into()
        } else if has(&["hello", "hi ", "hey"]) || t == "hi" {
            "Hello! How can I help you today?".into()
        } else {
            format!(
                "You said: {}. I can help with bookings, orders and passwords.",
                text.trim().trim_end_matches(['.', '?', '!'])
            )
        }
    }
}

impl Brain for KeywordResponder {
    fn respond(
        &mut self,
        user_text: &str,
        emit: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), BrainError> {
        let reply = Self::answer(user_text);
        self.history.push((user_text.to_string(), reply.clone()));
        emit(&reply);
        Ok(())
    }

    fn interrupted(&mut self, spoken: &str) {
        if let Some(last) = self.history.last_mut() {
            last.1 = spoken.to_string();
        }
    }

    /// What this responder understands.
    fn expected_phrases(&self) -> Vec<String> {
        VOCABULARY.iter().map(|p| p.to_string()).collect()
    }
}

/// The requests the responder knows, phrased the way users say them.
const VOCABULARY: &[&str] = &[
    "Book a table",
    "Make an appointment",
    "Cancel my appointment",
    "Check my order status",
    "Reset the password for my work account",
    "What time is it?",
    "Hello",
    "Goodbye",
];
