//! Documents into passages: a passage is a paragraph (or a list) under its heading, kept as
//! sentences, so an answer can be the one or two sentences that say it.

/// A paragraph of a document and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The headings above it, outermost first, joined ("Returns", "Stores — Seattle"); the
    /// document's name when it has none.
    pub section: String,
    pub sentences: Vec<String>,
}

impl Passage {
    pub fn text(&self) -> String {
        self.sentences.join(" ")
    }
}

/// Splits Markdown or plain text into passages. Headings (`#` lines) name the passages
/// under them; a blank line ends a paragraph; each list item is a sentence of its list's
/// passage; code blocks, tables and HTML comments are skipped. `name` stands for the
/// section of text before any heading.
pub fn split(text: &str, name: &str) -> Vec<Passage> {
    let mut passages = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut paragraph: Vec<String> = Vec::new();
    let mut in_code = false;
    let section = |headings: &[(usize, String)]| match headings.last() {
        None => name.to_string(),
        Some(_) if headings.len() == 1 => headings[0].1.clone(),
        // The document's title (a lone top heading) says little about each passage.
        Some(_) => headings
            .iter()
            .skip_while(|(level, _)| *level == 1)
            .map(|(_, h)| h.as_str())
            .collect::<Vec<_>>()
            .join(" — "),
    };
    let mut flush = |paragraph: &mut Vec<String>, headings: &[(usize, String)]| {
        let sentences: Vec<String> = paragraph
            .drain(..)
            .flat_map(|item| sentences(&item))
            .collect();
        if !sentences.is_empty() {
            passages.push(Passage {
                section: section(headings),
                sentences,
            });
        }
    };
    let mut item = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_code = !in_code;
            continue;
        }
        if in_code || trimmed.starts_with('|') || trimmed.starts_with("<!--") {
            continue;
        }
        if let Some(heading) = heading(trimmed) {
            push_item(&mut item, &mut paragraph);
            flush(&mut paragraph, &headings);
            headings.retain(|(level, _)| *level < heading.0);
            headings.push(heading);
            continue;
        }
        if trimmed.is_empty() {
            push_item(&mut item, &mut paragraph);
            flush(&mut paragraph, &headings);
            continue;
        }
        if let Some(rest) = list_item(trimmed) {
            push_item(&mut item, &mut paragraph);
            item.push_str(rest);
            continue;
        }
        if !item.is_empty() {
            item.push(' ');
        }
        item.push_str(trimmed);
    }
    push_item(&mut item, &mut paragraph);
    flush(&mut paragraph, &headings);
    passages
}

fn push_item(item: &mut String, paragraph: &mut Vec<String>) {
    if !item.trim().is_empty() {
        paragraph.push(plain(item));
    }
    item.clear();
}

/// `## Returns` → (2, "Returns").
fn heading(line: &str) -> Option<(usize, String)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let title = line[level..]
        .strip_prefix(' ')?
        .trim()
        .trim_end_matches('#')
        .trim();
    (!title.is_empty()).then(|| (level, plain(title)))
}

/// The text of a list item (`- `, `* `, `+ `, `1. `), if the line is one.
fn list_item(line: &str) -> Option<&str> {
    if let Some(rest) = ["- ", "* ", "+ "].iter().find_map(|m| line.strip_prefix(m)) {
        return Some(rest);
    }
    let digits = line.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 {
        return line[digits..]
            .strip_prefix(". ")
            .or_else(|| line[digits..].strip_prefix(") "));
    }
    None
}

