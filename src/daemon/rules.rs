//! The daemon's live rule set: reloaded when files under DIR change, each rule keeping
//! its last good version while its file does not compile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
use serde::Serialize;

use crate::rules::{RuleSet, Source, script_files};
use crate::script::{Limits, ScriptError};
use crate::store::now_millis;

/// How long files must be quiet before a reload: one editor save is one reload.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Debug, Clone, Serialize)]
pub struct RuleStatus {
    pub name: Option<String>,
    pub path: PathBuf,
    /// Goes up each time a new text of the file is loaded.
    pub version: u64,
    pub loaded_at: Option<i64>,
    /// The compile error of the file's current text, while the previous version runs.
    pub error: Option<String>,
}

#[derive(Default)]
struct FileState {
    good: Option<String>,
    version: u64,
    loaded_at: Option<i64>,
    error: Option<String>,
}

pub struct LiveRules {
    dir: PathBuf,
    limits: Limits,
    current: RwLock<Arc<RuleSet>>,
    files: Mutex<BTreeMap<PathBuf, FileState>>,
}

fn read_dir_sources(dir: &Path) -> Vec<Source> {
    let Ok(files) = script_files(&[dir.to_path_buf()]) else {
        return Vec::new();
    };
    files
        .into_iter()
        .filter_map(|path| {
            std::fs::read_to_string(&path)
                .ok()
                .map(|text| Source { path, text })
        })
        .collect()
}

impl LiveRules {
    pub fn load(dir: &Path, limits: Limits) -> Arc<LiveRules> {
        let (empty, _) = RuleSet::build(&[], &limits);
        let live = Arc::new(LiveRules {
            dir: dir.to_path_buf(),
            limits,
            current: RwLock::new(Arc::new(empty)),
            files: Mutex::new(BTreeMap::new()),
        });
        live.reload();
        live
    }

    /// The rule set the next event runs through.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads DIR. Files that compile take effect; files that do not keep their
    /// previous text running, and their error is logged once and shown by `status`.
    pub fn reload(&self) {
        let started = Instant::now();
        let mut sources = read_dir_sources(&self.dir);
        let (mut set, errors) = RuleSet::build(&sources, &self.limits);
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let failed: BTreeMap<PathBuf, &ScriptError> =
            errors.iter().map(|e| (e.file.clone(), e)).collect();
        if !errors.is_empty() {
            // An error in a file that is not one of ours (an imported module) cannot be
            // pinned on one rule: every changed file falls back to its last good text.
            let unpinned = errors
                .iter()
                .any(|e| !sources.iter().any(|s| s.path == e.file));
            sources.retain_mut(|source| {
                let state = files.get(&source.path);
                let changed = state.and_then(|s| s.good.as_deref()) != Some(source.text.as_str());
                if failed.contains_key(&source.path) || (unpinned && changed) {
                    match state.and_then(|s| s.good.clone()) {
                        Some(good) => {
                            source.text = good;
                            true
                        }
                        None => false,
                    }
                } else {
                    true
                }
            });
            let (fallback, still) = RuleSet::build(&sources, &self.limits);
            for error in &still {
                tracing::error!("{error}");
            }
            set = fallback;
        }
        let now = now_millis();
        let present: Vec<PathBuf> = read_dir_sources(&self.dir)
            .into_iter()
            .map(|s| s.path)
            .collect();
        files.retain(|path, _| present.contains(path));
        for path in &present {
            let state = files.entry(path.clone()).or_default();
            match failed.get(path) {
                Some(error) => {
                    let message = error.to_string();
                    if state.error.as_deref() != Some(message.as_str()) {
                        tracing::error!(
                            "{message}\n(the previous version of {} keeps running)",
                            path.display()
                        );
                    }
                    state.error = Some(message);
                }
                None => {
                    let text = sources
                        .iter()
                        .find(|s| &s.path == path)
                        .map(|s| s.text.clone());
                    if text.is_some() && state.good != text {
                        state.good = text;
                        state.version += 1;
                        state.loaded_at = Some(now);
                    }
                    state.error = None;
                }
            }
        }
        let names: Vec<&str> = set.rules.iter().map(|r| r.name.as_str()).collect();
        tracing::info!(rules = ?names, ms = started.elapsed().as_millis() as u64, "rules loaded");
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
    }

    pub fn status(&self) -> Vec<RuleStatus> {
        let current = self.current();
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files
            .iter()
            .filter_map(|(path, state)| {
                let name = current
                    .rules
                    .iter()
                    .find(|r| &r.path == path)
                    .map(|r| r.name.clone());
                // Modules (no on_event) are not rules; show them only when they are broken.
                (name.is_some() || state.error.is_some()).then(|| RuleStatus {
                    name,
                    path: path.clone(),
                    version: state.version,
                    loaded_at: state.loaded_at,
                    error: state.error.clone(),
                })
            })
            .collect()
    }

    /// Watches DIR and reloads after each burst of changes, until the watcher fails.
    pub fn watch(self: &Arc<Self>) -> anyhow::Result<notify::RecommendedWatcher> {
        let (tx, rx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(tx)?;
        watcher.watch(&self.dir, RecursiveMode::Recursive)?;
        let live = self.clone();
        std::thread::Builder::new()
            .name("rule-reload".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    if let Err(e) = first {
                        tracing::warn!("file watcher: {e}");
                    }
                    // Debounce: wait until the files have been quiet for a while.
                    while rx.recv_timeout(DEBOUNCE).is_ok() {}
                    live.reload();
                }
            })?;
        Ok(watcher)
    }
}
