//! The four-letter words, in Apache ZooKeeper's output formats (tools parse them).
//!
//! Every word's figures are gathered by a function returning values ([`summary`],
//! [`connections`], [`conf_view`], [`environment`], [`dir_sizes`], [`dump_view`], the
//! watch views, and [`Monitor`] for `mntr`). The text here, the AdminServer's JSON
//! (`crate::admin`) and the Prometheus metrics (`crate::metrics`) are all rendered from
//! those values, so they cannot disagree.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use oxkeeper_core::pipeline::{ConnStats, Core, Now};
use oxkeeper_core::session::SessionId;

use crate::metrics::Monitor;
use crate::{ServerInfo, VERSION};

/// ZooKeeper's default trace mask, which `gtmk` reports.
pub(crate) const TRACE_MASK: i64 = 306;

/// Output of a whitelisted word.
/// `peer` is the connection asking: ZooKeeper lists it among the clients too.
pub fn render(
    word: &str,
    peer: SocketAddr,
    core: &mut Core,
    info: &ServerInfo,
    now: Now,
) -> String {
    match word {
        "ruok" => "imok".into(),
        "isro" => "rw".into(),
        "gtmk" => TRACE_MASK.to_string(),
        "stmk" => TRACE_MASK.to_string(),
        "srvr" => srvr(core, info, peer, false),
        "stat" => srvr(core, info, peer, true),
        "cons" => cons(core, peer),
        "crst" => {
            core.reset_connection_stats();
            "Connection stats reset.\n".into()
        }
        "srst" => {
            core.reset_stats();
            "Server stats reset.\n".into()
        }
        "conf" => conf(info),
        "envi" => envi(),
        "dirs" => dirs(info),
        "dump" => dump(core, now),
        "wchs" => wchs(core),
        "wchc" => wchc(core),
        "wchp" => wchp(core),
        // The word's own connection is one of the live connections, as in ZooKeeper.
        "mntr" => mntr(&Monitor::collect(core, info, 1)),
        "hash" => String::new(),
        "sess" => sess(core, now),
        _ => String::new(),
    }
}

/// `<version>, built on <date>`: the version line of `srvr` and `zk_version` of `mntr`.
pub(crate) fn full_version() -> String {
    format!("{VERSION}, built on 2026-11-22 00:00 UTC")
}

fn version_line() -> String {
    format!("Zookeeper version: {}\n", full_version())
}

/// The figures of `srvr` (ZooKeeper's `ServerStats`).
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub latency_min_ms: u64,
    pub latency_avg_ms: f64,
    pub latency_max_ms: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    /// Client connections, not counting a four-letter word's own.
    pub connections: usize,
    pub outstanding: u64,
    pub zxid: i64,
    pub mode: &'static str,
    pub node_count: usize,
    pub auth_failed: u64,
    pub uptime_ms: u64,
}

pub(crate) fn summary(core: &Core, info: &ServerInfo) -> Summary {
    let st = core.stats();
    Summary {
        latency_min_ms: st.latency.min_ms.into(),
        latency_avg_ms: st.latency.avg_ms(),
        latency_max_ms: st.latency.max_ms.into(),
        packets_received: st.packets_received,
        packets_sent: st.packets_sent,
        connections: core.connection_count(),
        outstanding: 0,
        zxid: core.last_zxid(),
        mode: "standalone",
        node_count: node_count(core),
        auth_failed: st.auth_failed,
        uptime_ms: info.started.elapsed().as_millis() as u64,
    }
}

/// Java's view of the node count includes the root twice (`""` and `/`).
pub(crate) fn node_count(core: &Core) -> usize {
    core.tree().node_count() + 1
}

/// The asking connection, which has no session: ` /ip:port[0](queued=0,recved=1,sent=0)`.
fn asking(peer: SocketAddr) -> String {
    format!("/{peer}[0](queued=0,recved=1,sent=0)")
}

