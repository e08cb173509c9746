//! Answers from the deployer's own documents. Markdown or text files are split into
//! passages (a paragraph under its heading, as sentences); a question is matched to every
//! sentence by meaning (the sentence encoder the intents use, each sentence read under its
//! section's title), by its passage's meaning, and by words (BM25); the best sentence, with
//! the sentence it leans on, is the answer. Below a calibrated score the documents do not
//! answer and hark says so. Nothing is stored: the index is rebuilt at start-up.

pub mod cache;
pub mod passages;

use std::path::{Path, PathBuf};

use bm25::{Language, SearchEngine, SearchEngineBuilder};

use crate::nlu::{Featurizer, NluError};
use cache::MeaningCache;
pub use passages::Passage;

#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    #[error("knowledge document {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("knowledge {0}: no Markdown (.md) or text (.txt) file there")]
    NoDocuments(PathBuf),
    #[error("the knowledge documents have no text to answer from")]
    Empty,
    #[error(transparent)]
    Nlu(#[from] NluError),
}

/// How a question's match to a sentence is scored, and the score an answer needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scoring {
    /// Weight of the sentence's passage's meaning beside the sentence's own.
    pub passage: f32,
    /// Weight of the shared words (BM25, squashed to 0..1).
    pub words: f32,
    /// Below this best score, the documents do not answer the question.
    pub threshold: f32,
}

impl Default for Scoring {
    /// Calibrated on the validation questions' tuning half (`cargo bench --bench knowledge`).
    fn default() -> Self {
        Self {
            passage: 0.5,
            words: 0.25,
            threshold: 0.75,
        }
    }
}

/// BM25 scores are unbounded: `s / (s + WORDS_HALF)` maps them to 0..1, half at this score
/// (about two rare words shared with a short sentence).
const WORDS_HALF: f32 = 6.0;

/// Words an answer may have: spoken answers are short, written ones may say a little more.
pub const SPOKEN_WORDS: usize = 30;
pub const WRITTEN_WORDS: usize = 60;
/// Passages handed to a language model with a question the documents do not answer outright.
const NEAREST_PASSAGES: usize = 3;
/// A sentence of the best passage that scores within this of the best is part of the answer.
const ALSO_WITHIN: f32 = 0.1;
/// An answer shorter than this takes the next sentence of its passage too, when it fits.
const SHORT_ANSWER_WORDS: usize = 12;

/// What the documents say to a question.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    /// The sentences that answer it, and the section they come from.
    Answer {
        text: String,
        section: String,
        score: f32,
    },
    /// Nothing in them answers it well enough; the passages nearest to it ("Section: text",
    /// best first), for a language model told to answer only from them.
    Nothing { score: f32, nearest: Vec<String> },
}

/// The documents, indexed.
pub struct Knowledge {
    passages: Vec<Passage>,
    /// (passage, sentence) of each indexed sentence, in order.
    sentence_of: Vec<(usize, usize)>,
    words: SearchEngine<u32>,
    /// Unit-length meaning of each sentence read under its section, and of each passage
    /// (the mean of its sentences'); empty without an encoder.
    sentence_meanings: Vec<Vec<f32>>,
    passage_meanings: Vec<Vec<f32>>,
    featurizer: Featurizer,
    pub scoring: Scoring,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("passages", &self.passages.len())
            .field("sentences", &self.sentence_of.len())
            .finish()
    }
}

impl Knowledge {
    /// Reads every document at `paths` (files, or folders searched for `.md`, `.markdown`
    /// and `.txt` files) and indexes them.
    pub fn load(paths: &[PathBuf], featurizer: Featurizer) -> Result<Self, KnowledgeError> {
        Self::load_cached(paths, featurizer, None)
    }

    /// As [`Knowledge::load`], keeping the sentences' meanings in the cache file `cache`
    /// between starts (see [`cache`]).
    pub fn load_cached(
        paths: &[PathBuf],
        featurizer: Featurizer,
        cache: Option<&Path>,
    ) -> Result<Self, KnowledgeError> {
        let mut documents = Vec::new();
        for path in paths {
            for file in document_files(path)? {
                let text =
                    std::fs::read_to_string(&file).map_err(|source| KnowledgeError::Read {
                        path: file.clone(),
                        source,
                    })?;
                let name = file.file_stem().map_or_else(String::new, |s| {
                    s.to_string_lossy().replace(['-', '_'], " ")
                });
                documents.push((name, text));
            }
        }
        Self::build_cached(&documents, featurizer, cache)
    }

