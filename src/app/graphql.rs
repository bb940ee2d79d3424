//! GraphQL over WebSocket, both protocols whose names confuse people:
//! - graphql-transport-ws, spoken by the `graphql-ws` library (subprotocol
//!   `graphql-transport-ws`): `connection_init`, `connection_ack`, `ping`, `pong`, `subscribe`,
//!   `next`, `error`, `complete`; close codes 4400-4499 (enisdenjo/graphql-ws PROTOCOL.md).
//! - subscriptions-transport-ws, Apollo's legacy protocol, whose subprotocol is named
//!   **`graphql-ws`**: `connection_init`, `connection_ack`, `connection_error`, `ka`, `start`,
//!   `data`, `error`, `complete`, `stop`, `connection_terminate`.
//!
//! Operations are paired by id from `subscribe`/`start` to their first answer and to their
//! `complete`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{AppCloseRecord, AppHandshakeRecord, AppSessionRecord};

use super::session::{Heartbeat, Requests};
use super::{
    CloseSeen, Decoded, Decoder, End, Finish, Fit, HandshakeInfo, Input, Packet, cut, human, ms,
};

/// Which of the two protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// graphql-transport-ws (the graphql-ws library).
    TransportWs,
    /// subscriptions-transport-ws (subprotocol `graphql-ws`).
    Legacy,
}

impl Flavour {
    fn name(self) -> &'static str {
        match self {
            Flavour::TransportWs => "graphql-transport-ws",
            Flavour::Legacy => "subscriptions-transport-ws",
        }
    }
}

const COMMON: [&str; 4] = ["connection_init", "connection_ack", "error", "complete"];
const TRANSPORT_ONLY: [&str; 4] = ["ping", "pong", "subscribe", "next"];
const LEGACY_ONLY: [&str; 6] = [
    "connection_error",
    "ka",
    "start",
    "data",
    "stop",
    "connection_terminate",
];

fn flavour_of(kind: &str) -> Option<Flavour> {
    if TRANSPORT_ONLY.contains(&kind) {
        Some(Flavour::TransportWs)
    } else if LEGACY_ONLY.contains(&kind) {
        Some(Flavour::Legacy)
    } else {
        None
    }
}

/// The meaning of a WebSocket close code under graphql-transport-ws (`CloseCode` in
/// graphql-ws's common.ts).
pub fn transport_close_meaning(code: u16) -> Option<&'static str> {
    Some(match code {
        4400 => {
            "Bad Request: the server got an invalid message (often a subscriptions-transport-ws client talking to a graphql-ws server)"
        }
        4401 => "Unauthorized: subscribe before the connection was acknowledged",
        4403 => "Forbidden: the server's onConnect refused the connection",
        4406 => "Subprotocol not acceptable: the client did not ask for graphql-transport-ws",
        4408 => {
            "Connection initialisation timeout: no connection_init within connectionInitWaitTimeout (3 s by default)"
        }
        4409 => "Subscriber already exists: a subscribe reused an id still in use",
        4429 => "Too many initialisation requests: more than one connection_init",
        4500 => "Internal server error",
        4005 => "Internal client error",
        4004 => "Bad response: the client got an invalid message",
        4504 => "Connection acknowledgement timeout (client side)",
        4499 => "Terminated: the client's terminate() (the socket may not have closed cleanly)",
        _ => return None,
    })
}

fn legacy_close_meaning(code: u16) -> Option<&'static str> {
    Some(match code {
        1002 => {
            "Protocol Error: a subscriptions-transport-ws server refuses a client that did not ask for the graphql-ws subprotocol (often a graphql-transport-ws client talking to an old server)"
        }
        1011 => {
            "Internal Error: subscriptions-transport-ws closes so when onConnect fails (connection_error first)"
        }
        _ => return None,
    })
}

/// A message with only what the decoder reads: `payload` stays raw until its type says what
/// to take from it.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: Option<Value>,
    id: Option<Value>,
    #[serde(borrow)]
    payload: Option<&'a serde_json::value::RawValue>,
}

/// A message for recognition: nothing beside type, id and payload.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StrictEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
    #[serde(rename = "payload", borrow)]
    _payload: Option<&'a serde_json::value::RawValue>,
}

/// A `next`/`data` payload: its `errors`; `data` is skipped.
#[derive(serde::Deserialize)]
struct ResultPayload {
    errors: Option<Value>,
}

