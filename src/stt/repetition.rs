//! Guards against Whisper's repetition loops: with the encoder window trimmed to a short
//! utterance, the decoder sometimes fails to emit end-of-text and repeats the utterance
//! until its token limit. A loop is bounded by a token budget derived from the audio's
//! length, and the periodic tail it leaves is cut back to one copy here.

/// Tokens one second of speech can plausibly carry (fast speech is ~5.5 tokens/s).
const TOKENS_PER_SECOND: f64 = 8.0;
const TOKEN_BUDGET_FLOOR: usize = 12;

/// The most tokens a transcript of `audio_secs` should need.
pub fn token_budget(audio_secs: f64) -> usize {
    (audio_secs.max(0.0) * TOKENS_PER_SECOND).ceil() as usize + TOKEN_BUDGET_FLOOR
}

fn comparable(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// If the text ends in a loop — a phrase of ≥ 3 words followed by at least its first three
/// words again (or a shorter one three times), possibly cut off mid-copy — keeps the first
/// copy only.
/// Loops can nest ("… cost? How much … cost cost cost"), so this repeats until stable.
pub fn collapse_repetition(text: &str) -> String {
    let mut current = text.to_string();
    loop {
        let next = collapse_once(&current);
        if next == current {
            return current;
        }
        current = next;
    }
}

fn collapse_once(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let keys: Vec<String> = words.iter().map(|w| comparable(w)).collect();
    let n = words.len();
    for start in 0..n {
        for period in 1..=(n - start) {
            // A phrase of three words or more loops once its second copy reaches three
            // words: a decoder stopped there is no person repeating themselves.
            let least = if period >= 3 { period + 3 } else { period * 3 };
            if (n - start) < least {
                continue;
            }
            // The last word of a cut-off copy may itself be cut ("456." → "4").
            let same = |i: usize| {
                keys[i] == keys[i - period]
                    || (i == n - 1 && !keys[i].is_empty() && keys[i - period].starts_with(&keys[i]))
            };
            if (start + period..n).all(same) {
                return words[..start + period].join(" ");
            }
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_cut_inside_its_last_word_is_still_a_copy() {
        let looped = "My order number is 456. My order number is 456. My order number is 456. My order number is 4";
        assert_eq!(collapse_repetition(looped), "My order number is 456.");
    }

    #[test]
    fn cuts_whole_and_partial_copies() {
        let one = "I would like to book a table for four people at seven.";
        let looped = format!("{one} {one} {one} I would like to book");
        assert_eq!(collapse_repetition(&looped), one);
        assert_eq!(
            collapse_repetition("Hello there. Cancel my order. cancel my order. Cancel my order"),
            "Hello there. Cancel my order."
        );
    }

    #[test]
    fn a_second_copy_cut_after_three_words_is_a_loop() {
        assert_eq!(
            collapse_repetition("What time is it? What time is"),
            "What time is it?"
        );
        assert_eq!(
            collapse_repetition("What time is it? What time"),
            "What time is it? What time"
        );
    }

    #[test]
    fn leaves_real_speech_alone() {
        for text in [
            "bye bye",
            "no no",
            "I want to book a table, I want to book a table for two",
            "one two three four",
            "",
        ] {
            assert_eq!(collapse_repetition(text), text);
        }
        assert_eq!(collapse_repetition("okay okay okay okay"), "okay");
    }

    #[test]
    fn nested_loops_collapse_fully() {
        assert_eq!(
            collapse_repetition("How much does it cost? How much does it cost cost cost cost"),
            "How much does it cost?"
        );
    }

    #[test]
    fn budget_grows_with_audio() {
        assert_eq!(token_budget(0.0), 12);
        assert_eq!(token_budget(2.5), 32);
    }
}
