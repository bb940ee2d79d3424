"""Python `websockets` endpoints over TLS (wss://) for tls_scenarios.py.

usage: tls_py.py server --port P --cert C --key K --log FILE [--conns N] [--page] [--tls12]
       tls_py.py client --uri wss://... --cafile C --log FILE [--keylog K] [--ciphers ...]...

Besides the wslog message events (what the library was asked to write / delivered), each
endpoint logs its TLS plaintext byte streams as `note` events: for every connection the
SHA-256 and length of all bytes it wrote into TLS and of all bytes TLS delivered to it
(HTTP upgrade included), taken at the asyncio transport, plus the TLS version, cipher and
ALPN that Python's ssl module reports.
"""

import argparse
import asyncio
import hashlib
import http
import os
import ssl
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import wslog  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402
from websockets.asyncio.server import ServerConnection, serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


class Tap:
    def __init__(self):
        self.sent, self.recv = hashlib.sha256(), hashlib.sha256()
        self.sent_n = self.recv_n = 0


class TapTransport:
    """Delegates to the real transport; counts what is written."""

    def __init__(self, inner, tap):
        self._inner, self._tap = inner, tap

    def write(self, data):
        self._tap.sent.update(data)
        self._tap.sent_n += len(data)
        self._inner.write(data)

    def writelines(self, chunks):
        for c in chunks:
            self.write(c)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def tapped(base, role, log_holder):
    class Tapped(base):
        def connection_made(self, transport):
            self._tap = Tap()
            self._ssl = transport.get_extra_info("ssl_object")
            # The client's key is its own address, the server's the peer's (as wslog does).
            name = transport.get_extra_info("sockname" if role == "client" else "peername")
            self._tap_key = wslog.conn_key(*name[:2]) if name else None
            super().connection_made(TapTransport(transport, self._tap))

        def data_received(self, data):
            self._tap.recv.update(data)
            self._tap.recv_n += len(data)
            super().data_received(data)

        def connection_lost(self, exc):
            log = log_holder[0]
            t = self._tap
            s = self._ssl
            log.emit("note", self._tap_key, **{
                f"{role}_plaintext_sent_bytes": t.sent_n,
                f"{role}_plaintext_sent_sha256": t.sent.hexdigest(),
                f"{role}_plaintext_received_bytes": t.recv_n,
                f"{role}_plaintext_received_sha256": t.recv.hexdigest(),
                f"{role}_tls_version": s.version() if s else None,
                f"{role}_tls_cipher": s.cipher()[0] if s else None,
                f"{role}_tls_alpn": s.selected_alpn_protocol() if s else None,
                f"{role}_tls_resumed": s.session_reused if s else None,
            })
            super().connection_lost(exc)

    return Tapped


def det_bytes(seed, n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


async def server(args):
    log = wslog.Log(args.log, "server")
    holder = [log]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if args.page:
        ctx.set_alpn_protocols(["http/1.1"])
    if args.keylog:
        ctx.keylog_filename = args.keylog
    done = asyncio.Event()
    finished = 0

    def finish():
        nonlocal finished
        finished += 1
        if finished >= args.conns:
            done.set()

    def key(connection):
        return wslog.conn_key(*connection.remote_address[:2])

    def process_request(connection, request):
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        if request.path == "/":
            with open(os.path.join(HERE, "chromium_page.html"), encoding="utf-8") as f:
                body = f.read().replace("ws://${location.host}", "wss://${location.host}")
            resp = connection.respond(http.HTTPStatus.OK, body)
            resp.headers["Content-Type"] = "text/html; charset=utf-8"
            status = 200
        else:
            resp = connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
            status = 404
        log.emit("http", key(connection), method="GET", path=request.path, status=status,
                 body_length=len(resp.body), local=wslog.addr_pair(connection.local_address),
                 remote=wslog.addr_pair(connection.remote_address))
        return resp

    def process_response(connection, request, response):
        if response.status_code == 101:
            wslog.instrument(connection, log, key(connection))
        return None

    async def handler(connection):
        wslog.log_open(connection, log, key(connection))
        try:
            async for msg in connection:
                await connection.send(msg)
        except ConnectionClosed:
            pass
        await connection.wait_closed()
        wslog.log_closed(connection)
        finish()

    async with serve(handler, "127.0.0.1", args.port, ssl=ctx, compression="deflate",
                     process_request=process_request, process_response=process_response,
                     create_connection=tapped(ServerConnection, "server", holder),
                     ping_interval=None, max_size=None):
        print("READY", flush=True)
        await done.wait()
        await asyncio.sleep(0.3)


async def one_client(args, log, holder, i, ciphers):
    ctx = ssl.create_default_context(cafile=args.cafile)
    if args.tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if ciphers:
        ctx.set_ciphers(ciphers)
    if args.keylog:
        ctx.keylog_filename = args.keylog
    ctx.set_alpn_protocols(["http/1.1"])
    path = f"/conn/{i}"
    ws = await connect(args.uri.rstrip("/") + path, ssl=ctx, compression="deflate" if i % 2 == 0 else None,
                       create_connection=tapped(ClientConnection, "client", holder),
                       ping_interval=None, max_size=None)
    k = wslog.conn_key(*ws.local_address[:2])
    wslog.instrument(ws, log, k)
    wslog.log_open(ws, log, k, path=path)
    for msg in ["hello over TLS", '{"op":"subscribe","channel":"ticker"}', "héllo wörld ✓ — 日本語 🚀",
                det_bytes(f"tls-{i}", args.big), "tick " * 500, b"", "last"]:
        await ws.send(msg)
        got = await ws.recv()
        assert got == msg, "echo mismatch"
    pong = await ws.ping(b"tls-ping")
    await pong
    await ws.close(1000, "bye")
    wslog.log_closed(ws)


async def client(args):
    log = wslog.Log(args.log, "client")
    holder = [log]
    ciphers = args.ciphers or [None]
    for i, c in enumerate(ciphers):
        await one_client(args, log, holder, i, c)
        await asyncio.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("--port", type=int)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--cafile")
    ap.add_argument("--uri")
    ap.add_argument("--log", required=True)
    ap.add_argument("--keylog")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--tls12", action="store_true")
    ap.add_argument("--page", action="store_true")
    ap.add_argument("--big", type=int, default=70000, help="size of the large binary message")
    ap.add_argument("--ciphers", action="append", help="one client connection per value (OpenSSL cipher string)")
    args = ap.parse_args()
    asyncio.run(server(args) if args.mode == "server" else client(args))


if __name__ == "__main__":
    main()
