//! The HTTP/1.1 head parser: an `HttpStream` in either role fed the input split at any points,
//! used as `connection.rs` uses it (each head's unused bytes are pushed again), and the
//! handshake checks on every head. However the stream is split, the same heads come out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsprobe::http::{HttpEvent, HttpStream, MAX_HEAD_BYTES, Negotiated, Role, derive_accept_key};
use wsprobe_fuzz::{Choices, split};

/// Heads found, then whether the direction stopped being HTTP.
fn heads(role: Role, pieces: &[&[u8]]) -> (Vec<String>, bool) {
    let mut http = HttpStream::new(role);
    let mut out = Vec::new();
    for piece in pieces {
        let mut rest: &[u8] = piece;
        while !rest.is_empty() {
            match http.push(rest) {
                Ok(None) => break,
                Ok(Some((event, used))) => {
                    assert!(used <= rest.len(), "used {used} of {}", rest.len());
                    rest = &rest[used..];
                    match &event {
                        HttpEvent::Request(r) => {
                            let _ = r.is_websocket_upgrade();
                            let _ = r.problems();
                            if let Some(key) = &r.key {
                                assert_eq!(derive_accept_key(key).len(), 28);
                            }
                        }
                        HttpEvent::Response(r) => {
                            let _ = r.problems();
                            let n = Negotiated::from_response(r.extensions.as_deref());
                            let _ = (n.allows_rsv1(), n.allows_rsv23());
                            if let Some(d) = n.deflate {
                                assert!((8..=15).contains(&d.client_max_window_bits), "{d:?}");
                                assert!((8..=15).contains(&d.server_max_window_bits), "{d:?}");
                            }
                        }
                    }
                    out.push(format!("{event:?}"));
                    if out.len() > 10_000 {
                        panic!("no progress");
                    }
                }
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let role = if c.byte() & 1 == 0 {
        Role::Requests
    } else {
        Role::Responses
    };
    let pieces = split(&mut c, false);
    let stream: Vec<u8> = pieces
        .iter()
        .flat_map(|p| p.bytes.iter().copied())
        .collect();
    let split_pieces: Vec<&[u8]> = pieces.iter().map(|p| p.bytes).collect();
    let split_result = heads(role, &split_pieces);
    if stream.len() <= MAX_HEAD_BYTES {
        assert_eq!(heads(role, &[&stream]), split_result);
    }
});
