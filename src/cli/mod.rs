//! Command implementations that grew past a few lines, one file per area.

pub mod serve;
pub mod spoken;

/// The line for a file that failed: its path, then the error, naming the path once (reading
/// errors already name it).
pub fn file_error(file: &std::path::Path, error: &anyhow::Error) -> String {
    let message = format!("{error:#}");
    let path = file.display().to_string();
    if message.contains(&path) {
        message
    } else {
        format!("{path}: {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_file_is_named_once() {
        let file = std::path::Path::new("/tmp/x.wav");
        let read = anyhow::anyhow!("/tmp/x.wav: no such file");
        assert_eq!(file_error(file, &read), "/tmp/x.wav: no such file");
        let decode = anyhow::anyhow!("transcription failed");
        assert_eq!(
            file_error(file, &decode),
            "/tmp/x.wav: transcription failed"
        );
    }
}