struct Operation {
    answered: bool,
    completed: bool,
    nexts: u64,
}

/// One connection's GraphQL session.
pub struct Graphql {
    flavour: Option<Flavour>,
    by_subprotocol: bool,
    subprotocol: Option<String>,
    opened: Option<f64>,
    init: Option<f64>,
    ack: Option<(f64, bool, String)>,
    first_request: Option<f64>,
    heartbeat: Heartbeat,
    ops: Requests,
    live: BTreeMap<String, Operation>,
    errors: u64,
    mismatch_reported: bool,
    close: Option<CloseSeen>,
    terminated: Option<(Side, f64)>,
}

impl Graphql {
    /// A session; the selected subprotocol (or `--app`) names the flavour.
    pub fn new(hs: &HandshakeInfo, forced: Option<Flavour>) -> Self {
        // The selected subprotocol, else the one offered (the server may have selected none).
        let named = hs.selected.clone().or_else(|| hs.offered.first().cloned());
        let by_sub = match named.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("graphql-transport-ws") => Some(Flavour::TransportWs),
            Some("graphql-ws" | "graphql-subscriptions") => Some(Flavour::Legacy),
            _ => None,
        };
        let flavour = forced.or(by_sub);
        Graphql {
            flavour,
            by_subprotocol: by_sub.is_some(),
            subprotocol: hs.selected.clone(),
            opened: hs.response_time,
            init: None,
            ack: None,
            first_request: None,
            heartbeat: Heartbeat::new("graphql ping/pong"),
            ops: Requests::new("operation id"),
            live: BTreeMap::new(),
            errors: 0,
            mismatch_reported: false,
            close: None,
            terminated: None,
        }
    }

    fn proto(&self) -> &'static str {
        self.flavour.map_or("graphql", Flavour::name)
    }

    fn answer(&mut self, id: &str, time: f64, error: bool) -> Option<f64> {
        let op = self.live.get_mut(id)?;
        if op.answered {
            return None;
        }
        op.answered = true;
        self.ops.answer(id, time, error).map(|(l, _)| l)
    }
}

fn errors_text(v: Option<&Value>) -> String {
    let messages: Vec<String> = match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .map_or_else(|| e.to_string(), str::to_string)
            })
            .collect(),
        Some(Value::Object(o)) => vec![
            o.get("message")
                .and_then(Value::as_str)
                .map_or_else(|| Value::Object(o.clone()).to_string(), str::to_string),
        ],
        Some(other) => vec![other.to_string()],
        None => vec![],
    };
    cut(&messages.join("; "), 120)
}

impl Decoder for Graphql {
    fn name(&self) -> String {
        self.proto().into()
    }

