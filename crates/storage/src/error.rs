//! The one error type of the crate.
//!
//! Every variant that comes from disk names the file (and, for log records, the byte
//! offset), because the operator's next step — restore a backup, chop a log, move a
//! directory — depends on knowing exactly which bytes are bad.

use std::io;
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error while working on `path`.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A transaction log record that is neither valid nor a torn tail: there is more data
    /// after it, so stopping there would silently drop transactions.
    #[error("corrupt txn log {file} at byte {offset}: {reason}")]
    CorruptLog {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// A file that does not start like a ZooKeeper log or snapshot, or whose header
    /// cannot be read.
    #[error("{file}: {reason}")]
    BadHeader { file: PathBuf, reason: String },

    /// A snapshot that fails to parse or one of its seals.
    #[error("invalid snapshot {file}: {reason}")]
    BadSnapshot { file: PathBuf, reason: String },

    /// Snapshots exist but none of them loads (ZooKeeper: "Not able to find valid
    /// snapshots").
    #[error("none of the {candidates} snapshot(s) in {dir} could be loaded (newest failure: {last_error})")]
    NoValidSnapshot {
        dir: PathBuf,
        candidates: usize,
        last_error: String,
    },

    /// Logs without any snapshot: replaying them from an empty tree could silently lose
    /// state (ZooKeeper refuses too unless `zookeeper.snapshot.trust.empty`).
    #[error("no snapshot found in {snap_dir}, but there are log entries in {log_dir}; refusing to start (set trust_empty_snapshot to replay from zero)")]
    LogsWithoutSnapshot { snap_dir: PathBuf, log_dir: PathBuf },

    /// dataDir and dataLogDir differ and one holds the other's files (ZOOKEEPER-2967).
    #[error("{dir} contains {found} files; check whether dataDir and dataLogDir are swapped")]
    DirectoryMixup { dir: PathBuf, found: &'static str },

    /// The log writer hit an I/O error earlier; it accepts nothing more, because what it
    /// would acknowledge next might sit behind a hole.
    #[error("txn log is unusable after an earlier failure: {cause}")]
    LogFailed { cause: String },

    /// A caller error (bad retain count, oversized record, ...).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn bad_snapshot(file: &Path, reason: impl Into<String>) -> Error {
        Error::BadSnapshot {
            file: file.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// The raw OS error number, for callers that treat ENOSPC differently from EIO.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
