"""Start and control a ZooKeeper-compatible server for the interop suites.

The server under test is chosen by the environment variable ``ZK_TARGET``:

* ``zookeeper`` – Apache ZooKeeper (Debian package ``zookeeper`` /
  ``libzookeeper-java``), started in the foreground with ``java`` directly.
* ``oxkeeper`` – ``$OXKEEPER_BIN serve --config <zoo.cfg>`` (default
  ``<repo>/target/debug/oxkeeper``).

Both get the very same generated ``zoo.cfg``.  Unknown keys in zoo.cfg are
copied by Apache ZooKeeper into Java system properties prefixed with
``zookeeper.`` (QuorumPeerConfig.parseProperties, ``System.setProperty(
"zookeeper." + key, value)``), so ``DigestAuthenticationProvider.superDigest``,
``4lw.commands.whitelist`` and ``admin.enableServer`` are all passed through
the file, for both servers.

This module has no pytest dependency: ``interop/diff/difftest.py`` uses it as a
plain script too.
"""

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

TARGETS = ("zookeeper", "oxkeeper")

# super user of every server started here (digest scheme)
SUPER_USER = "super"
SUPER_PASSWORD = "interop-super-secret"

ZK_JAVA = os.environ.get("ZK_JAVA", shutil.which("java") or "/usr/bin/java")
ZK_JAR_DIR = os.environ.get("ZK_JAR_DIR", "/usr/share/java")
ZKCLI = os.environ.get("ZKCLI", "/usr/share/zookeeper/bin/zkCli.sh")
ZK_JVM_FLAGS = [
    "-Xmx256m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xshare:auto",
]

READY_TIMEOUT = float(os.environ.get("INTEROP_READY_TIMEOUT", "30"))


def target():
    t = os.environ.get("ZK_TARGET", "zookeeper")
    if t not in TARGETS:
        raise RuntimeError("ZK_TARGET must be one of %s, got %r" % (TARGETS, t))
    return t


def digest(user, password):
    """ZooKeeper's digest: base64(sha1("user:password"))."""
    raw = hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()
    return base64.b64encode(raw).decode()


def super_digest():
    return "%s:%s" % (SUPER_USER, digest(SUPER_USER, SUPER_PASSWORD))


