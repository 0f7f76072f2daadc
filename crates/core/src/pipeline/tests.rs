//! The pipeline driven by hand: frames in, bytes out, time advanced by the test.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use oxkeeper_proto::codes::{event_type, op, xid};
use oxkeeper_proto::frame::take_frame;
use oxkeeper_proto::*;

use super::*;
use crate::session::SessionConfig;

const TICK: u64 = 100;

struct Harness {
    core: Core,
    now: Now,
    inbox: HashMap<ConnId, BytesMut>,
    closed: Vec<ConnId>,
    next_conn: u64,
}

struct Client {
    conn: ConnId,
    session: i64,
    passwd: Bytes,
    xid: i32,
}

impl Harness {
    fn new() -> Harness {
        let now = Now {
            mono_ms: 1_000,
            wall_ms: 1_700_000_000_000,
        };
        let config = CoreConfig {
            session: SessionConfig::new(TICK as u32),
            super_digest: None,
            skip_acl: false,
            extended_types_enabled: false,
            enforce_quota: false,
        };
        Harness {
            core: Core::new(config, now),
            now,
            inbox: HashMap::new(),
            closed: vec![],
            next_conn: 1,
        }
    }

    fn advance(&mut self, ms: u64) {
        // The shell ticks at least twice a tick; do the same so no stall is seen.
        let mut left = ms;
        while left > 0 {
            let step = left.min(TICK / 2);
            self.now.mono_ms += step;
            self.now.wall_ms += step as i64;
            left -= step;
            self.core.tick(self.now);
            self.collect();
        }
    }

    fn collect(&mut self) {
        for d in self.core.take_output() {
            self.inbox
                .entry(d.conn)
                .or_default()
                .extend_from_slice(&d.bytes);
            if d.close {
                self.closed.push(d.conn);
                self.core.close_connection(d.conn);
            }
        }
    }

    fn frames(&mut self, conn: ConnId) -> Vec<Bytes> {
        let buf = self.inbox.entry(conn).or_default();
        let mut v = vec![];
        while let Some(f) = take_frame(buf, usize::MAX >> 1).expect("frame") {
            v.push(f);
        }
        v
    }

    fn connect_with(
        &mut self,
        session: i64,
        passwd: Bytes,
        last_zxid: i64,
    ) -> (ConnId, Option<ConnectResponse>) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.core
            .open_connection(conn, "127.0.0.1:5000".parse().expect("addr"), self.now);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: last_zxid,
            timeout_ms: 1000,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        self.core.handle_frame(conn, req.to_bytes(), self.now);
        self.collect();
        let resp = self
            .frames(conn)
            .first()
            .map(|f| ConnectResponse::decode(f.clone()).expect("connect response"));
        (conn, resp)
    }

    fn connect(&mut self) -> Client {
        let (conn, resp) = self.connect_with(0, Bytes::from_static(&[0; 16]), 0);
        let resp = resp.expect("a response");
        assert_eq!(resp.timeout_ms, 1000);
        assert_eq!(resp.passwd.len(), 16);
        Client {
            conn,
            session: resp.session_id,
            passwd: resp.passwd,
            xid: 0,
        }
    }

    /// Sends one request and returns every frame the client got back, in order.
    fn call(
        &mut self,
        c: &mut Client,
        opcode: i32,
        body: impl FnOnce(&mut BytesMut),
    ) -> Vec<(ReplyHeader, Bytes)> {
        c.xid += 1;
        let mut w = BytesMut::new();
        RequestHeader {
            xid: c.xid,
            op: opcode,
        }
        .write(&mut w);
        body(&mut w);
        self.core.handle_frame(c.conn, w.freeze(), self.now);
        self.collect();
        self.frames(c.conn)
            .into_iter()
            .map(|f| {
                let mut r = Reader::new(f);
                let h = ReplyHeader::read(&mut r).expect("reply header");
                (h, r.take_rest())
            })
            .collect()
    }

    fn create(&mut self, c: &mut Client, path: &str, flags: i32) -> (i32, String) {
        let replies = self.call(c, op::CREATE, |w| {
            CreateRequest {
                path: path.into(),
                data: Some(Bytes::new()),
                acl: Acl::open(),
                flags,
            }
            .write(w)
        });
        let (h, body) = replies.last().cloned().expect("reply");
        let path = if h.err == 0 {
            CreateResponse::decode(body).expect("create").path
        } else {
            String::new()
        };
        (h.err, path)
    }

    fn exists_watch(&mut self, c: &mut Client, path: &str) -> i32 {
        let replies = self.call(c, op::EXISTS, |w| {
            PathWatchRequest {
                path: path.into(),
                watch: true,
            }
            .write(w)
        });
        replies.last().expect("reply").0.err
    }
}

