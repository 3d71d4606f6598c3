//! `cargo bench`: events per second through `run --dry-run` for 100k events and a simple
//! rule, and the cost of one `on_event` call next to the same condition as a Rust closure.
//! Prints figures; asserts nothing about time.

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rulesforce::commands::connection::ConnectionArgs;
use rulesforce::commands::run::{RunArgs, run};
use rulesforce::counters::MemoryCounters;
use rulesforce::rules::RuleSet;
use rulesforce::script::{Host, Limits};
use serde_json::{Value, json};

const EVENTS: usize = 100_000;
const RULE: &str = r#"fn on_event(event) {
    if event.type != "feature_used" || event.plan != "trial" { return; }
    if !once(`engaged:${event.email}`, "7d") { return; }
    add_to_campaign_by_email(find_campaign("Trial Nurture"), event.email, "Responded");
}"#;
const CONDITION_ONLY: &str = r#"fn on_event(event) {
    if event.type != "feature_used" || event.plan != "trial" { return; }
}"#;

fn event(i: usize) -> Value {
    let people = [
        "ada@example.com",
        "grace@example.com",
        "alan@example.com",
        "katherine@example.com",
    ];
    json!({"type": if i.is_multiple_of(3) { "feature_used" } else { "page_view" }, "plan": if i.is_multiple_of(2) { "trial" } else { "pro" },
           "email": people[i % people.len()], "feature": "dashboards", "ts": "2026-12-01T09:00:00Z"})
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rule = dir.path().join("engaged.rhai");
    std::fs::write(&rule, RULE).unwrap();
    let events = dir.path().join("events.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&events).unwrap());
    for i in 0..EVENTS {
        writeln!(file, "{}", event(i)).unwrap();
    }
    file.flush().unwrap();
    drop(file);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let args = RunArgs {
        paths: vec![rule.clone()],
        events: events.clone(),
        dry_run: true,
        json: true,
        emulator: true,
        timeout_ms: 2000,
    };
    let started = Instant::now();
    let code = runtime
        .block_on(run(
            args,
            &ConnectionArgs::default(),
            &mut std::io::sink(),
            Box::new(std::io::sink()),
        ))
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(code, 0);
    println!(
        "run --dry-run, {EVENTS} events, 1 rule: {:.2} s, {:.0} events/s",
        elapsed.as_secs_f64(),
        EVENTS as f64 / elapsed.as_secs_f64()
    );

    // One on_event call against the same condition written in Rust.
    let condition = dir.path().join("condition.rhai");
    std::fs::write(&condition, CONDITION_ONLY).unwrap();
    let rules = RuleSet::load(&[PathBuf::from(&condition)], &Limits::default()).unwrap();
    let host = Host::new(
        None,
        runtime.handle().clone(),
        Arc::new(MemoryCounters::default()),
    );
    let samples: Vec<Value> = (0..1000).map(event).collect();
    let dynamics: Vec<rhai::Dynamic> = samples
        .iter()
        .map(|e| rhai::serde::to_dynamic(e).unwrap())
        .collect();
    let calls = 200_000;
    let started = Instant::now();
    for i in 0..calls {
        black_box(rules.evaluate(&host, &dynamics[i % dynamics.len()], "bench"));
    }
    let per_call = started.elapsed().as_nanos() as f64 / calls as f64;
    let closure = |e: &Value| e["type"] != "feature_used" || e["plan"] != "trial";
    let started = Instant::now();
    let rounds = 10_000_000;
    for i in 0..rounds {
        black_box(closure(black_box(&samples[i % samples.len()])));
    }
    let per_closure = started.elapsed().as_nanos() as f64 / rounds as f64;
    println!(
        "on_event call (condition only): {per_call:.0} ns; same condition as a Rust closure: {per_closure:.1} ns"
    );
}
