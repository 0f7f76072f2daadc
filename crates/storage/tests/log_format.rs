//! The txn log writer and reader: round trips, ZooKeeper's bytes, file naming,
//! preallocation, rolling, and reading from a zxid.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use bytes::{BufMut, BytesMut};
use common::*;
use oxkeeper_proto::codes::op;
use oxkeeper_proto::txn::*;
use oxkeeper_proto::{Jute, Txn, TxnHeader};
use oxkeeper_storage::log::record::{self, FILE_HEADER_LEN};
use oxkeeper_storage::log::{read_log, read_log_file, LogOptions, ReadOptions, TxnDigest, TxnLog};

fn small() -> LogOptions {
    LogOptions {
        prealloc_bytes: 4096,
        ..LogOptions::default()
    }
}

fn read_all(dir: &Path, from: i64) -> Vec<(TxnHeader, Txn, Option<TxnDigest>)> {
    read_log(dir, from, ReadOptions::default())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.header, e.txn, e.digest)
        })
        .collect()
}

fn v2(dir: &Path) -> std::path::PathBuf {
    dir.join("version-2")
}

#[test]
fn every_txn_type_round_trips() {
    let d = tempfile::tempdir().unwrap();
    let mut log = TxnLog::open(d.path(), small()).unwrap();
    let mut want = Vec::new();
    for (i, (client, txn)) in every_txn_type().into_iter().enumerate() {
        let h = hdr(0x1_0000_0001 + i as i64, client, &txn);
        // Every other record carries a digest, as a 3.6+ server's would.
        let dg = (i % 2 == 0).then_some(TxnDigest {
            version: 2,
            tree_digest: i as i64 * 7919,
        });
        log.append_with_digest(&h, &txn, dg).unwrap();
        want.push((h, txn, dg));
    }
    let stats = log.sync().unwrap();
    assert_eq!(stats.txns, want.len());
    assert!(stats.bytes > 0);
    assert_eq!(read_all(d.path(), 0), want);
    // A reconfig logs a SetDataTxn under its own type.
    let t = Txn::SetData(SetDataTxn {
        path: "/zookeeper/config".into(),
        data: None,
        version: 3,
    });
    let mut h = hdr(0x1_0000_0100, 1, &t);
    h.txn_type = op::RECONFIG;
    log.append(&h, &t).unwrap();
    log.sync().unwrap();
    let last = read_all(d.path(), 0x1_0000_0100);
    assert_eq!(last, vec![(h, t, None)]);
    // A header that contradicts its body is refused.
    let t = Txn::Delete(DeleteTxn { path: "/x".into() });
    let mut h = hdr(0x1_0000_0101, 1, &t);
    h.txn_type = op::CREATE;
    assert!(log.append(&h, &t).is_err());
    assert!(log.failure().is_none());
}

#[test]
fn create2_inside_a_multi_is_logged_as_create_and_top_level_check_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let mut log = TxnLog::open(d.path(), small()).unwrap();
    let body = CreateTxn {
        path: "/m".into(),
        data: None,
        acl: oxkeeper_proto::Acl::open(),
        ephemeral: false,
        parent_cversion: 1,
    };
    let multi = Txn::Multi(vec![Txn::Create2(body.clone())]);
    log.append(&hdr(1, 1, &multi), &multi).unwrap();
    let check = Txn::Check(CheckVersionTxn {
        path: "/m".into(),
        version: 0,
    });
    assert!(log.append(&hdr(2, 1, &check), &check).is_err());
    log.close().unwrap();
    let got = read_all(d.path(), 0);
    assert_eq!(got[0].1, Txn::Multi(vec![Txn::Create(body)]));
    // The same txn is also what a plain Txn::write_body would give, apart from the type.
    let bytes = fs::read(v2(d.path()).join("log.1")).unwrap();
    let sub_type_at = 16 + 12 + 32 + 4;
    assert_eq!(
        &bytes[sub_type_at..sub_type_at + 4],
        &op::CREATE.to_be_bytes()
    );
}

