//! What users said of their conversations: the scores (1–5) given to the domain's rating
//! question or sent by a client, as a mean, a distribution and a response rate, by flow and
//! by how the conversation went.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::conversation::record::TurnRecord;

/// A score a client sent for a conversation (`rating` over `hark serve`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatingRecord {
    /// Unix seconds.
    pub ts: i64,
    pub conversation: String,
    pub score: u8,
}

/// Scores of a group of conversations.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Scores {
    pub count: usize,
    pub mean: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ratings {
    /// Times the rating question was asked, and answered with a score.
    pub asked: usize,
    pub answered: usize,
    pub response_rate: f64,
    /// Scores sent by clients.
    pub from_clients: usize,
    /// All scores (answers and clients').
    pub overall: Scores,
    /// How many of each score, 1 to 5.
    pub distribution: BTreeMap<u8, usize>,
    /// By each flow the conversation started.
    pub by_flow: BTreeMap<String, Scores>,
    /// By how the conversation went: completed (a flow), escalated, not completed.
    pub by_outcome: BTreeMap<String, Scores>,
}

/// How a conversation went, for grouping its score.
fn outcome(turns: &[&TurnRecord]) -> &'static str {
    if turns.iter().any(|t| t.handoff.is_some()) {
        "escalated"
    } else if turns.iter().any(|t| t.completed.is_some()) {
        "completed"
    } else {
        "not completed"
    }
}

fn add(scores: &mut BTreeMap<String, (usize, u32)>, key: &str, score: u8) {
    let entry = scores.entry(key.to_string()).or_default();
    entry.0 += 1;
    entry.1 += u32::from(score);
}

fn summary(count: usize, sum: u32) -> Scores {
    Scores {
        count,
        mean: if count == 0 {
            0.0
        } else {
            f64::from(sum) / count as f64
        },
    }
}

pub fn ratings(turns: &[TurnRecord], sent: &[RatingRecord]) -> Ratings {
    let mut by_conversation: BTreeMap<&str, Vec<&TurnRecord>> = BTreeMap::new();
    for t in turns {
        by_conversation.entry(&t.conversation).or_default().push(t);
    }
    let mut r = Ratings {
        asked: turns.iter().filter(|t| t.rating_asked).count(),
        answered: turns.iter().filter(|t| t.rating.is_some()).count(),
        from_clients: sent.len(),
        ..Ratings::default()
    };
    // A conversation's first score is its score: more cannot stuff the mean.
    let mut rated = std::collections::BTreeSet::new();
    let scores = turns
        .iter()
        .filter_map(|t| t.rating.map(|s| (t.conversation.as_str(), s)))
        .chain(sent.iter().map(|s| (s.conversation.as_str(), s.score)))
        .filter(|(conversation, _)| rated.insert(*conversation));
    let (mut flows, mut outcomes) = (BTreeMap::new(), BTreeMap::new());
    let (mut count, mut sum) = (0, 0u32);
    for (conversation, score) in scores {
        count += 1;
        sum += u32::from(score);
        *r.distribution.entry(score).or_default() += 1;
        let these = by_conversation
            .get(conversation)
            .map(Vec::as_slice)
            .unwrap_or_default();
        add(&mut outcomes, outcome(these), score);
        for flow in these.iter().filter_map(|t| t.started.as_deref()) {
            add(&mut flows, flow, score);
        }
    }
    r.overall = summary(count, sum);
    r.response_rate = if r.asked == 0 {
        0.0
    } else {
        r.answered as f64 / r.asked as f64
    };
    r.by_flow = flows
        .into_iter()
        .map(|(k, (n, s))| (k, summary(n, s)))
        .collect();
    r.by_outcome = outcomes
        .into_iter()
        .map(|(k, (n, s))| (k, summary(n, s)))
        .collect();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(conversation: &str) -> TurnRecord {
        TurnRecord {
            conversation: conversation.into(),
            ..TurnRecord::default()
        }
    }

    #[test]
    fn scores_are_grouped_by_flow_and_outcome_and_the_response_rate_counts_skips() {
        let started = |c: &str, flow: &str| TurnRecord {
            started: Some(flow.into()),
            completed: Some(flow.into()),
            ..turn(c)
        };
        let asked = |c: &str| TurnRecord {
            rating_asked: true,
            ..turn(c)
        };
        let answer = |c: &str, score| TurnRecord {
            rating: Some(score),
            ..turn(c)
        };
        let escalated = TurnRecord {
            handoff: Some("asked".into()),
            ..started("c", "reset")
        };
        let turns = vec![
            started("a", "book"),
            asked("a"),
            answer("a", 5),
            started("b", "book"),
            asked("b"),
            turn("b"), // skipped
            escalated,
        ];
        let sent = vec![RatingRecord {
            ts: 0,
            conversation: "c".into(),
            score: 2,
        }];
        let r = ratings(&turns, &sent);
        assert_eq!((r.asked, r.answered, r.from_clients), (2, 1, 1));
        assert!((r.response_rate - 0.5).abs() < 1e-9);
        assert_eq!(r.overall.count, 2);
        assert!((r.overall.mean - 3.5).abs() < 1e-9);
        assert_eq!(r.distribution, BTreeMap::from([(2, 1), (5, 1)]));
        assert_eq!(r.by_flow["book"].count, 1);
        assert!((r.by_flow["reset"].mean - 2.0).abs() < 1e-9);
        assert_eq!(r.by_outcome["completed"].count, 1);
        assert_eq!(r.by_outcome["escalated"].count, 1);
    }

    #[test]
    fn a_conversation_counts_its_first_score_only() {
        let sent: Vec<RatingRecord> = [5, 1, 1, 1]
            .into_iter()
            .map(|score| RatingRecord {
                ts: 0,
                conversation: "c".into(),
                score,
            })
            .collect();
        let r = ratings(&[], &sent);
        assert_eq!(r.overall.count, 1);
        assert!((r.overall.mean - 5.0).abs() < 1e-9);
    }
}
