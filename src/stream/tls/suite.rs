//! Cipher suites and alerts by number: IANA names (TLS Cipher Suites and TLS Alerts registries)
//! and what the decryptor needs to know about a suite (AEAD, PRF hash).

/// The AEAD that protects records, for the suites that can be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aead {
    /// AES-128-GCM (RFC 5288, RFC 8446).
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 7905, RFC 8446).
    Chacha20Poly1305,
}

impl Aead {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::Chacha20Poly1305 => 32,
        }
    }
}

/// The hash of the suite: HKDF hash in TLS 1.3, PRF hash in TLS 1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl HashAlg {
    /// Output length in bytes: the length of every TLS 1.3 secret of the suite.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
        }
    }
}

/// Which protocol family a suite belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// TLS 1.3 suites (0x13xx): AEAD and hash only.
    Tls13,
    /// TLS 1.2 and older suites: key exchange, cipher, MAC/PRF.
    Tls12,
    /// Signalling values that are not suites (SCSVs).
    Signal,
}

/// One row of the suite table.
#[derive(Debug, Clone, Copy)]
pub struct SuiteInfo {
    /// IANA value.
    pub id: u16,
    /// IANA name.
    pub name: &'static str,
    /// TLS 1.3 or 1.2.
    pub family: Family,
    /// The AEAD when this decryptor supports the suite; `None` for CBC, CCM, RC4, NULL ...
    pub aead: Option<Aead>,
    /// PRF (1.2) or HKDF (1.3) hash, for the decryptable suites.
    pub hash: HashAlg,
}

macro_rules! suites {
    ($($id:literal $name:ident $family:ident $aead:expr, $hash:ident;)*) => {
        const SUITES: &[SuiteInfo] = &[
            $(SuiteInfo { id: $id, name: stringify!($name), family: Family::$family, aead: $aead, hash: HashAlg::$hash },)*
        ];
    };
}

use Aead::*;

