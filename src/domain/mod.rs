//! A domain: what the assistant can do, declared in `config/domains/NAME/`:
//! `domain.toml` (persona, conversation wording, the intents every conversation has, and
//! thresholds) and `flows/*.toml`, one file per flow (the intent that starts it, its example
//! utterances, its slots with prompts and validation, a confirmation, and an action).
//! Loading checks everything a flow refers to and says exactly what is wrong and where.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub mod builtin;
pub mod expressions;
pub mod phrases;

use crate::conversation::EntityKind;
use crate::stt::grammar::{words_of, Group, WordGrammar};
use expressions::{sample_sentences, Expression};

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("no domain named '{name}' in {dir} (domains there: {available})")]
    UnknownDomain {
        name: String,
        dir: PathBuf,
        available: String,
    },
}

/// Who the assistant is and how it talks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persona {
    pub name: String,
    pub greeting: String,
    /// Said when nothing in the domain fits (and no language model is configured).
    pub fallback: String,
    /// Offered after repeated misunderstandings.
    pub offer_human: String,
    /// Said when the conversation goes to a person.
    pub handoff: String,
    pub goodbye: String,
    /// Said after a cancel.
    pub cancelled: String,
    /// What the assistant can do, for "help" (the current question follows).
    pub help: String,
    /// Re-prompt after silence; `{prompt}` is the pending question.
    #[serde(default = "default_no_input")]
    pub no_input: String,
    /// Asked when two intents are about equally likely: `{a}` and `{b}` are their descriptions.
    #[serde(default = "default_clarify")]
    pub clarify: String,
    /// Said when an interrupted flow resumes; `{flow}` is its description.
    #[serde(default = "default_resume")]
    pub resume: String,
    /// Said when the knowledge documents do not answer a question: a plain "I don't know"
    /// and the offer of a person (a yes hands the conversation over).
    #[serde(default = "default_not_in_documents")]
    pub not_in_documents: String,
}

fn default_no_input() -> String {
    "Are you still there? {prompt}".into()
}
fn default_clarify() -> String {
    "Sorry, did you want to {a}, or {b}?".into()
}
fn default_not_in_documents() -> String {
    "I'm sorry, I don't know that. Would you like me to put you through to a person?".into()
}
fn default_resume() -> String {
    "Now, let's get back to your request to {flow}.".into()
}

/// Dialogue policy numbers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Below this confidence an utterance is out of scope.
    pub threshold: f32,
    /// Between `threshold` and this, with a close second, the assistant asks which one.
    pub clarify_below: f32,
    /// Consecutive misunderstandings before a person is offered.
    pub max_failures: u32,
    /// Re-prompts for one slot before the flow offers a person.
    pub max_reprompts: u32,
    /// Turns kept in the short-term context.
    pub context_turns: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            threshold: 0.35,
            clarify_below: 0.55,
            max_failures: 2,
            max_reprompts: 2,
            context_turns: 10,
        }
    }
}

/// Which way a conversation reaches the user. Voice wants short replies, one question at a
/// time and numbers as people say them; text can show lists, links and exact figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Channel {
    #[default]
    Voice,
    Text,
}

/// A reply of the domain: one wording for both channels, one for each
/// (`done = { voice = "…", text = "…" }`), or two to compare (`prompt = { a = "…", b = "…" }`:
/// each conversation hears one, and the report compares them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Wording {
    Same(String),
    ByChannel { voice: String, text: String },
    Variants { a: String, b: String },
}

pub use crate::conversation::Variant;
pub use phrases::Phrases;

impl Wording {
    pub fn pick(&self, channel: Channel, variant: Variant) -> &str {
        match (self, channel, variant) {
            (Wording::Same(s), ..) => s,
            (Wording::ByChannel { voice, .. }, Channel::Voice, _) => voice,
            (Wording::ByChannel { text, .. }, Channel::Text, _) => text,
            (Wording::Variants { a, .. }, _, Variant::A) => a,
            (Wording::Variants { b, .. }, _, Variant::B) => b,
        }
    }

    pub fn is_variants(&self) -> bool {
        matches!(self, Wording::Variants { .. })
    }

    /// Every wording, for the checks at load time.
    pub fn all(&self) -> Vec<&str> {
        match self {
            Wording::Same(s) => vec![s],
            Wording::ByChannel { voice, text } => vec![voice, text],
            Wording::Variants { a, b } => vec![a, b],
        }
    }
}

