//! Compatibility with Apache ZooKeeper 3.8 in both directions.
//!
//! ZooKeeper → us: `fixtures/zk38` is a data directory written by a real ZooKeeper 3.8.0
//! (`fixtures/zk38/gen.py`: snapCount=100, preAllocSize=16, kazoo clients creating
//! ephemeral, sequential, container and TTL nodes, ACLs, multis, error txns, a closed
//! session, then SIGKILL) with `tree.json`, the tree ZooKeeper served just before.
//!
//! Us → ZooKeeper: when `java` and ZooKeeper's jar are installed (Debian's `zookeeper`
//! package), ZooKeeper's own tools read what we write and a ZooKeeper server is started
//! on our directory; its startup snapshot must hold our tree. Skipped otherwise.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use oxkeeper_core::tree::DataTree;
use oxkeeper_storage::log::{LogOptions, TxnLog};
use oxkeeper_storage::snapshot::{load_snapshot_full, parse_snapshot, valid_snapshots};
use oxkeeper_storage::{
    inspect, recover, serialize_snapshot, write_snapshot, DigestCheck, RecoverOptions,
    SnapshotBuilder,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zk38")
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), target).unwrap();
        }
    }
}

/// `OXK_ZK_DATADIR` can point at another `gen.py` output (a `data` dir and
/// `tree.json`) to check it the same way.
#[test]
fn fixture_recovers_to_the_tree_zookeeper_served() {
    let src = std::env::var_os("OXK_ZK_DATADIR").map_or_else(fixture, PathBuf::from);
    let d = tempfile::tempdir().unwrap();
    copy_dir(&src.join("data"), d.path());
    let r = recover(d.path(), d.path(), RecoverOptions::default()).unwrap();
    let want: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(src.join("tree.json")).unwrap()).unwrap();
    let nodes = want["nodes"].as_object().unwrap();
    assert_eq!(r.tree.node_count(), nodes.len());
    for (path, n) in nodes {
        let node = r.tree.get(path).unwrap_or_else(|| panic!("{path} missing"));
        let data = n["data"]
            .as_str()
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b).unwrap());
        let got = node.data().as_ref().map(|b| b.to_vec());
        // kazoo reads ZooKeeper's null data as None and empty data as b"" alike.
        assert_eq!(
            got.unwrap_or_default(),
            data.unwrap_or_default(),
            "{path} data"
        );
        let acl: Vec<(i64, String, String)> = node
            .acl()
            .iter()
            .map(|a| {
                // ZooKeeper shows a digest id's hash as "x" to clients without the
                // matching credentials; compare the user part only then.
                let redacted = a.id.scheme == "digest"
                    && n["acl"]
                        .to_string()
                        .contains(&format!("{}:x\"", a.id.id.split(':').next().unwrap_or("")));
                let id = if redacted {
                    format!("{}:x", a.id.id.split(':').next().unwrap_or(""))
                } else {
                    a.id.id.clone()
                };
                (i64::from(a.perms), a.id.scheme.clone(), id)
            })
            .collect();
        let want_acl: Vec<(i64, String, String)> = n["acl"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a[0].as_i64().unwrap(),
                    a[1].as_str().unwrap().to_owned(),
                    a[2].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(acl, want_acl, "{path} acl");
        let s = node.stat();
        let got_stat = [
            s.czxid,
            s.mzxid,
            s.ctime,
            s.mtime,
            s.version.into(),
            s.cversion.into(),
            s.aversion.into(),
            s.ephemeral_owner,
            s.data_length.into(),
            s.num_children.into(),
            s.pzxid,
        ];
        let want_stat: Vec<i64> = n["stat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(got_stat.to_vec(), want_stat, "{path} stat");
    }
    if let Some(open) = want["open_sessions"].as_array() {
        let open: Vec<i64> = open.iter().map(|v| v.as_i64().unwrap()).collect();
        let got: Vec<i64> = r.sessions.iter().map(|s| s.0).collect();
        assert_eq!(got, open);
    }
    assert!(
        !matches!(r.digest, DigestCheck::Mismatched { .. }),
        "{:?}",
        r.digest
    );
    if std::env::var_os("OXK_ZK_DATADIR").is_none() {
        assert_eq!(r.digest, DigestCheck::Matched);
        assert!(r.txns_replayed > 0);
        assert!(
            r.tree.ephemeral_count() > 0
                && r.tree.containers().count() > 0
                && r.tree.ttl_nodes().count() > 0
        );
    }
}

