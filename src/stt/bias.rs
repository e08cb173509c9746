//! Contextual biasing: the words the dialogue expects next, turned into Whisper's initial
//! prompt. Whisper continues its prompt's style as well as its words, so the phrases are
//! written as whole sentences ("Cancel my appointment.") and not as a comma list: a list
//! made it end transcripts with a comma, which hides the end of a sentence from the
//! endpointer and from anyone reading the transcript.

/// Formats `phrases` as a prompt of sentences, keeping at most `max_chars` (the first
/// phrases, which the caller lists most likely first).
pub fn vocabulary_prompt<S: AsRef<str>>(phrases: &[S], max_chars: usize) -> Option<String> {
    let mut prompt = String::new();
    for phrase in phrases {
        let phrase = phrase.as_ref().trim().trim_end_matches(['.', ',', ';']);
        if phrase.is_empty() {
            continue;
        }
        let mut chars = phrase.chars();
        let first = chars
            .next()
            .map(|c| c.to_uppercase().collect::<String>())
            .unwrap_or_default();
        let sentence = format!("{first}{}.", chars.as_str());
        let sentence = if sentence.ends_with("?.") || sentence.ends_with("!.") {
            sentence[..sentence.len() - 1].to_string()
        } else {
            sentence
        };
        if prompt.len() + sentence.len() + 1 > max_chars {
            break;
        }
        if !prompt.is_empty() {
            prompt.push(' ');
        }
        prompt.push_str(&sentence);
    }
    (!prompt.is_empty()).then_some(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_become_sentences_within_the_budget() {
        let p = vocabulary_prompt(
            &[
                "book a table",
                "cancel my appointment.",
                "",
                "what time is it?",
            ],
            200,
        );
        assert_eq!(
            p.as_deref(),
            Some("Book a table. Cancel my appointment. What time is it?")
        );
        assert_eq!(
            vocabulary_prompt(&["book a table", "cancel my appointment"], 20).as_deref(),
            Some("Book a table.")
        );
        assert_eq!(vocabulary_prompt::<&str>(&[], 100), None);
    }
}
