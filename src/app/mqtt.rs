//! MQTT 3.1.1 and 5.0 over WebSocket (both specs §6: binary messages carry a byte stream, so a
//! control packet may span messages and one message may hold several). Per direction the bytes
//! are joined like TCP; every packet is decoded (CONNECT/CONNACK codes, SUBSCRIBE/SUBACK,
//! PUBLISH with its QoS flow paired, PINGREQ/PINGRESP, DISCONNECT reasons). The packet grammar is
//! hand-written: the MQTT crates parse from sockets or need an async runtime, not from a
//! message-by-message byte stream with gaps.

use serde_json::{Map, Value};

use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::{AppCloseRecord, AppHandshakeRecord, AppSessionRecord};

use super::session::{Heartbeat, Requests};
use super::{Decoded, Decoder, End, Finish, Fit, HandshakeInfo, Input, Packet, cut, human, ms};

/// Bytes of one packet held while it spans messages; a longer packet is decoded from its start
/// (its fields come first) and the rest of it skipped, so a direction holds at most this much.
const MAX_HELD_PACKET: usize = 64 * 1024;

const TYPES: [&str; 16] = [
    "reserved-0",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

/// MQTT 3.1.1 CONNACK return codes (§3.2.2.3).
fn connack_311(code: u8) -> &'static str {
    match code {
        0 => "Connection Accepted",
        1 => "unacceptable protocol version",
        2 => "identifier rejected",
        3 => "server unavailable",
        4 => "bad user name or password",
        5 => "not authorized",
        _ => "reserved return code",
    }
}

/// MQTT 5 reason codes (§2.4).
pub fn reason_5(code: u8) -> &'static str {
    match code {
        0x00 => "Success",
        0x01 => "Granted QoS 1",
        0x02 => "Granted QoS 2",
        0x04 => "Disconnect with Will Message",
        0x10 => "No matching subscribers",
        0x11 => "No subscription existed",
        0x18 => "Continue authentication",
        0x19 => "Re-authenticate",
        0x80 => "Unspecified error",
        0x81 => "Malformed Packet",
        0x82 => "Protocol Error",
        0x83 => "Implementation specific error",
        0x84 => "Unsupported Protocol Version",
        0x85 => "Client Identifier not valid",
        0x86 => "Bad User Name or Password",
        0x87 => "Not authorized",
        0x88 => "Server unavailable",
        0x89 => "Server busy",
        0x8A => "Banned",
        0x8B => "Server shutting down",
        0x8C => "Bad authentication method",
        0x8D => "Keep Alive timeout",
        0x8E => "Session taken over",
        0x8F => "Topic Filter invalid",
        0x90 => "Topic Name invalid",
        0x91 => "Packet Identifier in use",
        0x92 => "Packet Identifier not found",
        0x93 => "Receive Maximum exceeded",
        0x94 => "Topic Alias invalid",
        0x95 => "Packet too large",
        0x96 => "Message rate too high",
        0x97 => "Quota exceeded",
        0x98 => "Administrative action",
        0x99 => "Payload format invalid",
        0x9A => "Retain not supported",
        0x9B => "QoS not supported",
        0x9C => "Use another server",
        0x9D => "Server moved",
        0x9E => "Shared Subscriptions not supported",
        0x9F => "Connection rate exceeded",
        0xA0 => "Maximum connect time",
        0xA1 => "Subscription Identifiers not supported",
        0xA2 => "Wildcard Subscriptions not supported",
        _ => "unknown reason code",
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0 }
    }
    fn left(&self) -> usize {
        self.b.len() - self.i
    }
    fn u8(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.i).ok_or("packet ends early")?;
        self.i += 1;
        Ok(v)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.left() < n {
            return Err(format!("a {n}-byte field runs past the packet's end"));
        }
        let s = &self.b[self.i..self.i + n];
        self.i += n;
        Ok(s)
    }
    fn binary(&mut self) -> Result<&'a [u8], String> {
        let n = self.u16()? as usize;
        self.bytes(n)
    }
    fn string(&mut self) -> Result<String, String> {
        let b = self.binary()?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(|_| "a string field is not UTF-8 (MQTT-1.5.4-1)".into())
    }
    fn varint(&mut self) -> Result<u32, String> {
        let mut value = 0u32;
        for shift in [0, 7, 14, 21] {
            let b = self.u8()?;
            value |= u32::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("variable byte integer longer than 4 bytes".into())
    }
    /// v5 properties: returns the ones the report uses (reason string, assigned client id,
    /// server keep alive).
    fn properties(&mut self) -> Result<Props, String> {
        let n = self.varint()? as usize;
        let body = self.bytes(n)?;
        let mut r = Reader::new(body);
        let mut props = Props::default();
        while r.left() > 0 {
            let id = r.varint()?;
            match id {
                0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => {
                    r.u8()?;
                }
                0x13 => props.server_keep_alive = Some(r.u16()?),
                0x21..=0x23 => {
                    r.u16()?;
                }
                0x02 | 0x11 | 0x18 | 0x27 => {
                    r.bytes(4)?;
                }
                0x0B => {
                    r.varint()?;
                }
                0x12 => props.assigned_client_id = Some(r.string()?),
                0x1F => props.reason = Some(r.string()?),
                0x03 | 0x08 | 0x15 | 0x1A | 0x1C => {
                    r.string()?;
                }
                0x09 | 0x16 => {
                    r.binary()?;
                }
                0x26 => {
                    r.string()?;
                    r.string()?;
                }
                other => return Err(format!("unknown property identifier {other:#x}")),
            }
        }
        Ok(props)
    }
}

