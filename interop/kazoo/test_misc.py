"""sync, getAllChildrenNumber, getEphemerals, data size limit, reconfig,
kazoo's four-letter helpers."""


import pytest
from kazoo.exceptions import ConnectionLoss, NoAuthError, NoNodeError, ReconfigDisabledError
from kazoo.protocol.states import KazooState
from kazoo.security import make_digest_acl

import kazoo_ext
from conftest import wait_until

ZK_TICK_TIME = 2000

# jute.maxbuffer: a request frame (after the 4-byte length) may be at most
# 0xfffff = 1048575 bytes; a longer one makes the server close the
# connection (no error reply).
MAX_FRAME = 0xFFFFF


def test_sync(zk, zk2, base):
    p = zk.create(base + "/n", b"1")
    assert zk2.sync(p) == p
    assert zk2.get(p)[0] == b"1"
    # sync does not check that the node exists
    assert zk2.sync(base + "/missing") == base + "/missing"
    assert zk.sync("/") == "/"


def test_get_all_children_number(zk, base):
    assert kazoo_ext.get_all_children_number(zk, base) == 0
    zk.create(base + "/a/b/c", makepath=True)
    zk.create(base + "/a/d")
    zk.create(base + "/e", ephemeral=True)
    # every descendant, not counting the node itself
    assert kazoo_ext.get_all_children_number(zk, base) == 5
    assert kazoo_ext.get_all_children_number(zk, base + "/a") == 3
    assert kazoo_ext.get_all_children_number(zk, base + "/a/b/c") == 0
    with pytest.raises(NoNodeError):
        kazoo_ext.get_all_children_number(zk, base + "/missing")


def test_get_all_children_number_needs_read(zk, make_client, base):
    p = zk.create(base + "/n", acl=[make_digest_acl("u", "p", all=True)])
    anon = make_client()
    with pytest.raises(NoAuthError):
        kazoo_ext.get_all_children_number(anon, p)


def test_get_ephemerals(zk, zk2, base):
    assert kazoo_ext.get_ephemerals(zk, base) == []
    zk.create(base + "/e1", ephemeral=True)
    zk.create(base + "/sub/e2", ephemeral=True, makepath=True)
    zk.create(base + "/es", ephemeral=True, sequence=True)
    zk.create(base + "/persistent")
    zk2.create(base + "/other", ephemeral=True)
    mine = [base + "/e1", base + "/es0000000002", base + "/sub/e2"]
    assert kazoo_ext.get_ephemerals(zk, base) == mine
    # "/" means all of the session's ephemerals
    assert kazoo_ext.get_ephemerals(zk, "/") == mine
    # the prefix is a string prefix, not a path prefix
    assert kazoo_ext.get_ephemerals(zk, base + "/e") == [base + "/e1", base + "/es0000000002"]
    assert kazoo_ext.get_ephemerals(zk, base + "/nothing") == []
    assert kazoo_ext.get_ephemerals(zk2, "/") == [base + "/other"]


def create_frame_len(path, n):
    # xid, type, path, data, acl vector with world:anyone, flags
    return 4 + 4 + (4 + len(path.encode())) + (4 + n) + (4 + 4 + 4 + 5 + 4 + 6) + 4


def test_data_size_limit(zk, zk2, base):
    p = base + "/big"
    n = MAX_FRAME - create_frame_len(p, 0)
    assert create_frame_len(p, n) == MAX_FRAME
    zk.create(p, b"x" * n)
    data, st = zk2.get(p)
    assert st.dataLength == n and data == b"x" * n
    zk.delete(p)

    sid = zk.client_id[0]
    states = []
    zk.add_listener(states.append)
    with pytest.raises(ConnectionLoss):
        zk.create(p, b"x" * (n + 1))
    # the server dropped the connection; the session is intact and kazoo
    # reconnects to it
    wait_until(lambda: KazooState.SUSPENDED in states, timeout=5, msg="SUSPENDED")
    wait_until(lambda: zk.connected, timeout=10, msg="reconnect")
    assert zk.client_id[0] == sid
    assert zk2.exists(p) is None
    assert KazooState.LOST not in states


def test_set_data_size_limit(zk, base):
    p = zk.create(base + "/big")
    # xid, type, path, data, version
    n = MAX_FRAME - (4 + 4 + 4 + len(p.encode()) + 4 + 4)
    assert zk.set(p, b"y" * n).dataLength == n
    with pytest.raises(ConnectionLoss):
        zk.set(p, b"y" * (n + 1))
    wait_until(lambda: zk.connected, timeout=10, msg="reconnect")
    assert zk.exists(p).dataLength == n


def test_reconfig_is_disabled(zk):
    with pytest.raises(ReconfigDisabledError):
        zk.reconfig(joining=None, leaving=None, new_members="server.1=127.0.0.1:2888:3888")


def test_kazoo_server_version_and_command(zk):
    # kazoo parses `envi` for zookeeper.version
    version = zk.server_version()
    assert len(version) >= 3
    assert all(isinstance(x, int) for x in version)
    assert version >= (3, 5, 0)
    assert zk.command(b"ruok") == "imok"
    assert zk.command(b"isro") == "rw"
