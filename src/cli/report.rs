//! `hark report`: service metrics from the conversation logs.

use std::path::Path;

use anyhow::{Context, Result};
use hark::telemetry::conversations::{summarize, Logs};

pub fn report(dir: &Path, json: bool, html: Option<&Path>) -> Result<()> {
    let logs = Logs::read(dir)
        .with_context(|| format!("reading conversation logs in {}", dir.display()))?;
    let r = summarize(&logs);
    if let Some(file) = html {
        std::fs::write(file, hark::telemetry::html::page(&r, &logs))
            .with_context(|| format!("writing {}", file.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    println!(
        "conversations: {}   turns: {} ({:.1} per conversation)",
        r.conversations, r.turns, r.turns_per_conversation
    );
    for (measure, latency) in &r.latency {
        println!("{}: {latency}", measure.label());
    }
    println!(
        "task completion: {} ({} of {} flows started)",
        pct(r.task_completion),
        r.tasks_completed,
        r.tasks_started
    );
    println!(
        "containment: {}   escalations: {}",
        pct(r.containment),
        r.escalations
    );
    println!("turns not understood: {}", r.misunderstood_turns);
    for (flow, (started, completed)) in &r.tasks_by_flow {
        println!("    {flow}: {completed} of {started} completed");
    }
    for (reason, n) in &r.escalation_reasons {
        let feedback = match r.handoffs.by_reason.get(reason) {
            Some((with, useful, resolved)) => {
                format!("   (feedback on {with}: summary useful {useful}, resolved {resolved})")
            }
            None => String::new(),
        };
        println!("    escalated {n}×: {reason}{feedback}");
    }
    let h = &r.handoffs;
    if h.with_feedback + h.unknown > 0 {
        let share = |n: usize| 100.0 * n as f64 / h.with_feedback.max(1) as f64;
        println!(
            "handoff feedback: {} of {} handoffs; summary useful {:.1} %, case resolved {:.1} %{}",
            h.with_feedback,
            r.escalations,
            share(h.useful),
            share(h.resolved),
            if h.unknown > 0 {
                format!(" ({} for handoffs not in these logs)", h.unknown)
            } else {
                String::new()
            }
        );
    }
    for (variant, v) in &r.variants {
        println!(
            "wording {variant:?}: {} conversations, {:.1} turns each, task completion {} ({} of {})",
            v.conversations,
            v.turns_per_conversation,
            pct(v.task_completion),
            v.tasks_completed,
            v.tasks_started
        );
    }
    print_ratings(&r.ratings);
    print_stuck(&r.stuck);
    if logs.unreadable > 0 {
        println!("({} unreadable log lines skipped)", logs.unreadable);
    }
    if let Some(file) = html {
        println!("report written to {}", file.display());
    }
    Ok(())
}

/// The scores users gave, overall, by flow and by outcome.
fn print_ratings(r: &hark::telemetry::ratings::Ratings) {
    if r.asked == 0 && r.from_clients == 0 {
        return;
    }
    println!(
        "ratings: mean {:.1} of 5 ({} scores; asked {}×, answered {}: {:.1} %; {} from clients)",
        r.overall.mean,
        r.overall.count,
        r.asked,
        r.answered,
        r.response_rate * 100.0,
        r.from_clients
    );
    let distribution: Vec<String> = (1..=5u8)
        .map(|s| format!("{s}: {}", r.distribution.get(&s).copied().unwrap_or(0)))
        .collect();
    println!("    {}", distribution.join("   "));
    let groups = |g: &std::collections::BTreeMap<String, hark::telemetry::ratings::Scores>| {
        g.iter()
            .map(|(k, s)| format!("{k} {:.1} ({})", s.mean, s.count))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !r.by_flow.is_empty() {
        println!("    by flow: {}", groups(&r.by_flow));
    }
    if !r.by_outcome.is_empty() {
        println!("    by outcome: {}", groups(&r.by_outcome));
    }
}

/// Where conversations stop, per flow, and what was asked again or not understood.
fn print_stuck(s: &hark::telemetry::funnel::Stuck) {
    if s.funnels.is_empty() {
        return;
    }
    println!("where flows stop:");
    for (flow, funnel) in &s.funnels {
        println!(
            "    {flow}: {} started, {} completed",
            funnel.started, funnel.completed
        );
        for step in &funnel.steps {
            let stopped: usize = step.stopped.values().sum();
            let why: Vec<String> = step
                .stopped
                .iter()
                .map(|(outcome, n)| format!("{} {n}", outcome.label()))
                .collect();
            let stopped = if stopped == 0 {
                String::new()
            } else {
                format!("   stopped {stopped} ({})", why.join(", "))
            };
            println!(
                "        {:<14} reached {}{stopped}",
                step.step, step.reached
            );
        }
    }
    println!("abandoned mid-flow: {}", s.abandoned);
    let list = |pairs: &[(String, usize)], quote: bool| -> String {
        pairs
            .iter()
            .map(|(k, n)| {
                if quote {
                    format!("\"{k}\" {n}×")
                } else {
                    format!("{k} {n}×")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !s.reasked.is_empty() {
        println!("asked again most: {}", list(&s.reasked, false));
    }
    if !s.intents.is_empty() {
        println!("intents most asked: {}", list(&s.intents, false));
    }
    if !s.not_understood.is_empty() {
        println!("not understood most: {}", list(&s.not_understood, true));
    }
}
