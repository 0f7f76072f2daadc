//! Every classic operation through the real binary, with exact `Stat` fields.
//!
//! Expectations were checked against Apache ZooKeeper 3.8 (`OXKEEPER_TEST_EXTERNAL`). Tests that
//! look at a fresh server's global state (root stat, node count) make those assertions only when
//! the server is known to be fresh (see `TestServer::is_fresh`).
//!
//! Not covered: null versus empty data — `zookeeper-client` sends `[]` for empty data and maps a
//! null buffer in replies to an empty `Vec`, so the two cannot be told apart through it.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestServer;
use zookeeper_client::{
    Acl, Acls, AuthId, AuthUser, CreateMode, CreateOptions, Error, MultiReadResult,
    MultiWriteError, MultiWriteResult, Permission,
};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
const SEQUENTIAL: CreateOptions<'static> =
    CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
const EPHEMERAL_SEQUENTIAL: CreateOptions<'static> =
    CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());

/// The error ZooKeeper's BadArguments (-8) becomes in the client.
const SERVER_BAD_ARGUMENTS: Error = Error::BadArguments(&"server error");

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test]
async fn create_persistent_returns_full_stat() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_create_persistent");

    let before = now_ms();
    let (stat, seq) = zk.create(&p, b"hello", &PERSISTENT).await.expect("create");
    let after = now_ms();
    assert_eq!(seq.into_i64(), -1, "non-sequential create has no sequence");
    assert!(stat.czxid > 0, "czxid {} must be positive", stat.czxid);
    assert_eq!(stat.mzxid, stat.czxid, "mzxid of a new node");
    assert_eq!(stat.pzxid, stat.czxid, "pzxid of a new node");
    assert!(
        stat.ctime >= before - 1000 && stat.ctime <= after + 1000,
        "ctime {} not within [{before}, {after}]",
        stat.ctime
    );
    assert_eq!(stat.mtime, stat.ctime, "mtime of a new node");
    assert_eq!(stat.version, 0);
    assert_eq!(stat.cversion, 0);
    assert_eq!(stat.aversion, 0);
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.num_children, 0);

    let (data, got) = zk.get_data(&p).await.expect("get_data");
    assert_eq!(data, b"hello");
    assert_eq!(got, stat, "getData stat equals create2 stat");
    assert_eq!(
        zk.check_stat(&p).await.expect("exists"),
        Some(stat),
        "exists stat equals create2 stat"
    );

    // Empty data.
    let e = format!("{p}/empty");
    let (stat, _) = zk.create(&e, b"", &PERSISTENT).await.expect("create empty");
    assert_eq!(stat.data_length, 0);
    let (data, _) = zk.get_data(&e).await.expect("get empty");
    assert!(data.is_empty());
}

#[tokio::test]
async fn create_updates_parent_stat_and_delete_too() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_parent_stat");
    let (parent0, _) = zk
        .create(&p, b"x", &PERSISTENT)
        .await
        .expect("create parent");

    let (child, _) = zk
        .create(&format!("{p}/c"), b"", &PERSISTENT)
        .await
        .expect("create child");
    assert!(child.czxid > parent0.czxid);
    let parent1 = zk.check_stat(&p).await.expect("exists").expect("parent");
    assert_eq!(parent1.cversion, 1, "cversion counts child creations");
    assert_eq!(
        parent1.pzxid, child.czxid,
        "pzxid is the zxid of the last child change"
    );
    assert_eq!(parent1.num_children, 1);
    assert_eq!(
        parent1.mzxid, parent0.mzxid,
        "child changes do not touch mzxid"
    );
    assert_eq!(
        parent1.mtime, parent0.mtime,
        "child changes do not touch mtime"
    );
    assert_eq!(parent1.version, 0, "child changes do not touch version");
    assert_eq!(parent1.czxid, parent0.czxid);

    zk.delete(&format!("{p}/c"), None)
        .await
        .expect("delete child");
    let parent2 = zk.check_stat(&p).await.expect("exists").expect("parent");
    assert_eq!(parent2.cversion, 2, "cversion counts child deletions too");
    assert!(
        parent2.pzxid > child.czxid,
        "pzxid moves to the delete's zxid"
    );
    assert_eq!(parent2.num_children, 0);
    assert_eq!(parent2.mzxid, parent0.mzxid);

    // The next write gets the zxid after the delete.
    let (next, _) = zk
        .create(&format!("{p}/d"), b"", &PERSISTENT)
        .await
        .expect("create d");
    if server.is_fresh() {
        assert_eq!(
            next.czxid,
            parent2.pzxid + 1,
            "zxids are consecutive for consecutive writes of one client"
        );
    }
    let parent3 = zk.check_stat(&p).await.expect("exists").expect("parent");
    assert_eq!(parent3.cversion, 3);
    assert_eq!(parent3.pzxid, next.czxid);
}

