//! Typed messages in the words the rest of the pipeline expects: chat spellings and
//! abbreviations ("tmrw", "appt", "pls", "u", "@ 3pm") become the words they stand for, so
//! that dates are read as dates and intents as intents. Only whole words in the table are
//! rewritten; anything else (names, e-mail addresses, order numbers) stays as it was typed.

/// Chat spellings and the words they stand for. Kept to forms that mean one thing in a
/// request to an assistant: "r" is "are" and "u" is "you" there, "2" alone is a number.
const SPELLINGS: &[(&str, &str)] = &[
    ("tmrw", "tomorrow"),
    ("tmr", "tomorrow"),
    ("tmrow", "tomorrow"),
    ("tmw", "tomorrow"),
    ("tomoz", "tomorrow"),
    ("2moro", "tomorrow"),
    ("2morrow", "tomorrow"),
    ("tmrrw", "tomorrow"),
    ("tdy", "today"),
    ("2day", "today"),
    ("tonite", "tonight"),
    ("2nite", "tonight"),
    ("appt", "appointment"),
    ("appts", "appointments"),
    ("apt", "appointment"),
    ("pls", "please"),
    ("plz", "please"),
    ("plse", "please"),
    ("u", "you"),
    ("ya", "you"),
    ("ur", "your"),
    ("r", "are"),
    ("thx", "thanks"),
    ("thnx", "thanks"),
    ("thks", "thanks"),
    ("tks", "thanks"),
    ("ty", "thank you"),
    ("tysm", "thank you so much"),
    ("wheres", "where is"),
    ("whats", "what is"),
    ("hows", "how is"),
    ("whens", "when is"),
    ("im", "i am"),
    ("ive", "i have"),
    ("cant", "can't"),
    ("dont", "don't"),
    ("didnt", "didn't"),
    ("doesnt", "doesn't"),
    ("wont", "won't"),
    ("isnt", "isn't"),
    ("hasnt", "hasn't"),
    ("havent", "haven't"),
    ("wanna", "want to"),
    ("gonna", "going to"),
    ("gotta", "got to"),
    ("lemme", "let me"),
    ("gimme", "give me"),
    ("acct", "account"),
    ("acc", "account"),
    ("pwd", "password"),
    ("pw", "password"),
    ("passwd", "password"),
    ("pword", "password"),
    ("msg", "message"),
    ("b4", "before"),
    ("cuz", "because"),
    ("coz", "because"),
    ("bc", "because"),
    ("abt", "about"),
    ("w/", "with"),
    ("rn", "right now"),
    ("asap", "as soon as possible"),
    ("idk", "i don't know"),
    ("nvm", "never mind"),
    ("k", "okay"),
    ("kk", "okay"),
    ("ok", "okay"),
    ("yea", "yeah"),
    ("ppl", "people"),
    ("hr", "hour"),
    ("hrs", "hours"),
    ("min", "minute"),
    ("mins", "minutes"),
    ("pkg", "package"),
    ("ordr", "order"),
];

/// `text` with each chat spelling written out; punctuation around a word is kept.
pub fn chat_spellings(text: &str) -> String {
    text.split_whitespace()
        .map(expand)
        .collect::<Vec<_>>()
        .join(" ")
}

fn expand(token: &str) -> String {
    // "@ 3pm", "@3pm": the sign for "at" before a time (never inside an e-mail address).
    if token == "@" {
        return "at".into();
    }
    if let Some(rest) = token.strip_prefix('@') {
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            return format!("at {rest}");
        }
    }
    let core = token.trim_matches(|c: char| !(c.is_alphanumeric() || c == '/'));
    let (start, end) = match token.find(core) {
        Some(start) if !core.is_empty() => (start, start + core.len()),
        _ => return token.to_string(),
    };
    let lower = core.to_lowercase();
    match SPELLINGS.iter().find(|(short, _)| *short == lower) {
        Some((_, long)) => format!("{}{long}{}", &token[..start], &token[end..]),
        None => token.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::chat_spellings;

    #[test]
    fn chat_spellings_are_written_out() {
        assert_eq!(
            chat_spellings("can i get an appt tmrw @ 3pm for a haircut"),
            "can i get an appointment tomorrow at 3pm for a haircut"
        );
        assert_eq!(
            chat_spellings("yo wheres my stuff at"),
            "yo where is my stuff at"
        );
        assert_eq!(chat_spellings("thx, u r great!"), "thanks, you are great!");
        assert_eq!(
            chat_spellings("Pls reset my pwd @2pm"),
            "please reset my password at 2pm"
        );
    }

    #[test]
    fn other_words_and_addresses_are_left_as_typed() {
        for text in [
            "my email is ana@example.com",
            "Order 45782, Alex Rivera",
            "book a table for 2",
            "@home",
        ] {
            assert_eq!(chat_spellings(text), text);
        }
    }
}
