//! HPACK (RFC 7541), decoding only, for a passive observer: one decoder per direction, fed every
//! header block the direction sends, in order.
//!
//! Own code rather than a crate: `h2` keeps its HPACK module private; `loona-hpack` (the
//! maintained fork of `hpack`) decodes, but a passive observer needs what a peer's decoder never
//! does: a table that may be only partly known (capture started late, a header block lost to a
//! capture gap or skipped by a size cap), fields reported as *unknown* instead of a failed block,
//! a memory cap below the table size a peer may legally announce, and a look at the table for
//! the RFC's examples. It would also bring thiserror 1 and tracing twice into the build.
//!
//! The partly known table: entries are indexed from the newest, so entries inserted while we
//! watch are always at the right index, whatever came before. Older entries we never saw are an
//! *unknown tail*: a reference past the known entries yields an unknown field. Once the known
//! entries alone fill the table (plus the smallest possible entry), nothing older can still be
//! in it, and the table is fully known again.

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// RFC 7541 §4.1: an entry's size is its name and value lengths plus 32.
const ENTRY_OVERHEAD: usize = 32;

/// The initial (and default) SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Table bytes (RFC 7541 accounting) kept per decoder. Peers may announce up to 4 GiB; Chromium
/// announces 64 KiB. Entries beyond the cap are dropped and become unknown.
pub const MAX_TABLE_BYTES: usize = 64 * 1024;

/// RFC 7541 Appendix A.
const STATIC_TABLE: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// One decoded header field; `None` for a part that came from a table entry this capture never
/// showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// Field name (lower case in valid HTTP/2).
    pub name: Option<&'a [u8]>,
    /// Field value.
    pub value: Option<&'a [u8]>,
}

/// Why a header block does not decode (RFC 9113 §4.3: a COMPRESSION_ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a representation.
    Truncated,
    /// An integer past 2^32.
    IntegerOverflow,
    /// Index 0 (RFC 7541 §6.1).
    IndexZero,
    /// An index past the static and dynamic tables.
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// Entries in both tables then.
        entries: usize,
    },
    /// A Huffman string that does not decode.
    Huffman(HuffmanError),
    /// A dynamic table size update after a field (RFC 7541 §4.2).
    SizeUpdateNotAtStart,
}

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HpackError::Truncated => f.write_str("the header block ends inside a field"),
            HpackError::IntegerOverflow => f.write_str("an integer larger than 2^32"),
            HpackError::IndexZero => f.write_str("a field refers to index 0 (RFC 7541 §6.1)"),
            HpackError::IndexOutOfRange { index, entries } => write!(
                f,
                "a field refers to table index {index}, but the tables hold {entries} entries"
            ),
            HpackError::Huffman(e) => e.fmt(f),
            HpackError::SizeUpdateNotAtStart => f.write_str(
                "a dynamic table size update after a header field (RFC 7541 §4.2: only at the start of a block)",
            ),
        }
    }
}

/// What decoding one block found besides its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockInfo {
    /// Fields that referred to table entries the capture never showed.
    pub unknown_fields: u32,
    /// Table size updates larger than the decoding side allowed: (new size, allowed). The
    /// decoder follows the encoder anyway (its memory stays capped).
    pub oversized_updates: Vec<(u64, usize)>,
    /// The table held more than [`MAX_TABLE_BYTES`]; older entries were dropped (and are unknown).
    pub capped: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    name: Option<Box<[u8]>>,
    value: Box<[u8]>,
    /// RFC 7541 size; for an entry with an unknown name, the smallest it can be.
    size: usize,
}

/// The dynamic table, newest entry first.
#[derive(Debug, Clone)]
pub struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    /// Entries older than the known ones may exist.
    unknown_tail: bool,
}

