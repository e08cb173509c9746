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

/// The sample rates a WAV file may declare.
pub const MIN_RATE: u32 = 4000;
pub const MAX_RATE: u32 = 768_000;

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
    decode(reader, path)
}

/// A WAV file already in memory (`name` for the errors).
pub fn parse_wav(bytes: &[u8], name: &Path) -> Result<WavAudio, AudioError> {
    let reader =
        hound::WavReader::new(std::io::Cursor::new(bytes)).map_err(|e| AudioError::BadWav {
            path: name.to_path_buf(),
            reason: e.to_string(),
        })?;
    decode(reader, name)
}

fn decode<R: std::io::Read>(
    reader: hound::WavReader<R>,
    path: &Path,
) -> Result<WavAudio, AudioError> {
    let bad = |reason: String| AudioError::BadWav {
        path: path.to_path_buf(),
        reason,
    };
    let spec = reader.spec();
    // A rate outside what recorders write would only make resampling enormous (8 KB
    // declared at 1 Hz is over an hour at 16 kHz).
    if spec.channels == 0 || !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        return Err(bad(format!(
            "header says {} channels at {} Hz (hark reads {MIN_RATE}–{MAX_RATE} Hz)",
            spec.channels, spec.sample_rate
        )));
    }
    let interleaved: Result<Vec<f32>, hound::Error> =
        match (spec.sample_format, spec.bits_per_sample) {
            // NaN or infinite samples (a broken writer) are silence, not noise at full scale.
            (hound::SampleFormat::Float, 32) => reader
                .into_samples::<f32>()
                .map(|s| s.map(|v| if v.is_finite() { v } else { 0.0 }))
                .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, rate: u32, samples: &[f32]) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for &s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn absurd_rates_are_refused_and_broken_samples_are_silence() {
        let dir = std::env::temp_dir().join(format!("hark-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let slow = dir.join("one-hertz.wav");
        write(&slow, 1, &[0.1; 2000]);
        let err = read_wav(&slow).unwrap_err().to_string();
        assert!(err.contains("1 Hz") && err.contains("4000"), "{err}");
        let broken = dir.join("nan.wav");
        write(&broken, 16_000, &[0.5, f32::NAN, f32::INFINITY, -0.5]);
        let audio = read_wav(&broken).unwrap();
        assert_eq!(audio.interleaved, vec![0.5, 0.0, 0.0, -0.5]);
        std::fs::remove_dir_all(dir).ok();
    }
}
