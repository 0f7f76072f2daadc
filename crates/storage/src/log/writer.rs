//! The txn log writer: ZooKeeper's `FileTxnLog.append/commit/rollLog`.
//!
//! Owns file creation (`log.<hex zxid of the first txn>`), buffering between group
//! commits, preallocation with `FilePadding`'s arithmetic, fsync (unless `forceSync=no`)
//! and its latency, rolling, and the failure rule: after any write or sync error the
//! log refuses everything, because acknowledging later transactions over a hole would
//! be a lie. All file I/O goes through [`Disk`], so tests can make it fail.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oxkeeper_proto::{Txn, TxnHeader};

use super::record::{self, TxnDigest, FILE_HEADER_LEN, MAX_PAYLOAD};
use crate::disk::{Disk, LogFile, StdDisk};
use crate::error::{Error, Result};
use crate::layout;

/// ZooKeeper's default `preAllocSize`: 65536 KiB.
pub const DEFAULT_PREALLOC: u64 = 64 * 1024 * 1024;

/// How the log writes.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// `forceSync`: fdatasync at every [`TxnLog::sync`]. Off (`forceSync=no`) only
    /// writes, trading the last transactions' durability for speed.
    pub force_sync: bool,
    /// Preallocation block in bytes (`preAllocSize` × 1024); 0 disables it.
    pub prealloc_bytes: u64,
    /// `zookeeper.txnLogSizeLimitInKb` × 1024: roll after a sync once the current file
    /// is larger. `None` (ZooKeeper's -1) never rolls on size.
    pub size_limit_bytes: Option<u64>,
    /// Appended bytes kept in memory before they are written out (not synced), bounding
    /// memory between group commits like ZooKeeper's buffered stream.
    pub write_buffer_bytes: usize,
    /// `fsync.warningthresholdms`: a slower fsync is logged as a warning.
    pub fsync_warning_threshold: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            force_sync: true,
            prealloc_bytes: DEFAULT_PREALLOC,
            size_limit_bytes: None,
            write_buffer_bytes: 1 << 20,
            fsync_warning_threshold: Duration::from_millis(1000),
        }
    }
}

impl LogOptions {
    /// Sets the preallocation block from zoo.cfg's `preAllocSize` (KiB).
    pub fn with_prealloc_kib(mut self, kib: u64) -> Self {
        self.prealloc_bytes = kib.saturating_mul(1024);
        self
    }
}

/// What one [`TxnLog::sync`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncStats {
    /// Transactions made durable by this call.
    pub txns: usize,
    /// Bytes written by this call.
    pub bytes: u64,
    /// Time spent in fdatasync (zero when `force_sync` is off): the figure ZooKeeper
    /// histograms as `fsync_time` and compares with `fsync.warningthresholdms`.
    pub fsync: Duration,
    /// The whole call: writes plus syncs.
    pub total: Duration,
}

/// `FilePadding.calculateFileSizeWithPadding`: once the write position is within 4 KiB
/// of the preallocated size, grow by one block (or, past the end, to the block boundary
/// below position + block).
pub fn padded_size(position: u64, current: u64, prealloc: u64) -> u64 {
    if prealloc > 0 && position + 4096 >= current {
        if position > current {
            let s = position + prealloc;
            s - s % prealloc
        } else {
            current + prealloc
        }
    } else {
        current
    }
}

/// One log file being written.
struct Segment {
    path: PathBuf,
    /// Created at the first write-out, so an append does no I/O.
    file: Option<Box<dyn LogFile>>,
    /// Bytes not yet written; they belong at offset `written`.
    buf: Vec<u8>,
    written: u64,
    synced: u64,
    /// `FilePadding.currentSize`.
    padded: u64,
    /// Size to extend to (one zero byte at size − 1) at the next write-out.
    pad_pending: Option<u64>,
    unsynced_txns: usize,
}

impl Segment {
    fn position(&self) -> u64 {
        self.written + self.buf.len() as u64
    }
}

/// The transaction log of one directory.
pub struct TxnLog {
    dir: PathBuf,
    options: LogOptions,
    disk: Box<dyn Disk>,
    current: Option<Segment>,
    /// Rolled files with data not yet durable; the next sync finishes them.
    rolled: Vec<Segment>,
    failed: Option<String>,
    last_zxid: i64,
    last_sync: Option<SyncStats>,
}

impl TxnLog {
    /// Opens the log in `<log_dir>/version-2` (created if missing). Nothing is written
    /// until the first append; that append starts a new file, as every ZooKeeper start
    /// does.
    pub fn open(log_dir: &Path, options: LogOptions) -> Result<TxnLog> {
        Self::open_with_disk(log_dir, options, Box::new(StdDisk))
    }

