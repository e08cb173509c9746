//! Sessions in Redis, so several hark instances behind a load balancer share their users:
//! one key per user (`hark:session:USER`) holding the session and when it was saved.

use redis::Commands;

use super::{decode, encode, SessionStore, StoreError};
use crate::clock::now_secs;
use crate::conversation::session::Session;

pub struct RedisStore {
    connection: redis::Connection,
    url: String,
}

fn key(user_id: &str) -> String {
    format!("hark:session:{user_id}")
}

impl RedisStore {
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let fail = |e: redis::RedisError| StoreError::Backend {
            location: url.to_string(),
            reason: e.to_string(),
        };
        let client = redis::Client::open(url).map_err(fail)?;
        let connection = client
            .get_connection_with_timeout(std::time::Duration::from_secs(3))
            .map_err(fail)?;
        Ok(Self {
            connection,
            url: url.to_string(),
        })
    }

    fn fail(&self, e: redis::RedisError) -> StoreError {
        StoreError::Backend {
            location: self.url.clone(),
            reason: e.to_string(),
        }
    }
}

impl SessionStore for RedisStore {
    fn load(&mut self, user_id: &str) -> Result<Option<(Session, i64)>, StoreError> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(key(user_id))
            .arg("session")
            .arg("saved_at")
            .query(&mut self.connection)
            .map_err(|e| self.fail(e))?;
        match fields.as_slice() {
            [Some(json), saved] => {
                let saved = saved.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
                decode(&self.url, user_id, json).map(|s| Some((s, saved)))
            }
            _ => Ok(None),
        }
    }

    fn save(&mut self, session: &Session) -> Result<(), StoreError> {
        let saved_at = now_secs().to_string();
        let fields = [("session", encode(session)), ("saved_at", saved_at)];
        self.connection
            .hset_multiple::<_, _, _, ()>(key(&session.user_id), &fields)
            .map_err(|e| self.fail(e))
    }

    fn location(&self) -> String {
        self.url.clone()
    }
}
