//! What the reader makes of damaged logs: torn tails and zero padding end the log;
//! a bad record with data after it is corruption (file and offset named) unless the
//! caller asks to truncate there.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;
use oxkeeper_storage::log::{read_log, LogOptions, ReadOptions, TxnLog};
use oxkeeper_storage::{recover, Error, RecoverOptions};

/// Writes txns 1..=n into one log file (4 KiB preallocation) and returns its path and
/// each record's offset.
fn write_log(dir: &Path, n: i64, first: i64) -> (PathBuf, Vec<u64>) {
    let opts = LogOptions {
        prealloc_bytes: 4096,
        ..LogOptions::default()
    };
    let mut log = TxnLog::open(dir, opts).unwrap();
    for z in first..first + n {
        let t = create(&format!("/n{z}"), b"payload", false, z as i32);
        log.append(&hdr(z, 1, &t), &t).unwrap();
    }
    log.close().unwrap();
    let path = dir.join("version-2").join(format!("log.{first:x}"));
    let offsets = read_log(dir, first, ReadOptions::read_only())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| *e.file == *path)
        .map(|e| e.offset)
        .collect();
    (path, offsets)
}

fn zxids(dir: &Path, opts: ReadOptions) -> Result<Vec<i64>, Error> {
    read_log(dir, 0, opts)
        .unwrap()
        .map(|e| e.map(|e| e.header.zxid))
        .collect()
}

