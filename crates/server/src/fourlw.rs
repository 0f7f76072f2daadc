//! The four-letter words, in Apache ZooKeeper's output formats (tools parse them).

use std::fmt::Write;
use std::net::SocketAddr;

use oxkeeper_core::pipeline::{Conn, Core, Now};

use crate::{ServerInfo, VERSION};

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
        "gtmk" => "306".into(),
        "stmk" => "306".into(),
        "srvr" => srvr(core, peer, false),
        "stat" => srvr(core, peer, true),
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
        "envi" => envi(info),
        "dirs" => dirs(info),
        "dump" => dump(core, now),
        "wchs" => wchs(core),
        "wchc" => wchc(core),
        "wchp" => wchp(core),
        "mntr" => mntr(core, info, now),
        "hash" => String::new(),
        "sess" => sess(core, now),
        _ => String::new(),
    }
}

fn version_line() -> String {
    format!("Zookeeper version: {VERSION}, built on 2026-11-22 00:00 UTC\n")
}

/// Java's view of the node count includes the root twice (`""` and `/`).
fn node_count(core: &Core) -> usize {
    core.tree().node_count() + 1
}

/// The 4lw connection itself counts, as in ZooKeeper.
fn connection_count(core: &Core) -> usize {
    core.connections().count() + 1
}

/// The asking connection, which has no session: ` /ip:port[0](queued=0,recved=1,sent=0)`.
fn asking(peer: SocketAddr) -> String {
    format!("/{peer}[0](queued=0,recved=1,sent=0)")
}

fn srvr(core: &Core, peer: SocketAddr, with_clients: bool) -> String {
    let mut s = version_line();
    if with_clients {
        s.push_str("Clients:\n");
        for c in sorted_conns(core) {
            let _ = writeln!(s, " {}", brief(c));
        }
        let _ = writeln!(s, " {}", asking(peer));
        s.push('\n');
    }
    let st = core.stats();
    let l = &st.latency;
    let _ = writeln!(
        s,
        "Latency min/avg/max: {}/{}/{}",
        l.min_ms,
        java_double(l.avg_ms()),
        l.max_ms
    );
    let _ = writeln!(s, "Received: {}", st.packets_received);
    let _ = writeln!(s, "Sent: {}", st.packets_sent);
    let _ = writeln!(s, "Connections: {}", connection_count(core));
    let _ = writeln!(s, "Outstanding: 0");
    let _ = writeln!(s, "Zxid: 0x{:x}", core.last_zxid());
    let _ = writeln!(s, "Mode: standalone");
    let _ = writeln!(s, "Node count: {}", node_count(core));
    s
}

fn sorted_conns(core: &Core) -> Vec<&Conn> {
    let mut v: Vec<&Conn> = core.connections().collect();
    v.sort_by_key(|c| c.id);
    v
}

fn brief(c: &Conn) -> String {
    format!(
        "/{}[1](queued=0,recved={},sent={})",
        c.peer, c.stats.received, c.stats.sent
    )
}

fn cons(core: &Core, peer: SocketAddr) -> String {
    let mut s = String::new();
    for c in sorted_conns(core) {
        let b = brief(c);
        let Some(sid) = c.session else {
            let _ = writeln!(s, " {b}");
            continue;
        };
        let b = b.trim_end_matches(')');
        let timeout = core.sessions().timeout_of(sid).unwrap_or(0);
        let _ = write!(
            s,
            " {b},sid={sid},lop={},est={},to={}",
            c.stats.last_op, c.stats.established_wall_ms, timeout
        );
        if let Some(cxid) = c.stats.last_cxid {
            let _ = write!(s, ",lcxid=0x{cxid:x}");
        }
        let lzxid = c.stats.last_zxid.unwrap_or(-1);
        let _ = writeln!(
            s,
            ",lzxid=0x{lzxid:x},lresp={},llat={},minlat={},avglat={},maxlat={})",
            c.stats.last_response_wall_ms,
            c.stats.latency.last_ms,
            c.stats.latency.min_ms,
            c.stats.latency.avg_ms().round() as u64,
            c.stats.latency.max_ms
        );
    }
    let _ = writeln!(s, " {}", asking(peer));
    s.push('\n');
    s
}

