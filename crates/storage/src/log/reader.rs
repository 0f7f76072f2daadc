//! Reading transactions back: ZooKeeper's `FileTxnIterator` (persistence spec §4.9).
//!
//! Owns file selection (every log that can hold zxids ≥ the start, oldest first),
//! record validation and the end-of-log rule. Where the valid data ends, what follows
//! decides: zeros or nothing (preallocation, a torn last write) end the file quietly;
//! a bad record followed by more non-zero bytes is corruption, reported with file and
//! offset — or, when the caller asks, cut off there together with every later file.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use oxkeeper_proto::{Txn, TxnHeader};

use super::record::{self, TxnDigest, FILE_HEADER_LEN, MAX_PAYLOAD, RECORD_END, TXNLOG_MAGIC};
use crate::error::{Error, Result};
use crate::layout::{self, NamedFile, LOG_PREFIX};

/// How to treat what is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// Cut the log at a corrupt record instead of failing: the file is truncated at the
    /// record's offset and every later log file is renamed `discarded.log.<zxid>`, so
    /// the log ends at the last good transaction before it (replaying later files over
    /// the gap would build a tree that never existed).
    pub truncate_at_corruption: bool,
    /// Change nothing on disk: no truncation, no deletion of an empty tail file.
    pub read_only: bool,
}

impl ReadOptions {
    /// For inspection tools: report, never repair.
    pub fn read_only() -> Self {
        ReadOptions {
            truncate_at_corruption: false,
            read_only: true,
        }
    }
}

/// One transaction read from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub header: TxnHeader,
    pub txn: Txn,
    pub digest: Option<TxnDigest>,
    pub file: Arc<Path>,
    /// Byte offset of the record (its checksum) in `file`.
    pub offset: u64,
}

/// An iterator over the transactions of a log directory, from a zxid on.
pub struct LogReader {
    files: VecDeque<NamedFile>,
    /// Every log of the directory, for discarding later files after a truncation.
    all: Vec<NamedFile>,
    cur: Option<FileReader>,
    from: i64,
    opts: ReadOptions,
    last_zxid: Option<i64>,
    done: bool,
}

/// Transactions with zxid ≥ `from_zxid` from `<log_dir>/version-2`. The first file read
/// is the newest one starting at or below `from_zxid`, as it may contain it.
pub fn read_log(log_dir: &Path, from_zxid: i64, opts: ReadOptions) -> Result<LogReader> {
    let all = layout::list(&layout::version_dir(log_dir), LOG_PREFIX)?;
    // ZooKeeper: newest first, take every file starting at or after the zxid, then the
    // first one before it, and stop.
    let mut picked = Vec::new();
    for f in all.iter().rev() {
        picked.push(f.clone());
        if f.zxid < from_zxid {
            break;
        }
    }
    picked.reverse();
    Ok(LogReader {
        files: picked.into(),
        all,
        cur: None,
        from: from_zxid,
        opts,
        last_zxid: None,
        done: false,
    })
}

/// Every transaction of one log file (named anything), for inspection.
pub fn read_log_file(path: &Path, opts: ReadOptions) -> Result<LogReader> {
    let nf = NamedFile {
        zxid: 0,
        path: path.to_path_buf(),
    };
    Ok(LogReader {
        files: VecDeque::from([nf]),
        all: Vec::new(),
        cur: None,
        from: i64::MIN,
        opts,
        last_zxid: None,
        done: false,
    })
}

