//! TLS records (RFC 8446 §5.1, RFC 5246 §6.2): the 5-byte header, and a per-direction framer
//! that cuts the reassembled TCP byte stream into whole records, however the stream was split,
//! reports the bytes a gap took, and finds record boundaries again after one.

use nom::IResult;
use nom::Parser;
use nom::number::complete::{be_u8, be_u16};

/// Bytes of a record header: type, legacy version, length.
pub const HEADER_LEN: usize = 5;

/// Largest TLSCiphertext fragment in TLS 1.2: 2^14 + 2048 (RFC 5246 §6.2.3). TLS 1.3 allows
/// only 2^14 + 256 (RFC 8446 §5.2); the framer accepts the larger bound for both, so that an
/// over-long 1.3 record is reported by the decryptor rather than lost to a resync.
pub const MAX_FRAGMENT: usize = (1 << 14) + 2048;

/// Largest TLS 1.3 ciphertext fragment (RFC 8446 §5.2).
pub const MAX_TLS13_FRAGMENT: usize = (1 << 14) + 256;

/// Bytes held while looking for a record boundary: two largest records, enough to confirm a
/// candidate header by the header that follows its record.
pub const HUNT_WINDOW: usize = 2 * (HEADER_LEN + MAX_FRAGMENT) + HEADER_LEN;

/// Record content types (RFC 8446 §5.1, RFC 6520 for heartbeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// 20.
    ChangeCipherSpec,
    /// 21.
    Alert,
    /// 22.
    Handshake,
    /// 23.
    ApplicationData,
    /// 24.
    Heartbeat,
    /// Anything else (never valid on the wire).
    Other(u8),
}

impl ContentType {
    /// From the wire byte.
    pub fn from_byte(b: u8) -> ContentType {
        match b {
            20 => ContentType::ChangeCipherSpec,
            21 => ContentType::Alert,
            22 => ContentType::Handshake,
            23 => ContentType::ApplicationData,
            24 => ContentType::Heartbeat,
            n => ContentType::Other(n),
        }
    }

    /// The wire byte.
    pub fn byte(self) -> u8 {
        match self {
            ContentType::ChangeCipherSpec => 20,
            ContentType::Alert => 21,
            ContentType::Handshake => 22,
            ContentType::ApplicationData => 23,
            ContentType::Heartbeat => 24,
            ContentType::Other(n) => n,
        }
    }
}

/// A record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Outer content type.
    pub content_type: ContentType,
    /// `legacy_record_version`.
    pub version: u16,
    /// Fragment length.
    pub length: u16,
}

impl Header {
    /// Could this be a real record header? Known type, SSLv3..TLS 1.3 version, length within
    /// the RFC bound, and no empty fragment where the RFCs forbid one (RFC 8446 §5.1:
    /// "Implementations MUST NOT send zero-length fragments of Handshake types").
    pub fn plausible(&self) -> bool {
        let type_ok = matches!(
            self.content_type,
            ContentType::ChangeCipherSpec
                | ContentType::Alert
                | ContentType::Handshake
                | ContentType::ApplicationData
                | ContentType::Heartbeat
        );
        let version_ok = (0x0300..=0x0304).contains(&self.version);
        let len = usize::from(self.length);
        let len_ok =
            len <= MAX_FRAGMENT && (len > 0 || self.content_type == ContentType::ApplicationData);
        type_ok && version_ok && len_ok
    }

    /// The 5 header bytes (the TLS 1.3 AAD).
    pub fn bytes(&self) -> [u8; HEADER_LEN] {
        let v = self.version.to_be_bytes();
        let l = self.length.to_be_bytes();
        [self.content_type.byte(), v[0], v[1], l[0], l[1]]
    }
}

/// nom parser of a record header (complete input: the caller checks there are 5 bytes).
pub fn parse_header(input: &[u8]) -> IResult<&[u8], Header> {
    let (rest, (t, version, length)) = (be_u8, be_u16, be_u16).parse(input)?;
    Ok((
        rest,
        Header {
            content_type: ContentType::from_byte(t),
            version,
            length,
        },
    ))
}

fn header_at(bytes: &[u8]) -> Option<Header> {
    parse_header(bytes).ok().map(|(_, h)| h)
}

/// One whole record.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Its header.
    pub header: Header,
    fragment: Fragment<'a>,
}

