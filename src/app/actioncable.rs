//! Rails ActionCable (actioncable/app/javascript/action_cable): `welcome`, `ping` every 3 s,
//! subscriptions confirmed or rejected, `disconnect` with its reason, channel messages. The
//! client's `identifier` and `data` are JSON inside strings and are read as such.

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{AppCloseRecord, AppHandshakeRecord, AppSessionRecord};

use super::session::{Heartbeat, Requests};
use super::{Decoded, Decoder, End, Finish, Fit, Input, Packet, cut, human};

fn channel(identifier: &str) -> String {
    serde_json::from_str::<Value>(identifier)
        .ok()
        .and_then(|v| v.get("channel").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| cut(identifier, 40))
}

fn disconnect_meaning(reason: &str) -> &'static str {
    match reason {
        "unauthorized" => "the server's connect refused the user (reject_unauthorized_connection)",
        "invalid_request" => "the request was not a valid ActionCable connection",
        "server_restart" => "the server is restarting; the client reconnects",
        "remote" => "the connection was closed remotely (ActionCable.server.remote_connections)",
        _ => "application-defined reason",
    }
}

/// The fields recognition looks at.
#[derive(serde::Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    command: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    identifier: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    message: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    reason: Option<&'a serde_json::value::RawValue>,
}

/// The fields the decoder reads.
#[derive(serde::Deserialize)]
struct Fields<'a> {
    #[serde(rename = "type")]
    kind: Option<Value>,
    command: Option<Value>,
    identifier: Option<Value>,
    reason: Option<Value>,
    reconnect: Option<Value>,
    data: Option<Value>,
    #[serde(borrow)]
    message: Option<&'a serde_json::value::RawValue>,
}

/// One connection's ActionCable session.
pub struct ActionCable {
    welcome: Option<f64>,
    heartbeat: Heartbeat,
    subscriptions: Requests,
    channels: Map<String, Value>,
    close: Option<AppCloseRecord>,
    refused: bool,
}

impl Default for ActionCable {
    fn default() -> Self {
        ActionCable::new()
    }
}

impl ActionCable {
    /// A session.
    pub fn new() -> Self {
        let mut heartbeat = Heartbeat::new("ActionCable ping");
        heartbeat.interval = Some(3.0);
        heartbeat.timeout = Some(6.0);
        heartbeat.configured_by =
            Some("library default (ping every 3 s, staleThreshold 6 s)".into());
        ActionCable {
            welcome: None,
            heartbeat,
            subscriptions: Requests::new("identifier"),
            channels: Map::new(),
            close: None,
            refused: false,
        }
    }
}

