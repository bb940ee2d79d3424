"""Captures where the capture shows data after the peer's ACK of it (issue 11): derived from real
recordings, with the recordings' endpoint logs as their ground truth. Registered by record.py.

Capture points reorder. Two taps merged by `mergecap` whose clocks disagree by a few ms put one
direction's packets after the other's ACKs of them; multi-queue NICs, `-i any` and SPAN ports
show a data segment a few packets after the ACK that covers it. Loopback does neither, so the
conversations are recorded on lo and then rearranged as such a capture point would have shown
them:

- late-merged-taps.pcap: the deflate recording split into its two directions with tshark, the
  server's side shifted by SKEW_SECONDS with `editcap -t`, merged back with `mergecap`.
- late-acked-deflate.pcap, late-acked-plain.pcap: 8 client data segments of a deflate (plain)
  recording each moved 1-6 packets after the server packet whose ACK covers it (a SPAN port's
  timestamps: the moved packet gets its new predecessor's time + 1 us).

Each derived truth file says how it was derived and how many data segments per side the capture
shows after an ACK that passed them (`derived.late_after_ack`): what wsprobe's
`tcp.late_after_ack` must count. This module uses only the standard library.
"""

import os
import random
import struct
import subprocess

PORT_DEFLATE = 22011
PORT_PLAIN = 22012
SKEW_SECONDS = 0.004
MOVED_SEGMENTS = 8
MAX_PACKETS_LATE = 6


def register(rec):
    """Adds the scenarios to record.py's SPECS (`rec` is the record.py module)."""
    capture = rec.capture

    @capture("late-deflate.pcap", ports=[PORT_DEFLATE], keep=False,
             title="Pipelined Python websockets conversation, permessage-deflate (source of the late-* captures)",
             exercises="Not kept: late-merged-taps.pcap and late-acked-deflate.pcap are derived from it.",
             expected="1 connection, 12 data messages each way, clean close 1000.")
    def rec_late_deflate(ctx):
        srv = ctx.server_py("echo", "--port", str(PORT_DEFLATE))
        ctx.py("late_client.py", "deflate", "--uri", f"ws://127.0.0.1:{PORT_DEFLATE}/late",
               name="client").wait(30)
        srv.wait(20)

    @capture("late-plain.pcap", ports=[PORT_PLAIN], keep=False,
             title="Pipelined Python websockets conversation, no compression (source of late-acked-plain)",
             exercises="Not kept: late-acked-plain.pcap is derived from it.",
             expected="1 connection, 17 data messages each way, clean close 1000.")
    def rec_late_plain(ctx):
        srv = ctx.server_py("echo", "--port", str(PORT_PLAIN), "--no-deflate")
        ctx.py("late_client.py", "plain", "--uri", f"ws://127.0.0.1:{PORT_PLAIN}/late",
               name="client").wait(30)
        srv.wait(20)

    rec.derived(
        "late-merged-taps.pcap", "late-deflate", ports=[PORT_DEFLATE],
        title="Two taps merged with a clock skew: server packets after the client's ACKs of them",
        exercises=f"The pipelined deflate conversation (Python websockets both ends, context takeover, "
                  f"12 messages echoed in bursts of 3) split into its two directions with tshark, the "
                  f"server's side shifted by +{SKEW_SECONDS * 1000:g} ms with `editcap -t`, merged back by "
                  f"timestamp with `mergecap`, as two taps with skewed clocks give it: the server's data "
                  f"segments (and its SYN-ACK and 101) come after the client's ACKs of them, and the "
                  f"client's first frames before the 101.",
        expected="1 connection, 12 data messages each way exactly as logged, no tcp_gap, every late "
                 "server data segment counted in tcp.late_after_ack; clean close 1000.",
        derive=lambda src, out, tmp: merged_taps(src, out, tmp, PORT_DEFLATE, SKEW_SECONDS))

    rec.derived(
        "late-acked-deflate.pcap", "late-deflate", ports=[PORT_DEFLATE],
        title="Deflate connection with 8 client segments shown after the server's ACK of them",
        exercises=f"The pipelined deflate conversation with {MOVED_SEGMENTS} client data segments each "
                  f"moved 1-{MAX_PACKETS_LATE} packets after the server packet whose ACK covers it. A "
                  f"reassembler that calls a gap at the ACK loses them, and with context takeover every "
                  f"later client message too.",
        expected=f"1 connection, 12 data messages each way exactly as logged, no tcp_gap, "
                 f"tcp.late_after_ack = {MOVED_SEGMENTS}; clean close 1000.",
        derive=lambda src, out, tmp: acked_before_data(src, out, PORT_DEFLATE, "late-acked-deflate"))

    rec.derived(
        "late-acked-plain.pcap", "late-plain", ports=[PORT_PLAIN],
        title="Plain connection with 8 client segments shown after the server's ACK of them",
        exercises=f"The pipelined uncompressed conversation (17 messages echoed) with {MOVED_SEGMENTS} "
                  f"client data segments each moved 1-{MAX_PACKETS_LATE} packets after the server packet "
                  f"whose ACK covers it.",
        expected=f"1 connection, 17 data messages each way exactly as logged, no tcp_gap, "
                 f"tcp.late_after_ack = {MOVED_SEGMENTS}; clean close 1000.",
        derive=lambda src, out, tmp: acked_before_data(src, out, PORT_PLAIN, "late-acked-plain"))


