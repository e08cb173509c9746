//! The steps a user's turn goes through, in order of priority; the first that takes the
//! turn decides it. Each step reads the draft's conversation and the understood words, and
//! either decides (true) or passes (false) — a step that passes may still leave a change
//! that holds whatever wins (a name heard in passing, a question that is no longer open).

use super::draft::{Change, Draft};
use super::{documents, flows, handoff, model, Context, Policy, Understood};
use crate::conversation::session::RatingState;
use crate::nlu::entities::{self, EntityKind};

/// The turn being decided: the policy, the context and the user's words (None for silence).
pub(super) struct Turn<'a> {
    pub policy: &'a Policy,
    pub cx: &'a Context<'a>,
    pub user: Option<&'a Understood>,
}

impl Turn<'_> {
    /// Whether the user's words are `intent`, confidently enough to act without asking.
    pub fn confident(&self, intent: &str) -> bool {
        self.user.is_some_and(|u| {
            u.nlu.intent.as_deref() == Some(intent)
                && u.nlu.confidence >= self.policy.domain.policy.clarify_below
        })
    }

    /// The intent the words were read as, if any passed the threshold.
    pub fn intent(&self) -> Option<&str> {
        self.user.and_then(|u| u.nlu.intent.as_deref())
    }

    pub fn text(&self) -> &str {
        self.user.map_or("", |u| u.text.as_str())
    }

    pub fn found(&self) -> &[entities::Entity] {
        self.user.map_or(&[], |u| u.entities.as_slice())
    }
}

pub(super) type Step = fn(&Turn, &Understood, &mut Draft) -> bool;

/// The steps of a user's turn, in order.
pub(super) const USER: [(&str, Step); 13] = [
    ("a name said in passing", learn_name),
    ("the rating question's answer", rating_answer),
    ("the offer of a person's answer", offer_answer),
    ("the clarification's answer", clarification_answer),
    ("a request for a person", person_wanted),
    ("the commands of every conversation", commands),
    ("the active flow's answer", flows::active_flow),
    ("a question the documents answer", documents::answer),
    ("a new request", new_request),
    ("two requests about as likely", close_pair),
    ("the language model", model::ask),
    ("what the documents do not say", documents::not_in_them),
    ("the fallback", fallback),
];

/// Runs the user's turn through the steps.
pub(super) fn said(turn: &Turn, user: &Understood, d: &mut Draft) {
    for (name, step) in USER {
        if step(turn, user, d) {
            tracing::trace!(step = name, "decided");
            return;
        }
    }
}

/// Nothing was said: the rating question is skipped (the conversation ends), any other
/// pending question is asked again.
pub(super) fn silence(turn: &Turn, d: &mut Draft) {
    let domain = &turn.policy.domain;
    if d.state.rating == RatingState::Asked {
        d.change(Change::Rating(RatingState::Done));
        d.change(Change::Ended);
        d.say(domain.persona.goodbye.clone());
        return;
    }
    let question = d
        .state
        .pending_question
        .clone()
        .unwrap_or_else(|| domain.phrases.how_can_i_help.clone());
    d.say(domain.persona.no_input.replace("{prompt}", &question));
}

/// Remembers the user's name: said with a cue ("my name is ana"), or, outside a flow, read
/// by the slot tagger ("hi, I'm Priya"). Never decides the turn.
fn learn_name(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    let name = match super::slots::name_by_cue(&user.text) {
        Some(cued) => cued,
        None if d.state.stack.is_empty() => turn.policy.name_by_tagger(user),
        None => None,
    };
    if let Some(name) = name {
        d.change(Change::Name(name));
    }
    false
}

