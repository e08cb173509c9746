//! CLINC150 through the real sentence encoder (MiniLM int8 on ONNX Runtime) and the intent
//! classifier, by the dataset's protocol (train on train, tune on val, score on test). The
//! floors sit a little under the measured figures (95.2 % in-scope accuracy, 72.4 %
//! out-of-scope recall), so a change that makes recognition worse fails here.

mod common;

use hark::nlu::encoder::SentenceEncoder;
use hark::nlu::{clinc, Featurizer};

#[test]
fn clinc150_in_scope_accuracy_and_out_of_scope_recall() {
    let models = common::models();
    let data_path = common::root().join("../shared/data/clinc150/data_full.json");
    let data = clinc::load(&data_path)
        .unwrap_or_else(|e| panic!("{e} (the CLINC150 data ships in shared/data)"));
    let encoder = SentenceEncoder::open(
        &models.sentence_encoder(),
        &models.sentence_encoder_vocab(),
        &models.onnxruntime(),
        2,
    )
    .expect("the sentence encoder (scripts/setup.sh installs it)");
    let mut featurizer = Featurizer::new(Some(encoder));
    let report = clinc::evaluate(&data, &mut featurizer, Default::default()).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    assert!(
        report.test.in_scope_accuracy >= 0.945,
        "in-scope accuracy {:.3}",
        report.test.in_scope_accuracy
    );
    assert!(
        report.test.oos_recall >= 0.70,
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