fn srvr(core: &Core, info: &ServerInfo, peer: SocketAddr, with_clients: bool) -> String {
    let mut s = version_line();
    if with_clients {
        s.push_str("Clients:\n");
        for c in connections(core) {
            let _ = writeln!(s, " {}", brief(&c));
        }
        let _ = writeln!(s, " {}", asking(peer));
        s.push('\n');
    }
    let sum = summary(core, info);
    let _ = writeln!(
        s,
        "Latency min/avg/max: {}/{}/{}",
        sum.latency_min_ms,
        java_double(sum.latency_avg_ms),
        sum.latency_max_ms
    );
    let _ = writeln!(s, "Received: {}", sum.packets_received);
    let _ = writeln!(s, "Sent: {}", sum.packets_sent);
    // The 4lw connection counts, as in ZooKeeper.
    let _ = writeln!(s, "Connections: {}", sum.connections + 1);
    let _ = writeln!(s, "Outstanding: {}", sum.outstanding);
    let _ = writeln!(s, "Zxid: 0x{:x}", sum.zxid);
    let _ = writeln!(s, "Mode: {}", sum.mode);
    let _ = writeln!(s, "Node count: {}", sum.node_count);
    s
}

/// One client connection as `stat` and `cons` show it.
#[derive(Debug, Clone)]
pub(crate) struct ConnView {
    pub peer: SocketAddr,
    pub session: Option<SessionId>,
    /// The session's negotiated timeout; 0 without a session.
    pub timeout_ms: u32,
    pub stats: ConnStats,
}

/// Every client connection, oldest first.
pub(crate) fn connections(core: &Core) -> Vec<ConnView> {
    let mut v: Vec<_> = core.connections().collect();
    v.sort_by_key(|c| c.id);
    v.into_iter()
        .map(|c| ConnView {
            peer: c.peer(),
            session: c.session,
            timeout_ms: c
                .session
                .and_then(|sid| core.sessions().timeout_of(sid))
                .unwrap_or(0),
            stats: c.stats.clone(),
        })
        .collect()
}

fn brief(c: &ConnView) -> String {
    format!(
        "/{}[1](queued=0,recved={},sent={})",
        c.peer, c.stats.received, c.stats.sent
    )
}

fn cons(core: &Core, peer: SocketAddr) -> String {
    let mut s = String::new();
    for c in connections(core) {
        let b = brief(&c);
        let Some(sid) = c.session else {
            let _ = writeln!(s, " {b}");
            continue;
        };
        let b = b.trim_end_matches(')');
        let _ = write!(
            s,
            " {b},sid={sid},lop={},est={},to={}",
            c.stats.last_op(),
            c.stats.established_wall_ms,
            c.timeout_ms
        );
        if let Some(cxid) = c.stats.last_cxid {
            let _ = write!(s, ",lcxid=0x{cxid:x}");
        }
        let lzxid = c.stats.last_zxid;
        let _ = writeln!(
            s,
            ",lzxid=0x{lzxid:x},lresp={},llat={},minlat={},avglat={},maxlat={})",
            c.stats.last_response_wall_ms,
            c.stats.latency.last_ms,
            c.stats.latency.min_ms,
            conn_avg_latency(&c.stats),
            c.stats.latency.max_ms
        );
    }
    let _ = writeln!(s, " {}", asking(peer));
    s.push('\n');
    s
}

/// A connection's average latency, a whole number of milliseconds as ZooKeeper gives it.
pub(crate) fn conn_avg_latency(stats: &ConnStats) -> u64 {
    stats.latency.avg_ms().round() as u64
}

/// The serving configuration that `conf` prints.
#[derive(Debug, Clone)]
pub(crate) struct ConfView {
    pub client_port: u16,
    /// The snapshot directory (`<dataDir>/version-2`).
    pub data_dir: PathBuf,
    /// The log directory (`<dataLogDir>/version-2`).
    pub data_log_dir: PathBuf,
    pub tick_time_ms: u32,
    pub max_client_cnxns: u32,
    pub min_session_timeout_ms: u32,
    pub max_session_timeout_ms: u32,
    pub listen_backlog: u32,
    /// A standalone server reports 0, whatever `serverId` says.
    pub server_id: i64,
}

pub(crate) fn conf_view(info: &ServerInfo) -> ConfView {
    let c = &info.config;
    ConfView {
        client_port: info.client_addr.port(),
        data_dir: c.data_dir.join("version-2"),
        data_log_dir: c.data_log_dir().join("version-2"),
        tick_time_ms: c.tick_time_ms,
        max_client_cnxns: c.max_client_cnxns,
        min_session_timeout_ms: c.min_session_timeout_ms(),
        max_session_timeout_ms: c.max_session_timeout_ms(),
        listen_backlog: c.listen_backlog,
        server_id: 0,
    }
}

