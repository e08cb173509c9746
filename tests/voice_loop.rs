//! The voice loop with real engines: recorded user speech (a Piper voice) goes through
//! webrtc-vad, the endpointer, streaming Whisper tiny.en, the built-in responder (or the
//! dialogue core) and Piper, and the loop's recording of the speaker and its event log are
//! checked. Most conversations run in simulated time (every decode and sentence finished
//! before the next 20 ms frame, so the same recording gives the same conversation on any
//! machine); one runs in real time, alone, to show the loop keeps up.

mod common;

use common::conversation::{self, Part, Recording};
use hark::audio::file::{WavFileSink, WavFileSource};
use hark::audio::{wav, SPEECH_RATE};
use hark::clock::Clock;
use hark::dialogue::builtin::KeywordResponder;
use hark::pipeline::turn::TurnConfig;
use hark::pipeline::{run_voice_loop, Engines, LoopConfig, RunSummary};
use hark::telemetry::events::{Event, EventLog, StopReason, TimedEvent};
use hark::tts::{self, VoiceKind};

const OUT_RATE: u32 = 22_050;

/// A real-time conversation owns the machine: each test is one user at one microphone, and
/// on a 2-core machine anything else running would measure contention, which the load bench
/// does. Conversations in simulated time only share it (contention slows them, it does not
/// change them).
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

enum Hold {
    Alone(#[allow(dead_code)] std::sync::RwLockWriteGuard<'static, ()>),
    Shared(#[allow(dead_code)] std::sync::RwLockReadGuard<'static, ()>),
}

fn hold(clock: Clock) -> Hold {
    use std::sync::PoisonError;
    match clock {
        Clock::RealTime => Hold::Alone(MACHINE.write().unwrap_or_else(PoisonError::into_inner)),
        Clock::Simulated => Hold::Shared(MACHINE.read().unwrap_or_else(PoisonError::into_inner)),
    }
}

struct Outcome {
    summary: RunSummary,
    events: Vec<TimedEvent>,
    /// What the speaker played, on the input's timeline.
    played: Vec<f32>,
}

fn converse(name: &str, parts: &[Part]) -> (Recording, Outcome) {
    converse_on(Clock::Simulated, name, parts)
}

fn converse_on(clock: Clock, name: &str, parts: &[Part]) -> (Recording, Outcome) {
    // From the user's speech being made (Piper takes both cores) to the loop's end.
    let _hold = hold(clock);
    let models = common::models();
    let mut user_voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let recording = conversation::build(user_voice.as_mut(), parts);
    let engines = Engines {
        recognizer: common::recognizer().open_session().unwrap(),
        brain: Box::new(KeywordResponder::new()),
        synthesizer: common::piper(),
        turn_model: None,
    };
    let dir = common::temp_dir(name);
    let out_path = dir.join("speaker.wav");
    let paced = clock == Clock::RealTime;
    let mut source = WavFileSource::from_samples(recording.samples.clone(), SPEECH_RATE, paced);
    let mut sink = WavFileSink::create(&out_path, OUT_RATE).unwrap();
    let mut log = EventLog::recording();
    let summary = run_voice_loop(
        LoopConfig {
            clock,
            ..Default::default()
        },
        &mut source,
        &mut sink,
        engines,
        &mut log,
    )
    .expect("the loop runs to the end");
    let played = wav::read_wav(&out_path).unwrap();
    assert_eq!(played.sample_rate, OUT_RATE);
    std::fs::remove_dir_all(dir).ok();
    for e in log.events() {
        eprintln!("{:>6} {:?}", e.t_ms, e.event);
    }
    let outcome = Outcome {
        summary,
        events: log.events().to_vec(),
        played: played.interleaved,
    };
    (recording, outcome)
}

fn finals(o: &Outcome) -> Vec<(u64, String)> {
    o.events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Final { text, .. } => Some((e.t_ms, text.to_lowercase())),
            _ => None,
        })
        .collect()
}

fn replies(o: &Outcome) -> Vec<(u64, u64, String)> {
    o.events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Reply { turn, text } => Some((e.t_ms, *turn, text.clone())),
            _ => None,
        })
        .collect()
}

fn first_time(o: &Outcome, pred: impl Fn(&Event) -> bool) -> Option<u64> {
    o.events.iter().find(|e| pred(&e.event)).map(|e| e.t_ms)
}

