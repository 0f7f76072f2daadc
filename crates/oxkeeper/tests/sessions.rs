//! Sessions through the real binary: timeout negotiation, expiry, close, resume, passwords,
//! pings, connection limits, the `cons`/`dump` words and stall-aware expiry.
//!
//! Expectations were checked against Apache ZooKeeper 3.8 (`OXKEEPER_TEST_EXTERNAL`; tests with
//! special settings with `OXKEEPER_TEST_EXTERNAL_SPECIAL`), except
//! `stalled_server_keeps_sessions_of_clients_still_there`: ZooKeeper expires those sessions,
//! oxkeeper's stall-aware expiry keeps them.
//!
//! zookeeper-client cannot send a wrong password (SessionInfo's fields are private), so that case
//! uses a hand-made handshake.

mod common;

use std::time::{Duration, Instant};

use common::{connect_body, create_body, path_watch_body, request, Raw, TestServer, TICK};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error, EventType, SessionState};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

async fn detached(addr: &str, timeout: Duration) -> Client {
    Client::connector()
        .with_session_timeout(timeout)
        .with_detached()
        .connect(addr)
        .await
        .expect("connect detached")
}

/// Retries an operation through transient connection losses (a client being moved around).
async fn retrying<T, F, Fut>(mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match f().await {
            Err(Error::ConnectionLoss) if Instant::now() < end => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => return other,
        }
    }
}

#[tokio::test]
async fn negotiated_timeout_is_clamped_to_2_and_20_ticks() {
    let server = TestServer::start();
    for (asked, got) in [
        (100, 400),
        (400, 400),
        (1000, 1000),
        (2000, 2000),
        (4000, 4000),
        (60_000, 4000),
    ] {
        let zk = common::client_with_timeout(&server.addr, Duration::from_millis(asked)).await;
        assert_eq!(
            zk.session_timeout(),
            Duration::from_millis(got),
            "asked for {asked} ms"
        );
        let (_raw, resp) = Raw::handshake(&server.addr, asked as i32);
        assert_eq!(
            resp.timeout, got as i32,
            "raw handshake asking for {asked} ms"
        );
        assert_ne!(resp.session_id, 0);
        assert_eq!(resp.password.len(), 16);
        assert_eq!(resp.protocol_version, 0);
        assert_eq!(resp.read_only, Some(false));
        assert_eq!(resp.body_len, 37);
    }
    let (_raw, resp) = Raw::handshake(&server.addr, 0);
    assert_eq!(resp.timeout, 400, "0 is clamped too");
}

#[tokio::test]
async fn configured_session_timeout_bounds() {
    let server = TestServer::start_special(&["minSessionTimeout=1000", "maxSessionTimeout=3000"]);
    for (asked, got) in [(100, 1000), (2000, 2000), (60_000, 3000)] {
        let (_raw, resp) = Raw::handshake(&server.addr, asked);
        assert_eq!(resp.timeout, got, "asked for {asked} ms");
    }
}

#[tokio::test]
async fn ephemerals_of_a_vanished_client_expire_after_the_timeout() {
    let server = TestServer::start();
    let observer = common::client(&server).await;
    let p = server.path("s_vanished");
    let timeout = Duration::from_secs(2);
    let zk = detached(&server.addr, timeout).await;
    assert_eq!(zk.session_timeout(), timeout);
    zk.create(&p, b"", &EPHEMERAL).await.expect("ephemeral");
    let (_, _, w) = observer.get_and_watch_data(&p).await.expect("watch");

    // Touch the session, then vanish: no closeSession, just a closed socket.
    zk.sync("/").await.expect("sync");
    let gone = Instant::now();
    drop(zk);

    let e = tokio::time::timeout(Duration::from_secs(10), w.changed())
        .await
        .expect("the ephemeral must vanish");
    let after = gone.elapsed();
    assert_eq!(e.event_type, EventType::NodeDeleted);
    assert!(
        after >= timeout - Duration::from_millis(50),
        "expired after {after:?}, before the {timeout:?} timeout"
    );
    assert!(
        after <= timeout + TICK + Duration::from_millis(600),
        "expired after {after:?}, later than timeout + tick + slack"
    );
    assert_eq!(observer.check_stat(&p).await.expect("exists"), None);
}

