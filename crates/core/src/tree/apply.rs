//! Applying one logged transaction: ZooKeeper's `DataTree.processTxn`.
//!
//! The same code serves live commits and log replay, so it follows ZooKeeper's tolerant
//! rules (persistence spec 7.5): a failing op (NODEEXISTS, NONODE) is reported, not
//! fatal, and still raises the parent's cversion/pzxid where ZooKeeper does, so replaying
//! transactions over a fuzzy snapshot converges on the logged state.

use std::sync::Arc;

use oxkeeper_proto::codes::op;
use oxkeeper_proto::txn::{CreateContainerTxn, CreateTtlTxn, CreateTxn};
use oxkeeper_proto::{Acl, ErrorCode, MultiResult, Stat, Txn, TxnHeader};

use super::node::{ttl_owner, CONTAINER_EPHEMERAL_OWNER};
use super::{parent_of, DataTree};

/// A watch event a change fires, in firing order. `acl` is the ACL of the node the event
/// is about (the parent's for NodeChildrenChanged, the deleted node's for NodeDeleted),
/// kept because the caller must drop events the receiver may not READ (ZooKeeper 3.8.4+)
/// and a deleted node's ACL is gone from the tree by then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTrigger {
    pub path: String,
    pub event_type: i32,
    pub acl: Arc<[Acl]>,
}

impl WatchTrigger {
    pub(super) fn new(path: &str, event_type: i32, acl: Arc<[Acl]>) -> Self {
        WatchTrigger {
            path: path.to_owned(),
            event_type,
            acl,
        }
    }
}

/// The outcome of one op (`ProcessTxnResult` minus the header echo).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpResult {
    /// create, create2, createContainer, createTTL: the actual path and the new stat.
    Created { path: String, stat: Stat },
    /// delete, deleteContainer.
    Deleted,
    /// setData, setACL: the stat after the change.
    Stat(Stat),
    /// check (a multi sub-op; the tree verifies nothing, prep did).
    Checked,
    /// createSession, closeSession: nothing to report beyond success.
    Session,
    /// A logged ErrorTxn (its code, possibly 0 inside a failed multi) or an op that
    /// failed against the tree (only during replay).
    Error(i32),
}

impl OpResult {
    /// ZooKeeper's `err`: 0 unless this is an error.
    pub fn err(&self) -> i32 {
        match self {
            OpResult::Error(e) => *e,
            _ => 0,
        }
    }

    /// The multi reply entry for this result. `op_type` is the sub-op's opcode (the
    /// request's or the sub-txn's `txn_type()`): create answers `CreateResult(path)`,
    /// create2/createContainer/createTTL `CreateResult(path, stat)`.
    pub fn to_multi_result(&self, op_type: i32) -> MultiResult {
        match self {
            OpResult::Created { path, .. } if op_type == op::CREATE => {
                MultiResult::Create(path.clone())
            }
            OpResult::Created { path, stat } => MultiResult::Create2(path.clone(), stat.clone()),
            OpResult::Deleted => MultiResult::Delete,
            OpResult::Stat(stat) => MultiResult::SetData(stat.clone()),
            OpResult::Checked | OpResult::Session => MultiResult::Check,
            OpResult::Error(e) => MultiResult::Error(*e),
        }
    }
}

/// What [`DataTree::apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyResult {
    pub zxid: i64,
    /// The transaction's error: the op's, or for a multi the first non-zero sub-op error.
    pub err: i32,
    /// One entry per op: exactly one for a plain transaction, one per sub-op for a multi.
    pub results: Vec<OpResult>,
    /// Watch events to deliver, in order, all with this transaction's zxid.
    pub triggers: Vec<WatchTrigger>,
}

impl DataTree {
    /// Applies one transaction and advances `last_processed_zxid` (only upwards, and
    /// only after the whole transaction, so a snapshot never claims half a multi).
    ///
    /// A multi containing an ErrorTxn is a failed multi: nothing is applied, the ops
    /// before the failing one report 0, the failing one its code, later ones whatever was
    /// logged for them (ZooKeeper logs RUNTIMEINCONSISTENCY). A closeSession deletes its
    /// listed paths and then anything else the session (`header.client_id`) still owns.
    pub fn apply(&mut self, header: &TxnHeader, txn: &Txn) -> ApplyResult {
        if self.quota_setup_pending {
            self.setup_quota();
        }
        let mut triggers = Vec::new();
        let results = match txn {
            Txn::Multi(ops) => self.apply_multi(header, ops, &mut triggers),
            Txn::CloseSession(t) => {
                self.kill_session(
                    header.client_id,
                    &t.paths_to_delete,
                    header.zxid,
                    &mut triggers,
                );
                vec![OpResult::Session]
            }
            Txn::CreateSession(_) => vec![OpResult::Session],
            Txn::SetAcl(t) => vec![self
                .set_acl(&t.path, &t.acl, t.version)
                .map_or_else(err, OpResult::Stat)],
            other => vec![self.apply_op(header, other, &mut triggers)],
        };
        if header.zxid > self.last_processed_zxid {
            self.last_processed_zxid = header.zxid;
        }
        let err = results
            .iter()
            .map(OpResult::err)
            .find(|&e| e != 0)
            .unwrap_or(0);
        ApplyResult {
            zxid: header.zxid,
            err,
            results,
            triggers,
        }
    }

