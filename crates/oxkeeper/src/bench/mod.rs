//! `oxkeeper bench`: a load generator for any ZooKeeper-compatible server.
//!
//! It speaks the wire protocol through its own lean pipelined client ([`conn`]) and runs one
//! scenario per invocation: `sessions`, `read`, `write`, `mixed`, `expiry`, `churn` or `watch`.
//! The result is printed as text, or with `--json` as exactly one JSON line (fields documented
//! in docs/BENCHMARKS.md under "JSON output").

mod conn;
mod expiry;
mod load;
mod sessions;
mod stats;
mod watch;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::{Args, ValueEnum};
use oxkeeper_proto::codes::op;
use oxkeeper_proto::{GetChildrenResponse, Jute};
use serde_json::{json, Map, Value};

use conn::{body, Conn, Event, Target};
use stats::{round2, round3, Hist, ServerProc};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Open N sessions, hold them idle (pinging) for --duration, close them.
    Sessions,
    /// getData and/or exists on prepared nodes.
    Read,
    /// setData, or create/delete cycles of persistent, ephemeral or sequential nodes.
    Write,
    /// getData and setData on prepared nodes, --read-share of them reads.
    Mixed,
    /// N sessions with an ephemeral each are cut without closeSession; time to deletion.
    Expiry,
    /// Open/close sessions in a loop.
    Churn,
    /// K watchers on one node, one writer; time from the write to each notification.
    Watch,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Sessions => "sessions",
            Scenario::Read => "read",
            Scenario::Write => "write",
            Scenario::Mixed => "mixed",
            Scenario::Expiry => "expiry",
            Scenario::Churn => "churn",
            Scenario::Watch => "watch",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReadOp {
    /// getData
    Get,
    /// exists
    Exists,
    /// getData and exists, half each
    Both,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum WriteOp {
    /// setData on the prepared nodes
    Set,
    /// create then delete persistent nodes
    Persistent,
    /// create then delete ephemeral nodes
    Ephemeral,
    /// create then delete persistent sequential nodes
    Sequential,
}

fn value_name<T: ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_owned())
        .unwrap_or_default()
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// The server, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub addr: String,
    /// Seconds to measure (sessions: seconds to hold the sessions idle).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop after this many measured operations instead of after --duration (read, write,
    /// mixed, churn).
    #[arg(long)]
    pub ops: Option<u64>,
    /// Client connections driving load (expiry: background clients whose latency is
    /// measured while the sessions expire).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Requests in flight per client connection.
    #[arg(long, default_value_t = 8)]
    pub inflight: usize,
    /// Bytes of data per node written or prepared.
    #[arg(long, default_value_t = 100)]
    pub data_size: usize,
    /// Seconds of load before measuring starts (read, write, mixed, churn).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Print exactly one JSON line with every figure instead of text.
    #[arg(long)]
    pub json: bool,
    /// The server's process id: adds its CPU time per op and memory (from /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Session timeout to ask for, in milliseconds (the server may negotiate it).
    #[arg(long, default_value_t = 10_000)]
    pub session_timeout: u32,
    /// Sessions to open (sessions, expiry).
    #[arg(long, default_value_t = 1000)]
    pub sessions: usize,
    /// Connects in progress at once (sessions, expiry, watch).
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Prepared nodes (read, write --write-op set, mixed).
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// The read request (read, mixed).
    #[arg(long, value_enum, default_value_t = ReadOp::Get)]
    pub read_op: ReadOp,
    /// The write request (write).
    #[arg(long, value_enum, default_value_t = WriteOp::Set)]
    pub write_op: WriteOp,
    /// Share of reads in mixed, 0..=1.
    #[arg(long, default_value_t = 0.9)]
    pub read_share: f64,
    /// The server's tickTime in ms (expiry); read from the `conf` four-letter word if absent.
    #[arg(long)]
    pub tick: Option<u32>,
    /// Watcher sessions (watch).
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Write/notify rounds (watch).
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// Expiry: hold each session without its connection (dropped once its ephemeral
    /// exists, resumed once at the cut), so that more sessions than file descriptors fit.
    /// --session-timeout must cover opening them all.
    #[arg(long)]
    pub detach: bool,
    /// Milliseconds between the background clients' requests (expiry).
    #[arg(long, default_value_t = 10)]
    pub other_interval_ms: u64,
    /// Client runtime threads (keep it low: the client shares the machine with the server).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seconds to wait for one connection and handshake.
    #[arg(long, default_value_t = 30.0)]
    pub connect_timeout: f64,
}

