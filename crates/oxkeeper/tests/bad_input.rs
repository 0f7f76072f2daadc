//! Hand-made frames over raw TCP: malformed lengths, garbage handshakes, unknown opcodes,
//! truncated bodies, bad paths, impossible zxids, wrong passwords and old-style handshakes.
//! After each, a normal client still works and data written before is intact.
//!
//! Expectations were checked against Apache ZooKeeper 3.8 (`OXKEEPER_TEST_EXTERNAL`).

mod common;

use std::time::Duration;

use common::{connect_body, create_body, jute_bytes, path_watch_body, request, Raw, TestServer};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());

const CLOSE_WAIT: Duration = Duration::from_secs(3);

const OP_CREATE: i32 = 1;
const OP_DELETE: i32 = 2;
const OP_GET_DATA: i32 = 4;
const OP_PING: i32 = 11;
const OP_CHECK: i32 = 13;

/// Writes a node through a normal client; `intact` checks it afterwards.
async fn seed(server: &TestServer, name: &str) -> (Client, String) {
    let zk = common::client(server).await;
    let p = server.path(name);
    zk.create(&p, b"precious", &PERSISTENT).await.expect("seed");
    (zk, p)
}

/// The earlier client and a brand-new one both still work and see the data.
async fn intact(server: &TestServer, zk: &Client, p: &str) {
    let (data, _) = zk
        .get_data(p)
        .await
        .expect("the earlier client still works");
    assert_eq!(data, b"precious");
    let fresh = common::client(server).await;
    let (data, _) = fresh.get_data(p).await.expect("a new client works");
    assert_eq!(data, b"precious");
    fresh
        .set_data(p, b"precious", None)
        .await
        .expect("and can write");
}

