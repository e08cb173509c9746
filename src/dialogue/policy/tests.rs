//! The policy on its own: scripted readings of the user's words (no classifier, no models),
//! the shipped domains, and decisions checked as data before and after they are applied.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::*;
use crate::conversation::session::{ActiveFlow, Exchange, RatingState};
use crate::knowledge::Found;
use crate::nlu::OUT_OF_SCOPE;

fn today() -> NaiveDate {
    // A Monday.
    NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
}

fn domain(name: &str) -> Domain {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/domains");
    crate::domain::load(&dir.join(name)).expect("a shipped domain")
}

/// The user's words read as `ranked` (best first); the intent is the best one when it is in
/// the domain and passes the customer-service threshold (0.35).
fn heard(text: &str, ranked: &[(&str, f32)]) -> Understood {
    let ranked: Vec<(String, f32)> = ranked.iter().map(|(i, p)| (i.to_string(), *p)).collect();
    let (best, confidence) = ranked
        .first()
        .cloned()
        .unwrap_or((OUT_OF_SCOPE.into(), 0.9));
    let intent = (best != OUT_OF_SCOPE && confidence >= 0.35).then_some(best);
    Understood {
        said: text.to_string(),
        text: text.to_string(),
        entities: entities::extract(text, today()),
        nlu: IntentResult {
            intent,
            confidence,
            ranked,
        },
        documents: None,
    }
}

/// Words with no intent of the domain in them (an answer to a question, out of scope).
fn plain(text: &str) -> Understood {
    heard(text, &[(OUT_OF_SCOPE, 0.9)])
}

fn sure(text: &str, intent: &str) -> Understood {
    heard(text, &[(intent, 0.9)])
}

/// A conversation driven through the policy, committed as the manager would: changes
/// applied, effects answered by the script (actions succeed with `result`, handoffs are
/// delivered), the reply kept in the history.
struct Convo {
    policy: Policy,
    state: Session,
    result: Result<BTreeMap<String, String>, String>,
    handoff: Result<(), String>,
    model: Option<Option<FlowCall>>,
    /// Every decision of the last turn, in order.
    phases: Vec<Decision>,
}

impl Convo {
    fn new(name: &str) -> Self {
        Self::with(Session::new("u1"), name)
    }

    fn with(state: Session, name: &str) -> Self {
        let reference = BTreeMap::from([
            ("reference".to_string(), "B-1".to_string()),
            ("status".to_string(), "is on its way".to_string()),
            ("valid_minutes".to_string(), "30".to_string()),
        ]);
        Self {
            policy: Policy::new(domain(name)),
            state,
            result: Ok(reference),
            handoff: Ok(()),
            model: None,
            phases: Vec::new(),
        }
    }

    fn cx<'a>(&self, user: Option<&'a Understood>) -> Context<'a> {
        Context {
            today: today(),
            variant: Variant::A,
            user,
        }
    }

    /// One turn; the whole reply.
    fn turn(&mut self, user: Understood) -> String {
        self.run(Some(&user), Input::Said)
    }

    fn say(&mut self, text: &str) -> String {
        self.turn(plain(text))
    }

    fn silence(&mut self) -> String {
        self.run(None, Input::Silence)
    }

    fn run(&mut self, user: Option<&Understood>, first: Input) -> String {
        let cx = self.cx(user);
        self.phases.clear();
        let mut input = first;
        let mut said = Vec::new();
        for _ in 0..8 {
            let decision = self.policy.decide(&self.state, &cx, &input);
            for change in &decision.changes {
                change.apply(&mut self.state);
            }
            said.extend(decision.say.clone());
            let effect = decision.effect.clone();
            self.phases.push(decision);
            input = match effect {
                None => break,
                Some(Effect::RunAction { .. }) => Input::ActionDone(self.result.clone()),
                Some(Effect::HandOff(_)) => Input::HandoffDelivered(self.handoff.clone()),
                Some(Effect::AskModel(_)) => match self.model.clone() {
                    Some(call) => {
                        said.push("(the model's words)".into());
                        Input::ModelAnswered { call }
                    }
                    None => Input::ModelFailed,
                },
            };
        }
        let reply = join(&said);
        self.state.last_reply = reply.clone();
        self.state.history.push(Exchange {
            user: user.map(|u| u.said.clone()).unwrap_or_default(),
            reply: reply.clone(),
            misunderstood: self.notes().misunderstood,
        });
        reply
    }

    /// The notes of the last turn, all phases together.
    fn notes(&self) -> Notes {
        let mut notes = Notes::default();
        for d in &self.phases {
            notes.merge(d.notes.clone());
        }
        notes
    }

    fn handoff(&self) -> Option<Handoff> {
        self.phases.iter().find_map(|d| match &d.effect {
            Some(Effect::HandOff(h)) => Some((**h).clone()),
            _ => None,
        })
    }

    fn effects(&self) -> Vec<&Effect> {
        self.phases
            .iter()
            .filter_map(|d| d.effect.as_ref())
            .collect()
    }

    fn flow(&self) -> Option<&ActiveFlow> {
        self.state.stack.last()
    }

    fn slot(&self, name: &str) -> Option<&str> {
        self.flow()?.slots.get(name).map(String::as_str)
    }

    /// A booking of the customer-service domain, up to its confirmation.
    fn booked_up_to_confirmation(&mut self) {
        self.turn(sure("book a haircut tomorrow at 3 pm", "book_appointment"));
        assert!(self.flow().unwrap().confirming);
    }
}

// --- decisions are data -------------------------------------------------------------

