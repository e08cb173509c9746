//! Where users get stuck, read from the conversation logs: per flow, how many conversations
//! reached each step (a slot's question, the confirmation) and where the ones that did not
//! complete stopped, and why (they left or went silent, cancelled, or went to a person); the
//! questions asked again most; the intents users ask for most; what was not understood.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::conversation::record::TurnRecord;
use crate::conversation::session::Step;

/// How a flow that was started ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    /// The conversation ended (or its log stops) with the flow still open: the user left or
    /// went silent.
    Abandoned,
    /// Cancelled, or a goodbye with the flow open.
    Cancelled,
    Escalated,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Abandoned => "abandoned",
            Outcome::Cancelled => "cancelled",
            Outcome::Escalated => "escalated",
        }
    }
}

/// One step of a flow's funnel.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StepCount {
    /// The slot asked for, "confirmation", or "start" (stopped before the first question).
    pub step: String,
    /// Flows that reached it.
    pub reached: usize,
    /// Flows whose last step it was, by how they ended (never `completed`).
    pub stopped: BTreeMap<Outcome, usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Funnel {
    pub started: usize,
    pub completed: usize,
    /// Most reached first, as a funnel narrows.
    pub steps: Vec<StepCount>,
}

/// Everything the operator looks at to see where conversations go wrong.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stuck {
    pub funnels: BTreeMap<String, Funnel>,
    /// Flows left open when their conversation ended.
    pub abandoned: usize,
    /// ("flow: step", times the same question was asked again on the next turn), most first.
    pub reasked: Vec<(String, usize)>,
    /// (intent, turns), most first.
    pub intents: Vec<(String, usize)>,
    /// (what was said, already redacted by the log; times), most first.
    pub not_understood: Vec<(String, usize)>,
}

/// How far one started flow got.
#[derive(Debug, Default)]
struct Progress {
    steps: Vec<Step>,
    last: Option<Step>,
}

/// How many of each of the most frequent `top` keys, most first (ties by key).
fn most(counts: BTreeMap<String, usize>, top: usize) -> Vec<(String, usize)> {
    let mut list: Vec<(String, usize)> = counts.into_iter().collect();
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(top);
    list
}

