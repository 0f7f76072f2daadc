"""A kazoo client in its own process, for session tests that must lose a
client without a closeSession (the parent SIGKILLs this process: the kernel
closes the TCP connection, the session stays open on the server until it
expires).

usage: session_child.py HOSTS TIMEOUT_S EPHEMERAL_PATH
prints one JSON line {"session_id", "password", "negotiated"} once the
ephemeral node exists, then serves stdin: each line "touch" does one
round trip (exists) and answers "ok".  It never closes its session.
"""

import binascii
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kazoo.client import KazooClient  # noqa: E402

import kazoo_ext  # noqa: E402


def main():
    hosts, timeout, path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    c = KazooClient(hosts=hosts, timeout=timeout)
    kazoo_ext.track_negotiated_timeout(c)
    c.start(timeout=10)
    c.create(path, b"child", ephemeral=True)
    sid, pw = c.client_id
    print(
        json.dumps(
            {
                "session_id": sid,
                "password": binascii.hexlify(pw).decode(),
                "negotiated": c.negotiated_timeouts[-1],
            }
        ),
        flush=True,
    )
    for line in sys.stdin:
        if line.strip() == "touch":
            c.exists("/")
            print("ok", flush=True)
    while True:  # stdin closed: keep the session, wait to be killed
        time.sleep(60)


if __name__ == "__main__":
    main()