#[tokio::test]
async fn create_ephemeral_is_owned_by_session() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_ephemeral");
    let (stat, seq) = zk
        .create(&p, b"e", &EPHEMERAL)
        .await
        .expect("create ephemeral");
    assert_eq!(seq.into_i64(), -1);
    assert_eq!(
        stat.ephemeral_owner,
        zk.session_id().0,
        "ephemeralOwner is the session id"
    );
    assert_eq!(stat.version, 0);
    assert_eq!(stat.cversion, 0);
    assert_eq!(stat.data_length, 1);
    assert_eq!(stat.mzxid, stat.czxid);
    assert_eq!(stat.pzxid, stat.czxid);

    let other = common::client(&server).await;
    let (_, seen) = other.get_data(&p).await.expect("get from another session");
    assert_eq!(seen.ephemeral_owner, zk.session_id().0);
}

#[tokio::test]
async fn sequential_names_come_from_parent_cversion() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_sequential");
    zk.create(&p, b"", &PERSISTENT).await.expect("parent");

    let (s0, q0) = zk
        .create(&format!("{p}/seq-"), b"a", &SEQUENTIAL)
        .await
        .expect("seq 0");
    assert_eq!(q0.into_i64(), 0);
    assert_eq!(q0.to_string(), "0000000000", "10 digits, zero padded");
    assert_eq!(s0.ephemeral_owner, 0);
    let (_, q1) = zk
        .create(&format!("{p}/seq-"), b"b", &SEQUENTIAL)
        .await
        .expect("seq 1");
    assert_eq!(q1.into_i64(), 1);
    let (s2, q2) = zk
        .create(&format!("{p}/eseq-"), b"c", &EPHEMERAL_SEQUENTIAL)
        .await
        .expect("eseq 2");
    assert_eq!(
        q2.into_i64(),
        2,
        "the counter is the parent's, shared by every prefix"
    );
    assert_eq!(s2.ephemeral_owner, zk.session_id().0);

    // The suffix is the parent's count of child creations: deletions do not move it (they do
    // move the reported cversion, which is creations * 2 - current children).
    zk.delete(&format!("{p}/seq-0000000001"), None)
        .await
        .expect("delete seq 1");
    let parent = zk
        .check_stat(&p)
        .await
        .expect("exists")
        .expect("parent stat");
    assert_eq!(parent.cversion, 4, "3 creations + 1 deletion");
    let (_, q3) = zk
        .create(&format!("{p}/seq-"), b"", &SEQUENTIAL)
        .await
        .expect("seq after delete");
    assert_eq!(
        q3.into_i64(),
        3,
        "the create counter continues after deletes"
    );

    // Non-sequential children move the counter too.
    zk.create(&format!("{p}/plain"), b"", &PERSISTENT)
        .await
        .expect("plain");
    let (_, q5) = zk
        .create(&format!("{p}/"), b"", &SEQUENTIAL)
        .await
        .expect("bare sequential");
    assert_eq!(q5.into_i64(), 5);

    let mut children = zk.list_children(&p).await.expect("children");
    children.sort();
    assert_eq!(
        children,
        vec![
            "0000000005",
            "eseq-0000000002",
            "plain",
            "seq-0000000000",
            "seq-0000000003"
        ]
    );
    let parent = zk
        .check_stat(&p)
        .await
        .expect("exists")
        .expect("parent stat");
    assert_eq!(parent.cversion, 7, "6 creations * 2 - 5 children");
    assert_eq!(parent.num_children, 5);

    // Deleting every child: cversion keeps counting, the suffix does not.
    for c in &children {
        zk.delete(&format!("{p}/{c}"), None)
            .await
            .expect("delete child");
    }
    let parent = zk
        .check_stat(&p)
        .await
        .expect("exists")
        .expect("parent stat");
    assert_eq!(parent.cversion, 12, "6 creations + 6 deletions");
    let (_, q6) = zk
        .create(&format!("{p}/seq-"), b"", &SEQUENTIAL)
        .await
        .expect("seq after emptying");
    assert_eq!(q6.into_i64(), 6);
}

#[tokio::test]
async fn delete_checks_version_children_and_existence() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_delete");
    zk.create(&p, b"v0", &PERSISTENT).await.expect("create");
    zk.set_data(&p, b"v1", None).await.expect("set 1");
    zk.set_data(&p, b"v2", None).await.expect("set 2");

    assert_eq!(zk.delete(&p, Some(1)).await, Err(Error::BadVersion));
    assert_eq!(zk.delete(&p, Some(3)).await, Err(Error::BadVersion));
    zk.create(&format!("{p}/child"), b"", &PERSISTENT)
        .await
        .expect("child");
    assert_eq!(zk.delete(&p, Some(2)).await, Err(Error::NotEmpty));
    assert_eq!(zk.delete(&p, None).await, Err(Error::NotEmpty));
    // BadVersion is checked before NotEmpty.
    assert_eq!(zk.delete(&p, Some(7)).await, Err(Error::BadVersion));
    zk.delete(&format!("{p}/child"), Some(0))
        .await
        .expect("delete child with its version");
    zk.delete(&p, Some(2))
        .await
        .expect("delete with matching version");
    assert_eq!(zk.check_stat(&p).await.expect("exists"), None);
    assert_eq!(zk.delete(&p, None).await, Err(Error::NoNode));
    assert_eq!(zk.delete(&p, Some(0)).await, Err(Error::NoNode));
    assert_eq!(
        zk.delete(&format!("{p}/x/y"), None).await,
        Err(Error::NoNode)
    );
}

