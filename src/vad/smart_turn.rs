//! Smart Turn v3.2 (Pipecat, BSD-2-Clause): an end-of-turn model that hears intonation and
//! rhythm, not words. A Whisper-tiny encoder with a linear head reads the last 8 s of the
//! utterance as Whisper log-mel features and says how likely the speaker has finished.
//!
//! The features are computed here exactly as the model was trained on them (Hugging Face's
//! `WhisperFeatureExtractor(chunk_length=8)`, as Pipecat vendors it): the audio cut to its
//! last 8 s or zero-padded at the front to 128 000 samples, normalized to zero mean and unit
//! variance, a centred STFT (400-sample periodic Hann window, hop 160, reflect padding), the
//! power spectrum through 80 Slaney mel filters (0–8 kHz), log10 with a floor of 1e-10, the
//! last frame dropped, clamped to 8 below the maximum, then (x + 4) / 4: 80 × 800 values.

use std::path::Path;
use std::sync::Arc;

use ort::session::Session;
use ort::value::Tensor;
use realfft::RealFftPlanner;

/// The model's window: 8 s at 16 kHz.
pub const WINDOW_SAMPLES: usize = 128_000;
const N_FFT: usize = 400;
const HOP: usize = 160;
const N_MELS: usize = 80;
const BINS: usize = N_FFT / 2 + 1;
/// Frames of the padded window, the last one dropped.
const FRAMES: usize = WINDOW_SAMPLES / HOP;

#[derive(Debug, thiserror::Error)]
pub enum TurnModelError {
    #[error("the end-of-turn model {path}: {reason}")]
    Missing { path: String, reason: String },
    #[error("the end-of-turn model failed: {0}")]
    Inference(String),
}

/// Whisper's log-mel features for one 8 s window, with the FFT plan and filters made once.
pub struct LogMel {
    fft: Arc<dyn realfft::RealToComplex<f64>>,
    window: Vec<f64>,
    /// `N_MELS` rows of `BINS` weights.
    filters: Vec<f64>,
    /// Buffers reused between calls.
    padded: Vec<f64>,
    frame: Vec<f64>,
    spectrum: Vec<realfft::num_complex::Complex<f64>>,
    power: Vec<f64>,
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

impl LogMel {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT);
        let spectrum = fft.make_output_vec();
        Self {
            fft,
            window: periodic_hann(N_FFT),
            filters: slaney_mel_filters(),
            padded: vec![0.0; WINDOW_SAMPLES + N_FFT],
            frame: vec![0.0; N_FFT],
            spectrum,
            power: vec![0.0; BINS * (FRAMES + 1)],
        }
    }

    /// The features of `audio` (16 kHz): its last 8 s, or all of it zero-padded at the
    /// front. Row-major `[80][800]`.
    pub fn features(&mut self, audio: &[f32]) -> Vec<f32> {
        let window = self.normalized_window(audio);
        self.power_spectrogram(&window);
        let mut out = vec![0f32; N_MELS * FRAMES];
        let mut max = f64::NEG_INFINITY;
        let mut logs = vec![0f64; N_MELS * FRAMES];
        for m in 0..N_MELS {
            let weights = &self.filters[m * BINS..(m + 1) * BINS];
            for t in 0..FRAMES {
                let column = &self.power[t * BINS..(t + 1) * BINS];
                let energy: f64 = weights.iter().zip(column).map(|(w, p)| w * p).sum();
                let log = energy.max(1e-10).log10();
                max = max.max(log);
                logs[m * FRAMES + t] = log;
            }
        }
        for (o, log) in out.iter_mut().zip(&logs) {
            *o = ((log.max(max - 8.0) + 4.0) / 4.0) as f32;
        }
        out
    }

    /// The last 8 s (zero-padded at the front), normalized to zero mean and unit variance
    /// in single precision, as the reference does.
    fn normalized_window(&self, audio: &[f32]) -> Vec<f32> {
        let mut window = vec![0f32; WINDOW_SAMPLES];
        let tail = &audio[audio.len().saturating_sub(WINDOW_SAMPLES)..];
        window[WINDOW_SAMPLES - tail.len()..].copy_from_slice(tail);
        let n = WINDOW_SAMPLES as f64;
        let mean = window.iter().map(|&x| x as f64).sum::<f64>() / n;
        let variance = window
            .iter()
            .map(|&x| (x as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let scale = (variance + 1e-7).sqrt();
        let (mean, scale) = (mean as f32, scale as f32);
        window.iter_mut().for_each(|x| *x = (*x - mean) / scale);
        window
    }

    /// |STFT|² of the window, centred with reflect padding: `FRAMES + 1` columns of `BINS`.
    fn power_spectrogram(&mut self, window: &[f32]) {
        let pad = N_FFT / 2;
        let n = window.len();
        for (i, slot) in self.padded.iter_mut().enumerate() {
            // Reflect padding: x[-k] = x[k], x[n-1+k] = x[n-1-k].
            let j = i as isize - pad as isize;
            let k = if j < 0 {
                (-j) as usize
            } else if j as usize >= n {
                2 * (n - 1) - j as usize
            } else {
                j as usize
            };
            *slot = window[k] as f64;
        }
        for t in 0..=FRAMES {
            let start = t * HOP;
            for (f, (x, w)) in self
                .frame
                .iter_mut()
                .zip(self.padded[start..start + N_FFT].iter().zip(&self.window))
            {
                *f = x * w;
            }
            // The plan's lengths are fixed above, so it cannot fail.
            let _ = self.fft.process(&mut self.frame, &mut self.spectrum);
            for (p, c) in self.power[t * BINS..(t + 1) * BINS]
                .iter_mut()
                .zip(&self.spectrum)
            {
                *p = c.norm_sqr();
            }
        }
    }
}

/// A periodic Hann window (as torch.hann_window): the symmetric one of `n + 1` without its
/// last point.
fn periodic_hann(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos())
        .collect()
}

