//! Four-letter words through the real binary.
//!
//! Expectations were checked against Apache ZooKeeper 3.8 (`OXKEEPER_TEST_EXTERNAL`; the whitelist
//! test with `OXKEEPER_TEST_EXTERNAL_SPECIAL`). Exact counts are asserted only on a server used by
//! the test alone (`TestServer::is_fresh`).

mod common;

use common::TestServer;
use zookeeper_client::{Acls, CreateMode, CreateOptions};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

/// The value after `prefix` on the line starting with it.
fn line_value<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

fn mntr_num(server: &TestServer, key: &str) -> i64 {
    server
        .mntr_value(key)
        .unwrap_or_else(|| panic!("{key} missing from mntr"))
        .parse()
        .unwrap_or_else(|e| panic!("{key} is not a number: {e}"))
}

#[tokio::test]
async fn ruok_and_isro() {
    let server = TestServer::start();
    assert_eq!(server.four_letter("ruok"), "imok");
    assert_eq!(server.four_letter("isro"), "rw");
}

#[tokio::test]
async fn srvr_and_stat() {
    let server = TestServer::start();
    let fresh = server.is_fresh();
    let srvr = server.four_letter("srvr");
    assert!(srvr.starts_with("Zookeeper version: "), "{srvr}");
    let lines: Vec<&str> = srvr
        .lines()
        .map(|l| l.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        lines,
        vec![
            "Zookeeper version",
            "Latency min/avg/max",
            "Received",
            "Sent",
            "Connections",
            "Outstanding",
            "Zxid",
            "Mode",
            "Node count"
        ],
        "{srvr}"
    );
    assert!(srvr.ends_with('\n'));
    assert_eq!(line_value(&srvr, "Mode: "), "standalone");
    assert_eq!(line_value(&srvr, "Outstanding: "), "0");
    let latency = line_value(&srvr, "Latency min/avg/max: ");
    assert_eq!(latency.split('/').count(), 3, "{latency}");
    let zxid = line_value(&srvr, "Zxid: ");
    assert!(zxid.starts_with("0x"), "{zxid}");
    if fresh {
        assert_eq!(
            line_value(&srvr, "Node count: "),
            "5",
            "/, /zookeeper, quota and config count as 5"
        );
        assert_eq!(zxid, "0x0");
    }

    let zk = common::client(&server).await;
    let p = server.path("fl_srvr");
    let (stat, _) = zk.create(&p, b"", &PERSISTENT).await.expect("create");
    let srvr = server.four_letter("srvr");
    let zxid = i64::from_str_radix(line_value(&srvr, "Zxid: ").trim_start_matches("0x"), 16)
        .expect("hex zxid");
    assert!(
        zxid >= stat.czxid,
        "Zxid {zxid:#x} behind the create's {:#x}",
        stat.czxid
    );
    let connections: i64 = line_value(&srvr, "Connections: ").parse().expect("number");
    assert!(
        connections >= 2,
        "the client and this 4lw connection: {connections}"
    );
    if fresh {
        assert_eq!(line_value(&srvr, "Node count: "), "6");
        assert_eq!(zxid, stat.czxid, "createSession, then the create");
        assert_eq!(connections, 2);
    }

    let stat_out = server.four_letter("stat");
    assert!(stat_out.starts_with("Zookeeper version: "), "{stat_out}");
    let clients_at = stat_out
        .find("\nClients:\n")
        .unwrap_or_else(|| panic!("{stat_out}"));
    let rest = &stat_out[clients_at + "\nClients:\n".len()..];
    assert!(rest.starts_with(" /127.0.0.1:"), "{stat_out}");
    let blank = rest
        .find("\n\n")
        .unwrap_or_else(|| panic!("client list ends with a blank line: {stat_out}"));
    let after = &rest[blank + 2..];
    assert!(after.starts_with("Latency min/avg/max: "), "{stat_out}");
    assert_eq!(line_value(after, "Mode: "), "standalone");
    if fresh {
        assert_eq!(rest[..blank].lines().count(), 2, "{stat_out}");
        assert_eq!(line_value(after, "Node count: "), "6");
    }
}