/// The answer to the rating question: a score from 1 to 5 is kept and thanked for;
/// anything else skips it. Either way the conversation ends.
fn rating_answer(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    if d.state.rating != RatingState::Asked {
        return false;
    }
    d.change(Change::Rating(RatingState::Done));
    d.change(Change::Ended);
    d.change(Change::Asked(None));
    let score = user
        .entities
        .iter()
        .filter(|e| e.kind == EntityKind::Number)
        .find_map(|e| e.value.parse::<u8>().ok())
        .filter(|n| (1..=5).contains(n));
    d.notes().rating = score;
    let domain = &turn.policy.domain;
    if let (Some(_), Some(rating)) = (score, &domain.rating) {
        d.say(rating.thanks.clone());
    }
    d.say(domain.persona.goodbye.clone());
    true
}

/// The answer to "Would you like me to connect you with a person?".
fn offer_answer(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    if !d.state.offered_human {
        return false;
    }
    d.change(Change::HumanOffered(false));
    match yes_no(&user.text) {
        Some(true) => {
            handoff::hand_off(turn, d, "the user accepted the offer of a person");
            true
        }
        Some(false) => {
            d.change(Change::Failures(0));
            d.ask(turn.policy.domain.phrases.try_again.clone());
            true
        }
        None => false,
    }
}

/// The answer to "did you want to A, or B?": either intent, a mention of one, or a yes (A).
fn clarification_answer(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    let Some((a, b)) = d.state.clarifying.clone() else {
        return false;
    };
    d.change(Change::Clarifying(None));
    let domain = &turn.policy.domain;
    let said = |intent: &str| mentions(&user.text, &domain.describe(intent));
    let pick = match turn.intent() {
        Some(i) if i == a || i == b => Some(i.to_string()),
        _ if said(&b) && !said(&a) => Some(b),
        _ if said(&a) || yes_no(&user.text) == Some(true) => Some(a),
        _ => None,
    };
    match pick {
        Some(intent) => {
            act_on_intent(turn, d, &intent);
            true
        }
        None => false,
    }
}

/// The intents that mean the user wants a person.
const FOR_A_PERSON: [&str; 2] = ["human", "frustrated"];

/// A request for a person, or frustration, goes to one before anything else. The top
/// reading must be one of them; it counts when it is confident, or when the readings that
/// want a person together are ("this is useless, get me a human" is both).
fn person_wanted(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    let Some(top) = user
        .nlu
        .intent
        .as_deref()
        .filter(|i| FOR_A_PERSON.contains(i))
    else {
        return false;
    };
    let together: f32 = user
        .nlu
        .ranked
        .iter()
        .filter(|(intent, _)| FOR_A_PERSON.contains(&intent.as_str()))
        .map(|(_, p)| p)
        .sum();
    let bar = turn.policy.domain.policy.clarify_below;
    if user.nlu.confidence < bar && together < bar {
        return false;
    }
    handoff::hand_off(turn, d, handoff::reason_for(top));
    true
}

/// Cancel, repeat, help, small talk and goodbye, in any conversation.
fn commands(turn: &Turn, _user: &Understood, d: &mut Draft) -> bool {
    let domain = &turn.policy.domain;
    let confirming = super::confirming(&d.state);
    if turn.confident("cancel") || (confirming && turn.intent() == Some("cancel")) {
        d.change(Change::FlowsCleared);
        d.change(Change::Failures(0));
        d.change(Change::Asked(None));
        d.say(domain.persona.cancelled.clone());
    } else if turn.confident("repeat") {
        d.say(d.state.last_reply.clone());
    } else if turn.confident("help") {
        d.say(domain.persona.help.clone());
        let question = d.state.pending_question.clone().unwrap_or_default();
        d.say(question);
    } else if let Some(intent) = SMALL_TALK.into_iter().find(|n| turn.confident(n)) {
        small_talk(turn, d, intent);
    } else if turn.confident("goodbye") && !confirming {
        goodbye(turn, d);
    } else {
        return false;
    }
    true
}

