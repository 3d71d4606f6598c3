//! The client's operations against the emulator: CRUD, upsert, SOQL paging, sObject
//! Collections, campaign membership, retries and permanent errors.

mod common;

use common::*;
use rulesforce::emulator::{EmulatorConfig, FaultUpdate};
use rulesforce::salesforce::campaign::MemberAdd;
use rulesforce::salesforce::{Error, Fields, RecordWrite, SfId};
use serde_json::{Value, json};

fn fields(value: Value) -> Fields {
    value.as_object().expect("an object").clone()
}

#[tokio::test]
async fn sobject_create_get_update_delete() {
    let emu = emulator().await;
    let client = client(&emu);
    let id = client
        .create(
            "Campaign",
            &fields(json!({"Name": "Launch", "Status": "Planned"})),
        )
        .await
        .unwrap();
    assert_eq!(id.prefix(), "701");
    assert_eq!(
        SfId::parse(id.short()).unwrap(),
        id,
        "an 18-character id with its checksum"
    );

    let record = client
        .get_record("Campaign", id.as_str(), None)
        .await
        .unwrap();
    assert_eq!(record["Name"], "Launch");
    assert_eq!(record["attributes"]["type"], "Campaign");
    assert_eq!(record["NumberOfLeads"], 0);

    client
        .update(
            "Campaign",
            id.short(),
            &fields(json!({"Status": "In Progress"})),
        )
        .await
        .unwrap();
    let only = client
        .get_record("Campaign", id.as_str(), Some(&["Status".to_string()]))
        .await
        .unwrap();
    assert_eq!(
        only.keys().collect::<Vec<_>>(),
        vec!["attributes", "Status"]
    );
    assert_eq!(only["Status"], "In Progress");

    client.delete("Campaign", id.as_str()).await.unwrap();
    let err = client
        .get_record("Campaign", id.as_str(), None)
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some("NOT_FOUND"));

    let log = emu.requests();
    let patch = &requests_to(
        &log,
        "PATCH",
        &format!("{DATA}/sobjects/Campaign/{}", id.short()),
    )[0];
    assert_eq!(patch.body, json!({"Status": "In Progress"}));
    assert_eq!(patch.status, 204);
}

#[tokio::test]
async fn upsert_creates_then_updates() {
    let emu = emulator().await;
    let client = client(&emu);
    let body =
        fields(json!({"LastName": "Doe", "Company": "Doe Inc", "Email": "jane@doe.example"}));
    let created = client
        .upsert("Lead", "External_Id__c", "ext/1 a", &body)
        .await
        .unwrap();
    assert_eq!(created.created, Some(true));
    let again = client
        .upsert(
            "Lead",
            "External_Id__c",
            "ext/1 a",
            &fields(json!({"Title": "CTO"})),
        )
        .await
        .unwrap();
    assert_eq!(again.created, Some(false));
    assert_eq!(again.id, created.id);
    let lead = client
        .get_record("Lead", created.id.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(
        (lead["Title"].as_str(), lead["External_Id__c"].as_str()),
        (Some("CTO"), Some("ext/1 a"))
    );
    let log = emu.requests();
    assert_eq!(
        requests_to(
            &log,
            "PATCH",
            &format!("{DATA}/sobjects/Lead/External_Id__c/ext%2F1%20a")
        )
        .len(),
        2
    );
}

#[tokio::test]
async fn query_follows_every_page() {
    let emu = emulator_with(EmulatorConfig {
        page_size: 4,
        ..EmulatorConfig::default()
    })
    .await;
    let client = client(&emu);
    let records = client
        .query("SELECT Id, Email FROM Lead ORDER BY Email")
        .await
        .unwrap();
    assert_eq!(records.len(), 6);
    let emails: Vec<&str> = records
        .iter()
        .map(|r| r["Email"].as_str().unwrap())
        .collect();
    assert_eq!(emails[0], "ada@example.com");
    let log = emu.requests();
    let pages: Vec<_> = log
        .iter()
        .filter(|r| r.route().starts_with(&format!("{DATA}/query")))
        .collect();
    assert_eq!(pages.len(), 2);
    assert!(
        pages[1].route().starts_with(&format!("{DATA}/query/01g")),
        "{}",
        pages[1].path
    );

    assert!(
        client
            .query_one("SELECT Id FROM Lead WHERE Email = 'nobody@x.com'")
            .await
            .unwrap()
            .is_none()
    );
    let one = client
        .query_one("SELECT Name FROM Campaign WHERE Name LIKE 'trial%'")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one["Name"], "Trial Nurture");
}

