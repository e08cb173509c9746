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
