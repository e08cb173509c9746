//! Expression templates: a compact way to write every way of asking for something, in the
//! syntax of Picovoice Rhino contexts, which domains can also use in their flows.
//!
//! `[can I get, give me] a $size:size (hot) $coffeeDrink:coffeeDrink` is a sentence where
//! `[a, b]` picks one alternative, `(words)` may be left out, and `$type:slot` stands for
//! any value of a slot (`$slot` when type and slot share the name). Templates turn into
//! example sentences for the intent classifier, into the carrier words the slot spotter
//! keeps apart from values, and into the vocabulary recognition is biased with.
//! [`import_rhino`] turns a whole Rhino context file (YAML) into a domain folder.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::rng::SplitMix;
use crate::stt::grammar::{words_of, Group};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Word(String),
    /// Exactly one of these phrases (an empty phrase when the group is optional).
    Choice(Vec<String>),
    /// Any value of the slot.
    Slot {
        kind: String,
        name: String,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    pub parts: Vec<Part>,
}

impl Expression {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let c = rest.chars().next().unwrap_or(' ');
            if c == '[' || c == '(' {
                let close = if c == '[' { ']' } else { ')' };
                let end = rest
                    .find(close)
                    .ok_or_else(|| format!("'{c}' without a closing '{close}' in \"{text}\""))?;
                let inner = &rest[1..end];
                if inner.contains(['[', '(', '$']) {
                    return Err(format!(
                        "groups cannot nest or hold slots: \"{}\" in \"{text}\"",
                        &rest[..=end]
                    ));
                }
                let mut phrases: Vec<String> = inner
                    .split(',')
                    .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect();
                if phrases.iter().any(String::is_empty) {
                    return Err(format!(
                        "an empty alternative in \"{}\" in \"{text}\"",
                        &rest[..=end]
                    ));
                }
                if c == '(' {
                    phrases.push(String::new());
                }
                parts.push(Part::Choice(phrases));
                rest = rest[end + 1..].trim_start();
            } else if c == '$' {
                let end = rest
                    .find(|c: char| c.is_whitespace() || "[]()".contains(c))
                    .unwrap_or(rest.len());
                let reference = &rest[1..end];
                let (kind, name) = reference.split_once(':').unwrap_or((reference, reference));
                let valid = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
                };
                if !valid(kind) || !valid(name) {
                    return Err(format!(
                        "'${reference}' is not a slot reference ($type:slot) in \"{text}\""
                    ));
                }
                parts.push(Part::Slot {
                    kind: kind.to_string(),
                    name: name.to_string(),
                });
                rest = rest[end..].trim_start();
            } else if c == ']' || c == ')' {
                return Err(format!("'{c}' without an opening one in \"{text}\""));
            } else {
                let end = rest
                    .find(|c: char| c.is_whitespace() || "[]()$".contains(c))
                    .unwrap_or(rest.len());
                parts.push(Part::Word(rest[..end].to_string()));
                rest = rest[end..].trim_start();
            }
        }
        if parts.is_empty() {
            return Err("an empty expression".into());
        }
        Ok(Self { parts })
    }

    /// (type, slot) of every slot the template refers to.
    pub fn slots(&self) -> impl Iterator<Item = (&str, &str)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Slot { kind, name } => Some((kind.as_str(), name.as_str())),
            _ => None,
        })
    }

    /// The words around the slots.
    pub fn carrier_words(&self) -> Vec<String> {
        let mut out = Vec::new();
        for part in &self.parts {
            match part {
                Part::Word(w) => out.push(w.clone()),
                Part::Choice(phrases) => out.extend(
                    phrases
                        .iter()
                        .flat_map(|p| p.split_whitespace().map(String::from)),
                ),
                Part::Slot { .. } => {}
            }
        }
        out
    }

    /// The template as a grammar pattern: each part a choice of phrases (lowercase words),
    /// a slot a choice of its values (`values(slot)`).
    pub fn groups(&self, values: &dyn Fn(&str) -> Vec<String>) -> Vec<Group> {
        let phrases = |list: &[String]| list.iter().map(|p| words_of(p)).collect();
        self.parts
            .iter()
            .map(|part| match part {
                Part::Word(w) => vec![words_of(w)],
                Part::Choice(list) => phrases(list),
                Part::Slot { name, .. } => phrases(&values(name)),
            })
            .collect()
    }

    /// One sentence: `pick(n)` chooses among n alternatives, `value(slot, pick)` a value.
    pub fn render(
        &self,
        pick: &mut dyn FnMut(usize) -> usize,
        values: &dyn Fn(&str) -> Vec<String>,
    ) -> String {
        let mut words: Vec<String> = Vec::new();
        for part in &self.parts {
            match part {
                Part::Word(w) => words.push(w.clone()),
                Part::Choice(phrases) => words.push(phrases[pick(phrases.len())].clone()),
                Part::Slot { name, .. } => {
                    let list = values(name);
                    if !list.is_empty() {
                        words.push(list[pick(list.len())].clone());
                    }
                }
            }
        }
        words
            .iter()
            .filter(|w| !w.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `per_template` sentences from each template, values drawn from `values`.
pub fn sample_sentences(
    expressions: &[Expression],
    values: &dyn Fn(&str) -> Vec<String>,
    per_template: usize,
    seed: u64,
) -> Vec<String> {
    let mut rng = SplitMix::new(seed);
    let mut out = Vec::new();
    for expression in expressions {
        for _ in 0..per_template {
            out.push(expression.render(&mut |n| rng.below(n), values));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a Rhino context file: {0}")]
    Yaml(String),
    #[error("intent '{intent}': {reason}")]
    Expression { intent: String, reason: String },
    #[error("intent '{intent}' refers to slot type '{kind}', which the file does not define")]
    UnknownSlotType { intent: String, kind: String },
    #[error("the file defines no intents")]
    Empty,
}

#[derive(Deserialize)]
struct RhinoFile {
    context: RhinoContext,
}

#[derive(Deserialize)]
struct RhinoContext {
    expressions: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    slots: BTreeMap<String, Vec<String>>,
}

/// The files of a domain folder: (path inside the folder, contents).
pub type DomainFiles = Vec<(String, String)>;

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// "orderDrink" → "order drink"; "coffee_drink" → "coffee drink".
pub fn words_of_name(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c == '_' || c == '-' {
            out.push(' ');
        } else if c.is_uppercase() && i > 0 {
            out.push(' ');
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Turns a Rhino context (YAML) into a domain folder's files: `domain.toml` with the
/// conversation wording and system intents, and one flow per intent, its templates as
/// `expressions` and every slot it refers to as an optional list slot.
pub fn import_rhino(yaml: &str, domain_name: &str) -> Result<DomainFiles, ImportError> {
    let file: RhinoFile =
        serde_yaml_ng::from_str(yaml).map_err(|e| ImportError::Yaml(e.to_string()))?;
    let context = file.context;
    if context.expressions.is_empty() {
        return Err(ImportError::Empty);
    }
    let title = words_of_name(domain_name);
    let descriptions: Vec<String> = context
        .expressions
        .keys()
        .map(|i| words_of_name(i))
        .collect();
    let abilities = descriptions.join(", or ");
    let mut files = vec![("domain.toml".to_string(), domain_toml(&title, &abilities))];
    for (intent, templates) in &context.expressions {
        let slots = intent_slots(intent, templates, &context.slots)?;
        let flow = flow_toml(intent, templates, &slots, &context.slots);
        let file_name = format!("flows/{}.toml", words_of_name(intent).replace(' ', "_"));
        files.push((file_name, flow));
    }
    Ok(files)
}

/// The imported domain's `domain.toml`: its persona's wording (what it can do is
/// `abilities`) and the system intents.
fn domain_toml(title: &str, abilities: &str) -> String {
    format!(
        r#"# Imported from a Rhino context by `hark domain import`: the {title} domain.

# Requests outside the domain, so the intent classifier learns what to turn down; "you" and
# "the" are what recognition makes of background noise.
out_of_scope = [
  "what's the weather like", "tell me a joke", "what time is it", "play some music",
  "who are you", "how are you doing", "turn on the lights", "what's the news today",
  "you", "the", "um", "hmm",
]

[persona]
name = "Hark"
greeting = {greeting}
fallback = {fallback}
offer_human = "I'm having trouble understanding. Would you like me to get a person?"
handoff = "I'm getting a member of our team for you now."
goodbye = "Thanks, goodbye!"
cancelled = "Okay, cancelled. Anything else?"
help = {help}

[intents.cancel]
examples = ["cancel", "never mind", "forget it", "stop", "cancel that", "scratch that"]

[intents.help]
examples = ["help", "what can you do", "what can I say", "what are my options"]

[intents.human]
examples = ["I want to talk to a person", "get me a human", "can I speak to someone", "staff please"]

[intents.goodbye]
examples = ["bye", "goodbye", "that's all, thanks", "no that's everything"]
"#,
        greeting = quoted("Hi! What would you like?"),
        fallback = quoted(&format!("Sorry, I can only {abilities}.")),
        help = quoted(&format!("You can {abilities}. Say cancel to start again.")),
    )
}

/// The slots (type, name) an intent's templates refer to, each once, in order of first
/// mention; an error for a template that does not parse or a slot type the file lacks.
fn intent_slots(
    intent: &str,
    templates: &[String],
    slot_types: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<(String, String)>, ImportError> {
    let mut slots: Vec<(String, String)> = Vec::new();
    for template in templates {
        let expression = Expression::parse(template).map_err(|reason| ImportError::Expression {
            intent: intent.to_string(),
            reason,
        })?;
        for (kind, name) in expression.slots() {
            if !slot_types.contains_key(kind) {
                return Err(ImportError::UnknownSlotType {
                    intent: intent.to_string(),
                    kind: kind.to_string(),
                });
            }
            if !slots.iter().any(|(_, n)| n == name) {
                slots.push((kind.to_string(), name.to_string()));
            }
        }
    }
    Ok(slots)
}

/// The flow file of an intent: its templates as `expressions`, and each of its `slots` as an
/// optional list slot with the values `slot_types` gives its type.
fn flow_toml(
    intent: &str,
    templates: &[String],
    slots: &[(String, String)],
    slot_types: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut flow = format!(
        "# Imported from a Rhino context by `hark domain import`.\nintent = {}\ndescription = {}\nexamples = []\nexpressions = [\n",
        quoted(intent),
        quoted(&words_of_name(intent)),
    );
    for template in templates {
        flow.push_str(&format!("  {},\n", quoted(template)));
    }
    flow.push_str("]\n");
    let said: Vec<String> = slots
        .iter()
        .map(|(_, name)| format!("{{{name}}}"))
        .collect();
    flow.push_str(&format!(
        "done = {}\n",
        quoted(&format!("Okay: {}.", said.join(" ")))
    ));
    for (kind, name) in slots {
        flow.push_str(&format!(
            "\n[[slots]]\nname = {}\ntype = \"choice\"\nrequired = false\nprompt = {}\n[slots.values]\n",
            quoted(name),
            quoted(&format!("Which {}?", words_of_name(name))),
        ));
        for value in &slot_types[kind] {
            flow.push_str(&format!("{} = []\n", quoted(value.trim())));
        }
    }
    flow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices_optionals_and_slots() {
        let e = Expression::parse("[can I get, give me] a (hot) $size:cupSize $drink").unwrap();
        assert_eq!(
            e.parts,
            vec![
                Part::Choice(vec!["can I get".into(), "give me".into()]),
                Part::Word("a".into()),
                Part::Choice(vec!["hot".into(), String::new()]),
                Part::Slot {
                    kind: "size".into(),
                    name: "cupSize".into()
                },
                Part::Slot {
                    kind: "drink".into(),
                    name: "drink".into()
                },
            ]
        );
        assert_eq!(
            e.carrier_words(),
            vec!["can", "I", "get", "give", "me", "a", "hot"]
        );
    }

    #[test]
    fn malformed_templates_say_what_is_wrong() {
        for (bad, says) in [
            ("[a, b", "without a closing"),
            ("a ] b", "without an opening"),
            ("[a, , b]", "empty alternative"),
            ("[a, $x] b", "cannot nest"),
            ("get $ now", "not a slot reference"),
            ("  ", "empty expression"),
        ] {
            let error = Expression::parse(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn sentences_are_drawn_from_every_template_reproducibly() {
        let e = vec![Expression::parse("[brew, make] a $drink (please)").unwrap()];
        let values = |slot: &str| {
            assert_eq!(slot, "drink");
            vec!["latte".to_string(), "mocha".to_string()]
        };
        let a = sample_sentences(&e, &values, 20, 7);
        assert_eq!(a, sample_sentences(&e, &values, 20, 7));
        assert!(a.contains(&"brew a latte please".to_string()), "{a:?}");
        assert!(a.contains(&"make a mocha".to_string()), "{a:?}");
        assert!(a.len() <= 8);
    }

    #[test]
    fn imports_a_rhino_context() {
        let yaml = r#"
context:
  expressions:
    orderDrink:
      - "[can I get, give me] a $size:size $coffeeDrink:coffeeDrink"
      - "$coffeeDrink:coffeeDrink please"
  slots:
    size:
      - "small"
      - "large"
    coffeeDrink:
      - "latte"
      - " mocha"
"#;
        let files = import_rhino(yaml, "barista").unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["domain.toml", "flows/order_drink.toml"]);
        let flow = &files[1].1;
        assert!(flow.contains("intent = \"orderDrink\""), "{flow}");
        assert!(
            flow.contains("\"mocha\" = []"),
            "values are trimmed: {flow}"
        );
        assert!(flow.contains("\"[can I get, give me] a $size:size $coffeeDrink:coffeeDrink\""));
        let bad = "context:\n  expressions:\n    order:\n      - \"a $cup:cup\"\n  slots: {}\n";
        assert!(matches!(
            import_rhino(bad, "x"),
            Err(ImportError::UnknownSlotType { .. })
        ));
        assert!(matches!(
            import_rhino("just text", "x"),
            Err(ImportError::Yaml(_))
        ));
    }
}