    /// Indexes `(name, text)` documents.
    pub fn build(
        documents: &[(String, String)],
        featurizer: Featurizer,
    ) -> Result<Self, KnowledgeError> {
        Self::build_cached(documents, featurizer, None)
    }

    /// As [`Knowledge::build`], with the meanings cache at `cache`.
    pub fn build_cached(
        documents: &[(String, String)],
        featurizer: Featurizer,
        cache: Option<&Path>,
    ) -> Result<Self, KnowledgeError> {
        let passages: Vec<Passage> = documents
            .iter()
            .flat_map(|(name, text)| passages::split(text, name))
            .collect();
        if passages.is_empty() {
            return Err(KnowledgeError::Empty);
        }
        let mut sentence_of = Vec::new();
        let mut read = Vec::new();
        for (p, passage) in passages.iter().enumerate() {
            for (s, sentence) in passage.sentences.iter().enumerate() {
                sentence_of.push((p, s));
                read.push(format!("{}: {sentence}", passage.section));
            }
        }
        let words =
            SearchEngineBuilder::<u32>::with_corpus(Language::English, read.iter().cloned())
                .build();
        let sentence_meanings = meanings_of(&featurizer, &read, cache)?;
        let passage_meanings = if sentence_meanings.is_empty() {
            Vec::new()
        } else {
            mean_per_passage(&sentence_meanings, &sentence_of, passages.len())
        };
        Ok(Self {
            passages,
            sentence_of,
            words,
            sentence_meanings,
            passage_meanings,
            featurizer,
            scoring: Scoring::default(),
        })
    }

    pub fn passages(&self) -> &[Passage] {
        &self.passages
    }

    /// How `question` matches each sentence, by kind of evidence.
    pub fn evidence(&self, question: &str) -> Result<Evidence, KnowledgeError> {
        let n = self.sentence_of.len();
        let mut evidence = Evidence {
            meaning: vec![0.0; n],
            passage: vec![0.0; n],
            words: vec![0.0; n],
        };
        if let Some(q) = self
            .featurizer
            .meanings(&[question])?
            .and_then(|mut m| m.pop())
        {
            for (i, &(p, _)) in self.sentence_of.iter().enumerate() {
                evidence.meaning[i] = dot(&q, &self.sentence_meanings[i]);
                evidence.passage[i] = dot(&q, &self.passage_meanings[p]);
            }
        }
        for hit in self.words.search(question, None) {
            let s = hit.score.max(0.0);
            evidence.words[hit.document.id as usize] = s / (s + WORDS_HALF);
        }
        Ok(evidence)
    }

    /// What the documents say to `question`, in at most `max_words` words.
    pub fn lookup(&self, question: &str, max_words: usize) -> Result<Found, KnowledgeError> {
        let evidence = self.evidence(question)?;
        Ok(self.found(&evidence, &self.scoring, max_words))
    }

    /// The answer `evidence` gives under `scoring`.
    pub fn found(&self, evidence: &Evidence, scoring: &Scoring, max_words: usize) -> Found {
        let Some((best, score)) = evidence.best(scoring) else {
            return Found::Nothing {
                score: 0.0,
                nearest: Vec::new(),
            };
        };
        if score < scoring.threshold {
            return Found::Nothing {
                score,
                nearest: self.nearest(evidence, scoring, NEAREST_PASSAGES),
            };
        }
        let (p, s) = self.sentence_of[best];
        let passage = &self.passages[p];
        // The passage's next best sentence, when it matched nearly as well.
        let also = (0..self.sentence_of.len())
            .filter(|&i| i != best && self.sentence_of[i].0 == p)
            .map(|i| (self.sentence_of[i].1, evidence.score(i, scoring)))
            .filter(|&(_, other)| other >= score - ALSO_WITHIN)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(s, _)| s);
        Found::Answer {
            text: compose(&passage.sentences, s, also, max_words),
            section: passage.section.clone(),
            score,
        }
    }
}