#[tokio::test]
async fn closing_removes_ephemerals_at_once() {
    let server = TestServer::start();
    let observer = common::client(&server).await;
    let p = server.path("s_close");
    let zk = common::client_with_timeout(&server.addr, Duration::from_secs(4)).await;
    zk.create(&p, b"", &EPHEMERAL).await.expect("ephemeral");
    let clone = zk.clone();
    let (_, _, w) = observer.get_and_watch_data(&p).await.expect("watch");
    let mut w = Box::pin(w.changed());

    drop(zk);
    // A clone keeps the session open.
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut w)
        .await
        .is_err());
    clone.get_data(&p).await.expect("the clone still works");

    let closed = Instant::now();
    drop(clone);
    let e = tokio::time::timeout(Duration::from_secs(2), w)
        .await
        .expect("closeSession deletes the ephemeral");
    assert_eq!(e.event_type, EventType::NodeDeleted);
    assert!(
        closed.elapsed() < Duration::from_millis(1500),
        "took {:?}",
        closed.elapsed()
    );
}

#[tokio::test]
async fn session_resumes_on_a_new_connection() {
    let server = TestServer::start();
    let observer = common::client(&server).await;
    let p = server.path("s_resume");
    let zk = detached(&server.addr, Duration::from_secs(4)).await;
    let sid = zk.session_id();
    zk.create(&p, b"", &EPHEMERAL).await.expect("ephemeral");
    let info = zk.into_session();

    let resumed = Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .with_session(info.clone())
        .connect(&server.addr)
        .await
        .expect("resume");
    assert_eq!(resumed.session_id(), sid);
    assert_eq!(resumed.session_timeout(), Duration::from_secs(4));
    let (_, stat) = resumed.get_data(&p).await.expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, sid.0);
    assert_eq!(
        resumed.list_ephemerals("/").await.expect("getEphemerals"),
        vec![p.clone()]
    );
    let q = format!("{p}_2");
    resumed
        .create(&q, b"", &EPHEMERAL)
        .await
        .expect("more ephemerals");

    // Waiting longer than the timeout: the resumed connection keeps it alive.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (_, stat) = observer.get_data(&p).await.expect("still there");
    assert_eq!(stat.ephemeral_owner, sid.0);

    let (_, w) = observer.check_and_watch_stat(&q).await.expect("watch");
    drop(resumed);
    let e = tokio::time::timeout(Duration::from_secs(2), w.changed())
        .await
        .expect("closed");
    assert_eq!(e.event_type, EventType::NodeDeleted);
    assert_eq!(observer.check_stat(&p).await.expect("exists"), None);
}