#[test]
fn file_bytes_match_zookeeper_worked_example() {
    let d = tempfile::tempdir().unwrap();
    let mut log = TxnLog::open(d.path(), small()).unwrap();
    let h = TxnHeader {
        client_id: 0x0100_0a3b_2c4d_0000,
        cxid: 0,
        zxid: 0x1_0000_0001,
        time: 1_700_000_000_000,
        txn_type: op::CREATE_SESSION,
    };
    let t = Txn::CreateSession(CreateSessionTxn { timeout_ms: 30_000 });
    log.append_with_digest(
        &h,
        &t,
        Some(TxnDigest {
            version: 2,
            tree_digest: 0,
        }),
    )
    .unwrap();
    log.sync().unwrap();
    let path = v2(d.path()).join("log.100000001");
    let bytes = fs::read(&path).unwrap();
    let mut want = record::file_header().to_vec();
    want.extend_from_slice(&0xb1e5_0804_i64.to_be_bytes());
    want.extend_from_slice(&48_i32.to_be_bytes());
    assert_eq!(&bytes[..28], &want[..]);
    assert_eq!(bytes[16 + 60], 0x42);
    // Preallocated: header + one block, zeros after the record.
    assert_eq!(bytes.len() as u64, FILE_HEADER_LEN + 4096);
    assert!(bytes[16 + 61..].iter().all(|&b| b == 0));

    // The CreateTxn body of the spec's example.
    let body = {
        let mut w = BytesMut::new();
        create("/a", b"hello", false, 1).write_body(&mut w);
        w
    };
    let hexed: String = body.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hexed,
        "000000022f610000000568656c6c6f000000010000001f00000005776f726c6400000006616e796f6e650000000001"
    );
}

