//! Human- and machine-readable dumps of logs and snapshots, like ZooKeeper's
//! `zkTxnLogToolkit.sh` and `zkSnapShotToolkit.sh` (persistence spec §9.2–9.3).
//!
//! Owns [`describe`]: it never changes a file (read-only log reading, no repair). The
//! kind of a file is told by its magic number, not its name; a directory (or its
//! `version-2`) is listed, logs and snapshots in zxid order, each then described.

mod fmt;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::{self, LOG_PREFIX, SNAPSHOT_PREFIX};
use crate::log::record::{TXNLOG_MAGIC, TXNLOG_VERSION};
use crate::log::{read_log_file, ReadOptions};
use crate::snapshot::{self, SNAP_MAGIC};
use oxkeeper_core::tree::OwnerKind;

pub use fmt::{op_name, utc};

/// Describes a log file, a snapshot file or a directory. `json`: one JSON object per
/// line instead of text.
pub fn describe(path: &Path, json: bool) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?;
    if !meta.is_dir() {
        return describe_file(path, json);
    }
    let vdir = layout::version_dir(path);
    let dir = if vdir.is_dir() {
        vdir
    } else {
        path.to_path_buf()
    };
    let mut files: Vec<(i64, u8, PathBuf)> = Vec::new();
    for f in layout::list(&dir, LOG_PREFIX)? {
        files.push((f.zxid, 0, f.path));
    }
    for f in layout::list(&dir, SNAPSHOT_PREFIX)? {
        files.push((f.zxid, 1, f.path));
    }
    files.sort();
    let mut out = String::new();
    for (zxid, kind, p) in &files {
        let kind = if *kind == 0 { "log" } else { "snapshot" };
        let size = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        if json {
            let _ = writeln!(
                out,
                "{{\"kind\":\"file\",\"file\":{},\"type\":\"{kind}\",\"zxid\":\"{}\",\"size\":{size}}}",
                fmt::js(&p.display().to_string()),
                fmt::hex(*zxid)
            );
        } else {
            let _ = writeln!(
                out,
                "{kind} {} zxid {} {size} bytes",
                p.display(),
                fmt::hex(*zxid)
            );
        }
    }
    for (_, _, p) in &files {
        if !json {
            let _ = writeln!(out, "\n=== {} ===", p.display());
        }
        match describe_file(p, json) {
            Ok(s) => out.push_str(&s),
            Err(e) if json => {
                let _ = writeln!(
                    out,
                    "{{\"kind\":\"error\",\"error\":{}}}",
                    fmt::js(&e.to_string())
                );
            }
            Err(e) => {
                let _ = writeln!(out, "ERROR: {e}");
            }
        }
    }
    Ok(out)
}

fn describe_file(path: &Path, json: bool) -> Result<String> {
    let mut head = [0u8; 16];
    let mut n = 0;
    {
        let mut f = File::open(path).map_err(|e| Error::io("open", path, e))?;
        while n < head.len() {
            match f.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(Error::io("read", path, e)),
            }
        }
    }
    let magic = (n >= 4).then(|| i32::from_be_bytes([head[0], head[1], head[2], head[3]]));
    let is_gz = n >= 2 && head[..2] == [0x1f, 0x8b];
    match magic {
        Some(TXNLOG_MAGIC) if n == 16 => describe_log(path, &head, json),
        Some(SNAP_MAGIC) => describe_snapshot(path, json),
        _ if is_gz => describe_snapshot(path, json),
        _ => Err(Error::BadHeader {
            file: path.to_path_buf(),
            reason: "neither a ZooKeeper txn log nor a snapshot".into(),
        }),
    }
}

