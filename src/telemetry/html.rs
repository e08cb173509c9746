//! `hark report --html`: one self-contained page (no scripts, no network) with the figures
//! and three plots drawn as inline SVG: the latency distribution, completion per flow and
//! escalations per day.

use std::fmt::Write;

use super::conversations::{Logs, Report};
use super::metrics::Measure;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const MARGIN: f64 = 40.0;

/// Text safe inside HTML and SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Vertical bars with labels under them; `None` when there is nothing to draw.
fn bar_chart(plot: &str, title: &str, bars: &[(String, f64)], unit: &str) -> Option<String> {
    let top = bars.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    if bars.is_empty() || top <= 0.0 {
        return None;
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg data-plot="{plot}" role="img" aria-label="{title}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">"#,
        title = escape(title)
    );
    let slot = (WIDTH - 2.0 * MARGIN) / bars.len() as f64;
    let depth = HEIGHT - 2.0 * MARGIN;
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = depth * value / top;
        let x = MARGIN + i as f64 * slot;
        let y = MARGIN + depth - h;
        let _ = write!(
            svg,
            r##"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="#3b7dd8"><title>{label}: {value}{unit}</title></rect>"##,
            w = (slot * 0.8).max(1.0),
            label = escape(label),
        );
        // Every label when they fit, else about ten of them.
        let every = bars.len().div_ceil(10);
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{cx:.1}" y="{ly:.1}" font-size="10" text-anchor="middle">{label}</text>"#,
                cx = x + slot * 0.4,
                ly = HEIGHT - MARGIN + 14.0,
                label = escape(label),
            );
        }
    }
    let _ = write!(
        svg,
        r#"<line x1="{MARGIN}" y1="{b}" x2="{r}" y2="{b}" stroke="black"/><text x="{MARGIN}" y="{t}" font-size="10">max {top}{unit}</text></svg>"#,
        b = MARGIN + depth,
        r = WIDTH - MARGIN,
        t = MARGIN - 6.0,
        unit = escape(unit),
    );
    Some(svg)
}

/// Counts of `samples` in equal bins from 0 to the largest, labelled by the bin's start.
fn histogram(samples: &[f64], bins: usize) -> Vec<(String, f64)> {
    let top = samples.iter().copied().fold(0.0, f64::max);
    if samples.is_empty() || top <= 0.0 {
        return Vec::new();
    }
    // Bins of a round width (10, 20, 50, 100 … ms) covering the largest sample.
    let raw = top / bins as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let width = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|w| *w >= raw)
        .unwrap_or(10.0 * magnitude);
    let count = (top / width).floor() as usize + 1;
    let mut counts = vec![0.0; count];
    for s in samples {
        let bin = ((s / width).floor() as usize).min(count - 1);
        counts[bin] += 1.0;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, n)| (format!("{}", (i as f64 * width) as u64), n))
        .collect()
}

