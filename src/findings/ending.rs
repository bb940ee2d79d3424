//! The compact facts about one connection that the findings need, taken from its finished
//! record (a few hundred bytes; the record itself is not kept), and the start of a connection
//! (for "how fast clients came back").

use std::net::IpAddr;

use crate::diag::Side;
use crate::record::{Address, ConnectionRecord, Fingerprint};

/// One end of a connection, packed (IPv4 as IPv4-mapped IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Host {
    /// Address bytes.
    pub addr: [u8; 16],
    /// TCP port.
    pub port: u16,
}

impl Host {
    /// From a record's address (unparseable addresses become `::`).
    pub fn of(a: &Address) -> Host {
        let addr = match a.ip.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.to_ipv6_mapped().octets(),
            Ok(IpAddr::V6(v6)) => v6.octets(),
            Err(_) => [0; 16],
        };
        Host { addr, port: a.port }
    }

    /// The address alone.
    pub fn ip(&self) -> IpAddr {
        let v6 = std::net::Ipv6Addr::from(self.addr);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip() {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// What began the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A Close frame with this code; `answered`: the other side's Close came back.
    Close {
        /// Its code (1005 for none).
        code: u16,
        /// The Close was answered.
        answered: bool,
    },
    /// FIN without a Close before it.
    Fin,
    /// RST without a Close before it.
    Rst,
    /// A TLS close_notify (read, or inferred from an encrypted record) without a Close before
    /// it, before FIN or RST: a TLS-terminating proxy or server ending the connection.
    CloseNotify,
    /// Another TLS alert, before FIN or RST.
    TlsAlert,
    /// Still open at the end of the capture (or when tracking stopped).
    Open,
}

/// The start of a connection: when, between whom, and whether the upgrade was accepted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Start {
    /// Connection id.
    pub id: u64,
    /// First packet.
    pub time: f64,
    /// Client end.
    pub client: Host,
    /// Server end.
    pub server: Host,
    /// The upgrade's answer, when seen.
    pub status: Option<u16>,
}

/// Longest close reason kept (characters): enough to group "keepalive ping timeout" and the
/// like; the full reason is in the connection's record.
const MAX_REASON_CHARS: usize = 48;

/// Heartbeat kinds of the application decoders (src/app), kept as static names.
const APP_HEARTBEAT_KINDS: &[&str] = &[
    "engine.io ping/pong",
    "MQTT PINGREQ/PINGRESP",
    "STOMP heart-beat",
    "SockJS h frame",
    "ActionCable ping",
    "graphql ping/pong",
    "phoenix heartbeat",
    "SignalR Ping",
];

/// Application heartbeats of one connection (Engine.IO ping/pong, MQTT PINGREQ, STOMP
/// heart-beats ...), from its `app.session.heartbeat`: they count as liveness like WebSocket
/// pings, and their timeout ends connections like a keepalive's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppBeats {
    /// What beats (one of the decoders' heartbeat kinds, else "application heartbeats").
    pub kind: &'static str,
    /// Heartbeats each side sent (pings, pongs or one-way beats).
    pub sent: [u32; 2],
    /// Pings never answered.
    pub unanswered: u32,
    /// The interval announced or negotiated, seconds.
    pub interval: Option<f32>,
    /// Seconds from the last heartbeat (either side) to the end.
    pub since_last: Option<f32>,
    /// The heartbeat timeout that ended the connection, by the protocol's rules.
    pub timed_out: Option<AppTimeout>,
}

/// An application heartbeat timeout at the end of a connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AppTimeout {
    /// The side that gave up.
    pub ended_by: Side,
    /// The side that went silent.
    pub silent: Side,
    /// The ender's ping got no pong (else the silent side's beats stopped).
    pub ping_unanswered: bool,
    /// Seconds it waited (from the unanswered ping or the last beat to the end).
    pub waited: f32,
    /// The protocol's configured limit, seconds.
    pub limit: Option<f32>,
}

impl AppBeats {
    fn of(h: &crate::record::AppHeartbeatRecord, end: f64) -> AppBeats {
        let sat = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        AppBeats {
            kind: APP_HEARTBEAT_KINDS
                .iter()
                .copied()
                .find(|k| *k == h.kind)
                .unwrap_or("application heartbeats"),
            sent: [sat(h.sent.client), sat(h.sent.server)],
            unanswered: sat(h.unanswered),
            interval: h.interval_ms.map(|ms| (ms / 1000.0) as f32),
            since_last: h.last.map(|t| (end - t).max(0.0) as f32),
            timed_out: h.timed_out.as_ref().map(|t| AppTimeout {
                ended_by: t.ended_by,
                silent: t.silent,
                ping_unanswered: t.kind == "ping_unanswered",
                waited: (t.waited_ms / 1000.0) as f32,
                limit: t.limit_ms.map(|ms| (ms / 1000.0) as f32),
            }),
        }
    }

