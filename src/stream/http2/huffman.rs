//! HPACK's Huffman code (RFC 7541 Appendix B), decoding only.
//!
//! The code is canonical: codes of one length are consecutive and ordered by symbol, each length's
//! first code following the previous length's last. So the 257 code lengths define it entirely,
//! and a canonical decoder needs only the count of codes per length and the symbols in (length,
//! symbol) order, both computed from the lengths at compile time. The tests check the derived
//! codes against codes printed in the RFC.

/// Code length in bits of each symbol 0..=255 and of EOS (256), from RFC 7541 Appendix B.
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

const EOS: u16 = 256;
const MAX_LEN: usize = 30;

/// The decoding tables derived from [`CODE_LENGTHS`].
struct Canonical {
    /// Codes of each length.
    count: [u16; MAX_LEN + 1],
    /// First code of each length.
    first: [u32; MAX_LEN + 1],
    /// Index into `symbols` of each length's first symbol.
    offset: [u16; MAX_LEN + 1],
    /// Symbols ordered by (code length, symbol).
    symbols: [u16; 257],
}

const fn canonical() -> Canonical {
    let mut count = [0u16; MAX_LEN + 1];
    let mut i = 0;
    while i < 257 {
        count[CODE_LENGTHS[i] as usize] += 1;
        i += 1;
    }
    let mut first = [0u32; MAX_LEN + 1];
    let mut offset = [0u16; MAX_LEN + 1];
    let mut code = 0u32;
    let mut seen = 0u16;
    let mut len = 1;
    while len <= MAX_LEN {
        code <<= 1;
        first[len] = code;
        offset[len] = seen;
        code += count[len] as u32;
        seen += count[len];
        len += 1;
    }
    let mut symbols = [0u16; 257];
    let mut filled = [0u16; MAX_LEN + 1];
    let mut sym = 0;
    while sym < 257 {
        let l = CODE_LENGTHS[sym] as usize;
        symbols[(offset[l] + filled[l]) as usize] = sym as u16;
        filled[l] += 1;
        sym += 1;
    }
    Canonical {
        count,
        first,
        offset,
        symbols,
    }
}

static TABLE: Canonical = canonical();

/// Why a Huffman string does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The EOS symbol inside the string (RFC 7541 §5.2: a decoding error).
    Eos,
    /// Padding longer than 7 bits or not the most significant bits of EOS (all ones).
    BadPadding,
}

impl std::fmt::Display for HuffmanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HuffmanError::Eos => "a Huffman string contains the EOS symbol",
            HuffmanError::BadPadding => "a Huffman string ends with invalid padding",
        })
    }
}

/// Decodes `input` and appends the octets to `out`.
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    let t = &TABLE;
    // Bits not yet decoded, right-aligned: at most 29 left over plus 8 new ones.
    let mut acc: u64 = 0;
    let mut bits: usize = 0;
    for &byte in input {
        acc = (acc << 8) | u64::from(byte);
        bits += 8;
        'symbols: while bits >= 5 {
            for len in 5..=bits.min(MAX_LEN) {
                let code = ((acc >> (bits - len)) & ((1u64 << len) - 1)) as u32;
                let index = code.wrapping_sub(t.first[len]);
                if index < u32::from(t.count[len]) {
                    let sym = t.symbols[usize::from(t.offset[len]) + index as usize];
                    if sym == EOS {
                        return Err(HuffmanError::Eos);
                    }
                    out.push(sym as u8);
                    bits -= len;
                    acc &= (1u64 << bits) - 1;
                    continue 'symbols;
                }
            }
            // A longer code than the bits at hand: wait for the next byte.
            break;
        }
    }
    // RFC 7541 §5.2: at most 7 bits of padding, all ones (a prefix of EOS).
    if bits > 7 || acc != (1u64 << bits) - 1 {
        return Err(HuffmanError::BadPadding);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The code of `sym` as derived from the lengths.
    fn code_of(sym: usize) -> (u32, u8) {
        let len = CODE_LENGTHS[sym] as usize;
        let rank = (TABLE.offset[len]..TABLE.offset[len] + TABLE.count[len])
            .position(|i| usize::from(TABLE.symbols[usize::from(i)]) == sym)
            .unwrap();
        (TABLE.first[len] + rank as u32, len as u8)
    }

    #[test]
    fn derived_codes_match_the_rfc_table() {
        // A sample of RFC 7541 Appendix B rows, as printed (hex code, length).
        for (sym, code, len) in [
            (0usize, 0x1ff8u32, 13u8),
            (1, 0x7fffd8, 23),
            (9, 0xffffea, 24),
            (10, 0x3ffffffc, 30),
            (b' ' as usize, 0x14, 6),
            (b'!' as usize, 0x3f8, 10),
            (b'0' as usize, 0x0, 5),
            (b'a' as usize, 0x3, 5),
            (b'e' as usize, 0x5, 5),
            (b'z' as usize, 0x7b, 7),
            (b'~' as usize, 0x1ffd, 13),
            (127, 0xffffffc, 28),
            (128, 0xfffe6, 20),
            (255, 0x3ffffee, 26),
            (256, 0x3fffffff, 30),
        ] {
            assert_eq!(code_of(sym), (code, len), "symbol {sym}");
        }
        // A complete prefix code: the Kraft sum is exactly 1.
        let kraft: u64 = CODE_LENGTHS.iter().map(|&l| 1u64 << (30 - l)).sum();
        assert_eq!(kraft, 1 << 30);
    }

    #[test]
    fn every_symbol_round_trips() {
        // Encode all 256 octets with the derived codes, pad with ones, decode.
        let mut bits: Vec<bool> = Vec::new();
        for sym in 0..256 {
            let (code, len) = code_of(sym);
            for i in (0..len).rev() {
                bits.push(code >> i & 1 == 1);
            }
        }
        while !bits.len().is_multiple_of(8) {
            bits.push(true);
        }
        let bytes: Vec<u8> = bits
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, &b| a << 1 | u8::from(b)))
            .collect();
        let mut out = Vec::new();
        decode(&bytes, &mut out).unwrap();
        assert_eq!(out, (0..=255u8).collect::<Vec<_>>());
    }

    #[test]
    fn padding_and_eos_are_checked() {
        let mut out = Vec::new();
        // "www.example.com" (RFC 7541 C.4.1).
        let www = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        decode(&www, &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        // A whole byte of padding.
        let mut long = www.to_vec();
        long.push(0xff);
        assert_eq!(decode(&long, &mut out), Err(HuffmanError::BadPadding));
        // Padding with a zero bit: 'a' (00011) then 000.
        assert_eq!(decode(&[0x18], &mut out), Err(HuffmanError::BadPadding));
        // EOS itself (30 ones) then 2 bits of padding.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut out),
            Err(HuffmanError::Eos)
        );
        out.clear();
        decode(&[], &mut out).unwrap();
        assert!(out.is_empty());
    }
}