fn hertz_to_mel(hz: f64) -> f64 {
    let logstep = 27.0 / 6.4f64.ln();
    if hz >= 1000.0 {
        15.0 + (hz / 1000.0).ln() * logstep
    } else {
        3.0 * hz / 200.0
    }
}

fn mel_to_hertz(mel: f64) -> f64 {
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= 15.0 {
        1000.0 * (logstep * (mel - 15.0)).exp()
    } else {
        200.0 * mel / 3.0
    }
}

/// 80 triangular Slaney-normalized mel filters over 0–8 kHz, row-major `[mel][bin]`.
fn slaney_mel_filters() -> Vec<f64> {
    let (low, high) = (hertz_to_mel(0.0), hertz_to_mel(8000.0));
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hertz(low + (high - low) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let bin_hz = |b: usize| 8000.0 * b as f64 / (BINS - 1) as f64;
    let mut filters = vec![0.0; N_MELS * BINS];
    for m in 0..N_MELS {
        let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
        let norm = 2.0 / (right - left);
        for b in 0..BINS {
            let f = bin_hz(b);
            let down = (f - left) / (centre - left);
            let up = (right - f) / (right - centre);
            filters[m * BINS + b] = down.min(up).max(0.0) * norm;
        }
    }
    filters
}

/// The model and its features: `complete(audio)` is the probability that the speaker has
/// finished their turn at the end of `audio`.
pub struct SmartTurn {
    session: Session,
    features: LogMel,
}

impl SmartTurn {
    /// Loads the model at `path` with ONNX Runtime from `onnxruntime`.
    pub fn open(path: &Path, onnxruntime: &Path, threads: usize) -> Result<Self, TurnModelError> {
        let missing = |reason: String| TurnModelError::Missing {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            return Err(missing(
                "not found; run scripts/setup.sh (it installs it into models/smart-turn/)".into(),
            ));
        }
        let environment = crate::models::onnx::environment(onnxruntime)
            .map_err(|reason| missing(format!("ONNX Runtime: {reason}")))?;
        let session = crate::models::onnx::session(environment, path, threads)
            .map_err(|e| missing(e.to_string()))?;
        if session.inputs().first().map(|i| i.name()) != Some("input_features") {
            return Err(missing("expected an input named input_features".into()));
        }
        Ok(Self {
            session,
            features: LogMel::new(),
        })
    }

    /// How likely the speaker has finished at the end of `audio` (16 kHz), 0 to 1.
    pub fn complete(&mut self, audio: &[f32]) -> Result<f32, TurnModelError> {
        let features = self.features.features(audio);
        let failed = |e: ort::Error| TurnModelError::Inference(e.to_string());
        let input = Tensor::from_array(([1usize, N_MELS, FRAMES], features)).map_err(failed)?;
        let _cores = crate::models::inference_turn();
        let outputs = self
            .session
            .run(ort::inputs!["input_features" => input])
            .map_err(failed)?;
        let (_, values) = outputs[0].try_extract_tensor::<f32>().map_err(failed)?;
        values
            .first()
            .copied()
            .ok_or_else(|| TurnModelError::Inference("the model gave no output".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_cover_the_band_and_are_area_normalized() {
        let filters = slaney_mel_filters();
        // Each triangle integrates to about 2 / (its width in Hz) × (its width / 2) × bins-per-Hz.
        for m in 0..N_MELS {
            let row = &filters[m * BINS..(m + 1) * BINS];
            assert!(row.iter().all(|w| *w >= 0.0));
            assert!(row.iter().any(|w| *w > 0.0), "filter {m} is empty");
        }
        // The first filter starts at 0 Hz, the last ends at 8 kHz.
        assert_eq!(filters[0], 0.0);
        assert_eq!(filters[(N_MELS - 1) * BINS + BINS - 1], 0.0);
    }

    #[test]
    fn features_have_the_model_s_shape_and_range() {
        let mut mel = LogMel::new();
        let tone: Vec<f32> = (0..32_000)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 16_000.0).sin() * 0.3)
            .collect();
        let f = mel.features(&tone);
        assert_eq!(f.len(), N_MELS * FRAMES);
        let max = f.iter().cloned().fold(f32::MIN, f32::max);
        let min = f.iter().cloned().fold(f32::MAX, f32::min);
        // Clamped to 8 decades below the maximum, then (x + 4) / 4: a range of 2.
        assert!((max - min - 2.0).abs() < 1e-4, "{min} .. {max}");
        // Zero-padded at the front: the first frames are the floor, the last the tone.
        let mel_440 = (0..N_MELS)
            .max_by(|&a, &b| f[a * FRAMES + 799].total_cmp(&f[b * FRAMES + 799]))
            .unwrap();
        assert!(f[mel_440 * FRAMES] < f[mel_440 * FRAMES + 799]);
        // The same audio gives the same features.
        assert_eq!(f, mel.features(&tone));
    }

    #[test]
    fn only_the_last_eight_seconds_count() {
        let mut mel = LogMel::new();
        let noise: Vec<f32> = (0..200_000u32)
            .map(|i| ((i.wrapping_mul(2_654_435_761) >> 16) as f32 / 65_536.0 - 0.5) * 0.2)
            .collect();
        assert_eq!(
            mel.features(&noise),
            mel.features(&noise[200_000 - WINDOW_SAMPLES..])
        );
    }
}
