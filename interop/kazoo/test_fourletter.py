"""Four-letter words over a plain socket: shapes of the replies (not exact
numbers, except where a number follows from what the test did)."""

import re

ZK_TICK_TIME = 2000


def kv(text, sep):
    out = {}
    for line in text.splitlines():
        if sep in line:
            k, v = line.split(sep, 1)
            out[k.strip()] = v.strip()
    return out


def mntr(server):
    return kv(server.four("mntr"), "\t")


SRVR_RE = re.compile(
    r"Zookeeper version: (?P<version>[^\n]+)\n"
    r"Latency min/avg/max: \d+/[\d.]+/\d+\n"
    r"Received: \d+\n"
    r"Sent: \d+\n"
    r"Connections: (?P<connections>\d+)\n"
    r"Outstanding: \d+\n"
    r"Zxid: 0x[0-9a-f]+\n"
    r"Mode: standalone\n"
    r"Node count: (?P<nodes>\d+)\n$"
)


def test_ruok(server):
    assert server.four("ruok") == "imok"  # no newline


def test_isro(server):
    assert server.four("isro") == "rw"  # no newline


def test_srvr(server, zk):
    out = server.four("srvr")
    m = SRVR_RE.match(out)
    assert m, out
    assert re.match(r"\d+\.\d+\.\d+", m.group("version"))
    assert int(m.group("connections")) >= 1
    assert int(m.group("nodes")) == int(mntr(server)["zk_znode_count"])


def test_stat(server, zk):
    out = server.four("stat")
    head, rest = out.split("Clients:\n", 1)
    assert head.startswith("Zookeeper version: ")
    clients, tail = rest.split("\n\n", 1)
    lines = clients.splitlines()
    assert len(lines) >= 2  # our kazoo client and this very connection
    for line in lines:
        assert re.match(r" /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+\)$", line), line
    assert re.match(
        r"Latency min/avg/max: \d+/[\d.]+/\d+\nReceived: \d+\nSent: \d+\nConnections: \d+\n"
        r"Outstanding: \d+\nZxid: 0x[0-9a-f]+\nMode: standalone\nNode count: \d+\n$",
        tail,
    ), tail


MNTR_KEYS = [
    "zk_version",
    "zk_server_state",
    "zk_num_alive_connections",
    "zk_znode_count",
    "zk_watch_count",
    "zk_ephemerals_count",
    "zk_approximate_data_size",
    "zk_outstanding_requests",
    "zk_avg_latency",
    "zk_max_latency",
    "zk_min_latency",
    "zk_packets_received",
    "zk_packets_sent",
    "zk_open_file_descriptor_count",
    "zk_max_file_descriptor_count",
    "zk_uptime",
    "zk_global_sessions",
    "zk_local_sessions",
]


def test_mntr(server, zk, zk2, base):
    out = server.four("mntr")
    for line in out.splitlines():
        assert re.match(r"zk_[a-z0-9_]+\t\S", line), line
    m = kv(out, "\t")
    for key in MNTR_KEYS:
        assert key in m, key
    assert m["zk_server_state"] == "standalone"
    assert m["zk_version"] == SRVR_RE.match(server.four("srvr")).group("version")
    assert int(m["zk_num_alive_connections"]) >= 2
    assert int(m["zk_outstanding_requests"]) == 0
    for key in MNTR_KEYS[2:]:
        if key not in ("zk_avg_latency",):
            assert re.fullmatch(r"-?\d+", m[key]), (key, m[key])
    assert re.fullmatch(r"\d+(\.\d+)?", m["zk_avg_latency"])


def test_mntr_counts_follow_the_tree(server, zk, zk2, base):
    before = mntr(server)
    zk.create(base + "/abc", b"12345")
    zk.create(base + "/e1", ephemeral=True)
    zk2.create(base + "/e2", b"xy", ephemeral=True)
    zk.get(base + "/abc", watch=lambda e: None)
    zk2.get_children(base, watch=lambda e: None)
    after = mntr(server)
    assert int(after["zk_znode_count"]) - int(before["zk_znode_count"]) == 3
    assert int(after["zk_ephemerals_count"]) - int(before["zk_ephemerals_count"]) == 2
    assert int(after["zk_watch_count"]) - int(before["zk_watch_count"]) == 2
    # approximate data size: path length + data length per node
    grown = int(after["zk_approximate_data_size"]) - int(before["zk_approximate_data_size"])
    assert grown == sum(len(p) + n for p, n in [(base + "/abc", 5), (base + "/e1", 0), (base + "/e2", 2)])


def test_conf(server):
    c = kv(server.four("conf"), "=")
    assert c["clientPort"] == str(server.port)
    assert c["tickTime"] == "2000"
    assert c["maxClientCnxns"] == "0"
    assert c["minSessionTimeout"] == "4000"
    assert c["maxSessionTimeout"] == "40000"
    assert c["dataDir"].startswith(server.data_dir)
    assert "serverId" in c


