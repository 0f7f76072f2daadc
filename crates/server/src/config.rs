//! The server's settings, read from Apache ZooKeeper's own `zoo.cfg` (Java properties).
//!
//! ZooKeeper copies keys it does not know into system properties prefixed with
//! `zookeeper.`, which is how settings such as `DigestAuthenticationProvider.superDigest`
//! reach it from the file. We accept those keys with or without the prefix. A key nobody
//! knows is a warning; a known key with a bad value stops start-up with a message naming it.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use oxkeeper_proto::frame::{DEFAULT_MAX_FRAME, FOUR_LETTER_WORDS};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

/// Which four-letter words answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWhitelist {
    All,
    Only(Vec<String>),
}

impl FourLetterWhitelist {
    pub fn allows(&self, word: &str) -> bool {
        match self {
            FourLetterWhitelist::All => true,
            FourLetterWhitelist::Only(words) => words.iter().any(|w| w == word),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub tick_time_ms: u32,
    pub data_dir: PathBuf,
    /// Where the transaction log goes; the data dir when unset.
    pub data_log_dir: Option<PathBuf>,
    pub client_port: u16,
    pub client_port_address: IpAddr,
    /// Defaults to 2 × tickTime when unset.
    pub min_session_timeout_ms: Option<u32>,
    /// Defaults to 20 × tickTime when unset.
    pub max_session_timeout_ms: Option<u32>,
    /// `clientPortListenBacklog` (ZooKeeper's -1 = the default: 4096 here, which Linux caps at
    /// net.core.somaxconn; Java's 50 made the kernel drop SYNs in connect storms).
    pub listen_backlog: u32,
    /// Connections allowed from one client IP; 0 = unlimited.
    pub max_client_cnxns: u32,
    pub four_letter_whitelist: FourLetterWhitelist,
    /// Largest frame accepted (`jute.maxbuffer`).
    pub jute_max_buffer: usize,
    /// `super:<base64 sha1>`: a client authenticating to this digest bypasses every ACL.
    pub super_digest: Option<String>,
    pub skip_acl: bool,
    pub extended_types_enabled: bool,
    /// `enforceQuota` (ZooKeeper's `zookeeper.enforceQuota`): creates and setData past a
    /// quota's hard limit fail with QUOTAEXCEEDED.
    pub enforce_quota: bool,
    /// The server id in the top byte of session ids (1 for a standalone server).
    pub server_id: u8,
    /// `forceSync`: fsync every group commit (ZooKeeper's default). Off trades durability
    /// of the last writes for speed.
    pub force_sync: bool,
    /// Transactions between snapshots (`snapCount`); randomised per snapshot as in
    /// ZooKeeper so that ensemble members do not snapshot in lockstep.
    pub snap_count: u64,
    /// Log preallocation block (`preAllocSize`, KiB).
    pub prealloc_kib: u64,
    /// `autopurge.snapRetainCount` (at least 3).
    pub snap_retain_count: usize,
    /// `autopurge.purgeInterval` in hours; 0 disables purging.
    pub purge_interval_hours: u64,
    /// `fsync.warningthresholdms`: an fsync slower than this is logged.
    pub fsync_warning_threshold_ms: u64,
    /// `znode.container.checkIntervalMs`: how often containers and TTL nodes are reaped.
    pub container_check_interval_ms: u64,
    /// `znode.container.maxPerMinute`: the reaper's deletion rate limit.
    pub container_max_per_minute: u64,
    /// `znode.container.maxNeverUsedIntervalMs`: 0 keeps never-used containers forever.
    pub container_max_never_used_ms: u64,
    /// `admin.enableServer`: the AdminServer (HTTP `/commands`), on by default as in
    /// ZooKeeper. A port already in use is a warning, not a failed start-up.
    pub admin_enable_server: bool,
    /// `admin.serverAddress` (default 0.0.0.0).
    pub admin_server_address: IpAddr,
    /// `admin.serverPort` (default 8080).
    pub admin_server_port: u16,
    /// `admin.commandURL` (default `/commands`).
    pub admin_command_url: String,
    /// `metricsProvider.className` names ZooKeeper's `PrometheusMetricsProvider`: serve
    /// Prometheus metrics at `/metrics`.
    pub prometheus_enabled: bool,
    /// `metricsProvider.httpHost` (default 0.0.0.0).
    pub metrics_http_host: IpAddr,
    /// `metricsProvider.httpPort` (default 7000).
    pub metrics_http_port: u16,
    /// Cut a log at a corrupt record instead of refusing to start (a command-line choice,
    /// never a zoo.cfg key: it discards data).
    pub truncate_log_at_corruption: bool,
    /// Every key/value as read, for `conf`.
    pub raw: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tick_time_ms: 2000,
            data_dir: PathBuf::from("oxkeeper-data"),
            data_log_dir: None,
            client_port: 2181,
            client_port_address: IpAddr::from([127, 0, 0, 1]),
            min_session_timeout_ms: None,
            max_session_timeout_ms: None,
            max_client_cnxns: 60,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            four_letter_whitelist: FourLetterWhitelist::Only(vec!["srvr".into()]),
            jute_max_buffer: DEFAULT_MAX_FRAME,
            super_digest: None,
            skip_acl: false,
            extended_types_enabled: false,
            enforce_quota: false,
            server_id: 1,
            force_sync: true,
            snap_count: 100_000,
            prealloc_kib: 65_536,
            snap_retain_count: 3,
            purge_interval_hours: 0,
            fsync_warning_threshold_ms: 1000,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_ms: 0,
            admin_enable_server: true,
            // The embedded default listens on loopback only; a zoo.cfg gets ZooKeeper's
            // 0.0.0.0 (see from_properties).
            admin_server_address: IpAddr::from([127, 0, 0, 1]),
            admin_server_port: 8080,
            admin_command_url: "/commands".into(),
            prometheus_enabled: false,
            metrics_http_host: IpAddr::from([0, 0, 0, 0]),
            metrics_http_port: 7000,
            truncate_log_at_corruption: false,
            raw: BTreeMap::new(),
        }
    }
}