    /// Did any heartbeat flow?
    pub fn any(&self) -> bool {
        self.sent != [0, 0]
    }
}

/// One finished connection, compactly.
#[derive(Debug, Clone, PartialEq)]
pub struct Ending {
    /// Connection id.
    pub id: u64,
    /// Client end.
    pub client: Host,
    /// Server end.
    pub server: Host,
    /// First packet.
    pub first_seen: f64,
    /// The WebSocket's start (the 101, else the first frame, else the first packet).
    pub start: f64,
    /// When the end began (first Close, FIN or RST; the last packet when still open).
    pub end: f64,
    /// What began it.
    pub how: How,
    /// Who began it (None when still open).
    pub by: Option<Side>,
    /// The upgrade was accepted or frames were seen.
    pub websocket: bool,
    /// Seconds of silence (both directions) before the end.
    pub idle: Secs,
    /// Seconds since each side (client, server) last sent something.
    pub idle_by_side: [Secs; 2],
    /// Longest silence before the final one.
    pub longest_silence: Secs,
    /// Seconds from start to end.
    pub age: f32,
    /// Data messages per side.
    pub messages: [u32; 2],
    /// Pings sent per side.
    pub pings: [u32; 2],
    /// Median seconds between each side's pings.
    pub ping_interval: [Secs; 2],
    /// Pings of each side unanswered when the end began.
    pub unanswered: [u32; 2],
    /// Seconds from the oldest unanswered ping of each side to the end.
    pub unanswered_for: [Secs; 2],
    /// TCP retransmissions per side in the last seconds before the end.
    pub retransmissions_near_end: [u32; 2],
    /// Close reason (cut), when a Close began the end.
    pub reason: Option<Box<str>>,
    /// The upgrade's Sec-WebSocket-Key and first frames, hashed.
    pub fingerprint: Fingerprint,
    /// Tracking stopped before TCP ended (idle timeout of wsprobe, table full).
    pub stopped: bool,
    /// What few connections have (boxed: inline they would cost every ending 40 bytes).
    pub rare: Option<Box<Rare>>,
    /// Read in clear, or inferred from encrypted records.
    pub seen: Seen,
}

/// The facts that few connections have: kept apart, so that the many without them pay one
/// pointer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rare {
    /// The side that went silent while the other retransmitted: (side, seconds from `since` to
    /// the end, retransmissions, seconds of retransmitting).
    pub unreachable: Option<(Side, f32, u32, f32)>,
    /// The negotiated sub-protocol's meaning of the close code, when known.
    pub protocol_meaning: Option<&'static str>,
    /// Application heartbeats, when the application stage decoded a protocol that has them.
    pub app: Option<AppBeats>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.unreachable.is_none() && self.protocol_meaning.is_none() && self.app.is_none()
    }
}

/// Seconds, or none: an `Option<f32>` in four bytes (NaN is none), since endings are kept by
/// the hundred thousand.
#[derive(Clone, Copy)]
pub struct Secs(f32);

impl Secs {
    /// No value.
    pub const NONE: Secs = Secs(f32::NAN);

    /// The seconds, if any.
    pub fn get(self) -> Option<f32> {
        (!self.0.is_nan()).then_some(self.0)
    }

    /// Both sides' values.
    pub fn pair(values: [Option<f32>; 2]) -> [Secs; 2] {
        values.map(Secs::from)
    }
}

impl From<Option<f32>> for Secs {
    fn from(v: Option<f32>) -> Secs {
        v.filter(|x| !x.is_nan()).map_or(Secs::NONE, Secs)
    }
}

impl PartialEq for Secs {
    fn eq(&self, other: &Secs) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// How a connection's WebSocket facts are known (one byte: endings are kept by the thousand).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Seen {
    /// Frames read (plain or decrypted).
    #[default]
    Plain,
    /// TLS not decrypted: inferred from the records' sizes.
    Encrypted {
        /// The final records had Close frames' sizes right before the end (a closing
        /// handshake, inferred): who sent the first. Such an end is not abrupt.
        close_from: Option<Side>,
    },
}

