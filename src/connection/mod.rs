//! One TCP connection: segments in, analysis out. Rebuilds each direction's byte stream, then
//! passes it up the connection's stack of stream layers, chosen by content on any port:
//!
//! ```text
//! TCP reassembly ─► [tls: a ClientHello; decrypted bytes out] ─► sniff ─┬─(HTTP head)──► http::layer (upgrade) ─┬─► WebSocket session
//!   (per direction)                                                      │                                       └─► plain HTTP (analysis)
//!                                                                        ├─(HTTP/2 preface)─► stream::http2 ──► one WebSocket session per
//!                                                                        │                                      extended-CONNECT stream
//!                                                                        └─(anything else: mid-stream capture)─────► WebSocket session (hunting)
//! ```
//!
//! This file owns the TCP facts, the roles (who is the client) and the routing between layers;
//! what each layer does lives in its own module.

mod context;
mod http1;
mod http2;
mod targets;
mod websocket;

use crate::analysis::TransportEnd;
use crate::decode::{Endpoint, Segment};
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::http::layer::Http1Layer;
use crate::http::{Role as HttpRole, plausible_start};
use crate::record::{ConnectionRecord, OtherConnection, OtherKind, TcpRecord};
use crate::sniff::{Carried, FirstBytes};
use crate::stream::tls::{TlsEvent, TlsLayer, looks_like_client_hello};
use crate::stream::{Chunk, End, Layer, Out};
use crate::tcp::delivery::Delivery;
use crate::tcp::reassembly::{PacketClock, Reassembler, SegmentFlags, StreamEvent};

use context::Quiet;
pub use context::{
    ConnectionConfig, Context, DEFAULT_MAX_LISTED_BYTES, ListedBudget, MAX_SHARDS, SharedBudgets,
};
use http1::{Above, on_http1};
pub(crate) use targets::MAX_WAITING_EXCHANGES;
pub use targets::SharedTargets;
use websocket::LazySession;

/// Which direction is the client's. Direction 0 is "a to b", a being the first packet's sender.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Roles {
    client_dir: usize,
    /// Decided by content (SYN, an HTTP head, masked frames) rather than guessed from ports.
    certain: bool,
}

impl Roles {
    fn side(&self, dir: usize) -> Side {
        if dir == self.client_dir {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn dir(&self, side: Side) -> usize {
        match side {
            Side::Client => self.client_dir,
            Side::Server => 1 - self.client_dir,
        }
    }

    /// Fixes the roles unless they already are; true when this call decided them.
    fn decide(&mut self, client_dir: usize) -> bool {
        if self.certain {
            return false;
        }
        *self = Roles {
            client_dir,
            certain: true,
        };
        true
    }
}

/// Where a direction's bytes go once TCP has put them in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Not decided: the direction's first bytes decide.
    Sniff,
    /// HTTP/1.1 (and, after the upgrade, WebSocket through it).
    Http1,
    /// WebSocket frames with no HTTP before them (a mid-stream capture).
    Frames,
    /// HTTP/2 (the client preface): WebSockets on extended-CONNECT streams.
    Http2,
}

struct State {
    id: u64,
    roles: Roles,
    /// TLS, when the client's first bytes were a ClientHello: both directions go through it,
    /// and `routes` route its plaintext.
    tls: Option<Box<TlsLayer>>,
    /// Each direction's first bytes were checked for a ClientHello.
    tls_sniffed: [bool; 2],
    /// Time of the last bytes TLS carried.
    tls_last: Option<f64>,
    routes: [Route; 2],
    /// Boxed: most connections of a busy capture never carry HTTP.
    http1: Option<Box<Http1Layer>>,
    http2: Option<Box<http2::H2Conn>>,
    session: LazySession,
    tcp_end: Option<(usize, f64, bool)>,
    fin_seen: [bool; 2],
    rst_seen: bool,
    /// Packets seen per direction.
    packets: [u64; 2],
    /// The peer's very first packet was a RST without ACK: RFC 9293 §3.5.2's answer to a segment
    /// that belongs to no connection. The bytes sent were refused, never delivered.
    refused: bool,
    syn_seen: bool,
    /// A SYN-ACK was seen: the connection was accepted.
    synack_seen: bool,
    /// The first bytes of each direction, to say what a connection that is not reported carried.
    first_bytes: [FirstBytes; 2],
    gaps: u64,
    gap_bytes: u64,
    time: f64,
    first_seen: f64,
}

/// One TCP connection under analysis.
pub struct Connection {
    reassembly: [Reassembler; 2],
    /// Per direction: acknowledgements and retransmissions (for the end of the connection).
    delivery: [Delivery; 2],
    state: State,
    last_seen: f64,
}

impl Connection {
    /// A connection whose first captured packet went from `a` to `b`.
    pub fn new(id: u64, a: Endpoint, b: Endpoint, time: f64, config: &ConnectionConfig) -> Self {
        // Until a SYN, an HTTP head or masked frames say otherwise, guess that the lower port
        // is the server's.
        let roles = Roles {
            client_dir: if a.port >= b.port { 0 } else { 1 },
            certain: false,
        };
        Connection {
            reassembly: [
                Reassembler::new(config.reassembly),
                Reassembler::new(config.reassembly),
            ],
            delivery: [Delivery::new(), Delivery::new()],
            state: State {
                id,
                roles,
                tls: None,
                tls_sniffed: [false; 2],
                tls_last: None,
                routes: [Route::Sniff, Route::Sniff],
                http1: None,
                http2: None,
                session: LazySession::new(id, [a, b], time),
                tcp_end: None,
                fin_seen: [false; 2],
                rst_seen: false,
                packets: [0, 0],
                refused: false,
                syn_seen: false,
                synack_seen: false,
                first_bytes: Default::default(),
                gaps: 0,
                gap_bytes: 0,
                time,
                first_seen: time,
            },
            last_seen: time,
        }
    }

    /// Connection number.
    pub fn id(&self) -> u64 {
        self.state.id
    }

    /// Time of the last packet.
    pub fn last_seen(&self) -> f64 {
        self.last_seen
    }

