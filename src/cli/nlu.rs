//! `hark nlu eval`: intent recognition on CLINC150 and Banking77.

use std::path::PathBuf;

use std::time::Instant;

use anyhow::{bail, Result};

use hark::models::ModelDir;
use hark::nlu::{encoder::SentenceEncoder, Featurizer};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DatasetFormat {
    /// CLINC150's data_full.json (--data).
    Clinc150,
    /// Banking77 CSV files, `text,category` (--train, optionally --test).
    Banking77,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    #[arg(long, value_enum, default_value = "clinc150")]
    format: DatasetFormat,
    /// CLINC150's data_full.json.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Banking77: the file to train on.
    #[arg(long)]
    train: Option<PathBuf>,
    /// Banking77: the file to score; without it, a fixed stratified 10 % of --train.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Lexical features only (no sentence encoder).
    #[arg(long)]
    lexical_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// CLINC150 development run: show only the val figures (test is for the one final report).
    #[arg(long)]
    dev: bool,
}

pub fn nlu_eval(models: &ModelDir, threads: usize, args: EvalArgs) -> Result<()> {
    // The data first: a wrong file is reported before the encoder takes its time to load.
    match (args.format, &args.data, &args.train) {
        (DatasetFormat::Clinc150, Some(data), None) => {
            let data = hark::nlu::clinc::load(data)?;
            let mut featurizer = featurizer(models, threads, args.lexical_only)?;
            clinc150(&mut featurizer, &data, args.json, args.dev)
        }
        (DatasetFormat::Clinc150, _, _) => bail!("CLINC150 takes --data data_full.json"),
        (DatasetFormat::Banking77, None, Some(train)) => {
            use hark::nlu::banking77;
            let rows = banking77::load(train)?;
            let (train, scored, split) = match &args.test {
                Some(test) => (rows, banking77::load(test)?, "test"),
                None => {
                    let (train, val) = banking77::validation_split(&rows);
                    (train, val, "val")
                }
            };
            let mut featurizer = featurizer(models, threads, args.lexical_only)?;
            self::banking77(&mut featurizer, &train, &scored, split, args.json)
        }
        (DatasetFormat::Banking77, _, _) => {
            bail!("Banking77 takes --train TRAIN.csv and optionally --test TEST.csv")
        }
    }
}

fn featurizer(models: &ModelDir, threads: usize, lexical_only: bool) -> Result<Featurizer> {
    let encoder = if lexical_only {
        None
    } else {
        Some(SentenceEncoder::from_models(models, threads)?)
    };
    Ok(Featurizer::new(encoder))
}

fn banking77(
    featurizer: &mut Featurizer,
    train: &[(String, String)],
    scored: &[(String, String)],
    split: &str,
    json: bool,
) -> Result<()> {
    use hark::nlu::banking77;
    let start = Instant::now();
    let report = banking77::evaluate(train, scored, featurizer, Default::default())?;
    if json {
        return print_json(&report, split);
    }
    println!(
        "Banking77 ({} intents, {} training queries; features: {})",
        report.intents,
        report.train_examples,
        features_name(report.encoder)
    );
    if report.unknown_intents > 0 {
        println!(
            "{} scored queries have an intent the training file lacks (counted wrong)",
            report.unknown_intents
        );
    }
    println!(
        "{split}: accuracy {:.1} % ({} queries)",
        report.accuracy * 100.0,
        report.scored
    );
    print_cost(report.latency, report.train_ms, start);
    Ok(())
}

/// The report as one JSON line, with which split was scored.
fn print_json(report: &impl serde::Serialize, split: &str) -> Result<()> {
    let mut value = serde_json::to_value(report)?;
    value["split"] = split.into();
    println!("{value}");
    Ok(())
}

fn print_cost(latency: Option<hark::telemetry::LatencySummary>, train_ms: f64, start: Instant) {
    if let Some(l) = latency {
        println!(
            "per utterance: {l}; training {:.1} s; total {:.1} s",
            train_ms / 1000.0,
            start.elapsed().as_secs_f64()
        );
    }
}

fn features_name(encoder: bool) -> &'static str {
    if encoder {
        "MiniLM embedding + lexical n-grams"
    } else {
        "lexical n-grams"
    }
}

