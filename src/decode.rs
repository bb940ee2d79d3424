//! Link, IP and TCP decoding: a captured [`Packet`] in, a TCP [`Segment`] (or the reason it was
//! skipped) out. Link headers are read by hand (a few fixed layouts, and etherparse has no SLL2);
//! IPv4/IPv6 with extension headers and TCP are read with etherparse's zero-copy slices. TCP
//! inside a GTP-U tunnel (mobile networks' user plane, UDP port 2152) is decoded too: the inner
//! IP packet's addresses are the connection's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{LaxIpSlice, TcpSlice, UdpSlice, ip_number};

use crate::capture::{LinkType, Packet};

/// One end of a TCP connection. IPv4 is kept as an IPv4-mapped IPv6 address so both families
/// share one packed flow key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// Address bytes; IPv4 as `::ffff:a.b.c.d`.
    pub addr: [u8; 16],
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// The address as the standard type, IPv4 unmapped.
    pub fn ip(&self) -> IpAddr {
        let v6 = Ipv6Addr::from(self.addr);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip() {
            IpAddr::V4(ip) => write!(f, "{ip}:{}", self.port),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// A TCP segment, borrowed from the packet.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// Sequence number of the first payload byte (or of the SYN/FIN).
    pub seq: u32,
    /// Acknowledgement number, meaningful when `ack_flag` is set.
    pub ack: u32,
    /// ACK flag.
    pub ack_flag: bool,
    /// SYN flag.
    pub syn: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// TCP payload as captured (may be cut short by the snap length).
    pub payload: &'a [u8],
}

/// Why a packet carried no usable TCP segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type wsprobe does not read.
    UnsupportedLink(LinkType),
    /// Not IPv4/IPv6 (ARP, LLDP, ...).
    NotIp,
    /// IP but not TCP.
    NotTcp,
    /// An IP fragment: TCP over fragmented IP is not reassembled.
    Fragment,
    /// Headers cut short or malformed.
    Malformed,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;

/// Decodes one packet down to its TCP segment.
pub fn decode<'a>(packet: &Packet<'a>) -> Result<Segment<'a>, Skip> {
    let ip = link_payload(packet.link, packet.data)?;
    ip_tcp(ip)
}

/// Strips the link header; returns the IP packet.
fn link_payload(link: LinkType, data: &[u8]) -> Result<&[u8], Skip> {
    match link {
        LinkType::ETHERNET => {
            let mut ethertype = be16(data, 12).ok_or(Skip::Malformed)?;
            let mut offset = 14;
            // 802.1Q and QinQ tags: 4 bytes each, then the real EtherType.
            while matches!(
                ethertype,
                ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
            ) {
                ethertype = be16(data, offset + 2).ok_or(Skip::Malformed)?;
                offset += 4;
            }
            ip_by_ethertype(ethertype, data, offset)
        }
        LinkType::LINUX_SLL => {
            // 16 bytes: packet type, ARPHRD, address length, 8-byte address, protocol.
            let proto = be16(data, 14).ok_or(Skip::Malformed)?;
            ip_by_ethertype(proto, data, 16)
        }
        LinkType::LINUX_SLL2 => {
            // 20 bytes: protocol first, then reserved, ifindex, ARPHRD, type, addr len, addr.
            let proto = be16(data, 0).ok_or(Skip::Malformed)?;
            ip_by_ethertype(proto, data, 20)
        }
        LinkType::NULL | LinkType::LOOP => {
            // The address family is in the capturing host's byte order (NULL) or big-endian
            // (LOOP); the values are small, so whichever half is non-zero tells the order.
            let family = data.get(..4).ok_or(Skip::Malformed)?;
            let af = if family[0] == 0 && family[1] == 0 {
                u32::from_be_bytes([family[0], family[1], family[2], family[3]])
            } else {
                u32::from_le_bytes([family[0], family[1], family[2], family[3]])
            };
            match af {
                // AF_INET everywhere; AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS), 10 (Linux).
                2 | 24 | 28 | 30 | 10 => Ok(&data[4..]),
                _ => Err(Skip::NotIp),
            }
        }
        LinkType::RAW
        | LinkType::RAW_DLT12
        | LinkType::RAW_DLT14
        | LinkType::IPV4
        | LinkType::IPV6 => Ok(data),
        other => Err(Skip::UnsupportedLink(other)),
    }
}

fn ip_by_ethertype(ethertype: u16, data: &[u8], offset: usize) -> Result<&[u8], Skip> {
    match ethertype {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => data.get(offset..).ok_or(Skip::Malformed),
        _ => Err(Skip::NotIp),
    }
}

