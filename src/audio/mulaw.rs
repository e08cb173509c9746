//! G.711 μ-law, the telephone network's 8-bit sample encoding (Twilio Media Streams carry it):
//! 14 bits of dynamic range in 8, more steps near silence than near full scale.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32_635;

/// One 16-bit sample as μ-law.
pub fn encode(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    // The highest set bit is 7..=14: its place past 7 is the segment.
    let exponent = 31 - (s as u32).leading_zeros() as i32 - 7;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// One μ-law byte as a 16-bit sample.
pub fn decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// μ-law bytes as samples in [-1, 1].
pub fn decode_to_f32(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(bytes.iter().map(|&b| decode(b) as f32 / 32_768.0));
}

/// Samples in [-1, 1] as μ-law bytes.
pub fn encode_from_f32(samples: &[f32], out: &mut Vec<u8>) {
    out.extend(samples.iter().map(|&s| encode(super::wav::to_i16(s))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_and_full_scale_are_the_g711_codes() {
        assert_eq!(encode(0), 0xFF);
        assert_eq!(decode(0xFF), 0);
        assert_eq!(encode(i16::MAX), 0x80);
        assert_eq!(decode(0x80), 32_124);
        assert_eq!(encode(i16::MIN), 0x00);
        assert_eq!(decode(0x00), -32_124);
    }

    #[test]
    fn every_sample_comes_back_within_its_segments_step() {
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let back = decode(encode(s)) as i32;
            let s = (s as i32).clamp(-32_124, 32_124);
            // Steps double per segment: 8 near zero, 1024 at the top; rounding is half.
            let step = ((s.abs() + BIAS) >> 4).max(8);
            assert!((back - s).abs() <= step, "{s} → {back}");
        }
        for byte in 0..=255u8 {
            let again = encode(decode(byte));
            // 0x7F and 0xFF are both zero.
            assert!(again == byte || decode(again) == decode(byte), "{byte:#x}");
        }
    }
}
