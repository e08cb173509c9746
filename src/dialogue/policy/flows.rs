//! Flows: the active flow's answer (a slot's value, a correction, the confirmation's yes or
//! no, a digression), starting a flow, asking its next question, and completing it.

use std::collections::BTreeMap;

use super::draft::{Change, Draft};
use super::steps::{self, Turn};
use super::{handoff, render, slots, Understood};
use crate::conversation::session::ActiveFlow;
use crate::domain::FlowSpec;
use crate::nlu::entities::Entity;

/// The user's words while a flow is under way: its confirmation answered, its slots filled
/// or corrected, another request taken on the way (the flow resumes after it), or, when
/// none of that, its question asked again.
pub(super) fn active_flow(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    let Some(mut active) = d.top().cloned() else {
        return false;
    };
    let Some(flow) = turn.policy.domain.flows.get(&active.intent) else {
        // A flow the domain no longer has (a session stored before it changed).
        d.change(Change::FlowLeft);
        d.say(turn.policy.domain.persona.fallback.clone());
        return true;
    };
    if active.confirming && confirmation_answer(turn, user, d, flow, &mut active) {
        return true;
    }
    if slot_answer(turn, user, d, flow, &mut active) || digression(turn, user, d, &active) {
        return true;
    }
    not_an_answer(turn, d, flow, active);
    true
}

/// The answer to the flow's confirmation: yes completes it, new values are confirmed again,
/// no asks what to change. Anything else goes on as an ordinary answer.
fn confirmation_answer(
    turn: &Turn,
    user: &Understood,
    d: &mut Draft,
    flow: &FlowSpec,
    active: &mut ActiveFlow,
) -> bool {
    let changed = turn.policy.fill(turn.cx, flow, active, user, true);
    match (steps::yes_no(&user.text), changed.is_empty()) {
        (Some(true), true) => complete(turn, d, flow, active.clone(), None),
        (_, false) => {
            d.change(Change::FlowUpdated(active.clone()));
            next_step(turn, d, flow, Some(slots::ack(turn.policy, &changed)));
        }
        (Some(false), true) => {
            active.confirming = false;
            d.change(Change::FlowUpdated(active.clone()));
            d.ask(turn.policy.domain.phrases.what_to_change.clone());
        }
        (None, true) => return false,
    }
    true
}

/// Slot values in the words: filled (a value that replaces one said before is
/// acknowledged), and the flow goes on to its next step.
fn slot_answer(
    turn: &Turn,
    user: &Understood,
    d: &mut Draft,
    flow: &FlowSpec,
    active: &mut ActiveFlow,
) -> bool {
    let overwrite = other_flow(turn, user, active).is_none();
    let changed = turn.policy.fill(turn.cx, flow, active, user, overwrite);
    if changed.is_empty() {
        return false;
    }
    d.change(Change::Failures(0));
    d.change(Change::FlowUpdated(active.clone()));
    let corrected = changed.iter().any(|c| c.old.is_some());
    let prefix = corrected.then(|| slots::ack(turn.policy, &changed));
    next_step(turn, d, flow, prefix);
    true
}

/// Another flow asked for confidently in the middle of this one.
fn other_flow<'a>(turn: &Turn, user: &'a Understood, active: &ActiveFlow) -> Option<&'a str> {
    let clarify_below = turn.policy.domain.policy.clarify_below;
    user.nlu.intent.as_deref().filter(|i| {
        *i != active.intent
            && turn.policy.domain.flows.contains_key(*i)
            && user.nlu.confidence >= clarify_below
    })
}

/// A new request in the middle of this one (done, then back), or a question the domain
/// answers (answered, then the open question again).
fn digression(turn: &Turn, user: &Understood, d: &mut Draft, active: &ActiveFlow) -> bool {
    if let Some(other) = other_flow(turn, user, active) {
        d.change(Change::FlowUpdated(active.clone()));
        start_flow(turn, d, other, &user.text, &user.entities);
        return true;
    }
    let Some(answer) = turn.intent().and_then(|i| turn.policy.answer(i, turn.cx)) else {
        return false;
    };
    d.change(Change::FlowUpdated(active.clone()));
    let question = d.state.pending_question.clone().unwrap_or_default();
    d.say(answer);
    d.say(question);
    true
}