    /// The connection is idle: release per-direction state that can be rebuilt when it wakes
    /// (buffers); `pack_deflate`: also the permessage-deflate decoders (~56 KiB each, their
    /// windows kept deflated, which costs a compression now and an inflation on waking).
    pub fn hibernate(&mut self, pack_deflate: bool) {
        for d in &mut self.delivery {
            d.shrink();
        }
        for r in &mut self.reassembly {
            r.shrink();
        }
        if let Some(http1) = &mut self.state.http1 {
            http1.shrink();
        }
        if let Some(session) = self.state.session.made_mut() {
            session.hibernate(pack_deflate);
        }
        if let Some(h2) = &mut self.state.http2 {
            h2.streams.hibernate(pack_deflate);
        }
    }

    /// Has TCP ended (RST, or FIN both ways), with no data the capture may still show late?
    /// While a direction misses bytes its FIN or the peer's ACK prove were sent, the connection
    /// stays open for them; [`Connection::linger_over`] says when to stop waiting.
    pub fn ended(&self) -> bool {
        self.tcp_ended() && !self.reassembly.iter().any(Reassembler::awaiting_late_data)
    }

    /// Has TCP ended (RST, or FIN both ways)?
    pub fn tcp_ended(&self) -> bool {
        self.state.rst_seen || self.state.fin_seen == [true, true]
    }

    /// TCP has ended and nothing came for longer than the late-data grace window
    /// (`--late-seconds`) by `now`: the missing bytes are not coming; finish the connection.
    pub fn linger_over(&self, now: f64, config: &ConnectionConfig) -> bool {
        self.tcp_ended() && now - self.last_seen > config.reassembly.late_seconds
    }

    /// Is it reported (upgrade attempt or frames seen)?
    pub fn is_interesting(&self) -> bool {
        self.state
            .session
            .made()
            .is_some_and(|s| s.analysis.is_interesting())
            || self
                .state
                .http2
                .as_ref()
                .is_some_and(|h2| h2.streams.has_websockets())
    }

    /// Did either side send FIN or RST?
    pub fn closing(&self) -> bool {
        self.state.tcp_end.is_some()
    }

    /// One segment; `from_a` tells its direction.
    pub fn on_segment(
        &mut self,
        seg: &Segment<'_>,
        from_a: bool,
        time: f64,
        ctx: &mut Context<'_>,
    ) {
        let dir = if from_a { 0 } else { 1 };
        self.last_seen = self.last_seen.max(time);
        let state = &mut self.state;
        state.time = time;
        if seg.syn && !seg.ack_flag && !state.roles.certain {
            state.roles.client_dir = dir;
            state.syn_seen = true;
        }
        state.syn_seen |= seg.syn;
        state.synack_seen |= seg.syn && seg.ack_flag;
        self.delivery[dir].on_segment(seg.seq, seg.payload.len(), seg.syn, seg.fin, seg.rst, time);
        if seg.ack_flag && !seg.rst {
            self.delivery[1 - dir].on_peer_ack(seg.ack, time);
        }
        let flags = SegmentFlags {
            syn: seg.syn,
            fin: seg.fin,
            rst: seg.rst,
        };
        let (this, other) = if dir == 0 {
            let (x, y) = self.reassembly.split_at_mut(1);
            (&mut x[0], &mut y[0])
        } else {
            let (x, y) = self.reassembly.split_at_mut(1);
            (&mut y[0], &mut x[0])
        };
        // The reassemblers' grace window for late data runs on this clock.
        let clock = PacketClock {
            packets: state.packets[0] + state.packets[1] + 1,
            time,
        };
        if !seg.payload.is_empty() || seg.syn || seg.fin {
            let before = this.stats();
            this.on_segment(seg.seq, flags, seg.payload, clock, &mut |event| {
                state.on_stream(dir, event, ctx)
            });
            let after = this.stats();
            if after.limit_gaps > before.limit_gaps {
                let lost = after.limit_gap_bytes - before.limit_gap_bytes;
                let limits = ctx.config.reassembly;
                let d = Diagnostic::new(
                    DiagnosticId::LimitExceeded,
                    Some(state.roles.side(dir)),
                    Some(time),
                    format!(
                        "out-of-order TCP data passed the reassembly limit ({} bytes or {} segments held, --max-buffered-bytes): {lost} missing bytes were given up as a gap before they could arrive",
                        limits.max_buffered_bytes, limits.max_buffered_segments
                    ),
                );
                state.session.get(&ctx.config).analysis.diag(d, ctx.sink);
            }
        } else {
            this.tick(clock, &mut |event| state.on_stream(dir, event, ctx));
        }
        if seg.ack_flag && !seg.rst {
            // The peer's bytes below this ack reached this side: holes there are capture loss
            // (once the capture has had time to show them late).
            other.on_peer_ack(seg.ack, clock, &mut |event| {
                state.on_stream(1 - dir, event, ctx)
            });
        } else {
            other.tick(clock, &mut |event| state.on_stream(1 - dir, event, ctx));
        }
        if seg.fin {
            state.fin_seen[dir] = true;
            state.tcp_end.get_or_insert((dir, time, false));
        }
        if seg.rst && !seg.ack_flag && state.packets[dir] == 0 && state.packets[1 - dir] > 0 {
            state.refused = true;
        }
        state.packets[dir] += 1;
        if seg.rst {
            state.rst_seen = true;
            state.tcp_end.get_or_insert((dir, time, true));
        }
    }

    /// No packet of this connection came by capture time `now` (an idle sweep): holes that
    /// waited for late data long enough in a quiet connection become gaps, and what was held
    /// after them is delivered, instead of waiting for packets that do not come.
    pub fn tick(&mut self, now: f64, ctx: &mut Context<'_>) {
        let state = &mut self.state;
        let clock = PacketClock {
            packets: state.packets[0] + state.packets[1],
            time: now,
        };
        let last_packet = state.time;
        state.time = now.max(last_packet);
        for dir in 0..2 {
            self.reassembly[dir].tick(clock, &mut |event| state.on_stream(dir, event, ctx));
        }
        state.time = last_packet;
    }

    /// The flow table is full and this connection is finished early to make room: says so in
    /// its record (later packets of it start a new connection).
    pub fn evicted(&mut self, max_connections: usize, ctx: &mut Context<'_>) {
        let d = Diagnostic::new(
            DiagnosticId::LimitExceeded,
            None,
            Some(self.last_seen),
            format!(
                "finished early: more than {max_connections} connections open at once (--max-connections); this one had been idle longest, and what it sent later is analysed as a new connection"
            ),
        );
        self.state
            .session
            .get(&ctx.config)
            .analysis
            .diag(d, ctx.sink);
    }

