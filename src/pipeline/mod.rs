//! The one pass: packets in, connections found and analysed, records and events out to a
//! [`Sink`]. Holds the flow table, which is bounded: finished connections are released at once,
//! idle ones after a timeout, and the table has a cap.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::capture::Packet;
use std::sync::atomic::Ordering;

use crate::connection::{
    Connection, ConnectionConfig, Context, Finished, SharedBudgets, SharedTargets,
};
use crate::decode::{Segment, Skip, decode};
use crate::record::Sink;
use crate::record::{Position, Summary};
use crate::tcp::FlowKey;

mod merge;
pub mod sharded;

/// Where a capture reader's packets go: a pipeline, or a sharded run's router.
pub trait PacketInput {
    /// One captured packet. Returns why it was skipped, if it was.
    fn packet(&mut self, packet: &Packet<'_>) -> Result<(), Skip>;
    /// TLS keys are about to be added while packets have been given (a pcapng Decryption
    /// Secrets Block after packets): what came before must not see them.
    fn before_keys(&mut self) {}
    /// The packets that follow are slices of this mapped file (until the next one). Returns
    /// whether the reader may hand back the file's pages once it has given their packets (a
    /// sharded run's router hands them back itself, once the workers are done with them).
    fn mapped(&mut self, _map: &crate::capture::file::MappedFile) -> bool {
        true
    }
}

impl PacketInput for Pipeline<'_> {
    fn packet(&mut self, packet: &Packet<'_>) -> Result<(), Skip> {
        Pipeline::packet(self, packet)
    }
}

/// Limits on the flow table.
#[derive(Debug, Clone, Copy)]
pub struct TableLimits {
    /// Connections tracked at once; past it the longest-idle are finished early.
    pub max_connections: usize,
    /// Idle WebSocket connections (no packets for a few seconds) followed at once; past it the
    /// longest-idle are reported as still open and dropped. Bounds memory on long captures full
    /// of silent connections while keeping long idles visible when they are few.
    pub max_idle_connections: usize,
    /// Seconds without packets after which a connection that carried no WebSocket is dropped.
    pub idle_timeout: f64,
    /// The same for WebSocket connections. Long enough to see a proxy's idle timeout kill a
    /// connection (typically 60-120 s); bounded so that silent connections do not accumulate.
    pub websocket_idle_timeout: f64,
}

impl Default for TableLimits {
    fn default() -> Self {
        TableLimits {
            max_connections: 100_000,
            max_idle_connections: 1000,
            idle_timeout: 120.0,
            websocket_idle_timeout: 600.0,
        }
    }
}

/// Packets between idle sweeps.
const SWEEP_EVERY_PACKETS: u64 = 1 << 15;
/// Capture seconds between idle sweeps, so timeouts apply to small captures too.
const SWEEP_EVERY_SECONDS: f64 = 10.0;
/// Seconds without packets after which a connection's rebuildable state (buffers; under
/// memory pressure zlib's ~56 KiB per compressed direction) is released.
const HIBERNATE_AFTER: f64 = 5.0;
/// Memory pressure: past this many live permessage-deflate decoders (~56 KiB each, so about
/// 14 MiB), the longest-idle connections' decoders are packed (window deflated: ~2-8 KiB) until
/// half that many remain. Packing and waking cost a compression and an inflation of the 32 KiB
/// window each time; packing every idle connection at each sweep cost 6.5-8 % of the run on the
/// benchmark mixes, for memory that a few hundred decoders do not need.
const PACK_DECODERS_ABOVE: usize = 256;
/// Seconds a finished connection's key is remembered, so its stray final packets (ACKs,
/// retransmissions) do not start a phantom connection.
const TOMBSTONE_SECONDS: f64 = 120.0;

struct Slot {
    connection: Box<Connection>,
    /// `a`, the first packet's sender, is the key's low end.
    a_is_lo: bool,
}

/// The analysis of a run over one or more inputs.
pub struct Pipeline<'s> {
    table: HashMap<FlowKey, Slot, RandomState>,
    tombstones: HashMap<FlowKey, f64, RandomState>,
    context: Context<'s>,
    limits: TableLimits,
    clock: SweepClock,
    now: f64,
    summary: Summary,
    /// Live permessage-deflate decoders past which idle ones are packed (divided between the
    /// threads of a sharded run).
    pack_decoders_above: usize,
    /// The idle WebSocket connections found by the last sweep (a sharded run's threads stop
    /// those the reader picks, by id).
    idle: Vec<Idle>,
    /// A sharded run's shared budgets (connections tracked across threads).
    shared: Option<SharedBudgets>,
}

