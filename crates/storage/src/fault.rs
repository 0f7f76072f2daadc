//! A [`Disk`] that fails on command, for testing what the log writer does when the
//! disk does not cooperate.
//!
//! Owns fault injection (failed or short writes, failed syncs and creates, a full disk)
//! and a crash model: [`FaultyDisk::crash`] puts every file back to what its last
//! successful sync made durable, the worst a real power loss could do. Files are real
//! files underneath, so recovery reads them with the ordinary reader.

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::disk::{Disk, LogFile};

/// `ENOSPC` (the same number on Linux and the BSDs).
pub const ENOSPC: i32 = 28;
/// `EIO`.
pub const EIO: i32 = 5;

/// One injected failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next write fails with this errno before writing anything.
    FailWrite(i32),
    /// The next write stores only its first `written` bytes, then fails with `errno`.
    ShortWrite { written: usize, errno: i32 },
    /// The next sync fails with this errno (and makes nothing durable).
    FailSync(i32),
    /// The next file creation fails with this errno.
    FailCreate(i32),
    /// The next truncation (`set_len`) fails with this errno.
    FailSetLen(i32),
}

#[derive(Default)]
struct State {
    faults: VecDeque<Fault>,
    /// Every write fails with ENOSPC while set.
    full: bool,
    /// Contents made durable by the last successful sync of each file.
    durable: HashMap<PathBuf, Vec<u8>>,
    created: Vec<PathBuf>,
    writes: u64,
    syncs: u64,
}

/// A cloneable handle: the clone given to the writer and the one the test keeps share
/// their state.
#[derive(Clone, Default)]
pub struct FaultyDisk {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not hide the state from the others.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FaultyDisk {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms a one-shot fault; faults fire in the order they were armed, each at the
    /// first operation of its kind.
    pub fn inject(&self, fault: Fault) {
        lock(&self.state).faults.push_back(fault);
    }

    /// A full disk: every write fails with ENOSPC until cleared.
    pub fn set_full(&self, full: bool) {
        lock(&self.state).full = full;
    }

    pub fn writes(&self) -> u64 {
        lock(&self.state).writes
    }

    pub fn syncs(&self) -> u64 {
        lock(&self.state).syncs
    }

    /// Simulates a power loss: each file created through this disk is put back to the
    /// contents its last successful sync made durable (empty if it never synced).
    pub fn crash(&self) -> io::Result<()> {
        let st = lock(&self.state);
        for path in &st.created {
            let image = st.durable.get(path).map(Vec::as_slice).unwrap_or(&[]);
            fs::write(path, image)?;
        }
        Ok(())
    }

    fn take(&self, pick: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut st = lock(&self.state);
        let i = st.faults.iter().position(pick)?;
        st.faults.remove(i)
    }
}

struct FaultyFile {
    file: File,
    path: PathBuf,
    disk: FaultyDisk,
}

impl LogFile for FaultyFile {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let full = {
            let mut st = lock(&self.disk.state);
            st.writes += 1;
            st.full
        };
        if full {
            return Err(io::Error::from_raw_os_error(ENOSPC));
        }
        let fault = self
            .disk
            .take(|f| matches!(f, Fault::FailWrite(_) | Fault::ShortWrite { .. }));
        self.file.seek(SeekFrom::Start(offset))?;
        match fault {
            Some(Fault::FailWrite(errno)) => Err(io::Error::from_raw_os_error(errno)),
            Some(Fault::ShortWrite { written, errno }) => {
                self.file.write_all(&buf[..written.min(buf.len())])?;
                Err(io::Error::from_raw_os_error(errno))
            }
            _ => self.file.write_all(buf),
        }
    }

    fn sync_data(&mut self) -> io::Result<()> {
        lock(&self.disk.state).syncs += 1;
        if let Some(Fault::FailSync(errno)) = self.disk.take(|f| matches!(f, Fault::FailSync(_))) {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.file.sync_data()?;
        let image = fs::read(&self.path)?;
        lock(&self.disk.state)
            .durable
            .insert(self.path.clone(), image);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if let Some(Fault::FailSetLen(errno)) =
            self.disk.take(|f| matches!(f, Fault::FailSetLen(_)))
        {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.file.set_len(len)
    }
}

impl Disk for FaultyDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        if let Some(Fault::FailCreate(errno)) = self.take(|f| matches!(f, Fault::FailCreate(_))) {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        {
            let mut st = lock(&self.state);
            st.created.push(path.to_path_buf());
            st.durable.remove(path);
        }
        Ok(Box::new(FaultyFile {
            file,
            path: path.to_path_buf(),
            disk: self.clone(),
        }))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        crate::disk::sync_dir(dir)
    }
}
