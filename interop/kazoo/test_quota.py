"""Quotas: zkCli.sh setquota/listquota/delquota against the server, the
zookeeper_limits / zookeeper_stats nodes read with kazoo, and QUOTAEXCEEDED
with enforcement on.

Apache ZooKeeper only enforces quotas with the system property
zookeeper.enforceQuota=true; zoo.cfg's `enforceQuota=true` gets there (it
copies unknown keys into zookeeper.* properties), and oxkeeper reads the same
key."""

import subprocess

import pytest
from kazoo.exceptions import MarshallingError, QuotaExceededError

import zkharness
from conftest import require
from zkcli.test_zkcli import CLI_ENV, zkcli_available

ZK_TICK_TIME = 2000
ZK_SERVER_OPTIONS = {"extra": {"enforceQuota": "true"}}

@pytest.fixture
def cli(server):
    """runs a zkCli.sh script (one command a line) against the module server;
    returns (stdout lines, stderr lines) without zkCli's connection chatter"""
    require(zkcli_available())

    def run(*commands):
        script = "\n".join(list(commands) + ["quit"]) + "\n"
        p = subprocess.run(
            [zkharness.ZKCLI, "-server", server.hosts],
            input=script,
            capture_output=True,
            text=True,
            timeout=60,
            env=CLI_ENV,
        )
        assert p.returncode == 0, (p.stdout, p.stderr)
        noise = ("Connecting to", "Welcome to ZooKeeper", "JLine support", "WATCHER::",
                 "WatchedEvent state:")
        out = [l for l in p.stdout.splitlines() if l and not l.startswith(noise)]
        err = [l for l in p.stderr.splitlines() if l and not l.startswith("SLF4J:")]
        return out, err

    return run


def stats_of(zk, path):
    return zk.get("/zookeeper/quota%s/zookeeper_stats" % path)


def limits_of(zk, path):
    return zk.get("/zookeeper/quota%s/zookeeper_limits" % path)[0]


def test_setquota_listquota_and_enforcement(cli, zk, base):
    q = base + "/q"
    zk.create(q, b"12345")
    zk.create(q + "/b", b"xy")

    # zkCli sets one limit per command (-n/-b/-N/-B are exclusive options).
    out, err = cli("setquota -N 4 %s" % q, "setquota -B 100 %s" % q, "listquota %s" % q)
    assert out == [
        "Output quota for %s count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=4" % q,
        "Output stat for %s count=2,bytes=7" % q,
    ]
    assert err == ["absolute path is /zookeeper/quota%s/zookeeper_limits" % q]
    assert limits_of(zk, q) == b"count=-1,bytes=-1=;byteHardLimit=100;countHardLimit=4"

    # The server keeps the stats up to date, rewriting the node in place.
    data, created = stats_of(zk, q)
    assert data == b"count=2,bytes=7"
    zk.create(q + "/c", b"abc")
    assert stats_of(zk, q)[0] == b"count=3,bytes=10"
    zk.set(q + "/c", b"abcdefgh")
    assert stats_of(zk, q)[0] == b"count=3,bytes=15"
    zk.create(q + "/c/d")
    data, st = stats_of(zk, q)
    assert data == b"count=4,bytes=15"
    assert (st.version, st.mzxid, st.czxid) == (0, created.mzxid, created.czxid)
    assert st.dataLength == len(data)

    # Hard limits: 4 nodes, 100 bytes.
    with pytest.raises(QuotaExceededError):
        zk.create(q + "/e")
    with pytest.raises(QuotaExceededError):
        zk.set(q + "/b", b"x" * 100)
    zk.set(q + "/b", b"x" * 87)  # exactly 100 bytes
    assert stats_of(zk, q)[0] == b"count=4,bytes=100"
    zk.delete(q + "/c/d")
    zk.create(q + "/e")
    assert stats_of(zk, q)[0] == b"count=4,bytes=100"

    # A soft count limit below the usage: zkCli warns, the server only logs.
    out, err = cli("setquota -n 2 %s" % q, "delquota -N %s" % q, "listquota %s" % q)
    assert out == [
        "[Warning]: the count quota you create is less than the existing count:4",
        "Output quota for %s count=2,bytes=-1=;byteHardLimit=100;countHardLimit=-1" % q,
        "Output stat for %s count=4,bytes=100" % q,
    ]
    zk.create(q + "/f")
    assert stats_of(zk, q)[0] == b"count=5,bytes=100"
    with pytest.raises(QuotaExceededError):
        zk.create(q + "/g", b"!")

    # delquota without options removes the quota and trims /zookeeper/quota.
    out, err = cli("delquota %s" % q, "listquota %s" % q)
    assert out == []
    assert err == [
        "absolute path is /zookeeper/quota%s/zookeeper_limits" % q,
        "quota for %s does not exist." % q,
    ]
    assert zk.exists("/zookeeper/quota" + base) is None
    zk.create(q + "/g", b"!" * 1000)


def test_stats_from_raw_nodes_multi_and_bad_limits(zk, base):
    """the limits node written directly (what setquota does), nested quotas,
    multi checks against the committed usage, unparseable limits"""
    q = base + "/q"
    zk.create(q, b"1")
    zk.create(q + "/x", b"22")
    zk.create(q + "/x/y", b"333")
    qq = "/zookeeper/quota" + q
    zk.create(qq + "/x/zookeeper_limits", b"count=100", makepath=True)
    zk.create(qq + "/x/zookeeper_stats", b"whatever")
    zk.create(qq + "/zookeeper_limits", b"countHardLimit=5")
    zk.create(qq + "/zookeeper_stats", b"")
    assert stats_of(zk, q)[0] == b"count=3,bytes=6"
    assert stats_of(zk, q + "/x")[0] == b"count=2,bytes=5"
    # Only the innermost quota counts a change.
    zk.create(q + "/x/z", b"4444")
    zk.create(q + "/w", b"55555")
    assert stats_of(zk, q)[0] == b"count=4,bytes=11"
    assert stats_of(zk, q + "/x")[0] == b"count=3,bytes=9"

    # Each op of a multi is checked against the committed usage.
    t = zk.transaction()
    t.create(q + "/m1")
    t.create(q + "/m2")
    assert t.commit() == [q + "/m1", q + "/m2"]
    assert stats_of(zk, q)[0] == b"count=6,bytes=11"
    with pytest.raises(QuotaExceededError):
        zk.create(q + "/m3")

    # Extra keys in the stats text survive the server's updates.
    zk.set(qq + "/zookeeper_stats", b"count=1,bytes=2=;zeta=5;alpha=-3;count=7")
    zk.set(qq + "/zookeeper_limits", b"")
    zk.create(q + "/k", b"abcd")
    assert stats_of(zk, q)[0] == b"count=8,bytes=6=;alpha=-3;zeta=5"

    # Limits ZooKeeper cannot parse fail the whole request.
    zk.set(qq + "/zookeeper_limits", b"garbage")
    with pytest.raises(MarshallingError):
        zk.create(q + "/bad")
    t = zk.transaction()
    t.create(q + "/bad1")
    t.create(q + "/bad2")
    with pytest.raises(MarshallingError):
        t.commit()
    assert zk.exists(q + "/bad1") is None

    # Deleting the limits node ends the quota.
    zk.delete(qq + "/zookeeper_limits")
    zk.create(q + "/free")
    assert stats_of(zk, q)[0] == b"count=8,bytes=6=;alpha=-3;zeta=5"
    zk.delete("/zookeeper/quota" + base, recursive=True)
