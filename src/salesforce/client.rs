//! The HTTP core: one shared session, retries with backoff for what can be retried,
//! one re-login when the session expires, and the API usage Salesforce reports.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::auth::{AuthFlow, Authenticator, Credentials, Session};
use super::error::{ApiError, Error, Result};
use super::request::ApiRequest;
use crate::config::Settings;

/// How often and how long to retry a request that failed in a way that may pass.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter: half the step fixed, half random, so that many
    /// clients failing together do not retry together. `Retry-After` is a floor.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let step = self
            .base_delay
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(self.max_delay);
        let half = step / 2;
        let jittered = half + half.mul_f64(fastrand::f64());
        jittered.max(retry_after.unwrap_or_default())
    }
}

/// `Sforce-Limit-Info: api-usage=18/15000`: API requests used and allowed today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ApiUsage {
    pub used: u64,
    pub allowed: u64,
}

impl ApiUsage {
    pub fn parse(header: &str) -> Option<ApiUsage> {
        let usage = header
            .split(',')
            .find_map(|part| part.trim().strip_prefix("api-usage="))?;
        let (used, allowed) = usage.split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            allowed: allowed.trim().parse().ok()?,
        })
    }
}

/// A decoded answer: the status and the JSON body (`null` for an empty body).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

/// Who the session belongs to.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Identity {
    pub org_id: String,
    pub user_id: String,
    pub username: String,
    pub display_name: String,
    pub instance_url: String,
}

/// A Salesforce connection. Cheap to clone; every clone shares one session, so one
/// login serves every request and task.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    auth: Arc<Authenticator>,
    api_version: String,
    retry: RetryPolicy,
    usage: Mutex<Option<ApiUsage>>,
    /// In dry-run mode, writes are recorded here instead of sent.
    held_writes: Option<Arc<Mutex<Vec<ApiRequest>>>>,
}

impl Client {
    /// A client for the configured flow. Nothing is sent until the first call.
    pub fn from_settings(settings: &Settings) -> Result<Client> {
        let credentials = Credentials::from_settings(settings)?;
        Client::new(credentials, settings.api_version(), RetryPolicy::default())
    }