/// Words that do not answer the flow: a value out of bounds is explained; words that read
/// as wanting a person go to one; otherwise the question is asked again (a person offered
/// after too many tries).
fn not_an_answer(turn: &Turn, d: &mut Draft, flow: &FlowSpec, mut active: ActiveFlow) {
    if let Some(message) = rejection(flow, &mut active) {
        d.change(Change::FlowUpdated(active));
        d.ask(message);
        return;
    }
    if let Some(intent) = turn
        .intent()
        .filter(|i| ["human", "frustrated"].contains(i))
    {
        d.change(Change::FlowUpdated(active));
        handoff::hand_off(turn, d, handoff::reason_for(intent));
        return;
    }
    d.misunderstood();
    if active.confirming || active.asking.is_none() {
        d.change(Change::FlowUpdated(active));
        let question = d.state.pending_question.clone().unwrap_or_default();
        let sorry = turn.policy.domain.phrases.not_understood.clone();
        d.say(sorry.replace("{question}", &question));
        return;
    }
    active.reprompts += 1;
    let over = active.reprompts > turn.policy.domain.policy.max_reprompts;
    let slot = flow
        .slots
        .iter()
        .find(|s| Some(&s.name) == active.asking.as_ref());
    d.change(Change::FlowUpdated(active));
    if over {
        steps::offer_human(turn, d);
        return;
    }
    let reprompt = slot
        .map(|s| {
            s.reprompt
                .clone()
                .unwrap_or_else(|| turn.policy.word(&s.prompt, turn.cx))
        })
        .unwrap_or_default();
    d.ask(reprompt);
}

/// The message for a value the user gave that was out of bounds, once (clearing it).
fn rejection(flow: &FlowSpec, active: &mut ActiveFlow) -> Option<String> {
    let rejected = active.rejected.take()?;
    flow.slots
        .iter()
        .find(|s| s.name == rejected)
        .and_then(|s| s.invalid.clone())
}

/// Starts the flow of `intent` with the slots the request itself fills, then its first
/// question.
pub(super) fn start_flow(turn: &Turn, d: &mut Draft, intent: &str, text: &str, found: &[Entity]) {
    let domain = &turn.policy.domain;
    let Some(flow) = domain.flows.get(intent) else {
        d.say(domain.persona.fallback.clone());
        return;
    };
    d.notes().started = Some(intent.to_string());
    let mut active = ActiveFlow {
        intent: intent.to_string(),
        ..Default::default()
    };
    let request = Understood {
        said: text.to_string(),
        text: text.to_string(),
        entities: found.to_vec(),
        nlu: Default::default(),
        documents: None,
    };
    turn.policy
        .fill(turn.cx, flow, &mut active, &request, false);
    d.change(Change::FlowStarted(active));
    next_step(turn, d, flow, None);
}

/// Starts the flow of `intent` with values given by slot name (a language model's call):
/// each is read as the answer to its slot's question, so a bare "4567" is an order number.
pub(super) fn start_flow_with(
    turn: &Turn,
    d: &mut Draft,
    intent: &str,
    values: &[(String, String)],
) {
    let domain = &turn.policy.domain;
    let Some(flow) = domain.flows.get(intent) else {
        d.say(domain.persona.fallback.clone());
        return;
    };
    d.notes().started = Some(intent.to_string());
    let mut active = ActiveFlow {
        intent: intent.to_string(),
        ..Default::default()
    };
    for (slot, value) in values
        .iter()
        .filter(|(s, _)| flow.slots.iter().any(|f| &f.name == s))
    {
        let answer = Understood {
            said: value.clone(),
            text: value.clone(),
            entities: crate::nlu::entities::extract(value, turn.cx.today),
            nlu: Default::default(),
            documents: None,
        };
        active.asking = Some(slot.clone());
        turn.policy.fill(turn.cx, flow, &mut active, &answer, false);
    }
    active.asking = None;
    d.change(Change::FlowStarted(active));
    next_step(turn, d, flow, None);
}