#[test]
fn new_session_create_and_read() {
    let mut h = Harness::new();
    let mut c = h.connect();
    assert_eq!(c.session >> 56, 1, "server id 1 in the top byte");
    assert_eq!(h.create(&mut c, "/a", 0), (0, "/a".into()));
    assert_eq!(h.create(&mut c, "/a/s-", 2), (0, "/a/s-0000000000".into()));
    assert_eq!(h.create(&mut c, "/a", 0).0, ErrorCode::NodeExists.code());
    assert_eq!(
        h.create(&mut c, "/missing/x", 0).0,
        ErrorCode::NoNode.code()
    );
    assert_eq!(h.create(&mut c, "/a/", 0).0, ErrorCode::BadArguments.code());
    let replies = h.call(&mut c, op::GET_DATA, |w| {
        PathWatchRequest {
            path: "/a".into(),
            watch: false,
        }
        .write(w)
    });
    let (hdr, body) = replies[0].clone();
    assert_eq!(hdr.xid, c.xid);
    assert_eq!(
        hdr.zxid, 6,
        "createSession, two creates, and a zxid per refused write"
    );
    let resp = GetDataResponse::decode(body).expect("getData");
    assert_eq!(resp.stat.num_children, 1);
    assert_eq!(resp.stat.cversion, 1);
}

#[test]
fn ping_is_answered_with_xid_minus_two() {
    let mut h = Harness::new();
    let mut c = h.connect();
    let mut w = BytesMut::new();
    RequestHeader {
        xid: xid::PING,
        op: op::PING,
    }
    .write(&mut w);
    h.core.handle_frame(c.conn, w.freeze(), h.now);
    h.collect();
    let f = h.frames(c.conn);
    let hdr = ReplyHeader::decode(f[0].clone()).expect("header");
    assert_eq!((hdr.xid, hdr.zxid, hdr.err), (-2, 1, 0));
    c.xid = 0;
}

#[test]
fn watch_event_precedes_the_reply_that_caused_it() {
    let mut h = Harness::new();
    let mut c = h.connect();
    assert_eq!(h.exists_watch(&mut c, "/w"), ErrorCode::NoNode.code());
    let replies = h.call(&mut c, op::CREATE, |w| {
        CreateRequest {
            path: "/w".into(),
            data: None,
            acl: Acl::open(),
            flags: 0,
        }
        .write(w)
    });
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0].0.xid, xid::NOTIFICATION);
    let ev = WatcherEvent::decode(replies[0].1.clone()).expect("event");
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (event_type::NODE_CREATED, "/w")
    );
    assert_eq!(
        replies[0].0.zxid, replies[1].0.zxid,
        "event carries the txn zxid"
    );
    assert_eq!(replies[1].0.xid, c.xid);
}

#[test]
fn expired_session_loses_its_ephemerals_within_one_tick_of_its_timeout() {
    let mut h = Harness::new();
    let mut owner = h.connect();
    let mut watcher = h.connect();
    assert_eq!(h.create(&mut owner, "/e", 1).0, 0);
    assert_eq!(h.exists_watch(&mut watcher, "/e"), 0);
    let touched_at = h.now.mono_ms;
    // The watcher keeps its session alive by pinging.
    let mut deleted_at = None;
    for _ in 0..40 {
        h.advance(TICK / 2);
        let mut w = BytesMut::new();
        RequestHeader {
            xid: xid::PING,
            op: op::PING,
        }
        .write(&mut w);
        h.core.handle_frame(watcher.conn, w.freeze(), h.now);
        h.collect();
        let got_event = h.frames(watcher.conn).iter().any(|f| {
            ReplyHeader::decode(f.clone())
                .map(|hd| hd.xid == xid::NOTIFICATION)
                .unwrap_or(false)
        });
        if got_event && deleted_at.is_none() {
            deleted_at = Some(h.now.mono_ms);
        }
    }
    let elapsed = deleted_at.expect("ephemeral deleted") - touched_at;
    assert!(
        (1000..=1000 + TICK).contains(&elapsed),
        "deleted after {elapsed} ms"
    );
    assert!(
        h.closed.contains(&owner.conn),
        "the expired session's connection is closed"
    );
    assert!(h.core.tree().get("/e").is_none());
    assert!(!h.closed.contains(&watcher.conn));
}

