//! Record protection removed with ring's AEADs: the TLS 1.3 nonce and AAD rules (RFC 8446
//! §5.2, §5.3) and TLS 1.2's (RFC 5246 §6.2.3.3, RFC 5288 §3 for GCM, RFC 7905 §2 for
//! ChaCha20-Poly1305). A record whose tag fails yields no plaintext at all.

use ring::aead;

use super::record::{ContentType, HEADER_LEN, Header};
use super::schedule::TrafficKeys;
use super::suite::Aead;

/// Bytes of every AEAD tag used here.
pub const TAG_LEN: usize = 16;
/// The TLS 1.2 GCM explicit nonce carried in each record.
pub const EXPLICIT_NONCE_LEN: usize = 8;

/// How the nonce and AAD are built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// TLS 1.3: nonce = iv ^ seq, AAD = the record header, inner content type at the end.
    Tls13,
    /// TLS 1.2 AES-GCM: nonce = salt || explicit nonce, AAD = seq || type || version || length.
    Tls12Gcm,
    /// TLS 1.2 ChaCha20-Poly1305: nonce = iv ^ seq, AAD as for GCM.
    Tls12Chacha,
}

/// Why a record yielded no plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than the tag (and explicit nonce).
    TooShort,
    /// The tag did not verify: wrong key, wrong sequence number, or damaged bytes.
    BadTag,
    /// TLS 1.3: the plaintext was all zeros (no inner content type; RFC 8446 §5.4).
    NoContentType,
}

/// A record's real content type and where its plaintext is: bytes `start..start + len` of the
/// buffer that was opened ([`RecordKeys::open_in_place`]) or of the scratch buffer given to
/// [`RecordKeys::open_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// TLS 1.3: the inner type; TLS 1.2: the record's type.
    pub content_type: ContentType,
    /// Where the plaintext starts (TLS 1.2 GCM: after the explicit nonce).
    pub start: usize,
    /// Plaintext bytes (padding removed).
    pub len: usize,
}

impl Opened {
    /// The plaintext's range in the opened buffer.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start..self.start + self.len
    }
}

/// One direction's keys and record sequence number.
pub struct RecordKeys {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    protection: Protection,
    /// Sequence number of the next record (RFC 8446 §5.3: starts at 0 for each key, and is
    /// advanced here only after a record authenticates).
    pub seq: u64,
}

impl std::fmt::Debug for RecordKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordKeys")
            .field("protection", &self.protection)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

fn ring_alg(aead: Aead) -> &'static aead::Algorithm {
    match aead {
        Aead::Aes128Gcm => &aead::AES_128_GCM,
        Aead::Aes256Gcm => &aead::AES_256_GCM,
        Aead::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
    }
}

/// The per-record nonce of TLS 1.3 and TLS 1.2 ChaCha20: the IV XOR the 64-bit sequence
/// number padded on the left to 12 bytes (RFC 8446 §5.3).
pub fn xor_nonce(iv: &[u8; 12], seq: u64) -> [u8; 12] {
    let mut nonce = *iv;
    for (n, s) in nonce[4..].iter_mut().zip(seq.to_be_bytes()) {
        *n ^= s;
    }
    nonce
}

/// The TLS 1.2 AEAD additional data: `seq_num || type || version || length` of the plaintext
/// (RFC 5246 §6.2.3.3).
pub fn tls12_aad(seq: u64, content_type: u8, version: u16, plaintext_len: u16) -> [u8; 13] {
    let mut aad = [0u8; 13];
    aad[..8].copy_from_slice(&seq.to_be_bytes());
    aad[8] = content_type;
    aad[9..11].copy_from_slice(&version.to_be_bytes());
    aad[11..].copy_from_slice(&plaintext_len.to_be_bytes());
    aad
}

impl RecordKeys {
    /// Keys for one direction, sequence number 0.
    pub fn new(aead: Aead, keys: &TrafficKeys, protection: Protection) -> RecordKeys {
        let unbound = aead::UnboundKey::new(ring_alg(aead), keys.key())
            .expect("bug: key length matches the AEAD");
        RecordKeys {
            key: aead::LessSafeKey::new(unbound),
            iv: keys.iv,
            protection,
            seq: 0,
        }
    }

    /// How nonces are built.
    pub fn protection(&self) -> Protection {
        self.protection
    }

    /// Bytes a record adds around its plaintext (explicit nonce, tag, TLS 1.3 inner type):
    /// the smallest fragment that decrypts.
    pub fn overhead(&self) -> usize {
        match self.protection {
            Protection::Tls13 => TAG_LEN + 1,
            Protection::Tls12Gcm => TAG_LEN + EXPLICIT_NONCE_LEN,
            Protection::Tls12Chacha => TAG_LEN,
        }
    }

