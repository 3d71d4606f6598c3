//! The Action: what a rule asked Salesforce to do, queued until the dispatcher sends it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who a membership is about: a Lead or Contact id, or an email the dispatcher resolves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Person {
    Id(String),
    Email(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    Create {
        sobject: String,
        fields: Map<String, Value>,
    },
    Update {
        sobject: String,
        id: String,
        fields: Map<String, Value>,
    },
    Upsert {
        sobject: String,
        ext_field: String,
        ext_value: String,
        fields: Map<String, Value>,
    },
    Delete {
        sobject: String,
        id: String,
    },
    AddMember {
        campaign_id: String,
        person: Person,
        status: String,
    },
    SetMemberStatus {
        campaign_id: String,
        member: String,
        status: String,
    },
    RemoveMember {
        campaign_id: String,
        member: String,
    },
}

impl Operation {
    /// A short name for summaries and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Create { .. } => "create",
            Operation::Update { .. } => "update",
            Operation::Upsert { .. } => "upsert",
            Operation::Delete { .. } => "delete",
            Operation::AddMember { .. } => "add_member",
            Operation::SetMemberStatus { .. } => "set_member_status",
            Operation::RemoveMember { .. } => "remove_member",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The rule that asked for it.
    pub rule: String,
    /// Which event: a line number for `run`, the store's event id for `watch`.
    pub event: String,
    pub operation: Operation,
    /// `rule/event/n`: the same rule on the same event asks for the same actions, so a
    /// redelivered event cannot produce a second, different key.
    pub key: String,
}
