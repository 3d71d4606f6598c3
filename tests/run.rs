//! `rulesforce run` and `rulesforce check`, the real binary against the emulator, with
//! assertions on what Salesforce would have received.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use rulesforce::emulator::{EmulatorConfig, FaultUpdate, Faults, LoggedRequest};
use rulesforce::salesforce::SfId;
use serde_json::{Value, json};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run_binary(emu: &rulesforce::emulator::Emulator, dir: &Path, args: &[&str]) -> Output {
    let output = binary()
        .args(args)
        .envs(emulator_env(emu))
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `rulesforce run scripts/ --events scripts/activity.jsonl EXTRA...`, from a fresh folder.
async fn run_examples(emu: &rulesforce::emulator::Emulator, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (scripts, events) = (repo("scripts"), repo("scripts/activity.jsonl"));
    let mut args = vec!["run", scripts.as_str(), "--events", events.as_str()];
    args.extend_from_slice(extra);
    run_binary(emu, dir.path(), &args).await
}

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn writes(log: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    log.iter()
        .filter(|r| r.method != "GET" && r.route() != "/services/oauth2/token")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_rules_send_these_requests() {
    let emu = emulator().await;
    let out = run_examples(&emu, &[]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("10 events, 0 skipped"),
        "{}",
        out.stdout
    );

    let trial = &emu.records("Campaign")[0];
    let lead = |email: &str| {
        emu.records("Lead")
            .into_iter()
            .find(|l| l["Email"] == email)
            .unwrap()["Id"]
            .clone()
    };
    let log = emu.requests();
    let sent = writes(&log);
    assert_eq!(sent.len(), 3, "one call per operation and type: {sent:#?}");

    assert_eq!(sent[0].method, "PATCH");
    assert_eq!(
        sent[0].body,
        json!({"allOrNone": false, "records": [{"attributes": {"type": "Campaign"}, "id": trial["Id"],
            "Description": "Last engaged: katherine@example.com used dashboards at 2026-12-03T09:45:00Z"}]}),
        "six updates of one campaign coalesce into one record"
    );
    assert_eq!(sent[1].method, "POST");
    let members: Vec<&Value> = sent[1].body["records"].as_array().unwrap().iter().collect();
    let expected: Vec<Value> = ["ada@example.com", "grace@example.com", "alan@example.com", "katherine@example.com"]
        .iter()
        .map(|email| json!({"attributes": {"type": "CampaignMember"}, "CampaignId": trial["Id"], "LeadId": lead(email), "Status": "Responded"}))
        .collect();
    assert_eq!(
        members,
        expected.iter().collect::<Vec<_>>(),
        "once() kept ada to one add; Alan's email was lower-cased"
    );

    assert_eq!(sent[2].method, "PATCH");
    let statuses: Vec<&str> = sent[2].body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["At Risk", "Contacted"]);
    let churn_members = emu.records("CampaignMember");
    assert!(churn_members.iter().any(|m| m["Status"] == "At Risk"));

    // The email lookup was one IN query per object type, not one per event.
    let lookups = log
        .iter()
        .filter(|r| r.path.contains("Email+IN") || r.path.contains("Email%20IN"))
        .count();
    assert_eq!(
        lookups,
        2,
        "{:#?}",
        log.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_meets_duplicate_value_and_sets_the_status() {
    let emu = emulator().await;
    assert_eq!(run_examples(&emu, &[]).await.code, 0);
    emu.clear_requests();
    let out = run_examples(&emu, &[]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let log = emu.requests();
    let creates = requests_to(&log, "POST", &format!("{DATA}/composite/sobjects"));
    let results = creates[0].status;
    assert_eq!(results, 200);
    let updates = requests_to(&log, "PATCH", &format!("{DATA}/composite/sobjects"));
    assert!(
        updates.iter().any(|u| u.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["attributes"]["type"] == "CampaignMember" && r["Status"] == "Responded")),
        "the four existing members got their Status set: {updates:#?}"
    );
    let responded = emu
        .records("CampaignMember")
        .into_iter()
        .filter(|m| m["Status"] == "Responded")
        .count();
    assert_eq!(responded, 4, "no second membership was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_hundred_fifty_member_adds_are_three_collections_calls() {
    let emu = emulator().await;
    let leads = bulk_leads(&emu, 450).await;
    let dir = tempfile::tempdir().unwrap();
    let rule = write(
        dir.path(),
        "add.rhai",
        r#"fn on_event(event) { add_to_campaign(find_campaign("Spring Webinar"), event.lead, "Sent"); }"#,
    );
    let events: String = leads
        .iter()
        .map(|id| format!("{{\"lead\": \"{id}\"}}\n"))
        .collect();
    let events = write(dir.path(), "events.jsonl", &events);
    emu.clear_requests();
    let out = run_binary(
        &emu,
        dir.path(),
        &["run", &rule, "--events", &events, "--json"],
    )
    .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["rules"][0]["succeeded"], 450);
    let log = emu.requests();
    let calls = requests_to(&log, "POST", &format!("{DATA}/composite/sobjects"));
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c.body["records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![200, 200, 50]);
    let campaign_queries = log
        .iter()
        .filter(|r| r.path.contains("FROM+Campaign") || r.path.contains("FROM%20Campaign"))
        .count();
    assert_eq!(campaign_queries, 1, "find_campaign is cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templated_fields_keep_quotes_and_newlines_intact() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let rule = write(
        dir.path(),
        "describe.rhai",
        r#"fn on_event(event) {
    update_campaign(find_campaign("Trial Nurture"), #{ Description: render("Note: {{ note }} <{{ who.email }}>", event) });
}"#,
    );
    let events = write(
        dir.path(),
        "events.jsonl",
        "{\"note\": \"say \\\"hi\\\"\\nthen & <go>\", \"who\": {\"email\": \"a@b.c\"}}\n",
    );
    let out = run_binary(&emu, dir.path(), &["run", &rule, "--events", &events]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let log = emu.requests();
    let patch = writes(&log)[0];
    assert_eq!(
        patch.body["records"][0]["Description"],
        "Note: say \"hi\"\nthen & <go> <a@b.c>"
    );
    assert_eq!(
        emu.records("Campaign")[0]["Description"],
        "Note: say \"hi\"\nthen & <go> <a@b.c>"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_is_retried_and_a_401_mid_run_logs_in_once_more() {
    let emu = emulator_with(EmulatorConfig {
        faults: Faults {
            fail_next: 2,
            retry_after: Some(0),
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    // Expire the session after the reads of the evaluation, before the writes.
    emu.update_faults(&FaultUpdate {
        expire_after: Some(6),
        ..FaultUpdate::default()
    });
    let out = run_examples(&emu, &[]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let log = emu.requests();
    assert_eq!(log.iter().filter(|r| r.status == 503).count(), 2);
    let trace: Vec<_> = log
        .iter()
        .map(|r| (r.method.as_str(), r.route(), r.status))
        .collect();
    assert_eq!(
        log.iter().filter(|r| r.status == 401).count(),
        1,
        "{trace:#?}"
    );
    assert_eq!(token_requests(&log), 2, "one login, one re-login");
    assert_eq!(
        writes(&log).iter().filter(|r| r.status == 200).count(),
        3,
        "every write still went through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_the_requests_and_sends_no_write() {
    let emu = emulator().await;
    let out = run_examples(&emu, &["--dry-run"]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("dry run: 3 write requests held back, not sent"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("POST /services/data/v66.0/composite/sobjects"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"Status\": \"Responded\""),
        "{}",
        out.stdout
    );
    let log = emu.requests();
    assert!(writes(&log).is_empty(), "{:#?}", writes(&log));
    assert!(log.iter().any(|r| r.method == "GET"), "reads still happen");
    for secret in ["demo-password", "demo-secret", "demo-token", "!AR"] {
        assert!(
            !out.stdout.contains(secret) && !out.stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_syntax_errors_as_file_line_col_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "good.rhai",
        "fn on_event(event) { log(event); }",
    );
    let bad = write(
        dir.path(),
        "bad.rhai",
        "fn on_event(event) {\n    let x = ;\n}\n",
    );
    let output = binary()
        .args(["check", &dir.path().display().to_string()])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains(&format!("{bad}:2:13: ")), "{stderr}");
    assert!(stderr.contains("    let x = ;\n  "), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.trim() == "^"),
        "a caret under the column: {stderr}"
    );

    let output = binary()
        .args(["check", &repo("scripts")])
        .output()
        .await
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "ok: 3 rules compiled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_rule_is_stopped_and_the_others_go_on() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "spin.rhai",
        "fn on_event(event) { if event.spin { loop { } } }",
    );
    write(
        dir.path(),
        "note.rhai",
        r#"fn on_event(event) { update_campaign(find_campaign("Trial Nurture"), #{ Description: "seen" }); }"#,
    );
    let events = write(
        dir.path(),
        "events.jsonl",
        "{\"spin\": true}\n{\"spin\": false}\n",
    );
    let started = std::time::Instant::now();
    let out = run_binary(
        &emu,
        dir.path(),
        &[
            "run",
            &dir.path().display().to_string(),
            "--events",
            &events,
            "--timeout-ms",
            "200",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("rule 'spin' ran past its time budget of 200 ms and was stopped"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("spin.rhai: rule"), "{}", out.stderr);
    assert!(out.stderr.contains("events.jsonl:1"), "{}", out.stderr);
    assert_eq!(
        emu.records("Campaign")[0]["Description"],
        "seen",
        "the other rule's actions were delivered"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_outside_the_allowed_folders_are_refused() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    write(dir.path(), "secret.rhai", "fn token() { \"s3cret\" }");
    let rule = write(
        &dir.path().join("rules"),
        "sneaky.rhai",
        "import \"../secret\" as secret;\nfn on_event(event) { log(secret::token()); }",
    );
    let events = write(dir.path(), "events.jsonl", "{}\n");
    let out = run_binary(&emu, dir.path(), &["run", &rule, "--events", &events]).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains(&format!("{rule}:1:")), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("paths with '..' or a leading '/' are refused"),
        "{}",
        out.stderr
    );

    // The rule's own folder and the stdlib do resolve.
    write(
        &dir.path().join("rules"),
        "helpers.rhai",
        "fn greet(x) { `hi ${x}` }",
    );
    let ok = write(
        &dir.path().join("rules"),
        "fine.rhai",
        "import \"helpers\" as h;\nimport \"campaign\" as c;\nfn on_event(event) { log(h::greet(c::SENT)); }",
    );
    let out = run_binary(&emu, dir.path(), &["run", &ok, "--events", &events]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_line_is_skipped_with_its_number() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let rule = write(
        dir.path(),
        "count.rhai",
        r#"fn on_event(event) { update_campaign(find_campaign("Trial Nurture"), #{ Description: event.n.to_string() }); }"#,
    );
    let events = write(
        dir.path(),
        "events.jsonl",
        "{\"n\": 1}\n{\"n\": 2\n[1, 2]\n\n{\"n\": 3}\n",
    );
    let out = run_binary(&emu, dir.path(), &["run", &rule, "--events", &events]).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("events.jsonl:2: skipped: not JSON"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("events.jsonl:3: skipped: an event must be a JSON object, not an array"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("2 events, 2 skipped"), "{}", out.stdout);
    assert_eq!(emu.records("Campaign")[0]["Description"], "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_use_is_a_script_error_with_a_position() {
    let emu = emulator().await;
    let lead = emu.records("Lead")[0]["Id"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (format!("fn on_event(event) {{\n  add_to_campaign(\"{lead}\", \"{lead}\", \"Sent\");\n}}"), "is a Lead id, but the campaign must be Campaign (701...)"),
        ("fn on_event(event) {\n  update_campaign(find_campaign(\"Trial Nurture\"), \"Status\");\n}".to_string(), "fields must be a map"),
        ("fn on_event(event) {\n  update_campaign(\"not-an-id\", #{});\n}".to_string(), "is not a Salesforce id"),
        ("fn on_event(event) {\n  update_campaign(find_campaign(\"Trial Nurture\"));\n}".to_string(), "Function not found: update_campaign"),
    ];
    let events = write(dir.path(), "events.jsonl", "{}\n");
    for (i, (rule, message)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("wrong{i}.rhai"), rule);
        let out = run_binary(&emu, dir.path(), &["run", &path, "--events", &events]).await;
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("{path}:2:3: ")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(message), "{message} in {}", out.stderr);
    }
    assert!(writes(&emu.requests()).is_empty());
    let _ = SfId::parse(&lead).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_actions_show_salesforce_errors_and_exit_1() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let rule = write(
        dir.path(),
        "bad_field.rhai",
        r#"fn on_event(event) { update_campaign(find_campaign("Trial Nurture"), #{ NumberOfLeads: 3 }); }"#,
    );
    let events = write(dir.path(), "events.jsonl", "{}\n");
    let out = run_binary(&emu, dir.path(), &["run", &rule, "--events", &events]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("bad_field: 1 x INVALID_FIELD_FOR_INSERT_UPDATE: Unable to create/update fields: NumberOfLeads"), "{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_and_log_go_to_the_log_tagged_with_the_rule_not_to_stdout() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let rule = write(
        dir.path(),
        "chatty.rhai",
        "const NAME = \"chatty\";\nfn on_event(event) { print(`printed ${event.n}`); log(\"logged\"); }",
    );
    let events = write(dir.path(), "events.jsonl", "{\"n\": 7}\n");
    let output = binary()
        .args(["run", &rule, "--events", &events])
        .envs(emulator_env(&emu))
        .env("RUST_LOG", "info")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stdout.contains("printed"), "{stdout}");
    let line = stderr
        .lines()
        .find(|l| l.contains("printed 7"))
        .expect("print is logged");
    assert!(line.contains("rule") && line.contains("chatty"), "{line}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("logged") && l.contains("chatty")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rules_cannot_share_a_name() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "a.rhai",
        "const NAME = \"same\";\nfn on_event(event) { }",
    );
    let b = write(
        dir.path(),
        "b.rhai",
        "const NAME = \"same\";\nfn on_event(event) { }",
    );
    let events = write(dir.path(), "events.jsonl", "{}\n");
    let out = run_binary(
        &emu,
        dir.path(),
        &[
            "run",
            &dir.path().display().to_string(),
            "--events",
            &events,
        ],
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains(&format!("{b}: the rule name 'same' is taken by")),
        "{}",
        out.stderr
    );
}
