"""Application-protocol captures (Socket.IO 4 and 2, graphql-ws, subscriptions-transport-ws,
MQTT with aedes + mqtt.js, STOMP with @stomp/stompjs, JSON-RPC with rpc-websockets) and their
failure modes. Registered with record.py's `capture` decorator; imported by record.py.

The endpoints are the real libraries (pinned in captures/record/app/package.json + lock,
installed into $WSPROBE_APP_DIR, default /work/scratch/app, by `record.py --setup`). Every
copy of `ws` they load is hooked (app/hook.js) so the truth has the same frame-level facts as
the other captures; the application facts the libraries reported (events, acks, errors,
disconnect reasons) are in each connection's "app" list (ev "app" lines of the logs)."""

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
