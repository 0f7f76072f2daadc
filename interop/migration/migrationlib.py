"""Helpers for the migration acceptance test (test_migration.py).

Everything here builds on ``interop/zkharness.py`` without changing it:

* ``server_on(kind, data_dir, ...)`` – a ``zkharness.Server`` (own temp dir,
  zoo.cfg, log, free port) whose zoo.cfg points ``dataDir`` at an existing
  directory, so Apache ZooKeeper and oxkeeper can take turns on one dataDir.
* ``dump_tree(client)`` – the whole tree, node by node: data, ACL list and the
  full Stat, read with pipelined kazoo requests (one round of get / getACL /
  getChildren per tree level).
* ``diff_trees(want, got)`` – readable per-node, per-field differences.
* ``CreateContainer`` / ``CreateTTL`` – kazoo 2.11 has no API for container
  and TTL nodes; these request classes (shaped like kazoo's own) are sent
  through the client's connection with ``call(client, request)``.
"""

import os
import re
import shutil
from collections import namedtuple

from kazoo.protocol.serialization import Create2

import zkharness

STAT_FIELDS = (
    "czxid",
    "mzxid",
    "pzxid",
    "ctime",
    "mtime",
    "version",
    "cversion",
    "aversion",
    "ephemeralOwner",
    "dataLength",
    "numChildren",
)
ZXID_FIELDS = ("czxid", "mzxid", "pzxid")

# one node of a dump: data (bytes or None), acl (tuple of (perms, scheme, id)),
# stat (dict field -> int)
Node = namedtuple("Node", "data acl stat")


# -- servers on a shared dataDir ------------------------------------------
def server_on(kind, data_dir, tick_time, extra, name=None):
    """A (not yet started) zkharness.Server of `kind` whose zoo.cfg uses
    `data_dir` as dataDir instead of the server's own empty one.  Its temp
    dir (config, log) is removed by ``cleanup()``; `data_dir` is not."""
    srv = zkharness.Server(kind=kind, tick_time=tick_time, extra=extra, name=name)
    srv.data_dir = data_dir
    srv.write_config()
    return srv


def data_files(data_dir):
    """Sorted names of the files in <dataDir>/version-2 with their sizes."""
    d = os.path.join(data_dir, "version-2")
    try:
        names = sorted(os.listdir(d), key=_file_order)
    except FileNotFoundError:
        return []
    return [(n, os.path.getsize(os.path.join(d, n))) for n in names]


def _file_order(name):
    """log.* and snapshot.* by kind, then by zxid (the hex suffix)."""
    kind, _, rest = name.partition(".")
    try:
        return (kind, int(rest.split(".")[0], 16), name)
    except ValueError:
        return (kind, -1, name)


def count_files(data_dir, prefix):
    return sum(1 for n, _ in data_files(data_dir) if n.startswith(prefix))


def copy_data_dir(src, dst):
    shutil.copytree(src, dst, dirs_exist_ok=True)


# -- container / TTL creates through kazoo's connection --------------------
class CreateContainer(Create2):
    """create2 with opcode 19 (createContainer); flags must be 4 (CONTAINER)."""

    type = 19


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    """opcode 21 (createTTL): a create2 request followed by the TTL (ms)."""

    type = 21

    def serialize(self):
        b = bytearray(Create2(self.path, self.data, self.acl, self.flags).serialize())
        b.extend(int(self.ttl).to_bytes(8, "big", signed=True))
        return b

    @classmethod
    def deserialize(cls, bytes, offset):
        return Create2.deserialize(bytes, offset)


def call(client, request, timeout=10):
    async_result = client.handler.async_result()
    client._call(request, async_result)
    return async_result.get(timeout=timeout)


# -- tree dump -------------------------------------------------------------
def _join(parent, child):
    return (parent.rstrip("/") or "") + "/" + child


def dump_tree(client, root="/", timeout=30, problems=None, where="dump"):
    """{path: Node} for every node under (and including) `root`.

    Within one server the Stat of getData and of getACL must agree and the
    children listed must number Stat.numChildren; a disagreement is added to
    `problems` (a list), or raised when no list is given."""
    nodes = {}
    level = [root]
    while level:
        pending = [
            (p, client.get_async(p), client.get_acls_async(p), client.get_children_async(p))
            for p in level
        ]
        nxt = []
        for p, rd, ra, rc in pending:
            data, st = rd.get(timeout=timeout)
            acl, st_acl = ra.get(timeout=timeout)
            children = rc.get(timeout=timeout)
            stat = {f: getattr(st, f) for f in STAT_FIELDS}
            nodes[p] = Node(
                data=data,
                acl=tuple((a.perms, a.id.scheme, a.id.id) for a in acl),
                stat=stat,
            )
            bad = []
            if tuple(st_acl) != tuple(st):
                bad.append("%s: %s: getACL's Stat %s differs from getData's %s" % (where, p, st_acl, st))
            if len(children) != stat["numChildren"]:
                bad.append("%s: %s: %d children listed, Stat.numChildren=%d"
                           % (where, p, len(children), stat["numChildren"]))
            if bad and problems is None:
                raise AssertionError("\n".join(bad))
            if bad:
                problems.extend(bad)
            nxt.extend(_join(p, c) for c in sorted(children))
        level = nxt
    return nodes


