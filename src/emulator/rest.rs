//! The REST data API: versions, limits, SOQL query with paging, and single-record
//! sObject create / read / update / upsert / delete.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query as QueryString, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::db::Failure;
use super::schema::{self, SObject};
use super::soql::Query;
use super::{
    Cursor, MAX_VERSION, MIN_VERSION, Shared, errors_response, failure_response, json_response,
    lock,
};
use crate::salesforce::{ApiError, Fields};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/limits", get(limits))
        .route("/limits/", get(limits))
        .route("/query", get(query))
        .route("/query/", get(query))
        .route("/query/{locator}", get(query_more))
        .route("/sobjects/{sobject}", post(create))
        .route("/sobjects/{sobject}/", post(create))
        .route(
            "/sobjects/{sobject}/{id}",
            get(read).patch(update).delete(delete),
        )
        .route(
            "/sobjects/{sobject}/{field}/{value}",
            get(read_by_external_id).patch(upsert),
        )
}

fn release_label(major: u32) -> String {
    // Three releases a year: Spring (x2.0 - 1), Summer, Winter; 66.0 is Spring '26.
    let offset = major as i32 - 66;
    let index = offset.rem_euclid(3);
    let year = 26 + (offset - index) / 3 + i32::from(index == 2);
    let season = ["Spring", "Summer", "Winter"][index as usize];
    format!("{season} '{year:02}")
}

pub async fn versions() -> Response {
    let list: Vec<Value> = (MIN_VERSION..=MAX_VERSION)
        .map(|major| {
            json!({"label": release_label(major), "url": format!("/services/data/v{major}.0"), "version": format!("{major}.0")})
        })
        .collect();
    json_response(200, Value::Array(list))
}

async fn limits(State(shared): State<Arc<Shared>>) -> Response {
    let max = shared.daily_api_limit.load(Ordering::SeqCst);
    let used = shared.api_requests.load(Ordering::SeqCst);
    json_response(
        200,
        json!({
            "DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
        }),
    )
}

pub(super) fn object(name: &str) -> Result<&'static SObject, Failure> {
    schema::object(name).ok_or_else(Failure::not_found)
}

/// Parses a JSON object body the way Salesforce reports a bad one.
pub(super) fn object_body(body: &Bytes) -> Result<Fields, Failure> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(Failure::new(
            400,
            "JSON_PARSER_ERROR",
            "the request body must be a JSON object",
        )),
        Err(e) => Err(Failure::new(
            400,
            "JSON_PARSER_ERROR",
            format!("Unexpected character in the request body: {e}"),
        )),
    }
}

fn lock_failure() -> Failure {
    Failure::new(
        400,
        "UNABLE_TO_LOCK_ROW",
        "unable to obtain exclusive access to this record",
    )
}

