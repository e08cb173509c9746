//! Conversation logs that are safe to keep, and the service metrics read from them.
//!
//! Every turn becomes one JSON line in `DIR/YYYY-MM-DD.jsonl`. What could identify a person
//! is not written: the user id is a salted hash, personal data in what was said is masked
//! (`super::redact`), and slot values are not logged at all, only which slots were filled.
//! `hark report DIR` reads the logs back into the numbers a service is judged by: task
//! completion, containment, turns, escalations.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::models::hex;

use super::metrics::Measure;
use super::ratings::RatingRecord;
use super::LatencySummary;
pub use crate::conversation::record::TurnRecord;

use super::redact::Redactor;

/// One latency of a conversation, written once the reply's audio has started (after the
/// turn's own line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingRecord {
    /// Unix seconds.
    pub ts: i64,
    pub conversation: String,
    pub measure: Measure,
    pub ms: f64,
}

/// A line of the log: a turn, a latency or a client's rating.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
// One line lives at a time while a log is read or written: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum LogLine {
    Turn(TurnRecord),
    Timing(TimingRecord),
    Rating(RatingRecord),
    Feedback(FeedbackRecord),
}

/// What the person who took over a conversation said of its handoff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    /// Unix seconds.
    pub ts: i64,
    pub handoff: String,
    /// The summary told them what they needed.
    pub useful: bool,
    /// The user's case was resolved.
    pub resolved: bool,
}

/// Appends turns and latencies to the day's log file.
pub struct ConversationLog {
    dir: PathBuf,
    salt: String,
    /// The conversation of the last turn written, and its turn count.
    conversation: String,
    turn: u32,
    failed: bool,
}

impl ConversationLog {
    /// A log of conversations in `dir`.
    pub fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        // The salt stays with the logs, so one user's conversations can be grouped, but a
        // user id cannot be looked up from a hash without the salt file.
        let salt_path = dir.join(".salt");
        let salt = match std::fs::read_to_string(&salt_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let salt = hex(&Sha256::digest(format!(
                    "{:?}{}",
                    std::time::SystemTime::now(),
                    std::process::id()
                )));
                std::fs::write(&salt_path, &salt)?;
                salt
            }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            salt,
            conversation: String::new(),
            turn: 0,
            failed: false,
        })
    }

    pub fn user_hash(&self, user_id: &str) -> String {
        hex(&Sha256::digest(format!("{}:{user_id}", self.salt)))[..16].to_string()
    }

    /// Writes one turn of `conversation`, what was said masked by `redactor`; a failing disk
    /// is reported once by `failed()` and never stops the conversation.
    pub fn record(&mut self, conversation: &str, mut record: TurnRecord, redactor: &Redactor) {
        if self.conversation != conversation {
            self.conversation = conversation.to_string();
            self.turn = 0;
        }
        self.turn += 1;
        record.turn = self.turn;
        record.conversation = conversation.to_string();
        record.said = redactor.redact(&record.said);
        record.reply = redactor.redact(&record.reply);
        self.append(&LogLine::Turn(record));
    }

    /// Writes a score (1–5) a client gave `conversation`.
    pub fn rating(&mut self, conversation: &str, score: u8) {
        self.append(&LogLine::Rating(RatingRecord {
            ts: crate::clock::now_secs(),
            conversation: conversation.to_string(),
            score,
        }));
    }

    /// Writes the feedback on handoff `handoff`.
    pub fn feedback(&mut self, handoff: &str, useful: bool, resolved: bool) {
        self.append(&LogLine::Feedback(FeedbackRecord {
            ts: crate::clock::now_secs(),
            handoff: handoff.to_string(),
            useful,
            resolved,
        }));
    }

    /// Writes one latency of `conversation`.
    pub fn timing(&mut self, conversation: &str, measure: Measure, ms: f64) {
        self.append(&LogLine::Timing(TimingRecord {
            ts: crate::clock::now_secs(),
            conversation: conversation.to_string(),
            measure,
            ms,
        }));
    }

    fn append(&mut self, line: &LogLine) {
        let day = chrono::Local::now().format("%Y-%m-%d").to_string();
        let path = self.dir.join(format!("{day}.jsonl"));
        let line = serde_json::to_string(line).unwrap_or_default();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            // One write of the whole line: a process killed mid-way leaves whole lines.
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if written.is_err() {
            self.failed = true;
        }
    }

    pub fn failed(&self) -> bool {
        self.failed
    }
}

