//! Bytes at a frame boundary -> `HeaderParse` (one `FrameHeader`, "need more", or "cannot be a frame");
//! plus `encode_frame` (fields + payload -> wire bytes) for tests, fuzz seeds and the capture generator.
//!
//! Only the header is parsed; the payload is streamed by `framer.rs` and never read here.

use std::fmt;

use nom::IResult;
use nom::Parser;
use nom::bytes::streaming::take;
use nom::number::streaming::{be_u8, be_u16, be_u64};

use crate::ws::mask::apply_mask;
use crate::ws::opcode::OpCode;

/// The longest possible header: 2 fixed bytes + 8-byte extended length + 4-byte masking key.
pub const MAX_HEADER_LEN: usize = 14;

/// One parsed RFC 6455 §5.2 frame header. Rule violations that still describe a frame (reserved opcode,
/// RSV bits, non-minimal length, wrong masking) are kept as values for the analysis stage to judge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameHeader {
    /// FIN: this is the final fragment of a message.
    pub fin: bool,
    /// RSV1..RSV3 as 3 bits: `0b100` = RSV1 (permessage-deflate "compressed"), `0b010` = RSV2,
    /// `0b001` = RSV3.
    pub rsv: u8,
    /// The frame's opcode.
    pub opcode: OpCode,
    /// The masking key when the MASK bit is set (client-to-server frames).
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes (at most 2^63 - 1).
    pub payload_len: u64,
    /// Header length in bytes, 2..=14: where the payload starts.
    pub header_len: u8,
    /// False when a 16- or 64-bit length encodes a value that fits a shorter form.
    pub minimal_length: bool,
}

impl FrameHeader {
    /// RSV1 is set; under permessage-deflate this marks the first frame of a compressed message.
    pub fn rsv1(&self) -> bool {
        self.rsv & 0b100 != 0
    }

    /// The MASK bit is set.
    pub fn is_masked(&self) -> bool {
        self.mask.is_some()
    }

    /// Header plus payload length: the stream distance to the next frame's header (saturating; a
    /// 2^63-1 payload cannot overflow a `u64` with at most 14 header bytes).
    pub fn frame_len(&self) -> u64 {
        self.payload_len.saturating_add(u64::from(self.header_len))
    }
}

/// A header that cannot describe a frame, so the stream is not where we thought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderError {
    /// RFC 6455 §5.2: in the 64-bit length "the most significant bit MUST be 0".
    LengthTopBitSet,
    /// A control frame (opcode `0x8..=0xF`) whose length does not fit 16 bits. Never returned by
    /// `parse_frame_header`; the framer raises it because RFC 6455 §5.5 caps control payloads at 125 bytes
    /// and streaming a multi-gigabyte "control payload" would swallow the rest of the connection.
    ControlFrameTooLong,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::LengthTopBitSet => {
                f.write_str("64-bit payload length has its most significant bit set")
            }
            HeaderError::ControlFrameTooLong => {
                f.write_str("control frame claims more than 65535 payload bytes")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

/// Result of `parse_frame_header`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderParse {
    /// A full header; its `header_len` bytes were read.
    Complete(FrameHeader),
    /// The input ends inside the header; `needed` more bytes are required at least (exact once the second
    /// byte is present). Nothing was consumed.
    Incomplete {
        /// Minimum number of additional bytes before the parse can progress.
        needed: usize,
    },
    /// The bytes cannot be a frame header.
    Invalid(HeaderError),
}

/// Header bytes required, as far as `input` tells: 2 until the second byte is known, then exact.
fn required_header_len(input: &[u8]) -> usize {
    match input.get(1) {
        None => 2,
        Some(&b1) => {
            let ext = match b1 & 0x7F {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
            2 + ext + mask
        }
    }
}

/// The nom grammar of RFC 6455 §5.2; the inner `Result` carries a header that parsed but cannot be a frame.
fn header(input: &[u8]) -> IResult<&[u8], Result<FrameHeader, HeaderError>> {
    // RFC 6455 §5.2: FIN (1 bit), RSV1..3 (1 bit each), opcode (4 bits), MASK (1 bit), payload len (7 bits).
    let (i, b0) = be_u8(input)?;
    let (i, b1) = be_u8(i)?;
    // RFC 6455 §5.2: "If 0-125, that is the payload length. If 126, the following 2 bytes interpreted as a
    // 16-bit unsigned integer are the payload length. If 127, the following 8 bytes interpreted as a 64-bit
    // unsigned integer (the most significant bit MUST be 0) are the payload length."
    let (i, payload_len, minimal_length) = match b1 & 0x7F {
        126 => {
            let (i, n) = be_u16(i)?;
            // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
            (i, u64::from(n), n >= 126)
        }
        127 => {
            let (i, n) = be_u64(i)?;
            if n >> 63 != 0 {
                return Ok((i, Err(HeaderError::LengthTopBitSet)));
            }
            (i, n, n > 0xFFFF)
        }
        n => (i, u64::from(n), true),
    };
    // RFC 6455 §5.2: "Mask: 1 bit. Defines whether the "Payload data" is masked. If set to 1, a masking key
    // is present in masking-key".
    let (i, mask) = if b1 & 0x80 != 0 {
        let (i, k) = take(4usize).parse(i)?;
        (i, Some([k[0], k[1], k[2], k[3]]))
    } else {
        (i, None)
    };
    let header_len = (input.len() - i.len()) as u8;
    Ok((
        i,
        Ok(FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv: (b0 >> 4) & 0b111,
            opcode: OpCode::from_u4(b0),
            mask,
            payload_len,
            header_len,
            minimal_length,
        }),
    ))
}

