//! Evaluation: unprocessed events through the current rules, a batch at a time; the
//! batch's actions and `once`/`count` sightings are committed in the transaction that
//! marks its events processed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Shared;
use crate::script::Host;
use crate::store::{self, StoreCounters};

const BATCH: usize = 256;

/// Runs on its own thread until shutdown: rule code blocks on Salesforce reads.
pub fn run(
    shared: Arc<Shared>,
    host_client: crate::salesforce::Client,
    runtime: tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let mut conn = shared.store.connect()?;
    let counters = Arc::new(StoreCounters::new(shared.store.connect()?));
    let host = Host::new(Some(host_client), runtime.clone(), counters.clone());
    loop {
        if shared.stopping() {
            return Ok(());
        }
        let batch = store::unprocessed(&conn, BATCH)?;
        if batch.is_empty() {
            let ready = shared.events_ready.clone();
            // The timer has to be made inside the runtime, hence the async block.
            runtime.block_on(async move {
                let _ = tokio::time::timeout(Duration::from_millis(500), ready.notified()).await;
            });
            continue;
        }
        let rules = shared.live.current();
        let mut evaluated = Vec::with_capacity(batch.len());
        for (id, body) in batch {
            let event = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| rhai::serde::to_dynamic(&v).ok());
            let mut actions = Vec::new();
            match event {
                Some(event) => {
                    for evaluation in rules.evaluate(&host, &event, &format!("E{id}")) {
                        shared
                            .metrics
                            .rule_ran(&evaluation.rule.name, evaluation.result.is_err());
                        match evaluation.result {
                            Ok(queued) => actions.extend(queued),
                            Err(error) => tracing::warn!("{error}\n  (event {id})"),
                        }
                    }
                }
                None => tracing::error!(id, "stored event is not a JSON object; skipped"),
            }
            evaluated.push((id, actions));
        }
        store::commit_events(&mut conn, &evaluated, &counters.take_pending())?;
        if evaluated.iter().any(|(_, actions)| !actions.is_empty()) {
            shared.actions_ready.notify_one();
        }
    }
}
