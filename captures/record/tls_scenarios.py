"""The wss:// / TLS captures (issue 12), registered into record.py's scenario list.

Each capture NAME comes with NAME.keys, the NSS key log its endpoints wrote, so that both
wsprobe (`--keylog`) and tshark (`-o tls.keylog_file:`) can decrypt it. Certificates are made
at record time (self-signed, P-256). Beside the usual message truth (wslog), the truth file
has `tls`: per connection what the endpoints report about TLS (version, cipher, ALPN, resumed)
and the SHA-256 + length of every plaintext byte each side wrote into TLS and got out of it
(HTTP upgrade included), taken at the endpoint's TLS socket. The OpenSSL captures have no
WebSocket: their truth is the exact lines each side sent and received.

Derived files (made from a recording, documented in MANIFEST.md):
  wss-dsb.pcapng               wss-py-tls13.pcap with its key log embedded as a pcapng
                               Decryption Secrets Block (editcap --inject-secrets)
  wss-node-suites.partial.keys the key log without the second connection's secrets
  tls-openssl-resume.full-only.keys  the key log without the resumed TLS 1.2 connections'
                               CLIENT_RANDOM lines (their keys come from the earlier sessions)
"""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CAPTURES = os.path.dirname(HERE)

rec = None  # record.py, set by register()


