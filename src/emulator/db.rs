//! The emulator's records: validation the way Salesforce validates, CampaignMember rules
//! (one membership per person, Status from the campaign's statuses, HasResponded), roll-up
//! fields, and optional write-through to a SQLite file so state survives restarts.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::schema::{self, Access, Kind, SObject};
use crate::salesforce::id::{SfId, checksum, object_for_prefix};
use crate::salesforce::{ApiError, Fields};

/// A refused operation: the HTTP status and Salesforce's error.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: u16,
    pub error: ApiError,
}

impl Failure {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            error: ApiError::new(code, message),
        }
    }

    pub fn on_fields(mut self, fields: &[&str]) -> Failure {
        self.error.fields = fields.iter().map(|f| f.to_string()).collect();
        self
    }

    pub fn not_found() -> Failure {
        Failure::new(404, "NOT_FOUND", "The requested resource does not exist")
    }
}

type Outcome<T> = Result<T, Failure>;

#[derive(Clone, Default)]
struct Tables {
    by_object: HashMap<&'static str, BTreeMap<String, Fields>>,
    deleted: HashSet<String>,
    /// (CampaignId, LeadId or ContactId) -> CampaignMember Id.
    members: HashMap<(String, String), String>,
    next_seq: u64,
    /// Ids written since the last flush to the state file.
    dirty: BTreeSet<String>,
}

pub struct Db {
    tables: Tables,
    file: Option<rusqlite::Connection>,
    user_id: String,
    /// Audit timestamps; fixed while seeding so the demo data is the same every time.
    fixed_now: Option<String>,
}

/// Base-62 digits in ASCII order, so that zero-padded ids sort in creation order.
const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub fn now_timestamp() -> String {
    // humantime gives 2026-12-04T07:10:43.123Z; Salesforce writes +0000 for Z.
    let text = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    text.replace('Z', "+0000")
}

impl Db {
    pub fn in_memory(user_id: &str) -> Db {
        Db {
            tables: Tables::default(),
            file: None,
            user_id: user_id.into(),
            fixed_now: None,
        }
    }

