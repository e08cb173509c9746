//! Backchannels: the "uh-huh", "yeah", "okay" a listener says while someone else talks.
//! They acknowledge; they are not a request to stop talking. Once the listener has heard a
//! question, though, "yes" or "okay" is its answer: only the sounds of listening stay
//! backchannels then.

/// Sounds of listening: never an answer.
const LISTENER_SOUNDS: &[&str] = &[
    "uh huh", "uhhuh", "mm hmm", "mmhmm", "mhm", "mm", "hmm", "hm", "aha", "ah", "oh", "uh", "um",
    "i see",
];

/// Acknowledgements that answer a question when one was asked.
const AFFIRMATIONS: &[&str] = &[
    "yeah",
    "yes",
    "yep",
    "yup",
    "ok",
    "okay",
    "right",
    "sure",
    "got it",
    "alright",
    "all right",
    "cool",
    "nice",
    "great",
];

/// Whether a (short) transcript is only acknowledgement, said over a reply of which the
/// listener has (`after_question`) or has not yet heard a question. An empty transcript (a
/// cough, a noise the recognizer heard no words in) counts too: it is no reason to stop.
pub fn is_backchannel(transcript: &str, after_question: bool) -> bool {
    let known = |phrase: &str| {
        LISTENER_SOUNDS.contains(&phrase) || (!after_question && AFFIRMATIONS.contains(&phrase))
    };
    // Hyphens separate too: "uh-huh" and "mm-hmm" match "uh huh" and "mm hmm".
    let cleaned: String = transcript
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    if words.is_empty() {
        return true;
    }
    if words.len() > 4 {
        return false;
    }
    // Every word (or two-word phrase) must be a backchannel: "yeah okay", "uh-huh right".
    let mut i = 0;
    while i < words.len() {
        if i + 1 < words.len() && known(&format!("{} {}", words[i], words[i + 1])) {
            i += 2;
        } else if known(words[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_are_backchannels() {
        for t in [
            "Uh-huh.",
            "uh huh",
            "Mm-hmm.",
            "Yeah.",
            "Okay, okay.",
            "Right.",
            "",
            " . ",
            "Yeah, I see.",
        ] {
            assert!(is_backchannel(t, false), "{t:?}");
        }
    }

    #[test]
    fn after_a_question_an_affirmation_is_an_answer() {
        for t in ["Yes.", "Yeah, sure.", "Okay.", "Right."] {
            assert!(!is_backchannel(t, true), "{t:?}");
        }
        for t in ["Uh-huh.", "Mm-hmm.", "Hmm.", ""] {
            assert!(is_backchannel(t, true), "{t:?}");
        }
    }

    #[test]
    fn requests_are_not() {
        for t in [
            "Stop.",
            "No, wait.",
            "Yeah, but what about Friday?",
            "Cancel it",
            "What time is it?",
        ] {
            assert!(!is_backchannel(t, false), "{t:?}");
        }
    }
}
