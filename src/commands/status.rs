//! `rulesforce status`: what a running daemon says about itself, as a table.

use std::io::Write;

use serde_json::Value;

use crate::daemon;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The daemon's address.
    #[arg(long, default_value = daemon::DEFAULT_LISTEN)]
    pub listen: String,
    /// The daemon's --token (RULESFORCE_TOKEN).
    #[arg(long, env = "RULESFORCE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

async fn get(http: &reqwest::Client, url: String, token: Option<&str>) -> anyhow::Result<Value> {
    let mut request = http.get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("no daemon answers at {url}: {e}"))?;
    let status = response.status();
    let body: Value = response.json().await?;
    if !status.is_success() {
        anyhow::bail!("{url} answered {status}: {body}");
    }
    Ok(body)
}

pub async fn run(args: &StatusArgs, out: &mut impl Write) -> anyhow::Result<u8> {
    let http = reqwest::Client::new();
    let base = format!("http://{}", args.listen);
    let health = get(&http, format!("{base}/healthz"), None).await?;
    let rules = get(&http, format!("{base}/v1/rules"), args.token.as_deref()).await?;
    writeln!(
        out,
        "daemon:     {base} ({})",
        health["status"].as_str().unwrap_or("?")
    )?;
    writeln!(
        out,
        "backlog:    {} events not yet evaluated",
        health["backlog"]
    )?;
    let actions = health["actions"].as_object().cloned().unwrap_or_default();
    let counts: Vec<String> = actions.iter().map(|(k, v)| format!("{k} {v}")).collect();
    writeln!(
        out,
        "actions:    {}",
        if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(", ")
        }
    )?;
    let sf = &health["salesforce"];
    let usage = match (sf["api_used"].as_u64(), sf["api_allowed"].as_u64()) {
        (Some(used), Some(allowed)) => format!("{used} of {allowed} API requests today"),
        _ => "no delivery yet".into(),
    };
    writeln!(out, "salesforce: {usage}")?;
    if let Some(error) = sf["last_error"].as_str() {
        writeln!(out, "            last error: {error}")?;
    }
    writeln!(out, "\n{:24} {:>7}  state", "rule", "version")?;
    for rule in rules.as_array().into_iter().flatten() {
        let name = rule["name"].as_str().unwrap_or("(module)");
        let state = match rule["error"].as_str() {
            Some(error) => format!(
                "error, previous version running: {}",
                error.lines().next().unwrap_or_default()
            ),
            None => "ok".into(),
        };
        writeln!(out, "{:24} {:>7}  {state}", name, rule["version"])?;
    }
    Ok(0)
}
