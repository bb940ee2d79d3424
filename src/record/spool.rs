//! The message spool: listed message records (`--messages`, json) written to a temporary file as
//! they happen, so that a connection's message list costs no memory however long it grows, and
//! read back when the connection's record is written.
//!
//! The JSON report writes a connection when it ends, with its messages inside it, so they
//! must be kept somewhere until then. Each record is serialized once, as the report will show
//! it, and appended to its connection's chain. A chain gathers its newest records in memory
//! (its tail, up to [`TAIL_BYTES`]; all tails together up to [`TAILS_BUDGET`], past which every
//! tail is written) and writes them as one chunk. The chunks of a chain form a linked list in
//! the file: each names the next one and its length, so a chain is read back with one read per
//! chunk, and a connection holds only a [`SpoolChain`] number, whatever its message count. The
//! file is written by one thread (a worker of a sharded run) and read by the reporter's.
//!
//! The file is cut into segments of [`SEGMENT_BYTES`]. A chain pins every segment from its first
//! chunk's to its last's. A segment that no chain pins any more (and that is no longer written)
//! is closed, and since it was unlinked when it was made, its disk space is freed at once. So the
//! disk used stays near what the connections still open have listed, not the whole capture's.
//!
//! No crate does this: `tempfile` gives a file, not a chunk store with reclamation.

use serde::ser::{Serialize, SerializeSeq, Serializer};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Bytes after which a new segment file is started.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Bytes of records a chain gathers before it writes them as a chunk: each chunk costs a
/// write that links it to the one before and a read.
const TAIL_BYTES: usize = 8 << 10;

/// Bytes of records all chains may gather together.
const TAILS_BUDGET: usize = 8 << 20;

/// Bytes of chunks gathered in memory before they are written.
const WRITE_BUFFER: usize = 1 << 20;

/// A chunk: the address and length of the next chunk of its chain ([`NONE`] for the last), then
/// its records, each its length (4 bytes) and its JSON.
const HEADER: usize = 12;

/// No chunk.
const NONE: u64 = u64::MAX;

/// Bits of an address that give the offset within a segment.
const OFFSET_BITS: u32 = 40;

/// How records are formatted: as the report will show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolFormat {
    /// `--pretty`: indented as a message of a connection record's `messages` list.
    pub pretty: bool,
}

/// The spool of one thread.
pub struct Spool {
    format: SpoolFormat,
    dir: PathBuf,
    /// [`SEGMENT_BYTES`] (smaller in tests).
    segment_bytes: u64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every segment made, by number; closed ones have no file.
    segments: Vec<Segment>,
    /// Chunks not yet written, at the end of the last segment.
    buffer: Vec<u8>,
    /// Chains by number, while a [`SpoolChain`] or [`SpooledMessages`] has them.
    chains: HashMap<u64, Chain>,
    next_chain: u64,
    /// Bytes in all tails.
    tail_bytes: usize,
    /// Where a record is formatted.
    scratch: Vec<u8>,
    /// Why the spool cannot be written (then records are refused).
    failed: Option<String>,
}

struct Segment {
    file: Option<Arc<File>>,
    /// Bytes written to the file.
    written: u64,
    /// Chains that pin it.
    pins: u64,
}

/// A chain's written chunks, and its records not yet written.
#[derive(Default)]
struct Chain {
    first: Option<(u64, u32)>,
    last: Option<(u64, u32)>,
    /// Segments pinned (when `first` is set).
    first_segment: u32,
    last_segment: u32,
    tail: Vec<u8>,
    /// Holders: the chain goes when the last lets go.
    holders: u32,
}

/// One connection's records in a spool (a number: the spool keeps the rest).
#[derive(Debug, Default)]
struct SpoolChain {
    id: Option<u64>,
    records: u64,
}

fn address(segment: usize, offset: u64) -> u64 {
    ((segment as u64) << OFFSET_BITS) | offset
}

fn split(address: u64) -> (usize, u64) {
    (
        (address >> OFFSET_BITS) as usize,
        address & ((1 << OFFSET_BITS) - 1),
    )
}

impl Spool {
    /// A spool whose files go in the system's temporary directory (`TMPDIR`). No file is made
    /// before the first record.
    pub fn new(format: SpoolFormat) -> Spool {
        Spool::in_dir(format, std::env::temp_dir())
    }

