//! The `rulesforce` binary: parse arguments, call the library, map errors to exit codes.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rulesforce::commands::{self, connection::ConnectionArgs};

#[derive(Parser)]
#[command(
    name = "rulesforce",
    version,
    about = "Rhai rule scripts that drive Salesforce campaigns from product data"
)]
struct Cli {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Log lines as text, or as JSON for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run rules once over a file of events (JSON lines), then deliver their actions.
    Run(commands::run::RunArgs),
    /// Compile rules and report every error as file:line:col; no network.
    Check(commands::check::CheckArgs),
    /// The daemon: load rules from DIR, reload on change, take events over HTTP, deliver.
    Watch(commands::watch::WatchArgs),
    /// Show what a running daemon says about itself.
    Status(commands::status::StatusArgs),
    /// Try Salesforce calls and rule code interactively.
    Repl(commands::repl::ReplArgs),
    /// Authenticate with the configured flow and print who you are (never the token).
    Login(commands::login::LoginArgs),
    /// Serve a local Salesforce REST emulator on loopback.
    Emulator(Box<commands::emulator::EmulatorArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Emulator(_) | Command::Watch(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_level.into());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut stdout = std::io::stdout();
    // The REPL blocks on the runtime for each call, so it runs outside it.
    let result = match cli.command {
        Command::Repl(args) => commands::repl::run(args, &cli.connection, &runtime),
        command => runtime.block_on(async {
            match command {
                Command::Run(args) => {
                    commands::run::run(
                        args,
                        &cli.connection,
                        &mut stdout,
                        Box::new(std::io::stderr()),
                    )
                    .await
                }
                Command::Watch(args) => {
                    commands::watch::run(args, &cli.connection, &mut stdout).await
                }
                Command::Status(args) => commands::status::run(&args, &mut stdout).await,
                Command::Check(args) => {
                    commands::check::run(&args, &mut stdout, &mut std::io::stderr())
                }
                Command::Login(args) => commands::login::run(&args, &cli.connection, &mut stdout)
                    .await
                    .map(|()| 0),
                Command::Emulator(args) => commands::emulator::run(*args, &mut stdout)
                    .await
                    .map(|()| 0),
                Command::Repl(_) => unreachable!("the REPL runs outside the runtime"),
            }
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(rulesforce::exit_code(&err))
        }
    }
}
