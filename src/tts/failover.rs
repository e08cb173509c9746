//! A cloud voice with a local one behind it: a reply whose cloud stream fails (refused,
//! closed, stalled) goes on in the local voice from the first sentence the user has not
//! heard, resampled to the stream's rate, so the user hears the rest within a sentence's
//! synthesis time instead of silence.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use super::sentences::SentenceSplitter;
use super::stream::{
    stream_pair, StreamDriver, SynthesisEvent, SynthesisStream, Synthesizer, TextCommand, TextInput,
};
use super::TtsError;
use crate::audio::resample::StreamResampler;

pub struct FailoverSynthesizer {
    primary: Arc<dyn Synthesizer>,
    fallback: Option<Arc<dyn Synthesizer>>,
}

impl FailoverSynthesizer {
    pub fn new(primary: Arc<dyn Synthesizer>, fallback: Option<Arc<dyn Synthesizer>>) -> Self {
        Self { primary, fallback }
    }
}

impl Synthesizer for FailoverSynthesizer {
    fn name(&self) -> &str {
        self.primary.name()
    }

    fn sample_rate(&self) -> u32 {
        self.primary.sample_rate()
    }

    fn open_stream(&self) -> Result<SynthesisStream, TtsError> {
        let Some(fallback) = self.fallback.clone() else {
            return self.primary.open_stream();
        };
        let primary = match self.primary.open_stream() {
            Ok(s) => s,
            Err(_) => return fallback.open_stream(),
        };
        let (stream, driver) = stream_pair(primary.sample_rate());
        std::thread::Builder::new()
            .name("hark-tts-failover".into())
            .spawn(move || Relay::new(primary, fallback, driver).run())
            .map_err(|e| TtsError::Engine(format!("no thread for synthesis: {e}")))?;
        Ok(stream)
    }
}

/// Which stream the reply's audio comes from.
enum Source {
    Primary(SynthesisStream),
    Fallback {
        stream: SynthesisStream,
        resampler: Option<Box<StreamResampler>>,
        /// Where the fallback's audio begins in the reply.
        offset: u64,
        /// Stream rate over fallback rate.
        ratio: f64,
    },
}

struct Relay {
    source: Source,
    input: TextInput,
    fallback: Arc<dyn Synthesizer>,
    driver: StreamDriver,
    /// Sentences given to the stream and not yet marked as said.
    unsaid: VecDeque<String>,
    splitter: SentenceSplitter,
    flushed: bool,
    /// Samples sent on, at the stream's rate.
    position: u64,
}

impl Relay {
    fn new(primary: SynthesisStream, fallback: Arc<dyn Synthesizer>, driver: StreamDriver) -> Self {
        Self {
            input: primary.input(),
            source: Source::Primary(primary),
            fallback,
            driver,
            unsaid: VecDeque::new(),
            splitter: SentenceSplitter::new(),
            flushed: false,
            position: 0,
        }
    }

    fn run(mut self) {
        loop {
            if self.driver.cancel.is_cancelled() {
                return self.cancel();
            }
            let mut busy = false;
            while let Ok(command) = self.driver.text.try_recv() {
                busy = true;
                self.take(command);
            }
            while let Some(event) = self.poll() {
                busy = true;
                match self.relay(event) {
                    Step::Go => {}
                    Step::End => return,
                }
            }
            if !busy {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn take(&mut self, command: TextCommand) {
        self.unsaid.extend(self.splitter.take(&command));
        match &command {
            TextCommand::Text(text) => {
                self.input.push(text);
            }
            TextCommand::Flush => {
                self.flushed = true;
                self.input.flush();
            }
        }
    }

    fn poll(&mut self) -> Option<SynthesisEvent> {
        match &mut self.source {
            Source::Primary(s) | Source::Fallback { stream: s, .. } => s.poll(),
        }
    }

    fn relay(&mut self, event: SynthesisEvent) -> Step {
        let on_primary = matches!(self.source, Source::Primary(_));
        match event {
            SynthesisEvent::Audio(samples) => {
                let samples = match &mut self.source {
                    Source::Fallback {
                        resampler: Some(r), ..
                    } => {
                        let mut out = Vec::with_capacity(samples.len() * 2);
                        let _ = r.push(&samples, &mut out);
                        out
                    }
                    _ => samples,
                };
                self.position += samples.len() as u64;
                self.step(self.driver.send(SynthesisEvent::Audio(samples)))
            }
            SynthesisEvent::Mark { text, start, end } => {
                self.said(&text);
                let (start, end) = match &self.source {
                    Source::Fallback { offset, ratio, .. } => (
                        offset + (start as f64 * ratio) as u64,
                        offset + (end as f64 * ratio) as u64,
                    ),
                    Source::Primary(_) => (start, end),
                };
                self.step(self.driver.send(SynthesisEvent::Mark { text, start, end }))
            }
            SynthesisEvent::Done => {
                // The resampler holds back less than a block: push it out.
                if let Source::Fallback {
                    resampler: Some(r),
                    stream,
                    ..
                } = &mut self.source
                {
                    let mut tail = Vec::new();
                    let block = vec![0.0; stream.sample_rate() as usize / 50];
                    let _ = r.push(&block, &mut tail);
                    self.driver.send(SynthesisEvent::Audio(tail));
                }
                self.driver.send(SynthesisEvent::Done);
                Step::End
            }
            SynthesisEvent::Failed(message) if on_primary => self.fail_over(message),
            SynthesisEvent::Failed(message) => {
                self.driver.send(SynthesisEvent::Failed(message));
                Step::End
            }
        }
    }

    fn step(&self, sent: bool) -> Step {
        if sent {
            Step::Go
        } else {
            Step::End
        }
    }

    /// The sentences a mark covers are said.
    fn said(&mut self, text: &str) {
        let mut rest = text.trim();
        while let Some(front) = self.unsaid.front() {
            match rest.strip_prefix(front.trim()) {
                Some(after) => {
                    rest = after.trim_start();
                    self.unsaid.pop_front();
                }
                None => break,
            }
        }
    }

    /// The rest of the reply in the local voice.
    fn fail_over(&mut self, message: String) -> Step {
        let stream = match self.fallback.open_stream() {
            Ok(s) => s,
            Err(e) => {
                self.driver
                    .send(SynthesisEvent::Failed(format!("{message}; {e}")));
                return Step::End;
            }
        };
        let rate = self.driver_rate();
        let from = stream.sample_rate();
        let resampler = (from != rate)
            .then(|| StreamResampler::new(from, rate, 20).ok().map(Box::new))
            .flatten();
        let input = stream.input();
        let unsaid: Vec<String> = self.unsaid.iter().cloned().collect();
        if !unsaid.is_empty() {
            input.push(&unsaid.join(" "));
        }
        if self.flushed {
            input.flush();
        }
        self.input = input;
        self.source = Source::Fallback {
            stream,
            resampler,
            offset: self.position,
            ratio: rate as f64 / from as f64,
        };
        Step::Go
    }

    fn driver_rate(&self) -> u32 {
        match &self.source {
            Source::Primary(s) => s.sample_rate(),
            Source::Fallback { stream, ratio, .. } => {
                (stream.sample_rate() as f64 * ratio).round() as u32
            }
        }
    }

    fn cancel(&mut self) {
        match &mut self.source {
            Source::Primary(s) | Source::Fallback { stream: s, .. } => s.cancel(),
        }
    }
}

enum Step {
    Go,
    End,
}
