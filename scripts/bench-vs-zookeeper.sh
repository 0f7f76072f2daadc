#!/usr/bin/env bash
# Benchmarks oxkeeper against Apache ZooKeeper 3.8 (Debian's package) on this machine with one
# load generator, `oxkeeper bench`, and writes docs/BENCHMARKS.md.
#
#   bash scripts/bench-vs-zookeeper.sh                   # ~25 minutes on 2 cores, most of it
#                                                        # ZooKeeper expiring 100,000 sessions
#   DURATION=30 SESSIONS=19000 bash scripts/bench-vs-zookeeper.sh
#
# What it does:
#   1. installs Debian's zookeeper (and java) with apt-get when missing, and python3 for the
#      report;
#   2. builds oxkeeper in release mode;
#   3. starts Apache ZooKeeper exactly as Debian's zkServer.sh would (same JVM flags, classpath
#      and JMX settings) and oxkeeper (`target/release/oxkeeper serve --config zoo.cfg`), each
#      with its own fresh dataDir and the same zoo.cfg settings: tickTime, forceSync=yes,
#      maxClientCnxns=0, admin.enableServer=false, 4lw.commands.whitelist=*;
#   4. runs every scenario against both servers alternately (same client, same sizes);
#   5. writes the machine, the exact commands, the figures, the ratios and the issue's targets
#      (met / not met) to docs/BENCHMARKS.md (or $OUT). Raw JSON lines stay in $KEEP_RESULTS
#      when set.
#
# Knobs (environment, defaults in brackets):
#   TICK [2000] ms; DURATION [5] s per load run; WARMUP [2] s; CLIENTS [32]; INFLIGHT [16] (the issue's load);
#   DATA_SIZE [100] bytes; NODES [1000]; CHURN_CLIENTS [16];
#   SESSIONS [15000] idle sessions, CONNECT_CONCURRENCY [10000] connects at once, HOLD [10] s;
#   EXPIRY_SESSIONS [10000], EXPIRY_TIMEOUT [2*TICK] ms;
#   DETACHED_SESSIONS [100000], DETACHED_TIMEOUT [20*TICK] ms (expiry --detach: sessions held
#   without connections, so more than the descriptor limit fit; 0 skips it);
#   WATCHERS [1000], ROUNDS [20];
#   THREADS [1] client runtime threads; ZK_PORT, OX_PORT [free ports picked at start]; OUT;
#   KEEP_RESULTS.
# Session counts are capped to what the file-descriptor hard limit allows (each connection
# needs one descriptor in the client and one in the server).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

TICK=${TICK:-2000}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CLIENTS=${CLIENTS:-32}
INFLIGHT=${INFLIGHT:-16}
DATA_SIZE=${DATA_SIZE:-100}
NODES=${NODES:-1000}
CHURN_CLIENTS=${CHURN_CLIENTS:-16}
SESSIONS=${SESSIONS:-15000}
CONNECT_CONCURRENCY=${CONNECT_CONCURRENCY:-10000}
HOLD=${HOLD:-10}
EXPIRY_SESSIONS=${EXPIRY_SESSIONS:-10000}
EXPIRY_TIMEOUT=${EXPIRY_TIMEOUT:-$((2 * TICK))}
DETACHED_SESSIONS=${DETACHED_SESSIONS:-100000}
DETACHED_TIMEOUT=${DETACHED_TIMEOUT:-$((20 * TICK))}
WATCHERS=${WATCHERS:-1000}
ROUNDS=${ROUNDS:-20}
THREADS=${THREADS:-1}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
ZK_PORT=${ZK_PORT:-$(free_port)}
OX_PORT=${OX_PORT:-$(free_port)}
OUT=${OUT:-$REPO/docs/BENCHMARKS.md}

log() { echo "bench-vs-zookeeper: $*" >&2; }
die() { log "$*"; exit 1; }

# ------------------------------------------------------------------ prerequisites
apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
        || die "need $* but cannot install it (not root or no apt-get)"
    log "installing $* (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >&2
}
if [ ! -e /usr/share/java/zookeeper.jar ] || ! command -v java >/dev/null 2>&1; then
    apt_install zookeeper
fi
command -v python3 >/dev/null 2>&1 || apt_install python3
command -v cargo >/dev/null 2>&1 || die "cargo is needed to build oxkeeper"

log "building oxkeeper (release)"
cargo build --release --quiet --bin oxkeeper
BIN="$REPO/target/release/oxkeeper"

