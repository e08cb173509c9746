//! Spoken commands: one recording in, what it asks for out (transcript, intent, slot
//! values). This is the path every utterance of a kiosk takes after the endpoint, measured
//! on its own by `hark understand` and `hark eval spoken`.

pub mod eval;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crate::dialogue::manager::{DialogueError, DialogueManager};
use crate::stt::bias::vocabulary_prompt;
use crate::stt::rescore::PhraseClasses;
use crate::stt::{DecodeWindow, SttError, TranscribeOptions, Transcriber};
use crate::vad::VoiceDetector;

#[derive(Debug, thiserror::Error)]
pub enum SpokenError {
    #[error(transparent)]
    Stt(#[from] SttError),
    #[error(transparent)]
    Dialogue(#[from] DialogueError),
}

/// What one spoken command meant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SpokenCommand {
    pub transcript: String,
    pub intent: Option<String>,
    pub slots: BTreeMap<String, String>,
    /// From having the audio to having the meaning (speech trimming, recognition and
    /// understanding).
    pub ms: f64,
    /// The part of it that was speech recognition.
    pub decode_ms: f64,
}

/// Reads spoken commands of one domain: recognition biased with the domain's vocabulary,
/// then the dialogue manager's intent recognizer and slot spotter.
pub struct CommandReader {
    transcriber: Box<dyn Transcriber>,
    manager: DialogueManager,
    options: TranscribeOptions,
}

/// The longest biasing prompt, in characters: enough for every value word of a typical
/// domain; each prompt token costs decoding time.
pub const PROMPT_CHARS: usize = 400;

impl CommandReader {
    pub fn new(transcriber: Box<dyn Transcriber>, manager: DialogueManager) -> Self {
        let prompt = vocabulary_prompt(manager.domain_vocabulary(), PROMPT_CHARS);
        let grammar = manager.domain().command_grammar().map(Arc::new);
        // Each slot's values may be heard for one another.
        let alternatives = PhraseClasses::new(
            manager
                .domain()
                .flows
                .values()
                .flat_map(|flow| flow.slots.iter().map(|slot| flow.slot_phrases(&slot.name))),
        );
        Self {
            transcriber,
            manager,
            options: TranscribeOptions {
                window: DecodeWindow::Trimmed,
                prompt,
                grammar,
                alternatives: (!alternatives.is_empty()).then(|| Arc::new(alternatives)),
                max_tokens: None,
            },
        }
    }

    /// Recognition free to hear any sentence, even in a closed domain.
    pub fn without_grammar(mut self) -> Self {
        self.options.grammar = None;
        self
    }

    /// Whether recognition is held to the domain's grammar.
    pub fn has_grammar(&self) -> bool {
        self.options.grammar.is_some()
    }

    /// The sentence the grammar-held decoder wrote stands, without comparing it with its
    /// slot-value alternatives (to measure what rescoring brings).
    pub fn without_rescoring(mut self) -> Self {
        self.options.alternatives = None;
        self
    }

    /// Whether a grammar-held decode is compared with its slot-value alternatives.
    pub fn rescores(&self) -> bool {
        self.options.grammar.is_some() && self.options.alternatives.is_some()
    }

    /// Recognition without the domain's vocabulary (to measure what biasing brings).
    pub fn without_biasing(mut self) -> Self {
        self.options.prompt = None;
        self
    }

    /// Sets up what the first command would (see `Transcriber::warm_up`), so that its time is
    /// like the others'.
    pub fn warm_up(&mut self) -> Result<(), SpokenError> {
        Ok(self.transcriber.warm_up(&self.options)?)
    }

    /// Understands one command: `pcm_16k` is 16 kHz mono audio holding one utterance.
    pub fn read(&mut self, pcm_16k: &[f32]) -> Result<SpokenCommand, SpokenError> {
        let start = Instant::now();
        let speech = speech_span(pcm_16k);
        let mut transcript = self.transcriber.transcribe(speech, &self.options)?;
        let mut meaning = self.manager.understand(&transcript.text)?;
        let mut decode_ms = transcript.decode_ms;
        if self.options.grammar.is_some() && !self.is_flow(meaning.intent.as_deref()) {
            // A grammar makes recognition say *some* sentence of the domain: where noise
            // hides the first words, or the user said something else, a short one ("help",
            // "forget it", "I want to talk to a person") can capture the decode. Such an
            // answer stands only if free recognition hears the same; otherwise free
            // recognition's reading is the better guess (an order, or nothing).
            let free_options = TranscribeOptions {
                grammar: None,
                ..self.options.clone()
            };
            let free = self.transcriber.transcribe(speech, &free_options)?;
            decode_ms += free.decode_ms;
            let free_meaning = self.manager.understand(&free.text)?;
            if free_meaning.intent != meaning.intent {
                transcript = free;
                meaning = free_meaning;
            }
        }
        Ok(SpokenCommand {
            transcript: transcript.text,
            intent: meaning.intent,
            slots: meaning.slots,
            ms: start.elapsed().as_secs_f64() * 1000.0,
            decode_ms,
        })
    }

