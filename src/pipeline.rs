//! The one pass: packets in, connections found and analysed, records and events out to a
//! [`Sink`]. Holds the flow table, which is bounded: finished connections are released at once,
//! idle ones after a timeout, and the table has a cap.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::capture::Packet;
use crate::connection::{Connection, ConnectionConfig, Context, Finished};
use crate::decode::{Skip, decode};
use crate::record::Sink;
use crate::record::Summary;
use crate::tcp::FlowKey;

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
    packets: u64,
    now: f64,
    last_sweep: f64,
    summary: Summary,
}

impl<'s> Pipeline<'s> {
    /// A pipeline writing to `sink`.
    pub fn new(sink: &'s mut dyn Sink, config: ConnectionConfig, limits: TableLimits) -> Self {
        Pipeline {
            table: HashMap::default(),
            tombstones: HashMap::default(),
            context: Context::new(sink, config),
            limits,
            packets: 0,
            now: 0.0,
            last_sweep: f64::NEG_INFINITY,
            summary: Summary::default(),
        }
    }

    /// TLS keys (key logs, pcapng Decryption Secrets Blocks) for the connections to come.
    pub fn set_keys(&mut self, keys: std::sync::Arc<crate::stream::tls::KeyStore>) {
        self.context.set_keys(keys);
    }

    /// One captured packet. Returns why it was skipped, if it was.
    pub fn packet(&mut self, packet: &Packet<'_>) -> Result<(), Skip> {
        let segment = decode(packet)?;
        let time = packet.ts;
        self.now = self.now.max(time);
        self.packets += 1;
        if self.packets.is_multiple_of(SWEEP_EVERY_PACKETS)
            || self.now - self.last_sweep >= SWEEP_EVERY_SECONDS
        {
            self.last_sweep = self.now;
            self.sweep();
        }
        let (key, src_is_lo) = FlowKey::new(&segment.src, &segment.dst);
        let fresh_syn = segment.syn && !segment.ack_flag;
        if let Some(slot) = self.table.get_mut(&key) {
            // A new SYN on a finished (or aborted) 4-tuple starts a new connection.
            if !(fresh_syn && slot.connection.closing()) {
                let from_a = src_is_lo == slot.a_is_lo;
                slot.connection
                    .on_segment(&segment, from_a, time, &mut self.context);
                let ended = slot.connection.ended();
                self.report_finished();
                if ended {
                    self.finish(key);
                    self.tombstones.insert(key, time);
                }
                return Ok(());
            }
            self.finish(key);
        }
        if !fresh_syn && segment.payload.is_empty() {
            return Ok(()); // pure ACKs and stray FIN/RST start nothing
        }
        if !fresh_syn && self.tombstones.contains_key(&key) {
            return Ok(());
        }
        self.tombstones.remove(&key);
        if self.table.len() >= self.limits.max_connections {
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
        connection.on_segment(&segment, true, time, &mut self.context);
        self.report_finished();
        if connection.ended() {
            let finished = connection.finish_any(None, &mut self.context);
            self.report_finished();
            self.report(finished);
            self.tombstones.insert(key, time);
        } else {
            self.table.insert(
                key,
                Slot {
                    connection,
                    a_is_lo: src_is_lo,
                },
            );
        }
        Ok(())
    }

    fn finish(&mut self, key: FlowKey) {
        self.finish_early(key, None);
    }

    /// Finishes a connection; `stopped` explains why when TCP has not ended.
    fn finish_early(&mut self, key: FlowKey, stopped: Option<String>) {
        if let Some(slot) = self.table.remove(&key) {
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
    fn keys_by_id(&self) -> Vec<FlowKey> {
        let mut keys: Vec<(u64, FlowKey)> = self
            .table
            .iter()
            .map(|(key, slot)| (slot.connection.id(), *key))
            .collect();
        keys.sort_unstable_by_key(|(id, _)| *id);
        keys.into_iter().map(|(_, key)| key).collect()
    }

    /// Finishes connections idle past their timeout and forgets old tombstones.
    fn sweep(&mut self) {
        let now = self.now;
        let limits = self.limits;
        // Quiet connections stop waiting for late data (cheap when nothing is held).
        for key in self.keys_by_id() {
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
        for (_, key, idle) in expired {
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
        for (_, key) in lingering {
            self.finish(key);
            self.tombstones.insert(key, now);
        }
        let mut idle: Vec<(f64, FlowKey, u64)> = Vec::new();
        let mut quiet_ones: Vec<(f64, FlowKey)> = Vec::new();
        let pressure = self.context.live_decoders() > PACK_DECODERS_ABOVE;
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
                    idle.push((quiet, *key, slot.connection.id()));
                }
            }
        }
        if pressure {
            // Longest idle first; ties by key, so that runs are alike.
            quiet_ones.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for (_, key) in quiet_ones {
                if self.context.live_decoders() <= PACK_DECODERS_ABOVE / 2 {
                    break;
                }
                if let Some(slot) = self.table.get_mut(&key) {
                    slot.connection.hibernate(true);
                }
            }
        }
        let cap = limits.max_idle_connections;
        if idle.len() > cap {
            // Longest idle first.
            idle.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)));
            let excess = idle.len() - cap;
            for (quiet, key, _) in idle.into_iter().take(excess) {
                let why = format!(
                    "no packets for {quiet:.0} s, tracking stopped: more than {cap} idle connections (--max-idle-connections)"
                );
                self.finish_early(key, Some(why));
            }
        }
        self.tombstones
            .retain(|_, closed| now - *closed < TOMBSTONE_SECONDS);
    }

    fn evict_idlest(&mut self) {
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
        let mut keys: Vec<(u64, FlowKey)> = Vec::with_capacity(self.table.len());
        for (key, slot) in &self.table {
            keys.push((slot.connection.id(), *key));
        }
        keys.sort_unstable_by_key(|(id, _)| *id);
        for (_, key) in keys {
            self.finish(key);
        }
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