fn section(html: &mut String, heading: &str, plot: Option<String>, empty: &str) {
    let _ = write!(html, "<h2>{}</h2>", escape(heading));
    match plot {
        Some(svg) => html.push_str(&svg),
        None => {
            let _ = write!(html, r#"<p class="empty">{}</p>"#, escape(empty));
        }
    }
}

/// The report as one HTML page.
pub fn page(r: &Report, logs: &Logs) -> String {
    let mut html = String::from(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>hark report</title><style>body{font-family:sans-serif;max-width:720px;margin:2em auto;color:#222}table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right}th:first-child,td:first-child{text-align:left}.empty{color:#888}</style></head><body><h1>hark report</h1>"#,
    );
    summary_table(&mut html, r);
    latency_table(&mut html, r);
    section(
        &mut html,
        "Voice to voice: end of speech to first reply audio (ms)",
        bar_chart(
            "latency",
            "voice-to-voice latency distribution",
            &histogram(&logs.samples(Measure::VoiceToVoice), 20),
            " replies",
        ),
        "No replies were timed.",
    );
    completion_section(&mut html, r);
    escalations_section(&mut html, r);
    ratings_section(&mut html, r);
    funnels(&mut html, &r.stuck);
    reasons_section(&mut html, r);
    html.push_str("</body></html>\n");
    html
}

/// The summary figures: conversations, turns, completion, containment, escalations.
fn summary_table(html: &mut String, r: &Report) {
    let pct = |x: f64| format!("{:.1} %", x * 100.0);
    let _ = write!(
        html,
        r#"<table id="summary"><tr><td>conversations</td><td>{}</td></tr><tr><td>turns per conversation</td><td>{:.1}</td></tr><tr><td>task completion</td><td>{} ({} of {})</td></tr><tr><td>containment</td><td>{}</td></tr><tr><td>escalations</td><td>{}</td></tr><tr><td>turns not understood</td><td>{}</td></tr></table>"#,
        r.conversations,
        r.turns_per_conversation,
        pct(r.task_completion),
        r.tasks_completed,
        r.tasks_started,
        pct(r.containment),
        r.escalations,
        r.misunderstood_turns,
    );
}

/// The latency percentiles of each measure, or a note that no voice conversation was logged.
fn latency_table(html: &mut String, r: &Report) {
    html.push_str("<h2>Latency</h2>");
    if r.latency.is_empty() {
        html.push_str(r#"<p class="empty">No voice conversations in these logs.</p>"#);
    } else {
        html.push_str(
            r#"<table id="latency"><tr><th></th><th>n</th><th>P50 ms</th><th>P95 ms</th><th>P99 ms</th></tr>"#,
        );
        for (measure, s) in &r.latency {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.0}</td><td>{:.0}</td></tr>",
                escape(measure.label()),
                s.count,
                s.p50_ms,
                s.p95_ms,
                s.p99_ms
            );
        }
        html.push_str("</table>");
    }
}

/// The share of started tasks completed, per flow.
fn completion_section(html: &mut String, r: &Report) {
    let flows: Vec<(String, f64)> = r
        .tasks_by_flow
        .iter()
        .map(|(flow, (started, completed))| {
            let share = if *started == 0 {
                0.0
            } else {
                100.0 * *completed as f64 / *started as f64
            };
            (flow.clone(), share.round())
        })
        .collect();
    section(
        html,
        "Completion per flow (%)",
        bar_chart("completion", "completion per flow", &flows, " %"),
        "No flow was completed.",
    );
}

/// How many conversations went to a person each day.
fn escalations_section(html: &mut String, r: &Report) {
    let days: Vec<(String, f64)> = r
        .escalations_by_day
        .iter()
        .map(|(day, n)| (day.clone(), *n as f64))
        .collect();
    section(
        html,
        "Escalations per day",
        bar_chart("escalations", "escalations per day", &days, " escalations"),
        "No conversation went to a person.",
    );
}

/// The distribution of the users' scores, when any were given.
fn ratings_section(html: &mut String, r: &Report) {
    if r.ratings.overall.count > 0 {
        let scores: Vec<(String, f64)> = (1..=5u8)
            .map(|s| {
                let n = r.ratings.distribution.get(&s).copied().unwrap_or(0);
                (s.to_string(), n as f64)
            })
            .collect();
        section(
            html,
            &format!(
                "Ratings: mean {:.1} of 5 from {} scores ({:.0} % of those asked answered)",
                r.ratings.overall.mean,
                r.ratings.overall.count,
                r.ratings.response_rate * 100.0
            ),
            bar_chart("ratings", "ratings distribution", &scores, " scores"),
            "",
        );
    }
}

/// Why conversations went to a person, with what the people who took them over said.
fn reasons_section(html: &mut String, r: &Report) {
    if !r.escalation_reasons.is_empty() {
        html.push_str("<h2>Why conversations went to a person</h2><ul>");
        for (reason, n) in &r.escalation_reasons {
            let feedback = match r.handoffs.by_reason.get(reason) {
                Some((with, useful, resolved)) => format!(
                    " — feedback on {with}: summary useful {useful}, case resolved {resolved}"
                ),
                None => String::new(),
            };
            let _ = write!(
                html,
                "<li>{n}× {}{}</li>",
                escape(reason),
                escape(&feedback)
            );
        }
        html.push_str("</ul>");
    }
}

/// One funnel per flow (how many reached each step), and where the others stopped.
fn funnels(html: &mut String, stuck: &super::funnel::Stuck) {
    html.push_str("<h2>Where flows stop</h2>");
    if stuck.funnels.is_empty() {
        html.push_str(r#"<p class="empty">No flow was started.</p>"#);
        return;
    }
    for (flow, funnel) in &stuck.funnels {
        let mut bars = vec![("started".to_string(), funnel.started as f64)];
        bars.extend(
            funnel
                .steps
                .iter()
                .filter(|s| s.step != "start")
                .map(|s| (s.step.clone(), s.reached as f64)),
        );
        bars.push(("completed".to_string(), funnel.completed as f64));
        let _ = write!(html, "<h3>{}</h3>", escape(flow));
        if let Some(svg) = bar_chart(
            &format!("funnel-{flow}"),
            &format!("{flow}: conversations reaching each step"),
            &bars,
            " conversations",
        ) {
            html.push_str(&svg);
        }
        let stops: Vec<String> = funnel
            .steps
            .iter()
            .filter(|s| !s.stopped.is_empty())
            .map(|s| {
                let why: Vec<String> = s
                    .stopped
                    .iter()
                    .map(|(o, n)| format!("{} {n}", o.label()))
                    .collect();
                format!("{}: {}", s.step, why.join(", "))
            })
            .collect();
        if !stops.is_empty() {
            let _ = write!(html, "<p>Stopped at {}</p>", escape(&stops.join("; ")));
        }
    }
    if !stuck.not_understood.is_empty() {
        html.push_str("<h2>Not understood most</h2><ul>");
        for (said, n) in &stuck.not_understood {
            let _ = write!(html, "<li>{n}× {}</li>", escape(said));
        }
        html.push_str("</ul>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bins_are_round_and_hold_every_sample() {
        let samples = [120.0, 380.0, 410.0, 640.0, 1990.0];
        let bins = histogram(&samples, 20);
        assert_eq!(bins[1].0, "100");
        assert_eq!(bins.iter().map(|(_, n)| n).sum::<f64>(), 5.0);
        assert!(histogram(&[], 20).is_empty());
    }

    #[test]
    fn text_is_escaped() {
        let svg = bar_chart("x", "a<b", &[("<script>".into(), 1.0)], "").unwrap();
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
        assert!(bar_chart("x", "t", &[("a".into(), 0.0)], "").is_none());
    }
}
