//! The commit step: the manager applies the policy's decisions to a session, carries out
//! their effects (the built-in actions, a scripted language model) and keeps the session in
//! an in-memory store; a prepared reply is committed only for the words it was made for.
//! Intents come from the classifier trained on the domain's examples with lexical features
//! only (no model files), so the words below are the domain's own examples.

use std::sync::{Arc, Mutex};

use chrono::NaiveDate;

use super::brain::DialogueBrain;
use super::llm::{ChatMessage, Completion, LanguageModel, LlmError, Tool};
use super::manager::DialogueManager;
use super::Brain;
use crate::conversation::session::Session;
use crate::store::memory::MemoryStore;

fn manager() -> DialogueManager {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/domains");
    let domain = crate::domain::load(&dir.join("customer-service")).unwrap();
    let recognizer = crate::nlu::IntentRecognizer::train(
        crate::nlu::Featurizer::new(None),
        &domain.training_examples(),
        Default::default(),
        domain.policy.threshold,
    )
    .unwrap();
    let mut manager = DialogueManager::new(domain, recognizer, Default::default());
    manager.today = NaiveDate::from_ymd_opt(2026, 12, 7);
    manager
}

/// What the model was asked: the messages and the functions offered.
type Asked = (Vec<ChatMessage>, Vec<Tool>);

/// A language model that answers from a script, streaming each answer word by word, and
/// keeps what it was asked.
#[derive(Clone, Default)]
struct ScriptedModel {
    answers: Arc<Mutex<Vec<Result<Completion, String>>>>,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl ScriptedModel {
    fn answering(answers: Vec<Result<Completion, String>>) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers)),
            ..Default::default()
        }
    }
}

