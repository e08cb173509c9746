//! The reply being played: audio from its synthesis stream, resampled to the speaker's
//! rate, handed out 20 ms at a time, with the stream's marks tracked against what has
//! actually been played, so that a barge-in knows what the user heard.

use std::collections::VecDeque;

use crate::audio::resample::StreamResampler;
use crate::audio::AudioError;
use crate::clock::Clock;
use crate::tts::stream::{SynthesisEvent, SynthesisStream};

/// The resampler's block for the voice's audio.
const RESAMPLE_CHUNK_MS: u32 = 20;

/// A stretch of reply audio and the text it says, in speaker samples from the reply's start.
#[derive(Debug, Clone, PartialEq)]
struct Mark {
    text: String,
    start: u64,
    end: u64,
}

/// What happened while the playback pulled audio from its stream or played it.
#[derive(Debug, Clone, PartialEq)]
pub enum PlaybackNote {
    /// A sentence is ready to play.
    Queued(String),
    /// The first sample played, `offset` samples into the frame.
    Started { offset: usize },
    /// Playing reached this sentence.
    SentenceStarted(String),
    /// The synthesis could not go on.
    Failed(String),
    /// Everything was played; the last sample `offset` samples into the frame (None: the
    /// reply had no audio).
    Finished { offset: Option<usize> },
}

pub struct Playback {
    pub turn: u64,
    stream: SynthesisStream,
    resampler: StreamResampler,
    /// Speaker-rate audio ready to play.
    ready: VecDeque<f32>,
    /// Speaker samples received so far, and played so far.
    received: u64,
    played: u64,
    voice_rate: u32,
    sink_rate: u32,
    marks: VecDeque<Mark>,
    /// Sentences played to their end.
    heard: Vec<String>,
    current: Option<Mark>,
    started: bool,
    stream_done: bool,
}

impl Playback {
    pub fn new(turn: u64, stream: SynthesisStream, sink_rate: u32) -> Result<Self, AudioError> {
        let voice_rate = stream.sample_rate();
        Ok(Self {
            turn,
            resampler: StreamResampler::new(voice_rate, sink_rate, RESAMPLE_CHUNK_MS)?,
            stream,
            ready: VecDeque::new(),
            received: 0,
            played: 0,
            voice_rate,
            sink_rate,
            marks: VecDeque::new(),
            heard: Vec::new(),
            current: None,
            started: false,
            stream_done: false,
        })
    }

    pub fn started(&self) -> bool {
        self.started
    }

    fn to_sink(&self, voice_samples: u64) -> u64 {
        voice_samples * self.sink_rate as u64 / self.voice_rate as u64
    }

    /// Takes whatever the stream has ready; in simulated time, everything up to the end
    /// of the reply (the text is all in by then, and synthesis takes no time).
    pub fn pull(&mut self, notes: &mut Vec<PlaybackNote>, clock: Clock) {
        let mut resampled = Vec::new();
        let next = |stream: &mut SynthesisStream| match clock {
            Clock::RealTime => stream.poll(),
            Clock::Simulated => stream.wait(crate::clock::SETTLE_LIMIT),
        };
        while let Some(event) = next(&mut self.stream) {
            match event {
                SynthesisEvent::Audio(samples) => {
                    if let Err(e) = self.resampler.push(&samples, &mut resampled) {
                        notes.push(PlaybackNote::Failed(e.to_string()));
                    }
                }
                SynthesisEvent::Mark { text, start, end } => {
                    notes.push(PlaybackNote::Queued(text.clone()));
                    let (start, end) = (self.to_sink(start), self.to_sink(end));
                    self.marks.push_back(Mark { text, start, end });
                }
                SynthesisEvent::Done => {
                    if let Err(e) = self.resampler.finish(&mut resampled) {
                        notes.push(PlaybackNote::Failed(e.to_string()));
                    }
                    self.stream_done = true;
                }
                SynthesisEvent::Failed(message) => {
                    notes.push(PlaybackNote::Failed(message));
                    self.stream_done = true;
                }
            }
        }
        self.received += resampled.len() as u64;
        self.ready.extend(resampled);
    }

    /// Writes the next audio into `out` (the caller's silence stays where there is none).
    pub fn render(&mut self, out: &mut [f32], notes: &mut Vec<PlaybackNote>) {
        let mut written = 0;
        while written < out.len() {
            let Some(sample) = self.ready.pop_front() else {
                break;
            };
            if !self.started {
                self.started = true;
                notes.push(PlaybackNote::Started { offset: written });
            }
            self.played += 1;
            self.track_marks(notes);
            out[written] = sample;
            written += 1;
        }
        if self.stream_done && self.ready.is_empty() {
            self.finish_marks();
            notes.push(PlaybackNote::Finished {
                offset: self.started.then_some(written),
            });
        }
    }

