//! ONNX Runtime, loaded once per process from the shared library that scripts/setup.sh
//! installs (`load-dynamic`: nothing is downloaded at build time). Every ONNX model hark runs
//! (the Piper voice, the sentence encoder) shares this environment.

use std::path::Path;
use std::sync::OnceLock;

static ORT_ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// The process's ONNX Runtime environment, loading `library` on first use. The error says
/// why the library could not be used.
pub fn environment(library: &Path) -> Result<&'static ort::environment::Environment, String> {
    if !library.exists() && ORT_ENVIRONMENT.get().is_none() {
        return Err("file not found".into());
    }
    ORT_ENVIRONMENT
        .get_or_init(|| {
            ort::init_from(library)
                .map_err(|e| e.to_string())?
                .with_name("hark")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A session for `model` on `threads` threads whose idle workers sleep: on a 2-core machine
/// a spinning pool starves Whisper's threads (two tests together ran 15× slower with
/// spinning).
pub fn session(
    environment: &'static ort::environment::Environment,
    model: &Path,
    threads: usize,
) -> Result<ort::session::Session, ort::Error> {
    ort::session::Session::builder(environment)?
        .with_intra_threads(threads.max(1))?
        .with_config_entry("session.intra_op.allow_spinning", "0")?
        .with_config_entry("session.inter_op.allow_spinning", "0")?
        .commit_from_file(model)
}
