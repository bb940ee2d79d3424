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
    /// Without keys: whether the connection looks like WebSocket, from ALPN, port and the
    /// sizes and order of its records (inferred; null when decrypted, or when the client sent
    /// no application data to judge by).
    pub websocket_likely: Option<WebSocketLikely>,
}

/// An inference: does an encrypted connection carry WebSocket?
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WebSocketLikely {
    /// `confidence` reached 0.5 and nothing rules WebSocket out.
    pub likely: bool,
    /// 0.0-1.0: how strongly the signs point to WebSocket.
    pub confidence: f64,
    /// The signs for it, in words (`the client's first application data (271 B) has the size
    /// of an HTTP upgrade request`, ...).
    pub basis: Vec<String>,
    /// The signs against it.
    pub against: Vec<String>,
}

/// How TLS saw the end of a connection, for the ending analysis (not in the report as such:
/// the close record and timing use it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsEnding {
    /// The first TLS-level end: a close_notify or another alert (decrypted, a TLS 1.2 alert
    /// record, or a close_notify-sized final TLS 1.3 record).
    pub began: Option<TlsEndBegan>,
    /// Not decrypted: each side's last application record before the final close_notify-sized
    /// or alert record: time and plaintext size. The idle time before the end is measured from
    /// these.
    pub last_record: PerSide<Option<(f64, u64)>>,
    /// Not decrypted: the longest silence between application records (seconds).
    pub longest_silence: Option<f64>,
    /// Not decrypted: when the server's answer to the first request came (a 101-sized one
    /// where WebSocket is likely): the start of the connection's age.
    pub started: Option<f64>,
    /// Not decrypted: the connection looks like WebSocket (see [`WebSocketLikely`]).
    pub websocket_likely: bool,
}

/// A TLS alert that began the end.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsEndBegan {
    /// Sender.
    pub side: Side,
    /// Capture time.
    pub time: f64,
    /// `close_notify` (decrypted or inferred), or another alert's name.
    pub alert: String,
    /// How it is known, in words (`an encrypted TLS alert, likely close_notify`, `TLS
    /// close_notify`, `a close_notify-sized record (inferred)`).
    pub words: String,
    /// Inferred from a record's size or type, not read.
    pub inferred: bool,
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
    /// small enough to be a WebSocket Close frame (server 2..=127, client 6..=131 plaintext
    /// bytes) and came within a second of the end (close_notify, FIN or RST): a Close exchange,
    /// not the last message before an idle timeout.
    pub close_frame: PerSide<bool>,
    /// Its plaintext length, assuming no padding.
    pub last_application_length: PerSide<Option<u64>>,
    /// Encrypted application-data records from each side (TLS 1.3: after the handshake
    /// records, as far as sizes tell; tickets count too; the final close_notify-sized record
    /// does not).
    pub application_records: PerSide<u64>,
    /// Capture time of each side's last application-data record (the final close_notify-sized
    /// one left out): the idle time before the end is measured from it.
    pub last_application_time: PerSide<Option<f64>>,
    /// Of the sides whose last record has a Close frame's size (`close_frame`), the one that
    /// sent it first.
    pub close_frame_first: Option<Side>,
    /// Plaintext size of the client's first application data (the request, when it is HTTP).
    pub first_request_length: Option<u64>,
    /// Plaintext sizes of the server's first records after it (up to 4: its answer).
    pub answer_lengths: Vec<u64>,
    /// Client records after the answer of a WebSocket frame's size (6-39 B: smaller than any
    /// HTTP request).
    pub frame_sized_client_records: u64,
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
