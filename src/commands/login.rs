//! `rulesforce login`: authenticate with the configured flow and say who we are.

use std::io::Write;

use serde_json::json;

use super::connection::{Connection, ConnectionArgs};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Print JSON for machines.
    #[arg(long)]
    pub json: bool,
    /// Log in to an in-process emulator with its demo credentials.
    #[arg(long)]
    pub emulator: bool,
}

pub async fn run(
    args: &LoginArgs,
    connection: &ConnectionArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let Connection {
        client,
        emulator: _emulator,
        ..
    } = Connection::open(connection, args.emulator).await?;
    let identity = client.identity().await?;
    let limits = client.limits().await?;
    // The /limits body is the freshest count; the header of that same call agrees.
    let usage = limits
        .get("DailyApiRequests")
        .and_then(|d| Some((d.get("Max")?.as_u64()?, d.get("Remaining")?.as_u64()?)))
        .map(|(max, remaining)| (max - remaining.min(max), max))
        .or_else(|| client.api_usage().map(|u| (u.used, u.allowed)));
    if args.json {
        let value = json!({
            "org_id": identity.org_id,
            "user_id": identity.user_id,
            "username": identity.username,
            "display_name": identity.display_name,
            "instance_url": identity.instance_url,
            "api_version": client.api_version(),
            "flow": client.flow().name(),
            "api_usage": usage.map(|(used, allowed)| json!({"used": used, "allowed": allowed})),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "Logged in to Salesforce ({} flow)",
        client.flow().name()
    )?;
    writeln!(out, "  org:         {}", identity.org_id)?;
    writeln!(
        out,
        "  user:        {} <{}> ({})",
        identity.display_name, identity.username, identity.user_id
    )?;
    writeln!(out, "  instance:    {}", identity.instance_url)?;
    writeln!(out, "  API version: {}", client.api_version())?;
    match usage {
        Some((used, allowed)) => {
            writeln!(out, "  API usage:   {used} of {allowed} requests today")?
        }
        None => writeln!(out, "  API usage:   not reported")?,
    }
    Ok(())
}
