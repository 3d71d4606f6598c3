//! `rulesforce watch DIR`: the daemon, until SIGTERM or Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::connection::{Connection, ConnectionArgs};
use crate::daemon::{self, DaemonConfig};
use crate::script::Limits;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The folder of rules to load and watch.
    pub dir: PathBuf,
    /// Address for the HTTP API.
    #[arg(long, default_value = daemon::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// The SQLite store: events, outbox, once/count windows.
    #[arg(long, value_name = "FILE", default_value = "rulesforce.db")]
    pub state: PathBuf,
    /// Require `Authorization: Bearer <token>` on /v1 (RULESFORCE_TOKEN).
    #[arg(long, env = "RULESFORCE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = daemon::DEFAULT_MAX_BODY)]
    pub max_body: usize,
    /// Also follow this JSON-lines file (its offset is kept in the store).
    #[arg(long, value_name = "FILE")]
    pub events_file: Option<PathBuf>,
    /// Deliver at most this many actions a minute.
    #[arg(long, value_name = "N")]
    pub max_actions_per_minute: Option<u32>,
    /// Slow down once this share of the daily API allowance is used.
    #[arg(long, default_value_t = 0.9)]
    pub usage_threshold: f64,
    /// Print the HTTP requests instead of sending writes.
    #[arg(long)]
    pub dry_run: bool,
    /// Run against an in-process emulator with its demo data.
    #[arg(long)]
    pub emulator: bool,
    /// Wall-clock budget for one rule on one event, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub timeout_ms: u64,
}

pub async fn run(
    args: WatchArgs,
    connection: &ConnectionArgs,
    out: &mut (impl Write + Send),
) -> anyhow::Result<u8> {
    if !args.dir.is_dir() {
        anyhow::bail!("{} is not a folder of rules", args.dir.display());
    }
    if !(0.0..=1.0).contains(&args.usage_threshold) {
        anyhow::bail!(
            "--usage-threshold is a share between 0 and 1, not {}",
            args.usage_threshold
        );
    }
    let Connection {
        client, emulator, ..
    } = Connection::open(connection, args.emulator).await?;
    if let Some(emulator) = &emulator {
        writeln!(out, "emulator at {}", emulator.base_url())?;
    }
    let config = DaemonConfig {
        dir: args.dir,
        listen: args.listen,
        state: args.state,
        token: args.token.map(Into::into),
        max_body: args.max_body,
        events_file: args.events_file,
        max_actions_per_minute: args.max_actions_per_minute,
        usage_threshold: args.usage_threshold,
        dry_run: args.dry_run,
        limits: Limits {
            time_budget: Duration::from_millis(args.timeout_ms),
            ..Limits::default()
        },
    };
    daemon::run(config, client, super::emulator::shutdown_signal(), |addr| {
        // Tests and scripts wait for this line to know the port.
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
    })
    .await?;
    Ok(0)
}