fn conf(info: &ServerInfo) -> String {
    let c = conf_view(info);
    let mut s = String::new();
    let _ = writeln!(s, "clientPort={}", c.client_port);
    let _ = writeln!(s, "secureClientPort=-1");
    let _ = writeln!(s, "dataDir={}", c.data_dir.display());
    let _ = writeln!(s, "dataDirSize={}", dir_size(&c.data_dir));
    let _ = writeln!(s, "dataLogDir={}", c.data_log_dir.display());
    let _ = writeln!(s, "dataLogSize={}", dir_size(&c.data_log_dir));
    let _ = writeln!(s, "tickTime={}", c.tick_time_ms);
    let _ = writeln!(s, "maxClientCnxns={}", c.max_client_cnxns);
    let _ = writeln!(s, "minSessionTimeout={}", c.min_session_timeout_ms);
    let _ = writeln!(s, "maxSessionTimeout={}", c.max_session_timeout_ms);
    let _ = writeln!(s, "clientPortListenBacklog={}", c.listen_backlog);
    let _ = writeln!(s, "serverId={}", c.server_id);
    s
}

/// `envi`'s keys and values, in ZooKeeper's order (`<NA>` where Java facts do not apply).
pub(crate) fn environment() -> Vec<(&'static str, String)> {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| "<NA>".into());
    let na = || "<NA>".to_owned();
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| na());
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| na());
    vec![
        ("zookeeper.version", VERSION.to_owned()),
        ("host.name", host),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", na()),
        ("os.name", std::env::consts::OS.to_owned()),
        ("os.arch", std::env::consts::ARCH.to_owned()),
        ("os.version", na()),
        ("user.name", var("USER")),
        ("user.home", var("HOME")),
        ("user.dir", cwd),
        ("os.memory.free", na()),
        ("os.memory.max", na()),
        ("os.memory.total", na()),
    ]
}

fn envi() -> String {
    let mut s = String::from("Environment:\n");
    for (k, v) in environment() {
        let _ = writeln!(s, "{k}={v}");
    }
    s
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Bytes in the snapshot and the log directories, as `dirs` reports them.
pub(crate) fn dir_sizes(info: &ServerInfo) -> (u64, u64) {
    let c = conf_view(info);
    (dir_size(&c.data_dir), dir_size(&c.data_log_dir))
}

fn dirs(info: &ServerInfo) -> String {
    let (data, log) = dir_sizes(info);
    format!("datadir_size: {data}\nlogdir_size: {log}\n")
}

/// What `dump` shows: sessions by expiry time, ephemerals by session, and connections.
#[derive(Debug, Clone)]
pub(crate) struct DumpView {
    /// Expiry buckets, soonest first: wall-clock time (ms) and the sessions due then.
    pub buckets: Vec<(i64, Vec<SessionId>)>,
    /// Sessions owning ephemeral nodes, with their paths, both sorted.
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// Connections with a session, oldest first.
    pub connections: Vec<(SocketAddr, SessionId)>,
    pub now_wall_ms: i64,
}

pub(crate) fn dump_view(core: &Core, now: Now) -> DumpView {
    // ZooKeeper keeps buckets a session moved out of until they fall due, and prints them.
    let buckets = core
        .sessions()
        .dump_by_bucket()
        .into_iter()
        .map(|(at_ms, ids)| (now.wall_ms + (at_ms as i64 - now.mono_ms as i64), ids))
        .collect();
    let mut owners: Vec<i64> = core.tree().ephemeral_sessions().collect();
    owners.sort();
    let ephemerals = owners
        .into_iter()
        .map(|owner| {
            let mut paths = core.tree().ephemerals(owner);
            paths.sort();
            (owner, paths)
        })
        .collect();
    let connections = connections(core)
        .into_iter()
        .filter_map(|c| c.session.map(|sid| (c.peer, sid)))
        .collect();
    DumpView {
        buckets,
        ephemerals,
        connections,
        now_wall_ms: now.wall_ms,
    }
}

fn dump(core: &Core, now: Now) -> String {
    let d = dump_view(core, now);
    let mut s = String::from("SessionTracker dump:\n");
    let total: usize = d.buckets.iter().map(|(_, v)| v.len()).sum();
    let _ = writeln!(s, "Session Sets ({})/({total}):", d.buckets.len());
    for (wall, ids) in &d.buckets {
        let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(*wall));
        for id in ids {
            let _ = writeln!(s, "\t{id}");
        }
    }
    s.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", d.ephemerals.len());
    for (owner, paths) in &d.ephemerals {
        let _ = writeln!(s, "0x{owner:x}:");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    let n = d.connections.len();
    let _ = writeln!(s, "Connections Sets (1)/({n}):");
    let _ = writeln!(s, "{n} expire at {}:", java_date(d.now_wall_ms));
    for (peer, sid) in &d.connections {
        let _ = writeln!(s, "\tip: /{peer} sessionId: {sid}");
    }
    s
}

/// oxkeeper's session view: what `dump` says, per session, with the figures that explain
/// an expiry.
fn sess(core: &Core, now: Now) -> String {
    let mut infos: Vec<_> = core.sessions().sessions().collect();
    infos.sort_by_key(|i| i.id);
    let peers: std::collections::HashMap<SessionId, SocketAddr> = core
        .connections()
        .filter_map(|c| c.session.map(|sid| (sid, c.peer())))
        .collect();
    let mut s = String::new();
    let _ = writeln!(s, "Sessions ({}):", infos.len());
    for i in infos {
        let conn = peers
            .get(&i.id)
            .map(|peer| format!("/{peer}"))
            .unwrap_or_else(|| "none".into());
        let expires = match i.expires_at_ms {
            Some(at) => format!("{}ms", at as i64 - now.mono_ms as i64),
            None => "due".into(),
        };
        let _ = writeln!(
            s,
            "{}\ttimeout={}ms\tlast_contact={}ms_ago\texpires_in={}\tephemerals={}\tclosing={}\tconnection={}",
            i.id,
            i.touch_timeout_ms,
            now.mono_ms.saturating_sub(i.last_contact_ms),
            expires,
            core.tree().ephemerals(i.id.0).len(),
            i.closing,
            conn
        );
    }
    s
}

/// The session of a connection; 0 for one without a session.
fn session_of(core: &Core, conn: oxkeeper_core::watch::ConnId) -> SessionId {
    core.connections()
        .find(|c| c.id == conn)
        .and_then(|c| c.session)
        .unwrap_or(SessionId(0))
}

fn wchs(core: &Core) -> String {
    let w = core.watches().summary();
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        w.connections, w.paths, w.watches
    )
}