#[test]
fn fixture_snapshots_load_with_zookeepers_digests() {
    let snaps = valid_snapshots(&fixture().join("data"), 100).unwrap();
    assert_eq!(snaps.len(), 4);
    let mut exact = 0;
    for s in snaps {
        let l = load_snapshot_full(&s.path).unwrap();
        let d = l.meta.digest.unwrap();
        // ZooKeeper's snapshots are fuzzy: the digest is of the tree at the zxid it had
        // reached when the walk ended, which can be past the name.
        assert!(d.zxid >= s.zxid || d.zxid == 0);
        if d.zxid == s.zxid && d.zxid > 0 {
            assert_eq!(d.digest, l.meta.computed_digest, "{}", s.path.display());
            exact += 1;
        }
        // 3.8 writes no lastZxid section.
        assert_eq!(l.meta.last_zxid, None);
    }
    assert!(exact >= 1);
}

#[test]
fn empty_tree_snapshot_matches_zookeepers_bytes() {
    let theirs = fs::read(fixture().join("data/version-2/snapshot.0")).unwrap();
    let ours = serialize_snapshot(&DataTree::new(), &[]);
    // Identical through the first seal; the digest value of an empty zxid-0 tree is
    // not compared by anyone (ZooKeeper's own differs between its startup paths).
    let mut end = 0;
    parse_snapshot(&theirs, Path::new("snapshot.0"), |_| Ok(())).unwrap();
    while end < theirs.len()
        && theirs[..end]
            .windows(5)
            .filter(|w| *w == [0, 0, 0, 1, b'/'])
            .count()
            < 2
    {
        end += 1;
    }
    assert!(end > 100);
    assert_eq!(&ours[..end], &theirs[..end]);
}

