//! `rulesforce run`: every event through every rule, then the actions delivered in
//! batches, then a summary per rule.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::connection::{Connection, ConnectionArgs};
use crate::actions::Action;
use crate::counters::MemoryCounters;
use crate::dispatch;
use crate::rules::RuleSet;
use crate::salesforce::ApiRequest;
use crate::script::{Host, Limits};

/// Actions handed to the dispatcher at a time.
const DELIVERY_BATCH: usize = 2000;
/// Files bigger than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 256 * 1024;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Rule files or folders of them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Events as JSON lines; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub events: PathBuf,
    /// Print the HTTP requests that would be sent; send no write (reads still happen).
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run against an in-process emulator with its demo data.
    #[arg(long)]
    pub emulator: bool,
    /// Wall-clock budget for one rule on one event, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    pub timeout_ms: u64,
}

#[derive(Debug, Default, Serialize)]
struct RuleSummary {
    rule: String,
    events: u64,
    script_errors: u64,
    planned: u64,
    sent: u64,
    succeeded: u64,
    failed: u64,
    failures: Vec<Failure>,
}

#[derive(Debug, Serialize)]
struct Failure {
    #[serde(rename = "errorCode")]
    error_code: String,
    message: String,
    count: u64,
}

/// What evaluating the events produced.
struct Evaluated {
    actions: Vec<Action>,
    summaries: Vec<RuleSummary>,
    skipped_lines: Vec<String>,
    script_errors: Vec<String>,
    events: u64,
}

fn open_events(path: &PathBuf) -> anyhow::Result<(Box<dyn BufRead + Send>, Option<u64>)> {
    if path.as_os_str() == "-" {
        return Ok((Box::new(std::io::BufReader::new(std::io::stdin())), None));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read events {}: {e}", path.display()))?;
    let size = file.metadata().ok().map(|m| m.len());
    Ok((Box::new(std::io::BufReader::new(file)), size))
}

fn evaluate(
    rules: &RuleSet,
    host: &Arc<Host>,
    path: &PathBuf,
    err: &Mutex<Box<dyn Write + Send>>,
) -> anyhow::Result<Evaluated> {
    let (reader, size) = open_events(path)?;
    let progress = match size {
        Some(size) if size >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(size);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            Some(bar)
        }
        _ => None,
    };
    let mut summaries: Vec<RuleSummary> = rules
        .rules
        .iter()
        .map(|r| RuleSummary {
            rule: r.name.clone(),
            ..RuleSummary::default()
        })
        .collect();
    let mut evaluated = Evaluated {
        actions: Vec::new(),
        summaries: Vec::new(),
        skipped_lines: Vec::new(),
        script_errors: Vec::new(),
        events: 0,
    };
    let name = path.display().to_string();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| anyhow::anyhow!("reading {name}: {e}"))?;
        if let Some(bar) = &progress {
            bar.inc(line.len() as u64 + 1);
        }
        if line.trim().is_empty() {
            continue;
        }
        let event = match serde_json::from_str::<Value>(&line) {
            Ok(event @ Value::Object(_)) => event,
            Ok(other) => {
                evaluated.skipped_lines.push(format!(
                    "{name}:{number}: skipped: an event must be a JSON object, not {}",
                    kind(&other)
                ));
                continue;
            }
            Err(e) => {
                evaluated
                    .skipped_lines
                    .push(format!("{name}:{number}: skipped: not JSON: {e}"));
                continue;
            }
        };
        let event =
            rhai::serde::to_dynamic(&event).map_err(|e| anyhow::anyhow!("{name}:{number}: {e}"))?;
        evaluated.events += 1;
        for (summary, evaluation) in
            summaries
                .iter_mut()
                .zip(rules.evaluate(host, &event, &format!("L{number}")))
        {
            summary.events += 1;
            match evaluation.result {
                Ok(actions) => {
                    summary.planned += actions.len() as u64;
                    evaluated.actions.extend(actions);
                }
                Err(error) => {
                    summary.script_errors += 1;
                    evaluated
                        .script_errors
                        .push(format!("{error}\n  (event at {name}:{number})"));
                }
            }
        }
    }
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    let mut err = err.lock().unwrap_or_else(|e| e.into_inner());
    for line in evaluated
        .skipped_lines
        .iter()
        .chain(&evaluated.script_errors)
    {
        writeln!(err, "{line}")?;
    }
    evaluated.summaries = summaries;
    Ok(evaluated)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        _ => "null",
    }
}

