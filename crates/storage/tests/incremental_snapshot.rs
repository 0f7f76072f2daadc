//! `SnapshotBuilder`: a snapshot walked in slices while transactions continue.
//!
//! - On a tree that does not move, any slicing gives the bytes of the one-shot
//!   serializer as it was before the builder existed (kept below as the reference).
//! - Property: a snapshot started at a random point, stepped in random small slices
//!   between random further transactions, plus the whole log, recovers the live tree.
//! - The walk's own rules: no node twice, vanished subtrees skipped, ACL lists that
//!   appeared during the walk in the map, the digest trailer of a moved tree empty.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use common::*;
use oxkeeper_core::tree::DataTree;
use oxkeeper_proto::txn::{DeleteTxn, SetAclTxn};
use oxkeeper_proto::{Acl, Txn};
use oxkeeper_storage::digest::{node_digest, TreeDigest, DIGEST_VERSION};
use oxkeeper_storage::log::{LogOptions, TxnLog};
use oxkeeper_storage::snapshot::{load_snapshot_full, parse_snapshot, SnapshotMeta};
use oxkeeper_storage::{
    recover, serialize_snapshot, write_snapshot, DigestCheck, RecoverOptions, SnapshotBuilder,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// The one-shot serializer as it was before `SnapshotBuilder` (crates/storage/src/
// snapshot/write.rs at commit 24f76f4), kept verbatim as the byte-for-byte reference.

struct Out {
    buf: Vec<u8>,
    adler: adler2::Adler32,
    hashed: usize,
}

impl Out {
    fn i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.i32(-1),
            Some(b) => {
                self.i32(b.len() as i32);
                self.buf.extend_from_slice(b);
            }
        }
    }
    fn string(&mut self, s: &str) {
        self.bytes(Some(s.as_bytes()));
    }
    fn acl(&mut self, a: &Acl) {
        self.i32(a.perms);
        self.string(&a.id.scheme);
        self.string(&a.id.id);
    }
    fn seal(&mut self) {
        self.adler.write_slice(&self.buf[self.hashed..]);
        self.hashed = self.buf.len();
        let sum = i64::from(self.adler.checksum());
        self.i64(sum);
        self.string("/");
    }
}

fn reference_serialize(tree: &DataTree, sessions: &[(i64, i32)]) -> Vec<u8> {
    let open = Acl::open();
    let mut ids: HashMap<*const Acl, i64> = HashMap::new();
    let mut lists: Vec<(i64, Arc<[Acl]>)> = Vec::new();
    tree.visit_preorder(|_, node| {
        let acl = node.acl_arc();
        if **acl == *open {
            return;
        }
        let key = Arc::as_ptr(acl) as *const Acl;
        if let std::collections::hash_map::Entry::Vacant(v) = ids.entry(key) {
            let id = lists.len() as i64 + 1;
            v.insert(id);
            lists.push((id, Arc::clone(acl)));
        }
    });

    let mut out = Out {
        buf: Vec::with_capacity(64 * 1024),
        adler: adler2::Adler32::new(),
        hashed: 0,
    };
    out.i32(0x5A4B_534E);
    out.i32(2);
    out.i64(-1);

    let mut sess = sessions.to_vec();
    sess.sort_unstable();
    out.i32(sess.len() as i32);
    for (id, timeout) in sess {
        out.i64(id);
        out.i32(timeout);
    }

    out.i32(lists.len() as i32);
    for (id, list) in &lists {
        out.i64(*id);
        out.i32(list.len() as i32);
        for a in list.iter() {
            out.acl(a);
        }
    }

    let mut digest = TreeDigest::default();
    tree.visit_preorder(|path, node| {
        let acl = node.acl_arc();
        let acl_id = if **acl == *open {
            -1
        } else {
            ids.get(&(Arc::as_ptr(acl) as *const Acl))
                .copied()
                .unwrap_or(-1)
        };
        let data = node.data().as_deref();
        let stat = node.persisted();
        digest.add(node_digest(path, data, stat));
        out.string(if path == "/" { "" } else { path });
        out.bytes(data);
        out.i64(acl_id);
        out.i64(stat.czxid);
        out.i64(stat.mzxid);
        out.i64(stat.ctime);
        out.i64(stat.mtime);
        out.i32(stat.version);
        out.i32(stat.cversion);
        out.i32(stat.aversion);
        out.i64(stat.ephemeral_owner);
        out.i64(stat.pzxid);
    });
    out.string("/");
    out.seal();

    let zxid = tree.last_processed_zxid();
    out.i64(zxid);
    out.i32(DIGEST_VERSION);
    out.i64(digest.0);
    out.seal();

    out.i64(zxid);
    out.seal();
    out.buf
}

