//! The `hark` command line. Everything it does lives in the library; this file parses
//! arguments, calls it, and reports errors with `anyhow`.

mod cli;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;

use hark::audio::{wav, Pcm, SPEECH_RATE};
use hark::models::{self, fetch, ModelDir, WHISPER_CATALOG};
use hark::stt::whisper::WhisperModel;
use hark::stt::{DecodeWindow, TranscribeOptions, Transcriber};
use hark::tts::{self, VoiceKind};

#[derive(Parser)]
#[command(name = "hark", version, about = "A low-latency voice assistant")]
struct Cli {
    /// Folder with the model files (default: $HARK_MODELS_DIR, else ./models).
    #[arg(long, global = true)]
    models: Option<PathBuf>,
    /// Inference threads (default: cores, at most 4).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe WAV files (any rate, channels or bit depth).
    Transcribe {
        files: Vec<PathBuf>,
        /// Print one JSON object per file, with timings.
        #[arg(long)]
        json: bool,
        /// Whisper model name (a file models/ggml-NAME.bin).
        #[arg(long, default_value = "tiny.en")]
        model: String,
        /// Encoder window: trimmed to the audio (fast) or Whisper's full 30 s.
        #[arg(long, value_enum, default_value = "trimmed")]
        window: Window,
        /// Words to bias recognition towards.
        #[arg(long)]
        prompt: Option<String>,
    },
    /// Speak text into a WAV file.
    Say {
        text: String,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, value_enum, default_value = "piper")]
        voice: VoiceKind,
        /// Print timings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hold a spoken conversation: microphone → hark → speaker, or WAV files in their place.
    Run {
        /// A WAV file in place of the microphone, delivered in real time.
        #[arg(long)]
        input: Option<PathBuf>,
        /// Record what the speaker plays to this WAV file, aligned sample for sample with
        /// the input (silence where nothing plays).
        #[arg(long)]
        output: Option<PathBuf>,
        /// Write one JSON object per event (ms on the input timeline) to this file.
        #[arg(long)]
        events: Option<PathBuf>,
        /// Microphone to use when there is no --input (a name from `hark devices`).
        #[arg(long)]
        input_device: Option<String>,
        /// Speaker to use when there is no --output (a name from `hark devices`).
        #[arg(long)]
        output_device: Option<String>,
        /// Domain name under config/domains, or a domain folder.
        #[arg(long, default_value = "customer-service")]
        domain: String,
        /// Answer with the small keyword responder instead of the dialogue core.
        #[arg(long)]
        keywords: bool,
        /// Where sessions and user memory are kept: sqlite:PATH, redis://HOST:PORT, or none.
        #[arg(long, default_value = DEFAULT_STORE)]
        store: String,
        /// Who is talking (memory is kept per user).
        #[arg(long, default_value = "local-user")]
        user: String,
        /// Folder for privacy-safe conversation logs (`none` to keep none).
        #[arg(long, default_value = DEFAULT_LOG_DIR)]
        log: String,
        /// Turn off echo cancellation (on by default when both sound devices are live, so
        /// hark does not take its own voice for the user's).
        #[arg(long)]
        no_aec: bool,
        /// Stop after this many seconds (default: until the input ends, or forever live).
        #[arg(long)]
        seconds: Option<f64>,
        #[arg(long, value_enum, default_value = "piper")]
        voice: VoiceKind,
        #[arg(long, default_value = "tiny.en")]
        model: String,
    },
    /// Serve conversations over WebSocket: each connection streams its microphone in
    /// (s16le mono binary frames after a JSON `start`) and gets hark's voice and the
    /// conversation's events back. See the README for the protocol.
    Serve(cli::serve::ServeArgs),
    /// List the microphones and speakers cpal can reach, with their formats.
    Devices {
        #[arg(long)]
        json: bool,
        /// Every audio system cpal can reach, not only the default one.
        #[arg(long)]
        all: bool,
    },
    /// Converse over text with the dialogue core: interactive in a terminal; with --json,
    /// one line of stdin per user turn and one JSON object per turn on stdout.
    Chat {
        /// Domain name under config/domains, or a domain folder.
        #[arg(long, default_value = "customer-service")]
        domain: String,
        /// Print one JSON object per turn (user, reply, intent, confidence, entities, flow,
        /// slots, handoff).
        #[arg(long)]
        json: bool,
        /// Who is talking (memory is kept per user).
        #[arg(long, default_value = "local-user")]
        user: String,
        /// "Today" for relative dates (YYYY-MM-DD), for reproducible scripts.
        #[arg(long)]
        today: Option<String>,
        /// Where sessions and user memory are kept: sqlite:PATH, redis://HOST:PORT, or none.
        #[arg(long, default_value = DEFAULT_STORE)]
        store: String,
        /// Folder for privacy-safe conversation logs (`none` to keep none).
        #[arg(long, default_value = DEFAULT_LOG_DIR)]
        log: String,
    },
    /// Service metrics from conversation logs: task completion, containment, turns,
    /// escalations.
    Report {
        /// The conversation log folder.
        #[arg(default_value = DEFAULT_LOG_DIR)]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// What spoken commands ask for: transcript, intent and slots of each WAV file.
    Understand {
        files: Vec<PathBuf>,
        #[command(flatten)]
        reader: cli::spoken::ReaderArgs,
        /// One JSON object per file: file, transcript, intent, slots, ms.
        #[arg(long)]
        json: bool,
    },
    /// Benchmarks: spoken-command acceptance.
    Eval {
        #[command(subcommand)]
        action: EvalAction,
    },
    /// Domain packs: import a Rhino context, or check a domain.
    Domain {
        #[command(subcommand)]
        action: DomainAction,
    },
    /// Language understanding: evaluate intent recognition.
    Nlu {
        #[command(subcommand)]
        action: NluAction,
    },
    /// List, download or convert model files.
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Window {
    Full,
    Trimmed,
}

#[derive(Subcommand)]
enum NluAction {
    /// CLINC150: train on train, tune on val, report in-scope accuracy and out-of-scope
    /// recall on test.
    Eval {
        /// CLINC150's data_full.json.
        #[arg(long)]
        data: PathBuf,
        /// Lexical features only (no sentence encoder).
        #[arg(long)]
        lexical_only: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Development run: show only the val figures (test is for the one final report).
        #[arg(long)]
        dev: bool,
    },
}

#[derive(Subcommand)]
enum EvalAction {
    /// Command acceptance rate on labelled recordings, clean and with noise at each SNR.
    Spoken {
        #[command(flatten)]
        reader: cli::spoken::ReaderArgs,
        /// Folder of WAV files.
        #[arg(long)]
        data: PathBuf,
        /// Labels: {"file.wav": {"intent": "...", "slots": {...}}}.
        #[arg(long)]
        labels: PathBuf,
        /// Noise recording to mix in for the --snr conditions.
        #[arg(long)]
        noise: Option<PathBuf>,
        /// Signal-to-noise ratios in dB (peak frame energy), e.g. --snr 24 21 18 15 12 9 6.
        #[arg(long, num_args = 1..)]
        snr: Vec<f64>,
        #[arg(long)]
        json: bool,
        /// Print each command that was not accepted (to stderr).
        #[arg(long)]
        show_errors: bool,
    },
}

#[derive(Subcommand)]
enum DomainAction {
    /// Turn a Picovoice Rhino context (YAML) into a domain folder.
    Import {
        file: PathBuf,
        /// The domain's name (its folder under config/domains unless --out).
        #[arg(long)]
        name: String,
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace the files of an existing domain.
        #[arg(long)]
        force: bool,
    },
    /// Load a domain with the start-up checks and summarise it.
    Check { domain: String },
}

#[derive(Subcommand)]
enum ModelsAction {
    /// Show the downloadable Whisper models and what is installed.
    List,
    /// Download a ggml Whisper model (needs internet), verifying its SHA-1.
    Fetch { name: String },
    /// Convert a CTranslate2 Whisper model folder (model.bin, vocabulary.txt) to ggml.
    ImportCt2 {
        dir: PathBuf,
        /// Name to install it under: models/ggml-NAME.bin.
        #[arg(long, default_value = "tiny.en")]
        name: String,
    },
    /// Write an 8-bit (Q8_0) copy of an installed model: models/ggml-NAME-q8_0.bin.
    Quantize {
        #[arg(default_value = "tiny.en")]
        name: String,
    },
}

fn main() {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. } | Command::Serve(_)) {
        quit_quietly_on_closed_pipe();
    }
    if let Err(error) = run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// A command whose output is cut short by its reader (`hark eval … | head`) ends there, as
