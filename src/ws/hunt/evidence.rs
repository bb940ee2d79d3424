//! What a chain's bytes prove, in bits (-log2 of the chance that random bytes pass the same check): which
//! first bytes can be a frame's, text and close-frame payloads, length fields, the byte frequencies of the
//! data around (masked text and masked zero runs are far from uniform), and periodic data, where no chain
//! may start. Used by the chain walk in `mod.rs`.

use crate::ws::frame::FrameHeader;
use crate::ws::mask::apply_mask;
use crate::ws::opcode::OpCode;

/// Payload bytes inspected per chained frame (UTF-8 of text, close code): bounds the work per offset.
pub(super) const CHECK_BYTES: usize = 64;

/// Bytes per block of byte frequencies (see `ByteStats`): 512 per key phase.
pub(super) const STATS_BLOCK: usize = 2048;

/// Longest period of the data before a candidate that `periodic_before` looks for.
pub(super) const MAX_PERIOD: usize = 32;

/// Is `b0` (FIN, RSV, opcode) plausible as the next frame's first byte?
pub(super) fn b0_plausible(b0: u8, open: bool) -> bool {
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0b111;
    match b0 & 0x0F {
        // RFC 7692 §6: "the "Per-Message Compressed" bit ... RSV1 ... set on the first frame of a message";
        // any other RSV bit needs an extension nobody uses: "MUST be 0 unless an extension is negotiated".
        // RFC 6455 §5.4: a new data message cannot start while a fragmented one is open.
        0x1 | 0x2 => !open && (rsv == 0 || rsv == 0b100),
        // RFC 6455 §5.4: continuation frames only inside a fragmented message; RFC 7692 §6.1: RSV1 is not
        // set on them.
        0x0 => open && rsv == 0,
        // RFC 6455 §5.5: "All control frames ... MUST NOT be fragmented."
        0x8..=0xA => fin && rsv == 0,
        // Reserved opcodes: "If an unknown opcode is received, the receiving endpoint MUST _Fail the
        // WebSocket Connection_", so a live stream does not carry them.
        _ => false,
    }
}

/// `b0_plausible(b, false)` for every byte: which first bytes can start a chain.
pub(super) static CHAIN_START: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let fin = b & 0x80 != 0;
        let rsv = (b >> 4) & 0b111;
        t[b] = match b & 0x0F {
            0x1 | 0x2 => rsv == 0 || rsv == 0b100,
            0x8..=0xA => fin && rsv == 0,
            _ => false,
        };
        b += 1;
    }
    t
};

/// `b0_plausible(b, true)` for every byte: which first bytes can follow inside a fragmented message.
pub(super) static OPEN_CHAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let fin = b & 0x80 != 0;
        let rsv = (b >> 4) & 0b111;
        t[b] = match b & 0x0F {
            0x0 => rsv == 0,
            0x8..=0xA => fin && rsv == 0,
            _ => false,
        };
        b += 1;
    }
    t
};

/// Byte frequencies of the data being hunted, by stream offset modulo 4 (the key phase of a masked
/// payload), over a block of `STATS_BLOCK` bytes; evidence from them is in bits, with one pseudo-count per
/// byte value so that little data reads as uniform.
#[derive(Clone)]
pub(super) struct ByteStats {
    /// Count of byte `b` at class `c` in `counts[c][b]`.
    pub(super) counts: [[u16; 256]; 4],
    /// -log2 P(a byte that can start a chain), by class.
    pub(super) closed_bits: [f32; 4],
    /// -log2 P(a byte that can follow inside a fragmented message), by class.
    pub(super) open_bits: [f32; 4],
    /// -log2 P(top bit clear), -log2 P(top bit set), by class.
    pub(super) mask_bits: [[f32; 2]; 4],
    /// Bytes counted by class, plus the 256 pseudo-counts.
    pub(super) totals: [f32; 4],
}

impl ByteStats {
    pub(super) fn new() -> Box<Self> {
        Box::new(Self {
            counts: [[0; 256]; 4],
            closed_bits: [0.0; 4],
            open_bits: [0.0; 4],
            mask_bits: [[0.0; 2]; 4],
            totals: [256.0; 4],
        })
    }

    pub(super) fn clear(&mut self) {
        self.counts = [[0; 256]; 4];
    }

