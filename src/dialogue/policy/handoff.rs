//! Handing the conversation to a person: what they are given (the reason, what the user
//! wanted, what is known, the transcript) and what the user hears once it is delivered.

use super::draft::{Change, Draft};
use super::steps::Turn;
use crate::conversation::session::{ActiveFlow, Exchange, Handoff};
use crate::conversation::EntityKind;
use crate::dialogue::handoff::{summary, Story};

/// Why a conversation goes to a person, for the intent that sent it there.
pub(super) fn reason_for(intent: &str) -> &'static str {
    match intent {
        "frustrated" => "the user sounded frustrated",
        _ => "the user asked for a person",
    }
}

/// Hands the conversation to a person: everything they need, delivered before the user
/// hears that someone is coming. The conversation ends here for hark.
pub(super) fn hand_off(turn: &Turn, d: &mut Draft, reason: &str) {
    let persona = &turn.policy.domain.persona;
    let active = d.top();
    let flow = active.map(|f| f.intent.clone());
    let slots = active.map(|f| f.slots.clone()).unwrap_or_default();
    // The turn that brings the person in is part of the story.
    let mut transcript = d.state.history.clone();
    if let Some(user) = turn.user {
        transcript.push(Exchange {
            user: user.said.clone(),
            reply: persona.handoff.clone(),
            misunderstood: d.is_misunderstood(),
        });
    }
    let summary = summary(&story(turn, reason, active, &transcript));
    let handoff = Handoff {
        id: String::new(),
        user_id: d.state.user_id.clone(),
        reason: reason.to_string(),
        summary,
        flow,
        slots,
        transcript,
    };
    d.change(Change::HandedOff);
    d.change(Change::Ended);
    d.change(Change::FlowsCleared);
    d.effect(super::Effect::HandOff(Box::new(handoff)));
}

/// The handoff reached the team (the user is told someone is coming), or it could not
/// (the user is told how else to reach them).
pub(super) fn delivered(turn: &Turn, d: &mut Draft, result: &Result<(), String>) {
    let domain = &turn.policy.domain;
    match result {
        Ok(()) => d.say(domain.persona.handoff.clone()),
        Err(error) => d.say(domain.phrases.handoff_failed.replace("{error}", error)),
    }
}

/// What a person taking over needs to know. What the user wanted is the active flow or,
/// when none is active, a flow the classifier found likely in the last words ("my package
/// is late again, ridiculous" is frustration about an order).
fn story<'a>(
    turn: &Turn,
    reason: &'a str,
    active: Option<&ActiveFlow>,
    transcript: &'a [Exchange],
) -> Story<'a> {
    const LIKELY: f32 = 0.1;
    let domain = &turn.policy.domain;
    let ranked = turn.user.map(|u| u.nlu.ranked.as_slice()).unwrap_or(&[]);
    let flow = active
        .and_then(|a| domain.flows.get(&a.intent))
        .or_else(|| {
            ranked
                .iter()
                .filter(|(_, p)| *p >= LIKELY)
                .find_map(|(intent, _)| domain.flows.get(intent))
        });
    let values = active.map(|a| &a.slots);
    let said = |name: &str| values.and_then(|v| v.get(name));
    let collected = flow
        .iter()
        .flat_map(|f| &f.slots)
        .filter_map(|s| {
            let value = said(&s.name)?;
            let value = match s.kind {
                EntityKind::Date | EntityKind::Time => super::slots::speakable(s.kind, value),
                _ => value.clone(),
            };
            Some((s.name.replace('_', " "), value))
        })
        .collect();
    let missing = flow
        .iter()
        .flat_map(|f| &f.slots)
        .filter(|s| s.required && said(&s.name).is_none())
        .map(|s| s.name.replace('_', " "))
        .collect();
    let users: Vec<&Exchange> = transcript.iter().filter(|e| !e.user.is_empty()).collect();
    Story {
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
