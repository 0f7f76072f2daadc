//! Prep: turns a write request into a transaction, or into the error Apache ZooKeeper
//! would answer, checking in ZooKeeper's order (the first failing check decides the code).
//!
//! Checks run against an overlay of the tree: the changes of the earlier ops of the same
//! multi, so that `create /a` then `create /a/b` works and a failing op leaves the tree
//! untouched.

use std::collections::HashMap;

use oxkeeper_proto::request::MultiOp;
use oxkeeper_proto::txn::{
    CheckVersionTxn, CreateContainerTxn, CreateTtlTxn, CreateTxn, DeleteTxn, ErrorTxn, SetAclTxn,
    SetDataTxn,
};
use oxkeeper_proto::{
    perms, Acl, CheckVersionRequest, CreateMode, CreateTtlRequest, DeleteRequest, ErrorCode,
    MultiResult, Request, SetAclRequest, SetDataRequest, Txn,
};

use super::{acl, Core, PrepError, WriteKind};
use crate::session::SessionId;
use crate::tree::{self, DataTree};

/// ZooKeeper's marker for container nodes in `ephemeralOwner`.
pub const CONTAINER_OWNER: i64 = i64::MIN;
const TTL_MAX_MS: i64 = 0xFF_FFFF_FFFF;

fn ttl_owner(ttl: i64) -> i64 {
    ((0xFFu64 << 56) | (ttl as u64 & 0xFF_FFFF_FFFF)) as i64
}

/// A plain ephemeral (not a container or TTL marker) cannot have children.
fn is_plain_ephemeral(owner: i64) -> bool {
    owner != 0 && owner != CONTAINER_OWNER && (owner as u64 >> 56) != 0xFF
}

const RESERVED: &[&str] = &["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// What prep needs to know about a node, as it will be once earlier ops are applied.
#[derive(Debug, Clone)]
struct NodeView {
    cversion: i32,
    version: i32,
    aversion: i32,
    ephemeral_owner: i64,
    child_count: usize,
    acl: Vec<Acl>,
    /// Length of the data (null counts 0): setData's quota check needs the old length.
    data_len: usize,
}

struct Overlay<'a> {
    tree: &'a DataTree,
    /// `None` = deleted by an earlier op.
    changes: HashMap<String, Option<NodeView>>,
}

impl<'a> Overlay<'a> {
    fn new(tree: &'a DataTree) -> Self {
        Overlay {
            tree,
            changes: HashMap::new(),
        }
    }

    fn get(&self, path: &str) -> Option<NodeView> {
        if let Some(change) = self.changes.get(path) {
            return change.clone();
        }
        self.tree.get(path).map(|n| NodeView {
            cversion: n.cversion(),
            version: n.version(),
            aversion: n.aversion(),
            ephemeral_owner: n.ephemeral_owner(),
            child_count: n.child_count(),
            acl: n.acl().to_vec(),
            data_len: n.data_len(),
        })
    }

    fn put(&mut self, path: &str, view: Option<NodeView>) {
        self.changes.insert(path.to_owned(), view);
    }
}

fn parent_of(path: &str, last_slash: usize) -> &str {
    if last_slash == 0 {
        "/"
    } else {
        &path[..last_slash]
    }
}

fn check_version(expected: i32, actual: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != actual {
        return Err(ErrorCode::BadVersion);
    }
    Ok(())
}

struct Ctx<'a> {
    sid: SessionId,
    closing: bool,
    identities: &'a acl::Identities,
    skip_acl: bool,
    extended_types: bool,
    enforce_quota: bool,
}

impl Ctx<'_> {
    fn check(&self, acl_list: &[Acl], perm: i32) -> Result<(), ErrorCode> {
        acl::check(acl_list, perm, self.identities, self.skip_acl)
    }
}