    pub(super) fn add(&mut self, at: u64, data: &[u8]) {
        // Up to the next multiple of 4, then four bytes (one per class) at a time.
        let head = ((4 - (at & 3)) & 3) as usize;
        let (head, rest) = data.split_at(head.min(data.len()));
        for (i, &b) in head.iter().enumerate() {
            self.counts[(at as usize + i) & 3][usize::from(b)] += 1;
        }
        let mut quads = rest.chunks_exact(4);
        for q in &mut quads {
            self.counts[0][usize::from(q[0])] += 1;
            self.counts[1][usize::from(q[1])] += 1;
            self.counts[2][usize::from(q[2])] += 1;
            self.counts[3][usize::from(q[3])] += 1;
        }
        for (i, &b) in quads.remainder().iter().enumerate() {
            self.counts[i][usize::from(b)] += 1;
        }
    }

    pub(super) fn bits_of(&self, class: usize, byte: u8) -> f32 {
        let p = (f32::from(self.counts[class][usize::from(byte)]) + 1.0) / self.totals[class];
        -p.log2()
    }

    /// Fills the evidence tables from the counts.
    pub(super) fn finish(&mut self) {
        for class in 0..4 {
            let (mut all, mut closed, mut open, mut top) = (0u32, 0u32, 0u32, 0u32);
            for b in 0..256usize {
                let n = u32::from(self.counts[class][b]) + 1;
                all += n;
                closed += if CHAIN_START[b] { n } else { 0 };
                open += if OPEN_CHAIN[b] { n } else { 0 };
                top += if b >= 0x80 { n } else { 0 };
            }
            let p = |n: u32| n as f32 / all as f32;
            self.totals[class] = all as f32;
            self.closed_bits[class] = -p(closed).log2();
            self.open_bits[class] = -p(open).log2();
            self.mask_bits[class] = [-p(all - top).log2(), -p(top).log2()];
        }
    }
}

/// UTF-8 check of (part of) a text payload: `Some(bits)` when valid so far, `None` when invalid.
///
/// Evidence is half a bit per lowercase letter, digit or non-ASCII character byte, the stuff of real text
/// (JSON, prose) that random bytes rarely are (36 of 256 ASCII values). Text with a control character (C0
/// other than tab, LF, CR; or DEL) is valid UTF-8 but earns nothing: binary records full of zeros pass as
/// "text" otherwise. Uppercase and punctuation earn nothing because of garbage inside a masked text
/// payload: there a "header" found at any offset takes its "masking key" from the same masked text at
/// the same key phase as its "payload" (key and payload both start 4 bytes apart), so "unmasking"
/// cancels the real key and leaves the XOR of two ASCII texts: always ASCII, and control characters or
/// uppercase letters where the texts were lowercase, spaces or punctuation.
pub(super) fn text_bits(bytes: &[u8], whole_message: bool) -> Option<f32> {
    let valid = match simdutf8::compat::from_utf8(bytes) {
        Ok(_) => bytes.len(),
        Err(e) if e.error_len().is_none() && !whole_message => e.valid_up_to(),
        Err(_) => return None,
    };
    let mut telling = 0usize;
    for &b in &bytes[..valid] {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | 0x80..=0xFF => telling += 1,
            b'\t' | b'\n' | b'\r' | 0x20..=0x7E => {}
            _ => return Some(0.0),
        }
    }
    Some(telling as f32 / 2.0)
}

