//! Key derivation from logged secrets: TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1, §7.2, §7.3)
//! and the TLS 1.2 PRF key expansion (RFC 5246 §5, §6.3). The handshake's own key exchange is
//! never redone: the key log gives the secrets.

use ring::{hkdf, hmac};

use super::suite::{Aead, HashAlg};

/// Longest secret: SHA-384's 48 bytes (TLS 1.3 secrets and the TLS 1.2 master secret).
pub const MAX_SECRET: usize = 48;

/// A secret of 32 or 48 bytes, copied without allocation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret {
    len: u8,
    bytes: [u8; MAX_SECRET],
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Secret({} bytes)", self.len)
    }
}

impl Secret {
    /// A secret from its bytes; `None` when longer than [`MAX_SECRET`] or empty.
    pub fn new(bytes: &[u8]) -> Option<Secret> {
        if bytes.is_empty() || bytes.len() > MAX_SECRET {
            return None;
        }
        let mut s = Secret {
            len: bytes.len() as u8,
            bytes: [0; MAX_SECRET],
        };
        s.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(s)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Never true for a constructed secret; here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn hkdf_alg(hash: HashAlg) -> hkdf::Algorithm {
    match hash {
        HashAlg::Sha256 => hkdf::HKDF_SHA256,
        HashAlg::Sha384 => hkdf::HKDF_SHA384,
    }
}

fn hmac_alg(hash: HashAlg) -> hmac::Algorithm {
    match hash {
        HashAlg::Sha256 => hmac::HMAC_SHA256,
        HashAlg::Sha384 => hmac::HMAC_SHA384,
    }
}

/// ring's HKDF output length carrier.
struct OutLen(usize);

impl hkdf::KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// `HKDF-Expand-Label(secret, label, context, out.len())` (RFC 8446 §7.1): the info is
/// `u16 length || u8 len || "tls13 " label || u8 len || context`.
pub fn hkdf_expand_label(
    hash: HashAlg,
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) {
    // RFC 8446 labels are at most 12 + 6 bytes and contexts at most a hash: fits a u8.
    debug_assert!(label.len() + 6 <= 255 && context.len() <= 255 && out.len() <= 255 * hash.len());
    let length = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let context_len = [context.len() as u8];
    let info: [&[u8]; 6] = [&length, &label_len, b"tls13 ", label, &context_len, context];
    let prk = hkdf::Prk::new_less_safe(hkdf_alg(hash), secret);
    prk.expand(&info, OutLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("bug: HKDF output length within 255 * hash length");
}

/// Traffic key and IV of one direction.
#[derive(Clone, PartialEq, Eq)]
pub struct TrafficKeys {
    /// AEAD key (16 or 32 bytes used).
    pub key: [u8; 32],
    /// Key length.
    pub key_len: usize,
    /// TLS 1.3 / ChaCha: the 12-byte IV; TLS 1.2 GCM: the 4-byte salt then zeros.
    pub iv: [u8; 12],
}

impl std::fmt::Debug for TrafficKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrafficKeys({} byte key)", self.key_len)
    }
}

impl TrafficKeys {
    /// The key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }
}

/// TLS 1.3 `[sender]_write_key` and `[sender]_write_iv` from a traffic secret (RFC 8446 §7.3).
pub fn tls13_traffic_keys(aead: Aead, hash: HashAlg, secret: &[u8]) -> TrafficKeys {
    let mut keys = TrafficKeys {
        key: [0; 32],
        key_len: aead.key_len(),
        iv: [0; 12],
    };
    hkdf_expand_label(hash, secret, b"key", b"", &mut keys.key[..aead.key_len()]);
    hkdf_expand_label(hash, secret, b"iv", b"", &mut keys.iv);
    keys
}

/// The next application traffic secret after a KeyUpdate (RFC 8446 §7.2):
/// `HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length)`.
pub fn tls13_next_secret(hash: HashAlg, secret: &Secret) -> Secret {
    let mut next = [0u8; MAX_SECRET];
    let n = secret.len().min(MAX_SECRET);
    hkdf_expand_label(hash, secret.as_bytes(), b"traffic upd", b"", &mut next[..n]);
    Secret::new(&next[..n]).expect("bug: secret length 1..=48")
}

/// `PRF(secret, label, seed)` = `P_hash(secret, label || seed)` (RFC 5246 §5), filling `out`.
pub fn tls12_prf(hash: HashAlg, secret: &[u8], label: &[u8], seed: &[u8], out: &mut [u8]) {
    let key = hmac::Key::new(hmac_alg(hash), secret);
    // A(1) = HMAC(secret, label || seed); A(i) = HMAC(secret, A(i-1)).
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    ctx.update(seed);
    let mut a = ctx.sign();
    let mut filled = 0;
    while filled < out.len() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        ctx.update(seed);
        let block = ctx.sign();
        let take = (out.len() - filled).min(block.as_ref().len());
        out[filled..filled + take].copy_from_slice(&block.as_ref()[..take]);
        filled += take;
        a = hmac::sign(&key, a.as_ref());
    }
}