    /// End of the connection or of the capture: flush held bytes, end streams, build the
    /// record. Returns it when the connection is worth reporting.
    /// `stopped` says why analysis stops following a connection TCP has not ended (idle
    /// timeout, table full); None at the end of the capture or of TCP.
    pub fn finish(
        self,
        stopped: Option<String>,
        ctx: &mut Context<'_>,
    ) -> Option<ConnectionRecord> {
        match self.finish_any(stopped, ctx) {
            Finished::Reported(record) => Some(record),
            Finished::Other(_) => None,
        }
    }

    /// [`Connection::finish`], also saying what a connection that is not reported carried.
    pub fn finish_any(mut self, stopped: Option<String>, ctx: &mut Context<'_>) -> Finished {
        let state = &mut self.state;
        if let Some(h2) = &mut state.http2 {
            h2.streams.set_stopped(stopped.clone());
        }
        for dir in 0..2 {
            self.reassembly[dir].flush(&mut |event| state.on_stream(dir, event, ctx));
        }
        if state.refused && !state.syn_seen {
            // A stale segment of a connection that was already gone (onewesong's capture: the
            // client's leftover 7-byte frame, answered by RST). Its bytes reached no endpoint; they
            // are not hunted for the one-frame-at-the-end lock, which is weak evidence on its own.
            state.session.get(&ctx.config).drop_unlocked();
        }
        let how = match state.tcp_end {
            Some((_, _, true)) => End::Rst,
            _ if stopped.is_some() => End::CaptureEnd,
            _ => End::Fin,
        };
        for dir in 0..2 {
            let how = if how == End::Fin && !state.fin_seen[dir] {
                End::CaptureEnd
            } else {
                how
            };
            state.end_dir(dir, how, ctx);
        }
        let session = state.session.get(&ctx.config);
        let waiting = http1::settle_candidate(session, &state.roles, ctx);
        if let Some(tls) = &state.tls {
            let record = tls.record();
            let opaque = (!record.decrypted).then(|| {
                record
                    .decrypt_error
                    .clone()
                    .unwrap_or_else(|| "not decrypted".into())
            });
            let streams = state
                .http2
                .as_ref()
                .map_or(0, |h2| h2.streams.websocket_streams());
            let no_websocket = (record.decrypted && !session.analysis.carries_websocket()).then(
                || match streams {
                    0 => "TLS (decrypted) carrying no WebSocket upgrade or frames".to_string(),
                    1 => "HTTP/2 over TLS; its WebSocket stream is listed on its own".to_string(),
                    n => format!(
                        "HTTP/2 over TLS; its {n} WebSocket streams are listed on their own"
                    ),
                },
            );
            session.analysis.set_transport_end(TransportEnd {
                opaque,
                no_websocket,
                note: tls.ending_note(),
                last_activity: state.tls_last,
                tls: Some(tls.ending()),
            });
        }
        if !session.analysis.is_interesting() {
            // No record (yet): nothing listed is kept.
            ctx.listed.give_back(session.listed_bytes);
            session.listed_bytes = 0;
        }
        if !session.analysis.is_interesting() && waiting.is_none() {
            let (client, server) = session.addresses(&state.roles);
            return Finished::Other(OtherConnection {
                id: state.id,
                client,
                server,
                first_seen: state.first_seen,
                last_seen: self.last_seen,
                kind: state.other_kind(),
            });
        }
        let mut tcp = TcpRecord {
            syn_seen: state.syn_seen,
            gaps: state.gaps,
            gap_bytes: state.gap_bytes,
            ..TcpRecord::default()
        };
        for (dir, r) in self.reassembly.iter().enumerate() {
            let s = r.stats();
            tcp.retransmissions += s.retransmitted_segments;
            tcp.out_of_order += s.out_of_order_segments;
            tcp.late_after_ack += s.late_after_ack_segments;
            tcp.late_after_gap += s.late_after_gap_segments;
            if s.overlap_conflicts > 0 {
                // Counted over the connection: reported at its end, for the side that sent them.
                let side = state.roles.side(dir);
                let d = Diagnostic::new(
                    DiagnosticId::TcpOverlapConflict,
                    Some(side),
                    Some(self.last_seen),
                    format!(
                        "{} retransmitted TCP bytes from the {} differed from the bytes first seen (over the whole connection); the first copy was kept",
                        s.overlap_conflicts,
                        side.as_str()
                    ),
                );
                session.analysis.diag(d, ctx.sink);
            }
        }
        if session.unlisted > 0 {
            let d = Diagnostic::new(
                DiagnosticId::LimitExceeded,
                None,
                Some(self.last_seen),
                format!(
                    "{} messages not listed: the listed messages held at once passed {} bytes (--max-listed-bytes); they are counted in the totals (--format jsonl streams every message)",
                    session.unlisted, ctx.config.max_listed_bytes
                ),
            );
            session.analysis.diag(d, ctx.sink);
        }
        if ctx.config.listed_freed_on_finish {
            ctx.listed.give_back(session.listed_bytes);
            session.listed_bytes = 0;
        }
        let end = state.tcp_end.map_or(self.last_seen, |(_, t, _)| t);
        for (dir, delivery) in self.delivery.iter().enumerate() {
            *tcp.delivery.get_mut(state.roles.side(dir)) = delivery.record(end);
        }
        let (client, server) = session.addresses(&state.roles);
        let (record_id, other_kind) = (state.id, state.other_kind());
        let roles = state.roles;
        let tcp_end = state.tcp_end.map(|(dir, t, rst)| (roles.side(dir), t, rst));
        let State {
            session,
            first_seen,
            tls,
            http2,
            ..
        } = self.state;
        let session = session.into_session(&ctx.config);
        let http2_connection = http2
            .filter(|h2| h2.streams.websocket_streams() > 0)
            .map(|h2| h2.streams.connection_record());
        let tls = tls.map(|t| t.record());
        let last_seen = self.last_seen;
        if let Some(target) = waiting {
            let other = OtherConnection {
                id: record_id,
                client: client.clone(),
                server: server.clone(),
                first_seen,
                last_seen,
                kind: other_kind,
            };
            let record = session.analysis.finish(
                client, server, first_seen, last_seen, tcp_end, tcp, stopped, &mut Quiet,
            );
            ctx.keep_waiting(target, record);
            return Finished::Other(other);
        }
        let mut record = session.analysis.finish(
            client, server, first_seen, last_seen, tcp_end, tcp, stopped, ctx.sink,
        );
        record.tls = tls;
        record.http2_connection = http2_connection;
        Finished::Reported(record)
    }
}

/// What a finished connection gives.
// Moved once per connection, as the `Option<ConnectionRecord>` of `finish` is: no box needed.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Finished {
    /// It carried an upgrade attempt or frames: its record.
    Reported(ConnectionRecord),
    /// It did not: what it was, for the summary.
    Other(OtherConnection),
}

