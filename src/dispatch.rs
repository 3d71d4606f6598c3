//! Actions -> batched Salesforce calls -> one outcome per action. Actions are grouped by
//! operation and object (one sObject Collections call per 200 of a kind, never one per
//! action); groups go out in the order their first action was queued.

use std::collections::HashMap;

use serde_json::Value;

use crate::actions::{Action, Operation, Person};
use crate::salesforce::campaign::MemberAdd;
use crate::salesforce::{ApiError, Client, Error, Fields, RecordResult, RecordWrite, SfId};

/// What happened to one action: the record it touched, or Salesforce's error.
pub type Outcome = Result<Option<String>, ApiError>;

/// Actions of one kind that go out together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Group {
    Create(String),
    Update(String),
    Upsert(String, String),
    Delete,
    AddMember,
    SetMemberStatus,
    RemoveMember,
}

fn group_of(operation: &Operation) -> Group {
    match operation {
        Operation::Create { sobject, .. } => Group::Create(sobject.clone()),
        Operation::Update { sobject, .. } => Group::Update(sobject.clone()),
        Operation::Upsert {
            sobject, ext_field, ..
        } => Group::Upsert(sobject.clone(), ext_field.clone()),
        Operation::Delete { .. } => Group::Delete,
        Operation::AddMember { .. } => Group::AddMember,
        Operation::SetMemberStatus { .. } => Group::SetMemberStatus,
        Operation::RemoveMember { .. } => Group::RemoveMember,
    }
}

/// A whole-call failure as each of its actions reports it: Salesforce's code when it
/// answered, else a code of ours that says what kind of failure it was.
fn call_failed(err: &Error) -> ApiError {
    let code = err.error_code().unwrap_or(match err {
        Error::Transport(_) => "TRANSPORT_ERROR",
        Error::Auth { .. } => "LOGIN_FAILED",
        Error::SessionExpired(_) => "INVALID_SESSION_ID",
        Error::Decode(_) => "BAD_RESPONSE",
        Error::Config(_) => "CONFIG_ERROR",
        Error::RetriesExhausted { last, .. } if matches!(**last, Error::Transport(_)) => {
            "TRANSPORT_ERROR"
        }
        Error::Api { .. } | Error::RetriesExhausted { .. } => "REQUEST_FAILED",
    });
    ApiError::new(code, err.to_string())
}

/// Failures that may pass if the action is sent again later.
pub fn is_transient(error: &ApiError) -> bool {
    matches!(
        error.error_code.as_str(),
        "SERVER_UNAVAILABLE"
            | "UNABLE_TO_LOCK_ROW"
            | "REQUEST_LIMIT_EXCEEDED"
            | "TRANSPORT_ERROR"
            | "LOGIN_FAILED"
            | "INVALID_SESSION_ID"
            | "BAD_RESPONSE"
            | "HTTP_ERROR"
    )
}

fn first_error(errors: Vec<ApiError>) -> ApiError {
    errors
        .into_iter()
        .next()
        .unwrap_or_else(|| ApiError::new("UNKNOWN_ERROR", "failed without an error"))
}

fn from_record(result: &RecordResult) -> Outcome {
    match result {
        Ok(saved) => Ok(saved.id.clone()),
        Err(errors) => Err(first_error(errors.clone())),
    }
}

