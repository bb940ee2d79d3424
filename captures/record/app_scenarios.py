"""Application-protocol captures (Socket.IO 4 and 2, graphql-ws, subscriptions-transport-ws,
MQTT with aedes + mqtt.js, STOMP with @stomp/stompjs, JSON-RPC with rpc-websockets, Rails
ActionCable with @rails/actioncable, SockJS with sockjs-client, STOMP over SockJS, SSH, TLS and
HTTP tunnelled through websockify) and their failure modes. Registered with record.py's `capture` decorator; imported by record.py.

The endpoints are the real libraries (pinned in captures/record/app/package.json + lock,
installed into $WSPROBE_APP_DIR, default /work/scratch/app, by `record.py --setup`). Every
copy of `ws` they load is hooked (app/hook.js) so the truth has the same frame-level facts as
the other captures; the application facts the libraries reported (events, acks, errors,
disconnect reasons) are in each connection's "app" list (ev "app" lines of the logs).
Endpoints that do not use `ws` log the same frame-level events from their own WebSocket layer:
the Ruby ActionCable server from websocket-driver (app/wslog.rb; Debian's ruby-actioncable and
puma, `apt-get install ruby-actioncable puma`), the SockJS endpoints from websocket-driver under
faye-websocket (app/fayelog.js), websockify from hooks on its own WebSocket class (tunnel.py;
`apt-get install websockify openssh-server curl`, sshd run on a port of its own, never :22).

Not recorded: SignalR and Phoenix Channels. Their servers are ASP.NET Core and Elixir's Phoenix
(hex packages); neither Debian nor npm has a maintained server implementation (npm has the real
clients, @microsoft/signalr and phoenix, and only mock servers), so those decoders are checked by
their unit tests on the protocols' specifications."""

import os
import shlex
import shutil
import subprocess
import sys
import time

import record as R  # noqa: E402  (the main module, imported by name)

HERE = os.path.dirname(os.path.abspath(__file__))
APP_DIR = os.environ.get("WSPROBE_APP_DIR", "/work/scratch/app")
APP_MODULES = os.path.join(APP_DIR, "node_modules")


def setup():
    os.makedirs(APP_DIR, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, "app", f), os.path.join(APP_DIR, f))
    R.sh(["npm", "ci", "--no-audit", "--no-fund"], cwd=APP_DIR)


def node(ctx, script, role, mode, port, name=None, extra=()):
    name = name or role
    log = ctx.log(name)
    argv = ["node", os.path.join(HERE, "app", script), role, mode, "--port", str(port), *extra, "--log", log]
    shown = ["node", f"captures/record/app/{script}", role, mode, "--port", str(port), *map(shlex.quote, extra),
             "--log", f"{name}.jsonl"]
    return ctx._start(argv, name, shown, env={"NODE_PATH": APP_MODULES})


def ruby(ctx, script, mode, port, name="server", extra=()):
    log = ctx.log(name)
    argv = ["ruby", os.path.join(HERE, "app", script), mode, "--port", str(port), *extra, "--log", log]
    shown = ["ruby", f"captures/record/app/{script}", mode, "--port", str(port), *map(shlex.quote, extra),
             "--log", f"{name}.jsonl"]
    return ctx._start(argv, name, shown)


def server(ctx, script, mode, port):
    s = node(ctx, script, "server", mode, port)
    s.wait_for("READY")
    return s


APP = "application truth: the `app` list of each connection in the truth file"


@R.capture("app-socketio4.pcap", ports=[24001],
           title="Socket.IO 4: polling upgraded to WebSocket, events, ack, binary attachment, refused namespace",
           exercises="socket.io 4.8.1 server (pingInterval 1000, pingTimeout 500) and socket.io-client 4.8.1: the "
                     "main socket starts with HTTP long-polling and upgrades (2probe/3probe/5) to WebSocket; emits "
                     "chat \"hello\" with an ack (answered \"got hello\"), then upload with a 16-byte Buffer (one binary "
                     "attachment), gets stored; Engine.IO pings every second; a second socket on /admin is refused by "
                     "middleware (CONNECT_ERROR \"not authorized\"); the client emits bye and the server disconnects "
                     "the socket (41 then an Engine.IO close). " + APP,
           expected="2 WebSocket connections (plus polling HTTP requests): socket.io recognised by path; the main one "
                    "with EVENT/ACK/BINARY_EVENT+attachment, pings answered, server namespace disconnect; the /admin "
                    "one with CONNECT_ERROR (app_connect_refused).")
