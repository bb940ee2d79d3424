//! Phoenix Channels (phoenixframework/phoenix assets/js/phoenix): v2 arrays
//! `[join_ref, ref, topic, event, payload]` and v1 objects `{topic, event, payload, ref}`;
//! pushes paired with their `phx_reply` by ref, heartbeats on topic `phoenix`, join refusals,
//! the client's "heartbeat timeout" close. Binary v2 messages show their kind only.

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{AppCloseRecord, AppSessionRecord};

use super::session::{Heartbeat, Requests};
use super::{
    Decoded, Decoder, End, Finish, Fit, HandshakeInfo, Input, Packet, cut, human, ms, short,
};

struct Msg {
    join_ref: Option<String>,
    r#ref: Option<String>,
    topic: String,
    event: String,
    payload: Value,
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn parse(v: Value) -> Result<Msg, String> {
    match v {
        Value::Array(mut a) if a.len() == 5 => {
            let payload = a.pop().unwrap_or(Value::Null);
            let event = a[3]
                .as_str()
                .ok_or("event (element 4) is not a string")?
                .to_string();
            let topic = a[2]
                .as_str()
                .ok_or("topic (element 3) is not a string")?
                .to_string();
            Ok(Msg {
                join_ref: text(&a[0]),
                r#ref: text(&a[1]),
                topic,
                event,
                payload,
            })
        }
        Value::Array(a) => Err(format!("v2 message with {} elements (must be 5)", a.len())),
        Value::Object(o) => {
            let topic = o
                .get("topic")
                .and_then(Value::as_str)
                .ok_or("v1 message without a string topic")?
                .to_string();
            let event = o
                .get("event")
                .and_then(Value::as_str)
                .ok_or("v1 message without a string event")?
                .to_string();
            Ok(Msg {
                join_ref: o.get("join_ref").and_then(text),
                r#ref: o.get("ref").and_then(text),
                topic,
                event,
                payload: o.get("payload").cloned().unwrap_or(Value::Null),
            })
        }
        _ => Err("neither a v2 array nor a v1 object".into()),
    }
}

/// One connection's Phoenix session.
pub struct Phoenix {
    vsn: Option<String>,
    heartbeat: Heartbeat,
    pushes: Requests,
    joins: Map<String, Value>,
    close: Option<AppCloseRecord>,
    ws_close_reason: Option<(Side, f64, u16, String)>,
}

impl Phoenix {
    /// A session; the URL's `vsn` names the serializer.
    pub fn new(hs: &HandshakeInfo) -> Self {
        let mut heartbeat = Heartbeat::new("phoenix heartbeat");
        heartbeat.interval = Some(30.0);
        heartbeat.timeout = Some(30.0);
        heartbeat.configured_by = Some("library default (heartbeatIntervalMs 30 s)".into());
        Phoenix {
            vsn: hs.query("vsn").map(str::to_string),
            heartbeat,
            pushes: Requests::new("ref"),
            joins: Map::new(),
            close: None,
            ws_close_reason: None,
        }
    }
}

impl Decoder for Phoenix {
    fn name(&self) -> String {
        "phoenix".into()
    }

    fn version(&self) -> Option<String> {
        self.vsn.clone()
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if m.binary {
            return if matches!(m.payload.first(), Some(0..=2)) && self.vsn.is_some() {
                Fit::Neutral
            } else {
                Fit::No
            };
        }
        let Ok(v) = serde_json::from_slice::<Value>(m.payload) else {
            return Fit::No;
        };
        if let Value::Object(o) = &v
            && o.keys().any(|k| {
                !matches!(
                    k.as_str(),
                    "topic" | "event" | "payload" | "ref" | "join_ref"
                )
            })
        {
            return Fit::No;
        }
        match parse(v) {
            Ok(msg)
                if msg.event.starts_with("phx_")
                    || (msg.topic == "phoenix" && msg.event == "heartbeat") =>
            {
                Fit::Strong
            }
            Ok(_) => Fit::Weak,
            Err(_) => Fit::No,
        }
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.complete {
            out.push(Packet::new(
                "incomplete",
                format!(
                    "phoenix: message incomplete ({} B kept of {})",
                    m.payload.len(),
                    m.length
                ),
            ));
            return;
        }
        if m.binary {
            let kind = match m.payload.first() {
                Some(0) => "push",
                Some(1) => "reply",
                Some(2) => "broadcast",
                _ => {
                    return out.violation(
                        "phoenix",
                        m,
                        "binary message of unknown kind (0 push, 1 reply, 2 broadcast)",
                    );
                }
            };
            out.push(Packet::new(
                kind,
                format!("phoenix binary {kind} {} B (not decoded)", m.payload.len()),
            ));
            return;
        }
        let msg = match serde_json::from_slice::<Value>(m.payload)
            .map_err(|e| format!("not JSON ({e})"))
            .and_then(parse)
        {
            Ok(msg) => msg,
            Err(e) => return out.violation("phoenix", m, e),
        };
        let mut p = Packet::new(msg.event.clone(), "")
            .with("topic", msg.topic.clone())
            .with_opt("ref", msg.r#ref.clone())
            .with_opt("join_ref", msg.join_ref.clone());
        let mut s = format!("phoenix {} {:?}", msg.event, msg.topic);
        if let Some(r) = &msg.r#ref {
            s.push_str(&format!(" ref {r}"));
        }
        let heartbeat = msg.topic == "phoenix";
        match (m.from, msg.event.as_str()) {
            (_, "phx_reply") => {
                let status = msg
                    .payload
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                s.push_str(&format!(" {status}"));
                p = p.with("status", status);
                let error = status != "ok";
                if let Some(r) = &msg.r#ref
                    && let Some((l, what)) = self.pushes.answer(
                        &format!("{}:{r}", m.from.peer().as_str()),
                        m.time,
                        error,
                    )
                {
                    s.push_str(&format!(" ({what}, {} later)", human(l)));
                    p = p.with("latency_ms", ms(l));
                    if heartbeat {
                        self.heartbeat.pong(m.from, m.time);
                    }
                    if what.starts_with("phx_join") {
                        self.joins.insert(msg.topic.clone(), status.into());
                        if error {
                            let response =
                                msg.payload.get("response").map(short).unwrap_or_default();
                            out.diag(
                                DiagnosticId::AppConnectRefused,
                                m.from,
                                m.time,
                                format!("phoenix: join of {:?} refused: {response}", msg.topic),
                            );
                        }
                    } else if error {
                        out.diag(
                            DiagnosticId::AppError,
                            m.from,
                            m.time,
                            format!("phoenix: {what} on {:?} answered {status}", msg.topic),
                        );
                    }
                }
                out.heartbeat = heartbeat;
            }
            (_, "phx_error") => {
                out.diag(
                    DiagnosticId::AppError,
                    m.from,
                    m.time,
                    format!("phoenix: channel {:?} crashed (phx_error)", msg.topic),
                );
            }
            (from, event) => {
                if let Some(r) = &msg.r#ref
                    && from == Side::Client
                {
                    self.pushes.open(
                        format!("{}:{r}", from.as_str()),
                        event.to_string(),
                        from,
                        m.time,
                    );
                }
                if heartbeat && event == "heartbeat" {
                    self.heartbeat.ping(from, m.time);
                    out.heartbeat = true;
                }
                if event != "heartbeat" {
                    s.push_str(&format!(" {}", cut(&msg.payload.to_string(), 40)));
                }
            }
        }
        p.summary = s;
        out.push(p);
    }

