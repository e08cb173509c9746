//! Finds the values of a flow's list slots in what the user said, as speech recognition
//! wrote it: "a 12-ounce dark rose double shot moco with hole milk" is size "twelve
//! ounce", roast "dark roast", shots "double shot", drink "mocha", milk "whole milk".
//!
//! Every allowed value (and synonym) is compared, by how it sounds (`sounds`), with every
//! run of words about as long as it; runs that sound close enough are candidates. Then
//! the slots are filled together, best candidates first, each slot once and each word for
//! one slot only, so that "medium roast" is a roast and not a size, and "a little bit of
//! soy milk" wins over the "soy milk" inside it. A value's cost is the sound distance per
//! sound of the value, so a near-miss on a long value is forgiven more than on a short one;
//! words the flow uses around its values ("with", "and", "can I get") are never part of a
//! value that does not have them, which keeps the carrier phrase from being read as a slot.

use std::collections::HashSet;

use super::sounds::{sound_distance, sound_spelling};
use crate::stt::wer::{self, is_number_word};

/// Largest accepted sound distance per sound of the value: about one error in three
/// sounds. Set from how recognisers misspell (a vowel, a dropped consonant), not fitted to
/// an evaluation set.
const MAX_COST_PER_SOUND: f32 = 0.34;

/// Largest accepted sound distance for any value, however long: a long value may not
/// drop a whole short word ("a little bit of cream" is not "a little bit of").
const MAX_COST: f32 = 3.0;

/// When candidates compete, each scores the sounds it explains minus this weight times
/// its distance (3: taking in a neighbouring vowel never pays): a value explaining more of
/// what was said wins ("a little bit of soy milk" over "soy milk"), and of two readings of
/// the same words the closer one wins.
const COST_WEIGHT: f32 = 3.0;

/// A slot value found in an utterance.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Spotted {
    pub slot: String,
    /// The canonical value.
    pub value: String,
    /// What was heard for it.
    pub heard: String,
    /// Word positions [start, end) in `spoken_words(text)`.
    pub span: (usize, usize),
    /// Sound distance per sound of the value (0 = exact).
    pub cost: f32,
}

struct Phrase {
    slot: usize,
    value: String,
    words: Vec<String>,
    sounds: Vec<u8>,
    has_number: bool,
}

/// A list slot: its name and its values, each canonical value with its synonyms.
pub type ListSlot = (String, Vec<(String, Vec<String>)>);

/// The list slots of one flow, ready to be found in utterances.
pub struct Spotter {
    slots: Vec<String>,
    phrases: Vec<Phrase>,
    carrier: HashSet<String>,
}

/// Words as the spotter compares them: lower case, punctuation and hyphens gone, numbers
/// spelled out ("12-ounce" → "twelve ounce").
pub fn spoken_words(text: &str) -> Vec<String> {
    wer::normalize(text)
}

impl Spotter {
    /// `slots`: (slot name, [(canonical value, synonyms)]). `context_words`: the words the
    /// flow's examples put around values; those that are in no value become carrier words.
    pub fn new<I, S>(slots: &[ListSlot], context_words: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut phrases = Vec::new();
        let mut value_words = HashSet::new();
        for (slot_index, (_, values)) in slots.iter().enumerate() {
            for (value, synonyms) in values {
                for phrase in std::iter::once(value).chain(synonyms) {
                    let words = spoken_words(phrase);
                    if words.is_empty() {
                        continue;
                    }
                    value_words.extend(words.iter().cloned());
                    phrases.push(Phrase {
                        slot: slot_index,
                        value: value.clone(),
                        sounds: words.iter().flat_map(|w| sound_spelling(w)).collect(),
                        has_number: words.iter().any(|w| is_number_word(w)),
                        words,
                    });
                }
            }
        }
        let carrier = context_words
            .into_iter()
            .flat_map(|w| spoken_words(w.as_ref()))
            .filter(|w| !value_words.contains(w))
            .collect();
        Self {
            slots: slots.iter().map(|(name, _)| name.clone()).collect(),
            phrases,
            carrier,
        }
    }

