//! Failed authentications by address: a few are mistakes, many are someone guessing. Past
//! `FREE` failures in a minute each further try from that address waits a little longer
//! (up to 1 s), and past `BLOCK_AFTER` the address is refused (429) for a minute. A success
//! forgets the address's failures. The decision is a pure function of the record and the
//! time, so it is tested without waiting.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures within a window before tries are slowed.
const FREE: u32 = 10;
/// Failures within a window before the address is refused.
const BLOCK_AFTER: u32 = 20;
const WINDOW: Duration = Duration::from_secs(60);
const BLOCK: Duration = Duration::from_secs(60);
const STEP: Duration = Duration::from_millis(50);
const MAX_DELAY: Duration = Duration::from_secs(1);
/// Addresses remembered at most (the oldest are forgotten first).
const MAX_ADDRESSES: usize = 10_000;

/// What to do with a try from an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Answer after this long.
    Slow(Duration),
    /// Refuse for this much longer.
    Refuse(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    since: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

impl Record {
    fn verdict(&self, now: Instant) -> Verdict {
        if let Some(until) = self.blocked_until.filter(|&u| u > now) {
            return Verdict::Refuse(until - now);
        }
        if now.duration_since(self.since) >= WINDOW || self.failures < FREE {
            return Verdict::Allow;
        }
        Verdict::Slow((STEP * (self.failures - FREE + 1)).min(MAX_DELAY))
    }

    fn failed(&mut self, now: Instant) {
        if now.duration_since(self.since) >= WINDOW {
            *self = Record::new(now);
        }
        self.failures += 1;
        if self.failures >= BLOCK_AFTER {
            self.blocked_until = Some(now + BLOCK);
        }
    }

    fn new(now: Instant) -> Self {
        Self {
            since: now,
            failures: 0,
            blocked_until: None,
        }
    }
}

/// Failed authentications, shared by every connection of a listener.
#[derive(Debug, Default)]
pub struct AuthFailures {
    records: Mutex<HashMap<IpAddr, Record>>,
}

/// The process's record (one serve listener per process).
pub fn auth_failures() -> &'static AuthFailures {
    static FAILURES: std::sync::OnceLock<AuthFailures> = std::sync::OnceLock::new();
    FAILURES.get_or_init(AuthFailures::default)
}

/// The 429 for an address refused for `left`.
fn refused(left: Duration) -> super::http::Answer {
    super::http::Answer::text(
        429,
        "too many failed authentications from this address; try again later\n",
    )
    .with_header(format!("Retry-After: {}", left.as_secs().max(1)))
}

/// Waits or refuses as the address's record says, before its credentials are read (None:
/// go on; Some: the refusal to send).
pub async fn before_credentials(peer: std::net::SocketAddr) -> Option<super::http::Answer> {
    match auth_failures().verdict(peer.ip(), Instant::now()) {
        Verdict::Allow => None,
        Verdict::Slow(wait) => {
            tokio::time::sleep(wait).await;
            None
        }
        Verdict::Refuse(left) => {
            crate::telemetry::metrics::global().security("address_refused");
            tracing::warn!(%peer, retry_after_s = left.as_secs(), "refused: too many failed authentications");
            Some(refused(left))
        }
    }
}

/// Records a failed authentication (the reason, never the credential).
pub fn failed(peer: std::net::SocketAddr, reason: &str) {
    crate::telemetry::metrics::global().security("auth_failed");
    tracing::warn!(%peer, reason, "authentication failed");
    if auth_failures().failed(peer.ip(), Instant::now()) {
        tracing::warn!(%peer, "address refused for a minute after repeated failed authentications");
    }
}

impl AuthFailures {
    pub fn verdict(&self, peer: IpAddr, now: Instant) -> Verdict {
        self.lock()
            .get(&peer)
            .map_or(Verdict::Allow, |r| r.verdict(now))
    }

