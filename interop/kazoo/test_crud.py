"""CRUD through kazoo: create/get/set/delete/exists/get_children, Stat
fields, version conflicts and the error codes of each operation."""

import time

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    MarshallingError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from kazoo.protocol.serialization import Create, Delete, Exists, GetData, SetData
from kazoo.security import OPEN_ACL_UNSAFE

ZK_TICK_TIME = 2000


def raw(client, request, timeout=10):
    """Send a request built with kazoo's serialization classes as is
    (kazoo's public API normalises paths before sending them)."""
    a = client.handler.async_result()
    client._call(request, a)
    return a.get(timeout=timeout)


def test_create_get_stat_fields(zk, base):
    before = time.time()
    path = zk.create(base + "/n", b"hello")
    assert path == base + "/n"
    data, st = zk.get(path)
    assert data == b"hello"
    assert st.version == 0
    assert st.cversion == 0
    assert st.aversion == 0
    assert st.numChildren == 0
    assert st.dataLength == 5
    assert st.ephemeralOwner == 0
    assert st.czxid == st.mzxid == st.pzxid
    assert st.czxid > 0
    assert st.ctime == st.mtime
    # ctime is the server's wall clock in ms (same machine)
    assert abs(st.ctime / 1000.0 - before) < 30
    # create with include_data (create2) returns the same stat
    p2, st2 = zk.create(base + "/n2", b"xy", include_data=True)
    assert p2 == base + "/n2"
    assert st2 == zk.exists(p2)
    assert st2.czxid > st.czxid
    assert st2.dataLength == 2


def test_empty_data_and_unicode_path(zk, base):
    p = zk.create(base + "/\u00fcn\u00efc\u00f8de \u2603", b"")
    assert p == base + "/\u00fcn\u00efc\u00f8de \u2603"
    data, st = zk.get(p)
    assert data == b""
    assert st.dataLength == 0
    assert "\u00fcn\u00efc\u00f8de \u2603" in zk.get_children(base)


def test_set_updates_version_and_mzxid(zk, base):
    p = zk.create(base + "/n", b"a")
    _, st0 = zk.get(p)
    st1 = zk.set(p, b"bcd")
    assert st1.version == 1
    assert st1.dataLength == 3
    assert st1.czxid == st0.czxid
    assert st1.mzxid > st0.mzxid
    assert st1.pzxid == st0.pzxid
    assert st1.mtime >= st0.mtime
    assert st1.ctime == st0.ctime
    assert st1.cversion == 0 and st1.aversion == 0
    st2 = zk.set(p, b"bcd")  # same data still bumps the version
    assert st2.version == 2
    assert st2.mzxid > st1.mzxid
    data, st = zk.get(p)
    assert data == b"bcd"
    assert st == st2
    assert zk.exists(p) == st2


def test_children_and_parent_stat(zk, base):
    parent = zk.create(base + "/p", b"P")
    _, st0 = zk.get(parent)
    a = zk.create(parent + "/a")
    b = zk.create(parent + "/b")
    _, sta = zk.get(a)
    _, stb = zk.get(b)
    _, st = zk.get(parent)
    assert st.numChildren == 2
    assert st.cversion == 2
    assert st.pzxid == stb.czxid
    assert st.version == 0 and st.mzxid == st0.mzxid  # data untouched
    assert sorted(zk.get_children(parent)) == ["a", "b"]
    # changing a child's data does not touch the parent
    zk.set(a, b"x")
    assert zk.exists(parent) == st
    # deleting a child: cversion+1, pzxid = zxid of the delete
    zk.delete(a)
    st2 = zk.exists(parent)
    assert st2.numChildren == 1
    assert st2.cversion == 3
    assert st2.pzxid > st.pzxid
    assert st2.mzxid == st0.mzxid
    # the pzxid is the zxid of the delete: a later write has a larger zxid
    probe = zk.set(b, b"later")
    assert probe.mzxid > st2.pzxid
    assert zk.get_children(parent) == ["b"]
    assert zk.get_children(b) == []


def test_get_children_include_data(zk, base):
    zk.create(base + "/c1")
    zk.create(base + "/c2")
    children, st = zk.get_children(base, include_data=True)  # getChildren2
    assert sorted(children) == ["c1", "c2"]
    assert st == zk.exists(base)
    assert st.numChildren == 2


def test_exists(zk, base):
    assert zk.exists(base + "/nope") is None
    p = zk.create(base + "/yes", b"1")
    st = zk.exists(p)
    assert st is not None
    assert st == zk.get(p)[1]


def test_delete(zk, base):
    p = zk.create(base + "/d", b"1")
    zk.delete(p)
    assert zk.exists(p) is None
    with pytest.raises(NoNodeError):
        zk.delete(p)
    with pytest.raises(NoNodeError):
        zk.get(p)
    with pytest.raises(NoNodeError):
        zk.set(p, b"x")
    with pytest.raises(NoNodeError):
        zk.get_children(p)


