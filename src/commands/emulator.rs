//! `rulesforce emulator`: serve the local Salesforce emulator until interrupted.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::emulator::{self, Emulator, EmulatorConfig, Faults};

#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port. Loopback only.
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], emulator::DEFAULT_PORT)))]
    pub listen: SocketAddr,
    /// Keep records in this SQLite file so they survive restarts (default: in memory).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[arg(long, default_value = emulator::DEMO_CLIENT_ID)]
    pub client_id: String,
    #[arg(long, default_value = emulator::DEMO_CLIENT_SECRET)]
    pub client_secret: String,
    #[arg(long, default_value = emulator::DEMO_USERNAME)]
    pub username: String,
    #[arg(long, default_value = emulator::DEMO_PASSWORD)]
    pub password: String,
    #[arg(long, default_value = emulator::DEMO_SECURITY_TOKEN)]
    pub security_token: String,
    #[arg(long, default_value = emulator::DEMO_REFRESH_TOKEN)]
    pub refresh_token: String,
    /// PEM RSA public key that verifies JWT bearer assertions (enables the jwt flow).
    #[arg(long, value_name = "FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// Daily API request allowance; requests past it get REQUEST_LIMIT_EXCEEDED.
    #[arg(long, default_value_t = 15_000)]
    pub daily_api_limit: u64,
    /// Records per query page.
    #[arg(long, default_value_t = 2000)]
    pub page_size: usize,
    /// Start empty instead of with the demo data.
    #[arg(long)]
    pub no_seed: bool,
    /// Answer the first N data API requests with 503.
    #[arg(long, default_value_t = 0)]
    pub fail_next: u32,
    /// Delay every request by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
}

pub async fn run(args: EmulatorArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        anyhow::bail!(
            "the emulator listens on loopback addresses only, not {}",
            args.listen.ip()
        );
    }
    let jwt_public_key = match &args.jwt_public_key {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let config = EmulatorConfig {
        client_id: args.client_id,
        client_secret: args.client_secret,
        username: args.username,
        password: args.password,
        security_token: args.security_token,
        refresh_token: args.refresh_token,
        jwt_public_key,
        daily_api_limit: args.daily_api_limit,
        page_size: args.page_size,
        state_file: args.state,
        seed: !args.no_seed,
        faults: Faults {
            fail_next: args.fail_next,
            latency_ms: args.latency_ms,
            ..Faults::default()
        },
    };
    let emulator = Emulator::start(config, args.listen).await?;
    let c = emulator.config();
    writeln!(
        out,
        "rulesforce emulator listening on {}",
        emulator.base_url()
    )?;
    writeln!(out, "  login and instance URL: {}", emulator.base_url())?;
    writeln!(out, "  client id:      {}", c.client_id)?;
    writeln!(out, "  client secret:  {}", c.client_secret)?;
    writeln!(out, "  username:       {}", c.username)?;
    writeln!(out, "  password:       {}", c.password)?;
    writeln!(out, "  security token: {}", c.security_token)?;
    writeln!(out, "  refresh token:  {}", c.refresh_token)?;
    writeln!(
        out,
        "  (demo credentials for a local emulator; stop with Ctrl-C)"
    )?;
    out.flush()?;
    shutdown_signal().await;
    emulator.stop();
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