/// A record's fragment: in the caller's bytes, or in the framer's own buffer (a record that
/// came in pieces), which may be decrypted where it lies.
#[derive(Debug, PartialEq, Eq)]
enum Fragment<'a> {
    Shared(&'a [u8]),
    Held(&'a mut [u8]),
}

impl<'a> Record<'a> {
    /// A record over `fragment` (`header.length` bytes) that is not the framer's.
    pub fn shared(header: Header, fragment: &'a [u8]) -> Record<'a> {
        Record {
            header,
            fragment: Fragment::Shared(fragment),
        }
    }

    /// The fragment (`header.length` bytes).
    pub fn fragment(&self) -> &[u8] {
        match &self.fragment {
            Fragment::Shared(f) => f,
            Fragment::Held(f) => f,
        }
    }

    /// The fragment, writable, when it lies in the framer's buffer (the record was assembled
    /// from pieces): the caller may decrypt it in place instead of copying it out. The framer
    /// reuses the buffer after the callback returns.
    pub fn fragment_mut(&mut self) -> Option<&mut [u8]> {
        match &mut self.fragment {
            Fragment::Shared(_) => None,
            Fragment::Held(f) => Some(f),
        }
    }
}

/// What the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum FramerEvent<'a> {
    /// A whole record.
    Record(Record<'a>),
    /// Stream bytes that belonged to records that cannot be read (a gap took part of them).
    /// `records` is the number of records these bytes held when it is known (a gap inside one
    /// record whose length was read), `None` when boundaries were lost.
    Lost {
        /// Stream bytes (gap bytes included) from the start of the first damaged record.
        bytes: u64,
        /// Whole records lost, when known.
        records: Option<u64>,
    },
    /// An implausible header where a record should start: the framer hunts for a boundary.
    Invalid {
        /// The five bytes read as a header.
        header: [u8; HEADER_LEN],
    },
    /// A record boundary was found again; `skipped` stream bytes before it were not records
    /// (or were records whose boundaries were lost), counted since the `Lost`/`Invalid`.
    Resynced {
        /// Bytes skipped while hunting.
        skipped: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// At a record boundary or inside a record whose header is read (`held` has the start).
    Synced,
    /// The rest of a record cut by a gap: skip this many bytes, then a header follows.
    Skipping(u64),
    /// Boundary unknown: look for a plausible header, confirmed by the header after it.
    Hunting,
}

/// One direction's record framer. Memory: at most one record (synced) or [`HUNT_WINDOW`]
/// bytes (hunting).
#[derive(Debug)]
pub struct RecordFramer {
    mode: Mode,
    /// Synced: the start of a record that did not arrive whole. Hunting: the window.
    held: Vec<u8>,
    /// Hunting: bytes dropped from the window so far.
    skipped: u64,
    /// Stream bytes consumed, gaps included.
    offset: u64,
}

impl Default for RecordFramer {
    fn default() -> Self {
        RecordFramer::new()
    }
}

impl RecordFramer {
    /// A framer at a record boundary (the start of the stream).
    pub fn new() -> Self {
        RecordFramer {
            mode: Mode::Synced,
            held: Vec::new(),
            skipped: 0,
            offset: 0,
        }
    }

    /// Stream bytes consumed so far, gaps included.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes held (a partial record, or the hunting window).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Is the framer looking for a record boundary?
    pub fn hunting(&self) -> bool {
        self.mode == Mode::Hunting
    }

    /// The next bytes of the stream.
    pub fn push<F: FnMut(FramerEvent<'_>)>(&mut self, mut data: &[u8], out: &mut F) {
        self.offset += data.len() as u64;
        while !data.is_empty() {
            match self.mode {
                Mode::Skipping(n) => {
                    let take = (data.len() as u64).min(n);
                    data = &data[take as usize..];
                    self.mode = if take == n {
                        Mode::Synced
                    } else {
                        Mode::Skipping(n - take)
                    };
                }
                Mode::Synced => data = self.push_synced(data, out),
                Mode::Hunting => {
                    self.held.extend_from_slice(data);
                    data = &[];
                    self.hunt(false, out);
                }
            }
        }
    }

    /// Consumes whole records straight from `data` (no copy) and holds a partial one.
    fn push_synced<'d, F: FnMut(FramerEvent<'_>)>(
        &mut self,
        mut data: &'d [u8],
        out: &mut F,
    ) -> &'d [u8] {
        if !self.held.is_empty() {
            // Complete the held header, then the held record.
            if self.held.len() < HEADER_LEN {
                let take = (HEADER_LEN - self.held.len()).min(data.len());
                self.held.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.held.len() < HEADER_LEN {
                    return data;
                }
                let header = header_at(&self.held).expect("bug: 5 bytes");
                if !header.plausible() {
                    self.start_hunting_at_held(out);
                    return data;
                }
            }
            let header = header_at(&self.held).expect("bug: 5 bytes");
            let total = HEADER_LEN + usize::from(header.length);
            let take = (total - self.held.len()).min(data.len());
            self.held.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.held.len() < total {
                return data;
            }
            let mut held = std::mem::take(&mut self.held);
            out(FramerEvent::Record(Record {
                header,
                fragment: Fragment::Held(&mut held[HEADER_LEN..]),
            }));
            // Keep the allocation for the next partial record.
            self.held = held;
            self.held.clear();
        }
        while data.len() >= HEADER_LEN {
            let header = header_at(data).expect("bug: 5 bytes");
            if !header.plausible() {
                self.held.extend_from_slice(data);
                self.start_hunting_at_held(out);
                return &[];
            }
            let total = HEADER_LEN + usize::from(header.length);
            if data.len() < total {
                break;
            }
            out(FramerEvent::Record(Record::shared(
                header,
                &data[HEADER_LEN..total],
            )));
            data = &data[total..];
        }
        self.held.extend_from_slice(data);
        &[]
    }

    /// `held` starts with an implausible header: report it and hunt from the next byte.
    fn start_hunting_at_held<F: FnMut(FramerEvent<'_>)>(&mut self, out: &mut F) {
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&self.held[..HEADER_LEN]);
        out(FramerEvent::Invalid { header });
        self.held.drain(..1);
        self.skipped = 1;
        self.mode = Mode::Hunting;
        self.hunt(false, out);
    }

    /// Looks for a confirmed record start in the window. `at_end`: no more bytes will come,
    /// so a candidate whose record ends exactly at the window's end is accepted unconfirmed.
    fn hunt<F: FnMut(FramerEvent<'_>)>(&mut self, at_end: bool, out: &mut F) {
        let mut i = 0;
        let found = loop {
            if i + HEADER_LEN > self.held.len() {
                break None;
            }
            let Some(h) = header_at(&self.held[i..]).filter(Header::plausible) else {
                i += 1;
                continue;
            };
            let end = i + HEADER_LEN + usize::from(h.length);
            if end + HEADER_LEN <= self.held.len() {
                let confirmed = header_at(&self.held[end..])
                    .is_some_and(|next| next.plausible() && next.version == h.version);
                if confirmed {
                    break Some(i);
                }
                i += 1;
                continue;
            }
            if end == self.held.len() && at_end {
                break Some(i);
            }
            // Cannot decide yet: wait for more bytes (the window is big enough to hold the
            // candidate's record and the next header).
            break None;
        };
        match found {
            Some(i) => {
                self.skipped += i as u64;
                out(FramerEvent::Resynced {
                    skipped: self.skipped,
                });
                self.skipped = 0;
                self.mode = Mode::Synced;
                let window = std::mem::take(&mut self.held);
                let rest = self.push_synced(&window[i..], out);
                debug_assert!(rest.is_empty());
            }
            None => {
                // Drop what can no longer start a record: everything before the first
                // undecided candidate, and the front of an over-full window.
                let keep_from = if self.held.len() > HUNT_WINDOW {
                    i.max(self.held.len() - HUNT_WINDOW)
                } else {
                    i
                };
                if keep_from > 0 {
                    self.skipped += keep_from as u64;
                    self.held.drain(..keep_from);
                }
            }
        }
    }

    /// `len` bytes of the stream are missing.
    pub fn gap<F: FnMut(FramerEvent<'_>)>(&mut self, len: u64, out: &mut F) {
        self.offset += len;
        match self.mode {
            Mode::Skipping(n) => {
                if len < n {
                    self.mode = Mode::Skipping(n - len);
                } else {
                    // The gap ran past the damaged record: boundaries are lost.
                    out(FramerEvent::Lost {
                        bytes: len - n,
                        records: None,
                    });
                    self.enter_hunting(0);
                }
            }
            Mode::Hunting => self.skipped += len,
            Mode::Synced => {
                let held = self.held.len() as u64;
                if self.held.len() >= HEADER_LEN {
                    let header = header_at(&self.held).expect("bug: 5 bytes");
                    let total = (HEADER_LEN + usize::from(header.length)) as u64;
                    let missing = total - held;
                    self.held.clear();
                    if len <= missing {
                        // The whole record is lost; its tail still arrives and is skipped.
                        out(FramerEvent::Lost {
                            bytes: total,
                            records: Some(1),
                        });
                        self.mode = if len == missing {
                            Mode::Synced
                        } else {
                            Mode::Skipping(missing - len)
                        };
                        return;
                    }
                    out(FramerEvent::Lost {
                        bytes: held + len,
                        records: None,
                    });
                } else {
                    out(FramerEvent::Lost {
                        bytes: held + len,
                        records: None,
                    });
                }
                self.held.clear();
                self.enter_hunting(0);
            }
        }
    }

    fn enter_hunting(&mut self, skipped: u64) {
        self.held.clear();
        self.skipped = skipped;
        self.mode = Mode::Hunting;
    }

    /// The stream ended: accept an unconfirmed last record while hunting, and say how many
    /// bytes of an unfinished record are left (0 at a boundary).
    pub fn finish<F: FnMut(FramerEvent<'_>)>(&mut self, out: &mut F) -> usize {
        if self.mode == Mode::Hunting {
            self.hunt(true, out);
        }
        match self.mode {
            Mode::Hunting => {
                let left = self.held.len();
                self.held.clear();
                left
            }
            _ => {
                let left = self.held.len();
                self.held.clear();
                left
            }
        }
    }
}

