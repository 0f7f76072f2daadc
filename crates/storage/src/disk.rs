//! The narrow file-system surface the log writer uses, so tests can inject faults.
//!
//! Owns the [`Disk`] / [`LogFile`] traits and their real implementation [`StdDisk`].
//! The writer only ever writes at explicit offsets, syncs and sets lengths: that is all
//! a failing disk needs to imitate (see [`crate::fault::FaultyDisk`]). Reading never
//! goes through here — recovery reads whatever the disk really holds.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

/// One open log file.
pub trait LogFile: Send {
    /// Writes the whole of `buf` at `offset`, or fails. After a failure any prefix of
    /// `buf` may have reached the file (a short write).
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`, Java's `force(false)`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Truncates or extends the file.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
}

/// Creates log files and makes directory entries durable.
pub trait Disk: Send + Sync {
    /// Creates (or truncates, as ZooKeeper's `FileOutputStream` does) the file at `path`.
    fn create(&self, path: &Path) -> io::Result<Box<dyn LogFile>>;
    /// Makes the directory's entries (a new file's name) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdDisk;

struct StdFile(File);

impl LogFile for StdFile {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        self.0.write_all(buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

impl Disk for StdDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn LogFile>> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(StdFile(f)))
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        sync_dir(dir)
    }
}

/// fsync of a directory, so that a created or renamed entry survives a crash. Only
/// meaningful (and only possible) on Unix.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
