//! The spoken-command benchmark: recordings with their labels, read clean and with noise
//! mixed in at several SNRs, scored by **command acceptance rate**: a command counts when
//! the intent is right and every labelled slot has exactly the labelled value (spaces
//! trimmed); slots the label does not mention are not penalised.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CommandReader, SpokenCommand, SpokenError};
use crate::audio::noise::{mix_at_snr, NoiseError};
use crate::audio::wav;
use crate::rng::{seed_from, SplitMix};
use crate::telemetry::LatencySummary;

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: {reason}")]
    Labels { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Audio { path: PathBuf, reason: String },
    #[error("no WAV file in {dir} has a label in {labels}")]
    NothingToEvaluate { dir: PathBuf, labels: PathBuf },
    // Causes are part of the messages, not `source`s (printed again by error chains).
    #[error("{path}: {error}")]
    Noise { path: PathBuf, error: NoiseError },
    #[error("a noisy condition needs a noise recording")]
    NoNoise,
    #[error("{path}: {error}")]
    Reading { path: PathBuf, error: SpokenError },
}

/// What a recording asks for.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct Label {
    pub intent: String,
    #[serde(default)]
    pub slots: BTreeMap<String, String>,
}

/// Labels by file name: `{"file.wav": {"intent": "...", "slots": {...}}}`.
pub fn load_labels(path: &Path) -> Result<BTreeMap<String, Label>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::Labels {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| EvalError::Labels {
        path: path.to_path_buf(),
        reason: format!("not a labels file ({{\"file.wav\": {{\"intent\", \"slots\"}}}}): {e}"),
    })
}

/// Whether `command` is what `label` asked for.
pub fn accepted(label: &Label, intent: Option<&str>, slots: &BTreeMap<String, String>) -> bool {
    intent == Some(label.intent.as_str())
        && label
            .slots
            .iter()
            .all(|(slot, value)| slots.get(slot).map(|v| v.trim()) == Some(value.trim()))
}

/// A test condition: the recordings as they are, or with noise at an SNR.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Condition {
    Clean,
    Snr(f64),
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Condition::Clean => write!(f, "clean"),
            Condition::Snr(db) => write!(f, "{db} dB"),
        }
    }
}

