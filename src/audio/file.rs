//! WAV files in place of a microphone and a speaker.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{wav, AudioError, AudioSink, AudioSource, SPEECH_RATE};

/// A WAV file as a microphone: mixed to mono and resampled to 16 kHz up front, then handed
/// out either as fast as asked (`paced = false`, for batch work and tests) or no faster than
/// real time (`paced = true`), the way a capture device delivers it.
pub struct WavFileSource {
    samples: Vec<f32>,
    position: usize,
    original_rate: u32,
    pace_from: Option<Instant>,
    paced: bool,
}

impl WavFileSource {
    pub fn open(path: &Path, paced: bool) -> Result<Self, AudioError> {
        let audio = wav::read_wav(path)?;
        let original_rate = audio.sample_rate;
        let samples = audio.to_mono().resampled(SPEECH_RATE)?.samples;
        Ok(Self::from_samples(samples, original_rate, paced))
    }

    /// 16 kHz mono samples; `original_rate` is the rate the recording of the output uses.
    pub fn from_samples(samples: Vec<f32>, original_rate: u32, paced: bool) -> Self {
        Self {
            samples,
            position: 0,
            original_rate,
            pace_from: None,
            paced,
        }
    }

    /// The file's own sample rate (the input is resampled to 16 kHz for the pipeline).
    pub fn original_rate(&self) -> u32 {
        self.original_rate
    }

    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / SPEECH_RATE as f64
    }
}

impl AudioSource for WavFileSource {
    fn sample_rate(&self) -> u32 {
        SPEECH_RATE
    }

    fn read(&mut self, buf: &mut [f32]) -> Result<usize, AudioError> {
        let n = buf.len().min(self.samples.len() - self.position);
        buf[..n].copy_from_slice(&self.samples[self.position..self.position + n]);
        self.position += n;
        if self.paced && n > 0 {
            // A sample can be delivered once it has been "captured": at its own time.
            let start = *self.pace_from.get_or_insert_with(Instant::now);
            let due = start + Duration::from_secs_f64(self.position as f64 / SPEECH_RATE as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        Ok(n)
    }
}

/// A WAV file as a speaker: records every sample the loop plays (and the silence between),
/// so the file lines up sample for sample with the input timeline, like a loopback
/// recording. Written as 16-bit mono to a temporary name, renamed on `finish`.
pub struct WavFileSink {
    path: PathBuf,
    partial: PathBuf,
    rate: u32,
    writer: Option<hound::WavWriter<std::io::BufWriter<std::fs::File>>>,
}

impl WavFileSink {
    pub fn create(path: &Path, rate: u32) -> Result<Self, AudioError> {
        let io = |e| AudioError::Io {
            path: path.to_path_buf(),
            error: e,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let partial = path.with_extension("wav.partial");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(&partial, spec).map_err(|e| hound_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            partial,
            rate,
            writer: Some(writer),
        })
    }
}

fn hound_error(path: &Path, e: hound::Error) -> AudioError {
    match e {
        hound::Error::IoError(error) => AudioError::Io {
            path: path.to_path_buf(),
            error,
        },
        other => AudioError::Unsupported(format!("{}: {other}", path.display())),
    }
}

impl AudioSink for WavFileSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| AudioError::Unsupported("write after finish".into()))?;
        for &s in samples {
            writer
                .write_sample(wav::to_i16(s))
                .map_err(|e| hound_error(&self.path, e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), AudioError> {
        if let Some(writer) = self.writer.take() {
            writer.finalize().map_err(|e| hound_error(&self.path, e))?;
            std::fs::rename(&self.partial, &self.path).map_err(|e| AudioError::Io {
                path: self.path.clone(),
                error: e,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_source_takes_real_time_and_unpaced_does_not() {
        let mut src = WavFileSource::from_samples(vec![0.1; 3200], 16_000, true);
        let mut buf = [0.0; 320];
        let start = Instant::now();
        let mut total = 0;
        while let Ok(n) = src.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 3200);
        assert!(
            start.elapsed() >= Duration::from_millis(195),
            "{:?}",
            start.elapsed()
        );

        let mut fast = WavFileSource::from_samples(vec![0.1; 160_000], 16_000, false);
        let start = Instant::now();
        while fast.read(&mut buf).unwrap() > 0 {}
        assert!(start.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn sink_writes_only_on_finish_under_the_real_name() {
        let dir = std::env::temp_dir().join(format!("hark-sink-{}", std::process::id()));
        let path = dir.join("out.wav");
        let mut sink = WavFileSink::create(&path, 22_050).unwrap();
        sink.write(&[0.5; 441]).unwrap();
        assert!(!path.exists());
        sink.finish().unwrap();
        let back = wav::read_wav(&path).unwrap();
        assert_eq!((back.sample_rate, back.interleaved.len()), (22_050, 441));
        std::fs::remove_dir_all(dir).ok();
    }
}