/// any Unix tool does. Rust ignores SIGPIPE, so printing to a closed pipe panicked instead.
/// The long-running `run` and `serve` keep ignoring it: a helper process or peer that goes
/// away must be an error they report, not their end.
fn quit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; restores the default
    // disposition of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn run(cli: Cli) -> Result<()> {
    let models = ModelDir::resolve(cli.models.as_deref());
    let threads = cli.threads.unwrap_or_else(hark::default_threads).max(1);
    match cli.command {
        Command::Transcribe {
            files,
            json,
            model,
            window,
            prompt,
        } => transcribe(&models, threads, &files, json, &model, window, prompt),
        Command::Say {
            text,
            output,
            voice,
            json,
        } => say(&models, threads, &text, &output, voice, json),
        Command::Run {
            input,
            output,
            events,
            input_device,
            output_device,
            no_aec,
            seconds,
            voice,
            model,
            domain,
            keywords,
            store,
            user,
            log,
        } => run_conversation(
            &models,
            threads,
            RunIo {
                input,
                output,
                events,
                input_device,
                output_device,
                aec: !no_aec,
                domain: (!keywords).then_some(domain),
                store,
                user,
                log,
                seconds,
            },
            voice,
            &model,
        ),
        Command::Serve(args) => cli::serve::run(&models, threads, args),
        Command::Devices { json, all } => devices(json, all),
        Command::Chat {
            domain,
            json,
            user,
            today,
            store,
            log,
        } => chat(
            &models,
            threads,
            ChatOptions {
                domain,
                json,
                user,
                today,
                store,
                log,
            },
        ),
        Command::Report { dir, json } => report(&dir, json),
        Command::Understand {
            files,
            reader,
            json,
        } => cli::spoken::understand(&models, threads, &files, &reader, json),
        Command::Eval {
            action:
                EvalAction::Spoken {
                    reader,
                    data,
                    labels,
                    noise,
                    snr,
                    json,
                    show_errors,
                },
        } => cli::spoken::eval_spoken(
            &models,
            threads,
            &reader,
            cli::spoken::EvalOptions {
                data: &data,
                labels: &labels,
                noise: noise.as_deref(),
                snr: &snr,
                json,
                show_errors,
            },
        ),
        Command::Domain { action } => match action {
            DomainAction::Import {
                file,
                name,
                out,
                force,
            } => cli::spoken::domain_import(&file, &name, out.as_deref(), force),
            DomainAction::Check { domain } => cli::spoken::domain_check(&domain),
        },
        Command::Nlu {
            action:
                NluAction::Eval {
                    data,
                    lexical_only,
                    json,
                    dev,
                },
        } => nlu_eval(&models, threads, &data, lexical_only, json, dev),
        Command::Models { action } => match action {
            ModelsAction::List => models_list(&models),
            ModelsAction::Fetch { name } => models_fetch(&models, &name),
            ModelsAction::ImportCt2 { dir, name } => models_import(&models, &dir, &name),
            ModelsAction::Quantize { name } => models_quantize(&models, &name),
        },
    }
}

