//! Text-message payload chunks (in stream order, any split) -> "is this valid UTF-8 so far / in full".
//!
//! RFC 6455 §5.6: "The "Payload data" is text data encoded as UTF-8. Note that a particular text frame might
//! include a partial UTF-8 sequence; however, the whole message MUST contain valid UTF-8." A code point may be
//! split across frames and TCP segments, so validation keeps at most 3 bytes of an unfinished code point.

use simdutf8::compat::from_utf8;

/// Incremental UTF-8 validator for one message; holds no more than one unfinished code point (3 bytes).
#[derive(Clone, Debug, Default)]
pub struct Utf8Validator {
    /// Bytes of an unfinished code point at the end of the data seen so far.
    pending: [u8; 4],
    /// How many bytes of `pending` are in use (0..=3).
    pending_len: u8,
    /// False once any invalid sequence was seen.
    invalid: bool,
}

/// Length of the UTF-8 sequence that starts with lead byte `b` (only called on valid lead bytes).
fn sequence_len(b: u8) -> usize {
    match b {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

impl Utf8Validator {
    /// A validator for a new message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates the next chunk. Returns false once the data seen so far cannot be the start of valid UTF-8
    /// (and keeps returning false); a code point cut at the chunk's end is not an error.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.invalid {
            return false;
        }
        let mut rest = chunk;
        if self.pending_len > 0 {
            let have = usize::from(self.pending_len);
            let want = sequence_len(self.pending[0]);
            let take = (want - have).min(rest.len());
            let mut seq = [0u8; 4];
            seq[..have].copy_from_slice(&self.pending[..have]);
            seq[have..have + take].copy_from_slice(&rest[..take]);
            let seq = &seq[..have + take];
            match from_utf8(seq) {
                Ok(_) => self.pending_len = 0,
                // Still short: keep the longer prefix, it is valid so far.
                Err(e) if e.error_len().is_none() => {
                    self.pending[..seq.len()].copy_from_slice(seq);
                    self.pending_len = seq.len() as u8;
                }
                Err(_) => {
                    self.invalid = true;
                    return false;
                }
            }
            rest = &rest[take..];
            if self.pending_len > 0 {
                // The whole chunk went into the unfinished code point.
                return true;
            }
        }
        match from_utf8(rest) {
            Ok(_) => true,
            // simdutf8::compat: `error_len() == None` means the input ends inside a code point that is valid
            // so far; that tail (at most 3 bytes) waits for the next chunk.
            Err(e) if e.error_len().is_none() => {
                let tail = &rest[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                true
            }
            Err(_) => {
                self.invalid = true;
                false
            }
        }
    }

    /// Ends the message: false if it was invalid or stops inside a code point (which then marks it invalid).
    /// Call `reset` before reusing the validator for another message.
    pub fn finish(&mut self) -> bool {
        if self.pending_len > 0 {
            self.invalid = true;
            self.pending_len = 0;
        }
        !self.invalid
    }

    /// True while no invalid sequence has been seen (an unfinished trailing code point still counts as valid).
    pub fn is_valid(&self) -> bool {
        !self.invalid
    }

    /// Forgets everything, ready for the next message.
    pub fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_chunks(chunks: &[&[u8]]) -> bool {
        let mut v = Utf8Validator::new();
        for c in chunks {
            v.push(c);
        }
        v.finish()
    }

    #[test]
    fn every_split_point_of_multibyte_text() {
        // 1-, 2-, 3- and 4-byte code points: "aé€𝄞" plus Greek and emoji.
        let s = "aé€𝄞 καλημέρα 😀!".as_bytes();
        for i in 0..=s.len() {
            assert!(check_chunks(&[&s[..i], &s[i..]]), "split {i}");
            for j in i..=s.len() {
                assert!(check_chunks(&[&s[..i], &s[i..j], &s[j..]]), "split {i} {j}");
            }
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert!(check_chunks(&bytes));
    }

    #[test]
    fn invalid_is_found_at_every_split_point() {
        // 0xE2 0x82 0x28: a 3-byte sequence broken by '('; 0xC0 0xAF: overlong '/'; 0xED 0xA0 0x80: surrogate.
        for bad in [
            &b"ok \xE2\x82\x28 tail"[..],
            b"\xC0\xAF",
            b"x\xED\xA0\x80y",
            b"\xF5\x80\x80\x80",
            b"\xFF",
        ] {
            for i in 0..=bad.len() {
                assert!(!check_chunks(&[&bad[..i], &bad[i..]]), "{bad:x?} split {i}");
            }
        }
    }

    #[test]
    fn truncated_code_point_fails_at_finish_only() {
        let euro = "€".as_bytes(); // e2 82 ac
        let mut v = Utf8Validator::new();
        assert!(v.push(&euro[..2]));
        assert!(v.is_valid());
        assert!(!v.finish());
        assert!(!v.is_valid());
        v.reset();
        assert!(v.push(&[0xF0]));
        assert!(v.push(&[0x9F]));
        assert!(v.push(&[0x98, 0x80, b'a']));
        assert!(v.finish());
    }

    #[test]
    fn stays_invalid() {
        let mut v = Utf8Validator::new();
        assert!(!v.push(&[0x80]));
        assert!(!v.push(b"fine"));
        assert!(!v.finish());
    }

    #[test]
    fn empty_message_is_valid() {
        let mut v = Utf8Validator::new();
        assert!(v.push(&[]));
        assert!(v.finish());
    }
}