#[tokio::test]
async fn exists_reports_none_or_stat() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_exists");
    assert_eq!(zk.check_stat(&p).await.expect("exists"), None);
    assert_eq!(
        zk.check_stat(&format!("{p}/deeper/still"))
            .await
            .expect("exists deep"),
        None
    );
    let (stat, _) = zk.create(&p, b"123", &PERSISTENT).await.expect("create");
    assert_eq!(zk.check_stat(&p).await.expect("exists"), Some(stat));
    assert_eq!(zk.get_data(&format!("{p}/nope")).await, Err(Error::NoNode));
}

#[tokio::test]
async fn set_data_bumps_version_mzxid_and_mtime() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_set_data");
    let (created, _) = zk.create(&p, b"one", &PERSISTENT).await.expect("create");
    zk.create(&format!("{p}/kid"), b"", &PERSISTENT)
        .await
        .expect("kid");
    let parent_before = zk.check_stat(&p).await.expect("exists").expect("stat");
    tokio::time::sleep(Duration::from_millis(30)).await;

    let s1 = zk
        .set_data(&p, b"second", Some(0))
        .await
        .expect("set with version 0");
    assert_eq!(s1.version, 1);
    assert!(
        s1.mzxid > parent_before.pzxid,
        "mzxid is the new write's zxid"
    );
    assert!(
        s1.mtime > created.mtime,
        "mtime moves: {} vs {}",
        s1.mtime,
        created.mtime
    );
    assert_eq!(s1.czxid, created.czxid);
    assert_eq!(s1.ctime, created.ctime);
    assert_eq!(
        s1.pzxid, parent_before.pzxid,
        "setData does not touch pzxid"
    );
    assert_eq!(s1.cversion, 1);
    assert_eq!(s1.num_children, 1);
    assert_eq!(s1.data_length, 6);
    assert_eq!(s1.aversion, 0);
    let (data, got) = zk.get_data(&p).await.expect("get");
    assert_eq!(data, b"second");
    assert_eq!(got, s1, "getData stat equals the setData stat");

    assert_eq!(zk.set_data(&p, b"x", Some(0)).await, Err(Error::BadVersion));
    assert_eq!(zk.set_data(&p, b"x", Some(2)).await, Err(Error::BadVersion));
    let s2 = zk
        .set_data(&p, b"", Some(1))
        .await
        .expect("set with version 1");
    assert_eq!(s2.version, 2);
    assert_eq!(s2.data_length, 0);
    if server.is_fresh() {
        assert_eq!(
            s2.mzxid,
            s1.mzxid + 3,
            "each of the two failed setData consumed a zxid"
        );
    }
    let s3 = zk
        .set_data(&p, b"same", None)
        .await
        .expect("unconditional set");
    assert_eq!(s3.version, 3);
    let s4 = zk
        .set_data(&p, b"same", None)
        .await
        .expect("same data again still counts");
    assert_eq!(s4.version, 4);

    assert_eq!(
        zk.set_data(&format!("{p}/missing"), b"x", None).await,
        Err(Error::NoNode)
    );
    assert_eq!(
        zk.set_data(&format!("{p}/missing"), b"x", Some(0)).await,
        Err(Error::NoNode)
    );

    // A child's setData leaves the parent alone.
    zk.set_data(&format!("{p}/kid"), b"k", None)
        .await
        .expect("set kid");
    let parent_after = zk.check_stat(&p).await.expect("exists").expect("stat");
    assert_eq!(parent_after.cversion, 1);
    assert_eq!(parent_after.pzxid, parent_before.pzxid);
    assert_eq!(parent_after.mzxid, s4.mzxid);
}

