//! Reading snapshots: ZooKeeper's `FileSnap.deserialize` with the checks of §7.3.
//!
//! Owns the cheap validity test used to pick candidates, the parser (header, sessions,
//! ACL map, nodes, seals, optional digest and lastZxid sections), and rebuilding a
//! [`DataTree`]. The parser reports each node to a callback so that tools can list a
//! snapshot without building a tree.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use bytes::Bytes;
use oxkeeper_core::tree::{DataTree, StatPersisted};
use oxkeeper_proto::{Acl, Id};

use super::write::{OPEN_ACL_ID, SNAP_MAGIC};
use crate::digest::{node_digest, TreeDigest};
use crate::error::{Error, Result};
use crate::layout::{self, SNAPSHOT_PREFIX};

/// The digest section: the tree digest ZooKeeper had at `zxid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: i64,
}

/// Everything in a snapshot besides the nodes.
#[derive(Debug, Clone, Default)]
pub struct SnapshotMeta {
    pub version: i32,
    pub dbid: i64,
    /// (session id, timeout ms) in file order.
    pub sessions: Vec<(i64, i32)>,
    /// The ACL map by id.
    pub acls: HashMap<i64, Vec<Acl>>,
    pub node_count: usize,
    /// Digest of the nodes as read, computed like ZooKeeper's.
    pub computed_digest: i64,
    /// The digest section, if the writer had digests enabled (3.6+).
    pub digest: Option<ZxidDigest>,
    /// The lastProcessedZxid section (3.9+).
    pub last_zxid: Option<i64>,
}

/// One node as stored.
pub struct RawNode<'a> {
    pub path: &'a str,
    pub data: Option<&'a [u8]>,
    pub acl_id: i64,
    pub acl: &'a [Acl],
    pub stat: StatPersisted,
}

/// `SnapStream.isValidSnapshot`: the name parses, and a plain snapshot is at least 10
/// bytes and ends with a seal's "/" string; a gzip one starts with the gzip magic.
pub fn is_valid_snapshot(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    if layout::zxid_from_name(name, SNAPSHOT_PREFIX).is_none() {
        return false;
    }
    let Ok(bytes) = fs::read(path) else {
        return false;
    };
    if name.ends_with(".gz") {
        return bytes.starts_with(&[0x1f, 0x8b]);
    }
    if name.ends_with(".snappy") {
        return false;
    }
    bytes.len() >= 10 && bytes[bytes.len() - 5..] == [0, 0, 0, 1, b'/']
}

/// The file's uncompressed bytes (plain, or gzip by its `.gz` suffix as ZooKeeper
/// decides; snappy streams are not supported).
pub fn read_snapshot_bytes(path: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::bad_snapshot(path, format!("gzip: {e}")))?;
        return Ok(out);
    }
    if name.ends_with(".snappy") {
        return Err(Error::bad_snapshot(
            path,
            "snappy-compressed snapshots are not supported",
        ));
    }
    Ok(raw)
}

/// A snapshot loaded into a tree.
#[derive(Debug, Clone)]
pub struct LoadedSnapshot {
    pub tree: DataTree,
    pub sessions: Vec<(i64, i32)>,
    /// The zxid of the file name (the tree's last processed zxid).
    pub zxid: i64,
    pub meta: SnapshotMeta,
}

/// (tree, sessions as (id, timeout ms), zxid of the snapshot).
pub type Snapshot = (DataTree, Vec<(i64, i32)>, i64);

/// Loads `path` into a fresh tree: (tree, sessions, zxid). The zxid is the file name's,
/// as ZooKeeper uses it, and becomes the tree's last processed zxid.
pub fn load_snapshot(path: &Path) -> Result<Snapshot> {
    let l = load_snapshot_full(path)?;
    Ok((l.tree, l.sessions, l.zxid))
}

/// [`load_snapshot`] with the metadata (digest sections, ACL map).
pub fn load_snapshot_full(path: &Path) -> Result<LoadedSnapshot> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let bytes = read_snapshot_bytes(path)?;
    let mut tree = DataTree::new();
    let meta = parse_snapshot(&bytes, path, |n| {
        let path_str = if n.path.is_empty() { "/" } else { n.path };
        tree.load_node(path_str, n.data.map(Bytes::copy_from_slice), n.acl, n.stat)
            .map_err(|_| format!("unable to find the parent of {:?}", n.path))
    })?;
    let zxid = match layout::zxid_from_name(&name, SNAPSHOT_PREFIX).or(meta.last_zxid) {
        Some(z) => z,
        None => {
            return Err(Error::bad_snapshot(
                path,
                "no zxid in the file name or the snapshot",
            ))
        }
    };
    tree.set_last_processed_zxid(zxid);
    let sessions = meta.sessions.clone();
    Ok(LoadedSnapshot {
        tree,
        sessions,
        zxid,
        meta,
    })
}

