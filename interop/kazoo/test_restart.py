"""Durability across a server crash (SIGKILL) and restart on the same port
and dataDir: the tree, zxids, sequence counters, ACLs and open sessions
(with their ephemerals) come back."""

import time

from kazoo.protocol.states import KazooState
from kazoo.security import make_digest_acl

from conftest import wait_until

TICK = 200


def test_restart_keeps_tree_and_sessions(make_server, make_client):
    srv = make_server(tick_time=TICK)
    c = make_client(hosts=srv.hosts, timeout=4.0)  # 4000 ms = 20 ticks
    states = []
    c.add_listener(states.append)
    sid = c.client_id[0]
    c.create("/r", b"root")
    c.create("/r/s-", sequence=True)
    c.create("/r/s-", sequence=True)
    c.delete("/r/s-0000000000")
    c.create("/r/acl", b"x", acl=[make_digest_acl("u", "p", all=True)])
    eph = c.create("/r/eph", b"e", ephemeral=True)
    st_r = c.exists("/r")
    st_eph = c.exists(eph)
    last = c.set("/r", b"root2")

    srv.restart()  # SIGKILL, then start again: everything acknowledged is on disk

    wait_until(lambda: c.connected, timeout=10, msg="client reconnected")
    assert KazooState.LOST not in states
    assert c.client_id[0] == sid
    data, st = c.get("/r")
    assert data == b"root2"
    assert st.mzxid == last.mzxid and st.czxid == st_r.czxid
    assert st.cversion == st_r.cversion and st.numChildren == st_r.numChildren
    assert sorted(c.get_children("/r")) == ["acl", "eph", "s-0000000001"]
    # the sequence counter survived
    assert c.create("/r/s-", sequence=True) == "/r/s-0000000004"
    # ACLs survived
    other = make_client(hosts=srv.hosts, auth_data=[("digest", "u:p")])
    assert other.get_acls("/r/acl")[0] == [make_digest_acl("u", "p", all=True)]
    # the session and its ephemeral survived
    assert other.exists(eph) == st_eph
    # new writes get larger zxids than anything before the crash
    assert c.set("/r", b"after").mzxid > last.mzxid
    # and the session still ends normally
    c.stop()
    assert other.exists(eph) is None


def test_restart_expires_sessions_that_do_not_come_back(make_server, make_client):
    srv = make_server(tick_time=TICK)
    gone = make_client(hosts=srv.hosts, timeout=0.4)  # 400 ms
    eph = gone.create("/gone", ephemeral=True)
    srv.stop()
    gone.stop()  # cannot reach the server: no closeSession is delivered
    srv.start()
    observer = make_client(hosts=srv.hosts)
    # the restored session is not touched again: it expires after its timeout
    t0 = time.monotonic()
    wait_until(lambda: observer.exists(eph) is None, timeout=10, msg="expiry after restart")
    assert time.monotonic() - t0 < 5
