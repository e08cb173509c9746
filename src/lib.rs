//! hark — a low-latency voice assistant.
//!
//! Pipeline stages live in one module each: [`audio`] (files, devices, resampling),
//! [`stt`] (speech-to-text), [`tts`] (text-to-speech) and [`telemetry`] (measurements);
//! [`models`] provisions the model files they load.

pub mod audio;
pub mod clock;
pub mod cloud;
pub mod config;
pub mod conversation;
pub mod dialogue;
pub mod domain;
pub mod engines;
pub mod knowledge;
pub mod models;
pub mod nlu;
pub mod pipeline;
pub mod rng;
pub mod server;
pub mod spoken;
pub mod store;
pub mod stt;
pub mod telemetry;
pub mod tts;
pub mod vad;
pub mod wyoming;

/// Threads for inference: the machine's cores, at most four (more only adds contention for
/// the short inputs of a conversation).
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
}