    /// A spool whose files go in `dir`.
    pub fn in_dir(format: SpoolFormat, dir: PathBuf) -> Spool {
        Spool {
            format,
            dir,
            segment_bytes: SEGMENT_BYTES,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the spool as consistent as any
        // single write leaves it; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `record` to `chain`. Err: the spool cannot be written (why; the record is not
    /// kept).
    fn append<T: Serialize>(&self, chain: &mut SpoolChain, record: &T) -> Result<(), String> {
        let mut inner = self.lock();
        if let Some(why) = &inner.failed {
            return Err(why.clone());
        }
        let mut scratch = std::mem::take(&mut inner.scratch);
        scratch.clear();
        format_record(&mut scratch, record, self.format);
        let result = inner.append(self, chain, &scratch);
        inner.scratch = scratch;
        if let Err(why) = &result {
            inner.failed = Some(why.clone());
        }
        result
    }

    /// Lets go of chain `id`: once nobody holds it, the segments it pinned that nobody else
    /// pins are closed.
    fn release(&self, id: Option<u64>) {
        let Some(id) = id else { return };
        let mut inner = self.lock();
        let Some(chain) = inner.chains.get_mut(&id) else {
            return;
        };
        chain.holders -= 1;
        if chain.holders > 0 {
            return;
        }
        let chain = inner.chains.remove(&id).expect("just seen");
        inner.tail_bytes -= chain.tail.len();
        if chain.first.is_none() {
            return;
        }
        let current = inner.segments.len() - 1;
        for n in chain.first_segment as usize..=chain.last_segment as usize {
            let segment = &mut inner.segments[n];
            segment.pins -= 1;
            if segment.pins == 0 && n != current {
                segment.file = None;
            }
        }
    }

    /// Holds chain `id` once more (a copy of a record).
    fn hold(&self, id: Option<u64>) {
        if let Some(id) = id
            && let Some(chain) = self.lock().chains.get_mut(&id)
        {
            chain.holders += 1;
        }
    }

    /// Segment files open now.
    #[cfg(test)]
    fn open_segments(&self) -> usize {
        self.lock()
            .segments
            .iter()
            .filter(|s| s.file.is_some())
            .count()
    }

    /// Writes chain `id`'s tail and returns where its first chunk is.
    fn start_of(&self, id: u64) -> std::io::Result<Option<(u64, u32)>> {
        let mut inner = self.lock();
        inner.write_tail(self, id).map_err(std::io::Error::other)?;
        Ok(inner.chains.get(&id).and_then(|c| c.first))
    }

    /// The file of the chunk at `at` and the bytes its segment holds, writing the buffer first
    /// if the chunk is in it.
    fn file_for(&self, at: u64) -> std::io::Result<(Arc<File>, u64)> {
        let mut inner = self.lock();
        let (n, offset) = split(at);
        if n + 1 == inner.segments.len() && offset >= inner.segments[n].written {
            inner.flush().map_err(std::io::Error::other)?;
        }
        let segment = inner
            .segments
            .get(n)
            .ok_or_else(|| std::io::Error::other("bug: spool address past its segments"))?;
        let file = segment
            .file
            .clone()
            .ok_or_else(|| std::io::Error::other("bug: spool segment read after it was closed"))?;
        Ok((file, segment.written))
    }
}

impl Inner {
    fn append(
        &mut self,
        spool: &Spool,
        chain: &mut SpoolChain,
        record: &[u8],
    ) -> Result<(), String> {
        let length = u32::try_from(record.len())
            .ok()
            .filter(|&n| n < u32::MAX - HEADER as u32)
            .ok_or_else(|| format!("a message record of {} bytes", record.len()))?;
        if self.segments.is_empty() {
            // Now, so that a spool that cannot be made refuses the first record, not the
            // report's reading of records it took.
            self.start_segment(spool)?;
        }
        let id = *chain.id.get_or_insert_with(|| {
            let id = self.next_chain;
            self.next_chain += 1;
            self.chains.insert(
                id,
                Chain {
                    holders: 1,
                    ..Chain::default()
                },
            );
            id
        });
        let tail = &mut self.chains.get_mut(&id).expect("held").tail;
        tail.extend_from_slice(&length.to_le_bytes());
        tail.extend_from_slice(record);
        let full = tail.len() >= TAIL_BYTES;
        self.tail_bytes += 4 + record.len();
        chain.records += 1;
        if full {
            self.write_tail(spool, id)?;
        }
        if self.tail_bytes > TAILS_BUDGET {
            let ids: Vec<u64> = self.chains.keys().copied().collect();
            for id in ids {
                self.write_tail(spool, id)?;
            }
        }
        Ok(())
    }

    /// Writes chain `id`'s tail as its next chunk.
    fn write_tail(&mut self, spool: &Spool, id: u64) -> Result<(), String> {
        let Some(chain) = self.chains.get_mut(&id) else {
            return Ok(());
        };
        if chain.tail.is_empty() {
            return Ok(());
        }
        let tail = std::mem::take(&mut chain.tail);
        self.tail_bytes -= tail.len();
        // Its allocation goes too: thousands of quiet chains would each keep one.
        self.write_chunk(spool, id, &tail)
    }

    fn write_chunk(&mut self, spool: &Spool, id: u64, records: &[u8]) -> Result<(), String> {
        let length = u32::try_from(records.len())
            .map_err(|_| format!("a spool chunk of {} bytes", records.len()))?;
        let start_new = match self.segments.last() {
            None => true,
            Some(s) => s.written + self.buffer.len() as u64 >= spool.segment_bytes,
        };
        if start_new {
            self.start_segment(spool)?;
        }
        let current = self.segments.len() - 1;
        let at = address(
            current,
            self.segments[current].written + self.buffer.len() as u64,
        );
        let chain = self.chains.get_mut(&id).expect("held");
        let previous = chain.last.replace((at, length));
        match previous {
            None => {
                chain.first = Some((at, length));
                chain.first_segment = current as u32;
                self.segments[current].pins += 1;
            }
            Some(_) => {
                for n in chain.last_segment as usize + 1..=current {
                    self.segments[n].pins += 1;
                }
            }
        }
        chain.last_segment = current as u32;
        if let Some((before, _)) = previous {
            self.link(before, at, length)?;
        }
        self.buffer.extend_from_slice(&NONE.to_le_bytes());
        self.buffer.extend_from_slice(&0u32.to_le_bytes());
        self.buffer.extend_from_slice(records);
        if self.buffer.len() >= WRITE_BUFFER {
            self.flush()?;
        }
        Ok(())
    }

    fn start_segment(&mut self, spool: &Spool) -> Result<(), String> {
        self.flush()?;
        let file = unlinked_file(&spool.dir, ".wsprobe-spool").map_err(|e| {
            format!(
                "cannot make the message spool in {} ({e}; set TMPDIR to a writable directory)",
                spool.dir.display()
            )
        })?;
        if let Some(previous) = self.segments.last_mut()
            && previous.pins == 0
        {
            previous.file = None;
        }
        self.segments.push(Segment {
            file: Some(Arc::new(file)),
            written: 0,
            pins: 0,
        });
        Ok(())
    }

    /// Makes the chunk at `from` name `to`, a chunk of `length` bytes, as its next one.
    fn link(&mut self, from: u64, to: u64, length: u32) -> Result<(), String> {
        let mut header = [0; HEADER];
        header[..8].copy_from_slice(&to.to_le_bytes());
        header[8..].copy_from_slice(&length.to_le_bytes());
        let (n, offset) = split(from);
        let last = self.segments.len() - 1;
        let segment = &self.segments[n];
        if n == last && offset >= segment.written {
            let at = (offset - segment.written) as usize;
            self.buffer[at..at + HEADER].copy_from_slice(&header);
            return Ok(());
        }
        let file = segment
            .file
            .as_ref()
            .ok_or("bug: a pinned spool segment was closed")?;
        file.write_all_at(&header, offset)
            .map_err(|e| format!("writing the message spool: {e}"))
    }

    fn flush(&mut self) -> Result<(), String> {
        let Some(segment) = self.segments.last_mut() else {
            return Ok(());
        };
        if self.buffer.is_empty() {
            return Ok(());
        }
        if let Some(file) = &segment.file {
            file.write_all_at(&self.buffer, segment.written)
                .map_err(|e| format!("writing the message spool: {e}"))?;
        }
        segment.written += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}

/// A new file in `dir` whose name starts with `prefix`, already unlinked: it goes away with
/// its last handle, even if the run is killed. Only its owner can read it while it has a name.
pub fn unlinked_file(dir: &std::path::Path, prefix: &str) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static MADE: AtomicU64 = AtomicU64::new(0);
    let mut taken = 0;
    loop {
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        match std::fs::OpenOptions::new()
            .mode(0o600)
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                let _ = std::fs::remove_file(&path);
                return Ok(file);
            }
            // Left by an earlier run that had this process number.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && taken < 100 => taken += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Formats `record` as it appears in a connection record's `messages` list.
fn format_record<T: Serialize>(out: &mut Vec<u8>, record: &T, format: SpoolFormat) {
    if !format.pretty {
        super::compact_json::write(out, record).expect("bug: message record serializes");
        return;
    }
    // Indented for its depth in the report (record object, then its `messages` list): pretty
    // JSON breaks lines only between tokens (strings escape theirs), so every line break is
    // followed by the two levels' indent.
    let mut plain = Vec::new();
    serde_json::to_writer_pretty(&mut plain, record).expect("bug: message record serializes");
    for line in plain.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(line);
        if line.ends_with(b"\n") {
            out.extend_from_slice(b"    ");
        }
    }
}

/// A connection's spooled message list: the analysis appends to it, then its record holds it.
/// Dropping it lets go of its records.
pub struct SpooledMessages {
    spool: Arc<Spool>,
    chain: SpoolChain,
}

impl SpooledMessages {
    /// An empty list in `spool`.
    pub fn start(spool: Arc<Spool>) -> Self {
        SpooledMessages {
            spool,
            chain: SpoolChain::default(),
        }
    }

    /// Appends `record`. Err: the spool cannot be written (why; the record is not kept, and
    /// no later one will be).
    pub fn append<T: Serialize>(&mut self, record: &T) -> Result<(), String> {
        self.spool.append(&mut self.chain, record)
    }

    /// Records listed.
    pub fn len(&self) -> u64 {
        self.chain.records
    }

    /// None listed.
    pub fn is_empty(&self) -> bool {
        self.chain.records == 0
    }

    /// Each record's JSON, in order.
    pub fn for_each(
        &self,
        mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let Some(id) = self.chain.id else {
            return Ok(());
        };
        let mut next = self.spool.start_of(id)?;
        let mut chunk = Vec::new();
        let mut seen = 0;
        while let Some((at, length)) = next {
            let (file, written) = self.spool.file_for(at)?;
            let (_, offset) = split(at);
            let size = HEADER as u64 + u64::from(length);
            if offset + size > written {
                return Err(std::io::Error::other(
                    "bug: spool chunk past its segment's end",
                ));
            }
            chunk.resize(size as usize, 0);
            file.read_exact_at(&mut chunk, offset)?;
            let following = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
            let following_length =
                u32::from_le_bytes(chunk[8..HEADER].try_into().expect("4 bytes"));
            next = (following != NONE).then_some((following, following_length));
            let mut records = &chunk[HEADER..];
            while let Some((length, rest)) = records.split_first_chunk::<4>() {
                let length = u32::from_le_bytes(*length) as usize;
                let (json, rest) = rest
                    .split_at_checked(length)
                    .ok_or_else(|| std::io::Error::other("bug: spool record past its chunk"))?;
                each(json)?;
                seen += 1;
                records = rest;
            }
        }
        if seen != self.chain.records {
            // Records the spool took in memory and then failed to write.
            if let Some(why) = self.spool.lock().failed.clone() {
                return Err(std::io::Error::other(why));
            }
            return Err(std::io::Error::other(format!(
                "bug: {seen} of {} spooled records read back",
                self.chain.records
            )));
        }
        Ok(())
    }
}

impl Drop for SpooledMessages {
    fn drop(&mut self) {
        self.spool.release(self.chain.id.take());
    }
}

impl Clone for SpooledMessages {
    fn clone(&self) -> Self {
        self.spool.hold(self.chain.id);
        SpooledMessages {
            spool: self.spool.clone(),
            chain: SpoolChain {
                id: self.chain.id,
                records: self.chain.records,
            },
        }
    }
}

impl std::fmt::Debug for SpooledMessages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpooledMessages({} records)", self.chain.records)
    }
}

