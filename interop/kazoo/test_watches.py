"""Watches: data (get), exists, child (get_children); event types, one-shot
semantics, and where the event is placed relative to replies.

Ordering is observed on the wire: kazoo_ext.wire_log records, in kazoo's
connection thread, the order in which events and replies are read from the
socket (kazoo runs watch callbacks on another thread, so callback order
against a returning call is not something a server controls)."""

import threading
import time

import pytest
from kazoo.exceptions import NoNodeError

import kazoo_ext

ZK_TICK_TIME = 2000
QUIET = 0.3  # how long "no further event" is waited for


class Recorder:
    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def __call__(self, ev):
        with self.cond:
            self.events.append((ev.type, ev.path, ev.state))
            self.cond.notify_all()

    def wait(self, n=1, timeout=5):
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.events) >= n, timeout)
        assert ok, "expected %d event(s), got %r" % (n, self.events)
        return self.events


@pytest.fixture
def wzk(make_client):
    """a client whose socket reads are logged"""
    c = make_client(start=False)
    kazoo_ext.wire_log(c)
    c.start()
    return c


def wire_events(client, path=None):
    return [w[:3] for w in client.wire if w[0] == "event" and (path is None or w[2] == path)]


def test_data_watch_changed_is_one_shot(zk, zk2, base):
    p = zk.create(base + "/n", b"0")
    rec = Recorder()
    zk2.get(p, watch=rec)
    zk.set(p, b"1")
    assert rec.wait(1) == [("CHANGED", p, "CONNECTED")]
    zk.set(p, b"2")
    time.sleep(QUIET)
    assert len(rec.events) == 1  # one-shot
    zk2.get(p, watch=rec)  # re-arm
    zk.delete(p)
    assert rec.wait(2)[1] == ("DELETED", p, "CONNECTED")


def test_exists_watch_created_changed_deleted(zk, zk2, base):
    p = base + "/n"
    rec = Recorder()
    assert zk2.exists(p, watch=rec) is None  # watch left on a missing node
    zk.create(p, b"x")
    assert rec.wait(1) == [("CREATED", p, "CONNECTED")]
    assert zk2.exists(p, watch=rec) is not None
    zk.set(p, b"y")
    assert rec.wait(2)[1] == ("CHANGED", p, "CONNECTED")
    zk2.exists(p, watch=rec)
    zk.delete(p)
    assert rec.wait(3)[2] == ("DELETED", p, "CONNECTED")
    time.sleep(QUIET)
    assert len(rec.events) == 3


def test_get_on_missing_node_leaves_no_watch(zk, wzk, base):
    p = base + "/missing"
    rec = Recorder()
    with pytest.raises(NoNodeError):
        wzk.get(p, watch=rec)
    with pytest.raises(NoNodeError):
        wzk.get_children(p, watch=rec)
    zk.create(p)
    zk.create(p + "/c")
    time.sleep(QUIET)
    assert rec.events == []
    assert wire_events(wzk) == []


def test_child_watch(zk, zk2, base):
    parent = zk.create(base + "/p")
    rec = Recorder()
    assert zk2.get_children(parent, watch=rec) == []
    c = zk.create(parent + "/c")
    assert rec.wait(1) == [("CHILD", parent, "CONNECTED")]
    zk2.get_children(parent, watch=rec)
    zk.set(c, b"data")  # data of a child: no child event
    zk.create(c + "/grandchild")  # grandchild: no child event on parent
    time.sleep(QUIET)
    assert len(rec.events) == 1
    zk.delete(c, recursive=True)
    assert rec.wait(2)[1] == ("CHILD", parent, "CONNECTED")
    zk2.get_children(parent, watch=rec)
    zk.delete(parent)  # the watched node itself goes: DELETED
    assert rec.wait(3)[2] == ("DELETED", parent, "CONNECTED")


def test_watchers_of_several_clients_all_fire(zk, make_client, base):
    p = zk.create(base + "/n")
    recs = []
    for _ in range(3):
        c = make_client()
        r = Recorder()
        c.get(p, watch=r)
        recs.append(r)
    zk.set(p, b"!")
    for r in recs:
        assert r.wait(1) == [("CHANGED", p, "CONNECTED")]


def test_same_path_watched_twice_one_event_on_the_wire(zk, wzk, base):
    p = zk.create(base + "/n")
    r1, r2 = Recorder(), Recorder()
    wzk.get(p, watch=r1)
    wzk.exists(p, watch=r2)
    zk.set(p, b"x")
    r1.wait(1)
    r2.wait(1)
    time.sleep(QUIET)
    # ZooKeeper keeps one data watch per (path, connection)
    assert wire_events(wzk, p) == [("event", "CHANGED", p)]


def test_event_precedes_reply_of_own_write(wzk, base):
    """The watcher is also the writer: on its connection the notification
    comes before the reply of the write that triggered it."""
    p = wzk.create(base + "/n", b"0")
    rec = Recorder()
    for i in range(10):
        wzk.get(p, watch=rec)
        del wzk.wire[:]
        wzk.set(p, b"%d" % i)
        kinds = [w[:3] for w in wzk.wire]
        assert kinds[:2] == [("event", "CHANGED", p), ("reply", "SetData", p)], kinds
    rec.wait(10)
    assert all(e[0] == "CHANGED" for e in rec.events)