    /// [`TxnLog::open`] with another [`Disk`] (fault injection in tests).
    pub fn open_with_disk(
        log_dir: &Path,
        options: LogOptions,
        disk: Box<dyn Disk>,
    ) -> Result<TxnLog> {
        let dir = layout::version_dir(log_dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
        Ok(TxnLog {
            dir,
            options,
            disk,
            current: None,
            rolled: Vec::new(),
            failed: None,
            last_zxid: 0,
            last_sync: None,
        })
    }

    /// Buffers one transaction (no I/O unless the buffer is full). It is durable only
    /// once a later [`TxnLog::sync`] returns `Ok`.
    pub fn append(&mut self, header: &TxnHeader, txn: &Txn) -> Result<()> {
        self.append_with_digest(header, txn, None)
    }

    /// [`TxnLog::append`] with ZooKeeper's optional TxnDigest (the tree digest after
    /// this transaction).
    pub fn append_with_digest(
        &mut self,
        header: &TxnHeader,
        txn: &Txn,
        digest: Option<TxnDigest>,
    ) -> Result<()> {
        self.check_usable()?;
        if matches!(txn, Txn::Check(_)) {
            // ZooKeeper's log reader has no top-level check type and would stop there.
            return Err(Error::Invalid(
                "a check is only valid inside a multi".to_owned(),
            ));
        }
        if !record::type_matches(header, txn) {
            return Err(Error::Invalid(format!(
                "header type {} does not match a {} body",
                header.txn_type,
                txn.txn_type()
            )));
        }
        let payload = record::encode_payload(header, txn, digest);
        if payload.len() > MAX_PAYLOAD {
            // No reader (ours or ZooKeeper's) would accept it: refuse rather than write
            // a record that stops recovery.
            return Err(Error::Invalid(format!(
                "txn 0x{:x} is {} bytes, above the {} bytes a log reader accepts",
                header.zxid,
                payload.len(),
                MAX_PAYLOAD
            )));
        }
        if header.zxid <= self.last_zxid {
            tracing::warn!(
                zxid = format_args!("0x{:x}", header.zxid),
                last = format_args!("0x{:x}", self.last_zxid),
                "appending a zxid not above the last one"
            );
        } else {
            self.last_zxid = header.zxid;
        }
        let prealloc = self.options.prealloc_bytes;
        let seg = self.current.get_or_insert_with(|| {
            let path = self.dir.join(layout::log_name(header.zxid));
            tracing::info!(file = %path.display(), "creating new log file");
            Segment {
                path,
                file: None,
                buf: Vec::with_capacity(4096),
                // The header is written when the file is created.
                written: FILE_HEADER_LEN,
                synced: 0,
                padded: FILE_HEADER_LEN,
                pad_pending: None,
                unsynced_txns: 0,
            }
        });
        let new_size = padded_size(seg.position(), seg.padded, prealloc);
        if new_size != seg.padded {
            seg.padded = new_size;
            seg.pad_pending = Some(new_size);
        }
        record::frame(&mut seg.buf, &payload);
        seg.unsynced_txns += 1;
        if seg.buf.len() >= self.options.write_buffer_bytes {
            self.write_out_current()?;
        }
        Ok(())
    }

    /// Group commit: writes everything appended and, with `force_sync`, fdatasyncs each
    /// file touched since the last sync (rolled ones first). `Ok` means every appended
    /// transaction is durable. Then rolls if the size limit is exceeded.
    pub fn sync(&mut self) -> Result<SyncStats> {
        self.check_usable()?;
        let start = Instant::now();
        let mut stats = SyncStats::default();
        self.finish_rolled(&mut stats)?;
        if let Some(mut seg) = self.current.take() {
            let r = self.write_and_sync(&mut seg, &mut stats);
            self.current = Some(seg);
            r?;
        }
        stats.total = start.elapsed();
        if stats.fsync > self.options.fsync_warning_threshold {
            tracing::warn!(
                fsync_ms = stats.fsync.as_millis() as u64,
                "fsync-ing the write ahead log took {}ms, which will adversely affect operation latency",
                stats.fsync.as_millis()
            );
        }
        self.last_sync = Some(stats);
        if let (Some(limit), Some(cur)) = (self.options.size_limit_bytes, &self.current) {
            if cur.written > limit {
                tracing::debug!(size = cur.written, "log size limit reached, rolling");
                self.current = None;
            }
        }
        Ok(stats)
    }

    /// Writes and syncs every rolled file, oldest first, and closes it. Nothing of a
    /// newer file is written before an older one is durable, so after a crash a file
    /// holding data implies complete files before it (no replay across a hole).
    fn finish_rolled(&mut self, stats: &mut SyncStats) -> Result<()> {
        while !self.rolled.is_empty() {
            let mut seg = self.rolled.remove(0);
            let r = self.write_and_sync(&mut seg, stats);
            if r.is_err() {
                self.rolled.insert(0, seg);
            }
            r?;
        }
        Ok(())
    }

    fn write_and_sync(&mut self, seg: &mut Segment, stats: &mut SyncStats) -> Result<()> {
        stats.bytes += seg.buf.len() as u64;
        self.write_out(seg)?;
        if self.options.force_sync && seg.synced < seg.written {
            if let Some(file) = seg.file.as_mut() {
                let t = Instant::now();
                let r = file.sync_data();
                stats.fsync += t.elapsed();
                if let Err(e) = r {
                    let err = self.fail("fdatasync", &seg.path.clone(), e);
                    discard_unsynced(seg);
                    return Err(err);
                }
            }
        }
        seg.synced = seg.written;
        stats.txns += std::mem::take(&mut seg.unsynced_txns);
        Ok(())
    }

    /// The next append starts a new file (`rollLog`). Buffered data of the old file is
    /// kept and made durable by the next sync.
    pub fn roll(&mut self) {
        if let Some(seg) = self.current.take() {
            self.rolled.push(seg);
        }
    }

    /// Syncs and closes. Dropping a log instead loses what was not synced, which is
    /// safe (none of it was acknowledged) but wasteful.
    pub fn close(mut self) -> Result<()> {
        self.sync().map(|_| ())
    }

    /// The highest zxid appended.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// The file the next append goes to, if one is open.
    pub fn current_file(&self) -> Option<&Path> {
        self.current.as_ref().map(|s| s.path.as_path())
    }

    /// Bytes of the current file (header and records, not padding), for size-based
    /// snapshot triggers.
    pub fn current_size(&self) -> u64 {
        self.current.as_ref().map_or(0, Segment::position)
    }

    /// The last successful sync's figures.
    pub fn last_sync(&self) -> Option<SyncStats> {
        self.last_sync
    }

    /// Why the log refuses appends, if it does.
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_usable(&self) -> Result<()> {
        match &self.failed {
            Some(cause) => Err(Error::LogFailed {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    fn fail(&mut self, op: &'static str, path: &Path, e: std::io::Error) -> Error {
        let err = Error::io(op, path, e);
        tracing::error!(error = %err, "txn log failed; refusing further appends");
        self.failed = Some(err.to_string());
        err
    }

    /// Spills the current file's buffer (older files are made durable first, see
    /// [`TxnLog::finish_rolled`]).
    fn write_out_current(&mut self) -> Result<()> {
        let mut stats = SyncStats::default();
        self.finish_rolled(&mut stats)?;
        let Some(mut seg) = self.current.take() else {
            return Ok(());
        };
        let r = self.write_out(&mut seg);
        self.current = Some(seg);
        r
    }

    /// Creates a log file with its header, durable together with its directory entry
    /// (with `force_sync`) before any record goes in: a crash can then leave an empty
    /// file only as the newest one, which readers drop, never a hole between files.
    fn create_file(&mut self, path: &Path) -> Result<Box<dyn LogFile>> {
        let mut f = match self.disk.create(path) {
            Ok(f) => f,
            Err(e) => return Err(self.fail("create", path, e)),
        };
        let mut r = f.write_all_at(&record::file_header(), 0);
        if r.is_ok() && self.options.force_sync {
            r = f.sync_data().and_then(|()| self.disk.sync_dir(&self.dir));
        }
        if let Err(e) = r {
            let err = self.fail("write header of", path, e);
            let _ = f.set_len(0);
            return Err(err);
        }
        Ok(f)
    }

    /// Writes a segment's buffer (creating the file first if needed). On failure the
    /// log is failed and the segment is cut back to its durable length.
    fn write_out(&mut self, seg: &mut Segment) -> Result<()> {
        if seg.buf.is_empty() && seg.pad_pending.is_none() {
            return Ok(());
        }
        if seg.file.is_none() {
            let f = self.create_file(&seg.path)?;
            seg.file = Some(f);
            seg.synced = FILE_HEADER_LEN;
        }
        let Some(file) = seg.file.as_mut() else {
            return Ok(());
        };
        let mut r = Ok(());
        if let Some(size) = seg.pad_pending {
            r = file.write_all_at(&[0], size - 1);
        }
        if r.is_ok() {
            r = file.write_all_at(&seg.buf, seg.written);
        }
        match r {
            Ok(()) => {
                seg.pad_pending = None;
                seg.written += seg.buf.len() as u64;
                seg.buf.clear();
                Ok(())
            }
            Err(e) => {
                let err = self.fail("write", &seg.path.clone(), e);
                discard_unsynced(seg);
                Err(err)
            }
        }
    }
}

/// Best effort after a failure: cut the file back to what was durable, so a restart
/// does not replay transactions that were never acknowledged. If even that fails, the
/// tail is at worst complete-but-unacknowledged records followed by a torn one, which
/// recovery treats as the end of the log.
fn discard_unsynced(seg: &mut Segment) {
    seg.buf.clear();
    if let Some(file) = seg.file.as_mut() {
        if let Err(e) = file.set_len(seg.synced) {
            tracing::warn!(file = %seg.path.display(), error = %e, "could not cut unsynced log tail");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_arithmetic_matches_file_padding() {
        let p = DEFAULT_PREALLOC;
        // A fresh file: header flushed, then the first pad.
        assert_eq!(padded_size(16, 16, p), 16 + p);
        assert_eq!(padded_size(100, 16 + p, p), 16 + p);
        // Within 4 KiB of the end: one more block.
        assert_eq!(padded_size(16 + p - 4096, 16 + p, p), 16 + 2 * p);
        // Past the end: rounded down to a block boundary.
        assert_eq!(padded_size(3 * p + 5, 16 + p, p), 4 * p);
        assert_eq!(padded_size(100, 16, 0), 16);
    }
}