impl State {
    fn on_stream(&mut self, dir: usize, event: StreamEvent<'_>, ctx: &mut Context<'_>) {
        match event {
            StreamEvent::Data(bytes) => {
                if !self.first_bytes[dir].decided() {
                    self.first_bytes[dir].push(bytes);
                }
                self.route(dir, Chunk::Data(bytes), ctx)
            }
            StreamEvent::Gap { offset, len } => {
                self.gaps += 1;
                self.gap_bytes = self.gap_bytes.saturating_add(len);
                let side = self.roles.side(dir);
                let d = Diagnostic::new(
                    DiagnosticId::TcpGap,
                    Some(side),
                    Some(self.time),
                    gap_text(side, offset, len),
                );
                self.session.get(&ctx.config).analysis.diag(d, ctx.sink);
                self.route(dir, Chunk::Gap(len), ctx);
            }
            StreamEvent::LateForGap {
                gap_offset,
                gap_len,
                arrived,
                packets_late,
                seconds_late,
            } => {
                // The layers above resynchronised past the gap; its bytes cannot be replayed.
                // Say in the gap's own diagnostic that they were in the capture after all. (The
                // roles may have been settled after the gap was reported: either side's text.)
                let texts = [Side::Client, Side::Server].map(|s| gap_text(s, gap_offset, gap_len));
                let found = self.session.get(&ctx.config).analysis.last_diag_mut(|d| {
                    d.id == DiagnosticId::TcpGap
                        && texts.iter().any(|t| d.message.split(';').next() == Some(t))
                });
                if let Some(d) = found {
                    let plural = if packets_late == 1 { "" } else { "s" };
                    d.message = format!(
                        "{}; {arrived} of them arrived in the capture {packets_late} packet{plural} ({seconds_late:.3} s) after the gap was declared, too late to be used (--late-packets, --late-seconds)",
                        d.message.split(';').next().unwrap_or_default()
                    );
                }
            }
        }
    }

    /// Passes a piece of direction `dir`'s TCP byte stream to the layer that reads it: TLS
    /// when the connection began with a ClientHello, else what [`State::route_plain`] picks.
    fn route(&mut self, dir: usize, chunk: Chunk<'_>, ctx: &mut Context<'_>) {
        if !self.tls_sniffed[dir] && self.tls.is_none() && self.routes[dir] == Route::Sniff {
            if let Chunk::Data(data) = chunk
                && !data.is_empty()
            {
                self.tls_sniffed[dir] = true;
                // A first segment too short to tell, starting with a handshake record byte,
                // is taken as TLS: neither HTTP nor a valid WebSocket frame starts so.
                let hello = looks_like_client_hello(data).unwrap_or(data[0] == 0x16);
                if hello && self.routes[1 - dir] == Route::Sniff {
                    self.start_tls(dir, ctx);
                }
            } else if let Chunk::Gap(_) = chunk {
                self.tls_sniffed[dir] = true;
            }
        }
        if let Some(mut tls) = self.tls.take() {
            let from = self.roles.side(dir);
            let time = self.time;
            if matches!(chunk, Chunk::Data(_)) {
                self.tls_last = Some(time);
            }
            tls.push(from, time, chunk, &mut |out| self.on_tls(out, ctx));
            self.tls = Some(tls);
            self.stamp_tls(ctx);
            return;
        }
        self.route_plain(dir, chunk, ctx);
    }

    /// Records of HTTP/2 WebSocket streams finished just now ride on this connection's TLS.
    fn stamp_tls(&self, ctx: &mut Context<'_>) {
        if let Some(tls) = &self.tls
            && ctx.finished.iter().any(|r| r.tls.is_none())
        {
            let record = tls.record();
            for r in ctx.finished.iter_mut().filter(|r| r.tls.is_none()) {
                r.tls = Some(record.clone());
            }
        }
    }

    /// The ClientHello's sender is the client; both directions go through TLS from now on.
    fn start_tls(&mut self, client_dir: usize, ctx: &mut Context<'_>) {
        if self.roles.decide(client_dir) {
            self.session.get(&ctx.config).roles_decided(&self.roles);
        }
        // Every TLS connection is reported, decrypted or not (so its session is made now).
        let session = self.session.get(&ctx.config);
        let mut tls = TlsLayer::new(ctx.keys.clone());
        tls.set_server_port(session.addresses(&self.roles).1.port);
        self.tls = Some(Box::new(tls));
        session.make_interesting(&self.roles, ctx);
    }

    /// What TLS pushes out: plaintext to the layers above, findings to the analysis.
    fn on_tls(&mut self, out: Out<'_, TlsEvent>, ctx: &mut Context<'_>) {
        match out {
            Out::Data { from, chunk, .. } => {
                let dir = self.roles.dir(from);
                self.route_plain(dir, chunk, ctx);
            }
            Out::Event(TlsEvent::Diagnostic(d)) => {
                self.session.get(&ctx.config).analysis.diag(d, ctx.sink)
            }
            Out::Event(_) => {}
        }
    }

    /// Passes a piece of direction `dir`'s (plaintext) byte stream to the layer that reads it.
    fn route_plain(&mut self, dir: usize, chunk: Chunk<'_>, ctx: &mut Context<'_>) {
        if self.routes[dir] == Route::Sniff {
            self.sniff(dir, chunk, ctx);
        }
        let time = self.time;
        match self.routes[dir] {
            Route::Sniff => {}
            Route::Frames => {
                self.session
                    .get(&ctx.config)
                    .push(dir, time, chunk, &mut self.roles, ctx)
            }
            Route::Http2 => {
                let from = self.roles.side(dir);
                let facts = self.tcp_facts();
                let State {
                    http2,
                    session,
                    roles,
                    ..
                } = self;
                let session = session.get(&ctx.config);
                let Some(h2) = http2 else { return };
                let http2::H2Conn { layer, streams } = &mut **h2;
                layer.push(from, time, chunk, &mut |out| {
                    streams.on_out(out, time, session, roles, facts, ctx)
                });
            }
            Route::Http1 => {
                let from = self.roles.side(dir);
                let facts = self.tcp_facts();
                let State {
                    http1,
                    http2,
                    session,
                    roles,
                    ..
                } = self;
                let session = session.get(&ctx.config);
                let mut above = Above {
                    session,
                    http2,
                    facts,
                };
                let http1 = http1.get_or_insert_with(|| Box::new(Http1Layer::new()));
                http1.push(from, time, chunk, &mut |out| {
                    on_http1(&mut above, roles, time, out, ctx)
                });
                self.stamp_tls(ctx);
            }
        }
    }

