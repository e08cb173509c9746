//! Local Whisper through whisper-rs: one context per process, one state per session.

use std::path::Path;
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

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