/// Parses a whole snapshot, calling `on_node` for each node in file order (the root
/// has the empty path). Every seal is checked; trailing sections are read if present.
pub fn parse_snapshot(
    bytes: &[u8],
    file: &Path,
    mut on_node: impl FnMut(&RawNode<'_>) -> std::result::Result<(), String>,
) -> Result<SnapshotMeta> {
    let bad = |reason: String| Error::bad_snapshot(file, reason);
    let mut c = Cursor {
        b: bytes,
        pos: 0,
        adler: adler2::Adler32::new(),
        hashed: 0,
    };
    let mut meta = SnapshotMeta::default();
    let magic = c.i32().map_err(&bad)?;
    if magic != SNAP_MAGIC {
        return Err(bad(format!(
            "mismatching magic header 0x{magic:08x} != 0x{SNAP_MAGIC:08x}"
        )));
    }
    meta.version = c.i32().map_err(&bad)?;
    meta.dbid = c.i64().map_err(&bad)?;

    let count = c.count().map_err(&bad)?;
    for _ in 0..count {
        let id = c.i64().map_err(&bad)?;
        let timeout = c.i32().map_err(&bad)?;
        meta.sessions.push((id, timeout));
    }

    let count = c.count().map_err(&bad)?;
    for _ in 0..count {
        let id = c.i64().map_err(&bad)?;
        let n = c.count().map_err(&bad)?;
        let mut list = Vec::with_capacity(n.min(c.remaining()));
        for _ in 0..n {
            let perms = c.i32().map_err(&bad)?;
            let scheme = c.string().map_err(&bad)?;
            let id = c.string().map_err(&bad)?;
            list.push(Acl {
                perms,
                id: Id { scheme, id },
            });
        }
        meta.acls.insert(id, list);
    }

    let open = Acl::open();
    let mut digest = TreeDigest::default();
    let mut seen_root = false;
    loop {
        let at = c.pos;
        let path = c.string().map_err(&bad)?;
        if path == "/" {
            break;
        }
        let data = c.buffer().map_err(&bad)?;
        let acl_id = c.i64().map_err(&bad)?;
        let stat = StatPersisted {
            czxid: c.i64().map_err(&bad)?,
            mzxid: c.i64().map_err(&bad)?,
            ctime: c.i64().map_err(&bad)?,
            mtime: c.i64().map_err(&bad)?,
            version: c.i32().map_err(&bad)?,
            cversion: c.i32().map_err(&bad)?,
            aversion: c.i32().map_err(&bad)?,
            ephemeral_owner: c.i64().map_err(&bad)?,
            pzxid: c.i64().map_err(&bad)?,
        };
        if path.is_empty() {
            seen_root = true;
        } else if !seen_root || !path.starts_with('/') || path.ends_with('/') {
            return Err(bad(format!("invalid node path {path:?} at byte {at}")));
        }
        let acl: &[Acl] = if acl_id == OPEN_ACL_ID {
            &open
        } else {
            match meta.acls.get(&acl_id) {
                Some(l) => l,
                None => {
                    return Err(bad(format!(
                        "node {path:?} refers to unknown ACL id {acl_id}"
                    )))
                }
            }
        };
        digest.add(node_digest(&path, data, &stat));
        meta.node_count += 1;
        on_node(&RawNode {
            path: &path,
            data,
            acl_id,
            acl,
            stat,
        })
        .map_err(|e| bad(format!("{e} (byte {at})")))?;
    }
    if !seen_root {
        return Err(bad("no root node".into()));
    }
    meta.computed_digest = digest.0;

    c.check_seal().map_err(&bad)?;
    if c.remaining() == 0 {
        return Ok(meta);
    }
    // The digest section (3.6+); its absence shows as EOF.
    let Ok(zxid) = c.i64() else { return Ok(meta) };
    let Ok(version) = c.i32() else {
        return Ok(meta);
    };
    let value = if version < 2 {
        let s = c.string().map_err(&bad)?;
        i64::from_str_radix(&s, 16).unwrap_or(0)
    } else {
        c.i64().map_err(&bad)?
    };
    meta.digest = Some(ZxidDigest {
        zxid,
        version,
        digest: value,
    });
    c.check_seal().map_err(&bad)?;
    // The lastProcessedZxid section (3.9+).
    if c.remaining() < 8 {
        return Ok(meta);
    }
    meta.last_zxid = Some(c.i64().map_err(&bad)?);
    c.check_seal().map_err(&bad)?;
    Ok(meta)
}

/// A bounds-checked reader over the snapshot bytes that can check seals.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    adler: adler2::Adler32,
    hashed: usize,
}

