//! The request pipeline: handshake, session checks, prep (request → transaction), commit
//! (apply the transaction to the tree), and the replies and watch events that follow.
//!
//! The [`Core`] is one owner of all server state. The shell feeds it events (a connection
//! opened, a frame arrived, a connection went away, a tick) together with the time, and
//! collects what to send from its [`Outbox`]. Nothing here reads a clock, does I/O or
//! spawns; that is the shell's job.

pub mod acl;
mod connect;
mod conns;
pub mod outbox;
mod prep;
mod read;
mod reaper;

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::Bytes;
use oxkeeper_proto::codes::{op, xid};
use oxkeeper_proto::response::{write_notification, write_reply};
use oxkeeper_proto::txn::{CloseSessionTxn, ErrorTxn};
use oxkeeper_proto::{
    decode_request, perms, ErrorCode, Id, Jute, MultiResult, Reader, Request, RequestError,
    RequestHeader, Response, Txn, TxnHeader,
};

use crate::session::{SessionConfig, SessionId, SessionTracker};
use crate::tree::{DataTree, OpResult};
use crate::watch::{ConnId, WatchManager};
pub use outbox::{Delivery, Outbox};

/// The time of an event: a monotonic clock for session deadlines, the wall clock for the
/// ctime/mtime that clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono_ms: u64,
    pub wall_ms: i64,
}

#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub session: SessionConfig,
    /// `super:<digest>`: credentials hashing to it bypass every ACL.
    pub super_digest: Option<String>,
    pub skip_acl: bool,
    /// Enables TTL nodes (`zookeeper.extendedTypesEnabled`).
    pub extended_types_enabled: bool,
    /// Refuses creates and setData past a quota's hard limit with QUOTAEXCEEDED
    /// (`zookeeper.enforceQuota`); otherwise quotas only log.
    pub enforce_quota: bool,
}

/// Per-connection figures for `cons`, `stat` and `crst`. Every connection has one, so
/// it is kept small: opcodes rather than names, 32-bit single latencies.
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub received: u64,
    pub sent: u64,
    /// The opcode of the last request; `None` before the first (and after `crst`).
    last_op: Option<i32>,
    pub last_cxid: Option<i32>,
    /// -1 before the first reply that carries one, as in ZooKeeper.
    pub last_zxid: i64,
    pub last_response_wall_ms: i64,
    pub established_wall_ms: i64,
    pub latency: Latency,
}

impl ConnStats {
    fn new(established_wall_ms: i64) -> ConnStats {
        ConnStats {
            received: 0,
            sent: 0,
            last_op: None,
            last_cxid: None,
            last_zxid: -1,
            last_response_wall_ms: 0,
            established_wall_ms,
            latency: Latency::default(),
        }
    }

    /// The last request's short name (`GETD`, `PING`…), `NA` before any.
    pub fn last_op(&self) -> &'static str {
        self.last_op.map_or("NA", op::short_name)
    }
}

/// Request latencies in milliseconds, from the frame's arrival to its reply. A single
/// latency beyond 32 bits (49 days) is recorded as the largest that fits.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub last_ms: u32,
    pub min_ms: u32,
    pub max_ms: u32,
    pub total_ms: u64,
    pub count: u64,
}

impl Latency {
    fn record(&mut self, ms: u64) {
        self.total_ms = self.total_ms.saturating_add(ms);
        let ms = u32::try_from(ms).unwrap_or(u32::MAX);
        self.min_ms = if self.count == 0 {
            ms
        } else {
            self.min_ms.min(ms)
        };
        self.max_ms = self.max_ms.max(ms);
        self.count += 1;
        self.last_ms = ms;
    }

    /// ZooKeeper's average: a double, 0 before any request.
    pub fn avg_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms as f64 / self.count as f64
        }
    }
}

/// One client connection as the core sees it.
#[derive(Debug, Clone)]
pub struct Conn {
    pub id: ConnId,
    /// Set once the handshake succeeded.
    pub session: Option<SessionId>,
    /// The peer's address (`ip`), plus what `auth` packets added.
    pub identities: acl::Identities,
    /// The peer's port; its address is the `ip` identity.
    port: u16,
    pub stats: ConnStats,
    /// A connection being closed accepts nothing more.
    pub closing: bool,
}

impl Conn {
    fn new(id: ConnId, peer: SocketAddr, now: Now) -> Conn {
        Conn {
            id,
            session: None,
            identities: acl::Identities::new(peer.ip()),
            port: peer.port(),
            stats: ConnStats::new(now.wall_ms),
            closing: false,
        }
    }

