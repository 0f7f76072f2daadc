//! Starts the real `oxkeeper` binary on a free loopback port for end-to-end tests.
//!
//! `OXKEEPER_TEST_EXTERNAL=host:port` points the tests that need no special settings at an
//! already running server instead (for example Apache ZooKeeper, to check that a test
//! expects what ZooKeeper does).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    child: Option<Child>,
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with tickTime=200 and every four-letter word enabled.
    pub fn start() -> TestServer {
        if let Ok(addr) = std::env::var("OXKEEPER_TEST_EXTERNAL") {
            return TestServer { child: None, addr, dir: tempfile::tempdir().expect("tempdir") };
        }
        Self::start_with(&[])
    }

    /// A server with extra zoo.cfg lines (they override the defaults above).
    pub fn start_with(extra: &[&str]) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = vec![
            "tickTime=200".to_owned(),
            format!("dataDir={}", dir.path().join("data").display()),
            "clientPort=0".to_owned(),
            "clientPortAddress=127.0.0.1".to_owned(),
            "maxClientCnxns=0".to_owned(),
            "4lw.commands.whitelist=*".to_owned(),
        ];
        cfg.extend(extra.iter().map(|s| s.to_string()));
        let cfg_path = dir.path().join("zoo.cfg");
        std::fs::write(&cfg_path, cfg.join("\n")).expect("write zoo.cfg");
        let mut child = Command::new(env!("CARGO_BIN_EXE_oxkeeper"))
            .arg("serve")
            .arg("--config")
            .arg(&cfg_path)
            .env("OXKEEPER_LOG", std::env::var("OXKEEPER_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn oxkeeper");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("read listening line");
        let addr = line
            .trim()
            .strip_prefix("oxkeeper listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        TestServer { child: Some(child), addr, dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not an external server").id()
    }

    /// Sends a four-letter word and returns the whole answer.
    pub fn four_letter(&self, word: &str) -> String {
        let mut s = TcpStream::connect(&self.addr).expect("connect for 4lw");
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        s.write_all(word.as_bytes()).expect("send 4lw");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// Polls `f` until it returns true or the deadline passes.
    pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        f()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(status.success());
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client with a 2 s session (within [2, 20] × tickTime=200).
pub async fn client(server: &TestServer) -> zookeeper_client::Client {
    zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(2))
        .connect(&server.addr)
        .await
        .expect("connect")
}