impl Knowledge {
    /// The `n` passages with the best-scoring sentences, as "Section: text".
    fn nearest(&self, evidence: &Evidence, scoring: &Scoring, n: usize) -> Vec<String> {
        let mut best_of_passage = vec![f32::MIN; self.passages.len()];
        for (i, &(p, _)) in self.sentence_of.iter().enumerate() {
            best_of_passage[p] = best_of_passage[p].max(evidence.score(i, scoring));
        }
        let mut order: Vec<usize> = (0..self.passages.len()).collect();
        order.sort_by(|&a, &b| best_of_passage[b].total_cmp(&best_of_passage[a]));
        order
            .into_iter()
            .take(n)
            .map(|p| format!("{}: {}", self.passages[p].section, self.passages[p].text()))
            .collect()
    }
}

/// How a question matches each sentence: by the sentence's meaning, its passage's meaning
/// (cosines) and shared words (squashed BM25, 0..1).
#[derive(Debug, Clone)]
pub struct Evidence {
    pub meaning: Vec<f32>,
    pub passage: Vec<f32>,
    pub words: Vec<f32>,
}

impl Evidence {
    /// The best sentence and its score under `scoring`.
    pub fn best(&self, scoring: &Scoring) -> Option<(usize, f32)> {
        (0..self.meaning.len())
            .map(|i| (i, self.score(i, scoring)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Sentence `i`'s score under `scoring`.
    pub fn score(&self, i: usize, scoring: &Scoring) -> f32 {
        self.meaning[i] + scoring.passage * self.passage[i] + scoring.words * self.words[i]
    }
}

/// The files of a knowledge path: itself, or the documents in the folder and below it, in
/// name order.
fn document_files(path: &Path) -> Result<Vec<PathBuf>, KnowledgeError> {
    let meta = std::fs::metadata(path).map_err(|source| KnowledgeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut folders = vec![path.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| KnowledgeError::Read {
            path: folder.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let p = entry.path();
            // A linked folder is not followed (a link to its parent would never end).
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                folders.push(p);
            } else if is_document(&p) && p.is_file() {
                files.push(p);
            }
        }
    }
    if files.is_empty() {
        return Err(KnowledgeError::NoDocuments(path.to_path_buf()));
    }
    files.sort();
    Ok(files)
}

/// The encoder's meaning of each of `texts`, from the cache where it has them (empty
/// without an encoder); the cache is then left holding exactly these.
fn meanings_of(
    featurizer: &Featurizer,
    texts: &[String],
    cache: Option<&Path>,
) -> Result<Vec<Vec<f32>>, KnowledgeError> {
    let cache = MeaningCache::open(cache);
    let missing: Vec<&String> = texts.iter().filter(|t| cache.get(t).is_none()).collect();
    let Some(fresh) = featurizer.meanings(&missing)? else {
        return Ok(Vec::new());
    };
    if fresh
        .first()
        .is_some_and(|m| !cache.is_empty() && m.len() != cache.dim())
    {
        // Meanings of another width: none of the cached ones can be used.
        let all = featurizer.meanings(texts)?.unwrap_or_default();
        cache.keep(texts, &all);
        return Ok(all);
    }
    let mut fresh = fresh.into_iter();
    let all: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| match cache.get(t) {
            Some(known) => known.to_vec(),
            None => fresh.next().unwrap_or_default(),
        })
        .collect();
    let unchanged = missing.is_empty()
        && cache.len() == texts.iter().collect::<std::collections::HashSet<_>>().len();
    if !unchanged {
        cache.keep(texts, &all);
    }
    Ok(all)
}

/// Whether `path` is a document or a folder with documents in it.
pub fn has_documents(path: &Path) -> bool {
    document_files(path).is_ok()
}

fn is_document(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "md" | "markdown" | "txt"))
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Each passage's meaning: the mean of its sentences', unit length.
fn mean_per_passage(
    sentences: &[Vec<f32>],
    sentence_of: &[(usize, usize)],
    passages: usize,
) -> Vec<Vec<f32>> {
    let dim = sentences.first().map_or(0, Vec::len);
    let mut sums = vec![vec![0f32; dim]; passages];
    for (meaning, &(p, _)) in sentences.iter().zip(sentence_of) {
        for (sum, x) in sums[p].iter_mut().zip(meaning) {
            *sum += x;
        }
    }
    for sum in &mut sums {
        let norm = dot(sum, sum).sqrt();
        if norm > 0.0 {
            sum.iter_mut().for_each(|x| *x /= norm);
        }
    }
    sums
}

/// Words that make a sentence lean on the one before it ("It is free on orders of $50").
const LEANS_BACK: &[&str] = &[
    "it",
    "its",
    "they",
    "their",
    "them",
    "this",
    "these",
    "that",
    "those",
    "both",
    "there",
    "he",
    "she",
    "otherwise",
    "also",
];

fn word_count(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The answer built around sentence `best` of a passage: with `also` (a sentence of the
/// passage that matched nearly as well) and those between, the sentence before when it
/// leans on it, and the sentences after while the answer is short, all within `max_words`
/// (the best sentence alone may be longer).
pub fn compose(sentences: &[String], best: usize, also: Option<usize>, max_words: usize) -> String {
    let (mut from, mut to) = (best, best + 1);
    let mut words = word_count(&sentences[best]);
    if let Some(also) = also {
        let (a, b) = (also.min(from), (also + 1).max(to));
        let span: usize = sentences[a..b].iter().map(|s| word_count(s)).sum();
        if span <= max_words {
            (from, to, words) = (a, b, span);
        }
    }
    let first_word = sentences[best]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase();
    if from == best && best > 0 && LEANS_BACK.contains(&first_word.as_str()) {
        let before = word_count(&sentences[best - 1]);
        if words + before <= max_words {
            from -= 1;
            words += before;
        }
    }
    let wanted = if max_words > SPOKEN_WORDS {
        max_words
    } else {
        SHORT_ANSWER_WORDS
    };
    while words < wanted && to < sentences.len() {
        let next = word_count(&sentences[to]);
        if words + next > max_words {
            break;
        }
        words += next;
        to += 1;
    }
    sentences[from..to].join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn an_answer_takes_the_sentence_it_leans_on_and_stays_short_when_spoken() {
        let passage = s(&[
            "Standard shipping within the United States takes 3 to 5 business days.",
            "It is free on orders of $50 or more; below that it costs $6.95.",
            "Express takes 1 to 2 days.",
        ]);
        assert_eq!(
            compose(&passage, 1, None, SPOKEN_WORDS),
            "Standard shipping within the United States takes 3 to 5 business days. It is free on orders of $50 or more; below that it costs $6.95."
        );
        // A short sentence takes the next one when it fits.
        assert_eq!(
            compose(&passage, 2, None, SPOKEN_WORDS),
            "Express takes 1 to 2 days."
        );
        let gift = s(&[
            "Gift cards never expire.",
            "They have no fees.",
            "Lost ones can be replaced with the receipt.",
        ]);
        assert_eq!(
            compose(&gift, 0, None, SPOKEN_WORDS),
            "Gift cards never expire. They have no fees. Lost ones can be replaced with the receipt."
        );
        // A sentence that matched nearly as well comes too, in the passage's order.
        assert_eq!(
            compose(&passage, 2, Some(0), 40),
            passage.join(" "),
            "within the words allowed"
        );
        assert_eq!(
            compose(&passage, 2, Some(0), 20),
            "Express takes 1 to 2 days."
        );
        // Written answers say more of the passage.
        assert_eq!(
            compose(&passage, 2, None, WRITTEN_WORDS),
            "Express takes 1 to 2 days."
        );
        assert_eq!(
            word_count(&compose(&passage, 0, None, WRITTEN_WORDS)),
            word_count(&passage.join(" "))
        );
    }

    #[test]
    fn words_alone_find_the_sentence_without_an_encoder() {
        let docs = vec![(
            "help".to_string(),
            "## Shipping\n\nWe ship to Canada for a flat $19 per order.\n\n## Gift cards\n\nGift cards never expire.\n".to_string(),
        )];
        let mut k = Knowledge::build(&docs, Featurizer::new(None)).unwrap();
        k.scoring.threshold = 0.01;
        match k.lookup("do you ship to canada", SPOKEN_WORDS).unwrap() {
            Found::Answer { text, section, .. } => {
                assert!(text.contains("$19"), "{text}");
                assert_eq!(section, "Shipping");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            k.lookup("tell me a joke", SPOKEN_WORDS).unwrap(),
            Found::Nothing { .. }
        ));
    }

    #[test]
    fn a_path_with_no_documents_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("hark-knowledge-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = Knowledge::load(std::slice::from_ref(&dir), Featurizer::new(None)).unwrap_err();
        assert!(err.to_string().contains("no Markdown"), "{err}");
        let missing = Knowledge::load(&[dir.join("nope.md")], Featurizer::new(None)).unwrap_err();
        assert!(missing.to_string().contains("nope.md"), "{missing}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