/// Sends a ping and expects its reply (xid -2, no error).
fn ping_ok(raw: &mut Raw) {
    raw.send_frame(&request(-2, OP_PING, &[]));
    let r = raw.read_non_event_reply().expect("ping reply");
    assert_eq!((r.xid, r.err), (-2, 0), "ping reply {r:?}");
    assert!(r.body.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_or_negative_first_frame_closes_without_a_byte() {
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_len_first").await;
    for len in [0x10_0000_i32, 0x7fff_ffff, -1, i32::MIN] {
        let mut raw = Raw::connect(&server.addr);
        raw.send_raw(&len.to_be_bytes());
        raw.closed_without_bytes(CLOSE_WAIT)
            .unwrap_or_else(|e| panic!("length {len:#x}: {e}"));
    }
    intact(&server, &zk, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_or_negative_frame_after_handshake_closes() {
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_len_later").await;
    for len in [0x10_0000_i32, -5] {
        let (mut raw, resp) = Raw::handshake(&server.addr, 2000);
        assert_ne!(resp.session_id, 0);
        ping_ok(&mut raw);
        raw.send_raw(&len.to_be_bytes());
        raw.closed_without_bytes(CLOSE_WAIT)
            .unwrap_or_else(|e| panic!("length {len:#x}: {e}"));
    }
    intact(&server, &zk, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_handshake_closes() {
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_handshake").await;

    // Too short for a ConnectRequest.
    let mut raw = Raw::connect(&server.addr);
    raw.send_frame(&[0xff; 8]);
    raw.closed_without_bytes(CLOSE_WAIT)
        .expect("short handshake");

    // A password length running past the frame.
    let mut body = Vec::new();
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&2000i32.to_be_bytes());
    body.extend_from_slice(&0i64.to_be_bytes());
    body.extend_from_slice(&1000i32.to_be_bytes());
    body.extend_from_slice(&[0u8; 16]);
    let mut raw = Raw::connect(&server.addr);
    raw.send_frame(&body);
    raw.closed_without_bytes(CLOSE_WAIT)
        .expect("password overrunning the frame");

    // An empty frame.
    let mut raw = Raw::connect(&server.addr);
    raw.send_frame(&[]);
    raw.closed_without_bytes(CLOSE_WAIT)
        .expect("empty handshake");

    intact(&server, &zk, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_opcode_gets_unimplemented_then_close() {
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_opcode").await;
    let (mut raw, _) = Raw::handshake(&server.addr, 2000);
    ping_ok(&mut raw);
    raw.send_frame(&request(7, 999, &path_watch_body(&p, false)));
    let r = raw
        .read_non_event_reply()
        .expect("a reply to the unknown opcode");
    assert_eq!(r.xid, 7);
    assert_eq!(r.err, -6, "ZUNIMPLEMENTED");
    assert!(r.body.is_empty(), "no body: {:?}", r.body);
    assert!(raw.closed_within(CLOSE_WAIT), "then the connection closes");
    intact(&server, &zk, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn top_level_check_gets_unimplemented_then_close() {
    // ZooKeeper 3.9 (ZOOKEEPER-2623) rejects check outside multi like an unknown opcode.
    // ZooKeeper 3.8.0 fails this test: it hits a NullPointerException and never answers.
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_check").await;
    let (mut raw, _) = Raw::handshake(&server.addr, 2000);
    let mut body = Vec::new();
    jute_bytes(&mut body, p.as_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    raw.send_frame(&request(3, OP_CHECK, &body));
    let r = raw.read_non_event_reply().expect("a reply to check");
    assert_eq!((r.xid, r.err), (3, -6), "check outside multi: {r:?}");
    assert!(raw.closed_within(CLOSE_WAIT), "then the connection closes");
    intact(&server, &zk, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_body_gets_marshalling_error_and_the_connection_lives() {
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_truncated").await;
    let (mut raw, _) = Raw::handshake(&server.addr, 2000);

    // A path length of 10 but only 3 bytes, and no watch flag.
    let mut body = Vec::new();
    body.extend_from_slice(&10i32.to_be_bytes());
    body.extend_from_slice(b"/ab");
    raw.send_frame(&request(5, OP_GET_DATA, &body));
    let r = raw
        .read_non_event_reply()
        .expect("a reply to the truncated getData");
    assert_eq!((r.xid, r.err), (5, -5), "ZMARSHALLINGERROR: {r:?}");
    ping_ok(&mut raw);

    // A body missing only its watch flag.
    let mut body = Vec::new();
    jute_bytes(&mut body, p.as_bytes());
    raw.send_frame(&request(6, OP_GET_DATA, &body));
    let r = raw.read_non_event_reply().expect("a reply");
    assert_eq!((r.xid, r.err), (6, -5), "{r:?}");

    // The same connection still serves a proper request.
    raw.send_frame(&request(8, OP_GET_DATA, &path_watch_body(&p, false)));
    let r = raw.read_non_event_reply().expect("getData reply");
    assert_eq!((r.xid, r.err), (8, 0));
    assert_eq!(&r.body[..4], &8i32.to_be_bytes(), "data length");
    assert_eq!(&r.body[4..12], b"precious");
    assert_eq!(r.body.len(), 12 + 68, "data and a Stat");
    intact(&server, &zk, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_a_bad_path_gets_bad_arguments() {
    // ZooKeeper's order of checks: no slash at all or a NUL is BadArguments at once; otherwise
    // the parent (everything before the last slash) is looked up first (NoNode), and only then
    // is the whole path validated (BadArguments).
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_path").await;
    let (mut raw, _) = Raw::handshake(&server.addr, 2000);
    let creates: Vec<(String, i32)> = vec![
        ("".into(), -8),
        ("a".into(), -8),
        ("a/b".into(), -101),
        (format!("{p}/"), -8),
        (format!("{p}/."), -8),
        (format!("{p}/.."), -8),
        (format!("{p}/x\u{1}"), -8),
        (format!("{p}/\u{0}x"), -8),
        ("/zookeeper/\u{0}x".into(), -8),
        (format!("{p}//x"), -101),
        (format!("{p}/none/./x"), -101),
        ("/".into(), -110),
    ];
    for (i, (path, err)) in creates.iter().enumerate() {
        let xid = 100 + i as i32;
        raw.send_frame(&request(xid, OP_CREATE, &create_body(path, b"", 0)));
        let r = raw.read_non_event_reply().expect("create reply");
        assert_eq!((r.xid, r.err), (xid, *err), "create {path:?}: {r:?}");
    }
    let deletes: Vec<(String, i32)> = vec![
        ("".into(), -8),
        ("a".into(), -8),
        ("/".into(), -8),
        ("/zookeeper/\u{0}x".into(), -8),
        ("a/b".into(), -101),
    ];
    for (i, (path, err)) in deletes.iter().enumerate() {
        let xid = 150 + i as i32;
        let mut body = Vec::new();
        jute_bytes(&mut body, path.as_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        raw.send_frame(&request(xid, OP_DELETE, &body));
        let r = raw.read_non_event_reply().expect("delete reply");
        assert_eq!((r.xid, r.err), (xid, *err), "delete {path:?}: {r:?}");
    }
    // Reads just look the path up: "" is the root's own key.
    raw.send_frame(&request(200, OP_GET_DATA, &path_watch_body("a/b", false)));
    let r = raw.read_non_event_reply().expect("getData reply");
    assert_eq!((r.xid, r.err), (200, -101), "getData a/b: {r:?}");
    raw.send_frame(&request(201, OP_GET_DATA, &path_watch_body("", false)));
    let r = raw.read_non_event_reply().expect("getData reply");
    assert_eq!((r.xid, r.err), (201, 0), "getData \"\" is the root: {r:?}");
    ping_ok(&mut raw);
    raw.send_frame(&request(
        202,
        OP_CREATE,
        &create_body(&format!("{p}/fine"), b"", 0),
    ));
    let r = raw.read_non_event_reply().expect("create reply");
    assert_eq!(
        (r.xid, r.err),
        (202, 0),
        "a good create on the same connection"
    );
    intact(&server, &zk, &p).await;
    assert_eq!(zk.list_children(&p).await.expect("ls"), vec!["fine"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn last_zxid_from_the_future_is_refused() {
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_zxid").await;
    let mut raw = Raw::connect(&server.addr);
    raw.send_frame(&connect_body(
        i64::MAX / 2,
        2000,
        0,
        &[0u8; 16],
        Some(false),
    ));
    raw.closed_without_bytes(CLOSE_WAIT)
        .expect("no ConnectResponse, just a close");
    intact(&server, &zk, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_gets_an_empty_session() {
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_password").await;
    // A live session with no connection at the moment (ZooKeeper closes the owner's connection
    // when its id is presented, and the owner's reconnect would race with the answer).
    let owner = Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .with_detached()
        .connect(&server.addr)
        .await
        .expect("connect");
    let q = format!("{p}_eph");
    owner
        .create(
            &q,
            b"",
            &CreateMode::Ephemeral.with_acls(Acls::anyone_all()),
        )
        .await
        .expect("ephemeral");
    let info = owner.into_session();
    let sid = info.id().0;
    for read_only in [Some(false), None] {
        let mut raw = Raw::connect(&server.addr);
        raw.send_frame(&connect_body(0, 4000, sid, &[0x5a; 16], read_only));
        let resp = raw.read_connect_response().expect("a ConnectResponse");
        assert_eq!(resp.protocol_version, 0);
        assert_eq!(resp.timeout, 0);
        assert_eq!(resp.session_id, 0);
        assert_eq!(resp.password, vec![0u8; 16]);
        assert_eq!(
            resp.body_len,
            if read_only.is_some() { 37 } else { 36 },
            "readOnly byte echoed only if sent"
        );
        assert!(raw.closed_within(CLOSE_WAIT), "then the connection closes");
    }
    // A session id nobody has.
    let mut raw = Raw::connect(&server.addr);
    raw.send_frame(&connect_body(0, 2000, 0x0bad_cafe, &[0u8; 16], Some(false)));
    let resp = raw.read_connect_response().expect("a ConnectResponse");
    assert_eq!((resp.timeout, resp.session_id), (0, 0));
    assert!(raw.closed_within(CLOSE_WAIT));

    // The session itself is untouched: the right password resumes it, ephemeral and all.
    let resumed = Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .with_session(info)
        .connect(&server.addr)
        .await
        .expect("resume with the right password");
    assert_eq!(resumed.session_id().0, sid);
    let (_, stat) = resumed.get_data(&q).await.expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, sid);
    intact(&server, &zk, &p).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn handshake_without_read_only_byte_gets_a_36_byte_response() {
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_old_client").await;
    let mut raw = Raw::connect(&server.addr);
    let body = connect_body(0, 2000, 0, &[0u8; 16], None);
    assert_eq!(body.len(), 44);
    raw.send_frame(&body);
    let resp = raw.read_connect_response().expect("a ConnectResponse");
    assert_eq!(resp.body_len, 36);
    assert_eq!(resp.read_only, None);
    assert_eq!(resp.timeout, 2000);
    assert_ne!(resp.session_id, 0);
    assert_eq!(resp.password.len(), 16);
    ping_ok(&mut raw);
    raw.send_frame(&request(1, OP_GET_DATA, &path_watch_body(&p, false)));
    let r = raw.read_non_event_reply().expect("getData");
    assert_eq!((r.xid, r.err), (1, 0));

    let (_, resp) = Raw::handshake(&server.addr, 2000);
    assert_eq!(resp.body_len, 37, "with the readOnly byte");
    assert_eq!(resp.read_only, Some(false));
    intact(&server, &zk, &p).await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A client that pipelines large reads and does not read the replies: the server stops
/// reading its requests instead of queueing every reply in memory, and once the client
/// reads, every reply arrives, complete and in order.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_does_not_read_is_throttled_and_loses_nothing() {
    if common::is_external() {
        return;
    }
    let server = TestServer::start();
    let (zk, p) = seed(&server, "bad_not_reading").await;
    let big = server.path("bad_not_reading_big");
    let data = vec![7u8; 128 * 1024];
    zk.create(&big, &data, &PERSISTENT).await.expect("big node");
    let before = rss_kib(server.pid());

    let (mut raw, _) = Raw::handshake(&server.addr, 30_000);
    const REQUESTS: i32 = 300;
    let mut writer = raw.stream.try_clone().expect("clone");
    let body = path_watch_body(&big, false);
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        for xid in 1..=REQUESTS {
            let frame = request(xid, OP_GET_DATA, &body);
            let mut b = (frame.len() as i32).to_be_bytes().to_vec();
            b.extend_from_slice(&frame);
            writer.write_all(&b).expect("requests are accepted");
            if xid % 10 == 0 {
                std::thread::sleep(Duration::from_millis(3));
            }
        }
    });
    sender.join().expect("sender");
    // 300 replies of 128 KiB would be 37.5 MiB if they were all queued.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let grown = rss_kib(server.pid()).saturating_sub(before);
    assert!(
        grown < 24 * 1024,
        "the server grew by {grown} KiB for a client that does not read"
    );

    raw.stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    for xid in 1..=REQUESTS {
        let r = raw
            .read_non_event_reply()
            .unwrap_or_else(|| panic!("reply {xid} did not arrive"));
        assert_eq!((r.xid, r.err), (xid, 0));
        assert_eq!(&r.body[4..4 + data.len()], &data[..]);
    }
    ping_ok(&mut raw);
    intact(&server, &zk, &p).await;
}