/// A new id (of a conversation, of a handoff): 64 random bits, so that an id a client was
/// given is the only way to reach what it names.
pub fn new_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source (never seen on a supported system): time and a count, unique
        // but guessable.
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let digest = Sha256::digest(format!("{now}:{}:{count}", std::process::id()));
        bytes.copy_from_slice(&digest[..8]);
    }
    hex(&bytes)
}

/// The numbers a conversational service is judged by.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub conversations: usize,
    pub turns: usize,
    pub turns_per_conversation: f64,
    /// Flows started, and how many of them completed.
    pub tasks_started: usize,
    pub tasks_completed: usize,
    pub task_completion: f64,
    /// Conversations that went to a person.
    pub escalations: usize,
    /// Conversations handled without a person.
    pub containment: f64,
    /// Turns the assistant did not understand.
    pub misunderstood_turns: usize,
    pub escalation_reasons: BTreeMap<String, usize>,
    pub tasks_by_flow: BTreeMap<String, (usize, usize)>,
    /// Escalations per day (local date of the turn that escalated).
    pub escalations_by_day: BTreeMap<String, usize>,
    /// Latencies of voice conversations (`run`, `serve`), by what was measured.
    pub latency: BTreeMap<Measure, LatencySummary>,
    /// Where conversations stop: funnels per flow, re-asked questions, what was not understood.
    pub stuck: super::funnel::Stuck,
    /// Users' scores of their conversations.
    pub ratings: super::ratings::Ratings,
    /// What the people who took conversations over said of the handoffs.
    pub handoffs: HandoffQuality,
    /// Completion and turns by wording variant, in domains that compare two.
    pub variants: BTreeMap<crate::conversation::Variant, VariantStats>,
}

/// How the conversations that heard one wording went.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VariantStats {
    pub conversations: usize,
    pub turns: usize,
    pub turns_per_conversation: f64,
    pub tasks_started: usize,
    pub tasks_completed: usize,
    pub task_completion: f64,
}

fn by_variant(turns: &[TurnRecord]) -> BTreeMap<crate::conversation::Variant, VariantStats> {
    let mut out: BTreeMap<crate::conversation::Variant, VariantStats> = BTreeMap::new();
    let mut seen: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for t in turns {
        let Some(variant) = t.variant else {
            continue;
        };
        let v = out.entry(variant).or_default();
        v.conversations += usize::from(seen.insert(&t.conversation));
        v.turns += 1;
        v.tasks_started += usize::from(t.started.is_some());
        v.tasks_completed += usize::from(t.completed.is_some());
    }
    for v in out.values_mut() {
        v.turns_per_conversation = v.turns as f64 / v.conversations.max(1) as f64;
        v.task_completion = v.tasks_completed as f64 / v.tasks_started.max(1) as f64;
    }
    out
}

/// Feedback on handoffs, beside why they happened.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HandoffQuality {
    /// Handoffs with feedback, and of those: the summary was useful, the case was resolved.
    pub with_feedback: usize,
    pub useful: usize,
    pub resolved: usize,
    /// (with feedback, useful, resolved) by the handoff's reason.
    pub by_reason: BTreeMap<String, (usize, usize, usize)>,
    /// Feedback naming a handoff these logs do not hold.
    pub unknown: usize,
}

