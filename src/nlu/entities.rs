//! Entities in what the user said, the way speech recognition writes it: numbers in digits
//! or words ("four people", "five five five one two three"), times ("at seven", "three
//! thirty pm", "noon"), dates, relative ones too ("tomorrow", "next Friday", "December
//! 3rd"), durations ("ten minutes"), e-mail addresses spoken aloud ("john dot smith at
//! example dot com"), phone numbers, order ids, and values from configured lists, matched
//! loosely (plurals, small misspellings).
//!
//! Extraction works on lower-case word tokens; every entity records the words it came from,
//! so the dialogue can tell which slot a correction ("make it four") is about.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};

pub use crate::conversation::EntityKind;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entity {
    pub kind: EntityKind,
    /// Normalised value: "4", "19:00", "2026-11-27", "600" (seconds), "john.smith@example.com".
    pub value: String,
    /// The words it was read from.
    pub text: String,
    /// Word positions [start, end).
    pub span: (usize, usize),
}

/// Lower-case words with punctuation removed, keeping characters that matter inside
/// tokens (digits with ':' for clock times, '@' and '.' inside written e-mail addresses).
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in text.split_whitespace() {
        let w = w.trim_matches(|c: char| !(c.is_alphanumeric() || c == '@'));
        let w: String = w
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ':' | '@' | '.' | '\'' | '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect();
        // "3pm", "7:30am": the clock and the marker are two words.
        let split = ["am", "pm"].iter().find_map(|m| {
            w.strip_suffix(m)
                .filter(|clock| {
                    !clock.is_empty() && clock.chars().all(|c| c.is_ascii_digit() || c == ':')
                })
                .map(|clock| (clock.to_string(), m.to_string()))
        });
        match split {
            Some((clock, marker)) => out.extend([clock, marker]),
            None if !w.is_empty() => out.push(w),
            None => {}
        }
    }
    out
}

/// "zero" to "nineteen", with the words speech recognition writes for some of them.
pub(crate) fn small_number(word: &str) -> Option<u64> {
    Some(match word {
        "zero" | "oh" | "o" => 0,
        "one" | "a" | "an" => 1,
        "two" | "to" | "too" => 2,
        "three" => 3,
        "four" | "for" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        _ => return None,
    })
}