fn patch(path: &Path, at: u64, bytes: &[u8]) {
    let mut b = fs::read(path).unwrap();
    b[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
    fs::write(path, b).unwrap();
}

#[test]
fn zero_padding_ends_the_log() {
    let d = tempfile::tempdir().unwrap();
    let (path, _) = write_log(d.path(), 5, 1);
    assert_eq!((fs::metadata(&path).unwrap().len() - 16) % 4096, 0);
    assert_eq!(
        zxids(d.path(), ReadOptions::default()).unwrap(),
        vec![1, 2, 3, 4, 5]
    );
}

#[test]
fn torn_last_record_ends_the_log() {
    // Cut inside the last record (no padding left).
    let d = tempfile::tempdir().unwrap();
    let (path, offs) = write_log(d.path(), 5, 1);
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(offs[4] + 20).unwrap();
    assert_eq!(
        zxids(d.path(), ReadOptions::default()).unwrap(),
        vec![1, 2, 3, 4]
    );

    // Zeros over the end of the last record, padding after it: marker missing.
    let d = tempfile::tempdir().unwrap();
    let (path, offs) = write_log(d.path(), 5, 1);
    patch(&path, offs[4] + 20, &[0u8; 40]);
    assert_eq!(
        zxids(d.path(), ReadOptions::default()).unwrap(),
        vec![1, 2, 3, 4]
    );

    // A bad checksum in the last record with only zeros after it: a torn write too.
    let d = tempfile::tempdir().unwrap();
    let (path, offs) = write_log(d.path(), 5, 1);
    patch(&path, offs[4] + 40, b"X");
    assert_eq!(
        zxids(d.path(), ReadOptions::default()).unwrap(),
        vec![1, 2, 3, 4]
    );

    // Later files are still read after a torn tail in an older one.
    write_log(d.path(), 2, 5);
    assert_eq!(
        zxids(d.path(), ReadOptions::default()).unwrap(),
        vec![1, 2, 3, 4, 5, 6]
    );
}

#[test]
fn checksum_mismatch_mid_file_is_corruption_naming_file_and_offset() {
    let d = tempfile::tempdir().unwrap();
    let (path, offs) = write_log(d.path(), 5, 1);
    patch(&path, offs[2] + 40, b"X");
    match zxids(d.path(), ReadOptions::default()) {
        Err(Error::CorruptLog {
            file,
            offset,
            reason,
        }) => {
            assert_eq!(file, path);
            assert_eq!(offset, offs[2]);
            assert!(reason.contains("CRC"), "{reason}");
            let msg = Error::CorruptLog {
                file,
                offset,
                reason,
            }
            .to_string();
            assert!(
                msg.contains("log.1") && msg.contains(&offs[2].to_string()),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    // Read-only readers never repair, even when asked to truncate.
    let ro = ReadOptions {
        truncate_at_corruption: true,
        read_only: true,
    };
    assert!(zxids(d.path(), ro).is_err());
    // Recovery refuses to start.
    let snap = tempfile::tempdir().unwrap();
    oxkeeper_storage::write_snapshot(
        snap.path(),
        0,
        &oxkeeper_storage::serialize_snapshot(&oxkeeper_core::tree::DataTree::new(), &[]),
    )
    .unwrap();
    let err = recover(snap.path(), d.path(), RecoverOptions::default()).unwrap_err();
    assert!(matches!(err, Error::CorruptLog { .. }), "{err}");
}

#[test]
fn unreasonable_length_and_bad_marker_mid_file_are_corruption() {
    let d = tempfile::tempdir().unwrap();
    let (path, offs) = write_log(d.path(), 5, 1);
    patch(&path, offs[1] + 8, &(-7i32).to_be_bytes());
    let e = zxids(d.path(), ReadOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::CorruptLog { offset, .. } if offset == offs[1]),
        "{e}"
    );

    let d = tempfile::tempdir().unwrap();
    let (path, offs) = write_log(d.path(), 5, 1);
    patch(&path, offs[2] - 1, b"Q"); // record 1's end marker
    let e = zxids(d.path(), ReadOptions::default()).unwrap_err();
    assert!(
        matches!(e, Error::CorruptLog { offset, .. } if offset == offs[1]),
        "{e}"
    );
}

#[test]
fn truncate_at_corruption_cuts_there_and_discards_later_files() {
    let d = tempfile::tempdir().unwrap();
    let (path, offs) = write_log(d.path(), 5, 1);
    let (later, _) = write_log(d.path(), 3, 6);
    patch(&path, offs[2] + 40, b"X");
    let opts = ReadOptions {
        truncate_at_corruption: true,
        read_only: false,
    };
    assert_eq!(zxids(d.path(), opts).unwrap(), vec![1, 2]);
    assert_eq!(fs::metadata(&path).unwrap().len(), offs[2]);
    assert!(!later.exists());
    assert!(d.path().join("version-2/discarded.log.6").exists());
    // From now on the log simply ends there.
    assert_eq!(zxids(d.path(), ReadOptions::default()).unwrap(), vec![1, 2]);
}

#[test]
fn recovery_with_truncation_starts_from_the_good_prefix() {
    let data = tempfile::tempdir().unwrap();
    let r = recover(data.path(), data.path(), RecoverOptions::default()).unwrap();
    assert_eq!(r.last_zxid, 0);
    let (path, offs) = write_log(data.path(), 5, 1);
    patch(&path, offs[3] + 40, b"X");
    assert!(recover(data.path(), data.path(), RecoverOptions::default()).is_err());
    let opts = RecoverOptions {
        truncate_at_corruption: true,
        ..Default::default()
    };
    let r = recover(data.path(), data.path(), opts).unwrap();
    assert_eq!(r.last_zxid, 3);
    assert!(r.tree.exists("/n3") && !r.tree.exists("/n4"));
}

#[test]
fn empty_tail_file_is_deleted_and_bad_headers_are_errors() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 3, 1);
    let empty = d.path().join("version-2/log.4");
    fs::write(&empty, b"").unwrap();
    assert_eq!(
        zxids(d.path(), ReadOptions::read_only()).unwrap(),
        vec![1, 2, 3]
    );
    assert!(empty.exists(), "read-only readers delete nothing");
    assert_eq!(
        zxids(d.path(), ReadOptions::default()).unwrap(),
        vec![1, 2, 3]
    );
    assert!(!empty.exists());

    // An empty file that is not the last one: the log has a hole.
    fs::write(d.path().join("version-2/log.4"), b"").unwrap();
    write_log(d.path(), 1, 5);
    let e = zxids(d.path(), ReadOptions::default()).unwrap_err();
    assert!(matches!(e, Error::BadHeader { .. }), "{e}");

    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("version-2")).unwrap();
    fs::write(
        d.path().join("version-2/log.1"),
        [0x5a, 0x4b, 0x53, 0x4e, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0],
    )
    .unwrap();
    let e = zxids(d.path(), ReadOptions::default()).unwrap_err();
    assert!(e.to_string().contains("magic"), "{e}");
}
