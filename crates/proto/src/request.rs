//! Decoding a client's request frame (after the handshake) into a typed request.

use bytes::Bytes;

use crate::codes::op;
use crate::jute::{DecodeError, Jute, Reader};
use crate::records::*;

/// One decoded client request. Create, create2, createContainer and createTTL share one
/// shape: `op` says which was sent (it decides the reply record) and `ttl` is -1 unless TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create {
        op: i32,
        req: CreateTtlRequest,
    },
    Delete(DeleteRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Ping,
    Multi(Vec<MultiOp>),
    MultiRead(Vec<ReadOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchTypeRequest),
    RemoveWatches(WatchTypeRequest),
    Auth(AuthPacket),
    /// setWatches (v1) arrives with empty persistent lists.
    SetWatches {
        v2: bool,
        req: SetWatches2,
    },
    Sasl(SaslRequest),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

/// A write op inside `multi`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create { op: i32, req: CreateTtlRequest },
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
}

/// A read op inside `multiRead` (watch flags are ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetData(PathWatchRequest),
    GetChildren(PathWatchRequest),
}

/// Why a request frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Unknown or client-forbidden opcode: UNIMPLEMENTED, then the connection closes.
    #[error("unimplemented opcode {0}")]
    Unimplemented(i32),
    /// The record did not parse: MARSHALLINGERROR, the connection stays.
    #[error("malformed request: {0}")]
    Marshalling(#[from] DecodeError),
    /// A structurally bad multi (mixed kinds, unknown op type).
    #[error("malformed multi: {0}")]
    BadMulti(&'static str),
}

impl Request {
    pub fn opcode(&self) -> i32 {
        match self {
            Request::Create { op, .. } => *op,
            Request::Delete(_) => op::DELETE,
            Request::Exists(_) => op::EXISTS,
            Request::GetData(_) => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl(_) => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren(_) => op::GET_CHILDREN,
            Request::GetChildren2(_) => op::GET_CHILDREN2,
            Request::Sync(_) => op::SYNC,
            Request::Ping => op::PING,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig(_) => op::RECONFIG,
            Request::CheckWatches(_) => op::CHECK_WATCHES,
            Request::RemoveWatches(_) => op::REMOVE_WATCHES,
            Request::Auth(_) => op::AUTH,
            Request::SetWatches { v2: false, .. } => op::SET_WATCHES,
            Request::SetWatches { v2: true, .. } => op::SET_WATCHES2,
            Request::Sasl(_) => op::SASL,
            Request::GetEphemerals(_) => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber(_) => op::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch(_) => op::ADD_WATCH,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
        }
    }

    /// Whether the request changes state and so becomes a transaction.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::CloseSession
        )
    }
}

fn read_create(op: i32, r: &mut Reader) -> Result<CreateTtlRequest, DecodeError> {
    if op == op::CREATE_TTL {
        return CreateTtlRequest::read(r);
    }
    let c = CreateRequest::read(r)?;
    Ok(CreateTtlRequest {
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl: -1,
    })
}

/// A read whose path is jute's null (kazoo sends "" that way) cannot be deserialized by
/// ZooKeeper's reads: MARSHALLINGERROR. Writes validate the path and answer BADARGUMENTS.
fn null_path(opcode: i32, body: &Bytes) -> bool {
    matches!(
        opcode,
        op::EXISTS
            | op::GET_DATA
            | op::GET_CHILDREN
            | op::GET_CHILDREN2
            | op::GET_ACL
            | op::GET_ALL_CHILDREN_NUMBER
    ) && body.len() >= 4
        && body[..4] == [0xff; 4]
}

/// Decodes the body of a request whose header carried `opcode`.
pub fn decode_request(opcode: i32, body: Bytes) -> Result<Request, RequestError> {
    if null_path(opcode, &body) {
        return Err(RequestError::Marshalling(DecodeError::InvalidValue {
            field: "path",
            value: -1,
        }));
    }
    let r = &mut Reader::new(body);
    Ok(match opcode {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => Request::Create {
            op: opcode,
            req: read_create(opcode, r)?,
        },
        op::DELETE => Request::Delete(DeleteRequest::read(r)?),
        op::EXISTS => Request::Exists(PathWatchRequest::read(r)?),
        op::GET_DATA => Request::GetData(PathWatchRequest::read(r)?),
        op::SET_DATA => Request::SetData(SetDataRequest::read(r)?),
        op::GET_ACL => Request::GetAcl(PathRequest::read(r)?),
        op::SET_ACL => Request::SetAcl(SetAclRequest::read(r)?),
        op::GET_CHILDREN => Request::GetChildren(PathWatchRequest::read(r)?),
        op::GET_CHILDREN2 => Request::GetChildren2(PathWatchRequest::read(r)?),
        op::SYNC => Request::Sync(PathRequest::read(r)?),
        op::PING => Request::Ping,
        op::MULTI => Request::Multi(decode_multi(r)?),
        op::MULTI_READ => Request::MultiRead(decode_multi_read(r)?),
        op::RECONFIG => Request::Reconfig(ReconfigRequest::read(r)?),
        op::CHECK_WATCHES => Request::CheckWatches(WatchTypeRequest::read(r)?),
        op::REMOVE_WATCHES => Request::RemoveWatches(WatchTypeRequest::read(r)?),
        op::AUTH => Request::Auth(AuthPacket::read(r)?),
        op::SET_WATCHES => {
            let w = SetWatches::read(r)?;
            Request::SetWatches {
                v2: false,
                req: SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches,
                    exist_watches: w.exist_watches,
                    child_watches: w.child_watches,
                    ..Default::default()
                },
            }
        }
        op::SET_WATCHES2 => Request::SetWatches {
            v2: true,
            req: SetWatches2::read(r)?,
        },
        op::SASL => Request::Sasl(SaslRequest::read(r)?),
        op::GET_EPHEMERALS => Request::GetEphemerals(PathRequest::read(r)?),
        op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber(PathRequest::read(r)?),
        op::ADD_WATCH => Request::AddWatch(AddWatchRequest::read(r)?),
        op::WHO_AM_I => Request::WhoAmI,
        op::CLOSE_SESSION => Request::CloseSession,
        // A top-level check, deleteContainer (server-internal), createSession, notification,
        // error and anything unknown.
        other => return Err(RequestError::Unimplemented(other)),
    })
}

fn decode_multi(r: &mut Reader) -> Result<Vec<MultiOp>, RequestError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        ops.push(match h.op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => MultiOp::Create {
                op: h.op,
                req: read_create(h.op, r)?,
            },
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            op::GET_DATA | op::GET_CHILDREN => {
                return Err(RequestError::BadMulti("read op inside a write multi"))
            }
            _ => return Err(RequestError::BadMulti("unknown op type in multi")),
        });
    }
}

fn decode_multi_read(r: &mut Reader) -> Result<Vec<ReadOp>, RequestError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        ops.push(match h.op {
            op::GET_DATA => ReadOp::GetData(PathWatchRequest::read(r)?),
            op::GET_CHILDREN => ReadOp::GetChildren(PathWatchRequest::read(r)?),
            op::CREATE
            | op::CREATE2
            | op::CREATE_CONTAINER
            | op::CREATE_TTL
            | op::DELETE
            | op::SET_DATA
            | op::CHECK => return Err(RequestError::BadMulti("write op inside multiRead")),
            _ => return Err(RequestError::BadMulti("unknown op type in multiRead")),
        });
    }
}
