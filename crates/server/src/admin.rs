//! ZooKeeper's AdminServer: `GET <admin.commandURL>/<command>` answers with a JSON object
//! holding the command's figures plus `"command"` (its primary name) and `"error"` (null
//! on success); `GET <admin.commandURL>` lists the commands as links.
//!
//! The figures come from the same functions as the four-letter words' (`crate::fourlw`,
//! `crate::metrics::Monitor`), computed on the core task, so the HTTP and the 4lw
//! answers cannot disagree. The 4lw whitelist does not apply here, as in ZooKeeper.
//! The JSON is laid out as ZooKeeper's (Jackson's default pretty printer), and an
//! unknown command gets ZooKeeper's answer: status 200 with
//! `"error" : "Unknown command: <name>"`.

use std::fmt::Write;
use std::sync::Arc;

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response as HttpResponse};
use oxkeeper_core::pipeline::{Core, Now};
use oxkeeper_core::session::SessionId;
use tokio::sync::{mpsc, oneshot};

use crate::core_task::Event;
use crate::fourlw::{self, ConnView};
use crate::metrics::{Monitor, Value};
use crate::ServerInfo;

/// Work for the core task, run between events (`Event::Admin`).
pub(crate) type CoreJob = Box<dyn FnOnce(&mut Core, &ServerInfo, Now) + Send>;

/// A way to run a closure on the core task, between events, as a four-letter word runs.
#[derive(Clone)]
pub(crate) struct CoreHandle {
    events: mpsc::Sender<Event>,
    info: Arc<ServerInfo>,
}

impl CoreHandle {
    pub fn new(events: mpsc::Sender<Event>, info: Arc<ServerInfo>) -> CoreHandle {
        CoreHandle { events, info }
    }

    /// `f`'s result, or `None` once the core has stopped.
    pub async fn run<T, F>(&self, f: F) -> Option<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Core, &ServerInfo, Now) -> T + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run = Box::new(move |core: &mut Core, info: &ServerInfo, now: Now| {
            let _ = tx.send(f(core, info, now));
        });
        self.events.send(Event::Admin { run }).await.ok()?;
        rx.await.ok()
    }

    pub fn info(&self) -> &ServerInfo {
        &self.info
    }
}

/// A JSON value, with objects in insertion order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    fn uint(n: u64) -> Json {
        Json::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    fn size(n: usize) -> Json {
        Json::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    fn object(fields: Vec<(&str, Json)>) -> Json {
        Json::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// Jackson's default pretty printing, as ZooKeeper's AdminServer writes it: objects
    /// one field a line (`"key" : value`, two spaces a level), arrays on one line
    /// (`[ 1, 2 ]`), empty ones as `{ }` and `[ ]`, no newline at the end.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Json::Float(x) if x.is_finite() => out.push_str(&fourlw::java_double(*x)),
            Json::Float(_) => out.push_str("null"),
            Json::Str(s) => quote(out, s),
            Json::Array(items) if items.is_empty() => out.push_str("[ ]"),
            Json::Array(items) => {
                out.push_str("[ ");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, depth);
                }
                out.push_str(" ]");
            }
            Json::Object(fields) if fields.is_empty() => out.push_str("{ }"),
            Json::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    out.push_str(if i > 0 { ",\n" } else { "\n" });
                    indent(out, depth + 1);
                    quote(out, k);
                    out.push_str(" : ");
                    v.write(out, depth + 1);
                }
                out.push('\n');
                indent(out, depth);
                out.push('}');
            }
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// ZooKeeper's `CommandResponse`: the command's fields, then `command` and `error`; an
/// `error` the command set itself keeps its place and value.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    command: String,
    error: Option<String>,
    data: Vec<(String, Json)>,
}

impl Response {
    fn new(command: &str) -> Response {
        Response {
            command: command.to_owned(),
            error: None,
            data: Vec::new(),
        }
    }

    fn error(command: &str, error: String) -> Response {
        Response {
            error: Some(error),
            ..Response::new(command)
        }
    }

