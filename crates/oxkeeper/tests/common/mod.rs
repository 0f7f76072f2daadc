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
            return TestServer {
                child: None,
                addr,
                dir: tempfile::tempdir().expect("tempdir"),
            };
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
            // On by default (port 8080): parallel test servers would fight over it.
            "admin.enableServer=false".to_owned(),
        ];
        cfg.extend(extra.iter().map(|s| s.to_string()));
        let cfg_path = dir.path().join("zoo.cfg");
        std::fs::write(&cfg_path, cfg.join("\n")).expect("write zoo.cfg");
        let (child, addr) = spawn(&cfg_path);
        TestServer {
            child: Some(child),
            addr,
            dir,
        }
    }

    /// Kills the server with SIGKILL and starts it again on the same data directory and
    /// port, as a crash and a restart would.
    pub fn kill_and_restart(&mut self) {
        let mut child = self.child.take().expect("not an external server");
        let _ = child.kill();
        let _ = child.wait();
        let cfg_path = self.dir.path().join("zoo.cfg");
        let port = self.addr.rsplit(':').next().expect("port").to_owned();
        let cfg = std::fs::read_to_string(&cfg_path).expect("read zoo.cfg");
        let cfg: Vec<String> = cfg
            .lines()
            .map(|l| {
                if l.starts_with("clientPort=") {
                    format!("clientPort={port}")
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(&cfg_path, cfg.join("\n")).expect("write zoo.cfg");
        let (child, addr) = spawn(&cfg_path);
        assert_eq!(addr, self.addr, "restarted on the same port");
        self.child = Some(child);
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
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

fn spawn(cfg_path: &std::path::Path) -> (Child, String) {
    launch(cfg_path, &[], Stdio::inherit())
        .unwrap_or_else(|e| panic!("oxkeeper did not start: {e}"))
}

/// Runs `oxkeeper serve --config <cfg> <flags>` and waits for the line announcing its
/// address. `Err` carries what it wrote to stderr (when piped) if it exited instead.
pub fn launch(
    cfg: &std::path::Path,
    flags: &[&str],
    stderr: Stdio,
) -> Result<(Child, String), String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxkeeper"))
        .arg("serve")
        .arg("--config")
        .arg(cfg)
        .args(flags)
        .env(
            "OXKEEPER_LOG",
            std::env::var("OXKEEPER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn oxkeeper");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read listening line");
    if let Some(addr) = line.trim().strip_prefix("oxkeeper listening on ") {
        return Ok((child, addr.to_owned()));
    }
    let _ = child.wait();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    Err(format!("{line}{err}"))
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

// ---------------------------------------------------------------------------------------------
// Helpers added for the end-to-end suites (ops, watches, acl, sessions, fourletter, bad_input).
// ---------------------------------------------------------------------------------------------

/// True when the tests run against `OXKEEPER_TEST_EXTERNAL` instead of a spawned binary.
pub fn is_external() -> bool {
    std::env::var("OXKEEPER_TEST_EXTERNAL").is_ok()
}

impl TestServer {
    /// Whether this server is known to be fresh and used by the running test alone (so global
    /// state such as node counts, the root's stat and consecutive zxids can be asserted): true
    /// for a spawned binary, and for an external server only when `OXKEEPER_TEST_EXTERNAL_FRESH=1`
    /// says so (then run that one test alone against a just-started server).
    pub fn is_fresh(&self) -> bool {
        self.child.is_some()
            || std::env::var("OXKEEPER_TEST_EXTERNAL_FRESH")
                .map(|v| v == "1")
                .unwrap_or(false)
    }

    /// A server with extra zoo.cfg lines; `OXKEEPER_TEST_EXTERNAL_SPECIAL=host:port` points it at
    /// an already running server started with those settings instead (used to check such a test
    /// against Apache ZooKeeper; run that test alone then).
    pub fn start_special(extra: &[&str]) -> TestServer {
        if let Ok(addr) = std::env::var("OXKEEPER_TEST_EXTERNAL_SPECIAL") {
            return TestServer {
                child: None,
                addr,
                dir: tempfile::tempdir().expect("tempdir"),
            };
        }
        Self::start_with(extra)
    }

    /// The server's process id: the spawned child's, or `OXKEEPER_TEST_EXTERNAL_PID` for an
    /// external server.
    pub fn any_pid(&self) -> u32 {
        match &self.child {
            Some(c) => c.id(),
            None => std::env::var("OXKEEPER_TEST_EXTERNAL_PID")
                .expect("an external server needs OXKEEPER_TEST_EXTERNAL_PID for signals")
                .parse()
                .expect("OXKEEPER_TEST_EXTERNAL_PID is a number"),
        }
    }

    /// Like `signal` but also works for an external server with `OXKEEPER_TEST_EXTERNAL_PID`.
    pub fn signal_any(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.any_pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// A node path unique to this test: `/{name}` on a spawned server, with a per-run suffix on an
    /// external one (so repeated runs against the same server do not collide).
    pub fn path(&self, name: &str) -> String {
        if self.child.is_some() {
            format!("/{name}")
        } else {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            format!(
                "/{name}_{}_{}",
                std::process::id(),
                nanos % 1_000_000_000_000
            )
        }
    }

    /// The value of `key` in the tab-separated output of `mntr`.
    pub fn mntr_value(&self, key: &str) -> Option<String> {
        let out = self.four_letter("mntr");
        out.lines().find_map(|l| {
            let mut parts = l.splitn(2, '\t');
            if parts.next() == Some(key) {
                parts.next().map(|v| v.trim().to_owned())
            } else {
                None
            }
        })
    }
}

/// A client with the given requested session timeout.
pub async fn client_with_timeout(addr: &str, timeout: Duration) -> zookeeper_client::Client {
    zookeeper_client::Client::connector()
        .with_session_timeout(timeout)
        .connect(addr)
        .await
        .expect("connect")
}

/// The tickTime every spawned test server uses.
pub const TICK: Duration = Duration::from_millis(200);

/// `base64(sha1("user:password"))` as DigestAuthenticationProvider computes it, for the
/// credentials used in the tests.
pub fn digest_id(user_password: &str) -> String {
    let hash = match user_password {
        "user:pass" => "smGaoVKd/cQkjm7b88GyorAUz20=",
        "other:secret" => "8q+cqA9FicvypK1WV0YuCD5XdXU=",
        "super:admin" => "xQJmxLMiHGwaqBvst5y6rkB6HQs=",
        other => panic!("no precomputed digest for {other}"),
    };
    let user = user_password.split(':').next().unwrap_or_default();
    format!("{user}:{hash}")
}

/// Polls an async condition until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ----------------------------------- raw wire protocol -----------------------------------------

/// A hand-driven client connection speaking ZooKeeper's framing (4-byte big-endian length
/// prefix) over a blocking `TcpStream`.
pub struct Raw {
    pub stream: TcpStream,
}

/// Reply header plus body of one response frame.
#[derive(Debug, Clone)]
pub struct Reply {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

/// Decoded ConnectResponse.
#[derive(Debug, Clone)]
pub struct ConnectResponse {
    pub body_len: usize,
    pub protocol_version: i32,
    pub timeout: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

/// Encodes a jute ustring/buffer (i32 length then bytes).
pub fn jute_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

/// A ConnectRequest body: 44 bytes with an empty password, 45 with the readOnly byte.
pub fn connect_body(
    last_zxid: i64,
    timeout_ms: i32,
    session_id: i64,
    password: &[u8],
    read_only: Option<bool>,
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0i32.to_be_bytes()); // protocolVersion
    b.extend_from_slice(&last_zxid.to_be_bytes());
    b.extend_from_slice(&timeout_ms.to_be_bytes());
    b.extend_from_slice(&session_id.to_be_bytes());
    jute_bytes(&mut b, password);
    if let Some(ro) = read_only {
        b.push(ro as u8);
    }
    b
}

/// A request frame body: RequestHeader(xid, type) followed by `body`.
pub fn request(xid: i32, op: i32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + body.len());
    b.extend_from_slice(&xid.to_be_bytes());
    b.extend_from_slice(&op.to_be_bytes());
    b.extend_from_slice(body);
    b
}

/// A path-plus-watch body as used by getData/exists/getChildren.
pub fn path_watch_body(path: &str, watch: bool) -> Vec<u8> {
    let mut b = Vec::new();
    jute_bytes(&mut b, path.as_bytes());
    b.push(watch as u8);
    b
}

/// A create body with world:anyone ALL and the given flags.
pub fn create_body(path: &str, data: &[u8], flags: i32) -> Vec<u8> {
    let mut b = Vec::new();
    jute_bytes(&mut b, path.as_bytes());
    jute_bytes(&mut b, data);
    b.extend_from_slice(&1i32.to_be_bytes()); // one ACL
    b.extend_from_slice(&31i32.to_be_bytes()); // perms ALL
    jute_bytes(&mut b, b"world");
    jute_bytes(&mut b, b"anyone");
    b.extend_from_slice(&flags.to_be_bytes());
    b
}

impl Raw {
    pub fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("raw connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("read timeout");
        stream.set_nodelay(true).ok();
        Raw { stream }
    }

    /// Connects and performs a fresh-session handshake (45-byte request), returning the
    /// connection and the server's answer.
    pub fn handshake(addr: &str, timeout_ms: i32) -> (Raw, ConnectResponse) {
        let mut raw = Raw::connect(addr);
        raw.send_frame(&connect_body(0, timeout_ms, 0, &[0u8; 16], Some(false)));
        let resp = raw.read_connect_response().expect("connect response");
        (raw, resp)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("raw write");
    }

    /// Sends a length-prefixed frame. A write error (the peer already closed) is ignored.
    pub fn send_frame(&mut self, body: &[u8]) {
        let mut b = (body.len() as i32).to_be_bytes().to_vec();
        b.extend_from_slice(body);
        let _ = self.stream.write_all(&b);
    }

    /// Reads one frame; None when the connection was closed (EOF or reset) before a full frame.
    pub fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let len = i32::from_be_bytes(len);
        assert!(
            (0..=0x10_0000 * 4).contains(&len),
            "implausible frame length {len}"
        );
        let mut body = vec![0u8; len as usize];
        self.stream.read_exact(&mut body).ok()?;
        Some(body)
    }

    pub fn read_connect_response(&mut self) -> Option<ConnectResponse> {
        let body = self.read_frame()?;
        let be_i32 = |b: &[u8]| i32::from_be_bytes(b.try_into().expect("4 bytes"));
        let protocol_version = be_i32(&body[0..4]);
        let timeout = be_i32(&body[4..8]);
        let session_id = i64::from_be_bytes(body[8..16].try_into().expect("8 bytes"));
        let plen = be_i32(&body[16..20]);
        let pend = 20 + plen.max(0) as usize;
        let password = body[20..pend].to_vec();
        let read_only = body.get(pend).map(|b| *b != 0);
        Some(ConnectResponse {
            body_len: body.len(),
            protocol_version,
            timeout,
            session_id,
            password,
            read_only,
        })
    }

    /// Reads one reply frame and splits off its header.
    pub fn read_reply(&mut self) -> Option<Reply> {
        let body = self.read_frame()?;
        assert!(body.len() >= 16, "reply shorter than a header: {body:?}");
        Some(Reply {
            xid: i32::from_be_bytes(body[0..4].try_into().expect("4")),
            zxid: i64::from_be_bytes(body[4..12].try_into().expect("8")),
            err: i32::from_be_bytes(body[12..16].try_into().expect("4")),
            body: body[16..].to_vec(),
        })
    }

    /// Reads replies until one that is not a watch notification (xid -1).
    pub fn read_non_event_reply(&mut self) -> Option<Reply> {
        loop {
            let r = self.read_reply()?;
            if r.xid != -1 {
                return Some(r);
            }
        }
    }

    /// True when the peer closes the connection within `within` without sending any further
    /// byte; false if bytes arrive or it stays open.
    pub fn closed_without_bytes(&mut self, within: Duration) -> Result<(), String> {
        self.stream.set_read_timeout(Some(within)).ok();
        let mut buf = [0u8; 256];
        match self.stream.read(&mut buf) {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("received {n} bytes: {:?}", &buf[..n])),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                Err(format!("connection still open after {within:?}"))
            }
            Err(e) => Err(format!("read error {e}")),
        }
    }

    /// True when the peer has closed the connection (EOF or reset) within `within`, discarding
    /// whatever bytes arrive before that.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        let end = Instant::now() + within;
        let mut buf = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).ok();
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

// ----------------------------------------- TCP proxy -------------------------------------------

/// A loopback TCP proxy in front of a server, to cut a client's connection on demand (the client
/// then reconnects through the proxy with its session) or refuse connections for a while.
pub struct Proxy {
    pub addr: String,
    conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    refuse: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: &str) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let conns: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            Default::default();
        let refuse: std::sync::Arc<std::sync::atomic::AtomicBool> = Default::default();
        let target = target.to_owned();
        let (c2, r2) = (conns.clone(), refuse.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if r2.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                c2.lock().expect("lock").push(h);
            }
        });
        Proxy {
            addr,
            conns,
            refuse,
            accept,
        }
    }

    /// Closes every connection currently going through the proxy.
    pub fn cut(&self) {
        for h in self.conns.lock().expect("lock").drain(..) {
            h.abort();
        }
    }

    /// While set, new connections are accepted and closed at once.
    pub fn refuse(&self, on: bool) {
        self.refuse.store(on, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
