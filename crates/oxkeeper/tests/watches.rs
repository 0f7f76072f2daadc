//! One-shot, persistent and persistent-recursive watches through the real binary.
//!
//! Expectations were checked against Apache ZooKeeper 3.8 (`OXKEEPER_TEST_EXTERNAL`).
//!
//! Not covered: persistent watches re-armed after a reconnect. zookeeper-client 0.11.2 never
//! resends them (`WatchManager::resend_watches` computes `index.max(index)`, so SetWatches is
//! always sent with the three one-shot lists only), so no server could pass such a test through
//! this client. One-shot watches re-armed after a reconnect are covered, through a TCP proxy that
//! cuts the connection.

mod common;

use std::future::Future;
use std::time::Duration;

use common::{Proxy, TestServer};
use zookeeper_client::{
    Acls, AddWatchMode, Client, CreateMode, CreateOptions, EventType, OneshotWatcher,
    PersistentWatcher, SessionState, WatchedEvent,
};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

/// Waits for the watcher's event.
async fn fired(w: OneshotWatcher) -> WatchedEvent {
    tokio::time::timeout(WAIT, w.changed())
        .await
        .expect("watch event within 5 s")
}

/// Asserts that a pinned one-shot wait stays pending for a while.
async fn stays_quiet<F: Future<Output = WatchedEvent> + Unpin>(f: &mut F, what: &str) {
    if let Ok(ev) = tokio::time::timeout(QUIET, f).await {
        panic!("{what}: unexpected event {ev:?}");
    }
}

/// The next node event of a persistent watcher (session events are skipped).
async fn next_node_event(w: &mut PersistentWatcher) -> (EventType, String) {
    loop {
        let ev = tokio::time::timeout(WAIT, w.changed())
            .await
            .expect("persistent watch event within 5 s");
        if ev.event_type != EventType::Session {
            return (ev.event_type, ev.path);
        }
    }
}

/// Asserts a persistent watcher gets no node event for a while.
async fn persistent_quiet(w: &mut PersistentWatcher) {
    let end = tokio::time::Instant::now() + QUIET;
    while let Ok(ev) = tokio::time::timeout_at(end, w.changed()).await {
        assert_eq!(ev.event_type, EventType::Session, "unexpected event {ev:?}");
    }
}

/// True if the future is ready at its first poll.
async fn ready_now<T>(f: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(Duration::ZERO, f).await.ok()
}

fn ev(t: EventType, p: &str) -> (EventType, String) {
    (t, p.to_owned())
}

#[tokio::test]
async fn data_watch_fires_once_on_set_data() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_data_set");
    zk.create(&p, b"0", &PERSISTENT).await.expect("create");

    let (data, _, w) = zk.get_and_watch_data(&p).await.expect("getData watch");
    assert_eq!(data, b"0");
    if server.is_fresh() {
        assert_eq!(server.mntr_value("zk_watch_count").as_deref(), Some("1"));
    }
    writer.set_data(&p, b"1", None).await.expect("set");
    let e = fired(w).await;
    assert_eq!(e.event_type, EventType::NodeDataChanged);
    assert_eq!(e.path, p);
    assert_eq!(e.session_state, SessionState::SyncConnected);
    if server.is_fresh() {
        // One-shot: the server forgot it once it fired.
        assert_eq!(server.mntr_value("zk_watch_count").as_deref(), Some("0"));
    }

    // A new watch sees the next change, and only one change's event.
    let (data, _, w) = zk.get_and_watch_data(&p).await.expect("getData watch");
    assert_eq!(data, b"1");
    writer.set_data(&p, b"2", None).await.expect("set");
    writer.set_data(&p, b"3", None).await.expect("set");
    assert_eq!(fired(w).await.event_type, EventType::NodeDataChanged);
    if server.is_fresh() {
        assert_eq!(server.mntr_value("zk_watch_count").as_deref(), Some("0"));
    }
}

#[tokio::test]
async fn data_watch_fires_on_delete() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_data_delete");
    zk.create(&p, b"", &PERSISTENT).await.expect("create");
    let (_, _, w) = zk.get_and_watch_data(&p).await.expect("watch");
    writer.delete(&p, None).await.expect("delete");
    let e = fired(w).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted, p.as_str())
    );
}

