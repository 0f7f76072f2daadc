//! `oxkeeper inspect` on what a real server wrote: the log's transactions and the
//! snapshot's nodes, as text and as JSON lines.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::TestServer;
use zookeeper_client::{Acls, CreateMode};

#[tokio::test]
async fn inspect_prints_the_log_and_snapshots_the_server_wrote() {
    let mut server = TestServer::start_with(&["snapCount=20"]);
    let zk = common::client(&server).await;
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for i in 0..30 {
        zk.create(&format!("/inspect-{i}"), b"payload", &opts)
            .await
            .unwrap();
    }
    drop(zk);
    server.kill_and_restart();
    let data = server.dir.path().join("data");

    let text = Command::new(env!("CARGO_BIN_EXE_oxkeeper"))
        .arg("inspect")
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("createSession"), "{text}");
    assert!(
        text.contains("/inspect-29"),
        "the last create is in the log: {text}"
    );
    assert!(
        text.contains("ZNode Details"),
        "a snapshot was taken and printed"
    );

    let json = Command::new(env!("CARGO_BIN_EXE_oxkeeper"))
        .args(["inspect", "--json"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(json.status.success());
    let json = String::from_utf8(json.stdout).unwrap();
    let creates = json
        .lines()
        .filter(|l| l.contains("\"type\":\"create") && l.contains("/inspect-"))
        .count();
    assert!(creates >= 1, "{json}");
    assert!(
        json.lines().all(|l| l.starts_with('{') && l.ends_with('}')),
        "one JSON object per line"
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_oxkeeper"))
        .args(["inspect", "/nonexistent/dir"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/dir"));
}
