//! `cargo bench --bench daemon`: sustained ingest (NDJSON batches over loopback, each
//! acknowledged only once committed), end-to-end delivery to the emulator, and rule
//! reload latency. Prints figures; asserts nothing about time.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use rulesforce::daemon::{self, DaemonConfig};
use rulesforce::emulator::{Emulator, EmulatorConfig};
use rulesforce::salesforce::Client;
use rulesforce::script::Limits;
use serde_json::Value;

const INGEST_BATCHES: usize = 50;
const BATCH: usize = 1000;
const DELIVERED: usize = 20_000;

async fn start(
    dir: &Path,
    rule: &str,
    client: Client,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::write(rules.join("rule.rhai"), rule).unwrap();
    let config = DaemonConfig {
        dir: rules,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        state: dir.join("state.db"),
        token: None,
        max_body: daemon::DEFAULT_MAX_BODY,
        events_file: None,
        max_actions_per_minute: None,
        usage_threshold: 0.95,
        dry_run: false,
        limits: Limits::default(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        daemon::run(
            config,
            client,
            async {
                let _ = stop_rx.await;
            },
            move |addr| {
                let _ = addr_tx.send(addr);
            },
        )
        .await
        .unwrap();
    });
    (addr_rx.await.unwrap(), stop_tx, task)
}

fn ndjson(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("{{\"type\":\"signup\",\"n\":{i},\"email\":\"user{i}@example.com\"}}\n"))
        .collect()
}

async fn health(http: &reqwest::Client, addr: SocketAddr) -> Value {
    http.get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let emulator = Emulator::start(
        EmulatorConfig::default(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .await
    .unwrap();
    let client = Client::from_settings(&emulator.settings()).unwrap();
    let http = reqwest::Client::new();

    // Ingest: a rule that does nothing, so the figure is the HTTP + commit path.
    let dir = tempfile::tempdir().unwrap();
    let (addr, stop, task) = start(dir.path(), "fn on_event(event) { }", client.clone()).await;
    let started = Instant::now();
    for batch in 0..INGEST_BATCHES {
        let response = http
            .post(format!("http://{addr}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(ndjson(batch * BATCH, BATCH))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    let elapsed = started.elapsed();
    let events = INGEST_BATCHES * BATCH;
    println!(
        "ingest: {events} events in {INGEST_BATCHES} NDJSON posts of {BATCH}: {:.2} s, {:.0} events/s stored",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );

    // Reload latency: file written -> new version visible in /v1/rules.
    let mut latencies = Vec::new();
    for round in 0..10 {
        std::fs::write(
            dir.path().join("rules/rule.rhai"),
            format!("fn on_event(event) {{ let round = {round}; }}"),
        )
        .unwrap();
        let written = Instant::now();
        loop {
            let rules: Value = http
                .get(format!("http://{addr}/v1/rules"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if rules[0]["version"] == round + 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(written.elapsed());
    }
    latencies.sort();
    println!(
        "reload: file written -> new version loaded, median {} ms, max {} ms (debounce {} ms included)",
        latencies[latencies.len() / 2].as_millis(),
        latencies.last().unwrap().as_millis(),
        daemon::rules::DEBOUNCE.as_millis()
    );
    let _ = stop.send(());
    task.await.unwrap();

    // End to end: each event creates a Lead through Collections calls.
    let dir = tempfile::tempdir().unwrap();
    let rule = r#"fn on_event(event) { create_record("Lead", #{ LastName: `User ${event.n}`, Company: "Bench", Email: event.email }); }"#;
    let (addr, stop, task) = start(dir.path(), rule, client.clone()).await;
    let started = Instant::now();
    for batch in 0..DELIVERED / BATCH {
        http.post(format!("http://{addr}/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(ndjson(batch * BATCH, BATCH))
            .send()
            .await
            .unwrap();
    }
    loop {
        let sent = health(&http, addr).await["actions"]["sent"]
            .as_u64()
            .unwrap_or(0);
        if sent as usize >= DELIVERED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let calls = emulator
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.route().ends_with("/composite/sobjects"))
        .count();
    println!(
        "end to end: {DELIVERED} events -> {DELIVERED} Leads created in the emulator: {:.2} s, {:.0} actions/s, {calls} Collections calls",
        elapsed.as_secs_f64(),
        DELIVERED as f64 / elapsed.as_secs_f64()
    );
    let _ = stop.send(());
    task.await.unwrap();
}
