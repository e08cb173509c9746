//! Local Whisper through whisper-rs: one context per process, one state per session; the
//! streaming recognizer (`streaming`) decodes on one shared queue (`queue`).

pub mod queue;
pub mod streaming;
pub mod threads;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperGrammarElement,
    WhisperGrammarElementType, WhisperState,
};

use super::grammar::WordGrammar;
use super::repetition::{collapse_repetition, token_budget};
use super::rescore::{self, Alternative, PhraseClasses, Swap};
use super::{
    DecodeWindow, SttError, TranscribeOptions, Transcriber, Transcript, TranscriptSegment,
};

const SAMPLE_RATE: usize = 16_000;
/// Whisper's encoder sees 30 s as 1500 frames of 20 ms (320 samples).
const SAMPLES_PER_FRAME: usize = 320;
const MAX_AUDIO_CTX: usize = 1500;
/// Extra encoder frames beyond the audio; fewer made tiny.en cut off final words here.
const AUDIO_CTX_MARGIN: usize = 64;
/// The same under a grammar, which cannot end before its sentence is complete: a quarter of
/// the margin kept barista acceptance (96.8 → 96.9 % noisy on dev) and cut ~15 ms per command.
const GRAMMAR_AUDIO_CTX_MARGIN: usize = 16;
/// whisper.cpp skips input shorter than one second, so short clips are padded with silence.
const MIN_SAMPLES: usize = SAMPLE_RATE + SAMPLE_RATE / 20;
/// Tokens one word of a grammar sentence may take: the word's own (up to two for most
/// words) and a comma.
const TOKENS_PER_GRAMMAR_WORD: usize = 3;
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
        // whisper.cpp aborts the process on a damaged file: check it first.
        crate::models::convert::ggml::check_ggml_file(path).map_err(|e| SttError::ModelLoad {
            path: path.to_path_buf(),
            reason: format!("{e}; fetch it again (`hark models fetch`, or scripts/setup.sh)"),
        })?;
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
            word_tokens: HashMap::new(),
            prior: None,
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
    grammar: Option<CompiledGrammar>,
    /// Tokens of each word (with the space before it and any punctuation after) met while
    /// rescoring: whisper.cpp's tokenizer compiles a regex per call, and a sentence's tokens
    /// are its words' tokens.
    word_tokens: HashMap<String, Vec<i32>>,
    /// The decoder with the last prompt and nothing heard (see `PRIOR_WEIGHT`).
    prior: Option<PriorDecoder>,
}

/// A second decoder state that has read a prompt against a second of silence: what it
/// expects is what the decoder would write with that prompt and no speech.
struct PriorDecoder {
    /// None where it could not be made to hold the prompt (not tried again for it).
    state: Option<WhisperState>,
    /// The prompt it read (as `WhisperState::last_prompt` gives it).
    prompt: Vec<i32>,
}

/// A word grammar made ready for whisper.cpp.
struct CompiledGrammar {
    source: Arc<WordGrammar>,
    rules: Vec<Vec<WhisperGrammarElement>>,
    /// The tokens a decode under the grammar may produce: the only ones whose logits are
    /// worth computing (see `grammar_tokens`).
    logit_tokens: Vec<i32>,
    /// The most tokens its longest sentence can take (None if sentences could be endless).
    token_bound: Option<usize>,
}

/// The encoder window for `samples` of audio: trimmed to the audio plus `margin` frames.
pub fn trimmed_audio_ctx(samples: usize, margin: usize) -> usize {
    (samples.div_ceil(SAMPLES_PER_FRAME) + margin).min(MAX_AUDIO_CTX)
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

        let prompt_tokens = self.prompt_tokens(options.prompt.as_deref())?;

        let mut params = self.decode_params();
        params.set_suppress_blank(true);
        if !prompt_tokens.is_empty() {
            params.set_tokens(&prompt_tokens);
        }
        self.use_grammar(&mut params, options.grammar.as_ref())?;
        self.trim_window(&mut params, options, audio.len());

        let rescored = self.decode_audio(params, audio, options)?;
        let segments = self.decoded_segments(rescored)?;
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

    fn warm_up(&mut self, options: &TranscribeOptions) -> Result<(), SttError> {
        // A second of silence decoded with the options compiles the grammar and leaves the
        // prompt in the cache; the prior decoder is then built for that prompt.
        self.transcribe(&[0.0; MIN_SAMPLES], options)?;
        if options.grammar.is_some() && options.alternatives.is_some() {
            let decode_lock = self.decode_lock.clone();
            let _turn = decode_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.prior_decoder()?;
        }
        Ok(())
    }
}

