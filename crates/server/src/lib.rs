//! The tokio shell around `oxkeeper-core`.
//!
//! Owns configuration (zoo.cfg), the listener and its per-IP connection limit, one task per
//! connection that frames bytes, the single task that owns the core and feeds it events and
//! ticks, and the four-letter words. Must not hold protocol or tree logic: requests are
//! decoded and answered by the core; this crate only moves bytes and time.

pub mod config;
mod connection;
mod core_task;
pub mod fourlw;
mod listener;

use std::net::SocketAddr;
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
}

/// Facts about the running server that the four-letter words report.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub config: Config,
    pub client_addr: SocketAddr,
    pub started: Instant,
    pub started_wall_ms: i64,
}

/// A server that is accepting connections.
pub struct RunningServer {
    pub local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops accepting, closes every connection and waits for the core to finish.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.done.await;
    }

    /// Waits until the server stops by itself (it only does when shut down).
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Binds the client port and starts serving. With `clientPort=0` the OS picks the port;
/// `local_addr` tells which.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    let addr = SocketAddr::new(config.client_port_address, config.client_port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServerError::Bind { addr, source })?;
    let info = Arc::new(ServerInfo {
        config: config.clone(),
        client_addr: local_addr,
        started: Instant::now(),
        started_wall_ms: core_task::wall_ms(),
    });
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
    };
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Bounded: a flood of requests waits in the sockets, not in our memory.
    let (events_tx, events_rx) = mpsc::channel(4096);
    let core = tokio::spawn(core_task::run(
        core_config,
        info.clone(),
        events_rx,
        shutdown_rx.clone(),
    ));
    let accept = tokio::spawn(listener::accept_loop(
        listener,
        info,
        events_tx,
        shutdown_rx,
    ));
    let done = tokio::spawn(async move {
        let _ = accept.await;
        let _ = core.await;
    });
    tracing::info!(%local_addr, version = VERSION, "oxkeeper serving");
    Ok(RunningServer {
        local_addr,
        shutdown: shutdown_tx,
        done,
    })
}
