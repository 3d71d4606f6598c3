//! Counters the daemon keeps for `/metrics` (Prometheus text) and `/healthz`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    pub events_accepted: AtomicU64,
    pub requests_rejected: AtomicU64,
    rule_runs: Mutex<BTreeMap<String, (u64, u64)>>,
    delivery: Mutex<(f64, u64)>,
    salesforce: Mutex<SalesforceState>,
}

/// What the last delivery learned about the connection.
#[derive(Default, Clone, serde::Serialize)]
pub struct SalesforceState {
    pub connected: Option<bool>,
    pub last_error: Option<String>,
    pub api_used: Option<u64>,
    pub api_allowed: Option<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    pub fn rule_ran(&self, rule: &str, failed: bool) {
        let mut runs = lock(&self.rule_runs);
        let entry = runs.entry(rule.to_string()).or_default();
        entry.0 += 1;
        entry.1 += u64::from(failed);
    }

    pub fn delivered(&self, seconds: f64, actions: u64) {
        let mut d = lock(&self.delivery);
        d.0 += seconds;
        d.1 += actions;
    }

    pub fn salesforce(&self) -> SalesforceState {
        lock(&self.salesforce).clone()
    }

    pub fn set_salesforce(&self, update: impl FnOnce(&mut SalesforceState)) {
        update(&mut lock(&self.salesforce));
    }

    /// The Prometheus text exposition, with the store's counts passed in.
    pub fn render(&self, actions_by_status: &[(String, i64)], backlog: i64) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE rulesforce_events_accepted_total counter");
        let _ = writeln!(
            out,
            "rulesforce_events_accepted_total {}",
            self.events_accepted.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE rulesforce_requests_rejected_total counter");
        let _ = writeln!(
            out,
            "rulesforce_requests_rejected_total {}",
            self.requests_rejected.load(Ordering::Relaxed)
        );
        let _ = writeln!(out, "# TYPE rulesforce_events_backlog gauge");
        let _ = writeln!(out, "rulesforce_events_backlog {backlog}");
        let _ = writeln!(out, "# TYPE rulesforce_rule_runs_total counter");
        let _ = writeln!(out, "# TYPE rulesforce_rule_errors_total counter");
        for (rule, (runs, errors)) in lock(&self.rule_runs).iter() {
            let rule = rule.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "rulesforce_rule_runs_total{{rule=\"{rule}\"}} {runs}");
            let _ = writeln!(
                out,
                "rulesforce_rule_errors_total{{rule=\"{rule}\"}} {errors}"
            );
        }
        let _ = writeln!(out, "# TYPE rulesforce_actions gauge");
        for status in ["pending", "sent", "failed", "dry_run"] {
            let count = actions_by_status
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(out, "rulesforce_actions{{status=\"{status}\"}} {count}");
        }
        let (seconds, actions) = *lock(&self.delivery);
        let _ = writeln!(out, "# TYPE rulesforce_delivery_seconds summary");
        let _ = writeln!(out, "rulesforce_delivery_seconds_sum {seconds}");
        let _ = writeln!(out, "rulesforce_delivery_seconds_count {actions}");
        let sf = self.salesforce();
        if let (Some(used), Some(allowed)) = (sf.api_used, sf.api_allowed) {
            let _ = writeln!(out, "# TYPE rulesforce_api_usage gauge");
            let _ = writeln!(out, "rulesforce_api_usage{{kind=\"used\"}} {used}");
            let _ = writeln!(out, "rulesforce_api_usage{{kind=\"allowed\"}} {allowed}");
        }
        out
    }
}
