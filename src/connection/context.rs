//! What every connection shares: the settings, the reporter, scratch space, the budgets that
//! span connections (listed messages, deflate decoders), connection numbers, TLS keys, and the
//! WebSocket endpoints seen upgraded (for plain requests refused by one of them).

use std::sync::Arc;

use crate::analysis::AnalysisOptions;
use crate::record::{ConnectionRecord, Sink};
use crate::stream::tls::KeyStore;
use crate::tcp::reassembly::ReassemblyLimits;
use crate::ws::deflate::DecoderBudget;
use crate::ws::message::{MessageLimits, Output, PayloadMode};

/// Settings shared by every connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionConfig {
    /// Analysis options.
    pub analysis: AnalysisOptions,
    /// Payload kept per message.
    pub payload: PayloadMode,
    /// Message caps.
    pub message_limits: MessageLimits,
    /// TCP caps.
    pub reassembly: ReassemblyLimits,
    /// Bytes of listed messages (records kept for `--messages` in the json and table reports)
    /// held at once across connections; past it messages are counted but not listed.
    pub max_listed_bytes: u64,
    /// The reporter writes and frees a connection's record when the connection finishes (json);
    /// otherwise (table) it keeps every record until the end, and listed bytes stay charged.
    pub listed_freed_on_finish: bool,
}

/// Default for [`ConnectionConfig::max_listed_bytes`].
pub const DEFAULT_MAX_LISTED_BYTES: u64 = 256 << 20;

/// What a listed message record costs besides its payload text (measured: about 170 bytes).
pub(super) const LISTED_RECORD_BYTES: u64 = 192;

/// Scratch space and output shared across connections.
pub struct Context<'s> {
    /// Where findings go.
    pub sink: &'s mut dyn Sink,
    /// Settings.
    pub config: ConnectionConfig,
    pub(super) outputs: Vec<Output>,
    /// Bytes of listed messages held now (see [`ConnectionConfig::max_listed_bytes`]).
    pub(super) listed_bytes: u64,
    /// permessage-deflate decoders alive (see [`MessageLimits::max_inflaters`]).
    pub(super) decoders: DecoderBudget,
    pub(super) targets: Targets,
    /// Connection numbers handed out (TCP connections and HTTP/2 WebSocket streams).
    next_id: u64,
    /// Records finished while a connection goes on (HTTP/2 WebSocket streams), for the
    /// pipeline to report.
    pub(super) finished: Vec<ConnectionRecord>,
    /// TLS keys for every connection (empty without key logs).
    pub(super) keys: Arc<KeyStore>,
}

/// Endpoints (`host/path`) seen upgraded to WebSocket, and refused plain requests to
/// endpoints not (yet) known as such: a request that another connection's upgrade shows to be
/// for a WebSocket endpoint is reported even when it came earlier in the capture.
#[derive(Default)]
pub(super) struct Targets {
    pub(super) upgraded: std::collections::HashSet<String>,
    /// Records built for refused plain exchanges, with their target; reported at the end if
    /// the target was upgraded by then.
    pub(super) waiting: Vec<(String, ConnectionRecord)>,
}

/// Endpoints remembered as upgraded: far more than a capture's distinct WebSocket URLs.
const MAX_UPGRADED_TARGETS: usize = 65_536;
/// Refused plain exchanges held until the end of the capture (each a small record).
pub(super) const MAX_WAITING_EXCHANGES: usize = 4096;

impl<'s> Context<'s> {
    /// A context writing to `sink`.
    pub fn new(sink: &'s mut dyn Sink, config: ConnectionConfig) -> Self {
        Context {
            sink,
            config,
            outputs: Vec::new(),
            listed_bytes: 0,
            decoders: DecoderBudget::new(config.message_limits.max_inflaters),
            targets: Targets::default(),
            next_id: 0,
            finished: Vec::new(),
            keys: Arc::new(KeyStore::new(false)),
        }
    }

    /// The TLS keys connections decrypt with from now on.
    pub fn set_keys(&mut self, keys: Arc<KeyStore>) {
        self.keys = keys;
    }

    /// permessage-deflate decoders alive now, across connections.
    pub fn live_decoders(&self) -> usize {
        self.decoders.live()
    }

    /// The next connection number.
    pub fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Are there records for [`Context::take_finished`]?
    pub fn has_finished(&self) -> bool {
        !self.finished.is_empty()
    }

    /// Records finished since the last call (WebSocket streams of HTTP/2 connections that go
    /// on): report them.
    pub fn take_finished(&mut self) -> Vec<ConnectionRecord> {
        std::mem::take(&mut self.finished)
    }

    /// End of all input: the records of refused plain requests to endpoints that another
    /// connection upgraded later in the capture.
    pub fn take_late_records(&mut self) -> Vec<ConnectionRecord> {
        let targets = std::mem::take(&mut self.targets);
        targets
            .waiting
            .into_iter()
            .filter(|(target, _)| targets.upgraded.contains(target))
            .map(|(_, record)| record)
            .collect()
    }

    pub(super) fn note_upgraded(&mut self, target: Option<String>) {
        if let Some(target) = target
            && self.targets.upgraded.len() < MAX_UPGRADED_TARGETS
        {
            self.targets.upgraded.insert(target);
        }
    }
}

/// Keeps nothing: records built for later are not announced as events.
pub(super) struct Quiet;

impl Sink for Quiet {
    fn event(&mut self, _: &crate::record::Event<'_>) {}
    fn connection(&mut self, _: ConnectionRecord) {}
    fn finish(
        &mut self,
        _: &[crate::capture::InputSummary],
        _: &crate::record::Summary,
    ) -> std::io::Result<()> {
        Ok(())
    }
}