def rec_sio4(ctx):
    srv = server(ctx, "socketio.js", "v4", 24001)
    node(ctx, "socketio.js", "client", "v4", 24001).wait(30)
    srv.wait(20)


@R.capture("app-socketio4-ping-timeout.pcap", ports=[24002],
           title="Socket.IO 4: the client stops answering pings; the server closes after pingTimeout",
           exercises="socket.io 4.8.1 server with pingInterval 300 ms and pingTimeout 200 ms, socket.io-client 4.8.1 "
                     "on the websocket transport only; after 0.5 s the client's engine stops sending pongs (its "
                     "sendPacket drops them): the server's next ping goes unanswered and it closes the transport "
                     "(\"ping timeout\"). " + APP,
           expected="1 connection: pings answered, then one unanswered; app_heartbeat_timeout (\"Engine.IO ping "
                    "unanswered for ~200 ms > pingTimeout 200 ms; the server closed\").")
def rec_sio4_timeout(ctx):
    srv = server(ctx, "socketio.js", "v4-ping-timeout", 24002)
    node(ctx, "socketio.js", "client", "v4-ping-timeout", 24002).wait(30)
    srv.wait(20)


@R.capture("app-socketio2.pcap", ports=[24003],
           title="Socket.IO 2 (Engine.IO 3): client pings, events, ack, binary attachment with its type byte",
           exercises="socket.io 2.5.1 server and socket.io-client 2.5.0 (pingInterval 1000, pingTimeout 500): polling "
                     "then the WebSocket upgrade; the client pings (Engine.IO 3); chat with ack, upload with a Buffer "
                     "(a binary frame starting with the packet type byte 4), bye -> server disconnect. " + APP,
           expected="socket.io over Engine.IO 3: client pings answered by the server; binary attachment joined.")
def rec_sio2(ctx):
    srv = server(ctx, "socketio.js", "v2", 24003)
    node(ctx, "socketio.js", "client", "v2", 24003).wait(30)
    srv.wait(20)


@R.capture("app-socketio2-ping-timeout.pcap", ports=[24004],
           title="Socket.IO 2: the client stops pinging; the server gives up after pingInterval + pingTimeout",
           exercises="socket.io 2.5.1 server with pingInterval 300, pingTimeout 200; socket.io-client 2.5.0 on the "
                     "websocket transport stops its Engine.IO pings after 0.1 s; the server closes the transport "
                     "after ~500 ms without a ping. " + APP,
           expected="app_heartbeat_timeout: no Engine.IO ping from the client for > pingInterval + pingTimeout.")
def rec_sio2_timeout(ctx):
    srv = server(ctx, "socketio.js", "v2-ping-timeout", 24004)
    node(ctx, "socketio.js", "client", "v2-ping-timeout", 24004).wait(30)
    srv.wait(20)


R.SETUPS.append(setup)

import manifest  # noqa: E402  (captures/record/manifest.py)

manifest.NOTES.append((
    "SignalR and Phoenix Channels",
    "no capture: their servers are ASP.NET Core SignalR (.NET) and Elixir's Phoenix (hex packages), "
    "and neither Debian 12 nor npm offers a maintained server implementation of either protocol (npm has "
    "the real clients, @microsoft/signalr and phoenix, but only mock servers such as @fakehost/signalr or "
    "cypress-signalr-mock, and Debian has Elixir and Erlang without Phoenix, Plug or Cowboy). A client "
    "against a hand-written server would test the hand-written server, so the SignalR (JSON hub protocol, "
    "MessagePack named) and Phoenix (v1 objects, v2 arrays, heartbeats) decoders are checked by their unit "
    "tests on messages from the protocols' specifications (src/app/signalr.rs, src/app/phoenix.rs)."))
manifest.NOTES.append((
    "VNC through websockify",
    "app-tunnels.pcap carries SSH, TLS and HTTP; not VNC: noVNC's RFB needs a VNC server with a display "
    "(x11vnc or TigerVNC on an X server) and a browser for noVNC itself, more than a recording of a "
    "12-byte \"RFB 003.008\" banner is worth here; the tunnel decoder's RFB reading is unit-tested "
    "(src/app/tunnel.rs)."))
