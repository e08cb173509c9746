//! The commands, one file each; this file declares their arguments and dispatches. What
//! several commands share (the models folder, threads, the settings file, a conversation's
//! domain, store and log, the engines) is declared once.

pub mod chat;
pub mod conversation;
pub mod devices;
pub mod models;
pub mod nlu;
pub mod report;
pub mod run;
pub mod say;
pub mod serve;
pub mod spoken;
pub mod transcribe;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use hark::config::{Settings, SttEngine, TtsEngine};
use hark::models::ModelDir;

#[derive(Parser)]
#[command(name = "hark", version, about = "A low-latency voice assistant")]
pub struct Cli {
    /// Folder with the model files (default: $HARK_MODELS_DIR, else ./models).
    #[arg(long, global = true)]
    models: Option<PathBuf>,
    /// Inference threads (default: cores, at most 4).
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Settings file (default: $HARK_CONFIG, else ~/.config/hark/hark.toml if it exists;
    /// config/hark.toml lists every setting).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// How diagnostics on stderr are written: human (lines to read) or json (one object
    /// per line, for a log collector). `HARK_LOG` filters them (default: info for run and
    /// serve, warn for the rest).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Diagnostics go through `tracing` to stderr; a conversation's lines carry its id (the
/// `conversation` span). What the commands print for the user (results, "listening on")
/// stays plain output.
/// `level` is the default: the daemons say what they do, the others only what went wrong.
pub fn init_logging(format: LogFormat, level: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HARK_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A second subscriber (tests calling this twice) is refused; the first one stays.
    let _ = match format {
        LogFormat::Human => builder.compact().try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .flatten_event(true)
            .try_init(),
    };
}

/// The dialogue a conversation runs: its domain, and where it is kept.
#[derive(clap::Args, Clone)]
pub struct DialogueArgs {
    /// Domain name under config/domains, or a domain folder [settings: dialogue.domain].
    #[arg(long)]
    pub domain: Option<String>,
    /// Where sessions and user memory are kept: sqlite:PATH, redis://HOST:PORT, memory (this
    /// process only) or none
    /// [settings: dialogue.store].
    #[arg(long)]
    pub store: Option<String>,
    /// Folder for privacy-safe conversation logs, or none [settings: dialogue.log].
    #[arg(long)]
    pub log: Option<String>,
    /// A Markdown or text document (or a folder of them) to answer questions from; repeat
    /// for several. Added to the domain's own knowledge/ folder [settings: dialogue.knowledge].
    #[arg(long)]
    pub knowledge: Vec<String>,
}

/// The speech engines of a conversation.
#[derive(clap::Args, Clone)]
pub struct EngineArgs {
    /// Speech-to-text engine: whisper, deepgram or assemblyai [settings: stt.engine].
    #[arg(long)]
    pub stt: Option<SttEngine>,
    /// Text-to-speech engine: piper, espeak, elevenlabs, cartesia or aura [settings: tts.engine].
    #[arg(long, alias = "voice")]
    pub tts: Option<TtsEngine>,
    /// Whisper model name, a file models/ggml-NAME.bin [settings: stt.model].
    #[arg(long)]
    pub model: Option<String>,
    /// A cloud voice: the ElevenLabs or Cartesia voice id, or the Aura model (default:
    /// ELEVENLABS_VOICE_ID / CARTESIA_VOICE_ID) [settings: tts.voice].
    #[arg(long)]
    pub tts_voice: Option<String>,
}

/// Whose conversation it is, for `run` and `chat`.
#[derive(clap::Args)]
pub struct PersonArgs {
    /// Who is talking: their memory and an unfinished conversation are kept and resumed.
    /// Without it the conversation is anonymous: it starts afresh and nothing about the
    /// person is kept.
    #[arg(long)]
    pub user: Option<String>,
    /// Forget each conversation once it is over (goodbye, or silence with nothing left to
    /// ask), for a microphone many people use [settings: dialogue.kiosk].
    #[arg(long, conflicts_with = "user")]
    pub kiosk: bool,
}

impl PersonArgs {
    pub fn apply(&self, settings: &mut Settings) {
        settings.dialogue.kiosk |= self.kiosk;
    }
}

impl DialogueArgs {
    /// The settings with these options applied over them.
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(domain) = &self.domain {
            settings.dialogue.domain = domain.clone();
        }
        if let Some(store) = &self.store {
            settings.dialogue.store = store.clone();
        }
        if let Some(log) = &self.log {
            settings.dialogue.log = log.clone();
        }
        settings
            .dialogue
            .knowledge
            .extend(self.knowledge.iter().cloned());
    }
}

impl EngineArgs {
    pub fn apply(&self, settings: &mut Settings) {
        if let Some(stt) = self.stt {
            settings.stt.engine = stt;
        }
        if let Some(tts) = self.tts {
            settings.tts.engine = tts;
        }
        if let Some(model) = &self.model {
            settings.stt.model = model.clone();
        }
        if let Some(voice) = &self.tts_voice {
            settings.tts.voice = voice.clone();
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
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
        /// The voice: piper or espeak.
        #[arg(long, default_value = "piper")]
        voice: TtsEngine,
        /// Print timings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Hold a spoken conversation: microphone → hark → speaker, or WAV files in their place.
    Run(run::RunArgs),
    /// Serve conversations over WebSocket: each connection streams its microphone in
    /// (s16le mono binary frames after a JSON `start`) and gets hark's voice and the
    /// conversation's events back. See the README for the protocol.
    Serve(serve::ServeArgs),
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
    Chat(chat::ChatArgs),
    /// Service metrics from conversation logs: latency P50/P95/P99, task completion,
    /// containment, turns, escalations.
    Report {
        /// The conversation log folder [default: the data folder's conversations/, see
        /// HARK_DATA_DIR].
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// Also write a one-page HTML report with plots to FILE.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// What spoken commands ask for: transcript, intent and slots of each WAV file.
    Understand {
        files: Vec<PathBuf>,
        #[command(flatten)]
        reader: spoken::ReaderArgs,
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

impl Command {
    /// `run` and `serve` go on until stopped; the rest print and end.
    pub fn is_long_running(&self) -> bool {
        matches!(self, Command::Run(_) | Command::Serve(_))
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Window {
    Full,
    Trimmed,
}

#[derive(Subcommand)]
pub enum NluAction {
    /// Intent accuracy on a dataset. CLINC150: train on train, tune on val, report in-scope
    /// accuracy and out-of-scope recall on test. Banking77: train on --train, score --test
    /// (without --test, a fixed stratified 10 % of --train).
    Eval(nlu::EvalArgs),
    /// Slot values learned from data (Restaurant8k).
    Slots {
        #[command(subcommand)]
        action: SlotsAction,
    },
}

#[derive(Subcommand)]
pub enum SlotsAction {
    /// Train the slot tagger on --train and report per-slot F1 (exact spans) on --test
    /// (without --test, a fixed 10 % of --train).
    Eval(nlu::SlotsEvalArgs),
    /// Train the slot tagger on --train and save it where the dialogue manager finds it
    /// (MODELS/slots/restaurant8k.crfsuite, or --out).
    Train(nlu::SlotsTrainArgs),
    /// Print what the trained slot tagger reads in each line of standard input.
    Tag(nlu::SlotsTagArgs),
}

#[derive(Subcommand)]
pub enum EvalAction {
    /// Command acceptance rate on labelled recordings, clean and with noise at each SNR.
    Spoken {
        #[command(flatten)]
        reader: spoken::ReaderArgs,
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
pub enum DomainAction {
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
    /// Load a domain with the start-up checks and summarise it; with knowledge documents
    /// (its knowledge/ folder, or --knowledge), warn where an FAQ answer and the documents
    /// both answer the same question.
    Check {
        domain: String,
        /// A knowledge document or folder besides the domain's own (repeatable).
        #[arg(long)]
        knowledge: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum ModelsAction {
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

/// What every command may need.
pub struct Common {
    pub models: ModelDir,
    pub threads: usize,
    config: Option<PathBuf>,
}

impl Common {
    /// The settings: the file, then the environment (command options are applied by the
    /// commands that take them).
    pub fn settings(&self) -> Result<Settings> {
        let settings = Settings::from_file(self.config.as_deref())?;
        settings
            .with_env(|name| std::env::var(name).ok())
            .context("reading settings from the environment")
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let common = Common {
        models: ModelDir::resolve(cli.models.as_deref()),
        threads: cli.threads.unwrap_or_else(hark::default_threads).max(1),
        config: cli.config,
    };
    let (models, threads) = (&common.models, common.threads);
    match cli.command {
        Command::Transcribe {
            files,
            json,
            model,
            window,
            prompt,
        } => transcribe::transcribe(models, threads, &files, json, &model, window, prompt),
        Command::Say {
            text,
            output,
            voice,
            json,
        } => say::say(models, threads, &text, &output, voice, json),
        Command::Run(args) => run::run(&common, args),
        Command::Serve(args) => serve::run(&common, args),
        Command::Devices { json, all } => devices::devices(json, all),
        Command::Chat(args) => chat::chat(&common, args),
        Command::Report { dir, json, html } => {
            let dir = dir.unwrap_or_else(hark::config::default_log_dir);
            report::report(&dir, json, html.as_deref())
        }
        Command::Understand {
            files,
            reader,
            json,
        } => spoken::understand(models, threads, &files, &reader, json),
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
        } => spoken::eval_spoken(
            models,
            threads,
            &reader,
            spoken::EvalOptions {
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
            } => spoken::domain_import(&file, &name, out.as_deref(), force),
            DomainAction::Check { domain, knowledge } => {
                spoken::domain_check(&domain, &knowledge, models, threads)
            }
        },
        Command::Nlu {
            action: NluAction::Eval(args),
        } => nlu::nlu_eval(models, threads, args),
        Command::Nlu {
            action:
                NluAction::Slots {
                    action: SlotsAction::Eval(args),
                },
        } => nlu::slots_eval(args),
        Command::Nlu {
            action:
                NluAction::Slots {
                    action: SlotsAction::Train(args),
                },
        } => nlu::slots_train(models, args),
        Command::Nlu {
            action: NluAction::Slots {
                action: SlotsAction::Tag(args),
            },
        } => nlu::slots_tag(models, args),
        Command::Models { action } => match action {
            ModelsAction::List => models::models_list(models),
            ModelsAction::Fetch { name } => models::models_fetch(models, &name),
            ModelsAction::ImportCt2 { dir, name } => models::models_import(models, &dir, &name),
            ModelsAction::Quantize { name } => models::models_quantize(models, &name),
        },
    }
}

pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The line for a file that failed: its path, then the error, naming the path once (reading
/// errors already name it).
pub fn file_error(file: &std::path::Path, error: &anyhow::Error) -> String {
    let message = format!("{error:#}");
    let path = file.display().to_string();
    if message.contains(&path) {
        message
    } else {
        format!("{path}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_file_is_named_once() {
        let file = std::path::Path::new("/tmp/x.wav");
        let read = anyhow::anyhow!("/tmp/x.wav: no such file");
        assert_eq!(file_error(file, &read), "/tmp/x.wav: no such file");
        let decode = anyhow::anyhow!("transcription failed");
        assert_eq!(
            file_error(file, &decode),
            "/tmp/x.wav: transcription failed"
        );
    }
}
