//! The dialogue core end to end through `hark chat --json`: scripted conversations for
//! every flow of the default domain and every path (happy, validation, correction, context
//! switch and resume, cancel, clarification, silence, help, repeat, FAQ, handoff), with
//! the word errors speech recognition makes in the user's text. The real intent model (the
//! MiniLM encoder) runs in each conversation. Webhook actions and handoffs go to a real
//! HTTP server on the loopback interface.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde_json::Value;

fn chat_in(domain: &str, lines: &[&str]) -> Vec<Value> {
    common::json_turns(&common::run_chat(
        &["--json", "--domain", domain, "--store", "none"],
        &[],
        lines,
    ))
}

fn chat(lines: &[&str]) -> Vec<Value> {
    chat_in("customer-service", lines)
}

fn reply(turn: &Value) -> &str {
    turn["reply"].as_str().unwrap()
}

#[test]
fn booking_with_several_slots_in_one_request() {
    let t = chat(&[
        "I'd like to book a hair cut for next friday at ten",
        "yeah",
        "bye",
    ]);
    assert_eq!(t[0]["intent"], "book_appointment");
    assert_eq!(t[0]["slots"]["service"], "haircut");
    assert_eq!(t[0]["slots"]["date"], "2026-11-27");
    assert_eq!(t[0]["slots"]["time"], "10:00");
    assert!(
        reply(&t[0]).contains("Shall I book it?"),
        "confirmation before the irreversible action"
    );
    assert!(
        reply(&t[1]).starts_with("Done! Your haircut is booked for Friday, November 27 at 10 AM."),
        "{}",
        reply(&t[1])
    );
    assert_eq!(t[2]["ended"], true);
}

#[test]
fn booking_step_by_step_with_validation() {
    let t = chat(&[
        "book an appointment",
        "a check up",
        "yesterday",
        "tomorrow",
        "at eight pm",
        "at 11am",
        "yes",
    ]);
    assert!(reply(&t[0]).contains("haircut, a consultation, or a check-up"));
    assert_eq!(t[1]["slots"]["service"], "check-up");
    assert_eq!(
        reply(&t[2]),
        "That day has already passed. Which day would you like?"
    );
    assert_eq!(t[3]["slots"]["date"], "2026-11-26");
    assert!(
        reply(&t[4]).contains("nine to five"),
        "8 PM is outside opening hours"
    );
    assert!(t[4]["slots"].get("time").is_none());
    assert!(reply(&t[5]).contains("check-up on Thursday, November 26 at 11 AM"));
    assert!(reply(&t[6]).starts_with("Done!"));
}

#[test]
fn a_correction_and_a_question_in_the_middle_of_a_booking() {
    let t = chat(&[
        "I want to book a consultation tomorrow at ten",
        "actually where is my order",
        "four five six seven",
        "make it three pm",
        "yes please",
    ]);
    // The order question interrupts the booking; the booking resumes after the answer.
    assert_eq!(t[1]["flow"], "order_status");
    assert!(reply(&t[2]).starts_with("Order 4567"), "{}", reply(&t[2]));
    assert!(reply(&t[2]).contains("back to your request to book an appointment"));
    assert_eq!(t[2]["flow"], "book_appointment");
    // The correction changes the time and confirms again.
    assert!(reply(&t[3]).starts_with("Okay, 3 PM."), "{}", reply(&t[3]));
    assert_eq!(t[3]["slots"]["time"], "15:00");
    assert!(reply(&t[4]).contains("booked for Thursday, November 26 at 3 PM"));
}

#[test]
fn saying_no_to_the_confirmation_lets_the_user_change_a_value() {
    let t = chat(&[
        "book a haircut on friday at 2pm",
        "no",
        "the time should be 4pm",
        "yes",
    ]);
    assert_eq!(reply(&t[1]), "Okay, what would you like to change?");
    assert_eq!(t[2]["slots"]["time"], "16:00");
    assert!(reply(&t[3]).contains("at 4 PM"));
}

#[test]
fn cancel_even_when_recognition_mishears_it() {
    // "council" is how Whisper heard "cancel" in this project's recordings.
    let t = chat(&["I want to book a consultation tomorrow", "council that"]);
    assert_eq!(t[1]["intent"], "cancel");
    assert_eq!(t[1]["flow"], Value::Null);
    assert!(reply(&t[1]).contains("cancelled"));
}

