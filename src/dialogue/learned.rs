//! What the slot tagger (trained on Restaurant8k, see `nlu::slots`) reads in a user's words,
//! in the word positions the rule-based entities use, so that the two can be combined: the
//! tagger says which words are the party size or the name, the rules say what a number, date
//! or time is exactly.

use crate::domain::SlotSpec;
use crate::nlu::slots::SlotTagger;

use crate::nlu::entities::{self, EntityKind};

/// A value the tagger found: its label, its words [start, end) as `entities::tokenize`
/// counts them, and the text as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    pub label: String,
    pub words: (usize, usize),
    pub text: String,
}

/// The tagger's values in `text`, told which labels the system had just asked for.
pub fn read(tagger: &SlotTagger, text: &str, requested: &[String]) -> Vec<Learned> {
    tagger
        .tag(text, requested)
        .into_iter()
        .map(|(label, s, e)| Learned {
            label,
            words: (
                entities::tokenize(&text[..s]).len(),
                entities::tokenize(&text[..e]).len(),
            ),
            text: text[s..e].to_string(),
        })
        .filter(|l| l.words.0 < l.words.1)
        .collect()
}

/// The labels a question for `slot` asks for, as Restaurant8k's `requestedSlots` name them.
pub fn requested(slot: &SlotSpec) -> Vec<String> {
    let labels: &[&str] = match (slot.learned.as_deref(), slot.kind) {
        (Some(label), _) => return vec![label.to_string()],
        (None, EntityKind::Person) => &["first_name", "last_name"],
        (None, EntityKind::Date) => &["date"],
        (None, EntityKind::Time) => &["time"],
        _ => &[],
    };
    labels.iter().map(|l| l.to_string()).collect()
}

/// The person's name among the tagger's values: the first name and the last name after it
/// ("Priya Shah"), or either alone; written with capitals.
pub fn name(found: &[Learned]) -> Option<(String, (usize, usize))> {
    let first = found.iter().find(|l| l.label == "first_name");
    let last = found
        .iter()
        .find(|l| l.label == "last_name" && first.is_none_or(|f| l.words.0 >= f.words.1));
    let parts: Vec<&Learned> = first.into_iter().chain(last).collect();
    let (start, end) = (parts.first()?.words.0, parts.last()?.words.1);
    let written: Vec<String> = parts.iter().map(|p| capitalized(&p.text)).collect();
    Some((written.join(" "), (start, end)))
}

/// Words written as names are: "priya o'neil" → "Priya O'neil"; a word that already has
/// capitals ("McKay") is kept as written.
pub fn capitalized(text: &str) -> String {
    text.split_whitespace()
        .map(|word| {
            if word.chars().any(char::is_uppercase) {
                return word.to_string();
            }
            let mut chars = word.chars();
            chars
                .next()
                .into_iter()
                .flat_map(char::to_uppercase)
                .chain(chars)
                .collect()
        })
        .collect::<Vec<String>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(label: &str, words: (usize, usize), text: &str) -> Learned {
        Learned {
            label: label.into(),
            words,
            text: text.into(),
        }
    }

    #[test]
    fn names_join_first_and_last() {
        let found = [
            learned("people", (3, 4), "4"),
            learned("first_name", (6, 7), "priya"),
            learned("last_name", (7, 8), "Shah"),
        ];
        assert_eq!(name(&found), Some(("Priya Shah".into(), (6, 8))));
        assert_eq!(
            name(&found[2..]),
            Some(("Shah".into(), (7, 8))),
            "a last name alone is a name"
        );
        assert_eq!(name(&found[..1]), None);
    }

    #[test]
    fn a_last_name_before_the_first_is_not_joined() {
        let found = [
            learned("last_name", (0, 1), "Shah"),
            learned("first_name", (3, 4), "Priya"),
        ];
        assert_eq!(name(&found), Some(("Priya".into(), (3, 4))));
    }

    #[test]
    fn capitals_are_added_not_changed() {
        assert_eq!(capitalized("ana de la cruz"), "Ana De La Cruz");
        assert_eq!(capitalized("McKay"), "McKay");
        assert_eq!(capitalized("élodie"), "Élodie");
    }
}
