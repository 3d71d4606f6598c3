//! A local Salesforce REST emulator on loopback: the OAuth token endpoint, userinfo,
//! sObject CRUD and upsert, SOQL with paging, sObject Collections, limits, fault injection
//! and a request log. The client's tests and `--emulator` run against it over real HTTP.

mod collections;
pub mod db;
pub mod faults;
mod oauth;
mod rest;
pub mod schema;
mod seed;
pub mod soql;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub use db::Db;
pub use faults::{FaultUpdate, Faults, LoggedRequest};

use crate::salesforce::ApiError;
use crate::salesforce::id::checksum;

/// The fixed demo credentials, documented in the README so that any tool can use them.
pub const DEMO_CLIENT_ID: &str = "rulesforce-demo";
pub const DEMO_CLIENT_SECRET: &str = "demo-secret";
pub const DEMO_USERNAME: &str = "demo@example.com";
pub const DEMO_PASSWORD: &str = "demo-password";
pub const DEMO_SECURITY_TOKEN: &str = "demo-token";
pub const DEMO_REFRESH_TOKEN: &str = "demo-refresh-token";
pub const DEFAULT_PORT: u16 = 8788;

/// API versions served: 20.0 up to Summer '26.
const MIN_VERSION: u32 = 20;
const MAX_VERSION: u32 = 67;

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
    pub security_token: String,
    pub refresh_token: String,
    /// PEM public key that verifies JWT bearer assertions; without it that flow is refused.
    pub jwt_public_key: Option<String>,
    pub daily_api_limit: u64,
    /// Records per query page before `nextRecordsUrl` (Salesforce's default is 2000).
    pub page_size: usize,
    /// Keep records in this SQLite file across restarts; in memory when `None`.
    pub state_file: Option<PathBuf>,
    /// Load the demo data into an empty store.
    pub seed: bool,
    pub faults: Faults,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: DEMO_CLIENT_SECRET.into(),
            username: DEMO_USERNAME.into(),
            password: DEMO_PASSWORD.into(),
            security_token: DEMO_SECURITY_TOKEN.into(),
            refresh_token: DEMO_REFRESH_TOKEN.into(),
            jwt_public_key: None,
            daily_api_limit: 15_000,
            page_size: 2000,
            state_file: None,
            seed: true,
            faults: Faults::default(),
        }
    }
}

/// A query's remaining pages, kept until read.
struct Cursor {
    records: Vec<Value>,
    total: usize,
}

/// State shared by every handler.
struct Shared {
    config: EmulatorConfig,
    base_url: String,
    org_id: String,
    user_id: String,
    db: Mutex<Db>,
    sessions: Mutex<HashSet<String>>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<LoggedRequest>>,
    cursors: Mutex<HashMap<String, Cursor>>,
    api_requests: AtomicU64,
    daily_api_limit: AtomicU64,
    next_cursor: AtomicU64,
}

