"""Raw-socket client: a plain HTTP/1.1 keep-alive GET, then a WebSocket upgrade
on the SAME TCP connection, masked frames, and a close handshake. Standard
library only; logs ground truth in the same format as wslog.py.

usage: raw_client.py --host H --port P --log FILE
"""

import argparse
import base64
import hashlib
import os
import socket
import struct
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wslog  # noqa: E402

IMPL = "raw-socket client (python %d.%d stdlib)" % sys.version_info[:2]
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read_until(self, sep):
        while sep not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_n(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self):
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        body = self.read_n(int(headers.get("content-length", "0")))
        return status, headers, body

    def read_frame(self):
        b0, b1 = self.read_n(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.read_n(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.read_n(8))[0]
        assert not b1 & 0x80, "server frames must not be masked"
        return b0 & 0x0F, bool(b0 & 0x80), self.read_n(n)


def frame(opcode, payload, fin=True):
    """A client frame, masked with a fresh random key (RFC 6455 5.3)."""
    key = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    log = wslog.Log(args.log, "client", impl=IMPL)

    s = socket.create_connection((args.host, args.port))
    c = Conn(s)
    local, remote = list(s.getsockname()[:2]), list(s.getpeername()[:2])
    k = wslog.conn_key(*local)
    host = f"{args.host}:{args.port}"

    # 1. plain HTTP request, keep-alive
    s.sendall(f"GET /health HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
              f"Accept: application/json\r\nUser-Agent: wsprobe-recorder\r\n\r\n".encode())
    status, headers, body = c.read_response()
    log.emit("http", k, method="GET", path="/health", status=status,
             body_length=len(body), local=local, remote=remote)

    # 2. upgrade on the same connection
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET /after-health HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
              f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
              f"Sec-WebSocket-Version: 13\r\nUser-Agent: wsprobe-recorder\r\n\r\n".encode())
    status, headers, body = c.read_response()
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    assert status == 101 and headers.get("sec-websocket-accept") == want, (status, headers)
    log.emit("open", k, local=local, remote=remote, path="/after-health", status=status,
             subprotocol=headers.get("sec-websocket-protocol"),
             extensions=headers.get("sec-websocket-extensions"))

    sent = wslog.Assembler(log, k, "msg_sent")
    rcvd = wslog.Assembler(log, k, "msg_recv")
    names = wslog.OPNAMES

    def send(opcode, payload, fin=True):
        s.sendall(frame(opcode, payload, fin))
        sent.frame(names[opcode], fin, payload, rsv1=False)

    def recv():
        op, fin, payload = c.read_frame()
        rcvd.frame(names[op], fin, payload)
        return op, payload

    # 3. frames
    send(1, "hello after /health".encode())
    assert recv() == (1, b"hello after /health")
    data = bytes(range(256)) * 2
    send(2, data)
    assert recv() == (2, data)
    send(1, "two ".encode(), fin=False)  # a 2-fragment text message
    send(0, "fragments".encode())
    assert recv() == (1, b"two fragments")
    send(9, b"raw-ping")
    assert recv() == (10, b"raw-ping")
    # 4. close handshake, then wait for the server's FIN
    send(8, struct.pack(">H", 1000) + "done".encode())
    op, payload = recv()
    assert op == 8
    tail = s.recv(1)
    log.emit("closed", k, sent=sent.last_close, received=rcvd.last_close,
             reported={"code": rcvd.last_close["code"], "reason": rcvd.last_close["reason"]},
             server_fin_seen=(tail == b""))
    s.close()


if __name__ == "__main__":
    main()
