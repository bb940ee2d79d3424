"""Endpoint-side ground-truth logging for Python `websockets` endpoints.

Every endpoint process appends JSON lines to its own log file. record.py merges
the logs of all endpoints of a capture into NAME.truth.json. Nothing here looks
at the capture: it records what the library was asked to write (frame by frame,
hooked at websockets' Sans-I/O `Protocol.send_frame`, i.e. after the library's
own automatic pongs and close echoes) and what it delivered (hooked at
`Protocol.recv_frame`, i.e. after permessage-deflate decoding).

Event lines (all carry "t" = CLOCK_MONOTONIC ns, "role", "impl", "conn"):
  open      local/remote address, path, status, subprotocol, extensions
  msg_sent  one per message (data messages are assembled from their frames)
  msg_recv  one per message received
  closed    close frame sent / received (parsed from the payloads) and the
            close code/reason the library reports for the connection
  http      a plain HTTP request/response that was not an upgrade
  refused   an upgrade answered with a non-101 status
"""

import hashlib
import json
import time

try:  # the raw-socket client uses this module without websockets installed
    import websockets

    WS_IMPL = "python-websockets " + websockets.__version__
except ImportError:  # pragma: no cover
    WS_IMPL = None

OPNAMES = {0: "cont", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def now():
    return time.monotonic_ns()


def conn_key(addr, port):
    addr = addr.split("%")[0]
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def addr_pair(sockaddr):
    return [sockaddr[0].split("%")[0], sockaddr[1]]


def parse_close(payload):
    """Close payload -> {"code","reason"}; an empty payload has code None."""
    payload = bytes(payload)
    if len(payload) == 0:
        return {"code": None, "reason": None}
    reason = payload[2:].decode("utf-8", errors="replace")
    return {"code": int.from_bytes(payload[:2], "big"), "reason": reason}


class Log:
    def __init__(self, path, role, impl=None):
        self.f = open(path, "a", buffering=1, encoding="utf-8")
        self.role = role
        self.impl = impl or WS_IMPL

    def emit(self, ev, conn=None, **kw):
        rec = {"ev": ev, "t": kw.pop("t", None) or now(), "role": self.role,
               "impl": self.impl, "conn": conn}
        rec.update(kw)
        self.f.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.f.flush()


def describe(opcode, data):
    data = bytes(data)
    d = {"opcode": opcode, "length": len(data),
         "sha256": hashlib.sha256(data).hexdigest()}
    if opcode == "text":
        d["text"] = data.decode("utf-8", errors="replace")[:64]
    if opcode in ("ping", "pong", "close"):
        d["payload_hex"] = data.hex()
    return d


class Assembler:
    """Turns a sequence of frames into messages (control frames pass through)."""

    def __init__(self, log, conn, ev):
        self.log, self.conn, self.ev = log, conn, ev
        self.seq = 0
        self.cur = None
        self.last_close = None

    def frame(self, opcode, fin, data, rsv1=None):
        seq = self.seq
        self.seq += 1
        data = bytes(data)
        t = now()
        if opcode in ("text", "binary"):
            self.cur = {"opcode": opcode, "chunks": [data], "seqs": [seq],
                        "rsv1": rsv1, "t": t}
        elif opcode == "cont":
            if self.cur is None:
                return
            self.cur["chunks"].append(data)
            self.cur["seqs"].append(seq)
        else:
            if opcode == "close":
                self.last_close = parse_close(data)
            self.log.emit(self.ev, self.conn, t=t, frame_seq=[seq],
                          compressed=rsv1, **describe(opcode, data))
            return
        if fin:
            cur, self.cur = self.cur, None
            self.log.emit(self.ev, self.conn, t=cur["t"], frame_seq=cur["seqs"],
                          compressed=cur["rsv1"],
                          **describe(cur["opcode"], b"".join(cur["chunks"])))


def instrument(connection, log, conn):
    """Hook a websockets (new asyncio API) connection's Sans-I/O protocol."""
    proto = connection.protocol
    sent = Assembler(log, conn, "msg_sent")
    rcvd = Assembler(log, conn, "msg_recv")
    orig_send, orig_recv = proto.send_frame, proto.recv_frame

    def send_frame(frame):
        orig_send(frame)
        wire = proto.writes[-1]  # serialized (masked/compressed) frame
        sent.frame(OPNAMES[int(frame.opcode)], frame.fin, frame.data,
                   rsv1=bool(wire[0] & 0x40))

    def recv_frame(frame):
        rcvd.frame(OPNAMES[int(frame.opcode)], frame.fin, frame.data,
                   rsv1=None)
        orig_recv(frame)

    proto.send_frame = send_frame
    proto.recv_frame = recv_frame
    connection._wslog = (log, conn, sent, rcvd)


def log_open(connection, log, conn, path=None):
    resp = connection.response
    log.emit("open", conn,
             local=addr_pair(connection.local_address),
             remote=addr_pair(connection.remote_address),
             path=path if path is not None else connection.request.path,
             status=resp.status_code if resp else None,
             subprotocol=connection.subprotocol,
             extensions=resp.headers.get("Sec-WebSocket-Extensions") if resp else None)


def log_closed(connection):
    log, conn, sent, rcvd = connection._wslog
    log.emit("closed", conn,
             sent=sent.last_close, received=rcvd.last_close,
             reported={"code": connection.close_code,
                       "reason": connection.close_reason})