#[test]
fn deciding_changes_nothing_until_the_decision_is_applied() {
    let c = Convo::new("customer-service");
    let user = sure("book a haircut tomorrow at 3 pm", "book_appointment");
    let before = c.state.clone();
    let decision = c.policy.decide(&c.state, &c.cx(Some(&user)), &Input::Said);
    assert_eq!(c.state, before);
    assert!(decision.reply().starts_with("So that's a haircut"));
    assert!(!decision.changes.is_empty());
}

#[test]
fn the_same_input_in_the_same_state_gets_the_same_decision() {
    let c = Convo::new("customer-service");
    let user = sure("where is my order 4567", "order_status");
    let a = c.policy.decide(&c.state, &c.cx(Some(&user)), &Input::Said);
    let b = c.policy.decide(&c.state, &c.cx(Some(&user)), &Input::Said);
    assert_eq!(a, b);
}

#[test]
fn applying_the_changes_gives_the_state_the_decision_was_worked_out_on() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book an appointment", "book_appointment"));
    let user = plain("a haircut on friday at 10");
    let mut replayed = c.state.clone();
    let decision = c.policy.decide(&c.state, &c.cx(Some(&user)), &Input::Said);
    for change in &decision.changes {
        change.apply(&mut replayed);
    }
    let flow = replayed.stack.last().unwrap();
    assert_eq!(flow.slots["service"], "haircut");
    assert_eq!(flow.slots["date"], "2026-12-11");
    assert_eq!(flow.slots["time"], "10:00");
    assert!(flow.confirming);
    assert_eq!(
        replayed.pending_question.as_deref(),
        Some(decision.reply().as_str())
    );
}

#[test]
fn a_discarded_decision_leaves_no_trace() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("reset my password", "reset_password"));
    let before = c.state.clone();
    let user = plain("my work account");
    let decision = c.policy.decide(&c.state, &c.cx(Some(&user)), &Input::Said);
    drop(decision);
    assert_eq!(c.state, before);
    // The turn, when it comes, is decided afresh on the same state.
    c.turn(plain("my work account"));
    assert_eq!(c.slot("account"), Some("work"));
}

#[test]
fn a_new_conversation_keeps_the_variant_it_is_decided_with() {
    let c = Convo::new("customer-service");
    let decision = c
        .policy
        .decide(&c.state, &c.cx(Some(&sure("hi", "greet"))), &Input::Said);
    assert_eq!(decision.changes[0], Change::Variant(Variant::A));
}

#[test]
fn every_change_applies_to_a_session() {
    let mut s = Session::new("u1");
    let flow = ActiveFlow {
        intent: "order_status".into(),
        ..Default::default()
    };
    for change in [
        Change::Name("Ana".into()),
        Change::Preference {
            slot: "email".into(),
            value: "a@b.c".into(),
        },
        Change::Outcome("order_status: order_id=1".into()),
        Change::FlowStarted(flow.clone()),
        Change::Asked(Some("What's your order number?".into())),
        Change::Failures(2),
        Change::Clarifying(Some(("a".into(), "b".into()))),
        Change::HumanOffered(true),
        Change::Rating(RatingState::Asked),
        Change::FlowCompleted,
        Change::Ended,
        Change::HandedOff,
    ] {
        change.apply(&mut s);
    }
    assert_eq!(s.memory.name.as_deref(), Some("Ana"));
    assert_eq!(s.memory.preferences["email"], "a@b.c");
    assert_eq!(s.memory.outcomes.len(), 1);
    assert_eq!(s.stack, vec![flow]);
    assert_eq!(s.failures, 2);
    assert!(s.clarifying.is_some() && s.offered_human && s.ended && s.handed_off);
    assert_eq!((s.rating, s.completed_flows), (RatingState::Asked, 1));
    Change::FlowLeft.apply(&mut s);
    assert!(s.stack.is_empty());
}

// --- the order of the steps ------------------------------------------------------------

#[test]
fn the_steps_go_from_hark_s_own_questions_to_the_fallback() {
    let names: Vec<&str> = steps::USER.iter().map(|(n, _)| *n).collect();
    let at = |n: &str| names.iter().position(|x| x.contains(n)).unwrap();
    assert!(at("rating") < at("request for a person"));
    assert!(at("request for a person") < at("commands"));
    assert!(at("commands") < at("active flow"));
    assert!(at("active flow") < at("new request"));
    assert!(at("new request") < at("language model"));
    assert_eq!(names.last(), Some(&"the fallback"));
}

// --- a flow filled over several turns -----------------------------------------------------

#[test]
fn a_request_with_every_value_goes_straight_to_the_confirmation() {
    let mut c = Convo::new("customer-service");
    let reply = c.turn(sure("book a haircut tomorrow at 3 pm", "book_appointment"));
    assert_eq!(
        reply,
        "So that's a haircut on Tuesday, December 8 at 3 PM. Shall I book it?"
    );
    assert_eq!(c.notes().started.as_deref(), Some("book_appointment"));
}

#[test]
fn slots_are_asked_for_one_at_a_time() {
    let mut c = Convo::new("customer-service");
    assert_eq!(
        c.turn(sure("book an appointment", "book_appointment")),
        "What would you like to book: a haircut, a consultation, or a check-up?"
    );
    assert_eq!(c.say("a consultation"), "For which day?");
    assert_eq!(c.say("next friday"), "At what time?");
    assert!(c
        .say("at 10 am")
        .starts_with("So that's a consultation on Friday"));
    assert_eq!(c.flow().unwrap().asking, None);
}

#[test]
fn the_slot_asked_for_is_filled_first() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book an appointment", "book_appointment"));
    c.say("a haircut");
    c.say("tomorrow");
    assert_eq!(c.flow().unwrap().asking.as_deref(), Some("time"));
    c.say("at 11");
    assert_eq!(c.slot("time"), Some("11:00"));
}

