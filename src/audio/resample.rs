//! Channel mixing and sample-rate conversion (rubato's FFT resampler: exact ratios,
//! band-limited, and its start-up delay trimmed so timelines stay aligned).

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler};

use super::AudioError;

/// Averages interleaved channels into one.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() / channels as f32)
        .collect()
}

/// Resamples a whole mono clip. The output has `ceil(len × to / from)` samples and no
/// leading delay.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, AudioError> {
    if from == to || samples.is_empty() {
        return Ok(samples.to_vec());
    }
    let err = |reason: String| AudioError::Resample { from, to, reason };
    if from == 0 || to == 0 {
        return Err(err("sample rate of zero".into()));
    }
    let mut resampler = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| err(e.to_string()))?;
    let channels = vec![samples.to_vec()];
    let input =
        SequentialSliceOfVecs::new(&channels, 1, samples.len()).map_err(|e| err(e.to_string()))?;
    let out = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|e| err(e.to_string()))?;
    Ok(out.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin() * 0.5)
            .collect()
    }

    #[test]
    fn downmix_averages_channels() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(downmix(&[0.25], 1), vec![0.25]);
    }

    #[test]
    fn resampling_keeps_length_and_frequency() {
        for from in [8000u32, 22050, 44100, 48000] {
            let input = sine(from, 440.0, 1.0);
            let out = resample(&input, from, 16000).unwrap();
            assert_eq!(out.len(), 16000, "from {from}");
            // A 440 Hz tone crosses zero 880 times a second.
            let crossings = out[100..15900]
                .windows(2)
                .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
                .count();
            assert!((860..=880).contains(&crossings), "from {from}: {crossings}");
        }
    }

    #[test]
    fn empty_and_identity() {
        assert!(resample(&[], 44100, 16000).unwrap().is_empty());
        assert_eq!(resample(&[0.1, 0.2], 16000, 16000).unwrap(), vec![0.1, 0.2]);
        assert!(resample(&[0.1], 0, 16000).is_err());
    }
}