def subtree(tree, root):
    """The paths of `tree` at or below `root`."""
    pre = root.rstrip("/") + "/"
    return {p for p in tree if p == root or p.startswith(pre)}


# -- comparison ------------------------------------------------------------
def _fmt_value(field, v):
    if field in ZXID_FIELDS or field == "ephemeralOwner":
        return "%d (0x%x)" % (v, v & 0xFFFFFFFFFFFFFFFF)
    return str(v)


def _fmt_data(d):
    if d is None:
        return "None (null)"
    if len(d) <= 48:
        return "%r (%d bytes)" % (d, len(d))
    return "%r... (%d bytes)" % (d[:32], len(d))


def _data_diff(a, b, a_name, b_name):
    text = "%s=%s %s=%s" % (a_name, _fmt_data(a), b_name, _fmt_data(b))
    if a is not None and b is not None:
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        text += ", first difference at byte %d" % first
    return text


def diff_trees(want, got, want_name="zookeeper", got_name="oxkeeper", skip=()):
    """Lines describing every difference between two dumps; paths in `skip`
    are left out.  Empty when the trees are equal."""
    lines = []
    skip = set(skip)
    for p in sorted((set(want) & set(got)) - skip):
        a, b = want[p], got[p]
        if a.data != b.data:
            lines.append("%s: data: %s" % (p, _data_diff(a.data, b.data, want_name, got_name)))
        if a.acl != b.acl:
            lines.append("%s: acl: %s=%s %s=%s" % (p, want_name, list(a.acl), got_name, list(b.acl)))
        for f in STAT_FIELDS:
            if a.stat[f] != b.stat[f]:
                lines.append(
                    "%s: stat.%s: %s=%s %s=%s"
                    % (p, f, want_name, _fmt_value(f, a.stat[f]), got_name, _fmt_value(f, b.stat[f]))
                )
    for p in sorted(set(want) - set(got) - skip):
        lines.append("%s: missing on %s (present on %s)" % (p, got_name, want_name))
    for p in sorted(set(got) - set(want) - skip):
        lines.append("%s: extra on %s (absent on %s)" % (p, got_name, want_name))
    return lines


def report(lines, limit=80):
    if len(lines) <= limit:
        return "\n".join(lines)
    return "\n".join(lines[:limit] + ["... and %d more differences" % (len(lines) - limit)])


def max_zxid(tree):
    return max(max(n.stat["czxid"], n.stat["mzxid"], n.stat["pzxid"]) for n in tree.values())


def next_sequence(stat):
    """The number ZooKeeper gives the next sequential child: it counts child
    creations and reports cversion = 2 * creations - numChildren."""
    return (stat["cversion"] + stat["numChildren"]) // 2


# -- which snapshot did a server load? --------------------------------------
def valid_snapshots(data_dir):
    """Snapshot names in <dataDir>/version-2, newest first, that Apache
    ZooKeeper considers complete (Util.isValidSnapshot: at least 10 bytes,
    ending with the int 1 and '/')."""
    d = os.path.join(data_dir, "version-2")
    out = []
    for n, size in data_files(data_dir):
        if not n.startswith("snapshot.") or size < 10:
            continue
        with open(os.path.join(d, n), "rb") as f:
            f.seek(size - 5)
            if f.read(5) == b"\x00\x00\x00\x01/":
                out.append(n)
    return sorted(out, key=_file_order, reverse=True)


def zookeeper_loaded_snapshot(log_text):
    """The snapshot Apache ZooKeeper's last start read (FileSnap: "Reading
    snapshot <path>"), and its complaints about snapshots."""
    start = log_text.rfind("=== start #")
    text = log_text[start:] if start >= 0 else log_text
    loaded = re.findall(r"Reading snapshot (\S+)", text)
    problems = [l for l in text.splitlines() if re.search(r"problem reading snap|Invalid snapshot|CRC|partial|Unable to load", l)]
    return (os.path.basename(loaded[-1]) if loaded else None), problems


def oxkeeper_loaded_snapshot(log_text):
    """The snapshot oxkeeper's last start loaded, from its log line
    "loaded snapshot file=<path>" (None when there is no such line)."""
    start = log_text.rfind("=== start #")
    text = log_text[start:] if start >= 0 else log_text
    loaded = re.findall(r"loaded snapshot file=(\S+)", text)
    return os.path.basename(loaded[-1].strip('"')) if loaded else None
