//! The one task that owns the core: it turns connection events and the passage of time
//! into calls on [`Core`], and hands each connection its batch of output.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use oxkeeper_core::pipeline::{Core, CoreConfig, Delivery, Now};
use oxkeeper_core::watch::ConnId;
use tokio::sync::{mpsc, oneshot, watch};

use crate::{fourlw, ServerInfo};

pub enum Event {
    Open {
        conn: ConnId,
        peer: SocketAddr,
        out: mpsc::Sender<Delivery>,
    },
    Frame {
        conn: ConnId,
        frame: Bytes,
        received: Instant,
    },
    Closed {
        conn: ConnId,
    },
    FourLetter {
        word: &'static str,
        peer: SocketAddr,
        reply: oneshot::Sender<String>,
    },
}

pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Events handled before output is flushed: enough to batch a burst, few enough to keep
/// latency low.
const BATCH: usize = 256;

pub async fn run(
    config: CoreConfig,
    info: Arc<ServerInfo>,
    mut events: mpsc::Receiver<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let clock = info.started;
    let now = || Now {
        mono_ms: clock.elapsed().as_millis() as u64,
        wall_ms: wall_ms(),
    };
    // The session tracker must hear from us at least once per tick, or it takes the
    // silence for a stall of the server; half a tick leaves room for scheduling delays.
    let max_sleep = Duration::from_millis(u64::from(config.session.tick_time_ms / 2).max(1));
    let mut core = Core::new(config, now());
    let mut outputs: HashMap<ConnId, mpsc::Sender<Delivery>> = HashMap::new();
    let mut reaper = Reaper::new(&info.config, now());
    loop {
        let wait = Duration::from_millis(core.next_tick_ms(now())).min(max_sleep);
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                handle(&mut core, &info, &mut outputs, ev, now());
                for _ in 0..BATCH {
                    match events.try_recv() {
                        Ok(ev) => handle(&mut core, &info, &mut outputs, ev, now()),
                        Err(_) => break,
                    }
                }
            }
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
        core.tick(now());
        reaper.run_if_due(&mut core, now());
        // State lives in memory only: nothing to make durable.
        let _ = core.take_txns();
        deliver(&mut core, &mut outputs);
    }
    tracing::info!("core stopped");
}

/// ZooKeeper's container manager schedule: a check every interval, deleting at most
/// `maxPerMinute` nodes a minute.
struct Reaper {
    next_check_ms: u64,
    interval_ms: u64,
    per_check: usize,
    max_never_used_ms: u64,
}

impl Reaper {
    fn new(config: &crate::Config, now: Now) -> Reaper {
        let interval_ms = config.container_check_interval_ms.max(1);
        let per_check =
            (config.container_max_per_minute.saturating_mul(interval_ms) / 60_000).max(1);
        Reaper {
            next_check_ms: now.mono_ms + interval_ms,
            interval_ms,
            per_check: usize::try_from(per_check).unwrap_or(usize::MAX),
            max_never_used_ms: config.container_max_never_used_ms,
        }
    }

    fn run_if_due(&mut self, core: &mut Core, now: Now) {
        if now.mono_ms < self.next_check_ms {
            return;
        }
        self.next_check_ms = now.mono_ms + self.interval_ms;
        for path in core
            .reap_candidates(now, self.max_never_used_ms)
            .into_iter()
            .take(self.per_check)
        {
            if core.reap(&path, now) {
                tracing::debug!(%path, "reaped an empty container or expired TTL node");
            }
        }
    }
}

fn handle(
    core: &mut Core,
    info: &ServerInfo,
    outputs: &mut HashMap<ConnId, mpsc::Sender<Delivery>>,
    ev: Event,
    now: Now,
) {
    match ev {
        Event::Open { conn, peer, out } => {
            outputs.insert(conn, out);
            core.open_connection(conn, peer, now);
        }
        Event::Frame {
            conn,
            frame,
            received,
        } => {
            let received_ms = received.saturating_duration_since(info.started).as_millis() as u64;
            core.handle_frame_received(conn, frame, received_ms, now)
        }
        Event::Closed { conn } => {
            outputs.remove(&conn);
            core.close_connection(conn);
        }
        Event::FourLetter { word, peer, reply } => {
            let text = fourlw::render(word, peer, core, info, now);
            let _ = reply.send(text);
        }
    }
}

fn deliver(core: &mut Core, outputs: &mut HashMap<ConnId, mpsc::Sender<Delivery>>) {
    for d in core.take_output() {
        let conn = d.conn;
        let Some(tx) = outputs.get(&conn) else {
            continue;
        };
        if let Err(e) = tx.try_send(d) {
            if matches!(e, mpsc::error::TrySendError::Full(_)) {
                tracing::warn!(
                    conn = conn.0,
                    "client is not reading its replies; dropping the connection"
                );
            }
            // Dropping the sender ends the connection task, which reports it closed.
            outputs.remove(&conn);
        }
    }
}
