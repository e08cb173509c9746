//! Audio in and out: WAV files, format conversion and resampling.

pub mod aec;
pub mod device;
pub mod file;
pub mod mulaw;
pub mod noise;
pub mod resample;
pub mod wav;

use std::path::PathBuf;

/// Whisper, the VAD and the dialogue loop all work on 16 kHz mono.
pub const SPEECH_RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    // The OS error is part of the message, not a `source` (printed again by error chains).
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a readable WAV file: {reason}")]
    BadWav { path: PathBuf, reason: String },
    #[error("unsupported audio format: {0}")]
    Unsupported(String),
    #[error("sound device: {0}")]
    Device(String),
    #[error("resampling from {from} Hz to {to} Hz failed: {reason}")]
    Resample { from: u32, to: u32, reason: String },
}

/// Mono samples in [-1, 1] at a known rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub sample_rate: u32,
    pub samples: Vec<f32>,
}

impl Pcm {
    pub fn new(sample_rate: u32, samples: Vec<f32>) -> Self {
        Self {
            sample_rate,
            samples,
        }
    }

    pub fn duration_secs(&self) -> f64 {
        if self.sample_rate == 0 {
            return 0.0;
        }
        self.samples.len() as f64 / self.sample_rate as f64
    }

    /// This audio at `rate` (a copy when it already is).
    pub fn resampled(&self, rate: u32) -> Result<Pcm, AudioError> {
        Ok(Pcm::new(
            rate,
            resample::resample(&self.samples, self.sample_rate, rate)?,
        ))
    }
}

/// Where audio comes from: a microphone, or a WAV file standing in for one.
pub trait AudioSource: Send {
    /// Rate of the samples `read` returns.
    fn sample_rate(&self) -> u32;
    /// Fills `buf` with the next mono samples, blocking until they exist (a paced source
    /// returns audio no faster than real time). Returns how many were written: fewer than
    /// `buf.len()` only at the end of the stream, 0 once it has ended.
    fn read(&mut self, buf: &mut [f32]) -> Result<usize, AudioError>;
    /// Counters of a live device (overruns); None for files.
    fn stream_stats(&self) -> Option<device::StreamStats> {
        None
    }
}

/// Where audio goes: a speaker, or a WAV file recording what a speaker would play.
pub trait AudioSink: Send {
    fn sample_rate(&self) -> u32;
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError>;
    /// Drops audio written but not yet played (a device's queue), so a barge-in silences
    /// the speaker at once. A file has no queue: what was written is the record.
    fn discard_queued(&mut self) {}
    /// Counters of a live device (underruns); None for files.
    fn stream_stats(&self) -> Option<device::StreamStats> {
        None
    }
    /// Flushes and closes; nothing written before is lost if this fails part-way.
    fn finish(&mut self) -> Result<(), AudioError> {
        Ok(())
    }
}

/// A source cut off after a number of seconds (`hark run --seconds`).
pub struct Limited {
    inner: Box<dyn AudioSource>,
    left: usize,
}

impl Limited {
    pub fn new(inner: Box<dyn AudioSource>, seconds: f64) -> Self {
        let left = (seconds.max(0.0) * inner.sample_rate() as f64) as usize;
        Self { inner, left }
    }
}

impl AudioSource for Limited {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn read(&mut self, buf: &mut [f32]) -> Result<usize, AudioError> {
        let want = buf.len().min(self.left);
        if want == 0 {
            return Ok(0);
        }
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        Ok(n)
    }

    fn stream_stats(&self) -> Option<device::StreamStats> {
        self.inner.stream_stats()
    }
}