/// A bucket larger than one slice: every session is marked closing when the bucket is
/// due, their closeSession transactions run a slice per tick call, and the core asks to
/// be called again at once until none wait.
#[test]
fn a_mass_expiry_runs_in_slices_and_finishes() {
    let mut h = Harness::new();
    let n = EXPIRED_PER_TICK * 2 + 500;
    for i in 0..n {
        let mut c = h.connect();
        assert_eq!(h.create(&mut c, &format!("/e{i}"), 1).0, 0);
        h.core.close_connection(c.conn);
    }
    h.collect();
    assert_eq!(h.core.tree().ephemeral_count(), n);
    let mut slices = Vec::new();
    for _ in 0..100 {
        h.advance(TICK / 2);
        let left = h.core.tree().ephemeral_count();
        if left < n {
            slices.push(left);
            break;
        }
    }
    assert_eq!(slices, [n - EXPIRED_PER_TICK], "one slice on the due tick");
    assert_eq!(h.core.next_tick_ms(h.now), 0, "the rest is due at once");
    while h.core.tree().ephemeral_count() > 0 {
        h.core.tick(h.now);
        h.collect();
        slices.push(h.core.tree().ephemeral_count());
    }
    assert_eq!(slices, [n - EXPIRED_PER_TICK, 500, 0]);
    assert!(h.core.next_tick_ms(h.now) > 0, "nothing left to expire");
}

#[test]
fn a_stalled_server_expires_nobody() {
    let mut h = Harness::new();
    let mut c = h.connect();
    assert_eq!(h.create(&mut c, "/e", 1).0, 0);
    // The server does not run for ten timeouts, then wakes up.
    h.now.mono_ms += 10_000;
    h.now.wall_ms += 10_000;
    h.core.tick(h.now);
    h.collect();
    assert!(h.core.tree().get("/e").is_some());
    assert_eq!(h.core.sessions().stall_count(), 1);
    // Silence after the stall still counts.
    h.advance(1000 + TICK);
    assert!(h.core.tree().get("/e").is_none());
}

#[test]
fn close_session_removes_ephemerals_then_closes() {
    let mut h = Harness::new();
    let mut c = h.connect();
    h.create(&mut c, "/e1", 1);
    h.create(&mut c, "/e2", 3);
    let replies = h.call(&mut c, op::CLOSE_SESSION, |_| {});
    assert_eq!(replies.last().expect("reply").0.err, 0);
    assert!(h.closed.contains(&c.conn));
    assert_eq!(h.core.tree().ephemeral_count(), 0);
    assert!(!h
        .core
        .sessions()
        .exists(crate::session::SessionId(c.session)));
}

#[test]
fn resume_with_password_and_refuse_without() {
    let mut h = Harness::new();
    let mut c = h.connect();
    h.create(&mut c, "/e", 1);
    // Wrong password: refused, and the live connection is left alone.
    let (bad, resp) = h.connect_with(c.session, Bytes::from_static(&[7; 16]), 0);
    let resp = resp.expect("a refusal");
    assert_eq!((resp.timeout_ms, resp.session_id), (0, 0));
    assert_eq!(&resp.passwd[..], &[0u8; 16]);
    assert!(h.closed.contains(&bad));
    assert!(!h.closed.contains(&c.conn));
    // Right password: the session moves, the old connection is closed.
    let (good, resp) = h.connect_with(c.session, c.passwd.clone(), 0);
    assert_eq!(resp.expect("accepted").session_id, c.session);
    assert!(h.closed.contains(&c.conn));
    assert!(!h.closed.contains(&good));
    assert!(h.core.tree().get("/e").is_some());
}

#[test]
fn expiry_closes_the_connection_the_session_is_on_now_and_no_other() {
    let mut h = Harness::new();
    let c = h.connect();
    let other = h.connect();
    // The session moves to a new connection; the old one is closed by the move.
    let (moved, resp) = h.connect_with(c.session, c.passwd.clone(), 0);
    assert_eq!(resp.expect("accepted").session_id, c.session);
    assert!(h.closed.contains(&c.conn));
    // Only `other` keeps pinging; the moved session expires and takes its connection.
    let mut other = other;
    // Past the 1,000 ms timeout and the tick its deadline rounds up to.
    for _ in 0..13 {
        h.advance(TICK);
        h.call(&mut other, op::PING, |_| {});
    }
    assert!(!h.core.sessions().exists(SessionId(c.session)));
    assert!(h.closed.contains(&moved));
    assert!(!h.closed.contains(&other.conn));

    // A session whose connection is already gone expires without closing anything.
    let gone = h.connect();
    h.core.close_connection(gone.conn);
    let before = h.closed.len();
    // Past the 1,000 ms timeout and the tick its deadline rounds up to.
    for _ in 0..13 {
        h.advance(TICK);
        h.call(&mut other, op::PING, |_| {});
    }
    assert!(!h.core.sessions().exists(SessionId(gone.session)));
    assert_eq!(h.closed.len(), before);
    assert!(!h.closed.contains(&other.conn));
}

