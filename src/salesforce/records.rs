//! sObject operations: single-record CRUD and upsert, SOQL with paging, and sObject
//! Collections in calls of at most 200 records with per-record results.

use serde_json::{Map, Value, json};

use super::client::Client;
use super::error::{ApiError, Error, Result};
use super::id::SfId;
use super::request::{ApiRequest, path_segment, query_value};

/// Salesforce's limit on records in one sObject Collections call.
pub const COLLECTION_LIMIT: usize = 200;

pub type Fields = Map<String, Value>;

/// What Salesforce said about one record of a write.
#[derive(Debug, Clone, PartialEq)]
pub struct Saved {
    pub id: Option<String>,
    /// For upserts: whether the record was created rather than updated.
    pub created: Option<bool>,
}

pub type RecordResult = std::result::Result<Saved, Vec<ApiError>>;

/// One record for a Collections create or update.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordWrite {
    pub sobject: String,
    /// Required for updates, absent for creates.
    pub id: Option<String>,
    pub fields: Fields,
}

impl RecordWrite {
    fn to_json(&self) -> Value {
        let mut record = Map::new();
        record.insert("attributes".into(), json!({ "type": self.sobject }));
        if let Some(id) = &self.id {
            record.insert("id".into(), Value::String(id.clone()));
        }
        record.extend(self.fields.clone());
        Value::Object(record)
    }
}

/// Request builders, shared by the client and by `--dry-run`, which prints them.
pub mod requests {
    use super::*;

    pub fn create(sobject: &str, fields: &Fields) -> ApiRequest {
        ApiRequest::post(
            format!("sobjects/{sobject}/"),
            Value::Object(fields.clone()),
        )
    }

    pub fn get(sobject: &str, id: &str, fields: Option<&[String]>) -> ApiRequest {
        let mut path = format!("sobjects/{sobject}/{}", path_segment(id));
        if let Some(fields) = fields {
            path.push_str(&format!("?fields={}", query_value(&fields.join(","))));
        }
        ApiRequest::get(path)
    }

    pub fn update(sobject: &str, id: &str, fields: &Fields) -> ApiRequest {
        ApiRequest::patch(
            format!("sobjects/{sobject}/{}", path_segment(id)),
            Value::Object(fields.clone()),
        )
    }

    pub fn upsert(sobject: &str, ext_field: &str, value: &str, fields: &Fields) -> ApiRequest {
        ApiRequest::patch(
            format!("sobjects/{sobject}/{ext_field}/{}", path_segment(value)),
            Value::Object(fields.clone()),
        )
    }

    pub fn delete(sobject: &str, id: &str) -> ApiRequest {
        ApiRequest::delete(format!("sobjects/{sobject}/{}", path_segment(id)))
    }

    pub fn query(soql: &str) -> ApiRequest {
        ApiRequest::get(format!("query?q={}", query_value(soql)))
    }

    pub fn collection_create(records: &[RecordWrite]) -> ApiRequest {
        let records: Vec<Value> = records.iter().map(RecordWrite::to_json).collect();
        ApiRequest::post(
            "composite/sobjects",
            json!({ "allOrNone": false, "records": records }),
        )
    }

    pub fn collection_update(records: &[RecordWrite]) -> ApiRequest {
        let records: Vec<Value> = records.iter().map(RecordWrite::to_json).collect();
        ApiRequest::patch(
            "composite/sobjects",
            json!({ "allOrNone": false, "records": records }),
        )
    }

    pub fn collection_upsert(
        sobject: &str,
        ext_field: &str,
        records: &[RecordWrite],
    ) -> ApiRequest {
        let records: Vec<Value> = records.iter().map(RecordWrite::to_json).collect();
        ApiRequest::patch(
            format!("composite/sobjects/{sobject}/{ext_field}"),
            json!({ "allOrNone": false, "records": records }),
        )
    }

