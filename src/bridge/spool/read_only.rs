//! Opening a spool only to read it (`sluice spool stats` and `ls`): `SQLITE_OPEN_READ_ONLY`, no
//! schema, no pragma that writes, no integrity check, so it works on a full disk and beside the
//! running bridge that owns the file (WAL readers never block its writer).
//!
//! Not here: the bridge's own read-write open (spool.rs).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{APPLICATION_ID, SCHEMA_VERSION, Spool, SpoolError};

impl Spool {
    /// Opens an existing spool read-only. A WAL-mode file whose `-shm` cannot be made (a full
    /// disk after the bridge stopped) is read as immutable when no `-wal` holds newer pages.
    pub fn open_read_only(path: &Path) -> Result<Self, SpoolError> {
        if !path.exists() {
            return Err(SpoolError::Missing(path.display().to_string()));
        }
        let conn = match read_only(path, false) {
            Ok(c) => c,
            Err(e) if !has_wal(path) => read_only(path, true).map_err(|_| e)?,
            Err(e) => return Err(e),
        };
        let err = |e| SpoolError::sqlite(path, e);
        let (version, app) = super::schema_ids(&conn).map_err(err)?;
        let shown = path.display().to_string();
        if version > SCHEMA_VERSION {
            return Err(SpoolError::FutureVersion(shown, version));
        }
        if app != APPLICATION_ID || version < 1 {
            return Err(SpoolError::Foreign(shown));
        }
        Spool::from_connection(conn, path).map_err(err)
    }
}

fn read_only(path: &Path, immutable: bool) -> Result<Connection, SpoolError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'?' | b'#' | b'%' => uri.push_str(&format!("%{b:02X}")),
            _ => uri.push(char::from(*b)),
        }
    }
    if immutable {
        uri.push_str("?immutable=1");
    }
    let conn = Connection::open_with_flags(&uri, flags).map_err(|e| SpoolError::sqlite(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| SpoolError::sqlite(path, e))?;
    // The open is lazy: read the header now so that an unusable file fails here.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(|e| SpoolError::sqlite(path, e))?;
    Ok(conn)
}

/// A `-wal` with content: pages an immutable read would miss.
fn has_wal(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0)
}