#[tokio::test]
async fn exists_watch_on_missing_node_fires_on_create() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_exists_create");
    let (stat, w) = zk.check_and_watch_stat(&p).await.expect("exists watch");
    assert_eq!(stat, None);
    writer.create(&p, b"", &PERSISTENT).await.expect("create");
    let e = fired(w).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, p.as_str())
    );

    // On a node that exists it is a data watch: change, then delete.
    let (stat, w) = zk.check_and_watch_stat(&p).await.expect("exists watch");
    assert!(stat.is_some());
    writer.set_data(&p, b"x", None).await.expect("set");
    assert_eq!(fired(w).await.event_type, EventType::NodeDataChanged);
    let (_, w) = zk.check_and_watch_stat(&p).await.expect("exists watch");
    writer.delete(&p, None).await.expect("delete");
    assert_eq!(fired(w).await.event_type, EventType::NodeDeleted);
}

#[tokio::test]
async fn exists_watch_ignores_children() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_exists_children");
    zk.create(&p, b"", &PERSISTENT).await.expect("create");
    let (_, w) = zk.check_and_watch_stat(&p).await.expect("exists watch");
    let mut w = Box::pin(w.changed());
    writer
        .create(&format!("{p}/c"), b"", &PERSISTENT)
        .await
        .expect("child");
    writer
        .set_data(&format!("{p}/c"), b"", None)
        .await
        .expect("set child");
    stays_quiet(&mut w, "exists watch on a child change").await;
    writer.set_data(&p, b"now", None).await.expect("set");
    let e = tokio::time::timeout(WAIT, w).await.expect("event");
    assert_eq!(e.event_type, EventType::NodeDataChanged);
}

#[tokio::test]
async fn child_watch_fires_on_children_only() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_children");
    zk.create(&p, b"", &PERSISTENT).await.expect("create");

    let (kids, _, w) = zk
        .get_and_watch_children(&p)
        .await
        .expect("getChildren2 watch");
    assert!(kids.is_empty());
    let mut w = Box::pin(w.changed());
    writer
        .set_data(&p, b"parent data", None)
        .await
        .expect("set parent");
    stays_quiet(&mut w, "child watch on the parent's setData").await;
    writer
        .create(&format!("{p}/a"), b"", &PERSISTENT)
        .await
        .expect("create a");
    let e = tokio::time::timeout(WAIT, w).await.expect("event");
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeChildrenChanged, p.as_str())
    );

    let (kids, w) = zk
        .list_and_watch_children(&p)
        .await
        .expect("getChildren watch");
    assert_eq!(kids, vec!["a"]);
    let mut w = Box::pin(w.changed());
    writer
        .set_data(&format!("{p}/a"), b"x", None)
        .await
        .expect("set child");
    writer
        .create(&format!("{p}/a/grand"), b"", &PERSISTENT)
        .await
        .expect("grandchild");
    stays_quiet(&mut w, "child watch on a child's data or grandchildren").await;
    writer
        .delete(&format!("{p}/a/grand"), None)
        .await
        .expect("delete grandchild");
    stays_quiet(&mut w, "child watch on a grandchild deletion").await;
    writer
        .delete(&format!("{p}/a"), None)
        .await
        .expect("delete a");
    let e = tokio::time::timeout(WAIT, w).await.expect("event");
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeChildrenChanged, p.as_str())
    );
}

#[tokio::test]
async fn every_watch_on_a_deleted_node_fires_node_deleted() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let other = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_all_deleted");
    zk.create(&p, b"", &PERSISTENT).await.expect("create");
    let (_, _, data_w) = zk.get_and_watch_data(&p).await.expect("data watch");
    let (_, exists_w) = zk.check_and_watch_stat(&p).await.expect("exists watch");
    let (_, child_w) = zk.list_and_watch_children(&p).await.expect("child watch");
    let (_, _, other_w) = other
        .get_and_watch_data(&p)
        .await
        .expect("other client's watch");
    writer.delete(&p, None).await.expect("delete");
    for (name, w) in [
        ("data", data_w),
        ("exists", exists_w),
        ("child", child_w),
        ("other", other_w),
    ] {
        let e = fired(w).await;
        assert_eq!(e.event_type, EventType::NodeDeleted, "{name} watch");
        assert_eq!(e.path, p, "{name} watch");
    }
}