fn transcribe(
    models: &ModelDir,
    threads: usize,
    files: &[PathBuf],
    json: bool,
    model: &str,
    window: Window,
    prompt: Option<String>,
) -> Result<()> {
    if files.is_empty() {
        bail!("no WAV files given: hark transcribe FILE.wav [FILE.wav …]");
    }
    let whisper = WhisperModel::load(&models.whisper(model), threads)?;
    let mut session = whisper.session()?;
    let options = TranscribeOptions {
        window: match window {
            Window::Full => DecodeWindow::Full,
            Window::Trimmed => DecodeWindow::Trimmed,
        },
        prompt,
        ..Default::default()
    };
    let mut failures = 0;
    for file in files {
        // One bad file is reported and skipped; the others are still transcribed.
        let result = (|| -> Result<_> {
            let read_start = Instant::now();
            let audio = wav::read_wav(file)?;
            let pcm = audio.to_mono().resampled(SPEECH_RATE)?;
            let prepare_ms = read_start.elapsed().as_secs_f64() * 1000.0;
            let transcript = session.transcribe(&pcm.samples, &options)?;
            Ok((audio, prepare_ms, transcript))
        })();
        match result {
            Ok((audio, prepare_ms, transcript)) if json => {
                println!(
                    "{}",
                    json!({
                        "file": file,
                        "text": transcript.text,
                        "segments": transcript.segments,
                        "input": {"sample_rate": audio.sample_rate, "channels": audio.channels},
                        "audio_ms": round1(transcript.audio_ms),
                        "load_ms": round1(whisper.load_ms),
                        "prepare_ms": round1(prepare_ms),
                        "decode_ms": round1(transcript.decode_ms),
                        "window": options.window,
                    })
                );
            }
            Ok((_, _, transcript)) => println!("{}", transcript.text),
            Err(error) => {
                failures += 1;
                if json {
                    println!("{}", json!({"file": file, "error": format!("{error:#}")}));
                } else {
                    eprintln!("error: {}", cli::file_error(file, &error));
                }
            }
        }
    }
    if failures > 0 {
        bail!(
            "{failures} of {} files could not be transcribed",
            files.len()
        );
    }
    Ok(())
}

