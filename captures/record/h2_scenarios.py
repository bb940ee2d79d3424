#!/usr/bin/env python3
"""WebSocket over HTTP/2 (RFC 8441) captures, recorded on loopback with the endpoints' own logs
as ground truth. Kept apart from record.py (whose truth model is one WebSocket per TCP
connection); it reuses record.py's process and capture helpers.

    python3 captures/record/h2_scenarios.py            # record both
    python3 captures/record/h2_scenarios.py h2c-websocket

h2c-websocket.pcap   Node http2 server (enableConnectProtocol) and Node http2 client, prior
                     knowledge h2c on :21080.
h2c-flow-stall.pcap  Node http2 client announcing a 16 KiB stream window, one WebSocket stream;
                     it sends 60,000 bytes and stops reading for 1.5 s, so the server's echo
                     waits for the client's WINDOW_UPDATE (RFC 9113 §5.2).
h2-chromium.pcapng   headless Chromium against a Node http2.createSecureServer on :21443,
                     SSLKEYLOGFILE key log beside it (h2-chromium.keys), its TLS secrets also
                     injected into the pcapng as a Decryption Secrets Block.

Truth files (NAME.truth.json, schema wsprobe-truth-h2/1): per TCP connection the HTTP/2
streams, each WebSocket stream with its stream id, path, subprotocol, every message as sent by
one side and received by the other (sha256, length, text), and how it ended (close frames,
RST_STREAM with its code, page teardown).
"""

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import record  # noqa: E402  (captures/record/record.py)

CAPTURES = record.CAPTURES
SCHEMA = "wsprobe-truth-h2/1"
SCRATCH = os.environ.get("WSPROBE_REC_DIR", "/work/scratch/rec")


def node(ctx, *argv, name):
    log = ctx.log(name)
    return ctx._start(["node", os.path.join(HERE, "h2_endpoints.js"), *argv, "--log", log], name,
                      ["node", "captures/record/h2_endpoints.js", *argv, "--log", f"{name}.jsonl"])


def load(paths):
    evs = []
    for p in paths:
        if os.path.exists(p):
            with open(p, encoding="utf-8") as f:
                evs += [json.loads(line) for line in f if line.strip()]
    return evs


def streams_truth(evs):
    """Per TCP connection (the client's address) and stream id: what each side logged."""
    conns = collections.OrderedDict()
    for e in sorted(evs, key=lambda e: e.get("t") or 0):
        key = e.get("conn")
        if key is None:
            continue
        c = conns.setdefault(key, {"client": key, "streams": collections.OrderedDict()})
        sid = e.get("stream")
        if sid is None:
            continue
        s = c["streams"].setdefault(sid, {"stream_id": sid, "path": e.get("path"), "kind": None,
                                          "status": None, "subprotocol": None, "events": []})
        if e["ev"] == "open":
            s["kind"] = "websocket"
            s["status"] = e["status"]
            s["subprotocol"] = e.get("subprotocol")
            if e["role"] == "server":
                s["offered_extensions"] = e.get("offered_extensions")
        elif e["ev"] == "http":
            s["kind"] = "ordinary"
            s["status"] = e["status"]
            s["method"] = e.get("method")
        s["events"].append(e)
    out = []
    for c in conns.values():
        streams = []
        for s in c["streams"].values():
            evs = s.pop("events")
            if s["kind"] == "websocket":
                s["messages"] = messages(evs)
                s["end"] = ending(evs)
                paused = [e["t"] for e in evs if e["ev"] == "paused"]
                resumed = [e["t"] for e in evs if e["ev"] == "resumed"]
                if paused and resumed:
                    # The client stopped reading the stream for this long (monotonic clock).
                    s["client_reader_paused_s"] = round((resumed[0] - paused[0]) / 1e9, 3)
            streams.append(s)
        out.append({"client": c["client"], "streams": streams})
    return out


def messages(evs):
    recv = {r: collections.Counter((e["opcode"], e["sha256"]) for e in evs
                                   if e["ev"] == "msg_recv" and e["role"] == r) for r in ("client", "server")}
    out = []
    for e in evs:
        if e["ev"] != "msg_sent":
            continue
        peer = "server" if e["role"] == "client" else "client"
        k = (e["opcode"], e["sha256"])
        delivered = recv[peer][k] > 0
        if delivered:
            recv[peer][k] -= 1
        m = {"from": e["role"], "opcode": e["opcode"], "length": e["length"], "sha256": e["sha256"],
             "delivered": delivered}
        if e.get("text") is not None:
            m["text"] = e["text"]
        if e.get("payload_hex") is not None:
            m["payload_hex"] = e["payload_hex"]
        if e.get("fragments", 1) != 1:
            m["fragments"] = e["fragments"]
        out.append(m)
    return out