impl Serialize for SpooledMessages {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut seq = serializer.serialize_seq(Some(self.chain.records as usize))?;
        let mut failed = None;
        let read = self.for_each(|json| {
            // The bytes are JSON that we formatted; a disk that handed back other bytes
            // would show as text that is not UTF-8, or as a report that does not parse.
            let text = simdutf8::compat::from_utf8(json).map_err(std::io::Error::other)?;
            if let Err(e) = seq.serialize_element(&super::compact_json::TrustedJson(text)) {
                failed = Some(e);
                return Err(std::io::Error::other("serializer failed"));
            }
            Ok(())
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read.map_err(|e| S::Error::custom(format!("reading the message spool: {e}")))?;
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(pretty: bool) -> Arc<Spool> {
        Arc::new(Spool::new(SpoolFormat { pretty }))
    }

    fn read_back(list: &SpooledMessages) -> Vec<String> {
        let mut out = Vec::new();
        list.for_each(|json| {
            out.push(String::from_utf8(json.to_vec()).unwrap());
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn interleaved_chains_read_back_in_their_own_order() {
        let spool = spool(false);
        let mut lists: [SpooledMessages; 3] =
            std::array::from_fn(|_| SpooledMessages::start(spool.clone()));
        let mut expected: [Vec<String>; 3] = Default::default();
        for i in 0..3000u32 {
            // Runs of one chain (gathered into one chunk) and scattered records.
            let which = if i < 1000 {
                (i as usize / 100) % 3
            } else {
                (i as usize * 7) % 3
            };
            // Sizes from a few bytes to more than the read window.
            let pad = if i % 100 == 0 {
                70_000
            } else {
                (i as usize * 37) % 500
            };
            let value = serde_json::json!({ "n": i, "pad": "x".repeat(pad) });
            lists[which].append(&value).unwrap();
            expected[which].push(serde_json::to_string(&value).unwrap());
        }
        for (list, expected) in lists.into_iter().zip(expected) {
            assert_eq!(list.len() as usize, expected.len());
            assert_eq!(read_back(&list), expected);
        }
    }

    #[test]
    fn a_spooled_list_serializes_like_the_list_it_replaces() {
        let values: Vec<serde_json::Value> = (0..50)
            .map(|i| serde_json::json!({ "time": i as f64 / 3.0, "text": format!("line\n{i} \"é\""), "app": { "kind": [1, 2, { "x": null }] } }))
            .collect();
        for pretty in [false, true] {
            let spool = spool(pretty);
            let mut spooled = SpooledMessages::start(spool.clone());
            for v in &values {
                spooled.append(v).unwrap();
            }
            // As the JSON report writes it: inside a connection record.
            let held = serde_json::json!({ "id": 1, "messages": values, "z": [] });
            #[derive(serde::Serialize)]
            struct Record<'a> {
                id: u32,
                messages: &'a SpooledMessages,
                z: [u8; 0],
            }
            let record = Record {
                id: 1,
                messages: &spooled,
                z: [],
            };
            let (got, want) = if pretty {
                (
                    serde_json::to_string_pretty(&record).unwrap(),
                    serde_json::to_string_pretty(&held).unwrap(),
                )
            } else {
                (
                    serde_json::to_string(&record).unwrap(),
                    serde_json::to_string(&held).unwrap(),
                )
            };
            assert_eq!(got, want, "pretty: {pretty}");
            let empty = SpooledMessages::start(spool.clone());
            assert_eq!(
                serde_json::to_string_pretty(&empty).unwrap(),
                serde_json::to_string_pretty(&Vec::<u8>::new()).unwrap()
            );
        }
    }

    #[test]
    fn segments_are_closed_once_no_list_needs_them() {
        let mut spool = Spool::new(SpoolFormat { pretty: false });
        spool.segment_bytes = 1 << 20;
        let spool = Arc::new(spool);
        let big = serde_json::json!({ "pad": "y".repeat(64 << 10) });
        let per_segment = 16;
        // A long-lived chain with one record in the first segment and one in the fourth, and
        // short ones that fill the segments between.
        let mut long = SpooledMessages::start(spool.clone());
        long.append(&serde_json::json!("first")).unwrap();
        // Written now, not kept in the tail.
        spool.start_of(long.chain.id.unwrap()).unwrap();
        let mut short_lists = Vec::new();
        for _ in 0..3 * per_segment + 1 {
            let mut list = SpooledMessages::start(spool.clone());
            list.append(&big).unwrap();
            short_lists.push(list);
        }
        long.append(&serde_json::json!("last")).unwrap();
        spool.start_of(long.chain.id.unwrap()).unwrap();
        assert_eq!(spool.open_segments(), 4);
        drop(short_lists);
        // The long list pins the segments between its records.
        assert_eq!(spool.open_segments(), 4);
        let copy = long.clone();
        assert_eq!(read_back(&long), ["\"first\"", "\"last\""]);
        drop(long);
        assert_eq!(read_back(&copy), ["\"first\"", "\"last\""]);
        drop(copy);
        // Only the segment being written stays.
        assert_eq!(spool.open_segments(), 1);
        let mut next = SpooledMessages::start(spool.clone());
        next.append(&serde_json::json!(1)).unwrap();
        assert_eq!(read_back(&next), ["1"]);
    }

    #[test]
    fn a_spool_that_cannot_be_made_refuses_records_and_says_why() {
        let spool = Arc::new(Spool::in_dir(
            SpoolFormat { pretty: false },
            PathBuf::from("/nonexistent/wsprobe-spool-test"),
        ));
        let mut list = SpooledMessages::start(spool.clone());
        let why = list.append(&1).unwrap_err();
        assert!(why.contains("/nonexistent/wsprobe-spool-test"), "{why}");
        assert!(why.contains("TMPDIR"), "{why}");
        assert!(list.append(&2).is_err());
    }
}
