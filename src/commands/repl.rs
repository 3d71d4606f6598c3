//! `rulesforce repl`: interactive with a terminal, a script when piped, one expression with `-e`.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;

use super::connection::{Connection, ConnectionArgs};
use crate::repl::{ReplHelper, Reply, Session, input::PendingInput};

#[derive(Debug, clap::Args)]
pub struct ReplArgs {
    /// Evaluate one expression, print its value as JSON, and exit.
    #[arg(short = 'e', long = "eval", value_name = "EXPR")]
    pub eval: Option<String>,
    /// Connect to an in-process emulator with its demo data.
    #[arg(long)]
    pub emulator: bool,
    /// History file (default: rulesforce/history in the user's data directory).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,
}

const PROMPT: &str = "rf> ";
const CONTINUE: &str = "... ";

fn history_path(args: &ReplArgs) -> Option<PathBuf> {
    args.history
        .clone()
        .or_else(|| dirs::data_dir().map(|d| d.join("rulesforce").join("history")))
}

/// Runs on a plain thread (reads and writes block on the runtime), so not `async`.
pub fn run(
    args: ReplArgs,
    connection: &ConnectionArgs,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<u8> {
    let Connection {
        client,
        settings,
        emulator,
    } = runtime.block_on(Connection::open(connection, args.emulator))?;
    let where_to = match &emulator {
        Some(emulator) => format!(
            "the emulator at {} as {}",
            emulator.base_url(),
            emulator.config().username
        ),
        None => {
            let place = settings
                .instance_url
                .clone()
                .unwrap_or_else(|| settings.login_url().to_string());
            let user = settings
                .username
                .clone()
                .map(|u| format!(" as {u}"))
                .unwrap_or_default();
            format!(
                "{place}{user} ({} flow; logs in on the first call)",
                client.flow().name()
            )
        }
    };
    let mut session = Session::new(client, settings, runtime.handle().clone());
    let mut out = std::io::stdout();

    if let Some(expression) = &args.eval {
        return match session.eval(expression) {
            Ok(value) => {
                let json = rhai::serde::from_dynamic::<serde_json::Value>(&value)
                    .unwrap_or(serde_json::Value::Null);
                writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
                Ok(0)
            }
            Err(error) => {
                eprintln!("error: {error}");
                Ok(1)
            }
        };
    }

    if !std::io::stdin().is_terminal() {
        return piped(&mut session, &mut out);
    }

    let mut editor = rustyline::Editor::<ReplHelper, DefaultHistory>::new()?;
    let helper = ReplHelper::default();
    *helper.names.lock().unwrap_or_else(|e| e.into_inner()) = session.names();
    editor.set_helper(Some(helper.clone()));
    let history = history_path(&args);
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = editor.load_history(path);
    }
    writeln!(out, "rulesforce repl: connected to {where_to}")?;
    writeln!(
        out,
        ":help for the API and commands, Tab completes, Ctrl-D leaves"
    )?;
    let mut pending = PendingInput::default();
    loop {
        let prompt = if pending.is_empty() { PROMPT } else { CONTINUE };
        match editor.readline(prompt) {
            Ok(line) => {
                let Some(input) = pending.push(session.engine(), &line) else {
                    continue;
                };
                if input.trim().is_empty() {
                    continue;
                }
                let _ = editor.add_history_entry(input.as_str());
                if let Some(path) = &history {
                    // Saved after every line, so a crash loses nothing.
                    let _ = editor.save_history(path);
                }
                match session.run(&input) {
                    Reply::Quit => break,
                    Reply::Text(text) if !text.is_empty() => writeln!(out, "{text}")?,
                    Reply::Text(_) => {}
                }
                *helper.names.lock().unwrap_or_else(|e| e.into_inner()) = session.names();
            }
            Err(ReadlineError::Interrupted) => drop(pending.take()),
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(0)
}

/// Standard input that is not a terminal: a script, evaluated a complete input at a time,
/// without prompts. Exit 1 if any input failed.
fn piped(session: &mut Session, out: &mut impl Write) -> anyhow::Result<u8> {
    let mut pending = PendingInput::default();
    let mut failed = false;
    let mut lines = std::io::stdin().lock().lines();
    loop {
        let (input, finished) = match lines.next().transpose()? {
            Some(line) => match pending.push(session.engine(), &line) {
                Some(input) => (input, false),
                None => continue,
            },
            // End of input: what is left runs as it is, to report its error.
            None => (pending.take(), true),
        };
        if !input.trim().is_empty() {
            match session.run(&input) {
                Reply::Quit => break,
                Reply::Text(text) if text.starts_with("error: ") => {
                    failed = true;
                    eprintln!("{text}");
                }
                Reply::Text(text) if !text.is_empty() => writeln!(out, "{text}")?,
                Reply::Text(_) => {}
            }
        }
        if finished {
            break;
        }
    }
    Ok(u8::from(failed))
}