def test_delete_not_empty(zk, base):
    p = zk.create(base + "/d")
    zk.create(p + "/child")
    with pytest.raises(NotEmptyError):
        zk.delete(p)
    zk.delete(p, recursive=True)  # kazoo: children first
    assert zk.exists(p) is None


def test_version_conflicts(zk, base):
    p = zk.create(base + "/v", b"0")
    with pytest.raises(BadVersionError):
        zk.set(p, b"1", version=1)
    assert zk.set(p, b"1", version=0).version == 1
    assert zk.set(p, b"2", version=-1).version == 2  # -1 matches any
    with pytest.raises(BadVersionError):
        zk.set(p, b"3", version=1)
    with pytest.raises(BadVersionError):
        zk.delete(p, version=1)
    # checks happen before NoNode? no: missing node is NoNode whatever the version
    with pytest.raises(NoNodeError):
        zk.set(base + "/missing", b"", version=7)
    zk.delete(p, version=2)
    assert zk.exists(p) is None


def test_create_errors(zk, base):
    p = zk.create(base + "/x")
    with pytest.raises(NodeExistsError):
        zk.create(p)
    with pytest.raises(NodeExistsError):
        zk.create("/")
    with pytest.raises(NoNodeError):
        zk.create(base + "/missing/child")
    e = zk.create(base + "/eph", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(e + "/child")
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(e + "/child", sequence=True)
    # makepath creates the parents
    assert zk.create(base + "/m/n/o", b"z", makepath=True) == base + "/m/n/o"
    assert zk.get(base + "/m/n/o")[0] == b"z"


def test_client_side_bad_paths(zk):
    # kazoo refuses relative components itself
    for p in ("/a/./b", "/a/../b", "/a/.."):
        with pytest.raises(ValueError):
            zk.create(p)


# path -> error of create (ZooKeeper looks the parent up before it validates
# the full path, so a malformed parent is "no node"), setData validates first.
BAD_PATHS = {
    "/x/": BadArgumentsError,
    "x": BadArgumentsError,
    "/x//y": NoNodeError,
    "/x/./y": NoNodeError,
    "/x/../y": NoNodeError,
    "/x/.": BadArgumentsError,
    "/x/..": BadArgumentsError,
    "//": BadArgumentsError,
    "/x/a\x01": BadArgumentsError,
    "/x/a\x7f": BadArgumentsError,
    "/x/a\x00b": BadArgumentsError,
    "/x/a\uffff": BadArgumentsError,
    "/x/a\u009f": BadArgumentsError,
}


@pytest.mark.parametrize("path", sorted(BAD_PATHS), ids=repr)
def test_server_side_bad_paths(zk, path):
    """Raw requests (no kazoo normalisation)."""
    zk.ensure_path("/x")
    with pytest.raises(BAD_PATHS[path]):
        raw(zk, Create(path, b"", OPEN_ACL_UNSAFE, 0))
    with pytest.raises(BadArgumentsError):
        raw(zk, SetData(path, b"", -1))
    with pytest.raises(NoNodeError):
        raw(zk, GetData(path, None))
    if "\x00" in path:
        # exists (not getData) checks for a NUL character
        with pytest.raises(BadArgumentsError):
            raw(zk, Exists(path, None))
    else:
        assert raw(zk, Exists(path, None)) is None
    # delete: a NUL character or no slash at all is BadArguments,
    # otherwise "no such node"
    exc = BadArgumentsError if ("/" not in path or "\x00" in path) else NoNodeError
    with pytest.raises(exc):
        raw(zk, Delete(path, -1))
    assert sorted(zk.get_children("/x")) == []


def test_null_path(zk):
    # kazoo writes "" as a null ustring (length -1): ZooKeeper cannot
    # deserialize the request for reads/delete -> MarshallingError,
    # setData validates the path first -> BadArguments.
    with pytest.raises(MarshallingError):
        raw(zk, GetData("", None))
    with pytest.raises(BadArgumentsError):
        raw(zk, SetData("", b"", -1))


def test_special_nodes(zk):
    with pytest.raises(BadArgumentsError):
        zk.delete("/")
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper")
    assert "zookeeper" in zk.get_children("/")
    assert sorted(zk.get_children("/zookeeper")) == ["config", "quota"]
    data, st = zk.get("/zookeeper/config")
    assert data == b""
    data, st = zk.get("/")
    assert data == b""
    assert st.czxid == 0 and st.ephemeralOwner == 0


def test_failed_write_consumes_a_zxid(zk, base):
    """ZooKeeper gives every write request a zxid in PrepRequestProcessor,
    also when it fails (an error txn): the next successful write's zxid
    shows the gap.  Reads never take one."""
    a = zk.create(base + "/a")
    z0 = zk.exists(a).czxid
    zk.get(a)
    zk.exists(a)
    assert zk.set(a, b"1").mzxid == z0 + 1
    with pytest.raises(NodeExistsError):
        zk.create(a)
    with pytest.raises(BadVersionError):
        zk.set(a, b"2", version=9)
    with pytest.raises(NoNodeError):
        zk.delete(base + "/missing")
    assert zk.set(a, b"3").mzxid == z0 + 5
