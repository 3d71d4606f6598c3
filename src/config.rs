//! Connection settings, layered: command-line flags over `SF_*` environment variables
//! over the `[salesforce]` table of `rulesforce.toml`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::secret::Secret;

pub const DEFAULT_LOGIN_URL: &str = "https://login.salesforce.com";
pub const DEFAULT_API_VERSION: &str = "66.0";
pub const DEFAULT_CONFIG_FILE: &str = "rulesforce.toml";

/// Every connection setting, each optional until the flow that needs it is chosen.
/// Field names are the `SF_*` variables without the prefix, in lower case.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub auth_flow: Option<String>,
    pub login_url: Option<String>,
    pub instance_url: Option<String>,
    pub access_token: Option<Secret>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub security_token: Option<Secret>,
    pub private_key_file: Option<PathBuf>,
    pub refresh_token: Option<Secret>,
    pub api_version: Option<String>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    salesforce: Settings,
}

impl Settings {
    /// Reads the `[salesforce]` table of a `rulesforce.toml`.
    pub fn from_toml_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Settings::from_toml_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    pub fn from_toml_str(text: &str) -> Result<Settings, toml::de::Error> {
        toml::from_str::<ConfigFile>(text).map(|file| file.salesforce)
    }

    /// Reads `SF_*` variables through `lookup` (the process environment in production).
    /// Empty values count as unset.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Settings {
        let get = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let secret = |name: &str| get(name).map(Secret::from);
        Settings {
            auth_flow: get("SF_AUTH_FLOW"),
            login_url: get("SF_LOGIN_URL"),
            instance_url: get("SF_INSTANCE_URL"),
            access_token: secret("SF_ACCESS_TOKEN"),
            client_id: get("SF_CLIENT_ID"),
            client_secret: secret("SF_CLIENT_SECRET"),
            username: get("SF_USERNAME"),
            password: secret("SF_PASSWORD"),
            security_token: secret("SF_SECURITY_TOKEN"),
            private_key_file: get("SF_PRIVATE_KEY_FILE").map(PathBuf::from),
            refresh_token: secret("SF_REFRESH_TOKEN"),
            api_version: get("SF_API_VERSION"),
        }
    }

    /// `self` with every unset field taken from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            auth_flow: self.auth_flow.or(lower.auth_flow),
            login_url: self.login_url.or(lower.login_url),
            instance_url: self.instance_url.or(lower.instance_url),
            access_token: self.access_token.or(lower.access_token),
            client_id: self.client_id.or(lower.client_id),
            client_secret: self.client_secret.or(lower.client_secret),
            username: self.username.or(lower.username),
            password: self.password.or(lower.password),
            security_token: self.security_token.or(lower.security_token),
            private_key_file: self.private_key_file.or(lower.private_key_file),
            refresh_token: self.refresh_token.or(lower.refresh_token),
            api_version: self.api_version.or(lower.api_version),
        }
    }

    /// Flags over the process environment over the config file. An explicitly named
    /// config file must exist; the default `rulesforce.toml` is read only when present.
    pub fn load(flags: Settings, config_file: Option<&Path>) -> anyhow::Result<Settings> {
        let file = match config_file {
            Some(path) => Settings::from_toml_file(path)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                Settings::from_toml_file(Path::new(DEFAULT_CONFIG_FILE))?
            }
            None => Settings::default(),
        };
        let env = Settings::from_env(|name| std::env::var(name).ok());
        Ok(flags.or(env).or(file))
    }

    pub fn api_version(&self) -> &str {
        self.api_version.as_deref().unwrap_or(DEFAULT_API_VERSION)
    }

    pub fn login_url(&self) -> &str {
        self.login_url.as_deref().unwrap_or(DEFAULT_LOGIN_URL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_env_beat_file() {
        let file = Settings::from_toml_str(
            "[salesforce]\nusername = \"file@x.com\"\nclient_id = \"file-id\"\napi_version = \"60.0\"\n",
        )
        .unwrap();
        let env = Settings::from_env(|name| match name {
            "SF_USERNAME" => Some("env@x.com".into()),
            "SF_CLIENT_ID" => Some("env-id".into()),
            "SF_PASSWORD" => Some(String::new()),
            _ => None,
        });
        let flags = Settings {
            username: Some("flag@x.com".into()),
            ..Settings::default()
        };
        let merged = flags.or(env).or(file);
        assert_eq!(merged.username.as_deref(), Some("flag@x.com"));
        assert_eq!(merged.client_id.as_deref(), Some("env-id"));
        assert_eq!(merged.api_version(), "60.0");
        assert_eq!(merged.password, None, "an empty variable is unset");
        assert_eq!(merged.login_url(), DEFAULT_LOGIN_URL);
    }

    #[test]
    fn unknown_keys_in_the_file_are_errors() {
        let err = Settings::from_toml_str("[salesforce]\nusernme = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("usernme"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let settings = Settings {
            password: Some("hunter2".into()),
            ..Settings::default()
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
