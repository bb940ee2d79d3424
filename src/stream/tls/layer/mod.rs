//! The per-connection TLS state machine behind [`TlsLayer`]: state, framing, record dispatch,
//! alerts, the end. Handshake flow and key switches are in `flow`, protected records in
//! `protected`.

mod ending;
mod flow;
mod protected;

use std::sync::Arc;

use super::decrypt::{OpenError, Opened, Protection, RecordKeys, TAG_LEN};
use super::handshake::{self, ClientHello, HandshakeJoiner, JoinerEvent, ServerHello, kind};
use super::keylog::{KeyStore, MasterSource, Tls13Secrets};
use super::pattern::{AppRecord, RecordPattern};
use super::record::{ContentType, FramerEvent, HEADER_LEN, Header, Record, RecordFramer};
use super::schedule::{self, Secret};
use super::suite::{self, Aead, AlertLevel, SuiteInfo};
use crate::diag::{Diagnostic, DiagnosticId, Side};
use crate::record::tls::{AlertRecord, TlsRecord};
use crate::stream::{Chunk, End, Layer, Out};

/// What the TLS layer tells the analysis. Facts accumulate in [`TlsLayer::record`].
#[derive(Debug, Clone)]
pub enum TlsEvent {
    /// A ClientHello was read (SNI, ALPN offered ... are in the record).
    ClientHello,
    /// The server answered with a HelloRetryRequest.
    HelloRetryRequest,
    /// The ServerHello was read: version and suite are known.
    ServerHello,
    /// A side's Finished was read (decrypted, or TLS 1.2's encrypted Finished record seen).
    Finished {
        /// Whose.
        from: Side,
    },
    /// An alert. `description` is `None` when the alert record could not be decrypted.
    Alert {
        /// Sender.
        from: Side,
        /// Level, when readable.
        level: Option<AlertLevel>,
        /// Description number, when readable ([`suite::CLOSE_NOTIFY`] = 0).
        description: Option<u8>,
    },
    /// A TLS 1.3 KeyUpdate: the sender's next records use new keys.
    KeyUpdate {
        /// Sender.
        from: Side,
    },
    /// A finding.
    Diagnostic(Diagnostic),
}

impl TlsEvent {
    /// Is this a readable close_notify?
    pub fn is_close_notify(&self) -> bool {
        matches!(
            self,
            TlsEvent::Alert {
                description: Some(suite::CLOSE_NOTIFY),
                ..
            }
        )
    }
}

/// Records held while the other direction decides how they are read (the client's records
/// before the ServerHello, or 0-RTT records before EncryptedExtensions says whether the server
/// took them). Past this the records are handled as they come.
const MAX_QUEUED_BYTES: usize = 256 * 1024;

/// Consecutive records that fail authentication before a direction's keys are given up.
const MAX_FAILURES: u32 = 8;

/// Looks into a followed key log for a live TLS 1.3 connection's late secrets that read new
/// lines without finding them (a look at an unchanged file is one stat and does not count):
/// enough for a client that logs its secrets a few lines at a time.
const MAX_LATE_KEY_TRIES: u8 = 16;

/// Sequence numbers tried after records were lost in a gap.
const MAX_SEQ_TRIALS: u64 = 2048;

/// Smallest protected record (header + TLS 1.3 inner type + tag): bounds the records a gap
/// of n bytes can have held.
const MIN_RECORD: u64 = (HEADER_LEN + 1 + TAG_LEN) as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No keys installed (before the ServerHello / ChangeCipherSpec, or none to be had).
    None,
    /// TLS 1.3 client: 0-RTT records under the early secret.
    Early,
    /// TLS 1.3 client: the server rejected (or may have rejected) 0-RTT: skip records until
    /// one opens with the handshake key.
    SkippingEarly,
    /// TLS 1.3 handshake keys, or TLS 1.2 keys before that side's Finished.
    Handshake,
    /// Application keys (TLS 1.3 generation N; TLS 1.2 after Finished).
    Application(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    ToApplication,
    KeyUpdate,
    ToHandshake,
}

