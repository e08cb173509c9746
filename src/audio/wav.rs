//! WAV files of any common layout (8/16/24/32-bit integer or 32-bit float, any channel
//! count, any rate) in, 16-bit mono out.

use std::path::Path;

use super::{resample, AudioError, Pcm, SPEECH_RATE};

/// Interleaved samples as they were in the file, converted to f32.
#[derive(Debug, Clone)]
pub struct WavAudio {
    pub sample_rate: u32,
    pub channels: u16,
    pub interleaved: Vec<f32>,
}

impl WavAudio {
    pub fn to_mono(&self) -> Pcm {
        Pcm::new(
            self.sample_rate,
            resample::downmix(&self.interleaved, self.channels as usize),
        )
    }
}

pub fn read_wav(path: &Path) -> Result<WavAudio, AudioError> {
    let bad = |reason: String| AudioError::BadWav {
        path: path.to_path_buf(),
        reason,
    };
    if !path.exists() {
        return Err(AudioError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    let reader = hound::WavReader::open(path).map_err(|e| bad(e.to_string()))?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(bad(format!(
            "header says {} channels at {} Hz",
            spec.channels, spec.sample_rate
        )));
    }
    let interleaved: Result<Vec<f32>, hound::Error> =
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) => reader.into_samples::<f32>().collect(),
            (hound::SampleFormat::Int, bits @ 1..=32) => {
                let scale = 1.0 / (1u64 << (bits - 1)) as f32;
                reader
                    .into_samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect()
            }
            (format, bits) => {
                return Err(AudioError::Unsupported(format!(
                    "{}: {bits}-bit {format:?} samples",
                    path.display()
                )))
            }
        };
    let interleaved = interleaved.map_err(|e| bad(e.to_string()))?;
    Ok(WavAudio {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        interleaved,
    })
}

/// Any WAV file as 16 kHz mono, ready for the VAD and Whisper.
pub fn read_wav_for_speech(path: &Path) -> Result<Pcm, AudioError> {
    read_wav(path)?.to_mono().resampled(SPEECH_RATE)
}

/// Writes 16-bit mono PCM, clipping to full scale. Written to a temporary name and renamed,
/// so a full disk never leaves a truncated file behind under the real name.
pub fn write_wav(path: &Path, pcm: &Pcm) -> Result<(), AudioError> {
    let io = |e: std::io::Error| AudioError::Io {
        path: path.to_path_buf(),
        error: e,
    };
    let hound_err = |e: hound::Error| match e {
        hound::Error::IoError(e) => io(e),
        other => AudioError::Unsupported(other.to_string()),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: pcm.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let tmp = path.with_extension("wav.partial");
    let result = (|| {
        let mut writer = hound::WavWriter::create(&tmp, spec).map_err(hound_err)?;
        for &s in &pcm.samples {
            writer.write_sample(to_i16(s)).map_err(hound_err)?;
        }
        writer.finalize().map_err(hound_err)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(io)
}

pub fn to_i16(s: f32) -> i16 {
    (s.clamp(-1.0, 1.0) * 32767.0).round() as i16
}
