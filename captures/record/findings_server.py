"""Python `websockets` servers for the findings scenarios (findings_scenarios.py): each one is a
real cause of connections ending, logged by the server itself (wslog) as it happens.

usage: findings_server.py MODE --port P --log FILE [--host H] [--conns N] [...]

modes:
  echo       echo every message; logs the X-Client-Port header a proxy adds (which client
             connection a proxied one belongs to)
  heartbeat  echo, with websockets' keepalive: a ping every --ping-interval s, the connection
             failed (Close 1011 "keepalive ping timeout") when no pong comes within --ping-timeout
  shutdown   echo; once --conns connections are open (and --after s passed), a graceful
             shutdown: server.close() sends Close 1001 to every client and waits --close-timeout
  lifetime   echo; every connection is closed with 1000 "max connection age" --lifetime s after
             it opened, whatever its traffic
  push       send a text message to every client every --every s, --count of them (the clients
             only listen)

Prints READY once listening (shutdown: SHUTDOWN <unix time> as it shuts down); exits after
--conns connections have finished (push: never, it is stopped by record.py).
"""

import argparse
import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wslog  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["echo", "heartbeat", "shutdown", "lifetime", "push"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--ping-interval", type=float, default=0.5)
    ap.add_argument("--ping-timeout", type=float, default=1.0)
    ap.add_argument("--close-timeout", type=float, default=1.0)
    ap.add_argument("--after", type=float, default=0.5)
    ap.add_argument("--lifetime", type=float, default=3.0)
    ap.add_argument("--every", type=float, default=0.25)
    ap.add_argument("--count", type=int, default=0, help="push: messages per client (0: no end)")
    args = ap.parse_args()
    asyncio.run(run(args))


async def run(args):
    log = wslog.Log(args.log, "server")
    done = asyncio.Event()
    everyone = asyncio.Event()
    finished = 0
    opened = 0

    def key(connection):
        return wslog.conn_key(*connection.remote_address[:2])

    def process_response(connection, request, response):
        if response.status_code == 101:
            wslog.instrument(connection, log, key(connection))
            front = request.headers.get("X-Client-Port")
            if front:
                log.emit("note", key(connection), proxied_client_port=int(front))
        return None

    async def echo(connection):
        async for msg in connection:
            await connection.send(msg)

    async def handler(connection):
        nonlocal finished, opened
        k = key(connection)
        wslog.log_open(connection, log, k)
        opened += 1
        if opened >= args.conns:
            everyone.set()
        try:
            if args.mode == "lifetime":
                try:
                    await asyncio.wait_for(echo(connection), args.lifetime)
                except asyncio.TimeoutError:
                    log.emit("note", k, lifetime_close_wall=time.time())
                    await connection.close(1000, "max connection age")
            elif args.mode == "push":
                i = 0
                while args.count == 0 or i < args.count:
                    await connection.send(f"update {i} for {k}")
                    i += 1
                    await asyncio.sleep(args.every)
            else:
                await echo(connection)
        except ConnectionClosed:
            pass
        await connection.wait_closed()
        wslog.log_closed(connection)
        finished += 1
        if finished >= args.conns:
            done.set()

    keepalive = args.mode == "heartbeat"
    async with serve(handler, args.host, args.port, compression=None,
                     process_response=process_response,
                     ping_interval=args.ping_interval if keepalive else None,
                     ping_timeout=args.ping_timeout if keepalive else None,
                     close_timeout=args.close_timeout, max_size=None) as server:
        print("READY", flush=True)
        if args.mode == "shutdown":
            await everyone.wait()
            await asyncio.sleep(args.after)
            # CLOCK_REALTIME, to compare with the capture's timestamps.
            print(f"SHUTDOWN {time.time()}", flush=True)
            server.close()
            await server.wait_closed()
            await asyncio.wait_for(done.wait(), 10)
        else:
            await done.wait()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    main()
