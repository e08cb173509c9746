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

/// Resamples a stream piece by piece (a microphone's callbacks, a reply's sentences) with
/// one resampler, so there are no seams between pieces. Buffers are allocated once.
pub struct StreamResampler {
    /// None when the rates are equal: samples pass through.
    fft: Option<Fft<f32>>,
    chunk: Vec<Vec<f32>>,
    filled: usize,
    out: Vec<Vec<f32>>,
    from: u32,
    to: u32,
    /// Samples taken in and given out so far, so the end of the stream comes out at the
    /// length the rates call for.
    taken: u64,
    given: u64,
}

impl StreamResampler {
    /// `chunk_ms` is the block the resampler works on: its latency.
    pub fn new(from: u32, to: u32, chunk_ms: u32) -> Result<Self, AudioError> {
        let err = |reason: String| AudioError::Resample { from, to, reason };
        if from == 0 || to == 0 {
            return Err(err("sample rate of zero".into()));
        }
        if from == to {
            return Ok(Self {
                fft: None,
                chunk: vec![Vec::new()],
                filled: 0,
                out: vec![Vec::new()],
                from,
                to,
                taken: 0,
                given: 0,
            });
        }
        let chunk_len = (from * chunk_ms / 1000).max(1) as usize;
        let fft = Fft::<f32>::new(from as usize, to as usize, chunk_len, 1, FixedSync::Input)
            .map_err(|e| err(e.to_string()))?;
        let out_len = fft.output_frames_max();
        Ok(Self {
            chunk: vec![vec![0.0; fft.input_frames_next()]],
            filled: 0,
            out: vec![vec![0.0; out_len]],
            fft: Some(fft),
            from,
            to,
            taken: 0,
            given: 0,
        })
    }

    /// The stream has ended: pushes out what the resampler held back (less than a block)
    /// and no more than the input's length at the new rate.
    pub fn finish(&mut self, output: &mut Vec<f32>) -> Result<(), AudioError> {
        let start = output.len();
        let block = self.chunk[0].len();
        let taken = self.taken;
        self.push(&vec![0.0; block], output)?;
        self.taken = taken;
        let expected = taken * self.to as u64 / self.from as u64;
        let excess = (self.given.saturating_sub(expected) as usize).min(output.len() - start);
        output.truncate(output.len() - excess);
        self.given -= excess as u64;
        Ok(())
    }

    /// Takes input samples; appends whatever output is ready to `output`.
    pub fn push(&mut self, input: &[f32], output: &mut Vec<f32>) -> Result<(), AudioError> {
        let before = output.len();
        self.taken += input.len() as u64;
        let result = self.resample(input, output);
        self.given += (output.len() - before) as u64;
        result
    }

    fn resample(&mut self, mut input: &[f32], output: &mut Vec<f32>) -> Result<(), AudioError> {
        let Some(fft) = self.fft.as_mut() else {
            output.extend_from_slice(input);
            return Ok(());
        };
        let (from, to) = (self.from, self.to);
        let err = |reason: String| AudioError::Resample { from, to, reason };
        while !input.is_empty() {
            let want = self.chunk[0].len() - self.filled;
            let n = want.min(input.len());
            self.chunk[0][self.filled..self.filled + n].copy_from_slice(&input[..n]);
            self.filled += n;
            input = &input[n..];
            if self.filled < self.chunk[0].len() {
                break;
            }
            self.filled = 0;
            let frames_in = self.chunk[0].len();
            let frames_out = self.out[0].len();
            let buf_in = SequentialSliceOfVecs::new(&self.chunk, 1, frames_in)
                .map_err(|e| err(e.to_string()))?;
            let mut buf_out = SequentialSliceOfVecs::new_mut(&mut self.out, 1, frames_out)
                .map_err(|e| err(e.to_string()))?;
            let (_, produced) = fft
                .process_into_buffer(&buf_in, &mut buf_out, None)
                .map_err(|e| err(e.to_string()))?;
            output.extend_from_slice(&self.out[0][..produced]);
        }
        Ok(())
    }
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
    fn a_finished_stream_comes_out_at_the_length_the_rates_call_for() {
        for (from, to) in [
            (22_050u32, 48_000u32),
            (16_000, 22_050),
            (24_000, 16_000),
            (16_000, 16_000),
        ] {
            let input = sine(from, 440.0, 0.73);
            let mut r = StreamResampler::new(from, to, 20).unwrap();
            let mut out = Vec::new();
            for piece in input.chunks(1000) {
                r.push(piece, &mut out).unwrap();
            }
            r.finish(&mut out).unwrap();
            let expected = input.len() as u64 * to as u64 / from as u64;
            assert_eq!(out.len() as u64, expected, "{from} → {to}");
        }
    }

    #[test]
    fn streaming_in_odd_pieces_matches_the_rate() {
        let input = sine(48_000, 440.0, 1.0);
        let mut r = StreamResampler::new(48_000, 16_000, 10).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(137) {
            r.push(piece, &mut out).unwrap();
        }
        // Everything but the last partial chunk (under 10 ms) has come out.
        assert!((15_800..=16_000).contains(&out.len()), "{}", out.len());
        let crossings = out[2000..15_000]
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        assert!((705..=725).contains(&crossings), "{crossings}");
        let mut same = StreamResampler::new(16_000, 16_000, 10).unwrap();
        let mut passed = Vec::new();
        same.push(&[0.5, 0.25], &mut passed).unwrap();
        assert_eq!(passed, vec![0.5, 0.25]);
    }

    #[test]
    fn empty_and_identity() {
        assert!(resample(&[], 44100, 16000).unwrap().is_empty());
        assert_eq!(resample(&[0.1, 0.2], 16000, 16000).unwrap(), vec![0.1, 0.2]);
        assert!(resample(&[0.1], 0, 16000).is_err());
    }
}
