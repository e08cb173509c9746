//! The conversation: the `Brain` that decides what to say, and the dialogue manager behind it.

pub mod actions;
pub mod brain;
pub mod builtin;
pub mod handoff;
pub mod learned;
pub mod llm;
pub mod manager;
pub mod policy;
pub mod sounds;
pub mod spotter;
pub mod sse;
#[cfg(test)]
mod tests;

use std::path::Path;

/// What a dialogue manager talks to besides its domain.
#[derive(Debug, Clone)]
pub struct DialogueOptions {
    /// The language model for what the flows do not cover, if any.
    pub llm: Option<llm::LlmConfig>,
    /// How long a flow's webhook or the handoff webhook may take.
    pub webhook_timeout: std::time::Duration,
    /// Reads names and party sizes; without it names come from phrasing ("my name is").
    pub slot_tagger: Option<std::sync::Arc<crate::nlu::slots::SlotTagger>>,
    /// Documents to answer from, besides the domain's own `knowledge/` folder.
    pub knowledge_paths: Vec<std::path::PathBuf>,
    /// The documents, indexed (see [`load_knowledge`]); answered from when no intent fits.
    pub knowledge: Option<std::sync::Arc<crate::knowledge::Knowledge>>,
    /// Where the sentence encoder's meanings of the documents are kept between starts
    /// ([`crate::knowledge::cache`]); none: [`build_manager`] keeps them under its models
    /// folder.
    pub knowledge_cache: Option<std::path::PathBuf>,
}

impl Default for DialogueOptions {
    fn default() -> Self {
        Self {
            llm: None,
            webhook_timeout: std::time::Duration::from_secs(5),
            slot_tagger: None,
            knowledge_paths: Vec::new(),
            knowledge: None,
            knowledge_cache: None,
        }
    }
}

/// Loads the domain at `domain_dir` and trains its intent recognizer (with the sentence
/// encoder from `models`), ready to converse.
pub fn build_manager(
    domain_dir: &Path,
    models: &crate::models::ModelDir,
    threads: usize,
    options: &DialogueOptions,
) -> Result<manager::DialogueManager, BuildError> {
    let domain = crate::domain::load(domain_dir)?;
    let recognizer = train_recognizer(&domain, models, threads)?;
    let mut options = options.clone();
    if options.knowledge_cache.is_none() {
        options.knowledge_cache = crate::knowledge::cache::path_for(models);
    }
    load_knowledge(domain_dir, &recognizer, &mut options)?;
    manager_for(domain, recognizer, &options)
}

/// Indexes the documents of `options.knowledge_paths` and of the domain's `knowledge/`
/// folder, with the encoder of `recognizer`, into `options.knowledge` (none when there are
/// none).
pub fn load_knowledge(
    domain_dir: &Path,
    recognizer: &crate::nlu::IntentRecognizer,
    options: &mut DialogueOptions,
) -> Result<(), BuildError> {
    let mut paths = options.knowledge_paths.clone();
    // The domain's own folder counts once it holds a document (it may be kept empty).
    let own = domain_dir.join("knowledge");
    if own.is_dir() && crate::knowledge::has_documents(&own) {
        paths.push(own);
    }
    if paths.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let knowledge = crate::knowledge::Knowledge::load_cached(
        &paths,
        recognizer.featurizer().clone(),
        options.knowledge_cache.as_deref(),
    )?;
    tracing::info!(
        passages = knowledge.passages().len(),
        ms = started.elapsed().as_millis() as u64,
        "knowledge documents indexed"
    );
    options.knowledge = Some(std::sync::Arc::new(knowledge));
    Ok(())
}

