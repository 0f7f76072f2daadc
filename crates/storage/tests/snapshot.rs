//! Snapshots: round trips, validity checks and fallback, ACL numbering, directories,
//! purging and the inspection tool.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::Write;
use std::path::Path;

use common::*;
use oxkeeper_core::tree::DataTree;
use oxkeeper_storage::log::{LogOptions, TxnLog};
use oxkeeper_storage::snapshot::{self, is_valid_snapshot, load_snapshot_full, parse_snapshot};
use oxkeeper_storage::{inspect, Error, RecoverOptions};
use oxkeeper_storage::{load_snapshot, purge, recover, serialize_snapshot, write_snapshot};

/// A tree with a bit of everything, built through transactions.
fn busy_prep(steps: u32) -> Prep {
    let mut p = Prep::default();
    for i in 0..steps {
        let r = i.wrapping_mul(2_246_822_519).rotate_left(13) ^ i;
        p.step((r % 251) as u8, r);
    }
    p
}

#[test]
fn round_trip_equals_the_original_tree() {
    let p = busy_prep(400);
    assert!(p.tree.node_count() > 20);
    assert!(
        p.tree.ephemeral_count() > 0,
        "the test tree should hold ephemerals"
    );
    let d = tempfile::tempdir().unwrap();
    let zxid = p.tree.last_processed_zxid();
    let bytes = serialize_snapshot(&p.tree, &p.session_table());
    let path = write_snapshot(d.path(), zxid, &bytes).unwrap();
    assert_eq!(path, d.path().join(format!("version-2/snapshot.{zxid:x}")));
    assert!(is_valid_snapshot(&path));
    let loaded = load_snapshot_full(&path).unwrap();
    assert_same_tree(&loaded.tree, &p.tree);
    assert_eq!(loaded.sessions, p.session_table());
    assert_eq!(loaded.zxid, zxid);
    assert_eq!(loaded.meta.last_zxid, Some(zxid));
    let dg = loaded.meta.digest.unwrap();
    assert_eq!((dg.zxid, dg.digest), (zxid, loaded.meta.computed_digest));
    assert_eq!(dg.digest, oxkeeper_storage::digest::tree_digest(&p.tree));
    // Serializing the loaded tree gives the same bytes.
    assert_eq!(serialize_snapshot(&loaded.tree, &loaded.sessions), bytes);
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(d.path().join("version-2")).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn acl_ids_follow_first_use_and_open_is_minus_one() {
    let p = busy_prep(200);
    let bytes = serialize_snapshot(&p.tree, &[]);
    let mut ids = Vec::new();
    let meta = parse_snapshot(&bytes, Path::new("mem"), |n| {
        if n.acl == oxkeeper_proto::Acl::open().as_slice() {
            assert_eq!(n.acl_id, -1);
        } else {
            assert_eq!(meta_acl_check(n.acl_id, n.acl), ());
            if !ids.contains(&n.acl_id) {
                ids.push(n.acl_id);
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
    assert_eq!(meta.acls.len(), ids.len());
    assert_eq!(meta.acls.len(), p.tree.acl_cache_size() - 1);
}

fn meta_acl_check(id: i64, acl: &[oxkeeper_proto::Acl]) {
    assert!(id >= 1 && !acl.is_empty());
}

#[test]
fn validity_checks_and_seals() {
    let d = tempfile::tempdir().unwrap();
    let prep = busy_prep(50);
    let tree = prep.tree.clone();
    let sessions = prep.session_table();
    let bytes = serialize_snapshot(&tree, &sessions);
    let good = write_snapshot(d.path(), 0x20, &bytes).unwrap();

    // Truncated: fails the cheap check.
    let v = d.path().join("version-2");
    fs::write(v.join("snapshot.30"), &bytes[..bytes.len() / 2]).unwrap();
    assert!(!is_valid_snapshot(&v.join("snapshot.30")));
    // A flipped byte in a node: passes the cheap check, fails the seal.
    let mut bad = bytes.clone();
    bad[bytes.len() / 2] ^= 0x40;
    fs::write(v.join("snapshot.40"), &bad).unwrap();
    assert!(is_valid_snapshot(&v.join("snapshot.40")));
    let e = load_snapshot(&v.join("snapshot.40")).unwrap_err();
    assert!(matches!(e, Error::BadSnapshot { .. }), "{e}");
    // Wrong magic.
    let mut bad = bytes.clone();
    bad[0] = b'X';
    fs::write(v.join("snapshot.50"), &bad).unwrap();
    assert!(load_snapshot(&v.join("snapshot.50"))
        .unwrap_err()
        .to_string()
        .contains("magic"));
    // Tiny or unparsable names.
    fs::write(v.join("snapshot.60"), b"/").unwrap();
    assert!(!is_valid_snapshot(&v.join("snapshot.60")));
    fs::write(v.join("snapshot.zz"), &bytes).unwrap();
    assert!(!is_valid_snapshot(&v.join("snapshot.zz")));
    // Fallback to the newest that loads, with the others reported.
    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_eq!(r.snapshot.as_deref(), Some(good.as_path()));
    assert_eq!(r.last_zxid, 0x20);
    assert_eq!(r.sessions, sessions);
    assert_eq!(r.skipped_snapshots.len(), 2, "{:?}", r.skipped_snapshots);
    assert_same_tree(&r.tree, &{
        let mut t = tree.clone();
        t.set_last_processed_zxid(0x20);
        t
    });

    // Only corrupt candidates: refuse.
    fs::remove_file(&good).unwrap();
    let e = recover(d.path(), d.path(), RecoverOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::NoValidSnapshot { candidates: 2, .. }),
        "{e}"
    );
}

#[test]
fn corrupt_newest_snapshot_falls_back_and_replays_the_log() {
    let d = tempfile::tempdir().unwrap();
    recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    let mut p = Prep::default();
    let mut log = TxnLog::open(d.path(), LogOptions::default().with_prealloc_kib(4)).unwrap();
    let mut newest = None;
    for i in 0..300u32 {
        let (h, t) = p.step((i % 13) as u8, i.wrapping_mul(7919));
        log.append(&h, &t).unwrap();
        if i % 100 == 99 {
            log.sync().unwrap();
            log.roll();
            let z = p.tree.last_processed_zxid();
            newest = Some(
                write_snapshot(
                    d.path(),
                    z,
                    &serialize_snapshot(&p.tree, &p.session_table()),
                )
                .unwrap(),
            );
        }
    }
    log.close().unwrap();
    let newest = newest.unwrap();
    let mut b = fs::read(&newest).unwrap();
    let mid = b.len() / 3;
    b[mid] ^= 1;
    fs::write(&newest, b).unwrap();
    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_eq!(r.skipped_snapshots.len(), 1);
    assert_eq!(r.snapshot_zxid, 200);
    assert_eq!(r.txns_replayed, 100);
    assert_eq!(r.last_zxid, 300);
    assert_same_tree(&r.tree, &p.tree);
    assert_eq!(r.sessions, p.session_table());
}

#[test]
fn gzip_snapshots_are_read() {
    let d = tempfile::tempdir().unwrap();
    let p = busy_prep(100);
    let bytes = serialize_snapshot(&p.tree, &p.session_table());
    let v = d.path().join("version-2");
    fs::create_dir_all(&v).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let path = v.join("snapshot.64.gz");
    fs::write(&path, gz.finish().unwrap()).unwrap();
    assert!(is_valid_snapshot(&path));
    let (tree, sessions, zxid) = load_snapshot(&path).unwrap();
    assert_eq!(zxid, 100);
    assert_eq!(sessions, p.session_table());
    assert_same_tree(&tree, &p.tree);
}

#[test]
fn empty_dirs_give_a_fresh_tree_and_logs_without_snapshot_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_eq!(r.last_zxid, 0);
    assert!(r.sessions.is_empty());
    assert_same_tree(&r.tree, &DataTree::new());
    assert_eq!(
        r.created_snapshot,
        Some(d.path().join("version-2/snapshot.0"))
    );

    let d = tempfile::tempdir().unwrap();
    let mut log = TxnLog::open(d.path(), LogOptions::default().with_prealloc_kib(4)).unwrap();
    let t = create("/x", b"", false, 1);
    log.append(&hdr(1, 1, &t), &t).unwrap();
    log.close().unwrap();
    let e = recover(d.path(), d.path(), RecoverOptions::default()).unwrap_err();
    assert!(matches!(e, Error::LogsWithoutSnapshot { .. }), "{e}");
    let opts = RecoverOptions {
        trust_empty_snapshot: true,
        ..Default::default()
    };
    let r = recover(d.path(), d.path(), opts).unwrap();
    assert_eq!(r.last_zxid, 1);
    assert!(r.tree.exists("/x"));
}

#[test]
fn swapped_data_and_log_dirs_are_rejected() {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    recover(data.path(), logs.path(), RecoverOptions::default()).unwrap();
    let mut log = TxnLog::open(logs.path(), LogOptions::default().with_prealloc_kib(4)).unwrap();
    let t = create("/x", b"", false, 1);
    log.append(&hdr(1, 1, &t), &t).unwrap();
    log.close().unwrap();
    let r = recover(data.path(), logs.path(), RecoverOptions::default()).unwrap();
    assert_eq!(r.last_zxid, 1);
    // Swapped: snapshots in the log dir and logs in the snapshot dir.
    let e = recover(logs.path(), data.path(), RecoverOptions::default()).unwrap_err();
    assert!(matches!(e, Error::DirectoryMixup { .. }), "{e}");
    // Only one side wrong is enough.
    let empty = tempfile::tempdir().unwrap();
    let e = recover(logs.path(), empty.path(), RecoverOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::DirectoryMixup { found: "log", .. }),
        "{e}"
    );
    let e = recover(empty.path(), data.path(), RecoverOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DirectoryMixup {
                found: "snapshot",
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        purge(logs.path(), data.path(), 3),
        Err(Error::DirectoryMixup { .. })
    ));
}

#[test]
fn dead_sessions_lose_their_ephemerals() {
    let d = tempfile::tempdir().unwrap();
    let mut p = Prep::default();
    let (h, t) = p.step(0, 1); // createSession
    let owner = h.client_id;
    assert!(matches!(t, oxkeeper_proto::Txn::CreateSession(_)));
    p.step(11, 0); // an ephemeral create by that session
    assert_eq!(
        p.tree.ephemerals(owner).len(),
        1,
        "{:?}",
        common::dump(&p.tree)
    );
    // A snapshot whose session table lacks the owner.
    let z = p.tree.last_processed_zxid();
    write_snapshot(d.path(), z, &serialize_snapshot(&p.tree, &[])).unwrap();
    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_eq!(r.dead_sessions, vec![owner]);
    assert_eq!(r.tree.ephemeral_count(), 0);
    assert_eq!(r.last_zxid, z);
}

#[test]
fn purge_keeps_the_newest_snapshots_and_the_logs_they_need() {
    let d = tempfile::tempdir().unwrap();
    recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    let mut p = Prep::default();
    let mut log = TxnLog::open(d.path(), LogOptions::default().with_prealloc_kib(4)).unwrap();
    for i in 0..60u32 {
        let (h, t) = p.step((i % 11) as u8, i);
        log.append(&h, &t).unwrap();
        // Snapshots at 10, 20, ..., rolling at 5, 15, 25, ...
        if i % 10 == 4 {
            log.sync().unwrap();
            log.roll();
        }
        if i % 10 == 9 {
            log.sync().unwrap();
            let z = p.tree.last_processed_zxid();
            write_snapshot(
                d.path(),
                z,
                &serialize_snapshot(&p.tree, &p.session_table()),
            )
            .unwrap();
        }
    }
    log.close().unwrap();
    assert!(purge(d.path(), d.path(), 2).is_err());
    let removed = purge(d.path(), d.path(), 3).unwrap();
    let mut left: Vec<String> = fs::read_dir(d.path().join("version-2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort_by_key(|n| {
        let (k, z) = n.split_once('.').unwrap();
        (i64::from_str_radix(z, 16).unwrap(), k.to_owned())
    });
    // Oldest kept snapshot: 0x28 (40); the log starting at 0x24 (36) holds 40.
    assert_eq!(
        left,
        vec![
            "log.24",
            "snapshot.28",
            "log.2e",
            "snapshot.32",
            "log.38",
            "snapshot.3c"
        ]
    );
    assert_eq!(removed.len(), 4 + 4);
    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    assert_same_tree(&r.tree, &p.tree);
    assert_eq!(snapshot::valid_snapshots(d.path(), 10).unwrap().len(), 3);
}

#[test]
fn describe_lists_and_dumps_in_text_and_json() {
    let d = tempfile::tempdir().unwrap();
    recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    let mut log = TxnLog::open(d.path(), LogOptions::default().with_prealloc_kib(4)).unwrap();
    for (i, (client, t)) in every_txn_type().into_iter().enumerate() {
        log.append(&hdr(1 + i as i64, client, &t), &t).unwrap();
    }
    log.close().unwrap();
    let p = busy_prep(60);
    write_snapshot(
        d.path(),
        0x40,
        &serialize_snapshot(&p.tree, &p.session_table()),
    )
    .unwrap();

    let text = inspect::describe(d.path(), false).unwrap();
    assert!(
        text.contains("ZooKeeper Transactional Log File with dbid 0 txnlog format version 2"),
        "{text}"
    );
    assert!(
        text.contains(
            "session 0x100000000000001 cxid 0x2 zxid 0x2 create /a,hello,[31,world:anyone],false,1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "multi create:/m,,[31,world:anyone],false,5;check:/m,0;setData:/m,,1;delete:/m"
        ),
        "{text}"
    );
    assert!(text.contains("EOF reached after 14 txns."), "{text}");
    assert!(
        text.contains(&format!("ZNode Details (count={}):", p.tree.node_count())),
        "{text}"
    );
    assert!(text.contains("(matches the nodes)"), "{text}");

    let json = inspect::describe(d.path(), true).unwrap();
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for line in json.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        *kinds
            .entry(v["kind"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(kinds["txn"], 14);
    assert_eq!(kinds["node"], 4 + p.tree.node_count());
    assert_eq!(kinds["snapshot"], 2);
    assert_eq!(kinds["file"], 3);

    let one = d.path().join("version-2/log.1");
    let first = inspect::describe(&one, true).unwrap();
    let line: serde_json::Value = serde_json::from_str(first.lines().nth(2).unwrap()).unwrap();
    assert_eq!(line["type"], "create");
    assert_eq!(line["txn"]["path"], "/a");
    assert_eq!(line["txn"]["data"], "hello");
    assert!(inspect::describe(&d.path().join("nope"), false).is_err());
}
