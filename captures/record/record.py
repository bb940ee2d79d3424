#!/usr/bin/env python3
"""Record every capture in captures/ from real WebSocket clients and servers on
loopback, write each capture's ground truth (NAME.truth.json, logged by the
endpoints themselves) and regenerate captures/MANIFEST.md.

Prerequisites (Debian 12, run as root so tcpdump/dumpcap can capture on lo):
    apt-get install -y tcpdump tshark          # tshark brings dumpcap, capinfos
    apt-get install -y chromium                # optional, for chromium.pcap
    node >= 18 with npm, python3 >= 3.10 with venv
    python3 captures/record/record.py --setup  # venv + npm ci into $WSPROBE_REC_DIR

usage:
    python3 captures/record/record.py                 # record everything
    python3 captures/record/record.py demo sll1      # only these (file stems)
    python3 captures/record/record.py --manifest-only

The virtualenv (websockets) and node_modules (ws) live in $WSPROBE_REC_DIR
(default /work/scratch/rec), never in the repository. This script itself
uses only the standard library.
"""

import argparse
import collections
import json
import os
import platform
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURES = os.path.dirname(HERE)
SCRATCH = os.environ.get("WSPROBE_REC_DIR", "/work/scratch/rec")
PY = os.path.join(SCRATCH, "venv", "bin", "python")
NODE_MODULES = os.path.join(SCRATCH, "node_modules")
SCHEMA = "wsprobe-truth/1"


def sh(cmd, **kw):
    print("+", " ".join(map(shlex.quote, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kw)


SETUPS = []  # more setup steps (app_scenarios.py)


def setup():
    for extra in SETUPS:
        extra()
    os.makedirs(SCRATCH, exist_ok=True)
    if not os.path.exists(PY):
        sh([sys.executable, "-m", "venv", os.path.join(SCRATCH, "venv")])
    sh([PY, "-m", "pip", "install", "-q", "-r", os.path.join(HERE, "requirements.txt")])
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, f), os.path.join(SCRATCH, f))
    sh(["npm", "ci", "--no-audit", "--no-fund"], cwd=SCRATCH)


# --------------------------------------------------------------------------
# processes


class Proc:
    """A child process whose stdout lines are collected by a thread."""

    def __init__(self, ctx, argv, name, env=None, new_session=False):
        self.name = name
        self.lines = queue.Queue()
        self.all_lines = []
        self.stderr_path = os.path.join(ctx.tmp, name + ".stderr")
        self.stderr = open(self.stderr_path, "wb")
        e = dict(os.environ, NODE_PATH=NODE_MODULES, PYTHONUNBUFFERED="1")
        e.update(env or {})
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr,
                                  env=e, start_new_session=new_session)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.all_lines.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text, timeout=30):
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"{self.name}: no {text!r} within {timeout}s") from None
            if line is None:
                raise RuntimeError(f"{self.name}: exited before {text!r}: {self.err()}")
            if text in line:
                return line

    def wait(self, timeout=60):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise RuntimeError(f"{self.name}: still running after {timeout}s") from None
        if rc != 0:
            raise RuntimeError(f"{self.name}: exit {rc}: {self.err()}")

    def kill(self, sig=signal.SIGKILL):
        os.kill(self.p.pid, sig)
        self.p.wait()

    def err(self):
        self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace")


class Ctx:
    def __init__(self, spec, tmp):
        self.spec = spec
        self.tmp = tmp
        self.logs = []
        self.commands = []
        self.procs = []
        self.killed = None  # "server" / "client"

    def log(self, name):
        p = os.path.join(self.tmp, name + ".jsonl")
        self.logs.append(p)
        return p

    def _start(self, argv, name, shown, **kw):
        self.commands.append(" ".join(shown))
        pr = Proc(self, argv, name, **kw)
        self.procs.append(pr)
        return pr

    def py(self, script, *args, name):
        log = self.log(name)
        return self._start([PY, os.path.join(HERE, script), *args, "--log", log], name,
                           ["$PY", f"captures/record/{script}", *map(shlex.quote, args), "--log", f"{name}.jsonl"])

    def node(self, script, *args, name):
        log = self.log(name)
        return self._start(["node", os.path.join(HERE, script), *args, "--log", log], name,
                           ["node", f"captures/record/{script}", *map(shlex.quote, args), "--log", f"{name}.jsonl"])

    def server_py(self, *args):
        s = self.py("py_server.py", *args, name="server")
        s.wait_for("READY")
        return s

    def server_node(self, *args):
        s = self.node("node_server.js", *args, name="server")
        s.wait_for("READY")
        return s

    def cleanup(self):
        for pr in self.procs:
            if pr.p.poll() is None:
                try:
                    if pr.name == "chromium":
                        os.killpg(pr.p.pid, signal.SIGKILL)
                    else:
                        pr.p.kill()
                except ProcessLookupError:
                    pass
                pr.p.wait()


# --------------------------------------------------------------------------
# capture tools


