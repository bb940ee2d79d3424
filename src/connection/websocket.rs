//! One WebSocket session of a connection: the bytes each direction carries once it carries
//! frames, through the framer and the message assembler, into the session's [`Analysis`].
//! A TCP connection has one (channel 0); an HTTP/2 connection one per extended-CONNECT stream.

use crate::analysis::Analysis;
use crate::decode::Endpoint;
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::http::{Negotiated, RequestHead, ResponseHead};
use crate::stream::Chunk;
use crate::ws::framer::{FrameEvent, Framer};
use crate::ws::message::{Assembler, Message, Output, PayloadMode};

use crate::record::Address;

use super::Roles;
use super::context::{Context, LISTED_RECORD_BYTES};

fn address(e: &Endpoint) -> Address {
    Address {
        ip: e.ip().to_string(),
        port: e.port,
    }
}

/// Bytes a direction may hunt for frame boundaries, while neither direction has found any, before it is
/// declared not WebSocket: a capture started on a busy connection can begin inside a frame of several MiB
/// (the hunt's evidence threshold grows with the bytes tried, so a long hunt is no likelier to lock on
/// other protocols). Once the other direction has found frames the connection is WebSocket, and this one
/// hunts as long as it takes.
pub(super) const HUNT_BUDGET: u64 = 4 << 20;

/// A request that did not ask for an upgrade, with its answer and their times.
pub(super) struct PlainExchange {
    pub(super) request: RequestHead,
    pub(super) response: ResponseHead,
    pub(super) times: (f64, f64),
}

struct WsDir {
    framer: Framer,
    asm: Assembler,
    ever_locked: bool,
}

/// Frames and messages of one session, and their analysis.
pub(super) struct Session {
    pub(super) analysis: Analysis,
    /// The connection's ends: index 0 sent its first captured packet.
    ends: [Endpoint; 2],
    first_seen: f64,
    /// Per TCP direction (index 0: from the connection's first sender); None until the
    /// direction carries frames, and again once it is given up (not WebSocket).
    dirs: [Option<Box<WsDir>>; 2],
    negotiated: Option<Negotiated>,
    midstream_reported: bool,
    /// The assemblers keep payload for the application stage (until it gives up).
    app_payload: bool,
    /// Requests that did not ask for an upgrade, awaiting their answers (None past the cap).
    pub(super) plain_requests: std::collections::VecDeque<Option<(RequestHead, f64)>>,
    /// A plain exchange refused by a host/path that may turn out, later in the capture, to be
    /// a WebSocket endpoint.
    pub(super) candidate: Option<Box<PlainExchange>>,
    /// Listed-message bytes this session holds, and messages it could not list.
    pub(super) listed_bytes: u64,
    pub(super) unlisted: u64,
}

/// A TCP connection's session, made when first needed: most connections of a busy capture
/// (SYN floods, scans, refused or idle ones) never carry bytes, and a session with its
/// analysis costs about 3 KB, which 100,000 open connections would multiply.
pub(super) struct LazySession {
    id: u64,
    ends: [Endpoint; 2],
    first_seen: f64,
    inner: Option<Box<Session>>,
}

impl LazySession {
    pub(super) fn new(id: u64, ends: [Endpoint; 2], first_seen: f64) -> Self {
        LazySession {
            id,
            ends,
            first_seen,
            inner: None,
        }
    }

    /// The session, made on the first call.
    pub(super) fn get(&mut self, config: &super::ConnectionConfig) -> &mut Session {
        let (id, ends, first_seen) = (self.id, self.ends, self.first_seen);
        self.inner
            .get_or_insert_with(|| fresh_session(id, ends, first_seen, config))
    }

    /// The session, if it was ever needed.
    pub(super) fn made(&self) -> Option<&Session> {
        self.inner.as_deref()
    }

    pub(super) fn made_mut(&mut self) -> Option<&mut Session> {
        self.inner.as_deref_mut()
    }

    /// The session, made now if it never was.
    pub(super) fn into_session(self, config: &super::ConnectionConfig) -> Box<Session> {
        let LazySession {
            id,
            ends,
            first_seen,
            inner,
        } = self;
        inner.unwrap_or_else(|| fresh_session(id, ends, first_seen, config))
    }
}

fn fresh_session(
    id: u64,
    ends: [Endpoint; 2],
    first_seen: f64,
    config: &super::ConnectionConfig,
) -> Box<Session> {
    Box::new(Session::new(
        Analysis::new(id, config.analysis),
        ends,
        first_seen,
    ))
}