#[tokio::test]
async fn mntr_keys() {
    let server = TestServer::start();
    let fresh = server.is_fresh();
    let mntr = server.four_letter("mntr");
    for line in mntr.lines() {
        assert_eq!(
            line.split('\t').count(),
            2,
            "mntr lines are key<TAB>value: {line:?}"
        );
    }
    for key in [
        "zk_version",
        "zk_server_state",
        "zk_znode_count",
        "zk_watch_count",
        "zk_ephemerals_count",
        "zk_num_alive_connections",
        "zk_approximate_data_size",
        "zk_outstanding_requests",
        "zk_avg_latency",
        "zk_max_latency",
        "zk_min_latency",
        "zk_packets_received",
        "zk_packets_sent",
        "zk_open_file_descriptor_count",
        "zk_max_file_descriptor_count",
        "zk_uptime",
    ] {
        assert!(
            mntr.lines().any(|l| l.split('\t').next() == Some(key)),
            "{key} missing:\n{mntr}"
        );
    }
    assert_eq!(
        server.mntr_value("zk_server_state").as_deref(),
        Some("standalone")
    );
    assert_eq!(mntr_num(&server, "zk_outstanding_requests"), 0);
    let version = server.mntr_value("zk_version").expect("zk_version");
    let srvr = server.four_letter("srvr");
    assert_eq!(
        line_value(&srvr, "Zookeeper version: "),
        version,
        "mntr and srvr agree on the version"
    );
    let size0 = mntr_num(&server, "zk_approximate_data_size");
    if fresh {
        assert_eq!(mntr_num(&server, "zk_znode_count"), 5);
        assert_eq!(mntr_num(&server, "zk_watch_count"), 0);
        assert_eq!(mntr_num(&server, "zk_ephemerals_count"), 0);
        assert_eq!(
            mntr_num(&server, "zk_num_alive_connections"),
            1,
            "just this one"
        );
        assert_eq!(
            size0, 44,
            "path lengths of '', '/', /zookeeper, /zookeeper/quota, /zookeeper/config"
        );
    }

    let zk = common::client(&server).await;
    let p = server.path("fl_mntr");
    zk.create(&p, b"12345", &PERSISTENT).await.expect("create");
    zk.create(&format!("{p}/e"), b"", &EPHEMERAL)
        .await
        .expect("ephemeral");
    let (_, _, _w) = zk.get_and_watch_data(&p).await.expect("watch");
    let (_, _w2) = zk.list_and_watch_children(&p).await.expect("child watch");
    assert!(mntr_num(&server, "zk_num_alive_connections") >= 2);
    if fresh {
        assert_eq!(mntr_num(&server, "zk_znode_count"), 7);
        assert_eq!(mntr_num(&server, "zk_watch_count"), 2);
        assert_eq!(mntr_num(&server, "zk_ephemerals_count"), 1);
        assert_eq!(mntr_num(&server, "zk_num_alive_connections"), 2);
        let expect = size0 + p.len() as i64 + 5 + (p.len() + 2) as i64;
        assert_eq!(
            mntr_num(&server, "zk_approximate_data_size"),
            expect,
            "paths plus data"
        );
    }
}

#[tokio::test]
async fn conf_envi_dirs() {
    let server = TestServer::start();
    let conf = server.four_letter("conf");
    for line in [
        "tickTime=200",
        "minSessionTimeout=400",
        "maxSessionTimeout=4000",
        "maxClientCnxns=0",
    ] {
        assert!(
            conf.lines().any(|l| l == line),
            "{line} missing from conf:\n{conf}"
        );
    }
    for key in ["clientPort=", "dataDir=", "dataLogDir="] {
        assert!(
            conf.lines().any(|l| l.starts_with(key)),
            "{key} missing from conf:\n{conf}"
        );
    }

    let envi = server.four_letter("envi");
    assert!(envi.starts_with("Environment:\n"), "{envi}");
    assert!(
        envi.lines().any(|l| l.starts_with("zookeeper.version=")),
        "{envi}"
    );
    assert!(envi.lines().any(|l| l.starts_with("host.name=")), "{envi}");
    assert!(envi.lines().any(|l| l.starts_with("os.name=")), "{envi}");

    let dirs = server.four_letter("dirs");
    let lines: Vec<&str> = dirs.lines().collect();
    assert_eq!(lines.len(), 2, "{dirs}");
    let data: u64 = line_value(&dirs, "datadir_size: ")
        .parse()
        .expect("datadir_size is a number");
    let log: u64 = line_value(&dirs, "logdir_size: ")
        .parse()
        .expect("logdir_size is a number");
    let _ = (data, log);
}

