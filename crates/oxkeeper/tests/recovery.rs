//! Start-up over damaged or split data directories, through the real binary.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Child, Stdio};

use zookeeper_client::{Acls, Client, CreateMode};

fn config(dir: &Path, extra: &str) -> std::path::PathBuf {
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ndataDir={}\nclientPort=0\nclientPortAddress=127.0.0.1\nsnapCount=1000000\nadmin.enableServer=false\n{extra}\n",
            dir.join("data").display()
        ),
    )
    .unwrap();
    cfg
}

fn start(cfg: &Path, flags: &[&str]) -> Result<(Child, String), String> {
    common::launch(cfg, flags, Stdio::piped())
}

async fn write_nodes(addr: &str, n: usize) {
    let zk = Client::connector().connect(addr).await.unwrap();
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    for i in 0..n {
        zk.create(&format!("/n{i:03}"), b"0123456789", &opts)
            .await
            .unwrap();
    }
}

async fn exists(addr: &str, path: &str) -> bool {
    let zk = Client::connector().connect(addr).await.unwrap();
    zk.check_stat(path).await.unwrap().is_some()
}

#[tokio::test]
async fn a_corrupt_record_mid_log_stops_start_up_unless_asked_to_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "");
    let (mut child, addr) = start(&cfg, &[]).unwrap();
    write_nodes(&addr, 50).await;
    child.kill().unwrap();
    child.wait().unwrap();

    let log = dir.path().join("data/version-2/log.1");
    let mut bytes = std::fs::read(&log).unwrap();
    // Inside the payload of an early record; valid records follow it.
    let at = 16 + 400;
    bytes[at] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();

    let err = start(&cfg, &[]).expect_err("start-up must refuse a corrupt log");
    assert!(err.contains("log.1"), "names the file: {err}");
    assert!(err.contains("at byte"), "names the offset: {err}");

    let (mut child, addr) = start(&cfg, &["--truncate-log-at-corruption"]).unwrap();
    assert!(
        exists(&addr, "/n000").await,
        "what precedes the damage is kept"
    );
    assert!(!exists(&addr, "/n049").await, "what follows it is cut");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_separate_data_log_dir_holds_the_log_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("txnlogs");
    let cfg = config(dir.path(), &format!("dataLogDir={}", logs.display()));
    let (mut child, addr) = start(&cfg, &[]).unwrap();
    write_nodes(&addr, 5).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let in_log_dir: Vec<String> = std::fs::read_dir(logs.join("version-2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        in_log_dir.iter().any(|n| n.starts_with("log.")),
        "{in_log_dir:?}"
    );
    assert!(
        !in_log_dir.iter().any(|n| n.starts_with("snapshot.")),
        "{in_log_dir:?}"
    );
    let (mut child, addr) = start(&cfg, &[]).unwrap();
    assert!(exists(&addr, "/n004").await);
    child.kill().unwrap();
    child.wait().unwrap();
}
