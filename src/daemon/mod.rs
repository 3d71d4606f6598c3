//! `rulesforce watch`: rules reloaded as they change, events taken over HTTP (and from a
//! tailed file) into the store, evaluated into the outbox, delivered in batches.
//!
//! Event -> store (inbox) -> processor (rules, one transaction per event) -> outbox ->
//! delivery (batched Collections calls) -> outcome recorded. Each arrow is durable, so a
//! crash anywhere loses nothing; an action sent but not yet recorded is sent again.

mod delivery;
mod http;
pub mod metrics;
mod processor;
pub mod rules;
mod tail;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::salesforce::{ApiRequest, Client};
use crate::script::Limits;
use crate::secret::Secret;
use crate::store::Store;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub state: PathBuf,
    pub token: Option<Secret>,
    pub max_body: usize,
    pub events_file: Option<PathBuf>,
    pub max_actions_per_minute: Option<u32>,
    /// Slow down once this share of the daily API allowance is used.
    pub usage_threshold: f64,
    pub dry_run: bool,
    pub limits: Limits,
}

/// What every part of the daemon shares.
pub struct Shared {
    config: DaemonConfig,
    store: Store,
    live: Arc<rules::LiveRules>,
    metrics: metrics::Metrics,
    events_ready: Arc<Notify>,
    actions_ready: Notify,
    stop: watch::Sender<bool>,
    /// The HTTP handlers' connection, opened once rather than per request.
    http_db: Mutex<rusqlite::Connection>,
}

impl Shared {
    /// Runs `work` on the HTTP handlers' connection. Blocking: ingest calls it from
    /// `spawn_blocking`; the short reads of the other handlers call it directly.
    fn with_http_db<T>(
        &self,
        work: impl FnOnce(&mut rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        let mut conn = self.http_db.lock().unwrap_or_else(|e| e.into_inner());
        Ok(work(&mut conn)?)
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Sleeps, waking early for a stop.
    async fn pause(&self, duration: Duration, stopping: &mut watch::Receiver<bool>) {
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// Runs the daemon until `shutdown` resolves; then stops taking events, finishes the
/// event and the delivery batch in flight, and returns. `ready` gets the bound address.
pub async fn run(
    config: DaemonConfig,
    client: Client,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    if !config.listen.ip().is_loopback() && config.token.is_none() {
        tracing::warn!(listen = %config.listen, "listening beyond loopback without --token: anyone who can reach it can post events");
    }
    let store = Store::open(&config.state)?;
    let http_db = store.connect()?;
    let live = rules::LiveRules::load(&config.dir, config.limits.clone());
    let _watcher = live.watch()?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, _) = watch::channel(false);
    let held = config
        .dry_run
        .then(|| Arc::new(Mutex::new(Vec::<ApiRequest>::new())));
    let delivery_client = match &held {
        Some(held) => client.dry_run(held.clone()),
        None => client.clone(),
    };
    let shared = Arc::new(Shared {
        config,
        store,
        live,
        metrics: metrics::Metrics::default(),
        events_ready: Arc::new(Notify::new()),
        actions_ready: Notify::new(),
        stop,
        http_db: Mutex::new(http_db),
    });

    let runtime = tokio::runtime::Handle::current();
    let processor = {
        let shared = shared.clone();
        let client = delivery_client.clone();
        std::thread::Builder::new()
            .name("rule-eval".into())
            .spawn(move || processor::run(shared, client, runtime))?
    };
    let delivery = tokio::spawn(delivery::run(shared.clone(), delivery_client, held));
    let tail = shared
        .config
        .events_file
        .clone()
        .map(|path| tokio::spawn(tail::run(shared.clone(), path)));

    ready(addr);
    let app = http::router(shared.clone());
    let stopper = shared.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("stopping: no new events; finishing the work in flight");
            stopper.stop.send_replace(true);
        })
        .await?;
    shared.stop.send_replace(true);
    shared.events_ready.notify_waiters();
    if let Some(tail) = tail {
        tail.await??;
    }
    delivery.await??;
    processor
        .join()
        .map_err(|_| anyhow::anyhow!("the rule evaluation thread panicked"))??;
    tracing::info!("stopped");
    Ok(())
}