#[test]
fn yes_to_the_confirmation_runs_the_action_and_says_it_is_done() {
    let mut c = Convo::new("customer-service");
    c.booked_up_to_confirmation();
    let reply = c.say("yes please");
    assert!(matches!(c.effects()[0], Effect::RunAction { flow, .. } if flow == "book_appointment"));
    assert_eq!(
        reply,
        "Done! Your haircut is booked for Tuesday, December 8 at 3 PM. Your reference is B-1. \
         Is there anything else I can help with?"
    );
    assert_eq!(c.notes().completed.as_deref(), Some("book_appointment"));
    assert!(c.state.stack.is_empty());
    assert_eq!(c.state.completed_flows, 1);
}

#[test]
fn the_action_runs_only_after_the_yes() {
    let mut c = Convo::new("customer-service");
    c.booked_up_to_confirmation();
    assert!(c.effects().is_empty());
}

#[test]
fn no_to_the_confirmation_asks_what_to_change() {
    let mut c = Convo::new("customer-service");
    c.booked_up_to_confirmation();
    assert_eq!(c.say("no"), "Okay, what would you like to change?");
    assert!(!c.flow().unwrap().confirming);
    assert!(c
        .say("make it 4 pm")
        .starts_with("Okay, 4 PM. So that's a haircut"));
}

#[test]
fn a_completed_flow_is_remembered() {
    let mut c = Convo::new("customer-service");
    c.booked_up_to_confirmation();
    c.say("yes");
    assert_eq!(c.state.memory.preferences["service"], "haircut");
    assert!(c.state.memory.outcomes[0].starts_with("book_appointment: date=2026-12-08"));
    assert_eq!(c.state.pending_question, None);
}

#[test]
fn a_flow_without_confirmation_completes_when_its_last_slot_is_filled() {
    let mut c = Convo::new("customer-service");
    assert_eq!(
        c.turn(sure("where is my order", "order_status")),
        "What's your order number?"
    );
    assert_eq!(
        c.say("4 5 6 7"),
        "Order 4 5 6 7 is on its way. Is there anything else I can help with?"
    );
}

#[test]
fn an_order_number_asked_for_may_be_bare_digits() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("where is my order", "order_status"));
    c.say("it's 98123");
    assert_eq!(c.notes().completed.as_deref(), Some("order_status"));
}

#[test]
fn typed_replies_show_order_numbers_as_digits() {
    let mut c = Convo::new("customer-service");
    c.policy.channel = Channel::Text;
    let reply = c.turn(sure("where is order 4567", "order_status"));
    assert!(reply.starts_with("Order 4567 is on its way."), "{reply}");
}

#[test]
fn a_spoken_email_fills_the_email_slot() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("reset my password", "reset_password"));
    c.say("work");
    let reply = c.say("john dot smith at example dot com");
    assert_eq!(c.slot("email"), Some("john.smith@example.com"));
    assert!(reply.contains("john.smith@example.com"), "{reply}");
}

#[test]
fn words_that_answer_nothing_get_the_slot_s_reprompt() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book an appointment", "book_appointment"));
    let reply = c.say("hmm let me think");
    assert_eq!(
        reply,
        "Sorry, we offer haircuts, consultations and check-ups. Which one would you like?"
    );
    assert!(c.notes().misunderstood);
    assert_eq!(c.flow().unwrap().reprompts, 1);
}

#[test]
fn too_many_reprompts_offer_a_person() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book an appointment", "book_appointment"));
    c.say("hmm");
    c.say("err");
    let reply = c.say("umm");
    assert_eq!(
        reply,
        "I'm having trouble understanding. Would you like me to connect you with a person?"
    );
    assert!(c.state.offered_human);
}

#[test]
fn a_new_slot_resets_the_reprompt_count() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book an appointment", "book_appointment"));
    c.say("hmm");
    c.say("a haircut");
    assert_eq!(c.flow().unwrap().reprompts, 0);
}

// --- corrections ----------------------------------------------------------------------------

#[test]
fn a_correction_at_the_confirmation_is_acknowledged_and_confirmed_again() {
    let mut c = Convo::new("customer-service");
    c.booked_up_to_confirmation();
    let reply = c.say("actually make it friday");
    assert_eq!(
        reply,
        "Okay, Friday, December 11. So that's a haircut on Friday, December 11 at 3 PM. Shall I book it?"
    );
    assert!(c.flow().unwrap().confirming);
}

#[test]
fn a_correction_before_the_confirmation_replaces_the_value() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut tomorrow", "book_appointment"));
    let reply = c.say("sorry, I meant friday");
    assert!(
        reply.starts_with("Okay, Friday, December 11. At what time?"),
        "{reply}"
    );
    assert_eq!(c.slot("date"), Some("2026-12-11"));
}

#[test]
fn a_value_for_another_slot_is_taken_without_comment() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book an appointment", "book_appointment"));
    let reply = c.say("a haircut tomorrow at noon");
    assert!(reply.starts_with("So that's a haircut"), "{reply}");
}

// --- values out of bounds -----------------------------------------------------------------

#[test]
fn a_time_outside_opening_hours_in_the_request_is_explained() {
    let mut c = Convo::new("customer-service");
    let reply = c.turn(sure(
        "book a checkup tomorrow at 8 in the evening",
        "book_appointment",
    ));
    assert_eq!(
        reply,
        "We take appointments from nine to five. What time would suit you?"
    );
    assert_eq!(c.slot("service"), Some("check-up"));
    assert_eq!(c.slot("time"), None);
    assert_eq!(c.flow().unwrap().rejected, None);
}

#[test]
fn a_time_outside_hours_given_as_the_answer_is_explained() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut tomorrow", "book_appointment"));
    assert_eq!(
        c.say("at 7 in the morning"),
        "We take appointments from nine to five. What time would suit you?"
    );
    assert!(c.say("10 am then").starts_with("So that's a haircut"));
}

