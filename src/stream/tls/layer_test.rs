//! Tests of the TLS layer on whole conversations: RFC 8448's trace, and conversations sealed
//! here with logged secrets (TLS 1.3 and 1.2, every AEAD, HRR, KeyUpdate, 0-RTT, resumption,
//! gaps, wrong keys, no keys).

use std::sync::Arc;

use proptest::prelude::*;

use super::decrypt::tests::*;
use super::decrypt::{Protection, RecordKeys};
use super::record::ContentType;
use super::schedule::{self, Secret, tls12_key_block, tls13_next_secret, tls13_traffic_keys};
use super::suite::{Aead, HashAlg};
use super::{KeyStore, TlsEvent, TlsLayer};
use crate::diag::{DiagnosticId, Side};
use crate::stream::{Chunk, End, Layer, Out};

const C: Side = Side::Client;
const S: Side = Side::Server;

/// What the layer put out, per side.
#[derive(Debug, Default, PartialEq)]
struct Output {
    client: Vec<u8>,
    server: Vec<u8>,
    gaps: Vec<(Side, u64)>,
    events: Vec<String>,
    diags: Vec<(DiagnosticId, String)>,
}

impl Output {
    fn has(&self, id: DiagnosticId) -> bool {
        self.diags.iter().any(|(d, _)| *d == id)
    }
    fn count(&self, id: DiagnosticId) -> usize {
        self.diags.iter().filter(|(d, _)| *d == id).count()
    }
}