/// Runs the command; returns the exit code: 0 all succeeded, 1 an action failed,
/// 2 a script or input error.
pub async fn run(
    args: RunArgs,
    connection: &ConnectionArgs,
    out: &mut impl Write,
    err: Box<dyn Write + Send>,
) -> anyhow::Result<u8> {
    let limits = Limits {
        time_budget: Duration::from_millis(args.timeout_ms),
        ..Limits::default()
    };
    let err = Mutex::new(err);
    let rules = match RuleSet::load(&args.paths, &limits) {
        Ok(rules) => rules,
        Err(errors) => {
            let mut err = err.lock().unwrap_or_else(|e| e.into_inner());
            for error in errors {
                writeln!(err, "{error}")?;
            }
            return Ok(2);
        }
    };
    let Connection {
        client,
        emulator: _emulator,
        ..
    } = Connection::open(connection, args.emulator).await?;
    let held = Arc::new(Mutex::new(Vec::<ApiRequest>::new()));
    let client = if args.dry_run {
        client.dry_run(held.clone())
    } else {
        client
    };

    let host = Host::new(
        Some(client.clone()),
        tokio::runtime::Handle::current(),
        Arc::new(MemoryCounters::default()),
    );
    let events = args.events.clone();
    // Rule code blocks on its reads, so it runs off the async threads.
    let (rules, evaluated) = tokio::task::spawn_blocking(move || {
        let evaluated = evaluate(&rules, &host, &events, &err);
        (rules, evaluated)
    })
    .await?;
    drop(rules);
    let mut evaluated = evaluated?;

    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, summary) in evaluated.summaries.iter().enumerate() {
        index.insert(summary.rule.clone(), i);
    }
    let mut failures: Vec<BTreeMap<(String, String), u64>> =
        vec![BTreeMap::new(); evaluated.summaries.len()];
    for batch in evaluated.actions.chunks(DELIVERY_BATCH) {
        let outcomes = dispatch::deliver(&client, batch).await;
        for (action, outcome) in batch.iter().zip(outcomes) {
            let slot = index[&action.rule];
            let summary = &mut evaluated.summaries[slot];
            if !args.dry_run {
                summary.sent += 1;
            }
            match outcome {
                Ok(_) => summary.succeeded += 1,
                Err(error) => {
                    summary.failed += 1;
                    *failures[slot]
                        .entry((error.error_code, error.message))
                        .or_default() += 1;
                }
            }
        }
    }
    for (summary, failures) in evaluated.summaries.iter_mut().zip(failures) {
        summary.failures = failures
            .into_iter()
            .map(|((error_code, message), count)| Failure {
                error_code,
                message,
                count,
            })
            .collect();
    }

    let requests = held.lock().unwrap_or_else(|e| e.into_inner()).clone();
    report(out, &args, &client.data_path(), &evaluated, &requests)?;
    let failed = evaluated.summaries.iter().any(|s| s.failed > 0);
    Ok(
        if !evaluated.script_errors.is_empty() || !evaluated.skipped_lines.is_empty() {
            2
        } else if failed {
            1
        } else {
            0
        },
    )
}

fn report(
    out: &mut impl Write,
    args: &RunArgs,
    data_path: &str,
    evaluated: &Evaluated,
    requests: &[ApiRequest],
) -> anyhow::Result<()> {
    if args.json {
        let requests: Vec<Value> = requests
            .iter()
            .map(|r| json!({"method": r.method.as_str(), "path": r.absolute_path(data_path), "body": r.body}))
            .collect();
        let summary = json!({
            "dry_run": args.dry_run,
            "events": evaluated.events,
            "skipped_lines": evaluated.skipped_lines,
            "rules": evaluated.summaries,
            "requests": if args.dry_run { Value::Array(requests) } else { Value::Null },
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        return Ok(());
    }
    if args.dry_run {
        writeln!(
            out,
            "dry run: {} write request{} held back, not sent\n",
            requests.len(),
            if requests.len() == 1 { "" } else { "s" }
        )?;
        for request in requests {
            writeln!(out, "{}\n", request.display(data_path))?;
        }
    }
    let width = evaluated
        .summaries
        .iter()
        .map(|s| s.rule.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{} events, {} skipped",
        evaluated.events,
        evaluated.skipped_lines.len()
    )?;
    writeln!(
        out,
        "{:width$}  {:>7}  {:>7}  {:>6}  {:>9}  {:>6}  {:>6}",
        "rule", "events", "planned", "sent", "succeeded", "failed", "errors"
    )?;
    for s in &evaluated.summaries {
        writeln!(
            out,
            "{:width$}  {:>7}  {:>7}  {:>6}  {:>9}  {:>6}  {:>6}",
            s.rule, s.events, s.planned, s.sent, s.succeeded, s.failed, s.script_errors
        )?;
    }
    for s in evaluated
        .summaries
        .iter()
        .filter(|s| !s.failures.is_empty())
    {
        for f in &s.failures {
            writeln!(
                out,
                "  {}: {} x {}: {}",
                s.rule, f.count, f.error_code, f.message
            )?;
        }
    }
    Ok(())
}
