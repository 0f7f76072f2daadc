#![allow(clippy::unwrap_used)]
//! `oxkeeper bench` end to end: every scenario at small sizes against the real binary, through
//! `--json`, checking that the figures are sane (ops done, no errors, ordered percentiles,
//! expiry delays within the negotiated timeout plus a tick).

mod common;

use std::process::Command;

use common::TestServer;
use serde_json::Value;

/// Runs `oxkeeper bench --addr <server> --json [--server-pid] args...` and parses its one line.
fn bench(server: &TestServer, args: &[&str]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxkeeper"));
    cmd.arg("bench")
        .arg("--addr")
        .arg(&server.addr)
        .arg("--json");
    if !common::is_external() {
        cmd.arg("--server-pid").arg(server.pid().to_string());
    }
    let out = cmd.args(args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one JSON line expected: {stdout}");
    serde_json::from_str(lines[0]).unwrap()
}

fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} is not an unsigned integer in {v}"))
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} is not a number in {v}"))
}

/// Percentiles of a latency object are ordered and count matches.
fn ordered(v: &Value, path: &str) {
    let keys = ["min", "p50", "p90", "p99", "p999", "max"];
    let vals: Vec<f64> = keys.iter().map(|k| f(v, &format!("{path}/{k}"))).collect();
    for w in vals.windows(2) {
        assert!(
            w[0] <= w[1],
            "{path} percentiles out of order: {vals:?} in {v}"
        );
    }
    assert!(
        f(v, &format!("{path}/count")) > 0.0,
        "{path} is empty in {v}"
    );
}

/// What every run must show: work done, no errors, a throughput, ordered percentiles, and the
/// server's CPU per op (the harness always passes `--server-pid` to a spawned server).
fn sane(v: &Value, scenario: &str) {
    assert_eq!(v["scenario"], scenario, "{v}");
    assert!(u(v, "/ops") > 0, "no ops: {v}");
    assert_eq!(u(v, "/errors"), 0, "errors: {v}");
    assert!(v["first_error"].is_null(), "{v}");
    assert!(f(v, "/throughput") > 0.0, "{v}");
    assert!(f(v, "/elapsed_s") > 0.0, "{v}");
    assert_eq!(u(v, "/latency_us/count"), u(v, "/ops"), "{v}");
    ordered(v, "/latency_us");
    if !common::is_external() {
        assert!(f(v, "/server_cpu_us_per_op") >= 0.0, "{v}");
        assert!(u(v, "/server_rss_after_kib") > 0, "{v}");
    }
    assert!(v.get(scenario).is_some_and(Value::is_object), "{v}");
}

#[test]
fn read_get_for_a_duration() {
    let server = TestServer::start();
    let v = bench(
        &server,
        &[
            "read",
            "--clients",
            "2",
            "--inflight",
            "4",
            "--nodes",
            "50",
            "--duration",
            "0.5",
            "--warmup",
            "0.2",
        ],
    );
    sane(&v, "read");
    assert_eq!(v["read"]["read_op"], "get");
    assert_eq!(u(&v, "/read/nodes"), 50);
    assert!(f(&v, "/elapsed_s") < 5.0, "{v}");
}

#[test]
fn read_exists_and_both_for_a_number_of_ops() {
    let server = TestServer::start();
    for op in ["exists", "both"] {
        let v = bench(
            &server,
            &[
                "read",
                "--read-op",
                op,
                "--clients",
                "3",
                "--inflight",
                "8",
                "--nodes",
                "20",
                "--ops",
                "3000",
                "--warmup",
                "0",
            ],
        );
        sane(&v, "read");
        assert_eq!(u(&v, "/ops"), 3000, "exactly --ops measured: {v}");
        assert_eq!(v["read"]["read_op"], op);
    }
}

#[test]
fn write_set_data() {
    let server = TestServer::start();
    let v = bench(
        &server,
        &[
            "write",
            "--clients",
            "2",
            "--inflight",
            "4",
            "--nodes",
            "20",
            "--data-size",
            "512",
            "--ops",
            "2000",
            "--warmup",
            "0",
        ],
    );
    sane(&v, "write");
    assert_eq!(u(&v, "/ops"), 2000);
    assert_eq!(v["write"]["write_op"], "set");
    assert_eq!(u(&v, "/config/data_size"), 512);
}

#[test]
fn write_create_delete_cycles_of_every_kind() {
    let server = TestServer::start();
    for kind in ["persistent", "ephemeral", "sequential"] {
        let v = bench(
            &server,
            &[
                "write",
                "--write-op",
                kind,
                "--clients",
                "2",
                "--inflight",
                "4",
                "--ops",
                "1000",
                "--warmup",
                "0",
            ],
        );
        sane(&v, "write");
        assert_eq!(u(&v, "/ops"), 1000, "{kind}: {v}");
        assert_eq!(v["write"]["write_op"], kind);
    }
    // The runs cleaned up after themselves: only the root's /zookeeper subtree is left.
    if server.is_fresh() {
        let count = server.mntr_value("zk_znode_count").unwrap();
        assert!(
            count.parse::<u64>().unwrap() <= 5,
            "nodes left behind: {count}"
        );
    }
}

#[test]
fn mixed_reads_and_writes() {
    let server = TestServer::start();
    let v = bench(
        &server,
        &[
            "mixed",
            "--read-share",
            "0.7",
            "--clients",
            "2",
            "--inflight",
            "4",
            "--nodes",
            "30",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
        ],
    );
    sane(&v, "mixed");
    let (reads, writes) = (u(&v, "/mixed/reads"), u(&v, "/mixed/writes"));
    assert!(reads > 0 && writes > 0, "{v}");
    assert_eq!(reads + writes, u(&v, "/ops"));
    assert!(reads > writes, "70% reads: {v}");
    ordered(&v, "/mixed/read_latency_us");
    ordered(&v, "/mixed/write_latency_us");
}

