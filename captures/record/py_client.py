"""Python `websockets` clients used by record.py (one mode per scenario).

usage: py_client.py MODE --uri URI --log FILE
"""

import argparse
import asyncio
import hashlib
import http.client
import os
import random
import socket
import ssl
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wslog  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


def det_bytes(seed, n):
    """Deterministic pseudo-random bytes (incompressible), same on every run."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


async def opened(uri, log, path, **kw):
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    ws = await connect(uri, **kw)  # kw may carry sock=: an already connected socket
    k = wslog.conn_key(*ws.local_address[:2])
    wslog.instrument(ws, log, k)
    wslog.log_open(ws, log, k, path=path)
    return ws


async def echo(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    want = msg if isinstance(msg, (str, bytes)) else type(msg[0])().join(msg)
    assert got == want, "echo mismatch"


async def demo(args, log):
    ws = await opened(args.uri, log, "/", compression="deflate", subprotocols=["chat"])
    await echo(ws, "hello")
    await echo(ws, '{"op":"subscribe","channel":"ticker","symbols":["ACME","INIT"]}')
    await echo(ws, bytes(range(16)))
    await echo(ws, "héllo wörld ✓ — 日本語 🚀")
    await echo(ws, ["frag-one ", "frag-two ", "frag-three ✓"])  # 3 frames
    await echo(ws, b"\x00" * 1000)
    pong = await ws.ping(b"demo-ping")
    await pong
    await echo(ws, "tick " * 400)
    await echo(ws, det_bytes("demo", 300))
    await echo(ws, "")
    await echo(ws, '{"op":"unsubscribe","channel":"ticker"}')
    await ws.close(1000, "bye")
    wslog.log_closed(ws)


async def killedserver(args, log):
    ws = await opened(args.uri, log, "/")
    await echo(ws, "before the kill 1")
    await echo(ws, det_bytes("killed-server", 200))
    await echo(ws, "before the kill 3 ✓")
    print("EXCHANGED", flush=True)
    try:
        await ws.recv()
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    wslog.log_closed(ws)


async def pingunanswered(args, log):
    ws = await opened(args.uri, log, "/", compression=None)
    await echo(ws, "hello, are you alive?")
    w1 = await ws.ping(b"are-you-there-1")
    await asyncio.sleep(0.5)
    w2 = await ws.ping(b"are-you-there-2")
    await asyncio.sleep(0.5)
    log.emit("note", ws._wslog[1], pong1_received=w1.done(), pong2_received=w2.done())
    await ws.close(1000, "no pong")
    wslog.log_closed(ws)


async def short(args, log):
    ws = await opened(args.uri, log, "/short", compression="deflate")
    await echo(ws, "short exchange over " + args.uri)
    await echo(ws, det_bytes("short", 64))
    await echo(ws, "ünïcödé ✓")
    await ws.close(1000, "done")
    wslog.log_closed(ws)


async def one_of_many(args, log, i):
    rnd = random.Random(i)
    await asyncio.sleep(rnd.uniform(0, 0.2))
    ws = await opened(args.uri.rstrip("/") + f"/c/{i}", log, f"/c/{i}",
                      compression="deflate" if i % 2 == 0 else None)
    for j in range(4):
        size = rnd.choice([0, 1, 5, 125, 126, 300, 1000, 2500, 4000])
        if (i + j) % 2 == 0:
            head = f"conn {i:02d} msg {j} "
            body = ("abcdefghij" * (size // 10 + 1))[: max(0, size - len(head))]
            msg = (head + body)
        else:
            msg = f"conn {i:02d} msg {j}|".encode() + det_bytes(f"c{i}m{j}", size)
        await echo(ws, msg)
        await asyncio.sleep(rnd.uniform(0, 0.05))
    await ws.close(1000, f"done {i}")
    wslog.log_closed(ws)


async def concurrent(args, log):
    await asyncio.gather(*(one_of_many(args, log, i) for i in range(args.n)))


def tls_hello(port, log, server_name):
    """A plain TLS exchange (not WebSocket) with SNI `server_name`."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the recording's own throw-away certificate
    with socket.create_connection(("127.0.0.1", port)) as raw:
        local, remote = raw.getsockname(), raw.getpeername()
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            s.sendall(b"hello over TLS\n")
            s.recv(1024)
            version = s.version()
    log.emit("tls", wslog.conn_key(*local[:2]), local=wslog.addr_pair(local),
             remote=wslog.addr_pair(remote), server_name=server_name, version=version)


def http_get(port, path, log):
    """A plain HTTP request (no upgrade) on a connection of its own."""
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("GET", path, headers={"Connection": "close"})
    local = c.sock.getsockname()
    r = c.getresponse()
    body = r.read()
    log.emit("http", wslog.conn_key(*local[:2]), method="GET", path=path, status=r.status,
             body_length=len(body), local=wslog.addr_pair(local), remote=["127.0.0.1", port])
    c.close()


async def restart(args, log):
    """TLS and plain HTTP first; then a WebSocket whose server is killed (record.py), attempts
    refused while it is down (each logged with its local port), and a new connection once
    the restarted server answers."""
    port = int(args.uri.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    tls_hello(args.tls_port, log, "wsprobe.test")
    http_get(port, "/health", log)
    ws = await opened(args.uri, log, "/live", compression=None)
    await echo(ws, "before the restart")
    await echo(ws, det_bytes("restart", 100))
    print("EXCHANGED", flush=True)
    try:
        await ws.recv()
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    wslog.log_closed(ws)
    refused = 0
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        local = s.getsockname()
        try:
            s.connect(("127.0.0.1", port))
            break
        except ConnectionRefusedError:
            s.close()
            log.emit("connect_refused", wslog.conn_key(*local[:2]), local=wslog.addr_pair(local),
                     remote=["127.0.0.1", port])
            refused += 1
            if refused == 1:
                print("REFUSED", flush=True)
            await asyncio.sleep(0.1)
    ws = await opened(args.uri, log, "/live", compression=None, sock=s)
    await echo(ws, "after the restart")
    await ws.close(1000, "back")
    wslog.log_closed(ws)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("--uri", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--tls-port", type=int)
    args = ap.parse_args()
    log = wslog.Log(args.log, "client")
    asyncio.run(globals()[args.mode](args, log))


if __name__ == "__main__":
    main()
