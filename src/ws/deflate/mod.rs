//! One direction's compressed message payloads (RFC 7692 permessage-deflate, already unmasked and in frame
//! order) -> inflated bytes in bounded chunks, or an `InflateError` that spoils only the message it hits.
//!
//! RFC 7692 §7.2.2: "An endpoint uses the following algorithm to decompress a message. 1. Append 4 octets of
//! 0x00 0x00 0xff 0xff to the tail end of the payload of the message. 2. Decompress the resulting data using
//! DEFLATE." Memory is fixed: an output buffer of 1 KiB, grown up to 8 KiB when messages need it (+ a history
//! copy of up to 32 KiB under context takeover) and the decoder's own state and 32 KiB window (about 47 KiB
//! in all), whatever the message size. Nothing is allocated before the first compressed byte, and a
//! [`DecoderBudget`] shared by all connections caps how many decoders live at once.
//!
//! # After a loss (a TCP gap, or a capture that starts mid-stream) under context takeover
//! The window the sender compresses against is then partly unknown. DEFLATE output is literals and copies
//! from earlier output, and the decoding steps depend only on the compressed bits, never on output values.
//! So the inflater decodes with two decoders whose unknown history is filled with different bytes (0x00 and
//! 0x01, a whole window of each): an output byte is the same in both iff it does not depend on unknown
//! history. A message whose two outputs agree is exact; where they first differ the message touched unknown
//! history, and it fails with `UnknownHistory` (its length is still known: the outputs are as long). Once
//! the two agree on a whole window (`WINDOW` consecutive bytes) the window is known again and the second
//! decoder is dropped. No hand-written inflater, no guess: bytes are passed on only when both agree.
//!
//! Beware the usual claim that the window is "whole again after 2^window_bits bytes of output": output
//! copied from unknown bytes is unknown too, so a sender that keeps copying the same text (repeated JSON
//! keys) keeps it unknown; it is whole again after a window of *known* output (new literals, or copies of
//! them). The second decoder is also kept for the full 32 KiB whatever the negotiated window bits: zlib
//! senders asked for 8 bits use 9, and a sender that overreaches its window must not make wrong bytes.
//!
//! The message whose compressed bytes the loss cut cannot be inflated; the next one starts on a byte
//! boundary (RFC 7692 §7.2.1: each message ends with an empty stored block), so recovery starts there.
//! Under no_context_takeover every message starts from an empty window and is exact anyway.

mod track;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use track::Track;

/// Output chunk size: what `push`/`end_message` hand to the callback at most per call. Bounded so a
/// decompression bomb never allocates more than this.
const OUT_CHUNK: usize = 8 * 1024;

/// The output buffer's first size; it grows to `OUT_CHUNK` when a message needs it.
const FIRST_OUT: usize = 1024;

/// The DEFLATE window (2^15): the most history a later message can reference.
const WINDOW: usize = 32 * 1024;

/// RFC 7692 §7.2.2: the tail removed by the sender and appended by the receiver.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// What the two decoders see as the unknown history after a loss (see the module docs).
static UNKNOWN_A: [u8; WINDOW] = [0x00; WINDOW];
static UNKNOWN_B: [u8; WINDOW] = [0x01; WINDOW];

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
    /// earlier failure), context takeover is on, and the history cannot be tracked (no second decoder from
    /// the budget, or the message's own compressed bytes were cut).
    ContextLost,
    /// The message refers back to history that was not captured (see the module docs): it inflates to
    /// `length` bytes, of which the first `exact` are known (and were passed on); the rest are not.
    UnknownHistory {
        /// Bytes at the start of the message that do not depend on the unknown history.
        exact: u64,
        /// The message's inflated length (known exactly: it does not depend on the history's values).
        length: u64,
    },
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
            InflateError::UnknownHistory { exact, length } => write!(
                f,
                "refers to compressed history that was not captured: inflates to {length} bytes, the first {exact} known"
            ),
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

