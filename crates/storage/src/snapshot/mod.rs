//! Snapshots in ZooKeeper's format (`FileSnap`, `SnapStream`, `SerializeUtils`;
//! persistence spec §7).
//!
//! [`write`] owns serialization and the atomic file write, [`incremental`] the walk in
//! slices the server interleaves with requests (fuzzy snapshots), [`read`] the validity
//! checks, parsing and loading into a tree.

pub mod incremental;
pub mod read;
pub mod write;

use std::path::{Path, PathBuf};

pub use incremental::SnapshotBuilder;
pub use read::{
    is_valid_snapshot, load_snapshot, load_snapshot_full, parse_snapshot, read_snapshot_bytes,
    LoadedSnapshot, RawNode, SnapshotMeta, ZxidDigest,
};
pub use write::{serialize_snapshot, write_snapshot, OPEN_ACL_ID, SNAP_MAGIC};

use crate::error::Result;
use crate::layout::{self, NamedFile, SNAPSHOT_PREFIX};

/// Every `snapshot.*` file of `<data_dir>/version-2` whose name parses, newest first.
pub fn snapshot_files(data_dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(list_newest_first(&layout::version_dir(data_dir))?
        .into_iter()
        .map(|f| f.path)
        .collect())
}

/// Up to `n` snapshots passing the cheap validity check, newest first
/// (`FileSnap.findNValidSnapshots`).
pub fn valid_snapshots(data_dir: &Path, n: usize) -> Result<Vec<NamedFile>> {
    Ok(list_newest_first(&layout::version_dir(data_dir))?
        .into_iter()
        .filter(|f| is_valid_snapshot(&f.path))
        .take(n)
        .collect())
}

fn list_newest_first(vdir: &Path) -> Result<Vec<NamedFile>> {
    let mut v = layout::list(vdir, SNAPSHOT_PREFIX)?;
    v.reverse();
    Ok(v)
}