#[test]
fn fixture_logs_describe_like_the_toolkit() {
    let text = inspect::describe(&fixture().join("data/version-2/log.1"), false).unwrap();
    assert!(
        text.starts_with("ZooKeeper Transactional Log File with dbid 0 txnlog format version 2\n")
    );
    let all = inspect::describe(&fixture().join("data"), false).unwrap();
    assert!(all.contains(" error err:-101"), "{all}");
    assert!(
        all.contains(" multi create:/app/m0,m,[31,world:anyone],false,"),
        "{all}"
    );
    assert!(text.contains("createSession timeOut:30000"), "{text}");
    assert!(
        text.contains(" create /app,root of app,[31,world:anyone],false,1"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("txns."), "{text}");
    // ZooKeeper 3.8 logs a digest with each successful txn.
    assert!(text.contains(" digest:2:"), "{text}");
}

// ---------------------------------------------------------------------------
// Us → ZooKeeper.

fn zk_classpath() -> Option<String> {
    let jar = Path::new("/usr/share/java/zookeeper.jar");
    let java_ok = Command::new("java")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !java_ok || !jar.exists() {
        return None;
    }
    let mut cp = jar.display().to_string();
    if Path::new("/usr/share/java/slf4j-simple.jar").exists() {
        cp.push_str(":/usr/share/java/slf4j-simple.jar");
    }
    Some(cp)
}

fn java(cp: &str, class: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("java")
        .args(["-cp", cp, class])
        .args(args)
        .output()
        .unwrap();
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

fn four(port: u16, cmd: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(cmd.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// How `write_our_dir` takes its snapshot, after the 251st transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snap {
    /// `serialize_snapshot` at once.
    Exact,
    /// A `SnapshotBuilder` stepped 2 nodes after each further transaction (fuzzy).
    Sliced,
    /// A `SnapshotBuilder` started there but walked in one step 20 transactions later:
    /// an exact image of a later state, with that state's digest.
    Late,
}

/// Writes a data directory the way the server will: snapshot in the middle, the whole
/// log, sessions still open with ephemerals. Returns the live state and the snapshot's
/// zxid.
fn write_our_dir(dir: &Path, mode: Snap) -> (Prep, i64) {
    recover(dir, dir, RecoverOptions::default()).unwrap();
    let kib = std::env::var("OXK_PREALLOC_KIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut log = TxnLog::open(dir, LogOptions::default().with_prealloc_kib(kib)).unwrap();
    let mut p = Prep::default();
    let mut builder: Option<SnapshotBuilder> = None;
    let mut during = 0;
    let mut snap_zxid = 0;
    for i in 0..400u32 {
        let r = i.wrapping_mul(2_654_435_761).rotate_left(7);
        let (h, t) = p.step((r >> 3) as u8, r);
        log.append(&h, &t).unwrap();
        if i % 10 == 0 {
            log.sync().unwrap();
        }
        if let Some(b) = &mut builder {
            during += 1;
            let size = match mode {
                Snap::Late if i < 270 => 0,
                Snap::Late => usize::MAX,
                _ => 2,
            };
            if b.step(&p.tree, size) {
                let b = builder.take().unwrap();
                snap_zxid = b.zxid();
                write_snapshot(dir, snap_zxid, &b.finish()).unwrap();
            }
        }
        if i == 250 {
            log.roll();
            if mode == Snap::Exact {
                snap_zxid = p.tree.last_processed_zxid();
                write_snapshot(
                    dir,
                    snap_zxid,
                    &serialize_snapshot(&p.tree, &p.session_table()),
                )
                .unwrap();
            } else {
                builder = Some(SnapshotBuilder::start(&p.tree, &p.session_table()));
            }
        }
    }
    assert!(builder.is_none(), "the walk did not end");
    assert!(
        mode != Snap::Sliced || during > 20,
        "the sliced walk saw {during} transactions"
    );
    log.close().unwrap();
    (p, snap_zxid)
}

#[test]
fn zookeeper_reads_what_we_write() {
    zookeeper_reads_our_dir(Snap::Exact);
}

/// The same with a snapshot walked in slices while 100+ transactions went on: its
/// digest trailer is ZooKeeper's empty one, and ZooKeeper's replay repairs the rest.
#[test]
fn zookeeper_reads_a_snapshot_taken_in_slices() {
    zookeeper_reads_our_dir(Snap::Sliced);
}

/// A snapshot named before the state it holds: ZooKeeper checks its digest when its
/// replay reaches that state.
#[test]
fn zookeeper_checks_the_digest_of_a_late_walk() {
    zookeeper_reads_our_dir(Snap::Late);
}

fn zookeeper_reads_our_dir(mode: Snap) {
    let Some(cp) = zk_classpath() else {
        eprintln!("skipped: no java or /usr/share/java/zookeeper.jar");
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    let (p, snap_zxid) = write_our_dir(&data, mode);
    let v2 = data.join("version-2");

    // zkSnapShotToolkit on our snapshots.
    for s in valid_snapshots(&data, 10).unwrap() {
        let (ok, out) = java(
            &cp,
            "org.apache.zookeeper.server.SnapshotFormatter",
            &[s.path.to_str().unwrap()],
        );
        assert!(ok, "{out}");
        assert!(out.contains("ZNode Details (count="), "{out}");
        assert!(out.contains("Session Details"), "{out}");
    }
    // zkTxnLogToolkit on our logs: every record read, no CRC error.
    let mut logged = 0usize;
    for e in fs::read_dir(&v2).unwrap() {
        let path = e.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("log.")
        {
            continue;
        }
        let (ok, out) = java(
            &cp,
            "org.apache.zookeeper.server.persistence.TxnLogToolkit",
            &[path.to_str().unwrap()],
        );
        assert!(ok, "{out}");
        assert!(!out.contains("CRC ERROR"), "{out}");
        let n: usize = out
            .lines()
            .find_map(|l| {
                l.strip_prefix("EOF reached after ")
                    .and_then(|r| r.strip_suffix(" txns."))
            })
            .unwrap_or_else(|| panic!("{out}"))
            .parse()
            .unwrap();
        logged += n;
    }
    assert_eq!(logged, 400);

    // A ZooKeeper server started on our directory recovers our tree: it writes a
    // snapshot of what it loaded at startup, which we read back.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = d.path().join("zoo.cfg");
    fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\n",
            data.display()
        ),
    )
    .unwrap();
    let log = fs::File::create(d.path().join("zk.log")).unwrap();
    let mut child = Command::new("java")
        .args([
            "-cp",
            &cp,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            cfg.to_str().unwrap(),
        ])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut mntr = None;
    let mut srvr = String::new();
    // `ruok` answers before the database is loaded; `srvr` shows a zxid once serving.
    while start.elapsed() < Duration::from_secs(60) {
        srvr = four(port, "srvr").unwrap_or_default();
        if srvr.contains("Zxid:") {
            mntr = four(port, "mntr");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    let zk_log = fs::read_to_string(d.path().join("zk.log")).unwrap_or_default();
    let mntr = mntr.unwrap_or_else(|| panic!("ZooKeeper did not start on our data:\n{zk_log}"));
    assert!(mntr.contains("zk_digest_mismatches_count\t0"), "{mntr}");
    assert!(
        srvr.contains(&format!("Zxid: 0x{:x}", p.tree.last_processed_zxid())),
        "{srvr}"
    );
    // ZooKeeper counts the root twice.
    let counted = srvr.contains(&format!("Node count: {}", p.tree.node_count() + 1));
    // It started from our snapshot, not from an older one after rejecting it.
    let ours = v2.join(format!("snapshot.{snap_zxid:x}"));
    assert!(
        zk_log.contains(&format!("Reading snapshot {}\n", ours.display())),
        "{zk_log}"
    );
    assert!(!zk_log.contains("problem reading snap file"), "{zk_log}");
    if mode == Snap::Sliced {
        // The tree moved during the walk: no digest to check, as with ZooKeeper's own
        // snapshots taken before it has one.
        assert!(
            zk_log.contains("The digest value is empty in snapshot"),
            "{zk_log}"
        );
    } else {
        assert!(
            zk_log.contains("The digest in the snapshot has digest version of 2"),
            "{zk_log}"
        );
    }
    assert!(!zk_log.contains("Digests are not matching"), "{zk_log}");

    let newest = valid_snapshots(&data, 1).unwrap().remove(0);
    assert_eq!(newest.zxid, p.tree.last_processed_zxid());
    let theirs = load_snapshot_full(&newest.path).unwrap();
    assert_same_tree(&theirs.tree, &p.tree);
    assert!(counted, "{srvr} vs {} nodes", p.tree.node_count());
    assert_eq!(theirs.sessions.len(), p.sessions.len());
    let mut got = theirs.sessions.clone();
    got.sort();
    assert_eq!(got, p.session_table());
    assert_eq!(
        theirs.meta.digest.map(|d| d.digest),
        Some(theirs.meta.computed_digest)
    );
    // `OXK_KEEP_DIR=<path>` keeps the directory for manual checks with ZooKeeper's tools
    // (the other modes' in `<path>-sliced` and `<path>-late`).
    if let Some(mut keep) = std::env::var_os("OXK_KEEP_DIR") {
        match mode {
            Snap::Exact => {}
            Snap::Sliced => keep.push("-sliced"),
            Snap::Late => keep.push("-late"),
        }
        copy_dir(d.path(), Path::new(&keep));
    }
}
