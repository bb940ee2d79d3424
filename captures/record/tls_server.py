"""A plain TLS server (Python stdlib ssl), not WebSocket: the TLS connection of
server-restart.pcap, for the report's summary of what was not WebSocket. Logs, per
connection, the server name (SNI) the client's hello carried and the TLS version.

usage: tls_server.py --port P --cert C --key K --log FILE [--conns N]
Prints READY once listening; exits after N connections.
"""

import argparse
import os
import socket
import ssl
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wslog  # noqa: E402

IMPL = "python ssl (%s)" % ssl.OPENSSL_VERSION


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--conns", type=int, default=1)
    args = ap.parse_args()
    log = wslog.Log(args.log, "server", IMPL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    names = {}
    ctx.sni_callback = lambda sock, name, _ctx: names.__setitem__(id(sock), name)
    srv = socket.create_server((args.host, args.port))
    print("READY", flush=True)
    for _ in range(args.conns):
        raw, peer = srv.accept()
        local = raw.getsockname()
        with ctx.wrap_socket(raw, server_side=True) as s:
            line = s.recv(1024)
            s.sendall(b"hello back over TLS\n")
            log.emit("tls", wslog.conn_key(*peer[:2]), local=wslog.addr_pair(local),
                     remote=wslog.addr_pair(peer), server_name=names.get(id(s)),
                     version=s.version(), received=line.decode("utf-8", "replace"))


if __name__ == "__main__":
    main()
