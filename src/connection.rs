//! One TCP connection: segments in, analysis out. Owns each direction's stage objects and moves
//! a direction from HTTP to WebSocket (or to "opaque") as the handshake unfolds:
//!
//! ```text
//! Sniff ─► Http ─(upgrade request)─► AwaitUpgrade ─(101)─► WebSocket (synced framer)
//!   │        └────────(101 from the server)───────────────► WebSocket (synced framer)
//!   └─(not HTTP: mid-stream capture)──────────────────────► WebSocket (hunting framer) ─► Opaque
//! ```

use std::collections::VecDeque;

use crate::analysis::{Analysis, AnalysisOptions};
use crate::decode::{Endpoint, Segment};
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::http::Role as HttpRole;
use crate::http::{
    HttpEvent, HttpStream, MAX_HEAD_BYTES, MAX_HEADERS, Negotiated, NotHttp, RequestHead,
    ResponseHead, plausible_start,
};
use crate::record::Sink;
use crate::record::{Address, ConnectionRecord, TcpRecord};
use crate::tcp::reassembly::{Reassembler, ReassemblyLimits, SegmentFlags, StreamEvent};
use crate::ws::deflate::DecoderBudget;
use crate::ws::framer::{FrameEvent, Framer};
use crate::ws::message::{Assembler, Message, MessageLimits, Output, PayloadMode};

/// Bytes a direction may hunt for frame boundaries, while neither direction has found any, before it is
/// declared not WebSocket: a capture started on a busy connection can begin inside a frame of several MiB
/// (the hunt's evidence threshold grows with the bytes tried, so a long hunt is no likelier to lock on
/// other protocols). Once the other direction has found frames the connection is WebSocket, and this one
/// hunts as long as it takes.
const HUNT_BUDGET: u64 = 4 << 20;
/// Client bytes held while the upgrade's answer is awaited.
const MAX_HELD_BYTES: usize = 256 * 1024;

/// Settings shared by every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionConfig {
    /// Analysis options.
    pub analysis: AnalysisOptions,
    /// Payload kept per message.
    pub payload: PayloadMode,
    /// Message caps.
    pub message_limits: MessageLimits,
    /// TCP caps.
    pub reassembly: ReassemblyLimits,
    /// Bytes of listed messages (records kept for `--messages` in the json and table reports)
    /// held at once across connections; past it messages are counted but not listed.
    pub max_listed_bytes: u64,
    /// The reporter writes and frees a connection's record when the connection finishes (json);
    /// otherwise (table) it keeps every record until the end, and listed bytes stay charged.
    pub listed_freed_on_finish: bool,
}

/// Default for [`ConnectionConfig::max_listed_bytes`].
pub const DEFAULT_MAX_LISTED_BYTES: u64 = 256 << 20;

/// What a listed message record costs besides its payload text (measured: about 170 bytes).
const LISTED_RECORD_BYTES: u64 = 192;

/// Scratch space and output shared across connections.
pub struct Context<'s> {
    /// Where findings go.
    pub sink: &'s mut dyn Sink,
    /// Settings.
    pub config: ConnectionConfig,
    outputs: Vec<Output>,
    /// Bytes of listed messages held now (see [`ConnectionConfig::max_listed_bytes`]).
    listed_bytes: u64,
    /// permessage-deflate decoders alive (see [`MessageLimits::max_inflaters`]).
    decoders: DecoderBudget,
}

impl<'s> Context<'s> {
    /// A context writing to `sink`.
    pub fn new(sink: &'s mut dyn Sink, config: ConnectionConfig) -> Self {
        Context {
            sink,
            config,
            outputs: Vec::new(),
            listed_bytes: 0,
            decoders: DecoderBudget::new(config.message_limits.max_inflaters),
        }
    }
}

struct WsDir {
    framer: Framer,
    asm: Assembler,
    ever_locked: bool,
}

