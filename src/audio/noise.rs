//! Noisy test conditions: speech mixed with a recorded noise at a chosen signal-to-noise
//! ratio, the way Picovoice's speech-to-intent benchmark does it, so that figures compare
//! with the published ones. The SNR compares the loudest 2048-sample frame of each signal
//! (not their averages, which silence between words would skew):
//! `scale = sqrt(maxE(speech) / (maxE(noise) · 10^(snr/10)))`, then `speech + scale·noise`
//! is normalised to half of full scale.

use crate::rng::SplitMix;

/// Frame length for the energies the SNR compares.
pub const ENERGY_FRAME: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum NoiseError {
    #[error("the noise recording is silent or empty")]
    SilentNoise,
    #[error("the speech is silent or empty")]
    SilentSpeech,
}

/// The largest energy (sum of squares) of any whole frame; a signal shorter than one
/// frame counts as one frame.
pub fn max_frame_energy(samples: &[f32]) -> f64 {
    let energy = |frame: &[f32]| {
        frame
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>()
    };
    if samples.len() < ENERGY_FRAME {
        return energy(samples);
    }
    samples
        .chunks_exact(ENERGY_FRAME)
        .map(energy)
        .fold(0.0, f64::max)
}

/// `speech` with a random stretch of `noise` (looped if shorter) at `snr_db`, normalised
/// to half full scale.
pub fn mix_at_snr(
    speech: &[f32],
    noise: &[f32],
    snr_db: f64,
    rng: &mut SplitMix,
) -> Result<Vec<f32>, NoiseError> {
    if noise.is_empty() {
        return Err(NoiseError::SilentNoise);
    }
    let start = if noise.len() > speech.len() {
        rng.below(noise.len() - speech.len() + 1)
    } else {
        0
    };
    let stretch: Vec<f32> = (0..speech.len())
        .map(|i| noise[(start + i) % noise.len()])
        .collect();
    let speech_energy = max_frame_energy(speech);
    let noise_energy = max_frame_energy(&stretch);
    if speech_energy <= 0.0 {
        return Err(NoiseError::SilentSpeech);
    }
    if noise_energy <= 0.0 {
        return Err(NoiseError::SilentNoise);
    }
    let scale = (speech_energy / (noise_energy * 10f64.powf(snr_db / 10.0))).sqrt() as f32;
    let mut mixed: Vec<f32> = speech
        .iter()
        .zip(&stretch)
        .map(|(&s, &n)| s + scale * n)
        .collect();
    let peak = mixed.iter().fold(0.0f32, |m, &s| m.max(s.abs()));
    if peak > 0.0 {
        let gain = 0.5 / peak;
        mixed.iter_mut().for_each(|s| *s *= gain);
    }
    Ok(mixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(len: usize, amplitude: f32, period: usize) -> Vec<f32> {
        (0..len)
            .map(|i| amplitude * (std::f32::consts::TAU * i as f32 / period as f32).sin())
            .collect()
    }

    #[test]
    fn mixes_at_the_requested_peak_frame_snr_and_half_scale() {
        let speech = tone(16_000, 0.3, 40);
        let noise = tone(64_000, 0.9, 7);
        let mut rng = SplitMix::new(1);
        let mixed = mix_at_snr(&speech, &noise, 10.0, &mut rng).unwrap();
        let peak = mixed.iter().fold(0.0f32, |m, &s| m.max(s.abs()));
        assert!((peak - 0.5).abs() < 1e-5);
        // Undo the normalisation and take the speech out: what is left is the noise, at
        // 10 dB under the speech by peak frame energy.
        let unnormalised_gain = {
            // mixed = g·(speech + scale·noise): recover g from a least-squares fit.
            let num: f64 = mixed
                .iter()
                .zip(&speech)
                .map(|(&m, &s)| f64::from(m * s))
                .sum();
            let den: f64 = speech.iter().map(|&s| f64::from(s * s)).sum();
            num / den
        };
        let residual: Vec<f32> = mixed
            .iter()
            .zip(&speech)
            .map(|(&m, &s)| m / unnormalised_gain as f32 - s)
            .collect();
        let snr = 10.0 * (max_frame_energy(&speech) / max_frame_energy(&residual)).log10();
        assert!((snr - 10.0).abs() < 0.2, "snr {snr}");
    }

    #[test]
    fn same_seed_same_stretch_and_silence_is_an_error() {
        let speech = tone(8_000, 0.3, 40);
        let noise: Vec<f32> = (0..50_000)
            .map(|i| ((i * 7919) % 200) as f32 / 200.0 - 0.5)
            .collect();
        let a = mix_at_snr(&speech, &noise, 6.0, &mut SplitMix::new(9)).unwrap();
        let b = mix_at_snr(&speech, &noise, 6.0, &mut SplitMix::new(9)).unwrap();
        assert_eq!(a, b);
        assert!(matches!(
            mix_at_snr(&speech, &[0.0; 100], 6.0, &mut SplitMix::new(9)),
            Err(NoiseError::SilentNoise)
        ));
        assert!(matches!(
            mix_at_snr(&[0.0; 100], &noise, 6.0, &mut SplitMix::new(9)),
            Err(NoiseError::SilentSpeech)
        ));
    }
}
