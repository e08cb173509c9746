//! Masks what could identify a person in what people say or type, before any of it is
//! written down: e-mail addresses (written, spelt out, or both), numbers that identify
//! (phone, card, account, social-security, PIN and order numbers, in digits or in words,
//! split across words), street addresses, dates of birth, and names said with a cue ("my name
//! is …", "this is Ana", "I'm Ana") or already known to the conversation.
//!
//! Quantities stay: "a table for two at 7", "transfer 300 dollars", "in 1969". The rules
//! read words, not characters, so Whisper's punctuation and a typist's lack of it read the
//! same. Recall on spoken-style personal data and the share of ordinary requests changed are
//! measured by `tests/redaction.rs` (figures in `docs/benchmarks.md`).

use crate::nlu::entities;

/// What a masked span was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    Email,
    Number,
    Address,
    Date,
    Name,
    /// A value a domain marked sensitive.
    Value,
}

impl Mask {
    fn label(self) -> &'static str {
        match self {
            Mask::Email => "[email]",
            Mask::Number => "[number]",
            Mask::Address => "[address]",
            Mask::Date => "[date]",
            Mask::Name => "[name]",
            Mask::Value => "[redacted]",
        }
    }
}

/// Masks with the rules alone (no names known).
pub fn redact(text: &str) -> String {
    Redactor::default().redact(text)
}

/// The rules, and values the conversation knows to be personal (the user's name, slots a
/// domain marks sensitive), masked wherever they appear.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    known: Vec<(Vec<String>, Mask)>,
}

impl Redactor {
    /// Adds a known value (its words, compared without case or punctuation).
    pub fn know(&mut self, value: &str, mask: Mask) {
        let words: Vec<String> = value.split_whitespace().map(key).collect();
        if !words.is_empty() && words.iter().all(|w| !w.is_empty()) && !self.knows(&words) {
            self.known.push((words, mask));
        }
    }

    fn knows(&self, words: &[String]) -> bool {
        self.known.iter().any(|(w, _)| w == words)
    }

    pub fn redact(&self, text: &str) -> String {
        let words: Vec<Word> = text.split_whitespace().map(Word::new).collect();
        let mut masks: Vec<Option<Mask>> = vec![None; words.len()];
        emails(&words, &mut masks);
        dates_of_birth(&words, &mut masks);
        addresses(&words, &mut masks);
        numbers(&words, &mut masks);
        names(&words, &mut masks);
        self.known_values(&words, &mut masks);
        join(&words, &masks)
    }

    fn known_values(&self, words: &[Word], masks: &mut [Option<Mask>]) {
        for (value, mask) in &self.known {
            let n = value.len();
            for start in 0..words.len().saturating_sub(n - 1) {
                if (0..n).all(|i| words[start + i].key == value[i]) {
                    mark(masks, start, start + n, *mask);
                }
            }
        }
    }
}

/// A word as written, and as compared: lower case, without the punctuation around it.
struct Word<'a> {
    text: &'a str,
    key: String,
}

impl<'a> Word<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            key: key(text),
        }
    }

    fn capitalized(&self) -> bool {
        self.text
            .trim_start_matches(|c: char| !c.is_alphanumeric())
            .chars()
            .next()
            .is_some_and(char::is_uppercase)
    }

    fn is(&self, word: &str) -> bool {
        self.key == word
    }
}

fn key(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric())
        .replace('\u{2019}', "'")
        .to_lowercase()
}

fn mark(masks: &mut [Option<Mask>], from: usize, to: usize, mask: Mask) {
    let to = to.min(masks.len());
    for m in &mut masks[from..to] {
        m.get_or_insert(mask);
    }
}

/// Joins the words back, each run of one mask as its label (the punctuation after the run
/// kept, so sentences still read).
fn join(words: &[Word], masks: &[Option<Mask>]) -> String {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let Some(mask) = masks[i] else {
            out.push(words[i].text.to_string());
            i += 1;
            continue;
        };
        let mut end = i + 1;
        while end < words.len() && masks[end] == Some(mask) {
            end += 1;
        }
        let last = words[end - 1].text;
        let tail = &last[last.trim_end_matches(|c: char| !c.is_alphanumeric()).len()..];
        // An address ending in a domain ("example.com.") keeps only the sentence's stop.
        let tail = tail
            .char_indices()
            .last()
            .filter(|(_, c)| ".,!?;:…)\"'’".contains(*c))
            .map_or("", |(i, _)| &tail[i..]);
        out.push(format!("{}{tail}", mask.label()));
        i = end;
    }
    out.join(" ")
}

