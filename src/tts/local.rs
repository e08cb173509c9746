//! The local voices (Piper, espeak-ng) as streaming synthesizers: each stream cuts its text
//! into sentences as it arrives and speaks each one as soon as it is complete, on a thread
//! of its own, so the first sentence plays while the dialogue is still producing the rest.
//! A cancelled stream stops before its next sentence; what it was saying is dropped.

use std::sync::{Arc, Mutex};

use super::cache::AudioCache;
use super::sentences::first_clause;
use super::stream::{
    stream_pair, StreamDriver, SynthesisEvent, SynthesisStream, Synthesizer, TextCommand,
};
use super::{SentenceSplitter, TtsError, Voice};

/// One voice shared by every conversation: loading the neural voice takes about a second,
/// and espeak-ng keeps global state two threads must not use at once, so streams take
/// turns, a sentence at a time (a few ms each: Piper runs ~30× faster than real time).
#[derive(Clone)]
pub struct LocalSynthesizer {
    voice: Arc<Mutex<Box<dyn Voice>>>,
    name: String,
    sample_rate: u32,
    /// Audio of the domain's fixed wording, once spoken.
    cache: Option<Arc<AudioCache>>,
}

impl LocalSynthesizer {
    pub fn new(voice: Box<dyn Voice>) -> Self {
        Self {
            name: voice.name().to_string(),
            sample_rate: voice.sample_rate(),
            voice: Arc::new(Mutex::new(voice)),
            cache: None,
        }
    }

    /// Keeps the audio of fixed wording in `cache` and plays it from there.
    pub fn with_cache(mut self, cache: Arc<AudioCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// One sentence, taking the voice's turn (a cached one waits for nobody).
    pub fn speak(&self, sentence: &str) -> Result<Vec<f32>, TtsError> {
        let cache = self.cache.as_ref().filter(|c| c.cacheable(sentence));
        if let Some(audio) = cache.and_then(|c| c.get(sentence)) {
            return Ok(audio.to_vec());
        }
        // A poisoned lock means another conversation panicked mid-sentence; the engine
        // holds no half-done state between sentences.
        let samples = self
            .voice
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .synthesize(sentence)?;
        if let Some(cache) = cache {
            cache.put(sentence, &samples);
        }
        Ok(samples)
    }
}

impl Synthesizer for LocalSynthesizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn open_stream(&self) -> Result<SynthesisStream, TtsError> {
        let (stream, driver) = stream_pair(self.sample_rate);
        let voice = self.clone();
        std::thread::Builder::new()
            .name("hark-tts".into())
            .spawn(move || speak_sentences(&voice, &driver))
            .map_err(|e| TtsError::Engine(format!("no thread for synthesis: {e}")))?;
        Ok(stream)
    }
}

fn speak_sentences(voice: &LocalSynthesizer, driver: &StreamDriver) {
    let mut splitter = SentenceSplitter::new();
    let mut position = 0u64;
    let mut first = true;
    let mut speak_piece = |sentence: String| -> bool {
        if driver.cancel.is_cancelled() {
            return false;
        }
        match voice.speak(&sentence) {
            Ok(samples) => {
                let end = position + samples.len() as u64;
                let mark = SynthesisEvent::Mark {
                    text: sentence,
                    start: position,
                    end,
                };
                position = end;
                driver.send(mark) && driver.send(SynthesisEvent::Audio(samples))
            }
            Err(e) => {
                driver.send(SynthesisEvent::Failed(e.to_string()));
                false
            }
        }
    };
    // The reply's first sentence may start playing after its first clause.
    let mut speak = |sentence: String| -> bool {
        if std::mem::take(&mut first) {
            if let Some((head, tail)) = first_clause(&sentence) {
                let tail = tail.to_string();
                return speak_piece(head.to_string()) && speak_piece(tail);
            }
        }
        speak_piece(sentence)
    };
    // The stream's text input closing without a flush means the reply was abandoned.
    while let Ok(command) = driver.text.recv() {
        for sentence in splitter.take(&command) {
            if !speak(sentence) {
                return;
            }
        }
        if command == TextCommand::Flush {
            driver.send(SynthesisEvent::Done);
            return;
        }
    }
}
