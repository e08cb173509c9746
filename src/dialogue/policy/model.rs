//! The language model, for what the domain does not cover: the request it is sent (the
//! conversation so far, the flows as functions it may call), and what follows its answer.

use super::draft::{Change, Draft};
use super::steps::{self, Turn};
use super::{flows, Understood};
use crate::dialogue::llm::{ChatMessage, Tool};
use crate::domain::Channel;
use crate::knowledge::Found;

/// What the language model is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRequest {
    pub messages: Vec<ChatMessage>,
    /// The flows, offered as functions it may call.
    pub tools: Vec<Tool>,
}

/// Asks the model, when there is one: nothing in the domain fits.
pub(super) fn ask(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    if !turn.policy.has_model {
        return false;
    }
    d.effect(super::Effect::AskModel(request(turn, user, d)));
    true
}

/// The conversation so far and the user's words, with the flows as functions.
fn request(turn: &Turn, user: &Understood, d: &Draft) -> ModelRequest {
    let domain = &turn.policy.domain;
    let persona = &domain.persona;
    let how = match turn.policy.channel {
        Channel::Voice => {
            "The user is speaking to you: answer in one or two short spoken sentences of \
             plain text, no lists, no markdown, numbers as people say them."
        }
        Channel::Text => {
            "The user is typing to you: answer in one to three short sentences of plain text, \
             no markdown."
        }
    };
    let mut system = format!(
        "You are {}, an assistant. {how} What you can do: {} \
         When the user wants one of the functions, call it.",
        persona.name, persona.help
    );
    if let Some(Found::Nothing { nearest, .. }) = &user.documents {
        system.push_str(
            " Answer questions only from the passages of our documents below; when they do not \
             answer the question, say plainly that you don't know (the user can ask for a \
             person). Never guess. Passages:",
        );
        for passage in nearest {
            system.push_str("\n- ");
            system.push_str(passage);
        }
    }
    let mut messages = vec![ChatMessage::new("system", &system)];
    for exchange in &d.state.history {
        if !exchange.user.is_empty() {
            messages.push(ChatMessage::new("user", &exchange.user));
        }
        messages.push(ChatMessage::new("assistant", &exchange.reply));
    }
    messages.push(ChatMessage::new("user", &user.said));
    let tools = domain
        .flows
        .values()
        .map(|f| Tool {
            name: f.intent.clone(),
            description: f.description.clone(),
            parameters: f
                .slots
                .iter()
                .map(|s| (s.name.clone(), turn.policy.word(&s.prompt, turn.cx)))
                .collect(),
        })
        .collect();
    ModelRequest { messages, tools }
}

/// The model answered (already streamed to the user); a call to a flow starts it, each
/// value the model gave read as the answer to its slot's question.
pub(super) fn answered(turn: &Turn, d: &mut Draft, call: Option<&super::FlowCall>) {
    match call.filter(|c| turn.policy.domain.flows.contains_key(&c.flow)) {
        Some(call) => flows::start_flow_with(turn, d, &call.flow, &call.values),
        None => d.change(Change::Failures(0)),
    }
}

/// The model failed: the fallback, as for words not understood (without counting it as the
/// user's misunderstanding).
pub(super) fn failed(turn: &Turn, d: &mut Draft) {
    let failures = d.state.failures + 1;
    d.change(Change::Failures(failures));
    if failures >= turn.policy.domain.policy.max_failures {
        steps::offer_human(turn, d);
    } else {
        d.say(turn.policy.domain.persona.fallback.clone());
    }
}