impl DynamicTable {
    fn new(unknown_tail: bool) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size: DEFAULT_TABLE_SIZE,
            unknown_tail,
        }
    }

    /// Entries known, newest first, as (name, value); `None` for an unknown name.
    pub fn entries(&self) -> impl Iterator<Item = (Option<&[u8]>, &[u8])> {
        self.entries.iter().map(|e| (e.name.as_deref(), &*e.value))
    }

    /// RFC 7541 size of the known entries.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The table's current maximum size (set by size updates).
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Entries older than the known ones may exist.
    pub fn has_unknown_tail(&self) -> bool {
        self.unknown_tail
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size,
                None => break,
            }
        }
    }

    /// Drops entries past the protocol maximum, then past our memory cap (those become unknown).
    /// Returns whether the cap dropped any.
    fn fit(&mut self) -> bool {
        self.evict_to(self.max_size);
        let mut capped = false;
        if self.size > MAX_TABLE_BYTES {
            self.evict_to(MAX_TABLE_BYTES);
            self.unknown_tail = true;
            capped = true;
        }
        // Known entries that fill the table leave no room for older ones.
        if self.unknown_tail && !capped && self.size + ENTRY_OVERHEAD > self.max_size {
            self.unknown_tail = false;
        }
        capped
    }

    fn set_max_size(&mut self, max: usize) -> bool {
        self.max_size = max;
        if max == 0 {
            self.unknown_tail = false;
        }
        self.fit()
    }

    fn insert(&mut self, name: Option<&[u8]>, value: &[u8]) -> bool {
        let size = name.map_or(0, <[u8]>::len) + value.len() + ENTRY_OVERHEAD;
        if size > self.max_size {
            // RFC 7541 §4.4: an entry larger than the table empties it and is not added.
            self.entries.clear();
            self.size = 0;
            self.unknown_tail = false;
            return false;
        }
        self.entries.push_front(Entry {
            name: name.map(Box::from),
            value: Box::from(value),
            size,
        });
        self.size += size;
        self.fit()
    }
}

