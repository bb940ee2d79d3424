//! ASP.NET Core SignalR hub protocol (dotnet/aspnetcore HubProtocol.md): JSON records ended by
//! the 0x1E record separator, the handshake, invocations paired with their completions, pings,
//! the Close message with its error. After a MessagePack handshake the binary records are
//! split (VarInt length) and their type read from the array's first element, nothing more:
//! "MessagePack, not decoded".

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{AppCloseRecord, AppHandshakeRecord, AppSessionRecord};

use super::session::{Heartbeat, Requests};
use super::{Decoded, Decoder, End, Finish, Fit, Input, Packet, cut, human, ms, short};

const RS: u8 = 0x1E;

fn type_name(t: i64) -> &'static str {
    match t {
        1 => "Invocation",
        2 => "StreamItem",
        3 => "Completion",
        4 => "StreamInvocation",
        5 => "CancelInvocation",
        6 => "Ping",
        7 => "Close",
        8 => "Ack",
        9 => "Sequence",
        _ => "unknown",
    }
}

/// One connection's SignalR session.
pub struct SignalR {
    protocol: Option<String>,
    handshake_sent: Option<f64>,
    handshake: Option<AppHandshakeRecord>,
    heartbeat: Heartbeat,
    invocations: Requests,
    last: [Option<f64>; 2],
    close: Option<AppCloseRecord>,
    errors: u64,
}

impl Default for SignalR {
    fn default() -> Self {
        SignalR::new()
    }
}

impl SignalR {
    /// A session.
    pub fn new() -> Self {
        let mut heartbeat = Heartbeat::new("SignalR Ping");
        heartbeat.interval = Some(15.0);
        heartbeat.timeout = Some(30.0);
        heartbeat.configured_by =
            Some("library default (KeepAliveInterval 15 s, timeouts 30 s)".into());
        SignalR {
            protocol: None,
            handshake_sent: None,
            handshake: None,
            heartbeat,
            invocations: Requests::new("invocation id"),
            last: [None; 2],
            close: None,
            errors: 0,
        }
    }