#[tokio::test]
async fn expired_session_cannot_be_resumed() {
    let server = TestServer::start();
    let observer = common::client(&server).await;
    let p = server.path("s_expired");
    let zk = detached(&server.addr, Duration::from_millis(1000)).await;
    zk.create(&p, b"", &EPHEMERAL).await.expect("ephemeral");
    let (_, _, w) = observer.get_and_watch_data(&p).await.expect("watch");
    let info = zk.into_session();
    let e = tokio::time::timeout(Duration::from_secs(5), w.changed())
        .await
        .expect("expiry");
    assert_eq!(e.event_type, EventType::NodeDeleted);

    let err = Client::connector()
        .with_session_timeout(Duration::from_millis(1000))
        .with_session(info)
        .connect(&server.addr)
        .await
        .expect_err("an expired session must not come back");
    assert_eq!(err, Error::SessionExpired);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_refused_and_the_session_survives() {
    let server = TestServer::start();
    let p = server.path("s_wrong_password");
    let zk = common::client(&server).await;
    let sid = zk.session_id().0;
    zk.create(&p, b"", &EPHEMERAL).await.expect("ephemeral");

    let mut raw = Raw::connect(&server.addr);
    raw.send_frame(&connect_body(0, 2000, sid, &[7u8; 16], Some(false)));
    // ZooKeeper closes the owner's connection as soon as the id is presented, and the owner's
    // reconnect may close this one before its answer goes out; the answer's content is checked
    // in bad_input.rs with an unconnected session. Here only the session's fate matters.
    if let Some(resp) = raw.read_connect_response() {
        assert_eq!(resp.timeout, 0);
        assert_eq!(resp.session_id, 0);
        assert_eq!(resp.password, vec![0u8; 16]);
    }
    assert!(
        raw.closed_within(Duration::from_secs(2)),
        "the connection closes"
    );

    // Well past the timeout, the real session and its ephemeral are alive.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_, stat) = retrying(|| zk.get_data(&p)).await.expect("owner reads");
    assert_eq!(stat.ephemeral_owner, sid);
    assert_eq!(zk.session_id().0, sid);
    let observer = common::client(&server).await;
    let (_, stat) = observer.get_data(&p).await.expect("observer reads");
    assert_eq!(stat.ephemeral_owner, sid);
}

#[tokio::test]
async fn idle_client_survives_five_timeouts() {
    let server = TestServer::start();
    let p = server.path("s_idle");
    let zk = common::client_with_timeout(&server.addr, Duration::from_secs(1)).await;
    zk.create(&p, b"", &EPHEMERAL).await.expect("ephemeral");
    let mut states = zk.state_watcher();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(zk.state(), SessionState::SyncConnected);
    assert!(
        tokio::time::timeout(Duration::ZERO, states.changed())
            .await
            .is_err(),
        "no disconnection while idle"
    );
    let (_, stat) = zk.get_data(&p).await.expect("ephemeral kept");
    assert_eq!(stat.ephemeral_owner, zk.session_id().0);
}

#[tokio::test]
async fn cons_lists_the_session() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    zk.sync("/").await.expect("sync");
    let sid = format!("sid={:#x}", zk.session_id().0);
    let cons = server.four_letter("cons");
    let line = cons
        .lines()
        .find(|l| l.contains(&sid))
        .unwrap_or_else(|| panic!("cons does not show {sid}:\n{cons}"));
    assert!(line.starts_with(" /127.0.0.1:"), "{line}");
    assert!(line.contains(",to=2000,"), "{line}");
    assert!(line.contains("queued=0"), "{line}");
    assert!(line.ends_with(')'), "{line}");
    // The asking connection is listed too, without a session.
    assert!(
        cons.lines()
            .any(|l| l.starts_with(" /127.0.0.1:") && !l.contains("sid=")),
        "{cons}"
    );
}

#[tokio::test]
async fn dump_lists_the_ephemeral_under_its_session() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("s_dump");
    let q = server.path("s_dump_q");
    zk.create(&p, b"", &EPHEMERAL).await.expect("ephemeral");
    zk.create(&q, b"", &EPHEMERAL).await.expect("ephemeral");
    zk.create(&server.path("s_dump_persistent"), b"", &PERSISTENT)
        .await
        .expect("persistent");
    let sid = format!("{:#x}", zk.session_id().0);
    let dump = server.four_letter("dump");
    assert!(dump.starts_with("SessionTracker dump:\n"), "{dump}");
    let eph_at = dump
        .find("ephemeral nodes dump:\n")
        .unwrap_or_else(|| panic!("{dump}"));
    let (tracker, ephemerals) = dump.split_at(eph_at);
    assert!(
        tracker.contains(&format!("\t{sid}\n")),
        "session {sid} not in the tracker dump:\n{dump}"
    );
    assert!(ephemerals.contains("Sessions with Ephemerals ("), "{dump}");
    let at = ephemerals
        .find(&format!("\n{sid}:\n"))
        .unwrap_or_else(|| panic!("{sid} not in:\n{dump}"));
    let block: Vec<&str> = ephemerals[at + sid.len() + 3..]
        .lines()
        .take_while(|l| l.starts_with('\t'))
        .collect();
    let mut block: Vec<String> = block
        .iter()
        .map(|l| l.trim_start_matches('\t').to_owned())
        .collect();
    block.sort();
    let mut want = vec![p.clone(), q.clone()];
    want.sort();
    assert_eq!(block, want, "{dump}");
    if server.is_fresh() {
        assert!(dump.contains("Sessions with Ephemerals (1):\n"), "{dump}");
    }
}