    fn close_frame(&mut self, close: &super::CloseSeen) {
        self.ws_close_reason.get_or_insert((
            close.from,
            close.time,
            close.code,
            close.reason.clone(),
        ));
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let mut fin = Finish::default();
        if let Some((side, t, code, reason)) = &self.ws_close_reason
            && reason == "heartbeat timeout"
        {
            let since = self
                .heartbeat
                .pending(Side::Client)
                .map(|p| {
                    format!(
                        ": the heartbeat sent {} earlier got no phx_reply",
                        human(t - p)
                    )
                })
                .unwrap_or_default();
            out.push(Diagnostic::new(
                DiagnosticId::AppHeartbeatTimeout,
                Some(side.peer()),
                Some(*t),
                format!(
                    "phoenix: the {} closed {code} \"heartbeat timeout\"{since}",
                    side.as_str()
                ),
            ));
            fin.end_reason = Some("phoenix heartbeat timeout".into());
            self.close = Some(AppCloseRecord {
                from: Some(*side),
                time: Some(*t),
                code: Some(i64::from(*code)),
                reason: Some(reason.clone()),
                meaning: "the client's heartbeat got no reply within heartbeatIntervalMs".into(),
            });
        }
        let mut session = AppSessionRecord::default();
        if self.heartbeat.any() {
            session.heartbeat = Some(self.heartbeat.record());
        }
        if self.pushes.any() {
            session.requests = Some(self.pushes.finish("phoenix", end, out));
        }
        let mut details = Map::new();
        if !self.joins.is_empty() {
            details.insert("joins".into(), Value::Object(self.joins.clone()));
        }
        session.details = details;
        session.close = self.close.clone();
        session.summary = format!(
            "{} channel joins{}",
            self.joins.len(),
            fin.end_reason
                .as_ref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        );
        fin.session = session;
        fin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::input;

    #[test]
    fn v2_pushes_pair_with_replies_and_heartbeats_beat() {
        let mut p = Phoenix::new(&HandshakeInfo {
            path: "/socket/websocket?vsn=2.0.0".into(),
            ..HandshakeInfo::default()
        });
        let mut run = |from, t, text: &str| {
            let mut d = Decoded::default();
            p.message(&input(from, t, text), &mut d);
            d
        };
        run(Side::Client, 1.0, r#"["1","1","room:lobby","phx_join",{}]"#);
        let d = run(
            Side::Server,
            1.01,
            r#"["1","1","room:lobby","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]"#,
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppConnectRefused);
        assert!(run(Side::Client, 2.0, r#"[null,"2","phoenix","heartbeat",{}]"#).heartbeat);
        let d = run(
            Side::Server,
            2.001,
            r#"[null,"2","phoenix","phx_reply",{"status":"ok","response":{}}]"#,
        );
        assert!(d.heartbeat);
        // v1 objects too.
        let d = run(
            Side::Client,
            3.0,
            r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"3"}"#,
        );
        assert!(d.heartbeat);
        for bad in ["[1,2,3]", "{}", "[null,null,1,\"e\",{}]", "x"] {
            assert_eq!(
                run(Side::Server, 4.0, bad).diagnostics[0].id,
                DiagnosticId::AppProtocolViolation,
                "{bad}"
            );
        }
        p.close_frame(&super::super::CloseSeen {
            from: Side::Client,
            time: 5.0,
            code: 1000,
            reason: "heartbeat timeout".into(),
        });
        let mut diags = Vec::new();
        p.finish(
            &End {
                last_seen: 5.0,
                ..End::default()
            },
            &mut diags,
        );
        assert!(
            diags
                .iter()
                .any(|d| d.id == DiagnosticId::AppHeartbeatTimeout),
            "{diags:?}"
        );
    }
}