fn say(
    models: &ModelDir,
    threads: usize,
    text: &str,
    output: &Path,
    voice: VoiceKind,
    json: bool,
) -> Result<()> {
    if text.trim().is_empty() {
        bail!("nothing to say: the text is empty");
    }
    let load_start = Instant::now();
    let mut synth = tts::open_voice(voice, models, threads)?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1000.0;
    let mut samples = Vec::new();
    let mut first_chunk_ms = None;
    let synth_start = Instant::now();
    tts::speak_streaming(synth.as_mut(), text, &mut |chunk| {
        first_chunk_ms.get_or_insert(chunk.ready_ms);
        samples.extend_from_slice(&chunk.samples);
        true
    })?;
    let synth_ms = synth_start.elapsed().as_secs_f64() * 1000.0;
    let pcm = Pcm::new(synth.sample_rate(), samples);
    wav::write_wav(output, &pcm).with_context(|| format!("writing {}", output.display()))?;
    let audio_ms = pcm.duration_secs() * 1000.0;
    if json {
        println!(
            "{}",
            json!({
                "output": output,
                "voice": synth.name(),
                "sample_rate": pcm.sample_rate,
                "audio_ms": round1(audio_ms),
                "load_ms": round1(load_ms),
                "first_chunk_ms": first_chunk_ms.map(round1),
                "synth_ms": round1(synth_ms),
                "real_time_factor": (audio_ms > 0.0).then(|| synth_ms / audio_ms),
            })
        );
    } else {
        println!(
            "wrote {} ({:.2} s of {} speech at {} Hz; first audio after {:.0} ms)",
            output.display(),
            audio_ms / 1000.0,
            synth.name(),
            pcm.sample_rate,
            first_chunk_ms.unwrap_or(0.0)
        );
    }
    Ok(())
}

/// Where `hark run` takes its audio from and puts it.
struct RunIo {
    input: Option<PathBuf>,
    output: Option<PathBuf>,
    events: Option<PathBuf>,
    input_device: Option<String>,
    output_device: Option<String>,
    aec: bool,
    /// The dialogue domain; None for the keyword responder.
    domain: Option<String>,
    store: String,
    user: String,
    log: String,
    seconds: Option<f64>,
}