impl WhisperSession {
    /// The tokens of the prompt (trimmed), at most `MAX_PROMPT_TOKENS`; none without one.
    fn prompt_tokens(&self, prompt: Option<&str>) -> Result<Vec<i32>, SttError> {
        match prompt.map(str::trim) {
            Some(p) if !p.is_empty() => {
                let mut tokens = self
                    .context
                    .tokenize(&p.replace('\0', " "), 4 * MAX_PROMPT_TOKENS)
                    .map_err(|e| SttError::Decode(format!("could not tokenize the prompt: {e}")))?;
                // Keep the end of a long prompt: the most recent words matter most.
                if tokens.len() > MAX_PROMPT_TOKENS {
                    tokens.drain(..tokens.len() - MAX_PROMPT_TOKENS);
                }
                Ok(tokens)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Sets the decode to follow `grammar` (compiled unless it is the one compiled last), and
    /// the logit tokens to the grammar's (all tokens without one).
    fn use_grammar(
        &mut self,
        params: &mut FullParams<'_, '_>,
        grammar: Option<&Arc<WordGrammar>>,
    ) -> Result<(), SttError> {
        match grammar {
            Some(grammar) => {
                let compiled = match self.grammar.take() {
                    Some(c) if Arc::ptr_eq(&c.source, grammar) => c,
                    _ => self.compile_grammar(grammar)?,
                };
                params.set_grammar(Some(&compiled.rules));
                self.state.set_logit_tokens(&compiled.logit_tokens);
                self.grammar = Some(compiled);
            }
            None => self.state.set_logit_tokens(&[]),
        }
        Ok(())
    }

    /// `grammar` in whisper.cpp's form, with the inflections this model's vocabulary has.
    fn compile_grammar(&self, grammar: &Arc<WordGrammar>) -> Result<CompiledGrammar, SttError> {
        let is_word = |w: &str| {
            let tokens = self.context.tokenize(&format!(" {w}"), 8);
            tokens.is_ok_and(|t| t.len() == 1)
        };
        let inflections = inflections(grammar, is_word);
        Ok(CompiledGrammar {
            source: grammar.clone(),
            rules: grammar_rules(grammar, &inflections),
            logit_tokens: grammar_tokens(grammar, &inflections, &self.context)?,
            token_bound: grammar
                .longest_sentence()
                .map(|words| TOKENS_PER_GRAMMAR_WORD * words + 4),
        })
    }

    /// Trims the encoder's window to `samples` of audio where the options ask for it, with a
    /// token budget that bounds what a loop costs.
    fn trim_window(
        &self,
        params: &mut FullParams<'_, '_>,
        options: &TranscribeOptions,
        samples: usize,
    ) {
        let trimmed =
            options.window == DecodeWindow::Trimmed && samples <= MAX_AUDIO_CTX * SAMPLES_PER_FRAME;
        if trimmed {
            // Timestamps stay on: without them a short window made tiny.en repeat itself.
            params.set_single_segment(true);
            let margin = if options.grammar.is_some() {
                GRAMMAR_AUDIO_CTX_MARGIN
            } else {
                AUDIO_CTX_MARGIN
            };
            params.set_audio_ctx(trimmed_audio_ctx(samples, margin) as i32);
            // A trimmed window can still loop; the budget bounds what a loop costs. A
            // grammar's sentences cannot loop, and a budget cut in noise (where every word
            // may carry a comma) would end the text mid-word: its longest sentence bounds it.
            let mut budget = token_budget(samples as f64 / SAMPLE_RATE as f64);
            if let Some(cap) = options.max_tokens {
                budget = budget.min(cap);
            }
            let grammar_bound = options.grammar.as_ref().and(self.grammar.as_ref());
            if let Some(bound) = grammar_bound.and_then(|g| g.token_bound) {
                budget = budget.max(bound);
            }
            params.set_max_tokens(budget as i32);
        }
    }

    /// Decodes `audio` on this model's turn; then, where the options ask for it, the
    /// likeliest alternative to the sentence decoded.
    fn decode_audio(
        &mut self,
        params: FullParams<'_, '_>,
        audio: &[f32],
        options: &TranscribeOptions,
    ) -> Result<Option<String>, SttError> {
        let mut rescored = None;
        // A poisoned lock only means another decode panicked; the state here is ours.
        let decode_lock = self.decode_lock.clone();
        let _turn = decode_lock.lock().unwrap_or_else(|p| p.into_inner());
        let _cores = crate::models::inference_turn();
        self.state
            .full(params, audio)
            .map_err(|e| SttError::Decode(e.to_string()))?;
        if let (Some(classes), Some(_)) = (&options.alternatives, &options.grammar) {
            rescored = self.likeliest_alternative(classes)?;
        }
        Ok(rescored)
    }

    /// The segments decoded that have text (repetitions collapsed); a single one takes the
    /// `rescored` text where there is one.
    fn decoded_segments(
        &self,
        rescored: Option<String>,
    ) -> Result<Vec<TranscriptSegment>, SttError> {
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
        if let (Some(text), [segment]) = (rescored, segments.as_mut_slice()) {
            segment.text = text;
        }
        Ok(segments)
    }
}

/// An alternative sentence whose first differing token the decoder found this much less
/// likely (in nats) than the token it chose is not scored. On barista dev (all conditions),
/// alternatives that won had their first token within 1.5 nats; 2 leaves room and scores a
/// third of the alternatives 4 did, with the same results.
const ALTERNATIVE_PRUNE_NATS: f32 = 2.0;
/// At most this many alternatives are scored per decode, those closest at their first own
/// token: it bounds a decode's extra work (~4 ms each) where noise makes every word uncertain
/// (a P99 of 170 ms before).
const MAX_ALTERNATIVES_SCORED: usize = 8;
/// A token the decoder chose with at least this probability leaves every other token at
/// least ln(p / (1 - p)) nats behind it: 2.2 nats, past `ALTERNATIVE_PRUNE_NATS`.
const SURE_TOKEN_PROBABILITY: f32 = 0.9;

/// At most this many alternatives departing at one token are scored (the closest): each
/// place in the sentence gets its chance before the cap.
const ALTERNATIVES_PER_PLACE: usize = 2;
/// How much of the decoder's own expectation is taken out of a sentence's score. The
/// decoder's probability of a sentence mixes what the audio says with how likely the words
/// are anyway: in noise the second wins, and "coffee" beat "latte" or "mocha" that the audio
/// supported. Its expectation without audio (the sentence's log-probability given the prompt
/// and a second of silence) is subtracted at this weight, as in internal language model
/// estimation. Barista dev (868 noisy decodes): 0 → 847 accepted, 0.3 → 848, 0.6 → 846
/// (rarer words then win where "coffee" was said); the weights used in the literature are
/// 0.1 to 0.4.
const PRIOR_WEIGHT: f32 = 0.3;

/// The sentence decoded, as rescoring sees it.
struct Heard {
    text: String,
    /// Its tokens, start-of-transcript and the decoded timestamps around the text included.
    tokens: Vec<i32>,
    /// `tokens[..=cached]` are in the decoder's cache (after the prompt).
    cached: usize,
    /// How sure the greedy decoder was of `tokens[i]`: `certainty[i - 1]`.
    certainty: Vec<f32>,
}

impl WhisperSession {
    /// After a constrained decode of one segment: the alternative sentence (see
    /// `PhraseClasses::swaps`) the decoder finds likelier than the one decoded, as a whole
    /// sentence given the audio and the prompt, if there is one. Scoring reuses the
    /// decoder's cache of the prompt, and of the decoded sentence up to where each
    /// alternative departs from it.
    fn likeliest_alternative(
        &mut self,
        classes: &PhraseClasses,
    ) -> Result<Option<String>, SttError> {
        let decode = |e: whisper_rs::WhisperError| SttError::Decode(e.to_string());
        if self.state.full_n_segments() != 1 {
            return Ok(None);
        }
        let Some(segment) = self.state.get_segment(0) else {
            return Ok(None);
        };
        let end_of_text = self.context.token_eot();
        let text = segment.to_str_lossy().map_err(decode)?.into_owned();
        // The tokens decoded, and how sure the decoder was of each.
        let (decoded, certainty): (Vec<i32>, Vec<f32>) = (0..segment.n_tokens())
            .filter_map(|i| segment.get_token(i))
            .map(|t| (t.token_id(), t.token_probability()))
            .unzip();
        // The timestamps around the text stay as decoded; the text is tokenized afresh, so
        // that the decoded sentence and its alternatives are spelled alike.
        let Some(first_text) = decoded.iter().position(|&t| t < end_of_text) else {
            return Ok(None);
        };
        let last_text = decoded
            .iter()
            .rposition(|&t| t < end_of_text)
            .unwrap_or(first_text);
        let prompt = self.state.last_prompt();
        let Some(&start) = prompt.last() else {
            return Ok(None);
        };
        let frame = SentenceFrame {
            start,
            before: decoded[..first_text].to_vec(),
            after: decoded[last_text + 1..].to_vec(),
            end_of_text,
            // The cache holds the prompt, its last token at `base`, then the decoded tokens.
            base: prompt.len() - 1,
        };
        let tokens = self.sentence_tokens(&frame, &text)?;
        // heard[i] is decoded[i - 1] as far as the text spelled afresh matches the decode.
        let cached = tokens[1..]
            .iter()
            .zip(&decoded)
            .take_while(|(a, b)| a == b)
            .count();
        let heard = Heard {
            text,
            tokens,
            cached,
            certainty,
        };
        let likeliest = self.likeliest_swaps(classes, &frame, &heard)?;
        Ok(likeliest.map(|text| text.trim().to_string()))
    }

    /// The swaps of `heard` worth scoring are scored; the likeliest sentence, with every
    /// swap at another place that makes it likelier still, if it beats `heard`.
    fn likeliest_swaps(
        &mut self,
        classes: &PhraseClasses,
        frame: &SentenceFrame,
        heard: &Heard,
    ) -> Result<Option<String>, SttError> {
        let decode = |e: whisper_rs::WhisperError| SttError::Decode(e.to_string());
        let grammar = self.grammar.as_ref().map(|g| g.source.clone());
        let fits = |sentence: &str| grammar.as_ref().is_some_and(|g| g.accepts(sentence));
        let candidates = self.swap_candidates(classes, frame, heard, &fits)?;
        let Some(earliest) = candidates.iter().map(|c| c.0).min() else {
            return Ok(None);
        };
        // The sentences are scored from just before the earliest departure, or where the
        // cache stops matching. What comes before is common to all and left out of every score.
        let from = (earliest - 1).min(heard.cached);
        // heard_logprobs[i - 1 - from] is the log-probability of heard[i], from logits row
        // i - 1 - from.
        let heard_logprobs = self
            .state
            .token_logprobs(&heard.tokens[from..], frame.base + from, self.threads)
            .map_err(decode)?;
        let candidates = self.closest_candidates(candidates, from, &heard_logprobs);
        if candidates.is_empty() {
            return Ok(None); // nothing close enough: no pass of the prior decoder either
        }
        let mut scorer = self.sentence_scorer(frame, heard, from, heard_logprobs)?;
        let heard_score = scorer.heard_score();
        let mut likelier = Vec::new();
        for (_, (departs, tokens, alternative)) in candidates {
            let alternative_score = scorer.score(self, &tokens, departs)?;
            if alternative_score > heard_score {
                likelier.push((alternative_score, alternative));
            }
        }
        likelier.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.join_swaps(&mut scorer, frame, heard, &fits, likelier)
    }

    /// The swaps of `heard` that fit the grammar, as candidates for scoring: those departing
    /// where the decoder was sure of its token are left out.
    fn swap_candidates(
        &mut self,
        classes: &PhraseClasses,
        frame: &SentenceFrame,
        heard: &Heard,
        fits: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Candidate>, SttError> {
        let mut candidates = Vec::new();
        for alternative in classes.swaps(&heard.text, fits) {
            let tokens = self.sentence_tokens(frame, &alternative.text)?;
            // Where it departs from the sentence heard (never at the first token, shared).
            if let Some(departs) = departure(&tokens, &heard.tokens) {
                candidates.push((departs, tokens, alternative));
            }
        }
        // Where the decoder chose a token with probability p, any other token was at most
        // 1 - p as likely: an alternative departing where it was sure cannot come within the
        // pruning margin, and needs no scoring.
        candidates.retain(|(departs, _, _)| {
            *departs > heard.cached || heard.certainty[departs - 1] < SURE_TOKEN_PROBABILITY
        });
        Ok(candidates)
    }

    /// The candidates worth scoring, each with how far its first own token is behind the one
    /// heard there (in nats): those within the pruning margin, the closest few, a few at each
    /// place; latest departure first.
    fn closest_candidates(
        &self,
        candidates: Vec<Candidate>,
        from: usize,
        heard_logprobs: &[f32],
    ) -> Vec<(f32, Candidate)> {
        // How far each alternative's first own token is behind the one heard there (in nats);
        // those within the pruning margin are scored.
        let mut normalisers: HashMap<usize, f32> = HashMap::new();
        let mut gaps = Vec::with_capacity(candidates.len());
        for (departs, tokens, _) in &candidates {
            let row_index = departs - 1 - from;
            let Some(row) = self.state.logits_row(row_index) else {
                gaps.push(f32::INFINITY);
                continue;
            };
            let log_sum = *normalisers
                .entry(row_index)
                .or_insert_with(|| log_sum_exp(row));
            let logit = row.get(tokens[*departs] as usize).copied();
            let first = logit.unwrap_or(f32::NEG_INFINITY) - log_sum;
            gaps.push(heard_logprobs[row_index] - first);
        }
        let mut candidates: Vec<_> = gaps
            .into_iter()
            .zip(candidates)
            .filter(|(gap, _)| *gap <= ALTERNATIVE_PRUNE_NATS)
            .collect();
        // The closest few, a few at each place: a noisy sentence of uncertain words can pass
        // dozens, and the uncertain words of one place could fill the cap alone.
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut per_place: HashMap<usize, usize> = HashMap::new();
        candidates.retain(|(_, (departs, _, _))| {
            let taken = per_place.entry(*departs).or_default();
            *taken += 1;
            *taken <= ALTERNATIVES_PER_PLACE
        });
        candidates.truncate(MAX_ALTERNATIVES_SCORED);
        // Latest departure first: scoring one rewrites the cache from its departure on, and
        // each later one needs the sentence heard before its own.
        candidates.sort_by_key(|(_, (departs, _, _))| std::cmp::Reverse(*departs));
        candidates
    }

    /// The scoring of sentences from token `from` on, against `heard` (whose log-probabilities
    /// from there are `heard_logprobs`): in this decoder, and in the prior decoder where there
    /// is one.
    fn sentence_scorer(
        &mut self,
        frame: &SentenceFrame,
        heard: &Heard,
        from: usize,
        heard_logprobs: Vec<f32>,
    ) -> Result<SentenceScorer, SttError> {
        let decode = |e: whisper_rs::WhisperError| SttError::Decode(e.to_string());
        // Each sentence's score: its log-probability given the audio, less `PRIOR_WEIGHT` of
        // its log-probability given no audio; both from the same point on.
        let threads = self.threads;
        let audio = CachedScoring {
            base: frame.base,
            from,
            heard_logprobs,
            clean_until: heard.tokens.len(),
        };
        let prior = match self.prior_decoder()? {
            Some(prior) => {
                // The prior decoder's cache holds the prompt only: the sentence heard is
                // read whole, and scored from `from` like the others.
                let logprobs = prior
                    .token_logprobs(&heard.tokens, frame.base, threads)
                    .map_err(decode)?;
                Some(CachedScoring {
                    base: frame.base,
                    from,
                    heard_logprobs: logprobs[from..].to_vec(),
                    clean_until: heard.tokens.len(),
                })
            }
            None => None,
        };
        Ok(SentenceScorer {
            audio,
            prior,
            threads,
        })
    }

    /// The likeliest of the alternatives found likelier than the sentence heard (`likelier`,
    /// likeliest first), with each other one's swap joined to it where that makes it likelier.
    fn join_swaps(
        &mut self,
        scorer: &mut SentenceScorer,
        frame: &SentenceFrame,
        heard: &Heard,
        fits: &dyn Fn(&str) -> bool,
        likelier: Vec<(f32, Alternative)>,
    ) -> Result<Option<String>, SttError> {
        let mut likelier = likelier.into_iter();
        let Some((mut best_score, best)) = likelier.next() else {
            return Ok(None);
        };
        // Swaps at different places that each made the sentence likelier may both be right
        // ("large" for "light roast" and "americano" for "mocha"): the likeliest is kept, and
        // each other one joins it where the sentence with both is likelier still.
        let mut swaps = vec![best.swap];
        let mut best_text = best.text;
        for (_, other) in likelier {
            let mut together: Vec<&Swap> = swaps.iter().collect();
            together.push(&other.swap);
            let Some(both) = rescore::apply(&heard.text, &together).filter(|t| fits(t)) else {
                continue;
            };
            let tokens = self.sentence_tokens(frame, &both)?;
            let Some(departs) = departure(&tokens, &heard.tokens) else {
                continue;
            };
            let both_score = scorer.score(self, &tokens, departs)?;
            if both_score > best_score {
                best_score = both_score;
                swaps.push(other.swap);
                best_text = both;
            }
        }
        Ok(Some(best_text))
    }

    /// Greedy decoding at temperature 0, printing nothing, without the previous text, in
    /// English for English-only models. No temperature fallback: it re-decodes at random
    /// temperatures, which costs latency spikes and makes results differ run to run.
    /// Threads for the decodes from now on.
    pub fn set_threads(&mut self, threads: usize) {
        self.threads = threads.max(1);
    }

    fn decode_params(&self) -> FullParams<'static, 'static> {
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_no_context(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.0);
        if !self.context.is_multilingual() {
            params.set_language(Some("en"));
        }
        params
    }

    /// The prior decoder for the last decode's prompt, with the same logit tokens: built
    /// (one second of silence read with the prompt) when the prompt changed. None where it
    /// could not be made to hold the same prompt, and the sentences are then scored
    /// without it.
    fn prior_decoder(&mut self) -> Result<Option<&mut WhisperState>, SttError> {
        let decode = |e: whisper_rs::WhisperError| SttError::Decode(e.to_string());
        let prompt = self.state.last_prompt();
        if self.prior.as_ref().is_none_or(|p| p.prompt != prompt) {
            self.prior = None;
            // whisper.cpp starts from the previous-text marker and the initial prompt (if
            // there is one), then start-of-transcript.
            let initial = match prompt.split_last() {
                Some((_, [marker, initial @ ..])) if *marker == self.context.token_prev() => {
                    initial.to_vec()
                }
                _ => Vec::new(),
            };
            let mut state = self.context.create_state().map_err(decode)?;
            let mut params = self.decode_params();
            params.set_single_segment(true);
            params.set_audio_ctx(trimmed_audio_ctx(MIN_SAMPLES, GRAMMAR_AUDIO_CTX_MARGIN) as i32);
            if !initial.is_empty() {
                params.set_tokens(&initial);
            }
            state.full(params, &[0.0; MIN_SAMPLES]).map_err(decode)?;
            let state = (state.last_prompt() == prompt).then_some(state);
            self.prior = Some(PriorDecoder { state, prompt });
        }
        let Some(state) = self.prior.as_mut().and_then(|p| p.state.as_mut()) else {
            return Ok(None);
        };
        let logit_tokens = self.grammar.as_ref().map_or(&[][..], |g| &g.logit_tokens);
        state.set_logit_tokens(logit_tokens);
        Ok(Some(state))
    }

    /// The tokens of `text` as the sentence of `frame`; each word's tokens are cached.
    fn sentence_tokens(&mut self, frame: &SentenceFrame, text: &str) -> Result<Vec<i32>, SttError> {
        let mut tokens = vec![frame.start];
        tokens.extend_from_slice(&frame.before);
        for word in spaced_words(text) {
            if !self.word_tokens.contains_key(word) {
                let word_tokens = self
                    .context
                    .tokenize(word, 64)
                    .map_err(|e| SttError::Decode(format!("could not tokenize {word:?}: {e}")))?;
                self.word_tokens.insert(word.to_string(), word_tokens);
            }
            tokens.extend_from_slice(&self.word_tokens[word]);
        }
        tokens.extend_from_slice(&frame.after);
        tokens.push(frame.end_of_text);
        Ok(tokens)
    }
}

/// Scores sentences against the sentence heard in one decoder state, reusing its cache.
struct CachedScoring {
    /// Where the sentence starts in the cache (after the prompt).
    base: usize,
    /// Scores count from this token of the sentence on; what comes before is shared.
    from: usize,
    /// `heard_logprobs[i - 1 - from]` is the log-probability of the heard sentence's token i.
    heard_logprobs: Vec<f32>,
    /// The cache holds the sentence heard up to this token. Scoring a sentence rewrites the
    /// cache from where it starts, with the tokens it shares with the sentence heard up to
    /// its departure.
    clean_until: usize,
}

impl CachedScoring {
    fn heard_score(&self) -> f32 {
        self.heard_logprobs.iter().sum()
    }

    /// The score of `tokens`, which depart from the sentence heard at `departs`.
    fn score(
        &mut self,
        state: &mut WhisperState,
        tokens: &[i32],
        departs: usize,
        threads: usize,
    ) -> Result<f32, SttError> {
        let start = (departs - 1).min(self.clean_until);
        let rest = state
            .token_logprobs(&tokens[start..], self.base + start, threads)
            .map_err(|e| SttError::Decode(e.to_string()))?;
        self.clean_until = departs;
        let shared: f32 = self.heard_logprobs[..start - self.from].iter().sum();
        Ok(shared + rest.iter().sum::<f32>())
    }
}

/// An alternative sentence to score: where it departs from the sentence heard, its tokens,
/// and the alternative itself.
type Candidate = (usize, Vec<i32>, Alternative);

/// Scores sentences given the audio, less `PRIOR_WEIGHT` of their score given no audio where
/// there is a prior decoder.
struct SentenceScorer {
    /// In the session's decoder state.
    audio: CachedScoring,
    /// In the prior decoder's state.
    prior: Option<CachedScoring>,
    threads: usize,
}

impl SentenceScorer {
    /// The score of the sentence heard.
    fn heard_score(&self) -> f32 {
        self.audio.heard_score()
            - self
                .prior
                .as_ref()
                .map_or(0.0, |p| PRIOR_WEIGHT * p.heard_score())
    }

    /// The score of `tokens`, which depart from the sentence heard at `departs`.
    fn score(
        &mut self,
        session: &mut WhisperSession,
        tokens: &[i32],
        departs: usize,
    ) -> Result<f32, SttError> {
        let threads = self.threads;
        let mut score = self
            .audio
            .score(&mut session.state, tokens, departs, threads)?;
        let prior = session.prior.as_mut().and_then(|p| p.state.as_mut());
        if let (Some(prior), Some(scoring)) = (prior, self.prior.as_mut()) {
            score -= PRIOR_WEIGHT * scoring.score(prior, tokens, departs, threads)?;
        }
        Ok(score)
    }
}

/// What surrounds the text of a rescored sentence: the prompt's last token, the timestamps
/// decoded before and after the text, end-of-text, and where the sentence starts in the cache.
struct SentenceFrame {
    start: i32,
    before: Vec<i32>,
    after: Vec<i32>,
    end_of_text: i32,
    base: usize,
}

/// Where `tokens` first differs from `heard` (never at the first token, which both share).
fn departure(tokens: &[i32], heard: &[i32]) -> Option<usize> {
    (1..tokens.len().min(heard.len())).find(|&i| tokens[i] != heard[i])
}

/// The words of `text`, each with the whitespace before it and the punctuation after it:
/// whisper.cpp's tokenizer never puts two of them in one token.
fn spaced_words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let letters = rest.len() - rest.trim_start().len();
        let end = rest[letters..]
            .find(char::is_whitespace)
            .map_or(rest.len(), |i| letters + i);
        let (word, tail) = rest.split_at(end);
        rest = tail;
        Some(word)
    })
}

/// The log of the sum of the exponentials of a row of logits (tokens that cannot be chosen
/// read as -infinity): a token's log-probability is its logit less this.
fn log_sum_exp(row: &[f32]) -> f32 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = row
        .iter()
        .filter(|l| l.is_finite())
        .map(|&l| ((l - max) as f64).exp())
        .sum();
    max + sum.ln() as f32
}

