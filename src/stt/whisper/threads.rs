//! How many threads a decode may use right now. ggml's worker threads spin-wait at every
//! graph barrier, so a decode with more threads than there are free cores waits on threads
//! the kernel has descheduled: with two busy processes beside it on 2 cores, a 2-thread
//! decode takes many times longer than a 1-thread one. Before each decode the budget looks
//! at how busy the machine's cores were lately, leaving out this process's own use.

use std::time::{Duration, Instant};

/// Readings closer together than this say too little about the load.
const MIN_WINDOW: Duration = Duration::from_millis(300);

#[derive(Debug, Clone, Copy)]
struct CpuReading {
    at: Instant,
    /// Jiffies all cores spent busy, and in all.
    busy: u64,
    total: u64,
    /// Jiffies this process used.
    own: u64,
}

/// The thread count for the next decode: at most `max`, at least 1, and no more than the
/// cores the rest of the machine leaves free.
#[derive(Debug)]
pub struct ThreadBudget {
    max: usize,
    cores: usize,
    adaptive: bool,
    last: Option<CpuReading>,
    current: usize,
}

impl ThreadBudget {
    /// A budget that follows the machine's load (where /proc can be read).
    pub fn adaptive(max: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            max: max.max(1),
            cores,
            adaptive: true,
            // A first reading now, so the first decode is already sized to the load.
            last: read_cpu(),
            current: max.max(1),
        }
    }

    /// Always `threads`.
    pub fn fixed(threads: usize) -> Self {
        Self {
            max: threads.max(1),
            cores: threads.max(1),
            adaptive: false,
            last: None,
            current: threads.max(1),
        }
    }

    /// Threads to decode with now.
    pub fn threads(&mut self) -> usize {
        if !self.adaptive {
            return self.max;
        }
        let Some(now) = read_cpu() else {
            return self.max;
        };
        match self.last {
            Some(last) if now.at.duration_since(last.at) >= MIN_WINDOW => {
                self.current = threads_for(self.max, self.cores, &last, &now);
                self.last = Some(now);
            }
            Some(_) => {}
            None => self.last = Some(now),
        }
        self.current
    }
}

/// The threads that fit in the cores others left free between two readings.
fn threads_for(max: usize, cores: usize, before: &CpuReading, after: &CpuReading) -> usize {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return max;
    }
    let busy = after.busy.saturating_sub(before.busy);
    let own = after.own.saturating_sub(before.own);
    let others = busy.saturating_sub(own) as f64 / total as f64 * cores as f64;
    let free = cores as f64 - others;
    (free + 0.5).floor().clamp(1.0, max as f64) as usize
}

fn read_cpu() -> Option<CpuReading> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let (busy, total) = parse_proc_stat(&stat)?;
    let own = parse_self_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(CpuReading {
        at: Instant::now(),
        busy,
        total,
        own,
    })
}

/// Busy and total jiffies of all cores, from /proc/stat's first line.
fn parse_proc_stat(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal …; guest time is already in user.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// This process's user + system jiffies, from /proc/self/stat (fields 14 and 15; the
/// command name in field 2 may hold spaces, so fields are counted after its ')').
fn parse_self_stat(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name, field 3 (state) is index 0: utime (14) is index 11, stime 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(busy: u64, total: u64, own: u64) -> CpuReading {
        CpuReading {
            at: Instant::now(),
            busy,
            total,
            own,
        }
    }

    #[test]
    fn free_cores_decide_the_threads() {
        let start = reading(0, 0, 0);
        // Idle machine, 2 cores: both free.
        assert_eq!(threads_for(2, 2, &start, &reading(5, 200, 0)), 2);
        // This process alone was busy: its own use does not count against it.
        assert_eq!(threads_for(2, 2, &start, &reading(190, 200, 185)), 2);
        // One other process keeps a core busy: one thread.
        assert_eq!(threads_for(2, 2, &start, &reading(100, 200, 0)), 1);
        // Two busy processes beside it: still one thread, never none.
        assert_eq!(threads_for(2, 2, &start, &reading(200, 200, 0)), 1);
        // Never more than asked for.
        assert_eq!(threads_for(2, 8, &start, &reading(0, 800, 0)), 2);
    }

    #[test]
    fn reads_the_proc_formats() {
        let stat = "cpu  100 5 50 800 20 1 2 3 0 0\ncpu0 50 2 25 400 10 0 1 1 0 0\n";
        assert_eq!(parse_proc_stat(stat), Some((161, 981)));
        let own = "1234 (hark (test) x) S 1 2 3 4 5 6 7 8 9 10 42 8 0 0 20 0";
        assert_eq!(parse_self_stat(own), Some(50));
        assert_eq!(parse_proc_stat("nonsense"), None);
        assert_eq!(parse_self_stat("no parenthesis"), None);
    }

    #[test]
    fn a_fixed_budget_does_not_move() {
        assert_eq!(ThreadBudget::fixed(3).threads(), 3);
        assert_eq!(ThreadBudget::fixed(0).threads(), 1);
    }
}
