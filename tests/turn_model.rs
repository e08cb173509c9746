//! The end-of-turn model (Smart Turn v3.2) checked against its reference: the features and
//! the probabilities below were computed by Pipecat 1.14's own Python preprocessing
//! (`_whisper_features.py`, NumPy) and ONNX Runtime 1.31 on real coffee orders from
//! `shared/data/barista/dev`, whole and cut at a hesitation in the middle of the sentence.

mod common;

use hark::audio::wav;
use hark::vad::smart_turn::{LogMel, SmartTurn};

/// A recording (cut at a hesitation, or whole) and what the reference computed for it: the
/// probability of a finished turn, and the features' sum and three of their values.
struct Case {
    name: &'static str,
    cut: Option<f64>,
    complete: f32,
    sum: f64,
    first: f32,
    last: f32,
    middle: f32,
}

const REFERENCE: &[Case] = &[
    Case {
        name: "0075d273-51bb-47cb-b323-4437bd0de029.wav",
        cut: None,
        complete: 0.969_707,
        sum: 15196.572,
        first: -0.001_703,
        last: -0.036_359,
        middle: 1.599_898,
    },
    Case {
        name: "0075d273-51bb-47cb-b323-4437bd0de029.wav",
        cut: Some(2.36),
        complete: 0.008_780,
        sum: 7921.557,
        first: -0.056_696,
        last: 0.079_727,
        middle: -0.056_703,
    },
    Case {
        name: "062998e3-3f9a-49ac-aaae-d7ade473817d.wav",
        cut: None,
        complete: 0.942_486,
        sum: 17863.873,
        first: 0.690_727,
        last: -0.007_340,
        middle: -0.007_340,
    },
    Case {
        name: "062998e3-3f9a-49ac-aaae-d7ade473817d.wav",
        cut: Some(1.70),
        complete: 0.009_493,
        sum: 7207.951,
        first: -0.054_133,
        last: 0.062_248,
        middle: -0.054_133,
    },
    Case {
        name: "062998e3-3f9a-49ac-aaae-d7ade473817d.wav",
        cut: Some(3.16),
        complete: 0.966_036,
        sum: 12537.182,
        first: -0.029_348,
        last: -0.020_234,
        middle: -0.113_208,
    },
];

fn recording(name: &str, cut: Option<f64>) -> Vec<f32> {
    let path = common::root().join("../shared/data/barista/dev").join(name);
    let pcm = wav::read_wav(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(pcm.sample_rate, 16_000);
    let mut samples = pcm.interleaved;
    if let Some(seconds) = cut {
        samples.truncate((seconds * 16_000.0) as usize);
    }
    samples
}

#[test]
fn the_features_match_the_reference_preprocessing() {
    let mut mel = LogMel::new();
    for &Case {
        name,
        cut,
        sum,
        first,
        last,
        middle,
        ..
    } in REFERENCE
    {
        let f = mel.features(&recording(name, cut));
        let total: f64 = f.iter().map(|&x| x as f64).sum();
        assert!(
            (total - sum).abs() < sum.abs() * 1e-4,
            "{name} {cut:?}: sum {total} vs {sum}"
        );
        for (at, want) in [(0, first), (79 * 800 + 799, last), (40 * 800 + 400, middle)] {
            assert!(
                (f[at] - want).abs() < 1e-3,
                "{name} {cut:?} [{at}]: {} vs {want}",
                f[at]
            );
        }
    }
}

#[test]
fn the_model_hears_a_finished_order_and_one_cut_off_mid_sentence_as_the_reference_does() {
    let models = common::models();
    let mut model = SmartTurn::open(&models.smart_turn(), &models.onnxruntime(), 1)
        .expect("scripts/setup.sh installs the end-of-turn model");
    for &Case {
        name,
        cut,
        complete: p,
        ..
    } in REFERENCE
    {
        let got = model.complete(&recording(name, cut)).unwrap();
        assert!((got - p).abs() < 0.01, "{name} {cut:?}: {got} vs {p}");
    }
}

#[test]
fn a_missing_model_is_a_clear_error() {
    let models = common::models();
    let error = SmartTurn::open(
        std::path::Path::new("/nonexistent/smart-turn.onnx"),
        &models.onnxruntime(),
        1,
    )
    .err()
    .expect("no model there")
    .to_string();
    assert!(error.contains("scripts/setup.sh"), "{error}");
}