/// Locks a mutex, carrying on after a handler panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn db(&self) -> MutexGuard<'_, Db> {
        lock(&self.db)
    }

    /// Takes one "lock rows" fault if any is left.
    fn take_lock_fault(&self) -> bool {
        let mut faults = lock(&self.faults);
        if faults.lock_next > 0 {
            faults.lock_next -= 1;
            true
        } else {
            false
        }
    }

    fn limit_info(&self) -> String {
        format!(
            "api-usage={}/{}",
            self.api_requests.load(Ordering::SeqCst),
            self.daily_api_limit.load(Ordering::SeqCst)
        )
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

fn fixed_id(prefix: &str) -> String {
    let id15 = format!("{prefix}RF0000000001");
    format!("{id15}{}", checksum(&id15))
}

impl Emulator {
    /// Binds `listen` (port 0 for any free port) and serves in the background on the
    /// current tokio runtime.
    pub async fn start(config: EmulatorConfig, listen: SocketAddr) -> anyhow::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let org_id = fixed_id("00D");
        let user_id = fixed_id("005");
        let db = match &config.state_file {
            Some(path) => {
                let (mut db, had_records) = Db::open(path, &user_id)?;
                if config.seed && !had_records {
                    seed::load(&mut db);
                }
                db
            }
            None => {
                let mut db = Db::in_memory(&user_id);
                if config.seed {
                    seed::load(&mut db);
                }
                db
            }
        };
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            org_id,
            user_id,
            db: Mutex::new(db),
            sessions: Mutex::new(HashSet::new()),
            faults: Mutex::new(config.faults.clone()),
            log: Mutex::new(Vec::new()),
            cursors: Mutex::new(HashMap::new()),
            api_requests: AtomicU64::new(0),
            daily_api_limit: AtomicU64::new(config.daily_api_limit),
            next_cursor: AtomicU64::new(1),
            config,
        });
        let app = router(shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
            if let Err(e) = served {
                tracing::error!("emulator stopped: {e}");
            }
        });
        Ok(Emulator {
            shared,
            shutdown: Some(tx),
        })
    }

    /// `http://127.0.0.1:PORT`: the login URL and the instance URL.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    pub fn org_id(&self) -> &str {
        &self.shared.org_id
    }

    pub fn user_id(&self) -> &str {
        &self.shared.user_id
    }

    /// Every request received so far (control endpoints excepted), oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.shared.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    pub fn update_faults(&self, update: &FaultUpdate) {
        apply_fault_update(&self.shared, update);
    }

    /// Records of one type as a query would read them (test assertions).
    pub fn records(&self, sobject: &str) -> Vec<crate::salesforce::Fields> {
        schema::object(sobject)
            .map(|o| self.shared.db().records(o))
            .unwrap_or_default()
    }

    /// Stops serving; in-flight requests finish first.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn apply_fault_update(shared: &Shared, update: &FaultUpdate) {
    lock(&shared.faults).apply(update);
    if update.expire_sessions {
        lock(&shared.sessions).clear();
    }
    if let Some(limit) = update.daily_api_limit {
        shared.daily_api_limit.store(limit, Ordering::SeqCst);
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let data = rest::routes().merge(collections::routes());
    Router::new()
        .route("/services/data", get(rest::versions))
        .route("/services/data/", get(rest::versions))
        .nest("/services/data/{version}", data)
        .merge(oauth::routes())
        .fallback(|| async { failure_response(db::Failure::not_found()) })
        .layer(middleware::from_fn_with_state(shared.clone(), front_door))
        .route(
            "/__emulator/requests",
            get(control_requests).delete(control_clear),
        )
        .route("/__emulator/faults", post(control_faults))
        .with_state(shared)
}

/// Logs every request, then applies latency, 503s, the session check and the daily
/// request count, in the order a real front end would.
async fn front_door(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let logged_body = faults::logged_body(&content_type, &bytes);
    let request = Request::from_parts(parts, Body::from(bytes));

    let response = gate(&shared, &path, bearer.as_deref()).await;
    let data_api = path.starts_with("/services/data/v");
    let mut response = match response {
        Some(refusal) => refusal,
        None => next.run(request).await,
    };
    if data_api && let Ok(value) = HeaderValue::from_str(&shared.limit_info()) {
        response.headers_mut().insert("sforce-limit-info", value);
    }
    lock(&shared.log).push(LoggedRequest {
        method,
        path,
        body: logged_body,
        status: response.status().as_u16(),
    });
    response
}

