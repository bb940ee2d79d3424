"""Python `websockets` clients for the findings scenarios (findings_scenarios.py); several
connections per process (--n), each logged by wslog.

usage: findings_client.py MODE --uri URI --log FILE [--n N] [--stagger S] [...]
       (wss:// URIs: --cafile CERT to trust, --keylog FILE for the NSS key log, --tls-max 1.2
        to stay below TLS 1.3; --first K numbers the connections from K, for a second process)

modes:
  silent     exchange one message, then send nothing until the connection is closed
  pinging    exchange one message, send a ping every --ping-interval s, close 1000 after --stay s
  chatty     send a message every --every s (echoed) until the server closes
  reconnect  chatty; when the connection drops, reconnect (backoff from 0.2 s) and, once back,
             exchange two messages and close 1000
  stuck      exchange one message, answer pings for --answer-for s, then block the event loop
             (time.sleep) for --stuck-for s and exit without closing: a client that hangs
  listen     only receive, until closed

Prints CONNECTED once all --n connections are open (stuck: STUCK <unix time> as it hangs).
"""

import argparse
import asyncio
import os
import random
import ssl
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wslog  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


TLS = None  # the client SSLContext for wss:// URIs (main() sets it)


async def opened(uri, log, path, **kw):
    if uri.startswith("wss://"):
        kw["ssl"] = TLS
    kw.setdefault("ping_interval", None)
    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    ws = await connect(uri.rstrip("/") + path, **kw)
    k = wslog.conn_key(*ws.local_address[:2])
    wslog.instrument(ws, log, k)
    wslog.log_open(ws, log, k, path=path)
    tls = ws.transport.get_extra_info("ssl_object")
    if tls is not None:
        log.emit("note", k, client_tls_version=tls.version(), client_tls_cipher=tls.cipher()[0])
    return ws


async def echo(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    assert got == msg, "echo mismatch"


async def until_closed(ws):
    try:
        while True:
            await ws.recv()
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    wslog.log_closed(ws)


async def chat(ws, i, every):
    j = 0
    try:
        while True:
            await echo(ws, f"client {i} message {j}")
            j += 1
            await asyncio.sleep(every)
    except ConnectionClosed:
        pass
    await ws.wait_closed()
    wslog.log_closed(ws)


async def one(args, log, i, ready):
    await asyncio.sleep(i * args.stagger)
    path = f"/{args.mode}/{i}"
    if args.mode == "pinging":
        ws = await opened(args.uri, log, path, ping_interval=args.ping_interval, ping_timeout=5)
    else:
        ws = await opened(args.uri, log, path)
    ready()
    if args.mode == "silent":
        await echo(ws, f"hello from {i}")
        await until_closed(ws)
    elif args.mode == "pinging":
        await echo(ws, f"hello from {i}")
        await asyncio.sleep(args.stay)
        await ws.close(1000, "done")
        wslog.log_closed(ws)
    elif args.mode == "chatty":
        await chat(ws, i, args.every)
    elif args.mode == "reconnect":
        await chat(ws, i, args.every)
        delay = 0.2
        while True:
            await asyncio.sleep(delay * random.Random(i).uniform(1.0, 1.5))
            try:
                ws = await opened(args.uri, log, path + "/again")
                break
            except OSError:
                delay = min(delay * 1.5, 2.0)
        for j in range(2):
            await echo(ws, f"client {i} is back {j}")
        await ws.close(1000, "done")
        wslog.log_closed(ws)
    elif args.mode == "stuck":
        await echo(ws, f"hello from {i}")
    elif args.mode == "listen":
        await until_closed(ws)


async def run(args, log):
    count = 0

    def ready():
        nonlocal count
        count += 1
        if count == args.n:
            print("CONNECTED", flush=True)

    if args.mode == "stuck":
        await asyncio.gather(*(one(args, log, i, lambda: None) for i in range(args.n)))
        # Answer pings for a while, then hang: the kernel still acknowledges what arrives, but
        # nothing is read, no pong and no Close reply is written.
        await asyncio.sleep(args.answer_for)
        print(f"STUCK {time.time()}", flush=True)
        time.sleep(args.stuck_for)
        os._exit(0)
    await asyncio.gather(*(one(args, log, i, ready) for i in range(args.first, args.first + args.n)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["silent", "pinging", "chatty", "reconnect", "stuck", "listen"])
    ap.add_argument("--uri", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--n", type=int, default=1)
    ap.add_argument("--stagger", type=float, default=0.0)
    ap.add_argument("--ping-interval", type=float, default=0.5)
    ap.add_argument("--stay", type=float, default=3.0)
    ap.add_argument("--every", type=float, default=0.2)
    ap.add_argument("--answer-for", type=float, default=1.2)
    ap.add_argument("--stuck-for", type=float, default=3.0)
    ap.add_argument("--cafile", help="wss://: the server certificate to trust")
    ap.add_argument("--keylog", help="wss://: append the TLS secrets here (NSS key log)")
    ap.add_argument("--tls-max", choices=["1.2", "1.3"], help="wss://: the highest TLS version offered")
    ap.add_argument("--first", type=int, default=0, help="number of the first connection (its path)")
    args = ap.parse_args()
    if args.uri.startswith("wss://"):
        global TLS
        TLS = ssl.create_default_context(cafile=args.cafile)
        if args.keylog:
            TLS.keylog_filename = args.keylog
        if args.tls_max == "1.2":
            TLS.maximum_version = ssl.TLSVersion.TLSv1_2
    log = wslog.Log(args.log, "client")
    asyncio.run(run(args, log))


if __name__ == "__main__":
    main()
