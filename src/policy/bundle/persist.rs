//! Keeping the last activated bundle on disk for restarts without the bundle server: written
//! atomically (temporary file, fsync, rename, fsync of the folder), read back and verified again
//! at start, with the ETag that came with it.
//!
//! Not here: deciding when to persist or load (`source.rs`).

use std::io::Write;
use std::path::Path;

use super::archive::{Bundle, read_bundle};
use super::error::BundleError;
use super::signature::VerificationKey;

const PERSISTED_BUNDLE: &str = "bundle.tar.gz";
const PERSISTED_META: &str = "bundle.meta";

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the folder.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

pub(super) fn persist(
    dir: &Path,
    bytes: &[u8],
    revision: &str,
    etag: Option<&str>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomic(&dir.join(PERSISTED_BUNDLE), bytes)?;
    let meta = serde_json::json!({"revision": revision, "etag": etag});
    write_atomic(&dir.join(PERSISTED_META), meta.to_string().as_bytes())
}

/// The persisted bundle, verified again (the key may have changed since), with its ETag when
/// the metadata belongs to it.
pub(super) fn load_persisted(
    dir: &Path,
    max_size: u64,
    key: Option<&VerificationKey>,
    rego_v0: bool,
) -> Result<Option<(Bundle, Option<String>)>, BundleError> {
    let file = dir.join(PERSISTED_BUNDLE);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(BundleError::Disk(format!(
                "persisted bundle {}: {e}",
                file.display()
            )));
        }
    };
    let bundle = read_bundle(&bytes, max_size, key, rego_v0)
        .map_err(|e| BundleError::Disk(format!("persisted bundle {}: {e}", file.display())))?;
    let etag = std::fs::read(dir.join(PERSISTED_META))
        .ok()
        .and_then(|m| serde_json::from_slice::<serde_json::Value>(&m).ok())
        .filter(|m| m["revision"] == bundle.revision.as_str())
        .and_then(|m| m["etag"].as_str().map(str::to_string));
    Ok(Some((bundle, etag)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("sluice-persist-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let f = dir.join("b");
        assert!(write_atomic(&f, b"one").is_ok());
        assert!(write_atomic(&f, b"two").is_ok());
        assert_eq!(std::fs::read(&f).ok(), Some(b"two".to_vec()));
        let names: Vec<_> = std::fs::read_dir(&dir)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