    pub fn new(credentials: Credentials, api_version: &str, retry: RetryPolicy) -> Result<Client> {
        let version = api_version.trim_start_matches('v');
        if version.split_once('.').is_none_or(|(major, minor)| {
            major.parse::<u32>().is_err() || minor.parse::<u32>().is_err()
        }) {
            return Err(Error::Config(format!(
                "SF_API_VERSION '{api_version}' is not a version like 66.0"
            )));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("rulesforce/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(Error::transport)?;
        Ok(Client {
            inner: Arc::new(Inner {
                auth: Arc::new(Authenticator::new(http.clone(), credentials)),
                http,
                api_version: version.to_string(),
                retry,
                usage: Mutex::new(None),
                held_writes: None,
            }),
        })
    }

    /// A client on the same session that sends reads but holds every write back:
    /// each write is recorded in `held` and answered as if it succeeded, so callers run
    /// their normal path and `--dry-run` can print exactly what would have been sent.
    pub fn dry_run(&self, held: Arc<Mutex<Vec<ApiRequest>>>) -> Client {
        Client {
            inner: Arc::new(Inner {
                http: self.inner.http.clone(),
                auth: self.inner.auth.clone(),
                api_version: self.inner.api_version.clone(),
                retry: self.inner.retry.clone(),
                usage: Mutex::new(self.api_usage()),
                held_writes: Some(held),
            }),
        }
    }

    pub fn is_dry_run(&self) -> bool {
        self.inner.held_writes.is_some()
    }

    pub fn api_version(&self) -> &str {
        &self.inner.api_version
    }

    pub fn flow(&self) -> AuthFlow {
        self.inner.auth.flow()
    }

    /// The data API's base path, e.g. `/services/data/v66.0/`.
    pub fn data_path(&self) -> String {
        format!("/services/data/v{}/", self.inner.api_version)
    }

    /// The API usage from the last response that reported it.
    pub fn api_usage(&self) -> Option<ApiUsage> {
        *self.inner.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current session, logging in if there is none yet.
    pub async fn session(&self) -> Result<Arc<Session>> {
        self.inner.auth.session().await
    }

    /// Drops the session; the next call logs in again (the REPL's `:login`).
    pub async fn logout(&self) {
        self.inner.auth.forget().await;
    }

    /// Sends one request, retrying what can be retried and logging in again once if the
    /// session expired. A non-2xx answer is an [`Error::Api`].
    pub async fn send(&self, request: &ApiRequest) -> Result<ApiResponse> {
        if let Some(held) = self
            .inner
            .held_writes
            .as_ref()
            .filter(|_| request.is_write())
        {
            held.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(request.clone());
            return Ok(simulated_success(request));
        }
        let started = Instant::now();
        let mut session = self.session().await?;
        let mut renewed = false;
        let mut attempt = 1;
        loop {
            let (result, retry_after) = self.send_once(&session, request).await;
            let err = match result {
                Ok(response) => return Ok(response),
                Err(err) => err,
            };
            if !renewed && is_expired_session(&err) {
                session = self.inner.auth.renew(&session).await?;
                renewed = true;
                continue;
            }
            let policy = &self.inner.retry;
            if !err.is_retryable() {
                return Err(err);
            }
            let delay = policy.delay(attempt, retry_after);
            if attempt >= policy.max_attempts || started.elapsed() + delay > policy.max_elapsed {
                return Err(if attempt == 1 {
                    err
                } else {
                    Error::RetriesExhausted {
                        attempts: attempt,
                        last: Box::new(err),
                    }
                });
            }
            tracing::warn!(%err, attempt, delay_ms = delay.as_millis() as u64, path = %request.path, "retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        session: &Session,
        request: &ApiRequest,
    ) -> (Result<ApiResponse>, Option<Duration>) {
        let path = request.absolute_path(&self.data_path());
        let url = match session.instance_url.join(&path) {
            Ok(url) => url,
            Err(e) => {
                return (
                    Err(Error::Config(format!("bad request path {path}: {e}"))),
                    None,
                );
            }
        };
        let mut builder = self.inner.http.request(request.method.clone(), url);
        if request.authenticated {
            builder = builder.bearer_auth(session.access_token.expose());
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return (Err(Error::transport(e)), None),
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        if let Some(usage) = header("sforce-limit-info")
            .as_deref()
            .and_then(ApiUsage::parse)
        {
            *self.inner.usage.lock().unwrap_or_else(|e| e.into_inner()) = Some(usage);
        }
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(bytes) => bytes,
            Err(e) => return (Err(Error::transport(e)), retry_after),
        };
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&bytes) {
                Ok(value) => value,
                Err(_) if (200..300).contains(&status) => {
                    return (
                        Err(Error::Decode(format!(
                            "{status} with a body that is not JSON"
                        ))),
                        retry_after,
                    );
                }
                Err(_) => {
                    Value::String(String::from_utf8_lossy(&bytes).chars().take(500).collect())
                }
            }
        };
        if (200..300).contains(&status) {
            return (Ok(ApiResponse { status, body }), retry_after);
        }
        (
            Err(Error::Api {
                status,
                errors: api_errors(status, body),
            }),
            retry_after,
        )
    }

    /// `GET /services/data/`: the API versions the org serves (sent without a token).
    pub async fn versions(&self) -> Result<Vec<Value>> {
        let request = ApiRequest {
            authenticated: false,
            ..ApiRequest::get("/services/data/")
        };
        let body = self.send(&request).await?.body;
        serde_json::from_value(body).map_err(|e| Error::Decode(format!("versions: {e}")))
    }

    /// The `/limits` resource.
    pub async fn limits(&self) -> Result<Value> {
        Ok(self.send(&ApiRequest::get("limits")).await?.body)
    }

    /// Who the session belongs to, from `/services/oauth2/userinfo` (which is also how
    /// the token flow, which has no identity URL, learns it).
    pub async fn identity(&self) -> Result<Identity> {
        let session = self.session().await?;
        let info = self
            .send(&ApiRequest::get("/services/oauth2/userinfo"))
            .await?
            .body;
        let text = |key: &str| {
            info.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (org_id, user_id) = session
            .org_and_user_ids()
            .unwrap_or_else(|| (text("organization_id"), text("user_id")));
        Ok(Identity {
            org_id,
            user_id,
            username: text("preferred_username"),
            display_name: text("name"),
            instance_url: session
                .instance_url
                .as_str()
                .trim_end_matches('/')
                .to_string(),
        })
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("flow", &self.flow().name())
            .field("api_version", &self.inner.api_version)
            .finish_non_exhaustive()
    }
}

/// The answer a held-back write gets: success, with placeholder ids, shaped like the
/// real answer (one result per record for collections).
fn simulated_success(request: &ApiRequest) -> ApiResponse {
    const PLACEHOLDER_ID: &str = "000000000000000AAA";
    let saved =
        serde_json::json!({"id": PLACEHOLDER_ID, "success": true, "errors": [], "created": true});
    let records = match (
        &request.body,
        request.path.starts_with("composite/sobjects"),
    ) {
        (Some(body), true) => body.get("records").and_then(Value::as_array).map(Vec::len),
        (None, true) => request
            .path
            .split_once("ids=")
            .map(|(_, ids)| ids.split("%2C").count()),
        _ => None,
    };
    match records {
        Some(n) => ApiResponse {
            status: 200,
            body: Value::Array(vec![saved; n]),
        },
        None if request.method == reqwest::Method::POST => ApiResponse {
            status: 201,
            body: saved,
        },
        None => ApiResponse {
            status: 204,
            body: Value::Null,
        },
    }
}

fn is_expired_session(err: &Error) -> bool {
    // "This session is not valid for use with the REST API" is INVALID_SESSION_ID too,
    // but a new token from the same app would not be valid either.
    matches!(err, Error::Api { status: 401, errors }
        if errors.iter().any(|e| e.error_code == "INVALID_SESSION_ID" && !e.message.contains("not valid for use with the REST API")))
}

/// Salesforce's error array, or a stand-in for bodies that are not one (a proxy's HTML
/// page, a 300 from an upsert that matched several records).
fn api_errors(status: u16, body: Value) -> Vec<ApiError> {
    if let Ok(errors) = serde_json::from_value::<Vec<ApiError>>(body.clone())
        && !errors.is_empty()
    {
        return errors;
    }
    let (code, message) = match (status, &body) {
        (300, Value::Array(urls)) => (
            "MULTIPLE_CHOICES",
            format!("the external id matched {} records", urls.len()),
        ),
        (_, Value::String(text)) => ("HTTP_ERROR", format!("HTTP {status}: {text}")),
        _ => ("HTTP_ERROR", format!("HTTP {status}: {body}")),
    };
    vec![ApiError::new(code, message)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_limit_info() {
        assert_eq!(
            ApiUsage::parse("api-usage=18/15000"),
            Some(ApiUsage {
                used: 18,
                allowed: 15000
            })
        );
        assert_eq!(
            ApiUsage::parse("per-app-api-usage=1/10(appName=x), api-usage=7/100"),
            Some(ApiUsage {
                used: 7,
                allowed: 100
            })
        );
        assert_eq!(ApiUsage::parse("nonsense"), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
            ..RetryPolicy::default()
        };
        let first = policy.delay(1, None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let tenth = policy.delay(10, None);
        assert!(tenth >= Duration::from_millis(200) && tenth <= Duration::from_millis(400));
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }

    #[test]
    fn non_salesforce_error_bodies_still_become_typed_errors() {
        let errors = api_errors(502, Value::String("<html>bad gateway</html>".into()));
        assert_eq!(errors[0].error_code, "HTTP_ERROR");
        let errors = api_errors(
            400,
            serde_json::json!([{"errorCode":"MALFORMED_ID","message":"bad","fields":["Id"]}]),
        );
        assert_eq!(errors[0].fields, vec!["Id"]);
    }
}
