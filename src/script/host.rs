//! What rule code runs against. The `Host` is the engine-wide state (the connection,
//! the runtime that reads block on, the `once`/`count` store, the campaign cache); a
//! `Frame` is one evaluation's own state (which rule, which event, the actions it
//! queued), handed to the native functions as Rhai's call tag.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::actions::{Action, Operation};
use crate::counters::Counters;
use crate::salesforce::{Client, SfId};

pub struct Host {
    client: Option<Client>,
    runtime: tokio::runtime::Handle,
    pub counters: Arc<dyn Counters>,
    campaigns: Mutex<HashMap<String, Option<String>>>,
}

impl Host {
    pub fn new(
        client: Option<Client>,
        runtime: tokio::runtime::Handle,
        counters: Arc<dyn Counters>,
    ) -> Arc<Host> {
        Arc::new(Host {
            client,
            runtime,
            counters,
            campaigns: Mutex::new(HashMap::new()),
        })
    }

    /// Runs a Salesforce read to completion. Rule code runs on a blocking thread, never
    /// on the async runtime itself, so this cannot stall other tasks.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    pub fn client(&self) -> Result<&Client, String> {
        self.client
            .as_ref()
            .ok_or_else(|| "no Salesforce connection here".to_string())
    }

    /// `find_campaign` through the default connection, cached for the host's lifetime.
    pub fn find_campaign(&self, name: &str) -> Result<Option<String>, String> {
        if let Some(found) = self
            .campaigns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Ok(found.clone());
        }
        let client = self.client()?;
        let found = self
            .block_on(client.find_campaign(name))
            .map_err(|e| e.to_string())?
            .map(|id| id.to_string());
        self.campaigns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), found.clone());
        Ok(found)
    }
}

/// One evaluation: a rule on an event.
#[derive(Clone)]
pub struct Frame {
    inner: Arc<FrameInner>,
}

/// What a write does: queue an action (rules), or go out at once (the REPL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Queue,
    Immediate,
}

struct FrameInner {
    host: Arc<Host>,
    rule: String,
    event: String,
    mode: WriteMode,
    actions: Mutex<Vec<Action>>,
}

impl Frame {
    /// An evaluation whose writes are queued as actions.
    pub fn new(host: Arc<Host>, rule: &str, event: &str) -> Frame {
        Frame::with_mode(host, rule, event, WriteMode::Queue)
    }

    pub fn with_mode(host: Arc<Host>, rule: &str, event: &str, mode: WriteMode) -> Frame {
        Frame {
            inner: Arc::new(FrameInner {
                host,
                rule: rule.into(),
                event: event.into(),
                mode,
                actions: Mutex::new(Vec::new()),
            }),
        }
    }

    pub fn mode(&self) -> WriteMode {
        self.inner.mode
    }

    pub fn host(&self) -> &Host {
        &self.inner.host
    }

    pub fn rule(&self) -> &str {
        &self.inner.rule
    }

    /// Queues a write; its key is the rule, the event and its place among the rule's
    /// writes for that event.
    pub fn queue(&self, operation: Operation) {
        let mut actions = self.inner.actions.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{}/{}/{}", self.inner.rule, self.inner.event, actions.len());
        actions.push(Action {
            rule: self.inner.rule.clone(),
            event: self.inner.event.clone(),
            operation,
            key,
        });
    }

    pub fn take_actions(&self) -> Vec<Action> {
        std::mem::take(&mut *self.inner.actions.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A connection value in a script (`let sf = login();`). Writes through the default
/// connection are queued like any other; a second connection can only read in rules.
#[derive(Clone)]
pub struct Connection {
    pub client: Client,
    pub default: bool,
}

/// An id argument checked against the object it must name.
pub fn expect_id(function: &str, what: &str, raw: &str, prefixes: &[&str]) -> Result<SfId, String> {
    let id = SfId::parse(raw).map_err(|e| format!("{function}: {e}"))?;
    if prefixes.contains(&id.prefix()) {
        return Ok(id);
    }
    let actual = id
        .object()
        .map(|o| format!("a {o} id"))
        .unwrap_or_else(|| format!("an id with prefix {}", id.prefix()));
    let expected: Vec<String> = prefixes
        .iter()
        .map(|p| {
            format!(
                "{} ({p}...)",
                crate::salesforce::id::object_for_prefix(p).unwrap_or("?")
            )
        })
        .collect();
    Err(format!(
        "{function}: '{raw}' is {actual}, but {what} must be {}",
        expected.join(" or ")
    ))
}