/// Reads `turns` (in the order they were logged; conversations may interleave).
pub fn stuck(turns: &[TurnRecord]) -> Stuck {
    let mut by_conversation: BTreeMap<&str, Vec<&TurnRecord>> = BTreeMap::new();
    for t in turns {
        by_conversation.entry(&t.conversation).or_default().push(t);
    }
    let mut ended: Vec<(String, Progress, Outcome)> = Vec::new();
    let mut reasked: BTreeMap<String, usize> = BTreeMap::new();
    let mut started: BTreeMap<String, usize> = BTreeMap::new();
    for conversation in by_conversation.values() {
        let mut open: BTreeMap<String, Progress> = BTreeMap::new();
        for t in conversation {
            if let Some(flow) = &t.started {
                *started.entry(flow.clone()).or_default() += 1;
                // Started again while open: the first one was left where it was.
                if let Some(left) = open.insert(flow.clone(), Progress::default()) {
                    ended.push((flow.clone(), left, Outcome::Abandoned));
                }
            }
            if let (Some(flow), Some(step)) = (&t.flow, &t.step) {
                if let Some(p) = open.get_mut(flow) {
                    if p.last.as_ref() == Some(step) {
                        *reasked.entry(format!("{flow}: {step}")).or_default() += 1;
                    }
                    if !p.steps.contains(step) {
                        p.steps.push(step.clone());
                    }
                    p.last = Some(step.clone());
                }
            }
            let mut closing: Vec<(String, Outcome)> = Vec::new();
            closing.extend(t.completed.iter().map(|f| (f.clone(), Outcome::Completed)));
            closing.extend(t.dropped.iter().map(|f| (f.clone(), Outcome::Cancelled)));
            if t.handoff.is_some() {
                closing.extend(open.keys().map(|f| (f.clone(), Outcome::Escalated)));
            }
            for (flow, outcome) in closing {
                if let Some(p) = open.remove(&flow) {
                    ended.push((flow, p, outcome));
                }
            }
        }
        ended.extend(open.into_iter().map(|(f, p)| (f, p, Outcome::Abandoned)));
    }
    let mut out = Stuck::default();
    for (flow, n) in started {
        out.funnels.entry(flow).or_default().started = n;
    }
    let mut steps: BTreeMap<String, BTreeMap<String, StepCount>> = BTreeMap::new();
    for (flow, progress, outcome) in ended {
        let funnel = out.funnels.entry(flow.clone()).or_default();
        let counts = steps.entry(flow).or_default();
        for step in &progress.steps {
            let name = step.to_string();
            let count = counts.entry(name.clone()).or_default();
            count.step = name;
            count.reached += 1;
        }
        match outcome {
            Outcome::Completed => funnel.completed += 1,
            _ => {
                out.abandoned += usize::from(outcome == Outcome::Abandoned);
                let name = progress
                    .last
                    .as_ref()
                    .map_or_else(|| "start".to_string(), Step::to_string);
                let count = counts.entry(name.clone()).or_default();
                count.step = name;
                *count.stopped.entry(outcome).or_default() += 1;
            }
        }
    }
    for (flow, counts) in steps {
        let mut list: Vec<StepCount> = counts.into_values().collect();
        list.sort_by(|a, b| b.reached.cmp(&a.reached).then_with(|| a.step.cmp(&b.step)));
        if let Some(funnel) = out.funnels.get_mut(&flow) {
            funnel.steps = list;
        }
    }
    let mut intents: BTreeMap<String, usize> = BTreeMap::new();
    let mut unclear: BTreeMap<String, usize> = BTreeMap::new();
    for t in turns {
        if let Some(intent) = &t.intent {
            *intents.entry(intent.clone()).or_default() += 1;
        }
        let said = t.said.trim().to_lowercase();
        if t.misunderstood && !said.is_empty() {
            *unclear.entry(said).or_default() += 1;
        }
    }
    out.reasked = most(reasked, 10);
    out.intents = most(intents, 10);
    out.not_understood = most(unclear, 10);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(conversation: &str, flow: Option<&str>, step: Option<Step>) -> TurnRecord {
        TurnRecord {
            conversation: conversation.into(),
            flow: flow.map(String::from),
            step,
            ..TurnRecord::default()
        }
    }

    fn slot(name: &str) -> Option<Step> {
        Some(Step::Slot(name.into()))
    }

    #[test]
    fn funnels_count_where_each_started_flow_stopped_and_why() {
        let start = |c: &str, step| TurnRecord {
            started: Some("book".into()),
            ..turn(c, Some("book"), step)
        };
        let mut done = turn("a", None, None);
        done.completed = Some("book".into());
        let mut cancel = turn("b", None, None);
        cancel.dropped = vec!["book".into()];
        let mut person = turn("c", None, None);
        person.handoff = Some("asked".into());
        let turns = vec![
            start("a", slot("date")),
            start("b", slot("date")),
            start("c", slot("date")),
            start("d", slot("date")),
            turn("a", Some("book"), slot("time")),
            turn("b", Some("book"), slot("time")),
            turn("d", Some("book"), slot("time")),
            turn("d", Some("book"), slot("time")),
            turn("a", Some("book"), Some(Step::Confirm)),
            done,
            cancel,
            person,
        ];
        let s = stuck(&turns);
        let funnel = &s.funnels["book"];
        assert_eq!((funnel.started, funnel.completed), (4, 1));
        let step = |name: &str| funnel.steps.iter().find(|s| s.step == name).unwrap();
        assert_eq!(step("date").reached, 4);
        assert_eq!(
            step("date").stopped,
            BTreeMap::from([(Outcome::Escalated, 1)])
        );
        assert_eq!(step("time").reached, 3);
        assert_eq!(
            step("time").stopped,
            BTreeMap::from([(Outcome::Abandoned, 1), (Outcome::Cancelled, 1)])
        );
        assert_eq!(step("confirmation").reached, 1);
        assert!(step("confirmation").stopped.is_empty());
        assert_eq!(
            funnel
                .steps
                .iter()
                .map(|s| s.step.as_str())
                .collect::<Vec<_>>(),
            ["date", "time", "confirmation"],
            "most reached first"
        );
        assert_eq!(s.abandoned, 1);
        assert_eq!(s.reasked, vec![("book: time".to_string(), 1)]);
    }

    #[test]
    fn a_flow_that_ends_on_its_first_turn_stops_at_the_start() {
        let mut t = turn("a", None, None);
        t.started = Some("complaint".into());
        t.handoff = Some("configured".into());
        let s = stuck(&[t]);
        let steps = &s.funnels["complaint"].steps;
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].step, "start");
        assert_eq!(steps[0].stopped[&Outcome::Escalated], 1);
    }

    #[test]
    fn what_was_not_understood_is_counted_as_logged() {
        let mut a = turn("a", None, None);
        a.said = "What about the weather".into();
        a.misunderstood = true;
        a.intent = Some("greet".into());
        let mut b = a.clone();
        b.said = "what about the weather ".into();
        let s = stuck(&[a, b]);
        assert_eq!(
            s.not_understood,
            vec![("what about the weather".to_string(), 2)]
        );
        assert_eq!(s.intents, vec![("greet".to_string(), 2)]);
    }
}
