//! JSON-RPC 2.0 (jsonrpc.org/specification): requests and responses paired by id (in either
//! direction), errors with their codes, notifications, batches, and requests left unanswered.
//! rpc-websockets' event messages (`{"notification": name, "params": ...}`) are shown as
//! notifications too.

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::AppSessionRecord;

use super::session::Requests;
use super::{Decoded, Decoder, End, Finish, Fit, Input, Packet, cut, human, ms, short};

/// The meaning of a JSON-RPC error code (§5.1).
pub fn error_meaning(code: i64) -> &'static str {
    match code {
        -32700 => "Parse error",
        -32600 => "Invalid Request",
        -32601 => "Method not found",
        -32602 => "Invalid params",
        -32603 => "Internal error",
        -32099..=-32000 => "Server error (implementation-defined)",
        _ => "application error",
    }
}

/// One connection's JSON-RPC session.
pub struct JsonRpc {
    requests: Requests,
    notifications: u64,
    batches: u64,
    errors: u64,
    methods: Map<String, Value>,
}

impl Default for JsonRpc {
    fn default() -> Self {
        JsonRpc::new()
    }
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn is_rpc(o: &Map<String, Value>) -> bool {
    o.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
}

impl JsonRpc {
    /// A session.
    pub fn new() -> Self {
        JsonRpc {
            requests: Requests::new("request id"),
            notifications: 0,
            batches: 0,
            errors: 0,
            methods: Map::new(),
        }
    }

    fn one(&mut self, m: &Input<'_>, v: &Value, out: &mut Decoded) -> Option<Packet> {
        let Value::Object(o) = v else {
            out.diag(
                DiagnosticId::AppProtocolViolation,
                m.from,
                m.time,
                format!(
                    "json-rpc: {} is not a request or response object",
                    cut(&v.to_string(), 40)
                ),
            );
            return Some(Packet::new("invalid", "json-rpc invalid: not an object"));
        };
        if let Some(name) = o.get("notification").and_then(Value::as_str)
            && !o.contains_key("jsonrpc")
        {
            self.notifications += 1;
            return Some(
                Packet::new(
                    "notification",
                    format!("json-rpc notification {name:?} (rpc-websockets event)"),
                )
                .with("method", name),
            );
        }
        if !is_rpc(o) {
            out.diag(
                DiagnosticId::AppProtocolViolation,
                m.from,
                m.time,
                "json-rpc: object without \"jsonrpc\": \"2.0\" (§4)".into(),
            );
            return Some(Packet::new(
                "invalid",
                "json-rpc invalid: no \"jsonrpc\": \"2.0\"",
            ));
        }
        let id = o.get("id");
        let key = |side: Side, id: &Value| format!("{}:{}", side.as_str(), id_text(id));
        if let Some(method) = o.get("method") {
            let Some(method) = method.as_str() else {
                out.diag(
                    DiagnosticId::AppProtocolViolation,
                    m.from,
                    m.time,
                    "json-rpc: method is not a string".into(),
                );
                return Some(Packet::new(
                    "invalid",
                    "json-rpc invalid: method is not a string",
                ));
            };
            let count = self
                .methods
                .entry(method.to_string())
                .or_insert(Value::from(0u64));
            *count = Value::from(count.as_u64().unwrap_or(0) + 1);
            let params = o
                .get("params")
                .map(|p| format!(" {}", cut(&p.to_string(), 40)))
                .unwrap_or_default();
            return Some(match id {
                Some(id) if !id.is_null() => {
                    self.requests
                        .open(key(m.from, id), format!("{method:?}"), m.from, m.time);
                    Packet::new(
                        "request",
                        format!("json-rpc request id {} {method:?}{params}", id_text(id)),
                    )
                    .with("id", id.clone())
                    .with("method", method)
                }
                _ => {
                    self.notifications += 1;
                    let sub = o
                        .get("params")
                        .and_then(|p| p.get("subscription"))
                        .map(short);
                    Packet::new(
                        "notification",
                        format!(
                            "json-rpc notification {method:?}{}",
                            sub.map(|s| format!(" subscription {s}"))
                                .unwrap_or_default()
                        ),
                    )
                    .with("method", method)
                }
            });
        }
        let has_result = o.contains_key("result");
        let error = o.get("error");
        if has_result == error.is_some() {
            out.diag(
                DiagnosticId::AppProtocolViolation,
                m.from,
                m.time,
                "json-rpc: a response needs exactly one of result and error (§5)".into(),
            );
            return Some(Packet::new(
                "invalid",
                "json-rpc invalid: neither a request nor a response",
            ));
        }
        let id = id.cloned().unwrap_or(Value::Null);
        let answered = if id.is_null() {
            None
        } else {
            self.requests
                .answer(&key(m.from.peer(), &id), m.time, error.is_some())
        };
        let (latency, what) = match &answered {
            Some((l, what)) => (
                format!(" ({what}, {} after the request)", human(*l)),
                Some(*l),
            ),
            None if id.is_null() => (String::new(), None),
            None => (" (answers no request seen)".into(), None),
        };
        let mut p = if let Some(e) = error {
            self.errors += 1;
            let code = e.get("code").and_then(Value::as_i64);
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            let meaning = code.map(error_meaning).unwrap_or("no code");
            out.diag(
                DiagnosticId::AppError,
                m.from,
                m.time,
                format!(
                    "json-rpc: error {} ({meaning}) for request id {}: {message}",
                    code.map_or("?".into(), |c| c.to_string()),
                    id_text(&id)
                ),
            );
            Packet::new(
                "error",
                format!(
                    "json-rpc error id {} {} {meaning}: {}{latency}",
                    id_text(&id),
                    code.map_or("?".into(), |c| c.to_string()),
                    cut(message, 60)
                ),
            )
            .with_opt("code", code)
            .with("message", message)
        } else {
            let result = o
                .get("result")
                .map(|r| cut(&r.to_string(), 40))
                .unwrap_or_default();
            Packet::new(
                "response",
                format!("json-rpc response id {} {result}{latency}", id_text(&id)),
            )
        };
        p = p.with("id", id).with_opt("latency_ms", what.map(ms));
        Some(p)
    }
}

impl Decoder for JsonRpc {
    fn name(&self) -> String {
        "json-rpc".into()
    }

