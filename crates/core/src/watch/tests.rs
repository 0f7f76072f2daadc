#![allow(clippy::unwrap_used)]

use super::*;
use oxkeeper_proto::codes::event_type::*;
use oxkeeper_proto::codes::watcher_type as wt;
use oxkeeper_proto::txn::{CreateTxn, SetDataTxn};
use oxkeeper_proto::{Acl, Txn, TxnHeader};

const A: ConnId = ConnId(1);
const B: ConnId = ConnId(2);
const C: ConnId = ConnId(3);

fn fire(w: &mut WatchManager, path: &str, ev: i32) -> Vec<ConnId> {
    w.trigger(path, ev)
}

#[test]
fn one_notification_per_connection_and_standard_is_consumed() {
    let mut w = WatchManager::new();
    // exists and getData on the same path: one registration, one event.
    w.add_data_watch(A, "/p");
    w.add_data_watch(A, "/p");
    w.add_watch(A, "/p", add_watch_mode::PERSISTENT);
    w.add_watch(A, "/", add_watch_mode::PERSISTENT_RECURSIVE);
    w.add_data_watch(B, "/p");
    assert_eq!(fire(&mut w, "/p", NODE_DATA_CHANGED), vec![A, B]);
    // A's STANDARD went, its PERSISTENT stayed; B had only a STANDARD.
    assert!(!w.check_watches(A, "/p", wt::DATA));
    assert!(w.check_watches(A, "/p", wt::PERSISTENT));
    assert!(!w.check_watches(B, "/p", wt::ANY));
    assert_eq!(fire(&mut w, "/p", NODE_DATA_CHANGED), vec![A]);
    assert_eq!(fire(&mut w, "/other", NODE_DATA_CHANGED), vec![A]);
}

#[test]
fn node_created_and_data_changed_use_the_data_table() {
    let mut w = WatchManager::new();
    w.add_data_watch(A, "/p"); // exists on a missing node
    w.add_child_watch(B, "/p");
    assert_eq!(fire(&mut w, "/p", NODE_CREATED), vec![A]);
    assert!(w.check_watches(B, "/p", wt::CHILDREN));
    w.add_data_watch(A, "/p");
    assert_eq!(fire(&mut w, "/p", NODE_CHILDREN_CHANGED), vec![B]);
    assert!(w.check_watches(A, "/p", wt::DATA));
    assert_eq!(fire(&mut w, "/p", NODE_DATA_CHANGED), vec![A]);
    assert_eq!(w.watch_count(), 0);
    assert!(fire(&mut w, "/p", NONE).is_empty());
}

#[test]
fn delete_notifies_a_connection_once_and_consumes_both_tables() {
    let mut w = WatchManager::new();
    w.add_data_watch(A, "/p");
    w.add_child_watch(A, "/p");
    w.add_child_watch(B, "/p");
    w.add_child_watch(C, "/");
    assert_eq!(fire(&mut w, "/p", NODE_DELETED), vec![A, B]);
    assert!(!w.check_watches(A, "/p", wt::ANY));
    assert!(!w.check_watches(B, "/p", wt::ANY));
    assert_eq!(fire(&mut w, "/", NODE_CHILDREN_CHANGED), vec![C]);
    assert_eq!(w.watch_count(), 0);
}

#[test]
fn persistent_watch_sees_its_node_and_children_but_not_deeper() {
    let mut w = WatchManager::new();
    w.add_watch(A, "/p", add_watch_mode::PERSISTENT);
    assert_eq!(w.watch_count(), 2);
    assert_eq!(fire(&mut w, "/p", NODE_CREATED), vec![A]);
    assert_eq!(fire(&mut w, "/p", NODE_CHILDREN_CHANGED), vec![A]);
    assert!(fire(&mut w, "/p/c", NODE_CREATED).is_empty());
    assert!(fire(&mut w, "/p/c", NODE_DATA_CHANGED).is_empty());
    assert!(fire(&mut w, "/p/c", NODE_CHILDREN_CHANGED).is_empty());
    assert_eq!(fire(&mut w, "/p", NODE_DELETED), vec![A]);
    // Kept after the delete, and fires again on re-creation.
    assert!(w.check_watches(A, "/p", wt::PERSISTENT));
    assert_eq!(fire(&mut w, "/p", NODE_CREATED), vec![A]);
    assert_eq!(w.watch_count(), 2);
}

