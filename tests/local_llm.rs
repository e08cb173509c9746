//! hark's language-model path against a real model: SmolLM2-135M-Instruct on llama.cpp,
//! served over OpenAI's streaming Chat Completions by `tests/llm-server/server.mjs`
//! (`scripts/local-llm.sh` installs both; the test command runs it). The server logs every
//! request hark made and whether hark hung up before the answer was whole.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::conversation::{self, Part};
use serde_json::Value;

const GGUF: &str = "smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model server, stopped on drop.
struct ModelServer {
    child: Child,
    url: String,
    log: PathBuf,
}

impl ModelServer {
    fn start(dir: &Path) -> Self {
        let model = common::models().root.join(GGUF);
        assert!(
            model.is_file(),
            "{} is missing: run scripts/local-llm.sh",
            model.display()
        );
        let log = dir.join("model-server.jsonl");
        let mut child = Command::new("node")
            .arg(common::root().join("tests/llm-server/server.mjs"))
            .arg("--model")
            .arg(&model)
            .arg("--log")
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start node (scripts/local-llm.sh installs the model server)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines
            .next()
            .expect("the model server ended before it listened")
            .unwrap();
        let port = first
            .strip_prefix("listening on http://127.0.0.1:")
            .unwrap_or_else(|| panic!("{first}"));
        let url = format!("http://127.0.0.1:{port}/v1");
        Self { child, url, log }
    }

