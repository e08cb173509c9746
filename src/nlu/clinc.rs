//! The CLINC150 evaluation (Larson et al., 2019), done the honest way its README asks:
//! train on `train` + `oos_train`, fit the confidence temperature and the out-of-scope
//! threshold on `val` + `oos_val`, and report once on `test` + `oos_test`: in-scope
//! accuracy (an in-scope query rejected as out of scope counts as wrong) and out-of-scope
//! recall.

use std::path::Path;
use std::time::Instant;

use super::classifier::{Features, IntentModel, TrainConfig};
use super::{decide, Featurizer, NluError, OUT_OF_SCOPE};
use crate::telemetry::LatencySummary;

/// In-scope accuracy the out-of-scope threshold may cost on val.
const ACCURACY_BUDGET: f64 = 0.01;

/// The six splits of `data_full.json`, each a list of (query, intent).
#[derive(Debug, Default)]
pub struct ClincData {
    pub train: Vec<(String, String)>,
    pub val: Vec<(String, String)>,
    pub test: Vec<(String, String)>,
    pub oos_train: Vec<(String, String)>,
    pub oos_val: Vec<(String, String)>,
    pub oos_test: Vec<(String, String)>,
}

pub fn load(path: &Path) -> Result<ClincData, NluError> {
    let err = |reason: String| NluError::Data {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
    let split = |name: &str| -> Result<Vec<(String, String)>, NluError> {
        let items = json.get(name).and_then(|v| v.as_array()).ok_or_else(|| {
            err(format!(
                "no split \"{name}\" (is this CLINC150's data_full.json?)"
            ))
        })?;
        items
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([q, i]) => Ok((
                    q.as_str().unwrap_or_default().to_string(),
                    i.as_str().unwrap_or_default().to_string(),
                )),
                _ => Err(err(format!(
                    "split \"{name}\": expected [query, intent] pairs"
                ))),
            })
            .collect()
    };
    Ok(ClincData {
        train: split("train")?,
        val: split("val")?,
        test: split("test")?,
        oos_train: split("oos_train")?,
        oos_val: split("oos_val")?,
        oos_test: split("oos_test")?,
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Scores {
    pub in_scope_accuracy: f64,
    pub oos_recall: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub encoder: bool,
    pub train_examples: usize,
    pub intents: usize,
    pub temperature: f32,
    pub threshold: f32,
    /// Figures on val at the chosen threshold (what was tuned).
    pub val: Scores,
    /// Val in-scope accuracy and OOS recall at thresholds 0, 0.1, … 0.9: the trade-off.
    pub val_curve: Vec<(f32, f64, f64)>,
    /// Figures on test, reported once.
    pub test: Scores,
    pub train_ms: f64,
    /// One utterance at a time, features and decision: the cost per user turn.
    pub latency: Option<LatencySummary>,
}

fn score(
    model: &IntentModel,
    in_scope: &[(Features, String)],
    oos: &[Features],
    threshold: f32,
) -> Scores {
    let correct = in_scope
        .iter()
        .filter(|(f, intent)| {
            decide(model, f, threshold).intent.as_deref() == Some(intent.as_str())
        })
        .count();
    let rejected = oos
        .iter()
        .filter(|f| decide(model, f, threshold).intent.is_none())
        .count();
    Scores {
        in_scope_accuracy: correct as f64 / in_scope.len().max(1) as f64,
        oos_recall: rejected as f64 / oos.len().max(1) as f64,
    }
}

/// Trains, tunes on val and reports on test.
pub fn evaluate(
    data: &ClincData,
    featurizer: &mut Featurizer,
    config: TrainConfig,
) -> Result<EvalReport, NluError> {
    let featurize = |featurizer: &mut Featurizer,
                     set: &[(String, String)]|
     -> Result<Vec<(Features, String)>, NluError> {
        let texts: Vec<&str> = set.iter().map(|(q, _)| q.as_str()).collect();
        Ok(featurizer
            .features(&texts)?
            .into_iter()
            .zip(set.iter().map(|(_, i)| i.clone()))
            .collect())
    };
    let mut train = featurize(featurizer, &data.train)?;
    train.extend(featurize(featurizer, &data.oos_train)?);
    let val = featurize(featurizer, &data.val)?;
    let oos_val: Vec<Features> = featurize(featurizer, &data.oos_val)?
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    let test = featurize(featurizer, &data.test)?;
    let oos_test: Vec<Features> = featurize(featurizer, &data.oos_test)?
        .into_iter()
        .map(|(f, _)| f)
        .collect();

    let mut labels: Vec<String> = train.iter().map(|(_, i)| i.clone()).collect();
    labels.sort();
    labels.dedup();
    let index = |intent: &str| labels.binary_search_by(|l| l.as_str().cmp(intent)).ok();
    let examples: Vec<(Features, usize)> = train
        .iter()
        .filter_map(|(f, i)| index(i).map(|k| (f.clone(), k)))
        .collect();
    let start = Instant::now();
    let mut model = IntentModel::train(labels.clone(), &examples, config);
    let train_ms = start.elapsed().as_secs_f64() * 1000.0;

    // Temperature on val (in scope and out of scope alike).
    let held_out: Vec<(Vec<f32>, usize)> = val
        .iter()
        .filter_map(|(f, i)| index(i).map(|k| (model.logits(f), k)))
        .chain(
            oos_val
                .iter()
                .filter_map(|f| index(OUT_OF_SCOPE).map(|k| (model.logits(f), k))),
        )
        .collect();
    model.calibrate(&held_out);

    // Threshold on val: the most out-of-scope recall that costs at most ACCURACY_BUDGET of
    // in-scope accuracy (rejecting in-scope requests is what users notice most).
    let best_accuracy = score(&model, &val, &oos_val, 0.0).in_scope_accuracy;
    let mut best = (0.0f32, score(&model, &val, &oos_val, 0.0));
    for step in 1..100 {
        let threshold = step as f32 / 100.0;
        let s = score(&model, &val, &oos_val, threshold);
        if s.in_scope_accuracy >= best_accuracy - ACCURACY_BUDGET
            && s.oos_recall > best.1.oos_recall
        {
            best = (threshold, s);
        }
    }
    let (threshold, val_scores) = best;
    let val_curve = (0..10)
        .map(|i| {
            let t = i as f32 / 10.0;
            let s = score(&model, &val, &oos_val, t);
            (t, s.in_scope_accuracy, s.oos_recall)
        })
        .collect();
    let test_scores = score(&model, &test, &oos_test, threshold);

    // Per-utterance cost, one at a time as in a conversation.
    let mut times = Vec::new();
    for (query, _) in data.test.iter().step_by(23).take(200) {
        let start = Instant::now();
        let features = featurizer.features(&[query.as_str()])?;
        let _ = decide(&model, &features[0], threshold);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(EvalReport {
        encoder: featurizer.has_encoder(),
        train_examples: examples.len(),
        intents: labels.len(),
        temperature: model.temperature,
        threshold,
        val: val_scores,
        val_curve,
        test: test_scores,
        train_ms,
        latency: LatencySummary::from_samples(&times),
    })
}