#[tokio::test]
async fn collections_split_450_records_into_200_200_50_and_map_results_back() {
    let emu = emulator().await;
    let client = client(&emu);
    let leads: Vec<RecordWrite> = (0..450)
        .map(|i| RecordWrite {
            sobject: "Lead".into(),
            id: None,
            fields: fields(json!({"LastName": format!("Bulk {i}"), "Company": "Bulk Co", "Email": format!("bulk{i}@example.com")})),
        })
        .collect();
    let mut with_bad = leads.clone();
    with_bad[300]
        .fields
        .insert("Email".into(), json!("not-an-email"));
    let results = client.create_many(&with_bad).await.unwrap();
    assert_eq!(results.len(), 450);
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 449);
    let errors = results[300].as_ref().unwrap_err();
    assert_eq!(errors[0].error_code, "INVALID_EMAIL_ADDRESS");
    assert_eq!(errors[0].fields, vec!["Email"]);

    let log = emu.requests();
    let calls = requests_to(&log, "POST", &format!("{DATA}/composite/sobjects"));
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c.body["records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![200, 200, 50]);
    assert_eq!(calls[0].body["allOrNone"], false);
    assert_eq!(calls[0].body["records"][0]["attributes"]["type"], "Lead");

    // Each result's id belongs to the record at its position.
    let id = results[449].as_ref().unwrap().id.clone().unwrap();
    assert_eq!(
        client.get_record("Lead", &id, None).await.unwrap()["LastName"],
        "Bulk 449"
    );

    // Updates and deletes go the same way.
    let ids: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.id.clone())
        .collect();
    let updates: Vec<RecordWrite> = ids
        .iter()
        .map(|id| RecordWrite {
            sobject: "Lead".into(),
            id: Some(id.clone()),
            fields: fields(json!({"Title": "Bulk"})),
        })
        .collect();
    assert!(
        client
            .update_many(&updates)
            .await
            .unwrap()
            .iter()
            .all(Result::is_ok)
    );
    let deleted = client.delete_many(&ids).await.unwrap();
    assert!(deleted.iter().all(Result::is_ok));
    let log = emu.requests();
    assert_eq!(
        requests_to(&log, "PATCH", &format!("{DATA}/composite/sobjects")).len(),
        3
    );
    assert_eq!(
        requests_to(&log, "DELETE", &format!("{DATA}/composite/sobjects")).len(),
        3
    );
    assert_eq!(
        client
            .query("SELECT Id FROM Lead WHERE Company = 'Bulk Co'")
            .await
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn collection_upsert_reports_created_per_record() {
    let emu = emulator().await;
    let client = client(&emu);
    let record = |ext: &str, name: &str| RecordWrite {
        sobject: "Account".into(),
        id: None,
        fields: fields(json!({"External_Id__c": ext, "Name": name})),
    };
    let first = client
        .upsert_many("Account", "External_Id__c", &[record("a-1", "One")])
        .await
        .unwrap();
    assert_eq!(first[0].as_ref().unwrap().created, Some(true));
    let second = client
        .upsert_many(
            "Account",
            "External_Id__c",
            &[record("a-1", "Uno"), record("a-2", "Two")],
        )
        .await
        .unwrap();
    let created: Vec<Option<bool>> = second.iter().map(|r| r.as_ref().unwrap().created).collect();
    assert_eq!(created, vec![Some(false), Some(true)]);
    let names = client
        .query("SELECT Name FROM Account WHERE External_Id__c IN ('a-1','a-2') ORDER BY Name")
        .await
        .unwrap();
    assert_eq!(
        names
            .iter()
            .map(|r| r["Name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["Two", "Uno"]
    );
}

async fn campaign_id(client: &rulesforce::salesforce::Client, name: &str) -> SfId {
    client.find_campaign(name).await.unwrap().unwrap()
}

async fn person_id(client: &rulesforce::salesforce::Client, sobject: &str, email: &str) -> SfId {
    let record = client
        .query_one(&format!("SELECT Id FROM {sobject} WHERE Email = '{email}'"))
        .await
        .unwrap()
        .unwrap();
    SfId::parse(record["Id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn campaign_membership_add_status_remove() {
    let emu = emulator().await;
    let client = client(&emu);
    let trial = campaign_id(&client, "Trial Nurture").await;
    let ada = person_id(&client, "Lead", "ada@example.com").await;

    let added = client
        .add_to_campaign(&MemberAdd {
            campaign_id: trial.clone(),
            person_id: ada.clone(),
            status: "Sent".into(),
        })
        .await
        .unwrap();
    assert!(!added.already_member);
    let member = client
        .get_record("CampaignMember", &added.member_id, None)
        .await
        .unwrap();
    assert_eq!(
        (member["LeadId"].as_str(), member["HasResponded"].as_bool()),
        (Some(ada.as_str()), Some(false))
    );

    // Adding again meets DUPLICATE_VALUE and sets the Status instead.
    let again = client
        .add_to_campaign(&MemberAdd {
            campaign_id: trial.clone(),
            person_id: ada.clone(),
            status: "Responded".into(),
        })
        .await
        .unwrap();
    assert!(again.already_member);
    assert_eq!(again.member_id, added.member_id);
    let member = client
        .get_record("CampaignMember", &added.member_id, None)
        .await
        .unwrap();
    assert_eq!(
        (member["Status"].as_str(), member["HasResponded"].as_bool()),
        (Some("Responded"), Some(true))
    );
    let campaign = client
        .get_record("Campaign", trial.as_str(), None)
        .await
        .unwrap();
    assert_eq!(
        (
            campaign["NumberOfLeads"].as_i64(),
            campaign["NumberOfResponses"].as_i64()
        ),
        (Some(1), Some(1))
    );

    let log = emu.requests();
    let creates = requests_to(&log, "POST", &format!("{DATA}/composite/sobjects"));
    assert_eq!(creates.len(), 2);
    assert_eq!(
        creates[1].body,
        json!({"allOrNone": false, "records": [{"attributes": {"type": "CampaignMember"}, "CampaignId": trial.as_str(), "LeadId": ada.as_str(), "Status": "Responded"}]})
    );

    client
        .set_member_status(&trial, &ada, "Sent")
        .await
        .unwrap();
    assert_eq!(
        client
            .get_record("CampaignMember", &added.member_id, None)
            .await
            .unwrap()["Status"],
        "Sent"
    );

    let unknown = client
        .set_member_status(&trial, &ada, "Bogus")
        .await
        .unwrap_err();
    assert_eq!(
        unknown.error_code(),
        Some("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST")
    );

    client.remove_from_campaign(&trial, &ada).await.unwrap();
    let gone = client.remove_from_campaign(&trial, &ada).await.unwrap_err();
    assert_eq!(gone.error_code(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn bulk_member_adds_with_duplicates_update_their_status() {
    let emu = emulator().await;
    let client = client(&emu);
    let churn = campaign_id(&client, "Churn Risk Outreach").await;
    let contacts = client
        .query("SELECT Id, Email FROM Contact ORDER BY Email")
        .await
        .unwrap();
    let adds: Vec<MemberAdd> = contacts
        .iter()
        .map(|c| MemberAdd {
            campaign_id: churn.clone(),
            person_id: SfId::parse(c["Id"].as_str().unwrap()).unwrap(),
            status: "At Risk".into(),
        })
        .collect();
    let results = client.add_members(&adds).await.unwrap();
    let already: Vec<bool> = results
        .iter()
        .map(|r| r.as_ref().unwrap().already_member)
        .collect();
    // barbara and dennis were seeded as members.
    assert_eq!(already.iter().filter(|a| **a).count(), 2);
    let statuses = client
        .query(&format!(
            "SELECT Status FROM CampaignMember WHERE CampaignId = '{churn}'"
        ))
        .await
        .unwrap();
    assert_eq!(statuses.len(), 4);
    assert!(statuses.iter().all(|s| s["Status"] == "At Risk"));
    let log = emu.requests();
    assert_eq!(
        requests_to(&log, "POST", &format!("{DATA}/composite/sobjects")).len(),
        1,
        "one create call"
    );
    assert_eq!(
        requests_to(&log, "PATCH", &format!("{DATA}/composite/sobjects")).len(),
        1,
        "one status update call"
    );
}

#[tokio::test]
async fn a_503_is_retried_until_it_passes() {
    let emu = emulator().await;
    let client = client(&emu);
    client.limits().await.unwrap();
    emu.update_faults(&FaultUpdate {
        fail_next: Some(2),
        ..FaultUpdate::default()
    });
    assert!(
        client
            .find_campaign("Trial Nurture")
            .await
            .unwrap()
            .is_some()
    );
    let statuses: Vec<u16> = emu
        .requests()
        .iter()
        .filter(|r| r.route().ends_with("/query"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![503, 503, 200]);
}

#[tokio::test]
async fn retries_stop_at_the_limit() {
    let emu = emulator_with(EmulatorConfig {
        faults: rulesforce::emulator::Faults {
            fail_next: 100,
            ..Default::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let client = client(&emu);
    let err = client.limits().await.unwrap_err();
    let Error::RetriesExhausted { attempts, last } = &err else {
        panic!("{err}")
    };
    assert_eq!(*attempts, 5);
    assert_eq!(last.error_code(), Some("SERVER_UNAVAILABLE"));
    assert_eq!(emu.requests().iter().filter(|r| r.status == 503).count(), 5);
}

#[tokio::test]
async fn unable_to_lock_row_is_retried_for_single_records_and_collections() {
    let emu = emulator().await;
    let client = client(&emu);
    let trial = campaign_id(&client, "Trial Nurture").await;
    emu.update_faults(&FaultUpdate {
        lock_next: Some(1),
        ..FaultUpdate::default()
    });
    client
        .update_campaign(&trial, &fields(json!({"Description": "locked once"})))
        .await
        .unwrap();
    let patches: Vec<u16> = emu
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.status)
        .collect();
    assert_eq!(patches, vec![400, 204]);

    emu.clear_requests();
    emu.update_faults(&FaultUpdate {
        lock_next: Some(1),
        ..FaultUpdate::default()
    });
    let leads: Vec<RecordWrite> = (0..3)
        .map(|i| RecordWrite {
            sobject: "Lead".into(),
            id: None,
            fields: fields(json!({"LastName": format!("L{i}"), "Company": "C"})),
        })
        .collect();
    let results = client.create_many(&leads).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let calls = requests_to(
        &emu.requests(),
        "POST",
        &format!("{DATA}/composite/sobjects"),
    )
    .len();
    assert_eq!(calls, 2, "the locked records were sent once more");
    assert_eq!(
        client
            .query("SELECT Id FROM Lead WHERE Company = 'C'")
            .await
            .unwrap()
            .len(),
        3,
        "created once each"
    );
}

#[tokio::test]
async fn permanent_errors_are_reported_and_not_retried() {
    let emu = emulator().await;
    let client = client(&emu);
    let trial = campaign_id(&client, "Trial Nurture").await;
    let cases = [
        (json!({"Nope__c": 1}), "INVALID_FIELD", vec!["Nope__c"]),
        (
            json!({"NumberOfLeads": 5}),
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            vec!["NumberOfLeads"],
        ),
        (
            json!({"Name": null}),
            "REQUIRED_FIELD_MISSING",
            vec!["Name"],
        ),
        (
            json!({"ParentId": "not-an-id"}),
            "MALFORMED_ID",
            vec!["ParentId"],
        ),
        (
            json!({"Name": "x".repeat(81)}),
            "STRING_TOO_LONG",
            vec!["Name"],
        ),
    ];
    for (body, code, fields_named) in cases {
        emu.clear_requests();
        let err = client
            .update_campaign(&trial, &fields(body))
            .await
            .unwrap_err();
        let Error::Api {
            status: 400,
            errors,
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!(errors[0].error_code, code);
        assert_eq!(errors[0].fields, fields_named);
        assert!(err.to_string().contains(code), "{err}");
        assert_eq!(emu.requests().len(), 1, "{code} is not retried");
    }
    let err = client
        .create("Campaign", &fields(json!({"Status": "Planned"})))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Salesforce answered 400: REQUIRED_FIELD_MISSING: Required fields are missing: [Name] (fields: Name)"
    );
    let err = client
        .query("SELECT Id FROM Campaign WHERE")
        .await
        .unwrap_err();
    assert_eq!(err.error_code(), Some("MALFORMED_QUERY"));
}

#[tokio::test]
async fn versions_limits_and_usage() {
    let emu = emulator().await;
    let client = client(&emu);
    let versions = client.versions().await.unwrap();
    let spring = versions.iter().find(|v| v["version"] == "66.0").unwrap();
    assert_eq!(spring["label"], "Spring '26");
    assert_eq!(spring["url"], "/services/data/v66.0");
    let limits = client.limits().await.unwrap();
    assert_eq!(limits["DailyApiRequests"]["Max"], 15000);
    let usage = client.api_usage().unwrap();
    assert_eq!(
        (usage.used, usage.allowed),
        (1, 15000),
        "versions is not counted, limits is"
    );
    let log = emu.requests();
    assert_eq!(requests_to(&log, "GET", "/services/data/").len(), 1);
}