#[test]
fn recursive_watch_covers_descendants_but_never_children_changed() {
    let mut w = WatchManager::new();
    w.add_watch(A, "/p", add_watch_mode::PERSISTENT_RECURSIVE);
    w.add_watch(B, "/", add_watch_mode::PERSISTENT_RECURSIVE);
    assert_eq!(w.watch_count(), 2);
    assert_eq!(fire(&mut w, "/p", NODE_CREATED), vec![A, B]);
    assert_eq!(fire(&mut w, "/p/c/d", NODE_CREATED), vec![A, B]);
    assert_eq!(fire(&mut w, "/p/c", NODE_DATA_CHANGED), vec![A, B]);
    assert_eq!(fire(&mut w, "/p/c", NODE_DELETED), vec![A, B]);
    assert_eq!(fire(&mut w, "/q", NODE_CREATED), vec![B]);
    assert_eq!(fire(&mut w, "/pq", NODE_CREATED), vec![B]);
    assert!(fire(&mut w, "/p", NODE_CHILDREN_CHANGED).is_empty());
    assert!(fire(&mut w, "/", NODE_CHILDREN_CHANGED).is_empty());
    // A standard watch on the same path as a recursive one: one event, STANDARD consumed.
    w.add_data_watch(A, "/p/x");
    assert_eq!(fire(&mut w, "/p/x", NODE_DATA_CHANGED), vec![A, B]);
    assert!(!w.check_watches(A, "/p/x", wt::DATA));
    assert_eq!(w.data.recursive, 2);
    w.remove_connection(B);
    w.remove_watches(A, "/p", wt::PERSISTENT_RECURSIVE);
    assert_eq!((w.data.recursive, w.watch_count()), (0, 0));
}

#[test]
fn check_and_remove_match_per_type() {
    let mut w = WatchManager::new();
    w.add_data_watch(A, "/p");
    w.add_child_watch(A, "/p");
    w.add_watch(A, "/p", add_watch_mode::PERSISTENT);
    w.add_watch(A, "/p", add_watch_mode::PERSISTENT_RECURSIVE);
    for t in [
        wt::CHILDREN,
        wt::DATA,
        wt::ANY,
        wt::PERSISTENT,
        wt::PERSISTENT_RECURSIVE,
    ] {
        assert!(w.check_watches(A, "/p", t), "{t}");
        assert!(!w.check_watches(B, "/p", t), "{t}");
        assert!(!w.check_watches(A, "/q", t), "{t}");
    }
    assert!(!w.check_watches(A, "/p", 0) && !w.check_watches(A, "/p", 6));
    assert!(!w.remove_watches(A, "/p", 9));

    assert!(w.remove_watches(A, "/p", wt::CHILDREN));
    assert!(!w.remove_watches(A, "/p", wt::CHILDREN));
    assert!(w.check_watches(A, "/p", wt::PERSISTENT)); // child-table PERSISTENT untouched
    assert!(w.remove_watches(A, "/p", wt::DATA));
    assert!(!w.check_watches(A, "/p", wt::DATA));
    assert!(w.remove_watches(A, "/p", wt::PERSISTENT));
    assert!(!w.check_watches(A, "/p", wt::PERSISTENT));
    assert!(w.check_watches(A, "/p", wt::ANY)); // recursive left
    assert_eq!(fire(&mut w, "/p", NODE_CHILDREN_CHANGED), vec![]);
    assert!(w.remove_watches(A, "/p", wt::PERSISTENT_RECURSIVE));
    assert!(!w.check_watches(A, "/p", wt::ANY));
    assert!(!w.remove_watches(A, "/p", wt::ANY));
    assert_eq!(w.watch_count(), 0);

    // ANY removes everything this connection has on the path, in both tables, and only that.
    w.add_data_watch(A, "/p");
    w.add_child_watch(A, "/p");
    w.add_watch(A, "/p", add_watch_mode::PERSISTENT_RECURSIVE);
    w.add_data_watch(B, "/p");
    assert!(w.remove_watches(A, "/p", wt::ANY));
    assert_eq!((w.watch_count(), w.data.recursive), (1, 0));
    assert!(w.check_watches(B, "/p", wt::DATA));
}

#[test]
fn remove_connection_forgets_everything() {
    let mut w = WatchManager::new();
    w.add_data_watch(A, "/p");
    w.add_child_watch(A, "/q");
    w.add_watch(A, "/r", add_watch_mode::PERSISTENT);
    w.add_watch(A, "/s", add_watch_mode::PERSISTENT_RECURSIVE);
    w.add_data_watch(B, "/p");
    w.remove_connection(A);
    w.remove_connection(C);
    assert_eq!(w.watch_count(), 1);
    assert_eq!(w.data.recursive, 0);
    assert_eq!(fire(&mut w, "/s/x", NODE_CREATED), vec![]);
    assert_eq!(fire(&mut w, "/p", NODE_DELETED), vec![B]);
    assert_eq!(w.watch_count(), 0);
    assert!(w.data.by_path.is_empty() && w.data.by_conn.is_empty());
    assert!(w.child.by_path.is_empty() && w.child.by_conn.is_empty());
}

