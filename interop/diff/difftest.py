#!/usr/bin/env python3
"""Differential test: run one fixed operation script through kazoo against
a server and record a normalised transcript.

    python difftest.py --record zookeeper out.json   # start Apache ZooKeeper
    python difftest.py --record oxkeeper out.json    # start $OXKEEPER_BIN
    python difftest.py --connect 127.0.0.1:2181 out.json   # a running server
    python difftest.py --compare a.json b.json       # unified diff, exit 1 if different

The server must be fresh (empty tree): sequence numbers and stats depend on
what happened before.

Normalisation:
* zxids (czxid, mzxid, pzxid) are replaced by their rank among all zxid
  values in the transcript ("z0" is zxid 0, the built-in nodes), so a server
  that numbers transactions differently (e.g. gives no zxid to a failed
  write) still matches as long as the order is the same;
* ctime/mtime are dropped;
* ephemeralOwner is replaced by the ordinal of the session (client "A" is
  the first session opened, ...), 0 stays 0;
* children and getEphemerals lists are sorted (their order is unspecified);
* errors are recorded by kazoo exception class;
* watch events are recorded per client in the order they arrive on that
  client's socket (kazoo_ext.wire_log); after every step each live client
  does one round trip, so every event a step caused has arrived before the
  next step starts.
"""

import argparse
import difflib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import kazoo_ext  # noqa: E402
import zkharness  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.protocol.serialization import Create, Delete, GetData, SetData  # noqa: E402
from kazoo.protocol.states import ZnodeStat  # noqa: E402
from kazoo.security import (  # noqa: E402
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    make_acl,
    make_digest_acl,
)

ROOT = "/difftest"


class Zxid(object):
    def __init__(self, value):
        self.value = value


class Runner(object):
    def __init__(self, hosts):
        self.hosts = hosts
        self.clients = {}  # label -> KazooClient
        self.session_label = {}  # session id -> label
        self.transcript = []

    # -- clients -------------------------------------------------------
    def open(self, label, **kw):
        c = KazooClient(hosts=self.hosts, timeout=10.0, **kw)
        kazoo_ext.wire_log(c)
        c.start(timeout=15)
        self.clients[label] = c
        self.session_label[c.client_id[0]] = label
        self.transcript.append({"step": "open", "client": label})
        return c

    def close(self, label):
        """closeSession.  The events it causes are sorted: the order in which
        a session's ephemerals are deleted is unspecified (ZooKeeper walks a
        HashSet)."""
        c = self.clients.pop(label)
        c.stop()
        c.close()
        events = {k: sorted(v) for k, v in self._drain().items()}
        self.transcript.append({"step": "close", "client": label, "events": events})

    def close_all(self):
        for label in list(self.clients):
            c = self.clients.pop(label)
            try:
                c.stop()
                c.close()
            except Exception:
                pass

    # -- normalisation -------------------------------------------------
    def norm(self, v):
        if isinstance(v, ZnodeStat):
            owner = v.ephemeralOwner
            return {
                "czxid": Zxid(v.czxid),
                "mzxid": Zxid(v.mzxid),
                "pzxid": Zxid(v.pzxid),
                "version": v.version,
                "cversion": v.cversion,
                "aversion": v.aversion,
                "ephemeralOwner": 0 if owner == 0 else "session:" + self.session_label.get(owner, "?"),
                "dataLength": v.dataLength,
                "numChildren": v.numChildren,
            }
        if isinstance(v, ACL):
            return {"perms": v.perms, "scheme": v.id.scheme, "id": v.id.id}
        if isinstance(v, bytes):
            return {"bytes": v.decode("latin-1")}
        if isinstance(v, BaseException):
            return {"error": type(v).__name__}
        if isinstance(v, tuple):
            return [self.norm(x) for x in v]
        if isinstance(v, list):
            return [self.norm(x) for x in v]
        if isinstance(v, dict):
            return {k: self.norm(x) for k, x in v.items()}
        return v

    def _drain(self):
        """one round trip per live client, then collect the events each
        one received since the last step"""
        events = {}
        for label in sorted(self.clients):
            c = self.clients[label]
            try:
                c.exists("/")
            except Exception:
                pass
            evs = [[w[1], w[2]] for w in c.wire if w[0] == "event"]
            del c.wire[:]
            if evs:
                events[label] = evs
        return events

    # -- steps ---------------------------------------------------------
    def step(self, label, name, fn, *args, sort=False, **kwargs):
        c = self.clients[label]
        try:
            result = fn(c, *args, **kwargs)
            if sort and isinstance(result, list):
                result = sorted(result)
            elif sort and isinstance(result, tuple):
                result = (sorted(result[0]),) + tuple(result[1:])
            entry = {"result": self.norm(result)}
        except Exception as e:  # noqa: B902
            entry = {"error": type(e).__name__}
        rec = {"step": name, "client": label}
        rec.update(entry)
        rec["events"] = self._drain()
        self.transcript.append(rec)
        return entry

    def finish(self):
        """replace Zxid markers by ranks"""
        values = set()

        def collect(v):
            if isinstance(v, Zxid):
                values.add(v.value)
            elif isinstance(v, dict):
                for x in v.values():
                    collect(x)
            elif isinstance(v, list):
                for x in v:
                    collect(x)

        collect(self.transcript)
        rank = {z: i for i, z in enumerate(sorted(values))}

        def replace(v):
            if isinstance(v, Zxid):
                return "z%d" % rank[v.value]
            if isinstance(v, dict):
                return {k: replace(x) for k, x in v.items()}
            if isinstance(v, list):
                return [replace(x) for x in v]
            return v

        return replace(self.transcript)