impl Decoder for ActionCable {
    fn name(&self) -> String {
        "actioncable".into()
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if m.binary {
            return Fit::No;
        }
        if m.payload.trim_ascii_start().first() != Some(&b'{') {
            return Fit::No;
        }
        // Typed: a broadcast's message is not built.
        let Ok(o) = serde_json::from_slice::<Probe<'_>>(m.payload) else {
            return Fit::No;
        };
        let ident = o.identifier.is_some_and(|i| i.get().starts_with('"'));
        let numeric = o.message.is_some_and(|v| {
            v.get()
                .starts_with(|c: char| c == '-' || c.is_ascii_digit())
        });
        match (o.kind.as_deref(), o.command.as_deref()) {
            (Some("welcome" | "confirm_subscription" | "reject_subscription"), _) => Fit::Strong,
            (Some("ping"), _) if numeric => Fit::Strong,
            (Some("disconnect"), _) if o.reason.is_some() => Fit::Strong,
            (None, Some("subscribe" | "unsubscribe" | "message")) if ident => Fit::Strong,
            (None, None) if ident && o.message.is_some() => Fit::Weak,
            _ => Fit::No,
        }
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.complete {
            out.push(Packet::new(
                "incomplete",
                format!(
                    "actioncable: message incomplete ({} B kept of {})",
                    m.payload.len(),
                    m.length
                ),
            ));
            return;
        }
        if m.payload.trim_ascii_start().first() != Some(&b'{') {
            return match serde_json::from_slice::<serde::de::IgnoredAny>(m.payload) {
                Ok(_) => out.violation("actioncable", m, "message is not a JSON object"),
                Err(e) => out.violation("actioncable", m, format!("not JSON ({e})")),
            };
        }
        // Typed: a broadcast's `message` (often the bulk) is skipped, only its presence kept.
        let parsed = match serde_json::from_slice::<Fields<'_>>(m.payload) {
            Ok(f) => f,
            Err(e) => return out.violation("actioncable", m, format!("not JSON ({e})")),
        };
        let mut o = serde_json::Map::new();
        for (k, v) in [
            ("type", parsed.kind),
            ("command", parsed.command),
            ("identifier", parsed.identifier),
            ("reason", parsed.reason),
            ("reconnect", parsed.reconnect),
            ("data", parsed.data),
        ] {
            if let Some(v) = v {
                o.insert(k.into(), v);
            }
        }
        if parsed.message.is_some() {
            o.insert("message".into(), Value::Null);
        }
        let identifier = o
            .get("identifier")
            .and_then(Value::as_str)
            .map(str::to_string);
        let chan = identifier.as_deref().map(channel);
        let kind = o
            .get("type")
            .and_then(Value::as_str)
            .or(o.get("command").and_then(Value::as_str))
            .map(str::to_string);
        let kind = match (kind, &identifier) {
            (Some(k), _) => k,
            (None, Some(_)) if o.contains_key("message") => "message".into(),
            _ => {
                return out.violation(
                    "actioncable",
                    m,
                    "message without type, command or identifier",
                );
            }
        };
        let mut p = Packet::new(kind.clone(), "").with_opt("channel", chan.clone());
        let mut s = format!("actioncable {kind}");
        if let Some(c) = &chan {
            s.push_str(&format!(" {c}"));
        }
        match (m.from, kind.as_str()) {
            (Side::Server, "welcome") => {
                self.welcome.get_or_insert(m.time);
            }
            (Side::Server, "ping") => {
                out.heartbeat = true;
                self.heartbeat.beat(m.from, m.time);
            }
            (Side::Client, "subscribe") => {
                if let Some(id) = &identifier {
                    self.subscriptions
                        .open(id.clone(), "subscribe".into(), m.from, m.time);
                }
            }
            (Side::Server, "confirm_subscription" | "reject_subscription") => {
                let rejected = kind == "reject_subscription";
                if let Some(id) = &identifier {
                    if let Some((l, _)) = self.subscriptions.answer(id, m.time, rejected) {
                        s.push_str(&format!(" ({} after subscribe)", human(l)));
                    }
                    self.channels.insert(
                        chan.clone().unwrap_or_default(),
                        Value::from(if rejected { "rejected" } else { "confirmed" }),
                    );
                }
                if rejected {
                    out.diag(DiagnosticId::AppError, m.from, m.time, format!("actioncable: subscription to {} rejected (the socket stays open, the channel is dead)", chan.as_deref().unwrap_or("?")));
                }
            }
            (Side::Server, "disconnect") => {
                let reason = o
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let reconnect = o.get("reconnect").and_then(Value::as_bool);
                let meaning = disconnect_meaning(&reason);
                s.push_str(&format!(
                    " reason {reason:?}{}",
                    reconnect
                        .map(|r| format!(" reconnect {r}"))
                        .unwrap_or_default()
                ));
                p = p
                    .with("reason", reason.clone())
                    .with_opt("reconnect", reconnect);
                if reason == "unauthorized" {
                    self.refused = true;
                    out.diag(
                        DiagnosticId::AppConnectRefused,
                        m.from,
                        m.time,
                        format!("actioncable: disconnect {reason:?}: {meaning}"),
                    );
                }
                self.close.get_or_insert(AppCloseRecord {
                    from: Some(m.from),
                    time: Some(m.time),
                    code: None,
                    reason: Some(reason),
                    meaning: meaning.into(),
                });
            }
            _ => {
                if let Some(d) = o.get("data").and_then(Value::as_str)
                    && let Ok(Value::Object(data)) = serde_json::from_str::<Value>(d)
                    && let Some(action) = data.get("action").and_then(Value::as_str)
                {
                    s.push_str(&format!(" action {action:?}"));
                    p = p.with("action", action);
                }
            }
        }
        p.summary = s;
        out.push(p);
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let mut fin = Finish::default();
        if let Some((Side::Client, t)) = end.first()
            && let Some(last) = self.heartbeat.last(Side::Server).or(self.welcome)
            && t - last >= 6.0 * 0.95
            && self.close.is_none()
        {
            out.push(Diagnostic::new(DiagnosticId::AppHeartbeatTimeout, Some(Side::Server), Some(t), format!("actioncable: no ping from the server for {} > staleThreshold 6 s; the client closed to reconnect", human(t - last))));
            fin.end_reason = Some("actioncable: server pings stopped".into());
        }
        let mut session = AppSessionRecord {
            handshake: self.welcome.map(|t| AppHandshakeRecord {
                ok: !self.refused,
                time: Some(t),
                detail: "welcome".into(),
            }),
            ..AppSessionRecord::default()
        };
        if self.heartbeat.any() {
            session.heartbeat = Some(self.heartbeat.record());
        }
        if self.subscriptions.any() {
            session.requests = Some(self.subscriptions.finish("actioncable", end, out));
        }
        if !self.channels.is_empty() {
            session
                .details
                .insert("subscriptions".into(), Value::Object(self.channels.clone()));
        }
        session.close = self.close.clone();
        if fin.end_reason.is_none() {
            fin.end_reason = self.close.as_ref().map(|c| {
                format!(
                    "actioncable disconnect {:?}: {}",
                    c.reason.clone().unwrap_or_default(),
                    c.meaning
                )
            });
        }
        session.summary = format!(
            "{}; {} subscriptions{}",
            if self.welcome.is_some() {
                "welcome"
            } else {
                "no welcome seen"
            },
            self.channels.len(),
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
    fn welcome_ping_subscriptions_and_disconnect() {
        let mut a = ActionCable::new();
        let mut run = |from, t, text: &str| {
            let mut d = Decoded::default();
            a.message(&input(from, t, text), &mut d);
            d
        };
        run(Side::Server, 1.0, r#"{"type":"welcome"}"#);
        assert!(run(Side::Server, 1.5, r#"{"type":"ping","message":1700000000}"#).heartbeat);
        run(
            Side::Client,
            1.6,
            r#"{"command":"subscribe","identifier":"{\"channel\":\"ChatChannel\"}"}"#,
        );
        let d = run(
            Side::Server,
            1.7,
            r#"{"identifier":"{\"channel\":\"ChatChannel\"}","type":"reject_subscription"}"#,
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppError);
        assert!(
            d.packets[0]
                .summary
                .starts_with("actioncable reject_subscription ChatChannel")
        );
        let d = run(
            Side::Server,
            2.0,
            r#"{"type":"disconnect","reason":"unauthorized","reconnect":false}"#,
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppConnectRefused);
        for bad in ["{", "[]", "{}"] {
            assert_eq!(
                run(Side::Server, 3.0, bad).diagnostics[0].id,
                DiagnosticId::AppProtocolViolation,
                "{bad}"
            );
        }
    }
}
