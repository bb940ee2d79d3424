//! Engine.IO v3/v4 and Socket.IO on top (socket.io-protocol v4/v5): packet types, namespaces,
//! events, ack ids, binary attachments joined to their placeholders, the heartbeat from the
//! open packet, upgrade probes, disconnect packets. The framing (`<type>[<n>-][<nsp>,][<id>][json]`)
//! is hand-written: no crate parses it; the JSON inside goes through serde_json.

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{AppCloseRecord, AppHandshakeRecord, AppSessionRecord};

use super::session::{Heartbeat, Requests};
use super::{
    CloseSeen, Decoded, Decoder, End, Finish, Fit, HandshakeInfo, Input, Packet, cut, human, ms,
    parse_json, short,
};

const NAME: &str = "engine.io";

/// Engine.IO packet type names (protocol README §Packet types).
const EIO_TYPES: [&str; 7] = [
    "open", "close", "ping", "pong", "message", "upgrade", "noop",
];
/// Socket.IO packet type names as the specification spells them.
const SIO_TYPES: [&str; 7] = [
    "CONNECT",
    "DISCONNECT",
    "EVENT",
    "ACK",
    "CONNECT_ERROR",
    "BINARY_EVENT",
    "BINARY_ACK",
];

/// A parsed Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    /// 0..=6.
    pub kind: u8,
    /// Binary attachments announced (`5`/`6`).
    pub attachments: u32,
    /// Namespace (`/` when absent).
    pub nsp: String,
    /// Ack id.
    pub id: Option<u64>,
    /// The JSON part.
    pub data: Option<Value>,
}

/// Parses the Socket.IO packet inside an Engine.IO message.
pub fn parse_sio(text: &str) -> Result<SioPacket, String> {
    let bytes = text.as_bytes();
    let Some(&t) = bytes.first() else {
        return Err("empty Socket.IO packet".into());
    };
    if !(b'0'..=b'6').contains(&t) {
        return Err(format!("Socket.IO packet type {:?} is not 0-6", t as char));
    }
    let kind = t - b'0';
    let mut i = 1;
    let mut attachments = 0u32;
    if kind == 5 || kind == 6 {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i >= bytes.len() || bytes[i] != b'-' {
            return Err("binary packet without its attachment count (`<n>-`)".into());
        }
        attachments = text[start..i]
            .parse()
            .map_err(|_| "attachment count out of range".to_string())?;
        i += 1;
    }
    let mut nsp = "/".to_string();
    if bytes.get(i) == Some(&b'/') {
        let end = text[i..].find(',').map_or(bytes.len(), |p| i + p);
        nsp = text[i..end].to_string();
        i = (end + 1).min(bytes.len());
    }
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let id = if i > start {
        Some(
            text[start..i]
                .parse::<u64>()
                .map_err(|_| "ack id out of range".to_string())?,
        )
    } else {
        None
    };
    let rest = &text[i..];
    let data = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str::<Value>(rest).map_err(|e| {
            format!(
                "Socket.IO {} payload is not JSON ({e})",
                SIO_TYPES[kind as usize]
            )
        })?)
    };
    Ok(SioPacket {
        kind,
        attachments,
        nsp,
        id,
        data,
    })
}

