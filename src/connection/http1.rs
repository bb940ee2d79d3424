//! Between the HTTP/1.1 layer and what sits above it: handshakes and plain exchanges go to the
//! session's analysis, frames to its WebSocket directions, and after an `Upgrade: h2c` the
//! bytes to an HTTP/2 layer. Plain requests to WebSocket endpoints (a 426, `Sec-WebSocket-*`
//! headers, a refused request for a host/path another connection upgraded) are reported here.

use super::context::{Context, Quiet};
use super::websocket::{PlainExchange, Session};
use super::{Roles, http2};
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::http::layer::Http1Event;
use crate::record::TcpRecord;
use crate::stream::{Layer, Out};

/// Plain requests remembered while their answers are awaited (pipelining is rarely deeper).
const MAX_PLAIN_PENDING: usize = 16;

/// A request that did not ask for an upgrade has its answer: ordinary web traffic stays out of
/// the report; an exchange that shows it concerns a WebSocket endpoint is reported as a refused
/// upgrade; one refused by a host/path that another connection may upgrade is kept in case.
pub(super) fn plain_exchange(
    session: &mut Session,
    roles: &Roles,
    request: crate::http::RequestHead,
    response: crate::http::ResponseHead,
    times: (f64, f64),
    ctx: &mut Context<'_>,
) {
    if session.analysis.has_handshake() {
        return; // one WebSocket story per connection: the first
    }
    let mut signs = crate::http::handshake::websocket_signs(&request, &response);
    let target = request.target();
    // Only refusals (4xx, 5xx) count by endpoint: Engine.IO's long-polling GETs share the
    // WebSocket's path and are answered 200.
    let refused_get = request.method == "GET" && response.status >= 400 && target.is_some();
    if signs.is_empty() && refused_get {
        let target = target.unwrap_or_default();
        if ctx.target_upgraded(&target) {
            signs.push(format!("another connection upgraded {target}"));
        } else if session.candidate.is_none() {
            session.candidate = Some(Box::new(PlainExchange {
                request,
                response,
                times,
            }));
            return;
        }
    }
    if signs.is_empty() {
        return;
    }
    session.candidate = None;
    session.make_interesting(roles, ctx);
    session
        .analysis
        .plain_exchange(&request, &response, times, &signs, ctx.sink);
}

/// What sits above the HTTP/1.1 layer: the connection's WebSocket session, or, after an
/// `Upgrade: h2c`, an HTTP/2 layer with its own sessions.
pub(super) struct Above<'a> {
    pub(super) session: &'a mut Session,
    pub(super) http2: &'a mut Option<Box<http2::H2Conn>>,
    pub(super) facts: TcpRecord,
}

/// What the HTTP/1.1 layer pushes out, delivered to the layer above.
pub(super) fn on_http1(
    above: &mut Above<'_>,
    roles: &mut Roles,
    time: f64,
    out: Out<'_, Http1Event>,
    ctx: &mut Context<'_>,
) {
    let session = &mut *above.session;
    match out {
        Out::Data { from, chunk, .. } => match above.http2.as_deref_mut() {
            Some(http2::H2Conn { layer, streams }) => {
                let facts = above.facts;
                layer.push(from, time, chunk, &mut |out| {
                    streams.on_out(out, time, session, roles, facts, ctx)
                });
            }
            None => {
                let dir = roles.dir(from);
                session.push(dir, time, chunk, roles, ctx);
            }
        },
        Out::Event(Http1Event::SwitchedToHttp2 { method, path }) => {
            *above.http2 = Some(Box::new(http2::H2Conn::after_h2c_upgrade(&method, &path)));
        }
        Out::Event(event) => match event {
            Http1Event::Request { head, upgrade } => {
                if upgrade {
                    session.make_interesting(roles, ctx);
                    session.analysis.handshake_request(&head, time, ctx.sink);
                } else {
                    let kept = session.plain_requests.len() < MAX_PLAIN_PENDING;
                    session
                        .plain_requests
                        .push_back(kept.then_some((head, time)));
                }
            }
            Http1Event::Response { head, to_upgrade } => {
                if to_upgrade == Some(true) || (to_upgrade.is_none() && head.status == 101) {
                    session.make_interesting(roles, ctx);
                    let negotiated = session.analysis.handshake_response(&head, time, ctx.sink);
                    if negotiated.is_some() {
                        session.set_negotiated(negotiated);
                        ctx.note_upgraded(session.analysis.upgraded_target());
                    }
                } else if to_upgrade == Some(false)
                    && let Some(Some((request, asked))) = session.plain_requests.pop_front()
                {
                    plain_exchange(session, roles, request, head, (asked, time), ctx);
                }
            }
            Http1Event::Upgraded(_) => {}
            Http1Event::Frames { from, synced } => {
                session.start(roles.dir(from), synced, roles, ctx);
            }
            Http1Event::HeadLimit { from, what } => {
                // Not garbage: HTTP past a limit. Say so rather than drop it.
                session.make_interesting(roles, ctx);
                let d = Diagnostic::new(
                    DiagnosticId::LimitExceeded,
                    Some(from),
                    Some(time),
                    format!(
                        "HTTP head from the {} {what}; the rest of this direction is not read",
                        from.as_str()
                    ),
                );
                session.analysis.diag(d, ctx.sink);
            }
            Http1Event::SwitchedToHttp2 { .. } => {} // handled above
            Http1Event::Unanswered => {
                // The finding is the request's (client, its time).
                let asked = session.analysis.request_time();
                let d = Diagnostic::new(
                    DiagnosticId::HandshakeUnanswered,
                    Some(Side::Client),
                    asked,
                    match asked {
                        Some(t) => format!(
                            "no answer to the upgrade request sent at {} was captured",
                            crate::analysis::clock(t)
                        ),
                        None => "no answer to the upgrade request was captured".into(),
                    },
                );
                session.analysis.diag(d, ctx.sink);
            }
        },
    }
}

/// The connection ends without being reported: a refused plain request it kept as a
/// candidate is reported now if another connection upgraded its endpoint, or else kept, as a
/// quietly built record, until the end of the capture. Returns the target when kept.
pub(super) fn settle_candidate(
    session: &mut Session,
    roles: &Roles,
    ctx: &mut Context<'_>,
) -> Option<String> {
    if session.analysis.is_interesting() {
        return None;
    }
    let exchange = session.candidate.take()?;
    let target = exchange.request.target().unwrap_or_default();
    if ctx.target_upgraded(&target) {
        session.make_interesting(roles, ctx);
        let sign = format!("another connection upgraded {target}");
        session.analysis.plain_exchange(
            &exchange.request,
            &exchange.response,
            exchange.times,
            &[sign],
            ctx.sink,
        );
        None
    } else if ctx.waiting_has_room() {
        let sign = format!("another connection upgraded {target} later in the capture");
        session.analysis.plain_exchange(
            &exchange.request,
            &exchange.response,
            exchange.times,
            &[sign],
            &mut Quiet,
        );
        Some(target)
    } else {
        None
    }
}
