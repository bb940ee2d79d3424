//! `-f/--filter` on saved captures: a BPF expression as tcpdump takes it (pcap-filter(7)),
//! compiled by libpcap for each link type met and run on every packet read, so `analyze -f`
//! keeps exactly the packets `tcpdump -r FILE EXPR` would. Needs libpcap (the `live` feature);
//! without it, asking for a filter is a usage error that says so.
//!
//! One difference from tcpdump: libpcap's per-packet entry point that the `pcap` crate offers
//! sees the captured length as the wire length, so `len`, `greater` and `less` judge a packet
//! cut by the snap length by what was captured.

#[cfg(feature = "live")]
use super::LinkType;
use super::Packet;

/// A compiled packet filter.
pub struct PacketFilter {
    expression: String,
    /// One program per link type met (None: the expression does not apply to it).
    #[cfg(feature = "live")]
    programs: Vec<(LinkType, Option<pcap::BpfProgram>)>,
}

impl PacketFilter {
    /// Compiles `expression` (for Ethernet, to report its mistakes before any packet is read).
    #[cfg(feature = "live")]
    pub fn new(expression: &str) -> Result<PacketFilter, String> {
        let mut filter = PacketFilter {
            expression: expression.to_string(),
            programs: Vec::new(),
        };
        let program = filter
            .compile(LinkType::ETHERNET)
            .map_err(|e| format!("-f {:?}: {e}", filter.expression))?;
        filter.programs.push((LinkType::ETHERNET, Some(program)));
        Ok(filter)
    }

    /// Without libpcap there is no filter: says how to get one.
    #[cfg(not(feature = "live"))]
    pub fn new(_expression: &str) -> Result<PacketFilter, String> {
        Err("-f/--filter needs libpcap, and this wsprobe was built without it (feature `live`): install libpcap-dev and rebuild with the default features, or filter first with `tcpdump -r IN -w OUT EXPR`".into())
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// libpcap's program for `link`, or its reason for refusing the expression.
    #[cfg(feature = "live")]
    fn compile(&self, link: LinkType) -> Result<pcap::BpfProgram, String> {
        // libpcap compiles for a DLT_ value; files carry LINKTYPE_ values, equal but for raw
        // IP (LINKTYPE_RAW 101, and the BSD numbers 12/14, are DLT_RAW: 12 on Linux).
        let dlt = match link {
            LinkType::RAW | LinkType::RAW_DLT12 | LinkType::RAW_DLT14 => 12,
            LinkType(n) => n,
        };
        let dead = pcap::Capture::dead(pcap::Linktype(dlt)).map_err(|e| e.to_string())?;
        dead.compile(&self.expression, true).map_err(|e| {
            e.to_string()
                .trim_start_matches("libpcap error: ")
                .to_string()
        })
    }

    /// Does the packet pass? A link type the expression cannot be compiled for passes nothing
    /// (and says so once on stderr).
    #[cfg(feature = "live")]
    pub fn matches(&mut self, packet: &Packet<'_>) -> bool {
        let index = match self.programs.iter().position(|(l, _)| *l == packet.link) {
            Some(i) => i,
            None => {
                let program = match self.compile(packet.link) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        eprintln!(
                            "wsprobe: -f {:?} does not apply to {} packets ({e}); they are skipped",
                            self.expression,
                            packet.link.name()
                        );
                        None
                    }
                };
                self.programs.push((packet.link, program));
                self.programs.len() - 1
            }
        };
        self.programs[index]
            .1
            .as_ref()
            .is_some_and(|p| p.filter(packet.data))
    }

    /// Does the packet pass? (Never built: [`PacketFilter::new`] fails without libpcap.)
    #[cfg(not(feature = "live"))]
    pub fn matches(&mut self, _packet: &Packet<'_>) -> bool {
        true
    }
}

#[cfg(all(test, feature = "live"))]
mod tests {
    use super::*;

    fn ipv4_tcp(dst_port: u16) -> Vec<u8> {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, dst_port, 1, 65535)
            .write(&mut out, b"x")
            .unwrap();
        out
    }

    #[test]
    fn keeps_what_the_expression_says_on_each_link_type() {
        let mut f = PacketFilter::new("tcp port 8080").unwrap();
        for port in [8080, 80] {
            let data = ipv4_tcp(port);
            let raw = Packet {
                ts: 0.0,
                link: LinkType::RAW,
                data: &data,
                orig_len: data.len() as u32,
            };
            assert_eq!(f.matches(&raw), port == 8080);
            let mut framed = vec![0u8; 12];
            framed.extend_from_slice(&[0x08, 0x00]);
            framed.extend_from_slice(&data);
            let ethernet = Packet {
                link: LinkType::ETHERNET,
                data: &framed,
                orig_len: framed.len() as u32,
                ..raw
            };
            assert_eq!(f.matches(&ethernet), port == 8080);
        }
    }

    #[test]
    fn a_bad_expression_is_refused_with_libpcap_s_reason() {
        let e = PacketFilter::new("tcp prot 80").err().unwrap();
        assert!(
            e.contains("tcp prot 80") && e.contains("syntax error"),
            "{e}"
        );
    }
}

#[cfg(all(test, not(feature = "live")))]
mod tests_without_libpcap {
    use super::*;

    #[test]
    fn a_filter_without_libpcap_is_refused_with_the_way_out() {
        let e = PacketFilter::new("tcp port 80").err().unwrap();
        assert!(
            e.contains("needs libpcap") && e.contains("tcpdump -r"),
            "{e}"
        );
    }
}