#[test]
fn client_ahead_of_the_server_is_refused_without_a_reply() {
    let mut h = Harness::new();
    let (conn, resp) = h.connect_with(0, Bytes::from_static(&[0; 16]), 1_000);
    assert!(resp.is_none());
    assert!(h.closed.contains(&conn));
}

#[test]
fn unknown_opcode_is_unimplemented_then_closed_and_garbage_is_marshalling_error() {
    let mut h = Harness::new();
    let mut c = h.connect();
    let replies = h.call(&mut c, op::GET_DATA, |w| {
        w.extend_from_slice(&[0, 0, 0, 9, b'/'])
    });
    assert_eq!(replies[0].0.err, ErrorCode::MarshallingError.code());
    assert!(!h.closed.contains(&c.conn));
    let replies = h.call(&mut c, 999, |_| {});
    assert_eq!(replies[0].0.err, ErrorCode::Unimplemented.code());
    assert!(h.closed.contains(&c.conn));
}

#[test]
fn failed_multi_changes_nothing() {
    let mut h = Harness::new();
    let mut c = h.connect();
    let replies = h.call(&mut c, op::MULTI, |w| {
        MultiHeader {
            op: op::CREATE,
            done: false,
            err: -1,
        }
        .write(w);
        CreateRequest {
            path: "/m".into(),
            data: None,
            acl: Acl::open(),
            flags: 0,
        }
        .write(w);
        MultiHeader {
            op: op::CHECK,
            done: false,
            err: -1,
        }
        .write(w);
        CheckVersionRequest {
            path: "/x".into(),
            version: -1,
        }
        .write(w);
        MultiHeader {
            op: -1,
            done: true,
            err: -1,
        }
        .write(w);
    });
    assert_eq!(replies[0].0.err, 0);
    assert!(h.core.tree().get("/m").is_none());
    let mut r = Reader::new(replies[0].1.clone());
    let first = MultiHeader::read(&mut r).expect("header");
    assert_eq!((first.op, first.err), (-1, 0));
    let _ = ErrorResponse::read(&mut r);
    let second = MultiHeader::read(&mut r).expect("header");
    assert_eq!((second.op, second.err), (-1, ErrorCode::NoNode.code()));
}

#[test]
fn containers_and_ttl_nodes_are_reaped() {
    let mut h = Harness::new();
    h.core.config.extended_types_enabled = true;
    let mut c = h.connect();
    let replies = h.call(&mut c, op::CREATE_CONTAINER, |w| {
        CreateRequest {
            path: "/c".into(),
            data: None,
            acl: Acl::open(),
            flags: 4,
        }
        .write(w)
    });
    assert_eq!(replies[0].0.err, 0);
    assert_eq!(h.create(&mut c, "/never", 0).0, 0);
    // A container that never had a child stays.
    assert!(h.core.reap_candidates(h.now, 0).is_empty());
    assert_eq!(h.create(&mut c, "/c/child", 1).0, 0);
    assert!(
        h.core.reap_candidates(h.now, 0).is_empty(),
        "it has a child"
    );
    let replies = h.call(&mut c, op::DELETE, |w| {
        DeleteRequest {
            path: "/c/child".into(),
            version: -1,
        }
        .write(w)
    });
    assert_eq!(replies[0].0.err, 0);
    assert_eq!(h.core.reap_candidates(h.now, 0), vec!["/c".to_owned()]);
    assert!(h.core.reap("/c", h.now));
    assert!(h.core.tree().get("/c").is_none());

    let replies = h.call(&mut c, op::CREATE_TTL, |w| {
        CreateTtlRequest {
            path: "/t".into(),
            data: None,
            acl: Acl::open(),
            flags: 5,
            ttl: 500,
        }
        .write(w)
    });
    assert_eq!(replies[0].0.err, 0);
    assert!(h.core.reap_candidates(h.now, 0).is_empty());
    h.advance(600);
    assert_eq!(h.core.reap_candidates(h.now, 0), vec!["/t".to_owned()]);
    assert!(h.core.reap("/t", h.now));
    assert!(
        !h.core.reap("/never", h.now),
        "a plain node is never reaped"
    );
}
