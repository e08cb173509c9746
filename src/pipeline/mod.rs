//! The real-time pipeline: microphone → VAD and endpointing → streaming recognizer → turn
//! machine → brain (on its own thread) → streaming synthesizer → speaker.
//!
//! - `voice_loop`: the loop that owns the 20 ms timeline and carries out decisions;
//! - `turn`: turn-taking and barge-in as a pure state machine;
//! - `playback`: the reply's audio and what of it the user has heard;
//! - `reply`: the brain's worker thread;
//! - `backchannel`: which words over a reply are only acknowledgement.

pub mod backchannel;
pub mod playback;
pub mod reply;
pub mod turn;
pub mod voice_loop;

pub use voice_loop::{run_voice_loop, Engines, LoopConfig, LoopError, RunSummary};
