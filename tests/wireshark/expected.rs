//! The disagreements between tshark 4.0 and wsprobe that are tshark's faults, each explained (with
//! the RFC section) in `docs/wireshark-differences.md` under its `doc` id.

/// One expected disagreement; its fields are those of [`crate::compare::Diff::key`].
pub struct Expected {
    pub capture: &'static str,
    pub connection: &'static str,
    pub side: &'static str,
    pub kind: &'static str,
    pub at: &'static str,
    /// Entry in docs/wireshark-differences.md.
    pub doc: &'static str,
}

impl Expected {
    pub fn key(&self) -> String {
        format!(
            "{} | {} | {} | {} | {}",
            self.capture, self.connection, self.side, self.kind, self.at
        )
    }
}

const fn e(
    capture: &'static str,
    connection: &'static str,
    side: &'static str,
    kind: &'static str,
    at: &'static str,
    doc: &'static str,
) -> Expected {
    Expected {
        capture,
        connection,
        side,
        kind,
        at,
        doc,
    }
}

#[rustfmt::skip]
pub const EXPECTED: &[Expected] = &[
    // W1: only the first 256 KiB of a masked frame unmasked.
    e("captures/node-ws-mix.pcap", "127.0.0.1:35354", "client", "payload", "message 10", "W1"),
    // W2: a compressed message in several frames is not inflated.
    e("captures/demo.pcap", "127.0.0.1:55684", "client", "tshark_not_inflated", "message 4", "W2"),
    // W3: after W2, the direction's window lacks that message: wrong text, then a failure.
    e("captures/demo.pcap", "127.0.0.1:55684", "client", "inflated_payload", "message 7", "W3"),
    e("captures/demo.pcap", "127.0.0.1:55684", "client", "tshark_inflate_failed", "message 10", "W3"),
    // W4: an empty compressed message is shown as its 1 compressed byte.
    e("captures/demo.pcap", "127.0.0.1:55684", "client", "tshark_not_inflated", "message 9", "W4"),
    e("captures/demo.pcap", "127.0.0.1:55684", "server", "tshark_not_inflated", "message 9", "W4"),
    e("captures/chromium.pcap", "127.0.0.1:51088", "client", "tshark_not_inflated", "message 6", "W4"),
    e("captures/chromium.pcap", "127.0.0.1:51088", "server", "tshark_not_inflated", "message 6", "W4"),
    // The same empty compressed message in the wss captures (decrypted by both tools).
    e("captures/wss-chromium.pcap", "127.0.0.1:32996", "client", "tshark_not_inflated", "message 6", "W4"),
    e("captures/wss-chromium.pcap", "127.0.0.1:32996", "server", "tshark_not_inflated", "message 6", "W4"),
    e("captures/wss-dsb.pcapng", "127.0.0.1:59930", "client", "tshark_not_inflated", "message 5", "W4"),
    e("captures/wss-dsb.pcapng", "127.0.0.1:59930", "server", "tshark_not_inflated", "message 5", "W4"),
    e("captures/wss-py-tls12.pcap", "127.0.0.1:55862", "client", "tshark_not_inflated", "message 5", "W4"),
    e("captures/wss-py-tls12.pcap", "127.0.0.1:55862", "server", "tshark_not_inflated", "message 5", "W4"),
    e("captures/wss-py-tls12.pcap", "127.0.0.1:55890", "client", "tshark_not_inflated", "message 5", "W4"),
    e("captures/wss-py-tls12.pcap", "127.0.0.1:55890", "server", "tshark_not_inflated", "message 5", "W4"),
    e("captures/wss-py-tls13.pcap", "127.0.0.1:59930", "client", "tshark_not_inflated", "message 5", "W4"),
    e("captures/wss-py-tls13.pcap", "127.0.0.1:59930", "server", "tshark_not_inflated", "message 5", "W4"),
    e("captures/deflate-variants.pcapng", "127.0.0.1:49670", "client", "tshark_not_inflated", "message 20", "W4"),
    e("captures/deflate-variants.pcapng", "127.0.0.1:49670", "server", "tshark_not_inflated", "message 20", "W4"),
    e("captures/deflate-variants.pcapng", "127.0.0.1:51020", "client", "tshark_not_inflated", "message 20", "W4"),
    e("captures/deflate-variants.pcapng", "127.0.0.1:51020", "server", "tshark_not_inflated", "message 20", "W4"),
    e("captures/deflate-variants.pcapng", "127.0.0.1:52824", "client", "tshark_not_inflated", "message 20", "W4"),
    e("captures/deflate-variants.pcapng", "127.0.0.1:52824", "server", "tshark_not_inflated", "message 20", "W4"),
    // W5: with no handshake seen (decode-as), compressed bytes are shown as the payload.
    e("public/eririmba-socket.io-sample__websocket.pcap", "127.0.0.1:62866", "client", "tshark_not_inflated", "message 0", "W5"),
    // W6: a control frame over 125 bytes (in a non-minimal 64-bit length) is not flagged.
    e("public/zeek__oversized-close-frame.pcapng", "10.0.0.1:40081", "-", "not_flagged_by_tshark:control_frame_too_long", "", "W6"),
    e("public/zeek__oversized-close-frame.pcapng", "10.0.0.1:40081", "-", "not_flagged_by_tshark:non_minimal_length", "", "W6"),
    e("synthetic/synthetic-oversized-close.pcap", "10.0.0.1:40001", "-", "not_flagged_by_tshark:control_frame_too_long", "", "W6"),
    e("synthetic/synthetic-oversized-close.pcap", "10.0.0.1:40001", "-", "not_flagged_by_tshark:non_minimal_length", "", "W6"),
    // W7: Sec-WebSocket-Accept is not checked.
    e("public/zeek__wrong-accept-header.pcap", "127.0.0.1:53654", "-", "not_flagged_by_tshark:handshake_accept_mismatch", "", "W7"),
    e("synthetic/synthetic-wrong-accept.pcap", "10.0.0.1:40002", "-", "not_flagged_by_tshark:handshake_accept_mismatch", "", "W7"),
    // W8: unmasked client frames are not flagged.
    e("public/suricata-verify__websocket-ping__input.pcap", "127.0.0.1:55371", "-", "not_flagged_by_tshark:unmasked_client_frame", "", "W8"),
    e("public/zeek__wstunnel-http.pcap", "127.0.0.1:51102", "-", "not_flagged_by_tshark:unmasked_client_frame", "", "W8"),
    e("synthetic/synthetic-unmasked-client.pcap", "10.0.0.1:40003", "-", "not_flagged_by_tshark:unmasked_client_frame", "", "W8"),
    // W9: a Sec-WebSocket-Key that is not a base64 16-byte nonce is not flagged.
    e("public/suricata-verify__websocket-control-frag__input.pcap", "10.0.0.1:54321", "-", "not_flagged_by_tshark:handshake_invalid", "", "W9"),
    // W11: without the handshake, tshark finds no WebSocket (unless told with decode-as).
    e("synthetic/synthetic-midstream.pcap", "10.0.0.1:40005", "-", "only_in_wsprobe", "", "W11"),
    // W12: a request that lost its Upgrade header on the way (and its 426) is plain HTTP to tshark.
    e("captures/proxy-strips-upgrade.pcap", "127.0.0.1:49910", "-", "only_in_wsprobe", "", "W12"),
    // W13: WebSocket over HTTP/2 (RFC 8441) is "tunneled data" to tshark.
    e("captures/h2c-websocket.pcap", "127.0.0.1:57652", "-", "only_in_wsprobe", "", "W13"),
    e("captures/h2c-flow-stall.pcap", "127.0.0.1:44512", "-", "only_in_wsprobe", "", "W13"),
    e("captures/h2-chromium.pcapng", "127.0.0.1:49638", "-", "only_in_wsprobe", "", "W13"),
];