/// How Whisper may write a grammar word besides its own spelling: each word's inflections
/// ("roasted" for "roast"), word by word.
pub type Inflections = BTreeMap<String, Vec<String>>;

/// The inflections Whisper may write for the grammar's inflectable words (see
/// `WordGrammar::inflectable`): "s", and "d" after a final "e" or else "ed", on words of three
/// letters or more, where `is_word` says the form is a word (the engine's vocabulary is the
/// judge: "roasted" and "shots" are single tokens, an invention like "mochad" is not).
/// Allowing every ending on every word let noise turn "mocha" into "mochad" and "a" into "ad".
pub fn inflections(grammar: &WordGrammar, is_word: impl Fn(&str) -> bool) -> Inflections {
    let words = grammar.vocabulary();
    let mut found = Inflections::new();
    for word in grammar
        .inflectable
        .iter()
        .filter(|w| w.chars().count() >= 3)
    {
        let past = if word.ends_with('e') { "d" } else { "ed" };
        let forms: Vec<String> = ["s", past]
            .iter()
            .map(|ending| format!("{word}{ending}"))
            .filter(|form| !words.contains(form.as_str()) && is_word(form))
            .collect();
        if !forms.is_empty() {
            found.insert(word.clone(), forms);
        }
    }
    found
}

