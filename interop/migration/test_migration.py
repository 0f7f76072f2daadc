"""Migration acceptance test: Apache ZooKeeper 3.8 -> oxkeeper -> Apache
ZooKeeper, all three on ONE dataDir (ZooKeeper's own on-disk format:
version-2/log.* and version-2/snapshot.*).

1. Apache ZooKeeper (Debian 3.8) starts on a fresh dataDir D with
   snapCount=100 and preAllocSize=16 (KiB), so the few thousand transactions
   written here leave many snapshots and log files.  kazoo clients write a
   tree: nested nodes, empty / null / binary / 100 KB data, digest, world
   read-only and ip ACLs, ephemeral and ephemeral-sequential nodes of a
   session that stays open ("holder"), ephemerals of a session that closes,
   sequential nodes, containers and a TTL node (sent through kazoo's
   connection: kazoo 2.11 has no API for them), successful and failed multis,
   versioned setData / delete / setACL, error transactions.  The whole tree
   is recorded node by node (data, ACL, full Stat), then ZooKeeper is
   stopped with SIGTERM, or with SIGKILL while a burst of creates is in
   flight (a preallocated, possibly torn log tail).  In the SIGKILL case the
   expected tree is what ZooKeeper itself recovers from a copy of D; it must
   agree with what ZooKeeper served, outside the burst's subtree.
2. oxkeeper starts on D (same zoo.cfg keys): its tree must equal the recorded
   one node by node, Stat included; the holder session reconnects with its
   (session id, password) and still owns its ephemerals.  More writes go
   through oxkeeper (creates, sets, deletes, a multi, new ephemerals of the
   holder, sequential nodes continuing the counters), the tree is recorded
   again, oxkeeper is stopped with SIGTERM.
3. Apache ZooKeeper starts on D again: its tree must equal oxkeeper's last
   tree node by node, it must find no digest mismatch in what oxkeeper
   wrote, and the holder session works there too.

Differences do not stop the test at the first phase: they are collected
(and printed) and the test fails at the end with all of them.

Always uses both servers (ZK_TARGET is irrelevant).  Skipped when java /
ZooKeeper / the oxkeeper binary are missing, failed instead when CI=true.
"""

import os
import random
import re
import signal
import threading
import time

import pytest

import zkharness
from conftest import IS_CI, require, wait_until

try:
    from kazoo.exceptions import (
        BadVersionError,
        NoAuthError,
        NodeExistsError,
        NoNodeError,
        RolledBackError,
    )
    from kazoo.security import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, make_acl, make_digest_acl
except ImportError:  # pragma: no cover
    if IS_CI:
        raise
    pytest.skip("kazoo is not installed (pip install kazoo==2.11.0)", allow_module_level=True)

import kazoo_ext  # noqa: E402
import migrationlib as ml  # noqa: E402

TICK = 2000
# the same zoo.cfg keys for every server on D (zkharness adds tickTime,
# dataDir, clientPort, superDigest, ...)
EXTRA = {
    "snapCount": 100,
    "preAllocSize": 16,
    "extendedTypesEnabled": "true",  # TTL nodes
}
HOLDER_TIMEOUT = 30.0  # s; <= maxSessionTimeout (20 ticks = 40 s)

SUPER_AUTH = ("digest", "%s:%s" % (zkharness.SUPER_USER, zkharness.SUPER_PASSWORD))
ALICE_AUTH = ("digest", "alice:alice-secret")
ALICE_ACL = make_digest_acl("alice", "alice-secret", all=True)
WORLD_READ = make_acl("world", "anyone", read=True)
IP_ALL = make_acl("ip", "127.0.0.1", all=True)
BLOB = random.Random(20240501).randbytes(100_000)

BURST = 3000  # SIGKILL case: creates pipelined when ZooKeeper is killed ...
KILL_AT = 300  # ... on the reply to this one
WINDOW = 100  # creates in flight at most (see burst_and_kill)


# -- plumbing --------------------------------------------------------------
class Problems(list):
    """Differences found so far; each is printed when found, so that it is
    in the captured output even if a later step aborts the test."""

    def append(self, text):
        print("PROBLEM: " + text)
        super().append(text)

    def extend(self, items):
        for text in items:
            self.append(text)


@pytest.fixture
def own_servers():
    """Servers built here (zkharness.Server objects): cleaned up at the end."""
    servers = []
    yield servers
    for srv in servers:
        srv.cleanup()


