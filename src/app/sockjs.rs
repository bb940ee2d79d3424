//! SockJS framing over its raw WebSocket transport (sockjs-protocol 0.3.3): the server sends `o`
//! (open), `h` (heartbeat, every 25 s by default), `a["...", ...]` (messages), `c[code,"reason"]`
//! (close); the client sends JSON arrays of strings. The strings inside are decoded as STOMP when
//! they are STOMP (Spring's usual stack), else shown as they are.

use serde_json::Value;

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::AppCloseRecord;

use super::session::Heartbeat;
use super::stomp::Stomp;
use super::{Decoded, Decoder, End, Finish, Fit, HandshakeInfo, Input, Packet, cut};

/// `/prefix/<server>/<session>/websocket`: SockJS's WebSocket URL.
pub fn is_sockjs_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let n = parts.len();
    if n < 4 || parts[n - 1] != "websocket" {
        return false;
    }
    let (server, session) = (parts[n - 3], parts[n - 2]);
    let ok = |s: &str| !s.is_empty() && !s.contains('.') && s.len() <= 64;
    ok(server) && ok(session) && server.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The meaning of a SockJS close frame's code.
pub fn close_meaning(code: i64) -> &'static str {
    match code {
        3000 => "Go away!: the server ended the session (Spring: SockJsFrame GO_AWAY)",
        2010 => "Another connection still open: a second transport for the same session",
        1002 => "Connection interrupted: the previous transport for the session broke",
        2000 => "All transports failed",
        1000 => "normal closure",
        _ => "application-defined SockJS close code",
    }
}

/// One connection's SockJS session.
pub struct SockJs {
    stomp: Stomp,
    stomp_seen: bool,
    opened: Option<f64>,
    heartbeat: Heartbeat,
    close: Option<AppCloseRecord>,
}

impl SockJs {
    /// A session.
    pub fn new(hs: &HandshakeInfo) -> Self {
        let mut stomp = Stomp::new(hs);
        stomp.wrapped_in = Some("sockjs");
        let mut heartbeat = Heartbeat::new("SockJS h frame");
        heartbeat.interval = Some(25.0);
        heartbeat.configured_by = Some("library default".into());
        SockJs {
            stomp,
            stomp_seen: false,
            opened: None,
            heartbeat,
            close: None,
        }
    }

    fn strings(v: &Value) -> Option<Vec<&str>> {
        v.as_array()?.iter().map(Value::as_str).collect()
    }

    fn inner(&mut self, m: &Input<'_>, s: &str, out: &mut Decoded) {
        let fit = Stomp::fit_bytes(s.as_bytes());
        if self.stomp_seen || matches!(fit, Fit::Strong | Fit::Weak) {
            self.stomp_seen = true;
            self.stomp.decode_bytes(m, s.as_bytes(), out);
        } else {
            out.push(
                Packet::new("message", format!("sockjs message {:?}", cut(s, 60)))
                    .with("length", s.len()),
            );
        }
    }
}

impl Decoder for SockJs {
    fn name(&self) -> String {
        if self.stomp_seen {
            "stomp".into()
        } else {
            "sockjs".into()
        }
    }

    fn version(&self) -> Option<String> {
        self.stomp.stomp_version()
    }

    fn note(&self) -> Option<String> {
        self.stomp_seen
            .then(|| "STOMP inside SockJS framing".into())
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if m.binary {
            return Fit::No;
        }
        let p = m.payload;
        match (m.from, p.first()) {
            (Side::Server, Some(b'o')) if p.len() == 1 => Fit::Weak,
            (Side::Server, Some(b'h')) if p.len() == 1 => Fit::Neutral,
            (Side::Server, Some(b'a' | b'c')) => match serde_json::from_slice::<Value>(&p[1..]) {
                Ok(v) if p[0] == b'a' && SockJs::strings(&v).is_some() => Fit::Strong,
                Ok(Value::Array(a))
                    if p[0] == b'c' && a.len() == 2 && a[0].is_i64() && a[1].is_string() =>
                {
                    Fit::Strong
                }
                _ => Fit::No,
            },
            (Side::Client, Some(b'[')) => match serde_json::from_slice::<Value>(p) {
                Ok(v) if SockJs::strings(&v).is_some() => Fit::Weak,
                _ => Fit::No,
            },
            _ => Fit::No,
        }
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.complete {
            out.push(Packet::new(
                "incomplete",
                format!(
                    "sockjs: message incomplete ({} B kept of {})",
                    m.payload.len(),
                    m.length
                ),
            ));
            return;
        }
        let p = m.payload;
        let Some(&t) = p.first() else {
            return out.violation("sockjs", m, "empty message");
        };
        if m.from == Side::Client {
            // The client sends a JSON array of strings (a bare string from old clients).
            match serde_json::from_slice::<Value>(p) {
                Ok(v) => match SockJs::strings(&v) {
                    Some(list) => {
                        let before = out.packets.len();
                        for s in list {
                            self.inner(m, s, out);
                        }
                        if out.packets.len() == before {
                            out.push(Packet::new("message", "sockjs empty message array"));
                        }
                    }
                    None => match v.as_str() {
                        Some(s) => self.inner(m, s, out),
                        None => out.violation(
                            "sockjs",
                            m,
                            "client message is not a JSON array of strings",
                        ),
                    },
                },
                Err(e) => out.violation("sockjs", m, format!("client message is not JSON ({e})")),
            }
            return;
        }
        let rest = &p[1..];
        match t {
            b'o' if rest.is_empty() => {
                self.opened.get_or_insert(m.time);
                out.push(Packet::new("o", "sockjs open"));
            }
            b'h' if rest.is_empty() => {
                self.heartbeat.beat(m.from, m.time);
                out.heartbeat = true;
                out.push(Packet::new("h", "sockjs heartbeat"));
            }
            b'a' | b'm' => {
                let v = match serde_json::from_slice::<Value>(rest) {
                    Ok(v) => v,
                    Err(e) => {
                        return out.violation(
                            "sockjs",
                            m,
                            format!("{} frame is not JSON ({e})", t as char),
                        );
                    }
                };
                let list: Vec<String> = match (t, &v) {
                    (b'a', _) => match SockJs::strings(&v) {
                        Some(l) => l.into_iter().map(str::to_string).collect(),
                        None => {
                            return out.violation(
                                "sockjs",
                                m,
                                "a frame is not an array of strings",
                            );
                        }
                    },
                    (_, Value::String(s)) => vec![s.clone()],
                    _ => return out.violation("sockjs", m, "m frame is not a string"),
                };
                let heartbeat_before = out.heartbeat;
                for s in &list {
                    self.inner(m, s, out);
                }
                out.heartbeat = heartbeat_before || (out.heartbeat && list.len() == 1);
            }
            b'c' => match serde_json::from_slice::<Value>(rest) {
                Ok(Value::Array(a)) if a.len() == 2 => {
                    let code = a[0].as_i64().unwrap_or(-1);
                    let reason = a[1].as_str().unwrap_or("").to_string();
                    let meaning = close_meaning(code);
                    self.close.get_or_insert(AppCloseRecord {
                        from: Some(m.from),
                        time: Some(m.time),
                        code: Some(code),
                        reason: Some(reason.clone()),
                        meaning: format!("{code} {meaning}"),
                    });
                    out.push(
                        Packet::new("c", format!("sockjs close {code} {reason:?}: {meaning}"))
                            .with("code", code)
                            .with("reason", reason),
                    );
                }
                _ => out.violation("sockjs", m, "c frame is not [code, \"reason\"]"),
            },
            other => out.violation(
                "sockjs",
                m,
                format!("unknown frame type {:?}", other as char),
            ),
        }
    }

