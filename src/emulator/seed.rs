//! The demo data: deterministic, so ids are the same on every start, and documented in
//! the README. The example rules in `scripts/` use it.

use serde_json::{Value, json};

use super::db::Db;
use super::schema;

/// Seeded records are dated at this fixed time so the data is identical every start.
const SEED_TIME: &str = "2026-01-05T09:00:00.000+0000";

pub fn load(db: &mut Db) {
    db.set_fixed_time(Some(SEED_TIME));
    let mut create = |object: &'static schema::SObject, fields: Value| -> String {
        db.create(
            object,
            fields.as_object().expect("seed record is an object"),
        )
        .unwrap_or_else(|f| panic!("seed record for {} refused: {}", object.name, f.error))
    };
    create(
        &schema::CAMPAIGN,
        json!({"Name": "Trial Nurture", "Status": "In Progress", "Type": "Email", "IsActive": true,
               "StartDate": "2026-01-05", "Description": "Trial users who engage with the product"}),
    );
    let churn = create(
        &schema::CAMPAIGN,
        json!({"Name": "Churn Risk Outreach", "Status": "In Progress", "Type": "Telemarketing", "IsActive": true,
               "StartDate": "2026-01-05", "Description": "Customers whose usage dropped"}),
    );
    create(
        &schema::CAMPAIGN,
        json!({"Name": "Spring Webinar", "Status": "Planned", "Type": "Webinar", "IsActive": false,
               "StartDate": "2026-03-18", "EndDate": "2026-03-18", "BudgetedCost": 5000}),
    );
    create(
        &schema::CAMPAIGN,
        json!({"Name": "Onboarding 2025", "Status": "Completed", "Type": "Email", "IsActive": false,
               "StartDate": "2025-01-06", "EndDate": "2025-12-19"}),
    );
    for (label, order, responded) in [
        ("At Risk", 3, false),
        ("Contacted", 4, false),
        ("Recovered", 5, true),
    ] {
        create(
            &schema::CAMPAIGN_MEMBER_STATUS,
            json!({"CampaignId": churn, "Label": label, "SortOrder": order, "HasResponded": responded}),
        );
    }

    let leads = [
        ("Ada", "Lovelace", "Analytical Engines", "ada@example.com"),
        ("Grace", "Hopper", "Compiler Works", "grace@example.com"),
        ("Alan", "Turing", "Bletchley Labs", "alan@example.com"),
        (
            "Katherine",
            "Johnson",
            "Orbital Math",
            "katherine@example.com",
        ),
        ("Linus", "Torvalds", "Kernel Co", "linus@example.com"),
        (
            "Margaret",
            "Hamilton",
            "Apollo Software",
            "margaret@example.com",
        ),
    ];
    for (first, last, company, email) in leads {
        create(
            &schema::LEAD,
            json!({"FirstName": first, "LastName": last, "Company": company, "Email": email, "LeadSource": "Web"}),
        );
    }

    let acme = create(
        &schema::ACCOUNT,
        json!({"Name": "Acme Corp", "Industry": "Manufacturing", "Type": "Customer"}),
    );
    let globex = create(
        &schema::ACCOUNT,
        json!({"Name": "Globex", "Industry": "Technology", "Type": "Customer"}),
    );
    let contacts = [
        ("Dennis", "Ritchie", "dennis@globex.example", &globex),
        ("Barbara", "Liskov", "barbara@acme.example", &acme),
        ("Ken", "Thompson", "ken@globex.example", &globex),
        ("Frances", "Allen", "frances@acme.example", &acme),
    ];
    let mut contact_ids = Vec::new();
    for (first, last, email, account) in contacts {
        contact_ids.push(create(
            &schema::CONTACT,
            json!({"FirstName": first, "LastName": last, "Email": email, "AccountId": account}),
        ));
    }
    // Two customers are already in the churn campaign, so status changes have members to act on.
    for contact in &contact_ids[..2] {
        create(
            &schema::CAMPAIGN_MEMBER,
            json!({"CampaignId": churn, "ContactId": contact, "Status": "Sent"}),
        );
    }
    db.set_fixed_time(None);
    db.flush();
}