    fn put(&mut self, key: &str, value: Json) {
        match self.data.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.data.push((key.to_owned(), value)),
        }
    }

    fn put_all(&mut self, fields: Vec<(String, Json)>) {
        for (k, v) in fields {
            self.put(&k, v);
        }
    }

    pub fn into_json(self) -> Json {
        let mut out = Response {
            data: self.data.clone(),
            ..Response::new(&self.command)
        };
        out.put("command", Json::Str(self.command));
        out.put("error", self.error.map_or(Json::Null, Json::Str));
        out.put_all(self.data);
        Json::Object(out.data)
    }
}

/// Every command: its primary name first, then its aliases.
const COMMANDS: &[&[&str]] = &[
    &["configuration", "conf", "config"],
    &["connection_stat_reset", "crst"],
    &["connections", "cons"],
    &["dirs"],
    &["dump"],
    &["environment", "env", "envi"],
    &["get_trace_mask", "gtmk"],
    &["hash"],
    &["initial_configuration", "icfg"],
    &["is_read_only", "isro"],
    &["last_snapshot", "lsnp"],
    &["leader", "lead"],
    &["monitor", "mntr"],
    &["observer_connection_stat_reset", "orst"],
    &["observers", "obsr"],
    &["ruok"],
    &["server_stats", "srvr"],
    &["stat_reset", "srst"],
    &["stats", "stat"],
    &["system_properties", "sysp"],
    &["voting_view"],
    &["watch_summary", "wchs"],
    &["watches", "wchc"],
    &["watches_by_path", "wchp"],
    &["zabstate"],
];

/// The primary name of the command called `name`.
fn primary_name(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|names| names.contains(&name))
        .map(|names| names[0])
}

/// The primary names, sorted, as `GET /commands` lists them.
pub(crate) fn primary_names() -> Vec<&'static str> {
    let mut v: Vec<&str> = COMMANDS.iter().map(|names| names[0]).collect();
    v.sort_unstable();
    v
}

/// Runs the command called `name` (a primary name or an alias).
pub(crate) async fn run_command(core: &CoreHandle, name: &str) -> Response {
    let Some(primary) = primary_name(name) else {
        return Response::error(name, format!("Unknown command: {name}"));
    };
    match run_known(core, primary).await {
        Some(r) => r,
        None => Response::error(
            primary,
            "This ZooKeeper instance is not currently serving requests".into(),
        ),
    }
}