#[test]
fn password_reset_with_a_spoken_email_and_asr_noise() {
    let t = chat(&[
        "reset the password for my worker count",
        "it's jane dot doe at corp dot io",
        "yes",
        "that's all",
    ]);
    assert_eq!(
        t[0]["slots"]["account"], "work",
        "'worker count' is 'work account'"
    );
    assert_eq!(t[1]["slots"]["email"], "jane.doe@corp.io");
    assert!(reply(&t[1]).contains("Is that right?"));
    assert!(reply(&t[2]).starts_with("I've sent the link to jane.doe@corp.io"));
}

#[test]
fn order_status_with_the_number_in_the_request() {
    let t = chat(&["can you check order number eight one two three"]);
    assert_eq!(t[0]["intent"], "order_status");
    assert!(reply(&t[0]).starts_with("Order 8123 "), "{}", reply(&t[0]));
}

#[test]
fn faq_help_repeat_and_silence_keep_the_pending_question() {
    let t = chat(&[
        "book an appointment",
        "when are you open",
        "help",
        "",
        "say that again",
        "never mind",
    ]);
    let question = "What would you like to book: a haircut, a consultation, or a check-up?";
    assert!(reply(&t[1]).starts_with("We're open 9:00–17:00") && reply(&t[1]).ends_with(question));
    assert!(
        reply(&t[2]).starts_with("I can book an appointment") && reply(&t[2]).ends_with(question)
    );
    assert_eq!(reply(&t[3]), format!("Are you still there? {question}"));
    assert_eq!(
        reply(&t[4]),
        reply(&t[3]),
        "repeat says the last reply again"
    );
    assert!(reply(&t[5]).contains("cancelled"));
}

#[test]
fn an_ambiguous_request_gets_a_clarifying_question() {
    let t = chat(&["can you help me with my account", "reset a password"]);
    assert!(
        reply(&t[0]).starts_with("Sorry, did you want to"),
        "{}",
        reply(&t[0])
    );
    assert!(reply(&t[0]).contains("reset a password"));
    assert_eq!(t[1]["flow"], "reset_password");
}

#[test]
fn repeated_misunderstanding_offers_a_person_who_gets_the_whole_context() {
    let t = chat(&["what's the weather like", "tell me a joke", "yes"]);
    assert!(
        reply(&t[0]).starts_with("Sorry, I can't help with that."),
        "out of scope: graceful, with an offer of help"
    );
    assert!(reply(&t[1]).contains("connect you with a person"));
    let handoff = &t[2]["handoff"];
    assert_eq!(handoff["user_id"], "anonymous");
    assert_eq!(handoff["transcript"].as_array().unwrap().len(), 3);
    assert!(handoff["summary"]
        .as_str()
        .unwrap()
        .contains("tell me a joke"));
    assert!(reply(&t[2]).contains("connecting you"));
    assert_eq!(t[2]["ended"], true);
}

#[test]
fn asking_for_a_person_mid_flow_hands_over_the_slots() {
    let t = chat(&["I need a haircut tomorrow", "let me speak to a real person"]);
    let handoff = &t[1]["handoff"];
    assert_eq!(handoff["flow"], "book_appointment");
    assert_eq!(handoff["slots"]["service"], "haircut");
    assert_eq!(handoff["slots"]["date"], "2026-11-26");
}

#[test]
fn frustration_goes_to_a_person_mid_flow() {
    let t = chat(&[
        "book an appointment",
        "a haircut",
        "this is ridiculous, you're useless",
    ]);
    assert_eq!(t[2]["handoff"]["reason"], "the user sounded frustrated");
    assert_eq!(t[2]["handoff"]["slots"]["service"], "haircut");
}

#[test]
fn an_unsure_reading_of_frustration_mid_lookup_still_reaches_a_person() {
    let t = chat(&["where is my order", "this is useless, get me a human"]);
    assert!(t[1]["confidence"].as_f64().unwrap() < 0.55, "{}", t[1]);
    assert_eq!(t[1]["handoff"]["reason"], "the user sounded frustrated");
    assert_eq!(t[1]["handoff"]["flow"], "order_status");
    assert!(reply(&t[1]).contains("connecting you"));
}