pub(crate) fn tens(word: &str) -> Option<u64> {
    Some(match word {
        "twenty" => 20,
        "thirty" => 30,
        "forty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

/// Words that only count as numbers next to other number words or units ("a table" is
/// not one table; "to" and "for" are usually not 2 and 4).
pub(crate) fn ambiguous(word: &str) -> bool {
    matches!(word, "a" | "an" | "to" | "too" | "for" | "oh" | "o")
}

/// Reads a number starting at `words[i]`: digits ("4", "4th"), or number words up to the
/// thousands ("two hundred and five"). Returns the value and the words used.
pub fn number_at(words: &[String], i: usize) -> Option<(u64, usize)> {
    let w = words.get(i)?;
    let digits: String = w.chars().take_while(char::is_ascii_digit).collect();
    if !digits.is_empty() {
        let rest = &w[digits.len()..];
        if rest.is_empty() || matches!(rest, "st" | "nd" | "rd" | "th" | "s") {
            return digits.parse().ok().map(|n| (n, 1));
        }
        return None;
    }
    let mut total = 0u64;
    let mut current = 0u64;
    let mut used = 0;
    let mut j = i;
    while let Some(w) = words.get(j) {
        let w = w.as_str();
        if let Some(n) = small_number(w) {
            if used > 0 && current % 10 != 0 {
                break; // "five five" is two numbers (a digit sequence), not one
            }
            if used > 0 && current >= 10 && current % 10 == 0 && n >= 10 {
                break;
            }
            current += n;
        } else if let Some(n) = tens(w) {
            if used > 0 && current != 0 && current % 100 != 0 {
                break;
            }
            current += n;
        } else if w == "hundred" && used > 0 {
            current = current.max(1) * 100;
        } else if w == "thousand" && used > 0 {
            total += current.max(1) * 1000;
            current = 0;
        } else if w == "and" && used > 0 && current >= 100 {
            // "two hundred and five"
        } else {
            break;
        }
        used += 1;
        j += 1;
    }
    if used == 0 {
        return None;
    }
    // Trailing "and" is not part of the number.
    if words[i + used - 1] == "and" {
        used -= 1;
    }
    if used == 1 && ambiguous(&words[i]) {
        return None;
    }
    Some((total + current, used))
}

/// The longest run of 3+ digits in `words` (spoken or written) and its span: an order or
/// phone number given on its own, as the answer to a question asking for one.
pub fn longest_digit_run(words: &[String]) -> Option<(String, (usize, usize))> {
    let mut best: Option<(String, (usize, usize))> = None;
    let mut i = 0;
    while i < words.len() {
        match digit_run(words, i) {
            Some((digits, used)) => {
                if digits.len() >= 3 && best.as_ref().is_none_or(|(b, _)| digits.len() > b.len()) {
                    best = Some((digits, (i, i + used)));
                }
                i += used;
            }
            None => i += 1,
        }
    }
    best
}

/// A run of single digits, spoken ("five five five one two") or written ("555 12"): used
/// for phone numbers and order ids.
fn digit_run(words: &[String], i: usize) -> Option<(String, usize)> {
    let mut digits = String::new();
    let mut j = i;
    while let Some(w) = words.get(j) {
        if w.chars().all(|c| c.is_ascii_digit()) {
            digits.push_str(w);
        } else if let Some(n) = small_number(w).filter(|n| *n < 10) {
            if ambiguous(w) && !matches!(w.as_str(), "oh" | "o") {
                break;
            }
            digits.push_str(&n.to_string());
        } else if matches!(w.as_str(), "double" | "triple") {
            let times = if w == "double" { 2 } else { 3 };
            let next = words
                .get(j + 1)
                .and_then(|n| small_number(n).filter(|n| *n < 10))?;
            digits.push_str(&next.to_string().repeat(times));
            j += 1;
        } else {
            break;
        }
        j += 1;
    }
    (j > i).then_some((digits, j - i))
}

fn weekday(word: &str) -> Option<Weekday> {
    Some(match word.trim_end_matches('s') {
        "monday" => Weekday::Mon,
        "tuesday" => Weekday::Tue,
        "wednesday" => Weekday::Wed,
        "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri,
        "saturday" => Weekday::Sat,
        "sunday" => Weekday::Sun,
        _ => return None,
    })
}

/// Month names, January first.
pub const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn month(word: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| {
            *m == word
                || (word.len() >= 3 && m.starts_with(word) && word != "may" && word.len() == 3)
        })
        .map(|i| i as u32 + 1)
}

fn entity(kind: EntityKind, value: String, words: &[String], start: usize, len: usize) -> Entity {
    Entity {
        kind,
        value,
        text: words[start..start + len].join(" "),
        span: (start, start + len),
    }
}

/// Extracts dates relative to `today`.
fn dates(words: &[String], today: NaiveDate, out: &mut Vec<Entity>) {
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let found: Option<(NaiveDate, usize)> = match w {
            "today" | "tonight" => Some((today, 1)),
            "tomorrow" => Some((today + Duration::days(1), 1)),
            "yesterday" => Some((today - Duration::days(1), 1)),
            "day"
                if words.get(i + 1).is_some_and(|n| n == "after")
                    && words.get(i + 2).is_some_and(|n| n == "tomorrow") =>
            {
                Some((today + Duration::days(2), 3))
            }
            "next" | "this" | "on" | "coming" => {
                words.get(i + 1).and_then(|n| weekday(n)).map(|wd| {
                    let ahead = (wd.num_days_from_monday() as i64
                        - today.weekday().num_days_from_monday() as i64)
                        .rem_euclid(7);
                    // "next Friday" on a Friday is a week away; "this Friday"/"on Friday" today.
                    let ahead = if ahead == 0 && w == "next" { 7 } else { ahead };
                    (today + Duration::days(ahead), 2)
                })
            }
            _ => None,
        }
        .or_else(|| {
            // A bare weekday: the next one (today counts).
            weekday(w).map(|wd| {
                let ahead = (wd.num_days_from_monday() as i64
                    - today.weekday().num_days_from_monday() as i64)
                    .rem_euclid(7);
                (today + Duration::days(ahead), 1)
            })
        })
        .or_else(|| {
            // "December 3rd", "3rd of December", "the third of December"
            if let Some(m) = month(w) {
                let (day, used) = number_at(words, i + 1)?;
                let date = NaiveDate::from_ymd_opt(today.year(), m, day as u32)?;
                let date = if date < today {
                    NaiveDate::from_ymd_opt(today.year() + 1, m, day as u32)?
                } else {
                    date
                };
                return Some((date, 1 + used));
            }
            let (day, used) = ordinal_at(words, i)?;
            let of = words.get(i + used).is_some_and(|n| n == "of");
            let m = month(words.get(i + used + usize::from(of))?)?;
            let date = NaiveDate::from_ymd_opt(today.year(), m, day)?;
            let date = if date < today {
                NaiveDate::from_ymd_opt(today.year() + 1, m, day)?
            } else {
                date
            };
            Some((date, used + usize::from(of) + 1))
        });
        if let Some((date, used)) = found {
            out.push(entity(
                EntityKind::Date,
                date.format("%Y-%m-%d").to_string(),
                words,
                i,
                used,
            ));
            i += used;
        } else {
            i += 1;
        }
    }
}

/// Ordinal words, "first" to "thirty-first".
pub const ORDINALS: [&str; 31] = [
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
    "twenty-first",
    "twenty-second",
    "twenty-third",
    "twenty-fourth",
    "twenty-fifth",
    "twenty-sixth",
    "twenty-seventh",
    "twenty-eighth",
    "twenty-ninth",
    "thirtieth",
    "thirty-first",
];

fn ordinal_at(words: &[String], i: usize) -> Option<(u32, usize)> {
    let w = words.get(i)?;
    let w = if w == "the" { words.get(i + 1)? } else { w };
    let skip = usize::from(words[i] == "the");
    if let Some(k) = ORDINALS.iter().position(|o| o == w) {
        return Some((k as u32 + 1, 1 + skip));
    }
    let digits: String = w.chars().take_while(char::is_ascii_digit).collect();
    let rest = &w[digits.len()..];
    if !digits.is_empty() && matches!(rest, "st" | "nd" | "rd" | "th") {
        return digits.parse().ok().map(|d| (d, 1 + skip));
    }
    None
}

/// Clock times: "7", "7:30", "seven thirty", "three thirty pm", "noon", "half past six",
/// "quarter to eight". A bare number is a time only after "at" or before am/pm/o'clock.
fn times(words: &[String], out: &mut Vec<Entity>) {
    let mut i = 0;
    while i < words.len() {
        if let Some((h, m, start, len)) = time_at(words, i) {
            let (h, len) = with_marker(words, h, start, len);
            if let Some(t) = NaiveTime::from_hms_opt(h, m, 0) {
                out.push(entity(
                    EntityKind::Time,
                    t.format("%H:%M").to_string(),
                    words,
                    start,
                    len,
                ));
            }
            i = start + len;
        } else {
            i += 1;
        }
    }
}

/// The clock time written from word `i` on, as (hour, minute, start, len), before what
/// follows it (am/pm, o'clock, "in the evening") is read.
fn time_at(words: &[String], i: usize) -> Option<(u32, u32, usize, usize)> {
    let w = words[i].as_str();
    let mut found: Option<(u32, u32, usize, usize)> = None; // hour, minute, start, len
    if w == "noon" || w == "midday" {
        found = Some((12, 0, i, 1));
    } else if w == "midnight" {
        found = Some((0, 0, i, 1));
    } else if (w == "half" || w == "quarter")
        && words.get(i + 1).is_some_and(|n| n == "past" || n == "to")
    {
        if let Some((h, used)) = number_at(words, i + 2).filter(|(h, _)| (1..=12).contains(h)) {
            let minutes = if w == "half" { 30 } else { 15 };
            let (h, m) = if words[i + 1] == "past" {
                (h as u32, minutes)
            } else {
                ((h as u32 + 11) % 12 + 1 - 1, 60 - minutes)
            };
            let h = if h == 0 { 12 } else { h };
            found = Some((h, m, i, 3 + used - 1));
        }
    } else if let Some((h, m)) = w
        .split_once(':')
        .and_then(|(h, m)| Some((h.parse::<u32>().ok()?, m.parse::<u32>().ok()?)))
    {
        if h < 24 && m < 60 {
            found = Some((h, m, i, 1));
        }
    } else if let Some((h, used)) = number_at(words, i).filter(|(h, _)| (1..=12).contains(h)) {
        found = spoken_time(words, i, h, used);
    }
    found
}

/// The time an hour `h` read at word `i` (`used` words) starts, with the minutes spoken after
/// it ("seven thirty", "seven oh five", "7 30"); a bare hour only after "at" and the like or
/// before am/pm/o'clock.
fn spoken_time(
    words: &[String],
    i: usize,
    h: u64,
    used: usize,
) -> Option<(u32, u32, usize, usize)> {
    let after_at = i > 0
        && matches!(
            words[i - 1].as_str(),
            "at" | "around" | "by" | "till" | "until"
        );
    // Minutes: "seven thirty", "seven oh five", "7 30".
    let mut minute = 0;
    let mut len = used;
    if let Some((m, mused)) = number_at(words, i + used).filter(|(m, _)| (10..60).contains(m)) {
        minute = m as u32;
        len += mused;
    } else if words.get(i + used).is_some_and(|n| n == "oh" || n == "o") {
        if let Some(m) = words
            .get(i + used + 1)
            .and_then(|n| small_number(n))
            .filter(|m| *m < 10)
        {
            minute = m as u32;
            len += 2;
        }
    }
    let marker = words.get(i + len).map(String::as_str);
    let has_marker = matches!(
        marker,
        Some("am" | "pm" | "a.m." | "p.m." | "oclock" | "o'clock")
    );
    // "seven thirty" is a time even without "at"; a bare "seven" needs context.
    (after_at || has_marker || minute > 0).then_some((h as u32, minute, i, len))
}

/// The hour and length of a time found at `start` (`len` words), read with what follows:
/// "pm" or "am" (taken in), "o'clock" (taken in), or an evening mentioned soon after.
fn with_marker(words: &[String], mut h: u32, start: usize, mut len: usize) -> (u32, usize) {
    match words.get(start + len).map(String::as_str) {
        Some("pm" | "p.m.") => {
            if h < 12 {
                h += 12;
            }
            len += 1;
        }
        Some("am" | "a.m.") => {
            if h == 12 {
                h = 0;
            }
            len += 1;
        }
        Some("oclock" | "o'clock") => len += 1,
        _ => {
            // "in the evening/afternoon", "tonight": afternoon hours.
            let evening = words[start + len..]
                .iter()
                .take(4)
                .any(|w| matches!(w.as_str(), "evening" | "afternoon" | "tonight" | "night"));
            if evening && h < 12 {
                h += 12;
            }
        }
    }
    (h, len)
}

fn durations(words: &[String], out: &mut Vec<Entity>) {
    let mut i = 0;
    while i < words.len() {
        let (n, used) = match number_at(words, i) {
            Some(found) => found,
            None if matches!(words[i].as_str(), "a" | "an" | "one") => (1, 1),
            None => {
                i += 1;
                continue;
            }
        };
        let unit = words.get(i + used).map(|u| u.trim_end_matches('s'));
        let seconds = match unit {
            Some("second" | "sec") => 1,
            Some("minute" | "min") => 60,
            Some("hour" | "hr") => 3600,
            Some("day") => 86_400,
            Some("week") => 604_800,
            _ => {
                i += used;
                continue;
            }
        };
        out.push(entity(
            EntityKind::Duration,
            (n * seconds).to_string(),
            words,
            i,
            used + 1,
        ));
        i += used + 1;
    }
}

/// "john dot smith at example dot com", "john.smith@example.com".
fn emails(words: &[String], out: &mut Vec<Entity>) {
    for (i, w) in words.iter().enumerate() {
        if w.contains('@') && w.contains('.') && !w.starts_with('@') {
            out.push(entity(
                EntityKind::Email,
                w.trim_end_matches('.').to_string(),
                words,
                i,
                1,
            ));
        }
    }
    // Spoken: NAME (dot NAME)* at DOMAIN (dot PART)+
    let Some(at) = words.iter().position(|w| w == "at") else {
        return;
    };
    let part = |w: &str| {
        w.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
            && !w.is_empty()
    };
    let mut start = at;
    while start >= 1 && part(&words[start - 1]) {
        if start >= 2 && matches!(words[start - 2].as_str(), "dot" | "underscore" | "dash") {
            start -= 2;
        } else {
            start -= 1;
            break;
        }
    }
    if start == at {
        return;
    }
    let mut end = at + 1;
    if !words.get(end).is_some_and(|w| part(w)) {
        return;
    }
    end += 1;
    let mut dots = 0;
    while words.get(end).is_some_and(|w| w == "dot") && words.get(end + 1).is_some_and(|w| part(w))
    {
        end += 2;
        dots += 1;
    }
    if dots == 0 {
        return;
    }
    let address: String = words[start..end]
        .iter()
        .map(|w| match w.as_str() {
            "dot" => ".",
            "at" => "@",
            "underscore" => "_",
            "dash" => "-",
            other => other,
        })
        .collect();
    out.push(entity(
        EntityKind::Email,
        address,
        words,
        start,
        end - start,
    ));
}

/// Phone numbers (7–15 digits, spoken digit by digit or written) and order ids (a digit
/// run of 3+ after "order", or a written id mixing letters and digits).
fn phones_and_ids(words: &[String], out: &mut Vec<Entity>) {
    let mut i = 0;
    while i < words.len() {
        if let Some((digits, used)) = digit_run(words, i) {
            let after_order = words[..i]
                .iter()
                .rev()
                .take(3)
                .any(|w| w == "order" || w == "number" || w == "id");
            if (7..=15).contains(&digits.len())
                && !words[..i].iter().rev().take(3).any(|w| w == "order")
            {
                out.push(entity(EntityKind::Phone, digits, words, i, used));
            } else if digits.len() >= 3 && after_order {
                out.push(entity(EntityKind::OrderId, digits, words, i, used));
            }
            i += used;
            continue;
        }
        let w = &words[i];
        let letters = w.chars().filter(char::is_ascii_alphabetic).count();
        let digits = w.chars().filter(char::is_ascii_digit).count();
        if letters > 0 && digits >= 2 && w.len() >= 4 && !w.contains('@') && !w.contains(':') {
            let id = w.to_uppercase();
            if !(digits + 2 >= w.len() && ["st", "nd", "rd", "th"].iter().any(|s| w.ends_with(s))) {
                out.push(entity(EntityKind::OrderId, id, words, i, 1));
            }
        }
        i += 1;
    }
}

fn numbers(words: &[String], taken: &[(usize, usize)], out: &mut Vec<Entity>) {
    let mut i = 0;
    while i < words.len() {
        if taken.iter().any(|&(s, e)| i >= s && i < e) {
            i += 1;
            continue;
        }
        if let Some((n, used)) = number_at(words, i) {
            out.push(entity(EntityKind::Number, n.to_string(), words, i, used));
            i += used;
        } else {
            i += 1;
        }
    }
}

/// Similarity of two words in [0, 1]: 1 − edit distance / longer length.
pub fn word_similarity(a: &str, b: &str) -> f32 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    1.0 - prev[b.len()] as f32 / a.len().max(b.len()) as f32
}

