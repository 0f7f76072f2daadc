//! Property: whatever the transactions, a snapshot taken somewhere in the middle —
//! exact or fuzzy — plus the whole log recovers exactly the live tree and session table.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use oxkeeper_storage::log::{LogOptions, TxnLog};
use oxkeeper_storage::{recover, serialize_snapshot, write_snapshot, DigestCheck, RecoverOptions};
use proptest::prelude::*;

/// Runs `steps` through a live tree while logging them; at step `snap_at` notes the
/// snapshot zxid and session table, and serializes the tree `fuzz` steps later under
/// that name (0: an exact snapshot). Returns the live state and what recovery gave.
fn run(steps: &[(u8, u32)], snap_at: usize, fuzz: usize, sync_every: usize) {
    let d = tempfile::tempdir().unwrap();
    recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    let mut log = TxnLog::open(d.path(), LogOptions::default().with_prealloc_kib(8)).unwrap();
    let mut p = Prep::default();
    let mut named = None;
    let mut written = false;
    for (i, &(c, r)) in steps.iter().enumerate() {
        let (h, t) = p.step(c, r);
        log.append(&h, &t).unwrap();
        if i % sync_every == 0 {
            log.sync().unwrap();
        }
        if i == snap_at {
            // ZooKeeper rolls the log when it starts a snapshot.
            log.roll();
            named = Some((p.tree.last_processed_zxid(), p.session_table()));
        }
        if !written && i == snap_at + fuzz {
            if let Some((zxid, sessions)) = &named {
                let bytes = serialize_snapshot(&p.tree, sessions);
                write_snapshot(d.path(), *zxid, &bytes).unwrap();
                written = true;
            }
        }
    }
    if !written {
        if let Some((zxid, sessions)) = &named {
            write_snapshot(d.path(), *zxid, &serialize_snapshot(&p.tree, sessions)).unwrap();
        }
    }
    log.close().unwrap();

    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_same_tree(&r.tree, &p.tree);
    assert_eq!(r.sessions, p.session_table());
    assert_eq!(r.last_zxid, p.tree.last_processed_zxid());
    assert!(r.dead_sessions.is_empty());
    assert!(
        !matches!(r.digest, DigestCheck::Mismatched { .. }),
        "{:?}",
        r.digest
    );
    if let Some((zxid, _)) = named {
        assert_eq!(r.snapshot_zxid, zxid);
        if zxid > 0 && (fuzz == 0 || snap_at + 1 < steps.len()) {
            assert_eq!(r.digest, DigestCheck::Matched);
        }
    }
}

fn steps() -> impl Strategy<Value = Vec<(u8, u32)>> {
    proptest::collection::vec((any::<u8>(), any::<u32>()), 1..160)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn exact_snapshot_plus_log_recovers_the_live_tree(s in steps(), at in any::<prop::sample::Index>(), sync in 1usize..9) {
        let k = at.index(s.len());
        run(&s, k, 0, sync);
    }

    #[test]
    fn fuzzy_snapshot_plus_log_recovers_the_live_tree(s in steps(), at in any::<prop::sample::Index>(), fuzz in 1usize..40, sync in 1usize..9) {
        let k = at.index(s.len());
        run(&s, k, fuzz, sync);
    }
}

#[test]
fn log_only_recovery_and_restart_continuation() {
    // Recover, append more in a new file, recover again: zxids continue, nothing lost.
    let d = tempfile::tempdir().unwrap();
    let mut p = Prep::default();
    for round in 0..3u32 {
        let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
        assert_same_tree(&r.tree, &p.tree);
        assert_eq!(r.last_zxid, p.next_zxid - 1);
        let mut log = TxnLog::open(d.path(), LogOptions::default().with_prealloc_kib(8)).unwrap();
        for i in 0..50u32 {
            let (h, t) = p.step((i * 7 + round) as u8, i.wrapping_mul(2_654_435_761) ^ round);
            log.append(&h, &t).unwrap();
        }
        log.close().unwrap();
    }
    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_same_tree(&r.tree, &p.tree);
    assert_eq!(r.txns_replayed, 150);
    assert_eq!(r.sessions, p.session_table());
}
