//! Multi, tolerant replay, and the tree-wide walks.

#![allow(clippy::unwrap_used)]

use super::tests::{create, delete, dump, run, set_data, trig, S1, S2};
use super::*;
use oxkeeper_proto::codes::{event_type as ev, op};
use oxkeeper_proto::perms;
use oxkeeper_proto::txn::*;
use oxkeeper_proto::{Acl, MultiResult, Txn};

#[test]
fn multi_applies_all_with_one_zxid() {
    let mut t = DataTree::new();
    let m = Txn::Multi(vec![
        create("/m", b"", false, 1),
        Txn::Create2(CreateTxn {
            path: "/m/c".into(),
            data: None,
            acl: Acl::open(),
            ephemeral: false,
            parent_cversion: 1,
        }),
        set_data("/m", b"v", 1),
        Txn::Check(CheckVersionTxn {
            path: "/m".into(),
            version: 1,
        }),
        delete("/m/c"),
    ]);
    let r = run(&mut t, 9, S1, m);
    assert_eq!(r.err, 0);
    assert_eq!(r.results.len(), 5);
    assert_eq!(
        r.results[0].to_multi_result(op::CREATE),
        MultiResult::Create("/m".into())
    );
    assert!(
        matches!(r.results[1].to_multi_result(op::CREATE2), MultiResult::Create2(p, s) if p == "/m/c" && s.czxid == 9)
    );
    assert!(matches!(&r.results[2], OpResult::Stat(s) if s.version == 1 && s.mzxid == 9));
    assert_eq!(r.results[3].to_multi_result(op::CHECK), MultiResult::Check);
    assert_eq!(
        r.results[4].to_multi_result(op::DELETE),
        MultiResult::Delete
    );
    assert_eq!(
        trig(&r),
        vec![
            ("/m", ev::NODE_CREATED),
            ("/", ev::NODE_CHILDREN_CHANGED),
            ("/m/c", ev::NODE_CREATED),
            ("/m", ev::NODE_CHILDREN_CHANGED),
            ("/m", ev::NODE_DATA_CHANGED),
            ("/m/c", ev::NODE_DELETED),
            ("/m", ev::NODE_CHILDREN_CHANGED),
        ]
    );
    let m = t.get("/m").unwrap();
    assert_eq!(
        (m.czxid(), m.mzxid(), m.pzxid(), m.stat().cversion),
        (9, 9, 9, 2)
    );
    assert_eq!(t.last_processed_zxid(), 9);
}

#[test]
fn failed_multi_applies_nothing() {
    let mut t = DataTree::new();
    let before = dump(&t);
    let m = Txn::Multi(vec![
        create("/m", b"", false, 1),
        Txn::Error(ErrorTxn {
            err: ErrorCode::NoNode.code(),
        }),
        Txn::Error(ErrorTxn {
            err: ErrorCode::RuntimeInconsistency.code(),
        }),
        set_data("/zookeeper", b"x", 1),
    ]);
    let r = run(&mut t, 3, S1, m);
    assert_eq!(r.err, ErrorCode::NoNode.code());
    assert_eq!(
        r.results,
        vec![
            OpResult::Error(0),
            OpResult::Error(-101),
            OpResult::Error(-2),
            OpResult::Error(-2)
        ]
    );
    assert!(r.triggers.is_empty());
    assert_eq!(t.last_processed_zxid(), 3);
    assert_eq!(dump(&t)[1..], before[1..]);
}

#[test]
fn replaying_a_txn_twice_gives_the_same_tree() {
    let txns = [
        create("/a", b"1", false, 1),
        create("/a/b", b"2", true, 1),
        set_data("/a", b"3", 1),
        Txn::SetAcl(SetAclTxn {
            path: "/a".into(),
            acl: Acl::read_only(),
            version: 1,
        }),
        delete("/a/b"),
        Txn::CloseSession(CloseSessionTxn {
            paths_to_delete: vec!["/a/b".into()],
        }),
        Txn::Multi(vec![create("/m", b"", false, 2), set_data("/m", b"x", 1)]),
    ];
    let mut t = DataTree::new();
    for (i, txn) in txns.into_iter().enumerate() {
        let z = i as i64 + 1;
        let first = run(&mut t, z, S1, txn.clone());
        let once = dump(&t);
        let again = run(&mut t, z, S1, txn);
        assert_eq!(dump(&t), once, "txn {z}");
        assert!(again.results.len() == first.results.len());
    }
    assert_eq!(
        run(&mut t, 8, S1, create("/a", b"", false, 1)).err,
        ErrorCode::NodeExists.code()
    );
}