fn be16(data: &[u8], offset: usize) -> Option<u16> {
    let b = data.get(offset..offset + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// GTP-U's registered UDP port (3GPP TS 29.281 §4.4.2.3).
const GTP_U_PORT: u16 = 2152;

/// IP (with extension headers) and TCP, or TCP/IP inside one level of GTP-U. Lax slicing keeps
/// what a snap length left of the payload, and trims Ethernet padding to the IP length.
fn ip_tcp(data: &[u8]) -> Result<Segment<'_>, Skip> {
    ip_tcp_in(data, true)
}

fn ip_tcp_in(data: &[u8], outer: bool) -> Result<Segment<'_>, Skip> {
    let (ip, _ext_err) = LaxIpSlice::from_slice(data).map_err(|_| Skip::Malformed)?;
    let (src, dst, payload) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            (mapped(h.source()), mapped(h.destination()), v4.payload())
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            (h.source(), h.destination(), v6.payload())
        }
    };
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    if payload.ip_number == ip_number::UDP && outer {
        let udp = UdpSlice::from_slice(payload.payload).map_err(|_| Skip::NotTcp)?;
        if udp.source_port() == GTP_U_PORT || udp.destination_port() == GTP_U_PORT {
            let inner = gtp_u_payload(udp.payload()).ok_or(Skip::NotTcp)?;
            return ip_tcp_in(inner, false);
        }
    }
    if payload.ip_number != ip_number::TCP {
        return Err(Skip::NotTcp);
    }
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|_| Skip::Malformed)?;
    Ok(Segment {
        src: Endpoint {
            addr: src,
            port: tcp.source_port(),
        },
        dst: Endpoint {
            addr: dst,
            port: tcp.destination_port(),
        },
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        ack_flag: tcp.ack(),
        syn: tcp.syn(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload(),
    })
}

/// The user packet of a GTPv1-U G-PDU (3GPP TS 29.281 §5.1): flags (version 1, PT 1, E/S/PN),
/// message type 255, length of what follows the first 8 bytes, TEID; when E, S or PN is set, a
/// sequence number, N-PDU number and next-extension type follow, then extension headers (each
/// 4n bytes long, its last byte the next type) until type 0. None for anything else (signalling,
/// GTPv2, a truncated header).
fn gtp_u_payload(b: &[u8]) -> Option<&[u8]> {
    let flags = *b.first()?;
    if flags >> 5 != 1 || flags & 0x10 == 0 || *b.get(1)? != 0xFF {
        return None;
    }
    let end = (8 + usize::from(be16(b, 2)?)).min(b.len());
    let mut offset = 8;
    if flags & 0x07 != 0 {
        let mut next = *b.get(11)?;
        offset = 12;
        while next != 0 {
            let len = usize::from(*b.get(offset)?) * 4;
            if len == 0 {
                return None;
            }
            next = *b.get(offset + len - 1)?;
            offset += len;
        }
    }
    b.get(offset..end)
}

fn mapped(octets: [u8; 4]) -> [u8; 16] {
    Ipv4Addr::from(octets).to_ipv6_mapped().octets()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn inner_tcp() -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 134, 25, 76], [10, 132, 15, 176], 64)
            .tcp(61202, 443, 7, 1000)
            .ack(9)
            .write(&mut out, b"GET /ws HTTP/1.1\r\n")
            .unwrap();
        out
    }

    fn in_gtp(gtp_header: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut udp_payload = gtp_header.to_vec();
        let len = (gtp_header.len() - 8 + inner.len()) as u16;
        udp_payload[2..4].copy_from_slice(&len.to_be_bytes());
        udp_payload.extend_from_slice(inner);
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 140, 231, 26], [159, 65, 12, 169], 64)
            .udp(2152, 2152)
            .write(&mut out, &udp_payload)
            .unwrap();
        out
    }

    /// TCP inside GTP-U (nDPI's false_positives.pcapng carries a WebSocket upgrade that way),
    /// with the plain 8-byte header and with the optional fields plus one extension header.
    #[test]
    fn tcp_inside_gtp_u_is_decoded_with_the_inner_addresses() {
        let inner = inner_tcp();
        for header in [
            vec![0x30, 0xFF, 0, 0, 0, 0, 0, 1],
            vec![
                0x34, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 0x05, 0x00,
            ],
        ] {
            let packet = in_gtp(&header, &inner);
            let seg = ip_tcp(&packet).unwrap();
            assert_eq!(seg.src.to_string(), "10.134.25.76:61202");
            assert_eq!(seg.dst.to_string(), "10.132.15.176:443");
            assert_eq!(seg.payload, b"GET /ws HTTP/1.1\r\n");
        }
        // GTP signalling (echo request, type 1) and other UDP are not TCP.
        assert_eq!(
            ip_tcp(&in_gtp(&[0x32, 0x01, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], &[])).unwrap_err(),
            Skip::NotTcp
        );
        // One level only: GTP-U inside GTP-U is not unwrapped again.
        let twice = in_gtp(
            &[0x30, 0xFF, 0, 0, 0, 0, 0, 1],
            &in_gtp(&[0x30, 0xFF, 0, 0, 0, 0, 0, 1], &inner),
        );
        assert_eq!(ip_tcp(&twice).unwrap_err(), Skip::NotTcp);
    }
}
