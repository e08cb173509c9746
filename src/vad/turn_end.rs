//! When a pause ends the user's turn. People leave gaps of ~200 ms between turns, yet pause
//! for a second in the middle of a sentence while they think ("a coffee with a bit of …
//! brown sugar"): how long a silence ends the turn depends on what was heard before it.
//!
//! What is known at a pause is [`Evidence`]: the end-of-turn model's hearing of the audio
//! (intonation and rhythm), whether the transcript reads as a finished sentence, and whether
//! the words answer what hark asked. They are fused, in log-odds, into how likely the user
//! has finished, and that into the silence that ends the turn: short when everything says
//! the user is done, up to a ceiling when they are clearly mid-sentence. Without the model
//! the transcript alone decides, as before it (a short silence after a finished sentence,
//! the endpointer's hangover otherwise).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

/// Words a finished sentence does not end on: conjunctions, articles, prepositions,
/// fillers.
const OPEN_ENDINGS: &[&str] = &[
    "and", "or", "but", "so", "the", "a", "an", "to", "of", "with", "for", "my", "um", "uh",
    "because", "like", "at", "in", "on", "is", "if", "then", "some", "bit", "lot", "little",
    "please", "can", "could", "would", "get", "have", "want", "need", "uhm", "er", "erm",
];

/// Whether `text` stops where a sentence cannot end: on a conjunction, an article, a
/// preposition or a filler ("a coffee with a bit of"), an ellipsis or a comma. Whatever
/// punctuation a recognizer puts after it, the speaker is going on.
pub fn ends_open(text: &str) -> bool {
    let t = text.trim();
    if t.ends_with("...") || t.ends_with('…') || t.ends_with(',') {
        return true;
    }
    let last = t
        .split_whitespace()
        .last()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
        .to_lowercase();
    OPEN_ENDINGS.contains(&last.as_str())
}

/// Lowercase words of `text`, punctuation dropped.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'')
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// The phrases of several words a domain's users say ("light roast", "a lot of milk",
/// "New York"). Words that stop inside one ("I'd like a light", "with lots") are no more
/// finished than words that stop on "with", whatever punctuation the recognizer printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhraseEnds {
    /// Every beginning of a phrase that is not the whole of it, as words.
    beginnings: HashSet<Vec<String>>,
    /// Every phrase, of one word or more.
    wholes: HashSet<Vec<String>>,
    longest: usize,
}

impl PhraseEnds {
    pub fn new<S: AsRef<str>>(phrases: impl IntoIterator<Item = S>) -> Self {
        let mut ends = Self::default();
        for phrase in phrases {
            let words = words(phrase.as_ref());
            if words.is_empty() {
                continue;
            }
            ends.longest = ends.longest.max(words.len());
            for k in 1..words.len() {
                ends.beginnings.insert(words[..k].to_vec());
            }
            ends.wholes.insert(words);
        }
        ends
    }