/// The decoder of one direction's header blocks.
#[derive(Debug, Clone)]
pub struct Decoder {
    table: DynamicTable,
    /// SETTINGS_HEADER_TABLE_SIZE of the decoding side, when its SETTINGS were seen.
    allowed: Option<usize>,
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

enum Str {
    /// A range of the block (a raw string).
    Raw(usize, usize),
    /// Decoded into the named scratch buffer.
    Decoded,
}

impl Decoder {
    /// A decoder that has seen the connection from its start.
    pub fn new() -> Self {
        Decoder {
            table: DynamicTable::new(false),
            allowed: None,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    /// A decoder for a connection whose earlier header blocks were not seen: references to
    /// older entries give unknown fields until the table is known again.
    pub fn with_unknown_history() -> Self {
        Decoder {
            table: DynamicTable::new(true),
            ..Decoder::new()
        }
    }

    /// The connection is seen from its start (the client preface): nothing is unknown, as long
    /// as no block was decoded under the opposite assumption.
    pub fn assume_complete_history(&mut self) {
        if self.table.entries.is_empty() {
            self.table.unknown_tail = false;
        }
        // Until its SETTINGS say otherwise, the decoding side allows the initial size.
        self.allowed.get_or_insert(DEFAULT_TABLE_SIZE);
    }

    /// Header blocks were lost (a capture gap, a block past a size cap): forget the table, keep
    /// its size, and treat what came before as unknown.
    pub fn lose_history(&mut self) {
        self.table.entries.clear();
        self.table.size = 0;
        self.table.unknown_tail = true;
    }

    /// The decoding side announced SETTINGS_HEADER_TABLE_SIZE: size updates are checked against it.
    pub fn set_allowed_size(&mut self, size: usize) {
        self.allowed = Some(size);
    }

    /// The dynamic table.
    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Decodes one complete header block (HEADERS or PUSH_PROMISE plus its CONTINUATIONs),
    /// calling `on_field` for each field in order. Every representation is decoded, so the
    /// table stays in step; on an error the table is no longer trustworthy.
    pub fn decode(
        &mut self,
        block: &[u8],
        mut on_field: impl FnMut(Field<'_>),
    ) -> Result<BlockInfo, HpackError> {
        let mut info = BlockInfo::default();
        let mut pos = 0;
        let mut fields_seen = false;
        while pos < block.len() {
            let first = block[pos];
            if first & 0x80 != 0 {
                // §6.1 Indexed Header Field.
                let index = read_int(block, &mut pos, 7)?;
                fields_seen = true;
                match self.lookup(index)? {
                    Lookup::Static(n, v) => on_field(Field {
                        name: Some(n.as_bytes()),
                        value: Some(v.as_bytes()),
                    }),
                    Lookup::Dynamic(i) => {
                        let e = &self.table.entries[i];
                        on_field(Field {
                            name: e.name.as_deref(),
                            value: Some(&e.value),
                        });
                    }
                    Lookup::Unknown => {
                        info.unknown_fields += 1;
                        on_field(Field {
                            name: None,
                            value: None,
                        });
                    }
                }
            } else if first & 0xE0 == 0x20 {
                // §6.3 Dynamic Table Size Update.
                if fields_seen {
                    return Err(HpackError::SizeUpdateNotAtStart);
                }
                let size = read_int(block, &mut pos, 5)?;
                if let Some(allowed) = self.allowed
                    && size > allowed as u64
                {
                    info.oversized_updates.push((size, allowed));
                }
                info.capped |= self.table.set_max_size(size as usize);
            } else {
                // §6.2 Literal Header Field: with incremental indexing (01), without (0000),
                // never indexed (0001).
                let (prefix, indexing) = if first & 0xC0 == 0x40 {
                    (6, true)
                } else {
                    (4, false)
                };
                fields_seen = true;
                let index = read_int(block, &mut pos, prefix)?;
                // The name: a table reference, or a literal.
                let mut name_unknown = false;
                let name: Option<Str> = if index == 0 {
                    Some(read_str(block, &mut pos, &mut self.name_buf)?)
                } else {
                    match self.lookup(index)? {
                        Lookup::Static(n, _) => {
                            self.name_buf.clear();
                            self.name_buf.extend_from_slice(n.as_bytes());
                            Some(Str::Decoded)
                        }
                        Lookup::Dynamic(i) => match &self.table.entries[i].name {
                            Some(n) => {
                                self.name_buf.clear();
                                self.name_buf.extend_from_slice(n);
                                Some(Str::Decoded)
                            }
                            None => None,
                        },
                        Lookup::Unknown => {
                            name_unknown = true;
                            None
                        }
                    }
                };
                let value = read_str(block, &mut pos, &mut self.value_buf)?;
                let name_bytes = name.map(|n| match n {
                    Str::Raw(a, b) => &block[a..b],
                    Str::Decoded => &self.name_buf[..],
                });
                let value_bytes = match value {
                    Str::Raw(a, b) => &block[a..b],
                    Str::Decoded => &self.value_buf[..],
                };
                if name_bytes.is_none() || name_unknown {
                    info.unknown_fields += 1;
                }
                on_field(Field {
                    name: name_bytes,
                    value: Some(value_bytes),
                });
                if indexing {
                    info.capped |= self.table.insert(name_bytes, value_bytes);
                }
            }
        }
        Ok(info)
    }

    fn lookup(&self, index: u64) -> Result<Lookup, HpackError> {
        let entries = STATIC_TABLE.len() + self.table.entries.len();
        match index {
            0 => Err(HpackError::IndexZero),
            i if i as usize <= STATIC_TABLE.len() => {
                let (n, v) = STATIC_TABLE[i as usize - 1];
                Ok(Lookup::Static(n, v))
            }
            i if (i as usize) <= entries => {
                Ok(Lookup::Dynamic(i as usize - STATIC_TABLE.len() - 1))
            }
            _ if self.table.unknown_tail => Ok(Lookup::Unknown),
            index => Err(HpackError::IndexOutOfRange { index, entries }),
        }
    }
}

enum Lookup {
    Static(&'static str, &'static str),
    Dynamic(usize),
    Unknown,
}

/// RFC 7541 §5.1: an integer with an `n`-bit prefix.
fn read_int(block: &[u8], pos: &mut usize, n: u8) -> Result<u64, HpackError> {
    let max_prefix = (1u64 << n) - 1;
    let first = *block.get(*pos).ok_or(HpackError::Truncated)?;
    *pos += 1;
    let mut value = u64::from(first) & max_prefix;
    if value < max_prefix {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let b = *block.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        value += u64::from(b & 0x7F) << shift;
        if value > u64::from(u32::MAX) {
            return Err(HpackError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
}

/// RFC 7541 §5.2: a string literal, raw (a range of the block) or Huffman-decoded into `buf`.
fn read_str(block: &[u8], pos: &mut usize, buf: &mut Vec<u8>) -> Result<Str, HpackError> {
    let huffman = block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = read_int(block, pos, 7)? as usize;
    let start = *pos;
    let end = start.checked_add(len).ok_or(HpackError::Truncated)?;
    if end > block.len() {
        return Err(HpackError::Truncated);
    }
    *pos = end;
    if huffman {
        buf.clear();
        huffman::decode(&block[start..end], buf).map_err(HpackError::Huffman)?;
        Ok(Str::Decoded)
    } else {
        Ok(Str::Raw(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decode(d: &mut Decoder, block: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        d.decode(&hex(block), |f| {
            out.push((
                String::from_utf8(f.name.unwrap().to_vec()).unwrap(),
                String::from_utf8(f.value.unwrap().to_vec()).unwrap(),
            ))
        })
        .unwrap();
        out
    }

    fn table(d: &Decoder) -> Vec<(String, String)> {
        d.table()
            .entries()
            .map(|(n, v)| {
                (
                    String::from_utf8(n.unwrap().to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn c1_integers() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with a 5-bit prefix; C.1.3: 42 at an
        // octet boundary.
        for (bytes, n, want) in [
            (&[0x0Au8][..], 5, 10u64),
            (&[0x1F, 0x9A, 0x0A], 5, 1337),
            (&[0x2A], 8, 42),
        ] {
            let mut pos = 0;
            assert_eq!(read_int(bytes, &mut pos, n).unwrap(), want);
            assert_eq!(pos, bytes.len());
        }
        let mut pos = 0;
        assert_eq!(
            read_int(&[0x1F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], &mut pos, 5),
            Err(HpackError::IntegerOverflow)
        );
        let mut pos = 0;
        assert_eq!(
            read_int(&[0x1F, 0x9A], &mut pos, 5),
            Err(HpackError::Truncated)
        );
    }

    #[test]
    fn c2_field_representations() {
        // C.2.1 Literal with indexing.
        let mut d = Decoder::new();
        let f = decode(
            &mut d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        );
        assert_eq!(f, pairs(&[("custom-key", "custom-header")]));
        assert_eq!(table(&d), pairs(&[("custom-key", "custom-header")]));
        assert_eq!(d.table().size(), 55);
        // C.2.2 Literal without indexing.
        let mut d = Decoder::new();
        let f = decode(&mut d, "040c 2f73 616d 706c 652f 7061 7468");
        assert_eq!(f, pairs(&[(":path", "/sample/path")]));
        assert!(table(&d).is_empty());
        // C.2.3 Literal never indexed.
        let mut d = Decoder::new();
        let f = decode(&mut d, "1008 7061 7373 776f 7264 0673 6563 7265 74");
        assert_eq!(f, pairs(&[("password", "secret")]));
        assert!(table(&d).is_empty());
        // C.2.4 Indexed.
        let mut d = Decoder::new();
        assert_eq!(decode(&mut d, "82"), pairs(&[(":method", "GET")]));
        assert!(table(&d).is_empty());
    }

    const C3_1: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    const C3_2: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
        ("cache-control", "no-cache"),
    ];
    const C3_3: &[(&str, &str)] = &[
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ];

    fn requests(blocks: [&str; 3]) {
        let mut d = Decoder::new();
        assert_eq!(decode(&mut d, blocks[0]), pairs(C3_1));
        assert_eq!(table(&d), pairs(&[(":authority", "www.example.com")]));
        assert_eq!(d.table().size(), 57);
        assert_eq!(decode(&mut d, blocks[1]), pairs(C3_2));
        assert_eq!(
            table(&d),
            pairs(&[
                ("cache-control", "no-cache"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.table().size(), 110);
        assert_eq!(decode(&mut d, blocks[2]), pairs(C3_3));
        assert_eq!(
            table(&d),
            pairs(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ])
        );
        assert_eq!(d.table().size(), 164);
    }

    #[test]
    fn c3_requests_without_huffman() {
        requests([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn c4_requests_with_huffman() {
        requests([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    const C5_1: &[(&str, &str)] = &[
        (":status", "302"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ];
    const C5_2: &[(&str, &str)] = &[
        (":status", "307"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
        ("location", "https://www.example.com"),
    ];
    const C5_3: &[(&str, &str)] = &[
        (":status", "200"),
        ("cache-control", "private"),
        ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
        ("location", "https://www.example.com"),
        ("content-encoding", "gzip"),
        (
            "set-cookie",
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        ),
    ];

    /// C.5/C.6 run with SETTINGS_HEADER_TABLE_SIZE 256, so evictions happen.
    fn responses(blocks: [&str; 3]) {
        let mut d = Decoder::new();
        d.set_allowed_size(256);
        d.table.max_size = 256;
        assert_eq!(decode(&mut d, blocks[0]), pairs(C5_1));
        assert_eq!(
            table(&d),
            pairs(&[
                ("location", "https://www.example.com"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("cache-control", "private"),
                (":status", "302"),
            ])
        );
        assert_eq!(d.table().size(), 222);
        assert_eq!(decode(&mut d, blocks[1]), pairs(C5_2));
        assert_eq!(
            table(&d),
            pairs(&[
                (":status", "307"),
                ("location", "https://www.example.com"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("cache-control", "private"),
            ])
        );
        assert_eq!(d.table().size(), 222);
        assert_eq!(decode(&mut d, blocks[2]), pairs(C5_3));
        assert_eq!(
            table(&d),
            pairs(&[
                (
                    "set-cookie",
                    "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
                ),
                ("content-encoding", "gzip"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ])
        );
        assert_eq!(d.table().size(), 215);
    }

    #[test]
    fn c5_responses_without_huffman() {
        responses([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
             6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
             54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
             5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e \
             3d31",
        ]);
    }

    #[test]
    fn c6_responses_with_huffman() {
        responses([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
             2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
             77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
             9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn late_start_gives_unknown_fields_until_the_table_refills() {
        let mut d = Decoder::with_unknown_history();
        // Index 62 (the newest dynamic entry) was inserted before the capture started.
        let mut fields = Vec::new();
        let info = d
            .decode(&[0xBE, 0x82], |f| {
                fields.push((f.name.is_some(), f.value.is_some()))
            })
            .unwrap();
        assert_eq!(fields, [(false, false), (true, true)]);
        assert_eq!(info.unknown_fields, 1);
        // A literal with incremental indexing is then index 62, correctly.
        let mut block = vec![0x40, 1, b'x', 1, b'y', 0xBE];
        let mut names = Vec::new();
        d.decode(&block, |f| names.push(f.value.map(<[u8]>::to_vec)))
            .unwrap();
        assert_eq!(names, [Some(b"y".to_vec()), Some(b"y".to_vec())]);
        assert!(d.table().has_unknown_tail());
        // Entries that nearly fill the table but leave room for a 32-byte one: still unknown.
        block.clear();
        for _ in 0..30 {
            block.extend_from_slice(&[0x40, 1, b'k', 100]);
            block.extend_from_slice(&[b'v'; 100]);
        }
        d.decode(&block, |_| {}).unwrap();
        assert_eq!(d.table().size(), 30 * 133 + 34);
        assert!(d.table().has_unknown_tail());
        // One of 4073 bytes leaves no room for older ones: known again, and a reference past
        // the table is an error once more.
        block.clear();
        block.extend_from_slice(&[0x40, 1, b'k', 0x7F, 0xC9, 0x1E]);
        block.extend_from_slice(&[b'v'; 4040]);
        d.decode(&block, |_| {}).unwrap();
        assert_eq!(d.table().size(), 4073);
        assert!(!d.table().has_unknown_tail());
        let n = d.table().entries().count();
        let past = 61 + n as u8 + 1;
        assert!(matches!(
            d.decode(&[0x80 | past], |_| {}),
            Err(HpackError::IndexOutOfRange { .. })
        ));
    }

    #[test]
    fn size_updates() {
        let mut d = Decoder::new();
        decode(
            &mut d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
        );
        // An update to 0 empties the table; a later one restores room.
        d.decode(&[0x20, 0x3F, 0xE1, 0x1F], |_| {}).unwrap();
        assert_eq!(d.table().entries().count(), 0);
        assert_eq!(d.table().max_size(), 4096);
        // Only at the start of a block.
        assert_eq!(
            d.decode(&[0x82, 0x20], |_| {}),
            Err(HpackError::SizeUpdateNotAtStart)
        );
        // Above the decoding side's setting: reported, followed.
        let mut d = Decoder::new();
        d.set_allowed_size(4096);
        let info = d.decode(&[0x3F, 0xE1, 0x3F], |_| {}).unwrap();
        assert_eq!(info.oversized_updates, [(8192, 4096)]);
        assert_eq!(d.table().max_size(), 8192);
    }

    #[test]
    fn table_size_attack_stays_capped() {
        // The encoder raises the table to 4 GiB and fills it with 1 MiB of entries.
        let mut d = Decoder::new();
        let mut block = vec![0x3F, 0xE0, 0xFF, 0xFF, 0xFF, 0x0F];
        let value = vec![b'v'; 4000];
        for _ in 0..256 {
            block.extend_from_slice(&[0x40, 1, b'k', 0x7F, 0xA1, 0x1E]);
            block.extend_from_slice(&value);
        }
        let info = d.decode(&block, |_| {}).unwrap();
        assert!(info.capped);
        assert!(d.table().size() <= MAX_TABLE_BYTES);
        assert!(d.table().has_unknown_tail());
        // The dropped entries are unknown, not an error.
        let mut unknown = 0;
        d.decode(&[0xFF, 0x80, 0x01], |f| {
            unknown += u32::from(f.name.is_none())
        })
        .unwrap();
        assert_eq!(unknown, 1);
    }

    #[test]
    fn malformed_blocks_are_errors() {
        let mut d = Decoder::new();
        assert_eq!(d.decode(&[0x80], |_| {}), Err(HpackError::IndexZero));
        assert!(matches!(
            d.decode(&[0xBE], |_| {}),
            Err(HpackError::IndexOutOfRange {
                index: 62,
                entries: 61
            })
        ));
        assert_eq!(
            d.decode(&[0x40, 0x05, b'a'], |_| {}),
            Err(HpackError::Truncated)
        );
        assert_eq!(
            d.decode(&[0x40, 0x81, 0x00, 0x00], |_| {}),
            Err(HpackError::Huffman(HuffmanError::BadPadding))
        );
    }
}