/// Errors counted during a run, with the first one's text.
#[derive(Default)]
pub struct Errors {
    pub count: u64,
    pub first: Option<String>,
}

impl Errors {
    pub fn add(&mut self, msg: impl std::fmt::Display) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(msg.to_string());
        }
    }

    pub fn merge(&mut self, other: Errors) {
        self.count += other.count;
        if self.first.is_none() {
            self.first = other.first;
        }
    }
}

/// What a scenario measured; [`report`] turns it into the JSON line or text.
pub struct Outcome {
    pub ops: u64,
    pub errors: Errors,
    pub elapsed: Duration,
    pub latency: Hist,
    /// Server CPU during the measured part.
    pub server_cpu: Option<Duration>,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub rss_per_session_bytes: Option<f64>,
    pub negotiated_timeout_ms: Option<i32>,
    pub detail: Map<String, Value>,
}

impl Outcome {
    pub fn new() -> Outcome {
        Outcome {
            ops: 0,
            errors: Errors::default(),
            elapsed: Duration::ZERO,
            latency: Hist::default(),
            server_cpu: None,
            rss_before_kib: None,
            rss_after_kib: None,
            rss_per_session_bytes: None,
            negotiated_timeout_ms: None,
            detail: Map::new(),
        }
    }
}

/// Everything a scenario needs.
pub struct Ctx {
    pub args: BenchArgs,
    pub target: Arc<Target>,
    pub server: Option<ServerProc>,
    /// Unique per run: node names start with `/oxbench-{tag}`.
    pub tag: String,
    pub data: Bytes,
}

impl Ctx {
    pub fn cpu(&self) -> Option<Duration> {
        self.server.as_ref().and_then(|s| s.cpu())
    }
    pub fn rss_kib(&self) -> Option<u64> {
        self.server.as_ref().and_then(|s| s.rss_kib())
    }
    pub fn timeout_ms(&self) -> i32 {
        self.args.session_timeout.min(i32::MAX as u32) as i32
    }
    pub async fn connect(&self, read_chunk: usize) -> io::Result<Conn> {
        Conn::connect(&self.target, self.timeout_ms(), read_chunk).await
    }
    /// A fresh connection for set-up or clean-up work (a long-held idle one could expire).
    pub async fn setup_conn(&self) -> anyhow::Result<Conn> {
        self.connect(64 << 10)
            .await
            .map_err(|e| anyhow::anyhow!("set-up connection to {}: {e}", self.args.addr))
    }
}

/// Entry point of `oxkeeper bench`. A failure (no server at the address, bad arguments) is
/// printed as one plain line on stderr and the process exits with status 1.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Err(e) = run_inner(args) {
        eprintln!("oxkeeper bench: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

fn run_inner(args: BenchArgs) -> anyhow::Result<()> {
    check_args(&args)?;
    raise_fd_limit();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    let line = runtime.block_on(run_async(args))?;
    println!("{line}");
    Ok(())
}

fn check_args(a: &BenchArgs) -> anyhow::Result<()> {
    if !(a.duration.is_finite() && a.duration >= 0.0) {
        anyhow::bail!("--duration must be a non-negative number of seconds");
    }
    if !(a.warmup.is_finite() && a.warmup >= 0.0) {
        anyhow::bail!("--warmup must be a non-negative number of seconds");
    }
    if !(0.0..=1.0).contains(&a.read_share) {
        anyhow::bail!("--read-share must be within 0..=1");
    }
    if !(a.connect_timeout.is_finite() && a.connect_timeout > 0.0) {
        anyhow::bail!("--connect-timeout must be a positive number of seconds");
    }
    if a.clients == 0 && a.scenario != Scenario::Expiry {
        anyhow::bail!("--clients must be at least 1");
    }
    if a.nodes == 0 {
        anyhow::bail!("--nodes must be at least 1");
    }
    Ok(())
}

/// Lets this process use as many file descriptors as its hard limit allows.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
}

