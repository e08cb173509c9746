//! Slot values learned from data: a linear-chain CRF (the `crfs` crate, L-BFGS) over
//! lexical features of each word and its neighbours, and the slot the system had just asked
//! for ("13" after "what time?" is a time, after "how many people?" a party size). Trained
//! and scored on Restaurant8k (Coope et al., 2020) by its metric: per-slot F1 over exact
//! spans.

use std::collections::BTreeMap;
use std::path::Path;

use crfs::train::Trainer;
use crfs::{Attribute, Model};
use serde::Deserialize;

use super::{hold_out, NluError};

/// The slots Restaurant8k labels, which a trained tagger finds.
pub const LABELS: [&str; 5] = ["date", "first_name", "last_name", "people", "time"];

/// A user's message, the slots the system had asked for, and the labelled values
/// (slot, byte range in `text`).
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub requested: Vec<String>,
    pub spans: Vec<(String, usize, usize)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawExample {
    user_input: RawInput,
    #[serde(default)]
    context: RawContext,
    #[serde(default)]
    labels: Vec<RawLabel>,
}

#[derive(Deserialize)]
struct RawInput {
    text: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawContext {
    #[serde(default)]
    requested_slots: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLabel {
    slot: String,
    value_span: RawSpan,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSpan {
    #[serde(default)]
    start_index: usize,
    end_index: usize,
}

/// Reads a Restaurant8k file (a JSON list of examples; span indices count characters).
pub fn load(path: &Path) -> Result<Vec<Example>, NluError> {
    let err = |reason: String| NluError::Data {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let raw: Vec<RawExample> = serde_json::from_str(&text).map_err(|e| {
        err(format!(
            "{e} (a Restaurant8k file is a list of {{\"userInput\", \"labels\", \"context\"}})"
        ))
    })?;
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let chars: Vec<usize> = r
                .user_input
                .text
                .char_indices()
                .map(|(b, _)| b)
                .chain([r.user_input.text.len()])
                .collect();
            let byte = |c: usize| chars.get(c).copied();
            let spans = r
                .labels
                .into_iter()
                .map(
                    |l| match (byte(l.value_span.start_index), byte(l.value_span.end_index)) {
                        (Some(s), Some(e)) if s < e => Ok((l.slot, s, e)),
                        _ => Err(err(format!(
                            "example {i}: span {}..{} is outside its text",
                            l.value_span.start_index, l.value_span.end_index
                        ))),
                    },
                )
                .collect::<Result<_, _>>()?;
            Ok(Example {
                text: r.user_input.text,
                requested: r.context.requested_slots,
                spans,
            })
        })
        .collect()
}

/// Splits into (train, validation), a tenth held out (see [`hold_out`]).
pub fn validation_split(examples: &[Example]) -> (Vec<Example>, Vec<Example>) {
    let all: Vec<&Example> = examples.iter().collect();
    hold_out(&all, |e| e.text.as_str())
}

/// Words as byte ranges: runs of non-space characters, with punctuation at either end split
/// off ("4." is "4" and "."; "18:00", "a.m", "O'Brien" stay whole).
pub fn tokens(text: &str) -> Vec<(usize, usize)> {
    let is_edge = |c: char| matches!(c, '.' | ',' | '!' | '?' | ';' | '"' | '(' | ')' | ':');
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                split_edges(text, s, i, is_edge, &mut out);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

fn split_edges(
    text: &str,
    mut s: usize,
    mut e: usize,
    is_edge: impl Fn(char) -> bool,
    out: &mut Vec<(usize, usize)>,
) {
    let mut leading = Vec::new();
    while let Some(c) = text[s..e].chars().next().filter(|c| is_edge(*c)) {
        leading.push((s, s + c.len_utf8()));
        s += c.len_utf8();
    }
    let mut trailing = Vec::new();
    while let Some(c) = text[s..e].chars().next_back().filter(|c| is_edge(*c)) {
        trailing.push((e - c.len_utf8(), e));
        e -= c.len_utf8();
    }
    out.extend(leading);
    if s < e {
        out.push((s, e));
    }
    out.extend(trailing.into_iter().rev());
}

/// The word's shape: letters as x/X, digits as d, runs squeezed ("18:00" → "d:d", "Smith" → "Xx").
fn shape(word: &str) -> String {
    let mut out = String::new();
    for c in word.chars() {
        let s = if c.is_ascii_digit() {
            'd'
        } else if c.is_uppercase() {
            'X'
        } else if c.is_alphabetic() {
            'x'
        } else {
            c
        };
        if !out.ends_with(s) {
            out.push(s);
        }
    }
    out
}

fn features(text: &str, words: &[(usize, usize)], requested: &[String]) -> Vec<Vec<Attribute>> {
    let lower: Vec<String> = words
        .iter()
        .map(|&(s, e)| text[s..e].to_lowercase())
        .collect();
    let at = |i: isize| -> &str {
        if i < 0 {
            "<s>"
        } else {
            lower.get(i as usize).map_or("</s>", String::as_str)
        }
    };
    (0..words.len())
        .map(|i| {
            let (s, e) = words[i];
            let word = &text[s..e];
            let w = at(i as isize);
            let sh = shape(word);
            let chars: Vec<char> = w.chars().collect();
            let prefix: String = chars.iter().take(3).collect();
            let suffix: String = chars[chars.len().saturating_sub(3)..].iter().collect();
            let mut names = vec![
                "bias".to_string(),
                format!("w={w}"),
                format!("shape={sh}"),
                format!("pre={prefix}"),
                format!("suf={suffix}"),
                format!("w-1={}", at(i as isize - 1)),
                format!("w+1={}", at(i as isize + 1)),
                format!("w-2={}", at(i as isize - 2)),
                format!("w+2={}", at(i as isize + 2)),
                format!("w-1,w={}|{w}", at(i as isize - 1)),
                format!("w,w+1={w}|{}", at(i as isize + 1)),
            ];
            if i == 0 {
                names.push("first".into());
            }
            if requested.is_empty() {
                names.push("req=none".into());
            }
            for r in requested {
                names.push(format!("req={r}"));
                names.push(format!("req={r}|shape={sh}"));
                names.push(format!("req={r}|w={w}"));
                if words.len() <= 3 {
                    names.push(format!("req={r}|short"));
                }
            }
            names.into_iter().map(|n| Attribute::new(n, 1.0)).collect()
        })
        .collect()
}

/// BIO labels of the words from labelled spans: a word inside a span is part of it.
fn labels(words: &[(usize, usize)], spans: &[(String, usize, usize)]) -> Vec<String> {
    let mut out = vec!["O".to_string(); words.len()];
    for (slot, s, e) in spans {
        let mut first = true;
        for (i, &(ws, we)) in words.iter().enumerate() {
            if ws >= *s && we <= *e {
                out[i] = format!("{}-{slot}", if first { "B" } else { "I" });
                first = false;
            }
        }
    }
    out
}

/// Spans (slot, start, end) of BIO labels: a B, or an I after another slot, opens one.
fn spans_of(words: &[(usize, usize)], labels: &[&str]) -> Vec<(String, usize, usize)> {
    let mut out: Vec<(String, usize, usize)> = Vec::new();
    let mut open = false;
    for (&(s, e), label) in words.iter().zip(labels) {
        match label.split_once('-') {
            Some(("I", slot)) if open && out.last().is_some_and(|l| l.0 == slot) => {
                if let Some(last) = out.last_mut() {
                    last.2 = e;
                }
            }
            Some((_, slot)) => {
                out.push((slot.to_string(), s, e));
                open = true;
            }
            None => open = false,
        }
    }
    out
}

/// A trained tagger (the model as CRFsuite writes it).
pub struct SlotTagger {
    model: Vec<u8>,
}

impl std::fmt::Debug for SlotTagger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotTagger({} bytes)", self.model.len())
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TaggerConfig {
    pub c1: f64,
    pub c2: f64,
    pub max_iterations: usize,
}

impl Default for TaggerConfig {
    fn default() -> Self {
        Self {
            c1: 0.05,
            c2: 0.01,
            max_iterations: 150,
        }
    }
}

impl SlotTagger {
    pub fn train(examples: &[Example], config: TaggerConfig) -> Result<Self, NluError> {
        let bad = |e: std::io::Error| NluError::BadModel(format!("slot tagger: {e}"));
        let mut trainer = Trainer::lbfgs();
        trainer.params_mut().set_c1(config.c1).map_err(bad)?;
        trainer.params_mut().set_c2(config.c2).map_err(bad)?;
        trainer
            .params_mut()
            .set_max_iterations(config.max_iterations)
            .map_err(bad)?;
        for e in examples {
            let words = tokens(&e.text);
            if words.is_empty() {
                continue;
            }
            let x = features(&e.text, &words, &e.requested);
            let y = labels(&words, &e.spans);
            trainer.append(&x, &y).map_err(bad)?;
        }
        // crfs writes the model to a file; one name per training in this process.
        static TRAININGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = TRAININGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let file =
            std::env::temp_dir().join(format!("hark-slots-{}-{n}.crfsuite", std::process::id()));
        let trained = trainer.train(&file).map_err(bad);
        let model = trained.and_then(|()| std::fs::read(&file).map_err(bad));
        std::fs::remove_file(&file).ok();
        let model = model?;
        Model::new(&model).map_err(bad)?;
        Ok(Self { model })
    }

    /// A tagger saved by [`SlotTagger::save`] (or any CRFsuite model with these labels).
    pub fn load(path: &Path) -> Result<Self, NluError> {
        let bad = |reason: String| NluError::BadModel(format!("{}: {reason}", path.display()));
        let model = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        Model::new(&model).map_err(|e| bad(format!("not a CRFsuite model ({e})")))?;
        Ok(Self { model })
    }

    pub fn save(&self, path: &Path) -> Result<(), NluError> {
        let bad = |e: std::io::Error| NluError::BadModel(format!("{}: {e}", path.display()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(bad)?;
        }
        // Written whole, then renamed: a tagger cut short by a full disk is never loaded.
        let partial = path.with_extension("partial");
        let written =
            std::fs::write(&partial, &self.model).and_then(|()| std::fs::rename(&partial, path));
        if written.is_err() {
            std::fs::remove_file(&partial).ok();
        }
        written.map_err(bad)
    }

    /// The slot values in `text` (slot, start, end), given the slots just asked for.
    pub fn tag(&self, text: &str, requested: &[String]) -> Vec<(String, usize, usize)> {
        let words = tokens(text);
        if words.is_empty() {
            return Vec::new();
        }
        let Ok(model) = Model::new(&self.model) else {
            return Vec::new();
        };
        let Ok(tagger) = model.tagger() else {
            return Vec::new();
        };
        match tagger.tag(&features(text, &words, requested)) {
            Ok(labels) => spans_of(&words, &labels),
            Err(_) => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SlotScore {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotsReport {
    pub train_examples: usize,
    pub scored: usize,
    pub slots: BTreeMap<String, SlotScore>,
    /// The mean of the per-slot F1.
    pub average_f1: f64,
    pub train_ms: f64,
    pub latency: Option<crate::telemetry::LatencySummary>,
}

fn trimmed(text: &str, s: usize, e: usize) -> (usize, usize) {
    let inner = &text[s..e];
    let start = s + (inner.len() - inner.trim_start().len());
    (start, start + inner.trim().len())
}

/// Trains on `train` and scores `scored` by exact spans (after trimming spaces).
pub fn evaluate(
    train: &[Example],
    scored: &[Example],
    config: TaggerConfig,
) -> Result<SlotsReport, NluError> {
    let start = std::time::Instant::now();
    let tagger = SlotTagger::train(train, config)?;
    let train_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
    let mut times = Vec::new();
    for e in scored {
        let t = std::time::Instant::now();
        let predicted = tagger.tag(&e.text, &e.requested);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let norm = |spans: &[(String, usize, usize)]| -> Vec<(String, (usize, usize))> {
            spans
                .iter()
                .map(|(slot, s, en)| (slot.clone(), trimmed(&e.text, *s, *en)))
                .collect()
        };
        let (gold, guess) = (norm(&e.spans), norm(&predicted));
        for g in &gold {
            let c = counts.entry(g.0.clone()).or_default();
            if guess.contains(g) {
                c.0 += 1;
            } else {
                c.2 += 1;
            }
        }
        for p in guess.iter().filter(|p| !gold.contains(p)) {
            counts.entry(p.0.clone()).or_default().1 += 1;
        }
    }
    let slots: BTreeMap<String, SlotScore> = counts
        .into_iter()
        .map(|(slot, (tp, fp, fn_))| {
            let precision = tp as f64 / (tp + fp).max(1) as f64;
            let recall = tp as f64 / (tp + fn_).max(1) as f64;
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            (
                slot,
                SlotScore {
                    precision,
                    recall,
                    f1,
                    support: tp + fn_,
                },
            )
        })
        .collect();
    let average_f1 = slots.values().map(|s| s.f1).sum::<f64>() / slots.len().max(1) as f64;
    Ok(SlotsReport {
        train_examples: train.len(),
        scored: scored.len(),
        slots,
        average_f1,
        train_ms,
        latency: crate::telemetry::LatencySummary::from_samples(&times),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_off_punctuation_but_keep_times_and_names() {
        let text = "For 4. At 18:00, O'Brien (a.m.)";
        let words: Vec<&str> = tokens(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(
            words,
            ["For", "4", ".", "At", "18:00", ",", "O'Brien", "(", "a.m", ".", ")"]
        );
    }

    #[test]
    fn labels_and_spans_round_trip() {
        let text = "table for 5 people at 7 pm please";
        let words = tokens(text);
        let gold = vec![("people".to_string(), 10, 18), ("time".to_string(), 22, 26)];
        let y = labels(&words, &gold);
        let refs: Vec<&str> = y.iter().map(String::as_str).collect();
        assert_eq!(
            refs,
            ["O", "O", "B-people", "I-people", "O", "B-time", "I-time", "O"]
        );
        assert_eq!(spans_of(&words, &refs), gold);
    }

    #[test]
    fn a_stray_inside_label_opens_a_span() {
        let words = [(0, 1), (2, 3), (4, 5)];
        assert_eq!(
            spans_of(&words, &["I-time", "B-date", "I-time"]),
            vec![
                ("time".to_string(), 0, 1),
                ("date".to_string(), 2, 3),
                ("time".to_string(), 4, 5)
            ]
        );
    }

    #[test]
    fn shapes_squeeze_runs() {
        assert_eq!(shape("18:00"), "d:d");
        assert_eq!(shape("Smith"), "Xx");
        assert_eq!(shape("7pm"), "dx");
    }
}