    fn note(&self) -> Option<String> {
        match (self.flavour, self.subprotocol.as_deref()) {
            (Some(Flavour::Legacy), Some("graphql-ws")) => Some("the subprotocol `graphql-ws` is the legacy subscriptions-transport-ws protocol (Apollo), not the protocol of the graphql-ws library, which is graphql-transport-ws".into()),
            (Some(Flavour::TransportWs), _) => Some("graphql-transport-ws is the protocol of the graphql-ws library (not the legacy subscriptions-transport-ws, whose subprotocol is confusingly named graphql-ws)".into()),
            (Some(Flavour::Legacy), _) => Some("subscriptions-transport-ws: Apollo's legacy protocol (subprotocol graphql-ws)".into()),
            (None, _) => Some("only messages common to graphql-transport-ws and subscriptions-transport-ws were seen".into()),
        }
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if m.binary || m.payload.trim_ascii_start().first() != Some(&b'{') {
            return Fit::No;
        }
        // Only type, id and payload are allowed; the payload is not built.
        let Ok(e) = serde_json::from_slice::<StrictEnvelope<'_>>(m.payload) else {
            return Fit::No;
        };
        let Some(kind) = e.kind.as_deref() else {
            return Fit::No;
        };
        if kind == "connection_init" {
            return Fit::Strong;
        }
        if COMMON.contains(&kind) || flavour_of(kind).is_some() {
            Fit::Weak
        } else {
            Fit::No
        }
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.complete {
            out.push(Packet::new(
                "incomplete",
                format!(
                    "graphql: message incomplete ({} B kept of {})",
                    m.payload.len(),
                    m.length
                ),
            ));
            return;
        }
        let proto = self.proto();
        if m.binary {
            return out.violation(proto, m, "binary message (the protocol is JSON text)");
        }
        // Typed, so that a large result's `data` is skipped, never built as a Value.
        if m.payload.trim_ascii_start().first() != Some(&b'{') {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(m.payload) {
                Ok(_) => out.violation(proto, m, "message is not a JSON object"),
                Err(e) => out.violation(proto, m, format!("not JSON ({e})")),
            };
        }
        let envelope: Envelope<'_> = match serde_json::from_slice(m.payload) {
            Ok(e) => e,
            Err(e) => return out.violation(proto, m, format!("not JSON ({e})")),
        };
        let Some(kind) = envelope
            .kind
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return out.violation(proto, m, "message without a string \"type\"");
        };
        if let Some(f) = flavour_of(&kind) {
            match self.flavour {
                None => self.flavour = Some(f),
                Some(have) if have != f && !self.mismatch_reported => {
                    self.mismatch_reported = true;
                    let how = if self.by_subprotocol {
                        "negotiated"
                    } else {
                        "seen so far"
                    };
                    out.diag(
                        DiagnosticId::AppProtocolViolation,
                        m.from,
                        m.time,
                        format!(
                            "{}: {:?} is a {} message, but the protocol {how} is {} (the two GraphQL protocols mixed: client and server libraries do not match)",
                            have.name(), kind, f.name(), have.name()
                        ),
                    );
                }
                _ => {}
            }
        } else if !COMMON.contains(&kind.as_str()) {
            return out.violation(proto, m, format!("unknown message type {kind:?}"));
        }
        let proto = self.proto();
        let id = envelope.id.as_ref().map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        let mut p = Packet::new(kind.clone(), "").with_opt("id", id.clone());
        let mut summary = format!("graphql {kind}");
        if let Some(id) = &id {
            summary.push_str(&format!(" id {id}"));
        }
        let needs_id = matches!(
            kind.as_str(),
            "subscribe" | "start" | "next" | "data" | "complete" | "stop"
        ) || (kind == "error" && self.flavour == Some(Flavour::TransportWs));
        if needs_id && id.is_none() {
            return out.violation(proto, m, format!("{kind} without an id"));
        }
        let is_result = matches!(kind.as_str(), "next" | "data");
        let payload_value: Option<Value> = if is_result {
            None
        } else {
            envelope
                .payload
                .map(|r| serde_json::from_str(r.get()).unwrap_or(Value::Null))
        };
        let payload = payload_value.as_ref();
        let result_errors: Option<Value> = if is_result {
            envelope
                .payload
                .and_then(|r| serde_json::from_str::<ResultPayload>(r.get()).ok())
                .and_then(|r| r.errors)
        } else {
            None
        };
        match kind.as_str() {
            "connection_init" => {
                if self.init.is_some() {
                    summary.push_str(" (again: graphql-ws closes 4429)");
                }
                self.init.get_or_insert(m.time);
            }
            "connection_ack" => {
                let after = self.init.map(|t| m.time - t);
                if let Some(a) = after {
                    summary.push_str(&format!(" ({} after connection_init)", human(a)));
                }
                self.ack.get_or_insert((m.time, true, summary.clone()));
            }
            "connection_error" => {
                let text = errors_text(payload);
                summary.push_str(&format!(": {text}"));
                self.ack.get_or_insert((m.time, false, summary.clone()));
                self.errors += 1;
                out.diag(
                    DiagnosticId::AppConnectRefused,
                    m.from,
                    m.time,
                    format!("{proto}: connection_error: {text}"),
                );
            }
            "ping" | "pong" => {
                out.heartbeat = true;
                if kind == "ping" {
                    self.heartbeat.ping(m.from, m.time);
                } else if let Some(rtt) = self.heartbeat.pong(m.from, m.time) {
                    summary.push_str(&format!(" ({} after the ping)", human(rtt)));
                    p = p.with("rtt_ms", ms(rtt));
                }
            }
            "ka" => {
                out.heartbeat = true;
                self.heartbeat.beat(m.from, m.time);
            }
            "subscribe" | "start" => {
                let id = id.clone().unwrap_or_default();
                let query = payload.and_then(|p| p.get("query")).and_then(Value::as_str);
                let op_name = payload
                    .and_then(|p| p.get("operationName"))
                    .and_then(Value::as_str);
                let what = op_name
                    .map(str::to_string)
                    .or_else(|| {
                        query.map(|q| {
                            cut(
                                q.split_whitespace().collect::<Vec<_>>().join(" ").as_str(),
                                60,
                            )
                        })
                    })
                    .unwrap_or_default();
                if !what.is_empty() {
                    summary.push_str(&format!(" {what:?}"));
                    p = p.with("operation", what.clone());
                }
                if self.ack.is_none() && self.flavour == Some(Flavour::TransportWs) {
                    summary.push_str(" (before connection_ack: graphql-ws closes 4401)");
                }
                if self.live.contains_key(&id) {
                    summary.push_str(" (id still in use: graphql-ws closes 4409)");
                }
                self.first_request.get_or_insert(m.time);
                self.ops
                    .open(id.clone(), format!("{kind} {what:?}"), m.from, m.time);
                self.live.insert(
                    id,
                    Operation {
                        answered: false,
                        completed: false,
                        nexts: 0,
                    },
                );
            }
            "next" | "data" => {
                let id = id.clone().unwrap_or_default();
                let latency = self.answer(&id, m.time, false);
                if let Some(op) = self.live.get_mut(&id) {
                    op.nexts += 1;
                }
                if let Some(l) = latency {
                    summary.push_str(&format!(
                        " (first result {} after {})",
                        human(l),
                        if kind == "next" { "subscribe" } else { "start" }
                    ));
                    p = p.with("latency_ms", ms(l));
                }
                let errs = result_errors.as_ref();
                if errs.is_some_and(|e| !e.is_null()) {
                    let text = errors_text(errs);
                    summary.push_str(&format!(" with errors: {text}"));
                    p = p.with("errors", text.clone());
                    self.errors += 1;
                    out.diag(
                        DiagnosticId::AppError,
                        m.from,
                        m.time,
                        format!("{proto}: operation {id} result has errors: {text}"),
                    );
                }
            }
            "error" => {
                let text = errors_text(payload);
                summary.push_str(&format!(": {text}"));
                p = p.with("message", text.clone());
                self.errors += 1;
                if let Some(id) = &id {
                    self.answer(id, m.time, true);
                    if let Some(op) = self.live.get_mut(id) {
                        op.completed = true;
                    }
                }
                out.diag(
                    DiagnosticId::AppError,
                    m.from,
                    m.time,
                    format!(
                        "{proto}: error for operation {}: {text}",
                        id.as_deref().unwrap_or("?")
                    ),
                );
            }
            "complete" | "stop" => {
                let id = id.clone().unwrap_or_default();
                if m.from == Side::Server {
                    self.answer(&id, m.time, false);
                } else if let Some(op) = self.live.get_mut(&id)
                    && !op.answered
                {
                    // The client cancelled before any answer: not an unanswered request.
                    op.answered = true;
                    self.ops.answer(&id, m.time, false);
                    summary.push_str(" (cancelled by the client before any result)");
                }
                match self.live.get_mut(&id) {
                    Some(op) => {
                        op.completed = true;
                        summary.push_str(&format!(
                            " ({} result{})",
                            op.nexts,
                            if op.nexts == 1 { "" } else { "s" }
                        ));
                    }
                    None => summary.push_str(" (no such operation seen)"),
                }
            }
            "connection_terminate" => {
                self.terminated.get_or_insert((m.from, m.time));
            }
            _ => {}
        }
        p.summary = summary;
        out.push(p);
    }

    fn close_frame(&mut self, close: &CloseSeen) {
        self.close.get_or_insert(close.clone());
    }

    fn secrets(&self, m: &Input<'_>) -> Vec<super::secrets::Secret> {
        if m.from == Side::Client && !m.binary {
            super::secrets::graphql_init_secrets(m.payload)
        } else {
            Vec::new()
        }
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let proto = self.proto();
        let mut fin = Finish::default();
        if let Some(c) = &end.close {
            // A code only the other protocol defines tells which protocol the closer speaks
            // (a graphql-ws server closing 4406 on a legacy client).
            let (meaning, table) = match self.flavour {
                Some(Flavour::Legacy) => match legacy_close_meaning(c.code) {
                    Some(m) => (Some(m), "subscriptions-transport-ws"),
                    None => (transport_close_meaning(c.code), "graphql-transport-ws"),
                },
                _ => match transport_close_meaning(c.code) {
                    Some(m) => (Some(m), "graphql-transport-ws"),
                    None => (legacy_close_meaning(c.code), "subscriptions-transport-ws"),
                },
            };
            if let Some(meaning) = meaning {
                fin.close_meaning = Some(format!("{} ({table}): {meaning}", c.code));
                fin.end_reason = Some(format!(
                    "{table} {}: {}",
                    c.code,
                    meaning.split(':').next().unwrap_or(meaning)
                ));
                if c.code == 4408 {
                    let waited = match (self.init, self.opened) {
                        (Some(t), _) => format!(
                            "connection_init was sent at {} but not in time",
                            crate::analysis::clock(t)
                        ),
                        (None, Some(o)) => format!(
                            "no connection_init in the {} after the 101",
                            human(c.time - o)
                        ),
                        (None, None) => "no connection_init was seen".to_string(),
                    };
                    out.push(Diagnostic::new(
                        DiagnosticId::AppInitTimeout,
                        Some(Side::Client),
                        Some(c.time),
                        format!("{proto}: the server closed 4408 Connection initialisation timeout: {waited}"),
                    ));
                } else if (4400..4500).contains(&c.code)
                    || c.code == 4500
                    || (self.flavour == Some(Flavour::Legacy) && c.code == 1002)
                {
                    out.push(Diagnostic::new(
                        DiagnosticId::AppError,
                        Some(c.from),
                        Some(c.time),
                        format!(
                            "{proto}: the {} closed {} {}",
                            c.from.as_str(),
                            c.code,
                            meaning
                        ),
                    ));
                }
            }
        }
        // subscriptions-transport-ws clients give up when `ka` stops for 30 s (WS_TIMEOUT).
        if self.flavour == Some(Flavour::Legacy)
            && let (Some(last), Some((closer, t))) =
                (self.heartbeat.last(Side::Server), end.first())
            && closer == Side::Client
            && t - last >= 27.0
        {
            out.push(Diagnostic::new(
                DiagnosticId::AppHeartbeatTimeout,
                Some(Side::Server),
                Some(t),
                format!("{proto}: no ka keep-alive from the server for {} (the client's timeout is 30 s by default); the client closed", human(t - last)),
            ));
        }
        let mut session = AppSessionRecord {
            handshake: match (&self.init, &self.ack) {
                (_, Some((t, ok, detail))) => Some(AppHandshakeRecord {
                    ok: *ok,
                    time: Some(*t),
                    detail: detail.clone(),
                }),
                (Some(t), None) => {
                    out.push(Diagnostic::new(
                        DiagnosticId::AppRequestUnanswered,
                        Some(Side::Server),
                        Some(*t),
                        format!(
                            "{proto}: connection_init got no connection_ack before {}",
                            end.describe()
                        ),
                    ));
                    Some(AppHandshakeRecord {
                        ok: false,
                        time: None,
                        detail: "connection_init without connection_ack".into(),
                    })
                }
                (None, None) => None,
            },
            ..AppSessionRecord::default()
        };
        if self.heartbeat.any() {
            session.heartbeat = Some(self.heartbeat.record());
        }
        if self.ops.any() {
            session.requests = Some(self.ops.finish(proto, end, out));
        }
        let active: Vec<String> = self
            .live
            .iter()
            .filter(|(_, o)| !o.completed)
            .map(|(k, _)| k.clone())
            .collect();
        let mut details = Map::new();
        details.insert("operations".into(), self.live.len().into());
        if !active.is_empty() {
            details.insert("active_at_end".into(), active.clone().into());
        }
        if self.errors > 0 {
            details.insert("errors".into(), self.errors.into());
        }
        session.details = details;
        session.close = end
            .close
            .as_ref()
            .and_then(|c| {
                fin.close_meaning.as_ref().map(|m| AppCloseRecord {
                    from: Some(c.from),
                    time: Some(c.time),
                    code: Some(c.code as i64),
                    reason: Some(c.reason.clone()).filter(|r| !r.is_empty()),
                    meaning: m.clone(),
                })
            })
            .or_else(|| {
                self.terminated.map(|(from, time)| AppCloseRecord {
                    from: Some(from),
                    time: Some(time),
                    code: None,
                    reason: Some("connection_terminate".into()),
                    meaning: "the client ended the session".into(),
                })
            });
        session.summary = format!(
            "{}; {} operations{}{}",
            session
                .handshake
                .as_ref()
                .map_or("no connection_init".to_string(), |h| h.detail.clone()),
            self.live.len(),
            if active.is_empty() {
                String::new()
            } else {
                format!(", {} still active at the end", active.len())
            },
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

    fn run(g: &mut Graphql, from: Side, t: f64, text: &str) -> Decoded {
        let mut d = Decoded::default();
        g.message(&input(from, t, text), &mut d);
        d
    }

    fn transport() -> Graphql {
        Graphql::new(
            &HandshakeInfo {
                selected: Some("graphql-transport-ws".into()),
                ..HandshakeInfo::default()
            },
            None,
        )
    }

    #[test]
    fn operations_pair_from_subscribe_to_complete() {
        let mut g = transport();
        run(&mut g, Side::Client, 1.0, r#"{"type":"connection_init"}"#);
        let d = run(&mut g, Side::Server, 1.002, r#"{"type":"connection_ack"}"#);
        assert!(d.packets[0].summary.contains("2 ms after connection_init"));
        run(
            &mut g,
            Side::Client,
            1.01,
            r#"{"id":"1","type":"subscribe","payload":{"query":"subscription { greetings }"}}"#,
        );
        let d = run(
            &mut g,
            Side::Server,
            1.02,
            r#"{"id":"1","type":"next","payload":{"data":{"greetings":"Hi"}}}"#,
        );
        assert!(
            d.packets[0]
                .summary
                .contains("first result 10 ms after subscribe"),
            "{}",
            d.packets[0].summary
        );
        run(
            &mut g,
            Side::Server,
            1.03,
            r#"{"id":"1","type":"complete"}"#,
        );
        run(
            &mut g,
            Side::Client,
            1.04,
            r#"{"id":"2","type":"subscribe","payload":{"query":"{ x }"}}"#,
        );
        let mut diags = Vec::new();
        let fin = g.finish(
            &End {
                last_seen: 3.0,
                ..End::default()
            },
            &mut diags,
        );
        let r = fin.session.requests.unwrap();
        assert_eq!((r.sent, r.answered, r.unanswered), (2, 1, 1));
        assert_eq!(diags[0].id, DiagnosticId::AppRequestUnanswered);
    }

    #[test]
    fn close_4408_is_the_init_timeout() {
        let mut g = transport();
        g.close_frame(&CloseSeen {
            from: Side::Server,
            time: 4.0,
            code: 4408,
            reason: "Connection initialisation timeout".into(),
        });
        let end = End {
            close: Some(CloseSeen {
                from: Side::Server,
                time: 4.0,
                code: 4408,
                reason: String::new(),
            }),
            last_seen: 4.1,
            ..End::default()
        };
        let mut diags = Vec::new();
        let fin = g.finish(&end, &mut diags);
        assert!(
            fin.close_meaning
                .unwrap()
                .starts_with("4408 (graphql-transport-ws): Connection initialisation timeout")
        );
        assert_eq!(diags[0].id, DiagnosticId::AppInitTimeout);
    }

    #[test]
    fn legacy_messages_name_the_legacy_protocol_and_a_mix_is_a_violation() {
        let mut g = Graphql::new(&HandshakeInfo::default(), None);
        run(
            &mut g,
            Side::Client,
            1.0,
            r#"{"type":"connection_init","payload":{}}"#,
        );
        run(&mut g, Side::Server, 1.0, r#"{"type":"connection_ack"}"#);
        run(&mut g, Side::Server, 1.0, r#"{"type":"ka"}"#);
        assert_eq!(g.name(), "subscriptions-transport-ws");
        let d = run(
            &mut g,
            Side::Client,
            1.1,
            r#"{"id":"1","type":"subscribe","payload":{}}"#,
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppProtocolViolation);
    }

    #[test]
    fn errors_and_malformed_messages() {
        let mut g = transport();
        let d = run(
            &mut g,
            Side::Server,
            1.0,
            r#"{"id":"1","type":"error","payload":[{"message":"boom"}]}"#,
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppError);
        assert!(d.packets[0].summary.ends_with(": boom"));
        for bad in [
            "",
            "[]",
            "{",
            r#"{"type":1}"#,
            r#"{"type":"nope"}"#,
            r#"{"type":"next"}"#,
        ] {
            let d = run(&mut g, Side::Server, 1.0, bad);
            assert_eq!(d.diagnostics.len(), 1, "{bad:?}");
            assert_eq!(
                d.diagnostics[0].id,
                DiagnosticId::AppProtocolViolation,
                "{bad:?}"
            );
        }
    }
}
