"""Fidelity captures made from real recordings by cutting them or punching holes in them (issue 11):
a capture that starts inside a 1 MiB frame, permessage-deflate connections with a lost segment each way,
and a mid-stream start of permessage-deflate connections. Registered into record.py's SPECS by
`register(record)`; each makes its capture from a recording with `reshape`, and its truth file keeps
the endpoints' logs of the whole conversation plus `truth["derived"]` (what was cut) and, per message,
`in_capture` (every byte of the message is in the derived capture).

Which truth message is where on the wire comes from parsing the recorded TCP streams here (frames
unmasked, permessage-deflate inflated with Python's zlib), matched to the endpoints' logs by sha256:
the capture itself is only used to find packet boundaries, the bytes checked are the endpoints'."""

import hashlib
import struct
import zlib

# ---------------------------------------------------------------- pcap (classic, Ethernet, IPv4, TCP)


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    header, pos, records = data[:24], 24, []
    while pos + 16 <= len(data):
        ts_sec, ts_frac, incl, orig = struct.unpack(endian + "IIII", data[pos:pos + 16])
        records.append((data[pos:pos + 16], data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    return header, records


def write_pcap(path, header, records):
    with open(path, "wb") as f:
        f.write(header)
        for rec_header, frame in records:
            f.write(rec_header)
            f.write(frame)


def tcp_of(frame):
    """(src, sport, dst, dport, seq, flags, payload) of an Ethernet/IPv4/TCP frame, else None."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 6:
        return None
    total = struct.unpack(">H", ip[2:4])[0]
    tcp = ip[ihl:total]
    sport, dport, seq = struct.unpack(">HHI", tcp[:8])
    off = (tcp[12] >> 4) * 4
    return ip[12:16], sport, ip[16:20], dport, seq, tcp[13], tcp[off:]


class Direction:
    """One direction of one connection: the byte stream and where each packet's bytes sit in it."""

    def __init__(self):
        self.isn = None
        self.segments = []  # (stream offset, record index, payload)
        self._data = None

    def add(self, index, seq, flags, payload):
        if flags & 0x02:  # SYN
            self.isn = seq
            return
        if payload:
            self.segments.append((seq, index, payload))

    def _build(self):
        if self._data is not None:
            return
        data, packets = bytearray(), []
        for seq, index, payload in sorted(self.segments, key=lambda s: ((s[0] - self.isn - 1) % (1 << 32), s[1])):
            off = (seq - self.isn - 1) % (1 << 32)
            if off + len(payload) <= len(data):  # retransmission
                continue
            if off > len(data):
                raise RuntimeError(f"the recording has a hole at stream byte {len(data)}")
            data += payload[len(data) - off:]
            packets.append((index, off, len(payload)))
        self._data, self._packets = data, sorted(packets)

    @property
    def data(self):
        self._build()
        return self._data

    @property
    def packets(self):
        """(record index, stream offset, length) of each packet, in capture order."""
        self._build()
        return self._packets


def connections(records, server_ports):
    """{client port: {"client": Direction, "server": Direction}} for connections to `server_ports`."""
    conns = {}
    for i, (_, frame) in enumerate(records):
        t = tcp_of(frame)
        if t is None:
            continue
        src, sport, dst, dport, seq, flags, payload = t
        if dport in server_ports:
            side, client_port = "client", sport
        elif sport in server_ports:
            side, client_port = "server", dport
        else:
            continue
        c = conns.setdefault(client_port, {"client": Direction(), "server": Direction(),
                                           "server_port": dport if side == "client" else sport})
        c[side].add(i, seq, flags, payload)
    return conns


# ---------------------------------------------------------------- WebSocket frames -> messages


def frames_of(stream):
    """Frames after the HTTP head: (offset, end, fin, rsv1, opcode, unmasked payload)."""
    pos = stream.find(b"\r\n\r\n") + 4
    out = []
    while pos + 2 <= len(stream):
        b0, b1 = stream[pos], stream[pos + 1]
        n, hl = b1 & 0x7F, 2
        if n == 126:
            n, hl = struct.unpack(">H", stream[pos + 2:pos + 4])[0], 4
        elif n == 127:
            n, hl = struct.unpack(">Q", stream[pos + 2:pos + 10])[0], 10
        key = None
        if b1 & 0x80:
            key, hl = stream[pos + hl:pos + hl + 4], hl + 4
        payload = bytes(stream[pos + hl:pos + hl + n])
        if len(payload) < n:
            break
        if key:
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        out.append((pos, pos + hl + n, bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, payload))
        pos += hl + n
    return out


OPCODES = {1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def messages_of(stream, takeover):
    """Messages in wire order: (opcode, start offset, end offset, sha256 of the payload), compressed
    messages inflated (RFC 7692 §7.2.2) with one window for the direction under context takeover."""
    inflater = zlib.decompressobj(-15)
    out, current = [], None
    for start, end, fin, rsv1, op, payload in frames_of(stream):
        if op >= 8:
            out.append((OPCODES[op], start, end, hashlib.sha256(payload).hexdigest()))
            continue
        if op in (1, 2):
            current = [OPCODES[op], start, end, [payload], rsv1]
        else:
            current[2] = end
            current[3].append(payload)
        if fin:
            body = b"".join(current[3])
            if current[4]:
                if not takeover:
                    inflater = zlib.decompressobj(-15)
                body = inflater.decompress(body + b"\x00\x00\xff\xff")
            out.append((current[0], current[1], current[2], hashlib.sha256(body).hexdigest()))
            current = None
    return out


def place_messages(truth_conn, conn, takeover):
    """For each truth message of the connection: (side, start, end) of its bytes in that side's stream."""
    placed = []
    for side in ("client", "server"):
        wire = messages_of(conn[side].data, takeover)
        want = [m for m in truth_conn["messages"] if m["from"] == side]
        data = [m for m in want if m["opcode"] in ("text", "binary")]
        ctl = [m for m in want if m["opcode"] not in ("text", "binary")]
        for kind, pool in (("data", data), ("control", ctl)):
            got = [w for w in wire if (w[0] in ("text", "binary")) == (kind == "data")]
            if len(got) != len(pool):
                raise RuntimeError(f"{side} {kind}: {len(got)} on the wire, {len(pool)} logged")
            for m, w in zip(pool, got):
                if (m["opcode"], m["sha256"]) != (w[0], w[3]):
                    raise RuntimeError(f"{side}: wire message {w[0]} does not match the log")
                placed.append((m, side, w[1], w[2]))
    return placed


def packet_at(direction, offset):
    """The record index of the packet carrying stream byte `offset`."""
    for index, off, n in direction.packets:
        if off <= offset < off + n:
            return index, off, n
    raise RuntimeError(f"no packet carries byte {offset}")


def conn_for(truth, port):
    for c in truth["connections"]:
        if c["client"]["port"] == port:
            return c
    raise RuntimeError(f"no logged connection from port {port}")


# ---------------------------------------------------------------- derivations


def derive_midframe(path, truth, tmp):
    """Cut the recording so that it starts inside both 1 MiB frames (while both are in flight)."""
    header, records = read_pcap(path)
    conns = connections(records, truth["recording"]["server_ports"])
    (port, conn), = conns.items()
    tc = conn_for(truth, port)
    placed = place_messages(tc, conn, takeover=False)
    spans = {side: [(s, e) for m, sd, s, e in placed if sd == side] for side in ("client", "server")}
    big = max(spans["server"], key=lambda r: r[1] - r[0])
    # The packet from which both directions are inside a frame, the server inside its 1 MiB with about
    # 300 KiB of it left (more than the 256 KiB a direction used to be hunted before being given up).
    best = None
    for index, _ in enumerate(records):
        left = {}
        for side in ("client", "server"):
            later = [off for i, off, n in conn[side].packets if i >= index]
            if not later:
                continue
            inside = [e - later[0] for s, e in spans[side] if s < later[0] < e]
            if side == "server" and not big[0] < later[0] < big[1]:
                continue
            if inside:
                left[side] = inside[0]
        if len(left) == 2 and (best is None or abs(left["server"] - 300 * 1024) < abs(best[1]["server"] - 300 * 1024)):
            best = (index, left)
    if best is None:
        raise RuntimeError("no packet where both directions are inside a frame: record again")
    first, left = best
    kept = records[first:]
    out = path + ".derived"
    write_pcap(out, header, kept)
    cut = {side: next(off for i, off, n in conn[side].packets if i >= first) for side in ("client", "server")}
    for m, side, s, e in placed:
        m["in_capture"] = s >= cut[side]
    truth["derived"] = {
        "operation": f"packets 1-{first} of the recording removed, so the capture starts inside a frame each "
                     f"way ({left['client']} bytes left of the client's 100 KiB frame, {left['server']} of the "
                     "server's 1 MiB)",
        "first_packet": first + 1,
        "frame_bytes_left": left,
    }
    return out, truth


def derive_deflate_gap(path, truth, tmp):
    """Delete the packet carrying client message #10 and the one carrying server message #12, in each
    connection."""
    header, records = read_pcap(path)
    conns = connections(records, truth["recording"]["server_ports"])
    drop, notes = set(), []
    for port, conn in sorted(conns.items()):
        tc = conn_for(truth, port)
        takeover = "no_context_takeover" not in (tc["handshake"]["extensions"]["server"] or "")
        placed = place_messages(tc, conn, takeover)
        lost = {}
        for side, nth in (("client", 10), ("server", 12)):
            msgs = [(m, s, e) for m, sd, s, e in placed if sd == side and m["opcode"] in ("text", "binary")]
            m, s, e = msgs[nth]
            index, off, n = packet_at(conn[side], s)
            drop.add(index)
            lost[side] = (off, off + n)
            notes.append(f"packet {index + 1} (the {side}'s message #{nth} of :{conn['server_port']})")
        for m, side, s, e in placed:
            a, b = lost[side]
            m["in_capture"] = not (s < b and e > a)
    kept = [r for i, r in enumerate(records) if i not in drop]
    out = path + ".derived"
    write_pcap(out, header, kept)
    truth["derived"] = {
        "operation": "deleted " + ", ".join(notes),
        "deleted_packets": [i + 1 for i in sorted(drop)],
    }
    return out, truth


def derive_deflate_midstream(path, truth, tmp):
    """For each connection, remove every packet before the one carrying client message #8 (so the
    handshake and the first messages are gone)."""
    header, records = read_pcap(path)
    conns = connections(records, truth["recording"]["server_ports"])
    cut_at, notes = {}, []
    for port, conn in sorted(conns.items()):
        tc = conn_for(truth, port)
        takeover = "no_context_takeover" not in (tc["handshake"]["extensions"]["server"] or "")
        placed = place_messages(tc, conn, takeover)
        msgs = [(m, s) for m, sd, s, e in placed if sd == "client" and m["opcode"] in ("text", "binary")]
        index, _, _ = packet_at(conn["client"], msgs[8][1])
        cut_at[port] = index
        cut = {side: next(off for i, off, n in conn[side].packets if i >= index) for side in ("client", "server")}
        for m, side, s, e in placed:
            m["in_capture"] = s >= cut[side]
        notes.append(f"before packet {index + 1} for :{conn['server_port']}")
    kept = []
    for i, r in enumerate(records):
        t = tcp_of(r[1])
        if t is None:
            continue
        client_port = t[1] if t[3] in truth["recording"]["server_ports"] else t[3]
        if i >= cut_at.get(client_port, 0):
            kept.append(r)
    out = path + ".derived"
    write_pcap(out, header, kept)
    truth["derived"] = {
        "operation": "every packet of a connection before the one carrying its client's message #8 removed ("
                     + "; ".join(notes) + "): no handshake, the capture starts after 8 messages each way",
        "first_packets": {str(p): i + 1 for p, i in sorted(cut_at.items())},
    }
    return out, truth


# ---------------------------------------------------------------- scenarios


def register(rec):
    capture = rec.capture

    @capture("midframe-1mib.pcap", ports=[23101], reshape=derive_midframe,
             title="A capture that starts inside a 1 MiB frame, both ways",
             exercises="Node ws client and server, no compression: 10 JSON ticks echoed, then the client sends "
                       "\"go\" and the server answers with one 1 MiB binary frame (random bytes) written 64 KiB "
                       "every 10 ms, while the client streams binary messages of 4 KiB (masked, one every 4 ms; once 700 KiB "
                       "of the server's frame arrived, one of 100 KiB, more than a loopback segment) until it "
                       "has all of it, counted by the server (\"got N messages\", after its frame); then 20 more messages "
                       "echoed (JSON ticks, small binaries, client pings and their pongs), client close 1000 "
                       "\"done\". The capture is cut so that it starts about 300 KiB before the end of the "
                       "server's 1 MiB frame and inside the client's 100 KiB one: no handshake, both directions "
                       "mid-frame.",
             expected="1 connection found by resynchronising (midstream_start), the cut frames skipped, every "
                      "later message and control frame of both sides exact, clean close 1000.")
    def rec_midframe(ctx):
        srv = ctx.node("node_fidelity.js", "server-midframe", "--port", "23101", name="server")
        srv.wait_for("READY")
        ctx.node("node_fidelity.js", "client-midframe", "--port", "23101", name="client").wait(60)
        srv.wait(20)

    deflate_text = ("Node ws client and server, two connections: :{a} permessage-deflate with context takeover, "
                    ":{b} client_no_context_takeover + server_no_context_takeover (threshold 0: every message "
                    "compressed). Each: 30 JSON ticks client->server, each answered by a JSON ack; a 40 KiB "
                    "binary message of fresh random bytes echoed (a window of output that copies nothing); 20 "
                    "more ticks and acks; client close 1000 \"done\".")

    @capture("deflate-gap.pcap", ports=[23111, 23112], reshape=derive_deflate_gap,
             title="permessage-deflate connections with a segment lost each way",
             exercises=deflate_text.format(a=23111, b=23112) + " In each connection the packet with client "
                       "message #10 and the packet with server message #12 are deleted from the capture.",
             expected="2 connections, tcp_gap each way; no_context_takeover: every message but the lost ones "
                      "exact; context takeover: after the gap each message exact (inflated_after_gap) or "
                      "reported unknown (length null, decompression_unavailable), never wrong, and every "
                      "message after the fresh 40 KiB exact.")
    def rec_deflate_gap(ctx):
        srv = ctx.node("node_fidelity.js", "server-deflate", "--port", "23111", "--conns", "2", name="server")
        srv.wait_for("READY")
        ctx.node("node_fidelity.js", "client-deflate", "--port", "23111", name="client").wait(60)
        srv.wait(20)

    @capture("deflate-midstream.pcap", ports=[23121, 23122], reshape=derive_deflate_midstream,
             title="permessage-deflate connections captured mid-stream",
             exercises=deflate_text.format(a=23121, b=23122) + " The capture of each connection starts at the "
                       "packet with client message #8: no SYN, no handshake.",
             expected="2 connections found by resynchronising; RSV1 messages inflated with assumed parameters: "
                      "no_context_takeover ones all exact (inflated_after_gap), context takeover ones exact or "
                      "unknown, never wrong, all exact after the fresh 40 KiB.")
    def rec_deflate_midstream(ctx):
        srv = ctx.node("node_fidelity.js", "server-deflate", "--port", "23121", "--conns", "2", name="server")
        srv.wait_for("READY")
        ctx.node("node_fidelity.js", "client-deflate", "--port", "23121", name="client").wait(60)
        srv.wait(20)