#[test]
fn counts_and_dumps_follow_zookeeper() {
    let mut w = WatchManager::new();
    w.add_data_watch(A, "/p");
    w.add_data_watch(B, "/p");
    w.add_data_watch(A, "/q");
    w.add_child_watch(C, "/p"); // child table only: invisible to the dumps
    w.add_watch(B, "/r", add_watch_mode::PERSISTENT); // both tables
    assert_eq!(w.watch_count(), 6);
    assert_eq!(
        w.summary(),
        WatchSummary {
            connections: 2,
            paths: 3,
            watches: 4
        }
    );
    let by_conn = w.by_connection();
    assert_eq!(by_conn.len(), 2);
    assert_eq!(by_conn[&A], vec!["/p", "/q"]);
    assert_eq!(by_conn[&B], vec!["/p", "/r"]);
    let by_path = w.by_path();
    assert_eq!(by_path.keys().collect::<Vec<_>>(), vec!["/p", "/q", "/r"]);
    assert_eq!(by_path["/p"], vec![A, B]);
}

fn tree_with(paths: &[(&str, i64)]) -> DataTree {
    let mut t = DataTree::new();
    for &(p, zxid) in paths {
        let txn = Txn::Create(CreateTxn {
            path: p.into(),
            data: None,
            acl: Acl::open(),
            ephemeral: false,
            parent_cversion: -1,
        });
        let h = TxnHeader {
            client_id: 1,
            cxid: 0,
            zxid,
            time: 0,
            txn_type: txn.txn_type(),
        };
        assert_eq!(t.apply(&h, &txn).err, 0);
    }
    t
}

#[test]
fn set_watches_fires_what_changed_and_registers_the_rest() {
    let mut t = tree_with(&[
        ("/old", 5),
        ("/new", 20),
        ("/par", 6),
        ("/par/kid", 30),
        ("/calm", 7),
    ]);
    let txn = Txn::SetData(SetDataTxn {
        path: "/calm".into(),
        data: None,
        version: 1,
    });
    // A change at zxid 8 is before relative_zxid 10 and must not fire.
    t.apply(
        &TxnHeader {
            client_id: 1,
            cxid: 0,
            zxid: 8,
            time: 0,
            txn_type: txn.txn_type(),
        },
        &txn,
    );
    let req = SetWatches2 {
        relative_zxid: 10,
        data_watches: vec!["/gone".into(), "/new".into(), "/old".into(), "/calm".into()],
        exist_watches: vec!["/old".into(), "/absent".into()],
        child_watches: vec!["/gone".into(), "/par".into(), "/old".into()],
        persistent_watches: vec!["/gone".into()],
        persistent_recursive_watches: vec!["/tree".into()],
    };
    let mut w = WatchManager::new();
    let events = w.set_watches(A, &req, &t);
    assert_eq!(
        events,
        vec![
            (NODE_DELETED, "/gone".to_owned()),
            (NODE_DATA_CHANGED, "/new".to_owned()),
            (NODE_CREATED, "/old".to_owned()),
            (NODE_DELETED, "/gone".to_owned()),
            (NODE_CHILDREN_CHANGED, "/par".to_owned()),
        ]
    );
    for (p, t) in [
        ("/old", wt::DATA),
        ("/calm", wt::DATA),
        ("/absent", wt::DATA),
        ("/old", wt::CHILDREN),
    ] {
        assert!(w.check_watches(A, p, t), "{p} {t}");
    }
    assert!(!w.check_watches(A, "/new", wt::ANY));
    assert!(!w.check_watches(A, "/par", wt::ANY));
    assert!(w.check_watches(A, "/gone", wt::PERSISTENT));
    assert!(!w.check_watches(A, "/gone", wt::DATA));
    assert!(w.check_watches(A, "/tree", wt::PERSISTENT_RECURSIVE));
    // /gone: PERSISTENT in both tables; /old: data + child; /calm, /absent: data; /tree.
    assert_eq!(w.watch_count(), 7);
    assert_eq!(fire(&mut w, "/tree/x", NODE_CREATED), vec![A]);
}