    fn version(&self) -> Option<String> {
        Some("2.0".into())
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if m.binary {
            return Fit::No;
        }
        match serde_json::from_slice::<Value>(m.payload) {
            Ok(Value::Object(o)) if is_rpc(&o) => Fit::Strong,
            Ok(Value::Object(o)) if o.contains_key("notification") && o.contains_key("params") => {
                Fit::Weak
            }
            Ok(Value::Array(a))
                if !a.is_empty() && a.iter().all(|x| x.as_object().is_some_and(is_rpc)) =>
            {
                Fit::Strong
            }
            _ => Fit::No,
        }
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.complete {
            out.push(Packet::new(
                "incomplete",
                format!(
                    "json-rpc: message incomplete ({} B kept of {})",
                    m.payload.len(),
                    m.length
                ),
            ));
            return;
        }
        let v = match serde_json::from_slice::<Value>(m.payload) {
            Ok(v) => v,
            Err(e) => return out.violation("json-rpc", m, format!("not JSON ({e})")),
        };
        match &v {
            Value::Array(items) => {
                self.batches += 1;
                if items.is_empty() {
                    return out.violation("json-rpc", m, "empty batch (§6: an Invalid Request)");
                }
                let mut parts = Vec::new();
                for item in items {
                    if let Some(p) = self.one(m, item, out) {
                        parts.push(p);
                    }
                }
                let kinds: Vec<&str> = parts.iter().map(|p| p.kind.as_str()).collect();
                let mut head = Packet::new(
                    "batch",
                    format!("json-rpc batch of {}: {}", parts.len(), kinds.join(", ")),
                )
                .with("size", parts.len());
                if let Some(first) = parts.first() {
                    head = head.with("first", first.kind.clone());
                }
                out.push(head);
                out.packets.extend(parts);
            }
            _ => {
                if let Some(p) = self.one(m, &v, out) {
                    out.push(p);
                }
            }
        }
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let mut fin = Finish::default();
        let mut session = AppSessionRecord::default();
        let requests = self.requests.finish("json-rpc", end, out);
        let mut details = Map::new();
        details.insert("notifications".into(), self.notifications.into());
        if self.batches > 0 {
            details.insert("batches".into(), self.batches.into());
        }
        if !self.methods.is_empty() {
            details.insert("methods".into(), Value::Object(self.methods.clone()));
        }
        session.summary = format!(
            "{} requests, {} answered ({} errors), {} unanswered; {} notifications",
            requests.sent,
            requests.answered,
            requests.errors,
            requests.unanswered,
            self.notifications
        );
        if requests.unanswered > 0 {
            fin.end_reason = Some(format!(
                "json-rpc: {} requests still unanswered",
                requests.unanswered
            ));
        }
        session.requests = Some(requests);
        session.details = details;
        fin.session = session;
        fin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::input;

    #[test]
    fn pairs_requests_reports_errors_notifications_and_batches() {
        let mut j = JsonRpc::new();
        let mut run = |from, t, text: &str| {
            let mut d = Decoded::default();
            j.message(&input(from, t, text), &mut d);
            d
        };
        run(
            Side::Client,
            1.0,
            r#"{"jsonrpc":"2.0","method":"sum","params":[1,2],"id":1}"#,
        );
        let d = run(
            Side::Server,
            1.005,
            r#"{"jsonrpc":"2.0","result":3,"id":1}"#,
        );
        assert_eq!(
            d.packets[0].summary,
            "json-rpc response id 1 3 (\"sum\", 5 ms after the request)"
        );
        run(
            Side::Client,
            1.1,
            r#"{"jsonrpc":"2.0","method":"nope","id":"a"}"#,
        );
        let d = run(
            Side::Server,
            1.2,
            r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"a"}"#,
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppError);
        assert!(
            d.packets[0]
                .summary
                .starts_with("json-rpc error id \"a\" -32601 Method not found")
        );
        let d = run(
            Side::Client,
            1.3,
            r#"[{"jsonrpc":"2.0","method":"a","id":2},{"jsonrpc":"2.0","method":"b"}]"#,
        );
        assert_eq!((d.packets[0].kind.as_str(), d.packets.len()), ("batch", 3));
        for bad in [
            "{",
            "[]",
            r#"{"id":1}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","method":5}"#,
            "7",
        ] {
            let d = run(Side::Server, 2.0, bad);
            assert_eq!(
                d.diagnostics[0].id,
                DiagnosticId::AppProtocolViolation,
                "{bad}"
            );
        }
        let mut diags = Vec::new();
        let fin = j.finish(
            &End {
                last_seen: 3.0,
                ..End::default()
            },
            &mut diags,
        );
        let r = fin.session.requests.unwrap();
        assert_eq!((r.sent, r.answered, r.errors, r.unanswered), (3, 2, 1, 1));
        assert_eq!(
            diags
                .iter()
                .filter(|d| d.id == DiagnosticId::AppRequestUnanswered)
                .count(),
            1
        );
    }
}