/// When the idle sweep runs: every [`SWEEP_EVERY_PACKETS`] packets and every
/// [`SWEEP_EVERY_SECONDS`] of capture time. A sharded run's reader keeps it and tells every
/// thread, so that they sweep where a single thread would.
#[derive(Debug, Clone, Copy)]
pub struct SweepClock {
    packets: u64,
    now: f64,
    last_sweep: f64,
}

impl Default for SweepClock {
    fn default() -> Self {
        SweepClock {
            packets: 0,
            now: 0.0,
            last_sweep: f64::NEG_INFINITY,
        }
    }
}

impl SweepClock {
    /// A packet captured at `time`, numbered [`SweepClock::packets`] from now on. Returns the
    /// capture clock when a sweep is due before it.
    pub fn on_packet(&mut self, time: f64) -> Option<f64> {
        self.now = self.now.max(time);
        self.packets += 1;
        if self.packets.is_multiple_of(SWEEP_EVERY_PACKETS)
            || self.now - self.last_sweep >= SWEEP_EVERY_SECONDS
        {
            self.last_sweep = self.now;
            return Some(self.now);
        }
        None
    }

    /// Packets so far: the number of the last one.
    pub fn packets(&self) -> u64 {
        self.packets
    }
}

/// An idle WebSocket connection met by a sweep: how long it has been quiet, and its id.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    /// Seconds without packets.
    pub quiet: f64,
    /// Connection id.
    pub id: u64,
    key: FlowKey,
}

/// The idle connections to stop, past `cap`: the longest idle first (ties by id, so that runs
/// are alike). Sorts `idle` and returns how many of its first ones to stop.
pub fn idle_over_cap<T>(idle: &mut [(f64, u64, T)], cap: usize) -> usize {
    if idle.len() <= cap {
        return 0;
    }
    idle.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    idle.len() - cap
}

impl<'s> Pipeline<'s> {
    /// A pipeline writing to `sink`.
    pub fn new(sink: &'s mut dyn Sink, config: ConnectionConfig, limits: TableLimits) -> Self {
        Pipeline {
            table: HashMap::default(),
            tombstones: HashMap::default(),
            context: Context::new(sink, config),
            limits,
            clock: SweepClock::default(),
            now: 0.0,
            summary: Summary::default(),
            pack_decoders_above: PACK_DECODERS_ABOVE,
            idle: Vec::new(),
            shared: None,
        }
    }

    /// TLS keys (key logs, pcapng Decryption Secrets Blocks) for the connections to come.
    pub fn set_keys(&mut self, keys: std::sync::Arc<crate::stream::tls::KeyStore>) {
        self.context.set_keys(keys);
    }

    /// Makes this pipeline one worker of `workers` in a sharded run (see [`sharded`]).
    pub fn shard(
        &mut self,
        targets: std::sync::Arc<SharedTargets>,
        worker: usize,
        budgets: &SharedBudgets,
    ) {
        self.context.shard(targets, worker, budgets);
        self.shared = Some(budgets.clone());
    }

    /// Connections tracked now, across the threads of a sharded run.
    fn tracked(&self) -> usize {
        match &self.shared {
            Some(shared) => shared.connections.load(Ordering::Relaxed),
            None => self.table.len(),
        }
    }

    fn insert(&mut self, key: FlowKey, slot: Slot) {
        if let Some(shared) = &self.shared {
            shared.connections.fetch_add(1, Ordering::Relaxed);
        }
        self.table.insert(key, slot);
    }

    fn remove(&mut self, key: &FlowKey) -> Option<Slot> {
        let slot = self.table.remove(key)?;
        if let Some(shared) = &self.shared {
            shared.connections.fetch_sub(1, Ordering::Relaxed);
        }
        Some(slot)
    }

    /// The run has reached `position` (a sharded run's worker says so before each step).
    pub fn at(&mut self, position: Position) {
        self.context.at(position);
    }

    /// Tells the other workers of a sharded run how far this one has got.
    pub fn publish(&self) {
        self.context.publish();
    }

    /// One captured packet. Returns why it was skipped, if it was.
    pub fn packet(&mut self, packet: &Packet<'_>) -> Result<(), Skip> {
        let segment = decode(packet)?;
        if let Some(now) = self.clock.on_packet(packet.ts) {
            self.now = self.now.max(now);
            self.sweep();
        }
        self.segment(&segment, packet.ts);
        Ok(())
    }

