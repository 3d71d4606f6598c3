//! sObject Collections: create, update, upsert and delete up to 200 records a call, one
//! result per record with `statusCode` errors, and `allOrNone` rollback.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query as QueryString, State};
use axum::response::Response;
use axum::routing::{patch, post};
use serde_json::{Value, json};

use super::db::{Db, Failure};
use super::rest::{Upserted, object, object_body, too_many_records, upsert_one};
use super::{Shared, failure_response, json_response};
use crate::salesforce::Fields;
use crate::salesforce::records::COLLECTION_LIMIT;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/composite/sobjects",
            post(create).patch(update).delete(delete),
        )
        .route(
            "/composite/sobjects/",
            post(create).patch(update).delete(delete),
        )
        .route("/composite/sobjects/{sobject}/{field}", patch(upsert))
}

type RecordOutcome = Result<(String, Option<bool>), Failure>;

fn result_json(outcome: &RecordOutcome) -> Value {
    match outcome {
        Ok((id, None)) => json!({"id": id, "success": true, "errors": []}),
        Ok((id, Some(created))) => {
            json!({"id": id, "success": true, "errors": [], "created": created})
        }
        Err(failure) => json!({
            "success": false,
            "errors": [{"statusCode": failure.error.error_code, "message": failure.error.message, "fields": failure.error.fields}],
        }),
    }
}

/// The `allOrNone` flag and the records of a collections body.
fn parse_body(body: &Bytes) -> Result<(bool, Vec<Fields>), Failure> {
    let body = object_body(body)?;
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let records = body
        .get("records")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::new(400, "JSON_PARSER_ERROR", "the body needs a records array"))?
        .iter()
        .map(|r| {
            r.as_object().cloned().ok_or_else(|| {
                Failure::new(400, "JSON_PARSER_ERROR", "each record must be an object")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((all_or_none, records))
}

fn record_type(record: &Fields) -> Result<&'static super::schema::SObject, Failure> {
    let name = record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::new(400, "INVALID_TYPE", "each record needs attributes.type"))?;
    object(name).map_err(|_| {
        Failure::new(
            400,
            "INVALID_TYPE",
            format!("sObject type '{name}' is not supported."),
        )
    })
}

/// Runs `each` over the records under one lock, honouring allOrNone and the lock fault,
/// and answers with one result per record.
fn run(
    shared: &Shared,
    count: usize,
    all_or_none: bool,
    mut each: impl FnMut(&mut Db, usize) -> RecordOutcome,
) -> Response {
    if count > COLLECTION_LIMIT {
        return too_many_records();
    }
    let locked = shared.take_lock_fault();
    let mut db = shared.db();
    let savepoint = all_or_none.then(|| db.savepoint());
    let mut outcomes: Vec<RecordOutcome> = (0..count)
        .map(|i| {
            if locked {
                Err(Failure::new(
                    400,
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record",
                ))
            } else {
                each(&mut db, i)
            }
        })
        .collect();
    if let Some(savepoint) = savepoint.filter(|_| outcomes.iter().any(Result::is_err)) {
        db.rollback(savepoint);
        for outcome in outcomes.iter_mut().filter(|o| o.is_ok()) {
            *outcome = Err(Failure::new(
                400,
                "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "Record rolled back because not all records were valid and the request was using AllOrNone header",
            ));
        }
    }
    db.flush();
    json_response(
        200,
        Value::Array(outcomes.iter().map(result_json).collect()),
    )
}

async fn create(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let (all_or_none, records) = match parse_body(&body) {
        Ok(parsed) => parsed,
        Err(failure) => return failure_response(failure),
    };
    run(&shared, records.len(), all_or_none, |db, i| {
        let record = &records[i];
        let object = record_type(record)?;
        if record.keys().any(|k| k.eq_ignore_ascii_case("id")) {
            return Err(
                Failure::new(400, "INVALID_FIELD", "cannot specify Id in an insert call")
                    .on_fields(&["Id"]),
            );
        }
        db.create(object, record).map(|id| (id, None))
    })
}

async fn update(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let (all_or_none, records) = match parse_body(&body) {
        Ok(parsed) => parsed,
        Err(failure) => return failure_response(failure),
    };
    run(&shared, records.len(), all_or_none, |db, i| {
        let record = &records[i];
        let object = record_type(record)?;
        let id = record
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("id"))
            .and_then(|(_, v)| v.as_str())
            .ok_or_else(|| {
                Failure::new(
                    400,
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                )
                .on_fields(&["Id"])
            })?;
        db.update(object, id, record).map(|id| (id, None))
    })
}

async fn upsert(
    State(shared): State<Arc<Shared>>,
    Path((_, sobject, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let (all_or_none, records) = match parse_body(&body) {
        Ok(parsed) => parsed,
        Err(failure) => return failure_response(failure),
    };
    let object = match object(&sobject) {
        Ok(object) => object,
        Err(failure) => return failure_response(failure),
    };
    run(&shared, records.len(), all_or_none, |db, i| {
        let mut record = records[i].clone();
        record.remove("attributes");
        let key = record
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&field))
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
            .ok_or_else(|| {
                Failure::new(400, "MISSING_ARGUMENT", format!("{field} not specified"))
                    .on_fields(&[field.as_str()])
            })?;
        match upsert_one(db, object, &field, &key, record)? {
            Upserted::Created(id) => Ok((id, Some(true))),
            Upserted::Updated(id) => Ok((id, Some(false))),
            Upserted::Ambiguous(_) => Err(Failure::new(
                300,
                "DUPLICATE_EXTERNAL_ID",
                format!("{field}: more than one record found for external id field: {key}"),
            )),
        }
    })
}

async fn delete(
    State(shared): State<Arc<Shared>>,
    QueryString(params): QueryString<HashMap<String, String>>,
) -> Response {
    let ids: Vec<String> = params
        .get("ids")
        .map(|ids| {
            ids.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let all_or_none = params
        .get("allOrNone")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    run(&shared, ids.len(), all_or_none, |db, i| {
        db.delete(None, &ids[i]).map(|id| (id, None))
    })
}
