//! `rulesforce watch`, the real binary, against the emulator and its fault injection.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use rulesforce::emulator::{Emulator, EmulatorConfig, FaultUpdate, Faults};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A running `rulesforce watch` on a free port, with its own folder and store.
struct Daemon {
    child: tokio::process::Child,
    /// Everything the daemon logged so far.
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    url: String,
    http: reqwest::Client,
    rules: PathBuf,
    state: PathBuf,
}

impl Daemon {
    async fn start(emu: &Emulator, rules: &Path, state: &Path, extra: &[&str]) -> Daemon {
        let mut child = binary()
            .arg("watch")
            .arg(rules)
            .args(["--listen", "127.0.0.1:0", "--state"])
            .arg(state)
            .args(extra)
            .envs(emulator_env(emu))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the daemon announces its address")
                .unwrap()
                .expect("the daemon is running");
            if let Some(url) = line.strip_prefix("listening on ") {
                break url.to_string();
            }
        };
        // Keep draining both pipes so the daemon never blocks on a full one.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let kept = logs.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        Daemon {
            child,
            logs,
            url,
            http: reqwest::Client::new(),
            rules: rules.to_path_buf(),
            state: state.to_path_buf(),
        }
    }

    async fn post(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/v1/events", self.url))
            .header("content-type", content_type)
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post_ndjson(&self, events: &[Value]) {
        let body: String = events.iter().map(|e| format!("{e}\n")).collect();
        let (status, answer) = self.post("application/x-ndjson", body, None).await;
        assert_eq!(
            (status, answer["accepted"].as_u64()),
            (202, Some(events.len() as u64)),
            "{answer}"
        );
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn actions(&self, status: &str) -> u64 {
        self.get("/healthz").await["actions"][status]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits for `ready` to hold, polling; fails after a generous limit.
    async fn wait_for<F: std::future::Future<Output = bool>>(
        &self,
        what: &str,
        mut ready: impl FnMut() -> F,
    ) {
        let started = Instant::now();
        while !ready().await {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn idle(&self) {
        self.wait_for("the backlog and outbox to drain", || async {
            let health = self.get("/healthz").await;
            health["backlog"] == 0 && health["actions"]["pending"].as_u64().unwrap_or(0) == 0
        })
        .await;
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// A temporary folder with an empty `rules/` inside: the daemon's DIR; its store goes beside it.
fn workdir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules");
    std::fs::create_dir(&rules).unwrap();
    (dir, rules)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn copy_examples(dir: &Path) {
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts");
    for entry in std::fs::read_dir(scripts).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rhai") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
}

fn example_events() -> Vec<Value> {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/activity.jsonl"),
    )
    .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn writes(emu: &Emulator) -> Vec<rulesforce::emulator::LoggedRequest> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method != "GET" && r.route() != "/services/oauth2/token")
        .collect()
}

const ADD_BY_ID: &str = r#"fn on_event(event) { add_to_campaign(find_campaign("Spring Webinar"), event.lead, "Sent"); }"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_events_are_delivered_in_batches() {
    let emu = emulator().await;
    let (dir, rules) = workdir();
    copy_examples(&rules);
    let daemon = Daemon::start(&emu, &rules, &dir.path().join("state.db"), &[]).await;
    daemon.post_ndjson(&example_events()).await;
    daemon
        .wait_for("12 actions sent", || async {
            daemon.actions("sent").await == 12
        })
        .await;

    let trial = &emu.records("Campaign")[0];
    assert_eq!(
        trial["Description"],
        "Last engaged: katherine@example.com used dashboards at 2026-12-03T09:45:00Z"
    );
    let members = emu.records("CampaignMember");
    assert_eq!(
        members
            .iter()
            .filter(|m| m["CampaignId"] == trial["Id"] && m["Status"] == "Responded")
            .count(),
        4
    );
    let calls = writes(&emu);
    assert!(
        calls.len() <= 6,
        "12 actions went out in {} calls, batched: {calls:#?}",
        calls.len()
    );
    assert!(
        calls
            .iter()
            .all(|c| c.route().ends_with("/composite/sobjects")),
        "Collections calls only"
    );

    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("rulesforce_events_accepted_total 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rulesforce_rule_runs_total{rule=\"trial_engaged\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rulesforce_actions{status=\"sent\"} 12"),
        "{metrics}"
    );
    let sent = daemon.get("/v1/actions?status=sent&limit=100").await;
    assert_eq!(sent.as_array().unwrap().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_rules_take_effect_broken_ones_keep_running_deleted_ones_stop() {
    let emu = emulator().await;
    let (dir, rules) = workdir();
    let rule = |version: &str| {
        format!(
            r#"fn on_event(event) {{ update_campaign(find_campaign("Trial Nurture"), #{{ Description: `{version} ${{event.n}}` }}); }}"#
        )
    };
    write(&rules, "describe.rhai", &rule("v1"));
    let daemon = Daemon::start(&emu, &rules, &dir.path().join("state.db"), &[]).await;
    let description = || async {
        emu.records("Campaign")[0]["Description"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let version = |daemon: &Daemon| {
        let daemon_url = daemon.url.clone();
        let http = daemon.http.clone();
        async move {
            let rules: Value = http
                .get(format!("{daemon_url}/v1/rules"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            rules
        }
    };

    daemon.post_ndjson(&[json!({"n": 1})]).await;
    daemon
        .wait_for("v1 1", || async { description().await == "v1 1" })
        .await;

    write(&rules, "describe.rhai", &rule("v2"));
    daemon
        .wait_for("version 2", || async {
            version(&daemon).await[0]["version"] == 2
        })
        .await;
    daemon.post_ndjson(&[json!({"n": 2})]).await;
    daemon
        .wait_for("v2 2", || async { description().await == "v2 2" })
        .await;

    write(
        &rules,
        "describe.rhai",
        "fn on_event(event) {\n    let x = ;\n}\n",
    );
    daemon
        .wait_for("the error shown", || async {
            version(&daemon).await[0]["error"].is_string()
        })
        .await;
    let shown = version(&daemon).await;
    let error = shown[0]["error"].as_str().unwrap();
    assert!(error.contains("describe.rhai:2:13: "), "{error}");
    assert_eq!(
        shown[0]["version"], 2,
        "the previous version is still the one loaded"
    );
    daemon.post_ndjson(&[json!({"n": 3})]).await;
    daemon
        .wait_for("v2 3", || async { description().await == "v2 3" })
        .await;

    write(&rules, "describe.rhai", &rule("v3"));
    daemon
        .wait_for("the error cleared", || async {
            let rules = version(&daemon).await;
            rules[0]["error"].is_null() && rules[0]["version"] == 3
        })
        .await;
    daemon.post_ndjson(&[json!({"n": 4})]).await;
    daemon
        .wait_for("v3 4", || async { description().await == "v3 4" })
        .await;

    std::fs::remove_file(rules.join("describe.rhai")).unwrap();
    daemon
        .wait_for("the rule gone", || async {
            version(&daemon).await.as_array().unwrap().is_empty()
        })
        .await;
    daemon.post_ndjson(&[json!({"n": 5})]).await;
    daemon.idle().await;
    assert_eq!(description().await, "v3 4", "a deleted rule no longer runs");
    assert_eq!(daemon.actions("sent").await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_arrives_once_through_503s_an_expired_session_and_locked_rows() {
    let emu = emulator().await;
    let leads = bulk_leads(&emu, 120).await;
    let (dir, rules) = workdir();
    write(&rules, "add.rhai", ADD_BY_ID);
    let daemon = Daemon::start(&emu, &rules, &dir.path().join("state.db"), &[]).await;
    emu.clear_requests();
    emu.update_faults(&FaultUpdate {
        fail_next: Some(3),
        retry_after: Some(0),
        ..FaultUpdate::default()
    });
    let events: Vec<Value> = leads.iter().map(|id| json!({"lead": id})).collect();
    daemon.post_ndjson(&events[..40]).await;
    daemon
        .wait_for("40 sent", || async { daemon.actions("sent").await == 40 })
        .await;
    emu.update_faults(&FaultUpdate {
        expire_sessions: true,
        ..FaultUpdate::default()
    });
    daemon.post_ndjson(&events[40..80]).await;
    daemon
        .wait_for("80 sent", || async { daemon.actions("sent").await == 80 })
        .await;
    emu.update_faults(&FaultUpdate {
        lock_next: Some(2),
        ..FaultUpdate::default()
    });
    daemon.post_ndjson(&events[80..]).await;
    daemon
        .wait_for("120 sent", || async { daemon.actions("sent").await == 120 })
        .await;

    let log = emu.requests();
    assert!(log.iter().filter(|r| r.status == 503).count() >= 3);
    assert!(
        log.iter().any(|r| r.status == 401),
        "the session expired mid-run"
    );
    assert!(token_requests(&log) >= 1, "logged in again");
    let members = emu.records("CampaignMember");
    for lead in &leads {
        assert_eq!(
            members
                .iter()
                .filter(|m| m["LeadId"] == lead.as_str())
                .count(),
            1,
            "{lead}"
        );
    }
    assert_eq!(daemon.actions("failed").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_delivery_and_restarted_every_action_arrives_and_no_member_twice() {
    let emu = emulator_with(EmulatorConfig {
        faults: Faults {
            latency_ms: 60,
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    })
    .await;
    let leads = bulk_leads(&emu, 5000).await;
    let (dir, rules) = workdir();
    write(&rules, "add.rhai", ADD_BY_ID);
    let state = dir.path().join("state.db");
    let mut daemon = Daemon::start(&emu, &rules, &state, &[]).await;
    let events: Vec<Value> = leads.iter().map(|id| json!({"lead": id})).collect();
    daemon.post_ndjson(&events).await;
    let members = || emu.records("CampaignMember").len();
    daemon
        .wait_for("delivery under way", || async { members() >= 2 + 400 })
        .await;
    daemon.signal("KILL");
    daemon.child.wait().await.unwrap();
    let before_restart = members();
    assert!(
        before_restart < 2 + 5000,
        "killed before the end ({before_restart} members)"
    );

    let restarted = Daemon::start(&emu, &daemon.rules, &daemon.state, &[]).await;
    restarted
        .wait_for("all 5000 sent", || async {
            restarted.actions("sent").await == 5000
        })
        .await;
    let all = emu.records("CampaignMember");
    assert_eq!(all.len(), 2 + 5000, "the 2 seeded members and one per lead");
    let mut seen = std::collections::HashSet::new();
    for member in &all {
        let person = member["LeadId"]
            .as_str()
            .or(member["ContactId"].as_str())
            .unwrap()
            .to_string();
        assert!(
            seen.insert((member["CampaignId"].to_string(), person)),
            "a member twice: {member:?}"
        );
    }
    assert_eq!(restarted.actions("failed").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_big_bodies_and_missing_tokens_are_refused_and_store_nothing() {
    let emu = emulator().await;
    let (dir, rules) = workdir();
    write(&rules, "log.rhai", "fn on_event(event) { log(event); }");
    let daemon = Daemon::start(
        &emu,
        &rules,
        &dir.path().join("state.db"),
        &["--max-body", "1024", "--token", "t0ken"],
    )
    .await;
    let token = Some("t0ken");

    let (status, body) = daemon.post("application/json", "{\"a\": 1", token).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("line 1"), "{body}");
    let (status, body) = daemon
        .post("application/x-ndjson", "{\"a\": 1}\n{\"b\": }\n", token)
        .await;
    assert_eq!((status, body["line"].as_u64()), (400, Some(2)), "{body}");
    let (status, _) = daemon
        .post("application/json", "[{\"a\": 1}, 2]", token)
        .await;
    assert_eq!(status, 400);
    let (status, _) = daemon
        .post(
            "application/json",
            format!("{{\"pad\": \"{}\"}}", "x".repeat(2000)),
            token,
        )
        .await;
    assert_eq!(status, 413);
    let (status, body) = daemon.post("application/json", "{\"a\": 1}", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = daemon
        .post("application/json", "{\"a\": 1}", Some("wrong"))
        .await;
    assert_eq!(status, 401);

    let metrics = daemon.metrics().await;
    assert!(
        metrics.contains("rulesforce_events_accepted_total 0"),
        "{metrics}"
    );
    let conn = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let stored: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 0, "a refused request stores nothing");

    let (status, body) = daemon
        .post("application/json", "[{\"a\": 1}, {\"b\": 2}]", token)
        .await;
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_0_and_a_tailed_file_resumes_where_it_stopped() {
    let emu = emulator().await;
    let (dir, rules) = workdir();
    write(
        &rules,
        "note.rhai",
        r#"fn on_event(event) { update_campaign(find_campaign("Trial Nurture"), #{ Description: event.note }); }"#,
    );
    let feed = dir.path().join("feed.jsonl");
    std::fs::write(&feed, "{\"note\": \"first\"}\n").unwrap();
    let state = dir.path().join("state.db");
    let feed_arg = feed.display().to_string();
    let mut daemon = Daemon::start(&emu, &rules, &state, &["--events-file", &feed_arg]).await;
    daemon
        .wait_for("first", || async {
            emu.records("Campaign")[0]["Description"] == "first"
        })
        .await;

    daemon.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(30), daemon.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // Lines appended while it was down are read on restart; the first is not read again.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&feed)
        .unwrap()
        .write_all_text("{\"note\": \"second\"}\n");
    let restarted = Daemon::start(&emu, &rules, &state, &["--events-file", &feed_arg]).await;
    restarted
        .wait_for("second", || async {
            emu.records("Campaign")[0]["Description"] == "second"
        })
        .await;
    restarted.idle().await;
    assert_eq!(restarted.actions("sent").await, 2, "each line once");
}

trait WriteAllText {
    fn write_all_text(&mut self, text: &str);
}

impl WriteAllText for std::fs::File {
    fn write_all_text(&mut self, text: &str) {
        std::io::Write::write_all(self, text.as_bytes()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_action_shows_its_error_and_can_be_retried() {
    let emu = emulator().await;
    let (dir, rules) = workdir();
    write(
        &rules,
        "vip.rhai",
        r#"fn on_event(event) { add_to_campaign_by_email(find_campaign("Trial Nurture"), event.email, "VIP"); }"#,
    );
    let daemon = Daemon::start(
        &emu,
        &rules,
        &dir.path().join("state.db"),
        &["--log-format", "json"],
    )
    .await;
    daemon
        .post_ndjson(&[json!({"email": "ada@example.com"})])
        .await;
    daemon
        .wait_for("the action dead-lettered", || async {
            daemon.actions("failed").await == 1
        })
        .await;

    let failed = daemon.get("/v1/actions?status=failed").await;
    let action = &failed[0];
    assert_eq!(
        action["errorCode"], "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "{action}"
    );
    assert_eq!(
        action["error_message"],
        "Status: bad value for restricted picklist field: VIP"
    );
    assert_eq!(action["action"]["operation"]["status"], "VIP");
    assert_eq!(action["attempts"], 1, "a permanent error is not retried");
    let logged = daemon.logs.lock().unwrap().clone();
    assert!(
        logged
            .iter()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "JSON logs: {logged:#?}"
    );
    assert!(
        logged.iter().any(|l| l.contains("dead-lettered")),
        "{logged:#?}"
    );

    // The status is created in Salesforce; the retry then succeeds.
    let trial = emu.records("Campaign")[0]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    client(&emu)
        .create(
            "CampaignMemberStatus",
            json!({"CampaignId": trial, "Label": "VIP"})
                .as_object()
                .unwrap(),
        )
        .await
        .unwrap();
    let id = action["id"].as_i64().unwrap();
    let retried = daemon
        .http
        .post(format!("{}/v1/actions/{id}/retry", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 202);
    daemon
        .wait_for("the retried action sent", || async {
            daemon.actions("sent").await == 1
        })
        .await;
    assert!(
        emu.records("CampaignMember")
            .iter()
            .any(|m| m["Status"] == "VIP")
    );
    let again = daemon
        .http
        .post(format!("{}/v1/actions/{id}/retry", daemon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "only failed actions can be retried");

    let addr = daemon.url.trim_start_matches("http://").to_string();
    let status = binary()
        .args(["status", "--listen", &addr])
        .output()
        .await
        .unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(table.contains("actions:    sent 1"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("vip") && l.ends_with("ok")),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_actions_per_minute_holds_the_rest_back() {
    let emu = emulator().await;
    let leads = bulk_leads(&emu, 5).await;
    let (dir, rules) = workdir();
    write(&rules, "add.rhai", ADD_BY_ID);
    let daemon = Daemon::start(
        &emu,
        &rules,
        &dir.path().join("state.db"),
        &["--max-actions-per-minute", "2"],
    )
    .await;
    let events: Vec<Value> = leads.iter().map(|id| json!({"lead": id})).collect();
    daemon.post_ndjson(&events).await;
    daemon
        .wait_for("two sent", || async { daemon.actions("sent").await == 2 })
        .await;
    // The next token comes 30 s after the first two: the other three wait.
    let health = daemon.get("/healthz").await;
    assert_eq!(
        (
            health["actions"]["sent"].as_u64(),
            health["actions"]["pending"].as_u64()
        ),
        (Some(2), Some(3)),
        "{health}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_requests_and_sends_no_write() {
    let emu = emulator().await;
    let (dir, rules) = workdir();
    copy_examples(&rules);
    let daemon = Daemon::start(&emu, &rules, &dir.path().join("state.db"), &["--dry-run"]).await;
    emu.clear_requests();
    daemon.post_ndjson(&example_events()).await;
    daemon
        .wait_for("12 actions planned", || async {
            daemon.actions("dry_run").await == 12
        })
        .await;
    assert!(writes(&emu).is_empty(), "{:#?}", writes(&emu));
    assert_eq!(daemon.actions("sent").await, 0);
}
