#![allow(clippy::unwrap_used)]

use super::*;
use bytes::Bytes;
use oxkeeper_proto::codes::event_type as ev;
use oxkeeper_proto::perms;
use oxkeeper_proto::txn::*;
use oxkeeper_proto::{Acl, Txn, TxnHeader};

pub(super) const S1: i64 = 0x100;
pub(super) const S2: i64 = 0x200;

pub(super) fn hdr(zxid: i64, client: i64, txn: &Txn) -> TxnHeader {
    TxnHeader {
        client_id: client,
        cxid: 1,
        zxid,
        time: 1_000 + zxid,
        txn_type: txn.txn_type(),
    }
}

pub(super) fn run(t: &mut DataTree, zxid: i64, client: i64, txn: Txn) -> ApplyResult {
    t.apply(&hdr(zxid, client, &txn), &txn)
}

pub(super) fn create(path: &str, data: &[u8], ephemeral: bool, parent_cversion: i32) -> Txn {
    Txn::Create(CreateTxn {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: Acl::open(),
        ephemeral,
        parent_cversion,
    })
}

pub(super) fn delete(path: &str) -> Txn {
    Txn::Delete(DeleteTxn { path: path.into() })
}

pub(super) fn set_data(path: &str, data: &[u8], version: i32) -> Txn {
    Txn::SetData(SetDataTxn {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        version,
    })
}

pub(super) fn trig(r: &ApplyResult) -> Vec<(&str, i32)> {
    r.triggers
        .iter()
        .map(|t| (t.path.as_str(), t.event_type))
        .collect()
}

/// Everything observable about a tree, for equality checks.
pub(super) fn dump(t: &DataTree) -> Vec<String> {
    t.observable_state()
}

#[test]
fn reserved_nodes() {
    let t = DataTree::new();
    assert_eq!(t.children("/"), vec!["zookeeper"]);
    assert_eq!(t.children("/zookeeper"), vec!["config", "quota"]);
    let root = t.get("/").unwrap().stat();
    assert_eq!(
        (
            root.cversion,
            root.num_children,
            root.czxid,
            root.pzxid,
            root.aversion
        ),
        (-1, 1, 0, 0, 0)
    );
    assert_eq!(t.get("/zookeeper").unwrap().stat().cversion, -2);
    assert_eq!(t.get("/zookeeper/quota").unwrap().stat().cversion, 0);
    let config = t.get("/zookeeper/config").unwrap();
    assert_eq!(config.acl(), &Acl::read_only()[..]);
    assert_eq!(config.stat().aversion, -1);
    for p in ["/", "/zookeeper", "/zookeeper/quota"] {
        let n = t.get(p).unwrap();
        assert_eq!(n.acl(), &Acl::open()[..]);
        assert_eq!(n.data(), &Some(Bytes::new()));
        assert_eq!(n.stat().aversion, 0);
        assert!(is_reserved(p));
    }
    assert!(!is_reserved("/zookeeperx"));
    assert_eq!(t.node_count(), 4);
    assert_eq!(t.count_descendants("/"), 3);
    assert_eq!(t.count_descendants("/zookeeper"), 2);
    assert_eq!(t.count_descendants("/missing"), 0);
    // "" + "/" + "/zookeeper" + "/zookeeper/quota" + "/zookeeper/config"
    assert_eq!(t.approximate_data_size(), 44);
    assert_eq!(t.acl_cache_size(), 2);
    assert_eq!(t.last_processed_zxid(), 0);
}

#[test]
fn create_sets_stat_parent_and_triggers() {
    let mut t = DataTree::new();
    let r = run(&mut t, 5, S1, create("/a", b"hi", false, 1));
    assert_eq!(r.err, 0);
    let OpResult::Created { path, stat } = &r.results[0] else {
        panic!("{r:?}")
    };
    assert_eq!(path, "/a");
    assert_eq!(
        (stat.czxid, stat.mzxid, stat.pzxid, stat.ctime, stat.mtime),
        (5, 5, 5, 1005, 1005)
    );
    assert_eq!(
        (
            stat.version,
            stat.cversion,
            stat.aversion,
            stat.ephemeral_owner
        ),
        (0, 0, 0, 0)
    );
    assert_eq!((stat.data_length, stat.num_children), (2, 0));
    assert_eq!(
        trig(&r),
        vec![("/a", ev::NODE_CREATED), ("/", ev::NODE_CHILDREN_CHANGED)]
    );
    assert_eq!(&*r.triggers[1].acl, &Acl::open()[..]);
    let root = t.get("/").unwrap();
    assert_eq!(
        (root.cversion(), root.pzxid(), root.stat().cversion),
        (1, 5, 0)
    );
    assert_eq!(t.last_processed_zxid(), 5);
    assert_eq!(t.approximate_data_size(), 44 + 2 + 2);
    // parentCVersion -1 means "current + 1" (pre-3.4 logs).
    run(&mut t, 6, S1, create("/b", b"", false, -1));
    assert_eq!(t.get("/").unwrap().cversion(), 2);
    // A missing parent is NONODE with no effect.
    let r = run(&mut t, 7, S1, create("/x/y", b"", false, 1));
    assert_eq!((r.err, r.triggers.len()), (ErrorCode::NoNode.code(), 0));
    assert_eq!(t.last_processed_zxid(), 7);
}