def make_cert(ctx):
    cert, key = os.path.join(ctx.tmp, "cert.pem"), os.path.join(ctx.tmp, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-days", "30", "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def keys_path(ctx):
    return os.path.join(ctx.tmp, "keys.log")


def tls_py(ctx, *args, name):
    log = ctx.log(name)
    shown = ["$PY", "captures/record/tls_py.py", *args, "--log", f"{name}.jsonl"]
    shown = [re.sub(r"^/.*/(cert|key|keys)\.(pem|log)$", r"\1.\2", a) for a in shown]
    return ctx._start([rec.PY, os.path.join(HERE, "tls_py.py"), *args, "--log", log], name, shown)


def tls_node(ctx, *args, name, node_flags=()):
    log = ctx.log(name)
    shown = ["node", *node_flags, "captures/record/tls_node.js", *args, "--log", f"{name}.jsonl"]
    shown = [re.sub(r"/[^ =]*/(cert|key|keys)\.(pem|log)", r"\1.\2", a) for a in shown]
    return ctx._start(["node", *node_flags, os.path.join(HERE, "tls_node.js"), *args, "--log", log], name, shown)


class Ossl:
    """An openssl s_server/s_client with its stdin as a pipe (record.Proc has none)."""

    def __init__(self, ctx, argv, name):
        self.name = name
        self.lines = queue.Queue()
        self.all_lines = []
        self.stderr_path = os.path.join(ctx.tmp, name + ".stderr")
        self.stderr = open(self.stderr_path, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        threading.Thread(target=self._read, daemon=True).start()
        ctx.procs.append(self)
        ctx.commands.append(" ".join(re.sub(r"^/.*/", "", a) for a in argv))

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.all_lines.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text, timeout=20):
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

    def send(self, text, pause=0.3):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()
        time.sleep(pause)

    def close_stdin(self):
        self.p.stdin.close()

    def wait(self, timeout=20):
        self.p.wait(timeout=timeout)

    def err(self):
        self.stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace")


def randoms_of(path):
    """Client randoms of a key log, in order of first appearance."""
    seen = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[1] not in seen:
                seen.append(parts[1])
    return seen


def keep_lines(src, dst, drop):
    with open(src) as f, open(dst, "w") as out:
        for line in f:
            if not drop(line.split()):
                out.write(line)


def stream_truth(truth):
    """Per connection: the plaintext-stream notes (and TLS facts) the endpoints logged."""
    out = []
    for c in truth["connections"]:
        n = c.get("notes", {})
        out.append({
            "client_port": c["client"]["port"],
            "version": n.get("client_tls_version") or n.get("server_tls_version"),
            "cipher": n.get("client_tls_cipher") or n.get("server_tls_cipher"),
            "alpn": n.get("client_tls_alpn") or n.get("server_tls_alpn"),
            "plaintext": {
                side: {"bytes": n.get(f"{who}_plaintext_{way}_bytes"),
                       "sha256": n.get(f"{who}_plaintext_{way}_sha256"),
                       "logged_by": who}
                for side, who, way in _stream_sources(n)
            },
        })
    return out


def _stream_sources(n):
    # Client->server bytes: what the client wrote (else what the server received), and so on.
    res = []
    for side, pairs in (("client", (("client", "sent"), ("server", "received"))),
                        ("server", (("server", "sent"), ("client", "received")))):
        for who, way in pairs:
            if n.get(f"{who}_plaintext_{way}_sha256"):
                res.append((side, who, way))
                break
    return res


def save_keys(ctx, tmpcap, extra=()):
    """NAME.keys next to the temporary capture (for the tshark check) and in captures/."""
    stem = os.path.splitext(tmpcap)[0]
    shutil.copyfile(keys_path(ctx), stem + ".keys")
    shutil.copyfile(keys_path(ctx), os.path.join(CAPTURES, os.path.basename(stem) + ".keys"))
    for name, path in extra:
        shutil.copyfile(path, os.path.join(CAPTURES, name))


# ---- scenarios ----------------------------------------------------------------------------


def rec_py13(ctx):
    cert, key = make_cert(ctx)
    srv = tls_py(ctx, "server", "--port", "20443", "--cert", cert, "--key", key, "--conns", "1", name="server")
    srv.wait_for("READY")
    tls_py(ctx, "client", "--uri", "wss://127.0.0.1:20443", "--cafile", cert, "--keylog", keys_path(ctx),
           name="client").wait(60)
    srv.wait(20)


def post_py13(ctx, tmpcap, truth):
    save_keys(ctx, tmpcap)
    truth["tls"] = stream_truth(truth)
    # The DSB copy: the same packets with the key log inside.
    dsb = os.path.join(CAPTURES, "wss-dsb.pcapng")
    subprocess.run(["editcap", "--inject-secrets", f"tls,{keys_path(ctx)}", tmpcap, dsb], check=True)
    truth["derived_files"] = {"wss-dsb.pcapng": "this capture with NAME.keys embedded as a pcapng Decryption "
                                          "Secrets Block: `editcap --inject-secrets tls,wss-py-tls13.keys "
                                          "wss-py-tls13.pcap wss-dsb.pcapng`"}


def rec_py12(ctx):
    cert, key = make_cert(ctx)
    srv = tls_py(ctx, "server", "--port", "20444", "--cert", cert, "--key", key, "--conns", "3", "--tls12",
                 name="server")
    srv.wait_for("READY")
    tls_py(ctx, "client", "--uri", "wss://127.0.0.1:20444", "--cafile", cert, "--keylog", keys_path(ctx),
           "--tls12", "--big", "20000", "--ciphers", "ECDHE-ECDSA-AES256-GCM-SHA384", "--ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256",
           "--ciphers", "ECDHE-ECDSA-CHACHA20-POLY1305", name="client").wait(60)
    srv.wait(20)


def post_streams(ctx, tmpcap, truth):
    save_keys(ctx, tmpcap)
    truth["tls"] = stream_truth(truth)


def rec_node(ctx):
    cert, key = make_cert(ctx)
    srv = tls_node(ctx, "server", "--port", "20445", "--cert", cert, "--key", key, "--conns", "3", name="server")
    srv.wait_for("READY")
    tls_node(ctx, "client", "--url", "wss://localhost:20445", "--ca", cert, "--suites",
             "TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256,TLS_AES_128_GCM_SHA256",
             name="client", node_flags=(f"--tls-keylog={keys_path(ctx)}",)).wait(60)
    srv.wait(20)


def post_node(ctx, tmpcap, truth):
    randoms = randoms_of(keys_path(ctx))
    partial = os.path.join(ctx.tmp, "partial.keys")
    keep_lines(keys_path(ctx), partial, lambda f: len(f) == 3 and f[1] == randoms[1])
    save_keys(ctx, tmpcap, extra=[("wss-node-suites.partial.keys", partial)])
    truth["tls"] = stream_truth(truth)
    truth["derived_files"] = {"wss-node-suites.partial.keys": f"NAME.keys without the lines of client random "
                                                        f"{randoms[1]} (the second connection)"}


def rec_chromium(ctx):
    if not shutil.which("chromium"):
        raise rec.SkipCapture("chromium is not installed")
    cert, key = make_cert(ctx)
    spki = subprocess.run(f"openssl x509 -in {cert} -pubkey -noout | openssl pkey -pubin -outform der | "
                          "openssl dgst -sha256 -binary | base64", shell=True, check=True,
                          capture_output=True, text=True).stdout.strip()
    srv = tls_py(ctx, "server", "--port", "20446", "--cert", cert, "--key", key, "--conns", "1", "--page",
                 name="server")
    srv.wait_for("READY")
    udd = tempfile.mkdtemp(prefix="chromium-", dir=ctx.tmp)
    argv = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-extensions", "--disable-default-apps", f"--user-data-dir={udd}",
            f"--ignore-certificate-errors-spki-list={spki}", "--enable-logging=stderr", "--v=0",
            "https://127.0.0.1:20446/"]
    shown = ["SSLKEYLOGFILE=keys.log", *[a if not a.startswith("--user-data-dir") else "--user-data-dir=$(mktemp -d)"
                                         for a in argv]]
    chrome = ctx._start(argv, "chromium", shown, env={"SSLKEYLOGFILE": keys_path(ctx)}, new_session=True)
    srv.wait(60)
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
    ctx.chromium_version = subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout.strip()
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


