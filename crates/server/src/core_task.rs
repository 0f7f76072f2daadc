//! The one task that owns the core: it turns connection events and the passage of time
//! into calls on [`Core`], and hands each connection its batch of output.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use oxkeeper_core::pipeline::{Core, Delivery, Now};
use oxkeeper_core::watch::ConnId;
use tokio::sync::{mpsc, oneshot, watch};

use crate::durability::{SyncEvent, SyncJob};
use crate::io::Mailbox;
use crate::{fourlw, ServerInfo};

pub enum Event {
    Open {
        conn: ConnId,
        peer: SocketAddr,
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
    /// An AdminServer command or a metrics scrape: runs against the core between events,
    /// as a four-letter word does, and answers through its own channel.
    Admin {
        run: crate::admin::CoreJob,
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
    mailbox: Arc<Mailbox>,
) -> Result<(), String> {
    let started = info.started;
    let now = || now_since(started);
    // The session tracker must hear from us at least once per tick, or it takes the
    // silence for a stall of the server; half a tick leaves room for scheduling delays.
    let max_sleep = Duration::from_millis(u64::from(core.config().session.tick_time_ms / 2).max(1));
    let mut reaper = Reaper::new(&info.config, now());
    let mut held: VecDeque<Held> = VecDeque::new();
    let mut next_batch: u64 = 1;
    let mut durable: u64 = 0;
    let mut snapshots = Snapshots::new(durability.snap_count);
    loop {
        // A snapshot in progress advances a slice per turn, so turns must keep coming.
        let wait = if snapshots.in_progress() {
            Duration::ZERO
        } else {
            Duration::from_millis(core.next_tick_ms(now())).min(max_sleep)
        };
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                handle(&mut core, &info, ev, now());
                for _ in 0..BATCH {
                    match events.try_recv() {
                        Ok(ev) => handle(&mut core, &info, ev, now()),
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
            snapshots.count(txns.len());
            if durability.jobs.send(SyncJob::Batch { id, txns }).is_err() {
                return Err("the transaction log thread stopped".into());
            }
            held.push_back(Held {
                batch: Some(id),
                output,
            });
        } else if !output.is_empty() {
            if held.is_empty() {
                mailbox.deliver(output);
            } else {
                held.push_back(Held {
                    batch: None,
                    output,
                });
            }
        }
        // After this turn's batch was queued, so a finished snapshot is written only once
        // every transaction its content may reflect is durable.
        snapshots.advance(&core, &durability)?;
        while held
            .front()
            .is_some_and(|h| h.batch.is_none_or(|b| b <= durable))
        {
            if let Some(h) = held.pop_front() {
                mailbox.deliver(h.output);
            }
        }
    }
    tracing::info!("core stopped");
    Ok(())
}

/// Nodes serialized per turn of the core task while a snapshot is in progress: a pause
/// of a few milliseconds, however large the tree.
const SNAPSHOT_STEP_NODES: usize = 5_000;

/// Fuzzy snapshots, as ZooKeeper takes them: the tree is walked in slices between
/// requests while it keeps changing; recovery replays the log from the zxid the walk
/// started at, and replay is idempotent, so the result is exact.
struct Snapshots {
    snap_count: u64,
    rng: u64,
    /// Transactions to go before the next snapshot starts.
    after: u64,
    since: u64,
    walk: Option<(oxkeeper_storage::SnapshotBuilder, Instant, Duration)>,
}

impl Snapshots {
    fn new(snap_count: u64) -> Snapshots {
        let mut s = Snapshots {
            snap_count,
            rng: wall_ms() as u64 | 1,
            after: 0,
            since: 0,
            walk: None,
        };
        s.after = s.threshold();
        s
    }

    /// ZooKeeper snapshots after snapCount/2 plus a random share of snapCount/2
    /// transactions, so that ensemble members do not snapshot together.
    fn threshold(&mut self) -> u64 {
        // xorshift64: the spread only has to differ between servers and runs.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = (self.snap_count / 2).max(1);
        half + self.rng % half
    }

    fn count(&mut self, txns: usize) {
        self.since += txns as u64;
    }

    fn in_progress(&self) -> bool {
        self.walk.is_some()
    }

    fn advance(&mut self, core: &Core, durability: &Durability) -> Result<(), String> {
        if self.walk.is_none() {
            if self.since < self.after {
                return Ok(());
            }
            self.since = 0;
            self.after = self.threshold();
            let builder =
                oxkeeper_storage::SnapshotBuilder::start(core.tree(), &core.session_table());
            self.walk = Some((builder, Instant::now(), Duration::ZERO));
        }
        let Some((builder, _, longest)) = self.walk.as_mut() else {
            return Ok(());
        };
        let slice = Instant::now();
        let done = builder.step(core.tree(), SNAPSHOT_STEP_NODES);
        *longest = (*longest).max(slice.elapsed());
        if !done {
            return Ok(());
        }
        let Some((builder, started, longest)) = self.walk.take() else {
            return Ok(());
        };
        let zxid = builder.zxid();
        let nodes = builder.nodes_written();
        let bytes = builder.finish();
        tracing::info!(
            zxid = format_args!("0x{zxid:x}"),
            nodes,
            walk_ms = started.elapsed().as_millis() as u64,
            longest_pause_ms = longest.as_millis() as u64,
            "snapshot serialized"
        );
        durability
            .jobs
            .send(SyncJob::Snapshot { zxid, bytes })
            .map_err(|_| "the transaction log thread stopped".to_string())
    }
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

fn handle(core: &mut Core, info: &ServerInfo, ev: Event, now: Now) {
    match ev {
        Event::Open { conn, peer } => core.open_connection(conn, peer, now),
        Event::Frame {
            conn,
            frame,
            received,
        } => {
            let received_ms = received.saturating_duration_since(info.started).as_millis() as u64;
            core.handle_frame_received(conn, frame, received_ms, now)
        }
        Event::Closed { conn } => core.close_connection(conn),
        Event::FourLetter { word, peer, reply } => {
            let text = fourlw::render(word, peer, core, info, now);
            let _ = reply.send(text);
        }
        Event::Admin { run } => run(core, info, now),
    }
}
