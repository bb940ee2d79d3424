//! What every connection shares: the settings, the reporter, scratch space, the budgets that
//! span connections (listed messages, deflate decoders), connection numbers, TLS keys, and the
//! WebSocket endpoints seen upgraded (for plain requests refused by one of them).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use super::targets::{SharedTargets, Targets};
use crate::analysis::AnalysisOptions;
use crate::record::order;
use crate::record::spool::{Spool, SpoolFormat};
use crate::record::{ConnectionRecord, Position, Sink};
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
    /// Listed messages go to a spool file as they happen, formatted so (`--format json`):
    /// they cost no memory however many there are (`max_listed_bytes` then bounds what the
    /// spool holds).
    pub spool: Option<SpoolFormat>,
}

/// Default for [`ConnectionConfig::max_listed_bytes`].
pub const DEFAULT_MAX_LISTED_BYTES: u64 = 256 << 20;

/// Bytes of listed messages held now, across connections (and the threads of a sharded run).
#[derive(Debug, Clone, Default)]
pub struct ListedBudget {
    held: Arc<AtomicU64>,
    refused: Arc<AtomicBool>,
}

impl ListedBudget {
    /// Bytes held now.
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    /// Takes `cost` bytes if that stays within `max`.
    pub(super) fn take(&self, cost: u64, max: u64) -> bool {
        let got = self
            .held
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |held| {
                (held + cost <= max).then_some(held + cost)
            })
            .is_ok();
        if !got {
            self.refused.store(true, Ordering::Relaxed);
        }
        got
    }

    pub(super) fn give_back(&self, bytes: u64) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// The budgets a sharded run's threads share: they bound memory across the whole run. Only
/// when one is reached does a thread's decision depend on the others' timing, so a report
/// that reached one can differ from a single-threaded run's ([`SharedBudgets::reached`]).
#[derive(Debug, Clone)]
pub struct SharedBudgets {
    /// permessage-deflate decoders alive.
    pub decoders: DecoderBudget,
    /// Listed message bytes held.
    pub listed: ListedBudget,
    /// Connections tracked (`--max-connections`).
    pub connections: Arc<AtomicUsize>,
    /// `--max-connections` was reached.
    pub evicted: Arc<AtomicBool>,
}

impl SharedBudgets {
    /// Budgets for a run with these settings.
    pub fn new(config: &ConnectionConfig) -> SharedBudgets {
        SharedBudgets {
            decoders: DecoderBudget::new(config.message_limits.max_inflaters),
            listed: ListedBudget::default(),
            connections: Arc::new(AtomicUsize::new(0)),
            evicted: Arc::default(),
        }
    }

    /// The caps that were reached, as their options (empty: none was, and the report is
    /// the single-threaded one).
    pub fn reached(&self) -> Vec<&'static str> {
        let mut caps = Vec::new();
        if self.evicted.load(Ordering::Relaxed) {
            caps.push("--max-connections");
        }
        if self.decoders.ever_refused() {
            caps.push("--max-inflaters");
        }
        if self.listed.refused.load(Ordering::Relaxed) {
            caps.push("--max-listed-bytes");
        }
        caps
    }
}

/// Bits of a provisional connection number (sharded run) that count within one packet.
pub const PROVISIONAL_ID_BITS: u32 = 20;
/// Threads of a sharded run (their number is part of a provisional connection number).
pub const MAX_SHARDS: u64 = 128;

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
    pub(super) listed: ListedBudget,
    /// permessage-deflate decoders alive (see [`MessageLimits::max_inflaters`]).
    pub(super) decoders: DecoderBudget,
    pub(super) targets: Targets,
    /// Connection numbers handed out (TCP connections and HTTP/2 WebSocket streams).
    next_id: u64,
    /// Where the run is (see [`Position`]).
    position: Position,
    /// In a sharded run, this thread's number: connections are numbered by position (the merge
    /// renumbers them).
    shard: Option<u64>,
    /// The first provisional number of the current step (sharded run).
    id_base: u64,
    /// Records finished while a connection goes on (HTTP/2 WebSocket streams), for the
    /// pipeline to report.
    pub(super) finished: Vec<ConnectionRecord>,
    /// TLS keys for every connection (empty without key logs).
    pub(super) keys: Arc<KeyStore>,
    /// This thread's message spool (see [`ConnectionConfig::spool`]).
    pub(super) spool: Option<Arc<Spool>>,
}

impl<'s> Context<'s> {
    /// A context writing to `sink`.
    pub fn new(sink: &'s mut dyn Sink, config: ConnectionConfig) -> Self {
        Context {
            sink,
            config,
            outputs: Vec::new(),
            listed: ListedBudget::default(),
            decoders: DecoderBudget::new(config.message_limits.max_inflaters),
            targets: Targets::default(),
            next_id: 0,
            position: Position::default(),
            shard: None,
            id_base: 0,
            finished: Vec::new(),
            keys: Arc::new(KeyStore::new(false)),
            spool: config.spool.map(|format| Arc::new(Spool::new(format))),
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

    /// The next connection number. In a sharded run: a provisional one that orders
    /// connections as a single thread would number them (the packet, then the count within it);
    /// the merge replaces it by the single-threaded number.
    pub fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if self.shard.is_some() {
            self.sink.id_allocated(id);
        }
        id
    }

    /// Makes this one thread of a sharded run: endpoints seen upgraded are shared with the
    /// others through `shared`, and connection numbers are provisional.
    pub fn shard(&mut self, shared: Arc<SharedTargets>, worker: usize, budgets: &SharedBudgets) {
        self.shard = Some(worker as u64 % MAX_SHARDS);
        self.targets = Targets::Shared(shared);
        self.decoders = budgets.decoders.clone();
        self.listed = budgets.listed.clone();
    }

    /// The run has reached `position`: what follows is reported as coming from it.
    pub fn at(&mut self, position: Position) {
        self.position = position;
        if let Some(shard) = self.shard {
            // A packet belongs to one thread; a sweep step runs on every thread, so its
            // numbers (rare: streams met in data that came late) carry the thread's number,
            // and come before the packet's.
            let base = if position.stage == Position::PACKET {
                (position.seq << PROVISIONAL_ID_BITS) | (1 << (PROVISIONAL_ID_BITS - 1))
            } else {
                (position.seq << PROVISIONAL_ID_BITS) | (shard << 12)
            };
            if base != self.id_base {
                self.id_base = base;
                self.next_id = base;
            }
            order::set_position(position);
            self.sink.origin(position);
        }
    }

    /// Tells the other threads of a sharded run how far this one has got (they may be waiting
    /// for it to look up an endpoint). Said after each batch and before waiting: a thread's
    /// word can be behind it, never ahead.
    pub fn publish(&self) {
        order::publish();
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
        self.targets.take_late_records()
    }

    pub(super) fn note_upgraded(&mut self, target: Option<String>) {
        if let Some(target) = target {
            self.targets.note_upgraded(target, self.position);
        }
    }

    /// Has another connection upgraded `target` (before now)?
    pub(super) fn target_upgraded(&self, target: &str) -> bool {
        self.targets.upgraded(target, self.position)
    }

    /// Can a refused plain exchange wait for the end of the capture?
    pub(super) fn waiting_has_room(&self) -> bool {
        self.targets.has_room()
    }

    /// Keeps a refused plain exchange's record for the end of the capture.
    pub(super) fn keep_waiting(&mut self, target: String, record: ConnectionRecord) {
        self.targets.keep(target, record, self.sink);
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
