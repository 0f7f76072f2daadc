//! Startup recovery: ZooKeeper's `FileTxnSnapLog.restore` plus the dead-session cleanup
//! of `ZooKeeperServer.loadData` (persistence spec §8).
//!
//! Owns the choice of snapshot (newest that loads, falling back to older ones), replay
//! of every later logged transaction through the tolerant `DataTree::apply`, the session
//! table, and the refusals ZooKeeper makes (logs without snapshots, swapped dirs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oxkeeper_core::tree::DataTree;
use oxkeeper_proto::codes::op;
use oxkeeper_proto::txn::CloseSessionTxn;
use oxkeeper_proto::{Txn, TxnHeader};

use crate::digest::{tree_digest, DIGEST_VERSION};
use crate::error::{Error, Result};
use crate::layout;
use crate::log::{log_files, read_log, ReadOptions};
use crate::snapshot::{self, load_snapshot_full, serialize_snapshot, write_snapshot, ZxidDigest};

/// ZooKeeper tries at most this many snapshots.
const MAX_SNAPSHOT_CANDIDATES: usize = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecoverOptions {
    /// Cut the log at a corrupt record instead of refusing to start (see
    /// [`ReadOptions::truncate_at_corruption`]).
    pub truncate_at_corruption: bool,
    /// `zookeeper.snapshot.trust.empty`: with logs but no snapshot, replay the logs
    /// from an empty tree instead of refusing.
    pub trust_empty_snapshot: bool,
}

/// How the snapshot's stored digest compared with the recovered tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestCheck {
    /// No usable digest (none stored, older than the snapshot, other version).
    NotChecked,
    Matched,
    /// ZooKeeper only logs this; so do we. `stored` vs `computed` at `zxid`.
    Mismatched {
        zxid: i64,
        stored: i64,
        computed: i64,
    },
    /// The log ended before the digest's zxid (a fuzzy snapshot whose log is short).
    NotReached {
        zxid: i64,
    },
}

/// The state to resume from.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The tree; its last processed zxid equals `last_zxid`.
    pub tree: DataTree,
    /// Global sessions (id, timeout ms), ascending by id: the snapshot's table with
    /// every later createSession added and closeSession removed.
    pub sessions: Vec<(i64, i32)>,
    /// The highest zxid recovered (never below the snapshot's): the next transaction
    /// gets `last_zxid + 1`.
    pub last_zxid: i64,
    /// The snapshot used, if any.
    pub snapshot: Option<PathBuf>,
    pub snapshot_zxid: i64,
    /// Newer snapshots that failed to load, with why.
    pub skipped_snapshots: Vec<(PathBuf, String)>,
    pub txns_replayed: usize,
    /// Sessions that owned ephemerals but were not in the table: their nodes were
    /// deleted (no transaction logged), as ZooKeeper does at startup.
    pub dead_sessions: Vec<i64>,
    pub digest: DigestCheck,
    /// `snapshot.0` written because the directories were empty (ZooKeeper does the
    /// same, so a later start never finds logs without a snapshot).
    pub created_snapshot: Option<PathBuf>,
}