#[test]
fn a_date_in_the_past_is_explained() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    let reply = c.say("yesterday");
    assert_eq!(
        reply,
        "That day has already passed. Which day would you like?"
    );
}

#[test]
fn a_clock_time_without_am_is_read_in_the_afternoon_when_the_morning_is_closed() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut tomorrow at 3", "book_appointment"));
    assert_eq!(c.slot("time"), Some("15:00"));
}

#[test]
fn a_party_too_large_is_explained() {
    let mut c = Convo::new("restaurant");
    let reply = c.turn(sure("a table for 40 people tomorrow", "book_table"));
    assert_eq!(
        reply,
        "We can seat up to twelve at one table. How many people will there be?"
    );
}

#[test]
fn a_bad_value_at_the_confirmation_is_explained_and_the_booking_kept() {
    let mut c = Convo::new("customer-service");
    c.booked_up_to_confirmation();
    let reply = c.say("make it 8 pm");
    assert_eq!(
        reply,
        "We take appointments from nine to five. What time would suit you?"
    );
    assert_eq!(c.slot("time"), Some("15:00"));
}

// --- digressions ---------------------------------------------------------------------------

#[test]
fn a_question_in_the_middle_of_a_flow_is_answered_and_the_question_asked_again() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    let reply = c.turn(sure("when are you open", "faq_hours"));
    assert_eq!(
        reply,
        "We're open from nine to five, Monday to Saturday, and closed on Sundays. For which day?"
    );
    assert_eq!(c.flow().unwrap().intent, "book_appointment");
}

#[test]
fn another_request_is_done_and_the_first_resumed() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    c.turn(sure("where is my order 4567", "order_status"));
    let reply = c
        .phases
        .iter()
        .map(Decision::reply)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(reply.contains("Order 4 5 6 7 is on its way."), "{reply}");
    assert!(
        reply.ends_with(
            "Now, let's get back to your request to book an appointment. For which day?"
        ),
        "{reply}"
    );
    assert_eq!(c.state.stack.len(), 1);
}

#[test]
fn an_unsure_other_request_does_not_interrupt_the_flow() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    c.turn(heard(
        "friday about my order",
        &[("order_status", 0.4), ("book_appointment", 0.3)],
    ));
    assert_eq!(c.state.stack.len(), 1);
    assert_eq!(c.slot("date"), Some("2026-12-11"));
}

#[test]
fn a_flow_the_domain_no_longer_has_is_dropped() {
    let mut state = Session::new("u1");
    state.stack.push(ActiveFlow {
        intent: "gone".into(),
        ..Default::default()
    });
    let mut c = Convo::with(state, "customer-service");
    let reply = c.say("hello?");
    assert!(reply.starts_with("Sorry, I can't help with that."));
    assert!(c.state.stack.is_empty());
}

// --- commands ------------------------------------------------------------------------------

#[test]
fn cancel_drops_the_flow() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    let reply = c.turn(sure("cancel that", "cancel"));
    assert_eq!(
        reply,
        "Okay, I've cancelled that. Is there anything else I can do for you?"
    );
    assert!(c.state.stack.is_empty());
    assert_eq!(c.state.pending_question, None);
}

#[test]
fn an_unsure_cancel_counts_at_the_confirmation() {
    let mut c = Convo::new("customer-service");
    c.booked_up_to_confirmation();
    c.turn(heard("council", &[("cancel", 0.4)]));
    assert!(c.state.stack.is_empty());
}

#[test]
fn an_unsure_cancel_elsewhere_is_not_acted_on_as_a_command() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    c.turn(heard("can sell", &[("cancel", 0.4)]));
    assert_eq!(c.state.stack.len(), 1);
}

#[test]
fn repeat_says_the_last_reply_again() {
    let mut c = Convo::new("customer-service");
    let first = c.turn(sure("book a haircut", "book_appointment"));
    assert_eq!(c.turn(sure("say that again", "repeat")), first);
}

#[test]
fn help_says_what_hark_can_do_then_the_open_question() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    let reply = c.turn(sure("what can you do", "help"));
    assert!(reply.starts_with("I can book an appointment"));
    assert!(reply.ends_with("For which day?"));
}

#[test]
fn thanks_keeps_the_open_question() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("where is my order", "order_status"));
    assert_eq!(
        c.turn(sure("thanks", "thanks")),
        "You're welcome! What's your order number?"
    );
}

#[test]
fn thanks_after_a_completed_flow_offers_more_help() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("where is my order 4567", "order_status"));
    assert_eq!(
        c.turn(sure("thanks", "thanks")),
        "You're welcome! Is there anything else I can help with?"
    );
}

#[test]
fn who_are_you_is_answered_with_what_hark_can_do() {
    let mut c = Convo::new("customer-service");
    let reply = c.turn(sure("who are you", "about_assistant"));
    assert!(
        reply.starts_with("I'm Hark, a virtual assistant. I can book"),
        "{reply}"
    );
}

#[test]
fn goodbye_ends_the_conversation() {
    let mut c = Convo::new("customer-service");
    assert_eq!(
        c.turn(sure("bye", "goodbye")),
        "Goodbye, and have a nice day!"
    );
    assert!(c.state.ended);
}

#[test]
fn goodbye_at_a_confirmation_is_not_taken_as_the_end() {
    let mut c = Convo::new("customer-service");
    c.booked_up_to_confirmation();
    c.turn(sure("that's all", "goodbye"));
    assert!(!c.state.ended);
}

#[test]
fn a_greeting_is_answered_with_the_name_when_hark_knows_it() {
    let mut c = Convo::new("customer-service");
    assert_eq!(c.turn(sure("hi", "greet")), "Hello! How can I help?");
    assert_eq!(
        c.turn(sure("hi, my name is ana", "greet")),
        "Hello, Ana! How can I help?"
    );
}