#[test]
fn two_turns_get_two_replies_in_order() {
    let (rec, o) = converse(
        "two-turns",
        &[
            Part::Silence(600),
            Part::Say("Hello there."),
            Part::Silence(4500),
            Part::Say("Can you check the status of my order?"),
            Part::Silence(1000),
        ],
    );
    let finals = finals(&o);
    assert_eq!(finals.len(), 2, "{finals:?}");
    assert!(finals[0].1.contains("hello"), "{finals:?}");
    assert!(finals[1].1.contains("order"), "{finals:?}");
    let replies = replies(&o);
    let turns: Vec<u64> = replies.iter().map(|r| r.1).collect();
    assert!(
        turns.windows(2).all(|w| w[0] <= w[1]) && turns.first() != turns.last(),
        "{replies:?}"
    );
    assert!(replies[0].2.starts_with("Hello"), "{replies:?}");
    assert!(
        replies.iter().any(|r| r.2.contains("order number")),
        "{replies:?}"
    );
    // Order on the timeline: each reply follows its question and starts after it ended.
    assert!(
        finals[0].0 <= replies[0].0 && replies[0].0 < finals[1].0,
        "{finals:?} {replies:?}"
    );
    assert_eq!(
        (o.summary.user_turns, o.summary.replies, o.summary.barge_ins),
        (2, 2, 0)
    );

    // The speaker recording lines up with the input: silent while the user talks, sound
    // after each question.
    let played_ms = o.played.len() as u64 * 1000 / OUT_RATE as u64;
    assert!(
        played_ms >= rec.duration_ms(),
        "{played_ms} < {}",
        rec.duration_ms()
    );
    for &(start, end) in &rec.spans {
        assert!(
            conversation::rms(&o.played, OUT_RATE, start, end) < 1e-4,
            "speaker active during user speech {start}..{end}"
        );
        assert!(
            conversation::rms(&o.played, OUT_RATE, end + 600, end + 1600) > 0.01,
            "no reply after {end}"
        );
    }
    let stops: Vec<_> = o
        .events
        .iter()
        .filter_map(|e| match e.event {
            Event::AudioOutStop { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(stops, vec![StopReason::Finished, StopReason::Finished]);
}

#[test]
fn barge_in_stops_the_reply_and_the_new_question_is_answered() {
    let (rec, o) = converse(
        "barge-in",
        &[
            Part::Silence(600),
            Part::Say("I would like to book a table."),
            Part::Silence(1800),
            Part::Say("What time is it?"),
            Part::Silence(1000),
        ],
    );
    let interruption = rec.spans[1];
    let barge_in = o
        .events
        .iter()
        .find_map(|e| match &e.event {
            Event::BargeIn { turn, spoken } => Some((e.t_ms, *turn, spoken.clone())),
            _ => None,
        })
        .expect("a barge-in event");
    assert_eq!(o.summary.barge_ins, 1);
    let replies = replies(&o);
    let first_reply: String = replies
        .iter()
        .filter(|r| r.1 == barge_in.1)
        .map(|r| r.2.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    // Only what was played is kept, and that is less than the whole reply. On a loaded
    // machine the reply can be late enough that only the acknowledgement ("one moment")
    // had played when the user cut in: then none of the reply was heard.
    let paused = first_time(&o, |e| matches!(e, Event::PlaybackPaused { .. })).expect("paused");
    let reply_started = replies
        .iter()
        .find(|r| r.1 == barge_in.1)
        .is_some_and(|r| r.0 <= paused);
    if reply_started {
        assert!(
            !barge_in.2.is_empty() && barge_in.2.len() < first_reply.len(),
            "{barge_in:?} vs {first_reply:?}"
        );
        assert!(
            first_reply.starts_with(barge_in.2.trim_end_matches('…').split(' ').next().unwrap()),
            "{barge_in:?}"
        );
    } else {
        assert_eq!(
            barge_in.2, "",
            "nothing of the reply was heard: {first_reply:?}"
        );
    }
    // Playback stops within 100 ms of the interruption's start (measured on the audio) and
    // stays silent until the next reply.
    assert!(
        paused <= interruption.0 + 100,
        "paused at {paused}, user started at {}",
        interruption.0
    );
    let next_start = o
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::AudioOutStart { turn } if turn > barge_in.1))
        .map(|e| e.t_ms)
        .next()
        .expect("the new question gets a reply");
    assert!(
        conversation::rms(&o.played, OUT_RATE, interruption.0 - 400, interruption.0) > 0.01,
        "the first reply was playing"
    );
    assert!(
        conversation::rms(&o.played, OUT_RATE, interruption.0 + 100, next_start) < 1e-4,
        "reply audio kept playing"
    );
    // The next reply answers the new question.
    let answer = replies
        .iter()
        .find(|r| r.1 > barge_in.1)
        .expect("a second reply");
    assert!(answer.2.starts_with("It is"), "{answer:?}");
}

#[test]
fn a_backchannel_does_not_stop_the_reply() {
    let (rec, o) = converse(
        "backchannel",
        &[
            Part::Silence(600),
            Part::Say("I would like to book a table."),
            Part::Silence(1800),
            // Piper cannot say "uh-huh" (Whisper hears "Oh"); "okay" is as common a backchannel.
            Part::Say("Okay."),
            Part::Silence(6000),
        ],
    );
    assert_eq!(
        o.summary.barge_ins, 0,
        "a backchannel interrupted the reply"
    );
    assert!(first_time(&o, |e| matches!(e, Event::BargeIn { .. })).is_none());
    let resumed =
        first_time(&o, |e| matches!(e, Event::PlaybackResumed { .. })).expect("playback resumes");
    assert!(resumed > rec.spans[1].0);
    // The whole reply is played to its end.
    let replies = replies(&o);
    assert!(
        replies.iter().any(|r| r.2.contains("what time")),
        "{replies:?}"
    );
    let stop = o
        .events
        .iter()
        .find_map(|e| match e.event {
            Event::AudioOutStop { reason, .. } => Some((e.t_ms, reason)),
            _ => None,
        })
        .expect("the reply ends");
    assert_eq!(stop.1, StopReason::Finished);
    assert!(
        conversation::rms(&o.played, OUT_RATE, resumed, resumed + 500) > 0.01,
        "no audio after resuming"
    );
}

#[test]
fn real_time_conversation_on_a_paced_input() {
    let (rec, o) = converse_on(
        Clock::RealTime,
        "real-time",
        &[
            Part::Silence(500),
            Part::Say("Hello there."),
            Part::Silence(4500),
            Part::Say("Please reset my password."),
            Part::Silence(1500),
        ],
    );
    let finals = finals(&o);
    assert_eq!(finals.len(), 2, "{finals:?}");
    assert!(finals[1].1.contains("password"), "{finals:?}");
    let replies = replies(&o);
    assert!(
        replies.iter().any(|r| r.2.contains("password")),
        "{replies:?}"
    );
    // Each reply starts after the question it answers ended (real time: the gap is the
    // latency the benchmark reports).
    let speech_ends: Vec<u64> = o
        .events
        .iter()
        .filter_map(|e| match e.event {
            Event::SpeechEnd { at_ms } => Some(at_ms),
            _ => None,
        })
        .collect();
    let starts: Vec<u64> = o
        .events
        .iter()
        .filter(|e| matches!(e.event, Event::AudioOutStart { .. }))
        .map(|e| e.t_ms)
        .collect();
    assert_eq!(
        (speech_ends.len(), starts.len()),
        (2, 2),
        "{speech_ends:?} {starts:?}"
    );
    for (end, start) in speech_ends.iter().zip(&starts) {
        assert!(
            start > end,
            "reply at {start} before the question ended at {end}"
        );
    }
    assert!(rec.spans[1].0 > starts[0]);
}

fn dialogue_engines(models: &hark::models::ModelDir) -> Engines {
    let domain = common::root().join("config/domains/customer-service");
    let mut manager = hark::dialogue::build_manager(&domain, models, 2, &Default::default())
        .expect("the default domain loads");
    manager.today = chrono::NaiveDate::from_ymd_opt(2026, 11, 25);
    Engines {
        recognizer: common::recognizer().open_session().unwrap(),
        brain: Box::new(hark::dialogue::brain::DialogueBrain::new(manager, "tester")),
        synthesizer: common::piper(),
        turn_model: None,
    }
}

/// Runs `parts` (spoken by Piper) through the loop with the dialogue core, in simulated
/// time.
fn converse_with_dialogue(
    name: &str,
    parts: &[Part],
    config: LoopConfig,
) -> (RunSummary, Vec<TimedEvent>) {
    let _hold = hold(Clock::Simulated);
    let models = common::models();
    let mut user_voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let recording = conversation::build(user_voice.as_mut(), parts);
    let dir = common::temp_dir(name);
    let mut source = WavFileSource::from_samples(recording.samples.clone(), SPEECH_RATE, false);
    let mut sink = WavFileSink::create(&dir.join("speaker.wav"), OUT_RATE).unwrap();
    let mut log = EventLog::recording();
    let summary = run_voice_loop(
        LoopConfig {
            clock: Clock::Simulated,
            ..config
        },
        &mut source,
        &mut sink,
        dialogue_engines(&models),
        &mut log,
    )
    .unwrap();
    std::fs::remove_dir_all(dir).ok();
    for e in log.events() {
        eprintln!("{:>6} {:?}", e.t_ms, e.event);
    }
    (summary, log.events().to_vec())
}

#[test]
fn silence_after_a_question_gets_it_asked_again_twice_at_most() {
    let parts = [
        Part::Silence(500),
        Part::Say("I'd like to book an appointment."),
        Part::Silence(40_000),
    ];
    let (_, events) = converse_with_dialogue("no-input", &parts, LoopConfig::default());
    let reprompts: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Reply { text, .. } if text.starts_with("Are you still there?") => Some(e.t_ms),
            _ => None,
        })
        .collect();
    assert_eq!(
        reprompts.len(),
        2,
        "asked again twice, then quiet: {reprompts:?}"
    );
    // Each after the configured silence (7 s) following the previous reply's end.
    assert!(reprompts[1] - reprompts[0] >= 7000, "{reprompts:?}");
}