#[test]
fn cversion_formula_counts_creates_and_deletes() {
    let mut t = DataTree::new();
    run(&mut t, 1, S1, create("/a", b"", false, 1));
    run(&mut t, 2, S1, create("/a/x", b"", false, 1));
    run(&mut t, 3, S1, create("/a/y", b"", false, 2));
    let r = run(&mut t, 4, S1, delete("/a/x"));
    assert_eq!(r.results, vec![OpResult::Deleted]);
    assert_eq!(
        trig(&r),
        vec![
            ("/a/x", ev::NODE_DELETED),
            ("/a", ev::NODE_CHILDREN_CHANGED)
        ]
    );
    let a = t.get("/a").unwrap();
    assert_eq!(
        (
            a.cversion(),
            a.pzxid(),
            a.stat().cversion,
            a.stat().num_children
        ),
        (2, 4, 3, 1)
    );
    assert_eq!(t.children("/a"), vec!["y"]);
}

#[test]
fn null_and_empty_data_are_distinct() {
    let mut t = DataTree::new();
    let mut txn = create("/n", b"", false, 1);
    if let Txn::Create(c) = &mut txn {
        c.data = None;
    }
    run(&mut t, 1, S1, txn);
    run(&mut t, 2, S1, create("/e", b"", false, 2));
    assert_eq!(t.get("/n").unwrap().data(), &None);
    assert_eq!(t.get("/e").unwrap().data(), &Some(Bytes::new()));
    assert_eq!(t.get("/n").unwrap().stat().data_length, 0);
}

#[test]
fn ephemeral_container_and_ttl_owners() {
    let mut t = DataTree::new();
    let r = run(&mut t, 1, S1, create("/e", b"", true, 1));
    let OpResult::Created { stat, .. } = &r.results[0] else {
        panic!()
    };
    assert_eq!(stat.ephemeral_owner, S1);
    let c = Txn::CreateContainer(CreateContainerTxn {
        path: "/c".into(),
        data: None,
        acl: Acl::open(),
        parent_cversion: 2,
    });
    run(&mut t, 2, S1, c);
    let ttl = Txn::CreateTtl(CreateTtlTxn {
        path: "/t".into(),
        data: None,
        acl: Acl::open(),
        parent_cversion: 3,
        ttl: 500,
    });
    let r = run(&mut t, 3, S1, ttl);
    let OpResult::Created { stat, .. } = &r.results[0] else {
        panic!()
    };
    assert_eq!(stat.ephemeral_owner, 0);
    let e2 = Txn::Create2(CreateTxn {
        path: "/e2".into(),
        data: None,
        acl: Acl::open(),
        ephemeral: true,
        parent_cversion: 4,
    });
    run(&mut t, 4, S2, e2);

    assert!(t.get("/e").unwrap().is_ephemeral());
    assert_eq!(t.get("/e2").unwrap().ephemeral_session(), Some(S2));
    assert!(t.get("/c").unwrap().is_container());
    assert_eq!(
        t.get("/c").unwrap().ephemeral_owner(),
        CONTAINER_EPHEMERAL_OWNER
    );
    assert_eq!(t.get("/c").unwrap().stat().ephemeral_owner, 0);
    assert_eq!(t.get("/t").unwrap().ttl(), Some(500));
    assert!(t.get("/t").unwrap().is_ttl() && !t.get("/t").unwrap().is_ephemeral());
    assert_eq!(t.ephemerals(S1), vec!["/e"]);
    assert_eq!(t.ephemeral_sessions().collect::<Vec<_>>(), vec![S1, S2]);
    assert_eq!(t.ephemeral_count(), 2);
    assert_eq!(t.containers().collect::<Vec<_>>(), vec!["/c"]);
    assert_eq!(t.ttl_nodes().collect::<Vec<_>>(), vec!["/t"]);

    // An out-of-range TTL is refused.
    let bad = Txn::CreateTtl(CreateTtlTxn {
        path: "/t2".into(),
        data: None,
        acl: Acl::open(),
        parent_cversion: 5,
        ttl: 0,
    });
    assert_eq!(run(&mut t, 5, S1, bad).err, ErrorCode::BadArguments.code());

    for (z, p) in [(6, "/e"), (7, "/c"), (8, "/t"), (9, "/e2")] {
        let del = if p == "/c" {
            Txn::DeleteContainer(DeleteTxn { path: p.into() })
        } else {
            delete(p)
        };
        assert_eq!(run(&mut t, z, S1, del).err, 0);
    }
    assert_eq!(t.ephemeral_sessions().count(), 0);
    assert_eq!(t.containers().count() + t.ttl_nodes().count(), 0);
}