/// A digit said as a word ("oh" for zero; not "a", "to", "for", which are rarely digits).
fn digit_word(key: &str) -> bool {
    entities::small_number(key).is_some_and(|n| n < 10)
        && (key == "oh" || !entities::ambiguous(key))
}

/// "eleven", "forty": a word of quantity, not one digit.
fn teen_or_tens(key: &str) -> bool {
    entities::small_number(key).is_some_and(|n| n >= 10) || entities::tens(key).is_some()
}

/// Words just before a number that say it identifies someone.
const NUMBER_CUES: &[&str] = &[
    "number",
    "code",
    "pin",
    "cvv",
    "account",
    "card",
    "phone",
    "ssn",
    "social",
    "security",
    "zip",
    "postcode",
    "postal",
    "id",
    "passport",
    "license",
    "licence",
    "routing",
    "iban",
    "member",
    "membership",
    "policy",
    "order",
    "extension",
    "ends",
    "ending",
];
/// How many words before a number a cue may be ("the security code on the back is …").
const CUE_WINDOW: usize = 6;

/// "march", "mar", "sept".
fn is_month(key: &str) -> bool {
    key.len() >= 3 && entities::MONTHS.iter().any(|m| m.starts_with(key))
}

/// Words after a number that make it a quantity.
const UNITS: [&str; 52] = [
    "dollars",
    "dollar",
    "bucks",
    "euros",
    "euro",
    "pounds",
    "pound",
    "cents",
    "yen",
    "rupees",
    "percent",
    "minutes",
    "minute",
    "mins",
    "hours",
    "hour",
    "seconds",
    "second",
    "days",
    "day",
    "weeks",
    "week",
    "months",
    "month",
    "years",
    "year",
    "miles",
    "mile",
    "km",
    "kilometers",
    "meters",
    "metres",
    "feet",
    "foot",
    "inches",
    "degrees",
    "calories",
    "people",
    "times",
    "pm",
    "am",
    "grams",
    "kg",
    "ounces",
    "cups",
    "steps",
    "points",
    "shares",
    "liters",
    "litres",
    "gallons",
    "items",
];
const STREET_SUFFIXES: [&str; 28] = [
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "lane",
    "ln",
    "drive",
    "dr",
    "court",
    "ct",
    "way",
    "place",
    "pl",
    "terrace",
    "circle",
    "parkway",
    "highway",
    "hwy",
    "square",
    "crescent",
    "close",
    "alley",
    "trail",
    "plaza",
];
/// Words no street's name is made of ("7 people in st louis").
const FUNCTION_WORDS: [&str; 10] = [
    "in", "at", "on", "for", "to", "from", "of", "the", "and", "a",
];

/// "St" and "Dr" before a name are a saint and a doctor ("St Louis"), not a street.
fn saint_or_doctor(words: &[Word], at: usize) -> bool {
    matches!(words[at].key.as_str(), "st" | "dr")
        && !words[at].text.ends_with([',', '.'])
        && words
            .get(at + 1)
            .is_some_and(|w| w.key.chars().all(char::is_alphabetic) && !w.key.is_empty())
}

const UNIT_WORDS: [&str; 6] = ["apartment", "apt", "unit", "suite", "flat", "floor"];

/// How a word counts in a number: digits read one by one, or part of a quantity
/// ("eighteen hundred").
#[derive(Debug, Clone, Copy, PartialEq)]
enum NumberWord {
    /// Written digits (separators allowed: "555-867-5309"), or one spoken digit each.
    Digits(usize),
    /// "double five", "triple seven".
    Repeat(usize),
    Quantity,
}

fn number_word(word: &Word) -> Option<NumberWord> {
    let k = word.key.as_str();
    let written_digits = k.chars().filter(char::is_ascii_digit).count();
    // "12/03/2019" is a date, not an identifier.
    if written_digits > 0
        && k.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '.' | ',' | '(' | ')' | '+'))
    {
        return Some(NumberWord::Digits(written_digits));
    }
    if digit_word(k) {
        return Some(NumberWord::Digits(1));
    }
    match k {
        "double" => Some(NumberWord::Repeat(2)),
        "triple" => Some(NumberWord::Repeat(3)),
        "hundred" | "thousand" => Some(NumberWord::Quantity),
        _ if teen_or_tens(k) => Some(NumberWord::Quantity),
        _ => None,
    }
}