/// Keys ZooKeeper knows that a standalone oxkeeper accepts without acting on yet.
/// Pending connections the kernel may queue for us: room for a storm of thousands of
/// clients reconnecting at once (Linux caps it at net.core.somaxconn).
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

const ACCEPTED_KEYS: &[&str] = &[
    "initLimit",
    "syncLimit",
    "standaloneEnabled",
    "reconfigEnabled",
    "secureClientPort",
    "secureClientPortAddress",
    "globalOutstandingLimit",
    "electionAlg",
    "electionPort",
    "quorumListenOnAllIPs",
    "dynamicConfigFile",
    "maxCnxns",
    "peerType",
    "syncEnabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    "connectToLearnerMasterLimit",
    "audit.enable",
    "digest.enabled",
    "closeSessionTxn.enabled",
];

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let file = std::fs::File::open(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let props = java_properties::read(std::io::BufReader::new(file)).map_err(|e| {
            ConfigError::Parse {
                path: path.to_owned(),
                message: e.to_string(),
            }
        })?;
        Config::from_properties(props.into_iter().collect())
    }

    /// Builds a config from key/value pairs. Relative directories are relative to the
    /// working directory, as in ZooKeeper.
    pub fn from_properties(props: BTreeMap<String, String>) -> Result<Config, ConfigError> {
        // ZooKeeper's code default tickTime is 3000 when a config file omits it.
        let mut c = Config {
            tick_time_ms: 3000,
            admin_server_address: IpAddr::from([0, 0, 0, 0]),
            ..Config::default()
        };
        for (key, value) in &props {
            let v = value.trim();
            let name = key.strip_prefix("zookeeper.").unwrap_or(key);
            match name {
                "tickTime" => c.tick_time_ms = parse_positive(key, v)?,
                "dataDir" => c.data_dir = PathBuf::from(v),
                "dataLogDir" => c.data_log_dir = Some(PathBuf::from(v)),
                "clientPort" => c.client_port = parse_num(key, v)?,
                "clientPortAddress" => {
                    c.client_port_address = v
                        .parse()
                        .map_err(|_| invalid(key, v, "not an IP address"))?
                }
                "minSessionTimeout" => c.min_session_timeout_ms = Some(parse_timeout(key, v)?),
                "maxSessionTimeout" => c.max_session_timeout_ms = Some(parse_timeout(key, v)?),
                "maxClientCnxns" => c.max_client_cnxns = parse_num(key, v)?,
                "clientPortListenBacklog" => {
                    let n: i64 = parse_num(key, v)?;
                    c.listen_backlog = if n <= 0 {
                        DEFAULT_LISTEN_BACKLOG
                    } else {
                        u32::try_from(n).unwrap_or(u32::MAX)
                    };
                }
                "4lw.commands.whitelist" => c.four_letter_whitelist = parse_whitelist(key, v)?,
                "jute.maxbuffer" => {
                    let n: u32 = parse_num(key, v)?;
                    if n == 0 || n > i32::MAX as u32 {
                        return Err(invalid(key, v, "must be between 1 and 2147483647"));
                    }
                    c.jute_max_buffer = n as usize;
                }
                "DigestAuthenticationProvider.superDigest" => {
                    if !v.contains(':') {
                        return Err(invalid(key, v, "expected super:<base64 digest>"));
                    }
                    c.super_digest = Some(v.to_owned());
                }
                "skipACL" => c.skip_acl = v == "yes" || v == "true",
                "extendedTypesEnabled" => c.extended_types_enabled = parse_bool(key, v)?,
                // Java's Boolean.parseBoolean: "true" in any case, anything else is false.
                "enforceQuota" => c.enforce_quota = v.eq_ignore_ascii_case("true"),
                "serverId" => c.server_id = parse_num(key, v)?,
                "forceSync" => c.force_sync = parse_bool(key, v)?,
                "snapCount" => c.snap_count = u64::from(parse_positive(key, v)?).max(2),
                "preAllocSize" => c.prealloc_kib = u64::from(parse_positive(key, v)?),
                "autopurge.snapRetainCount" => {
                    // ZooKeeper silently raises smaller values to 3.
                    c.snap_retain_count = parse_num::<usize>(key, v)?.max(3)
                }
                "autopurge.purgeInterval" => c.purge_interval_hours = parse_num(key, v)?,
                "fsync.warningthresholdms" => c.fsync_warning_threshold_ms = parse_num(key, v)?,
                "znode.container.checkIntervalMs" => {
                    c.container_check_interval_ms = u64::from(parse_positive(key, v)?)
                }
                "znode.container.maxPerMinute" => {
                    c.container_max_per_minute = u64::from(parse_positive(key, v)?)
                }
                "znode.container.maxNeverUsedIntervalMs" => {
                    c.container_max_never_used_ms = parse_num(key, v)?
                }
                "admin.enableServer" => c.admin_enable_server = parse_bool(key, v)?,
                "admin.serverAddress" => c.admin_server_address = parse_host(key, v)?,
                "admin.serverPort" => c.admin_server_port = parse_num(key, v)?,
                "admin.commandURL" => c.admin_command_url = v.to_owned(),
                "metricsProvider.className" => {
                    c.prometheus_enabled = match v {
                        crate::metrics::PROMETHEUS_PROVIDER => true,
                        crate::metrics::DEFAULT_PROVIDER => false,
                        _ => {
                            return Err(invalid(
                                key,
                                v,
                                "unknown metrics provider (known: ZooKeeper's PrometheusMetricsProvider and DefaultMetricsProvider)",
                            ))
                        }
                    }
                }
                "metricsProvider.httpHost" => c.metrics_http_host = parse_host(key, v)?,
                "metricsProvider.httpPort" => c.metrics_http_port = parse_num(key, v)?,
                // No JVM to describe; the provider's other settings tune Java threads.
                "metricsProvider.exportJvmInfo" => {}
                n if n.starts_with("metricsProvider.") => {}
                n if ACCEPTED_KEYS.contains(&n)
                    || n.starts_with("server.")
                    || n.starts_with("group.")
                    || n.starts_with("weight.") => {}
                _ => tracing::warn!(key = %key, "unknown configuration key ignored"),
            }
        }
        if let (Some(min), Some(max)) = (c.min_session_timeout_ms, c.max_session_timeout_ms) {
            if min > max {
                return Err(invalid(
                    "minSessionTimeout",
                    &min.to_string(),
                    "must not be greater than maxSessionTimeout",
                ));
            }
        }
        c.raw = props;
        Ok(c)
    }

    pub fn min_session_timeout_ms(&self) -> u32 {
        self.min_session_timeout_ms
            .unwrap_or(self.tick_time_ms.saturating_mul(2))
    }

    pub fn max_session_timeout_ms(&self) -> u32 {
        self.max_session_timeout_ms
            .unwrap_or(self.tick_time_ms.saturating_mul(20))
    }

    pub fn data_log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.parse().map_err(|_| invalid(key, v, "not a valid number"))
}