/// Checks the inspected start of a payload; `None` means implausible.
pub(super) fn payload_bits(h: &FrameHeader, seen: &[u8]) -> Option<f32> {
    let mut buf = [0u8; CHECK_BYTES];
    let data = &mut buf[..seen.len()];
    data.copy_from_slice(seen);
    if let Some(key) = h.mask {
        apply_mask(data, key, 0);
    }
    let complete = seen.len() as u64 == h.payload_len;
    match h.opcode {
        OpCode::Text if !h.rsv1() => text_bits(data, complete && h.fin),
        OpCode::Close => match h.payload_len {
            // P(random length byte = 0) = 1/128.
            0 => Some(7.0),
            // RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte unsigned
            // integer ... representing a status code".
            1 => None,
            _ if data.len() < 2 => Some(0.0),
            _ => {
                let code = u16::from_be_bytes([data[0], data[1]]);
                if !(1000..=4999).contains(&code) {
                    return None;
                }
                // The protocol's own codes (1000-1015: 16 of 65536 values) are what real Close frames
                // carry most; they are evidence. Application codes are plausible but earn nothing: the
                // XOR of two ASCII texts (garbage inside a masked text payload, see `text_bits`) lands in
                // 3000-4999 often, never in 1000-1015 (whose low byte has its top bit set).
                let code_bits = if code <= 1015 { 8.0 } else { 0.0 };
                // RFC 6455 §5.5.1: the reason "MUST be" UTF-8.
                Some(code_bits + text_bits(&data[2..], complete)?)
            }
        },
        _ => Some(0.0),
    }
}

/// Length-field evidence for a chain that ends exactly at the end of the data.
pub(super) fn end_bits(h: &FrameHeader) -> f32 {
    let mask = if h.is_masked() { 4 } else { 0 };
    match usize::from(h.header_len) - mask {
        2 => 7.0,
        4 => 23.0,
        _ => 71.0,
    }
}

/// Evidence the length form of a chain's first frame gives that it is not garbage landing on a real frame
/// by chance. Random bytes put a plausible header with a 7-bit length landing exactly on a given frame
/// somewhere in the 127 bytes before it with probability 2^-5.5 (summed over those offsets); with a 16-bit
/// length, anywhere in the 64 KiB before it, 2^-11.5 (the `126` marker, then an exact 16-bit value): 6 bits
/// less likely. A 64-bit length landing within the hunting window needs 46 zero bits.
pub(super) fn length_form_bits(h: &FrameHeader) -> f32 {
    let mask = if h.is_masked() { 4 } else { 0 };
    match usize::from(h.header_len) - mask {
        2 => 0.0,
        4 => 6.0,
        _ => 23.0,
    }
}

/// Does `pos` sit in periodic data: do the bytes before it repeat with a period of 1 to `MAX_PERIOD` bytes
/// for two periods (and 8 bytes at least), continuing into the 4 bytes at `pos`? A masked run of zeros is
/// its key over and over, and there a "header" at one offset is followed by the same header every period:
/// one of them lands on the real frame after the run, and the chain from it would qualify with that real
/// frame's evidence. No chain starts there. (Real frames repeated, like empty pongs, are periodic too:
/// only the last of such a run can start a chain.)
pub(super) fn periodic_before(view: &[u8], pos: usize) -> bool {
    let Some(here) = view.get(pos..pos + 4) else {
        return false;
    };
    (1..=MAX_PERIOD).any(|p| {
        let span = (2 * p).max(8);
        pos >= span
            && view[pos - p] == here[0]
            && view[pos - p..pos - p + 4] == *here
            && view[pos - span..pos - p] == view[pos - span + p..pos]
    })
}

/// Does periodic data start at `pos`: do the bytes from it repeat with a period of 1 to `MAX_PERIOD` bytes
/// for two periods (and 16 bytes at least)? Where nothing comes before (the hunting origin), this is what
/// tells a masked run of text or zeros from frames; a real frame's header does not repeat in its payload.
pub(super) fn periodic_after(view: &[u8], pos: usize) -> bool {
    (1..=MAX_PERIOD).any(|p| {
        let span = (2 * p).max(16);
        pos + span <= view.len()
            && view[pos] == view[pos + p]
            && view[pos..pos + span - p] == view[pos + p..pos + span]
    })
}

