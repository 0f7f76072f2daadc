//! Durable state in Apache ZooKeeper's own on-disk format.
//!
//! Owns the transaction log (`version-2/log.<zxid>`), snapshots (`version-2/snapshot.<zxid>`),
//! recovery (newest valid snapshot plus log replay through `DataTree::apply`) and purging.
//! Must not know about connections, sessions' timing or the network: it stores and
//! restores transactions, the tree and the session table.
//!
//! Map:
//! - [`layout`]: directories, file names, the dataDir/dataLogDir mix-up check.
//! - [`log`]: the txn log writer (group commit, preallocation, failure rule) and reader
//!   (end-of-log and corruption rules).
//! - [`snapshot`]: serializing a tree (at once, or in slices with [`SnapshotBuilder`]
//!   while transactions continue), writing it atomically, loading it back.
//! - [`recover()`], [`purge()`], [`inspect::describe`].
//! - [`disk`] / [`fault`]: the file surface the writer uses and a faulty one for tests.
//!
//! Both directories are given as configured (`dataDir`, `dataLogDir`); the crate adds
//! `version-2` itself, as ZooKeeper does.

pub mod digest;
pub mod disk;
pub mod error;
pub mod fault;
pub mod inspect;
pub mod layout;
pub mod log;
pub mod purge;
pub mod recover;
pub mod snapshot;

pub use error::{Error, Result};
pub use log::{read_log, LogEntry, LogOptions, ReadOptions, SyncStats, TxnDigest, TxnLog};
pub use purge::purge;
pub use recover::{recover, DigestCheck, RecoverOptions, Recovered};
pub use snapshot::{load_snapshot, serialize_snapshot, write_snapshot, SnapshotBuilder};