# --------------------------------------------------------------------------
# classic pcap, Ethernet (what tcpdump -i lo writes), IPv4/IPv6 + TCP


class Pkt:
    def __init__(self, ts, data, orig_len):
        self.ts, self.data, self.orig_len = ts, data, orig_len  # ts: integer microseconds
        eth_type = struct.unpack("!H", data[12:14])[0]
        if eth_type == 0x0800:
            ihl = (data[14] & 0x0F) * 4
            total = struct.unpack("!H", data[16:18])[0]
            ip_end = 14 + total
            tcp = 14 + ihl
            assert data[23] == 6, "not TCP"
        elif eth_type == 0x86DD:
            assert data[20] == 6, "not TCP (or IPv6 extension headers)"
            ip_end = 14 + 40 + struct.unpack("!H", data[18:20])[0]
            tcp = 14 + 40
        else:
            raise ValueError(f"ethertype {eth_type:#x}")
        self.sport, self.dport, self.seq, self.ack = struct.unpack("!HHII", data[tcp:tcp + 12])
        off = (data[tcp + 12] >> 4) * 4
        flags = data[tcp + 13]
        self.fin, self.syn, self.rst, self.ack_flag = (bool(flags & 1), bool(flags & 2),
                                                        bool(flags & 4), bool(flags & 16))
        self.payload = data[tcp + off:ip_end]


def read_pcap(path):
    with open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack("<I", raw[:4])[0]
    assert magic == 0xA1B2C3D4, f"{path}: not a little-endian microsecond pcap"
    linktype = struct.unpack("<I", raw[20:24])[0]
    assert linktype == 1, f"{path}: link type {linktype}, expected Ethernet"
    pkts, pos = [], 24
    while pos < len(raw):
        sec, usec, incl, orig = struct.unpack("<IIII", raw[pos:pos + 16])
        pkts.append(Pkt(sec * 1_000_000 + usec, raw[pos + 16:pos + 16 + incl], orig))
        pos += 16 + incl
    return raw[:24], pkts


