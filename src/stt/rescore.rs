//! The sentences a constrained decode might have meant instead: the same sentence with one
//! phrase swapped for another of its class (one slot value for another). Greedy decoding
//! commits to a phrase on its first token ("iced coffee" once " coffee" beat " m"); the
//! recogniser then scores each alternative as a whole, its later tokens included, and the
//! likeliest sentence stands (see `whisper::WhisperSession`).

use super::grammar::words_of;

/// Phrases that can stand in for one another in a sentence: the values (and synonyms) of
/// one slot, class by class, each phrase as lowercase words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhraseClasses {
    classes: Vec<Vec<Vec<String>>>,
}

/// A sentence the decoder might have meant instead of the one it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    pub text: String,
    /// What was changed to make it.
    pub swap: Swap,
}

/// A stretch of a sentence (byte offsets, at word boundaries) and what takes its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    pub span: std::ops::Range<usize>,
    pub with: String,
}

/// `text` with every one of `swaps` made; None where two of them overlap or a span is not in
/// `text`.
pub fn apply(text: &str, swaps: &[&Swap]) -> Option<String> {
    let mut ordered = swaps.to_vec();
    ordered.sort_by_key(|s| s.span.start);
    if ordered.windows(2).any(|w| w[0].span.end > w[1].span.start) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    for swap in ordered {
        out.push_str(text.get(at..swap.span.start)?);
        out.push_str(&swap.with);
        at = swap.span.end;
    }
    out.push_str(text.get(at..)?);
    Some(out)
}

/// One word of a transcript as it was written, and as the grammar spells it.
struct WrittenWord {
    /// Where the word starts in the text.
    start: usize,
    /// Where its letters end (before trailing punctuation).
    end: usize,
    /// Lowercase, without punctuation.
    word: String,
}

impl PhraseClasses {
    /// Classes of two phrases or more (a phrase alone has no alternative); duplicates within
    /// a class are dropped.
    pub fn new<C, P>(classes: C) -> Self
    where
        C: IntoIterator<Item = P>,
        P: IntoIterator<Item = String>,
    {
        let classes = classes
            .into_iter()
            .map(|phrases| {
                let mut class: Vec<Vec<String>> = Vec::new();
                for phrase in phrases {
                    let words = words_of(&phrase);
                    if !words.is_empty() && !class.contains(&words) {
                        class.push(words);
                    }
                }
                class
            })
            .filter(|class| class.len() > 1)
            .collect();
        Self { classes }
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// `text` with one phrase of a class replaced by each other phrase of that class, for
    /// every phrase heard in it (the longest match where phrases overlap), and by each phrase
    /// of another class where the sentence still `fits` (a grammar: "with sugar" may have
    /// been "with soy milk"). The text around the phrase is kept as written; an "a"/"an"
    /// before it follows the new phrase. Each comes with the swap that makes it from `text`,
    /// so that swaps at different places can be made together (see `apply`).
    pub fn swaps(&self, text: &str, fits: &dyn Fn(&str) -> bool) -> Vec<Alternative> {
        let words = written_words(text);
        let mut out = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let Some((class, heard)) = self.longest_phrase_at(&words[i..]) else {
                i += 1;
                continue;
            };
            let (first, last) = (&words[i], &words[i + heard.len() - 1]);
            let capitalised = text[first.start..].starts_with(char::is_uppercase);
            let others = self.classes.iter().filter(|c| !std::ptr::eq(*c, class));
            let phrases = class
                .iter()
                .map(|p| (p, true))
                .chain(others.flatten().map(|p| (p, false)));
            for (phrase, same_class) in phrases.filter(|(p, _)| *p != heard) {
                let mut replacement = phrase.join(" ");
                if capitalised {
                    replacement = capitalise(&replacement);
                }
                let mut swap = Swap {
                    span: first.start..last.end,
                    with: replacement.clone(),
                };
                if let Some(article) = i.checked_sub(1).map(|a| &words[a]) {
                    if article.word == "a" || article.word == "an" {
                        let fitting = article_for(&replacement);
                        let written = &text[article.start..article.end];
                        let fitting = if written.starts_with(char::is_uppercase) {
                            capitalise(fitting)
                        } else {
                            fitting.to_string()
                        };
                        swap = Swap {
                            span: article.start..last.end,
                            with: format!(
                                "{fitting}{}{replacement}",
                                &text[article.end..first.start]
                            ),
                        };
                    }
                }
                let Some(alternative) = apply(text, &[&swap]) else {
                    continue;
                };
                if same_class || fits(&alternative) {
                    out.push(Alternative {
                        text: alternative,
                        swap,
                    });
                }
            }
            i += heard.len();
        }
        out
    }

