//! The local decision log: every denied decision and a sample of allowed ones, written to a
//! SQLite database (WAL) by one writer thread in batches, one transaction per batch. The data
//! path only builds an entry and `try_send`s it into a bounded queue; when the queue is full
//! the entry is dropped and counted, so forwarding never waits for the disk. Retention deletes
//! rows past `max_age` and the oldest rows while the file is over `max_size`.
//!
//! Recorded: time, decision id, protocol, operation, source (workload, client id), target
//! host:port, topic or path, verdict, reasons and policy revision. Never payloads.
//!
//! Not here: querying (`sluice log`, in `cmd/log.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, params};

use super::error::TelemetryError;
use crate::config::DecisionLogConfig;
use crate::policy::{Input, Verdict};

/// Entries written per transaction at most.
const BATCH: usize = 1024;
/// Fixed-point scale of the sample rate.
const SAMPLE_SCALE: u64 = 1 << 32;
/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(10);

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS decisions (
    id          INTEGER PRIMARY KEY,
    time_ms     INTEGER NOT NULL,
    decision_id TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    operation   TEXT NOT NULL,
    workload    TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    target      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    reasons     TEXT NOT NULL,
    revision    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions(time_ms);
";

/// One row. Built only for entries that will be logged (denies and sampled allows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub time_ms: i64,
    pub decision_id: String,
    pub protocol: &'static str,
    pub operation: &'static str,
    pub workload: String,
    pub client_id: String,
    /// `host:port`.
    pub target: String,
    /// The MQTT topic (filter) or the HTTP path; empty for a connect or tunnel.
    pub resource: String,
    pub allowed: bool,
    pub reasons: Vec<String>,
    pub revision: String,
}