def write_pcap(path, header, pkts):
    with open(path, "wb") as f:
        f.write(header)
        for p in pkts:
            f.write(struct.pack("<IIII", p.ts // 1_000_000, p.ts % 1_000_000, len(p.data), p.orig_len))
            f.write(p.data)


def covers(ack, end):
    """Serial-number arithmetic (RFC 1982): ack >= end."""
    return (ack - end) % (1 << 32) < (1 << 31)


def late_after_ack(pkts, port):
    """Per side, data segments with new bytes whose first byte at or after the next expected one
    lies below the highest ACK the peer sent before them: what a reassembler that keeps the
    highest ACK counts (tcp.late_after_ack). ACKs before a direction's SYN are not counted (they
    anchor nothing); RST ACKs are ignored, as wsprobe does."""
    sides = ("client", "server")
    base, nxt, acked, seen = [None, None], [0, 0], [0, 0], [[], []]
    late = [0, 0]
    for p in pkts:
        d = 0 if p.dport == port else 1
        if p.syn and base[d] is None:
            base[d] = (p.seq + 1) % (1 << 32)
        if p.payload and base[d] is not None and not p.rst:
            s = (p.seq - base[d]) % (1 << 32)
            e = s + len(p.payload)
            new = any(y > x for x, y in holes(seen[d], s, e))
            if new and max(s, nxt[d]) < acked[d]:
                late[d] += 1
            seen[d] = merge(seen[d] + [(s, e)])
            if seen[d] and seen[d][0][0] <= nxt[d]:
                nxt[d] = max(nxt[d], seen[d][0][1])
        o = 1 - d
        if p.ack_flag and not p.rst and base[o] is not None:
            a = (p.ack - base[o]) % (1 << 32)
            if a < (1 << 31):
                acked[o] = max(acked[o], a)
    return dict(zip(sides, late))


def merge(ranges):
    out = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def holes(ranges, s, e):
    """Parts of [s, e) not in the (merged) ranges."""
    cur = s
    for a, b in ranges:
        if b <= cur:
            continue
        if a >= e:
            break
        if a > cur:
            yield cur, min(a, e)
        cur = max(cur, b)
    if cur < e:
        yield cur, e


# --------------------------------------------------------------------------
# derivations: each writes `out` from the recorded `src` and returns the truth's "derived" block


def run(argv):
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def merged_taps(src, out, tmp, port, skew):
    client = os.path.join(tmp, "tap-client.pcap")
    server = os.path.join(tmp, "tap-server.pcap")
    shifted = os.path.join(tmp, "tap-server-skewed.pcap")
    commands = [
        ["tshark", "-r", src, "-Y", f"tcp.dstport=={port}", "-F", "pcap", "-w", client],
        ["tshark", "-r", src, "-Y", f"tcp.srcport=={port}", "-F", "pcap", "-w", server],
        ["editcap", "-F", "pcap", "-t", f"{skew:g}", server, shifted],
        ["mergecap", "-F", "pcap", "-w", out, client, shifted],
    ]
    for c in commands:
        run(c)
    _, pkts = read_pcap(out)
    shown = [" ".join(os.path.basename(x) if os.path.isabs(x) else x for x in c) for c in commands]
    return {
        "from": os.path.basename(src),
        "how": f"split by direction, server side shifted by +{skew * 1000:g} ms, merged by timestamp",
        "commands": shown,
        "late_after_ack": late_after_ack(pkts, port),
    }


def acked_before_data(src, out, port, seed):
    header, pkts = read_pcap(src)
    rng = random.Random(seed)
    is_client = lambda p: p.dport == port  # noqa: E731
    upgraded = next(i for i, p in enumerate(pkts) if not is_client(p) and p.payload.startswith(b"HTTP/1.1 101"))
    # Client WebSocket segments before its Close frame (first byte 0x88: FIN + opcode 8).
    close_at = next(i for i, p in enumerate(pkts) if is_client(p) and p.payload[:1] == b"\x88")

    def cover_index(lst, p):
        end = (p.seq + len(p.payload)) % (1 << 32)
        start = lst.index(p)
        return next((j for j in range(start + 1, len(lst))
                     if not is_client(lst[j]) and lst[j].ack_flag and covers(lst[j].ack, end)), None)

    candidates = [p for p in pkts[upgraded + 1:close_at] if is_client(p) and p.payload
                  and cover_index(pkts, p) is not None]
    assert len(candidates) >= MOVED_SEGMENTS, f"only {len(candidates)} client segments to move"
    chosen = sorted(rng.sample(candidates, MOVED_SEGMENTS), key=pkts.index)
    number = {id(p): i + 1 for i, p in enumerate(pkts)}  # in the recording, from 1
    moved = []
    for p in chosen:
        cover = cover_index(pkts, p)
        pkts.remove(p)
        cover -= 1  # the removal shifted it
        close_now = next(i for i, q in enumerate(pkts) if is_client(q) and q.payload[:1] == b"\x88")
        late = rng.randint(1, MAX_PACKETS_LATE)
        at = min(cover + late, close_now)
        pkts.insert(at, p)
        prev_ts = pkts[at - 1].ts
        nxt_ts = pkts[at + 1].ts if at + 1 < len(pkts) else prev_ts + 1
        p.ts = min(prev_ts + 1, nxt_ts)
        moved.append({"packet": number[id(p)], "payload_bytes": len(p.payload), "after_ack_packets": at - cover})
    write_pcap(out, header, pkts)
    return {
        "from": os.path.basename(src),
        "how": f"{MOVED_SEGMENTS} client data segments each moved 1-{MAX_PACKETS_LATE} packets after the "
               f"server packet whose ACK covers it (captures/record/late_data.py, seed {seed!r}); "
               f"a moved packet takes its new predecessor's timestamp + 1 us",
        "moved": moved,
        "late_after_ack": late_after_ack(pkts, port),
    }