/// Markdown's emphasis, code and link marks removed: the words as they would be said.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' | '`' => {}
            // Emphasis, not a word's own underscore ("help_desk").
            '_' if !out.ends_with(char::is_alphanumeric)
                || !chars.peek().is_some_and(|c| c.is_alphanumeric()) => {}
            // [text](url): the text.
            '[' => {}
            ']' if chars.peek() == Some(&'(') => {
                for c in chars.by_ref() {
                    if c == ')' {
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Words after which a full stop does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g.", "i.e.", "etc.", "mr.", "mrs.", "ms.", "dr.", "st.", "no.", "vs.", "approx.", "inc.",
    "ltd.", "co.", "a.m.", "p.m.", "u.s.", "jan.", "feb.", "mar.", "apr.", "aug.", "sept.", "sep.",
    "oct.", "nov.", "dec.",
];

/// A paragraph's sentences: a sentence ends at `.`, `?` or `!` followed by a space and a
/// capital letter, a digit or a quote, unless the word is a known abbreviation or a single
/// letter ("J. Smith").
pub fn sentences(paragraph: &str) -> Vec<String> {
    let words: Vec<&str> = paragraph.split_whitespace().collect();
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for (i, word) in words.iter().enumerate() {
        current.push(word);
        let next = words.get(i + 1);
        let ends = word.ends_with(['.', '?', '!'])
            || word.ends_with(".\"")
            || word.ends_with(".)")
            || word.ends_with(".”");
        let starts_new = next.is_some_and(|n| {
            n.starts_with(|c: char| c.is_uppercase() || c.is_ascii_digit() || "\"“(".contains(c))
        });
        let lower = word.to_lowercase();
        let abbreviation = ABBREVIATIONS.contains(&lower.as_str())
            || (word.len() == 2 && word.starts_with(char::is_alphabetic) && word.ends_with('.'));
        if next.is_none() || (ends && starts_new && !abbreviation) {
            out.push(current.join(" "));
            current.clear();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_under_headings_become_passages_of_sentences() {
        let doc = "# Larkspur help\n\nIntro line.\n\n## Shipping\n\nStandard shipping takes 3 to 5 days. It is free on orders of $50 or more; below that it costs $6.95.\n\nWe ship to Canada for a flat $19 per order.\n\n## Stores\n\n### Seattle\n\nOpen 10 AM to 8 PM.\n";
        let passages = split(doc, "help.md");
        assert_eq!(passages.len(), 4);
        assert_eq!(passages[0].section, "Larkspur help");
        assert_eq!(passages[1].section, "Shipping");
        assert_eq!(
            passages[1].sentences,
            vec![
                "Standard shipping takes 3 to 5 days.",
                "It is free on orders of $50 or more; below that it costs $6.95."
            ]
        );
        assert_eq!(
            passages[2].sentences,
            vec!["We ship to Canada for a flat $19 per order."]
        );
        assert_eq!(passages[3].section, "Stores — Seattle");
    }

    #[test]
    fn text_without_headings_is_named_after_its_file_and_lists_are_sentences() {
        let doc = "Our hours:\n- Monday to Friday, 9 to 5\n- Saturday 10 to 2\n\n```\ncode\n```\n| a | b |\n";
        let passages = split(doc, "hours.txt");
        assert_eq!(passages.len(), 1);
        assert_eq!(passages[0].section, "hours.txt");
        assert_eq!(
            passages[0].sentences,
            vec!["Our hours:", "Monday to Friday, 9 to 5", "Saturday 10 to 2"]
        );
    }

    #[test]
    fn sentences_do_not_end_at_abbreviations_prices_or_initials() {
        assert_eq!(
            sentences("Call Dr. Smith at 10 a.m. today. It costs $14.95 e.g. for J. Doe. Done!"),
            vec![
                "Call Dr. Smith at 10 a.m. today.",
                "It costs $14.95 e.g. for J. Doe.",
                "Done!"
            ]
        );
    }

    #[test]
    fn markdown_marks_are_dropped() {
        assert_eq!(
            plain("**Free** `pickup` at [our stores](https://x.example/stores) _today_"),
            "Free pickup at our stores today"
        );
        assert_eq!(
            plain("help_desk@larkspur.example"),
            "help_desk@larkspur.example"
        );
    }
}