fn conf(info: &ServerInfo) -> String {
    let c = &info.config;
    let data = c.data_dir.join("version-2");
    let log = c.data_log_dir().join("version-2");
    let mut s = String::new();
    let _ = writeln!(s, "clientPort={}", info.client_addr.port());
    let _ = writeln!(s, "secureClientPort=-1");
    let _ = writeln!(s, "dataDir={}", data.display());
    let _ = writeln!(s, "dataDirSize={}", dir_size(&data));
    let _ = writeln!(s, "dataLogDir={}", log.display());
    let _ = writeln!(s, "dataLogSize={}", dir_size(&log));
    let _ = writeln!(s, "tickTime={}", c.tick_time_ms);
    let _ = writeln!(s, "maxClientCnxns={}", c.max_client_cnxns);
    let _ = writeln!(s, "minSessionTimeout={}", c.min_session_timeout_ms());
    let _ = writeln!(s, "maxSessionTimeout={}", c.max_session_timeout_ms());
    let _ = writeln!(s, "clientPortListenBacklog={}", c.listen_backlog);
    let _ = writeln!(s, "serverId=0");
    s
}

fn envi(_info: &ServerInfo) -> String {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| "<NA>".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "<NA>".into());
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "<NA>".into());
    let mut s = String::from("Environment:\n");
    let _ = writeln!(s, "zookeeper.version={VERSION}");
    let _ = writeln!(s, "host.name={host}");
    let _ = writeln!(s, "java.version=<NA>");
    let _ = writeln!(s, "java.vendor=<NA>");
    let _ = writeln!(s, "java.home=<NA>");
    let _ = writeln!(s, "java.class.path=<NA>");
    let _ = writeln!(s, "java.library.path=<NA>");
    let _ = writeln!(s, "java.io.tmpdir={}", std::env::temp_dir().display());
    let _ = writeln!(s, "java.compiler=<NA>");
    let _ = writeln!(s, "os.name={}", std::env::consts::OS);
    let _ = writeln!(s, "os.arch={}", std::env::consts::ARCH);
    let _ = writeln!(s, "os.version=<NA>");
    let _ = writeln!(s, "user.name={}", var("USER"));
    let _ = writeln!(s, "user.home={}", var("HOME"));
    let _ = writeln!(s, "user.dir={cwd}");
    let _ = writeln!(s, "os.memory.free=<NA>");
    let _ = writeln!(s, "os.memory.max=<NA>");
    let _ = writeln!(s, "os.memory.total=<NA>");
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

fn dirs(info: &ServerInfo) -> String {
    let c = &info.config;
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        dir_size(&c.data_dir.join("version-2")),
        dir_size(&c.data_log_dir().join("version-2"))
    )
}

