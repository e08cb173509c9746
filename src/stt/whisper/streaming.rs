//! Whisper as a streaming recognizer. Whisper transcribes whole clips, so the session keeps
//! the utterance's audio and schedules decodes of it on the model's shared queue:
//!
//! - **partials**: the growing utterance every `partial_interval_ms` while the user talks,
//!   published only as far as two successive decodes agree (`PartialStabilizer`);
//! - **speculative**: at the first pause, everything said so far. If it reads as a finished
//!   sentence the session says so (`end_of_turn`), and the pipeline may end the turn after
//!   a short silence instead of the endpointer's full hangover;
//! - **final**: when the endpointer stops, the speculative decode is the final transcript if
//!   no voice came after it; otherwise the utterance is decoded again.

use std::collections::VecDeque;
use std::sync::Arc;

use super::queue::{DecodeKind, DecodeQueue, DecodeRequest, DecodeTag, Decoded, QueueClient};
use crate::audio::SPEECH_RATE;
use crate::stt::bias::vocabulary_prompt;
use crate::stt::partial::PartialStabilizer;
use crate::stt::recognizer::{
    Recognizer, RecognizerCapabilities, RecognizerEvent, RecognizerSession, SpeechHint,
};
use crate::stt::SttError;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhisperStreamConfig {
    /// How often the growing utterance is decoded for interim text (0: never).
    pub partial_interval_ms: u64,
    /// Characters of expected phrases given to Whisper as its prompt.
    pub prompt_chars: usize,
    /// Utterances no longer than this (voice, without the pre-roll) are decoded with at
    /// most `short_sound_tokens`: an "uh-huh" or a cough is decided without a full decode.
    pub short_sound_ms: u64,
    pub short_sound_tokens: usize,
}

impl Default for WhisperStreamConfig {
    fn default() -> Self {
        Self {
            partial_interval_ms: 250,
            prompt_chars: 300,
            short_sound_ms: 700,
            short_sound_tokens: 8,
        }
    }
}

/// Audio kept before an utterance starts, for the endpointer's pre-roll.
const HISTORY_MS: u64 = 1000;
/// Whisper hears at most 30 s at once; an utterance longer than that keeps its last 30 s.
const MAX_UTTERANCE_MS: u64 = 30_000;
/// The endpointer's pre-roll, not counted when judging an utterance's length.
const PRE_ROLL_MS: u64 = 300;

/// Local Whisper behind the streaming seam: one decode queue for every conversation.
pub struct WhisperRecognizer {
    queue: Arc<DecodeQueue>,
    config: WhisperStreamConfig,
}

impl WhisperRecognizer {
    pub fn new(queue: Arc<DecodeQueue>, config: WhisperStreamConfig) -> Self {
        Self { queue, config }
    }
}

impl Recognizer for WhisperRecognizer {
    fn name(&self) -> &str {
        "whisper"
    }

    fn capabilities(&self) -> RecognizerCapabilities {
        RecognizerCapabilities {
            interim_results: self.config.partial_interval_ms > 0,
            endpointing: false,
        }
    }

    fn open_session(&self) -> Result<Box<dyn RecognizerSession>, SttError> {
        Ok(Box::new(WhisperStream::new(
            self.queue.client(),
            self.config,
        )))
    }
}

/// The utterance being spoken.
struct Utterance {
    id: u64,
    /// Where its audio starts on the timeline.
    from_ms: u64,
    generation: u32,
    paused: bool,
    last_partial_ms: u64,
    partial_in_flight: bool,
    stabilizer: PartialStabilizer,
    /// The decode made at the current pause, and its text once back.
    speculation: Option<Option<(String, f64)>>,
}

/// A final transcript the session owes: the pipeline said the user stopped, and the decode
/// that answers it is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owed {
    utterance: u64,
    generation: u32,
    kind: DecodeKind,
}

pub struct WhisperStream {
    client: QueueClient,
    config: WhisperStreamConfig,
    /// Recent audio; `audio[0]` is at `audio_start_ms` on the timeline.
    audio: Vec<f32>,
    audio_start_ms: u64,
    pushed_samples: u64,
    utterance: Option<Utterance>,
    next_utterance: u64,
    owed: Option<Owed>,
    /// Results about later utterances that came back while a final was still owed.
    held: VecDeque<Decoded>,
    in_flight: usize,
    prompt: Option<String>,
    events: VecDeque<RecognizerEvent>,
}

fn samples(ms: u64) -> u64 {
    ms * SPEECH_RATE as u64 / 1000
}