#[tokio::test]
async fn children_listing_and_parent_stat() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_children");
    zk.create(&p, b"", &PERSISTENT).await.expect("parent");
    let mut last = None;
    for name in ["b", "a", "c"] {
        let (s, _) = zk
            .create(&format!("{p}/{name}"), b"", &PERSISTENT)
            .await
            .expect("child");
        last = Some(s);
    }
    zk.create(&format!("{p}/a/grandchild"), b"", &PERSISTENT)
        .await
        .expect("grandchild");

    let mut names = zk.list_children(&p).await.expect("list");
    names.sort();
    assert_eq!(names, vec!["a", "b", "c"], "only direct children, by name");
    let (mut names2, stat) = zk.get_children(&p).await.expect("getChildren2");
    names2.sort();
    assert_eq!(names2, names);
    assert_eq!(stat.num_children, 3);
    assert_eq!(stat.cversion, 3);
    assert_eq!(stat.pzxid, last.expect("created").czxid);
    assert_eq!(
        stat,
        zk.check_stat(&p).await.expect("exists").expect("stat")
    );

    let (leaf, leaf_stat) = zk.get_children(&format!("{p}/b")).await.expect("leaf");
    assert!(leaf.is_empty());
    assert_eq!(leaf_stat.num_children, 0);
    assert_eq!(
        zk.list_children(&format!("{p}/none")).await,
        Err(Error::NoNode)
    );
    assert_eq!(
        zk.get_children(&format!("{p}/none")).await,
        Err(Error::NoNode)
    );
}

#[tokio::test]
async fn acl_get_and_set_bump_aversion() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_acl");
    let (created, _) = zk.create(&p, b"d", &PERSISTENT).await.expect("create");

    let (acl, stat) = zk.get_acl(&p).await.expect("getACL");
    assert_eq!(acl, vec![Acl::new(Permission::ALL, AuthId::anyone())]);
    assert_eq!(stat, created);

    let read_write = [Acl::new(
        Permission::READ | Permission::WRITE | Permission::ADMIN,
        AuthId::anyone(),
    )];
    let s1 = zk
        .set_acl(&p, &read_write, Some(0))
        .await
        .expect("setACL version 0");
    assert_eq!(s1.aversion, 1);
    assert_eq!(s1.version, 0, "setACL leaves the data version");
    assert_eq!(s1.mzxid, created.mzxid, "setACL leaves mzxid");
    assert_eq!(s1.mtime, created.mtime, "setACL leaves mtime");
    assert_eq!(s1.cversion, 0);
    assert_eq!(
        zk.set_acl(&p, &read_write, Some(0)).await,
        Err(Error::BadVersion)
    );
    let (acl, stat) = zk.get_acl(&p).await.expect("getACL");
    assert_eq!(acl, read_write.to_vec());
    assert_eq!(stat.aversion, 1);
    let s2 = zk
        .set_acl(&p, &read_write, None)
        .await
        .expect("setACL any version");
    assert_eq!(s2.aversion, 2);

    // The ACL is enforced: no CREATE or DELETE any more.
    assert_eq!(
        zk.create(&format!("{p}/c"), b"", &PERSISTENT).await,
        Err(Error::NoAuth)
    );
    zk.set_data(&p, b"still writable", None)
        .await
        .expect("WRITE kept");

    assert_eq!(
        zk.get_acl(&format!("{p}/missing")).await,
        Err(Error::NoNode)
    );
    assert_eq!(
        zk.set_acl(&format!("{p}/missing"), &read_write, None).await,
        Err(Error::NoNode)
    );
}

#[tokio::test]
async fn sync_succeeds() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_sync");
    zk.create(&p, b"", &PERSISTENT).await.expect("create");
    zk.sync(&p).await.expect("sync existing");
    zk.sync("/").await.expect("sync root");
    zk.sync(&format!("{p}/not/there"))
        .await
        .expect("sync does not look the path up");
}

#[tokio::test]
async fn multi_write_commits_all_ops_with_one_zxid() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_multi");
    zk.create(&p, b"", &PERSISTENT).await.expect("parent");
    zk.create(&format!("{p}/old"), b"", &PERSISTENT)
        .await
        .expect("old");

    let mut w = zk.new_multi_writer();
    w.add_create(&format!("{p}/a"), b"A", &PERSISTENT)
        .expect("op");
    w.add_create(&format!("{p}/s-"), b"", &SEQUENTIAL)
        .expect("op");
    w.add_set_data(&format!("{p}/a"), b"AA", Some(0))
        .expect("op");
    w.add_check_version(&format!("{p}/a"), 1).expect("op");
    w.add_delete(&format!("{p}/old"), Some(0)).expect("op");
    let results = w.commit().await.expect("multi");
    assert_eq!(results.len(), 5);
    let MultiWriteResult::Create { path, stat: a_stat } = &results[0] else {
        panic!("result 0: {:?}", results[0])
    };
    assert_eq!(path, &format!("{p}/a"));
    let MultiWriteResult::Create {
        path: seq_path,
        stat: s_stat,
    } = &results[1]
    else {
        panic!("result 1: {:?}", results[1])
    };
    assert_eq!(
        seq_path,
        &format!("{p}/s-0000000002"),
        "sequence from the parent's cversion inside the multi"
    );
    let MultiWriteResult::SetData { stat: set_stat } = &results[2] else {
        panic!("result 2: {:?}", results[2])
    };
    assert_eq!(results[3], MultiWriteResult::Check);
    assert_eq!(results[4], MultiWriteResult::Delete);

    assert_eq!(set_stat.version, 1);
    assert_eq!(set_stat.data_length, 2);
    assert_eq!(
        set_stat.mzxid, set_stat.czxid,
        "created and changed in the same transaction"
    );
    if !a_stat.is_invalid() {
        assert_eq!(
            a_stat.czxid, set_stat.czxid,
            "all ops of a multi share one zxid"
        );
        assert_eq!(
            s_stat.czxid, set_stat.czxid,
            "all ops of a multi share one zxid"
        );
        assert_eq!(a_stat.version, 0, "create's stat is taken at its own step");
    }

    let (data, stat) = zk.get_data(&format!("{p}/a")).await.expect("a");
    assert_eq!(data, b"AA");
    assert_eq!(stat, *set_stat);
    assert_eq!(
        zk.check_stat(&format!("{p}/old")).await.expect("exists"),
        None
    );
    let parent = zk.check_stat(&p).await.expect("exists").expect("parent");
    assert_eq!(parent.pzxid, set_stat.czxid);
    assert_eq!(parent.cversion, 4, "old + a + s + delete of old");
    assert_eq!(parent.num_children, 2);

    // An empty multi is answered without a round trip and changes nothing.
    let mut empty = zk.new_multi_writer();
    assert_eq!(empty.commit().await.expect("empty multi"), vec![]);
}

