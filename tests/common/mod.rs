//! Shared test helpers: an emulator on a free loopback port, clients with fast retries,
//! and the real binary.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rulesforce::config::Settings;
use rulesforce::emulator::{Emulator, EmulatorConfig, LoggedRequest};
use rulesforce::salesforce::{Client, Credentials, RetryPolicy};

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

pub async fn emulator() -> Emulator {
    emulator_with(EmulatorConfig::default()).await
}

pub async fn emulator_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, loopback())
        .await
        .expect("emulator starts")
}

/// Retries fast enough for tests, with the same shape as production.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_elapsed: Duration::from_secs(10),
    }
}

pub fn client_for(settings: &Settings) -> Client {
    let credentials = Credentials::from_settings(settings).expect("valid settings");
    Client::new(credentials, settings.api_version(), fast_retry()).expect("client")
}

/// A password-flow client for the emulator's demo credentials.
pub fn client(emulator: &Emulator) -> Client {
    client_for(&emulator.settings())
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Requests to this route (path without query), in order.
pub fn requests_to<'a>(
    log: &'a [LoggedRequest],
    method: &str,
    route: &str,
) -> Vec<&'a LoggedRequest> {
    log.iter()
        .filter(|r| r.method == method && r.route() == route)
        .collect()
}

pub fn token_requests(log: &[LoggedRequest]) -> usize {
    requests_to(log, "POST", "/services/oauth2/token").len()
}

/// Creates `n` Leads through Collections calls; their ids, in order.
pub async fn bulk_leads(emulator: &Emulator, n: usize) -> Vec<String> {
    let writes: Vec<rulesforce::salesforce::RecordWrite> = (0..n)
        .map(|i| rulesforce::salesforce::RecordWrite {
            sobject: "Lead".into(),
            id: None,
            fields: serde_json::json!({"LastName": format!("Bulk {i}"), "Company": "Bulk"})
                .as_object()
                .unwrap()
                .clone(),
        })
        .collect();
    let results = client(emulator)
        .create_many(&writes)
        .await
        .expect("leads created");
    results
        .into_iter()
        .map(|r| r.expect("lead created").id.expect("an id"))
        .collect()
}

pub const DATA: &str = "/services/data/v66.0";

/// The built `rulesforce` binary, with no `SF_*` settings leaking in from the environment.
pub fn binary() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rulesforce"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SF_") {
            command.env_remove(key);
        }
    }
    command.env_remove("RUST_LOG");
    command.kill_on_drop(true);
    command
}

/// `SF_*` variables for the emulator's password flow.
pub fn emulator_env(emulator: &Emulator) -> Vec<(String, String)> {
    let c = emulator.config();
    vec![
        ("SF_LOGIN_URL".into(), emulator.base_url().into()),
        ("SF_CLIENT_ID".into(), c.client_id.clone()),
        ("SF_CLIENT_SECRET".into(), c.client_secret.clone()),
        ("SF_USERNAME".into(), c.username.clone()),
        ("SF_PASSWORD".into(), c.password.clone()),
        ("SF_SECURITY_TOKEN".into(), c.security_token.clone()),
    ]
}