impl Session {
    pub(super) fn new(analysis: Analysis, ends: [Endpoint; 2], first_seen: f64) -> Self {
        Session {
            analysis,
            ends,
            first_seen,
            dirs: [None, None],
            negotiated: None,
            midstream_reported: false,
            app_payload: true,
            plain_requests: std::collections::VecDeque::new(),
            candidate: None,
            listed_bytes: 0,
            unlisted: 0,
        }
    }

    /// A session on the same connection (an HTTP/2 stream's WebSocket), starting at `time`.
    pub(super) fn sibling(&self, analysis: Analysis, time: f64) -> Session {
        Session::new(analysis, self.ends, time)
    }

    /// What the handshake negotiated; applies to directions started after it.
    pub(super) fn set_negotiated(&mut self, negotiated: Option<Negotiated>) {
        self.negotiated = negotiated;
    }

    /// The connection is idle: release per-direction state that can be rebuilt when it wakes;
    /// `pack_deflate`: the deflate decoders too (their windows kept packed).
    pub(super) fn hibernate(&mut self, pack_deflate: bool) {
        self.analysis.shrink();
        self.plain_requests.shrink_to_fit();
        for ws in self.dirs.iter_mut().flatten() {
            if pack_deflate {
                ws.asm.hibernate();
            }
            ws.framer.release_buffers();
        }
    }

    /// Gives up directions that hunted without ever finding a frame boundary (the bytes of a
    /// connection refused by RST reached no endpoint, and one frame at the end is weak evidence).
    pub(super) fn drop_unlocked(&mut self) {
        for slot in &mut self.dirs {
            if slot.as_ref().is_some_and(|ws| !ws.ever_locked) {
                *slot = None;
            }
        }
    }

    /// The roles were just decided: tell both directions.
    pub(super) fn roles_decided(&mut self, roles: &Roles) {
        for (dir, slot) in self.dirs.iter_mut().enumerate() {
            if let Some(ws) = slot {
                let side = roles.side(dir);
                ws.asm.set_side(side);
                ws.asm.set_expect_masked(Some(side == Side::Client));
                ws.framer.set_expect_masked(Some(side == Side::Client));
            }
        }
    }

    /// Direction `dir` carries frames from here on; `synced`: at a frame boundary.
    pub(super) fn start(&mut self, dir: usize, synced: bool, roles: &Roles, ctx: &mut Context<'_>) {
        let side = roles.side(dir);
        let mut framer = if synced {
            Framer::new_synced()
        } else {
            Framer::new_hunting()
        };
        let payload = if self.app_payload {
            ctx.config.payload
        } else {
            ctx.config.analysis.payload
        };
        let mut asm = Assembler::new(
            side,
            self.negotiated.clone(),
            payload,
            ctx.config.message_limits,
            ctx.decoders.clone(),
        );
        if roles.certain {
            framer.set_expect_masked(Some(side == Side::Client));
            asm.set_expect_masked(Some(side == Side::Client));
        }
        self.dirs[dir] = Some(Box::new(WsDir {
            framer,
            asm,
            ever_locked: synced,
        }));
    }

    /// The next piece of direction `dir`'s frame stream.
    pub(super) fn push(
        &mut self,
        dir: usize,
        time: f64,
        chunk: Chunk<'_>,
        roles: &mut Roles,
        ctx: &mut Context<'_>,
    ) {
        match chunk {
            Chunk::Data(data) if !data.is_empty() => {
                self.run_framer(dir, time, roles, ctx, |framer, mut out| {
                    framer.push_at(data, time, &mut out)
                });
                let other_locked = self.dirs[1 - dir].as_ref().is_some_and(|ws| ws.ever_locked);
                if let Some(ws) = &mut self.dirs[dir] {
                    ws.ever_locked |= !ws.framer.is_hunting();
                    if !ws.ever_locked && !other_locked && ws.framer.stream_offset() > HUNT_BUDGET {
                        self.dirs[dir] = None;
                    }
                }
            }
            Chunk::Data(_) => return,
            Chunk::Gap(len) => {
                let Some(ws) = &mut self.dirs[dir] else {
                    return;
                };
                let outputs = &mut ctx.outputs;
                let asm = &mut ws.asm;
                // Frames the gap releases from the hunt come with their bytes' capture time.
                let mut at = time;
                ws.framer.gap(len, &mut |ev| match ev {
                    FrameEvent::At(t) => at = t,
                    ev => asm.on_event(ev, at, outputs),
                });
                if ws.framer.is_hunting() {
                    ws.asm.lose_context();
                }
            }
        }
        self.drain_outputs(roles.side(dir), time, roles, ctx);
    }