fn run_conversation(
    models: &ModelDir,
    threads: usize,
    io: RunIo,
    voice: VoiceKind,
    model: &str,
) -> Result<()> {
    use hark::audio::device::{Microphone, Speaker};
    use hark::audio::file::{WavFileSink, WavFileSource};
    use hark::audio::{AudioSink, AudioSource};
    use hark::pipeline::turn::TurnConfig;
    use hark::pipeline::{run_voice_loop, Engines, LoopConfig};
    use hark::telemetry::events::{Event, EventLog};

    let recognizer = hark::engines::whisper_recognizer(models, model, threads, Default::default())?;
    let synthesizer = hark::engines::local_synthesizer(voice, models, threads)?;
    let brain: Box<dyn hark::dialogue::Brain> = match &io.domain {
        Some(domain) => {
            let dir = hark::dialogue::config::resolve(domain, &domains_dir())?;
            let manager = hark::dialogue::build_manager(&dir, models, threads)?;
            dialogue_brain(manager, &io.user, &io.store, &io.log)?
        }
        None => Box::new(hark::dialogue::builtin::KeywordResponder::new()),
    };
    let greet = io.domain.is_some();
    let engines = Engines {
        recognizer: recognizer.open_session()?,
        brain,
        synthesizer,
    };
    // Devices open once the models are loaded, so the microphone does not pile up audio
    // while they load; "listening on" means ready.
    let mut mic = match &io.input {
        Some(_) => None,
        None => Some(Microphone::open(io.input_device.as_deref())?),
    };
    let mut speaker = match &io.output {
        Some(_) => None,
        None => Some(Speaker::open(io.output_device.as_deref())?),
    };
    // Echo cancellation joins a live speaker to a live microphone.
    let mut aec_on = false;
    if let (Some(mic), Some(speaker), true) = (mic.as_mut(), speaker.as_mut(), io.aec) {
        let (canceller, reference) = hark::audio::aec::echo_canceller()?;
        mic.cancel_echo(canceller)?;
        speaker.feed_echo_reference(reference)?;
        aec_on = true;
    }
    let (mut source, input_rate): (Box<dyn AudioSource>, u32) = match (mic, &io.input) {
        (Some(mic), _) => {
            let rate = mic.device_rate();
            let aec = if aec_on { ", echo cancellation on" } else { "" };
            eprintln!("listening on {} ({rate} Hz{aec})", mic.name());
            (Box::new(mic), rate)
        }
        (None, Some(path)) => {
            let file = WavFileSource::open(path, true)?;
            let rate = file.original_rate();
            (Box::new(file), rate)
        }
        (None, None) => unreachable!("a microphone is opened when there is no input file"),
    };
    let sink_is_live = speaker.is_some() && io.aec;
    let mut sink: Box<dyn AudioSink> = match (speaker, &io.output) {
        (Some(speaker), _) => {
            eprintln!(
                "speaking on {} ({} Hz)",
                speaker.name(),
                speaker.sample_rate()
            );
            Box::new(speaker)
        }
        (None, Some(path)) => Box::new(WavFileSink::create(path, input_rate)?),
        (None, None) => unreachable!("a speaker is opened when there is no output file"),
    };
    if let Some(limit) = io.seconds {
        source = Box::new(hark::audio::Limited::new(source, limit));
    }
    let mut log = match &io.events {
        Some(path) => {
            EventLog::to_file(path).with_context(|| format!("creating {}", path.display()))?
        }
        None => EventLog::new(),
    };
    // Print the conversation as it happens.
    log.on_event(Box::new(|e| {
        let t = e.t_ms as f64 / 1000.0;
        match &e.event {
            Event::Final { text, .. } => println!("[{t:>7.2} s] user:  {text}"),
            Event::Reply { text, .. } => println!("[{t:>7.2} s] hark:  {text}"),
            Event::BargeIn { spoken, .. } => println!("[{t:>7.2} s] (interrupted after: {spoken})"),
            Event::Error { message } => println!("[{t:>7.2} s] error: {message}"),
            _ => {}
        }
    }));
    let config = LoopConfig {
        // A live speaker may be heard by the microphone: gate hark's own echo.
        echo_gate: sink_is_live.then(Default::default),
        turns: TurnConfig {
            greet,
            ..Default::default()
        },
        ..Default::default()
    };
    let summary = run_voice_loop(config, source.as_mut(), sink.as_mut(), engines, &mut log)?;
    println!("{}", serde_json::to_string(&summary)?);
    if log.write_failed() {
        bail!("some events could not be written to the events file (disk full?)");
    }
    Ok(())
}

/// The dialogue core of one conversation with `user`: the domain's manager, with the
/// conversation log and the session store when they are configured.
fn dialogue_brain(
    manager: hark::dialogue::manager::DialogueManager,
    user: &str,
    store: &str,
    log: &str,
) -> Result<Box<dyn hark::dialogue::Brain>> {
    let mut brain = hark::dialogue::brain::DialogueBrain::new(manager, user);
    if let Some(log) = conversation_log(log)? {
        brain = brain.with_log(log);
    }
    Ok(match hark::dialogue::store::open(store)? {
        Some(store) => Box::new(brain.with_store(store)?),
        None => Box::new(brain),
    })
}