/// An intent every conversation has (greeting, cancel, help, …) with its examples.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentSpec {
    pub examples: Vec<String>,
    /// For clarification questions: "check an order".
    #[serde(default)]
    pub description: Option<String>,
    /// A fixed answer (FAQ-style intents).
    #[serde(default)]
    pub answer: Option<Wording>,
}

/// The intents every domain must have: the ways out of any conversation.
pub const REQUIRED_INTENTS: [&str; 3] = ["cancel", "help", "human"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainFile {
    pub persona: Persona,
    #[serde(default)]
    pub policy: Policy,
    pub intents: BTreeMap<String, IntentSpec>,
    /// Requests outside the domain, so the classifier learns what to reject.
    #[serde(default)]
    pub out_of_scope: Vec<String>,
    /// Where handoffs go (a webhook URL); handoffs are also reported as events.
    #[serde(default)]
    pub handoff_url: Option<String>,
    /// The rating question at the end of a conversation that completed a flow, if any.
    #[serde(default)]
    pub rating: Option<RatingSpec>,
    /// The dialogue's own wording, where the domain rewords it.
    #[serde(default)]
    pub phrases: Phrases,
}

/// How a domain asks users to rate the conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatingSpec {
    /// Asked at the goodbye of a conversation that completed a flow; a number from 1 to 5
    /// answers it, anything else (or silence) skips it.
    pub question: String,
    /// Said after a score, before the goodbye.
    #[serde(default = "default_rating_thanks")]
    pub thanks: String,
}

