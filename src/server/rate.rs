//! How many conversations one token (or, without tokens, one address) may start per minute:
//! a script gone wrong cannot take every conversation slot over and over.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct StartRate {
    per_minute: usize,
    starts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl StartRate {
    /// At most `per_minute` starts in any minute per key (0: no limit).
    pub fn new(per_minute: usize) -> Self {
        Self {
            per_minute,
            starts: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `who` may start a conversation at `now` (counted if so).
    pub fn allow(&self, who: &str, now: Instant) -> bool {
        if self.per_minute == 0 {
            return true;
        }
        let mut starts = self.starts.lock().unwrap_or_else(|p| p.into_inner());
        // Keys whose starts are all old go, so the map stays as small as the busy minute.
        starts.retain(|_, s| s.back().is_some_and(|t| now.duration_since(*t) < WINDOW));
        let recent = starts.entry(who.to_string()).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= self.per_minute {
            return false;
        }
        recent.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_gets_its_starts_per_minute() {
        let rate = StartRate::new(2);
        let t = Instant::now();
        assert!(rate.allow("ana", t));
        assert!(rate.allow("ana", t + Duration::from_secs(1)));
        assert!(!rate.allow("ana", t + Duration::from_secs(2)));
        assert!(
            rate.allow("bob", t + Duration::from_secs(2)),
            "another token"
        );
        assert!(
            rate.allow("ana", t + Duration::from_secs(61)),
            "a minute later"
        );
        assert!(StartRate::new(0).allow("x", t));
    }
}