async fn run_async(args: BenchArgs) -> anyhow::Result<String> {
    let connect_timeout = Duration::from_secs_f64(args.connect_timeout);
    let target = Arc::new(Target::resolve(&args.addr, connect_timeout).await?);
    let server = args.server_pid.map(ServerProc::new).transpose()?;
    // Fail early and clearly when nothing answers there.
    let probe = Conn::connect(
        &target,
        args.session_timeout.min(i32::MAX as u32) as i32,
        256,
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot reach a ZooKeeper server at {} ({}): {e}",
            args.addr,
            target.addr
        )
    })?;
    let _ = probe.close().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let tag = format!("{}-{}", std::process::id(), now.as_millis() % 100_000_000);
    let data = Bytes::from(
        (0..args.data_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let ctx = Arc::new(Ctx {
        args: args.clone(),
        target,
        server,
        tag,
        data,
    });
    let outcome = match args.scenario {
        Scenario::Sessions => sessions::sessions(&ctx).await?,
        Scenario::Churn => sessions::churn(&ctx).await?,
        Scenario::Read | Scenario::Write | Scenario::Mixed => load::run(&ctx).await?,
        Scenario::Expiry => expiry::run(&ctx).await?,
        Scenario::Watch => watch::run(&ctx).await?,
    };
    let v = report(&args, outcome);
    Ok(if args.json { v.to_string() } else { text(&v) })
}

fn report(a: &BenchArgs, o: Outcome) -> Value {
    let secs = o.elapsed.as_secs_f64();
    let throughput = if secs > 0.0 {
        round2(o.ops as f64 / secs)
    } else {
        0.0
    };
    let mut v = json!({
        "scenario": a.scenario.name(),
        "addr": a.addr,
        "server_pid": a.server_pid,
        "config": {
            "clients": a.clients,
            "inflight": a.inflight,
            "data_size": a.data_size,
            "duration_s": a.duration,
            "ops_limit": a.ops,
            "warmup_s": a.warmup,
            "session_timeout_ms": a.session_timeout,
            "sessions": a.sessions,
            "concurrency": a.concurrency,
            "nodes": a.nodes,
            "read_op": value_name(a.read_op),
            "write_op": value_name(a.write_op),
            "read_share": a.read_share,
            "watchers": a.watchers,
            "rounds": a.rounds,
            "threads": a.threads,
        },
        "ops": o.ops,
        "errors": o.errors.count,
        "first_error": o.errors.first,
        "elapsed_s": round3(secs),
        "throughput": throughput,
        "latency_us": o.latency.summary(),
        "server_cpu_s": stats::secs(o.server_cpu),
        "server_cpu_us_per_op": stats::per_op_us(o.server_cpu, o.ops),
        "server_rss_before_kib": o.rss_before_kib,
        "server_rss_after_kib": o.rss_after_kib,
        "server_rss_per_session_bytes": o.rss_per_session_bytes.map(round2),
        "negotiated_timeout_ms": o.negotiated_timeout_ms,
    });
    if let Some(m) = v.as_object_mut() {
        m.insert(a.scenario.name().to_owned(), Value::Object(o.detail));
    }
    v
}

fn text(v: &Value) -> String {
    let g = |k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let lat = g("latency_us");
    let l = |k: &str| lat.get(k).cloned().unwrap_or(Value::Null);
    let mut s = format!(
        "{} against {}: {} ops in {} s = {} ops/s, {} errors\n",
        g("scenario").as_str().unwrap_or(""),
        g("addr").as_str().unwrap_or(""),
        g("ops"),
        g("elapsed_s"),
        g("throughput"),
        g("errors"),
    );
    s += &format!(
        "latency (µs): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}\n",
        l("p50"),
        l("p90"),
        l("p99"),
        l("p999"),
        l("max"),
        l("mean")
    );
    if let Some(e) = g("first_error").as_str() {
        s += &format!("first error: {e}\n");
    }
    if !g("server_cpu_s").is_null() {
        s += &format!(
            "server: {} s CPU, {} µs CPU/op, RSS {} → {} KiB",
            g("server_cpu_s"),
            g("server_cpu_us_per_op"),
            g("server_rss_before_kib"),
            g("server_rss_after_kib"),
        );
        if !g("server_rss_per_session_bytes").is_null() {
            s += &format!(", {} B/session", g("server_rss_per_session_bytes"));
        }
        s.push('\n');
    }
    if let Some(d) = v
        .get(g("scenario").as_str().unwrap_or(""))
        .and_then(|d| d.as_object())
    {
        for (k, val) in d {
            s += &format!("  {k}: {val}\n");
        }
    }
    s.trim_end().to_owned()
}

// ------------------------------------ set-up helpers -------------------------------------------

/// Sends `n` requests with up to `depth` in flight; `issue(conn, i)` queues request `i` with
/// tag `i`. Returns `(tag, error code)` of the requests that failed.
pub async fn pipelined(
    conn: &mut Conn,
    n: usize,
    depth: usize,
    mut issue: impl FnMut(&mut Conn, u32),
) -> io::Result<Vec<(u32, i32)>> {
    let mut failed = Vec::new();
    let mut next = 0usize;
    let mut done = 0usize;
    while done < n {
        while next < n && conn.in_flight() < depth {
            issue(conn, next as u32);
            next += 1;
        }
        if let Event::Reply(r) = conn.recv().await? {
            if r.err != 0 {
                failed.push((r.tag, r.err));
            }
            done += 1;
        }
    }
    Ok(failed)
}

/// Creates a persistent node holding `data`.
pub async fn create_node(conn: &mut Conn, path: &str, data: &[u8]) -> anyhow::Result<()> {
    conn.queue(op::CREATE, 0, Instant::now(), |w| {
        body::create(w, path.as_bytes(), data, 0)
    });
    let r = conn.wait_for(0).await?;
    if r.err != 0 {
        anyhow::bail!("cannot create {path}: error {}", r.err);
    }
    Ok(())
}

/// Deletes `parent` and its children (one level), ignoring nodes already gone.
pub async fn delete_tree(conn: &mut Conn, parent: &str) -> anyhow::Result<()> {
    conn.queue(op::GET_CHILDREN, 0, Instant::now(), |w| {
        body::path_watch(w, parent.as_bytes(), false)
    });
    let r = conn.wait_for(0).await?;
    if r.err == 0 {
        let children = GetChildrenResponse::decode(r.body)
            .map_err(|e| anyhow::anyhow!("bad getChildren reply: {e}"))?
            .children;
        let paths: Vec<String> = children.iter().map(|c| format!("{parent}/{c}")).collect();
        pipelined(conn, paths.len(), 256, |c, i| {
            c.queue(op::DELETE, i, Instant::now(), |w| {
                body::delete(w, paths[i as usize].as_bytes())
            });
        })
        .await?;
    }
    conn.queue(op::DELETE, 0, Instant::now(), |w| {
        body::delete(w, parent.as_bytes())
    });
    conn.wait_for(0).await?;
    Ok(())
}

/// The server's tickTime: `--tick`, else the `conf` four-letter word's `tickTime=`.
pub async fn tick_ms(ctx: &Ctx) -> Option<u32> {
    if let Some(t) = ctx.args.tick {
        return Some(t);
    }
    let conf = conn::four_letter(&ctx.target, "conf").await.ok()?;
    conf.lines()
        .find_map(|l| l.trim().strip_prefix("tickTime="))
        .and_then(|v| v.trim().parse().ok())
}
