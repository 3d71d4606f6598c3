//! The one engine configuration `run`, `check`, `watch` and `repl` share: sandbox limits,
//! a wall-clock budget per call, no `eval`, the module resolver and the script API.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine};

use super::{api, resolver::RuleModules};

/// Sandbox limits for rule code.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    /// Wall-clock time one call (one event through one rule) may take, reads included.
    pub time_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // High enough that the wall-clock budget is what stops a busy loop.
            max_operations: 100_000_000,
            max_call_levels: 48,
            max_expr_depth: 64,
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
            time_budget: Duration::from_secs(2),
        }
    }
}

/// The call in progress (one rule on one event, or a rule's top level): its deadline,
/// read by the engine's progress callback, and its rule, which tags `print` and `debug`.
/// The deadline is nanoseconds since `start` (0 = none) so the check is one atomic load.
pub struct InFlight {
    start: Instant,
    nanos: AtomicU64,
    budget: Duration,
    rule: Mutex<String>,
}

/// What the progress callback returns to stop a script; recognised in error messages.
pub const OUT_OF_TIME: &str = "time budget exceeded";

impl InFlight {
    fn new(budget: Duration) -> InFlight {
        InFlight {
            start: Instant::now(),
            nanos: AtomicU64::new(0),
            budget,
            rule: Mutex::new(String::new()),
        }
    }

    /// Starts the clock for one call of `rule`.
    pub fn start(&self, rule: &str) {
        rule.clone_into(&mut self.rule.lock().unwrap_or_else(|e| e.into_inner()));
        let at = self.start.elapsed() + self.budget;
        self.nanos
            .store(at.as_nanos().max(1) as u64, Ordering::Relaxed);
    }

    pub fn finish(&self) {
        self.nanos.store(0, Ordering::Relaxed);
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    fn rule(&self) -> String {
        self.rule.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn passed(&self) -> bool {
        let at = self.nanos.load(Ordering::Relaxed);
        at != 0 && self.start.elapsed().as_nanos() as u64 > at
    }
}

/// A configured engine and the call state its callbacks watch.
pub fn build(limits: &Limits) -> (Engine, Arc<InFlight>) {
    let mut engine = Engine::new();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_modules(64)
        .set_module_resolver(RuleModules::default());
    engine.disable_symbol("eval");
    let in_flight = Arc::new(InFlight::new(limits.time_budget));
    let watched = in_flight.clone();
    engine.on_progress(move |operations| {
        // Reading the clock every operation would dominate simple rules.
        (operations % 256 == 0 && watched.passed()).then(|| Dynamic::from(OUT_OF_TIME))
    });
    // print and debug go to the log, tagged with the rule, never to stdout.
    let printing = in_flight.clone();
    engine.on_print(move |text| tracing::info!(rule = %printing.rule(), "{text}"));
    let debugging = in_flight.clone();
    engine.on_debug(move |text, _, _| tracing::debug!(rule = %debugging.rule(), "{text}"));
    api::register(&mut engine);
    (engine, in_flight)
}
