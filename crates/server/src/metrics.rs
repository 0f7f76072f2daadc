//! The `mntr` figures ([`Monitor`]) and the Prometheus endpoint that exports them.
//!
//! One [`Monitor`] snapshot, taken on the core task, feeds the `mntr` four-letter word,
//! the AdminServer's `monitor` command and every Prometheus scrape, so the three always
//! agree. With `metricsProvider.className` set to ZooKeeper's
//! `PrometheusMetricsProvider`, `GET /metrics` on `metricsProvider.httpHost:httpPort`
//! answers with ZooKeeper's metric names (`znode_count`, `watch_count`, `fsynctime`, ...).

use std::fmt;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use oxkeeper_core::pipeline::Core;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::admin::CoreHandle;
use crate::durability::FsyncStats;
use crate::fourlw;
use crate::ServerInfo;

/// ZooKeeper's class name that turns the Prometheus endpoint on.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// ZooKeeper's default provider: figures in `mntr` only, no endpoint.
pub const DEFAULT_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";

/// One value of a [`Monitor`] row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(String),
    Int(i64),
    Float(f64),
}

impl fmt::Display for Value {
    /// As `mntr` prints it (doubles the Java way, rounded to 4 decimals).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => f.write_str(&fourlw::java_double(*x)),
        }
    }
}

/// The `mntr` figures at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Monitor {
    pub version: String,
    pub server_state: &'static str,
    pub avg_latency: f64,
    pub max_latency: u64,
    pub min_latency: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub num_alive_connections: usize,
    pub outstanding_requests: u64,
    pub uptime_ms: u64,
    pub znode_count: usize,
    pub watch_count: usize,
    pub ephemerals_count: usize,
    pub approximate_data_size: i64,
    pub global_sessions: usize,
    pub local_sessions: u64,
    pub open_file_descriptor_count: usize,
    pub max_file_descriptor_count: u64,
    pub connection_drop_probability: f64,
    pub auth_failed_count: u64,
    pub last_proposal_size: i64,
    pub sessions_expired: u64,
    pub sessions_closed: u64,
    pub session_stall_count: u64,
    pub session_stall_total_ms: u64,
    /// ZooKeeper's `fsynctime` summary, in milliseconds.
    pub fsync: FsyncStats,
}

impl Monitor {
    /// Takes the figures now. `asking` is the number of connections to count on top of
    /// the core's clients: 1 for a four-letter word, whose own connection ZooKeeper
    /// counts, 0 for HTTP.
    pub fn collect(core: &Core, info: &ServerInfo, asking: usize) -> Monitor {
        let summary = fourlw::summary(core, info);
        let st = core.stats();
        let fsync = *info.fsync.lock().unwrap_or_else(|e| e.into_inner());
        let tree = core.tree();
        let sessions = core.sessions();
        Monitor {
            version: fourlw::full_version(),
            server_state: summary.mode,
            avg_latency: summary.latency_avg_ms,
            max_latency: summary.latency_max_ms,
            min_latency: summary.latency_min_ms,
            packets_received: summary.packets_received,
            packets_sent: summary.packets_sent,
            num_alive_connections: summary.connections + asking,
            outstanding_requests: summary.outstanding,
            uptime_ms: summary.uptime_ms,
            znode_count: summary.node_count,
            watch_count: core.watches().watch_count(),
            ephemerals_count: tree.ephemeral_count(),
            approximate_data_size: tree.approximate_data_size(),
            global_sessions: sessions.len(),
            local_sessions: 0,
            open_file_descriptor_count: open_fds(),
            max_file_descriptor_count: max_fds(),
            connection_drop_probability: 0.0,
            auth_failed_count: summary.auth_failed,
            last_proposal_size: -1,
            sessions_expired: st.sessions_expired,
            sessions_closed: st.sessions_closed,
            session_stall_count: sessions.stall_count(),
            session_stall_total_ms: sessions.stall_total_ms(),
            fsync,
        }
    }

