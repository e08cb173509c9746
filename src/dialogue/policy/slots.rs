//! Slot values in the user's words: which words fill which slot of a flow, whether a value
//! is within the slot's bounds, the user's name, and values as they are said back.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime, Timelike};

use super::draft::Change;
use super::{Context, Policy, Understood};
use crate::conversation::session::ActiveFlow;
use crate::conversation::EntityKind;
use crate::dialogue::learned::{self, Learned};
use crate::domain::{placeholders, Channel, FlowSpec, SlotSpec};
use crate::nlu::entities::{self, Entity};

/// A slot whose value changed: its name, the new value as the channel shows it, and the
/// value before, if it had one.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Filled {
    pub slot: String,
    pub shown: String,
    pub old: Option<String>,
}

/// Word positions [start, end) a value was read from.
type Span = (usize, usize);

/// What one utterance offers the slots of a flow: its words, the list values spotted, the
/// slot tagger's reading, and the entity words already taken by a slot.
struct Offer<'a> {
    user: &'a Understood,
    words: Vec<String>,
    spotted: Vec<crate::dialogue::spotter::Spotted>,
    learned: Option<Vec<Learned>>,
    used: Vec<Span>,
}

impl Offer<'_> {
    fn free(&self, e: &Entity) -> bool {
        !self.used.iter().any(|&(s, t)| e.span.0 < t && s < e.span.1)
    }
}

impl Policy {
    /// Fills slots of `flow` from the user's words. The slot being asked for may take free
    /// text; others need an entity of their type. With `overwrite`, filled slots are
    /// corrected by new values. A value out of bounds is refused and noted in
    /// `active.rejected`, so the reply can say why. Returns the slots that changed.
    pub(super) fn fill(
        &self,
        cx: &Context,
        flow: &FlowSpec,
        active: &mut ActiveFlow,
        user: &Understood,
        overwrite: bool,
    ) -> Vec<Filled> {
        let mut offer = Offer {
            user,
            words: entities::tokenize(&user.text),
            // List slots are read together, so that one word fills one slot ("medium
            // roast" is a roast, not a size).
            spotted: self
                .spotters
                .get(&flow.intent)
                .map(|s| s.spot(&user.text))
                .unwrap_or_default(),
            learned: self.learned(flow, active, &user.text),
            used: Vec::new(),
        };
        // The asked-for slot first, then the others in order.
        let mut order: Vec<&SlotSpec> = flow.slots.iter().collect();
        if let Some(asking) = &active.asking {
            order.sort_by_key(|s| &s.name != asking);
        }
        let mut changes = Vec::new();
        for slot in order {
            let asked = active.asking.as_deref() == Some(slot.name.as_str());
            if active.slots.contains_key(&slot.name) && !overwrite && !asked {
                continue;
            }
            let Some((value, span)) = self.candidate(cx, slot, asked, &offer) else {
                continue;
            };
            // Free text may take words an entity also has; entities may not share words.
            let overlaps =
                span.is_some_and(|(a, b)| offer.used.iter().any(|&(s, t)| a < t && s < b));
            if overlaps && slot.kind != EntityKind::Text {
                continue;
            }
            if !self.valid(cx, slot, &value) {
                active.rejected = Some(slot.name.clone());
                continue;
            }
            offer.used.extend(span);
            let old = active.slots.insert(slot.name.clone(), value.clone());
            if old.as_deref() != Some(value.as_str()) {
                let shown = shown(slot.kind, &value, self.channel);
                changes.push(Filled {
                    slot: slot.name.clone(),
                    shown,
                    old,
                });
            }
        }
        changes
    }

    /// The value the words offer `slot`, with the words it was read from. A time outside
    /// the slot's hours said without "am" is read in the afternoon when that fits.
    fn candidate(
        &self,
        cx: &Context,
        slot: &SlotSpec,
        asked: bool,
        offer: &Offer,
    ) -> Option<(String, Option<Span>)> {
        let (mut value, span) = match slot.kind {
            // List values take no entity words: the spotter has kept them apart, and its
            // spans count words differently.
            EntityKind::Choice => offer
                .spotted
                .iter()
                .find(|s| s.slot == slot.name)
                .map(|s| (s.value.clone(), None))?,
            EntityKind::Text => asked.then(|| {
                let text = offer.user.text.trim().trim_end_matches(['.', '!']);
                (text.to_string(), Some((0, offer.words.len())))
            })?,
            EntityKind::Person => person(offer, asked)?,
            _ if slot.learned.is_some() && offer.learned.is_some() => tagged(slot, asked, offer)?,
            kind => entity(kind, asked, offer)?,
        };
        if slot.kind == EntityKind::Time && !self.valid(cx, slot, &value) {
            let said = span.map_or(&offer.words[..], |(a, b)| {
                &offer.words[a.min(b)..b.min(offer.words.len())]
            });
            if let Some(later) = self.afternoon(cx, slot, &value, said) {
                value = later;
            }
        }
        Some((value, span))
    }

