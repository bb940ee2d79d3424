//! Application protocols on captures recorded from the real libraries (captures/app-*.pcap):
//! what wsprobe decodes is checked against what the libraries themselves logged (the `app`
//! list of each connection in the truth files), and every failure is named with its cause.

use serde_json::Value;

use crate::util::*;

struct Case {
    report: Value,
    truth: Value,
}

impl Case {
    fn new(stem: &str) -> Case {
        let path = captures_dir().join(format!("{stem}.pcap"));
        let report = report_of(&path, &["--messages", "--payload", "full"]);
        let truth: Value = serde_json::from_str(
            &std::fs::read_to_string(captures_dir().join(format!("{stem}.truth.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            report["connections"].as_array().unwrap().len(),
            truth["connections"].as_array().unwrap().len(),
            "{stem}: one WebSocket connection per truth connection"
        );
        Case { report, truth }
    }

    fn conn(&self) -> &Value {
        &self.report["connections"][0]
    }

    /// The library-logged application facts of `role` with `what`.
    fn facts(&self, role: &str, what: &str) -> Vec<&Value> {
        self.truth["connections"][0]["app"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|e| e["role"] == role && e["what"] == what)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every decoded packet of `from`'s messages, in order.
    fn packets(&self, from: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for m in self.conn()["messages"].as_array().unwrap() {
            if m["from"] != from || !matches!(m["opcode"].as_str(), Some("text" | "binary")) {
                continue;
            }
            let app = &m["app"];
            assert!(app.is_object(), "a data message without app: {m}");
            match app["packets"].as_array() {
                Some(list) => out.extend(list.iter().cloned()),
                None => out.push(app.clone()),
            }
        }
        out
    }

    fn of_type(&self, from: &str, kind: &str) -> Vec<Value> {
        self.packets(from)
            .into_iter()
            .filter(|p| p["type"] == kind)
            .collect()
    }

    fn diag(&self, id: &str) -> String {
        self.conn()["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {:#?}", diag_ids(self.conn())))["message"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn no_violations(&self) {
        assert!(
            !diag_ids(self.conn()).contains(&"app_protocol_violation".to_string()),
            "{:#?}",
            self.conn()["diagnostics"]
        );
    }
}

fn events(packets: &[Value]) -> Vec<String> {
    packets
        .iter()
        .filter_map(|p| p["event"].as_str().map(str::to_string))
        .collect()
}

fn whats<'a>(facts: &[&'a Value], key: &str) -> Vec<&'a str> {
    facts.iter().filter_map(|f| f[key].as_str()).collect()
}

#[test]
fn socketio4_events_acks_attachment_and_refused_namespace_match_the_libraries() {
    let c = Case::new("app-socketio4");
    c.no_violations();
    let app = &c.conn()["app"];
    assert_eq!(
        (app["protocol"].as_str(), app["recognised_by"].as_str()),
        (Some("socket.io"), Some("path"))
    );
    // The client library's emits, in order, are the client's EVENT/BINARY_EVENT packets.
    let sent = c.facts("client", "event_sent");
    let got: Vec<String> = c
        .packets("client")
        .iter()
        .filter(|p| p["type"] == "EVENT" || p["type"] == "BINARY_EVENT")
        .filter_map(|p| p["event"].as_str().map(str::to_string))
        .collect();
    assert_eq!(got, whats(&sent, "event"), "client events");
    // The ack the client received answers the chat event's ack id.
    let ack = &c.of_type("server", "ACK")[0];
    let chat = &c.of_type("client", "EVENT")[0];
    assert_eq!(ack["ack"], chat["ack"]);
    assert_eq!(c.facts("client", "ack_received").len(), 1);
    // The 16-byte Buffer is the attachment of "upload".
    let att = &c.of_type("client", "attachment")[0];
    assert_eq!(
        (att["event"].as_str(), att["length"].as_u64()),
        (Some("upload"), Some(16))
    );
    assert_eq!(
        c.facts("server", "event_received")
            .iter()
            .find(|f| f["event"] == "upload")
            .unwrap()["binary_length"],
        16
    );
    // Server emits.
    assert_eq!(
        events(&c.of_type("server", "EVENT")),
        whats(&c.facts("server", "event_sent"), "event")
    );
    // The refused namespace, as the client library reported it.
    let refused = c.facts("client", "connect_error");
    let err = &c.of_type("server", "CONNECT_ERROR")[0];
    assert_eq!(err["nsp"], "/admin");
    assert!(
        c.diag("app_connect_refused")
            .contains(refused[0]["message"].as_str().unwrap())
    );
    // The server's disconnect: the reason both libraries logged.
    assert_eq!(
        c.facts("server", "disconnect")[0]["reason"],
        "server namespace disconnect"
    );
    assert_eq!(
        c.facts("client", "disconnect")[0]["reason"],
        "io server disconnect"
    );
    assert_eq!(app["session"]["close"]["from"], "server");
    assert!(
        app["session"]["close"]["meaning"]
            .as_str()
            .unwrap()
            .contains("io server disconnect")
    );
    // Upgrade probes are not heartbeats; the one real ping was answered.
    let hb = &app["session"]["heartbeat"];
    assert_eq!(
        (hb["answered"].as_u64(), hb["unanswered"].as_u64()),
        (Some(1), Some(0))
    );
    // The open packet went over polling before the upgrade: the interval is the default.
    assert!(
        hb["configured_by"]
            .as_str()
            .unwrap()
            .contains("open packet not captured")
    );
}

#[test]
fn socketio4_unanswered_ping_is_the_servers_ping_timeout() {
    let c = Case::new("app-socketio4-ping-timeout");
    c.no_violations();
    assert!(
        !c.facts("client", "pong_suppressed").is_empty(),
        "the client dropped a pong"
    );
    let m = c.diag("app_heartbeat_timeout");
    assert!(m.starts_with("Engine.IO ping unanswered for 2"), "{m}");
    assert!(m.contains("> pingTimeout 200 ms; the server closed"), "{m}");
    let close = &c.conn()["close"];
    assert_eq!(
        (close["code"].as_u64(), close["initiator"].as_str()),
        (Some(1005), Some("server"))
    );
    assert!(
        close["summary"]
            .as_str()
            .unwrap()
            .contains("engine.io ping timeout"),
        "{}",
        close["summary"]
    );
}

#[test]
fn socketio2_client_pings_and_binary_type_byte() {
    let c = Case::new("app-socketio2");
    c.no_violations();
    let app = &c.conn()["app"];
    assert_eq!(app["version"], "EIO 3");
    let att = &c.of_type("client", "attachment")[0];
    assert_eq!(att["length"], 16, "the v3 type byte is not counted");
    assert_eq!(
        app["session"]["heartbeat"]["sent"]["client"], 1,
        "Engine.IO 3: the client pings"
    );
    assert_eq!(
        events(&c.of_type("client", "EVENT")).len() + 1,
        c.facts("client", "event_sent").len()
    );
    let timeout = Case::new("app-socketio2-ping-timeout");
    assert!(!timeout.facts("client", "stopped_pinging").is_empty());
    let m = timeout.diag("app_heartbeat_timeout");
    assert!(
        m.starts_with("no Engine.IO ping from the client for "),
        "{m}"
    );
    assert!(
        m.contains("pingInterval + pingTimeout 500 ms; the server gave up"),
        "{m}"
    );
}

#[test]
fn graphql_ws_operations_pair_and_errors_match_the_server_hooks() {
    let c = Case::new("app-graphql-ws");
    c.no_violations();
    let app = &c.conn()["app"];
    assert_eq!(
        (app["protocol"].as_str(), app["recognised_by"].as_str()),
        (Some("graphql-transport-ws"), Some("subprotocol"))
    );
    // Every subscribe the server's onSubscribe saw, by id, in order.
    let ids: Vec<&str> = whats(&c.facts("server", "subscribe"), "id");
    let ours: Vec<String> = c
        .of_type("client", "subscribe")
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, ids);
    // onNext per id == next messages per id.
    for id in &ids {
        let want = c
            .facts("server", "next")
            .iter()
            .filter(|f| f["id"] == *id)
            .count();
        let got = c
            .of_type("server", "next")
            .iter()
            .filter(|p| p["id"] == *id)
            .count();
        assert_eq!(got, want, "next for {id}");
    }
    // The operation error the client saw is the error message.
    let err = &c.facts("client", "operation_error")[0]["errors"][0];
    let ours = &c.of_type("server", "error")[0];
    assert_eq!(ours["message"].as_str(), err.as_str());
    let requests = &app["session"]["requests"];
    assert_eq!(
        (requests["sent"].as_u64(), requests["unanswered"].as_u64()),
        (Some(ids.len() as u64), Some(0))
    );
    assert_eq!(
        c.conn()["diagnostic_counts"]["app_error"],
        2,
        "the error message and the result with errors"
    );
}

#[test]
fn graphql_ws_4408_is_the_init_timeout() {
    let c = Case::new("app-graphql-ws-init-timeout");
    assert_eq!(c.facts("client", "closed")[0]["code"], 4408);
    let close = &c.conn()["close"];
    assert!(
        close["meaning"]
            .as_str()
            .unwrap()
            .starts_with("4408 (graphql-transport-ws): Connection initialisation timeout"),
        "{}",
        close["meaning"]
    );
    assert!(c.diag("app_init_timeout").contains("no connection_init"));
}

#[test]
fn subscriptions_transport_ws_is_named_for_what_it_is() {
    let c = Case::new("app-subscriptions-transport-ws");
    c.no_violations();
    let app = &c.conn()["app"];
    assert_eq!(app["protocol"], "subscriptions-transport-ws");
    assert!(app["note"].as_str().unwrap().contains("graphql-ws"));
    let data = c.of_type("server", "data");
    let nexts = c.facts("client", "next");
    assert_eq!(
        data.len(),
        nexts.len(),
        "each data message the client library delivered"
    );
    assert!(
        app["session"]["heartbeat"]["sent"]["server"]
            .as_u64()
            .unwrap()
            >= 3,
        "ka keep-alives"
    );
    assert!(c.diag("app_error").contains("resolver exploded"));
}

#[test]
fn a_legacy_client_against_graphql_ws_gives_up_on_the_subprotocol() {
    let c = Case::new("app-graphql-mismatch");
    assert_eq!(
        c.facts("client", "error")[0]["message"],
        "Server sent no subprotocol"
    );
    let m = c.diag("subprotocol_not_selected");
    assert!(
        m.contains("offered Sec-WebSocket-Protocol graphql-ws"),
        "{m}"
    );
    assert!(m.contains("the client gave up"), "{m}");
    assert!(
        c.conn()["close"]["meaning"]
            .as_str()
            .unwrap()
            .contains("Subprotocol not acceptable")
    );
}

#[test]
fn mqtt_packets_span_messages_and_qos_flows_pair() {
    let c = Case::new("app-mqtt");
    c.no_violations();
    let app = &c.conn()["app"];
    assert_eq!(
        (app["protocol"].as_str(), app["version"].as_str()),
        (Some("mqtt"), Some("3.1.1"))
    );
    let kinds: Vec<&str> = app["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .filter(|k| *k != "partial")
        .collect();
    for k in [
        "CONNECT",
        "CONNACK",
        "SUBSCRIBE",
        "SUBACK",
        "PUBLISH",
        "PUBACK",
        "PUBREC",
        "PUBREL",
        "PUBCOMP",
        "PINGREQ",
        "PINGRESP",
        "UNSUBSCRIBE",
        "UNSUBACK",
        "DISCONNECT",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    // The broker's publish events (QoS) are the client's PUBLISH packets.
    let qos: Vec<u64> = c
        .facts("server", "publish")
        .iter()
        .filter(|f| f["topic"] == "sensors/temp")
        .map(|f| f["qos"].as_u64().unwrap())
        .collect();
    let ours: Vec<u64> = c
        .of_type("client", "PUBLISH")
        .iter()
        .map(|p| p["qos"].as_u64().unwrap())
        .collect();
    assert_eq!(ours, qos);
    // Deliveries the client logged are the broker's PUBLISH packets.
    assert_eq!(
        c.of_type("server", "PUBLISH").len(),
        c.facts("client", "message").len()
    );
    let r = &app["session"]["requests"];
    assert_eq!(r["unanswered"], 0);
    assert_eq!(app["session"]["handshake"]["ok"], true);
    assert!(app["session"]["heartbeat"]["answered"].as_u64().unwrap() >= 1);
}

#[test]
fn mqtt_refused_and_keepalive_expiry() {
    let c = Case::new("app-mqtt-refused");
    assert_eq!(c.facts("server", "authenticate")[0]["ok"], false);
    let connack = &c.conn()["app"]["packets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "CONNACK")
        .unwrap()
        .clone();
    assert_eq!(connack["code"], 5);
    assert!(c.diag("app_connect_refused").contains("5 not authorized"));
    let k = Case::new("app-mqtt-keepalive");
    assert!(
        !k.facts("server", "keepalive_timeout").is_empty()
            || !k.facts("server", "client_error").is_empty()
    );
    let m = k.diag("app_heartbeat_timeout");
    assert!(m.contains("1.5 x keep-alive 1 s; the broker closed"), "{m}");
}

#[test]
fn stomp_frames_are_the_ones_each_side_logged() {
    let c = Case::new("app-stomp");
    c.no_violations();
    let app = &c.conn()["app"];
    assert_eq!(
        (app["protocol"].as_str(), app["version"].as_str()),
        (Some("stomp"), Some("1.2"))
    );
    let received: Vec<&str> = whats(&c.facts("server", "frame_received"), "command");
    let ours: Vec<String> = c
        .packets("client")
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_string())
        .filter(|k| k != "heartbeat")
        .collect();
    assert_eq!(ours, received);
    let sent: Vec<&str> = whats(&c.facts("server", "frame_sent"), "command");
    let ours: Vec<String> = c
        .packets("server")
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_string())
        .filter(|k| k != "heartbeat")
        .collect();
    assert_eq!(ours, sent);
    let r = &app["session"]["requests"];
    assert_eq!(
        (r["sent"].as_u64(), r["answered"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(app["session"]["heartbeat"]["interval_ms"], 200.0);
}

#[test]
fn stomp_error_and_heartbeat_timeout() {
    let c = Case::new("app-stomp-error");
    let said = c.facts("client", "stomp_error")[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        c.of_type("server", "ERROR")[0]["message"].as_str(),
        Some(said.as_str())
    );
    assert!(c.diag("app_error").contains(&said));
    assert!(
        c.conn()["close"]["summary"]
            .as_str()
            .unwrap()
            .contains("stomp ERROR")
    );
    let h = Case::new("app-stomp-heartbeat");
    assert!(!h.facts("server", "stopped_heartbeats").is_empty());
    let m = h.diag("app_heartbeat_timeout");
    assert!(m.contains("from the server for"), "{m}");
    assert!(m.contains("negotiated every 200 ms"), "{m}");
}

#[test]
fn jsonrpc_requests_pair_by_id_errors_and_the_one_never_answered() {
    let c = Case::new("app-jsonrpc");
    c.no_violations();
    let app = &c.conn()["app"];
    assert_eq!(
        (app["protocol"].as_str(), app["recognised_by"].as_str()),
        (Some("json-rpc"), Some("content"))
    );
    let err = &c.facts("client", "error")[0];
    let ours = &c.of_type("server", "error")[0];
    assert_eq!(ours["code"], err["code"]);
    assert_eq!(c.facts("client", "result")[0]["result"], 3);
    assert!(
        c.of_type("server", "response")[0]["summary"]
            .as_str()
            .unwrap()
            .contains("\"sum\"")
    );
    assert!(!c.facts("client", "closed_with_pending").is_empty());
    let m = c.diag("app_request_unanswered");
    assert!(m.contains("request id 4 \"never\""), "{m}");
    let r = &app["session"]["requests"];
    assert_eq!(
        (
            r["sent"].as_u64(),
            r["answered"].as_u64(),
            r["errors"].as_u64(),
            r["unanswered"].as_u64()
        ),
        (Some(4), Some(3), Some(1), Some(1))
    );
}

#[test]
fn app_none_turns_decoding_off_and_a_forced_name_decodes_anyway() {
    let path = captures_dir().join("app-jsonrpc.pcap");
    let off = report_of(&path, &["--messages", "--app", "none"]);
    assert!(off["connections"][0]["app"].is_null());
    assert!(off["connections"][0]["messages"][0]["app"].is_null());
    let forced = report_of(&path, &["--app", "json-rpc"]);
    assert_eq!(forced["connections"][0]["app"]["recognised_by"], "forced");
    let wrong = report_of(&path, &["--app", "mqtt"]);
    assert!(diag_ids(&wrong["connections"][0]).contains(&"app_protocol_violation".to_string()));
    wsprobe()
        .args(["analyze", "--app", "graphql-ws"])
        .arg(&path)
        .assert()
        .code(2);
}

impl Case {
    /// The report's connection and the truth's for the client port of truth connection `i`.
    fn pair(&self, i: usize) -> (&Value, &Value) {
        let t = &self.truth["connections"][i];
        let port = t["client"]["port"].as_u64().unwrap();
        let c = self.report["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client"]["port"].as_u64() == Some(port))
            .unwrap_or_else(|| panic!("no connection from port {port}"));
        (c, t)
    }
}

/// The decoded packets of `from`'s data messages on `conn`, in order.
fn packets_of(conn: &Value, from: &str) -> Vec<Value> {
    conn["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["from"] == from && matches!(m["opcode"].as_str(), Some("text" | "binary")))
        .map(|m| {
            assert!(m["app"].is_object(), "a data message without app: {m}");
            m["app"].clone()
        })
        .collect()
}

/// The application facts of `role` with `what` in truth connection `t`.
fn facts_of<'a>(t: &'a Value, role: &str, what: &str) -> Vec<&'a Value> {
    t["app"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["role"] == role && e["what"] == what)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn actioncable_messages_match_what_the_rails_server_and_the_npm_client_did() {
    let c = Case::new("app-actioncable");
    let (conn, truth) = c.pair(0);
    let app = &conn["app"];
    assert_eq!(
        (app["protocol"].as_str(), app["recognised_by"].as_str()),
        (Some("actioncable"), Some("subprotocol"))
    );
    // Every message the client library handled, by its type, in order, is the server's packet.
    let handled: Vec<&str> = whats(&facts_of(truth, "client", "received"), "type");
    let server: Vec<String> = packets_of(conn, "server")
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(server, handled);
    assert_eq!(
        handled,
        [
            "welcome",
            "confirm_subscription",
            "message",
            "reject_subscription",
            "ping",
            "ping",
            "disconnect"
        ]
    );
    // The client's commands: two subscriptions, then the actions it performed.
    let client = packets_of(conn, "client");
    let commands: Vec<(&str, &str)> = client
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap(),
                p["channel"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        commands,
        [
            ("subscribe", "EchoChannel"),
            ("message", "EchoChannel"),
            ("subscribe", "RejectChannel"),
            ("message", "EchoChannel")
        ]
    );
    let performed: Vec<&str> = whats(&facts_of(truth, "client", "performed"), "action");
    let actions: Vec<&str> = client.iter().filter_map(|p| p["action"].as_str()).collect();
    assert_eq!(actions, performed);
    // The server channel's own account: speak echoed, RejectChannel rejected.
    assert_eq!(
        facts_of(truth, "server", "action_received")[0]["text"],
        "hello cable"
    );
    assert!(!facts_of(truth, "server", "subscription_rejected").is_empty());
    let rejected = conn["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == "app_error")
        .expect("app_error for the rejection");
    assert!(
        rejected["message"]
            .as_str()
            .unwrap()
            .contains("subscription to RejectChannel rejected")
    );
    let requests = &app["session"]["requests"];
    assert_eq!(
        (
            requests["sent"].as_u64(),
            requests["answered"].as_u64(),
            requests["errors"].as_u64()
        ),
        (Some(2), Some(2), Some(1))
    );
    // The server's 3 s pings, counted as heartbeats.
    let hb = &app["session"]["heartbeat"];
    assert_eq!(hb["sent"]["server"], 2);
    assert!((hb["max_gap_ms"]["server"].as_f64().unwrap() - 3000.0).abs() < 100.0);
    // The restart: disconnect server_restart, reconnect true, as the server logged it.
    let restart = &facts_of(truth, "server", "server_restart")[0];
    let disconnect = packets_of(conn, "server").pop().unwrap();
    assert_eq!(disconnect["reason"], restart["reason"]);
    assert_eq!(disconnect["reconnect"], restart["reconnect"]);
    let close = &app["session"]["close"];
    assert_eq!(close["reason"], "server_restart");
    assert!(
        close["meaning"].as_str().unwrap().contains("restarting"),
        "{close}"
    );
    assert!(!diag_ids(conn).contains(&"app_protocol_violation".to_string()));

    // No user: the connection class refused it before any welcome.
    let (refused, truth) = c.pair(1);
    let why = &facts_of(truth, "server", "connect_rejected")[0];
    let packets = packets_of(refused, "server");
    assert_eq!(packets.len(), 1);
    assert_eq!(packets[0]["type"], "disconnect");
    assert_eq!(packets[0]["reason"], why["reason"]);
    assert_eq!(packets[0]["reconnect"], false);
    assert_eq!(
        facts_of(truth, "client", "received")[0]["reason"],
        "unauthorized"
    );
    assert!(diag_ids(refused).contains(&"app_connect_refused".to_string()));
}

#[test]
fn sockjs_frames_carry_what_both_libraries_sent_and_the_close_3000() {
    let c = Case::new("app-sockjs");
    c.no_violations();
    let (conn, truth) = c.pair(0);
    let app = &conn["app"];
    assert_eq!(
        (app["protocol"].as_str(), app["recognised_by"].as_str()),
        (Some("sockjs"), Some("path"))
    );
    // The client's send() calls are its messages, in order (lengths in UTF-8 bytes).
    let sent: Vec<&str> = whats(&facts_of(truth, "client", "sent"), "data");
    let ours = packets_of(conn, "client");
    assert_eq!(ours.len(), sent.len());
    for (p, data) in ours.iter().zip(&sent) {
        assert_eq!(p["type"], "message");
        assert_eq!(p["length"].as_u64(), Some(data.len() as u64), "{p}");
    }
    // The server: o, what conn.write() sent, then conn.close(3000, "Go away!").
    let written: Vec<&str> = whats(&facts_of(truth, "server", "data_sent"), "data");
    let server = packets_of(conn, "server");
    assert_eq!(server[0]["type"], "o");
    let messages: Vec<&Value> = server.iter().filter(|p| p["type"] == "message").collect();
    assert_eq!(messages.len(), written.len());
    for (p, data) in messages.iter().zip(&written) {
        assert_eq!(p["length"].as_u64(), Some(data.len() as u64), "{p}");
    }
    let closed = &facts_of(truth, "server", "closed_session")[0];
    let last = server.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["code"].as_u64()),
        (Some("c"), closed["code"].as_u64())
    );
    assert_eq!(last["reason"], closed["reason"]);
    // The client library's onclose saw the SockJS code, not the WebSocket's 1000.
    let onclose = &facts_of(truth, "client", "close")[0];
    assert_eq!(onclose["code"], 3000);
    assert_eq!(conn["close"]["code"], 1000);
    let meaning = app["session"]["close"]["meaning"].as_str().unwrap();
    assert!(meaning.contains("Go away!"), "{meaning}");
    // Its heartbeats went as WebSocket pings on this transport, all answered.
    assert_eq!(conn["frames"]["server"]["ping"], 2);
    assert_eq!(conn["frames"]["client"]["pong"], 2);
}

#[test]
fn stomp_inside_sockjs_is_decoded_like_stomp_on_its_own() {
    let c = Case::new("app-stomp-sockjs");
    c.no_violations();
    let (conn, truth) = c.pair(0);
    let app = &conn["app"];
    assert_eq!(app["recognised_by"], "path");
    assert_eq!(app["protocol"], "stomp");
    // The commands the server parsed are the client's STOMP frames.
    let received: Vec<&str> = facts_of(truth, "server", "frame_received")
        .iter()
        .filter_map(|f| f["command"].as_str())
        .collect();
    let ours: Vec<String> = packets_of(conn, "client")
        .iter()
        .filter(|p| p["type"] != "heartbeat")
        .map(|p| p["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, received);
    let sent: Vec<&str> = facts_of(truth, "server", "frame_sent")
        .iter()
        .filter_map(|f| f["command"].as_str())
        .collect();
    let theirs: Vec<String> = packets_of(conn, "server")
        .iter()
        .filter(|p| p["type"] != "heartbeat" && p["type"] != "o")
        .map(|p| p["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(theirs, sent);
    let r = &app["session"]["requests"];
    assert_eq!(
        (r["sent"].as_u64(), r["answered"].as_u64()),
        (Some(3), Some(3)),
        "receipts r-sub, r-send and the DISCONNECT's"
    );
    // The client's heart-beats, each a ["\n"] array the server logged.
    let beats = facts_of(truth, "server", "heartbeat_received").len();
    let ours = packets_of(conn, "client")
        .iter()
        .filter(|p| p["type"] == "heartbeat")
        .count();
    assert_eq!(ours, beats);
    assert!(app["session"]["heartbeat"]["sent"]["client"].as_u64() >= Some(beats as u64));
}

#[test]
fn several_engine_io_ping_timeouts_each_record_who_gave_up_and_after_how_long() {
    let c = Case::new("app-socketio4-ping-timeouts");
    c.no_violations();
    let mut stuck = 0;
    for i in 0..6 {
        let (conn, truth) = c.pair(i);
        let who = facts_of(truth, "server", "connection")[0]["who"]
            .as_str()
            .unwrap()
            .to_string();
        let reason = facts_of(truth, "server", "disconnect")[0]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        let t = &conn["app"]["session"]["heartbeat"]["timed_out"];
        if who.starts_with("stuck") {
            stuck += 1;
            assert_eq!(reason, "ping timeout");
            assert_eq!(
                (
                    t["kind"].as_str(),
                    t["silent"].as_str(),
                    t["ended_by"].as_str()
                ),
                (Some("ping_unanswered"), Some("client"), Some("server")),
                "{who}"
            );
            assert_eq!(t["limit_ms"], 200.0);
            let waited = t["waited_ms"].as_f64().unwrap();
            assert!((200.0..260.0).contains(&waited), "{who}: {waited}");
            assert!(diag_ids(conn).contains(&"app_heartbeat_timeout".to_string()));
        } else {
            assert_eq!(reason, "client namespace disconnect");
            assert!(t.is_null(), "{who}: {t}");
        }
    }
    assert_eq!(stuck, 4);
}

#[test]
fn tunnels_through_websockify_name_what_the_inner_clients_and_servers_said() {
    let c = Case::new("app-tunnels");
    c.no_violations();
    let mut seen = Vec::new();
    for i in 0..3 {
        let (conn, truth) = c.pair(i);
        let inner = &facts_of(truth, "client", "inner_client")[0];
        let kind = inner["inner"].as_str().unwrap();
        seen.push(kind.to_string());
        let app = &conn["app"];
        assert_eq!(app["protocol"], format!("tunnel:{kind}"), "{app}");
        // websockify's "binary" subprotocol where the client asked for it, else the bytes.
        let offered = truth["handshake"]["subprotocol"]["server"].is_string();
        let by = app["recognised_by"].as_str().unwrap();
        assert_eq!(
            by,
            if offered { "subprotocol" } else { "content" },
            "{kind}"
        );
        // The first message each way is the inner protocol's opening, as its endpoints said.
        let client = packets_of(conn, "client");
        let server = packets_of(conn, "server");
        assert_eq!(client[0]["type"], "banner");
        assert_eq!(server[0]["type"], "banner");
        assert_eq!(client[0]["inside"], kind);
        let (want_client, want_server) = match kind {
            "ssh" => (
                inner["local_version"].as_str().unwrap().to_string(),
                inner["remote_version"].as_str().unwrap().to_string(),
            ),
            "tls" => (
                format!("ClientHello SNI {}", inner["sni"].as_str().unwrap()),
                "ServerHello".to_string(),
            ),
            _ => (
                inner["request_line"].as_str().unwrap().to_string(),
                inner["status_line"].as_str().unwrap().to_string(),
            ),
        };
        assert_eq!(client[0]["banner"], want_client.as_str(), "{kind}");
        assert_eq!(server[0]["banner"], want_server.as_str(), "{kind}");
        // Every byte each library carried is counted on its side.
        let logged = |from: &str| -> u64 {
            truth["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["from"] == from && m["opcode"] == "binary")
                .map(|m| m["length"].as_u64().unwrap())
                .sum()
        };
        let bytes = &app["session"]["details"]["bytes"];
        assert_eq!(bytes["client"].as_u64(), Some(logged("client")), "{kind}");
        assert_eq!(bytes["server"].as_u64(), Some(logged("server")), "{kind}");
        assert!(
            app["session"]["summary"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{} tunnelled", kind.to_uppercase())),
            "{app}"
        );
    }
    seen.sort();
    assert_eq!(seen, ["http", "ssh", "tls"]);
}

/// `pcap` (a classic pcap file) without its first packets: everything up to and including the
/// one that carries the first `HTTP/1.1 101`, and `extra` more: a capture started mid-stream.
fn started_after_the_handshake(pcap: &[u8], extra: usize) -> Vec<u8> {
    let big = pcap[..4] == [0xa1, 0xb2, 0xc3, 0xd4];
    let u32_at = |i: usize| {
        let b = [pcap[i], pcap[i + 1], pcap[i + 2], pcap[i + 3]];
        if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    let mut out = pcap[..24].to_vec();
    let (mut i, mut to_drop) = (24, None::<usize>);
    while i + 16 <= pcap.len() {
        let end = i + 16 + u32_at(i + 8) as usize;
        let record = &pcap[i..end];
        match to_drop {
            None if record.windows(12).any(|w| w == b"HTTP/1.1 101") => to_drop = Some(extra),
            None => {}
            Some(0) => out.extend_from_slice(record),
            Some(n) => to_drop = Some(n - 1),
        }
        i = end;
    }
    out
}

#[test]
fn a_capture_started_mid_stream_is_recognised_from_its_messages_and_decoded_alike() {
    for (stem, protocol) in [
        ("app-socketio2", "socket.io"),
        ("app-graphql-ws", "graphql-transport-ws"),
        ("app-actioncable", "actioncable"),
        ("app-jsonrpc", "json-rpc"),
    ] {
        let path = captures_dir().join(format!("{stem}.pcap"));
        let full = report_of(&path, &["--messages"]);
        let cut = report_bytes(
            &started_after_the_handshake(&std::fs::read(&path).unwrap(), 6),
            &["--messages"],
        );
        let conn = &cut["connections"][0];
        assert!(
            diag_ids(conn).contains(&"midstream_start".to_string()),
            "{stem}"
        );
        let app = &conn["app"];
        assert_eq!(app["protocol"], protocol, "{stem}: {app}");
        assert_eq!(app["recognised_by"], "content", "{stem}");
        // Each message left is decoded as it was with the handshake in the capture.
        let port = conn["client"]["port"].as_u64();
        let whole = full["connections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client"]["port"].as_u64() == port)
            .unwrap();
        // Compared side by side in order, not by time: the resynchronised frames of a
        // mid-stream start are stamped with the packet that confirmed them.
        let types = |c: &Value, side: &str| -> Vec<String> {
            c["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["from"] == side)
                .filter(|m| matches!(m["opcode"].as_str(), Some("text" | "binary")))
                .map(|m| m["app"]["type"].as_str().unwrap_or("-").to_string())
                .collect()
        };
        for side in ["client", "server"] {
            let ours = types(conn, side);
            let all = types(whole, side);
            assert!(!ours.is_empty(), "{stem}: no {side} messages");
            assert!(
                all.ends_with(&ours),
                "{stem} {side}: {ours:?} is not the end of {all:?}"
            );
        }
    }
}
