//! `hark run` on live sound devices, in real time: a private PulseAudio server with null
//! sinks (scripts/virtual-sound.sh) stands in for a sound card. The user's words are played
//! into the `room` sink with `paplay`; hark listens on `room.monitor` through cpal, answers
//! on the `speaker` sink, and `parecord` records what it played.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::conversation::{self, Part};
use hark::audio::{wav, Pcm, SPEECH_RATE};
use hark::tts::{self, VoiceKind};

/// Real-time tests run one at a time: on 2 cores, two conversations at once would each
/// make the other late.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A private PulseAudio server, stopped on drop.
struct VirtualSound {
    dir: PathBuf,
    server: String,
}

impl VirtualSound {
    fn start(dir: &Path) -> Self {
        let out = Command::new("bash")
            .arg(common::root().join("scripts/virtual-sound.sh"))
            .arg("start")
            .env("HARK_PULSE_DIR", dir)
            .output()
            .expect(
                "run scripts/virtual-sound.sh (needs the pulseaudio package: scripts/setup.sh)",
            );
        assert!(
            out.status.success(),
            "virtual sound card: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        let server = line
            .trim()
            .trim_start_matches("export PULSE_SERVER=")
            .to_string();
        assert!(server.starts_with("unix:"), "{line}");
        Self {
            dir: dir.to_path_buf(),
            server,
        }
    }

    /// Sets the volume of the one stream playing into the server (hark's), once it is there.
    fn set_only_stream_volume(&self, volume: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let index = loop {
            let out = self
                .command("pactl")
                .args(["list", "short", "sink-inputs"])
                .output()
                .expect("run pactl");
            let list = String::from_utf8_lossy(&out.stdout).to_string();
            let streams: Vec<&str> = list.lines().collect();
            if let [only] = streams.as_slice() {
                break only.split_whitespace().next().unwrap().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "hark's stream never appeared: {list}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let set = self
            .command("pactl")
            .args(["set-sink-input-volume", &index, volume])
            .status()
            .expect("run pactl");
        assert!(set.success());
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("PULSE_SERVER", &self.server);
        c
    }
}

impl Drop for VirtualSound {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(common::root().join("scripts/virtual-sound.sh"))
            .arg("stop")
            .env("HARK_PULSE_DIR", &self.dir)
            .status();
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `hark run` on the virtual devices and waits until it is listening.
fn start_hark(
    sound: &VirtualSound,
    output_device: &str,
    seconds: u32,
    events: &Path,
    extra: &[&str],
) -> Killed {
    let models = common::models();
    let mut child = sound
        .command(common::hark_bin().to_str().unwrap())
        .args([
            "--models",
            models.root.to_str().unwrap(),
            "run",
            "--input-device",
            "pulseaudio:room.monitor",
        ])
        .args([
            "--output-device",
            output_device,
            "--seconds",
            &seconds.to_string(),
        ])
        // The small keyword responder: these tests are about sound, not dialogue.
        .args(["--keywords", "--store", "none"])
        .arg("--events")
        .arg(events)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hark run");
    // "speaking on" is printed once both devices are open and the models loaded.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let line = lines
            .next()
            .expect("hark run ended before it was ready")
            .unwrap();
        eprintln!("hark: {line}");
        if line.starts_with("speaking on") {
            break;
        }
        assert!(Instant::now() < deadline, "hark run never became ready");
    }
    std::thread::spawn(move || lines.for_each(|l| eprintln!("hark: {}", l.unwrap_or_default())));
    Killed(child)
}

fn events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn of_kind<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn a_spoken_conversation_through_a_real_time_sound_server() {
    let _serial = serial();
    let dir = common::temp_dir("live");
    let sound = VirtualSound::start(&dir.join("pulse"));
    let models = common::models();
    let mut voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let user = conversation::build(
        voice.as_mut(),
        &[
            // A second of room tone first: a playback stream's very first samples can be lost.
            Part::Silence(1000),
            Part::Say("Hello there."),
            Part::Silence(4000),
            Part::Say("Please reset my password."),
            Part::Silence(300),
        ],
    );
    let user_wav = dir.join("user.wav");
    wav::write_wav(&user_wav, &Pcm::new(SPEECH_RATE, user.samples.clone())).unwrap();

    // Raw samples: parecord is killed at the end, so a WAV header would never be finished.
    let recorded = dir.join("speaker.raw");
    let _recorder = Killed(
        sound
            .command("parecord")
            .args([
                "-d",
                "speaker.monitor",
                "--raw",
                "--format=s16le",
                "--rate=16000",
                "--channels=1",
            ])
            .arg(&recorded)
            .spawn()
            .expect("start parecord (pulseaudio-utils)"),
    );
    let events_path = dir.join("events.jsonl");
    let seconds = (user.duration_ms() / 1000) as u32 + 6;
    let mut hark = start_hark(&sound, "pulseaudio:speaker", seconds, &events_path, &[]);
    let played = sound
        .command("paplay")
        .args(["-d", "room"])
        .arg(&user_wav)
        .status()
        .unwrap();
    assert!(played.success());
    let status = hark.0.wait().unwrap();
    assert!(status.success(), "hark run failed: {status}");
    std::thread::sleep(Duration::from_millis(300));

    let events = events(&events_path);
    let finals: Vec<String> = of_kind(&events, "final")
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(finals.len(), 2, "{finals:?}");
    assert!(
        finals[0].contains("hello") && finals[1].contains("password"),
        "{finals:?}"
    );
    let replies: Vec<&str> = of_kind(&events, "reply")
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        replies.iter().any(|r| r.contains("password")),
        "{replies:?}"
    );
    assert_eq!(of_kind(&events, "audio_out_start").len(), 2);
    assert!(
        of_kind(&events, "barge_in").is_empty(),
        "nobody interrupted"
    );

    // What the speaker device really played: both replies, as sound.
    drop(_recorder);
    let bytes = std::fs::read(&recorded).expect("parecord wrote the recording");
    let heard: Vec<f32> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
        .collect();
    let loud_ms = heard
        .chunks(SPEECH_RATE as usize / 50)
        .filter(|f| conversation::rms(f, SPEECH_RATE, 0, 20) > 0.01)
        .count()
        * 20;
    assert!(
        loud_ms > 2000,
        "only {loud_ms} ms of reply audio reached the speaker"
    );
    let mut session = common::whisper().session().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let text = hark::stt::Transcriber::transcribe(&mut session, &heard, &Default::default())
        .unwrap()
        .text;
    assert!(
        text.to_lowercase().contains("password"),
        "the speaker played {text:?}"
    );
}

/// A kiosk: hark's speaker plays into the same room its microphone hears (`room`), so the
/// microphone hears the user and hark's own reply.
/// `echo_volume`: how loud hark's voice reaches the microphone, as PulseAudio's volume of its
/// stream into the room (100% is as loud as the user, 68% is 10 dB down).
fn in_an_echoing_room(
    name: &str,
    user_parts: &[Part],
    aec: bool,
    echo_volume: &str,
) -> Vec<serde_json::Value> {
    let dir = common::temp_dir(name);
    let sound = VirtualSound::start(&dir.join("pulse"));
    let models = common::models();
    let mut voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let user = conversation::build(voice.as_mut(), user_parts);
    let user_wav = dir.join("user.wav");
    wav::write_wav(&user_wav, &Pcm::new(SPEECH_RATE, user.samples.clone())).unwrap();
    let events_path = dir.join("events.jsonl");
    let seconds = (user.duration_ms() / 1000) as u32 + 2;
    let extra: &[&str] = if aec { &[] } else { &["--no-aec"] };
    let mut hark = start_hark(&sound, "pulseaudio:room", seconds, &events_path, extra);
    sound.set_only_stream_volume(echo_volume);
    let played = sound
        .command("paplay")
        .args(["-d", "room"])
        .arg(&user_wav)
        .status()
        .unwrap();
    assert!(played.success());
    assert!(hark.0.wait().unwrap().success());
    let events = events(&events_path);
    for e in &events {
        if e["event"] != "state" {
            eprintln!("{e}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    events
}

#[test]
fn the_reply_echo_does_not_interrupt_with_echo_cancellation_and_does_without() {
    let _serial = serial();
    let parts = [
        Part::Silence(1000),
        Part::Say("I would like to book a table."),
        Part::Silence(6000),
    ];
    let with_aec = in_an_echoing_room("echo-aec", &parts, true, "100%");
    assert_eq!(
        of_kind(&with_aec, "final").len(),
        1,
        "hark heard only the user"
    );
    assert!(
        of_kind(&with_aec, "playback_paused").is_empty(),
        "its own echo paused the reply"
    );
    assert!(of_kind(&with_aec, "barge_in").is_empty());
    let stops = of_kind(&with_aec, "audio_out_stop");
    assert!(
        stops.len() == 1 && stops[0]["reason"] == "finished",
        "{stops:?}"
    );

    // Without it, hark hears itself: its echo pauses the reply, or (heard within moments of
    // the turn's end, as the same turn going on) stops it for another.
    let without = in_an_echoing_room("echo-off", &parts, false, "100%");
    let paused = of_kind(&without, "playback_paused").len();
    let cut = of_kind(&without, "audio_out_stop")
        .iter()
        .filter(|s| s["reason"] != "finished")
        .count();
    assert!(
        paused + cut > 0,
        "without echo cancellation hark should hear itself"
    );
}

#[test]
fn the_user_can_still_barge_in_over_the_echo() {
    let _serial = serial();
    let parts = [
        Part::Silence(1000),
        Part::Say("I would like to book a table."),
        // Long enough for the first reply to be playing on a loaded 2-core machine (it starts
        // ~0.3 s after the turn ends when idle, ~1 s with both cores busy), short enough that
        // it is still playing: the reply lasts ~4 s.
        Part::Silence(2400),
        Part::Say("What time is it?"),
        Part::Silence(3000),
    ];
    // Double talk in a room: the user is nearer the microphone than the speaker, so hark's
    // voice reaches it 10 dB below theirs.
    let events = in_an_echoing_room("echo-barge-in", &parts, true, "68%");
    assert_eq!(
        of_kind(&events, "barge_in").len(),
        1,
        "no barge-in over the echo"
    );
    let finals = of_kind(&events, "final");
    let heard = finals.last().unwrap()["text"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        heard.contains("time is it"),
        "the question was heard as {heard:?}"
    );
    let replies = of_kind(&events, "reply");
    let answer = replies.last().unwrap()["text"].as_str().unwrap();
    assert!(answer.starts_with("It is"), "answered {answer:?}");
}
