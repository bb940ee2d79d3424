"""Python `websockets` client for the late-data captures (captures/record/late_data.py).

It pipelines: sends a burst of messages without waiting, then reads their echoes, so that
several of its segments are in flight when the server's ACKs (piggybacked on the echoes) come.
That gives the reordering scripts ACKs covering earlier segments to move data behind.

usage: late_client.py MODE --uri URI --log FILE     (MODE: deflate | plain)
"""

import argparse
import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wslog  # noqa: E402
from py_client import det_bytes, opened  # noqa: E402


def messages(n):
    """Deterministic messages: JSON ticks (compressible, and alike, so a context-takeover
    deflate stream refers back to earlier messages), a few binary ones, sizes 20 B .. 3 kB."""
    out = []
    for i in range(n):
        if i % 4 == 3:
            out.append(det_bytes(f"late-{i}", 40 + 90 * i))
        else:
            rows = [{"seq": i, "row": r, "symbol": ["ACME", "INIT", "WSPR"][r % 3],
                     "price": 100 + (i * 7 + r) % 13, "note": "tick " * (r % 4)}
                    for r in range(1 + (i * 5) % 23)]
            out.append(json.dumps({"op": "update", "rows": rows}, separators=(",", ":")))
    return out


async def pipelined(args, log, compression, count, burst):
    ws = await opened(args.uri, log, "/late", compression=compression)
    msgs = messages(count)
    for start in range(0, len(msgs), burst):
        part = msgs[start:start + burst]
        for m in part:
            await ws.send(m)
        for m in part:
            got = await ws.recv()
            assert got == m, "echo mismatch"
    await ws.close(1000, "done")
    wslog.log_closed(ws)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["deflate", "plain"])
    ap.add_argument("--uri", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    log = wslog.Log(args.log, "client")
    if args.mode == "deflate":
        asyncio.run(pipelined(args, log, "deflate", 12, 3))
    else:
        asyncio.run(pipelined(args, log, None, 17, 3))


if __name__ == "__main__":
    main()
