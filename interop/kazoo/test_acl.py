"""ACLs and authentication: digest, auth, world, ip, super; set_acls/get_acls."""

import pytest
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    ConnectionClosedError,
    InvalidACLError,
    NoAuthError,
    NoNodeError,
)
from kazoo.protocol.states import KazooState
from kazoo.security import (
    ACL,
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    Id,
    Permissions,
    make_acl,
    make_digest_acl,
    make_digest_acl_credential,
)

import zkharness
from conftest import exists_checks_read_acl, server_version, wait_until

ZK_TICK_TIME = 2000


def test_digest_acl_and_add_auth(zk, make_client, base):
    acl = [make_digest_acl("alice", "pw", all=True), make_acl("world", "anyone", read=True)]
    p = zk.create(base + "/n", b"secret", acl=acl)
    anon = make_client()
    assert anon.get(p)[0] == b"secret"  # world:anyone:r
    with pytest.raises(NoAuthError):
        anon.set(p, b"x")
    with pytest.raises(NoAuthError):
        anon.create(p + "/child")
    with pytest.raises(NoAuthError):
        anon.set_acls(p, OPEN_ACL_UNSAFE)
    # the wrong password is just a different identity
    bob = make_client()
    bob.add_auth("digest", "alice:wrong")
    with pytest.raises(NoAuthError):
        bob.set(p, b"x")
    alice = make_client()
    alice.add_auth("digest", "alice:pw")
    assert alice.set(p, b"new").version == 1
    assert alice.create(p + "/child") == p + "/child"
    alice.delete(p + "/child")
    # auth given at connect time (auth_data) works the same
    alice2 = make_client(auth_data=[("digest", "alice:pw")])
    assert alice2.set(p, b"newer").version == 2


def test_no_read_permission(server, zk, make_client, base):
    p = zk.create(base + "/n", b"x", acl=[make_digest_acl("u", "p", all=True)])
    zk.create(base + "/n2", acl=[make_digest_acl("u", "p", all=True)])
    anon = make_client()
    with pytest.raises(NoAuthError):
        anon.get(p)
    with pytest.raises(NoAuthError):
        anon.get_children(p)
    with pytest.raises(NoAuthError):
        anon.get_acls(p)  # getACL needs READ or ADMIN
    # exists: READ is checked only by servers with ZOOKEEPER-2590
    # (3.8.4+, 3.9.2+), judged by the version the server reports
    if exists_checks_read_acl(server_version(server)):
        with pytest.raises(NoAuthError):
            anon.exists(p)
    else:
        assert anon.exists(p).dataLength == 1
    # a missing node is never ACL-checked
    assert anon.exists(p + "/missing") is None
    # delete needs DELETE on the parent (base is world:anyone:cdrwa)
    anon.delete(base + "/n2")
    assert anon.exists(base + "/n2") is None


def test_permission_bits(zk, make_client, base):
    u = make_client(auth_data=[("digest", "u:p")])
    perms = {
        "r": (Permissions.READ, "read"),
        "w": (Permissions.WRITE, "write"),
        "c": (Permissions.CREATE, "create"),
        "d": (Permissions.DELETE, "delete"),
        "a": (Permissions.ADMIN, "admin"),
    }
    for letter, (bit, _) in perms.items():
        p = zk.create(base + "/" + letter, acl=[ACL(bit, Id("digest", make_digest_acl_credential("u", "p")))])
        checks = {
            "read": lambda: u.get(p),
            "write": lambda: u.set(p, b"1"),
            "create": lambda: u.create(p + "/c"),
            "admin": lambda: u.set_acls(p, [ACL(bit, Id("digest", make_digest_acl_credential("u", "p")))]),
        }
        for name, fn in checks.items():
            allowed = perms[letter][1] == name
            if allowed:
                fn()
            else:
                with pytest.raises(NoAuthError):
                    fn()
    # DELETE permission on the parent lets a child be deleted
    parent = zk.create(base + "/dp", acl=[ACL(Permissions.ALL, Id("world", "anyone"))])
    zk.create(parent + "/c")
    zk.set_acls(parent, [ACL(Permissions.DELETE, Id("world", "anyone"))])
    with pytest.raises(NoAuthError):
        u.create(parent + "/c2")
    u.delete(parent + "/c")


def test_invalid_acls(zk, base):
    bad = [
        [ACL(Permissions.ALL, Id("digest", "nocolon"))],
        [ACL(Permissions.ALL, Id("digest", "a:b:c"))],
        [ACL(Permissions.ALL, Id("ip", "1.2.3"))],
        [ACL(Permissions.ALL, Id("auth", ""))],  # no authenticated identity
        [ACL(Permissions.ALL, Id("ip", "300.1.1.1"))],
        [ACL(Permissions.ALL, Id("ip", "127.0.0.1/33"))],
        [ACL(Permissions.ALL, Id("nosuchscheme", "x"))],
        [ACL(Permissions.ALL, Id("world", "someone"))],
    ]
    for acl in bad:
        with pytest.raises(InvalidACLError):
            zk.create(base + "/n", acl=acl)
    # an empty ACL list is invalid too (kazoo's create() would replace []
    # by its default ACL, so send the request as is)
    from kazoo.protocol.serialization import Create

    a = zk.handler.async_result()
    zk._call(Create(base + "/n", b"", [], 0), a)
    with pytest.raises(InvalidACLError):
        a.get(timeout=5)
    p = zk.create(base + "/ok")
    for acl in bad + [[]]:
        with pytest.raises(InvalidACLError):
            zk.set_acls(p, acl)
    assert zk.get_children(base) == ["ok"]
    assert zk.exists(p).aversion == 0


