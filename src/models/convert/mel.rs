//! The Slaney-style mel filterbank Whisper was trained with (librosa.filters.mel with its
//! defaults: Slaney mel scale, area normalisation), computed in f64 and stored as f32.

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    (6.4f64).ln() / 27.0
}

pub fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

pub fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        F_SP * mel
    }
}

/// `n_mels × (n_fft/2 + 1)` weights, row-major, for frequencies 0 … sample_rate/2.
pub fn slaney_mel_filterbank(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let n_freq = n_fft / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_freq)
        .map(|i| i as f64 * (sample_rate / 2.0) / (n_freq - 1) as f64)
        .collect();
    let (mel_lo, mel_hi) = (hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0));
    let mel_points: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(mel_lo + (mel_hi - mel_lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut weights = vec![0f32; n_mels * n_freq];
    for m in 0..n_mels {
        let (lo, center, hi) = (mel_points[m], mel_points[m + 1], mel_points[m + 2]);
        let norm = 2.0 / (hi - lo);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - lo) / (center - lo);
            let upper = (hi - f) / (hi - center);
            weights[m * n_freq + k] = (lower.min(upper).max(0.0) * norm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_scale_round_trips() {
        for hz in [0.0, 200.0, 999.0, 1000.0, 4000.0, 8000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9);
        }
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
    }

    #[test]
    fn whisper_filterbank_matches_librosa_reference_points() {
        let w = slaney_mel_filterbank(16000.0, 400, 80);
        assert_eq!(w.len(), 80 * 201);
        // librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)[0, 1] == 0.02486259
        assert!((w[1] - 0.024_862_59).abs() < 1e-6, "{}", w[1]);
        // Every filter has some weight, and the DC bin belongs to none.
        for m in 0..80 {
            assert!(w[m * 201..(m + 1) * 201].iter().any(|&x| x > 0.0));
            assert_eq!(w[m * 201], 0.0);
        }
    }
}
