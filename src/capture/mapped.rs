//! A capture file read through a memory map: blocks are parsed where they lie, with no copy
//! into a read buffer (the streaming reader copies every byte once and moves the tail of its
//! buffer at each refill). Pages already parsed are handed back to the kernel as the reading
//! goes on, so the resident memory stays that of a window, not of the file.

use memmap2::{Advice, Mmap};
use pcap_parser::nom::{Needed, Offset};
use pcap_parser::pcapng::{Block, parse_block_be, parse_block_le, parse_sectionheaderblock};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{
    LegacyPcapBlock, PcapBlockOwned, PcapError, PcapHeader, parse_pcap_frame, parse_pcap_frame_be,
    parse_pcap_frame_modified, parse_pcap_header,
};

use super::file::{READ_BUFFER, release_behind};

/// Bytes parsed between two hand-backs of the pages behind them.
const RELEASE_EVERY: usize = 2 << 20;

type FrameParser =
    fn(&[u8]) -> pcap_parser::nom::IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

enum Format {
    /// pcap: its header is returned first, then records read with `parse`.
    Legacy {
        header: PcapHeader,
        parse: FrameParser,
    },
    /// pcapng, in the byte order of the current section.
    Ng { big_endian: bool },
}

/// Reads the blocks of a whole capture that lies in memory, as pcap-parser's streaming
/// readers do (same blocks, same errors), for the loop in `file.rs`.
pub(super) struct MappedReader<'m> {
    data: &'m [u8],
    map: &'m Mmap,
    format: Format,
    consumed: usize,
    released: usize,
    /// Hand back the pages behind the reading point (not when others still read them).
    release: bool,
}

impl<'m> MappedReader<'m> {
    /// A reader of the capture in `map`; the errors of pcap-parser's `create_reader` (an
    /// incomplete header: `Incomplete`/`UnexpectedEof`; not a capture: another error).
    /// `release`: drop the pages behind the reading point from the process as it goes (false
    /// when the packets' bytes are read later, by others, who hand the pages back instead).
    pub(super) fn new(map: &'m Mmap, release: bool) -> Result<Self, PcapError<&'m [u8]>> {
        let data: &[u8] = map;
        let _ = map.advise(Advice::Sequential);
        let format = if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
            let big_endian = match parse_sectionheaderblock(data) {
                Ok((_, shb)) => shb.big_endian(),
                Err(pcap_parser::nom::Err::Incomplete(_)) => return Err(PcapError::UnexpectedEof),
                Err(pcap_parser::nom::Err::Error(e) | pcap_parser::nom::Err::Failure(e)) => {
                    return Err(e);
                }
            };
            Format::Ng { big_endian }
        } else {
            match parse_pcap_header(data) {
                Ok((_, header)) => {
                    let parse: FrameParser = if header.is_modified_format() {
                        parse_pcap_frame_modified
                    } else if header.is_bigendian() {
                        parse_pcap_frame_be
                    } else {
                        parse_pcap_frame
                    };
                    Format::Legacy { header, parse }
                }
                Err(pcap_parser::nom::Err::Incomplete(_)) => return Err(PcapError::UnexpectedEof),
                Err(pcap_parser::nom::Err::Error(e) | pcap_parser::nom::Err::Failure(e)) => {
                    return Err(e);
                }
            }
        };
        Ok(MappedReader {
            data,
            map,
            format,
            consumed: 0,
            released: 0,
            release,
        })
    }
}

impl PcapReaderIterator for MappedReader<'_> {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        let data = &self.data[self.consumed.min(self.data.len())..];
        if let Format::Legacy { header, .. } = &self.format
            && self.consumed == 0
        {
            return Ok((header.size(), PcapBlockOwned::from(header.clone())));
        }
        if data.is_empty() {
            return Err(PcapError::Eof);
        }
        let parsed = match &mut self.format {
            Format::Legacy { parse, .. } => {
                parse(data).map(|(rem, b)| (rem, PcapBlockOwned::from(b)))
            }
            Format::Ng { big_endian } => {
                let parse = if *big_endian {
                    parse_block_be
                } else {
                    parse_block_le
                };
                parse(data).map(|(rem, b)| {
                    if let Block::SectionHeader(shb) = &b {
                        *big_endian = shb.big_endian();
                    }
                    (rem, PcapBlockOwned::from(b))
                })
            }
        };
        match parsed {
            Ok((rem, block)) => Ok((data.offset(rem), block)),
            Err(pcap_parser::nom::Err::Error(e) | pcap_parser::nom::Err::Failure(e)) => Err(e),
            // Everything is in memory: wanting more is a truncated file, or, past what the
            // streaming reader would buffer, a corrupt length (said the same way).
            Err(pcap_parser::nom::Err::Incomplete(Needed::Size(n)))
                if data.len() + usize::from(n) >= READ_BUFFER =>
            {
                Err(PcapError::BufferTooSmall)
            }
            Err(pcap_parser::nom::Err::Incomplete(_)) => Err(PcapError::UnexpectedEof),
        }
    }

    fn consume(&mut self, offset: usize) {
        self.consumed = (self.consumed + offset).min(self.data.len());
        if self.release {
            // The bytes behind the reading point are not looked at again (a block is handed
            // out before `consume` and not kept past it): drop their pages from this process
            // (they stay in the page cache, and would be read back from the file if touched).
            release_behind(self.map, &mut self.released, self.consumed, RELEASE_EVERY);
        }
    }

    fn consume_noshift(&mut self, offset: usize) {
        self.consume(offset);
    }

    fn consumed(&self) -> usize {
        self.consumed
    }

    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        Ok(())
    }

    fn position(&self) -> usize {
        self.consumed
    }

    fn reader_exhausted(&self) -> bool {
        true
    }

    fn grow(&mut self, _new_size: usize) -> bool {
        false
    }

    fn data(&self) -> &[u8] {
        &self.data[self.consumed..]
    }
}