fn collect(o: &mut Output) -> impl FnMut(Out<'_, TlsEvent>) + '_ {
    move |ev| match ev {
        Out::Data {
            from,
            chunk: Chunk::Data(d),
            channel,
        } => {
            assert_eq!(channel, 0);
            match from {
                Side::Client => o.client.extend_from_slice(d),
                Side::Server => o.server.extend_from_slice(d),
            }
        }
        Out::Data {
            from,
            chunk: Chunk::Gap(n),
            ..
        } => o.gaps.push((from, n)),
        Out::Event(TlsEvent::Diagnostic(d)) => o.diags.push((d.id, d.message)),
        Out::Event(e) => o.events.push(format!("{e:?}")),
    }
}

/// A piece of a conversation: bytes, or a gap, from one side.
#[derive(Debug, Clone)]
enum Piece {
    Bytes(Side, Vec<u8>),
    Gap(Side, u64),
    End(Side, End),
}

fn run(keys: &Arc<KeyStore>, script: &[Piece]) -> (Output, TlsLayer) {
    let mut layer = TlsLayer::new(keys.clone());
    let mut o = Output::default();
    let mut t = 100.0;
    for p in script {
        t += 0.001;
        let mut sink = collect(&mut o);
        match p {
            Piece::Bytes(side, b) => layer.push(*side, t, Chunk::Data(b), &mut sink),
            Piece::Gap(side, n) => layer.push(*side, t, Chunk::Gap(*n), &mut sink),
            Piece::End(side, how) => layer.end(*side, t, *how, &mut sink),
        }
    }
    (o, layer)
}

fn bytes(side: Side, b: Vec<u8>) -> Piece {
    Piece::Bytes(side, b)
}

fn record(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t, 3, if t == 22 { 1 } else { 3 }];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn hs(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

fn ext(t: u16, data: &[u8]) -> Vec<u8> {
    let mut v = t.to_be_bytes().to_vec();
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn sni(name: &str) -> Vec<u8> {
    let mut entry = vec![0];
    entry.extend((name.len() as u16).to_be_bytes());
    entry.extend(name.as_bytes());
    let mut list = (entry.len() as u16).to_be_bytes().to_vec();
    list.extend(entry);
    ext(0, &list)
}

fn alpn(protos: &[&str]) -> Vec<u8> {
    let mut list = Vec::new();
    for p in protos {
        list.push(p.len() as u8);
        list.extend(p.as_bytes());
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend(list);
    ext(16, &data)
}

fn client_hello(random: [u8; 32], session_id: &[u8], suites: &[u16], exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend(random);
    b.push(session_id.len() as u8);
    b.extend(session_id);
    b.extend(((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        b.extend(s.to_be_bytes());
    }
    b.extend([1, 0]);
    let e: Vec<u8> = exts.concat();
    b.extend((e.len() as u16).to_be_bytes());
    b.extend(e);
    hs(1, &b)
}

fn server_hello(random: [u8; 32], session_id: &[u8], suite: u16, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend(random);
    b.push(session_id.len() as u8);
    b.extend(session_id);
    b.extend(suite.to_be_bytes());
    b.push(0);
    let e: Vec<u8> = exts.concat();
    b.extend((e.len() as u16).to_be_bytes());
    b.extend(e);
    hs(2, &b)
}

fn tls13_exts() -> Vec<Vec<u8>> {
    vec![ext(43, &[3, 4]), ext(51, &[0, 0x1d, 0, 2, 9, 9])]
}

/// One sender's record protection.
struct Sender {
    keys: RecordKeys,
    seq: u64,
}

impl Sender {
    fn tls13(aead: Aead, hash: HashAlg, secret: &[u8]) -> Sender {
        let tk = tls13_traffic_keys(aead, hash, secret);
        Sender {
            keys: RecordKeys::new(aead, &tk, Protection::Tls13),
            seq: 0,
        }
    }
    fn seal(&mut self, t: ContentType, plain: &[u8]) -> Vec<u8> {
        let r = self.keys.seal_record(self.seq, t, plain);
        self.seq += 1;
        r
    }
    fn app(&mut self, plain: &[u8]) -> Vec<u8> {
        self.seal(ContentType::ApplicationData, plain)
    }
}

fn hexs(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---- RFC 8448 -------------------------------------------------------------------------

const RFC8448_RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";

fn rfc8448_keylog() -> String {
    format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {RFC8448_CLIENT_HS_SECRET}\n\
         SERVER_HANDSHAKE_TRAFFIC_SECRET {r} {RFC8448_SERVER_HS_SECRET}\n\
         CLIENT_TRAFFIC_SECRET_0 {r} {RFC8448_CLIENT_APP_SECRET}\n\
         SERVER_TRAFFIC_SECRET_0 {r} {RFC8448_SERVER_APP_SECRET}\n",
        r = RFC8448_RANDOM
    )
}

/// The RFC 8448 §3 conversation as two byte streams, in capture order.
fn rfc8448_script() -> Vec<Piece> {
    use crate::stream::tls::handshake::tests::{RFC8448_CLIENT_HELLO, RFC8448_SERVER_HELLO};
    vec![
        bytes(C, record(22, &hex(RFC8448_CLIENT_HELLO))),
        bytes(
            S,
            [
                record(22, &hex(RFC8448_SERVER_HELLO)),
                hex(RFC8448_SERVER_FLIGHT),
            ]
            .concat(),
        ),
        bytes(C, hex(RFC8448_CLIENT_FINISHED)),
        bytes(S, hex(RFC8448_SERVER_TICKET)),
        bytes(C, hex(RFC8448_CLIENT_DATA)),
        bytes(S, hex(RFC8448_SERVER_DATA)),
        bytes(C, hex(RFC8448_CLIENT_ALERT)),
        bytes(S, hex(RFC8448_SERVER_ALERT)),
        Piece::End(C, End::Fin),
        Piece::End(S, End::Fin),
    ]
}

fn keystore(text: &str) -> Arc<KeyStore> {
    let k = KeyStore::new(false);
    let s = k.add_text("test.keys", text.as_bytes());
    assert_eq!(s.malformed, 0, "{:?}", s.warnings);
    Arc::new(k)
}

#[test]
fn rfc8448_conversation_decrypts_through_the_layer() {
    let keys = keystore(&rfc8448_keylog());
    let (o, layer) = run(&keys, &rfc8448_script());
    let counting: Vec<u8> = (0..50).collect();
    assert_eq!(o.client, counting);
    assert_eq!(o.server, counting);
    assert!(o.gaps.is_empty());
    assert!(o.diags.is_empty(), "{:?}", o.diags);
    let r = layer.record();
    assert_eq!(r.version.as_deref(), Some("TLSv1.3"));
    assert_eq!(r.cipher_suite.as_deref(), Some("TLS_AES_128_GCM_SHA256"));
    assert_eq!(r.sni.as_deref(), Some("server"));
    assert_eq!(r.client_random.as_deref(), Some(RFC8448_RANDOM));
    assert!(r.decrypted && r.decrypt_error.is_none());
    assert_eq!(r.handshake_complete, Some(true));
    assert!(r.close_notify.client && r.close_notify.server);
    assert_eq!(r.alerts.len(), 2);
    assert_eq!(r.application_bytes.client, 50);
    assert_eq!((r.records.client, r.records.server), (4, 5));
    assert!(r.inferred.is_none());
    assert!(o.events.iter().filter(|e| e.contains("Finished")).count() == 2);
}

/// Splits `side`'s stream at global offset `at`, inside the piece that holds it.
fn split_at_offset(script: &[Piece], side: Side, at: usize) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut offset = 0;
    for p in script {
        match p {
            Piece::Bytes(s, b) if *s == side && at > offset && at < offset + b.len() => {
                out.push(bytes(side, b[..at - offset].to_vec()));
                out.push(bytes(side, b[at - offset..].to_vec()));
                offset += b.len();
            }
            Piece::Bytes(s, b) if *s == side => {
                out.push(p.clone());
                offset += b.len();
            }
            other => out.push(other.clone()),
        }
    }
    out
}

#[test]
fn rfc8448_every_split_point_gives_the_same_plaintext() {
    let keys = keystore(&rfc8448_keylog());
    let script = rfc8448_script();
    let (whole, _) = run(&keys, &script);
    for side in [C, S] {
        let len: usize = script
            .iter()
            .map(|p| match p {
                Piece::Bytes(s, b) if *s == side => b.len(),
                _ => 0,
            })
            .sum();
        for at in 1..len {
            let (o, _) = run(&keys, &split_at_offset(&script, side, at));
            assert_eq!(o, whole, "{side:?} split at {at}");
        }
    }
    // One byte at a time, both sides.
    let mut tiny = Vec::new();
    for p in &script {
        match p {
            Piece::Bytes(s, b) => tiny.extend(b.iter().map(|x| bytes(*s, vec![*x]))),
            other => tiny.push(other.clone()),
        }
    }
    assert_eq!(run(&keys, &tiny).0, whole);
}

#[test]
fn rfc8448_without_keys_reports_the_clear_facts_and_size_inferences() {
    let keys = Arc::new(KeyStore::new(false));
    let (o, layer) = run(&keys, &rfc8448_script());
    assert!(
        o.client.is_empty() && o.server.is_empty(),
        "no plaintext without keys"
    );
    assert_eq!(o.count(DiagnosticId::TlsNoKey), 1);
    assert!(o.diags[0].1.contains("no key log given"));
    assert!(!o.has(DiagnosticId::TlsHandshakeFailed), "{:?}", o.diags);
    assert!(
        !o.has(DiagnosticId::TlsNoCloseNotify),
        "not visible in TLS 1.3 without keys"
    );
    let r = layer.record();
    assert!(!r.decrypted);
    assert_eq!(r.decrypt_error.as_deref(), Some("no key log given"));
    assert_eq!(r.handshake_complete, None);
    let inf = r.inferred.unwrap();
    assert_eq!(inf.handshake_complete, Some(true));
    assert!(
        inf.close_notify.client && inf.close_notify.server,
        "19-byte final records"
    );
    assert_eq!(inf.last_application_length.client, Some(50));
    assert_eq!(inf.application_records.client, 1);
    // 50 plaintext bytes are within a Close frame's sizes: "consistent with", no more.
    assert!(inf.close_frame.client);
}

#[test]
fn rfc8448_with_a_wrong_key_gives_a_diagnostic_and_no_garbage() {
    let wrong = rfc8448_keylog()
        .replace(RFC8448_SERVER_HS_SECRET, &"11".repeat(32))
        .replace(RFC8448_SERVER_APP_SECRET, &"22".repeat(32));
    let keys = keystore(&wrong);
    let (o, layer) = run(&keys, &rfc8448_script());
    assert!(o.server.is_empty(), "never plaintext from a failed tag");
    assert_eq!(
        o.client,
        (0..50).collect::<Vec<u8>>(),
        "the client's keys were right"
    );
    assert!(o.has(DiagnosticId::TlsDecryptFailed));
    let msg = &o
        .diags
        .iter()
        .find(|(d, _)| *d == DiagnosticId::TlsDecryptFailed)
        .unwrap()
        .1;
    assert!(
        msg.contains("server record 0") && msg.contains("wrong key"),
        "{msg}"
    );
    let r = layer.record();
    assert!(r.decrypt_error.unwrap().contains("failed authentication"));
    assert!(r.undecrypted_records.server >= 3);
}

// ---- synthetic TLS 1.3 ----------------------------------------------------------------

struct Tls13 {
    random: [u8; 32],
    suite: u16,
    aead: Aead,
    hash: HashAlg,
    c_hs: Vec<u8>,
    s_hs: Vec<u8>,
    c_app: Vec<u8>,
    s_app: Vec<u8>,
    early: Vec<u8>,
}

impl Tls13 {
    fn new(suite: u16, seed: u8) -> Tls13 {
        let (aead, hash) = match suite {
            0x1301 => (Aead::Aes128Gcm, HashAlg::Sha256),
            0x1302 => (Aead::Aes256Gcm, HashAlg::Sha384),
            _ => (Aead::Chacha20Poly1305, HashAlg::Sha256),
        };
        let n = hash.len();
        let fill = |k: u8| {
            (0..n)
                .map(|i| (i as u8).wrapping_mul(31) ^ k ^ seed)
                .collect::<Vec<u8>>()
        };
        Tls13 {
            random: [seed; 32],
            suite,
            aead,
            hash,
            c_hs: fill(1),
            s_hs: fill(2),
            c_app: fill(3),
            s_app: fill(4),
            early: fill(5),
        }
    }
    fn keylog(&self) -> String {
        let r = hexs(&self.random);
        format!(
            "CLIENT_EARLY_TRAFFIC_SECRET {r} {}\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {r} {}\nCLIENT_TRAFFIC_SECRET_0 {r} {}\nSERVER_TRAFFIC_SECRET_0 {r} {}\n",
            hexs(&self.early),
            hexs(&self.c_hs),
            hexs(&self.s_hs),
            hexs(&self.c_app),
            hexs(&self.s_app)
        )
    }
    fn sender(&self, secret: &[u8]) -> Sender {
        Sender::tls13(self.aead, self.hash, secret)
    }
    fn client_hello(&self, extra: &[Vec<u8>]) -> Vec<u8> {
        let mut exts = vec![
            sni("example.test"),
            alpn(&["http/1.1"]),
            ext(43, &[2, 3, 4]),
            ext(51, &[0, 6, 0, 0x1d, 0, 2, 9, 9]),
        ];
        exts.extend_from_slice(extra);
        record(
            22,
            &client_hello(self.random, &[7; 32], &[0x1301, 0x1302, 0x1303], &exts),
        )
    }
    fn server_hello(&self) -> Vec<u8> {
        record(
            22,
            &server_hello([0x55; 32], &[7; 32], self.suite, &tls13_exts()),
        )
    }
    fn encrypted_extensions(&self, early: bool) -> Vec<u8> {
        let mut e = alpn(&["http/1.1"]);
        if early {
            e.extend(ext(42, &[]));
        }
        let mut body = (e.len() as u16).to_be_bytes().to_vec();
        body.extend(e);
        hs(8, &body)
    }
    fn finished(&self) -> Vec<u8> {
        hs(20, &vec![0xf1; self.hash.len()])
    }
}

/// A TLS 1.3 conversation: handshake, `n` messages each way, close_notify both ways.
fn tls13_script(t: &Tls13, messages: &[(&[u8], &[u8])], compat_ccs: bool) -> Vec<Piece> {
    let mut c_hs = t.sender(&t.c_hs);
    let mut s_hs = t.sender(&t.s_hs);
    let mut c_app = t.sender(&t.c_app);
    let mut s_app = t.sender(&t.s_app);
    let ccs = record(20, &[1]);
    let mut v = vec![bytes(C, t.client_hello(&[]))];
    let mut server = t.server_hello();
    if compat_ccs {
        server.extend(&ccs);
    }
    // EE + Certificate (skipped unread) in one record, Finished in the next.
    let flight = [
        t.encrypted_extensions(false),
        hs(11, &[0u8; 300]),
        hs(15, &[0u8; 70]),
    ]
    .concat();
    server.extend(s_hs.seal(ContentType::Handshake, &flight));
    server.extend(s_hs.seal(ContentType::Handshake, &t.finished()));
    // Two NewSessionTickets right after the Finished, as OpenSSL sends them.
    server.extend(s_app.seal(ContentType::Handshake, &hs(4, &[0u8; 60])));
    server.extend(s_app.seal(ContentType::Handshake, &hs(4, &[1u8; 60])));
    v.push(bytes(S, server));
    let mut client = Vec::new();
    if compat_ccs {
        client.extend(&ccs);
    }
    client.extend(c_hs.seal(ContentType::Handshake, &t.finished()));
    v.push(bytes(C, client));
    for (c, s) in messages {
        v.push(bytes(C, c_app.app(c)));
        v.push(bytes(S, s_app.app(s)));
    }
    v.push(bytes(C, c_app.seal(ContentType::Alert, &[1, 0])));
    v.push(bytes(S, s_app.seal(ContentType::Alert, &[1, 0])));
    v.push(Piece::End(C, End::Fin));
    v.push(Piece::End(S, End::Fin));
    v
}

#[test]
fn tls13_every_suite_with_compat_ccs_and_tickets() {
    for suite in [0x1301, 0x1302, 0x1303] {
        let t = Tls13::new(suite, suite as u8);
        let keys = keystore(&t.keylog());
        let big = vec![0xabu8; 20_000]; // more than one record's worth is fine: sealed as one here
        let msgs: Vec<(&[u8], &[u8])> = vec![
            (b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 101 OK\r\n\r\n"),
            (&big[..16000], b""),
        ];
        let (o, layer) = run(&keys, &tls13_script(&t, &msgs, true));
        assert_eq!(
            o.client,
            [&b"GET / HTTP/1.1\r\n\r\n"[..], &big[..16000]].concat(),
            "{suite:#x}"
        );
        assert_eq!(o.server, b"HTTP/1.1 101 OK\r\n\r\n");
        assert!(o.diags.is_empty(), "{suite:#x}: {:?}", o.diags);
        let r = layer.record();
        assert_eq!(
            r.alpn.as_deref(),
            Some("http/1.1"),
            "ALPN from the decrypted EncryptedExtensions"
        );
        assert_eq!(r.alpn_offered, vec!["http/1.1"]);
        assert_eq!(r.sni.as_deref(), Some("example.test"));
        assert_eq!(r.handshake_complete, Some(true));
        assert!(r.close_notify.client && r.close_notify.server);
    }
}

#[test]
fn tls13_key_update_in_both_directions() {
    let t = Tls13::new(0x1302, 9);
    let keys = keystore(&t.keylog());
    let mut script = tls13_script(&t, &[(b"before", b"before too")], false);
    // Replace the tail (alerts, ends) with: client KeyUpdate(update_requested), server
    // KeyUpdate, data under generation 1 both ways, a second client KeyUpdate, data.
    script.truncate(script.len() - 4);
    let mut c = t.sender(&t.c_app);
    let mut s = t.sender(&t.s_app);
    c.seq = 1; // "before"
    s.seq = 3; // two tickets and "before too"
    let ku = |req: u8| hs(24, &[req]);
    script.push(bytes(C, c.seal(ContentType::Handshake, &ku(1))));
    let c1 = tls13_next_secret(t.hash, &Secret::new(&t.c_app).unwrap());
    let s1 = tls13_next_secret(t.hash, &Secret::new(&t.s_app).unwrap());
    script.push(bytes(S, s.seal(ContentType::Handshake, &ku(0))));
    let mut c = t.sender(c1.as_bytes());
    let mut s = t.sender(s1.as_bytes());
    script.push(bytes(C, c.app(b"after one")));
    script.push(bytes(S, s.app(b"after one too")));
    script.push(bytes(C, c.seal(ContentType::Handshake, &ku(0))));
    let c2 = tls13_next_secret(t.hash, &c1);
    let mut c = t.sender(c2.as_bytes());
    script.push(bytes(C, c.app(b"after two")));
    let (o, layer) = run(&keys, &script);
    assert_eq!(o.client, b"beforeafter oneafter two");
    assert_eq!(o.server, b"before tooafter one too");
    assert!(o.diags.is_empty(), "{:?}", o.diags);
    let r = layer.record();
    assert_eq!((r.key_updates.client, r.key_updates.server), (2, 1));
    assert_eq!(
        o.events.iter().filter(|e| e.contains("KeyUpdate")).count(),
        3
    );
}

#[test]
fn tls13_logged_traffic_secret_n_is_used() {
    let t = Tls13::new(0x1301, 3);
    let s1 = tls13_next_secret(t.hash, &Secret::new(&t.c_app).unwrap());
    let log = format!(
        "{}CLIENT_TRAFFIC_SECRET_1 {} {}\n",
        t.keylog(),
        hexs(&t.random),
        hexs(s1.as_bytes())
    );
    let keys = keystore(&log);
    let mut script = tls13_script(&t, &[(b"x", b"y")], false);
    script.truncate(script.len() - 4);
    let mut c = t.sender(&t.c_app);
    c.seq = 1;
    script.push(bytes(C, c.seal(ContentType::Handshake, &hs(24, &[0]))));
    script.push(bytes(C, t.sender(s1.as_bytes()).app(b"gen1")));
    let (o, _) = run(&keys, &script);
    assert_eq!(o.client, b"xgen1");
}

#[test]
fn tls13_hello_retry_request() {
    let t = Tls13::new(0x1302, 0x21);
    let keys = keystore(&t.keylog());
    let mut script = tls13_script(&t, &[(b"ping", b"pong")], true);
    // Insert HRR and the second ClientHello before the ServerHello.
    let hrr = record(
        22,
        &server_hello(
            super::handshake::HRR_RANDOM,
            &[7; 32],
            0x1302,
            &[ext(43, &[3, 4]), ext(51, &[0, 0x18])],
        ),
    );
    let ccs = record(20, &[1]);
    let ch2 = t.client_hello(&[]);
    script.insert(1, bytes(S, [hrr, ccs.clone()].concat()));
    script.insert(2, bytes(C, [ccs, ch2].concat()));
    let (o, layer) = run(&keys, &script);
    assert_eq!(o.client, b"ping");
    assert_eq!(o.server, b"pong");
    assert!(o.diags.is_empty(), "{:?}", o.diags);
    let r = layer.record();
    assert!(r.hello_retry_request);
    assert_eq!(r.key_share_group.as_deref(), Some("x25519"));
    assert!(o.events.iter().any(|e| e.contains("HelloRetryRequest")));
}

fn early_script(t: &Tls13, accepted: bool) -> Vec<Piece> {
    let mut early = t.sender(&t.early);
    let mut c_hs = t.sender(&t.c_hs);
    let mut s_hs = t.sender(&t.s_hs);
    let mut c_app = t.sender(&t.c_app);
    let mut s_app = t.sender(&t.s_app);
    let psk = ext(41, &[0, 0, 0, 0]);
    let mut v = vec![bytes(
        C,
        [
            t.client_hello(&[ext(42, &[]), psk]),
            early.app(b"GET /early HTTP/1.1\r\n\r\n"),
        ]
        .concat(),
    )];
    let mut sh_exts = tls13_exts();
    sh_exts.push(ext(41, &[0, 0]));
    let mut server = record(22, &server_hello([0x55; 32], &[7; 32], t.suite, &sh_exts));
    server.extend(s_hs.seal(
        ContentType::Handshake,
        &[t.encrypted_extensions(accepted), t.finished()].concat(),
    ));
    server.extend(s_app.app(b"HTTP/1.1 200 early\r\n\r\n"));
    v.push(bytes(S, server));
    let mut client = Vec::new();
    if accepted {
        client.extend(early.seal(ContentType::Handshake, &hs(5, &[])));
    }
    client.extend(c_hs.seal(ContentType::Handshake, &t.finished()));
    client.extend(c_app.app(b"after"));
    v.push(bytes(C, client));
    v
}

#[test]
fn tls13_early_data_accepted_is_decrypted_and_rejected_is_skipped() {
    let t = Tls13::new(0x1301, 0x0e);
    let keys = keystore(&t.keylog());
    let (o, layer) = run(&keys, &early_script(&t, true));
    assert_eq!(o.client, b"GET /early HTTP/1.1\r\n\r\nafter");
    assert_eq!(o.server, b"HTTP/1.1 200 early\r\n\r\n");
    assert!(o.diags.is_empty(), "{:?}", o.diags);
    let r = layer.record();
    assert!(r.resumed && r.resumption == Some("psk"));
    assert_eq!(r.early_data.accepted, Some(true));
    assert_eq!(r.early_data.decrypted_records, 2);

    let (o, layer) = run(&keys, &early_script(&t, false));
    assert_eq!(o.client, b"after", "rejected 0-RTT is not handed on");
    assert_eq!(o.server, b"HTTP/1.1 200 early\r\n\r\n");
    assert!(o.has(DiagnosticId::TlsEarlyDataSkipped));
    assert!(!o.has(DiagnosticId::TlsDecryptFailed), "{:?}", o.diags);
    let r = layer.record();
    assert_eq!(r.early_data.accepted, Some(false));
    assert_eq!(r.early_data.skipped_records, 1);
}

#[test]
fn tls13_gap_across_records_resyncs_by_trying_sequence_numbers() {
    let t = Tls13::new(0x1303, 0x47);
    let keys = keystore(&t.keylog());
    let msgs: Vec<Vec<u8>> = (0..12u8)
        .map(|i| vec![b'a' + i; 100 + usize::from(i)])
        .collect();
    let mut script = tls13_script(&t, &[], false);
    script.truncate(script.len() - 4);
    let mut s = t.sender(&t.s_app);
    s.seq = 2;
    let recs: Vec<Vec<u8>> = msgs.iter().map(|m| s.app(m)).collect();
    let stream = recs.concat();
    // Lose from the middle of record 3 to the middle of record 7.
    let start: usize = recs[..3].iter().map(Vec::len).sum::<usize>() + 20;
    let stop: usize = recs[..7].iter().map(Vec::len).sum::<usize>() + 30;
    script.push(bytes(S, stream[..start].to_vec()));
    script.push(Piece::Gap(S, (stop - start) as u64));
    script.push(bytes(S, stream[stop..].to_vec()));
    let (o, layer) = run(&keys, &script);
    let before: Vec<u8> = msgs[..3].concat();
    let after: Vec<u8> = msgs[8..].concat();
    assert_eq!(o.server, [before, after].concat());
    // The hole handed on is exactly the plaintext of the 5 lost records.
    let lost: u64 = msgs[3..8].iter().map(|m| m.len() as u64).sum();
    assert_eq!(o.gaps, vec![(S, lost)]);
    assert!(o.has(DiagnosticId::TlsResync));
    assert!(!o.has(DiagnosticId::TlsDecryptFailed), "{:?}", o.diags);
    assert!(layer.record().undecrypted_records.server >= 5);
}

#[test]
fn a_gap_inside_one_record_loses_exactly_that_record() {
    let t = Tls13::new(0x1301, 0x48);
    let keys = keystore(&t.keylog());
    let mut script = tls13_script(&t, &[], false);
    script.truncate(script.len() - 4);
    let mut s = t.sender(&t.s_app);
    s.seq = 2;
    let a = s.app(b"first");
    let b = s.app(&[b'b'; 200]);
    let c = s.app(b"third");
    script.push(bytes(S, [a, b[..50].to_vec()].concat()));
    script.push(Piece::Gap(S, 40));
    script.push(bytes(S, [b[90..].to_vec(), c].concat()));
    let (o, _) = run(&keys, &script);
    assert_eq!(o.server, b"firstthird");
    assert_eq!(o.gaps, vec![(S, 200)]);
    assert!(!o.has(DiagnosticId::TlsDecryptFailed), "{:?}", o.diags);
}

#[test]
fn hostile_record_length_and_huge_client_hello() {
    let keys = Arc::new(KeyStore::new(false));
    // A record length of 2^16-1 right after a real ClientHello: a framing error and a
    // resync, never a 64 KiB allocation or a panic.
    let t = Tls13::new(0x1301, 1);
    let mut junk = vec![0x17, 0x03, 0x03, 0xff, 0xff];
    junk.extend(vec![0x5a; 70_000]);
    let script = vec![
        bytes(C, [t.client_hello(&[]), junk].concat()),
        Piece::End(C, End::Fin),
    ];
    let (o, layer) = run(&keys, &script);
    assert!(o.has(DiagnosticId::TlsResync));
    assert_eq!(layer.record().sni.as_deref(), Some("example.test"));
    // A ClientHello with 10,000 extensions, cut into 1-byte pieces.
    let mut exts: Vec<Vec<u8>> = (0..10_000u16).map(|i| ext(2000 + i, &[])).collect();
    exts.push(sni("many.test"));
    let ch = client_hello([3; 32], &[], &[0x1301], &exts);
    // A handshake message may span records: 3 records of <= 16384 bytes.
    let mut stream = Vec::new();
    for part in ch.chunks(16384) {
        stream.extend(record(22, part));
    }
    let pieces: Vec<Piece> = stream.chunks(997).map(|c| bytes(C, c.to_vec())).collect();
    let (o, layer) = run(&keys, &pieces);
    assert!(o.diags.is_empty(), "{:?}", o.diags);
    assert_eq!(layer.record().sni.as_deref(), Some("many.test"));
}

#[test]
fn handshake_failure_with_a_plaintext_alert() {
    let t = Tls13::new(0x1301, 2);
    let keys = Arc::new(KeyStore::new(false));
    let script = vec![
        bytes(C, t.client_hello(&[])),
        bytes(S, record(21, &[2, 40])),
        Piece::End(S, End::Fin),
        Piece::End(C, End::Fin),
    ];
    let (o, layer) = run(&keys, &script);
    assert!(o.has(DiagnosticId::TlsAlert));
    assert!(
        o.diags
            .iter()
            .any(|(d, m)| *d == DiagnosticId::TlsAlert && m.contains("handshake_failure"))
    );
    let failed = o
        .diags
        .iter()
        .find(|(d, _)| *d == DiagnosticId::TlsHandshakeFailed)
        .expect("handshake failure");
    assert!(
        failed.1.contains("before any ServerHello") && failed.1.contains("handshake_failure"),
        "{}",
        failed.1
    );
    let r = layer.record();
    assert_eq!(r.handshake_complete, Some(false));
    assert_eq!(
        r.alerts[0].description.as_deref(),
        Some("handshake_failure")
    );
    assert_eq!(r.alerts[0].level.as_deref(), Some("fatal"));
}

// ---- synthetic TLS 1.2 ----------------------------------------------------------------

struct Tls12 {
    client_random: [u8; 32],
    server_random: [u8; 32],
    suite: u16,
    aead: Aead,
    hash: HashAlg,
    master: [u8; 48],
    session_id: Vec<u8>,
}

impl Tls12 {
    fn new(suite: u16, seed: u8) -> Tls12 {
        let (aead, hash) = match suite {
            0xc02f => (Aead::Aes128Gcm, HashAlg::Sha256),
            0xc030 => (Aead::Aes256Gcm, HashAlg::Sha384),
            _ => (Aead::Chacha20Poly1305, HashAlg::Sha256),
        };
        Tls12 {
            client_random: [seed; 32],
            server_random: [seed ^ 0xff; 32],
            suite,
            aead,
            hash,
            master: [seed.wrapping_add(7); 48],
            session_id: vec![seed; 32],
        }
    }
    fn keylog(&self) -> String {
        format!(
            "CLIENT_RANDOM {} {}\n",
            hexs(&self.client_random),
            hexs(&self.master)
        )
    }
    fn senders(&self) -> (Sender, Sender) {
        let (c, s) = tls12_key_block(
            self.aead,
            self.hash,
            &self.master,
            &self.client_random,
            &self.server_random,
        );
        let p = if self.aead == Aead::Chacha20Poly1305 {
            Protection::Tls12Chacha
        } else {
            Protection::Tls12Gcm
        };
        (
            Sender {
                keys: RecordKeys::new(self.aead, &c, p),
                seq: 0,
            },
            Sender {
                keys: RecordKeys::new(self.aead, &s, p),
                seq: 0,
            },
        )
    }
    /// A full handshake (ServerHello with a session id, a ticket) then data; `resume` makes
    /// it abbreviated: the client offers `session_id`/`ticket`, the server answers with CCS.
    fn script(
        &self,
        resume: Option<(&[u8], &[u8])>,
        ticket_to_issue: &[u8],
        msgs: &[(&[u8], &[u8])],
    ) -> Vec<Piece> {
        let (mut c, mut s) = self.senders();
        let ccs = record(20, &[1]);
        let fin = hs(20, &[0x77; 12]);
        let (offer_id, offer_ticket) = resume.unwrap_or((&[], &[]));
        let ch = client_hello(
            self.client_random,
            offer_id,
            &[self.suite],
            &[
                sni("twelve.test"),
                alpn(&["http/1.1"]),
                ext(35, offer_ticket),
            ],
        );
        let echo: &[u8] = if resume.is_some() {
            offer_id
        } else {
            &self.session_id
        };
        let sh = server_hello(
            self.server_random,
            echo,
            self.suite,
            &[alpn(&["http/1.1"]), ext(35, &[]), ext(23, &[])],
        );
        let mut nst_body = 7200u32.to_be_bytes().to_vec();
        nst_body.extend((ticket_to_issue.len() as u16).to_be_bytes());
        nst_body.extend(ticket_to_issue);
        let nst = hs(4, &nst_body);
        let mut v = vec![bytes(C, record(22, &ch))];
        if resume.is_some() {
            v.push(bytes(
                S,
                [
                    record(22, &[sh, nst].concat()),
                    ccs.clone(),
                    s.seal(ContentType::Handshake, &fin),
                ]
                .concat(),
            ));
            v.push(bytes(
                C,
                [ccs, c.seal(ContentType::Handshake, &fin)].concat(),
            ));
        } else {
            let flight = [sh, hs(11, &[0; 500]), hs(12, &[0; 100]), hs(14, &[])].concat();
            v.push(bytes(S, record(22, &flight)));
            v.push(bytes(
                C,
                [
                    record(22, &hs(16, &[0; 33])),
                    ccs.clone(),
                    c.seal(ContentType::Handshake, &fin),
                ]
                .concat(),
            ));
            v.push(bytes(
                S,
                [record(22, &nst), ccs, s.seal(ContentType::Handshake, &fin)].concat(),
            ));
        }
        for (a, b) in msgs {
            v.push(bytes(C, c.app(a)));
            v.push(bytes(S, s.app(b)));
        }
        v.push(bytes(C, c.seal(ContentType::Alert, &[1, 0])));
        v.push(Piece::End(C, End::Fin));
        v.push(Piece::End(S, End::Fin));
        v
    }
}

#[test]
fn tls12_every_aead_suite_and_prf_hash() {
    for suite in [0xc02f, 0xc030, 0xcca8] {
        let t = Tls12::new(suite, suite as u8);
        let keys = keystore(&t.keylog());
        let (o, layer) = run(
            &keys,
            &t.script(None, b"ticket-1", &[(b"hello", b"world"), (b"", b"again")]),
        );
        assert_eq!(o.client, b"hello", "{suite:#x}");
        assert_eq!(o.server, b"worldagain");
        assert_eq!(
            o.count(DiagnosticId::TlsNoCloseNotify),
            1,
            "the server sent none: {:?}",
            o.diags
        );
        let r = layer.record();
        assert_eq!(r.version.as_deref(), Some("TLSv1.2"));
        assert_eq!(
            r.alpn.as_deref(),
            Some("http/1.1"),
            "TLS 1.2 ALPN is in clear"
        );
        assert_eq!(r.handshake_complete, Some(true));
        assert!(r.close_notify.client && !r.close_notify.server);
        assert_eq!(r.keys_from, Some("client_random"));
        assert!(!r.resumed);
    }
}

#[test]
fn tls12_resumption_by_session_id_and_by_ticket_use_the_earlier_master_secret() {
    let full = Tls12::new(0xc030, 0x31);
    let keys = keystore(&full.keylog());
    let (o, _) = run(&keys, &full.script(None, b"the-ticket", &[(b"a", b"b")]));
    assert_eq!(o.client, b"a");
    // Session-id resumption: a new connection (new randoms, same master), no log line for it.
    let mut by_id = Tls12::new(0xc030, 0x32);
    by_id.master = full.master;
    let (o, layer) = run(
        &keys,
        &by_id.script(Some((&full.session_id, &[])), b"", &[(b"resumed", b"yes")]),
    );
    assert_eq!(o.client, b"resumed");
    assert_eq!(o.server, b"yes");
    let r = layer.record();
    assert!(r.resumed);
    assert_eq!(
        (r.resumption, r.keys_from),
        (Some("session_id"), Some("session_id"))
    );
    // Ticket resumption with an empty session id: the server's CCS right after its hello.
    let mut by_ticket = Tls12::new(0xc030, 0x33);
    by_ticket.master = full.master;
    let (o, layer) = run(
        &keys,
        &by_ticket.script(Some((&[], b"the-ticket")), b"", &[(b"via ticket", b"ok")]),
    );
    assert_eq!(o.client, b"via ticket", "{:?}", o.diags);
    let r = layer.record();
    assert_eq!(
        (r.resumption, r.keys_from),
        (Some("ticket"), Some("ticket"))
    );
    // Without the earlier full handshake in the capture there is no key.
    let fresh = keystore("");
    let (o, _) = run(
        &fresh,
        &by_ticket.script(Some((&[], b"the-ticket")), b"", &[(b"x", b"y")]),
    );
    assert!(o.client.is_empty() && o.has(DiagnosticId::TlsNoKey));
}

#[test]
fn tls12_without_keys_sees_finished_alerts_and_the_end() {
    let t = Tls12::new(0xc02f, 0x41);
    let keys = keystore(&Tls12::new(0xc02f, 0x99).keylog()); // a log for another connection
    let (o, layer) = run(&keys, &t.script(None, b"", &[(b"hello", b"world")]));
    assert!(o.client.is_empty() && o.server.is_empty());
    let no_key = o
        .diags
        .iter()
        .find(|(d, _)| *d == DiagnosticId::TlsNoKey)
        .unwrap();
    assert!(no_key.1.contains(&hexs(&t.client_random)), "{}", no_key.1);
    assert_eq!(
        o.count(DiagnosticId::TlsNoCloseNotify),
        1,
        "the server sent no alert record: {:?}",
        o.diags
    );
    let r = layer.record();
    assert_eq!(
        r.handshake_complete,
        Some(true),
        "both encrypted Finished records seen"
    );
    assert_eq!(r.alerts.len(), 1);
    assert!(r.alerts[0].encrypted && r.alerts[0].likely_close_notify == Some(true));
    let inf = r.inferred.unwrap();
    assert!(inf.close_notify.client && !inf.close_notify.server);
    assert_eq!(inf.last_application_length.server, Some(5));
}

#[test]
fn tls12_cbc_suite_is_reported_unsupported() {
    let mut t = Tls12::new(0xc02f, 0x51);
    t.suite = 0xc013;
    let keys = keystore(&t.keylog());
    let script = vec![
        bytes(
            C,
            record(22, &client_hello(t.client_random, &[], &[0xc013], &[])),
        ),
        bytes(
            S,
            record(22, &server_hello(t.server_random, &[], 0xc013, &[])),
        ),
        bytes(C, [record(20, &[1]), record(22, &[0; 64])].concat()),
    ];
    let (o, layer) = run(&keys, &script);
    assert_eq!(o.count(DiagnosticId::TlsUnsupportedCipher), 1);
    let r = layer.record();
    assert_eq!(
        r.cipher_suite.as_deref(),
        Some("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")
    );
    assert!(r.decrypt_error.unwrap().contains("not decrypted"));
}

// ---- properties -------------------------------------------------------------------------

/// Cuts one side's byte stream at the given points (the other side's pieces stay whole).
fn recut(script: &[Piece], side: Side, cuts: &[usize]) -> Vec<Piece> {
    let mut out = Vec::new();
    for p in script {
        match p {
            Piece::Bytes(s, b) if *s == side => {
                let mut points: Vec<usize> = cuts.iter().map(|c| c % (b.len() + 1)).collect();
                points.sort_unstable();
                points.dedup();
                let mut at = 0;
                for c in points {
                    out.push(bytes(side, b[at..c].to_vec()));
                    at = c;
                }
                out.push(bytes(side, b[at..].to_vec()));
            }
            other => out.push(other.clone()),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// However the TLS records are cut into chunks, the plaintext out is the same.
    #[test]
    fn chunking_never_changes_the_plaintext(
        suite in prop::sample::select(vec![0x1301u16, 0x1302, 0x1303]),
        cuts_c in prop::collection::vec(0usize..40_000, 0..6),
        cuts_s in prop::collection::vec(0usize..40_000, 0..6),
        sizes in prop::collection::vec(0usize..3000, 1..5),
    ) {
        let t = Tls13::new(suite, 0x60);
        let keys = keystore(&t.keylog());
        let payloads: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, n)| vec![i as u8 + 1; *n]).collect();
        let msgs: Vec<(&[u8], &[u8])> = payloads.iter().map(|p| (&p[..], &p[..p.len() / 2])).collect();
        let script = tls13_script(&t, &msgs, suite == 0x1302);
        let (whole, _) = run(&keys, &script);
        let cut = recut(&recut(&script, C, &cuts_c), S, &cuts_s);
        let (o, _) = run(&keys, &cut);
        prop_assert_eq!(&o.client, &whole.client);
        prop_assert_eq!(&o.server, &whole.server);
        prop_assert_eq!(o.client, payloads.concat());
        prop_assert!(o.diags.is_empty());
    }

    /// Random bytes after a ClientHello: never a panic, never plaintext.
    #[test]
    fn garbage_after_the_hello_is_survived(junk in prop::collection::vec(any::<u8>(), 0..3000), seed in any::<u8>()) {
        let t = Tls13::new(0x1301, seed);
        let keys = keystore(&t.keylog());
        let script = vec![bytes(C, t.client_hello(&[])), bytes(S, junk.clone()), bytes(C, junk), Piece::End(C, End::Rst), Piece::End(S, End::Fin)];
        let (o, layer) = run(&keys, &script);
        prop_assert!(o.client.is_empty() && o.server.is_empty());
        let _ = layer.record();
    }
}

#[test]
fn tls12_key_block_matches_schedule_helpers() {
    // The senders above and the layer share `tls12_key_block`; check it is not trivially
    // symmetric (client and server keys differ) so a swapped direction would be caught.
    let t = Tls12::new(0xc02f, 5);
    let (c, s) = tls12_key_block(
        t.aead,
        t.hash,
        &t.master,
        &t.client_random,
        &t.server_random,
    );
    assert_ne!(c.key(), s.key());
    let _ = schedule::MAX_SECRET;
}

/// The `tls` record (decrypted, without keys, TLS 1.2 with alerts) and a key-log summary
/// validate against `$defs/tls` and `$defs/key_log` of the published schema.
#[test]
fn tls_records_match_the_published_schema() {
    let mut schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../schema/report.v1.json")).unwrap();
    let defs = schema["$defs"].take();
    let check = |def: &str, value: serde_json::Value| {
        let root = serde_json::json!({"$defs": defs, "$ref": format!("#/$defs/{def}")});
        let v = jsonschema::validator_for(&root).unwrap();
        let errors: Vec<String> = v
            .iter_errors(&value)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{def}: {errors:?}\n{value:#}");
    };
    let keys = keystore(&rfc8448_keylog());
    check(
        "tls",
        serde_json::to_value(run(&keys, &rfc8448_script()).1.record()).unwrap(),
    );
    let none = Arc::new(KeyStore::new(false));
    check(
        "tls",
        serde_json::to_value(run(&none, &rfc8448_script()).1.record()).unwrap(),
    );
    let t = Tls12::new(0xc02f, 0x71);
    check(
        "tls",
        serde_json::to_value(run(&none, &t.script(None, b"", &[(b"a", b"b")])).1.record()).unwrap(),
    );
    let summary = KeyStore::new(false).add_text("x.log", b"junk line\n");
    check("key_log", serde_json::to_value(summary).unwrap());
}