def ossl_server(ctx, port, cert, key, *extra, naccept=1):
    argv = ["openssl", "s_server", "-accept", str(port), "-cert", cert, "-key", key, "-naccept", str(naccept),
            *extra]
    s = Ossl(ctx, argv, "s_server")
    s.wait_for("ACCEPT")
    return s


def rec_hrr_keyupdate(ctx):
    cert, key = make_cert(ctx)
    srv = ossl_server(ctx, 20447, cert, key, "-tls1_3", "-groups", "P-384")
    cli = Ossl(ctx, ["openssl", "s_client", "-connect", "127.0.0.1:20447", "-tls1_3", "-keylogfile",
                     keys_path(ctx), "-CAfile", cert], "s_client")
    cli.wait_for("Verify return code")
    time.sleep(0.3)
    cli.send("hello from s_client\n")
    cli.send("k\n")  # a line of just "k": s_client sends a KeyUpdate (update_not_requested)
    cli.send("after the client key update\n")
    srv.send("server says hello\n")
    srv.send("k\n")
    srv.send("after the server key update\n")
    cli.close_stdin()  # EOF: s_client sends close_notify and exits
    cli.wait()
    srv.wait()
    ctx.ossl = {"client_sent": "hello from s_client\nafter the client key update\n",
                "server_sent": "server says hello\nafter the server key update\n",
                "client_stdout": "\n".join(cli.all_lines), "server_stdout": "\n".join(srv.all_lines)}


def post_ossl(ctx, tmpcap, truth):
    save_keys(ctx, tmpcap)
    o = ctx.ossl
    for who, other in (("client", "server"), ("server", "client")):
        sent = o[f"{who}_sent"]
        if any(line not in o[f"{other}_stdout"] for line in sent.splitlines()):
            raise RuntimeError(f"{other} did not print what {who} sent: {o[f'{other}_stdout'][-500:]}")
    truth["tls"] = [{"plaintext_text": {"client": o["client_sent"], "server": o["server_sent"]},
                     "key_updates": {"client": 1, "server": 1}, "hello_retry_request": True,
                     "groups": "client offers X25519 first; s_server accepts only P-384"}]


