//! Where files live and what their names mean (persistence spec §1).
//!
//! Owns the `version-2` subdirectory, the `log.<hex zxid>` / `snapshot.<hex zxid>` names,
//! listing them in zxid order, and ZooKeeper's check that dataDir and dataLogDir were
//! not swapped. Names are parsed exactly as `Util.getZxidFromName` does, so a file
//! ZooKeeper would ignore is ignored here too.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The only layout version ZooKeeper has ever written.
pub const VERSION_DIR: &str = "version-2";
pub const LOG_PREFIX: &str = "log";
pub const SNAPSHOT_PREFIX: &str = "snapshot";

/// `<dir>/version-2`.
pub fn version_dir(dir: &Path) -> PathBuf {
    dir.join(VERSION_DIR)
}

/// `log.<hex>`: lower-case hex without leading zeros, like `Long.toHexString` (which
/// prints negative numbers as their two's complement).
pub fn log_name(zxid: i64) -> String {
    format!("{LOG_PREFIX}.{:x}", zxid as u64)
}

pub fn snapshot_name(zxid: i64) -> String {
    format!("{SNAPSHOT_PREFIX}.{:x}", zxid as u64)
}

/// The zxid in a file name, or `None` where ZooKeeper gets -1: the name split at dots
/// must start with `prefix` and its second part must be hex (`Long.parseLong(_, 16)`,
/// which accepts a sign and at most 63 bits).
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != prefix {
        return None;
    }
    let hex = parts.next()?;
    let (neg, digits) = match hex.as_bytes().first()? {
        b'-' => (true, &hex[1..]),
        b'+' => (false, &hex[1..]),
        _ => (false, hex),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = i64::from_str_radix(digits, 16).ok()?;
    Some(if neg { -v } else { v })
}

/// A file of one kind, with the zxid of its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    pub zxid: i64,
    pub path: PathBuf,
}

/// Files in `vdir` (a `version-2` directory) whose name starts with `prefix.` and parses
/// to a zxid, ascending by zxid (never lexically: `log.a` comes after `log.9`). A
/// missing directory lists as empty.
pub fn list(vdir: &Path, prefix: &str) -> Result<Vec<NamedFile>> {
    let entries = match fs::read_dir(vdir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", vdir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", vdir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(zxid) = zxid_from_name(name, prefix) {
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                out.push(NamedFile {
                    zxid,
                    path: entry.path(),
                });
            }
        }
    }
    // Ties (e.g. `snapshot.5` and `snapshot.5.gz`) are broken by name for determinism.
    out.sort_by(|a, b| a.zxid.cmp(&b.zxid).then_with(|| a.path.cmp(&b.path)));
    Ok(out)
}

/// Whether `vdir` holds any file whose name starts with `prefix.` (ZooKeeper's
/// `isLogFileName`/`isSnapshotFileName`: a prefix test, parseable or not).
fn has_files_with_prefix(vdir: &Path, prefix: &str) -> Result<bool> {
    let entries = match fs::read_dir(vdir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("list", vdir, e)),
    };
    let dotted = format!("{prefix}.");
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", vdir, e))?;
        if entry.file_name().to_string_lossy().starts_with(&dotted) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Creates `<dir>/version-2` for both directories and, when they differ, refuses a log
/// directory holding snapshots or a snapshot directory holding logs (ZOOKEEPER-2967):
/// swapped settings would otherwise start an empty database next to the real one.
/// Returns (snapshot version dir, log version dir).
pub fn prepare_dirs(data_dir: &Path, log_dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let snap_v = version_dir(data_dir);
    let log_v = version_dir(log_dir);
    for d in [&snap_v, &log_v] {
        fs::create_dir_all(d).map_err(|e| Error::io("create directory", d, e))?;
    }
    check_mixup(&snap_v, &log_v)?;
    Ok((snap_v, log_v))
}

/// The mix-up check alone, on existing `version-2` directories.
pub fn check_mixup(snap_v: &Path, log_v: &Path) -> Result<()> {
    if same_dir(snap_v, log_v) {
        return Ok(());
    }
    if has_files_with_prefix(log_v, SNAPSHOT_PREFIX)? {
        return Err(Error::DirectoryMixup {
            dir: log_v.to_path_buf(),
            found: "snapshot",
        });
    }
    if has_files_with_prefix(snap_v, LOG_PREFIX)? {
        return Err(Error::DirectoryMixup {
            dir: snap_v.to_path_buf(),
            found: "log",
        });
    }
    Ok(())
}

/// ZooKeeper compares the configured paths; we also see through symlinks and `..`.
fn same_dir(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_like_java() {
        assert_eq!(log_name(0x5_0000_001a), "log.50000001a");
        assert_eq!(snapshot_name(0), "snapshot.0");
        assert_eq!(zxid_from_name("log.50000001a", "log"), Some(0x5_0000_001a));
        assert_eq!(zxid_from_name("snapshot.1f.gz", "snapshot"), Some(0x1f));
        assert_eq!(zxid_from_name("snapshot.1F", "snapshot"), Some(0x1f));
        assert_eq!(zxid_from_name("log.xyz", "log"), None);
        assert_eq!(zxid_from_name("log", "log"), None);
        assert_eq!(zxid_from_name("logx.1", "log"), None);
        assert_eq!(zxid_from_name("snapshot.1", "log"), None);
        assert_eq!(zxid_from_name(".snapshot.1.tmp", "snapshot"), None);
        // Long.parseLong rejects 64-bit values.
        assert_eq!(zxid_from_name("log.ffffffffffffffff", "log"), None);
    }

    #[test]
    fn listing_is_numeric() {
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for n in ["log.a", "log.9", "log.100", "log.zz", "snapshot.3", "other"] {
            fs::write(d.path().join(n), b"").unwrap_or_else(|e| panic!("{e}"));
        }
        let l = list(d.path(), LOG_PREFIX).unwrap_or_else(|e| panic!("{e}"));
        let z: Vec<i64> = l.iter().map(|f| f.zxid).collect();
        assert_eq!(z, vec![9, 10, 256]);
    }
}
