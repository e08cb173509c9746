//! `hark chat`: the dialogue core over text, interactive or one line per turn.

use std::io::Write;

use anyhow::{Context, Result};

use super::conversation::{conversation_log, domains_dir};
use super::{Common, DialogueArgs};

#[derive(clap::Args)]
pub struct ChatArgs {
    /// Print one JSON object per turn (user, reply, intent, confidence, entities, flow,
    /// slots, handoff).
    #[arg(long)]
    json: bool,
    /// "Today" for relative dates (YYYY-MM-DD), for reproducible scripts.
    #[arg(long)]
    today: Option<String>,
    /// Who is talking (memory is kept per user).
    #[arg(long, default_value = "local-user")]
    user: String,
    #[command(flatten)]
    dialogue: DialogueArgs,
}

pub fn chat(common: &Common, args: ChatArgs) -> Result<()> {
    use hark::dialogue::Brain;
    use std::io::{BufRead, IsTerminal};
    let mut settings = common.settings()?;
    args.dialogue.apply(&mut settings);
    let json = args.json;
    let (user, today, store) = (
        args.user.as_str(),
        args.today.as_deref(),
        settings.dialogue.store.as_str(),
    );
    let log = conversation_log(&settings.dialogue.log)?;
    let dir = hark::domain::resolve(&settings.dialogue.domain, &domains_dir())?;
    let options = hark::engines::dialogue_options(&settings);
    let mut manager =
        hark::dialogue::build_manager(&dir, &common.models, common.threads, &options)?;
    if let Some(today) = today {
        manager.today = Some(
            chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d")
                .with_context(|| format!("--today {today}: expected YYYY-MM-DD"))?,
        );
    }
    let mut brain = hark::dialogue::brain::DialogueBrain::new(manager, user);
    if let Some(store) = hark::store::open(store)? {
        brain = brain.with_store(store)?;
    }
    if let Some(log) = log {
        brain = brain.with_log(log);
    }
    let name = brain.manager().domain.persona.name.clone();
    let interactive = std::io::stdin().is_terminal() && !json;
    let greeting = brain.greeting().unwrap_or_default();
    if !json {
        println!("{name}: {greeting}");
    }
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    loop {
        if interactive {
            print!("> ");
            std::io::stdout().flush()?;
        }
        let mut line = String::new();
        if stdin.lock().read_line(&mut line)? == 0 {
            break;
        }
        let turn = brain.turn(&line)?;
        if json {
            writeln!(out, "{}", serde_json::to_string(&turn)?)?;
        } else {
            writeln!(out, "{name}: {}", turn.reply)?;
        }
        out.flush()?;
        if turn.ended {
            break;
        }
    }
    Ok(())
}
