//! The tokio shell around `oxkeeper-core`.
//!
//! Owns configuration (zoo.cfg), the I/O thread that owns every socket and frames bytes
//! (with the per-IP connection limit), the single task that owns the core and feeds it
//! events and ticks, the durability threads, and the four-letter words. Must not hold protocol or tree logic: requests are
//! decoded and answered by the core; this crate only moves bytes and time.

mod admin;
pub mod config;
mod core_task;
mod durability;
pub mod fourlw;
mod io;
mod listener;
mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

pub use config::{Config, ConfigError, FourLetterWhitelist};

/// Version string reported by `srvr`, `stat`, `mntr` and `envi`: ZooKeeper-shaped, so tools
/// that parse it keep working, and naming oxkeeper.
pub const VERSION: &str = concat!("3.9.3-oxkeeper-", env!("CARGO_PKG_VERSION"));

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid session settings: {0}")]
    Sessions(String),
    #[error("cannot recover the data in {dir}: {message}")]
    Recovery { dir: PathBuf, message: String },
    #[error("cannot open the transaction log in {dir}: {message}")]
    Log { dir: PathBuf, message: String },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
}

/// Facts about the running server that the four-letter words report.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub config: Config,
    pub client_addr: SocketAddr,
    pub started: Instant,
    pub started_wall_ms: i64,
    pub fsync: Arc<std::sync::Mutex<durability::FsyncStats>>,
}

/// A server that is accepting connections.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<Result<(), String>>,
}

impl RunningServer {
    /// Stops accepting, closes every connection and waits for the core to finish.
    pub async fn shutdown(self) -> Result<(), String> {
        let _ = self.shutdown.send(true);
        self.done.await.unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Waits until the server stops by itself: only a failed disk makes it do so.
    pub async fn stopped(&mut self) -> Result<(), String> {
        (&mut self.done)
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    }
}

/// A listener with room for bursts of connects: the OS default backlog (128) makes the
/// kernel drop SYNs when thousands of clients connect at once.
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Binds the client port and starts serving. With `clientPort=0` the OS picks the port;
/// `local_addr` tells which.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    let session = oxkeeper_core::session::SessionConfig {
        server_id: config.server_id,
        tick_time_ms: config.tick_time_ms,
        min_session_timeout_ms: config.min_session_timeout_ms(),
        max_session_timeout_ms: config.max_session_timeout_ms(),
        ..oxkeeper_core::session::SessionConfig::new(config.tick_time_ms)
    };
    session
        .validate()
        .map_err(|e| ServerError::Sessions(e.to_string()))?;
    let core_config = oxkeeper_core::pipeline::CoreConfig {
        session,
        super_digest: config.super_digest.clone(),
        skip_acl: config.skip_acl,
        extended_types_enabled: config.extended_types_enabled,
        enforce_quota: config.enforce_quota,
    };

    let data_dir = config.data_dir.clone();
    let log_dir = config.data_log_dir().to_path_buf();
    let recovered = oxkeeper_storage::recover(
        &data_dir,
        &log_dir,
        oxkeeper_storage::RecoverOptions {
            truncate_at_corruption: config.truncate_log_at_corruption,
            ..oxkeeper_storage::RecoverOptions::default()
        },
    )
    .map_err(|e| ServerError::Recovery {
        dir: data_dir.clone(),
        message: e.to_string(),
    })?;
    tracing::info!(
        zxid = format_args!("0x{:x}", recovered.last_zxid),
        nodes = recovered.tree.node_count(),
        sessions = recovered.sessions.len(),
        "recovered"
    );
    let log_options = oxkeeper_storage::LogOptions {
        force_sync: config.force_sync,
        fsync_warning_threshold: std::time::Duration::from_millis(
            config.fsync_warning_threshold_ms,
        ),
        ..oxkeeper_storage::LogOptions::default()
    }
    .with_prealloc_kib(config.prealloc_kib);
    let log =
        oxkeeper_storage::TxnLog::open(&log_dir, log_options).map_err(|e| ServerError::Log {
            dir: log_dir.clone(),
            message: e.to_string(),
        })?;

    let addr = SocketAddr::new(config.client_port_address, config.client_port);
    let listener =
        bind(addr, config.listen_backlog).map_err(|source| ServerError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let http = admin::bind(&config).await?;
    let fsync = Arc::new(std::sync::Mutex::new(durability::FsyncStats::default()));
    let info = Arc::new(ServerInfo {
        config: config.clone(),
        client_addr: local_addr,
        started: Instant::now(),
        started_wall_ms: core_task::wall_ms(),
        fsync: fsync.clone(),
    });
    let (acks_tx, acks_rx) = mpsc::unbounded_channel();
    let jobs = durability::spawn(
        durability::SyncSettings {
            data_dir,
            log_dir,
            snap_retain_count: config.snap_retain_count,
            purge_interval: (config.purge_interval_hours > 0)
                .then(|| std::time::Duration::from_secs(config.purge_interval_hours * 3600)),
        },
        log,
        acks_tx,
        fsync,
    )
    .map_err(ServerError::Thread)?;
    let core = oxkeeper_core::pipeline::Core::restore(
        core_config,
        core_task::now_since(info.started),
        recovered.tree,
        &recovered.sessions,
    );

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Bounded: a flood of requests waits in the sockets, not in our memory.
    let (events_tx, events_rx) = mpsc::channel(4096);
    let durability = core_task::Durability {
        jobs,
        acks: acks_rx,
        snap_count: config.snap_count,
    };
    let listener = listener
        .into_std()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let (mailbox, io_done) =
        io::spawn(listener, info.clone(), events_tx.clone()).map_err(ServerError::Thread)?;
    let core = tokio::spawn(core_task::run(
        core,
        info.clone(),
        events_rx,
        shutdown_rx.clone(),
        durability,
        mailbox.clone(),
    ));
    let http = admin::spawn(
        http,
        admin::CoreHandle::new(events_tx.clone(), info.clone()),
        shutdown_rx.clone(),
    );
    let mut stop_io = shutdown_rx;
    tokio::spawn(async move {
        let _ = stop_io.changed().await;
        mailbox.stop();
    });
    let shutdown_on_failure = shutdown_tx.clone();
    let done = tokio::spawn(async move {
        let result = core.await.unwrap_or_else(|e| Err(e.to_string()));
        // However the core ended, stop accepting and close every connection.
        let _ = shutdown_on_failure.send(true);
        let _ = io_done.await;
        http.stopped().await;
        result
    });
    tracing::info!(%local_addr, version = VERSION, "oxkeeper serving");
    Ok(RunningServer {
        local_addr,
        shutdown: shutdown_tx,
        done,
    })
}