#[test]
fn sessions_open_hold_with_pings_and_close() {
    let server = TestServer::start();
    // tickTime=200: a 600 ms session pings every 200 ms, so a 0.8 s hold sees pings.
    let v = bench(
        &server,
        &[
            "sessions",
            "--sessions",
            "200",
            "--concurrency",
            "50",
            "--duration",
            "0.8",
            "--session-timeout",
            "600",
        ],
    );
    sane(&v, "sessions");
    assert_eq!(u(&v, "/ops"), 200);
    assert_eq!(u(&v, "/sessions/opened"), 200);
    assert_eq!(u(&v, "/sessions/closed"), 200);
    assert_eq!(u(&v, "/negotiated_timeout_ms"), 600);
    assert!(u(&v, "/sessions/pings") >= 200, "every session pinged: {v}");
    ordered(&v, "/sessions/ping_latency_us");
    ordered(&v, "/sessions/close_latency_us");
    if !common::is_external() {
        assert!(v["server_rss_per_session_bytes"].is_f64(), "{v}");
        assert!(f(&v, "/sessions/server_cpu_percent_hold") >= 0.0, "{v}");
    }
}

#[test]
fn churn_opens_and_closes_sessions() {
    let server = TestServer::start();
    let v = bench(
        &server,
        &[
            "churn",
            "--clients",
            "2",
            "--duration",
            "0.5",
            "--warmup",
            "0.1",
        ],
    );
    sane(&v, "churn");
    ordered(&v, "/churn/close_latency_us");
    ordered(&v, "/churn/cycle_latency_us");
    assert!(f(&v, "/churn/cycle_latency_us/p50") >= f(&v, "/latency_us/p50"));
}

#[test]
fn expiry_deletes_ephemerals_within_timeout_plus_a_tick() {
    check_expiry(&run_expiry(false), false);
}

/// Sessions held without connections (the way past the descriptor limit) expire on the
/// same terms.
#[test]
fn detached_sessions_expire_within_timeout_plus_a_tick() {
    check_expiry(&run_expiry(true), true);
}

fn run_expiry(detach: bool) -> Value {
    let server = TestServer::start();
    let mut args = vec!["expiry"];
    if detach {
        args.push("--detach");
    }
    args.extend([
        "--sessions",
        "50",
        "--concurrency",
        "50",
        "--session-timeout",
        "1000",
        "--clients",
        "2",
    ]);
    bench(&server, &args)
}

/// 50 sessions with a 1 s timeout on a 200 ms tick: all expire, none early, none late.
fn check_expiry(v: &Value, detached: bool) {
    sane(v, "expiry");
    let e = &v["expiry"];
    assert_eq!(e["detached"], detached, "{v}");
    assert_eq!(u(v, "/ops"), 50);
    assert_eq!(u(e, "/expired"), 50);
    assert_eq!(u(e, "/missing"), 0);
    assert_eq!(
        u(e, "/early"),
        0,
        "no session expired before its timeout: {v}"
    );
    assert_eq!(u(v, "/negotiated_timeout_ms"), 1000);
    assert_eq!(u(e, "/tick_ms"), 200, "tickTime read from `conf`: {v}");
    // From each session's last contact: at least the timeout, at most timeout + tick + slack.
    let (min, max) = (
        f(e, "/delay_from_contact_ms/min"),
        f(e, "/delay_from_contact_ms/max"),
    );
    assert!(min >= 1000.0, "expired early: {v}");
    assert!(max <= 1000.0 + 200.0 + 500.0, "expired late: {v}");
    assert!(f(e, "/overshoot_ms/max") <= 700.0, "{v}");
    ordered(e, "/delay_from_cut_ms");
    let sizes: u64 = e["bucket_sizes"]
        .as_array()
        .expect("bucket_sizes")
        .iter()
        .map(|n| n.as_u64().expect("a size"))
        .sum();
    assert_eq!(sizes, 50, "every deletion is in a bucket: {v}");
    assert!(u(e, "/buckets") >= 1);
    assert!(
        f(e, "/bucket_spread_max_ms") <= 200.0,
        "a bucket took over a tick: {v}"
    );
    assert_eq!(e["within_one_tick"], true, "{v}");
    assert!(u(e, "/others_ops") > 0, "{v}");
    ordered(e, "/others_latency_us");
    ordered(e, "/others_latency_all_us");
}

#[test]
fn watch_fan_out_notifies_every_watcher_every_round() {
    let server = TestServer::start();
    let v = bench(&server, &["watch", "--watchers", "10", "--rounds", "5"]);
    sane(&v, "watch");
    assert_eq!(u(&v, "/ops"), 50, "10 watchers × 5 rounds: {v}");
    assert_eq!(u(&v, "/watch/notifications"), 50);
    assert_eq!(u(&v, "/watch/lost_watchers"), 0);
    assert_eq!(u(&v, "/watch/round_ms/count"), 5);
    ordered(&v, "/watch/round_ms");
}

#[test]
fn no_server_is_a_clear_error() {
    // A port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = Command::new(env!("CARGO_BIN_EXE_oxkeeper"))
        .args(["bench", "--addr", &addr, "--json", "read"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr), "names the address: {err}");
    assert!(err.to_lowercase().contains("refused"), "says why: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one plain line: {err}");
}