/// `None` when the core has stopped.
async fn run_known(core: &CoreHandle, command: &'static str) -> Option<Response> {
    let mut r = Response::new(command);
    match command {
        "ruok" | "observer_connection_stat_reset" => {}
        "configuration" => r.put_all(configuration(core.info())),
        "connection_stat_reset" => core.run(|core, _, _| core.reset_connection_stats()).await?,
        "stat_reset" => core.run(|core, _, _| core.reset_stats()).await?,
        "connections" => {
            let conns = core.run(|core, _, _| fourlw::connections(core)).await?;
            let list = conns.iter().map(|c| connection_info(c, false)).collect();
            r.put("connections", Json::Array(list));
            r.put("secure_connections", Json::Array(Vec::new()));
        }
        "server_stats" | "stats" => {
            let (summary, conns) = core
                .run(|core, info, _| (fourlw::summary(core, info), fourlw::connections(core)))
                .await?;
            let (data_size, log_size) = fourlw::dir_sizes(core.info());
            let buffers = || {
                Json::object(vec![
                    ("last_buffer_size", Json::Int(-1)),
                    ("min_buffer_size", Json::Int(-1)),
                    ("max_buffer_size", Json::Int(-1)),
                ])
            };
            r.put("version", Json::str(fourlw::full_version()));
            r.put("read_only", Json::Bool(false));
            r.put(
                "server_stats",
                Json::object(vec![
                    ("packets_sent", Json::uint(summary.packets_sent)),
                    ("packets_received", Json::uint(summary.packets_received)),
                    ("fsync_threshold_exceed_count", Json::Int(0)),
                    ("client_response_stats", buffers()),
                    ("data_dir_size", Json::uint(data_size)),
                    ("log_dir_size", Json::uint(log_size)),
                    ("provider_null", Json::Bool(false)),
                    ("server_state", Json::str(summary.mode)),
                    ("last_processed_zxid", Json::Int(summary.zxid)),
                    ("outstanding_requests", Json::uint(summary.outstanding)),
                    ("avg_latency", Json::Float(summary.latency_avg_ms)),
                    ("max_latency", Json::uint(summary.latency_max_ms)),
                    ("min_latency", Json::uint(summary.latency_min_ms)),
                    (
                        "num_alive_client_connections",
                        Json::size(summary.connections),
                    ),
                    ("uptime", Json::uint(summary.uptime_ms)),
                    ("auth_failed_count", Json::uint(summary.auth_failed)),
                    ("non_mtlsremote_conn_count", Json::Int(0)),
                    ("non_mtlslocal_conn_count", Json::Int(0)),
                ]),
            );
            r.put("client_response", buffers());
            r.put("node_count", Json::size(summary.node_count));
            if command == "stats" {
                let list = conns.iter().map(|c| connection_info(c, true)).collect();
                r.put("connections", Json::Array(list));
                r.put("secure_connections", Json::Array(Vec::new()));
            }
        }
        "environment" => {
            for (k, v) in fourlw::environment() {
                r.put(k, Json::Str(v));
            }
        }
        "dirs" => {
            let (data_size, log_size) = fourlw::dir_sizes(core.info());
            r.put("datadir_size", Json::uint(data_size));
            r.put("logdir_size", Json::uint(log_size));
        }
        "dump" => {
            let d = core
                .run(|core, _, now| fourlw::dump_view(core, now))
                .await?;
            let expiry = d
                .buckets
                .into_iter()
                .map(|(at, ids)| (at.to_string(), session_list(&ids)))
                .collect();
            let ephemerals = d
                .ephemerals
                .into_iter()
                .map(|(owner, paths)| {
                    let paths = paths.into_iter().map(Json::Str).collect();
                    (owner.to_string(), Json::Array(paths))
                })
                .collect();
            r.put("expiry_time_to_session_ids", Json::Object(expiry));
            r.put("session_id_to_ephemeral_paths", Json::Object(ephemerals));
        }
        "get_trace_mask" => r.put("tracemask", Json::Int(fourlw::TRACE_MASK)),
        "hash" => r.put("digests", Json::Array(Vec::new())),
        "initial_configuration" => {
            let mut text = String::new();
            for (k, v) in &core.info().config.raw {
                let _ = writeln!(text, "{k}={v}");
            }
            r.put("initial_configuration", Json::Str(text));
        }
        "is_read_only" => r.put("read_only", Json::Bool(false)),
        "last_snapshot" => {
            let data_dir = core.info().config.data_dir.clone();
            let (zxid, timestamp) = tokio::task::spawn_blocking(move || last_snapshot(&data_dir))
                .await
                .unwrap_or((-1, -1));
            r.put("zxid", Json::Str(format!("{zxid:x}")));
            r.put("timestamp", Json::Int(timestamp));
        }
        // What a standalone ZooKeeper answers: it is no quorum member.
        "leader" => r.put("error", Json::str("server is not initialized")),
        "monitor" => {
            let m = core
                .run(|core, info, _| Monitor::collect(core, info, 0))
                .await?;
            for (k, v) in m.rows() {
                let v = match v {
                    Value::Text(s) => Json::Str(s),
                    Value::Int(n) => Json::Int(n),
                    Value::Float(x) => Json::Float(x),
                };
                r.put(k, v);
            }
        }
        "observers" => {
            r.put("synced_observers", Json::Int(0));
            r.put("observers", Json::Array(Vec::new()));
        }
        "system_properties" => r.put_all(system_properties(core.info())),
        "voting_view" => r.put("current_config", Json::Object(Vec::new())),
        "watch_summary" => {
            let w = core.run(|core, _, _| core.watches().summary()).await?;
            r.put("num_connections", Json::size(w.connections));
            r.put("num_paths", Json::size(w.paths));
            r.put("num_total_watches", Json::size(w.watches));
        }
        "watches" => {
            let by_session = core
                .run(|core, _, _| fourlw::watches_by_session(core))
                .await?;
            let map = by_session
                .into_iter()
                .map(|(sid, paths)| {
                    let paths = paths.into_iter().map(Json::Str).collect();
                    (sid.0.to_string(), Json::Array(paths))
                })
                .collect();
            r.put("session_id_to_watched_paths", Json::Object(map));
        }
        "watches_by_path" => {
            let by_path = core.run(|core, _, _| fourlw::watches_by_path(core)).await?;
            let map = by_path
                .into_iter()
                .map(|(path, ids)| (path, session_list(&ids)))
                .collect();
            r.put("path_to_session_ids", Json::Object(map));
        }
        "zabstate" => {
            r.put("voting", Json::Bool(false));
            r.put("zabstate", Json::str(""));
        }
        _ => {
            return Some(Response::error(
                command,
                format!("Unknown command: {command}"),
            ))
        }
    }
    Some(r)
}

