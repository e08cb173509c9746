//! Natural-language understanding: which intent an utterance expresses, with a calibrated
//! confidence and out-of-scope detection.

pub mod banking77;
pub mod classifier;
pub mod clinc;
pub mod encoder;
pub mod entities;
pub mod normalize;
pub mod slots;
pub mod wordpiece;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use classifier::{lexical_features, Features, IntentModel, TrainConfig};
use encoder::SentenceEncoder;

#[derive(Debug, thiserror::Error)]
pub enum NluError {
    #[error("NLU model file {path}: {reason}")]
    ModelMissing { path: PathBuf, reason: String },
    #[error("NLU model unusable: {0}")]
    BadModel(String),
    #[error("{path}: {reason}")]
    Data { path: PathBuf, reason: String },
}

/// Splits `items` into (train, validation) for development runs on a dataset whose test set
/// is held out: ordered by a stable hash of their text, every tenth goes to validation, so the
/// same data always gives the same split whatever the order of the file.
pub fn hold_out<T: Clone>(items: &[&T], text: impl Fn(&T) -> &str) -> (Vec<T>, Vec<T>) {
    const VALIDATION_EVERY: usize = 10;
    let mut order = items.to_vec();
    order.sort_by_key(|item| (crate::rng::seed_from(text(item)), text(item).to_string()));
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, item) in order.into_iter().enumerate() {
        if i % VALIDATION_EVERY == VALIDATION_EVERY - 1 {
            val.push(item.clone());
        } else {
            train.push(item.clone());
        }
    }
    (train, val)
}

/// Features of utterances: embedding (when an encoder is loaded) plus lexical n-grams.
/// Clones share one encoder (an ONNX session, ~250 ms to open), which encodes one batch at a
/// time; a sentence takes a few milliseconds.
#[derive(Clone)]
pub struct Featurizer {
    encoder: Option<Arc<Mutex<SentenceEncoder>>>,
}

impl Featurizer {
    pub fn new(encoder: Option<SentenceEncoder>) -> Self {
        Self {
            encoder: encoder.map(|e| Arc::new(Mutex::new(e))),
        }
    }

    pub fn has_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    /// Unit-length sentence embeddings of `texts`; None without an encoder.
    pub fn meanings<S: AsRef<str>>(&self, texts: &[S]) -> Result<Option<Vec<Vec<f32>>>, NluError> {
        match &self.encoder {
            Some(encoder) => Ok(Some(
                encoder
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .encode(texts)?,
            )),
            None => Ok(None),
        }
    }

    pub fn features<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Features>, NluError> {
        let dense = match &self.encoder {
            // A poisoned lock only means another encode panicked; the session is stateless
            // between calls.
            Some(encoder) => encoder
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .encode(texts)?,
            None => vec![Vec::new(); texts.len()],
        };
        Ok(texts
            .iter()
            .zip(dense)
            .map(|(t, dense)| Features {
                dense,
                sparse: lexical_features(t.as_ref()),
            })
            .collect())
    }
}

/// What an utterance was understood as.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct IntentResult {
    /// None when out of scope (no intent was confident enough).
    pub intent: Option<String>,
    /// Calibrated probability of the best intent.
    pub confidence: f32,
    /// The best few intents with their probabilities, best first.
    pub ranked: Vec<(String, f32)>,
}

/// The label out-of-scope training examples carry.
pub const OUT_OF_SCOPE: &str = "oos";

/// A trained intent recognizer. Clones share the trained model and the encoder, so each
/// conversation of a server gets its own without training again.
#[derive(Clone)]
pub struct IntentRecognizer {
    featurizer: Featurizer,
    model: Arc<IntentModel>,
    /// Below this confidence, the utterance is out of scope.
    pub threshold: f32,
    corrector: PhoneticCorrector,
}

/// Reads words the domain does not know as the domain word they sound like: speech
/// recognition writes "council" for "cancel" and "by" for "buy". A word is replaced only
/// when it is not in the vocabulary of the training examples, shares the Soundex key of a
/// word that is, and is spelled at least half alike.
#[derive(Debug, Default, Clone)]
pub struct PhoneticCorrector {
    vocabulary: std::collections::HashSet<String>,
    by_sound: std::collections::HashMap<String, String>,
}