    /// One decoded TCP segment, captured at `time`.
    pub fn segment(&mut self, segment: &Segment<'_>, time: f64) {
        let (key, src_is_lo) = FlowKey::new(&segment.src, &segment.dst);
        let fresh_syn = segment.syn && !segment.ack_flag;
        if let Some(slot) = self.table.get_mut(&key) {
            // A new SYN on a finished (or aborted) 4-tuple starts a new connection.
            if !(fresh_syn && slot.connection.closing()) {
                let from_a = src_is_lo == slot.a_is_lo;
                slot.connection
                    .on_segment(segment, from_a, time, &mut self.context);
                let ended = slot.connection.ended();
                self.report_finished();
                if ended {
                    self.finish(key);
                    self.tombstones.insert(key, time);
                }
                return;
            }
            self.finish(key);
        }
        if !fresh_syn && segment.payload.is_empty() {
            return; // pure ACKs and stray FIN/RST start nothing
        }
        if !fresh_syn && self.tombstones.contains_key(&key) {
            return;
        }
        self.tombstones.remove(&key);
        if self.tracked() >= self.limits.max_connections {
            self.evict_idlest();
        }
        let id = self.context.alloc_id();
        let mut connection = Box::new(Connection::new(
            id,
            segment.src,
            segment.dst,
            time,
            &self.context.config,
        ));
        connection.on_segment(segment, true, time, &mut self.context);
        self.report_finished();
        if connection.ended() {
            let finished = connection.finish_any(None, &mut self.context);
            self.report_finished();
            self.report(finished);
            self.tombstones.insert(key, time);
        } else {
            self.insert(
                key,
                Slot {
                    connection,
                    a_is_lo: src_is_lo,
                },
            );
        }
    }

    fn finish(&mut self, key: FlowKey) {
        self.finish_early(key, None);
    }

    /// Finishes a connection; `stopped` explains why when TCP has not ended.
    fn finish_early(&mut self, key: FlowKey, stopped: Option<String>) {
        if let Some(slot) = self.remove(&key) {
            let finished = slot.connection.finish_any(stopped, &mut self.context);
            self.report_finished();
            self.report(finished);
        }
    }

    /// Reports the records connections finished while going on (HTTP/2 WebSocket streams).
    fn report_finished(&mut self) {
        if !self.context.has_finished() {
            return; // the per-packet path: nothing to do, and no allocation
        }
        for record in self.context.take_finished() {
            self.report(Finished::Reported(record));
        }
    }

    fn report(&mut self, finished: Finished) {
        match finished {
            Finished::Reported(record) => {
                self.summary.add_connection(&record);
                self.context.sink.connection(record);
            }
            Finished::Other(other) => {
                self.summary.add_other(&other);
                self.context.sink.other_connection(&other);
            }
        }
    }

    /// A clock tick without a packet (live capture on a quiet interface): moves the pipeline's
    /// time to `now` (Unix seconds; never backwards) and finishes connections idle past their
    /// timeout, so they do not wait for the next packet to expire.
    pub fn sweep_now(&mut self, now: f64) {
        self.now = self.now.max(now);
        self.sweep();
        self.context.sink.tick(self.now);
    }

    /// Has the reporter's output failed (e.g. the reading end of a pipe was closed)?
    pub fn output_failed(&self) -> bool {
        self.context.sink.output_failed()
    }

    /// The table's keys in order of connection id: what the sweep does to several connections
    /// (their events, the records it finishes) must not depend on the hash table's order,
    /// which differs from run to run.
    fn keys_by_id(&self) -> Vec<(u64, FlowKey)> {
        let mut keys: Vec<(u64, FlowKey)> = self
            .table
            .iter()
            .map(|(key, slot)| (slot.connection.id(), *key))
            .collect();
        keys.sort_unstable_by_key(|(id, _)| *id);
        keys
    }

    /// Finishes connections idle past their timeout (and, past `--max-idle-connections`,
    /// the longest idle) and forgets old tombstones.
    fn sweep(&mut self) {
        let seq = self.clock.packets();
        let mut idle: Vec<(f64, u64, FlowKey)> = self
            .sweep_local(seq, self.now)
            .iter()
            .map(|i| (i.quiet, i.id, i.key))
            .collect();
        let stop = idle_over_cap(&mut idle, self.limits.max_idle_connections);
        for (rank, (quiet, _, key)) in idle.into_iter().take(stop).enumerate() {
            self.stop_idle(seq, rank as u64, key, quiet);
        }
        self.forget_idle();
    }