/// `pos` is in periodic data, or starts some: no chain starts there (see `periodic_before` and
/// `periodic_after`).
pub(super) fn periodic_at(view: &[u8], pos: usize) -> bool {
    periodic_before(view, pos) || periodic_after(view, pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::frame::{HeaderParse, encode_frame, parse_frame_header};

    fn header(frame: &[u8]) -> FrameHeader {
        match parse_frame_header(frame) {
            HeaderParse::Complete(h) => h,
            other => panic!("not a header: {other:?}"),
        }
    }

    #[test]
    fn chain_start_table_matches_the_rule() {
        for b in 0..=255u8 {
            assert_eq!(
                CHAIN_START[usize::from(b)],
                b0_plausible(b, false),
                "{b:#04x}"
            );
        }
        assert_eq!(CHAIN_START.iter().filter(|&&ok| ok).count(), 11);
        for b in 0..=255u8 {
            assert_eq!(
                OPEN_CHAIN[usize::from(b)],
                b0_plausible(b, true),
                "{b:#04x}"
            );
        }
        assert_eq!(OPEN_CHAIN.iter().filter(|&&ok| ok).count(), 5);
    }

    #[test]
    fn text_earns_for_letters_and_nothing_for_control_bytes() {
        assert_eq!(text_bits(b"hello 42", true), Some(3.5));
        assert_eq!(text_bits(b"HELLO!!", true), Some(0.0));
        assert_eq!(text_bits(b"ab\x00cd", true), Some(0.0));
        assert_eq!(text_bits(b"\xff", true), None);
        // A multi-byte character cut at the end of the inspected bytes is fine, unless the message ends.
        assert_eq!(text_bits("aé".as_bytes()[..2].as_ref(), false), Some(0.5));
        assert_eq!(text_bits("aé".as_bytes()[..2].as_ref(), true), None);
    }

    #[test]
    fn close_payloads_are_checked_through_the_mask() {
        let key = Some([0x11, 0x22, 0x33, 0x44]);
        let mut payload = 1000u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"bye");
        let frame = encode_frame(true, 0, 0x8, key, &payload);
        let h = header(&frame);
        let seen = &frame[usize::from(h.header_len)..];
        assert_eq!(payload_bits(&h, seen), Some(8.0 + 1.5));
        let bad = encode_frame(true, 0, 0x8, key, &999u16.to_be_bytes());
        let h = header(&bad);
        assert_eq!(payload_bits(&h, &bad[usize::from(h.header_len)..]), None);
        let one = encode_frame(true, 0, 0x8, None, &[3]);
        assert_eq!(payload_bits(&header(&one), &one[2..]), None);
        let empty = encode_frame(true, 0, 0x8, None, &[]);
        assert_eq!(payload_bits(&header(&empty), &[]), Some(7.0));
    }

    #[test]
    fn longer_length_forms_are_stronger_evidence() {
        let short = header(&encode_frame(true, 0, 0x2, None, &[0; 10]));
        let medium = header(&encode_frame(true, 0, 0x2, Some([1, 2, 3, 4]), &[0; 300]));
        let long = header(&encode_frame(true, 0, 0x2, None, &vec![0; 70_000]));
        assert_eq!(
            [
                length_form_bits(&short),
                length_form_bits(&medium),
                length_form_bits(&long)
            ],
            [0.0, 6.0, 23.0]
        );
        assert_eq!(
            [end_bits(&short), end_bits(&medium), end_bits(&long)],
            [7.0, 23.0, 71.0]
        );
    }

    #[test]
    fn periodic_data_is_recognised_on_either_side() {
        let run: Vec<u8> = [0xA1, 0xB2, 0xC3, 0xD4]
            .iter()
            .copied()
            .cycle()
            .take(64)
            .collect();
        assert!(periodic_at(&run, 0));
        assert!(periodic_at(&run, 32));
        // A real header after a run: the bytes before it repeat, the header itself does not continue them.
        let mut view = run.clone();
        view.extend_from_slice(&encode_frame(true, 0, 0x1, None, b"a real frame"));
        assert!(!periodic_before(&view, run.len()));
        assert!(!periodic_after(&view, run.len()));
        let frames = encode_frame(true, 0, 0x1, None, b"the quick brown fox jumps");
        assert!(!periodic_at(&frames, 0));
    }

    #[test]
    fn byte_stats_make_common_bytes_cheap() {
        let mut stats = ByteStats::new();
        let data = vec![0x81u8; STATS_BLOCK];
        stats.add(0, &data);
        stats.finish();
        assert!(stats.bits_of(0, 0x81) < 1.0);
        assert!(stats.bits_of(0, 0x82) > 8.0);
        // Every class saw 0x81 only: a chain start at any phase is no evidence.
        assert!(stats.closed_bits.iter().all(|&b| b < 1.0));
        stats.clear();
        stats.finish();
        assert!((stats.bits_of(3, 0x00) - 8.0).abs() < 1e-3);
    }
}