#[test]
fn a_spoken_booking_through_the_dialogue_core() {
    let parts = [
        Part::Silence(3500), // the greeting
        Part::Say("I'd like to book a haircut tomorrow at ten."),
        // The confirmation question is three sentences (about 5 s of speech from about 1 s
        // after the request): the answer comes after it, so that this is not a barge-in.
        Part::Silence(7500),
        Part::Say("Yes, please."),
        Part::Silence(8000),
    ];
    let config = LoopConfig {
        turns: TurnConfig {
            greet: true,
            ..Default::default()
        },
        ..Default::default()
    };
    let (summary, events) = converse_with_dialogue("spoken-booking", &parts, config);
    let replies: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Reply { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    eprintln!("{replies:#?}");
    assert_eq!(
        replies.first().map(String::as_str),
        Some("Hi, I'm Hark."),
        "the greeting comes first"
    );
    let all = replies.join(" ");
    assert!(
        all.contains("So that's a haircut on Thursday, November 26 at 10 AM."),
        "{all}"
    );
    assert!(
        all.contains("Your haircut is booked for Thursday, November 26 at 10 AM."),
        "{all}"
    );
    assert_eq!((summary.user_turns, summary.barge_ins), (2, 0));
}

#[test]
fn a_spoken_request_for_a_person_is_a_handoff_event() {
    let parts = [
        Part::Silence(500),
        Part::Say("Let me speak to a real person, please."),
        Part::Silence(6000),
    ];
    let (_, events) = converse_with_dialogue("handoff-event", &parts, LoopConfig::default());
    let handoff = events
        .iter()
        .find_map(|e| match &e.event {
            Event::Handoff { handoff } => Some(handoff.clone()),
            _ => None,
        })
        .expect("a handoff event");
    assert_eq!(handoff["user_id"], "tester");
    assert_eq!(handoff["reason"], "the user asked for a person");
}

/// A real coffee order from the barista dev recordings, with `pause_ms` of the room's own
/// sound inserted at `cut_s` (0: none), then 4 s of silence; (recording, where the pause
/// starts and ends, where the order ends) in ms.
fn order_with_a_pause(name: &str, cut_s: f64, pause_ms: u64) -> (Recording, (u64, u64), u64) {
    let path = common::root().join("../shared/data/barista/dev").join(name);
    let order = wav::read_wav(&path).unwrap().interleaved;
    let at = (cut_s * 16_000.0) as usize;
    let quiet = &order[..8_000]; // the half second before the customer speaks
    let mut samples = vec![0.0; 8_000];
    samples.extend_from_slice(&order[..at]);
    let paused = samples.len() as u64 / 16;
    samples.extend(quiet.iter().cycle().take(pause_ms as usize * 16));
    let resumed = samples.len() as u64 / 16;
    // The order ends at its last 20 ms that is not 35 dB under its loudest.
    let level = |c: &[f32]| c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32;
    let loudest = order.chunks(320).map(level).fold(0.0, f32::max);
    let last_word = order
        .chunks(320)
        .rposition(|c| level(c) > loudest * 10f32.powf(-3.5))
        .unwrap_or(0);
    let end = (samples.len() as u64 + (last_word as u64 + 1) * 320 - at as u64) / 16;
    samples.extend_from_slice(&order[at..]);
    samples.extend(std::iter::repeat_n(0.0, 64_000));
    let recording = Recording {
        samples,
        spans: vec![(500, end)],
    };
    (recording, (paused, resumed), end)
}

/// Runs an order through the barista domain with the end-of-turn model, in simulated time
/// (every decode and the model's hearing finished before the next frame: what is tested is
/// the decision, not the machine's speed); the speaker's recording.
fn serve_an_order(name: &str, recording: &Recording) -> Outcome {
    let _hold = hold(Clock::Simulated);
    let models = common::models();
    let domain = common::root().join("config/domains/barista");
    let manager = hark::dialogue::build_manager(&domain, &models, 2, &Default::default()).unwrap();
    let engines = Engines {
        recognizer: common::recognizer().open_session().unwrap(),
        brain: Box::new(hark::dialogue::brain::DialogueBrain::anonymous(manager)),
        synthesizer: common::piper(),
        turn_model: hark::engines::turn_model(&Default::default(), &models),
    };
    assert!(
        engines.turn_model.is_some(),
        "scripts/setup.sh installs the model"
    );
    let dir = common::temp_dir(name);
    let out_path = dir.join("speaker.wav");
    let mut source = WavFileSource::from_samples(recording.samples.clone(), SPEECH_RATE, false);
    let mut sink = WavFileSink::create(&out_path, OUT_RATE).unwrap();
    let mut log = EventLog::recording();
    let config = LoopConfig {
        clock: Clock::Simulated,
        ..Default::default()
    };
    let summary = run_voice_loop(config, &mut source, &mut sink, engines, &mut log).unwrap();
    let played = wav::read_wav(&out_path).unwrap().interleaved;
    std::fs::remove_dir_all(dir).ok();
    for e in log.events() {
        eprintln!("{:>6} {:?}", e.t_ms, e.event);
    }
    Outcome {
        summary,
        events: log.events().to_vec(),
        played,
    }
}

#[test]
fn a_customer_who_hesitates_mid_order_is_not_answered_until_the_order_is_whole() {
    // "Can I have a light roast twelve ounce | … coffee": cut at the gap before the drink,
    // where the end-of-turn model and the words both hear an unfinished order.
    let (recording, (paused, resumed), end) =
        order_with_a_pause("0075d273-51bb-47cb-b323-4437bd0de029.wav", 2.36, 1000);
    let o = serve_an_order("hesitating-order", &recording);
    assert!(
        conversation::rms(&o.played, OUT_RATE, paused, resumed + 100) < 1e-4,
        "hark spoke in the customer's pause ({paused}..{resumed} ms)"
    );
    assert!(
        conversation::rms(&o.played, OUT_RATE, end, end + 2500) > 0.01,
        "no answer after the order ended at {end} ms"
    );
    assert_eq!(o.summary.user_turns, 1, "one order, one turn");
}

#[test]
fn a_customer_who_does_not_hesitate_is_answered_at_once() {
    let (recording, _, end) =
        order_with_a_pause("0075d273-51bb-47cb-b323-4437bd0de029.wav", 0.0, 0);
    let o = serve_an_order("fluent-order", &recording);
    assert!(
        conversation::rms(&o.played, OUT_RATE, 0, end) < 1e-4,
        "hark spoke before the order ended at {end} ms"
    );
    let at = |ms: u64| (ms * OUT_RATE as u64 / 1000) as usize;
    let first = o.played[at(end)..]
        .iter()
        .position(|s| s.abs() > 0.01)
        .map(|i| end + i as u64 * 1000 / OUT_RATE as u64);
    assert!(
        first.is_some_and(|t| t < end + 1000),
        "the answer began at {first:?}, more than a second after the order ended at {end} ms"
    );
}