/// One command's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub condition: String,
    pub file: String,
    pub accepted: bool,
    pub expected: Label,
    pub command: SpokenCommand,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConditionScore {
    pub condition: String,
    pub commands: usize,
    pub accepted: usize,
    /// Accepted commands, percent.
    pub acceptance_rate: f64,
    /// Commands whose intent was right, percent.
    pub intent_rate: f64,
    /// Per command in this condition, from audio to meaning.
    pub latency: Option<LatencySummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpokenReport {
    pub conditions: Vec<ConditionScore>,
    /// Acceptance averaged over the noisy conditions (the published benchmark's figure).
    pub noisy_average: Option<f64>,
    /// Per command, from audio to meaning, over all conditions.
    pub latency: Option<LatencySummary>,
    /// Per command, speech recognition only.
    pub decode: Option<LatencySummary>,
    pub files: usize,
}

/// A recording (speech or noise) as 16 kHz mono samples.
pub fn read_recording(path: &Path) -> Result<Vec<f32>, EvalError> {
    wav::read_wav_for_speech(path)
        .map(|pcm| pcm.samples)
        .map_err(|e| EvalError::Audio {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

/// Reads every labelled recording in `data_dir` under each condition. The noise stretch
/// for a file and SNR comes from a generator seeded with both, so results do not depend on
/// the order or the subset of files. `on_outcome` sees each command as it is scored.
pub fn evaluate(
    reader: &mut CommandReader,
    data_dir: &Path,
    labels_path: &Path,
    noise: Option<&[f32]>,
    conditions: &[Condition],
    on_outcome: &mut dyn FnMut(&Outcome),
) -> Result<SpokenReport, EvalError> {
    let labels = load_labels(labels_path)?;
    let files = labelled_files(data_dir, labels_path, &labels)?;
    // (accepted, intent right) per condition. Each recording is read once and goes through
    // every condition, so memory holds one recording, not the corpus.
    let mut tallies = vec![(0usize, 0usize); conditions.len()];
    let mut condition_latencies = vec![Vec::new(); conditions.len()];
    let mut latencies = Vec::new();
    let mut decodes = Vec::new();
    for (path, name) in &files {
        let speech = read_recording(path)?;
        let label = &labels[name];
        for ((&condition, tally), times) in conditions
            .iter()
            .zip(&mut tallies)
            .zip(&mut condition_latencies)
        {
            let command = read_in_condition(reader, &speech, condition, noise, path, name)?;
            let ok = accepted(label, command.intent.as_deref(), &command.slots);
            tally.0 += usize::from(ok);
            tally.1 += usize::from(command.intent.as_deref() == Some(label.intent.as_str()));
            latencies.push(command.ms);
            times.push(command.ms);
            decodes.push(command.decode_ms);
            on_outcome(&Outcome {
                condition: condition.to_string(),
                file: name.clone(),
                accepted: ok,
                expected: label.clone(),
                command,
            });
        }
    }
    Ok(report(
        conditions,
        &tallies,
        &condition_latencies,
        &latencies,
        &decodes,
        files.len(),
    ))
}

/// The WAV files in `data_dir` that have a label, with their names, in order (an error when
/// there are none).
fn labelled_files(
    data_dir: &Path,
    labels_path: &Path,
    labels: &BTreeMap<String, Label>,
) -> Result<Vec<(PathBuf, String)>, EvalError> {
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(data_dir)
        .map_err(|e| EvalError::Audio {
            path: data_dir.to_path_buf(),
            reason: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            labels.contains_key(&name).then_some((p, name))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(EvalError::NothingToEvaluate {
            dir: data_dir.to_path_buf(),
            labels: labels_path.to_path_buf(),
        });
    }
    Ok(files)
}

/// The command `reader` hears in the recording `name` (at `path`) under `condition`: as it
/// is, or with noise mixed in at the SNR from a stretch seeded with the name and the SNR.
fn read_in_condition(
    reader: &mut CommandReader,
    speech: &[f32],
    condition: Condition,
    noise: Option<&[f32]>,
    path: &Path,
    name: &str,
) -> Result<SpokenCommand, EvalError> {
    let mixed;
    let audio: &[f32] = match condition {
        Condition::Clean => speech,
        Condition::Snr(db) => {
            let noise = noise.ok_or(EvalError::NoNoise)?;
            let mut rng = SplitMix::new(seed_from(&format!("{name}@{db}")));
            mixed = mix_at_snr(speech, noise, db, &mut rng).map_err(|error| EvalError::Noise {
                path: path.to_path_buf(),
                error,
            })?;
            &mixed
        }
    };
    reader.read(audio).map_err(|error| EvalError::Reading {
        path: path.to_path_buf(),
        error,
    })
}

/// The report of `n` recordings read under `conditions`: each condition's score from its
/// tally (accepted, intent right) and latencies, the noisy conditions' average, and the
/// latencies over all.
fn report(
    conditions: &[Condition],
    tallies: &[(usize, usize)],
    condition_latencies: &[Vec<f64>],
    latencies: &[f64],
    decodes: &[f64],
    n: usize,
) -> SpokenReport {
    let scores: Vec<ConditionScore> = conditions
        .iter()
        .zip(tallies)
        .zip(condition_latencies)
        .map(
            |((condition, &(accepted_count, intent_right)), times)| ConditionScore {
                condition: condition.to_string(),
                commands: n,
                accepted: accepted_count,
                acceptance_rate: 100.0 * accepted_count as f64 / n as f64,
                intent_rate: 100.0 * intent_right as f64 / n as f64,
                latency: LatencySummary::from_samples(times),
            },
        )
        .collect();
    let noisy: Vec<f64> = conditions
        .iter()
        .zip(&scores)
        .filter(|(c, _)| matches!(c, Condition::Snr(_)))
        .map(|(_, s)| s.acceptance_rate)
        .collect();
    SpokenReport {
        noisy_average: (!noisy.is_empty()).then(|| noisy.iter().sum::<f64>() / noisy.len() as f64),
        conditions: scores,
        latency: LatencySummary::from_samples(latencies),
        decode: LatencySummary::from_samples(decodes),
        files: n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptance_needs_the_intent_and_every_labelled_slot() {
        let label = Label {
            intent: "orderDrink".into(),
            slots: [("coffeeDrink", "mocha"), ("milkAmount", " milk")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        };
        let slots = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let both = slots(&[("coffeeDrink", "mocha"), ("milkAmount", "milk")]);
        assert!(
            accepted(&label, Some("orderDrink"), &both),
            "spaces are trimmed"
        );
        let extra = slots(&[
            ("coffeeDrink", "mocha"),
            ("milkAmount", "milk"),
            ("size", "small"),
        ]);
        assert!(
            accepted(&label, Some("orderDrink"), &extra),
            "extra slots are fine"
        );
        assert!(!accepted(&label, None, &both));
        let wrong = slots(&[("coffeeDrink", "mocha"), ("milkAmount", "some milk")]);
        assert!(!accepted(&label, Some("orderDrink"), &wrong));
        let missing = slots(&[("coffeeDrink", "mocha")]);
        assert!(!accepted(&label, Some("orderDrink"), &missing));
    }
}