    /// Hibernates every open connection now, as the sweep does to quiet ones (`pack_deflate`:
    /// their deflate decoders too). For tests: hibernation must change nothing a report says.
    #[doc(hidden)]
    pub fn hibernate_all(&mut self, pack_deflate: bool) {
        for slot in self.table.values_mut() {
            slot.connection.hibernate(pack_deflate);
        }
    }

    /// Gives back the last sweep's list of idle connections once no stop can refer to it (64
    /// bytes per idle connection, rebuilt by every sweep).
    pub fn forget_idle(&mut self) {
        if self.idle.capacity() > 0 {
            self.idle = Vec::new();
        }
    }

    /// The sweep before packet `seq` at capture time `now`, all but the cap on idle
    /// connections (which looks at every thread's): returns the idle WebSocket connections.
    pub fn sweep_local(&mut self, seq: u64, now: f64) -> &[Idle] {
        self.now = self.now.max(now);
        let now = self.now;
        let limits = self.limits;
        // Quiet connections stop waiting for late data (cheap when nothing is held).
        for (id, key) in self.keys_by_id() {
            self.context.at(Position::step(seq, Position::TICK, id));
            if let Some(slot) = self.table.get_mut(&key) {
                slot.connection.tick(now, &mut self.context);
            }
        }
        // Connections finished in one sweep are reported in order of id, not in the flow table's
        // (random) order: the same capture gives the same report.
        let mut expired: Vec<(u64, FlowKey, f64)> = self
            .table
            .iter()
            .filter(|(_, slot)| {
                let timeout = if slot.connection.is_interesting() {
                    limits.websocket_idle_timeout
                } else {
                    limits.idle_timeout
                };
                now - slot.connection.last_seen() > timeout
            })
            .map(|(key, slot)| {
                (
                    slot.connection.id(),
                    *key,
                    now - slot.connection.last_seen(),
                )
            })
            .collect();
        expired.sort_unstable_by_key(|e| e.0);
        for (id, key, idle) in expired {
            self.context.at(Position::step(seq, Position::EXPIRE, id));
            let why = format!("no packets for {idle:.0} s, tracking stopped (--idle-timeout)");
            self.finish_early(key, Some(why));
        }
        // TCP ended while bytes were missing: they did not come late either.
        let config = self.context.config;
        let mut lingering: Vec<(u64, FlowKey)> = self
            .table
            .iter()
            .filter(|(_, slot)| slot.connection.linger_over(now, &config))
            .map(|(key, slot)| (slot.connection.id(), *key))
            .collect();
        lingering.sort_unstable_by_key(|e| e.0);
        for (id, key) in lingering {
            self.context.at(Position::step(seq, Position::LINGER, id));
            self.finish(key);
            self.tombstones.insert(key, now);
        }
        self.context.at(Position::step(seq, Position::IDLE_CAP, 0));
        self.idle.clear();
        let mut quiet_ones: Vec<(f64, FlowKey)> = Vec::new();
        let pressure = self.context.live_decoders() > self.pack_decoders_above;
        for (key, slot) in self.table.iter_mut() {
            let quiet = now - slot.connection.last_seen();
            if quiet > HIBERNATE_AFTER {
                slot.connection.hibernate(false);
                if pressure {
                    quiet_ones.push((quiet, *key));
                }
                // Only WebSocket connections count: the others have their own, shorter
                // timeout and --max-connections.
                if slot.connection.is_interesting() {
                    self.idle.push(Idle {
                        quiet,
                        id: slot.connection.id(),
                        key: *key,
                    });
                }
            }
        }
        if pressure {
            // Longest idle first; ties by key, so that runs are alike.
            quiet_ones.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for (_, key) in quiet_ones {
                if self.context.live_decoders() <= self.pack_decoders_above / 2 {
                    break;
                }
                if let Some(slot) = self.table.get_mut(&key) {
                    slot.connection.hibernate(true);
                }
            }
        }
        self.tombstones
            .retain(|_, closed| now - *closed < TOMBSTONE_SECONDS);
        &self.idle
    }

    /// Stops an idle connection found by the last sweep, over `--max-idle-connections`;
    /// `rank` orders these stops across threads.
    fn stop_idle(&mut self, seq: u64, rank: u64, key: FlowKey, quiet: f64) {
        self.context
            .at(Position::step(seq, Position::IDLE_CAP, rank));
        let cap = self.limits.max_idle_connections;
        let why = format!(
            "no packets for {quiet:.0} s, tracking stopped: more than {cap} idle connections (--max-idle-connections)"
        );
        self.finish_early(key, Some(why));
    }