/// A run of number words: [start, end), the digits read out, and whether words of quantity
/// were in it.
struct NumberRun {
    start: usize,
    end: usize,
    digits: usize,
    quantity: bool,
}

fn number_runs(words: &[Word]) -> Vec<NumberRun> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if number_word(&words[i]).is_none() {
            i += 1;
            continue;
        }
        let start = i;
        let (mut digits, mut quantity, mut repeat) = (0, false, 1);
        while let Some(w) = words.get(i).and_then(number_word) {
            match w {
                NumberWord::Digits(n) => {
                    digits += n * repeat;
                    repeat = 1;
                }
                NumberWord::Repeat(n) => repeat = n,
                NumberWord::Quantity => quantity = true,
            }
            i += 1;
        }
        // A lone "oh" or "one" is a word, not a number.
        if digits > 0 || quantity {
            runs.push(NumberRun {
                start,
                end: i,
                digits,
                quantity,
            });
        }
    }
    runs
}

fn is_year(words: &[Word], run: &NumberRun) -> bool {
    let first = &words[run.start];
    if run.end - run.start == 1 && run.digits == 4 {
        return first
            .key
            .parse::<u32>()
            .is_ok_and(|y| (1900..=2099).contains(&y));
    }
    // "nineteen eighty six", "two thousand".
    run.quantity
        && (first.is("nineteen")
            || first.is("twenty")
            || words[run.start..run.end].iter().any(|w| w.is("thousand")))
}

fn currency_before(words: &[Word], at: usize) -> bool {
    words[at].text.starts_with(['$', '€', '£'])
        || at > 0 && matches!(words[at - 1].key.as_str(), "usd" | "eur" | "gbp")
}

/// Runs of digits that identify: said with a cue ("my pin is 1234", "order four five six
/// seven"), long ones (phone, card, account numbers), or read digit by digit.
fn numbers(words: &[Word], masks: &mut [Option<Mask>]) {
    for run in number_runs(words) {
        let unit_after = words
            .get(run.end)
            .is_some_and(|w| UNITS.contains(&w.key.as_str()) || w.key.ends_with('%'));
        // "March 12, 2019": a day and a year.
        let month_before = run.start > 0 && is_month(&words[run.start - 1].key);
        if unit_after || month_before || currency_before(words, run.start) {
            continue;
        }
        let cued = words[run.start.saturating_sub(CUE_WINDOW)..run.start]
            .iter()
            .any(|w| NUMBER_CUES.contains(&w.key.as_str()));
        // Written, a quantity is as likely as an identifier until it is long; read out digit
        // by digit, it is an identifier from four on.
        let written = words[run.start..run.end]
            .iter()
            .all(|w| w.key.chars().any(|c| c.is_ascii_digit()));
        let long_enough = if written { 5 } else { 4 };
        let identifies = if cued {
            run.digits >= 2 || (run.quantity && !is_year(words, &run))
        } else {
            !run.quantity && run.digits >= long_enough && !is_year(words, &run)
        };
        if identifies {
            mark(masks, run.start, run.end, Mask::Number);
        }
    }
}

/// "1800 Pine Street", "eighteen hundred Pine Street", "42 North Main Street, apartment 4".
fn addresses(words: &[Word], masks: &mut [Option<Mask>]) {
    for run in number_runs(words) {
        // The street's name: one to three words, then its kind.
        let suffix = (run.end + 1..(run.end + 4).min(words.len())).find(|&i| {
            STREET_SUFFIXES.contains(&words[i].key.as_str())
                && !saint_or_doctor(words, i)
                && words[run.end..i].iter().all(|w| {
                    w.key.chars().all(char::is_alphabetic)
                        && !UNITS.contains(&w.key.as_str())
                        && !FUNCTION_WORDS.contains(&w.key.as_str())
                })
        });
        if let Some(suffix) = suffix {
            mark(masks, run.start, suffix + 1, Mask::Address);
        }
    }
    // "apartment 4", "unit 12B".
    for i in 0..words.len().saturating_sub(1) {
        let next = &words[i + 1];
        let numbered = next.key.chars().next().is_some_and(|c| c.is_ascii_digit())
            || number_word(next).is_some();
        if UNIT_WORDS.contains(&words[i].key.as_str()) && numbered {
            let end = (i + 2..words.len())
                .find(|&j| number_word(&words[j]).is_none())
                .unwrap_or(words.len());
            mark(masks, i, end, Mask::Address);
        }
    }
}