/// A word grammar in whisper.cpp's form: one rule per state (rule 0 is the start), the rules
/// for a word's ending, and one rule per branching point of each state's words spelled letter
/// by letter. Every word starts with the space Whisper's tokens carry; its first letter may be
/// a capital (sentence starts, "I"), the others are lowercase (a grammar open to any casing let
/// noisy decodes wander into tokens like "rOaSt"). A word may be written as one of its
/// `inflections`, leading where the word leads. A comma may follow any word but not end the
/// sentence; a full stop, question or exclamation mark only a word that can end the sentence:
/// a full stop mid-sentence let a decode that lost the speech start a new sentence inside the
/// grammar.
pub fn grammar_rules(
    grammar: &WordGrammar,
    inflections: &Inflections,
) -> Vec<Vec<WhisperGrammarElement>> {
    use WhisperGrammarElementType as E;
    let states = grammar.states();
    // Rules: one per state, then an optional comma, an optional closing mark, and per state
    // what may follow a word that leads there; rules for the tries' branching points follow.
    let (comma, closing_mark) = (states, states + 1);
    let after = |state: usize| states + 2 + state;
    let mut rules: Vec<Vec<WhisperGrammarElement>> = vec![Vec::new(); 2 * states + 2];
    rules[comma] = vec![element(E::Character, ','), element(E::Alternate, '\0')];
    rules[closing_mark] = vec![
        element(E::Character, '.'),
        element(E::CharacterAlternate, '?'),
        element(E::CharacterAlternate, '!'),
        element(E::Alternate, '\0'),
    ];
    let after_word: Vec<usize> = (0..states).map(after).collect();
    for state in 0..states {
        let words: Vec<(Vec<char>, usize)> = grammar.transitions[state]
            .iter()
            .flat_map(|(w, &to)| {
                let forms = inflections.get(w).into_iter().flatten();
                std::iter::once(w).chain(forms).map(move |form| (form, to))
            })
            .map(|(form, to)| (std::iter::once(' ').chain(form.chars()).collect(), to))
            .collect();
        let words_rule = trie_rule(&words, 0, &after_word, &mut rules);
        rules[after(state)] = if !grammar.accepting[state] {
            vec![rule_ref(comma), rule_ref(state)]
        } else if words_rule.is_empty() {
            vec![rule_ref(closing_mark), rule_ref(state)]
        } else {
            // Where the sentence may end, a comma still promises more words: a transcript
            // ending in a comma is a decode that stopped before the speech did.
            let more_words = rules.len();
            rules.push(words_rule.clone());
            vec![
                element(E::Character, ','),
                rule_ref(more_words),
                element(E::Alternate, '\0'),
                rule_ref(closing_mark),
                rule_ref(state),
            ]
        };
        let mut rule = words_rule;
        if grammar.accepting[state] {
            rule.push(element(E::Alternate, '\0'));
        }
        rules[state] = rule;
    }
    rules
}

