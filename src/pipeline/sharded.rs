//! `--threads N`: the one pass on several cores. The reader decodes each packet once and
//! routes it, by connection, to the worker thread that owns the connection; each worker runs
//! its own [`Pipeline`] over its connections; the [`Merge`] puts their output back in the
//! order a single thread gives, so that the report is the same bytes.
//!
//! What a single thread decides by looking across connections is decided here in that same
//! order:
//! - the idle sweep runs before the same packets on every worker (the reader keeps the
//!   [`SweepClock`]), and the cap on idle connections is applied by the reader to every
//!   worker's idle connections together;
//! - connection numbers are provisional on the workers and renumbered by the merge;
//! - WebSocket endpoints seen upgraded ([`SharedTargets`]) and TLS sessions learned from a
//!   full handshake are shared in order ([`crate::record::order`]);
//! - pcapng key blocks found after packets wait until the workers have done those packets.
//!
//! The safety caps `--max-connections`, `--max-inflaters` and `--max-listed-bytes` are shared
//! budgets ([`SharedBudgets`]): they bound memory across the run, but once one is reached,
//! which connection or message it stops depends on the threads' timing, so the report can
//! differ from a single-threaded one; the run says so on stderr.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use super::merge::{Batch, Merge, ShardSink};
use super::{PacketInput, Pipeline, SweepClock, TableLimits, idle_over_cap};
use crate::capture::Packet;
use crate::capture::file::{MappedFile, release_behind};
use crate::connection::{ConnectionConfig, SharedBudgets, SharedTargets};
use crate::decode::{Endpoint, Segment, Skip, decode};
use crate::record::order::{self, RunOrder};
use crate::record::{Position, Sink, Summary};
use crate::stream::tls::KeyStore;
use crate::tcp::FlowKey;

/// Packets the reader routes between two deliveries to every worker: small enough that the
/// merge is not held up long by a worker that receives nothing, large enough that the
/// channels are not the cost.
const ROUND_PACKETS: usize = 512;
/// Payload bytes the reader routes before it delivers early (large packets: what stays mapped
/// behind the reader is bounded in bytes, not only in packets).
const ROUND_BYTES: usize = 1 << 20;
/// Messages queued per worker before the reader waits for it.
const QUEUED_ROUNDS: usize = 8;
/// Bytes of the mapped file between two hand-backs of its pages: a hand-back costs a TLB
/// shoot-down on every core (~80 µs measured).
const RELEASE_EVERY: usize = 8 << 20;

/// A decoded segment without its payload, which is in the batch's bytes.
struct Header {
    seq: u64,
    time: f64,
    src: Endpoint,
    dst: Endpoint,
    tcp_seq: u32,
    ack: u32,
    flags: u8,
    payload: std::ops::Range<usize>,
}

const ACK: u8 = 1;
const SYN: u8 = 2;
const FIN: u8 = 4;
const RST: u8 = 8;

/// The payload is a range of the mapped file, not of `bytes`.
const MAPPED: u8 = 16;

/// A batch of packets for one worker. Payloads of a memory-mapped file are referred to by
/// their place in the map (which the batch keeps alive); others are copied into `bytes`.
/// Copying every payload was a third of the reader's time on large messages.
#[derive(Default)]
struct Packets {
    headers: Vec<Header>,
    bytes: Vec<u8>,
    map: Option<MappedFile>,
}

impl Packets {
    fn push(&mut self, seq: u64, time: f64, s: &Segment<'_>, map: Option<&MappedFile>) {
        let mut flags = (u8::from(s.ack_flag) * ACK)
            | (u8::from(s.syn) * SYN)
            | (u8::from(s.fin) * FIN)
            | (u8::from(s.rst) * RST);
        // One map per batch: a batch that spans two files copies the second one's payloads.
        let in_map = map
            .filter(|map| self.map.as_ref().is_none_or(|own| Arc::ptr_eq(own, map)))
            .and_then(|map| {
                let start = (s.payload.as_ptr() as usize).checked_sub(map.as_ptr() as usize)?;
                (start + s.payload.len() <= map.len()).then_some((map, start))
            });
        let payload = match in_map {
            Some((map, start)) => {
                if self.map.is_none() {
                    self.map = Some(map.clone());
                }
                flags |= MAPPED;
                start..start + s.payload.len()
            }
            None => {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(s.payload);
                start..self.bytes.len()
            }
        };
        self.headers.push(Header {
            seq,
            time,
            src: s.src,
            dst: s.dst,
            tcp_seq: s.seq,
            ack: s.ack,
            flags,
            payload,
        });
    }

