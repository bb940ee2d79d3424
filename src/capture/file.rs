//! Saved captures: a pcap or pcapng byte stream (file or standard input) in, [`Packet`]s out.
//! Regular files are memory-mapped and parsed in place ([`read_capture_file`]); pipes and
//! standard input go through pcap-parser's streaming reader. Either way memory stays constant
//! whatever the file's size.

use std::io::Read;

use pcap_parser::pcapng::{Block, SecretsType};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError, create_reader};

use super::mapped::MappedReader;

use super::{InputSummary, LinkType, Packet};
use crate::error::{Error, Result};

/// Largest reader buffer: larger than any record (tcpdump's default snap length is 256 KiB and
/// loopback packets with GRO reach 64 KiB+), so `BufferTooSmall` at this size only means a
/// corrupt length.
pub(super) const READ_BUFFER: usize = 4 << 20;

/// First reader buffer; it doubles (up to `READ_BUFFER`) when a record does not fit, so a small
/// capture, a pipe or a damaged file does not cost 4 MiB up front.
const FIRST_READ_BUFFER: usize = 64 * 1024;

/// Bytes read before the format is decided: more than any real section header block.
const SNIFF_BYTES: usize = 64 * 1024;

/// Timestamp resolution and offset of one pcapng interface.
#[derive(Clone, Copy)]
struct Interface {
    link: LinkType,
    units_per_second: u64,
    offset_seconds: i64,
}

/// Reads every packet of `input` (a pcap or pcapng stream) and hands each to `on_packet`.
///
/// `on_progress` is called now and then with the number of bytes consumed so far.
/// Damage part-way (a truncated or corrupt record) is recorded in the returned summary's
/// `error`; only an input that is not a capture at all is an `Err`.
pub fn read_capture<R, P, G>(
    input: R,
    path: &str,
    on_packet: P,
    on_progress: G,
) -> Result<InputSummary>
where
    R: Read + Send,
    P: FnMut(&Packet<'_>),
    G: FnMut(u64),
{
    read_capture_with_secrets(input, path, on_packet, |_| {}, on_progress)
}

/// A pcapng Decryption Secrets Block's TLS key log (`Secrets Type` "TLSK").
#[derive(Debug, Clone, Copy)]
pub struct TlsSecrets<'a> {
    /// 1-based number of the block among the file's TLS secrets blocks.
    pub index: u64,
    /// Whether packets came before it (keys it holds cannot help connections already seen).
    pub after_packets: bool,
    /// The key-log text: `secrets_len` bytes, the block's padding cut off.
    pub text: &'a [u8],
}