#[tokio::test]
async fn parent_child_watch_sees_ephemeral_child_of_closed_session() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("w_ephemeral_child");
    zk.create(&p, b"", &PERSISTENT).await.expect("create");
    let owner = common::client(&server).await;
    owner
        .create(&format!("{p}/e"), b"", &EPHEMERAL)
        .await
        .expect("ephemeral");
    let (_, w) = zk.list_and_watch_children(&p).await.expect("child watch");
    let (_, _, dw) = zk
        .get_and_watch_data(&format!("{p}/e"))
        .await
        .expect("data watch");
    drop(owner); // closes the session
    let e = fired(w).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeChildrenChanged, p.as_str())
    );
    let e = fired(dw).await;
    assert_eq!(e.event_type, EventType::NodeDeleted);
    assert_eq!(e.path, format!("{p}/e"));
}

#[tokio::test]
async fn watch_event_arrives_before_the_reply_of_the_write_that_caused_it() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("w_order_same_client");
    zk.create(&p, b"", &PERSISTENT).await.expect("create");

    let (_, _, w) = zk.get_and_watch_data(&p).await.expect("watch");
    zk.set_data(&p, b"x", None).await.expect("set");
    let e = ready_now(w.changed())
        .await
        .expect("the data event must precede the setData reply");
    assert_eq!(e.event_type, EventType::NodeDataChanged);

    let (_, _, w) = zk.get_and_watch_children(&p).await.expect("child watch");
    zk.create(&format!("{p}/c"), b"", &PERSISTENT)
        .await
        .expect("create child");
    let e = ready_now(w.changed())
        .await
        .expect("the child event must precede the create reply");
    assert_eq!(e.event_type, EventType::NodeChildrenChanged);

    let (_, w) = zk
        .check_and_watch_stat(&format!("{p}/new"))
        .await
        .expect("exists watch");
    zk.create(&format!("{p}/new"), b"", &PERSISTENT)
        .await
        .expect("create new");
    let e = ready_now(w.changed())
        .await
        .expect("the created event must precede the create reply");
    assert_eq!(e.event_type, EventType::NodeCreated);

    let (_, _, w) = zk
        .get_and_watch_data(&format!("{p}/new"))
        .await
        .expect("watch");
    let mut multi = zk.new_multi_writer();
    multi
        .add_set_data(&format!("{p}/new"), b"m", None)
        .expect("op");
    multi.add_delete(&format!("{p}/new"), None).expect("op");
    multi.commit().await.expect("multi");
    let e = ready_now(w.changed())
        .await
        .expect("the multi's event must precede the multi reply");
    assert_eq!(e.event_type, EventType::NodeDataChanged);

    let mut pw = zk
        .watch(&p, AddWatchMode::Persistent)
        .await
        .expect("addWatch");
    zk.delete(&format!("{p}/c"), None)
        .await
        .expect("delete child");
    let e = ready_now(pw.changed())
        .await
        .expect("the persistent event must precede the delete reply");
    assert_eq!(e.event_type, EventType::NodeChildrenChanged);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_event_is_seen_before_the_new_data() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_order_two_clients");
    zk.create(&p, b"old", &PERSISTENT).await.expect("create");
    for round in 0..20 {
        let (_, _, w) = zk.get_and_watch_data(&p).await.expect("watch");
        let new = format!("new{round}");
        let write = {
            let writer = writer.clone();
            let p = p.clone();
            let new = new.clone();
            tokio::spawn(async move { writer.set_data(&p, new.as_bytes(), None).await })
        };
        // Read until the new data shows; by then the event must already be here.
        loop {
            let (data, _) = zk.get_data(&p).await.expect("get");
            if data == new.as_bytes() {
                break;
            }
        }
        let e = ready_now(w.changed())
            .await
            .unwrap_or_else(|| panic!("round {round}: new data seen before the watch event"));
        assert_eq!(e.event_type, EventType::NodeDataChanged);
        write.await.expect("join").expect("set");
    }
}

