//! Backchannels: the "uh-huh", "yeah", "okay" a listener says while someone else talks.
//! They acknowledge; they are not a request to stop talking.

const BACKCHANNELS: &[&str] = &[
    "uh huh",
    "uhhuh",
    "mm hmm",
    "mmhmm",
    "mhm",
    "mm",
    "hmm",
    "hm",
    "yeah",
    "yes",
    "yep",
    "yup",
    "ok",
    "okay",
    "right",
    "sure",
    "i see",
    "got it",
    "alright",
    "all right",
    "aha",
    "ah",
    "oh",
    "uh",
    "um",
    "cool",
    "nice",
    "great",
];

/// Whether a (short) transcript is only acknowledgement. An empty transcript (a cough, a
/// noise Whisper heard no words in) counts too: it is no reason to stop.
pub fn is_backchannel(transcript: &str) -> bool {
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
        if i + 1 < words.len()
            && BACKCHANNELS.contains(&format!("{} {}", words[i], words[i + 1]).as_str())
        {
            i += 2;
        } else if BACKCHANNELS.contains(&words[i]) {
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
            assert!(is_backchannel(t), "{t:?}");
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
            assert!(!is_backchannel(t), "{t:?}");
        }
    }
}
