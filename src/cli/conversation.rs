//! What `run`, `serve` and `chat` share: the domain folder, the dialogue core of one
//! conversation with its store and log, and their command-line options.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The dialogue core of one conversation with `user`: the domain's manager, with the
/// conversation log and the session store when they are configured.
pub fn dialogue_brain(
    manager: hark::dialogue::manager::DialogueManager,
    user: &str,
    store: &str,
    log: &str,
) -> Result<Box<dyn hark::dialogue::Brain>> {
    let mut brain = hark::dialogue::brain::DialogueBrain::new(manager, user);
    if let Some(log) = conversation_log(log)? {
        brain = brain.with_log(log);
    }
    Ok(match hark::store::open(store)? {
        Some(store) => Box::new(brain.with_store(store)?),
        None => Box::new(brain),
    })
}

/// The folder domains are looked up in: $HARK_CONFIG_DIR/domains, else ./config/domains.
pub fn domains_dir() -> PathBuf {
    std::env::var_os("HARK_CONFIG_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("config"))
        .join("domains")
}

/// The conversation log for `--log DIR` (None for `none`).
pub fn conversation_log(
    dir: &str,
) -> Result<Option<hark::telemetry::conversations::ConversationLog>> {
    if dir == "none" {
        return Ok(None);
    }
    Ok(Some(
        hark::telemetry::conversations::ConversationLog::new(Path::new(dir))
            .with_context(|| format!("conversation log folder {dir}"))?,
    ))
}
