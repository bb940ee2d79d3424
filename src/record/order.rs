//! Where each thread of a sharded run is in the single-threaded order (see [`Position`]), so
//! that the few looks across connections that the analysis makes (endpoints seen upgraded,
//! TLS sessions learned from an earlier handshake) see what a single thread would have seen:
//! a look at position P waits until every other thread has done everything before P, and
//! ignores what they learned at or after P.
//!
//! A worker thread [`enter`]s the run's order once; the pipeline then says where it is with
//! [`set_position`] (a thread-local store, no synchronisation) and [`publish`]es it after each
//! batch. A single-threaded run never enters: nothing waits and everything learned is seen.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::Position;

/// How far every thread of a sharded run has got.
pub struct RunOrder {
    progress: Vec<Progress>,
}

thread_local! {
    static HERE: Cell<Position> = const { Cell::new(Position { seq: 0, stage: 0, key: 0 }) };
    static RUN: RefCell<Option<(Arc<RunOrder>, usize)>> = const { RefCell::new(None) };
}

impl RunOrder {
    /// The order of a run with `workers` threads.
    pub fn new(workers: usize) -> Arc<RunOrder> {
        Arc::new(RunOrder {
            progress: (0..workers).map(|_| Progress::default()).collect(),
        })
    }

    /// `worker` has finished: no one waits for it any more.
    pub fn done(&self, worker: usize) {
        let progress = &self.progress[worker];
        progress.fine.store(u64::MAX, Ordering::Release);
        progress.coarse.store(u64::MAX, Ordering::Release);
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

/// This thread is `worker` of a sharded run.
pub fn enter(order: Arc<RunOrder>, worker: usize) {
    RUN.with(|run| *run.borrow_mut() = Some((order, worker)));
}

/// Is this thread a worker of a sharded run?
pub fn sharded() -> bool {
    RUN.with(|run| run.borrow().is_some())
}

/// This thread is now at `at`.
pub fn set_position(at: Position) {
    HERE.with(|here| here.set(at));
}

/// Where this thread is (the default position outside a sharded run).
pub fn position() -> Position {
    HERE.with(|here| here.get())
}

/// Tells the other threads where this one is (it has done everything before it). A thread's
/// word can be behind it, never ahead.
pub fn publish() {
    RUN.with(|run| {
        if let Some((order, worker)) = run.borrow().as_ref() {
            order.progress[*worker].publish(position());
        }
    });
}

/// Before a look across connections: waits until the other threads have done everything a
/// single thread would have done before this thread's position. Returns that position, or
/// None outside a sharded run (where everything known is to be seen).
pub fn wait_for_the_others() -> Option<Position> {
    RUN.with(|run| {
        let run = run.borrow();
        let (order, worker) = run.as_ref()?;
        let at = position();
        // Said first: the others may be waiting for this thread, which is further on than
        // it last said.
        order.progress[*worker].publish(at);
        order.wait_for_others(*worker, at);
        Some(at)
    })
}

/// A thread's position as two atomics: the packet and stage (`coarse`), then the key within
/// the stage (`fine`). Read coarse first: a stale `fine` can only make a reader wait longer.
#[derive(Default)]
#[repr(align(64))] // its own cache line
struct Progress {
    coarse: AtomicU64,
    fine: AtomicU64,
}

impl Progress {
    fn coarse_of(at: Position) -> u64 {
        (at.seq.min(Position::END) << 4) | u64::from(at.stage.min(15))
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