    /// The sentence playing now, moving on as the played count passes mark boundaries.
    fn track_marks(&mut self, notes: &mut Vec<PlaybackNote>) {
        if self.current.as_ref().is_some_and(|m| self.played > m.end) {
            let done = self.current.take().expect("checked");
            self.heard.push(done.text);
        }
        if self.current.is_none() {
            if let Some(next) = self.marks.front() {
                if self.played > next.start {
                    let mark = self.marks.pop_front().expect("checked");
                    notes.push(PlaybackNote::SentenceStarted(mark.text.clone()));
                    self.current = Some(mark);
                }
            }
        }
    }

    fn finish_marks(&mut self) {
        self.heard.extend(self.current.take().map(|m| m.text));
        self.heard.extend(self.marks.drain(..).map(|m| m.text));
    }

    /// What the user has heard of the reply: whole sentences, plus the words of the current
    /// one in proportion to how much of it was played.
    pub fn heard_text(&self) -> String {
        let mut parts = self.heard.clone();
        if let Some(current) = &self.current {
            let words: Vec<&str> = current.text.split_whitespace().collect();
            let length = current.end.saturating_sub(current.start).max(1);
            let into = self.played.saturating_sub(current.start).min(length);
            let heard = (words.len() as u64 * into / length) as usize;
            if heard > 0 {
                parts.push(format!("{}…", words[..heard].join(" ")));
            }
        }
        parts.join(" ")
    }

    /// Stops synthesis; nothing more plays.
    pub fn cancel(&mut self) {
        self.stream.cancel();
        self.ready.clear();
    }
}

/// The acknowledgement ("One moment.") while a reply is not ready: it plays before any of
/// the reply's audio, which waits until it is over.
#[derive(Debug, Default)]
pub struct Filler {
    audio: VecDeque<f32>,
}

impl Filler {
    pub fn add(&mut self, audio: &[f32]) {
        self.audio.extend(audio);
    }

    /// Nothing more of it: the user talks, or the reply was stopped.
    pub fn clear(&mut self) {
        self.audio.clear();
    }

    /// Plays into the start of `out`; how many samples it wrote (all of `out` while it
    /// lasts).
    pub fn play(&mut self, out: &mut [f32]) -> usize {
        let n = out.len().min(self.audio.len());
        for (slot, sample) in out.iter_mut().zip(self.audio.drain(..n)) {
            *slot = sample;
        }
        n
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        self.stream.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tts::stream::stream_pair;

    fn say(driver: &crate::tts::stream::StreamDriver, text: &str, start: u64, len: usize) {
        driver.send(SynthesisEvent::Mark {
            text: text.into(),
            start,
            end: start + len as u64,
        });
        driver.send(SynthesisEvent::Audio(vec![0.5; len]));
    }

    #[test]
    fn plays_in_frames_and_knows_what_was_heard() {
        let (stream, driver) = stream_pair(16_000);
        let mut p = Playback::new(1, stream, 16_000).unwrap();
        say(&driver, "One two.", 0, 400);
        say(&driver, "Three four five six.", 400, 400);
        driver.send(SynthesisEvent::Done);
        let mut notes = Vec::new();
        p.pull(&mut notes, Clock::RealTime);
        assert_eq!(
            notes,
            vec![
                PlaybackNote::Queued("One two.".into()),
                PlaybackNote::Queued("Three four five six.".into())
            ]
        );
        notes.clear();
        let mut out = vec![0.0; 320];
        p.render(&mut out, &mut notes);
        assert_eq!(notes[0], PlaybackNote::Started { offset: 0 });
        assert!(out.iter().all(|&s| s == 0.5));
        assert_eq!(p.heard_text(), "One…");
        p.render(&mut out, &mut notes);
        // 640 samples: the first sentence and 240 of the second's 400.
        assert_eq!(p.heard_text(), "One two. Three four…");
        notes.clear();
        out.fill(0.0);
        p.render(&mut out, &mut notes);
        assert_eq!(out[159], 0.5);
        assert_eq!(out[160], 0.0, "silence after the end");
        assert_eq!(
            notes.last(),
            Some(&PlaybackNote::Finished { offset: Some(160) })
        );
        assert_eq!(p.heard_text(), "One two. Three four five six.");
    }

    #[test]
    fn the_acknowledgement_plays_first_and_fills_whole_frames_while_it_lasts() {
        let mut filler = Filler::default();
        filler.add(&[0.25; 500]);
        let mut out = vec![0.0; 320];
        assert_eq!(filler.play(&mut out), 320);
        assert_eq!(filler.play(&mut out), 180);
        assert_eq!(out[179], 0.25);
        assert_eq!(filler.play(&mut out), 0);
        filler.add(&[0.5; 10]);
        filler.clear();
        assert_eq!(filler.play(&mut out), 0);
    }

    #[test]
    fn resampled_to_the_speaker_rate_without_losing_the_tail() {
        let (stream, driver) = stream_pair(22_050);
        let mut p = Playback::new(1, stream, 16_000).unwrap();
        say(&driver, "Hello.", 0, 22_050);
        driver.send(SynthesisEvent::Done);
        let mut notes = Vec::new();
        p.pull(&mut notes, Clock::RealTime);
        assert_eq!(p.ready.len(), 16_000);
    }
}
