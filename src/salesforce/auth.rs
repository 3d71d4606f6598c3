//! OAuth: the five ways to get an access token, the one cached session every request
//! shares, and renewal after Salesforce says the session expired.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::error::{Error, Result};
use crate::config::Settings;
use crate::secret::Secret;

/// How rulesforce gets its access token (`SF_AUTH_FLOW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFlow {
    Token,
    Password,
    ClientCredentials,
    Jwt,
    RefreshToken,
}

impl AuthFlow {
    pub fn parse(name: &str) -> Result<AuthFlow> {
        match name {
            "token" => Ok(AuthFlow::Token),
            "password" => Ok(AuthFlow::Password),
            "client_credentials" => Ok(AuthFlow::ClientCredentials),
            "jwt" => Ok(AuthFlow::Jwt),
            "refresh_token" => Ok(AuthFlow::RefreshToken),
            other => Err(Error::Config(format!(
                "SF_AUTH_FLOW '{other}' is not one of token, password, client_credentials, jwt, refresh_token"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthFlow::Token => "token",
            AuthFlow::Password => "password",
            AuthFlow::ClientCredentials => "client_credentials",
            AuthFlow::Jwt => "jwt",
            AuthFlow::RefreshToken => "refresh_token",
        }
    }

    /// The flow the settings point to when `SF_AUTH_FLOW` is not set.
    fn infer(settings: &Settings) -> Option<AuthFlow> {
        if settings.access_token.is_some() {
            Some(AuthFlow::Token)
        } else if settings.private_key_file.is_some() {
            Some(AuthFlow::Jwt)
        } else if settings.refresh_token.is_some() {
            Some(AuthFlow::RefreshToken)
        } else if settings.password.is_some() || settings.username.is_some() {
            Some(AuthFlow::Password)
        } else if settings.client_id.is_some() || settings.client_secret.is_some() {
            Some(AuthFlow::ClientCredentials)
        } else {
            None
        }
    }
}

pub const PASSWORD_FLOW_HINT: &str = "orgs created since Summer '23 block the username-password flow by default, \
and Salesforce is retiring it: use client_credentials (SF_CLIENT_ID, SF_CLIENT_SECRET, SF_LOGIN_URL=https://<your-domain>.my.salesforce.com) \
or jwt (SF_CLIENT_ID, SF_USERNAME, SF_PRIVATE_KEY_FILE) instead";

/// What one flow needs, validated: everything required is present.
#[derive(Debug, Clone)]
pub enum Credentials {
    Token {
        instance_url: Url,
        access_token: Secret,
    },
    Password {
        login_url: Url,
        client_id: String,
        client_secret: Secret,
        username: String,
        password: Secret,
    },
    ClientCredentials {
        login_url: Url,
        client_id: String,
        client_secret: Secret,
    },
    Jwt {
        login_url: Url,
        client_id: String,
        username: String,
        private_key_pem: Secret,
    },
    RefreshToken {
        login_url: Url,
        client_id: String,
        client_secret: Option<Secret>,
        refresh_token: Secret,
    },
}

impl Credentials {
    /// Chooses the flow (`SF_AUTH_FLOW`, or inferred) and checks that its settings are
    /// present, naming every missing one.
    pub fn from_settings(settings: &Settings) -> Result<Credentials> {
        let flow = match &settings.auth_flow {
            Some(name) => AuthFlow::parse(name)?,
            None => AuthFlow::infer(settings).ok_or_else(|| {
                Error::Config(
                    "no Salesforce connection is configured. Set SF_CLIENT_ID and SF_CLIENT_SECRET with \
                     SF_LOGIN_URL (your My Domain URL) for client credentials, or SF_INSTANCE_URL and \
                     SF_ACCESS_TOKEN for a token you already have, or the other flows in the README; \
                     or pass --emulator to use the local emulator"
                        .into(),
                )
            })?,
        };
        let mut missing = Vec::new();
        let mut need = |name: &'static str, present: bool| {
            if !present {
                missing.push(name);
            }
        };
        match flow {
            AuthFlow::Token => {
                need("SF_INSTANCE_URL", settings.instance_url.is_some());
                need("SF_ACCESS_TOKEN", settings.access_token.is_some());
            }
            AuthFlow::Password => {
                need("SF_CLIENT_ID", settings.client_id.is_some());
                need("SF_CLIENT_SECRET", settings.client_secret.is_some());
                need("SF_USERNAME", settings.username.is_some());
                need("SF_PASSWORD", settings.password.is_some());
            }
            AuthFlow::ClientCredentials => {
                need("SF_CLIENT_ID", settings.client_id.is_some());
                need("SF_CLIENT_SECRET", settings.client_secret.is_some());
            }
            AuthFlow::Jwt => {
                need("SF_CLIENT_ID", settings.client_id.is_some());
                need("SF_USERNAME", settings.username.is_some());
                need("SF_PRIVATE_KEY_FILE", settings.private_key_file.is_some());
            }
            AuthFlow::RefreshToken => {
                need("SF_CLIENT_ID", settings.client_id.is_some());
                need("SF_REFRESH_TOKEN", settings.refresh_token.is_some());
            }
        }
        if !missing.is_empty() {
            return Err(Error::Config(format!(
                "the {} flow needs {}, which {} not set",
                flow.name(),
                missing.join(", "),
                if missing.len() == 1 { "is" } else { "are" }
            )));
        }

        let string = |value: &Option<String>| value.clone().unwrap_or_default();
        let secret = |value: &Option<Secret>| value.clone().unwrap_or_default();
        let login_url = || checked_url(settings.login_url(), "SF_LOGIN_URL");
        Ok(match flow {
            AuthFlow::Token => Credentials::Token {
                instance_url: checked_url(&string(&settings.instance_url), "SF_INSTANCE_URL")?,
                access_token: secret(&settings.access_token),
            },
            AuthFlow::Password => {
                // Salesforce wants the security token appended to the password.
                let password = format!(
                    "{}{}",
                    secret(&settings.password).expose(),
                    secret(&settings.security_token).expose()
                );
                Credentials::Password {
                    login_url: login_url()?,
                    client_id: string(&settings.client_id),
                    client_secret: secret(&settings.client_secret),
                    username: string(&settings.username),
                    password: Secret::new(password),
                }
            }
            AuthFlow::ClientCredentials => {
                let login_url = login_url()?;
                if matches!(
                    login_url.host_str(),
                    Some("login.salesforce.com" | "test.salesforce.com")
                ) {
                    return Err(Error::Config(format!(
                        "the client_credentials flow works only against your org's My Domain URL, not {}: \
                         set SF_LOGIN_URL=https://<your-domain>.my.salesforce.com",
                        login_url.as_str().trim_end_matches('/')
                    )));
                }
                Credentials::ClientCredentials {
                    login_url,
                    client_id: string(&settings.client_id),
                    client_secret: secret(&settings.client_secret),
                }
            }
            AuthFlow::Jwt => {
                let path = settings.private_key_file.clone().unwrap_or_default();
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    Error::Config(format!(
                        "cannot read SF_PRIVATE_KEY_FILE {}: {e}",
                        path.display()
                    ))
                })?;
                Credentials::Jwt {
                    login_url: login_url()?,
                    client_id: string(&settings.client_id),
                    username: string(&settings.username),
                    private_key_pem: Secret::new(pem),
                }
            }
            AuthFlow::RefreshToken => Credentials::RefreshToken {
                login_url: login_url()?,
                client_id: string(&settings.client_id),
                client_secret: settings.client_secret.clone(),
                refresh_token: secret(&settings.refresh_token),
            },
        })
    }