#[test]
fn an_faq_is_answered_for_the_channel() {
    let mut c = Convo::new("customer-service");
    c.policy.channel = Channel::Text;
    let reply = c.turn(sure("opening hours?", "faq_hours"));
    assert_eq!(
        reply,
        "We're open 9:00–17:00, Monday to Saturday; closed on Sundays."
    );
}

// --- names and users -------------------------------------------------------------------------

#[test]
fn a_name_said_with_a_cue_is_remembered_even_in_a_flow() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("where is my order", "order_status"));
    c.say("this is Priya, the number is 4567");
    assert_eq!(c.state.memory.name.as_deref(), Some("Priya"));
}

#[test]
fn what_s_my_name_is_answered_from_memory() {
    let mut c = Convo::new("customer-service");
    assert_eq!(
        c.turn(sure("what's my name", "ask_name")),
        "You haven't told me your name yet. How can I help?"
    );
    c.say("my name is Sam");
    assert!(c
        .turn(sure("what's my name", "ask_name"))
        .starts_with("You're Sam."));
}

#[test]
fn words_that_are_no_names_are_not_remembered() {
    for text in [
        "this is ridiculous",
        "This is the third time my package is late",
        "my name is",
        "Please call me back tomorrow",
        "can you call me back",
    ] {
        assert_eq!(slots::name_by_cue(text).flatten(), None, "{text:?}");
    }
}

#[test]
fn names_are_written_as_names() {
    assert_eq!(
        slots::name_by_cue("Hi, my name is ana."),
        Some(Some("Ana".into()))
    );
    assert_eq!(
        slots::name_by_cue("Call me İlker, please"),
        Some(Some("İlker".into()))
    );
    assert_eq!(
        slots::name_by_cue("this is Alex"),
        Some(Some("Alex".into()))
    );
    assert_eq!(slots::name_by_cue("call me sam"), Some(Some("Sam".into())));
    assert_eq!(slots::name_by_cue("where is my order"), None);
}

#[test]
fn a_known_user_is_welcomed_back_by_name() {
    let mut state = Session::new("u7");
    state.memory.name = Some("Ana".into());
    let c = Convo::with(state, "customer-service");
    assert_eq!(
        c.policy.greeting(&c.state),
        "Welcome back, Ana! Hi, I'm Hark. How can I help you today?"
    );
}

#[test]
fn an_anonymous_user_gets_the_plain_greeting() {
    let c = Convo::with(Session::anonymous(), "customer-service");
    assert_eq!(
        c.policy.greeting(&c.state),
        "Hi, I'm Hark. How can I help you today?"
    );
}

#[test]
fn a_conversation_picked_up_again_greets_with_its_open_question() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    assert_eq!(c.policy.greeting(&c.state), "Welcome back! For which day?");
}

#[test]
fn an_anonymous_user_can_book_without_a_memory_of_them_kept_elsewhere() {
    let mut c = Convo::with(Session::anonymous(), "customer-service");
    c.booked_up_to_confirmation();
    c.say("yes");
    assert_eq!(c.state.user_id, crate::conversation::ANONYMOUS);
    assert_eq!(c.notes().completed.as_deref(), Some("book_appointment"));
}

// --- misunderstanding and a person -----------------------------------------------------------

#[test]
fn words_out_of_scope_get_the_fallback() {
    let mut c = Convo::new("customer-service");
    let reply = c.say("what's the weather like");
    assert!(reply.starts_with("Sorry, I can't help with that."));
    assert!(c.notes().misunderstood);
    assert_eq!(c.state.failures, 1);
}

#[test]
fn repeated_failures_offer_a_person() {
    let mut c = Convo::new("customer-service");
    c.say("blah");
    assert_eq!(
        c.say("blah blah"),
        "I'm having trouble understanding. Would you like me to connect you with a person?"
    );
    assert_eq!(c.state.failures, 0);
}

#[test]
fn yes_to_the_offer_of_a_person_hands_off() {
    let mut c = Convo::new("customer-service");
    c.say("blah");
    c.say("blah blah");
    let reply = c.say("yes please");
    assert!(reply.starts_with("I'm connecting you with a member of our team"));
    let handoff = c.handoff().unwrap();
    assert_eq!(handoff.reason, "the user accepted the offer of a person");
    assert_eq!(handoff.transcript.len(), 3);
    assert!(c.state.handed_off && c.state.ended);
}

#[test]
fn no_to_the_offer_of_a_person_starts_again() {
    let mut c = Convo::new("customer-service");
    c.say("blah");
    c.say("blah blah");
    assert_eq!(c.say("no thanks"), "Okay, let's try again. How can I help?");
    assert!(!c.state.offered_human);
}

#[test]
fn neither_yes_nor_no_to_the_offer_is_read_as_a_new_request() {
    let mut c = Convo::new("customer-service");
    c.say("blah");
    c.say("blah blah");
    c.turn(sure("where is my order", "order_status"));
    assert!(!c.state.offered_human);
    assert_eq!(c.flow().unwrap().intent, "order_status");
}

#[test]
fn asking_for_a_person_mid_flow_hands_over_what_is_known() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut tomorrow", "book_appointment"));
    c.turn(sure("let me talk to a human", "human"));
    let h = c.handoff().unwrap();
    assert_eq!(h.reason, "the user asked for a person");
    assert_eq!(h.flow.as_deref(), Some("book_appointment"));
    assert_eq!(h.slots["service"], "haircut");
    assert!(h.summary.contains("still needed: time"), "{}", h.summary);
    assert!(c.state.stack.is_empty());
}