    pub fn collection_delete(ids: &[String]) -> ApiRequest {
        ApiRequest::delete(format!(
            "composite/sobjects?ids={}&allOrNone=false",
            query_value(&ids.join(","))
        ))
    }
}

impl Client {
    pub async fn create(&self, sobject: &str, fields: &Fields) -> Result<SfId> {
        let body = self.send(&requests::create(sobject, fields)).await?.body;
        returned_id(&body)
    }

    /// One record; all its fields, or only `fields`.
    pub async fn get_record(
        &self,
        sobject: &str,
        id: &str,
        fields: Option<&[String]>,
    ) -> Result<Fields> {
        match self.send(&requests::get(sobject, id, fields)).await?.body {
            Value::Object(record) => Ok(record),
            other => Err(Error::Decode(format!(
                "a record that is not an object: {other}"
            ))),
        }
    }

    pub async fn update(&self, sobject: &str, id: &str, fields: &Fields) -> Result<()> {
        self.send(&requests::update(sobject, id, fields))
            .await
            .map(drop)
    }

    /// Creates or updates the record whose `ext_field` is `value`.
    pub async fn upsert(
        &self,
        sobject: &str,
        ext_field: &str,
        value: &str,
        fields: &Fields,
    ) -> Result<Saved> {
        let response = self
            .send(&requests::upsert(sobject, ext_field, value, fields))
            .await?;
        let id = response
            .body
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        // Before v46 an update answered 204 with no body; since then 200 with created:false.
        let created = response
            .body
            .get("created")
            .and_then(Value::as_bool)
            .or(Some(response.status == 201));
        Ok(Saved { id, created })
    }

    pub async fn delete(&self, sobject: &str, id: &str) -> Result<()> {
        self.send(&requests::delete(sobject, id)).await.map(drop)
    }

    /// Every record the query matches, following `nextRecordsUrl` to the end.
    pub async fn query(&self, soql: &str) -> Result<Vec<Fields>> {
        let mut records = Vec::new();
        let mut request = requests::query(soql);
        loop {
            let page = self.send(&request).await?.body;
            let Some(batch) = page.get("records").and_then(Value::as_array) else {
                return Err(Error::Decode(format!(
                    "a query answer without records: {page}"
                )));
            };
            records.extend(batch.iter().filter_map(|r| r.as_object().cloned()));
            let done = page.get("done").and_then(Value::as_bool).unwrap_or(true);
            match page.get("nextRecordsUrl").and_then(Value::as_str) {
                Some(next) if !done => request = ApiRequest::get(next),
                _ => return Ok(records),
            }
        }
    }

    /// The first record the query matches, if any.
    pub async fn query_one(&self, soql: &str) -> Result<Option<Fields>> {
        Ok(self.query(soql).await?.into_iter().next())
    }

    /// Creates records in Collections calls of at most 200; one result per record, in order.
    pub async fn create_many(&self, records: &[RecordWrite]) -> Result<Vec<RecordResult>> {
        self.collection(records, requests::collection_create).await
    }

    /// Updates records (each with its `id`) in Collections calls of at most 200.
    pub async fn update_many(&self, records: &[RecordWrite]) -> Result<Vec<RecordResult>> {
        self.collection(records, requests::collection_update).await
    }

    /// Upserts records of one type by an external id field, 200 a call.
    pub async fn upsert_many(
        &self,
        sobject: &str,
        ext_field: &str,
        records: &[RecordWrite],
    ) -> Result<Vec<RecordResult>> {
        self.collection(records, |chunk| {
            requests::collection_upsert(sobject, ext_field, chunk)
        })
        .await
    }

    /// Deletes records by id, 200 a call.
    pub async fn delete_many(&self, ids: &[String]) -> Result<Vec<RecordResult>> {
        self.collection(ids, requests::collection_delete).await
    }