    /// Whether `text` stops inside a phrase: its last words begin one, and no phrase ends
    /// where it does ("a lot of milk" ends on a phrase; "a drip" begins "drip coffee").
    pub fn stops_inside(&self, text: &str) -> bool {
        let words = words(text);
        let mut inside = false;
        for k in 1..=self.longest.min(words.len()) {
            let tail = &words[words.len() - k..];
            if self.wholes.contains(tail) {
                return false;
            }
            inside |= self.beginnings.contains(tail);
        }
        inside
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnEndConfig {
    /// Use the end-of-turn model when it is installed (`models/smart-turn/`).
    pub model: bool,
    /// Silence that ends a turn everything says is finished.
    pub min_silence_ms: u64,
    /// Silence that ends a turn whatever was said: the user stopped mid-sentence and did
    /// not go on.
    pub max_silence_ms: u64,
    /// The least silence that ends a turn whose words stop where a sentence cannot end
    /// (unless they answer what hark asked): a confident model and a recognizer that puts a
    /// full stop on every clip do not make "a coffee with" finished.
    pub open_min_silence_ms: u64,
    /// How much each piece of evidence counts, in log-odds: the model's; a transcript the
    /// recognizer calls finished (recognizers punctuate every clip, so this counts less than a
    /// confident hearing);
    /// words that stop where a sentence cannot end (this counts a lot); words that answer (or
    /// not) what was asked.
    pub model_weight: f32,
    pub text_weight: f32,
    pub open_weight: f32,
    pub answer_weight: f32,
}

impl Default for TurnEndConfig {
    fn default() -> Self {
        Self {
            model: true,
            min_silence_ms: 120,
            max_silence_ms: 2500,
            open_min_silence_ms: 1500,
            model_weight: 1.0,
            text_weight: 1.0,
            open_weight: 4.0,
            answer_weight: 2.0,
        }
    }
}

/// What is known about the utterance at its latest pause.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    /// The end-of-turn model's probability that the speaker has finished.
    pub model: Option<f32>,
    /// Whether the recognizer judged the transcript a finished sentence.
    pub text_complete: Option<bool>,
    /// The transcript stops where a sentence cannot end.
    pub open_ending: bool,
    /// Whether the words are an answer to what hark asked (a yes to "Shall I book it?",
    /// a time to "At what time?"), or plainly not one.
    pub answers: Option<bool>,
}

impl Evidence {
    /// How likely the user has finished, 0 to 1; None without the model's hearing.
    pub fn finished(&self, config: &TurnEndConfig) -> Option<f32> {
        let p = self.model?.clamp(1e-4, 1.0 - 1e-4);
        let sign = |b: Option<bool>| match b {
            Some(true) => 1.0,
            Some(false) => -1.0,
            None => 0.0,
        };
        let z = config.model_weight * (p / (1.0 - p)).ln()
            + config.text_weight * sign(self.text_complete)
            - if self.open_ending {
                config.open_weight
            } else {
                0.0
            }
            + config.answer_weight * sign(self.answers);
        Some(1.0 / (1.0 + (-z).exp()))
    }

    /// The least silence that ends a turn whose words stop where a sentence cannot end
    /// (and do not answer what hark asked); None when they could end one.
    pub fn open_wait(&self, config: &TurnEndConfig) -> Option<u64> {
        (self.open_ending && self.answers != Some(true))
            .then_some(config.open_min_silence_ms.min(config.max_silence_ms))
    }

