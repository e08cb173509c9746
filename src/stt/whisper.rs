//! Local Whisper through whisper-rs: one context per process, one state per session.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperGrammarElement,
    WhisperGrammarElementType, WhisperState,
};

use super::grammar::WordGrammar;
use super::repetition::{collapse_repetition, token_budget};
use super::{
    DecodeWindow, SttError, TranscribeOptions, Transcriber, Transcript, TranscriptSegment,
};

const SAMPLE_RATE: usize = 16_000;
/// Whisper's encoder sees 30 s as 1500 frames of 20 ms (320 samples).
const SAMPLES_PER_FRAME: usize = 320;
const MAX_AUDIO_CTX: usize = 1500;
/// Extra encoder frames beyond the audio; fewer made tiny.en cut off final words here.
const AUDIO_CTX_MARGIN: usize = 64;
/// whisper.cpp skips input shorter than one second, so short clips are padded with silence.
const MIN_SAMPLES: usize = SAMPLE_RATE + SAMPLE_RATE / 20;
/// Prompts are capped well under the decoder's 448-token context.
const MAX_PROMPT_TOKENS: usize = 120;

static SILENCE_LOGS: Once = Once::new();

/// A loaded Whisper model, shareable between sessions.
#[derive(Clone)]
pub struct WhisperModel {
    context: Arc<WhisperContext>,
    /// Decodes run one at a time per model. ggml's worker threads spin-wait at every graph
    /// barrier, so two concurrent decodes on a small CPU each wait on descheduled threads:
    /// measured here, two sessions decoding at once on 2 cores took 15× longer in total than
    /// the same decodes one after the other.
    decode_lock: Arc<Mutex<()>>,
    threads: usize,
    pub load_ms: f64,
}