#[derive(Default)]
struct Props {
    reason: Option<String>,
    assigned_client_id: Option<String>,
    server_keep_alive: Option<u16>,
}

/// A decoded packet's facts for the session.
#[derive(Debug, Default)]
struct Facts {
    packet_id: Option<u16>,
    code: Option<u8>,
    codes: Vec<u8>,
    keep_alive: Option<u16>,
    level: Option<u8>,
    client_id: Option<String>,
    reason: Option<String>,
    qos: u8,
    topics: Vec<String>,
}

/// Splits the fixed header: (type/flags byte, remaining length, header length); None when more
/// bytes are needed.
fn fixed_header(b: &[u8]) -> Result<Option<(u8, usize, usize)>, String> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    let mut value = 0usize;
    for k in 0..4 {
        let Some(&byte) = b.get(1 + k) else {
            return Ok(None);
        };
        value |= usize::from(byte & 0x7F) << (7 * k);
        if byte & 0x80 == 0 {
            return Ok(Some((first, value, 2 + k)));
        }
    }
    Err("remaining length longer than 4 bytes (MQTT §2.2.3)".into())
}

fn check_flags(kind: u8, flags: u8) -> Result<(), String> {
    let want = match kind {
        0 => return Err("packet type 0 is reserved".into()),
        3 => {
            if flags & 0b0110 == 0b0110 {
                return Err("PUBLISH with QoS 3 (MQTT-3.3.1-4)".into());
            }
            return Ok(());
        }
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    if flags != want {
        return Err(format!(
            "{} with fixed-header flags {flags:#06b}, must be {want:#06b} (MQTT §2.2.2)",
            TYPES[kind as usize]
        ));
    }
    Ok(())
}

/// Decodes one whole packet (or the first part of an oversized one, `cut`).
/// `redact`: the user name stays out of the summary.
fn decode(
    first: u8,
    body: &[u8],
    v5: bool,
    cut_short: bool,
    redact: bool,
) -> Result<(Packet, Facts), String> {
    let kind = first >> 4;
    let flags = first & 0x0F;
    check_flags(kind, flags)?;
    let name = TYPES[kind as usize];
    let mut r = Reader::new(body);
    let mut f = Facts::default();
    let mut p = Packet::new(name, format!("mqtt {name}"));
    let mut s = format!("mqtt {name}");
    match kind {
        1 => {
            let proto = r.string()?;
            let level = r.u8()?;
            if proto != "MQTT" && proto != "MQIsdp" {
                return Err(format!("CONNECT protocol name {proto:?} is not MQTT"));
            }
            let cflags = r.u8()?;
            if cflags & 1 != 0 {
                return Err("CONNECT reserved flag set (MQTT-3.1.2-3)".into());
            }
            let keep_alive = r.u16()?;
            if level == 5 {
                r.properties()?;
            }
            let client_id = r.string()?;
            let version = match level {
                3 => "3.1",
                4 => "3.1.1",
                5 => "5.0",
                _ => "unknown",
            };
            s.push_str(&format!(
                " {version} client id {client_id:?} keep-alive {keep_alive} s"
            ));
            if cflags & 0x02 != 0 {
                s.push_str(" clean");
            }
            if cflags & 0x04 != 0 {
                if level == 5 {
                    r.properties()?;
                }
                let will = r.string()?;
                r.binary()?;
                s.push_str(&format!(" will {will:?}"));
            }
            if cflags & 0x80 != 0 {
                let user = r.string()?;
                if redact {
                    s.push_str(" user REDACTED");
                } else {
                    s.push_str(&format!(" user {user:?}"));
                }
            }
            if cflags & 0x40 != 0 {
                r.binary()?;
                s.push_str(" password");
            }
            p = p
                .with("protocol", proto)
                .with("level", level)
                .with("client_id", client_id.clone())
                .with("keep_alive", keep_alive);
            f.level = Some(level);
            f.keep_alive = Some(keep_alive);
            f.client_id = Some(client_id);
        }
        2 => {
            let ack_flags = r.u8()?;
            let code = r.u8()?;
            let text = if v5 {
                reason_5(code)
            } else {
                connack_311(code)
            };
            s.push_str(&format!(" {code} {text}"));
            if ack_flags & 1 != 0 {
                s.push_str(" (session present)");
            }
            if v5 && r.left() > 0 {
                let props = r.properties()?;
                if let Some(reason) = &props.reason {
                    s.push_str(&format!(": {reason:?}"));
                }
                f.keep_alive = props.server_keep_alive;
                f.client_id = props.assigned_client_id;
                f.reason = props.reason;
            }
            p = p
                .with("code", code)
                .with("session_present", ack_flags & 1 != 0);
            f.code = Some(code);
        }
        3 => {
            let qos = (flags >> 1) & 3;
            let topic = r.string()?;
            if topic.contains(['+', '#']) {
                return Err(format!(
                    "PUBLISH topic {topic:?} contains a wildcard (MQTT-3.3.2-2)"
                ));
            }
            s.push_str(&format!(" qos {qos}"));
            if qos > 0 {
                let id = r.u16()?;
                s.push_str(&format!(" id {id}"));
                p = p.with("id", id);
                f.packet_id = Some(id);
            }
            if v5 {
                r.properties()?;
            }
            let payload = if cut_short { "≥" } else { "" };
            s.push_str(&format!(" {topic:?} {payload}{} B", r.left()));
            if flags & 1 != 0 {
                s.push_str(" retain");
            }
            if flags & 8 != 0 {
                s.push_str(" dup");
            }
            p = p
                .with("topic", topic.clone())
                .with("qos", qos)
                .with("payload_length", r.left());
            f.qos = qos;
            f.topics.push(topic);
        }
        4..=7 | 11 => {
            let id = r.u16()?;
            s.push_str(&format!(" id {id}"));
            p = p.with("id", id);
            f.packet_id = Some(id);
            if v5 && r.left() > 0 {
                let code = r.u8()?;
                if kind == 11 {
                    // UNSUBACK: properties, then a reason code per filter.
                    r.i -= 1;
                    r.properties()?;
                    f.codes = r.bytes(r.left())?.to_vec();
                } else {
                    f.code = Some(code);
                    s.push_str(&format!(" {code:#04x} {}", reason_5(code)));
                    p = p.with("code", code);
                    if r.left() > 0 {
                        let props = r.properties()?;
                        f.reason = props.reason;
                    }
                }
            }
        }
        8 | 10 => {
            let id = r.u16()?;
            if v5 {
                r.properties()?;
            }
            while r.left() > 0 {
                let t = r.string()?;
                if kind == 8 {
                    let opts = r.u8()?;
                    s.push_str(&format!(" {t:?} qos {}", opts & 3));
                } else {
                    s.push_str(&format!(" {t:?}"));
                }
                f.topics.push(t);
            }
            if f.topics.is_empty() {
                return Err(format!("{name} without a topic filter (MQTT-3.8.3-3)"));
            }
            s = s.replacen(name, &format!("{name} id {id}"), 1);
            p = p.with("id", id).with("topics", f.topics.clone());
            f.packet_id = Some(id);
        }
        9 => {
            let id = r.u16()?;
            if v5 {
                r.properties()?;
            }
            f.codes = r.bytes(r.left())?.to_vec();
            let codes: Vec<String> = f
                .codes
                .iter()
                .map(|c| match c {
                    0..=2 => format!("qos {c}"),
                    _ if v5 => format!("{c:#04x} {}", reason_5(*c)),
                    _ => format!("{c:#04x} failure"),
                })
                .collect();
            s.push_str(&format!(" id {id} {}", codes.join(", ")));
            p = p.with("id", id).with("codes", f.codes.clone());
            f.packet_id = Some(id);
        }
        12 | 13 => {}
        14 | 15 if r.left() > 0 => {
            let code = r.u8()?;
            s.push_str(&format!(" {code:#04x} {}", reason_5(code)));
            p = p.with("code", code);
            f.code = Some(code);
            if r.left() > 0 {
                let props = r.properties()?;
                if let Some(reason) = &props.reason {
                    s.push_str(&format!(": {reason:?}"));
                }
                f.reason = props.reason;
            }
        }
        _ => {}
    }
    if !cut_short && r.left() > 0 && !matches!(kind, 3 | 9 | 11) {
        return Err(format!("{name} has {} bytes past its fields", r.left()));
    }
    p.summary = s;
    Ok((p, f))
}

#[derive(Default)]
struct Dir {
    buf: Vec<u8>,
    /// Bytes still to skip of an oversized packet already decoded from its start.
    skip: u64,
    /// The stream lost sync (bytes missing); the next message starts a packet.
    lost: bool,
}

/// One connection's MQTT session.
pub struct Mqtt {
    dirs: [Dir; 2],
    level: Option<u8>,
    client_id: Option<String>,
    keep_alive: Option<u16>,
    connect: Option<f64>,
    connack: Option<AppHandshakeRecord>,
    heartbeat: Heartbeat,
    acks: Requests,
    last_packet: [Option<f64>; 2],
    subscriptions: Vec<String>,
    disconnect: Option<AppCloseRecord>,
    violations: u64,
    /// Leave the user name out of summaries.
    redact: bool,
}

impl Mqtt {
    /// A session.
    pub fn new(hs: &HandshakeInfo) -> Self {
        Mqtt {
            redact: hs.redact,
            dirs: [Dir::default(), Dir::default()],
            level: None,
            client_id: None,
            keep_alive: None,
            connect: None,
            connack: None,
            heartbeat: Heartbeat::new("MQTT PINGREQ/PINGRESP"),
            acks: Requests::new("packet id"),
            last_packet: [None; 2],
            subscriptions: Vec::new(),
            disconnect: None,
            violations: 0,
        }
    }

    fn v5(&self) -> bool {
        self.level == Some(5)
    }

    fn session(&mut self, m: &Input<'_>, kind: u8, f: Facts, p: &mut Packet, out: &mut Decoded) {
        self.last_packet[m.from as usize] = Some(m.time);
        let dir = m.from.as_str();
        let peer = m.from.peer().as_str();
        match kind {
            1 => {
                self.level = f.level;
                self.keep_alive = f.keep_alive;
                self.client_id = f.client_id;
                self.connect = Some(m.time);
                if let Some(k) = f.keep_alive.filter(|k| *k > 0) {
                    self.heartbeat.interval = Some(f64::from(k));
                    self.heartbeat.timeout = Some(1.5 * f64::from(k));
                    self.heartbeat.configured_by = Some("CONNECT keep-alive (the broker may close after 1.5 times it, MQTT-3.1.2-24)".into());
                }
            }
            2 => {
                let code = f.code.unwrap_or(0);
                let ok = code == 0;
                if let Some(k) = f.keep_alive {
                    self.keep_alive = Some(k);
                    self.heartbeat.interval = Some(f64::from(k));
                    self.heartbeat.configured_by = Some("CONNACK Server Keep Alive".into());
                }
                if let Some(id) = f.client_id {
                    self.client_id = Some(id);
                }
                if let Some(t) = self.connect {
                    p.summary
                        .push_str(&format!(" ({} after CONNECT)", human(m.time - t)));
                }
                self.connack.get_or_insert(AppHandshakeRecord {
                    ok,
                    time: Some(m.time),
                    detail: p.summary.clone(),
                });
                if !ok {
                    out.diag(
                        DiagnosticId::AppConnectRefused,
                        m.from,
                        m.time,
                        format!(
                            "mqtt: the broker refused the connection: {}",
                            p.summary.trim_start_matches("mqtt ")
                        ),
                    );
                }
            }
            3 => {
                if let Some(id) = f.packet_id {
                    let stage = if f.qos == 1 { "PUBACK" } else { "PUBREC" };
                    self.acks.open(
                        format!("{dir}:{id}"),
                        format!("PUBLISH qos {} awaiting {stage}", f.qos),
                        m.from,
                        m.time,
                    );
                }
            }
            4 | 5 | 7 => {
                if let Some(id) = f.packet_id {
                    let error = f.code.is_some_and(|c| c >= 0x80);
                    match self.acks.answer(&format!("{peer}:{id}"), m.time, error) {
                        Some((l, _)) => {
                            p.summary.push_str(&format!(" ({} later)", human(l)));
                            *p =
                                std::mem::replace(p, Packet::new("", "")).with("latency_ms", ms(l));
                        }
                        None => p.summary.push_str(" (answers nothing seen)"),
                    }
                    if error {
                        out.diag(
                            DiagnosticId::AppError,
                            m.from,
                            m.time,
                            format!("mqtt: {}", p.summary.trim_start_matches("mqtt ")),
                        );
                    }
                    if kind == 5 {
                        // QoS 2 goes on: PUBREL from the publisher, PUBCOMP from us.
                        self.acks.open(
                            format!("{peer}:rel{id}"),
                            "PUBREC awaiting PUBREL".into(),
                            m.from,
                            m.time,
                        );
                    }
                }
            }
            6 => {
                if let Some(id) = f.packet_id {
                    // The PUBREC asked this side (the publisher) for its PUBREL.
                    self.acks.answer(&format!("{dir}:rel{id}"), m.time, false);
                    self.acks.open(
                        format!("{dir}:{id}"),
                        "PUBREL awaiting PUBCOMP".into(),
                        m.from,
                        m.time,
                    );
                }
            }
            8 | 10 => {
                if let Some(id) = f.packet_id {
                    self.acks.open(
                        format!("{dir}:{id}"),
                        format!("{} {}", TYPES[kind as usize], f.topics.join(",")),
                        m.from,
                        m.time,
                    );
                }
                if kind == 8 {
                    self.subscriptions.extend(f.topics.iter().take(50).cloned());
                }
            }
            9 | 11 => {
                if let Some(id) = f.packet_id {
                    let failed: Vec<u8> = f.codes.iter().copied().filter(|c| *c >= 0x80).collect();
                    match self
                        .acks
                        .answer(&format!("{peer}:{id}"), m.time, !failed.is_empty())
                    {
                        Some((l, _)) => p.summary.push_str(&format!(" ({} later)", human(l))),
                        None => p.summary.push_str(" (answers nothing seen)"),
                    }
                    if !failed.is_empty() {
                        out.diag(
                            DiagnosticId::AppError,
                            m.from,
                            m.time,
                            format!(
                                "mqtt: {} refused {} of {} topic filters",
                                TYPES[kind as usize],
                                failed.len(),
                                f.codes.len()
                            ),
                        );
                    }
                }
            }
            12 => {
                out.heartbeat = true;
                self.heartbeat.ping(m.from, m.time);
            }
            13 => {
                out.heartbeat = true;
                if let Some(rtt) = self.heartbeat.pong(m.from, m.time) {
                    p.summary
                        .push_str(&format!(" ({} after PINGREQ)", human(rtt)));
                }
            }
            14 => {
                let code = f.code.unwrap_or(0);
                let meaning = format!(
                    "{code:#04x} {}{}",
                    reason_5(code),
                    f.reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                );
                self.disconnect.get_or_insert(AppCloseRecord {
                    from: Some(m.from),
                    time: Some(m.time),
                    code: Some(i64::from(code)),
                    reason: f.reason.clone(),
                    meaning: if code == 0 {
                        "normal disconnection".into()
                    } else {
                        meaning.clone()
                    },
                });
                if code == 0x8D {
                    out.diag(
                        DiagnosticId::AppHeartbeatTimeout,
                        m.from,
                        m.time,
                        format!("mqtt: the {dir} disconnected with {meaning}"),
                    );
                } else if code >= 0x80 {
                    out.diag(
                        DiagnosticId::AppError,
                        m.from,
                        m.time,
                        format!("mqtt: the {dir} disconnected with {meaning}"),
                    );
                }
            }
            _ => {}
        }
    }

    fn feed(&mut self, m: &Input<'_>, out: &mut Decoded) {
        let side = m.from as usize;
        let mut data = m.payload;
        let missing = m.length.saturating_sub(m.payload.len() as u64);
        // Where `data` starts in the payload, and how much of `bytes` came before it.
        let mut skipped = 0;
        {
            let d = &mut self.dirs[side];
            if d.lost {
                d.lost = false;
                d.buf.clear();
                d.skip = 0;
            }
            if d.skip > 0 {
                let n = (d.skip.min(data.len() as u64)) as usize;
                d.skip -= n as u64;
                data = &data[n..];
                skipped = n;
            }
        }
        let prev = self.dirs[side].buf.len();
        let mut joined;
        let bytes: &[u8] = if self.dirs[side].buf.is_empty() {
            data
        } else {
            joined = std::mem::take(&mut self.dirs[side].buf);
            joined.extend_from_slice(data);
            &joined
        };
        let mut i = 0;
        while i < bytes.len() {
            let header = match fixed_header(&bytes[i..]) {
                Ok(h) => h,
                Err(e) => {
                    self.violations += 1;
                    out.violation("mqtt", m, e);
                    self.dirs[side].lost = true;
                    return;
                }
            };
            let Some((first, remaining, hlen)) = header else {
                break;
            };
            let total = hlen + remaining;
            let have = bytes.len() - i;
            let cut_short = have < total;
            let body = &bytes[i + hlen..(i + total).min(bytes.len())];
            let v5 = self.v5();
            // Credentials of a CONNECT (or AUTH), also while it is still arriving: the part of
            // them in this message (earlier parts were found with the earlier messages).
            if matches!(first >> 4, 1 | 15) {
                let packet = &bytes[i..(i + total).min(bytes.len())];
                for r in super::secrets::mqtt_secrets(packet, v5) {
                    let (a, b) = (
                        (i + r.start).max(prev),
                        (i + r.end.min(total)).min(bytes.len()),
                    );
                    if b > a {
                        out.secrets.push(super::secrets::Secret {
                            range: a - prev + skipped..b - prev + skipped,
                            quote: false,
                        });
                    }
                }
            }
            if have < total && total <= MAX_HELD_PACKET {
                break;
            }
            match decode(first, body, v5, cut_short, self.redact) {
                Ok((mut p, f)) => {
                    self.session(m, first >> 4, f, &mut p, out);
                    out.push(p);
                }
                Err(e) => {
                    self.violations += 1;
                    out.violation("mqtt", m, e);
                }
            }
            if cut_short {
                // An oversized packet: decoded from its start, the rest skipped.
                self.dirs[side].skip = (total - have) as u64;
                i = bytes.len();
                break;
            }
            i += total;
        }
        if i < bytes.len() {
            let rest = bytes[i..].to_vec();
            out.continued = true;
            self.dirs[side].buf = rest;
        }
        if missing > 0 {
            let d = &mut self.dirs[side];
            if d.skip >= missing {
                d.skip -= missing;
            } else {
                // Bytes of this message were not kept or lost: resynchronise at the next message.
                d.lost = true;
                out.continued = false;
            }
        }
    }
}

impl Decoder for Mqtt {
    fn name(&self) -> String {
        "mqtt".into()
    }

    fn version(&self) -> Option<String> {
        self.level.map(|l| match l {
            3 => "3.1".to_string(),
            4 => "3.1.1".to_string(),
            5 => "5.0".to_string(),
            other => format!("level {other}"),
        })
    }

    fn byte_stream(&self) -> bool {
        true
    }

    fn fit(&self, m: &Input<'_>) -> Fit {
        if !m.binary {
            return Fit::No;
        }
        let d = &self.dirs[m.from as usize];
        if !d.buf.is_empty() || d.skip > 0 {
            return Fit::Neutral;
        }
        let b = m.payload;
        let mut i = 0;
        let mut strong = false;
        let mut any = false;
        while i < b.len() {
            match fixed_header(&b[i..]) {
                Ok(Some((first, remaining, hlen))) => {
                    let total = hlen + remaining;
                    if i + total > b.len() {
                        // Continues in the next message: fine if the start is sane.
                        return if any || check_flags(first >> 4, first & 15).is_ok() {
                            Fit::Weak
                        } else {
                            Fit::No
                        };
                    }
                    match decode(first, &b[i + hlen..i + total], self.v5(), false, true) {
                        Ok(_) => {
                            strong |= first >> 4 == 1 || (first >> 4 == 2 && remaining >= 2);
                            any = true;
                        }
                        Err(_) => return Fit::No,
                    }
                    i += total;
                }
                Ok(None) => return if any { Fit::Weak } else { Fit::No },
                Err(_) => return Fit::No,
            }
        }
        match (any, strong) {
            (true, true) => Fit::Strong,
            (true, false) => Fit::Weak,
            _ => Fit::No,
        }
    }

    fn message(&mut self, m: &Input<'_>, out: &mut Decoded) {
        if !m.binary {
            return out.violation(
                "mqtt",
                m,
                "text message (MQTT over WebSocket uses binary messages, MQTT-6.0.0-1)",
            );
        }
        self.feed(m, out);
        if out.packets.is_empty() && out.continued {
            out.push(Packet::new(
                "partial",
                format!(
                    "mqtt: {} B of a packet continued in the next message",
                    m.payload.len()
                ),
            ));
        }
        if !out.packets.is_empty()
            && out
                .packets
                .iter()
                .all(|p| p.kind == "PINGREQ" || p.kind == "PINGRESP")
        {
            out.heartbeat = true;
        } else if out
            .packets
            .iter()
            .any(|p| p.kind != "PINGREQ" && p.kind != "PINGRESP")
        {
            out.heartbeat = false;
        }
    }

    fn finish(&mut self, end: &End, out: &mut Vec<Diagnostic>) -> Finish {
        let mut fin = Finish::default();
        for (side, d) in [Side::Client, Side::Server].iter().zip(&self.dirs) {
            if !d.buf.is_empty() && !d.lost {
                out.push(Diagnostic::new(
                    DiagnosticId::AppProtocolViolation,
                    Some(*side),
                    Some(end.time()),
                    format!(
                        "mqtt: the {} stream ended inside a packet ({} bytes of it seen)",
                        side.as_str(),
                        d.buf.len()
                    ),
                ));
            }
        }
        if let Some((closer, t)) = end.first() {
            if let Some(ping) = self.heartbeat.pending(Side::Client)
                && closer == Side::Client
            {
                out.push(Diagnostic::new(
                    DiagnosticId::AppHeartbeatTimeout,
                    Some(Side::Server),
                    Some(t),
                    format!(
                        "mqtt: PINGREQ unanswered for {}; the client closed ({})",
                        human(t - ping),
                        end.describe()
                    ),
                ));
                fin.end_reason = Some("mqtt keep-alive: PINGRESP never came".into());
            } else if let (Some(k), Some(last)) =
                (self.keep_alive.filter(|k| *k > 0), self.last_packet[0])
                && closer == Side::Server
                && self.disconnect.is_none()
            {
                let quiet = t - last;
                let limit = 1.5 * f64::from(k);
                if quiet >= limit * 0.95 {
                    out.push(Diagnostic::new(
                        DiagnosticId::AppHeartbeatTimeout,
                        Some(Side::Client),
                        Some(t),
                        format!("mqtt: no packet from the client for {} > 1.5 x keep-alive {k} s; the broker closed ({})", human(quiet), end.describe()),
                    ));
                    fin.end_reason = Some(format!(
                        "mqtt keep-alive expired: the client was silent for {}",
                        human(quiet)
                    ));
                }
            }
        }
        if self.connect.is_some() && self.connack.is_none() {
            out.push(Diagnostic::new(
                DiagnosticId::AppRequestUnanswered,
                Some(Side::Server),
                self.connect,
                format!("mqtt: CONNECT got no CONNACK before {}", end.describe()),
            ));
        }
        let mut session = AppSessionRecord {
            session_id: self.client_id.clone(),
            handshake: self.connack.clone(),
            ..AppSessionRecord::default()
        };
        if self.heartbeat.any() || self.heartbeat.interval.is_some() {
            session.heartbeat = Some(self.heartbeat.record());
        }
        if self.acks.any() {
            session.requests = Some(self.acks.finish("mqtt", end, out));
        }
        let mut details = Map::new();
        if !self.subscriptions.is_empty() {
            details.insert(
                "subscriptions".into(),
                Value::from(self.subscriptions.clone()),
            );
        }
        session.details = details;
        session.close = self.disconnect.clone();
        if fin.end_reason.is_none() {
            if let Some(h) = &self.connack
                && !h.ok
            {
                fin.end_reason = Some(format!(
                    "mqtt connection refused: {}",
                    cut(h.detail.trim_start_matches("mqtt "), 80)
                ));
            } else if let Some(c) = &self.disconnect {
                fin.end_reason = Some(format!(
                    "mqtt DISCONNECT from the {}: {}",
                    c.from.map_or("?", Side::as_str),
                    c.meaning
                ));
            }
        }
        session.summary = format!(
            "{}{}{}",
            self.connack.as_ref().map_or_else(
                || if self.connect.is_some() {
                    "CONNECT without CONNACK".to_string()
                } else {
                    "no CONNECT seen".to_string()
                },
                |h| h.detail.clone()
            ),
            self.keep_alive
                .map(|k| format!("; keep-alive {k} s"))
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

    fn bin(from: Side, t: f64, b: &[u8]) -> Input<'_> {
        Input {
            from,
            time: t,
            binary: true,
            payload: b,
            length: b.len() as u64,
            complete: true,
        }
    }

    const CONNECT_311: &[u8] = &[
        0x10, 0x12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 6, b'c', b'l', b'i', b'e',
        b'n', b't',
    ];

    #[test]
    fn packets_span_messages_and_share_them() {
        let mut q = Mqtt::new(&HandshakeInfo::default());
        let mut d = Decoded::default();
        assert_eq!(q.fit(&bin(Side::Client, 1.0, CONNECT_311)), Fit::Strong);
        // CONNECT split over two messages.
        q.message(&bin(Side::Client, 1.0, &CONNECT_311[..7]), &mut d);
        assert!(d.continued && d.packets[0].kind == "partial");
        let mut d = Decoded::default();
        q.message(&bin(Side::Client, 1.01, &CONNECT_311[7..]), &mut d);
        assert_eq!(
            d.packets[0].summary,
            "mqtt CONNECT 3.1.1 client id \"client\" keep-alive 60 s clean"
        );
        // CONNACK and a SUBACK in one message.
        let mut d = Decoded::default();
        q.message(&bin(Side::Server, 1.02, &[0x20, 2, 0, 0]), &mut d);
        assert!(
            d.packets[0]
                .summary
                .starts_with("mqtt CONNACK 0 Connection Accepted")
        );
        let mut d = Decoded::default();
        q.message(
            &bin(
                Side::Client,
                1.03,
                &[
                    0x82, 8, 0, 1, 0, 3, b'a', b'/', b'b', 1, 0x32, 7, 0, 1, b'x', 0, 9, b'h', b'i',
                ],
            ),
            &mut d,
        );
        assert_eq!(d.packets.len(), 2);
        assert_eq!(d.packets[1].summary, "mqtt PUBLISH qos 1 id 9 \"x\" 2 B");
        let mut d = Decoded::default();
        q.message(
            &bin(Side::Server, 1.04, &[0x90, 3, 0, 1, 1, 0x40, 2, 0, 9]),
            &mut d,
        );
        assert!(
            d.packets[0].summary.starts_with("mqtt SUBACK id 1 qos 1"),
            "{}",
            d.packets[0].summary
        );
        assert!(
            d.packets[1]
                .summary
                .starts_with("mqtt PUBACK id 9 (10 ms later)"),
            "{}",
            d.packets[1].summary
        );
        let mut d = Decoded::default();
        q.message(&bin(Side::Client, 2.0, &[0xC0, 0]), &mut d);
        assert!(d.heartbeat);
        let mut diags = Vec::new();
        let fin = q.finish(
            &End {
                tcp_end: Some((Side::Client, 3.0, false)),
                last_seen: 3.0,
                ..End::default()
            },
            &mut diags,
        );
        assert_eq!(diags[0].id, DiagnosticId::AppHeartbeatTimeout, "{diags:?}");
        let r = fin.session.requests.unwrap();
        assert_eq!((r.sent, r.answered), (2, 2));
    }

    #[test]
    fn a_refused_connack_and_v5_reasons() {
        let mut q = Mqtt::new(&HandshakeInfo::default());
        let mut d = Decoded::default();
        q.message(&bin(Side::Client, 1.0, CONNECT_311), &mut d);
        let mut d = Decoded::default();
        q.message(&bin(Side::Server, 1.1, &[0x20, 2, 0, 5]), &mut d);
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppConnectRefused);
        assert!(
            d.diagnostics[0].message.contains("5 not authorized"),
            "{}",
            d.diagnostics[0].message
        );
        // MQTT 5: DISCONNECT 0x8E with a reason string.
        let mut q = Mqtt::new(&HandshakeInfo::default());
        q.level = Some(5);
        let mut d = Decoded::default();
        q.message(
            &bin(
                Side::Server,
                1.0,
                &[0xE0, 7, 0x8E, 5, 0x1F, 0, 2, b'b', b'y'],
            ),
            &mut d,
        );
        assert_eq!(
            d.packets[0].summary,
            "mqtt DISCONNECT 0x8e Session taken over: \"by\""
        );
        assert_eq!(d.diagnostics[0].id, DiagnosticId::AppError);
    }

    #[test]
    fn an_oversized_packet_is_decoded_from_its_start_and_the_rest_skipped() {
        // PUBLISH qos 0 "big" with 100 000 payload bytes, then a PINGREQ, over two messages.
        let body_len = 2 + 3 + 100_000usize;
        let mut packet = vec![0x30];
        let mut n = body_len;
        loop {
            let b = (n & 0x7F) as u8;
            n >>= 7;
            packet.push(if n > 0 { b | 0x80 } else { b });
            if n == 0 {
                break;
            }
        }
        packet.extend([0, 3, b'b', b'i', b'g']);
        packet.resize(packet.len() + 100_000, 7);
        packet.extend([0xC0, 0]);
        let (a, b) = packet.split_at(70_000);
        let mut q = Mqtt::new(&HandshakeInfo::default());
        let mut d = Decoded::default();
        q.message(&bin(Side::Client, 1.0, a), &mut d);
        assert_eq!(d.packets[0].summary, "mqtt PUBLISH qos 0 \"big\" ≥69991 B");
        let mut d = Decoded::default();
        q.message(&bin(Side::Client, 1.1, b), &mut d);
        assert_eq!(d.packets.len(), 1);
        assert_eq!(d.packets[0].kind, "PINGREQ");
        assert!(q.dirs[0].buf.len() <= MAX_HELD_PACKET);
    }

    #[test]
    fn malformed_packets_are_violations() {
        for bad in [
            &[0x00u8, 0][..],
            &[0x60, 2, 0, 1],
            &[0x10, 0xFF, 0xFF, 0xFF, 0xFF, 1],
            &[0x36, 3, 0, 1, b'x'],
            &[0x30, 4, 0, 2, b'a', b'#'],
            &[0x10, 2, 0, 9],
            &[0x82, 2, 0, 1],
        ] {
            let mut q = Mqtt::new(&HandshakeInfo::default());
            let mut d = Decoded::default();
            q.message(&bin(Side::Client, 1.0, bad), &mut d);
            assert_eq!(d.diagnostics.len(), 1, "{bad:x?}: {d:?}");
            assert_eq!(
                d.diagnostics[0].id,
                DiagnosticId::AppProtocolViolation,
                "{bad:x?}"
            );
        }
    }
}
