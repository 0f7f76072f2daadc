"""Shared pytest fixtures for the interop suites.

Server under test: ``ZK_TARGET`` = ``zookeeper`` (default) or ``oxkeeper``.

Fixtures
--------
make_server(tick_time=2000, max_client_cnxns=0, whitelist="*", extra=None,
            kind=None)
    Factory: start a fresh server (own temp dir, free port) and return a
    ``zkharness.Server``; stopped and removed at the end of the test.
    The Server has ``.hosts``, ``.port``, ``.pid``, ``.restart()``,
    ``.pause()`` (SIGSTOP), ``.resume()`` (SIGCONT), ``.four("mntr")``.
server
    One server per test module.  A module sets ``ZK_TICK_TIME`` (default
    2000) and optionally ``ZK_SERVER_OPTIONS`` (dict of make_server kwargs).
make_client(hosts=None, **kazoo_kwargs)
    Factory of started KazooClients (default: the module server); all are
    stopped and closed at the end of the test.
zk, zk2
    Two started clients of the module server.
base
    A fresh, unique znode path for the test (created; removed afterwards).

If the target cannot run here (no java / no ZooKeeper jar / no oxkeeper
binary) the tests are skipped – or fail when CI=true.
"""

import os
import sys
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zkharness  # noqa: E402
from zkharness import Server  # noqa: E402

TARGET = zkharness.target()
IS_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_report_header(config):
    ok, why = zkharness.target_available()
    return "interop: ZK_TARGET=%s (%s)" % (TARGET, "available" if ok else why)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "zk_only: test needs Apache ZooKeeper itself (e.g. differential)"
    )


def require(ok_reason):
    """Skip (or fail under CI=true) when something the suite needs is missing."""
    ok, why = ok_reason
    if ok:
        return
    if IS_CI:
        pytest.fail("CI=true and the suite cannot run: %s" % why, pytrace=False)
    pytest.skip(why)


def wait_until(pred, timeout=5.0, interval=0.02, msg="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, msg))
        time.sleep(interval)


def server_version(server):
    """(major, minor, patch) from the `srvr` four-letter word"""
    import re

    m = re.search(r"Zookeeper version: (\d+)\.(\d+)\.(\d+)", server.four("srvr"))
    assert m, "no version in srvr output"
    return tuple(int(x) for x in m.groups())


def exists_checks_read_acl(version):
    """ZOOKEEPER-2590: exists() checks READ on an existing node since 3.8.4
    and 3.9.2 (Debian's 3.8.0 does not)."""
    return (3, 8, 4) <= version < (3, 9, 0) or version >= (3, 9, 2)


# -- failure reports: attach the logs of the running servers --------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and not hasattr(rep, "wasxfail"):
        for srv in list(Server.registry):
            rep.sections.append(("server log: %s %s" % (srv.name, srv.hosts), srv.log_tail()))


# -- servers ---------------------------------------------------------------
def _start_server(**kw):
    kind = kw.get("kind") or TARGET
    require(zkharness.target_available(kind))
    srv = Server(
        kind=kind,
        tick_time=kw.get("tick_time", 2000),
        max_client_cnxns=kw.get("max_client_cnxns", 0),
        whitelist=kw.get("whitelist", "*"),
        extra=kw.get("extra"),
        name=kw.get("name"),
    )
    try:
        srv.start()
    except Exception:
        log = srv.log_tail()
        srv.cleanup()
        pytest.fail("could not start %s:\n%s" % (kind, log), pytrace=False)
    return srv


@pytest.fixture
def make_server():
    started = []

    def factory(**kw):
        srv = _start_server(**kw)
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.cleanup()


@pytest.fixture(scope="module")
def server(request):
    opts = dict(getattr(request.module, "ZK_SERVER_OPTIONS", {}) or {})
    opts.setdefault("tick_time", getattr(request.module, "ZK_TICK_TIME", 2000))
    srv = _start_server(**opts)
    yield srv
    srv.cleanup()


# -- clients ---------------------------------------------------------------
def new_client(hosts, **kw):
    from kazoo.client import KazooClient

    kw.setdefault("timeout", 10.0)
    return KazooClient(hosts=hosts, **kw)


@pytest.fixture
def make_client(request):
    clients = []

    def factory(hosts=None, start=True, start_timeout=10, **kw):
        if hosts is None:
            hosts = request.getfixturevalue("server").hosts
        c = new_client(hosts, **kw)
        clients.append(c)
        if start:
            c.start(timeout=start_timeout)
        return c

    yield factory
    for c in clients:
        try:
            c.stop()
        except Exception:
            pass
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def zk(make_client):
    return make_client()


@pytest.fixture
def zk2(make_client):
    return make_client()


@pytest.fixture
def base(request, server, make_client):
    name = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:60]
    path = "/t_%s_%s" % (name, uuid.uuid4().hex[:6])
    admin = make_client(
        auth_data=[("digest", "%s:%s" % (zkharness.SUPER_USER, zkharness.SUPER_PASSWORD))]
    )
    admin.create(path)
    yield path
    try:
        if admin.connected:
            admin.delete(path, recursive=True)
    except Exception:
        pass
