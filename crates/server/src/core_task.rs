//! The one task that owns the core: it turns connection events and the passage of time
//! into calls on [`Core`], and hands each connection its batch of output.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use oxkeeper_core::pipeline::{Core, Delivery, Now};
use oxkeeper_core::watch::ConnId;
use tokio::sync::{mpsc, oneshot, watch};

use crate::durability::{SyncEvent, SyncJob};
use crate::outlet::Outlet;
use crate::{fourlw, ServerInfo};

pub enum Event {
    Open {
        conn: ConnId,
        peer: SocketAddr,
        out: Arc<Outlet>,
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

/// The core's notion of now: milliseconds since `started` on the monotonic clock, and
/// the wall clock.
pub fn now_since(started: Instant) -> Now {
    Now {
        mono_ms: started.elapsed().as_millis() as u64,
        wall_ms: wall_ms(),
    }
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

/// The durability side of the core task: where batches go and where acks come from.
pub struct Durability {
    pub jobs: std::sync::mpsc::Sender<SyncJob>,
    pub acks: mpsc::UnboundedReceiver<SyncEvent>,
    pub snap_count: u64,
}

/// Output held until the transactions it was produced with are durable.
struct Held {
    /// The batch whose durability releases this output; `None` when it has no
    /// transactions of its own and only waits for the batches before it.
    batch: Option<u64>,
    output: Vec<Delivery>,
}

pub async fn run(
    mut core: Core,
    info: Arc<ServerInfo>,
    mut events: mpsc::Receiver<Event>,
    mut shutdown: watch::Receiver<bool>,
    mut durability: Durability,
) -> Result<(), String> {
    let started = info.started;
    let now = || now_since(started);
    // The session tracker must hear from us at least once per tick, or it takes the
    // silence for a stall of the server; half a tick leaves room for scheduling delays.
    let max_sleep = Duration::from_millis(u64::from(core.config().session.tick_time_ms / 2).max(1));
    let mut outputs: HashMap<ConnId, Arc<Outlet>> = HashMap::new();
    let mut reaper = Reaper::new(&info.config, now());
    let mut held: VecDeque<Held> = VecDeque::new();
    let mut next_batch: u64 = 1;
    let mut durable: u64 = 0;
    let mut rng = wall_ms() as u64 | 1;
    let mut snapshot_after = snapshot_threshold(durability.snap_count, &mut rng);
    let mut txns_since_snapshot: u64 = 0;
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
            ack = durability.acks.recv() => match ack {
                Some(SyncEvent::Durable { id }) => durable = durable.max(id),
                Some(SyncEvent::Failed(e)) => return Err(e),
                None => return Err("the transaction log thread stopped".into()),
            },
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
        core.tick(now());
        reaper.run_if_due(&mut core, now());
        let txns = core.take_txns();
        let output = core.take_output();
        if !txns.is_empty() {
            let id = next_batch;
            next_batch += 1;
            txns_since_snapshot += txns.len() as u64;
            if durability.jobs.send(SyncJob::Batch { id, txns }).is_err() {
                return Err("the transaction log thread stopped".into());
            }
            held.push_back(Held {
                batch: Some(id),
                output,
            });
            if txns_since_snapshot >= snapshot_after {
                take_snapshot(&core, &durability)?;
                txns_since_snapshot = 0;
                snapshot_after = snapshot_threshold(durability.snap_count, &mut rng);
            }
        } else if !output.is_empty() {
            if held.is_empty() {
                deliver(output, &mut outputs);
            } else {
                held.push_back(Held {
                    batch: None,
                    output,
                });
            }
        }
        while held
            .front()
            .is_some_and(|h| h.batch.is_none_or(|b| b <= durable))
        {
            if let Some(h) = held.pop_front() {
                deliver(h.output, &mut outputs);
            }
        }
    }
    tracing::info!("core stopped");
    Ok(())
}

/// ZooKeeper snapshots after snapCount/2 plus a random share of snapCount/2 transactions.
fn snapshot_threshold(snap_count: u64, rng: &mut u64) -> u64 {
    // xorshift64: the spread only has to differ between servers and runs.
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let half = (snap_count / 2).max(1);
    half + *rng % half
}

fn take_snapshot(core: &Core, durability: &Durability) -> Result<(), String> {
    let started = Instant::now();
    let bytes = oxkeeper_storage::serialize_snapshot(core.tree(), &core.session_table());
    let zxid = core.last_zxid();
    tracing::info!(
        zxid = format_args!("0x{zxid:x}"),
        nodes = core.tree().node_count(),
        pause_ms = started.elapsed().as_millis() as u64,
        "snapshot serialized"
    );
    durability
        .jobs
        .send(SyncJob::Snapshot { zxid, bytes })
        .map_err(|_| "the transaction log thread stopped".to_string())
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
    outputs: &mut HashMap<ConnId, Arc<Outlet>>,
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

fn deliver(output: Vec<Delivery>, outputs: &mut HashMap<ConnId, Arc<Outlet>>) {
    for d in output {
        let conn = d.conn;
        let Some(outlet) = outputs.get(&conn) else {
            continue;
        };
        if outlet.push(d).is_err() {
            tracing::warn!(
                conn = conn.0,
                "client is not reading its replies; dropping the connection"
            );
            // Closing the outlet ends the connection task, which reports it closed.
            outlet.close();
            outputs.remove(&conn);
        }
    }
}