/// Side index: client 0, server 1.
pub fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Ending {
    /// The facts from a finished record.
    pub fn of(r: &ConnectionRecord) -> Ending {
        let t = &r.timing;
        let how = match t.ended_by {
            "close" => How::Close {
                code: r.close.code.unwrap_or(1005),
                answered: r.close.reply_code.is_some(),
            },
            "fin" => How::Fin,
            "rst" => How::Rst,
            "close_notify" => How::CloseNotify,
            "tls_alert" => How::TlsAlert,
            _ => How::Open,
        };
        let frames = r.frames.client.total() + r.frames.server.total();
        // An encrypted connection counts when its records look like WebSocket (inferred).
        let likely = r
            .tls
            .as_ref()
            .and_then(|t| t.websocket_likely.as_ref())
            .is_some_and(|w| w.likely);
        let websocket = r.handshake.as_ref().is_some_and(|h| h.accepted) || frames > 0 || likely;
        let inferred_close = r
            .tls
            .as_ref()
            .filter(|_| likely)
            .and_then(|t| t.inferred.as_ref())
            .and_then(|i| i.close_frame_first);
        let f32_of = |x: Option<f64>| Secs::from(x.map(|v| v as f32));
        let reason = match how {
            How::Close { .. } => r
                .close
                .reason
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(MAX_REASON_CHARS).collect::<String>().into()),
            _ => None,
        };
        let subprotocol = r.handshake.as_ref().and_then(|h| h.subprotocol.as_deref());
        let protocol_meaning = match how {
            How::Close { code, .. } => subprotocol.and_then(|p| subprotocol_close_meaning(p, code)),
            _ => None,
        };
        let start = r
            .handshake
            .as_ref()
            .and_then(|h| h.response_time)
            .unwrap_or(t.end_time - t.age);
        let sat = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        let rare = Rare {
            unreachable: r.close.unreachable.map(|u| {
                (
                    u.side,
                    (t.end_time - u.since) as f32,
                    sat(u.retransmissions),
                    u.retransmitting_for as f32,
                )
            }),
            protocol_meaning,
            app: r
                .app
                .as_ref()
                .and_then(|a| a.session.heartbeat.as_ref())
                .map(|h| AppBeats::of(h, t.end_time)),
        };
        Ending {
            id: r.id,
            client: Host::of(&r.client),
            server: Host::of(&r.server),
            first_seen: r.first_seen,
            start,
            end: t.end_time,
            how,
            by: t.ended_from,
            websocket,
            idle: f32_of(t.idle),
            idle_by_side: [f32_of(t.idle_by_side.client), f32_of(t.idle_by_side.server)],
            longest_silence: f32_of(t.longest_silence),
            age: t.age as f32,
            messages: [sat(r.message_counts.client), sat(r.message_counts.server)],
            pings: [sat(r.frames.client.ping), sat(r.frames.server.ping)],
            ping_interval: [
                f32_of(t.ping_interval.client),
                f32_of(t.ping_interval.server),
            ],
            unanswered: [
                sat(t.unanswered_pings_at_end.client),
                sat(t.unanswered_pings_at_end.server),
            ],
            unanswered_for: Secs::pair([
                t.first_unanswered_ping
                    .client
                    .map(|f| (t.end_time - f) as f32),
                t.first_unanswered_ping
                    .server
                    .map(|f| (t.end_time - f) as f32),
            ]),
            retransmissions_near_end: [
                sat(r.tcp.delivery.client.retransmissions_near_end),
                sat(r.tcp.delivery.server.retransmissions_near_end),
            ],
            reason,
            fingerprint: r.fingerprint,
            stopped: t.ended_by == "stopped",
            rare: Some(Box::new(rare)).filter(|r| !r.is_empty()),
            seen: if r.tls.as_ref().is_some_and(|t| !t.decrypted) {
                Seen::Encrypted {
                    close_from: inferred_close,
                }
            } else {
                Seen::Plain
            },
        }
    }

    /// The start of this connection.
    pub fn start_of(&self) -> Start {
        Start {
            id: self.id,
            time: self.first_seen,
            client: self.client,
            server: self.server,
            status: self.websocket.then_some(101),
        }
    }

    /// Did one side end it on purpose, as a normal leave (a client's 1000/1001/1005 Close)?
    /// Such endings say nothing about timeouts or restarts.
    pub fn normal_client_leave(&self) -> bool {
        let close = matches!(
            self.how,
            How::Close {
                code: 1000 | 1001 | 1005,
                ..
            }
        );
        (close && self.by == Some(Side::Client)) || self.inferred_close() == Some(Side::Client)
    }

    /// TLS not decrypted: the WebSocket facts are inferred from record sizes.
    pub fn encrypted(&self) -> bool {
        matches!(self.seen, Seen::Encrypted { .. })
    }

    /// Encrypted: who sent the first of the Close-sized final records (a closing handshake,
    /// inferred).
    pub fn inferred_close(&self) -> Option<Side> {
        match self.seen {
            Seen::Encrypted { close_from } => close_from,
            Seen::Plain => None,
        }
    }

    /// Has the connection ended (not still open)?
    pub fn ended(&self) -> bool {
        self.how != How::Open
    }

    /// No Close frame began the end: FIN, RST or a TLS alert (and, encrypted, no
    /// Close-sized final records).
    pub fn abrupt(&self) -> bool {
        matches!(
            self.how,
            How::Fin | How::Rst | How::CloseNotify | How::TlsAlert
        ) && self.inferred_close().is_none()
    }

    /// Send time of the oldest ping of `side` unanswered at the end.
    pub fn first_unanswered(&self, side: Side) -> Option<f64> {
        self.unanswered_for[idx(side)]
            .get()
            .map(|d| self.end - f64::from(d))
    }

    /// When the silent side of an unreachable connection went silent.
    pub fn unreachable_since(&self) -> Option<(Side, f64)> {
        self.unreachable().map(|u| (u.0, self.end - f64::from(u.1)))
    }

    /// Is the ending explained by its own connection: a heartbeat that timed out (the side that
    /// ended it had pings unanswered), or a peer that went silent? Then it is no evidence of a
    /// cause shared with other connections.
    pub fn explained_alone(&self) -> bool {
        self.unreachable().is_some()
            || self.by.is_some_and(|by| self.unanswered[idx(by)] > 0)
            || self.app_timeout().is_some()
    }

    /// The application heartbeat timeout that ended it: the side that gave up is the one that
    /// began the end.
    pub fn app_timeout(&self) -> Option<AppTimeout> {
        let t = self.app()?.timed_out?;
        (self.by == Some(t.ended_by)).then_some(t)
    }

    /// The side that went silent while the other retransmitted: (side, seconds from `since` to
    /// the end, retransmissions, seconds of retransmitting).
    pub fn unreachable(&self) -> Option<(Side, f32, u32, f32)> {
        self.rare.as_ref()?.unreachable
    }

    /// The negotiated sub-protocol's meaning of the close code, when known.
    pub fn protocol_meaning(&self) -> Option<&'static str> {
        self.rare.as_ref()?.protocol_meaning
    }

    /// Application heartbeats, when the application stage decoded a protocol that has them.
    pub fn app(&self) -> Option<&AppBeats> {
        self.rare.as_ref()?.app.as_ref()
    }

    /// The rare facts, to set them (tests, benchmarks).
    pub fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_default()
    }

    /// Heartbeats of the application protocol flowed (either side).
    pub fn app_beats(&self) -> bool {
        self.app().is_some_and(|a| a.any())
    }
}