def raw(c, request):
    a = c.handler.async_result()
    c._call(request, a)
    return a.get(timeout=10)


def noop(ev):
    pass


def script(r):
    """The fixed operation script.  Client A is the main actor, B watches
    and acts as a second session, C authenticates, D is thrown away."""
    R = ROOT
    r.open("A")
    r.open("B")
    s = r.step
    # --- plain CRUD ---------------------------------------------------
    s("A", "create persistent", lambda c: c.create(R, b"root"))
    s("A", "create exists", lambda c: c.create(R))
    s("A", "create no parent", lambda c: c.create(R + "/x/y"))
    s("A", "create2 (include_data)", lambda c: c.create(R + "/n", b"data", include_data=True))
    s("A", "get", lambda c: c.get(R + "/n"))
    s("A", "get missing", lambda c: c.get(R + "/missing"))
    s("A", "exists", lambda c: c.exists(R + "/n"))
    s("A", "exists missing", lambda c: c.exists(R + "/missing"))
    s("A", "set", lambda c: c.set(R + "/n", b"data2"))
    s("A", "set version ok", lambda c: c.set(R + "/n", b"data3", version=1))
    s("A", "set bad version", lambda c: c.set(R + "/n", b"x", version=7))
    s("A", "set missing", lambda c: c.set(R + "/missing", b"x"))
    s("A", "create empty data", lambda c: c.create(R + "/empty", b""))
    s("A", "get empty", lambda c: c.get(R + "/empty"))
    s("A", "makepath", lambda c: c.create(R + "/deep/er/est", b"d", makepath=True))
    s("A", "get root stat", lambda c: c.get(R))
    # --- sequential / ephemeral ---------------------------------------
    s("A", "create sequential", lambda c: c.create(R + "/seq-", b"s", sequence=True))
    s("A", "create sequential 2", lambda c: c.create(R + "/seq-", sequence=True))
    s("A", "create ephemeral", lambda c: c.create(R + "/eph", b"e", ephemeral=True))
    s("A", "get ephemeral", lambda c: c.get(R + "/eph"))
    s("A", "create ephemeral sequential", lambda c: c.create(R + "/eseq-", ephemeral=True, sequence=True))
    s("A", "ephemeral child", lambda c: c.create(R + "/eph/child"))
    s("B", "create ephemeral B", lambda c: c.create(R + "/ephB", ephemeral=True))
    s("A", "delete", lambda c: c.delete(R + "/empty"))
    s("A", "delete missing", lambda c: c.delete(R + "/empty"))
    s("A", "delete bad version", lambda c: c.delete(R + "/n", version=9))
    s("A", "delete not empty", lambda c: c.delete(R + "/deep"))
    s("A", "sequential after delete", lambda c: c.create(R + "/seq-", sequence=True))
    s("A", "children", lambda c: c.get_children(R), sort=True)
    s("A", "children2", lambda c: c.get_children(R, include_data=True), sort=True)
    s("A", "children missing", lambda c: c.get_children(R + "/missing"))
    s("A", "getAllChildrenNumber", lambda c: kazoo_ext.get_all_children_number(c, R))
    s("A", "getAllChildrenNumber missing", lambda c: kazoo_ext.get_all_children_number(c, R + "/missing"))
    s("A", "getEphemerals A", lambda c: kazoo_ext.get_ephemerals(c, "/"))
    s("B", "getEphemerals B", lambda c: kazoo_ext.get_ephemerals(c, R))
    s("A", "getEphemerals prefix", lambda c: kazoo_ext.get_ephemerals(c, R + "/es"))
    # --- bad arguments ------------------------------------------------
    s("A", "raw create trailing slash", lambda c: raw(c, Create(R + "/n/", b"", OPEN_ACL_UNSAFE, 0)))
    s("A", "raw create missing parent", lambda c: raw(c, Create(R + "/bad/", b"", OPEN_ACL_UNSAFE, 0)))
    s("A", "raw create bad char", lambda c: raw(c, Create(R + "/bad\x01", b"", OPEN_ACL_UNSAFE, 0)))
    s("A", "raw create relative", lambda c: raw(c, Create(R + "/.", b"", OPEN_ACL_UNSAFE, 0)))
    s("A", "raw set double slash", lambda c: raw(c, SetData(R + "//n", b"", -1)))
    s("A", "raw get double slash", lambda c: raw(c, GetData(R + "//n", None)))
    s("A", "raw delete no slash", lambda c: raw(c, Delete("difftest", -1)))
    s("A", "delete root", lambda c: c.delete("/"))
    s("A", "delete /zookeeper", lambda c: c.delete("/zookeeper"))
    s("A", "sync", lambda c: c.sync(R))
    s("A", "sync missing", lambda c: c.sync(R + "/missing"))
    s("A", "reconfig", lambda c: c.reconfig(joining=None, leaving=None, new_members="server.1=127.0.0.1:2888:3888"))
    s("A", "builtin children", lambda c: c.get_children("/zookeeper"), sort=True)
    s("A", "builtin config", lambda c: c.get("/zookeeper/config"))
    # --- watches ------------------------------------------------------
    s("B", "watch data", lambda c: c.get(R + "/n", watch=noop))
    s("B", "watch exists missing", lambda c: c.exists(R + "/w", watch=noop))
    s("B", "watch exists present", lambda c: c.exists(R + "/deep", watch=noop))
    s("B", "watch children", lambda c: c.get_children(R + "/deep", watch=noop))
    s("B", "watch children2", lambda c: c.get_children(R, watch=noop, include_data=True), sort=True)
    s("B", "watch ephemeral of A", lambda c: c.exists(R + "/eph", watch=noop))
    s("A", "trigger CHANGED", lambda c: c.set(R + "/n", b"w1"))
    s("A", "no second event", lambda c: c.set(R + "/n", b"w2"))
    s("A", "trigger CREATED + CHILD", lambda c: c.create(R + "/w", b""))
    s("A", "trigger CHILD of /deep", lambda c: c.create(R + "/deep/new"))
    s("B", "watch w data", lambda c: c.get(R + "/w", watch=noop))
    s("B", "watch w children", lambda c: c.get_children(R + "/w", watch=noop))
    s("B", "watch root children", lambda c: c.get_children(R, watch=noop), sort=True)
    s("A", "trigger DELETED + CHILD", lambda c: c.delete(R + "/w"))
    s("A", "get with own watch", lambda c: c.get(R + "/n", watch=noop))
    s("A", "own write fires own watch", lambda c: c.set(R + "/n", b"w3"))
    s("B", "get after watch", lambda c: c.get(R + "/n"))
    # --- multi --------------------------------------------------------
    s("B", "watch for multi", lambda c: c.get(R + "/n", watch=noop))
    s("B", "watch exists m1", lambda c: c.exists(R + "/m1", watch=noop))

    def multi_ok(c):
        t = c.transaction()
        t.create(R + "/m1", b"1")
        t.create(R + "/m1/c")
        t.set_data(R + "/n", b"multi", version=5)
        t.check(R + "/m1", 0)
        t.delete(R + "/m1/c")
        t.create(R + "/mseq-", sequence=True)
        t.create(R + "/meph", ephemeral=True)
        return t.commit()

    s("A", "multi success", multi_ok)
    s("B", "watch m1 again", lambda c: c.get(R + "/m1", watch=noop))

    def multi_fail(c):
        t = c.transaction()
        t.set_data(R + "/m1", b"nope")
        t.create(R + "/m2")
        t.check(R + "/m1", 99)
        t.delete(R + "/n")
        return t.commit()

    s("A", "multi failure (check)", multi_fail)

    def multi_fail2(c):
        t = c.transaction()
        t.create(R + "/m3")
        t.create(R + "/m3")
        return t.commit()

    s("A", "multi failure (exists)", multi_fail2)

    def multi_fail3(c):
        t = c.transaction()
        t.delete(R + "/deep")
        return t.commit()

    s("A", "multi failure (not empty)", multi_fail3)
    s("A", "multi empty", lambda c: c.transaction().commit())
    s("A", "after failed multis", lambda c: c.get(R + "/m1"))
    s("A", "sequential after multis", lambda c: c.create(R + "/seq-", sequence=True))
    # --- ACL and auth -------------------------------------------------
    s("A", "get_acls default", lambda c: c.get_acls(R + "/n"))
    s("A", "get_acls missing", lambda c: c.get_acls(R + "/missing"))
    s("A", "create digest acl", lambda c: c.create(
        R + "/secret", b"s", acl=[make_digest_acl("u", "p", all=True), make_acl("world", "anyone", read=True)]))
    s("B", "read world:r", lambda c: c.get(R + "/secret"))
    s("B", "write NoAuth", lambda c: c.set(R + "/secret", b"x"))
    s("B", "create child NoAuth", lambda c: c.create(R + "/secret/c"))
    s("B", "setAcl NoAuth", lambda c: c.set_acls(R + "/secret", OPEN_ACL_UNSAFE))
    r.open("C")
    s("C", "add_auth digest", lambda c: c.add_auth("digest", "u:p"))
    s("C", "write with auth", lambda c: c.set(R + "/secret", b"s2"))
    s("C", "create auth acl", lambda c: c.create(R + "/mine", b"m", acl=CREATOR_ALL_ACL))
    s("C", "get_acls auth", lambda c: c.get_acls(R + "/mine"))
    s("B", "read auth-only NoAuth", lambda c: c.get(R + "/mine"))
    s("B", "get_acls NoAuth", lambda c: c.get_acls(R + "/mine"))
    # (exists on an existing node without READ differs between releases:
    # ZOOKEEPER-2590, 3.8.4+/3.9.2+; test_acl.py covers it per version)
    s("B", "exists missing below no-READ node", lambda c: c.exists(R + "/mine/x"))
    s("A", "create auth acl unauthenticated", lambda c: c.create(R + "/noauth", acl=CREATOR_ALL_ACL))
    s("A", "create invalid acl", lambda c: c.create(R + "/bad", acl=[ACL(31, Id("digest", "nocolon"))]))
    s("A", "create bad scheme", lambda c: c.create(R + "/bad", acl=[ACL(31, Id("foo", "bar"))]))
    s("A", "create ip acl", lambda c: c.create(R + "/ip", b"i", acl=[make_acl("ip", "127.0.0.1", all=True)]))
    s("B", "read ip acl", lambda c: c.get(R + "/ip"))
    s("A", "create foreign ip acl", lambda c: c.create(R + "/ip2", acl=[make_acl("ip", "10.0.0.1", all=True)]))
    s("B", "read foreign ip acl", lambda c: c.get(R + "/ip2"))
    s("A", "set_acls bad version", lambda c: c.set_acls(R + "/n", READ_ACL_UNSAFE, version=3))
    s("A", "set_acls", lambda c: c.set_acls(R + "/n", READ_ACL_UNSAFE, version=0))
    s("A", "get_acls after", lambda c: c.get_acls(R + "/n"))
    s("A", "write read-only", lambda c: c.set(R + "/n", b"x"))
    s("A", "set_acls invalid", lambda c: c.set_acls(R + "/ip", []))
    s("A", "dedup acl", lambda c: c.create(R + "/dup", acl=[ACL(31, Id("world", "anyone"))] * 2))
    s("A", "get_acls dedup", lambda c: c.get_acls(R + "/dup"))
    s("B", "watch dup", lambda c: c.get(R + "/dup", watch=noop))
    s("A", "set_acls fires no watch", lambda c: c.set_acls(R + "/dup", OPEN_ACL_UNSAFE))
    s("A", "set data fires it", lambda c: c.set(R + "/dup", b"d"))
    r.open("S", auth_data=[("digest", "%s:%s" % (zkharness.SUPER_USER, zkharness.SUPER_PASSWORD))])
    s("S", "super reads", lambda c: c.get(R + "/mine"))
    s("S", "super writes", lambda c: c.set(R + "/n", b"super"))
    s("S", "super get_acls", lambda c: c.get_acls(R + "/ip2"))
    # --- sessions -----------------------------------------------------
    s("B", "watch A's ephemerals", lambda c: c.exists(R + "/meph", watch=noop))
    s("B", "watch root children again", lambda c: c.get_children(R, watch=noop), sort=True)
    r.close("A")  # closeSession: /eph, /eseq-..., /meph go
    s("B", "children after A closed", lambda c: c.get_children(R), sort=True)
    s("B", "root stat after A closed", lambda c: c.exists(R))
    r.open("D")
    s("D", "add_auth bad scheme", lambda c: c.add_auth("nosuchscheme", "x"))
    d = r.clients.pop("D")  # AUTH_FAILED is terminal for kazoo
    d.stop()
    d.close()
    # --- final state of the tree -------------------------------------
    s("B", "final children", lambda c: c.get_children(R), sort=True)
    s("B", "final deep", lambda c: c.get_children(R + "/deep"), sort=True)
    s("S", "final n", lambda c: c.get(R + "/n"))
    s("S", "final all children", lambda c: kazoo_ext.get_all_children_number(c, R))
    s("S", "final root", lambda c: c.get("/"))