/// Client and server write keys of a TLS 1.2 AEAD suite, from the master secret (RFC 5246
/// §6.3: `key_block = PRF(master, "key expansion", server_random || client_random)`, cut as
/// `client_write_key | server_write_key | client_write_IV | server_write_IV`; AEAD suites have
/// no MAC keys). The IV is the 4-byte GCM salt (RFC 5288 §3) or the 12-byte ChaCha20 IV
/// (RFC 7905 §2).
pub fn tls12_key_block(
    aead: Aead,
    hash: HashAlg,
    master: &[u8],
    client_random: &[u8; 32],
    server_random: &[u8; 32],
) -> (TrafficKeys, TrafficKeys) {
    let key_len = aead.key_len();
    let iv_len = tls12_fixed_iv_len(aead);
    let mut seed = [0u8; 64];
    seed[..32].copy_from_slice(server_random);
    seed[32..].copy_from_slice(client_random);
    let mut block = [0u8; 2 * 32 + 2 * 12];
    let total = 2 * key_len + 2 * iv_len;
    tls12_prf(hash, master, b"key expansion", &seed, &mut block[..total]);
    let mut client = TrafficKeys {
        key: [0; 32],
        key_len,
        iv: [0; 12],
    };
    let mut server = client.clone();
    client.key[..key_len].copy_from_slice(&block[..key_len]);
    server.key[..key_len].copy_from_slice(&block[key_len..2 * key_len]);
    client.iv[..iv_len].copy_from_slice(&block[2 * key_len..2 * key_len + iv_len]);
    server.iv[..iv_len].copy_from_slice(&block[2 * key_len + iv_len..total]);
    (client, server)
}