/// How many decoders may live at once, shared by every connection of a run (a clone shares the count). A
/// decoder with its window, history and output buffer takes up to about 85 KiB, so this is what bounds the
/// memory of many compressed connections. An [`Inflater`] holds one, two while it recovers from a loss.
#[derive(Clone, Debug)]
pub struct DecoderBudget {
    live: Arc<AtomicUsize>,
    max: usize,
    /// A decoder was refused (the limit was reached) at least once.
    refused: Arc<std::sync::atomic::AtomicBool>,
}

impl DecoderBudget {
    /// At most `max` decoders at once.
    pub fn new(max: usize) -> Self {
        Self {
            live: Arc::new(AtomicUsize::new(0)),
            max,
            refused: Arc::default(),
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
        let got = self
            .live
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        if !got {
            self.refused.store(true, Ordering::Relaxed);
        }
        got
    }

    /// Was a decoder ever refused for want of budget?
    pub fn ever_refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    fn release(&self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// While the window is partly unknown: the second decoder, and how far the two agree.
struct Recovery {
    shadow: Track,
    /// Output bytes the two decoders have agreed on since they last differed.
    agreed: u64,
}

/// permessage-deflate decoder for one direction of one connection. Keeps the LZ77 window across messages
/// (context takeover) unless `no_context_takeover` was negotiated.
///
/// Failure model: an error poisons only the current message. Under context takeover the window is then
/// unknown: the next message starts a recovery (see the module docs), in which messages that do not depend
/// on the unknown history are exact and the others fail with `UnknownHistory`; under `no_context_takeover`
/// the next message starts fresh.
pub struct Inflater {
    params: InflateParams,
    limit: u64,
    budget: DecoderBudget,
    /// Context takeover and the budget refused a decoder: every message fails with `DecoderLimit`.
    refused: bool,
    primary: Track,
    /// Present while part of the window is unknown.
    recovery: Option<Box<Recovery>>,
    msg: Msg,
    /// Inflated bytes of the current message.
    produced: u64,
    /// Where the current message's output first depended on unknown history (recovery only).
    unknown_from: Option<u64>,
    /// The current message is decoded in a recovery; `after_loss`: the last one ended was.
    in_recovery: bool,
    after_loss: bool,
    /// The current message has had compressed input (an empty payload gets no tail: see `end_message`).
    fed: bool,
    /// The window is unknown and no recovery is running (context takeover only).
    context_lost: bool,
    /// The budget gave no second decoder for a recovery: this message fails with `DecoderLimit`, the next
    /// one tries again.
    recovery_refused: bool,
    /// Restart the decoder (empty window) before the next message.
    reset_pending: bool,
    /// Restart the decoders with their histories as their windows before the next message (after BFINAL
    /// or hibernating).
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
            .field("recovering", &self.recovery.is_some())
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// A decoder for one direction; each message may inflate to at most `max_output_per_message` bytes.
    pub fn new(params: InflateParams, max_output_per_message: u64) -> Self {
        Self::with_budget(params, max_output_per_message, DecoderBudget::unlimited())
    }

    /// As `new`, drawing its decoders from `budget`.
    pub fn with_budget(
        params: InflateParams,
        max_output_per_message: u64,
        budget: DecoderBudget,
    ) -> Self {
        Self {
            params,
            limit: max_output_per_message,
            budget,
            refused: false,
            primary: Track::default(),
            recovery: None,
            msg: Msg::Idle,
            produced: 0,
            unknown_from: None,
            in_recovery: false,
            after_loss: false,
            fed: false,
            context_lost: false,
            recovery_refused: false,
            reset_pending: false,
            restore_pending: false,
        }
    }

    /// The parameters this decoder was built with.
    pub fn params(&self) -> InflateParams {
        self.params
    }

    /// True while the window is unknown and no recovery runs (messages fail with `ContextLost`, or start a
    /// recovery when they begin).
    pub fn is_context_lost(&self) -> bool {
        self.context_lost
    }

    /// True while part of the window is unknown and a second decoder tracks which (see the module docs).
    pub fn is_recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// The last message ended was decoded while part of the window was unknown: if it inflated, its bytes
    /// were proven not to depend on it.
    pub fn last_message_after_loss(&self) -> bool {
        self.after_loss
    }

    /// The decoder's sliding window history is unknown (capture started mid-stream or a TCP gap ate
    /// compressed bytes). A message in progress fails with `ContextLost`; under context takeover the next
    /// message starts a recovery; under no_context_takeover it starts fresh.
    pub fn lose_context(&mut self) {
        if matches!(self.msg, Msg::Active | Msg::StreamEnded) {
            self.msg = Msg::Failed(InflateError::ContextLost);
        }
        if self.params.no_context_takeover {
            self.reset_pending = true;
        } else {
            self.context_lost = true;
            self.end_recovery();
        }
    }

    /// Starts a message (the first frame with RSV1 set). Under no_context_takeover this resets the decoder.
    /// Starting a new message while one is still open abandons it; under context takeover that loses the
    /// context, since the sender's window holds the part never seen.
    pub fn begin_message(&mut self) {
        if matches!(self.msg, Msg::Active | Msg::StreamEnded) {
            self.note_abandoned();
        }
        self.msg = Msg::Active;
        self.produced = 0;
        self.fed = false;
        self.unknown_from = None;
        self.recovery_refused = false;
        if self.refused {
            // Never decoded again (see `refused`): no decoder to set up.
        } else if self.params.no_context_takeover {
            // RFC 7692 §7.2.2: with "*_no_context_takeover" the receiver "MAY decompress each new message with
            // an empty LZ77 sliding window".
            self.primary.reset(None, &self.budget);
            self.reset_pending = false;
            self.restore_pending = false;
            self.context_lost = false;
        } else if self.context_lost {
            self.start_recovery();
        } else if self.restore_pending {
            self.restore_pending = false;
            let budget = &self.budget;
            let restored = self.primary.restore(budget)
                && self
                    .recovery
                    .as_mut()
                    .is_none_or(|r| r.shadow.restore(budget));
            if !restored {
                // A hibernated direction whose decoders the budget no longer gives: the window is gone.
                self.lose_context();
                self.msg = Msg::Active;
                self.start_recovery();
            }
        } else if self.reset_pending {
            self.reset_pending = false;
            self.primary.reset(None, &self.budget);
        }
        self.in_recovery = self.recovery.is_some();
    }

    /// Feeds the next compressed chunk of the current message (as frames and TCP segments arrive); inflated
    /// bytes go to `out` in chunks of at most 8 KiB (in a recovery, only bytes known exactly). Calling it
    /// between messages starts one. After a message failed, later chunks of that message are ignored and
    /// return `Ok` (the error was already returned).
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
            let e = self.lost_error();
            return Err(self.fail(e));
        }
        if compressed.is_empty() {
            return Ok(());
        }
        self.fed = true;
        self.inflate(compressed, out)
    }

    /// Ends the message: feeds the `00 00 ff ff` tail (RFC 7692 §7.2.2) and returns the message's total
    /// inflated size. A message that failed returns its error again; one that touched unknown history
    /// returns `UnknownHistory`. An empty compressed message (no bytes, or a single `00`) is 0 bytes.
    pub fn end_message<F: FnMut(&[u8])>(&mut self, out: &mut F) -> Result<u64, InflateError> {
        if self.msg == Msg::Idle {
            self.begin_message();
        }
        if self.msg == Msg::Active && self.refused {
            let limit = self.budget.max();
            self.fail(InflateError::DecoderLimit { limit });
        } else if self.msg == Msg::Active && self.context_lost {
            let e = self.lost_error();
            self.fail(e);
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
        self.after_loss = self.in_recovery;
        match (result, self.unknown_from) {
            (Ok(length), Some(exact)) => Err(InflateError::UnknownHistory { exact, length }),
            (result, _) => result,
        }
    }

    /// Between messages, releases what can be rebuilt: the decoders (and their places in the budget) and
    /// the output buffers are dropped and the histories are kept deflated, to be restored exactly by the
    /// next message. For idle connections; a no-op inside a message.
    pub fn hibernate(&mut self) {
        if self.msg != Msg::Idle || !self.primary.has_decoder() {
            return;
        }
        let keep = !self.params.no_context_takeover && !self.context_lost;
        self.primary.hibernate(keep, &self.budget);
        if let Some(r) = self.recovery.as_mut() {
            r.shadow.hibernate(keep, &self.budget);
        }
        self.reset_pending = false;
        // The decoders made by the next message must get their windows back.
        self.restore_pending = keep;
    }

    /// Starts tracking the unknown history with a second decoder (see the module docs); without one from
    /// the budget the window stays lost.
    fn start_recovery(&mut self) {
        self.end_recovery();
        let mut shadow = Track::default();
        if !self.primary.reset(Some(&UNKNOWN_A), &self.budget)
            || !shadow.reset(Some(&UNKNOWN_B), &self.budget)
        {
            shadow.drop_decoder(&self.budget);
            self.recovery_refused = true;
            return;
        }
        self.context_lost = false;
        self.reset_pending = false;
        self.restore_pending = false;
        self.recovery = Some(Box::new(Recovery { shadow, agreed: 0 }));
    }

    /// The error of a message decoded while the window is lost and not tracked.
    fn lost_error(&self) -> InflateError {
        if self.recovery_refused {
            InflateError::DecoderLimit {
                limit: self.budget.max(),
            }
        } else {
            InflateError::ContextLost
        }
    }

    /// Drops the second decoder (the window is known again, or lost again).
    fn end_recovery(&mut self) {
        if let Some(mut r) = self.recovery.take() {
            r.shadow.drop_decoder(&self.budget);
        }
    }

    /// Records a failure of the current message and what it does to the following ones.
    fn fail(&mut self, e: InflateError) -> InflateError {
        self.msg = Msg::Failed(e.clone());
        if self.params.no_context_takeover {
            self.reset_pending = true;
        } else {
            // The decoder stopped mid-message: its window no longer matches the sender's.
            self.context_lost = true;
            self.end_recovery();
        }
        e
    }

    /// A message was left open: under context takeover the sender's window includes bytes never decoded.
    fn note_abandoned(&mut self) {
        if !self.params.no_context_takeover && self.msg == Msg::Active {
            self.context_lost = true;
            self.end_recovery();
        }
    }

    /// Runs the decoder(s) over `input`, streaming output to `out`, enforcing the limit.
    fn inflate<F: FnMut(&[u8])>(&mut self, input: &[u8], out: &mut F) -> Result<(), InflateError> {
        if let Err(e) = self.primary.decoder(&self.budget) {
            // Under context takeover a later message needs this one's window: never decode again.
            self.refused = !self.params.no_context_takeover;
            return Err(self.fail(e));
        }
        let mut consumed = 0usize;
        loop {
            // At most one byte past the limit is ever decoded: enough to know it was exceeded.
            let allowance = self.limit - self.produced;
            let buffer = match self.recovery.as_ref() {
                Some(r) => self.primary.out().len().min(r.shadow.out().len()),
                None => self.primary.out().len(),
            };
            let room = usize::try_from(allowance.saturating_add(1))
                .unwrap_or(usize::MAX)
                .min(buffer);
            let step = self.primary.step(&input[consumed..], room);
            if let Some(r) = self.recovery.as_mut()
                && r.shadow.step(&input[consumed..], room) != step
            {
                // Cannot happen (decoding never depends on output values); if it did, nothing about
                // this message or the window could be trusted.
                return Err(self.fail(InflateError::ContextLost));
            }
            consumed += step.used;
            // Bytes zlib produced before stopping are correct, even when it then reports an error.
            let within = step
                .made
                .min(usize::try_from(allowance).unwrap_or(usize::MAX));
            self.emit(within, out);
            let ended = match step.status {
                Ok(ended) => ended,
                Err(msg) => return Err(self.fail(InflateError::Corrupt(msg))),
            };
            if within < step.made {
                return Err(self.fail(InflateError::OutputLimit { limit: self.limit }));
            }
            if ended {
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
            if consumed == input.len() && step.made < room {
                return Ok(());
            }
            if step.made == buffer && buffer < OUT_CHUNK {
                // The buffer was too small for this message: larger steps from now on.
                self.primary.grow_out();
                if let Some(r) = self.recovery.as_mut() {
                    r.shadow.grow_out();
                }
            }
            if step.used == 0 && step.made == 0 {
                // No progress possible (zlib's Z_BUF_ERROR): the decoder needs input this message does not have.
                return Ok(());
            }
        }
    }

    /// Passes on the first `n` bytes of the output buffer, those known exactly (in a recovery: before the
    /// first byte that depends on unknown history, where the two decoders first differ), and records
    /// them as history.
    fn emit<F: FnMut(&[u8])>(&mut self, n: usize, out: &mut F) {
        if n == 0 {
            return;
        }
        let differs = self.recovery.as_ref().and_then(|r| {
            first_and_last_difference(&self.primary.out()[..n], &r.shadow.out()[..n])
        });
        if let Some((first, _)) = differs {
            self.unknown_from
                .get_or_insert(self.produced + first as u64);
        }
        let known = match (self.unknown_from, differs) {
            (None, _) => n,
            (Some(from), _) if from >= self.produced => (from - self.produced) as usize,
            (Some(_), _) => 0,
        }
        .min(n);
        if known > 0 {
            out(&self.primary.out()[..known]);
        }
        self.produced += n as u64;
        if self.params.no_context_takeover {
            return;
        }
        self.primary.remember(n);
        let Some(r) = self.recovery.as_mut() else {
            return;
        };
        r.shadow.remember(n);
        r.agreed = match differs {
            Some((_, last)) => (n - 1 - last) as u64,
            None => r.agreed + n as u64,
        };
        if r.agreed >= WINDOW as u64 {
            // The whole window agrees, so it is known: one decoder is enough from here on.
            self.end_recovery();
        }
    }
}

/// Where two equally long outputs first and last differ, if they do.
fn first_and_last_difference(a: &[u8], b: &[u8]) -> Option<(usize, usize)> {
    let first = a.iter().zip(b).position(|(x, y)| x != y)?;
    let last = a.iter().zip(b).rposition(|(x, y)| x != y)?;
    Some((first, last))
}

impl Drop for Inflater {
    fn drop(&mut self) {
        self.primary.drop_decoder(&self.budget);
        self.end_recovery();
    }
}

#[cfg(test)]
mod recovery_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};
    use proptest::prelude::*;
    use std::time::Instant;

    /// Compresses `data` as the next message of `c`: sync flush, `00 00 ff ff` kept (the caller strips it).
    pub(super) fn deflate_sync(c: &mut Compress, data: &[u8]) -> Vec<u8> {
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
    pub(super) fn deflate_messages(
        msgs: &[Vec<u8>],
        window_bits: u8,
        takeover: bool,
    ) -> Vec<Vec<u8>> {
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
    fn error_under_takeover_starts_a_recovery() {
        let msgs = json_messages();
        let wire = deflate_messages(&msgs, 15, true);
        let mut inf = takeover();
        assert_eq!(&inflate(&mut inf, &[&wire[0]]).unwrap(), &msgs[0]);
        assert!(matches!(
            inflate(&mut inf, &[&[0xff, 0xff, 0xff]]),
            Err(InflateError::Corrupt(_))
        ));
        assert!(inf.is_context_lost());
        // The window is unknown now: what the next messages copy from it is unknown, never guessed.
        for i in 1..3 {
            match inflate(&mut inf, &[&wire[i]]) {
                Ok(bytes) => assert_eq!(bytes, msgs[i]),
                Err(InflateError::UnknownHistory { length, .. }) => {
                    assert_eq!(length, msgs[i].len() as u64)
                }
                Err(e) => panic!("message {i}: {e}"),
            }
            assert!(inf.is_recovering() && inf.last_message_after_loss());
        }
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
        assert_eq!((budget.live(), inf.primary.held().0), (0, 0));
        assert_eq!(inflate(&mut inf, &[&hello]).unwrap(), b"Hello");
        assert_eq!((budget.live(), inf.primary.held().0), (1, FIRST_OUT));
        drop(inf);
        assert_eq!(budget.live(), 0);
    }

    #[test]
    fn the_output_buffer_grows_only_for_larger_messages() {
        let small = b"{\"op\":\"tick\",\"n\":1}".to_vec();
        let large: Vec<u8> = (0..20_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let wire = deflate_messages(&[small.clone(), large.clone(), small.clone()], 15, true);
        let mut inf = Inflater::new(InflateParams::default(), 1 << 20);
        assert_eq!(inflate(&mut inf, &[&wire[0]]).unwrap(), small);
        assert_eq!(inf.primary.held().0, FIRST_OUT);
        assert_eq!(inflate(&mut inf, &[&wire[1]]).unwrap(), large);
        assert_eq!(inf.primary.held().0, OUT_CHUNK);
        // The window carried over the growth: the third message refers back to the first.
        assert_eq!(inflate(&mut inf, &[&wire[2]]).unwrap(), small);
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
    fn mid_stream_start_decodes_what_needs_no_history() {
        let first = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
        // Context takeover: a message that copies from the lost window is unknown (its length is known,
        // and its literal "H"); one that does not is exact, and is history for the next.
        let mut inf = takeover();
        inf.lose_context();
        assert_eq!(
            inflate(&mut inf, &[&second]),
            Err(InflateError::UnknownHistory {
                exact: 1,
                length: 5
            })
        );
        assert!(inf.last_message_after_loss() && inf.is_recovering());
        assert_eq!(inflate(&mut inf, &[&first]).unwrap(), b"Hello");
        assert_eq!(inflate(&mut inf, &[&second]).unwrap(), b"Hello");
        assert!(inf.last_message_after_loss());
        inf.begin_message();
        assert_eq!(inf.end_message(&mut |_: &[u8]| {}), Ok(0));
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
        assert!(!inf.last_message_after_loss());
        // Abandoning a message under takeover (begin_message while one is open) loses the context: the
        // next message is decoded in a recovery.
        let mut inf = takeover();
        inf.begin_message();
        inf.push(&first[..3], &mut |_: &[u8]| {}).unwrap();
        assert_eq!(inflate(&mut inf, &[&first]).unwrap(), b"Hello");
        assert!(inf.last_message_after_loss());
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
                    let linear = inf.primary.linear_history();
                    inf.hibernate();
                    let (out, history, packed) = inf.primary.held();
                    assert!(!inf.primary.has_decoder() && out == 0);
                    if takeover_on {
                        assert!(history == 0 && packed > 0);
                        assert!(packed < WINDOW / 2, "history packs small");
                        let mut probe = inf.primary.clone_packed();
                        assert!(probe.restore(&DecoderBudget::unlimited()));
                        assert!(
                            probe.linear_history() == linear,
                            "history round trip: {} vs {}",
                            probe.linear_history().len(),
                            linear.len()
                        );
                        probe.drop_decoder(&DecoderBudget::unlimited());
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