    /// The class and phrase of the longest phrase that `words` start with.
    fn longest_phrase_at(
        &self,
        words: &[WrittenWord],
    ) -> Option<(&Vec<Vec<String>>, &Vec<String>)> {
        let mut best: Option<(&Vec<Vec<String>>, &Vec<String>)> = None;
        for class in &self.classes {
            for phrase in class {
                let matches = phrase.len() <= words.len()
                    && phrase.iter().zip(words).all(|(p, w)| same_word(&w.word, p));
                if matches && best.is_none_or(|(_, b)| phrase.len() > b.len()) {
                    best = Some((class, phrase));
                }
            }
        }
        best
    }
}

/// The words of `text`, split at whitespace, with where each is written.
fn written_words(text: &str) -> Vec<WrittenWord> {
    let mut words = Vec::new();
    let mut offset = 0;
    for piece in text.split_inclusive(char::is_whitespace) {
        let start = offset;
        offset += piece.len();
        let trimmed = piece.trim_end();
        let letters = trimmed.trim_matches(|c: char| c.is_ascii_punctuation() && c != '\'');
        if letters.is_empty() {
            continue;
        }
        let lead = trimmed.len()
            - trimmed
                .trim_start_matches(|c: char| c.is_ascii_punctuation() && c != '\'')
                .len();
        words.push(WrittenWord {
            start: start + lead,
            end: start + lead + letters.len(),
            word: letters.to_lowercase(),
        });
    }
    words
}

/// Whether `heard` is `word` or an inflection of it the recogniser writes ("roasted",
/// "shots").
fn same_word(heard: &str, word: &str) -> bool {
    heard
        .strip_prefix(word)
        .is_some_and(|rest| ["", "s", "es", "d", "ed"].contains(&rest))
}