    fn apply_multi(
        &mut self,
        header: &TxnHeader,
        ops: &[Txn],
        triggers: &mut Vec<WatchTrigger>,
    ) -> Vec<OpResult> {
        if ops.iter().any(|t| matches!(t, Txn::Error(_))) {
            let mut after_failure = false;
            return ops
                .iter()
                .map(|t| match t {
                    Txn::Error(e) => {
                        after_failure = true;
                        OpResult::Error(e.err)
                    }
                    _ if after_failure => OpResult::Error(ErrorCode::RuntimeInconsistency.code()),
                    _ => OpResult::Error(0),
                })
                .collect();
        }
        let mut results = Vec::with_capacity(ops.len());
        for t in ops {
            if matches!(
                t,
                Txn::SetAcl(_) | Txn::CreateSession(_) | Txn::CloseSession(_) | Txn::Multi(_)
            ) {
                // ZooKeeper aborts the multi here ("Invalid type of op"), keeping what the
                // earlier ops did; we do the same but say so in the results.
                results.push(OpResult::Error(ErrorCode::MarshallingError.code()));
                break;
            }
            results.push(self.apply_op(header, t, triggers));
        }
        results
    }

    /// One create, delete, setData, check or error op (top level or inside a multi).
    fn apply_op(
        &mut self,
        header: &TxnHeader,
        txn: &Txn,
        triggers: &mut Vec<WatchTrigger>,
    ) -> OpResult {
        let (zxid, time) = (header.zxid, header.time);
        match txn {
            Txn::Create(CreateTxn {
                path,
                data,
                acl,
                ephemeral,
                parent_cversion,
            })
            | Txn::Create2(CreateTxn {
                path,
                data,
                acl,
                ephemeral,
                parent_cversion,
            }) => {
                let owner = if *ephemeral { header.client_id } else { 0 };
                self.create(path, data, acl, owner, *parent_cversion, header, triggers)
            }
            Txn::CreateContainer(CreateContainerTxn {
                path,
                data,
                acl,
                parent_cversion,
            }) => self.create(
                path,
                data,
                acl,
                CONTAINER_EPHEMERAL_OWNER,
                *parent_cversion,
                header,
                triggers,
            ),
            Txn::CreateTtl(CreateTtlTxn {
                path,
                data,
                acl,
                parent_cversion,
                ttl,
            }) => match ttl_owner(*ttl) {
                Some(owner) => {
                    self.create(path, data, acl, owner, *parent_cversion, header, triggers)
                }
                None => OpResult::Error(ErrorCode::BadArguments.code()),
            },
            Txn::Delete(t) | Txn::DeleteContainer(t) => self
                .delete_node(&t.path, zxid, triggers)
                .map_or_else(err, |()| OpResult::Deleted),
            Txn::SetData(t) => self
                .set_data(&t.path, t.data.clone(), t.version, zxid, time, triggers)
                .map_or_else(err, OpResult::Stat),
            Txn::Check(_) => OpResult::Checked,
            Txn::Error(e) => OpResult::Error(e.err),
            Txn::SetAcl(_) | Txn::CreateSession(_) | Txn::CloseSession(_) | Txn::Multi(_) => {
                OpResult::Error(ErrorCode::MarshallingError.code())
            }
        }
    }

    /// Every create flavour. On NODEEXISTS the parent's cversion/pzxid are still raised
    /// to the transaction's values: a node deleted by a session close and re-created by
    /// another session inside a fuzzy snapshot's window is found existing on replay.
    /// ZooKeeper does this only for opcode 1 (create), which looks like an oversight: the
    /// same window exists for create2/container/TTL, and skipping it could hand out a
    /// sequential suffix twice after recovery, so we do it for all of them. (It only
    /// ever raises, so a live tree is unaffected.)
    #[allow(clippy::too_many_arguments)]
    fn create(
        &mut self,
        path: &str,
        data: &Option<bytes::Bytes>,
        acl: &[Acl],
        owner: i64,
        parent_cversion: i32,
        header: &TxnHeader,
        triggers: &mut Vec<WatchTrigger>,
    ) -> OpResult {
        match self.create_node(
            path,
            data.clone(),
            acl,
            owner,
            parent_cversion,
            header.zxid,
            header.time,
            triggers,
        ) {
            Ok(stat) => OpResult::Created {
                path: path.to_owned(),
                stat,
            },
            Err(ErrorCode::NodeExists) => {
                if let Some(parent) = parent_of(path) {
                    if let Err(e) = self.set_cversion_pzxid(parent, parent_cversion, header.zxid) {
                        return OpResult::Error(e.code());
                    }
                }
                OpResult::Error(ErrorCode::NodeExists.code())
            }
            Err(e) => OpResult::Error(e.code()),
        }
    }
}

fn err(e: ErrorCode) -> OpResult {
    OpResult::Error(e.code())
}