/// Recovers from `<data_dir>/version-2` (snapshots) and `<log_dir>/version-2` (logs),
/// creating both if needed. See the module docs for the rules.
pub fn recover(data_dir: &Path, log_dir: &Path, options: RecoverOptions) -> Result<Recovered> {
    let (snap_v, _) = layout::prepare_dirs(data_dir, log_dir)?;
    // zkServer-initialize.sh's marker only allows an empty database, which we always
    // do (zookeeper.db.autocreate); ZooKeeper removes it at startup, so do we.
    let marker = log_dir.join("initialize");
    if marker.is_file() {
        std::fs::remove_file(&marker).map_err(|e| Error::io("delete", &marker, e))?;
    }
    let candidates = snapshot::valid_snapshots(data_dir, MAX_SNAPSHOT_CANDIDATES)?;
    let mut skipped = Vec::new();
    let mut loaded = None;
    for c in &candidates {
        match load_snapshot_full(&c.path) {
            Ok(l) => {
                tracing::info!(file = %c.path.display(), "loaded snapshot");
                loaded = Some((c.path.clone(), l));
                break;
            }
            Err(e) => {
                tracing::warn!(file = %c.path.display(), error = %e, "cannot load snapshot; trying an older one");
                skipped.push((c.path.clone(), e.to_string()));
            }
        }
    }

    let mut created_snapshot = None;
    let (mut tree, mut sessions, snapshot_path, snapshot_zxid, stored_digest, loaded_digest) =
        match loaded {
            Some((path, l)) => {
                let sessions: BTreeMap<i64, i32> = l.sessions.iter().copied().collect();
                (
                    l.tree,
                    sessions,
                    Some(path),
                    l.zxid,
                    l.meta.digest,
                    l.meta.computed_digest,
                )
            }
            None if !candidates.is_empty() => {
                return Err(Error::NoValidSnapshot {
                    dir: snap_v,
                    candidates: candidates.len(),
                    last_error: skipped.last().map(|(_, e)| e.clone()).unwrap_or_default(),
                });
            }
            None => {
                if !log_files(log_dir)?.is_empty() {
                    if !options.trust_empty_snapshot {
                        return Err(Error::LogsWithoutSnapshot {
                            snap_dir: snap_v,
                            log_dir: layout::version_dir(log_dir),
                        });
                    }
                    tracing::warn!(
                    "no snapshot found, but there are log entries; replaying from zero as asked"
                );
                } else {
                    let tree = DataTree::new();
                    let bytes = serialize_snapshot(&tree, &[]);
                    created_snapshot = Some(write_snapshot(data_dir, 0, &bytes)?);
                }
                (DataTree::new(), BTreeMap::new(), None, 0, None, 0)
            }
        };

    // Replay. A digest stored for a later zxid (fuzzy snapshot) is checked when the
    // replay reaches it; one for the snapshot's own zxid right away.
    let mut pending_digest = stored_digest
        .filter(|d| d.version == DIGEST_VERSION && d.zxid >= snapshot_zxid && d.zxid > 0);
    let mut digest = DigestCheck::NotChecked;
    if let Some(d) = pending_digest.filter(|d| d.zxid == snapshot_zxid) {
        // Computed while parsing: no second walk of the tree.
        digest = digest_verdict(d, loaded_digest);
        pending_digest = None;
    }
    let read_opts = ReadOptions {
        truncate_at_corruption: options.truncate_at_corruption,
        read_only: false,
    };
    let mut highest = snapshot_zxid;
    let mut replayed = 0usize;
    for entry in read_log(log_dir, snapshot_zxid + 1, read_opts)? {
        let e = entry?;
        if replayed == 0
            && e.header.zxid > snapshot_zxid + 1
            && snapshot_zxid >> 32 == e.header.zxid >> 32
        {
            tracing::warn!(
                "first logged txn 0x{:x} leaves a gap after snapshot 0x{:x}",
                e.header.zxid,
                snapshot_zxid
            );
        }
        if e.header.zxid < highest && highest != 0 {
            tracing::error!(
                "txn 0x{:x} in the log is below 0x{:x} already replayed",
                e.header.zxid,
                highest
            );
        } else {
            highest = e.header.zxid;
        }
        match &e.txn {
            Txn::CreateSession(t) => {
                sessions.insert(e.header.client_id, t.timeout_ms);
            }
            Txn::CloseSession(_) => {
                sessions.remove(&e.header.client_id);
            }
            _ => {}
        }
        // Errors (NONODE, NODEEXISTS on a fuzzy snapshot) are expected and ignored.
        tree.apply(&e.header, &e.txn);
        replayed += 1;
        if let Some(d) = pending_digest.filter(|d| d.zxid == e.header.zxid) {
            digest = compare_digest(&tree, d);
            pending_digest = None;
        }
    }
    if let Some(d) = pending_digest {
        tracing::warn!(
            "highest txn zxid 0x{:x} does not reach the snapshot digest zxid 0x{:x}",
            highest,
            d.zxid
        );
        digest = DigestCheck::NotReached { zxid: d.zxid };
    }
    let last_zxid = highest.max(snapshot_zxid);
    tree.set_last_processed_zxid(last_zxid.max(tree.last_processed_zxid()));
    let last_zxid = tree.last_processed_zxid();

    let dead: Vec<i64> = tree
        .ephemeral_sessions()
        .filter(|s| !sessions.contains_key(s))
        .collect();
    for &s in &dead {
        tracing::info!("deleting the ephemerals of dead session 0x{s:x}");
        let header = TxnHeader {
            client_id: s,
            cxid: 0,
            zxid: last_zxid,
            time: 0,
            txn_type: op::CLOSE_SESSION,
        };
        let paths = tree.ephemerals(s);
        tree.apply(
            &header,
            &Txn::CloseSession(CloseSessionTxn {
                paths_to_delete: paths,
            }),
        );
    }

    tracing::info!(
        snapshot = ?snapshot_path,
        txns = replayed,
        last_zxid = format_args!("0x{last_zxid:x}"),
        sessions = sessions.len(),
        "recovered"
    );
    Ok(Recovered {
        tree,
        sessions: sessions.into_iter().collect(),
        last_zxid,
        snapshot: snapshot_path,
        snapshot_zxid,
        skipped_snapshots: skipped,
        txns_replayed: replayed,
        dead_sessions: dead,
        digest,
        created_snapshot,
    })
}

fn compare_digest(tree: &DataTree, d: ZxidDigest) -> DigestCheck {
    digest_verdict(d, tree_digest(tree))
}

fn digest_verdict(d: ZxidDigest, computed: i64) -> DigestCheck {
    if computed == d.digest {
        DigestCheck::Matched
    } else {
        tracing::warn!(
            "tree digest mismatch at zxid 0x{:x}: snapshot says {:x}, tree gives {:x}",
            d.zxid,
            d.digest,
            computed
        );
        DigestCheck::Mismatched {
            zxid: d.zxid,
            stored: d.digest,
            computed,
        }
    }
}
