//! Answers from a deployer's documents: `hark chat --domain assistant --knowledge DOC` on
//! the check half of the validation questions about Larkspur's help document (an invented
//! retailer; `../shared/data/knowledge`), the way a user types them, one conversation.

mod common;
#[path = "common/knowledge_questions.rs"]
mod questions;

/// The check half of the validation questions.
fn check_questions() -> Vec<questions::Question> {
    questions::load(common::root())
        .into_iter()
        .filter(|q| q.split == "check")
        .collect()
}

/// Each line typed into `hark chat --json` (one conversation) of the assistant domain with
/// the help document, and the turns it printed.
fn chat(lines: &[String]) -> Vec<serde_json::Value> {
    let doc = common::root().join("../shared/data/knowledge/larkspur-help.md");
    assert!(doc.exists(), "{} (ships in shared/data)", doc.display());
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let args = [
        "--domain",
        "assistant",
        "--log",
        "none",
        "--knowledge",
        doc.to_str().unwrap(),
    ];
    common::chat_json(&args, &[], &lines).0
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
    let out = common::hark(&[
        "--models",
        common::models().root.to_str().unwrap(),
        "domain",
        "check",
        "customer-service",
        "--knowledge",
        doc.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let said = common::stdout(&out);
    // The customer-service domain's opening hours are its own; Larkspur's differ.
    assert!(
        said.contains("warning: intent faq_hours and the documents (Stores)"),
        "{said}"
    );
    // An intent the documents know nothing of is not named.
    assert!(!said.contains("intent greet"), "{said}");
}