enum Phase {
    Sniff,
    Http {
        stream: HttpStream,
        heads: u32,
    },
    AwaitUpgrade {
        held: Vec<(f64, Vec<u8>)>,
        bytes: usize,
    },
    WebSocket(Box<WsDir>),
    Opaque,
}

/// Which direction is the client's. Index 0 is "a to b", a being the first packet's sender.
#[derive(Debug, Clone, Copy)]
struct Roles {
    client_dir: usize,
    certain: bool,
}

struct State {
    id: u64,
    phases: [Phase; 2],
    roles: Roles,
    analysis: Analysis,
    pending_requests: VecDeque<bool>,
    negotiated: Option<Negotiated>,
    upgraded: bool,
    midstream_reported: bool,
    tcp_end: Option<(usize, f64, bool)>,
    fin_seen: [bool; 2],
    rst_seen: bool,
    /// Packets seen per direction.
    packets: [u64; 2],
    /// The peer's very first packet was a RST without ACK: RFC 9293 §3.5.2's answer to a segment
    /// that belongs to no connection. The bytes sent were refused, never delivered.
    refused: bool,
    syn_seen: bool,
    gaps: u64,
    gap_bytes: u64,
    /// Listed-message bytes this connection holds, and messages it could not list.
    listed_bytes: u64,
    unlisted: u64,
    time: f64,
    first_seen: f64,
    a: Endpoint,
    b: Endpoint,
}