async fn gate(shared: &Shared, path: &str, bearer: Option<&str>) -> Option<Response> {
    let latency = lock(&shared.faults).latency_ms;
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let route = path.split('?').next().unwrap_or_default();
    let data_api = route.starts_with("/services/data/v");
    if data_api {
        let version = route
            .trim_start_matches("/services/data/v")
            .split('/')
            .next()
            .unwrap_or_default();
        let known = version
            .split_once('.')
            .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor)))
            .is_some_and(|(major, minor)| {
                (MIN_VERSION..=MAX_VERSION).contains(&major) && minor == "0"
            });
        if !known {
            return Some(failure_response(db::Failure::not_found()));
        }
        let failing = {
            let mut faults = lock(&shared.faults);
            (faults.fail_next > 0).then(|| {
                faults.fail_next -= 1;
                (faults.fail_status.unwrap_or(503), faults.retry_after)
            })
        };
        if let Some((status, retry_after)) = failing {
            let mut response = errors_response(
                status,
                &[ApiError::new(
                    "SERVER_UNAVAILABLE",
                    "Server is temporarily unavailable. Please try again later.",
                )],
            );
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from(seconds));
            }
            return Some(response);
        }
    }
    if data_api {
        let mut faults = lock(&shared.faults);
        match faults.expire_after {
            Some(0) => {
                faults.expire_after = None;
                lock(&shared.sessions).clear();
            }
            Some(left) => faults.expire_after = Some(left - 1),
            None => {}
        }
    }
    let needs_session =
        data_api || route == "/services/oauth2/userinfo" || route.starts_with("/id/");
    if needs_session {
        let valid = bearer.is_some_and(|token| lock(&shared.sessions).contains(token));
        if !valid {
            return Some(errors_response(
                401,
                &[ApiError::new(
                    "INVALID_SESSION_ID",
                    "Session expired or invalid",
                )],
            ));
        }
    }
    if data_api {
        let used = shared.api_requests.fetch_add(1, Ordering::SeqCst) + 1;
        if used > shared.daily_api_limit.load(Ordering::SeqCst) {
            return Some(errors_response(
                403,
                &[ApiError::new(
                    "REQUEST_LIMIT_EXCEEDED",
                    "TotalRequests Limit exceeded.",
                )],
            ));
        }
    }
    None
}

fn loopback_only(peer: SocketAddr) -> Option<Response> {
    (!peer.ip().is_loopback()).then(|| {
        (
            StatusCode::FORBIDDEN,
            "the control endpoints answer loopback clients only",
        )
            .into_response()
    })
}

async fn control_requests(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    loopback_only(peer).unwrap_or_else(|| axum::Json(lock(&shared.log).clone()).into_response())
}

async fn control_clear(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    loopback_only(peer).unwrap_or_else(|| {
        lock(&shared.log).clear();
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn control_faults(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Json(update): axum::Json<FaultUpdate>,
) -> Response {
    loopback_only(peer).unwrap_or_else(|| {
        apply_fault_update(&shared, &update);
        axum::Json(lock(&shared.faults).clone()).into_response()
    })
}

/// Salesforce's REST error shape: an array of `{message, errorCode, fields}`.
fn errors_response(status: u16, errors: &[ApiError]) -> Response {
    let body: Vec<Value> = errors
        .iter()
        .map(|e| json!({"message": e.message, "errorCode": e.error_code, "fields": e.fields}))
        .collect();
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response()
}

fn failure_response(failure: db::Failure) -> Response {
    errors_response(failure.status, std::slice::from_ref(&failure.error))
}

fn json_response(status: u16, body: Value) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(body),
    )
        .into_response()
}

impl Emulator {
    /// Connection settings for the password flow with this emulator's credentials.
    pub fn settings(&self) -> crate::config::Settings {
        let config = &self.shared.config;
        crate::config::Settings {
            auth_flow: Some("password".into()),
            login_url: Some(self.base_url().to_string()),
            client_id: Some(config.client_id.clone()),
            client_secret: Some(config.client_secret.as_str().into()),
            username: Some(config.username.clone()),
            password: Some(config.password.as_str().into()),
            security_token: Some(config.security_token.as_str().into()),
            ..crate::config::Settings::default()
        }
    }
}