#[tokio::test]
async fn persistent_watch_survives_firing() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_persistent");
    let c = format!("{p}/c");
    let mut w = zk
        .watch(&p, AddWatchMode::Persistent)
        .await
        .expect("addWatch on a missing node");

    writer.create(&p, b"", &PERSISTENT).await.expect("create");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeCreated, &p)
    );
    writer.set_data(&p, b"1", None).await.expect("set");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeDataChanged, &p)
    );
    writer.set_data(&p, b"2", None).await.expect("set again");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeDataChanged, &p)
    );
    writer.create(&c, b"", &PERSISTENT).await.expect("child");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeChildrenChanged, &p)
    );
    // Not the child's own changes.
    writer.set_data(&c, b"x", None).await.expect("set child");
    writer
        .create(&format!("{c}/g"), b"", &PERSISTENT)
        .await
        .expect("grandchild");
    persistent_quiet(&mut w).await;
    writer
        .delete(&format!("{c}/g"), None)
        .await
        .expect("delete grandchild");
    writer.delete(&c, None).await.expect("delete child");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeChildrenChanged, &p)
    );
    writer.delete(&p, None).await.expect("delete");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeDeleted, &p)
    );
    writer
        .create(&p, b"", &PERSISTENT)
        .await
        .expect("create again");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeCreated, &p)
    );
    persistent_quiet(&mut w).await;
}

#[tokio::test]
async fn persistent_recursive_watch_sees_descendants_but_no_child_events() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_recursive");
    let a = format!("{p}/a");
    let b = format!("{p}/a/b");
    let mut w = zk
        .watch(&p, AddWatchMode::PersistentRecursive)
        .await
        .expect("addWatch recursive");

    writer.create(&p, b"", &PERSISTENT).await.expect("create");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeCreated, &p)
    );
    writer.create(&a, b"", &PERSISTENT).await.expect("a");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeCreated, &a)
    );
    writer.create(&b, b"", &EPHEMERAL).await.expect("b");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeCreated, &b)
    );
    writer.set_data(&b, b"x", None).await.expect("set b");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeDataChanged, &b)
    );
    writer.set_data(&p, b"x", None).await.expect("set p");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeDataChanged, &p)
    );
    writer.delete(&b, None).await.expect("delete b");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeDeleted, &b)
    );
    // Outside the subtree: nothing (a sibling sharing the string prefix included).
    writer
        .create(&format!("{p}x"), b"", &PERSISTENT)
        .await
        .expect("sibling");
    persistent_quiet(&mut w).await;
    writer.delete(&a, None).await.expect("delete a");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeDeleted, &a)
    );
    writer.delete(&p, None).await.expect("delete p");
    assert_eq!(
        next_node_event(&mut w).await,
        ev(EventType::NodeDeleted, &p)
    );
    persistent_quiet(&mut w).await;
}

#[tokio::test]
async fn persistent_watch_coexists_with_one_shot_watch_of_another_client() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let other = common::client(&server).await;
    let writer = common::client(&server).await;
    let p = server.path("w_mixed");
    writer.create(&p, b"", &PERSISTENT).await.expect("create");
    let mut pw = zk
        .watch(&p, AddWatchMode::Persistent)
        .await
        .expect("addWatch");
    let (_, _, ow) = other.get_and_watch_data(&p).await.expect("one-shot");
    writer.set_data(&p, b"1", None).await.expect("set");
    assert_eq!(
        next_node_event(&mut pw).await,
        ev(EventType::NodeDataChanged, &p)
    );
    assert_eq!(fired(ow).await.event_type, EventType::NodeDataChanged);
    writer.set_data(&p, b"2", None).await.expect("set");
    assert_eq!(
        next_node_event(&mut pw).await,
        ev(EventType::NodeDataChanged, &p)
    );
}

