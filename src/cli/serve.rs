//! `hark serve`: conversations over WebSocket (see `hark::server`).

use std::sync::Arc;

use std::net::ToSocketAddrs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{Common, DialogueArgs, EngineArgs};
use hark::dialogue::Brain;
use hark::domain::Domain;
use hark::nlu::IntentRecognizer;
use hark::pipeline::turn::TurnConfig;
use hark::pipeline::LoopConfig;
use hark::server::auth::Tokens;
use hark::server::{serve_until, Access, ConversationFactory, ServerConfig, ServerError};
use hark::stt::recognizer::Recognizer;
use hark::telemetry::conversations::ConversationLog;
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
    /// Bearer tokens, one `TOKEN USER_ID [DOMAIN…]` per line [settings: server.tokens, or
    /// HARK_TOKENS_FILE].
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Serve without tokens on an address other than loopback; conversations are then
    /// anonymous [settings: server.allow_anonymous].
    #[arg(long)]
    pub allow_anonymous: bool,
    /// A browser origin allowed besides the page's own (repeatable) [settings:
    /// server.allowed_origins].
    #[arg(long = "allow-origin")]
    pub allow_origins: Vec<String>,
    /// A PEM certificate chain: serve https:// and wss:// (browsers give the page a
    /// microphone off-localhost only over HTTPS) [settings: server.tls_cert].
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key [settings: server.tls_key].
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also serve the Wyoming protocol (Home Assistant's speech services and conversation
    /// agent) at tcp://HOST:PORT [settings: server.wyoming].
    #[arg(long)]
    pub wyoming: Option<String>,
}

/// The address of a `tcp://HOST:PORT` Wyoming URI.
fn wyoming_address(uri: &str) -> Result<String> {
    match uri.strip_prefix("tcp://") {
        Some(address) if !address.is_empty() => Ok(address.to_string()),
        _ => {
            bail!("--wyoming {uri}: give tcp://HOST:PORT (Home Assistant's default port is 10300)")
        }
    }
}

/// Whether every address `address` names is on this machine only.
fn is_loopback(address: &str) -> Result<bool> {
    Ok(address
        .to_socket_addrs()
        .with_context(|| format!("address {address}"))?
        .all(|a| a.ip().is_loopback()))
}

/// The certificate to serve with, when one is given.
fn tls(settings: &hark::config::Settings) -> Result<Option<hark::server::tls::Tls>> {
    let server = &settings.server;
    match (server.tls_cert.is_empty(), server.tls_key.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some(hark::server::tls::load(
            Path::new(&server.tls_cert),
            Path::new(&server.tls_key),
        )?)),
        _ => bail!("server.tls_cert and server.tls_key go together: give both or neither"),
    }
}

/// SIGTERM (systemd, docker stop) or Ctrl-C.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = terminate => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!(
        "stopping: no new conversations; those under way end within {} s",
        hark::server::SHUTDOWN_GRACE.as_secs()
    );
}

/// Who may connect: the tokens file's holders, or (on loopback, or when allowed) anyone as
/// nobody.
fn access(settings: &hark::config::Settings, listen: &str) -> Result<Access> {
    let server = &settings.server;
    if !server.tokens.is_empty() {
        let tokens = Tokens::load(Path::new(&server.tokens))?;
        eprintln!("tokens: {} from {}", tokens.len(), server.tokens);
        return Ok(Access::Tokens(Arc::new(tokens)));
    }
    if !is_loopback(listen)? && !server.allow_anonymous {
        bail!(
            "hark serve on {listen} would let anyone on the network talk to it: give --tokens FILE \
             (or HARK_TOKENS_FILE), or --allow-anonymous to serve anonymous conversations"
        );
    }
    eprintln!("no tokens: conversations are anonymous and keep no memory");
    Ok(Access::Anonymous)
}