def ending(evs):
    sent_close = {e["role"] for e in evs if e["ev"] == "msg_sent" and e["opcode"] == "close"}
    resets = [e for e in evs if e["ev"] == "reset_sent"]
    closed = {e["role"]: e.get("rst_code") for e in evs if e["ev"] == "stream_closed"}
    if resets:
        return {"kind": "rst_stream", "by": resets[0]["role"], "code": "CANCEL" if resets[0]["rst_code"] == 8
                else resets[0]["rst_code"], "close_frames": sorted(sent_close)}
    if {"client", "server"} <= sent_close:
        return {"kind": "close_frames", "close_frames": ["client", "server"], "rst_codes": closed}
    return {"kind": "other", "close_frames": sorted(sent_close), "rst_codes": closed}


def write_truth(spec, stats, ctx, conns, extra=None):
    truth = {
        "schema": SCHEMA,
        "capture": spec["file"],
        "recording": {
            "tool": record.tool_version(spec["tool"]),
            "command": spec["shown"],
            "interface": "lo",
            "server_ports": spec["ports"],
            "packets_captured": stats["captured"],
            "dropped_by_kernel": stats["dropped"],
            "runtimes": {"node": subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()},
            "endpoint_commands": ctx.commands,
        },
        "connections": conns,
    }
    truth["recording"].update(extra or {})
    with open(os.path.join(CAPTURES, spec["stem"] + ".truth.json"), "w", encoding="utf-8") as f:
        f.write(record.dumps(truth) + "\n")


def rec_h2c(ctx):
    srv = node(ctx, "server", "--port", "21080", name="server")
    srv.wait_for("READY")
    node(ctx, "client", "--url", "http://127.0.0.1:21080", name="client").wait(60)
    srv.p.send_signal(signal.SIGTERM)
    srv.wait(20)


def rec_h2c_slow_reader(ctx):
    srv = node(ctx, "server", "--port", "21081", name="server")
    srv.wait_for("READY")
    node(ctx, "client", "--url", "http://127.0.0.1:21081", "--slow-reader", name="client").wait(60)
    srv.p.send_signal(signal.SIGTERM)
    srv.wait(20)


def rec_chromium(ctx):
    chromium = shutil.which("chromium")
    if not chromium:
        raise record.SkipCapture("chromium is not installed")
    certdir = os.path.join(ctx.tmp, "cert")
    os.makedirs(certdir)
    cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    spki = subprocess.run(
        "openssl x509 -in %s -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary "
        "| base64" % cert, shell=True, check=True, capture_output=True, text=True).stdout.strip()
    srv = node(ctx, "server", "--port", "21443", "--tls", cert, key, "--page",
               os.path.join(HERE, "h2_chromium_page.html"), name="server")
    srv.wait_for("READY")
    udd = tempfile.mkdtemp(prefix="chromium-", dir=ctx.tmp)
    ctx.keylog = os.path.join(ctx.tmp, "keys.log")
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
            "--disable-default-apps", "--disable-quic", f"--user-data-dir={udd}", "--enable-logging=stderr",
            "--v=0", f"--ignore-certificate-errors-spki-list={spki}", "--timeout=15000", "--dump-dom",
            "https://localhost:21443/"]
    ctx.commands.append("SSLKEYLOGFILE=keys.log chromium --headless --no-sandbox --disable-gpu ... "
                        "--ignore-certificate-errors-spki-list=SPKI --timeout=15000 --dump-dom https://localhost:21443/ "
                        "(quits once the page's load event fired: /slow answers after 3 s)")
    cr = ctx._start(argv, "chromium", ["chromium"], env={"SSLKEYLOGFILE": ctx.keylog}, new_session=True)
    try:
        cr.p.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(cr.p.pid, signal.SIGKILL)
        cr.p.wait()
    ctx.chromium_version = subprocess.run([chromium, "--version"], capture_output=True, text=True).stdout.strip()
    time.sleep(0.5)
    srv.p.send_signal(signal.SIGTERM)
    srv.wait(20)
    # The page logs to the console: "WSLOG {json}" lines in Chromium's stderr.
    page_log = ctx.log("page")
    with open(cr.stderr_path, encoding="utf-8", errors="replace") as f, open(page_log, "w") as out:
        for line in f:
            m = re.search(r'"WSLOG (\{.*\})", source:', line)
            if m:
                e = json.loads(m.group(1))
                e["user_agent"] = e.pop("impl", None)
                out.write(json.dumps(e, ensure_ascii=False) + "\n")


SPECS = [
    dict(file="h2c-websocket.pcap", ports=[21080], fn=rec_h2c, tool="tcpdump",
         title="WebSocket over cleartext HTTP/2 (RFC 8441, h2c prior knowledge)"),
    dict(file="h2c-flow-stall.pcap", ports=[21081], fn=rec_h2c_slow_reader, tool="tcpdump",
         title="HTTP/2 flow-control stall: a WebSocket stream whose reader stops for 1.5 s (h2c)"),
    dict(file="h2-chromium.pcapng", ports=[21443], fn=rec_chromium, tool="tcpdump",
         title="Headless Chromium, wss:// over HTTP/2 (RFC 8441) with a key log"),
]