fn default_rating_thanks() -> String {
    "Thank you for the feedback.".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EntityKind,
    pub prompt: Wording,
    /// Said when the answer did not fit; defaults to the prompt.
    #[serde(default)]
    pub reprompt: Option<String>,
    /// Allowed values for `choice` slots, each with synonyms.
    #[serde(default)]
    pub values: BTreeMap<String, Vec<String>>,
    /// Bounds: numbers (`min`, `max`), times ("09:00"), dates ("today" for min).
    #[serde(default)]
    pub min: Option<toml::Value>,
    #[serde(default)]
    pub max: Option<toml::Value>,
    /// Said when a value is out of bounds.
    #[serde(default)]
    pub invalid: Option<String>,
    /// An optional slot is asked for only if the flow's confirmation needs it.
    #[serde(default = "yes")]
    pub required: bool,
    /// The slot tagger's label (Restaurant8k: `people`, `date`, `time`, `first_name`,
    /// `last_name`) whose words hold this slot's value: "for 4 at 7" gives a `people`
    /// slot 4, not 7. `person` slots read first and last name without it.
    #[serde(default)]
    pub learned: Option<String>,
    /// Its value is personal (an account number, a birth date): masked wherever the
    /// conversation log meets it, as person slots are.
    #[serde(default)]
    pub sensitive: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
pub enum ActionSpec {
    /// The built-in demo backend (`name`: book_appointment, order_status, reset_password).
    Builtin { name: String },
    /// POST the slots as JSON to `url`; the reply's JSON fields fill `{result.FIELD}`.
    Webhook { url: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    /// The intent that starts the flow (its name), with example utterances.
    pub intent: String,
    /// "book an appointment": used in clarifications and when resuming.
    pub description: String,
    #[serde(default)]
    pub examples: Vec<String>,
    /// Expression templates (`[a, b]` alternatives, `(optional)` words, `$type:slot`
    /// values), expanded into examples; see `expressions`.
    #[serde(default)]
    pub expressions: Vec<String>,
    #[serde(default)]
    pub slots: Vec<SlotSpec>,
    /// Asked before the action runs (irreversible actions); `{slot}` placeholders.
    #[serde(default)]
    pub confirm: Option<Wording>,
    #[serde(default)]
    pub action: Option<ActionSpec>,
    /// Said when the flow completes; `{slot}` and `{result.FIELD}` placeholders.
    pub done: Wording,
    /// Hand the conversation to a person when the flow completes.
    #[serde(default)]
    pub handoff: bool,
}

impl FlowSpec {
    /// The flow's templates, parsed (loading has checked that they parse).
    pub fn parsed_expressions(&self) -> Vec<Expression> {
        self.expressions
            .iter()
            .filter_map(|e| Expression::parse(e).ok())
            .collect()
    }

    /// The canonical values of a list slot.
    pub fn slot_values(&self, slot: &str) -> Vec<String> {
        self.slots
            .iter()
            .find(|s| s.name == slot)
            .map(|s| s.values.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every way of saying a list slot's values: each canonical value and its synonyms.
    pub fn slot_phrases(&self, slot: &str) -> Vec<String> {
        self.slots
            .iter()
            .find(|s| s.name == slot)
            .map(|s| {
                s.values
                    .iter()
                    .flat_map(|(value, synonyms)| std::iter::once(value).chain(synonyms))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Example sentences drawn from the templates: two per template, the same every time.
    pub fn expanded_examples(&self) -> Vec<String> {
        sample_sentences(
            &self.parsed_expressions(),
            &|slot| self.slot_values(slot),
            EXAMPLES_PER_TEMPLATE,
            0x6861_726b,
        )
    }

    /// A few sentences of the flow that between them use every word of its list values,
    /// most new words first: recognition is biased with them, so that it knows "mocha",
    /// "americano" and "skim milk" are likely here.
    pub fn vocabulary_sentences(&self) -> Vec<String> {
        let mut missing: std::collections::BTreeSet<String> = self
            .slots
            .iter()
            .flat_map(|s| s.values.keys())
            .flat_map(|v| v.split_whitespace().map(str::to_lowercase))
            .collect();
        let mut candidates = sample_sentences(
            &self.parsed_expressions(),
            &|slot| self.slot_values(slot),
            VOCABULARY_DRAWS,
            0x7077_6f72,
        );
        candidates.extend(self.examples.iter().cloned());
        let mut chosen = Vec::new();
        while !missing.is_empty() {
            let new_words = |s: &String| {
                let words: std::collections::BTreeSet<String> =
                    s.split_whitespace().map(str::to_lowercase).collect();
                words.iter().filter(|w| missing.contains(*w)).count()
            };
            let Some(best) = candidates
                .iter()
                .max_by_key(|s| (new_words(s), std::cmp::Reverse(s.len())))
                .filter(|s| new_words(s) > 0)
                .cloned()
            else {
                break;
            };
            for w in best.split_whitespace() {
                missing.remove(&w.to_lowercase());
            }
            chosen.push(best);
        }
        if chosen.is_empty() {
            chosen.extend(self.examples.first().cloned());
        }
        // Templates offer "[a, an]" and the draw may pick the wrong one; a prompt that says
        // "an double shot" teaches the decoder to write it.
        chosen.iter().map(|s| fit_articles(s)).collect()
    }

    /// Words the flow's sentences put around slot values (for the slot spotter).
    pub fn context_words(&self) -> Vec<String> {
        let mut words: Vec<String> = self
            .examples
            .iter()
            .flat_map(|e| e.split_whitespace().map(String::from))
            .collect();
        for expression in self.parsed_expressions() {
            words.extend(expression.carrier_words());
        }
        words
    }
}

/// Sentences drawn per expression template for the intent classifier: enough to show
/// each template's wording, few enough that training stays well under a second.
const EXAMPLES_PER_TEMPLATE: usize = 2;

/// Sentences drawn per template when choosing the vocabulary sentences.
const VOCABULARY_DRAWS: usize = 20;

/// A loaded, validated domain.
#[derive(Debug, Clone)]
pub struct Domain {
    pub name: String,
    pub dir: PathBuf,
    pub persona: Persona,
    pub policy: Policy,
    pub intents: BTreeMap<String, IntentSpec>,
    pub out_of_scope: Vec<String>,
    pub handoff_url: Option<String>,
    pub rating: Option<RatingSpec>,
    pub phrases: Phrases,
    /// Flows by their intent name.
    pub flows: BTreeMap<String, FlowSpec>,
}

impl Domain {
    /// Every way of saying every list slot's values, in every flow.
    pub fn value_phrases(&self) -> Vec<String> {
        self.flows
            .values()
            .flat_map(|flow| flow.slots.iter().flat_map(|s| flow.slot_phrases(&s.name)))
            .collect()
    }

    /// The domain's own wording with its placeholders cut out: every greeting, question,
    /// fixed answer and the fixed parts of confirmations. A piece of a reply found inside one
    /// of these holds nothing the user said, so its audio may be kept (`tts::cache`).
    pub fn fixed_texts(&self) -> Vec<String> {
        let p = &self.persona;
        let mut texts: Vec<&str> = vec![
            &p.greeting,
            &p.fallback,
            &p.offer_human,
            &p.handoff,
            &p.goodbye,
            &p.cancelled,
            &p.help,
            &p.no_input,
            &p.clarify,
            &p.resume,
        ];
        texts.extend(self.phrases.all());
        if let Some(r) = &self.rating {
            texts.extend([r.question.as_str(), r.thanks.as_str()]);
        }
        for answer in self.intents.values().filter_map(|i| i.answer.as_ref()) {
            texts.extend(answer.all());
        }
        for flow in self.flows.values() {
            for slot in &flow.slots {
                texts.extend(slot.prompt.all());
                texts.extend(slot.reprompt.as_deref());
                texts.extend(slot.invalid.as_deref());
            }
            texts.extend(flow.confirm.iter().flat_map(Wording::all));
            texts.extend(flow.done.all());
        }
        texts.into_iter().flat_map(literal_parts).collect()
    }

    /// Whether any reply has two wordings to compare.
    pub fn has_variants(&self) -> bool {
        let answers = self.intents.values().filter_map(|i| i.answer.as_ref());
        let flows = self.flows.values().flat_map(|f| {
            f.slots
                .iter()
                .map(|s| &s.prompt)
                .chain(f.confirm.as_ref())
                .chain([&f.done])
        });
        answers.chain(flows).any(Wording::is_variants)
    }

    /// Every (intent, example) pair the classifier trains on.
    pub fn training_examples(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, intent) in &self.intents {
            out.extend(intent.examples.iter().map(|e| (name.clone(), e.clone())));
        }
        for flow in self.flows.values() {
            out.extend(
                flow.examples
                    .iter()
                    .chain(&flow.expanded_examples())
                    .map(|e| (flow.intent.clone(), e.clone())),
            );
        }
        out.extend(
            self.out_of_scope
                .iter()
                .map(|e| (super::nlu::OUT_OF_SCOPE.to_string(), e.clone())),
        );
        out
    }

    /// Sentences that show recognition the domain's words (every flow's vocabulary).
    pub fn vocabulary_sentences(&self) -> Vec<String> {
        self.flows
            .values()
            .flat_map(FlowSpec::vocabulary_sentences)
            .collect()
    }

    /// Everything the domain lets a user say, as a grammar for recognition: every flow's
    /// templates (slots standing for their values and synonyms) and every example sentence.
    /// Only closed domains have one: every flow written as templates, as a Rhino context is.
    /// A domain of free-form examples would lose whatever its examples did not foresee.
    pub fn command_grammar(&self) -> Option<WordGrammar> {
        if self.flows.is_empty() || self.flows.values().any(|f| f.expressions.is_empty()) {
            return None;
        }
        let literal = |sentence: &String| -> Vec<Group> {
            words_of(sentence)
                .into_iter()
                .map(|w| vec![vec![w]])
                .collect()
        };
        let mut patterns: Vec<Vec<Group>> = Vec::new();
        for flow in self.flows.values() {
            for expression in flow.parsed_expressions() {
                patterns.push(expression.groups(&|slot| flow.slot_phrases(slot)));
            }
            patterns.extend(flow.examples.iter().map(literal));
        }
        for intent in self.intents.values() {
            patterns.extend(intent.examples.iter().map(literal));
        }
        let value_words: Vec<String> = self
            .flows
            .values()
            .flat_map(|flow| {
                flow.slots
                    .iter()
                    .flat_map(|slot| flow.slot_phrases(&slot.name))
            })
            .flat_map(|phrase| words_of(&phrase))
            .collect();
        let grammar = WordGrammar::from_patterns(&patterns).ok()?;
        Some(grammar.with_inflectable(value_words.iter().map(String::as_str)))
    }

    /// How an intent is described to the user.
    pub fn describe(&self, intent: &str) -> String {
        self.flows
            .get(intent)
            .map(|f| f.description.clone())
            .or_else(|| self.intents.get(intent).and_then(|i| i.description.clone()))
            .unwrap_or_else(|| intent.replace('_', " "))
    }
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, DomainError> {
    let text = std::fs::read_to_string(path).map_err(|e| DomainError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| DomainError::Invalid {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Finds a domain: a folder path, or a name under `domains_dir`.
pub fn resolve(name_or_path: &str, domains_dir: &Path) -> Result<PathBuf, DomainError> {
    let as_path = Path::new(name_or_path);
    if as_path.join("domain.toml").exists() {
        return Ok(as_path.to_path_buf());
    }
    let named = domains_dir.join(name_or_path);
    if named.join("domain.toml").exists() {
        return Ok(named);
    }
    // A name (not a path) of a domain built into hark.
    if !name_or_path.contains(['/', '\\']) {
        let cache = builtin::cache_dir();
        match builtin::materialize(name_or_path, &cache) {
            Ok(Some(dir)) => return Ok(dir),
            Ok(None) => {}
            Err(e) => {
                return Err(DomainError::Invalid {
                    path: cache,
                    reason: format!("could not write the built-in domain there: {e}"),
                })
            }
        }
    }
    let mut available: Vec<String> = std::fs::read_dir(domains_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().join("domain.toml").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for name in builtin::names() {
        if !available.iter().any(|a| a == name) {
            available.push(format!("{name} (built in)"));
        }
    }
    let available = available.join(", ");
    Err(DomainError::UnknownDomain {
        name: name_or_path.to_string(),
        dir: domains_dir.to_path_buf(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available
        },
    })
}

/// Loads and validates the domain in `dir`.
pub fn load(dir: &Path) -> Result<Domain, DomainError> {
    let domain_path = dir.join("domain.toml");
    let file: DomainFile = read(&domain_path)?;
    let invalid = |path: &Path, reason: String| DomainError::Invalid {
        path: path.to_path_buf(),
        reason,
    };
    for required in REQUIRED_INTENTS {
        if !file.intents.contains_key(required) {
            return Err(invalid(
                &domain_path,
                format!(
                    "intent '{required}' is missing (every domain needs {})",
                    REQUIRED_INTENTS.join(", ")
                ),
            ));
        }
    }
    for (name, intent) in &file.intents {
        if intent.examples.is_empty() {
            return Err(invalid(
                &domain_path,
                format!("intent '{name}' has no examples"),
            ));
        }
    }
    let mut flows = BTreeMap::new();
    let flow_dir = dir.join("flows");
    // A domain without flows (the assistant) answers its intents and its documents.
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&flow_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(DomainError::Read {
                path: flow_dir.clone(),
                reason: e.to_string(),
            })
        }
    };
    paths.sort();
    for path in paths {
        let flow: FlowSpec = read(&path)?;
        validate_flow(&flow).map_err(|reason| invalid(&path, reason))?;
        if file.intents.contains_key(&flow.intent) || flows.contains_key(&flow.intent) {
            return Err(invalid(
                &path,
                format!("intent '{}' is defined twice", flow.intent),
            ));
        }
        flows.insert(flow.intent.clone(), flow);
    }
    Ok(Domain {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir: dir.to_path_buf(),
        persona: file.persona,
        policy: file.policy,
        intents: file.intents,
        out_of_scope: file.out_of_scope,
        handoff_url: file.handoff_url,
        rating: file.rating,
        phrases: file.phrases,
        flows,
    })
}

/// `{name}` placeholders in a template.
/// The text of `template` between its placeholders, each part trimmed.
fn literal_parts(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    loop {
        let (literal, after) = match rest.find('{') {
            Some(open) => (&rest[..open], rest[open..].find('}').map(|c| open + c + 1)),
            None => (rest, None),
        };
        let literal = literal.trim();
        if !literal.is_empty() {
            out.push(literal.to_string());
        }
        match after {
            Some(next) => rest = &rest[next..],
            None => return out,
        }
    }
}

pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        out.push(rest[open + 1..open + close].to_string());
        rest = &rest[open + close + 1..];
    }
    out
}

fn validate_flow(flow: &FlowSpec) -> Result<(), String> {
    if flow.examples.is_empty() && flow.expressions.is_empty() {
        return Err(format!(
            "flow '{}' has neither examples nor expressions",
            flow.intent
        ));
    }
    let mut names = std::collections::HashSet::new();
    for slot in &flow.slots {
        if !names.insert(slot.name.as_str()) {
            return Err(format!("slot '{}' is declared twice", slot.name));
        }
        if let Some(label) = slot
            .learned
            .as_deref()
            .filter(|l| !crate::nlu::slots::LABELS.contains(l))
        {
            return Err(format!(
                "slot '{}' is learned as '{label}', which the slot tagger does not know (it knows {})",
                slot.name,
                crate::nlu::slots::LABELS.join(", ")
            ));
        }
        if slot.kind == EntityKind::Choice && slot.values.is_empty() {
            return Err(format!(
                "slot '{}' is a choice but lists no values",
                slot.name
            ));
        }
    }
    for text in &flow.expressions {
        let expression = Expression::parse(text)?;
        for (_, name) in expression.slots() {
            match flow.slots.iter().find(|s| s.name == name) {
                None => {
                    return Err(format!(
                    "expression \"{text}\" refers to '${name}', which is not a slot of this flow"
                ))
                }
                Some(slot) if slot.kind != EntityKind::Choice => {
                    return Err(format!(
                    "expression \"{text}\" refers to '${name}', which is not a list (choice) slot"
                ))
                }
                Some(_) => {}
            }
        }
    }
    let templates = [Some(&flow.done), flow.confirm.as_ref()];
    for template in templates.into_iter().flatten().flat_map(Wording::all) {
        for name in placeholders(template) {
            if !name.starts_with("result.") && !names.contains(name.as_str()) {
                return Err(format!(
                    "'{{{name}}}' in \"{template}\" is not a slot of this flow"
                ));
            }
        }
    }
    if flow.done.all().iter().any(|d| d.contains("{result.")) && flow.action.is_none() {
        return Err("'done' uses {result.…} but the flow has no action".into());
    }
    Ok(())
}

/// `sentence` with each "a" or "an" made to fit the word after it ("an iced mocha", "a
/// double shot"; the rule the rescoring alternatives follow, `rescore::article_for`).
pub fn fit_articles(sentence: &str) -> String {
    let words: Vec<&str> = sentence.split(' ').collect();
    let mut out = Vec::with_capacity(words.len());
    for (i, word) in words.iter().enumerate() {
        let next = words
            .get(i + 1)
            .filter(|w| w.starts_with(char::is_alphabetic));
        let fitting = match (word.to_lowercase().as_str(), next) {
            ("a" | "an", Some(next)) => crate::stt::rescore::article_for(next),
            _ => {
                out.push(word.to_string());
                continue;
            }
        };
        let capital = word.starts_with(char::is_uppercase);
        out.push(if capital {
            fitting.replacen('a', "A", 1)
        } else {
            fitting.to_string()
        });
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_fit_the_word_after_them() {
        assert_eq!(
            fit_articles("I want an double shot and a eight ounce a"),
            "I want a double shot and an eight ounce a"
        );
        assert_eq!(
            fit_articles("An mocha, a iced latte."),
            "A mocha, an iced latte."
        );
    }

    #[test]
    fn a_learned_label_must_be_one_the_tagger_knows() {
        let flow = |learned: &str| -> FlowSpec {
            toml::from_str(&format!(
                "intent = \"book\"\ndescription = \"book\"\nexamples = [\"book\"]\ndone = \"Done.\"\n\
                 [[slots]]\nname = \"guests\"\ntype = \"number\"\nprompt = \"How many?\"\n\
                 learned = \"{learned}\"\n"
            ))
            .unwrap()
        };
        assert_eq!(validate_flow(&flow("people")), Ok(()));
        let err = validate_flow(&flow("guests")).unwrap_err();
        assert!(
            err.contains("'guests'") && err.contains("people, time"),
            "{err}"
        );
    }

    #[test]
    fn fixed_wording_leaves_the_placeholders_out() {
        assert_eq!(
            literal_parts("So that's a {service} on {date}. Shall I book it?"),
            vec!["So that's a", "on", ". Shall I book it?"]
        );
        assert_eq!(literal_parts("{prompt}"), Vec::<String>::new());
        assert_eq!(literal_parts("Hello."), vec!["Hello."]);
    }

    #[test]
    fn finds_placeholders() {
        assert_eq!(
            placeholders("On {date} at {time}, ref {result.id}."),
            vec!["date", "time", "result.id"]
        );
    }
}
