"""The same WebSocket traffic over ws://, wss:// TLS 1.3 (AES-256-GCM) and wss:// TLS 1.2
(ECDHE-ECDSA-CHACHA20-POLY1305), for benches/compare_tls.sh: 4 connections in turn, each
N binary messages of 20 B to 8 KB (seeded) from the client, each answered with its first 64
bytes. Python websockets on loopback; the client writes the TLS secrets to DIR/MODE.keys.

usage: wss_traffic.py MODE PORT N DIR     (MODE: ws, wss13, wss12chacha; DIR holds cert.pem, key.pem)
"""

import asyncio
import os
import random
import ssl
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


async def answer(ws):
    async for m in ws:
        await ws.send(m[:64])


async def main(mode, port, n, where):
    server_tls = client_tls = None
    if mode != "ws":
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(os.path.join(where, "cert.pem"), os.path.join(where, "key.pem"))
        client_tls = ssl.create_default_context(cafile=os.path.join(where, "cert.pem"))
        client_tls.check_hostname = False
        client_tls.keylog_filename = os.path.join(where, f"{mode}.keys")
        if mode == "wss12chacha":
            client_tls.maximum_version = ssl.TLSVersion.TLSv1_2
            client_tls.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305")
    scheme = "ws" if mode == "ws" else "wss"
    async with serve(answer, "127.0.0.1", port, ssl=server_tls, compression=None, max_size=None):
        rng = random.Random(1)
        for c in range(4):
            async with connect(f"{scheme}://127.0.0.1:{port}/c{c}", ssl=client_tls,
                               compression=None, max_size=None) as ws:
                for _ in range(n):
                    await ws.send(rng.randbytes(rng.choice([20, 200, 1000, 8000])))
                    await ws.recv()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
