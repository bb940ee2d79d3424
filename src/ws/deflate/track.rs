//! One raw-DEFLATE decoder with what it needs across messages: an output buffer, a copy of its LZ77
//! window (the last `WINDOW` bytes it produced, kept under context takeover), and that copy packed small
//! while the connection is idle. The `Inflater` runs one track, or two while part of the window is
//! unknown (see `mod.rs`).

use flate2::{Decompress, FlushDecompress, Status};

use super::{DecoderBudget, FIRST_OUT, InflateError, OUT_CHUNK, WINDOW};

/// What one decoding step did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Step {
    /// Input bytes consumed.
    pub used: usize,
    /// Output bytes produced (in the track's buffer).
    pub made: usize,
    /// The DEFLATE stream ended (BFINAL), or zlib's error message.
    pub status: Result<bool, String>,
}

/// A decoder, its output buffer and its history.
#[derive(Default)]
pub(super) struct Track {
    /// Made at the first compressed byte (counted in the budget), with `out`.
    decoder: Option<Decompress>,
    /// Output buffer, allocated with the decoder: `FIRST_OUT` bytes, doubled up to `OUT_CHUNK`
    /// each time a step fills it (most messages are small, and a live decoder is kept per
    /// compressed direction).
    out: Box<[u8]>,
    /// Last `WINDOW` output bytes (ring), kept under context takeover only: after a BFINAL block the
    /// decoder must be restarted with this as its dictionary (RFC 7692 §7.2.2: the next message "MUST" be
    /// decompressed "using the LZ77 sliding window used to process the last compressed message").
    history: Vec<u8>,
    history_pos: usize,
    /// While hibernating: `history`, linearised and deflated (idle connections keep their context in a
    /// few KiB instead of 32, and give their decoder back to the budget).
    packed_history: Vec<u8>,
}

impl Track {
    /// Has a decoder (and holds a place in the budget).
    pub fn has_decoder(&self) -> bool {
        self.decoder.is_some()
    }

    /// The output buffer (its first `Step::made` bytes are the last step's output).
    pub fn out(&self) -> &[u8] {
        &self.out
    }

    /// The decoder, made on first use if `budget` allows.
    pub fn decoder(&mut self, budget: &DecoderBudget) -> Result<&mut Decompress, InflateError> {
        if self.decoder.is_none() {
            if !budget.acquire() {
                return Err(InflateError::DecoderLimit {
                    limit: budget.max(),
                });
            }
            // Raw DEFLATE (no zlib header), 15-bit window (see `InflateParams::max_window_bits`).
            self.decoder = Some(Decompress::new(false));
            self.out = vec![0u8; FIRST_OUT].into_boxed_slice();
        }
        Ok(self.decoder.as_mut().expect("bug: decoder just made"))
    }

    /// Doubles the output buffer, up to `OUT_CHUNK` (its bytes are not kept: call between steps,
    /// once the last step's output has been passed on).
    pub fn grow_out(&mut self) {
        let len = (self.out.len() * 2).clamp(FIRST_OUT, OUT_CHUNK);
        if len > self.out.len() {
            self.out = vec![0u8; len].into_boxed_slice();
        }
    }

    /// Frees the decoder and gives its place in the budget back.
    pub fn drop_decoder(&mut self, budget: &DecoderBudget) {
        if self.decoder.take().is_some() {
            self.out = Box::default();
            budget.release();
        }
    }

    /// Decodes from `input` into the first `room` bytes of the output buffer. The decoder must exist.
    pub fn step(&mut self, input: &[u8], room: usize) -> Step {
        let decoder = self.decoder.as_mut().expect("bug: step without a decoder");
        let in_before = decoder.total_in();
        let out_before = decoder.total_out();
        let status = decoder.decompress(input, &mut self.out[..room], FlushDecompress::None);
        let used = (decoder.total_in() - in_before) as usize;
        let made = (decoder.total_out() - out_before) as usize;
        let status = match status {
            Ok(s) => Ok(s == Status::StreamEnd),
            Err(e) => Err(e
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| e.to_string())),
        };
        Step { used, made, status }
    }

    /// Records the first `n` output bytes as history.
    pub fn remember(&mut self, n: usize) {
        let Self {
            out,
            history,
            history_pos,
            ..
        } = self;
        remember(history, history_pos, &out[..n]);
    }

    /// Restarts the decoder, with an empty window, or with `window` (the last bytes before, oldest first)
    /// as its dictionary; the history becomes that window. Returns false when `budget` gives no decoder.
    pub fn reset(&mut self, window: Option<&[u8]>, budget: &DecoderBudget) -> bool {
        self.packed_history = Vec::new();
        self.history.clear();
        self.history_pos = 0;
        if let Some(decoder) = self.decoder.as_mut() {
            decoder.reset(false);
        }
        let Some(window) = window.filter(|w| !w.is_empty()) else {
            return true;
        };
        remember(&mut self.history, &mut self.history_pos, window);
        match self.decoder(budget) {
            Ok(d) => d.set_dictionary(window).is_ok(),
            Err(_) => false,
        }
    }

    /// Restarts the decoder with its own history as the dictionary (after BFINAL, or after
    /// hibernating). Returns false when `budget` gives no decoder.
    pub fn restore(&mut self, budget: &DecoderBudget) -> bool {
        self.unpack_history();
        let window = self.linear_history();
        self.reset(Some(&window), budget)
    }

    /// The history, oldest byte first.
    pub fn linear_history(&self) -> Vec<u8> {
        let (newer, older) = self.history.split_at(self.history_pos);
        [older, newer].concat()
    }

    /// Between messages: drops the decoder (giving its place back) and keeps the history packed, to be
    /// restored exactly by `restore`. `keep_history`: false when the next message starts from an empty
    /// or unknown window anyway.
    pub fn hibernate(&mut self, keep_history: bool, budget: &DecoderBudget) {
        self.drop_decoder(budget);
        if !keep_history {
            self.history = Vec::new();
            self.history_pos = 0;
            return;
        }
        if self.history.is_empty() {
            return;
        }
        let window = self.linear_history();
        let mut packer = flate2::Compress::new(flate2::Compression::fast(), false);
        let mut packed = Vec::with_capacity(window.len() / 4 + 64);
        let mut rest = &window[..];
        while !rest.is_empty() {
            packed.reserve(rest.len() / 2 + 64);
            let before = packer.total_in();
            let _ = packer.compress_vec(rest, &mut packed, flate2::FlushCompress::None);
            rest = &rest[(packer.total_in() - before) as usize..];
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
        // Linear, oldest first: the ring's write position is its length until it is full.
        self.history_pos = history.len() % WINDOW;
        self.history = history;
        self.packed_history = Vec::new();
    }

    /// A copy of the packed history alone, no decoder (for tests).
    #[cfg(test)]
    pub fn clone_packed(&self) -> Track {
        Track {
            packed_history: self.packed_history.clone(),
            ..Track::default()
        }
    }

    /// Bytes held: buffers and history (for tests).
    #[cfg(test)]
    pub fn held(&self) -> (usize, usize, usize) {
        (
            self.out.len(),
            self.history.len(),
            self.packed_history.len(),
        )
    }
}

/// Appends output bytes to the `WINDOW`-byte history ring; `pos` is where the next byte goes.
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
