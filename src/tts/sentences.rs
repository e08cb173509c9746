//! Cuts a stream of text (an LLM's tokens, or a whole reply) into sentences as soon as each
//! one is complete, so speech can start before the reply is finished.

use super::stream::TextCommand;

/// Words whose trailing period does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "approx", "no",
    "a.m", "p.m",
];

/// Incremental sentence splitter: `push` text as it arrives, get back complete sentences.
#[derive(Debug, Default)]
pub struct SentenceSplitter {
    pending: String,
}

impl SentenceSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds text and returns every sentence that is now complete. A sentence ends at `.`, `!`
    /// or `?` (with any closing quotes or brackets) followed by whitespace, or at a newline.
    /// The text after the last boundary waits for more input, since a final `.` may yet turn
    /// out to be a decimal point or an abbreviation.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.pending.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = find_boundary(&self.pending) {
            let sentence = self.pending[..end].trim().to_string();
            self.pending.drain(..end);
            if !sentence.is_empty() {
                out.push(sentence);
            }
        }
        out
    }

    /// Whatever is left once the text has ended.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_string())
    }

    /// The sentences a synthesis stream's text command completes: those its text ends, or,
    /// at the flush, whatever is left. Every voice reads its stream's text through this.
    pub fn take(&mut self, command: &TextCommand) -> Vec<String> {
        match command {
            TextCommand::Text(text) => self.push(text),
            TextCommand::Flush => self.finish().into_iter().collect(),
        }
    }
}

/// A long sentence cut after its first clause, so the first audio of a reply is ready
/// sooner: the clause plays while the rest is synthesized. A colon or semicolon ends a clause
/// after any word; a comma after three (not "Well," but "So that's a haircut on Thursday,").
/// Sentences under eight words, and cuts that would leave fewer than three, stay whole.
pub fn first_clause(sentence: &str) -> Option<(&str, &str)> {
    const MIN_SENTENCE_WORDS: usize = 8;
    const MIN_REST_WORDS: usize = 3;
    let words = |t: &str| t.split_whitespace().count();
    if words(sentence) < MIN_SENTENCE_WORDS {
        return None;
    }
    let mut seen = 0;
    for (end, word) in sentence
        .split_inclusive(char::is_whitespace)
        .scan(0, |at, w| {
            *at += w.len();
            Some((*at, w))
        })
    {
        if word.trim().is_empty() {
            continue;
        }
        seen += 1;
        let strong = word.trim_end().ends_with([':', ';']);
        let comma = word.trim_end().ends_with(',') && seen >= 3;
        let (head, tail) = sentence.split_at(end);
        if (strong || comma) && words(tail) >= MIN_REST_WORDS {
            return Some((head.trim_end(), tail.trim_start()));
        }
    }
    None
}

/// Byte index just past the first sentence boundary, if one is certain.
fn find_boundary(text: &str) -> Option<usize> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for (i, &(pos, c)) in chars.iter().enumerate() {
        if c == '\n' {
            return Some(pos + 1);
        }
        if !matches!(c, '.' | '!' | '?' | '…') {
            continue;
        }
        // Absorb runs of terminators and closing quotes/brackets: `?!`, `."`, `.)`.
        let mut j = i + 1;
        while j < chars.len()
            && matches!(chars[j].1, '.' | '!' | '?' | '"' | '\'' | ')' | '”' | '’')
        {
            j += 1;
        }
        if j >= chars.len() {
            return None; // cannot tell yet
        }
        if !chars[j].1.is_whitespace() {
            continue; // "3.5", "e.g.x", "example.com"
        }
        if c == '.' && is_abbreviation(&text[..pos]) {
            continue;
        }
        return Some(chars[j].0);
    }
    None
}

fn is_abbreviation(before_period: &str) -> bool {
    let word = before_period
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    // A single capital letter is an initial ("J. Smith").
    ABBREVIATIONS.contains(&word.as_str())
        || (word.len() == 1 && word.chars().all(|c| c.is_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(text: &str) -> Vec<String> {
        let mut s = SentenceSplitter::new();
        let mut v = s.push(text);
        v.extend(s.finish());
        v
    }

    #[test]
    fn splits_on_terminators() {
        assert_eq!(
            split_all("Hello there! How can I help? It costs 3.50 dollars. Bye"),
            vec![
                "Hello there!",
                "How can I help?",
                "It costs 3.50 dollars.",
                "Bye"
            ]
        );
    }

    #[test]
    fn keeps_abbreviations_and_initials_together() {
        assert_eq!(
            split_all("Dr. Smith will see you at 3 p.m. tomorrow. J. Doe too."),
            vec!["Dr. Smith will see you at 3 p.m. tomorrow.", "J. Doe too."]
        );
    }

    #[test]
    fn streams_token_by_token() {
        let mut s = SentenceSplitter::new();
        let mut got = Vec::new();
        for token in [
            "Sure",
            ".",
            " Your",
            " order",
            " ships",
            " today",
            ".",
            " Any",
            "thing else?",
        ] {
            got.extend(s.push(token));
        }
        // The first sentence is released as soon as the next token shows it ended.
        assert_eq!(got, vec!["Sure.", "Your order ships today."]);
        assert_eq!(s.finish().as_deref(), Some("Anything else?"));
    }

    #[test]
    fn newline_and_quotes() {
        assert_eq!(
            split_all("He said \"yes.\" Then left\nNext"),
            vec!["He said \"yes.\"", "Then left", "Next"]
        );
        assert!(split_all("   ").is_empty());
    }

    #[test]
    fn a_long_first_sentence_is_cut_after_its_first_clause() {
        assert_eq!(
            first_clause("Okay: twelve ounce light roast coffee with milk."),
            Some(("Okay:", "twelve ounce light roast coffee with milk."))
        );
        assert_eq!(
            first_clause("So that's a haircut on Thursday, November 26 at 10 AM."),
            Some(("So that's a haircut on Thursday,", "November 26 at 10 AM."))
        );
        assert_eq!(
            first_clause("Well, I can check that for you right now."),
            None
        );
        assert_eq!(first_clause("Okay: drip coffee."), None, "short");
        assert_eq!(first_clause("Your order is on its way, see you."), None);
    }
}