// ---------------------------------------------------------------------------

/// The paths of a snapshot's nodes in file order, checking on the way that each
/// parent came before its child.
fn parsed_paths(bytes: &[u8]) -> (Vec<String>, SnapshotMeta) {
    let mut paths: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let meta = parse_snapshot(bytes, Path::new("snapshot.1"), |n| {
        let p = if n.path.is_empty() { "/" } else { n.path };
        if p != "/" {
            let parent = match p.rfind('/') {
                Some(0) => "/",
                Some(i) => &p[..i],
                None => return Err(format!("bad path {p:?}")),
            };
            if !seen.contains(parent) {
                return Err(format!("{p} before its parent"));
            }
        }
        if !seen.insert(p.to_owned()) {
            return Err(format!("{p} twice"));
        }
        paths.push(p.to_owned());
        Ok(())
    })
    .unwrap();
    (paths, meta)
}

fn built_in_slices(tree: &DataTree, sessions: &[(i64, i32)], sizes: &[usize]) -> Vec<u8> {
    let mut b = SnapshotBuilder::start(tree, sessions);
    let mut i = 0;
    while !b.step(tree, sizes[i % sizes.len()]) {
        i += 1;
        assert!(i < 1_000_000, "the walk does not end");
    }
    assert_eq!(b.zxid(), tree.last_processed_zxid());
    assert_eq!(b.nodes_written(), tree.node_count());
    b.finish()
}

/// Runs `steps` through a live tree while logging them. After step `start_at` a
/// builder starts; then each `(txns, size)` of `plan` (cycled) applies up to `txns`
/// further steps and calls `step` with `size`, until the walk ends; the remaining
/// steps follow. The snapshot plus the log must recover the live state.
fn run(steps: &[(u8, u32)], start_at: usize, plan: &[(u8, u8)]) {
    let d = tempfile::tempdir().unwrap();
    recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    let mut log = TxnLog::open(d.path(), LogOptions::default().with_prealloc_kib(8)).unwrap();
    let mut p = Prep::default();
    let mut next = 0;
    let apply = |p: &mut Prep, log: &mut TxnLog, next: &mut usize| {
        let (c, r) = steps[*next];
        let (h, t) = p.step(c, r);
        log.append(&h, &t).unwrap();
        *next += 1;
    };
    while next <= start_at {
        apply(&mut p, &mut log, &mut next);
    }
    // ZooKeeper rolls the log when it starts a snapshot.
    log.roll();
    log.sync().unwrap();
    let mut b = SnapshotBuilder::start(&p.tree, &p.session_table());
    let start_zxid = p.tree.last_processed_zxid();
    assert_eq!(b.zxid(), start_zxid);
    let mut applied_during = 0;
    let mut zxid_at_last_step;
    let mut i = 0;
    loop {
        let (txns, size) = plan[i % plan.len()];
        i += 1;
        for _ in 0..txns {
            if next < steps.len() {
                apply(&mut p, &mut log, &mut next);
                // Those before the walk's first node only move its end.
                if b.nodes_written() > 0 {
                    applied_during += 1;
                }
            }
        }
        zxid_at_last_step = p.tree.last_processed_zxid();
        // Sizes from 1; a zero-sized step now and then must change nothing.
        if txns == 3 {
            assert!(!b.step(&p.tree, 0) || b.is_done());
        }
        if b.step(&p.tree, usize::from(size) + 1) {
            break;
        }
        assert!(i < 100_000, "the walk does not end");
    }
    assert!(b.step(&p.tree, 5), "stays done");
    while next < steps.len() {
        apply(&mut p, &mut log, &mut next);
    }
    let bytes = b.finish();
    log.close().unwrap();

    let (paths, meta) = parsed_paths(&bytes);
    assert!(paths.len() >= 4, "the reserved nodes are always there");
    assert_eq!(meta.last_zxid, Some(zxid_at_last_step));
    let d_meta = meta.digest.unwrap();
    if applied_during > 0 {
        assert_eq!((d_meta.zxid, d_meta.digest), (0, 0), "fuzzy: empty digest");
    } else {
        // The walk saw one state, the tree at its last step's zxid.
        assert_eq!(d_meta.zxid, zxid_at_last_step);
        assert_eq!(d_meta.digest, meta.computed_digest);
    }
    write_snapshot(d.path(), start_zxid, &bytes).unwrap();

    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_eq!(r.snapshot_zxid, start_zxid);
    assert_same_tree(&r.tree, &p.tree);
    assert_eq!(r.sessions, p.session_table());
    assert_eq!(r.last_zxid, p.tree.last_processed_zxid());
    assert!(r.dead_sessions.is_empty());
    if applied_during > 0 || zxid_at_last_step == 0 {
        assert_eq!(r.digest, DigestCheck::NotChecked);
    } else {
        assert_eq!(r.digest, DigestCheck::Matched);
    }
}

