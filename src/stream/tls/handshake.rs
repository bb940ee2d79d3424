//! TLS handshake messages (RFC 8446 §4, RFC 5246 §7.4): a per-direction joiner that rebuilds
//! messages from record fragments (a message may span records; a record may hold several),
//! and nom parsers for the messages whose contents the analysis needs. Everything else is
//! skipped by length.

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u24, be_u32};

/// Handshake message types (RFC 8446 §4, RFC 5246 §7.4).
pub mod kind {
    /// hello_request (TLS 1.2 renegotiation).
    pub const HELLO_REQUEST: u8 = 0;
    /// client_hello.
    pub const CLIENT_HELLO: u8 = 1;
    /// server_hello (also HelloRetryRequest in TLS 1.3).
    pub const SERVER_HELLO: u8 = 2;
    /// new_session_ticket.
    pub const NEW_SESSION_TICKET: u8 = 4;
    /// end_of_early_data.
    pub const END_OF_EARLY_DATA: u8 = 5;
    /// encrypted_extensions.
    pub const ENCRYPTED_EXTENSIONS: u8 = 8;
    /// certificate.
    pub const CERTIFICATE: u8 = 11;
    /// server_key_exchange.
    pub const SERVER_KEY_EXCHANGE: u8 = 12;
    /// certificate_request.
    pub const CERTIFICATE_REQUEST: u8 = 13;
    /// server_hello_done.
    pub const SERVER_HELLO_DONE: u8 = 14;
    /// certificate_verify.
    pub const CERTIFICATE_VERIFY: u8 = 15;
    /// client_key_exchange.
    pub const CLIENT_KEY_EXCHANGE: u8 = 16;
    /// finished.
    pub const FINISHED: u8 = 20;
    /// key_update.
    pub const KEY_UPDATE: u8 = 24;
    /// message_hash (synthetic, never on the wire).
    pub const MESSAGE_HASH: u8 = 254;
}

/// Name of a handshake message type, for diagnostics.
pub fn kind_name(t: u8) -> String {
    let n = match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        22 => "CertificateStatus",
        24 => "KeyUpdate",
        n => return format!("handshake type {n}"),
    };
    n.to_string()
}

/// Message types whose bodies are parsed (and so held whole); the others are skipped by length
/// without being held, whatever their size (certificate chains can be large).
fn is_parsed(t: u8) -> bool {
    matches!(
        t,
        kind::CLIENT_HELLO
            | kind::SERVER_HELLO
            | kind::NEW_SESSION_TICKET
            | kind::ENCRYPTED_EXTENSIONS
            | kind::FINISHED
            | kind::KEY_UPDATE
            | kind::END_OF_EARLY_DATA
            | kind::HELLO_REQUEST
            | kind::SERVER_HELLO_DONE
    )
}

/// Largest message body held for parsing. A ClientHello is ~2 KB (with post-quantum key
/// shares) and at most a few tens of KB with many PSK identities; beyond this it is reported
/// and skipped, so a hostile length cannot make the joiner hold 16 MiB.
pub const MAX_PARSED_MESSAGE: usize = 1 << 17;

/// What the joiner found.
#[derive(Debug, PartialEq, Eq)]
pub enum JoinerEvent<'a> {
    /// A whole message whose body was kept (a parsed type).
    Message {
        /// Handshake type.
        msg_type: u8,
        /// The body (without the 4-byte header).
        body: &'a [u8],
    },
    /// A message that was skipped by length (not parsed, or over the cap). Emitted when its
    /// last byte arrived.
    Skipped {
        /// Handshake type.
        msg_type: u8,
        /// Body length.
        len: usize,
        /// True when it was a parsed type over [`MAX_PARSED_MESSAGE`].
        oversized: bool,
    },
}

/// One direction's handshake joiner.
#[derive(Debug, Default)]
pub struct HandshakeJoiner {
    /// The header (up to 4 bytes) then, for parsed types, the body so far.
    held: Vec<u8>,
    /// Skipping a body: (type, total length, bytes still to skip, oversized).
    skipping: Option<(u8, usize, usize, bool)>,
}