#[tokio::test]
async fn cons_crst_srst() {
    let server = TestServer::start();
    let zk = common::client(&server).await;
    zk.sync("/").await.expect("sync");
    let sid = format!("sid={:#x}", zk.session_id().0);
    let cons = server.four_letter("cons");
    assert!(cons.ends_with("\n\n"), "{cons:?}");
    assert!(
        cons.lines()
            .any(|l| l.starts_with(" /127.0.0.1:") && l.contains(&sid)),
        "{cons}"
    );

    assert_eq!(server.four_letter("crst"), "Connection stats reset.\n");
    let cons = server.four_letter("cons");
    assert!(
        cons.lines().any(|l| l.contains(&sid)),
        "still listed after crst: {cons}"
    );

    assert_eq!(server.four_letter("srst"), "Server stats reset.\n");
    let srvr = server.four_letter("srvr");
    assert_eq!(line_value(&srvr, "Outstanding: "), "0");
    // Counters restart: only this connection's own packet(s) since the reset.
    let received: i64 = line_value(&srvr, "Received: ").parse().expect("number");
    assert!(received <= 2, "Received after srst: {received}\n{srvr}");
}

#[tokio::test]
async fn dump_word() {
    let server = TestServer::start();
    let dump = server.four_letter("dump");
    assert!(dump.starts_with("SessionTracker dump:\n"), "{dump}");
    assert!(dump.contains("ephemeral nodes dump:\n"), "{dump}");
    assert!(dump.contains("Sessions with Ephemerals ("), "{dump}");
    if server.is_fresh() {
        assert!(dump.contains("Sessions with Ephemerals (0):\n"), "{dump}");
    }
}

