//! The note a person taking over reads first: why the conversation came to them, what the
//! user wanted, what is already known, what went wrong, and the user's own last words. One
//! or two sentences, so that it can be read in the seconds before saying hello.

/// What the summary is made from.
#[derive(Debug, Default)]
pub struct Story<'a> {
    /// Why the conversation goes to a person ("the user sounded frustrated").
    pub reason: &'a str,
    /// What the user wanted, as the domain describes it ("check the status of an order").
    pub wanted: Option<String>,
    /// Slot values already collected, as (what it is, value).
    pub collected: Vec<(String, String)>,
    /// Required slots still missing.
    pub missing: Vec<String>,
    /// User turns that were not understood, oldest first.
    pub not_understood: Vec<&'a str>,
    /// The user's turns in the conversation, the one that triggered the handoff included.
    pub turns: usize,
    /// What the user said last (the turn that triggered the handoff, when it was said).
    pub last_said: &'a str,
}

/// "The user sounded frustrated after 3 turns, wanting to check an order's status (order
/// number 4 5 7 8 2 known; still needed: email); 1 turn not understood ("where's my stuff").
/// Last said: "this is ridiculous"."
pub fn summary(story: &Story) -> String {
    let mut first = capitalize(story.reason);
    if story.turns > 0 {
        first += &format!(
            " after {} turn{}",
            story.turns,
            if story.turns == 1 { "" } else { "s" }
        );
    }
    if let Some(wanted) = &story.wanted {
        first += &format!(", wanting to {wanted}");
        let mut known = Vec::new();
        if !story.collected.is_empty() {
            let values: Vec<String> = story
                .collected
                .iter()
                .map(|(what, value)| format!("{what} {value}"))
                .collect();
            known.push(format!("{} known", values.join(", ")));
        }
        if !story.missing.is_empty() {
            known.push(format!("still needed: {}", story.missing.join(", ")));
        }
        if !known.is_empty() {
            first += &format!(" ({})", known.join("; "));
        }
    }
    if let Some(last) = story.not_understood.last() {
        let n = story.not_understood.len();
        first += &format!(
            "; {n} turn{} not understood (last: \"{last}\")",
            if n == 1 { "" } else { "s" }
        );
    }
    first.push('.');
    if story.last_said.is_empty() {
        first
    } else {
        format!("{first} Last said: \"{}\".", story.last_said)
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_the_wish_the_values_and_the_failures() {
        let story = Story {
            reason: "the user sounded frustrated",
            wanted: Some("check the status of an order".into()),
            collected: vec![("order number".into(), "4 5 7 8 2".into())],
            missing: vec!["email".into()],
            not_understood: vec!["huh", "where's my stuff"],
            turns: 4,
            last_said: "this is ridiculous",
        };
        assert_eq!(
            summary(&story),
            "The user sounded frustrated after 4 turns, wanting to check the status of an order \
             (order number 4 5 7 8 2 known; still needed: email); 2 turns not understood \
             (last: \"where's my stuff\"). Last said: \"this is ridiculous\"."
        );
    }

    #[test]
    fn a_bare_request_for_a_person_is_one_short_sentence() {
        let story = Story {
            reason: "the user asked for a person",
            turns: 1,
            last_said: "agent please",
            ..Default::default()
        };
        assert_eq!(
            summary(&story),
            "The user asked for a person after 1 turn. Last said: \"agent please\"."
        );
    }
}