fn with_attributes(
    object: &SObject,
    version: &str,
    record: Fields,
    only: Option<&[&'static str]>,
) -> Value {
    let id = record
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut out = serde_json::Map::new();
    out.insert(
        "attributes".into(),
        json!({"type": object.name, "url": format!("/services/data/{version}/sobjects/{}/{id}", object.name)}),
    );
    match only {
        Some(fields) => {
            for field in fields {
                out.insert(
                    (*field).into(),
                    record.get(*field).cloned().unwrap_or(Value::Null),
                );
            }
        }
        None => out.extend(record),
    }
    Value::Object(out)
}

async fn query(
    State(shared): State<Arc<Shared>>,
    Path(version): Path<String>,
    QueryString(params): QueryString<HashMap<String, String>>,
) -> Response {
    let Some(soql) = params.get("q") else {
        return failure_response(Failure::new(
            400,
            "MALFORMED_QUERY",
            "the q parameter is required",
        ));
    };
    let parsed = match Query::parse(soql) {
        Ok(parsed) => parsed,
        Err(failure) => return failure_response(failure),
    };
    let number = version.trim_start_matches('v').to_string();
    let (total, records) = parsed.run(&shared.db(), &number);
    page(&shared, &version, None, 0, total, records)
}

/// One page of `records`, which start `served` records into the result. What does not
/// fit waits under the query locator (a new one for a first page).
fn page(
    shared: &Shared,
    version: &str,
    locator: Option<&str>,
    served: usize,
    total: usize,
    mut records: Vec<Value>,
) -> Response {
    let size = shared.config.page_size.max(1);
    if records.len() <= size {
        return json_response(
            200,
            json!({"totalSize": total, "done": true, "records": records}),
        );
    }
    let rest = records.split_off(size);
    let locator = match locator {
        Some(locator) => locator.to_string(),
        None => format!(
            "01gRF{:010}",
            shared.next_cursor.fetch_add(1, Ordering::SeqCst)
        ),
    };
    lock(&shared.cursors).insert(
        locator.clone(),
        Cursor {
            records: rest,
            total,
        },
    );
    let next = served + size;
    json_response(
        200,
        json!({
            "totalSize": total,
            "done": false,
            "nextRecordsUrl": format!("/services/data/{version}/query/{locator}-{next}"),
            "records": records,
        }),
    )
}

async fn query_more(
    State(shared): State<Arc<Shared>>,
    Path((version, locator)): Path<(String, String)>,
) -> Response {
    let (id, served) = locator.rsplit_once('-').unwrap_or((&locator, "0"));
    let cursor = lock(&shared.cursors).remove(id);
    let Some(Cursor { records, total }) = cursor else {
        return failure_response(Failure::new(
            400,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        ));
    };
    page(
        &shared,
        &version,
        Some(id),
        served.parse().unwrap_or(0),
        total,
        records,
    )
}

async fn create(
    State(shared): State<Arc<Shared>>,
    Path((_, sobject)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let outcome = (|| {
        let object = object(&sobject)?;
        let fields = object_body(&body)?;
        if shared.take_lock_fault() {
            return Err(lock_failure());
        }
        let mut db = shared.db();
        let id = db.create(object, &fields)?;
        db.flush();
        Ok(id)
    })();
    match outcome {
        Ok(id) => json_response(201, json!({"id": id, "success": true, "errors": []})),
        Err(failure) => failure_response(failure),
    }
}

async fn read(
    State(shared): State<Arc<Shared>>,
    Path((version, sobject, id)): Path<(String, String, String)>,
    QueryString(params): QueryString<HashMap<String, String>>,
) -> Response {
    let outcome = (|| {
        let object = object(&sobject)?;
        let only = match params.get("fields") {
            Some(list) => Some(
                list.split(',')
                    .map(|name| {
                        object.field(name.trim()).map(|f| f.name).ok_or_else(|| {
                            Failure::new(
                                400,
                                "INVALID_FIELD",
                                format!("No such column '{name}' on entity '{}'", object.name),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            None => None,
        };
        let record = shared.db().get(object, &id)?;
        Ok(with_attributes(object, &version, record, only.as_deref()))
    })();
    match outcome {
        Ok(record) => json_response(200, record),
        Err(failure) => failure_response(failure),
    }
}

async fn read_by_external_id(
    State(shared): State<Arc<Shared>>,
    Path((version, sobject, field, value)): Path<(String, String, String, String)>,
) -> Response {
    let outcome = (|| {
        let object = object(&sobject)?;
        let db = shared.db();
        let ids = db.find_by(object, &field, &value)?;
        match ids.as_slice() {
            [id] => Ok(with_attributes(object, &version, db.get(object, id)?, None)),
            [] => Err(Failure::not_found()),
            _ => Err(Failure::new(
                300,
                "MULTIPLE_CHOICES",
                "more than one record matches",
            )),
        }
    })();
    match outcome {
        Ok(record) => json_response(200, record),
        Err(failure) => failure_response(failure),
    }
}

async fn update(
    State(shared): State<Arc<Shared>>,
    Path((_, sobject, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let outcome = (|| {
        let object = object(&sobject)?;
        let fields = object_body(&body)?;
        if shared.take_lock_fault() {
            return Err(lock_failure());
        }
        let mut db = shared.db();
        db.update(object, &id, &fields)?;
        db.flush();
        Ok(())
    })();
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(failure) => failure_response(failure),
    }
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    Path((_, sobject, id)): Path<(String, String, String)>,
) -> Response {
    let outcome = (|| {
        let object = object(&sobject)?;
        if shared.take_lock_fault() {
            return Err(lock_failure());
        }
        let mut db = shared.db();
        db.delete(Some(object), &id)?;
        db.flush();
        Ok(())
    })();
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(failure) => failure_response(failure),
    }
}

/// What an upsert did to one record.
pub(super) enum Upserted {
    Created(String),
    Updated(String),
    /// The key matched several records: Salesforce answers 300 with their URLs.
    Ambiguous(Vec<String>),
}

/// Creates or updates the record of `object` whose `field` is `value`.
pub(super) fn upsert_one(
    db: &mut super::Db,
    object: &'static SObject,
    field: &str,
    value: &str,
    mut fields: Fields,
) -> Result<Upserted, Failure> {
    let ids = db.find_by(object, field, value)?;
    match ids.as_slice() {
        [] if field.eq_ignore_ascii_case("Id") => Err(Failure::not_found()),
        [] => {
            let name = object.field(field).map(|f| f.name).unwrap_or(field);
            fields.insert(name.into(), Value::String(value.into()));
            db.create(object, &fields).map(Upserted::Created)
        }
        [id] => {
            let id = id.clone();
            fields.retain(|k, _| !k.eq_ignore_ascii_case(field));
            db.update(object, &id, &fields).map(Upserted::Updated)
        }
        _ => Ok(Upserted::Ambiguous(ids)),
    }
}

async fn upsert(
    State(shared): State<Arc<Shared>>,
    Path((version, sobject, field, value)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Response {
    let outcome = (|| {
        let object = object(&sobject)?;
        let fields = object_body(&body)?;
        if shared.take_lock_fault() {
            return Err(lock_failure());
        }
        let mut db = shared.db();
        let upserted = upsert_one(&mut db, object, &field, &value, fields)?;
        db.flush();
        Ok(upserted)
    })();
    match outcome {
        Ok(Upserted::Created(id)) => json_response(
            201,
            json!({"id": id, "success": true, "errors": [], "created": true}),
        ),
        Ok(Upserted::Updated(id)) => json_response(
            200,
            json!({"id": id, "success": true, "errors": [], "created": false}),
        ),
        Ok(Upserted::Ambiguous(ids)) => {
            let urls: Vec<String> = ids
                .iter()
                .map(|id| format!("/services/data/{version}/sobjects/{sobject}/{id}"))
                .collect();
            json_response(300, json!(urls))
        }
        Err(failure) => failure_response(failure),
    }
}

/// A REST-shaped error for a request that exceeds the collection limit.
pub(super) fn too_many_records() -> Response {
    errors_response(
        400,
        &[ApiError::new(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )],
    )
}

#[cfg(test)]
mod tests {
    use super::release_label;

    #[test]
    fn labels_releases_like_salesforce() {
        assert_eq!(release_label(66), "Spring '26");
        assert_eq!(release_label(67), "Summer '26");
        assert_eq!(release_label(65), "Winter '26");
        assert_eq!(release_label(64), "Summer '25");
        assert_eq!(release_label(62), "Winter '25");
    }
}
