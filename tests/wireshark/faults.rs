//! Small captures built in code, one per tshark fault that no recorded capture in `captures/`
//! shows, so every entry of `docs/wireshark-differences.md` can be checked where only this
//! repository is present (CI has no `../shared`).

use crate::util::*;

/// Key and accept of RFC 6455 §1.3 are in `util`; a wrong accept is that one with a changed byte.
const WRONG_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOA=";

fn open(c: &mut Conv, response: &[u8]) {
    c.tcp_open();
    c.send(true, &upgrade_request("/", ""));
    c.send(false, response);
}

fn close(c: &mut Conv) {
    c.send(true, &client_frame(true, 8, &close_payload(1000, "")));
    c.send(false, &server_frame(true, 8, &close_payload(1000, "")));
    c.fin(false);
    c.fin(true);
}

/// (file name, pcap bytes) of every synthetic capture.
pub fn captures() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();

    // W6: a Close of 258 bytes in the 64-bit length form (RFC 6455 §5.5: at most 125; §5.2: the
    // minimal length encoding).
    let mut c = Conv::new("10.0.0.1:40001", "10.0.0.2:80");
    open(&mut c, &upgrade_response(""));
    c.send(true, &client_frame(true, 1, b"hello"));
    let mut big_close = vec![0x88, 0x7F];
    big_close.extend_from_slice(&258u64.to_be_bytes());
    big_close.extend_from_slice(&close_payload(1000, &"r".repeat(256)));
    c.send(false, &big_close);
    c.send(true, &client_frame(true, 8, &close_payload(1000, "")));
    c.fin(false);
    c.fin(true);
    out.push(("synthetic-oversized-close.pcap", pcap(&c, Link::Ethernet)));

    // W7: a 101 whose Sec-WebSocket-Accept does not match the key (RFC 6455 §4.1).
    let mut c = Conv::new("10.0.0.1:40002", "10.0.0.2:80");
    let response = String::from_utf8(upgrade_response(""))
        .unwrap()
        .replace(ACCEPT, WRONG_ACCEPT);
    open(&mut c, response.as_bytes());
    c.send(true, &client_frame(true, 1, b"hello"));
    c.send(false, &server_frame(true, 1, b"hello"));
    close(&mut c);
    out.push(("synthetic-wrong-accept.pcap", pcap(&c, Link::Ethernet)));

    // W8: a client frame without a mask (RFC 6455 §5.1).
    let mut c = Conv::new("10.0.0.1:40003", "10.0.0.2:80");
    open(&mut c, &upgrade_response(""));
    c.send(true, &server_frame(true, 1, b"not masked"));
    c.send(false, &server_frame(true, 1, b"not masked"));
    close(&mut c);
    out.push(("synthetic-unmasked-client.pcap", pcap(&c, Link::Ethernet)));

    out.push(("synthetic-reordered.pcap", reordered()));
    out.push(("synthetic-midstream.pcap", midstream()));
    out
}

/// W10: the server's 4-segment frame captured with its second and third segments swapped (as
/// capture on a multi-queue interface often gives).
pub fn reordered() -> Vec<u8> {
    let mut c = Conv::new("10.0.0.1:40004", "10.0.0.2:80");
    open(&mut c, &upgrade_response(""));
    c.send(true, &client_frame(true, 1, b"send me the big one"));
    let big: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let first = c.packets.len();
    c.send(false, &server_frame(true, 1, &big));
    c.send(false, &server_frame(true, 1, b"after"));
    c.packets.swap(first + 1, first + 2);
    close(&mut c);
    pcap(&c, Link::Ethernet)
}

/// W11: a connection whose handshake was not captured (port 8080, no SYN): three text
/// messages and their echoes.
pub fn midstream() -> Vec<u8> {
    let mut c = Conv::new("10.0.0.1:40005", "10.0.0.2:8080");
    for text in ["one", "two", "three"] {
        c.send(true, &client_frame(true, 1, text.as_bytes()));
        c.send(false, &server_frame(true, 1, text.as_bytes()));
    }
    pcap(&c, Link::Ethernet)
}
