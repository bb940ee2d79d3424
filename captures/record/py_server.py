"""Python `websockets` servers used by record.py (one mode per scenario).

usage: py_server.py MODE --host H --port P --log FILE --conns N [--no-deflate]
Prints READY once listening; exits after N connections have finished.
"""

import argparse
import asyncio
import http
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wslog  # noqa: E402
from websockets.asyncio.server import serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["echo", "closecodes", "refuse", "page"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--no-deflate", action="store_true")
    ap.add_argument("--subprotocol", action="append")
    args = ap.parse_args()
    asyncio.run(run(args))


async def run(args):
    log = wslog.Log(args.log, "server")
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
        k = key(connection)
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if args.mode == "refuse":
            status = int(request.path.strip("/") or 400)
            resp = connection.respond(http.HTTPStatus(status),
                                      f"refused with {status} by process_request\n")
            if status == 426:
                resp.headers["Sec-WebSocket-Version"] = "13"
            log.emit("refused", k, path=request.path, status=status,
                     local=wslog.addr_pair(connection.local_address),
                     remote=wslog.addr_pair(connection.remote_address))
            asyncio.get_running_loop().call_later(0.3, finish)
            return resp
        if args.mode == "page" and not upgrade:
            if request.path == "/":
                with open(os.path.join(HERE, "chromium_page.html"), encoding="utf-8") as f:
                    body = f.read()
                resp = connection.respond(http.HTTPStatus.OK, body)
                resp.headers["Content-Type"] = "text/html; charset=utf-8"
                status = 200
            else:
                resp = connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
                status = 404
            log.emit("http", k, method="GET", path=request.path, status=status,
                     body_length=len(resp.body),
                     local=wslog.addr_pair(connection.local_address),
                     remote=wslog.addr_pair(connection.remote_address))
            return resp
        return None

    def process_response(connection, request, response):
        if response.status_code == 101:
            wslog.instrument(connection, log, key(connection))
        elif args.mode != "refuse" and request is not None and (
                "Sec-WebSocket-Key" in request.headers or response.status_code == 426):
            # The library itself refused the upgrade (e.g. a proxy stripped its Upgrade header):
            # log what the request it refused carried.
            log.emit("refused", key(connection), path=request.path, status=response.status_code,
                     upgrade=request.headers.get("Upgrade"),
                     connection_header=request.headers.get("Connection"),
                     local=wslog.addr_pair(connection.local_address),
                     remote=wslog.addr_pair(connection.remote_address))
            asyncio.get_running_loop().call_later(0.3, finish)
        return None

    async def handler(connection):
        k = key(connection)
        wslog.log_open(connection, log, k)
        path = connection.request.path
        try:
            if args.mode in ("echo", "page"):
                async for msg in connection:
                    await connection.send(msg)
            elif args.mode == "closecodes":
                if path == "/auth":
                    await connection.recv()
                    await connection.close(1008, "auth failed")
                elif path == "/crash":
                    await connection.recv()
                    await connection.close(1011, "")
                elif path == "/shutdown":
                    await connection.send("server going down")
                    await connection.close(1001, "shutting down")
                else:  # /client4000, /empty: echo until the client closes
                    async for msg in connection:
                        await connection.send(msg)
        except ConnectionClosed:
            pass
        await connection.wait_closed()
        wslog.log_closed(connection)
        finish()

    compression = None if args.no_deflate else "deflate"
    async with serve(handler, args.host, args.port, compression=compression,
                     subprotocols=args.subprotocol,
                     process_request=process_request,
                     process_response=process_response,
                     ping_interval=None, max_size=None):
        print("READY", flush=True)
        await done.wait()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    main()
