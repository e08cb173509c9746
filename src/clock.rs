//! Time as hark reads it: the wall clock for records, and the voice loop's clock, which
//! is real time for a microphone and simulated time for tests (a conversation of fake
//! engines runs in milliseconds, every decision on the same 20 ms timeline).

/// Unix seconds now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// How long simulated time waits for an engine's answer before calling the engine stuck.
pub const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// How the voice loop's 20 ms frames follow the wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    /// A frame every 20 ms, paced by the audio device (or a paced file), with the engines
    /// working in the background as the frames go by.
    #[default]
    RealTime,
    /// Frames as fast as the work allows: whatever the loop asks of an engine (a decode,
    /// a reply, a sentence's audio) is finished before the next frame, as if it took no
    /// time. The same input gives the same conversation on every run, on any machine.
    Simulated,
}

impl Clock {
    pub fn is_simulated(self) -> bool {
        self == Clock::Simulated
    }

    /// Lets one frame of time pass while the loop has no input to pace it (draining a reply
    /// after the input ended): 20 ms in real time, nothing in simulated time.
    pub fn idle_frame(self, frame_ms: u64) {
        if self == Clock::RealTime {
            std::thread::sleep(std::time::Duration::from_millis(frame_ms));
        }
    }
}