impl HandshakeJoiner {
    /// A joiner at a message boundary.
    pub fn new() -> Self {
        HandshakeJoiner::default()
    }

    /// Is a message partly received? (A key change with a partial message is a protocol
    /// violation, RFC 8446 §5.1.)
    pub fn in_message(&self) -> bool {
        !self.held.is_empty() || self.skipping.is_some()
    }

    /// Forget a partial message (after records were lost).
    pub fn reset(&mut self) {
        self.held.clear();
        self.skipping = None;
    }

    /// The plaintext of the next handshake record.
    pub fn push<F: FnMut(JoinerEvent<'_>)>(&mut self, mut data: &[u8], out: &mut F) {
        while !data.is_empty() {
            if let Some((t, len, left, oversized)) = self.skipping {
                let take = left.min(data.len());
                data = &data[take..];
                if take == left {
                    self.skipping = None;
                    out(JoinerEvent::Skipped {
                        msg_type: t,
                        len,
                        oversized,
                    });
                } else {
                    self.skipping = Some((t, len, left - take, oversized));
                }
                continue;
            }
            if self.held.is_empty() && data.len() >= 4 {
                // Fast path: whole messages straight from the record.
                let t = data[0];
                let len = be24(&data[1..4]);
                if is_parsed(t) && len <= MAX_PARSED_MESSAGE && data.len() >= 4 + len {
                    out(JoinerEvent::Message {
                        msg_type: t,
                        body: &data[4..4 + len],
                    });
                    data = &data[4 + len..];
                    continue;
                }
            }
            if self.held.len() < 4 {
                let take = (4 - self.held.len()).min(data.len());
                self.held.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.held.len() < 4 {
                    return;
                }
                let t = self.held[0];
                let len = be24(&self.held[1..4]);
                let parsed = is_parsed(t) && len <= MAX_PARSED_MESSAGE;
                if !parsed {
                    self.held.clear();
                    let oversized = is_parsed(t);
                    if len == 0 {
                        out(JoinerEvent::Skipped {
                            msg_type: t,
                            len,
                            oversized,
                        });
                    } else {
                        self.skipping = Some((t, len, len, oversized));
                    }
                    continue;
                }
            }
            let len = be24(&self.held[1..4]);
            let take = (4 + len - self.held.len()).min(data.len());
            self.held.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.held.len() == 4 + len {
                out(JoinerEvent::Message {
                    msg_type: self.held[0],
                    body: &self.held[4..],
                });
                self.held.clear();
            }
        }
    }
}

fn be24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

/// The HelloRetryRequest random: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// Extension numbers used here (IANA TLS ExtensionType Values).
mod ext {
    pub const SERVER_NAME: u16 = 0;
    pub const ALPN: u16 = 16;
    pub const EXTENDED_MASTER_SECRET: u16 = 23;
    pub const SESSION_TICKET: u16 = 35;
    pub const PRE_SHARED_KEY: u16 = 41;
    pub const EARLY_DATA: u16 = 42;
    pub const SUPPORTED_VERSIONS: u16 = 43;
    pub const KEY_SHARE: u16 = 51;
    pub const ECH: u16 = 0xfe0d;
}

/// Caps on what is kept from a hello: a hostile hello with thousands of entries is parsed in
/// linear time and kept to these many.
const MAX_LIST: usize = 64;
/// Longest ALPN protocol or host name kept (both are at most 255 on the wire for ALPN; SNI
/// host names are at most 253 characters by DNS rules).
const MAX_NAME: usize = 255;
/// Largest session ticket kept for resumption lookups (real tickets are a few hundred bytes).
pub const MAX_TICKET: usize = 16 * 1024;

/// Why a message did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

type PResult<'a, T> = IResult<&'a [u8], T>;