fn parse_positive(key: &str, v: &str) -> Result<u32, ConfigError> {
    let n: u32 = parse_num(key, v)?;
    if n == 0 {
        return Err(invalid(key, v, "must be positive"));
    }
    Ok(n)
}

/// ZooKeeper treats -1 as "use the default".
fn parse_timeout(key: &str, v: &str) -> Result<u32, ConfigError> {
    let n: i64 = parse_num(key, v)?;
    if n <= 0 || n > i32::MAX as i64 {
        return Err(invalid(key, v, "must be a positive number of milliseconds"));
    }
    Ok(n as u32)
}

/// An IP address, or a host name resolved to its first address.
fn parse_host(key: &str, v: &str) -> Result<IpAddr, ConfigError> {
    if let Ok(ip) = v.parse() {
        return Ok(ip);
    }
    (v, 0)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .map(|a| a.ip())
        .ok_or_else(|| invalid(key, v, "not an IP address or a known host name"))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(invalid(key, v, "expected true or false")),
    }
}

fn parse_whitelist(key: &str, v: &str) -> Result<FourLetterWhitelist, ConfigError> {
    if v == "*" {
        return Ok(FourLetterWhitelist::All);
    }
    let mut words = vec!["srvr".to_owned()];
    for w in v.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if !FOUR_LETTER_WORDS.contains(&w) {
            return Err(invalid(key, v, &format!("unknown four-letter word {w:?}")));
        }
        words.push(w.to_owned());
    }
    Ok(FourLetterWhitelist::Only(words))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_zookeeper_keys() {
        let c = Config::from_properties(props(&[
            ("tickTime", "200"),
            ("dataDir", "/tmp/x"),
            ("clientPort", "0"),
            ("clientPortAddress", "127.0.0.1"),
            ("maxClientCnxns", "0"),
            ("4lw.commands.whitelist", "ruok, mntr"),
            ("DigestAuthenticationProvider.superDigest", "super:abc="),
            ("jute.maxbuffer", "4096"),
            ("initLimit", "5"),
            ("someUnknownKey", "1"),
        ]))
        .unwrap();
        assert_eq!(c.tick_time_ms, 200);
        assert_eq!(c.min_session_timeout_ms(), 400);
        assert_eq!(c.max_session_timeout_ms(), 4000);
        assert_eq!(c.max_client_cnxns, 0);
        assert!(c.four_letter_whitelist.allows("srvr"));
        assert!(c.four_letter_whitelist.allows("mntr"));
        assert!(!c.four_letter_whitelist.allows("dump"));
        assert_eq!(c.super_digest.as_deref(), Some("super:abc="));
        assert_eq!(c.jute_max_buffer, 4096);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (k, v) in [
            ("tickTime", "abc"),
            ("tickTime", "0"),
            ("clientPort", "70000"),
            ("clientPortAddress", "nowhere"),
            ("4lw.commands.whitelist", "ruok,nope"),
            ("maxSessionTimeout", "-5"),
        ] {
            let err = Config::from_properties(props(&[(k, v)])).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
        let err = Config::from_properties(props(&[
            ("minSessionTimeout", "5000"),
            ("maxSessionTimeout", "4000"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("minSessionTimeout"));
    }

    #[test]
    fn admin_server_and_metrics_keys() {
        let c = Config::default();
        assert!(c.admin_enable_server);
        assert_eq!(c.admin_server_port, 8080);
        assert_eq!(
            c.admin_server_address,
            IpAddr::from([127, 0, 0, 1]),
            "embedded default"
        );
        let from_file = Config::from_properties(props(&[])).unwrap();
        assert_eq!(
            from_file.admin_server_address,
            IpAddr::from([0, 0, 0, 0]),
            "ZooKeeper's"
        );
        assert_eq!(c.admin_command_url, "/commands");
        assert!(!c.prometheus_enabled);
        assert_eq!(c.metrics_http_port, 7000);
        let c = Config::from_properties(props(&[
            ("admin.enableServer", "false"),
            ("admin.serverAddress", "127.0.0.1"),
            ("admin.serverPort", "9090"),
            ("admin.commandURL", "/cmds"),
            (
                "metricsProvider.className",
                "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            ),
            ("metricsProvider.httpHost", "localhost"),
            ("metricsProvider.httpPort", "7001"),
            ("metricsProvider.exportJvmInfo", "false"),
            ("metricsProvider.numWorkerThreads", "2"),
        ]))
        .unwrap();
        assert!(!c.admin_enable_server);
        assert_eq!(c.admin_server_address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.admin_server_port, 9090);
        assert_eq!(c.admin_command_url, "/cmds");
        assert!(c.prometheus_enabled);
        assert!(c.metrics_http_host.is_loopback());
        assert_eq!(c.metrics_http_port, 7001);
        for (k, v) in [
            ("admin.enableServer", "maybe"),
            ("admin.serverPort", "80800"),
            ("metricsProvider.className", "com.example.Nope"),
            ("metricsProvider.httpPort", "x"),
        ] {
            let err = Config::from_properties(props(&[(k, v)])).unwrap_err();
            assert!(err.to_string().contains(k), "{err}");
        }
    }

    #[test]
    fn prefixed_system_property_keys_are_accepted() {
        let c = Config::from_properties(props(&[(
            "zookeeper.DigestAuthenticationProvider.superDigest",
            "super:x=",
        )]))
        .unwrap();
        assert!(c.super_digest.is_some());
    }
}
