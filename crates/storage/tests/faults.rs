//! The log writer on a disk that fails: no transaction is reported durable that is not,
//! the log refuses everything after a failure, and recovery afterwards sees only
//! complete records.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;
use oxkeeper_proto::{Txn, TxnHeader};
use oxkeeper_storage::fault::{Fault, FaultyDisk, EIO, ENOSPC};
use oxkeeper_storage::log::{LogOptions, TxnLog};
use oxkeeper_storage::{recover, Error, RecoverOptions};
use proptest::prelude::*;

fn opts(buffer: usize) -> LogOptions {
    LogOptions {
        prealloc_bytes: 4096,
        write_buffer_bytes: buffer,
        ..LogOptions::default()
    }
}

fn txn(z: i64) -> (TxnHeader, Txn) {
    let t = create(&format!("/n{z}"), &[b'v'; 50], false, z as i32);
    (hdr(z, 1, &t), t)
}

/// A data dir that recovery accepts (snapshot.0), and a faulty log on it.
fn setup(buffer: usize) -> (tempfile::TempDir, FaultyDisk, TxnLog) {
    let d = tempfile::tempdir().unwrap();
    recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    let disk = FaultyDisk::new();
    let log = TxnLog::open_with_disk(d.path(), opts(buffer), Box::new(disk.clone())).unwrap();
    (d, disk, log)
}

fn recovered_zxids(dir: &Path) -> Vec<i64> {
    let r = recover(dir, dir, RecoverOptions::default()).unwrap();
    let mut v: Vec<i64> = (1..=r.last_zxid)
        .filter(|z| r.tree.exists(&format!("/n{z}")))
        .collect();
    v.sort();
    assert_eq!(v.len() as i64, r.last_zxid, "recovered txns are a prefix");
    v
}

fn assert_refuses(log: &mut TxnLog) {
    let (h, t) = txn(1000);
    assert!(matches!(log.append(&h, &t), Err(Error::LogFailed { .. })));
    assert!(matches!(log.sync(), Err(Error::LogFailed { .. })));
    assert!(log.failure().is_some());
}

#[test]
fn failed_sync_reports_the_error_and_poisons_the_log() {
    let (d, disk, mut log) = setup(1 << 20);
    for z in 1..=3 {
        let (h, t) = txn(z);
        log.append(&h, &t).unwrap();
    }
    assert_eq!(log.sync().unwrap().txns, 3);
    for z in 4..=5 {
        let (h, t) = txn(z);
        log.append(&h, &t).unwrap();
    }
    disk.inject(Fault::FailSync(EIO));
    let e = log.sync().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(EIO), "{e}");
    assert_refuses(&mut log);
    drop(log);
    // The unsynced records were cut away: even without a crash only 1..=3 come back.
    assert_eq!(recovered_zxids(d.path()), vec![1, 2, 3]);
    disk.crash().unwrap();
    assert_eq!(recovered_zxids(d.path()), vec![1, 2, 3]);
}

#[test]
fn short_write_enospc_leaves_no_record_recovery_would_believe() {
    // Tiny buffer: every append writes through, so the short write hits mid-batch.
    let (d, disk, mut log) = setup(1);
    for z in 1..=4 {
        let (h, t) = txn(z);
        log.append(&h, &t).unwrap();
    }
    log.sync().unwrap();
    let (h, t) = txn(5);
    log.append(&h, &t).unwrap();
    disk.inject(Fault::ShortWrite {
        written: 30,
        errno: ENOSPC,
    });
    // The cut after the failure fails too: the half record stays on disk.
    disk.inject(Fault::FailSetLen(EIO));
    let (h, t) = txn(6);
    let e = log.append(&h, &t).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(ENOSPC), "{e}");
    assert_refuses(&mut log);
    drop(log);
    // Record 5 was written whole but never acknowledged; record 6 is torn. Recovery
    // stops at the torn record and sees only complete ones.
    let got = recovered_zxids(d.path());
    assert!(
        got == vec![1, 2, 3, 4] || got == vec![1, 2, 3, 4, 5],
        "{got:?}"
    );
    disk.crash().unwrap();
    assert_eq!(recovered_zxids(d.path()), vec![1, 2, 3, 4]);
}

#[test]
fn full_disk_and_failed_create() {
    let (d, disk, mut log) = setup(1 << 20);
    disk.inject(Fault::FailCreate(ENOSPC));
    let (h, t) = txn(1);
    log.append(&h, &t).unwrap();
    assert_eq!(log.sync().unwrap_err().raw_os_error(), Some(ENOSPC));
    assert_refuses(&mut log);

    let disk = FaultyDisk::new();
    let mut log = TxnLog::open_with_disk(d.path(), opts(1 << 20), Box::new(disk.clone())).unwrap();
    disk.set_full(true);
    let (h, t) = txn(1);
    log.append(&h, &t).unwrap();
    assert_eq!(log.sync().unwrap_err().raw_os_error(), Some(ENOSPC));
    assert_refuses(&mut log);
    disk.set_full(false);
    assert_refuses(&mut log);
    drop(log);
    disk.crash().unwrap();
    assert_eq!(recovered_zxids(d.path()), Vec::<i64>::new());
}

#[derive(Debug, Clone)]
enum Step {
    Append,
    Sync,
    Roll,
    Fault(Fault),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::Append),
        3 => Just(Step::Sync),
        1 => Just(Step::Roll),
        1 => prop_oneof![
            Just(Fault::FailSync(EIO)),
            Just(Fault::FailWrite(EIO)),
            (0usize..80).prop_map(|w| Fault::ShortWrite { written: w, errno: ENOSPC }),
            Just(Fault::FailSetLen(EIO)),
            Just(Fault::FailCreate(ENOSPC)),
        ]
        .prop_map(Step::Fault),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever fails when: every txn acknowledged by a successful sync survives a
    /// crash, recovery sees a prefix of what was appended, and after the first error
    /// nothing more is accepted.
    #[test]
    fn acknowledged_means_durable(steps in proptest::collection::vec(step(), 1..60), buffer in prop_oneof![Just(1usize), Just(200), Just(1 << 20)]) {
        let (d, disk, mut log) = setup(buffer);
        let mut next = 1i64;
        let mut acked = 0i64;
        let mut failed = false;
        for s in steps {
            match s {
                Step::Append => {
                    let (h, t) = txn(next);
                    match log.append(&h, &t) {
                        Ok(()) => { prop_assert!(!failed); next += 1; }
                        Err(_) => failed = true,
                    }
                }
                Step::Sync => match log.sync() {
                    Ok(_) => { prop_assert!(!failed); acked = next - 1; }
                    Err(_) => failed = true,
                },
                Step::Roll => log.roll(),
                Step::Fault(f) => disk.inject(f),
            }
        }
        drop(log);
        disk.crash().unwrap();
        let got = recovered_zxids(d.path());
        prop_assert!(got.len() as i64 >= acked, "acked {} but recovered {:?}", acked, got);
        prop_assert!((got.len() as i64) < next);
    }
}