fn nlu_eval(
    models: &ModelDir,
    threads: usize,
    data: &Path,
    lexical_only: bool,
    json: bool,
    dev: bool,
) -> Result<()> {
    use hark::dialogue::nlu::{clinc, encoder::SentenceEncoder, Featurizer};
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

/// The folder domains are looked up in: $HARK_CONFIG_DIR/domains, else ./config/domains.
fn domains_dir() -> PathBuf {
    std::env::var_os("HARK_CONFIG_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"))
        .join("domains")
}

/// Sessions and memory are kept here unless --store says otherwise.
const DEFAULT_STORE: &str = "sqlite:data/sessions.sqlite";

/// Privacy-safe conversation logs go here unless --log says otherwise.
const DEFAULT_LOG_DIR: &str = "data/conversations";

struct ChatOptions {
    domain: String,
    json: bool,
    user: String,
    today: Option<String>,
    store: String,
    log: String,
}

/// The conversation log for `--log DIR` (None for `none`).
fn conversation_log(dir: &str) -> Result<Option<hark::telemetry::conversations::ConversationLog>> {
    if dir == "none" {
        return Ok(None);
    }
    Ok(Some(
        hark::telemetry::conversations::ConversationLog::new(Path::new(dir))
            .with_context(|| format!("conversation log folder {dir}"))?,
    ))
}

fn report(dir: &Path, json: bool) -> Result<()> {
    let (r, bad) = hark::telemetry::conversations::report(dir)
        .with_context(|| format!("reading conversation logs in {}", dir.display()))?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    println!(
        "conversations: {}   turns: {} ({:.1} per conversation)",
        r.conversations, r.turns, r.turns_per_conversation
    );
    println!(
        "task completion: {} ({} of {} flows started)",
        pct(r.task_completion),
        r.tasks_completed,
        r.tasks_started
    );
    println!(
        "containment: {}   escalations: {}",
        pct(r.containment),
        r.escalations
    );
    println!("turns not understood: {}", r.misunderstood_turns);
    for (flow, (started, completed)) in &r.tasks_by_flow {
        println!("    {flow}: {completed} of {started} completed");
    }
    for (reason, n) in &r.escalation_reasons {
        println!("    escalated {n}×: {reason}");
    }
    if bad > 0 {
        println!("({bad} unreadable log lines skipped)");
    }
    Ok(())
}