/// `Some(true)` when `first` starts like a TLS ClientHello (handshake record, version 3.x,
/// handshake type 1, lengths that agree), `Some(false)` when it cannot be one, `None` when
/// more bytes are needed to tell. Used to pick the TLS layer by content on any port.
pub fn looks_like_client_hello(first: &[u8]) -> Option<bool> {
    // 16 03 0x LL LL 01 MM MM MM
    let checks: [&dyn Fn(u8) -> bool; 6] = [
        &|b| b == 0x16,
        &|b| b == 0x03,
        &|b| b <= 0x04,
        &|_| true,
        &|_| true,
        &|b| b == 0x01,
    ];
    for (i, check) in checks.iter().enumerate() {
        match first.get(i) {
            None => return None,
            Some(&b) if !check(b) => return Some(false),
            _ => {}
        }
    }
    let record_len = usize::from(u16::from_be_bytes([first[3], first[4]]));
    if !(4..=MAX_FRAGMENT).contains(&record_len) {
        return Some(false);
    }
    if first.len() < 9 {
        return None;
    }
    let body_len =
        (usize::from(first[6]) << 16) | (usize::from(first[7]) << 8) | usize::from(first[8]);
    // The smallest ClientHello body: version, random, three empty vectors = 38 bytes. A body
    // longer than the record continues in the next record, which is allowed.
    Some(body_len >= 38)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(t: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![t, 3, 3];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Ev {
        Rec(u8, Vec<u8>),
        Lost(u64, Option<u64>),
        Invalid,
        Resynced(u64),
    }

    fn run(pieces: &[Result<&[u8], u64>]) -> (Vec<Ev>, usize) {
        let mut f = RecordFramer::new();
        let mut evs = Vec::new();
        let mut on = |e: FramerEvent<'_>| {
            evs.push(match e {
                FramerEvent::Record(r) => {
                    Ev::Rec(r.header.content_type.byte(), r.fragment().to_vec())
                }
                FramerEvent::Lost { bytes, records } => Ev::Lost(bytes, records),
                FramerEvent::Invalid { .. } => Ev::Invalid,
                FramerEvent::Resynced { skipped } => Ev::Resynced(skipped),
            })
        };
        for p in pieces {
            match p {
                Ok(d) => f.push(d, &mut on),
                Err(n) => f.gap(*n, &mut on),
            }
        }
        let left = f.finish(&mut on);
        (evs, left)
    }

    #[test]
    fn records_come_out_whole_at_every_split_point() {
        let mut stream = record(22, b"hello handshake");
        stream.extend(record(23, &[7u8; 300]));
        stream.extend(record(23, b""));
        stream.extend(record(21, &[1, 0]));
        let (whole, _) = run(&[Ok(&stream)]);
        assert_eq!(whole.len(), 4);
        for cut in 0..=stream.len() {
            let (evs, left) = run(&[Ok(&stream[..cut]), Ok(&stream[cut..])]);
            assert_eq!(evs, whole, "cut at {cut}");
            assert_eq!(left, 0);
        }
        let mut f = RecordFramer::new();
        let mut n = 0;
        for b in &stream {
            f.push(std::slice::from_ref(b), &mut |_| n += 1);
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn a_gap_inside_a_record_loses_that_record_only() {
        let a = record(23, &[1u8; 100]);
        let b = record(23, &[2u8; 50]);
        let mut stream = a.clone();
        stream.extend(&b);
        // Gap of 10 bytes at offset 40 of record a.
        let (evs, _) = run(&[Ok(&stream[..40]), Err(10), Ok(&stream[50..])]);
        assert_eq!(
            evs,
            vec![Ev::Lost(105, Some(1)), Ev::Rec(23, vec![2u8; 50])]
        );
        // A gap that ends exactly at the record's end.
        let (evs, _) = run(&[Ok(&stream[..40]), Err(65), Ok(&stream[105..])]);
        assert_eq!(
            evs,
            vec![Ev::Lost(105, Some(1)), Ev::Rec(23, vec![2u8; 50])]
        );
    }

    #[test]
    fn a_gap_across_boundaries_hunts_and_relocks() {
        let recs: Vec<Vec<u8>> = (0..6u8)
            .map(|i| record(23, &vec![0x40 + i; 30 + usize::from(i)]))
            .collect();
        let stream: Vec<u8> = recs.concat();
        // Lose from the middle of record 1 to the middle of record 3.
        let from = recs[0].len() + 10;
        let to = recs[0].len() + recs[1].len() + recs[2].len() + 7;
        let (evs, _) = run(&[
            Ok(&stream[..from]),
            Err((to - from) as u64),
            Ok(&stream[to..]),
        ]);
        let skipped = (recs[3].len() - 7) as u64;
        assert_eq!(evs[0], Ev::Rec(23, vec![0x40; 30]));
        assert_eq!(evs[1], Ev::Lost(10 + (to - from) as u64, None));
        assert_eq!(evs[2], Ev::Resynced(skipped));
        assert_eq!(
            evs[3..],
            [Ev::Rec(23, vec![0x44; 34]), Ev::Rec(23, vec![0x45; 35])]
        );
    }

    #[test]
    fn an_implausible_length_is_not_buffered_and_the_stream_relocks() {
        // Record length 2^16-1: over the RFC bound, so a framing error, never a 64 KiB buffer.
        let mut stream = vec![0x17, 0x03, 0x03, 0xff, 0xff];
        stream.extend_from_slice(&[0u8; 20]);
        stream.extend(record(23, b"after"));
        stream.extend(record(23, b"again"));
        let (evs, _) = run(&[Ok(&stream)]);
        assert_eq!(evs[0], Ev::Invalid);
        assert_eq!(evs[1], Ev::Resynced(25));
        assert_eq!(
            evs[2..],
            [
                Ev::Rec(23, b"after".to_vec()),
                Ev::Rec(23, b"again".to_vec())
            ]
        );
    }

    #[test]
    fn hunting_memory_is_bounded_on_junk() {
        let mut f = RecordFramer::new();
        f.push(&[0xff; 10], &mut |_| {});
        let junk = vec![0x17u8; 4096];
        for _ in 0..200 {
            f.push(&junk, &mut |_| {});
            assert!(f.held() <= HUNT_WINDOW + junk.len());
        }
    }

    #[test]
    fn client_hello_sniffing() {
        let ch = [
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        assert_eq!(looks_like_client_hello(&ch), Some(true));
        assert_eq!(looks_like_client_hello(&ch[..3]), None);
        assert_eq!(looks_like_client_hello(&ch[..7]), None);
        assert_eq!(looks_like_client_hello(b"GET / HTTP/1.1\r\n"), Some(false));
        assert_eq!(
            looks_like_client_hello(&[0x16, 0x03, 0x01, 0x00, 0x02, 0x01]),
            Some(false)
        );
        assert_eq!(
            looks_like_client_hello(&[0x16, 0x03, 0x03, 0x00, 0x40, 0x02]),
            Some(false)
        );
        assert_eq!(looks_like_client_hello(&[]), None);
    }
}
