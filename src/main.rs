//! The `hark` command line: parses arguments and hands them to `cli`; everything it does
//! lives in the library.

mod cli;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let level = if cli.command.is_long_running() {
        "info"
    } else {
        "warn"
    };
    cli::init_logging(cli.log_format, level);
    if !cli.command.is_long_running() {
        quit_quietly_on_closed_pipe();
    }
    if let Err(error) = cli::run(cli) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// A command whose output is cut short by its reader (`hark eval … | head`) ends there, as
/// any Unix tool does. Rust ignores SIGPIPE, so printing to a closed pipe panicked instead.
/// The long-running `run` and `serve` keep ignoring it: a helper process or peer that goes
/// away must be an error they report, not their end.
fn quit_quietly_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; restores the default
    // disposition of one signal.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
