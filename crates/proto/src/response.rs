//! Encoding replies, notifications and the handshake answer, each as one length-prefixed frame.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codes::{op, xid, STATE_SYNC_CONNECTED};
use crate::jute::Jute;
use crate::records::*;

/// The body of a successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Header only (delete, ping, auth, setWatches, checkWatches, removeWatches, closeSession).
    Empty,
    Create(String),
    Create2(String, Stat),
    /// exists, setData, setACL.
    Stat(Stat),
    GetData(Option<Bytes>, Stat),
    GetAcl(Vec<Acl>, Stat),
    GetChildren(Vec<String>),
    GetChildren2(Vec<String>, Stat),
    /// sync echoes its path.
    Path(String),
    Count(i32),
    PathList(Vec<String>),
    WhoAmI(Vec<ClientInfo>),
    /// addWatch answers with a 4-byte `ErrorResponse{0}` body.
    AddWatch,
    Multi(Vec<MultiResult>),
    Sasl(Bytes),
}

/// One entry of a multi or multiRead reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create(String),
    Create2(String, Stat),
    Delete,
    SetData(Stat),
    Check,
    GetData(Option<Bytes>, Stat),
    GetChildren(Vec<String>),
    Error(i32),
}

impl Response {
    pub fn write(&self, w: &mut BytesMut) {
        match self {
            Response::Empty => {}
            Response::Create(p) | Response::Path(p) => p.write(w),
            Response::Create2(p, s) => {
                p.write(w);
                s.write(w);
            }
            Response::Stat(s) => s.write(w),
            Response::GetData(d, s) => {
                d.write(w);
                s.write(w);
            }
            Response::GetAcl(a, s) => {
                a.write(w);
                s.write(w);
            }
            Response::GetChildren(c) | Response::PathList(c) => c.write(w),
            Response::GetChildren2(c, s) => {
                c.write(w);
                s.write(w);
            }
            Response::Count(n) => n.write(w),
            Response::WhoAmI(v) => v.write(w),
            Response::AddWatch => 0i32.write(w),
            Response::Sasl(t) => t.write(w),
            Response::Multi(results) => {
                for r in results {
                    r.write(w);
                }
                MultiHeader {
                    op: -1,
                    done: true,
                    err: -1,
                }
                .write(w);
            }
        }
    }
}

impl MultiResult {
    fn write(&self, w: &mut BytesMut) {
        let header = |w: &mut BytesMut, op: i32, err: i32| {
            MultiHeader {
                op,
                done: false,
                err,
            }
            .write(w);
        };
        match self {
            MultiResult::Create(p) => {
                header(w, op::CREATE, 0);
                p.write(w);
            }
            MultiResult::Create2(p, s) => {
                header(w, op::CREATE2, 0);
                p.write(w);
                s.write(w);
            }
            MultiResult::Delete => header(w, op::DELETE, 0),
            MultiResult::SetData(s) => {
                header(w, op::SET_DATA, 0);
                s.write(w);
            }
            MultiResult::Check => header(w, op::CHECK, 0),
            MultiResult::GetData(d, s) => {
                header(w, op::GET_DATA, 0);
                d.write(w);
                s.write(w);
            }
            MultiResult::GetChildren(c) => {
                header(w, op::GET_CHILDREN, 0);
                c.write(w);
            }
            MultiResult::Error(e) => {
                header(w, op::ERROR, *e);
                e.write(w);
            }
        }
    }
}

/// Appends one frame: a 4-byte big-endian length, then what `body` writes.
pub fn write_frame(out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_i32(0);
    body(out);
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

/// Appends a reply frame. Error replies carry no body, whatever `resp` holds.
pub fn write_reply(out: &mut BytesMut, xid: i32, zxid: i64, err: i32, resp: &Response) {
    write_frame(out, |w| {
        ReplyHeader { xid, zxid, err }.write(w);
        if err == 0 {
            resp.write(w);
        }
    });
}

/// Appends a watch notification frame (xid -1).
pub fn write_notification(out: &mut BytesMut, zxid: i64, event_type: i32, path: &str) {
    write_frame(out, |w| {
        ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid,
            err: 0,
        }
        .write(w);
        WatcherEvent {
            event_type,
            state: STATE_SYNC_CONNECTED,
            path: path.to_owned(),
        }
        .write(w);
    });
}

/// Appends the handshake answer.
pub fn write_connect_response(out: &mut BytesMut, resp: &ConnectResponse) {
    write_frame(out, |w| resp.write(w));
}
