//! The export bridge's durable spool: one SQLite file (WAL) of allowed messages waiting for the
//! remote broker, oldest first. A message is in the spool from the moment the bridge may
//! acknowledge it to the local broker until the remote acknowledged it, it expired, or it was
//! dropped to make room.
//!
//! Opening checks the file (`PRAGMA integrity_check`): a file that is not SQLite or is corrupt is
//! moved aside (with its `-wal`/`-shm`) and a fresh spool started; a spool of a newer schema
//! version, or an SQLite database that is not a spool, is refused and left untouched.
//! Counts and bytes are kept in memory so that limits cost no query per message.
//!
//! Not here: when to store, send or delete (intake.rs, delivery.rs), the CLI (cmd/spool.rs).

use std::path::{Path, PathBuf};

mod read_only;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, params};

pub use super::message::{Inserted, Message, NewMessage, Stats};
use super::topic::topic_matches;
use crate::config::OnFull;

/// The schema this build writes and reads.
pub const SCHEMA_VERSION: i64 = 1;
/// `PRAGMA application_id` of a sluice spool ("slsp").
const APPLICATION_ID: i64 = 0x736c_7370;
/// WAL pages before a checkpoint (1 MiB): keeps the WAL, and so the space a checkpoint needs,
/// smaller than the reserve.
const WAL_PAGES: u32 = 256;
/// Bytes kept in `<spool>.reserve`, given back when the disk is full so that removing sent
/// messages (which needs a little WAL space) can still commit, and written again later.
const RESERVE: usize = 2 * 1024 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS spool (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    topic     TEXT NOT NULL,
    payload   BLOB NOT NULL,
    qos       INTEGER NOT NULL,
    retain    INTEGER NOT NULL,
    stored_ms INTEGER NOT NULL,
    size      INTEGER NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0
);
";

/// A spool problem; messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error(
        "{0}: spool has schema version {1}, newer than this sluice reads ({SCHEMA_VERSION}); left untouched: run the newer sluice or move the file"
    )]
    FutureVersion(String, i64),
    #[error(
        "{0}: an SQLite database that is not a sluice spool; left untouched: point spool.path elsewhere"
    )]
    Foreign(String),
    #[error("{0}: disk full: {1}")]
    DiskFull(String, String),
    #[error("{0}: {1}")]
    Sqlite(String, String),
    #[error("{0}: cannot move the damaged spool aside: {1}")]
    MoveAside(String, String),
    #[error("{0}: no such spool file")]
    Missing(String),
}

impl SpoolError {
    fn sqlite(path: &Path, e: rusqlite::Error) -> Self {
        let shown = path.display().to_string();
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::DiskFull(shown, e.to_string()),
            _ => Self::Sqlite(shown, e.to_string()),
        }
    }

    /// The metric `kind` of this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::FutureVersion(..) => "spool_version",
            Self::Foreign(..) => "spool_foreign",
            Self::DiskFull(..) => "disk_full",
            Self::Sqlite(..) | Self::Missing(..) => "spool_write",
            Self::MoveAside(..) => "spool_corrupt",
        }
    }
}

/// An open spool.
#[derive(Debug)]
pub struct Spool {
    conn: Connection,
    path: PathBuf,
    reserve: PathBuf,
    messages: u64,
    bytes: u64,
    /// Set when the disk was found full: new messages wait until the spool is empty.
    paused: bool,
}

/// A spool opened by the bridge, and where a damaged file went.
#[derive(Debug)]
pub struct Opened {
    pub spool: Spool,
    pub moved_aside: Option<(PathBuf, String)>,
}