#[test]
fn a_time_outside_opening_hours_gets_the_reason_and_the_hours() {
    let t = chat(&[
        "book a checkup tomorrow at 8 in the evening",
        "at 4 pm then",
    ]);
    assert_eq!(
        reply(&t[0]),
        "We take appointments from nine to five. What time would suit you?"
    );
    assert_eq!(t[0]["slots"]["service"], "check-up");
    assert_eq!(t[0]["slots"]["time"], Value::Null);
    assert_eq!(t[1]["slots"]["time"], "16:00");
}

#[test]
fn a_complaint_is_taken_down_and_handed_to_a_person() {
    let t = chat(&[
        "I'm very disappointed with your service",
        "the package arrived broken",
    ]);
    assert_eq!(t[0]["flow"], "complaint");
    assert!(reply(&t[1]).contains("the package arrived broken"));
    assert_eq!(
        t[1]["handoff"]["slots"]["issue"],
        "the package arrived broken"
    );
}

/// A webhook receiver: answers each POST with `reply` and hands over the JSON body.
fn webhook_server(reply: &'static str) -> (String, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = tx.send(serde_json::from_slice(&body).unwrap_or(Value::Null));
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
            stream.write_all(response.as_bytes()).unwrap();
        }
    });
    (url, rx)
}