impl Core {
    pub(super) fn prep_write(
        &self,
        sid: SessionId,
        identities: &acl::Identities,
        req: Request,
    ) -> (WriteKind, Result<Txn, PrepError>) {
        let ctx = Ctx {
            sid,
            closing: self.sessions.is_closing(sid),
            identities,
            skip_acl: self.config.skip_acl,
            extended_types: self.config.extended_types_enabled,
            enforce_quota: self.config.enforce_quota,
        };
        let mut ov = Overlay::new(&self.tree);
        match req {
            Request::Create { op, req } => (
                WriteKind::Create { op },
                prep_create(&ctx, &mut ov, op, req).map_err(Into::into),
            ),
            Request::Delete(r) => (
                WriteKind::Delete,
                prep_delete(&ctx, &mut ov, r).map_err(Into::into),
            ),
            Request::SetData(r) => (
                WriteKind::SetData,
                prep_set_data(&ctx, &mut ov, r).map_err(Into::into),
            ),
            Request::SetAcl(r) => (
                WriteKind::SetAcl,
                prep_set_acl(&ctx, &mut ov, r).map_err(Into::into),
            ),
            Request::Multi(ops) => {
                let kinds = ops
                    .iter()
                    .map(|op| match op {
                        MultiOp::Create { op, .. } => *op,
                        MultiOp::Delete(_) => oxkeeper_proto::codes::op::DELETE,
                        MultiOp::SetData(_) => oxkeeper_proto::codes::op::SET_DATA,
                        MultiOp::Check(_) => oxkeeper_proto::codes::op::CHECK,
                    })
                    .collect();
                (
                    WriteKind::Multi { ops: kinds },
                    prep_multi(&ctx, &mut ov, ops),
                )
            }
            _ => (
                WriteKind::Delete,
                Err(PrepError::Code(ErrorCode::Unimplemented)),
            ),
        }
    }
}

fn prep_multi(ctx: &Ctx, ov: &mut Overlay, ops: Vec<MultiOp>) -> Result<Txn, PrepError> {
    let n = ops.len();
    let mut txns = Vec::with_capacity(n);
    for (i, op) in ops.into_iter().enumerate() {
        let prepped = match op {
            MultiOp::Create { op, req } => prep_create(ctx, ov, op, req),
            MultiOp::Delete(r) => prep_delete(ctx, ov, r),
            MultiOp::SetData(r) => prep_set_data(ctx, ov, r),
            MultiOp::Check(r) => prep_check(ctx, ov, r),
        };
        match prepped {
            // ZooKeeper logs a create2 inside a multi as a plain create (its replay knows
            // no other); the reply still answers it as create2, from the request's op.
            Ok(Txn::Create2(t)) => txns.push(Txn::Create(t)),
            Ok(t) => txns.push(t),
            // An exception in ZooKeeper's prep (here: unparseable quota text) fails the
            // whole request, not just the op.
            Err(ErrorCode::MarshallingError) => {
                return Err(PrepError::Code(ErrorCode::MarshallingError))
            }
            Err(code) => {
                let results: Vec<MultiResult> = (0..n)
                    .map(|j| match j.cmp(&i) {
                        std::cmp::Ordering::Less => MultiResult::Error(0),
                        std::cmp::Ordering::Equal => MultiResult::Error(code.code()),
                        std::cmp::Ordering::Greater => {
                            MultiResult::Error(ErrorCode::RuntimeInconsistency.code())
                        }
                    })
                    .collect();
                // ZooKeeper logs the ops before the failure as they are, then error
                // records; applying it changes nothing.
                txns.extend(results[i..].iter().map(|r| match r {
                    MultiResult::Error(err) => Txn::Error(ErrorTxn { err: *err }),
                    _ => Txn::Error(ErrorTxn { err: code.code() }),
                }));
                return Err(PrepError::MultiFailed {
                    results,
                    txn: Txn::Multi(txns),
                });
            }
        }
    }
    Ok(Txn::Multi(txns))
}