fn session_list(ids: &[SessionId]) -> Json {
    Json::Array(ids.iter().map(|sid| Json::Int(sid.0)).collect())
}

/// ZooKeeper's `ServerCnxn.getConnectionInfo`: `brief` for `stats`, in full for
/// `connections`.
fn connection_info(c: &ConnView, brief: bool) -> Json {
    let mut fields = vec![
        ("remote_socket_address", Json::Str(c.peer.to_string())),
        ("interest_ops", Json::Int(1)),
        ("outstanding_requests", Json::Int(0)),
        ("packets_received", Json::uint(c.stats.received)),
        ("packets_sent", Json::uint(c.stats.sent)),
    ];
    if !brief {
        let s = &c.stats;
        fields.extend([
            ("session_id", Json::Int(c.session.map_or(0, |sid| sid.0))),
            ("last_operation", Json::str(s.last_op())),
            ("established", Json::Int(s.established_wall_ms)),
            ("session_timeout", Json::Int(i64::from(c.timeout_ms))),
            ("last_cxid", Json::Int(s.last_cxid.map_or(-1, i64::from))),
            ("last_zxid", Json::Int(s.last_zxid)),
            ("last_response_time", Json::Int(s.last_response_wall_ms)),
            ("last_latency", Json::uint(s.latency.last_ms.into())),
            ("min_latency", Json::uint(s.latency.min_ms.into())),
            ("avg_latency", Json::uint(fourlw::conn_avg_latency(s))),
            ("max_latency", Json::uint(s.latency.max_ms.into())),
        ]);
    }
    Json::object(fields)
}