def test_event_precedes_reply_delete_and_create(zk, wzk, base):
    """Order of the events a single write produces, all before its reply:
    the node's own event first, then the parent's CHILD event."""
    parent = zk.create(base + "/p")
    c = parent + "/c"
    wzk.exists(c, watch=Recorder())
    wzk.get_children(parent, watch=Recorder())
    del wzk.wire[:]
    wzk.create(c)
    assert [w[:3] for w in wzk.wire] == [
        ("event", "CREATED", c),
        ("event", "CHILD", parent),
        ("reply", "Create", c),
    ]
    wzk.get(c, watch=Recorder())
    wzk.get_children(c, watch=Recorder())
    wzk.get_children(parent, watch=Recorder())
    del wzk.wire[:]
    wzk.delete(c)
    # data and child watches of the deleted node merge into one DELETED
    assert [w[:3] for w in wzk.wire] == [
        ("event", "DELETED", c),
        ("event", "CHILD", parent),
        ("reply", "Delete", c),
    ]


def test_event_seen_before_new_data_by_another_client(zk, make_client, base):
    """Writer A, watcher B.  Once A's set() has returned, B's next read
    returns the new data and B's socket has delivered the event before the
    reply of that read (ZooKeeper: a client sees the watch event before it
    sees the new data).  Timing across the two sockets: B's event arrives
    no later than shortly after A's reply (0.5 s allowed for scheduling;
    ZooKeeper delivers it before A's reply in most rounds, not all)."""
    p = zk.create(base + "/n", b"0")
    a = make_client(start=False)
    kazoo_ext.wire_log(a)
    a.start()
    b = make_client(start=False)
    kazoo_ext.wire_log(b)
    b.start()
    before = 0
    rounds = 20
    for i in range(rounds):
        rec = Recorder()
        b.get(p, watch=rec)
        del a.wire[:]
        del b.wire[:]
        a.set(p, b"v%d" % i)
        t_reply = [w[3] for w in a.wire if w[:2] == ("reply", "SetData")][0]
        data, _ = b.get(p)
        assert data == b"v%d" % i
        kinds = [w[:3] for w in b.wire]
        assert kinds[0] == ("event", "CHANGED", p), kinds
        assert ("reply", "GetData", p) in kinds[1:], kinds
        t_event = b.wire[0][3]
        assert t_event - t_reply < 0.5, "event %.3fs after the writer's reply" % (t_event - t_reply)
        before += t_event <= t_reply
        rec.wait(1)
    print("event before the writer's reply in %d/%d rounds" % (before, rounds))


def test_multi_fires_watches_before_its_reply(wzk, base):
    a = wzk.create(base + "/a", b"")
    b = base + "/b"
    wzk.get(a, watch=Recorder())
    wzk.exists(b, watch=Recorder())
    wzk.get_children(base, watch=Recorder())
    del wzk.wire[:]
    t = wzk.transaction()
    t.set_data(a, b"1")
    t.create(b)
    res = t.commit()
    kinds = [w[:3] for w in wzk.wire]
    assert res[0].version == 1 and res[1] == b
    assert kinds[:4] == [
        ("event", "CHANGED", a),
        ("event", "CREATED", b),
        ("event", "CHILD", base),
        ("reply", "Transaction", None),
    ], kinds


def test_failed_multi_fires_nothing(zk, wzk, base):
    a = zk.create(base + "/a")
    rec = Recorder()
    wzk.get(a, watch=rec)
    wzk.get_children(base, watch=rec)
    t = zk.transaction()
    t.set_data(a, b"1")
    t.create(base + "/b")
    t.check(a, 42)
    res = t.commit()
    assert any(isinstance(r, Exception) for r in res)
    time.sleep(QUIET)
    assert rec.events == []
    assert wire_events(wzk) == []


def test_watch_registered_by_get_children_include_data(zk, zk2, base):
    rec = Recorder()
    children, st = zk2.get_children(base, watch=rec, include_data=True)
    assert children == [] and st.numChildren == 0
    zk.create(base + "/c")
    assert rec.wait(1) == [("CHILD", base, "CONNECTED")]


def test_watch_counts_in_4lw(server, zk, wzk, base):
    p = zk.create(base + "/n")
    wzk.get(p, watch=Recorder())
    wzk.exists(base + "/none", watch=Recorder())
    wzk.get_children(p, watch=Recorder())
    wchc = server.four("wchc")
    sid = "0x%x" % wzk.client_id[0]
    assert sid in wchc
    section = wchc.split(sid, 1)[1].split("\n\n", 1)[0]
    # wchc/wchp/wchs list only data watches (getData/exists), not child ones
    assert "\t%s\n" % p in section + "\n"
    assert "\t%s/none" % base in section
    wchp = server.four("wchp")
    assert "%s\n\t%s" % (p, sid) in wchp
    mntr = dict(
        line.split("\t", 1) for line in server.four("mntr").splitlines() if "\t" in line
    )
    assert int(mntr["zk_watch_count"]) >= 3  # data + child watches