RESUME_RUNS = [
    # (label, protocol flag, session flags, line sent)
    ("tls12-full-session-id", "-tls1_2", ["-no_ticket", "-sess_out", "s12.pem"], "first TLS 1.2 session\n"),
    ("tls12-resumed-session-id", "-tls1_2", ["-no_ticket", "-sess_in", "s12.pem"], "resumed by session id\n"),
    ("tls12-full-ticket", "-tls1_2", ["-sess_out", "t12.pem"], "first TLS 1.2 session with a ticket\n"),
    ("tls12-resumed-ticket", "-tls1_2", ["-sess_in", "t12.pem"], "resumed by ticket\n"),
    ("tls13-full", "-tls1_3", ["-sess_out", "s13.pem"], "first TLS 1.3 session\n"),
    ("tls13-resumed-psk", "-tls1_3", ["-sess_in", "s13.pem"], "resumed by PSK\n"),
]


def rec_resume(ctx):
    cert, key = make_cert(ctx)
    srv = ossl_server(ctx, 20448, cert, key, naccept=len(RESUME_RUNS))
    runs = []
    for label, proto, sess, line in RESUME_RUNS:
        sess = [os.path.join(ctx.tmp, a) if a.endswith(".pem") else a for a in sess]
        before = randoms_of(keys_path(ctx)) if os.path.exists(keys_path(ctx)) else []
        cli = Ossl(ctx, ["openssl", "s_client", "-connect", "127.0.0.1:20448", proto, *sess, "-keylogfile",
                         keys_path(ctx), "-CAfile", cert], "s_client-" + label)
        cli.wait_for("Verify return code")
        time.sleep(0.4)  # TLS 1.3: let the tickets arrive before the session is saved
        cli.send(line)
        cli.close_stdin()
        cli.wait()
        after = randoms_of(keys_path(ctx))
        out = "\n".join(cli.all_lines)
        reused = "Reused, TLSv1" in out or "Reused," in out
        runs.append({"label": label, "client_random": after[len(before)], "sent": line, "reused": reused})
        time.sleep(0.2)
    srv.wait()
    server_out = "\n".join(srv.all_lines)
    for r in runs:
        if r["sent"].strip() not in server_out:
            raise RuntimeError(f"s_server did not print {r['sent']!r}")
        if r["label"].split("-")[1] == "resumed" and not r["reused"]:
            raise RuntimeError(f"{r['label']}: s_client did not report a reused session")
    ctx.runs = runs


def post_resume(ctx, tmpcap, truth):
    full_only = os.path.join(ctx.tmp, "full-only.keys")
    dropped = {r["client_random"] for r in ctx.runs if r["label"].startswith("tls12-resumed")}
    keep_lines(keys_path(ctx), full_only, lambda f: len(f) == 3 and f[0] == "CLIENT_RANDOM" and f[1] in dropped)
    save_keys(ctx, tmpcap, extra=[("tls-openssl-resume.full-only.keys", full_only)])
    truth["tls"] = ctx.runs
    truth["derived_files"] = {"tls-openssl-resume.full-only.keys": "NAME.keys without the CLIENT_RANDOM lines of the "
                                                             "two resumed TLS 1.2 connections"}


# Not 2 s: idle-timeout-nginx.pcap (ws://) has that, and analysed together the two would be one
# finding.
NGINX_TLS_TIMEOUT_S = 3.0
NGINX_TLS_CONF = """worker_processes 1;
daemon off;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
  log_format timing '$msec $remote_addr:$remote_port "$request" $status $request_time $upstream_addr';
  access_log {prefix}/access.log timing;
  client_body_temp_path {prefix}/tmp-body;
  proxy_temp_path {prefix}/tmp-proxy;
  fastcgi_temp_path {prefix}/tmp-fastcgi;
  uwsgi_temp_path {prefix}/tmp-uwsgi;
  scgi_temp_path {prefix}/tmp-scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Client-Port $remote_port;
      proxy_read_timeout {timeout}s;
    }}
  }}
}}
"""


