//! The AdminServer (`/commands`) and the Prometheus endpoint (`/metrics`) through the real
//! binary and a real HTTP client.
//!
//! The JSON shapes were checked against Apache ZooKeeper 3.8's AdminServer; the figures
//! must be the four-letter words' own, taken at the same moment.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestServer;
use serde_json::Value;
use zookeeper_client::{Acls, CreateMode, CreateOptions};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());

const PROMETHEUS: &str =
    "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// A free loopback port: bound, then released for the server to take.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Http {
    server: TestServer,
    admin: String,
    metrics: String,
}

/// A server with the AdminServer and the Prometheus endpoint on free loopback ports.
fn start() -> Http {
    let (admin, metrics) = (free_port(), free_port());
    let server = TestServer::start_with(&[
        "admin.enableServer=true",
        "admin.serverAddress=127.0.0.1",
        &format!("admin.serverPort={admin}"),
        PROMETHEUS,
        "metricsProvider.httpHost=127.0.0.1",
        &format!("metricsProvider.httpPort={metrics}"),
    ]);
    Http {
        server,
        admin: format!("http://127.0.0.1:{admin}/commands"),
        metrics: format!("http://127.0.0.1:{metrics}/metrics"),
    }
}

struct Reply {
    status: u16,
    content_type: String,
    body: String,
}

fn get(url: &str) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent.get(url).call().unwrap();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Reply {
        status: resp.status().as_u16(),
        content_type,
        body: resp.body_mut().read_to_string().unwrap(),
    }
}

impl Http {
    /// Runs an AdminServer command; checks the envelope every command shares.
    fn command(&self, name: &str) -> serde_json::Map<String, Value> {
        let r = get(&format!("{}/{name}", self.admin));
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert_eq!(r.content_type, "application/json", "{name}");
        let v: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{name} is not JSON ({e}): {}", r.body));
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("{name}: {v}"))
            .clone();
        assert!(obj.contains_key("command"), "{name}: {v}");
        assert!(obj.contains_key("error"), "{name}: {v}");
        obj
    }

    /// `/metrics` as metric name → value (samples without labels).
    fn metrics(&self) -> BTreeMap<String, f64> {
        let r = get(&self.metrics);
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(
            r.content_type.starts_with("application/openmetrics-text"),
            "{}",
            r.content_type
        );
        assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
        r.body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (name, value) = l.split_once(' ')?;
                Some((name.to_owned(), value.parse().ok()?))
            })
            .collect()
    }
}

/// `mntr` as key (without `zk_`) → value text.
fn mntr(server: &TestServer) -> BTreeMap<String, String> {
    server
        .four_letter("mntr")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            Some((k.strip_prefix("zk_")?.to_owned(), v.to_owned()))
        })
        .collect()
}

/// Figures that move by themselves between two looks.
fn unstable(key: &str) -> bool {
    matches!(
        key,
        "uptime" | "open_file_descriptor_count" | "num_alive_connections"
    )
}