def free_port():
    """A port that was free a moment ago (bind port 0 and let the OS pick)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def zk_classpath():
    cp = os.environ.get("ZK_CLASSPATH")
    if cp:
        return cp
    # zookeeper.jar's manifest Class-Path pulls in its dependencies; add an
    # slf4j binding so the server log is written to stderr (our log file).
    jars = [os.path.join(ZK_JAR_DIR, "zookeeper.jar")]
    simple = os.path.join(ZK_JAR_DIR, "slf4j-simple.jar")
    if os.path.exists(simple):
        jars.append(simple)
    return ":".join(jars)


def zookeeper_available():
    """(ok, reason) – can Apache ZooKeeper be started here?"""
    if not (ZK_JAVA and os.path.exists(ZK_JAVA)):
        return False, "no java found (set ZK_JAVA)"
    jar = os.path.join(ZK_JAR_DIR, "zookeeper.jar")
    if not os.environ.get("ZK_CLASSPATH") and not os.path.exists(jar):
        return False, "no %s (apt-get install zookeeper)" % jar
    return True, ""


def oxkeeper_bin():
    return os.environ.get(
        "OXKEEPER_BIN", os.path.join(REPO, "target", "debug", "oxkeeper")
    )


def target_available(name=None):
    name = name or target()
    if name == "zookeeper":
        return zookeeper_available()
    b = oxkeeper_bin()
    if not os.access(b, os.X_OK):
        return False, "no oxkeeper binary at %s (cargo build, or set OXKEEPER_BIN)" % b
    return True, ""


def four_letter(port, cmd, timeout=5.0, host="127.0.0.1"):
    """Send a four-letter word, return the whole reply (str).

    The server closes the connection after the reply, so read until EOF.
    """
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(cmd.encode() if isinstance(cmd, str) else cmd)
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        s.close()


class ServerError(RuntimeError):
    pass


class Server:
    """One server process (Apache ZooKeeper or oxkeeper) with its own
    temp dir, zoo.cfg, dataDir and log file."""

    registry = []  # servers currently running (for failure reports)

    def __init__(self, kind=None, tick_time=2000, max_client_cnxns=0,
                 whitelist="*", extra=None, name=None):
        self.kind = kind or target()
        self.tick_time = tick_time
        self.max_client_cnxns = max_client_cnxns
        self.whitelist = whitelist
        self.extra = dict(extra or {})
        self.name = name or self.kind
        self.dir = tempfile.mkdtemp(prefix="interop-%s-" % self.kind)
        self.data_dir = os.path.join(self.dir, "data")
        self.conf_dir = os.path.join(self.dir, "conf")
        self.log_path = os.path.join(self.dir, "server.log")
        os.makedirs(self.data_dir)
        os.makedirs(self.conf_dir)
        self.cfg_path = os.path.join(self.conf_dir, "zoo.cfg")
        self.port = free_port()
        self.proc = None
        self._logf = None
        self.starts = 0
        self.write_config()

    # -- configuration -------------------------------------------------
    def config(self):
        cfg = {
            "tickTime": str(self.tick_time),
            "dataDir": self.data_dir,
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "maxClientCnxns": str(self.max_client_cnxns),
            "4lw.commands.whitelist": self.whitelist,
            "admin.enableServer": "false",
            "DigestAuthenticationProvider.superDigest": super_digest(),
        }
        cfg.update({k: str(v) for k, v in self.extra.items()})
        return cfg

    def write_config(self):
        with open(self.cfg_path, "w") as f:
            f.write("# generated by interop/zkharness.py\n")
            for k, v in self.config().items():
                f.write("%s=%s\n" % (k, v))

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def command(self):
        if self.kind == "zookeeper":
            return [
                ZK_JAVA,
                *ZK_JVM_FLAGS,
                "-Dzookeeper.log.dir=%s" % self.dir,
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
                "-cp",
                zk_classpath(),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                self.cfg_path,
            ]
        return [oxkeeper_bin(), "serve", "--config", self.cfg_path]

    # -- lifecycle -----------------------------------------------------
    def start(self, timeout=READY_TIMEOUT):
        if self.proc is not None:
            raise ServerError("already running")
        ok, why = target_available(self.kind)
        if not ok:
            raise ServerError(why)
        self._logf = open(self.log_path, "ab")
        self._logf.write(
            ("=== start #%d: %s\n" % (self.starts + 1, " ".join(self.command()))).encode()
        )
        self._logf.flush()
        self.proc = subprocess.Popen(
            self.command(),
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.dir,
            start_new_session=True,
        )
        self.starts += 1
        Server.registry.append(self)
        try:
            self.wait_ready(timeout)
        except Exception:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Poll the `ruok` four-letter word until the answer is `imok`."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(
                    "%s exited with %s before becoming ready\n%s"
                    % (self.name, self.proc.returncode, self.log_tail())
                )
            try:
                last = four_letter(self.port, "ruok", timeout=1.0)
                if last == "imok":
                    # ZooKeeper answers ruok as soon as it accepts
                    # connections, a moment before it serves requests
                    # ("This ZooKeeper instance is not currently serving
                    # requests"); srvr tells, when it is allowed.
                    if not self._srvr_allowed():
                        return
                    last = four_letter(self.port, "srvr", timeout=1.0)
                    if last.startswith("Zookeeper version:"):
                        return
            except OSError as e:
                last = e
            time.sleep(0.05)
        raise ServerError(
            "%s not ready after %.0fs (last ruok: %r)\n%s"
            % (self.name, timeout, last, self.log_tail())
        )

    def _srvr_allowed(self):
        words = [w.strip() for w in self.whitelist.split(",")]
        return "*" in words or "srvr" in words

    def stop(self, sig=signal.SIGKILL):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)  # in case it was stopped
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self in Server.registry:
            Server.registry.remove(self)
        if self._logf:
            self._logf.close()
            self._logf = None

    def restart(self, sig=signal.SIGKILL):
        """Kill (default SIGKILL: no clean shutdown) and start again on the
        same port with the same dataDir."""
        self.stop(sig)
        self.start()
        return self

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def cleanup(self):
        self.stop()
        if not os.environ.get("INTEROP_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- helpers -------------------------------------------------------
    def four(self, cmd, timeout=5.0):
        return four_letter(self.port, cmd, timeout=timeout)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=120):
        text = self.log_text().splitlines()
        return "\n".join(
            ["--- %s log (%s), last %d lines ---" % (self.name, self.log_path, lines)]
            + text[-lines:]
        )

    def __repr__(self):
        return "<Server %s %s pid=%s>" % (self.name, self.hosts, self.pid)
