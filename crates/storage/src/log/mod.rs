//! The transaction log: ZooKeeper's `FileTxnLog` format (persistence spec §4–5).
//!
//! [`record`] owns the bytes of one record, [`writer`] appending, group commit and
//! preallocation, [`reader`] iterating and the end-of-log / corruption rules.

pub mod reader;
pub mod record;
pub mod writer;

pub use reader::{log_files, read_log, read_log_file, LogEntry, LogReader, ReadOptions};
pub use record::TxnDigest;
pub use writer::{padded_size, LogOptions, SyncStats, TxnLog, DEFAULT_PREALLOC};
