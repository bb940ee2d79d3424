"""Scenarios for the findings across connections (src/findings): each capture reproduces one
real cause of connections ending, with the endpoints' own logs (and nginx's, and record.py's
clock at the moment it acted) as the truth.

Registered by record.py (`findings_scenarios.register(record)`); recorded like every other
capture (`record.py idle-timeout-nginx ...`). Each truth file carries an extra `incident` object:

    "incident": {
      "cause": "idle_timeout",                  # the finding id it must produce
      "expected": {"timeout_s": 2.0, ...},      # the parameters, from the configuration
      "events": [{"wall": 1795..., "what": "..."}],   # CLOCK_REALTIME, as the capture's timestamps
      ...                                       # cause-specific facts (logs of nginx, the server)
    }

Ports: 25000-25999 only. Network namespaces: wsp-find-* (created and deleted here).
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

NETNS_SERVER = "wsp-find-srv"
NETNS_CLIENT = "wsp-find-cli"
VETH_SERVER = "wspf-s"
VETH_CLIENT = "wspf-c"
NET_SERVER_IP = "10.250.0.1"
NET_CLIENT_IP = "10.250.0.2"

NGINX_TIMEOUT_S = 2.0
NGINX_CONF = """worker_processes 1;
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
    listen 127.0.0.1:{port};
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


def wall_of(t_ns):
    """CLOCK_MONOTONIC ns of a wslog event as CLOCK_REALTIME seconds (the capture's clock)."""
    return t_ns / 1e9 + (time.time() - time.monotonic())


