//! The handshake: new sessions, resumed sessions, and the refusals clients expect.

use std::num::NonZeroU64;

use bytes::Bytes;
use oxkeeper_proto::response::write_connect_response;
use oxkeeper_proto::txn::CreateSessionTxn;
use oxkeeper_proto::{ConnectRequest, ConnectResponse, Txn};

use super::{Core, Now};
use crate::session::{password, SessionId};
use crate::watch::ConnId;

impl Core {
    pub(super) fn handle_connect(&mut self, conn_id: ConnId, frame: Bytes, now: Now) {
        let req: ConnectRequest = match oxkeeper_proto::Jute::decode(frame) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(conn = conn_id.0, error = %e, "connect request did not parse; closing");
                self.close_after_flush(conn_id);
                return;
            }
        };
        if req.last_zxid_seen > self.last_zxid {
            // The client has seen a newer state than ours: it must try another server.
            tracing::info!(
                conn = conn_id.0,
                client_zxid = format_args!("0x{:x}", req.last_zxid_seen),
                server_zxid = format_args!("0x{:x}", self.last_zxid),
                "refusing a client that has seen a later zxid than this server"
            );
            self.close_after_flush(conn_id);
            return;
        }
        let timeout_ms = self.sessions.negotiate_timeout(req.timeout_ms);
        if req.session_id == 0 {
            let sid = self.sessions.create_session(timeout_ms, now.mono_ms);
            self.commit(
                sid,
                0,
                Txn::CreateSession(CreateSessionTxn {
                    timeout_ms: timeout_ms as i32,
                }),
                now,
            );
            tracing::debug!(session = %sid, timeout_ms, "session created");
            self.attach(conn_id, sid, &req, timeout_ms);
            return;
        }
        let sid = SessionId(req.session_id);
        let valid = password::check_password(sid, &req.passwd)
            && self.sessions.exists(sid)
            && !self.sessions.is_closing(sid);
        if !valid {
            // Unlike Apache ZooKeeper, a failed attempt does not disconnect the session's
            // live connection: only a client that proves it owns the session may take it.
            tracing::info!(session = %sid, "reconnect refused: session expired, unknown or wrong password");
            self.send_connect_response(conn_id, &req, 0, 0, Bytes::from_static(&[0u8; 16]));
            self.close_after_flush(conn_id);
            return;
        }
        if let Some(old) = self.attached_conn(sid) {
            if old != conn_id {
                tracing::debug!(session = %sid, old = old.0, new = conn_id.0, "session moved to a new connection");
                self.close_after_flush(old);
                self.watches.remove_connection(old);
                if let Some(c) = self.conns.get_mut(old) {
                    c.session = None;
                }
            }
        }
        let _ = self
            .sessions
            .touch_with_timeout(sid, timeout_ms, now.mono_ms);
        self.attach(conn_id, sid, &req, timeout_ms);
    }

    /// Binds the session to this connection and answers the handshake with its password.
    fn attach(&mut self, conn_id: ConnId, sid: SessionId, req: &ConnectRequest, timeout_ms: u32) {
        if let Some(owner) = NonZeroU64::new(conn_id.0) {
            let _ = self.sessions.set_owner(sid, owner);
        }
        if let Some(c) = self.conns.get_mut(conn_id) {
            c.session = Some(sid);
        }
        let passwd = Bytes::copy_from_slice(&password::password(sid));
        self.send_connect_response(conn_id, req, timeout_ms as i32, sid.0, passwd);
    }

    fn send_connect_response(
        &mut self,
        conn_id: ConnId,
        req: &ConnectRequest,
        timeout_ms: i32,
        session_id: i64,
        passwd: Bytes,
    ) {
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id,
            passwd,
            // Echo the field's presence: old clients must not get the extra byte.
            read_only: req.read_only.map(|_| false),
        };
        write_connect_response(self.out.reply_buf(conn_id), &resp);
        self.stats.packets_sent += 1;
    }
}