    /// Stops the idle connections with these ids (found by the last sweep before packet
    /// `seq`), each with its rank among every thread's.
    pub fn stop_idle_ids(&mut self, seq: u64, ranked: &[(u64, u64)]) {
        for &(rank, id) in ranked {
            if let Some(idle) = self.idle.iter().find(|i| i.id == id).copied() {
                self.stop_idle(seq, rank, idle.key, idle.quiet);
            }
        }
    }

    fn evict_idlest(&mut self) {
        if let Some(shared) = &self.shared {
            shared.evicted.store(true, Ordering::Relaxed);
        }
        // Rare (only at the cap): finish the oldest tenth so this is not paid per packet.
        let mut by_age: Vec<(f64, FlowKey)> = self
            .table
            .iter()
            .map(|(key, slot)| (slot.connection.last_seen(), *key))
            .collect();
        by_age.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let n = (by_age.len() / 10).max(1);
        let cap = self.limits.max_connections;
        for (_, key) in by_age.into_iter().take(n) {
            let why =
                format!("tracking stopped: over {cap} connections at once (--max-connections)");
            if let Some(slot) = self.table.get_mut(&key) {
                slot.connection
                    .evicted(self.limits.max_connections, &mut self.context);
            }
            self.finish_early(key, Some(why));
        }
    }

    /// Connections being tracked now.
    pub fn live_connections(&self) -> usize {
        self.table.len()
    }

    /// End of all input: finishes every connection (in order of id) and returns the totals.
    pub fn finish_all(mut self) -> Summary {
        for (id, key) in self.keys_by_id() {
            self.context
                .at(Position::step(Position::END, Position::FINAL, id));
            self.finish(key);
        }
        self.context
            .at(Position::step(Position::END, Position::LATE, 0));
        for record in self.context.take_late_records() {
            // Its TCP connection was counted (as not WebSocket) when it finished.
            self.summary.add_late_record(&record);
            self.context.sink.connection(record);
        }
        self.summary.unfiltered_tcp_connections = self.summary.tcp_connections;
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::{InputSummary, LinkType};
    use crate::record::{ConnectionRecord, Event};

    #[derive(Default)]
    struct Records(Vec<ConnectionRecord>);

    impl Sink for Records {
        fn event(&mut self, _event: &Event<'_>) {}
        fn connection(&mut self, record: ConnectionRecord) {
            self.0.push(record);
        }
        fn finish(&mut self, _: &[InputSummary], _: &Summary) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// A raw IPv4 TCP segment from 10.0.0.1:40000 to 10.0.0.2:80.
    fn segment(syn: bool, payload: &[u8]) -> Vec<u8> {
        let mut tcp = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).tcp(
            40000,
            80,
            if syn { 100 } else { 101 },
            65535,
        );
        if syn {
            tcp = tcp.syn();
        } else {
            tcp = tcp.ack(1);
        }
        let mut out = Vec::new();
        tcp.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn sweep_now_expires_idle_connections_without_packets() {
        let mut sink = Records::default();
        let limits = TableLimits {
            idle_timeout: 10.0,
            websocket_idle_timeout: 10.0,
            ..TableLimits::default()
        };
        let cli = <crate::cli::Cli as clap::Parser>::parse_from(["wsprobe", "analyze", "x.pcap"]);
        let crate::cli::Command::Analyze(args) = cli.command else {
            unreachable!()
        };
        let config = crate::run::RunOptions::from_args(&args.report, true)
            .unwrap()
            .connection;
        let mut pipeline = Pipeline::new(&mut sink, config, limits);
        let t0 = 1_700_000_000.0;
        for (i, (syn, payload)) in [(true, &b""[..]), (false, &b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"[..])]
            .into_iter()
            .enumerate()
        {
            let data = segment(syn, payload);
            let packet = Packet {
                ts: t0 + i as f64 * 0.001,
                link: LinkType::RAW,
                data: &data,
                orig_len: data.len() as u32,
            };
            pipeline.packet(&packet).unwrap();
        }
        assert_eq!(pipeline.live_connections(), 1);
        pipeline.sweep_now(t0 + 5.0);
        assert_eq!(pipeline.live_connections(), 1, "not idle long enough yet");
        pipeline.sweep_now(t0 + 11.0);
        assert_eq!(pipeline.live_connections(), 0);
        pipeline.finish_all();
        assert_eq!(sink.0.len(), 1);
    }
}
