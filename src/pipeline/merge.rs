//! The two ends of a sharded run's output: each thread's [`ShardSink`] records what its
//! connections report, tagged with the [`Position`] it came from; the [`Merge`] puts the
//! threads' streams back in single-threaded order, renumbers the connections as a single
//! thread would have, and passes everything to the real sink.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::capture::InputSummary;
use crate::connection::SharedTargets;
use crate::diag::{Diagnostic, Side};
use crate::record::{
    Address, ConnectionRecord, Event, FrameRecord, HandshakeRecord, MessageRecord, OtherConnection,
    Position, Sink, Summary,
};

/// Refused plain exchanges held until the end of the capture, across threads.
const MAX_WAITING_EXCHANGES: usize = crate::connection::MAX_WAITING_EXCHANGES;

/// An [`Event`] that owns what it refers to, to cross threads.
#[derive(Debug)]
pub enum OwnedEvent {
    ConnectionSeen {
        id: u64,
        time: f64,
        client: Address,
        server: Address,
    },
    Handshake {
        id: u64,
        handshake: Box<HandshakeRecord>,
    },
    Message {
        id: u64,
        message: Box<MessageRecord>,
    },
    Frame {
        id: u64,
        frame: Box<FrameRecord>,
    },
    Diagnostic {
        id: u64,
        diagnostic: Box<Diagnostic>,
    },
    Close {
        id: u64,
        time: f64,
        from: Side,
        code: u16,
        reason: String,
    },
}

impl OwnedEvent {
    fn of(event: &Event<'_>) -> OwnedEvent {
        match *event {
            Event::ConnectionSeen {
                id,
                time,
                client,
                server,
            } => OwnedEvent::ConnectionSeen {
                id,
                time,
                client: client.clone(),
                server: server.clone(),
            },
            Event::Handshake { id, handshake } => OwnedEvent::Handshake {
                id,
                handshake: Box::new(handshake.clone()),
            },
            Event::Message { id, message } => OwnedEvent::Message {
                id,
                message: Box::new(message.clone()),
            },
            Event::Frame { id, frame } => OwnedEvent::Frame {
                id,
                frame: Box::new(frame.clone()),
            },
            Event::Diagnostic { id, diagnostic } => OwnedEvent::Diagnostic {
                id,
                diagnostic: Box::new(diagnostic.clone()),
            },
            Event::Close {
                id,
                time,
                from,
                code,
                reason,
            } => OwnedEvent::Close {
                id,
                time,
                from,
                code,
                reason: reason.to_string(),
            },
        }
    }

    fn id_mut(&mut self) -> &mut u64 {
        match self {
            OwnedEvent::ConnectionSeen { id, .. }
            | OwnedEvent::Handshake { id, .. }
            | OwnedEvent::Message { id, .. }
            | OwnedEvent::Frame { id, .. }
            | OwnedEvent::Diagnostic { id, .. }
            | OwnedEvent::Close { id, .. } => id,
        }
    }

    fn as_event(&self) -> Event<'_> {
        match self {
            OwnedEvent::ConnectionSeen {
                id,
                time,
                client,
                server,
            } => Event::ConnectionSeen {
                id: *id,
                time: *time,
                client,
                server,
            },
            OwnedEvent::Handshake { id, handshake } => Event::Handshake { id: *id, handshake },
            OwnedEvent::Message { id, message } => Event::Message { id: *id, message },
            OwnedEvent::Frame { id, frame } => Event::Frame { id: *id, frame },
            OwnedEvent::Diagnostic { id, diagnostic } => Event::Diagnostic {
                id: *id,
                diagnostic,
            },
            OwnedEvent::Close {
                id,
                time,
                from,
                code,
                reason,
            } => Event::Close {
                id: *id,
                time: *time,
                from: *from,
                code: *code,
                reason,
            },
        }
    }
}

/// One thing a thread reported.
#[derive(Debug)]
pub enum Item {
    /// A (provisional) connection number was handed out.
    Allocated(u64),
    Event(OwnedEvent),
    Connection(Box<ConnectionRecord>),
    Other(Box<OtherConnection>),
    /// A refused plain exchange's record, for the end (with its target).
    Waiting(String, Box<ConnectionRecord>),
}

/// Items in the order a thread reported them, each with where it came from.
pub type Items = Vec<(Position, Item)>;

/// The sink of one thread of a sharded run: keeps what it is given, tagged, for the thread to
/// send to the merge (it shares the list with the thread, which cannot reach the sink while
/// the pipeline holds it).
pub struct ShardSink {
    at: Position,
    items: Rc<RefCell<Items>>,
}

impl ShardSink {
    /// A sink and the list it fills.
    pub fn new() -> (ShardSink, Rc<RefCell<Items>>) {
        let items = Rc::new(RefCell::new(Vec::new()));
        (
            ShardSink {
                at: Position::default(),
                items: items.clone(),
            },
            items,
        )
    }