fn vec8(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, n) = be_u8(i)?;
    take(n).parse(i)
}

fn vec16(i: &[u8]) -> PResult<'_, &[u8]> {
    let (i, n) = be_u16(i)?;
    take(n).parse(i)
}

/// Calls `f(type, data)` for each extension of a `<0..2^16-1>` extension block. Returns the
/// number of extensions, or an error when the block is cut.
fn for_each_extension<'a>(
    mut block: &'a [u8],
    mut f: impl FnMut(u16, &'a [u8]),
) -> Result<usize, Malformed> {
    let mut n = 0;
    while !block.is_empty() {
        let (rest, (t, data)) = (be_u16, vec16)
            .parse(block)
            .map_err(|_: nom::Err<nom::error::Error<&[u8]>>| Malformed("extension cut short"))?;
        f(t, data);
        n += 1;
        block = rest;
    }
    Ok(n)
}

fn name(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_NAME)];
    String::from_utf8_lossy(cut).into_owned()
}

fn parse_alpn_list(data: &[u8], out: &mut Vec<String>) {
    let Ok((_, mut list)) = vec16(data) else {
        return;
    };
    while let Ok((rest, proto)) = vec8(list) {
        if out.len() < MAX_LIST {
            out.push(name(proto));
        }
        list = rest;
    }
}

fn parse_sni(data: &[u8]) -> Option<String> {
    let (_, mut list) = vec16(data).ok()?;
    while let Ok((rest, (t, host))) = (be_u8, vec16).parse(list) {
        if t == 0 {
            return Some(name(host));
        }
        list = rest;
    }
    None
}

/// The facts of a ClientHello.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version`.
    pub legacy_version: u16,
    /// The 32-byte random: the key-log lookup key.
    pub random: [u8; 32],
    /// `legacy_session_id` (0..32 bytes).
    pub session_id: Vec<u8>,
    /// Offered suites (first [`MAX_LIST`]).
    pub cipher_suites: Vec<u16>,
    /// server_name host name.
    pub sni: Option<String>,
    /// Offered ALPN protocols.
    pub alpn: Vec<String>,
    /// supported_versions (first [`MAX_LIST`]).
    pub supported_versions: Vec<u16>,
    /// key_share groups offered.
    pub key_share_groups: Vec<u16>,
    /// pre_shared_key offered (TLS 1.3 resumption attempt).
    pub psk_offered: bool,
    /// early_data offered (0-RTT).
    pub early_data: bool,
    /// session_ticket extension present; its contents (empty = asking for a ticket).
    pub session_ticket: Option<Vec<u8>>,
    /// encrypted_client_hello present (real or GREASE).
    pub ech: bool,
    /// Extensions in the message.
    pub extension_count: usize,
}

/// Parses a ClientHello body.
pub fn parse_client_hello(body: &[u8]) -> Result<ClientHello, Malformed> {
    let cut = |_| Malformed("ClientHello cut short");
    let (i, (legacy_version, random, session_id, suites, _compression)) =
        (be_u16, take(32usize), vec8, vec16, vec8)
            .parse(body)
            .map_err(cut)?;
    if session_id.len() > 32 {
        return Err(Malformed("ClientHello session id longer than 32 bytes"));
    }
    let mut hello = ClientHello {
        legacy_version,
        session_id: session_id.to_vec(),
        ..ClientHello::default()
    };
    hello.random.copy_from_slice(random);
    hello.cipher_suites = suites
        .chunks_exact(2)
        .take(MAX_LIST)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    if i.is_empty() {
        return Ok(hello); // no extensions (allowed before TLS 1.3)
    }
    let (_, block) = vec16(i).map_err(cut)?;
    let mut seen_sni = false;
    hello.extension_count = for_each_extension(block, |t, data| match t {
        ext::SERVER_NAME if !seen_sni => {
            seen_sni = true;
            hello.sni = parse_sni(data);
        }
        ext::ALPN if hello.alpn.is_empty() => parse_alpn_list(data, &mut hello.alpn),
        ext::SUPPORTED_VERSIONS if hello.supported_versions.is_empty() => {
            if let Ok((_, list)) = vec8(data) {
                hello.supported_versions = list
                    .chunks_exact(2)
                    .take(MAX_LIST)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
            }
        }
        ext::KEY_SHARE if hello.key_share_groups.is_empty() => {
            if let Ok((_, mut list)) = vec16(data) {
                while let Ok((rest, (group, _key))) = (be_u16, vec16).parse(list) {
                    if hello.key_share_groups.len() < MAX_LIST {
                        hello.key_share_groups.push(group);
                    }
                    list = rest;
                }
            }
        }
        ext::PRE_SHARED_KEY => hello.psk_offered = true,
        ext::EARLY_DATA => hello.early_data = true,
        ext::SESSION_TICKET if hello.session_ticket.is_none() => {
            hello.session_ticket = Some(data[..data.len().min(MAX_TICKET)].to_vec());
        }
        ext::ECH => hello.ech = true,
        _ => {}
    })?;
    Ok(hello)
}