    /// The slot tagger's values in `text`, told which slot was just asked for; None without
    /// a tagger.
    fn learned(&self, flow: &FlowSpec, active: &ActiveFlow, text: &str) -> Option<Vec<Learned>> {
        let tagger = self.tagger.as_ref()?;
        let requested = active
            .asking
            .as_ref()
            .and_then(|a| flow.slots.iter().find(|s| &s.name == a))
            .map(learned::requested)
            .unwrap_or_default();
        Some(learned::read(tagger, text, &requested))
    }

    /// The name the slot tagger reads in the user's words (a greeting is read as the answer
    /// to "who is this?"). It counts when written with a capital, or when the writer uses
    /// none at all.
    pub(super) fn name_by_tagger(&self, user: &Understood) -> Option<String> {
        let tagger = self.tagger.as_ref()?;
        let requested = match user.nlu.intent.as_deref() {
            Some("greet") => vec!["first_name".to_string(), "last_name".to_string()],
            _ => Vec::new(),
        };
        let found = learned::read(tagger, &user.text, &requested);
        let part = ["first_name", "last_name"]
            .iter()
            .find_map(|label| found.iter().find(|l| l.label == *label))?;
        let word = part.text.split_whitespace().next().unwrap_or_default();
        let capital = word.chars().next().is_some_and(char::is_uppercase);
        let writes_capitals = user.text.chars().any(char::is_uppercase);
        (word.chars().count() >= 2 && (capital || !writes_capitals))
            .then(|| learned::capitalized(word))
    }

    /// "at 7" for a table served from noon is 19:00: a clock time said without "am" or
    /// "morning" that is outside the slot's hours is read twelve hours later when that fits.
    fn afternoon(
        &self,
        cx: &Context,
        slot: &SlotSpec,
        value: &str,
        said: &[String],
    ) -> Option<String> {
        let morning = said
            .iter()
            .any(|w| matches!(w.as_str(), "am" | "a.m." | "morning"));
        let time = NaiveTime::parse_from_str(value, "%H:%M").ok()?;
        let later = (time + chrono::Duration::hours(12))
            .format("%H:%M")
            .to_string();
        (!morning && time.hour() < 12 && self.valid(cx, slot, &later)).then_some(later)
    }

    /// Whether `value` is within the slot's bounds (`min = "today"` is the context's day).
    pub(super) fn valid(&self, cx: &Context, slot: &SlotSpec, value: &str) -> bool {
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
                let n = |b: Option<String>| b.and_then(|m| m.parse::<i64>().ok());
                n(min).is_none_or(|m| v >= m) && n(max).is_none_or(|m| v <= m)
            }
            EntityKind::Time | EntityKind::Date => {
                let min = min.map(|m| match m.as_str() {
                    "today" => cx.today.format("%Y-%m-%d").to_string(),
                    _ => m,
                });
                // ISO dates and HH:MM times compare correctly as text.
                min.is_none_or(|m| value >= m.as_str()) && max.is_none_or(|m| value <= m.as_str())
            }
            _ => true,
        }
    }
}

/// A person's name: the slot tagger's first and last name, or, to the question for it, the
/// words said on their own.
fn person(offer: &Offer, asked: bool) -> Option<(String, Option<Span>)> {
    offer
        .learned
        .as_deref()
        .and_then(learned::name)
        .map(|(name, span)| (name, Some(span)))
        .or_else(|| {
            asked
                .then(|| said_alone(&offer.user.text, &offer.words))
                .flatten()
        })
}

/// A value of a `learned` slot: an entity of its kind inside the words the tagger gives the
/// slot; an answer to its own question may also be a bare value the tagger did not mark.
fn tagged(slot: &SlotSpec, asked: bool, offer: &Offer) -> Option<(String, Option<Span>)> {
    let label = slot.learned.as_deref();
    let spans: Vec<Span> = offer
        .learned
        .iter()
        .flatten()
        .filter(|l| Some(l.label.as_str()) == label)
        .map(|l| l.words)
        .collect();
    let inside = |e: &&Entity| spans.iter().any(|&(s, t)| e.span.0 < t && s < e.span.1);
    let mut free = offer
        .user
        .entities
        .iter()
        .filter(|e| e.kind == slot.kind && offer.free(e));
    let entity = match free.clone().find(inside) {
        Some(e) => Some(e),
        None if asked && spans.is_empty() => free.next(),
        None => None,
    }?;
    Some((entity.value.clone(), Some(entity.span)))
}

