"""multi (kazoo client.transaction()): results, atomicity, per-op errors."""

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
    RuntimeInconsistency,
)
from kazoo.protocol.states import ZnodeStat

ZK_TICK_TIME = 2000


def test_commit_results(zk, base):
    a = base + "/a"
    t = zk.transaction()
    t.create(a, b"1")
    t.create(a + "/x")
    t.set_data(a, b"2")
    t.check(a, 1)
    t.delete(a + "/x")
    t.create(base + "/e", ephemeral=True)
    t.create(base + "/s-", sequence=True)
    res = t.commit()
    assert res[0] == a
    assert res[1] == a + "/x"
    assert isinstance(res[2], ZnodeStat)
    assert res[2].version == 1 and res[2].dataLength == 1
    assert res[3] is True
    assert res[4] is True
    assert res[5] == base + "/e"
    # the sequence number is base's child-creation count: a, e were created
    assert res[6] == base + "/s-0000000002"
    data, st = zk.get(a)
    assert data == b"2"
    # (the later delete of a/x changed a's child fields, not its data)
    assert (st.version, st.mzxid, st.dataLength) == (res[2].version, res[2].mzxid, res[2].dataLength)
    assert zk.exists(a + "/x") is None
    assert zk.exists(base + "/e").ephemeralOwner == zk.client_id[0]
    # all operations of one multi share one zxid
    assert st.czxid == st.mzxid == zk.exists(base + "/e").czxid
    assert zk.exists(base + "/s-0000000002").czxid == st.czxid
    # parent stat after a multi that created and deleted a child of a
    assert st.numChildren == 0
    assert st.cversion == 2
    assert st.pzxid == st.czxid


def test_context_manager_commits(zk, base):
    with zk.transaction() as t:
        t.create(base + "/cm", b"v")
    assert zk.get(base + "/cm")[0] == b"v"
    assert t.committed


def test_empty_multi(zk):
    assert zk.transaction().commit() == []


def test_failing_check_is_all_or_nothing(zk, base):
    a = zk.create(base + "/a", b"0")
    st0 = zk.exists(a)
    t = zk.transaction()
    t.create(base + "/n1", b"x")
    t.set_data(a, b"changed")
    t.check(a, 5)
    t.create(base + "/n2")
    t.delete(base + "/nonexistent")
    res = t.commit()
    # before the failing op: RolledBack; the failing op: its real error;
    # after it: RuntimeInconsistency (they were never checked)
    assert [type(r) for r in res] == [
        RolledBackError,
        RolledBackError,
        BadVersionError,
        RuntimeInconsistency,
        RuntimeInconsistency,
    ]
    assert zk.exists(base + "/n1") is None
    assert zk.exists(base + "/n2") is None
    assert zk.get(a) == (b"0", st0)
    assert zk.exists(base).cversion == 1


@pytest.mark.parametrize(
    "build, errors",
    [
        (lambda t, b: (t.create(b + "/a"), t.create(b + "/a")),
         [RolledBackError, NodeExistsError]),
        (lambda t, b: (t.create(b + "/a"), t.delete(b + "/zz")),
         [RolledBackError, NoNodeError]),
        (lambda t, b: (t.create(b + "/a"), t.create(b + "/a/b"), t.delete(b + "/a")),
         [RolledBackError, RolledBackError, NotEmptyError]),
        (lambda t, b: (t.create(b + "/e", ephemeral=True), t.create(b + "/e/x")),
         [RolledBackError, NoChildrenForEphemeralsError]),
        (lambda t, b: (t.check(b + "/zz", 0), t.create(b + "/a")),
         [NoNodeError, RuntimeInconsistency]),
        (lambda t, b: (t.create(b + "/a"), t.set_data(b + "/a", b"", version=3)),
         [RolledBackError, BadVersionError]),
        (lambda t, b: (t.create(b + "/a"), t.delete(b + "/a", version=1)),
         [RolledBackError, BadVersionError]),
    ],
    ids=["exists", "nonode", "notempty", "ephemeral-child", "check-nonode",
         "set-badversion", "delete-badversion"],
)
def test_per_op_errors(zk, base, build, errors):
    t = zk.transaction()
    build(t, base)
    res = t.commit()
    assert [type(r) for r in res] == errors
    assert zk.get_children(base) == []
    assert zk.exists(base).cversion == 0


def test_bad_path_in_multi(zk, base):
    from kazoo.protocol.serialization import Create, Transaction
    from kazoo.security import OPEN_ACL_UNSAFE

    # kazoo validates paths itself; a raw Create inside a Transaction
    # reaches the server as is
    req = Transaction([Create(base + "/ok", b"", OPEN_ACL_UNSAFE, 0),
                       Create(base + "/bad\x01", b"", OPEN_ACL_UNSAFE, 0)])
    a = zk.handler.async_result()
    zk._call(req, a)
    res = a.get(timeout=5)
    assert [type(r) for r in res] == [RolledBackError, BadArgumentsError]
    assert zk.get_children(base) == []


def test_delete_and_recreate_in_one_multi(zk, base):
    a = zk.create(base + "/a", b"old")
    old = zk.exists(a)
    t = zk.transaction()
    t.delete(a)
    t.create(a, b"new")
    assert t.commit() == [True, a]
    data, st = zk.get(a)
    assert data == b"new"
    assert st.czxid > old.czxid and st.version == 0


def test_multi_sees_its_own_earlier_ops(zk, base):
    t = zk.transaction()
    t.create(base + "/a", b"")
    t.check(base + "/a", 0)
    t.set_data(base + "/a", b"1", version=0)
    t.check(base + "/a", 1)
    t.set_data(base + "/a", b"2", version=1)
    res = t.commit()
    assert res[1] is True and res[3] is True
    assert res[4].version == 2
    assert zk.get(base + "/a")[0] == b"2"


def test_failed_multi_consumes_a_zxid_but_changes_nothing(zk, base):
    a = zk.create(base + "/a")
    z0 = zk.exists(a).czxid
    t = zk.transaction()
    t.create(a)
    assert isinstance(t.commit()[0], NodeExistsError)
    z1 = zk.set(a, b"x").mzxid
    # ZooKeeper gives a failed write (multi or not) a zxid of its own
    assert z1 == z0 + 2