/// The facts of a ServerHello (or HelloRetryRequest).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// `legacy_version`.
    pub legacy_version: u16,
    /// The server random.
    pub random: [u8; 32],
    /// `legacy_session_id_echo` / TLS 1.2 session id.
    pub session_id: Vec<u8>,
    /// The chosen suite.
    pub cipher_suite: u16,
    /// supported_versions selection (TLS 1.3).
    pub selected_version: Option<u16>,
    /// key_share group (the group asked for, in a HelloRetryRequest).
    pub key_share_group: Option<u16>,
    /// pre_shared_key selected identity (TLS 1.3 resumption accepted).
    pub psk_selected: Option<u16>,
    /// ALPN selected (TLS 1.2: in the clear ServerHello).
    pub alpn: Option<String>,
    /// extended_master_secret (TLS 1.2).
    pub extended_master_secret: bool,
    /// session_ticket extension (TLS 1.2: a NewSessionTicket will follow).
    pub session_ticket: bool,
    /// The random is the HelloRetryRequest value.
    pub is_hrr: bool,
}

impl ServerHello {
    /// The negotiated version: supported_versions when present, else legacy_version.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }
}

/// Parses a ServerHello body.
pub fn parse_server_hello(body: &[u8]) -> Result<ServerHello, Malformed> {
    let cut = |_| Malformed("ServerHello cut short");
    let (i, (legacy_version, random, session_id, cipher_suite, _compression)) =
        (be_u16, take(32usize), vec8, be_u16, be_u8)
            .parse(body)
            .map_err(cut)?;
    if session_id.len() > 32 {
        return Err(Malformed("ServerHello session id longer than 32 bytes"));
    }
    let mut hello = ServerHello {
        legacy_version,
        session_id: session_id.to_vec(),
        cipher_suite,
        ..ServerHello::default()
    };
    hello.random.copy_from_slice(random);
    hello.is_hrr = hello.random == HRR_RANDOM;
    if i.is_empty() {
        return Ok(hello);
    }
    let (_, block) = vec16(i).map_err(cut)?;
    for_each_extension(block, |t, data| match t {
        ext::SUPPORTED_VERSIONS if data.len() == 2 => {
            hello.selected_version = Some(u16::from_be_bytes([data[0], data[1]]));
        }
        // HRR: key_share is just the group; ServerHello: group + key.
        ext::KEY_SHARE if data.len() >= 2 => {
            hello.key_share_group = Some(u16::from_be_bytes([data[0], data[1]]));
        }
        ext::PRE_SHARED_KEY if data.len() == 2 => {
            hello.psk_selected = Some(u16::from_be_bytes([data[0], data[1]]));
        }
        ext::ALPN => {
            let mut list = Vec::new();
            parse_alpn_list(data, &mut list);
            hello.alpn = list.into_iter().next();
        }
        ext::EXTENDED_MASTER_SECRET => hello.extended_master_secret = true,
        ext::SESSION_TICKET => hello.session_ticket = true,
        _ => {}
    })?;
    Ok(hello)
}