/// The tokens a decode held to `grammar_rules(grammar)` can produce: the text tokens that fit
/// in a sentence of the grammar's words (spelled as the rules spell them: a space before,
/// first letter either case, ' or ’, inflected, a punctuation mark after),
/// ignoring which word may follow which, plus every special and timestamp token. A decoding
/// step computes logits only for these (barista: 2,680 of 51,864, 1,072 of them text), where
/// projecting onto the whole vocabulary was most of a step's work.
fn grammar_tokens(
    grammar: &WordGrammar,
    inflections: &Inflections,
    context: &WhisperContext,
) -> Result<Vec<i32>, SttError> {
    let end_of_text = context.token_eot();
    let mut vocabulary = Vec::with_capacity(end_of_text as usize);
    for id in 0..end_of_text {
        let bytes = context
            .token_to_bytes(id)
            .map_err(|e| SttError::Decode(format!("could not read token {id}: {e}")))?;
        vocabulary.push((id, bytes.to_vec()));
    }
    let words = grammar
        .vocabulary()
        .into_iter()
        .chain(inflections.values().flatten().map(String::as_str));
    let mut tokens = tokens_fitting(words, &vocabulary);
    tokens.extend(end_of_text..context.n_vocab());
    Ok(tokens)
}

/// Of `vocabulary` (id, text), the tokens that fit in a sentence of `words` (see
/// `grammar_tokens`).
fn tokens_fitting<'a>(
    words: impl IntoIterator<Item = &'a str>,
    vocabulary: &[(i32, Vec<u8>)],
) -> Vec<i32> {
    use std::collections::HashSet;
    // Every way a word can be written between two spaces.
    let mut written: HashSet<Vec<u8>> = HashSet::new();
    for word in words {
        let mut spellings = vec![String::new()];
        for (at, c) in word.chars().enumerate() {
            // Letter 0 of the rules is the space before the word.
            let options = letter_spellings(c, at + 1);
            spellings = spellings
                .iter()
                .flat_map(|s| options.iter().map(move |&o| format!("{s}{o}")))
                .collect();
        }
        for spelling in spellings {
            for mark in ["", ",", ".", "?", "!"] {
                written.insert(format!("{spelling}{mark}").into_bytes());
            }
        }
    }
    let (mut pieces, mut prefixes, mut suffixes) = (HashSet::new(), HashSet::new(), HashSet::new());
    for w in &written {
        for start in 0..w.len() {
            for end in start + 1..=w.len() {
                pieces.insert(&w[start..end]);
            }
            suffixes.insert(&w[start..]);
            prefixes.insert(&w[..start + 1]);
        }
    }
    let fits = |text: &[u8]| {
        let parts: Vec<&[u8]> = text.split(|&b| b == b' ').collect();
        match parts.as_slice() {
            [] => false,
            [only] => pieces.contains(only),
            [first, middle @ .., last] => {
                (first.is_empty() || suffixes.contains(first))
                    && middle.iter().all(|m| written.contains(*m))
                    && (last.is_empty() || prefixes.contains(last))
            }
        }
    };
    vocabulary
        .iter()
        .filter(|(_, text)| !text.is_empty() && fits(text))
        .map(|(id, _)| *id)
        .collect()
}