#[tokio::test]
async fn max_client_cnxns_refuses_a_third_connection() {
    let server = TestServer::start_special(&["maxClientCnxns=2"]);
    let a = common::client(&server).await;
    let b = common::client(&server).await;
    let p = server.path("s_max_cnxns");
    a.create(&p, b"", &PERSISTENT).await.expect("create");

    let third = Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .with_fail_eagerly()
        .connect(&server.addr)
        .await;
    assert!(
        third.is_err(),
        "a third connection from 127.0.0.1 must be refused"
    );

    let mut raw = Raw::connect(&server.addr);
    raw.send_frame(&connect_body(0, 2000, 0, &[0u8; 16], Some(false)));
    assert!(
        raw.read_connect_response().is_none(),
        "no ConnectResponse for a refused connection"
    );

    a.get_data(&p).await.expect("first still works");
    b.get_data(&p).await.expect("second still works");

    // Once one goes away, a new one is admitted.
    drop(b);
    let ok = common::eventually(Duration::from_secs(5), || async {
        Client::connector()
            .with_session_timeout(Duration::from_secs(2))
            .with_fail_eagerly()
            .connect(&server.addr)
            .await
            .is_ok()
    })
    .await;
    assert!(ok, "a slot frees up when a connection closes");
}

#[tokio::test(flavor = "multi_thread")]
async fn stalled_server_keeps_sessions_of_clients_still_there() {
    // oxkeeper only: Apache ZooKeeper expires these sessions.
    let server = TestServer::start();
    let p = server.path("s_stalled");

    // A hand-driven client that keeps its connection through the stall.
    let (mut raw, resp) = Raw::handshake(&server.addr, 2000);
    assert_eq!(resp.timeout, 2000);
    raw.send_frame(&request(1, 1, &create_body(&p, b"raw", 1)));
    let r = raw.read_non_event_reply().expect("create reply");
    assert_eq!((r.xid, r.err), (1, 0));

    // A zookeeper-client session, to be resumed after the stall.
    let zk = detached(&server.addr, Duration::from_secs(2)).await;
    let q = format!("{p}_client");
    zk.create(&q, b"", &EPHEMERAL).await.expect("ephemeral");
    let info = zk.into_session();

    server.signal_any("STOP");
    tokio::time::sleep(Duration::from_secs(6)).await;
    server.signal_any("CONT");

    // The raw client is still there: its next ping is answered.
    raw.send_frame(&request(-2, 11, &[]));
    let r = raw
        .read_non_event_reply()
        .expect("ping reply after the stall");
    assert_eq!((r.xid, r.err), (-2, 0), "ping answered, not expired");
    raw.send_frame(&request(2, 4, &path_watch_body(&p, false)));
    let r = raw.read_non_event_reply().expect("getData reply");
    assert_eq!((r.xid, r.err), (2, 0), "the raw client's ephemeral is kept");

    let resumed = Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .with_session(info.clone())
        .connect(&server.addr)
        .await
        .expect("the stalled session can be resumed");
    assert_eq!(resumed.session_id(), info.id());
    let (_, stat) = resumed.get_data(&q).await.expect("its ephemeral is kept");
    assert_eq!(stat.ephemeral_owner, info.id().0);
    let (_, stat) = resumed
        .get_data(&p)
        .await
        .expect("the raw client's ephemeral");
    assert_eq!(stat.ephemeral_owner, resp.session_id);

    let stalls: u64 = server
        .mntr_value("zk_session_stall_count")
        .expect("zk_session_stall_count in mntr")
        .parse()
        .expect("a number");
    assert!(stalls >= 1, "the stall is counted");
}
