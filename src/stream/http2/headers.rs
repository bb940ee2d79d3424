//! Header blocks: assembling HEADERS/PUSH_PROMISE + CONTINUATION, HPACK decoding with its
//! limits, and what a request or response block does to its stream.

use super::frame::{Frame, FrameHeader, flag, kind};
use super::streams::{BlockReader, Stream, StreamKind};
use super::*;

impl Http2Layer {
    /// A header block fragment (`None`: too large, skipped).
    pub(super) fn fragment(
        &mut self,
        s: usize,
        time: f64,
        h: &FrameHeader,
        f: Option<Frame<'_>>,
        out: Sink<'_>,
    ) {
        let (fragment, end_headers): (&[u8], bool) = match &f {
            Some(Frame::Headers {
                fragment,
                end_headers,
                ..
            })
            | Some(Frame::PushPromise {
                fragment,
                end_headers,
                ..
            })
            | Some(Frame::Continuation {
                fragment,
                end_headers,
                ..
            }) => (fragment, *end_headers),
            _ => (&[], h.has(flag::END_HEADERS)),
        };
        let d = &mut self.dirs[s];
        match h.kind {
            kind::CONTINUATION => {
                let Some(b) = d.block.as_mut() else {
                    return;
                };
                b.continuations += 1;
                let flood = (b.continuations == MAX_CONTINUATIONS + 1).then_some(b.stream_id);
                if let Some(sid) = flood {
                    self.diag(
                        DiagnosticId::LimitExceeded,
                        None,
                        Some(d_side(s)),
                        time,
                        format!(
                            "the header block of stream {sid} runs past {MAX_CONTINUATIONS} CONTINUATION frames (a CONTINUATION flood)"
                        ),
                        out,
                    );
                }
            }
            _ => {
                let promised = match &f {
                    Some(Frame::PushPromise { promised_id, .. }) => Some(*promised_id),
                    _ if h.kind == kind::PUSH_PROMISE => Some(0),
                    _ => None,
                };
                d.block = Some(Block {
                    stream_id: h.stream_id,
                    end_stream: h.kind == kind::HEADERS && h.has(flag::END_STREAM),
                    promised,
                    overflow: false,
                    continuations: 0,
                });
                d.block_buf.clear();
            }
        }
        let d = &mut self.dirs[s];
        let Some(b) = d.block.as_mut() else {
            return;
        };
        if f.is_none() || d.block_buf.len() + fragment.len() > MAX_HEADER_BLOCK {
            b.overflow = true;
            d.block_buf = Vec::new();
        } else if !b.overflow {
            d.block_buf.extend_from_slice(fragment);
        }
        if end_headers {
            let b = d.block.take().unwrap_or(Block {
                stream_id: h.stream_id,
                end_stream: false,
                promised: None,
                overflow: true,
                continuations: 0,
            });
            self.header_block(s, time, b, out);
        }
    }

    pub(super) fn header_block(&mut self, s: usize, time: f64, b: Block, out: Sink<'_>) {
        let side = self.dirs[s].side;
        let mut reader = BlockReader::default();
        let mut readable = true;
        if b.overflow {
            readable = false;
            self.dirs[s].decoder.lose_history();
            self.dirs[s].unknown_reported = false;
            self.diag(
                DiagnosticId::LimitExceeded,
                None,
                Some(side),
                time,
                format!(
                    "the header block of stream {} is larger than {} KiB: skipped; the {}'s HPACK table is partly unknown from here",
                    b.stream_id,
                    MAX_HEADER_BLOCK / 1024,
                    side.as_str()
                ),
                out,
            );
        } else if self.dirs[s].hpack_failed {
            readable = false;
        } else {
            let block = std::mem::take(&mut self.dirs[s].block_buf);
            let result = self.dirs[s].decoder.decode(&block, |f| reader.field(f));
            let mut block = block;
            block.clear();
            if block.capacity() <= 64 * 1024 {
                self.dirs[s].block_buf = block;
            }
            match result {
                Err(e) => {
                    readable = false;
                    self.dirs[s].hpack_failed = true;
                    self.diag(
                        DiagnosticId::H2HpackError,
                        None,
                        Some(side),
                        time,
                        format!(
                            "the header block of stream {} does not decode: {e} (RFC 9113 §4.3: COMPRESSION_ERROR); the {}'s later header blocks are not decoded",
                            b.stream_id,
                            side.as_str()
                        ),
                        out,
                    );
                }
                Ok(info) => {
                    for (size, allowed) in info.oversized_updates {
                        self.diag(
                            DiagnosticId::H2HpackError,
                            None,
                            Some(side),
                            time,
                            format!(
                                "HPACK table size update to {size} exceeds the SETTINGS_HEADER_TABLE_SIZE {allowed} its peer announced (RFC 7541 §6.3)"
                            ),
                            out,
                        );
                    }
                    if info.capped && !self.table_cap_reported[s] {
                        self.table_cap_reported[s] = true;
                        self.diag(
                            DiagnosticId::LimitExceeded,
                            None,
                            Some(side),
                            time,
                            format!(
                                "the {}'s HPACK table holds more than {} KiB: older entries are dropped and fields that refer to them are unreadable",
                                side.as_str(),
                                hpack::MAX_TABLE_BYTES / 1024
                            ),
                            out,
                        );
                    }
                }
            }
        }
        if (!readable || reader.unknown_fields() > 0) && !self.dirs[s].unknown_reported {
            self.dirs[s].unknown_reported = true;
            if readable {
                self.diag(
                    DiagnosticId::H2HeadersUnreadable,
                    None,
                    Some(side),
                    time,
                    format!(
                        "header fields of the {} refer to HPACK table entries this capture does not hold (it started late or lost bytes): they are unreadable; WebSocket streams are recognised from their DATA",
                        side.as_str()
                    ),
                    out,
                );
            }
        }
        let unreadable = !readable;
        if let Some(promised) = b.promised {
            if promised != 0 && side == Side::Server {
                let mut st = Stream::new(StreamKind::Ordinary);
                let req = reader.into_request();
                st.method = req.method;
                st.path = req.path;
                st.pushed = true;
                st.closed[0] = true;
                self.streams.highest[1] = self.streams.highest[1].max(promised);
                self.lowest_opened[1].get_or_insert(promised);
                self.open_stream(promised, st, time, out);
            }
            return;
        }
        match side {
            Side::Client => self.request_block(b, reader, unreadable, time, out),
            Side::Server => self.response_block(b, reader, unreadable, time, out),
        }
        if b.end_stream {
            self.close_half(b.stream_id, side, time, out);
        }
    }