def start(srv):
    try:
        srv.start()
    except Exception as e:
        pytest.fail(
            "could not start %s on dataDir %s: %s\n%s" % (srv.name, srv.data_dir, e, srv.log_tail()),
            pytrace=False,
        )
    return srv


def wait_all(results, timeout=30):
    """Values of async results; exceptions are returned, not raised."""
    out = []
    for r in results:
        try:
            out.append(r.get(timeout=timeout))
        except Exception as e:  # noqa: BLE001 - the caller checks the types
            out.append(e)
    return out


def expect_ok(results, what):
    bad = [r for r in results if isinstance(r, Exception)]
    assert not bad, "%s: %d failed, first: %r" % (what, len(bad), bad[0])


def expect_err(results, exc, what):
    wrong = [r for r in results if not isinstance(r, exc)]
    assert not wrong, "%s: expected %s, got %r" % (what, exc.__name__, wrong[0])


def stat_of(tree, path):
    return tree[path].stat


def close(*clients):
    """closeSession for each client (their sessions own no ephemerals)."""
    for c in clients:
        c.stop()
        c.close()


def drop(client):
    """Stop a client whose server is down: no closeSession reaches any
    server, so its session (and its ephemerals) stay in the dataDir."""
    client.stop()
    client.close()


def connect_holder(make_client, hosts, client_id, problems, where):
    """Reconnect the holder session by (session id, password)."""
    c = make_client(hosts=hosts, client_id=client_id, timeout=HOLDER_TIMEOUT)
    if c.client_id[0] != client_id[0]:
        problems.append(
            "%s: the holder session 0x%x did not survive: reconnecting with its "
            "(id, password) gave session 0x%x" % (where, client_id[0], c.client_id[0])
        )
    return c


def check_tree(want, got, want_name, got_name, problems, where):
    lines = ml.diff_trees(want, got, want_name, got_name)
    if lines:
        text = ml.report(lines)
        print("=== %s: %d differences (%s vs %s) ===\n%s" % (where, len(lines), want_name, got_name, text))
        problems.append(
            "%s: the tree on %s differs from %s in %d places:\n%s"
            % (where, got_name, want_name, len(lines), text)
        )


def check_holder(tree, sid, paths, problems, where):
    for p in paths:
        if p not in tree:
            problems.append("%s: the holder's ephemeral %s is missing" % (where, p))
        elif tree[p].stat["ephemeralOwner"] != sid:
            problems.append(
                "%s: %s ephemeralOwner=0x%x, want the holder session 0x%x"
                % (where, p, tree[p].stat["ephemeralOwner"] & (2**64 - 1), sid)
            )
    owned = sorted(p for p, n in tree.items() if n.stat["ephemeralOwner"] == sid)
    if owned != sorted(paths):
        problems.append("%s: nodes owned by the holder %s, want %s" % (where, owned, sorted(paths)))


def check_ephemerals_call(holder, paths, problems, where):
    got = kazoo_ext.get_ephemerals(holder, "/")
    if got != sorted(paths):
        problems.append("%s: getEphemerals of the holder = %s, want %s" % (where, got, sorted(paths)))


def create_seq(client, parent, prefix, problems, where, data=b"", **kw):
    """Create a sequential child; its number must continue the parent's
    counter (ZooKeeper: number of child creations so far)."""
    want = ml.next_sequence({f: getattr(client.exists(parent), f) for f in ml.STAT_FIELDS})
    path = client.create("%s/%s" % (parent, prefix), data, sequence=True, **kw)
    if path != "%s/%s%010d" % (parent, prefix, want):
        problems.append("%s: sequential create under %s gave %s, want suffix %010d" % (where, parent, path, want))
    return path