# Every connection costs a descriptor in the client and one in the server.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)
if [ "$FD_LIMIT" != unlimited ]; then
    CAP=$((FD_LIMIT - 1000))
    [ "$SESSIONS" -le "$CAP" ] || { log "SESSIONS $SESSIONS capped to $CAP (fd limit $FD_LIMIT)"; SESSIONS=$CAP; }
    [ "$EXPIRY_SESSIONS" -le "$CAP" ] || { log "EXPIRY_SESSIONS capped to $CAP"; EXPIRY_SESSIONS=$CAP; }
    [ "$CONNECT_CONCURRENCY" -le "$SESSIONS" ] || CONNECT_CONCURRENCY=$SESSIONS
fi

WORK=$(mktemp -d /tmp/bench-vs-zk.XXXXXX)
ZK_PID=""
OX_PID=""
cleanup() {
    for p in $ZK_PID $OX_PID; do
        kill "$p" 2>/dev/null || true
    done
    for p in $ZK_PID $OX_PID; do
        wait "$p" 2>/dev/null || true
    done
    if [ -n "${KEEP_RESULTS:-}" ]; then
        mkdir -p "$KEEP_RESULTS" && cp "$WORK"/results.tsv "$WORK"/*.err "$KEEP_RESULTS"/ 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
four() { timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf %s "$1" >&3 && cat <&3' "$1" "$2" 2>/dev/null; }

write_cfg() { # dir port
    mkdir -p "$1/data" "$1/log"
    cat > "$1/zoo.cfg" <<EOF
tickTime=$TICK
dataDir=$1/data
clientPort=$2
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=yes
admin.enableServer=false
4lw.commands.whitelist=*
EOF
}

wait_ready() { # port pid name
    local i
    for i in $(seq 1 600); do
        kill -0 "$2" 2>/dev/null || die "$3 exited before it was ready (see its log)"
        if four "$1" srvr | grep -q '^Zookeeper version'; then
            return 0
        fi
        sleep 0.1
    done
    die "$3 not ready after 60 s"
}

port_free "$ZK_PORT" || die "port $ZK_PORT is in use (set ZK_PORT)"
port_free "$OX_PORT" || die "port $OX_PORT is in use (set OX_PORT)"

# Apache ZooKeeper, started as Debian's `zkServer.sh start` does (see `zkServer.sh print-cmd`):
# default heap, JMX local only, heap dump on OOM, classpath /etc/zookeeper/conf + zookeeper.jar.
start_servers() { # dir-suffix zk-port ox-port: sets ZK_PID, OX_PID, ZK_PORT, OX_PORT
    local zk="$WORK/zk$1" ox="$WORK/ox$1"
    ZK_PORT=$2 OX_PORT=$3
    write_cfg "$zk" "$ZK_PORT"
    ZK_CMD=(java "-Dzookeeper.log.dir=$zk/log" "-Dzookeeper.log.file=zookeeper.log"
        -XX:+HeapDumpOnOutOfMemoryError "-XX:OnOutOfMemoryError=kill -9 %p"
        -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar
        -Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.local.only=true
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$zk/zoo.cfg")
    (cd "$zk" && exec "${ZK_CMD[@]}" > "$zk/log/stdout.log" 2>&1 < /dev/null) &
    ZK_PID=$!
    write_cfg "$ox" "$OX_PORT"
    OX_CMD=("$BIN" serve --config "$ox/zoo.cfg")
    (cd "$ox" && exec "${OX_CMD[@]}" > "$ox/log/stdout.log" 2>&1 < /dev/null) &
    OX_PID=$!
    log "starting Apache ZooKeeper (pid $ZK_PID, port $ZK_PORT) and oxkeeper (pid $OX_PID, port $OX_PORT)"
    wait_ready "$ZK_PORT" "$ZK_PID" "Apache ZooKeeper"
    wait_ready "$OX_PORT" "$OX_PID" "oxkeeper"
}

stop_servers() {
    kill "$ZK_PID" "$OX_PID" 2>/dev/null || true
    wait "$ZK_PID" "$OX_PID" 2>/dev/null || true
    ZK_PID="" OX_PID=""
}

# ------------------------------------------------------------------ scenarios
LOAD="--clients $CLIENTS --inflight $INFLIGHT --data-size $DATA_SIZE --duration $DURATION --warmup $WARMUP"
SESSIONS_ARGS="sessions --sessions $SESSIONS --concurrency $CONNECT_CONCURRENCY --duration $HOLD --session-timeout 10000"
SCENARIOS=(
    "read-get|read --read-op get --nodes $NODES $LOAD"
    "read-exists|read --read-op exists --nodes $NODES $LOAD"
    "write-set|write --write-op set --nodes $NODES $LOAD"
    "write-persistent|write --write-op persistent $LOAD"
    "write-ephemeral|write --write-op ephemeral $LOAD"
    "write-sequential|write --write-op sequential $LOAD"
    "mixed-90|mixed --read-share 0.9 --nodes $NODES $LOAD"
    "churn|churn --clients $CHURN_CLIENTS --duration $DURATION --warmup $WARMUP"
    "sessions|$SESSIONS_ARGS"
    "expiry|expiry --sessions $EXPIRY_SESSIONS --concurrency 1000 --session-timeout $EXPIRY_TIMEOUT --clients 4"
    "watch|watch --watchers $WATCHERS --rounds $ROUNDS --concurrency 1000 --data-size $DATA_SIZE"
)
if [ "$DETACHED_SESSIONS" -gt 0 ]; then
    SCENARIOS+=("expiry-detached|expiry --detach --sessions $DETACHED_SESSIONS --concurrency 1000 --session-timeout $DETACHED_TIMEOUT --clients 4")
fi
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
: > "$WORK/commands.txt"

run_one() { # label server args...
    local label=$1 server=$2 port pid
    shift 2
    if [ "$server" = zookeeper ]; then port=$ZK_PORT pid=$ZK_PID; else port=$OX_PORT pid=$OX_PID; fi
    local cmd=("$BIN" bench --addr "127.0.0.1:$port" --server-pid "$pid" --threads "$THREADS" --json "$@")
    log "$label on $server: ${cmd[*]}"
    local json
    if json=$("${cmd[@]}" 2> "$WORK/$label.$server.err"); then
        :
    else
        json=$(python3 -c 'import json,sys; print(json.dumps({"failed": sys.argv[1]}))' \
            "$(tail -c 400 "$WORK/$label.$server.err")")
        log "$label on $server failed: $(tail -n 3 "$WORK/$label.$server.err")"
    fi
    printf '%s\t%s\t%s\n' "$label" "$server" "$json" >> "$RESULTS"
}

started=$(date +%s)
# Memory per session on servers that have done nothing else (see "Reading these figures"
# in the report): a pair of servers of their own, stopped before the main pair starts, so
# that neither pair's figures carry memory the other touched.
start_servers -fresh "$(free_port)" "$(free_port)"
printf '%s\t%s\n' sessions-fresh "$SESSIONS_ARGS" >> "$WORK/commands.txt"
# shellcheck disable=SC2086 # the argument string is split on purpose
run_one sessions-fresh zookeeper $SESSIONS_ARGS
# shellcheck disable=SC2086
run_one sessions-fresh oxkeeper $SESSIONS_ARGS
stop_servers

start_servers "" "$ZK_PORT" "$OX_PORT"
ZK_VERSION=$(four "$ZK_PORT" srvr | sed -n 's/^Zookeeper version: //p' | cut -d, -f1 | sed 's/-[$]{mvngit.commit.id}//')
OX_VERSION=$(four "$OX_PORT" srvr | sed -n 's/^Zookeeper version: //p' | cut -d, -f1)
i=0
for entry in "${SCENARIOS[@]}"; do
    label=${entry%%|*}
    args=${entry#*|}
    printf '%s\t%s\n' "$label" "$args" >> "$WORK/commands.txt"
    # shellcheck disable=SC2086 # the argument strings are split on purpose
    if [ $((i % 2)) = 0 ]; then
        run_one "$label" zookeeper $args
        run_one "$label" oxkeeper $args
    else
        run_one "$label" oxkeeper $args
        run_one "$label" zookeeper $args
    fi
    i=$((i + 1))
    kill -0 "$ZK_PID" 2>/dev/null || die "Apache ZooKeeper died during $label"
    kill -0 "$OX_PID" 2>/dev/null || die "oxkeeper died during $label"
done
elapsed=$(($(date +%s) - started))

# Did oxkeeper write a transaction log (durability) during the write runs?
OX_TXNLOG=no
if compgen -G "$WORK/ox/data/version-2/log.*" >/dev/null; then OX_TXNLOG=yes; fi
ZK_TXNLOG=no
if compgen -G "$WORK/zk/data/version-2/log.*" >/dev/null; then ZK_TXNLOG=yes; fi

# ------------------------------------------------------------------ report
cat > "$WORK/json-doc.md" <<'EOF_JSON'
## JSON output

`oxkeeper bench --json` prints exactly one JSON line per run on stdout (nothing else; progress
and errors go to stderr, and a progress bar is drawn only when stderr is a terminal). A run that
cannot start (no server at the address, bad arguments) prints one line on stderr naming the
address and the cause, and exits with status 1. Fields present in every run:

| field | meaning |
|---|---|
| `scenario` | `sessions`, `read`, `write`, `mixed`, `expiry`, `churn` or `watch` |
| `addr` | the `--addr` given |
| `server_pid` | `--server-pid`, or null |
| `config` | the options in force: `clients`, `inflight`, `data_size`, `duration_s`, `ops_limit` (`--ops` or null), `warmup_s`, `session_timeout_ms` (asked for), `sessions`, `concurrency`, `nodes`, `read_op`, `write_op`, `read_share`, `watchers`, `rounds`, `threads` |
| `ops` | operations measured: requests completed after the warm-up (read, write, mixed), sessions opened (sessions), open/close cycles (churn), ephemerals seen deleted (expiry), notifications received (watch) |
| `errors` | failed operations: error replies, failed connects, lost connections, missing notifications or deletions; `first_error` is the first one's text (or null) |
| `elapsed_s` | the measured time: from the end of the warm-up to the last measured completion (read, write, mixed, churn); the opening phase (sessions); from the cut to the last deletion (expiry); the sum of the rounds' write-to-last-notification times (watch) |
| `throughput` | `ops / elapsed_s` |
| `latency_us` | HdrHistogram summary in microseconds: `count`, `min`, `mean`, `p50`, `p90`, `p99`, `p999`, `max`. Per request (read, write, mixed); connect + handshake (sessions, churn); each session's last contact to its ephemeral's deletion (expiry); the write being sent to each notification (watch) |
| `server_cpu_s` | server CPU (user + system, all threads, from `/proc/PID/stat`) during the measured part; null without `--server-pid` |
| `server_cpu_us_per_op` | `server_cpu_s` per op in microseconds |
| `server_rss_before_kib`, `server_rss_after_kib` | the server's VmRSS (`/proc/PID/status`) before and after the measured part (sessions: after the hold) |
| `server_rss_per_session_bytes` | sessions only: RSS growth from before opening to the end of the hold, per session opened |
| `negotiated_timeout_ms` | the session timeout the server granted |
| `<scenario>` | an object named after the scenario, below |

Scenario objects:

- `read`: `nodes` (prepared nodes), `read_op` (`get`, `exists` or `both`).
- `write`: `nodes`, `write_op` (`set`; or `persistent`, `ephemeral`, `sequential`: create/delete
  cycles, each create and each delete counted as one op).
- `mixed`: `nodes`, `read_op`, `read_share`, `reads`, `writes`, `read_latency_us`,
  `write_latency_us`.
- `sessions`: `sessions` (asked for), `concurrency`, `opened`, `open_s`, `hold_s`, `pings`
  (automatic pings answered while holding), `ping_latency_us`, `closed`, `close_s`, `close_rate`
  (closes/s), `close_latency_us`, `server_cpu_us_per_close`, `server_cpu_percent_hold` (server
  CPU while the sessions sat idle, as % of one core), `rss_after_open_kib`, `rss_after_hold_kib`.
- `churn`: `close_latency_us` (closeSession round trip), `cycle_latency_us` (open + close).
- `expiry`: `sessions`, `detached` (`--detach`: sessions held without connections, resumed
  once at the cut), `expired`, `missing` (not deleted within 2 × timeout + 2 × tick + 10 s of
  the cut), `early` (deleted sooner than the timeout after the session's last contact),
  `timeout_ms`, `tick_ms` (`--tick` or the `conf` four-letter word; null if neither), `setup_s`,
  `cut_s` (time for every session's last contact: a ping before its socket was dropped, or
  with `--detach` a resume handshake), `delay_from_contact_ms` and `delay_from_cut_ms`
  (summaries in ms), `overshoot_ms` and `overshoot_max_ms` (delay beyond the timeout, which
  ZooKeeper's rounding of deadlines up to a tick makes up to one tick plus the work),
  `spread_ms` (first to last deletion), `buckets` and `bucket_sizes` (deletions grouped into the
  server's expiry buckets: a gap of half a tick starts a new one), `bucket_spread_max_ms` (the
  longest first-to-last deletion within one bucket: how long after its deadline the slowest
  bucket finished), `within_one_tick` (no early, none missing, every bucket finished within one
  tick; null without a tick), `others_ops` and `others_latency_us` (the `--clients` background
  sessions sending getData every `--other-interval-ms`, for the requests sent after the cut, so
  while the sessions expire), `others_latency_all_us` (all their requests, the cut included).
- `watch`: `watchers`, `rounds`, `notifications`, `lost_watchers`, `round_ms` (write to the last
  notification of each round), `write_latency_us` (the setData itself), `busy_s`.
EOF_JSON
export REPO RESULTS COMMANDS="$WORK/commands.txt" OUT TICK DURATION WARMUP THREADS elapsed
export ZK_VERSION OX_VERSION OX_TXNLOG ZK_TXNLOG FD_LIMIT SESSIONS EXPIRY_SESSIONS DETACHED_SESSIONS
export ZK_CMD_TEXT="${ZK_CMD[*]}" OX_CMD_TEXT="${OX_CMD[*]}"
export ZOO_CFG_TEXT
ZOO_CFG_TEXT=$(sed "s#$WORK/zk#\$WORK/zk#" "$WORK/zk/zoo.cfg")
export GIT_REV
GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD 2>/dev/null; then GIT_REV="$GIT_REV (with uncommitted changes)"; fi
python3 - "$WORK" <<'PY'
import json, os, platform, subprocess, sys

work = sys.argv[1]
env = os.environ
results = {}
order = []
for line in open(env["RESULTS"]):
    label, server, js = line.rstrip("\n").split("\t", 2)
    if label not in results:
        order.append(label)
        results[label] = {}
    results[label][server] = json.loads(js)
commands = [l.rstrip("\n").split("\t", 1) for l in open(env["COMMANDS"])]


def cpuinfo():
    model = "unknown"
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            model = l.split(":", 1)[1].strip()
            break
    mem = "unknown"
    for l in open("/proc/meminfo"):
        if l.startswith("MemTotal"):
            mem = "%.1f GiB" % (int(l.split()[1]) / 1048576)
            break
    return model, mem


def get(d, path, default=None):
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d or d[k] is None:
            return default
        d = d[k]
    return d


def fmt(x, digits=0):
    if x is None:
        return "–"
    if isinstance(x, float) and digits == 0 and abs(x) < 100:
        digits = 1 if abs(x) >= 10 else 2
    return f"{x:,.{digits}f}"


def ratio(ox, zk):
    if ox is None or zk is None or zk == 0:
        return None
    return ox / zk


def fr(r):
    return "–" if r is None else f"{r:.2f}"


model, mem = cpuinfo()
nproc = os.cpu_count()
java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
java = java[0] if java else "unknown"
out = []
w = out.append
w("# Benchmarks: oxkeeper vs Apache ZooKeeper")
w("")
w("Generated by `scripts/bench-vs-zookeeper.sh` (run it again to regenerate this file). Both "
  "servers ran on the same machine, one after the other for every scenario (alternating which "
  "goes first), driven by the same load generator, `oxkeeper bench`, with the same sizes. "
  "All figures come from the JSON lines the bench printed (see \"JSON output\" below).")
w("")
w("## Machine")
w("")
w(f"- CPUs: {nproc} × {model}")
w(f"- Memory: {mem}")
w(f"- Kernel: {platform.release()}; file-descriptor limit: {env['FD_LIMIT']}")
w(f"- Apache ZooKeeper {env['ZK_VERSION']} (Debian package), {java}")
w(f"- oxkeeper {env['OX_VERSION']}, git {env['GIT_REV']}, release build")
w(f"- The client: `oxkeeper bench` with {env['THREADS']} runtime thread(s), on the same cores")
w(f"- Whole run: {env['elapsed']} s")
w("")
w("## Servers and commands")
w("")
w("Both servers read the same zoo.cfg settings (each with its own fresh dataDir and port):")
w("")
w("```")
w(env["ZOO_CFG_TEXT"])
w("```")
w("")
w("Apache ZooKeeper, started as Debian's `zkServer.sh start` does (its `print-cmd`): default "
  "JVM heap, JMX local only, the heap-dump flags, Debian's classpath (no SLF4J binding, so it "
  "logs nothing):")
w("")
w("```")
w(env["ZK_CMD_TEXT"].replace(work, "$WORK"))
w("```")
w("")
w("oxkeeper:")
w("")
w("```")
w(env["OX_CMD_TEXT"].replace(work, "$WORK").replace(env["REPO"] + "/", ""))
w("```")
w("")
txn = env["OX_TXNLOG"] == "yes"
w("Durability: ZooKeeper wrote its transaction log with fsync (forceSync=yes)"
  + (" and so did oxkeeper (a transaction log appeared in its dataDir)." if txn else
     "; **oxkeeper wrote no transaction log in this run** (state in memory only), so its "
     "write figures are not yet comparable with ZooKeeper's fsync'd writes."))
w("")
w("Each scenario ran as (`$ADDR` and `$PID` being the server's address and process id):")
w("")
w("```")
for label, args in commands:
    w(f"target/release/oxkeeper bench --addr $ADDR --server-pid $PID --threads {env['THREADS']} --json {args}   # {label}")
w("```")
w("")
w("## Results")
w("")
w("Throughput is operations per second (sessions: sessions opened per second; expiry: "
  "deleted ephemerals per second from the cut; watch: notifications per second of round time). "
  "Latencies are in microseconds (sessions and churn: connect + handshake; expiry: from each "
  "session's last contact to its ephemeral's deletion; watch: from the write to each "
  "notification). Server CPU is user + system time of the server process per operation, from "
  "/proc. The ratio columns are oxkeeper ÷ ZooKeeper: above 1 is better for throughput, below 1 "
  "is better for latency and CPU.")
w("")
w("| scenario | ZK ops/s | ox ops/s | ratio | ZK p50 | ox p50 | ratio | ZK p99 | ox p99 | ratio "
  "| ZK CPU µs/op | ox CPU µs/op | ratio | errors ZK / ox |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for label in order:
    zk = results[label].get("zookeeper", {})
    ox = results[label].get("oxkeeper", {})
    if "failed" in zk or "failed" in ox:
        w(f"| {label} | {'failed' if 'failed' in zk else ''} | {'failed' if 'failed' in ox else ''} "
          "| | | | | | | | | | | |")
        continue
    row = [label]
    for path in ("throughput", "latency_us.p50", "latency_us.p99", "server_cpu_us_per_op"):
        a, b = get(zk, path), get(ox, path)
        row += [fmt(a), fmt(b), fr(ratio(b, a))]
    row.append(f"{get(zk, 'errors', '–')} / {get(ox, 'errors', '–')}")
    w("| " + " | ".join(row) + " |")
w("")
fails = [(l, s, r["failed"]) for l in order for s, r in results[l].items() if "failed" in r]
if fails:
    w("Failed runs:")
    w("")
    for l, s, e in fails:
        w(f"- {l} on {s}: `{e.strip().splitlines()[-1] if e.strip() else 'no output'}`")
    w("")

s = results.get("sessions", {})
zk, ox = s.get("zookeeper", {}), s.get("oxkeeper", {})
if zk and ox and "failed" not in zk and "failed" not in ox:
    w(f"### Idle sessions ({env['SESSIONS']} sessions, pinging every timeout/3)")
    w("")
    w("| figure | ZooKeeper | oxkeeper | ratio |")
    w("|---|---:|---:|---:|")
    for name, path in [
        ("sessions opened", "sessions.opened"),
        ("connect failures", "errors"),
        ("sessions/s while opening", "throughput"),
        ("connect p50 µs", "latency_us.p50"),
        ("connect p99 µs", "latency_us.p99"),
        ("connect max µs", "latency_us.max"),
        ("server RSS per session, bytes", "server_rss_per_session_bytes"),
        ("server RSS before, KiB", "server_rss_before_kib"),
        ("server RSS after holding, KiB", "server_rss_after_kib"),
        ("server CPU % while holding", "sessions.server_cpu_percent_hold"),
        ("ping p99 µs", "sessions.ping_latency_us.p99"),
        ("closes/s", "sessions.close_rate"),
        ("server CPU µs per close", "sessions.server_cpu_us_per_close"),
    ]:
        a, b = get(zk, path), get(ox, path)
        w(f"| {name} | {fmt(a)} | {fmt(b)} | {fr(ratio(b, a))} |")
    f = results.get("sessions-fresh", {})
    fzk, fox = f.get("zookeeper", {}), f.get("oxkeeper", {})
    if fzk and fox and "failed" not in fzk and "failed" not in fox:
        for name, path in [
            ("fresh servers (sessions-fresh): RSS per session, bytes", "server_rss_per_session_bytes"),
            ("fresh servers (sessions-fresh): RSS after holding, KiB", "server_rss_after_kib"),
        ]:
            a, b = get(fzk, path), get(fox, path)
            w(f"| {name} | {fmt(a)} | {fmt(b)} | {fr(ratio(b, a))} |")
    w("")

def expiry_table(label, title):
    s = results.get(label, {})
    zk, ox = s.get("zookeeper", {}), s.get("oxkeeper", {})
    if not zk or not ox or "failed" in zk or "failed" in ox:
        return
    w(title)
    w("")
    w("| figure | ZooKeeper | oxkeeper |")
    w("|---|---:|---:|")
    for name, path in [
        ("negotiated timeout, ms", "expiry.timeout_ms"),
        ("expired / missing", None),
        ("setting up the sessions, s", "expiry.setup_s"),
        ("the cut (every session's last contact), s", "expiry.cut_s"),
        ("delay from last contact: min ms", "expiry.delay_from_contact_ms.min"),
        ("delay from last contact: p50 ms", "expiry.delay_from_contact_ms.p50"),
        ("delay from last contact: max ms", "expiry.delay_from_contact_ms.max"),
        ("beyond the timeout: max ms", "expiry.overshoot_max_ms"),
        ("buckets (sessions in each)", None),
        ("longest bucket, first to last deletion, ms", "expiry.bucket_spread_max_ms"),
        ("within one tick", "expiry.within_one_tick"),
        ("other clients' p99 µs meanwhile", "expiry.others_latency_us.p99"),
        ("server CPU µs per expired session", "server_cpu_us_per_op"),
    ]:
        if name.startswith("expired"):
            a = f"{get(zk, 'expiry.expired')} / {get(zk, 'expiry.missing')}"
            b = f"{get(ox, 'expiry.expired')} / {get(ox, 'expiry.missing')}"
        elif name.startswith("buckets"):
            sizes = lambda r: ", ".join(fmt(x) for x in (get(r, "expiry.bucket_sizes") or []))
            a = f"{get(zk, 'expiry.buckets')} ({sizes(zk)})"
            b = f"{get(ox, 'expiry.buckets')} ({sizes(ox)})"
        else:
            a, b = get(zk, path), get(ox, path)
            a, b = (str(a).lower() if isinstance(a, bool) else fmt(a)), (str(b).lower() if isinstance(b, bool) else fmt(b))
        w(f"| {name} | {a} | {b} |")
    w("")


expiry_table("expiry", f"### Mass expiry ({env['EXPIRY_SESSIONS']} connected sessions cut at once, tickTime {env['TICK']} ms)")
expiry_table("expiry-detached", f"### Mass expiry of {env['DETACHED_SESSIONS']} sessions held without connections (`--detach`), tickTime {env['TICK']} ms")

# ------------------------------------------------------------- targets
def status(ok):
    return "not measured" if ok is None else ("**met**" if ok else "not met")


def both(label):
    r = results.get(label, {})
    zk, ox = r.get("zookeeper"), r.get("oxkeeper")
    if not zk or not ox or "failed" in zk or "failed" in ox:
        return None, None
    return zk, ox


def check(label, path, op, bound):
    zk, ox = both(label)
    if zk is None:
        return None, "–"
    r = ratio(get(ox, path), get(zk, path))
    if r is None:
        return None, "–"
    ok = r >= bound if op == ">=" else r <= bound
    return ok, f"{r:.2f} ({fmt(get(ox, path))} vs {fmt(get(zk, path))})"


targets = []
def add(area, what, res):
    ok, measured = res
    targets.append((area, what, measured, status(ok)))

add("reads (read-get)", "throughput ≥ 2.5×", check("read-get", "throughput", ">=", 2.5))
add("reads (read-get)", "p99 ≤ 1/3", check("read-get", "latency_us.p99", "<=", 1 / 3))
add("reads (read-get)", "CPU/op ≤ 1/5", check("read-get", "server_cpu_us_per_op", "<=", 1 / 5))
def fsynced(res):
    # Without a transaction log on oxkeeper's side the comparison is not like for like.
    ok, measured = res
    if txn or ok is None:
        return res
    return None, measured + " — oxkeeper did not fsync (no transaction log): not comparable yet"
add("writes with fsync (write-set)", "throughput ≥ 2×", fsynced(check("write-set", "throughput", ">=", 2)))
add("writes with fsync (write-set)", "p99 ≤ 1/3", fsynced(check("write-set", "latency_us.p99", "<=", 1 / 3)))
add("writes with fsync (write-set)", "CPU/op ≤ 1/3", fsynced(check("write-set", "server_cpu_us_per_op", "<=", 1 / 3)))
add("session establishment (sessions)", "sessions/s ≥ 5×", check("sessions", "throughput", ">=", 5))
add("churn", "sessions/s ≥ 5×", check("churn", "throughput", ">=", 5))
zk, ox = both("sessions")
conc = get(ox, "config.concurrency", 0) if ox else 0
if ox is None:
    add("session establishment", "10,000 simultaneous connects, zero failures", (None, "–"))
else:
    ok = get(ox, "errors") == 0 and get(ox, "sessions.opened") == get(ox, "config.sessions")
    ok = ok if conc >= 10000 else None
    add("session establishment", "10,000 simultaneous connects, zero failures",
        (ok, f"{get(ox, 'sessions.opened')} opened with {conc} at once, {get(ox, 'errors')} failures "
             f"(ZooKeeper: {get(zk, 'errors')} failures)"))
add("memory", "RSS per idle session ≤ 1/10, fresh servers (sessions-fresh)",
    check("sessions-fresh", "server_rss_per_session_bytes", "<=", 0.1))
add("memory", "RSS per idle session ≤ 1/10, after the load scenarios (sessions)",
    check("sessions", "server_rss_per_session_bytes", "<=", 0.1))
if ox is None:
    add("memory", "100,000 idle pinging sessions", (None, "–"))
else:
    n = get(ox, "sessions.opened", 0)
    ok = (n >= 100000 and get(ox, "errors") == 0) if n >= 100000 else None
    add("memory", "100,000 idle pinging sessions",
        (ok, f"{n} held here (fd hard limit {env['FD_LIMIT']})"))
zk, ox = both("expiry-detached")
if ox is None:
    zk, ox = both("expiry")
what = "100,000 sessions expire at once within one tick, others' p99 < 10 ms"
if ox is None:
    add("expiry", what, (None, "–"))
else:
    n = get(ox, "expiry.expired", 0)
    tick_ok = get(ox, "expiry.within_one_tick")
    p99 = get(ox, "expiry.others_latency_us.p99")
    ok = bool(tick_ok) and p99 is not None and p99 < 10000
    how = "held without connections, " if get(ox, "expiry.detached") else ""
    add("expiry", what,
        (ok if n >= 100000 else None,
         f"{n} sessions ({how}{get(ox, 'expiry.buckets')} buckets): each bucket done within one tick "
         f"{str(tick_ok).lower()} (longest {fmt(get(ox, 'expiry.bucket_spread_max_ms'))} ms), "
         f"others' p99 {fmt(p99)} µs"
         + ("" if n >= 100000 else f" ({'would be met' if ok else 'not met'} at this size)")))

w("## Reading these figures")
w("")
w("- Client and server share the machine's cores; the client is one `oxkeeper bench` process "
  "(one runtime thread unless THREADS says otherwise) whose own CPU is not counted in the "
  "server's CPU per op. On loopback the kernel's TCP work is charged to whichever process "
  "sends, so both sides carry part of it.")
w("- `sessions` opens its sessions as a connect storm (CONNECT_CONCURRENCY at once): connects "
  "beyond a server's listen backlog (Java's default 50 for ZooKeeper; 4096 for oxkeeper, its "
  "clientPortListenBacklog default) have their SYNs dropped and retried by the kernel after "
  "1, 3, 7, 15 s..., which dominates connect latency there; a connect not done within the "
  "client's 30 s counts as a failure. `churn` measures session establishment at a bounded "
  "concurrency instead.")
w("- RSS per session is the growth of the server's resident memory from before opening the "
  "sessions to the end of the hold, divided by the sessions opened. It is measured twice. "
  "`sessions-fresh` runs first, on a pair of servers of its own that have done nothing "
  "else and are stopped afterwards: for ZooKeeper that counts the heap its JVM commits while "
  "taking the sessions, garbage from the handshakes included (its JIT is also cold, so its "
  "sessions/s and failures there are not a fair measure of its rate). `sessions` "
  "runs after the load scenarios, when memory already touched (for ZooKeeper, a heap grown "
  "by the load and not given back) is not counted again: the extra memory the sessions "
  "needed on a server that has been working. For oxkeeper both are the same structures; "
  "for ZooKeeper they differ several-fold, and its figure in the second moves with its "
  "garbage collector from run to run.")
w("- Every connection costs a file descriptor in the client and one in the server, so the "
  "session counts here are bounded by the file-descriptor hard limit shown above.")
w("- Each figure comes from a single run of a few seconds. On a small machine shared with "
  "other work, repeated runs of this script differ by tens of percent, so a ratio close to a "
  "target's bound is not conclusive: rerun (or raise DURATION) before relying on it.")
w("")
w("## The issue's targets")
w("")
w("Ratios are oxkeeper ÷ ZooKeeper from the tables above. \"not measured\" means this run could "
  "not reach the size the target names, or (writes) that oxkeeper did not fsync, so the "
  "comparison is not like for like yet; the measured column still shows the figures.")
w("")
w("| area | target | measured | status |")
w("|---|---|---|---|")
for area, what, measured, st in targets:
    w(f"| {area} | {what} | {measured} | {st} |")
w("")
JSON_DOC = open(os.path.join(work, "json-doc.md")).read() if os.path.exists(os.path.join(work, "json-doc.md")) else ""
w(JSON_DOC.rstrip())
open(env["OUT"], "w").write("\n".join(out).rstrip() + "\n")
print(env["OUT"])
PY
log "wrote $OUT"