    /// Decides from the first piece of a direction what it carries: an HTTP head (which also
    /// tells the roles), or else WebSocket frames of a capture that started mid-stream.
    fn sniff(&mut self, dir: usize, chunk: Chunk<'_>, ctx: &mut Context<'_>) {
        let data = match chunk {
            Chunk::Data([]) => return,
            Chunk::Data(data) => data,
            Chunk::Gap(_) => {
                // A hole before anything was seen: what follows is mid-stream.
                self.start_frames(dir, ctx);
                return;
            }
        };
        let h2_client = is_http2_start(data);
        if h2_client || crate::stream::http2::is_server_preface(data) {
            // The client preface, or the server's SETTINGS (h2c servers send theirs without
            // waiting for the client's): both directions are HTTP/2.
            let client_dir = if h2_client { dir } else { 1 - dir };
            if self.roles.decide(client_dir) {
                self.session.get(&ctx.config).roles_decided(&self.roles);
            }
            self.routes = [Route::Http2, Route::Http2];
            self.http2 = Some(Box::new(http2::H2Conn::new()));
            return;
        }
        if crate::stream::http2::looks_like_frames(data) {
            // HTTP/2 frames with no preface: the capture started inside the connection. The
            // roles stay as guessed (the layer hunts in both directions).
            self.routes = [Route::Http2, Route::Http2];
            self.http2 = Some(Box::new(http2::H2Conn::midstream()));
            return;
        }
        // A response cut after "HT" (or up to "HTTP") also looks like a request method: try the
        // role this direction is believed to have first.
        let order = if self.roles.side(dir) == Side::Server {
            [HttpRole::Responses, HttpRole::Requests]
        } else {
            [HttpRole::Requests, HttpRole::Responses]
        };
        let roles_were_certain = self.roles.certain;
        match order.into_iter().find(|&role| plausible_start(data, role)) {
            Some(role) => {
                let client_dir = if role == HttpRole::Requests {
                    dir
                } else {
                    1 - dir
                };
                if self.roles.decide(client_dir) {
                    self.session.get(&ctx.config).roles_decided(&self.roles);
                }
                if roles_were_certain && self.roles.dir(Side::Client) != client_dir {
                    // The roles are known (SYN) and this direction's bytes are not what its
                    // side sends in HTTP: not HTTP we can read; hunt for frames.
                    self.start_frames(dir, ctx);
                } else {
                    self.routes[dir] = Route::Http1;
                }
            }
            None => self.start_frames(dir, ctx),
        }
    }

    fn start_frames(&mut self, dir: usize, ctx: &mut Context<'_>) {
        self.routes[dir] = Route::Frames;
        self.session
            .get(&ctx.config)
            .start(dir, false, &self.roles, ctx);
    }

    /// What a connection that is not reported was: a refused or unanswered attempt, HTTP/2,
    /// else what its client's first bytes (or, for a server that speaks first, the server's)
    /// said.
    fn other_kind(&self) -> OtherKind {
        let client = self.roles.client_dir;
        let server = 1 - client;
        if self.syn_seen && !self.synack_seen {
            if matches!(self.tcp_end, Some((dir, _, true)) if dir == server) {
                return OtherKind::Refused;
            }
            if self.packets[server] == 0 {
                return OtherKind::Unanswered;
            }
        }
        if self.http2.is_some() {
            return OtherKind::Http2;
        }
        match self.first_bytes[client].carried() {
            Carried::Tls(server_name) => OtherKind::Tls { server_name },
            Carried::Http => OtherKind::Http,
            Carried::Other => OtherKind::Other,
            Carried::Nothing if self.first_bytes[server].carried() != Carried::Nothing => {
                OtherKind::Other
            }
            Carried::Nothing => OtherKind::NoData,
        }
    }

    fn tcp_facts(&self) -> TcpRecord {
        TcpRecord {
            syn_seen: self.syn_seen,
            gaps: self.gaps,
            gap_bytes: self.gap_bytes,
            ..TcpRecord::default()
        }
    }

    fn end_dir(&mut self, dir: usize, how: End, ctx: &mut Context<'_>) {
        let time = self.time;
        if let Some(mut tls) = self.tls.take() {
            let from = self.roles.side(dir);
            tls.end(from, time, how, &mut |out| self.on_tls(out, ctx));
            self.tls = Some(tls);
        }
        let facts = self.tcp_facts();
        if self.routes[dir] == Route::Http1
            && let Some(http1) = &mut self.http1
        {
            let from = self.roles.side(dir);
            let State {
                session,
                http2,
                roles,
                ..
            } = self;
            let session = session.get(&ctx.config);
            let mut above = Above {
                session,
                http2,
                facts,
            };
            http1.end(from, time, how, &mut |out| {
                on_http1(&mut above, roles, time, out, ctx)
            });
        }
        // HTTP/2 from the first byte, or after `Upgrade: h2c` through HTTP/1.1.
        if self.http2.is_some() {
            let from = self.roles.side(dir);
            let facts = self.tcp_facts();
            let State {
                http2,
                session,
                roles,
                ..
            } = self;
            let session = session.get(&ctx.config);
            if let Some(h2) = http2 {
                let http2::H2Conn { layer, streams } = &mut **h2;
                layer.end(from, time, how, &mut |out| {
                    streams.on_out(out, time, session, roles, facts, ctx)
                });
                if dir == 1 {
                    streams.finish_all(time, roles, facts, ctx);
                }
            }
            self.stamp_tls(ctx);
            return;
        }
        self.session
            .get(&ctx.config)
            .finish_dir(dir, time, &mut self.roles, ctx);
    }
}