    fn segment(&self, h: &Header) -> Segment<'_> {
        let payload = match &self.map {
            Some(map) if h.flags & MAPPED != 0 => &map[h.payload.clone()],
            _ => &self.bytes[h.payload.clone()],
        };
        Segment {
            src: h.src,
            dst: h.dst,
            seq: h.tcp_seq,
            ack: h.ack,
            ack_flag: h.flags & ACK != 0,
            syn: h.flags & SYN != 0,
            fin: h.flags & FIN != 0,
            rst: h.flags & RST != 0,
            payload,
        }
    }

    /// Empties the batch for reuse (and lets go of the map).
    fn clear(&mut self) {
        self.headers.clear();
        self.bytes.clear();
        self.map = None;
    }
}

/// What the reader tells a worker, in packet order.
enum ToWorker {
    /// Packets; every packet numbered below `complete_before` has been routed.
    Packets {
        packets: Packets,
        complete_before: u64,
    },
    /// The sweep before packet `seq`, at capture time `now`: reply with the idle connections.
    Sweep { seq: u64, now: f64 },
    /// Stop these idle connections (rank across workers, id), over `--max-idle-connections`.
    StopIdle { seq: u64, ranked: Vec<(u64, u64)> },
    /// Reply once everything before has been done.
    Barrier,
}

/// A worker's answer to the reader.
enum Reply {
    Idle {
        worker: usize,
        idle: Vec<(f64, u64)>,
    },
    Barrier,
}

/// The reader's side: routes decoded packets to the workers and runs the sweeps.
pub struct Router {
    workers: Vec<SyncSender<ToWorker>>,
    replies: Receiver<Reply>,
    pending: Vec<Packets>,
    /// Batches the workers are done with, to fill again: fresh buffers each round touched
    /// fresh memory (the kernel zeroing pages was a fifth of the reader's time).
    recycled: Receiver<Packets>,
    routed: usize,
    clock: SweepClock,
    max_idle_connections: usize,
    route: foldhash::fast::FixedState,
    /// The file being read, when it is memory-mapped.
    map: Option<MappedFile>,
    /// Payload bytes routed since the last delivery.
    routed_bytes: usize,
    /// Pages of the map the workers are done with, handed back from here.
    pages: PagesDone,
}

/// Hands back the mapped file's pages once every worker has read them. The reader can tell
/// without asking: a worker's queue holds at most [`QUEUED_ROUNDS`] messages, so once a
/// delivery is queued, every worker has done all but its last `QUEUED_ROUNDS + 1` batches.
/// Pages handed back too early would only be read in again from the page cache (a fault
/// per page, which in the reader's own hand-back, ahead of the workers, cost a tenth of the
/// time on large messages); never handed back, they would stay resident to the end.
#[derive(Default)]
struct PagesDone {
    /// Where in the map each of the last deliveries ended, oldest first.
    ends: std::collections::VecDeque<usize>,
    /// The end, in the map, of the last packet routed.
    read_to: usize,
    released: usize,
}

impl PagesDone {
    /// A delivery of everything read up to `read_to` was queued to every worker.
    fn delivered(&mut self, map: Option<&MappedFile>) {
        let Some(map) = map else {
            return;
        };
        self.ends.push_back(self.read_to);
        if self.ends.len() <= QUEUED_ROUNDS + 1 {
            return;
        }
        let done = self.ends.pop_front().unwrap_or(0);
        release_behind(map, &mut self.released, done, RELEASE_EVERY);
    }
}

impl Router {
    fn worker_of(&self, segment: &Segment<'_>) -> usize {
        use std::hash::BuildHasher;
        let (key, _) = FlowKey::new(&segment.src, &segment.dst);
        (self.route.hash_one(key) % self.workers.len() as u64) as usize
    }

    /// Sends every worker its packets so far (also none: the merge waits for the slowest).
    fn deliver(&mut self, complete_before: u64) {
        self.routed = 0;
        self.routed_bytes = 0;
        for (worker, sender) in self.workers.iter().enumerate() {
            let empty = self.recycled.try_recv().unwrap_or_default();
            let packets = std::mem::replace(&mut self.pending[worker], empty);
            // A worker that stopped (it panicked) shows at the join.
            let _ = sender.send(ToWorker::Packets {
                packets,
                complete_before,
            });
        }
        self.pages.delivered(self.map.as_ref());
    }