/// Bytes of the implicit IV in the TLS 1.2 key block.
pub fn tls12_fixed_iv_len(aead: Aead) -> usize {
    match aead {
        Aead::Aes128Gcm | Aead::Aes256Gcm => 4,
        Aead::Chacha20Poly1305 => 12,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8448 §3: every traffic secret of the simple 1-RTT handshake, and the key and IV
    /// the RFC derives from it.
    #[test]
    fn rfc8448_traffic_secrets_give_the_published_keys_and_ivs() {
        let cases = [
            // {server} derive write traffic keys for handshake data
            (
                "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
                "3fce516009c21727d0f2e4e86ee403bc",
                "5d313eb2671276ee13000b30",
            ),
            // {client} derive write traffic keys for handshake data
            (
                "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
                "dbfaa693d1762c5b666af5d950258d01",
                "5bd3c71b836e0b76bb73265f",
            ),
            // {server} derive write traffic keys for application data
            (
                "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
                "9f02283b6c9c07efc26bb9f2ac92e356",
                "cf782b88dd83549aadf1e984",
            ),
            // {client} derive write traffic keys for application data
            (
                "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
                "17422dda596ed5d9acd890e3c63f5051",
                "5b78923dee08579033e523d9",
            ),
        ];
        for (secret, key, iv) in cases {
            let keys = tls13_traffic_keys(Aead::Aes128Gcm, HashAlg::Sha256, &hex(secret));
            assert_eq!(keys.key(), &hex(key)[..], "key from {secret}");
            assert_eq!(&keys.iv[..], &hex(iv)[..], "iv from {secret}");
        }
    }

    #[test]
    fn rfc8448_derive_secret_from_the_master_secret() {
        // {server} derive secret "tls13 s ap traffic": the RFC's master secret and transcript
        // hash give its server application traffic secret (Derive-Secret = Expand-Label).
        let master = hex("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919");
        let hash = hex("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13");
        let mut out = [0u8; 32];
        hkdf_expand_label(HashAlg::Sha256, &master, b"s ap traffic", &hash, &mut out);
        assert_eq!(
            &out[..],
            &hex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")[..]
        );
    }

    #[test]
    fn key_update_chains_secrets_per_rfc8446_7_2() {
        let s0 = Secret::new(&hex(
            "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
        ))
        .unwrap();
        let s1 = tls13_next_secret(HashAlg::Sha256, &s0);
        let mut expect = [0u8; 32];
        hkdf_expand_label(
            HashAlg::Sha256,
            s0.as_bytes(),
            b"traffic upd",
            b"",
            &mut expect,
        );
        assert_eq!(s1.as_bytes(), &expect);
        assert_ne!(s1, s0);
        assert_eq!(
            tls13_next_secret(HashAlg::Sha384, &Secret::new(&[1; 48]).unwrap()).len(),
            48
        );
    }

    /// The TLS 1.2 PRF test vectors circulated on the IETF TLS list (msg03416): P_SHA256 with
    /// 100 bytes of output, P_SHA384 with 148.
    #[test]
    fn tls12_prf_vectors() {
        let mut out = [0u8; 100];
        tls12_prf(
            HashAlg::Sha256,
            &hex("9bbe436ba940f017b17652849a71db35"),
            b"test label",
            &hex("a0ba9f936cda311827a6f796ffd5198c"),
            &mut out,
        );
        assert_eq!(
            &out[..],
            &hex(
                "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a\
                  6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab\
                  4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701\
                  87347b66"
            )[..]
        );
        let mut out = [0u8; 148];
        tls12_prf(
            HashAlg::Sha384,
            &hex("b80b733d6ceefcdc71566ea48e5567df"),
            b"test label",
            &hex("cd665cf6a8447dd6ff8b27555edb7465"),
            &mut out,
        );
        assert_eq!(
            &out[..],
            &hex(
                "7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cd\
                  e9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd\
                  8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d918425\
                  9b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee6\
                  91c8f3a26854308d5eaa3be85e0990703d73e56f"
            )[..]
        );
    }

    #[test]
    fn tls12_key_block_layout() {
        let master = [0x42u8; 48];
        let cr = [1u8; 32];
        let sr = [2u8; 32];
        let mut seed = sr.to_vec();
        seed.extend(cr);
        let mut block = [0u8; 2 * 32 + 2 * 4];
        tls12_prf(
            HashAlg::Sha384,
            &master,
            b"key expansion",
            &seed,
            &mut block,
        );
        let (c, s) = tls12_key_block(Aead::Aes256Gcm, HashAlg::Sha384, &master, &cr, &sr);
        assert_eq!(c.key(), &block[..32]);
        assert_eq!(s.key(), &block[32..64]);
        assert_eq!(&c.iv[..4], &block[64..68]);
        assert_eq!(&s.iv[..4], &block[68..72]);
        let (c, _) = tls12_key_block(Aead::Chacha20Poly1305, HashAlg::Sha256, &master, &cr, &sr);
        assert_eq!(c.key_len, 32);
        assert_ne!(c.iv[4..], [0u8; 8]);
    }
}