CONS_FULL = re.compile(
    r" /127\.0\.0\.1:\d+\[1\]\(queued=\d+,recved=\d+,sent=\d+,sid=0x(?P<sid>[0-9a-f]+),"
    r"lop=\w+,est=\d+,to=(?P<to>\d+),lcxid=0x[0-9a-f]+,lzxid=0x[0-9a-f]+,lresp=\d+,"
    r"llat=\d+,minlat=\d+,avglat=\d+,maxlat=\d+\)$"
)


def test_cons_and_crst(server, zk):
    zk.exists("/")
    out = server.four("cons")
    assert out.endswith("\n\n")
    sessions = {}
    for line in out.splitlines():
        if not line:
            continue
        m = CONS_FULL.match(line)
        if m:
            sessions[int(m.group("sid"), 16)] = int(m.group("to"))
        else:  # a connection without a session (this one)
            assert re.match(r" /127\.0\.0\.1:\d+\[0\]\(queued=\d+,recved=\d+,sent=\d+\)$", line), line
    assert sessions[zk.client_id[0]] == 10000
    assert server.four("crst") == "Connection stats reset.\n"
    out = server.four("cons")
    line = [l for l in out.splitlines() if "sid=0x%x" % zk.client_id[0] in l][0]
    # crst resets the per-connection counters: no lcxid field, lop=NA,
    # lzxid=-1 (as unsigned hex), latencies 0
    assert re.fullmatch(
        r" /127\.0\.0\.1:\d+\[1\]\(queued=0,recved=0,sent=0,sid=0x%x,lop=NA,est=\d+,to=10000,"
        r"lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,avglat=0,maxlat=0\)" % zk.client_id[0],
        line,
    ), line


def test_dump(server, zk, base):
    e = zk.create(base + "/eph", ephemeral=True)
    out = server.four("dump")
    sid = "0x%x" % zk.client_id[0]
    assert out.startswith("SessionTracker dump:\n")
    assert re.search(r"Session Sets \(\d+\)/\(\d+\):\n", out)
    assert "ephemeral nodes dump:\n" in out
    assert re.search(r"Sessions with Ephemerals \(\d+\):\n", out)
    assert "%s:\n\t%s\n" % (sid, e) in out
    assert "Connections dump:\n" in out
    assert re.search(r"\tip: /127\.0\.0\.1:\d+ sessionId: %s\n" % sid, out)


def test_envi(server):
    out = server.four("envi")
    lines = out.splitlines()
    assert lines[0] == "Environment:"
    env = kv("\n".join(lines[1:]), "=")
    assert re.match(r"\d+\.\d+\.\d+", env["zookeeper.version"])
    for key in ("host.name", "os.name", "user.name", "user.dir"):
        assert key in env, key


def test_srst(server, zk):
    for _ in range(5):
        zk.exists("/")
    assert server.four("srst") == "Server stats reset.\n"
    m = SRVR_RE.match(server.four("srvr"))
    assert m
    received = int(re.search(r"Received: (\d+)", server.four("srvr")).group(1))
    assert received < 5


def test_watch_words(server, zk, base):
    p = zk.create(base + "/w")
    zk.get(p, watch=lambda e: None)
    zk.exists(base + "/none", watch=lambda e: None)
    sid = "0x%x" % zk.client_id[0]
    wchs = server.four("wchs")
    assert re.fullmatch(r"\d+ connections watching \d+ paths\nTotal watches:\d+\n", wchs), wchs
    wchc = server.four("wchc")
    assert wchc.endswith("\n\n")
    assert re.search(r"(^|\n)%s\n(\t/[^\n]*\n)*\t%s\n" % (sid, re.escape(p)), wchc), wchc
    wchp = server.four("wchp")
    assert "%s\n\t%s\n" % (p, sid) in wchp
    assert "%s/none\n\t%s\n" % (base, sid) in wchp


def test_dirs(server):
    out = server.four("dirs")
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", out), out


def test_unknown_word_closes_the_connection(server):
    # not a four-letter word: read as the length of a request, far over
    # jute.maxbuffer -> the server closes the connection, nothing is sent
    assert server.four("xyzw") == ""


def test_whitelist(make_server):
    srv = make_server(whitelist="ruok,srvr")
    assert srv.four("ruok") == "imok"
    out = srv.four("srvr")
    m = SRVR_RE.match(out)
    assert m, out
    # an empty tree: "/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"
    # and ZooKeeper's extra "" alias of the root: 5
    assert m.group("nodes") == "5"
    for word in ("stat", "mntr", "conf", "cons", "dump", "envi", "wchs", "isro"):
        assert srv.four(word) == "%s is not executed because it is not in the whitelist.\n" % word