    /// TLS 1.2 GCM: the explicit nonce of a fragment read as a number. OpenSSL, BoringSSL,
    /// Go and NSS send the sequence number there, which tells how many records a gap took.
    pub fn explicit_nonce(&self, fragment: &[u8]) -> Option<u64> {
        (self.protection == Protection::Tls12Gcm && fragment.len() >= EXPLICIT_NONCE_LEN).then(
            || u64::from_be_bytes(fragment[..EXPLICIT_NONCE_LEN].try_into().expect("8 bytes")),
        )
    }

    /// Decrypts `fragment` as record number `seq` into `scratch` (reused between records;
    /// the plaintext is `scratch[opened.range()]`), leaving `fragment` as it was, so that it
    /// can be tried again at another sequence number. Does not touch `self.seq`: the caller
    /// advances it when this succeeds. On failure `scratch` holds no plaintext.
    pub fn open_at(
        &self,
        seq: u64,
        header: &Header,
        fragment: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<Opened, OpenError> {
        scratch.clear();
        scratch.extend_from_slice(fragment);
        let opened = self.open_in_place(seq, header, scratch);
        if opened.is_err() {
            scratch.clear();
        }
        opened
    }

    /// Decrypts the record fragment `buf` (explicit nonce, ciphertext, tag) as record number
    /// `seq` where it lies: the plaintext is `buf[opened.range()]`. On failure `buf` holds no
    /// plaintext (ring zeroes what it decrypted) and no longer the ciphertext either: only for
    /// a record that will not be tried again.
    pub fn open_in_place(
        &self,
        seq: u64,
        header: &Header,
        buf: &mut [u8],
    ) -> Result<Opened, OpenError> {
        match self.protection {
            Protection::Tls13 => {
                if buf.len() < TAG_LEN + 1 {
                    return Err(OpenError::TooShort);
                }
                let nonce = aead::Nonce::assume_unique_for_key(xor_nonce(&self.iv, seq));
                let aad: [u8; HEADER_LEN] = header.bytes();
                // On a tag mismatch ring zeroes the bytes it decrypted: nothing unauthenticated
                // is left behind.
                let plain = self
                    .key
                    .open_in_place(nonce, aead::Aad::from(aad), buf)
                    .map_err(|_| OpenError::BadTag)?;
                // TLSInnerPlaintext = content || type || zeros (RFC 8446 §5.4).
                let Some(last) = plain.iter().rposition(|&b| b != 0) else {
                    return Err(OpenError::NoContentType);
                };
                Ok(Opened {
                    content_type: ContentType::from_byte(plain[last]),
                    start: 0,
                    len: last,
                })
            }
            Protection::Tls12Gcm | Protection::Tls12Chacha => {
                let explicit = if self.protection == Protection::Tls12Gcm {
                    EXPLICIT_NONCE_LEN
                } else {
                    0
                };
                if buf.len() < TAG_LEN + explicit {
                    return Err(OpenError::TooShort);
                }
                let nonce = if explicit > 0 {
                    let mut n = self.iv;
                    n[4..].copy_from_slice(&buf[..EXPLICIT_NONCE_LEN]);
                    n
                } else {
                    xor_nonce(&self.iv, seq)
                };
                let plain_len = (buf.len() - explicit - TAG_LEN) as u16;
                let aad = tls12_aad(seq, header.content_type.byte(), header.version, plain_len);
                let plain = self
                    .key
                    .open_in_place(
                        aead::Nonce::assume_unique_for_key(nonce),
                        aead::Aad::from(aad),
                        &mut buf[explicit..],
                    )
                    .map_err(|_| OpenError::BadTag)?;
                Ok(Opened {
                    content_type: header.content_type,
                    start: explicit,
                    len: plain.len(),
                })
            }
        }
    }

    /// Test and benchmark helper: protects `plaintext` as record `seq` the way a sender does,
    /// returning the whole record (header included).
    pub fn seal_record(&self, seq: u64, content_type: ContentType, plaintext: &[u8]) -> Vec<u8> {
        let mut body = Vec::with_capacity(plaintext.len() + 32);
        match self.protection {
            Protection::Tls13 => {
                body.extend_from_slice(plaintext);
                body.push(content_type.byte());
                let len = (body.len() + TAG_LEN) as u16;
                let header = Header {
                    content_type: ContentType::ApplicationData,
                    version: 0x0303,
                    length: len,
                };
                let nonce = aead::Nonce::assume_unique_for_key(xor_nonce(&self.iv, seq));
                self.key
                    .seal_in_place_append_tag(nonce, aead::Aad::from(header.bytes()), &mut body)
                    .expect("bug: record within AEAD limits");
                let mut rec = header.bytes().to_vec();
                rec.extend_from_slice(&body);
                rec
            }
            Protection::Tls12Gcm | Protection::Tls12Chacha => {
                let aad = tls12_aad(seq, content_type.byte(), 0x0303, plaintext.len() as u16);
                let gcm = self.protection == Protection::Tls12Gcm;
                let nonce = if gcm {
                    let mut n = self.iv;
                    n[4..].copy_from_slice(&seq.to_be_bytes());
                    n
                } else {
                    xor_nonce(&self.iv, seq)
                };
                body.extend_from_slice(plaintext);
                self.key
                    .seal_in_place_append_tag(
                        aead::Nonce::assume_unique_for_key(nonce),
                        aead::Aad::from(aad),
                        &mut body,
                    )
                    .expect("bug: record within AEAD limits");
                let explicit = if gcm { EXPLICIT_NONCE_LEN } else { 0 };
                let len = (body.len() + explicit) as u16;
                let mut rec = vec![content_type.byte(), 3, 3];
                rec.extend_from_slice(&len.to_be_bytes());
                if gcm {
                    rec.extend_from_slice(&seq.to_be_bytes());
                }
                rec.extend_from_slice(&body);
                rec
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stream::tls::record::parse_header;
    use crate::stream::tls::schedule::tls13_traffic_keys;
    use crate::stream::tls::suite::HashAlg;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8448 §3: the server's protected handshake flight (EncryptedExtensions ..
    /// Finished), one 679-byte record.
    pub(crate) const RFC8448_SERVER_FLIGHT: &str = concat!(
        "17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35edf7869fcf40aa40aa2b8ea73f848a7ca",
        "07612ef9f945cb960b4068905123ea78b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13b",
        "d9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9d7477609aee6e122a4cf51427325250c",
        "7d0e509289444c9b3a648f1d71035d2ed65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd61092",
        "8d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead686945ba246ab66e5edd8044b4c6de3fcf2a8",
        "9441ac66272fd8fb330ef8190579b3684596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f",
        "4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26f59ecaba9acbbb317b66d902f4f292a3",
        "6ac1b639c637ce343117b659622245317b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e",
        "1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da8c87c843f5e56eb4c5e8280a2b48052c",
        "f93b16499a66db7cca71e4599426f7d461e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe",
        "5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb992f2b992f67f8afe67f76913fa388cb",
        "5630c8ca01e0c65d11c66a1e2ac4c85977b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038",
        "ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b845e275592c12335ee340bbc4fddd50278",
        "4016e4b3be7ef04dda49f4b440a30cb5d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e",
        "750edc53370d2b",
    );
    /// RFC 8448 §3: the client's Finished record under the client handshake key.
    pub(crate) const RFC8448_CLIENT_FINISHED: &str = "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546";
    /// RFC 8448 §3: the server's NewSessionTicket record (server application key, seq 0).
    pub(crate) const RFC8448_SERVER_TICKET: &str = concat!(
        "17030300de3a6b8f90414a97d6959c3487680de5134a2b240e6cffac116e95d41d6af8f6b580dcf3d11d63c758db289a",
        "015940252f55713e061dc13e078891a38efbcf5753ad8ef170ad3c7353d16d9da773b9ca7f2b9fa1b6c0d4a3d03f75e0",
        "9c30ba1e62972ac46f75f7b981be63439b2999ce13064615139891d5e4c5b406f16e3fc181a77ca475840025db2f0a77",
        "f81b5ab05b94c01346755f69232c86519d86cbeeac87aac347d143f9605d64f650db4d023e70e952ca49fe5137121c74",
        "bc2697687e248746d6df353005f3bce18696129c8153556b3b6c6779b37bf15985684f",
    );
    /// RFC 8448 §3: the client's 50 bytes of application data (0x00..0x31).
    pub(crate) const RFC8448_CLIENT_DATA: &str = "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4";
    /// RFC 8448 §3: the server's echo of them (server application key, seq 1).
    pub(crate) const RFC8448_SERVER_DATA: &str = "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d";
    /// RFC 8448 §3: close_notify alerts (client seq 1, server seq 2).
    pub(crate) const RFC8448_CLIENT_ALERT: &str =
        "1703030013c9872760655666b74d7ff1153efd6db6d0b0e3";
    pub(crate) const RFC8448_SERVER_ALERT: &str =
        "1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9";
    pub(crate) const RFC8448_SERVER_HS_SECRET: &str =
        "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
    pub(crate) const RFC8448_CLIENT_HS_SECRET: &str =
        "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
    pub(crate) const RFC8448_SERVER_APP_SECRET: &str =
        "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";
    pub(crate) const RFC8448_CLIENT_APP_SECRET: &str =
        "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";

    fn keys13(secret: &str) -> RecordKeys {
        let k = tls13_traffic_keys(Aead::Aes128Gcm, HashAlg::Sha256, &hex(secret));
        RecordKeys::new(Aead::Aes128Gcm, &k, Protection::Tls13)
    }

    fn open(
        keys: &RecordKeys,
        seq: u64,
        record: &[u8],
    ) -> Result<(ContentType, Vec<u8>), OpenError> {
        let (frag, header) = parse_header(record).unwrap();
        let mut scratch = Vec::new();
        keys.open_at(seq, &header, frag, &mut scratch)
            .map(|o| (o.content_type, scratch[o.range()].to_vec()))
    }

    /// In place: the plaintext where the ciphertext was, or (on failure) no plaintext and no
    /// ciphertext left.
    fn open_in_place(
        keys: &RecordKeys,
        seq: u64,
        record: &[u8],
    ) -> Result<(ContentType, Vec<u8>), OpenError> {
        let (frag, header) = parse_header(record).unwrap();
        let mut buf = frag.to_vec();
        match keys.open_in_place(seq, &header, &mut buf) {
            Ok(o) => Ok((o.content_type, buf[o.range()].to_vec())),
            Err(e) => {
                assert_ne!(buf, frag, "the failed buffer is not left as it was");
                Err(e)
            }
        }
    }

    #[test]
    fn rfc8448_records_decrypt_to_the_published_plaintext() {
        let server_hs = keys13(RFC8448_SERVER_HS_SECRET);
        let (t, plain) = open(&server_hs, 0, &hex(RFC8448_SERVER_FLIGHT)).unwrap();
        assert_eq!(t, ContentType::Handshake);
        assert_eq!(plain.len(), 657);
        assert_eq!(
            plain[..8],
            hex("080000240022000a")[..],
            "EncryptedExtensions first"
        );
        assert_eq!(
            plain[plain.len() - 36..],
            hex("140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718")[..],
            "server Finished last"
        );
        let client_hs = keys13(RFC8448_CLIENT_HS_SECRET);
        let (t, plain) = open(&client_hs, 0, &hex(RFC8448_CLIENT_FINISHED)).unwrap();
        assert_eq!(
            (t, plain),
            (
                ContentType::Handshake,
                hex("14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")
            )
        );
        let counting: Vec<u8> = (0..50).collect();
        let client_app = keys13(RFC8448_CLIENT_APP_SECRET);
        assert_eq!(
            open(&client_app, 0, &hex(RFC8448_CLIENT_DATA)).unwrap(),
            (ContentType::ApplicationData, counting.clone())
        );
        assert_eq!(
            open(&client_app, 1, &hex(RFC8448_CLIENT_ALERT)).unwrap(),
            (ContentType::Alert, vec![1, 0])
        );
        let server_app = keys13(RFC8448_SERVER_APP_SECRET);
        let (t, nst) = open(&server_app, 0, &hex(RFC8448_SERVER_TICKET)).unwrap();
        assert_eq!((t, nst.len(), nst[0]), (ContentType::Handshake, 205, 4));
        assert_eq!(
            open(&server_app, 1, &hex(RFC8448_SERVER_DATA)).unwrap(),
            (ContentType::ApplicationData, counting)
        );
        assert_eq!(
            open(&server_app, 2, &hex(RFC8448_SERVER_ALERT)).unwrap(),
            (ContentType::Alert, vec![1, 0])
        );
        // Wrong sequence number, wrong key, flipped bit: no plaintext.
        assert_eq!(
            open(&server_app, 2, &hex(RFC8448_SERVER_DATA)),
            Err(OpenError::BadTag)
        );
        assert_eq!(
            open(&client_app, 1, &hex(RFC8448_SERVER_DATA)),
            Err(OpenError::BadTag)
        );
        let mut bad = hex(RFC8448_SERVER_DATA);
        bad[20] ^= 1;
        assert_eq!(open(&server_app, 1, &bad), Err(OpenError::BadTag));
        // The header is the AAD: the same bytes under another header fail.
        let mut retyped = hex(RFC8448_SERVER_DATA);
        retyped[0] = 0x16;
        assert_eq!(open(&server_app, 1, &retyped), Err(OpenError::BadTag));
    }

    #[test]
    fn nonce_and_aad_construction() {
        let iv = hex("5b78923dee08579033e523d9").try_into().unwrap();
        assert_eq!(xor_nonce(&iv, 0).to_vec(), hex("5b78923dee08579033e523d9"));
        assert_eq!(xor_nonce(&iv, 1).to_vec(), hex("5b78923dee08579033e523d8"));
        assert_eq!(
            xor_nonce(&iv, 0x0102030405060708).to_vec(),
            hex("5b78923def0a549436e324d1")
        );
        assert_eq!(
            tls12_aad(7, 23, 0x0303, 0x0102).to_vec(),
            hex("0000000000000007 17 0303 0102")
        );
    }

    #[test]
    fn seal_open_round_trip_for_every_aead_and_protection() {
        for aead in [Aead::Aes128Gcm, Aead::Aes256Gcm, Aead::Chacha20Poly1305] {
            let protections: &[Protection] = match aead {
                Aead::Chacha20Poly1305 => &[Protection::Tls13, Protection::Tls12Chacha],
                _ => &[Protection::Tls13, Protection::Tls12Gcm],
            };
            for &p in protections {
                let tk = TrafficKeys {
                    key: [9; 32],
                    key_len: aead.key_len(),
                    iv: [3; 12],
                };
                let keys = RecordKeys::new(aead, &tk, p);
                for (seq, len) in [(0u64, 0usize), (1, 1), (5, 300), (u64::MAX - 1, 16384)] {
                    let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
                    let rec = keys.seal_record(seq, ContentType::ApplicationData, &plain);
                    assert_eq!(rec.len() - HEADER_LEN, len + keys.overhead());
                    assert_eq!(
                        open(&keys, seq, &rec).unwrap(),
                        (ContentType::ApplicationData, plain.clone()),
                        "{aead:?} {p:?} {len}"
                    );
                    assert_eq!(
                        open_in_place(&keys, seq, &rec).unwrap(),
                        (ContentType::ApplicationData, plain.clone()),
                        "in place: {aead:?} {p:?} {len}"
                    );
                    if len > 0 {
                        assert_eq!(
                            open_in_place(&keys, seq.wrapping_add(1), &rec),
                            Err(OpenError::BadTag)
                        );
                    }
                    assert_eq!(
                        open(&keys, seq.wrapping_add(1), &rec),
                        Err(OpenError::BadTag)
                    );
                    if p == Protection::Tls12Gcm {
                        assert_eq!(keys.explicit_nonce(&rec[HEADER_LEN..]), Some(seq));
                    }
                }
                // Too short for a tag.
                let header = Header {
                    content_type: ContentType::ApplicationData,
                    version: 0x0303,
                    length: 3,
                };
                assert_eq!(
                    keys.open_at(0, &header, &[1, 2, 3], &mut Vec::new()),
                    Err(OpenError::TooShort)
                );
            }
        }
    }

    #[test]
    fn tls13_padding_is_stripped_and_all_zero_plaintext_is_rejected() {
        let keys = keys13(RFC8448_CLIENT_APP_SECRET);
        // Build a padded inner plaintext by hand: "hi" || 23 || 0 0 0.
        let mut body = b"hi".to_vec();
        body.extend([23, 0, 0, 0]);
        let header = Header {
            content_type: ContentType::ApplicationData,
            version: 0x0303,
            length: (body.len() + TAG_LEN) as u16,
        };
        let mut sealed = body.clone();
        keys.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(xor_nonce(&keys.iv, 4)),
                aead::Aad::from(header.bytes()),
                &mut sealed,
            )
            .unwrap();
        let mut scratch = Vec::new();
        let o = keys.open_at(4, &header, &sealed, &mut scratch).unwrap();
        assert_eq!(
            (o.content_type, &scratch[o.range()]),
            (ContentType::ApplicationData, &b"hi"[..])
        );
        let mut zeros = vec![0u8; 4];
        let header = Header {
            length: (4 + TAG_LEN) as u16,
            ..header
        };
        keys.key
            .seal_in_place_append_tag(
                aead::Nonce::assume_unique_for_key(xor_nonce(&keys.iv, 5)),
                aead::Aad::from(header.bytes()),
                &mut zeros,
            )
            .unwrap();
        assert_eq!(
            keys.open_at(5, &header, &zeros, &mut scratch),
            Err(OpenError::NoContentType)
        );
    }
}