    /// Opens (or creates) a state file. Returns whether it already held records.
    pub fn open(path: &Path, user_id: &str) -> anyhow::Result<(Db, bool)> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, sobject TEXT NOT NULL, fields TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )?;
        let mut db = Db::in_memory(user_id);
        {
            let mut rows = conn.prepare("SELECT sobject, fields FROM records ORDER BY id")?;
            let rows = rows.query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (sobject, fields) = row?;
                let Some(object) = schema::object(&sobject) else {
                    continue;
                };
                let fields: Fields = serde_json::from_str(&fields)?;
                db.index_insert(object, &fields);
                let id = text(&fields, "Id").unwrap_or_default();
                db.table_mut(object).insert(id, fields);
            }
            let seq: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = 'next_seq'", [], |r| {
                    r.get(0)
                })
                .ok();
            db.tables.next_seq = seq.and_then(|s| s.parse().ok()).unwrap_or(0);
        }
        let had_records = db.tables.by_object.values().any(|t| !t.is_empty());
        db.file = Some(conn);
        Ok((db, had_records))
    }

    pub fn set_fixed_time(&mut self, now: Option<&str>) {
        self.fixed_now = now.map(str::to_owned);
    }

    fn now(&self) -> String {
        self.fixed_now.clone().unwrap_or_else(now_timestamp)
    }

    fn table(&self, object: &SObject) -> Option<&BTreeMap<String, Fields>> {
        self.tables.by_object.get(object.name)
    }

    fn table_mut(&mut self, object: &'static SObject) -> &mut BTreeMap<String, Fields> {
        self.tables.by_object.entry(object.name).or_default()
    }

    fn new_id(&mut self, object: &SObject) -> String {
        self.tables.next_seq += 1;
        let mut n = self.tables.next_seq;
        let mut digits = [b'0'; 10];
        for slot in digits.iter_mut().rev() {
            *slot = DIGITS[(n % 62) as usize];
            n /= 62;
        }
        let id15 = format!("{}RF{}", object.prefix, String::from_utf8_lossy(&digits));
        format!("{id15}{}", checksum(&id15))
    }

    /// A consistent copy, for `allOrNone` requests that may have to roll back.
    pub fn savepoint(&self) -> Savepoint {
        Savepoint(self.tables.clone())
    }

    pub fn rollback(&mut self, savepoint: Savepoint) {
        self.tables = savepoint.0;
    }

    /// Writes every record changed since the last flush to the state file, if there is one.
    pub fn flush(&mut self) {
        let dirty = std::mem::take(&mut self.tables.dirty);
        let Some(conn) = self.file.as_mut() else {
            return;
        };
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for id in &dirty {
                let found = self
                    .tables
                    .by_object
                    .iter()
                    .find_map(|(name, table)| table.get(id).map(|f| (name, f)));
                match found {
                    Some((name, fields)) => {
                        tx.execute(
                            "INSERT OR REPLACE INTO records (id, sobject, fields) VALUES (?1, ?2, ?3)",
                            rusqlite::params![id, name, Value::Object(fields.clone()).to_string()],
                        )?;
                    }
                    None => {
                        tx.execute("DELETE FROM records WHERE id = ?1", [id])?;
                    }
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?1)",
                [self.tables.next_seq.to_string()],
            )?;
            tx.commit()
        })();
        if let Err(e) = result {
            tracing::error!("emulator state file: {e}");
        }
    }

    /// Every record of a type, in creation order, with computed fields filled in.
    pub fn records(&self, object: &SObject) -> Vec<Fields> {
        self.table(object)
            .map(|t| t.values().map(|r| self.view(object, r)).collect())
            .unwrap_or_default()
    }

    /// A record as a client reads it: roll-ups computed, attributes first.
    fn view(&self, object: &SObject, record: &Fields) -> Fields {
        if object.name != "Campaign" {
            return record.clone();
        }
        let id = text(record, "Id").unwrap_or_default();
        let (mut leads, mut contacts, mut responses) = (0, 0, 0);
        for member in self
            .table(&schema::CAMPAIGN_MEMBER)
            .into_iter()
            .flat_map(|t| t.values())
        {
            if text(member, "CampaignId").as_deref() != Some(id.as_str()) {
                continue;
            }
            if member.get("LeadId").is_some_and(|v| !v.is_null()) {
                leads += 1;
            } else {
                contacts += 1;
            }
            if member.get("HasResponded") == Some(&Value::Bool(true)) {
                responses += 1;
            }
        }
        let mut view = record.clone();
        view.insert("NumberOfLeads".into(), json!(leads));
        view.insert("NumberOfContacts".into(), json!(contacts));
        view.insert("NumberOfResponses".into(), json!(responses));
        view.insert("NumberOfConvertedLeads".into(), json!(0));
        view
    }

    /// Resolves a path id (15 or 18 characters) to an existing record of this type.
    fn existing(&self, object: &SObject, raw_id: &str) -> Outcome<String> {
        let id = SfId::parse(raw_id).map_err(|_| {
            Failure::new(
                400,
                "MALFORMED_ID",
                format!("{} ID: id value of incorrect type: {raw_id}", object.name),
            )
            .on_fields(&["Id"])
        })?;
        if id.prefix() != object.prefix {
            return Err(Failure::not_found());
        }
        let id = id.to_string();
        if self.table(object).is_some_and(|t| t.contains_key(&id)) {
            Ok(id)
        } else if self.tables.deleted.contains(&id) {
            Err(Failure::new(404, "ENTITY_IS_DELETED", "entity is deleted"))
        } else {
            Err(Failure::not_found())
        }
    }

    pub fn get(&self, object: &SObject, raw_id: &str) -> Outcome<Fields> {
        let id = self.existing(object, raw_id).map_err(|f| {
            if f.error.error_code == "ENTITY_IS_DELETED" {
                Failure::not_found()
            } else {
                f
            }
        })?;
        let record = &self.table(object).expect("existing record's table")[&id];
        Ok(self.view(object, record))
    }

    /// The ids of records whose external id field holds `value`.
    pub fn find_by(&self, object: &SObject, field: &str, value: &str) -> Outcome<Vec<String>> {
        let field = object
            .field(field)
            .filter(|f| f.external_id || f.name == "Id")
            .ok_or_else(|| {
                Failure::new(
                    404,
                    "NOT_FOUND",
                    format!(
                        "Provided external ID field does not exist or is not accessible: {field}"
                    ),
                )
            })?;
        if field.name == "Id" {
            return Ok(self
                .existing(object, value)
                .map(|id| vec![id])
                .unwrap_or_default());
        }
        Ok(self
            .table(object)
            .into_iter()
            .flat_map(|t| t.values())
            .filter(|r| text(r, field.name).as_deref() == Some(value))
            .filter_map(|r| text(r, "Id"))
            .collect())
    }

    pub fn create(&mut self, object: &'static SObject, body: &Fields) -> Outcome<String> {
        let mut fields = self.checked_fields(object, body, true)?;
        let missing: Vec<&str> = object
            .fields
            .iter()
            .filter(|f| f.required && fields.get(f.name).is_none_or(Value::is_null))
            .map(|f| f.name)
            .collect();
        if !missing.is_empty() {
            return Err(Failure::new(
                400,
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
            )
            .on_fields(&missing));
        }
        match object.name {
            "CampaignMember" => self.prepare_member(&mut fields)?,
            "CampaignMemberStatus" => self.prepare_member_status(&fields)?,
            "Lead" => {
                fields
                    .entry("Status")
                    .or_insert_with(|| json!("Open - Not Contacted"));
                fields.insert("IsConverted".into(), json!(false));
            }
            _ => {}
        }
        if object.field("OwnerId").is_some() {
            fields
                .entry("OwnerId")
                .or_insert_with(|| json!(self.user_id));
        }
        let id = self.new_id(object);
        let now = self.now();
        let mut record = Map::new();
        record.insert("Id".into(), json!(id));
        for f in object.fields {
            if f.name == "Id" || f.name.starts_with("NumberOf") {
                continue;
            }
            record.insert(f.name.into(), fields.remove(f.name).unwrap_or(Value::Null));
        }
        record.insert("CreatedDate".into(), json!(now));
        record.insert("LastModifiedDate".into(), json!(now));
        self.index_insert(object, &record);
        self.table_mut(object).insert(id.clone(), record);
        self.tables.dirty.insert(id.clone());
        if object.name == "Campaign" {
            self.create_default_statuses(&id)?;
        }
        Ok(id)
    }

    pub fn update(
        &mut self,
        object: &'static SObject,
        raw_id: &str,
        body: &Fields,
    ) -> Outcome<String> {
        let id = self.existing(object, raw_id)?;
        let mut fields = self.checked_fields(object, body, false)?;
        if let Some(missing) = object
            .fields
            .iter()
            .find(|f| f.required && fields.get(f.name).is_some_and(Value::is_null))
        {
            return Err(Failure::new(
                400,
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.name),
            )
            .on_fields(&[missing.name]));
        }
        if object.name == "CampaignMember"
            && let Some(status) = fields.get("Status").cloned()
        {
            let campaign =
                text(&self.table(object).expect("table")[&id], "CampaignId").unwrap_or_default();
            let responded =
                self.status_responded(&campaign, status.as_str().unwrap_or_default())?;
            fields.insert("HasResponded".into(), json!(responded));
        }
        let now = self.now();
        let record = self
            .table_mut(object)
            .get_mut(&id)
            .expect("existing record");
        record.extend(fields);
        record.insert("LastModifiedDate".into(), json!(now));
        self.tables.dirty.insert(id.clone());
        Ok(id)
    }

    /// Deletes a record, and what cannot live without it (a campaign's members and
    /// statuses, a person's memberships). `object` is `None` when only the id is known.
    pub fn delete(&mut self, object: Option<&'static SObject>, raw_id: &str) -> Outcome<String> {
        let object = match object {
            Some(object) => object,
            None => {
                let prefix = raw_id.get(..3).unwrap_or_default();
                let name = object_for_prefix(prefix).ok_or_else(|| {
                    Failure::new(400, "MALFORMED_ID", format!("malformed id {raw_id}"))
                        .on_fields(&["Id"])
                })?;
                schema::object(name).ok_or_else(|| {
                    Failure::new(
                        400,
                        "INVALID_TYPE",
                        format!("cannot delete {name} records here"),
                    )
                })?
            }
        };
        let id = self.existing(object, raw_id)?;
        let record = self.table_mut(object).remove(&id).expect("existing record");
        self.tables.deleted.insert(id.clone());
        self.tables.dirty.insert(id.clone());
        if object.name == "CampaignMember" {
            self.index_remove(&record);
        }
        let dependants: Vec<(&'static SObject, String)> = match object.name {
            "Campaign" => [&schema::CAMPAIGN_MEMBER, &schema::CAMPAIGN_MEMBER_STATUS]
                .into_iter()
                .flat_map(|dep| {
                    self.ids_where(dep, "CampaignId", &id)
                        .into_iter()
                        .map(move |i| (dep, i))
                })
                .collect(),
            "Lead" => self
                .ids_where(&schema::CAMPAIGN_MEMBER, "LeadId", &id)
                .into_iter()
                .map(|i| (&schema::CAMPAIGN_MEMBER, i))
                .collect(),
            "Contact" => self
                .ids_where(&schema::CAMPAIGN_MEMBER, "ContactId", &id)
                .into_iter()
                .map(|i| (&schema::CAMPAIGN_MEMBER, i))
                .collect(),
            _ => Vec::new(),
        };
        for (dep, dep_id) in dependants {
            self.delete(Some(dep), &dep_id)?;
        }
        Ok(id)
    }

    fn ids_where(&self, object: &SObject, field: &str, value: &str) -> Vec<String> {
        self.table(object)
            .into_iter()
            .flat_map(|t| t.values())
            .filter(|r| text(r, field).as_deref() == Some(value))
            .filter_map(|r| text(r, "Id"))
            .collect()
    }

    /// Checks each written field against the schema and normalises its value.
    fn checked_fields(&self, object: &SObject, body: &Fields, creating: bool) -> Outcome<Fields> {
        let mut fields = Map::new();
        for (key, value) in body {
            if key == "attributes" || (!creating && key.eq_ignore_ascii_case("id")) {
                continue;
            }
            let field = object.field(key).ok_or_else(|| {
                Failure::new(
                    400,
                    "INVALID_FIELD",
                    format!("No such column '{key}' on sobject of type {}", object.name),
                )
                .on_fields(&[key.as_str()])
            })?;
            let writable = match field.access {
                Access::ReadWrite => true,
                Access::CreateOnly => creating,
                Access::ReadOnly => false,
            };
            if !writable {
                return Err(Failure::new(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    format!(
                        "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your user profile or permission set.",
                        field.name
                    ),
                )
                .on_fields(&[field.name]));
            }
            fields.insert(
                field.name.into(),
                self.checked_value(field.name, field.kind, value)?,
            );
        }
        Ok(fields)
    }

    fn checked_value(&self, name: &str, kind: Kind, value: &Value) -> Outcome<Value> {
        if value.is_null() {
            return Ok(Value::Null);
        }
        let parse_error = || {
            Failure::new(
                400,
                "JSON_PARSER_ERROR",
                format!("Cannot deserialize value {value} for field {name}"),
            )
            .on_fields(&[name])
        };
        match kind {
            Kind::Id => Err(parse_error()),
            Kind::Text(max) => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return Err(parse_error()),
                };
                if text.chars().count() > max {
                    return Err(Failure::new(
                        400,
                        "STRING_TOO_LONG",
                        format!(
                            "{name}: data value too large: {} (max length={max})",
                            text.chars().take(40).collect::<String>()
                        ),
                    )
                    .on_fields(&[name]));
                }
                Ok(Value::String(text))
            }
            Kind::Email => {
                let text = value.as_str().ok_or_else(parse_error)?;
                let valid = text.split_once('@').is_some_and(|(user, domain)| {
                    !user.is_empty()
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }) && !text.contains(char::is_whitespace);
                if !valid {
                    return Err(Failure::new(
                        400,
                        "INVALID_EMAIL_ADDRESS",
                        format!("{name}: invalid email address: {text}"),
                    )
                    .on_fields(&[name]));
                }
                Ok(Value::String(text.to_string()))
            }
            Kind::Bool => value.as_bool().map(Value::Bool).ok_or_else(parse_error),
            Kind::Number => match value {
                Value::Number(_) => Ok(value.clone()),
                Value::String(s) => s
                    .parse::<f64>()
                    .map(|n| json!(n))
                    .map_err(|_| parse_error()),
                _ => Err(parse_error()),
            },
            Kind::Date => {
                let text = value.as_str().ok_or_else(parse_error)?;
                let ok =
                    text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
                if ok {
                    Ok(Value::String(text.into()))
                } else {
                    Err(parse_error())
                }
            }
            Kind::DateTime => value
                .as_str()
                .map(|s| Value::String(s.into()))
                .ok_or_else(parse_error),
            Kind::Reference(targets) => {
                let raw = value.as_str().ok_or_else(parse_error)?;
                let label = name.strip_suffix("Id").unwrap_or(name);
                let id = SfId::parse(raw).map_err(|_| {
                    Failure::new(
                        400,
                        "MALFORMED_ID",
                        format!("{label} ID: id value of incorrect type: {raw}"),
                    )
                    .on_fields(&[name])
                })?;
                let target = id.object().filter(|o| targets.contains(o));
                let exists = match target {
                    Some("User") => true,
                    Some(target) => schema::object(target)
                        .and_then(|o| self.table(o))
                        .is_some_and(|t| t.contains_key(id.as_str())),
                    None => false,
                };
                if !exists {
                    return Err(Failure::new(
                        400,
                        "INVALID_CROSS_REFERENCE_KEY",
                        format!("invalid cross reference id: {raw}"),
                    )
                    .on_fields(&[name]));
                }
                Ok(Value::String(id.to_string()))
            }
        }
    }

    fn prepare_member(&self, fields: &mut Fields) -> Outcome<()> {
        let person = |key: &str| fields.get(key).and_then(Value::as_str).map(str::to_owned);
        let person = match (person("LeadId"), person("ContactId")) {
            (Some(lead), None) => lead,
            (None, Some(contact)) => contact,
            (None, None) => {
                return Err(Failure::new(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [LeadId or ContactId]",
                )
                .on_fields(&["LeadId", "ContactId"]));
            }
            (Some(_), Some(_)) => {
                return Err(Failure::new(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    "A campaign member is a Lead or a Contact, not both",
                )
                .on_fields(&["LeadId", "ContactId"]));
            }
        };
        let campaign = text(fields, "CampaignId").unwrap_or_default();
        if self
            .tables
            .members
            .contains_key(&(campaign.clone(), person))
        {
            return Err(Failure::new(
                400,
                "DUPLICATE_VALUE",
                "Already a campaign member.",
            ));
        }
        let status = match fields.get("Status").and_then(Value::as_str) {
            Some(status) => status.to_string(),
            None => self.default_status(&campaign),
        };
        let responded = self.status_responded(&campaign, &status)?;
        fields.insert("Status".into(), json!(status));
        fields.insert("HasResponded".into(), json!(responded));
        Ok(())
    }

    fn prepare_member_status(&self, fields: &Fields) -> Outcome<()> {
        let campaign = text(fields, "CampaignId").unwrap_or_default();
        let label = text(fields, "Label").unwrap_or_default();
        if self
            .statuses(&campaign)
            .any(|s| text(s, "Label").as_deref() == Some(label.as_str()))
        {
            return Err(Failure::new(
                400,
                "DUPLICATE_VALUE",
                format!("duplicate value found: Label duplicates value {label}"),
            )
            .on_fields(&["Label"]));
        }
        Ok(())
    }

    fn statuses<'a>(&'a self, campaign: &'a str) -> impl Iterator<Item = &'a Fields> + 'a {
        self.table(&schema::CAMPAIGN_MEMBER_STATUS)
            .into_iter()
            .flat_map(|t| t.values())
            .filter(move |s| text(s, "CampaignId").as_deref() == Some(campaign))
    }

    fn default_status(&self, campaign: &str) -> String {
        self.statuses(campaign)
            .find(|s| s.get("IsDefault") == Some(&Value::Bool(true)))
            .and_then(|s| text(s, "Label"))
            .unwrap_or_else(|| "Sent".into())
    }

    /// Whether `status` counts as a response in this campaign; an unknown label is refused.
    fn status_responded(&self, campaign: &str, status: &str) -> Outcome<bool> {
        self.statuses(campaign)
            .find(|s| text(s, "Label").as_deref() == Some(status))
            .map(|s| s.get("HasResponded") == Some(&Value::Bool(true)))
            .ok_or_else(|| {
                Failure::new(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("Status: bad value for restricted picklist field: {status}"),
                )
                .on_fields(&["Status"])
            })
    }

    fn create_default_statuses(&mut self, campaign: &str) -> Outcome<()> {
        for (label, default, responded, order) in
            [("Sent", true, false, 1), ("Responded", false, true, 2)]
        {
            let status = json!({"CampaignId": campaign, "Label": label, "IsDefault": default, "HasResponded": responded, "SortOrder": order});
            self.create(
                &schema::CAMPAIGN_MEMBER_STATUS,
                status.as_object().expect("object"),
            )?;
        }
        Ok(())
    }

    fn index_insert(&mut self, object: &SObject, record: &Fields) {
        if object.name != "CampaignMember" {
            return;
        }
        let person = text(record, "LeadId").or_else(|| text(record, "ContactId"));
        if let (Some(campaign), Some(person), Some(id)) =
            (text(record, "CampaignId"), person, text(record, "Id"))
        {
            self.tables.members.insert((campaign, person), id);
        }
    }

    fn index_remove(&mut self, record: &Fields) {
        let person = text(record, "LeadId").or_else(|| text(record, "ContactId"));
        if let (Some(campaign), Some(person)) = (text(record, "CampaignId"), person) {
            self.tables.members.remove(&(campaign, person));
        }
    }
}

/// The state before an `allOrNone` request, to return to if one record fails.
pub struct Savepoint(Tables);

pub fn text(record: &Fields, key: &str) -> Option<String> {
    record.get(key).and_then(Value::as_str).map(str::to_owned)
}