// Every suite a current browser, OpenSSL, Go, Java or Node offers, plus the legacy ones still
// seen on old servers. The hash column only matters for the decryptable (AEAD) rows.
suites! {
    0x1301 TLS_AES_128_GCM_SHA256 Tls13 Some(Aes128Gcm), Sha256;
    0x1302 TLS_AES_256_GCM_SHA384 Tls13 Some(Aes256Gcm), Sha384;
    0x1303 TLS_CHACHA20_POLY1305_SHA256 Tls13 Some(Chacha20Poly1305), Sha256;
    0x1304 TLS_AES_128_CCM_SHA256 Tls13 None, Sha256;
    0x1305 TLS_AES_128_CCM_8_SHA256 Tls13 None, Sha256;
    0xc02b TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 Tls12 Some(Aes128Gcm), Sha256;
    0xc02c TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 Tls12 Some(Aes256Gcm), Sha384;
    0xc02f TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 Tls12 Some(Aes128Gcm), Sha256;
    0xc030 TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 Tls12 Some(Aes256Gcm), Sha384;
    0xcca8 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 Tls12 Some(Chacha20Poly1305), Sha256;
    0xcca9 TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 Tls12 Some(Chacha20Poly1305), Sha256;
    0xccaa TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256 Tls12 Some(Chacha20Poly1305), Sha256;
    0xccab TLS_PSK_WITH_CHACHA20_POLY1305_SHA256 Tls12 Some(Chacha20Poly1305), Sha256;
    0xccac TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256 Tls12 Some(Chacha20Poly1305), Sha256;
    0xccad TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256 Tls12 Some(Chacha20Poly1305), Sha256;
    0xccae TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256 Tls12 Some(Chacha20Poly1305), Sha256;
    0x009c TLS_RSA_WITH_AES_128_GCM_SHA256 Tls12 Some(Aes128Gcm), Sha256;
    0x009d TLS_RSA_WITH_AES_256_GCM_SHA384 Tls12 Some(Aes256Gcm), Sha384;
    0x009e TLS_DHE_RSA_WITH_AES_128_GCM_SHA256 Tls12 Some(Aes128Gcm), Sha256;
    0x009f TLS_DHE_RSA_WITH_AES_256_GCM_SHA384 Tls12 Some(Aes256Gcm), Sha384;
    0x00a2 TLS_DHE_DSS_WITH_AES_128_GCM_SHA256 Tls12 Some(Aes128Gcm), Sha256;
    0x00a3 TLS_DHE_DSS_WITH_AES_256_GCM_SHA384 Tls12 Some(Aes256Gcm), Sha384;
    0x00a8 TLS_PSK_WITH_AES_128_GCM_SHA256 Tls12 Some(Aes128Gcm), Sha256;
    0x00a9 TLS_PSK_WITH_AES_256_GCM_SHA384 Tls12 Some(Aes256Gcm), Sha384;
    0x00aa TLS_DHE_PSK_WITH_AES_128_GCM_SHA256 Tls12 Some(Aes128Gcm), Sha256;
    0x00ab TLS_DHE_PSK_WITH_AES_256_GCM_SHA384 Tls12 Some(Aes256Gcm), Sha384;
    0xd001 TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256 Tls12 Some(Aes128Gcm), Sha256;
    0xd002 TLS_ECDHE_PSK_WITH_AES_256_GCM_SHA384 Tls12 Some(Aes256Gcm), Sha384;
    0xc009 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA Tls12 None, Sha256;
    0xc00a TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA Tls12 None, Sha256;
    0xc013 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA Tls12 None, Sha256;
    0xc014 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA Tls12 None, Sha256;
    0xc023 TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 Tls12 None, Sha256;
    0xc024 TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384 Tls12 None, Sha384;
    0xc027 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256 Tls12 None, Sha256;
    0xc028 TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384 Tls12 None, Sha384;
    0x002f TLS_RSA_WITH_AES_128_CBC_SHA Tls12 None, Sha256;
    0x0035 TLS_RSA_WITH_AES_256_CBC_SHA Tls12 None, Sha256;
    0x003c TLS_RSA_WITH_AES_128_CBC_SHA256 Tls12 None, Sha256;
    0x003d TLS_RSA_WITH_AES_256_CBC_SHA256 Tls12 None, Sha256;
    0x0033 TLS_DHE_RSA_WITH_AES_128_CBC_SHA Tls12 None, Sha256;
    0x0039 TLS_DHE_RSA_WITH_AES_256_CBC_SHA Tls12 None, Sha256;
    0x0067 TLS_DHE_RSA_WITH_AES_128_CBC_SHA256 Tls12 None, Sha256;
    0x006b TLS_DHE_RSA_WITH_AES_256_CBC_SHA256 Tls12 None, Sha256;
    0x000a TLS_RSA_WITH_3DES_EDE_CBC_SHA Tls12 None, Sha256;
    0xc012 TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA Tls12 None, Sha256;
    0x0005 TLS_RSA_WITH_RC4_128_SHA Tls12 None, Sha256;
    0x0004 TLS_RSA_WITH_RC4_128_MD5 Tls12 None, Sha256;
    0xc0ac TLS_ECDHE_ECDSA_WITH_AES_128_CCM Tls12 None, Sha256;
    0xc0ad TLS_ECDHE_ECDSA_WITH_AES_256_CCM Tls12 None, Sha256;
    0xc0ae TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 Tls12 None, Sha256;
    0xc0af TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8 Tls12 None, Sha256;
    0xc09c TLS_RSA_WITH_AES_128_CCM Tls12 None, Sha256;
    0xc09d TLS_RSA_WITH_AES_256_CCM Tls12 None, Sha256;
    0x0000 TLS_NULL_WITH_NULL_NULL Tls12 None, Sha256;
    0x00ff TLS_EMPTY_RENEGOTIATION_INFO_SCSV Signal None, Sha256;
    0x5600 TLS_FALLBACK_SCSV Signal None, Sha256;
}

/// The table row of a suite, if it is one we know by name.
pub fn suite(id: u16) -> Option<&'static SuiteInfo> {
    SUITES.iter().find(|s| s.id == id)
}

