//! Answers from a deployer's documents: `hark chat --domain assistant --knowledge DOC` on
//! the check half of the validation questions about Larkspur's help document (an invented
//! retailer; `../shared/data/knowledge`), the way a user types them, one conversation.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

struct Question {
    text: String,
    facts: Option<Vec<String>>,
}

fn check_questions() -> Vec<Question> {
    let path = common::root().join("tests/data/knowledge/larkspur-questions.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["split"] == "check")
        .map(|v| Question {
            text: v["q"].as_str().unwrap().to_string(),
            facts: v["facts"].as_array().map(|a| {
                a.iter()
                    .map(|f| f.as_str().unwrap().to_lowercase())
                    .collect()
            }),
        })
        .collect()
}

/// Each line typed into `hark chat --json` (one conversation), and the turns it printed.
fn chat(lines: &[String]) -> Vec<serde_json::Value> {
    let doc = common::root().join("../shared/data/knowledge/larkspur-help.md");
    assert!(doc.exists(), "{} (ships in shared/data)", doc.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hark"))
        .arg("--models")
        .arg(common::root().join("models"))
        .args([
            "chat",
            "--json",
            "--domain",
            "assistant",
            "--store",
            "none",
            "--log",
            "none",
        ])
        .arg("--knowledge")
        .arg(&doc)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_assistant_answers_from_the_document_and_says_when_it_does_not_say() {
    let questions = check_questions();
    let mut lines: Vec<String> = questions.iter().map(|q| q.text.clone()).collect();
    // The last question is one the document does not answer: the offer of a person is taken.
    lines.push("do you do interior design consultations".into());
    lines.push("yes please".into());
    let turns = chat(&lines);
    assert_eq!(turns.len(), lines.len(), "a reply to every line");
    let (mut answered, mut answerable, mut declined, mut unanswerable) = (0, 0, 0, 0);
    let mut wrong = Vec::new();
    for (q, turn) in questions.iter().zip(&turns) {
        let reply = turn["reply"].as_str().unwrap().to_lowercase();
        let says_it_does_not_know = reply.contains("i don't know that");
        match &q.facts {
            Some(facts) => {
                answerable += 1;
                if facts.iter().any(|f| reply.contains(f.as_str())) {
                    answered += 1;
                } else {
                    wrong.push((q.text.clone(), reply));
                }
            }
            None => {
                unanswerable += 1;
                if says_it_does_not_know && reply.contains("person") {
                    declined += 1;
                } else {
                    wrong.push((q.text.clone(), reply));
                }
            }
        }
    }
    for (q, reply) in &wrong {
        eprintln!("{q:?} → {reply:?}");
    }
    eprintln!(
        "answerable with the right fact: {answered} of {answerable}; unanswerable declined: {declined} of {unanswerable}"
    );
    assert!(
        answered * 100 >= answerable * 90,
        "{answered} of {answerable} answerable questions carried the right fact"
    );
    // The goal is 80 %; 10 of 14 (71 %) is what the method reaches on this half (see
    // docs/benchmarks.md), kept here so it cannot slip unnoticed.
    assert!(
        declined * 100 >= unanswerable * 70,
        "{declined} of {unanswerable} unanswerable questions declined"
    );
    // Declined, then the offer of a person taken: the conversation goes over with the
    // question in it.
    let n = turns.len();
    assert!(turns[n - 2]["reply"]
        .as_str()
        .unwrap()
        .contains("I don't know that"));
    let handoff = &turns[n - 1]["handoff"];
    assert!(handoff.is_object(), "{:?}", turns[n - 1]);
    assert!(
        handoff.to_string().contains("interior design"),
        "the handoff carries the question: {handoff}"
    );
}

#[test]
fn domain_check_warns_where_an_faq_answer_and_the_documents_answer_the_same_question() {
    let doc = common::root().join("../shared/data/knowledge/larkspur-help.md");
    let out = Command::new(env!("CARGO_BIN_EXE_hark"))
        .arg("--models")
        .arg(common::root().join("models"))
        .args(["domain", "check", "customer-service", "--knowledge"])
        .arg(&doc)
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    // The customer-service domain's opening hours are its own; Larkspur's differ.
    assert!(
        said.contains("warning: intent faq_hours and the documents (Stores)"),
        "{said}"
    );
    // An intent the documents know nothing of is not named.
    assert!(!said.contains("intent greet"), "{said}");
}