    pub fn flow(&self) -> AuthFlow {
        match self {
            Credentials::Token { .. } => AuthFlow::Token,
            Credentials::Password { .. } => AuthFlow::Password,
            Credentials::ClientCredentials { .. } => AuthFlow::ClientCredentials,
            Credentials::Jwt { .. } => AuthFlow::Jwt,
            Credentials::RefreshToken { .. } => AuthFlow::RefreshToken,
        }
    }
}

/// Parses a URL and refuses plain `http://` except to loopback hosts (the emulator,
/// tests): a token must never cross a network unencrypted.
pub fn checked_url(raw: &str, what: &str) -> Result<Url> {
    let url =
        Url::parse(raw).map_err(|e| Error::Config(format!("{what} '{raw}' is not a URL: {e}")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(Error::Config(format!(
            "{what} '{raw}' uses http://, which is allowed only for loopback hosts; use https://"
        ))),
        other => Err(Error::Config(format!(
            "{what} '{raw}' has scheme {other}: use https://"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// An access token and where to use it.
#[derive(Debug)]
pub struct Session {
    pub instance_url: Url,
    pub access_token: Secret,
    /// The identity URL (`.../id/<orgId>/<userId>`); the token flow does not have one.
    pub identity_url: Option<String>,
    /// Counts logins, so that many requests failing on one expired token renew it once.
    pub generation: u64,
}

impl Session {
    /// Org and user ids: the last two segments of the identity URL.
    pub fn org_and_user_ids(&self) -> Option<(String, String)> {
        let url = self.identity_url.as_deref()?;
        let mut segments = url.trim_end_matches('/').rsplit('/');
        let user = segments.next()?.to_string();
        let org = segments.next()?.to_string();
        Some((org, user))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    id: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Holds the credentials and the one current session. Logging in happens under a lock,
/// so concurrent callers that find no session, or the same expired one, wait for a
/// single login instead of each starting their own.
pub struct Authenticator {
    http: reqwest::Client,
    credentials: Credentials,
    session: Mutex<Option<Arc<Session>>>,
}

impl Authenticator {
    pub fn new(http: reqwest::Client, credentials: Credentials) -> Authenticator {
        Authenticator {
            http,
            credentials,
            session: Mutex::new(None),
        }
    }

    pub fn flow(&self) -> AuthFlow {
        self.credentials.flow()
    }

    /// The current session, logging in first if there is none.
    pub async fn session(&self) -> Result<Arc<Session>> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref() {
            return Ok(session.clone());
        }
        let session = Arc::new(self.request_token(0).await?);
        *current = Some(session.clone());
        Ok(session)
    }

    /// A session to replace `stale`, which Salesforce just rejected. If another caller
    /// already replaced it, that newer session is returned without a second login.
    pub async fn renew(&self, stale: &Session) -> Result<Arc<Session>> {
        let mut current = self.session.lock().await;
        if let Some(session) = current.as_ref()
            && session.generation != stale.generation
        {
            return Ok(session.clone());
        }
        if self.flow() == AuthFlow::Token {
            return Err(Error::SessionExpired(
                "Salesforce rejected the access token (INVALID_SESSION_ID) and the token flow cannot \
                 get a new one: fetch a fresh SF_ACCESS_TOKEN, or configure client_credentials or jwt \
                 so that rulesforce can log in again by itself"
                    .into(),
            ));
        }
        tracing::info!(
            flow = self.flow().name(),
            "session expired; logging in again"
        );
        let session = Arc::new(self.request_token(stale.generation + 1).await?);
        *current = Some(session.clone());
        Ok(session)
    }

    /// Forgets the session, so the next call logs in again.
    pub async fn forget(&self) {
        *self.session.lock().await = None;
    }

    async fn request_token(&self, generation: u64) -> Result<Session> {
        let (login_url, form) = match &self.credentials {
            Credentials::Token {
                instance_url,
                access_token,
            } => {
                return Ok(Session {
                    instance_url: instance_url.clone(),
                    access_token: access_token.clone(),
                    identity_url: None,
                    generation,
                });
            }
            Credentials::Password {
                login_url,
                client_id,
                client_secret,
                username,
                password,
            } => (
                login_url,
                vec![
                    ("grant_type", "password".to_string()),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.expose().to_string()),
                    ("username", username.clone()),
                    ("password", password.expose().to_string()),
                ],
            ),
            Credentials::ClientCredentials {
                login_url,
                client_id,
                client_secret,
            } => (
                login_url,
                vec![
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.expose().to_string()),
                ],
            ),
            Credentials::Jwt {
                login_url,
                client_id,
                username,
                private_key_pem,
            } => (
                login_url,
                vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
                    ),
                    (
                        "assertion",
                        jwt_assertion(login_url, client_id, username, private_key_pem)?,
                    ),
                ],
            ),
            Credentials::RefreshToken {
                login_url,
                client_id,
                client_secret,
                refresh_token,
            } => {
                let mut form = vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", refresh_token.expose().to_string()),
                    ("client_id", client_id.clone()),
                ];
                if let Some(secret) = client_secret {
                    form.push(("client_secret", secret.expose().to_string()));
                }
                (login_url, form)
            }
        };
        let endpoint = login_url
            .join("services/oauth2/token")
            .map_err(|e| Error::Config(format!("bad login URL: {e}")))?;
        let response = self
            .http
            .post(endpoint)
            .form(&form)
            .send()
            .await
            .map_err(Error::transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(Error::transport)?;
        if !status.is_success() {
            let refused: TokenError = serde_json::from_slice(&body).map_err(|_| {
                Error::Decode(format!(
                    "the token endpoint answered {status} with: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(200)
                        .collect::<String>()
                ))
            })?;
            let hint = (self.flow() == AuthFlow::Password && refused.error == "invalid_grant")
                .then(|| PASSWORD_FLOW_HINT.to_string());
            return Err(Error::Auth {
                error: refused.error,
                description: refused.error_description,
                hint,
            });
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| Error::Decode(format!("token response: {e}")))?;
        Ok(Session {
            instance_url: checked_url(&token.instance_url, "the instance_url Salesforce returned")?,
            access_token: Secret::new(token.access_token),
            identity_url: token.id,
            generation,
        })
    }
}

/// The audience Salesforce expects in a JWT: production or sandbox login, or the
/// login URL itself when it is a loopback emulator.
fn jwt_audience(login_url: &Url) -> String {
    let host = login_url.host_str().unwrap_or_default();
    if is_loopback(login_url) {
        login_url.as_str().trim_end_matches('/').to_string()
    } else if host == "test.salesforce.com" || host.contains(".sandbox.") {
        "https://test.salesforce.com".into()
    } else {
        "https://login.salesforce.com".into()
    }
}

fn jwt_assertion(login_url: &Url, client_id: &str, username: &str, pem: &Secret) -> Result<String> {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        sub: &'a str,
        aud: String,
        exp: u64,
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes()).map_err(|e| {
        Error::Config(format!(
            "SF_PRIVATE_KEY_FILE is not a PEM RSA private key: {e}"
        ))
    })?;
    let claims = Claims {
        iss: client_id,
        sub: username,
        aud: jwt_audience(login_url),
        exp: now + 180,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|e| Error::Config(format!("cannot sign the JWT assertion: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::default()
    }

    #[test]
    fn http_is_only_for_loopback() {
        assert!(checked_url("http://127.0.0.1:8788", "x").is_ok());
        assert!(checked_url("http://localhost:1", "x").is_ok());
        assert!(checked_url("http://[::1]:1", "x").is_ok());
        assert!(checked_url("https://acme.my.salesforce.com", "x").is_ok());
        let err = checked_url("http://acme.my.salesforce.com", "SF_LOGIN_URL").unwrap_err();
        assert!(err.to_string().contains("only for loopback"), "{err}");
    }

    #[test]
    fn infers_the_flow_and_names_what_is_missing() {
        let s = Settings {
            username: Some("u@x.com".into()),
            ..settings()
        };
        let err = Credentials::from_settings(&s).unwrap_err().to_string();
        assert_eq!(
            err,
            "the password flow needs SF_CLIENT_ID, SF_CLIENT_SECRET, SF_PASSWORD, which are not set"
        );

        let s = Settings {
            instance_url: Some("https://acme.my.salesforce.com".into()),
            access_token: Some("00Dabc".into()),
            ..settings()
        };
        assert_eq!(
            Credentials::from_settings(&s).unwrap().flow(),
            AuthFlow::Token
        );

        let err = Credentials::from_settings(&settings())
            .unwrap_err()
            .to_string();
        assert!(err.contains("--emulator"), "{err}");
    }

    #[test]
    fn client_credentials_refuse_the_generic_login_hosts() {
        let s = Settings {
            client_id: Some("id".into()),
            client_secret: Some("secret".into()),
            login_url: Some("https://test.salesforce.com".into()),
            ..settings()
        };
        let err = Credentials::from_settings(&s).unwrap_err().to_string();
        assert!(err.contains("My Domain"), "{err}");
        let s = Settings {
            login_url: None,
            ..s
        };
        assert!(
            Credentials::from_settings(&s)
                .unwrap_err()
                .to_string()
                .contains("login.salesforce.com")
        );
    }

    #[test]
    fn password_gets_the_security_token_appended_and_stays_hidden() {
        let s = Settings {
            client_id: Some("id".into()),
            client_secret: Some("cs".into()),
            username: Some("u@x.com".into()),
            password: Some("pw".into()),
            security_token: Some("tok".into()),
            ..settings()
        };
        let creds = Credentials::from_settings(&s).unwrap();
        let Credentials::Password { password, .. } = &creds else {
            panic!("{creds:?}")
        };
        assert_eq!(password.expose(), "pwtok");
        assert!(!format!("{creds:?}").contains("pwtok"));
    }

    #[test]
    fn unknown_flow_is_an_error() {
        let s = Settings {
            auth_flow: Some("saml".into()),
            ..settings()
        };
        assert!(
            Credentials::from_settings(&s)
                .unwrap_err()
                .to_string()
                .contains("saml")
        );
    }

    #[test]
    fn ids_come_from_the_identity_url() {
        let session = Session {
            instance_url: Url::parse("https://x.my.salesforce.com").unwrap(),
            access_token: Secret::new("t"),
            identity_url: Some(
                "https://login.salesforce.com/id/00Dxx0000001gPL/005xx000001Sv6e".into(),
            ),
            generation: 0,
        };
        assert_eq!(
            session.org_and_user_ids(),
            Some(("00Dxx0000001gPL".to_string(), "005xx000001Sv6e".to_string()))
        );
    }
}
