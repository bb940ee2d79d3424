//! Masked payload bytes + masking key + key phase -> unmasked bytes in place (RFC 6455 §5.3). Masking is its
//! own inverse, so the same function masks.

/// XORs `buf` with `key`, starting at key index `phase % 4`: byte `i` of `buf` uses `key[(phase + i) % 4]`.
/// The phase lets a payload split across TCP segments be unmasked piece by piece; the next piece's phase is
/// `(phase + buf.len()) % 4`.
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], phase: usize) {
    // RFC 6455 §5.3: "Octet i of the transformed data ("transformed-octet-i") is the XOR of octet i of the
    // original data ("original-octet-i") with octet at index i modulo 4 of the masking key
    // ("masking-key-octet-j"): j = i MOD 4; transformed-octet-i = original-octet-i XOR masking-key-octet-j".
    let p = phase % 4;
    let k = [key[p], key[(p + 1) % 4], key[(p + 2) % 4], key[(p + 3) % 4]];
    let word = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    // 8 is a multiple of 4, so every chunk starts at key phase `p` again: the rotated key repeats exactly.
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(b) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= k[i % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The RFC's definition, one byte at a time.
    fn reference(buf: &mut [u8], key: [u8; 4], phase: usize) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b ^= key[(phase + i) % 4];
        }
    }

    #[test]
    fn rfc6455_5_7_masked_hello() {
        // RFC 6455 §5.7: masked "Hello" = 0x7f 0x9f 0x4d 0x51 0x58 with key 0x37 0xfa 0x21 0x3d.
        let mut p = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
        apply_mask(&mut p, [0x37, 0xfa, 0x21, 0x3d], 0);
        assert_eq!(&p, b"Hello");
        // Split at every point, carrying the phase.
        for cut in 0..=5 {
            let mut p = [0x7f, 0x9f, 0x4d, 0x51, 0x58];
            let (a, b) = p.split_at_mut(cut);
            apply_mask(a, [0x37, 0xfa, 0x21, 0x3d], 0);
            apply_mask(b, [0x37, 0xfa, 0x21, 0x3d], cut);
            assert_eq!(&p, b"Hello", "cut {cut}");
        }
    }

    #[test]
    fn matches_reference_for_every_length_and_phase() {
        let key = [0x12, 0x9A, 0xF0, 0x5C];
        for len in 0..=40usize {
            for phase in 0..=3usize {
                // Also vary the slice's alignment in memory.
                for align in 0..8usize {
                    let data: Vec<u8> = (0..len + align).map(|i| (i * 37 + 11) as u8).collect();
                    let mut fast = data.clone();
                    let mut slow = data.clone();
                    apply_mask(&mut fast[align..], key, phase);
                    reference(&mut slow[align..], key, phase);
                    assert_eq!(fast, slow, "len {len} phase {phase} align {align}");
                }
            }
        }
    }

    #[test]
    fn phase_is_taken_modulo_4() {
        let mut a = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        let mut b = a;
        apply_mask(&mut a, [9, 8, 7, 6], 2);
        apply_mask(&mut b, [9, 8, 7, 6], 6);
        assert_eq!(a, b);
    }

    proptest! {
        #[test]
        fn prop_matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300),
                                  key in any::<[u8; 4]>(), phase in 0usize..64) {
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask(&mut fast, key, phase);
            reference(&mut slow, key, phase);
            prop_assert_eq!(&fast, &slow);
            // Involution: masking twice restores the input.
            apply_mask(&mut fast, key, phase);
            prop_assert_eq!(&fast, &data);
        }

        #[test]
        fn prop_split_anywhere(data in proptest::collection::vec(any::<u8>(), 0..100),
                               key in any::<[u8; 4]>(), cut in 0usize..100) {
            let cut = cut.min(data.len());
            let mut whole = data.clone();
            apply_mask(&mut whole, key, 1);
            let mut parts = data.clone();
            let (a, b) = parts.split_at_mut(cut);
            apply_mask(a, key, 1);
            apply_mask(b, key, 1 + cut);
            prop_assert_eq!(whole, parts);
        }
    }
}