#[tokio::test]
async fn watch_words() {
    // wchs, wchc and wchp report data watches (getData and exists, on existing or missing
    // nodes) but not child watches — as ZooKeeper does; mntr's zk_watch_count counts both.
    let server = TestServer::start();
    let fresh = server.is_fresh();
    if fresh {
        assert_eq!(
            server.four_letter("wchs"),
            "0 connections watching 0 paths\nTotal watches:0\n"
        );
    }
    let zk = common::client(&server).await;
    let other = common::client(&server).await;
    let p = server.path("fl_wch");
    let q = server.path("fl_wch_q");
    let r = server.path("fl_wch_missing");
    zk.create(&p, b"", &PERSISTENT).await.expect("create");
    zk.create(&q, b"", &PERSISTENT).await.expect("create");
    let (_, _, _w1) = zk.get_and_watch_data(&p).await.expect("data watch");
    let (_, _w2) = zk.check_and_watch_stat(&q).await.expect("exists watch");
    let (_, _w3) = zk
        .check_and_watch_stat(&r)
        .await
        .expect("exists watch on a missing node");
    let (_, _w4) = zk.list_and_watch_children(&q).await.expect("child watch");
    let (_, _, _w5) = other
        .get_and_watch_data(&p)
        .await
        .expect("other's data watch");
    let (_, _w6) = other
        .list_and_watch_children(&p)
        .await
        .expect("other's child watch");
    let sid = format!("{:#x}", zk.session_id().0);
    let other_sid = format!("{:#x}", other.session_id().0);

    let wchs = server.four_letter("wchs");
    if fresh {
        assert_eq!(wchs, "2 connections watching 3 paths\nTotal watches:4\n");
        assert_eq!(
            mntr_num(&server, "zk_watch_count"),
            6,
            "mntr counts child watches too"
        );
    } else {
        assert!(wchs.contains(" connections watching "), "{wchs}");
        assert!(wchs.contains("\nTotal watches:"), "{wchs}");
    }

    // wchc: session, then its paths indented.
    let wchc = server.four_letter("wchc");
    let block = |out: &str, head: &str| -> Vec<String> {
        let at = out
            .find(&format!("{head}\n"))
            .unwrap_or_else(|| panic!("{head} not in:\n{out}"));
        let mut v: Vec<String> = out[at + head.len() + 1..]
            .lines()
            .take_while(|l| l.starts_with('\t'))
            .map(|l| l[1..].to_owned())
            .collect();
        v.sort();
        v
    };
    let mut want = vec![p.clone(), q.clone(), r.clone()];
    want.sort();
    assert_eq!(block(&wchc, &sid), want, "{wchc}");
    assert_eq!(block(&wchc, &other_sid), vec![p.clone()], "{wchc}");

    // wchp: path, then its sessions indented.
    let wchp = server.four_letter("wchp");
    let mut both = vec![sid.clone(), other_sid.clone()];
    both.sort();
    assert_eq!(block(&wchp, &p), both, "{wchp}");
    assert_eq!(block(&wchp, &q), vec![sid.clone()], "{wchp}");
    assert_eq!(block(&wchp, &r), vec![sid.clone()], "{wchp}");
    if fresh {
        eprintln!("wchc={wchc:?}\nwchp={wchp:?}");
        assert_eq!(wchp.lines().filter(|l| !l.is_empty()).count(), 7, "{wchp}");
        assert_eq!(wchc.lines().filter(|l| !l.is_empty()).count(), 6, "{wchc}");
    }
}

#[tokio::test]
async fn words_outside_the_whitelist_are_refused() {
    let server = TestServer::start_special(&["4lw.commands.whitelist=ruok"]);
    assert_eq!(server.four_letter("ruok"), "imok");
    assert_eq!(
        server.four_letter("mntr"),
        "mntr is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        server.four_letter("stat"),
        "stat is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        server.four_letter("dump"),
        "dump is not executed because it is not in the whitelist.\n"
    );
    // The server keeps serving clients.
    let zk = common::client(&server).await;
    zk.create(&server.path("fl_whitelist"), b"", &PERSISTENT)
        .await
        .expect("create");
}

#[tokio::test]
async fn mntr_reports_fsync_times_once_writes_were_synced() {
    let server = TestServer::start_with(&[]);
    let zk = common::client(&server).await;
    zk.create(
        "/fsynced",
        b"x",
        &zookeeper_client::CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let count: u64 = server
        .mntr_value("zk_cnt_fsynctime")
        .expect("zk_cnt_fsynctime")
        .parse()
        .unwrap();
    assert!(count >= 1, "the create was fsynced before its reply");
    for key in [
        "zk_avg_fsynctime",
        "zk_min_fsynctime",
        "zk_max_fsynctime",
        "zk_sum_fsynctime",
        "zk_p50_fsynctime",
        "zk_p99_fsynctime",
    ] {
        assert!(server.mntr_value(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn sess_lists_each_session_with_its_timing_and_ephemerals() {
    let server = TestServer::start_with(&[]);
    let zk = common::client(&server).await;
    zk.create(
        "/sess-eph",
        b"",
        &zookeeper_client::CreateMode::Ephemeral.with_acls(zookeeper_client::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let out = server.four_letter("sess");
    assert!(out.starts_with("Sessions (1):\n"), "{out}");
    let line = out.lines().nth(1).unwrap();
    let sid = format!("0x{:x}", zk.session_id().0);
    assert!(line.starts_with(&sid), "{line}");
    for field in [
        "timeout=2000ms",
        "last_contact=",
        "expires_in=",
        "ephemerals=1",
        "closing=false",
        "connection=/127.0.0.1:",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
}
