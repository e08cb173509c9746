//! Banking77 through `hark nlu eval --format banking77`, the command that scores a test file,
//! with the real sentence encoder. The official test set is held out, so this trains on a
//! fixed third of the training part of the validation split and scores the validation part:
//! a smaller run than the full one in the README (which trains on all of the training part),
//! with a floor a little under what it measured (89.5 %), so that a change that makes
//! recognition of real customer text worse fails here.

mod common;

use std::process::Command;

use hark::nlu::banking77;

fn write_csv(path: &std::path::Path, rows: &[(String, String)]) {
    let mut writer = csv::Writer::from_path(path).unwrap();
    writer.write_record(["text", "category"]).unwrap();
    for (text, category) in rows {
        writer.write_record([text, category]).unwrap();
    }
    writer.flush().unwrap();
}

#[test]
fn banking77_accuracy_on_held_out_queries() {
    let rows = banking77::load(&common::root().join("../shared/data/banking77/train.csv"))
        .unwrap_or_else(|e| panic!("{e} (the Banking77 data ships in shared/data)"));
    let (train, val) = banking77::validation_split(&rows);
    let subset: Vec<_> = train.into_iter().step_by(3).collect();
    let dir = common::temp_dir("banking77");
    write_csv(&dir.join("train.csv"), &subset);
    write_csv(&dir.join("test.csv"), &val);
    let models = common::models();
    let out = Command::new(common::hark_bin())
        .args(["--models", models.root.to_str().unwrap(), "--threads", "2"])
        .args(["nlu", "eval", "--format", "banking77", "--train"])
        .arg(dir.join("train.csv"))
        .arg("--test")
        .arg(dir.join("test.csv"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
    let accuracy: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("test: accuracy "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("no 'test: accuracy X %' line in {stdout}"));
    assert!(accuracy >= 88.0, "accuracy {accuracy} %");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_missing_test_file_or_a_wrong_format_is_a_clear_error() {
    let dir = common::temp_dir("banking77-bad");
    std::fs::write(dir.join("clinc.json"), "{}").unwrap();
    let out = Command::new(common::hark_bin())
        .args(["nlu", "eval", "--format", "banking77", "--train"])
        .arg(dir.join("clinc.json"))
        .arg("--test")
        .arg(dir.join("nope.csv"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("clinc.json") && err.contains("text,category"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).ok();
}