fn chat(models: &ModelDir, threads: usize, options: ChatOptions) -> Result<()> {
    use hark::dialogue::Brain;
    use std::io::{BufRead, IsTerminal};
    let ChatOptions {
        domain,
        json,
        user,
        today,
        store,
        log,
    } = options;
    let (domain, user, today, store) = (
        domain.as_str(),
        user.as_str(),
        today.as_deref(),
        store.as_str(),
    );
    let log = conversation_log(&log)?;
    let dir = hark::dialogue::config::resolve(domain, &domains_dir())?;
    let mut manager = hark::dialogue::build_manager(&dir, models, threads)?;
    if let Some(today) = today {
        manager.today = Some(
            chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d")
                .with_context(|| format!("--today {today}: expected YYYY-MM-DD"))?,
        );
    }
    let mut brain = hark::dialogue::brain::DialogueBrain::new(manager, user);
    if let Some(store) = hark::dialogue::store::open(store)? {
        brain = brain.with_store(store)?;
    }
    if let Some(log) = log {
        brain = brain.with_log(log);
    }
    let name = brain.manager().domain.persona.name.clone();
    let interactive = std::io::stdin().is_terminal() && !json;
    let greeting = brain.greeting().unwrap_or_default();
    if !json {
        println!("{name}: {greeting}");
    }
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    loop {
        if interactive {
            print!("> ");
            std::io::stdout().flush()?;
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let turn = brain.turn(&line)?;
        if json {
            writeln!(out, "{}", serde_json::to_string(&turn)?)?;
        } else {
            writeln!(out, "{name}: {}", turn.reply)?;
        }
        out.flush()?;
        if turn.ended {
            break;
        }
    }
    Ok(())
}

fn devices(json: bool, all: bool) -> Result<()> {
    let list = hark::audio::device::list_devices(all)?;
    if json {
        for d in &list {
            println!("{}", serde_json::to_string(d)?);
        }
        return Ok(());
    }
    if list.is_empty() {
        println!("no sound devices (use WAV files: hark run --input IN.wav --output OUT.wav)");
    }
    for d in &list {
        let mark = |default: bool| if default { " (default)" } else { "" };
        println!("{}  ({}, {})", d.name, d.description, d.host);
        if let Some(f) = &d.input {
            println!("    input:  {f}{}", mark(d.default_input));
        }
        if let Some(f) = &d.output {
            println!("    output: {f}{}", mark(d.default_output));
        }
    }
    Ok(())
}

fn models_list(models: &ModelDir) -> Result<()> {
    println!("models folder: {}", models.root.display());
    println!("{:<12} {:>8}  {:<9} status", "whisper", "size", "language");
    for entry in WHISPER_CATALOG {
        let path = models.whisper(entry.name);
        let status = if path.exists() { "installed" } else { "-" };
        let language = if entry.english_only {
            "English"
        } else {
            "multi"
        };
        println!(
            "{:<12} {:>5} MiB  {:<9} {status}",
            entry.name, entry.size_mib, language
        );
        let quantized = models::quantize::quantized_name(entry.name);
        if let Ok(meta) = std::fs::metadata(models.whisper(&quantized)) {
            println!(
                "{:<12} {:>5} MiB  {:<9} installed (hark models quantize {})",
                quantized,
                meta.len() / 1_048_576,
                language,
                entry.name
            );
        }
    }
    for (what, path) in [
        ("piper voice", models.piper_voice(models::PIPER_VOICE)),
        ("onnxruntime", models.onnxruntime()),
    ] {
        let status = if path.exists() {
            "installed"
        } else {
            "missing"
        };
        println!("{what:<12} {status:<9} {}", path.display());
    }
    Ok(())
}

fn models_fetch(models: &ModelDir, name: &str) -> Result<()> {
    let entry = models::whisper_catalog_entry(name)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    eprintln!(
        "downloading {} ({} MiB) from {}",
        entry.file_name(),
        entry.size_mib,
        entry.url()
    );
    let mut last_percent = u64::MAX;
    let mut progress = |received: u64, total: Option<u64>| {
        let percent = total.map_or(0, |t| received * 100 / t.max(1));
        if percent != last_percent {
            last_percent = percent;
            let filled = (percent / 5) as usize;
            eprint!(
                "\r[{}{}] {:>3}% {:>7.1} MiB",
                "#".repeat(filled),
                " ".repeat(20 - filled.min(20)),
                percent,
                received as f64 / 1048576.0
            );
            let _ = std::io::stderr().flush();
        }
    };
    let path = runtime.block_on(fetch::fetch_whisper(entry, models, &mut progress))?;
    eprintln!();
    println!("{} (sha1 verified)", path.display());
    Ok(())
}

fn models_quantize(models: &ModelDir, name: &str) -> Result<()> {
    let input = models.whisper(name);
    let output = models.whisper(&models::quantize::quantized_name(name));
    let report = models::quantize::quantize_q8_0(&input, &output)
        .with_context(|| format!("quantizing {}", input.display()))?;
    println!(
        "{}: {} matrices in Q8_0, {} tensors kept, {:.1} → {:.1} MiB",
        output.display(),
        report.quantized,
        report.kept,
        report.bytes_in as f64 / 1048576.0,
        report.bytes_out as f64 / 1048576.0
    );
    Ok(())
}

fn models_import(models: &ModelDir, dir: &Path, name: &str) -> Result<()> {
    let out = models.whisper(name);
    let start = Instant::now();
    let report = models::ggml::convert_ct2_whisper(dir, &out)
        .with_context(|| format!("converting {} to {}", dir.display(), out.display()))?;
    let expected = models::ggml::expected_tensor_count(&report.hparams);
    if report.tensor_count != expected {
        bail!(
            "wrote {} tensors but whisper.cpp expects {expected}",
            report.tensor_count
        );
    }
    let hp = report.hparams;
    println!(
        "{}: {} tensors, {:.1} MiB, {} audio / {} text layers of width {}, vocabulary {} ({:.1} s; largest dropped key bias {:.2e})",
        out.display(),
        report.tensor_count,
        report.bytes_written as f64 / 1048576.0,
        hp.n_audio_layer,
        hp.n_text_layer,
        hp.n_audio_state,
        hp.n_vocab,
        start.elapsed().as_secs_f64(),
        report.max_dropped_key_bias
    );
    Ok(())
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}
