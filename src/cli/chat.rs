//! `hark chat`: the dialogue core over text, interactive or one line per turn.

use std::io::Write;

use anyhow::{Context, Result};

use super::conversation::{dialogue_brain, domains_dir};
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
    #[command(flatten)]
    person: super::PersonArgs,
    #[command(flatten)]
    dialogue: DialogueArgs,
}

pub fn chat(common: &Common, args: ChatArgs) -> Result<()> {
    use hark::dialogue::Brain;
    use std::io::{BufRead, IsTerminal};
    let mut settings = common.settings()?;
    args.dialogue.apply(&mut settings);
    args.person.apply(&mut settings);
    let json = args.json;
    let dir = hark::domain::resolve(&settings.dialogue.domain, &domains_dir())?;
    let options = hark::engines::dialogue_options(&settings, &common.models)?;
    let mut manager =
        hark::dialogue::build_manager(&dir, &common.models, common.threads, &options)?;
    manager.set_channel(hark::domain::Channel::Text);
    if let Some(today) = args.today.as_deref() {
        manager.today = Some(
            chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d")
                .with_context(|| format!("--today {today}: expected YYYY-MM-DD"))?,
        );
    }
    let dialogue = &settings.dialogue;
    let mut brain = dialogue_brain(
        manager,
        args.person.user.as_deref(),
        dialogue.kiosk,
        &dialogue.store_spec(),
        &dialogue.log_dir(),
    )?;
    let name = brain.manager().domain().persona.name.clone();
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
        if turn.ended && !settings.dialogue.kiosk {
            break;
        }
        if turn.ended && !json {
            // A kiosk waits for the next person, who starts afresh.
            writeln!(out, "{name}: {}", brain.greeting().unwrap_or_default())?;
        }
    }
    Ok(())
}
