//! The daemon's SQLite store (WAL): the event inbox, the outbox of actions with their
//! status and attempts, the `once`/`count` sightings, and tailed files' offsets.
//! Schema changes are numbered migrations recorded in `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use crate::actions::Action;
use crate::counters::Counters;

/// Migration N brings the schema from version N to N + 1.
const MIGRATIONS: &[&str] = &["CREATE TABLE events (
         id INTEGER PRIMARY KEY,
         body TEXT NOT NULL,
         received_at INTEGER NOT NULL,
         processed INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX events_unprocessed ON events (processed, id);
     CREATE TABLE outbox (
         id INTEGER PRIMARY KEY,
         key TEXT NOT NULL UNIQUE,
         event_id INTEGER NOT NULL,
         rule TEXT NOT NULL,
         action TEXT NOT NULL,
         status TEXT NOT NULL DEFAULT 'pending',
         attempts INTEGER NOT NULL DEFAULT 0,
         next_attempt_at INTEGER NOT NULL DEFAULT 0,
         record_id TEXT,
         error_code TEXT,
         error_message TEXT,
         created_at INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
     );
     CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
     CREATE TABLE sightings (key TEXT NOT NULL, at INTEGER NOT NULL);
     CREATE INDEX sightings_key ON sightings (key, at);
     CREATE TABLE file_offsets (path TEXT PRIMARY KEY, offset INTEGER NOT NULL);"];

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

/// Where the store lives; each component opens its own connection.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// Opens the file, creating it and migrating the schema as needed.
    pub fn open(path: &Path) -> anyhow::Result<Store> {
        let store = Store {
            path: path.to_path_buf(),
        };
        let mut conn = store.connect()?;
        let version = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
        if version > MIGRATIONS.len() {
            anyhow::bail!(
                "{} was written by a newer rulesforce (schema {version}, this one knows {})",
                path.display(),
                MIGRATIONS.len()
            );
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(migration)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
            tx.commit()?;
        }
        Ok(store)
    }

    /// A connection with the store's settings: WAL, full sync (a commit is on disk
    /// before it is acknowledged), and a wait when another connection is writing.
    pub fn connect(&self) -> anyhow::Result<Connection> {
        let conn = Connection::open(&self.path)
            .map_err(|e| anyhow::anyhow!("cannot open the store {}: {e}", self.path.display()))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(conn)
    }
}

fn insert_into(tx: &rusqlite::Transaction<'_>, events: &[Value]) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached("INSERT INTO events (body, received_at) VALUES (?1, ?2)")?;
    let now = now_millis();
    for event in events {
        insert.execute(params![event.to_string(), now])?;
    }
    Ok(())
}

/// Stores events in one transaction: all of them or none.
pub fn insert_events(conn: &mut Connection, events: &[Value]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    insert_into(&tx, events)?;
    tx.commit()
}

/// Events from a tailed file and the file's new offset, in one transaction.
pub fn insert_tailed(
    conn: &mut Connection,
    path: &str,
    events: &[Value],
    offset: u64,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    insert_into(&tx, events)?;
    tx.execute(
        "INSERT INTO file_offsets (path, offset) VALUES (?1, ?2) ON CONFLICT (path) DO UPDATE SET offset = ?2",
        params![path, offset as i64],
    )?;
    tx.commit()
}

pub fn file_offset(conn: &Connection, path: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT offset FROM file_offsets WHERE path = ?1",
        [path],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|o| o.unwrap_or(0) as u64)
}