/// Joins feedback to the handoffs it names; the latest feedback on a handoff counts.
fn handoff_quality(logs: &Logs) -> HandoffQuality {
    let reasons: BTreeMap<&str, &str> = logs
        .turns
        .iter()
        .filter_map(|t| Some((t.handoff_id.as_deref()?, t.handoff.as_deref()?)))
        .collect();
    let latest: BTreeMap<&str, &FeedbackRecord> = logs
        .feedback
        .iter()
        .map(|f| (f.handoff.as_str(), f))
        .collect();
    let mut q = HandoffQuality::default();
    for (id, f) in latest {
        let Some(reason) = reasons.get(id) else {
            q.unknown += 1;
            continue;
        };
        q.with_feedback += 1;
        q.useful += usize::from(f.useful);
        q.resolved += usize::from(f.resolved);
        let entry = q.by_reason.entry(reason.to_string()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(f.useful);
        entry.2 += usize::from(f.resolved);
    }
    q
}

/// Everything read from a folder of logs.
#[derive(Debug, Default)]
pub struct Logs {
    pub turns: Vec<TurnRecord>,
    pub timings: Vec<TimingRecord>,
    pub ratings: Vec<RatingRecord>,
    pub feedback: Vec<FeedbackRecord>,
    /// Lines that were not a turn or a latency (a foreign file, a torn write).
    pub unreadable: usize,
}

impl Logs {
    /// Reads every `*.jsonl` in `dir`; unreadable lines are counted, not fatal.
    pub fn read(dir: &Path) -> std::io::Result<Self> {
        let mut logs = Logs::default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file)?;
            for line in String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                match serde_json::from_str::<LogLine>(line) {
                    Ok(LogLine::Turn(t)) => logs.turns.push(t),
                    Ok(LogLine::Timing(t)) => logs.timings.push(t),
                    Ok(LogLine::Rating(r)) => logs.ratings.push(r),
                    Ok(LogLine::Feedback(f)) => logs.feedback.push(f),
                    Err(_) => logs.unreadable += 1,
                }
            }
        }
        Ok(logs)
    }

    /// The samples of one latency, in milliseconds.
    pub fn samples(&self, measure: Measure) -> Vec<f64> {
        self.timings
            .iter()
            .filter(|t| t.measure == measure)
            .map(|t| t.ms)
            .collect()
    }
}

/// Reads every `*.jsonl` in `dir` into a report, with the count of unreadable lines.
pub fn report(dir: &Path) -> std::io::Result<(Report, usize)> {
    let logs = Logs::read(dir)?;
    Ok((summarize(&logs), logs.unreadable))
}

pub fn summarize(logs: &Logs) -> Report {
    let mut r = Report::default();
    let mut conversations: BTreeMap<&str, bool> = BTreeMap::new();
    for t in &logs.turns {
        r.turns += 1;
        let escalated = conversations.entry(&t.conversation).or_insert(false);
        if let Some(flow) = &t.started {
            r.tasks_started += 1;
            r.tasks_by_flow.entry(flow.clone()).or_default().0 += 1;
        }
        if let Some(flow) = &t.completed {
            r.tasks_completed += 1;
            r.tasks_by_flow.entry(flow.clone()).or_default().1 += 1;
        }
        if let Some(reason) = &t.handoff {
            if !*escalated {
                r.escalations += 1;
                *r.escalation_reasons.entry(reason.clone()).or_default() += 1;
                *r.escalations_by_day.entry(day_of(t.ts)).or_default() += 1;
            }
            *escalated = true;
        }
        r.misunderstood_turns += usize::from(t.misunderstood);
    }
    r.conversations = conversations.len();
    r.stuck = super::funnel::stuck(&logs.turns);
    r.ratings = super::ratings::ratings(&logs.turns, &logs.ratings);
    r.handoffs = handoff_quality(logs);
    r.variants = by_variant(&logs.turns);
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    r.turns_per_conversation = ratio(r.turns, r.conversations);
    r.task_completion = ratio(r.tasks_completed, r.tasks_started);
    r.containment = ratio(r.conversations - r.escalations, r.conversations);
    for measure in Measure::ALL {
        if let Some(summary) = LatencySummary::from_samples(&logs.samples(measure)) {
            r.latency.insert(measure, summary);
        }
    }
    r
}

/// The local date of Unix seconds `ts`, as YYYY-MM-DD.
pub fn day_of(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(
        conversation: &str,
        started: Option<&str>,
        completed: Option<&str>,
        handoff: Option<&str>,
    ) -> TurnRecord {
        TurnRecord {
            conversation: conversation.into(),
            started: started.map(String::from),
            completed: completed.map(String::from),
            handoff: handoff.map(String::from),
            ..TurnRecord::default()
        }
    }

    #[test]
    fn metrics_from_turns() {
        let records = vec![
            turn("a", Some("book"), None, None),
            turn("a", None, Some("book"), None),
            turn("b", Some("reset"), None, None),
            turn("b", None, None, Some("asked for a person")),
            turn("c", None, None, None),
        ];
        let r = summarize(&Logs {
            turns: records,
            ..Logs::default()
        });
        assert_eq!(
            (
                r.conversations,
                r.turns,
                r.tasks_started,
                r.tasks_completed,
                r.escalations
            ),
            (3, 5, 2, 1, 1)
        );
        assert!((r.task_completion - 0.5).abs() < 1e-9 && (r.containment - 2.0 / 3.0).abs() < 1e-9);
    }
}
