"""Session semantics with Apache ZooKeeper's own Java client library.

SessionCheck.java is compiled here with javac (into a temp dir) against the
Debian `zookeeper` jars and run once against the module's server
(tickTime=200); it prints one `OK <name>` / `FAIL <name>: <why>` line per
check.  Each expected check is its own test below.

Classpath: $ZK_CLASSPATH if set, else zookeeper.jar, zookeeper-jute.jar,
slf4j-api.jar and slf4j-simple.jar from $ZK_JAR_DIR (default /usr/share/java;
zookeeper.jar's manifest Class-Path names the rest of its dependencies).
Without java/javac or the jar the tests are skipped (they fail with CI=true).

Apache ZooKeeper closes the live connection of a session when someone tries
to resume it, even with a wrong password; oxkeeper leaves it alone, so
`wrong_password_keeps_connection` is only checked for oxkeeper
(SessionCheck --wrong-password-keeps-connection).
"""

import os

import pytest

import zkharness
from javacheck import compile_java, find_jar, java_available, java_tools, run_java
from conftest import TARGET, require

ZK_TICK_TIME = 200
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "SessionCheck.java")
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
RUN_TIMEOUT = 90  # the program's own watchdog fires after 45 s

CHECKS = [
    "connect_ephemeral",
    "negotiated_timeout_min",
    "negotiated_timeout_max",
    "resume_session",
    "wrong_password_expired",
    "wrong_password_keeps_connection",  # oxkeeper only
    "wrong_password_node_survives",
    "closed_session_expired",
    "close_removes_ephemeral",
    "data_watch_before_setdata_returns",
    "data_watch_before_async_reply",
    "child_watch",
]
OXKEEPER_ONLY = {"wrong_password_keeps_connection"}


def expected_checks(target=TARGET):
    return [c for c in CHECKS if target == "oxkeeper" or c not in OXKEEPER_ONLY]


def client_classpath():
    """(classpath, reason-if-missing)"""
    cp = os.environ.get("ZK_CLASSPATH")
    if cp:
        return cp, ""
    zk = find_jar("zookeeper")
    if not zk:
        return None, "no zookeeper.jar in %s (apt-get install zookeeper, or set ZK_CLASSPATH)" % (
            zkharness.ZK_JAR_DIR)
    jars = [zk] + [j for j in map(find_jar, ("zookeeper-jute", "slf4j-api", "slf4j-simple")) if j]
    return ":".join(jars), ""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(java, classpath) with SessionCheck compiled into a temp dir"""
    require(java_available(client_classpath))
    java, javac = java_tools()
    cp, _ = client_classpath()
    return java, compile_java(tmp_path_factory, javac, SOURCE, cp)


@pytest.fixture(scope="module")
def session_check(compiled, server):
    """run SessionCheck once against the module's server"""
    java, cp = compiled
    cmd = [java, *JVM_FLAGS, "-cp", cp, "SessionCheck",
           server.hosts, str(server.tick_time)]
    if TARGET == "oxkeeper":
        cmd.append("--wrong-password-keeps-connection")
    return run_java(cmd, RUN_TIMEOUT, "SessionCheck", stderr_tail=80)


@pytest.mark.parametrize("name", expected_checks())
def test_session_check(session_check, name):
    run = session_check
    if "OK " + name in run.lines:
        return
    fails = [l for l in run.lines if l.startswith("FAIL %s:" % name)]
    why = fails[0] if fails else "no 'OK %s' line" % name
    pytest.fail("%s\n\n%s" % (why, run.report()), pytrace=False)


def test_session_check_exit_status(session_check):
    """every check ran (no FAIL line, no crash) and the run was quick"""
    run = session_check
    fails = [l for l in run.lines if l.startswith("FAIL ")]
    assert run.rc == 0 and not fails, "%s\n\n%s" % ("\n".join(fails), run.report())
    oks = [l[3:] for l in run.lines if l.startswith("OK ")]
    assert sorted(oks) == sorted(expected_checks()), run.report()
    assert run.seconds < 30, run.report()
