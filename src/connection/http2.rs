//! An HTTP/2 connection's WebSockets (RFC 8441): the HTTP/2 layer's output routed to one
//! [`Session`] per extended-CONNECT stream, each with its own analysis and record. A stream's
//! END_STREAM, RST_STREAM or GOAWAY ends its session the way FIN and RST end a TCP
//! connection's; ordinary streams are only counted (in each WebSocket's `http2.connection`).

use std::collections::BTreeMap;

use crate::analysis::Analysis;
use crate::diag::{Diagnostic, Side};
use crate::record::TcpRecord;
use crate::stream::End;
use crate::stream::Out;
use crate::stream::http2::summary::Http2Summary;
use crate::stream::http2::{Http2Event, Http2Layer, StreamEnd};

use super::websocket::Session;
use super::{Context, Roles};

/// Connection-level HTTP/2 findings held for the next WebSocket stream when none is open.
const MAX_PENDING_DIAGS: usize = 20;

/// The HTTP/2 layer of a connection and the WebSocket sessions of its streams.
pub(super) struct H2Conn {
    pub(super) layer: Http2Layer,
    pub(super) streams: H2Streams,
}

impl H2Conn {
    pub(super) fn new() -> Self {
        H2Conn {
            layer: Http2Layer::new(),
            streams: H2Streams::default(),
        }
    }

    /// A connection that switched to HTTP/2 with `Upgrade: h2c` (RFC 7540 §3.2): the
    /// upgraded request is stream 1.
    pub(super) fn after_h2c_upgrade(method: &str, path: &str) -> Self {
        H2Conn {
            layer: Http2Layer::after_h2c_upgrade(method, path),
            streams: H2Streams::default(),
        }
    }

    /// A connection whose start was not captured.
    pub(super) fn midstream() -> Self {
        H2Conn {
            layer: Http2Layer::midstream(),
            streams: H2Streams::default(),
        }
    }
}

struct StreamSession {
    session: Session,
    first_seen: f64,
    started: [bool; 2],
    closed: [bool; 2],
    /// How the stream ended, as a transport end: side, time, abrupt (RST-like), words.
    end: Option<(Side, f64, bool, String)>,
}

/// The WebSocket streams of one HTTP/2 connection.
#[derive(Default)]
pub(super) struct H2Streams {
    summary: Http2Summary,
    sessions: BTreeMap<u32, StreamSession>,
    pending: Vec<Diagnostic>,
    /// Why analysis stops following the connection before TCP ended (idle timeout, table full).
    stopped: Option<String>,
}

fn side_index(side: Side) -> usize {
    usize::from(side == Side::Server)
}

impl H2Streams {
    /// One output of the HTTP/2 layer. `tcp` is the TCP connection's session (for its
    /// endpoints), `facts` its TCP facts for the stream records.
    pub(super) fn on_out(
        &mut self,
        out: Out<'_, Http2Event>,
        time: f64,
        tcp: &Session,
        roles: &mut Roles,
        facts: TcpRecord,
        ctx: &mut Context<'_>,
    ) {
        match out {
            Out::Data {
                channel,
                from,
                chunk,
            } => {
                let Some(ss) = self.sessions.get_mut(&channel) else {
                    return;
                };
                let dir = roles.dir(from);
                if !ss.started[side_index(from)] {
                    ss.session.start(dir, true, roles, ctx);
                    ss.started[side_index(from)] = true;
                }
                ss.session.push(dir, time, chunk, roles, ctx);
            }
            Out::Event(event) => {
                self.summary.observe(&event, time);
                self.on_event(event, time, tcp, roles, facts, ctx);
            }
        }
    }

    fn open(
        &mut self,
        stream_id: u32,
        time: f64,
        tcp: &Session,
        roles: &Roles,
        ctx: &mut Context<'_>,
    ) {
        let analysis = Analysis::new(ctx.alloc_id(), ctx.config.analysis);
        let mut session = tcp.sibling(analysis, time);
        session.make_interesting(roles, ctx);
        for d in self.pending.drain(..) {
            session.analysis.diag(d, ctx.sink);
        }
        self.sessions.insert(
            stream_id,
            StreamSession {
                session,
                first_seen: time,
                started: [false; 2],
                closed: [false; 2],
                end: None,
            },
        );
    }

    fn on_event(
        &mut self,
        event: Http2Event,
        time: f64,
        tcp: &Session,
        roles: &mut Roles,
        facts: TcpRecord,
        ctx: &mut Context<'_>,
    ) {
        match event {
            Http2Event::WebSocketRequest { stream_id, head } => {
                self.open(stream_id, time, tcp, roles, ctx);
                if let Some(ss) = self.sessions.get_mut(&stream_id) {
                    ss.session
                        .analysis
                        .handshake_request_h2(&head, time, ctx.sink);
                }
            }
            Http2Event::WebSocketResponse { stream_id, head } => {
                let Some(ss) = self.sessions.get_mut(&stream_id) else {
                    return;
                };
                let negotiated = ss
                    .session
                    .analysis
                    .handshake_response_h2(&head, time, ctx.sink);
                if negotiated.is_some() {
                    ss.session.set_negotiated(negotiated);
                    ctx.note_upgraded(ss.session.analysis.upgraded_target());
                    for side in [Side::Client, Side::Server] {
                        if !ss.started[side_index(side)] {
                            ss.session.start(roles.dir(side), true, roles, ctx);
                            ss.started[side_index(side)] = true;
                        }
                    }
                }
            }
            Http2Event::ProbableWebSocket { stream_id, .. } => {
                self.open(stream_id, time, tcp, roles, ctx);
            }
            Http2Event::StreamEnded {
                stream_id,
                from,
                how,
            } => self.stream_ended(stream_id, from, how, time, roles, facts, ctx),
            Http2Event::Diagnostic {
                stream_id: Some(id),
                diagnostic,
            } => match self.sessions.get_mut(&id) {
                Some(ss) => ss.session.analysis.diag(diagnostic, ctx.sink),
                None => self.hold(diagnostic),
            },
            Http2Event::Diagnostic {
                stream_id: None,
                diagnostic,
            } => {
                if self.sessions.is_empty() {
                    self.hold(diagnostic);
                    return;
                }
                for ss in self.sessions.values_mut() {
                    ss.session.analysis.diag(diagnostic.clone(), ctx.sink);
                }
            }
            _ => {}
        }
    }