/// Delivers `actions`; the outcomes are in the same order.
pub async fn deliver(client: &Client, actions: &[Action]) -> Vec<Outcome> {
    let mut groups: Vec<(Group, Vec<usize>)> = Vec::new();
    for (index, action) in actions.iter().enumerate() {
        let group = group_of(&action.operation);
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(index),
            None => groups.push((group, vec![index])),
        }
    }
    let mut outcomes: Vec<Option<Outcome>> = vec![None; actions.len()];
    for (group, members) in groups {
        let ops: Vec<&Operation> = members.iter().map(|&i| &actions[i].operation).collect();
        let results = match group {
            Group::Create(sobject) => creates(client, &sobject, &ops).await,
            Group::Update(sobject) => updates(client, &sobject, &ops).await,
            Group::Upsert(sobject, field) => upserts(client, &sobject, &field, &ops).await,
            Group::Delete => deletes(client, &ops).await,
            Group::AddMember => member_adds(client, &ops).await,
            Group::SetMemberStatus | Group::RemoveMember => member_changes(client, &ops).await,
        };
        for (index, outcome) in members.into_iter().zip(results) {
            outcomes[index] = Some(outcome);
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every action is in one group"))
        .collect()
}

async fn creates(client: &Client, sobject: &str, ops: &[&Operation]) -> Vec<Outcome> {
    let writes: Vec<RecordWrite> = ops
        .iter()
        .map(|op| match op {
            Operation::Create { fields, .. } => RecordWrite {
                sobject: sobject.into(),
                id: None,
                fields: fields.clone(),
            },
            _ => unreachable!("grouped as a create"),
        })
        .collect();
    let slots: Vec<usize> = (0..writes.len()).collect();
    by_slot(client.create_many(&writes).await, &slots)
}

/// Actions that name the same record (by id, or by external id value) become one
/// write, their fields merged in order, later ones winning: Salesforce refuses a record
/// twice in one call, and only the last value would stay anyway. Returns the writes and,
/// for each action, the write it went into.
fn coalesce<'a>(
    keyed: impl Iterator<Item = (&'a str, &'a Fields)>,
    new_write: impl Fn(&str) -> RecordWrite,
) -> (Vec<RecordWrite>, Vec<usize>) {
    let mut writes: Vec<RecordWrite> = Vec::new();
    let mut slot_of: HashMap<&str, usize> = HashMap::new();
    let slots = keyed
        .map(|(key, fields)| {
            let slot = *slot_of.entry(key).or_insert_with(|| {
                writes.push(new_write(key));
                writes.len() - 1
            });
            writes[slot].fields.extend(fields.clone());
            slot
        })
        .collect();
    (writes, slots)
}

/// Each action's outcome: the result of the write it went into.
fn by_slot(results: Result<Vec<RecordResult>, Error>, slots: &[usize]) -> Vec<Outcome> {
    match results {
        Ok(results) => slots
            .iter()
            .map(|&slot| from_record(&results[slot]))
            .collect(),
        Err(err) => vec![Err(call_failed(&err)); slots.len()],
    }
}

async fn updates(client: &Client, sobject: &str, ops: &[&Operation]) -> Vec<Outcome> {
    let keyed = ops.iter().map(|op| match op {
        Operation::Update { id, fields, .. } => (id.as_str(), fields),
        _ => unreachable!("grouped as an update"),
    });
    let (writes, slots) = coalesce(keyed, |id| RecordWrite {
        sobject: sobject.into(),
        id: Some(id.into()),
        fields: Fields::new(),
    });
    by_slot(client.update_many(&writes).await, &slots)
}

async fn upserts(client: &Client, sobject: &str, field: &str, ops: &[&Operation]) -> Vec<Outcome> {
    let keyed = ops.iter().map(|op| match op {
        Operation::Upsert {
            ext_value, fields, ..
        } => (ext_value.as_str(), fields),
        _ => unreachable!("grouped as an upsert"),
    });
    let (writes, slots) = coalesce(keyed, |value| {
        let mut key = Fields::new();
        key.insert(field.into(), Value::String(value.into()));
        RecordWrite {
            sobject: sobject.into(),
            id: None,
            fields: key,
        }
    });
    by_slot(client.upsert_many(sobject, field, &writes).await, &slots)
}

async fn deletes(client: &Client, ops: &[&Operation]) -> Vec<Outcome> {
    let no_fields = Fields::new();
    let keyed = ops.iter().map(|op| match op {
        Operation::Delete { id, .. } => (id.as_str(), &no_fields),
        _ => unreachable!("grouped as a delete"),
    });
    let (writes, slots) = coalesce(keyed, |id| RecordWrite {
        sobject: String::new(),
        id: Some(id.into()),
        fields: Fields::new(),
    });
    let ids: Vec<String> = writes.into_iter().filter_map(|w| w.id).collect();
    by_slot(client.delete_many(&ids).await, &slots)
}