fn clinc150(
    featurizer: &mut Featurizer,
    data: &hark::nlu::clinc::ClincData,
    json: bool,
    dev: bool,
) -> Result<()> {
    use hark::nlu::clinc;
    let start = Instant::now();
    let mut report = clinc::evaluate(data, featurizer, Default::default())?;
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
        features_name(report.encoder)
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
    print_cost(report.latency, report.train_ms, start);
    Ok(())
}

#[derive(clap::Args)]
pub struct SlotsEvalArgs {
    /// Restaurant8k JSON to train on.
    #[arg(long)]
    train: PathBuf,
    /// Restaurant8k JSON to score; without it, a fixed 10 % of --train.
    #[arg(long)]
    test: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// L-BFGS iterations (fewer train faster and score a little lower).
    #[arg(long, default_value_t = hark::nlu::slots::TaggerConfig::default().max_iterations)]
    max_iterations: usize,
}

pub fn slots_eval(args: SlotsEvalArgs) -> Result<()> {
    use hark::nlu::slots;
    let examples = slots::load(&args.train)?;
    let (train, scored, split) = match &args.test {
        Some(test) => (examples, slots::load(test)?, "test"),
        None => {
            let (train, val) = slots::validation_split(&examples);
            (train, val, "val")
        }
    };
    let config = slots::TaggerConfig {
        max_iterations: args.max_iterations,
        ..Default::default()
    };
    let report = slots::evaluate(&train, &scored, config)?;
    if args.json {
        return print_json(&report, split);
    }
    println!(
        "Restaurant8k slots ({} training examples; linear-chain CRF over lexical features and the requested slot)",
        report.train_examples
    );
    for (slot, s) in &report.slots {
        println!(
            "    {slot:<10} F1 {:.3}  (precision {:.3}, recall {:.3}, {} values)",
            s.f1, s.precision, s.recall, s.support
        );
    }
    println!(
        "{split}: average F1 {:.3} ({} examples)",
        report.average_f1, report.scored
    );
    if let Some(l) = report.latency {
        println!(
            "per utterance: {l}; training {:.1} s",
            report.train_ms / 1000.0
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct SlotsTrainArgs {
    /// Restaurant8k JSON to train on.
    #[arg(long)]
    train: PathBuf,
    /// Where to save the tagger (default: the models folder's slots/restaurant8k.crfsuite).
    #[arg(long)]
    out: Option<PathBuf>,
    /// L-BFGS iterations (fewer train faster and score a little lower).
    #[arg(long, default_value_t = hark::nlu::slots::TaggerConfig::default().max_iterations)]
    max_iterations: usize,
}

pub fn slots_train(models: &ModelDir, args: SlotsTrainArgs) -> Result<()> {
    use hark::nlu::slots;
    let start = Instant::now();
    let examples = slots::load(&args.train)?;
    let config = slots::TaggerConfig {
        max_iterations: args.max_iterations,
        ..Default::default()
    };
    let tagger = slots::SlotTagger::train(&examples, config)?;
    let out = args.out.unwrap_or_else(|| models.slot_tagger());
    tagger.save(&out)?;
    println!(
        "slot tagger: {} examples, {} iterations, {:.1} s -> {}",
        examples.len(),
        config.max_iterations,
        start.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct SlotsTagArgs {
    /// The slots the system had just asked for, comma-separated (e.g. first_name,last_name).
    #[arg(long, value_delimiter = ',')]
    requested: Vec<String>,
}

pub fn slots_tag(models: &ModelDir, args: SlotsTagArgs) -> Result<()> {
    use std::io::BufRead;
    let path = models.slot_tagger();
    if !path.exists() {
        bail!(
            "no slot tagger at {} (scripts/setup.sh trains one; or `hark nlu slots train`)",
            path.display()
        );
    }
    let tagger = hark::nlu::slots::SlotTagger::load(&path)?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let spans: Vec<String> = tagger
            .tag(&line, &args.requested)
            .into_iter()
            .map(|(slot, s, e)| format!("{slot}={:?}", &line[s..e]))
            .collect();
        println!("{line}\t{}", spans.join(" "));
    }
    Ok(())
}