def attach_page_events(evs, conns):
    """The page logs without connection or stream: attach its events by path to the server's
    streams. What the page sent is known from its log; whether it arrived, from the server's."""
    page = [e for e in evs if e.get("role") == "client" and e.get("conn") is None]
    server = [e for e in evs if e.get("role") == "server"]
    by_path = collections.defaultdict(list)
    for e in page:
        by_path[e.get("path")].append(e)
    for c in conns:
        for s in c["streams"]:
            if s["kind"] != "websocket":
                continue
            pe = by_path.get(s["path"], [])
            se = [e for e in server if e.get("stream") == s["stream_id"] and e.get("conn") == c["client"]]
            s["page_log"] = [{k: v for k, v in e.items() if k not in ("user_agent", "role")} for e in pe]
            recv_by_server = collections.Counter((e["opcode"], e["sha256"]) for e in se if e["ev"] == "msg_recv")
            msgs = []
            for e in pe:
                if e.get("ev") != "msg_sent":
                    continue
                k = (e["opcode"], e["sha256"])
                delivered = recv_by_server[k] > 0
                recv_by_server[k] -= int(delivered)
                m = {"from": "client", "opcode": e["opcode"], "length": e["length"], "sha256": e["sha256"],
                     "delivered": delivered}
                if e.get("text") is not None:
                    m["text"] = e["text"]
                msgs.append(m)
            # The page's ws.close() is not a logged send: the server's reception shows it.
            for e in se:
                if e["ev"] == "msg_recv" and e["opcode"] == "close":
                    msgs.append({"from": "client", "opcode": "close", "length": e["length"], "sha256": e["sha256"],
                                 "payload_hex": e.get("payload_hex"), "delivered": True})
            page_closed = [e for e in pe if e.get("ev") == "closed"]
            page_recv = collections.Counter((e["opcode"], e["sha256"]) for e in pe if e.get("ev") == "msg_recv")
            for m in s["messages"]:
                if m["from"] != "server":
                    continue
                if m["opcode"] == "close":
                    m["delivered"] = bool(page_closed and page_closed[0].get("was_clean"))
                else:
                    k = (m["opcode"], m["sha256"])
                    m["delivered"] = page_recv[k] > 0
                    page_recv[k] -= int(m["delivered"])
                msgs.append(m)
            s["messages"] = msgs
            client_closed = any(m["from"] == "client" and m["opcode"] == "close" for m in msgs)
            server_closed = any(m["from"] == "server" and m["opcode"] == "close" for m in msgs)
            codes = {e["role"]: e.get("rst_code") for e in se if e["ev"] == "stream_closed"}
            if client_closed and server_closed:
                s["end"] = {"kind": "close_frames", "close_frames": ["client", "server"], "rst_codes": codes}
            elif not client_closed and codes.get("server") == 8:
                # The server's http2 module reports the client's RST_STREAM code.
                s["end"] = {"kind": "rst_stream", "by": "client", "code": "CANCEL", "close_frames": [],
                            "note": "chromium quit (the page went away) with the WebSocket open"}


def main():
    names = sys.argv[1:]
    if os.geteuid() != 0:
        sys.exit("run as root (capturing on lo)")
    os.makedirs(os.path.join(SCRATCH, "logs"), exist_ok=True)
    for spec in SPECS:
        spec["stem"] = spec["file"].rsplit(".", 1)[0]
        if names and spec["stem"] not in names and spec["file"] not in names:
            continue
        spec["bpf"] = " or ".join(f"tcp port {p}" for p in spec["ports"])
        spec["iface"] = "lo"
        print(f"== {spec['file']}", flush=True)
        tmp = tempfile.mkdtemp(prefix=spec["stem"] + "-", dir=os.path.join(SCRATCH, "logs"))
        ctx = record.Ctx(spec, tmp)
        tmpcap = os.path.join(tmp, "raw.pcap")
        cap = record.Capture(spec, tmpcap, tmp)
        spec["shown"] = cap.shown.replace("raw.pcap", spec["file"])
        try:
            spec["fn"](ctx)
        except record.SkipCapture as e:
            ctx.cleanup()
            cap.p.send_signal(signal.SIGINT)
            cap.p.wait()
            print(f"  skipped: {e}")
            continue
        finally:
            ctx.cleanup()
        stats = cap.stop()
        if stats["dropped"]:
            sys.exit(f"{stats['dropped']} packets dropped by the kernel: record again")
        evs = load(ctx.logs)
        conns = streams_truth(evs)
        extra = {}
        out = os.path.join(CAPTURES, spec["file"])
        if getattr(ctx, "keylog", None):
            attach_page_events(evs, conns)
            shutil.copyfile(ctx.keylog, os.path.join(CAPTURES, spec["stem"] + ".keys"))
            subprocess.run(["editcap", "--inject-secrets", f"tls,{ctx.keylog}", tmpcap, out], check=True)
            extra = {"browser": getattr(ctx, "chromium_version", None),
                     "key_log": spec["stem"] + ".keys",
                     "note": "pcapng with a Decryption Secrets Block (editcap --inject-secrets); the same "
                             "secrets in the key log file beside it"}
        else:
            shutil.copyfile(tmpcap, out)
        write_truth(spec, stats, ctx, conns, extra)
        print(f"  ok: {stats['captured']} packets, {os.path.getsize(out)} bytes, "
              f"{sum(len(c['streams']) for c in conns)} streams", flush=True)


if __name__ == "__main__":
    main()