fn is_date_word(word: &Word) -> bool {
    let k = word.key.as_str();
    entities::MONTHS.contains(&k)
        || entities::ORDINALS.contains(&k)
        || number_word(word).is_some()
        || matches!(k, "of" | "the")
        || ordinal_digits(k)
}

/// "1st", "22nd", "3rd", "5th".
fn ordinal_digits(k: &str) -> bool {
    let digits = k.trim_end_matches(|c: char| c.is_alphabetic());
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(&k[digits.len()..], "st" | "nd" | "rd" | "th")
}

/// The date after "born", "birthday", "date of birth", "DOB".
fn dates_of_birth(words: &[Word], masks: &mut [Option<Mask>]) {
    for i in 0..words.len() {
        if !matches!(words[i].key.as_str(), "born" | "birthday" | "birth" | "dob") {
            continue;
        }
        let mut start = i + 1;
        while words
            .get(start)
            .is_some_and(|w| matches!(w.key.as_str(), "is" | "was" | "on" | "in" | "s"))
        {
            start += 1;
        }
        let mut end = start;
        while end < words.len() && end < start + 8 && is_date_word(&words[end]) {
            end += 1;
        }
        let dated = words[start..end].iter().any(|w| {
            w.key.chars().any(|c| c.is_ascii_digit()) || !matches!(w.key.as_str(), "of" | "the")
        });
        if end > start && dated {
            mark(masks, start, end, Mask::Date);
        }
    }
}

/// Written, spelt out ("jane dot doe at corp dot io") or both ("zelda at example.com").
fn emails(words: &[Word], masks: &mut [Option<Mask>]) {
    for (i, w) in words.iter().enumerate() {
        if w.text.contains('@') {
            mark(masks, i, i + 1, Mask::Email);
        }
    }
    let joiners = |w: &Word| matches!(w.key.as_str(), "dot" | "underscore" | "dash" | "hyphen");
    for at in 1..words.len() {
        if !words[at].is("at") {
            continue;
        }
        // Someone reached "at" a place is no address's name.
        if matches!(
            words[at - 1].key.as_str(),
            "me" | "us" | "him" | "her" | "them" | "you" | "it" | "one" | "look" | "be"
        ) {
            continue;
        }
        // The domain: "example.com", or "corp dot io (dot uk)".
        let Some(first) = words.get(at + 1).filter(|w| !w.text.contains('@')) else {
            continue;
        };
        let mut end = if is_domain(&first.key) {
            at + 2
        } else if words.get(at + 2).is_some_and(|w| w.is("dot")) && at + 3 < words.len() {
            at + 4
        } else {
            continue;
        };
        while words.get(end).is_some_and(|w| w.is("dot")) && end + 1 < words.len() {
            end += 2;
        }
        // The name before "at", and any "x dot y" / "x underscore y" before it.
        let mut start = at - 1;
        while start >= 2 && joiners(&words[start - 1]) {
            start -= 2;
        }
        mark(masks, start, end, Mask::Email);
    }
}

/// "example.com", "hark.io": a dotted name ending in letters.
fn is_domain(key: &str) -> bool {
    let Some((name, tld)) = key.rsplit_once('.') else {
        return false;
    };
    !name.is_empty() && (2..=6).contains(&tld.len()) && tld.chars().all(|c| c.is_ascii_alphabetic())
}

/// "my name is", "the name is", "her first name is".
const NAME_OWNERS: [&str; 10] = [
    "my", "the", "first", "last", "full", "middle", "maiden", "his", "her", "their",
];

/// Words after a name cue that are no part of a name.
const NOT_NAMES: [&str; 30] = [
    "and", "but", "so", "i", "i'm", "im", "my", "please", "thanks", "thank", "from", "at", "on",
    "back", "later", "when", "if", "now", "again", "the", "a", "an", "is", "calling", "here",
    "speaking", "with", "to", "in", "by",
];