/// Every built-in entity in `text` (dates relative to `today`), in order of position.
pub fn extract(text: &str, today: NaiveDate) -> Vec<Entity> {
    let words = tokenize(text);
    let mut out = Vec::new();
    emails(&words, &mut out);
    dates(&words, today, &mut out);
    times(&words, &mut out);
    durations(&words, &mut out);
    phones_and_ids(&words, &mut out);
    let taken: Vec<(usize, usize)> = out.iter().map(|e| e.span).collect();
    // A time can overlap a date's words ("tomorrow at seven" is two entities): keep both;
    // but an e-mail's words are nothing else.
    let email_spans: Vec<(usize, usize)> = out
        .iter()
        .filter(|e| e.kind == EntityKind::Email)
        .map(|e| e.span)
        .collect();
    out.retain(|e| {
        e.kind == EntityKind::Email
            || !email_spans
                .iter()
                .any(|&(s, t)| e.span.0 < t && s < e.span.1)
    });
    numbers(&words, &taken, &mut out);
    out.sort_by_key(|e| (e.span.0, e.span.1));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Wednesday.
    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn values(text: &str, kind: EntityKind) -> Vec<String> {
        extract(text, today())
            .into_iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.value)
            .collect()
    }

    #[test]
    fn numbers_in_digits_and_words() {
        assert_eq!(
            values("a table for four people", EntityKind::Number),
            vec!["4"]
        );
        assert_eq!(values("make it 12", EntityKind::Number), vec!["12"]);
        assert_eq!(values("twenty five guests", EntityKind::Number), vec!["25"]);
        assert_eq!(
            values("two hundred and five", EntityKind::Number),
            vec!["205"]
        );
        assert!(values("I want to book a table", EntityKind::Number).is_empty());
    }

    #[test]
    fn times_and_dates_relative_to_today() {
        assert_eq!(
            values("tomorrow at seven", EntityKind::Date),
            vec!["2026-11-26"]
        );
        assert_eq!(values("tomorrow at seven", EntityKind::Time), vec!["07:00"]);
        assert_eq!(
            values("at seven in the evening", EntityKind::Time),
            vec!["19:00"]
        );
        assert_eq!(values("three thirty pm", EntityKind::Time), vec!["15:30"]);
        assert_eq!(values("at 7:45", EntityKind::Time), vec!["07:45"]);
        assert_eq!(values("around noon", EntityKind::Time), vec!["12:00"]);
        assert_eq!(values("half past six pm", EntityKind::Time), vec!["18:30"]);
        assert_eq!(values("next Friday", EntityKind::Date), vec!["2026-11-27"]);
        assert_eq!(values("on Wednesday", EntityKind::Date), vec!["2026-11-25"]);
        assert_eq!(
            values("next Wednesday", EntityKind::Date),
            vec!["2026-12-02"]
        );
        assert_eq!(values("December 3rd", EntityKind::Date), vec!["2026-12-03"]);
        assert_eq!(
            values("the fifth of January", EntityKind::Date),
            vec!["2027-01-05"]
        );
        assert_eq!(
            values("the day after tomorrow", EntityKind::Date),
            vec!["2026-11-27"]
        );
    }

    #[test]
    fn durations_emails_phones_and_order_ids() {
        assert_eq!(
            values("set a timer for ten minutes", EntityKind::Duration),
            vec!["600"]
        );
        assert_eq!(values("for an hour", EntityKind::Duration), vec!["3600"]);
        assert_eq!(
            values("it's john dot smith at example dot com", EntityKind::Email),
            vec!["john.smith@example.com"]
        );
        assert_eq!(
            values("mail me at jane@corp.io.", EntityKind::Email),
            vec!["jane@corp.io"]
        );
        assert_eq!(
            values("call five five five one two three four", EntityKind::Phone),
            vec!["5551234"]
        );
        assert_eq!(
            values("my number is 555 867 5309", EntityKind::Phone),
            vec!["5558675309"]
        );
        assert_eq!(
            values(
                "my order number is four five six seven",
                EntityKind::OrderId
            ),
            vec!["4567"]
        );
        assert_eq!(
            values("order AB1234 please", EntityKind::OrderId),
            vec!["AB1234"]
        );
    }
}