    fn secrets(&self, m: &Input<'_>) -> Vec<super::secrets::Secret> {
        super::secrets::sockjs_secrets(m.payload)
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let mut fin = self.stomp.finish_stomp(end, out);
        if let Some(c) = &self.close {
            if c.code != Some(1000) && c.code != Some(3000) {
                out.push(Diagnostic::new(
                    DiagnosticId::AppError,
                    c.from,
                    c.time,
                    format!("sockjs: the server closed the session: {}", c.meaning),
                ));
            }
            fin.end_reason
                .get_or_insert(format!("sockjs close {}", c.meaning));
            fin.session.close = Some(c.clone());
        }
        if !self.stomp_seen {
            fin.session.handshake = self.opened.map(|t| crate::record::AppHandshakeRecord {
                ok: true,
                time: Some(t),
                detail: "sockjs open".into(),
            });
            fin.session.summary = format!(
                "sockjs {}{}",
                if self.opened.is_some() {
                    "session"
                } else {
                    "(no open frame)"
                },
                fin.end_reason
                    .as_ref()
                    .map(|r| format!("; {r}"))
                    .unwrap_or_default()
            );
        }
        if self.heartbeat.any() {
            fin.session.details.insert(
                "sockjs_heartbeats".into(),
                self.heartbeat.sent(Side::Server).into(),
            );
            if fin.session.heartbeat.is_none() {
                fin.session.heartbeat = Some(self.heartbeat.record());
            }
        }
        fin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::input;

    #[test]
    fn sockjs_paths() {
        assert!(is_sockjs_path("/stomp/123/abcdefgh/websocket"));
        assert!(is_sockjs_path("/app/ws/000/x1y2z3/websocket"));
        assert!(!is_sockjs_path("/socket/websocket"));
        assert!(!is_sockjs_path("/a/1.2/x/websocket"));
    }

    #[test]
    fn stomp_inside_sockjs_frames() {
        let mut s = SockJs::new(&HandshakeInfo::default());
        let mut run = |from, t, text: &str| {
            let mut d = Decoded::default();
            s.message(&input(from, t, text), &mut d);
            d
        };
        assert_eq!(run(Side::Server, 1.0, "o").packets[0].kind, "o");
        let d = run(
            Side::Client,
            1.01,
            r#"["CONNECT\naccept-version:1.2,1.1,1.0\nheart-beat:10000,10000\n\n\u0000"]"#,
        );
        assert_eq!(d.packets[0].kind, "CONNECT");
        let d = run(
            Side::Server,
            1.02,
            r#"a["CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\u0000"]"#,
        );
        assert_eq!(d.packets[0].kind, "CONNECTED");
        assert!(run(Side::Server, 1.03, "h").heartbeat);
        assert!(run(Side::Server, 1.04, r#"a["\n"]"#).heartbeat);
        let d = run(Side::Server, 2.0, r#"c[3000,"Go away!"]"#);
        assert!(d.packets[0].summary.contains("Go away!"));
        for bad in ["x", "a[1]", "c[1]", "a[", ""] {
            let d = run(Side::Server, 3.0, bad);
            assert_eq!(
                d.diagnostics[0].id,
                DiagnosticId::AppProtocolViolation,
                "{bad:?}"
            );
        }
        assert_eq!(s.name(), "stomp");
    }
}