/// Placeholder numbers in a binary packet's data (`{"_placeholder":true,"num":N}`).
fn placeholders(v: &Value, out: &mut Vec<u64>) {
    match v {
        Value::Object(o) => {
            if o.get("_placeholder") == Some(&Value::Bool(true))
                && let Some(n) = o.get("num").and_then(Value::as_u64)
            {
                out.push(n);
                return;
            }
            for x in o.values() {
                placeholders(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| placeholders(x, out)),
        _ => {}
    }
}

struct AttachmentsDue {
    from: Side,
    event: String,
    total: u32,
    received: u32,
    nums: Vec<u64>,
    time: f64,
}

/// Engine.IO / Socket.IO session of one connection.
pub struct EngineIo {
    /// Engine.IO protocol revision (3 or 4); None until known.
    eio: Option<u8>,
    path_says_socketio: bool,
    socketio_seen: bool,
    sid: Option<String>,
    opened: Option<(f64, String)>,
    heartbeat: Heartbeat,
    acks: Requests,
    due: Option<AttachmentsDue>,
    namespaces: Vec<String>,
    refused: Option<String>,
    disconnect: Option<AppCloseRecord>,
    eio_close: Option<(Side, f64)>,
    probes: u32,
    upgraded: bool,
    /// Leave credentials in namespaces out of fields and summaries.
    redact: bool,
}

impl EngineIo {
    /// A session; the URL gives the revision (`EIO=4`) and an upgrade's `sid`.
    pub fn new(hs: &HandshakeInfo) -> Self {
        let eio = hs.query("EIO").and_then(|v| v.parse::<u8>().ok());
        let mut heartbeat = Heartbeat::new("engine.io ping/pong");
        set_defaults(&mut heartbeat, eio);
        EngineIo {
            eio,
            path_says_socketio: hs.path_only().contains("/socket.io"),
            socketio_seen: false,
            sid: hs.query("sid").map(str::to_string),
            opened: None,
            heartbeat,
            acks: Requests::new("ack id"),
            due: None,
            namespaces: Vec::new(),
            refused: None,
            disconnect: None,
            eio_close: None,
            probes: 0,
            upgraded: false,
            redact: hs.redact,
        }
    }

    /// Who pings: the server from v4 on, the client before.
    fn pinger(&self) -> Side {
        if self.eio == Some(3) {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn packet_text(&mut self, m: &Input<'_>, text: &str, out: &mut Decoded) {
        let Some(t) = text.as_bytes().first().copied() else {
            out.violation(NAME, m, "empty text message (no packet type)");
            return;
        };
        if !(b'0'..=b'6').contains(&t) {
            out.violation(
                NAME,
                m,
                format!(
                    "packet type {:?} is not 0-6 in {:?}",
                    t as char,
                    cut(text, 40)
                ),
            );
            return;
        }
        let body = &text[1..];
        match t - b'0' {
            0 => self.open(m, body, out),
            1 => {
                self.eio_close.get_or_insert((m.from, m.time));
                out.push(Packet::new("close", "engine.io close"));
            }
            2 => {
                if body == "probe" {
                    self.probes += 1;
                    out.push(
                        Packet::new("ping", "engine.io ping probe (upgrade)").with("probe", true),
                    );
                    return;
                }
                if self.eio.is_none() {
                    // The first heartbeat's direction tells the revision.
                    self.eio = Some(if m.from == Side::Server { 4 } else { 3 });
                    set_defaults(&mut self.heartbeat, self.eio);
                }
                self.heartbeat.ping(m.from, m.time);
                out.heartbeat = true;
                out.push(Packet::new("ping", "engine.io ping"));
            }
            3 => {
                if body == "probe" {
                    out.push(
                        Packet::new("pong", "engine.io pong probe (upgrade)").with("probe", true),
                    );
                    return;
                }
                let rtt = self.heartbeat.pong(m.from, m.time);
                out.heartbeat = true;
                let summary = match rtt {
                    Some(r) => format!("engine.io pong ({} after the ping)", human(r)),
                    None => "engine.io pong (answers no ping)".into(),
                };
                out.push(Packet::new("pong", summary).with_opt("rtt_ms", rtt.map(ms)));
            }
            4 => self.sio_message(m, body, out),
            5 => {
                self.upgraded = true;
                out.push(Packet::new(
                    "upgrade",
                    "engine.io upgrade (the polling session moves to this WebSocket)",
                ));
            }
            _ => out.push(Packet::new("noop", "engine.io noop")),
        }
    }

    fn open(&mut self, m: &Input<'_>, body: &str, out: &mut Decoded) {
        let v = match parse_json(body.as_bytes()) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return out.violation(NAME, m, "open packet data is not a JSON object"),
            Err(e) => return out.violation(NAME, m, format!("open packet: {e}")),
        };
        let sid = v.get("sid").and_then(Value::as_str).map(str::to_string);
        let interval = v.get("pingInterval").and_then(Value::as_f64);
        let timeout = v.get("pingTimeout").and_then(Value::as_f64);
        if self.eio.is_none() {
            // v4 added maxPayload to the open packet.
            self.eio = Some(if v.contains_key("maxPayload") { 4 } else { 3 });
        }
        if let Some(i) = interval {
            self.heartbeat.interval = Some(i / 1000.0);
            self.heartbeat.configured_by = Some("open packet".into());
        }
        if let Some(t) = timeout {
            self.heartbeat.timeout = Some(t / 1000.0);
        }
        self.sid = sid.clone().or(self.sid.take());
        let mut summary = format!("engine.io open sid {}", sid.as_deref().unwrap_or("?"));
        if let (Some(i), Some(t)) = (interval, timeout) {
            summary.push_str(&format!(" pingInterval {i} ms pingTimeout {t} ms"));
        }
        self.opened = Some((m.time, summary.clone()));
        out.push(
            Packet::new("open", summary)
                .with_opt("sid", sid)
                .with_opt("pingInterval", interval)
                .with_opt("pingTimeout", timeout)
                .with_opt("maxPayload", v.get("maxPayload").cloned()),
        );
    }

    fn sio_message(&mut self, m: &Input<'_>, body: &str, out: &mut Decoded) {
        if !self.socketio_seen && !self.path_says_socketio && parse_sio(body).is_err() {
            // Engine.IO alone carries any string.
            out.push(
                Packet::new("message", format!("engine.io message {} B", body.len()))
                    .with("length", body.len()),
            );
            return;
        }
        let p = match parse_sio(body) {
            Ok(p) => p,
            Err(e) => return out.violation("socket.io", m, format!("{e} in {:?}", cut(body, 60))),
        };
        self.socketio_seen = true;
        self.sio(m, p, out);
    }

    fn sio(&mut self, m: &Input<'_>, mut p: SioPacket, out: &mut Decoded) {
        if self.redact {
            // Socket.IO 2 clients put credentials in the namespace's query (`/chat?token=…`).
            p.nsp = crate::analysis::redact::target(&p.nsp).into_owned();
        }
        let kind = SIO_TYPES[p.kind as usize];
        let mut summary = String::from("socket.io ");
        let mut packet = Packet::new(kind, "").with("nsp", p.nsp.clone());
        let event = match (&p.data, p.kind) {
            (Some(Value::Array(a)), 2 | 5) => a.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        match p.kind {
            0 => {
                summary.push_str("connect");
                if m.from == Side::Server && !self.namespaces.contains(&p.nsp) {
                    self.namespaces.push(p.nsp.clone());
                }
                if let Some(sid) = p
                    .data
                    .as_ref()
                    .and_then(|d| d.get("sid"))
                    .and_then(Value::as_str)
                {
                    packet = packet.with("sid", sid);
                    summary.push_str(&format!(" sid {sid}"));
                }
            }
            1 => {
                summary.push_str("disconnect");
                let meaning = match m.from {
                    Side::Server => {
                        "server namespace disconnect: the client sees \"io server disconnect\" (it does not reconnect by itself)"
                    }
                    Side::Client => "client namespace disconnect (\"io client disconnect\")",
                };
                self.disconnect.get_or_insert(AppCloseRecord {
                    from: Some(m.from),
                    time: Some(m.time),
                    code: None,
                    reason: Some(format!("DISCONNECT {}", p.nsp)),
                    meaning: meaning.into(),
                });
            }
            2 | 5 => {
                summary.push_str("event");
                match &event {
                    Some(e) => {
                        summary.push_str(&format!(" {e:?}"));
                        packet = packet.with("event", e.clone());
                    }
                    None => {
                        return out.violation(
                            "socket.io",
                            m,
                            format!(
                                "{kind} whose data is not an array starting with the event name"
                            ),
                        );
                    }
                }
            }
            3 | 6 => summary.push_str("ack"),
            _ => {
                summary.push_str("connect_error");
                let message = match &p.data {
                    Some(Value::Object(o)) => o.get("message").map(short),
                    Some(other) => Some(short(other)),
                    None => None,
                };
                let text = message.clone().unwrap_or_else(|| "(no message)".into());
                summary.push_str(&format!(" {text}"));
                self.refused.get_or_insert(format!("{} {text}", p.nsp));
                out.diag(
                    DiagnosticId::AppConnectRefused,
                    m.from,
                    m.time,
                    format!(
                        "socket.io: connection to namespace {} refused (CONNECT_ERROR): {text}",
                        p.nsp
                    ),
                );
            }
        }
        if let Some(id) = p.id {
            packet = packet.with("ack", id);
            if matches!(p.kind, 3 | 6) {
                summary.push_str(&format!(" {id}"));
            } else {
                summary.push_str(&format!(" ack {id}"));
            }
            let key = format!("{}#{id}", p.nsp);
            match p.kind {
                2 | 5 => {
                    // Acks are per direction: the peer answers with the same id.
                    let what = event
                        .clone()
                        .map(|e| format!("event {e:?}"))
                        .unwrap_or_default();
                    self.acks
                        .open(format!("{}:{key}", m.from.as_str()), what, m.from, m.time);
                }
                3 | 6 => {
                    let asked = format!("{}:{key}", m.from.peer().as_str());
                    if let Some((latency, _)) = self.acks.answer(&asked, m.time, false) {
                        packet = packet.with("latency_ms", ms(latency));
                        summary.push_str(&format!(" ({} after the event)", human(latency)));
                    } else {
                        summary.push_str(" (answers no event seen)");
                    }
                }
                _ => {}
            }
        }
        summary.push_str(&format!(" ns {}", p.nsp));
        if p.attachments > 0 {
            let mut nums = Vec::new();
            if let Some(d) = &p.data {
                placeholders(d, &mut nums);
            }
            if nums.len() as u32 != p.attachments {
                out.diag(
                    DiagnosticId::AppProtocolViolation,
                    m.from,
                    m.time,
                    format!(
                        "socket.io: {kind} announces {} attachments but its data holds {} placeholders",
                        p.attachments,
                        nums.len()
                    ),
                );
            }
            summary.push_str(&format!(
                ", {} binary attachment{} follow{}",
                p.attachments,
                if p.attachments == 1 { "" } else { "s" },
                if p.attachments == 1 { "s" } else { "" }
            ));
            packet = packet.with("attachments", p.attachments);
            if let Some(due) = self.due.take() {
                self.attachments_missing(&due, m, out);
            }
            self.due = Some(AttachmentsDue {
                from: m.from,
                event: event.clone().unwrap_or_else(|| "ack".into()),
                total: p.attachments,
                received: 0,
                nums,
                time: m.time,
            });
        }
        packet.summary = summary;
        out.push(packet);
    }

    fn attachments_missing(&self, due: &AttachmentsDue, m: &Input<'_>, out: &mut Decoded) {
        out.diag(
            DiagnosticId::AppProtocolViolation,
            due.from,
            m.time,
            format!(
                "socket.io: {} of {} binary attachments of {:?} (sent at {}) never came before the next packet",
                due.total - due.received,
                due.total,
                due.event,
                crate::analysis::clock(due.time)
            ),
        );
    }

    fn binary(&mut self, m: &Input<'_>, out: &mut Decoded) {
        let mut length = m.length;
        if self.eio == Some(3) {
            // v3 puts the packet type in byte 0 of a binary frame.
            match m.payload.first() {
                Some(4) => length = length.saturating_sub(1),
                Some(&t) if t <= 6 => {
                    out.push(Packet::new(
                        EIO_TYPES[t as usize],
                        format!("engine.io {} (binary)", EIO_TYPES[t as usize]),
                    ));
                    return;
                }
                Some(&t) => {
                    return out.violation(
                        NAME,
                        m,
                        format!("v3 binary frame with packet type byte {t} (not 0-6)"),
                    );
                }
                None => {
                    return out.violation(NAME, m, "empty v3 binary frame (no packet type byte)");
                }
            }
        }
        match &mut self.due {
            Some(due) if due.from == m.from => {
                let num = due
                    .nums
                    .get(due.received as usize)
                    .copied()
                    .unwrap_or(due.received as u64);
                due.received += 1;
                let summary = format!(
                    "socket.io attachment {}/{} of {:?} (placeholder {num}), {length} B",
                    due.received, due.total, due.event
                );
                let p = Packet::new("attachment", summary)
                    .with("event", due.event.clone())
                    .with("placeholder", num)
                    .with("length", length);
                if due.received >= due.total {
                    self.due = None;
                }
                out.push(p);
            }
            _ => out.push(
                Packet::new("message", format!("engine.io binary message {length} B"))
                    .with("length", length),
            ),
        }
    }
}

fn set_defaults(h: &mut Heartbeat, eio: Option<u8>) {
    if h.configured_by.as_deref() == Some("open packet") {
        return;
    }
    // engine.io server defaults: v4 pingInterval 25 s / pingTimeout 20 s; v3 25 s / 5 s
    // (Socket.IO 2 passes 5000).
    let (i, t) = if eio == Some(3) {
        (25.0, 5.0)
    } else {
        (25.0, 20.0)
    };
    h.interval = Some(i);
    h.timeout = Some(t);
    h.configured_by = Some("library default (open packet not captured)".into());
}

impl Decoder for EngineIo {
    fn name(&self) -> String {
        if self.socketio_seen || self.path_says_socketio {
            "socket.io".into()
        } else {
            NAME.into()
        }
    }

    fn version(&self) -> Option<String> {
        self.eio.map(|v| format!("EIO {v}"))
    }

    fn note(&self) -> Option<String> {
        self.eio.map(|v| {
            format!(
                "Engine.IO protocol {v}{}",
                if self.socketio_seen || self.path_says_socketio {
                    format!(" with Socket.IO protocol {}", if v >= 4 { 5 } else { 4 })
                } else {
                    String::new()
                }
            )
        })
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if m.binary {
            return Fit::Neutral;
        }
        let Ok(text) = std::str::from_utf8(m.payload) else {
            return Fit::No;
        };
        let mut chars = text.chars();
        match chars.next() {
            Some('0') if text.starts_with("0{") && text.contains("\"sid\"") => Fit::Strong,
            Some('1' | '5' | '6') if text.len() == 1 => Fit::Neutral,
            Some('2' | '3') if text.len() == 1 || &text[1..] == "probe" => Fit::Neutral,
            Some('4') => match parse_sio(&text[1..]) {
                Ok(p) if p.kind == 2 || p.kind == 5 => {
                    if matches!(&p.data, Some(Value::Array(a)) if a.first().is_some_and(Value::is_string))
                    {
                        Fit::Strong
                    } else {
                        Fit::No
                    }
                }
                Ok(p) if p.kind <= 1 => Fit::Strong,
                Ok(_) => Fit::Weak,
                Err(_) => Fit::No,
            },
            _ => Fit::No,
        }
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.complete {
            out.push(Packet::new(
                "incomplete",
                format!(
                    "engine.io: message incomplete ({} B kept of {})",
                    m.payload.len(),
                    m.length
                ),
            ));
            return;
        }
        if m.binary {
            return self.binary(m, out);
        }
        if let Some(due) = self.due.take() {
            if due.from == m.from {
                self.attachments_missing(&due, m, out);
            } else {
                self.due = Some(due);
            }
        }
        match std::str::from_utf8(m.payload) {
            Ok(text) => self.packet_text(m, text, out),
            Err(_) => out.violation(NAME, m, "text message is not UTF-8"),
        }
    }

    fn close_frame(&mut self, _close: &CloseSeen) {}

    fn secrets(&self, m: &Input<'_>) -> Vec<super::secrets::Secret> {
        if m.from == Side::Client && !m.binary {
            super::secrets::socketio_connect_secrets(m.payload)
        } else {
            Vec::new()
        }
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let mut fin = Finish::default();
        let pinger = self.pinger();
        let interval = self.heartbeat.interval.unwrap_or(25.0);
        let timeout = self.heartbeat.timeout.unwrap_or(20.0);
        let configured = |what: &str, secs: f64, by: &Option<String>| {
            let src = by.as_deref().unwrap_or("");
            if src == "open packet" {
                format!("{what} {} ", human(secs))
            } else {
                format!("{what} {} ({src}) ", human(secs))
            }
        };
        if let Some((closer, t)) = end.first() {
            if let Some(ping) = self.heartbeat.pending(pinger) {
                let waited = (t - ping).max(0.0);
                if closer == pinger && waited >= timeout * 0.9 {
                    let msg = format!(
                        "Engine.IO ping unanswered for {} > pingTimeout {}; the {} closed{}",
                        human(waited),
                        configured("", timeout, &self.heartbeat.configured_by).trim(),
                        closer.as_str(),
                        match &end.close {
                            Some(c) if c.from == closer && c.code == 1005 =>
                                " (empty Close, seen as 1005)".to_string(),
                            Some(c) if c.from == closer => format!(" (Close {})", c.code),
                            _ => " (no Close frame)".to_string(),
                        }
                    );
                    out.push(Diagnostic::new(
                        DiagnosticId::AppHeartbeatTimeout,
                        Some(pinger.peer()),
                        Some(t),
                        msg,
                    ));
                    fin.end_reason = Some(format!(
                        "engine.io ping timeout: the {}'s ping was unanswered for {}",
                        pinger.as_str(),
                        human(waited)
                    ));
                }
            } else {
                // The side that waits for pings gives up after interval + timeout without one.
                let waiter = pinger.peer();
                let since = self
                    .heartbeat
                    .last(pinger)
                    .or(self.opened.as_ref().map(|o| o.0));
                if closer == waiter
                    && let Some(since) = since
                {
                    let quiet = (t - since).max(0.0);
                    if quiet >= (interval + timeout) * 0.9 {
                        out.push(Diagnostic::new(
                            DiagnosticId::AppHeartbeatTimeout,
                            Some(pinger),
                            Some(t),
                            format!(
                                "no Engine.IO ping from the {} for {} > pingInterval + pingTimeout {}; the {} gave up ({})",
                                pinger.as_str(),
                                human(quiet),
                                human(interval + timeout),
                                waiter.as_str(),
                                end.describe()
                            ),
                        ));
                        fin.end_reason = Some(format!(
                            "engine.io: no ping from the {} for {}",
                            pinger.as_str(),
                            human(quiet)
                        ));
                    }
                }
            }
        }
        if let Some(due) = &self.due {
            out.push(Diagnostic::new(
                DiagnosticId::AppProtocolViolation,
                Some(due.from),
                Some(due.time),
                format!(
                    "socket.io: {} of {} binary attachments of {:?} never came before {}",
                    due.total - due.received,
                    due.total,
                    due.event,
                    end.describe()
                ),
            ));
        }
        let mut session = AppSessionRecord {
            session_id: self.sid.clone(),
            handshake: self.opened.as_ref().map(|(t, s)| AppHandshakeRecord {
                ok: self.refused.is_none(),
                time: Some(*t),
                detail: match &self.refused {
                    Some(r) => format!("{s}; namespace refused: {r}"),
                    None => s.clone(),
                },
            }),
            ..AppSessionRecord::default()
        };
        if self.heartbeat.any() || self.opened.is_some() {
            session.heartbeat = Some(self.heartbeat.record());
        }
        if self.acks.any() {
            session.requests = Some(self.acks.finish("socket.io", end, out));
        }
        let mut details = Map::new();
        if !self.namespaces.is_empty() {
            details.insert("namespaces".into(), self.namespaces.clone().into());
        }
        if self.probes > 0 || self.upgraded {
            details.insert("upgraded_from_polling".into(), self.upgraded.into());
        }
        session.details = details;
        session.close = self.disconnect.clone().or_else(|| {
            self.eio_close.map(|(from, time)| AppCloseRecord {
                from: Some(from),
                time: Some(time),
                code: None,
                reason: Some("engine.io close packet".into()),
                meaning: format!("the {} closed the Engine.IO session", from.as_str()),
            })
        });
        if fin.end_reason.is_none()
            && let Some(c) = &session.close
        {
            fin.end_reason = Some(format!("socket.io: {}", c.meaning));
        }
        let hb = session.heartbeat.as_ref();
        session.summary = format!(
            "{}{}{}",
            self.opened
                .as_ref()
                .map_or("no open packet seen".to_string(), |o| o.1.clone()),
            hb.map(|h| format!(
                "; {} pings, {} answered, {} unanswered",
                h.sent.client + h.sent.server,
                h.answered,
                h.unanswered
            ))
            .unwrap_or_default(),
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

    fn eio4() -> EngineIo {
        EngineIo::new(&HandshakeInfo {
            path: "/socket.io/?EIO=4&transport=websocket".into(),
            ..HandshakeInfo::default()
        })
    }

    fn decode(e: &mut EngineIo, from: Side, t: f64, text: &str) -> Decoded {
        let mut d = Decoded::default();
        e.message(&input(from, t, text), &mut d);
        d
    }

    #[test]
    fn socketio_packets_from_the_specification() {
        assert_eq!(
            parse_sio(r#"2/admin,12["ev",1]"#).unwrap(),
            SioPacket {
                kind: 2,
                attachments: 0,
                nsp: "/admin".into(),
                id: Some(12),
                data: Some(serde_json::json!(["ev", 1]))
            }
        );
        let p = parse_sio(r#"51-["up",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!((p.kind, p.attachments, p.nsp.as_str()), (5, 1, "/"));
        assert_eq!(parse_sio("1/admin,").unwrap().nsp, "/admin");
        assert!(parse_sio("5[]").is_err(), "no attachment count");
        assert!(parse_sio("7").is_err());
        assert!(parse_sio("2[\"a\"").is_err(), "cut JSON");
        assert!(parse_sio("299999999999999999999999[]").is_err());
    }

    #[test]
    fn open_event_ack_and_heartbeat() {
        let mut e = eio4();
        let d = decode(
            &mut e,
            Side::Server,
            1.0,
            r#"0{"sid":"abc","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#,
        );
        assert_eq!(d.packets[0].kind, "open");
        let d = decode(&mut e, Side::Client, 1.01, r#"420["chat","hi"]"#);
        assert_eq!(d.packets[0].summary, r#"socket.io event "chat" ack 0 ns /"#);
        let d = decode(&mut e, Side::Server, 1.02, r#"430["ok"]"#);
        assert_eq!(d.packets[0].kind, "ACK");
        assert!(d.packets[0].summary.contains("after the event"));
        let d = decode(&mut e, Side::Server, 1.3, "2");
        assert!(d.heartbeat);
        let d = decode(&mut e, Side::Client, 1.301, "3");
        assert!(
            d.packets[0].summary.contains("1 ms after"),
            "{}",
            d.packets[0].summary
        );
        let mut diags = Vec::new();
        let fin = e.finish(
            &End {
                last_seen: 2.0,
                ..End::default()
            },
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
        let hb = fin.session.heartbeat.unwrap();
        assert_eq!(
            (hb.answered, hb.unanswered, hb.interval_ms),
            (1, 0, Some(300.0))
        );
        assert_eq!(e.name(), "socket.io");
    }

    #[test]
    fn an_unanswered_ping_then_the_server_closing_is_a_heartbeat_timeout() {
        let mut e = eio4();
        decode(
            &mut e,
            Side::Server,
            1.0,
            r#"0{"sid":"x","pingInterval":300,"pingTimeout":200,"maxPayload":1}"#,
        );
        decode(&mut e, Side::Server, 1.3, "2");
        let end = End {
            close: Some(CloseSeen {
                from: Side::Server,
                time: 1.501,
                code: 1005,
                reason: String::new(),
            }),
            last_seen: 1.6,
            ..End::default()
        };
        let mut diags = Vec::new();
        let fin = e.finish(&end, &mut diags);
        assert_eq!(diags[0].id, DiagnosticId::AppHeartbeatTimeout);
        assert_eq!(
            diags[0].message,
            "Engine.IO ping unanswered for 201 ms > pingTimeout 200 ms; the server closed (empty Close, seen as 1005)"
        );
        assert!(fin.end_reason.unwrap().contains("ping timeout"));
    }

    #[test]
    fn binary_attachments_join_their_placeholders() {
        let mut e = eio4();
        decode(
            &mut e,
            Side::Client,
            1.0,
            r#"451-["upload",{"_placeholder":true,"num":0}]"#,
        );
        let mut d = Decoded::default();
        let bytes = [1u8, 2, 3];
        e.message(
            &Input {
                from: Side::Client,
                time: 1.1,
                binary: true,
                payload: &bytes,
                length: 3,
                complete: true,
            },
            &mut d,
        );
        assert_eq!(d.packets[0].kind, "attachment");
        assert_eq!(
            d.packets[0].summary,
            r#"socket.io attachment 1/1 of "upload" (placeholder 0), 3 B"#
        );
    }

    #[test]
    fn malformed_packets_are_violations_not_panics() {
        for bad in ["", "9", "4{", "0nope", "42{\"a\":1}", "45[]", "\u{1F600}"] {
            let mut e = eio4();
            let d = decode(&mut e, Side::Client, 1.0, bad);
            assert!(
                d.diagnostics
                    .iter()
                    .any(|x| x.id == DiagnosticId::AppProtocolViolation),
                "{bad:?}: {d:?}"
            );
        }
    }

    #[test]
    fn v3_clients_ping_and_binary_frames_carry_the_type_byte() {
        let mut e = EngineIo::new(&HandshakeInfo {
            path: "/socket.io/?EIO=3&transport=websocket".into(),
            ..HandshakeInfo::default()
        });
        decode(
            &mut e,
            Side::Server,
            1.0,
            r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":5000}"#,
        );
        decode(&mut e, Side::Server, 1.0, "40");
        decode(&mut e, Side::Client, 2.0, "2");
        let d = decode(&mut e, Side::Server, 2.001, "3");
        assert!(d.packets[0].summary.contains("after the ping"));
        decode(
            &mut e,
            Side::Client,
            3.0,
            r#"451-["f",{"_placeholder":true,"num":0}]"#,
        );
        let bytes = [4u8, 9, 9];
        let mut d = Decoded::default();
        e.message(
            &Input {
                from: Side::Client,
                time: 3.1,
                binary: true,
                payload: &bytes,
                length: 3,
                complete: true,
            },
            &mut d,
        );
        assert!(
            d.packets[0].summary.ends_with("2 B"),
            "{}",
            d.packets[0].summary
        );
    }
}