type R<T> = std::result::Result<T, String>;

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.remaining() < n {
            return Err(format!(
                "truncated at byte {}: needed {n} bytes, {} left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn i32(&mut self) -> R<i32> {
        let s = self.take(4)?;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    fn i64(&mut self) -> R<i64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(i64::from_be_bytes(a))
    }

    /// A vector count; -1 (null) is empty.
    fn count(&mut self) -> R<usize> {
        let at = self.pos;
        match self.i32()? {
            -1 => Ok(0),
            n if n < 0 => Err(format!("negative count {n} at byte {at}")),
            n => Ok(n as usize),
        }
    }

    fn buffer(&mut self) -> R<Option<&'a [u8]>> {
        let at = self.pos;
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(format!("negative length {n} at byte {at}")),
            n => self.take(n as usize).map(Some),
        }
    }

    fn string(&mut self) -> R<String> {
        let at = self.pos;
        let b = self.buffer()?.unwrap_or_default();
        decode_java_string(b).ok_or_else(|| format!("string at byte {at} is not UTF-8"))
    }

    /// A seal: the Adler-32 of every byte before it, then a string ("/").
    fn check_seal(&mut self) -> R<()> {
        self.adler.write_slice(&self.b[self.hashed..self.pos]);
        self.hashed = self.pos;
        let expected = i64::from(self.adler.checksum());
        let at = self.pos;
        let stored = self.i64()?;
        self.string()?;
        if stored != expected {
            return Err(format!(
                "CRC corruption: seal at byte {at} holds 0x{stored:x}, data gives 0x{expected:x}"
            ));
        }
        Ok(())
    }
}

/// UTF-8, or Java's encoding of characters outside the BMP as two 3-byte surrogates
/// (CESU-8), which older ZooKeeper versions write.
pub fn decode_java_string(b: &[u8]) -> Option<String> {
    if let Ok(s) = std::str::from_utf8(b) {
        return Some(s.to_owned());
    }
    let mut units: Vec<u16> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (cp, n) = if c < 0x80 {
            (u32::from(c), 1)
        } else if c & 0xE0 == 0xC0 && i + 1 < b.len() {
            ((u32::from(c & 0x1F) << 6) | u32::from(b[i + 1] & 0x3F), 2)
        } else if c & 0xF0 == 0xE0 && i + 2 < b.len() {
            (
                (u32::from(c & 0x0F) << 12)
                    | (u32::from(b[i + 1] & 0x3F) << 6)
                    | u32::from(b[i + 2] & 0x3F),
                3,
            )
        } else if c & 0xF8 == 0xF0 && i + 3 < b.len() {
            let cp = (u32::from(c & 0x07) << 18)
                | (u32::from(b[i + 1] & 0x3F) << 12)
                | (u32::from(b[i + 2] & 0x3F) << 6)
                | u32::from(b[i + 3] & 0x3F);
            let mut buf = [0u16; 2];
            units.extend_from_slice(char::from_u32(cp)?.encode_utf16(&mut buf));
            i += 4;
            continue;
        } else {
            return None;
        };
        units.push(u16::try_from(cp).ok()?);
        i += n;
    }
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cesu8_surrogates_decode() {
        // U+1F600 as CESU-8: ED A0 BD ED B8 80.
        let b = [b'/', 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80];
        assert_eq!(decode_java_string(&b).as_deref(), Some("/\u{1F600}"));
        assert_eq!(decode_java_string(b"/plain").as_deref(), Some("/plain"));
        assert_eq!(decode_java_string(&[0xFF]), None);
    }
}