/// No flow is under way: the intent decides, after asking which one when the best two are
/// close and neither is sure.
fn new_request(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    let Some(name) = user.nlu.intent.as_deref() else {
        return false;
    };
    if user.nlu.confidence < turn.policy.domain.policy.clarify_below {
        let second = user
            .nlu
            .ranked
            .get(1)
            .filter(|(n, p)| n != crate::nlu::OUT_OF_SCOPE && *p >= user.nlu.confidence * 0.5);
        if let Some((second, _)) = second {
            clarify(turn, d, name, second);
            return true;
        }
    }
    act_on_intent(turn, d, name);
    true
}

/// Out of scope, or too unsure, but the two best readings are both in the domain and close:
/// ask which one.
fn close_pair(turn: &Turn, user: &Understood, d: &mut Draft) -> bool {
    let in_domain = |n: &str| n != crate::nlu::OUT_OF_SCOPE;
    let threshold = turn.policy.domain.policy.threshold;
    match (user.nlu.ranked.first(), user.nlu.ranked.get(1)) {
        (Some((a, pa)), Some((b, pb)))
            if in_domain(a) && in_domain(b) && *pa >= threshold * 0.6 && *pb >= pa * 0.5 =>
        {
            clarify(turn, d, a, b);
            true
        }
        _ => false,
    }
}

/// Nothing fits: the fallback, and after repeated failures the offer of a person.
fn fallback(turn: &Turn, _user: &Understood, d: &mut Draft) -> bool {
    not_understood(turn, d);
    true
}

/// One more turn not understood: the fallback, or the offer of a person once too many.
pub(super) fn not_understood(turn: &Turn, d: &mut Draft) {
    d.misunderstood();
    let failures = d.state.failures + 1;
    d.change(Change::Failures(failures));
    if failures >= turn.policy.domain.policy.max_failures {
        offer_human(turn, d);
    } else {
        d.say(turn.policy.domain.persona.fallback.clone());
    }
}

/// Does what `intent` asks: starts its flow, answers it, or carries out the command.
pub(super) fn act_on_intent(turn: &Turn, d: &mut Draft, intent: &str) {
    let domain = &turn.policy.domain;
    d.change(Change::Failures(0));
    if domain.flows.contains_key(intent) {
        flows::start_flow(turn, d, intent, turn.text(), turn.found());
        return;
    }
    match intent {
        "human" | "frustrated" => handoff::hand_off(turn, d, handoff::reason_for(intent)),
        "cancel" => {
            d.change(Change::FlowsCleared);
            d.say(domain.persona.cancelled.clone());
        }
        "goodbye" => goodbye(turn, d),
        "help" => d.say(domain.persona.help.clone()),
        "repeat" => d.say(d.state.last_reply.clone()),
        n if SMALL_TALK.contains(&n) => small_talk(turn, d, n),
        "greet" => {
            let hello = match &d.state.memory.name {
                Some(name) => domain.phrases.hello_name.replace("{name}", name),
                None => domain.phrases.hello.clone(),
            };
            d.ask(hello);
        }
        _ => match turn.policy.answer(intent, turn.cx) {
            Some(answer) => d.say(answer),
            None => d.say(domain.persona.fallback.clone()),
        },
    }
}

/// Intents answered from what hark knows.
pub(super) const SMALL_TALK: [&str; 3] = ["thanks", "ask_name", "about_assistant"];

/// Thanks, "what's my name?", "who are you?": answered from what hark knows, then the
/// question still open (or an offer of more help) so the conversation goes on.
fn small_talk(turn: &Turn, d: &mut Draft, intent: &str) {
    let domain = &turn.policy.domain;
    let (persona, phrases) = (&domain.persona, &domain.phrases);
    let name = d.state.memory.name.as_deref();
    let answer = match (intent, name) {
        ("thanks", _) => phrases.thanks.clone(),
        ("ask_name", Some(name)) => phrases.your_name.replace("{name}", name),
        ("ask_name", None) => phrases.name_unknown.clone(),
        _ => phrases.about.replace("{assistant}", &persona.name),
    };
    let open_question = d
        .state
        .pending_question
        .clone()
        .filter(|_| !d.state.stack.is_empty());
    let next = match (open_question, intent) {
        (Some(question), _) => question,
        (None, "about_assistant") => persona.help.clone(),
        (None, _) if d.state.memory.outcomes.is_empty() => phrases.how_can_i_help.clone(),
        (None, _) => phrases.anything_else.clone(),
    };
    d.say(answer);
    d.say(next);
}

