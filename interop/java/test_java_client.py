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

import glob
import os
import shutil
import subprocess
import time

import pytest

import zkharness
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


def java_tools():
    """(java, javac) of the same JDK when possible, else from PATH"""
    java = zkharness.ZK_JAVA
    if not (java and os.path.exists(java)):
        java = shutil.which("java")
    javac = None
    if java:
        sibling = os.path.join(os.path.dirname(os.path.realpath(java)), "javac")
        if os.access(sibling, os.X_OK):
            javac = sibling
    javac = javac or shutil.which("javac")
    return java, javac


def find_jar(name):
    """<dir>/<name>.jar, else the highest <dir>/<name>-<version>.jar"""
    exact = os.path.join(zkharness.ZK_JAR_DIR, name + ".jar")
    if os.path.exists(exact):
        return exact
    versioned = sorted(glob.glob(os.path.join(zkharness.ZK_JAR_DIR, name + "-[0-9]*.jar")))
    return versioned[-1] if versioned else None


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


def java_available():
    java, javac = java_tools()
    if not java:
        return False, "no java (set ZK_JAVA or install a JDK)"
    if not javac:
        return False, "no javac next to %s nor on PATH (install a JDK, e.g. openjdk-17-jdk-headless)" % java
    cp, why = client_classpath()
    if not cp:
        return False, why
    return True, ""


class Run:
    def __init__(self, cmd, proc, seconds):
        self.cmd = cmd
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = proc.stdout.splitlines()
        self.seconds = seconds

    def report(self):
        return "command: %s\nexit status %s after %.1f s\n--- stdout ---\n%s\n--- stderr (tail) ---\n%s" % (
            " ".join(self.cmd), self.rc, self.seconds, self.stdout,
            "\n".join(self.stderr.splitlines()[-80:]))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """(java, classpath) with SessionCheck compiled into a temp dir"""
    require(java_available())
    java, javac = java_tools()
    cp, _ = client_classpath()
    out = str(tmp_path_factory.mktemp("sessioncheck-classes"))
    # -implicit:none: Debian's findbugs-annotations.jar (on zookeeper.jar's
    # manifest Class-Path) ships .java files; do not compile them into `out`
    comp = subprocess.run(
        [javac, "-implicit:none", "-encoding", "UTF-8", "-d", out, "-cp", cp, SOURCE],
        capture_output=True, text=True, timeout=120,
    )
    assert comp.returncode == 0, "javac failed:\n%s%s" % (comp.stdout, comp.stderr)
    return java, out + os.pathsep + cp


@pytest.fixture(scope="module")
def session_check(compiled, server):
    """run SessionCheck once against the module's server"""
    java, cp = compiled
    cmd = [java, *JVM_FLAGS, "-cp", cp, "SessionCheck",
           server.hosts, str(server.tick_time)]
    if TARGET == "oxkeeper":
        cmd.append("--wrong-password-keeps-connection")
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        partial = e.stdout or b""
        if isinstance(partial, bytes):
            partial = partial.decode("utf-8", "replace")
        pytest.fail("SessionCheck still running after %d s; its output so far:\n%s"
                    % (RUN_TIMEOUT, partial), pytrace=False)
    return Run(cmd, proc, time.monotonic() - t0)


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