/// What the negotiated sub-protocol says about the Close code most of `members` ended with,
/// as a clause for evidence: `; graphql-ws: connection initialisation timeout ...`.
pub fn protocol_note(members: &[&Ending]) -> String {
    let meanings: Vec<&str> = members
        .iter()
        .filter_map(|e| e.protocol_meaning())
        .collect();
    match meanings.first() {
        Some(first)
            if meanings.len() * 2 > members.len() && meanings.iter().all(|m| m == first) =>
        {
            format!("; the sub-protocol defines that code: {first}")
        }
        _ => String::new(),
    }
}

/// Close codes that a negotiated sub-protocol defines, with their meaning.
pub fn subprotocol_close_meaning(subprotocol: &str, code: u16) -> Option<&'static str> {
    // graphql-transport-ws (github.com/enisdenjo/graphql-ws, PROTOCOL.md).
    if subprotocol.eq_ignore_ascii_case("graphql-transport-ws") {
        return match code {
            4400 => Some("graphql-ws: bad request (invalid message)"),
            4401 => Some("graphql-ws: unauthorized (subscribe before connection_ack)"),
            4403 => Some("graphql-ws: forbidden"),
            4406 => Some("graphql-ws: subprotocol not acceptable"),
            4408 => {
                Some("graphql-ws: connection initialisation timeout (no connection_init in time)")
            }
            4409 => Some("graphql-ws: subscriber for that id already exists"),
            4429 => Some("graphql-ws: too many initialisation requests"),
            4499 => Some("graphql-ws: terminated"),
            _ => None,
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ending_stays_compact() {
        // Findings keep one of these per finished connection (up to MAX_ENDINGS): 200 bytes
        // make 200,000 of them 40 MB. What few connections have (an unreachable peer, an
        // application heartbeat, a sub-protocol's close code) is boxed apart.
        assert!(
            std::mem::size_of::<Ending>() <= 200,
            "{}",
            std::mem::size_of::<Ending>()
        );
        assert!(std::mem::size_of::<Start>() <= 64);
    }

    #[test]
    fn hosts_print_like_addresses() {
        let v4 = Host::of(&Address {
            ip: "10.0.0.5".into(),
            port: 8080,
        });
        assert_eq!(v4.to_string(), "10.0.0.5:8080");
        let v6 = Host::of(&Address {
            ip: "::1".into(),
            port: 443,
        });
        assert_eq!(v6.to_string(), "[::1]:443");
    }
}