    fn record(&mut self, m: &Input<'_>, text: &[u8], out: &mut Decoded) {
        let v = match serde_json::from_slice::<Value>(text) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return out.violation("signalr", m, "record is not a JSON object"),
            Err(e) => return out.violation("signalr", m, format!("record is not JSON ({e})")),
        };
        if self.handshake.is_none() && !v.contains_key("type") {
            return self.handshake_record(m, &v, out);
        }
        let Some(t) = v.get("type").and_then(Value::as_i64) else {
            return out.violation("signalr", m, "record without a numeric \"type\"");
        };
        let name = type_name(t);
        if name == "unknown" {
            return out.violation("signalr", m, format!("unknown message type {t}"));
        }
        let id = v
            .get("invocationId")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut p = Packet::new(name, "")
            .with("message_type", t)
            .with_opt("invocationId", id.clone());
        let mut s = format!("signalr {name}");
        match t {
            1 | 4 => {
                let target = v.get("target").and_then(Value::as_str).unwrap_or("");
                s.push_str(&format!(" {target:?}"));
                p = p.with("target", target);
                if let Some(id) = &id {
                    s.push_str(&format!(" id {id}"));
                    self.invocations.open(
                        format!("{}:{id}", m.from.as_str()),
                        format!("{target:?}"),
                        m.from,
                        m.time,
                    );
                }
            }
            2 | 3 | 5 => {
                if let Some(id) = &id {
                    s.push_str(&format!(" id {id}"));
                }
                if t == 3 {
                    let error = v.get("error").and_then(Value::as_str);
                    let answered = id.as_ref().and_then(|id| {
                        self.invocations.answer(
                            &format!("{}:{id}", m.from.peer().as_str()),
                            m.time,
                            error.is_some(),
                        )
                    });
                    if let Some(r) = v.get("result") {
                        s.push_str(&format!(" result {}", short(r)));
                    }
                    if let Some(e) = error {
                        s.push_str(&format!(" error {e:?}"));
                        p = p.with("error", e);
                        self.errors += 1;
                        out.diag(
                            DiagnosticId::AppError,
                            m.from,
                            m.time,
                            format!(
                                "signalr: invocation {} failed: {e}",
                                id.as_deref().unwrap_or("?")
                            ),
                        );
                    }
                    if let Some((l, what)) = answered {
                        s.push_str(&format!(" ({what}, {} after the invocation)", human(l)));
                        p = p.with("latency_ms", ms(l));
                    }
                }
            }
            6 => {
                out.heartbeat = true;
                self.heartbeat.beat(m.from, m.time);
            }
            7 => {
                let error = v.get("error").and_then(Value::as_str).map(str::to_string);
                let reconnect = v.get("allowReconnect").and_then(Value::as_bool);
                if let Some(e) = &error {
                    s.push_str(&format!(" error {e:?}"));
                    self.errors += 1;
                    out.diag(
                        DiagnosticId::AppError,
                        m.from,
                        m.time,
                        format!(
                            "signalr: the {} closed the hub connection with an error: {e}",
                            m.from.as_str()
                        ),
                    );
                }
                if let Some(r) = reconnect {
                    s.push_str(&format!(" allowReconnect {r}"));
                }
                self.close.get_or_insert(AppCloseRecord {
                    from: Some(m.from),
                    time: Some(m.time),
                    code: None,
                    reason: error.clone(),
                    meaning: match &error {
                        Some(e) => format!("hub connection closed with error: {e}"),
                        None => "hub connection closed without error".into(),
                    },
                });
                p = p
                    .with_opt("error", error)
                    .with_opt("allowReconnect", reconnect);
            }
            _ => {}
        }
        p.summary = s;
        out.push(p);
    }

    fn handshake_record(&mut self, m: &Input<'_>, v: &Map<String, Value>, out: &mut Decoded) {
        match m.from {
            Side::Client => {
                let proto = v
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                let version = v.get("version").map(short).unwrap_or_default();
                self.protocol = Some(proto.clone());
                self.handshake_sent.get_or_insert(m.time);
                out.push(
                    Packet::new(
                        "handshake",
                        format!("signalr handshake request protocol {proto} version {version}"),
                    )
                    .with("protocol", proto),
                );
            }
            Side::Server => {
                let error = v.get("error").and_then(Value::as_str);
                let after = self
                    .handshake_sent
                    .map(|t| format!(" ({} after the request)", human(m.time - t)))
                    .unwrap_or_default();
                let detail = match error {
                    Some(e) => format!("signalr handshake error {e:?}{after}"),
                    None => format!("signalr handshake response ok{after}"),
                };
                if let Some(e) = error {
                    out.diag(
                        DiagnosticId::AppConnectRefused,
                        m.from,
                        m.time,
                        format!("signalr: handshake refused: {e}"),
                    );
                }
                self.handshake = Some(AppHandshakeRecord {
                    ok: error.is_none(),
                    time: Some(m.time),
                    detail: detail.clone(),
                });
                out.push(
                    Packet::new("handshake", detail).with_opt("error", error.map(str::to_string)),
                );
            }
        }
    }

    fn messagepack(&mut self, m: &Input<'_>, out: &mut Decoded) {
        let b = m.payload;
        let mut i = 0;
        while i < b.len() {
            let mut len = 0usize;
            let mut k = 0;
            loop {
                let Some(&byte) = b.get(i + k) else {
                    return out.violation(
                        "signalr",
                        m,
                        "MessagePack record length runs past the message",
                    );
                };
                len |= usize::from(byte & 0x7F) << (7 * k);
                k += 1;
                if byte & 0x80 == 0 || k == 5 {
                    break;
                }
            }
            let start = i + k;
            let end = start.saturating_add(len);
            if end > b.len() {
                return out.violation("signalr", m, "MessagePack record longer than the message");
            }
            let body = &b[start..end];
            let t = match body {
                [0x90..=0x9F, t @ 0..=0x7F, ..] => Some(i64::from(*t)),
                [0xDC, _, _, t @ 0..=0x7F, ..] => Some(i64::from(*t)),
                _ => None,
            };
            let name = t.map_or("unknown", type_name);
            if t == Some(6) {
                out.heartbeat = true;
                self.heartbeat.beat(m.from, m.time);
            }
            out.push(
                Packet::new(name, format!("signalr {name} (MessagePack, not decoded)"))
                    .with("length", len),
            );
            i = end;
        }
    }
}

impl Decoder for SignalR {
    fn name(&self) -> String {
        "signalr".into()
    }

    fn version(&self) -> Option<String> {
        self.protocol.clone()
    }

