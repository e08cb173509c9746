//! The dialogue's own wording: what hark says between the domain's questions and answers
//! ("Okay, 3 PM.", "Is there anything else I can help with?"). One table, with English
//! defaults; a domain rewords any of them under `[phrases]` in its `domain.toml`.
//! Placeholders: `{name}` the user's name, `{assistant}` the persona's name, `{values}` the
//! values just taken, `{question}` the open question, `{flow}` a flow's description,
//! `{error}` why a delivery failed.

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Phrases {
    /// After "no" to the offer of a person.
    pub try_again: String,
    /// After "no" to a confirmation.
    pub what_to_change: String,
    /// Words that answer nothing while a flow waits; `{question}` follows.
    pub not_understood: String,
    /// After a flow is done, with nothing else open.
    pub anything_else: String,
    /// When nothing is open (silence, small talk at the start).
    pub how_can_i_help: String,
    pub hello: String,
    pub hello_name: String,
    pub welcome_back: String,
    pub welcome_back_name: String,
    /// The answer to "thanks".
    pub thanks: String,
    pub your_name: String,
    pub name_unknown: String,
    /// The answer to "who are you?" (what hark can do follows).
    pub about: String,
    /// The acknowledgement of values taken or corrected.
    pub values_noted: String,
    /// A flow's action failed (a person is brought in next).
    pub action_failed: String,
    /// The handoff could not be delivered.
    pub handoff_failed: String,
    /// The conversation could not be saved (store down, disk full); said once.
    pub not_saved: String,
}

impl Default for Phrases {
    fn default() -> Self {
        Self {
            try_again: "Okay, let's try again. How can I help?".into(),
            what_to_change: "Okay, what would you like to change?".into(),
            not_understood: "Sorry, I didn't get that. {question}".into(),
            anything_else: "Is there anything else I can help with?".into(),
            how_can_i_help: "How can I help?".into(),
            hello: "Hello! How can I help?".into(),
            hello_name: "Hello, {name}! How can I help?".into(),
            welcome_back: "Welcome back!".into(),
            welcome_back_name: "Welcome back, {name}!".into(),
            thanks: "You're welcome!".into(),
            your_name: "You're {name}.".into(),
            name_unknown: "You haven't told me your name yet.".into(),
            about: "I'm {assistant}, a virtual assistant.".into(),
            values_noted: "Okay, {values}.".into(),
            action_failed: "Sorry, something went wrong on our side while trying to {flow}.".into(),
            handoff_failed: "I couldn't reach our team right now ({error}). Please call us during \
                             opening hours, and we'll pick up where we left off."
                .into(),
            not_saved: "I couldn't save that just now, so I may not remember it next time.".into(),
        }
    }
}

impl Phrases {
    /// Every phrase, for the checks at load time and the cache of fixed wording.
    pub fn all(&self) -> [&str; 17] {
        [
            &self.try_again,
            &self.what_to_change,
            &self.not_understood,
            &self.anything_else,
            &self.how_can_i_help,
            &self.hello,
            &self.hello_name,
            &self.welcome_back,
            &self.welcome_back_name,
            &self.thanks,
            &self.your_name,
            &self.name_unknown,
            &self.about,
            &self.values_noted,
            &self.action_failed,
            &self.handoff_failed,
            &self.not_saved,
        ]
    }
}
