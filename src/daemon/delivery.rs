//! Delivery: pending actions from the outbox, in order, batched into sObject Collections
//! calls; outcomes recorded; transient failures retried with backoff, permanent ones
//! dead-lettered with Salesforce's error. An action confirmed sent is never picked again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::Shared;
use crate::actions::Action;
use crate::dispatch::{self, is_transient};
use crate::salesforce::{ApiRequest, Client};
use crate::store::{self, Decision, now_millis};

/// Actions handed to the dispatcher at once.
const BATCH: usize = 1000;
/// How long a partial batch waits for more actions before it goes.
const LINGER: Duration = Duration::from_millis(200);
/// Attempts before a transient failure is dead-lettered.
const MAX_ATTEMPTS: i64 = 10;
/// How long to hold off after Salesforce says the daily request limit is reached, and
/// between batches once usage is past the threshold.
const LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// `--max-actions-per-minute`: a token bucket refilled continuously.
struct RateLimit {
    per_minute: Option<f64>,
    tokens: f64,
    at: Instant,
}

impl RateLimit {
    fn new(per_minute: Option<u32>) -> RateLimit {
        let per_minute = per_minute.map(f64::from);
        RateLimit {
            per_minute,
            tokens: per_minute.unwrap_or(0.0),
            at: Instant::now(),
        }
    }

    fn available(&mut self) -> usize {
        let Some(rate) = self.per_minute else {
            return BATCH;
        };
        self.tokens = (self.tokens + self.at.elapsed().as_secs_f64() * rate / 60.0).min(rate);
        self.at = Instant::now();
        (self.tokens.floor() as usize).min(BATCH)
    }

    fn take(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
}

fn backoff(attempts: i64) -> i64 {
    let step = 1000i64
        .saturating_mul(1 << attempts.clamp(0, 8))
        .min(300_000);
    step / 2 + fastrand::i64(0..=step / 2)
}

fn decide(attempts: i64, outcome: dispatch::Outcome, dry_run: bool) -> Decision {
    match outcome {
        Ok(_) if dry_run => Decision::Planned,
        Ok(record_id) => Decision::Sent { record_id },
        Err(error) if is_transient(&error) && attempts + 1 < MAX_ATTEMPTS => Decision::Retry {
            at: now_millis() + backoff(attempts),
            code: error.error_code,
            message: error.message,
        },
        Err(error) => Decision::Failed {
            code: error.error_code,
            message: error.message,
        },
    }
}

pub async fn run(
    shared: Arc<Shared>,
    client: Client,
    held: Option<Arc<Mutex<Vec<ApiRequest>>>>,
) -> anyhow::Result<()> {
    let mut conn = shared.store.connect()?;
    let mut rate = RateLimit::new(shared.config.max_actions_per_minute);
    let mut stopping = shared.stop_signal();
    let mut lingered = false;
    while !shared.stopping() {
        let allowance = rate.available();
        if allowance == 0 {
            shared
                .pause(Duration::from_millis(250), &mut stopping)
                .await;
            continue;
        }
        let due = store::due_actions(&conn, allowance)?;
        if !due.is_empty() && due.len() < allowance && !lingered {
            // Events arrive one by one; a moment's wait lets their actions share calls.
            lingered = true;
            shared.pause(LINGER, &mut stopping).await;
            continue;
        }
        lingered = false;
        if due.is_empty() {
            tokio::select! {
                _ = shared.actions_ready.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stopping.changed() => {}
            }
            continue;
        }
        // The batch in flight is finished even when a stop is asked for meanwhile.
        let actions: Vec<Action> = due.iter().map(|d| d.action.clone()).collect();
        let started = Instant::now();
        let outcomes = dispatch::deliver(&client, &actions).await;
        let limited = outcomes
            .iter()
            .any(|o| matches!(o, Err(e) if e.error_code == "REQUEST_LIMIT_EXCEEDED"));
        let decisions: Vec<(i64, Decision)> = due
            .iter()
            .zip(outcomes)
            .map(|(d, outcome)| (d.id, decide(d.attempts, outcome, held.is_some())))
            .collect();
        for (id, decision) in &decisions {
            match decision {
                Decision::Failed { code, message } => {
                    tracing::error!(id, "action dead-lettered: {code}: {message}")
                }
                Decision::Retry { code, message, .. } => {
                    tracing::warn!(id, "action will be retried: {code}: {message}")
                }
                _ => {}
            }
        }
        store::record_outcomes(&mut conn, &decisions)?;
        rate.take(actions.len());
        shared
            .metrics
            .delivered(started.elapsed().as_secs_f64(), actions.len() as u64);
        if let Some(held) = &held {
            for request in std::mem::take(&mut *held.lock().unwrap_or_else(|e| e.into_inner())) {
                println!("{}\n", request.display(&client.data_path()));
            }
        }
        let usage = client.api_usage();
        let all_failed = decisions
            .iter()
            .all(|(_, d)| !matches!(d, Decision::Sent { .. } | Decision::Planned));
        shared.metrics.set_salesforce(|sf| {
            sf.connected = Some(!all_failed);
            sf.last_error = decisions.iter().find_map(|(_, d)| match d {
                Decision::Failed { code, message } | Decision::Retry { code, message, .. } => {
                    Some(format!("{code}: {message}"))
                }
                _ => None,
            });
            sf.api_used = usage.map(|u| u.used);
            sf.api_allowed = usage.map(|u| u.allowed);
        });
        let near_limit = usage.is_some_and(|u| {
            u.allowed > 0 && u.used as f64 >= shared.config.usage_threshold * u.allowed as f64
        });
        if limited || near_limit {
            tracing::warn!(
                ?usage,
                "daily API allowance nearly or fully used; slowing delivery"
            );
            shared.pause(LIMIT_PAUSE, &mut stopping).await;
        }
    }
    Ok(())
}