impl Factory {
    /// Appends `what` to the conversation log (when there is one); a failure is reported,
    /// never fatal.
    fn write_log(&self, what: &str, write: impl FnOnce(&mut ConversationLog)) {
        match super::conversation::conversation_log(&self.log) {
            Ok(Some(mut log)) => {
                write(&mut log);
                if log.failed() {
                    tracing::warn!("{what} could not be written to the conversation log");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "{what} was not kept"),
        }
    }
}

/// Engines for each conversation: one Whisper model, one voice and one trained intent
/// recognizer shared by all (decodes and sentences take turns), and a dialogue core of its own.
struct Factory {
    speech: Arc<dyn Recognizer>,
    domain: Domain,
    recognizer: IntentRecognizer,
    domain_name: String,
    voice: Arc<dyn Synthesizer>,
    turn_model: Option<Arc<hark::vad::turn_model::TurnModel>>,
    store: String,
    log: String,
    options: hark::dialogue::DialogueOptions,
}

impl ConversationFactory for Factory {
    fn recognizer(&self) -> Arc<dyn Recognizer> {
        self.speech.clone()
    }

    fn synthesizer(&self) -> Arc<dyn Synthesizer> {
        self.voice.clone()
    }

    fn turn_model(&self) -> Option<Arc<hark::vad::turn_model::TurnModel>> {
        self.turn_model.clone()
    }

    fn brain(&self, user: Option<&str>) -> Result<Box<dyn Brain>, ServerError> {
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
        Ok(Box::new(brain))
    }

    fn rate(&self, conversation: &str, score: u8) {
        self.write_log("a rating", |log| log.rating(conversation, score));
    }

    fn handoff_feedback(&self, id: &str, feedback: hark::server::feedback::Feedback) {
        self.write_log("handoff feedback", |log| {
            log.feedback(id, feedback.useful, feedback.resolved)
        });
    }

