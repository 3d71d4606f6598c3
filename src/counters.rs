//! `once` and `count`: how often a key was seen within a time window. In memory for
//! `run` and the REPL; the daemon keeps them in its store so they survive restarts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub trait Counters: Send + Sync {
    /// Records a sighting of `key` and says whether it is the first within `window`
    /// (ever, without a window).
    fn once(&self, key: &str, window: Option<Duration>) -> bool;
    /// Records a sighting of `key` and returns the sightings within `window`, this one included.
    fn count(&self, key: &str, window: Duration) -> u64;
}

/// Parses a window such as `30m`, `1d` or `7d`.
pub fn parse_window(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("'{text}' is not a time window like \"30m\", \"1d\" or \"7d\": {e}"))
}

#[derive(Default)]
pub struct MemoryCounters {
    seen: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Counters for MemoryCounters {
    fn once(&self, key: &str, window: Option<Duration>) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let times = seen.entry(key.to_string()).or_default();
        let first = match window {
            Some(window) => times.iter().all(|t| now.duration_since(*t) >= window),
            None => times.is_empty(),
        };
        if first {
            // Only the sighting that opened the window matters for `once`.
            times.clear();
            times.push(now);
        }
        first
    }

    fn count(&self, key: &str, window: Duration) -> u64 {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let times = seen.entry(format!("count:{key}")).or_default();
        times.retain(|t| now.duration_since(*t) < window);
        times.push(now);
        times.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_is_true_the_first_time_per_window() {
        let counters = MemoryCounters::default();
        assert!(counters.once("a", None));
        assert!(!counters.once("a", None));
        assert!(counters.once("b", Some(Duration::from_secs(60))));
        assert!(!counters.once("b", Some(Duration::from_secs(60))));
        assert!(
            counters.once("b", Some(Duration::ZERO)),
            "a zero window has always passed"
        );
    }

    #[test]
    fn count_includes_this_call() {
        let counters = MemoryCounters::default();
        assert_eq!(counters.count("k", Duration::from_secs(60)), 1);
        assert_eq!(counters.count("k", Duration::from_secs(60)), 2);
        assert_eq!(counters.count("k", Duration::ZERO), 1);
    }

    #[test]
    fn windows_parse_like_7d() {
        assert_eq!(parse_window("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_window("30m").unwrap(), Duration::from_secs(1800));
        assert!(parse_window("soon").unwrap_err().contains("soon"));
    }
}
