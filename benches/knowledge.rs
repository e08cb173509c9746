//! Knowledge answers: calibration and speed. `cargo bench --bench knowledge`
//!
//! 1. Calibrates the scoring on the tuning half of the validation questions about Larkspur's
//!    help document (`tests/data/knowledge/larkspur-questions.jsonl`): every weight of the
//!    grid, the threshold that best separates questions the document answers (with the
//!    right fact) from those it does not; prints the best and the figures of the built-in
//!    scoring on both halves (report the check half).
//! 2. Indexes 1,000 passages (Banking77's customer messages, three to a passage under their
//!    category, from `../shared/data/banking77`) and times the index at a first start and at
//!    the next (the encoder's meanings cached), and each lookup.

use std::path::Path;
use std::time::Instant;

#[path = "../tests/common/knowledge_questions.rs"]
mod questions;

use questions::Question;

use hark::knowledge::{Evidence, Found, Knowledge, Scoring, SPOKEN_WORDS};
use hark::models::ModelDir;
use hark::nlu::encoder::SentenceEncoder;
use hark::nlu::Featurizer;

/// Answered right (the answer carries a fact, or no answer where the document has none).
fn right(found: &Found, facts: &Option<Vec<String>>) -> bool {
    match (found, facts) {
        (Found::Answer { text, .. }, Some(facts)) => {
            let text = text.to_lowercase();
            facts.iter().any(|f| text.contains(f.as_str()))
        }
        (Found::Nothing { .. }, None) => true,
        _ => false,
    }
}

/// (answerable answered right, of; unanswerable declined, of).
fn score(
    k: &Knowledge,
    evidence: &[(&Question, Evidence)],
    scoring: &Scoring,
) -> (usize, usize, usize, usize) {
    let (mut a, mut na, mut u, mut nu) = (0, 0, 0, 0);
    for (q, e) in evidence {
        let ok = right(&k.found(e, scoring, SPOKEN_WORDS), &q.facts);
        if q.facts.is_some() {
            na += 1;
            a += ok as usize;
        } else {
            nu += 1;
            u += ok as usize;
        }
    }
    (a, na, u, nu)
}

fn balanced((a, na, u, nu): (usize, usize, usize, usize)) -> f64 {
    (a as f64 / na.max(1) as f64 + u as f64 / nu.max(1) as f64) / 2.0
}

fn calibrate(k: &Knowledge, tune: &[(&Question, Evidence)]) -> Scoring {
    let mut best = (f64::MIN, Scoring::default());
    for passage in [0.0, 0.25, 0.5, 0.75, 1.0] {
        for words in [0.0, 0.25, 0.5, 0.75, 1.0] {
            let mut scoring = Scoring {
                passage,
                words,
                threshold: 0.0,
            };
            // Every best score is a candidate threshold (just above it declines it).
            let mut cuts: Vec<f32> = tune
                .iter()
                .filter_map(|(_, e)| e.best(&scoring).map(|(_, s)| s))
                .collect();
            cuts.sort_by(f32::total_cmp);
            for pair in cuts.windows(2) {
                scoring.threshold = (pair[0] + pair[1]) / 2.0;
                let b = balanced(score(k, tune, &scoring));
                if b > best.0 {
                    best = (b, scoring);
                }
            }
        }
    }
    best.1
}

fn report(name: &str, figures: (usize, usize, usize, usize)) {
    let (a, na, u, nu) = figures;
    println!(
        "| {name} | {a} of {na} ({:.0} %) | {u} of {nu} ({:.0} %) |",
        100.0 * a as f64 / na.max(1) as f64,
        100.0 * u as f64 / nu.max(1) as f64
    );
}

