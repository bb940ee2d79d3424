//! TCP: per-direction stream reassembly, delivery (retransmissions, unacknowledged data) and the
//! flow key that finds a packet's connection.

pub mod delivery;
pub mod reassembly;

use crate::decode::Endpoint;

/// A connection's identity, the same for both directions: the two endpoints in a canonical
/// order, packed so hashing is cheap (deps.md §4.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo_addr: u128,
    hi_addr: u128,
    ports: u32,
}

impl FlowKey {
    /// The key of the connection between `src` and `dst`, and whether `src` is the low end.
    pub fn new(src: &Endpoint, dst: &Endpoint) -> (FlowKey, bool) {
        let s = (u128::from_be_bytes(src.addr), src.port);
        let d = (u128::from_be_bytes(dst.addr), dst.port);
        let src_is_lo = s <= d;
        let (lo, hi) = if src_is_lo { (s, d) } else { (d, s) };
        (
            FlowKey {
                lo_addr: lo.0,
                hi_addr: hi.0,
                ports: (u32::from(lo.1) << 16) | u32::from(hi.1),
            },
            src_is_lo,
        )
    }
}
