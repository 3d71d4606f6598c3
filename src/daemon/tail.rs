//! `--events-file`: follows a JSON-lines file, remembering in the store how far it read.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Shared;
use crate::store;

const POLL: Duration = Duration::from_millis(250);

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
                let mut text = String::new();
                file.take(len - offset).read_to_string(&mut text)?;
                // Only whole lines: a line still being written waits for its newline.
                let complete = text.rfind('\n').map_or(0, |i| i + 1);
                let mut events = Vec::new();
                for (n, line) in text[..complete].lines().enumerate() {
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