/// Cuts the client's connection through the proxy and waits until it is connected again.
async fn reconnect(zk: &Client, proxy: &Proxy, while_down: impl Future<Output = ()>) {
    let mut states = zk.state_watcher();
    proxy.refuse(true);
    proxy.cut();
    let st = tokio::time::timeout(WAIT, states.changed())
        .await
        .expect("state change after the cut");
    assert_eq!(st, SessionState::Disconnected);
    while_down.await;
    proxy.refuse(false);
    loop {
        let st = tokio::time::timeout(Duration::from_secs(10), states.changed())
            .await
            .expect("reconnected within 10 s");
        match st {
            SessionState::SyncConnected => break,
            SessionState::Disconnected => continue,
            other => panic!("unexpected session state {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn one_shot_watches_are_rearmed_after_reconnect() {
    let server = TestServer::start();
    let proxy = Proxy::start(&server.addr).await;
    let zk = common::client_with_timeout(&proxy.addr, Duration::from_secs(4)).await;
    let writer = common::client(&server).await;
    let p = server.path("w_rearm");
    writer.create(&p, b"", &PERSISTENT).await.expect("create");
    let session = zk.session_id();

    let (_, _, data_w) = zk.get_and_watch_data(&p).await.expect("data watch");
    let (_, child_w) = zk.list_and_watch_children(&p).await.expect("child watch");
    let (_, exists_w) = zk
        .check_and_watch_stat(&format!("{p}/later"))
        .await
        .expect("exists watch");
    reconnect(&zk, &proxy, async {}).await;
    assert_eq!(zk.session_id(), session);

    writer.set_data(&p, b"after", None).await.expect("set");
    assert_eq!(fired(data_w).await.event_type, EventType::NodeDataChanged);
    writer
        .create(&format!("{p}/later"), b"", &PERSISTENT)
        .await
        .expect("create later");
    assert_eq!(fired(exists_w).await.event_type, EventType::NodeCreated);
    assert_eq!(
        fired(child_w).await.event_type,
        EventType::NodeChildrenChanged
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_missed_while_disconnected_fire_on_reconnect() {
    let server = TestServer::start();
    let proxy = Proxy::start(&server.addr).await;
    let zk = common::client_with_timeout(&proxy.addr, Duration::from_secs(4)).await;
    let writer = common::client(&server).await;
    let p = server.path("w_missed");
    writer.create(&p, b"", &PERSISTENT).await.expect("create");
    writer
        .create(&format!("{p}/gone"), b"", &PERSISTENT)
        .await
        .expect("create gone");

    let (_, _, data_w) = zk.get_and_watch_data(&p).await.expect("data watch");
    let (_, child_w) = zk.list_and_watch_children(&p).await.expect("child watch");
    let (_, exists_w) = zk
        .check_and_watch_stat(&format!("{p}/born"))
        .await
        .expect("exists watch");
    let (_, _, gone_w) = zk
        .get_and_watch_data(&format!("{p}/gone"))
        .await
        .expect("watch gone");
    // Keep our zxid current so that only the changes below count as missed.
    zk.sync(&p).await.expect("sync");
    reconnect(&zk, &proxy, async {
        writer.set_data(&p, b"while away", None).await.expect("set");
        writer
            .create(&format!("{p}/born"), b"", &PERSISTENT)
            .await
            .expect("create born");
        writer
            .delete(&format!("{p}/gone"), None)
            .await
            .expect("delete gone");
    })
    .await;
    assert_eq!(fired(data_w).await.event_type, EventType::NodeDataChanged);
    assert_eq!(fired(exists_w).await.event_type, EventType::NodeCreated);
    assert_eq!(
        fired(child_w).await.event_type,
        EventType::NodeChildrenChanged
    );
    assert_eq!(fired(gone_w).await.event_type, EventType::NodeDeleted);
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_nodes_do_not_fire_on_reconnect() {
    let server = TestServer::start();
    let proxy = Proxy::start(&server.addr).await;
    let zk = common::client_with_timeout(&proxy.addr, Duration::from_secs(4)).await;
    let writer = common::client(&server).await;
    let p = server.path("w_unchanged");
    writer.create(&p, b"", &PERSISTENT).await.expect("create");
    let (_, _, w) = zk.get_and_watch_data(&p).await.expect("data watch");
    let mut w = Box::pin(w.changed());
    reconnect(&zk, &proxy, async {}).await;
    stays_quiet(&mut w, "data watch after a reconnect without changes").await;
    writer.set_data(&p, b"now", None).await.expect("set");
    let e = tokio::time::timeout(WAIT, w).await.expect("event");
    assert_eq!(e.event_type, EventType::NodeDataChanged);
}
