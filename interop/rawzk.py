"""Minimal raw ZooKeeper protocol client for the few checks where kazoo
hides what the server did (connection refused at accept time, source
address choice)."""

import socket
import struct


class Closed(Exception):
    """the server closed the connection instead of answering"""


def _recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise Closed("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def connect(port, timeout_ms=10000, session_id=0, passwd=b"\0" * 16,
            source=None, host="127.0.0.1", io_timeout=5.0):
    """Open a TCP connection and do the ConnectRequest handshake.

    Returns (socket, response) with response a dict(protocol_version,
    timeout, session_id, passwd); raises Closed if the server closes the
    connection (or resets it) instead of answering."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(io_timeout)
    try:
        if source:
            s.bind((source, 0))
        s.connect((host, port))
    except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
        # accepted and closed at once (seen as EPIPE from connect() too)
        s.close()
        raise Closed(str(e))
    except BaseException:
        s.close()
        raise
    try:
        body = (
            struct.pack("!iqiq", 0, 0, timeout_ms, session_id)
            + struct.pack("!i", len(passwd))
            + passwd
            + b"\0"  # readOnly = false
        )
        try:
            s.sendall(struct.pack("!i", len(body)) + body)
            (length,) = struct.unpack("!i", _recv_exact(s, 4))
            data = _recv_exact(s, length)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
            # closed by the server right after accept
            raise Closed(str(e))
        proto, timeout, sid = struct.unpack_from("!iiq", data, 0)
        (plen,) = struct.unpack_from("!i", data, 16)
        pw = data[20:20 + plen]
        return s, {"protocol_version": proto, "timeout": timeout, "session_id": sid, "passwd": pw}
    except BaseException:
        s.close()
        raise


def close_session(s, xid=1):
    """Send closeSession (opcode -11) and wait for its reply header."""
    body = struct.pack("!ii", xid, -11)
    s.sendall(struct.pack("!i", len(body)) + body)
    (length,) = struct.unpack("!i", _recv_exact(s, 4))
    data = _recv_exact(s, length)
    return struct.unpack_from("!iqi", data, 0)  # xid, zxid, err
