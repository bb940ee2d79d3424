//! A compact byte encoding for what is kept packed inside this process only (an idle
//! connection's handshake record, the endings a run writes out for its findings): LEB128
//! varints, strings as their length and bytes, floats as their bits. Not a file format: nothing
//! written with it outlives the run. (No crate in our dependencies serializes to bytes, and
//! these few methods are all it takes.)

/// Lengths and numbers as LEB128 varints; an `Option` as 0 for None, else the value plus one
/// (strings: their length plus one, then the bytes).
#[derive(Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// One byte.
    pub fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    /// A number, 7 bits a byte.
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A length.
    pub fn length(&mut self, n: usize) {
        self.varint(n as u64);
    }

    /// A string: its length, then its bytes.
    pub fn str(&mut self, s: &str) {
        self.length(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }

    /// A string or none.
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.byte(0),
            Some(s) => {
                self.length(s.len() + 1);
                self.0.extend_from_slice(s.as_bytes());
            }
        }
    }

    /// A number or none.
    pub fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.byte(0),
            Some(v) => {
                self.byte(1);
                self.varint(v);
            }
        }
    }

    /// Bytes as they are (the reader knows how many).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// A float's bits (NaN kept).
    pub fn f32(&mut self, v: f32) {
        self.raw(&v.to_le_bytes());
    }

    /// A float's bits.
    pub fn f64(&mut self, v: f64) {
        self.raw(&v.to_le_bytes());
    }
}

/// Reads what [`Writer`] wrote; `None` when the bytes run out or are not what was written.
#[derive(Debug)]
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    /// One byte.
    pub fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// A number.
    pub fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7F) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// A length.
    pub fn length(&mut self) -> Option<usize> {
        usize::try_from(self.varint()?).ok()
    }

    /// The next `n` bytes as they are.
    pub fn raw(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// The next `N` bytes.
    pub fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.raw(N)?.try_into().ok()
    }

    fn string(&mut self, n: usize) -> Option<String> {
        String::from_utf8(self.raw(n)?.to_vec()).ok()
    }

    /// A string.
    pub fn str(&mut self) -> Option<String> {
        let n = self.length()?;
        self.string(n)
    }

    /// A string or none.
    pub fn opt_str(&mut self) -> Option<Option<String>> {
        match self.length()? {
            0 => Some(None),
            n => self.string(n - 1).map(Some),
        }
    }

    /// A number or none.
    pub fn opt_u64(&mut self) -> Option<Option<u64>> {
        match self.byte()? {
            0 => Some(None),
            _ => self.varint().map(Some),
        }
    }

    /// A float.
    pub fn f32(&mut self) -> Option<f32> {
        self.array().map(f32::from_le_bytes)
    }

    /// A float.
    pub fn f64(&mut self) -> Option<f64> {
        self.array().map(f64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let mut w = Writer::default();
        w.varint(0);
        w.varint(u64::MAX);
        w.str("é1");
        w.opt_str(None);
        w.opt_str(Some(""));
        w.opt_u64(Some(300));
        w.f32(f32::NAN);
        w.f64(-1.5);
        let mut r = Reader(&w.0);
        assert_eq!(r.varint(), Some(0));
        assert_eq!(r.varint(), Some(u64::MAX));
        assert_eq!(r.str().as_deref(), Some("é1"));
        assert_eq!(r.opt_str(), Some(None));
        assert_eq!(r.opt_str(), Some(Some(String::new())));
        assert_eq!(r.opt_u64(), Some(Some(300)));
        assert!(r.f32().unwrap().is_nan());
        assert_eq!(r.f64(), Some(-1.5));
        assert_eq!(r.byte(), None, "all read");
    }

    #[test]
    fn cut_input_reads_as_none() {
        let mut w = Writer::default();
        w.str("hello");
        assert_eq!(Reader(&w.0[..3]).str(), None);
        assert_eq!(Reader(&[0x80, 0x80]).varint(), None);
    }
}