/// A small domain whose flow calls `action_url` and whose handoffs go to `handoff_url`.
fn webhook_domain(dir: &Path, action_url: &str, handoff_url: &str) {
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    std::fs::write(
        dir.join("domain.toml"),
        format!(
            r#"handoff_url = "{handoff_url}"
[persona]
name = "Shop"
greeting = "Hello."
fallback = "Sorry, I can only take refunds."
offer_human = "Shall I get a person?"
handoff = "A person will take over."
goodbye = "Bye."
cancelled = "Cancelled."
help = "I take refund requests."
[intents.cancel]
examples = ["cancel", "never mind", "stop"]
[intents.help]
examples = ["help", "what can you do"]
[intents.human]
examples = ["talk to a person", "human please", "agent"]
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("flows/refund.toml"),
        format!(
            r#"intent = "refund"
description = "get a refund"
examples = ["I want a refund", "refund my order", "give me my money back", "can I return this"]
done = "Refund {{result.refund_id}} is on its way for order {{order_id}}."
[[slots]]
name = "order_id"
type = "order_id"
prompt = "Which order?"
[action]
kind = "webhook"
url = "{action_url}"
"#
        ),
    )
    .unwrap();
}

#[test]
fn webhook_actions_and_handoffs_reach_a_real_server() {
    let (action_url, actions) = webhook_server(r#"{"refund_id": "R-77"}"#);
    let (handoff_url, handoffs) = webhook_server("{}");
    let dir = common::temp_dir("webhook-domain");
    webhook_domain(&dir, &action_url, &handoff_url);
    let t = chat_in(
        dir.to_str().unwrap(),
        &[
            "I want a refund",
            "order one two three four",
            "talk to a person",
        ],
    );
    assert!(
        reply(&t[1]).starts_with("Refund R-77 is on its way for order 1234."),
        "{}",
        reply(&t[1])
    );
    let sent = actions
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(sent["flow"], "refund");
    assert_eq!(sent["slots"]["order_id"], "1234");
    assert_eq!(sent["user_id"], "anonymous");
    let handoff = handoffs
        .recv_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(handoff["reason"], "the user asked for a person");
    assert_eq!(handoff["transcript"][1]["user"], "order one two three four");
    assert_eq!(reply(&t[2]), "A person will take over.");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn an_unreachable_webhook_is_apologised_for_and_handed_over() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = common::temp_dir("webhook-down");
    let dead = format!("http://127.0.0.1:{port}/hook");
    webhook_domain(&dir, &dead, &dead);
    let t = chat_in(
        dir.to_str().unwrap(),
        &["refund my order", "order one two three four"],
    );
    assert!(
        reply(&t[1]).starts_with("Sorry, something went wrong on our side"),
        "{}",
        reply(&t[1])
    );
    assert!(
        reply(&t[1]).contains("couldn't reach our team"),
        "the handoff webhook is down too"
    );
    assert_eq!(t[1]["handoff"]["slots"]["order_id"], "1234");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_broken_domain_is_reported_with_its_file_and_reason() {
    let dir = common::temp_dir("broken-domain");
    webhook_domain(&dir, "http://127.0.0.1:9/x", "http://127.0.0.1:9/y");
    std::fs::write(
        dir.join("flows/bad.toml"),
        "intent = \"bad\"\ndescription = \"x\"\nexamples = [\"x\"]\ndone = \"At {when}.\"\n",
    )
    .unwrap();
    let out = Command::new(common::hark_bin())
        .args(["chat", "--json", "--domain", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("'{when}'") && err.contains("not a slot"),
        "{err}"
    );
    let missing = Command::new(common::hark_bin())
        .args(["chat", "--domain", "no-such-domain"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("no domain named 'no-such-domain'") && err.contains("customer-service"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn chat_spellings_and_slang_are_understood() {
    let t = chat(&["can i get an appt tmrw @ 3pm for a haircut", "yes"]);
    assert_eq!(t[0]["flow"], "book_appointment");
    assert_eq!(t[0]["slots"]["date"], "2026-11-26");
    assert_eq!(t[0]["slots"]["time"], "15:00");
    assert_eq!(
        t[0]["user"], "can i get an appt tmrw @ 3pm for a haircut",
        "the record keeps what the user typed"
    );
    let t = chat(&["yo wheres my stuff at", "it's four five seven eight two"]);
    assert_eq!(t[0]["intent"], "order_status");
    assert!(
        reply(&t[1]).starts_with("Order 45782 "),
        "typed replies show order numbers as digits: {}",
        reply(&t[1])
    );
}

#[test]
fn small_talk_is_answered_and_the_open_question_kept() {
    let t = chat(&[
        "hi, my name is Alex",
        "what's my name?",
        "who are you",
        "I'd like to book a haircut",
        "thanks",
    ]);
    assert!(reply(&t[1]).contains("You're Alex."), "{}", reply(&t[1]));
    assert!(reply(&t[2]).starts_with("I'm Hark"), "{}", reply(&t[2]));
    assert!(
        reply(&t[4]).starts_with("You're welcome!") && reply(&t[4]).ends_with(reply(&t[3])),
        "thanks mid-flow repeats the question: {} / {}",
        reply(&t[3]),
        reply(&t[4])
    );
    assert_eq!(t[4]["flow"], "book_appointment");
}

#[test]
fn a_frustrated_first_turn_reaches_a_person_with_its_story() {
    let t = chat(&["this is the third time my package is late, absolutely ridiculous"]);
    let handoff = &t[0]["handoff"];
    assert_eq!(handoff["reason"], "the user sounded frustrated");
    assert_eq!(handoff["transcript"].as_array().unwrap().len(), 1);
    let summary = handoff["summary"].as_str().unwrap();
    assert!(
        summary.contains("check an order") && summary.contains("third time my package is late"),
        "{summary}"
    );
}

#[test]
fn a_table_booking_reads_the_party_size_and_the_name_with_the_slot_tagger() {
    assert!(
        common::models().slot_tagger().exists(),
        "no slot tagger in the models folder: run scripts/setup.sh"
    );
    let t = chat_in(
        "restaurant",
        &[
            "hi, I'm Priya",
            "can we get a table at 7 tomorrow for 4 people",
            "it's under Priya Shah",
            "yes",
            "what's my name?",
        ],
    );
    assert!(reply(&t[0]).contains("Priya"), "{}", reply(&t[0]));
    assert_eq!(t[1]["flow"], "book_table");
    assert_eq!(t[1]["slots"]["people"], "4", "the party size, not the hour");
    assert_eq!(
        t[1]["slots"]["time"], "19:00",
        "7 while the kitchen is open"
    );
    assert_eq!(t[1]["slots"]["date"], "2026-11-26");
    assert_eq!(t[2]["slots"]["name"], "Priya Shah");
    assert!(
        reply(&t[3]).starts_with(
            "Booked: a table for 4 on Thursday, November 26 at 7 PM, under Priya Shah."
        ),
        "{}",
        reply(&t[3])
    );
    assert!(reply(&t[4]).contains("You're Priya."), "{}", reply(&t[4]));
}

#[test]
fn a_number_answer_fills_the_question_asked() {
    // "for 2" in the request, then "8pm" to "At what time?" and a change of the party size.
    let t = chat_in(
        "restaurant",
        &[
            "a table for 2 on friday please",
            "8pm",
            "Mei Lin",
            "no, make it 3 people",
        ],
    );
    assert_eq!(t[0]["slots"]["people"], "2");
    assert_eq!(t[1]["slots"]["time"], "20:00");
    assert_eq!(t[1]["slots"]["people"], "2");
    assert_eq!(t[2]["slots"]["name"], "Mei Lin");
    assert_eq!(t[3]["slots"]["people"], "3", "{}", reply(&t[3]));
}

#[test]
fn a_conversation_that_booked_something_asks_for_a_rating_and_the_report_keeps_it() {
    let dir = common::temp_dir("chat-ratings");
    let log = dir.to_str().unwrap();
    let args = [
        "--json",
        "--domain",
        "restaurant",
        "--store",
        "none",
        "--log",
        log,
    ];
    let booking = [
        "a table for 2 tomorrow at 8pm under Mei Lin",
        "yes",
        "no that's all",
    ];
    let rated = common::json_turns(&common::run_chat(
        &args,
        &[],
        &[&booking[..], &["four out of five"]].concat(),
    ));
    assert_eq!(
        reply(&rated[2]),
        "Before you go: on a scale of one to five, how did I do?"
    );
    assert_eq!(rated[2]["ended"], false, "the goodbye waits for the rating");
    assert_eq!(rated[3]["rating"], 4);
    assert!(
        reply(&rated[3]).starts_with("Thank you"),
        "{}",
        reply(&rated[3])
    );
    assert_eq!(rated[3]["ended"], true);
    let skipped = common::json_turns(&common::run_chat(
        &args,
        &[],
        &[&booking[..], &["no thanks"]].concat(),
    ));
    assert_eq!(skipped[3]["rating"], Value::Null);
    assert_eq!(skipped[3]["ended"], true);
    // Nothing booked, nothing asked.
    let t = common::json_turns(&common::run_chat(&args, &[], &["hello", "bye"]));
    assert_eq!(t[1]["ended"], true);
    assert_eq!(t[1]["rating_asked"], false);

    let out = common::hark(&["report", log, "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ratings = &report["ratings"];
    assert_eq!(
        (ratings["asked"].as_u64(), ratings["answered"].as_u64()),
        (Some(2), Some(1)),
        "{report}"
    );
    assert_eq!(ratings["response_rate"], 0.5);
    assert_eq!(ratings["by_flow"]["book_table"]["mean"], 4.0, "{report}");
    assert_eq!(ratings["by_outcome"]["completed"]["count"], 1, "{report}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn two_wordings_split_conversations_by_user_and_the_report_compares_them() {
    let dir = common::temp_dir("chat-variants");
    let log = dir.to_str().unwrap();
    let wordings = ["For how many people?", "How many of you will there be?"];
    let heard = |user: &str, lines: &[&str]| -> Vec<Value> {
        let args = [
            "--json",
            "--domain",
            "restaurant",
            "--store",
            "none",
            "--log",
            log,
            "--user",
            user,
        ];
        common::json_turns(&common::run_chat(&args, &[], lines))
    };
    let mut by_wording = [0, 0];
    for user in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        let t = heard(user, &["book a table"]);
        let which = wordings
            .iter()
            .position(|w| reply(&t[0]) == *w)
            .unwrap_or_else(|| panic!("neither wording: {}", reply(&t[0])));
        by_wording[which] += 1;
        let again = heard(
            user,
            &["book a table", "4", "tomorrow at 8pm", "Mei Lin", "yes"],
        );
        assert_eq!(
            reply(&again[0]),
            wordings[which],
            "{user} hears the same wording"
        );
        assert!(
            reply(&again[4]).starts_with("Booked"),
            "{}",
            reply(&again[4])
        );
    }
    assert!(by_wording[0] > 0 && by_wording[1] > 0, "{by_wording:?}");
    let out = common::hark(&["report", log, "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (variant, n) in [("a", by_wording[0]), ("b", by_wording[1])] {
        let v = &report["variants"][variant];
        assert_eq!(v["conversations"], 2 * n, "{report}");
        assert_eq!(v["tasks_completed"], n, "{report}");
        assert_eq!(v["tasks_started"], 2 * n, "{report}");
    }
    std::fs::remove_dir_all(dir).ok();
}