#[test]
fn frustration_mid_flow_goes_to_a_person_even_when_not_sure() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("where is my order", "order_status"));
    let reply = c.turn(heard(
        "this is useless, get me a human",
        &[("frustrated", 0.53), ("human", 0.2), ("order_status", 0.1)],
    ));
    assert!(reply.starts_with("I'm connecting you"), "{reply}");
    assert_eq!(c.handoff().unwrap().reason, "the user sounded frustrated");
}

#[test]
fn frustration_alone_mid_flow_is_not_asked_again_as_the_slot() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("where is my order", "order_status"));
    c.turn(heard(
        "ugh come on",
        &[("frustrated", 0.45), ("order_status", 0.3)],
    ));
    assert!(c.handoff().is_some());
}

#[test]
fn a_slot_answer_wins_over_a_weak_reading_of_frustration() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("where is my order", "order_status"));
    c.turn(heard(
        "ugh it's 4567",
        &[("frustrated", 0.4), ("order_status", 0.3)],
    ));
    assert!(c.handoff().is_none());
    assert_eq!(c.notes().completed.as_deref(), Some("order_status"));
}

#[test]
fn frustration_as_the_first_words_tells_the_person_what_was_likely_wanted() {
    let mut c = Convo::new("customer-service");
    c.turn(heard(
        "my package is late again, ridiculous",
        &[("frustrated", 0.7), ("order_status", 0.2)],
    ));
    let h = c.handoff().unwrap();
    assert!(h.summary.contains("check an order"), "{}", h.summary);
    assert!(
        h.summary.contains("my package is late again"),
        "{}",
        h.summary
    );
}

#[test]
fn a_handoff_that_cannot_be_delivered_says_how_else_to_reach_the_team() {
    let mut c = Convo::new("customer-service");
    c.handoff = Err("connection refused".into());
    let reply = c.turn(sure("agent please", "human"));
    assert!(reply.starts_with("I couldn't reach our team right now (connection refused)."));
}

#[test]
fn a_failed_action_is_apologised_for_and_handed_to_a_person() {
    let mut c = Convo::new("customer-service");
    c.result = Err("timed out".into());
    c.turn(sure("where is my order", "order_status"));
    let reply = c.say("4567");
    assert!(reply.starts_with(
        "Sorry, something went wrong on our side while trying to check an order. I'm connecting you"
    ));
    assert_eq!(
        c.handoff().unwrap().reason,
        "the check an order backend failed: timed out"
    );
    assert_eq!(c.notes().completed, None);
    assert_eq!(c.state.completed_flows, 0);
}

#[test]
fn a_flow_that_goes_to_a_person_completes_then_hands_off() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("I want to make a complaint", "complaint"));
    let reply = c.say("the delivery came broken");
    assert!(reply.starts_with("I'm sorry to hear that. I've noted: the delivery came broken."));
    let h = c.handoff().unwrap();
    assert_eq!(h.flow.as_deref(), Some("complaint"));
    assert_eq!(c.notes().completed.as_deref(), Some("complaint"));
}

#[test]
fn close_intents_get_a_clarifying_question() {
    let mut c = Convo::new("customer-service");
    let reply = c.turn(heard(
        "I need to change something",
        &[("book_appointment", 0.45), ("reset_password", 0.4)],
    ));
    assert_eq!(
        reply,
        "Sorry, did you want to book an appointment, or reset a password?"
    );
    assert!(c.notes().misunderstood);
}

#[test]
fn the_clarification_is_answered_by_naming_one() {
    let mut c = Convo::new("customer-service");
    c.turn(heard(
        "I need to change something",
        &[("book_appointment", 0.45), ("reset_password", 0.4)],
    ));
    c.say("the password one");
    assert_eq!(c.flow().unwrap().intent, "reset_password");
    assert_eq!(c.state.clarifying, None);
}

#[test]
fn yes_to_the_clarification_takes_the_first() {
    let mut c = Convo::new("customer-service");
    c.turn(heard(
        "I need to change something",
        &[("book_appointment", 0.45), ("reset_password", 0.4)],
    ));
    c.say("yes");
    assert_eq!(c.flow().unwrap().intent, "book_appointment");
}

#[test]
fn two_close_readings_out_of_scope_are_asked_about() {
    let mut c = Convo::new("customer-service");
    let reply = c.turn(heard(
        "something about my thing",
        &[("order_status", 0.3), ("reset_password", 0.25)],
    ));
    assert!(reply.starts_with("Sorry, did you want to check an order, or reset a password?"));
}

#[test]
fn a_confident_request_is_acted_on_without_asking() {
    let mut c = Convo::new("customer-service");
    c.turn(heard(
        "where is my order",
        &[("order_status", 0.8), ("reset_password", 0.1)],
    ));
    assert_eq!(c.flow().unwrap().intent, "order_status");
}

// --- silence --------------------------------------------------------------------------------

#[test]
fn silence_asks_the_open_question_again() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book a haircut", "book_appointment"));
    assert_eq!(c.silence(), "Are you still there? For which day?");
}

#[test]
fn silence_with_nothing_open_asks_how_to_help() {
    let mut c = Convo::new("customer-service");
    assert_eq!(c.silence(), "Are you still there? How can I help?");
}

// --- the rating question ------------------------------------------------------------------------

fn rated_convo() -> Convo {
    let mut c = Convo::new("restaurant");
    c.turn(sure("a table for 4 tomorrow at 7", "book_table"));
    assert_eq!(c.say("Priya Shah"), "So that's a table for 4 on Tuesday, December 8 at 7 PM, under Priya Shah. Shall I book it?");
    c.say("yes");
    assert_eq!(c.notes().completed.as_deref(), Some("book_table"));
    c
}

