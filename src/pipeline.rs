//! The one pass: packets in, connections found and analysed, records and events out to a
//! [`Sink`]. Holds the flow table, which is bounded: finished connections are released at once,
//! idle ones after a timeout, and the table has a cap.

use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::capture::Packet;
use crate::connection::{Connection, ConnectionConfig, Context};
use crate::decode::{Skip, decode};
use crate::report::Sink;
use crate::report::model::{ConnectionRecord, Summary};
use crate::tcp::FlowKey;

/// Limits on the flow table.
#[derive(Debug, Clone, Copy)]
pub struct TableLimits {
    /// Connections tracked at once; past it the longest-idle are finished early.
    pub max_connections: usize,
    /// Seconds without packets after which a connection that carried no WebSocket is dropped.
    pub idle_timeout: f64,
    /// The same for WebSocket connections, which idle for long between messages.
    pub websocket_idle_timeout: f64,
}

impl Default for TableLimits {
    fn default() -> Self {
        TableLimits {
            max_connections: 100_000,
            idle_timeout: 300.0,
            websocket_idle_timeout: 4.0 * 3600.0,
        }
    }
}

/// Packets between idle sweeps.
const SWEEP_EVERY_PACKETS: u64 = 1 << 16;
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
    next_id: u64,
    packets: u64,
    now: f64,
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
            next_id: 0,
            packets: 0,
            now: 0.0,
            summary: Summary::default(),
        }
    }

    /// One captured packet. Returns why it was skipped, if it was.
    pub fn packet(&mut self, packet: &Packet<'_>) -> Result<(), Skip> {
        let segment = decode(packet)?;
        let time = packet.ts;
        self.now = self.now.max(time);
        self.packets += 1;
        if self.packets.is_multiple_of(SWEEP_EVERY_PACKETS) {
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
                if slot.connection.ended() {
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
        let id = self.next_id;
        self.next_id += 1;
        self.summary.tcp_connections += 1;
        let mut connection = Box::new(Connection::new(
            id,
            segment.src,
            segment.dst,
            time,
            &self.context.config,
        ));
        connection.on_segment(&segment, true, time, &mut self.context);
        if connection.ended() {
            let record = connection.finish(&mut self.context);
            self.report(record);
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
        if let Some(slot) = self.table.remove(&key) {
            let record = slot.connection.finish(&mut self.context);
            self.report(record);
        }
    }

    fn report(&mut self, record: Option<ConnectionRecord>) {
        let Some(record) = record else {
            return;
        };
        let s = &mut self.summary;
        s.connections += 1;
        let frames = record.frames.client.total() + record.frames.server.total();
        let websocket = record.handshake.as_ref().is_some_and(|h| h.accepted) || frames > 0;
        s.websocket_connections += u64::from(websocket);
        s.frames += frames;
        s.messages += record.message_counts.client
            + record.message_counts.server
            + [record.frames.client, record.frames.server]
                .iter()
                .map(|f| f.close + f.ping + f.pong)
                .sum::<u64>();
        for (id, n) in &record.diagnostic_counts {
            *s.diagnostics.entry(id.clone()).or_insert(0) += n;
        }
        *s.outcomes
            .entry(record.close.outcome.to_string())
            .or_insert(0) += 1;
        self.context.sink.connection(record);
    }

    /// Finishes connections idle past their timeout and forgets old tombstones.
    fn sweep(&mut self) {
        let now = self.now;
        let limits = self.limits;
        let expired: Vec<FlowKey> = self
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
            .map(|(key, _)| *key)
            .collect();
        for key in expired {
            self.finish(key);
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
        by_age.sort_by(|x, y| x.0.total_cmp(&y.0));
        let n = (by_age.len() / 10).max(1);
        for (_, key) in by_age.into_iter().take(n) {
            if let Some(slot) = self.table.get_mut(&key) {
                slot.connection
                    .evicted(self.limits.max_connections, &mut self.context);
            }
            self.finish(key);
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
        self.summary
    }
}