/// [`read_capture`], also handing each pcapng TLS Decryption Secrets Block (the secrets
/// `editcap --inject-secrets tls,KEYLOG` writes) to `on_secrets`, in file order.
pub fn read_capture_with_secrets<R, P, K, G>(
    input: R,
    path: &str,
    mut on_packet: P,
    mut on_secrets: K,
    mut on_progress: G,
) -> Result<InputSummary>
where
    R: Read + Send,
    P: FnMut(&Packet<'_>),
    K: FnMut(TlsSecrets<'_>),
    G: FnMut(u64),
{
    let summary = InputSummary {
        path: path.to_string(),
        ..InputSummary::default()
    };
    // create_reader reads once to sniff the format and parses the whole first block from that
    // read: make sure it sees a whole header (a pcapng section header with options can be a few
    // KiB) even from a pipe that delivers a few bytes at a time.
    let mut input = input;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut input)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(|source| Error::Open {
            path: path.into(),
            source,
        })?;
    if head.is_empty() {
        return Err(Error::Empty { path: path.into() });
    }
    let magic = head
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let sniffed_pcapng = head.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
    let stream = std::io::Cursor::new(head).chain(input);
    let capacity = FIRST_READ_BUFFER;
    let reader = match create_reader(capacity, stream) {
        Ok(r) => r,
        Err(e) => return not_a_capture(e, sniffed_pcapng, magic, path, summary),
    };
    read_blocks(
        reader,
        capacity,
        sniffed_pcapng,
        summary,
        &mut on_packet,
        &mut on_secrets,
        &mut on_progress,
    )
}

/// The reader could not be made: a truncated pcap header (the summary says so), or not a
/// capture.
fn not_a_capture(
    error: PcapError<&[u8]>,
    sniffed_pcapng: bool,
    magic: String,
    path: &str,
    mut summary: InputSummary,
) -> Result<InputSummary> {
    // Shorter than a pcap header but starting like one is a truncated capture.
    if matches!(error, PcapError::Incomplete(_) | PcapError::UnexpectedEof)
        && !sniffed_pcapng
        && is_pcap_magic(&magic)
    {
        summary.format = "pcap".into();
        summary.error = Some("truncated file header".into());
        return Ok(summary);
    }
    Err(Error::NotACapture {
        path: path.into(),
        magic,
    })
}

/// A capture file mapped in memory, shared with whoever refers to its bytes.
pub type MappedFile = std::sync::Arc<memmap2::Mmap>;

/// How far behind the point where pages are still being read the hand-back stops. Handed back
/// up to that point itself (its page half read), the next read faulted that page in again, and
/// the kernel maps a faulting page's neighbours with it (fault-around): pages behind stayed
/// resident to the end, 19 MiB of the map after 1.2 GB of a capture (0.7-4 MiB with a gap).
const RELEASE_LAG: usize = 2 << 20;

/// Hands back to the kernel the pages of `map` from `*released` up to a distance behind `done`
/// (everything before `done` has been used), in steps of at least `every` bytes, and moves
/// `*released` to where it stopped. Ends are kept on `RELEASE_LAG` boundaries of the file, where
/// the page cache's folios are aligned.
pub fn release_behind(map: &memmap2::Mmap, released: &mut usize, done: usize, every: usize) {
    let until = done.min(map.len()).saturating_sub(RELEASE_LAG) / RELEASE_LAG * RELEASE_LAG;
    if until < released.saturating_add(every.max(1)) {
        return;
    }
    // SAFETY: the map is read-only and shared, so DONTNEED discards nothing but this process's
    // mapping of the pages; their bytes are read back from the file, unchanged, if anything
    // touches them again (nothing does: the caller is done with them).
    let _ = unsafe {
        map.unchecked_advise_range(
            memmap2::UncheckedAdvice::DontNeed,
            *released,
            until - *released,
        )
    };
    *released = until;
}

/// [`read_capture_with_secrets`] on a file: a regular file is memory-mapped and its blocks are
/// parsed where they lie (no copy into a read buffer); anything else (a FIFO, a device) is
/// streamed. A file truncated by another process while it is read is outside what this
/// guards against (the map would fault), as with any tool that maps its input.
///
/// `on_map` is given the map before the packets, which are slices of it: a consumer can keep
/// the map (it is shared) and refer to packet bytes by their place in it instead of copying.
pub fn read_capture_file<P, K, G, M>(
    path: &str,
    on_map: M,
    mut on_packet: P,
    mut on_secrets: K,
    mut on_progress: G,
) -> Result<InputSummary>
where
    P: FnMut(&Packet<'_>),
    K: FnMut(TlsSecrets<'_>),
    G: FnMut(u64),
    M: FnOnce(&MappedFile) -> bool,
{
    let file = std::fs::File::open(path).map_err(|source| Error::Open {
        path: path.into(),
        source,
    })?;
    let regular = file.metadata().is_ok_and(|m| m.is_file() && m.len() > 0);
    // SAFETY: the map is read-only; see above for a file changed under it.
    let map = regular
        .then(|| unsafe { memmap2::Mmap::map(&file) }.ok())
        .flatten();
    let Some(map) = map else {
        return read_capture_with_secrets(file, path, on_packet, on_secrets, on_progress);
    };
    let map = std::sync::Arc::new(map);
    // What the packets go to says whether the reader may hand back the pages it has read.
    let release = on_map(&map);
    let summary = InputSummary {
        path: path.to_string(),
        ..InputSummary::default()
    };
    let magic = map
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let sniffed_pcapng = map.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]);
    let reader = match MappedReader::new(&map, release) {
        Ok(r) => r,
        Err(e) => return not_a_capture(e, sniffed_pcapng, magic, path, summary),
    };
    read_blocks(
        Box::new(reader),
        READ_BUFFER,
        sniffed_pcapng,
        summary,
        &mut on_packet,
        &mut on_secrets,
        &mut on_progress,
    )
}

/// The blocks of a capture, read to the end or to the first damage.
fn read_blocks<'r, P, K, G>(
    mut reader: Box<dyn PcapReaderIterator + Send + 'r>,
    mut capacity: usize,
    sniffed_pcapng: bool,
    mut summary: InputSummary,
    on_packet: &mut P,
    on_secrets: &mut K,
    on_progress: &mut G,
) -> Result<InputSummary>
where
    P: FnMut(&Packet<'_>),
    K: FnMut(TlsSecrets<'_>),
    G: FnMut(u64),
{
    let mut secrets_blocks = 0u64;
    summary.format = if sniffed_pcapng { "pcapng" } else { "pcap" }.into();

    let mut legacy_link = LinkType::ETHERNET;
    let mut legacy_nanos = false;
    let mut interfaces: Vec<Interface> = Vec::new();
    let mut position: u64 = 0;
    let mut last_progress: u64 = 0;
    loop {
        match reader.next() {
            Ok((consumed, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(header) => {
                        legacy_link = LinkType(header.network.0);
                        legacy_nanos = header.is_nanosecond_precision();
                    }
                    PcapBlockOwned::Legacy(record) => {
                        let fraction = if legacy_nanos { 1e-9 } else { 1e-6 };
                        let packet = Packet {
                            ts: record.ts_sec as f64 + record.ts_usec as f64 * fraction,
                            link: legacy_link,
                            data: record.data,
                            orig_len: record.origlen,
                        };
                        summary.packets += 1;
                        summary.bytes += record.data.len() as u64;
                        summary.saw_link(legacy_link);
                        on_packet(&packet);
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        interfaces.push(Interface {
                            link: LinkType(idb.linktype.0),
                            // An invalid if_tsresol falls back to the default, microseconds.
                            units_per_second: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                            offset_seconds: idb.ts_offset(),
                        });
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        summary.packets += 1;
                        summary.bytes += epb.data.len() as u64;
                        match interfaces.get(epb.if_id as usize) {
                            Some(iface) => {
                                let raw = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                                let ts = (raw / iface.units_per_second) as f64
                                    + (raw % iface.units_per_second) as f64
                                        / iface.units_per_second as f64
                                    + iface.offset_seconds as f64;
                                let caplen = (epb.caplen as usize).min(epb.data.len());
                                summary.saw_link(iface.link);
                                on_packet(&Packet {
                                    ts,
                                    link: iface.link,
                                    data: &epb.data[..caplen],
                                    orig_len: epb.origlen,
                                });
                            }
                            None => summary.skipped_packets += 1,
                        }
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        // Simple packets belong to interface 0 and carry no timestamp.
                        summary.packets += 1;
                        summary.bytes += spb.data.len() as u64;
                        match interfaces.first() {
                            Some(iface) => {
                                summary.saw_link(iface.link);
                                on_packet(&Packet {
                                    ts: 0.0,
                                    link: iface.link,
                                    data: spb.data,
                                    orig_len: spb.origlen,
                                });
                            }
                            None => summary.skipped_packets += 1,
                        }
                    }
                    PcapBlockOwned::NG(Block::DecryptionSecrets(dsb))
                        if dsb.secrets_type == SecretsType::TlsKeyLog =>
                    {
                        // `data` is padded to 32 bits: only `secrets_len` bytes are secrets.
                        let len = (dsb.secrets_len as usize).min(dsb.data.len());
                        secrets_blocks += 1;
                        on_secrets(TlsSecrets {
                            index: secrets_blocks,
                            after_packets: summary.packets > 0,
                            text: &dsb.data[..len],
                        });
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                position += consumed as u64;
                reader.consume(consumed);
                if position - last_progress >= 1 << 20 {
                    last_progress = position;
                    on_progress(position);
                }
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if let Err(e) = reader.refill() {
                    summary.error = Some(format!("read error at byte {position}: {e:?}"));
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                summary.error = Some(format!("truncated record at byte {position}"));
                break;
            }
            Err(PcapError::BufferTooSmall) if capacity < READ_BUFFER => {
                capacity = (capacity * 2).min(READ_BUFFER);
                reader.grow(capacity);
            }
            Err(PcapError::BufferTooSmall) => {
                summary.error = Some(format!(
                    "corrupt record at byte {position}: its length is larger than any real packet"
                ));
                break;
            }
            Err(PcapError::ReadError) => {
                summary.error = Some(format!("read error at byte {position}"));
                break;
            }
            Err(e) => {
                // Name the failure without the offending bytes (a nom error carries the input).
                let what = match e {
                    PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
                        format!("{kind:?}")
                    }
                    PcapError::HeaderNotRecognized => "unrecognised block header".into(),
                    other => format!("{other:?}"),
                };
                summary.error = Some(format!("corrupt block at byte {position} ({what})"));
                break;
            }
        }
    }
    on_progress(position);
    Ok(summary)
}

/// Checks, before anything is analysed, that `path` opens and starts like a capture (pcap or
/// pcapng magic), so that a wrong argument fails the command cleanly instead of after the other
/// files were reported. Standard input (`-`) is checked as it is read.
pub fn check_file(path: &str) -> Result<()> {
    let open_error = |source| Error::Open {
        path: path.into(),
        source,
    };
    let file = std::fs::File::open(path).map_err(open_error)?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(open_error(std::io::Error::other("is a directory")));
    }
    let mut head = Vec::with_capacity(8);
    file.take(8).read_to_end(&mut head).map_err(open_error)?;
    if head.is_empty() {
        return Err(Error::Empty { path: path.into() });
    }
    let magic = head.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let pcapng = "0a0d0d0a";
    let starts_like = |m: &str| m.starts_with(&magic) || magic.starts_with(m);
    if starts_like(pcapng)
        || ["d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d"]
            .iter()
            .any(|m| starts_like(m))
    {
        return Ok(());
    }
    Err(Error::NotACapture {
        path: path.into(),
        magic,
    })
}

fn is_pcap_magic(hex: &str) -> bool {
    ["d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d"]
        .iter()
        .any(|m| hex.starts_with(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian microsecond pcap (Ethernet) with one record per entry of `records`:
    /// (captured length as written, bytes that follow).
    fn pcap(records: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&(8u32 << 20).to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (caplen, data) in records {
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&caplen.to_le_bytes());
            out.extend_from_slice(&caplen.to_le_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    fn read(bytes: &[u8]) -> (Vec<usize>, InputSummary) {
        let mut sizes = Vec::new();
        let summary = read_capture(
            std::io::Cursor::new(bytes),
            "t",
            |p| sizes.push(p.data.len()),
            |_| {},
        )
        .unwrap();
        (sizes, summary)
    }

    #[test]
    fn records_larger_than_the_first_buffer_grow_it() {
        let sizes = [100usize, 200_000, 3 << 20, 50];
        let records: Vec<(u32, Vec<u8>)> =
            sizes.iter().map(|&n| (n as u32, vec![0xAB; n])).collect();
        let (seen, summary) = read(&pcap(&records));
        assert_eq!(seen, sizes);
        assert_eq!(summary.error, None);
    }

    #[test]
    fn a_record_length_past_the_largest_buffer_is_corruption() {
        let records = [(60, vec![0; 60]), (u32::MAX, vec![0; 100])];
        let (seen, summary) = read(&pcap(&records));
        assert_eq!(seen, [60]);
        let error = summary.error.unwrap();
        assert!(error.starts_with("corrupt record at byte 100"), "{error}");
    }

    /// Every packet (time, link, bytes) and the summary, read through the memory map.
    fn mapped(bytes: &[u8]) -> (Vec<(u64, i32, Vec<u8>)>, InputSummary) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("wsprobe-mapped-{}-{n}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let mut seen = Vec::new();
        let summary = read_capture_file(
            path.to_str().unwrap(),
            |_| true,
            |p| seen.push((p.ts.to_bits(), p.link.0, p.data.to_vec())),
            |_| {},
            |_| {},
        );
        std::fs::remove_file(&path).unwrap();
        (seen, summary.unwrap())
    }

    fn streamed(bytes: &[u8]) -> (Vec<(u64, i32, Vec<u8>)>, InputSummary) {
        let mut seen = Vec::new();
        let summary = read_capture(
            std::io::Cursor::new(bytes),
            "t",
            |p| seen.push((p.ts.to_bits(), p.link.0, p.data.to_vec())),
            |_| {},
        )
        .unwrap();
        (seen, summary)
    }

    #[test]
    fn a_mapped_file_reads_as_the_stream_does() {
        let records: Vec<(u32, Vec<u8>)> = [60usize, 1500, 70_000, 42]
            .iter()
            .map(|&n| (n as u32, (0..n).map(|i| i as u8).collect()))
            .collect();
        let whole = pcap(&records);
        let mut inputs = vec![
            whole.clone(),
            whole[..whole.len() - 10].to_vec(),
            whole[..30].to_vec(),
        ];
        inputs.push(pcap(&[(60, vec![0; 60]), (u32::MAX, vec![0; 100])]));
        // The recorded captures: pcap and pcapng, both byte orders where present.
        let mut files: Vec<_> = std::fs::read_dir("captures")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .collect();
        files.sort();
        for f in files.iter().take(40) {
            let bytes = std::fs::read(f).unwrap();
            inputs.push(bytes[..bytes.len() * 2 / 3].to_vec());
            inputs.push(bytes);
        }
        assert!(inputs.len() > 10, "the recorded captures are read too");
        for (i, bytes) in inputs.iter().enumerate() {
            let (a, sa) = mapped(bytes);
            let (b, sb) = streamed(bytes);
            assert_eq!(a, b, "input {i}: packets");
            assert_eq!(
                (
                    sa.format,
                    sa.packets,
                    sa.bytes,
                    sa.skipped_packets,
                    sa.error
                ),
                (
                    sb.format,
                    sb.packets,
                    sb.bytes,
                    sb.skipped_packets,
                    sb.error
                ),
                "input {i}: summary"
            );
        }
    }

    #[test]
    fn a_mapped_file_that_is_not_a_capture_says_so() {
        let (_, summary) = streamed(&pcap(&[]));
        assert_eq!(summary.error, None);
        let path = std::env::temp_dir().join(format!("wsprobe-not-{}", std::process::id()));
        std::fs::write(&path, b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let r = read_capture_file(path.to_str().unwrap(), |_| true, |_| {}, |_| {}, |_| {});
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(r, Err(Error::NotACapture { .. })), "{r:?}");
    }

    /// Resident bytes of `path`'s mapping in this process; None where /proc does not tell.
    fn resident_bytes(path: &std::path::Path) -> Option<usize> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut lines = smaps.lines();
        lines.find(|l| l.ends_with(path.to_str().unwrap()))?;
        let rss = lines.find(|l| l.starts_with("Rss:"))?;
        let kib: usize = rss.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    #[test]
    fn a_mapped_file_read_to_its_end_keeps_only_the_pages_near_the_reading_point() {
        // Records of many sizes, so their ends fall anywhere in a page.
        let records: Vec<(u32, Vec<u8>)> = (0..40_000u32)
            .map(|i| {
                let len = 60 + (i * 7919) % 2400;
                (len, vec![(i % 251) as u8; len as usize])
            })
            .collect();
        let bytes = pcap(&records);
        let path = std::env::temp_dir().join(format!("wsprobe-resident-{}", std::process::id()));
        // Written back before it is read, as a capture on disk is.
        let mut file = std::fs::File::create(&path).unwrap();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        file.sync_all().unwrap();
        drop(file);
        let mut resident = None;
        let mut seen = 0;
        let summary = read_capture_file(
            path.to_str().unwrap(),
            |_| true,
            |p| {
                seen += 1;
                if seen == records.len() {
                    // The last packet: everything has been read.
                    resident = resident_bytes(&path);
                }
                assert_eq!(p.data.len(), records[seen - 1].0 as usize);
            },
            |_| {},
            |_| {},
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(summary.unwrap().packets, 40_000);
        // What is left resident is the distance the hand-back keeps (2 MiB) and one step
        // (2 MiB), not the 50 MiB read. (On a 2 GB capture, a hand-back that went up to the
        // reading point itself left ~8 pages per 2 MiB behind it resident, brought back by
        // later faults; this small read does not show that.)
        if let Some(resident) = resident {
            assert!(
                resident <= 6 << 20,
                "{} KiB of the map stayed resident",
                resident >> 10
            );
        }
    }
}