class Capture:
    def __init__(self, spec, path, tmp):
        self.spec, self.path = spec, path
        self.errpath = os.path.join(tmp, "capture.stderr")
        bpf = spec["bpf"]
        netns = ["ip", "netns", "exec", spec["netns"]] if spec.get("netns") else []
        if spec["tool"] == "dumpcap":
            self.argv = ["dumpcap", "-i", spec["iface"], "-B", "128", "-f", bpf, "-w", path]
            self.shown = f"dumpcap -i {spec['iface']} -B 128 -f '{bpf}' -w {spec['file']}"
            ready = "Capturing on"
        else:
            extra = ["-y", spec["linktype_opt"]] if spec.get("linktype_opt") else []
            self.argv = [*netns, "tcpdump", "-i", spec["iface"], *extra, "-B", "131072",
                         "--immediate-mode", "-U", "-Z", "root", "-w", path, bpf]
            self.shown = (f"{' '.join(netns) + ' ' if netns else ''}"
                          f"tcpdump -i {spec['iface']} {' '.join(extra) + ' ' if extra else ''}"
                          f"-B 131072 --immediate-mode -U -w {spec['file']} '{bpf}'")
            ready = "listening on"
        self.err = open(self.errpath, "w+b")
        self.p = subprocess.Popen(self.argv, stderr=self.err, stdout=subprocess.DEVNULL)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            with open(self.errpath, "rb") as f:
                if ready.encode() in f.read():
                    break
            if self.p.poll() is not None:
                raise RuntimeError("capture tool exited: " + open(self.errpath).read())
            time.sleep(0.05)
        else:
            raise RuntimeError("capture tool not ready")
        time.sleep(0.2)

    def stop(self):
        time.sleep(1.0)  # let the tail (close handshake, FINs) reach the capture
        self.p.send_signal(signal.SIGINT)
        self.p.wait(timeout=20)
        with open(self.errpath, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if self.spec["tool"] == "dumpcap":
            m = re.search(r"received/dropped on interface '[^']*': (\d+)/(\d+)", text)
            captured = int(re.search(r"Packets captured: (\d+)", text).group(1))
            dropped = int(m.group(2))
        else:
            captured = int(re.search(r"(\d+) packets? captured", text).group(1))
            dropped = int(re.search(r"(\d+) packets? dropped by kernel", text).group(1))
        return {"captured": captured, "dropped": dropped, "stderr": text.strip()}


def tool_version(tool):
    if tool == "dumpcap":
        out = subprocess.run(["dumpcap", "--version"], capture_output=True, text=True).stdout
        return out.splitlines()[0].strip()
    out = subprocess.run(["tcpdump", "--version"], capture_output=True, text=True)
    lines = (out.stdout + out.stderr).splitlines()
    return " / ".join(l.strip() for l in lines[:2])


def runtimes():
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    py = subprocess.run([PY, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                        text=True).stdout.strip()
    return {"node": node, "python": py}


# --------------------------------------------------------------------------
# scenarios

SPECS = []


def capture(file, *, ports, title, exercises, expected, iface="lo", tool="tcpdump",
            linktype_opt=None, killed=None, optional=False, keep=True, **hooks):
    """A recorded scenario. keep=False: the recording is only the source of derived captures.
    hooks (findings_scenarios.py): netns (capture inside this network namespace), setup(tmp)
    and teardown() around the capture, postprocess(conns, ctx) on the merged truth, and
    stop_capture_first (the endpoints are killed only after the capture stopped).
    reshape (scenarios_ws.py): `reshape(capture_path, truth, tmp_dir) -> (capture_path, truth)` makes the
    kept capture from the recording (cut, holes punched); its truth keeps the endpoints' logs, says how
    in truth["derived"]["operation"] and marks each message `in_capture`."""
    def deco(fn):
        bpf = " or ".join(f"tcp port {p}" for p in ports)
        SPECS.append(dict(file=file, stem=file.rsplit(".", 1)[0], ports=ports, title=title,
                          exercises=exercises, expected=expected, iface=iface, tool=tool,
                          linktype_opt=linktype_opt, killed=killed, fn=fn, bpf=bpf,
                          optional=optional, keep=keep, **hooks))
        return fn
    return deco


def derived(file, source, *, ports, title, exercises, expected, derive):
    """A capture made from the recording of scenario `source` (a stem) by `derive(src, out, tmp)`,
    which writes `out` and returns the truth's "derived" block; the truth is the source's
    endpoint logs. Recorded (and derived again) whenever its source is."""
    SPECS.append(dict(file=file, stem=file.rsplit(".", 1)[0], ports=ports, title=title,
                      exercises=exercises, expected=expected, source=source, derive=derive))


@capture("demo.pcap", ports=[8765], title="README demo: Python websockets echo, permessage-deflate",
         exercises="permessage-deflate with default settings (context takeover, client_max_window_bits), "
                   "subprotocol `chat`, 10 text/binary messages echoed incl. non-ASCII and an empty text, "
                   "a 3-frame fragmented text message (websockets: send an iterable), a ping with payload "
                   "and its pong, client close 1000 \"bye\" echoed by the server.",
         expected="1 connection, 10 data messages each way (the 3-fragment one goes out as 4 frames, see below), "
                  "1 ping + 1 pong, clean close 1000 \"bye\" both ways.")
def rec_demo(ctx):
    srv = ctx.server_py("echo", "--port", "8765", "--subprotocol", "chat")
    ctx.py("py_client.py", "demo", "--uri", "ws://127.0.0.1:8765/", name="client").wait()
    srv.wait(20)


@capture("node-ws-mix.pcap", ports=[9001], title="Node ws, no compression, all length encodings",
         exercises="Node ws client and server, perMessageDeflate off, subprotocol `wsprobe.test`. Text and binary "
                   "messages of 0, 125, 126, 65535 and 65536 bytes (7-bit, 16-bit and 64-bit lengths) echoed; "
                   "a 1 MiB text message client->server (masked, 64-bit length) answered by a 1 MiB binary "
                   "server->client; a 3-fragment text message (send(..., {fin:false})) with a ping sent between "
                   "fragments 1 and 2 and a 3-byte UTF-8 character split across fragments 1/2; client and server "
                   "pings with payloads and their automatic pongs; client close 1001 \"going away\", echoed.",
         expected="1 connection, clean close 1001 \"going away\" both ways.")
def rec_mix(ctx):
    srv = ctx.server_node("mix", "--port", "9001")
    ctx.node("node_client.js", "mix", "--url", "ws://127.0.0.1:9001/mix", name="client").wait(120)
    srv.wait(20)


@capture("deflate-variants.pcapng", ports=[9021, 9022, 9023], tool="dumpcap",
         title="Node ws permessage-deflate under three configurations",
         exercises="Three connections, one per server port: (a) :9021 context takeover both ways; "
                   "(b) :9022 client_no_context_takeover + server_no_context_takeover; (c) :9023 "
                   "server_max_window_bits=10, client_max_window_bits=9. threshold 0 (every message compressed). "
                   "Each: 20 repetitive JSON ticks client->server each answered by a JSON ack, an empty text "
                   "message echoed (compressed empty payload), a ~200 kB compressible JSON-lines text echoed; "
                   "client close 1000 \"done\". pcapng written by dumpcap.",
         expected="3 connections, 44 data messages each, all compressed (RSV1), clean close 1000.")
def rec_deflate(ctx):
    srv = ctx.server_node("deflate", "--port", "9021", "--conns", "3")
    ctx.node("node_client.js", "deflate", "--url", "ws://127.0.0.1:9021/", name="client").wait(60)
    srv.wait(20)


@capture("close-codes.pcap", ports=[80], title="Five connections ending with different Close frames (port 80)",
         exercises="Python websockets server on port 80, Node ws client, no compression. /auth: server closes "
                   "1008 \"auth failed\"; /crash: server closes 1011 with no reason; /client4000: client closes "
                   "4000 \"au revoir ✓\" (non-ASCII reason); /empty: client sends a Close frame with an empty "
                   "payload (no status; both sides report 1005); /shutdown: server closes 1001 \"shutting down\". "
                   "Every Close is echoed by the peer.",
         expected="5 connections; close codes 1008, 1011, 4000, (none -> 1005), 1001; all clean.")
def rec_close(ctx):
    srv = ctx.server_py("closecodes", "--port", "80", "--conns", "5", "--no-deflate")
    ctx.node("node_client.js", "closecodes", "--url", "ws://127.0.0.1:80", name="client").wait(60)
    srv.wait(20)


@capture("killed-server.pcap", ports=[9003], killed="server",
         title="Server process SIGKILLed mid-connection",
         exercises="Node ws echo server, Python websockets client; three messages echoed, then record.py "
                   "sends SIGKILL to the server process. No Close frame in either direction; the kernel "
                   "closes the server's socket.",
         expected="1 connection, no Close frames, abnormal end (1006), the server side went away first.")
def rec_killed_server(ctx):
    srv = ctx.server_node("echo", "--port", "9003")
    cli = ctx.py("py_client.py", "killedserver", "--uri", "ws://127.0.0.1:9003/", name="client")
    cli.wait_for("EXCHANGED")
    time.sleep(0.3)
    srv.kill(signal.SIGKILL)
    ctx.killed = "server"
    cli.wait(30)


@capture("killed-client.pcap", ports=[9004], killed="client",
         title="Client process SIGKILLed mid-connection",
         exercises="Python websockets echo server, Node ws client; three messages echoed, then record.py "
                   "sends SIGKILL to the client process. No Close frame in either direction.",
         expected="1 connection, no Close frames, abnormal end (1006), the client side went away first.")
def rec_killed_client(ctx):
    srv = ctx.server_py("echo", "--port", "9004")
    cli = ctx.node("node_client.js", "killclient", "--url", "ws://127.0.0.1:9004/", name="client")
    cli.wait_for("EXCHANGED")
    time.sleep(0.3)
    cli.kill(signal.SIGKILL)
    ctx.killed = "client"
    srv.wait(30)


@capture("refused.pcap", ports=[18080, 18081],
         title="Refused upgrades and an HTTP keep-alive request before an upgrade",
         exercises=":18080 Python websockets server whose process_request refuses upgrades with 400, 403 and "
                   "426 (one connection each, Node ws client, response body + Connection: close). :18081 "
                   "Node http server + ws (noServer): a raw-socket client sends GET /health (keep-alive, "
                   "Content-Length body), then on the SAME TCP connection GET /after-health with Upgrade, "
                   "then masked frames (text, binary, a 2-fragment text, ping), close 1000 \"done\".",
         expected="3 refused connections (status 400, 403, 426; no WebSocket frames), 1 connection with one "
                  "plain HTTP exchange followed by a WebSocket session that closes cleanly with 1000.")
def rec_refused(ctx):
    srv = ctx.server_py("refuse", "--port", "18080", "--conns", "3")
    ka = ctx.node("node_server.js", "keepalive", "--port", "18081", name="server-keepalive")
    ka.wait_for("READY")
    ctx.node("node_client.js", "refused", "--url", "ws://127.0.0.1:18080", name="client").wait(30)
    ctx.py("raw_client.py", "--port", "18081", name="client-raw").wait(30)
    srv.wait(20)
    ka.wait(20)


NGINX_NO_UPGRADE = """
daemon off;
master_process off;
error_log {tmp}/nginx-error.log info;
pid {tmp}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/nginx-access.log;
    client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
    server {{
        listen 127.0.0.1:{port};
        location / {{
            # The classic mistake: no `proxy_set_header Upgrade $http_upgrade;` and
            # `proxy_set_header Connection "upgrade";`, so the hop-by-hop upgrade headers are
            # not forwarded.
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
        }}
    }}
}}
"""


def wait_port(port, timeout=10):
    """Waits until something listens on `port`, without connecting (a probe would be captured)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


@capture("proxy-strips-upgrade.pcap", ports=[27000, 27001],
         title="nginx without proxy_set_header Upgrade in front of a WebSocket server",
         exercises="Node ws client -> nginx 1.22 (:27000, `proxy_pass` + `proxy_http_version 1.1` but no "
                   "`proxy_set_header Upgrade`/`Connection`) -> Python websockets server (:27001). nginx "
                   "drops the hop-by-hop `Upgrade` and sends `Connection: close`, so the server sees a GET "
                   "with Sec-WebSocket-Key but no Upgrade and answers 426 Upgrade Required, which nginx "
                   "relays to the client. The server logs the request it refused (no Upgrade header).",
         expected="2 connections, both refused with 426 (no WebSocket frames): client -> nginx (a complete "
                  "upgrade request) and nginx -> server (the same request without `Upgrade: websocket` "
                  "and `Connection: Upgrade`).")
def rec_proxy_strips_upgrade(ctx):
    srv = ctx.server_py("echo", "--port", "27001", "--no-deflate")
    conf = os.path.join(ctx.tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_NO_UPGRADE.format(tmp=ctx.tmp, port=27000, upstream=27001))
    ctx._start(["nginx", "-p", ctx.tmp, "-c", conf], "nginx",
               ["nginx", "-c", "nginx.conf  # see the config in record.py: NGINX_NO_UPGRADE"])
    wait_port(27000)
    ctx.node("node_client.js", "refusedonce", "--url", "ws://127.0.0.1:27000/chat", name="client").wait(30)
    srv.wait(20)


@capture("ping-unanswered.pcap", ports=[9005], title="Pings that never get a pong",
         exercises="Node ws server with autoPong: false; Python websockets client sends one text (echoed), "
                   "two pings with payloads 0.5 s apart (no pong is ever sent), then closes 1000 \"no pong\".",
         expected="1 connection, 2 client pings, 0 pongs, clean close 1000.")
def rec_ping(ctx):
    srv = ctx.server_node("noautopong", "--port", "9005")
    ctx.py("py_client.py", "pingunanswered", "--uri", "ws://127.0.0.1:9005/", name="client").wait(30)
    srv.wait(20)


@capture("ipv6-sll2.pcap", ports=[8766], iface="any", title="IPv6 [::1] exchange, Linux cooked v2 (SLL2)",
         exercises="Python websockets server on ::1 and client, permessage-deflate; recorded with "
                   "`tcpdump -i any` (LINUX_SLL2 link type), IPv6.",
         expected="1 connection, 3 messages each way, clean close 1000 \"done\".")
def rec_ipv6(ctx):
    srv = ctx.server_py("echo", "--host", "::1", "--port", "8766")
    ctx.py("py_client.py", "short", "--uri", "ws://[::1]:8766/short", name="client").wait(30)
    srv.wait(20)


@capture("sll1.pcap", ports=[8767], iface="any", linktype_opt="LINUX_SLL",
         title="Short exchange, Linux cooked v1 (SLL)",
         exercises="Node ws client and server over 127.0.0.1, no compression; recorded with "
                   "`tcpdump -i any -y LINUX_SLL`.",
         expected="1 connection, 2 messages each way, clean close 1000 \"done\".")
def rec_sll1(ctx):
    srv = ctx.server_node("echo", "--port", "8767")
    ctx.node("node_client.js", "short", "--url", "ws://127.0.0.1:8767/", name="client").wait(30)
    srv.wait(20)


@capture("concurrent-50.pcap", ports=[9010], title="50 concurrent connections",
         exercises="Python websockets echo server; one Python process opens 50 connections at once "
                   "(/c/0 .. /c/49; even ones negotiate permessage-deflate, odd ones offer no extension), each "
                   "sends 4 messages (text or binary, 0..4000 bytes, distinct contents), waits for each echo, "
                   "closes 1000 \"done N\". Frames of different connections interleave.",
         expected="50 connections, 8 data messages each, all clean close 1000.")
def rec_concurrent(ctx):
    srv = ctx.server_py("echo", "--port", "9010", "--conns", "50")
    ctx.py("py_client.py", "concurrent", "--uri", "ws://127.0.0.1:9010", "--n", "50", name="client").wait(60)
    srv.wait(20)


@capture("chromium.pcap", ports=[8768], optional=True,
         title="Headless Chromium page talking to a Python websockets server",
         exercises="Headless Chromium loads http://127.0.0.1:8768/ (HTML served by the websockets server's "
                   "process_request; Chromium may also ask for /favicon.ico -> 404), the page opens "
                   "ws://127.0.0.1:8768/ws with permessage-deflate (Chromium's offer, "
                   "client_max_window_bits), sends 7 messages (text, JSON, binary, non-ASCII, 10.8 kB text, "
                   "5000 zero bytes, empty text), waits for each echo, closes 1000 \"page done\". Client truth "
                   "comes from the page's console.log (Chromium --enable-logging=stderr).",
         expected="HTTP-only connection(s) for the page, 1 WebSocket connection, 14 data messages, clean close 1000.")
def rec_chromium(ctx):
    if not shutil.which("chromium"):
        raise SkipCapture("chromium is not installed")
    srv = ctx.server_py("page", "--port", "8768", "--conns", "1")
    udd = tempfile.mkdtemp(prefix="chromium-", dir=ctx.tmp)
    argv = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
            "--disable-default-apps", f"--user-data-dir={udd}", "--enable-logging=stderr", "--v=0",
            "http://127.0.0.1:8768/"]
    shown = [a if not a.startswith("--user-data-dir") else "--user-data-dir=$(mktemp -d)" for a in argv]
    chrome = ctx._start(argv, "chromium", shown, new_session=True)
    srv.wait(60)
    # wait for the page's final log line
    end = time.monotonic() + 10
    while time.monotonic() < end and '"ev":"closed"' not in chrome.err():
        time.sleep(0.1)
    time.sleep(0.3)
    os.killpg(chrome.p.pid, signal.SIGTERM)
    try:
        chrome.p.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(chrome.p.pid, signal.SIGKILL)
        chrome.p.wait()
    ctx.chromium_version = subprocess.run(["chromium", "--version"], capture_output=True,
                                          text=True).stdout.strip()
    impl = "chromium " + re.search(r"[\d.]+", ctx.chromium_version).group(0) + " (page JavaScript WebSocket)"
    page_log = ctx.log("client-page")
    with open(chrome.stderr_path, encoding="utf-8", errors="replace") as f, \
            open(page_log, "w", encoding="utf-8") as out:
        for line in f:
            m = re.search(r'"WSLOG (\{.*\})", source:', line)
            if m:
                e = json.loads(m.group(1))
                e["user_agent"], e["impl"] = e["impl"], impl
                out.write(json.dumps(e, ensure_ascii=False) + "\n")


@capture("server-restart.pcap", ports=[26030, 26443], killed="server",
         title="Server restart: refused attempts, and TLS and plain HTTP beside WebSocket",
         exercises="Python client: (1) a plain TLS exchange (stdlib ssl, SNI `wsprobe.test`, TLS 1.3) with a "
                   "Python TLS server on :26443; (2) GET /health without upgrade (its own connection) to the Node "
                   "http+ws server on :26030; (3) WebSocket /live, two messages echoed, then record.py SIGKILLs "
                   "the server; (4) the client retries every 100 ms and each attempt is refused (SYN answered "
                   "by RST: nothing listens) until record.py starts the server again (0.6 s after the first "
                   "refusal); (5) WebSocket /live again, one message echoed, client close 1000 \"back\".",
         expected="2 WebSocket connections (the first ends 1006 with the server's FIN, the second cleanly "
                  "with 1000 \"back\"), 1 TLS connection with SNI wsprobe.test, 1 HTTP connection without "
                  "upgrade, several refused attempts to 127.0.0.1:26030.")
def rec_restart(ctx):
    cert, key = os.path.join(ctx.tmp, "cert.pem"), os.path.join(ctx.tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=wsprobe.test"],
                   check=True, capture_output=True)
    # The command line in the truth names the files; the process gets their real paths.
    tls = ctx._start([PY, os.path.join(HERE, "tls_server.py"), "--port", "26443", "--cert", cert, "--key", key,
                      "--log", ctx.log("server-tls")], "server-tls",
                     ["$PY", "captures/record/tls_server.py", "--port", "26443", "--cert", "cert.pem",
                      "--key", "key.pem", "--log", "server-tls.jsonl"])
    tls.wait_for("READY")
    srv = ctx.node("node_server.js", "keepalive", "--port", "26030", name="server")
    srv.wait_for("READY")
    cli = ctx.py("py_client.py", "restart", "--uri", "ws://127.0.0.1:26030/live", "--tls-port", "26443",
                 name="client")
    cli.wait_for("EXCHANGED")
    time.sleep(0.2)
    srv.kill(signal.SIGKILL)
    ctx.killed = "server"
    cli.wait_for("REFUSED")
    time.sleep(0.6)
    again = ctx.node("node_server.js", "keepalive", "--port", "26030", name="server-restarted")
    again.wait_for("READY")
    cli.wait(30)
    again.wait(20)
    tls.wait(20)


class SkipCapture(Exception):
    pass


# Scenarios kept in files of their own (each registers with `capture` / `derived`).
sys.dont_write_bytecode = True
import late_data  # noqa: E402

late_data.register(sys.modules[__name__])

# The causes of connections ending that findings explain (idle timeout behind nginx, restart,
# graceful shutdown, heartbeat timeout, unreachable peer, connection lifetime).
import findings_scenarios  # noqa: E402  (captures/record/findings_scenarios.py)

findings_scenarios.register(sys.modules[__name__])

# Fidelity captures cut from or holed in their recordings (a start inside a 1 MiB frame, deflate with
# a lost segment, a deflate mid-stream start).
import scenarios_ws  # noqa: E402  (captures/record/scenarios_ws.py)

scenarios_ws.register(sys.modules[__name__])


# --------------------------------------------------------------------------
# ground truth


def load_events(paths):
    evs = []
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    evs.append(json.loads(line))
    return evs


def split_key(k):
    if k.startswith("["):
        a, p = k[1:].split("]:")
    else:
        a, p = k.rsplit(":", 1)
    return a, int(p)


def close_of(msg):
    if msg is None:
        return None
    b = bytes.fromhex(msg["payload_hex"])
    if not b:
        return {"code": None, "reason": None}
    return {"code": int.from_bytes(b[:2], "big"), "reason": b[2:].decode("utf-8", "replace")}


def merge(evs, spec, killed):
    # The Chromium page does not know its port: attach its events to the one
    # connection the server upgraded.
    ws_keys = [e["conn"] for e in evs if e["ev"] == "open" and e["role"] == "server"]
    for e in evs:
        if e.get("conn") is None:
            if len(set(ws_keys)) != 1:
                raise RuntimeError(f"cannot attach event without connection: {e}")
            e["conn"] = ws_keys[0]

    by_conn = collections.OrderedDict()
    for e in sorted(evs, key=lambda e: e.get("t") or 0):
        by_conn.setdefault(e["conn"], []).append(e)
    # Page events carry no monotonic time: order each one just before the
    # peer's matching reception (it happened before it).
    for k, es in by_conn.items():
        for e in es:
            if e["ev"] == "msg_sent" and not e.get("t"):
                peer = [x for x in es if x["ev"] == "msg_recv" and x["role"] != e["role"]
                        and x["sha256"] == e["sha256"] and x["opcode"] == e["opcode"] and not x.get("_used")]
                if peer:
                    peer[0]["_used"] = True
                    e["t"] = peer[0]["t"] - 1
            if not e.get("t"):
                e["t"] = 0

    conns = []
    for k, es in sorted(by_conn.items(), key=lambda kv: min(x["t"] for x in kv[1] if x["t"]) if any(x["t"] for x in kv[1]) else 0):
        role_evs = {r: [e for e in es if e["role"] == r] for r in ("client", "server")}

        def first(role, *names):
            for e in role_evs[role]:
                if e["ev"] in names:
                    return e
            return None

        copen, sopen = first("client", "open"), first("server", "open")
        cany = first("client", "open", "http", "refused", "connect_refused", "tls")
        sany = first("server", "open", "http", "refused", "tls")
        caddr, cport = ((cany or {}).get("local") or (sany or {}).get("remote") or split_key(k))
        if sany:
            saddr, sport = sany["local"]
        elif cany and cany.get("remote"):
            saddr, sport = cany["remote"]
        else:
            saddr, sport = None, None
        refused = first("server", "refused") or first("client", "refused")

        http = collections.OrderedDict()
        for e in es:
            if e["ev"] == "http":
                h = http.setdefault((e["method"], e["path"]), {
                    "method": e["method"], "path": e["path"], "status": e["status"],
                    "body_length": e["body_length"], "logged_by": []})
                h["logged_by"].append(e["role"])

        observes = {}
        for r in ("client", "server"):
            impl = (role_evs[r][0]["impl"] if role_evs[r] else "") or ""
            observes[r] = {"text", "binary", "close"} if impl.startswith("chromium") else \
                {"text", "binary", "close", "ping", "pong"}
        recv_count = {r: collections.Counter((e["opcode"], e["sha256"]) for e in role_evs[r]
                                             if e["ev"] == "msg_recv") for r in role_evs}
        messages = []
        for e in sorted((e for e in es if e["ev"] == "msg_sent"), key=lambda e: e["t"]):
            peer = "server" if e["role"] == "client" else "client"
            kk = (e["opcode"], e["sha256"])
            if recv_count[peer][kk] > 0:
                recv_count[peer][kk] -= 1
                delivered = True
            elif e["opcode"] in observes[peer] and role_evs[peer]:
                delivered = False
            else:
                delivered = None
            m = {"from": e["role"], "opcode": e["opcode"], "length": e["length"], "sha256": e["sha256"]}
            if e["opcode"] == "text":
                m["text"] = e["text"]
            if e["opcode"] in ("ping", "pong", "close"):
                m["payload_hex"] = e["payload_hex"]
            m["frame_seq"] = e.get("frame_seq")
            m["compressed"] = e.get("compressed")
            m["delivered"] = delivered
            messages.append(m)

        def close_msg(role, ev):
            xs = [e for e in role_evs[role] if e["ev"] == ev and e["opcode"] == "close"]
            return close_of(xs[0]) if xs else None

        def reported(role):
            e = first(role, "closed")
            return e["reported"] if e else None

        close = {
            "client_sent": close_msg("client", "msg_sent"),
            "client_received": close_msg("client", "msg_recv"),
            "server_sent": close_msg("server", "msg_sent"),
            "server_received": close_msg("server", "msg_recv"),
            "client_reported": reported("client"),
            "server_reported": reported("server"),
        }
        clean = all(close[x] is not None
                    for x in ("client_sent", "client_received", "server_sent", "server_received"))
        tls = first("client", "tls") or first("server", "tls")
        if refused:
            end = {"kind": "refused", "killed_side": None, "signal": None, "http_status": refused["status"]}
        elif first("client", "connect_refused"):
            end = {"kind": "connect_refused", "killed_side": None, "signal": None, "http_status": None}
        elif tls:
            end = {"kind": "tls", "killed_side": None, "signal": None, "http_status": None}
        elif not (copen or sopen):
            end = {"kind": "http_only", "killed_side": None, "signal": None, "http_status": None}
        elif clean:
            end = {"kind": "clean", "killed_side": None, "signal": None, "http_status": None}
        elif killed:
            end = {"kind": "killed", "killed_side": killed, "signal": "SIGKILL", "http_status": None}
        else:
            end = {"kind": "abnormal", "killed_side": None, "signal": None, "http_status": None}

        notes = {}
        if tls:
            notes.update(server_name=tls.get("server_name"), tls_version=tls.get("version"))
        app_events = [{x: y for x, y in e.items() if x not in ("ev", "impl", "conn")}
                      for e in es if e["ev"] == "app"]
        for e in es:
            if e["ev"] == "note":
                notes.update({x: y for x, y in e.items() if x not in ("ev", "t", "role", "impl", "conn")})
        hs_ev = copen or sopen
        conns.append({
            "id": len(conns),
            "client": {"addr": caddr, "port": cport,
                       "impl": role_evs["client"][0]["impl"] if role_evs["client"] else None},
            "server": {"addr": saddr, "port": sport,
                       "impl": role_evs["server"][0]["impl"] if role_evs["server"] else None},
            "http": list(http.values()),
            "handshake": {
                "path": (refused or hs_ev or {}).get("path"),
                "status": refused["status"] if refused else (101 if hs_ev else None),
                "subprotocol": {"client": copen.get("subprotocol") if copen else None,
                                "server": sopen.get("subprotocol") if sopen else None},
                "extensions": {"client": copen.get("extensions") if copen else None,
                               "server": sopen.get("extensions") if sopen else None},
            },
            "messages": messages,
            "close": close,
            "end": end,
            "notes": notes,
            **({"app": app_events} if app_events else {}),
        })
    return conns


# --------------------------------------------------------------------------
# checks against tshark (the capture) -- reported in MANIFEST.md, not in truth


def tshark_fields(path, ports, filt, fields):
    argv = ["tshark", "-r", path, "-o", "tcp.reassemble_out_of_order:TRUE"]
    # TLS captures (tls_scenarios.py) have their key log beside them as NAME.keys.
    keys = os.path.splitext(path)[0] + ".keys"
    if os.path.exists(keys):
        argv += ["-o", f"tls.keylog_file:{keys}"]
    for p in ports:
        argv += ["-d", f"tcp.port=={p},{'tls' if os.path.exists(keys) else 'http'}"]
    argv += ["-Y", filt, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        argv += ["-e", f]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]


OPC = {"0": "cont", "1": "text", "2": "binary", "8": "close", "9": "ping", "10": "pong"}


def analyse(path, ports, truth):
    ports = set(ports)
    side = lambda sp: "server" if int(sp) in ports else "client"  # noqa: E731
    seen = collections.Counter()
    for sp, dp, ops in tshark_fields(path, ports, "websocket", ["tcp.srcport", "tcp.dstport", "websocket.opcode"]):
        for op in ops.split(","):
            if op:
                seen[(side(sp), OPC.get(op, op))] += 1
    want = collections.Counter()
    for c in truth["connections"]:
        for m in c["messages"]:
            n = len(m["frame_seq"]) if m.get("frame_seq") else 1
            want[(m["from"], m["opcode"])] += 1
            if n > 1:
                want[(m["from"], "cont")] += n - 1
    finrst = collections.Counter()
    for sp, dp, fin, rst in tshark_fields(path, ports, "tcp.flags.fin==1 || tcp.flags.reset==1",
                                          ["tcp.srcport", "tcp.dstport", "tcp.flags.fin", "tcp.flags.reset"]):
        if fin in ("1", "True"):
            finrst[(side(sp), "FIN")] += 1
        if rst in ("1", "True"):
            finrst[(side(sp), "RST")] += 1
    statuses = [r[0] for r in tshark_fields(path, ports, "http.response", ["http.response.code"])]
    streams = {r[0] for r in tshark_fields(path, ports, "tcp", ["tcp.stream"])}
    retrans = [int(r[0]) for r in tshark_fields(path, ports, "tcp.analysis.retransmission", ["frame.number"])]
    info = subprocess.run(["capinfos", "-M", "-c", "-E", "-T", path], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    hdr, vals = info[0].split("\t"), info[1].split("\t")
    ci = dict(zip(hdr, vals))
    return {
        "tshark_frames": {f"{a}:{b}": n for (a, b), n in sorted(seen.items())},
        "truth_frames": {f"{a}:{b}": n for (a, b), n in sorted(want.items())},
        "frames_match": seen == want,
        "fin_rst": {f"{a}:{b}": n for (a, b), n in sorted(finrst.items())},
        "http_statuses": statuses,
        "tcp_connections": len(streams),
        "retransmissions": retrans,
        "packets": int(ci.get("Number of packets", "0").strip()),
        "encapsulation": ci.get("File encapsulation", "").strip(),
        "bytes": os.path.getsize(path),
    }


# --------------------------------------------------------------------------


def dumps(obj, ind=0):
    """JSON with flat objects/lists (scalars only inside) on one line."""
    def flat(o):
        if isinstance(o, dict):
            return all(not isinstance(v, (dict, list)) or (isinstance(v, list) and flat(v))
                       for v in o.values())
        if isinstance(o, list):
            return all(not isinstance(v, (dict, list)) for v in o)
        return True
    long = len(json.dumps(obj, ensure_ascii=False)) > 200
    if flat(obj) and not (long and (ind < 2 or (isinstance(obj, list) and any(isinstance(v, str) for v in obj)))):
        return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
    pad, pad1 = "  " * ind, "  " * (ind + 1)
    if isinstance(obj, dict):
        items = [f"{pad1}{json.dumps(k)}: {dumps(v, ind + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}" if items else "{}"
    items = [pad1 + dumps(v, ind + 1) for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + pad + "]" if items else "[]"


def record(spec, attempts=3):
    out = os.path.join(CAPTURES, spec["file"])
    last = None
    for attempt in range(1, attempts + 1):
        tmp = tempfile.mkdtemp(prefix=spec["stem"] + "-", dir=os.path.join(SCRATCH, "logs"))
        ctx = Ctx(spec, tmp)
        tmpcap = os.path.join(tmp, spec["file"])
        if spec.get("setup"):
            spec["setup"](tmp)
        try:
            cap = Capture(spec, tmpcap, tmp)
            try:
                spec["fn"](ctx)
            except SkipCapture:
                cap.p.send_signal(signal.SIGINT)
                cap.p.wait()
                raise
            except Exception as e:  # noqa: BLE001
                last = e
                print(f"  attempt {attempt}: scenario failed: {e}", flush=True)
                ctx.cleanup()
                cap.stop()
                continue
            finally:
                if not spec.get("stop_capture_first"):
                    ctx.cleanup()
            stats = cap.stop()
            ctx.cleanup()
        finally:
            if spec.get("teardown"):
                spec["teardown"]()
        if stats["dropped"] != 0:
            last = RuntimeError(f"{stats['dropped']} packets dropped by kernel")
            print(f"  attempt {attempt}: {last}; re-recording", flush=True)
            continue
        evs = load_events(ctx.logs)
        conns = merge(evs, spec, ctx.killed)
        if spec.get("postprocess"):
            conns = spec["postprocess"](conns, ctx)
        truth = {
            "schema": SCHEMA,
            "capture": spec["file"],
            "recording": {
                "tool": tool_version(spec["tool"]),
                "command": cap.shown,
                "interface": spec["iface"],
                "server_ports": spec["ports"],
                "packets_captured": stats["captured"],
                "dropped_by_kernel": stats["dropped"],
                "kernel": platform.release(),
                "runtimes": runtimes(),
                "endpoint_commands": ctx.commands,
                "browser": getattr(ctx, "chromium_version", None),
            },
            "connections": conns,
        }
        if spec.get("post"):  # TLS scenarios: key logs, derived captures, TLS truth
            spec["post"](ctx, tmpcap, truth)
        if getattr(ctx, "incident", None):
            # Findings captures: the cause, as the endpoints and record.py logged it.
            truth["incident"] = ctx.incident
        if spec.get("reshape"):
            tmpcap, truth = spec["reshape"](tmpcap, truth, tmp)
        check = analyse(tmpcap, spec["ports"], truth)
        if not check["frames_match"] and not truth.get("derived"):
            print("  WARNING: tshark frame counts differ from the truth:",
                  check["tshark_frames"], check["truth_frames"], flush=True)
        if spec.get("keep", True):
            shutil.copyfile(tmpcap, out)
            with open(os.path.join(CAPTURES, spec["stem"] + ".truth.json"), "w", encoding="utf-8") as f:
                f.write(dumps(truth) + "\n")
        print(f"  ok: {stats['captured']} packets, 0 dropped, {check['bytes']} bytes, "
              f"{len(conns)} connections", flush=True)
        for child in (s for s in SPECS if s.get("source") == spec["stem"]):
            print(f"== {child['file']} (derived from {spec['file']})", flush=True)
            child_out = os.path.join(CAPTURES, child["file"])
            info = child["derive"](tmpcap, child_out, tmp)
            child_truth = dict(truth, capture=child["file"], derived=info)
            with open(os.path.join(CAPTURES, child["stem"] + ".truth.json"), "w", encoding="utf-8") as f:
                f.write(dumps(child_truth) + "\n")
            print(f"  ok: {os.path.getsize(child_out)} bytes; {info['how']}", flush=True)
        return
    raise RuntimeError(f"{spec['file']}: failed after {attempts} attempts: {last}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="*", help="capture stems to record (default: all)")
    ap.add_argument("--setup", action="store_true", help="create the venv and node_modules, then exit")
    ap.add_argument("--manifest-only", action="store_true")
    args = ap.parse_args()
    import tls_scenarios  # noqa: E402  (captures/record/tls_scenarios.py: the wss captures)
    tls_scenarios.register(sys.modules[__name__])
    if args.setup:
        setup()
        return
    if not args.manifest_only:
        if not os.path.exists(PY) or not os.path.isdir(os.path.join(NODE_MODULES, "ws")):
            sys.exit(f"missing {PY} or {NODE_MODULES}/ws: run `{sys.argv[0]} --setup` first")
        if os.geteuid() != 0:
            sys.exit("run as root (capturing on lo)")
        os.makedirs(os.path.join(SCRATCH, "logs"), exist_ok=True)
        chosen = {s["stem"] for s in SPECS if not args.names or s["stem"] in args.names or s["file"] in args.names}
        # A derived capture is made by recording its source.
        chosen = {next((s["source"] for s in SPECS if s["stem"] == c and s.get("source")), c) for c in chosen}
        specs = [s for s in SPECS if s["stem"] in chosen and not s.get("source")]
        for spec in specs:
            print(f"== {spec['file']}", flush=True)
            try:
                record(spec)
            except SkipCapture as e:
                print(f"  skipped: {e}", flush=True)
    import manifest  # noqa: E402  (captures/record/manifest.py)
    manifest.write(SPECS, CAPTURES, analyse)


if __name__ == "__main__":
    sys.dont_write_bytecode = True
    sys.path.insert(0, HERE)
    sys.modules["record"] = sys.modules["__main__"]
    import app_scenarios  # noqa: E402,F401  (registers the application-protocol captures)
    main()
