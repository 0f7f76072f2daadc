#!/usr/bin/env bash
# Run the interoperability suites (real ZooKeeper clients) against
# ZK_TARGET = zookeeper (Apache ZooKeeper, default) or oxkeeper.
#
#   ZK_TARGET=zookeeper bash interop/run.sh
#   ZK_TARGET=oxkeeper  bash interop/run.sh        # uses $OXKEEPER_BIN or target/debug/oxkeeper
#   bash interop/run.sh -k sessions                # extra arguments go to pytest
#
# Installs what is missing: kazoo + pytest (pip); Java + Apache ZooKeeper
# (apt-get, Debian package "zookeeper", only when running as root).
# With CI=true a suite that cannot run (no java, no zookeeper jar, no
# zkCli.sh, no oxkeeper binary) fails instead of being skipped.
# The last line printed is pytest's summary line.
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
cd "$REPO"

export ZK_TARGET="${ZK_TARGET:-zookeeper}"
PY="${PYTHON:-python3}"

log() { echo "interop: $*" >&2; }

# --- Python dependencies -------------------------------------------------
if ! "$PY" -c 'import kazoo, pytest' >/dev/null 2>&1; then
    log "installing kazoo and pytest"
    "$PY" -m pip install -q 'kazoo==2.11.0' pytest >&2 \
        || "$PY" -m pip install -q --break-system-packages 'kazoo==2.11.0' pytest >&2 \
        || log "pip install failed"
fi

# --- Java + Apache ZooKeeper (reference server, zkCli.sh) ----------------
if [ ! -e /usr/share/java/zookeeper.jar ] || [ ! -x /usr/share/zookeeper/bin/zkCli.sh ] \
        || ! command -v java >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Apache ZooKeeper (Debian package zookeeper)"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper; } >&2 \
            || log "apt-get install zookeeper failed"
    else
        log "Apache ZooKeeper / java missing and cannot install (not root or no apt-get)"
    fi
fi

# --- oxkeeper binary -----------------------------------------------------
if [ "$ZK_TARGET" = oxkeeper ] && [ -z "${OXKEEPER_BIN:-}" ] \
        && [ ! -x "$REPO/target/debug/oxkeeper" ] && [ -z "${INTEROP_NO_BUILD:-}" ] \
        && command -v cargo >/dev/null 2>&1; then
    log "building oxkeeper (cargo build --bin oxkeeper)"
    cargo build -q --bin oxkeeper >&2 || log "cargo build failed"
fi

log "ZK_TARGET=$ZK_TARGET"
exec "$PY" -m pytest -q interop "$@"
