//! Word grammars: the closed set of sentences a recogniser may produce, for domains that
//! define one (expression templates). Decoding constrained to it cannot hear "ice milk" where
//! only "iced mocha" can be said.
//!
//! A grammar is built from sentence patterns (a sequence of groups, each group a choice
//! between phrases), compiled into the smallest deterministic automaton over words, and
//! handed to the engine in its own form (`whisper::grammar_rules`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One group of a pattern: exactly one of these phrases (words; an empty phrase makes the
/// group optional).
pub type Group = Vec<Vec<String>>;

/// A deterministic automaton over lowercase words: state 0 is the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordGrammar {
    /// Per state: the words that may come next, and the state each leads to.
    pub transitions: Vec<BTreeMap<String, usize>>,
    /// Per state: whether a sentence may end there.
    pub accepting: Vec<bool>,
    /// Words that name things (slot values), which a recogniser may hear inflected
    /// ("roasted" for "roast"); the sentence's fixed wording is not inflected.
    pub inflectable: BTreeSet<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GrammarError {
    #[error("a grammar needs at least one sentence pattern")]
    Empty,
}

/// Splits phrases into lowercase words (the automaton's alphabet).
pub fn words_of(phrase: &str) -> Vec<String> {
    phrase.split_whitespace().map(str::to_lowercase).collect()
}

/// A state's class and where each of its words leads (to classes): equal signatures, same
/// continuations.
type Signature<'a> = (usize, Vec<(&'a str, usize)>);

/// A nondeterministic automaton with empty moves, as patterns are read.
#[derive(Default)]
struct Nfa {
    words: Vec<Vec<(String, usize)>>,
    empty: Vec<Vec<usize>>,
    accepting: BTreeSet<usize>,
}

impl Nfa {
    fn state(&mut self) -> usize {
        self.words.push(Vec::new());
        self.empty.push(Vec::new());
        self.words.len() - 1
    }

    fn closure(&self, states: &BTreeSet<usize>) -> BTreeSet<usize> {
        let mut out = states.clone();
        let mut todo: Vec<usize> = states.iter().copied().collect();
        while let Some(s) = todo.pop() {
            for &t in &self.empty[s] {
                if out.insert(t) {
                    todo.push(t);
                }
            }
        }
        out
    }
}

impl WordGrammar {
    /// The grammar of every sentence any of `patterns` describes.
    pub fn from_patterns(patterns: &[Vec<Group>]) -> Result<Self, GrammarError> {
        if patterns.is_empty() {
            return Err(GrammarError::Empty);
        }
        let mut nfa = Nfa::default();
        let start = nfa.state();
        for pattern in patterns {
            let mut at = nfa.state();
            nfa.empty[start].push(at);
            for group in pattern {
                let join = nfa.state();
                for phrase in group {
                    let mut from = at;
                    for word in phrase {
                        let to = nfa.state();
                        nfa.words[from].push((word.to_lowercase(), to));
                        from = to;
                    }
                    nfa.empty[from].push(join);
                }
                at = join;
            }
            nfa.accepting.insert(at);
        }
        Ok(Self::determinize(&nfa, start).minimized())
    }

    /// Subset construction.
    fn determinize(nfa: &Nfa, start: usize) -> Self {
        let first = nfa.closure(&BTreeSet::from([start]));
        let mut ids: HashMap<BTreeSet<usize>, usize> = HashMap::from([(first.clone(), 0)]);
        let mut sets = vec![first];
        let mut transitions = Vec::new();
        let mut accepting = Vec::new();
        let mut next = 0;
        while next < sets.len() {
            let set = sets[next].clone();
            next += 1;
            let mut moves: BTreeMap<String, BTreeSet<usize>> = BTreeMap::new();
            for &s in &set {
                for (word, to) in &nfa.words[s] {
                    moves.entry(word.clone()).or_default().insert(*to);
                }
            }
            let mut out = BTreeMap::new();
            for (word, targets) in moves {
                let target = nfa.closure(&targets);
                let id = *ids.entry(target.clone()).or_insert_with(|| {
                    sets.push(target);
                    sets.len() - 1
                });
                out.insert(word, id);
            }
            transitions.push(out);
            accepting.push(set.iter().any(|s| nfa.accepting.contains(s)));
        }
        Self {
            transitions,
            accepting,
            inflectable: BTreeSet::new(),
        }
    }

    /// Merges states that accept the same continuations (Moore's partition refinement), so
    /// that "a large latte" and "a latte large" share everything after the last value.
    fn minimized(&self) -> Self {
        let mut class: Vec<usize> = self.accepting.iter().map(|&a| usize::from(a)).collect();
        let mut classes = class.iter().collect::<BTreeSet<_>>().len();
        loop {
            let mut signatures: HashMap<Signature, usize> = HashMap::new();
            let mut refined = Vec::with_capacity(class.len());
            for (state, moves) in self.transitions.iter().enumerate() {
                let signature = (
                    class[state],
                    moves
                        .iter()
                        .map(|(w, &to)| (w.as_str(), class[to]))
                        .collect::<Vec<_>>(),
                );
                let n = signatures.len();
                refined.push(*signatures.entry(signature).or_insert(n));
            }
            class = refined;
            // A round that splits no class is the fixed point.
            if signatures.len() == classes {
                break;
            }
            classes = signatures.len();
        }
        // Renumber so that the start stays state 0.
        let mut renumber: HashMap<usize, usize> = HashMap::new();
        let mut order = Vec::new();
        let mut todo = vec![0];
        while let Some(s) = todo.pop() {
            if renumber.contains_key(&class[s]) {
                continue;
            }
            renumber.insert(class[s], order.len());
            order.push(s);
            todo.extend(self.transitions[s].values().rev());
        }
        let transitions = order
            .iter()
            .map(|&s| {
                self.transitions[s]
                    .iter()
                    .map(|(w, &to)| (w.clone(), renumber[&class[to]]))
                    .collect()
            })
            .collect();
        let accepting = order.iter().map(|&s| self.accepting[s]).collect();
        Self {
            transitions,
            accepting,
            inflectable: self.inflectable.clone(),
        }
    }

