//! What `run`, `serve` and `chat` share: the domain folder, the dialogue core of one
//! conversation with its store and log, and their command-line options.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The dialogue core of one conversation with `user` (None: an anonymous one, of which
/// nothing is kept but the privacy-safe log): the domain's manager, with the conversation log,
/// and the session store when it is configured and the user is known. `kiosk`: each
/// conversation is forgotten once it is over.
pub fn dialogue_brain(
    manager: hark::dialogue::manager::DialogueManager,
    user: Option<&str>,
    kiosk: bool,
    store: &str,
    log: &str,
) -> Result<hark::dialogue::brain::DialogueBrain> {
    use hark::dialogue::brain::DialogueBrain;
    let mut brain = match user {
        Some(user) => DialogueBrain::new(manager, user),
        None => DialogueBrain::anonymous(manager),
    };
    if kiosk {
        brain = brain.forgetting_each_conversation();
    }
    if let Some(log) = conversation_log(log)? {
        brain = brain.with_log(log);
    }
    if user.is_some() {
        if let Some(store) = hark::store::open(store)? {
            brain = brain.with_store(store)?;
        }
    }
    Ok(brain)
}

/// The folder domains are looked up in: $HARK_CONFIG_DIR/domains, else ./config/domains,
/// else the user's `~/.config/hark/domains` when it exists. Domains built into hark are
/// found by name wherever this is.
pub fn domains_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HARK_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("domains");
    }
    let here = PathBuf::from("config/domains");
    if here.is_dir() {
        return here;
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|d| d.join("hark/domains"))
        .filter(|d| d.is_dir())
        .unwrap_or(here)
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
