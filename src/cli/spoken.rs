//! `hark understand`, `hark eval spoken` and `hark domain`: spoken commands of a domain.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::json;

use hark::audio::wav;
use hark::domain;
use hark::domain::expressions::import_rhino;
use hark::models::convert::quantize::quantized_from;
use hark::models::ModelDir;
use hark::spoken::eval::{evaluate, read_recording, Condition, Outcome};
use hark::spoken::CommandReader;
use hark::stt::whisper::WhisperModel;

/// How commands are recognised: shared by `understand` and `eval spoken`.
#[derive(clap::Args)]
pub struct ReaderArgs {
    /// Domain name under config/domains, or a domain folder.
    #[arg(long, default_value = "customer-service")]
    pub domain: String,
    /// The 8-bit copy of tiny.en by default (scripts/setup.sh makes it): as accurate on the
    /// barista dev set, 15 % faster.
    #[arg(long, default_value = "tiny.en-q8_0")]
    pub model: String,
    /// Recognise without the domain's vocabulary prompt.
    #[arg(long)]
    pub no_biasing: bool,
    /// Recognise any sentence, even where the domain's templates define a grammar.
    #[arg(long)]
    pub no_grammar: bool,
    /// Keep the sentence the grammar-held decoder wrote, without comparing it with the same
    /// sentence with another value of a slot.
    #[arg(long)]
    pub no_rescoring: bool,
}

/// Loads the domain, its intent recognizer and Whisper once.
fn reader(models: &ModelDir, threads: usize, args: &ReaderArgs) -> Result<CommandReader> {
    let dir = domain::resolve(&args.domain, &super::conversation::domains_dir())?;
    let manager = hark::dialogue::build_manager(&dir, models, threads, &Default::default())
        .with_context(|| format!("domain {}", dir.display()))?;
    let path = models.whisper(&args.model);
    if let Some(base) = quantized_from(&args.model) {
        if !path.exists() && models.whisper(base).exists() {
            bail!(
                "{} not found: make it with `hark models quantize {base}` (scripts/setup.sh does)",
                path.display()
            );
        }
    }
    let whisper = WhisperModel::load(&path, threads)?;
    let mut reader = CommandReader::new(Box::new(whisper.session()?), manager);
    if args.no_biasing {
        reader = reader.without_biasing();
    }
    if args.no_grammar {
        reader = reader.without_grammar();
    }
    if args.no_rescoring {
        reader = reader.without_rescoring();
    }
    reader.warm_up()?;
    Ok(reader)
}

pub fn understand(
    models: &ModelDir,
    threads: usize,
    files: &[PathBuf],
    args: &ReaderArgs,
    json_output: bool,
) -> Result<()> {
    if files.is_empty() {
        bail!("no WAV files given: hark understand --domain NAME FILE.wav [FILE.wav …]");
    }
    let mut reader = reader(models, threads, args)?;
    let mut failures = 0;
    for file in files {
        // One bad file is reported and skipped; the others are still read.
        let result = (|| -> Result<_> {
            let pcm = wav::read_wav_for_speech(file)?;
            Ok(reader.read(&pcm.samples)?)
        })();
        match result {
            Ok(command) if json_output => println!(
                "{}",
                json!({
                    "file": file,
                    "transcript": command.transcript,
                    "intent": command.intent,
                    "slots": command.slots,
                    "ms": (command.ms * 10.0).round() / 10.0,
                })
            ),
            Ok(command) => {
                println!("{}", file.display());
                println!("  transcript: {}", command.transcript);
                println!(
                    "  intent:     {}",
                    command.intent.as_deref().unwrap_or("(none)")
                );
                for (slot, value) in &command.slots {
                    println!("  {slot}: {value}");
                }
                println!("  time:       {:.0} ms", command.ms);
            }
            Err(error) => {
                failures += 1;
                if json_output {
                    println!("{}", json!({"file": file, "error": format!("{error:#}")}));
                } else {
                    eprintln!("error: {}", super::file_error(file, &error));
                }
            }
        }
    }
    if failures > 0 {
        bail!("{failures} of {} files could not be read", files.len());
    }
    Ok(())
}

pub struct EvalOptions<'a> {
    pub data: &'a Path,
    pub labels: &'a Path,
    pub noise: Option<&'a Path>,
    pub snr: &'a [f64],
    pub json: bool,
    pub show_errors: bool,
}