fn stable_part(m: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    m.iter()
        .filter(|(k, _)| !unstable(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A JSON value as `mntr` prints it.
fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap();
            if x.fract() == 0.0 {
                format!("{x:.1}")
            } else {
                n.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// Primary names and aliases of every command, with the primary name each answers as.
const COMMANDS: &[(&str, &str)] = &[
    ("ruok", "ruok"),
    ("srvr", "server_stats"),
    ("server_stats", "server_stats"),
    ("stat", "stats"),
    ("stats", "stats"),
    ("cons", "connections"),
    ("connections", "connections"),
    ("crst", "connection_stat_reset"),
    ("connection_stat_reset", "connection_stat_reset"),
    ("srst", "stat_reset"),
    ("stat_reset", "stat_reset"),
    ("conf", "configuration"),
    ("config", "configuration"),
    ("configuration", "configuration"),
    ("envi", "environment"),
    ("env", "environment"),
    ("environment", "environment"),
    ("dirs", "dirs"),
    ("dump", "dump"),
    ("wchs", "watch_summary"),
    ("watch_summary", "watch_summary"),
    ("wchc", "watches"),
    ("watches", "watches"),
    ("wchp", "watches_by_path"),
    ("watches_by_path", "watches_by_path"),
    ("mntr", "monitor"),
    ("monitor", "monitor"),
    ("isro", "is_read_only"),
    ("is_read_only", "is_read_only"),
    ("gtmk", "get_trace_mask"),
    ("get_trace_mask", "get_trace_mask"),
    ("hash", "hash"),
    ("voting_view", "voting_view"),
    ("initial_configuration", "initial_configuration"),
    ("icfg", "initial_configuration"),
    ("system_properties", "system_properties"),
    ("sysp", "system_properties"),
    ("last_snapshot", "last_snapshot"),
    ("lsnp", "last_snapshot"),
    ("leader", "leader"),
    ("lead", "leader"),
    ("observers", "observers"),
    ("obsr", "observers"),
    ("zabstate", "zabstate"),
];

#[tokio::test(flavor = "multi_thread")]
async fn every_command_answers_zookeepers_json() {
    let http = start();
    let zk = common::client(&http.server).await;
    zk.create("/app", b"x", &PERSISTENT).await.unwrap();
    zk.create("/app/eph", b"e", &EPHEMERAL).await.unwrap();
    let _w = zk.get_and_watch_data("/app").await.unwrap();

    for (name, primary) in COMMANDS {
        let obj = http.command(name);
        assert_eq!(obj["command"], *primary, "{name}: {obj:?}");
        if *primary == "leader" {
            // What a standalone ZooKeeper answers.
            assert_eq!(obj["error"], "server is not initialized", "{obj:?}");
        } else {
            assert_eq!(obj["error"], Value::Null, "{name}: {obj:?}");
        }
    }

    // Jackson's layout, byte for byte.
    let ruok = get(&format!("{}/ruok", http.admin));
    assert_eq!(
        ruok.body,
        "{\n  \"command\" : \"ruok\",\n  \"error\" : null\n}"
    );

    let port: u16 = http
        .server
        .addr
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let conf = http.command("conf");
    assert_eq!(conf["client_port"], port);
    assert_eq!(conf["tick_time"], 200);
    assert!(conf["data_dir"].as_str().unwrap().ends_with("version-2"));
    assert_eq!(http.command("isro")["read_only"], false);
    assert_eq!(http.command("gtmk")["tracemask"], 306);
    assert_eq!(
        http.command("voting_view")["current_config"],
        Value::Object(Default::default())
    );
    assert_eq!(http.command("observers")["synced_observers"], 0);
    assert!(http.command("dirs")["datadir_size"].as_u64().unwrap() > 0);
    assert_eq!(
        http.command("envi")["zookeeper.version"],
        http.command("srvr")["version"]
            .as_str()
            .unwrap()
            .split(',')
            .next()
            .unwrap()
    );
    let icfg = http.command("icfg");
    assert!(icfg["initial_configuration"]
        .as_str()
        .unwrap()
        .contains("tickTime=200\n"));
    let sysp = http.command("sysp");
    assert_eq!(sysp["zookeeper.4lw.commands.whitelist"], "*");
    let lsnp = http.command("lsnp");
    assert!(
        lsnp["zxid"].is_string() && lsnp["timestamp"].is_i64(),
        "{lsnp:?}"
    );

    // The client's session, ephemeral and watch, as ZooKeeper keys them (decimal ids).
    let cons = http.command("cons");
    let conns = cons["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{cons:?}");
    let sid = conns[0]["session_id"].as_i64().unwrap();
    assert_eq!(conns[0]["session_timeout"], 2000);
    assert_eq!(cons["secure_connections"], Value::Array(vec![]));
    let dump = http.command("dump");
    assert_eq!(
        dump["session_id_to_ephemeral_paths"][sid.to_string()],
        serde_json::json!(["/app/eph"])
    );
    let wchc = http.command("wchc");
    assert_eq!(
        wchc["session_id_to_watched_paths"][sid.to_string()],
        serde_json::json!(["/app"])
    );
    let wchp = http.command("wchp");
    assert_eq!(
        wchp["path_to_session_ids"]["/app"],
        serde_json::json!([sid])
    );
    let stats = http.command("stats");
    assert_eq!(stats["connections"].as_array().unwrap().len(), 1);
    assert_eq!(stats["server_stats"]["server_state"], "standalone");
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_are_listed_and_unknown_ones_get_zookeepers_error() {
    let http = start();
    let list = get(&http.admin);
    assert_eq!(list.status, 200);
    let links: Vec<&str> = list
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("<a href=\"/commands/"))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert!(list
        .body
        .contains("<a href=\"/commands/monitor\">monitor</a>\n<br/>\n"));
    let mut primaries: Vec<&str> = COMMANDS.iter().map(|(_, p)| *p).collect();
    primaries.sort_unstable();
    primaries.dedup();
    for p in &primaries {
        assert!(links.contains(p), "{p} not listed:\n{}", list.body);
    }
    assert!(links.windows(2).all(|w| w[0] < w[1]), "sorted: {links:?}");
    assert_eq!(get(&format!("{}/", http.admin)).body, list.body);

    // ZooKeeper answers an unknown command with status 200 and the error in the JSON.
    let nope = get(&format!("{}/nope", http.admin));
    assert_eq!(nope.status, 200);
    assert_eq!(
        nope.body,
        "{\n  \"command\" : \"nope\",\n  \"error\" : \"Unknown command: nope\"\n}"
    );
    // Outside the command URL there is nothing.
    let base = http.admin.trim_end_matches("/commands");
    assert_eq!(get(&format!("{base}/other")).status, 404);
    assert_eq!(get(&format!("{base}/other/metrics")).status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_json_is_mntr_at_the_same_moment() {
    let http = start();
    let zk = common::client(&http.server).await;
    for i in 0..7 {
        zk.create(&format!("/m{i}"), b"data", &PERSISTENT)
            .await
            .unwrap();
    }
    zk.create("/e", b"", &EPHEMERAL).await.unwrap();
    let _w = zk.check_and_watch_stat("/nothing").await.unwrap();

    // Pings may land between two looks: retry until mntr, the JSON and mntr again were
    // taken with nothing in between.
    let mut agreed = false;
    for _ in 0..50 {
        let before = mntr(&http.server);
        let json = http.command("mntr");
        let after = mntr(&http.server);
        if stable_part(&before) != stable_part(&after) {
            continue;
        }
        let mut keys: Vec<&String> = json
            .keys()
            .filter(|k| *k != "command" && *k != "error")
            .collect();
        keys.sort();
        assert_eq!(keys, before.keys().collect::<Vec<_>>(), "the same figures");
        for (k, text) in &before {
            let v = &json[k.as_str()];
            match k.as_str() {
                // The word's own connection counts in mntr, as in ZooKeeper.
                "num_alive_connections" => {
                    assert_eq!(v.as_u64().unwrap() + 1, text.parse::<u64>().unwrap())
                }
                "uptime" => {
                    let (b, a) = (
                        text.parse::<u64>().unwrap(),
                        after[k].parse::<u64>().unwrap(),
                    );
                    assert!(
                        (b..=a).contains(&v.as_u64().unwrap()),
                        "uptime {v} not in {b}..={a}"
                    );
                }
                "open_file_descriptor_count" => assert!(v.as_u64().unwrap() > 0),
                _ => assert_eq!(&as_text(v), text, "{k}"),
            }
        }
        assert_eq!(
            before["znode_count"], "13",
            "5 at start, 7 nodes and an ephemeral"
        );
        assert_eq!(before["ephemerals_count"], "1");
        assert_eq!(before["global_sessions"], "1");

        // srvr and wchs too.
        let srvr = http.command("srvr");
        let text = http.server.four_letter("srvr");
        let line = |p: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(p))
                .unwrap()
                .to_owned()
        };
        assert_eq!(srvr["node_count"].to_string(), line("Node count: "));
        assert_eq!(
            format!(
                "0x{:x}",
                srvr["server_stats"]["last_processed_zxid"]
                    .as_i64()
                    .unwrap()
            ),
            line("Zxid: ")
        );
        let wchs = http.command("wchs");
        assert_eq!(
            http.server.four_letter("wchs"),
            format!(
                "{} connections watching {} paths\nTotal watches:{}\n",
                wchs["num_connections"], wchs["num_paths"], wchs["num_total_watches"]
            )
        );
        agreed = true;
        break;
    }
    assert!(agreed, "mntr kept changing between looks");
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_metrics_are_mntrs_figures() {
    let http = start();
    let zk = common::client(&http.server).await;
    const N: usize = 25;
    for i in 0..N {
        zk.create(&format!("/p{i}"), b"payload", &PERSISTENT)
            .await
            .unwrap();
    }
    let m = http.metrics();
    let text = mntr(&http.server);
    assert_eq!(
        m["znode_count"],
        text["znode_count"].parse::<f64>().unwrap()
    );
    assert_eq!(m["znode_count"], (5 + N) as f64);
    for name in [
        "watch_count",
        "ephemerals_count",
        "approximate_data_size",
        "global_sessions",
        "outstanding_requests",
        "max_latency",
        "min_latency",
    ] {
        assert_eq!(
            m[name],
            text[name].parse::<f64>().unwrap(),
            "{name} in /metrics and mntr"
        );
    }
    for name in [
        "avg_latency",
        "num_alive_connections",
        "packets_received",
        "packets_sent",
        "uptime",
        "fsynctime_count",
        "fsynctime_sum",
    ] {
        assert!(m.contains_key(name), "{name} missing from /metrics");
    }
    assert!(m["fsynctime_count"] >= 1.0, "the creates were fsynced");
    assert_eq!(m["num_alive_connections"], 1.0);
    let body = get(&http.metrics).body;
    assert!(body.contains("# TYPE znode_count gauge\n"), "{body}");
    assert!(body.contains("# TYPE fsynctime summary\n"), "{body}");
    assert_eq!(get(&http.metrics.replace("/metrics", "/other")).status, 404);
    drop(zk);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_commands_act_on_the_servers_own_figures() {
    let http = start();
    {
        let zk = common::client(&http.server).await;
        zk.create("/x", b"", &PERSISTENT).await.unwrap();
    }
    // No client left: nothing moves the counters any more.
    assert!(TestServer::wait_until(Duration::from_secs(10), || {
        http.command("cons")["connections"]
            .as_array()
            .unwrap()
            .is_empty()
    }));
    let text = http.server.four_letter("srvr");
    assert!(!text.contains("Received: 0\n"), "{text}");
    http.command("srst");
    let text = http.server.four_letter("srvr");
    assert!(text.contains("Received: 0\nSent: 0\n"), "{text}");
    let json = http.command("srvr");
    assert_eq!(json["server_stats"]["packets_received"], 0);
    assert_eq!(json["server_stats"]["num_alive_client_connections"], 0);
}

#[test]
fn the_4lw_whitelist_does_not_apply() {
    let admin = free_port();
    let server = TestServer::start_with(&[
        "4lw.commands.whitelist=srvr",
        "admin.enableServer=true",
        "admin.serverAddress=127.0.0.1",
        &format!("admin.serverPort={admin}"),
    ]);
    assert!(server.four_letter("mntr").contains("not in the whitelist"));
    let r = get(&format!("http://127.0.0.1:{admin}/commands/mntr"));
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["error"], Value::Null);
    assert_eq!(v["znode_count"], 5);
}