impl LanguageModel for ScriptedModel {
    fn complete(
        &mut self,
        messages: &[ChatMessage],
        tools: &[Tool],
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Completion, LlmError> {
        self.asked
            .lock()
            .unwrap()
            .push((messages.to_vec(), tools.to_vec()));
        let answer = self.answers.lock().unwrap().remove(0);
        let completion = answer.map_err(|reason| LlmError::Protocol {
            url: "scripted".into(),
            reason,
        })?;
        for (i, word) in completion.text.split(' ').enumerate() {
            let piece = if i == 0 {
                word.to_string()
            } else {
                format!(" {word}")
            };
            if !on_text(&piece) {
                break;
            }
        }
        Ok(completion)
    }
}

fn streamed(manager: &mut DialogueManager, session: &mut Session, text: &str) -> (String, String) {
    let mut pieces = String::new();
    let turn = manager
        .handle_streaming(session, text, &mut |p| {
            pieces.push_str(p);
            true
        })
        .unwrap();
    (pieces, turn.reply)
}

#[test]
fn a_turn_is_committed_to_the_session_and_its_history() {
    let mut m = manager();
    let mut s = Session::new("u1");
    let turn = m.handle(&mut s, "I'd like to book an appointment").unwrap();
    assert_eq!(turn.started.as_deref(), Some("book_appointment"));
    assert_eq!(turn.flow.as_deref(), Some("book_appointment"));
    assert_eq!(s.stack.len(), 1);
    assert_eq!(s.last_reply, turn.reply);
    assert_eq!(s.history.len(), 1);
    assert_eq!(s.history[0].user, "I'd like to book an appointment");
}

#[test]
fn an_action_s_result_is_in_the_reply_and_pieces_arrive_spaced() {
    let mut m = manager();
    let mut s = Session::new("u1");
    m.handle(&mut s, "where is my order").unwrap();
    let (pieces, reply) = streamed(&mut m, &mut s, "4567");
    assert!(reply.starts_with("Order 4 5 6 7 "), "{reply}");
    assert!(
        reply.ends_with("Is there anything else I can help with?"),
        "{reply}"
    );
    assert_eq!(pieces, reply);
    assert!(s.stack.is_empty());
}

#[test]
fn a_correction_is_spoken_before_the_action_runs() {
    let mut m = manager();
    let mut s = Session::new("u1");
    m.handle(&mut s, "book a haircut tomorrow at 3 pm").unwrap();
    let mut first = None;
    m.handle_streaming(&mut s, "yes", &mut |p| {
        first.get_or_insert_with(|| p.to_string());
        true
    })
    .unwrap();
    assert!(first.unwrap().starts_with("Done! Your haircut is booked"));
}

#[test]
fn a_handoff_gets_an_id_and_the_turn_carries_it() {
    let mut m = manager();
    let mut s = Session::new("u1");
    let turn = m.handle(&mut s, "I want to talk to a human").unwrap();
    let handoff = turn.handoff.expect("a handoff");
    assert!(!handoff.id.is_empty());
    assert_eq!(
        handoff.transcript.last().unwrap().user,
        "I want to talk to a human"
    );
    assert!(turn.ended && s.handed_off);
}

#[test]
fn silence_asks_again_without_a_user_turn() {
    let mut m = manager();
    let mut s = Session::new("u1");
    m.handle(&mut s, "where is my order").unwrap();
    let turn = m.no_input(&mut s);
    assert_eq!(turn.reply, "Are you still there? What's your order number?");
    assert_eq!(s.history.last().unwrap().user, "");
}

#[test]
fn a_prepared_reply_commits_as_the_turn_would_have() {
    let mut m = manager();
    let (mut a, mut b) = (Session::new("u1"), Session::new("u1"));
    for s in [&mut a, &mut b] {
        m.handle(s, "where is my order").unwrap();
    }
    let prepared = m
        .prepare(&a, "can you check order four five six seven")
        .unwrap()
        .unwrap();
    // The order is looked up only once the turn is committed: nothing to say yet, but the
    // words answer the question.
    assert_eq!(prepared.reply(), None);
    assert_eq!(prepared.answers(), Some(true));
    let prepared = m
        .prepare(&a, "I'd like to book an appointment")
        .unwrap()
        .unwrap();
    assert!(prepared.reply().is_some());
    let before = a.clone();
    assert_eq!(a, before, "preparing changes nothing");
    let committed = m
        .commit_prepared(
            &mut a,
            "I'd like to book an appointment",
            prepared,
            &mut |_| true,
        )
        .expect("the same words in the same conversation");
    let handled = m.handle(&mut b, "I'd like to book an appointment").unwrap();
    assert_eq!(committed.reply, handled.reply);
    assert_eq!(a.stack, b.stack);
    assert_eq!(a.history, b.history);
}

#[test]
fn a_prepared_reply_for_other_words_is_dropped_without_a_trace() {
    let mut m = manager();
    let mut s = Session::new("u1");
    let prepared = m.prepare(&s, "book a haircut").unwrap().unwrap();
    let before = s.clone();
    let refused = m.commit_prepared(
        &mut s,
        "book a haircut for tomorrow please",
        prepared,
        &mut |_| panic!("nothing is said"),
    );
    assert!(refused.is_none());
    assert_eq!(s, before);
}

#[test]
fn a_prepared_reply_is_dropped_when_the_conversation_moved_on() {
    let mut m = manager();
    let mut s = Session::new("u1");
    let prepared = m.prepare(&s, "thanks").unwrap().unwrap();
    m.handle(&mut s, "where is my order").unwrap();
    assert!(m
        .commit_prepared(&mut s, "thanks", prepared, &mut |_| true)
        .is_none());
}

#[test]
fn prepared_words_match_whatever_the_punctuation() {
    let mut m = manager();
    let mut s = Session::new("u1");
    let prepared = m.prepare(&s, "Where is my order?").unwrap().unwrap();
    assert!(m
        .commit_prepared(&mut s, "where is my order", prepared, &mut |_| true)
        .is_some());
}

#[test]
fn the_model_s_answer_streams_and_becomes_the_reply() {
    let model = ScriptedModel::answering(vec![Ok(Completion {
        text: "Why did the chicken cross the road?".into(),
        ..Default::default()
    })]);
    let mut m = manager().with_llm(Box::new(model.clone()));
    let mut s = Session::new("u1");
    let (pieces, reply) = streamed(&mut m, &mut s, "tell me a joke");
    assert_eq!(reply, "Why did the chicken cross the road?");
    assert_eq!(pieces, reply);
    let asked = model.asked.lock().unwrap();
    assert_eq!(asked[0].0.last().unwrap().content, "tell me a joke");
    assert!(asked[0].1.iter().any(|t| t.name == "order_status"));
}

#[test]
fn the_model_s_function_call_starts_the_flow() {
    let mut args = serde_json::Map::new();
    args.insert("order_id".into(), "4567".into());
    let model = ScriptedModel::answering(vec![Ok(Completion {
        text: "Let me look.".into(),
        tool_call: Some(("order_status".into(), args)),
        stopped: false,
    })]);
    let mut m = manager().with_llm(Box::new(model));
    let mut s = Session::new("u1");
    let (pieces, reply) = streamed(&mut m, &mut s, "tell me a joke");
    assert!(reply.starts_with("Let me look. Order 4 5 6 7"), "{reply}");
    assert_eq!(pieces, reply);
}

#[test]
fn a_failing_model_is_answered_by_the_fallback() {
    let model = ScriptedModel::answering(vec![Err("overloaded".into())]);
    let mut m = manager().with_llm(Box::new(model));
    let mut s = Session::new("u1");
    let turn = m.handle(&mut s, "tell me a joke").unwrap();
    assert!(turn.reply.starts_with("Sorry, I can't help with that."));
    assert_eq!(s.failures, 1);
}

#[test]
fn a_stored_conversation_is_picked_up_by_the_next_brain() {
    let store = MemoryStore::new();
    let mut first = DialogueBrain::new(manager(), "ana")
        .with_store(Box::new(store.clone()))
        .unwrap();
    first.turn("book a haircut").unwrap();
    let mut second = DialogueBrain::new(manager(), "ana")
        .with_store(Box::new(store))
        .unwrap();
    assert_eq!(second.greeting().unwrap(), "Welcome back! For which day?");
    let turn = second.turn("tomorrow at 3 pm").unwrap();
    assert!(
        turn.reply.starts_with("So that's a haircut"),
        "{}",
        turn.reply
    );
}

#[test]
fn an_anonymous_conversation_keeps_nothing_in_the_store() {
    let store = MemoryStore::new();
    let mut brain = DialogueBrain::anonymous(manager())
        .with_store(Box::new(store.clone()))
        .unwrap();
    brain.turn("my name is ana").unwrap();
    let mut probe = store;
    use crate::store::SessionStore;
    assert!(probe
        .load(crate::conversation::ANONYMOUS)
        .unwrap()
        .is_none());
}

#[test]
fn a_prepared_reply_says_whether_the_words_answer_the_question() {
    let mut m = manager();
    let mut s = Session::new("u1");
    m.handle(&mut s, "book a haircut tomorrow at 3 pm").unwrap();
    let yes = m.prepare(&s, "yes").unwrap().unwrap();
    assert_eq!(yes.answers(), Some(true), "yes to the confirmation");
    let nothing = m.prepare(&s, "hmm purple elephants").unwrap().unwrap();
    assert_eq!(nothing.answers(), Some(false));
    let fresh = Session::new("u2");
    let unasked = m
        .prepare(&fresh, "I'd like to book an appointment")
        .unwrap()
        .unwrap();
    assert_eq!(unasked.answers(), None, "nothing was asked");
}

/// Every line of the conversation logs in `dir`.
fn logged(dir: &std::path::Path) -> Vec<String> {
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            lines.extend(text.lines().map(String::from));
        }
    }
    lines
}