impl WhisperStream {
    fn new(client: QueueClient, config: WhisperStreamConfig) -> Self {
        Self {
            client,
            config,
            audio: Vec::new(),
            audio_start_ms: 0,
            pushed_samples: 0,
            utterance: None,
            next_utterance: 0,
            owed: None,
            held: VecDeque::new(),
            in_flight: 0,
            prompt: None,
            events: VecDeque::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.pushed_samples * 1000 / SPEECH_RATE as u64
    }

    /// The audio from `from_ms` to `to_ms` (clamped to what is kept).
    fn clip(&self, from_ms: u64, to_ms: u64) -> Vec<f32> {
        let start = samples(from_ms.saturating_sub(self.audio_start_ms)) as usize;
        let end = samples(to_ms.saturating_sub(self.audio_start_ms)) as usize;
        let end = end.min(self.audio.len());
        self.audio[start.min(end)..end].to_vec()
    }

    /// Drops audio nobody can still ask for.
    fn trim_audio(&mut self) {
        let now = self.now_ms();
        let keep_from = match &self.utterance {
            Some(u) => u.from_ms.max(now.saturating_sub(MAX_UTTERANCE_MS)),
            None => now.saturating_sub(HISTORY_MS),
        };
        // Trimmed in steps of a second, not every frame.
        if keep_from >= self.audio_start_ms + 1000 {
            let drop = samples(keep_from - self.audio_start_ms) as usize;
            self.audio.drain(..drop.min(self.audio.len()));
            self.audio_start_ms = keep_from;
            if let Some(u) = self.utterance.as_mut() {
                u.from_ms = u.from_ms.max(keep_from);
            }
        }
    }

    fn submit(&mut self, tag: DecodeTag, audio: Vec<f32>, short: bool) {
        // Partials only update the display: the prompt (tens of ms a decode) goes to the
        // decodes whose words count.
        let prompt = (tag.kind != DecodeKind::Partial)
            .then(|| self.prompt.clone())
            .flatten();
        let max_tokens = short.then_some(self.config.short_sound_tokens);
        let replaced = self.client.submit(DecodeRequest {
            tag,
            audio,
            prompt,
            max_tokens,
        });
        if !replaced {
            self.in_flight += 1;
        }
    }

    fn is_short(&self, from_ms: u64, to_ms: u64) -> bool {
        to_ms.saturating_sub(from_ms + PRE_ROLL_MS) <= self.config.short_sound_ms
    }

    fn on_result(&mut self, done: Decoded) {
        let tag = done.tag;
        if let Some(owed) = self.owed {
            if tag.utterance > owed.utterance {
                // Later audio waits until the final of the earlier utterance is out.
                self.held.push_back(done);
                return;
            }
        }
        let text = match done.text {
            Ok(text) => text,
            Err(message) => {
                self.events.push_back(RecognizerEvent::Error {
                    message: format!("Whisper: {message}"),
                });
                String::new()
            }
        };
        let owed = Owed {
            utterance: tag.utterance,
            generation: tag.generation,
            kind: tag.kind,
        };
        if self.owed == Some(owed) {
            self.owed = None;
            self.events.push_back(RecognizerEvent::Final {
                text,
                end_of_turn: true,
                latency_ms: Some(done.decode_ms),
            });
            while let Some(later) = self.held.pop_front() {
                self.on_result(later);
            }
            return;
        }
        let Some(u) = self.utterance.as_mut().filter(|u| u.id == tag.utterance) else {
            return; // an utterance that has ended or was dropped
        };
        match tag.kind {
            DecodeKind::Partial => {
                u.partial_in_flight = false;
                if let Some(stable) = u.stabilizer.update(&text) {
                    self.events
                        .push_back(RecognizerEvent::Interim { text: stable });
                }
            }
            DecodeKind::Speculative if tag.generation == u.generation => {
                u.speculation = Some(Some((text.clone(), done.decode_ms)));
                self.events.push_back(RecognizerEvent::Final {
                    end_of_turn: looks_complete(&text),
                    text,
                    latency_ms: Some(done.decode_ms),
                });
            }
            // A pause the user has since talked through, or a final of another utterance.
            _ => {}
        }
    }
}

impl RecognizerSession for WhisperStream {
    fn push_audio(&mut self, pcm: &[f32]) {
        self.audio.extend_from_slice(pcm);
        self.pushed_samples += pcm.len() as u64;
        self.trim_audio();
        let now = self.now_ms();
        let interval = self.config.partial_interval_ms;
        let Some(u) = self.utterance.as_mut() else {
            return;
        };
        if interval == 0 || u.paused || u.partial_in_flight || now < u.last_partial_ms + interval {
            return;
        }
        u.last_partial_ms = now;
        u.partial_in_flight = true;
        let tag = DecodeTag {
            utterance: u.id,
            generation: u.generation,
            kind: DecodeKind::Partial,
        };
        let from = u.from_ms;
        let audio = self.clip(from, now);
        self.submit(tag, audio, false);
    }