/// The first free entity of `kind`; an order or phone number asked for may come as bare
/// digits.
fn entity(kind: EntityKind, asked: bool, offer: &Offer) -> Option<(String, Option<Span>)> {
    offer
        .user
        .entities
        .iter()
        .find(|e| e.kind == kind && offer.free(e))
        .map(|e| (e.value.clone(), e.span))
        .or_else(|| {
            (asked && matches!(kind, EntityKind::OrderId | EntityKind::Phone))
                .then(|| entities::longest_digit_run(&offer.words))
                .flatten()
        })
        .map(|(value, span)| (value, Some(span)))
}

/// A name said on its own in answer to a question for it ("Xiong", "ana de la cruz"): one to
/// three words without digits.
fn said_alone(text: &str, words: &[String]) -> Option<(String, Option<Span>)> {
    let plain = (1..=3).contains(&words.len())
        && !text.chars().any(|c| c.is_ascii_digit())
        && super::steps::yes_no(text).is_none();
    let name = text.trim().trim_end_matches(['.', '!']);
    plain.then(|| (learned::capitalized(name), Some((0, words.len()))))
}

/// "Okay, 3 PM.": the reply after values changed.
pub(super) fn ack(policy: &Policy, changes: &[Filled]) -> String {
    let values: Vec<&str> = changes.iter().map(|c| c.shown.as_str()).collect();
    policy
        .domain
        .phrases
        .values_noted
        .replace("{values}", &values.join(", "))
}

/// What a completed flow leaves in the user's memory: the e-mail and list values they gave
/// (their usual choices), and the outcome.
pub(super) fn remembered(flow: &FlowSpec, active: &ActiveFlow) -> Vec<Change> {
    let mut changes: Vec<Change> = flow
        .slots
        .iter()
        .filter(|s| matches!(s.kind, EntityKind::Email | EntityKind::Choice))
        .filter_map(|s| {
            let value = active.slots.get(&s.name)?;
            Some(Change::Preference {
                slot: s.name.clone(),
                value: value.clone(),
            })
        })
        .collect();
    let summary: Vec<String> = active
        .slots
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    changes.push(Change::Outcome(format!(
        "{}: {}",
        flow.intent,
        summary.join(", ")
    )));
    changes
}

/// The user's name when they say it with a cue: "my name is ana", "call me Ana", "this is
/// Ana". Some(None) when a cue was said without a plausible name after it (nothing else
/// should read a name in these words), None without a cue.
/// After "this is" only a capitalized word counts, as names are written ("this is
/// ridiculous" names nobody); after "call me" too, unless the writer uses no capitals at all
/// ("call me sam"), and then never a word such as "back".
pub(super) fn name_by_cue(text: &str) -> Option<Option<String>> {
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
    let (name_at, cue) = (0..words.len()).find_map(|i| match &words[i..] {
        [a, b, c, ..] if is(a, "my") && is(b, "name") && is(c, "is") => Some((i + 3, Cue::Plain)),
        [a, b, ..] if is(a, "call") && is(b, "me") => Some((i + 2, Cue::CapitalIfWritten)),
        [a, b, ..] if is(a, "this") && is(b, "is") => Some((i + 2, Cue::Capital)),
        _ => None,
    })?;
    let Some(name) = words.get(name_at) else {
        return Some(None);
    };
    let capitalized = name.chars().next().is_some_and(char::is_uppercase);
    let writes_capitals = text.chars().any(char::is_uppercase);
    let plausible = match cue {
        Cue::Plain => true,
        Cue::Capital => capitalized,
        Cue::CapitalIfWritten => {
            capitalized || (!writes_capitals && !NOT_NAMES.contains(&name.to_lowercase().as_str()))
        }
    };
    if name.chars().count() < 2 || !plausible {
        return Some(None);
    }
    let mut chars = name.chars();
    let first: String = chars
        .next()
        .into_iter()
        .flat_map(char::to_uppercase)
        .collect();
    Some(Some(first + &chars.as_str().to_lowercase()))
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

/// Fills `{slot}` and `{result.FIELD}` placeholders, slot values as the channel shows them.
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
