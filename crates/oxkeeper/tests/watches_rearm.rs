//! Persistent and persistent-recursive watches re-armed on a new connection with
//! setWatches2, spoken on the wire by hand (the Rust client does not resend them).

#![allow(clippy::unwrap_used)]

mod common;

use common::{connect_body, request, Raw, TestServer};
use oxkeeper_proto::codes::{event_type, op, xid};
use oxkeeper_proto::{AddWatchRequest, Jute, SetWatches2, WatcherEvent};
use zookeeper_client::{Acls, CreateMode};

#[tokio::test]
async fn set_watches2_re_arms_persistent_and_recursive_watches() {
    let server = TestServer::start();
    let (mut first, session) = Raw::handshake(&server.addr, 4000);
    first.send_frame(&request(
        1,
        op::ADD_WATCH,
        &AddWatchRequest {
            path: "/rearm".into(),
            mode: 1,
        }
        .to_bytes(),
    ));
    let added = first.read_reply().unwrap();
    assert_eq!(added.err, 0);
    first.send_frame(&request(
        2,
        op::ADD_WATCH,
        &AddWatchRequest {
            path: "/p".into(),
            mode: 0,
        }
        .to_bytes(),
    ));
    let added = first.read_reply().unwrap();
    assert_eq!(added.err, 0);
    drop(first); // the watches go with the connection

    let mut second = Raw::connect(&server.addr);
    second.send_frame(&connect_body(
        added.zxid,
        4000,
        session.session_id,
        &session.password,
        Some(false),
    ));
    let resumed = second.read_connect_response().unwrap();
    assert_eq!(resumed.session_id, session.session_id);
    let rearm = SetWatches2 {
        relative_zxid: added.zxid,
        persistent_watches: vec!["/p".into()],
        persistent_recursive_watches: vec!["/rearm".into()],
        ..Default::default()
    };
    second.send_frame(&request(
        xid::SET_WATCHES,
        op::SET_WATCHES2,
        &rearm.to_bytes(),
    ));
    let reply = second.read_reply().unwrap();
    assert_eq!((reply.xid, reply.err), (xid::SET_WATCHES, 0));

    let zk = common::client(&server).await;
    let persistent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    zk.create("/rearm", b"", &persistent).await.unwrap();
    zk.create("/rearm/a", b"", &persistent).await.unwrap();
    zk.create("/p", b"", &persistent).await.unwrap();
    zk.create("/p/c", b"", &persistent).await.unwrap();
    zk.create("/p/c/deeper", b"", &persistent).await.unwrap();

    let mut events = Vec::new();
    for _ in 0..4 {
        let n = second.read_reply().unwrap();
        assert_eq!(n.xid, xid::NOTIFICATION);
        let e = WatcherEvent::decode(n.body.into()).unwrap();
        events.push((e.event_type, e.path));
    }
    assert_eq!(
        events,
        vec![
            (event_type::NODE_CREATED, "/rearm".to_owned()),
            (event_type::NODE_CREATED, "/rearm/a".to_owned()),
            (event_type::NODE_CREATED, "/p".to_owned()),
            (event_type::NODE_CHILDREN_CHANGED, "/p".to_owned()),
        ],
        "recursive sees descendants; persistent sees its node and its children"
    );
    // Nothing about /p/c/deeper: the ping's reply is the next frame.
    second.send_frame(&request(xid::PING, op::PING, &[]));
    assert_eq!(second.read_reply().unwrap().xid, xid::PING);
}

#[tokio::test]
async fn check_and_remove_watches_on_the_wire() {
    use oxkeeper_proto::codes::watcher_type;
    use oxkeeper_proto::{ErrorCode, PathWatchRequest, WatchTypeRequest};
    let server = TestServer::start();
    let (mut raw, _) = Raw::handshake(&server.addr, 4000);
    let mut call = |xid: i32, opcode: i32, body: Vec<u8>| {
        raw.send_frame(&request(xid, opcode, &body));
        raw.read_reply().unwrap().err
    };
    let watch = |path: &str, watch_type: i32| {
        WatchTypeRequest {
            path: path.into(),
            watch_type,
        }
        .to_bytes()
        .to_vec()
    };
    // A standard data watch from exists on a missing node, and a persistent one.
    assert_eq!(
        call(
            1,
            op::EXISTS,
            PathWatchRequest {
                path: "/w".into(),
                watch: true
            }
            .to_bytes()
            .to_vec()
        ),
        ErrorCode::NoNode.code()
    );
    assert_eq!(
        call(
            2,
            op::ADD_WATCH,
            AddWatchRequest {
                path: "/p".into(),
                mode: 0
            }
            .to_bytes()
            .to_vec()
        ),
        0
    );
    assert_eq!(
        call(3, op::CHECK_WATCHES, watch("/w", watcher_type::DATA)),
        0
    );
    assert_eq!(
        call(4, op::CHECK_WATCHES, watch("/w", watcher_type::CHILDREN)),
        ErrorCode::NoWatcher.code()
    );
    assert_eq!(
        call(5, op::CHECK_WATCHES, watch("/p", watcher_type::PERSISTENT)),
        0
    );
    assert_eq!(
        call(6, op::CHECK_WATCHES, watch("/p", watcher_type::ANY)),
        0
    );
    assert_eq!(
        call(7, op::REMOVE_WATCHES, watch("/p", watcher_type::PERSISTENT)),
        0
    );
    assert_eq!(
        call(8, op::CHECK_WATCHES, watch("/p", watcher_type::ANY)),
        ErrorCode::NoWatcher.code()
    );
    assert_eq!(
        call(9, op::REMOVE_WATCHES, watch("/w", watcher_type::ANY)),
        0
    );
    assert_eq!(
        call(10, op::REMOVE_WATCHES, watch("/w", watcher_type::ANY)),
        ErrorCode::NoWatcher.code()
    );
    assert_eq!(
        call(11, op::CHECK_WATCHES, watch("/w", 9)),
        ErrorCode::MarshallingError.code()
    );
}