#[test]
fn a_reply_prepared_and_dropped_leaves_no_trace() {
    let dir = std::env::temp_dir().join(format!("hark-prepared-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = crate::telemetry::conversations::ConversationLog::new(&dir).unwrap();
    let mut store = MemoryStore::new();
    let mut brain = DialogueBrain::new(manager(), "ana")
        .with_store(Box::new(store.clone()))
        .unwrap()
        .with_log(log);
    let before = brain.session.clone();
    let prepared = brain
        .prepare("book a haircut")
        .expect("the dialogue prepares");
    assert!(prepared.reply.unwrap().contains("For which day?"));
    brain.drop_prepared();
    use crate::store::SessionStore;
    assert_eq!(brain.session, before, "no flow moved, nothing remembered");
    assert!(store.load("ana").unwrap().is_none(), "nothing saved");
    assert!(logged(&dir).is_empty(), "no log line");
    assert!(
        !brain.commit_prepared("book a haircut"),
        "dropped: nothing to commit"
    );

    // Prepared again and committed, it is the turn `respond` would have made.
    brain.prepare("book a haircut").unwrap();
    assert!(brain.commit_prepared("book a haircut"));
    assert_eq!(brain.session.stack.len(), 1);
    assert!(store.load("ana").unwrap().is_some());
    assert_eq!(logged(&dir).len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_prepared_reply_is_not_committed_for_other_words() {
    let mut brain = DialogueBrain::new(manager(), "ana");
    brain.prepare("book a haircut").unwrap();
    assert!(!brain.commit_prepared("book a haircut tomorrow"));
    assert!(brain.session.stack.is_empty());
}

/// A store that keeps nothing: Redis gone, the disk full.
struct BrokenStore;

impl crate::store::SessionStore for BrokenStore {
    fn load(&mut self, _user_id: &str) -> Result<Option<(Session, i64)>, crate::store::StoreError> {
        Ok(None)
    }
    fn save(&mut self, _session: &Session) -> Result<(), crate::store::StoreError> {
        Err(crate::store::StoreError::Backend {
            location: "redis://10.0.0.7:6379/".into(),
            reason: "connection refused".into(),
        })
    }
    fn location(&self) -> String {
        "redis://10.0.0.7:6379/".into()
    }
}

#[test]
fn a_failed_save_is_told_to_the_user_and_reported_to_the_client_once() {
    let mut brain = DialogueBrain::new(manager(), "ana")
        .with_store(Box::new(BrokenStore))
        .unwrap();
    let mut said = Vec::new();
    let mut faults = Vec::new();
    for words in ["book a haircut", "tomorrow"] {
        let mut reply = String::new();
        brain
            .respond(words, &mut |piece| {
                reply.push_str(piece);
                true
            })
            .unwrap();
        said.push(reply);
        faults.extend(brain.take_fault());
    }
    assert!(said[0].contains("couldn't save"), "{said:?}");
    assert!(!said[1].contains("couldn't save"), "once: {said:?}");
    assert_eq!(faults.len(), 1, "{faults:?}");
    assert!(faults[0].contains("could not be saved"), "{faults:?}");
    assert!(
        !faults[0].contains("10.0.0.7"),
        "the store's address stays in the diagnostics"
    );
}