fn dump(core: &Core, now: Now) -> String {
    let mut s = String::from("SessionTracker dump:\n");
    let buckets = core.sessions().dump_by_bucket();
    let total: usize = buckets.iter().map(|(_, v)| v.len()).sum();
    // ZooKeeper keeps buckets a session moved out of until they fall due, and prints them.
    let _ = writeln!(s, "Session Sets ({})/({total}):", buckets.len());
    for (at_ms, ids) in &buckets {
        let wall = now.wall_ms + (*at_ms as i64 - now.mono_ms as i64);
        let _ = writeln!(s, "{} expire at {}:", ids.len(), java_date(wall));
        for id in ids {
            let _ = writeln!(s, "\t{id}");
        }
    }
    s.push_str("ephemeral nodes dump:\n");
    let mut owners: Vec<i64> = core.tree().ephemeral_sessions().collect();
    owners.sort();
    let _ = writeln!(s, "Sessions with Ephemerals ({}):", owners.len());
    for owner in owners {
        let _ = writeln!(s, "0x{owner:x}:");
        let mut paths = core.tree().ephemerals(owner);
        paths.sort();
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push_str("Connections dump:\n");
    let conns: Vec<&Conn> = sorted_conns(core)
        .into_iter()
        .filter(|c| c.session.is_some())
        .collect();
    let _ = writeln!(s, "Connections Sets (1)/({}):", conns.len());
    let _ = writeln!(s, "{} expire at {}:", conns.len(), java_date(now.wall_ms));
    for c in conns {
        if let Some(sid) = c.session {
            let _ = writeln!(s, "\tip: /{} sessionId: {sid}", c.peer);
        }
    }
    s
}

/// oxkeeper's session view: what `dump` says, per session, with the figures that explain
/// an expiry.
fn sess(core: &Core, now: Now) -> String {
    let mut infos: Vec<_> = core.sessions().sessions().collect();
    infos.sort_by_key(|i| i.id);
    let mut s = String::new();
    let _ = writeln!(s, "Sessions ({}):", infos.len());
    for i in infos {
        let conn = core
            .connections()
            .find(|c| c.session == Some(i.id))
            .map(|c| format!("/{}", c.peer))
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

fn session_of(core: &Core, conn: oxkeeper_core::watch::ConnId) -> String {
    core.connections()
        .find(|c| c.id == conn)
        .and_then(|c| c.session)
        .map(|sid| sid.to_string())
        .unwrap_or_else(|| "0x0".into())
}

fn wchs(core: &Core) -> String {
    let w = core.watches().summary();
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        w.connections, w.paths, w.watches
    )
}

fn wchc(core: &Core) -> String {
    let mut s = String::new();
    for (conn, paths) in core.watches().by_connection() {
        let _ = writeln!(s, "{}", session_of(core, conn));
        for p in paths {
            let _ = writeln!(s, "\t{p}");
        }
    }
    s.push('\n');
    s
}

fn wchp(core: &Core) -> String {
    let mut s = String::new();
    for (path, conns) in core.watches().by_path() {
        let _ = writeln!(s, "{path}");
        for c in conns {
            let _ = writeln!(s, "\t{}", session_of(core, c));
        }
    }
    s.push('\n');
    s
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

fn mntr(core: &Core, info: &ServerInfo, _now: Now) -> String {
    let st = core.stats();
    let fsync = *info.fsync.lock().unwrap_or_else(|e| e.into_inner());
    let fsync_avg = if fsync.count == 0 {
        0.0
    } else {
        fsync.total_ms as f64 / fsync.count as f64
    };
    let tree = core.tree();
    let sessions = core.sessions();
    let rows: Vec<(&str, String)> = vec![
        (
            "zk_version",
            format!("{VERSION}, built on 2026-11-22 00:00 UTC"),
        ),
        ("zk_server_state", "standalone".into()),
        ("zk_avg_latency", java_double(st.latency.avg_ms())),
        ("zk_max_latency", st.latency.max_ms.to_string()),
        ("zk_min_latency", st.latency.min_ms.to_string()),
        ("zk_packets_received", st.packets_received.to_string()),
        ("zk_packets_sent", st.packets_sent.to_string()),
        (
            "zk_num_alive_connections",
            connection_count(core).to_string(),
        ),
        ("zk_outstanding_requests", "0".into()),
        ("zk_uptime", info.started.elapsed().as_millis().to_string()),
        ("zk_znode_count", node_count(core).to_string()),
        ("zk_watch_count", core.watches().watch_count().to_string()),
        ("zk_ephemerals_count", tree.ephemeral_count().to_string()),
        (
            "zk_approximate_data_size",
            tree.approximate_data_size().to_string(),
        ),
        ("zk_global_sessions", sessions.len().to_string()),
        ("zk_local_sessions", "0".into()),
        ("zk_open_file_descriptor_count", open_fds().to_string()),
        ("zk_max_file_descriptor_count", max_fds().to_string()),
        ("zk_connection_drop_probability", "0.0".into()),
        ("zk_auth_failed_count", st.auth_failed.to_string()),
        ("zk_last_proposal_size", "-1".into()),
        ("zk_sessions_expired", st.sessions_expired.to_string()),
        ("zk_sessions_closed", st.sessions_closed.to_string()),
        ("zk_session_stall_count", sessions.stall_count().to_string()),
        (
            "zk_session_stall_total_ms",
            sessions.stall_total_ms().to_string(),
        ),
        // ZooKeeper's fsynctime summary, in milliseconds.
        ("zk_avg_fsynctime", java_double(fsync_avg)),
        ("zk_min_fsynctime", fsync.min_ms.to_string()),
        ("zk_max_fsynctime", fsync.max_ms.to_string()),
        ("zk_cnt_fsynctime", fsync.count.to_string()),
        ("zk_sum_fsynctime", fsync.total_ms.to_string()),
    ];
    let mut s = String::new();
    for (k, v) in rows {
        let _ = writeln!(s, "{k}\t{v}");
    }
    s
}

/// A double as Java prints it, rounded to 4 decimals as ZooKeeper does: `0.0`, `0.2857`.
fn java_double(v: f64) -> String {
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