    /// The direction's stream ended: finish the frame and message it stopped inside.
    pub(super) fn finish_dir(
        &mut self,
        dir: usize,
        time: f64,
        roles: &mut Roles,
        ctx: &mut Context<'_>,
    ) {
        self.run_framer(dir, time, roles, ctx, |framer, mut out| {
            framer.finish(&mut out)
        });
        if let Some(ws) = &mut self.dirs[dir] {
            ws.asm.finish(&mut ctx.outputs);
            self.drain_outputs(roles.side(dir), time, roles, ctx);
        }
    }

    /// Runs `op` on a direction's framer, feeding its events to the assembler. With no
    /// handshake, the first frame header decides the roles: the side whose frames are masked is
    /// the client.
    fn run_framer(
        &mut self,
        dir: usize,
        time: f64,
        roles: &mut Roles,
        ctx: &mut Context<'_>,
        op: impl FnOnce(&mut Framer, &mut dyn FnMut(FrameEvent<'_>)),
    ) {
        let Some(ws) = &mut self.dirs[dir] else {
            return;
        };
        let outputs = &mut ctx.outputs;
        let roles_known = roles.certain;
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
        if let Some(client_dir) = decided
            && roles.decide(client_dir)
        {
            self.roles_decided(roles);
        }
    }

    fn drain_outputs(&mut self, side: Side, time: f64, roles: &Roles, ctx: &mut Context<'_>) {
        if ctx.outputs.is_empty() {
            return;
        }
        let mut outputs = std::mem::take(&mut ctx.outputs);
        for output in outputs.drain(..) {
            match output {
                Output::Frame(h, time) => {
                    self.make_interesting(roles, ctx);
                    self.analysis.frame(side, &h, time, ctx.sink);
                }
                Output::Message(m) => {
                    if let Some(spool) = &ctx.spool {
                        self.analysis.spool_messages(spool);
                    }
                    let listed = self.charge_listing(&m, ctx);
                    self.analysis.message(&m, listed, ctx.sink);
                    if self.app_payload && !self.analysis.app_wants_payload() {
                        // No application protocol: keep only what the records show.
                        self.app_payload = false;
                        for ws in self.dirs.iter_mut().flatten() {
                            ws.asm.set_payload(ctx.config.analysis.payload);
                        }
                    }
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
                Some(time),
                "no handshake captured: frames found by resynchronising; the masked side is taken as the client".into(),
            );
            self.analysis.diag(d, ctx.sink);
        }
    }

    /// The session is reported from now on (an upgrade attempt or frames).
    pub(super) fn make_interesting(&mut self, roles: &Roles, ctx: &mut Context<'_>) {
        if self.analysis.is_interesting() {
            return;
        }
        let (client, server) = self.addresses(roles);
        self.analysis
            .make_interesting(self.first_seen, &client, &server, ctx.sink);
    }

    /// Client and server addresses as the roles say.
    pub(super) fn addresses(&self, roles: &Roles) -> (Address, Address) {
        let client = roles.client_dir;
        (address(&self.ends[client]), address(&self.ends[1 - client]))
    }

    /// Charges a message's record to the listing budget; false when it does not fit.
    fn charge_listing(&mut self, m: &Message, ctx: &mut Context<'_>) -> bool {
        if !ctx.config.analysis.keep_messages {
            return true;
        }
        // The payload is rendered as text or base64 (4/3 of it), cut to what records show (the
        // assembler may keep more for the application decoders).
        let shown = match ctx.config.analysis.payload {
            PayloadMode::None => 0,
            PayloadMode::Preview(n) => m.payload.len().min(n),
            PayloadMode::Full => m.payload.len(),
        };
        let cost = LISTED_RECORD_BYTES + (shown as u64).div_ceil(3) * 4;
        if !ctx.listed.take(cost, ctx.config.max_listed_bytes) {
            self.unlisted += 1;
            return false;
        }
        self.listed_bytes += cost;
        true
    }
}

pub(super) fn session_size() -> usize {
    std::mem::size_of::<Session>()
}

pub(super) fn ws_dir_size() -> usize {
    std::mem::size_of::<WsDir>()
}