fn steps() -> impl Strategy<Value = Vec<(u8, u32)>> {
    proptest::collection::vec((any::<u8>(), any::<u32>()), 1..200)
}

/// Like [`steps`], with one step in three a create (`Prep` choices 8 to 11), for trees
/// big and deep enough that the walk spans many slices.
fn growing_steps() -> impl Strategy<Value = Vec<(u8, u32)>> {
    let choice = prop_oneof![2 => any::<u8>(), 1 => 8u8..12];
    proptest::collection::vec((choice, any::<u32>()), 1..250)
}

fn plan() -> impl Strategy<Value = Vec<(u8, u8)>> {
    proptest::collection::vec((0u8..4, 0u8..5), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_snapshot_plus_log_recovers_the_live_tree(
        s in growing_steps(),
        at in any::<prop::sample::Index>(),
        plan in plan(),
    ) {
        // Start in the first half mostly, so that transactions remain for the walk.
        let k = at.index(s.len().div_ceil(2).max(1)).min(s.len() - 1);
        run(&s, k, &plan);
    }

    #[test]
    fn unmoving_tree_gives_the_old_bytes_whatever_the_slices(
        s in steps(),
        sizes in proptest::collection::vec(0usize..7, 1..6),
    ) {
        let mut p = Prep::default();
        for &(c, r) in &s {
            p.step(c, r);
        }
        let sessions = p.session_table();
        let want = reference_serialize(&p.tree, &sessions);
        prop_assert_eq!(&serialize_snapshot(&p.tree, &sessions), &want);
        let mut sizes = sizes;
        sizes.push(1);
        prop_assert_eq!(&built_in_slices(&p.tree, &sessions, &sizes), &want);
    }
}

#[test]
fn one_big_step_is_the_old_serializer() {
    for tree in [DataTree::new(), {
        let mut p = Prep::default();
        for i in 0..300u32 {
            let r = i.wrapping_mul(2_654_435_761).rotate_left(5);
            p.step((r >> 9) as u8, r);
        }
        p.tree
    }] {
        let sessions = [(5, 4000), (2, 30_000)];
        let want = reference_serialize(&tree, &sessions);
        let mut b = SnapshotBuilder::start(&tree, &sessions);
        assert!(b.step(&tree, usize::MAX));
        assert_eq!(b.finish(), want);
        assert_eq!(built_in_slices(&tree, &sessions, &[1]), want);
    }
}

/// A tree of `/a/x0..x9`, `/b/y0..y9`, `/c`, applied through `Prep`'s helpers.
fn small_tree() -> (DataTree, i64) {
    let mut t = DataTree::new();
    let mut z = 0;
    let mut apply = |t: &mut DataTree, txn: Txn| {
        z += 1;
        t.apply(&hdr(z, 1, &txn), &txn);
    };
    for top in ["a", "b", "c"] {
        apply(&mut t, create(&format!("/{top}"), b"top", false, -1));
    }
    for i in 0..10 {
        apply(&mut t, create(&format!("/a/x{i}"), b"x", false, -1));
        apply(&mut t, create(&format!("/b/y{i}"), b"y", false, -1));
    }
    let zxid = t.last_processed_zxid();
    (t, zxid)
}

fn apply_next(t: &mut DataTree, txn: Txn) {
    let z = t.last_processed_zxid() + 1;
    t.apply(&hdr(z, 1, &txn), &txn);
}

#[test]
fn walk_survives_deletes_and_creates_around_its_position() {
    let (mut t, zxid) = small_tree();
    let mut b = SnapshotBuilder::start(&t, &[]);
    // "/", "/a", "/a/x0", "/a/x1".
    assert!(!b.step(&t, 4));
    // The node being walked loses children on both sides of the position, gains a
    // child behind it (missed) and ahead of it (taken); /b goes away entirely.
    apply_next(
        &mut t,
        Txn::Delete(DeleteTxn {
            path: "/a/x1".into(),
        }),
    );
    apply_next(
        &mut t,
        Txn::Delete(DeleteTxn {
            path: "/a/x2".into(),
        }),
    );
    apply_next(&mut t, create("/a/x0a", b"new", false, -1));
    apply_next(&mut t, create("/a/x5a", b"new", false, -1));
    for i in 0..10 {
        apply_next(
            &mut t,
            Txn::Delete(DeleteTxn {
                path: format!("/b/y{i}"),
            }),
        );
    }
    apply_next(&mut t, Txn::Delete(DeleteTxn { path: "/b".into() }));
    assert!(!b.step(&t, 3));
    // And /c (not reached yet) gets a child.
    apply_next(&mut t, create("/c/new", b"new", false, -1));
    while !b.step(&t, 2) {}
    assert_eq!(b.zxid(), zxid);
    let bytes = b.finish();
    let (paths, meta) = parsed_paths(&bytes);
    let want: Vec<String> = [
        "/",
        "/a",
        "/a/x0",
        "/a/x1",
        "/a/x3",
        "/a/x4",
        "/a/x5",
        "/a/x5a",
        "/a/x6",
        "/a/x7",
        "/a/x8",
        "/a/x9",
        "/c",
        "/c/new",
        "/zookeeper",
        "/zookeeper/config",
        "/zookeeper/quota",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(paths, want);
    assert_eq!(meta.last_zxid, Some(t.last_processed_zxid()));
    assert_eq!(meta.digest.map(|d| (d.zxid, d.digest)), Some((0, 0)));
}

#[test]
fn vanished_parent_subtree_is_skipped_and_the_walk_goes_on() {
    let (mut t, _) = small_tree();
    let mut b = SnapshotBuilder::start(&t, &[]);
    // "/", "/a", "/a/x0": the walk stands inside /a.
    assert!(!b.step(&t, 3));
    for i in 0..10 {
        apply_next(
            &mut t,
            Txn::Delete(DeleteTxn {
                path: format!("/a/x{i}"),
            }),
        );
    }
    apply_next(&mut t, Txn::Delete(DeleteTxn { path: "/a".into() }));
    // Recreated with other children: the walk resumes by name inside the new /a.
    apply_next(&mut t, create("/a", b"again", false, -1));
    apply_next(&mut t, create("/a/w", b"", false, -1));
    apply_next(&mut t, create("/a/z", b"", false, -1));
    while !b.step(&t, 1) {}
    let (paths, _) = parsed_paths(&b.finish());
    assert_eq!(&paths[..5], ["/", "/a", "/a/x0", "/a/z", "/b"]);
    assert_eq!(paths.iter().filter(|p| p.starts_with("/b/")).count(), 10);
}

#[test]
fn acl_lists_born_during_the_walk_are_in_the_map() {
    let (mut t, _) = small_tree();
    let mut b = SnapshotBuilder::start(&t, &[(7, 5000)]);
    assert!(!b.step(&t, 2));
    // A list nobody used at start, on a node the walk has yet to reach.
    let fresh = vec![Acl::new(oxkeeper_proto::perms::READ, "ip", "10.0.0.1")];
    apply_next(
        &mut t,
        Txn::SetAcl(SetAclTxn {
            path: "/b/y3".into(),
            acl: fresh.clone(),
            version: 1,
        }),
    );
    // And one on a node already passed: not referenced by the file.
    apply_next(
        &mut t,
        Txn::SetAcl(SetAclTxn {
            path: "/a".into(),
            acl: digest_acl(),
            version: 1,
        }),
    );
    while !b.step(&t, 3) {}
    let bytes = b.finish();
    let (_, meta) = parsed_paths(&bytes);
    // The fresh list first, then /zookeeper/config's read-only one.
    assert_eq!(meta.acls.len(), 2);
    assert_eq!(meta.acls.get(&1), Some(&fresh));
    assert_eq!(meta.acls.get(&2), Some(&Acl::read_only()));
    assert_eq!(meta.sessions, vec![(7, 5000)]);
    let d = tempfile::tempdir().unwrap();
    let path = write_snapshot(d.path(), 9, &bytes).unwrap();
    let l = load_snapshot_full(&path).unwrap();
    assert_eq!(l.tree.get("/b/y3").unwrap().acl(), &fresh[..]);
    assert_eq!(l.tree.get("/a").unwrap().acl(), &Acl::open()[..]);
}

#[test]
fn a_list_reinterned_during_the_walk_keeps_its_id() {
    let (mut t, _) = small_tree();
    let acl = digest_acl();
    apply_next(
        &mut t,
        Txn::SetAcl(SetAclTxn {
            path: "/a/x0".into(),
            acl: acl.clone(),
            version: 1,
        }),
    );
    let mut b = SnapshotBuilder::start(&t, &[]);
    assert!(!b.step(&t, 4)); // through /a/x0, with the list.
                             // The only user drops it (the tree forgets the list), then another node takes it
                             // up again: a new allocation with the same content.
    apply_next(
        &mut t,
        Txn::SetAcl(SetAclTxn {
            path: "/a/x0".into(),
            acl: Acl::open(),
            version: 2,
        }),
    );
    apply_next(
        &mut t,
        Txn::SetAcl(SetAclTxn {
            path: "/b/y0".into(),
            acl: acl.clone(),
            version: 1,
        }),
    );
    while !b.step(&t, 4) {}
    let (_, meta) = parsed_paths(&b.finish());
    // The list once, and /zookeeper/config's read-only one.
    assert_eq!(meta.acls.len(), 2);
    assert_eq!(meta.acls.get(&1), Some(&acl));
}

#[test]
fn sessions_are_copied_at_start() {
    let (t, _) = small_tree();
    let mut sessions = vec![(3, 4000), (1, 9000)];
    let mut b = SnapshotBuilder::start(&t, &sessions);
    sessions.push((2, 1));
    while !b.step(&t, 7) {}
    let (_, meta) = parsed_paths(&b.finish());
    assert_eq!(meta.sessions, vec![(1, 9000), (3, 4000)]);
}

/// Transactions between `start` and the first step move the whole walk to a later
/// state, which it then images exactly: its digest is stored with that zxid, which
/// recovery checks when the replay reaches it (ZooKeeper's pair).
#[test]
fn a_tree_changed_only_before_the_walk_keeps_a_checked_digest() {
    let d = tempfile::tempdir().unwrap();
    recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    let mut log = TxnLog::open(d.path(), LogOptions::default().with_prealloc_kib(8)).unwrap();
    let mut p = Prep::default();
    let step = |p: &mut Prep, log: &mut TxnLog, i: u32| {
        let r = i.wrapping_mul(2_654_435_761).rotate_left(3);
        let (h, t) = p.step(8 + (r % 3) as u8, r);
        log.append(&h, &t).unwrap();
    };
    for i in 0..40 {
        step(&mut p, &mut log, i);
    }
    log.roll();
    let mut b = SnapshotBuilder::start(&p.tree, &p.session_table());
    let zs = b.zxid();
    for i in 40..45 {
        step(&mut p, &mut log, i);
    }
    let ze = p.tree.last_processed_zxid();
    assert!(!b.step(&p.tree, 0), "a zero step does not begin the walk");
    while !b.step(&p.tree, 3) {}
    for i in 45..60 {
        step(&mut p, &mut log, i);
    }
    log.close().unwrap();
    let bytes = b.finish();
    let (_, meta) = parsed_paths(&bytes);
    let dg = meta.digest.unwrap();
    assert_eq!((dg.zxid, dg.digest), (ze, meta.computed_digest));
    assert_eq!(meta.last_zxid, Some(ze));
    write_snapshot(d.path(), zs, &bytes).unwrap();
    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_eq!(r.snapshot_zxid, zs);
    assert_eq!(r.digest, DigestCheck::Matched);
    assert_same_tree(&r.tree, &p.tree);
}

#[test]
#[should_panic(expected = "before the walk ended")]
fn finish_refuses_a_partial_walk() {
    let (t, _) = small_tree();
    let mut b = SnapshotBuilder::start(&t, &[]);
    assert!(!b.step(&t, 3));
    let _ = b.finish();
}