/// ZooKeeper's `ZooKeeperServerConf`, from the same figures as `conf`.
fn configuration(info: &ServerInfo) -> Vec<(String, Json)> {
    let c = fourlw::conf_view(info);
    [
        ("client_port", Json::Int(i64::from(c.client_port))),
        ("data_dir", Json::Str(c.data_dir.display().to_string())),
        (
            "data_log_dir",
            Json::Str(c.data_log_dir.display().to_string()),
        ),
        ("tick_time", Json::Int(i64::from(c.tick_time_ms))),
        ("max_client_cnxns", Json::Int(i64::from(c.max_client_cnxns))),
        (
            "min_session_timeout",
            Json::Int(i64::from(c.min_session_timeout_ms)),
        ),
        (
            "max_session_timeout",
            Json::Int(i64::from(c.max_session_timeout_ms)),
        ),
        ("server_id", Json::Int(c.server_id)),
        (
            "client_port_listen_backlog",
            Json::Int(i64::from(c.listen_backlog)),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// zoo.cfg keys that ZooKeeper's `QuorumPeerConfig` consumes itself; it copies every
/// other key into a `zookeeper.`-prefixed system property.
fn consumed_by_quorum_peer_config(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "dataDir",
        "dataLogDir",
        "clientPort",
        "localSessionsEnabled",
        "localSessionsUpgradingEnabled",
        "clientPortAddress",
        "secureClientPort",
        "secureClientPortAddress",
        "observerMasterPort",
        "clientPortListenBacklog",
        "tickTime",
        "maxClientCnxns",
        "minSessionTimeout",
        "maxSessionTimeout",
        "initLimit",
        "syncLimit",
        "connectToLearnerMasterLimit",
        "electionAlg",
        "quorumListenOnAllIPs",
        "peerType",
        "syncEnabled",
        "dynamicConfigFile",
        "autopurge.snapRetainCount",
        "autopurge.purgeInterval",
        "standaloneEnabled",
        "reconfigEnabled",
        "sslQuorum",
        "portUnification",
        "sslQuorumReloadCertFiles",
        "quorum.cnxn.threads.size",
        "oraclePath",
        "metricsProvider.className",
        "multiAddress.enabled",
        "multiAddress.reachabilityCheckEnabled",
        "multiAddress.reachabilityCheckTimeoutMs",
    ];
    KEYS.contains(&key)
        || [
            "server.",
            "group",
            "weight",
            "metricsProvider.",
            "quorum.auth.",
        ]
        .iter()
        .any(|p| key.starts_with(p))
}

/// The nearest thing to Java's system properties: the process facts `envi` knows, the
/// platform's separators, and the zoo.cfg keys ZooKeeper would have copied into
/// `zookeeper.*` properties; sorted by name, as ZooKeeper sorts them.
fn system_properties(info: &ServerInfo) -> Vec<(String, Json)> {
    let mut props: std::collections::BTreeMap<String, String> = fourlw::environment()
        .into_iter()
        .filter(|(k, v)| {
            v != "<NA>"
                && !["zookeeper.version", "host.name"].contains(k)
                && !k.starts_with("os.memory")
        })
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    props.insert("file.separator".into(), "/".into());
    props.insert("line.separator".into(), "\n".into());
    props.insert("path.separator".into(), ":".into());
    for (k, v) in &info.config.raw {
        if !consumed_by_quorum_peer_config(k) {
            props.insert(format!("zookeeper.{k}"), v.clone());
        }
    }
    props.into_iter().map(|(k, v)| (k, Json::Str(v))).collect()
}

/// The newest valid snapshot's zxid and its time (seconds since the epoch); -1 and -1
/// when there is none, as ZooKeeper reports it.
fn last_snapshot(data_dir: &std::path::Path) -> (i64, i64) {
    let Some(newest) = oxkeeper_storage::snapshot::valid_snapshots(data_dir, 1)
        .ok()
        .and_then(|v| v.into_iter().next())
    else {
        return (-1, -1);
    };
    let seconds = std::fs::metadata(&newest.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(-1, |d| d.as_secs() as i64);
    (newest.zxid, seconds)
}

/// The HTTP listeners, bound before the server starts: the AdminServer's (unless
/// disabled or its port is taken: that is a warning, since it is on by default) and the
/// Prometheus endpoint's (whose port being taken fails start-up, as in ZooKeeper).
pub(crate) struct HttpListeners {
    admin: Option<tokio::net::TcpListener>,
    metrics: Option<tokio::net::TcpListener>,
}

pub(crate) async fn bind(config: &crate::Config) -> Result<HttpListeners, crate::ServerError> {
    let mut admin = None;
    if config.admin_enable_server {
        let addr = std::net::SocketAddr::new(config.admin_server_address, config.admin_server_port);
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => admin = Some(l),
            Err(e) => tracing::warn!(
                %addr,
                error = %e,
                "cannot start the AdminServer; continuing without it (admin.serverPort \
                 picks another port, admin.enableServer=false turns it off)"
            ),
        }
    }
    let mut metrics = None;
    if config.prometheus_enabled {
        let addr = std::net::SocketAddr::new(config.metrics_http_host, config.metrics_http_port);
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| crate::ServerError::Bind { addr, source })?;
        metrics = Some(l);
    }
    Ok(HttpListeners { admin, metrics })
}

/// The running HTTP servers; they stop when the server's shutdown signal fires.
pub(crate) struct HttpServers(Vec<tokio::task::JoinHandle<()>>);

impl HttpServers {
    /// Waits (briefly) for the servers to finish their open requests.
    pub async fn stopped(self) {
        for h in self.0 {
            if tokio::time::timeout(std::time::Duration::from_secs(2), h)
                .await
                .is_err()
            {
                tracing::warn!("an HTTP server did not stop in time");
            }
        }
    }
}

pub(crate) fn spawn(
    listeners: HttpListeners,
    core: CoreHandle,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> HttpServers {
    let mut handles = Vec::new();
    let mut serve =
        |listener: tokio::net::TcpListener, router: axum::Router, what: &'static str| {
            let mut shutdown = shutdown.clone();
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "{what} serving");
            }
            handles.push(tokio::spawn(async move {
                let stop = async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                };
                if let Err(e) = axum::serve(listener, router)
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::warn!(error = %e, "{what} stopped");
                }
            }));
        };
    if let Some(l) = listeners.admin {
        let url = core.info().config.admin_command_url.clone();
        serve(l, router(core.clone(), &url), "AdminServer");
    }
    if let Some(l) = listeners.metrics {
        serve(l, crate::metrics::router(core), "Prometheus metrics");
    }
    HttpServers(handles)
}