#[test]
fn reads_create_v0_and_bodyless_close_session() {
    // Hand-framed records in the shapes older servers wrote.
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(v2(d.path())).unwrap();
    let mut file = record::file_header().to_vec();
    let mut p = BytesMut::new();
    TxnHeader {
        client_id: 5,
        cxid: 1,
        zxid: 1,
        time: 9,
        txn_type: op::CREATE,
    }
    .write(&mut p);
    "/old".to_string().write(&mut p);
    Some(bytes::Bytes::from_static(b"v")).write(&mut p);
    oxkeeper_proto::Acl::open().write(&mut p);
    true.write(&mut p); // no parentCVersion: CreateTxnV0
    record::frame(&mut file, &p);
    let mut p = BytesMut::new();
    TxnHeader {
        client_id: 5,
        cxid: 0,
        zxid: 2,
        time: 10,
        txn_type: op::CLOSE_SESSION,
    }
    .write(&mut p);
    record::frame(&mut file, &p);
    // And body-less with a digest after it.
    let mut p = BytesMut::new();
    TxnHeader {
        client_id: 6,
        cxid: 0,
        zxid: 3,
        time: 11,
        txn_type: op::CLOSE_SESSION,
    }
    .write(&mut p);
    p.put_i32(2);
    p.put_i64(0x7fff_0000_1234);
    record::frame(&mut file, &p);
    fs::write(v2(d.path()).join("log.1"), &file).unwrap();

    let got = read_all(d.path(), 0);
    assert_eq!(got.len(), 3);
    match &got[0].1 {
        Txn::Create(c) => {
            assert_eq!(
                (c.path.as_str(), c.ephemeral, c.parent_cversion),
                ("/old", true, -1)
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(got[1].1, Txn::CloseSession(CloseSessionTxn::default()));
    assert_eq!(got[2].1, Txn::CloseSession(CloseSessionTxn::default()));
    assert_eq!(got[2].2.map(|d| d.tree_digest), Some(0x7fff_0000_1234));
}

#[test]
fn files_are_named_by_first_zxid_and_read_from_a_zxid() {
    let d = tempfile::tempdir().unwrap();
    let mut log = TxnLog::open(d.path(), small()).unwrap();
    let mut z = 1;
    for file in 0..3 {
        for _ in 0..5 {
            let t = create(&format!("/n{z}"), b"", false, z as i32);
            log.append(&hdr(z, 1, &t), &t).unwrap();
            z += 1;
        }
        log.sync().unwrap();
        if file < 2 {
            log.roll();
        }
    }
    let mut names: Vec<String> = fs::read_dir(v2(d.path()))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["log.1", "log.6", "log.b"]);
    let zx = |from| -> Vec<i64> { read_all(d.path(), from).iter().map(|e| e.0.zxid).collect() };
    assert_eq!(zx(0), (1..=15).collect::<Vec<_>>());
    // The file starting before the zxid is read and fast-forwarded.
    assert_eq!(zx(8), (8..=15).collect::<Vec<_>>());
    assert_eq!(zx(11), (11..=15).collect::<Vec<_>>());
    assert_eq!(zx(16), Vec::<i64>::new());
    // A reopened log starts a new file at the next zxid.
    drop(log);
    let mut log = TxnLog::open(d.path(), small()).unwrap();
    let t = create("/after", b"", false, 16);
    log.append(&hdr(16, 1, &t), &t).unwrap();
    log.close().unwrap();
    assert!(v2(d.path()).join("log.10").exists());
    assert_eq!(zx(0).len(), 16);
}

#[test]
fn roll_keeps_unsynced_data_of_the_old_file() {
    let d = tempfile::tempdir().unwrap();
    let mut log = TxnLog::open(d.path(), small()).unwrap();
    for z in 1..=3 {
        let t = create(&format!("/r{z}"), b"", false, z as i32);
        log.append(&hdr(z, 1, &t), &t).unwrap();
        if z == 2 {
            log.roll();
        }
    }
    let s = log.sync().unwrap();
    assert_eq!(s.txns, 3);
    assert_eq!(read_all(d.path(), 0).len(), 3);
    assert!(v2(d.path()).join("log.3").exists());
}

#[test]
fn preallocation_grows_in_blocks_and_size_limit_rolls() {
    let d = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        prealloc_bytes: 8192,
        size_limit_bytes: Some(20_000),
        ..LogOptions::default()
    };
    let mut log = TxnLog::open(d.path(), opts).unwrap();
    let big = vec![b'z'; 1000];
    for z in 1..=40 {
        let t = Txn::SetData(SetDataTxn {
            path: "/".into(),
            data: Some(big.clone().into()),
            version: z as i32,
        });
        log.append(&hdr(z, 1, &t), &t).unwrap();
        log.sync().unwrap();
    }
    let mut files: Vec<_> = fs::read_dir(v2(d.path()))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        let len = fs::metadata(f).unwrap().len();
        assert_eq!((len - 16) % 8192, 0, "{} is {len} bytes", f.display());
    }
    assert_eq!(read_all(d.path(), 0).len(), 40);
    let per_file: usize = files
        .iter()
        .map(|f| read_log_file(f, ReadOptions::read_only()).unwrap().count())
        .sum();
    assert_eq!(per_file, 40);
}

#[test]
fn force_sync_off_still_writes() {
    let d = tempfile::tempdir().unwrap();
    let opts = LogOptions {
        force_sync: false,
        ..small()
    };
    let mut log = TxnLog::open(d.path(), opts).unwrap();
    let t = create("/x", b"", false, 1);
    log.append(&hdr(1, 1, &t), &t).unwrap();
    let s = log.sync().unwrap();
    assert_eq!(s.txns, 1);
    assert_eq!(s.fsync, std::time::Duration::ZERO);
    assert_eq!(read_all(d.path(), 0).len(), 1);
}

#[test]
fn oversized_record_is_refused_without_failing_the_log() {
    let d = tempfile::tempdir().unwrap();
    let mut log = TxnLog::open(d.path(), small()).unwrap();
    let t = Txn::SetData(SetDataTxn {
        path: "/".into(),
        data: Some(vec![0u8; 3 << 20].into()),
        version: 1,
    });
    assert!(log.append(&hdr(1, 1, &t), &t).is_err());
    let t = create("/ok", b"", false, 1);
    log.append(&hdr(1, 1, &t), &t).unwrap();
    log.sync().unwrap();
}
