//! `hark nlu eval`: intent recognition on CLINC150.

use std::path::Path;

use std::time::Instant;

use anyhow::Result;

use hark::models::ModelDir;

pub fn nlu_eval(
    models: &ModelDir,
    threads: usize,
    data: &Path,
    lexical_only: bool,
    json: bool,
    dev: bool,
) -> Result<()> {
    use hark::nlu::{clinc, encoder::SentenceEncoder, Featurizer};
    let data = clinc::load(data)?;
    let encoder = if lexical_only {
        None
    } else {
        Some(SentenceEncoder::open(
            &models.sentence_encoder(),
            &models.sentence_encoder_vocab(),
            &models.onnxruntime(),
            threads,
        )?)
    };
    let mut featurizer = Featurizer::new(encoder);
    let start = Instant::now();
    let mut report = clinc::evaluate(&data, &mut featurizer, Default::default())?;
    if dev {
        report.test = clinc::Scores {
            in_scope_accuracy: f64::NAN,
            oos_recall: f64::NAN,
        };
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    println!(
        "CLINC150 ({} intents + out-of-scope, {} training queries; features: {})",
        report.intents - 1,
        report.train_examples,
        if report.encoder {
            "MiniLM embedding + lexical n-grams"
        } else {
            "lexical n-grams"
        }
    );
    println!(
        "tuned on val: threshold {:.2}, temperature {:.2} (val: in-scope accuracy {}, OOS recall {})",
        report.threshold,
        report.temperature,
        pct(report.val.in_scope_accuracy),
        pct(report.val.oos_recall)
    );
    if dev {
        for (t, acc, recall) in &report.val_curve {
            println!(
                "    val at threshold {t:.1}: in-scope {}, OOS recall {}",
                pct(*acc),
                pct(*recall)
            );
        }
    }
    println!(
        "test: in-scope accuracy {}, out-of-scope recall {}",
        pct(report.test.in_scope_accuracy),
        pct(report.test.oos_recall)
    );
    if let Some(l) = report.latency {
        println!(
            "per utterance: {l}; training {:.1} s; total {:.1} s",
            report.train_ms / 1000.0,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
