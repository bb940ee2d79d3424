//! The layers of a connection's byte streams, between TCP reassembly and the WebSocket framer.
//!
//! Every layer has the same shape: per direction, stream pieces ([`Chunk`]: bytes, or a hole the
//! capture lost) go in, in stream order, each with the capture time of the packet that delivered
//! it; pieces for the layer above and events for the analysis come out ([`Out`]), pushed to a
//! callback so that bytes a layer produces (decrypted records, HTTP/2 DATA payloads) are handed
//! on without a copy. A connection is a stack chosen by content:
//!
//! ```text
//! TCP reassembly ─► [tls] ─► http1 (upgrade) ─► WebSocket framer
//!                         └► http2 ──(one channel per extended-CONNECT stream)──► WebSocket framer
//! ```
//!
//! Layers see directions as [`Side`]s (client, server): the stack is built once the roles are
//! known (the ClientHello's or the request's sender is the client).

pub mod http2;
pub mod tls;

use crate::diag::Side;

/// One piece of a direction's byte stream, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// Bytes that follow the previous piece with no hole between.
    Data(&'a [u8]),
    /// This many bytes are missing (capture loss); the next `Data` follows the hole.
    Gap(u64),
}

/// How a direction's stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The sender's FIN was reached in stream order.
    Fin,
    /// A RST (from either side) ended the connection.
    Rst,
    /// The capture ended (or analysis stopped following the connection) with the stream open.
    CaptureEnd,
}

/// What a layer pushes out.
#[derive(Debug)]
pub enum Out<'a, E> {
    /// A piece of the byte stream for the layer above. `channel` is 0 for layers that carry one
    /// stream per direction (TLS, HTTP/1.1); HTTP/2 uses the stream id.
    Data {
        /// Which inner stream (0, or an HTTP/2 stream id).
        channel: u32,
        /// The direction.
        from: Side,
        /// The bytes or the hole.
        chunk: Chunk<'a>,
    },
    /// Something the analysis should know (layer-specific).
    Event(E),
}

/// A stream layer. `time` is the capture time of the packet that delivered the piece; what the
/// layer pushes out while handling it happened at that time.
pub trait Layer {
    /// The layer's own events.
    type Event;

    /// The next piece of `from`'s stream.
    fn push(
        &mut self,
        from: Side,
        time: f64,
        chunk: Chunk<'_>,
        out: &mut dyn FnMut(Out<'_, Self::Event>),
    );

    /// `from`'s stream ended: flush what is held and say what was left unfinished.
    fn end(&mut self, from: Side, time: f64, how: End, out: &mut dyn FnMut(Out<'_, Self::Event>));
}