# -- phase 1: the workload on Apache ZooKeeper ------------------------------
def populate_zookeeper(admin, holder, transient, features):
    """A few thousand transactions of every kind.  Returns the holder's
    ephemerals."""
    c = admin
    c.create("/app", b"application root")
    c.create("/app/config", b"{}")
    c.create("/app/config/db", b"")
    c.create("/app/config/db/primary", b"host=10.0.0.1 port=5432")
    c.create("/app/config/db/replica", b"host=10.0.0.2 port=5432")
    p = "/app/deep"
    c.create(p, b"level 0")
    for i in range(1, 16):
        p += "/l%d" % i
        c.create(p, b"level %d" % i)
    for v in range(40):  # setData with versions
        c.set("/app", b"app v%d" % (v + 1), version=v)
    with pytest.raises(BadVersionError):
        c.set("/app", b"stale", version=3)  # error txn
    c.set("/app/config/db/primary", b"host=10.0.0.3 port=5432", version=0)

    # data of every shape
    c.create("/data", b"")
    c.create("/data/empty", b"")
    c.create("/data/null", None)
    c.create("/data/binary", bytes(range(256)) * 4)
    c.create("/data/blob", BLOB)
    c.create("/data/zeros", b"\0" * 64)
    c.create("/data/unicode-\u00e9\u4e2d", "d\u00e9j\u00e0 vu \u2713".encode())
    c.create("/data/emptied", b"something")
    c.set("/data/emptied", b"", version=0)

    # ACLs
    c.create("/acl", b"acl root")
    c.create("/acl/digest", b"alice only", acl=[ALICE_ACL])
    c.create("/acl/digest/child", b"alice + world read", acl=[ALICE_ACL, WORLD_READ])
    c.create("/acl/world-ro", b"read only", acl=READ_ACL_UNSAFE)
    c.create("/acl/ip", b"from localhost", acl=[IP_ALL])
    c.create(
        "/acl/mixed",
        b"m",
        acl=[ALICE_ACL, make_acl("ip", "127.0.0.1", read=True, write=True), WORLD_READ],
    )
    c.create(
        "/acl/noread",
        b"secret",
        acl=[make_acl("world", "anyone", write=True, create=True, delete=True, admin=True)],
    )
    c.create("/acl/changed", b"c")
    c.set_acls("/acl/changed", [ALICE_ACL], version=0)
    c.set_acls("/acl/changed", [ALICE_ACL, WORLD_READ], version=1)
    with pytest.raises(BadVersionError):
        c.set_acls("/acl/changed", OPEN_ACL_UNSAFE, version=0)

    # ephemerals: the holder keeps its session, the transient one closes
    c.create("/eph", b"ephemeral parent")
    c.create("/locks", b"")
    held = [holder.create("/eph/holder-%d" % i, b"held %d" % i, ephemeral=True) for i in range(5)]
    held.append(holder.create("/eph/holder-acl", b"acl", ephemeral=True, acl=[ALICE_ACL, WORLD_READ]))
    held.append(holder.create("/app/config/lease", b"owner=holder", ephemeral=True))
    holder.set("/eph/holder-0", b"changed by its owner", version=0)
    for _ in range(3):
        held.append(holder.create("/locks/lock-", b"", ephemeral=True, sequence=True))
    for i in range(5):
        transient.create("/eph/transient-%d" % i, b"t", ephemeral=True)
    for _ in range(3):
        transient.create("/locks/lock-", b"t", ephemeral=True, sequence=True)
    transient.stop()  # closeSession deletes its ephemerals
    transient.close()
    holder.delete("/eph/holder-4")
    held.remove("/eph/holder-4")
    held.append(holder.create("/locks/lock-", b"after the transient", ephemeral=True, sequence=True))

    # sequential nodes (one counter per parent, shared by all prefixes)
    c.create("/seq", b"")
    made = [c.create("/seq/n-", b"%d" % i, sequence=True) for i in range(30)]
    made += [c.create("/seq/job-", sequence=True) for _ in range(10)]
    for p in made[::3]:
        c.delete(p)

    # containers and a TTL node (no kazoo API: raw requests on its connection)
    try:
        ml.call(c, ml.CreateContainer("/cont", b"container", OPEN_ACL_UNSAFE, 4))
        ml.call(c, ml.CreateContainer("/cont/inner", b"", OPEN_ACL_UNSAFE, 4))
        c.create("/cont/inner/x", b"x")
        c.create("/cont/child", b"c")
        features["container"] = True
    except Exception as e:  # noqa: BLE001
        features["container"] = "containers not supported: %r" % e
    try:
        ml.call(c, ml.CreateTTL("/ttl", b"lives an hour", OPEN_ACL_UNSAFE, 5, 3_600_000))
        ml.call(c, ml.CreateTTL("/ttl-seq-", b"", OPEN_ACL_UNSAFE, 6, 3_600_000))
        features["ttl"] = True
    except Exception as e:  # noqa: BLE001
        features["ttl"] = "TTL nodes not supported: %r" % e

    # multis: successful, and failed ones (an error txn each)
    c.create("/multi", b"")
    for i in range(30):
        t = c.transaction()
        t.create("/multi/m%02d" % i, b"m")
        t.create("/multi/m%02d/c" % i, b"mc")
        t.set_data("/multi", b"multi %d" % i, version=i)
        t.check("/multi/m%02d" % i, 0)
        if i:
            t.delete("/multi/m%02d/c" % (i - 1), version=0)
        expect_ok(t.commit(), "multi %d" % i)
    for i in range(8):
        t = c.transaction()
        t.create("/multi/never%d" % i, b"")
        t.check("/multi", 12345)
        res = t.commit()
        assert isinstance(res[0], RolledBackError) and isinstance(res[1], BadVersionError), res

    # bulk, pipelined: creates, versioned sets, versioned deletes, errors
    c.create("/bulk", b"")
    n = 1200
    expect_ok(wait_all([c.create_async("/bulk/b%04d" % i, b"v" * (i % 64)) for i in range(n)]), "bulk creates")
    expect_ok(wait_all([c.set_async("/bulk/b%04d" % i, b"s1-%d" % i, version=0) for i in range(0, n, 2)]), "sets")
    expect_ok(wait_all([c.set_async("/bulk/b%04d" % i, b"s2-%d" % i, version=1) for i in range(0, n, 6)]), "sets v1")
    expect_ok(wait_all([c.delete_async("/bulk/b%04d" % i, version=0) for i in range(1, n, 4)]), "deletes")
    expect_err(wait_all([c.set_async("/bulk/b0000", b"bad", version=99) for _ in range(10)]), BadVersionError, "bad sets")
    expect_err(wait_all([c.delete_async("/bulk/gone%d" % i) for i in range(10)]), NoNodeError, "bad deletes")
    expect_err(wait_all([c.create_async("/bulk/b%04d" % i) for i in range(0, 20, 2)]), NodeExistsError, "dup creates")
    c.delete("/app/deep/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/l11/l12/l13/l14/l15")
    return held