    fn domain(&self) -> &str {
        &self.domain_name
    }
}

pub fn run(common: &Common, options: ServeArgs) -> Result<()> {
    let mut settings = common.settings()?;
    apply_options(&options, &mut settings);
    let access = access(&settings, &options.listen)?;
    let tls = tls(&settings)?;
    let wyoming = wyoming_listen(&settings)?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let (factory, description) = load_factory(&settings, common)?;
    let loop_config = LoopConfig {
        endpointer: settings.endpointer,
        turns: TurnConfig {
            greet: true,
            ..settings.turns
        },
        ..Default::default()
    };
    let config = ServerConfig {
        max_conversations: options.max_conversations,
        conversation: loop_config,
        access,
        allowed_origins: settings.server.allowed_origins.clone(),
        limits: settings.server.limits,
        tls,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve_until_stopped(
        &options.listen,
        scheme,
        factory,
        config,
        wyoming,
        description,
    ))
}

/// The command line's server options, over the settings.
fn apply_options(options: &ServeArgs, settings: &mut hark::config::Settings) {
    options.dialogue.apply(settings);
    options.engines.apply(settings);
    if let Some(tokens) = &options.tokens {
        settings.server.tokens = tokens.display().to_string();
    }
    settings.server.allow_anonymous |= options.allow_anonymous;
    settings
        .server
        .allowed_origins
        .extend(options.allow_origins.iter().cloned());
    if let Some(cert) = &options.tls_cert {
        settings.server.tls_cert = cert.display().to_string();
    }
    if let Some(key) = &options.tls_key {
        settings.server.tls_key = key.display().to_string();
    }
    if let Some(wyoming) = &options.wyoming {
        settings.server.wyoming = wyoming.clone();
    }
}

/// The address to serve Wyoming on, when asked to (beyond this machine only when anonymous
/// conversations are allowed).
fn wyoming_listen(settings: &hark::config::Settings) -> Result<Option<String>> {
    match settings.server.wyoming.as_str() {
        "" => Ok(None),
        uri => {
            let address = wyoming_address(uri)?;
            // Wyoming has no authentication: beyond this machine only when allowed.
            if !is_loopback(&address)? && !settings.server.allow_anonymous {
                bail!(
                    "Wyoming on {address} would let anyone on the network use hark, and Wyoming \
                     has no tokens: give --allow-anonymous to serve it there (its conversations \
                     are anonymous)"
                );
            }
            Ok(Some(address))
        }
    }
}

/// The conversations' engines, loaded and checked once before listening, and what Wyoming's
/// `info` says of them.
fn load_factory(
    settings: &hark::config::Settings,
    common: &Common,
) -> Result<(Factory, hark::wyoming::Description)> {
    let (models, threads) = (&common.models, common.threads);
    let domain_dir = hark::domain::resolve(
        &settings.dialogue.domain,
        &super::conversation::domains_dir(),
    )?;
    // Load and check everything once before listening: a broken domain, model or voice
    // is reported now, not to the first client.
    let engines = hark::engines::build(settings, models, threads)?;
    let mut dialogue_options = hark::engines::dialogue_options(settings, models)?;
    let in_domain = || format!("domain {}", domain_dir.display());
    let domain = hark::domain::load(&domain_dir).with_context(in_domain)?;
    if let Some(cache) = &engines.tts_cache {
        cache.allow(domain.fixed_texts());
    }
    let recognizer =
        hark::dialogue::train_recognizer(&domain, models, threads).with_context(in_domain)?;
    hark::dialogue::load_knowledge(&domain_dir, &recognizer, &mut dialogue_options)
        .with_context(in_domain)?;
    // A conversation's manager is checked now too (a language model misconfigured in the
    // environment is reported before listening).
    hark::dialogue::manager_for(domain.clone(), recognizer.clone(), &dialogue_options)
        .with_context(in_domain)?;
    let description = hark::wyoming::Description {
        stt_model: match settings.stt.engine {
            hark::config::SttEngine::Whisper => format!("whisper-{}", settings.stt.model),
            _ => engines.recognizer.name().to_string(),
        },
        voice: match settings.tts.voice.trim() {
            "" => engines.synthesizer.name().to_string(),
            voice => voice.to_string(),
        },
        languages: vec!["en".into()],
        domain: settings.dialogue.domain.clone(),
    };
    let factory = Factory {
        speech: engines.recognizer,
        domain,
        recognizer,
        domain_name: settings.dialogue.domain.clone(),
        voice: engines.synthesizer,
        turn_model: engines.turn_model,
        store: settings.dialogue.store_spec(),
        log: settings.dialogue.log_dir(),
        options: dialogue_options,
    };
    Ok((factory, description))
}

/// Listens on `listen` (and for Wyoming at `wyoming`, when given) and serves until a stop
/// signal, then waits for both services to end.
async fn serve_until_stopped(
    listen: &str,
    scheme: &str,
    factory: Factory,
    config: ServerConfig,
    wyoming: Option<String>,
    description: hark::wyoming::Description,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let factory: Arc<dyn ConversationFactory> = Arc::new(factory);
    // One stop signal for both listeners.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        stop_signal().await;
        let _ = stop_tx.send(true);
    });
    let wyoming = match wyoming {
        Some(address) => Some(
            spawn_wyoming(
                &address,
                factory.clone(),
                description,
                config.limits.max_connections,
                stop_rx.clone(),
            )
            .await?,
        ),
        None => None,
    };
    // Tests and scripts read the bound address here (a port of 0 picks a free one).
    eprintln!("listening on {scheme}://{}", listener.local_addr()?);
    serve_until(listener, factory, config, stopped(stop_rx)).await?;
    if let Some(wyoming) = wyoming {
        let _ = wyoming.await;
    }
    eprintln!("stopped");
    Ok(())
}

/// Listens for Wyoming on `address` and serves it on a task of its own until the stop signal.
async fn spawn_wyoming(
    address: &str,
    factory: Arc<dyn ConversationFactory>,
    description: hark::wyoming::Description,
    max_connections: usize,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("listening for Wyoming on {address}"))?;
    eprintln!("wyoming on tcp://{}", listener.local_addr()?);
    Ok(tokio::spawn(hark::wyoming::serve_until(
        listener,
        factory,
        description,
        hark::wyoming::WyomingLimits {
            max_connections,
            ..Default::default()
        },
        stopped(stop),
    )))
}

/// Completes once the stop signal has been given (or its sender is gone).
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
