//! Redaction of spoken personal data, measured: recall on hark's own spoken-style set
//! (`assets/privacy`, every piece in braces) and how many ordinary requests it changes
//! (CLINC150's validation queries, none of which holds a person's data).

mod common;

use hark::telemetry::redact::redact;

/// The utterance without braces, and each braced piece's words.
fn parse(line: &str) -> (String, Vec<Vec<String>>) {
    let mut text = String::new();
    let mut pieces = Vec::new();
    let mut piece: Option<String> = None;
    for c in line.chars() {
        match c {
            '{' => piece = Some(String::new()),
            '}' => {
                let words = piece
                    .take()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(word_key)
                    .filter(|w| !w.is_empty())
                    .collect();
                pieces.push(words);
            }
            _ => {
                text.push(c);
                if let Some(p) = piece.as_mut() {
                    p.push(c);
                }
            }
        }
    }
    (text, pieces)
}

fn word_key(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

struct Scores {
    pieces: usize,
    redacted: usize,
    missed: Vec<String>,
}

/// A piece is redacted when none of its words is left in the output (counted with their
/// repeats: "five five five" needs all three gone).
fn score(file: &str) -> Scores {
    let text = std::fs::read_to_string(common::root().join("assets/privacy").join(file))
        .expect("assets/privacy");
    let mut scores = Scores {
        pieces: 0,
        redacted: 0,
        missed: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (said, pieces) = parse(line);
        let out = redact(&said);
        let mut left: Vec<String> = out.split_whitespace().map(word_key).collect();
        let mut outside: Vec<String> = said.split_whitespace().map(word_key).collect();
        for piece in &pieces {
            for w in piece {
                if let Some(i) = outside.iter().position(|o| o == w) {
                    outside.remove(i);
                }
            }
        }
        // The words around the pieces are left as they were; what remains must be theirs.
        for w in &outside {
            if let Some(i) = left.iter().position(|l| l == w) {
                left.remove(i);
            }
        }
        for piece in pieces {
            scores.pieces += 1;
            if piece.iter().all(|w| !left.contains(w)) {
                scores.redacted += 1;
            } else {
                scores.missed.push(format!("{said:?} → {out:?}"));
            }
        }
    }
    scores
}

fn recall(s: &Scores) -> f64 {
    s.redacted as f64 / s.pieces as f64
}

#[test]
fn spoken_personal_data_is_masked_and_ordinary_requests_are_left_alone() {
    let dev = score("dev.txt");
    let test = score("test.txt");
    for (name, s) in [("dev", &dev), ("test", &test)] {
        println!(
            "redaction recall, {name}: {}/{} = {:.1} %",
            s.redacted,
            s.pieces,
            100.0 * recall(s)
        );
        for m in &s.missed {
            println!("  missed: {m}");
        }
    }

    let data: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(common::root().join("../shared/data/clinc150/data_full.json"))
            .expect("../shared/data/clinc150/data_full.json"),
    )
    .unwrap();
    let mut queries = 0;
    let mut changed = Vec::new();
    for split in ["val", "oos_val"] {
        for entry in data[split].as_array().unwrap() {
            let query = entry[0].as_str().unwrap();
            queries += 1;
            let out = redact(query);
            if out != query {
                changed.push(format!("{query:?} → {out:?}"));
            }
        }
    }
    let false_rate = changed.len() as f64 / queries as f64;
    println!(
        "CLINC150 val + oos_val queries changed: {}/{queries} = {:.2} %",
        changed.len(),
        100.0 * false_rate
    );
    for c in &changed {
        println!("  changed: {c}");
    }

    assert!(recall(&dev) >= 0.95, "dev recall {:.3}", recall(&dev));
    assert!(recall(&test) >= 0.85, "test recall {:.3}", recall(&test));
    assert!(
        false_rate <= 0.01,
        "{:.2} % of ordinary requests changed",
        100.0 * false_rate
    );
}
