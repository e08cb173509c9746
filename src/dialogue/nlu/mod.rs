//! Natural-language understanding: which intent an utterance expresses, with a calibrated
//! confidence and out-of-scope detection.

pub mod classifier;
pub mod clinc;
pub mod encoder;
pub mod wordpiece;

use std::path::PathBuf;

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

/// Features of utterances: embedding (when an encoder is loaded) plus lexical n-grams.
pub struct Featurizer {
    encoder: Option<SentenceEncoder>,
}

impl Featurizer {
    pub fn new(encoder: Option<SentenceEncoder>) -> Self {
        Self { encoder }
    }

    pub fn has_encoder(&self) -> bool {
        self.encoder.is_some()
    }

    pub fn features<S: AsRef<str>>(&mut self, texts: &[S]) -> Result<Vec<Features>, NluError> {
        let dense = match self.encoder.as_mut() {
            Some(encoder) => encoder.encode(texts)?,
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
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
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

/// A trained intent recognizer.
pub struct IntentRecognizer {
    featurizer: Featurizer,
    model: IntentModel,
    /// Below this confidence, the utterance is out of scope.
    pub threshold: f32,
}

impl IntentRecognizer {
    /// Trains on (intent, utterance) pairs; utterances labelled [`OUT_OF_SCOPE`] teach what
    /// is not an intent.
    pub fn train(
        mut featurizer: Featurizer,
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
            model,
            threshold,
        })
    }

    /// Wraps an already trained model.
    pub fn from_parts(featurizer: Featurizer, model: IntentModel, threshold: f32) -> Self {
        Self {
            featurizer,
            model,
            threshold,
        }
    }

    pub fn model_mut(&mut self) -> &mut IntentModel {
        &mut self.model
    }

    pub fn recognize(&mut self, text: &str) -> Result<IntentResult, NluError> {
        let features = self.featurizer.features(&[text])?.remove(0);
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