#[test]
fn goodbye_after_a_completed_flow_asks_for_a_rating() {
    let mut c = rated_convo();
    let reply = c.turn(sure("bye", "goodbye"));
    assert!(c.notes().rating_asked);
    assert_eq!(c.state.rating, RatingState::Asked);
    assert_eq!(c.state.pending_question.as_deref(), Some(reply.as_str()));
    assert!(!c.state.ended);
}

#[test]
fn a_score_answers_the_rating_and_ends_the_conversation() {
    let mut c = rated_convo();
    c.turn(sure("bye", "goodbye"));
    let reply = c.say("four out of five");
    assert_eq!(c.notes().rating, Some(4));
    assert!(reply.ends_with("Thanks for calling, see you soon!"));
    assert!(c.state.ended);
}

#[test]
fn anything_but_a_score_skips_the_rating() {
    let mut c = rated_convo();
    c.turn(sure("bye", "goodbye"));
    assert_eq!(c.say("no thanks"), "Thanks for calling, see you soon!");
    assert_eq!(c.notes().rating, None);
    assert_eq!(c.state.rating, RatingState::Done);
}

#[test]
fn silence_skips_the_rating() {
    let mut c = rated_convo();
    c.turn(sure("bye", "goodbye"));
    assert_eq!(c.silence(), "Thanks for calling, see you soon!");
    assert!(c.state.ended);
}

#[test]
fn a_conversation_that_completed_nothing_is_not_asked_for_a_rating() {
    let mut c = Convo::new("restaurant");
    c.turn(sure("bye", "goodbye"));
    assert!(!c.notes().rating_asked);
    assert!(c.state.ended);
}

// --- wording ---------------------------------------------------------------------------------

#[test]
fn the_variant_picks_the_wording() {
    let mut c = Convo::new("restaurant");
    let user = sure("book a table", "book_table");
    let mut cx = c.cx(Some(&user));
    cx.variant = Variant::B;
    let decision = c.policy.decide(&c.state, &cx, &Input::Said);
    assert_eq!(decision.reply(), "How many of you will there be?");
    c.turn(sure("book a table", "book_table"));
    assert_eq!(c.state.last_reply, "For how many people?");
}

#[test]
fn a_domain_may_reword_the_policy_s_own_phrases() {
    let mut c = Convo::new("customer-service");
    let mut domain = domain("customer-service");
    domain.phrases.what_to_change = "Right, what should be different?".into();
    c.policy = Policy::new(domain);
    c.booked_up_to_confirmation();
    assert_eq!(c.say("no"), "Right, what should be different?");
}

// --- the language model -------------------------------------------------------------------

#[test]
fn without_a_model_nothing_is_asked_of_one() {
    let mut c = Convo::new("customer-service");
    c.say("tell me a joke");
    assert!(c.effects().is_empty());
}

#[test]
fn with_a_model_words_the_domain_does_not_cover_go_to_it_with_the_conversation() {
    let mut c = Convo::new("customer-service");
    c.policy.has_model = true;
    c.model = Some(None);
    c.turn(sure("hi", "greet"));
    let reply = c.say("tell me a joke");
    assert_eq!(reply, "(the model's words)");
    let Effect::AskModel(request) = c.effects()[0] else {
        panic!("{:?}", c.effects());
    };
    let roles: Vec<&str> = request.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["system", "user", "assistant", "user"]);
    assert_eq!(request.messages[3].content, "tell me a joke");
    assert!(request.tools.iter().any(|t| t.name == "book_appointment"));
    assert!(!c.notes().misunderstood);
}

#[test]
fn the_model_is_told_whether_the_user_speaks_or_types() {
    let mut c = Convo::new("customer-service");
    c.policy.has_model = true;
    c.model = Some(None);
    c.say("tell me a joke");
    let system = |c: &Convo| match c.effects()[0] {
        Effect::AskModel(r) => r.messages[0].content.clone(),
        _ => unreachable!(),
    };
    assert!(system(&c).contains("speaking"));
    c.policy.channel = Channel::Text;
    c.say("tell me another");
    assert!(system(&c).contains("typing"));
}

#[test]
fn a_model_s_call_of_a_flow_starts_it_with_the_values_given() {
    let mut c = Convo::new("customer-service");
    c.policy.has_model = true;
    c.model = Some(Some(FlowCall {
        flow: "order_status".into(),
        values: vec![("order_id".into(), "4567".into())],
    }));
    let reply = c.say("I'm wondering about my parcel");
    assert!(reply.ends_with("Order 4 5 6 7 is on its way. Is there anything else I can help with?"));
    assert_eq!(c.notes().started.as_deref(), Some("order_status"));
}

#[test]
fn a_failing_model_gets_the_fallback_then_the_offer_of_a_person() {
    let mut c = Convo::new("customer-service");
    c.policy.has_model = true;
    assert!(c
        .say("tell me a joke")
        .starts_with("Sorry, I can't help with that."));
    assert!(c
        .say("tell me a joke")
        .starts_with("I'm having trouble understanding."));
}

#[test]
fn the_domain_answers_before_the_model_is_asked() {
    let mut c = Convo::new("customer-service");
    c.policy.has_model = true;
    c.turn(sure("where is my order", "order_status"));
    assert!(c.effects().is_empty());
}

// --- the deployer's documents -------------------------------------------------------------

fn with_documents(mut user: Understood, found: Found) -> Understood {
    user.documents = Some(found);
    user
}

fn documents_say(text: &str) -> Found {
    Found::Answer {
        text: text.into(),
        section: "Shipping".into(),
        score: 1.2,
    }
}

fn documents_silent() -> Found {
    Found::Nothing {
        score: 0.4,
        nearest: vec!["Shipping: We ship to Canada for a flat $19 per order.".into()],
    }
}