/// One TCP connection under analysis.
pub struct Connection {
    reassembly: [Reassembler; 2],
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
            state: State {
                id,
                phases: [Phase::Sniff, Phase::Sniff],
                roles,
                analysis: Analysis::new(id, config.analysis),
                pending_requests: VecDeque::new(),
                negotiated: None,
                upgraded: false,
                midstream_reported: false,
                tcp_end: None,
                fin_seen: [false; 2],
                rst_seen: false,
                packets: [0, 0],
                refused: false,
                syn_seen: false,
                gaps: 0,
                gap_bytes: 0,
                listed_bytes: 0,
                unlisted: 0,
                time,
                first_seen: time,
                a,
                b,
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

    /// The connection is idle: release per-direction state that can be rebuilt when it wakes.
    pub fn hibernate(&mut self) {
        for phase in &mut self.state.phases {
            if let Phase::WebSocket(ws) = phase {
                ws.asm.hibernate();
                ws.framer.release_buffers();
            }
        }
    }

    /// Has TCP ended (RST, or FIN both ways)?
    pub fn ended(&self) -> bool {
        self.state.rst_seen || self.state.fin_seen == [true, true]
    }

    /// Is it reported (upgrade attempt or frames seen)?
    pub fn is_interesting(&self) -> bool {
        self.state.analysis.is_interesting()
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
        if !seg.payload.is_empty() || seg.syn || seg.fin {
            let before = this.stats();
            this.on_segment(seg.seq, flags, seg.payload, &mut |event| {
                state.on_stream(dir, event, ctx)
            });
            let after = this.stats();
            if after.limit_gaps > before.limit_gaps {
                let lost = after.limit_gap_bytes - before.limit_gap_bytes;
                let limits = ctx.config.reassembly;
                let d = Diagnostic::new(
                    DiagnosticId::LimitExceeded,
                    Some(state.side(dir)),
                    Some(time),
                    format!(
                        "out-of-order TCP data passed the reassembly limit ({} bytes or {} segments held, --max-buffered-bytes): {lost} missing bytes were given up as a gap before they could arrive",
                        limits.max_buffered_bytes, limits.max_buffered_segments
                    ),
                );
                state.analysis.diag(d, ctx.sink);
            }
        }
        if seg.ack_flag && !seg.rst {
            // The peer's bytes below this ack reached this side: holes there are capture loss.
            other.on_peer_ack(seg.ack, &mut |event| state.on_stream(1 - dir, event, ctx));
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
        self.state.analysis.diag(d, ctx.sink);
    }

    /// End of the connection or of the capture: flush held bytes, end streams, build the
    /// record. Returns it when the connection is worth reporting.
    /// `stopped` says why analysis stops following a connection TCP has not ended (idle
    /// timeout, table full); None at the end of the capture or of TCP.
    pub fn finish(
        mut self,
        stopped: Option<String>,
        ctx: &mut Context<'_>,
    ) -> Option<ConnectionRecord> {
        let state = &mut self.state;
        for dir in 0..2 {
            self.reassembly[dir].flush(&mut |event| state.on_stream(dir, event, ctx));
        }
        if state.refused && !state.syn_seen {
            // A stale segment of a connection that was already gone (onewesong's capture: the
            // client's leftover 7-byte frame, answered by RST). Its bytes reached no endpoint; they
            // are not hunted for the one-frame-at-the-end lock, which is weak evidence on its own.
            for phase in &mut state.phases {
                if matches!(phase, Phase::WebSocket(ws) if !ws.ever_locked) {
                    *phase = Phase::Opaque;
                }
            }
        }
        for dir in 0..2 {
            state.finish_dir(dir, ctx);
        }
        if !state.analysis.is_interesting() {
            // No record: nothing listed is kept.
            ctx.listed_bytes -= state.listed_bytes;
            return None;
        }
        let mut tcp = TcpRecord {
            syn_seen: state.syn_seen,
            gaps: state.gaps,
            gap_bytes: state.gap_bytes,
            ..TcpRecord::default()
        };
        for r in &self.reassembly {
            let s = r.stats();
            tcp.retransmissions += s.retransmitted_segments;
            tcp.out_of_order += s.out_of_order_segments;
            if s.overlap_conflicts > 0 {
                let d = Diagnostic::new(
                    DiagnosticId::TcpOverlapConflict,
                    None,
                    None,
                    format!(
                        "{} retransmitted TCP bytes differed from the bytes first seen; the first copy was kept",
                        s.overlap_conflicts
                    ),
                );
                state.analysis.diag(d, ctx.sink);
            }
        }
        if state.unlisted > 0 {
            let d = Diagnostic::new(
                DiagnosticId::LimitExceeded,
                None,
                None,
                format!(
                    "{} messages not listed: the listed messages held in memory passed {} bytes (--max-listed-bytes); they are counted in the totals (--format jsonl streams every message)",
                    state.unlisted, ctx.config.max_listed_bytes
                ),
            );
            state.analysis.diag(d, ctx.sink);
        }
        if ctx.config.listed_freed_on_finish {
            ctx.listed_bytes -= state.listed_bytes;
            state.listed_bytes = 0;
        }
        let (client, server) = state.addresses();
        let tcp_end = state.tcp_end.map(|(dir, t, rst)| (state.side(dir), t, rst));
        let State {
            analysis,
            first_seen,
            ..
        } = self.state;
        Some(analysis.finish(
            client,
            server,
            first_seen,
            self.last_seen,
            tcp_end,
            tcp,
            stopped,
            ctx.sink,
        ))
    }
}

fn address(e: &Endpoint) -> Address {
    Address {
        ip: e.ip().to_string(),
        port: e.port,
    }
}

impl State {
    fn side(&self, dir: usize) -> Side {
        if dir == self.roles.client_dir {
            Side::Client
        } else {
            Side::Server
        }
    }

    fn addresses(&self) -> (Address, Address) {
        let (client, server) = if self.roles.client_dir == 0 {
            (&self.a, &self.b)
        } else {
            (&self.b, &self.a)
        };
        (address(client), address(server))
    }

    fn make_interesting(&mut self, ctx: &mut Context<'_>) {
        if self.analysis.is_interesting() {
            return;
        }
        let (client, server) = self.addresses();
        self.analysis
            .make_interesting(self.first_seen, &client, &server, ctx.sink);
    }

    /// Fixes the roles and tells both directions' assemblers and framers.
    fn set_client_dir(&mut self, client_dir: usize) {
        if self.roles.certain {
            return;
        }
        self.roles = Roles {
            client_dir,
            certain: true,
        };
        for dir in 0..2 {
            let side = self.side(dir);
            if let Phase::WebSocket(ws) = &mut self.phases[dir] {
                ws.asm.set_side(side);
                ws.asm.set_expect_masked(Some(side == Side::Client));
                ws.framer.set_expect_masked(Some(side == Side::Client));
            }
        }
    }

    fn on_stream(&mut self, dir: usize, event: StreamEvent<'_>, ctx: &mut Context<'_>) {
        match event {
            StreamEvent::Data(bytes) => self.on_data(dir, bytes, self.time, ctx),
            StreamEvent::Gap { offset, len } => self.on_gap(dir, offset, len, ctx),
        }
    }

    fn on_gap(&mut self, dir: usize, offset: u64, len: u64, ctx: &mut Context<'_>) {
        self.gaps += 1;
        self.gap_bytes = self.gap_bytes.saturating_add(len);
        let side = self.side(dir);
        let d = Diagnostic::new(
            DiagnosticId::TcpGap,
            Some(side),
            Some(self.time),
            format!(
                "{len} bytes from the {} missing from the capture at stream byte {offset}",
                side.as_str()
            ),
        );
        self.analysis.diag(d, ctx.sink);
        match std::mem::replace(&mut self.phases[dir], Phase::Opaque) {
            Phase::WebSocket(mut ws) => {
                let mut time = self.time;
                let outputs = &mut ctx.outputs;
                let asm = &mut ws.asm;
                ws.framer.gap(len, &mut |ev| match ev {
                    FrameEvent::At(t) => time = t,
                    ev => asm.on_event(ev, time, outputs),
                });
                if ws.framer.is_hunting() {
                    ws.asm.lose_context();
                }
                self.phases[dir] = Phase::WebSocket(ws);
                self.drain_outputs(dir, ctx);
            }
            Phase::AwaitUpgrade { held, .. } => {
                // The answer is still to come; frames after the hole are found by hunting.
                self.start_websocket(dir, true, ctx);
                for (t, bytes) in held {
                    self.on_data(dir, &bytes, t, ctx);
                }
                self.on_gap_in_websocket(dir, len, ctx);
            }
            Phase::Opaque => {}
            Phase::Sniff | Phase::Http { .. } => {
                if self.upgraded || !self.analysis.has_handshake() {
                    self.start_websocket(dir, false, ctx);
                }
            }
        }
    }

    fn on_gap_in_websocket(&mut self, dir: usize, len: u64, ctx: &mut Context<'_>) {
        if let Phase::WebSocket(ws) = &mut self.phases[dir] {
            let mut time = self.time;
            let outputs = &mut ctx.outputs;
            let asm = &mut ws.asm;
            ws.framer.gap(len, &mut |ev| match ev {
                FrameEvent::At(t) => time = t,
                ev => asm.on_event(ev, time, outputs),
            });
        }
        self.drain_outputs(dir, ctx);
    }

    fn start_websocket(&mut self, dir: usize, synced: bool, ctx: &mut Context<'_>) {
        let side = self.side(dir);
        let mut framer = if synced {
            Framer::new_synced()
        } else {
            Framer::new_hunting()
        };
        let mut asm = Assembler::new(
            side,
            self.negotiated.clone(),
            ctx.config.payload,
            ctx.config.message_limits,
            ctx.decoders.clone(),
        );
        if self.roles.certain {
            framer.set_expect_masked(Some(side == Side::Client));
            asm.set_expect_masked(Some(side == Side::Client));
        }
        self.phases[dir] = Phase::WebSocket(Box::new(WsDir {
            framer,
            asm,
            ever_locked: synced,
        }));
    }

    fn on_data(&mut self, dir: usize, data: &[u8], time: f64, ctx: &mut Context<'_>) {
        if data.is_empty() {
            return;
        }
        match &mut self.phases[dir] {
            Phase::Opaque => {}
            Phase::Sniff => {
                // A response cut after "HT" (or up to "HTTP") also looks like a request method:
                // try the role this direction is believed to have first.
                let order = if self.side(dir) == Side::Server {
                    [HttpRole::Responses, HttpRole::Requests]
                } else {
                    [HttpRole::Requests, HttpRole::Responses]
                };
                match order.into_iter().find(|&role| plausible_start(data, role)) {
                    Some(role) => {
                        self.phases[dir] = Phase::Http {
                            stream: HttpStream::new(role),
                            heads: 0,
                        }
                    }
                    None => self.start_websocket(dir, false, ctx),
                }
                self.on_data(dir, data, time, ctx);
            }
            Phase::Http { stream, heads } => match stream.push(data) {
                Ok(None) => {}
                Ok(Some((event, used))) => {
                    *heads += 1;
                    let rest = &data[used..];
                    match event {
                        HttpEvent::Request(req) => self.on_request(dir, req, time, ctx),
                        HttpEvent::Response(resp) => self.on_response(dir, resp, time, ctx),
                    }
                    self.on_data(dir, rest, time, ctx);
                }
                Err(e @ (NotHttp::HeadTooLarge | NotHttp::TooManyHeaders)) => {
                    // Not garbage: HTTP past a limit. Say so rather than drop it.
                    self.phases[dir] = Phase::Opaque;
                    self.make_interesting(ctx);
                    let side = self.side(dir);
                    let what = if e == NotHttp::HeadTooLarge {
                        format!("passed {MAX_HEAD_BYTES} bytes without ending")
                    } else {
                        format!("has more than {MAX_HEADERS} header lines")
                    };
                    let d = Diagnostic::new(
                        DiagnosticId::LimitExceeded,
                        Some(side),
                        Some(time),
                        format!(
                            "HTTP head from the {} {what}; the rest of this direction is not read",
                            side.as_str()
                        ),
                    );
                    self.analysis.diag(d, ctx.sink);
                }
                Err(NotHttp::Garbage) => {
                    let first = *heads == 0;
                    if first && !self.analysis.has_handshake() {
                        // Looked like HTTP but is not: maybe frames of a mid-stream capture.
                        self.start_websocket(dir, false, ctx);
                        self.on_data(dir, data, time, ctx);
                    } else {
                        self.phases[dir] = Phase::Opaque;
                    }
                }
            },
            Phase::AwaitUpgrade { held, bytes } => {
                if *bytes + data.len() <= MAX_HELD_BYTES {
                    *bytes += data.len();
                    held.push((time, data.to_vec()));
                } else {
                    // No answer while the client goes on sending: take its bytes as frames.
                    let held = std::mem::take(held);
                    self.start_websocket(dir, true, ctx);
                    for (t, bytes) in held {
                        self.on_data(dir, &bytes, t, ctx);
                    }
                    self.on_data(dir, data, time, ctx);
                }
            }
            Phase::WebSocket(_) => {
                self.run_framer(dir, time, ctx, |framer, mut out| {
                    framer.push_at(data, time, &mut out)
                });
                let other_locked =
                    matches!(&self.phases[1 - dir], Phase::WebSocket(other) if other.ever_locked);
                if let Phase::WebSocket(ws) = &mut self.phases[dir] {
                    ws.ever_locked |= !ws.framer.is_hunting();
                    if !ws.ever_locked && !other_locked && ws.framer.stream_offset() > HUNT_BUDGET {
                        self.phases[dir] = Phase::Opaque;
                    }
                }
                self.drain_outputs(dir, ctx);
            }
        }
    }

    /// Runs `op` on a WebSocket direction's framer, feeding its events to the assembler. With no
    /// handshake, the first frame header decides the roles: the side whose frames are masked is
    /// the client.
    fn run_framer(
        &mut self,
        dir: usize,
        time: f64,
        ctx: &mut Context<'_>,
        op: impl FnOnce(&mut Framer, &mut dyn FnMut(FrameEvent<'_>)),
    ) {
        let Phase::WebSocket(ws) = &mut self.phases[dir] else {
            return;
        };
        let outputs = &mut ctx.outputs;
        let roles_known = self.roles.certain;
        let mut decided = None;
        let asm = &mut ws.asm;
        // Frames found by hunting come with the capture time of their bytes (`FrameEvent::At`).
        let mut time = time;
        op(&mut ws.framer, &mut |ev| {
            if let FrameEvent::At(t) = ev {
                time = t;
                return;
            }
            if let FrameEvent::Header(h) = &ev
                && !roles_known
                && decided.is_none()
            {
                // This direction's assembler must know its side before it judges this header;
                // the other direction learns it below.
                let side = if h.mask.is_some() {
                    Side::Client
                } else {
                    Side::Server
                };
                decided = Some(if side == Side::Client { dir } else { 1 - dir });
                asm.set_side(side);
                asm.set_expect_masked(Some(side == Side::Client));
            }
            asm.on_event(ev, time, outputs);
        });
        if let Some(client_dir) = decided {
            self.set_client_dir(client_dir);
        }
    }

    fn on_request(&mut self, dir: usize, req: RequestHead, time: f64, ctx: &mut Context<'_>) {
        self.set_client_dir(dir);
        if !req.is_websocket_upgrade() {
            self.pending_requests.push_back(false);
            return;
        }
        self.make_interesting(ctx);
        self.analysis.handshake_request(&req, time, ctx.sink);
        if self.upgraded {
            // The 101 was processed first (capture order across directions can differ).
            self.start_websocket(dir, true, ctx);
        } else {
            self.pending_requests.push_back(true);
            self.phases[dir] = Phase::AwaitUpgrade {
                held: Vec::new(),
                bytes: 0,
            };
        }
    }

    fn on_response(&mut self, dir: usize, resp: ResponseHead, time: f64, ctx: &mut Context<'_>) {
        self.set_client_dir(1 - dir);
        if (100..200).contains(&resp.status) && resp.status != 101 {
            return; // interim response; the final one follows
        }
        let was_upgrade = self.pending_requests.pop_front();
        if was_upgrade == Some(false) || (was_upgrade.is_none() && resp.status != 101) {
            return;
        }
        self.make_interesting(ctx);
        let negotiated = self.analysis.handshake_response(&resp, time, ctx.sink);
        let client_dir = 1 - dir;
        match negotiated {
            Some(negotiated) => {
                self.negotiated = Some(negotiated);
                self.upgraded = true;
                self.start_websocket(dir, true, ctx);
                if let Some(held) = self.take_held(client_dir) {
                    self.start_websocket(client_dir, true, ctx);
                    for (t, bytes) in held {
                        self.on_data(client_dir, &bytes, t, ctx);
                    }
                } else if matches!(self.phases[client_dir], Phase::Opaque) {
                    // The request has not been processed yet; it will switch the direction.
                    // (Sniff, Http with part of the request, or WebSocket stay as they are.)
                    self.phases[client_dir] = Phase::Sniff;
                }
            }
            None => {
                // Refused: the client may try again on the same connection.
                if let Some(held) = self.take_held(client_dir) {
                    self.phases[client_dir] = Phase::Http {
                        stream: HttpStream::new(HttpRole::Requests),
                        heads: 1,
                    };
                    for (t, bytes) in held {
                        self.on_data(client_dir, &bytes, t, ctx);
                    }
                }
            }
        }
    }

    fn drain_outputs(&mut self, dir: usize, ctx: &mut Context<'_>) {
        if ctx.outputs.is_empty() {
            return;
        }
        let side = self.side(dir);
        let mut outputs = std::mem::take(&mut ctx.outputs);
        for output in outputs.drain(..) {
            match output {
                Output::Frame(h, time) => {
                    if !self.analysis.is_interesting() {
                        self.make_interesting(ctx);
                    }
                    self.analysis.frame(side, &h, time, ctx.sink);
                }
                Output::Message(m) => {
                    let listed = self.charge_listing(&m, ctx);
                    self.analysis.message(&m, listed, ctx.sink)
                }
                Output::Diagnostic(d) => {
                    if d.id == DiagnosticId::FrameResync
                        && !self.analysis.has_handshake()
                        && !self.midstream_reported
                    {
                        continue;
                    }
                    self.analysis.diag(d, ctx.sink)
                }
            }
        }
        ctx.outputs = outputs;
        if !self.midstream_reported
            && !self.analysis.has_handshake()
            && self.analysis.is_interesting()
        {
            self.midstream_reported = true;
            let d = Diagnostic::new(
                DiagnosticId::MidstreamStart,
                None,
                Some(self.time),
                "no handshake captured: frames found by resynchronising; the masked side is taken as the client".into(),
            );
            self.analysis.diag(d, ctx.sink);
        }
    }

    /// Charges a message's record to the listing budget; false when it does not fit.
    fn charge_listing(&mut self, m: &Message, ctx: &mut Context<'_>) -> bool {
        if !ctx.config.analysis.keep_messages {
            return true;
        }
        // The payload is rendered as text or base64 (4/3 of it).
        let cost = LISTED_RECORD_BYTES + (m.payload.len() as u64).div_ceil(3) * 4;
        if ctx.listed_bytes + cost > ctx.config.max_listed_bytes {
            self.unlisted += 1;
            return false;
        }
        ctx.listed_bytes += cost;
        self.listed_bytes += cost;
        true
    }

    /// Leaves `AwaitUpgrade` (for `Opaque`, until the caller decides) and returns the bytes
    /// held; any other phase is left as it is.
    fn take_held(&mut self, dir: usize) -> Option<Vec<(f64, Vec<u8>)>> {
        match &mut self.phases[dir] {
            Phase::AwaitUpgrade { held, .. } => {
                let held = std::mem::take(held);
                self.phases[dir] = Phase::Opaque;
                Some(held)
            }
            _ => None,
        }
    }

    fn finish_dir(&mut self, dir: usize, ctx: &mut Context<'_>) {
        if let Some(held) = self.take_held(dir) {
            // The answer was never captured.
            let d = Diagnostic::new(
                DiagnosticId::HandshakeUnanswered,
                Some(Side::Server),
                None,
                "no answer to the upgrade request was captured".into(),
            );
            self.analysis.diag(d, ctx.sink);
            if !held.is_empty() {
                self.start_websocket(dir, true, ctx);
                for (t, bytes) in held {
                    self.on_data(dir, &bytes, t, ctx);
                }
            }
        }
        let time = self.time;
        self.run_framer(dir, time, ctx, |framer, mut out| framer.finish(&mut out));
        if let Phase::WebSocket(ws) = &mut self.phases[dir] {
            ws.asm.finish(&mut ctx.outputs);
            self.drain_outputs(dir, ctx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::InputSummary;
    use crate::record::Event;
    use crate::record::Summary;
    use crate::ws::frame::encode_frame;

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
            },
            payload: PayloadMode::Full,
            message_limits: MessageLimits::default(),
            reassembly: ReassemblyLimits::default(),
            max_listed_bytes: DEFAULT_MAX_LISTED_BYTES,
            listed_freed_on_finish: true,
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
        let server = messages.iter().find(|m| m.from == Side::Server).unwrap();
        assert_eq!((server.opcode, server.wire_length), ("binary", 10));
        assert!(!server.complete);
        let client = messages.iter().find(|m| m.from == Side::Client).unwrap();
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
        assert_eq!(ctx.listed_bytes, LISTED_RECORD_BYTES + 4);
        second.send(&mut ctx, false, &encode_frame(true, 0, 1, key, b"late"));
        let record = second.conn.finish(None, &mut ctx).unwrap();
        assert_eq!(texts(&record, Side::Client), ["m0", "late"]);
        assert_eq!(ctx.listed_bytes, 0);
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
}