    fn hold(&mut self, d: Diagnostic) {
        if self.pending.len() < MAX_PENDING_DIAGS {
            self.pending.push(d);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn stream_ended(
        &mut self,
        stream_id: u32,
        from: Side,
        how: StreamEnd,
        time: f64,
        roles: &mut Roles,
        facts: TcpRecord,
        ctx: &mut Context<'_>,
    ) {
        let Some(ss) = self.sessions.get_mut(&stream_id) else {
            return;
        };
        let words = how.describe(from);
        let (both, abrupt, stopped) = match how {
            StreamEnd::EndStream | StreamEnd::Transport(End::Fin) => (false, false, None),
            StreamEnd::Transport(End::CaptureEnd) => (false, false, Some(())),
            StreamEnd::Transport(End::Rst) | StreamEnd::Reset(_) | StreamEnd::GoAway { .. } => {
                (true, true, None)
            }
            StreamEnd::Undecodable => (true, false, Some(())),
        };
        let sides: &[Side] = if both {
            &[Side::Client, Side::Server]
        } else {
            std::slice::from_ref(&from)
        };
        for &side in sides {
            if !ss.closed[side_index(side)] {
                ss.closed[side_index(side)] = true;
                ss.session.finish_dir(roles.dir(side), time, roles, ctx);
            }
        }
        if stopped.is_none() {
            // A reset after one side's END_STREAM is still what ended the stream.
            match &ss.end {
                None => ss.end = Some((from, time, abrupt, words)),
                Some(_) if abrupt => ss.end = Some((from, time, abrupt, words)),
                Some(_) => {}
            }
        }
        if ss.closed == [true, true] {
            let stopped = match how {
                StreamEnd::Undecodable => {
                    Some("HTTP/2 decoding stopped (h2_protocol_error)".into())
                }
                StreamEnd::Transport(End::CaptureEnd) => self.stopped.clone(),
                _ => None,
            };
            self.finalize(stream_id, time, roles, facts, stopped, ctx);
        }
    }

    fn finalize(
        &mut self,
        stream_id: u32,
        time: f64,
        roles: &Roles,
        facts: TcpRecord,
        stopped: Option<String>,
        ctx: &mut Context<'_>,
    ) {
        let Some(mut ss) = self.sessions.remove(&stream_id) else {
            return;
        };
        let (client, server) = ss.session.addresses(roles);
        if let Some((_, _, _, words)) = &ss.end {
            ss.session.analysis.set_end_words(words.clone());
        }
        let tcp_end = ss
            .end
            .as_ref()
            .map(|(side, t, abrupt, _)| (*side, *t, *abrupt));
        if ctx.config.listed_freed_on_finish {
            ctx.listed.give_back(ss.session.listed_bytes);
        }
        let mut record = ss.session.analysis.finish(
            client,
            server,
            ss.first_seen,
            time,
            tcp_end,
            facts,
            stopped,
            ctx.sink,
        );
        record.http2 = self.summary.stream(stream_id);
        ctx.finished.push(record);
    }

    /// Both directions ended: sessions still open (their streams never ended) finish now.
    pub(super) fn finish_all(
        &mut self,
        time: f64,
        roles: &mut Roles,
        facts: TcpRecord,
        ctx: &mut Context<'_>,
    ) {
        let ids: Vec<u32> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(ss) = self.sessions.get_mut(&id) {
                for side in [Side::Client, Side::Server] {
                    if !ss.closed[side_index(side)] {
                        ss.closed[side_index(side)] = true;
                        ss.session.finish_dir(roles.dir(side), time, roles, ctx);
                    }
                }
            }
            let stopped = self.stopped.clone();
            self.finalize(id, time, roles, facts, stopped, ctx);
        }
    }

    /// Analysis stops following the connection before TCP ended: why.
    pub(super) fn set_stopped(&mut self, why: Option<String>) {
        self.stopped = why;
    }

    /// WebSocket streams the connection carried (open or ended).
    pub(super) fn websocket_streams(&self) -> u64 {
        self.summary.connection().websocket_streams
    }

    /// The HTTP/2 connection's facts, for the TCP connection's own record.
    pub(super) fn connection_record(&self) -> crate::record::http2::Http2ConnectionRecord {
        self.summary.connection().clone()
    }

    /// A WebSocket stream is open.
    pub(super) fn has_websockets(&self) -> bool {
        !self.sessions.is_empty()
    }

    /// The connection is idle: release what the sessions can rebuild.
    pub(super) fn hibernate(&mut self, pack_deflate: bool) {
        for ss in self.sessions.values_mut() {
            ss.session.hibernate(pack_deflate);
        }
    }
}
