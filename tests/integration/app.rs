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
