//! Sessions kept in this process only (lost when it exits): for tests, and for a kiosk
//! that should remember a user for the length of a run and no longer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{SessionStore, StoreError};
use crate::conversation::session::Session;

/// A store in memory. Clones share their sessions, as two processes share a database.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    sessions: Arc<Mutex<HashMap<String, (Session, i64)>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl SessionStore for MemoryStore {
    fn load(&mut self, user_id: &str) -> Result<Option<(Session, i64)>, StoreError> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        Ok(sessions.get(user_id).cloned())
    }

    fn save(&mut self, session: &Session) -> Result<(), StoreError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let saved = (session.clone(), crate::clock::now_secs());
        sessions.insert(session.user_id.clone(), saved);
        Ok(())
    }

    fn location(&self) -> String {
        "memory".into()
    }
}