def wait_port(host, port, timeout=10.0):
    """Waits until something listens on host:port, without connecting to it (a probe would be in
    the capture as a connection of its own)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out = subprocess.run(["ss", "-Hltn", f"src {host}:{port}"], capture_output=True,
                             text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {host}:{port}")


def log_events(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def sh(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def register(rec):
    capture = rec.capture

    def script(ctx, name, argv, netns=None):
        """An endpoint script (captures/record/NAME) with --log, optionally in a namespace."""
        log = ctx.log(argv[0])
        prefix = ["ip", "netns", "exec", netns] if netns else []
        shown_prefix = prefix[:]
        full = [*prefix, rec.PY, os.path.join(rec.HERE, name), *argv[1:], "--log", log]
        shown = [*shown_prefix, "$PY", f"captures/record/{name}", *argv[1:], "--log", f"{argv[0]}.jsonl"]
        return ctx._start(full, argv[0], shown)

    def server(ctx, logname, *args, netns=None):
        s = script(ctx, "findings_server.py", [logname, *args], netns)
        s.wait_for("READY")
        return s

    # ------------------------------------------------------------------ idle timeout (nginx)

    @capture("idle-timeout-nginx.pcap", ports=[25080, 25081],
             title="nginx proxy_read_timeout cuts silent WebSockets, pinging ones survive",
             exercises="nginx (own configuration and prefix) on :25080 proxies to a Python websockets "
                       f"echo server on :25081 with proxy_read_timeout {NGINX_TIMEOUT_S:g}s. Five clients "
                       "(0.3 s apart) exchange one message and fall silent: nginx closes both legs of each "
                       "(FIN, no Close frame) after 2 s of silence. Three clients ping every 0.5 s and "
                       "close 1000 after 4 s. Both legs of every session are captured.",
             expected=f"idle_timeout with timeout_s {NGINX_TIMEOUT_S:g} over both legs of the 5 silent "
                      "sessions (10 connections), the 3 pinging sessions surviving; proxy_legs pairing the "
                      "8 sessions' legs, nginx closing both legs of the silent ones.",
             postprocess=lambda conns, ctx: join_legs(conns, ctx))
    def rec_nginx_idle(ctx):
        if not shutil.which("nginx"):
            raise rec.SkipCapture("nginx is not installed (apt-get install nginx-light)")
        prefix = os.path.join(ctx.tmp, "nginx")
        os.makedirs(prefix, exist_ok=True)
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write(NGINX_CONF.format(prefix=prefix, port=25080, upstream=25081, timeout=f"{NGINX_TIMEOUT_S:g}"))
        upstream = server(ctx, "server", "echo", "--port", "25081", "--conns", "8")
        nginx = ctx._start(["nginx", "-c", conf, "-p", prefix], "nginx",
                           ["nginx", "-c", "nginx.conf", "-p", "$PREFIX",
                            f"# proxy_read_timeout {NGINX_TIMEOUT_S:g}s, proxy_pass :25081"])
        wait_port("127.0.0.1", 25080)
        silent = script(ctx, "findings_client.py", ["client-silent", "silent", "--uri", "ws://127.0.0.1:25080",
                                                    "--n", "5", "--stagger", "0.3"])
        pinging = script(ctx, "findings_client.py", ["client-pinging", "pinging", "--uri", "ws://127.0.0.1:25080",
                                                     "--n", "3", "--stagger", "0.3", "--ping-interval", "0.5",
                                                     "--stay", "4"])
        silent.wait(30)
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
            "expected": {"timeout_s": NGINX_TIMEOUT_S, "connections": 10, "proxy_legs": 8},
            "nginx": {"version": version, "proxy_read_timeout_s": NGINX_TIMEOUT_S,
                      "timed_out": timed_out, "access_log": access},
            "events": [{"wall": a["wall_end"], "what": f"nginx ended {a['path']} after {a['request_time']} s"
                        + (" (upstream timed out)" if a["timed_out"] else "")} for a in access],
        }

    # ------------------------------------------------------------------ server restart

    @capture("restart-reconnect.pcap", ports=[25100],
             title="A server killed and restarted; its clients reconnect",
             exercises="Python websockets echo server on :25100; eight chatty clients (a message every "
                       "0.2 s). record.py SIGKILLs the server, restarts it 0.8 s later; the clients "
                       "reconnect with a backoff from 0.2 s, exchange two messages and close 1000.",
             expected="server_restart at the kill (the 8 connections ended within milliseconds by the "
                      "server's kernel, no Close), 8 clients back within a couple of seconds.",
             postprocess=lambda conns, ctx: mark_killed(conns, ctx))
    def rec_restart(ctx):
        first = server(ctx, "server", "echo", "--port", "25100", "--conns", "100")
        clients = script(ctx, "findings_client.py", ["client", "reconnect", "--uri", "ws://127.0.0.1:25100",
                                                     "--n", "8", "--stagger", "0.05", "--every", "0.2"])
        clients.wait_for("CONNECTED")
        time.sleep(0.6)
        killed = time.time()
        first.kill(signal.SIGKILL)
        time.sleep(0.8)
        again = server(ctx, "server-restarted", "echo", "--port", "25100", "--conns", "8")
        restarted = time.time()
        clients.wait(30)
        again.wait(20)
        back = [wall_of(e["t"]) for e in log_events(os.path.join(ctx.tmp, "client.jsonl"))
                if e["ev"] == "open" and e["path"].endswith("/again")]
        ctx.incident = {
            "cause": "server_restart",
            "expected": {"time": killed, "server": "127.0.0.1:25100", "connections": 8, "reconnected": 8},
            "events": [{"wall": killed, "what": "record.py sent SIGKILL to the server"},
                       {"wall": restarted, "what": "the restarted server is listening"}]
                      + [{"wall": t, "what": "a client is back"} for t in sorted(back)],
        }

    # ------------------------------------------------------------------ graceful shutdown

    @capture("graceful-shutdown.pcap", ports=[25200],
             title="A graceful shutdown: Close 1001 to every client, two never answer",
             exercises="Python websockets server on :25200; six listening clients and two whose event "
                       "loop hangs (time.sleep) after connecting. The server calls server.close(): Close "
                       "1001 to all eight at once; the six answer, the two hung ones never do, and the "
                       "server drops them after its 1 s close timeout.",
             expected="graceful_shutdown from 127.0.0.1:25200 at the shutdown, code 1001, 8 connections, "
                      "the 2 hung clients' connections unanswered.")
    def rec_graceful(ctx):
        srv = server(ctx, "server", "shutdown", "--port", "25200", "--conns", "8", "--after", "0.8",
                     "--close-timeout", "1.0")
        ok = script(ctx, "findings_client.py", ["client", "listen", "--uri", "ws://127.0.0.1:25200",
                                                "--n", "6", "--stagger", "0.05"])
        stuck = script(ctx, "findings_client.py", ["client-stuck", "stuck", "--uri", "ws://127.0.0.1:25200",
                                                   "--n", "2", "--stagger", "0.05", "--answer-for", "0.3",
                                                   "--stuck-for", "3"])
        shutdown = float(srv.wait_for("SHUTDOWN").split()[1])
        ok.wait(20)
        srv.wait(20)
        stuck.wait(20)
        hung = sorted({e["conn"] for e in log_events(os.path.join(ctx.tmp, "client-stuck.jsonl"))
                       if e["ev"] == "open"})
        ctx.incident = {
            "cause": "graceful_shutdown",
            "expected": {"time": shutdown, "server": "127.0.0.1:25200", "code": 1001, "connections": 8,
                         "unanswered": 2},
            "hung_clients": hung,
            "events": [{"wall": shutdown, "what": "the server called server.close()"}],
        }

    # ------------------------------------------------------------------ heartbeat timeout

    @capture("heartbeat-timeout.pcap", ports=[25300],
             title="Keepalive pings unanswered: the server gives up after ping_timeout",
             exercises="Python websockets server on :25300 with ping_interval 0.5 s and ping_timeout "
                       "1.0 s. Three clients answer pings for 1.2 s, then their event loop hangs: their "
                       "next ping gets no pong, and 1 s later the server closes with 1011 \"keepalive ping "
                       "timeout\" and drops them after a 0.5 s close timeout. A fourth client stays healthy "
                       "and closes 1000 after 3.5 s.",
             expected="heartbeat_timeout: the client side stopped answering, timeout_s 1.0, pings every "
                      "0.5 s, over the 3 hung clients' connections.")
    def rec_heartbeat(ctx):
        srv = server(ctx, "server", "heartbeat", "--port", "25300", "--conns", "4", "--ping-interval", "0.5",
                     "--ping-timeout", "1.0", "--close-timeout", "0.5")
        healthy = script(ctx, "findings_client.py", ["client", "pinging", "--uri", "ws://127.0.0.1:25300",
                                                     "--n", "1", "--ping-interval", "10", "--stay", "3.5"])
        stuck = script(ctx, "findings_client.py", ["client-stuck", "stuck", "--uri", "ws://127.0.0.1:25300",
                                                   "--n", "3", "--stagger", "0.15", "--answer-for", "1.2",
                                                   "--stuck-for", "3.5"])
        hung_at = float(stuck.wait_for("STUCK").split()[1])
        healthy.wait(20)
        stuck.wait(20)
        srv.wait(20)
        closes = [wall_of(e["t"]) for e in log_events(os.path.join(ctx.tmp, "server.jsonl"))
                  if e["ev"] == "msg_sent" and e["opcode"] == "close"]
        ctx.incident = {
            "cause": "heartbeat_timeout",
            "expected": {"timeout_s": 1.0, "side": "client", "ping_interval_s": 0.5, "connections": 3},
            "events": [{"wall": hung_at, "what": "the three clients' event loop hangs"}]
                      + [{"wall": t, "what": "the server sent Close"} for t in sorted(closes)],
        }

    # ------------------------------------------------------------------ peer unreachable

    def netns_up(tmp):
        netns_down()
        sh("ip", "netns", "add", NETNS_SERVER)
        sh("ip", "netns", "add", NETNS_CLIENT)
        sh("ip", "link", "add", VETH_SERVER, "netns", NETNS_SERVER, "type", "veth", "peer", "name",
           VETH_CLIENT, "netns", NETNS_CLIENT)
        for ns, dev, ip in ((NETNS_SERVER, VETH_SERVER, NET_SERVER_IP), (NETNS_CLIENT, VETH_CLIENT, NET_CLIENT_IP)):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")

    def netns_down():
        for ns in (NETNS_SERVER, NETNS_CLIENT):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    @capture("peer-unreachable.pcap", ports=[25400], iface=VETH_SERVER, netns=NETNS_SERVER,
             setup=netns_up, teardown=netns_down, stop_capture_first=True,
             title="A client vanishes: the server retransmits into the void",
             exercises=f"Two network namespaces joined by a veth pair ({NET_SERVER_IP} server, "
                       f"{NET_CLIENT_IP} client); captured in the server's. A Python websockets server on "
                       ":25400 pushes a message to each of two listening clients every 0.5 s (four in all). "
                       "Between the third and the fourth, record.py drops every packet in the client's "
                       "namespace (nftables, input and output): the fourth is never acknowledged, the "
                       "server's kernel retransmits it with backoff, and no FIN or RST ever comes from the "
                       "client. The capture stops 5 s later, before the endpoints are killed.",
             expected="peer_unreachable: side client, since the fourth message of each connection; both "
                      "connections reported as 'client unreachable since ...', not 'still open'.")
    def rec_unreachable(ctx):
        srv = server(ctx, "server", "push", "--host", NET_SERVER_IP, "--port", "25400", "--conns", "2",
                     "--every", "0.5", "--count", "4", netns=NETNS_SERVER)
        cli = script(ctx, "findings_client.py", ["client", "listen", "--uri", f"ws://{NET_SERVER_IP}:25400",
                                                 "--n", "2", "--stagger", "0.1"], NETNS_CLIENT)
        cli.wait_for("CONNECTED")
        time.sleep(1.25)
        rules = ("table inet wspfind { chain in { type filter hook input priority 0; policy drop; }; "
                 "chain out { type filter hook output priority 0; policy drop; }; }")
        dropped = time.time()
        subprocess.run(["ip", "netns", "exec", NETNS_CLIENT, "nft", "-f", "-"], input=rules.encode(),
                       check=True)
        ctx.commands.append(f"ip netns exec {NETNS_CLIENT} nft -f - <<< '{rules}'  # at the cut")
        time.sleep(5.0)
        sent = [(e["conn"], wall_of(e["t"])) for e in log_events(os.path.join(ctx.tmp, "server.jsonl"))
                if e["ev"] == "msg_sent" and e["opcode"] == "text"]
        last = {}
        for conn, t in sent:
            last[conn] = t
        ctx.incident = {
            "cause": "peer_unreachable",
            "expected": {"side": "client", "since": min(last.values()) if last else None,
                         "host": NET_CLIENT_IP, "connections": 2},
            "events": [{"wall": dropped, "what": "record.py dropped every packet in the client's namespace"}]
                      + [{"wall": t, "what": f"the server sent its last message to {c} (never acknowledged)"}
                         for c, t in sorted(last.items())],
        }
        assert srv.p.poll() is None, "the server must still be running (killed after the capture)"

    # ------------------------------------------------------------------ connection lifetime

    @capture("max-lifetime.pcap", ports=[25500],
             title="A fixed connection lifetime: the server closes each connection 2.5 s after it opened",
             exercises="Python websockets server on :25500 that closes every connection with 1000 \"max "
                       "connection age\" 2.5 s after it opened, whatever its traffic; six chatty clients "
                       "(a message every 0.2 s) opened 0.5 s apart.",
             expected="max_lifetime with lifetime_s 2.5 over the 6 connections (no idle_timeout: they were "
                      "never silent; no graceful_shutdown: their closes are as spread as their opens).")
    def rec_lifetime(ctx):
        srv = server(ctx, "server", "lifetime", "--port", "25500", "--conns", "6", "--lifetime", "2.5")
        clients = script(ctx, "findings_client.py", ["client", "chatty", "--uri", "ws://127.0.0.1:25500",
                                                     "--n", "6", "--stagger", "0.5", "--every", "0.2"])
        clients.wait(30)
        srv.wait(20)
        closes = [e["lifetime_close_wall"] for e in log_events(os.path.join(ctx.tmp, "server.jsonl"))
                  if e["ev"] == "note" and "lifetime_close_wall" in e]
        ctx.incident = {
            "cause": "max_lifetime",
            "expected": {"lifetime_s": 2.5, "server": "127.0.0.1:25500", "connections": 6},
            "events": [{"wall": t, "what": "the server closed a connection at its maximum age"}
                       for t in sorted(closes)],
        }

    # ------------------------------------------------------------------ truth fix-ups

    def join_legs(conns, ctx):
        """Each proxied session is two TCP connections; each endpoint logged one. nginx relays
        the upgraded bytes verbatim, so each leg carries the other endpoint's messages too: copy
        them across (linked by the X-Client-Port header nginx sent upstream)."""
        version = getattr(ctx, "nginx_version", "")
        fronts = {c["client"]["port"]: c for c in conns if c["client"]["impl"] and not c["server"]["impl"]}
        for back in [c for c in conns if c["server"]["impl"] and not c["client"]["impl"]]:
            front = fronts.get(back["notes"].get("proxied_client_port"))
            if front is None:
                continue
            front_client = [m for m in front["messages"] if m["from"] == "client"]
            back_server = [m for m in back["messages"] if m["from"] == "server"]
            front["messages"] = front_client + back_server
            back["messages"] = front_client + back_server
            front["server"]["impl"] = f"nginx {version} relaying {back['server']['impl']}"
            back["client"]["impl"] = f"nginx {version} relaying {front['client']['impl']}"
            fc, bc = front["close"], back["close"]
            for k in ("server_sent", "server_received"):
                fc[k] = bc[k]
            for k in ("client_sent", "client_received"):
                bc[k] = fc[k]
            timed_out = back["handshake"]["path"] in ctx.incident["nginx"]["timed_out"]
            for c, other in ((front, back), (back, front)):
                c["notes"]["relayed_by"] = "nginx"
                c["notes"]["other_leg_client_port"] = other["client"]["port"]
                c["notes"]["nginx_upstream_timed_out"] = timed_out
                full = all(c["close"][k] is not None for k in
                           ("client_sent", "client_received", "server_sent", "server_received"))
                c["end"]["kind"] = "clean" if full else "abnormal"
        return conns

    def mark_killed(conns, ctx):
        """The connections the SIGKILL ended (the first server logged no end for them)."""
        for c in conns:
            if c["server"]["impl"] and c["close"]["server_reported"] is None and not c["close"]["client_sent"]:
                c["end"] = {"kind": "killed", "killed_side": "server", "signal": "SIGKILL", "http_status": None}
        return conns