    /// Sends `items` in chunks of 200 and maps each record's result back to its place.
    /// Records that failed only with retryable errors (`UNABLE_TO_LOCK_ROW`) are sent
    /// again, alone, under the client's retry policy; the rest keep their result.
    async fn collection<T: Clone>(
        &self,
        items: &[T],
        build: impl Fn(&[T]) -> ApiRequest,
    ) -> Result<Vec<RecordResult>> {
        let mut results = Vec::with_capacity(items.len());
        for chunk in items.chunks(COLLECTION_LIMIT) {
            let mut chunk_results = self.collection_call(&build(chunk), chunk.len()).await?;
            let policy = self.retry_policy();
            for attempt in 1..policy.max_attempts {
                let retry: Vec<usize> = (0..chunk.len())
                    .filter(|&i| matches!(&chunk_results[i], Err(errors) if errors.iter().all(ApiError::is_retryable)))
                    .collect();
                if retry.is_empty() {
                    break;
                }
                let delay = policy.delay(attempt, None);
                tracing::warn!(
                    records = retry.len(),
                    attempt,
                    "retrying records that hit a retryable error"
                );
                tokio::time::sleep(delay).await;
                let again: Vec<T> = retry.iter().map(|&i| chunk[i].clone()).collect();
                let again_results = self.collection_call(&build(&again), again.len()).await?;
                for (i, result) in retry.into_iter().zip(again_results) {
                    chunk_results[i] = result;
                }
            }
            results.extend(chunk_results);
        }
        Ok(results)
    }

    async fn collection_call(
        &self,
        request: &ApiRequest,
        expected: usize,
    ) -> Result<Vec<RecordResult>> {
        let body = self.send(request).await?.body;
        let Value::Array(entries) = body else {
            return Err(Error::Decode(format!(
                "a collections answer that is not an array: {body}"
            )));
        };
        if entries.len() != expected {
            return Err(Error::Decode(format!(
                "{} results for {expected} records",
                entries.len()
            )));
        }
        Ok(entries.into_iter().map(record_result).collect())
    }
}

fn record_result(entry: Value) -> RecordResult {
    let success = entry
        .get("success")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let id = entry.get("id").and_then(Value::as_str).map(str::to_owned);
    if success {
        return Ok(Saved {
            id,
            created: entry.get("created").and_then(Value::as_bool),
        });
    }
    let errors = entry
        .get("errors")
        .cloned()
        .and_then(|errors| serde_json::from_value::<Vec<ApiError>>(errors).ok())
        .filter(|errors| !errors.is_empty())
        .unwrap_or_else(|| {
            vec![ApiError::new(
                "UNKNOWN_ERROR",
                format!("record failed without an error: {entry}"),
            )]
        });
    Err(errors)
}

fn returned_id(body: &Value) -> Result<SfId> {
    let raw = body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Decode(format!("no id in {body}")))?;
    SfId::parse(raw).map_err(|e| Error::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_results_accept_status_code() {
        let failed = record_result(
            json!({"success": false, "errors": [{"statusCode": "MALFORMED_ID", "message": "bad id", "fields": ["Id"]}]}),
        );
        let errors = failed.unwrap_err();
        assert_eq!(errors[0].error_code, "MALFORMED_ID");
        assert_eq!(errors[0].fields, vec!["Id"]);
        let ok = record_result(json!({"id": "001000000000001AAA", "success": true, "errors": []}));
        assert_eq!(ok.unwrap().id.as_deref(), Some("001000000000001AAA"));
    }

    #[test]
    fn collection_bodies_carry_type_and_id() {
        let write = RecordWrite {
            sobject: "CampaignMember".into(),
            id: Some("00v000000000001AAA".into()),
            fields: json!({"Status": "Sent"}).as_object().unwrap().clone(),
        };
        let request = requests::collection_update(&[write]);
        assert_eq!(
            request.body.unwrap(),
            json!({"allOrNone": false, "records": [{"attributes": {"type": "CampaignMember"}, "id": "00v000000000001AAA", "Status": "Sent"}]})
        );
    }
}