def run(hosts):
    r = Runner(hosts)
    try:
        script(r)
    finally:
        r.close_all()
    return r.finish()


def dumps(transcript):
    return json.dumps(transcript, indent=1, sort_keys=True, ensure_ascii=True) + "\n"


def record_with_server(kind):
    srv = zkharness.Server(kind=kind)
    try:
        srv.start()
        return run(srv.hosts)
    except Exception:
        sys.stderr.write(srv.log_tail() + "\n")
        raise
    finally:
        srv.cleanup()


def unified(a_text, b_text, a_name, b_name):
    return "".join(
        difflib.unified_diff(
            a_text.splitlines(True), b_text.splitlines(True), fromfile=a_name, tofile=b_name, n=8
        )
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--record", metavar="TARGET", choices=zkharness.TARGETS,
                   help="start a fresh server of this kind and record")
    g.add_argument("--connect", metavar="HOST:PORT", help="record against a running, empty server")
    g.add_argument("--compare", nargs=2, metavar=("A", "B"), help="diff two transcripts")
    ap.add_argument("out", nargs="?", help="output file (default stdout)")
    args = ap.parse_args(argv)
    if args.compare:
        texts = [open(p).read() for p in args.compare]
        d = unified(texts[0], texts[1], *args.compare)
        sys.stdout.write(d)
        return 1 if d else 0
    if args.record:
        t = record_with_server(args.record)
    else:
        t = run(args.connect)
    text = dumps(t)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
