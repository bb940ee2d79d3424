"""A wss server and client in one process (standard library only), for tests/integration/live.rs (live_rereads_a_key_log_that_grows_while_capturing).

usage: wss_pair.py PORT CERT KEY KEYLOG TEXT...

The server accepts one TLS connection, answers the upgrade (RFC 6455 4.2.2), echoes each text
frame and answers the client's Close. The client appends its TLS secrets to KEYLOG as it runs
(SSLContext.keylog_filename, NSS format), sends the texts, then Close 1000. Each side prints
what it sent as JSON lines (the test's ground truth).
"""

import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SAY = threading.Lock()


def say(**fields):
    """One JSON line; both threads print, whole lines only."""
    with SAY:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def read_head(s):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        b = s.recv(1)
        if not b:
            raise EOFError("closed in the HTTP head")
        head += b
    return head.decode()


def read_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError("closed in a frame")
        out += b
    return out


def read_frame(s):
    h = read_exact(s, 2)
    n = h[1] & 0x7F
    if n == 126:
        n = int.from_bytes(read_exact(s, 2), "big")
    elif n == 127:
        n = int.from_bytes(read_exact(s, 8), "big")
    mask = read_exact(s, 4) if h[1] & 0x80 else None
    data = read_exact(s, n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return h[0] & 0x0F, data


def frame(opcode, data, masked):
    head = bytes([0x80 | opcode])
    n = len(data)
    bit = 0x80 if masked else 0
    if n < 126:
        head += bytes([bit | n])
    else:
        head += bytes([bit | 126]) + n.to_bytes(2, "big")
    if masked:
        mask = os.urandom(4)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return head + data


def serve(listener, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    conn, _ = listener.accept()
    s = ctx.wrap_socket(conn, server_side=True)
    head = read_head(s)
    k = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
             if line.lower().startswith("sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1((k + GUID).encode()).digest()).decode()
    s.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    while True:
        op, data = read_frame(s)
        if op == 8:
            s.sendall(frame(8, data, masked=False))
            say(side="server", close=data[:2].hex())
            break
        s.sendall(frame(op, data, masked=False))
        say(side="server", echoed=data.decode())
    s.close()


def main():
    port, cert, key, keylog = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    texts = sys.argv[5:]
    listener = socket.create_server(("127.0.0.1", port))
    server = threading.Thread(target=serve, args=(listener, cert, key))
    server.start()
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    ctx.keylog_filename = keylog
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    k = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /over-tls HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {k}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert " 101 " in read_head(s).split("\r\n")[0]
    say(side="client", tls=s.version(), cipher=s.cipher()[0])
    for t in texts:
        s.sendall(frame(1, t.encode(), masked=True))
        op, data = read_frame(s)
        assert op == 1 and data.decode() == t
        say(side="client", sent=t)
    s.sendall(frame(8, (1000).to_bytes(2, "big") + b"bye", masked=True))
    read_frame(s)
    s.close()
    server.join()


if __name__ == "__main__":
    main()
