//! `--events-file`: follows a JSON-lines file, remembering in the store how far it read.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Shared;
use crate::store;

const POLL: Duration = Duration::from_millis(250);
const READ_LIMIT: u64 = 8 * 1024 * 1024;

pub async fn run(shared: Arc<Shared>, path: PathBuf) -> anyhow::Result<()> {
    let mut conn = shared.store.connect()?;
    let key = path.display().to_string();
    let mut stopping = shared.stop_signal();
    while !shared.stopping() {
        let mut offset = store::file_offset(&conn, &key)?;
        if let Ok(mut file) = std::fs::File::open(&path) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            if len < offset {
                tracing::info!(file = %key, "file is shorter than before (rotated?); reading from the start");
                offset = 0;
            }
            if len > offset {
                file.seek(SeekFrom::Start(offset))?;
                let mut bytes = Vec::new();
                // A bounded read per poll, so a large backlog is taken in pieces.
                file.take((len - offset).min(READ_LIMIT))
                    .read_to_end(&mut bytes)?;
                // Only whole lines: a line still being written waits for its newline
                // (and a read that stops inside a character never splits it).
                let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let text = String::from_utf8_lossy(&bytes[..complete]);
                let mut events = Vec::new();
                for (n, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Value>(line) {
                        Ok(event @ Value::Object(_)) => events.push(event),
                        _ => {
                            tracing::warn!(file = %key, "skipped a line that is not a JSON object (line {} of this read)", n + 1)
                        }
                    }
                }
                if complete == 0 && bytes.len() as u64 == READ_LIMIT {
                    tracing::warn!(file = %key, "a line longer than {READ_LIMIT} bytes; skipped");
                    store::insert_tailed(&mut conn, &key, &[], offset + READ_LIMIT)?;
                }
                if complete > 0 {
                    store::insert_tailed(&mut conn, &key, &events, offset + complete as u64)?;
                    shared
                        .metrics
                        .events_accepted
                        .fetch_add(events.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    shared.events_ready.notify_one();
                }
            }
        }
        shared.pause(POLL, &mut stopping).await;
    }
    Ok(())
}
