//! The Banking77 evaluation (Casanueva et al., 2020): 77 intents of real online-banking
//! queries, no out-of-scope class, scored by accuracy. The official test set is held out, so
//! development uses a fixed, stratified 10 % of the training file as validation; the same
//! code scores any test file given.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::classifier::{Features, IntentModel, TrainConfig};
use super::{decide, hold_out, Featurizer, NluError};
use crate::telemetry::LatencySummary;

/// Labelled queries, (query, intent).
pub type Queries = Vec<(String, String)>;

/// Reads a Banking77 CSV file (`text,category`, with a header row) as (query, intent).
pub fn load(path: &Path) -> Result<Queries, NluError> {
    let err = |reason: String| NluError::Data {
        path: path.to_path_buf(),
        reason,
    };
    let mut reader = csv::Reader::from_path(path).map_err(|e| err(e.to_string()))?;
    let headers = reader.headers().map_err(|e| err(e.to_string()))?.clone();
    let column = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            err(format!(
                "no column \"{name}\" (a Banking77 file has the columns text,category)"
            ))
        })
    };
    let (text, category) = (column("text")?, column("category")?);
    let mut rows = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| err(e.to_string()))?;
        match (record.get(text), record.get(category)) {
            (Some(t), Some(c)) if !t.trim().is_empty() && !c.trim().is_empty() => {
                rows.push((t.to_string(), c.trim().to_string()))
            }
            _ => return Err(err(format!("row {}: empty text or category", line + 2))),
        }
    }
    if rows.is_empty() {
        return Err(err("no queries".into()));
    }
    Ok(rows)
}

/// Splits `rows` into (train, validation), a tenth of each intent held out (see
/// [`hold_out`]), so every intent is in both parts.
pub fn validation_split(rows: &[(String, String)]) -> (Queries, Queries) {
    let mut by_intent: BTreeMap<&str, Vec<&(String, String)>> = BTreeMap::new();
    for row in rows {
        by_intent.entry(row.1.as_str()).or_default().push(row);
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for queries in by_intent.values() {
        let (t, v) = hold_out(queries, |(text, _)| text.as_str());
        train.extend(t);
        val.extend(v);
    }
    (train, val)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct EvalReport {
    pub encoder: bool,
    pub intents: usize,
    pub train_examples: usize,
    pub scored: usize,
    /// Share of scored queries whose top intent is the labelled one.
    pub accuracy: f64,
    /// Queries of an intent the training file does not have (always wrong).
    pub unknown_intents: usize,
    pub train_ms: f64,
    /// One utterance at a time, features and decision: the cost per user turn.
    pub latency: Option<LatencySummary>,
}

/// Trains on `train` and scores `scored`.
pub fn evaluate(
    train: &[(String, String)],
    scored: &[(String, String)],
    featurizer: &mut Featurizer,
    config: TrainConfig,
) -> Result<EvalReport, NluError> {
    let featurize = |featurizer: &mut Featurizer,
                     set: &[(String, String)]|
     -> Result<Vec<Features>, NluError> {
        let texts: Vec<&str> = set.iter().map(|(q, _)| q.as_str()).collect();
        featurizer.features(&texts)
    };
    let mut labels: Vec<String> = train.iter().map(|(_, i)| i.clone()).collect();
    labels.sort();
    labels.dedup();
    let index = |intent: &str| labels.binary_search_by(|l| l.as_str().cmp(intent)).ok();
    let examples: Vec<(Features, usize)> = featurize(featurizer, train)?
        .into_iter()
        .zip(train)
        .filter_map(|(f, (_, i))| index(i).map(|k| (f, k)))
        .collect();
    let start = Instant::now();
    let model = IntentModel::train(labels.clone(), &examples, config);
    let train_ms = start.elapsed().as_secs_f64() * 1000.0;

    let correct = featurize(featurizer, scored)?
        .iter()
        .zip(scored)
        .filter(|(f, (_, intent))| decide(&model, f, 0.0).intent.as_deref() == Some(intent))
        .count();
    let unknown_intents = scored.iter().filter(|(_, i)| index(i).is_none()).count();

    let mut times = Vec::new();
    let step = (scored.len() / 200).max(1);
    for (query, _) in scored.iter().step_by(step).take(200) {
        let start = Instant::now();
        let features = featurizer.features(&[query.as_str()])?;
        let _ = decide(&model, &features[0], 0.0);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(EvalReport {
        encoder: featurizer.has_encoder(),
        intents: labels.len(),
        train_examples: examples.len(),
        scored: scored.len(),
        accuracy: correct as f64 / scored.len().max(1) as f64,
        unknown_intents,
        train_ms,
        latency: LatencySummary::from_samples(&times),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, intents: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("query {i}"), format!("intent_{}", i % intents)))
            .collect()
    }

    #[test]
    fn the_validation_split_is_stratified_stable_and_disjoint() {
        let all = rows(400, 4);
        let (train, val) = validation_split(&all);
        assert_eq!(train.len() + val.len(), all.len());
        assert_eq!(val.len(), 40);
        for k in 0..4 {
            let name = format!("intent_{k}");
            assert_eq!(val.iter().filter(|(_, i)| *i == name).count(), 10);
        }
        assert!(val.iter().all(|v| !train.contains(v)));
        let mut shuffled = all.clone();
        shuffled.reverse();
        assert_eq!(validation_split(&shuffled).1.len(), val.len());
        let mut again = validation_split(&shuffled).1;
        let mut first = val.clone();
        again.sort();
        first.sort();
        assert_eq!(
            again, first,
            "the order of the file does not change the split"
        );
    }

    #[test]
    fn a_file_without_the_columns_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("hark-b77-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.csv");
        std::fs::write(&path, "query,label\nhello,greet\n").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("bad.csv") && e.contains("\"text\""), "{e}");
        std::fs::write(&path, "text,category\n\"a, quoted\",card_arrival\n").unwrap();
        assert_eq!(
            load(&path).unwrap(),
            vec![("a, quoted".to_string(), "card_arrival".to_string())]
        );
        std::fs::write(&path, "text,category\n,card_arrival\n").unwrap();
        assert!(load(&path).unwrap_err().to_string().contains("row 2"));
        std::fs::remove_dir_all(dir).ok();
    }
}