/// The text of a `tcp_gap` diagnostic (amended when its bytes arrive late).
fn gap_text(side: Side, offset: u64, len: u64) -> String {
    format!(
        "{len} bytes from the {} missing from the capture at stream byte {offset}",
        side.as_str()
    )
}

/// The client's HTTP/2 connection preface (RFC 9113 §3.4), or enough of it to tell.
fn is_http2_start(data: &[u8]) -> bool {
    match crate::stream::http2::is_client_preface(data) {
        Some(is) => is,
        None => data.len() >= 4,
    }
}

/// Sizes of the parts an open connection is made of (`benches/memory.rs` prints them).
#[doc(hidden)]
pub fn layout_sizes() -> Vec<(&'static str, usize)> {
    use std::mem::size_of;
    vec![
        ("Connection", size_of::<Connection>()),
        ("State", size_of::<State>()),
        ("Reassembler", size_of::<Reassembler>()),
        ("Delivery", size_of::<Delivery>()),
        ("Http1Layer", size_of::<Http1Layer>()),
        ("FirstBytes", size_of::<FirstBytes>()),
        ("LazySession", size_of::<LazySession>()),
        ("Session", websocket::session_size()),
        ("WsDir", websocket::ws_dir_size()),
        ("Analysis", size_of::<crate::analysis::Analysis>()),
        (
            "CloseTracker",
            size_of::<crate::analysis::close::CloseTracker>(),
        ),
        (
            "PingTracker",
            size_of::<crate::analysis::ping::PingTracker>(),
        ),
        (
            "TimingTracker",
            size_of::<crate::analysis::timing::TimingTracker>(),
        ),
        ("AppSession", size_of::<crate::app::AppSession>()),
        (
            "HandshakeRecord",
            size_of::<crate::record::HandshakeRecord>(),
        ),
        ("Negotiated", size_of::<crate::http::Negotiated>()),
        ("RequestHead", size_of::<crate::http::RequestHead>()),
        ("ResponseHead", size_of::<crate::http::ResponseHead>()),
        ("Framer", size_of::<crate::ws::framer::Framer>()),
        ("Assembler", size_of::<crate::ws::message::Assembler>()),
        ("Inflater", size_of::<crate::ws::deflate::Inflater>()),
        ("TransportEnd", size_of::<crate::analysis::TransportEnd>()),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_open_connection_stays_small() {
        // What every open connection pays for (benches/memory.rs measures the whole); a
        // field added inline to one of these is paid 100,000 times on a busy capture.
        let sizes: std::collections::HashMap<_, _> = super::layout_sizes().into_iter().collect();
        for (name, max) in [
            ("Connection", 1440),
            ("Session", 2400),
            // 552 since frames carry their bytes' capture times (the framer's push times).
            ("WsDir", 560),
            ("Assembler", 280),
            ("Analysis", 1850),
        ] {
            assert!(sizes[name] <= max, "{name}: {} bytes > {max}", sizes[name]);
        }
    }

    use super::*;
    use crate::analysis::AnalysisOptions;
    use crate::capture::InputSummary;
    use crate::http::MAX_HEAD_BYTES;
    use crate::http::layer::MAX_HELD_BYTES;
    use crate::record::Event;
    use crate::record::Sink;
    use crate::record::Summary;
    use crate::tcp::reassembly::ReassemblyLimits;
    use crate::ws::frame::encode_frame;
    use crate::ws::frame::encode_frame as encode_frame_ws;
    use crate::ws::message::{MessageLimits, PayloadMode};
    use context::LISTED_RECORD_BYTES;

    struct Null;

    impl Sink for Null {
        fn event(&mut self, _: &Event<'_>) {}
        fn connection(&mut self, _: ConnectionRecord) {}
        fn finish(&mut self, _: &[InputSummary], _: &Summary) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn endpoint(last: u8, port: u16) -> Endpoint {
        let mut addr = [0u8; 16];
        addr[10..12].copy_from_slice(&[0xFF, 0xFF]);
        addr[12..].copy_from_slice(&[10, 0, 0, last]);
        Endpoint { addr, port }
    }

    fn config() -> ConnectionConfig {
        ConnectionConfig {
            analysis: AnalysisOptions {
                keep_messages: true,
                message_events: false,
                keep_frames: false,
                frame_events: false,
                payload: PayloadMode::Full,
                app: crate::app::AppSelection::auto(),
                redact: true,
            },
            payload: PayloadMode::Full,
            message_limits: MessageLimits::default(),
            reassembly: ReassemblyLimits::default(),
            max_listed_bytes: DEFAULT_MAX_LISTED_BYTES,
            listed_freed_on_finish: true,
            spool: None,
        }
    }

    /// One connection, client 10.0.0.1:50000 and server 10.0.0.2:80, fed in-order segments.
    struct Drive {
        conn: Connection,
        next: [u32; 2],
        time: f64,
    }

    impl Drive {
        fn new() -> Drive {
            let conn = Connection::new(0, endpoint(1, 50_000), endpoint(2, 80), 1.0, &config());
            Drive {
                conn,
                next: [1000, 5000],
                time: 1.0,
            }
        }

        fn send(&mut self, ctx: &mut Context<'_>, from_server: bool, payload: &[u8]) {
            let dir = usize::from(from_server);
            let (src, dst) = if from_server {
                (endpoint(2, 80), endpoint(1, 50_000))
            } else {
                (endpoint(1, 50_000), endpoint(2, 80))
            };
            for chunk in payload.chunks(1448) {
                self.time += 0.001;
                let seg = Segment {
                    src,
                    dst,
                    seq: self.next[dir],
                    ack: self.next[1 - dir],
                    ack_flag: true,
                    syn: false,
                    fin: false,
                    rst: false,
                    payload: chunk,
                };
                self.conn.on_segment(&seg, !from_server, self.time, ctx);
                self.next[dir] = self.next[dir].wrapping_add(chunk.len() as u32);
            }
        }

        fn upgrade(&mut self, ctx: &mut Context<'_>) {
            self.send(ctx, false, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
            self.send(ctx, true, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
        }
    }

    fn texts(record: &ConnectionRecord, from: Side) -> Vec<String> {
        record
            .messages
            .as_ref()
            .unwrap()
            .held()
            .iter()
            .filter(|m| m.from == from && m.opcode == "text")
            .map(|m| m.text.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn finish_ends_the_frame_and_message_the_capture_stopped_inside() {
        let mut sink = Null;
        let mut ctx = Context::new(&mut sink, config());
        let mut d = Drive::new();
        d.upgrade(&mut ctx);
        // A frame announcing 2^63 - 1 bytes, of which 10 were captured; a fragmented message.
        let mut big = vec![0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        big.extend_from_slice(&[7; 10]);
        d.send(&mut ctx, true, &big);
        let key = Some([1, 2, 3, 4]);
        d.send(
            &mut ctx,
            false,
            &encode_frame(false, 0, 1, key, b"first half"),
        );
        let record = d.conn.finish(None, &mut ctx).unwrap();
        assert_eq!(record.diagnostic_counts["capture_ended_mid_frame"], 1);
        let messages = record.messages.as_ref().unwrap();
        let server = messages
            .held()
            .iter()
            .find(|m| m.from == Side::Server)
            .unwrap();
        assert_eq!((server.opcode, server.wire_length), ("binary", 10));
        assert!(!server.complete);
        let client = messages
            .held()
            .iter()
            .find(|m| m.from == Side::Client)
            .unwrap();
        assert_eq!(client.text.as_deref(), Some("first half"));
        assert!(!client.complete);
    }

    #[test]
    fn late_upgrade_answer_keeps_the_client_frames_already_being_decoded() {
        let mut sink = Null;
        let mut ctx = Context::new(&mut sink, config());
        let mut d = Drive::new();
        d.send(&mut ctx, false, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        // More than MAX_HELD_BYTES before the answer: the client's bytes are decoded as frames.
        let key = Some([1, 2, 3, 4]);
        let mut early = Vec::new();
        while early.len() <= MAX_HELD_BYTES {
            early.extend(encode_frame(true, 0, 1, key, &[b'e'; 1000]));
        }
        d.send(&mut ctx, false, &early);
        d.send(&mut ctx, true, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
        d.send(
            &mut ctx,
            false,
            &encode_frame(true, 0, 1, key, b"after the 101"),
        );
        let record = d.conn.finish(None, &mut ctx).unwrap();
        let client = texts(&record, Side::Client);
        assert_eq!(client.len(), early.len() / 1006 + 1);
        assert_eq!(client.last().unwrap(), "after the 101");
    }

    #[test]
    fn listed_messages_are_capped_across_connections_and_given_back() {
        let mut sink = Null;
        let mut cfg = config();
        cfg.max_listed_bytes = 3 * LISTED_RECORD_BYTES + 100;
        let mut ctx = Context::new(&mut sink, cfg);
        let key = Some([1, 2, 3, 4]);
        let mut first = Drive::new();
        first.upgrade(&mut ctx);
        let mut second = Drive::new();
        second.upgrade(&mut ctx);
        for i in 0..5 {
            let text = format!("m{i}");
            first.send(
                &mut ctx,
                false,
                &encode_frame(true, 0, 1, key, text.as_bytes()),
            );
            second.send(
                &mut ctx,
                false,
                &encode_frame(true, 0, 1, key, text.as_bytes()),
            );
        }
        let record = first.conn.finish(None, &mut ctx).unwrap();
        // Three fit in the budget, shared by both connections: two for the first.
        assert_eq!(texts(&record, Side::Client), ["m0", "m1"]);
        assert_eq!(record.message_counts.client, 5);
        assert_eq!(record.diagnostic_counts["limit_exceeded"], 1);
        assert!(
            record.diagnostics[0]
                .message
                .starts_with("3 messages not listed")
        );
        // The first connection's share was given back when it finished.
        assert_eq!(ctx.listed.held(), LISTED_RECORD_BYTES + 4);
        second.send(&mut ctx, false, &encode_frame(true, 0, 1, key, b"late"));
        let record = second.conn.finish(None, &mut ctx).unwrap();
        assert_eq!(texts(&record, Side::Client), ["m0", "late"]);
        assert_eq!(ctx.listed.held(), 0);
    }

    #[test]
    fn a_response_whose_first_segment_is_a_prefix_of_http_is_read_as_a_response() {
        for cut in 1..=5 {
            let mut sink = Null;
            let mut ctx = Context::new(&mut sink, config());
            let mut d = Drive::new();
            d.send(&mut ctx, false, b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
            let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
            // "H", "HT", ... alone in the first segment: also a plausible request method.
            d.send(&mut ctx, true, &response[..cut]);
            d.send(&mut ctx, true, &response[cut..]);
            d.send(&mut ctx, true, &encode_frame(true, 0, 1, None, b"hi"));
            let record = d.conn.finish(None, &mut ctx).unwrap();
            assert_eq!(
                record.handshake.as_ref().unwrap().status,
                Some(101),
                "cut {cut}"
            );
            assert_eq!(texts(&record, Side::Server), ["hi"], "cut {cut}");
        }
    }

    #[test]
    fn http_heads_past_the_limits_are_reported() {
        for filler in [&b"aaaaaaaaaaaaaaaa"[..], b"aaaaaaaaaaaaa\r\nX: "] {
            let mut sink = Null;
            let mut ctx = Context::new(&mut sink, config());
            let mut d = Drive::new();
            let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
            while head.len() < 2 * MAX_HEAD_BYTES {
                head.extend_from_slice(filler);
            }
            d.send(&mut ctx, false, &head);
            let record = d.conn.finish(None, &mut ctx).expect("reported");
            assert_eq!(record.diagnostic_counts["limit_exceeded"], 1);
            assert_eq!(record.diagnostics[0].from, Some(Side::Client));
            assert!(record.diagnostics[0].message.starts_with("HTTP head"));
        }
    }

    fn exchange(d: &mut Drive, ctx: &mut Context<'_>, request: &str, response: &str) {
        d.send(ctx, false, request.as_bytes());
        d.send(ctx, true, response.as_bytes());
    }

    const REFUSED_426: &str =
        "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn a_request_stripped_of_its_upgrade_headers_is_a_refused_upgrade_that_says_which() {
        // What a WebSocket server behind nginx without `proxy_set_header Upgrade` receives.
        let mut sink = Null;
        let mut ctx = Context::new(&mut sink, config());
        let mut d = Drive::new();
        exchange(
            &mut d,
            &mut ctx,
            "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: close\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            REFUSED_426,
        );
        let record = d.conn.finish(None, &mut ctx).expect("reported");
        assert_eq!(record.close.outcome, "not_websocket");
        assert_eq!(record.handshake.as_ref().unwrap().status, Some(426));
        let rejected = record
            .diagnostics
            .iter()
            .find(|d| d.id == DiagnosticId::HandshakeRejected)
            .unwrap();
        assert!(
            rejected
                .message
                .contains("without `Upgrade: websocket` and `Connection: Upgrade`"),
            "{}",
            rejected.message
        );
    }

    #[test]
    fn a_plain_request_answered_426_is_reported_and_a_page_is_not() {
        let mut sink = Null;
        let mut ctx = Context::new(&mut sink, config());
        let mut d = Drive::new();
        exchange(
            &mut d,
            &mut ctx,
            "GET /live HTTP/1.1\r\nHost: app\r\n\r\n",
            REFUSED_426,
        );
        let record = d.conn.finish(None, &mut ctx).expect("reported");
        assert_eq!(record.close.outcome, "not_websocket");
        assert_eq!(record.diagnostic_counts["handshake_rejected"], 1);
        assert!(
            record.diagnostics[0]
                .message
                .contains("no `Upgrade: websocket`")
        );

        let mut page = Drive::new();
        exchange(
            &mut page,
            &mut ctx,
            "GET / HTTP/1.1\r\nHost: app\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
        );
        exchange(
            &mut page,
            &mut ctx,
            "GET /missing HTTP/1.1\r\nHost: app\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(page.conn.finish(None, &mut ctx).is_none());
        assert!(ctx.take_late_records().is_empty());
    }

    #[test]
    fn a_refused_request_to_an_endpoint_another_connection_upgraded_is_reported() {
        let mut sink = Null;
        let mut ctx = Context::new(&mut sink, config());
        let refused_get = "GET /?x=1 HTTP/1.1\r\nHost: X\r\n\r\n";
        let bad_request = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        // Before the upgrade: kept, reported at the end once the upgrade is known.
        let mut early = Drive::new();
        exchange(&mut early, &mut ctx, refused_get, bad_request);
        assert!(early.conn.finish(None, &mut ctx).is_none());
        let mut ws = Drive::new();
        ws.upgrade(&mut ctx);
        assert!(ws.conn.finish(None, &mut ctx).is_some());
        // After it: reported at once.
        let mut late = Drive::new();
        exchange(&mut late, &mut ctx, refused_get, bad_request);
        let record = late.conn.finish(None, &mut ctx).expect("reported");
        assert!(
            record.diagnostics[0]
                .message
                .contains("another connection upgraded x/")
        );
        let waiting = ctx.take_late_records();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].close.outcome, "not_websocket");
        assert!(
            waiting[0].diagnostics[0]
                .message
                .contains("later in the capture")
        );
    }

    #[test]
    fn a_refusal_then_a_successful_retry_on_one_connection_is_a_websocket() {
        let mut sink = Null;
        let mut ctx = Context::new(&mut sink, config());
        let mut d = Drive::new();
        exchange(
            &mut d,
            &mut ctx,
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n",
        );
        d.upgrade(&mut ctx);
        d.send(&mut ctx, true, &encode_frame(true, 0, 1, None, b"hi"));
        let record = d.conn.finish(None, &mut ctx).unwrap();
        assert_eq!(record.handshake.as_ref().unwrap().status, Some(101));
        assert_eq!(texts(&record, Side::Server), ["hi"]);
        assert_ne!(record.close.outcome, "not_websocket");
    }

    #[test]
    fn an_upgrade_to_h2c_hands_the_connection_to_http2_and_its_websocket_streams() {
        use crate::stream::http2::frame::{PREFACE, encode_frame, flag, kind};
        // HPACK literal without indexing, new name (RFC 7541 §6.2.2), short strings only.
        fn lit(name: &str, value: &str) -> Vec<u8> {
            let mut v = vec![0x00, name.len() as u8];
            v.extend_from_slice(name.as_bytes());
            v.push(value.len() as u8);
            v.extend_from_slice(value.as_bytes());
            v
        }
        let mut sink = Null;
        let mut ctx = Context::new(&mut sink, config());
        let mut d = Drive::new();
        exchange(
            &mut d,
            &mut ctx,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
        );
        // The server's SETTINGS (extended CONNECT allowed) and its answer to the GET (stream 1).
        let mut server = encode_frame(kind::SETTINGS, 0, 0, &[0, 8, 0, 0, 0, 1]);
        server.extend(encode_frame(
            kind::HEADERS,
            flag::END_HEADERS | flag::END_STREAM,
            1,
            &[0x88], // :status 200
        ));
        d.send(&mut ctx, true, &server);
        let mut connect = Vec::new();
        for (name, value) in [
            (":method", "CONNECT"),
            (":protocol", "websocket"),
            (":scheme", "http"),
            (":path", "/chat"),
            (":authority", "x"),
            ("sec-websocket-version", "13"),
        ] {
            connect.extend(lit(name, value));
        }
        let mut client = PREFACE.to_vec();
        client.extend(encode_frame(kind::SETTINGS, 0, 0, &[]));
        client.extend(encode_frame(kind::HEADERS, flag::END_HEADERS, 3, &connect));
        d.send(&mut ctx, false, &client);
        d.send(
            &mut ctx,
            true,
            &encode_frame(kind::HEADERS, flag::END_HEADERS, 3, &[0x88]),
        );
        let hi = encode_frame_ws(true, 0, 1, Some([1, 2, 3, 4]), b"over h2c");
        d.send(&mut ctx, false, &encode_frame(kind::DATA, 0, 3, &hi));
        let echo = encode_frame_ws(true, 0, 1, None, b"over h2c");
        d.send(&mut ctx, true, &encode_frame(kind::DATA, 0, 3, &echo));
        assert!(d.conn.is_interesting());
        assert!(
            d.conn.finish(None, &mut ctx).is_none(),
            "the carrier is not a WebSocket"
        );
        let streams = ctx.take_finished();
        assert_eq!(streams.len(), 1);
        let ws = &streams[0];
        assert_eq!(ws.http2.as_ref().unwrap().stream_id, 3);
        assert_eq!(ws.handshake.as_ref().unwrap().path, "/chat");
        assert_eq!(texts(ws, Side::Client), ["over h2c"]);
        assert_eq!(texts(ws, Side::Server), ["over h2c"]);
    }
}