manifest.NOTES.append((
    "SockJS close 2010",
    "app-sockjs.pcap has the server's c[3000,\"Go away!\"]; 2010 \"Another connection still open\" is "
    "what sockjs sends to a second receiving request of one session, which only the HTTP polling and "
    "streaming transports have (a WebSocket session is its own connection), so no WebSocket capture can "
    "show it; the decoder's reading of it is unit-tested."))


@R.capture("app-graphql-ws.pcap", ports=[24011],
           title="graphql-ws (graphql-transport-ws): subscription, queries, an execution error and a validation error",
           exercises="graphql-ws 6.0.6 server (ws adapter, graphql 16) and client: connection_init/ack, a subscription "
                     "with three next messages then complete, a query, a query whose resolver throws (next with "
                     "errors), an invalid query (error message), then dispose (close 1000). " + APP,
           expected="graphql-transport-ws recognised by subprotocol; operations paired; app_error for the error "
                    "message and the errors in a result.")
def rec_gql(ctx):
    srv = server(ctx, "graphql.js", "transport", 24011)
    node(ctx, "graphql.js", "client", "transport", 24011).wait(30)
    srv.wait(20)


@R.capture("app-graphql-ws-init-timeout.pcap", ports=[24012],
           title="graphql-ws: the client never sends connection_init; the server closes 4408",
           exercises="graphql-ws 6.0.6 server with connectionInitWaitTimeout 300 ms; a plain ws client asks for "
                     "graphql-transport-ws and sends nothing; the server closes 4408 \"Connection initialisation "
                     "timeout\". " + APP,
           expected="close 4408 given its graphql-transport-ws meaning; app_init_timeout.")
def rec_gql_init(ctx):
    srv = server(ctx, "graphql.js", "init-timeout", 24012)
    node(ctx, "graphql.js", "client", "init-timeout", 24012).wait(30)
    srv.wait(20)


@R.capture("app-subscriptions-transport-ws.pcap", ports=[24013],
           title="subscriptions-transport-ws (subprotocol graphql-ws): subscription with keep-alives, an error",
           exercises="subscriptions-transport-ws 0.11.0 server (keepAlive 200 ms) and client over ws 7: "
                     "connection_init/ack, ka every 200 ms, start -> 3 data -> complete, a query whose resolver "
                     "throws (data with errors), client close. " + APP,
           expected="subscriptions-transport-ws recognised by subprotocol graphql-ws with the naming note; ka beats.")
def rec_legacy(ctx):
    srv = server(ctx, "graphql.js", "legacy", 24013)
    node(ctx, "graphql.js", "client", "legacy", 24013).wait(30)
    srv.wait(20)


@R.capture("app-graphql-mismatch.pcap", ports=[24014],
           title="A subscriptions-transport-ws client against a graphql-ws server: subprotocol not selected",
           exercises="subscriptions-transport-ws 0.11.0 client offers the subprotocol graphql-ws to a graphql-ws "
                     "6.0.6 server, which selects none; the client's ws library gives up (\"Server sent no "
                     "subprotocol\") while the server closes 4406. " + APP,
           expected="subprotocol_not_selected, the client giving up.")
def rec_mismatch(ctx):
    srv = server(ctx, "graphql.js", "transport", 24014)
    node(ctx, "graphql.js", "client", "mismatch", 24014).wait(30)
    srv.wait(20)


@R.capture("app-mqtt.pcap", ports=[24021],
           title="MQTT 3.1.1 over WebSocket: aedes broker and mqtt.js client",
           exercises="aedes 0.51.3 (fed by ws createWebSocketStream, subprotocol mqtt) and mqtt.js 5.14.1 with "
                     "keep-alive 1 s: CONNECT/CONNACK, SUBSCRIBE sensors/# qos 1/SUBACK, PUBLISH qos 0, 1 (PUBACK) and "
                     "2 (PUBREC/PUBREL/PUBCOMP) delivered back to the subscriber, PINGREQ/PINGRESP, UNSUBSCRIBE/"
                     "UNSUBACK, DISCONNECT. " + APP,
           expected="mqtt recognised by subprotocol; every packet listed; QoS flows and pings paired.")
def rec_mqtt(ctx):
    srv = server(ctx, "mqtt.js", "session", 24021)
    node(ctx, "mqtt.js", "client", "session", 24021).wait(30)
    srv.wait(20)