#[test]
fn a_question_the_documents_answer_gets_their_words_unless_an_intent_is_sure() {
    let mut c = Convo::new("customer-service");
    let canada = "We ship to Canada for a flat $19 per order.";
    let reply = c.turn(with_documents(
        plain("do you guys ship to canada"),
        documents_say(canada),
    ));
    assert_eq!(reply, canada);
    assert!(!c.notes().misunderstood);
    // An intent the classifier is sure of comes first.
    c.turn(with_documents(
        sure("where is my order", "order_status"),
        documents_say("Orders leave the warehouse the same day."),
    ));
    assert_eq!(c.notes().started.as_deref(), Some("order_status"));
}

#[test]
fn a_question_the_documents_do_not_answer_gets_i_dont_know_and_a_person_on_yes() {
    let mut c = Convo::new("customer-service");
    let reply = c.turn(with_documents(
        plain("do you sell cars"),
        documents_silent(),
    ));
    assert!(
        reply.starts_with("I'm sorry, I don't know that."),
        "{reply}"
    );
    assert!(reply.contains("person"), "{reply}");
    c.say("yes please");
    assert!(
        c.effects().iter().any(|e| matches!(e, Effect::HandOff(_))),
        "{:?}",
        c.effects()
    );
    // A sound or a half-heard word is no question for the documents: the fallback.
    let mut c = Convo::new("customer-service");
    let reply = c.turn(with_documents(plain("uh huh"), documents_silent()));
    assert!(
        reply.starts_with("Sorry, I can't help with that."),
        "{reply}"
    );
}

#[test]
fn the_model_gets_the_nearest_passages_and_answers_only_from_them() {
    let mut c = Convo::new("customer-service");
    c.policy.has_model = true;
    c.model = Some(None);
    c.turn(with_documents(
        plain("do you deliver up north"),
        documents_silent(),
    ));
    let Effect::AskModel(request) = c.effects()[0] else {
        panic!("{:?}", c.effects());
    };
    let system = &request.messages[0].content;
    assert!(system.contains("only from the passages"), "{system}");
    assert!(system.contains("flat $19"), "{system}");
    // Without documents the model is not told of any.
    c.say("tell me a joke");
    let Effect::AskModel(request) = c.effects()[0] else {
        panic!("{:?}", c.effects());
    };
    assert!(!request.messages[0].content.contains("passages"));
}

// --- yes and no, values said back ----------------------------------------------------------

#[test]
fn yes_and_no_in_short_answers() {
    for t in [
        "yes",
        "Yeah, please.",
        "sure, go ahead",
        "that's right",
        "okay",
    ] {
        assert_eq!(steps::yes_no(t), Some(true), "{t}");
    }
    for t in ["no", "nope", "no, that's wrong", "don't"] {
        assert_eq!(steps::yes_no(t), Some(false), "{t}");
    }
    assert_eq!(steps::yes_no("at three pm"), None);
    assert_eq!(steps::yes_no("do it"), Some(true));
    assert_eq!(steps::yes_no("do it please"), Some(true));
    assert_eq!(steps::yes_no("will do thanks"), Some(true));
    assert_eq!(steps::yes_no("do not book it"), Some(false));
    assert_eq!(steps::yes_no("does not matter"), Some(false));
    assert_eq!(steps::yes_no("is it open on sunday"), None);
    assert_eq!(
        steps::yes_no("do you have a store in chicago"),
        None,
        "a new question is no answer"
    );
    assert_eq!(
        steps::yes_no("yes yes yes yes yes yes yes yes yes"),
        None,
        "a long sentence is no short answer"
    );
}

#[test]
fn values_are_spoken_naturally() {
    assert_eq!(
        speakable(EntityKind::Date, "2026-11-27"),
        "Friday, November 27"
    );
    assert_eq!(speakable(EntityKind::Time, "15:30"), "3:30 PM");
    assert_eq!(speakable(EntityKind::Time, "09:00"), "9 AM");
    assert_eq!(speakable(EntityKind::OrderId, "4567"), "4 5 6 7");
    assert_eq!(speakable(EntityKind::Duration, "600"), "10 minutes");
    assert_eq!(shown(EntityKind::OrderId, "4567", Channel::Text), "4567");
    assert_eq!(
        shown(EntityKind::OrderId, "4567", Channel::Voice),
        "4 5 6 7"
    );
}

#[test]
fn empty_optional_slots_leave_no_gaps_in_a_reply() {
    let d = domain("customer-service");
    let flow = &d.flows["book_appointment"];
    let slots = BTreeMap::from([("service".to_string(), "haircut".to_string())]);
    let text = render(
        "A {service} at {time} .",
        flow,
        &slots,
        &BTreeMap::new(),
        Channel::Voice,
    );
    assert_eq!(text, "A haircut at.");
}

#[test]
fn the_expected_vocabulary_leads_with_the_question_s_answers() {
    let mut c = Convo::new("customer-service");
    c.turn(sure("book an appointment", "book_appointment"));
    let phrases = c.policy.expected_vocabulary(&c.state);
    assert_eq!(&phrases[..3], ["check-up", "consultation", "haircut"]);
    assert_eq!(phrases.last().map(String::as_str), Some("Cancel."));
    c.say("a haircut tomorrow at 3 pm");
    assert_eq!(c.policy.expected_vocabulary(&c.state)[0], "Yes, please.");
}

#[test]
fn slots_are_read_from_words_outside_a_conversation() {
    let c = Convo::new("customer-service");
    let slots = c
        .policy
        .slots_in("book_appointment", "a trim on friday at 10", today());
    assert_eq!(slots["service"], "haircut");
    assert_eq!(slots["date"], "2026-12-11");
    assert_eq!(
        c.policy.flow_by_values("a trim please").as_deref(),
        Some("book_appointment")
    );
}
