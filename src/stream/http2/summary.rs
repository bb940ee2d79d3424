//! Folds the layer's events into the records the report shows (`crate::record::http2`): one
//! [`Http2StreamRecord`] per WebSocket stream and the connection's facts.

use std::collections::BTreeMap;

use super::{Http2Event, StreamEnd};
use crate::diag::{DiagnosticId, Side};
use crate::record::{
    Http2ConnectionRecord, Http2GoAwayRecord, Http2OtherStream, Http2StreamRecord,
};

use super::streams::MAX_ORDINARY_KEPT;

/// Running summary of one HTTP/2 connection.
#[derive(Debug, Default, Clone)]
pub struct Http2Summary {
    connection: Http2ConnectionRecord,
    /// The client preface was seen: flow-control windows are followed from their start.
    preface_seen: bool,
    streams: BTreeMap<u32, Http2StreamRecord>,
}

impl Http2Summary {
    /// An empty summary.
    pub fn new() -> Self {
        Http2Summary::default()
    }

    /// Takes one event, pushed at capture time `time`.
    pub fn observe(&mut self, event: &Http2Event, time: f64) {
        let c = &mut self.connection;
        match event {
            Http2Event::Preface => self.preface_seen = true,
            Http2Event::FlowStall(stall) => {
                let Some(r) = self.streams.get_mut(&stall.stream_id) else {
                    return;
                };
                let f = r.flow_control.get_or_insert_with(Default::default);
                let seconds = stall.seconds(time);
                *f.stalls.get_mut(stall.sender) += 1;
                let total = f.stalled_s.get_mut(stall.sender);
                *total = round_ms(*total + seconds);
                f.longest_s = f.longest_s.max(round_ms(seconds));
                if stall.until.is_none() {
                    f.stalled_at_end = Some(stall.sender);
                }
            }
            Http2Event::Settings {
                from: Side::Server,
                ack: false,
                values,
            } => {
                c.server_settings_seen = true;
                if values.enable_connect_protocol.is_some() {
                    c.enable_connect_protocol = values.enable_connect_protocol;
                }
            }
            Http2Event::WebSocketRequest { stream_id, .. } => {
                c.websocket_streams += 1;
                self.streams.insert(
                    *stream_id,
                    Http2StreamRecord {
                        stream_id: *stream_id,
                        handshake_seen: true,
                        ..Http2StreamRecord::default()
                    },
                );
            }
            Http2Event::ProbableWebSocket { stream_id, .. } => {
                c.websocket_streams += 1;
                self.streams.insert(
                    *stream_id,
                    Http2StreamRecord {
                        stream_id: *stream_id,
                        handshake_seen: false,
                        ..Http2StreamRecord::default()
                    },
                );
            }
            Http2Event::StreamEnded {
                stream_id,
                from,
                how,
            } => {
                let Some(r) = self.streams.get_mut(stream_id) else {
                    return;
                };
                // END_STREAM is a half-close: a RST_STREAM or GOAWAY before both halves are
                // closed is what ended the stream. A transport end only fills in when the stream
                // said nothing.
                let both_closed_before = r.end_stream.client && r.end_stream.server;
                if *how == StreamEnd::EndStream {
                    *r.end_stream.get_mut(*from) = true;
                }
                let label = how.contract_label();
                let overrides = match how {
                    StreamEnd::Reset(_) | StreamEnd::GoAway { .. } => !both_closed_before,
                    _ => r.end.is_none(),
                };
                if let Some(label) = label {
                    if overrides {
                        r.end = Some(label);
                        r.end_from = Some(*from);
                        r.end_time = Some(time);
                    }
                } else if r.end_time.is_none() {
                    r.end_from = Some(*from);
                    r.end_time = Some(time);
                }
            }
            Http2Event::GoAway {
                from,
                last_stream_id,
                error,
                debug,
            } if c.goaway.is_none() => {
                c.goaway = Some(Http2GoAwayRecord {
                    from: Some(*from),
                    time,
                    last_stream_id: *last_stream_id,
                    error: error.name().into_owned(),
                    debug: debug.clone(),
                });
            }
            Http2Event::Ping {
                from, ack: false, ..
            } => *c.pings.get_mut(*from) += 1,
            Http2Event::OrdinaryStream {
                stream_id,
                method,
                path,
                status,
                pushed,
                reset,
            } => {
                c.other_streams += 1;
                if c.other.len() < MAX_ORDINARY_KEPT {
                    c.other.push(Http2OtherStream {
                        stream_id: *stream_id,
                        method: method.clone(),
                        path: path.clone(),
                        status: *status,
                        pushed: *pushed,
                        reset: reset.map(|r| r.name().into_owned()),
                    });
                }
            }
            Http2Event::DecodingStopped { .. } => c.decoding_stopped = true,
            Http2Event::Diagnostic { diagnostic, .. } => match diagnostic.id {
                DiagnosticId::H2HeadersUnreadable
                | DiagnosticId::H2HpackError
                | DiagnosticId::MidstreamStart
                | DiagnosticId::H2FrameResync => c.headers_unreadable = true,
                _ => {}
            },
            _ => {}
        }
    }

    /// The record of WebSocket stream `stream_id`, with the connection's facts as they are now.
    pub fn stream(&self, stream_id: u32) -> Option<Http2StreamRecord> {
        let followed = self.preface_seen && !self.connection.headers_unreadable;
        self.streams.get(&stream_id).map(|r| Http2StreamRecord {
            connection: self.connection.clone(),
            flow_control: match &r.flow_control {
                Some(f) => Some(f.clone()),
                None => followed.then(Default::default),
            },
            ..r.clone()
        })
    }

    /// WebSocket streams seen, in id order.
    pub fn websocket_streams(&self) -> impl Iterator<Item = u32> + '_ {
        self.streams.keys().copied()
    }

    /// The connection's facts.
    pub fn connection(&self) -> &Http2ConnectionRecord {
        &self.connection
    }
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}