/// `wchc`: the watched paths of each connection, by its session.
pub(crate) fn watches_by_session(core: &Core) -> Vec<(SessionId, Vec<String>)> {
    core.watches()
        .by_connection()
        .into_iter()
        .map(|(conn, paths)| (session_of(core, conn), paths))
        .collect()
}

/// `wchp`: the sessions watching each path.
pub(crate) fn watches_by_path(core: &Core) -> Vec<(String, Vec<SessionId>)> {
    core.watches()
        .by_path()
        .into_iter()
        .map(|(path, conns)| {
            let sessions = conns.into_iter().map(|c| session_of(core, c)).collect();
            (path, sessions)
        })
        .collect()
}

fn wchc(core: &Core) -> String {
    let mut s = String::new();
    for (sid, paths) in watches_by_session(core) {
        let _ = writeln!(s, "{sid}");
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push('\n');
    s
}

fn wchp(core: &Core) -> String {
    let mut s = String::new();
    for (path, sessions) in watches_by_path(core) {
        let _ = writeln!(s, "{path}");
        for sid in sessions {
            let _ = writeln!(s, "\t{sid}");
        }
    }
    s.push('\n');
    s
}

fn mntr(m: &Monitor) -> String {
    let mut s = String::new();
    for (k, v) in m.rows() {
        let _ = writeln!(s, "zk_{k}\t{v}");
    }
    s
}

/// A double as Java prints it, rounded to 4 decimals as ZooKeeper does: `0.0`, `0.2857`.
pub(crate) fn java_double(v: f64) -> String {
    let r = (v * 10_000.0).round() / 10_000.0;
    if r.fract() == 0.0 {
        format!("{r:.1}")
    } else {
        let s = format!("{r:.4}");
        s.trim_end_matches('0').to_owned()
    }
}

/// `java.util.Date.toString()` in UTC: `Mon Oct 13 10:00:10 UTC 2025`.
pub fn java_date(wall_ms: i64) -> String {
    let secs = wall_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        y
    )
}

/// Howard Hinnant's days-to-civil conversion.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_dates() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_760_349_610_000), "Mon Oct 13 10:00:10 UTC 2025");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(2.0 / 7.0), "0.2857");
        assert_eq!(java_double(1.5), "1.5");
    }
}