impl Entry {
    pub fn new(
        input: &Input<'_>,
        verdict: &Verdict,
        decision_id: String,
        revision: String,
    ) -> Self {
        let resource = match (input.mqtt, input.http) {
            (Some(m), _) => m.topic.to_string(),
            (None, Some(h)) => h.path.to_string(),
            (None, None) => String::new(),
        };
        let host = input.target.host;
        let target = if host.contains(':') {
            format!("[{host}]:{}", input.target.port)
        } else {
            format!("{host}:{}", input.target.port)
        };
        Self {
            time_ms: now_ms(),
            decision_id,
            protocol: input.protocol.as_str(),
            operation: input.operation.as_str(),
            workload: input.source.workload.clone(),
            client_id: input.source.client_id.clone(),
            target,
            resource,
            allowed: verdict.allowed(),
            reasons: verdict.reasons().to_vec(),
            revision,
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Counters exported as metrics.
#[derive(Debug, Default)]
pub struct LogStats {
    /// Entries accepted into the queue.
    pub queued: AtomicU64,
    /// Rows committed.
    pub written: AtomicU64,
    /// Entries dropped because the queue was full.
    pub dropped_full: AtomicU64,
    /// Entries lost because the database refused them (disk full, read-only, corrupt).
    pub dropped_error: AtomicU64,
    /// Rows deleted by retention.
    pub expired: AtomicU64,
}

/// The handle the data path holds. Dropping it drains the queue and stops the writer.
#[derive(Debug)]
pub struct DecisionLog {
    tx: Option<SyncSender<Entry>>,
    stats: Arc<LogStats>,
    /// Allowed decisions recorded per 2^32 (0 = none).
    sample_allowed: u64,
    allowed_seen: AtomicU64,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl DecisionLog {
    /// Opens (creating) the database and starts the writer thread.
    pub fn open(cfg: &DecisionLogConfig) -> Result<Self, TelemetryError> {
        let conn = open_db(&cfg.path)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(cfg.queue);
        let stats = Arc::new(LogStats::default());
        let writer = Writer {
            conn,
            path: cfg.path.clone(),
            max_age_ms: i64::try_from(cfg.max_age.get().as_millis()).unwrap_or(i64::MAX),
            max_size: cfg.max_size.get(),
            stats: stats.clone(),
            last_error: None,
        };
        let handle = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| {
                TelemetryError::DecisionLog(format!("decision_log: cannot start the writer: {e}"))
            })?;
        Ok(Self {
            tx: Some(tx),
            stats,
            sample_allowed: (cfg.sample_allowed.clamp(0.0, 1.0) * SAMPLE_SCALE as f64).round()
                as u64,
            allowed_seen: AtomicU64::new(0),
            writer: Some(handle),
        })
    }

    /// Whether a decision with this outcome is recorded: every deny; allows at the sample
    /// rate, spread evenly (the n-th allow is kept when n·rate crosses an integer).
    pub fn wants(&self, allowed: bool) -> bool {
        if !allowed {
            return true;
        }
        if self.sample_allowed == 0 {
            return false;
        }
        let n = self.allowed_seen.fetch_add(1, Ordering::Relaxed);
        let (n, rate, scale) = (
            u128::from(n),
            u128::from(self.sample_allowed),
            u128::from(SAMPLE_SCALE),
        );
        (n + 1) * rate / scale != n * rate / scale
    }

    /// Queues an entry; never blocks. A full queue drops it and counts the drop.
    pub fn record(&self, entry: Entry) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(entry) {
            Ok(()) => {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn stats(&self) -> &Arc<LogStats> {
        &self.stats
    }

    /// Waits (up to `timeout`) until everything queued so far is written or has failed; used
    /// at shutdown, where the handle is shared and cannot be closed.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let target = self.stats.queued.load(Ordering::Relaxed);
        loop {
            let done = self.stats.written.load(Ordering::Relaxed)
                + self.stats.dropped_error.load(Ordering::Relaxed);
            if done >= target {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn open_db(path: &Path) -> Result<Connection, TelemetryError> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            TelemetryError::DecisionLog(format!(
                "decision_log.path: cannot create {}: {e}",
                dir.display()
            ))
        })?;
    }
    let conn = Connection::open(path)
        .map_err(|e| TelemetryError::DecisionLog(format!("decision_log.path: {shown}: {e}")))?;
    // auto_vacuum must be chosen before the first table exists; incremental lets retention
    // hand freed pages back to the file system a little at a time.
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA busy_timeout = 1000;",
    )
    .and_then(|_| conn.execute_batch(SCHEMA))
    .map_err(|e| TelemetryError::DecisionLog(format!("decision_log.path: {shown}: {e}")))?;
    Ok(conn)
}

struct Writer {
    conn: Connection,
    path: PathBuf,
    max_age_ms: i64,
    max_size: u64,
    stats: Arc<LogStats>,
    last_error: Option<String>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Entry>) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut last_retention = Instant::now();
        self.retain();
        loop {
            let first = match rx.recv_timeout(RETENTION_EVERY) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if let Some(e) = first {
                batch.push(e);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                self.write(&mut batch);
            }
            // The size bound is checked after every batch (three in-memory pragmas and a
            // stat), so a burst cannot grow the file far past it; age every 10 s.
            if last_retention.elapsed() >= RETENTION_EVERY || self.db_bytes() > self.max_size {
                self.retain();
                last_retention = Instant::now();
            }
        }
        self.retain();
    }

    fn write(&mut self, batch: &mut Vec<Entry>) {
        let n = batch.len() as u64;
        match self.insert(batch) {
            Ok(()) => {
                self.stats.written.fetch_add(n, Ordering::Relaxed);
                self.last_error = None;
            }
            Err(e) => {
                self.stats.dropped_error.fetch_add(n, Ordering::Relaxed);
                let msg = e.to_string();
                // Once per distinct reason: a full disk must not flood the log too.
                if self.last_error.as_deref() != Some(&msg) {
                    tracing::warn!(
                        path = %self.path.display(),
                        dropped = n,
                        "decision log write failed, entries dropped (counted): {msg}"
                    );
                    self.last_error = Some(msg);
                }
                // A full file may be made writable again by retention.
                self.retain();
            }
        }
        batch.clear();
    }

    fn insert(&mut self, batch: &[Entry]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO decisions (time_ms, decision_id, protocol, operation, workload,
                 client_id, target, resource, verdict, reasons, revision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            for e in batch {
                let reasons = serde_json::to_string(&e.reasons).unwrap_or_else(|_| "[]".into());
                stmt.execute(params![
                    e.time_ms,
                    e.decision_id,
                    e.protocol,
                    e.operation,
                    e.workload,
                    e.client_id,
                    e.target,
                    e.resource,
                    if e.allowed { "allow" } else { "deny" },
                    reasons,
                    e.revision,
                ])?;
            }
        }
        tx.commit()
    }

    /// Deletes rows past `max_age`, then the oldest rows while the database is over
    /// `max_size`, and returns freed pages to the file system.
    fn retain(&mut self) {
        let cutoff = now_ms().saturating_sub(self.max_age_ms);
        if let Ok(n) = self
            .conn
            .execute("DELETE FROM decisions WHERE time_ms < ?1", params![cutoff])
        {
            self.stats.expired.fetch_add(n as u64, Ordering::Relaxed);
        }
        for _ in 0..64 {
            if self.db_bytes() <= self.max_size {
                break;
            }
            // A tenth of the rows at a time, oldest first (ids grow with time).
            let deleted = self.conn.execute(
                "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions ORDER BY id
                 LIMIT MAX(1, (SELECT COUNT(*) FROM decisions) / 10))",
                [],
            );
            self.vacuum();
            match deleted {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.stats.expired.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    }

    /// Hands free pages back to the file system. `incremental_vacuum` frees one page per
    /// result row, so every row must be stepped through; the checkpoint then shrinks the file.
    fn vacuum(&self) {
        let step = || -> rusqlite::Result<()> {
            let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
            Ok(())
        };
        let _ = step();
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    /// Bytes in use: live pages of the database plus the write-ahead log.
    fn db_bytes(&self) -> u64 {
        let pragma = |q: &str| {
            self.conn
                .query_row(q, [], |r| r.get::<_, i64>(0))
                .unwrap_or(0)
                .max(0) as u64
        };
        let used = pragma("PRAGMA page_count").saturating_sub(pragma("PRAGMA freelist_count"));
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = std::fs::metadata(PathBuf::from(wal))
            .map(|m| m.len())
            .unwrap_or(0);
        used * pragma("PRAGMA page_size") + wal
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dur, Size};

    fn cfg(path: PathBuf, sample: f64) -> DecisionLogConfig {
        DecisionLogConfig {
            path,
            sample_allowed: sample,
            max_age: Dur(Duration::from_secs(3600)),
            max_size: Size(1 << 30),
            queue: 16,
        }
    }

    #[test]
    fn sampling_keeps_the_configured_share_of_allows_and_every_deny() {
        let dir = std::env::temp_dir().join(format!("sluice-dl-sample-{}", std::process::id()));
        let Ok(log) = DecisionLog::open(&cfg(dir.join("d.db"), 0.25)) else {
            panic!("open failed");
        };
        let kept = (0..1000).filter(|_| log.wants(true)).count();
        assert_eq!(kept, 250);
        assert!((0..10).all(|_| log.wants(false)));
        drop(log);
        let Ok(none) = DecisionLog::open(&cfg(dir.join("e.db"), 0.0)) else {
            panic!("open failed");
        };
        assert!(!(0..1000).any(|_| none.wants(true)));
        drop(none);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
