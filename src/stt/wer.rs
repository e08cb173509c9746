//! Word error rate, with the text normalisation speech benchmarks use (case, punctuation,
//! number words), so "Four people." and "4 people" count as the same words.

/// Lower-cases, drops punctuation, and spells digits 0–20 and tens as words.
pub fn normalize(text: &str) -> Vec<String> {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    cleaned
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        .flat_map(|w| match w.parse::<u32>() {
            Ok(n) => number_words(n),
            Err(_) => vec![w],
        })
        .collect()
}

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

/// Whether `word` is a number: digits, or a number word up to "hundred".
pub fn is_number_word(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_digit())
        || word == "hundred"
        || ONES.contains(&word)
        || TENS[2..].contains(&word)
}

fn number_words(n: u32) -> Vec<String> {
    match n {
        0..=19 => vec![ONES[n as usize].to_string()],
        20..=99 if n % 10 == 0 => vec![TENS[(n / 10) as usize].to_string()],
        20..=99 => vec![
            TENS[(n / 10) as usize].to_string(),
            ONES[(n % 10) as usize].to_string(),
        ],
        _ => vec![n.to_string()],
    }
}

/// (substitutions + deletions + insertions, reference length) between two texts.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r = normalize(reference);
    let h = normalize(hypothesis);
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let substitution = prev[j] + usize::from(rw != hw);
            row[j + 1] = substitution.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    (prev[h.len()], r.len())
}

/// Word error rate of one pair (errors / reference words).
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let (errors, words) = word_errors(reference, hypothesis);
    if words == 0 {
        return if errors == 0 { 0.0 } else { 1.0 };
    }
    errors as f64 / words as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_after_normalisation() {
        assert_eq!(
            wer("Book a table for 4 people.", "book a table for four people"),
            0.0
        );
        assert_eq!(wer("It's 25 past", "it's twenty five past"), 0.0);
    }

    #[test]
    fn counts_each_error_kind() {
        assert_eq!(word_errors("a b c d", "a x c d"), (1, 4));
        assert_eq!(word_errors("a b c d", "a c d"), (1, 4));
        assert_eq!(word_errors("a b c d", "a b c d e"), (1, 4));
        assert_eq!(
            word_errors("reset my work account", "reset my worker count"),
            (2, 4)
        );
        assert_eq!(wer("", ""), 0.0);
        assert_eq!(wer("", "noise"), 1.0);
    }
}
