//! What tests ask the emulator to do wrong, and what it saw: fault injection and the
//! request log.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Faults in force. Counters go down by one per request they hit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Faults {
    /// Answer the next N data API requests with `fail_status` (503 when unset).
    pub fail_next: u32,
    pub fail_status: Option<u16>,
    /// `Retry-After` seconds to send with those failures.
    pub retry_after: Option<u64>,
    /// Answer the next N writes with `UNABLE_TO_LOCK_ROW` (every record, in collections).
    pub lock_next: u32,
    /// Delay every request by this much.
    pub latency_ms: u64,
    /// Expire every session after this many more data API requests (a 401 mid-run).
    pub expire_after: Option<u32>,
}

/// A change to the faults, as the control endpoint takes it: only the named ones change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultUpdate {
    pub fail_next: Option<u32>,
    pub fail_status: Option<u16>,
    pub retry_after: Option<u64>,
    pub lock_next: Option<u32>,
    pub latency_ms: Option<u64>,
    pub expire_after: Option<u32>,
    /// Invalidate every access token now, as an expired session would.
    #[serde(default)]
    pub expire_sessions: bool,
    /// Change the daily API request allowance.
    pub daily_api_limit: Option<u64>,
}

impl Faults {
    pub fn apply(&mut self, update: &FaultUpdate) {
        if let Some(n) = update.fail_next {
            self.fail_next = n;
        }
        if update.fail_status.is_some() {
            self.fail_status = update.fail_status;
        }
        if update.retry_after.is_some() {
            self.retry_after = update.retry_after;
        }
        if let Some(n) = update.lock_next {
            self.lock_next = n;
        }
        if let Some(ms) = update.latency_ms {
            self.latency_ms = ms;
        }
        if update.expire_after.is_some() {
            self.expire_after = update.expire_after;
        }
    }
}

/// One request as the emulator received it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoggedRequest {
    pub method: String,
    /// Path and query string, as sent.
    pub path: String,
    /// The JSON body, a form body as an object (secrets masked), or `null`.
    pub body: Value,
    pub status: u16,
}

impl LoggedRequest {
    /// The path without its query string.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }
}

/// Form fields whose values the log masks.
const SECRET_FORM_FIELDS: &[&str] = &["password", "client_secret", "refresh_token", "assertion"];

/// A request body as the log keeps it.
pub fn logged_body(content_type: &str, bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs = url::form_urlencoded::parse(bytes).map(|(k, v)| {
            let v = if SECRET_FORM_FIELDS.contains(&k.as_ref()) {
                "***".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), Value::String(v))
        });
        return Value::Object(pairs.collect());
    }
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