/// Streaming header parser written with nom 8 streaming combinators: reads one header from the start of
/// `input`, or says how many more bytes it needs without consuming anything. Never panics.
pub fn parse_frame_header(input: &[u8]) -> HeaderParse {
    match header(input) {
        Ok((_, Ok(h))) => HeaderParse::Complete(h),
        Ok((_, Err(e))) => HeaderParse::Invalid(e),
        // Incomplete is the only error these streaming byte parsers return; map anything else the same way
        // rather than panic.
        Err(_) => HeaderParse::Incomplete {
            needed: required_header_len(input)
                .saturating_sub(input.len())
                .max(1),
        },
    }
}

/// Builds one frame's wire bytes: the minimal length form, the mask applied when `mask` is `Some`. `rsv` is
/// the 3-bit field (`0b100` = RSV1) and `opcode` the 4-bit value; higher bits of both are ignored.
pub fn encode_frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_HEADER_LEN + payload.len());
    out.push(u8::from(fin) << 7 | (rsv & 0b111) << 4 | (opcode & 0x0F));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len() as u64;
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xFFFF {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    let start = out.len() + if mask.is_some() { 4 } else { 0 };
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> FrameHeader {
        match parse_frame_header(bytes) {
            HeaderParse::Complete(h) => h,
            other => panic!("expected a header, got {other:?}"),
        }
    }

    #[test]
    fn rfc6455_5_7_single_frame_unmasked_text() {
        // RFC 6455 §5.7: "A single-frame unmasked text message 0x81 0x05 0x48 0x65 0x6c 0x6c 0x6f".
        let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
        let h = complete(&wire);
        assert_eq!(
            h,
            FrameHeader {
                fin: true,
                rsv: 0,
                opcode: OpCode::Text,
                mask: None,
                payload_len: 5,
                header_len: 2,
                minimal_length: true
            }
        );
        assert_eq!(&wire[2..], b"Hello");
        assert_eq!(encode_frame(true, 0, 1, None, b"Hello"), wire);
    }

    #[test]
    fn rfc6455_5_7_single_frame_masked_text() {
        // RFC 6455 §5.7: "A single-frame masked text message
        // 0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58".
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let h = complete(&wire);
        assert_eq!(h.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(
            (h.payload_len, h.header_len, h.fin, h.opcode),
            (5, 6, true, OpCode::Text)
        );
        let mut payload = wire[6..].to_vec();
        apply_mask(&mut payload, h.mask.unwrap(), 0);
        assert_eq!(payload, b"Hello");
        assert_eq!(
            encode_frame(true, 0, 1, Some([0x37, 0xfa, 0x21, 0x3d]), b"Hello"),
            wire
        );
    }

    #[test]
    fn rfc6455_5_7_fragmented_text() {
        // RFC 6455 §5.7: "contains "Hel" 0x01 0x03 0x48 0x65 0x6c; contains "lo" 0x80 0x02 0x6c 0x6f".
        let first = complete(&[0x01, 0x03, 0x48, 0x65, 0x6c]);
        assert_eq!(
            (first.fin, first.opcode, first.payload_len),
            (false, OpCode::Text, 3)
        );
        let second = complete(&[0x80, 0x02, 0x6c, 0x6f]);
        assert_eq!(
            (second.fin, second.opcode, second.payload_len),
            (true, OpCode::Continuation, 2)
        );
    }

    #[test]
    fn rfc6455_5_7_ping_pong() {
        // RFC 6455 §5.7: "Unmasked Ping request and masked Ping response":
        // "0x89 0x05 0x48 0x65 0x6c 0x6c 0x6f" and "0x8a 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58".
        let ping = complete(&[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        assert_eq!(
            (ping.opcode, ping.payload_len, ping.mask),
            (OpCode::Ping, 5, None)
        );
        let pong = complete(&[
            0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        assert_eq!(
            (pong.opcode, pong.payload_len, pong.header_len),
            (OpCode::Pong, 5, 6)
        );
        assert!(ping.opcode.is_control() && pong.fin);
    }

    #[test]
    fn rfc6455_5_7_binary_16_and_64_bit_lengths() {
        // RFC 6455 §5.7: "256 bytes binary message in a single unmasked frame 0x82 0x7E 0x0100 [256 bytes]".
        let h = complete(&[0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(
            (h.opcode, h.payload_len, h.header_len, h.minimal_length),
            (OpCode::Binary, 256, 4, true)
        );
        assert_eq!(
            &encode_frame(true, 0, 2, None, &[0u8; 256])[..4],
            [0x82, 0x7E, 0x01, 0x00]
        );
        // RFC 6455 §5.7: "64KiB binary message in a single unmasked frame
        // 0x82 0x7F 0x0000000000010000 [65536 bytes]".
        let wire = [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
        let h = complete(&wire);
        assert_eq!(
            (h.payload_len, h.header_len, h.minimal_length),
            (65536, 10, true)
        );
        assert_eq!(
            &encode_frame(true, 0, 2, None, &vec![0u8; 65536])[..10],
            wire
        );
    }

    #[test]
    fn non_minimal_lengths() {
        // 5 in the 16-bit form.
        assert!(!complete(&[0x82, 0x7E, 0x00, 0x05]).minimal_length);
        // 125 in the 16-bit form; 126 is the smallest minimal value.
        assert!(!complete(&[0x82, 0x7E, 0x00, 0x7D]).minimal_length);
        assert!(complete(&[0x82, 0x7E, 0x00, 0x7E]).minimal_length);
        // 0xFFFF in the 64-bit form; 0x10000 is the smallest minimal value.
        assert!(!complete(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]).minimal_length);
        assert!(!complete(&[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0x00, 0x03]).minimal_length);
        assert!(complete(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0x00, 0x00]).minimal_length);
    }

    #[test]
    fn length_top_bit_set_is_invalid() {
        let wire = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            parse_frame_header(&wire),
            HeaderParse::Invalid(HeaderError::LengthTopBitSet)
        );
        // Detected before the masking key arrives.
        let masked = [0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            parse_frame_header(&masked),
            HeaderParse::Invalid(HeaderError::LengthTopBitSet)
        );
        // 2^63 - 1 is the largest legal length.
        let max = complete(&[0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(max.payload_len, (1u64 << 63) - 1);
        assert_eq!(max.frame_len(), (1u64 << 63) - 1 + 10);
    }

    #[test]
    fn rsv_bits_and_reserved_opcodes_are_kept() {
        let h = complete(&[0xC1, 0x00]);
        assert_eq!((h.rsv, h.rsv1()), (0b100, true));
        assert_eq!(complete(&[0xB3, 0x00]).rsv, 0b011);
        assert_eq!(complete(&[0x8B, 0x00]).opcode, OpCode::Reserved(0xB));
        assert_eq!(encode_frame(true, 0b101, 0x3, None, b"")[0], 0xD3);
    }

    #[test]
    fn every_prefix_is_incomplete_with_exact_needs() {
        let frames = [
            encode_frame(true, 0, 1, None, b"Hello"),
            encode_frame(true, 0, 1, Some([1, 2, 3, 4]), b"Hello"),
            encode_frame(true, 0, 2, None, &[7u8; 300]),
            encode_frame(false, 0b100, 2, Some([9, 8, 7, 6]), &[7u8; 70000]),
        ];
        for wire in &frames {
            let h = complete(wire);
            let hl = usize::from(h.header_len);
            for cut in 0..hl {
                let needed = match parse_frame_header(&wire[..cut]) {
                    HeaderParse::Incomplete { needed } => needed,
                    other => panic!("cut {cut}: {other:?}"),
                };
                if cut >= 2 {
                    assert_eq!(needed, hl - cut, "cut {cut}");
                } else {
                    assert_eq!(needed, 2 - cut, "cut {cut}");
                }
            }
            assert_eq!(complete(&wire[..hl]), h);
        }
    }

    #[test]
    fn never_panics_on_any_short_input() {
        // Every 2-byte prefix with every length form and mask bit, followed by filler bytes.
        for b0 in 0u8..=255 {
            for b1 in [0x00u8, 0x7D, 0x7E, 0x7F, 0x80, 0xFE, 0xFF] {
                for fill in [0x00u8, 0x80, 0xFF] {
                    let mut v = vec![b0, b1];
                    v.extend_from_slice(&[fill; 12]);
                    for cut in 0..=v.len() {
                        let _ = parse_frame_header(&v[..cut]);
                    }
                }
            }
        }
    }
}