#[tokio::test]
async fn multi_write_is_all_or_nothing() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_multi_fail");
    zk.create(&p, b"orig", &PERSISTENT).await.expect("parent");
    let before = zk.check_stat(&p).await.expect("exists").expect("stat");

    // Fails at its third op: the first two must leave no trace.
    let mut w = zk.new_multi_writer();
    w.add_create(&format!("{p}/x"), b"", &PERSISTENT)
        .expect("op");
    w.add_set_data(&p, b"changed", None).expect("op");
    w.add_set_data(&format!("{p}/missing"), b"", None)
        .expect("op");
    w.add_create(&format!("{p}/y"), b"", &PERSISTENT)
        .expect("op");
    let err = w.commit().await.expect_err("must fail");
    assert_eq!(
        err,
        MultiWriteError::OperationFailed {
            index: 2,
            source: Error::NoNode
        }
    );
    assert_eq!(
        zk.check_stat(&format!("{p}/x")).await.expect("exists"),
        None,
        "create rolled back"
    );
    assert_eq!(
        zk.check_stat(&format!("{p}/y")).await.expect("exists"),
        None
    );
    let (data, after) = zk.get_data(&p).await.expect("get");
    assert_eq!(data, b"orig", "setData rolled back");
    assert_eq!(after.version, before.version);
    assert_eq!(after.cversion, before.cversion);
    assert_eq!(after.mzxid, before.mzxid);

    // A failing version check.
    let mut w = zk.new_multi_writer();
    w.add_check_version(&p, 5).expect("op");
    w.add_delete(&p, None).expect("op");
    assert_eq!(
        w.commit().await,
        Err(MultiWriteError::OperationFailed {
            index: 0,
            source: Error::BadVersion
        })
    );
    assert!(zk.check_stat(&p).await.expect("exists").is_some());

    // A conflict created inside the same multi.
    let mut w = zk.new_multi_writer();
    w.add_create(&format!("{p}/dup"), b"", &PERSISTENT)
        .expect("op");
    w.add_create(&format!("{p}/dup"), b"", &PERSISTENT)
        .expect("op");
    assert_eq!(
        w.commit().await,
        Err(MultiWriteError::OperationFailed {
            index: 1,
            source: Error::NodeExists
        })
    );
    assert_eq!(
        zk.check_stat(&format!("{p}/dup")).await.expect("exists"),
        None
    );

    // An op depending on an earlier one of the same multi succeeds.
    let mut w = zk.new_multi_writer();
    w.add_create(&format!("{p}/n"), b"", &PERSISTENT)
        .expect("op");
    w.add_create(&format!("{p}/n/m"), b"", &PERSISTENT)
        .expect("op");
    w.add_delete(&format!("{p}/n/m"), Some(0)).expect("op");
    w.add_delete(&format!("{p}/n"), Some(0)).expect("op");
    let results = w.commit().await.expect("self-contained multi");
    assert_eq!(results.len(), 4);
    assert_eq!(
        zk.check_stat(&format!("{p}/n")).await.expect("exists"),
        None
    );
}

