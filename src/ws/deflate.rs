//! One direction's compressed message payloads (RFC 7692 permessage-deflate, already unmasked and in frame
//! order) -> inflated bytes in bounded chunks, or an `InflateError` that spoils only the message it hits.
//!
//! RFC 7692 §7.2.2: "An endpoint uses the following algorithm to decompress a message. 1. Append 4 octets of
//! 0x00 0x00 0xff 0xff to the tail end of the payload of the message. 2. Decompress the resulting data using
//! DEFLATE." Memory is fixed: an 8 KiB output buffer (+ a 32 KiB history copy under context takeover) and the
//! decoder's own state and window (about 19 KiB), whatever the message size. Nothing is allocated before the
//! first compressed byte, and a [`DecoderBudget`] shared by all connections caps how many decoders live at
//! once.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use flate2::{Decompress, FlushDecompress, Status};

/// Output chunk size: what `push`/`end_message` hand to the callback at most per call. Bounded so a
/// decompression bomb never allocates more than this.
const OUT_CHUNK: usize = 8 * 1024;

/// The DEFLATE window (2^15): the most history a later message can reference.
const WINDOW: usize = 32 * 1024;

/// RFC 7692 §7.2.2: the tail removed by the sender and appended by the receiver.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Negotiated permessage-deflate parameters for the direction being inflated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InflateParams {
    /// `*_no_context_takeover` was agreed for the sender: every message starts with an empty window.
    pub no_context_takeover: bool,
    /// The sender's `*_max_window_bits` (8..=15). Recorded only: the decoder always uses a 15-bit window,
    /// which decodes every smaller one (and flate2 panics on 8).
    pub max_window_bits: u8,
}

impl Default for InflateParams {
    /// Context takeover on, 15-bit window: the RFC 7692 defaults.
    fn default() -> Self {
        Self {
            no_context_takeover: false,
            max_window_bits: 15,
        }
    }
}

/// Why a message could not be inflated. Only that message is lost; see `Inflater` for what follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The compressed data is not valid DEFLATE; zlib's message.
    Corrupt(String),
    /// The message inflated past the per-message output limit (decompression bomb or oversized message).
    OutputLimit {
        /// The limit that was hit, in bytes.
        limit: u64,
    },
    /// Earlier compressed data of this direction was not seen (capture started mid-stream, a TCP gap, or an
    /// earlier failure) and context takeover is on, so back-references cannot be resolved.
    ContextLost,
    /// The [`DecoderBudget`] was spent: this many other directions hold a decoder. Under context takeover
    /// the direction never gets one (its window would be incomplete); otherwise the next message tries again.
    DecoderLimit {
        /// The budget's size.
        limit: usize,
    },
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::Corrupt(msg) => write!(f, "corrupt deflate data: {msg}"),
            InflateError::OutputLimit { limit } => {
                write!(f, "message inflates to more than {limit} bytes")
            }
            InflateError::ContextLost => {
                f.write_str("compression context lost: earlier compressed data was not seen")
            }
            InflateError::DecoderLimit { limit } => {
                write!(
                    f,
                    "more than {limit} directions were being inflated at once"
                )
            }
        }
    }
}

impl std::error::Error for InflateError {}

/// Where the current message stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Msg {
    /// Between messages.
    Idle,
    /// Inside a message, decoding.
    Active,
    /// The message's DEFLATE stream ended with a BFINAL block (RFC 7692 §7.2.3.4); remaining bytes are the
    /// sender's padding and are ignored.
    StreamEnded,
    /// The message failed; the error is repeated by `end_message`.
    Failed(InflateError),
}

/// How many [`Inflater`]s may hold a decoder at once, shared by every connection of a run (a clone shares
/// the count). A decoder with its window, history and output buffer takes up to about 85 KiB, so this is
/// what bounds the memory of many compressed connections.
#[derive(Clone, Debug)]
pub struct DecoderBudget {
    live: Arc<AtomicUsize>,
    max: usize,
}