    fn push(&mut self, item: Item) {
        self.items.borrow_mut().push((self.at, item));
    }
}

impl Sink for ShardSink {
    fn event(&mut self, event: &Event<'_>) {
        self.push(Item::Event(OwnedEvent::of(event)));
    }

    fn connection(&mut self, record: ConnectionRecord) {
        self.push(Item::Connection(Box::new(record)));
    }

    fn other_connection(&mut self, connection: &OtherConnection) {
        self.push(Item::Other(Box::new(connection.clone())));
    }

    fn origin(&mut self, position: Position) {
        self.at = position;
    }

    fn id_allocated(&mut self, id: u64) {
        self.push(Item::Allocated(id));
    }

    fn waiting(&mut self, target: String, record: ConnectionRecord) {
        self.push(Item::Waiting(target, Box::new(record)));
    }

    fn finish(&mut self, _: &[InputSummary], _: &Summary) -> std::io::Result<()> {
        Ok(())
    }
}

/// What one thread sent: items, and how far its items are complete.
pub struct Batch {
    /// The thread's number.
    pub worker: usize,
    /// Its items, in its order.
    pub items: Items,
    /// Every item of this thread before this position has been sent.
    pub complete_before: Position,
}

/// Puts the threads' items back in single-threaded order and hands them to `sink`.
pub struct Merge<'s> {
    sink: &'s mut dyn Sink,
    queues: Vec<std::collections::VecDeque<(Position, Item)>>,
    complete_before: Vec<Position>,
    /// (thread, provisional number) -> the single-threaded number.
    ids: HashMap<(usize, u64), u64, RandomState>,
    next_id: u64,
    waiting: Vec<(String, ConnectionRecord)>,
    summary: Summary,
}

impl<'s> Merge<'s> {
    /// A merge of `workers` threads into `sink`.
    pub fn new(sink: &'s mut dyn Sink, workers: usize) -> Self {
        Merge {
            sink,
            queues: (0..workers).map(|_| Default::default()).collect(),
            complete_before: vec![Position::default(); workers],
            ids: HashMap::default(),
            next_id: 0,
            waiting: Vec::new(),
            summary: Summary::default(),
        }
    }

    /// Takes a thread's batch and reports every item now known to come next.
    pub fn add(&mut self, batch: Batch) {
        self.queues[batch.worker].extend(batch.items);
        self.complete_before[batch.worker] = batch.complete_before;
        let Some(&limit) = self.complete_before.iter().min() else {
            return;
        };
        loop {
            // The earliest head; ties (none are expected) go to the lower thread.
            let next = self
                .queues
                .iter()
                .enumerate()
                .filter_map(|(w, q)| q.front().map(|(at, _)| (*at, w)))
                .min();
            match next {
                Some((at, worker)) if at < limit => {
                    let (_, item) = self.queues[worker].pop_front().expect("bug: a head");
                    self.report(worker, item);
                }
                _ => break,
            }
        }
    }

    fn renumber(&mut self, worker: usize, id: &mut u64) {
        match self.ids.get(&(worker, *id)) {
            Some(&single) => *id = single,
            None => debug_assert!(
                false,
                "bug: connection {id} of thread {worker} not allocated"
            ),
        }
    }

    fn report(&mut self, worker: usize, item: Item) {
        match item {
            Item::Allocated(id) => {
                self.ids.insert((worker, id), self.next_id);
                self.next_id += 1;
            }
            Item::Event(mut event) => {
                self.renumber(worker, event.id_mut());
                self.sink.event(&event.as_event());
            }
            Item::Connection(mut record) => {
                let provisional = record.id;
                self.renumber(worker, &mut record.id);
                self.ids.remove(&(worker, provisional));
                self.summary.add_connection(&record);
                self.sink.connection(*record);
            }
            Item::Other(mut other) => {
                let provisional = other.id;
                self.renumber(worker, &mut other.id);
                self.ids.remove(&(worker, provisional));
                self.summary.add_other(&other);
                self.sink.other_connection(&other);
            }
            Item::Waiting(target, mut record) => {
                self.renumber(worker, &mut record.id);
                if self.waiting.len() < MAX_WAITING_EXCHANGES {
                    self.waiting.push((target, *record));
                }
            }
        }
    }

    /// Every thread is done: reports the waiting records whose endpoint was upgraded, and
    /// returns the totals.
    pub fn finish(mut self, targets: &Arc<SharedTargets>) -> Summary {
        debug_assert!(self.queues.iter().all(|q| q.is_empty()));
        for (target, record) in std::mem::take(&mut self.waiting) {
            if targets.upgraded_by_the_end(&target) {
                self.summary.add_late_record(&record);
                self.sink.connection(record);
            }
        }
        self.summary.unfiltered_tcp_connections = self.summary.tcp_connections;
        self.summary
    }
}