    /// The silence after the last voice that ends the turn. Without the model: `quick_ms`
    /// after a finished sentence, else None: the endpointer's hangover ends it (the rule
    /// before the model).
    pub fn silence_ms(&self, config: &TurnEndConfig, quick_ms: u64) -> Option<u64> {
        let Some(p) = self.finished(config) else {
            return (self.text_complete == Some(true)).then_some(quick_ms);
        };
        let (min, max) = (config.min_silence_ms as f32, config.max_silence_ms as f32);
        // Cubic in the doubt: turns that lean finished end near the minimum, and the wait
        // grows quickly only when the evidence leans towards the user going on.
        let doubt = 1.0 - p;
        let wait = (min + (max - min) * doubt.powi(3)).round() as u64;
        Some(wait.max(self.open_wait(config).unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(model: Option<f32>, text: Option<bool>, answers: Option<bool>) -> Evidence {
        Evidence {
            model,
            text_complete: text,
            open_ending: text == Some(false),
            answers,
        }
    }

    fn wait(e: Evidence) -> u64 {
        e.silence_ms(&TurnEndConfig::default(), 200)
            .expect("the model's hearing decides")
    }

    #[test]
    fn without_the_model_the_transcript_decides_as_before() {
        let config = TurnEndConfig::default();
        let without = |text, answers| evidence(None, text, answers).silence_ms(&config, 200);
        assert_eq!(without(Some(true), None), Some(200));
        assert_eq!(
            without(Some(false), None),
            None,
            "the endpointer's hangover"
        );
        assert_eq!(without(None, Some(true)), None);
    }

    #[test]
    fn a_finished_sentence_the_model_hears_as_finished_ends_soon() {
        let w = wait(evidence(Some(0.97), Some(true), None));
        assert!((120..200).contains(&w), "{w}");
    }

    #[test]
    fn a_sentence_cut_off_mid_way_waits_close_to_the_ceiling() {
        let w = wait(evidence(Some(0.01), Some(false), None));
        assert!(w > 2300, "{w}");
    }

    #[test]
    fn words_that_do_not_read_finished_hold_back_a_confident_model() {
        // The model hears a finished phrase in "a coffee with a bit of": the words say not.
        let sure = wait(evidence(Some(0.97), Some(true), None));
        let torn = wait(evidence(Some(0.97), Some(false), None));
        assert!(torn > sure + 300, "{sure} {torn}");
    }

    #[test]
    fn an_answer_to_the_question_asked_ends_sooner_than_words_that_answer_nothing() {
        let yes = wait(evidence(Some(0.6), Some(true), Some(true)));
        let neither = wait(evidence(Some(0.6), Some(true), None));
        let no_answer = wait(evidence(Some(0.6), Some(true), Some(false)));
        assert!(
            yes < neither && neither < no_answer,
            "{yes} {neither} {no_answer}"
        );
    }

    #[test]
    fn a_confident_model_outweighs_a_recognizer_that_punctuates_every_clip() {
        // "Can I get a drip?" said before "… coffee with milk": heard as unfinished.
        let w = wait(Evidence {
            model: Some(0.2),
            text_complete: Some(true),
            open_ending: false,
            answers: None,
        });
        assert!(w > 400, "{w}: over twice a finished sentence's 200 ms");
    }

    #[test]
    fn open_endings_are_told_apart_from_finished_sentences() {
        for open in [
            "Can I get a coffee with a bit of",
            "a latte with.",
            "I'd like, um",
            "so…",
        ] {
            assert!(ends_open(open), "{open}");
        }
        for closed in [
            "Where is my order?",
            "A large latte.",
            "yes",
            "Give me a small mocha.",
        ] {
            assert!(!ends_open(closed), "{closed}");
        }
    }

    #[test]
    fn words_that_stop_open_wait_out_a_hesitation_however_sure_the_model() {
        let config = TurnEndConfig::default();
        let open = Evidence {
            model: Some(0.99),
            text_complete: Some(true),
            open_ending: true,
            answers: None,
        };
        assert!(open.silence_ms(&config, 200).unwrap() >= config.open_min_silence_ms);
        // "Dark" to "Which roast?" begins "dark roast", and answers the question.
        let answer = Evidence {
            answers: Some(true),
            ..open
        };
        assert!(answer.silence_ms(&config, 200).unwrap() < 300);
    }

    #[test]
    fn words_that_stop_inside_a_phrase_of_the_domain_are_not_finished() {
        let phrases = PhraseEnds::new([
            "light roast",
            "drip coffee",
            "coffee",
            "lots of milk",
            "milk",
            "a lot of brown sugar",
            "mocha",
        ]);
        for open in [
            "I'd like a light",
            "Can I get a drip?",
            "a single shot drip coffee with lots.",
            "with a lot of brown",
        ] {
            assert!(phrases.stops_inside(open), "{open}");
        }
        for closed in [
            "I'd like a light roast.",
            "A drip coffee with lots of milk.",
            "a lot of brown sugar",
            "Give me a mocha.",
            "Where is my order?",
            "",
        ] {
            assert!(!phrases.stops_inside(closed), "{closed}");
        }
        assert!(!PhraseEnds::default().stops_inside("I'd like a light"));
    }

    #[test]
    fn the_wait_never_leaves_its_bounds() {
        let config = TurnEndConfig::default();
        for model in [0.0, 0.001, 0.5, 0.999, 1.0] {
            for text in [None, Some(true), Some(false)] {
                for answers in [None, Some(true), Some(false)] {
                    let w = evidence(Some(model), text, answers)
                        .silence_ms(&config, 200)
                        .unwrap();
                    assert!(
                        (config.min_silence_ms..=config.max_silence_ms).contains(&w),
                        "{model} {text:?} {answers:?}: {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn more_evidence_of_a_finished_turn_never_means_a_longer_wait() {
        let mut last = u64::MAX;
        for model in [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99] {
            let w = wait(evidence(Some(model), Some(true), None));
            assert!(w <= last, "{model}: {w} after {last}");
            last = w;
        }
    }
}