    /// Notes a failure; returns whether the address is now refused.
    pub fn failed(&self, peer: IpAddr, now: Instant) -> bool {
        let mut records = self.lock();
        if records.len() >= MAX_ADDRESSES && !records.contains_key(&peer) {
            let oldest = records.iter().min_by_key(|(_, r)| r.since).map(|(a, _)| *a);
            if let Some(oldest) = oldest {
                records.remove(&oldest);
            }
        }
        let record = records.entry(peer).or_insert_with(|| Record::new(now));
        record.failed(now);
        matches!(record.verdict(now), Verdict::Refuse(_))
    }

    pub fn succeeded(&self, peer: IpAddr) {
        self.lock().remove(&peer);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Record>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Connections from one address (in their handshake, or open at all): a few at once are a
/// browser opening tabs or a Home Assistant running a pipeline, dozens are someone holding the
/// server's connection slots (requests sent a byte at a time, idle sockets).
#[derive(Debug, Default, Clone)]
pub struct PerAddress {
    open: std::sync::Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place among its address's, given back when dropped.
#[derive(Debug)]
pub struct AddressPlace {
    open: std::sync::Arc<Mutex<HashMap<IpAddr, usize>>>,
    peer: IpAddr,
}

impl PerAddress {
    /// A place for a new connection from `peer`, if it has fewer than `max` (0: no limit).
    pub fn start(&self, peer: IpAddr, max: usize) -> Option<AddressPlace> {
        let mut open = lock(&self.open);
        let count = open.entry(peer).or_default();
        if max > 0 && *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressPlace {
            open: self.open.clone(),
            peer,
        })
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(count) = open.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.peer);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_few_mistakes_are_free_then_tries_slow_then_stop() {
        let guard = AuthFailures::default();
        let t0 = Instant::now();
        for _ in 0..FREE - 1 {
            guard.failed(peer(1), t0);
        }
        assert_eq!(guard.verdict(peer(1), t0), Verdict::Allow);
        guard.failed(peer(1), t0);
        assert_eq!(guard.verdict(peer(1), t0), Verdict::Slow(STEP));
        for _ in FREE..BLOCK_AFTER - 1 {
            assert!(!guard.failed(peer(1), t0));
        }
        assert!(matches!(guard.verdict(peer(1), t0), Verdict::Slow(d) if d <= MAX_DELAY));
        assert!(guard.failed(peer(1), t0), "the twentieth failure refuses");
        assert_eq!(guard.verdict(peer(1), t0), Verdict::Refuse(BLOCK));
        // Another address is not touched, and the refusal ends.
        assert_eq!(guard.verdict(peer(2), t0), Verdict::Allow);
        assert_eq!(guard.verdict(peer(1), t0 + BLOCK), Verdict::Allow);
    }

    #[test]
    fn an_address_holds_a_few_places_at_once_and_gets_them_back() {
        let places = PerAddress::default();
        let held: Vec<_> = (0..3).map(|_| places.start(peer(1), 3)).collect();
        assert!(held.iter().all(Option::is_some));
        assert!(places.start(peer(1), 3).is_none());
        assert!(places.start(peer(2), 3).is_some(), "others are not touched");
        drop(held);
        assert!(places.start(peer(1), 3).is_some());
        assert!(
            places.open.lock().unwrap().is_empty(),
            "nothing left behind"
        );
    }

    #[test]
    fn failures_age_out_and_a_success_forgets_them() {
        let guard = AuthFailures::default();
        let t0 = Instant::now();
        for _ in 0..FREE {
            guard.failed(peer(1), t0);
        }
        assert_ne!(guard.verdict(peer(1), t0), Verdict::Allow);
        assert_eq!(guard.verdict(peer(1), t0 + WINDOW), Verdict::Allow);
        guard.succeeded(peer(1));
        assert_eq!(guard.verdict(peer(1), t0), Verdict::Allow);
    }
}
