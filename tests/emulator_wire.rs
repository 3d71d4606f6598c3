//! The emulator's wire shapes, checked with a plain HTTP client: what any Salesforce
//! client would see.

mod common;

use common::*;
use rulesforce::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

struct Raw {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Raw {
    async fn login(emu: &Emulator) -> Raw {
        let http = reqwest::Client::new();
        let form = [
            ("grant_type", "password"),
            ("client_id", "rulesforce-demo"),
            ("client_secret", "demo-secret"),
            ("username", "demo@example.com"),
            ("password", "demo-passworddemo-token"),
        ];
        let answer: Value = http
            .post(format!("{}/services/oauth2/token", emu.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["token_type"], "Bearer");
        assert!(
            answer["issued_at"].as_str().unwrap().parse::<u64>().is_ok(),
            "issued_at is milliseconds as a string"
        );
        assert_eq!(
            answer["id"],
            format!("{}/id/{}/{}", emu.base_url(), emu.org_id(), emu.user_id())
        );
        let token = answer["access_token"].as_str().unwrap().to_string();
        assert!(token.starts_with("00D") && token.contains("!AR"), "{token}");
        Raw {
            http,
            base: format!("{}{DATA}/", emu.base_url()),
            token,
        }
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }
}

#[tokio::test]
async fn rest_errors_are_arrays_with_error_code_and_every_answer_has_limit_info() {
    let emu = emulator().await;
    let raw = Raw::login(&emu).await;
    let (status, headers, body) = raw
        .send(
            reqwest::Method::POST,
            "sobjects/Campaign/",
            Some(json!({"Bogus": 1})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!([{"message": "No such column 'Bogus' on sobject of type Campaign", "errorCode": "INVALID_FIELD", "fields": ["Bogus"]}])
    );
    assert_eq!(headers["sforce-limit-info"], "api-usage=1/15000");

    let (status, _, body) = raw
        .send(
            reqwest::Method::GET,
            "sobjects/Campaign/701RF0000000zzz",
            None,
        )
        .await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, _, body) = raw
        .send(reqwest::Method::GET, "sobjects/Campaign/abc", None)
        .await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (400, Some("MALFORMED_ID"))
    );

    let unauthenticated = raw
        .http
        .get(format!("{}limits", raw.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let body: Value = unauthenticated.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}])
    );

    let (status, _, _) = raw
        .send(reqwest::Method::GET, "../v12.0/limits", None)
        .await;
    assert_eq!(status, 404, "unknown API versions are not served");
}