    /// The client's address and port.
    pub fn peer(&self) -> SocketAddr {
        let ip = self
            .identities
            .ip
            .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
        SocketAddr::new(ip, self.port)
    }
}

/// Server-wide counters for `srvr`, `mntr` and `srst`.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub latency: Latency,
    pub sessions_expired: u64,
    pub sessions_closed: u64,
    pub auth_failed: u64,
}

pub struct Core {
    config: CoreConfig,
    tree: DataTree,
    watches: WatchManager,
    sessions: SessionTracker,
    conns: conns::ConnTable,
    out: Outbox,
    /// Transactions applied since the shell last took them: it must make them durable
    /// before it delivers the output produced with them.
    log: Vec<(TxnHeader, Txn)>,
    last_zxid: i64,
    stats: ServerStats,
    /// When the request being handled arrived, for its latency.
    received_mono_ms: u64,
    /// The tracker's stall count when last logged.
    stalls_logged: u64,
    /// Expired sessions (already marked closing) whose closeSession has yet to run.
    expiring: VecDeque<SessionId>,
}

/// closeSession transactions of expired sessions run per [`Core::tick`]: a few
/// milliseconds of work, so a mass expiry does not stall everyone else.
pub const EXPIRED_PER_TICK: usize = 1000;

/// What a successful write answers with, computed once the transaction is applied.
enum WriteKind {
    Create {
        op: i32,
    },
    Delete,
    SetData,
    SetAcl,
    /// The opcode of each sub-op, which decides the shape of its result.
    Multi {
        ops: Vec<i32>,
    },
}

impl Core {
    pub fn new(config: CoreConfig, now: Now) -> Core {
        Core::restore(config, now, DataTree::new(), &[])
    }