#[test]
fn create_over_existing_node_raises_parent_and_replaces_acl() {
    // ZOOKEEPER-3145's window: the fuzzy snapshot already holds /e re-created by S2.
    let mut t = DataTree::new();
    run(&mut t, 1, S2, create("/e", b"", true, 7));
    let acl = vec![Acl::new(perms::READ | perms::WRITE, "world", "anyone")];
    let txn = Txn::Create(CreateTxn {
        path: "/e".into(),
        data: None,
        acl: acl.clone(),
        ephemeral: true,
        parent_cversion: 9,
    });
    let r = run(&mut t, 5, S1, txn);
    assert_eq!(r.err, ErrorCode::NodeExists.code());
    assert!(r.triggers.is_empty());
    let root = t.get("/").unwrap();
    assert_eq!((root.cversion(), root.pzxid()), (9, 5));
    let e = t.get("/e").unwrap();
    assert_eq!((e.acl(), e.ephemeral_session()), (&acl[..], Some(S2)));
    assert_eq!(t.acl_cache_size(), 3);
    // A smaller parentCVersion leaves the parent alone.
    run(&mut t, 6, S1, create("/e", b"", false, 3));
    assert_eq!(t.get("/").unwrap().cversion(), 9);
    assert_eq!(t.get("/").unwrap().pzxid(), 5);
    // So does a smaller parentCVersion on a successful create, which still links the child.
    run(&mut t, 7, S1, create("/f", b"", false, 2));
    let root = t.get("/").unwrap();
    assert_eq!(
        (root.cversion(), root.pzxid(), root.child_count()),
        (9, 5, 3)
    );
}

#[test]
fn delete_of_non_empty_node_during_replay_removes_the_subtree() {
    let mut t = DataTree::new();
    run(&mut t, 1, S1, create("/d", b"", false, 1));
    run(&mut t, 2, S1, create("/d/c", b"", true, 1));
    let r = run(&mut t, 3, S1, delete("/d"));
    assert_eq!(r.err, 0);
    assert_eq!(
        trig(&r),
        vec![
            ("/d/c", ev::NODE_DELETED),
            ("/d", ev::NODE_DELETED),
            ("/", ev::NODE_CHILDREN_CHANGED)
        ]
    );
    assert_eq!(
        (
            t.node_count(),
            t.ephemeral_count(),
            t.approximate_data_size()
        ),
        (4, 0, 44)
    );
}

#[test]
fn counts_preorder_and_load_node() {
    let mut t = DataTree::new();
    for (z, p) in [(1, "/a"), (2, "/a/b"), (3, "/a/b/c"), (4, "/a/d")] {
        run(&mut t, z, S1, create(p, b"", false, -1));
    }
    assert_eq!(t.count_descendants("/a"), 3);
    assert_eq!(t.count_descendants("/"), 7);
    assert_eq!(t.child_count("/a"), Some(2));
    let mut order = Vec::new();
    t.visit_preorder(|p, _| order.push(p.to_owned()));
    assert_eq!(
        order,
        [
            "/",
            "/a",
            "/a/b",
            "/a/b/c",
            "/a/d",
            "/zookeeper",
            "/zookeeper/config",
            "/zookeeper/quota"
        ]
    );

    // Rebuilding from the pre-order walk reproduces the tree.
    let mut copy = DataTree::new();
    t.visit_preorder(|p, n| {
        copy.load_node(p, n.data().clone(), n.acl(), *n.persisted())
            .unwrap()
    });
    copy.set_last_processed_zxid(t.last_processed_zxid());
    assert_eq!(dump(&copy), dump(&t));
    assert_eq!(
        copy.load_node("/x/y", None, &Acl::open(), StatPersisted::default()),
        Err(ErrorCode::NoNode)
    );
    assert_eq!(copy.acl_cache_size(), 2);
}
