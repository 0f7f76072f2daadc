"""Compiling and running the Java check programs (interop/java, interop/curator) against a
server: the JDK and jars they need, javac into a temp dir, one run with a timeout."""

import glob
import os
import shutil
import subprocess
import time

import pytest

import zkharness


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


def java_available(client_classpath):
    """(ok, reason): a JDK and the jars `client_classpath()` looks for are there"""
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
    """One finished run of a check program: its exit status and output lines."""

    def __init__(self, cmd, proc, seconds, stderr_tail=80):
        self.cmd = cmd
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.lines = proc.stdout.splitlines()
        self.seconds = seconds
        self.stderr_tail = stderr_tail

    def report(self):
        return "command: %s\nexit status %s after %.1f s\n--- stdout ---\n%s\n--- stderr (tail) ---\n%s" % (
            " ".join(self.cmd), self.rc, self.seconds, self.stdout,
            "\n".join(self.stderr.splitlines()[-self.stderr_tail:]))


def compile_java(tmp_path_factory, javac, source, cp):
    """Compiles `source` against `cp` into a temp dir; returns the classpath to run it."""
    out = str(tmp_path_factory.mktemp(os.path.splitext(os.path.basename(source))[0] + "-classes"))
    # -implicit:none: Debian's findbugs-annotations.jar (on zookeeper.jar's manifest
    # Class-Path) ships .java files; do not compile them into `out`
    comp = subprocess.run(
        [javac, "-implicit:none", "-encoding", "UTF-8", "-d", out, "-cp", cp, source],
        capture_output=True, text=True, timeout=120,
    )
    assert comp.returncode == 0, "javac failed:\n%s%s" % (comp.stdout, comp.stderr)
    return out + os.pathsep + cp


def run_java(cmd, timeout, program, stderr_tail=80):
    """Runs a check program once; a run past `timeout` fails the test with its output."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        partial = e.stdout or b""
        if isinstance(partial, bytes):
            partial = partial.decode("utf-8", "replace")
        pytest.fail("%s still running after %d s; its output so far:\n%s"
                    % (program, timeout, partial), pytrace=False)
    return Run(cmd, proc, time.monotonic() - t0, stderr_tail)