impl Iterator for LogReader {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Result<LogEntry>> {
        while !self.done {
            match self.step() {
                Ok(Some(e)) if e.header.zxid < self.from => continue,
                Ok(Some(e)) => {
                    if let Some(last) = self.last_zxid {
                        if e.header.zxid <= last {
                            tracing::warn!(
                                file = %e.file.display(),
                                offset = e.offset,
                                "zxid 0x{:x} follows 0x{:x} in the log",
                                e.header.zxid,
                                last
                            );
                        }
                    }
                    self.last_zxid = Some(e.header.zxid);
                    return Some(Ok(e));
                }
                Ok(None) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

enum Next {
    Entry(LogEntry),
    EndOfFile,
}

impl LogReader {
    /// The next record of any file, or `None` at the end of the log.
    fn step(&mut self) -> Result<Option<LogEntry>> {
        loop {
            if self.cur.is_none() {
                let Some(f) = self.files.pop_front() else {
                    return Ok(None);
                };
                let is_last = self.files.is_empty();
                self.cur = FileReader::open(&f.path, is_last, self.opts)?;
                if self.cur.is_none() {
                    continue;
                }
            }
            let Some(reader) = self.cur.as_mut() else {
                continue;
            };
            match reader.next_record() {
                Ok(Next::Entry(e)) => return Ok(Some(e)),
                Ok(Next::EndOfFile) => self.cur = None,
                Err(Bad { offset, reason }) => {
                    let path = reader.path.to_path_buf();
                    self.cur = None;
                    if !self.opts.truncate_at_corruption || self.opts.read_only {
                        return Err(Error::CorruptLog {
                            file: path,
                            offset,
                            reason,
                        });
                    }
                    self.cut(&path, offset, &reason)?;
                    return Ok(None);
                }
            }
        }
    }

    /// Truncates `path` at `offset` and renames every later log aside.
    fn cut(&mut self, path: &Path, offset: u64, reason: &str) -> Result<()> {
        tracing::warn!(file = %path.display(), offset, reason, "truncating txn log at corrupt record");
        let f = fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        f.set_len(offset)
            .map_err(|e| Error::io("truncate", path, e))?;
        f.sync_all().map_err(|e| Error::io("fsync", path, e))?;
        let start = self
            .all
            .iter()
            .find(|n| n.path == path)
            .map_or(i64::MAX, |n| n.zxid);
        for later in self.all.iter().filter(|n| n.zxid > start) {
            let name = later
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let target = later
                .path
                .with_file_name(format!("discarded.{}", name.unwrap_or_default()));
            tracing::warn!(file = %later.path.display(), to = %target.display(), "discarding log after the cut");
            fs::rename(&later.path, &target).map_err(|e| Error::io("rename", &later.path, e))?;
        }
        if let Some(dir) = path.parent() {
            crate::disk::sync_dir(dir).map_err(|e| Error::io("fsync", dir, e))?;
        }
        self.files.clear();
        Ok(())
    }
}

/// A record that is neither valid nor end-of-file padding.
struct Bad {
    offset: u64,
    reason: String,
}

struct FileReader {
    path: Arc<Path>,
    r: BufReader<File>,
    pos: u64,
}

impl FileReader {
    /// Opens a log and checks its header. `None`: an empty (or shorter than a header,
    /// all-zero) last file, left by a crash between create and header write; ZooKeeper
    /// deletes a zero-length one and so do we.
    fn open(path: &Path, is_last: bool, opts: ReadOptions) -> Result<Option<FileReader>> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        let mut r = BufReader::with_capacity(64 * 1024, file);
        let mut hdr = [0u8; FILE_HEADER_LEN as usize];
        let got = read_full(&mut r, &mut hdr).map_err(|e| Error::io("read", path, e))?;
        if got < hdr.len() {
            if is_last && hdr[..got].iter().all(|&b| b == 0) {
                if len == 0 && !opts.read_only {
                    tracing::warn!(file = %path.display(), "deleting empty tail log file");
                    fs::remove_file(path).map_err(|e| Error::io("delete", path, e))?;
                }
                return Ok(None);
            }
            return Err(Error::BadHeader {
                file: path.to_path_buf(),
                reason: format!("txn log header truncated ({got} of 16 bytes)"),
            });
        }
        let magic = i32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        if magic != TXNLOG_MAGIC {
            return Err(Error::BadHeader {
                file: path.to_path_buf(),
                reason: format!(
                    "invalid txn log magic number 0x{magic:08x} (expected 0x{TXNLOG_MAGIC:08x})"
                ),
            });
        }
        Ok(Some(FileReader {
            path: path.into(),
            r,
            pos: FILE_HEADER_LEN,
        }))
    }

    fn next_record(&mut self) -> std::result::Result<Next, Bad> {
        let off = self.pos;
        let io_bad = |e: io::Error| Bad {
            offset: off,
            reason: format!("read error: {e}"),
        };
        let mut prefix = [0u8; record::FRAME_PREFIX_LEN];
        let got = read_full(&mut self.r, &mut prefix).map_err(io_bad)?;
        self.pos += got as u64;
        if got < prefix.len() {
            // EOF inside the frame prefix: the end (a torn prefix has nothing after it).
            return Ok(Next::EndOfFile);
        }
        let crc = i64::from_be_bytes([
            prefix[0], prefix[1], prefix[2], prefix[3], prefix[4], prefix[5], prefix[6], prefix[7],
        ]);
        let len = i32::from_be_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
        if len == 0 && crc == 0 {
            // Preallocated zeros: the end of this file's records.
            return Ok(Next::EndOfFile);
        }
        if len <= 0 || len as usize > MAX_PAYLOAD {
            return self.bad_unless_tail(off, format!("unreasonable record length {len}"));
        }
        let mut payload = vec![0u8; len as usize + 1];
        let got = read_full(&mut self.r, &mut payload).map_err(io_bad)?;
        self.pos += got as u64;
        if got < payload.len() {
            // EOF inside the record: a torn last write.
            tracing::warn!(file = %self.path.display(), offset = off, "torn last record; end of this log");
            return Ok(Next::EndOfFile);
        }
        let marker = payload.pop().unwrap_or(0);
        if marker != RECORD_END {
            return self.bad_unless_tail(
                off,
                "last transaction was partial (no end-of-record marker)".into(),
            );
        }
        let actual = record::checksum(&payload);
        if actual != crc {
            return self.bad_unless_tail(
                off,
                format!("CRC check failed: stored 0x{crc:x}, computed 0x{actual:x}"),
            );
        }
        match record::decode_payload(Bytes::from(payload)) {
            Ok(d) => Ok(Next::Entry(LogEntry {
                header: d.header,
                txn: d.txn,
                digest: d.digest,
                file: Arc::clone(&self.path),
                offset: off,
            })),
            // The checksum matched, so this is not a torn write: never skip it quietly.
            Err(reason) => Err(Bad {
                offset: off,
                reason: format!("unparsable record: {reason}"),
            }),
        }
    }

    /// A bad record is a torn tail when only zeros follow the bytes read so far (the
    /// rest of the preallocated block); anything else means records after it would be
    /// lost, so it is corruption.
    fn bad_unless_tail(&mut self, off: u64, reason: String) -> std::result::Result<Next, Bad> {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match self.r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Bad {
                        offset: off,
                        reason: format!("{reason}; then read error: {e}"),
                    })
                }
            };
            if chunk[..n].iter().any(|&b| b != 0) {
                return Err(Bad {
                    offset: off,
                    reason: format!("{reason}, with more data after it"),
                });
            }
        }
        tracing::warn!(file = %self.path.display(), offset = off, %reason, "torn last record; end of this log");
        Ok(Next::EndOfFile)
    }
}

/// Reads until `buf` is full or EOF; returns the count read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Every log file of `<log_dir>/version-2`, ascending by start zxid.
pub fn log_files(log_dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(layout::list(&layout::version_dir(log_dir), LOG_PREFIX)?
        .into_iter()
        .map(|f| f.path)
        .collect())
}