def findings_py(ctx, script, *args, name):
    log = ctx.log(name)
    shown = ["$PY", f"captures/record/{script}", *args, "--log", f"{name}.jsonl"]
    shown = [re.sub(r"^/.*/(cert|key|keys)\.(pem|log)$", r"\1.\2", a) for a in shown]
    return ctx._start([rec.PY, os.path.join(HERE, script), *args, "--log", log], name, shown)


def wait_listening(port, timeout=10.0):
    """Waits until something listens on 127.0.0.1:port without connecting (a probe would be a
    connection of its own in the capture)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["ss", "-Hltn", f"src 127.0.0.1:{port}"], capture_output=True, text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def rec_nginx_idle_tls(ctx):
    if not shutil.which("nginx"):
        raise rec.SkipCapture("nginx is not installed (apt-get install nginx-light)")
    cert, key = make_cert(ctx)
    prefix = os.path.join(ctx.tmp, "nginx")
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(NGINX_TLS_CONF.format(prefix=prefix, port=20450, upstream=20451, cert=cert, key=key,
                                      timeout=f"{NGINX_TLS_TIMEOUT_S:g}"))
    upstream = findings_py(ctx, "findings_server.py", "echo", "--port", "20451", "--conns", "8", name="server")
    upstream.wait_for("READY")
    nginx = ctx._start(["nginx", "-c", conf, "-p", prefix], "nginx",
                       ["nginx", "-c", "nginx.conf", "-p", "$PREFIX",
                        f"# listen 20450 ssl, proxy_read_timeout {NGINX_TLS_TIMEOUT_S:g}s, proxy_pass :20451"])
    wait_listening(20450)
    tls = ["--cafile", cert, "--keylog", keys_path(ctx)]
    # Three silent clients over TLS 1.3 (close_notify only inferred from record sizes), two over
    # TLS 1.2 (alert records visible).
    silent = findings_py(ctx, "findings_client.py", "silent", "--uri", "wss://127.0.0.1:20450", "--n", "3",
                         "--stagger", "0.3", *tls, name="client-silent")
    silent12 = findings_py(ctx, "findings_client.py", "silent", "--uri", "wss://127.0.0.1:20450", "--n", "2",
                           "--first", "3", "--stagger", "0.3", "--tls-max", "1.2", *tls, name="client-silent-tls12")
    pinging = findings_py(ctx, "findings_client.py", "pinging", "--uri", "wss://127.0.0.1:20450", "--n", "3",
                          "--stagger", "0.3", "--ping-interval", "0.5", "--stay", "5", *tls, name="client-pinging")
    silent.wait(30)
    silent12.wait(30)
    pinging.wait(30)
    upstream.wait(20)
    nginx.p.send_signal(signal.SIGQUIT)
    nginx.p.wait(10)
    with open(os.path.join(prefix, "error.log"), encoding="utf-8") as f:
        timed_out = re.findall(r'upstream timed out .* while proxying upgraded connection.*request: "GET (\S+)', f.read())
    access = []
    with open(os.path.join(prefix, "access.log"), encoding="utf-8") as f:
        for line in f:
            m = re.match(r'(\S+) (\S+):(\d+) "GET (\S+) [^"]*" (\d+) (\S+) (\S+)', line)
            if m:
                access.append({"wall_end": float(m.group(1)), "client_port": int(m.group(3)),
                               "path": m.group(4), "status": int(m.group(5)),
                               "request_time": float(m.group(6)), "upstream": m.group(7),
                               "timed_out": m.group(4) in timed_out})
    version = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    ctx.nginx_version = version.split("/")[-1]
    ctx.incident = {
        "cause": "idle_timeout",
        "expected": {"timeout_s": NGINX_TLS_TIMEOUT_S, "connections": 5, "proxy_legs": 0},
        "nginx": {"version": version, "proxy_read_timeout_s": NGINX_TLS_TIMEOUT_S, "tls_termination": True,
                  "timed_out": timed_out, "access_log": access},
        "events": [{"wall": a["wall_end"], "what": f"nginx ended {a['path']} after {a['request_time']} s"
                    + (" (upstream timed out)" if a["timed_out"] else "")} for a in access],
    }


def fronts_only(conns, ctx):
    """Only the TLS leg (client <-> nginx) is captured. nginx relays the upgraded bytes, so the
    front leg carries the backend's messages too: copy them from the backend's log (linked by the
    X-Client-Port header nginx sent upstream), then drop the backend legs."""
    version = getattr(ctx, "nginx_version", "")
    fronts = {c["client"]["port"]: c for c in conns if c["client"]["impl"] and not c["server"]["impl"]}
    timed_out = set(ctx.incident["nginx"]["timed_out"])
    for back in [c for c in conns if c["server"]["impl"] and not c["client"]["impl"]]:
        front = fronts.get(back["notes"].get("proxied_client_port"))
        if front is None:
            continue
        front["messages"] = [m for m in front["messages"] if m["from"] == "client"] + \
                            [m for m in back["messages"] if m["from"] == "server"]
        front["server"]["impl"] = f"nginx {version} (TLS termination) relaying {back['server']['impl']}"
        for k in ("server_sent", "server_received"):
            front["close"][k] = back["close"][k]
        front["notes"]["relayed_by"] = "nginx"
        front["notes"]["nginx_upstream_timed_out"] = back["handshake"]["path"] in timed_out
        full = all(front["close"][k] is not None for k in
                   ("client_sent", "client_received", "server_sent", "server_received"))
        front["end"]["kind"] = "clean" if full else "abnormal"
    kept = sorted(fronts.values(), key=lambda c: c["id"])
    for i, c in enumerate(kept):
        c["id"] = i
    return kept


SCENARIOS = [
    (rec_py13, post_py13, dict(
        file="wss-py-tls13.pcap", ports=[20443], title="Python websockets over TLS 1.3 (wss), with its key log",
        exercises="Python websockets client and server with ssl (OpenSSL 3.0 defaults: TLS 1.3, "
                  "TLS_AES_256_GCM_SHA384, X25519), ALPN http/1.1, permessage-deflate. 7 messages echoed (texts, "
                  "a 70000-byte binary that spans many TLS records, an empty binary), a ping, close 1000 \"bye\". "
                  "The client wrote wss-py-tls13.keys (SSLContext.keylog_filename). Both endpoints logged the "
                  "SHA-256 of their TLS plaintext streams.",
        expected="1 TLS 1.3 connection; decrypted with the key log: 7 data messages each way, clean close 1000.")),
    (rec_py12, post_streams, dict(
        file="wss-py-tls12.pcap", ports=[20444], title="Python websockets over TLS 1.2, three AEAD suites",
        exercises="As wss-py-tls13 (with a 20000-byte binary) but maximum_version TLS 1.2 and one connection per suite: "
                  "ECDHE-ECDSA-AES256-GCM-SHA384 (SHA-384 PRF), ECDHE-ECDSA-AES128-GCM-SHA256, "
                  "ECDHE-ECDSA-CHACHA20-POLY1305. Even-numbered connections negotiate permessage-deflate.",
        expected="3 TLS 1.2 connections (CLIENT_RANDOM key log), each 7 data messages each way, clean close.")),
    (rec_node, post_node, dict(
        file="wss-node-suites.pcap", ports=[20445], title="Node ws over TLS 1.3 with forced cipher suites",
        exercises="Node https + ws server, ws client with `ciphers` forcing one TLS 1.3 suite per connection: "
                  "TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256 (node "
                  "--tls-keylog). SNI localhost. 3 messages echoed each (one 20000-byte binary), close 1000. "
                  "wss-node-suites.partial.keys lacks the second connection's secrets.",
        expected="3 TLS 1.3 connections with the three suites; all decrypted with the full key log; with the "
                 "partial one the second is reported without keys (tls_no_key).")),
    (rec_chromium, post_streams, dict(
        file="wss-chromium.pcap", ports=[20446], optional=True,
        title="Headless Chromium over https/wss with SSLKEYLOGFILE",
        exercises="Headless Chromium (SSLKEYLOGFILE, --ignore-certificate-errors-spki-list) loads "
                  "https://127.0.0.1:20446/ from a Python websockets server with TLS; the page opens "
                  "wss://127.0.0.1:20446/ws with permessage-deflate, sends 7 messages and closes 1000 "
                  "\"page done\". The server logged its TLS plaintext streams.",
        expected="HTTPS page connection(s) and 1 WebSocket connection, all TLS 1.3; 14 data messages, clean close.")),
    (rec_hrr_keyupdate, post_ossl, dict(
        file="tls-openssl-hrr-keyupdate.pcap", ports=[20447],
        title="OpenSSL s_client/s_server: HelloRetryRequest and KeyUpdate both ways",
        exercises="s_server -tls1_3 -groups P-384 forces a HelloRetryRequest (s_client's first key share is "
                  "X25519); then each side sends a line, a KeyUpdate (`k`), another line; s_client sends "
                  "close_notify at EOF. Not WebSocket: the truth is the lines each side sent.",
        expected="1 TLS 1.3 connection with HRR, one KeyUpdate per side, 2 lines each way decrypted.")),
    (rec_nginx_idle_tls, post_streams, dict(
        file="wss-idle-timeout-nginx.pcap", ports=[20450],
        title="nginx terminating TLS cuts silent wss connections at proxy_read_timeout",
        exercises="nginx (own configuration and prefix) terminates TLS on :20450 (TLS 1.2 and 1.3, self-signed "
                  "P-256 certificate) and proxies to a Python websockets echo server on :20451 with "
                  f"proxy_read_timeout {NGINX_TLS_TIMEOUT_S:g}s. Five Python websockets clients (wss, no ALPN; three "
                  "over TLS 1.3, two capped at TLS 1.2) exchange one message and fall silent: nginx ends each "
                  f"after {NGINX_TLS_TIMEOUT_S:g} s of silence with close_notify and FIN (no Close frame). Three "
                  "clients (TLS 1.3) ping every 0.5 s and close 1000 after 5 s. Only the TLS leg is captured; the "
                  "clients wrote NAME.keys (SSLContext.keylog_filename) for the with-keys check.",
        expected=f"5 silent connections ended by nginx's close_notify about {NGINX_TLS_TIMEOUT_S:g} s after their "
                 "last record; without keys: every connection likely WebSocket by its records, idle_timeout with "
                 f"timeout_s {NGINX_TLS_TIMEOUT_S:g} over the 5 silent ones, the 3 pinging ones surviving; with "
                 f"keys: the same as ws:// (1006 after {NGINX_TLS_TIMEOUT_S:g} s idle, 3 clean 1000 closes).",
        postprocess=fronts_only)),
    (rec_resume, post_resume, dict(
        file="tls-openssl-resume.pcap", ports=[20448], title="OpenSSL session resumption: session id, ticket, PSK",
        exercises="Six s_client runs against one s_server: TLS 1.2 full (-no_ticket) then resumed by session "
                  "id, TLS 1.2 full with a ticket then resumed by ticket, TLS 1.3 full then resumed by PSK "
                  "(-sess_out/-sess_in). One line sent per run. tls-openssl-resume.full-only.keys lacks the "
                  "resumed TLS 1.2 connections' CLIENT_RANDOM lines: their master secrets must be found through "
                  "the earlier full handshakes' session id and ticket.",
        expected="6 TLS connections, 3 of them resumed; every line decrypted, also with the full-only key log.")),
]


def register(record_module):
    global rec
    rec = record_module
    for fn, post, spec in SCENARIOS:
        if any(s["file"] == spec["file"] for s in rec.SPECS):
            continue
        kw = {k: v for k, v in spec.items() if k != "file"}
        rec.capture(spec["file"], **kw)(fn)
        rec.SPECS[-1]["post"] = post