#[tokio::test]
async fn multi_read_reports_per_op_results() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_multi_read");
    zk.create(&p, b"data", &PERSISTENT).await.expect("create");
    zk.create(&format!("{p}/k1"), b"", &PERSISTENT)
        .await
        .expect("k1");
    zk.create(&format!("{p}/k2"), b"", &PERSISTENT)
        .await
        .expect("k2");
    let stat = zk.check_stat(&p).await.expect("exists").expect("stat");

    let mut r = zk.new_multi_reader();
    r.add_get_data(&p).expect("op");
    r.add_get_children(&p).expect("op");
    r.add_get_data(&format!("{p}/missing")).expect("op");
    r.add_get_children(&format!("{p}/missing")).expect("op");
    r.add_get_data(&format!("{p}/k1")).expect("op");
    let results = r.commit().await.expect("multiRead");
    assert_eq!(results.len(), 5);
    match &results[0] {
        MultiReadResult::Data { data, stat: s } => {
            assert_eq!(data, b"data");
            assert_eq!(*s, stat);
        }
        other => panic!("result 0: {other:?}"),
    }
    match &results[1] {
        MultiReadResult::Children { children } => {
            let mut c = children.clone();
            c.sort();
            assert_eq!(c, vec!["k1", "k2"]);
        }
        other => panic!("result 1: {other:?}"),
    }
    assert!(
        matches!(&results[2], MultiReadResult::Error { err: Error::NoNode }),
        "result 2: {:?}",
        results[2]
    );
    assert!(
        matches!(&results[3], MultiReadResult::Error { err: Error::NoNode }),
        "result 3: {:?}",
        results[3]
    );
    assert!(
        matches!(&results[4], MultiReadResult::Data { data, .. } if data.is_empty()),
        "result 4: {:?}",
        results[4]
    );
}

#[tokio::test]
async fn count_descendants() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_count");
    zk.create(&p, b"", &PERSISTENT).await.expect("p");
    zk.create(&format!("{p}/a"), b"", &PERSISTENT)
        .await
        .expect("a");
    zk.create(&format!("{p}/b"), b"", &PERSISTENT)
        .await
        .expect("b");
    zk.create(&format!("{p}/a/x"), b"", &PERSISTENT)
        .await
        .expect("x");
    zk.create(&format!("{p}/a/x/y"), b"", &EPHEMERAL)
        .await
        .expect("y");
    assert_eq!(zk.count_descendants_number(&p).await.expect("count"), 4);
    assert_eq!(
        zk.count_descendants_number(&format!("{p}/a"))
            .await
            .expect("count a"),
        2
    );
    assert_eq!(
        zk.count_descendants_number(&format!("{p}/b"))
            .await
            .expect("count b"),
        0
    );
    assert_eq!(
        zk.count_descendants_number(&format!("{p}/none")).await,
        Err(Error::NoNode)
    );
    assert_eq!(
        zk.count_descendants_number("/zookeeper")
            .await
            .expect("count /zookeeper"),
        2
    );
    if server.is_fresh() {
        // The whole tree but the root: our 5 nodes and /zookeeper, /zookeeper/quota, /zookeeper/config.
        assert_eq!(zk.count_descendants_number("/").await.expect("count /"), 8);
    }
}

#[tokio::test]
async fn list_ephemerals_by_string_prefix() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let other = common::client(&server).await;
    let p = server.path("ops_ephemerals");
    zk.create(&p, b"", &PERSISTENT).await.expect("p");
    zk.create(&format!("{p}/sub"), b"", &PERSISTENT)
        .await
        .expect("sub");
    zk.create(&format!("{p}/e1"), b"", &EPHEMERAL)
        .await
        .expect("e1");
    zk.create(&format!("{p}/sub/e2"), b"", &EPHEMERAL)
        .await
        .expect("e2");
    zk.create(&format!("{p}x"), b"", &EPHEMERAL)
        .await
        .expect("sibling sharing the string prefix");
    other
        .create(&format!("{p}/theirs"), b"", &EPHEMERAL)
        .await
        .expect("other session's");

    let mut mine = zk.list_ephemerals(&p).await.expect("getEphemerals");
    mine.sort();
    assert_eq!(
        mine,
        vec![format!("{p}/e1"), format!("{p}/sub/e2"), format!("{p}x")],
        "a plain string prefix, this session only"
    );
    let mut sub = zk
        .list_ephemerals(&format!("{p}/sub"))
        .await
        .expect("getEphemerals sub");
    sub.sort();
    assert_eq!(sub, vec![format!("{p}/sub/e2")]);
    let all = zk.list_ephemerals("/").await.expect("getEphemerals /");
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(
        zk.list_ephemerals(&format!("{p}/nothing"))
            .await
            .expect("no match"),
        Vec::<String>::new()
    );
    assert_eq!(
        other.list_ephemerals("/").await.expect("other"),
        vec![format!("{p}/theirs")]
    );
    // An ephemeral path itself matches.
    assert_eq!(
        zk.list_ephemerals(&format!("{p}/e1")).await.expect("exact"),
        vec![format!("{p}/e1")]
    );
}