/// The facts of EncryptedExtensions (TLS 1.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EncryptedExtensions {
    /// ALPN selected.
    pub alpn: Option<String>,
    /// early_data accepted.
    pub early_data: bool,
}

/// Parses an EncryptedExtensions body.
pub fn parse_encrypted_extensions(body: &[u8]) -> Result<EncryptedExtensions, Malformed> {
    let (_, block) = vec16(body).map_err(|_| Malformed("EncryptedExtensions cut short"))?;
    let mut ee = EncryptedExtensions::default();
    for_each_extension(block, |t, data| match t {
        ext::ALPN => {
            let mut list = Vec::new();
            parse_alpn_list(data, &mut list);
            ee.alpn = list.into_iter().next();
        }
        ext::EARLY_DATA => ee.early_data = true,
        _ => {}
    })?;
    Ok(ee)
}

/// The ticket of a TLS 1.2 NewSessionTicket (RFC 5077 §3.3), capped at [`MAX_TICKET`].
pub fn parse_tls12_ticket(body: &[u8]) -> Result<&[u8], Malformed> {
    let (_, (_lifetime, ticket)) = (be_u32, vec16)
        .parse(body)
        .map_err(|_: nom::Err<nom::error::Error<&[u8]>>| Malformed("NewSessionTicket cut short"))?;
    Ok(&ticket[..ticket.len().min(MAX_TICKET)])
}

/// `request_update` of a KeyUpdate (RFC 8446 §4.6.3): true = update_requested.
pub fn parse_key_update(body: &[u8]) -> Result<bool, Malformed> {
    match body {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(Malformed("KeyUpdate is not one byte of 0 or 1")),
    }
}

