"""Tunnels through WebSocket: websockify (Debian's python3-websockify) in front of real TCP
servers, and a Python `websockets` client that carries a real TCP client's bytes.

    tunnel.py server --listen P:T [--listen P:T ...] --conns N --log L
        one websockify proxy per P (127.0.0.1:P -> 127.0.0.1:T), in one process, its WebSocket
        frames logged by hooks on websockify's own WebSocket class (after unmasking, as sent)
    tunnel.py client --port P --inner ssh|tls|http --log L
        listens on an ephemeral port, runs the inner client (OpenSSH `ssh`, `openssl s_client`
        or `curl`) against it, carries its bytes in binary messages over ws://127.0.0.1:P/
        (subprotocol "binary", as noVNC asks, or none with --no-subprotocol) and logs what the inner client said it did

The frame truth follows wslog.py's events; the application truth (`ev: app`) is what the inner
client and websockify reported: the SSH version strings, the TLS version and SNI, the HTTP
request and status lines, the target websockify connected to.
"""

import argparse
import asyncio
import os
import re
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wslog  # noqa: E402

OPS = {0x0: "cont", 0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"}


def server(args):
    # Debian's websockify lives in the system Python's dist-packages, outside the venv.
    sys.path.append("/usr/lib/python3/dist-packages")
    import websockify
    from websockify import websocketproxy, websockifyserver

    impl = "websockify " + getattr(websockify, "__version__", "0.10.0")
    log = wslog.Log(args.log, "server", impl=impl)
    closed = threading.Semaphore(0)

    class LoggedWebSocket(websockifyserver.CompatibleWebSocket):
        def accept(self, sock, headers):
            self._conn = wslog.conn_key(*sock.getpeername()[:2])
            self._local = wslog.addr_pair(sock.getsockname())
            self._remote = wslog.addr_pair(sock.getpeername())
            self._sent = wslog.Assembler(log, self._conn, "msg_sent")
            self._rcvd = wslog.Assembler(log, self._conn, "msg_recv")
            self._closed_logged = False
            return super().accept(sock, headers)

        def _sendmsg(self, opcode, msg):
            self._sent.frame(OPS[opcode], True, msg or b"")
            return super()._sendmsg(opcode, msg)

        def _decode_hybi(self, buf):
            f = super()._decode_hybi(buf)
            if f is not None and f.get("payload") is not None:
                self._rcvd.frame(OPS.get(f["opcode"], "cont"), bool(f["fin"]), f["payload"])
            return f

        def log_closed(self):
            if not self._closed_logged:
                self._closed_logged = True
                log.emit("closed", self._conn, sent=self._sent.last_close,
                         received=self._rcvd.last_close,
                         reported={"code": self.close_code, "reason": self.close_reason})
                closed.release()

        def _close(self):
            self.log_closed()
            return super()._close()

    class Handler(websocketproxy.ProxyRequestHandler):
        SocketClass = LoggedWebSocket

        def new_websocket_client(self):
            ws = self.request
            log.emit("open", ws._conn, local=ws._local, remote=ws._remote, path=self.path,
                     status=101, subprotocol=ws.protocol or None, extensions=None)
            log.emit("app", ws._conn, what="target", role_detail="websockify",
                     target=f"{self.server.target_host}:{self.server.target_port}")
            try:
                return super().new_websocket_client()
            finally:
                # websockify ends a proxied session by raising CClose after its Close; the
                # socket is closed by the request handler, past the WebSocket's own _close.
                ws.log_closed()

        def log_message(self, fmt, *a):  # websockify's own account, kept for the truth's notes
            sys.stderr.write("websockify: " + (fmt % a) + "\n")

    servers = []
    for pair in args.listen:
        listen, target = (int(x) for x in pair.split(":"))
        s = websocketproxy.LibProxyServer(RequestHandlerClass=Handler, listen_host="127.0.0.1",
                                          listen_port=listen, target_host="127.0.0.1",
                                          target_port=target)
        servers.append(s)
        threading.Thread(target=s.serve_forever, daemon=True).start()
    print("READY", flush=True)
    # Stops once its connections have closed (or after a minute).
    for _ in range(args.conns):
        if not closed.acquire(timeout=60):
            break
    for s in servers:
        s.shutdown()


def inner_command(kind, port):
    if kind == "ssh":
        return ["ssh", "-v", "-p", str(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                "-o", "UserKnownHostsFile=/dev/null", "-o", "PreferredAuthentications=none",
                "tunnel@127.0.0.1", "true"]
    if kind == "tls":
        return ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "tunnel.test",
                "-tls1_3", "-brief"]
    return ["curl", "-sv", "--http1.1", f"http://127.0.0.1:{port}/tunnel-probe"]


def inner_facts(kind, out):
    """What the inner client said it did, from its own verbose output."""
    facts = {}
    if kind == "ssh":
        for pat, key in ((r"Local version string (\S+ ?\S*)", "local_version"),
                         (r"Remote protocol version ([\d.]+), remote software version (.+?)\r?$", "remote_version")):
            m = re.search(pat, out, re.M)
            if m:
                facts[key] = m.group(1) if key == "local_version" else f"SSH-{m.group(1)}-{m.group(2)}"
    elif kind == "tls":
        m = re.search(r"Protocol version: (\S+)", out)
        if m:
            facts["protocol"] = m.group(1)
        m = re.search(r"Ciphersuite: (\S+)", out)
        if m:
            facts["cipher"] = m.group(1)
        facts["sni"] = "tunnel.test"
    else:
        m = re.search(r"^> (GET \S+ HTTP/1\.1)", out, re.M)
        if m:
            facts["request_line"] = m.group(1)
        m = re.search(r"^< (HTTP/1\.\d \d+.*?)\r?$", out, re.M)
        if m:
            facts["status_line"] = m.group(1)
    return facts


async def client(args):
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    log = wslog.Log(args.log, "client")
    accepted = asyncio.get_running_loop().create_future()

    async def on_tcp(reader, writer):
        if not accepted.done():
            accepted.set_result((reader, writer))

    tcp = await asyncio.start_server(on_tcp, "127.0.0.1", 0)
    inner_port = tcp.sockets[0].getsockname()[1]
    argv = inner_command(args.inner, inner_port)
    proc = await asyncio.create_subprocess_exec(*argv, stdin=subprocess.DEVNULL if args.inner != "tls" else subprocess.PIPE,
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reader, writer = await asyncio.wait_for(accepted, 10)
    url = f"ws://127.0.0.1:{args.port}/"
    subprotocols = None if args.no_subprotocol else ["binary"]
    async with connect(url, subprotocols=subprotocols, compression=None, ping_interval=None) as ws:
        conn = wslog.conn_key(*ws.local_address[:2])
        wslog.instrument(ws, log, conn)
        wslog.log_open(ws, log, conn, path="/")

        async def up():
            try:
                while data := await reader.read(65536):
                    await ws.send(data)
            except ConnectionClosed:
                pass

        async def down():
            async for msg in ws:
                writer.write(msg)
                await writer.drain()
                if args.inner == "tls" and proc.stdin and not proc.stdin.is_closing():
                    # s_client reads stdin after the handshake: end it, so it sends close_notify.
                    await asyncio.sleep(0.2)
                    proc.stdin.close()

        tasks = {asyncio.create_task(up()), asyncio.create_task(down())}
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # Whichever end finished first: the inner client (close the WebSocket) or websockify's
        # target (the WebSocket closed: end the inner client's TCP connection).
        await ws.close(1000, "inner client done")
        writer.close()
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        out = (await proc.communicate())[0].decode("utf-8", "replace")
        log.emit("app", conn, what="inner_client", inner=args.inner, command=" ".join(argv[:2]),
                 exit=proc.returncode, **inner_facts(args.inner, out))
        wslog.log_closed(ws)
    tcp.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client"])
    ap.add_argument("--listen", action="append", default=[])
    ap.add_argument("--port", type=int)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--inner", choices=["ssh", "tls", "http"])
    ap.add_argument("--no-subprotocol", action="store_true",
                    help="offer no subprotocol (websockify accepts both)")
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    if args.role == "server":
        server(args)
    else:
        asyncio.run(client(args))


if __name__ == "__main__":
    main()
