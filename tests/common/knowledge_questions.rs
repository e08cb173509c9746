//! The validation questions about Larkspur's help document
//! (`tests/data/knowledge/larkspur-questions.jsonl`), shared by the knowledge test and bench.

use std::path::Path;

pub struct Question {
    /// "tune" or "check".
    pub split: String,
    pub text: String,
    /// Any of these in the answer makes it right (lower case); None: the document does not
    /// answer it.
    pub facts: Option<Vec<String>>,
}

/// Every question, in the file's order; `root` is the repository.
pub fn load(root: &Path) -> Vec<Question> {
    let path = root.join("tests/data/knowledge/larkspur-questions.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Question {
                split: v["split"].as_str().unwrap().to_string(),
                text: v["q"].as_str().unwrap().to_string(),
                facts: v["facts"].as_array().map(|a| {
                    a.iter()
                        .map(|f| f.as_str().unwrap().to_lowercase())
                        .collect()
                }),
            }
        })
        .collect()
}