/// The alternatives for the words in `words` (all sharing their first `depth` letters) from
/// letter `depth` on; branching points become rules of their own.
fn trie_rule(
    words: &[(Vec<char>, usize)],
    depth: usize,
    after_word: &[usize],
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
        rule.push(rule_ref(after_word[*to]));
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
            rule.push(rule_ref(after_word[group[0].1]));
        } else {
            let index = rules.len();
            rules.push(Vec::new());
            rules[index] = trie_rule(&group, at, after_word, rules);
            rule.push(rule_ref(index));
        }
    }
    rule
}

/// Letter `at` of a word (0 is the space before it).
fn push_letter(rule: &mut Vec<WhisperGrammarElement>, letter: char, at: usize) {
    for (i, c) in letter_spellings(letter, at).into_iter().enumerate() {
        let kind = if i == 0 {
            WhisperGrammarElementType::Character
        } else {
            WhisperGrammarElementType::CharacterAlternate
        };
        rule.push(element(kind, c));
    }
}

/// The ways the rules let letter `at` of a word (0 is the space before it) be written: the
/// letter, a capital if it is the first, ’ for '. `tokens_fitting` spells words the same way.
fn letter_spellings(letter: char, at: usize) -> Vec<char> {
    let mut spellings = vec![letter];
    let upper: Vec<char> = letter.to_uppercase().collect();
    if at == 1 && upper.len() == 1 && upper[0] != letter {
        spellings.push(upper[0]);
    }
    if letter == '\'' {
        spellings.push('’');
    }
    spellings
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
    fn spaced_words_keep_their_space_and_punctuation_and_make_up_the_text() {
        let text = " Can I get a light, roasted mocha?  ";
        let words: Vec<&str> = spaced_words(text).collect();
        assert_eq!(
            words,
            [" Can", " I", " get", " a", " light,", " roasted", " mocha?", "  "]
        );
        assert_eq!(words.concat(), text);
        assert_eq!(spaced_words("").count(), 0);
    }

    #[test]
    fn log_sum_exp_ignores_tokens_that_cannot_be_chosen() {
        let row = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
        assert!((log_sum_exp(&row) - 2f32.ln()).abs() < 1e-6);
        assert_eq!(log_sum_exp(&[f32::NEG_INFINITY; 3]), f32::NEG_INFINITY);
    }

    #[test]
    fn logits_are_computed_for_the_tokens_a_grammar_sentence_can_hold() {
        let vocabulary: Vec<(i32, Vec<u8>)> = [
            " can",
            "ap",
            " the",
            " latte,",
            " lattes",
            "ino with",
            " I can",
            "x",
            " Cappuccino.",
            " cAppuccino",
            "  ",
            " I’",
            "",
        ]
        .iter()
        .enumerate()
        .map(|(id, text)| (id as i32, text.as_bytes().to_vec()))
        .collect();
        let words = ["can", "I", "cappuccino", "with", "latte", "i'd"];
        let fitting: Vec<&str> = tokens_fitting(words, &vocabulary)
            .into_iter()
            .map(|id| std::str::from_utf8(&vocabulary[id as usize].1).unwrap())
            .collect();
        assert_eq!(
            fitting,
            [
                " can",
                "ap",
                " latte,",
                "ino with",
                " I can",
                " Cappuccino.",
                " I’"
            ]
        );
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
        // "lattes" is a word (as Whisper's vocabulary would say); "latted" is not.
        let grammar = grammar.with_inflectable(["latte", "large"]);
        let inflections = inflections(&grammar, |w| w == "lattes");
        assert_eq!(
            inflections,
            Inflections::from([("latte".into(), vec!["lattes".into()])])
        );
        let rules = grammar_rules(&grammar, &inflections);
        for good in [
            " Can I get a large latte",
            " I'd like a latte, with milk.",
            " can I get a large latte with milk?",
            " I’d like a latte",
            " can I get a large lattes", // Whisper writes the inflections it hears
            " can I get a lattes, with milk",
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
            " can I get a large latted", // not a word
            " can I get a large latte,", // a comma promises more
            " cancel,",
            " cancels",
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