fn banking77_passages(root: &Path, passages: usize) -> Option<Vec<(String, String)>> {
    let text = std::fs::read_to_string(root.join("../shared/data/banking77/train.csv")).ok()?;
    let mut by_category: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for line in text.lines().skip(1) {
        let Some((message, category)) = line.rsplit_once(',') else {
            continue;
        };
        let mut sentence = message.trim_matches('"').trim().to_string();
        if !sentence.ends_with(['.', '?', '!']) {
            sentence.push('.');
        }
        by_category
            .entry(category.replace('_', " "))
            .or_default()
            .push(sentence);
    }
    let mut doc = String::new();
    let mut made = 0;
    'outer: for (category, messages) in &by_category {
        doc.push_str(&format!("## {category}\n\n"));
        for three in messages.chunks(3) {
            doc.push_str(&three.join(" "));
            doc.push_str("\n\n");
            made += 1;
            if made == passages {
                break 'outer;
            }
        }
    }
    Some(vec![("banking".to_string(), doc)])
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let models = ModelDir::new(root.join("models"));
    let encoder = SentenceEncoder::from_models(&models, hark::default_threads())
        .expect("run scripts/setup.sh");
    let featurizer = Featurizer::new(Some(encoder));
    let doc = root.join("../shared/data/knowledge/larkspur-help.md");
    let started = Instant::now();
    let k = Knowledge::load(&[doc], featurizer.clone()).expect("the Larkspur help document");
    println!(
        "machine: {}\nLarkspur help: {} passages indexed in {:.0} ms",
        hark::telemetry::machine(),
        k.passages().len(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let all = questions::load(root);
    let evidence: Vec<(&Question, Evidence)> = all
        .iter()
        .map(|q| (q, k.evidence(&q.text).unwrap()))
        .collect();
    let half = |split: &str| -> Vec<(&Question, Evidence)> {
        evidence
            .iter()
            .filter(|(q, _)| q.split == split)
            .map(|(q, e)| (*q, e.clone()))
            .collect()
    };
    let (tune, check) = (half("tune"), half("check"));
    let tuned = calibrate(&k, &tune);
    println!("\ncalibrated on the tuning half: {tuned:?}");
    println!("built in: {:?}\n", Scoring::default());
    println!("| questions (built-in scoring) | answerable, with the right fact | unanswerable, declined |");
    println!("|---|---|---|");
    report("tuning half", score(&k, &tune, &Scoring::default()));
    report("check half", score(&k, &check, &Scoring::default()));
    report("tuning half, calibrated", score(&k, &tune, &tuned));
    if std::env::var_os("HARK_BENCH_VERBOSE").is_some() {
        // The tuning half's mistakes only: the check half stays unseen.
        for (q, e) in &tune {
            let found = k.found(e, &tuned, SPOKEN_WORDS);
            if !right(&found, &q.facts) {
                println!("wrong: {:?} → {found:?}", q.text);
            }
        }
    }

    if std::env::var_os("HARK_KNOWLEDGE_QUALITY_ONLY").is_some() {
        return;
    }
    let Some(docs) = banking77_passages(root, 1000) else {
        println!("\n(no ../shared/data/banking77: the 1,000-passage timing is skipped)");
        return;
    };
    // A first start (nothing cached) and a second (the meanings kept by the first), with a
    // cache file of the bench's own.
    let cache =
        std::env::temp_dir().join(format!("hark-bench-meanings-{}.bin", std::process::id()));
    std::fs::remove_file(&cache).ok();
    let started = Instant::now();
    Knowledge::build_cached(&docs, featurizer.clone(), Some(&cache)).unwrap();
    let index_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let big = Knowledge::build_cached(&docs, featurizer, Some(&cache)).unwrap();
    let again_s = started.elapsed().as_secs_f64();
    std::fs::remove_file(&cache).ok();
    let mut times = Vec::new();
    for q in &all {
        let t = Instant::now();
        big.lookup(&q.text, SPOKEN_WORDS).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "\n{} passages ({} sentences of Banking77) indexed in {index_s:.2} s at a first start, {again_s:.2} s at the next (meanings cached); lookup P50 {:.1} ms, P95 {:.1} ms ({} questions)",
        big.passages().len(),
        big.passages().iter().map(|p| p.sentences.len()).sum::<usize>(),
        at(0.5),
        at(0.95),
        times.len()
    );
}