impl Spool {
    /// Opens (or creates) the spool of a bridge; a damaged file is moved aside.
    pub fn open(path: &Path) -> Result<Opened, SpoolError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| SpoolError::Sqlite(path.display().to_string(), e.to_string()))?;
        }
        match Self::open_checked(path, true) {
            Ok(spool) => Ok(Opened {
                spool,
                moved_aside: None,
            }),
            Err(Checked::Refused(e)) => Err(e),
            Err(Checked::Damaged(why)) => {
                let aside = move_aside(path)?;
                let spool = Self::open_checked(path, true).map_err(|c| match c {
                    Checked::Refused(e) => e,
                    Checked::Damaged(w) => SpoolError::Sqlite(path.display().to_string(), w),
                })?;
                Ok(Opened {
                    spool,
                    moved_aside: Some((aside, why)),
                })
            }
        }
    }

    /// Opens an existing spool for the CLI: never creates or moves a file.
    pub fn open_existing(path: &Path) -> Result<Self, SpoolError> {
        if !path.exists() {
            return Err(SpoolError::Missing(path.display().to_string()));
        }
        Self::open_checked(path, false).map_err(|c| match c {
            Checked::Refused(e) => e,
            Checked::Damaged(w) => SpoolError::Sqlite(path.display().to_string(), w),
        })
    }

    fn open_checked(path: &Path, create: bool) -> Result<Self, Checked> {
        let err = |e: rusqlite::Error| classify(path, e);
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let (version, app) = schema_ids(&conn).map_err(err)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(err)?;
        let shown = path.display().to_string();
        if version > SCHEMA_VERSION {
            return Err(Checked::Refused(SpoolError::FutureVersion(shown, version)));
        }
        if tables > 0 && app != APPLICATION_ID {
            return Err(Checked::Refused(SpoolError::Foreign(shown)));
        }
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(Checked::Damaged(format!("integrity_check: {check}")));
        }
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={WAL_PAGES}; {SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; PRAGMA application_id={APPLICATION_ID};"
        ))
        .map_err(err)?;
        Self::from_connection(conn, path).map_err(err)
    }

    /// The spool over an open, checked connection, with its totals read from the file.
    fn from_connection(conn: Connection, path: &Path) -> rusqlite::Result<Self> {
        let (messages, bytes): (i64, i64) = conn.query_row(
            "SELECT count(*), coalesce(sum(size), 0) FROM spool",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut reserve = path.as_os_str().to_owned();
        reserve.push(".reserve");
        Ok(Self {
            conn,
            path: path.to_path_buf(),
            reserve: PathBuf::from(reserve),
            paused: false,
            messages: u64::try_from(messages).unwrap_or(0),
            bytes: u64::try_from(bytes).unwrap_or(0),
        })
    }

    fn err(&self, e: rusqlite::Error) -> SpoolError {
        SpoolError::sqlite(&self.path, e)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn messages(&self) -> u64 {
        self.messages
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Stores a batch in one transaction. With `refuse_new`, stores the prefix that fits; with
    /// `drop_oldest`, removes the oldest messages until each new one fits.
    pub fn insert(
        &mut self,
        batch: &[NewMessage],
        now_ms: i64,
        max_bytes: u64,
        on_full: OnFull,
    ) -> Result<Inserted, SpoolError> {
        let tx = self
            .conn
            .transaction()
            .map_err(|e| SpoolError::sqlite(&self.path, e))?;
        let mut out = Inserted::default();
        let (mut messages, mut bytes) = (self.messages, self.bytes);
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO spool (topic, payload, qos, retain, stored_ms, size) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(|e| SpoolError::sqlite(&self.path, e))?;
            let mut oldest = tx
                .prepare_cached(
                    "DELETE FROM spool WHERE id IN (SELECT id FROM spool ORDER BY id LIMIT 1) RETURNING size",
                )
                .map_err(|e| SpoolError::sqlite(&self.path, e))?;
            for m in batch {
                let size = m.size();
                if size > max_bytes {
                    // Never fits: dropped rather than holding the local broker back forever.
                    out.dropped += 1;
                    out.stored += 1;
                    continue;
                }
                while bytes + size > max_bytes {
                    if on_full == OnFull::RefuseNew {
                        break;
                    }
                    let freed: Vec<i64> = oldest
                        .query_map([], |r| r.get(0))
                        .and_then(|rows| rows.collect())
                        .map_err(|e| SpoolError::sqlite(&self.path, e))?;
                    if freed.is_empty() {
                        break;
                    }
                    out.dropped += freed.len() as u64;
                    messages -= freed.len() as u64;
                    bytes -= freed.iter().map(|s| *s as u64).sum::<u64>();
                }
                if bytes + size > max_bytes {
                    break;
                }
                ins.execute(params![
                    m.topic,
                    &m.payload[..],
                    m.qos,
                    m.retain,
                    now_ms,
                    size as i64
                ])
                .map_err(|e| SpoolError::sqlite(&self.path, e))?;
                messages += 1;
                bytes += size;
                out.stored += 1;
            }
        }
        tx.commit().map_err(|e| SpoolError::sqlite(&self.path, e))?;
        self.messages = messages;
        self.bytes = bytes;
        Ok(out)
    }

    /// Stores a batch; on a full disk, gives the WAL's space back when the database has room
    /// for it (a checkpoint that truncates it); the reserve stays for removing sent messages.
    pub fn insert_or_reclaim(
        &mut self,
        batch: &[NewMessage],
        now_ms: i64,
        max_bytes: u64,
        on_full: OnFull,
    ) -> Result<Inserted, SpoolError> {
        if self.paused {
            // Writing again as soon as a few pages are free would eat the space that lets sent
            // messages be removed (new pages grow the file, the WAL cannot be checkpointed):
            // wait until the spool is empty, give its pages back to the disk (VACUUM of an
            // empty database is cheap), and put the reserve back.
            if self.messages > 0 {
                return Err(SpoolError::DiskFull(
                    self.path.display().to_string(),
                    "waiting for sent messages to make room".into(),
                ));
            }
            let _ = self
                .conn
                .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
            self.paused = false;
            self.ensure_reserve();
        }
        let r = self.insert(batch, now_ms, max_bytes, on_full);
        if let Err(SpoolError::DiskFull(..)) = &r {
            self.paused = true;
            let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
        }
        r
    }

    /// Up to `limit` messages with `after < id <= upto`, oldest first.
    pub fn fetch(&self, after: i64, upto: i64, limit: usize) -> Result<Vec<Message>, SpoolError> {
        let mut q = self
            .conn
            .prepare_cached(
                "SELECT id, topic, payload, qos, retain, stored_ms, attempts FROM spool WHERE id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        let rows = q
            .query_map(params![after, upto, limit as i64], row_message)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        rows.map_err(|e| self.err(e))
    }

    /// Notes that messages `first..=last` were handed to the remote (for redelivery counts).
    pub fn mark_sent(&self, first: i64, last: i64) -> Result<(), SpoolError> {
        self.conn
            .prepare_cached("UPDATE spool SET attempts = attempts + 1 WHERE id BETWEEN ?1 AND ?2")
            .and_then(|mut s| s.execute(params![first, last]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Writes the disk-full reserve when it is missing and there is room; true when it exists.
    pub fn ensure_reserve(&self) -> bool {
        if self.reserve.exists() {
            return true;
        }
        if std::fs::write(&self.reserve, vec![0u8; RESERVE]).is_ok() {
            return true;
        }
        let _ = std::fs::remove_file(&self.reserve);
        false
    }

    /// Gives the reserve back and truncates the WAL into the database.
    fn reclaim(&mut self) {
        // The space is for removals: new messages wait until the spool is empty again.
        self.paused = true;
        let _ = std::fs::remove_file(&self.reserve);
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    /// Removes messages (acknowledged, denied or expired); returns how many were still there.
    /// On a full disk the reserve is given back first, so this still works.
    pub fn delete(&mut self, ids: &[i64]) -> Result<u64, SpoolError> {
        match self.delete_once(ids) {
            Err(SpoolError::DiskFull(..)) => {
                self.reclaim();
                self.delete_once(ids)
            }
            other => other,
        }
    }

    fn delete_once(&mut self, ids: &[i64]) -> Result<u64, SpoolError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let tx = self
            .conn
            .transaction()
            .map_err(|e| SpoolError::sqlite(&self.path, e))?;
        let (mut n, mut freed) = (0u64, 0u64);
        {
            let mut del = tx
                .prepare_cached("DELETE FROM spool WHERE id = ?1 RETURNING size")
                .map_err(|e| SpoolError::sqlite(&self.path, e))?;
            for id in ids {
                let size: Option<i64> = del
                    .query_row([id], |r| r.get(0))
                    .optional()
                    .map_err(|e| SpoolError::sqlite(&self.path, e))?;
                if let Some(s) = size {
                    n += 1;
                    freed += s as u64;
                }
            }
        }
        tx.commit().map_err(|e| SpoolError::sqlite(&self.path, e))?;
        self.messages = self.messages.saturating_sub(n);
        self.bytes = self.bytes.saturating_sub(freed);
        Ok(n)
    }

    /// Removes messages stored before `cutoff_ms`; returns how many.
    pub fn expire(&mut self, cutoff_ms: i64) -> Result<u64, SpoolError> {
        // Messages are stored in time order, so the expired ones are the oldest ids.
        let ids: Vec<i64> = {
            let mut q = self
                .conn
                .prepare_cached(
                    "SELECT id FROM spool WHERE id <= coalesce((SELECT max(id) FROM (SELECT id, stored_ms FROM spool ORDER BY id LIMIT 10000) WHERE stored_ms < ?1), 0) ORDER BY id",
                )
                .map_err(|e| self.err(e))?;
            let rows = q
                .query_map([cutoff_ms], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<i64>, _>>());
            rows.map_err(|e| self.err(e))?
        };
        self.delete(&ids)
    }

    /// The newest id (0 for an empty spool).
    pub fn max_id(&self) -> Result<i64, SpoolError> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) FROM spool", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Counts, and the time of the oldest and newest message.
    pub fn stats(&self) -> Result<Stats, SpoolError> {
        let first = |order: &str| -> Result<Option<i64>, SpoolError> {
            self.conn
                .query_row(
                    &format!("SELECT stored_ms FROM spool ORDER BY id {order} LIMIT 1"),
                    [],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))
        };
        Ok(Stats {
            messages: self.messages,
            bytes: self.bytes,
            oldest_ms: first("ASC")?,
            newest_ms: first("DESC")?,
        })
    }

    /// Reads the counts again from the file (another process, `sluice spool purge`, may have
    /// removed messages).
    pub fn recount(&mut self) -> Result<(), SpoolError> {
        let (m, b): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), coalesce(sum(size), 0) FROM spool",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        self.messages = u64::try_from(m).unwrap_or(0);
        self.bytes = u64::try_from(b).unwrap_or(0);
        Ok(())
    }

    /// Messages whose topic matches `filter` (all without one), oldest first, `limit` at most.
    pub fn list(&self, filter: Option<&str>, limit: usize) -> Result<Vec<Message>, SpoolError> {
        let mut out = Vec::new();
        let mut after = 0;
        while out.len() < limit {
            let page = self.fetch(after, i64::MAX, 1000)?;
            let Some(last) = page.last() else { break };
            after = last.id;
            out.extend(
                page.into_iter()
                    .filter(|m| filter.is_none_or(|f| topic_matches(f, &m.topic))),
            );
        }
        out.truncate(limit);
        Ok(out)
    }

    /// Removes every message whose topic matches `filter`; returns how many.
    pub fn purge(&mut self, filter: &str) -> Result<u64, SpoolError> {
        let ids: Vec<i64> = self
            .list(Some(filter), usize::MAX)?
            .into_iter()
            .map(|m| m.id)
            .collect();
        self.delete(&ids)
    }
}

fn row_message(r: &rusqlite::Row<'_>) -> rusqlite::Result<Message> {
    Ok(Message {
        id: r.get(0)?,
        topic: r.get(1)?,
        payload: r.get(2)?,
        qos: r.get(3)?,
        retain: r.get(4)?,
        stored_ms: r.get(5)?,
        attempts: r.get(6)?,
    })
}

enum Checked {
    Refused(SpoolError),
    Damaged(String),
}

fn classify(path: &Path, e: rusqlite::Error) -> Checked {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
            Checked::Damaged(e.to_string())
        }
        _ => Checked::Refused(SpoolError::sqlite(path, e)),
    }
}