pub fn eval_spoken(
    models: &ModelDir,
    threads: usize,
    args: &ReaderArgs,
    options: EvalOptions,
) -> Result<()> {
    if !options.snr.is_empty() && options.noise.is_none() {
        bail!("--snr needs --noise FILE.wav (the noise to mix in)");
    }
    let noise = options.noise.map(read_recording).transpose()?;
    let mut reader = reader(models, threads, args)?;
    let grammar = reader.has_grammar();
    let rescoring = reader.rescores();
    let mut conditions = vec![Condition::Clean];
    conditions.extend(options.snr.iter().map(|&db| Condition::Snr(db)));
    let show_errors = options.show_errors;
    let mut on_outcome = |outcome: &Outcome| {
        if show_errors && !outcome.accepted {
            eprintln!(
                "{} {}: heard {:?}; expected {:?}, got {} {:?}",
                outcome.condition,
                outcome.file,
                outcome.command.transcript,
                outcome.expected.slots,
                outcome.command.intent.as_deref().unwrap_or("(none)"),
                outcome.command.slots
            );
        }
    };
    let report = evaluate(
        &mut reader,
        options.data,
        options.labels,
        noise.as_deref(),
        &conditions,
        &mut on_outcome,
    )?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let recognition = match (args.no_biasing, grammar) {
        (false, true) => "vocabulary prompt + grammar",
        (false, false) => "vocabulary prompt",
        (true, true) => "grammar",
        (true, false) => "unbiased",
    };
    let recognition = if rescoring {
        format!("{recognition} + rescoring")
    } else {
        recognition.to_string()
    };
    println!(
        "{} commands, domain {}, model {} ({recognition}), {} threads, {}",
        report.files,
        args.domain,
        args.model,
        threads,
        hark::telemetry::machine()
    );
    println!(
        "{:<10} {:>10} {:>12} {:>8} {:>8}",
        "condition", "accepted", "acceptance", "intent", "P50 ms"
    );
    for score in &report.conditions {
        println!(
            "{:<10} {:>10} {:>11.1}% {:>7.1}% {:>8.0}",
            score.condition,
            format!("{}/{}", score.accepted, score.commands),
            score.acceptance_rate,
            score.intent_rate,
            score.latency.as_ref().map_or(f64::NAN, |l| l.p50_ms)
        );
    }
    if let Some(average) = report.noisy_average {
        println!("{:<10} {:>10} {:>11.1}%", "noisy avg", "", average);
    }
    if let (Some(total), Some(decode)) = (report.latency, report.decode) {
        println!(
            "per command: P50 {:.0} ms, P95 {:.0} ms, P99 {:.0} ms (recognition P50 {:.0} ms)",
            total.p50_ms, total.p95_ms, total.p99_ms, decode.p50_ms
        );
    }
    Ok(())
}

/// `hark domain import`: a Rhino context file → a domain folder.
pub fn domain_import(file: &Path, name: &str, out: Option<&Path>, force: bool) -> Result<()> {
    let yaml = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let files = import_rhino(&yaml, name).with_context(|| file.display().to_string())?;
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| super::conversation::domains_dir().join(name));
    if dir.join("domain.toml").exists() && !force {
        bail!(
            "{} already holds a domain (--force replaces its files)",
            dir.display()
        );
    }
    for (relative, contents) in &files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
        }
        std::fs::write(&path, contents).with_context(|| path.display().to_string())?;
    }
    // What was written must load: the same checks as at start-up.
    let domain = domain::load(&dir)?;
    println!(
        "wrote {} ({} flow(s): {})",
        dir.display(),
        domain.flows.len(),
        domain.flows.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}

/// `hark domain check`: loads a domain with the start-up checks and summarises it.
pub fn domain_check(
    domain: &str,
    knowledge: &[PathBuf],
    models: &ModelDir,
    threads: usize,
) -> Result<()> {
    let dir = domain::resolve(domain, &super::conversation::domains_dir())?;
    let domain = domain::load(&dir)?;
    summarise(&dir, &domain);
    let mut paths = knowledge.to_vec();
    if hark::knowledge::has_documents(&dir.join("knowledge")) {
        paths.push(dir.join("knowledge"));
    }
    if !paths.is_empty() {
        check_knowledge(&domain, &paths, models, threads)?;
    }
    Ok(())
}

/// The documents indexed, and every FAQ intent whose examples they answer too: the two
/// answers must agree, and nothing else tells the deployer when they drift apart.
fn check_knowledge(
    domain: &domain::Domain,
    paths: &[PathBuf],
    models: &ModelDir,
    threads: usize,
) -> Result<()> {
    let encoder = hark::nlu::encoder::SentenceEncoder::from_models(models, threads)?;
    let knowledge =
        hark::knowledge::Knowledge::load(paths, hark::nlu::Featurizer::new(Some(encoder)))?;
    println!(
        "  knowledge: {} passages from {}",
        knowledge.passages().len(),
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (name, intent) in &domain.intents {
        let Some(answer) = &intent.answer else {
            continue;
        };
        for example in &intent.examples {
            let found = knowledge.lookup(example, hark::knowledge::WRITTEN_WORDS)?;
            if let hark::knowledge::Found::Answer { text, section, .. } = found {
                println!(
                    "  warning: intent {name} and the documents ({section}) both answer {example:?}; the intent's answer is said, so they should agree:\n    intent:    {}\n    documents: {text}",
                    answer.pick(domain::Channel::Text, Default::default())
                );
                break;
            }
        }
    }
    Ok(())
}

fn summarise(dir: &Path, domain: &domain::Domain) {
    println!("{}: ok", dir.display());
    for flow in domain.flows.values() {
        println!(
            "  flow {} ({}): {} examples, {} expressions, slots: {}",
            flow.intent,
            flow.description,
            flow.examples.len(),
            flow.expressions.len(),
            flow.slots
                .iter()
                .map(|s| format!("{} ({} values)", s.name, s.values.len()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "  intents: {}",
        domain
            .intents
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(prompt) = hark::stt::bias::vocabulary_prompt(
        &domain.vocabulary_sentences(),
        hark::spoken::PROMPT_CHARS,
    ) {
        println!("  spoken commands are recognised with the prompt: {prompt}");
    }
    let start = std::time::Instant::now();
    match domain.command_grammar() {
        Some(grammar) => println!(
            "  and held to a grammar of {} words and {} states (built in {:.0} ms)",
            grammar.vocabulary().len(),
            grammar.states(),
            start.elapsed().as_secs_f64() * 1000.0
        ),
        None => println!("  no grammar: some flows are not written as templates"),
    }
}