/// The indefinite article before `phrase`: "an" before a vowel letter, else "a" (English
/// mostly goes by the sound, which the letter gives for a domain's words so far).
pub fn article_for(phrase: &str) -> &'static str {
    let vowel = phrase
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    if vowel {
        "an"
    } else {
        "a"
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The alternative sentences `swaps` offers for `text`.
    fn offered(classes: &PhraseClasses, text: &str, fits: &dyn Fn(&str) -> bool) -> Vec<String> {
        classes
            .swaps(text, fits)
            .into_iter()
            .map(|a| a.text)
            .collect()
    }

    fn coffee() -> PhraseClasses {
        let class = |phrases: &[&str]| phrases.iter().map(|p| p.to_string()).collect::<Vec<_>>();
        PhraseClasses::new([
            class(&["coffee", "iced coffee", "mocha", "iced mocha", "americano"]),
            class(&[
                "sugar",
                "brown sugar",
                "a bit of brown sugar",
                "a little bit of brown sugar",
            ]),
            class(&["light roast", "dark roast"]),
            class(&["alone"]),
        ])
    }

    #[test]
    fn each_phrase_heard_is_swapped_for_the_others_of_its_class() {
        let alternatives = offered(
            &coffee(),
            "Can I get a light roast iced coffee with sugar?",
            &|_| false,
        );
        for expected in [
            "Can I get a dark roast iced coffee with sugar?",
            "Can I get a light roast iced mocha with sugar?",
            "Can I get a light roast coffee with sugar?",
            "Can I get a light roast americano with sugar?",
            "Can I get a light roast iced coffee with brown sugar?",
            "Can I get a light roast iced coffee with a little bit of brown sugar?",
        ] {
            assert!(
                alternatives.iter().any(|a| a == expected),
                "{expected} missing from {alternatives:?}"
            );
        }
        // 1 other roast, 4 other drinks, 3 other sugars; "coffee" inside "iced coffee" is
        // not a phrase of its own.
        assert_eq!(alternatives.len(), 1 + 4 + 3, "{alternatives:?}");
    }

    #[test]
    fn the_article_follows_the_new_phrase_and_inflections_count_as_the_word() {
        let alternatives = offered(&coffee(), "Make me an Americano, light, roasted.", &|_| {
            false
        });
        assert!(
            alternatives.contains(&"Make me a Mocha, light, roasted.".to_string()),
            "{alternatives:?}"
        );
        assert!(
            alternatives.contains(&"Make me an Americano, dark roast.".to_string()),
            "{alternatives:?}"
        );
        let alternatives = offered(&coffee(), "A mocha.", &|_| false);
        assert!(
            alternatives.contains(&"An americano.".to_string()),
            "{alternatives:?}"
        );
    }

    #[test]
    fn phrases_of_other_classes_come_where_the_sentence_still_fits() {
        let fits = |s: &str| s.contains("with");
        let alternatives = offered(&coffee(), "A mocha with sugar.", &fits);
        // "dark roast" for "sugar" fits (it keeps "with"), "dark roast" for "mocha" too; the
        // made-up rule refuses nothing here, so every phrase of every class is offered.
        assert!(
            alternatives.contains(&"A mocha with dark roast.".to_string()),
            "{alternatives:?}"
        );
        let refuse = |_: &str| false;
        let alternatives = offered(&coffee(), "A mocha with sugar.", &refuse);
        assert!(
            !alternatives.iter().any(|a| a.contains("roast")),
            "{alternatives:?}"
        );
        assert!(alternatives.contains(&"A mocha with brown sugar.".to_string()));
    }

    #[test]
    fn swaps_at_different_places_combine_and_overlapping_ones_do_not() {
        let text = "Can I get a light roast mocha with sugar?";
        let swaps = coffee().swaps(text, &|_| false);
        let find = |alternative: &str| {
            swaps
                .iter()
                .find(|a| a.text == alternative)
                .unwrap_or_else(|| panic!("{alternative} missing from {swaps:?}"))
        };
        let roast = find("Can I get a dark roast mocha with sugar?");
        let drink = find("Can I get a light roast americano with sugar?");
        let sugar = find("Can I get a light roast mocha with brown sugar?");
        assert_eq!(
            apply(text, &[&drink.swap, &roast.swap, &sugar.swap]).as_deref(),
            Some("Can I get a dark roast americano with brown sugar?")
        );
        // Two values for one place cannot both be made.
        let other_drink = find("Can I get a light roast iced mocha with sugar?");
        assert_eq!(apply(text, &[&drink.swap, &other_drink.swap]), None);
        // The article belongs to the swap that changes it.
        let text = "A mocha with sugar.";
        let swaps = coffee().swaps(text, &|_| false);
        let americano = swaps
            .iter()
            .find(|a| a.text.starts_with("An americano"))
            .unwrap();
        let sugar = swaps
            .iter()
            .find(|a| a.text.ends_with("brown sugar."))
            .unwrap();
        assert_eq!(
            apply(text, &[&americano.swap, &sugar.swap]).as_deref(),
            Some("An americano with brown sugar.")
        );
        assert_eq!(apply(text, &[]).as_deref(), Some(text));
    }

    #[test]
    fn nothing_to_swap_gives_nothing() {
        assert!(offered(&coffee(), "hello there", &|_| true).is_empty());
        assert!(offered(&coffee(), "", &|_| true).is_empty());
        assert!(PhraseClasses::new([vec!["alone".to_string()]]).is_empty());
    }
}
