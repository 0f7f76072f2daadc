"""Small additions to kazoo 2.11 for the interop suites.

kazoo 2.11 has no API for getAllChildrenNumber (opcode 104) nor getEphemerals
(opcode 103).  Both are sent here through kazoo's own connection
(``KazooClient._call``) with request classes shaped like kazoo's
(serialize/deserialize, ``type``), so the bytes on the wire come from the
same client code path as every other request.

It also records the session timeout the server negotiated: kazoo keeps only
the requested one in ``client._session_timeout``.
"""

import struct

from kazoo.protocol.serialization import Connect, int_struct, read_string, write_string

_int = struct.Struct("!i")


class GetAllChildrenNumber(object):
    type = 104

    def __init__(self, path):
        self.path = path

    def serialize(self):
        return write_string(self.path)

    @classmethod
    def deserialize(cls, data, offset):
        return _int.unpack_from(data, offset)[0]


class GetEphemerals(object):
    type = 103

    def __init__(self, prefix):
        self.path = prefix

    def serialize(self):
        # kazoo's write_string sends -1 (null) for "" – ZooKeeper treats a
        # null/empty/"/" prefix as "all ephemerals of this session".
        return write_string(self.path)

    @classmethod
    def deserialize(cls, data, offset):
        count = int_struct.unpack_from(data, offset)[0]
        offset += int_struct.size
        out = []
        for _ in range(max(count, 0)):
            s, offset = read_string(data, offset)
            out.append(s)
        return out


def _call(client, request, timeout=10):
    async_result = client.handler.async_result()
    client._call(request, async_result)
    return async_result.get(timeout=timeout)


def get_all_children_number(client, path):
    return _call(client, GetAllChildrenNumber(client.chroot + path if client.chroot else path))


def get_ephemerals(client, prefix="/"):
    return sorted(_call(client, GetEphemerals(prefix)))


def track_negotiated_timeout(client):
    """Install a hook that records every ConnectResponse.timeOut received
    by this client in ``client.negotiated_timeouts`` (list, ms).  Call
    before ``client.start()``."""
    client.negotiated_timeouts = []
    conn = client._connection
    orig = conn._invoke

    def _invoke(timeout, request, xid=None):
        result = orig(timeout, request, xid)
        if isinstance(request, Connect):
            client.negotiated_timeouts.append(result[0].time_out)
        return result

    conn._invoke = _invoke
    return client


def wire_log(client):
    """Record, in the connection thread, the order in which watch events and
    replies arrive on this client's socket: ``client.wire`` gets
    ``("event", type, path)`` and ``("reply", request_class, path)`` tuples
    (with a time.monotonic() stamp appended).  Call before ``start()``."""
    import time

    from kazoo.protocol.states import EVENT_TYPE_MAP
    from kazoo.protocol.serialization import Watch

    client.wire = []
    conn = client._connection
    orig_event = conn._read_watch_event
    orig_reply = conn._read_response

    def _read_watch_event(buffer, offset):
        watch, _ = Watch.deserialize(buffer, offset)
        client.wire.append(
            ("event", EVENT_TYPE_MAP.get(watch.type, watch.type), client.unchroot(watch.path), time.monotonic())
        )
        return orig_event(buffer, offset)

    def _read_response(header, buffer, offset):
        try:
            request = client._pending[0][0]
            entry = ("reply", type(request).__name__, getattr(request, "path", None), time.monotonic())
        except IndexError:
            entry = ("reply", None, None, time.monotonic())
        client.wire.append(entry)
        return orig_reply(header, buffer, offset)

    conn._read_watch_event = _read_watch_event
    conn._read_response = _read_response
    return client