    /// The rows of `mntr` in its order, without the `zk_` prefix.
    pub fn rows(&self) -> Vec<(&'static str, Value)> {
        let int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let size = |n: usize| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        let f = &self.fsync;
        let fsync_avg = if f.count == 0 {
            0.0
        } else {
            f.total_ms as f64 / f.count as f64
        };
        vec![
            ("version", Value::Text(self.version.clone())),
            ("server_state", Value::Text(self.server_state.into())),
            ("avg_latency", Value::Float(self.avg_latency)),
            ("max_latency", int(self.max_latency)),
            ("min_latency", int(self.min_latency)),
            ("packets_received", int(self.packets_received)),
            ("packets_sent", int(self.packets_sent)),
            ("num_alive_connections", size(self.num_alive_connections)),
            ("outstanding_requests", int(self.outstanding_requests)),
            ("uptime", int(self.uptime_ms)),
            ("znode_count", size(self.znode_count)),
            ("watch_count", size(self.watch_count)),
            ("ephemerals_count", size(self.ephemerals_count)),
            (
                "approximate_data_size",
                Value::Int(self.approximate_data_size),
            ),
            ("global_sessions", size(self.global_sessions)),
            ("local_sessions", int(self.local_sessions)),
            (
                "open_file_descriptor_count",
                size(self.open_file_descriptor_count),
            ),
            (
                "max_file_descriptor_count",
                int(self.max_file_descriptor_count),
            ),
            (
                "connection_drop_probability",
                Value::Float(self.connection_drop_probability),
            ),
            ("auth_failed_count", int(self.auth_failed_count)),
            ("last_proposal_size", Value::Int(self.last_proposal_size)),
            ("sessions_expired", int(self.sessions_expired)),
            ("sessions_closed", int(self.sessions_closed)),
            ("session_stall_count", int(self.session_stall_count)),
            ("session_stall_total_ms", int(self.session_stall_total_ms)),
            ("avg_fsynctime", Value::Float(fsync_avg)),
            ("min_fsynctime", int(f.min_ms)),
            ("max_fsynctime", int(f.max_ms)),
            ("cnt_fsynctime", int(f.count)),
            ("sum_fsynctime", int(f.total_ms)),
            ("p50_fsynctime", Value::Float(f.quantile_ms(0.5))),
            ("p95_fsynctime", Value::Float(f.quantile_ms(0.95))),
            ("p99_fsynctime", Value::Float(f.quantile_ms(0.99))),
            ("p999_fsynctime", Value::Float(f.quantile_ms(0.999))),
        ]
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn max_fds() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|line| line.starts_with("Max open files"))
                .and_then(|line| line.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// A [`Monitor`] snapshot as Prometheus metric families: every number of `mntr` as a
/// gauge named as ZooKeeper's Prometheus provider names it, except the fsync figures,
/// which make the `fsynctime` summary (see [`encode`]).
#[derive(Debug)]
struct Snapshot(Monitor);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        for (name, value) in self.0.rows() {
            if name.ends_with("_fsynctime") {
                continue;
            }
            // ZooKeeper's provider uses the metric's name as its help text.
            match value {
                Value::Int(n) => {
                    let gauge = ConstGauge::new(n);
                    gauge.encode(encoder.encode_descriptor(
                        name,
                        name,
                        None,
                        gauge.metric_type(),
                    )?)?;
                }
                Value::Float(x) => {
                    let gauge = ConstGauge::new(x);
                    gauge.encode(encoder.encode_descriptor(
                        name,
                        name,
                        None,
                        gauge.metric_type(),
                    )?)?;
                }
                Value::Text(_) => {}
            }
        }
        Ok(())
    }
}

/// The OpenMetrics text for one snapshot.
///
/// `prometheus-client` has no summary type, so the `fsynctime` summary (quantiles, count
/// and sum of the fsync times in milliseconds, as ZooKeeper's `fsynctime`) is written
/// after the registry's families.
pub(crate) fn encode(monitor: Monitor) -> Result<String, fmt::Error> {
    let fsync = monitor.fsync;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(monitor)));
    let mut out = String::new();
    prometheus_client::encoding::text::encode_registry(&mut out, &registry)?;
    out.push_str("# HELP fsynctime fsynctime\n# TYPE fsynctime summary\n");
    for q in [0.5, 0.9, 0.99] {
        fmt::Write::write_fmt(
            &mut out,
            format_args!("fsynctime{{quantile=\"{q}\"}} {}\n", fsync.quantile_ms(q)),
        )?;
    }
    fmt::Write::write_fmt(
        &mut out,
        format_args!(
            "fsynctime_count {}\nfsynctime_sum {}\n",
            fsync.count, fsync.total_ms
        ),
    )?;
    prometheus_client::encoding::text::encode_eof(&mut out)?;
    Ok(out)
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `/metrics` endpoint.
pub(crate) fn router(core: CoreHandle) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(Arc::new(core))
}

async fn scrape(axum::extract::State(core): axum::extract::State<Arc<CoreHandle>>) -> Response {
    let Some(monitor) = core
        .run(|core, info, _| Monitor::collect(core, info, 0))
        .await
    else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "This ZooKeeper instance is not currently serving requests\n",
        )
            .into_response();
    };
    match encode(monitor) {
        Ok(text) => ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
