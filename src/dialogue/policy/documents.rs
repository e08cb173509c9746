//! Questions the deployer's documents answer, and those they do not: an answer is what the
//! documents say, never a guess.

use super::draft::{Change, Draft};
use super::steps::Turn;
use super::Understood;
use crate::knowledge::Found;

/// The documents answer the question and no intent of the domain is sure of the words: the
/// sentences that answer it, as the documents put them.
pub(super) fn answer(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    let Some(Found::Answer { text, .. }) = &user.documents else {
        return false;
    };
    let sure_of_an_intent =
        user.nlu.intent.is_some() && user.nlu.confidence >= turn.policy.domain.policy.clarify_below;
    if sure_of_an_intent {
        return false;
    }
    d.change(Change::Failures(0));
    d.say(text.clone());
    true
}

/// Words fewer than this are no question for the documents ("uh huh", a half-heard word):
/// they get the fallback, not "I don't know that".
const QUESTION_WORDS: usize = 3;

/// The documents were asked and do not answer: hark says so plainly and offers a person
/// (the handoff carries the conversation, the question with it).
pub(super) fn not_in_them(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    if !matches!(user.documents, Some(Found::Nothing { .. }))
        || user.text.split_whitespace().count() < QUESTION_WORDS
    {
        return false;
    }
    d.change(Change::HumanOffered(true));
    d.change(Change::Failures(0));
    d.ask(turn.policy.domain.persona.not_in_documents.clone());
    true
}
