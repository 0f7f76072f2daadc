"""Apache ZooKeeper's own command-line client (zkCli.sh, the Java client
library) against the server under test.

Commands are batched through stdin into one zkCli process (each JVM start
costs ~0.5-2 s).  zkCli writes results to stdout and errors to stderr; the
order is checked within each stream."""

import os
import re
import shutil
import subprocess

import pytest

import zkharness
from conftest import require

ZK_TICK_TIME = 2000
CLI_ENV = dict(
    os.environ,
    CLIENT_JVMFLAGS="-Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx128m",
)


def zkcli_available():
    if not os.access(zkharness.ZKCLI, os.X_OK):
        return False, "no zkCli.sh at %s (apt-get install zookeeper)" % zkharness.ZKCLI
    if not shutil.which("java") and not os.path.exists(zkharness.ZK_JAVA):
        return False, "no java"
    return True, ""


@pytest.fixture
def cli(server):
    require(zkcli_available())

    def run(script=None, args=(), timeout=60):
        cmd = [zkharness.ZKCLI, "-server", server.hosts, *args]
        p = subprocess.run(
            cmd,
            input=script,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=CLI_ENV,
            stdin=None if script is not None else subprocess.DEVNULL,
        )
        out = [l for l in p.stdout.splitlines()]
        err = [l for l in p.stderr.splitlines() if not l.startswith("SLF4J:")]
        return p.returncode, out, err

    return run


def in_order(lines, expected):
    """every expected item (exact line, or compiled regex) appears in
    `lines` in this order"""
    i = 0
    for exp in expected:
        while i < len(lines):
            line = lines[i]
            i += 1
            if (exp.fullmatch(line) if hasattr(exp, "fullmatch") else line == exp):
                break
        else:
            raise AssertionError("%r not found (in order) in:\n%s" % (exp, "\n".join(lines)))


STAT_LINES = [
    re.compile(r"cZxid = 0x[0-9a-f]+"),
    re.compile(r"ctime = .+"),
    re.compile(r"mZxid = 0x[0-9a-f]+"),
    re.compile(r"mtime = .+"),
    re.compile(r"pZxid = 0x[0-9a-f]+"),
    re.compile(r"cversion = \d+"),
    re.compile(r"dataVersion = \d+"),
    re.compile(r"aclVersion = \d+"),
    re.compile(r"ephemeralOwner = 0x[0-9a-f]+"),
    re.compile(r"dataLength = \d+"),
    re.compile(r"numChildren = \d+"),
]


def stat_block(**fields):
    """the 11 stat lines, some of them with exact values"""
    names = ["cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion",
             "aclVersion", "ephemeralOwner", "dataLength", "numChildren"]
    out = []
    for name, rx in zip(names, STAT_LINES):
        if name in fields:
            out.append("%s = %s" % (name, fields[name]))
        else:
            out.append(rx)
    return out