#[tokio::test]
async fn who_am_i() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let sorted = |mut v: Vec<AuthUser>| {
        v.sort_by(|a, b| (a.scheme(), a.user()).cmp(&(b.scheme(), b.user())));
        v
    };
    assert_eq!(
        zk.list_auth_users().await.expect("whoAmI"),
        vec![AuthUser::new("ip", "127.0.0.1")]
    );
    zk.auth("digest", b"user:pass").await.expect("auth");
    // The server keeps the identities as a set: no particular order.
    assert_eq!(
        sorted(zk.list_auth_users().await.expect("whoAmI")),
        vec![
            AuthUser::new("digest", "user"),
            AuthUser::new("ip", "127.0.0.1")
        ]
    );
    zk.auth("digest", b"other:secret")
        .await
        .expect("second auth");
    zk.auth("digest", b"user:pass")
        .await
        .expect("same auth again");
    assert_eq!(
        sorted(zk.list_auth_users().await.expect("whoAmI")),
        vec![
            AuthUser::new("digest", "other"),
            AuthUser::new("digest", "user"),
            AuthUser::new("ip", "127.0.0.1")
        ]
    );
    let other = common::client(&server).await;
    assert_eq!(
        other.list_auth_users().await.expect("whoAmI"),
        vec![AuthUser::new("ip", "127.0.0.1")]
    );
}

#[tokio::test]
async fn failed_writes_consume_a_zxid() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_failed_zxid");
    if !server.is_fresh() {
        eprintln!("needs a server of its own (OXKEEPER_TEST_EXTERNAL_FRESH=1, run alone)");
        return;
    }
    let (s0, _) = zk.create(&p, b"", &PERSISTENT).await.expect("create");
    assert_eq!(zk.set_data(&p, b"", Some(9)).await, Err(Error::BadVersion));
    assert_eq!(
        zk.create(&p, b"", &PERSISTENT).await,
        Err(Error::NodeExists)
    );
    assert_eq!(
        zk.delete(&format!("{p}/none"), None).await,
        Err(Error::NoNode)
    );
    let mut w = zk.new_multi_writer();
    w.add_check_version(&p, 9).expect("op");
    assert!(w.commit().await.is_err());
    let s1 = zk.set_data(&p, b"x", None).await.expect("set");
    assert_eq!(
        s1.mzxid,
        s0.czxid + 5,
        "4 failed writes in between, one zxid each"
    );
    // Reads do not.
    zk.get_data(&p).await.expect("read");
    zk.check_stat(&format!("{p}/none")).await.expect("read");
    let (s2, _) = zk
        .create(&format!("{p}/c"), b"", &PERSISTENT)
        .await
        .expect("create c");
    assert_eq!(s2.czxid, s1.mzxid + 1);
}

#[tokio::test]
async fn reserved_nodes() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    for path in ["/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
        let stat = zk
            .check_stat(path)
            .await
            .expect("exists")
            .unwrap_or_else(|| panic!("{path} must exist"));
        assert_eq!(stat.ephemeral_owner, 0);
        assert_eq!(
            zk.delete(path, None).await,
            Err(SERVER_BAD_ARGUMENTS),
            "deleting {path}"
        );
        assert_eq!(
            zk.delete(path, Some(0)).await,
            Err(SERVER_BAD_ARGUMENTS),
            "deleting {path} with a version"
        );
    }
    let mut kids = zk
        .list_children("/zookeeper")
        .await
        .expect("list /zookeeper");
    kids.sort();
    assert_eq!(kids, vec!["config", "quota"]);

    let (acl, _) = zk
        .get_acl("/zookeeper/config")
        .await
        .expect("getACL config");
    assert_eq!(
        acl,
        vec![Acl::new(Permission::READ, AuthId::anyone())],
        "/zookeeper/config is world-readable only"
    );
    assert_eq!(
        zk.set_data("/zookeeper/config", b"x", None).await,
        Err(Error::NoAuth)
    );
    assert_eq!(
        zk.create("/zookeeper/config/x", b"", &PERSISTENT).await,
        Err(Error::NoAuth)
    );
    let (_, stat) = zk.get_config().await.expect("getConfig");
    assert_eq!(stat.ephemeral_owner, 0);
    let (data, _) = zk.get_data("/zookeeper/quota").await.expect("get quota");
    assert!(data.is_empty());

    // Multi cannot sneak around it.
    let mut w = zk.new_multi_writer();
    w.add_delete("/zookeeper/quota", None).expect("op");
    assert_eq!(
        w.commit().await,
        Err(MultiWriteError::OperationFailed {
            index: 0,
            source: SERVER_BAD_ARGUMENTS
        })
    );
    assert!(zk
        .check_stat("/zookeeper/quota")
        .await
        .expect("exists")
        .is_some());
}