/// Asks for the next missing slot (explaining first why a value given for it was refused),
/// or the confirmation, or completes the flow. `prefix` is said first.
pub(super) fn next_step(turn: &Turn, d: &mut Draft, flow: &FlowSpec, prefix: Option<String>) {
    let Some(mut active) = d.top().cloned() else {
        return;
    };
    let missing = flow
        .slots
        .iter()
        .find(|s| s.required && !active.slots.contains_key(&s.name));
    let rejected = active.rejected.take();
    let question = match missing {
        Some(slot) => {
            if active.asking.as_deref() != Some(slot.name.as_str()) {
                active.reprompts = 0;
            }
            active.asking = Some(slot.name.clone());
            active.confirming = false;
            match (
                &slot.invalid,
                rejected.as_deref() == Some(slot.name.as_str()),
            ) {
                (Some(invalid), true) => invalid.clone(),
                _ => turn.policy.word(&slot.prompt, turn.cx),
            }
        }
        None => match &flow.confirm {
            Some(confirm) => {
                active.asking = None;
                active.confirming = true;
                let wording = turn.policy.word(confirm, turn.cx);
                render(
                    &wording,
                    flow,
                    &active.slots,
                    &BTreeMap::new(),
                    turn.policy.channel,
                )
            }
            None => {
                d.say(prefix.unwrap_or_default());
                complete(turn, d, flow, active, None);
                return;
            }
        },
    };
    d.change(Change::FlowUpdated(active));
    d.say(prefix.unwrap_or_default());
    d.ask(question);
}

/// Completes the flow: its action first when it has one (the result decides the rest),
/// else straight to what is said when it is done.
fn complete(
    turn: &Turn,
    d: &mut Draft,
    flow: &FlowSpec,
    active: ActiveFlow,
    result: Option<BTreeMap<String, String>>,
) {
    match (&flow.action, result) {
        (Some(_), None) => {
            let slots = active.slots.clone();
            d.change(Change::FlowUpdated(active));
            d.effect(super::Effect::RunAction {
                flow: flow.intent.clone(),
                slots,
            });
        }
        (_, result) => done(turn, d, flow, active, &result.unwrap_or_default()),
    }
}

/// The active flow's action ran: done with its result, or sorry and a person.
pub(super) fn action_done(
    turn: &Turn,
    d: &mut Draft,
    result: &Result<BTreeMap<String, String>, String>,
) {
    let domain = &turn.policy.domain;
    let Some(active) = d.top().cloned() else {
        return;
    };
    let Some(flow) = domain.flows.get(&active.intent) else {
        return;
    };
    match result {
        Ok(fields) => done(turn, d, flow, active, fields),
        Err(error) => {
            let sorry = domain
                .phrases
                .action_failed
                .replace("{flow}", &flow.description);
            d.say(sorry);
            let reason = format!("the {} backend failed: {error}", flow.description);
            handoff::hand_off(turn, d, &reason);
        }
    }
}

/// The flow is done: said so, its values remembered, and then the flow it interrupted
/// resumes, or a person takes over when the flow says so.
fn done(
    turn: &Turn,
    d: &mut Draft,
    flow: &FlowSpec,
    active: ActiveFlow,
    result: &BTreeMap<String, String>,
) {
    let policy = turn.policy;
    d.notes().completed = Some(flow.intent.clone());
    d.change(Change::FlowCompleted);
    let wording = policy.word(&flow.done, turn.cx);
    d.say(render(
        &wording,
        flow,
        &active.slots,
        result,
        policy.channel,
    ));
    for change in slots::remembered(flow, &active) {
        d.change(change);
    }
    d.change(Change::Asked(None));
    if flow.handoff {
        let reason = format!("flow '{}' goes to a person", flow.intent);
        handoff::hand_off(turn, d, &reason);
        return;
    }
    d.change(Change::FlowLeft);
    resume(turn, d);
}

/// After a flow is done: the one it interrupted goes on, or more help is offered.
fn resume(turn: &Turn, d: &mut Draft) {
    let domain = &turn.policy.domain;
    let Some(resumed) = d.top().and_then(|f| domain.flows.get(&f.intent)) else {
        d.say(domain.phrases.anything_else.clone());
        return;
    };
    d.say(
        domain
            .persona
            .resume
            .replace("{flow}", &resumed.description),
    );
    next_step(turn, d, resumed, None);
}