/// One direction's state.
#[derive(Debug)]
struct Dir {
    framer: RecordFramer,
    joiner: HandshakeJoiner,
    /// TLS 1.2: this side sent ChangeCipherSpec (its handshake and alert records are protected).
    ccs: bool,
    keys: Option<RecordKeys>,
    phase: Phase,
    /// TLS 1.3: the current application traffic secret (for KeyUpdate).
    app_secret: Option<Secret>,
    /// TLS 1.3 client: handshake keys waiting while 0-RTT records go by.
    hs_keys: Option<RecordKeys>,
    /// Key change at the end of the current record.
    switch: Option<Switch>,
    finished: bool,
    /// Stream bytes lost since the last record that decrypted (gaps, resync, failed records).
    lost_bytes: u64,
    /// Whole records among them, when the framer knew.
    lost_records: u64,
    /// Record boundaries were lost: the count of lost records is unknown.
    boundary_lost: bool,
    /// Plaintext was handed on, or application keys were in use: losses are holes above.
    carries_data: bool,
    failures: u32,
    queue: Vec<(Header, Vec<u8>)>,
    queued_bytes: usize,
    records: u64,
    bytes: u64,
    app_bytes: u64,
    encrypted_records: u64,
    undecrypted: u64,
    /// Last record: type and fragment length.
    last: Option<(ContentType, u16)>,
    alert_records: u64,
    close_notify: bool,
    key_updates: u64,
    /// TLS 1.3, keys found late (a live key log): this side's handshake records went by
    /// undecrypted, so the switch to application keys is found by trial, with no data lost.
    late_handshake: bool,
    ended: bool,
    reported_resync: bool,
    reported_failure: bool,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            framer: RecordFramer::new(),
            joiner: HandshakeJoiner::new(),
            ccs: false,
            keys: None,
            phase: Phase::None,
            app_secret: None,
            hs_keys: None,
            switch: None,
            finished: false,
            lost_bytes: 0,
            lost_records: 0,
            boundary_lost: false,
            carries_data: false,
            failures: 0,
            queue: Vec::new(),
            queued_bytes: 0,
            records: 0,
            bytes: 0,
            app_bytes: 0,
            encrypted_records: 0,
            undecrypted: 0,
            last: None,
            alert_records: 0,
            close_notify: false,
            key_updates: 0,
            late_handshake: false,
            ended: false,
            reported_resync: false,
            reported_failure: false,
        }
    }

    fn loss_pending(&self) -> bool {
        self.lost_bytes > 0 || self.lost_records > 0 || self.boundary_lost
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EarlyDecision {
    NotOffered,
    Undecided,
    Accepted,
    Rejected,
}

/// A connection's TLS layer. `push` takes each direction's reassembled TCP bytes and gaps;
/// decrypted application data comes out as `Out::Data { channel: 0 }`.
pub struct TlsLayer {
    keys: Arc<KeyStore>,
    dirs: [Dir; 2],
    client_hello: Option<ClientHello>,
    server_hello: Option<ServerHello>,
    /// Negotiated version (0x0304, 0x0303 ...), from the ServerHello or HelloRetryRequest.
    version: Option<u16>,
    suite: Option<&'static SuiteInfo>,
    /// TLS 1.3 secrets of this connection, once looked up.
    tls13: Option<Tls13Secrets>,
    /// TLS 1.2 master secret and where it came from.
    master: Option<(Secret, MasterSource)>,
    master_looked_up: bool,
    nst_ticket: Option<Vec<u8>>,
    early: EarlyDecision,
    server_hello_done: bool,
    record: TlsRecord,
    /// Sizes, order and times of the application records (for what they show without keys).
    pattern: RecordPattern,
    /// The server's TCP port, when the driver gave it (a sign, with ALPN, of HTTPS).
    server_port: Option<u16>,
    /// When each side ended (FIN or RST).
    end_time: [Option<f64>; 2],
    /// Reused decryption buffer.
    scratch: Vec<u8>,
    now: f64,
    replaying: bool,
    reported_no_key: bool,
    /// A followed key log lacked this TLS 1.3 connection's secrets when they were first
    /// needed: looked up again (at most [`MAX_LATE_KEY_TRIES`] times) when a record needs them.
    late_key_tries: u8,
    reported_handshake_failure: bool,
    reported_unsupported: bool,
    reported_early_skip: bool,
    renegotiating: bool,
}

impl std::fmt::Debug for TlsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsLayer")
            .field("version", &self.version)
            .field("suite", &self.suite.map(|s| s.name))
            .finish_non_exhaustive()
    }
}

