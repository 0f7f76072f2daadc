//! Durable state in Apache ZooKeeper's own on-disk format.
//!
//! Owns the transaction log (`version-2/log.<zxid>`), snapshots (`version-2/snapshot.<zxid>`),
//! recovery (newest valid snapshot plus log replay through `DataTree::apply`) and purging.
//! Must not know about connections, sessions' timing or the network: it stores and
//! restores transactions, the tree and the session table.