impl PhoneticCorrector {
    pub fn new<S: AsRef<str>>(examples: &[S]) -> Self {
        let mut counts: std::collections::HashMap<String, usize> = Default::default();
        for e in examples {
            for w in classifier::words(e.as_ref()) {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut by_sound: std::collections::HashMap<String, (String, usize)> = Default::default();
        for (word, n) in &counts {
            if word.len() < 3 {
                continue;
            }
            if let Some(key) = classifier::soundex(word) {
                let entry = by_sound.entry(key).or_insert((word.clone(), 0));
                if *n > entry.1 || (*n == entry.1 && *word < entry.0) {
                    *entry = (word.clone(), *n);
                }
            }
        }
        Self {
            vocabulary: counts.into_keys().collect(),
            by_sound: by_sound.into_iter().map(|(k, (w, _))| (k, w)).collect(),
        }
    }

    pub fn correct(&self, text: &str) -> String {
        classifier::words(text)
            .into_iter()
            .map(|w| {
                if w.len() < 3 || self.vocabulary.contains(&w) {
                    return w;
                }
                classifier::soundex(&w)
                    .and_then(|k| self.by_sound.get(&k))
                    .filter(|known| entities::word_similarity(known, &w) >= 0.5)
                    .cloned()
                    .unwrap_or(w)
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl IntentRecognizer {
    /// Trains on (intent, utterance) pairs; utterances labelled [`OUT_OF_SCOPE`] teach what
    /// is not an intent.
    pub fn train(
        featurizer: Featurizer,
        examples: &[(String, String)],
        config: TrainConfig,
        threshold: f32,
    ) -> Result<Self, NluError> {
        let mut labels: Vec<String> = examples.iter().map(|(i, _)| i.clone()).collect();
        labels.sort();
        labels.dedup();
        let texts: Vec<&str> = examples.iter().map(|(_, t)| t.as_str()).collect();
        let features = featurizer.features(&texts)?;
        let data: Vec<(Features, usize)> = features
            .into_iter()
            .zip(examples)
            .map(|(f, (intent, _))| (f, labels.binary_search(intent).unwrap_or(0)))
            .collect();
        let model = IntentModel::train(labels, &data, config);
        Ok(Self {
            featurizer,
            model: Arc::new(model),
            threshold,
            corrector: PhoneticCorrector::new(&texts),
        })
    }

    /// The features it reads utterances with (its sentence encoder, shared).
    pub fn featurizer(&self) -> &Featurizer {
        &self.featurizer
    }

    pub fn recognize(&mut self, text: &str) -> Result<IntentResult, NluError> {
        let text = self.corrector.correct(text);
        let features = self.featurizer.features(&[text.as_str()])?.remove(0);
        Ok(decide(&self.model, &features, self.threshold))
    }
}

/// The decision rule: the most probable label, unless it is out of scope or below threshold.
pub fn decide(model: &IntentModel, features: &Features, threshold: f32) -> IntentResult {
    let p = model.probabilities(features);
    let mut ranked: Vec<(String, f32)> = model.labels.iter().cloned().zip(p).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(3);
    let (best, confidence) = ranked.first().cloned().unwrap_or_default();
    let intent = (best != OUT_OF_SCOPE && confidence >= threshold).then_some(best);
    IntentResult {
        intent,
        confidence,
        ranked,
    }
}

#[cfg(test)]
mod tests {
    use super::PhoneticCorrector;

    #[test]
    fn unknown_words_are_read_as_the_domain_word_they_sound_like() {
        let c = PhoneticCorrector::new(&["cancel that", "cancel my order", "book a table"]);
        assert_eq!(c.correct("council that"), "cancel that");
        assert_eq!(c.correct("Book a table!"), "book a table");
        // Unlike spellings are left alone even when the key matches.
        assert_eq!(c.correct("bk"), "bk");
    }
}