/// The AdminServer's routes: everything under `command_url`.
pub(crate) fn router(core: CoreHandle, command_url: &str) -> axum::Router {
    let base = format!("/{}", command_url.trim_matches('/'));
    let state = Arc::new((core, base));
    axum::Router::new().fallback(move |method: Method, uri: Uri| {
        let state = state.clone();
        async move { serve(&state.0, &state.1, method, uri).await }
    })
}

async fn serve(core: &CoreHandle, base: &str, method: Method, uri: Uri) -> HttpResponse {
    let path = uri.path();
    let rest = if base == "/" {
        Some(path.strip_prefix('/').unwrap_or(path))
    } else {
        path.strip_prefix(base).and_then(|r| {
            if r.is_empty() {
                Some(r)
            } else {
                r.strip_prefix('/')
            }
        })
    };
    let Some(name) = rest else {
        return (StatusCode::NOT_FOUND, "Not Found\n").into_response();
    };
    if method != Method::GET && method != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n").into_response();
    }
    if name.is_empty() {
        let prefix = if base == "/" { "" } else { base };
        let mut links = String::new();
        for command in primary_names() {
            let _ = write!(
                links,
                "<a href=\"{prefix}/{command}\">{command}</a>\n<br/>\n"
            );
        }
        return ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], links).into_response();
    }
    let body = run_command(core, name).await.into_json().pretty();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jackson_layout() {
        let mut r = Response::new("stats");
        r.put("n", Json::Int(3));
        r.put("avg", Json::Float(2.0 / 7.0));
        r.put(
            "connections",
            Json::Array(vec![Json::object(vec![
                ("remote_socket_address", Json::str("127.0.0.1:1")),
                ("ids", Json::Array(vec![Json::Int(1), Json::Int(2)])),
            ])]),
        );
        r.put("secure_connections", Json::Array(Vec::new()));
        r.put("config", Json::Object(Vec::new()));
        r.put("text", Json::str("a\"b\\c\nd\u{1}"));
        assert_eq!(
            r.into_json().pretty(),
            "{\n  \"n\" : 3,\n  \"avg\" : 0.2857,\n  \"connections\" : [ {\n    \
             \"remote_socket_address\" : \"127.0.0.1:1\",\n    \"ids\" : [ 1, 2 ]\n  } ],\n  \
             \"secure_connections\" : [ ],\n  \"config\" : { },\n  \
             \"text\" : \"a\\\"b\\\\c\\nd\\u0001\",\n  \"command\" : \"stats\",\n  \"error\" : null\n}"
        );
    }

    #[test]
    fn an_error_set_by_the_command_keeps_its_place() {
        let mut r = Response::new("leader");
        r.put("error", Json::str("server is not initialized"));
        assert_eq!(
            r.into_json().pretty(),
            "{\n  \"error\" : \"server is not initialized\",\n  \"command\" : \"leader\"\n}"
        );
        assert_eq!(
            Response::error("nope", "Unknown command: nope".into())
                .into_json()
                .pretty(),
            "{\n  \"command\" : \"nope\",\n  \"error\" : \"Unknown command: nope\"\n}"
        );
    }

    #[test]
    fn names_and_aliases() {
        assert_eq!(primary_name("mntr"), Some("monitor"));
        assert_eq!(primary_name("config"), Some("configuration"));
        assert_eq!(primary_name("monitor"), Some("monitor"));
        assert_eq!(primary_name("nope"), None);
        let names = primary_names();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert!(!consumed_by_quorum_peer_config("4lw.commands.whitelist"));
        assert!(consumed_by_quorum_peer_config("server.1"));
        assert!(consumed_by_quorum_peer_config("metricsProvider.httpPort"));
    }
}