/// The intent recognizer of `domain`, trained on its examples with the sentence encoder
/// from `models` (opening the encoder and training take 0.4–1 s on 2 cores).
pub fn train_recognizer(
    domain: &crate::domain::Domain,
    models: &crate::models::ModelDir,
    threads: usize,
) -> Result<crate::nlu::IntentRecognizer, BuildError> {
    let encoder = crate::nlu::encoder::SentenceEncoder::from_models(models, threads)?;
    Ok(crate::nlu::IntentRecognizer::train(
        crate::nlu::Featurizer::new(Some(encoder)),
        &domain.training_examples(),
        Default::default(),
        domain.policy.threshold,
    )?)
}

/// A dialogue manager for one conversation of `domain`; `recognizer` may be a clone of one
/// trained for many conversations.
pub fn manager_for(
    domain: crate::domain::Domain,
    recognizer: crate::nlu::IntentRecognizer,
    options: &DialogueOptions,
) -> Result<manager::DialogueManager, BuildError> {
    let backend = actions::Backend::new(options.webhook_timeout);
    let mut manager = manager::DialogueManager::new(domain, recognizer, backend);
    if let Some(tagger) = &options.slot_tagger {
        manager = manager.with_slot_tagger(tagger.clone());
    }
    if let Some(knowledge) = &options.knowledge {
        manager = manager.with_knowledge(knowledge.clone());
    }
    Ok(match &options.llm {
        Some(config) => manager.with_llm(Box::new(llm::StreamingChat::new(config.clone())?)),
        None => manager,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Config(#[from] crate::domain::DomainError),
    #[error(transparent)]
    Nlu(#[from] crate::nlu::NluError),
    #[error(transparent)]
    Llm(#[from] llm::LlmError),
    #[error(transparent)]
    Knowledge(#[from] crate::knowledge::KnowledgeError),
}

/// A reply worked out before the end of the user's turn.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedReply {
    /// The whole reply, when it can be said the moment the turn ends (not one that waits on
    /// an action, a handoff or a language model).
    pub reply: Option<String>,
    /// Whether the words answer what was asked (see `manager::Prepared::answers`).
    pub answers: Option<bool>,
}

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

    /// Works out the reply to `user_text` before the user's turn is over, committing
    /// nothing (no memory, no flow, no log line). None: this brain does not prepare.
    fn prepare(&mut self, _user_text: &str) -> Option<PreparedReply> {
        None
    }

    /// The turn ended on the words the reply was prepared for: it is committed now, as if
    /// `respond` had given it. False (and nothing done) when it no longer holds.
    fn commit_prepared(&mut self, _user_text: &str) -> bool {
        false
    }

    /// The user went on: the prepared reply is dropped without a trace.
    fn drop_prepared(&mut self) {}

    /// What to say when the conversation starts, if anything.
    fn greeting(&mut self) -> Option<String> {
        None
    }

    /// A handoff to a person made during the last reply, if any, for the event log.
    fn take_handoff(&mut self) -> Option<serde_json::Value> {
        None
    }

    /// A fault of the last reply the client should hear of (the conversation could not be
    /// saved), once, for the event log's `error` event.
    fn take_fault(&mut self) -> Option<String> {
        None
    }

    /// The user has said nothing for a while: what to say, if anything (re-ask a pending
    /// question; stay quiet when nothing is pending).
    fn silence(&mut self) -> Option<String> {
        None
    }

    /// Phrases the next user utterance is likely to contain, most likely first, to bias
    /// speech recognition.
    fn expected_phrases(&self) -> Vec<String> {
        Vec::new()
    }

    /// What this brain says word for word every time (its domain's fixed wording), so a
    /// voice may keep that audio.
    fn fixed_wording(&self) -> Vec<String> {
        Vec::new()
    }

    /// The phrases of its domain's values ("light roast", "a lot of milk"): a turn whose
    /// words stop inside one is not over.
    fn value_phrases(&self) -> Vec<String> {
        Vec::new()
    }

    /// A latency of the last turn the voice loop measured, for the conversation log.
    fn measured(&mut self, _measure: crate::telemetry::metrics::Measure, _ms: f64) {}

    /// The id this conversation's log lines and diagnostics carry, if it has one.
    fn conversation_id(&self) -> Option<String> {
        None
    }
}