fn describe_log(path: &Path, head: &[u8; 16], json: bool) -> Result<String> {
    let version = i32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let mut dbid = [0u8; 8];
    dbid.copy_from_slice(&head[8..16]);
    let dbid = i64::from_be_bytes(dbid);
    let mut out = String::new();
    if json {
        let _ = writeln!(
            out,
            "{{\"kind\":\"log\",\"file\":{},\"version\":{version},\"dbid\":{dbid}}}",
            fmt::js(&path.display().to_string())
        );
    } else {
        let _ = writeln!(
            out,
            "ZooKeeper Transactional Log File with dbid {dbid} txnlog format version {version}"
        );
        if version != TXNLOG_VERSION {
            let _ = writeln!(out, "(unexpected format version {version})");
        }
    }
    let mut count = 0usize;
    let mut error = None;
    for entry in read_log_file(path, ReadOptions::read_only())? {
        let e = match entry {
            Ok(e) => e,
            Err(err) => {
                error = Some(err.to_string());
                break;
            }
        };
        count += 1;
        let h = &e.header;
        if json {
            let digest = e.digest.map_or("null".to_string(), |d| {
                format!(
                    "{{\"version\":{},\"tree_digest\":\"{}\"}}",
                    d.version,
                    fmt::hex(d.tree_digest)
                )
            });
            let _ = writeln!(
                out,
                "{{\"kind\":\"txn\",\"offset\":{},\"time\":{},\"time_utc\":{},\"session\":\"{}\",\"cxid\":{},\"zxid\":\"{}\",\"type\":{},\"txn\":{},\"digest\":{digest}}}",
                e.offset,
                h.time,
                fmt::js(&utc(h.time)),
                fmt::hex(h.client_id),
                h.cxid,
                fmt::hex(h.zxid),
                fmt::js(op_name(h.txn_type)),
                fmt::txn_json(&e.txn)
            );
        } else {
            let digest = e
                .digest
                .map(|d| format!(" digest:{}:{}", d.version, fmt::hex(d.tree_digest)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{} session {} cxid {} zxid {} {} {}{digest}",
                utc(h.time),
                fmt::hex(h.client_id),
                fmt::hex(i64::from(h.cxid as u32)),
                fmt::hex(h.zxid),
                op_name(h.txn_type),
                fmt::txn_text(&e.txn)
            );
        }
    }
    if json {
        let err = error.as_deref().map_or("null".into(), fmt::js);
        let _ = writeln!(out, "{{\"kind\":\"end\",\"txns\":{count},\"error\":{err}}}");
    } else {
        if let Some(err) = &error {
            let _ = writeln!(out, "ERROR: {err}");
        }
        let _ = writeln!(out, "EOF reached after {count} txns.");
    }
    Ok(out)
}

fn describe_snapshot(path: &Path, json: bool) -> Result<String> {
    let bytes = snapshot::read_snapshot_bytes(path)?;
    let mut nodes = String::new();
    let mut ephemerals: BTreeMap<i64, usize> = BTreeMap::new();
    let mut max_zxid = i64::MIN;
    let meta = snapshot::parse_snapshot(&bytes, path, |n| {
        let s = &n.stat;
        max_zxid = max_zxid.max(s.mzxid).max(s.pzxid);
        if let OwnerKind::Ephemeral(sid) = OwnerKind::of(s.ephemeral_owner) {
            *ephemerals.entry(sid).or_default() += 1;
        }
        let shown = if n.path.is_empty() { "/" } else { n.path };
        let len = n.data.map_or(0, <[u8]>::len);
        if json {
            let _ = writeln!(
                nodes,
                "{{\"kind\":\"node\",\"path\":{},\"czxid\":\"{}\",\"ctime\":{},\"mzxid\":\"{}\",\"mtime\":{},\"pzxid\":\"{}\",\"cversion\":{},\"version\":{},\"aversion\":{},\"ephemeral_owner\":\"{}\",\"data_length\":{len},{},\"acl_id\":{},\"acl\":{}}}",
                fmt::js(shown),
                fmt::hex(s.czxid),
                s.ctime,
                fmt::hex(s.mzxid),
                s.mtime,
                fmt::hex(s.pzxid),
                s.cversion,
                s.version,
                s.aversion,
                fmt::hex(s.ephemeral_owner),
                fmt::data_json(n.data),
                n.acl_id,
                fmt::acl_json(n.acl)
            );
        } else {
            let _ = write!(
                nodes,
                "----\n{shown}\n  cZxid = {}\n  ctime = {}\n  mZxid = {}\n  mtime = {}\n  pZxid = {}\n  cversion = {}\n  dataVersion = {}\n  aclVersion = {}\n  ephemeralOwner = {}\n  dataLength = {len}\n  acl = {}\n",
                fmt::hex16(s.czxid),
                utc(s.ctime),
                fmt::hex16(s.mzxid),
                utc(s.mtime),
                fmt::hex16(s.pzxid),
                s.cversion,
                s.version,
                s.aversion,
                fmt::hex16(s.ephemeral_owner),
                fmt::acl_text(n.acl)
            );
        }
        Ok(())
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let name_zxid = layout::zxid_from_name(&name, SNAPSHOT_PREFIX);
    let last = name_zxid.unwrap_or(i64::MIN).max(max_zxid);
    let mut out = String::new();
    if json {
        let digest = meta.digest.map_or("null".to_string(), |d| {
            format!(
                "{{\"zxid\":\"{}\",\"version\":{},\"digest\":\"{}\"}}",
                fmt::hex(d.zxid),
                d.version,
                fmt::hex(d.digest)
            )
        });
        let _ = writeln!(
            out,
            "{{\"kind\":\"snapshot\",\"file\":{},\"zxid\":{},\"version\":{},\"dbid\":{},\"nodes\":{},\"sessions\":{},\"acls\":{},\"digest\":{digest},\"computed_digest\":\"{}\",\"last_zxid\":\"{}\",\"last_zxid_section\":{}}}",
            fmt::js(&path.display().to_string()),
            name_zxid.map_or("null".into(), |z| format!("\"{}\"", fmt::hex(z))),
            meta.version,
            meta.dbid,
            meta.node_count,
            meta.sessions.len(),
            meta.acls.len(),
            fmt::hex(meta.computed_digest),
            fmt::hex(last),
            meta.last_zxid.map_or("null".into(), |z| format!("\"{}\"", fmt::hex(z)))
        );
        out.push_str(&nodes);
        for (id, timeout) in &meta.sessions {
            let _ = writeln!(
                out,
                "{{\"kind\":\"session\",\"id\":\"{}\",\"timeout\":{timeout},\"ephemerals\":{}}}",
                fmt::hex(*id),
                ephemerals.get(id).copied().unwrap_or(0)
            );
        }
        return Ok(out);
    }
    let _ = writeln!(out, "ZNode Details (count={}):", meta.node_count);
    out.push_str(&nodes);
    let _ = writeln!(out, "Session Details (sid, timeout, ephemeralCount):");
    for (id, timeout) in &meta.sessions {
        let _ = writeln!(
            out,
            "{}, {timeout}, {}",
            fmt::hex16(*id),
            ephemerals.get(id).copied().unwrap_or(0)
        );
    }
    let _ = writeln!(out, "----\nLast zxid: {}", fmt::hex(last));
    let _ = writeln!(out, "ACL lists: {}", meta.acls.len());
    if let Some(d) = meta.digest {
        let verdict = if d.zxid == name_zxid.unwrap_or(i64::MIN) || d.zxid == last {
            if d.digest == meta.computed_digest {
                " (matches the nodes)"
            } else {
                " (differs from the nodes: fuzzy or corrupt)"
            }
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "Digest: zxid {} version {} value {}{verdict}",
            fmt::hex(d.zxid),
            d.version,
            fmt::hex(d.digest)
        );
    }
    if let Some(z) = meta.last_zxid {
        let _ = writeln!(out, "Last processed zxid section: {}", fmt::hex(z));
    }
    Ok(out)
}
