//! The TLS record framer, handshake joiner and message parsers, and the whole `TlsLayer`, on
//! fuzzer bytes split at fuzzer-chosen points with fuzzer-chosen gaps. Checks the framer's
//! contract (whole records within the RFC bound, bounded memory, the same records however a
//! gap-free stream is split) and that the layer never panics, never holds more than its caps
//! and never outputs plaintext without keys.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use wsprobe::diag::Side;
use wsprobe::stream::tls::handshake::{self, HandshakeJoiner, JoinerEvent, MAX_PARSED_MESSAGE};
use wsprobe::stream::tls::record::{FramerEvent, HUNT_WINDOW, MAX_FRAGMENT, RecordFramer};
use wsprobe::stream::tls::{KeyStore, TlsLayer, looks_like_client_hello};
use wsprobe::stream::{Chunk, End, Layer, Out};
use wsprobe_fuzz::{Choices, split};

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Record(u8, Vec<u8>),
    Other(String),
}

fn frame(pieces: &[wsprobe_fuzz::Piece<'_>], joiner: &mut HandshakeJoiner) -> (Vec<Ev>, bool) {
    let mut f = RecordFramer::new();
    let mut evs = Vec::new();
    let mut invalid = false;
    let on = |e: FramerEvent<'_>, evs: &mut Vec<Ev>, joiner: &mut HandshakeJoiner| match e {
        FramerEvent::Record(r) => {
            assert_eq!(r.fragment().len(), usize::from(r.header.length));
            assert!(r.fragment().len() <= MAX_FRAGMENT);
            if r.header.content_type.byte() == 22 {
                joiner.push(r.fragment(), &mut |m| {
                    if let JoinerEvent::Message { msg_type, body } = m {
                        assert!(body.len() <= MAX_PARSED_MESSAGE);
                        let _ = match msg_type {
                            1 => handshake::parse_client_hello(body).map(|_| ()),
                            2 => handshake::parse_server_hello(body).map(|_| ()),
                            8 => handshake::parse_encrypted_extensions(body).map(|_| ()),
                            4 => handshake::parse_tls12_ticket(body).map(|_| ()),
                            24 => handshake::parse_key_update(body).map(|_| ()),
                            _ => Ok(()),
                        };
                    }
                });
            }
            evs.push(Ev::Record(r.header.content_type.byte(), r.fragment().to_vec()));
        }
        other => evs.push(Ev::Other(format!("{other:?}"))),
    };
    for p in pieces {
        f.push(p.bytes, &mut |e| {
            invalid |= matches!(e, FramerEvent::Invalid { .. });
            on(e, &mut evs, joiner)
        });
        assert!(f.held() <= HUNT_WINDOW + p.bytes.len() + 5 + MAX_FRAGMENT);
        if p.gap > 0 {
            f.gap(p.gap, &mut |e| on(e, &mut evs, joiner));
        }
    }
    f.finish(&mut |e| on(e, &mut evs, joiner));
    (evs, invalid)
}

fuzz_target!(|data: &[u8]| {
    let mut c = Choices::new(data);
    let mode = c.byte();
    let pieces = split(&mut c, mode & 1 != 0);
    let stream: Vec<u8> = pieces.iter().flat_map(|p| p.bytes.iter().copied()).collect();
    let _ = looks_like_client_hello(&stream);

    let (split_evs, invalid) = frame(&pieces, &mut HandshakeJoiner::new());
    if mode & 1 == 0 && !invalid {
        let whole = [wsprobe_fuzz::Piece { bytes: &stream, gap: 0 }];
        let (whole_evs, _) = frame(&whole, &mut HandshakeJoiner::new());
        assert_eq!(whole_evs, split_evs);
    }

    // The whole layer: odd pieces from the client, even from the server, no keys.
    let mut layer = TlsLayer::new(Arc::new(KeyStore::new(false)));
    let mut out = |o: Out<'_, _>| {
        if let Out::Data { chunk: Chunk::Data(_), .. } = o {
            panic!("plaintext without keys");
        }
    };
    for (i, p) in pieces.iter().enumerate() {
        let side = if i % 2 == 0 { Side::Client } else { Side::Server };
        layer.push(side, i as f64, Chunk::Data(p.bytes), &mut out);
        if p.gap > 0 {
            layer.push(side, i as f64, Chunk::Gap(p.gap), &mut out);
        }
    }
    layer.end(Side::Client, 99.0, End::Fin, &mut out);
    layer.end(Side::Server, 99.0, End::Rst, &mut out);
    let _ = layer.record();
});
