//! Stable partial transcripts. The growing utterance is re-decoded every few hundred ms;
//! later words of a hypothesis often change, so only the prefix that two successive decodes
//! agree on is published, and a published prefix only ever grows.

/// Tracks successive hypotheses of one utterance.
#[derive(Debug, Default)]
pub struct PartialStabilizer {
    previous: Vec<String>,
    published: Vec<String>,
}

fn key(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .flat_map(char::to_lowercase)
        .collect()
}

impl PartialStabilizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a new hypothesis; returns the stable text when it has grown.
    pub fn update(&mut self, hypothesis: &str) -> Option<String> {
        let words: Vec<String> = hypothesis.split_whitespace().map(String::from).collect();
        let agreed = self
            .previous
            .iter()
            .zip(&words)
            .take_while(|(a, b)| key(a) == key(b))
            .count();
        self.previous = words.clone();
        // Only extend what was already published; never take a published word back.
        let consistent = self
            .published
            .iter()
            .zip(&words)
            .take_while(|(a, b)| key(a) == key(b))
            .count()
            == self.published.len();
        if !consistent || agreed <= self.published.len() {
            return None;
        }
        self.published = words[..agreed].to_vec();
        Some(self.published.join(" "))
    }

    /// The text published so far.
    pub fn stable(&self) -> String {
        self.published.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_only_the_agreed_prefix_and_never_shrinks() {
        let mut s = PartialStabilizer::new();
        assert_eq!(s.update("I would"), None);
        assert_eq!(s.update("I would like to").as_deref(), Some("I would"));
        assert_eq!(
            s.update("I would like the book").as_deref(),
            Some("I would like")
        );
        assert_eq!(s.update("I would like to book a"), None);
        assert_eq!(
            s.update("I would like to book a table").as_deref(),
            Some("I would like to book a")
        );
        // A hypothesis that contradicts published words publishes nothing.
        assert_eq!(s.update("Hi would like"), None);
        assert_eq!(s.stable(), "I would like to book a");
    }
}
