//! Group commit: a dedicated thread appends the core's transactions to the log and fsyncs
//! them in batches; the core task delivers a batch's replies and events only once its
//! transactions are durable.
//!
//! The core applies a transaction to its tree as soon as prep accepts it, but nothing it
//! produced afterwards leaves the server before the fsync that covers it: no client can
//! observe state that a crash could take back, and batches that arrive while an fsync is
//! in flight share the next one.

use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use oxkeeper_proto::{Txn, TxnHeader};
use oxkeeper_storage::TxnLog;
use tokio::sync::mpsc;

/// Work for the sync thread, in the order the core produced it.
pub enum SyncJob {
    Batch {
        id: u64,
        txns: Vec<(TxnHeader, Txn)>,
    },
    /// A serialized snapshot of the tree as of `zxid`: written once every earlier batch is
    /// durable, and the log rolls so the next file starts after it.
    Snapshot { zxid: i64, bytes: Vec<u8> },
}

pub enum SyncEvent {
    /// Every batch up to and including `id` is durable.
    Durable { id: u64 },
    /// The disk failed: nothing after the last `Durable` is; the server must stop.
    Failed(String),
}

/// Figures the sync thread reports for metrics: ZooKeeper's fsynctime summary plus a
/// histogram for its percentiles.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsyncStats {
    pub count: u64,
    pub last_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
    pub total_ms: u64,
    /// `histogram_us[k]` counts fsyncs that took less than 2^k µs (the last bucket also
    /// everything slower): fixed size, so reading it copies no allocation.
    pub histogram_us: [u64; 32],
}

impl FsyncStats {
    pub fn record(&mut self, took: Duration) {
        let ms = took.as_millis() as u64;
        self.min_ms = if self.count == 0 {
            ms
        } else {
            self.min_ms.min(ms)
        };
        self.count += 1;
        self.last_ms = ms;
        self.max_ms = self.max_ms.max(ms);
        self.total_ms += ms;
        let us = took.as_micros().max(1) as u64;
        let bucket = (64 - us.leading_zeros() as usize).min(self.histogram_us.len() - 1);
        self.histogram_us[bucket] += 1;
    }

    /// The `q` quantile in milliseconds, as the upper bound of its histogram bucket.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (k, n) in self.histogram_us.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return (1u64 << k) as f64 / 1000.0;
            }
        }
        self.max_ms as f64
    }
}

pub struct SyncSettings {
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    pub snap_retain_count: usize,
    pub purge_interval: Option<Duration>,
}

pub fn spawn(
    settings: SyncSettings,
    log: TxnLog,
    events: mpsc::UnboundedSender<SyncEvent>,
    stats: std::sync::Arc<std::sync::Mutex<FsyncStats>>,
) -> std::io::Result<std_mpsc::Sender<SyncJob>> {
    let (tx, rx) = std_mpsc::channel::<SyncJob>();
    let (snap_tx, snap_rx) = std_mpsc::channel::<(i64, Vec<u8>)>();
    let snap_settings = (
        settings.data_dir.clone(),
        settings.log_dir.clone(),
        settings.snap_retain_count,
        settings.purge_interval,
    );
    std::thread::Builder::new()
        .name("oxkeeper-snapshot".into())
        .spawn(move || snapshot_loop(snap_settings, snap_rx))?;
    std::thread::Builder::new()
        .name("oxkeeper-sync".into())
        .spawn(move || sync_loop(log, rx, snap_tx, events, stats))?;
    Ok(tx)
}

fn sync_loop(
    mut log: TxnLog,
    jobs: std_mpsc::Receiver<SyncJob>,
    snapshots: std_mpsc::Sender<(i64, Vec<u8>)>,
    events: mpsc::UnboundedSender<SyncEvent>,
    stats: std::sync::Arc<std::sync::Mutex<FsyncStats>>,
) {
    let fail = |what: String| {
        tracing::error!(error = %what, "transaction log failed; no further writes are accepted");
        let _ = events.send(SyncEvent::Failed(what));
    };
    while let Ok(first) = jobs.recv() {
        // Everything already queued joins this group commit.
        let mut batch = vec![first];
        batch.extend(jobs.try_iter());
        let mut durable_id = None;
        for job in batch {
            match job {
                SyncJob::Batch { id, txns } => {
                    for (header, txn) in &txns {
                        if let Err(e) = log.append(header, txn) {
                            fail(format!("append of zxid 0x{:x} failed: {e}", header.zxid));
                            return;
                        }
                    }
                    durable_id = Some(id);
                }
                SyncJob::Snapshot { zxid, bytes } => {
                    if !sync(&mut log, &stats, &fail) {
                        return;
                    }
                    if let Some(id) = durable_id.take() {
                        let _ = events.send(SyncEvent::Durable { id });
                    }
                    log.roll();
                    let _ = snapshots.send((zxid, bytes));
                }
            }
        }
        if let Some(id) = durable_id {
            if !sync(&mut log, &stats, &fail) {
                return;
            }
            let _ = events.send(SyncEvent::Durable { id });
        }
    }
}

/// Flushes and fsyncs the log (the log warns about slow fsyncs itself).
fn sync(log: &mut TxnLog, stats: &std::sync::Mutex<FsyncStats>, fail: &impl Fn(String)) -> bool {
    let synced = match log.sync() {
        Ok(s) => s,
        Err(e) => {
            fail(format!("fsync of the transaction log failed: {e}"));
            return false;
        }
    };
    stats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record(synced.fsync);
    true
}

fn snapshot_loop(
    (data_dir, log_dir, retain, purge_interval): (PathBuf, PathBuf, usize, Option<Duration>),
    snapshots: std_mpsc::Receiver<(i64, Vec<u8>)>,
) {
    let mut last_purge = Instant::now();
    loop {
        let wait = purge_interval
            .map(|p| p.saturating_sub(last_purge.elapsed()))
            .unwrap_or(Duration::from_secs(3600));
        match snapshots.recv_timeout(wait) {
            Ok((zxid, bytes)) => {
                let started = Instant::now();
                match oxkeeper_storage::write_snapshot(&data_dir, zxid, &bytes) {
                    Ok(path) => {
                        tracing::info!(path = %path.display(), bytes = bytes.len(), ms = started.elapsed().as_millis() as u64, "snapshot written")
                    }
                    // The log still holds everything: a missing snapshot only makes the
                    // next recovery replay more.
                    Err(e) => {
                        tracing::error!(zxid = format_args!("0x{zxid:x}"), error = %e, "snapshot failed")
                    }
                }
            }
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if let Some(interval) = purge_interval {
            if last_purge.elapsed() >= interval {
                last_purge = Instant::now();
                if let Err(e) = oxkeeper_storage::purge(&data_dir, &log_dir, retain) {
                    tracing::warn!(error = %e, "purging old snapshots and logs failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_quantiles_come_from_the_histogram() {
        let mut s = FsyncStats::default();
        for _ in 0..90 {
            s.record(Duration::from_micros(700));
        }
        for _ in 0..10 {
            s.record(Duration::from_millis(40));
        }
        assert_eq!(s.count, 100);
        assert_eq!(s.quantile_ms(0.5), 1.024, "700 µs falls below 2^10 µs");
        assert_eq!(s.quantile_ms(0.99), 65.536, "40 ms falls below 2^16 µs");
        assert_eq!((s.min_ms, s.max_ms), (0, 40));
    }
}