/// A handshake message header's length field, for tests and fuzzing.
pub fn parse_message_header(i: &[u8]) -> PResult<'_, (u8, u32)> {
    (be_u8, be_u24).parse(i)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8448 §3 ClientHello (with its 4-byte header).
    pub(crate) const RFC8448_CLIENT_HELLO: &str = "010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001";
    /// RFC 8448 §3 ServerHello (with its header).
    pub(crate) const RFC8448_SERVER_HELLO: &str = "020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304";

    fn messages(pieces: &[&[u8]]) -> Vec<(u8, Vec<u8>)> {
        let mut j = HandshakeJoiner::new();
        let mut out = Vec::new();
        for p in pieces {
            j.push(p, &mut |e| match e {
                JoinerEvent::Message { msg_type, body } => out.push((msg_type, body.to_vec())),
                JoinerEvent::Skipped { msg_type, len, .. } => {
                    out.push((msg_type, vec![0xee; len.min(4)]))
                }
            });
        }
        out
    }

    #[test]
    fn rfc8448_hellos() {
        let ch = hex(RFC8448_CLIENT_HELLO);
        let msgs = messages(&[&ch]);
        assert_eq!(msgs.len(), 1);
        let hello = parse_client_hello(&msgs[0].1).unwrap();
        assert_eq!(hello.random[..4], [0xcb, 0x34, 0xec, 0xb1]);
        assert_eq!(hello.sni.as_deref(), Some("server"));
        assert_eq!(hello.cipher_suites, vec![0x1301, 0x1303, 0x1302]);
        assert_eq!(hello.supported_versions, vec![0x0304]);
        assert_eq!(hello.key_share_groups, vec![0x001d]);
        assert!(!hello.psk_offered && !hello.early_data);
        assert_eq!(hello.session_ticket, Some(vec![]));
        let sh = hex(RFC8448_SERVER_HELLO);
        let hello = parse_server_hello(&sh[4..]).unwrap();
        assert_eq!(hello.cipher_suite, 0x1301);
        assert_eq!(hello.version(), 0x0304);
        assert_eq!(hello.key_share_group, Some(0x001d));
        assert!(!hello.is_hrr);
    }

    #[test]
    fn messages_spanning_records_and_several_per_record_at_every_split() {
        let ch = hex(RFC8448_CLIENT_HELLO);
        let mut stream = ch.clone();
        stream.extend(hex("0b000003aabbcc")); // a skipped Certificate
        stream.extend(hex("14000004deadbeef")); // Finished
        let whole = messages(&[&stream]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[1], (11, vec![0xee; 3]));
        assert_eq!(whole[2], (20, hex("deadbeef")));
        for a in 0..stream.len() {
            for b in [a, (a + 7).min(stream.len()), stream.len()] {
                let got = messages(&[&stream[..a], &stream[a..b], &stream[b..]]);
                assert_eq!(got, whole, "cuts {a} {b}");
            }
        }
    }

    #[test]
    fn a_huge_declared_message_is_skipped_not_held() {
        let mut j = HandshakeJoiner::new();
        let mut events = Vec::new();
        // A ClientHello claiming 16 MiB.
        j.push(&[1, 0xff, 0xff, 0xff], &mut |e| {
            events.push(format!("{e:?}"))
        });
        let chunk = vec![0u8; 1 << 16];
        for _ in 0..256 {
            j.push(&chunk, &mut |e| events.push(format!("{e:?}")));
            assert!(j.held.len() <= 4);
        }
        assert_eq!(events.len(), 1);
        assert!(events[0].contains("oversized: true"));
    }

    #[test]
    fn a_client_hello_with_ten_thousand_extensions_parses_with_capped_lists() {
        let mut exts = Vec::new();
        for i in 0..10_000u16 {
            // Unknown extension types, plus a few hundred ALPN extensions: the first counts.
            if i % 50 == 0 {
                exts.extend([0, 16, 0, 5, 0, 3, 2, b'h', b'2']);
            } else {
                exts.extend((1000 + i).to_be_bytes());
                exts.extend([0, 0]);
            }
        }
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0);
        body.extend([0, 2, 0x13, 0x01, 1, 0]);
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(&exts);
        let hello = parse_client_hello(&body).unwrap();
        assert_eq!(hello.extension_count, 10_000);
        assert_eq!(hello.alpn, vec!["h2".to_string()]);
        // Cut anywhere: an error or a partial result, never a panic.
        for cut in (0..body.len()).step_by(997) {
            let _ = parse_client_hello(&body[..cut]);
        }
    }

    #[test]
    fn hello_retry_request_is_recognised() {
        let mut body = vec![3, 3];
        body.extend(HRR_RANDOM);
        body.extend([0, 0x13, 0x02, 0]);
        let exts = [0, 43, 0, 2, 3, 4, 0, 51, 0, 2, 0, 0x18];
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let hello = parse_server_hello(&body).unwrap();
        assert!(hello.is_hrr);
        assert_eq!(hello.key_share_group, Some(0x18));
        assert_eq!(hello.version(), 0x0304);
    }

    #[test]
    fn small_messages() {
        assert_eq!(parse_key_update(&[1]), Ok(true));
        assert!(parse_key_update(&[2]).is_err());
        let nst = hex("0000012c0004a1b2c3d4");
        assert_eq!(parse_tls12_ticket(&nst).unwrap(), &hex("a1b2c3d4")[..]);
        // A cut ALPN list is ignored, a cut extension block is an error.
        let ee = hex("000c00100008000605687474");
        assert!(parse_encrypted_extensions(&ee).is_err());
        // A well-formed one: ALPN "http1" and early_data.
        let ee = hex("0010 0010 0008 0006 05 6874747031 002a 0000");
        let ee = parse_encrypted_extensions(&ee).unwrap();
        assert_eq!(ee.alpn.as_deref(), Some("http1"));
        assert!(ee.early_data);
    }
}
