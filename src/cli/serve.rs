//! `hark serve`: conversations over WebSocket (see `hark::server`).

use std::sync::Arc;

use anyhow::{Context, Result};

use super::{Common, DialogueArgs, EngineArgs};
use hark::domain::Domain;
use hark::nlu::IntentRecognizer;
use hark::pipeline::turn::TurnConfig;
use hark::pipeline::{Engines, LoopConfig};
use hark::server::{serve, ConversationFactory, ServerConfig, ServerError};
use hark::stt::recognizer::Recognizer;
use hark::tts::stream::Synthesizer;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub listen: String,
    #[command(flatten)]
    pub dialogue: DialogueArgs,
    #[command(flatten)]
    pub engines: EngineArgs,
    /// Conversations at once; more are refused with an error.
    #[arg(long, default_value_t = 4)]
    pub max_conversations: usize,
}

/// Engines for each conversation: one Whisper model, one voice and one trained intent
/// recognizer shared by all (decodes and sentences take turns), and a dialogue core of its own.
struct Factory {
    speech: Arc<dyn Recognizer>,
    domain: Domain,
    recognizer: IntentRecognizer,
    domain_name: String,
    voice: Arc<dyn Synthesizer>,
    store: String,
    log: String,
    options: hark::dialogue::DialogueOptions,
}

impl ConversationFactory for Factory {
    fn open(&self, user: Option<&str>) -> Result<Engines, ServerError> {
        let fail = |e: &dyn std::fmt::Display| ServerError::Engines(e.to_string());
        let manager = hark::dialogue::manager_for(
            self.domain.clone(),
            self.recognizer.clone(),
            &self.options,
        )
        .map_err(|e| fail(&e))?;
        let brain =
            super::conversation::dialogue_brain(manager, user, false, &self.store, &self.log)
                .map_err(|e| fail(&format!("{e:#}")))?;
        let brain = Box::new(brain);
        Ok(Engines {
            recognizer: self.speech.open_session().map_err(|e| fail(&e))?,
            brain,
            synthesizer: self.voice.clone(),
        })
    }

    fn domain(&self) -> &str {
        &self.domain_name
    }
}

pub fn run(common: &Common, options: ServeArgs) -> Result<()> {
    let mut settings = common.settings()?;
    options.dialogue.apply(&mut settings);
    options.engines.apply(&mut settings);
    let (models, threads) = (&common.models, common.threads);
    let domain_dir = hark::domain::resolve(
        &settings.dialogue.domain,
        &super::conversation::domains_dir(),
    )?;
    // Load and check everything once before listening: a broken domain, model or voice
    // is reported now, not to the first client.
    let engines = hark::engines::build(&settings, models, threads)?;
    let dialogue_options = hark::engines::dialogue_options(&settings);
    let in_domain = || format!("domain {}", domain_dir.display());
    let domain = hark::domain::load(&domain_dir).with_context(in_domain)?;
    let recognizer =
        hark::dialogue::train_recognizer(&domain, models, threads).with_context(in_domain)?;
    // A conversation's manager is checked now too (a language model misconfigured in the
    // environment is reported before listening).
    hark::dialogue::manager_for(domain.clone(), recognizer.clone(), &dialogue_options)
        .with_context(in_domain)?;
    let factory = Factory {
        speech: engines.recognizer,
        domain,
        recognizer,
        domain_name: settings.dialogue.domain.clone(),
        voice: engines.synthesizer,
        store: settings.dialogue.store.clone(),
        log: settings.dialogue.log.clone(),
        options: dialogue_options,
    };
    let loop_config = LoopConfig {
        endpointer: settings.endpointer,
        turns: TurnConfig {
            greet: true,
            ..settings.turns
        },
        ..Default::default()
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&options.listen)
            .await
            .with_context(|| format!("listening on {}", options.listen))?;
        // Tests and scripts read the bound address here (a port of 0 picks a free one).
        eprintln!("listening on ws://{}", listener.local_addr()?);
        serve(
            listener,
            Arc::new(factory),
            ServerConfig {
                max_conversations: options.max_conversations,
                conversation: loop_config,
            },
        )
        .await?;
        Ok(())
    })
}