def burst_and_kill(zk, client):
    """Pipeline up to BURST creates under /inflight; the reply to create
    #KILL_AT SIGKILLs ZooKeeper while the following ones are in flight.
    Returns (indices acknowledged before the kill, number sent)."""
    payload = b"x" * 700
    pid = zk.pid
    killed = threading.Event()

    def kill(_result):
        killed.set()
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    rs = []
    for i in range(BURST):
        # Stop issuing once the server is gone, and never get more than WINDOW
        # creates ahead of the replies: kazoo wakes its connection thread with
        # one byte per request through a socketpair, which nobody drains while
        # it reconnects, so a send blocks forever once a few hundred are unread.
        while not killed.is_set() and sum(1 for r in rs[-WINDOW:] if not r.ready()) >= WINDOW:
            time.sleep(0.001)
        if killed.is_set():
            break
        rs.append(client.create_async("/inflight/n%05d" % i, payload))
        if i == KILL_AT:
            rs[-1].rawlink(kill)
    zk.stop(signal.SIGKILL)  # reap (and kill, had the callback not run yet)
    wait_until(lambda: all(r.ready() for r in rs), timeout=30, msg="burst results after the kill")
    return [i for i, r in enumerate(rs) if r.successful()], len(rs)


# -- the test ----------------------------------------------------------------
@pytest.mark.parametrize("zk_stop", ["SIGTERM", "SIGKILL"])
def test_zookeeper_to_oxkeeper_to_zookeeper(zk_stop, make_server, make_client, own_servers):
    t_start = time.monotonic()
    require(zkharness.target_available("zookeeper"))
    require(zkharness.target_available("oxkeeper"))
    problems = Problems()
    features = {}

    # ---------------- phase 1: Apache ZooKeeper on a fresh dataDir ----------
    zk = make_server(kind="zookeeper", tick_time=TICK, extra=EXTRA, name="zookeeper")
    D = zk.data_dir
    admin = make_client(hosts=zk.hosts, auth_data=[SUPER_AUTH, ALICE_AUTH])
    holder = make_client(hosts=zk.hosts, timeout=HOLDER_TIMEOUT)
    transient = make_client(hosts=zk.hosts)
    holder_id = holder.client_id  # (session id, password)
    sid = holder_id[0]
    held = populate_zookeeper(admin, holder, transient, features)
    admin.create("/inflight", b"burst parent")
    reader = make_client(hosts=zk.hosts, auth_data=[SUPER_AUTH])
    zk_tree = ml.dump_tree(reader)
    check_holder(zk_tree, sid, held, problems, "zookeeper (sanity)")
    assert zk_tree["/data/null"].data is None and zk_tree["/data/empty"].data == b"", "null vs empty data"
    assert not problems, problems
    zk_mntr = zk.four("mntr")
    close(admin, reader)

    snaps, logs = ml.count_files(D, "snapshot."), ml.count_files(D, "log.")
    assert snaps >= 3 and logs >= 3, "want several snapshots and logs, got %s" % ml.data_files(D)
    print("phase 1: %d nodes, last zxid 0x%x, %d snapshots, %d logs; features %s"
          % (len(zk_tree), ml.max_zxid(zk_tree), snaps, logs, features))

    if zk_stop == "SIGTERM":
        zk.stop(signal.SIGTERM)
        expected = zk_tree
        snap_for_ox = ml.valid_snapshots(D)[0]
    else:
        burster = make_client(hosts=zk.hosts)
        acked, sent = burst_and_kill(zk, burster)
        drop(burster)
        # What does ZooKeeper itself recover from this directory?  Ask it,
        # on a copy of D (starting writes a snapshot into its dataDir).
        ref = zkharness.Server(kind="zookeeper", tick_time=TICK, extra=EXTRA, name="zookeeper-reference")
        own_servers.append(ref)
        ml.copy_data_dir(D, ref.data_dir)
        start(ref)
        rr = make_client(hosts=ref.hosts, auth_data=[SUPER_AUTH])
        expected = ml.dump_tree(rr)
        close(rr)
        snap_for_ox, complaints = ml.zookeeper_loaded_snapshot(ref.log_text())
        if complaints:
            print("ZooKeeper (reference) on the killed dataDir:\n" + "\n".join(complaints))
        ref.stop(signal.SIGKILL)
        # premise: outside /inflight, ZooKeeper recovers what it served ...
        burst = ml.subtree(expected, "/inflight") | ml.subtree(zk_tree, "/inflight")
        lines = ml.diff_trees(zk_tree, expected, "zookeeper (served)", "zookeeper (recovered)", skip=burst)
        assert not lines, "ZooKeeper's own recovery differs from what it served:\n" + ml.report(lines)
        # ... and under /inflight a prefix of the burst holding every acknowledged create
        names = sorted(p.rsplit("/", 1)[1] for p in expected if p.startswith("/inflight/"))
        assert names == ["n%05d" % i for i in range(len(names))], "recovered burst is not a prefix"
        assert not acked or len(names) > max(acked), "acknowledged creates lost by ZooKeeper"
        print("SIGKILL: %d burst creates sent, %d acknowledged, %d recovered by ZooKeeper; last log %s"
              % (sent, len(acked), len(names), [f for f in ml.data_files(D) if f[0].startswith("log.")][-1]))
    drop(holder)  # its server is down: the session stays open in D
    files_zk = ml.data_files(D)

    # ---------------- phase 2: oxkeeper on the same dataDir -----------------
    ox = ml.server_on("oxkeeper", D, TICK, EXTRA, name="oxkeeper")
    own_servers.append(ox)
    start(ox)
    holder2 = connect_holder(make_client, ox.hosts, holder_id, problems, "oxkeeper")
    reader = make_client(hosts=ox.hosts, auth_data=[SUPER_AUTH])
    ox_tree0 = ml.dump_tree(reader, problems=problems, where="phase 2 (oxkeeper)")
    loaded = ml.oxkeeper_loaded_snapshot(ox.log_text())
    if loaded is None:
        print("note: no 'loaded snapshot file=' line in oxkeeper's log; not checking which snapshot it read")
    elif loaded != snap_for_ox:
        problems.append(
            "phase 2: oxkeeper started from %s, ZooKeeper would start from %s (newest valid snapshot); files: %s"
            % (loaded, snap_for_ox, " ".join(n for n, _ in files_zk))
        )
    check_tree(expected, ox_tree0, "zookeeper", "oxkeeper", problems, "phase 2 (oxkeeper reads ZooKeeper's dataDir)")
    check_holder(ox_tree0, sid, held, problems, "phase 2 (oxkeeper)")
    if holder2.client_id[0] == sid:
        check_ephemerals_call(holder2, held, problems, "phase 2 (oxkeeper)")

    where = "phase 2 (oxkeeper writes)"
    admin = make_client(hosts=ox.hosts, auth_data=[SUPER_AUTH, ALICE_AUTH])
    # new zxids continue after ZooKeeper's
    st = admin.set("/app", b"written by oxkeeper", version=40)
    if st.mzxid <= ml.max_zxid(expected):
        problems.append("%s: first zxid 0x%x not above ZooKeeper's last 0x%x" % (where, st.mzxid, ml.max_zxid(expected)))
    for v in range(41, 60):
        admin.set("/app", b"oxkeeper v%d" % v, version=v)
    # sequential counters continue
    for i in range(8):
        create_seq(admin, "/seq", "n-", problems, where, b"ox %d" % i)
    create_seq(admin, "/seq", "job-", problems, where)
    # the holder: new ephemerals, an ephemeral-sequential continuing /locks
    if holder2.client_id[0] == sid:
        held.append(create_seq(holder2, "/locks", "lock-", problems, where, b"ox", ephemeral=True))
        for i in range(3):
            held.append(holder2.create("/eph/holder-ox-%d" % i, b"on oxkeeper", ephemeral=True))
        holder2.set("/eph/holder-1", b"set on oxkeeper", version=0)
        holder2.delete("/eph/holder-2")
        held.remove("/eph/holder-2")
    # creates, sets, deletes
    admin.create("/oxk/a/b/c", b"deep", makepath=True)
    admin.create("/oxk/null", None)
    admin.create("/oxk/binary", bytes(reversed(range(256))))
    admin.set("/data/null", b"no longer null")
    admin.set("/data/blob", BLOB[::-1], version=0)
    admin.delete("/data/zeros", version=0)
    admin.delete("/app/deep", recursive=True)
    admin.set_acls("/acl/changed", [ALICE_ACL, IP_ALL], version=2)
    if features.get("container") is True:
        admin.create("/cont/child2", b"c2")
        admin.delete("/cont/child")
    if features.get("ttl") is True:
        ml.call(admin, ml.CreateTTL("/ttl-ox", b"oxkeeper ttl", OPEN_ACL_UNSAFE, 5, 3_600_000))
    # a multi, and a failed one
    t = admin.transaction()
    t.create("/multi/ox", b"from oxkeeper")
    t.create("/multi/ox/c", b"child")
    t.set_data("/multi", b"multi on oxkeeper", version=30)
    t.check("/multi/m00", 0)
    t.delete("/multi/m29/c", version=0)
    expect_ok(t.commit(), "oxkeeper multi")
    t = admin.transaction()
    t.create("/multi/never-ox", b"")
    t.delete("/multi/m01", version=7)
    res = t.commit()
    if not (isinstance(res[0], RolledBackError) and isinstance(res[1], BadVersionError)):
        problems.append("%s: failed multi answered %r, want [RolledBackError, BadVersionError]" % (where, res))
    # bulk: enough for oxkeeper to snapshot and roll its log (snapCount=100)
    expect_ok(wait_all([admin.create_async("/bulk/x%04d" % i, b"ox" * (i % 32)) for i in range(300)]), "ox creates")
    expect_ok(wait_all([admin.set_async("/bulk/x%04d" % i, b"ox-set", version=0) for i in range(0, 300, 2)]), "ox sets")
    expect_ok(wait_all([admin.delete_async("/bulk/b%04d" % i) for i in range(2, 400, 4)]), "ox deletes")
    expect_err(wait_all([admin.set_async("/bulk/b0000", b"bad", version=99) for _ in range(5)]), BadVersionError, "bad")
    # the ACLs still hold on oxkeeper
    anon = make_client(hosts=ox.hosts)
    alice = make_client(hosts=ox.hosts, auth_data=[ALICE_AUTH])
    for call, path in ((anon.get, "/acl/digest"), (anon.get, "/acl/noread")):
        with pytest.raises(NoAuthError):
            call(path)
    with pytest.raises(NoAuthError):
        anon.set("/acl/world-ro", b"no")
    assert anon.get("/acl/world-ro")[0] == b"read only"
    anon.set("/acl/ip", b"set from 127.0.0.1")
    alice.set("/acl/digest", b"alice was here")
    ox_tree = ml.dump_tree(reader, problems=problems, where="phase 2 (oxkeeper, after writes)")
    check_holder(ox_tree, sid, held, problems, "phase 2 (oxkeeper, after writes)")
    close(admin, anon, alice, reader)
    ox.stop(signal.SIGTERM)
    drop(holder2)
    files_ox = ml.data_files(D)
    new_files = [f for f in files_ox if f[0] not in dict(files_zk)]
    print("phase 2: %d nodes, last zxid 0x%x; oxkeeper wrote %s" % (len(ox_tree), ml.max_zxid(ox_tree), new_files))
    if not any(n.startswith("snapshot.") for n, _ in new_files) or not any(n.startswith("log.") for n, _ in new_files):
        problems.append("phase 2: oxkeeper wrote no new snapshot/log in %s: %s" % (D, new_files))

    # ---------------- phase 3: Apache ZooKeeper on oxkeeper's dataDir -------
    snap_for_zk = ml.valid_snapshots(D)[0]
    if snap_for_zk not in dict(new_files):
        problems.append(
            "phase 3: the newest snapshot ZooKeeper considers complete is %s, not one of oxkeeper's %s"
            % (snap_for_zk, [n for n, _ in new_files if n.startswith("snapshot.")])
        )
    start(zk)  # same zoo.cfg, same port, same D
    loaded, complaints = ml.zookeeper_loaded_snapshot(zk.log_text())
    # A snapshot ZooKeeper itself was writing when it was SIGKILLed in phase 1 is torn,
    # and ZooKeeper names it whenever it scans the directory: not oxkeeper's doing.
    zk_own = [n for n, _ in files_zk if n.startswith("snapshot.")]
    complaints = [c for c in complaints if not any(re.search(r"\b%s\b" % re.escape(n), c) for n in zk_own)]
    if loaded != snap_for_zk or complaints:
        problems.append(
            "phase 3: ZooKeeper read snapshot %s (want %s, the newest oxkeeper wrote)%s"
            % (loaded, snap_for_zk, "".join("\n  " + c for c in complaints))
        )
    holder3 = connect_holder(make_client, zk.hosts, holder_id, problems, "zookeeper again")
    reader = make_client(hosts=zk.hosts, auth_data=[SUPER_AUTH])
    zk_tree2 = ml.dump_tree(reader, problems=problems, where="phase 3 (zookeeper)")
    check_tree(ox_tree, zk_tree2, "oxkeeper", "zookeeper", problems, "phase 3 (ZooKeeper reads oxkeeper's dataDir)")
    check_holder(zk_tree2, sid, held, problems, "phase 3 (zookeeper)")
    mntr = dict(
        line.split("\t", 1) for line in zk.four("mntr").splitlines() if "\t" in line
    )
    mism = mntr.get("zk_digest_mismatches_count")
    if mism not in (None, "0"):
        problems.append("phase 3: ZooKeeper found %s digest mismatches in oxkeeper's snapshot/log" % mism)
    if "zk_digest_mismatches_count" not in zk_mntr:
        print("note: this ZooKeeper reports no zk_digest_mismatches_count")
    if holder3.client_id[0] == sid:
        where = "phase 3 (holder on zookeeper)"
        check_ephemerals_call(holder3, held, problems, where)
        lock = create_seq(holder3, "/locks", "lock-", problems, where, b"zk again", ephemeral=True)
        holder3.set("/eph/holder-ox-0", b"set on zookeeper again", version=0)
        admin = make_client(hosts=zk.hosts, auth_data=[SUPER_AUTH])
        create_seq(admin, "/seq", "n-", problems, where)
        assert admin.exists(lock).ephemeralOwner == sid
        # the session ends normally: its ephemerals go
        holder3.stop()
        holder3.close()
        wait_until(lambda: all(admin.exists(p) is None for p in held + [lock]), timeout=10,
                   msg="the holder's ephemerals removed at closeSession")
        close(admin)
    close(reader)
    zk.stop(signal.SIGTERM)

    elapsed = time.monotonic() - t_start
    print("%s case: %.1f s; %d problems" % (zk_stop, elapsed, len(problems)))
    if problems:
        pytest.fail("%d problem(s) migrating ZooKeeper -> oxkeeper -> ZooKeeper:\n\n%s"
                    % (len(problems), "\n\n".join(problems)), pytrace=False)
