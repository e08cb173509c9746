//! Conversation logs and the service report: conversations through `hark chat --log`, then
//! `hark report`. Personal data (e-mail addresses, order and phone numbers) never reaches
//! the log; the report counts tasks started and completed, escalations and containment.

mod common;

use std::process::Command;

#[test]
fn logs_keep_no_personal_data_and_the_report_adds_up() {
    let dir = common::temp_dir("conversation-logs");
    let log = dir.to_str().unwrap();
    let args = ["--store", "none", "--log", log, "--user", "local-user"];
    for script in [
        &["I'd like to book a haircut tomorrow at 3pm", "yes", "bye"][..],
        &[
            "reset my password",
            "work",
            "it's jane dot doe at corp dot io",
            "let me talk to a person",
        ][..],
        &["check order four five six seven"][..],
    ] {
        assert!(common::run_chat(&args, &[], script).status.success());
    }
    let logged: String = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(!logged.is_empty());
    for secret in [
        "jane",
        "corp",
        "4567",
        "4 5 6 7",
        "four five six",
        "local-user",
    ] {
        assert!(!logged.contains(secret), "the log holds {secret:?}");
    }
    let out = Command::new(common::hark_bin())
        .args(["report", log, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["conversations"], 3);
    assert_eq!(report["turns"], 8);
    assert_eq!(
        (
            report["tasks_started"].as_u64(),
            report["tasks_completed"].as_u64()
        ),
        (Some(3), Some(2))
    );
    assert_eq!(report["escalations"], 1);
    assert!((report["containment"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    std::fs::remove_dir_all(dir).ok();
}

/// Scripted conversations that stop at different steps of one flow: the report's funnel says
/// how many reached each step, where the others stopped and why, what was asked again and
/// what was not understood.
#[test]
fn the_funnel_shows_the_step_where_scripted_conversations_stop() {
    let dir = common::temp_dir("report-funnel");
    let log = dir.to_str().unwrap();
    let args = ["--store", "none", "--log", log];
    for script in [
        // Leaves after giving the day (the log stops at the time question).
        &["book an appointment", "a haircut", "tomorrow"][..],
        &[
            "book an appointment",
            "a haircut",
            "tomorrow",
            "at 3pm",
            "yes",
        ][..],
        &["book an appointment", "cancel"][..],
        &[
            "book an appointment",
            "a haircut",
            "what is the meaning of life",
            "blorp fizzle",
        ][..],
    ] {
        assert!(common::run_chat(&args, &[], script).status.success());
    }
    let out = common::hark(&["report", log, "--json"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let funnel = &report["stuck"]["funnels"]["book_appointment"];
    assert_eq!(
        (funnel["started"].as_u64(), funnel["completed"].as_u64()),
        (Some(4), Some(1))
    );
    let steps: Vec<(String, u64, serde_json::Value)> = funnel["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["reached"].as_u64().unwrap(),
                s["stopped"].clone(),
            )
        })
        .collect();
    let expected = [
        ("service", 4, serde_json::json!({"cancelled": 1})),
        ("date", 3, serde_json::json!({"abandoned": 1})),
        ("time", 2, serde_json::json!({"abandoned": 1})),
        ("confirmation", 1, serde_json::json!({})),
    ];
    assert_eq!(
        steps,
        expected
            .iter()
            .map(|(s, n, v)| (s.to_string(), *n, v.clone()))
            .collect::<Vec<_>>(),
        "{report}"
    );
    assert_eq!(report["stuck"]["abandoned"], 2);
    assert_eq!(
        report["stuck"]["reasked"][0],
        serde_json::json!(["book_appointment: date", 2])
    );
    let unclear = report["stuck"]["not_understood"].to_string();
    assert!(unclear.contains("blorp fizzle"), "{unclear}");
    // The same, as the operator reads it.
    let text = common::stdout(&common::hark(&["report", log]));
    assert!(
        text.contains("date           reached 3   stopped 1 (abandoned 1)"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// A spoken conversation through `hark run` logs its latencies; `hark report` gives their
/// percentiles, and its HTML page, opened in headless Chromium, draws the latency
/// distribution, completion per flow and escalations per day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_latency_is_reported_and_the_html_report_renders_its_plots() {
    use common::conversation::{self, Part};

    hark::models::fetch::install_tls_provider();
    let dir = common::temp_dir("report-html");
    let logs = dir.join("logs");
    let models = common::models();
    let mut voice = hark::tts::open_voice(hark::tts::VoiceKind::Piper, &models, 2).unwrap();
    let recording = conversation::build(
        voice.as_mut(),
        &[
            Part::Silence(4000),
            Part::Say("Please reset my password."),
            Part::Silence(7000),
        ],
    );
    drop(voice);
    let (input, output) = (dir.join("q.wav"), dir.join("a.wav"));
    hark::audio::wav::write_wav(&input, &hark::audio::Pcm::new(16_000, recording.samples)).unwrap();
    let run = Command::new(common::hark_bin())
        .args(["--models", models.root.to_str().unwrap(), "run"])
        .args(["--store", "none", "--log", logs.to_str().unwrap()])
        .args(["--input", input.to_str().unwrap()])
        .args(["--output", output.to_str().unwrap()])
        .args(["--log-format", "json"])
        .current_dir(common::root())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", common::stderr(&run));
    // Diagnostics are JSON lines, the conversation's id on each line about it.
    let diagnostics = common::stderr(&run);
    let ended = diagnostics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "conversation ended")
        .unwrap_or_else(|| panic!("no 'conversation ended' line: {diagnostics}"));
    let id = ended["spans"][0]["id"].as_str().unwrap_or("");
    assert_eq!(id.len(), 16, "{ended}");
    assert!(
        !diagnostics.to_lowercase().contains("reset my password"),
        "what was said is not in the diagnostics: {diagnostics}"
    );

    // A completed booking and an escalation over text, into the same logs.
    let args = ["--store", "none", "--log", logs.to_str().unwrap()];
    for script in [
        &["I'd like to book a haircut tomorrow at 3pm", "yes", "bye"][..],
        &["let me talk to a person"][..],
    ] {
        assert!(common::run_chat(&args, &[], script).status.success());
    }

    let page = dir.join("report.html");
    let out = common::hark(&[
        "report",
        logs.to_str().unwrap(),
        "--json",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let voice_to_voice = &report["latency"]["voice_to_voice"];
    // The greeting answers nothing; the request's answer is timed from its end of speech.
    assert!(voice_to_voice["count"].as_u64() >= Some(1), "{report}");
    let p50 = voice_to_voice["p50_ms"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 7000.0, "{report}");
    assert!(report["latency"]["time_to_final"]["count"].as_u64() >= Some(1));
    assert_eq!(report["conversations"], 3, "{report}");
    assert_eq!(report["escalations"], 1, "{report}");

    // Chromium parses the page and writes back the document it built.
    let dom = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (scripts/setup.sh installs it)");
    let dom = String::from_utf8_lossy(&dom.stdout);
    for name in [
        "latency",
        "completion",
        "escalations",
        "funnel-book_appointment",
    ] {
        let at = dom
            .find(&format!("data-plot=\"{name}\""))
            .unwrap_or_else(|| panic!("no {name} plot in the page Chromium built: {dom}"));
        let plot = &dom[at..at + dom[at..].find("</svg>").unwrap()];
        assert!(
            plot.contains("class=\"bar\""),
            "the {name} plot has no bars: {plot}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}
