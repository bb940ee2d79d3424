//! STOMP 1.0-1.2 (stomp.github.io): `COMMAND\nheader:value\n\nbody\0`, heart-beats as bare
//! end-of-lines, receipts paired, ERROR frames, the negotiated heart-beat checked at the end.
//! The frame grammar is hand-written (no crate parses STOMP frames from a buffer).

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{AppCloseRecord, AppHandshakeRecord, AppSessionRecord};

use super::session::{Heartbeat, Requests};
use super::{Decoded, Decoder, End, Finish, Fit, HandshakeInfo, Input, Packet, cut, human, ms};

const CLIENT_COMMANDS: [&str; 11] = [
    "CONNECT",
    "STOMP",
    "SEND",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "BEGIN",
    "COMMIT",
    "ABORT",
    "ACK",
    "NACK",
    "DISCONNECT",
];
const SERVER_COMMANDS: [&str; 4] = ["CONNECTED", "MESSAGE", "RECEIPT", "ERROR"];

/// One STOMP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Command.
    pub command: String,
    /// Headers in order (a repeated header keeps its first value, §"Repeated Header Entries").
    pub headers: Vec<(String, String)>,
    /// Body length.
    pub body_len: usize,
    /// The first bytes of the body.
    pub body_preview: String,
}

impl Frame {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What one piece of a message held.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A bare end-of-line.
    Heartbeat,
    /// A frame.
    Frame(Frame),
}

fn unescape(s: &str, escaped: bool) -> Result<String, String> {
    if !escaped || !s.contains('\\') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            other => {
                return Err(format!(
                    "undefined header escape \\{}",
                    other.map_or(String::new(), String::from)
                ));
            }
        }
    }
    Ok(out)
}

/// Parses the frames and heart-beats of one message.
pub fn parse(bytes: &[u8]) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        // End-of-lines between frames are heart-beats.
        if bytes[i] == b'\n' {
            items.push(Item::Heartbeat);
            i += 1;
            continue;
        }
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            items.push(Item::Heartbeat);
            i += 2;
            continue;
        }
        let (frame, used) = parse_frame(&bytes[i..])?;
        items.push(Item::Frame(frame));
        i += used;
    }
    Ok(items)
}

fn line(bytes: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let end = bytes[from..].iter().position(|&b| b == b'\n')? + from;
    let text = &bytes[from..end];
    let text = text.strip_suffix(b"\r").unwrap_or(text);
    Some((text, end + 1))
}

fn parse_frame(bytes: &[u8]) -> Result<(Frame, usize), String> {
    let (cmd, mut i) = line(bytes, 0).ok_or("frame without an end-of-line after its command")?;
    let command = std::str::from_utf8(cmd).map_err(|_| "command is not UTF-8".to_string())?;
    if !CLIENT_COMMANDS.contains(&command) && !SERVER_COMMANDS.contains(&command) {
        return Err(format!("unknown command {:?}", cut(command, 30)));
    }
    // CONNECT and CONNECTED headers are not escaped (§"Value Encoding").
    let escaped = !matches!(command, "CONNECT" | "CONNECTED");
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let (h, next) = line(bytes, i).ok_or("headers not ended by an empty line")?;
        i = next;
        if h.is_empty() {
            break;
        }
        let h = std::str::from_utf8(h).map_err(|_| "header is not UTF-8".to_string())?;
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("header line without a colon: {:?}", cut(h, 40)))?;
        let k = unescape(k, escaped)?;
        if !headers.iter().any(|(x, _)| *x == k) {
            headers.push((k, unescape(v, escaped)?));
        }
    }
    let content_length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map(|(_, v)| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| format!("content-length {v:?} is not a number"))
        })
        .transpose()?;
    let body_end = match content_length {
        Some(n) => {
            if bytes.len() < i + n + 1 {
                return Err(format!("body shorter than its content-length {n}"));
            }
            if bytes[i + n] != 0 {
                return Err(format!("no NUL after the {n}-byte body (content-length)"));
            }
            i + n
        }
        None => {
            i + bytes[i..]
                .iter()
                .position(|&b| b == 0)
                .ok_or("frame not ended by a NUL")?
        }
    };
    let body = &bytes[i..body_end];
    let preview = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
    Ok((
        Frame {
            command: command.to_string(),
            headers,
            body_len: body.len(),
            body_preview: preview,
        },
        body_end + 1,
    ))
}

