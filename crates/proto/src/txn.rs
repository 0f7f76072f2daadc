//! Transaction records: what every state change becomes, exactly as Apache ZooKeeper logs it.
//!
//! A transaction carries resulting state (new versions, the parent's new cversion, the
//! explicit paths a session close deletes), so applying it is deterministic and replay is
//! idempotent.

use bytes::{Bytes, BytesMut};

use crate::codes::op;
use crate::jute::{DecodeError, Jute, Reader};
use crate::jute_record;
use crate::records::Acl;

jute_record!(TxnHeader {
    client_id: i64,
    cxid: i32,
    zxid: i64,
    time: i64,
    txn_type: i32
});
jute_record!(CreateTxn {
    path: String,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    ephemeral: bool,
    parent_cversion: i32,
});
jute_record!(CreateContainerTxn {
    path: String,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    parent_cversion: i32,
});
jute_record!(CreateTtlTxn {
    path: String,
    data: Option<Bytes>,
    acl: Vec<Acl>,
    parent_cversion: i32,
    ttl: i64,
});
jute_record!(DeleteTxn { path: String });
jute_record!(SetDataTxn { path: String, data: Option<Bytes>, version: i32 });
jute_record!(SetAclTxn { path: String, acl: Vec<Acl>, version: i32 });
jute_record!(CheckVersionTxn {
    path: String,
    version: i32
});
jute_record!(CreateSessionTxn { timeout_ms: i32 });
jute_record!(CloseSessionTxn { paths_to_delete: Vec<String> });
jute_record!(ErrorTxn { err: i32 });

/// The body of a transaction; the variant decides the header's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    Create(CreateTxn),
    /// create2 logs the same record under its own type; a multi answers it with a Stat.
    Create2(CreateTxn),
    CreateContainer(CreateContainerTxn),
    CreateTtl(CreateTtlTxn),
    Delete(DeleteTxn),
    /// Server-internal removal of an empty container or expired TTL node.
    DeleteContainer(DeleteTxn),
    SetData(SetDataTxn),
    SetAcl(SetAclTxn),
    Check(CheckVersionTxn),
    CreateSession(CreateSessionTxn),
    CloseSession(CloseSessionTxn),
    Error(ErrorTxn),
    Multi(Vec<Txn>),
}

impl Txn {
    /// The type written in the TxnHeader (and in a MultiTxn's sub-record).
    pub fn txn_type(&self) -> i32 {
        match self {
            Txn::Create(_) => op::CREATE,
            Txn::Create2(_) => op::CREATE2,
            Txn::CreateContainer(_) => op::CREATE_CONTAINER,
            Txn::CreateTtl(_) => op::CREATE_TTL,
            Txn::Delete(_) => op::DELETE,
            Txn::DeleteContainer(_) => op::DELETE_CONTAINER,
            Txn::SetData(_) => op::SET_DATA,
            Txn::SetAcl(_) => op::SET_ACL,
            Txn::Check(_) => op::CHECK,
            Txn::CreateSession(_) => op::CREATE_SESSION,
            Txn::CloseSession(_) => op::CLOSE_SESSION,
            Txn::Error(_) => op::ERROR,
            Txn::Multi(_) => op::MULTI,
        }
    }

    pub fn write_body(&self, w: &mut BytesMut) {
        match self {
            Txn::Create(t) | Txn::Create2(t) => t.write(w),
            Txn::CreateContainer(t) => t.write(w),
            Txn::CreateTtl(t) => t.write(w),
            Txn::Delete(t) | Txn::DeleteContainer(t) => t.write(w),
            Txn::SetData(t) => t.write(w),
            Txn::SetAcl(t) => t.write(w),
            Txn::Check(t) => t.write(w),
            Txn::CreateSession(t) => t.write(w),
            Txn::CloseSession(t) => t.write(w),
            Txn::Error(t) => t.write(w),
            Txn::Multi(txns) => {
                (txns.len() as i32).write(w);
                for t in txns {
                    t.txn_type().write(w);
                    let mut inner = BytesMut::new();
                    t.write_body(&mut inner);
                    inner.freeze().write(w);
                }
            }
        }
    }

    /// Reads a body of the given type. `create` also accepts the pre-3.4 record without
    /// parentCVersion (reported as -1: "parent's current cversion + 1"), and closeSession
    /// accepts the body-less form older servers log.
    pub fn read_body(txn_type: i32, r: &mut Reader) -> Result<Txn, DecodeError> {
        Ok(match txn_type {
            op::CREATE | op::CREATE2 => {
                let path = r.read_string()?;
                let data = r.read_buffer()?;
                let acl = Vec::<Acl>::read(r)?;
                let ephemeral = r.read_bool()?;
                let parent_cversion = if r.remaining() >= 4 {
                    r.read_i32()?
                } else {
                    -1
                };
                let t = CreateTxn {
                    path,
                    data,
                    acl,
                    ephemeral,
                    parent_cversion,
                };
                if txn_type == op::CREATE2 {
                    Txn::Create2(t)
                } else {
                    Txn::Create(t)
                }
            }
            op::CREATE_CONTAINER => Txn::CreateContainer(CreateContainerTxn::read(r)?),
            op::CREATE_TTL => Txn::CreateTtl(CreateTtlTxn::read(r)?),
            op::DELETE => Txn::Delete(DeleteTxn::read(r)?),
            op::DELETE_CONTAINER => Txn::DeleteContainer(DeleteTxn::read(r)?),
            op::SET_DATA | op::RECONFIG => Txn::SetData(SetDataTxn::read(r)?),
            op::SET_ACL => Txn::SetAcl(SetAclTxn::read(r)?),
            op::CHECK => Txn::Check(CheckVersionTxn::read(r)?),
            op::CREATE_SESSION => Txn::CreateSession(CreateSessionTxn::read(r)?),
            op::CLOSE_SESSION => {
                if r.is_empty() {
                    Txn::CloseSession(CloseSessionTxn::default())
                } else {
                    Txn::CloseSession(CloseSessionTxn::read(r)?)
                }
            }
            op::ERROR => Txn::Error(ErrorTxn::read(r)?),
            op::MULTI => {
                let n = r.read_count()?;
                let mut txns = Vec::with_capacity(n.min(r.remaining()));
                for _ in 0..n {
                    let t = r.read_i32()?;
                    let body = r.read_buffer()?.unwrap_or_default();
                    txns.push(Txn::read_body(t, &mut Reader::new(body))?);
                }
                Txn::Multi(txns)
            }
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "txn type",
                    value: other.into(),
                })
            }
        })
    }
}
