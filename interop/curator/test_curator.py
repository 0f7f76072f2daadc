"""Apache Curator 5.4 recipes (Debian's libcurator-*-java) against the server.

CuratorCheck.java is compiled here with javac (into a temp dir) against the
Debian Curator jars and run once against this module's server; it prints one
`OK <name>` / `FAIL <name>: <why>` line per check, and each expected check is
its own test below:

* LeaderLatch: 3 latches (3 sessions) on one path elect exactly one leader;
  closing the leader hands leadership to exactly one of the others;
* InterProcessMutex: 2 clients x 2 threads increment a znode counter under the
  lock (getData/setData without a version: only the lock prevents lost
  updates), at most one holder at a time; reentrancy (acquire twice, one
  lock node, still held after one release, free after the second);
* DistributedBarrier: waiters on 2 other sessions block until removeBarrier;
* SharedCount: two instances see each other's setCount/trySetCount, stale
  versions are refused (also by the server: setData with that version gives
  BadVersion), and of two concurrent trySetCount on the same version exactly
  one wins;
* CuratorCache (persistent recursive watch via addWatch): initial view, then
  create/change/delete events for descendants at several depths, no extras;
* TTL: create().withTtl(1500).withMode(PERSISTENT_WITH_TTL) is reaped after
  its TTL (not before); PersistentTtlNode keeps its container + TTL child alive
  while running and both are reaped after close;
* containers: create().creatingParentContainersIfNeeded() makes container
  parents (Stat ephemeralOwner 0, as ZooKeeper shows them), kept while they
  have children, reaped bottom-up once the leaf is deleted; a never-used empty
  container is kept (znode.container.maxNeverUsedIntervalMs=0).

Server configuration: TTL nodes need `extendedTypesEnabled=true` and the
container/TTL reaper runs every `znode.container.checkIntervalMs` (500 ms here).
Both keys go into zoo.cfg (oxkeeper reads them there; ZooKeeper turns the
first into the system property zookeeper.extendedTypesEnabled, which is the
one it reads).  ZooKeeper however reads the reaper interval from the system
property `znode.container.checkIntervalMs` *without* the `zookeeper.` prefix
(ZooKeeperServerMain.runFromConfig: Integer.getInteger(
"znode.container.checkIntervalMs", 60000)), so the zoo.cfg key alone would
leave it at 60 s: this module's own `server` fixture (overriding conftest's)
also passes `-Dznode.container.checkIntervalMs=500` to ZooKeeper's JVM.

Classpath: $CURATOR_CLASSPATH if set, else curator-recipes, curator-framework,
curator-client, zookeeper, zookeeper-jute, guava, slf4j-api and slf4j-simple
from $ZK_JAR_DIR (default /usr/share/java; Debian packages
libcurator-recipes-java, libcurator-framework-java).  Without java/javac or
the jars the tests are skipped (they fail with CI=true).
"""

import os

import pytest

import zkharness
from javacheck import compile_java, find_jar, java_available, java_tools, run_java
from conftest import require

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "CuratorCheck.java")

REAP_INTERVAL_MS = 500
SERVER_EXTRA = {
    "extendedTypesEnabled": "true",
    "znode.container.checkIntervalMs": str(REAP_INTERVAL_MS),
}

JVM_FLAGS = [
    "-Xshare:auto",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Xmx128m",
    # client log (warnings only) goes to stderr, shown on failure
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
]
RUN_TIMEOUT = 90  # the program's own watchdog fires after 50 s
MAX_SECONDS = 45  # whole CuratorCheck run (about 15 s on ZooKeeper and oxkeeper)

CHECKS = [
    "leader_latch_single_leader",
    "leader_latch_takeover",
    "mutex_exclusion",
    "mutex_reentrant",
    "barrier",
    "shared_count",
    "curator_cache_initial",
    "curator_cache_events",
    "ttl_node",
    "persistent_ttl_node",
    "container_parents",
]

# jar base names; the first is the one named in the skip reason
CURATOR_JARS = [
    "curator-recipes",
    "curator-framework",
    "curator-client",
    "zookeeper",
    "zookeeper-jute",
    "guava",
    "slf4j-api",
]
OPTIONAL_JARS = ["slf4j-simple"]


# -- java and jars ----------------------------------------------------------
def client_classpath():
    """(classpath, reason-if-missing)"""
    cp = os.environ.get("CURATOR_CLASSPATH")
    if cp:
        return cp, ""
    jars = []
    missing = []
    for name in CURATOR_JARS:
        jar = find_jar(name)
        if jar:
            jars.append(jar)
        else:
            missing.append(name + ".jar")
    if missing:
        return None, (
            "no %s in %s (apt-get install libcurator-recipes-java "
            "libcurator-framework-java zookeeper, or set CURATOR_CLASSPATH)"
            % (", ".join(missing), zkharness.ZK_JAR_DIR)
        )
    jars += [j for j in map(find_jar, OPTIONAL_JARS) if j]
    return ":".join(jars), ""


# -- the server -------------------------------------------------------------
class CuratorServer(zkharness.Server):
    """A zkharness.Server whose ZooKeeper JVM also gets
    -Dznode.container.checkIntervalMs (not settable through zoo.cfg)."""

    def command(self):
        cmd = super().command()
        if self.kind == "zookeeper":
            cmd.insert(1, "-Dznode.container.checkIntervalMs=%d" % REAP_INTERVAL_MS)
        return cmd


@pytest.fixture(scope="module")
def server():
    """this module's server: extended types on, 500 ms container/TTL reaper"""
    require(zkharness.target_available())
    srv = CuratorServer(extra=SERVER_EXTRA)
    try:
        srv.start()
    except Exception:
        log = srv.log_tail()
        srv.cleanup()
        pytest.fail("could not start %s:\n%s" % (srv.kind, log), pytrace=False)
    yield srv
    srv.cleanup()


# -- compile and run --------------------------------------------------------
@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(java, classpath) with CuratorCheck compiled into a temp dir"""
    require(java_available(client_classpath))
    java, javac = java_tools()
    cp, _ = client_classpath()
    return java, compile_java(tmp_path_factory, javac, SOURCE, cp)


@pytest.fixture(scope="module")
def curator_check(compiled, server):
    """run CuratorCheck once against the module's server"""
    java, cp = compiled
    cmd = [java, *JVM_FLAGS, "-cp", cp, "CuratorCheck", server.hosts, str(REAP_INTERVAL_MS)]
    return run_java(cmd, RUN_TIMEOUT, "CuratorCheck", stderr_tail=120)


@pytest.mark.parametrize("name", CHECKS)
def test_curator_check(curator_check, name):
    run = curator_check
    if "OK " + name in run.lines:
        return
    fails = [l for l in run.lines if l.startswith("FAIL %s:" % name)]
    if fails:
        # the message may continue on the following lines (got/expected)
        i = run.lines.index(fails[0])
        why = "\n".join([fails[0]] + [l for l in run.lines[i + 1:i + 4] if l.startswith("  ")])
    else:
        why = "no 'OK %s' line" % name
    pytest.fail("%s\n\n%s" % (why, run.report()), pytrace=False)


def test_curator_check_exit_status(curator_check):
    """every check ran (no FAIL line, no crash) and the run was quick"""
    run = curator_check
    fails = [l for l in run.lines if l.startswith("FAIL ")]
    assert run.rc == 0 and not fails, "%s\n\n%s" % ("\n".join(fails), run.report())
    oks = [l[3:] for l in run.lines if l.startswith("OK ")]
    assert sorted(oks) == sorted(CHECKS), run.report()
    assert run.seconds < MAX_SECONDS, run.report()
