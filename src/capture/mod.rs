//! Capture sources: saved files (pcap, pcapng) and, with the `live` feature, network interfaces.
//! Output: [`Packet`]s in capture order, each borrowed from the reader's buffer.

pub mod file;
pub mod filter;
#[cfg(feature = "live")]
pub mod live;
mod mapped;

use serde::Serialize;

/// A link-layer header type, as numbered by tcpdump's LINKTYPE_ registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkType(pub i32);

impl LinkType {
    /// BSD loopback: a 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II, possibly with 802.1Q / 802.1ad tags.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP as libpcap maps it on some platforms.
    pub const RAW_DLT12: LinkType = LinkType(12);
    /// Raw IP (DLT 14 on OpenBSD).
    pub const RAW_DLT14: LinkType = LinkType(14);
    /// Raw IPv4 or IPv6.
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: like NULL but the family is big-endian.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1 (`tcpdump -i any` before libpcap 1.10).
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2 (`tcpdump -i any` with libpcap 1.10+).
    pub const LINUX_SLL2: LinkType = LinkType(276);

    /// Short lower-case name used in reports (borrowed for the known ones: it is looked up
    /// for every packet).
    pub fn name(self) -> std::borrow::Cow<'static, str> {
        match self {
            LinkType::NULL => "null".into(),
            LinkType::ETHERNET => "ethernet".into(),
            LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => "raw".into(),
            LinkType::LOOP => "loop".into(),
            LinkType::LINUX_SLL => "linux-sll".into(),
            LinkType::IPV4 => "ipv4".into(),
            LinkType::IPV6 => "ipv6".into(),
            LinkType::LINUX_SLL2 => "linux-sll2".into(),
            LinkType(n) => format!("linktype-{n}").into(),
        }
    }
}

/// One captured packet, borrowed from the source's buffer until the next packet is read.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time, Unix seconds.
    pub ts: f64,
    /// How to read the first bytes of `data`.
    pub link: LinkType,
    /// The captured bytes (possibly cut by the snap length).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
}

/// What one input contributed, reported as `inputs[]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    /// The path as given on the command line (`-` for standard input, the interface for live capture).
    pub path: String,
    /// `pcap`, `pcapng`, or `live`.
    pub format: String,
    /// Link types seen, in order of first appearance.
    pub link_types: Vec<String>,
    /// Packets read.
    pub packets: u64,
    /// Captured bytes read (sum of captured lengths).
    pub bytes: u64,
    /// Packets skipped because they were not TCP over IPv4/IPv6 or could not be decoded.
    pub skipped_packets: u64,
    /// Packets the `-f` filter did not keep (null without `-f`, and for live capture, where the
    /// kernel applies it).
    pub filtered_out: Option<u64>,
    /// Damage that stopped reading part-way; what came before was analysed.
    pub error: Option<String>,
    /// Live capture: packets the kernel dropped because its buffer was full (null for files).
    pub dropped_by_kernel: Option<u64>,
}

impl InputSummary {
    /// Note a link type the first time it is seen.
    pub fn saw_link(&mut self, link: LinkType) {
        let name = link.name();
        if !self.link_types.iter().any(|seen| *seen == name) {
            self.link_types.push(name.into_owned());
        }
    }
}