    fn broadcast(&self, message: impl Fn() -> ToWorker) {
        for sender in &self.workers {
            let _ = sender.send(message());
        }
    }

    /// The sweep before packet `seq`: every worker sweeps; the longest idle over the cap, across
    /// workers, are stopped.
    fn sweep(&mut self, seq: u64, now: f64) {
        self.deliver(seq);
        self.broadcast(|| ToWorker::Sweep { seq, now });
        let mut idle: Vec<(f64, u64, usize)> = Vec::new();
        for _ in 0..self.workers.len() {
            match self.replies.recv() {
                Ok(Reply::Idle { worker, idle: list }) => {
                    idle.extend(list.into_iter().map(|(quiet, id)| (quiet, id, worker)));
                }
                Ok(Reply::Barrier) => debug_assert!(false, "bug: a barrier reply in a sweep"),
                Err(_) => return, // a worker stopped: the join reports it
            }
        }
        let stop = idle_over_cap(&mut idle, self.max_idle_connections);
        let mut ranked: Vec<Vec<(u64, u64)>> = vec![Vec::new(); self.workers.len()];
        for (rank, (_, id, worker)) in idle.into_iter().take(stop).enumerate() {
            ranked[worker].push((rank as u64, id));
        }
        for (worker, ranked) in ranked.into_iter().enumerate() {
            if !ranked.is_empty() {
                let _ = self.workers[worker].send(ToWorker::StopIdle { seq, ranked });
            }
        }
    }

    /// Waits until every worker has done every packet routed so far.
    fn barrier(&mut self) {
        self.deliver(self.clock.packets() + 1);
        self.broadcast(|| ToWorker::Barrier);
        for _ in 0..self.workers.len() {
            if self.replies.recv().is_err() {
                return;
            }
        }
    }
}

impl PacketInput for Router {
    fn packet(&mut self, packet: &Packet<'_>) -> Result<(), Skip> {
        let segment = decode(packet)?;
        if let Some(now) = self.clock.on_packet(packet.ts) {
            self.sweep(self.clock.packets(), now);
        }
        let seq = self.clock.packets();
        let worker = self.worker_of(&segment);
        self.pending[worker].push(seq, packet.ts, &segment, self.map.as_ref());
        self.routed += 1;
        self.routed_bytes += segment.payload.len();
        if let Some(map) = &self.map
            && let Some(end) = (packet.data.as_ptr() as usize + packet.data.len())
                .checked_sub(map.as_ptr() as usize)
            && end <= map.len()
        {
            self.pages.read_to = end;
        }
        if self.routed >= ROUND_PACKETS || self.routed_bytes >= ROUND_BYTES {
            self.deliver(seq + 1);
        }
        Ok(())
    }

    fn before_keys(&mut self) {
        if self.clock.packets() > 0 {
            self.barrier();
        }
    }

    fn mapped(&mut self, map: &MappedFile) -> bool {
        self.map = Some(map.clone());
        self.pages = PagesDone::default();
        false
    }
}

/// A worker: owns the connections routed to it.
fn work(
    worker: usize,
    input: Receiver<ToWorker>,
    replies: Sender<Reply>,
    output: SyncSender<Batch>,
    recycle: Sender<Packets>,
    setup: &Setup,
) {
    order::enter(setup.order.clone(), worker);
    let (mut sink, items) = ShardSink::new();
    let mut pipeline = Pipeline::new(&mut sink, setup.config, setup.limits);
    pipeline.set_keys(setup.keys.clone());
    pipeline.shard(setup.targets.clone(), worker, &setup.budgets);
    let send = |complete_before: Position| {
        let items = std::mem::take(&mut *items.borrow_mut());
        let _ = output.send(Batch {
            worker,
            items,
            complete_before,
        });
    };
    while let Ok(message) = input.recv() {
        match message {
            ToWorker::Packets {
                mut packets,
                complete_before,
            } => {
                // A stop for the last sweep's idle connections would have come before packets.
                pipeline.forget_idle();
                for header in &packets.headers {
                    pipeline.at(Position::packet(header.seq));
                    pipeline.segment(&packets.segment(header), header.time);
                }
                packets.clear();
                let _ = recycle.send(packets);
                let next = Position::step(complete_before, Position::TICK, 0);
                pipeline.at(next);
                pipeline.publish();
                send(next);
            }
            ToWorker::Sweep { seq, now } => {
                let idle = pipeline
                    .sweep_local(seq, now)
                    .iter()
                    .map(|i| (i.quiet, i.id))
                    .collect();
                pipeline.publish();
                let _ = replies.send(Reply::Idle { worker, idle });
                send(Position::step(seq, Position::IDLE_CAP, 0));
            }
            ToWorker::StopIdle { seq, ranked } => {
                pipeline.stop_idle_ids(seq, &ranked);
                let next = Position::packet(seq);
                pipeline.at(next);
                pipeline.publish();
                send(next);
            }
            ToWorker::Barrier => {
                let _ = replies.send(Reply::Barrier);
            }
        }
    }
    pipeline.finish_all();
    // A finished worker is past every position: no other worker waits for it any more.
    setup.order.done(worker);
    send(Position::step(u64::MAX, u8::MAX, u64::MAX));
}