/// Names said with a cue. After "my name is", "call me", "my name's" the next words are the
/// name; after "this is", "I'm", "I am", "it's" only capitalized ones (as names are written:
/// "this is ridiculous" names nobody).
fn names(words: &[Word], masks: &mut [Option<Mask>]) {
    for i in 0..words.len() {
        let k = |j: usize| words.get(j).map_or("", |w: &Word| w.key.as_str());
        let (start, capital_only) = match (k(i), k(i + 1), k(i + 2)) {
            ("name", "is", _) if i > 0 && NAME_OWNERS.contains(&k(i - 1)) => (i + 2, false),
            ("name's", _, _) | ("names", _, _) if i > 0 && k(i - 1) == "my" => (i + 1, false),
            ("call", "me", _) => (i + 2, false),
            ("go", "by", _) => (i + 2, false),
            ("this", "is", _) | ("i", "am", _) => (i + 2, true),
            ("i'm", _, _) | ("it's", _, _) | ("im", _, _) => (i + 1, true),
            _ => continue,
        };
        let mut end = start;
        while end < words.len() && end < start + 3 {
            let w = &words[end];
            let plausible = w.key.len() >= 2
                && w.key
                    .chars()
                    .all(|c| c.is_alphabetic() || c == '-' || c == '\'')
                && !NOT_NAMES.contains(&w.key.as_str())
                && (!capital_only || w.capitalized());
            if !plausible {
                break;
            }
            end += 1;
            // A name ends where its sentence does ("Mallory. I'd like…").
            if w.text.ends_with(['.', ',', '!', '?']) {
                break;
            }
        }
        if end > start {
            mark(masks, start, end, Mask::Name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_written_spelt_out_or_both() {
        assert_eq!(redact("mail jane@corp.io please"), "mail [email] please");
        assert_eq!(redact("it's jane dot doe at corp dot io"), "it's [email]");
        assert_eq!(
            redact("my email is Zelda at example.com."),
            "my email is [email]."
        );
        assert_eq!(
            redact("send it to mark underscore lee at outlook dot com please"),
            "send it to [email] please"
        );
        assert_eq!(redact("meet me at noon"), "meet me at noon");
    }

    #[test]
    fn identifying_numbers_in_digits_or_words() {
        assert_eq!(redact("order four five six seven"), "order [number]");
        assert_eq!(redact("call 555 867 5309 now"), "call [number] now");
        assert_eq!(redact("555 867 5309 jane@corp.io"), "[number] [email]");
        assert_eq!(
            redact("call me back on five five five, eight six seven, five three oh nine"),
            "call me back on [number]"
        );
        assert_eq!(redact("my pin is 1234"), "my pin is [number]");
        assert_eq!(
            redact("the account is double seven three nine one two"),
            "the account is [number]"
        );
    }

    #[test]
    fn quantities_and_years_stay() {
        for text in [
            "a table for two at 7",
            "transfer 1500 dollars to savings",
            "what happened in 1969",
            "set a timer for one hundred twenty five seconds",
            "i was there in nineteen eighty six",
            "oh one more thing",
            "how much is $2500",
            "what is the square root of 8814",
            "remove the party from my calendar for march 12, 2019",
            "do i have plans on 12/03/2019",
            "a hotel room for 7 people in st louis",
            "what name is saved for me",
            "are you able to call me by my name",
        ] {
            assert_eq!(redact(text), text);
        }
    }

    #[test]
    fn addresses_and_dates_of_birth() {
        assert_eq!(
            redact("I live at 1800 Pine Street."),
            "I live at [address]."
        );
        assert_eq!(
            redact("ship it to eighteen hundred Pine Street"),
            "ship it to [address]"
        );
        assert_eq!(
            redact("send it to 221 Baker Street, apartment 4"),
            "send it to [address]"
        );
        assert_eq!(
            redact("I was born on the fourth of July nineteen eighty six"),
            "I was born on [date]"
        );
        assert_eq!(
            redact("my birthday is December 12th"),
            "my birthday is [date]"
        );
    }

    #[test]
    fn any_text_is_masked_without_a_panic() {
        assert_eq!(redact("call 555 867 5309…"), "call [number]…");
        assert_eq!(redact("mail zoë@exämple.com’"), "mail [email]’");
        assert_eq!(redact("a@ b"), "[email] b");
        for text in [
            "",
            " ",
            "at",
            "my name is",
            "born",
            "1800 st",
            "apartment",
            "… … …",
        ] {
            redact(text);
        }
    }

    #[test]
    fn names_said_with_a_cue_or_known() {
        assert_eq!(redact("hi my name is Priya Raman"), "hi my name is [name]");
        assert_eq!(
            redact("my name is john and I want a table"),
            "my name is [name] and I want a table"
        );
        assert_eq!(
            redact("Hi, this is Mallory. I'd like to change my order."),
            "Hi, this is [name]. I'd like to change my order."
        );
        assert_eq!(redact("this is ridiculous"), "this is ridiculous");
        assert_eq!(redact("call me back later"), "call me back later");
        let mut known = Redactor::default();
        known.know("Priya", Mask::Name);
        assert_eq!(
            known.redact("Thanks, Priya. Your table is booked."),
            "Thanks, [name]. Your table is booked."
        );
    }
}
