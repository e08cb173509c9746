//! The conversation: turn-taking with barge-in (the real-time voice loop) and the `Brain`
//! that decides what to say.

pub mod backchannel;
pub mod builtin;
pub mod entities;
pub mod nlu;
pub mod voice_loop;

#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    #[error("the reply could not be produced: {0}")]
    Failed(String),
}

/// Decides what to answer. Replies stream: `emit` receives text pieces as they are ready
/// (whole replies, sentences or LLM tokens) and returns `false` when the listener no longer
/// wants them (the user barged in), at which point the brain should stop.
pub trait Brain: Send {
    fn respond(
        &mut self,
        user_text: &str,
        emit: &mut dyn FnMut(&str) -> bool,
    ) -> Result<(), BrainError>;

    /// The last reply was cut off by the user: only `spoken` reached them, and the
    /// conversation history should say so.
    fn interrupted(&mut self, _spoken: &str) {}

    /// Words the next user utterance is likely to contain, to bias speech recognition.
    fn expected_vocabulary(&self) -> Option<String> {
        None
    }
}