fn idx(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type OutFn<'o, 'a> = dyn FnMut(Out<'_, TlsEvent>) + 'o;

impl TlsLayer {
    /// A layer for one connection, reading keys from `keys` (which may be empty).
    pub fn new(keys: Arc<KeyStore>) -> TlsLayer {
        TlsLayer {
            keys,
            dirs: [Dir::new(), Dir::new()],
            client_hello: None,
            server_hello: None,
            version: None,
            suite: None,
            tls13: None,
            master: None,
            master_looked_up: false,
            nst_ticket: None,
            early: EarlyDecision::NotOffered,
            server_hello_done: false,
            record: TlsRecord::default(),
            pattern: RecordPattern::default(),
            server_port: None,
            end_time: [None, None],
            scratch: Vec::with_capacity(1 << 14),
            now: 0.0,
            replaying: false,
            reported_no_key: false,
            late_key_tries: 0,
            reported_handshake_failure: false,
            reported_unsupported: false,
            reported_early_skip: false,
            renegotiating: false,
        }
    }

    /// The server's TCP port: with ALPN, a sign of what the connection carries.
    pub fn set_server_port(&mut self, port: u16) {
        self.server_port = Some(port);
    }

    /// Can this direction's records be decrypted now?
    fn decrypts(&self, side: Side) -> bool {
        self.dirs[idx(side)].keys.is_some()
    }

    fn early_records(&self) -> u64 {
        self.record.early_data.decrypted_records + self.record.early_data.skipped_records
    }

    fn diag(&self, id: DiagnosticId, from: Option<Side>, message: String, out: &mut OutFn<'_, '_>) {
        out(Out::Event(TlsEvent::Diagnostic(Diagnostic::new(
            id,
            from,
            Some(self.now),
            message,
        ))));
    }

    fn set_error(&mut self, message: &str) {
        if self.record.decrypt_error.is_none() {
            self.record.decrypt_error = Some(message.to_string());
        }
    }

    fn is13(&self) -> bool {
        self.version == Some(0x0304)
    }

    // ---- framing ---------------------------------------------------------------------

    fn on_framer_event(&mut self, from: Side, ev: FramerEvent<'_>, out: &mut OutFn<'_, '_>) {
        match ev {
            FramerEvent::Record(r) => self.on_record(from, r, out),
            FramerEvent::Lost { bytes, records } => {
                let d = &mut self.dirs[idx(from)];
                d.lost_bytes += bytes;
                match records {
                    Some(n) => {
                        d.lost_records += n;
                        d.undecrypted += n;
                    }
                    None => d.boundary_lost = true,
                }
                d.joiner.reset();
            }
            FramerEvent::Invalid { header } => {
                let d = &mut self.dirs[idx(from)];
                d.boundary_lost = true;
                if !d.reported_resync {
                    d.reported_resync = true;
                    let offset = d.framer.offset();
                    self.diag(
                        DiagnosticId::TlsResync,
                        Some(from),
                        format!(
                            "{} bytes near stream offset {offset} are not a TLS record header ({}): looking for the next record",
                            from.as_str(),
                            hex(&header)
                        ),
                        out,
                    );
                }
            }
            FramerEvent::Resynced { skipped } => {
                self.dirs[idx(from)].lost_bytes += skipped;
            }
        }
    }

    fn client_must_wait(&self) -> bool {
        self.client_hello.is_some()
            && (self.version.is_none() || self.early == EarlyDecision::Undecided)
    }

    fn on_record(&mut self, from: Side, record: Record<'_>, out: &mut OutFn<'_, '_>) {
        let header = record.header;
        let fragment = record.fragment();
        if !self.replaying {
            let d = &mut self.dirs[idx(from)];
            d.records += 1;
            d.bytes += (HEADER_LEN + fragment.len()) as u64;
            d.last = Some((header.content_type, header.length));
            if from == Side::Client
                && self.client_must_wait()
                && self.dirs[0].queued_bytes + fragment.len() <= MAX_QUEUED_BYTES
            {
                let d = &mut self.dirs[0];
                d.queued_bytes += fragment.len();
                d.queue.push((header, fragment.to_vec()));
                return;
            }
            if from == Side::Client && !self.dirs[0].queue.is_empty() {
                // Keep the order: the queue first.
                self.release_client_queue(out);
            }
        }
        self.process_record(from, record, out);
    }

    fn release_client_queue(&mut self, out: &mut OutFn<'_, '_>) {
        let queue = std::mem::take(&mut self.dirs[0].queue);
        self.dirs[0].queued_bytes = 0;
        let was = self.replaying;
        self.replaying = true;
        for (header, fragment) in &queue {
            self.process_record(Side::Client, Record::shared(*header, fragment), out);
        }
        self.replaying = was;
    }

    fn protected_plain_type(&self, from: Side) -> bool {
        // TLS 1.2 protects every record after the sender's ChangeCipherSpec; TLS 1.3 uses
        // outer type 23 for everything protected (RFC 8446 §5.2).
        !self.is13() && self.dirs[idx(from)].ccs
    }

    fn process_record(&mut self, from: Side, record: Record<'_>, out: &mut OutFn<'_, '_>) {
        let t = record.header.content_type;
        match t {
            ContentType::ChangeCipherSpec => self.on_change_cipher_spec(from, out),
            ContentType::Handshake | ContentType::Alert if !self.protected_plain_type(from) => {
                self.on_plaintext(from, t, record.fragment(), false, out);
            }
            ContentType::Handshake | ContentType::Alert | ContentType::ApplicationData => {
                self.on_protected(from, record, out);
            }
            ContentType::Heartbeat | ContentType::Other(_) => {}
        }
    }

    // ---- plaintext content -----------------------------------------------------------

    fn on_plaintext(
        &mut self,
        from: Side,
        t: ContentType,
        data: &[u8],
        decrypted: bool,
        out: &mut OutFn<'_, '_>,
    ) {
        match t {
            ContentType::Handshake => {
                let mut joiner = std::mem::take(&mut self.dirs[idx(from)].joiner);
                joiner.push(data, &mut |ev| match ev {
                    JoinerEvent::Message { msg_type, body } => {
                        self.on_handshake(from, msg_type, body, decrypted, out)
                    }
                    JoinerEvent::Skipped {
                        msg_type,
                        len,
                        oversized,
                    } => {
                        if oversized {
                            self.diag(
                                DiagnosticId::TlsResync,
                                Some(from),
                                format!(
                                    "{} {} of {len} bytes is larger than any real one ({} bytes kept at most): skipped unread",
                                    from.as_str(),
                                    handshake::kind_name(msg_type),
                                    handshake::MAX_PARSED_MESSAGE
                                ),
                                out,
                            );
                        }
                        self.on_handshake_skipped(from, msg_type);
                    }
                });
                self.dirs[idx(from)].joiner = joiner;
            }
            ContentType::Alert => {
                // An alert record may hold several alerts (TLS 1.2); each is 2 bytes.
                for pair in data.chunks(2) {
                    if let [level, description] = *pair {
                        self.on_alert(
                            from,
                            Some(AlertLevel::from_byte(level)),
                            Some(description),
                            false,
                            out,
                        );
                    }
                }
            }
            ContentType::ApplicationData => {
                let d = &mut self.dirs[idx(from)];
                d.app_bytes += data.len() as u64;
                d.carries_data = true;
                self.record.decrypted = true;
                if !data.is_empty() {
                    out(Out::Data {
                        channel: 0,
                        from,
                        chunk: Chunk::Data(data),
                    });
                }
            }
            ContentType::ChangeCipherSpec | ContentType::Heartbeat | ContentType::Other(_) => {}
        }
    }

    fn on_alert(
        &mut self,
        from: Side,
        level: Option<AlertLevel>,
        description: Option<u8>,
        encrypted_size: bool,
        out: &mut OutFn<'_, '_>,
    ) {
        self.dirs[idx(from)].alert_records += 1;
        let close = description == Some(suite::CLOSE_NOTIFY);
        if close {
            self.dirs[idx(from)].close_notify = true;
        }
        if self.record.alerts.len() < 64 {
            self.record.alerts.push(AlertRecord {
                time: self.now,
                from,
                level: level.map(AlertLevel::name),
                description: description.map(suite::alert_name),
                encrypted: description.is_none(),
                likely_close_notify: description.is_none().then_some(encrypted_size),
            });
        }
        out(Out::Event(TlsEvent::Alert {
            from,
            level,
            description,
        }));
        if let Some(desc) = description
            && !close
        {
            let name = suite::alert_name(desc);
            let fatal = level != Some(AlertLevel::Warning) && desc != suite::USER_CANCELED;
            let (id, what) = if fatal {
                (DiagnosticId::TlsAlert, "fatal")
            } else {
                (DiagnosticId::TlsWarningAlert, "warning")
            };
            let hint = match desc {
                42 | 43 | 44 | 45 | 46 | 48 => ": the peer rejected the certificate",
                40 => ": no common parameters (suite, group, version)",
                112 => ": the server does not know the SNI name",
                120 => ": no common ALPN protocol",
                70 => ": no common TLS version",
                20 | 51 => ": the peer could not decrypt or verify a record",
                _ => "",
            };
            self.diag(
                id,
                Some(from),
                format!("{} sent a {what} TLS alert {name}{hint}", from.as_str()),
                out,
            );
        }
    }

    // ---- the end -----------------------------------------------------------------------

    fn finish_side(&mut self, from: Side, how: End, out: &mut OutFn<'_, '_>) {
        let di = idx(from);
        if self.late_key_tries > 0 && self.tls13.is_none() {
            // The secrets never came: now it is known.
            self.report_no_key(out);
        }
        if from == Side::Client && !self.dirs[0].queue.is_empty() {
            if self.early == EarlyDecision::Undecided {
                self.early = EarlyDecision::Rejected;
            }
            self.release_client_queue(out);
        }
        let mut framer = std::mem::take(&mut self.dirs[di].framer);
        let left = framer.finish(&mut |ev| self.on_framer_event(from, ev, out));
        self.dirs[di].framer = framer;
        if left > 0 {
            let d = &mut self.dirs[di];
            d.lost_bytes += left as u64;
            d.lost_records += 1;
        }
        let d = &mut self.dirs[di];
        if d.carries_data && d.loss_pending() {
            let overhead = d.keys.as_ref().map_or(TAG_LEN + 1, RecordKeys::overhead) + HEADER_LEN;
            let plain = d
                .lost_bytes
                .saturating_sub(d.lost_records * overhead as u64)
                .max(1);
            d.lost_bytes = 0;
            d.lost_records = 0;
            d.boundary_lost = false;
            out(Out::Data {
                channel: 0,
                from,
                chunk: Chunk::Gap(plain),
            });
        }
        d.ended = true;
        if how == End::CaptureEnd || self.client_hello.is_none() {
            return;
        }
        // How it ended, where TLS shows it.
        // TLS 1.2 shows alert records by type; TLS 1.3 only when this side is decrypted.
        let close_visible = if self.is13() {
            self.decrypts(from) && matches!(self.dirs[di].phase, Phase::Application(_))
        } else {
            self.version.is_some()
        };
        let d = &self.dirs[di];
        if !d.close_notify && d.alert_records == 0 && close_visible && self.handshake_done() {
            let how_word = if how == End::Rst { "RST" } else { "FIN" };
            self.diag(
                DiagnosticId::TlsNoCloseNotify,
                Some(from),
                format!(
                    "{} ended the connection ({how_word}) without a TLS close_notify",
                    from.as_str()
                ),
                out,
            );
        }
        if !self.reported_handshake_failure && !self.handshake_done() {
            self.reported_handshake_failure = true;
            let reason = self.handshake_failure_reason(from, how);
            if let Some(reason) = reason {
                self.record.handshake_complete = Some(false);
                self.diag(DiagnosticId::TlsHandshakeFailed, Some(from), reason, out);
            }
        }
    }

    /// Did the handshake complete, as far as can be told (inferred for TLS 1.3 without keys)?
    fn handshake_done(&self) -> bool {
        let c = &self.dirs[0];
        let s = &self.dirs[1];
        if c.finished && s.finished {
            return true;
        }
        if self.is13() && !self.decrypts(Side::Client) && !self.record.decrypted {
            // Without keys: the client's encrypted Finished after the server flight.
            return c.encrypted_records > self.early_records() && s.encrypted_records > 0;
        }
        false
    }

    fn handshake_failure_reason(&self, from: Side, how: End) -> Option<String> {
        let how_word = if how == End::Rst { "RST" } else { "FIN" };
        let alert = self
            .record
            .alerts
            .iter()
            .find(|a| a.description.as_deref() != Some("close_notify"));
        let stage = if self.server_hello.is_none() && !self.record.hello_retry_request {
            "after the ClientHello, before any ServerHello".to_string()
        } else if self.is13() && !self.record.decrypted {
            "after the server's first flight, before the client's Finished (inferred from record sizes)"
                .to_string()
        } else {
            "before both Finished messages".to_string()
        };
        Some(match alert {
            Some(a) => format!(
                "the TLS handshake failed {stage}: {} sent alert {}, then {} sent {how_word}",
                a.from.as_str(),
                a.description.as_deref().unwrap_or("(encrypted)"),
                from.as_str()
            ),
            None => format!(
                "the TLS handshake did not complete: {} sent {how_word} {stage}",
                from.as_str()
            ),
        })
    }
}

impl Layer for TlsLayer {
    type Event = TlsEvent;

    fn push(
        &mut self,
        from: Side,
        time: f64,
        chunk: Chunk<'_>,
        out: &mut dyn FnMut(Out<'_, TlsEvent>),
    ) {
        self.now = time;
        let di = idx(from);
        let mut framer = std::mem::take(&mut self.dirs[di].framer);
        match chunk {
            Chunk::Data(bytes) => framer.push(bytes, &mut |ev| self.on_framer_event(from, ev, out)),
            Chunk::Gap(len) => {
                framer.gap(len, &mut |ev| self.on_framer_event(from, ev, out));
            }
        }
        self.dirs[di].framer = framer;
    }

    fn end(&mut self, from: Side, time: f64, how: End, out: &mut dyn FnMut(Out<'_, TlsEvent>)) {
        self.now = time;
        if self.dirs[idx(from)].ended {
            return;
        }
        if how != End::CaptureEnd {
            self.end_time[idx(from)] = Some(time);
        }
        self.finish_side(from, how, out);
    }
}
