//! The `tls` object of a connection record and the key-log summaries of the report: what a TLS
//! connection showed in clear, what decryption found, and, without keys, what record sizes
//! suggest (labelled as inferred).

use serde::Serialize;

use crate::diag::Side;
use crate::record::model::PerSide;

/// A TLS connection's facts (`connections[].tls`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsRecord {
    /// Negotiated version, `TLSv1.3`, `TLSv1.2` ...; null before a ServerHello was seen.
    pub version: Option<String>,
    /// Negotiated cipher suite, IANA name (`TLS_AES_256_GCM_SHA384`).
    pub cipher_suite: Option<String>,
    /// server_name from the ClientHello.
    pub sni: Option<String>,
    /// ALPN protocol the server selected: clear in TLS 1.2, encrypted (EncryptedExtensions)
    /// in TLS 1.3, so null there without keys.
    pub alpn: Option<String>,
    /// ALPN protocols the client offered.
    pub alpn_offered: Vec<String>,
    /// Versions the client offered (supported_versions, else its legacy version).
    pub versions_offered: Vec<String>,
    /// Cipher suites the client offered (GREASE values shown as 0x?a?a), first 64.
    pub cipher_suites_offered: Vec<String>,
    /// The key_share group used (for a HelloRetryRequest: the group the server asked for).
    pub key_share_group: Option<String>,
    /// The ClientHello random in hex: the key-log lookup key.
    pub client_random: Option<String>,
    /// The session was resumed (TLS 1.2 session id or ticket, TLS 1.3 PSK).
    pub resumed: bool,
    /// How: `session_id`, `ticket` or `psk`.
    pub resumption: Option<&'static str>,
    /// The server answered the first ClientHello with a HelloRetryRequest.
    pub hello_retry_request: bool,
    /// The ClientHello carried an encrypted_client_hello extension (real or GREASE).
    pub ech_offered: bool,
    /// Both Finished messages were seen (decrypted, or in TLS 1.2 the encrypted Finished
    /// records after each ChangeCipherSpec); null when that cannot be told (TLS 1.3 without
    /// keys: see `inferred.handshake_complete`).
    pub handshake_complete: Option<bool>,
    /// Records were decrypted with keys from a key log.
    pub decrypted: bool,
    /// Why (some) records could not be decrypted: no key, unsupported suite, tag failure ...
    pub decrypt_error: Option<String>,
    /// Where the keys came from: `client_random`, `session_id`, `ticket`.
    pub keys_from: Option<&'static str>,
    /// 0-RTT early data.
    pub early_data: EarlyDataRecord,
    /// Alerts seen (decrypted, or TLS 1.2 plaintext/encrypted alert records).
    pub alerts: Vec<AlertRecord>,
    /// close_notify seen from each side (decrypted, or a plaintext alert).
    pub close_notify: PerSide<bool>,
    /// KeyUpdate messages from each side (TLS 1.3, decrypted).
    pub key_updates: PerSide<u64>,
    /// Records from each side (all types).
    pub records: PerSide<u64>,
    /// Record bytes from each side, headers included.
    pub bytes: PerSide<u64>,
    /// Application-data plaintext bytes handed to the layer above (decrypted only).
    pub application_bytes: PerSide<u64>,
    /// Records that could not be decrypted (no key, tag failure, lost in a gap).
    pub undecrypted_records: PerSide<u64>,
    /// Without keys: what the record sizes suggest. Null when the connection was decrypted.
    pub inferred: Option<TlsInferred>,
}

/// 0-RTT facts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EarlyDataRecord {
    /// The ClientHello offered early data.
    pub offered: bool,
    /// The server accepted it (EncryptedExtensions, decrypted); null when not known.
    pub accepted: Option<bool>,
    /// Client records sent as early data that were decrypted.
    pub decrypted_records: u64,
    /// Client records sent as early data that were skipped (rejected by the server, or no
    /// CLIENT_EARLY_TRAFFIC_SECRET).
    pub skipped_records: u64,
}

/// One alert.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRecord {
    /// Capture time.
    pub time: f64,
    /// Sender.
    pub from: Side,
    /// `warning`, `fatal`; null when the alert was encrypted and not decrypted.
    pub level: Option<String>,
    /// Registered name (`close_notify`, `unknown_ca` ...); null when encrypted.
    pub description: Option<String>,
    /// The alert was in an encrypted record that was not decrypted (TLS 1.2: the record type
    /// is visible); `likely_close_notify` then says whether its size is close_notify's.
    pub encrypted: bool,
    /// Encrypted alerts only: the record has exactly close_notify's size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likely_close_notify: Option<bool>,
}

/// Size-based inferences for a connection that was not decrypted (research note §9). They
/// assume no record padding (which stacks rarely use) and a 16-byte tag (every AEAD suite).
#[derive(Debug, Clone, Default, Serialize)]
pub struct TlsInferred {
    /// Always `record sizes`: these are guesses, not decrypted facts.
    pub basis: &'static str,
    /// TLS 1.3: the client sent an encrypted record after the server's first flight (its
    /// Finished); false when the connection ended without one.
    pub handshake_complete: Option<bool>,
    /// The last record of each side has close_notify's exact size (TLS 1.3: 19 bytes; TLS 1.2:
    /// an alert record of 26 bytes for GCM, 18 for ChaCha20).
    pub close_notify: PerSide<bool>,
    /// The last application-data record of each side (before a close_notify-sized one) is
    /// small enough to be a WebSocket Close frame (server 4..=127, client 8..=131 plaintext
    /// bytes).
    pub close_frame: PerSide<bool>,
    /// Its plaintext length, assuming no padding.
    pub last_application_length: PerSide<Option<u64>>,
    /// Encrypted application-data records from each side (TLS 1.3: after the handshake
    /// records, as far as sizes tell).
    pub application_records: PerSide<u64>,
}

/// What one key-log source gave (`summary.key_logs[]`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyLogSummary {
    /// The file path, or `pcapng DSB #N in FILE`.
    pub source: String,
    /// Lines read.
    pub lines: u64,
    /// Usable secret lines.
    pub secrets: u64,
    /// Malformed lines (all counted; the first few listed in `warnings`).
    pub malformed: u64,
    /// The first malformed lines.
    pub warnings: Vec<KeyLogWarning>,
}

/// A malformed key-log line.
#[derive(Debug, Clone, Serialize)]
pub struct KeyLogWarning {
    /// 1-based line number.
    pub line: u64,
    /// What is wrong with it.
    pub message: String,
}