    /// A core resuming from recovered state: the tree (its last processed zxid is where
    /// zxids continue) and the session table, each session with a fresh deadline as in
    /// ZooKeeper, so clients that come back in time keep their ephemerals.
    pub fn restore(config: CoreConfig, now: Now, tree: DataTree, sessions: &[(i64, i32)]) -> Core {
        let mut tracker = SessionTracker::new(config.session, now.mono_ms, now.wall_ms as u64);
        for &(id, timeout_ms) in sessions {
            let timeout_ms =
                u32::try_from(timeout_ms).unwrap_or(config.session.max_session_timeout_ms);
            tracker.add_session(SessionId(id), timeout_ms, now.mono_ms);
        }
        let last_zxid = tree.last_processed_zxid();
        Core {
            config,
            tree,
            watches: WatchManager::new(),
            sessions: tracker,
            conns: conns::ConnTable::default(),
            out: Outbox::default(),
            log: Vec::new(),
            last_zxid,
            stats: ServerStats::default(),
            received_mono_ms: now.mono_ms,
            stalls_logged: 0,
            expiring: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &CoreConfig {
        &self.config
    }
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }
    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }
    pub fn connections(&self) -> impl Iterator<Item = &Conn> {
        self.conns.values()
    }
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }
    pub fn stats(&self) -> &ServerStats {
        &self.stats
    }

    /// `srst`.
    pub fn reset_stats(&mut self) {
        self.stats = ServerStats::default();
    }

    /// `crst`.
    pub fn reset_connection_stats(&mut self) {
        for c in self.conns.values_mut() {
            c.stats = ConnStats::new(c.stats.established_wall_ms);
        }
    }

    /// Everything produced since the last call, per connection.
    pub fn take_output(&mut self) -> Vec<Delivery> {
        self.out.drain()
    }

    /// The transactions applied since the last call, in zxid order. None of the output
    /// taken with them may reach a client before they are durable.
    pub fn take_txns(&mut self) -> Vec<(TxnHeader, Txn)> {
        std::mem::take(&mut self.log)
    }

    /// The session table as a snapshot stores it: (id, timeout).
    pub fn session_table(&self) -> Vec<(i64, i32)> {
        let mut v: Vec<(i64, i32)> = self
            .sessions
            .sessions()
            .map(|s| (s.id.0, s.timeout_ms as i32))
            .collect();
        v.sort_unstable();
        v
    }

    pub fn open_connection(&mut self, id: ConnId, peer: SocketAddr, now: Now) {
        if let Some(old) = self.conns.insert(Conn::new(id, peer, now)) {
            tracing::error!(
                old = old.id.0,
                new = id.0,
                "a connection slot was reused while in use"
            );
            self.watches.remove_connection(old.id);
        }
    }

    /// The socket is gone: its watches go with it; its session lives on until it expires.
    /// The session stays owned by the connection's id, which no other connection ever
    /// gets, so it is attached to nothing until it reconnects.
    pub fn close_connection(&mut self, id: ConnId) {
        self.watches.remove_connection(id);
        self.conns.remove(id);
    }

    /// The connection a session is attached to right now: its owner, while that is open
    /// and still bound to it.
    fn attached_conn(&self, sid: SessionId) -> Option<ConnId> {
        let owner = ConnId(self.sessions.owner_of(sid)?.get());
        self.conns
            .get(owner)
            .is_some_and(|c| c.session == Some(sid))
            .then_some(owner)
    }

    /// Milliseconds until the next tick is due.
    pub fn next_tick_ms(&mut self, now: Now) -> u64 {
        if !self.expiring.is_empty() {
            return 0;
        }
        self.sessions.wait_time_ms(now.mono_ms)
    }

    /// Expires every session whose deadline has passed. The shell calls this at least
    /// once per tickTime (the tracker counts longer silences as a stall of the server).
    ///
    /// A due bucket is marked closing at once, but its closeSession transactions run at
    /// most [`EXPIRED_PER_TICK`] per call, so that other clients' requests are served
    /// between slices of a mass expiry, as they are between ZooKeeper's expirer handing
    /// sessions to the request pipeline one by one. [`Core::next_tick_ms`] is zero while
    /// some wait.
    pub fn tick(&mut self, now: Now) {
        self.sessions.tick(now.mono_ms);
        if self.sessions.stall_count() != self.stalls_logged {
            self.stalls_logged = self.sessions.stall_count();
            tracing::warn!(
                stalls = self.stalls_logged,
                stalled_ms_total = self.sessions.stall_total_ms(),
                "the server could not run for a while; session deadlines were extended by the stall"
            );
        }
        self.expiring
            .extend(self.sessions.poll_expired(now.mono_ms));
        for _ in 0..EXPIRED_PER_TICK {
            let Some(sid) = self.expiring.pop_front() else {
                break;
            };
            if !self.sessions.exists(sid) {
                continue;
            }
            tracing::info!(session = %sid, "session expired");
            self.stats.sessions_expired += 1;
            let attached = self.attached_conn(sid);
            self.end_session(sid, now);
            if let Some(conn) = attached {
                self.out.close(conn);
                if let Some(c) = self.conns.get_mut(conn) {
                    c.closing = true;
                }
            }
        }
    }

    /// Runs the closeSession transaction of a session the tracker already marked closing.
    fn end_session(&mut self, sid: SessionId, now: Now) {
        let mut paths = self.tree.ephemerals(sid.0);
        paths.sort();
        let txn = Txn::CloseSession(CloseSessionTxn {
            paths_to_delete: paths,
        });
        self.commit(sid, 0, txn, now);
        self.sessions.remove(sid);
    }

    /// One frame from a connection: the handshake if it has no session yet, else a request.
    pub fn handle_frame(&mut self, conn_id: ConnId, frame: Bytes, now: Now) {
        self.handle_frame_received(conn_id, frame, now.mono_ms, now);
    }

    /// Like [`Core::handle_frame`], for a frame that arrived at `received_mono_ms` and
    /// waited in a queue since: the wait counts in the reported latencies.
    pub fn handle_frame_received(
        &mut self,
        conn_id: ConnId,
        frame: Bytes,
        received_mono_ms: u64,
        now: Now,
    ) {
        self.received_mono_ms = received_mono_ms.min(now.mono_ms);
        let Some(conn) = self.conns.get(conn_id) else {
            return;
        };
        if conn.closing {
            return;
        }
        self.stats.packets_received += 1;
        if conn.session.is_none() {
            self.handle_connect(conn_id, frame, now);
        } else {
            self.handle_request(conn_id, frame, now);
        }
    }

    fn reply(&mut self, conn_id: ConnId, xid: i32, err: i32, resp: &Response, now: Now) {
        let zxid = match xid {
            xid::AUTH => 0,
            _ => self.last_zxid,
        };
        write_reply(self.out.reply_buf(conn_id), xid, zxid, err, resp);
        self.count_reply(conn_id, Some(zxid), now);
    }

    fn count_reply(&mut self, conn_id: ConnId, zxid: Option<i64>, now: Now) {
        let latency_ms = now.mono_ms.saturating_sub(self.received_mono_ms);
        self.stats.packets_sent += 1;
        self.stats.latency.record(latency_ms);
        if let Some(c) = self.conns.get_mut(conn_id) {
            c.stats.sent += 1;
            if let Some(zxid) = zxid {
                c.stats.last_zxid = zxid;
            }
            c.stats.last_response_wall_ms = now.wall_ms;
            c.stats.latency.record(latency_ms);
        }
    }

    fn reply_err(&mut self, conn_id: ConnId, xid: i32, err: ErrorCode, now: Now) {
        self.reply(conn_id, xid, err.code(), &Response::Empty, now);
    }

    fn close_after_flush(&mut self, conn_id: ConnId) {
        self.out.close(conn_id);
        if let Some(c) = self.conns.get_mut(conn_id) {
            c.closing = true;
        }
    }

    fn handle_request(&mut self, conn_id: ConnId, frame: Bytes, now: Now) {
        let mut r = Reader::new(frame);
        let Ok(header) = RequestHeader::read(&mut r) else {
            tracing::debug!(conn = conn_id.0, "request header did not parse; closing");
            self.close_after_flush(conn_id);
            return;
        };
        let Some(conn) = self.conns.get_mut(conn_id) else {
            return;
        };
        let Some(sid) = conn.session else { return };
        conn.stats.received += 1;
        conn.stats.last_op = Some(header.op);
        if header.xid >= 0 {
            conn.stats.last_cxid = Some(header.xid);
        }
        if self.sessions.touch(sid, now.mono_ms).is_err() {
            self.reply_err(conn_id, header.xid, ErrorCode::SessionExpired, now);
            self.close_after_flush(conn_id);
            return;
        }
        let request = match decode_request(header.op, r.take_rest()) {
            Ok(req) => req,
            Err(RequestError::Unimplemented(code)) => {
                tracing::debug!(
                    conn = conn_id.0,
                    opcode = code,
                    "unimplemented opcode; closing"
                );
                self.reply_err(conn_id, header.xid, ErrorCode::Unimplemented, now);
                self.close_after_flush(conn_id);
                return;
            }
            Err(e) => {
                tracing::debug!(conn = conn_id.0, error = %e, "malformed request");
                self.reply_err(conn_id, header.xid, ErrorCode::MarshallingError, now);
                return;
            }
        };
        self.dispatch(conn_id, sid, header.xid, request, now);
    }

    fn dispatch(&mut self, conn_id: ConnId, sid: SessionId, xid: i32, request: Request, now: Now) {
        match request {
            Request::Ping => {
                let zxid = self.last_zxid;
                write_reply(
                    self.out.reply_buf(conn_id),
                    xid::PING,
                    zxid,
                    0,
                    &Response::Empty,
                );
                self.count_reply(conn_id, None, now);
            }
            Request::CloseSession => {
                self.sessions.set_closing(sid);
                self.stats.sessions_closed += 1;
                self.end_session(sid, now);
                self.reply(conn_id, xid, 0, &Response::Empty, now);
                self.close_after_flush(conn_id);
            }
            Request::Auth(packet) => self.handle_auth(conn_id, xid, packet, now),
            Request::Sasl(_) => {
                self.stats.auth_failed += 1;
                self.reply_err(conn_id, xid, ErrorCode::AuthFailed, now);
                self.close_after_flush(conn_id);
            }
            Request::Reconfig(_) => {
                let err = ErrorCode::ReconfigDisabled;
                self.commit(sid, xid, Txn::Error(ErrorTxn { err: err.code() }), now);
                self.reply_err(conn_id, xid, err, now);
            }
            req if req.is_write() => {
                let identities = self.identities(conn_id);
                let (kind, prepped) = self.prep_write(sid, &identities, req);
                match prepped {
                    Ok(txn) => {
                        let results = self.commit(sid, xid, txn, now);
                        let resp = self.write_response(&kind, results);
                        self.reply(conn_id, xid, 0, &resp, now);
                    }
                    // As in ZooKeeper, a refused write is logged as an error transaction and
                    // consumes a zxid, which the reply carries.
                    Err(PrepError::Code(code)) => {
                        self.commit(sid, xid, Txn::Error(ErrorTxn { err: code.code() }), now);
                        self.reply_err(conn_id, xid, code, now);
                    }
                    Err(PrepError::MultiFailed { results, txn }) => {
                        self.commit(sid, xid, txn, now);
                        self.reply(conn_id, xid, 0, &Response::Multi(results), now)
                    }
                }
            }
            req => {
                let identities = self.identities(conn_id);
                match self.read(conn_id, sid, &identities, req) {
                    Ok(resp) => self.reply(conn_id, xid, 0, &resp, now),
                    Err(code) => self.reply_err(conn_id, xid, code, now),
                }
            }
        }
    }

    /// Cloning allocates only for connections that authenticated.
    fn identities(&self, conn_id: ConnId) -> acl::Identities {
        self.conns
            .get(conn_id)
            .map(|c| c.identities.clone())
            .unwrap_or_default()
    }

    fn handle_auth(
        &mut self,
        conn_id: ConnId,
        xid: i32,
        packet: oxkeeper_proto::AuthPacket,
        now: Now,
    ) {
        let new_ids = match packet.scheme.as_str() {
            "digest" => {
                let credential = String::from_utf8_lossy(&packet.auth).into_owned();
                let id = acl::digest_id(&credential);
                let mut ids = vec![Id::new("digest", &id)];
                if self.config.super_digest.as_deref() == Some(id.as_str()) {
                    ids.push(Id::new("super", ""));
                }
                ids
            }
            // It proves the connection's own address, which its identities hold from the
            // start.
            "ip" if self.conns.contains(conn_id) => Vec::new(),
            "ip" => return,
            _ => {
                tracing::info!(conn = conn_id.0, scheme = %packet.scheme, "auth with unknown scheme");
                self.stats.auth_failed += 1;
                self.reply_err(conn_id, xid, ErrorCode::AuthFailed, now);
                self.close_after_flush(conn_id);
                return;
            }
        };
        if let Some(c) = self.conns.get_mut(conn_id) {
            for id in new_ids {
                c.identities.add(id);
            }
        }
        self.reply(conn_id, xid, 0, &Response::Empty, now);
    }

    /// Assigns the next zxid to `txn`, applies it and sends its watch events. Returns the
    /// per-op results of the tree.
    fn commit(&mut self, sid: SessionId, cxid: i32, txn: Txn, now: Now) -> Vec<OpResult> {
        self.last_zxid += 1;
        let header = TxnHeader {
            client_id: sid.0,
            cxid,
            zxid: self.last_zxid,
            time: now.wall_ms,
            txn_type: txn.txn_type(),
        };
        let outcome = self.tree.apply(&header, &txn);
        self.log.push((header.clone(), txn));
        for trigger in &outcome.triggers {
            for conn in self.watches.trigger(&trigger.path, trigger.event_type) {
                // ZooKeeper 3.8.4+/3.9.2+: an event about a node the receiver may not read
                // is dropped (the one-shot watch is still consumed).
                let readable = self.conns.get(conn).is_some_and(|c| {
                    acl::allowed(
                        &trigger.acl,
                        perms::READ,
                        &c.identities,
                        self.config.skip_acl,
                    )
                });
                if !readable {
                    continue;
                }
                write_notification(
                    self.out.buf(conn),
                    header.zxid,
                    trigger.event_type,
                    &trigger.path,
                );
                self.stats.packets_sent += 1;
            }
        }
        outcome.results
    }

    fn write_response(&self, kind: &WriteKind, results: Vec<OpResult>) -> Response {
        match kind {
            WriteKind::Multi { ops } => Response::Multi(
                results
                    .iter()
                    .zip(ops)
                    .map(|(r, op)| r.to_multi_result(*op))
                    .collect(),
            ),
            WriteKind::Delete => Response::Empty,
            kind => match (kind, results.into_iter().next()) {
                (WriteKind::Create { op }, Some(OpResult::Created { path, stat })) => {
                    if *op == op::CREATE {
                        Response::Create(path)
                    } else {
                        Response::Create2(path, stat)
                    }
                }
                (WriteKind::SetData | WriteKind::SetAcl, Some(OpResult::Stat(stat))) => {
                    Response::Stat(stat)
                }
                (_, other) => {
                    // Prep validated everything the tree checks, so this is a broken
                    // invariant, not a client error.
                    tracing::error!(result = ?other, "transaction result does not match its request");
                    Response::Empty
                }
            },
        }
    }
}

/// Why prep refused a write.
enum PrepError {
    Code(ErrorCode),
    /// A multi whose op failed: the per-op results to send (header error 0) and the
    /// transaction ZooKeeper logs for it (earlier ops, then error records).
    MultiFailed {
        results: Vec<MultiResult>,
        txn: Txn,
    },
}

impl From<ErrorCode> for PrepError {
    fn from(e: ErrorCode) -> Self {
        PrepError::Code(e)
    }
}

#[cfg(test)]
mod tests;