#[test]
fn delete_missing_raises_parent_pzxid_only_upwards() {
    let mut t = DataTree::new();
    run(&mut t, 10, S1, create("/a", b"", false, 1));
    let r = run(&mut t, 20, S1, delete("/a/gone"));
    assert_eq!((r.err, r.triggers.len()), (ErrorCode::NoNode.code(), 0));
    assert_eq!(t.get("/a").unwrap().pzxid(), 20);
    run(&mut t, 15, S1, delete("/a/gone"));
    assert_eq!(t.get("/a").unwrap().pzxid(), 20);
    assert_eq!(
        run(&mut t, 21, S1, delete("/nope/x")).err,
        ErrorCode::NoNode.code()
    );
    // A stale zxid never lowers last_processed_zxid either.
    assert_eq!(t.last_processed_zxid(), 21);
}

#[test]
fn set_data_and_set_acl() {
    let mut t = DataTree::new();
    run(&mut t, 1, S1, create("/a", b"xy", false, 1));
    let r = run(&mut t, 2, S1, set_data("/a", b"hello", 1));
    let OpResult::Stat(stat) = &r.results[0] else {
        panic!()
    };
    assert_eq!(
        (
            stat.version,
            stat.mzxid,
            stat.mtime,
            stat.czxid,
            stat.data_length
        ),
        (1, 2, 1002, 1, 5)
    );
    assert_eq!(trig(&r), vec![("/a", ev::NODE_DATA_CHANGED)]);
    assert_eq!(t.get("/a").unwrap().data().as_deref(), Some(&b"hello"[..]));
    assert_eq!(t.approximate_data_size(), 44 + 2 + 5);
    let r = run(&mut t, 3, S1, set_data("/b", b"", 1));
    assert_eq!((r.err, r.triggers.len()), (ErrorCode::NoNode.code(), 0));

    let digest = vec![Acl::new(perms::ALL, "digest", "bob:hash")];
    let r = run(
        &mut t,
        4,
        S1,
        Txn::SetAcl(SetAclTxn {
            path: "/a".into(),
            acl: digest.clone(),
            version: 1,
        }),
    );
    let OpResult::Stat(stat) = &r.results[0] else {
        panic!()
    };
    assert_eq!((stat.aversion, stat.version), (1, 1));
    assert!(r.triggers.is_empty());
    assert_eq!(t.get("/a").unwrap().acl(), &digest[..]);
    assert_eq!(t.acl_cache_size(), 3);
    run(
        &mut t,
        5,
        S1,
        Txn::SetAcl(SetAclTxn {
            path: "/a".into(),
            acl: Acl::open(),
            version: 2,
        }),
    );
    assert_eq!(t.acl_cache_size(), 2);
    let r = run(
        &mut t,
        6,
        S1,
        Txn::SetAcl(SetAclTxn {
            path: "/b".into(),
            acl: Acl::open(),
            version: 2,
        }),
    );
    assert_eq!(r.err, ErrorCode::NoNode.code());
}

#[test]
fn check_session_and_error_txns() {
    let mut t = DataTree::new();
    let before = dump(&t);
    let r = run(
        &mut t,
        1,
        S1,
        Txn::CreateSession(CreateSessionTxn { timeout_ms: 30_000 }),
    );
    assert_eq!(
        (r.results.clone(), r.err, r.zxid),
        (vec![OpResult::Session], 0, 1)
    );
    let r = run(
        &mut t,
        2,
        S1,
        Txn::Error(ErrorTxn {
            err: ErrorCode::BadVersion.code(),
        }),
    );
    assert_eq!(
        (r.results.clone(), r.err),
        (vec![OpResult::Error(-103)], -103)
    );
    let r = run(
        &mut t,
        3,
        S1,
        Txn::Check(CheckVersionTxn {
            path: "/zookeeper".into(),
            version: 0,
        }),
    );
    assert_eq!(r.results, vec![OpResult::Checked]);
    assert_eq!(t.last_processed_zxid(), 3);
    assert_eq!(dump(&t)[1..], before[1..]);
}

#[test]
fn close_session_deletes_listed_then_owned() {
    let mut t = DataTree::new();
    run(&mut t, 1, S1, create("/e1", b"", true, 1));
    run(&mut t, 2, S1, create("/e2", b"", true, 2));
    run(&mut t, 3, S2, create("/other", b"", true, 3));
    let close = Txn::CloseSession(CloseSessionTxn {
        paths_to_delete: vec!["/e2".into(), "/missing".into()],
    });
    let r = run(&mut t, 4, S1, close);
    assert_eq!((r.err, r.results.clone()), (0, vec![OpResult::Session]));
    assert_eq!(
        trig(&r),
        vec![
            ("/e2", ev::NODE_DELETED),
            ("/", ev::NODE_CHILDREN_CHANGED),
            ("/e1", ev::NODE_DELETED),
            ("/", ev::NODE_CHILDREN_CHANGED)
        ]
    );
    assert!(!t.exists("/e1") && !t.exists("/e2") && t.exists("/other"));
    assert_eq!(t.get("/").unwrap().pzxid(), 4);
    // Old logs: an empty list deletes whatever the session owns.
    let r = run(&mut t, 5, S2, Txn::CloseSession(CloseSessionTxn::default()));
    assert_eq!(trig(&r)[0], ("/other", ev::NODE_DELETED));
    assert_eq!(t.ephemeral_count(), 0);
}