    fn is_flow(&self, intent: Option<&str>) -> bool {
        intent.is_some_and(|i| self.manager.domain().flows.contains_key(i))
    }
}

/// VAD frame: 30 ms at 16 kHz.
const FRAME: usize = 480;
/// Voiced frames in a row that count as speech starting (90 ms: clicks and breaths are
/// shorter).
const ONSET_FRAMES: usize = 3;
/// Kept around the speech: soft onsets ("h", "f") and trailing consonants are quieter than
/// the VAD's threshold.
const MARGIN: usize = 10 * FRAME;

/// The stretch of `pcm_16k` from the first to the last speech, with a margin; all of it
/// when no speech is found (the recogniser then decides). Speech is what the VAD calls voice
/// and stands out from the recording's background: in quiet every voiced frame does, but
/// the VAD also calls kitchen noise voice, and a noisy recording trimmed by the VAD alone was
/// encoded whole. A frame stands out when its level is at least a third of the way (in dB)
/// from the background (the 20th percentile of frame levels) to the loudest frames (98th).
/// Of several stretches of speech apart by more than a pause, the main one is kept (see
/// `main_stretch`).
pub fn speech_span(pcm_16k: &[f32]) -> &[f32] {
    &pcm_16k[speech_range(pcm_16k)]
}

/// Where `speech_span` lies in `pcm_16k`, in samples.
pub fn speech_range(pcm_16k: &[f32]) -> std::ops::Range<usize> {
    let frames: Vec<&[f32]> = pcm_16k.chunks_exact(FRAME).collect();
    let levels: Vec<f32> = frames.iter().map(|f| level_db(f)).collect();
    let gate = {
        let mut sorted = levels.clone();
        sorted.sort_by(f32::total_cmp);
        let at = |q: f32| {
            sorted
                .get(((sorted.len() as f32 - 1.0) * q) as usize)
                .copied()
        };
        match (at(0.2), at(0.98)) {
            (Some(background), Some(loudest)) => background + (loudest - background) / 3.0,
            _ => f32::NEG_INFINITY,
        }
    };
    let mut vad = VoiceDetector::new();
    let voiced: Vec<bool> = frames
        .iter()
        .zip(&levels)
        .map(|(f, &level)| vad.is_speech(f).unwrap_or(false) && level >= gate)
        .collect();
    let Some((first, last)) = main_stretch(&onsets(&voiced), &voiced) else {
        return 0..pcm_16k.len();
    };
    let begin = (first * FRAME).saturating_sub(MARGIN);
    let end = ((last + ONSET_FRAMES) * FRAME + MARGIN).min(pcm_16k.len());
    begin..end
}

/// Frames where speech starts: the first of `ONSET_FRAMES` voiced frames in a row.
fn onsets(voiced: &[bool]) -> Vec<usize> {
    voiced
        .windows(ONSET_FRAMES)
        .enumerate()
        .filter(|(_, frames)| frames.iter().all(|&v| v))
        .map(|(at, _)| at)
        .collect()
}

/// The stretch of onsets (frame indices where speech starts) that holds the command: onsets
/// closer than `MAX_PAUSE_FRAMES` belong to one stretch, and the stretch with the most voiced
/// frames wins. A clatter in the kitchen a second away from the command is its own stretch;
/// spanning from the first onset to the last encoded it with the command.
fn main_stretch(onsets: &[usize], voiced: &[bool]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize, usize)> = None;
    let mut rest = onsets;
    while let Some(&first) = rest.first() {
        let len = rest
            .windows(2)
            .position(|w| w[1] - w[0] > MAX_PAUSE_FRAMES)
            .map_or(rest.len(), |at| at + 1);
        let last = rest[len - 1];
        let weight = voiced[first..last + ONSET_FRAMES]
            .iter()
            .filter(|&&v| v)
            .count();
        if best.is_none_or(|(_, _, w)| weight > w) {
            best = Some((first, last, weight));
        }
        rest = &rest[len..];
    }
    best.map(|(first, last, _)| (first, last))
}

/// The longest pause inside a command (1.2 s); hesitations are shorter.
const MAX_PAUSE_FRAMES: usize = 40;

/// A frame's level in dB (full scale 0 dB).
fn level_db(frame: &[f32]) -> f32 {
    let power = frame.iter().map(|s| s * s).sum::<f32>() / frame.len().max(1) as f32;
    10.0 * (power + 1e-10).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_is_the_longest_stretch_of_speech_and_keeps_its_pauses() {
        let mut voiced = vec![false; 300];
        let mut voice = |range: std::ops::Range<usize>| range.for_each(|i| voiced[i] = true);
        voice(5..9); // a clatter before
        voice(60..100); // the command, a hesitation of a second (30 frames), the rest
        voice(130..160);
        voice(250..256); // a clatter after
        assert_eq!(main_stretch(&onsets(&voiced), &voiced), Some((60, 157)));
        // A pause longer than any hesitation parts two stretches; the longer one is kept.
        let mut voiced = vec![false; 300];
        (10..40).chain(100..180).for_each(|i| voiced[i] = true);
        assert_eq!(main_stretch(&onsets(&voiced), &voiced), Some((100, 177)));
        assert_eq!(main_stretch(&[], &voiced), None);
    }
}
