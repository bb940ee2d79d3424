//! Keys that let rows from many runs and tools be joined: the Community ID v1 flow hash (the one
//! Zeek, Suricata, Arkime and Elastic share; corelight/community-id-spec) and wsprobe's own
//! deterministic connection uid. Written by hand: it is one SHA-1 over a dozen bytes, and the
//! crates that offer it pull in a packet-parsing stack we already have.

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

/// IANA protocol number of TCP.
pub const PROTO_TCP: u8 = 6;

/// Community ID v1 of a flow with ports (TCP, UDP, SCTP), `seed` 0 unless agreed otherwise.
/// The same for both directions: the endpoints are ordered before hashing.
pub fn community_id(proto: u8, a: (IpAddr, u16), b: (IpAddr, u16), seed: u16) -> String {
    let octets = |ip: IpAddr| -> Vec<u8> {
        match ip {
            // An IPv4-mapped IPv6 address is the IPv4 flow other tools saw.
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.octets().to_vec(),
                None => v6.octets().to_vec(),
            },
            IpAddr::V4(v4) => v4.octets().to_vec(),
        }
    };
    let (mut src, mut dst) = ((octets(a.0), a.1), (octets(b.0), b.1));
    // The spec's order: smaller address first; equal addresses, smaller port first.
    if (dst.0.as_slice(), dst.1) < (src.0.as_slice(), src.1) {
        std::mem::swap(&mut src, &mut dst);
    }
    let mut sha = Sha1::new();
    sha.update(seed.to_be_bytes());
    sha.update(&src.0);
    sha.update(&dst.0);
    sha.update([proto, 0]);
    sha.update(src.1.to_be_bytes());
    sha.update(dst.1.to_be_bytes());
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(sha.finalize())
    )
}

/// Community ID of a TCP connection given as reported (`ip` strings, ports); None when an
/// address does not parse (never for records wsprobe made).
pub fn tcp_community_id(client: (&str, u16), server: (&str, u16)) -> Option<String> {
    let c: IpAddr = client.0.parse().ok()?;
    let s: IpAddr = server.0.parse().ok()?;
    Some(community_id(PROTO_TCP, (c, client.1), (s, server.1), 0))
}

/// RFC 4648 base32 alphabet, lower case (readable, case-insensitive engines keep it intact).
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A connection's uid: `W` and 16 base32 characters (80 bits) of SHA-1 over the sensor, the
/// Community ID and the first packet's time in microseconds. The same capture analysed again at
/// the same sensor gives the same uids, so loading a run twice can be deduplicated; the same
/// flow seen at two sensors gets two uids and one Community ID.
pub fn conn_uid(sensor: &str, community_id: &str, first_seen: f64) -> String {
    let micros = (first_seen * 1e6).round() as i64;
    let mut sha = Sha1::new();
    sha.update(sensor.as_bytes());
    sha.update([0]);
    sha.update(community_id.as_bytes());
    sha.update([0]);
    sha.update(micros.to_be_bytes());
    uid('W', &sha.finalize())
}

/// A finding's uid: `F` and 16 base32 characters of SHA-1 over the sensor, the finding's id and
/// the uids of the connections it covers, in order. Deterministic like [`conn_uid`]: the same
/// capture analysed again at the same sensor gives the same finding uids.
pub fn finding_uid<'a>(
    sensor: &str,
    finding_id: &str,
    conn_uids: impl IntoIterator<Item = &'a str>,
) -> String {
    let mut sha = Sha1::new();
    sha.update(sensor.as_bytes());
    sha.update([0]);
    sha.update(finding_id.as_bytes());
    for u in conn_uids {
        sha.update([0]);
        sha.update(u.as_bytes());
    }
    uid('F', &sha.finalize())
}

/// `prefix` and the first 80 bits of `digest` in base32.
fn uid(prefix: char, digest: &[u8]) -> String {
    let mut bits: u128 = 0;
    for &b in &digest[..10] {
        bits = bits << 8 | u128::from(b);
    }
    let mut uid = String::with_capacity(17);
    uid.push(prefix);
    for i in (0..16).rev() {
        uid.push(BASE32[((bits >> (i * 5)) & 31) as usize] as char);
    }
    uid
}

#[cfg(test)]
mod tests {
    use super::*;

    /// corelight/community-id-spec `baseline/baseline_deflt.json` (seed 0) and
    /// `baseline_seed1.json` (seed 1): every flow with ports, both directions.
    #[test]
    fn community_id_matches_the_spec_baseline() {
        let cases: &[(u8, &str, &str, u16, u16, &str, &str)] = &[
            (
                6,
                "2001:470:e5bf:dead:4957:2174:e82c:4887",
                "2607:f8b0:400c:c03::1a",
                63943,
                25,
                "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=",
                "1:eJYTW6AOzFLlSUoESovMjnu7rMw=",
            ),
            (
                6,
                "128.232.110.120",
                "66.35.250.204",
                34855,
                80,
                "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
                "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
            ),
            (
                17,
                "192.168.1.52",
                "8.8.8.8",
                54585,
                53,
                "1:d/FP5EW3wiY1vCndhwleRRKHowQ=",
                "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=",
            ),
            (
                132,
                "192.168.170.8",
                "192.168.170.56",
                7,
                7,
                "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=",
                "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=",
            ),
        ];
        for &(proto, a, b, pa, pb, seed0, seed1) in cases {
            let (a, b): (IpAddr, IpAddr) = (a.parse().unwrap(), b.parse().unwrap());
            assert_eq!(community_id(proto, (a, pa), (b, pb), 0), seed0);
            assert_eq!(community_id(proto, (b, pb), (a, pa), 0), seed0);
            assert_eq!(community_id(proto, (a, pa), (b, pb), 1), seed1);
            assert_eq!(community_id(proto, (b, pb), (a, pa), 1), seed1);
        }
        assert_eq!(
            tcp_community_id(("66.35.250.204", 80), ("128.232.110.120", 34855)).as_deref(),
            Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        );
        // A mapped address is its IPv4 flow.
        assert_eq!(
            tcp_community_id(("::ffff:66.35.250.204", 80), ("128.232.110.120", 34855)).as_deref(),
            Some("1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        );
    }

    #[test]
    fn conn_uid_is_deterministic_and_sensor_specific() {
        let id = "1:LQU9qZlK+B5F3KDmev6m5PMibrg=";
        let a = conn_uid("lab", id, 1_700_000_000.123456);
        assert_eq!(a, conn_uid("lab", id, 1_700_000_000.123456));
        assert_eq!(a.len(), 17);
        assert!(a.starts_with('W'));
        assert!(a[1..].bytes().all(|b| BASE32.contains(&b)));
        assert_ne!(a, conn_uid("edge", id, 1_700_000_000.123456));
        assert_ne!(a, conn_uid("lab", id, 1_700_000_000.123457));
    }
}