def test_zkcli_script(cli, server, base):
    b = base
    digest = zkharness.digest("user", "pass")
    script = "\n".join([
        "create %s/a hello" % b,
        "create %s/a again" % b,                 # exists
        "create -e %s/a/eph e" % b,
        "create -s %s/a/seq- s" % b,
        "create -s %s/a/seq- s" % b,
        "ls %s/a" % b,
        "ls -R %s/a" % b,
        "get %s/a" % b,
        "get -s %s/a" % b,
        "set %s/a world" % b,
        "set -v 5 %s/a nope" % b,                # bad version
        "set -v 1 %s/a v2" % b,
        "stat %s/a" % b,
        "get %s/missing" % b,
        "create %s/no/parent x" % b,
        "delete %s/a" % b,                       # not empty
        "delete -v 9 %s/a/seq-0000000001" % b,
        "delete %s/a/seq-0000000001" % b,
        "ls %s/a" % b,
        "create %s/d" % b,
        "create %s/d/e" % b,
        "create %s/d/e/f" % b,
        "deleteall %s/d" % b,
        "ls %s/d" % b,
        "getAcl %s/a" % b,
        "addauth digest user:pass",
        "create %s/secret s digest:user:%s:cdrwa" % (b, digest),
        "getAcl %s/secret" % b,
        "get %s/secret" % b,
        "setAcl %s/a world:anyone:r" % b,
        "getAcl %s/a" % b,
        "set %s/a denied" % b,                   # no WRITE
        "create %s/a/x" % b,                     # no CREATE
        "sync %s/a" % b,
        "stat %s/missing" % b,
        "ls %s/missing" % b,
        "setAcl %s/missing world:anyone:r" % b,
        "get %s/a" % b,
        "quit",
    ]) + "\n"
    rc, out, err = cli(script)
    assert rc == 0, (out, err)
    in_order(out, [
        "[eph, seq-0000000001, seq-0000000002]",
        # ls -R
        "%s/a" % b, "%s/a/eph" % b, "%s/a/seq-0000000001" % b, "%s/a/seq-0000000002" % b,
        "hello",                                  # get
        "hello",                                  # get -s
        *stat_block(cversion=3, dataVersion=0, aclVersion=0, ephemeralOwner="0x0",
                    dataLength=5, numChildren=3),
        *stat_block(cversion=3, dataVersion=2, dataLength=2, numChildren=3),   # stat
        "[eph, seq-0000000002]",
        "'world,'anyone",
        ": cdrwa",
        "'digest,'user:%s" % digest,
        ": cdrwa",
        "s",                                      # get of the secret, authenticated
        "'world,'anyone",
        ": r",
        "Sync is OK",
        "v2",                                     # last get
    ])
    in_order(err, [
        "Created %s/a" % b,
        "Node already exists: %s/a" % b,
        "Created %s/a/eph" % b,
        "Created %s/a/seq-0000000001" % b,
        "Created %s/a/seq-0000000002" % b,
        "version No is not valid : %s/a" % b,
        "Node does not exist: %s/missing" % b,
        "Node does not exist: %s/no/parent" % b,
        "Node not empty: %s/a" % b,
        "version No is not valid : %s/a/seq-0000000001" % b,
        "Created %s/d" % b,
        "Created %s/d/e" % b,
        "Created %s/d/e/f" % b,
        "Node does not exist: %s/d" % b,
        "Created %s/secret" % b,
        "Insufficient permission : %s/a" % b,
        "Insufficient permission : %s/a/x" % b,
        "Node does not exist: %s/missing" % b,
        "Node does not exist: %s/missing" % b,
        "Node does not exist: %s/missing" % b,
    ])
    # the zkCli session was closed by quit: its ephemeral is gone
    from kazoo.client import KazooClient

    k = KazooClient(server.hosts)
    k.start()
    try:
        assert k.exists(base + "/a/eph") is None
        assert sorted(k.get_children(base + "/a")) == ["seq-0000000002"]
        assert k.get(base + "/a")[0] == b"v2"
    finally:
        k.stop()
        k.close()


def test_zkcli_unauthenticated_and_ls_s(cli, zk, base):
    from kazoo.security import make_digest_acl

    zk.create(base + "/secret", b"s", acl=[make_digest_acl("user", "pass", all=True)])
    zk.create(base + "/pub", b"p")
    zk.create(base + "/pub/c1")
    script = "\n".join([
        "get %s/secret" % base,
        "getAcl %s/secret" % base,
        "ls -s %s/pub" % base,
        "get -s %s/pub/c1" % base,
        "quit",
    ]) + "\n"
    rc, out, err = cli(script)
    assert rc == 0
    in_order(err, [
        "Insufficient permission : %s/secret" % base,
        "Insufficient permission : %s/secret" % base,
    ])
    in_order(out, [
        "[c1]",
        *stat_block(cversion=1, numChildren=1, dataLength=1, dataVersion=0),
        "",  # get -s: empty data prints an empty line (null data prints "null")
        *stat_block(cversion=0, numChildren=0, dataLength=0, ephemeralOwner="0x0"),
    ])


def test_zkcli_command_as_arguments(cli, zk, base):
    zk.create(base + "/n", b"from-kazoo")
    rc, out, err = cli(args=["get", base + "/n"])
    assert rc == 0
    assert "from-kazoo" in out
    rc, out, err = cli(args=["create", base + "/m", "from-cli"])
    assert rc == 0
    assert "Created %s/m" % base in err + out
    assert zk.get(base + "/m")[0] == b"from-cli"


def test_zkcli_ephemeral_owner_is_the_cli_session(cli, zk, base):
    # create -e inside zkCli, then look at it from kazoo in the same script
    # run: the node lives exactly as long as the zkCli session
    rc, out, err = cli("create -e %s/e x\nstat %s/e\nquit\n" % (base, base))
    assert rc == 0
    owner = [l for l in out if l.startswith("ephemeralOwner = ")][0]
    assert owner != "ephemeralOwner = 0x0"
    assert zk.exists(base + "/e") is None
