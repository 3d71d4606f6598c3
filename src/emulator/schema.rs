//! The objects the emulator serves, with real field lists: which fields exist, which a
//! client may write on create or update, which are required.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Id,
    Text(usize),
    Email,
    Bool,
    Number,
    Date,
    DateTime,
    Reference(&'static [&'static str]),
}

/// Who may set a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Set on create and update.
    ReadWrite,
    /// Set on create only (CampaignMember's CampaignId, LeadId, ContactId).
    CreateOnly,
    /// Computed by Salesforce (Id, audit fields, roll-ups).
    ReadOnly,
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub access: Access,
    pub required: bool,
    /// Usable as the key of an upsert.
    pub external_id: bool,
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field {
        name,
        kind,
        access: Access::ReadWrite,
        required: false,
        external_id: false,
    }
}

const fn required(name: &'static str, kind: Kind) -> Field {
    Field {
        required: true,
        ..field(name, kind)
    }
}

const fn read_only(name: &'static str, kind: Kind) -> Field {
    Field {
        access: Access::ReadOnly,
        ..field(name, kind)
    }
}

const fn create_only(name: &'static str, kind: Kind) -> Field {
    Field {
        access: Access::CreateOnly,
        ..field(name, kind)
    }
}

const fn external_id(name: &'static str) -> Field {
    Field {
        external_id: true,
        ..field(name, Kind::Text(255))
    }
}

#[derive(Debug)]
pub struct SObject {
    pub name: &'static str,
    pub prefix: &'static str,
    pub fields: &'static [Field],
}

impl SObject {
    /// The field by name, case-insensitively as Salesforce matches names.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }
}

const USER: &[&str] = &["User"];

pub static CAMPAIGN: SObject = SObject {
    name: "Campaign",
    prefix: "701",
    fields: &[
        read_only("Id", Kind::Id),
        required("Name", Kind::Text(80)),
        field("Status", Kind::Text(255)),
        field("Type", Kind::Text(255)),
        field("IsActive", Kind::Bool),
        field("StartDate", Kind::Date),
        field("EndDate", Kind::Date),
        field("Description", Kind::Text(32000)),
        field("ParentId", Kind::Reference(&["Campaign"])),
        field("BudgetedCost", Kind::Number),
        field("ActualCost", Kind::Number),
        field("ExpectedRevenue", Kind::Number),
        field("ExpectedResponse", Kind::Number),
        field("NumberSent", Kind::Number),
        field("OwnerId", Kind::Reference(USER)),
        external_id("External_Id__c"),
        read_only("NumberOfLeads", Kind::Number),
        read_only("NumberOfContacts", Kind::Number),
        read_only("NumberOfResponses", Kind::Number),
        read_only("NumberOfConvertedLeads", Kind::Number),
        read_only("CreatedDate", Kind::DateTime),
        read_only("LastModifiedDate", Kind::DateTime),
    ],
};

pub static CAMPAIGN_MEMBER: SObject = SObject {
    name: "CampaignMember",
    prefix: "00v",
    fields: &[
        read_only("Id", Kind::Id),
        Field {
            required: true,
            ..create_only("CampaignId", Kind::Reference(&["Campaign"]))
        },
        create_only("LeadId", Kind::Reference(&["Lead"])),
        create_only("ContactId", Kind::Reference(&["Contact"])),
        field("Status", Kind::Text(40)),
        read_only("HasResponded", Kind::Bool),
        read_only("FirstRespondedDate", Kind::Date),
        read_only("CreatedDate", Kind::DateTime),
        read_only("LastModifiedDate", Kind::DateTime),
    ],
};

pub static CAMPAIGN_MEMBER_STATUS: SObject = SObject {
    name: "CampaignMemberStatus",
    prefix: "01Y",
    fields: &[
        read_only("Id", Kind::Id),
        Field {
            required: true,
            ..create_only("CampaignId", Kind::Reference(&["Campaign"]))
        },
        required("Label", Kind::Text(765)),
        field("IsDefault", Kind::Bool),
        field("HasResponded", Kind::Bool),
        field("SortOrder", Kind::Number),
        read_only("CreatedDate", Kind::DateTime),
        read_only("LastModifiedDate", Kind::DateTime),
    ],
};

pub static LEAD: SObject = SObject {
    name: "Lead",
    prefix: "00Q",
    fields: &[
        read_only("Id", Kind::Id),
        field("FirstName", Kind::Text(40)),
        required("LastName", Kind::Text(80)),
        required("Company", Kind::Text(255)),
        field("Email", Kind::Email),
        field("Phone", Kind::Text(40)),
        field("Title", Kind::Text(128)),
        field("Status", Kind::Text(255)),
        field("LeadSource", Kind::Text(255)),
        field("Industry", Kind::Text(255)),
        field("Description", Kind::Text(32000)),
        field("OwnerId", Kind::Reference(USER)),
        external_id("External_Id__c"),
        read_only("IsConverted", Kind::Bool),
        read_only("CreatedDate", Kind::DateTime),
        read_only("LastModifiedDate", Kind::DateTime),
    ],
};

pub static CONTACT: SObject = SObject {
    name: "Contact",
    prefix: "003",
    fields: &[
        read_only("Id", Kind::Id),
        field("FirstName", Kind::Text(40)),
        required("LastName", Kind::Text(80)),
        field("Email", Kind::Email),
        field("Phone", Kind::Text(40)),
        field("Title", Kind::Text(128)),
        field("AccountId", Kind::Reference(&["Account"])),
        field("LeadSource", Kind::Text(255)),
        field("Description", Kind::Text(32000)),
        field("OwnerId", Kind::Reference(USER)),
        external_id("External_Id__c"),
        read_only("CreatedDate", Kind::DateTime),
        read_only("LastModifiedDate", Kind::DateTime),
    ],
};

pub static ACCOUNT: SObject = SObject {
    name: "Account",
    prefix: "001",
    fields: &[
        read_only("Id", Kind::Id),
        required("Name", Kind::Text(255)),
        field("Type", Kind::Text(255)),
        field("Industry", Kind::Text(255)),
        field("Website", Kind::Text(255)),
        field("Phone", Kind::Text(40)),
        field("BillingCity", Kind::Text(40)),
        field("BillingCountry", Kind::Text(80)),
        field("NumberOfEmployees", Kind::Number),
        field("Description", Kind::Text(32000)),
        field("OwnerId", Kind::Reference(USER)),
        external_id("External_Id__c"),
        read_only("CreatedDate", Kind::DateTime),
        read_only("LastModifiedDate", Kind::DateTime),
    ],
};

pub static OBJECTS: [&SObject; 6] = [
    &CAMPAIGN,
    &CAMPAIGN_MEMBER,
    &CAMPAIGN_MEMBER_STATUS,
    &LEAD,
    &CONTACT,
    &ACCOUNT,
];

/// The object by API name, case-insensitively.
pub fn object(name: &str) -> Option<&'static SObject> {
    OBJECTS
        .iter()
        .copied()
        .find(|o| o.name.eq_ignore_ascii_case(name))
}