/// The IANA name, or `0xNNNN` for a value not in the table (GREASE values included).
pub fn suite_name(id: u16) -> String {
    match suite(id) {
        Some(s) => s.name.to_string(),
        None => format!("0x{id:04x}"),
    }
}

/// GREASE values (RFC 8701): `0x?a?a` with both bytes equal.
pub fn is_grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// `TLSv1.3`, `TLSv1.2` ... as Wireshark and OpenSSL spell them.
pub fn version_name(version: u16) -> String {
    match version {
        0x0304 => "TLSv1.3".into(),
        0x0303 => "TLSv1.2".into(),
        0x0302 => "TLSv1.1".into(),
        0x0301 => "TLSv1.0".into(),
        0x0300 => "SSLv3".into(),
        v => format!("0x{v:04x}"),
    }
}

/// Alert level (RFC 5246 §7.2; in TLS 1.3 the level is ignored except for close_notify and user_canceled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertLevel {
    /// 1.
    Warning,
    /// 2.
    Fatal,
    /// Anything else.
    Other(u8),
}

impl AlertLevel {
    /// From the wire byte.
    pub fn from_byte(b: u8) -> AlertLevel {
        match b {
            1 => AlertLevel::Warning,
            2 => AlertLevel::Fatal,
            n => AlertLevel::Other(n),
        }
    }

    /// `warning`, `fatal` or `level-N`.
    pub fn name(self) -> String {
        match self {
            AlertLevel::Warning => "warning".into(),
            AlertLevel::Fatal => "fatal".into(),
            AlertLevel::Other(n) => format!("level-{n}"),
        }
    }
}

/// close_notify (RFC 8446 §6.1).
pub const CLOSE_NOTIFY: u8 = 0;
/// user_canceled: a warning-level abort.
pub const USER_CANCELED: u8 = 90;

/// The registered name of an alert description, or `alert-N`.
pub fn alert_name(description: u8) -> String {
    let name = match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        n => return format!("alert-{n}"),
    };
    name.to_string()
}

/// Named groups (RFC 8446 §4.2.7, IANA), for the key_share report.
pub fn group_name(group: u16) -> String {
    let name = match group {
        0x0017 => "secp256r1",
        0x0018 => "secp384r1",
        0x0019 => "secp521r1",
        0x001d => "x25519",
        0x001e => "x448",
        0x0100 => "ffdhe2048",
        0x0101 => "ffdhe3072",
        0x0102 => "ffdhe4096",
        0x11ec => "X25519MLKEM768",
        0x6399 => "X25519Kyber768Draft00",
        g if is_grease(g) => return format!("GREASE 0x{g:04x}"),
        g => return format!("0x{g:04x}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_properties_of_the_suites_that_matter() {
        assert_eq!(suite_name(0x1302), "TLS_AES_256_GCM_SHA384");
        assert_eq!(suite(0x1302).unwrap().hash, HashAlg::Sha384);
        assert_eq!(suite(0xc02c).unwrap().aead, Some(Aead::Aes256Gcm));
        assert_eq!(suite(0xcca9).unwrap().aead, Some(Aead::Chacha20Poly1305));
        assert_eq!(suite(0xc013).unwrap().aead, None, "CBC is not decrypted");
        assert_eq!(suite_name(0x7a7a), "0x7a7a");
        assert!(is_grease(0x7a7a) && is_grease(0x0a0a) && !is_grease(0x0a1a) && !is_grease(0x1301));
        // Every id is in the table once.
        for (i, a) in SUITES.iter().enumerate() {
            assert!(SUITES[i + 1..].iter().all(|b| b.id != a.id), "{:#x}", a.id);
        }
    }

    #[test]
    fn alert_and_version_names() {
        assert_eq!(alert_name(0), "close_notify");
        assert_eq!(alert_name(48), "unknown_ca");
        assert_eq!(alert_name(200), "alert-200");
        assert_eq!(version_name(0x0304), "TLSv1.3");
        assert_eq!(group_name(0x0018), "secp384r1");
    }
}