    /// Marks which of the grammar's words name things (see `inflectable`); words it does not
    /// hold are ignored.
    pub fn with_inflectable<'a>(mut self, words: impl IntoIterator<Item = &'a str>) -> Self {
        let known = self.vocabulary();
        let words: BTreeSet<String> = words
            .into_iter()
            .filter(|w| known.contains(w))
            .map(str::to_string)
            .collect();
        self.inflectable = words;
        self
    }

    /// Whether the grammar holds `sentence` (words compared lowercase, punctuation ignored).
    pub fn accepts(&self, sentence: &str) -> bool {
        let mut state = 0;
        for word in sentence.split_whitespace() {
            let word: String = word
                .trim_matches(|c: char| c.is_ascii_punctuation() && c != '\'')
                .to_lowercase();
            if word.is_empty() {
                continue;
            }
            match self.transitions[state].get(&word) {
                Some(&next) => state = next,
                None => return false,
            }
        }
        self.accepting[state]
    }

    pub fn states(&self) -> usize {
        self.transitions.len()
    }

    /// Words in the longest sentence; None if sentences can be endless (a cycle, which
    /// patterns never make).
    pub fn longest_sentence(&self) -> Option<usize> {
        // Longest path from each state, depth first; `on_path` finds cycles.
        fn longest(
            g: &WordGrammar,
            s: usize,
            memo: &mut [Option<usize>],
            on_path: &mut [bool],
        ) -> Option<usize> {
            if let Some(n) = memo[s] {
                return Some(n);
            }
            if on_path[s] {
                return None;
            }
            on_path[s] = true;
            let mut best = 0;
            for &to in g.transitions[s].values() {
                best = best.max(1 + longest(g, to, memo, on_path)?);
            }
            on_path[s] = false;
            memo[s] = Some(best);
            Some(best)
        }
        let n = self.states();
        longest(self, 0, &mut vec![None; n], &mut vec![false; n])
    }

    /// Every word the grammar knows.
    pub fn vocabulary(&self) -> BTreeSet<&str> {
        self.transitions
            .iter()
            .flat_map(|m| m.keys().map(String::as_str))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(phrases: &[&str]) -> Group {
        phrases.iter().map(|p| words_of(p)).collect()
    }

    fn coffee() -> WordGrammar {
        let size = group(&["small", "large", "twelve ounce"]);
        let drink = group(&["latte", "iced mocha", "mocha"]);
        let lead = group(&["can I get", "give me"]);
        let article = group(&["a", "an"]);
        let with = group(&["with milk", ""]);
        WordGrammar::from_patterns(&[
            vec![
                lead.clone(),
                article.clone(),
                size.clone(),
                drink.clone(),
                with.clone(),
            ],
            vec![lead, article, drink, size, with],
        ])
        .unwrap()
    }

    #[test]
    fn longest_sentence_counts_words_and_cycles_have_none() {
        // "can i get a twelve ounce iced mocha with milk"
        assert_eq!(coffee().longest_sentence(), Some(10));
        let mut looping = coffee();
        looping.transitions[1].insert("again".into(), 0);
        assert_eq!(looping.longest_sentence(), None);
    }

    #[test]
    fn holds_the_sentences_of_its_patterns_and_no_others() {
        let g = coffee();
        assert!(g.accepts("Can I get a large iced mocha with milk."));
        assert!(g.accepts("give me an iced mocha twelve ounce"));
        assert!(g.accepts("can i get a small latte"));
        assert!(!g.accepts("can I get a large"));
        assert!(!g.accepts("can I get a large ice milk"));
        assert!(!g.accepts("can I get a large latte with milk please"));
        assert!(!g.accepts(""));
    }

    #[test]
    fn is_minimal_both_orders_share_their_endings() {
        let g = coffee();
        // Minimal: distinct states accept different continuations, so no two are equal.
        let mut seen = BTreeSet::new();
        for s in 0..g.states() {
            assert!(seen.insert((&g.transitions[s], g.accepting[s])));
        }
        // start, "can", "can I", lead done, article, size seen, "iced" (after size),
        // drink seen (end), "with", end; drink-first: drink seen, "iced", "twelve" ×2 ...
        assert!(g.states() < 20, "{} states", g.states());
        assert_eq!(
            g.vocabulary().into_iter().collect::<Vec<_>>(),
            [
                "a", "an", "can", "get", "give", "i", "iced", "large", "latte", "me", "milk",
                "mocha", "ounce", "small", "twelve", "with"
            ]
        );
    }

    #[test]
    fn no_patterns_is_an_error() {
        assert_eq!(WordGrammar::from_patterns(&[]), Err(GrammarError::Empty));
    }
}