impl DecoderBudget {
    /// At most `max` decoders at once.
    pub fn new(max: usize) -> Self {
        Self {
            live: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// No limit.
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// The limit.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Decoders alive now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    fn acquire(&self) -> bool {
        self.live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    fn release(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// permessage-deflate decoder for one direction of one connection. Keeps the LZ77 window across messages
/// (context takeover) unless `no_context_takeover` was negotiated.
///
/// Failure model: an error poisons only the current message. Under context takeover the window is then
/// wrong, so the following messages fail with `ContextLost` (unless `set_resume_after_loss(true)`); under
/// `no_context_takeover` the next message starts fresh.
pub struct Inflater {
    params: InflateParams,
    limit: u64,
    /// Made at the first compressed byte (counted in `budget`), with `out`.
    decoder: Option<Decompress>,
    budget: DecoderBudget,
    /// Context takeover and the budget refused a decoder: every message fails with `DecoderLimit`.
    refused: bool,
    /// Output buffer, allocated with the decoder.
    out: Box<[u8]>,
    /// While hibernating: `history`, linearised and deflated (idle connections keep their
    /// context in a few KiB instead of 32, and give their decoder back to the budget).
    packed_history: Vec<u8>,
    /// Last `WINDOW` output bytes (ring), kept under context takeover only: after a BFINAL block the decoder
    /// must be restarted with this as its dictionary (RFC 7692 §7.2.2: the next message "MUST" be
    /// decompressed "using the LZ77 sliding window used to process the last compressed message").
    history: Vec<u8>,
    history_pos: usize,
    msg: Msg,
    /// Inflated bytes of the current message.
    produced: u64,
    /// The current message has had compressed input (an empty payload gets no tail: see `end_message`).
    fed: bool,
    /// The window is unknown (context takeover only).
    context_lost: bool,
    /// Opt-in: after a loss, decode later messages with a fresh decoder (see `set_resume_after_loss`).
    resume_after_loss: bool,
    /// The decoder was restarted after a loss: "distance too far back" now means `ContextLost`.
    resumed: bool,
    /// Restart the decoder (empty window) before the next message.
    reset_pending: bool,
    /// Restart the decoder with `history` as its window before the next message (after BFINAL).
    restore_pending: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("params", &self.params)
            .field("limit", &self.limit)
            .field("msg", &self.msg)
            .field("produced", &self.produced)
            .field("context_lost", &self.context_lost)
            .field("resume_after_loss", &self.resume_after_loss)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decoder for one direction; each message may inflate to at most `max_output_per_message` bytes.
    pub fn new(params: InflateParams, max_output_per_message: u64) -> Self {
        Self::with_budget(params, max_output_per_message, DecoderBudget::unlimited())
    }

    /// As `new`, drawing its decoder from `budget`.
    pub fn with_budget(
        params: InflateParams,
        max_output_per_message: u64,
        budget: DecoderBudget,
    ) -> Self {
        Self {
            params,
            limit: max_output_per_message,
            decoder: None,
            budget,
            refused: false,
            out: Box::default(),
            packed_history: Vec::new(),
            history: Vec::new(),
            history_pos: 0,
            msg: Msg::Idle,
            produced: 0,
            fed: false,
            context_lost: false,
            resume_after_loss: false,
            resumed: false,
            reset_pending: false,
            restore_pending: false,
        }
    }

    /// The parameters this decoder was built with.
    pub fn params(&self) -> InflateParams {
        self.params
    }

    /// True while messages fail with `ContextLost` (context takeover, history unknown).
    pub fn is_context_lost(&self) -> bool {
        self.context_lost
    }

    /// Opt-in recovery under context takeover: after a loss, decode each later message with an empty window
    /// instead of failing it outright. This never invents data: a message that references lost history makes
    /// zlib stop with "invalid distance too far back", which is reported as `ContextLost`; a message that
    /// decodes is exact, and the window rebuilds from it. Partial output of a failing message may already
    /// have been passed to the callback, as for any error. Off by default.
    pub fn set_resume_after_loss(&mut self, on: bool) {
        self.resume_after_loss = on;
    }

    /// The decoder's sliding window history is unknown (capture started mid-stream or a TCP gap ate
    /// compressed bytes). Until a message can be inflated without history (only under
    /// no_context_takeover), messages fail with ContextLost. A message in progress fails with `ContextLost`.
    pub fn lose_context(&mut self) {
        if matches!(self.msg, Msg::Active | Msg::StreamEnded) {
            self.msg = Msg::Failed(InflateError::ContextLost);
        }
        if self.params.no_context_takeover {
            self.reset_pending = true;
        } else {
            self.context_lost = true;
            self.resumed = false;
        }
    }

    /// Starts a message (the first frame with RSV1 set). Under no_context_takeover this resets the decoder.
    /// Starting a new message while one is still open abandons it; under context takeover that loses the
    /// context, since the sender's window holds the part never seen.
    pub fn begin_message(&mut self) {
        if matches!(self.msg, Msg::Active | Msg::StreamEnded) {
            self.note_abandoned();
        }
        if self.params.no_context_takeover {
            // RFC 7692 §7.2.2: with "*_no_context_takeover" the receiver "MAY decompress each new message with
            // an empty LZ77 sliding window".
            self.reset_decoder(false);
            self.context_lost = false;
        } else if self.context_lost {
            if self.resume_after_loss {
                self.reset_decoder(false);
                self.context_lost = false;
                self.resumed = true;
            }
        } else if self.restore_pending {
            self.reset_decoder(true);
        } else if self.reset_pending {
            self.reset_decoder(false);
        }
        self.msg = Msg::Active;
        self.produced = 0;
        self.fed = false;
    }

    /// Feeds the next compressed chunk of the current message (as frames and TCP segments arrive); inflated
    /// bytes go to `out` in chunks of at most 8 KiB. Calling it between messages starts one. After a message
    /// failed, later chunks of that message are ignored and return `Ok` (the error was already returned).
    pub fn push<F: FnMut(&[u8])>(
        &mut self,
        compressed: &[u8],
        out: &mut F,
    ) -> Result<(), InflateError> {
        if self.msg == Msg::Idle {
            self.begin_message();
        }
        match self.msg {
            Msg::Failed(_) | Msg::StreamEnded => return Ok(()),
            Msg::Active | Msg::Idle => {}
        }
        if self.refused {
            let limit = self.budget.max();
            return Err(self.fail(InflateError::DecoderLimit { limit }));
        }
        if self.context_lost {
            return Err(self.fail(InflateError::ContextLost));
        }
        if compressed.is_empty() {
            return Ok(());
        }
        self.fed = true;
        self.inflate(compressed, out)
    }

    /// Ends the message: feeds the `00 00 ff ff` tail (RFC 7692 §7.2.2) and returns the message's total
    /// inflated size. A message that failed returns its error again. An empty compressed message (no bytes,
    /// or a single `00`) is 0 bytes.
    pub fn end_message<F: FnMut(&[u8])>(&mut self, out: &mut F) -> Result<u64, InflateError> {
        if self.msg == Msg::Idle {
            self.begin_message();
        }
        if self.msg == Msg::Active && self.refused {
            let limit = self.budget.max();
            self.fail(InflateError::DecoderLimit { limit });
        } else if self.msg == Msg::Active && self.context_lost {
            self.fail(InflateError::ContextLost);
        }
        let result = match std::mem::replace(&mut self.msg, Msg::Active) {
            Msg::Failed(e) => Err(e),
            Msg::StreamEnded => Ok(self.produced),
            // A message with no payload bytes at all: the tail alone is not a complete DEFLATE block
            // (`00 00 ff ff` opens a stored block of 0xff00 bytes), so it is not fed; the message is empty.
            Msg::Active | Msg::Idle if !self.fed => Ok(0),
            Msg::Active | Msg::Idle => self.inflate(&TAIL, out).map(|()| self.produced),
        };
        self.msg = Msg::Idle;
        if self.params.no_context_takeover {
            self.reset_pending = true;
        }
        result
    }

    /// Between messages, releases what can be rebuilt: the decoder (and its place in the budget)
    /// and the output buffer are dropped and the history is kept deflated, to be restored
    /// exactly by the next message. For idle connections; a no-op inside a message.
    pub fn hibernate(&mut self) {
        if self.msg != Msg::Idle || self.decoder.is_none() {
            return;
        }
        self.drop_decoder();
        if self.params.no_context_takeover || self.context_lost {
            // Nothing to keep: the next message starts from an empty window anyway.
            self.history = Vec::new();
            self.history_pos = 0;
            self.reset_pending = false;
            self.restore_pending = false;
            return;
        }
        let (newer, older) = self.history.split_at(self.history_pos);
        let mut packer = flate2::Compress::new(flate2::Compression::fast(), false);
        let mut packed = Vec::with_capacity(self.history.len() / 4 + 64);
        for part in [older, newer] {
            let mut rest = part;
            while !rest.is_empty() {
                packed.reserve(rest.len() / 2 + 64);
                let before = packer.total_in();
                let _ = packer.compress_vec(rest, &mut packed, flate2::FlushCompress::None);
                rest = &rest[(packer.total_in() - before) as usize..];
            }
        }
        loop {
            packed.reserve(1024);
            match packer.compress_vec(&[], &mut packed, flate2::FlushCompress::Finish) {
                Ok(Status::StreamEnd) | Err(_) => break,
                Ok(_) => {}
            }
        }
        packed.shrink_to_fit();
        self.packed_history = packed;
        self.history = Vec::new();
        self.history_pos = 0;
        // The decoder made by the next message must get the window back.
        self.reset_pending = false;
        self.restore_pending = true;
    }

    /// Unpacks the history kept by `hibernate`.
    fn unpack_history(&mut self) {
        if self.packed_history.is_empty() {
            return;
        }
        let mut unpacker = Decompress::new(false);
        let mut history = Vec::with_capacity(WINDOW);
        let _ =
            unpacker.decompress_vec(&self.packed_history, &mut history, FlushDecompress::Finish);
        // The ring's write position is its length until it is full (see `remember`).
        self.history_pos = history.len() % WINDOW;
        self.history = history;
        self.packed_history = Vec::new();
    }

    /// Frees the decoder and gives its place in the budget back.
    fn drop_decoder(&mut self) {
        if self.decoder.take().is_some() {
            self.out = Box::default();
            self.budget.release();
        }
    }

    /// The decoder, made on first use if the budget allows.
    fn decoder(&mut self) -> Result<&mut Decompress, InflateError> {
        if self.decoder.is_none() {
            if !self.budget.acquire() {
                // Under context takeover a later message needs this one's window: never decode again.
                self.refused = !self.params.no_context_takeover;
                return Err(InflateError::DecoderLimit {
                    limit: self.budget.max(),
                });
            }
            // Raw DEFLATE (no zlib header), 15-bit window (see `InflateParams::max_window_bits`).
            self.decoder = Some(Decompress::new(false));
            self.out = vec![0u8; OUT_CHUNK].into_boxed_slice();
        }
        Ok(self.decoder.as_mut().expect("bug: decoder just made"))
    }

    /// Records a failure of the current message and what it does to the following ones.
    fn fail(&mut self, e: InflateError) -> InflateError {
        self.msg = Msg::Failed(e.clone());
        if self.params.no_context_takeover {
            self.reset_pending = true;
        } else {
            // The decoder stopped mid-message: its window no longer matches the sender's.
            self.context_lost = true;
            self.resumed = false;
        }
        e
    }

    /// A message was left open: under context takeover the sender's window includes bytes never decoded.
    fn note_abandoned(&mut self) {
        if !self.params.no_context_takeover && self.msg == Msg::Active {
            self.context_lost = true;
            self.resumed = false;
        }
    }

    fn reset_decoder(&mut self, restore_history: bool) {
        self.unpack_history();
        if let Some(decoder) = self.decoder.as_mut() {
            decoder.reset(false);
        }
        self.reset_pending = false;
        self.restore_pending = false;
        if restore_history && !self.history.is_empty() {
            let (newer, older) = self.history.split_at(self.history_pos);
            let mut window = Vec::with_capacity(self.history.len());
            window.extend_from_slice(older);
            window.extend_from_slice(newer);
            // A hibernated direction has history but no decoder: make one (from the budget).
            let restored = match self.decoder() {
                Ok(d) => d.set_dictionary(&window).is_ok(),
                Err(_) => false,
            };
            if !restored {
                self.context_lost = true;
            }
        } else {
            self.history.clear();
            self.history_pos = 0;
        }
    }

    /// Runs the decoder over `input`, streaming output to `out`, enforcing the limit.
    fn inflate<F: FnMut(&[u8])>(&mut self, input: &[u8], out: &mut F) -> Result<(), InflateError> {
        if let Err(e) = self.decoder() {
            return Err(self.fail(e));
        }
        let mut consumed = 0usize;
        loop {
            let decoder = self.decoder.as_mut().expect("bug: decoder made above");
            // At most one byte past the limit is ever decoded: enough to know it was exceeded.
            let allowance = self.limit - self.produced;
            let room = usize::try_from(allowance.saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(self.out.len());
            let in_before = decoder.total_in();
            let out_before = decoder.total_out();
            let status = decoder.decompress(
                &input[consumed..],
                &mut self.out[..room],
                FlushDecompress::None,
            );
            let used = (decoder.total_in() - in_before) as usize;
            let made = (decoder.total_out() - out_before) as usize;
            consumed += used;
            // Bytes zlib produced before stopping are correct, even when it then reports an error.
            let within = made.min(usize::try_from(allowance).unwrap_or(usize::MAX));
            self.emit(within, out);
            let status = match status {
                Ok(s) => s,
                Err(e) => {
                    let msg = e
                        .message()
                        .map(str::to_string)
                        .unwrap_or_else(|| e.to_string());
                    let err = if self.resumed && msg.contains("too far back") {
                        InflateError::ContextLost
                    } else {
                        InflateError::Corrupt(msg)
                    };
                    return Err(self.fail(err));
                }
            };
            if within < made {
                return Err(self.fail(InflateError::OutputLimit { limit: self.limit }));
            }
            if status == Status::StreamEnd {
                // RFC 7692 §7.2.3.4: a DEFLATE block with BFINAL set ends the sender's stream; the next
                // message continues the same window in a new stream.
                self.msg = Msg::StreamEnded;
                if self.params.no_context_takeover {
                    self.reset_pending = true;
                } else {
                    self.restore_pending = true;
                }
                return Ok(());
            }
            if consumed == input.len() && made < room {
                return Ok(());
            }
            if used == 0 && made == 0 {
                // No progress possible (zlib's Z_BUF_ERROR): the decoder needs input this message does not have.
                return Ok(());
            }
        }
    }

    /// Passes the first `n` bytes of the output buffer on and records them as history.
    fn emit<F: FnMut(&[u8])>(&mut self, n: usize, out: &mut F) {
        if n == 0 {
            return;
        }
        self.produced += n as u64;
        let data = &self.out[..n];
        out(data);
        if !self.params.no_context_takeover {
            remember(&mut self.history, &mut self.history_pos, data);
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        self.drop_decoder();
    }
}

/// Appends inflated bytes to the `WINDOW`-byte history ring; `pos` is where the next byte goes.
fn remember(history: &mut Vec<u8>, pos: &mut usize, data: &[u8]) {
    let mut rest = &data[data.len().saturating_sub(WINDOW)..];
    while !rest.is_empty() {
        let n = if history.len() < WINDOW {
            let n = (WINDOW - history.len()).min(rest.len());
            history.extend_from_slice(&rest[..n]);
            n
        } else {
            let n = (WINDOW - *pos).min(rest.len());
            history[*pos..*pos + n].copy_from_slice(&rest[..n]);
            n
        };
        *pos = (*pos + n) % WINDOW;
        rest = &rest[n..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};
    use proptest::prelude::*;
    use std::time::Instant;

    /// Compresses `data` as the next message of `c`: sync flush, `00 00 ff ff` kept (the caller strips it).
    fn deflate_sync(c: &mut Compress, data: &[u8]) -> Vec<u8> {
        let start = c.total_in();
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        loop {
            let done = (c.total_in() - start) as usize;
            out.reserve(4096);
            c.compress_vec(&data[done..], &mut out, FlushCompress::Sync)
                .unwrap();
            if (c.total_in() - start) as usize == data.len() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    /// RFC 7692 §7.2.1 sender: compress, then remove the trailing `00 00 ff ff`.
    fn deflate_messages(msgs: &[Vec<u8>], window_bits: u8, takeover: bool) -> Vec<Vec<u8>> {
        let mut c = Compress::new_with_window_bits(Compression::default(), false, window_bits);
        msgs.iter()
            .map(|m| {
                if !takeover {
                    c.reset();
                }
                let mut out = deflate_sync(&mut c, m);
                if out.is_empty() {
                    // An empty message right after a sync flush: zlib has nothing to emit, and
                    // an empty payload is what goes on the wire.
                    assert!(m.is_empty());
                    return out;
                }
                assert!(out.ends_with(&TAIL));
                out.truncate(out.len() - 4);
                out
            })
            .collect()
    }

    /// Inflates one message given as chunks; checks the returned size against the bytes seen.
    fn inflate(inf: &mut Inflater, chunks: &[&[u8]]) -> Result<Vec<u8>, InflateError> {
        let mut v = Vec::new();
        inf.begin_message();
        for c in chunks {
            inf.push(c, &mut |d: &[u8]| v.extend_from_slice(d))?;
        }
        let n = inf.end_message(&mut |d: &[u8]| v.extend_from_slice(d))?;
        assert_eq!(n, v.len() as u64);
        Ok(v)
    }

    fn takeover() -> Inflater {
        Inflater::new(InflateParams::default(), 1 << 20)
    }

    fn no_takeover() -> Inflater {
        Inflater::new(
            InflateParams {
                no_context_takeover: true,
                max_window_bits: 15,
            },
            1 << 20,
        )
    }

    #[test]
    fn rfc7692_7_2_3_1_single_and_fragmented() {
        // RFC 7692 §7.2.3.1: "0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00" is "Hello"; fragmented as
        // "0xf2 0x48 0xcd" + "0xc9 0xc9 0x07 0x00".
        let mut inf = takeover();
        assert_eq!(
            inflate(&mut inf, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
            b"Hello"
        );
        let mut inf = takeover();
        assert_eq!(
            inflate(&mut inf, &[&[0xf2, 0x48, 0xcd], &[0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
            b"Hello"
        );
        // Every split point, byte by byte.
        let msg = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        for cut in 0..=msg.len() {
            let mut inf = takeover();
            assert_eq!(
                inflate(&mut inf, &[&msg[..cut], &msg[cut..]]).unwrap(),
                b"Hello",
                "cut {cut}"
            );
        }
    }

    #[test]
    fn rfc7692_7_2_3_2_shared_window() {
        // RFC 7692 §7.2.3.2: the second "Hello" is "0xf2 0x00 0x11 0x00 0x00", a back-reference into the first.
        let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let mut inf = takeover();
        assert_eq!(inflate(&mut inf, &[&first]).unwrap(), b"Hello");
        assert_eq!(inflate(&mut inf, &[&second]).unwrap(), b"Hello");
        // Without the first message's window it cannot be decoded.
        let mut fresh = takeover();
        match inflate(&mut fresh, &[&second]) {
            Err(InflateError::Corrupt(msg)) => assert!(msg.contains("too far back"), "{msg}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rfc7692_7_2_3_3_stored_block() {
        // RFC 7692 §7.2.3.3: "0x00 0x05 0x00 0xfa 0xff 0x48 0x65 0x6c 0x6c 0x6f 0x00".
        let mut inf = takeover();
        let msg = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        assert_eq!(inflate(&mut inf, &[&msg]).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_4_bfinal_block() {
        // RFC 7692 §7.2.3.4: "0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00": BFINAL=1 block, then a padding byte.
        let mut inf = takeover();
        assert_eq!(
            inflate(
                &mut inf,
                &[&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]]
            )
            .unwrap(),
            b"Hello"
        );
        // The window survives the BFINAL block: a next message referencing "Hello" still decodes.
        let mut c = Compress::new(Compression::default(), false);
        c.set_dictionary(b"Hello").unwrap();
        let mut next = deflate_sync(&mut c, b"Hello, Hello");
        next.truncate(next.len() - 4);
        assert_eq!(inflate(&mut inf, &[&next]).unwrap(), b"Hello, Hello");
        // Under no_context_takeover the next message starts fresh after BFINAL too.
        let mut inf = no_takeover();
        assert_eq!(
            inflate(
                &mut inf,
                &[&[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]]
            )
            .unwrap(),
            b"Hello"
        );
        assert_eq!(
            inflate(&mut inf, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
            b"Hello"
        );
    }

    #[test]
    fn rfc7692_7_2_3_5_two_blocks() {
        // RFC 7692 §7.2.3.5: "0xf2 0x48 0x05 0x00 0x00 0x00 0xff 0xff 0xca 0xc9 0xc9 0x07 0x00".
        let mut inf = takeover();
        let msg = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        assert_eq!(inflate(&mut inf, &[&msg]).unwrap(), b"Hello");
    }

    fn json_messages() -> Vec<Vec<u8>> {
        (0..3)
            .map(|i| format!(r#"{{"type":"update","channel":"ticker","seq":{i},"price":"1234.5{i}","qty":"0.01"}}"#))
            .map(String::into_bytes)
            .collect()
    }

    #[test]
    fn context_takeover_three_messages() {
        let msgs = json_messages();
        let wire = deflate_messages(&msgs, 15, true);
        // Later messages reference earlier ones, so they are much smaller.
        assert!(
            wire[2].len() * 2 < wire[0].len(),
            "{} vs {}",
            wire[2].len(),
            wire[0].len()
        );
        let mut inf = takeover();
        for (m, w) in msgs.iter().zip(&wire) {
            assert_eq!(&inflate(&mut inf, &[w]).unwrap(), m);
        }
        // The third message alone cannot be decoded.
        assert!(matches!(
            inflate(&mut takeover(), &[&wire[2]]),
            Err(InflateError::Corrupt(_))
        ));
    }

    #[test]
    fn no_context_takeover_messages_are_independent() {
        let msgs = json_messages();
        let wire = deflate_messages(&msgs, 15, false);
        let mut inf = no_takeover();
        for (m, w) in msgs.iter().zip(&wire).rev() {
            assert_eq!(&inflate(&mut inf, &[w]).unwrap(), m);
        }
        // A corrupt message spoils only itself.
        let mut inf = no_takeover();
        assert!(matches!(
            inflate(&mut inf, &[&[0xff, 0xff, 0xff]]),
            Err(InflateError::Corrupt(_))
        ));
        assert_eq!(&inflate(&mut inf, &[&wire[1]]).unwrap(), &msgs[1]);
    }

    #[test]
    fn error_under_takeover_loses_the_context() {
        let msgs = json_messages();
        let wire = deflate_messages(&msgs, 15, true);
        let mut inf = takeover();
        assert_eq!(&inflate(&mut inf, &[&wire[0]]).unwrap(), &msgs[0]);
        assert!(matches!(
            inflate(&mut inf, &[&[0xff, 0xff, 0xff]]),
            Err(InflateError::Corrupt(_))
        ));
        assert!(inf.is_context_lost());
        assert_eq!(
            inflate(&mut inf, &[&wire[1]]),
            Err(InflateError::ContextLost)
        );
        assert_eq!(
            inflate(&mut inf, &[&wire[2]]),
            Err(InflateError::ContextLost)
        );
    }

    #[test]
    fn window_bits_round_trips() {
        // Messages larger than a 9-bit window, with repeats far apart.
        let msgs: Vec<Vec<u8>> = (0..4u32)
            .map(|i| {
                (0..3000u32)
                    .map(|j| ((j * 7 + i) % 251) as u8 ^ (j / 600) as u8)
                    .collect()
            })
            .collect();
        for bits in [9u8, 12, 15] {
            for takeover in [true, false] {
                let wire = deflate_messages(&msgs, bits, takeover);
                let mut inf = Inflater::new(
                    InflateParams {
                        no_context_takeover: !takeover,
                        max_window_bits: bits,
                    },
                    1 << 20,
                );
                for (m, w) in msgs.iter().zip(&wire) {
                    assert_eq!(
                        &inflate(&mut inf, &[w]).unwrap(),
                        m,
                        "bits {bits} takeover {takeover}"
                    );
                }
            }
        }
        // 8 is legal in RFC 7692 but panics in flate2: it must never reach it.
        let mut inf = Inflater::new(
            InflateParams {
                no_context_takeover: false,
                max_window_bits: 8,
            },
            100,
        );
        assert_eq!(
            inflate(&mut inf, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
            b"Hello"
        );
    }

    /// A 1 GiB run of zeros as one message payload (about 1 MB): one compressed MiB, then the steady-state
    /// MiB repeated.
    fn gigabyte_bomb() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let zeros = vec![0u8; 1 << 20];
        let mut c = Compress::new(Compression::best(), false);
        let first = deflate_sync(&mut c, &zeros);
        let second = deflate_sync(&mut c, &zeros);
        let third = deflate_sync(&mut c, &zeros);
        assert_eq!(second, third, "the compressor reached a steady state");
        (first, second, zeros)
    }

    #[test]
    fn decompression_bomb_stops_at_the_limit() {
        let (first, steady, _) = gigabyte_bomb();
        // Sanity: 4 MiB built the same way inflates exactly.
        let mut small = first.clone();
        for _ in 0..3 {
            small.extend_from_slice(&steady);
        }
        small.truncate(small.len() - 4);
        let mut inf = Inflater::new(InflateParams::default(), 8 << 20);
        let mut total = 0u64;
        inf.push(&small, &mut |d: &[u8]| total += d.len() as u64)
            .unwrap();
        assert_eq!(
            inf.end_message(&mut |d: &[u8]| total += d.len() as u64),
            Ok(4 << 20)
        );
        assert_eq!(total, 4 << 20);

        // The bomb: 1 GiB of output from about a megabyte of input, fed in 64 KiB pieces.
        let limit = 16u64 << 20;
        let mut inf = Inflater::new(InflateParams::default(), limit);
        let started = Instant::now();
        let (mut total, mut biggest, mut fed) = (0u64, 0usize, 0usize);
        let mut err = None;
        let mut sink = |d: &[u8]| {
            total += d.len() as u64;
            biggest = biggest.max(d.len());
        };
        'feed: for i in 0..1024 {
            let piece = if i == 0 { &first } else { &steady };
            for chunk in piece.chunks(64 * 1024) {
                fed += chunk.len();
                if let Err(e) = inf.push(chunk, &mut sink) {
                    err = Some(e);
                    break 'feed;
                }
            }
        }
        assert_eq!(err, Some(InflateError::OutputLimit { limit }));
        assert_eq!(
            inf.end_message(&mut sink),
            Err(InflateError::OutputLimit { limit })
        );
        assert_eq!(total, limit);
        assert!(biggest <= OUT_CHUNK);
        assert!(fed < 64 * 1024 * 32, "stopped early: fed {fed} bytes");
        assert!(
            started.elapsed().as_secs() < 20,
            "took {:?}",
            started.elapsed()
        );
        // A limit of zero: even one byte is too much, an empty message is fine.
        let mut inf = Inflater::new(InflateParams::default(), 0);
        assert_eq!(inflate(&mut inf, &[&[0x00]]), Ok(Vec::new()));
        assert!(!inf.is_context_lost());
        assert_eq!(
            inflate(&mut inf, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]),
            Err(InflateError::OutputLimit { limit: 0 })
        );
    }

    #[test]
    fn nothing_is_allocated_before_the_first_compressed_byte() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let budget = DecoderBudget::new(10);
        let mut inf = Inflater::with_budget(InflateParams::default(), 1 << 20, budget.clone());
        inf.begin_message();
        assert_eq!(inf.end_message(&mut |_: &[u8]| {}), Ok(0));
        assert_eq!((budget.live(), inf.out.len()), (0, 0));
        assert_eq!(inflate(&mut inf, &[&hello]).unwrap(), b"Hello");
        assert_eq!((budget.live(), inf.out.len()), (1, OUT_CHUNK));
        drop(inf);
        assert_eq!(budget.live(), 0);
    }

    #[test]
    fn decoder_budget_is_shared_and_given_back() {
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let limit = Err(InflateError::DecoderLimit { limit: 1 });
        let budget = DecoderBudget::new(1);
        let no_takeover = InflateParams {
            no_context_takeover: true,
            max_window_bits: 15,
        };
        let mut a = Inflater::with_budget(no_takeover, 1 << 20, budget.clone());
        let mut b = Inflater::with_budget(no_takeover, 1 << 20, budget.clone());
        let mut c = Inflater::with_budget(InflateParams::default(), 1 << 20, budget.clone());
        assert_eq!(inflate(&mut a, &[&hello]).unwrap(), b"Hello");
        // The budget is spent while `a` lives.
        assert_eq!(inflate(&mut b, &[&hello]), limit);
        assert_eq!(inflate(&mut c, &[&hello]), limit);
        assert_eq!(inflate(&mut a, &[&hello]).unwrap(), b"Hello");
        drop(a);
        // Without context takeover the next message gets a decoder; with it, never again: the
        // window would lack the message that was not inflated.
        assert_eq!(inflate(&mut b, &[&hello]).unwrap(), b"Hello");
        assert_eq!(budget.live(), 1);
        drop(b);
        assert_eq!(inflate(&mut c, &[&hello]), limit);
        assert_eq!(budget.live(), 0);
    }

    #[test]
    fn empty_messages() {
        for mut inf in [takeover(), no_takeover()] {
            // No payload at all.
            inf.begin_message();
            assert_eq!(inf.end_message(&mut |_: &[u8]| panic!("no output")), Ok(0));
            // A single 0x00 (what zlib emits for an empty sync-flushed message after the tail is removed).
            assert_eq!(inflate(&mut inf, &[&[0x00]]), Ok(Vec::new()));
            // end_message without begin_message or push.
            assert_eq!(inf.end_message(&mut |_: &[u8]| panic!("no output")), Ok(0));
            // The decoder still works afterwards.
            assert_eq!(
                inflate(&mut inf, &[&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]]).unwrap(),
                b"Hello"
            );
        }
        // What a real compressor produces for an empty message.
        let wire = deflate_messages(&[Vec::new(), b"x".to_vec()], 15, true);
        let mut inf = takeover();
        assert_eq!(inflate(&mut inf, &[&wire[0]]), Ok(Vec::new()));
        assert_eq!(inflate(&mut inf, &[&wire[1]]), Ok(b"x".to_vec()));
    }

    #[test]
    fn mid_stream_start_is_context_lost() {
        let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        // Context takeover: every message fails, even one that would decode alone.
        let mut inf = takeover();
        inf.lose_context();
        assert_eq!(
            inflate(&mut inf, &[&second]),
            Err(InflateError::ContextLost)
        );
        assert_eq!(inflate(&mut inf, &[&first]), Err(InflateError::ContextLost));
        inf.begin_message();
        assert_eq!(
            inf.end_message(&mut |_: &[u8]| {}),
            Err(InflateError::ContextLost)
        );
        // no_context_takeover: a loss inside a message spoils it; the next one is fine.
        let mut inf = no_takeover();
        inf.begin_message();
        inf.push(&first[..3], &mut |_: &[u8]| {}).unwrap();
        inf.lose_context();
        assert_eq!(inf.push(&first[3..], &mut |_: &[u8]| {}), Ok(()));
        assert_eq!(
            inf.end_message(&mut |_: &[u8]| {}),
            Err(InflateError::ContextLost)
        );
        assert_eq!(inflate(&mut inf, &[&first]).unwrap(), b"Hello");
        // Abandoning a message under takeover (begin_message while one is open) also loses the context.
        let mut inf = takeover();
        inf.begin_message();
        inf.push(&first[..3], &mut |_: &[u8]| {}).unwrap();
        assert_eq!(inflate(&mut inf, &[&first]), Err(InflateError::ContextLost));
    }

    #[test]
    fn resume_after_loss_never_invents() {
        let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        let mut inf = takeover();
        inf.set_resume_after_loss(true);
        inf.lose_context();
        // Needs the lost window: ContextLost, not Corrupt.
        assert_eq!(
            inflate(&mut inf, &[&second]),
            Err(InflateError::ContextLost)
        );
        // Self-contained: decodes, and rebuilds the window for the next message.
        assert_eq!(inflate(&mut inf, &[&first]).unwrap(), b"Hello");
        assert_eq!(inflate(&mut inf, &[&second]).unwrap(), b"Hello");
    }

    #[test]
    fn output_comes_in_bounded_chunks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
        let wire = deflate_messages(std::slice::from_ref(&data), 15, true);
        let mut inf = takeover();
        let mut got = Vec::new();
        let mut biggest = 0;
        inf.push(&wire[0], &mut |d: &[u8]| {
            biggest = biggest.max(d.len());
            got.extend_from_slice(d);
        })
        .unwrap();
        inf.end_message(&mut |d: &[u8]| got.extend_from_slice(d))
            .unwrap();
        assert_eq!(got, data);
        assert!(biggest <= OUT_CHUNK);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn prop_round_trip(msgs in proptest::collection::vec(
                               proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..2000), 1..7),
                           takeover in any::<bool>(), bits in 9u8..=15, cut in any::<proptest::sample::Index>()) {
            let wire = deflate_messages(&msgs, bits, takeover);
            let mut inf = Inflater::new(InflateParams { no_context_takeover: !takeover, max_window_bits: bits }, 1 << 20);
            for (m, w) in msgs.iter().zip(&wire) {
                let c = cut.index(w.len() + 1);
                prop_assert_eq!(&inflate(&mut inf, &[&w[..c], &w[c..]]).unwrap(), m);
            }
        }
    }

    #[test]
    fn hibernating_between_messages_keeps_the_context_exactly() {
        // Messages that refer far back (40 KiB of history, more than one window) so a lost or
        // misordered window would show.
        let msgs: Vec<Vec<u8>> = (0..12u32)
            .map(|i| {
                let mut m = format!("{{\"seq\":{i},\"body\":\"").into_bytes();
                m.extend((0..(3000 + i * 500)).map(|j| b'a' + ((j * 7 + i) % 26) as u8));
                m.extend_from_slice(b"\"}");
                m
            })
            .collect();
        for takeover_on in [true, false] {
            let wire = deflate_messages(&msgs, 15, takeover_on);
            let mut inf = if takeover_on {
                takeover()
            } else {
                no_takeover()
            };
            for (i, (w, m)) in wire.iter().zip(&msgs).enumerate() {
                if i % 2 == 1 {
                    let linear: Vec<u8> = {
                        let (newer, older) = inf.history.split_at(inf.history_pos);
                        [older, newer].concat()
                    };
                    inf.hibernate();
                    if takeover_on {
                        let mut probe = Inflater::new(InflateParams::default(), 1);
                        probe.packed_history = inf.packed_history.clone();
                        probe.unpack_history();
                        assert!(
                            probe.history == linear,
                            "history round trip: {} vs {}",
                            probe.history.len(),
                            linear.len()
                        );
                    }
                    assert!(inf.decoder.is_none() && inf.out.is_empty());
                    if takeover_on {
                        assert!(inf.history.is_empty() && !inf.packed_history.is_empty());
                        assert!(inf.packed_history.len() < WINDOW / 2, "history packs small");
                    }
                }
                let got = inflate(&mut inf, &[w]).unwrap();
                assert!(
                    &got == m,
                    "message {i}, takeover {takeover_on}: {} vs {} bytes",
                    got.len(),
                    m.len()
                );
            }
        }
    }
}