    fn hint(&mut self, hint: SpeechHint) {
        match hint {
            SpeechHint::Started { audio_from_ms } => {
                self.next_utterance += 1;
                self.utterance = Some(Utterance {
                    id: self.next_utterance,
                    from_ms: audio_from_ms.max(self.audio_start_ms),
                    generation: 0,
                    paused: false,
                    last_partial_ms: self.now_ms(),
                    partial_in_flight: false,
                    stabilizer: PartialStabilizer::new(),
                    speculation: None,
                });
            }
            SpeechHint::Paused { audio_to_ms } => {
                let Some(u) = self.utterance.as_mut() else {
                    return;
                };
                u.paused = true;
                u.speculation = Some(None);
                let tag = DecodeTag {
                    utterance: u.id,
                    generation: u.generation,
                    kind: DecodeKind::Speculative,
                };
                let from = u.from_ms;
                let short = self.is_short(from, audio_to_ms);
                let audio = self.clip(from, audio_to_ms);
                self.submit(tag, audio, short);
            }
            SpeechHint::Resumed => {
                if let Some(u) = self.utterance.as_mut() {
                    u.paused = false;
                    u.generation += 1;
                    u.speculation = None;
                }
            }
            SpeechHint::Stopped { audio_to_ms } => {
                let Some(u) = self.utterance.take() else {
                    // Nothing was heard as speech here: the answer is an empty final.
                    self.events.push_back(RecognizerEvent::Final {
                        text: String::new(),
                        end_of_turn: true,
                        latency_ms: None,
                    });
                    return;
                };
                match u.speculation {
                    // The decode at the pause saw everything that was said.
                    Some(Some((text, decode_ms))) => {
                        self.events.push_back(RecognizerEvent::Final {
                            text,
                            end_of_turn: true,
                            latency_ms: Some(decode_ms),
                        })
                    }
                    Some(None) => {
                        self.owed = Some(Owed {
                            utterance: u.id,
                            generation: u.generation,
                            kind: DecodeKind::Speculative,
                        })
                    }
                    None => {
                        let tag = DecodeTag {
                            utterance: u.id,
                            generation: u.generation,
                            kind: DecodeKind::Final,
                        };
                        self.owed = Some(Owed {
                            utterance: u.id,
                            generation: u.generation,
                            kind: DecodeKind::Final,
                        });
                        let short = self.is_short(u.from_ms, audio_to_ms);
                        let audio = self.clip(u.from_ms, audio_to_ms);
                        self.submit(tag, audio, short);
                    }
                }
            }
            SpeechHint::TurnEnded | SpeechHint::Discarded => self.utterance = None,
        }
    }

    fn expect_phrases(&mut self, phrases: &[String]) {
        self.prompt = vocabulary_prompt(phrases, self.config.prompt_chars);
    }

    fn poll(&mut self) -> Option<RecognizerEvent> {
        while let Some(done) = self.client.try_recv() {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.on_result(done);
        }
        self.events.pop_front()
    }

    fn busy(&self) -> bool {
        self.in_flight > 0 || self.owed.is_some() || !self.events.is_empty()
    }

    fn settle(&mut self, limit: std::time::Duration) {
        while self.in_flight > 0 {
            let Some(done) = self.client.recv_timeout(limit) else {
                return;
            };
            self.in_flight -= 1;
            self.on_result(done);
        }
    }
}

/// Whether a transcript reads as a finished sentence, so the turn can end after a short
/// pause: Whisper closes sentences with punctuation, and a trailing conjunction, article
/// or filler ("and", "the", "um") or an ellipsis means the user is still going.
pub fn looks_complete(text: &str) -> bool {
    let t = text.trim();
    !t.is_empty() && t.ends_with(['.', '?', '!']) && !crate::vad::turn_end::ends_open(t)
}

#[cfg(test)]
mod tests {
    use super::looks_complete;

    #[test]
    fn complete_sentences_and_open_ones() {
        for t in [
            "Hello there.",
            "What time is it?",
            "Book it!",
            " Please reset my password. ",
        ] {
            assert!(looks_complete(t), "{t:?}");
        }
        for t in [
            "",
            "I would like to",
            "I would like to book a table and.",
            "Um...",
            "So, the",
            "and the,",
            "Wait…",
        ] {
            assert!(!looks_complete(t), "{t:?}");
        }
    }
}
