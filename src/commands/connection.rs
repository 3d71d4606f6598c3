//! The connection flags every command that talks to Salesforce shares, and how they
//! become a client: flags > `SF_*` environment > `rulesforce.toml`, or the in-process
//! emulator with `--emulator`.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::Settings;
use crate::emulator::{Emulator, EmulatorConfig};
use crate::salesforce::Client;

/// Connection settings that are not secrets. Secrets (passwords, tokens, client
/// secrets) come from the environment or the config file only, never from flags that
/// would show in `ps` and shell history.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectionArgs {
    /// Config file (default: ./rulesforce.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// token, password, client_credentials, jwt or refresh_token (SF_AUTH_FLOW).
    #[arg(long, global = true, value_name = "FLOW")]
    pub auth_flow: Option<String>,
    /// Login URL (SF_LOGIN_URL); your My Domain URL for client credentials.
    #[arg(long, global = true, value_name = "URL")]
    pub login_url: Option<String>,
    /// Instance URL for the token flow (SF_INSTANCE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub instance_url: Option<String>,
    /// Connected app consumer key (SF_CLIENT_ID).
    #[arg(long, global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// Salesforce username (SF_USERNAME).
    #[arg(long, global = true, value_name = "USER")]
    pub username: Option<String>,
    /// PEM RSA private key for the JWT bearer flow (SF_PRIVATE_KEY_FILE).
    #[arg(long, global = true, value_name = "FILE")]
    pub private_key_file: Option<PathBuf>,
    /// REST API version (SF_API_VERSION, default 66.0).
    #[arg(long, global = true, value_name = "VERSION")]
    pub api_version: Option<String>,
}

impl ConnectionArgs {
    fn flags(&self) -> Settings {
        Settings {
            auth_flow: self.auth_flow.clone(),
            login_url: self.login_url.clone(),
            instance_url: self.instance_url.clone(),
            client_id: self.client_id.clone(),
            username: self.username.clone(),
            private_key_file: self.private_key_file.clone(),
            api_version: self.api_version.clone(),
            ..Settings::default()
        }
    }

    pub fn settings(&self) -> anyhow::Result<Settings> {
        Settings::load(self.flags(), self.config.as_deref())
    }
}

/// A client, and the in-process emulator it talks to when `--emulator` was given (kept
/// alive as long as the connection).
pub struct Connection {
    pub client: Client,
    /// The settings the client was made from.
    pub settings: Settings,
    pub emulator: Option<Emulator>,
}

impl Connection {
    /// Connects to the configured org, or starts the demo emulator on a free loopback
    /// port when `use_emulator` is set. Never falls back to the emulator by itself.
    pub async fn open(args: &ConnectionArgs, use_emulator: bool) -> anyhow::Result<Connection> {
        if use_emulator {
            let emulator = Emulator::start(
                EmulatorConfig::default(),
                SocketAddr::from(([127, 0, 0, 1], 0)),
            )
            .await?;
            let mut settings = emulator.settings();
            settings.api_version = args.api_version.clone();
            let client = Client::from_settings(&settings)?;
            tracing::info!(url = emulator.base_url(), "started the in-process emulator");
            return Ok(Connection {
                client,
                settings,
                emulator: Some(emulator),
            });
        }
        let settings = args.settings()?;
        let client = Client::from_settings(&settings)?;
        Ok(Connection {
            client,
            settings,
            emulator: None,
        })
    }
}
