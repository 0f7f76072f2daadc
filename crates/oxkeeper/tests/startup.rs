//! The binary's start-up and shutdown: config errors, overrides, signals.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn oxkeeper() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_oxkeeper"));
    c.env("OXKEEPER_LOG", "info");
    c
}

#[test]
fn a_bad_value_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(&cfg, "tickTime=often\nclientPort=0\n").unwrap();
    let out = oxkeeper()
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("tickTime"), "{stderr}");
}

#[test]
fn a_missing_config_file_is_reported() {
    let out = oxkeeper()
        .args(["serve", "--config", "/nonexistent/zoo.cfg"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/zoo.cfg"));
}

#[test]
fn unknown_keys_warn_overrides_apply_and_sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        "tickTime=200\nclientPort=1\nclientPortAddress=127.0.0.1\nnoSuchKey=1\nadmin.enableServer=false\n",
    )
    .unwrap();
    let data = dir.path().join("data-here");
    let mut child = oxkeeper()
        .args(["serve", "--port", "0", "--data-dir"])
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("oxkeeper listening on ")
        .unwrap()
        .to_owned();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":1"),
        "{addr}"
    );
    assert!(data.is_dir(), "--data-dir overrides dataDir and is created");
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let end = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "server did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        stderr.contains("noSuchKey"),
        "unknown key is warned about: {stderr}"
    );
}