/// "Sorry, did you want to A, or B?"
fn clarify(turn: &Turn, d: &mut Draft, a: &str, b: &str) {
    d.misunderstood();
    d.change(Change::Clarifying(Some((a.to_string(), b.to_string()))));
    let domain = &turn.policy.domain;
    let question = domain
        .persona
        .clarify
        .replace("{a}", &domain.describe(a))
        .replace("{b}", &domain.describe(b));
    d.ask(question);
}

/// "Would you like me to connect you with a person?"
pub(super) fn offer_human(turn: &Turn, d: &mut Draft) {
    d.change(Change::HumanOffered(true));
    d.change(Change::Failures(0));
    d.ask(turn.policy.domain.persona.offer_human.clone());
}

/// The end of the conversation; first the rating question, when the domain has one and
/// this conversation completed a flow.
fn goodbye(turn: &Turn, d: &mut Draft) {
    d.change(Change::FlowsCleared);
    let domain = &turn.policy.domain;
    match &domain.rating {
        Some(rating) if d.state.completed_flows > 0 && d.state.rating == RatingState::NotAsked => {
            d.change(Change::Rating(RatingState::Asked));
            d.notes().rating_asked = true;
            d.ask(rating.question.clone());
        }
        _ => {
            d.change(Change::Ended);
            d.say(domain.persona.goodbye.clone());
        }
    }
}

/// Whether `words` ask something new ("do you have a store in Chicago", "what time is it")
/// rather than answer ("do it", "do not book it", "will do, thanks").
fn asks_a_question(words: &[String]) -> bool {
    const ASKING: &[&str] = &[
        "what", "whats", "where", "when", "how", "who", "why", "which",
    ];
    const AUXILIARIES: &[&str] = &[
        "do", "does", "did", "can", "could", "is", "are", "was", "will", "would", "should", "have",
        "has",
    ];
    const SUBJECTS: &[&str] = &[
        "you", "we", "i", "they", "there", "your", "my", "our", "the", "a", "an", "he", "she",
        "this", "that", "these", "those",
    ];
    let (Some(first), Some(second)) = (words.first(), words.get(1)) else {
        return false;
    };
    if words.len() < 3 {
        return false;
    }
    ASKING.contains(&first.as_str())
        || (AUXILIARIES.contains(&first.as_str())
            && (SUBJECTS.contains(&second.as_str()) || (second == "it" && first != "do")))
}

const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "sure",
    "correct",
    "right",
    "ok",
    "okay",
    "please",
    "absolutely",
    "definitely",
    "affirmative",
    "alright",
    "exactly",
    "perfect",
    "fine",
    "go",
    "do",
];
const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not",
    "don't",
    "dont",
    "wrong",
    "incorrect",
    "negative",
    "never",
];

/// Whether a short answer says yes, no, or neither.
pub(super) fn yes_no(text: &str) -> Option<bool> {
    let words = entities::tokenize(text);
    if words.is_empty() || words.len() > 8 {
        return None;
    }
    if asks_a_question(&words) {
        return None;
    }
    let no = words.iter().any(|w| NO.contains(&w.as_str()));
    let yes =
        words.iter().any(|w| YES.contains(&w.as_str())) || text.to_lowercase().contains("go ahead");
    match (yes, no) {
        (_, true) => Some(false),
        (true, false) => Some(true),
        _ => None,
    }
}

/// Whether `text` mentions the content words of `description`.
fn mentions(text: &str, description: &str) -> bool {
    let words = entities::tokenize(text);
    entities::tokenize(description)
        .iter()
        .filter(|w| w.len() > 3)
        .any(|d| words.iter().any(|w| entities::word_similarity(w, d) >= 0.8))
}