/// What every worker starts from.
struct Setup {
    config: ConnectionConfig,
    limits: TableLimits,
    keys: Arc<KeyStore>,
    targets: Arc<SharedTargets>,
    order: Arc<RunOrder>,
    budgets: SharedBudgets,
}

/// Runs `read` (which feeds the [`Router`] it is given) with `workers` worker threads, merging
/// their output into `sink`. Returns what `read` returned and the totals.
pub fn run<R: Send>(
    sink: &mut dyn Sink,
    config: ConnectionConfig,
    limits: TableLimits,
    keys: Arc<KeyStore>,
    workers: usize,
    read: impl FnOnce(&mut Router) -> R + Send,
) -> (R, Summary) {
    let workers = workers.clamp(1, crate::connection::MAX_SHARDS as usize);
    let setup = Setup {
        config,
        limits,
        keys,
        targets: SharedTargets::new(),
        order: RunOrder::new(workers),
        budgets: SharedBudgets::new(&config),
    };
    let (batches_in, batches) = sync_channel::<Batch>(workers * QUEUED_ROUNDS * 2);
    let (replies_in, replies) = channel::<Reply>();
    let (recycle, recycled) = channel::<Packets>();
    let mut inputs = Vec::new();
    let mut receivers = Vec::new();
    for _ in 0..workers {
        let (tx, rx) = sync_channel::<ToWorker>(QUEUED_ROUNDS);
        inputs.push(tx);
        receivers.push(rx);
    }
    let mut router = Router {
        workers: inputs,
        replies,
        pending: (0..workers).map(|_| Packets::default()).collect(),
        recycled,
        routed: 0,
        clock: SweepClock::default(),
        max_idle_connections: limits.max_idle_connections,
        route: foldhash::fast::FixedState::with_seed(0x7773_7072_6f62_6531),
        map: None,
        routed_bytes: 0,
        pages: PagesDone::default(),
    };
    let mut merge = Merge::new(sink, workers);
    let read_result = std::thread::scope(|scope| {
        let setup = &setup;
        for (worker, input) in receivers.into_iter().enumerate() {
            let replies = replies_in.clone();
            let output = batches_in.clone();
            let recycle = recycle.clone();
            std::thread::Builder::new()
                .name(format!("wsprobe-worker-{worker}"))
                .spawn_scoped(scope, move || {
                    work(worker, input, replies, output, recycle, setup)
                })
                .expect("cannot start a worker thread");
        }
        drop(batches_in);
        drop(replies_in);
        drop(recycle);
        let reader = std::thread::Builder::new()
            .name("wsprobe-reader".into())
            .spawn_scoped(scope, move || {
                let result = read(&mut router);
                // Every worker does all its packets before any finishes its connections, as
                // a single thread does (finishing gives back budgets that others would spend).
                // Dropping the router then ends the workers.
                router.barrier();
                result
            })
            .expect("cannot start the reader thread");
        // The merge runs here, on the thread that owns the reporter.
        while let Ok(batch) = batches.recv() {
            merge.add(batch);
        }
        match reader.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let summary = merge.finish(&setup.targets);
    let caps = setup.budgets.reached();
    if !caps.is_empty() {
        eprintln!(
            "wsprobe: {} reached with {workers} threads: which connections or messages it stopped can differ from a --threads 1 run (the threads share the cap, in their own time)",
            caps.join(", ")
        );
    }
    (read_result, summary)
}