/// Renames a damaged spool (and its WAL, which must not be replayed into a new file).
fn move_aside(path: &Path) -> Result<PathBuf, SpoolError> {
    let stamp = crate::telemetry::decision_log::now_ms() / 1000;
    let with = |suffix: &str| {
        let mut s = path.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let aside = with(&format!(".corrupt-{stamp}"));
    std::fs::rename(path, &aside)
        .map_err(|e| SpoolError::MoveAside(path.display().to_string(), e.to_string()))?;
    for ext in ["-wal", "-shm"] {
        let side = with(ext);
        if side.exists() {
            let _ = std::fs::rename(&side, with(&format!(".corrupt-{stamp}{ext}")));
        }
    }
    Ok(aside)
}

/// The file's `user_version` (our schema version) and `application_id` (ours or another
/// program's), read before anything else is trusted.
fn schema_ids(conn: &Connection) -> rusqlite::Result<(i64, i64)> {
    let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let app = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    Ok((version, app))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, n: usize) -> NewMessage {
        NewMessage {
            topic: topic.into(),
            payload: bytes::Bytes::from(vec![b'x'; n]),
            qos: 1,
            retain: false,
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("sluice-spool-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::create_dir_all(&p);
        p.join("s.db")
    }

    #[test]
    fn limits_drop_the_oldest_or_refuse_the_new() -> Result<(), SpoolError> {
        let path = temp("limits");
        let mut s = Spool::open(&path)?.spool;
        let batch: Vec<_> = (0..10).map(|_| msg("t", 96)).collect();
        let r = s.insert(&batch, 1, 500, OnFull::RefuseNew)?;
        assert_eq!((r.stored, r.dropped, s.messages()), (5, 0, 5));
        let r = s.insert(&batch[..3], 2, 500, OnFull::DropOldest)?;
        assert_eq!((r.stored, s.messages(), s.bytes()), (3, 5, 485));
        assert_eq!(r.dropped, 3);
        let first = s.fetch(0, i64::MAX, 1)?;
        assert_eq!(first.first().map(|m| m.stored_ms), Some(1));
        assert_eq!(s.expire(2)?, 2);
        assert_eq!(s.messages(), 3);
        drop(s);
        let _ = std::fs::remove_dir_all(path.parent().unwrap_or(&path));
        Ok(())
    }
}