    fn note(&self) -> Option<String> {
        (self.protocol.as_deref() == Some("messagepack"))
            .then(|| "MessagePack hub protocol: message types shown, contents not decoded".into())
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if m.binary {
            return if self.protocol.as_deref() == Some("messagepack") {
                Fit::Weak
            } else {
                Fit::No
            };
        }
        if m.payload.last() != Some(&RS) {
            return Fit::No;
        }
        let mut fit = Fit::Weak;
        for rec in m.payload.split(|&b| b == RS).filter(|r| !r.is_empty()) {
            match serde_json::from_slice::<Value>(rec) {
                Ok(Value::Object(o)) if o.contains_key("protocol") && o.contains_key("version") => {
                    fit = Fit::Strong
                }
                Ok(Value::Object(o)) if o.is_empty() || o.contains_key("error") => {}
                Ok(Value::Object(o))
                    if o.get("type")
                        .and_then(Value::as_i64)
                        .is_some_and(|t| (1..=9).contains(&t)) => {}
                _ => return Fit::No,
            }
        }
        fit
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.complete {
            out.push(Packet::new(
                "incomplete",
                format!(
                    "signalr: message incomplete ({} B kept of {})",
                    m.payload.len(),
                    m.length
                ),
            ));
            return;
        }
        self.last[m.from as usize] = Some(m.time);
        if m.binary {
            return self.messagepack(m, out);
        }
        if m.payload.last() != Some(&RS) {
            return out.violation(
                "signalr",
                m,
                "text message not ended by the 0x1E record separator",
            );
        }
        let beats = out.heartbeat;
        for rec in m.payload.split(|&b| b == RS).filter(|r| !r.is_empty()) {
            self.record(m, rec, out);
        }
        out.heartbeat = beats || (out.heartbeat && out.packets.iter().all(|p| p.kind == "Ping"));
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let mut fin = Finish::default();
        if let Some((closer, t)) = end.first() {
            let peer = closer.peer();
            if self.close.is_none()
                && let Some(last) = self.last[peer as usize]
                && t - last >= 30.0 * 0.95
            {
                out.push(Diagnostic::new(
                    DiagnosticId::AppHeartbeatTimeout,
                    Some(peer),
                    Some(t),
                    format!("signalr: no message (not even a Ping) from the {} for {} > the 30 s timeout; {}", peer.as_str(), human(t - last), end.describe()),
                ));
                fin.end_reason = Some(format!(
                    "signalr timeout: the {} was silent for {}",
                    peer.as_str(),
                    human(t - last)
                ));
            }
            if self.handshake.is_none() && closer == Side::Server {
                out.push(Diagnostic::new(
                    DiagnosticId::AppInitTimeout,
                    Some(Side::Client),
                    Some(t),
                    format!("signalr: the server ended the connection before a handshake {} (HandshakeTimeout is 15 s by default)", if self.handshake_sent.is_some() { "response" } else { "request came" }),
                ));
            }
        }
        let mut session = AppSessionRecord {
            handshake: self.handshake.clone(),
            ..AppSessionRecord::default()
        };
        if self.heartbeat.any() {
            session.heartbeat = Some(self.heartbeat.record());
        }
        if self.invocations.any() {
            session.requests = Some(self.invocations.finish("signalr", end, out));
        }
        session.close = self.close.clone();
        if fin.end_reason.is_none() {
            fin.end_reason = self
                .close
                .as_ref()
                .map(|c| format!("signalr {}", c.meaning));
        }
        session.summary = format!(
            "{}{}",
            self.handshake
                .as_ref()
                .map_or("no handshake response".into(), |h| cut(&h.detail, 80)),
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
    fn records_pairs_and_close_errors() {
        let mut s = SignalR::new();
        let mut run = |from, t, text: &str| {
            let mut d = Decoded::default();
            s.message(&input(from, t, text), &mut d);
            d
        };
        assert_eq!(
            run(
                Side::Client,
                1.0,
                "{\"protocol\":\"json\",\"version\":1}\u{1e}"
            )
            .packets[0]
                .kind,
            "handshake"
        );
        assert!(run(Side::Server, 1.01, "{}\u{1e}").diagnostics.is_empty());
        run(
            Side::Client,
            1.1,
            "{\"type\":1,\"invocationId\":\"0\",\"target\":\"Send\",\"arguments\":[\"hi\"]}\u{1e}",
        );
        let d = run(
            Side::Server,
            1.15,
            "{\"type\":3,\"invocationId\":\"0\",\"result\":42}\u{1e}{\"type\":6}\u{1e}",
        );
        assert_eq!(d.packets.len(), 2);
        assert!(
            d.packets[0].summary.contains("50 ms after the invocation"),
            "{}",
            d.packets[0].summary
        );
        let d = run(
            Side::Server,
            2.0,
            "{\"type\":7,\"error\":\"Server shutting down\",\"allowReconnect\":true}\u{1e}",
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppError);
        for bad in ["{\"type\":1}", "{\"type\":99}\u{1e}", "{\u{1e}", "[]\u{1e}"] {
            assert_eq!(
                run(Side::Server, 3.0, bad).diagnostics[0].id,
                DiagnosticId::AppProtocolViolation,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn handshake_error_is_a_refused_connect() {
        let mut s = SignalR::new();
        let mut d = Decoded::default();
        s.message(
            &input(
                Side::Client,
                1.0,
                "{\"protocol\":\"xml\",\"version\":1}\u{1e}",
            ),
            &mut d,
        );
        let mut d = Decoded::default();
        s.message(
            &input(
                Side::Server,
                1.0,
                "{\"error\":\"The protocol 'xml' is not supported.\"}\u{1e}",
            ),
            &mut d,
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppConnectRefused);
    }

    #[test]
    fn messagepack_records_are_split_not_decoded() {
        let mut s = SignalR::new();
        s.protocol = Some("messagepack".into());
        s.handshake = Some(AppHandshakeRecord {
            ok: true,
            time: None,
            detail: String::new(),
        });
        let b = [2u8, 0x91, 0x06, 3, 0x93, 0x01, 0x80];
        let mut d = Decoded::default();
        s.message(
            &Input {
                from: Side::Server,
                time: 1.0,
                binary: true,
                payload: &b,
                length: 7,
                complete: true,
            },
            &mut d,
        );
        assert_eq!(d.packets.len(), 2);
        assert_eq!(
            d.packets[0].summary,
            "signalr Ping (MessagePack, not decoded)"
        );
    }
}