@R.capture("app-mqtt-refused.pcap", ports=[24022],
           title="MQTT: the broker refuses the CONNECT (CONNACK 5 not authorized)",
           exercises="aedes 0.51.3 whose authenticate refuses (returnCode 5); mqtt.js 5.14.1 client. " + APP,
           expected="app_connect_refused with CONNACK 5 not authorized.")
def rec_mqtt_refused(ctx):
    srv = server(ctx, "mqtt.js", "refused", 24022)
    node(ctx, "mqtt.js", "client", "session", 24022).wait(30)
    srv.wait(20)


@R.capture("app-mqtt-keepalive.pcap", ports=[24023],
           title="MQTT: the client goes silent; the broker drops it after 1.5 x keep-alive",
           exercises="aedes 0.51.3; a raw ws client sends CONNECT (keep-alive 1 s, from mqtt-packet), one PINGREQ "
                     "after 0.3 s, then nothing: aedes's keep-alive timer (1.5 s) closes the connection. " + APP,
           expected="app_heartbeat_timeout: no packet from the client for > 1.5 x keep-alive; the broker closed.")
def rec_mqtt_keepalive(ctx):
    srv = server(ctx, "mqtt.js", "session", 24023)
    node(ctx, "mqtt.js", "client", "keepalive", 24023).wait(30)
    srv.wait(20)


@R.capture("app-stomp.pcap", ports=[24031],
           title="STOMP 1.2: @stomp/stompjs against a STOMP server on ws, heart-beats, receipts",
           exercises="@stomp/stompjs 7.2.1 (heart-beat 200,200, subprotocol v12.stomp) and the small STOMP 1.2 server "
                     "of captures/record/app/stomp.js: CONNECT/CONNECTED (heart-beats negotiated to 200 ms each way), "
                     "SUBSCRIBE with a receipt, SEND with a receipt delivered as MESSAGE, heart-beats, DISCONNECT with a "
                     "receipt, server close. " + APP,
           expected="stomp 1.2 recognised by subprotocol; receipts paired; heart-beats counted.")
def rec_stomp(ctx):
    srv = server(ctx, "stomp.js", "session", 24031)
    node(ctx, "stomp.js", "client", "session", 24031).wait(30)
    srv.wait(20)


@R.capture("app-stomp-error.pcap", ports=[24032],
           title="STOMP: an ERROR frame, then the server closes",
           exercises="as app-stomp, then the client sends to /queue/forbidden; the server answers ERROR "
                     "message:access denied and closes the WebSocket. " + APP,
           expected="app_error with the ERROR's message; the close explained by it.")
def rec_stomp_error(ctx):
    srv = server(ctx, "stomp.js", "error", 24032)
    node(ctx, "stomp.js", "client", "error", 24032).wait(30)
    srv.wait(20)


@R.capture("app-stomp-heartbeat.pcap", ports=[24033],
           title="STOMP: the server stops sending heart-beats; stompjs gives up",
           exercises="as app-stomp, but the server stops its 200 ms heart-beats after 0.5 s; stompjs notices no server "
                     "activity for twice the interval and closes the WebSocket. " + APP,
           expected="app_heartbeat_timeout naming the silent server and the negotiated interval.")
def rec_stomp_hb(ctx):
    srv = server(ctx, "stomp.js", "heartbeat", 24033)
    node(ctx, "stomp.js", "client", "heartbeat", 24033).wait(30)
    srv.wait(20)


@R.capture("app-jsonrpc.pcap", ports=[24041],
           title="JSON-RPC 2.0 with rpc-websockets: calls, an error, an event subscription, a request never answered",
           exercises="rpc-websockets 9.3.1 server and client: sum [1,2] -> 3, nope -> error -32601 Method not found, "
                     "rpc.on tick then a tick event, a notification log, then never (the handler never resolves) "
                     "and the client closes while it is pending. " + APP,
           expected="json-rpc recognised from content; requests paired by id; app_error for -32601; "
                    "app_request_unanswered for never.")
def rec_jsonrpc(ctx):
    srv = server(ctx, "jsonrpc.js", "session", 24041)
    node(ctx, "jsonrpc.js", "client", "session", 24041).wait(30)
    srv.wait(20)