    /// What the server logged: one entry per request and one per answer or hang-up.
    fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("each log line is JSON"))
            .collect()
    }

    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    /// Waits until the server logged an entry of `kind`.
    fn wait_for(&self, kind: &str, limit: Duration) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self.of_kind(kind).pop() {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no '{kind}' from the model server: {:?}",
                self.entries()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal(&self, signal: &str) {
        let done = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(done.success());
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A question the documents do not answer outright, so the model is asked with the nearest
/// passages; the flows of the customer-service domain go with it as tools.
#[test]
fn a_real_model_answers_with_the_passages_and_the_flows_in_its_request() {
    let dir = common::temp_dir("local-llm-chat");
    let server = ModelServer::start(&dir);
    let knowledge = common::root().join("../shared/data/knowledge/larkspur-help.md");
    let (turns, stderr) = common::chat_json(
        &["--knowledge", knowledge.to_str().unwrap()],
        &[
            ("HARK_LLM_URL", &server.url),
            ("HARK_LLM_STALL_MS", "20000"),
        ],
        &["can you tell me something nice about your company"],
    );
    let answered = server.wait_for("answered", Duration::from_secs(5));
    let request = &server.of_kind("request")[0];
    let reply = turns[0]["reply"].as_str().unwrap_or_default();
    assert!(!reply.is_empty(), "no reply: {stderr}");
    // What hark says is the model's answer (markup taken out), not a fixed wording.
    let model_words = words(answered["text"].as_str().unwrap());
    let reply_words = words(reply);
    assert!(
        model_words.len() >= 3 && reply_words.starts_with(&model_words[..3]),
        "reply {reply:?}, model {:?}",
        answered["text"]
    );
    let system = request["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Larkspur"), "no passages: {system}");
    let tools: Vec<&str> = request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(tools.contains(&"order_status"), "{tools:?}");
    assert_eq!(
        request["messages"].as_array().unwrap().last().unwrap()["content"],
        "can you tell me something nice about your company"
    );
}

/// A real server that stops answering (SIGSTOP: the socket still accepts) is given up on
/// after the stall timeout with the apology, and the conversation goes on.
#[test]
fn a_model_server_that_stops_answering_gets_the_apology() {
    let dir = common::temp_dir("local-llm-stall");
    let server = ModelServer::start(&dir);
    server.signal("-STOP");
    let started = Instant::now();
    let (turns, _) = common::chat_json(
        &[],
        &[("HARK_LLM_URL", &server.url), ("HARK_LLM_STALL_MS", "700")],
        &["tell me a joke about penguins", "where is my order"],
    );
    server.signal("-CONT");
    let apology = turns[0]["reply"].as_str().unwrap().to_lowercase();
    assert!(apology.contains("sorry"), "{apology}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(turns[1]["flow"], "order_status", "{turns:?}");
}

/// Over voice in real time: the model's streamed answer is spoken, and a user who speaks
/// over it stops the reply and hark hangs up on the stream before the model is done.
#[test]
fn real_time_a_models_answer_is_spoken_and_a_barge_in_hangs_up_on_it() {
    let dir = common::temp_dir("local-llm-voice");
    let server = ModelServer::start(&dir);
    let models = common::models();
    let mut voice = hark::tts::open_voice(hark::tts::VoiceKind::Piper, &models, 2).unwrap();
    let recording = conversation::build(
        voice.as_mut(),
        &[
            Part::Silence(3500),
            Part::Say("Could you describe the history of bread in detail, please?"),
            // The answer starts 1.5–3 s after the question (more on a busy machine) and
            // the model goes on for ~7 s: the user speaks over it in between.
            Part::Silence(5000),
            Part::Say("Stop, where is my order?"),
            Part::Silence(5000),
        ],
    );
    drop(voice);
    let (input, output, events) = (
        dir.join("user.wav"),
        dir.join("speaker.wav"),
        dir.join("events.jsonl"),
    );
    hark::audio::wav::write_wav(
        &input,
        &hark::audio::Pcm::new(16_000, recording.samples.clone()),
    )
    .unwrap();
    // A long answer (the model writes ~60 tokens a second here), so that it is still
    // streaming when the user speaks over it.
    let config = dir.join("hark.toml");
    std::fs::write(&config, "[llm]\nmax_tokens = 400\n").unwrap();
    let run = Command::new(common::hark_bin())
        .args(["--models", models.root.to_str().unwrap()])
        .arg("--config")
        .arg(&config)
        .arg("run")
        .args(["--store", "none"])
        .args(["--input", input.to_str().unwrap()])
        .args(["--output", output.to_str().unwrap()])
        .args(["--events", events.to_str().unwrap()])
        .env("HARK_LLM_URL", &server.url)
        .env("HARK_LLM_STALL_MS", "5000")
        .current_dir(common::root())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", common::stderr(&run));
    let events: Vec<Value> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_kind =
        |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == kind).collect() };
    for e in events.iter().filter(|e| e["event"] != "state") {
        eprintln!("{e}");
    }
    let (question_end, question_start) = (recording.spans[0].1, recording.spans[1].0);
    // The answer was being spoken when the user spoke again, and stopped.
    let answer_started = of_kind("audio_out_start")
        .iter()
        .filter_map(|e| e["t_ms"].as_u64())
        .find(|&ms| ms > question_end)
        .expect("the model's answer was spoken");
    assert!(answer_started < question_start, "{answer_started}");
    assert!(!of_kind("barge_in").is_empty(), "no barge-in");
    // Hark hung up on the model mid-answer: the server saw the connection close.
    let closed = server.wait_for("closed", Duration::from_secs(5));
    assert!(
        closed["pieces"].as_u64().unwrap_or(0) > 0,
        "the model had begun: {closed}"
    );
    // At the barge-in, not when hark ended: the request went out when the turn ended.
    let at = |kind: &str| {
        of_kind(kind)
            .last()
            .and_then(|e| e["t_ms"].as_u64())
            .unwrap()
    };
    let asked_ms = of_kind("final")
        .iter()
        .filter_map(|e| e["t_ms"].as_u64())
        .find(|&ms| ms > question_end)
        .unwrap();
    let barge_in_after = at("barge_in") - asked_ms;
    assert!(
        closed["ms"].as_u64().unwrap() < barge_in_after + 1500,
        "the stream was closed {} ms after the request; the barge-in came {barge_in_after} ms after it",
        closed["ms"]
    );
    // And the question asked over it is answered by its flow, not by the model's answer.
    let last_reply = of_kind("reply")
        .last()
        .and_then(|e| e["text"].as_str())
        .unwrap_or_default();
    assert!(
        last_reply.to_lowercase().contains("order number"),
        "{last_reply:?}"
    );
}