impl WhisperModel {
    pub fn load(path: &Path, threads: usize) -> Result<Self, SttError> {
        if !path.exists() {
            return Err(SttError::ModelMissing {
                path: path.to_path_buf(),
            });
        }
        // whisper.cpp logs every load and decode to stderr; route it to nowhere.
        SILENCE_LOGS.call_once(whisper_rs::install_logging_hooks);
        let start = Instant::now();
        let context = WhisperContext::new_with_params(path, WhisperContextParameters::default()).map_err(|e| {
            SttError::ModelLoad {
                path: path.to_path_buf(),
                reason: format!("{e} (is it a ggml Whisper file? re-run `hark models fetch` or scripts/setup.sh)"),
            }
        })?;
        Ok(Self {
            context: Arc::new(context),
            decode_lock: Arc::new(Mutex::new(())),
            threads: threads.max(1),
            load_ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }

    pub fn session(&self) -> Result<WhisperSession, SttError> {
        let state = self
            .context
            .create_state()
            .map_err(|e| SttError::Decode(format!("could not create a Whisper state: {e}")))?;
        Ok(WhisperSession {
            context: self.context.clone(),
            decode_lock: self.decode_lock.clone(),
            state,
            threads: self.threads,
            grammar: None,
        })
    }

    pub fn is_multilingual(&self) -> bool {
        self.context.is_multilingual()
    }
}

/// One conversation's decoder state (~22 MB for tiny.en).
pub struct WhisperSession {
    context: Arc<WhisperContext>,
    decode_lock: Arc<Mutex<()>>,
    state: WhisperState,
    threads: usize,
    /// The last grammar seen, in whisper.cpp's form (sessions decode with the same one).
    grammar: Option<(Arc<WordGrammar>, Vec<Vec<WhisperGrammarElement>>)>,
}

/// The encoder window for `samples` of audio: trimmed to the audio plus a margin.
pub fn trimmed_audio_ctx(samples: usize) -> usize {
    (samples.div_ceil(SAMPLES_PER_FRAME) + AUDIO_CTX_MARGIN).min(MAX_AUDIO_CTX)
}

impl Transcriber for WhisperSession {
    fn transcribe(
        &mut self,
        pcm_16k: &[f32],
        options: &TranscribeOptions,
    ) -> Result<Transcript, SttError> {
        let start = Instant::now();
        let audio_ms = pcm_16k.len() as f64 * 1000.0 / SAMPLE_RATE as f64;
        let mut padded;
        let mut audio = pcm_16k;
        if audio.len() < MIN_SAMPLES {
            padded = Vec::with_capacity(MIN_SAMPLES);
            padded.extend_from_slice(audio);
            padded.resize(MIN_SAMPLES, 0.0);
            audio = &padded;
        }

        let prompt_tokens = match options.prompt.as_deref().map(str::trim) {
            Some(p) if !p.is_empty() => {
                let mut tokens = self
                    .context
                    .tokenize(&p.replace('\0', " "), 4 * MAX_PROMPT_TOKENS)
                    .map_err(|e| SttError::Decode(format!("could not tokenize the prompt: {e}")))?;
                // Keep the end of a long prompt: the most recent words matter most.
                if tokens.len() > MAX_PROMPT_TOKENS {
                    tokens.drain(..tokens.len() - MAX_PROMPT_TOKENS);
                }
                tokens
            }
            _ => Vec::new(),
        };

        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_no_context(true);
        params.set_suppress_blank(true);
        // Greedy at temperature 0 only: the fallback re-decodes at random temperatures, which
        // costs latency spikes and makes results differ run to run.
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        if !self.context.is_multilingual() {
            params.set_language(Some("en"));
        }
        if !prompt_tokens.is_empty() {
            params.set_tokens(&prompt_tokens);
        }
        if let Some(grammar) = &options.grammar {
            if !matches!(&self.grammar, Some((g, _)) if Arc::ptr_eq(g, grammar)) {
                self.grammar = Some((grammar.clone(), grammar_rules(grammar)));
            }
            if let Some((_, rules)) = &self.grammar {
                params.set_grammar(Some(rules));
            }
        }
        let trimmed = options.window == DecodeWindow::Trimmed
            && audio.len() <= MAX_AUDIO_CTX * SAMPLES_PER_FRAME;
        if trimmed {
            // Timestamps stay on: without them a short window made tiny.en repeat itself.
            params.set_single_segment(true);
            params.set_audio_ctx(trimmed_audio_ctx(audio.len()) as i32);
            // A trimmed window can still loop; the budget bounds what a loop costs.
            params.set_max_tokens(token_budget(audio.len() as f64 / SAMPLE_RATE as f64) as i32);
        }

        {
            // A poisoned lock only means another decode panicked; the state here is ours.
            let _turn = self.decode_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.state
                .full(params, audio)
                .map_err(|e| SttError::Decode(e.to_string()))?;
        }

        let mut segments = Vec::new();
        for segment in self.state.as_iter() {
            let text = collapse_repetition(
                segment
                    .to_str_lossy()
                    .map_err(|e| SttError::Decode(e.to_string()))?
                    .trim(),
            );
            if text.is_empty() {
                continue;
            }
            segments.push(TranscriptSegment {
                text,
                start_ms: segment.start_timestamp() * 10,
                end_ms: segment.end_timestamp() * 10,
                no_speech_probability: segment.no_speech_probability(),
            });
        }
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Transcript {
            text,
            segments,
            audio_ms,
            decode_ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

/// A word grammar in whisper.cpp's form: one rule per state (rule 0 is the start), the rules
/// for a word's ending, and one rule per branching point of each state's words spelled letter
/// by letter. Every word starts with the space Whisper's tokens carry; its first letter may be
/// a capital (sentence starts, "I"), the others are lowercase (a grammar open to any casing let
/// noisy decodes wander into tokens like "rOaSt"). A word may end in "s", "d" or "ed" (Whisper
/// writes what it hears, "light roasted drip coffee", and a grammar without the "ed" forced
/// that decode off its path onto "light roast americano"; the slot spotter maps the inflected
/// word back to the value). A comma may follow any word; a full stop, question or exclamation
/// mark only a word that can end the sentence: a full stop mid-sentence let a decode that lost
/// the speech start a new sentence inside the grammar.
pub fn grammar_rules(grammar: &WordGrammar) -> Vec<Vec<WhisperGrammarElement>> {
    use WhisperGrammarElementType as E;
    let states = grammar.states();
    let (suffix, comma, any_mark, mid_ending, final_ending) =
        (states, states + 1, states + 2, states + 3, states + 4);
    let mut rules: Vec<Vec<WhisperGrammarElement>> = vec![Vec::new(); states + 5];
    rules[suffix] = vec![
        element(E::Character, 's'),
        element(E::CharacterAlternate, 'd'),
        element(E::Alternate, '\0'),
        element(E::Character, 'e'),
        element(E::Character, 'd'),
        element(E::Alternate, '\0'),
    ];
    rules[comma] = vec![element(E::Character, ','), element(E::Alternate, '\0')];
    rules[any_mark] = {
        let mut rule = vec![element(E::Character, ',')];
        for c in ['.', '?', '!'] {
            rule.push(element(E::CharacterAlternate, c));
        }
        rule.push(element(E::Alternate, '\0'));
        rule
    };
    rules[mid_ending] = vec![rule_ref(suffix), rule_ref(comma)];
    rules[final_ending] = vec![rule_ref(suffix), rule_ref(any_mark)];
    // How a word that leads to each state may end.
    let endings: Vec<usize> = grammar
        .accepting
        .iter()
        .map(|&end| if end { final_ending } else { mid_ending })
        .collect();
    for state in 0..states {
        let words: Vec<(Vec<char>, usize)> = grammar.transitions[state]
            .iter()
            .map(|(w, &to)| (std::iter::once(' ').chain(w.chars()).collect(), to))
            .collect();
        let mut rule = trie_rule(&words, 0, &endings, &mut rules);
        if grammar.accepting[state] {
            rule.push(element(E::Alternate, '\0'));
        }
        rules[state] = rule;
    }
    rules
}

/// The alternatives for the words in `words` (all sharing their first `depth` letters) from
/// letter `depth` on; branching points become rules of their own.
fn trie_rule(
    words: &[(Vec<char>, usize)],
    depth: usize,
    endings: &[usize],
    rules: &mut Vec<Vec<WhisperGrammarElement>>,
) -> Vec<WhisperGrammarElement> {
    use WhisperGrammarElementType as E;
    let mut rule = Vec::new();
    let alternative = |rule: &mut Vec<WhisperGrammarElement>| {
        if !rule.is_empty() {
            rule.push(element(E::Alternate, '\0'));
        }
    };
    if let Some((_, to)) = words.iter().find(|(w, _)| w.len() == depth) {
        alternative(&mut rule);
        rule.push(rule_ref(endings[*to]));
        rule.push(rule_ref(*to));
    }
    let mut by_letter: BTreeMap<char, Vec<(Vec<char>, usize)>> = BTreeMap::new();
    for (word, to) in words.iter().filter(|(w, _)| w.len() > depth) {
        by_letter
            .entry(word[depth])
            .or_default()
            .push((word.clone(), *to));
    }
    for (letter, group) in by_letter {
        alternative(&mut rule);
        push_letter(&mut rule, letter, depth);
        // Letters every word of the group shares go inline, up to the next branching point.
        let mut at = depth + 1;
        while group
            .iter()
            .all(|(w, _)| w.len() > at && w[at] == group[0].0[at])
        {
            push_letter(&mut rule, group[0].0[at], at);
            at += 1;
        }
        if group.len() == 1 && group[0].0.len() == at {
            rule.push(rule_ref(endings[group[0].1]));
            rule.push(rule_ref(group[0].1));
        } else {
            let index = rules.len();
            rules.push(Vec::new());
            rules[index] = trie_rule(&group, at, endings, rules);
            rule.push(rule_ref(index));
        }
    }
    rule
}

/// Letter `at` of a word (0 is the space before it).
fn push_letter(rule: &mut Vec<WhisperGrammarElement>, letter: char, at: usize) {
    rule.push(element(WhisperGrammarElementType::Character, letter));
    let upper: Vec<char> = letter.to_uppercase().collect();
    if at == 1 && upper.len() == 1 && upper[0] != letter {
        rule.push(element(
            WhisperGrammarElementType::CharacterAlternate,
            upper[0],
        ));
    }
    if letter == '\'' {
        rule.push(element(WhisperGrammarElementType::CharacterAlternate, '’'));
    }
}

fn element(kind: WhisperGrammarElementType, c: char) -> WhisperGrammarElement {
    WhisperGrammarElement::new(kind, c as u32)
}

fn rule_ref(index: usize) -> WhisperGrammarElement {
    WhisperGrammarElement::new(WhisperGrammarElementType::RuleReference, index as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stt::grammar::words_of;

    /// Whether `rules` (whisper.cpp's form) match all of `text` from `rule`, followed by
    /// `rest` (the rules still to match): a backtracking reading of the same elements
    /// whisper.cpp's pushdown matcher reads.
    fn matches<'a>(
        rules: &'a [Vec<WhisperGrammarElement>],
        text: &[char],
        stack: Vec<&'a [WhisperGrammarElement]>,
    ) -> bool {
        let Some((&top, below)) = stack.split_last() else {
            return text.is_empty();
        };
        let Some((first, after)) = top.split_first() else {
            return matches(rules, text, below.to_vec());
        };
        match first.element_type {
            WhisperGrammarElementType::Alternate => matches(rules, text, below.to_vec()),
            WhisperGrammarElementType::RuleReference => alternatives(&rules[first.value as usize])
                .into_iter()
                .any(|alt| {
                    let mut next = below.to_vec();
                    next.push(after);
                    next.push(alt);
                    matches(rules, text, next)
                }),
            WhisperGrammarElementType::Character => {
                let mut accepted = vec![first.value];
                let mut rest = after;
                while let Some((e, tail)) = rest.split_first() {
                    if e.element_type != WhisperGrammarElementType::CharacterAlternate {
                        break;
                    }
                    accepted.push(e.value);
                    rest = tail;
                }
                let mut next = below.to_vec();
                next.push(rest);
                matches!(text.first(), Some(&c) if accepted.contains(&(c as u32)))
                    && matches(rules, &text[1..], next)
            }
            other => panic!("hark emits no {other:?}"),
        }
    }

    fn alternatives(rule: &[WhisperGrammarElement]) -> Vec<&[WhisperGrammarElement]> {
        rule.split(|e| e.element_type == WhisperGrammarElementType::Alternate)
            .collect()
    }

    fn accepts(rules: &[Vec<WhisperGrammarElement>], text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        alternatives(&rules[0])
            .into_iter()
            .any(|alt| matches(rules, &chars, vec![alt]))
    }

    #[test]
    fn whisper_rules_spell_the_grammar_as_whisper_writes_it() {
        let group = |phrases: &[&str]| phrases.iter().map(|p| words_of(p)).collect::<Vec<_>>();
        let grammar = WordGrammar::from_patterns(&[
            vec![
                group(&["can I get", "I'd like"]),
                group(&["a"]),
                group(&["large", "latte"]),
                group(&["latte", "large", ""]),
                group(&["with milk", ""]),
            ],
            vec![group(&["cancel"])],
        ])
        .unwrap();
        let rules = grammar_rules(&grammar);
        for good in [
            " Can I get a large latte",
            " I'd like a latte, with milk.",
            " can I get a large latte with milk?",
            " I’d like a latte",
            " can I get a large lattes", // Whisper writes inflections it hears
            " Cancel.",
        ] {
            assert!(accepts(&rules, good), "{good:?} should match");
        }
        for bad in [
            "Can I get a large latte", // no leading space: Whisper's words carry one
            " can I get a",            // incomplete
            " can I get a LATTE",      // shouting casing is not Whisper's
            " can I get a large latte please",
            " can I get. A large latte", // a full stop only where the sentence may end
            " cancel cancel",
        ] {
            assert!(!accepts(&rules, bad), "{bad:?} should not match");
        }
        // Every reference points at a rule.
        for rule in &rules {
            for e in rule {
                if e.element_type == WhisperGrammarElementType::RuleReference {
                    assert!((e.value as usize) < rules.len());
                }
            }
        }
    }
}