@R.capture("app-socketio4-ping-timeouts.pcap", ports=[24005],
           title="Socket.IO 4: four of six clients stop answering pings; the server drops each after pingTimeout",
           exercises="socket.io 4.8.1 server (pingInterval 300 ms, pingTimeout 200 ms, websocket transport only) "
                     "and one socket.io-client 4.8.1 process with six sockets (?who=stuck-0..3, healthy-0..1), each "
                     "emitting chat once; the four stuck ones stop sending pongs 0.5 s + 0.6 s x i after connecting "
                     "(their engine drops them), so the server's next ping goes unanswered and it closes each "
                     "(\"ping timeout\"); the two healthy ones disconnect on their own after ~2.5 s. " + APP,
           expected="heartbeat_timeout: 4 connections, the client side silent, Engine.IO pings every 300 ms, "
                    "timeout ~200 ms (pingTimeout); no pattern from the healthy ones.")
def rec_sio4_timeouts(ctx):
    srv = server(ctx, "socketio.js", "v4-ping-timeouts", 24005)
    node(ctx, "socketio.js", "client", "v4-ping-timeouts", 24005).wait(30)
    srv.wait(20)
    stuck = [e for e in R.load_events([os.path.join(ctx.tmp, "server.jsonl")])
             if e["ev"] == "app" and e.get("what") == "disconnect" and e.get("who", "").startswith("stuck")]
    ctx.incident = {
        "cause": "heartbeat_timeout",
        "expected": {"timeout_s": 0.2, "side": "client", "ping_interval_s": 0.3, "connections": 4,
                     "heartbeat": "engine.io ping/pong"},
        "path_prefix": "/socket.io/?who=stuck-",
        "events": [{"wall": e["t"] / 1e9 + (time.time() - time.monotonic()),
                    "what": f"the server's socket.io reported disconnect {e['reason']!r} for {e['who']} ({e['conn']})"}
                   for e in stuck],
    }


@R.capture("app-actioncable.pcap", ports=[24051],
           title="Rails ActionCable: welcome, pings, confirmed and rejected subscriptions, server_restart, unauthorized",
           exercises="ActionCable 6.1.7.10 (Debian ruby-actioncable, standalone, async adapter) on Puma 5.6.5 "
                     "(captures/record/app/cable_server.rb) and the npm @rails/actioncable 6.1.710 client in Node "
                     "with ws as its WebSocket: /cable?user=alice gets welcome, subscribes to EchoChannel "
                     "(confirm_subscription), performs speak (echoed as a message), subscribes to RejectChannel "
                     "(reject_subscription), receives the server's 3 s pings, performs restart: "
                     "ActionCable.server.restart sends disconnect reason server_restart reconnect true and closes; "
                     "the client stops instead of reconnecting. Then /cable without a user: the connection class "
                     "rejects it (disconnect reason unauthorized reconnect false, Close). Server frames from "
                     "websocket-driver (app/wslog.rb). " + APP,
           expected="2 connections, actioncable recognised by subprotocol actioncable-v1-json; welcome, pings, "
                    "confirm/reject_subscription, the echoed message, disconnect server_restart / unauthorized "
                    "with their meaning.")
def rec_actioncable(ctx):
    srv = ruby(ctx, "cable_server.rb", "session", 24051, extra=("--conns", "2"))
    srv.wait_for("READY")
    node(ctx, "cable.js", "client", "session", 24051).wait(30)
    srv.wait(20)


@R.capture("app-sockjs.pcap", ports=[24061],
           title="SockJS: sockjs server and sockjs-client, echo, WebSocket-ping heartbeats, close 3000 \"Go away!\"",
           exercises="sockjs 0.3.24 server (prefix /echo, heartbeat_delay 300 ms) and sockjs-client 1.6.1 in Node "
                     "(websocket transport, after its /info request): o, four messages each way in a[...] frames "
                     "(plain, JSON text, quotes and a newline, non-ASCII), the server's heartbeats (on the websocket "
                     "transport sockjs sends them as WebSocket pings, not h frames), then conn.close(3000, \"Go "
                     "away!\"): c[3000,\"Go away!\"] followed by WebSocket Close 1000. Frames from websocket-driver "
                     "under faye-websocket on both sides (app/fayelog.js); application truth from conn.on('data') / "
                     "conn.write and the client's send / onmessage / onclose. " + APP,
           expected="sockjs recognised by path; o, a[...] with the messages both libraries logged, c[3000] with its "
                    "meaning; pings answered.")
def rec_sockjs(ctx):
    srv = server(ctx, "sockjs.js", "echo", 24061)
    node(ctx, "sockjs.js", "client", "echo", 24061).wait(30)
    srv.wait(20)