fn prep_create(
    ctx: &Ctx,
    ov: &mut Overlay,
    op: i32,
    req: CreateTtlRequest,
) -> Result<Txn, ErrorCode> {
    let mode = CreateMode::from_flags(req.flags).ok_or(ErrorCode::BadArguments)?;
    if mode.is_ttl() && !ctx.extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    if mode.is_ttl() {
        if req.ttl <= 0 || req.ttl > TTL_MAX_MS {
            return Err(ErrorCode::BadArguments);
        }
    } else if req.ttl >= 0 {
        return Err(ErrorCode::BadArguments);
    }
    if mode.is_ephemeral() && ctx.closing {
        return Err(ErrorCode::SessionExpired);
    }
    let last_slash = match req.path.rfind('/') {
        Some(i) if !req.path.contains('\0') => i,
        _ => return Err(ErrorCode::BadArguments),
    };
    let acl_list = acl::fixup_acl(&req.acl, ctx.identities)?;
    let parent_path = parent_of(&req.path, last_slash).to_owned();
    let mut parent = ov.get(&parent_path).ok_or(ErrorCode::NoNode)?;
    ctx.check(&parent.acl, perms::CREATE)?;
    let path = if mode.is_sequential() {
        format!("{}{:010}", req.path, parent.cversion)
    } else {
        req.path
    };
    tree::validate_path(&path)?;
    if ov.get(&path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if is_plain_ephemeral(parent.ephemeral_owner) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let data_len = req.data.as_ref().map_or(0, |d| d.len());
    if ctx.enforce_quota {
        // Against the committed tree, as ZooKeeper checks (earlier ops of a multi unseen).
        ov.tree.check_quota(&path, 1, data_len as i64)?;
    }
    let parent_cversion = parent.cversion.wrapping_add(1);
    parent.cversion = parent_cversion;
    parent.child_count += 1;
    ov.put(&parent_path, Some(parent));
    let ephemeral_owner = if mode.is_ephemeral() {
        ctx.sid.0
    } else if mode.is_container() {
        CONTAINER_OWNER
    } else if mode.is_ttl() {
        ttl_owner(req.ttl)
    } else {
        0
    };
    ov.put(
        &path,
        Some(NodeView {
            cversion: 0,
            version: 0,
            aversion: 0,
            ephemeral_owner,
            child_count: 0,
            acl: acl_list.clone(),
            data_len,
        }),
    );
    let data = req.data;
    Ok(if mode.is_container() {
        Txn::CreateContainer(CreateContainerTxn {
            path,
            data,
            acl: acl_list,
            parent_cversion,
        })
    } else if mode.is_ttl() {
        Txn::CreateTtl(CreateTtlTxn {
            path,
            data,
            acl: acl_list,
            parent_cversion,
            ttl: req.ttl,
        })
    } else {
        let t = CreateTxn {
            path,
            data,
            acl: acl_list,
            ephemeral: mode.is_ephemeral(),
            parent_cversion,
        };
        if op == oxkeeper_proto::codes::op::CREATE {
            Txn::Create(t)
        } else {
            Txn::Create2(t)
        }
    })
}

fn prep_delete(ctx: &Ctx, ov: &mut Overlay, req: DeleteRequest) -> Result<Txn, ErrorCode> {
    let path = req.path;
    let last_slash = match path.rfind('/') {
        Some(i) if !path.contains('\0') && !RESERVED.contains(&path.as_str()) => i,
        _ => return Err(ErrorCode::BadArguments),
    };
    let parent_path = parent_of(&path, last_slash).to_owned();
    let mut parent = ov.get(&parent_path).ok_or(ErrorCode::NoNode)?;
    ctx.check(&parent.acl, perms::DELETE)?;
    let node = ov.get(&path).ok_or(ErrorCode::NoNode)?;
    check_version(req.version, node.version)?;
    if node.child_count > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    parent.child_count = parent.child_count.saturating_sub(1);
    ov.put(&parent_path, Some(parent));
    ov.put(&path, None);
    Ok(Txn::Delete(DeleteTxn { path }))
}

fn prep_set_data(ctx: &Ctx, ov: &mut Overlay, req: SetDataRequest) -> Result<Txn, ErrorCode> {
    tree::validate_path(&req.path)?;
    let mut node = ov.get(&req.path).ok_or(ErrorCode::NoNode)?;
    ctx.check(&node.acl, perms::WRITE)?;
    let data_len = req.data.as_ref().map_or(0, |d| d.len());
    if ctx.enforce_quota {
        ov.tree
            .check_quota(&req.path, 0, data_len as i64 - node.data_len as i64)?;
    }
    check_version(req.version, node.version)?;
    let version = node.version.wrapping_add(1);
    node.version = version;
    node.data_len = data_len;
    ov.put(&req.path, Some(node));
    Ok(Txn::SetData(SetDataTxn {
        path: req.path,
        data: req.data,
        version,
    }))
}

fn prep_set_acl(ctx: &Ctx, ov: &mut Overlay, req: SetAclRequest) -> Result<Txn, ErrorCode> {
    tree::validate_path(&req.path)?;
    let acl_list = acl::fixup_acl(&req.acl, ctx.identities)?;
    let mut node = ov.get(&req.path).ok_or(ErrorCode::NoNode)?;
    ctx.check(&node.acl, perms::ADMIN)?;
    check_version(req.version, node.aversion)?;
    let version = node.aversion.wrapping_add(1);
    node.aversion = version;
    node.acl = acl_list.clone();
    ov.put(&req.path, Some(node));
    Ok(Txn::SetAcl(SetAclTxn {
        path: req.path,
        acl: acl_list,
        version,
    }))
}

fn prep_check(ctx: &Ctx, ov: &mut Overlay, req: CheckVersionRequest) -> Result<Txn, ErrorCode> {
    tree::validate_path(&req.path)?;
    let node = ov.get(&req.path).ok_or(ErrorCode::NoNode)?;
    ctx.check(&node.acl, perms::READ)?;
    check_version(req.version, node.version)?;
    Ok(Txn::Check(CheckVersionTxn {
        path: req.path,
        version: req.version,
    }))
}
