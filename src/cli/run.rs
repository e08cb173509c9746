//! `hark run`: a spoken conversation on the microphone and speaker, or WAV files in their
//! place.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::conversation::{dialogue_brain, domains_dir};
use super::{Common, DialogueArgs, EngineArgs};
use hark::audio::device::{Microphone, Speaker};
use hark::audio::file::{WavFileSink, WavFileSource};
use hark::audio::{AudioSink, AudioSource};
use hark::config::Settings;
use hark::dialogue::Brain;
use hark::engines::SharedEngines;
use hark::models::ModelDir;
use hark::pipeline::turn::TurnConfig;
use hark::pipeline::{run_voice_loop, Engines, LoopConfig};
use hark::telemetry::events::{Event, EventLog};

#[derive(clap::Args)]
pub struct RunArgs {
    /// A WAV file in place of the microphone, delivered in real time.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Record what the speaker plays to this WAV file, aligned sample for sample with the
    /// input (silence where nothing plays).
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
    /// Answer with the small keyword responder instead of the dialogue core.
    #[arg(long)]
    keywords: bool,
    /// Turn off echo cancellation (on by default when both sound devices are live, so
    /// hark does not take its own voice for the user's).
    #[arg(long)]
    no_aec: bool,
    /// Stop after this many seconds (default: until the input ends, or forever live).
    #[arg(long)]
    seconds: Option<f64>,
    #[command(flatten)]
    person: super::PersonArgs,
    #[command(flatten)]
    dialogue: DialogueArgs,
    #[command(flatten)]
    engines: EngineArgs,
}

pub fn run(common: &Common, io: RunArgs) -> Result<()> {
    let mut settings = common.settings()?;
    io.dialogue.apply(&mut settings);
    io.person.apply(&mut settings);
    io.engines.apply(&mut settings);
    let (engines, brain) = load(&settings, common, &io)?;
    if let Some(cache) = &engines.tts_cache {
        cache.allow(brain.fixed_wording());
    }
    let greet = !io.keywords;
    let engines = Engines {
        recognizer: engines.recognizer.open_session()?,
        brain,
        synthesizer: engines.synthesizer,
        turn_model: engines.turn_model,
    };
    let Audio {
        mut source,
        mut sink,
        sink_is_live,
    } = open_audio(&io, &settings)?;
    let mut log = event_log(io.events.as_deref())?;
    let config = LoopConfig {
        // A live speaker may be heard by the microphone: gate hark's own echo.
        echo_gate: sink_is_live.then(Default::default),
        endpointer: settings.endpointer,
        turns: TurnConfig {
            greet,
            ..settings.turns
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

/// The speech engines and the dialogue core, loaded side by side.
fn load(
    settings: &Settings,
    common: &Common,
    io: &RunArgs,
) -> Result<(SharedEngines, Box<dyn Brain>)> {
    let (models, threads) = (&common.models, common.threads);
    // The engines load while the dialogue core trains its intent model.
    let (engines, brain) = std::thread::scope(|scope| {
        let engines = scope.spawn(|| hark::engines::build(settings, models, threads));
        let brain = dialogue_core(settings, models, threads, io);
        let engines = engines
            .join()
            .map_err(|_| anyhow::anyhow!("loading the speech engines failed"));
        (engines, brain)
    });
    Ok((engines??, brain?))
}

/// The dialogue core: the keyword responder, or the domain's manager keeping the person's
/// conversations.
fn dialogue_core(
    settings: &Settings,
    models: &ModelDir,
    threads: usize,
    io: &RunArgs,
) -> Result<Box<dyn Brain>> {
    if io.keywords {
        return Ok(Box::new(hark::dialogue::builtin::KeywordResponder::new()));
    }
    let dialogue = &settings.dialogue;
    let dir = hark::domain::resolve(&dialogue.domain, &domains_dir())?;
    let options = hark::engines::dialogue_options(settings, models)?;
    let manager = hark::dialogue::build_manager(&dir, models, threads, &options)?;
    let user = io.person.user.as_deref();
    let brain = dialogue_brain(
        manager,
        user,
        dialogue.kiosk,
        &dialogue.store_spec(),
        &dialogue.log_dir(),
    )?;
    Ok(Box::new(brain))
}

/// Where the conversation's audio comes from and goes.
struct Audio {
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    /// The sink is a live speaker (that the microphone may hear).
    sink_is_live: bool,
}

/// Where the conversation's audio comes from and goes: the devices, or the files in their
/// place.
fn open_audio(io: &RunArgs, settings: &Settings) -> Result<Audio> {
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
    if let (Some(mic), Some(speaker), true) = (mic.as_mut(), speaker.as_mut(), !io.no_aec) {
        let (canceller, reference) = hark::audio::aec::echo_canceller(settings.audio.aec_delay_ms)?;
        mic.cancel_echo(canceller)?;
        speaker.feed_echo_reference(reference)?;
        aec_on = true;
    }
    let (mut source, input_rate) = audio_source(mic, io.input.as_deref(), aec_on)?;
    let sink_is_live = speaker.is_some() && !io.no_aec;
    let sink = audio_sink(speaker, io.output.as_deref(), input_rate)?;
    if let Some(limit) = io.seconds {
        source = Box::new(hark::audio::Limited::new(source, limit));
    }
    Ok(Audio {
        source,
        sink,
        sink_is_live,
    })
}

/// What the conversation listens to: the microphone, or else the input file; and its rate.
fn audio_source(
    mic: Option<Microphone>,
    input: Option<&Path>,
    aec_on: bool,
) -> Result<(Box<dyn AudioSource>, u32)> {
    let source: (Box<dyn AudioSource>, u32) = match (mic, input) {
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
    Ok(source)
}

/// What hark's voice plays to: the speaker, or else the output file (at the input's rate).
fn audio_sink(
    speaker: Option<Speaker>,
    output: Option<&Path>,
    input_rate: u32,
) -> Result<Box<dyn AudioSink>> {
    let sink: Box<dyn AudioSink> = match (speaker, output) {
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
    Ok(sink)
}

/// The conversation's event log (written to `events` when given), printing the
/// conversation as it happens.
fn event_log(events: Option<&Path>) -> Result<EventLog> {
    let mut log = match events {
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
    Ok(log)
}
