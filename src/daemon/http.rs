//! The daemon's HTTP API: event ingest, health, metrics, rules and the action log.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Shared;
use crate::store;

pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body;
    Router::new()
        .route(
            "/v1/events",
            post(ingest).layer(DefaultBodyLimit::max(limit)),
        )
        .route("/v1/rules", get(rules))
        .route("/v1/actions", get(actions))
        .route("/v1/actions/{id}/retry", post(retry))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .with_state(shared)
}

/// An error answer: a status and `{"error": ..., ...}`.
struct Refusal {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>, extra: Value) -> Refusal {
    let mut body = json!({"error": message.into()});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    Refusal { status, body }
}

/// `--token`: every `/v1` call needs `Authorization: Bearer <token>`.
fn authorized(shared: &Shared, headers: &HeaderMap) -> Result<(), Refusal> {
    let Some(token) = &shared.config.token else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(token.expose()) {
        Ok(())
    } else {
        shared
            .metrics
            .requests_rejected
            .fetch_add(1, Ordering::Relaxed);
        Err(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token",
            Value::Null,
        ))
    }
}

/// Parses a body of one JSON object, an array of them, or NDJSON. All or nothing.
fn parse_events(headers: &HeaderMap, body: &[u8]) -> Result<Vec<Value>, Refusal> {
    let text = std::str::from_utf8(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the body is not UTF-8: {e}"),
            Value::Null,
        )
    })?;
    let ndjson = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/x-ndjson") || t.starts_with("application/jsonl")
        });
    let bad = |line: usize, column: usize, reason: String| {
        error(
            StatusCode::BAD_REQUEST,
            format!("line {line}, column {column}: {reason}"),
            json!({"line": line, "column": column}),
        )
    };
    let events: Vec<Value> = if ndjson {
        let mut events = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let event: Value = serde_json::from_str(line)
                .map_err(|e| bad(index + 1, e.column(), e.to_string()))?;
            if !event.is_object() {
                return Err(bad(index + 1, 1, "an event must be a JSON object".into()));
            }
            events.push(event);
        }
        events
    } else {
        match serde_json::from_str::<Value>(text)
            .map_err(|e| bad(e.line(), e.column(), e.to_string()))?
        {
            Value::Array(items) => {
                if let Some(position) = items.iter().position(|i| !i.is_object()) {
                    return Err(error(
                        StatusCode::BAD_REQUEST,
                        format!("item {position} of the array is not a JSON object"),
                        json!({"item": position}),
                    ));
                }
                items
            }
            event @ Value::Object(_) => vec![event],
            _ => {
                return Err(bad(
                    1,
                    1,
                    "expected a JSON object, an array of objects, or NDJSON".into(),
                ));
            }
        }
    };
    Ok(events)
}

async fn ingest(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = authorized(&shared, &headers) {
        return refused.into_response();
    }
    if shared.stopping() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down",
            Value::Null,
        )
        .into_response();
    }
    let events = match parse_events(&headers, &body) {
        Ok(events) => events,
        Err(refused) => {
            shared
                .metrics
                .requests_rejected
                .fetch_add(1, Ordering::Relaxed);
            return refused.into_response();
        }
    };
    let count = events.len();
    let writer = shared.clone();
    // Acknowledged only once committed: the insert runs to the end before the answer.
    let stored = tokio::task::spawn_blocking(move || {
        writer.with_http_db(|conn| store::insert_events(conn, &events))
    })
    .await;
    match stored {
        Ok(Ok(())) => {
            shared
                .metrics
                .events_accepted
                .fetch_add(count as u64, Ordering::Relaxed);
            shared.events_ready.notify_one();
            (StatusCode::ACCEPTED, axum::Json(json!({"accepted": count}))).into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not store the events: {e}"),
            Value::Null,
        )
        .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not store the events: {e}"),
            Value::Null,
        )
        .into_response(),
    }
}

async fn rules(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(refused) = authorized(&shared, &headers) {
        return refused.into_response();
    }
    axum::Json(shared.live.status()).into_response()
}

async fn actions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Err(refused) = authorized(&shared, &headers) {
        return refused.into_response();
    }
    let status = params.get("status").cloned();
    if let Some(s) = &status
        && !["pending", "sent", "failed", "dry_run"].contains(&s.as_str())
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("status must be pending, sent, failed or dry_run, not {s}"),
            Value::Null,
        )
        .into_response();
    }
    let limit = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100)
        .min(10_000);
    let rows = shared.with_http_db(|conn| store::list_actions(conn, status.as_deref(), limit));
    match rows {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
            Value::Null,
        )
        .into_response(),
    }
}

async fn retry(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(refused) = authorized(&shared, &headers) {
        return refused.into_response();
    }
    match shared.with_http_db(|conn| store::retry_action(conn, id)) {
        Ok(true) => {
            shared.actions_ready.notify_one();
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"id": id, "status": "pending"})),
            )
                .into_response()
        }
        Ok(false) => error(
            StatusCode::NOT_FOUND,
            format!("no failed action {id}"),
            Value::Null,
        )
        .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string(),
            Value::Null,
        )
        .into_response(),
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let store = shared.with_http_db(|conn| store::counts(conn));
    let salesforce = shared.metrics.salesforce();
    match store {
        Ok((actions, backlog)) => {
            let actions: serde_json::Map<String, Value> =
                actions.into_iter().map(|(s, n)| (s, json!(n))).collect();
            axum::Json(json!({"status": "ok", "store": "ok", "backlog": backlog, "actions": actions, "salesforce": salesforce}))
                .into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                json!({"status": "error", "store": e.to_string(), "salesforce": salesforce}),
            ),
        )
            .into_response(),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let counts = shared.with_http_db(|conn| store::counts(conn));
    match counts {
        Ok((by_status, backlog)) => (
            [("content-type", "text/plain; version=0.0.4")],
            shared.metrics.render(&by_status, backlog),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}
