//! BERT's uncased WordPiece tokenizer, as all-MiniLM-L6-v2 was trained with it: lower-case,
//! strip accents, split on white space and punctuation, then cut each word into the longest
//! vocabulary pieces from the left (continuations carry a `##` prefix).

use std::collections::HashMap;
use std::path::Path;

use unicode_normalization::UnicodeNormalization;

use super::NluError;

/// Words longer than this are one unknown token, as in BERT.
const MAX_WORD_CHARS: usize = 100;

pub struct WordPiece {
    vocab: HashMap<String, i64>,
    pub cls: i64,
    pub sep: i64,
    pub unk: i64,
    pub pad: i64,
}

impl WordPiece {
    /// Reads a `vocab.txt` (one token per line; the line number is the id).
    pub fn from_file(path: &Path) -> Result<Self, NluError> {
        let text = std::fs::read_to_string(path).map_err(|e| NluError::ModelMissing {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_vocab(text.lines())
    }

    pub fn from_vocab<'a>(tokens: impl Iterator<Item = &'a str>) -> Result<Self, NluError> {
        let vocab: HashMap<String, i64> = tokens
            .enumerate()
            .map(|(i, t)| (t.trim_end_matches('\r').to_string(), i as i64))
            .collect();
        let id = |t: &str| {
            vocab
                .get(t)
                .copied()
                .ok_or_else(|| NluError::BadModel(format!("the vocabulary has no {t} token")))
        };
        Ok(Self {
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            unk: id("[UNK]")?,
            pad: id("[PAD]")?,
            vocab,
        })
    }

    /// Token ids of `text` between [CLS] and [SEP], at most `max_len` in all.
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<i64> {
        let mut ids = vec![self.cls];
        'words: for word in basic_tokens(text) {
            for id in self.pieces(&word) {
                if ids.len() + 1 >= max_len {
                    break 'words;
                }
                ids.push(id);
            }
        }
        ids.push(self.sep);
        ids
    }

    /// Greedy longest-match-first pieces of one word.
    fn pieces(&self, word: &str) -> Vec<i64> {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > MAX_WORD_CHARS {
            return vec![self.unk];
        }
        let mut out = Vec::new();
        let mut start = 0;
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                let piece: String = chars[start..end].iter().collect();
                let key = if start > 0 {
                    format!("##{piece}")
                } else {
                    piece
                };
                if let Some(&id) = self.vocab.get(&key) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => out.push(id),
                // A word with any unknown part is one unknown token.
                None => return vec![self.unk],
            }
            start = end;
        }
        out
    }
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_alphanumeric() && !c.is_whitespace() && !c.is_control())
}

/// Lower-cased, accent-stripped words and punctuation marks.
fn basic_tokens(text: &str) -> Vec<String> {
    let cleaned: String = text
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .filter(|c| !c.is_control() || c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    let mut tokens = Vec::new();
    for word in cleaned.split_whitespace() {
        let mut current = String::new();
        for c in word.chars() {
            if is_punctuation(c) {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
                tokens.push(c.to_string());
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            tokens.push(current);
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        let vocab = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "book", "a", "table", "un", "##aff", "##able", ",",
            "?", "cafe",
        ];
        WordPiece::from_vocab(vocab.into_iter()).unwrap()
    }

    #[test]
    fn splits_punctuation_accents_and_pieces() {
        let wp = tiny();
        // [CLS] book a table , unaffable ? café→cafe [SEP]
        assert_eq!(
            wp.encode("Book a TABLE, unaffable? Café", 64),
            vec![2, 4, 5, 6, 10, 7, 8, 9, 11, 12, 3]
        );
        assert_eq!(wp.encode("xyz", 64), vec![2, 1, 3]);
        assert_eq!(
            wp.encode("book a table", 3),
            vec![2, 4, 3],
            "truncated, [SEP] kept"
        );
    }

    #[test]
    fn a_vocabulary_without_special_tokens_is_rejected() {
        assert!(WordPiece::from_vocab(["a", "b"].into_iter()).is_err());
    }
}