    /// The slot values in `text`, at most one per slot, in order of position.
    pub fn spot(&self, text: &str) -> Vec<Spotted> {
        let words = spoken_words(text);
        let sounds: Vec<Vec<u8>> = words.iter().map(|w| sound_spelling(w)).collect();
        let numbers: Vec<bool> = words.iter().map(|w| is_number_word(w)).collect();
        struct Candidate {
            phrase: usize,
            span: (usize, usize),
            cost: f32,
            score: f32,
        }
        let mut candidates = Vec::new();
        for (index, phrase) in self.phrases.iter().enumerate() {
            let n = phrase.words.len();
            let budget = (MAX_COST_PER_SOUND * phrase.sounds.len() as f32).min(MAX_COST);
            // Recognisers split and join words ("in maricarno", "dye smoker"): a value may
            // take one word fewer or one more than it has.
            for len in n.saturating_sub(1).max(1)..=n + 1 {
                if len > words.len() {
                    break;
                }
                for start in 0..=words.len() - len {
                    let end = start + len;
                    // The words between values are never part of one ("a latte with
                    // cream" is not "a little bit of cream"), nor is a number part of a
                    // value without one ("haircut 3 pm").
                    let carrier_ok = words[start..end]
                        .iter()
                        .all(|w| !self.carrier.contains(w) || phrase.words.contains(w));
                    let numbers_ok = phrase.has_number || !numbers[start..end].iter().any(|&b| b);
                    if !(carrier_ok && numbers_ok) {
                        continue;
                    }
                    let heard: Vec<u8> = sounds[start..end].concat();
                    // Each sound of length difference costs at least half a sound.
                    let gap = heard.len().abs_diff(phrase.sounds.len()) as f32 * 0.5;
                    if gap > budget {
                        continue;
                    }
                    let cost = sound_distance(&phrase.sounds, &heard);
                    if cost <= budget {
                        candidates.push(Candidate {
                            phrase: index,
                            span: (start, end),
                            cost: cost / phrase.sounds.len() as f32,
                            score: heard.len() as f32 - COST_WEIGHT * cost,
                        });
                    }
                }
            }
        }
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.span.cmp(&b.span)));
        let mut filled = vec![false; self.slots.len()];
        let mut taken = vec![false; words.len()];
        let mut out = Vec::new();
        for candidate in candidates {
            let phrase = &self.phrases[candidate.phrase];
            let (start, end) = candidate.span;
            if filled[phrase.slot] || taken[start..end].iter().any(|&t| t) {
                continue;
            }
            filled[phrase.slot] = true;
            taken[start..end].iter_mut().for_each(|t| *t = true);
            out.push(Spotted {
                slot: self.slots[phrase.slot].clone(),
                value: phrase.value.clone(),
                heard: words[start..end].join(" "),
                span: candidate.span,
                cost: candidate.cost,
            });
        }
        out.sort_by_key(|s| s.span.0);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(list: &[&str]) -> Vec<(String, Vec<String>)> {
        list.iter().map(|v| (v.to_string(), vec![])).collect()
    }

    fn barista() -> Spotter {
        let mut milk = Vec::new();
        for kind in ["milk", "soy milk", "whole milk", "cream"] {
            milk.push(kind.to_string());
            for amount in ["a little bit of", "a bit of", "some", "a lot of", "lots of"] {
                milk.push(format!("{amount} {kind}"));
            }
        }
        let milk: Vec<&str> = milk.iter().map(String::as_str).collect();
        Spotter::new(
            &[
                (
                    "size".into(),
                    values(&["small", "medium", "large", "twelve ounce"]),
                ),
                (
                    "roast".into(),
                    values(&["light roast", "medium roast", "dark roast"]),
                ),
                ("shots".into(), values(&["single shot", "double shot"])),
                (
                    "drink".into(),
                    values(&[
                        "coffee",
                        "iced coffee",
                        "mocha",
                        "iced mocha",
                        "latte",
                        "espresso",
                    ]),
                ),
                ("milk".into(), values(&milk)),
            ],
            [
                "can I get a coffee with milk and sugar",
                "make me an espresso",
            ],
        )
    }

    fn found(spotter: &Spotter, text: &str) -> Vec<(String, String)> {
        spotter
            .spot(text)
            .into_iter()
            .map(|s| (s.slot, s.value))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn reads_values_through_recognition_errors() {
        let s = barista();
        assert_eq!(
            found(
                &s,
                "I'd like a 12-ounce dark rose double shot moco with hole milk."
            ),
            pairs(&[
                ("size", "twelve ounce"),
                ("roast", "dark roast"),
                ("shots", "double shot"),
                ("drink", "mocha"),
                ("milk", "whole milk"),
            ])
        );
    }

    #[test]
    fn overlapping_values_go_to_the_longest_exact_reading() {
        let s = barista();
        assert_eq!(
            found(&s, "give me a medium, medium roast latte"),
            pairs(&[
                ("size", "medium"),
                ("roast", "medium roast"),
                ("drink", "latte")
            ])
        );
        assert_eq!(
            found(&s, "an iced coffee with a little bit of soy milk"),
            pairs(&[
                ("drink", "iced coffee"),
                ("milk", "a little bit of soy milk")
            ])
        );
        assert_eq!(
            found(&s, "a mocha with a bit of soy milk"),
            pairs(&[("drink", "mocha"), ("milk", "a bit of soy milk")])
        );
        assert_eq!(
            found(&s, "a latte with lots of milk"),
            pairs(&[("drink", "latte"), ("milk", "lots of milk")])
        );
    }

    #[test]
    fn invents_nothing_that_was_not_said() {
        let s = barista();
        assert!(found(&s, "can I get a table for two").is_empty());
        assert!(found(&s, "make me happy").is_empty());
        assert_eq!(found(&s, "can I get a latte"), pairs(&[("drink", "latte")]));
    }

    #[test]
    fn synonyms_joined_words_and_numbers() {
        let services = Spotter::new(
            &[(
                "service".into(),
                vec![
                    ("haircut".into(), vec!["hair cut".into()]),
                    ("check-up".into(), vec!["checkup".into()]),
                ],
            )],
            ["book a haircut for friday"],
        );
        let spotted = services.spot("a haircut 3 pm");
        assert_eq!(spotted.len(), 1);
        assert_eq!(
            spotted[0].span,
            (1, 2),
            "the time's words are not the value's"
        );
        assert_eq!(found(&services, "a check up please")[0].1, "check-up");
        let cafe = Spotter::new(
            &[
                (
                    "size".into(),
                    vec![
                        ("large".into(), vec!["big".into()]),
                        ("extra large".into(), vec![]),
                    ],
                ),
                (
                    "drink".into(),
                    vec![
                        ("cappuccino".into(), vec![]),
                        ("latte".into(), vec!["cafe latte".into()]),
                    ],
                ),
            ],
            ["I'd like a latte"],
        );
        assert_eq!(
            found(&cafe, "two extra large capuccinos"),
            pairs(&[("size", "extra large"), ("drink", "cappuccino")])
        );
        assert_eq!(
            found(&cafe, "a big cafe latte"),
            pairs(&[("size", "large"), ("drink", "latte")])
        );
        assert!(found(&cafe, "a table").is_empty());
        let accounts = Spotter::new(
            &[(
                "account".into(),
                vec![("work".into(), vec!["work account".into()])],
            )],
            ["reset my work password"],
        );
        assert_eq!(found(&accounts, "my worker count")[0].1, "work");
    }
}