@R.capture("app-stomp-sockjs.pcap", ports=[24062],
           title="STOMP over SockJS: @stomp/stompjs with sockjs-client against a STOMP server on sockjs",
           exercises="as app-stomp (CONNECT/CONNECTED with heart-beats 200,200, SUBSCRIBE and SEND with receipts, "
                     "MESSAGE, DISCONNECT with a receipt), but @stomp/stompjs 7.2.1 gets a sockjs-client 1.6.1 socket "
                     "from its webSocketFactory and the STOMP server of app/stomp.js sits behind the sockjs 0.3.24 "
                     "server (prefix /stomp): every STOMP frame travels inside SockJS framing ([...] from the client, "
                     "a[...] from the server), heart-beats as [\"\\n\"] / a[\"\\n\"]. Frames from fayelog.js. " + APP,
           expected="sockjs recognised by path with STOMP 1.2 decoded inside; receipts paired; heart-beats counted.")
def rec_stomp_sockjs(ctx):
    srv = server(ctx, "stomp.js", "sockjs", 24062)
    node(ctx, "stomp.js", "client", "sockjs", 24062).wait(30)
    srv.wait(20)


SSHD_CONFIG = """\
ListenAddress 127.0.0.1
Port {port}
HostKey {tmp}/hostkey
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
"""


@R.capture("app-tunnels.pcap", ports=[24071, 24072, 24073],
           title="Tunnels through websockify: SSH, TLS 1.3 and HTTP inside binary WebSocket messages",
           exercises="websockify 0.10.0 (Debian python3-websockify, its LibProxyServer, frames logged by hooks on "
                     "its WebSocket class: captures/record/tunnel.py) on three ports in front of OpenSSH 9.2 sshd, "
                     "openssl s_server (TLS 1.3, certificate for tunnel.test) and Python's http.server; the client "
                     "is Python websockets (subprotocol binary, as noVNC asks) carrying the bytes of a real TCP "
                     "client: OpenSSH ssh (version exchange, key exchange, then refused: no authentication method), "
                     "openssl s_client -servername tunnel.test (handshake, close_notify) and curl (GET "
                     "/tunnel-probe, 404; this client offers no subprotocol). " + APP,
           expected="3 connections, each a tunnel named from its first binary messages (the HTTP one recognised "
                    "from its content alone, no subprotocol): ssh with the client's SSH-2.0 identification, "
                    "tls with a ClientHello for tunnel.test, http with curl's request line; the server's first message is the SSH server's banner, the ServerHello, the "
                    "404 status line.")
def rec_tunnels(ctx):
    tmp = ctx.tmp
    R.sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(tmp, "hostkey")])
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
    conf = os.path.join(tmp, "sshd_config")
    with open(conf, "w") as f:
        f.write(SSHD_CONFIG.format(port=24171, tmp=tmp))
    ctx._start(["/usr/sbin/sshd", "-D", "-e", "-f", conf], "sshd",
               ["/usr/sbin/sshd -D -e -f sshd_config  # see SSHD_CONFIG in app_scenarios.py, port 24171"])
    R.sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
          "-subj", "/CN=tunnel.test", "-days", "1", "-keyout", os.path.join(tmp, "key.pem"),
          "-out", os.path.join(tmp, "cert.pem")])
    ctx._start(["openssl", "s_server", "-accept", "127.0.0.1:24172", "-cert", os.path.join(tmp, "cert.pem"),
                "-key", os.path.join(tmp, "key.pem"), "-tls1_3", "-quiet"], "s_server",
               ["openssl s_server -accept 127.0.0.1:24172 -cert cert.pem -key key.pem -tls1_3 -quiet"])
    ctx._start([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", tmp, "24173"],
               "http", ["python3 -m http.server --bind 127.0.0.1 24173"])
    for port in (24171, 24172, 24173):
        R.wait_port(port)
    srv = ctx.py("tunnel.py", "server", "--listen", "24071:24171", "--listen", "24072:24172",
                 "--listen", "24073:24173", "--conns", "3", name="server")
    srv.wait_for("READY")
    for port, inner, extra in ((24071, "ssh", ()), (24072, "tls", ()), (24073, "http", ("--no-subprotocol",))):
        ctx.py("tunnel.py", "client", "--port", str(port), "--inner", inner, *extra,
               name=f"client-{inner}").wait(30)
    srv.wait(20)
