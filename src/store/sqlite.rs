//! Sessions in an SQLite file (bundled SQLite: nothing to install). Each save is one
//! transaction, so a crash or a full disk leaves the previous version intact.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

use super::{decode, encode, SessionStore, StoreError};
use crate::clock::now_secs;
use crate::conversation::session::Session;

pub struct SqliteStore {
    connection: Connection,
    path: String,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let location = format!("sqlite:{}", path.display());
        let fail = |e: &dyn std::fmt::Display| StoreError::Backend {
            location: location.clone(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
        }
        let connection = Connection::open(path).map_err(|e| fail(&e))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE IF NOT EXISTS sessions (
                     user_id TEXT PRIMARY KEY,
                     session TEXT NOT NULL,
                     saved_at INTEGER NOT NULL
                 );",
            )
            .map_err(|e| fail(&e))?;
        Ok(Self {
            connection,
            path: location,
        })
    }

    fn fail(&self, e: rusqlite::Error) -> StoreError {
        StoreError::Backend {
            location: self.path.clone(),
            reason: e.to_string(),
        }
    }
}

impl SessionStore for SqliteStore {
    fn load(&mut self, user_id: &str) -> Result<Option<(Session, i64)>, StoreError> {
        let row: Option<(String, i64)> = self
            .connection
            .query_row(
                "SELECT session, saved_at FROM sessions WHERE user_id = ?1",
                params![user_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.fail(e))?;
        row.map(|(json, saved)| decode(&self.path, user_id, &json).map(|s| (s, saved)))
            .transpose()
    }

    fn save(&mut self, session: &Session) -> Result<(), StoreError> {
        self.connection
            .execute(
                "INSERT INTO sessions (user_id, session, saved_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(user_id) DO UPDATE SET session = excluded.session, saved_at = excluded.saved_at",
                params![session.user_id, encode(session), now_secs()],
            )
            .map(|_| ())
            .map_err(|e| self.fail(e))
    }

    fn location(&self) -> String {
        self.path.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_survive_reopening_the_file() {
        let dir = std::env::temp_dir().join(format!("hark-sqlite-{}", std::process::id()));
        let path = dir.join("sessions.sqlite");
        let mut session = Session::new("ana");
        session.memory.name = Some("Ana".into());
        SqliteStore::open(&path).unwrap().save(&session).unwrap();
        session.memory.outcomes.push("booked".into());
        SqliteStore::open(&path).unwrap().save(&session).unwrap();
        let (back, saved) = SqliteStore::open(&path)
            .unwrap()
            .load("ana")
            .unwrap()
            .unwrap();
        assert_eq!(back, session);
        assert!(saved > 0);
        assert!(SqliteStore::open(&path)
            .unwrap()
            .load("bob")
            .unwrap()
            .is_none());
        std::fs::remove_dir_all(dir).ok();
    }
}