/// Unprocessed events, oldest first.
pub fn unprocessed(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<(i64, String)>> {
    let mut select = conn
        .prepare_cached("SELECT id, body FROM events WHERE processed = 0 ORDER BY id LIMIT ?1")?;
    let rows = select.query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A sighting for `once`/`count`, written with the actions of the events that made it.
#[derive(Debug, Clone)]
pub struct Sighting {
    pub key: String,
    pub at: i64,
}

/// Marks events processed, with their actions and the sightings made while
/// evaluating them, in one transaction: a crash leaves the events unprocessed and
/// nothing of them written, so they are simply evaluated again.
pub fn commit_events(
    conn: &mut Connection,
    events: &[(i64, Vec<Action>)],
    sightings: &[Sighting],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let now = now_millis();
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO outbox (key, event_id, rule, action, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?;
        let mut processed = tx.prepare_cached("UPDATE events SET processed = 1 WHERE id = ?1")?;
        for (event_id, actions) in events {
            for action in actions {
                let payload = serde_json::to_string(action).expect("actions serialise");
                insert.execute(params![action.key, event_id, action.rule, payload, now])?;
            }
            processed.execute([event_id])?;
        }
        let mut sight = tx.prepare_cached("INSERT INTO sightings (key, at) VALUES (?1, ?2)")?;
        for s in sightings {
            sight.execute(params![s.key, s.at])?;
        }
    }
    tx.commit()
}

/// A pending action ready to go.
#[derive(Debug, Clone)]
pub struct Due {
    pub id: i64,
    pub attempts: i64,
    pub action: Action,
}

/// Pending actions whose time has come, oldest first.
pub fn due_actions(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Due>> {
    let mut select = conn.prepare_cached(
        "SELECT id, attempts, action FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = select.query_map(params![now_millis(), limit as i64], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    let mut due = Vec::new();
    for row in rows {
        let (id, attempts, payload) = row?;
        match serde_json::from_str::<Action>(&payload) {
            Ok(action) => due.push(Due {
                id,
                attempts,
                action,
            }),
            Err(e) => tracing::error!(id, "unreadable action in the outbox: {e}"),
        }
    }
    Ok(due)
}

/// What delivery decided for one action.
pub enum Decision {
    Sent {
        record_id: Option<String>,
    },
    /// `--dry-run`: the requests were printed, not sent.
    Planned,
    /// Retry at this time; the error is kept for `/v1/actions`.
    Retry {
        at: i64,
        code: String,
        message: String,
    },
    Failed {
        code: String,
        message: String,
    },
}

pub fn record_outcomes(
    conn: &mut Connection,
    decisions: &[(i64, Decision)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let now = now_millis();
        let mut sent = tx.prepare_cached(
            "UPDATE outbox SET status = 'sent', record_id = ?2, attempts = attempts + 1, error_code = NULL, error_message = NULL, updated_at = ?3 WHERE id = ?1",
        )?;
        let mut retry = tx.prepare_cached(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, error_code = ?3, error_message = ?4, updated_at = ?5 WHERE id = ?1",
        )?;
        let mut failed = tx.prepare_cached(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, error_code = ?2, error_message = ?3, updated_at = ?4 WHERE id = ?1",
        )?;
        let mut planned = tx.prepare_cached(
            "UPDATE outbox SET status = 'dry_run', updated_at = ?2 WHERE id = ?1",
        )?;

        for (id, decision) in decisions {
            match decision {
                Decision::Sent { record_id } => sent.execute(params![id, record_id, now])?,
                Decision::Planned => planned.execute(params![id, now])?,
                Decision::Retry { at, code, message } => {
                    retry.execute(params![id, at, code, message, now])?
                }
                Decision::Failed { code, message } => {
                    failed.execute(params![id, code, message, now])?
                }
            };
        }
    }
    tx.commit()
}

/// One row of the action log, as `/v1/actions` shows it.
#[derive(Debug, Serialize)]
pub struct ActionRow {
    pub id: i64,
    pub key: String,
    pub rule: String,
    pub status: String,
    pub attempts: i64,
    pub action: Value,
    pub record_id: Option<String>,
    #[serde(rename = "errorCode")]
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub updated_at: i64,
}

pub fn list_actions(
    conn: &Connection,
    status: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<ActionRow>> {
    let mut select = conn.prepare_cached(
        "SELECT id, key, rule, status, attempts, action, record_id, error_code, error_message, updated_at
         FROM outbox WHERE (?1 IS NULL OR status = ?1) ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = select.query_map(params![status, limit as i64], |r| {
        let action: String = r.get(5)?;
        Ok(ActionRow {
            id: r.get(0)?,
            key: r.get(1)?,
            rule: r.get(2)?,
            status: r.get(3)?,
            attempts: r.get(4)?,
            action: serde_json::from_str(&action).unwrap_or(Value::Null),
            record_id: r.get(6)?,
            error_code: r.get(7)?,
            error_message: r.get(8)?,
            updated_at: r.get(9)?,
        })
    })?;
    rows.collect()
}

/// Puts a dead-lettered action back in the queue. False when there is no such failed action.
pub fn retry_action(conn: &Connection, id: i64) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE outbox SET status = 'pending', next_attempt_at = 0, updated_at = ?2 WHERE id = ?1 AND status = 'failed'",
        params![id, now_millis()],
    )?;
    Ok(changed == 1)
}

/// Counts of actions by status, and of events not yet processed.
pub fn counts(conn: &Connection) -> rusqlite::Result<(Vec<(String, i64)>, i64)> {
    let mut select =
        conn.prepare_cached("SELECT status, COUNT(*) FROM outbox GROUP BY status ORDER BY status")?;
    let by_status = select
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let backlog = conn.query_row("SELECT COUNT(*) FROM events WHERE processed = 0", [], |r| {
        r.get(0)
    })?;
    Ok((by_status, backlog))
}

/// `once`/`count` backed by the store. Sightings made while an event is evaluated are
/// held in memory and written by [`commit_events`] with their actions, so a crash
/// mid-batch leaves no trace of it and re-evaluating gives the same answer.
pub struct StoreCounters {
    conn: Mutex<Connection>,
    pending: Mutex<Vec<Sighting>>,
}

impl StoreCounters {
    pub fn new(conn: Connection) -> StoreCounters {
        StoreCounters {
            conn: Mutex::new(conn),
            pending: Mutex::new(Vec::new()),
        }
    }

    /// The sightings of the event just evaluated.
    pub fn take_pending(&self) -> Vec<Sighting> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn seen_since(&self, key: &str, since: i64) -> i64 {
        let stored: i64 = self
            .conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .query_row(
                "SELECT COUNT(*) FROM sightings WHERE key = ?1 AND at >= ?2",
                params![key, since],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| {
                tracing::error!("reading sightings: {e}");
                0
            });
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        stored
            + pending
                .iter()
                .filter(|s| s.key == key && s.at >= since)
                .count() as i64
    }

    fn sight(&self, key: String) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Sighting {
                key,
                at: now_millis(),
            });
    }
}

impl Counters for StoreCounters {
    fn once(&self, key: &str, window: Option<Duration>) -> bool {
        let key = format!("once:{key}");
        let since = window.map_or(i64::MIN, |w| now_millis() - w.as_millis() as i64);
        let first = self.seen_since(&key, since) == 0;
        if first {
            self.sight(key);
        }
        first
    }

    fn count(&self, key: &str, window: Duration) -> u64 {
        let key = format!("count:{key}");
        let since = now_millis() - window.as_millis() as i64;
        self.sight(key.clone());
        self.seen_since(&key, since) as u64
    }
}