    pub(super) fn request_block(
        &mut self,
        b: Block,
        reader: BlockReader,
        unreadable: bool,
        time: f64,
        out: Sink<'_>,
    ) {
        let sid = b.stream_id;
        if self.streams.get(sid).is_some() {
            return; // trailers
        }
        if sid.is_multiple_of(2) {
            return self.fatal(
                0,
                time,
                format!("the client opened stream {sid}, an even id (RFC 9113 §5.1.1: client streams are odd)"),
                out,
            );
        }
        if sid <= self.streams.highest[0] && !self.predates_capture(sid) {
            // A closed stream (trailers after we stopped tracking it), or a reused id.
            return;
        }
        self.streams.highest[0] = self.streams.highest[0].max(sid);
        self.lowest_opened[0].get_or_insert(sid);
        let head = reader.into_request();
        let kind = if unreadable {
            StreamKind::Unknown
        } else if head.is_websocket_connect() {
            StreamKind::WebSocket {
                handshake_seen: true,
                accepted: None,
            }
        } else if head.unknown_fields > 0
            && (head.method.is_none()
                || (head.method.as_deref() == Some("CONNECT") && head.protocol.is_none()))
        {
            // The fields that would tell were unreadable: decided by the DATA.
            StreamKind::Unknown
        } else {
            StreamKind::Ordinary
        };
        let mut st = Stream::new(kind);
        st.method = head.method.clone();
        st.path = head.path.clone();
        if !self.open_stream(sid, st, time, out) {
            return;
        }
        if matches!(kind, StreamKind::WebSocket { .. }) {
            self.flow.follow(sid);
            out(Out::Event(Http2Event::WebSocketRequest {
                stream_id: sid,
                head: Box::new(head),
            }));
            let without = match self.server_connect_protocol {
                Some(true) => None,
                Some(false) => Some("the server's SETTINGS_ENABLE_CONNECT_PROTOCOL is 0"),
                None if self.server_settings_seen => {
                    Some("the server's SETTINGS do not include SETTINGS_ENABLE_CONNECT_PROTOCOL")
                }
                None if self.from_start => Some("no SETTINGS from the server were seen before it"),
                None => None,
            };
            if let Some(why) = without {
                self.diag(
                    DiagnosticId::H2ConnectWithoutSetting,
                    Some(sid),
                    Some(Side::Client),
                    time,
                    format!(
                        "stream {sid}: extended CONNECT for a WebSocket, but {why} (RFC 8441 §4: a client MUST NOT send :protocol before the server enabled it)"
                    ),
                    out,
                );
            }
        }
    }

    pub(super) fn response_block(
        &mut self,
        b: Block,
        reader: BlockReader,
        unreadable: bool,
        time: f64,
        out: Sink<'_>,
    ) {
        let sid = b.stream_id;
        if self.streams.get(sid).is_none() {
            if !self.predates_capture(sid) {
                return;
            }
            self.open_stream(sid, Stream::new(StreamKind::Unknown), time, out);
        }
        let Some(st) = self.streams.get_mut(sid) else {
            return;
        };
        if unreadable {
            return;
        }
        let is_response = reader.is_response();
        let head = reader.into_response();
        if !is_response || head.is_interim() {
            return; // trailers, or a 1xx
        }
        if st.status.is_some() {
            return;
        }
        st.status = head.status;
        if let StreamKind::WebSocket { accepted, .. } = &mut st.kind {
            *accepted = head.status.map(|_| head.is_success());
            out(Out::Event(Http2Event::WebSocketResponse {
                stream_id: sid,
                head: Box::new(head),
            }));
        }
    }
}
