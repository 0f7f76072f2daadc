//! Deleting old snapshots and logs: ZooKeeper's `PurgeTxnLog` (persistence spec §9.1).
//!
//! Owns what may go: everything older than the oldest of the newest `retain_count`
//! valid snapshots, except the logs still needed to replay from that snapshot (the
//! newest log starting at or before it, and every later one).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::{self, LOG_PREFIX, SNAPSHOT_PREFIX};
use crate::snapshot;

/// ZooKeeper refuses to keep fewer.
pub const MIN_RETAIN_COUNT: usize = 3;

/// Removes old files; returns the paths removed. `retain_count` below 3 is an error, as
/// in ZooKeeper. With no valid snapshot nothing is removed.
pub fn purge(data_dir: &Path, log_dir: &Path, retain_count: usize) -> Result<Vec<PathBuf>> {
    if retain_count < MIN_RETAIN_COUNT {
        return Err(Error::Invalid(format!(
            "purge retain count {retain_count} should be greater than or equal to {MIN_RETAIN_COUNT}"
        )));
    }
    let (snap_v, log_v) = layout::prepare_dirs(data_dir, log_dir)?;
    let keep = snapshot::valid_snapshots(data_dir, retain_count)?;
    let Some(oldest) = keep.last() else {
        return Ok(Vec::new());
    };
    let least = oldest.zxid;

    // FileTxnLog.getLogFiles(least): the newest log starting at or before `least` and all
    // later ones are needed for replay.
    let logs = layout::list(&log_v, LOG_PREFIX)?;
    let needed_from = logs
        .iter()
        .filter(|l| l.zxid <= least)
        .map(|l| l.zxid)
        .max()
        .unwrap_or(0);

    let mut doomed: Vec<PathBuf> = logs
        .into_iter()
        .filter(|l| l.zxid < needed_from && l.zxid < least)
        .map(|l| l.path)
        .collect();
    doomed.extend(
        layout::list(&snap_v, SNAPSHOT_PREFIX)?
            .into_iter()
            .filter(|s| s.zxid < least)
            .map(|s| s.path),
    );
    let mut removed = Vec::new();
    for f in doomed {
        tracing::info!(file = %f.display(), "removing file");
        match fs::remove_file(&f) {
            Ok(()) => removed.push(f),
            // ZooKeeper reports and goes on; so do we.
            Err(e) => tracing::warn!(file = %f.display(), error = %e, "failed to remove"),
        }
    }
    Ok(removed)
}
