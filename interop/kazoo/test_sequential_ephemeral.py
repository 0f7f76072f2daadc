"""Sequential and ephemeral znodes."""

import re

import pytest
from kazoo.exceptions import NodeExistsError

ZK_TICK_TIME = 2000


def test_sequential_suffix_is_10_digits(zk, base):
    p0 = zk.create(base + "/s-", sequence=True)
    p1 = zk.create(base + "/s-", b"x", sequence=True)
    assert p0 == base + "/s-0000000000"
    assert p1 == base + "/s-0000000001"
    assert re.fullmatch(re.escape(base) + r"/s-\d{10}", p1)
    assert zk.get(p1)[0] == b"x"
    p2 = zk.create(base + "/q", sequence=True)  # one counter per parent
    assert p2 == base + "/q0000000002"


def test_sequence_counter_is_per_parent_and_counts_child_creations(zk, base):
    a = zk.create(base + "/a")
    b = zk.create(base + "/b")
    assert zk.create(a + "/n", sequence=True) == a + "/n0000000000"
    assert zk.create(b + "/n", sequence=True) == b + "/n0000000000"
    # every child creation advances the counter, sequential or not
    zk.create(a + "/plain")
    assert zk.create(a + "/n", sequence=True) == a + "/n0000000002"
    # deletions advance the reported cversion but NOT the counter:
    # ZooKeeper keeps the number of child creations and reports
    # cversion = 2 * creations - numChildren (= creations + deletions)
    zk.delete(a + "/plain")
    zk.delete(a + "/n0000000000")
    st = zk.exists(a)
    assert st.cversion == 5 and st.numChildren == 1
    assert zk.create(a + "/n", sequence=True) == a + "/n0000000003"
    assert zk.exists(a).cversion == 6
    # a failed create does not advance it
    with pytest.raises(NodeExistsError):
        zk.create(a + "/n0000000003")
    assert zk.create(a + "/m", sequence=True) == a + "/m0000000004"
    assert zk.create(b + "/n", sequence=True) == b + "/n0000000001"
    # different prefixes share the counter
    assert sorted(zk.get_children(a)) == ["m0000000004", "n0000000002", "n0000000003"]
    # deleting every child keeps the counter
    for c in zk.get_children(a):
        zk.delete(a + "/" + c)
    assert zk.exists(a).cversion == 10
    assert zk.create(a + "/n", sequence=True) == a + "/n0000000005"


def test_sequential_name_collision(zk, base):
    # a plain node named like the next sequential one makes the
    # sequential create fail with NodeExists
    zk.create(base + "/s0000000001")  # cversion 1 afterwards
    with pytest.raises(NodeExistsError):
        zk.create(base + "/s", sequence=True)
    # ... and the failure did not consume the number
    assert zk.exists(base).cversion == 1


def test_ephemeral_sequential(zk, zk2, base):
    p = zk.create(base + "/es-", b"v", ephemeral=True, sequence=True)
    assert p == base + "/es-0000000000"
    st = zk2.exists(p)
    assert st.ephemeralOwner == zk.client_id[0]
    zk.stop()
    assert zk2.exists(p) is None
    # the deletion of the ephemeral does not advance the counter
    assert zk2.exists(base).cversion == 2
    assert zk2.create(base + "/es-", sequence=True) == base + "/es-0000000001"


def test_ephemeral_owner_and_visibility(zk, zk2, base):
    e = zk.create(base + "/e", b"mine", ephemeral=True)
    st = zk.exists(e)
    assert st.ephemeralOwner == zk.client_id[0]
    assert st.ephemeralOwner != 0
    data, st2 = zk2.get(e)
    assert data == b"mine"
    assert st2.ephemeralOwner == zk.client_id[0]
    assert zk2.client_id[0] != zk.client_id[0]
    persistent = zk.create(base + "/p")
    assert zk.exists(persistent).ephemeralOwner == 0
    # another session may modify and delete it
    zk2.set(e, b"theirs")
    assert zk.get(e)[0] == b"theirs"


def test_ephemeral_vanishes_on_close(zk, zk2, base):
    e1 = zk.create(base + "/e1", ephemeral=True)
    e2 = zk.create(base + "/e2", ephemeral=True)
    zk.create(base + "/keep")
    seen = []
    zk2.exists(e1, watch=seen.append)
    pst = zk2.exists(base)
    zk.stop()  # closeSession: its ephemerals are gone when it returns
    assert zk2.exists(e1) is None
    assert zk2.exists(e2) is None
    assert zk2.exists(base + "/keep") is not None
    pst2 = zk2.exists(base)
    assert pst2.numChildren == 1
    assert pst2.cversion == pst.cversion + 2
    # both deletions share one zxid (the closeSession transaction)
    assert pst2.pzxid > pst.pzxid
    from conftest import wait_until

    wait_until(lambda: seen, timeout=5, msg="DELETED event")
    assert seen[0].type == "DELETED"
    assert seen[0].path == e1


def test_ephemeral_deleted_explicitly(zk, base):
    e = zk.create(base + "/e", ephemeral=True)
    zk.delete(e)
    assert zk.exists(e) is None
    # re-creatable right away
    zk.create(e, ephemeral=True)
    assert zk.exists(e).ephemeralOwner == zk.client_id[0]