/// Member adds; emails are resolved to Leads or Contacts with one `IN` query per 200.
async fn member_adds(client: &Client, ops: &[&Operation]) -> Vec<Outcome> {
    let emails: Vec<String> = ops
        .iter()
        .filter_map(|op| match op {
            Operation::AddMember {
                person: Person::Email(email),
                ..
            } => Some(email.clone()),
            _ => None,
        })
        .collect();
    let people = if emails.is_empty() {
        HashMap::new()
    } else {
        match client.people_by_email(&emails).await {
            Ok(people) => people,
            Err(err) => return vec![Err(call_failed(&err)); ops.len()],
        }
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; ops.len()];
    let mut adds = Vec::new();
    let mut slots = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let Operation::AddMember {
            campaign_id,
            person,
            status,
        } = op
        else {
            unreachable!("grouped as a member add")
        };
        let person_id = match person {
            Person::Id(id) => SfId::parse(id).ok(),
            Person::Email(email) => people.get(email).cloned(),
        };
        let (Some(person_id), Ok(campaign_id)) = (person_id, SfId::parse(campaign_id)) else {
            let who = match person {
                Person::Id(id) => id.clone(),
                Person::Email(email) => email.clone(),
            };
            outcomes[i] = Some(Err(ApiError::new(
                "NOT_FOUND",
                format!("no Lead or Contact has the email {who}"),
            )));
            continue;
        };
        adds.push(MemberAdd {
            campaign_id,
            person_id,
            status: status.clone(),
        });
        slots.push(i);
    }
    match client.add_members(&adds).await {
        Ok(results) => {
            for (slot, result) in slots.into_iter().zip(results) {
                outcomes[slot] = Some(
                    result
                        .map(|added| Some(added.member_id))
                        .map_err(first_error),
                );
            }
        }
        Err(err) => {
            for slot in slots {
                outcomes[slot] = Some(Err(call_failed(&err)));
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every add has an outcome"))
        .collect()
}

/// Status changes and removals: members named by person are found with one query per
/// 200, then updated or deleted in Collections calls.
async fn member_changes(client: &Client, ops: &[&Operation]) -> Vec<Outcome> {
    let named: Vec<(String, String)> = ops
        .iter()
        .map(|op| match op {
            Operation::SetMemberStatus {
                campaign_id,
                member,
                ..
            }
            | Operation::RemoveMember {
                campaign_id,
                member,
            } => (campaign_id.clone(), member.clone()),
            _ => unreachable!("grouped as a member change"),
        })
        .collect();
    let lookups: Vec<(SfId, SfId)> = named
        .iter()
        .filter(|(_, member)| !member.starts_with("00v"))
        .filter_map(|(c, m)| Some((SfId::parse(c).ok()?, SfId::parse(m).ok()?)))
        .collect();
    let found = match client.find_members(&lookups).await {
        Ok(found) => found,
        Err(err) => return vec![Err(call_failed(&err)); ops.len()],
    };
    let mut found_by_pair: HashMap<(String, String), String> = HashMap::new();
    for ((campaign, person), member) in lookups.iter().zip(found) {
        if let Some(member) = member {
            found_by_pair.insert((campaign.to_string(), person.to_string()), member);
        }
    }
    let member_ids: Vec<Option<String>> = named
        .iter()
        .map(|(campaign, member)| {
            if member.starts_with("00v") {
                Some(member.clone())
            } else {
                found_by_pair
                    .get(&(campaign.clone(), member.clone()))
                    .cloned()
            }
        })
        .collect();

    let mut outcomes: Vec<Option<Outcome>> = vec![None; ops.len()];
    let mut writes = Vec::new();
    let mut slots = Vec::new();
    for (i, (op, member_id)) in ops.iter().zip(&member_ids).enumerate() {
        let Some(member_id) = member_id else {
            let (campaign, member) = &named[i];
            outcomes[i] = Some(Err(ApiError::new(
                "NOT_FOUND",
                format!("{member} is not a member of campaign {campaign}"),
            )));
            continue;
        };
        if let Operation::SetMemberStatus { status, .. } = op {
            let mut fields = Fields::new();
            fields.insert("Status".into(), Value::String(status.clone()));
            writes.push(RecordWrite {
                sobject: "CampaignMember".into(),
                id: Some(member_id.clone()),
                fields,
            });
        } else {
            writes.push(RecordWrite {
                sobject: "CampaignMember".into(),
                id: Some(member_id.clone()),
                fields: Fields::new(),
            });
        }
        slots.push(i);
    }
    let removing = matches!(ops.first(), Some(Operation::RemoveMember { .. }));
    let results = if removing {
        let ids: Vec<String> = writes.iter().filter_map(|w| w.id.clone()).collect();
        client.delete_many(&ids).await
    } else {
        client.update_many(&writes).await
    };
    match results {
        Ok(results) => {
            for (slot, result) in slots.into_iter().zip(results) {
                outcomes[slot] = Some(from_record(&result));
            }
        }
        Err(err) => {
            for slot in slots {
                outcomes[slot] = Some(Err(call_failed(&err)));
            }
        }
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every change has an outcome"))
        .collect()
}