#[tokio::test]
async fn root_stat_on_fresh_server() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let root = zk.check_stat("/").await.expect("exists /").expect("root");
    assert_eq!(root.ephemeral_owner, 0);
    assert_eq!(root.czxid, 0);
    assert_eq!(root.ctime, 0);
    assert_eq!(root.version, 0);
    assert_eq!(root.aversion, 0);
    let (acl, _) = zk.get_acl("/").await.expect("getACL /");
    assert_eq!(acl, vec![Acl::new(Permission::ALL, AuthId::anyone())]);
    if !server.is_fresh() {
        return;
    }
    assert_eq!(root.cversion, -1, "the root's cversion starts at -1");
    assert_eq!(root.num_children, 1, "only /zookeeper");
    assert_eq!(root.pzxid, 0);
    assert_eq!(root.mzxid, 0);
    assert_eq!(root.mtime, 0);
    assert_eq!(root.data_length, 0);
    let (kids, _) = zk.get_children("/").await.expect("ls /");
    assert_eq!(kids, vec!["zookeeper"]);

    let (created, _) = zk
        .create("/ops_root_child", b"", &PERSISTENT)
        .await
        .expect("create");
    let root = zk.check_stat("/").await.expect("exists /").expect("root");
    assert_eq!(root.cversion, 0);
    assert_eq!(root.num_children, 2);
    assert_eq!(root.pzxid, created.czxid);
    let (_, q) = zk
        .create("/ops_root_seq-", b"", &SEQUENTIAL)
        .await
        .expect("seq under /");
    assert_eq!(
        q.into_i64(),
        1,
        "the root's create counter: /zookeeper was not counted, /ops_root_child was"
    );
    let root = zk.check_stat("/").await.expect("exists /").expect("root");
    assert_eq!(root.cversion, 1, "2 counted creations * 2 - 3 children");
}

#[tokio::test]
async fn ephemerals_cannot_have_children() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_no_children_for_ephemerals");
    zk.create(&p, b"", &EPHEMERAL).await.expect("ephemeral");
    assert_eq!(
        zk.create(&format!("{p}/c"), b"", &PERSISTENT).await,
        Err(Error::NoChildrenForEphemerals)
    );
    assert_eq!(
        zk.create(&format!("{p}/c"), b"", &EPHEMERAL).await,
        Err(Error::NoChildrenForEphemerals)
    );
    assert_eq!(
        zk.create(&format!("{p}/s-"), b"", &SEQUENTIAL).await,
        Err(Error::NoChildrenForEphemerals)
    );
    let stat = zk.check_stat(&p).await.expect("exists").expect("stat");
    assert_eq!(stat.cversion, 0);
    assert_eq!(stat.num_children, 0);
}

#[tokio::test]
async fn node_exists_and_missing_parent() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    let p = server.path("ops_node_exists");
    let (first, _) = zk.create(&p, b"first", &PERSISTENT).await.expect("create");
    assert_eq!(
        zk.create(&p, b"again", &PERSISTENT).await,
        Err(Error::NodeExists)
    );
    assert_eq!(
        zk.create(&p, b"again", &EPHEMERAL).await,
        Err(Error::NodeExists)
    );
    let (data, stat) = zk.get_data(&p).await.expect("get");
    assert_eq!(data, b"first");
    assert_eq!(stat, first);
    assert_eq!(
        zk.create(&format!("{p}/no/parent"), b"", &PERSISTENT).await,
        Err(Error::NoNode)
    );
    assert_eq!(
        zk.create(&format!("{p}/no/s-"), b"", &SEQUENTIAL).await,
        Err(Error::NoNode)
    );
    // A failed create does not move the parent's counter.
    let (_, q) = zk
        .create(&format!("{p}/s-"), b"", &SEQUENTIAL)
        .await
        .expect("seq");
    assert_eq!(q.into_i64(), 0);
}

#[tokio::test]
async fn bad_paths_are_rejected() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    // zookeeper-client validates paths itself; these never reach the server.
    let cases: &[(&str, &str)] = &[
        ("", "path cannot be empty"),
        ("a/b", "path must start with '/'"),
        ("/a//b", "empty node is not allowed in path"),
        ("/a/", "path must not end with '/'"),
        ("/a/./b", "relative path is not allowed"),
        ("/a/../b", "relative path is not allowed"),
        ("/a\u{0}b", "unsupported characters in path"),
        ("/a\u{1}b", "unsupported characters in path"),
    ];
    for (path, msg) in cases {
        match zk.create(path, b"", &PERSISTENT).await {
            Err(Error::BadArguments(m)) => assert_eq!(*m, *msg, "create {path:?}"),
            other => panic!("create {path:?}: {other:?}"),
        }
        assert!(
            matches!(zk.get_data(path).await, Err(Error::BadArguments(_))),
            "get {path:?}"
        );
    }
    assert_eq!(
        zk.create("/", b"", &PERSISTENT).await,
        Err(Error::BadArguments(&"can not create root node"))
    );
    assert_eq!(
        zk.delete("/", None).await,
        Err(Error::BadArguments(&"can not delete root node"))
    );
    // The session is still fine.
    let p = server.path("ops_bad_paths_ok");
    zk.create(&p, b"", &PERSISTENT)
        .await
        .expect("create after rejects");
}
