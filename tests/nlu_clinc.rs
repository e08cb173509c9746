//! CLINC150 through the real sentence encoder (MiniLM int8 on ONNX Runtime) and the intent
//! classifier, by the dataset's protocol (train on train, tune on val, score on test), on a
//! fixed quarter of every split (every fourth query): a quarter of the time of the full run
//! (`hark nlu eval`, whose figures the benchmarks page reports), with floors a little under
//! what this subset measures (92.1 % and 67.2 %), so that a change that makes recognition worse fails here.

mod common;

use hark::nlu::encoder::SentenceEncoder;
use hark::nlu::{clinc, Featurizer};

#[test]
fn clinc150_in_scope_accuracy_and_out_of_scope_recall() {
    let models = common::models();
    let data_path = common::root().join("../shared/data/clinc150/data_full.json");
    let full = clinc::load(&data_path)
        .unwrap_or_else(|e| panic!("{e} (the CLINC150 data ships in shared/data)"));
    let quarter = |split: &[(String, String)]| split.iter().step_by(4).cloned().collect();
    let data = clinc::ClincData {
        train: quarter(&full.train),
        val: quarter(&full.val),
        test: quarter(&full.test),
        oos_train: quarter(&full.oos_train),
        oos_val: quarter(&full.oos_val),
        oos_test: quarter(&full.oos_test),
    };
    let encoder = SentenceEncoder::from_models(&models, 2)
        .expect("the sentence encoder (scripts/setup.sh installs it)");
    let mut featurizer = Featurizer::new(Some(encoder));
    let report = clinc::evaluate(&data, &mut featurizer, Default::default()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(
        report.test.in_scope_accuracy >= 0.91,
        "in-scope accuracy {:.3}",
        report.test.in_scope_accuracy
    );
    assert!(
        report.test.oos_recall >= 0.64,
        "out-of-scope recall {:.3}",
        report.test.oos_recall
    );
}

#[test]
fn a_missing_or_wrong_data_file_is_a_clear_error() {
    let dir = common::temp_dir("clinc-bad");
    let missing = clinc::load(&dir.join("nope.json")).unwrap_err().to_string();
    assert!(missing.contains("nope.json"), "{missing}");
    std::fs::write(dir.join("bad.json"), r#"{"train": [["hi", "greet"]]}"#).unwrap();
    let wrong = clinc::load(&dir.join("bad.json")).unwrap_err().to_string();
    assert!(wrong.contains("val"), "{wrong}");
    std::fs::remove_dir_all(dir).ok();
}
