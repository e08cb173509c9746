//! Where conversations are kept between turns, processes and machines: the
//! [`SessionStore`] trait, with SQLite (embedded, the default) and Redis (several hark
//! instances sharing their users) behind it.
//!
//! A stored session holds the user's long-term memory (name, preferences, past outcomes)
//! and the conversation in progress (active flow, slots, pending confirmation, recent
//! turns). A conversation picked up within [`RESUME_WINDOW_SECS`] continues where it was;
//! after that only the memory carries over to a fresh conversation.

pub mod memory;
pub mod redis;
pub mod sqlite;

use crate::conversation::session::Session;

/// How long a conversation in progress can be picked up again.
pub const RESUME_WINDOW_SECS: i64 = 15 * 60;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store {location}: {reason}")]
    Backend { location: String, reason: String },
    #[error("session store {location}: stored session for '{user}' is unreadable: {reason}")]
    Corrupt {
        location: String,
        user: String,
        reason: String,
    },
    #[error("unknown session store '{0}': use sqlite:PATH, redis://HOST:PORT, memory or none")]
    UnknownKind(String),
}

/// Keeps sessions by user id.
pub trait SessionStore: Send {
    /// The stored session and when it was saved (Unix seconds), if any.
    fn load(&mut self, user_id: &str) -> Result<Option<(Session, i64)>, StoreError>;
    fn save(&mut self, session: &Session) -> Result<(), StoreError>;
    /// Where the store is, for messages.
    fn location(&self) -> String;
}

/// The session to continue with for `user_id`: the stored one if it is recent, else a new
/// one that keeps the stored memory.
pub fn resume(store: &mut dyn SessionStore, user_id: &str) -> Result<Session, StoreError> {
    Ok(match store.load(user_id)? {
        Some((session, saved))
            if crate::clock::now_secs() - saved <= RESUME_WINDOW_SECS && !session.ended =>
        {
            session
        }
        Some((old, _)) => Session {
            memory: old.memory,
            ..Session::new(user_id)
        },
        None => Session::new(user_id),
    })
}

/// Opens a store from its description: `sqlite:PATH`, `redis://HOST:PORT[/DB]`, `memory`
/// (this process only) or `none`.
pub fn open(spec: &str) -> Result<Option<Box<dyn SessionStore>>, StoreError> {
    match spec {
        "none" => return Ok(None),
        "memory" => return Ok(Some(Box::new(memory::MemoryStore::new()))),
        _ => {}
    }
    if let Some(path) = spec.strip_prefix("sqlite:") {
        return Ok(Some(Box::new(sqlite::SqliteStore::open(
            std::path::Path::new(path),
        )?)));
    }
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        return Ok(Some(Box::new(redis::RedisStore::open(spec)?)));
    }
    Err(StoreError::UnknownKind(spec.to_string()))
}

fn encode(session: &Session) -> String {
    serde_json::to_string(session).unwrap_or_default()
}

fn decode(location: &str, user: &str, json: &str) -> Result<Session, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        location: location.to_string(),
        user: user.to_string(),
        reason: e.to_string(),
    })
}