fn heart_beat(v: Option<&str>) -> (u64, u64) {
    let Some(v) = v else {
        return (0, 0);
    };
    let mut parts = v.split(',').map(|x| x.trim().parse::<u64>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// One connection's STOMP session (also used inside SockJS).
pub struct Stomp {
    version: Option<String>,
    offered_versions: Option<String>,
    subprotocol: Option<String>,
    connect: Option<(f64, (u64, u64))>,
    connected: Option<AppHandshakeRecord>,
    /// Each side's send interval, seconds (0: none).
    intervals: [f64; 2],
    heartbeat: Heartbeat,
    last_activity: [Option<f64>; 2],
    receipts: Requests,
    subscriptions: Vec<(String, String)>,
    errors: u64,
    error_close: Option<AppCloseRecord>,
    disconnect: Option<(f64, Option<String>)>,
    /// The transport wrapping it, for names (`sockjs`).
    pub wrapped_in: Option<&'static str>,
}

impl Stomp {
    /// A session; the subprotocol names the version (`v12.stomp`).
    pub fn new(hs: &HandshakeInfo) -> Self {
        Stomp {
            version: None,
            offered_versions: None,
            subprotocol: hs.selected.clone(),
            connect: None,
            connected: None,
            intervals: [0.0; 2],
            heartbeat: Heartbeat::new("STOMP heart-beat"),
            last_activity: [None; 2],
            receipts: Requests::new("receipt"),
            subscriptions: Vec::new(),
            errors: 0,
            error_close: None,
            disconnect: None,
            wrapped_in: None,
        }
    }

    /// How well a text fits.
    pub fn fit_bytes(bytes: &[u8]) -> Fit {
        if bytes.iter().all(|&b| b == b'\n' || b == b'\r') {
            return if bytes.is_empty() {
                Fit::No
            } else {
                Fit::Neutral
            };
        }
        let first = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes, |e| &bytes[..e]);
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        match std::str::from_utf8(first) {
            Ok("CONNECT" | "STOMP" | "CONNECTED") if parse(bytes).is_ok() => Fit::Strong,
            Ok(c)
                if (CLIENT_COMMANDS.contains(&c) || SERVER_COMMANDS.contains(&c))
                    && parse(bytes).is_ok() =>
            {
                Fit::Weak
            }
            _ => Fit::No,
        }
    }

    /// Decodes one message's bytes (a WebSocket message, or one SockJS string).
    pub fn decode_bytes(&mut self, m: &Input<'_>, bytes: &[u8], out: &mut Decoded) {
        let items = match parse(bytes) {
            Ok(items) => items,
            Err(e) => return out.violation("stomp", m, e),
        };
        let side = m.from as usize;
        self.last_activity[side] = Some(m.time);
        let only_beats = items.iter().all(|i| *i == Item::Heartbeat);
        if only_beats && !items.is_empty() {
            out.heartbeat = true;
            self.heartbeat.beat(m.from, m.time);
            out.push(Packet::new("heartbeat", "stomp heart-beat"));
            return;
        }
        for item in items {
            if let Item::Frame(f) = item {
                self.frame(m, f, out);
            }
        }
    }

    fn frame(&mut self, m: &Input<'_>, f: Frame, out: &mut Decoded) {
        let mut p = Packet::new(f.command.clone(), "");
        let mut summary = format!("stomp {}", f.command);
        let expected = match m.from {
            Side::Client => CLIENT_COMMANDS.contains(&f.command.as_str()),
            Side::Server => SERVER_COMMANDS.contains(&f.command.as_str()),
        };
        if !expected {
            out.diag(
                DiagnosticId::AppProtocolViolation,
                m.from,
                m.time,
                format!(
                    "stomp: {} frame sent by the {} (it is a {} frame)",
                    f.command,
                    m.from.as_str(),
                    m.from.peer().as_str()
                ),
            );
        }
        for key in [
            "destination",
            "id",
            "subscription",
            "message-id",
            "receipt",
            "receipt-id",
            "ack",
            "transaction",
        ] {
            if let Some(v) = f.header(key) {
                p = p.with(key, v);
            }
        }
        if let Some(d) = f.header("destination") {
            summary.push_str(&format!(" {d}"));
        }
        match f.command.as_str() {
            "CONNECT" | "STOMP" => {
                let hb = heart_beat(f.header("heart-beat"));
                self.offered_versions = f.header("accept-version").map(str::to_string);
                self.connect = Some((m.time, hb));
                if let Some(v) = f.header("accept-version") {
                    summary.push_str(&format!(" accept-version {v}"));
                }
                summary.push_str(&format!(" heart-beat {},{}", hb.0, hb.1));
                p = p.with_opt("host", f.header("host").map(str::to_string));
            }
            "CONNECTED" => {
                let (sx, sy) = heart_beat(f.header("heart-beat"));
                let (cx, cy) = self.connect.map_or((0, 0), |c| c.1);
                // §"Heart-beating": each side sends every max(its cx, the peer's cy).
                let client_ms = if cx > 0 && sy > 0 { cx.max(sy) } else { 0 };
                let server_ms = if sx > 0 && cy > 0 { sx.max(cy) } else { 0 };
                self.intervals = [client_ms as f64 / 1000.0, server_ms as f64 / 1000.0];
                if client_ms > 0 || server_ms > 0 {
                    self.heartbeat.interval = Some(client_ms.max(server_ms) as f64 / 1000.0);
                    self.heartbeat.configured_by = Some(format!(
                        "negotiated: client every {client_ms} ms, server every {server_ms} ms"
                    ));
                }
                self.version = f
                    .header("version")
                    .map(str::to_string)
                    .or(Some("1.0".into()));
                let after = self.connect.map(|c| m.time - c.0);
                summary.push_str(&format!(
                    " version {} heart-beat {sx},{sy}{}",
                    self.version.as_deref().unwrap_or("1.0"),
                    after
                        .map(|a| format!(" ({} after CONNECT)", human(a)))
                        .unwrap_or_default()
                ));
                p = p
                    .with_opt("version", self.version.clone())
                    .with_opt("session", f.header("session").map(str::to_string))
                    .with_opt("server", f.header("server").map(str::to_string));
                self.connected = Some(AppHandshakeRecord {
                    ok: true,
                    time: Some(m.time),
                    detail: summary.clone(),
                });
            }
            "SUBSCRIBE" => {
                if let (Some(id), Some(d)) = (f.header("id"), f.header("destination")) {
                    summary.push_str(&format!(" id {id}"));
                    self.subscriptions.push((id.to_string(), d.to_string()));
                } else if self.version.as_deref() != Some("1.0") && f.header("id").is_none() {
                    out.diag(
                        DiagnosticId::AppProtocolViolation,
                        m.from,
                        m.time,
                        "stomp: SUBSCRIBE without an id header (required since 1.1)".into(),
                    );
                }
            }
            "MESSAGE" => {
                if let Some(s) = f.header("subscription") {
                    summary.push_str(&format!(" subscription {s}"));
                }
            }
            "ERROR" => {
                let message = f.header("message").map(str::to_string).unwrap_or_default();
                let text = if message.is_empty() {
                    cut(&f.body_preview, 80)
                } else {
                    message.clone()
                };
                summary.push_str(&format!(" {text:?}"));
                p = p.with("message", text.clone());
                self.errors += 1;
                let refused = self.connected.is_none() && self.connect.is_some();
                if refused {
                    self.connected = Some(AppHandshakeRecord {
                        ok: false,
                        time: Some(m.time),
                        detail: format!("ERROR {text:?} in answer to CONNECT"),
                    });
                }
                out.diag(
                    if refused {
                        DiagnosticId::AppConnectRefused
                    } else {
                        DiagnosticId::AppError
                    },
                    m.from,
                    m.time,
                    format!(
                        "stomp: ERROR frame{}: {text}{}",
                        if refused { " in answer to CONNECT" } else { "" },
                        if f.body_len > 0 && !message.is_empty() {
                            format!(" — {}", cut(f.body_preview.trim(), 80))
                        } else {
                            String::new()
                        }
                    ),
                );
                // A server closes the connection after an ERROR (§ERROR).
                self.error_close.get_or_insert(AppCloseRecord {
                    from: Some(m.from),
                    time: Some(m.time),
                    code: None,
                    reason: Some(text),
                    meaning: "STOMP ERROR: the server closes the connection after it".into(),
                });
                if let Some(r) = f.header("receipt-id") {
                    self.receipts.answer(r, m.time, true);
                }
            }
            "RECEIPT" => {
                if let Some(r) = f.header("receipt-id") {
                    match self.receipts.answer(r, m.time, false) {
                        Some((l, what)) => {
                            summary.push_str(&format!(" {r} for {what} ({} later)", human(l)));
                            p = p.with("latency_ms", ms(l));
                        }
                        None => summary.push_str(&format!(" {r} (for no receipt request seen)")),
                    }
                }
            }
            "DISCONNECT" => {
                self.disconnect = Some((m.time, f.header("receipt").map(str::to_string)));
            }
            _ => {}
        }
        if let Some(r) = f.header("receipt")
            && m.from == Side::Client
        {
            summary.push_str(&format!(" receipt {r}"));
            self.receipts
                .open(r.to_string(), f.command.clone(), m.from, m.time);
        }
        if f.body_len > 0 {
            summary.push_str(&format!(" {} B", f.body_len));
            p = p.with("body_length", f.body_len);
        }
        p.summary = summary;
        out.push(p);
    }

    /// The end: the negotiated heart-beat checked, receipts, errors, disconnect.
    pub fn finish_stomp(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let mut fin = Finish::default();
        let proto = self.name_inner();
        if let Some((closer, t)) = end.first() {
            let peer = closer.peer();
            let interval = self.intervals[peer as usize];
            if interval > 0.0
                && let Some(last) = self.last_activity[peer as usize]
                    .or(self.connected.as_ref().and_then(|c| c.time))
            {
                let quiet = (t - last).max(0.0);
                if quiet >= 2.0 * interval * 0.95 {
                    out.push(Diagnostic::new(
                        DiagnosticId::AppHeartbeatTimeout,
                        Some(peer),
                        Some(t),
                        format!(
                            "{proto}: no frame or heart-beat from the {} for {} (negotiated every {}; stomp.js gives up after twice that); {}",
                            peer.as_str(), human(quiet), human(interval), end.describe()
                        ),
                    ));
                    fin.end_reason = Some(format!(
                        "stomp heart-beat timeout: the {} was silent for {}",
                        peer.as_str(),
                        human(quiet)
                    ));
                }
            }
        }
        let mut session = AppSessionRecord {
            handshake: self.connected.clone(),
            ..AppSessionRecord::default()
        };
        if self.connect.is_some() && self.connected.is_none() {
            out.push(Diagnostic::new(
                DiagnosticId::AppRequestUnanswered,
                Some(Side::Server),
                self.connect.map(|c| c.0),
                format!(
                    "{proto}: CONNECT got no CONNECTED before {}",
                    end.describe()
                ),
            ));
        }
        if self.heartbeat.any() || self.heartbeat.interval.is_some() {
            session.heartbeat = Some(self.heartbeat.record());
        }
        if self.receipts.any() {
            session.requests = Some(self.receipts.finish(&proto, end, out));
        }
        let mut details = Map::new();
        if let Some(v) = &self.offered_versions {
            details.insert("accept_version".into(), v.clone().into());
        }
        if !self.subscriptions.is_empty() {
            details.insert(
                "subscriptions".into(),
                Value::Array(
                    self.subscriptions
                        .iter()
                        .take(50)
                        .map(|(id, d)| Value::String(format!("{id} {d}")))
                        .collect(),
                ),
            );
        }
        session.details = details;
        session.close = self.error_close.clone().or_else(|| {
            self.disconnect.as_ref().map(|(t, r)| AppCloseRecord {
                from: Some(Side::Client),
                time: Some(*t),
                code: None,
                reason: Some("DISCONNECT".into()),
                meaning: match r {
                    Some(r) => format!("graceful STOMP disconnect (receipt {r})"),
                    None => "STOMP disconnect".into(),
                },
            })
        });
        if fin.end_reason.is_none() && self.error_close.is_some() {
            fin.end_reason = session
                .close
                .as_ref()
                .map(|c| format!("stomp ERROR {:?}", c.reason.clone().unwrap_or_default()));
        }
        session.summary = format!(
            "{}{}{}",
            session
                .handshake
                .as_ref()
                .map_or("no CONNECTED".into(), |h| h.detail.clone()),
            if self.subscriptions.is_empty() {
                String::new()
            } else {
                format!("; {} subscriptions", self.subscriptions.len())
            },
            fin.end_reason
                .as_ref()
                .map(|r| format!("; {r}"))
                .unwrap_or_default()
        );
        fin.session = session;
        fin
    }

    fn name_inner(&self) -> String {
        match self.wrapped_in {
            Some(w) => format!("stomp (in {w})"),
            None => "stomp".into(),
        }
    }

    /// The negotiated version.
    pub fn stomp_version(&self) -> Option<String> {
        self.version.clone().or_else(|| {
            self.subprotocol.as_deref().and_then(|s| match s {
                "v10.stomp" => Some("1.0".into()),
                "v11.stomp" => Some("1.1".into()),
                "v12.stomp" => Some("1.2".into()),
                _ => None,
            })
        })
    }
}

impl Decoder for Stomp {
    fn name(&self) -> String {
        "stomp".into()
    }

    fn version(&self) -> Option<String> {
        self.stomp_version()
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if m.binary && !m.payload.starts_with(b"CONNECT") {
            return Fit::No;
        }
        Stomp::fit_bytes(m.payload)
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.complete {
            out.push(Packet::new(
                "incomplete",
                format!(
                    "stomp: message incomplete ({} B kept of {})",
                    m.payload.len(),
                    m.length
                ),
            ));
            return;
        }
        let bytes = m.payload;
        self.decode_bytes(m, bytes, out);
    }

    fn secrets(&self, m: &Input<'_>) -> Vec<super::secrets::Secret> {
        super::secrets::stomp_secrets(m.payload)
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        self.finish_stomp(end, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::tests::input;

    #[test]
    fn frames_from_the_specification() {
        let items = parse(b"MESSAGE\nsubscription:0\nmessage-id:007\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0\n").unwrap();
        let Item::Frame(f) = &items[0] else { panic!() };
        assert_eq!(
            (f.command.as_str(), f.header("message-id"), f.body_len),
            ("MESSAGE", Some("007"), 13)
        );
        assert_eq!(items[1], Item::Heartbeat);
        // content-length lets the body hold NULs; escapes are undone outside CONNECT(ED).
        let items = parse(b"SEND\ndestination:/a\\cb\ncontent-length:3\n\na\0b\0").unwrap();
        let Item::Frame(f) = &items[0] else { panic!() };
        assert_eq!((f.header("destination"), f.body_len), (Some("/a:b"), 3));
        assert_eq!(parse(b"\r\n").unwrap(), vec![Item::Heartbeat]);
        for bad in [
            &b"SEND\ndestination:/a\n\nno nul"[..],
            b"FOO\n\n\0",
            b"SEND\nnocolon\n\n\0",
            b"SEND\na:\\t\n\n\0",
            b"SEND\ncontent-length:9\n\nab\0",
            b"SEND",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn session_pairs_receipts_negotiates_heartbeats_and_reports_errors() {
        let mut s = Stomp::new(&HandshakeInfo::default());
        let mut run = |from, t, text: &str| {
            let mut d = Decoded::default();
            s.message(&input(from, t, text), &mut d);
            d
        };
        run(
            Side::Client,
            1.0,
            "CONNECT\naccept-version:1.2\nhost:x\nheart-beat:100,100\n\n\0",
        );
        let d = run(
            Side::Server,
            1.01,
            "CONNECTED\nversion:1.2\nheart-beat:100,100\n\n\0",
        );
        assert!(
            d.packets[0]
                .summary
                .starts_with("stomp CONNECTED version 1.2")
        );
        assert!(run(Side::Server, 1.1, "\n").heartbeat);
        run(
            Side::Client,
            1.2,
            "SEND\ndestination:/q\nreceipt:r1\n\nhi\0",
        );
        let d = run(Side::Server, 1.25, "RECEIPT\nreceipt-id:r1\n\n\0");
        assert!(
            d.packets[0].summary.contains("r1 for SEND (50 ms later)"),
            "{}",
            d.packets[0].summary
        );
        let d = run(Side::Server, 1.3, "ERROR\nmessage:bad thing\n\ndetails\0");
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppError);
        let d = run(Side::Client, 1.3, "SEND\n");
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppProtocolViolation);
        let end = End {
            close: None,
            tcp_end: Some((Side::Client, 1.6, false)),
            last_seen: 1.6,
            ..End::default()
        };
        let mut diags = Vec::new();
        let fin = s.finish(&end, &mut diags);
        assert_eq!(fin.session.heartbeat.unwrap().interval_ms, Some(100.0));
        assert_eq!(diags[0].id, DiagnosticId::AppHeartbeatTimeout, "{diags:?}");
    }
}