#[tokio::test]
async fn ids_are_18_characters_and_15_are_accepted() {
    let emu = emulator().await;
    let raw = Raw::login(&emu).await;
    let (status, _, created) = raw
        .send(
            reqwest::Method::POST,
            "sobjects/Lead",
            Some(json!({"LastName": "X", "Company": "Y"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(created["success"], true);
    assert_eq!(created["errors"], json!([]));
    let id = created["id"].as_str().unwrap();
    assert_eq!(id.len(), 18);
    let parsed = rulesforce::salesforce::SfId::parse(id).unwrap();
    assert_eq!(parsed.as_str(), id, "the checksum is right");
    assert_eq!(parsed.object(), Some("Lead"));
    let (status, _, record) = raw
        .send(
            reqwest::Method::GET,
            &format!("sobjects/Lead/{}", &id[..15]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(record["Id"], id);
    assert_eq!(record["Status"], "Open - Not Contacted");
    assert_eq!(
        record["attributes"],
        json!({"type": "Lead", "url": format!("/services/data/v66.0/sobjects/Lead/{id}")})
    );
}

#[tokio::test]
async fn collections_use_status_code_and_enforce_200_and_all_or_none() {
    let emu = emulator().await;
    let raw = Raw::login(&emu).await;
    let lead =
        |name: &str| json!({"attributes": {"type": "Lead"}, "LastName": name, "Company": "Co"});
    let bad = json!({"attributes": {"type": "Lead"}, "LastName": "NoCompany"});

    let (status, _, body) = raw
        .send(
            reqwest::Method::POST,
            "composite/sobjects",
            Some(json!({"allOrNone": false, "records": [lead("A"), bad.clone()]})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["success"], true);
    assert_eq!(
        body[1],
        json!({"success": false, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [Company]", "fields": ["Company"]}]})
    );

    let (_, _, body) = raw
        .send(
            reqwest::Method::POST,
            "composite/sobjects",
            Some(json!({"allOrNone": true, "records": [lead("B"), bad]})),
        )
        .await;
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(body[1]["errors"][0]["statusCode"], "REQUIRED_FIELD_MISSING");
    let (_, _, found) = raw
        .send(
            reqwest::Method::GET,
            "query?q=SELECT+Id+FROM+Lead+WHERE+LastName+%3D+%27B%27",
            None,
        )
        .await;
    assert_eq!(found["totalSize"], 0, "allOrNone rolled B back");

    let many: Vec<Value> = (0..201).map(|i| lead(&format!("L{i}"))).collect();
    let (status, _, body) = raw
        .send(
            reqwest::Method::POST,
            "composite/sobjects",
            Some(json!({"allOrNone": false, "records": many})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "EXCEEDED_ID_LIMIT");
}

#[tokio::test]
async fn campaign_members_are_unique_and_has_responded_follows_status() {
    let emu = emulator().await;
    let raw = Raw::login(&emu).await;
    let trial = &emu.records("Campaign")[0];
    assert_eq!(trial["Name"], "Trial Nurture");
    let lead = &emu.records("Lead")[0];
    let member = json!({"CampaignId": trial["Id"], "LeadId": lead["Id"], "Status": "Responded"});
    let (status, _, created) = raw
        .send(
            reqwest::Method::POST,
            "sobjects/CampaignMember",
            Some(member.clone()),
        )
        .await;
    assert_eq!(status, 201);
    let (status, _, body) = raw
        .send(
            reqwest::Method::POST,
            "sobjects/CampaignMember",
            Some(member),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!([{"message": "Already a campaign member.", "errorCode": "DUPLICATE_VALUE", "fields": []}])
    );

    let id = created["id"].as_str().unwrap();
    let (_, _, record) = raw
        .send(
            reqwest::Method::GET,
            &format!("sobjects/CampaignMember/{id}"),
            None,
        )
        .await;
    assert_eq!(record["HasResponded"], true);
    raw.send(
        reqwest::Method::PATCH,
        &format!("sobjects/CampaignMember/{id}"),
        Some(json!({"Status": "Sent"})),
    )
    .await;
    let (_, _, record) = raw
        .send(
            reqwest::Method::GET,
            &format!("sobjects/CampaignMember/{id}"),
            None,
        )
        .await;
    assert_eq!(record["HasResponded"], false);
    let (status, _, body) = raw
        .send(
            reqwest::Method::PATCH,
            &format!("sobjects/CampaignMember/{id}"),
            Some(json!({"LeadId": lead["Id"]})),
        )
        .await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (400, Some("INVALID_FIELD_FOR_INSERT_UPDATE"))
    );
}

#[tokio::test]
async fn upsert_answers_201_then_200_then_300_for_several_matches() {
    let emu = emulator().await;
    let raw = Raw::login(&emu).await;
    let (status, _, body) = raw
        .send(
            reqwest::Method::PATCH,
            "sobjects/Account/External_Id__c/X1",
            Some(json!({"Name": "One"})),
        )
        .await;
    assert_eq!((status, &body["created"]), (201, &json!(true)));
    let (status, _, body) = raw
        .send(
            reqwest::Method::PATCH,
            "sobjects/Account/External_Id__c/X1",
            Some(json!({"Name": "Uno"})),
        )
        .await;
    assert_eq!((status, &body["created"]), (200, &json!(false)));
    raw.send(
        reqwest::Method::POST,
        "sobjects/Account",
        Some(json!({"Name": "Twin", "External_Id__c": "X1"})),
    )
    .await;
    let (status, _, body) = raw
        .send(
            reqwest::Method::PATCH,
            "sobjects/Account/External_Id__c/X1",
            Some(json!({"Name": "?"})),
        )
        .await;
    assert_eq!(status, 300);
    assert_eq!(body.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn soql_subset_filters_orders_and_limits() {
    let emu = emulator().await;
    let client = client(&emu);
    let q = |soql: &'static str| {
        let client = client.clone();
        async move { client.query(soql).await.unwrap() }
    };
    let names = |records: Vec<rulesforce::salesforce::Fields>| -> Vec<String> {
        records
            .iter()
            .map(|r| r["Name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names(q("SELECT Name FROM Campaign WHERE IsActive = true ORDER BY Name DESC").await),
        vec!["Trial Nurture", "Churn Risk Outreach"]
    );
    assert_eq!(names(q("SELECT Name FROM Campaign WHERE Status != 'Completed' AND (Type = 'Webinar' OR Name LIKE '%nurture') ORDER BY Name").await), vec!["Spring Webinar", "Trial Nurture"]);
    assert_eq!(names(q("SELECT Name FROM Campaign WHERE Status IN ('Planned', 'Completed') ORDER BY StartDate LIMIT 1").await), vec!["Onboarding 2025"]);
    assert_eq!(
        names(q("SELECT Name FROM Campaign WHERE BudgetedCost >= 1000").await),
        vec!["Spring Webinar"]
    );
    assert_eq!(
        names(
            q("SELECT Name FROM Campaign WHERE EndDate = null ORDER BY Name LIMIT 1 OFFSET 1")
                .await
        ),
        vec!["Trial Nurture"]
    );
    assert_eq!(
        q("SELECT Id FROM Lead WHERE Email NOT IN ('ada@example.com')")
            .await
            .len(),
        5
    );
    assert_eq!(
        q("SELECT Id FROM Lead WHERE NOT Email LIKE 'a%'")
            .await
            .len(),
        4
    );
    let one = q("SELECT Email, FirstName FROM Lead WHERE email = 'ADA@example.com'").await;
    assert_eq!(
        one[0].keys().collect::<Vec<_>>(),
        vec!["attributes", "Email", "FirstName"],
        "selected fields in order"
    );

    let raw = Raw::login(&emu).await;
    let (_, _, count) = raw
        .send(
            reqwest::Method::GET,
            "query?q=SELECT+COUNT()+FROM+Contact",
            None,
        )
        .await;
    assert_eq!(
        (
            count["totalSize"].as_u64(),
            count["records"].as_array().map(Vec::len)
        ),
        (Some(4), Some(0))
    );
}

#[tokio::test]
async fn state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("emulator.db");
    let config = EmulatorConfig {
        state_file: Some(state.clone()),
        ..EmulatorConfig::default()
    };
    let first = emulator_with(config.clone()).await;
    let id = client(&first)
        .create("Campaign", json!({"Name": "Kept"}).as_object().unwrap())
        .await
        .unwrap();
    first.stop();
    let second = emulator_with(config).await;
    let record = client(&second)
        .get_record("Campaign", id.as_str(), None)
        .await
        .unwrap();
    assert_eq!(record["Name"], "Kept");
    assert_eq!(
        second.records("Campaign").len(),
        5,
        "seeded once, not again on restart"
    );
    let next = client(&second)
        .create("Campaign", json!({"Name": "After"}).as_object().unwrap())
        .await
        .unwrap();
    assert_ne!(next, id, "the id sequence continues");
}

#[tokio::test]
async fn control_endpoint_sets_faults_and_shows_the_request_log() {
    let emu = emulator().await;
    let http = reqwest::Client::new();
    let faults: Value = http
        .post(format!("{}/__emulator/faults", emu.base_url()))
        .json(&json!({"fail_next": 1, "retry_after": 0}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults["fail_next"], 1);
    let raw = Raw::login(&emu).await;
    let (status, headers, body) = raw.send(reqwest::Method::GET, "limits", None).await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (503, Some("SERVER_UNAVAILABLE"))
    );
    assert_eq!(headers["retry-after"], "0");
    let log: Value = http
        .get(format!("{}/__emulator/requests", emu.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = log.as_array().unwrap().last().unwrap();
    assert_eq!(
        (
            last["method"].as_str(),
            last["path"].as_str(),
            last["status"].as_u64()
        ),
        (Some("GET"), Some("/services/data/v66.0/limits"), Some(503))
    );

    let bad = http
        .post(format!("{}/__emulator/faults", emu.base_url()))
        .json(&json!({"fial_next": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422, "unknown fault names are refused");
}
