//! WebSocket endpoints (`host/path`) seen upgraded, and refused plain requests to endpoints not
//! (yet) known as such: a request that another connection's upgrade shows to be for a
//! WebSocket endpoint is reported even when it came earlier in the capture.
//!
//! The one piece of connection analysis that looks across connections. In a sharded run the
//! connections live on several threads, so the endpoints are kept in one shared table, each
//! with the [`Position`] at which it was first upgraded, and a look-up at position P waits
//! until every other thread has done everything a single thread would have done before P.
//! It then sees exactly the endpoints a single-threaded run would have seen.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::record::{ConnectionRecord, Position, Sink};

/// Endpoints remembered as upgraded: far more than a capture's distinct WebSocket URLs.
const MAX_UPGRADED_TARGETS: usize = 65_536;
/// Refused plain exchanges held until the end of the capture (each a small record).
pub(crate) const MAX_WAITING_EXCHANGES: usize = 4096;

/// The endpoint table of a single-threaded run, or a thread's view of a sharded run's.
pub(super) enum Targets {
    Local {
        upgraded: HashSet<String>,
        /// Records built for refused plain exchanges, with their target; reported at the end
        /// if the target was upgraded by then.
        waiting: Vec<(String, ConnectionRecord)>,
    },
    Shared {
        shared: Arc<SharedTargets>,
        /// This thread's number in `shared.progress`.
        worker: usize,
    },
}

impl Default for Targets {
    fn default() -> Self {
        Targets::Local {
            upgraded: HashSet::new(),
            waiting: Vec::new(),
        }
    }
}

impl Targets {
    /// Has another connection upgraded `target` before `at`?
    pub(super) fn upgraded(&self, target: &str, at: Position) -> bool {
        match self {
            Targets::Local { upgraded, .. } => upgraded.contains(target),
            Targets::Shared { shared, worker } => {
                // Said first: the others may be waiting for this thread, which is further on
                // than it last said.
                shared.progress[*worker].publish(at);
                shared.wait_for_others(*worker, at);
                let table = shared.upgraded.lock().unwrap_or_else(|e| e.into_inner());
                table.get(target).is_some_and(|first| *first < at)
            }
        }
    }

    pub(super) fn note_upgraded(&mut self, target: String, at: Position) {
        match self {
            Targets::Local { upgraded, .. } => {
                if upgraded.len() < MAX_UPGRADED_TARGETS {
                    upgraded.insert(target);
                }
            }
            Targets::Shared { shared, .. } => {
                let mut table = shared.upgraded.lock().unwrap_or_else(|e| e.into_inner());
                let full = table.len() >= MAX_UPGRADED_TARGETS;
                match table.get_mut(&target) {
                    Some(first) => *first = (*first).min(at),
                    None if !full => {
                        table.insert(target, at);
                    }
                    None => {}
                }
            }
        }
    }

    /// Can one more refused exchange wait for the end? (A sharded run counts them at the
    /// merge, which keeps the first [`MAX_WAITING_EXCHANGES`] in run order.)
    pub(super) fn has_room(&self) -> bool {
        match self {
            Targets::Local { waiting, .. } => waiting.len() < MAX_WAITING_EXCHANGES,
            Targets::Shared { .. } => true,
        }
    }

    pub(super) fn keep(&mut self, target: String, record: ConnectionRecord, sink: &mut dyn Sink) {
        match self {
            Targets::Local { waiting, .. } => waiting.push((target, record)),
            Targets::Shared { .. } => sink.waiting(target, record),
        }
    }

    /// End of all input (single-threaded): the waiting records whose target was upgraded.
    pub(super) fn take_late_records(&mut self) -> Vec<ConnectionRecord> {
        match std::mem::take(self) {
            Targets::Local { upgraded, waiting } => waiting
                .into_iter()
                .filter(|(target, _)| upgraded.contains(target))
                .map(|(_, record)| record)
                .collect(),
            shared @ Targets::Shared { .. } => {
                *self = shared;
                Vec::new()
            }
        }
    }

    /// Announces that this thread is at `at`: it has done everything before it.
    pub(super) fn at(&self, at: Position) {
        if let Targets::Shared { shared, worker } = self {
            shared.progress[*worker].publish(at);
        }
    }
}

/// The endpoint table shared by a sharded run's threads, and how far each thread has got.
pub struct SharedTargets {
    upgraded: Mutex<HashMap<String, Position>>,
    progress: Vec<Progress>,
}

impl SharedTargets {
    /// A table for `workers` threads.
    pub fn new(workers: usize) -> Arc<SharedTargets> {
        Arc::new(SharedTargets {
            upgraded: Mutex::new(HashMap::new()),
            progress: (0..workers).map(|_| Progress::default()).collect(),
        })
    }

    /// `worker` has finished: no one waits for it any more.
    pub fn done(&self, worker: usize) {
        let progress = &self.progress[worker];
        progress.fine.store(u64::MAX, Ordering::Release);
        progress.coarse.store(u64::MAX, Ordering::Release);
    }

    /// Was `target` upgraded anywhere in the run? (At the end, when every thread is done.)
    pub fn upgraded_by_the_end(&self, target: &str) -> bool {
        let table = self.upgraded.lock().unwrap_or_else(|e| e.into_inner());
        table.contains_key(target)
    }

    /// Waits until every thread but `worker` is at `at` or past it. Cannot deadlock: a thread
    /// says where it is before it waits, and the thread furthest behind never waits for the
    /// others (positions differ between threads: packets belong to one, and within a stage
    /// the keys are distinct connections); a thread that is not waiting says where it is
    /// after each batch.
    fn wait_for_others(&self, worker: usize, at: Position) {
        let mut spins = 0u32;
        for (other, progress) in self.progress.iter().enumerate() {
            if other == worker {
                continue;
            }
            while !progress.reached(at) {
                spins += 1;
                if spins < 64 {
                    std::hint::spin_loop();
                } else if spins < 256 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
        }
    }
}

/// A thread's position as two atomics: the packet and stage (`coarse`), then the key within
/// the stage (`fine`). Read coarse first: a stale `fine` can only make a reader wait longer.
#[derive(Default)]
#[repr(align(64))] // its own cache line: written at every packet
struct Progress {
    coarse: AtomicU64,
    fine: AtomicU64,
}

impl Progress {
    fn coarse_of(at: Position) -> u64 {
        (at.seq << 4) | u64::from(at.stage.min(15))
    }

    fn publish(&self, at: Position) {
        let coarse = Progress::coarse_of(at);
        if self.coarse.load(Ordering::Relaxed) != coarse {
            // Entering a new stage: its keys start again from 0.
            self.fine.store(0, Ordering::Release);
            self.coarse.store(coarse, Ordering::Release);
        }
        self.fine.store(at.key, Ordering::Release);
    }

    fn reached(&self, at: Position) -> bool {
        let want = Progress::coarse_of(at);
        let coarse = self.coarse.load(Ordering::Acquire);
        coarse > want || (coarse == want && self.fine.load(Ordering::Acquire) >= at.key)
    }
}
