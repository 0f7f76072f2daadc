#![allow(clippy::unwrap_used)]
//! `oxkeeper cli`: one command from the command line, commands from stdin, and the
//! interactive shell under a pseudo-terminal — each checked against zkCli.sh's output.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestServer;

/// What a run of the shell printed.
#[derive(Debug)]
struct Run {
    code: i32,
    out: String,
    err: String,
}

fn command(server: &str, home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxkeeper"));
    cmd.arg("cli")
        .arg("--server")
        .arg(server)
        .env("TZ", "UTC")
        .env("HOME", home)
        .env_remove("OXKEEPER_LOG");
    cmd
}

/// `oxkeeper cli --server ADDR args...` with no standard input.
fn cli(s: &TestServer, args: &[&str]) -> Run {
    let out = command(&s.addr, s.dir.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8(out.stdout).unwrap(),
        err: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `oxkeeper cli --server ADDR` reading `input` on a pipe.
fn script(s: &TestServer, input: &str) -> Run {
    let mut child = command(&s.addr, s.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8(out.stdout).unwrap(),
        err: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs a command that must succeed and print nothing on stderr; returns its stdout.
#[track_caller]
fn ok(s: &TestServer, args: &[&str]) -> String {
    let r = cli(s, args);
    assert_eq!((r.code, r.err.as_str()), (0, ""), "{args:?}: {r:?}");
    r.out
}

/// Runs a command that must fail with `code`, print nothing on stdout and `err` on stderr.
#[track_caller]
fn fails(s: &TestServer, args: &[&str], code: i32, err: &str) {
    let r = cli(s, args);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.as_str()),
        (code, "", err),
        "{args:?}"
    );
}

#[track_caller]
fn created(s: &TestServer, args: &[&str], path: &str) {
    let r = cli(s, args);
    assert_eq!(
        (r.code, r.out.as_str(), r.err.clone()),
        (0, "", format!("Created {path}\n")),
        "{args:?}"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The node's stat, read with another client.
fn stat_of(s: &TestServer, path: &str) -> zookeeper_client::Stat {
    runtime().block_on(async {
        let client = zookeeper_client::Client::connect(&s.addr).await.unwrap();
        client.check_stat(path).await.unwrap().unwrap()
    })
}

/// Java's `Date.toString()` in UTC: `Thu Jan 01 00:00:00 UTC 1970`.
fn java_date_utc(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday} {} {day:02} {:02}:{:02}:{:02} UTC {year}",
        months[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// zkCli's stat lines for the node as it is now.
fn stat_text(s: &TestServer, path: &str) -> String {
    let st = stat_of(s, path);
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\n\
         cversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\n\
         dataLength = {}\nnumChildren = {}\n",
        st.czxid,
        java_date_utc(st.ctime),
        st.mzxid,
        java_date_utc(st.mtime),
        st.pzxid,
        st.cversion,
        st.version,
        st.aversion,
        st.ephemeral_owner,
        st.data_length,
        st.num_children
    )
}

const OPEN_ACL: &str = "'world,'anyone\n: cdrwa\n";

#[test]
fn java_dates() {
    assert_eq!(java_date_utc(0), "Thu Jan 01 00:00:00 UTC 1970");
    assert_eq!(
        java_date_utc(1_700_000_000_123),
        "Tue Nov 14 22:13:20 UTC 2023"
    );
}

#[test]
fn one_shot_reads() {
    let s = TestServer::start();
    created(&s, &["create", "/r", "root data"], "/r");
    created(&s, &["create", "/r/b", "bee"], "/r/b");
    created(&s, &["create", "/r/a"], "/r/a");
    created(&s, &["create", "/r/a/x", "x"], "/r/a/x");

    assert_eq!(ok(&s, &["ls", "/r"]), "[a, b]\n");
    assert_eq!(
        ok(&s, &["ls", "-s", "/r"]),
        format!("[a, b]\n{}", stat_text(&s, "/r"))
    );
    assert_eq!(ok(&s, &["ls", "-R", "/r"]), "/r\n/r/a\n/r/b\n/r/a/x\n");
    assert_eq!(ok(&s, &["get", "/r"]), "root data\n");
    assert_eq!(ok(&s, &["get", "/r/a"]), "\n");
    assert_eq!(
        ok(&s, &["get", "-s", "/r"]),
        format!("root data\n{}", stat_text(&s, "/r"))
    );
    assert_eq!(ok(&s, &["stat", "/r/b"]), stat_text(&s, "/r/b"));
    assert_eq!(ok(&s, &["getAcl", "/r"]), OPEN_ACL);
    assert_eq!(
        ok(&s, &["getAcl", "-s", "/r"]),
        format!("{OPEN_ACL}{}", stat_text(&s, "/r"))
    );
    assert_eq!(ok(&s, &["getAllChildrenNumber", "/r"]), "3\n");
    assert_eq!(ok(&s, &["getEphemerals"]), "[]\n");
    assert_eq!(ok(&s, &["getEphemerals", "/r"]), "[]\n");
    assert_eq!(ok(&s, &["sync", "/r"]), "Sync is OK\n");
    assert_eq!(ok(&s, &["whoami"]), "Auth scheme: User\nip: 127.0.0.1\n");
    assert_eq!(
        ok(&s, &["config", "-s"]),
        format!("\n{}", stat_text(&s, "/zookeeper/config"))
    );
    // Watches can be set; the session ends right after.
    assert_eq!(ok(&s, &["get", "-w", "/r/b"]), "bee\n");
    assert_eq!(ok(&s, &["ls", "-w", "/r"]), "[a, b]\n");
    assert_eq!(ok(&s, &["stat", "-w", "/r/b"]), stat_text(&s, "/r/b"));
    assert_eq!(ok(&s, &["addWatch", "/r"]), "");
    assert_eq!(ok(&s, &["addWatch", "-m", "PERSISTENT", "/r"]), "");

    // No session needed for these.
    assert_eq!(
        ok(&s, &["version"]),
        format!("oxkeeper CLI version: {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = ok(&s, &["help"]);
    assert!(help.starts_with("oxkeeper cli [--server host:port] cmd args\n"));
    assert!(help.contains("\tget [-s] [-w] path\n"), "{help}");
    assert!(help.contains("\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]\n"));
    // Quoted words and words starting with '-' after `--` reach the command whole.
    assert_eq!(ok(&s, &["set", "/r/b", "--", "-1"]), "");
    assert_eq!(ok(&s, &["get", "/r/b"]), "-1\n");
}

#[test]
fn one_shot_writes() {
    let s = TestServer::start();
    created(&s, &["create", "/w"], "/w");
    created(&s, &["create", "-s", "/w/seq-"], "/w/seq-0000000000");
    created(&s, &["create", "-s", "/w/seq-", "d"], "/w/seq-0000000001");
    created(&s, &["create", "-c", "/w/box"], "/w/box");
    // An ephemeral goes when its session does: at the end of the command.
    created(&s, &["create", "-e", "/w/eph"], "/w/eph");
    fails(&s, &["get", "/w/eph"], 1, "Node does not exist: /w/eph\n");
    created(&s, &["create", "-e", "-s", "/w/es"], "/w/es0000000004");
    // Four children created, two ephemerals created and gone.
    assert_eq!(stat_of(&s, "/w").cversion, 7);

    // set, with and without a version and -s.
    assert_eq!(ok(&s, &["set", "/w", "one"]), "");
    assert_eq!(ok(&s, &["set", "-s", "/w", "two"]), stat_text(&s, "/w"));
    assert_eq!(stat_of(&s, "/w").version, 2);
    assert_eq!(ok(&s, &["set", "-v", "2", "/w", "three"]), "");
    fails(
        &s,
        &["set", "-v", "2", "/w", "four"],
        1,
        "version No is not valid : /w\n",
    );
    assert_eq!(ok(&s, &["get", "/w"]), "three\n");

    // ACLs: created with one, changed with setAcl.
    created(
        &s,
        &["create", "/w/acl", "d", "world:anyone:r,ip:127.0.0.1:cdrwa"],
        "/w/acl",
    );
    assert_eq!(
        ok(&s, &["getAcl", "/w/acl"]),
        "'world,'anyone\n: r\n'ip,'127.0.0.1\n: cdrwa\n"
    );
    assert_eq!(ok(&s, &["setAcl", "/w/acl", "world:anyone:cdrw"]), "");
    assert_eq!(ok(&s, &["getAcl", "/w/acl"]), "'world,'anyone\n: cdrw\n");
    fails(
        &s,
        &["setAcl", "/w/acl", "world:anyone:cdrwa"],
        1,
        "Insufficient permission : /w/acl\n",
    );
    created(&s, &["create", "/w/acl2"], "/w/acl2");
    fails(
        &s,
        &["setAcl", "-v", "3", "/w/acl2", "world:anyone:cdrwa"],
        1,
        "version No is not valid : /w/acl2\n",
    );
    assert_eq!(
        ok(
            &s,
            &["setAcl", "-s", "-v", "0", "/w/acl2", "world:anyone:cdrwa"]
        ),
        stat_text(&s, "/w/acl2")
    );
    assert_eq!(stat_of(&s, "/w/acl2").aversion, 1);
    // -R: the node and everything under it.
    created(&s, &["create", "/w/acl2/c"], "/w/acl2/c");
    created(&s, &["create", "/w/acl2/c/g"], "/w/acl2/c/g");
    assert_eq!(
        ok(&s, &["setAcl", "-R", "/w/acl2", "world:anyone:cdra"]),
        ""
    );
    for p in ["/w/acl2", "/w/acl2/c", "/w/acl2/c/g"] {
        assert_eq!(ok(&s, &["getAcl", p]), "'world,'anyone\n: cdra\n", "{p}");
    }

    // delete, with a version; deleteall.
    fails(
        &s,
        &["delete", "-v", "7", "/w/box"],
        1,
        "version No is not valid : /w/box\n",
    );
    assert_eq!(ok(&s, &["delete", "-v", "0", "/w/box"]), "");
    fails(&s, &["delete", "/w"], 1, "Node not empty: /w\n");
    assert_eq!(ok(&s, &["deleteall", "/w/acl2"]), "");
    assert_eq!(ok(&s, &["deleteall", "-b", "1", "/w"]), "");
    fails(&s, &["ls", "/w"], 1, "Node does not exist: /w\n");
    assert_eq!(ok(&s, &["ls", "/"]), "[zookeeper]\n");
}

#[test]
fn one_shot_ttl_nodes() {
    let s = TestServer::start_with(&["extendedTypesEnabled=true"]);
    created(&s, &["create", "-t", "60000", "/ttl", "d"], "/ttl");
    created(
        &s,
        &["create", "-t", "60000", "-s", "/ttls-"],
        "/ttls-0000000001",
    );
    assert_eq!(ok(&s, &["get", "/ttl"]), "d\n");
}

#[test]
fn one_shot_errors() {
    let s = TestServer::start();
    created(&s, &["create", "/e", "data"], "/e");
    created(&s, &["create", "/e/c"], "/e/c");

    fails(&s, &["get", "/nope"], 1, "Node does not exist: /nope\n");
    fails(
        &s,
        &["ls", "-R", "/nope"],
        1,
        "Node does not exist: /nope\n",
    );
    fails(&s, &["stat", "/nope"], 1, "Node does not exist: /nope\n");
    fails(
        &s,
        &["set", "/nope", "x"],
        1,
        "Node does not exist: /nope\n",
    );
    fails(&s, &["delete", "/nope"], 1, "Node does not exist: /nope\n");
    fails(
        &s,
        &["deleteall", "/nope"],
        1,
        "Node does not exist: /nope\n",
    );
    fails(&s, &["getAcl", "/nope"], 1, "Node does not exist: /nope\n");
    fails(
        &s,
        &["setAcl", "/nope", "world:anyone:r"],
        1,
        "Node does not exist: /nope\n",
    );
    fails(
        &s,
        &["getAllChildrenNumber", "/nope"],
        1,
        "Node does not exist: /nope\n",
    );
    fails(&s, &["create", "/e"], 1, "Node already exists: /e\n");
    fails(&s, &["create", "/"], 1, "Node already exists: /\n");
    fails(&s, &["create", "/x/y"], 1, "Node does not exist: /x/y\n");
    fails(&s, &["delete", "/"], 1, "Arguments are not valid : /\n");

    // Ephemerals cannot have children (the parent lives as long as one session).
    let r = script(&s, "create -e /eph\ncreate /eph/child\n");
    assert_eq!(
        r.err,
        "Created /eph\nEphemerals cannot have children: /eph/child\n"
    );
    assert_eq!(r.code, 1);

    // Paths.
    fails(&s, &["get", "e"], 1, "Path must start with / character\n");
    fails(
        &s,
        &["get", "/e/"],
        1,
        "Path must not end with / character\n",
    );
    fails(
        &s,
        &["get", "/e//c"],
        1,
        "Invalid path string \"/e//c\" caused by empty node name specified @3\n",
    );
    fails(
        &s,
        &["create", "/e/./x"],
        1,
        "Invalid path string \"/e/./x\" caused by relative paths not allowed @3\n",
    );

    // ACLs: unreadable nodes, malformed lists.
    created(&s, &["create", "/locked", "d", "world:anyone:c"], "/locked");
    fails(
        &s,
        &["get", "/locked"],
        1,
        "Insufficient permission : /locked\n",
    );
    fails(
        &s,
        &["ls", "/locked"],
        1,
        "Insufficient permission : /locked\n",
    );
    fails(
        &s,
        &["setAcl", "/e", "foo"],
        1,
        "foo does not have the form scheme:id:perm\nAcl is not valid : null\n",
    );
    fails(
        &s,
        &["create", "/bad", "d", "foo"],
        1,
        "foo does not have the form scheme:id:perm\nKeeperErrorCode = InvalidACL\nAcl is not valid : null\n",
    );
    fails(
        &s,
        &["create", "/bad", "d", "bogus:x:r"],
        1,
        "KeeperErrorCode = InvalidACL for /bad\nAcl is not valid : /bad\n",
    );
    let r = cli(&s, &["create", "/odd", "d", "world:anyone:rxz"]);
    assert_eq!(
        (r.code, r.err.as_str()),
        (
            0,
            "Unknown perm type: x\nUnknown perm type: z\nCreated /odd\n"
        )
    );

    // Options and arguments.
    fails(&s, &["get"], 1, "get [-s] [-w] path\n");
    fails(&s, &["set", "/e"], 1, "set [-s] [-v version] path data\n");
    fails(
        &s,
        &["ls", "-z", "/"],
        1,
        "Unrecognized option: -z\nls [-s] [-w] [-R] path\n",
    );
    fails(
        &s,
        &["delete", "-v", "abc", "/e/c"],
        1,
        "-v argument must be an int value\n",
    );
    fails(
        &s,
        &["deleteall", "-b", "x", "/e"],
        1,
        "-b argument must be an int value\n",
    );
    fails(
        &s,
        &["create", "-c", "-e", "/e/z"],
        1,
        "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.\n",
    );
    fails(
        &s,
        &["create", "-t", "abc", "/e/z"],
        1,
        "-t argument must be a long value\n",
    );
    fails(
        &s,
        &["create", "-t", "100", "-e", "/e/z"],
        1,
        "TTLs cannot be used with Ephemeral znodes\n",
    );
    fails(
        &s,
        &["create", "-t", "0", "/e/z"],
        1,
        "ttl must be positive and cannot be larger than: 1099511627775\n",
    );
    fails(
        &s,
        &["addWatch", "-m", "ONCE", "/e"],
        1,
        "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE\n",
    );
    fails(
        &s,
        &["removewatches", "/e"],
        1,
        "KeeperErrorCode = No such watcher for /e\n",
    );

    // An unknown command: the usage, then zkCli's complaint, and status 127.
    let r = cli(&s, &["bogus", "/"]);
    assert_eq!((r.code, r.out.as_str()), (127, ""));
    assert!(r
        .err
        .starts_with("oxkeeper cli [--server host:port] cmd args\n\taddWatch"));
    assert!(r
        .err
        .ends_with("\twhoami\nCommand not found: Command not found bogus\n"));

    // No server.
    let r = command("127.0.0.1:1", s.dir.path())
        .args(["ls", "/"])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    assert!(r.stdout.is_empty());
    let err = String::from_utf8(r.stderr).unwrap();
    assert!(err.starts_with("Cannot connect to 127.0.0.1:1: "), "{err}");
}

#[test]
fn script_mode() {
    let s = TestServer::start();
    let r = script(
        &s,
        "create /s one\n\
         \n\
         set /s 'two words'\n\
         get /s\n\
         create /s/secret hidden digest:alice:Ixk9jMTa8bTnIN8COfaG3+RzQ1U=:cdrwa\n\
         get /s/secret\n\
         addauth digest alice:wonderland\n\
         whoami\n\
         get /s/secret\n\
         create /s/mine m auth::cdrwa\n\
         getAcl /s/mine\n\
         create -e /s/eph\n\
         getEphemerals /s\n\
         history\n\
         redo 3\n\
         redo 99\n\
         close\n\
         ls /s\n\
         connect\n\
         ls /s\n\
         quit\n\
         ls /never\n",
    );
    assert_eq!(
        r.out,
        "two words\n\
         Auth scheme: User\n\
         ip: 127.0.0.1\n\
         digest: alice\n\
         hidden\n\
         'digest,'alice:Ixk9jMTa8bTnIN8COfaG3+RzQ1U=\n: cdrwa\n\
         [/s/eph]\n\
         2 - get /s\n\
         3 - create /s/secret hidden digest:alice:Ixk9jMTa8bTnIN8COfaG3+RzQ1U=:cdrwa\n\
         4 - get /s/secret\n\
         5 - addauth digest alice:wonderland\n\
         6 - whoami\n\
         7 - get /s/secret\n\
         8 - create /s/mine m auth::cdrwa\n\
         9 - getAcl /s/mine\n\
         10 - create -e /s/eph\n\
         11 - getEphemerals /s\n\
         12 - history\n\
         \n\
         WATCHER::\n\
         \n\
         WatchedEvent state:Closed type:None path:null\n\
         Not connected\n\
         Connecting to {addr}\n\
         [mine, secret]\n"
            .replace("{addr}", &s.addr)
    );
    assert_eq!(
        r.err,
        "Created /s\n\
         Created /s/secret\n\
         Insufficient permission : /s/secret\n\
         Created /s/mine\n\
         Created /s/eph\n\
         Node already exists: /s/secret\n\
         Command index out of range\n"
    );
    // The last command that failed decides the status; `quit` stopped the script.
    assert_eq!(r.code, 1);

    // All commands succeeding: status 0.
    let r = script(&s, "ls /s\nstat /s\n");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.out, format!("[mine, secret]\n{}", stat_text(&s, "/s")));
    assert_eq!(r.err, "");
}

#[test]
fn script_watches() {
    let s = TestServer::start();
    let event = |kind: &str, path: &str| {
        format!("\nWATCHER::\n\nWatchedEvent state:SyncConnected type:{kind} path:{path}\n")
    };
    let r = script(
        &s,
        "create /w\n\
         get -w /w\n\
         stat -w /w\n\
         ls -w /w\n\
         set /w data\n\
         create /w/c\n\
         set /w more\n\
         addWatch /w\n\
         set /w/c 1\n\
         addWatch -m PERSISTENT /w/c\n\
         set /w/c 2\n\
         delete /w/c\n\
         removewatches /w\n\
         set /w again\n\
         get -w /w\n\
         ls -w /w\n\
         removewatches /w -d\n\
         removewatches /w -d\n\
         removewatches /w -c -l\n\
         stat -w /nope\n\
         create /nope\n\
         printwatches off\n\
         get -w /w\n\
         set /w quiet\n\
         printwatches\n",
    );
    // `get -w /w` printed its empty data, then `stat -w /w` the stat as it was then.
    let (head, rest) = r.out.split_once("numChildren = 0\n").unwrap();
    assert!(head.starts_with("\ncZxid = "), "{head}");
    let expected = [
        "[]\n".to_owned(),
        // One event for get -w and stat -w together, as zkCli's single watcher prints.
        event("NodeDataChanged", "/w"),
        event("NodeChildrenChanged", "/w"),
        // addWatch (recursive) on /w, then a persistent one on /w/c too: one event each.
        event("NodeDataChanged", "/w/c"),
        event("NodeDataChanged", "/w/c"),
        event("NodeDeleted", "/w/c"),
        event("PersistentWatchRemoved", "/w"),
        "again\n".to_owned(),
        "[]\n".to_owned(),
        event("DataWatchRemoved", "/w"),
        event("ChildWatchRemoved", "/w"),
        event("NodeCreated", "/nope"),
        "again\n".to_owned(),
        "printwatches is off\n".to_owned(),
    ];
    assert_eq!(rest, expected.concat(), "{}", r.out);
    assert_eq!(
        r.err,
        "Created /w\n\
         Created /w/c\n\
         KeeperErrorCode = No such watcher for /w\n\
         Node does not exist: /nope\n\
         Created /nope\n"
    );
    assert_eq!(r.code, 1);
}

/// A terminal: the shell under a pseudo-terminal, its output kept as a screen.
struct Term {
    screen: Arc<Mutex<vt100::Parser>>,
    writer: Arc<Mutex<Box<dyn Write + Send>>>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Term {
    fn start(addr: &str, home: &Path) -> Term {
        use portable_pty::{native_pty_system, CommandBuilder, PtySize};
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 60,
                cols: 120,
                pixel_width: 0,
                pixel_height: 0,
            })
            .unwrap();
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_oxkeeper"));
        cmd.args(["cli", "--server", addr]);
        cmd.env("HOME", home);
        cmd.env("TZ", "UTC");
        cmd.env("TERM", "xterm-256color");
        cmd.env_remove("OXKEEPER_LOG");
        let child = pair.slave.spawn_command(cmd).unwrap();
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().unwrap();
        let writer = Arc::new(Mutex::new(pair.master.take_writer().unwrap()));
        let screen = Arc::new(Mutex::new(vt100::Parser::new(60, 120, 0)));
        {
            let (screen, writer) = (screen.clone(), writer.clone());
            // The master must stay open while the shell runs.
            let master = pair.master;
            std::thread::spawn(move || {
                let _master = master;
                let mut buf = [0u8; 4096];
                let mut tail = Vec::new();
                while let Ok(n) = reader.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut parser = screen.lock().unwrap();
                    parser.process(&buf[..n]);
                    // Answer "where is the cursor?" as a terminal would.
                    tail.extend_from_slice(&buf[..n]);
                    let asks = tail.windows(4).filter(|w| w == b"\x1b[6n").count();
                    if tail.len() > 3 {
                        tail.drain(..tail.len() - 3);
                    }
                    for _ in 0..asks {
                        let (row, col) = parser.screen().cursor_position();
                        let answer = format!("\x1b[{};{}R", row + 1, col + 1);
                        let _ = writer.lock().unwrap().write_all(answer.as_bytes());
                    }
                }
            });
        }
        Term {
            screen,
            writer,
            child,
        }
    }

    fn send(&self, keys: &str) {
        let mut w = self.writer.lock().unwrap();
        w.write_all(keys.as_bytes()).unwrap();
        w.flush().unwrap();
    }

    fn contents(&self) -> String {
        self.screen.lock().unwrap().screen().contents()
    }

    /// The last line showing a prompt, and what was typed after it.
    fn prompt_line(&self) -> String {
        self.contents()
            .lines()
            .rev()
            .find(|l| l.starts_with("[zk: "))
            .unwrap_or_default()
            .to_owned()
    }

    #[track_caller]
    fn wait_for(&self, what: &str, f: impl Fn(&Term) -> bool) {
        let end = Instant::now() + Duration::from_secs(15);
        while Instant::now() < end {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; screen:\n{}", self.contents());
    }

    #[track_caller]
    fn wait_text(&self, text: &str) {
        self.wait_for(text, |t| t.contents().contains(text));
    }

    #[track_caller]
    fn wait_prompt(&self, prompt_and_input: &str) {
        self.wait_for(prompt_and_input, |t| t.prompt_line() == prompt_and_input);
    }

    fn wait_exit(&mut self) -> portable_pty::ExitStatus {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < end,
                "the shell did not exit:\n{}",
                self.contents()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const UP: &str = "\x1b[A";

#[test]
fn interactive_shell() {
    let s = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let mut t = Term::start(&s.addr, home.path());
    let prompt = |n: usize| format!("[zk: {}(CONNECTED) {n}] ", s.addr);

    t.wait_prompt(&prompt(0));
    let welcome = t.contents();
    assert!(
        welcome.starts_with(&format!(
            "Connecting to {}\nWelcome to the oxkeeper shell! Type help for the commands.\n\n\
             WATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n",
            s.addr
        )),
        "{welcome}"
    );

    t.send("create /apple red\r");
    t.wait_prompt(&prompt(1));
    t.send("create /apricot\r");
    t.wait_prompt(&prompt(2));
    t.send("create /apricot/stone hard\r");
    t.wait_prompt(&prompt(3));
    assert!(t.contents().contains("Created /apricot/stone\n"));

    // TAB completes a command name, then each path component from the server's children.
    t.send("getAl\t");
    t.wait_prompt(&format!("{}getAllChildrenNumber ", prompt(3)));
    t.send("/apr\t");
    t.wait_prompt(&format!("{}getAllChildrenNumber /apricot", prompt(3)));
    t.send("\r");
    t.wait_prompt(&prompt(4));
    t.send("get /apr\t");
    t.wait_prompt(&format!("{}get /apricot", prompt(4)));
    t.send("/s\t");
    t.wait_prompt(&format!("{}get /apricot/stone", prompt(4)));
    t.send("\r");
    t.wait_prompt(&prompt(5));
    assert!(
        t.contents()
            .contains(&format!("{}get /apricot/stone\nhard\n", prompt(4))),
        "{}",
        t.contents()
    );

    // Two candidates: the first TAB completes their common part, the second lists them.
    t.send("ls /a\t");
    t.wait_prompt(&format!("{}ls /ap", prompt(5)));
    t.send("\t");
    t.wait_text("apple    apricot");
    t.send("\x15"); // Ctrl-U: drop the line.
    t.wait_prompt(&prompt(5));

    // Up arrow: the previous commands.
    t.send(UP);
    t.wait_prompt(&format!("{}get /apricot/stone", prompt(5)));
    t.send(UP);
    t.wait_prompt(&format!("{}getAllChildrenNumber /apricot", prompt(5)));
    t.send("\r");
    t.wait_prompt(&prompt(6));
    assert!(t
        .contents()
        .contains(&format!("{}getAllChildrenNumber /apricot\n1\n", prompt(5))));

    // A watch event arrives while the prompt waits: it is printed above the prompt.
    t.send("get -w /apple\r");
    t.wait_prompt(&prompt(7));
    t.send("ls /");
    let other = cli(&s, &["set", "/apple", "green"]);
    assert_eq!(other.code, 0, "{other:?}");
    t.wait_text("WATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:/apple\n");
    // ... and the line being typed is still there.
    t.wait_prompt(&format!("{}ls /", prompt(7)));
    t.send("\r");
    t.wait_prompt(&prompt(8));
    assert!(t.contents().contains("[apple, apricot, zookeeper]\n"));

    // Errors print as zkCli prints them; the shell goes on.
    t.send("get /nope\r");
    t.wait_prompt(&prompt(9));
    assert!(t.contents().contains("Node does not exist: /nope\n"));

    // close / connect: the prompt follows the session's state.
    t.send("close\r");
    t.wait_prompt(&format!("[zk: {}(CLOSED) 10] ", s.addr));
    t.send("ls /\r");
    t.wait_prompt(&format!("[zk: {}(CLOSED) 11] ", s.addr));
    assert!(t
        .contents()
        .contains("WatchedEvent state:Closed type:None path:null\n"));
    assert!(t.contents().contains("ls /\nNot connected\n"));
    t.send(&format!("connect {}\r", s.addr));
    t.wait_prompt(&prompt(12));

    t.send("history\r");
    t.wait_prompt(&prompt(13));
    assert!(
        t.contents().contains(
            "3 - getAllChildrenNumber /apricot\n4 - get /apricot/stone\n\
             5 - getAllChildrenNumber /apricot\n6 - get -w /apple\n7 - ls /\n\
             8 - get /nope\n9 - close\n10 - ls /\n"
        ),
        "{}",
        t.contents()
    );

    t.send("quit\r");
    assert!(t.wait_exit().success());
    let saved = std::fs::read_to_string(home.path().join(".oxkeeper_cli_history")).unwrap();
    assert!(saved.contains("\ncreate /apple red\n"), "{saved}");
    assert!(saved.ends_with("history\nquit\n"), "{saved}");

    // The next shell starts with that history; Ctrl-D leaves it.
    let mut t = Term::start(&s.addr, home.path());
    t.wait_prompt(&prompt(0));
    t.send(UP);
    t.wait_prompt(&format!("{}quit", prompt(0)));
    t.send(UP);
    t.wait_prompt(&format!("{}history", prompt(0)));
    t.send("\x15\x04");
    assert!(t.wait_exit().success());
}

#[test]
fn interactive_without_server() {
    let home = tempfile::tempdir().unwrap();
    let mut t = Term::start("127.0.0.1:1", home.path());
    t.wait_prompt("[zk: 127.0.0.1:1(CLOSED) 0] ");
    assert!(t.contents().contains("Cannot connect to 127.0.0.1:1: "));
    // Completion with no session offers nothing and does not hang.
    t.send("ls /zoo\t");
    t.send("\r");
    t.wait_prompt("[zk: 127.0.0.1:1(CLOSED) 1] ");
    assert!(t.contents().contains("ls /zoo\nNot connected\n"));
    t.send("exit\r");
    assert!(t.wait_exit().success());
}