def test_set_get_acls_with_versions(zk, make_client, base):
    p = zk.create(base + "/n")
    acls, st = zk.get_acls(p)
    assert acls == OPEN_ACL_UNSAFE
    assert acls[0].perms == Permissions.ALL
    assert st.aversion == 0
    with pytest.raises(BadVersionError):
        zk.set_acls(p, READ_ACL_UNSAFE, version=3)
    st1 = zk.set_acls(p, READ_ACL_UNSAFE, version=0)
    assert st1.aversion == 1
    assert st1.version == 0  # data version untouched
    acls, st = zk.get_acls(p)
    assert acls == READ_ACL_UNSAFE
    assert st == st1
    # world:anyone:r only: nobody (but super) may change the ACL again
    with pytest.raises(NoAuthError):
        zk.set_acls(p, OPEN_ACL_UNSAFE)
    with pytest.raises(NoNodeError):
        zk.set_acls(base + "/missing", OPEN_ACL_UNSAFE)
    with pytest.raises(NoNodeError):
        zk.get_acls(base + "/missing")
    # set_acls with -1 ignores the version
    admin = make_client(auth_data=[("digest", "%s:%s" % (zkharness.SUPER_USER, zkharness.SUPER_PASSWORD))])
    assert admin.set_acls(p, OPEN_ACL_UNSAFE, version=-1).aversion == 2


def test_duplicate_acl_entries_are_removed(zk, base):
    acl = [ACL(31, Id("world", "anyone")), ACL(31, Id("world", "anyone")), ACL(1, Id("world", "anyone"))]
    p = zk.create(base + "/n", acl=acl)
    assert zk.get_acls(p)[0] == [ACL(31, Id("world", "anyone")), ACL(1, Id("world", "anyone"))]


def test_auth_scheme(make_client, base):
    c = make_client()
    c.add_auth("digest", "u1:p1")
    c.add_auth("digest", "u2:p2")
    p = c.create(base + "/n", acl=CREATOR_ALL_ACL)
    acls, _ = c.get_acls(p)
    # "auth" expands to every authenticated identity of the session
    assert sorted(acls, key=lambda a: a.id.id) == [
        make_digest_acl("u1", "p1", all=True),
        make_digest_acl("u2", "p2", all=True),
    ]
    other = make_client(auth_data=[("digest", "u2:p2")])
    assert other.get(p)[0] == b""
    anon = make_client()
    with pytest.raises(NoAuthError):
        anon.get(p)


def test_super_digest_user_reads_everything(zk, make_client, base):
    p = zk.create(base + "/n", b"hidden", acl=[make_digest_acl("x", "y", all=True)])
    zk.create(base + "/r", b"ro", acl=READ_ACL_UNSAFE)
    su = make_client(auth_data=[("digest", "%s:%s" % (zkharness.SUPER_USER, zkharness.SUPER_PASSWORD))])
    assert su.get(p)[0] == b"hidden"
    assert su.set(p, b"changed").version == 1
    assert su.get_acls(p)[0] == [make_digest_acl("x", "y", all=True)]
    su.create(base + "/r/child")
    su.delete(base + "/r/child")
    su.set_acls(p, OPEN_ACL_UNSAFE)
    assert zk.get(p)[0] == b"changed"
    # a wrong super password is nothing special
    not_su = make_client(auth_data=[("digest", "%s:nope" % zkharness.SUPER_USER)])
    with pytest.raises(NoAuthError):
        not_su.create(base + "/r/child")


def test_ip_scheme(zk, make_client, base):
    p1 = zk.create(base + "/ip1", b"1", acl=[make_acl("ip", "127.0.0.1", all=True)])
    p2 = zk.create(base + "/ip8", b"2", acl=[make_acl("ip", "127.0.0.0/8", all=True)])
    p3 = zk.create(base + "/ipx", b"3", acl=[make_acl("ip", "10.1.2.3", all=True)])
    other = make_client()
    assert other.get(p1)[0] == b"1"
    assert other.get(p2)[0] == b"2"
    with pytest.raises(NoAuthError):
        other.get(p3)
    assert zk.get_acls(p2)[0] == [make_acl("ip", "127.0.0.0/8", all=True)]


def test_add_auth_unknown_scheme_fails_the_session(make_client, base):
    states = []
    c = make_client()
    c.add_listener(states.append)
    with pytest.raises(AuthFailedError):
        c.add_auth("nosuchscheme", "whatever")
    # ZooKeeper answers AuthFailed and closes the connection; kazoo
    # treats AUTH_FAILED as terminal
    wait_until(lambda: KazooState.LOST in states, timeout=5, msg="LOST")
    with pytest.raises((AuthFailedError, ConnectionClosedError)):
        c.get(base)


def test_add_auth_digest_without_colon_is_accepted(make_client, base):
    c = make_client()
    assert c.add_auth("digest", "nocolon") is True
    assert c.connected
    assert c.exists(base) is not None
